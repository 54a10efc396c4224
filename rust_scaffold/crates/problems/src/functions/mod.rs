//! Classic test functions, one parameter tensor of shape [n], one file per family. Known minimum 0
//! for all of them (Styblinski-Tang is shifted so that its minimum is 0), at a known point that
//! each reports through `Problem::minimizer` (the instance wrapper moves it; see `instance.rs`).

use frontier_core::{Rng, Tensor};

mod ackley;
mod beale;
mod rastrigin;
mod rosenbrock;
mod styblinski_tang;

pub use ackley::Ackley;
pub use beale::Beale;
pub use rastrigin::Rastrigin;
pub use rosenbrock::Rosenbrock;
pub use styblinski_tang::StyblinskiTang;

fn vec_init(n: usize, rng: &mut Rng, f: impl Fn(usize, &mut Rng) -> f64) -> Vec<Tensor> {
    let data = (0..n).map(|i| f(i, rng)).collect();
    vec![Tensor::from_vec(&[n], data)]
}
