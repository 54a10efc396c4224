//! pytorch_optimizer.SOAP (Vyas et al. 2024): Adam in the eigenbasis of Shampoo's Kronecker
//! factors, the basis refreshed by one power iteration and a QR every `precondition_frequency`
//! steps. The eigen-decomposition (cyclic Jacobi) and the QR (Householder) are written here.

use crate::Opts;
use frontier_core::{Optimizer, StepContext, Tensor};

/// Registry constructor. `shampoo_beta < 0` means `None` (use beta2).
pub(crate) fn build(o: &Opts) -> Result<Box<dyn Optimizer>, String> {
    Ok(Box::new(Soap::from_opts(o)?))
}

impl Soap {
    fn from_opts(o: &Opts) -> Result<Soap, String> {
        let whole = |k: &str, min: f64| {
            let v = o.get(k);
            if v < min || v.fract() != 0.0 {
                Err(format!("option '{k}' must be a whole number >= {min}, got {v}"))
            } else {
                Ok(v as usize)
            }
        };
        let (b2, sb) = (o.get("beta2"), o.get("shampoo_beta"));
        Ok(Soap {
            beta1: o.get("beta1"),
            beta2: b2,
            shampoo_beta: if sb < 0.0 { b2 } else { sb },
            weight_decay: o.get("weight_decay"),
            precondition_frequency: whole("precondition_frequency", 1.0)?,
            max_precondition_dim: whole("max_precondition_dim", 1.0)?,
            precondition_1d: o.flag("precondition_1d")?,
            correct_bias: o.flag("correct_bias")?,
            eps: o.get("eps"),
            step: 0,
            state: Vec::new(),
            scratch: Scratch::default(),
        })
    }

    /// A SOAP built like `build("soap", opts)`, as its concrete type (for [`Soap::set_basis`]).
    pub fn with_options(opts: &[(String, f64)]) -> Result<Soap, String> {
        let b = crate::BASELINES.iter().find(|b| b.name == "soap").expect("soap is registered");
        Soap::from_opts(&Opts::new("soap", b.defaults, opts)?)
    }

    /// Overwrites the eigenbasis of dimension `dim` of tensor `tensor` with `q` (n x n, row-major,
    /// eigenvectors in columns), as after the step just taken. For reproducing a recorded run
    /// whose first eigenbasis is not unique (a degenerate eigenspace, where any basis is as right
    /// as LAPACK's): the reference's `soap_Q`. Errors if that dimension has no basis.
    pub fn set_basis(&mut self, tensor: usize, dim: usize, q: &[f64]) -> Result<(), String> {
        let st = self.state.get_mut(tensor).ok_or("no such tensor (or no step taken yet)")?;
        let slot = st.q.get_mut(dim).and_then(Option::as_mut).ok_or("that dimension is not preconditioned")?;
        if slot.len() != q.len() {
            return Err(format!("a basis of {} values, expected {}", q.len(), slot.len()));
        }
        slot.copy_from_slice(q);
        Ok(())
    }
}

/// One tensor's state.
struct TensorState {
    /// The dimensions the tensor is viewed with (a scalar has none).
    dims: Vec<usize>,
    /// Shampoo's factor per dimension (`None`: not preconditioned).
    gg: Vec<Option<Vec<f64>>>,
    /// Its eigenbasis, eigenvectors in columns by descending eigenvalue.
    q: Vec<Option<Vec<f64>>>,
    /// First moment, in the original basis.
    m: Vec<f64>,
    /// Second moment, in the rotated basis.
    v: Vec<f64>,
}

/// Buffers sized on the first step.
#[derive(Default)]
struct Scratch {
    a: Vec<f64>,
    b: Vec<f64>,
    mat: Vec<f64>,
    mat2: Vec<f64>,
    est: Vec<f64>,
    order: Vec<usize>,
}

