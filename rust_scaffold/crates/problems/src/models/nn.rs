//! Building blocks of the neural-network workloads (transformer, grokking, CNN): row-major
//! matrix products written as cache-friendly `i-k-j` loops over contiguous rows, LayerNorm and
//! tanh-GELU with their backward passes, and a small deterministic generator for fixed data.
//!
//! Weights use PyTorch's layout: a linear layer's weight is `[out, in]`, so `y = x W^T + b`.

use frontier_core::{Rng, Tensor};

/// LayerNorm's epsilon (PyTorch's default).
pub(crate) const LN_EPS: f64 = 1e-5;

/// y += alpha * x
#[inline(always)]
pub(crate) fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    let n = y.len().min(x.len());
    let (x, y) = (&x[..n], &mut y[..n]);
    for i in 0..n {
        y[i] += alpha * x[i];
    }
}

/// Dot product with four partial sums (fixed order: deterministic, vectorizes).
#[inline(always)]
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        acc[0] += x[0] * y[0];
        acc[1] += x[1] * y[1];
        acc[2] += x[2] * y[2];
        acc[3] += x[3] * y[3];
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// `out[r] = dot(m[r, :], x)` for a row-major `m [out.len(), x.len()]`, each bit for bit as `dot`
/// computes it, two rows at a time: two independent chains of vector additions instead of one.
pub(crate) fn dot_rows(m: &[f64], x: &[f64], out: &mut [f64]) {
    let n = x.len();
    assert!(m.len() >= out.len() * n);
    let mut r = 0;
    while r + 2 <= out.len() {
        let (a, b) = (&m[r * n..(r + 1) * n], &m[(r + 1) * n..(r + 2) * n]);
        let (mut sa, mut sb) = ([0.0f64; 4], [0.0f64; 4]);
        let chunks = x.chunks_exact(4).zip(a.chunks_exact(4).zip(b.chunks_exact(4)));
        for (xs, (ya, yb)) in chunks {
            for l in 0..4 {
                sa[l] += ya[l] * xs[l];
                sb[l] += yb[l] * xs[l];
            }
        }
        let full = n - n % 4;
        let mut ta = (sa[0] + sa[1]) + (sa[2] + sa[3]);
        let mut tb = (sb[0] + sb[1]) + (sb[2] + sb[3]);
        for i in full..n {
            ta += a[i] * x[i];
            tb += b[i] * x[i];
        }
        out[r] = ta;
        out[r + 1] = tb;
        r += 2;
    }
    if r < out.len() {
        out[r] = dot(&m[r * n..(r + 1) * n], x);
    }
}

/// `wt [k, m]` = transpose of `w [m, k]`.
pub(crate) fn transpose_into(w: &[f64], m: usize, k: usize, wt: &mut [f64]) {
    debug_assert_eq!(w.len(), m * k);
    for o in 0..m {
        for i in 0..k {
            wt[i * m + o] = w[o * k + i];
        }
    }
}

/// How `gemm` starts its output: zero, the current contents, or a bias on every row.
#[derive(Clone, Copy)]
pub(crate) enum Init<'a> {
    Zero,
    Acc,
    Bias(&'a [f64]),
}

