//! A tiny decoder-only transformer for character-level language modelling on the grammar corpus
//! (`grammar.rs`), with a hand-written backward pass.
//!
//! GPT-2's shape: token + learned position embeddings; `layers` pre-norm blocks, each
//! `x += Wo attn(LN1(x))` with causal multi-head self-attention (separate `Wq`, `Wk`, `Wv`, no
//! attention biases) and `x += W2 gelu(W1 LN2(x) + b1) + b2` (tanh GELU, as
//! `gelu(approximate="tanh")`); a final LayerNorm and an untied head without bias. Weights in
//! PyTorch's layout (`[out, in]`). Init as PyTorch's defaults: embeddings N(0, 1), linear weights
//! U(+-1/sqrt(fan_in)), biases 0, LayerNorm gains 1 and biases 0.
//!
//! Loss: mean next-token cross-entropy over every position of the batch's sequences, with no
//! regulariser (weight decay is the optimizer's business). A batch index names a training
//! sequence. Accuracies: next-token accuracy over every position of the held-out (test) or
//! training sequences.
//!
//! Instance `key` relabels the token ids by a permutation drawn from `Rng::derive(key,
//! "<name>/tokens")`, in the data and in the init (rows of the embedding and the head), so it is
//! the canonical problem in other coordinates; key 0 is the identity.

use super::grammar::Grammar;
use super::nn::{
    axpy, col_sum_acc, cross_entropy, dot, exp, filled, gelu, gelu_grad, layer_norm, layer_norm_backward, linear_init, mm,
    mm_acc, mm_tn_acc, normal_init, permute_rows, transpose_into,
};
use super::argmax;
use crate::relabel::permutation;
use crate::Problem;
use frontier_core::{ParamKind, Rng, Tensor};

/// The model's sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransformerConfig {
    pub vocab: usize,
    /// Tokens the model reads (sequences hold `ctx + 1`).
    pub ctx: usize,
    pub d: usize,
    pub heads: usize,
    pub layers: usize,
    /// Width of the MLP's hidden layer.
    pub mlp: usize,
}

// Tensor order: tok_emb, pos_emb, then per layer the 12 below, then lnf.w, lnf.b, head.
const TOK: usize = 0;
const POS: usize = 1;
const PER_LAYER: usize = 12;
const LN1W: usize = 0;
const LN1B: usize = 1;
const WQ: usize = 2;
const WK: usize = 3;
const WV: usize = 4;
const WO: usize = 5;
const LN2W: usize = 6;
const LN2B: usize = 7;
const W1: usize = 8;
const B1: usize = 9;
const W2: usize = 10;
const B2: usize = 11;

/// Sequences per forward/backward chunk (bounds the scratch memory of a full-batch pass).
const CHUNK: usize = 16;

impl TransformerConfig {
    fn layer(&self, l: usize) -> usize {
        2 + PER_LAYER * l
    }
    fn last(&self) -> usize {
        2 + PER_LAYER * self.layers
    }

    pub fn shapes(&self) -> Vec<Vec<usize>> {
        let (v, t, d, m) = (self.vocab, self.ctx, self.d, self.mlp);
        let mut s = vec![vec![v, d], vec![t, d]];
        for _ in 0..self.layers {
            s.extend([vec![d], vec![d], vec![d, d], vec![d, d], vec![d, d], vec![d, d]]);
            s.extend([vec![d], vec![d], vec![m, d], vec![m], vec![d, m], vec![d]]);
        }
        s.extend([vec![d], vec![d], vec![v, d]]);
        s
    }

    pub fn kinds(&self) -> Vec<ParamKind> {
        use ParamKind::*;
        let mut k = vec![Embedding, Embedding];
        for _ in 0..self.layers {
            k.extend([Vector, Vector, Matrix, Matrix, Matrix, Matrix, Vector, Vector, Matrix, Vector, Matrix, Vector]);
        }
        k.extend([Vector, Vector, Head]);
        k
    }

