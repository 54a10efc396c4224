//! torch.optim.Muon (Jordan et al. 2024) for hidden weight matrices, paired with torch.optim.AdamW
//! for every other tensor (vectors, embeddings, the output head), as Muon is used in practice.
//!
//! A tensor is a Muon tensor when the harness says it is a [`ParamKind::Matrix`]; a matrix of
//! rank > 2 is viewed as `shape[0] x rest`. AdamW's learning rate is `adamw_lr_ratio * lr`, so a
//! tuner searches both rates. Newton–Schulz runs in float64 by default; `ns_bf16=1` reproduces
//! PyTorch's bfloat16 Newton–Schulz bit for bit (float32 accumulation, round-to-nearest-even casts).

use super::adam;
use crate::ops::{ensure, lerp_slice};
use crate::Opts;
use frontier_core::{Optimizer, ParamKind, StepContext, Tensor};

/// Registry constructor. `adjust_lr_fn`: 0 = None/"original", 1 = "match_rms_adamw",
/// 2 = "spectral_unclamped".
pub(crate) fn build(o: &Opts) -> Result<Box<dyn Optimizer>, String> {
    let adjust = match o.get("adjust_lr_fn") {
        0.0 => Adjust::Original,
        1.0 => Adjust::MatchRmsAdamW,
        2.0 => Adjust::SpectralUnclamped,
        x => return Err(format!("option 'adjust_lr_fn' must be 0 (original), 1 (match_rms_adamw) or 2 (spectral_unclamped), got {x}")),
    };
    let ns_steps = o.get("ns_steps");
    if !(0.0..100.0).contains(&ns_steps) || ns_steps.fract() != 0.0 {
        return Err(format!("option 'ns_steps' must be a whole number below 100, got {ns_steps}"));
    }
    Ok(Box::new(Muon {
        momentum: o.get("momentum"),
        nesterov: o.flag("nesterov")?,
        ns_steps: ns_steps as usize,
        eps: o.get("eps"),
        weight_decay: o.get("weight_decay"),
        adjust,
        bf16: o.flag("ns_bf16")?,
        adamw: [o.get("adamw_beta1"), o.get("adamw_beta2"), o.get("adamw_eps"), o.get("adamw_weight_decay")],
        adamw_lr_ratio: o.get("adamw_lr_ratio"),
        t: 0,
        muon: Vec::new(),
        buf: Vec::new(),
        v: Vec::new(),
        ws: Workspace::default(),
    }))
}

/// Newton–Schulz coefficients (a, b, c) of torch.optim.Muon.
const NS_COEFFICIENTS: (f64, f64, f64) = (3.4445, -4.7750, 2.0315);

/// Muon's learning-rate factor for a (rows, cols) matrix.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Adjust {
    /// sqrt(max(1, rows/cols)) (Keller Jordan's).
    Original,
    /// 0.2 sqrt(max(rows, cols)) (Moonshot's: the update's RMS matches AdamW's).
    MatchRmsAdamW,
    /// sqrt(rows/cols).
    SpectralUnclamped,
}

impl Adjust {
    fn ratio(self, rows: usize, cols: usize) -> f64 {
        let (a, b) = (rows as f64, cols as f64);
        match self {
            Adjust::Original => (a / b).max(1.0).sqrt(),
            Adjust::MatchRmsAdamW => 0.2 * a.max(b).sqrt(),
            Adjust::SpectralUnclamped => (a / b).sqrt(),
        }
    }
}

/// Newton–Schulz buffers, sized on the first step (no allocation after it).
#[derive(Default)]
struct Workspace {
    u: Vec<f64>,
    x: Vec<f64>,
    gram: Vec<f64>,
    gram2: Vec<f64>,
    next: Vec<f64>,
    x32: Vec<f32>,
    gram32: Vec<f32>,
    gram2_32: Vec<f32>,
    next32: Vec<f32>,
}

impl Workspace {
    fn reserve(&mut self, n: usize, m: usize) {
        for v in [&mut self.u, &mut self.x, &mut self.next] {
            v.resize(v.len().max(n), 0.0);
        }
        for v in [&mut self.gram, &mut self.gram2] {
            v.resize(v.len().max(m * m), 0.0);
        }
        for v in [&mut self.x32, &mut self.next32] {
            v.resize(v.len().max(n), 0.0);
        }
        for v in [&mut self.gram32, &mut self.gram2_32] {
            v.resize(v.len().max(m * m), 0.0);
        }
    }
}

