//! torch.optim.SGD; the `momentum` and `nesterov` baselines are presets of it.

use crate::ops::ensure;
use crate::Opts;
use frontier_core::{Optimizer, StepContext, Tensor};

/// Registry constructor (also for the `momentum` and `nesterov` presets).
pub(crate) fn build(o: &Opts) -> Result<Box<dyn Optimizer>, String> {
    let sgd = Sgd::new(o.name(), o.get("momentum"), o.get("dampening"), o.flag("nesterov")?, o.get("weight_decay"))?;
    Ok(Box::new(sgd))
}

/// torch.optim.SGD. The first momentum step sets the buffer to the raw (decayed) gradient.
pub struct Sgd {
    name: &'static str,
    momentum: f64,
    dampening: f64,
    nesterov: bool,
    weight_decay: f64,
    buf: Vec<Vec<f64>>,
    started: bool,
}

impl Sgd {
    pub fn new(name: &str, momentum: f64, dampening: f64, nesterov: bool, weight_decay: f64) -> Result<Sgd, String> {
        if nesterov && (momentum <= 0.0 || dampening != 0.0) {
            return Err("Nesterov momentum requires a momentum and zero dampening".into());
        }
        let name = match name {
            "momentum" => "momentum",
            "nesterov" => "nesterov",
            _ => "sgd",
        };
        Ok(Sgd { name, momentum, dampening, nesterov, weight_decay, buf: Vec::new(), started: false })
    }
}

impl Optimizer for Sgd {
    fn name(&self) -> &str {
        self.name
    }
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        let (lr, wd, mom, damp) = (ctx.lr, self.weight_decay, self.momentum, self.dampening);
        if mom != 0.0 {
            ensure(&mut self.buf, params, 0.0);
        }
        let first = !self.started;
        self.started = true;
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let p = p.as_mut_slice();
            let g = g.as_slice();
            if mom == 0.0 {
                for (pj, &gj) in p.iter_mut().zip(g) {
                    let d = if wd != 0.0 { gj + wd * *pj } else { gj };
                    *pj += -lr * d;
                }
                continue;
            }
            let b = &mut self.buf[i];
            for ((pj, &gj), bj) in p.iter_mut().zip(g).zip(b.iter_mut()) {
                // grad = grad.add(param, alpha=weight_decay)
                let mut d = if wd != 0.0 { gj + wd * *pj } else { gj };
                // buf = clone(grad) on the first step, else buf.mul_(momentum).add_(grad, alpha=1 - dampening)
                *bj = if first { d } else { *bj * mom + (1.0 - damp) * d };
                // grad = grad.add(buf, alpha=momentum) if nesterov else buf
                d = if self.nesterov { d + mom * *bj } else { *bj };
                // param.add_(grad, alpha=-lr)
                *pj += -lr * d;
            }
        }
    }
}