/// pytorch_optimizer.SOAP (merge_dims=False, channels_first).
pub struct Soap {
    beta1: f64,
    beta2: f64,
    shampoo_beta: f64,
    weight_decay: f64,
    precondition_frequency: usize,
    max_precondition_dim: usize,
    precondition_1d: bool,
    correct_bias: bool,
    eps: f64,
    step: u64,
    state: Vec<TensorState>,
    scratch: Scratch,
}

/// `out[pre, i, post] = sum_j src[pre, j, post] M(j, i)` along dimension `d` of `dims`, with
/// `M(j, i) = mat[j, i]` (`forward`: multiplies by Q^T) or `mat[i, j]` (backward: by Q).
fn mode_product(src: &[f64], dst: &mut [f64], dims: &[usize], d: usize, mat: &[f64], forward: bool) {
    let n = dims[d];
    let post: usize = dims[d + 1..].iter().product();
    let pre: usize = dims[..d].iter().product();
    for a in 0..pre {
        let (s, o) = (&src[a * n * post..(a + 1) * n * post], &mut dst[a * n * post..(a + 1) * n * post]);
        for i in 0..n {
            for c in 0..post {
                let mut acc = 0.0;
                for j in 0..n {
                    let mji = if forward { mat[j * n + i] } else { mat[i * n + j] };
                    acc += s[j * post + c] * mji;
                }
                o[i * post + c] = acc;
            }
        }
    }
}

/// `x` rotated by every basis: forward (`Q^T` along each dimension) or backward (`Q`). The result
/// is in `x`; `tmp` is a buffer of the same length.
fn project(x: &mut [f64], tmp: &mut [f64], dims: &[usize], q: &[Option<Vec<f64>>], forward: bool) {
    for (d, qd) in q.iter().enumerate() {
        if let Some(qd) = qd {
            mode_product(x, tmp, dims, d, qd, forward);
            x.copy_from_slice(tmp);
        }
    }
}

/// `GG_d = sum over the other dimensions of G[.., a, ..] G[.., b, ..]` into `out` (n x n).
fn outer(g: &[f64], dims: &[usize], d: usize, out: &mut [f64]) {
    let n = dims[d];
    let post: usize = dims[d + 1..].iter().product();
    let pre: usize = dims[..d].iter().product();
    out[..n * n].fill(0.0);
    for a in 0..pre {
        let blk = &g[a * n * post..(a + 1) * n * post];
        for i in 0..n {
            for j in 0..n {
                let mut acc = 0.0;
                for c in 0..post {
                    acc += blk[i * post + c] * blk[j * post + c];
                }
                out[i * n + j] += acc;
            }
        }
    }
}

/// ATen's `lerp_` of a whole buffer towards `end` with weight `w`.
fn lerp_all(s: &mut [f64], end: &[f64], w: f64) {
    crate::ops::lerp_slice(s, end, w);
}

/// The eigenvectors of the symmetric `a` (n x n) by cyclic Jacobi, in the columns of the result,
/// ordered by descending eigenvalue (`torch.linalg.eigh` then `flip`).
pub fn eigh_desc(a: &[f64], n: usize) -> Vec<f64> {
    let mut a = a.to_vec();
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let total: f64 = a.iter().map(|x| x * x).sum();
    for _sweep in 0..100 {
        let off: f64 = (0..n).flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j))).map(|(i, j)| a[i * n + j] * a[i * n + j]).sum();
        if off <= total * 1e-34 || off == 0.0 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| a[j * n + j].total_cmp(&a[i * n + i]));
    let mut out = vec![0.0; n * n];
    for r in 0..n {
        for (c, &o) in order.iter().enumerate() {
            out[r * n + c] = v[r * n + o];
        }
    }
    out
}

