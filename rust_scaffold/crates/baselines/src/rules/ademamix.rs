//! pytorch_optimizer.AdEMAMix (Pagliardini et al. 2024): Adam plus a slow EMA of the gradient.

use crate::ops::ensure;
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

/// The step's scalars.
#[derive(Clone, Copy)]
struct Consts {
    lr: f64,
    coupled: f64,
    shrink: f64,
    w1: f64,
    w3: f64,
    b2: f64,
    eps: f64,
    bias_correction1: f64,
    bias_correction2_sq: f64,
    alpha_t: f64,
}

type TensorStep = fn(Consts, &mut [f64], &[f64], &mut [f64], &mut [f64], &mut [f64]);

/// How weight decay acts in a step's loop.
const NO_DECAY: u8 = 0;
const GRAD_DECAY: u8 = 1;
const SHRINK: u8 = 2;

/// One tensor of the package's single-tensor step, fused into one pass: for each element the
/// decay, the two lerps (each formula chosen for the whole step, as `lerp_` does), v and the
/// parameter update, in the package's order. Elements do not interact, so this performs the
/// same floating-point operations in the same order as the package's pass-per-operation form,
/// while reading and writing each array once.
#[inline(always)]
fn tensor_step<const DECAY: u8, const SMALL1: bool, const SMALL3: bool>(
    k: Consts,
    p: &mut [f64],
    g: &[f64],
    m1: &mut [f64],
    v: &mut [f64],
    m2: &mut [f64],
) {
    // As many elements as the shortest slice, as `zip` would give.
    let n = p.len().min(g.len()).min(m1.len()).min(v.len()).min(m2.len());
    let (p, g, m1, v, m2) = (&mut p[..n], &g[..n], &mut m1[..n], &mut v[..n], &mut m2[..n]);
    for j in 0..n {
        // grad.add_(p, alpha=weight_decay), or p.mul_(1 - weight_decay * lr) / p.mul_(1 - weight_decay)
        let pj = if DECAY == SHRINK { p[j] * k.shrink } else { p[j] };
        let gj = if DECAY == GRAD_DECAY { g[j] + k.coupled * pj } else { g[j] };
        // exp_avg.lerp_(grad, 1 - beta1)
        let mj = m1[j];
        let mj = if SMALL1 { mj + k.w1 * (gj - mj) } else { gj - (gj - mj) * (1.0 - k.w1) };
        m1[j] = mj;
        // exp_avg_slow.lerp_(grad, 1 - beta3_t)
        let sj = m2[j];
        let sj = if SMALL3 { sj + k.w3 * (gj - sj) } else { gj - (gj - sj) * (1.0 - k.w3) };
        m2[j] = sj;
        // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        let vj = v[j] * k.b2 + (1.0 - k.b2) * gj * gj;
        v[j] = vj;
        let de_nom = vj.sqrt() / k.bias_correction2_sq + k.eps;
        p[j] = pj + -k.lr * ((mj / k.bias_correction1 + k.alpha_t * sj) / de_nom);
    }
}

fn pick(decay: u8, small1: bool, small3: bool) -> TensorStep {
    macro_rules! by_small {
        ($decay:expr) => {
            match (small1, small3) {
                (true, true) => tensor_step::<{ $decay }, true, true>,
                (true, false) => tensor_step::<{ $decay }, true, false>,
                (false, true) => tensor_step::<{ $decay }, false, true>,
                (false, false) => tensor_step::<{ $decay }, false, false>,
            }
        };
    }
    match decay {
        GRAD_DECAY => by_small!(GRAD_DECAY),
        SHRINK => by_small!(SHRINK),
        _ => by_small!(NO_DECAY),
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
        // Without decay p is left untouched (the exact no-ops are skipped, as the package does).
        let decay = match (wd != 0.0, self.decay) {
            (false, _) => NO_DECAY,
            (true, Decay::Coupled) => GRAD_DECAY,
            (true, _) => SHRINK,
        };
        let k = Consts {
            lr,
            coupled: wd,
            shrink,
            w1: 1.0 - b1,
            w3: 1.0 - beta3_t,
            b2,
            eps,
            bias_correction1,
            bias_correction2_sq,
            alpha_t,
        };
        let run = pick(decay, k.w1.abs() < 0.5, k.w3.abs() < 0.5);
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            run(k, p.as_mut_slice(), g.as_slice(), &mut self.m1[i], &mut self.v[i], &mut self.m2[i]);
        }
    }
}
