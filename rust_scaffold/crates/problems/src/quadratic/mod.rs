//! Quadratics: a rotated ill-conditioned one and a DeepOBS-style noisy one. Minimum 0 at 0.

mod ill;
mod noisy;

pub use ill::IllQuadratic;
pub use noisy::NoisyQuadratic;

/// Every problem's fixed structure comes from this seed and the problem's name.
pub(crate) const PROBLEM_SEED: u64 = 0x5EED_F00D_2025;