/// `C [rows, m] (=|+=) A B` with `A(i, kk) = a[i * ars + kk * acs]` (`rows x r`, any strides, so
/// a transpose is free) and `B [r, m]` row-major. Register-blocked: two rows of C by eight
/// columns stay in registers over the whole reduction; the order of every sum is fixed.
#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) fn gemm(a: &[f64], ars: usize, acs: usize, b: &[f64], c: &mut [f64], rows: usize, r: usize, m: usize, init: Init) {
    assert!(c.len() >= rows * m && b.len() >= r * m);
    if rows > 0 && r > 0 {
        assert!(a.len() > (rows - 1) * ars + (r - 1) * acs);
    }
    let start = |c: &[f64], i: usize, j: usize, out: &mut [f64]| match init {
        Init::Zero => out.fill(0.0),
        Init::Acc => out.copy_from_slice(&c[i * m + j..i * m + j + out.len()]),
        Init::Bias(bv) => out.copy_from_slice(&bv[j..j + out.len()]),
    };
    let mut i = 0;
    while i < rows {
        let two = i + 1 < rows;
        let (ra, rb) = (i * ars, if two { (i + 1) * ars } else { i * ars });
        let mut j = 0;
        while j + 8 <= m {
            let (mut c0, mut c1) = ([0.0f64; 8], [0.0f64; 8]);
            start(c, i, j, &mut c0);
            if two {
                start(c, i + 1, j, &mut c1);
            }
            for kk in 0..r {
                let (a0, a1) = (a[ra + kk * acs], a[rb + kk * acs]);
                let bb: &[f64; 8] = b[kk * m + j..kk * m + j + 8].try_into().unwrap();
                for q in 0..8 {
                    c0[q] += a0 * bb[q];
                    c1[q] += a1 * bb[q];
                }
            }
            c[i * m + j..i * m + j + 8].copy_from_slice(&c0);
            if two {
                c[(i + 1) * m + j..(i + 1) * m + j + 8].copy_from_slice(&c1);
            }
            j += 8;
        }
        while j < m {
            let (mut c0, mut c1) = ([0.0f64; 1], [0.0f64; 1]);
            start(c, i, j, &mut c0);
            if two {
                start(c, i + 1, j, &mut c1);
            }
            for kk in 0..r {
                let bv = b[kk * m + j];
                c0[0] += a[ra + kk * acs] * bv;
                c1[0] += a[rb + kk * acs] * bv;
            }
            c[i * m + j] = c0[0];
            if two {
                c[(i + 1) * m + j] = c1[0];
            }
            j += 1;
        }
        i += 2;
    }
}

/// `c [n, m] = a [n, k] b [k, m]` (+ `bias [m]` on every row, if given).
pub(crate) fn mm(a: &[f64], b: &[f64], bias: Option<&[f64]>, c: &mut [f64], n: usize, k: usize, m: usize) {
    gemm(a, k, 1, b, c, n, k, m, bias.map_or(Init::Zero, Init::Bias));
}

/// `c [n, m] += a [n, k] b [k, m]`.
pub(crate) fn mm_acc(a: &[f64], b: &[f64], c: &mut [f64], n: usize, k: usize, m: usize) {
    gemm(a, k, 1, b, c, n, k, m, Init::Acc);
}

/// `c [k, m] += a[n, k]^T b [n, m]` (a weight gradient: `dW += dy^T x`).
pub(crate) fn mm_tn_acc(a: &[f64], b: &[f64], c: &mut [f64], n: usize, k: usize, m: usize) {
    gemm(a, 1, k, b, c, k, n, m, Init::Acc);
}

/// `g [m] += sum of the rows of a [n, m]` (a bias gradient).
pub(crate) fn col_sum_acc(a: &[f64], g: &mut [f64], n: usize, m: usize) {
    for i in 0..n {
        axpy(1.0, &a[i * m..(i + 1) * m], g);
    }
}

/// LayerNorm of each row of `x [n, d]` with gain `w` and bias `b`: writes the normalized rows
/// `xhat`, the reciprocal standard deviations `rstd [n]` and the output `y`.
pub(crate) fn layer_norm(
    x: &[f64],
    w: &[f64],
    b: &[f64],
    xhat: &mut [f64],
    rstd: &mut [f64],
    y: &mut [f64],
    n: usize,
    d: usize,
) {
    let inv_d = 1.0 / d as f64;
    for i in 0..n {
        let xr = &x[i * d..(i + 1) * d];
        let mean = xr.iter().sum::<f64>() * inv_d;
        let var = xr.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() * inv_d;
        let r = 1.0 / (var + LN_EPS).sqrt();
        rstd[i] = r;
        let (hr, yr) = (&mut xhat[i * d..(i + 1) * d], &mut y[i * d..(i + 1) * d]);
        for j in 0..d {
            let h = (xr[j] - mean) * r;
            hr[j] = h;
            yr[j] = h * w[j] + b[j];
        }
    }
}

