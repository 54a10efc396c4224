//! torch.optim.Adamax.

use crate::ops::{ensure, lerp, maximum};
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
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let p = p.as_mut_slice();
            let (m, u) = (&mut self.m[i], &mut self.u[i]);
            for ((pj, &gj), (mj, uj)) in p.iter_mut().zip(g.as_slice()).zip(m.iter_mut().zip(u.iter_mut())) {
                let gr = if wd != 0.0 { gj + wd * *pj } else { gj };
                *mj = lerp(*mj, gr, 1.0 - b1); // exp_avg.lerp_(grad, 1 - beta1)
                *uj = maximum(*uj * b2, gr.abs() + eps); // torch.maximum(exp_inf.mul_(beta2), grad.abs().add_(eps))
                *pj += -clr * (*mj / *uj); // param.addcdiv_(exp_avg, exp_inf, value=-clr)
            }
        }
    }
}
