//! torch.optim.RAdam.

use crate::ops::ensure;
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

/// The step's scalars.
#[derive(Clone, Copy)]
struct Consts {
    lr: f64,
    wd: f64,
    decay: f64,
    w: f64,
    b2: f64,
    eps: f64,
    bias_correction1: f64,
    bc2_sqrt: f64,
    rect: f64,
}

type TensorStep = fn(Consts, &mut [f64], &[f64], &mut [f64], &mut [f64]);

/// One tensor of torch's single-tensor RAdam. The weight-decay form, lerp's formula (|weight| <
/// 0.5) and whether the step is rectified (rho_t > 5) are fixed for the step: const parameters,
/// so each instance is a branch-free loop. The floating-point operations and their order are
/// those of the plain loop.
#[inline(always)]
fn tensor_step<const L2: bool, const DECOUPLED: bool, const SMALL: bool, const RECT: bool>(
    k: Consts,
    p: &mut [f64],
    g: &[f64],
    m: &mut [f64],
    v: &mut [f64],
) {
    // As many elements as the shortest slice, as `zip` would give.
    let n = p.len().min(g.len()).min(m.len()).min(v.len());
    let (p, g, m, v) = (&mut p[..n], &g[..n], &mut m[..n], &mut v[..n]);
    for j in 0..n {
        let pj = if DECOUPLED { p[j] * k.decay } else { p[j] };
        let gr = if L2 { g[j] + k.wd * pj } else { g[j] };
        // exp_avg.lerp_(grad, 1 - beta1)
        let mj = m[j];
        let mj = if SMALL { mj + k.w * (gr - mj) } else { gr - (gr - mj) * (1.0 - k.w) };
        m[j] = mj;
        let vj = v[j] * k.b2 + (1.0 - k.b2) * gr * gr;
        v[j] = vj;
        let bcm = mj / k.bias_correction1; // bias_corrected_exp_avg
        let upd = if RECT {
            // bias_corrected_exp_avg * lr * adaptive_lr * rect
            bcm * k.lr * (k.bc2_sqrt / (vj.sqrt() + k.eps)) * k.rect
        } else {
            bcm * k.lr
        };
        p[j] = pj + -upd; // param.add_(..., alpha=-1.0)
    }
}

fn pick(l2: bool, decoupled: bool, small: bool, rect: bool) -> TensorStep {
    macro_rules! by_rect {
        ($l2:literal, $dec:literal, $small:literal) => {
            if rect {
                tensor_step::<$l2, $dec, $small, true>
            } else {
                tensor_step::<$l2, $dec, $small, false>
            }
        };
    }
    match (l2, decoupled, small) {
        (true, _, true) => by_rect!(true, false, true),
        (true, _, false) => by_rect!(true, false, false),
        (false, true, true) => by_rect!(false, true, true),
        (false, true, false) => by_rect!(false, true, false),
        (false, false, true) => by_rect!(false, false, true),
        (false, false, false) => by_rect!(false, false, false),
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
        let k = Consts {
            lr,
            wd,
            decay: 1.0 - lr * wd,
            w: 1.0 - b1,
            b2,
            eps,
            bias_correction1,
            bc2_sqrt: bias_correction2.powf(0.5),
            rect: rect.unwrap_or(f64::NAN),
        };
        let run = pick(wd != 0.0 && !self.decoupled, wd != 0.0 && self.decoupled, k.w.abs() < 0.5, rect.is_some());
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            run(k, p.as_mut_slice(), g.as_slice(), &mut self.m[i], &mut self.v[i]);
        }
    }
}
