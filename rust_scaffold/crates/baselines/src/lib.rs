//! frontier-baselines: PyTorch's update rules, reproduced operation by operation in f64.
//!
//! Each optimizer follows the single-tensor (`foreach=False`) code path of `torch.optim` (Lion
//! follows lion-pytorch), including its order of floating-point operations where that is cheap
//! to keep (e.g. `lerp` switches formula at weight 0.5 as ATen does). The learning rate always
//! comes from `ctx.lr`; every other hyperparameter is set by PyTorch's keyword name through
//! [`build`]. State is allocated on the first step; later steps do not allocate.
#![forbid(unsafe_code)]

use frontier_core::{Optimizer, StepContext, Tensor};

mod opts;
mod rules;

pub use opts::Opts;
pub use rules::*;

/// Bumped whenever a baseline's update rule or defaults change.
pub const BASELINES_VERSION: u32 = 1;

/// Every baseline name accepted by [`build`], in a fixed order.
pub fn names() -> Vec<&'static str> {
    vec![
        "sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad", "lion", "adamax", "nadam", "radam",
        "adadelta", "adafactor",
    ]
}

/// The options each baseline accepts, with their defaults (PyTorch's; booleans are 0/1).
/// `eps1 = 0` for adafactor means PyTorch's `None` (machine epsilon).
pub fn defaults(name: &str) -> Option<Vec<(&'static str, f64)>> {
    let v: Vec<(&'static str, f64)> = match name {
        "sgd" => vec![("momentum", 0.0), ("dampening", 0.0), ("nesterov", 0.0), ("weight_decay", 0.0)],
        "momentum" => vec![("momentum", 0.9), ("dampening", 0.0), ("nesterov", 0.0), ("weight_decay", 0.0)],
        "nesterov" => vec![("momentum", 0.9), ("dampening", 0.0), ("nesterov", 1.0), ("weight_decay", 0.0)],
        "adam" => vec![("beta1", 0.9), ("beta2", 0.999), ("eps", 1e-8), ("weight_decay", 0.0), ("amsgrad", 0.0)],
        "adamw" => vec![("beta1", 0.9), ("beta2", 0.999), ("eps", 1e-8), ("weight_decay", 1e-2), ("amsgrad", 0.0)],
        "rmsprop" => vec![("alpha", 0.99), ("eps", 1e-8), ("weight_decay", 0.0), ("momentum", 0.0), ("centered", 0.0)],
        "adagrad" => {
            vec![("lr_decay", 0.0), ("weight_decay", 0.0), ("initial_accumulator_value", 0.0), ("eps", 1e-10)]
        }
        "lion" => vec![("beta1", 0.9), ("beta2", 0.99), ("weight_decay", 0.0)],
        "adamax" => vec![("beta1", 0.9), ("beta2", 0.999), ("eps", 1e-8), ("weight_decay", 0.0)],
        "nadam" => vec![
            ("beta1", 0.9),
            ("beta2", 0.999),
            ("eps", 1e-8),
            ("weight_decay", 0.0),
            ("momentum_decay", 4e-3),
            ("decoupled_weight_decay", 0.0),
        ],
        "radam" => vec![
            ("beta1", 0.9),
            ("beta2", 0.999),
            ("eps", 1e-8),
            ("weight_decay", 0.0),
            ("decoupled_weight_decay", 0.0),
        ],
        "adadelta" => vec![("rho", 0.9), ("eps", 1e-6), ("weight_decay", 0.0)],
        "adafactor" => vec![("beta2_decay", -0.8), ("eps1", 0.0), ("eps2", 1e-3), ("d", 1.0), ("weight_decay", 0.0)],
        _ => return None,
    };
    Some(v)
}

