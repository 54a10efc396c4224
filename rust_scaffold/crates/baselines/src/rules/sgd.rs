//! torch.optim.SGD; the `momentum` and `nesterov` baselines are presets of it.

use crate::ops::ensure;
use crate::Opts;
use frontier_core::{Optimizer, StepContext, Tensor};

/// Registry constructor (also for the `momentum` and `nesterov` presets).
pub(crate) fn build(o: &Opts) -> Result<Box<dyn Optimizer>, String> {
    let sgd = Sgd::new(o.name(), o.get("momentum"), o.get("dampening"), o.flag("nesterov")?, o.get("weight_decay"))?;
    Ok(Box::new(sgd))
}

/// torch.optim.SGD. The first momentum step sets the buffer to the raw (decayed) gradient.
pub struct Sgd {
    name: &'static str,
    momentum: f64,
    dampening: f64,
    nesterov: bool,
    weight_decay: f64,
    buf: Vec<Vec<f64>>,
    started: bool,
}

impl Sgd {
    pub fn new(name: &str, momentum: f64, dampening: f64, nesterov: bool, weight_decay: f64) -> Result<Sgd, String> {
        if nesterov && (momentum <= 0.0 || dampening != 0.0) {
            return Err("Nesterov momentum requires a momentum and zero dampening".into());
        }
        let name = match name {
            "momentum" => "momentum",
            "nesterov" => "nesterov",
            _ => "sgd",
        };
        Ok(Sgd { name, momentum, dampening, nesterov, weight_decay, buf: Vec::new(), started: false })
    }
}

/// The step's scalars.
#[derive(Clone, Copy)]
struct Consts {
    lr: f64,
    wd: f64,
    mom: f64,
    dampening: f64,
}

type TensorStep = fn(Consts, &mut [f64], &[f64], &mut [f64]);

/// One tensor of torch's single-tensor SGD. Weight decay, momentum, the first step (which sets
/// the buffer) and Nesterov are fixed for the whole step: const parameters, so each instance is a
/// branch-free loop. The floating-point operations and their order are those of the plain loop.
#[inline(always)]
fn tensor_step<const WD: bool, const MOM: bool, const FIRST: bool, const NESTEROV: bool>(
    k: Consts,
    p: &mut [f64],
    g: &[f64],
    buf: &mut [f64],
) {
    // As many elements as the shortest slice, as `zip` would give.
    let n = p.len().min(g.len());
    let n = if MOM { n.min(buf.len()) } else { n };
    let (p, g) = (&mut p[..n], &g[..n]);
    let buf = if MOM { &mut buf[..n] } else { &mut buf[..0] };
    for j in 0..n {
        // grad = grad.add(param, alpha=weight_decay)
        let mut d = if WD { g[j] + k.wd * p[j] } else { g[j] };
        if MOM {
            // buf = clone(grad) on the first step, else buf.mul_(momentum).add_(grad, alpha=1 - dampening)
            let b = if FIRST { d } else { buf[j] * k.mom + (1.0 - k.dampening) * d };
            buf[j] = b;
            // grad = grad.add(buf, alpha=momentum) if nesterov else buf
            d = if NESTEROV { d + k.mom * b } else { b };
        }
        // param.add_(grad, alpha=-lr)
        p[j] += -k.lr * d;
    }
}

fn pick(wd: bool, mom: bool, first: bool, nesterov: bool) -> TensorStep {
    macro_rules! by_wd {
        ($mom:literal, $first:literal, $nesterov:literal) => {
            if wd {
                tensor_step::<true, $mom, $first, $nesterov>
            } else {
                tensor_step::<false, $mom, $first, $nesterov>
            }
        };
    }
    match (mom, first, nesterov) {
        (false, _, _) => by_wd!(false, false, false),
        (true, true, true) => by_wd!(true, true, true),
        (true, true, false) => by_wd!(true, true, false),
        (true, false, true) => by_wd!(true, false, true),
        (true, false, false) => by_wd!(true, false, false),
    }
}

impl Optimizer for Sgd {
    fn name(&self) -> &str {
        self.name
    }
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        let k = Consts { lr: ctx.lr, wd: self.weight_decay, mom: self.momentum, dampening: self.dampening };
        let mom = k.mom != 0.0;
        if mom {
            ensure(&mut self.buf, params, 0.0);
        }
        let first = !self.started;
        self.started = true;
        let run = pick(k.wd != 0.0, mom, first, self.nesterov);
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let buf: &mut [f64] = if mom { &mut self.buf[i] } else { &mut [] };
            run(k, p.as_mut_slice(), g.as_slice(), buf);
        }
    }
}
