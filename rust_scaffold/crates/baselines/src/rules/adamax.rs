//! torch.optim.Adamax.

use crate::ops::{ensure, maximum};
use crate::Opts;
use frontier_core::{Optimizer, StepContext, Tensor};

/// Registry constructor.
pub(crate) fn build(o: &Opts) -> Result<Box<dyn Optimizer>, String> {
    Ok(Box::new(Adamax::new(o.get("beta1"), o.get("beta2"), o.get("eps"), o.get("weight_decay"))))
}

/// torch.optim.Adamax.
pub struct Adamax {
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    t: u64,
    m: Vec<Vec<f64>>,
    u: Vec<Vec<f64>>,
}

impl Adamax {
    pub fn new(beta1: f64, beta2: f64, eps: f64, weight_decay: f64) -> Adamax {
        Adamax { beta1, beta2, eps, weight_decay, t: 0, m: Vec::new(), u: Vec::new() }
    }
}

/// One tensor of torch's single-tensor Adamax; `WD` (weight decay on) and `SMALL` (lerp's formula,
/// |weight| < 0.5) are fixed for the step, so the loop has no branch. The floating-point
/// operations and their order are those of the plain loop.
#[inline(always)]
fn tensor_step<const WD: bool, const SMALL: bool>(
    (b2, eps, wd, w, clr): (f64, f64, f64, f64, f64),
    p: &mut [f64],
    g: &[f64],
    m: &mut [f64],
    u: &mut [f64],
) {
    // As many elements as the shortest slice, as `zip` would give.
    let n = p.len().min(g.len()).min(m.len()).min(u.len());
    let (p, g, m, u) = (&mut p[..n], &g[..n], &mut m[..n], &mut u[..n]);
    for j in 0..n {
        let gr = if WD { g[j] + wd * p[j] } else { g[j] };
        // exp_avg.lerp_(grad, 1 - beta1)
        let mj = m[j];
        let mj = if SMALL { mj + w * (gr - mj) } else { gr - (gr - mj) * (1.0 - w) };
        m[j] = mj;
        // torch.maximum(exp_inf.mul_(beta2), grad.abs().add_(eps))
        let uj = maximum(u[j] * b2, gr.abs() + eps);
        u[j] = uj;
        p[j] += -clr * (mj / uj); // param.addcdiv_(exp_avg, exp_inf, value=-clr)
    }
}

impl Optimizer for Adamax {
    fn name(&self) -> &str {
        "adamax"
    }
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        ensure(&mut self.m, params, 0.0);
        ensure(&mut self.u, params, 0.0);
        self.t += 1;
        let (b1, b2, eps, wd) = (self.beta1, self.beta2, self.eps, self.weight_decay);
        let clr = ctx.lr / (1.0 - b1.powf(self.t as f64));
        let w = 1.0 - b1;
        let run = match (wd != 0.0, w.abs() < 0.5) {
            (true, true) => tensor_step::<true, true>,
            (true, false) => tensor_step::<true, false>,
            (false, true) => tensor_step::<false, true>,
            (false, false) => tensor_step::<false, false>,
        };
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            run((b2, eps, wd, w, clr), p.as_mut_slice(), g.as_slice(), &mut self.m[i], &mut self.u[i]);
        }
    }
}