    pub fn init(&self, rng: &mut Rng) -> Vec<Tensor> {
        let (v, t, d, m) = (self.vocab, self.ctx, self.d, self.mlp);
        let mut p = vec![normal_init(&[v, d], 1.0, rng), normal_init(&[t, d], 1.0, rng)];
        for _ in 0..self.layers {
            p.push(filled(&[d], 1.0));
            p.push(Tensor::new(&[d]));
            for _ in 0..4 {
                p.push(linear_init(d, d, rng));
            }
            p.push(filled(&[d], 1.0));
            p.push(Tensor::new(&[d]));
            p.push(linear_init(m, d, rng));
            p.push(Tensor::new(&[m]));
            p.push(linear_init(d, m, rng));
            p.push(Tensor::new(&[d]));
        }
        p.push(filled(&[d], 1.0));
        p.push(Tensor::new(&[d]));
        p.push(linear_init(v, d, rng));
        p
    }
}

/// What one layer's forward pass keeps for the backward pass (rows = sequences x positions).
struct LayerCache {
    xhat1: Vec<f64>,
    rstd1: Vec<f64>,
    a: Vec<f64>, // LN1 output
    q: Vec<f64>,
    k: Vec<f64>,
    v: Vec<f64>,
    p: Vec<f64>, // attention probabilities [s, heads, ctx, ctx]
    y: Vec<f64>, // attention output before Wo
    xhat2: Vec<f64>,
    rstd2: Vec<f64>,
    b: Vec<f64>, // LN2 output
    h: Vec<f64>, // MLP pre-activation
    g: Vec<f64>, // gelu(h)
    th: Vec<f64>, // the tanh inside gelu(h)
}

/// Scratch of one evaluation: activations of one chunk, backward temporaries, and the weights
/// transposed for the forward products.
struct Work {
    x: Vec<f64>,
    layers: Vec<LayerCache>,
    xhatf: Vec<f64>,
    rstdf: Vec<f64>,
    f: Vec<f64>,
    logits: Vec<f64>,
    dx: Vec<f64>,
    dt: Vec<f64>,
    dq: Vec<f64>,
    dk: Vec<f64>,
    dv: Vec<f64>,
    dh: Vec<f64>,
    dp: Vec<f64>,
    /// Per layer: Wq^T, Wk^T, Wv^T, Wo^T, W1^T, W2^T; then head^T.
    wt: Vec<Vec<f64>>,
}

impl Work {
    fn new(c: &TransformerConfig, seqs: usize, grads: bool) -> Work {
        let n = seqs * c.ctx;
        let (d, m) = (c.d, c.mlp);
        let z = |len: usize| vec![0.0; len];
        let zg = |len: usize| if grads { vec![0.0; len] } else { Vec::new() };
        let layers = (0..c.layers)
            .map(|_| LayerCache {
                xhat1: z(n * d),
                rstd1: z(n),
                a: z(n * d),
                q: z(n * d),
                k: z(n * d),
                v: z(n * d),
                p: z(seqs * c.heads * c.ctx * c.ctx),
                y: z(n * d),
                xhat2: z(n * d),
                rstd2: z(n),
                b: z(n * d),
                h: z(n * m),
                g: z(n * m),
                th: z(n * m),
            })
            .collect();
        let mut wt = Vec::with_capacity(6 * c.layers + 1);
        for _ in 0..c.layers {
            wt.extend([z(d * d), z(d * d), z(d * d), z(d * d), z(d * m), z(m * d)]);
        }
        wt.push(z(d * c.vocab));
        Work {
            x: z(n * d),
            layers,
            xhatf: z(n * d),
            rstdf: z(n),
            f: z(n * d),
            logits: z(n * c.vocab),
            dx: zg(n * d),
            dt: zg(n * d),
            dq: zg(n * d),
            dk: zg(n * d),
            dv: zg(n * d),
            dh: zg(n * m),
            dp: z(c.ctx),
            wt,
        }
    }

