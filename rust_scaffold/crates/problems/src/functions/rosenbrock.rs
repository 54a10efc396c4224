//! Chained Rosenbrock.

use super::vec_init;
use crate::Problem;
use frontier_core::{Rng, Tensor};

/// Chained Rosenbrock: sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2. Minimum 0 at (1, ..., 1).
/// Init: (-1.2, 1, -1.2, 1, ...) + 0.1 N(0, 1).
pub struct Rosenbrock {
    n: usize,
    name: String,
}

impl Rosenbrock {
    pub fn new(n: usize) -> Self {
        Rosenbrock { n, name: format!("rosenbrock-{n}") }
    }
}

impl Problem for Rosenbrock {
    fn name(&self) -> &str {
        &self.name
    }
    fn shapes(&self) -> Vec<Vec<usize>> {
        vec![vec![self.n]]
    }
    fn init(&self, rng: &mut Rng) -> Vec<Tensor> {
        vec_init(self.n, rng, |i, r| if i % 2 == 0 { -1.2 } else { 1.0 } + 0.1 * r.normal())
    }
    fn loss_grad(&self, params: &[Tensor], _batch: Option<&[usize]>, grads: &mut [Tensor]) -> f64 {
        let x = &params[0].data;
        let g = &mut grads[0].data;
        g.fill(0.0);
        let mut f = 0.0;
        for i in 0..self.n - 1 {
            let a = x[i + 1] - x[i] * x[i];
            let b = 1.0 - x[i];
            f += 100.0 * a * a + b * b;
            g[i] += -400.0 * a * x[i] - 2.0 * b;
            g[i + 1] += 200.0 * a;
        }
        f
    }
    fn loss(&self, params: &[Tensor], _batch: Option<&[usize]>) -> f64 {
        let x = &params[0].data;
        let mut f = 0.0;
        for i in 0..self.n - 1 {
            let a = x[i + 1] - x[i] * x[i];
            let b = 1.0 - x[i];
            f += 100.0 * a * a + b * b;
        }
        f
    }
    fn optimum(&self) -> Option<f64> {
        Some(0.0)
    }
    fn minimizer(&self) -> Option<Vec<Tensor>> {
        Some(vec![Tensor::from_vec(&[self.n], vec![1.0; self.n])])
    }
    fn version(&self) -> u32 {
        1
    }
}
