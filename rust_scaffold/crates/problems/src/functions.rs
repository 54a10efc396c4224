//! Classic test functions, one parameter tensor of shape [n]. Known minimum 0 for all of them
//! (Styblinski-Tang is shifted so that its minimum is 0).

use crate::Problem;
use frontier_core::{Rng, Tensor};
use std::f64::consts::{E, PI};

fn vec_init(n: usize, rng: &mut Rng, f: impl Fn(usize, &mut Rng) -> f64) -> Vec<Tensor> {
    let data = (0..n).map(|i| f(i, rng)).collect();
    vec![Tensor::from_vec(&[n], data)]
}

// ---------------------------------------------------------------------------------------------

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
    fn version(&self) -> u32 {
        1
    }
}

// ---------------------------------------------------------------------------------------------

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
    fn version(&self) -> u32 {
        1
    }
}

// ---------------------------------------------------------------------------------------------

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
    fn version(&self) -> u32 {
        1
    }
}

// ---------------------------------------------------------------------------------------------

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
    fn version(&self) -> u32 {
        1
    }
}

// ---------------------------------------------------------------------------------------------

/// Styblinski-Tang, shifted: 0.5 sum (x^4 - 16 x^2 + 5 x) + 39.166165703771415 n, so that the
/// minimum (at x_i = -2.903534...) is ~0 (within 1e-12). Init U[-3, 3].
pub struct StyblinskiTang {
    n: usize,
    name: String,
}

const ST_MIN_PER_DIM: f64 = 39.16616570377141;

impl StyblinskiTang {
    pub fn new(n: usize) -> Self {
        StyblinskiTang { n, name: format!("styblinski-tang-{n}") }
    }
}

impl Problem for StyblinskiTang {
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
        let mut f = 0.0;
        for (gi, &x) in grads[0].data.iter_mut().zip(&params[0].data) {
            let x2 = x * x;
            f += 0.5 * (x2 * x2 - 16.0 * x2 + 5.0 * x) + ST_MIN_PER_DIM;
            *gi = 2.0 * x2 * x - 16.0 * x + 2.5;
        }
        f
    }
    fn loss(&self, params: &[Tensor], _batch: Option<&[usize]>) -> f64 {
        let mut f = 0.0;
        for &x in &params[0].data {
            let x2 = x * x;
            f += 0.5 * (x2 * x2 - 16.0 * x2 + 5.0 * x) + ST_MIN_PER_DIM;
        }
        f
    }
    fn optimum(&self) -> Option<f64> {
        Some(0.0)
    }
    fn version(&self) -> u32 {
        1
    }
}