/// Backward of `layer_norm`: `dx += ...` from `dy`, and the gain and bias gradients.
#[allow(clippy::too_many_arguments)]
pub(crate) fn layer_norm_backward(
    dy: &[f64],
    xhat: &[f64],
    rstd: &[f64],
    w: &[f64],
    dx: &mut [f64],
    dw: &mut [f64],
    db: &mut [f64],
    n: usize,
    d: usize,
) {
    let inv_d = 1.0 / d as f64;
    for i in 0..n {
        let (dyr, hr) = (&dy[i * d..(i + 1) * d], &xhat[i * d..(i + 1) * d]);
        let (mut s1, mut s2) = (0.0, 0.0);
        for j in 0..d {
            let g = dyr[j] * w[j];
            s1 += g;
            s2 += g * hr[j];
            dw[j] += dyr[j] * hr[j];
            db[j] += dyr[j];
        }
        let (m1, m2, r) = (s1 * inv_d, s2 * inv_d, rstd[i]);
        let dxr = &mut dx[i * d..(i + 1) * d];
        for j in 0..d {
            dxr[j] += r * (dyr[j] * w[j] - m1 - hr[j] * m2);
        }
    }
}

/// e^x to within about 2 ulp, written so loops over it vectorize (glibc's `exp` does not):
/// x = k ln2 + r with |r| <= ln2 / 2 (Cody-Waite, two-part ln2), e^r by its Taylor series to
/// degree 13 (truncation < 1e-17 relative), times 2^k through the exponent bits. Inputs are
/// clamped to [-708, 709] (e^-708 ~ 3e-308 stands in for the underflow to 0).
#[inline(always)]
pub(crate) fn exp(x: f64) -> f64 {
    const LN2_HI: f64 = 6.931_471_803_691_238_164_90e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;
    const INV_LN2: f64 = std::f64::consts::LOG2_E;
    let x = x.clamp(-708.0, 709.0);
    let k = (x * INV_LN2).round();
    let r = (x - k * LN2_HI) - k * LN2_LO;
    // Horner, highest degree first: 1/13!, ..., 1/2!, 1, 1
    const C: [f64; 14] = [
        1.0 / 6_227_020_800.0,
        1.0 / 479_001_600.0,
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ];
    let mut p = C[0];
    for &c in &C[1..] {
        p = p * r + c;
    }
    // 2^k for k in [-1022, 1023]; split in two factors so k = -1022 - 1 (from rounding) is fine
    let ki = k as i64;
    let (k1, k2) = (ki / 2, ki - ki / 2);
    let s1 = f64::from_bits(((k1 + 1023) as u64) << 52);
    let s2 = f64::from_bits(((k2 + 1023) as u64) << 52);
    p * s1 * s2
}

/// tanh through one `exp` (absolute error ~1e-16; saturates cleanly to +-1).
#[inline(always)]
pub(crate) fn tanh(x: f64) -> f64 {
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
}

const GELU_C: f64 = 0.797_884_560_802_865_4; // sqrt(2 / pi)
const GELU_A: f64 = 0.044_715;

/// GELU, tanh form (PyTorch's `gelu(x, approximate="tanh")`), and the tanh it used.
#[inline(always)]
pub(crate) fn gelu(x: f64) -> (f64, f64) {
    let t = tanh(GELU_C * (x + GELU_A * x * x * x));
    (0.5 * x * (1.0 + t), t)
}

/// d gelu(x) / dx, given the tanh of the forward pass.
#[inline(always)]
pub(crate) fn gelu_grad(x: f64, t: f64) -> f64 {
    0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * GELU_A * x * x)
}

/// Softmax cross-entropy of one row of logits against `target`: returns the loss and, with
/// `grad`, replaces `z` by `softmax(z) - onehot(target)`.
#[inline]
pub(crate) fn cross_entropy(z: &mut [f64], target: usize, grad: bool) -> f64 {
    let zy = z[target];
    let lse = super::log_softmax_inplace(z, grad);
    if grad {
        z[target] -= 1.0;
    }
    lse - zy
}

/// PyTorch's default init of `nn.Linear`'s weight: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
pub(crate) fn linear_init(out: usize, inp: usize, rng: &mut Rng) -> Tensor {
    let bound = 1.0 / (inp as f64).sqrt();
    Tensor::from_vec(&[out, inp], (0..out * inp).map(|_| rng.uniform_range(-bound, bound)).collect())
}

