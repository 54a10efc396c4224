//! The one table of problems. `all_names`, `by_name` and `instance` read it; adding a problem is
//! one entry here (plus its file and test).

use crate::data::{self, Split};
use crate::functions::{Ackley, Beale, Rastrigin, Rosenbrock, StyblinskiTang};
use crate::instance::Rotated;
use crate::models::{Cnn, DataModel, Grammar, Grokking, LogReg, Mlp, ModOp, Softmax, Transformer};
use crate::quadratic::{IllQuadratic, NoisyQuadratic};
use crate::relabel::DataInstance;
use crate::Problem;

/// How a problem is built, which also says how its instances are made.
pub(crate) enum Build {
    /// No data; must report a `minimizer`. Instances are shifted and rotated (`instance.rs`).
    Function(fn(&str) -> Box<dyn Problem>),
    /// A model on a dataset. Instances relabel features and classes (`relabel.rs`).
    Data { data: fn() -> Split, model: fn(&str, Split) -> Box<dyn DataModel> },
    /// A problem that builds its own instance from the key (a relabelling that keeps its
    /// structure: token ids, residues, image symmetries); key 0 is the canonical problem.
    Keyed(fn(&str, u64) -> Box<dyn Problem>),
}

/// One registered problem.
pub struct Entry {
    /// The exact name used in plans.
    pub name: &'static str,
    /// The problem family (one source file per family).
    pub family: &'static str,
    /// Empty, or a note on where the problem is used (e.g. "holdout variant").
    pub note: &'static str,
    pub(crate) build: Build,
}

const HOLDOUT: &str = "holdout variant (other dimension, rotation or dataset)";

macro_rules! f {
    ($name:literal, $family:literal, $note:expr, $ctor:expr) => {
        Entry { name: $name, family: $family, note: $note, build: Build::Function($ctor) }
    };
}
macro_rules! k {
    ($name:literal, $family:literal, $note:expr, $ctor:expr) => {
        Entry { name: $name, family: $family, note: $note, build: Build::Keyed($ctor) }
    };
}
macro_rules! d {
    ($name:literal, $family:literal, $note:expr, $data:path, $model:expr) => {
        Entry { name: $name, family: $family, note: $note, build: Build::Data { data: $data, model: $model } }
    };
}

