//! Instances of the data problems: the same model on a relabelled copy of its dataset.
//!
//! Instance `key` of a data problem permutes the feature columns and the class ids, both drawn
//! from `Rng::derive(key, "<name>/features")` and `Rng::derive(key, "<name>/classes")` (uniform
//! permutations, Fisher-Yates; for two classes that is a swap with probability 1/2), applied to the
//! training and the test split alike (rows stay in order, so a minibatch index names the same row).
//! The standardization is per column, so permuting columns commutes with it.
//!
//! The problem is the same one in other coordinates: at `relabel_params(theta)` the instance has
//! the canonical loss, gradient (permuted) and accuracies at `theta`. Its init is the canonical
//! init mapped the same way, so the start is exactly as good as the canonical one while weights
//! trained on the canonical problem (or on another key) are of no use.

use crate::data::{Dataset, Split};
use crate::models::DataModel;
use crate::Problem;
use frontier_core::{Rng, Tensor};
use std::sync::Arc;

/// Instance feature column `j` is canonical column `feature[j]`; canonical class `c` is instance
/// class `class[c]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relabel {
    pub feature: Vec<usize>,
    pub class: Vec<usize>,
}

/// A uniform random permutation of 0..n (Fisher-Yates).
pub(crate) fn permutation(n: usize, rng: &mut Rng) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        p.swap(i, rng.below(i + 1));
    }
    p
}

impl Relabel {
    /// The relabelling of instance `key` of problem `name` on data with `d` features and
    /// `classes` classes.
    pub fn draw(name: &str, key: u64, d: usize, classes: usize) -> Relabel {
        let feature = permutation(d, &mut Rng::derive(key, &format!("{name}/features")));
        let class = permutation(classes, &mut Rng::derive(key, &format!("{name}/classes")));
        Relabel { feature, class }
    }

    pub fn apply(&self, (train, test): &Split) -> Split {
        let f = |ds: &Dataset| Arc::new(ds.relabelled(&self.feature, &self.class));
        (f(train), f(test))
    }
}

/// A data model trained on relabelled data; delegates everything but `init`.
pub(crate) struct DataInstance {
    model: Box<dyn DataModel>,
    relabel: Relabel,
}

impl DataInstance {
    /// `model` builds the problem on a split; `data` is the canonical split.
    pub fn new(name: &str, key: u64, data: Split, model: fn(&str, Split) -> Box<dyn DataModel>) -> DataInstance {
        let relabel = Relabel::draw(name, key, data.0.d, data.0.classes);
        DataInstance { model: model(name, relabel.apply(&data)), relabel }
    }

    #[cfg(test)]
    pub fn relabel(&self) -> &Relabel {
        &self.relabel
    }

    #[cfg(test)]
    pub fn model(&self) -> &dyn DataModel {
        self.model.as_ref()
    }
}

impl Problem for DataInstance {
    fn name(&self) -> &str {
        self.model.name()
    }
    fn shapes(&self) -> Vec<Vec<usize>> {
        self.model.shapes()
    }
    fn kinds(&self) -> Vec<frontier_core::ParamKind> {
        self.model.kinds()
    }
    /// The canonical init (same draws: the shapes are the same), mapped into the instance.
    fn init(&self, rng: &mut Rng) -> Vec<Tensor> {
        let p = self.model.init(rng);
        self.model.relabel_params(&p, &self.relabel)
    }
    fn loss_grad(&self, params: &[Tensor], batch: Option<&[usize]>, grads: &mut [Tensor]) -> f64 {
        self.model.loss_grad(params, batch, grads)
    }
    fn loss(&self, params: &[Tensor], batch: Option<&[usize]>) -> f64 {
        self.model.loss(params, batch)
    }
    fn train_size(&self) -> Option<usize> {
        self.model.train_size()
    }
    fn batch_size(&self) -> usize {
        self.model.batch_size()
    }
    fn has_data(&self) -> bool {
        self.model.has_data()
    }
    fn test_accuracy(&self, params: &[Tensor]) -> Option<f64> {
        self.model.test_accuracy(params)
    }
    fn train_accuracy(&self, params: &[Tensor]) -> Option<f64> {
        self.model.train_accuracy(params)
    }
    fn optimum(&self) -> Option<f64> {
        self.model.optimum()
    }
    fn minimizer(&self) -> Option<Vec<Tensor>> {
        None
    }
    fn version(&self) -> u32 {
        self.model.version()
    }
}
