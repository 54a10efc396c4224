//! torch.optim.Adadelta.

use crate::ops::ensure;
use crate::Opts;
use frontier_core::{Optimizer, StepContext, Tensor};

/// Registry constructor.
pub(crate) fn build(o: &Opts) -> Result<Box<dyn Optimizer>, String> {
    Ok(Box::new(Adadelta::new(o.get("rho"), o.get("eps"), o.get("weight_decay"))))
}

/// torch.optim.Adadelta.
pub struct Adadelta {
    rho: f64,
    eps: f64,
    weight_decay: f64,
    sq: Vec<Vec<f64>>,
    acc: Vec<Vec<f64>>,
}

impl Adadelta {
    pub fn new(rho: f64, eps: f64, weight_decay: f64) -> Adadelta {
        Adadelta { rho, eps, weight_decay, sq: Vec::new(), acc: Vec::new() }
    }
}

/// One tensor of torch's single-tensor Adadelta; `WD` (weight decay on) is fixed for the step, so
/// the loop has no branch. The floating-point operations and their order are those of the plain loop.
#[inline(always)]
fn tensor_step<const WD: bool>(
    (lr, rho, eps, wd): (f64, f64, f64, f64),
    p: &mut [f64],
    g: &[f64],
    sq: &mut [f64],
    acc: &mut [f64],
) {
    // As many elements as the shortest slice, as `zip` would give.
    let n = p.len().min(g.len()).min(sq.len()).min(acc.len());
    let (p, g, sq, acc) = (&mut p[..n], &g[..n], &mut sq[..n], &mut acc[..n]);
    for j in 0..n {
        let gr = if WD { g[j] + wd * p[j] } else { g[j] };
        let s = sq[j] * rho + (1.0 - rho) * gr * gr; // square_avg.mul_(rho).addcmul_(grad, grad, value=1 - rho)
        sq[j] = s;
        let std = (s + eps).sqrt();
        let a = acc[j];
        let delta = (a + eps).sqrt() / std * gr; // delta.div_(std).mul_(grad)
        acc[j] = a * rho + (1.0 - rho) * delta * delta;
        p[j] += -lr * delta;
    }
}

impl Optimizer for Adadelta {
    fn name(&self) -> &str {
        "adadelta"
    }
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        ensure(&mut self.sq, params, 0.0);
        ensure(&mut self.acc, params, 0.0);
        let k = (ctx.lr, self.rho, self.eps, self.weight_decay);
        let run = if self.weight_decay != 0.0 { tensor_step::<true> } else { tensor_step::<false> };
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            run(k, p.as_mut_slice(), g.as_slice(), &mut self.sq[i], &mut self.acc[i]);
        }
    }
}
