//! torch.optim.Adagrad.

use crate::ops::ensure;
use crate::Opts;
use frontier_core::{Optimizer, StepContext, Tensor};

/// Registry constructor.
pub(crate) fn build(o: &Opts) -> Result<Box<dyn Optimizer>, String> {
    let init = o.get("initial_accumulator_value");
    Ok(Box::new(Adagrad::new(o.get("lr_decay"), o.get("weight_decay"), init, o.get("eps"))))
}

/// torch.optim.Adagrad.
pub struct Adagrad {
    lr_decay: f64,
    weight_decay: f64,
    init_acc: f64,
    eps: f64,
    t: u64,
    sum: Vec<Vec<f64>>,
}

impl Adagrad {
    pub fn new(lr_decay: f64, weight_decay: f64, initial_accumulator_value: f64, eps: f64) -> Adagrad {
        Adagrad { lr_decay, weight_decay, init_acc: initial_accumulator_value, eps, t: 0, sum: Vec::new() }
    }
}

/// One tensor of torch's single-tensor Adagrad; `WD` (weight decay on) is fixed for the step, so
/// the loop has no branch. The floating-point operations and their order are those of the plain loop.
#[inline(always)]
fn tensor_step<const WD: bool>(wd: f64, eps: f64, clr: f64, p: &mut [f64], g: &[f64], sum: &mut [f64]) {
    // As many elements as the shortest slice, as `zip` would give.
    let n = p.len().min(g.len()).min(sum.len());
    let (p, g, sum) = (&mut p[..n], &g[..n], &mut sum[..n]);
    for j in 0..n {
        let gr = if WD { g[j] + wd * p[j] } else { g[j] };
        let s = sum[j] + gr * gr; // state_sum.addcmul_(grad, grad, value=1)
        sum[j] = s;
        let std = s.sqrt() + eps;
        p[j] += -clr * (gr / std); // param.addcdiv_(grad, std, value=-clr)
    }
}

impl Optimizer for Adagrad {
    fn name(&self) -> &str {
        "adagrad"
    }
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        ensure(&mut self.sum, params, self.init_acc);
        self.t += 1;
        let (wd, eps) = (self.weight_decay, self.eps);
        let clr = ctx.lr / (1.0 + (self.t as f64 - 1.0) * self.lr_decay);
        let run = if wd != 0.0 { tensor_step::<true> } else { tensor_step::<false> };
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            run(wd, eps, clr, p.as_mut_slice(), g.as_slice(), &mut self.sum[i]);
        }
    }
}