/// Muon for [`ParamKind::Matrix`] tensors, AdamW for the rest.
pub struct Muon {
    momentum: f64,
    nesterov: bool,
    ns_steps: usize,
    eps: f64,
    weight_decay: f64,
    adjust: Adjust,
    bf16: bool,
    /// AdamW's beta1, beta2, eps and weight decay.
    adamw: [f64; 4],
    adamw_lr_ratio: f64,
    /// AdamW's step count.
    t: u64,
    /// Whether each tensor is a Muon tensor (fixed at the first step).
    muon: Vec<bool>,
    /// Muon's momentum buffer, or AdamW's exp_avg.
    buf: Vec<Vec<f64>>,
    /// AdamW's exp_avg_sq (unused for Muon tensors).
    v: Vec<Vec<f64>>,
    ws: Workspace,
}

/// (rows, cols) of a Muon tensor: `shape[0] x rest`.
fn matrix_dims(t: &Tensor) -> (usize, usize) {
    let rows = t.shape.first().copied().unwrap_or(1).max(1);
    (rows, t.len() / rows)
}

impl Optimizer for Muon {
    fn name(&self) -> &str {
        "muon"
    }
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        if self.muon.is_empty() {
            self.muon = params
                .iter()
                .enumerate()
                .map(|(i, p)| ctx.kind(i, p) == ParamKind::Matrix && p.shape.len() >= 2 && !p.is_empty())
                .collect();
            for (p, &m) in params.iter().zip(&self.muon) {
                if m {
                    let (rows, cols) = matrix_dims(p);
                    self.ws.reserve(p.len(), rows.min(cols));
                }
            }
        }
        ensure(&mut self.buf, params, 0.0);
        ensure(&mut self.v, params, 0.0);
        let lr = ctx.lr;
        self.t += 1;
        let [b1, b2, aeps, awd] = self.adamw;
        let k = adam::Consts::new(lr * self.adamw_lr_ratio, self.t, b1, b2, aeps, awd);
        let adamw_step = adam::pick(false, awd != 0.0, k.small(), false);
        let mu = self.momentum;
        let shrink = 1.0 - lr * self.weight_decay; // Muon decays with the unadjusted lr
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            if !self.muon[i] {
                adamw_step(k, p.as_mut_slice(), g.as_slice(), &mut self.buf[i], &mut self.v[i], &mut []);
                continue;
            }
            let (rows, cols) = matrix_dims(p);
            let n = p.len();
            let buf = &mut self.buf[i];
            lerp_slice(buf, g.as_slice(), 1.0 - mu); // buf.lerp_(grad, 1 - momentum)
            let u = &mut self.ws.u[..n];
            u.copy_from_slice(g.as_slice());
            if self.nesterov {
                lerp_slice(u, buf, mu); // grad.lerp(buf, momentum)
            } else {
                u.copy_from_slice(buf);
            }
            if self.bf16 {
                newton_schulz_bf16(&mut self.ws, rows, cols, self.ns_steps, self.eps);
            } else {
                newton_schulz(&mut self.ws, rows, cols, self.ns_steps, self.eps);
            }
            let step = -(lr * self.adjust.ratio(rows, cols));
            for (pj, &oj) in p.as_mut_slice().iter_mut().zip(&self.ws.x[..n]) {
                *pj *= shrink; // param.mul_(1 - lr * weight_decay)
                *pj += step * oj; // param.add_(update, alpha=-adjusted_lr)
            }
        }
    }
}

/// Copies `u` (rows x cols) into `x`, transposed when rows > cols so that x is m x n with m <= n.
fn load<T: Copy>(u: &[T], x: &mut [T], rows: usize, cols: usize) -> (usize, usize) {
    if rows > cols {
        for r in 0..rows {
            for c in 0..cols {
                x[c * rows + r] = u[r * cols + c];
            }
        }
        (cols, rows)
    } else {
        x[..rows * cols].copy_from_slice(&u[..rows * cols]);
        (rows, cols)
    }
}

