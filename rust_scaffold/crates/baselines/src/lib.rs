//! frontier-baselines: PyTorch's update rules, reproduced operation by operation in f64.
//!
//! Each optimizer follows the single-tensor (`foreach=False`) code path of `torch.optim` (Lion
//! follows lion-pytorch; Schedule-Free, Prodigy, SOAP and AdEMAMix their packages), including its order of floating-point operations where that is cheap
//! to keep (e.g. `lerp` switches formula at weight 0.5 as ATen does). The learning rate always
//! comes from `ctx.lr`; every other hyperparameter is set by PyTorch's keyword name through
//! [`build`]. State is allocated on the first step; later steps do not allocate.
//!
//! Every baseline is one row of [`BASELINES`]; [`names`], [`defaults`], [`describe`] and
//! [`build`] are all read from it. Adding a baseline:
//! 1. `src/rules/NAME.rs`: the optimizer and `pub(crate) fn build(o: &Opts) -> Result<Box<dyn Optimizer>, String>`;
//! 2. here: `pub mod NAME;` in [`rules`] and one [`Baseline`] row in [`BASELINES`] (a preset of an
//!    existing rule, like `momentum`, is only the row); bump [`BASELINES_VERSION`];
//! 3. its PyTorch trajectory: a case in `tests/fixtures/torch_trajectories.json`, then regenerate
//!    `tests/torch_reference.txt` with `data/write_reference_fixture.py` and raise the run count in
//!    `tests/torch_reference.rs` (the modern optimizers' runs come from
//!    `shared/reference/torch_trajectories_modern.json` into `tests/torch_reference_modern.txt`, each
//!    with its own tolerance). `tests/registry.rs` fails for any row no trajectory verifies.
//!
//! Options PyTorch spells as `None`, `inf` or a string are numbers here, said in each row's `about`
//! (e.g. Prodigy's `growth_rate = 0` is `inf`, Muon's `adjust_lr_fn` is a code).
#![forbid(unsafe_code)]

use frontier_core::{Optimizer, StepContext, Tensor};

mod ops;
mod opts;

/// The update rules, one file each. Presets (`momentum`, `nesterov`, `adamw`, `nadamw`) share a rule.
pub mod rules {
    pub mod adadelta;
    pub mod adafactor;
    pub mod adagrad;
    pub mod adam;
    pub mod adamax;
    pub mod ademamix;
    pub mod lion;
    pub mod muon;
    pub mod nadam;
    pub mod prodigy;
    pub mod radam;
    pub mod rmsprop;
    pub mod schedulefree_adamw;
    pub mod sgd;
    pub mod soap;
}

use rules::*;

pub use opts::Opts;

/// Bumped whenever a baseline's update rule or defaults change.
pub const BASELINES_VERSION: u32 = 3;

/// How a tuner searches a hyperparameter between its bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// Uniform between `low` and `high`.
    Linear,
    /// Uniform in log between `low` and `high` (both > 0): an epsilon, a weight decay.
    Log,
    /// Uniform in log of `1 - x` (a momentum or a beta: 0.9, 0.99 and 0.999 are evenly spaced).
    LogOneMinus,
}

impl Scale {
    pub fn name(self) -> &'static str {
        match self {
            Scale::Linear => "linear",
            Scale::Log => "log",
            Scale::LogOneMinus => "log1m",
        }
    }
}

/// One hyperparameter a tuner may search (besides the learning rate, which is always tuned):
/// an option of [`Baseline::defaults`], its range (which holds the default) and scale. This is a
/// baseline's counterpart of a candidate's `knobs()`.
#[derive(Clone, Copy, Debug)]
pub struct Hyper {
    pub name: &'static str,
    pub low: f64,
    pub high: f64,
    pub scale: Scale,
}

const fn h(name: &'static str, low: f64, high: f64, scale: Scale) -> Hyper {
    Hyper { name, low, high, scale }
}

use Scale::{Linear, Log, LogOneMinus};

const MOMENTUM: Hyper = h("momentum", 0.5, 0.999, LogOneMinus);
const BETA1: Hyper = h("beta1", 0.5, 0.99, LogOneMinus);
const BETA2: Hyper = h("beta2", 0.9, 0.9999, LogOneMinus);
const EPS: Hyper = h("eps", 1e-12, 1e-4, Log);

