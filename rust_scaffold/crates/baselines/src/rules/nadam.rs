//! torch.optim.NAdam.

use crate::ops::{ensure, lerp};
use crate::Opts;
use frontier_core::{Optimizer, StepContext, Tensor};

/// Registry constructor.
pub(crate) fn build(o: &Opts) -> Result<Box<dyn Optimizer>, String> {
    let decoupled = o.flag("decoupled_weight_decay")?;
    let (b1, b2, eps, wd, md) =
        (o.get("beta1"), o.get("beta2"), o.get("eps"), o.get("weight_decay"), o.get("momentum_decay"));
    Ok(Box::new(NAdam::new(b1, b2, eps, wd, md, decoupled)))
}

/// torch.optim.NAdam (momentum_decay schedule; optional decoupled weight decay).
pub struct NAdam {
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    momentum_decay: f64,
    decoupled: bool,
    t: u64,
    mu_product: f64,
    m: Vec<Vec<f64>>,
    v: Vec<Vec<f64>>,
}

impl NAdam {
    pub fn new(beta1: f64, beta2: f64, eps: f64, weight_decay: f64, momentum_decay: f64, decoupled: bool) -> NAdam {
        NAdam {
            beta1,
            beta2,
            eps,
            weight_decay,
            momentum_decay,
            decoupled,
            t: 0,
            mu_product: 1.0,
            m: Vec::new(),
            v: Vec::new(),
        }
    }
}

impl Optimizer for NAdam {
    fn name(&self) -> &str {
        "nadam"
    }
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        ensure(&mut self.m, params, 0.0);
        ensure(&mut self.v, params, 0.0);
        self.t += 1;
        let step = self.t as f64;
        let (lr, b1, b2, eps, wd) = (ctx.lr, self.beta1, self.beta2, self.eps, self.weight_decay);
        let bias_correction2 = 1.0 - b2.powf(step);
        let mu = b1 * (1.0 - 0.5 * 0.96f64.powf(step * self.momentum_decay));
        let mu_next = b1 * (1.0 - 0.5 * 0.96f64.powf((step + 1.0) * self.momentum_decay));
        self.mu_product *= mu;
        let mu_product_next = self.mu_product * mu_next;
        let c_grad = -lr * (1.0 - mu) / (1.0 - self.mu_product);
        let c_avg = (-lr * mu_next) / (1.0 - mu_product_next);
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
                let denom = (*vj / bias_correction2).sqrt() + eps; // exp_avg_sq.div(bias_correction2).sqrt().add_(eps)
                *pj += c_grad * (gr / denom); // param.addcdiv_(grad, denom, value=-lr*(1-mu)/(1-mu_product))
                *pj += c_avg * (*mj / denom); // param.addcdiv_(exp_avg, denom, value=-lr*mu_next/(1-mu_product_next))
            }
        }
    }
}
