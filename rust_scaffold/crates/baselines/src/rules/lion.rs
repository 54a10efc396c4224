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

/// One tensor of lion-pytorch's update. Written over equal-length slices with no call that can
/// branch (`sign` compiles to selects), so it vectorises; the floating-point operations and their order
/// are those of the plain loop.
#[inline(always)]
fn tensor_step(lr: f64, decay: f64, b1: f64, b2: f64, p: &mut [f64], g: &[f64], m: &mut [f64]) {
    // As many elements as the shortest slice, as `zip` would give.
    let n = p.len().min(g.len()).min(m.len());
    let (p, g, m) = (&mut p[..n], &g[..n], &mut m[..n]);
    for j in 0..n {
        let (gj, mj) = (g[j], m[j]);
        let pj = p[j] * decay; // p.data.mul_(1 - lr * wd)
        let u = sign(mj * b1 + (1.0 - b1) * gj); // exp_avg.clone().mul_(beta1).add(grad, alpha=1 - beta1).sign_()
        p[j] = pj + -lr * u; // p.add_(update, alpha=-lr)
        m[j] = mj * b2 + (1.0 - b2) * gj; // exp_avg.mul_(beta2).add_(grad, alpha=1 - beta2)
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
            tensor_step(lr, decay, b1, b2, p.as_mut_slice(), g.as_slice(), &mut self.m[i]);
        }
    }
}
