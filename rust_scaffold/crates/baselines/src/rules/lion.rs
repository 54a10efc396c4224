//! Lion (Chen et al. 2023), as lion-pytorch.

use crate::ops::{ensure, sign};
use crate::Opts;
use frontier_core::{Optimizer, StepContext, Tensor};

/// Registry constructor.
pub(crate) fn build(o: &Opts) -> Result<Box<dyn Optimizer>, String> {
    Ok(Box::new(Lion::new(o.get("beta1"), o.get("beta2"), o.get("weight_decay"))))
}

/// Lion, as lion-pytorch's update_fn: decoupled decay, sign of the interpolated momentum
/// (sign(0) = 0), then the momentum update.
pub struct Lion {
    beta1: f64,
    beta2: f64,
    weight_decay: f64,
    m: Vec<Vec<f64>>,
}

impl Lion {
    pub fn new(beta1: f64, beta2: f64, weight_decay: f64) -> Lion {
        Lion { beta1, beta2, weight_decay, m: Vec::new() }
    }
}

impl Optimizer for Lion {
    fn name(&self) -> &str {
        "lion"
    }
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        ensure(&mut self.m, params, 0.0);
        let (lr, b1, b2) = (ctx.lr, self.beta1, self.beta2);
        let decay = 1.0 - lr * self.weight_decay;
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let p = p.as_mut_slice();
            for ((pj, &gj), mj) in p.iter_mut().zip(g.as_slice()).zip(self.m[i].iter_mut()) {
                *pj *= decay; // p.data.mul_(1 - lr * wd)
                let u = sign(*mj * b1 + (1.0 - b1) * gj); // exp_avg.clone().mul_(beta1).add(grad, alpha=1 - beta1).sign_()
                *pj += -lr * u; // p.add_(update, alpha=-lr)
                *mj = *mj * b2 + (1.0 - b2) * gj; // exp_avg.mul_(beta2).add_(grad, alpha=1 - beta2)
            }
        }
    }
}