/// Float64 Newton–Schulz: `ws.u` (rows x cols) in, the orthogonalised `ws.x` (rows x cols) out.
fn newton_schulz(ws: &mut Workspace, rows: usize, cols: usize, steps: usize, eps: f64) {
    let (a, b, c) = NS_COEFFICIENTS;
    let (m, n) = load(&ws.u, &mut ws.next, rows, cols);
    let x = &mut ws.next[..m * n];
    let norm = x.iter().map(|v| v * v).sum::<f64>().sqrt();
    let denom = norm.max(eps); // X.norm().clamp(min=eps)
    for v in x.iter_mut() {
        *v /= denom;
    }
    let (gram, gram2) = (&mut ws.gram[..m * m], &mut ws.gram2[..m * m]);
    let mut out = std::mem::take(&mut ws.x);
    for _ in 0..steps {
        // A = X X^T
        for i in 0..m {
            for j in 0..m {
                let (xi, xj) = (&x[i * n..(i + 1) * n], &x[j * n..(j + 1) * n]);
                gram[i * m + j] = xi.iter().zip(xj).map(|(p, q)| p * q).sum();
            }
        }
        // B = b A + c A A
        for i in 0..m {
            for j in 0..m {
                let dot: f64 = (0..m).map(|l| gram[i * m + l] * gram[l * m + j]).sum();
                gram2[i * m + j] = b * gram[i * m + j] + c * dot;
            }
        }
        // X = a X + B X
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..m).map(|l| gram2[i * m + l] * x[l * n + j]).sum();
                out[i * n + j] = a * x[i * n + j] + dot;
            }
        }
        x.copy_from_slice(&out[..m * n]);
    }
    store(x, &mut out, rows, cols);
    ws.x = out;
}

/// Writes the m x n iterate back as rows x cols (transposing when it was transposed).
fn store<T: Copy>(x: &[T], out: &mut [T], rows: usize, cols: usize) {
    if rows > cols {
        for r in 0..rows {
            for c in 0..cols {
                out[r * cols + c] = x[c * rows + r];
            }
        }
    } else {
        out[..rows * cols].copy_from_slice(&x[..rows * cols]);
    }
}

/// Rounds a float32 to bfloat16 (round to nearest, ties to even), kept as a float32.
#[inline(always)]
fn bf16(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    let bits = x.to_bits();
    let rounded = bits.wrapping_add(0x7FFF + ((bits >> 16) & 1));
    f32::from_bits(rounded & 0xFFFF_0000)
}

/// PyTorch's bfloat16 Newton–Schulz on the CPU, emulated bit for bit: casts f64 -> f32 -> bf16;
/// the norm as a float32 sequential sum of squares and float32 sqrt; float32 quotients; each
/// matrix product a float32 dot in index order, `addmm` as `fma(beta, C, f32(alpha dot))`, every
/// result rounded to bf16.
fn newton_schulz_bf16(ws: &mut Workspace, rows: usize, cols: usize, steps: usize, eps: f64) {
    let (a, b, c) = NS_COEFFICIENTS;
    let (a, b, c) = (a as f32, b as f32, c as f32);
    let total = rows * cols;
    for (d, &s) in ws.next32[..total].iter_mut().zip(&ws.u[..total]) {
        *d = bf16(s as f32);
    }
    let (m, n) = load(&ws.next32, &mut ws.x32, rows, cols);
    let x = &mut ws.x32[..m * n];
    let mut sq = 0.0f32;
    for &v in x.iter() {
        sq += v * v;
    }
    let norm = bf16(sq.sqrt());
    let eps32 = bf16(eps as f32);
    let denom = if norm < eps32 { eps32 } else { norm }; // clamp(min=eps)
    for v in x.iter_mut() {
        *v = bf16(*v / denom);
    }
    let (gram, gram2, out) = (&mut ws.gram32[..m * m], &mut ws.gram2_32[..m * m], &mut ws.next32[..m * n]);
    for _ in 0..steps {
        for i in 0..m {
            for j in 0..m {
                let mut dot = 0.0f32;
                for l in 0..n {
                    dot += x[i * n + l] * x[j * n + l];
                }
                gram[i * m + j] = bf16(dot);
            }
        }
        for i in 0..m {
            for j in 0..m {
                let mut dot = 0.0f32;
                for l in 0..m {
                    dot += gram[i * m + l] * gram[l * m + j];
                }
                gram2[i * m + j] = bf16(b.mul_add(gram[i * m + j], c * dot));
            }
        }
        for i in 0..m {
            for j in 0..n {
                let mut dot = 0.0f32;
                for l in 0..m {
                    dot += gram2[i * m + l] * x[l * n + j];
                }
                out[i * n + j] = bf16(a.mul_add(x[i * n + j], dot));
            }
        }
        x.copy_from_slice(out);
    }
    let x = &ws.x32[..m * n];
    let mut o = std::mem::take(&mut ws.next32);
    store(x, &mut o, rows, cols);
    for (d, &s) in ws.x[..total].iter_mut().zip(&o[..total]) {
        *d = s as f64;
    }
    ws.next32 = o;
}