/// One registered baseline.
pub struct Baseline {
    /// The lowercase name `build` accepts (and the optimizer's `name()`).
    pub name: &'static str,
    /// One line for docs and listings.
    pub about: &'static str,
    /// Every option it accepts with its default (PyTorch's; booleans are 0/1), in a fixed order.
    pub defaults: &'static [(&'static str, f64)],
    /// The hyperparameters a tuner searches (the learning rate, warm-up and decay are searched for
    /// everyone and are not listed): the usual ones of the method (AlgoPerf's baselines tune
    /// momentum/betas, epsilon and weight decay), at most four, each with its default inside.
    pub search: &'static [Hyper],
    /// Builds it from options already merged with `defaults`.
    pub build: fn(&Opts) -> Result<Box<dyn Optimizer>, String>,
}

/// Every baseline, in the fixed order [`names`] lists them.
pub static BASELINES: &[Baseline] = &[
    Baseline {
        name: "sgd",
        about: "torch.optim.SGD, plain gradient descent by default",
        defaults: &[("momentum", 0.0), ("dampening", 0.0), ("nesterov", 0.0), ("weight_decay", 0.0)],
        search: &[],
        build: sgd::build,
    },
    Baseline {
        name: "momentum",
        about: "torch.optim.SGD with heavy-ball momentum 0.9",
        defaults: &[("momentum", 0.9), ("dampening", 0.0), ("nesterov", 0.0), ("weight_decay", 0.0)],
        search: &[MOMENTUM],
        build: sgd::build,
    },
    Baseline {
        name: "nesterov",
        about: "torch.optim.SGD with Nesterov momentum 0.9",
        defaults: &[("momentum", 0.9), ("dampening", 0.0), ("nesterov", 1.0), ("weight_decay", 0.0)],
        search: &[MOMENTUM],
        build: sgd::build,
    },
    Baseline {
        name: "adam",
        about: "torch.optim.Adam (weight decay as L2 added to the gradient; optional AMSGrad)",
        defaults: &[("beta1", 0.9), ("beta2", 0.999), ("eps", 1e-8), ("weight_decay", 0.0), ("amsgrad", 0.0)],
        search: &[BETA1, BETA2, EPS],
        build: adam::build,
    },
    Baseline {
        name: "adamw",
        about: "torch.optim.AdamW (Adam with decoupled weight decay, 1e-2 by default)",
        defaults: &[("beta1", 0.9), ("beta2", 0.999), ("eps", 1e-8), ("weight_decay", 1e-2), ("amsgrad", 0.0)],
        search: &[BETA1, BETA2, EPS, h("weight_decay", 1e-5, 1e-1, Log)],
        build: adam::build_adamw,
    },
    Baseline {
        name: "rmsprop",
        about: "torch.optim.RMSprop (optionally centered, with momentum)",
        defaults: &[("alpha", 0.99), ("eps", 1e-8), ("weight_decay", 0.0), ("momentum", 0.0), ("centered", 0.0)],
        search: &[h("alpha", 0.9, 0.999, LogOneMinus), EPS, h("momentum", 0.0, 0.95, Linear)],
        build: rmsprop::build,
    },
    Baseline {
        name: "adagrad",
        about: "torch.optim.Adagrad (optional learning-rate decay and initial accumulator)",
        defaults: &[("lr_decay", 0.0), ("weight_decay", 0.0), ("initial_accumulator_value", 0.0), ("eps", 1e-10)],
        search: &[h("eps", 1e-12, 1e-4, Log), h("initial_accumulator_value", 0.0, 1.0, Linear)],
        build: adagrad::build,
    },
    Baseline {
        name: "lion",
        about: "Lion (Chen et al. 2023) as lion-pytorch: sign of interpolated momentum",
        defaults: &[("beta1", 0.9), ("beta2", 0.99), ("weight_decay", 0.0)],
        search: &[BETA1, h("beta2", 0.9, 0.999, LogOneMinus)],
        build: lion::build,
    },
    Baseline {
        name: "adamax",
        about: "torch.optim.Adamax (Adam with an infinity-norm second moment)",
        defaults: &[("beta1", 0.9), ("beta2", 0.999), ("eps", 1e-8), ("weight_decay", 0.0)],
        search: &[BETA1, BETA2, EPS],
        build: adamax::build,
    },
    Baseline {
        name: "nadam",
        about: "torch.optim.NAdam (Nesterov Adam with the momentum_decay schedule)",
        defaults: &[
            ("beta1", 0.9),
            ("beta2", 0.999),
            ("eps", 1e-8),
            ("weight_decay", 0.0),
            ("momentum_decay", 4e-3),
            ("decoupled_weight_decay", 0.0),
        ],
        search: &[BETA1, BETA2, EPS],
        build: nadam::build,
    },
    Baseline {
        name: "nadamw",
        about: "torch.optim.NAdam(decoupled_weight_decay=True): NAdam with AdamW's decoupled decay, 1e-2 by default",
        defaults: &[
            ("beta1", 0.9),
            ("beta2", 0.999),
            ("eps", 1e-8),
            ("weight_decay", 1e-2),
            ("momentum_decay", 4e-3),
            ("decoupled_weight_decay", 1.0),
        ],
        search: &[BETA1, BETA2, EPS, h("weight_decay", 1e-5, 1e-1, Log)],
        build: nadam::build,
    },
    Baseline {
        name: "radam",
        about: "torch.optim.RAdam (variance-rectified Adam)",
        defaults: &[
            ("beta1", 0.9),
            ("beta2", 0.999),
            ("eps", 1e-8),
            ("weight_decay", 0.0),
            ("decoupled_weight_decay", 0.0),
        ],
        search: &[BETA1, BETA2, EPS],
        build: radam::build,
    },
    Baseline {
        name: "adadelta",
        about: "torch.optim.Adadelta (lr 1.0 is PyTorch's default)",
        defaults: &[("rho", 0.9), ("eps", 1e-6), ("weight_decay", 0.0)],
        search: &[h("rho", 0.5, 0.999, LogOneMinus), h("eps", 1e-8, 1e-3, Log)],
        build: adadelta::build,
    },
    Baseline {
        name: "adafactor",
        about: "torch.optim.Adafactor (factored second moment for rank >= 2; eps1 = 0 means None)",
        defaults: &[("beta2_decay", -0.8), ("eps1", 0.0), ("eps2", 1e-3), ("d", 1.0), ("weight_decay", 0.0)],
        search: &[h("beta2_decay", -1.0, -0.5, Linear), h("eps2", 1e-5, 1e-1, Log)],
        build: adafactor::build,
    },
    Baseline {
        name: "muon",
        about: "torch.optim.Muon (Newton-Schulz orthogonalised momentum) on hidden matrices, AdamW at adamw_lr_ratio x lr on the rest (adjust_lr_fn 0 original, 1 match_rms_adamw, 2 spectral_unclamped; ns_bf16=1 is torch's bfloat16 arithmetic)",
        defaults: &[
            ("momentum", 0.95),
            ("nesterov", 1.0),
            ("weight_decay", 0.1),
            ("eps", 1e-7),
            ("ns_steps", 5.0),
            ("adjust_lr_fn", 0.0),
            ("ns_bf16", 0.0),
            ("adamw_lr_ratio", 0.1),
            ("adamw_beta1", 0.9),
            ("adamw_beta2", 0.999),
            ("adamw_eps", 1e-8),
            ("adamw_weight_decay", 1e-2),
        ],
        search: &[
            h("momentum", 0.8, 0.99, LogOneMinus),
            h("adamw_lr_ratio", 1e-3, 10.0, Log),
            h("weight_decay", 1e-4, 1.0, Log),
        ],
        build: muon::build,
    },
    Baseline {
        name: "schedulefree_adamw",
        about: "schedulefree.AdamWScheduleFree (gradients at y, evaluated at the averaged iterate x)",
        defaults: &[
            ("beta1", 0.9),
            ("beta2", 0.999),
            ("eps", 1e-8),
            ("weight_decay", 0.0),
            ("warmup_steps", 0.0),
            ("r", 0.0),
            ("weight_lr_power", 2.0),
        ],
        search: &[BETA1, BETA2, EPS],
        build: schedulefree_adamw::build,
    },
    Baseline {
        name: "soap",
        about: "pytorch_optimizer.SOAP (Adam in Shampoo's eigenbasis; shampoo_beta < 0 means beta2)",
        defaults: &[
            ("beta1", 0.95),
            ("beta2", 0.95),
            ("shampoo_beta", -1.0),
            ("weight_decay", 1e-2),
            ("precondition_frequency", 10.0),
            ("max_precondition_dim", 10000.0),
            ("precondition_1d", 0.0),
            ("correct_bias", 1.0),
            ("eps", 1e-8),
        ],
        search: &[BETA1, BETA2, EPS, h("weight_decay", 1e-5, 1e-1, Log)],
        build: soap::build,
    },
    Baseline {
        name: "ademamix",
        about: "pytorch_optimizer.AdEMAMix (Adam plus a slow EMA; t_alpha_beta3 = 0 means no warm-up)",
        defaults: &[
            ("beta1", 0.9),
            ("beta2", 0.999),
            ("beta3", 0.9999),
            ("alpha", 5.0),
            ("t_alpha_beta3", 0.0),
            ("weight_decay", 0.0),
            ("weight_decouple", 0.0),
            ("fixed_decay", 0.0),
            ("eps", 1e-8),
        ],
        search: &[BETA1, BETA2, h("beta3", 0.99, 0.99999, LogOneMinus), h("alpha", 1.0, 10.0, Linear)],
        build: ademamix::build,
    },
    Baseline {
        name: "prodigy",
        about: "prodigyopt.Prodigy (learning-rate-free Adam, lr 1.0 scales d; beta3 < 0 means sqrt(beta2), growth_rate 0 means inf)",
        defaults: &[
            ("beta1", 0.9),
            ("beta2", 0.999),
            ("beta3", -1.0),
            ("eps", 1e-8),
            ("weight_decay", 0.0),
            ("decouple", 1.0),
            ("use_bias_correction", 0.0),
            ("safeguard_warmup", 0.0),
            ("d0", 1e-6),
            ("d_coef", 1.0),
            ("growth_rate", 0.0),
        ],
        search: &[h("d_coef", 0.1, 10.0, Log), BETA1, BETA2],
        build: prodigy::build,
    },
];

