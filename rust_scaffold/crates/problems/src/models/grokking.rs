//! Grokking: modular arithmetic `c = a op b (mod p)` learned from a fraction of the table by an
//! embedding + MLP, with a hand-written backward pass.
//!
//! Model: one embedding table `E [p, d]` for both operands, `x = [E[a], E[b]]`, a GELU (tanh
//! form) hidden layer `W1 [h, 2d]`, `b1 [h]` and a head `W2 [p, h]`, `b2 [p]` (PyTorch layout and
//! default init; embeddings N(0, 1)). Data: all `p^2` pairs, shuffled by a fixed seed; the first
//! `train_frac` of them train, the rest are held out (test accuracy = accuracy on the held-out
//! pairs). Full batch (deterministic) by default: `batch = 0`. Loss: mean cross-entropy plus
//! `wd / 2 * ||w||^2` over E, W1 and W2 (not the biases): the weight decay is in the loss, so the
//! objective itself prefers the generalising solution and every optimizer minimises the same
//! function (an optimizer's own decoupled decay adds to it).
//!
//! The registered settings (version 2: p = 31 or 37, 49 % of the pairs train, d = 16, h = 32,
//! wd = 1e-3) were chosen in PyTorch (the same model) so that AdamW at its default settings and
//! a tuned rate fits the training pairs within ~60 steps and reaches >= 0.95 held-out accuracy
//! several hundred steps later, within 1500: the grokking delay. Version 1 (40 %, d = 32, h = 64,
//! wd = 5e-3) plateaued near 0.8: the penalty held the model between memorising and the
//! general solution. Larger wd (2e-3) groks sooner but stalls below 0.9 on some seeds; smaller
//! train fractions or sizes stall too.
//!
//! Instance `key` relabels the residues by a permutation drawn from `Rng::derive(key,
//! "<name>/residues")`, in the data (operands and results) and in the init (rows of E, W2, b2):
//! the same problem in other coordinates (the model has no notion of a residue's value); key 0
//! is the identity.

