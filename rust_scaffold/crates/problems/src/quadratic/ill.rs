//! The rotated ill-conditioned quadratic.

use super::PROBLEM_SEED;
use crate::Problem;
use frontier_core::{Rng, Tensor};

/// 0.5 x^T A x with A = Q diag(eigs) Q^T, eigs log-spaced from 1 to `cond`, Q a fixed random
/// orthogonal matrix (modified Gram-Schmidt of a Gaussian matrix). Minimum 0 at 0. Init N(0, 1).
pub struct IllQuadratic {
    name: String,
    n: usize,
    a: Vec<f64>, // n x n, row-major, exactly symmetric
}

impl IllQuadratic {
    pub fn new(name: &str, n: usize, cond: f64) -> Self {
        let mut rng = Rng::derive(PROBLEM_SEED, name);
        // columns of q: q[k * n + i] = Q[i][k]
        let mut q: Vec<f64> = (0..n * n).map(|_| rng.normal()).collect();
        for k in 0..n {
            for j in 0..k {
                let mut d = 0.0;
                for i in 0..n {
                    d += q[k * n + i] * q[j * n + i];
                }
                for i in 0..n {
                    q[k * n + i] -= d * q[j * n + i];
                }
            }
            let mut s = 0.0;
            for i in 0..n {
                s += q[k * n + i] * q[k * n + i];
            }
            let inv = 1.0 / s.sqrt();
            for i in 0..n {
                q[k * n + i] *= inv;
            }
        }
        let eigs: Vec<f64> =
            (0..n).map(|k| if n == 1 { 1.0 } else { cond.powf(k as f64 / (n - 1) as f64) }).collect();
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in i..n {
                let mut s = 0.0;
                for k in 0..n {
                    s += q[k * n + i] * eigs[k] * q[k * n + j];
                }
                a[i * n + j] = s;
                a[j * n + i] = s;
            }
        }
        IllQuadratic { name: name.to_string(), n, a }
    }
}

impl Problem for IllQuadratic {
    fn name(&self) -> &str {
        &self.name
    }
    fn shapes(&self) -> Vec<Vec<usize>> {
        vec![vec![self.n]]
    }
    fn init(&self, rng: &mut Rng) -> Vec<Tensor> {
        vec![Tensor::from_vec(&[self.n], (0..self.n).map(|_| rng.normal()).collect())]
    }
    fn loss_grad(&self, params: &[Tensor], _batch: Option<&[usize]>, grads: &mut [Tensor]) -> f64 {
        let x = &params[0].data;
        let g = &mut grads[0].data;
        let mut f = 0.0;
        for (i, gi) in g.iter_mut().enumerate() {
            let row = &self.a[i * self.n..(i + 1) * self.n];
            let mut s = 0.0;
            for (aij, xj) in row.iter().zip(x) {
                s += aij * xj;
            }
            *gi = s;
            f += x[i] * s;
        }
        0.5 * f
    }
    fn loss(&self, params: &[Tensor], _batch: Option<&[usize]>) -> f64 {
        let x = &params[0].data;
        let mut f = 0.0;
        for i in 0..self.n {
            let row = &self.a[i * self.n..(i + 1) * self.n];
            let mut s = 0.0;
            for (aij, xj) in row.iter().zip(x) {
                s += aij * xj;
            }
            f += x[i] * s;
        }
        0.5 * f
    }
    fn optimum(&self) -> Option<f64> {
        Some(0.0)
    }
    fn minimizer(&self) -> Option<Vec<Tensor>> {
        Some(vec![Tensor::new(&[self.n])])
    }
    fn version(&self) -> u32 {
        1
    }
}