/// Every problem, in the fixed order `all_names` lists them.
pub static PROBLEMS: &[Entry] = &[
    f!("rosenbrock-2", "rosenbrock", "", |_| Box::new(Rosenbrock::new(2))),
    f!("rosenbrock-10", "rosenbrock", "", |_| Box::new(Rosenbrock::new(10))),
    f!("rosenbrock-50", "rosenbrock", "", |_| Box::new(Rosenbrock::new(50))),
    f!("rastrigin-10", "rastrigin", "", |_| Box::new(Rastrigin::new(10))),
    f!("ackley-10", "ackley", "", |_| Box::new(Ackley::new(10))),
    f!("beale-2", "beale", "", |_| Box::new(Beale::new())),
    f!("styblinski-tang-10", "styblinski-tang", "", |_| Box::new(StyblinskiTang::new(10))),
    f!("quadratic-ill-50", "quadratic-ill", "", |n| Box::new(IllQuadratic::new(n, 50, 1e3))),
    f!("quadratic-ill-50-k1e5", "quadratic-ill", "", |n| Box::new(IllQuadratic::new(n, 50, 1e5))),
    f!("noisy-quadratic-50", "noisy-quadratic", "", |n| Box::new(NoisyQuadratic::new(n, 50))),
    d!("logreg-breast-cancer", "logreg", "", data::breast_cancer, |n, s| Box::new(LogReg::new(n, s, 32))),
    d!("softmax-digits", "softmax", "", data::digits, |n, s| Box::new(Softmax::new(n, s, 64))),
    d!("mlp-digits", "mlp", "", data::digits, |n, s| Box::new(Mlp::new(n, s, 32, 32))),
    d!("mlp-wine", "mlp", "", data::wine, |n, s| Box::new(Mlp::new(n, s, 32, 32))),
    d!("softmax-mnist1d", "softmax", HOLDOUT, data::mnist1d, |n, s| Box::new(Softmax::new(n, s, 64))),
    d!("mlp-mnist1d", "mlp", "", data::mnist1d, |n, s| Box::new(Mlp::new(n, s, 32, 32))),
    k!("transformer-grammar", "transformer", "", |n, key| Box::new(Transformer::on_grammar(
        n, key, Grammar { letters: 8, kinds: 4, seed: 0x5EED_0001 }, 16, 16, 2, 2, 2048, 256, 16))),
    k!("grokking-mod-add-31", "grokking", "", |n, key| Box::new(Grokking::new(
        n, key, 31, ModOp::Add, 0.49, 0x6A0C_0031, 16, 32, 1e-3, 0))),
    k!("cnn-digits", "cnn", "", |n, key| Box::new(Cnn::new(n, key, data::digits(), 8, 32))),
    // Variants in other dimensions, rotations and datasets, for the holdout suite.
    f!("rosenbrock-30", "rosenbrock", HOLDOUT, |_| Box::new(Rosenbrock::new(30))),
    f!("rastrigin-20", "rastrigin", HOLDOUT, |_| Box::new(Rastrigin::new(20))),
    f!("ackley-30", "ackley", HOLDOUT, |_| Box::new(Ackley::new(30))),
    f!("styblinski-tang-20", "styblinski-tang", HOLDOUT, |_| Box::new(StyblinskiTang::new(20))),
    f!("quadratic-ill-100-k1e4", "quadratic-ill", HOLDOUT, |n| Box::new(IllQuadratic::new(n, 100, 1e4))),
    f!("noisy-quadratic-100", "noisy-quadratic", HOLDOUT, |n| Box::new(NoisyQuadratic::new(n, 100))),
    d!("softmax-wine", "softmax", HOLDOUT, data::wine, |n, s| Box::new(Softmax::new(n, s, 32))),
    k!("transformer-grammar-d24", "transformer", HOLDOUT, |n, key| Box::new(Transformer::on_grammar(
        n, key, Grammar { letters: 10, kinds: 3, seed: 0x5EED_0002 }, 20, 24, 2, 1, 2048, 256, 16))),
    k!("grokking-mod-sub-37", "grokking", HOLDOUT, |n, key| Box::new(Grokking::new(
        n, key, 37, ModOp::Sub, 0.49, 0x6A0C_0037, 16, 32, 1e-3, 0))),
    k!("cnn-digits-c4", "cnn", HOLDOUT, |n, key| Box::new(Cnn::new(n, key, data::digits(), 4, 32))),
];

/// The registry entry for `name`.
pub fn entry(name: &str) -> Option<&'static Entry> {
    PROBLEMS.iter().find(|e| e.name == name)
}

/// Every problem name, in a fixed order.
pub fn all_names() -> Vec<String> {
    PROBLEMS.iter().map(|e| e.name.to_string()).collect()
}

/// Builds the canonical problem by its exact name (= `instance(name, 0)`). Datasets are parsed
/// once per process.
pub fn by_name(name: &str) -> Option<Box<dyn Problem>> {
    instance(name, 0)
}

/// Instance `key` of problem `name`. `key == 0` is the canonical problem (bit-identical to
/// `by_name`); any other key gives a transformed problem with the same difficulty in coordinates
/// drawn deterministically from `(name, key)`: problems without data are shifted and rotated
/// (`instance.rs`), data problems get their features and classes permuted (`relabel.rs`). The
/// same `(name, key)` always gives the same problem, bit for bit.
pub fn instance(name: &str, key: u64) -> Option<Box<dyn Problem>> {
    let e = entry(name)?;
    Some(match (&e.build, key) {
        (Build::Function(ctor), 0) => ctor(e.name),
        (Build::Function(ctor), _) => {
            let inner = ctor(e.name);
            Box::new(Rotated::new(inner, key).unwrap_or_else(|| panic!("{name}: registered without a minimizer")))
        }
        (Build::Data { data, model }, 0) => model(e.name, data()),
        (Build::Data { data, model }, _) => Box::new(DataInstance::new(e.name, key, data(), *model)),
        (Build::Keyed(ctor), key) => ctor(e.name, key),
    })
}