use super::argmax;
use super::nn::{
    axpy, col_sum_acc, exp, gelu, gelu_grad, gemm, linear_init, mm, mm_acc, mm_tn_acc, normal_init, permute_rows,
    transpose_into, Init, SplitMix,
};
use crate::relabel::permutation;
use crate::Problem;
use frontier_core::{ParamKind, Rng, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModOp {
    Add,
    Sub,
}

const E: usize = 0;
const W1: usize = 1;
const B1: usize = 2;
const W2: usize = 3;
const B2: usize = 4;

/// Rows per forward/backward chunk.
const CHUNK: usize = 64;

/// Cross-entropy of one row of logits against `target` with the vectorizable `exp`; replaces `z`
/// by `softmax(z) - onehot(target)` (its gradient).
#[inline]
fn softmax_cross_entropy(z: &mut [f64], target: usize) -> f64 {
    let zy = z[target];
    let mx = z.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
    for v in z.iter_mut() {
        *v = exp(*v - mx);
    }
    let s: f64 = z.iter().sum();
    let inv = 1.0 / s;
    for v in z.iter_mut() {
        *v *= inv;
    }
    z[target] -= 1.0;
    mx + s.ln() - zy
}

pub struct Grokking {
    name: String,
    p: usize,
    d: usize,
    hidden: usize,
    wd: f64,
    /// (a, b, c) triples.
    train: Vec<[u16; 3]>,
    test: Vec<[u16; 3]>,
    batch: usize,
    perm: Option<Vec<usize>>,
}

impl Grokking {
    /// `a op b mod p` with `train_frac` of the pairs for training (split drawn from `seed`);
    /// instance `key` of problem `name`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        key: u64,
        p: usize,
        op: ModOp,
        train_frac: f64,
        seed: u64,
        d: usize,
        hidden: usize,
        wd: f64,
        batch: usize,
    ) -> Grokking {
        let mut pairs: Vec<[u16; 3]> = Vec::with_capacity(p * p);
        for a in 0..p {
            for b in 0..p {
                let c = match op {
                    ModOp::Add => (a + b) % p,
                    ModOp::Sub => (a + p - b) % p,
                };
                pairs.push([a as u16, b as u16, c as u16]);
            }
        }
        let mut rng = SplitMix(seed);
        for i in (1..pairs.len()).rev() {
            pairs.swap(i, rng.below(i + 1));
        }
        let perm = (key != 0).then(|| permutation(p, &mut Rng::derive(key, &format!("{name}/residues"))));
        if let Some(pm) = &perm {
            for t in pairs.iter_mut() {
                *t = t.map(|v| pm[v as usize] as u16);
            }
        }
        let n_train = ((p * p) as f64 * train_frac).round() as usize;
        let test = pairs.split_off(n_train);
        Grokking { name: name.to_string(), p, d, hidden, wd, train: pairs, test, batch, perm }
    }

    #[cfg(test)]
    pub(crate) fn perm(&self) -> Option<&[usize]> {
        self.perm.as_deref()
    }

    #[cfg(test)]
    pub(crate) fn split_sizes(&self) -> (usize, usize) {
        (self.train.len(), self.test.len())
    }

    #[cfg(test)]
    pub(crate) fn split(&self) -> (&[[u16; 3]], &[[u16; 3]]) {
        (&self.train, &self.test)
    }

    /// The canonical parameters in this instance's residues.
    pub(crate) fn relabel_params(params: &[Tensor], perm: &[usize]) -> Vec<Tensor> {
        let mut out = params.to_vec();
        out[E] = permute_rows(&params[E], perm);
        out[W2] = permute_rows(&params[W2], perm);
        out[B2] = permute_rows(&params[B2], perm);
        out
    }

    /// Mean cross-entropy over `rows` plus the weight decay; with `grads`, writes the gradient;
    /// with `hits`, counts correct argmax predictions. Public for the PyTorch fixture
    /// test (`tests/nn_fixtures.rs`).
    pub fn eval_rows(
        &self,
        params: &[Tensor],
        rows: &[[u16; 3]],
        mut grads: Option<&mut [Tensor]>,
        mut hits: Option<&mut usize>,
    ) -> f64 {
        let (p, d, h) = (self.p, self.d, self.hidden);
        let n = rows.len();
        let e = &params[E].data;
        // The first layer through the residues: W1 x = W1a E[a] + W1b E[b] with W1 = [W1a | W1b],
        // so U = E W1a^T and V = E W1b^T ([p, h] each) are computed once and each row gathers
        // U[a] + V[b] (p d h instead of n d h multiply-adds; n is up to p^2 / 2).
        let mut w1t = vec![0.0; 2 * d * h];
        transpose_into(&params[W1].data, h, 2 * d, &mut w1t);
        let (mut u, mut v) = (vec![0.0; p * h], vec![0.0; p * h]);
        mm(e, &w1t[..d * h], None, &mut u, p, d, h);
        mm(e, &w1t[d * h..], None, &mut v, p, d, h);
        // The head's logits are computed `pp` (p rounded up to 8) wide, so the product runs in
        // full 8-column blocks: W2^T and b2 padded with zeros; the pad columns are ignored.
        let pp = p.next_multiple_of(8);
        let mut w2t = vec![0.0; h * pp];
        for (o, row) in params[W2].data.chunks_exact(h).enumerate() {
            for (j, &w) in row.iter().enumerate() {
                w2t[j * pp + o] = w;
            }
        }
        let mut b2 = params[B2].data.clone();
        b2.resize(pp, 0.0);
        let b1 = &params[B1].data;
        let want = grads.is_some();
        if let Some(gr) = grads.as_deref_mut() {
            for t in gr.iter_mut() {
                t.data.fill(0.0);
            }
        }
        // dL/dU and dL/dV (unscaled), accumulated over the chunks
        let (mut du, mut dv) = if want { (vec![0.0; p * h], vec![0.0; p * h]) } else { (Vec::new(), Vec::new()) };
        // Rows in chunks: small scratch, reused (no page faults from fresh large buffers).
        let c = CHUNK.min(n.max(1));
        let (mut pre, mut g, mut th, mut z) = (vec![0.0; c * h], vec![0.0; c * h], vec![0.0; c * h], vec![0.0; c * pp]);
        let mut dh = if want { vec![0.0; c * h] } else { Vec::new() };
        let mut total = 0.0;
        for chunk in rows.chunks(CHUNK) {
            let m = chunk.len();
            for (i, r) in chunk.iter().enumerate() {
                let (a, b) = (r[0] as usize, r[1] as usize);
                let (ua, vb) = (&u[a * h..(a + 1) * h], &v[b * h..(b + 1) * h]);
                for (j, x) in pre[i * h..(i + 1) * h].iter_mut().enumerate() {
                    *x = ua[j] + vb[j] + b1[j];
                }
            }
            for ((gv, tv), &hv) in g[..m * h].iter_mut().zip(th[..m * h].iter_mut()).zip(&pre[..m * h]) {
                (*gv, *tv) = gelu(hv);
            }
            mm(&g, &w2t, Some(&b2), &mut z, m, h, pp);
            for (i, r) in chunk.iter().enumerate() {
                let zi = &mut z[i * pp..i * pp + p];
                if let Some(c) = hits.as_deref_mut() {
                    *c += usize::from(argmax(zi) == r[2] as usize);
                }
                total += softmax_cross_entropy(zi, r[2] as usize);
            }
            if let Some(gr) = grads.as_deref_mut() {
                // z now holds dL/dz (unscaled)
                // dW2 += dz^T g, db2 += column sums of dz, dh = dz W2 (dz: the first p columns)
                gemm(&z, 1, pp, &g, &mut gr[W2].data, p, m, h, Init::Acc);
                for i in 0..m {
                    axpy(1.0, &z[i * pp..i * pp + p], &mut gr[B2].data);
                }
                gemm(&z, pp, 1, &params[W2].data, &mut dh, m, p, h, Init::Zero);
                for ((dv, &hv), &tv) in dh[..m * h].iter_mut().zip(&pre[..m * h]).zip(&th[..m * h]) {
                    *dv *= gelu_grad(hv, tv);
                }
                col_sum_acc(&dh, &mut gr[B1].data, m, h);
                for (i, r) in chunk.iter().enumerate() {
                    let (a, b) = (r[0] as usize, r[1] as usize);
                    let dhi = &dh[i * h..(i + 1) * h];
                    axpy(1.0, dhi, &mut du[a * h..(a + 1) * h]);
                    axpy(1.0, dhi, &mut dv[b * h..(b + 1) * h]);
                }
            }
        }
        let inv = 1.0 / n.max(1) as f64;
        let mut f = total * inv;
        let decayed = [E, W1, W2];
        for &k in &decayed {
            f += 0.5 * self.wd * params[k].data.iter().map(|v| v * v).sum::<f64>();
        }
        if let Some(gr) = grads {
            // dW1a = dU^T E, dW1b = dV^T E; dE = dU W1a + dV W1b
            let (mut gwa, mut gwb) = (vec![0.0; h * d], vec![0.0; h * d]);
            mm_tn_acc(&du, e, &mut gwa, p, h, d);
            mm_tn_acc(&dv, e, &mut gwb, p, h, d);
            let w1 = &params[W1].data;
            let (mut w1a, mut w1b) = (vec![0.0; h * d], vec![0.0; h * d]);
            let gw1 = &mut gr[W1].data;
            for o in 0..h {
                let (lo, mid, hi) = (o * 2 * d, o * 2 * d + d, (o + 1) * 2 * d);
                gw1[lo..mid].copy_from_slice(&gwa[o * d..(o + 1) * d]);
                gw1[mid..hi].copy_from_slice(&gwb[o * d..(o + 1) * d]);
                w1a[o * d..(o + 1) * d].copy_from_slice(&w1[lo..mid]);
                w1b[o * d..(o + 1) * d].copy_from_slice(&w1[mid..hi]);
            }
            mm_acc(&du, &w1a, &mut gr[E].data, p, h, d);
            mm_acc(&dv, &w1b, &mut gr[E].data, p, h, d);
            for t in gr.iter_mut() {
                for v in t.data.iter_mut() {
                    *v *= inv;
                }
            }
            for &k in &decayed {
                for (gv, &pv) in gr[k].data.iter_mut().zip(&params[k].data) {
                    *gv += self.wd * pv;
                }
            }
        }
        f
    }

    fn gather(&self, batch: Option<&[usize]>) -> std::borrow::Cow<'_, [[u16; 3]]> {
        match batch {
            None => std::borrow::Cow::Borrowed(&self.train[..]),
            Some(b) => std::borrow::Cow::Owned(b.iter().map(|&i| self.train[i]).collect()),
        }
    }

    fn accuracy(&self, params: &[Tensor], rows: &[[u16; 3]]) -> f64 {
        let mut hits = 0;
        for chunk in rows.chunks(256) {
            self.eval_rows(params, chunk, None, Some(&mut hits));
        }
        hits as f64 / rows.len().max(1) as f64
    }
}

