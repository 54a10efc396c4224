//! Beale.

use super::vec_init;
use crate::Problem;
use frontier_core::{Rng, Tensor};

/// Beale: (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2. Minimum 0 at (3, 0.5).
/// Init U[-2, 2]^2.
pub struct Beale;

impl Beale {
    pub fn new() -> Self {
        Beale
    }
    fn terms(x: f64, y: f64) -> (f64, f64, f64) {
        (1.5 - x + x * y, 2.25 - x + x * y * y, 2.625 - x + x * y * y * y)
    }
}

impl Problem for Beale {
    fn name(&self) -> &str {
        "beale-2"
    }
    fn shapes(&self) -> Vec<Vec<usize>> {
        vec![vec![2]]
    }
    fn init(&self, rng: &mut Rng) -> Vec<Tensor> {
        vec_init(2, rng, |_, r| r.uniform_range(-2.0, 2.0))
    }
    fn loss_grad(&self, params: &[Tensor], _batch: Option<&[usize]>, grads: &mut [Tensor]) -> f64 {
        let (x, y) = (params[0].data[0], params[0].data[1]);
        let (t1, t2, t3) = Beale::terms(x, y);
        let g = &mut grads[0].data;
        g[0] = 2.0 * t1 * (y - 1.0) + 2.0 * t2 * (y * y - 1.0) + 2.0 * t3 * (y * y * y - 1.0);
        g[1] = 2.0 * t1 * x + 4.0 * t2 * x * y + 6.0 * t3 * x * y * y;
        t1 * t1 + t2 * t2 + t3 * t3
    }
    fn loss(&self, params: &[Tensor], _batch: Option<&[usize]>) -> f64 {
        let (t1, t2, t3) = Beale::terms(params[0].data[0], params[0].data[1]);
        t1 * t1 + t2 * t2 + t3 * t3
    }
    fn optimum(&self) -> Option<f64> {
        Some(0.0)
    }
    fn minimizer(&self) -> Option<Vec<Tensor>> {
        Some(vec![Tensor::from_vec(&[2], vec![3.0, 0.5])])
    }
    fn version(&self) -> u32 {
        1
    }
}