    fn transpose_weights(&mut self, c: &TransformerConfig, p: &[Tensor]) {
        let (d, m) = (c.d, c.mlp);
        for l in 0..c.layers {
            let base = c.layer(l);
            for (j, off) in [WQ, WK, WV, WO].into_iter().enumerate() {
                transpose_into(&p[base + off].data, d, d, &mut self.wt[6 * l + j]);
            }
            transpose_into(&p[base + W1].data, m, d, &mut self.wt[6 * l + 4]);
            transpose_into(&p[base + W2].data, d, m, &mut self.wt[6 * l + 5]);
        }
        transpose_into(&p[c.last() + 2].data, c.vocab, d, &mut self.wt[6 * c.layers]);
    }
}

/// The transformer on a token corpus; see the module docs.
pub struct Transformer {
    name: String,
    cfg: TransformerConfig,
    /// Sequences of `ctx + 1` tokens, row-major.
    train: Vec<u8>,
    test: Vec<u8>,
    batch: usize,
    /// Instance relabelling: canonical token `t` is token `perm[t]` here (None = canonical).
    perm: Option<Vec<usize>>,
    version: u32,
}

impl Transformer {
    /// The model on `n_train` training and `n_test` held-out sequences of `grammar`; instance
    /// `key` of problem `name`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_grammar(
        name: &str,
        key: u64,
        grammar: Grammar,
        ctx: usize,
        d: usize,
        heads: usize,
        layers: usize,
        n_train: usize,
        n_test: usize,
        batch: usize,
    ) -> Transformer {
        let cfg = TransformerConfig { vocab: grammar.vocab(), ctx, d, heads, layers, mlp: 4 * d };
        assert_eq!(d % heads, 0);
        let mut text = grammar.generate(n_train + n_test, ctx + 1);
        let perm = (key != 0).then(|| permutation(cfg.vocab, &mut Rng::derive(key, &format!("{name}/tokens"))));
        if let Some(pm) = &perm {
            for t in text.iter_mut() {
                *t = pm[*t as usize] as u8;
            }
        }
        let test = text.split_off(n_train * (ctx + 1));
        Transformer { name: name.to_string(), cfg, train: text, test, batch, perm, version: 1 }
    }

    /// `on_grammar` with the grammar given by its parameters (`Grammar` is crate-private): for
    /// dev tools outside the crate (examples/transformer_corpus.rs, which checks that it builds
    /// the registered problem).
    #[allow(clippy::too_many_arguments)]
    pub fn on_bracket_grammar(
        name: &str,
        key: u64,
        (letters, kinds, grammar_seed): (usize, usize, u64),
        ctx: usize,
        d: usize,
        heads: usize,
        layers: usize,
        n_train: usize,
        n_test: usize,
        batch: usize,
    ) -> Transformer {
        let g = Grammar { letters, kinds, seed: grammar_seed };
        Transformer::on_grammar(name, key, g, ctx, d, heads, layers, n_train, n_test, batch)
    }

    pub fn config(&self) -> TransformerConfig {
        self.cfg
    }

    #[cfg(test)]
    pub(crate) fn perm(&self) -> Option<&[usize]> {
        self.perm.as_deref()
    }

    /// The training sequences (`ctx + 1` tokens each, row-major).
    pub fn train_tokens(&self) -> &[u8] {
        &self.train
    }

    /// The held-out sequences.
    pub fn test_tokens(&self) -> &[u8] {
        &self.test
    }

    /// The canonical parameters `params` in this instance's token ids.
    pub(crate) fn relabel_params(cfg: &TransformerConfig, params: &[Tensor], perm: &[usize]) -> Vec<Tensor> {
        let mut p = params.to_vec();
        p[TOK] = permute_rows(&params[TOK], perm);
        let h = cfg.last() + 2;
        p[h] = permute_rows(&params[h], perm);
        p
    }

    /// Mean next-token loss over the sequences in `tokens` (`ctx + 1` each); with `grads`, writes
    /// its gradient. With `hits`, counts the positions whose argmax logit is the next token.
    /// Public for the PyTorch fixture test (`tests/nn_fixtures.rs`).
    pub fn eval_tokens(
        cfg: &TransformerConfig,
        params: &[Tensor],
        tokens: &[u8],
        mut grads: Option<&mut [Tensor]>,
        mut hits: Option<&mut usize>,
    ) -> f64 {
        let len = cfg.ctx + 1;
        let n = tokens.len() / len;
        assert_eq!(n * len, tokens.len());
        let mut w = Work::new(cfg, CHUNK.min(n.max(1)), grads.is_some());
        w.transpose_weights(cfg, params);
        if let Some(g) = grads.as_deref_mut() {
            for t in g.iter_mut() {
                t.data.fill(0.0);
            }
        }
        let mut total = 0.0;
        for chunk in tokens.chunks(CHUNK * len) {
            let s = chunk.len() / len;
            forward(cfg, params, chunk, s, &mut w);
            let v = cfg.vocab;
            let want_grad = grads.is_some();
            for si in 0..s {
                for t in 0..cfg.ctx {
                    let r = si * cfg.ctx + t;
                    let target = chunk[si * len + t + 1] as usize;
                    let z = &mut w.logits[r * v..(r + 1) * v];
                    if let Some(h) = hits.as_deref_mut() {
                        *h += usize::from(argmax(z) == target);
                    }
                    total += cross_entropy(z, target, want_grad);
                }
            }
            if let Some(g) = grads.as_deref_mut() {
                backward(cfg, params, chunk, s, &mut w, g);
            }
        }
        let inv = 1.0 / (n * cfg.ctx).max(1) as f64;
        if let Some(g) = grads {
            for t in g.iter_mut() {
                for x in t.data.iter_mut() {
                    *x *= inv;
                }
            }
        }
        total * inv
    }

    fn gather(&self, batch: Option<&[usize]>) -> std::borrow::Cow<'_, [u8]> {
        let len = self.cfg.ctx + 1;
        match batch {
            None => std::borrow::Cow::Borrowed(&self.train[..]),
            Some(b) => {
                let mut out = Vec::with_capacity(b.len() * len);
                for &i in b {
                    out.extend_from_slice(&self.train[i * len..(i + 1) * len]);
                }
                std::borrow::Cow::Owned(out)
            }
        }
    }

    fn accuracy(&self, params: &[Tensor], tokens: &[u8]) -> f64 {
        let mut hits = 0usize;
        Transformer::eval_tokens(&self.cfg, params, tokens, None, Some(&mut hits));
        let positions = tokens.len() / (self.cfg.ctx + 1) * self.cfg.ctx;
        hits as f64 / positions.max(1) as f64
    }
}

