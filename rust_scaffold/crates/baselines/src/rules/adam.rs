//! torch.optim.Adam and torch.optim.AdamW (one rule; AdamW decays the weights first).

use crate::ops::{ensure, maximum};
use crate::Opts;
use frontier_core::{Optimizer, StepContext, Tensor};

/// Registry constructor of `adam` (L2 weight decay added to the gradient).
pub(crate) fn build(o: &Opts) -> Result<Box<dyn Optimizer>, String> {
    build_with(o, false)
}

/// Registry constructor of `adamw` (decoupled weight decay).
pub(crate) fn build_adamw(o: &Opts) -> Result<Box<dyn Optimizer>, String> {
    build_with(o, true)
}

fn build_with(o: &Opts, decoupled: bool) -> Result<Box<dyn Optimizer>, String> {
    let amsgrad = o.flag("amsgrad")?;
    let (b1, b2, eps, wd) = (o.get("beta1"), o.get("beta2"), o.get("eps"), o.get("weight_decay"));
    Ok(Box::new(Adam::new(o.name(), b1, b2, eps, wd, amsgrad, decoupled)))
}

/// torch.optim.Adam (L2 weight decay) and torch.optim.AdamW (decoupled: weights decay first).
pub struct Adam {
    name: &'static str,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    amsgrad: bool,
    decoupled: bool,
    t: u64,
    m: Vec<Vec<f64>>,
    v: Vec<Vec<f64>>,
    vmax: Vec<Vec<f64>>,
}

impl Adam {
    pub fn new(
        name: &str,
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
        amsgrad: bool,
        decoupled: bool,
    ) -> Adam {
        let name = if decoupled || name == "adamw" { "adamw" } else { "adam" };
        Adam {
            name,
            beta1,
            beta2,
            eps,
            weight_decay,
            amsgrad,
            decoupled,
            t: 0,
            m: Vec::new(),
            v: Vec::new(),
            vmax: Vec::new(),
        }
    }
}

/// The step's scalars, computed once per step (torch's names where it has them).
#[derive(Clone, Copy)]
pub(crate) struct Consts {
    step_size: f64,
    bc2_sqrt: f64,
    eps: f64,
    wd: f64,
    decay: f64,
    b2: f64,
    one_minus_b2: f64,
    w: f64,
    one_minus_w: f64,
}

impl Consts {
    /// Step `t`'s scalars (t from 1) for learning rate `lr`.
    pub(crate) fn new(lr: f64, t: u64, b1: f64, b2: f64, eps: f64, wd: f64) -> Consts {
        let step = t as f64;
        let bias_correction1 = 1.0 - b1.powf(step);
        let bias_correction2 = 1.0 - b2.powf(step);
        let w = 1.0 - b1; // lerp weight
        Consts {
            step_size: lr / bias_correction1,
            bc2_sqrt: bias_correction2.sqrt(),
            eps,
            wd,
            decay: 1.0 - lr * wd,
            b2,
            one_minus_b2: 1.0 - b2,
            w,
            one_minus_w: 1.0 - w,
        }
    }

    /// Whether lerp uses its small-weight formula (ATen switches at |weight| = 0.5).
    pub(crate) fn small(&self) -> bool {
        self.w.abs() < 0.5
    }
}

/// One tensor of torch's single-tensor Adam. Every choice that is fixed for the whole step
/// (the weight-decay form, `lerp`'s formula, AMSGrad) is a const parameter, so each of the 12
/// instances is a branch-free loop; moments are computed in registers and stored once. The
/// floating-point operations and their order are exactly those of the plain loop.
#[inline(always)]
fn tensor_step<const L2: bool, const DECOUPLED: bool, const SMALL: bool, const AMS: bool>(
    k: Consts,
    p: &mut [f64],
    g: &[f64],
    m: &mut [f64],
    v: &mut [f64],
    vmax: &mut [f64],
) {
    // As many elements as the shortest slice, as `zip` would give.
    let n = p.len().min(g.len()).min(m.len()).min(v.len());
    let n = if AMS { n.min(vmax.len()) } else { n };
    let (p, g, m, v) = (&mut p[..n], &g[..n], &mut m[..n], &mut v[..n]);
    let vmax = if AMS { &mut vmax[..n] } else { &mut vmax[..0] };
    for j in 0..n {
        // param.mul_(1 - lr * weight_decay) (AdamW: the whole tensor decays first)
        let pj = if DECOUPLED { p[j] * k.decay } else { p[j] };
        // grad = grad.add(param, alpha=weight_decay)
        let gr = if L2 { g[j] + k.wd * pj } else { g[j] };
        // exp_avg.lerp_(grad, 1 - beta1)
        let mj = m[j];
        let mj = if SMALL { mj + k.w * (gr - mj) } else { gr - (gr - mj) * k.one_minus_w };
        // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        let vj = v[j] * k.b2 + k.one_minus_b2 * gr * gr;
        m[j] = mj;
        v[j] = vj;
        // torch.maximum(max_exp_avg_sqs, exp_avg_sq, out=max_exp_avg_sqs) with AMSGrad
        let vv = if AMS {
            let x = maximum(vmax[j], vj);
            vmax[j] = x;
            x
        } else {
            vj
        };
        // denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
        let denom = vv.sqrt() / k.bc2_sqrt + k.eps;
        // param.addcdiv_(exp_avg, denom, value=-step_size)
        p[j] = pj + -k.step_size * (mj / denom);
    }
}

/// Picks the `tensor_step` instance for this step's choices.
pub(crate) type TensorStep = fn(Consts, &mut [f64], &[f64], &mut [f64], &mut [f64], &mut [f64]);

pub(crate) fn pick(l2: bool, decoupled: bool, small: bool, ams: bool) -> TensorStep {
    macro_rules! by_ams {
        ($l2:literal, $dec:literal, $small:literal) => {
            if ams {
                tensor_step::<$l2, $dec, $small, true>
            } else {
                tensor_step::<$l2, $dec, $small, false>
            }
        };
    }
    match (l2, decoupled, small) {
        (true, _, true) => by_ams!(true, false, true),
        (true, _, false) => by_ams!(true, false, false),
        (false, true, true) => by_ams!(false, true, true),
        (false, true, false) => by_ams!(false, true, false),
        (false, false, true) => by_ams!(false, false, true),
        (false, false, false) => by_ams!(false, false, false),
    }
}

impl Optimizer for Adam {
    fn name(&self) -> &str {
        self.name
    }
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        ensure(&mut self.m, params, 0.0);
        ensure(&mut self.v, params, 0.0);
        if self.amsgrad {
            ensure(&mut self.vmax, params, 0.0);
        }
        self.t += 1;
        let (lr, wd) = (ctx.lr, self.weight_decay);
        let k = Consts::new(lr, self.t, self.beta1, self.beta2, self.eps, wd);
        // ATen's lerp switches formula at |weight| = 0.5.
        let run = pick(wd != 0.0 && !self.decoupled, wd != 0.0 && self.decoupled, k.small(), self.amsgrad);
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let vmax: &mut [f64] = if self.amsgrad { &mut self.vmax[i] } else { &mut [] };
            run(k, p.as_mut_slice(), g.as_slice(), &mut self.m[i], &mut self.v[i], vmax);
        }
    }
}
