//! Element-wise helpers shared by the rules: lazy state allocation and the few scalar ops whose
//! PyTorch semantics differ from Rust's (`lerp`'s two formulas, `sign(0)`, NaN in `maximum`).

use frontier_core::Tensor;

/// Lazily allocates one state buffer per tensor, filled with `value`.
pub(crate) fn ensure(state: &mut Vec<Vec<f64>>, params: &[Tensor], value: f64) {
    if state.is_empty() {
        *state = params.iter().map(|p| vec![value; p.len()]).collect();
    }
    assert_eq!(state.len(), params.len(), "the number of parameter tensors changed between steps");
}

/// ATen's scalar `lerp`: `self + w (end - self)` for |w| < 0.5, else `end - (end - self)(1 - w)`.
#[inline(always)]
pub(crate) fn lerp(s: f64, end: f64, w: f64) -> f64 {
    if w.abs() < 0.5 {
        s + w * (end - s)
    } else {
        end - (end - s) * (1.0 - w)
    }
}

/// `torch.sign` (0 for 0, NaN for NaN), unlike `f64::signum`.
#[inline(always)]
pub(crate) fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        x // 0.0, -0.0 or NaN
    }
}

/// `torch.maximum`: NaN propagates.
#[inline(always)]
pub(crate) fn maximum(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a > b {
        a
    } else {
        b
    }
}

/// ATen's `self.lerp_(end, w)` over a slice, the formula chosen once for the whole slice.
#[inline]
pub(crate) fn lerp_slice(s: &mut [f64], end: &[f64], w: f64) {
    if w.abs() < 0.5 {
        for (a, &b) in s.iter_mut().zip(end) {
            *a += w * (b - *a);
        }
    } else {
        let omw = 1.0 - w;
        for (a, &b) in s.iter_mut().zip(end) {
            *a = b - (b - *a) * omw;
        }
    }
}
