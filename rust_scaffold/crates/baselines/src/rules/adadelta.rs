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

impl Optimizer for Adadelta {
    fn name(&self) -> &str {
        "adadelta"
    }
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        ensure(&mut self.sq, params, 0.0);
        ensure(&mut self.acc, params, 0.0);
        let (lr, rho, eps, wd) = (ctx.lr, self.rho, self.eps, self.weight_decay);
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let p = p.as_mut_slice();
            let (sq, acc) = (&mut self.sq[i], &mut self.acc[i]);
            for ((pj, &gj), (sj, aj)) in p.iter_mut().zip(g.as_slice()).zip(sq.iter_mut().zip(acc.iter_mut())) {
                let gr = if wd != 0.0 { gj + wd * *pj } else { gj };
                *sj = *sj * rho + (1.0 - rho) * gr * gr; // square_avg.mul_(rho).addcmul_(grad, grad, value=1 - rho)
                let std = (*sj + eps).sqrt();
                let delta = (*aj + eps).sqrt() / std * gr; // delta.div_(std).mul_(grad)
                *aj = *aj * rho + (1.0 - rho) * delta * delta;
                *pj += -lr * delta;
            }
        }
    }
}
