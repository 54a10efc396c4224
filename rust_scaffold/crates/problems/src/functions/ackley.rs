//! Ackley.

use super::vec_init;
use crate::Problem;
use frontier_core::{Rng, Tensor};
use std::f64::consts::{E, PI};

/// Ackley: -20 exp(-0.2 sqrt(mean x^2)) - exp(mean cos(2 pi x)) + 20 + e. Minimum 0 at 0.
/// Init U[-3, 3]. The gradient of the sqrt term is taken as 0 at x = 0.
pub struct Ackley {
    n: usize,
    name: String,
}

impl Ackley {
    pub fn new(n: usize) -> Self {
        Ackley { n, name: format!("ackley-{n}") }
    }
    fn sums(&self, x: &[f64]) -> (f64, f64) {
        let (mut s1, mut s2) = (0.0, 0.0);
        for &xi in x {
            s1 += xi * xi;
            s2 += (2.0 * PI * xi).cos();
        }
        (s1, s2)
    }
}

impl Problem for Ackley {
    fn name(&self) -> &str {
        &self.name
    }
    fn shapes(&self) -> Vec<Vec<usize>> {
        vec![vec![self.n]]
    }
    fn init(&self, rng: &mut Rng) -> Vec<Tensor> {
        vec_init(self.n, rng, |_, r| r.uniform_range(-3.0, 3.0))
    }
    fn loss_grad(&self, params: &[Tensor], _batch: Option<&[usize]>, grads: &mut [Tensor]) -> f64 {
        let x = &params[0].data;
        let n = self.n as f64;
        let (s1, s2) = self.sums(x);
        let r = (s1 / n).sqrt();
        let e1 = (-0.2 * r).exp();
        let e2 = (s2 / n).exp();
        let c1 = if r > 0.0 { 4.0 * e1 / (n * r) } else { 0.0 };
        let c2 = 2.0 * PI * e2 / n;
        for (gi, &xi) in grads[0].data.iter_mut().zip(x) {
            *gi = c1 * xi + c2 * (2.0 * PI * xi).sin();
        }
        -20.0 * e1 - e2 + 20.0 + E
    }
    fn loss(&self, params: &[Tensor], _batch: Option<&[usize]>) -> f64 {
        let n = self.n as f64;
        let (s1, s2) = self.sums(&params[0].data);
        -20.0 * (-0.2 * (s1 / n).sqrt()).exp() - (s2 / n).exp() + 20.0 + E
    }
    fn optimum(&self) -> Option<f64> {
        Some(0.0)
    }
    fn minimizer(&self) -> Option<Vec<Tensor>> {
        Some(vec![Tensor::from_vec(&[self.n], vec![0.0; self.n])])
    }
    fn version(&self) -> u32 {
        1
    }
}