/// The orthogonal factor Q of `p = QR` (n x n, Householder, as LAPACK's geqrf/orgqr up to the
/// signs of columns) written into `q`; `p` is overwritten.
pub fn qr_q(p: &mut [f64], q: &mut [f64], n: usize) {
    let mut vs = vec![0.0; n * n]; // Householder vectors, one per column (small: n <= max dim)
    for k in 0..n {
        let norm = (k..n).map(|i| p[i * n + k] * p[i * n + k]).sum::<f64>().sqrt();
        let v = &mut vs[k * n..(k + 1) * n];
        if norm == 0.0 {
            continue; // H = I
        }
        let x0 = p[k * n + k];
        let alpha = if x0 >= 0.0 { -norm } else { norm };
        for i in k..n {
            v[i] = p[i * n + k];
        }
        v[k] -= alpha;
        let vn = (k..n).map(|i| v[i] * v[i]).sum::<f64>().sqrt();
        if vn == 0.0 {
            v[k..].fill(0.0);
            continue;
        }
        for x in v[k..].iter_mut() {
            *x /= vn;
        }
        for j in k..n {
            let dot: f64 = (k..n).map(|i| v[i] * p[i * n + j]).sum();
            for i in k..n {
                p[i * n + j] -= 2.0 * v[i] * dot;
            }
        }
    }
    q[..n * n].fill(0.0);
    for i in 0..n {
        q[i * n + i] = 1.0;
    }
    for k in (0..n).rev() {
        let v = &vs[k * n..(k + 1) * n];
        for j in 0..n {
            let dot: f64 = (k..n).map(|i| v[i] * q[i * n + j]).sum();
            if dot != 0.0 {
                for i in k..n {
                    q[i * n + j] -= 2.0 * v[i] * dot;
                }
            }
        }
    }
}

impl Soap {
    fn init_state(&self, p: &Tensor) -> TensorState {
        let dims: Vec<usize> = if p.shape.is_empty() { Vec::new() } else { p.shape.clone() };
        let max = self.max_precondition_dim;
        let side = |n: usize| (n <= max).then(|| vec![0.0; n * n]);
        let gg: Vec<Option<Vec<f64>>> = if dims.len() == 1 {
            vec![if self.precondition_1d { side(dims[0]) } else { None }]
        } else {
            dims.iter().map(|&n| side(n)).collect()
        };
        let q = gg.iter().map(|g| g.as_ref().map(|g| vec![0.0; g.len()])).collect();
        TensorState { dims, gg, q, m: vec![0.0; p.len()], v: vec![0.0; p.len()] }
    }

    /// `GG_d <- lerp(GG_d, outer_d(G), 1 - shampoo_beta)` for every preconditioned dimension.
    fn update_factors(st: &mut TensorState, g: &[f64], sb: f64, mat: &mut [f64]) {
        for d in 0..st.gg.len() {
            if let Some(gg) = st.gg[d].as_mut() {
                let n = st.dims[d];
                outer(g, &st.dims, d, mat);
                lerp_all(gg, &mat[..n * n], 1.0 - sb);
            }
        }
    }

    /// One power iteration and a QR per basis, with v's entries permuted to follow the
    /// eigenvalue estimates (`get_orthogonal_matrix_qr`).
    fn refresh(st: &mut TensorState, sc: &mut Scratch) {
        for d in 0..st.gg.len() {
            let (Some(gg), Some(q)) = (st.gg[d].as_ref(), st.q[d].as_mut()) else { continue };
            let n = st.dims[d];
            let p0 = &mut sc.mat[..n * n];
            for i in 0..n {
                for j in 0..n {
                    p0[i * n + j] = (0..n).map(|l| gg[i * n + l] * q[l * n + j]).sum();
                }
            }
            let est = &mut sc.est[..n];
            for (i, e) in est.iter_mut().enumerate() {
                *e = (0..n).map(|a| q[a * n + i] * p0[a * n + i]).sum();
            }
            let order = &mut sc.order[..n];
            for (i, o) in order.iter_mut().enumerate() {
                *o = i;
            }
            order.sort_by(|&i, &j| est[j].total_cmp(&est[i]));
            // exp_avg_sq.index_select(d, order)
            let post: usize = st.dims[d + 1..].iter().product();
            let pre: usize = st.dims[..d].iter().product();
            let tmp = &mut sc.a[..st.v.len()];
            for a in 0..pre {
                for (i, &o) in order.iter().enumerate() {
                    let (dst, src) = ((a * n + i) * post, (a * n + o) * post);
                    tmp[dst..dst + post].copy_from_slice(&st.v[src..src + post]);
                }
            }
            st.v.copy_from_slice(tmp);
            let p = &mut sc.mat2[..n * n];
            for i in 0..n {
                for (c, &o) in order.iter().enumerate() {
                    p[i * n + c] = p0[i * n + o];
                }
            }
            qr_q(p, q, n);
        }
    }
}