impl Problem for Grokking {
    fn name(&self) -> &str {
        &self.name
    }
    fn shapes(&self) -> Vec<Vec<usize>> {
        let (p, d, h) = (self.p, self.d, self.hidden);
        vec![vec![p, d], vec![h, 2 * d], vec![h], vec![p, h], vec![p]]
    }
    fn kinds(&self) -> Vec<ParamKind> {
        vec![ParamKind::Embedding, ParamKind::Matrix, ParamKind::Vector, ParamKind::Head, ParamKind::Vector]
    }
    /// The canonical init, with the residue rows relabelled on an instance.
    fn init(&self, rng: &mut Rng) -> Vec<Tensor> {
        let (p, d, h) = (self.p, self.d, self.hidden);
        let params = vec![
            normal_init(&[p, d], 1.0, rng),
            linear_init(h, 2 * d, rng),
            Tensor::new(&[h]),
            linear_init(p, h, rng),
            Tensor::new(&[p]),
        ];
        match &self.perm {
            Some(pm) => Grokking::relabel_params(&params, pm),
            None => params,
        }
    }
    fn loss_grad(&self, params: &[Tensor], batch: Option<&[usize]>, grads: &mut [Tensor]) -> f64 {
        self.eval_rows(params, &self.gather(batch), Some(grads), None)
    }
    fn loss(&self, params: &[Tensor], batch: Option<&[usize]>) -> f64 {
        self.eval_rows(params, &self.gather(batch), None, None)
    }
    /// Full-batch (deterministic) unless a minibatch size is set.
    fn train_size(&self) -> Option<usize> {
        (self.batch > 0).then_some(self.train.len())
    }
    fn batch_size(&self) -> usize {
        self.batch
    }
    fn has_data(&self) -> bool {
        true
    }
    fn test_accuracy(&self, params: &[Tensor]) -> Option<f64> {
        Some(self.accuracy(params, &self.test))
    }
    fn train_accuracy(&self, params: &[Tensor]) -> Option<f64> {
        Some(self.accuracy(params, &self.train))
    }
    /// 2: the settings of the module docs (1: 40 % train, d = 32, h = 64, wd = 5e-3).
    fn version(&self) -> u32 {
        2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{check_grad, fingerprint};
    use crate::{instance, tensors_from_shapes};

    fn grok(key: u64) -> Grokking {
        Grokking::new("grokking-mod-add-31", key, 31, ModOp::Add, 0.49, 0x6A0C_0031, 16, 32, 1e-3, 0)
    }

    fn perturbed(p: &dyn Problem, seed: u64) -> Vec<Tensor> {
        let mut x = p.init(&mut Rng::derive(seed, "init"));
        let mut r = Rng::derive(seed, "perturb");
        for v in x.iter_mut().flat_map(|t| t.data.iter_mut()) {
            *v += 0.3 * r.normal();
        }
        x
    }

    #[test]
    fn the_concrete_constructor_here_is_the_registered_problem() {
        for key in [0, 5] {
            assert_eq!(fingerprint(&grok(key)), fingerprint(instance("grokking-mod-add-31", key).unwrap().as_ref()));
        }
    }

    #[test]
    fn the_split_is_fixed_disjoint_and_complete_and_labels_are_the_sums() {
        let g = grok(0);
        assert_eq!(g.split_sizes(), (471, 490));
        let (tr, te) = g.split();
        let mut seen = std::collections::HashSet::new();
        for r in tr.iter().chain(te) {
            assert_eq!(r[2] as usize, (r[0] as usize + r[1] as usize) % 31);
            assert!(seen.insert((r[0], r[1])));
        }
        assert_eq!(seen.len(), 31 * 31);
        let bytes: Vec<u8> = tr.iter().flat_map(|r| r.iter().map(|&v| v as u8)).collect();
        assert_eq!(crate::models::nn::fnv1a64(&bytes), PIN_TRAIN, "the split changed: {:#x}", crate::models::nn::fnv1a64(&bytes));
        let sub = Grokking::new("x", 0, 37, ModOp::Sub, 0.4, 1, 8, 8, 0.0, 0);
        for r in sub.split().0 {
            assert_eq!((r[1] as usize + r[2] as usize) % 37, r[0] as usize);
        }
    }
    const PIN_TRAIN: u64 = 0x9931_deef_f157_d99a;

    #[test]
    fn gradient_matches_finite_differences_on_a_minibatch_too() {
        let g = Grokking::new("x", 0, 31, ModOp::Add, 0.49, 0x6A0C_0031, 16, 32, 1e-3, 16);
        let x = perturbed(&g, 2);
        let err = check_grad(&g, &x, Some(&[0, 5, 5, 470]));
        assert!(err < 1e-7, "{err:e}");
        let err = check_grad(&g, &x, None);
        assert!(err < 1e-7, "{err:e}");
    }

    #[test]
    fn instances_relabel_the_residues_and_equal_the_canonical_problem() {
        let canon = grok(0);
        assert!(canon.perm().is_none());
        for key in [1u64, 77] {
            let inst = grok(key);
            let pm = inst.perm().unwrap().to_vec();
            for (a, b) in canon.split().0.iter().zip(inst.split().0) {
                assert_eq!(a.map(|v| pm[v as usize] as u16), *b);
            }
            let map = |p: &[Tensor]| Grokking::relabel_params(p, &pm);
            assert_eq!(inst.init(&mut Rng::derive(4, "init")), map(&canon.init(&mut Rng::derive(4, "init"))));
            let theta = perturbed(&canon, key);
            let theta_i = map(&theta);
            let (mut gc, mut gi) = (tensors_from_shapes(&canon.shapes()), tensors_from_shapes(&inst.shapes()));
            let lc = canon.loss_grad(&theta, None, &mut gc);
            let li = inst.loss_grad(&theta_i, None, &mut gi);
            assert!((lc - li).abs() <= 1e-12 * lc.abs(), "{lc} vs {li}");
            let gc = map(&gc);
            for (a, b) in gc.iter().zip(&gi) {
                for (x, y) in a.data.iter().zip(&b.data) {
                    assert!((x - y).abs() < 1e-13);
                }
            }
            assert_eq!(canon.test_accuracy(&theta), inst.test_accuracy(&theta_i));
            assert!((inst.loss(&theta, None) - lc).abs() > 1e-3);
        }
    }

    #[test]
    fn kinds() {
        let g = grok(0);
        assert_eq!(g.kinds().len(), g.shapes().len());
        assert_eq!(g.kinds()[0], ParamKind::Embedding);
        assert_eq!(g.kinds()[3], ParamKind::Head);
    }
}
