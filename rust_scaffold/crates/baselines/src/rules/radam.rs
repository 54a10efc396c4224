//! torch.optim.RAdam.

use crate::ops::{ensure, lerp};
use crate::Opts;
use frontier_core::{Optimizer, StepContext, Tensor};

/// Registry constructor.
pub(crate) fn build(o: &Opts) -> Result<Box<dyn Optimizer>, String> {
    let decoupled = o.flag("decoupled_weight_decay")?;
    Ok(Box::new(RAdam::new(o.get("beta1"), o.get("beta2"), o.get("eps"), o.get("weight_decay"), decoupled)))
}

/// torch.optim.RAdam (variance rectification once rho_t > 5).
pub struct RAdam {
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    decoupled: bool,
    t: u64,
    m: Vec<Vec<f64>>,
    v: Vec<Vec<f64>>,
}

impl RAdam {
    pub fn new(beta1: f64, beta2: f64, eps: f64, weight_decay: f64, decoupled: bool) -> RAdam {
        RAdam { beta1, beta2, eps, weight_decay, decoupled, t: 0, m: Vec::new(), v: Vec::new() }
    }
}

impl Optimizer for RAdam {
    fn name(&self) -> &str {
        "radam"
    }
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        ensure(&mut self.m, params, 0.0);
        ensure(&mut self.v, params, 0.0);
        self.t += 1;
        let step = self.t as f64;
        let (lr, b1, b2, eps, wd) = (ctx.lr, self.beta1, self.beta2, self.eps, self.weight_decay);
        let bias_correction1 = 1.0 - b1.powf(step);
        let bias_correction2 = 1.0 - b2.powf(step);
        let rho_inf = 2.0 / (1.0 - b2) - 1.0;
        let rho_t = rho_inf - 2.0 * step * b2.powf(step) / bias_correction2;
        let rect = if rho_t > 5.0 {
            Some(((rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)).powf(0.5))
        } else {
            None
        };
        let bc2_sqrt = bias_correction2.powf(0.5);
        let decay = 1.0 - lr * wd;
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let p = p.as_mut_slice();
            let (m, v) = (&mut self.m[i], &mut self.v[i]);
            for ((pj, &gj), (mj, vj)) in p.iter_mut().zip(g.as_slice()).zip(m.iter_mut().zip(v.iter_mut())) {
                let mut gr = gj;
                if wd != 0.0 {
                    if self.decoupled {
                        *pj *= decay;
                    } else {
                        gr = gj + wd * *pj;
                    }
                }
                *mj = lerp(*mj, gr, 1.0 - b1);
                *vj = *vj * b2 + (1.0 - b2) * gr * gr;
                let bcm = *mj / bias_correction1; // bias_corrected_exp_avg
                let upd = match rect {
                    // bias_corrected_exp_avg * lr * adaptive_lr * rect
                    Some(r) => bcm * lr * (bc2_sqrt / (vj.sqrt() + eps)) * r,
                    None => bcm * lr,
                };
                *pj += -upd; // param.add_(..., alpha=-1.0)
            }
        }
    }
}
