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
    pub fn new(name: &str, beta1: f64, beta2: f64, eps: f64, weight_decay: f64, amsgrad: bool, decoupled: bool) -> Adam {
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
        let step = self.t as f64;
        let (lr, b1, b2, eps, wd) = (ctx.lr, self.beta1, self.beta2, self.eps, self.weight_decay);
        let bias_correction1 = 1.0 - b1.powf(step);
        let bias_correction2 = 1.0 - b2.powf(step);
        let step_size = lr / bias_correction1;
        let bc2_sqrt = bias_correction2.sqrt();
        let decay = 1.0 - lr * wd;
        let w = 1.0 - b1; // lerp weight
        let small = w.abs() < 0.5;
        let one_minus_w = 1.0 - w;
        let one_minus_b2 = 1.0 - b2;
        let l2 = wd != 0.0 && !self.decoupled;
        let decoupled = wd != 0.0 && self.decoupled;
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let p = p.as_mut_slice();
            let g = g.as_slice();
            let (m, v) = (&mut self.m[i][..], &mut self.v[i][..]);
            if decoupled {
                for pj in p.iter_mut() {
                    *pj *= decay; // param.mul_(1 - lr * weight_decay), elementwise first
                }
            }
            // One element of torch's single-tensor Adam; `vv` is the second moment used.
            macro_rules! body {
                ($pj:expr, $gj:expr, $mj:expr, $vj:expr, $vmax:expr) => {{
                    // grad = grad.add(param, alpha=weight_decay)
                    let gr = if l2 { $gj + wd * *$pj } else { $gj };
                    // exp_avg.lerp_(grad, 1 - beta1)
                    *$mj = if small { *$mj + w * (gr - *$mj) } else { gr - (gr - *$mj) * one_minus_w };
                    // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                    *$vj = *$vj * b2 + one_minus_b2 * gr * gr;
                    let vv = $vmax(*$vj);
                    // denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
                    let denom = vv.sqrt() / bc2_sqrt + eps;
                    // param.addcdiv_(exp_avg, denom, value=-step_size)
                    *$pj += -step_size * (*$mj / denom);
                }};
            }
            if self.amsgrad {
                let vm = &mut self.vmax[i][..];
                for ((pj, &gj), ((mj, vj), mx)) in p.iter_mut().zip(g).zip(m.iter_mut().zip(v.iter_mut()).zip(vm.iter_mut())) {
                    body!(pj, gj, mj, vj, |x: f64| {
                        *mx = maximum(*mx, x);
                        *mx
                    });
                }
            } else {
                for ((pj, &gj), (mj, vj)) in p.iter_mut().zip(g).zip(m.iter_mut().zip(v.iter_mut())) {
                    body!(pj, gj, mj, vj, |x: f64| x);
                }
            }
        }
    }
}