/// Forward pass of `s` sequences (`chunk`, `ctx + 1` tokens each) up to the logits.
fn forward(c: &TransformerConfig, p: &[Tensor], chunk: &[u8], s: usize, w: &mut Work) {
    let (t_len, d, m, hh) = (c.ctx, c.d, c.mlp, c.heads);
    let n = s * t_len;
    let hd = d / hh;
    let scale = 1.0 / (hd as f64).sqrt();
    let (tok, pos) = (&p[TOK].data, &p[POS].data);
    for si in 0..s {
        for t in 0..t_len {
            let r = si * t_len + t;
            let id = chunk[si * (t_len + 1) + t] as usize;
            let xr = &mut w.x[r * d..(r + 1) * d];
            for j in 0..d {
                xr[j] = tok[id * d + j] + pos[t * d + j];
            }
        }
    }
    for l in 0..c.layers {
        let base = c.layer(l);
        let wt = &w.wt[6 * l..6 * l + 6];
        let lc = &mut w.layers[l];
        layer_norm(&w.x, &p[base + LN1W].data, &p[base + LN1B].data, &mut lc.xhat1, &mut lc.rstd1, &mut lc.a, n, d);
        mm(&lc.a, &wt[0], None, &mut lc.q, n, d, d);
        mm(&lc.a, &wt[1], None, &mut lc.k, n, d, d);
        mm(&lc.a, &wt[2], None, &mut lc.v, n, d, d);
        lc.y[..n * d].fill(0.0);
        for si in 0..s {
            for h in 0..hh {
                let col = h * hd;
                for t in 0..t_len {
                    let qr = (si * t_len + t) * d + col;
                    let prow = &mut lc.p[((si * hh + h) * t_len + t) * t_len..][..t_len];
                    let mut mx = f64::NEG_INFINITY;
                    for u in 0..=t {
                        let kr = (si * t_len + u) * d + col;
                        let sc = dot(&lc.q[qr..qr + hd], &lc.k[kr..kr + hd]) * scale;
                        prow[u] = sc;
                        mx = mx.max(sc);
                    }
                    let mut sum = 0.0;
                    for pu in prow[..=t].iter_mut() {
                        *pu = exp(*pu - mx);
                        sum += *pu;
                    }
                    let inv = 1.0 / sum;
                    for pu in prow[..=t].iter_mut() {
                        *pu *= inv;
                    }
                    prow[t + 1..].fill(0.0);
                    let yr = &mut lc.y[qr..qr + hd];
                    for u in 0..=t {
                        let vr = (si * t_len + u) * d + col;
                        axpy(prow[u], &lc.v[vr..vr + hd], yr);
                    }
                }
            }
        }
        // x += y Wo^T
        mm_acc(&lc.y, &wt[3], &mut w.x, n, d, d);
        layer_norm(&w.x, &p[base + LN2W].data, &p[base + LN2B].data, &mut lc.xhat2, &mut lc.rstd2, &mut lc.b, n, d);
        mm(&lc.b, &wt[4], Some(&p[base + B1].data), &mut lc.h, n, d, m);
        for ((gv, tv), &hv) in lc.g[..n * m].iter_mut().zip(&mut lc.th[..n * m]).zip(&lc.h[..n * m]) {
            (*gv, *tv) = gelu(hv);
        }
        let b2 = &p[base + B2].data;
        for r in 0..n {
            axpy(1.0, b2, &mut w.x[r * d..(r + 1) * d]);
        }
        mm_acc(&lc.g, &wt[5], &mut w.x, n, m, d);
    }
    let f = c.last();
    layer_norm(&w.x, &p[f].data, &p[f + 1].data, &mut w.xhatf, &mut w.rstdf, &mut w.f, n, d);
    mm(&w.f, &w.wt[6 * c.layers], None, &mut w.logits, n, d, c.vocab);
}

