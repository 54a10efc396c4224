//! pytorch_optimizer.AdEMAMix (Pagliardini et al. 2024): Adam plus a slow EMA of the gradient.

use crate::ops::{ensure, lerp_slice};
use crate::Opts;
use frontier_core::{Optimizer, StepContext, Tensor};

/// Registry constructor. `t_alpha_beta3 = 0` means `None` (no warm-up of alpha and beta3).
pub(crate) fn build(o: &Opts) -> Result<Box<dyn Optimizer>, String> {
    let t_ab3 = o.get("t_alpha_beta3");
    if t_ab3 < 0.0 {
        return Err(format!("option 't_alpha_beta3' must be >= 0 (0 means None), got {t_ab3}"));
    }
    let decay = match (o.flag("weight_decouple")?, o.flag("fixed_decay")?) {
        (false, _) => Decay::Coupled,
        (true, false) => Decay::Decoupled,
        (true, true) => Decay::Fixed,
    };
    Ok(Box::new(AdEMAMix {
        betas: [o.get("beta1"), o.get("beta2"), o.get("beta3")],
        alpha: o.get("alpha"),
        t_alpha_beta3: (t_ab3 > 0.0).then_some(t_ab3),
        weight_decay: o.get("weight_decay"),
        decay,
        eps: o.get("eps"),
        t: 0,
        m1: Vec::new(),
        v: Vec::new(),
        m2: Vec::new(),
        scratch: Vec::new(),
    }))
}

/// How weight decay enters (pytorch_optimizer's `apply_weight_decay`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Decay {
    /// `grad += wd * p` (the default).
    Coupled,
    /// `p *= 1 - wd * lr` (`weight_decouple=True`).
    Decoupled,
    /// `p *= 1 - wd` (`weight_decouple=True, fixed_decay=True`).
    Fixed,
}

/// pytorch_optimizer.AdEMAMix (foreach=False): three betas, the slow EMA mixed in with weight
/// alpha, both optionally warmed up over `t_alpha_beta3` steps.
pub struct AdEMAMix {
    betas: [f64; 3],
    alpha: f64,
    t_alpha_beta3: Option<f64>,
    weight_decay: f64,
    decay: Decay,
    eps: f64,
    t: u64,
    m1: Vec<Vec<f64>>,
    v: Vec<Vec<f64>>,
    m2: Vec<Vec<f64>>,
    /// The step's gradient with coupled decay (reused; no allocation after the first step).
    scratch: Vec<f64>,
}

impl AdEMAMix {
    /// (alpha_t, beta3_t) at step `t` (from 1): `schedule_alpha` and `schedule_beta3`.
    fn schedules(&self, t: f64) -> (f64, f64) {
        let [b1, _, b3] = self.betas;
        match self.t_alpha_beta3 {
            None => (self.alpha, b3),
            Some(tt) => {
                let (l1, l3) = (b1.ln(), b3.ln());
                let alpha_t = (t * self.alpha / tt).min(self.alpha);
                let beta3_t = (l1 * l3 / ((1.0 - t / tt) * l3 + (t / tt) * l1)).exp().min(b3);
                (alpha_t, beta3_t)
            }
        }
    }
}

impl Optimizer for AdEMAMix {
    fn name(&self) -> &str {
        "ademamix"
    }
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        ensure(&mut self.m1, params, 0.0);
        ensure(&mut self.v, params, 0.0);
        ensure(&mut self.m2, params, 0.0);
        self.t += 1;
        let t = self.t as f64;
        let [b1, b2, _] = self.betas;
        let (lr, wd, eps) = (ctx.lr, self.weight_decay, self.eps);
        let bias_correction1 = 1.0 - b1.powf(t);
        let bias_correction2_sq = (1.0 - b2.powf(t)).sqrt();
        let (alpha_t, beta3_t) = self.schedules(t);
        let shrink = match self.decay {
            Decay::Coupled => 1.0,
            Decay::Decoupled => 1.0 - wd * lr,
            Decay::Fixed => 1.0 - wd,
        };
        let coupled = if self.decay == Decay::Coupled { wd } else { 0.0 };
        let decays = wd != 0.0;
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let p = p.as_mut_slice();
            let (m1, v, m2) = (&mut self.m1[i], &mut self.v[i], &mut self.m2[i]);
            // The gradient with coupled decay; the decoupled forms shrink p first (exact no-ops
            // without decay are skipped so that p is untouched).
            let gr = &mut self.scratch;
            gr.clear();
            gr.extend_from_slice(g.as_slice());
            if decays {
                if coupled != 0.0 {
                    for (gj, &pj) in gr.iter_mut().zip(p.iter()) {
                        *gj += coupled * pj; // grad.add_(p, alpha=weight_decay)
                    }
                } else {
                    for pj in p.iter_mut() {
                        *pj *= shrink; // p.mul_(1 - weight_decay * lr), or (1 - weight_decay)
                    }
                }
            }
            lerp_slice(m1, gr, 1.0 - b1);
            lerp_slice(m2, gr, 1.0 - beta3_t);
            for (((pj, &gj), (&mj, vj)), &sj) in p.iter_mut().zip(gr.iter()).zip(m1.iter().zip(v.iter_mut())).zip(m2.iter()) {
                *vj = *vj * b2 + (1.0 - b2) * gj * gj;
                let de_nom = vj.sqrt() / bias_correction2_sq + eps;
                *pj += -lr * ((mj / bias_correction1 + alpha_t * sj) / de_nom);
            }
        }
    }
}
