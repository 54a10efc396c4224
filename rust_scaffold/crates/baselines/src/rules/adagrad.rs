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

impl Optimizer for Adagrad {
    fn name(&self) -> &str {
        "adagrad"
    }
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        ensure(&mut self.sum, params, self.init_acc);
        self.t += 1;
        let (wd, eps) = (self.weight_decay, self.eps);
        let clr = ctx.lr / (1.0 + (self.t as f64 - 1.0) * self.lr_decay);
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let p = p.as_mut_slice();
            for ((pj, &gj), sj) in p.iter_mut().zip(g.as_slice()).zip(self.sum[i].iter_mut()) {
                let gr = if wd != 0.0 { gj + wd * *pj } else { gj };
                *sj += gr * gr; // state_sum.addcmul_(grad, grad, value=1)
                let std = sj.sqrt() + eps;
                *pj += -clr * (gr / std); // param.addcdiv_(grad, std, value=-clr)
            }
        }
    }
}
