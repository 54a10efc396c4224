//! Datasets shipped with the crate (see data/SOURCES.md), parsed once per process.
//!
//! Files hold raw features with the integer label last; features are standardized here with the
//! training split's mean and (population) standard deviation; a constant feature becomes 0.

use std::sync::{Arc, OnceLock};

/// A split of a dataset: `x` is n x d row-major (standardized), `y` the class of each row.
#[derive(Debug)]
pub struct Dataset {
    pub n: usize,
    pub d: usize,
    pub classes: usize,
    pub x: Vec<f64>,
    pub y: Vec<usize>,
}

/// (train, test). Shared: the canonical splits live for the process, an instance owns its
/// relabelled copy.
pub type Split = (Arc<Dataset>, Arc<Dataset>);

impl Dataset {
    /// The same rows with feature column `j` taken from column `feature[j]` and every label `y`
    /// replaced by `class[y]` (row order unchanged, so minibatch indices mean the same rows).
    pub fn relabelled(&self, feature: &[usize], class: &[usize]) -> Dataset {
        assert_eq!(feature.len(), self.d);
        assert_eq!(class.len(), self.classes);
        let mut x = Vec::with_capacity(self.x.len());
        for row in self.x.chunks_exact(self.d.max(1)) {
            x.extend(feature.iter().map(|&j| row[j]));
        }
        let y = self.y.iter().map(|&c| class[c]).collect();
        Dataset { n: self.n, d: self.d, classes: self.classes, x, y }
    }
}

fn parse(name: &str, text: &str, scale: f64) -> (usize, Vec<f64>, Vec<usize>) {
    let mut x = Vec::new();
    let mut y = Vec::new();
    let mut d = None;
    for (ln, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        let nd = fields.len() - 1;
        if *d.get_or_insert(nd) != nd {
            panic!("{name}: line {} has {} columns", ln + 1, fields.len());
        }
        for f in &fields[..nd] {
            let v: f64 = f.parse().unwrap_or_else(|_| panic!("{name}: line {}: bad number {f:?}", ln + 1));
            x.push(v / scale);
        }
        let label: usize = fields[nd].parse().unwrap_or_else(|_| panic!("{name}: line {}: bad label", ln + 1));
        y.push(label);
    }
    (d.unwrap_or(0), x, y)
}

fn load(name: &str, train: &str, test: &str, scale: f64) -> (Dataset, Dataset) {
    let (d, mut xtr, ytr) = parse(name, train, scale);
    let (d2, mut xte, yte) = parse(name, test, scale);
    assert_eq!(d, d2, "{name}: train and test widths differ");
    let ntr = ytr.len();
    let mut mean = vec![0.0; d];
    let mut sd = vec![0.0; d];
    for i in 0..ntr {
        for j in 0..d {
            mean[j] += xtr[i * d + j];
        }
    }
    for m in mean.iter_mut() {
        *m /= ntr as f64;
    }
    for i in 0..ntr {
        for j in 0..d {
            let c = xtr[i * d + j] - mean[j];
            sd[j] += c * c;
        }
    }
    for s in sd.iter_mut() {
        *s = (*s / ntr as f64).sqrt();
        if *s == 0.0 {
            *s = 1.0;
        }
    }
    for x in [&mut xtr, &mut xte] {
        for (k, v) in x.iter_mut().enumerate() {
            let j = k % d;
            *v = (*v - mean[j]) / sd[j];
        }
    }
    let classes = ytr.iter().chain(&yte).copied().max().map_or(0, |m| m + 1);
    let mk = |x: Vec<f64>, y: Vec<usize>| Dataset { n: y.len(), d, classes, x, y };
    (mk(xtr, ytr), mk(xte, yte))
}

macro_rules! dataset {
    ($fn:ident, $name:literal, $train:literal, $test:literal, $scale:expr) => {
        pub fn $fn() -> Split {
            static CELL: OnceLock<Split> = OnceLock::new();
            let (a, b) = CELL.get_or_init(|| {
                let (a, b) = load($name, include_str!($train), include_str!($test), $scale);
                (Arc::new(a), Arc::new(b))
            });
            (Arc::clone(a), Arc::clone(b))
        }
    };
}

dataset!(breast_cancer, "breast_cancer", "../data/breast_cancer_train.csv", "../data/breast_cancer_test.csv", 1.0);
// digits: pixels 0..16 scaled to [0, 1], then standardized
dataset!(digits, "digits", "../data/digits_train.csv", "../data/digits_test.csv", 16.0);
dataset!(wine, "wine", "../data/wine_train.csv", "../data/wine_test.csv", 1.0);
// MNIST-1D, generated locally by the mnist1d package (see data/SOURCES.md for its pinned hash)
dataset!(mnist1d, "mnist1d", "../data/mnist1d_train.csv", "../data/mnist1d_test.csv", 1.0);
