//! prodigyopt.Prodigy (Mishchenko and Defazio 2024): Adam whose step size d is estimated on the
//! fly; the learning rate is a multiplier of it (1.0 by default).

use crate::ops::ensure;
use crate::Opts;
use frontier_core::{Optimizer, StepContext, Tensor};

/// Registry constructor. `beta3 < 0` means `None` (sqrt(beta2)); `growth_rate = 0` means
/// `float('inf')` (unbounded growth, the package default).
pub(crate) fn build(o: &Opts) -> Result<Box<dyn Optimizer>, String> {
    let (b2, b3, d0, gr) = (o.get("beta2"), o.get("beta3"), o.get("d0"), o.get("growth_rate"));
    if d0 <= 0.0 {
        return Err(format!("option 'd0' must be > 0, got {d0}"));
    }
    if gr < 0.0 {
        return Err(format!("option 'growth_rate' must be > 0, or 0 for inf, got {gr}"));
    }
    Ok(Box::new(Prodigy {
        beta1: o.get("beta1"),
        beta2: b2,
        beta3: if b3 < 0.0 { b2.sqrt() } else { b3 },
        eps: o.get("eps"),
        weight_decay: o.get("weight_decay"),
        decouple: o.flag("decouple")?,
        use_bias_correction: o.flag("use_bias_correction")?,
        safeguard_warmup: o.flag("safeguard_warmup")?,
        d0,
        d_coef: o.get("d_coef"),
        growth_rate: if gr == 0.0 { f64::INFINITY } else { gr },
        d: d0,
        d_max: d0,
        d_numerator: 0.0,
        k: 0,
        p0: Vec::new(),
        s: Vec::new(),
        m: Vec::new(),
        v: Vec::new(),
        scratch: Vec::new(),
    }))
}

/// prodigyopt.Prodigy with one parameter group (slice_p = 1, no FSDP).
pub struct Prodigy {
    beta1: f64,
    beta2: f64,
    beta3: f64,
    eps: f64,
    weight_decay: f64,
    decouple: bool,
    use_bias_correction: bool,
    safeguard_warmup: bool,
    d0: f64,
    d_coef: f64,
    growth_rate: f64,
    d: f64,
    d_max: f64,
    d_numerator: f64,
    k: u64,
    p0: Vec<Vec<f64>>,
    s: Vec<Vec<f64>>,
    m: Vec<Vec<f64>>,
    v: Vec<Vec<f64>>,
    /// The gradient with coupled decay (reused).
    scratch: Vec<f64>,
}

impl Prodigy {
    /// The current estimate d (the group's `d` after the last step).
    pub fn d(&self) -> f64 {
        self.d
    }
}

impl Optimizer for Prodigy {
    fn name(&self) -> &str {
        "prodigy"
    }
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        if self.p0.is_empty() {
            self.p0 = params.iter().map(|p| p.data.clone()).collect();
        }
        ensure(&mut self.s, params, 0.0);
        ensure(&mut self.m, params, 0.0);
        ensure(&mut self.v, params, 0.0);
        let (b1, b2, b3, lr, d, d0) = (self.beta1, self.beta2, self.beta3, ctx.lr, self.d, self.d0);
        let kp1 = (self.k + 1) as f64;
        let bias_correction =
            if self.use_bias_correction { (1.0 - b2.powf(kp1)).powf(0.5) / (1.0 - b1.powf(kp1)) } else { 1.0 };
        let dlr = d * lr * bias_correction;
        let mut d_numerator = self.d_numerator * b3;
        let mut d_denom = 0.0;
        let coupled = if self.decouple { 0.0 } else { self.weight_decay };
        let s_alpha = if self.safeguard_warmup { (d / d0) * d } else { (d / d0) * dlr };
        let (m_alpha, v_value) = (d * (1.0 - b1), d * d * (1.0 - b2));
        for (i, (p, g)) in params.iter().zip(grads).enumerate() {
            let gr = &mut self.scratch;
            gr.clear();
            gr.extend_from_slice(g.as_slice());
            if coupled != 0.0 {
                for (gj, &pj) in gr.iter_mut().zip(&p.data) {
                    *gj += coupled * pj; // grad.add_(p.data, alpha=decay)
                }
            }
            let mut dot = 0.0;
            for ((&gj, &p0j), &pj) in gr.iter().zip(&self.p0[i]).zip(&p.data) {
                dot += gj * (p0j - pj);
            }
            d_numerator += (d / d0) * dlr * dot;
            let (m, v, s) = (&mut self.m[i], &mut self.v[i], &mut self.s[i]);
            let mut abs_sum = 0.0;
            for ((&gj, mj), (vj, sj)) in gr.iter().zip(m.iter_mut()).zip(v.iter_mut().zip(s.iter_mut())) {
                *mj = *mj * b1 + m_alpha * gj; // exp_avg.mul_(beta1).add_(grad, alpha=d*(1-beta1))
                *vj = *vj * b2 + v_value * gj * gj; // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=d*d*(1-beta2))
                *sj = *sj * b3 + s_alpha * gj; // s.mul_(beta3).add_(grad, alpha=...)
                abs_sum += sj.abs();
            }
            d_denom += abs_sum;
        }
        if d_denom == 0.0 {
            return; // no progress possible: the package returns before updating d, k or p
        }
        let mut d_new = d;
        let mut d_max = self.d_max;
        if lr > 0.0 {
            let d_hat = self.d_coef * d_numerator / d_denom;
            if d_new == d0 {
                d_new = d_new.max(d_hat);
            }
            d_max = d_max.max(d_hat);
            d_new = d_max.min(d_new * self.growth_rate);
        }
        self.d_numerator = d_numerator;
        self.d = d_new;
        self.d_max = d_max;
        let shrink = -self.weight_decay * dlr;
        let decoupled = self.weight_decay != 0.0 && self.decouple;
        let d_eps = d_new * self.eps;
        for (i, p) in params.iter_mut().enumerate() {
            let p = p.as_mut_slice();
            if decoupled {
                for pj in p.iter_mut() {
                    *pj += shrink * *pj; // p.data.add_(p.data, alpha=-decay*dlr)
                }
            }
            for ((pj, &mj), &vj) in p.iter_mut().zip(&self.m[i]).zip(&self.v[i]) {
                let denom = vj.sqrt() + d_eps; // exp_avg_sq.sqrt().add_(d*eps)
                *pj += -dlr * (mj / denom); // p.data.addcdiv_(exp_avg, denom, value=-dlr)
            }
        }
        self.k += 1;
    }
}
