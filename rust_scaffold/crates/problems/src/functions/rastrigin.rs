//! Rastrigin.

use super::vec_init;
use crate::Problem;
use frontier_core::{Rng, Tensor};
use std::f64::consts::PI;

/// Rastrigin: 10 n + sum x_i^2 - 10 cos(2 pi x_i). Minimum 0 at 0. Init U[-3, 3].
pub struct Rastrigin {
    n: usize,
    name: String,
}

impl Rastrigin {
    pub fn new(n: usize) -> Self {
        Rastrigin { n, name: format!("rastrigin-{n}") }
    }
}

impl Problem for Rastrigin {
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
        let mut f = 10.0 * self.n as f64;
        for (gi, &xi) in grads[0].data.iter_mut().zip(&params[0].data) {
            let w = 2.0 * PI * xi;
            f += xi * xi - 10.0 * w.cos();
            *gi = 2.0 * xi + 20.0 * PI * w.sin();
        }
        f
    }
    fn loss(&self, params: &[Tensor], _batch: Option<&[usize]>) -> f64 {
        let mut f = 10.0 * self.n as f64;
        for &xi in &params[0].data {
            f += xi * xi - 10.0 * (2.0 * PI * xi).cos();
        }
        f
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