/// Backward pass of the chunk whose `w.logits` hold dLoss/dlogits (unscaled); accumulates into
/// `g`.
fn backward(c: &TransformerConfig, p: &[Tensor], chunk: &[u8], s: usize, w: &mut Work, g: &mut [Tensor]) {
    let (t_len, d, m, hh, v) = (c.ctx, c.d, c.mlp, c.heads, c.vocab);
    let n = s * t_len;
    let hd = d / hh;
    let scale = 1.0 / (hd as f64).sqrt();
    let f = c.last();
    // head and final norm
    mm_tn_acc(&w.logits, &w.f, &mut g[f + 2].data, n, v, d);
    w.dt[..n * d].fill(0.0);
    mm_acc(&w.logits, &p[f + 2].data, &mut w.dt, n, v, d);
    w.dx[..n * d].fill(0.0);
    {
        let (gw, gb) = g[f..f + 2].split_at_mut(1);
        layer_norm_backward(&w.dt, &w.xhatf, &w.rstdf, &p[f].data, &mut w.dx, &mut gw[0].data, &mut gb[0].data, n, d);
    }
    for l in (0..c.layers).rev() {
        let base = c.layer(l);
        let lc = &w.layers[l];
        let gl = &mut g[base..base + PER_LAYER];
        // MLP: x += W2 gelu(W1 b + b1) + b2
        col_sum_acc(&w.dx, &mut gl[B2].data, n, d);
        mm_tn_acc(&w.dx, &lc.g, &mut gl[W2].data, n, d, m);
        w.dh[..n * m].fill(0.0);
        mm_acc(&w.dx, &p[base + W2].data, &mut w.dh, n, d, m);
        for ((dh, &hv), &tv) in w.dh[..n * m].iter_mut().zip(&lc.h[..n * m]).zip(&lc.th[..n * m]) {
            *dh *= gelu_grad(hv, tv);
        }
        col_sum_acc(&w.dh, &mut gl[B1].data, n, m);
        mm_tn_acc(&w.dh, &lc.b, &mut gl[W1].data, n, m, d);
        w.dt[..n * d].fill(0.0);
        mm_acc(&w.dh, &p[base + W1].data, &mut w.dt, n, m, d);
        {
            let (gw, gb) = gl[LN2W..LN2B + 1].split_at_mut(1);
            layer_norm_backward(&w.dt, &lc.xhat2, &lc.rstd2, &p[base + LN2W].data, &mut w.dx, &mut gw[0].data, &mut gb[0].data, n, d);
        }
        // attention: x += Wo y
        mm_tn_acc(&w.dx, &lc.y, &mut gl[WO].data, n, d, d);
        w.dt[..n * d].fill(0.0); // dy
        mm_acc(&w.dx, &p[base + WO].data, &mut w.dt, n, d, d);
        w.dq[..n * d].fill(0.0);
        w.dk[..n * d].fill(0.0);
        w.dv[..n * d].fill(0.0);
        for si in 0..s {
            for h in 0..hh {
                let col = h * hd;
                for t in 0..t_len {
                    let qr = (si * t_len + t) * d + col;
                    let prow = &lc.p[((si * hh + h) * t_len + t) * t_len..][..t_len];
                    let dyt = &w.dt[qr..qr + hd];
                    let mut sum = 0.0;
                    for u in 0..=t {
                        let vr = (si * t_len + u) * d + col;
                        let dp = dot(dyt, &lc.v[vr..vr + hd]);
                        w.dp[u] = dp;
                        sum += prow[u] * dp;
                        axpy(prow[u], dyt, &mut w.dv[vr..vr + hd]);
                    }
                    for u in 0..=t {
                        let ds = prow[u] * (w.dp[u] - sum) * scale;
                        let kr = (si * t_len + u) * d + col;
                        axpy(ds, &lc.k[kr..kr + hd], &mut w.dq[qr..qr + hd]);
                        axpy(ds, &lc.q[qr..qr + hd], &mut w.dk[kr..kr + hd]);
                    }
                }
            }
        }
        mm_tn_acc(&w.dq, &lc.a, &mut gl[WQ].data, n, d, d);
        mm_tn_acc(&w.dk, &lc.a, &mut gl[WK].data, n, d, d);
        mm_tn_acc(&w.dv, &lc.a, &mut gl[WV].data, n, d, d);
        w.dt[..n * d].fill(0.0); // da
        mm_acc(&w.dq, &p[base + WQ].data, &mut w.dt, n, d, d);
        mm_acc(&w.dk, &p[base + WK].data, &mut w.dt, n, d, d);
        mm_acc(&w.dv, &p[base + WV].data, &mut w.dt, n, d, d);
        let (gw, gb) = gl[LN1W..LN1B + 1].split_at_mut(1);
        layer_norm_backward(&w.dt, &lc.xhat1, &lc.rstd1, &p[base + LN1W].data, &mut w.dx, &mut gw[0].data, &mut gb[0].data, n, d);
    }
    // embeddings
    for si in 0..s {
        for t in 0..t_len {
            let r = si * t_len + t;
            let id = chunk[si * (t_len + 1) + t] as usize;
            let dxr = &w.dx[r * d..(r + 1) * d];
            axpy(1.0, dxr, &mut g[TOK].data[id * d..(id + 1) * d]);
            axpy(1.0, dxr, &mut g[POS].data[t * d..(t + 1) * d]);
        }
    }
}

