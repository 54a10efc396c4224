//! torch.optim.NAdam, and NAdamW: the same rule with `decoupled_weight_decay=True`.

use crate::ops::ensure;
use crate::Opts;
use frontier_core::{Optimizer, StepContext, Tensor};

/// Registry constructor.
pub(crate) fn build(o: &Opts) -> Result<Box<dyn Optimizer>, String> {
    let decoupled = o.flag("decoupled_weight_decay")?;
    let (b1, b2, eps, wd, md) =
        (o.get("beta1"), o.get("beta2"), o.get("eps"), o.get("weight_decay"), o.get("momentum_decay"));
    let mut opt = NAdam::new(b1, b2, eps, wd, md, decoupled);
    if o.name() == "nadamw" {
        opt.name = "nadamw";
    }
    Ok(Box::new(opt))
}

/// torch.optim.NAdam (momentum_decay schedule; optional decoupled weight decay).
pub struct NAdam {
    name: &'static str,
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
            name: "nadam",
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

/// The step's scalars.
#[derive(Clone, Copy)]
struct Consts {
    c_grad: f64,
    c_avg: f64,
    decay: f64,
    wd: f64,
    w: f64,
    b2: f64,
    bc2: f64,
    eps: f64,
}

type TensorStep = fn(Consts, &mut [f64], &[f64], &mut [f64], &mut [f64]);

/// One tensor of torch's single-tensor NAdam; `DECOUPLED`/`L2` pick the weight-decay form and
/// `SMALL` lerp's formula (|w| < 0.5), so the loop has no branch.
#[inline(always)]
fn tensor_step<const DECOUPLED: bool, const L2: bool, const SMALL: bool>(
    k: Consts,
    p: &mut [f64],
    g: &[f64],
    m: &mut [f64],
    v: &mut [f64],
) {
    for ((pj, &gj), (mj, vj)) in p.iter_mut().zip(g).zip(m.iter_mut().zip(v.iter_mut())) {
        if DECOUPLED {
            *pj *= k.decay; // param.mul_(1 - lr * weight_decay)
        }
        let gr = if L2 { gj + k.wd * *pj } else { gj }; // grad.add(param, alpha=weight_decay)
        *mj = if SMALL { *mj + k.w * (gr - *mj) } else { gr - (gr - *mj) * (1.0 - k.w) };
        *vj = *vj * k.b2 + (1.0 - k.b2) * gr * gr;
        let denom = (*vj / k.bc2).sqrt() + k.eps; // exp_avg_sq.div(bias_correction2).sqrt().add_(eps)
        *pj += k.c_grad * (gr / denom); // param.addcdiv_(grad, denom, value=-lr*(1-mu)/(1-mu_product))
        *pj += k.c_avg * (*mj / denom); // param.addcdiv_(exp_avg, denom, value=-lr*mu_next/(1-mu_product_next))
    }
}

impl Optimizer for NAdam {
    fn name(&self) -> &str {
        self.name
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
        let k = Consts { c_grad, c_avg, decay: 1.0 - lr * wd, wd, w: 1.0 - b1, b2, bc2: bias_correction2, eps };
        // The weight-decay form and lerp's formula are fixed for the step: one branch-free loop each.
        let run: TensorStep = match (wd != 0.0 && self.decoupled, wd != 0.0 && !self.decoupled, k.w.abs() < 0.5) {
            (true, _, true) => tensor_step::<true, false, true>,
            (true, _, false) => tensor_step::<true, false, false>,
            (false, true, true) => tensor_step::<false, true, true>,
            (false, true, false) => tensor_step::<false, true, false>,
            (false, false, true) => tensor_step::<false, false, true>,
            (false, false, false) => tensor_step::<false, false, false>,
        };
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            run(k, p.as_mut_slice(), g.as_slice(), &mut self.m[i], &mut self.v[i]);
        }
    }
}