impl Optimizer for Soap {
    fn name(&self) -> &str {
        "soap"
    }
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        self.step += 1;
        let sb = self.shampoo_beta;
        if self.state.is_empty() {
            // Step 1 builds the state and does not move the parameters.
            self.state = params.iter().map(|p| self.init_state(p)).collect();
            let len = params.iter().map(Tensor::len).max().unwrap_or(0);
            let side = self.state.iter().flat_map(|s| s.dims.iter().copied()).max().unwrap_or(0);
            let sc = &mut self.scratch;
            sc.a = vec![0.0; len];
            sc.b = vec![0.0; len];
            sc.mat = vec![0.0; side * side];
            sc.mat2 = vec![0.0; side * side];
            sc.est = vec![0.0; side];
            sc.order = vec![0; side];
            for (st, g) in self.state.iter_mut().zip(grads) {
                Soap::update_factors(st, g.as_slice(), sb, &mut sc.mat);
                for d in 0..st.gg.len() {
                    if let (Some(gg), Some(q)) = (st.gg[d].as_ref(), st.q[d].as_mut()) {
                        let n = st.dims[d];
                        let mut a = gg.clone();
                        for i in 0..n {
                            a[i * n + i] += 1e-30; // m + 1e-30 * eye
                        }
                        q.copy_from_slice(&eigh_desc(&a, n));
                    }
                }
            }
            return;
        }
        assert_eq!(self.state.len(), params.len(), "the number of parameter tensors changed between steps");
        let t = (self.step - 1) as f64;
        let (b1, b2, lr, wd) = (self.beta1, self.beta2, ctx.lr, self.weight_decay);
        let step_size =
            if self.correct_bias { lr * ((1.0 - b2.powf(t)).sqrt() / (1.0 - b1.powf(t))) } else { lr };
        let refresh = (self.step - 1).is_multiple_of(self.precondition_frequency as u64);
        let sc = &mut self.scratch;
        for ((st, p), g) in self.state.iter_mut().zip(params.iter_mut()).zip(grads) {
            let n = p.len();
            let g = g.as_slice();
            // grad_projected = project(grad)
            let gp = &mut sc.b[..n];
            gp.copy_from_slice(g);
            project(gp, &mut sc.a[..n], &st.dims, &st.q, true);
            lerp_all(&mut st.m, g, 1.0 - b1);
            let w = 1.0 - b2;
            for x in gp.iter_mut() {
                *x *= *x;
            }
            lerp_all(&mut st.v, gp, w);
            // exp_avg_projected / (sqrt(v) + eps), projected back
            let u = &mut sc.b[..n];
            u.copy_from_slice(&st.m);
            project(u, &mut sc.a[..n], &st.dims, &st.q, true);
            for (x, &vj) in u.iter_mut().zip(&st.v) {
                *x /= vj.sqrt() + self.eps;
            }
            project(u, &mut sc.a[..n], &st.dims, &st.q, false);
            let p = p.as_mut_slice();
            for (pj, &x) in p.iter_mut().zip(u.iter()) {
                *pj += -step_size * x; // p.add_(norm_grad, alpha=-step_size)
            }
            if wd != 0.0 {
                let shrink = 1.0 - wd * lr;
                for pj in p.iter_mut() {
                    *pj *= shrink; // decoupled weight decay after the update
                }
            }
            Soap::update_factors(st, g, self.shampoo_beta, &mut sc.mat);
            if refresh {
                Soap::refresh(st, sc);
            }
        }
    }
}
