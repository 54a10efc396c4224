//! Datasets shipped with the crate (see data/SOURCES.md), parsed by build.rs at build time and
//! standardized once per process.
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

/// The values build.rs parsed from a split's CSV (see its format): (columns, x, labels).
fn decode(name: &str, bytes: &[u8]) -> (usize, Vec<f64>, Vec<usize>) {
    let word = |i: usize| u64::from_le_bytes(bytes[8 * i..8 * i + 8].try_into().expect("8 bytes"));
    let (n, d) = (word(0) as usize, word(1) as usize);
    assert_eq!(bytes.len(), 8 * (2 + n * d + n), "{name}: the built data has the wrong size");
    let x = (0..n * d).map(|i| f64::from_bits(word(2 + i))).collect();
    let y = (0..n).map(|i| word(2 + n * d + i) as usize).collect();
    (d, x, y)
}

fn load(name: &str, train: &[u8], test: &[u8]) -> (Dataset, Dataset) {
    let (d, mut xtr, ytr) = decode(name, train);
    let (d2, mut xte, yte) = decode(name, test);
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
    ($fn:ident, $name:literal) => {
        pub fn $fn() -> Split {
            static CELL: OnceLock<Split> = OnceLock::new();
            let (a, b) = CELL.get_or_init(|| {
                let train = include_bytes!(concat!(env!("OUT_DIR"), "/", $name, "_train.bin"));
                let test = include_bytes!(concat!(env!("OUT_DIR"), "/", $name, "_test.bin"));
                let (a, b) = load($name, train, test);
                (Arc::new(a), Arc::new(b))
            });
            (Arc::clone(a), Arc::clone(b))
        }
    };
}

// data/<name>_{train,test}.csv, parsed by build.rs (digits: pixels 0..16 scaled to [0, 1] there),
// then standardized here.
dataset!(breast_cancer, "breast_cancer");
dataset!(digits, "digits");
dataset!(wine, "wine");
// MNIST-1D, generated locally by the mnist1d package (see data/SOURCES.md for its pinned hash)
dataset!(mnist1d, "mnist1d");
