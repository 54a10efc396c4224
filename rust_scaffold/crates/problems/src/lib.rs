//! frontier-problems: benchmark problems with exact gradients.
//!
//! A problem owns its fixed structure (rotations, datasets) built from a FIXED problem seed; the
//! harness's RUN seed only drives `init` (stream "init") and minibatch sampling (stream "batch").
//! `instance(name, key)` gives the problem in coordinates drawn from `key` (COCO/BBOB-style
//! instances: shift + rotation for functions and quadratics, feature and class permutations for
//! data problems); key 0 is the canonical problem. Every gradient is checked against central
//! finite differences in the tests.
//!
//! Layout: `registry.rs` (the one table of problems), `instance.rs` (shift + rotation wrapper),
//! `relabel.rs` (data instances), `functions/` and `quadratic/` (one file per family),
//! `models/` (one file per model), `data.rs` (embedded datasets).
#![forbid(unsafe_code)]

use frontier_core::{ParamKind, Rng, Tensor};

mod data;
mod functions;
mod instance;
mod models;
mod quadratic;
mod registry;
mod relabel;

pub use data::Dataset;
pub use instance::{haar_orthogonal, Rotated, SHIFT_BOX};
pub use models::{Grokking, ModOp, Transformer, TransformerConfig};
pub use registry::{all_names, by_name, entry, instance, Entry, PROBLEMS};
pub use relabel::Relabel;

/// A benchmark problem: a loss over a list of shaped tensors.
pub trait Problem: Send + Sync {
    /// The exact name used in plans, e.g. "rosenbrock-10".
    fn name(&self) -> &str;
    /// Total number of scalars.
    fn dim(&self) -> usize {
        self.shapes().iter().map(|s| s.iter().product::<usize>()).sum()
    }
    /// Shapes of the parameter tensors, in order.
    fn shapes(&self) -> Vec<Vec<usize>>;
    /// What each tensor is in the model (one per shape): hidden matrices, vectors (biases, norm
    /// gains, function variables), embeddings and the output head. By default the shape decides
    /// (rank >= 2 is a matrix); models with embeddings or a head say so.
    fn kinds(&self) -> Vec<ParamKind> {
        self.shapes().iter().map(|s| ParamKind::from_shape(s)).collect()
    }
    /// Starting point drawn from the run's "init" stream.
    fn init(&self, rng: &mut Rng) -> Vec<Tensor>;
    /// Loss at `params` on `batch` (indices into the training set, with repeats allowed; `None`
    /// = the whole training set, or the exact loss for problems without data); writes the
    /// gradient into `grads` (overwriting it).
    fn loss_grad(&self, params: &[Tensor], batch: Option<&[usize]>, grads: &mut [Tensor]) -> f64;
    /// Loss only.
    fn loss(&self, params: &[Tensor], batch: Option<&[usize]>) -> f64;
    /// `Some(n)` for minibatched problems: the harness samples `batch_size()` indices in [0, n).
    fn train_size(&self) -> Option<usize> {
        None
    }
    /// Minibatch size (0 for deterministic problems).
    fn batch_size(&self) -> usize {
        0
    }
    /// True for problems on a real dataset (they report accuracies).
    fn has_data(&self) -> bool {
        false
    }
    fn test_accuracy(&self, _params: &[Tensor]) -> Option<f64> {
        None
    }
    fn train_accuracy(&self, _params: &[Tensor]) -> Option<f64> {
        None
    }
    /// Known minimum of the (noise-free / full-batch) loss, if any.
    fn optimum(&self) -> Option<f64> {
        None
    }
    /// A point where the (noise-free / full-batch) loss attains `optimum`, if known exactly.
    /// Problems without data must have one: their instances are built around it.
    fn minimizer(&self) -> Option<Vec<Tensor>> {
        None
    }
    /// Bumped whenever the problem's definition, data or init changes.
    fn version(&self) -> u32;
}

/// Zero tensors with the given shapes.
pub fn tensors_from_shapes(shapes: &[Vec<usize>]) -> Vec<Tensor> {
    shapes.iter().map(|s| Tensor::new(s)).collect()
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod instance_tests;
