//! schedulefree.AdamWScheduleFree (Defazio et al. 2024): gradients are taken at y, the averaged
//! iterate x is what the model is evaluated at ([`Optimizer::eval_params`]).

use crate::ops::{ensure, lerp_slice};
use crate::Opts;
use frontier_core::{Optimizer, StepContext, Tensor};

/// Registry constructor.
pub(crate) fn build(o: &Opts) -> Result<Box<dyn Optimizer>, String> {
    let warmup = o.get("warmup_steps");
    if warmup < 0.0 || warmup.fract() != 0.0 {
        return Err(format!("option 'warmup_steps' must be a whole number >= 0, got {warmup}"));
    }
    let beta1 = o.get("beta1");
    if !(beta1 > 0.0 && beta1 < 1.0) {
        return Err(format!("option 'beta1' must be in (0, 1) (x is read with 1/beta1), got {beta1}"));
    }
    Ok(Box::new(AdamWScheduleFree {
        beta1,
        beta2: o.get("beta2"),
        eps: o.get("eps"),
        weight_decay: o.get("weight_decay"),
        warmup_steps: warmup,
        r: o.get("r"),
        weight_lr_power: o.get("weight_lr_power"),
        k: 0,
        lr_max: -1.0,
        weight_sum: 0.0,
        z: Vec::new(),
        v: Vec::new(),
    }))
}

/// schedulefree.AdamWScheduleFree in train mode (foreach=False, the same arithmetic as foreach).
/// `params` is y; `z` the base sequence; x = lerp(y, z, 1 - 1/beta1).
pub struct AdamWScheduleFree {
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    warmup_steps: f64,
    r: f64,
    weight_lr_power: f64,
    k: u64,
    lr_max: f64,
    weight_sum: f64,
    z: Vec<Vec<f64>>,
    v: Vec<Vec<f64>>,
}

/// The step's scalars.
#[derive(Clone, Copy)]
struct Consts {
    b2: f64,
    bc2: f64,
    eps: f64,
    decay: f64,
    ckp1: f64,
    y_step: f64,
    lr: f64,
}

type TensorStep = fn(Consts, &mut [f64], &[f64], &mut [f64], &mut [f64]);

/// One tensor of the single-tensor step, element by element in the package's order:
/// v, the normalised gradient (plus decay at y), y's lerp towards z and step, z's step.
#[inline(always)]
fn tensor_step<const SMALL: bool, const DECAY: bool>(k: Consts, y: &mut [f64], g: &[f64], z: &mut [f64], v: &mut [f64]) {
    for ((yj, zj), (&gj, vj)) in y.iter_mut().zip(z.iter_mut()).zip(g.iter().zip(v.iter_mut())) {
        *vj = *vj * k.b2 + (1.0 - k.b2) * gj * gj; // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1-beta2)
        let denom = (*vj / k.bc2).sqrt() + k.eps; // exp_avg_sq.div(bias_correction2).sqrt_().add_(eps)
        let mut gn = gj / denom;
        if DECAY {
            gn += k.decay * *yj; // grad_normalized.add_(y, alpha=decay)
        }
        let yl = if SMALL { *yj + k.ckp1 * (*zj - *yj) } else { *zj - (*zj - *yj) * (1.0 - k.ckp1) };
        *yj = yl + k.y_step * gn; // y.add_(grad_normalized, alpha=lr*(beta1*(1-ckp1)-1))
        *zj -= k.lr * gn; // z.sub_(grad_normalized, alpha=lr)
    }
}

impl Optimizer for AdamWScheduleFree {
    fn name(&self) -> &str {
        "schedulefree_adamw"
    }
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        if self.z.is_empty() {
            self.z = params.iter().map(|p| p.data.clone()).collect(); // z = clone(y)
        }
        ensure(&mut self.v, params, 0.0);
        let (b1, b2, eps, decay) = (self.beta1, self.beta2, self.eps, self.weight_decay);
        let k = self.k as f64;
        let sched = if k < self.warmup_steps { (k + 1.0) / self.warmup_steps } else { 1.0 };
        let bias_correction2 = 1.0 - b2.powf(k + 1.0);
        let lr = ctx.lr * sched;
        self.lr_max = lr.max(self.lr_max);
        let weight = (k + 1.0).powf(self.r) * self.lr_max.powf(self.weight_lr_power);
        self.weight_sum += weight;
        let ckp1 = if self.weight_sum == 0.0 { 0.0 } else { weight / self.weight_sum };
        let k = Consts { b2, bc2: bias_correction2, eps, decay, ckp1, y_step: lr * (b1 * (1.0 - ckp1) - 1.0), lr };
        // lerp's formula and the decay term are fixed for the step: one branch-free loop each.
        let run: TensorStep = match (ckp1.abs() < 0.5, decay != 0.0) {
            (true, true) => tensor_step::<true, true>,
            (true, false) => tensor_step::<true, false>,
            (false, true) => tensor_step::<false, true>,
            (false, false) => tensor_step::<false, false>,
        };
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            run(k, p.as_mut_slice(), g.as_slice(), &mut self.z[i], &mut self.v[i]);
        }
        self.k += 1;
    }
    fn eval_params(&self, params: &[Tensor]) -> Option<Vec<Tensor>> {
        if self.z.is_empty() {
            return None; // before the first step x = y
        }
        let w = 1.0 - 1.0 / self.beta1;
        let mut x = params.to_vec();
        for (xt, z) in x.iter_mut().zip(&self.z) {
            lerp_slice(xt.as_mut_slice(), z, w);
        }
        Some(x)
    }
}