/// Builds a baseline by lowercase name with PyTorch keyword options (`beta1`/`beta2` for
/// `betas`, 0/1 for booleans). Unknown names and unknown or invalid options are errors.
pub fn build(name: &str, opts: &[(String, f64)]) -> Result<Box<dyn Optimizer>, String> {
    let defaults = defaults(name).ok_or_else(|| format!("unknown optimizer '{name}'; known: {}", names().join(", ")))?;
    let o = Opts::new(name, &defaults, opts)?;
    let b: Box<dyn Optimizer> = match name {
        "sgd" | "momentum" | "nesterov" => Box::new(Sgd::new(
            name,
            o.get("momentum"),
            o.get("dampening"),
            o.flag("nesterov")?,
            o.get("weight_decay"),
        )?),
        "adam" | "adamw" => Box::new(Adam::new(
            name,
            o.get("beta1"),
            o.get("beta2"),
            o.get("eps"),
            o.get("weight_decay"),
            o.flag("amsgrad")?,
            name == "adamw",
        )),
        "rmsprop" => Box::new(RmsProp::new(
            o.get("alpha"),
            o.get("eps"),
            o.get("weight_decay"),
            o.get("momentum"),
            o.flag("centered")?,
        )),
        "adagrad" => Box::new(Adagrad::new(
            o.get("lr_decay"),
            o.get("weight_decay"),
            o.get("initial_accumulator_value"),
            o.get("eps"),
        )),
        "lion" => Box::new(Lion::new(o.get("beta1"), o.get("beta2"), o.get("weight_decay"))),
        "adamax" => Box::new(Adamax::new(o.get("beta1"), o.get("beta2"), o.get("eps"), o.get("weight_decay"))),
        "nadam" => Box::new(NAdam::new(
            o.get("beta1"),
            o.get("beta2"),
            o.get("eps"),
            o.get("weight_decay"),
            o.get("momentum_decay"),
            o.flag("decoupled_weight_decay")?,
        )),
        "radam" => Box::new(RAdam::new(
            o.get("beta1"),
            o.get("beta2"),
            o.get("eps"),
            o.get("weight_decay"),
            o.flag("decoupled_weight_decay")?,
        )),
        "adadelta" => Box::new(Adadelta::new(o.get("rho"), o.get("eps"), o.get("weight_decay"))),
        "adafactor" => {
            let eps1 = o.get("eps1");
            Box::new(Adafactor::new(
                o.get("beta2_decay"),
                if eps1 == 0.0 { f64::EPSILON } else { eps1 },
                o.get("eps2"),
                o.get("d"),
                o.get("weight_decay"),
            ))
        }
        _ => unreachable!(),
    };
    Ok(b)
}

/// Lazily allocates one state buffer per tensor, filled with `value`.
pub(crate) fn ensure(state: &mut Vec<Vec<f64>>, params: &[Tensor], value: f64) {
    if state.is_empty() {
        *state = params.iter().map(|p| vec![value; p.len()]).collect();
    }
    assert_eq!(state.len(), params.len(), "the number of parameter tensors changed between steps");
}

/// ATen's scalar `lerp`: `self + w (end - self)` for |w| < 0.5, else `end - (end - self)(1 - w)`.
#[inline(always)]
pub(crate) fn lerp(s: f64, end: f64, w: f64) -> f64 {
    if w.abs() < 0.5 {
        s + w * (end - s)
    } else {
        end - (end - s) * (1.0 - w)
    }
}

/// `torch.sign` (0 for 0, NaN for NaN), unlike `f64::signum`.
#[inline(always)]
pub(crate) fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        x // 0.0, -0.0 or NaN
    }
}

/// `torch.maximum`: NaN propagates.
#[inline(always)]
pub(crate) fn maximum(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a > b {
        a
    } else {
        b
    }
}

/// Convenience for tests and the harness: run an optimizer on explicit gradients.
pub fn step_with(opt: &mut dyn Optimizer, params: &mut [Tensor], grads: &[Tensor], lr: f64, step: u64) {
    let oracle = frontier_core::NanOracle;
    let ctx = StepContext::new(step, f64::NAN, lr, &oracle);
    opt.step(params, grads, &ctx);
}

#[cfg(test)]
mod tests;