/// N(0, std^2) entries (`nn.Embedding`'s default is std 1).
pub(crate) fn normal_init(shape: &[usize], std: f64, rng: &mut Rng) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec(shape, (0..n).map(|_| std * rng.normal()).collect())
}

pub(crate) fn filled(shape: &[usize], v: f64) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec(shape, vec![v; n])
}

/// SplitMix64: the generator of the workloads' fixed data (corpora, splits, grammars). Kept
/// here rather than borrowed from `frontier_core::Rng` so the data depends on this crate only
/// (its hash is pinned in the tests).
pub(crate) struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1) with 53 bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }
    /// Uniform integer in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
}

/// FNV-1a, 64 bits (pins generated data in the tests).
#[cfg(test)]
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// out[perm[r], :] = m[r, :] for a row-major matrix whose rows are indexed by tokens (an
/// embedding table or a head): the same table with its rows relabelled.
pub(crate) fn permute_rows(m: &Tensor, perm: &[usize]) -> Tensor {
    let rows = perm.len();
    let cols = m.data.len() / rows.max(1);
    assert_eq!(rows * cols, m.data.len());
    let mut out = vec![0.0; m.data.len()];
    for (r, &pr) in perm.iter().enumerate() {
        out[pr * cols..(pr + 1) * cols].copy_from_slice(&m.data[r * cols..(r + 1) * cols]);
    }
    Tensor::from_vec(&m.shape, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_a_few_ulp_of_libm() {
        let mut r = SplitMix(3);
        let mut worst = 0.0f64;
        for i in 0..200_000 {
            let x = if i % 2 == 0 { 40.0 * (r.uniform() - 0.5) } else { 1400.0 * (r.uniform() - 0.5) };
            let (a, b) = (exp(x), x.clamp(-708.0, 709.0).exp());
            worst = worst.max(((a - b) / b).abs());
        }
        assert!(worst < 5e-16, "worst relative error {worst:e}");
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(f64::NAN).is_nan());
        assert_eq!(tanh(1e3), 1.0);
        assert_eq!(tanh(-1e3), -1.0);
        assert!((tanh(0.3) - 0.3f64.tanh()).abs() < 1e-16);
    }

    #[test]
    fn gemm_matches_a_naive_product_for_every_layout_and_remainder() {
        let mut r = SplitMix(4);
        for (rows, k, m) in [(1, 1, 1), (3, 5, 7), (4, 3, 8), (5, 9, 17), (2, 16, 24)] {
            let a: Vec<f64> = (0..rows * k).map(|_| r.uniform() - 0.5).collect();
            let b: Vec<f64> = (0..k * m).map(|_| r.uniform() - 0.5).collect();
            let bias: Vec<f64> = (0..m).map(|_| r.uniform()).collect();
            let naive = |i: usize, j: usize| (0..k).map(|q| a[i * k + q] * b[q * m + j]).sum::<f64>();
            let mut c = vec![9.0; rows * m];
            mm(&a, &b, Some(&bias), &mut c, rows, k, m);
            let mut c2 = vec![1.0; rows * m];
            mm_acc(&a, &b, &mut c2, rows, k, m);
            for i in 0..rows {
                for j in 0..m {
                    assert!((c[i * m + j] - naive(i, j) - bias[j]).abs() < 1e-14);
                    assert!((c2[i * m + j] - naive(i, j) - 1.0).abs() < 1e-14);
                }
            }
            // a^T b with a [rows, k], b [rows, m] -> [k, m]
            let bt: Vec<f64> = (0..rows * m).map(|_| r.uniform() - 0.5).collect();
            let mut c3 = vec![0.5; k * m];
            mm_tn_acc(&a, &bt, &mut c3, rows, k, m);
            for q in 0..k {
                for j in 0..m {
                    let want = 0.5 + (0..rows).map(|i| a[i * k + q] * bt[i * m + j]).sum::<f64>();
                    assert!((c3[q * m + j] - want).abs() < 1e-14);
                }
            }
        }
    }
}