fn find(name: &str) -> Option<&'static Baseline> {
    BASELINES.iter().find(|b| b.name == name)
}

/// Every baseline name accepted by [`build`], in a fixed order.
pub fn names() -> Vec<&'static str> {
    BASELINES.iter().map(|b| b.name).collect()
}

/// The options each baseline accepts, with their defaults (PyTorch's; booleans are 0/1).
/// `eps1 = 0` for adafactor means PyTorch's `None` (machine epsilon).
pub fn defaults(name: &str) -> Option<Vec<(&'static str, f64)>> {
    find(name).map(|b| b.defaults.to_vec())
}

/// The hyperparameters a tuner may search for this baseline (see [`Baseline::search`]).
pub fn search_space(name: &str) -> Option<&'static [Hyper]> {
    find(name).map(|b| b.search)
}

/// The baseline's one-line description, for docs and listings.
pub fn describe(name: &str) -> Option<&'static str> {
    find(name).map(|b| b.about)
}

/// Builds a baseline by lowercase name with PyTorch keyword options (`beta1`/`beta2` for
/// `betas`, 0/1 for booleans). Unknown names and unknown or invalid options are errors.
pub fn build(name: &str, opts: &[(String, f64)]) -> Result<Box<dyn Optimizer>, String> {
    let b = find(name).ok_or_else(|| format!("unknown optimizer '{name}'; known: {}", names().join(", ")))?;
    (b.build)(&Opts::new(name, b.defaults, opts)?)
}

/// Convenience for tests and the harness: run an optimizer on explicit gradients.
pub fn step_with(opt: &mut dyn Optimizer, params: &mut [Tensor], grads: &[Tensor], lr: f64, step: u64) {
    let oracle = frontier_core::NanOracle;
    let kinds = frontier_core::kinds_from_shapes(params);
    let ctx = StepContext::new(step, f64::NAN, lr, &oracle).with_kinds(&kinds);
    opt.step(params, grads, &ctx);
}

#[cfg(test)]
mod tests;
