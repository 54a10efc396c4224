//! frontier-problems: benchmark problems with exact gradients.
//!
//! A problem owns its fixed structure (rotations, datasets) built from a FIXED problem seed; the
//! harness's RUN seed only drives `init` (stream "init") and minibatch sampling (stream "batch").
//! Every gradient is checked against central finite differences in the tests below.
#![forbid(unsafe_code)]

use frontier_core::{Rng, Tensor};

mod data;
mod functions;
mod models;
mod quadratic;

pub use data::Dataset;

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
    /// Bumped whenever the problem's definition, data or init changes.
    fn version(&self) -> u32;
}

/// Every problem name, in a fixed order.
pub fn all_names() -> Vec<String> {
    [
        "rosenbrock-2",
        "rosenbrock-10",
        "rosenbrock-50",
        "rastrigin-10",
        "ackley-10",
        "beale-2",
        "styblinski-tang-10",
        "quadratic-ill-50",
        "quadratic-ill-50-k1e5",
        "noisy-quadratic-50",
        "logreg-breast-cancer",
        "softmax-digits",
        "mlp-digits",
        "mlp-wine",
        "softmax-mnist1d",
        "mlp-mnist1d",
        // Variants in other dimensions, rotations and datasets, for the holdout suite.
        "rosenbrock-30",
        "rastrigin-20",
        "ackley-30",
        "styblinski-tang-20",
        "quadratic-ill-100-k1e4",
        "noisy-quadratic-100",
        "softmax-wine",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Builds a problem by its exact name. Datasets are parsed once per process.
pub fn by_name(name: &str) -> Option<Box<dyn Problem>> {
    let p: Box<dyn Problem> = match name {
        "rosenbrock-2" => Box::new(functions::Rosenbrock::new(2)),
        "rosenbrock-10" => Box::new(functions::Rosenbrock::new(10)),
        "rosenbrock-50" => Box::new(functions::Rosenbrock::new(50)),
        "rastrigin-10" => Box::new(functions::Rastrigin::new(10)),
        "ackley-10" => Box::new(functions::Ackley::new(10)),
        "beale-2" => Box::new(functions::Beale::new()),
        "styblinski-tang-10" => Box::new(functions::StyblinskiTang::new(10)),
        "quadratic-ill-50" => Box::new(quadratic::IllQuadratic::new(name, 50, 1e3)),
        "quadratic-ill-50-k1e5" => Box::new(quadratic::IllQuadratic::new(name, 50, 1e5)),
        "noisy-quadratic-50" => Box::new(quadratic::NoisyQuadratic::new(name, 50)),
        "logreg-breast-cancer" => Box::new(models::LogReg::new(name, data::breast_cancer(), 32)),
        "softmax-digits" => Box::new(models::Softmax::new(name, data::digits(), 64)),
        "mlp-digits" => Box::new(models::Mlp::new(name, data::digits(), 32, 32)),
        "mlp-wine" => Box::new(models::Mlp::new(name, data::wine(), 32, 32)),
        "softmax-mnist1d" => Box::new(models::Softmax::new(name, data::mnist1d(), 64)),
        "mlp-mnist1d" => Box::new(models::Mlp::new(name, data::mnist1d(), 32, 32)),
        "rosenbrock-30" => Box::new(functions::Rosenbrock::new(30)),
        "rastrigin-20" => Box::new(functions::Rastrigin::new(20)),
        "ackley-30" => Box::new(functions::Ackley::new(30)),
        "styblinski-tang-20" => Box::new(functions::StyblinskiTang::new(20)),
        "quadratic-ill-100-k1e4" => Box::new(quadratic::IllQuadratic::new(name, 100, 1e4)),
        "noisy-quadratic-100" => Box::new(quadratic::NoisyQuadratic::new(name, 100)),
        "softmax-wine" => Box::new(models::Softmax::new(name, data::wine(), 32)),
        _ => return None,
    };
    Some(p)
}

/// Zero tensors with the given shapes.
pub fn tensors_from_shapes(shapes: &[Vec<usize>]) -> Vec<Tensor> {
    shapes.iter().map(|s| Tensor::new(s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(ts: &[Tensor]) -> Vec<f64> {
        ts.iter().flat_map(|t| t.data.iter().copied()).collect()
    }

    fn set(ts: &mut [Tensor], k: usize, v: f64) {
        let mut k = k;
        for t in ts.iter_mut() {
            if k < t.len() {
                t.data[k] = v;
                return;
            }
            k -= t.len();
        }
        panic!("index out of range");
    }

    /// Central finite differences on up to 120 coordinates; norm-wise relative error.
    fn check_grad(p: &dyn Problem, params: &[Tensor], batch: Option<&[usize]>) -> f64 {
        let mut g = tensors_from_shapes(&p.shapes());
        let l = p.loss_grad(params, batch, &mut g);
        let l2 = p.loss(params, batch);
        assert!((l - l2).abs() <= 1e-12 * (1.0 + l.abs()), "{}: loss vs loss_grad {l} {l2}", p.name());
        let g = flat(&g);
        let x = flat(params);
        let n = x.len();
        let stride = n.div_ceil(120).max(1);
        let (mut num, mut den) = (0.0f64, 0.0f64);
        let mut work = params.to_vec();
        for k in (0..n).step_by(stride) {
            let h = 1e-5 * (1.0 + x[k].abs());
            set(&mut work, k, x[k] + h);
            let fp = p.loss(&work, batch);
            set(&mut work, k, x[k] - h);
            let fm = p.loss(&work, batch);
            set(&mut work, k, x[k]);
            let fd = (fp - fm) / (2.0 * h);
            num += (fd - g[k]).powi(2);
            den += g[k].powi(2).max(fd * fd);
        }
        (num / den.max(1e-300)).sqrt()
    }

    #[test]
    fn gradients_match_finite_differences() {
        for name in all_names() {
            let p = by_name(&name).unwrap();
            assert_eq!(p.name(), name);
            assert_eq!(p.dim(), p.shapes().iter().map(|s| s.iter().product::<usize>()).sum::<usize>());
            for seed in 0..3u64 {
                let mut rng = Rng::derive(seed, "init");
                let mut params = p.init(&mut rng);
                // move away from the init so biases etc. are non-zero
                let mut r = Rng::derive(seed, "perturb");
                for t in params.iter_mut() {
                    for v in t.data.iter_mut() {
                        *v += 0.3 * r.normal();
                    }
                }
                let err = check_grad(p.as_ref(), &params, None);
                assert!(err < 1e-5, "{name} seed {seed}: full gradient rel err {err:e}");
                if let Some(n) = p.train_size() {
                    let batch: Vec<usize> = (0..p.batch_size()).map(|_| r.below(n)).collect();
                    let err = check_grad(p.as_ref(), &params, Some(&batch));
                    assert!(err < 1e-5, "{name} seed {seed}: batch gradient rel err {err:e}");
                }
            }
        }
    }

    #[test]
    fn known_minima() {
        let cases: Vec<(&str, Vec<Vec<f64>>)> = vec![
            ("rosenbrock-10", vec![vec![1.0; 10]]),
            ("rastrigin-10", vec![vec![0.0; 10]]),
            ("ackley-10", vec![vec![0.0; 10]]),
            ("beale-2", vec![vec![3.0, 0.5]]),
            ("styblinski-tang-10", vec![vec![-2.903_534_027_771_177; 10]]),
            ("quadratic-ill-50", vec![vec![0.0; 50]]),
            ("noisy-quadratic-50", vec![vec![0.0; 50]]),
        ];
        for (name, x) in cases {
            let p = by_name(name).unwrap();
            let params: Vec<Tensor> = x.into_iter().zip(p.shapes()).map(|(d, s)| Tensor::from_vec(&s, d)).collect();
            let l = p.loss(&params, None);
            assert!(l.abs() < 1e-9, "{name}: loss at minimum {l}");
            assert_eq!(p.optimum(), Some(0.0));
        }
    }

    #[test]
    fn init_is_deterministic_and_seed_dependent() {
        for name in all_names() {
            let p = by_name(&name).unwrap();
            let a = p.init(&mut Rng::derive(5, "init"));
            let b = p.init(&mut Rng::derive(5, "init"));
            let c = p.init(&mut Rng::derive(6, "init"));
            assert_eq!(a, b, "{name}");
            assert_ne!(a, c, "{name}");
            let shapes: Vec<Vec<usize>> = a.iter().map(|t| t.shape.clone()).collect();
            assert_eq!(shapes, p.shapes(), "{name}");
            // the problem's fixed structure does not depend on construction
            let q = by_name(&name).unwrap();
            assert_eq!(p.loss(&a, None).to_bits(), q.loss(&a, None).to_bits(), "{name}");
        }
    }

    #[test]
    fn datasets_parse_and_are_standardized() {
        let (tr, te) = data::breast_cancer();
        assert_eq!((tr.n, tr.d, tr.classes), (455, 30, 2));
        assert_eq!(te.n, 114);
        for j in 0..tr.d {
            let m: f64 = (0..tr.n).map(|i| tr.x[i * tr.d + j]).sum::<f64>() / tr.n as f64;
            assert!(m.abs() < 1e-12);
        }
        let (tr, te) = data::digits();
        assert_eq!((tr.n, tr.d, tr.classes, te.n), (1437, 64, 10, 360));
        let (tr, te) = data::wine();
        assert_eq!((tr.n, tr.d, tr.classes, te.n), (142, 13, 3, 36));
    }

    #[test]
    fn noisy_quadratic_full_loss_is_noise_free() {
        let p = by_name("noisy-quadratic-50").unwrap();
        let x = p.init(&mut Rng::derive(1, "init"));
        let mut g = tensors_from_shapes(&p.shapes());
        let full = p.loss_grad(&x, None, &mut g);
        // the mean of the batch losses over every sample equals the noise-free loss
        let n = p.train_size().unwrap();
        let all: Vec<usize> = (0..n).collect();
        let via_batch = p.loss(&x, Some(&all));
        assert!((full - via_batch).abs() < 1e-9 * full.abs().max(1.0), "{full} {via_batch}");
    }
}