impl Problem for Transformer {
    fn name(&self) -> &str {
        &self.name
    }
    fn shapes(&self) -> Vec<Vec<usize>> {
        self.cfg.shapes()
    }
    fn kinds(&self) -> Vec<ParamKind> {
        self.cfg.kinds()
    }
    /// The canonical init, with the token rows relabelled on an instance.
    fn init(&self, rng: &mut Rng) -> Vec<Tensor> {
        let p = self.cfg.init(rng);
        match &self.perm {
            Some(pm) => Transformer::relabel_params(&self.cfg, &p, pm),
            None => p,
        }
    }
    fn loss_grad(&self, params: &[Tensor], batch: Option<&[usize]>, grads: &mut [Tensor]) -> f64 {
        Transformer::eval_tokens(&self.cfg, params, &self.gather(batch), Some(grads), None)
    }
    fn loss(&self, params: &[Tensor], batch: Option<&[usize]>) -> f64 {
        Transformer::eval_tokens(&self.cfg, params, &self.gather(batch), None, None)
    }
    fn train_size(&self) -> Option<usize> {
        Some(self.train.len() / (self.cfg.ctx + 1))
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
    fn version(&self) -> u32 {
        self.version
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::check_grad;
    use crate::{by_name, instance, tensors_from_shapes};

    fn perturbed(p: &dyn Problem, seed: u64, sd: f64) -> Vec<Tensor> {
        let mut x = p.init(&mut Rng::derive(seed, "init"));
        let mut r = Rng::derive(seed, "perturb");
        for v in x.iter_mut().flat_map(|t| t.data.iter_mut()) {
            *v += sd * r.normal();
        }
        x
    }

    #[test]
    fn gradient_matches_finite_differences_on_a_batch() {
        for name in ["transformer-grammar", "transformer-grammar-d24"] {
            let p = by_name(name).unwrap();
            for seed in 0..2 {
                let x = perturbed(p.as_ref(), seed, 0.3);
                let batch: Vec<usize> = vec![3, 17, 3, 200, 511];
                let err = check_grad(p.as_ref(), &x, Some(&batch));
                assert!(err < 1e-7, "{name} seed {seed}: {err:e}");
            }
        }
    }

    fn flat(ts: &[Tensor]) -> Vec<f64> {
        ts.iter().flat_map(|t| t.data.iter().copied()).collect()
    }

    /// The corpus is generated, not shipped: any change to the grammar or the generator shows
    /// here (and must come with a new problem version).
    #[test]
    fn the_corpora_are_pinned() {
        for (name, want) in [("transformer-grammar", PIN_CANONICAL), ("transformer-grammar-d24", PIN_D24)] {
            let t = transformer(name, 0);
            let mut bytes = t.train_tokens().to_vec();
            bytes.extend_from_slice(t.test_tokens());
            let h = super::super::nn::fnv1a64(&bytes);
            assert_eq!(h, want, "{name}: corpus changed: {h:#x}");
        }
        let t = transformer("transformer-grammar", 0);
        assert_eq!((t.train_tokens().len(), t.test_tokens().len()), (2048 * 17, 256 * 17));
    }
    const PIN_CANONICAL: u64 = 0xbca9_93b0_879e_b21c;
    const PIN_D24: u64 = 0x112c_4df0_af99_ad28;

    /// The registered problem as its concrete type.
    fn transformer(name: &str, key: u64) -> Transformer {
        match name {
            "transformer-grammar" => Transformer::on_grammar(name, key, canonical_grammar(), 16, 16, 2, 2, 2048, 256, 16),
            _ => Transformer::on_grammar(name, key, Grammar { letters: 10, kinds: 3, seed: 0x5EED_0002 }, 20, 24, 2, 1, 2048, 256, 16),
        }
    }
    fn canonical_grammar() -> Grammar {
        Grammar { letters: 8, kinds: 4, seed: 0x5EED_0001 }
    }

    #[test]
    fn the_concrete_constructors_here_are_the_registered_problems() {
        for name in ["transformer-grammar", "transformer-grammar-d24"] {
            for key in [0, 3] {
                let (a, b) = (transformer(name, key), instance(name, key).unwrap());
                assert_eq!(crate::tests::fingerprint(&a), crate::tests::fingerprint(b.as_ref()), "{name} {key}");
            }
        }
    }

    /// An instance at relabelled parameters is the canonical problem: same loss, gradient
    /// (relabelled) and accuracies; its init is the canonical init relabelled.
    #[test]
    fn instances_relabel_the_tokens_and_equal_the_canonical_problem() {
        let canon = transformer("transformer-grammar", 0);
        assert!(canon.perm().is_none());
        for key in [1u64, 0xDEAD_BEEF] {
            let inst = transformer("transformer-grammar", key);
            let pm = inst.perm().unwrap().to_vec();
            assert_ne!(pm, (0..pm.len()).collect::<Vec<_>>());
            for (a, b) in canon.train_tokens().iter().zip(inst.train_tokens()) {
                assert_eq!(pm[*a as usize], *b as usize);
            }
            let cfg = canon.config();
            let map = |p: &[Tensor]| Transformer::relabel_params(&cfg, p, &pm);
            assert_eq!(inst.init(&mut Rng::derive(4, "init")), map(&canon.init(&mut Rng::derive(4, "init"))));
            let theta = perturbed(&canon, key, 0.3);
            let theta_i = map(&theta);
            for b in [Some(&[5usize, 9, 9, 1000][..]), None] {
                let (mut gc, mut gi) = (tensors_from_shapes(&canon.shapes()), tensors_from_shapes(&inst.shapes()));
                let lc = canon.loss_grad(&theta, b, &mut gc);
                let li = inst.loss_grad(&theta_i, b, &mut gi);
                assert!((lc - li).abs() <= 1e-12 * lc.abs(), "key {key}: {lc} vs {li}");
                let (gc, gi) = (flat(&map(&gc)), flat(&gi));
                let diff = gc.iter().zip(&gi).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
                assert!(diff < 1e-13, "key {key}: gradients differ by {diff:e}");
            }
            assert_eq!(canon.test_accuracy(&theta), inst.test_accuracy(&theta_i));
            assert_eq!(canon.train_accuracy(&theta), inst.train_accuracy(&theta_i));
            // canonical weights are of no use on the instance
            let (li, lc) = (inst.loss(&theta, None), canon.loss(&theta, None));
            assert!((li - lc).abs() > 1e-3, "key {key}: {li} vs {lc}");
        }
    }

    #[test]
    fn kinds_name_the_embeddings_the_head_and_the_vectors() {
        let p = transformer("transformer-grammar", 0);
        let (k, s) = (p.kinds(), p.shapes());
        assert_eq!(k.len(), s.len());
        assert_eq!((k[0], k[1], *k.last().unwrap()), (ParamKind::Embedding, ParamKind::Embedding, ParamKind::Head));
        for (kind, shape) in k.iter().zip(&s).skip(2).take(s.len() - 3) {
            assert_eq!(*kind, ParamKind::from_shape(shape), "{shape:?}");
        }
        assert_eq!(p.dim(), 7264);
    }

    #[test]
    fn speed_of_one_minibatch_step() {
        let p = by_name("transformer-grammar").unwrap();
        let x = p.init(&mut Rng::derive(1, "init"));
        let mut g = tensors_from_shapes(&p.shapes());
        let batch: Vec<usize> = (0..p.batch_size()).collect();
        for _ in 0..5 {
            p.loss_grad(&x, Some(&batch), &mut g);
        }
        let reps = 100;
        let t0 = std::time::Instant::now();
        for _ in 0..reps {
            std::hint::black_box(p.loss_grad(&x, Some(&batch), &mut g));
        }
        let us = t0.elapsed().as_secs_f64() * 1e6 / reps as f64;
        let t0 = std::time::Instant::now();
        std::hint::black_box(p.loss(&x, None));
        let full = t0.elapsed().as_secs_f64() * 1e6;
        let t0 = std::time::Instant::now();
        let acc = p.test_accuracy(&x).unwrap();
        let ta = t0.elapsed().as_secs_f64() * 1e6;
        println!("transformer-grammar: dim {} loss_grad(batch {}) {us:.0} us; full loss {full:.0} us; test acc {acc} {ta:.0} us", p.dim(), batch.len());
        let _ = instance("transformer-grammar", 1);
    }
}
