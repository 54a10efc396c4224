//! torch.optim.RMSprop.

use crate::ops::ensure;
use crate::Opts;
use frontier_core::{Optimizer, StepContext, Tensor};

/// Registry constructor.
pub(crate) fn build(o: &Opts) -> Result<Box<dyn Optimizer>, String> {
    let centered = o.flag("centered")?;
    Ok(Box::new(RmsProp::new(o.get("alpha"), o.get("eps"), o.get("weight_decay"), o.get("momentum"), centered)))
}

/// torch.optim.RMSprop (no bias correction; eps added after the square root).
pub struct RmsProp {
    alpha: f64,
    eps: f64,
    weight_decay: f64,
    momentum: f64,
    centered: bool,
    sq: Vec<Vec<f64>>,
    gavg: Vec<Vec<f64>>,
    buf: Vec<Vec<f64>>,
}

impl RmsProp {
    pub fn new(alpha: f64, eps: f64, weight_decay: f64, momentum: f64, centered: bool) -> RmsProp {
        RmsProp { alpha, eps, weight_decay, momentum, centered, sq: Vec::new(), gavg: Vec::new(), buf: Vec::new() }
    }
}

/// The step's scalars.
#[derive(Clone, Copy)]
struct Consts {
    lr: f64,
    alpha: f64,
    eps: f64,
    wd: f64,
    mom: f64,
    /// `grad_avg.lerp_`'s weight, 1 - alpha.
    w: f64,
}

type TensorStep = fn(Consts, &mut [f64], &[f64], &mut [f64], &mut [f64], &mut [f64]);

/// One tensor of torch's single-tensor RMSprop. Weight decay, centring, momentum and lerp's
/// formula (ATen switches at |weight| = 0.5) are fixed for the step: const parameters, so each
/// instance is a branch-free loop. The floating-point operations and their order are those of
/// the plain loop.
#[inline(always)]
fn tensor_step<const WD: bool, const CENTERED: bool, const MOM: bool, const SMALL: bool>(
    k: Consts,
    p: &mut [f64],
    g: &[f64],
    sq: &mut [f64],
    gavg: &mut [f64],
    buf: &mut [f64],
) {
    // As many elements as the shortest slice, as `zip` would give.
    let n = p.len().min(g.len()).min(sq.len());
    let n = if CENTERED { n.min(gavg.len()) } else { n };
    let n = if MOM { n.min(buf.len()) } else { n };
    let (p, g, sq) = (&mut p[..n], &g[..n], &mut sq[..n]);
    let gavg = if CENTERED { &mut gavg[..n] } else { &mut gavg[..0] };
    let buf = if MOM { &mut buf[..n] } else { &mut buf[..0] };
    for j in 0..n {
        let gr = if WD { g[j] + k.wd * p[j] } else { g[j] };
        // square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
        let s = sq[j] * k.alpha + (1.0 - k.alpha) * gr * gr;
        sq[j] = s;
        let avg = if CENTERED {
            // grad_avg.lerp_(grad, 1 - alpha)
            let ga = gavg[j];
            let ga = if SMALL { ga + k.w * (gr - ga) } else { gr - (gr - ga) * (1.0 - k.w) };
            gavg[j] = ga;
            (s - ga * ga).sqrt() // square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
        } else {
            s.sqrt()
        } + k.eps;
        if MOM {
            let b = buf[j] * k.mom + gr / avg; // buf.mul_(momentum).addcdiv_(grad, avg)
            buf[j] = b;
            p[j] += -k.lr * b; // param.add_(buf, alpha=-lr)
        } else {
            p[j] += -k.lr * (gr / avg); // param.addcdiv_(grad, avg, value=-lr)
        }
    }
}

fn pick(wd: bool, centered: bool, mom: bool, small: bool) -> TensorStep {
    macro_rules! by_small {
        ($wd:literal, $centered:literal, $mom:literal) => {
            if small {
                tensor_step::<$wd, $centered, $mom, true>
            } else {
                tensor_step::<$wd, $centered, $mom, false>
            }
        };
    }
    match (wd, centered, mom) {
        (false, false, false) => by_small!(false, false, false),
        (false, false, true) => by_small!(false, false, true),
        (false, true, false) => by_small!(false, true, false),
        (false, true, true) => by_small!(false, true, true),
        (true, false, false) => by_small!(true, false, false),
        (true, false, true) => by_small!(true, false, true),
        (true, true, false) => by_small!(true, true, false),
        (true, true, true) => by_small!(true, true, true),
    }
}

impl Optimizer for RmsProp {
    fn name(&self) -> &str {
        "rmsprop"
    }
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        ensure(&mut self.sq, params, 0.0);
        if self.centered {
            ensure(&mut self.gavg, params, 0.0);
        }
        let mom = self.momentum > 0.0;
        if mom {
            ensure(&mut self.buf, params, 0.0);
        }
        let a = self.alpha;
        let k = Consts { lr: ctx.lr, alpha: a, eps: self.eps, wd: self.weight_decay, mom: self.momentum, w: 1.0 - a };
        let run = pick(k.wd != 0.0, self.centered, mom, k.w.abs() < 0.5);
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let gavg: &mut [f64] = if self.centered { &mut self.gavg[i] } else { &mut [] };
            let buf: &mut [f64] = if mom { &mut self.buf[i] } else { &mut [] };
            run(k, p.as_mut_slice(), g.as_slice(), &mut self.sq[i], gavg, buf);
        }
    }
}
