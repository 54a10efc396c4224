//! A small convolutional network on the 8x8 digits, with a hand-written backward pass.
//!
//! Model (PyTorch's `nn.Sequential(Conv2d(1, C, 3, padding=1), ReLU(), AvgPool2d(2), Flatten(),
//! Linear(16 C, 10))`): a 3x3 convolution with `C` output channels and zero padding 1 (8x8 ->
//! C x 8 x 8), ReLU, 2x2 average pooling (-> C x 4 x 4), flattened in PyTorch's order (feature
//! `c * 16 + 4 * py + px`) into a linear head to the 10 classes. Parameters in PyTorch's layout:
//! conv weight `[C, 1, 3, 3]` (Matrix), conv bias `[C]` (Vector), head weight `[10, 16 C]` (Head),
//! head bias `[10]` (Vector). Init: PyTorch's defaults, drawn in that order, every tensor
//! U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming-uniform with a = sqrt(5) for the weights, and the
//! biases' bound; fan_in 9 for the convolution, 16 C for the head).
//!
//! Data: `data::digits` (pixels standardized per pixel with the training split's statistics, as
//! for the other digits models), read as 1 x 8 x 8 images. Loss: mean softmax cross-entropy over
//! the batch (repeats count), no regulariser (weight decay is the optimizer's business). Average
//! pooling keeps the loss smooth apart from the ReLU kinks (see the gradient test below).
//!
//! Instance `key`: the classes are permuted (`Rng::derive(key, "<name>/classes")`) and every image
//! of both splits goes through one symmetry of the square (one of the 8 of the dihedral group,
//! `Rng::derive(key, "<name>/symmetry")`); the init is the canonical init mapped the same way (the
//! kernels through the symmetry, the head's columns through it on the pooled grid, its rows and
//! bias through the class permutation). Zero padding and the aligned 2x2 pooling commute with the
//! symmetries, so the instance is the canonical problem in other coordinates. Key 0 is the
//! canonical problem (no copy of the data).
//!
//! Speed: the convolution runs directly on zero-padded images, a row of eight outputs at a time
//! (vectorized over the row), and its weight gradient the same way; the head is one product each
//! way; the scratch buffers are kept in a pool and reused across calls.

use super::argmax;
use super::nn::{col_sum_acc, cross_entropy, mm, mm_tn_acc, transpose_into};
use crate::data::{Dataset, Split};
use crate::relabel::permutation;
use crate::Problem;
use frontier_core::{ParamKind, Rng, Tensor};
use std::sync::{Arc, Mutex};

const SIDE: usize = 8;
const PIX: usize = SIDE * SIDE;
const POOLED: usize = (SIDE / 2) * (SIDE / 2);
const TAPS: usize = 9;
const CLASSES: usize = 10;
/// Images per forward/backward chunk (bounds the scratch of a full-batch pass).
const CHUNK: usize = 64;

const CW: usize = 0;
const CB: usize = 1;
const HW: usize = 2;
const HB: usize = 3;

/// A symmetry of the square: transpose first, then flip rows and/or columns (the 8 elements of
/// the dihedral group, `code` in 0..8: bit 0 transpose, bit 1 flip rows, bit 2 flip columns).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Symmetry(pub u8);

impl Symmetry {
    /// Where cell `(y, x)` of an `n x n` grid goes (about the grid's centre, so the same
    /// symmetry on the image, the 3x3 kernel and the pooled grid).
    pub(crate) fn map(self, n: usize, y: usize, x: usize) -> (usize, usize) {
        let (mut y, mut x) = if self.0 & 1 != 0 { (x, y) } else { (y, x) };
        if self.0 & 2 != 0 {
            y = n - 1 - y;
        }
        if self.0 & 4 != 0 {
            x = n - 1 - x;
        }
        (y, x)
    }

    /// `src[i]` = the cell of the original `n x n` grid that lands on cell `i` (row-major).
    pub(crate) fn sources(self, n: usize) -> Vec<usize> {
        let mut src = vec![0; n * n];
        for y in 0..n {
            for x in 0..n {
                let (ty, tx) = self.map(n, y, x);
                src[ty * n + tx] = y * n + x;
            }
        }
        src
    }
}

/// How instance `key` relabels the problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CnnRelabel {
    pub sym: Symmetry,
    /// Canonical class `c` is instance class `class[c]`.
    pub class: Vec<usize>,
}

/// Side of a zero-padded image.
const PAD: usize = SIDE + 2;

/// The scratch of one evaluation, sized for `CHUNK` images.
struct Work {
    /// The chunk's images, zero-padded to 10 x 10 (the border is never written, so stays 0).
    pad: Vec<f64>,
    /// Conv output after ReLU, `[n, C, 8, 8]` (PyTorch's layout).
    act: Vec<f64>,
    /// Pooled features in PyTorch's flatten order, `[n, 16 C]`.
    feats: Vec<f64>,
    /// Logits `[n, 10]`, then `softmax - onehot`.
    logits: Vec<f64>,
    dfeats: Vec<f64>,
    dact: Vec<f64>,
    /// Head weight transposed, `[16 C, 10]`.
    ht: Vec<f64>,
}

impl Work {
    fn new(c: usize) -> Work {
        let z = |n: usize| vec![0.0; n];
        Work {
            pad: z(CHUNK * PAD * PAD),
            act: z(CHUNK * c * PIX),
            feats: z(CHUNK * POOLED * c),
            logits: z(CHUNK * CLASSES),
            dfeats: z(CHUNK * POOLED * c),
            dact: z(CHUNK * c * PIX),
            ht: z(POOLED * c * CLASSES),
        }
    }
}

pub struct Cnn {
    name: String,
    channels: usize,
    batch: usize,
    train: Arc<Dataset>,
    test: Arc<Dataset>,
    relabel: Option<CnnRelabel>,
    pool: Mutex<Vec<Work>>,
}

impl Cnn {
    /// Instance `key` of problem `name`: `channels` conv channels, minibatches of `batch` images,
    /// on the canonical `split` (8x8 images, 10 classes).
    pub fn new(name: &str, key: u64, split: Split, channels: usize, batch: usize) -> Cnn {
        Cnn::relabelled(name, split, channels, batch, (key != 0).then(|| CnnRelabel::draw(name, key)))
    }

    /// The problem on the canonical `split` relabelled by `relabel` (None: the canonical problem).
    pub(crate) fn relabelled(name: &str, (train, test): Split, channels: usize, batch: usize, relabel: Option<CnnRelabel>) -> Cnn {
        assert_eq!((train.d, train.classes), (PIX, CLASSES), "{name}: needs 8x8 images in 10 classes");
        let (train, test) = match &relabel {
            None => (train, test),
            Some(r) => {
                let src = r.sym.sources(SIDE);
                (Arc::new(train.relabelled(&src, &r.class)), Arc::new(test.relabelled(&src, &r.class)))
            }
        };
        Cnn { name: name.to_string(), channels, batch, train, test, relabel, pool: Mutex::new(Vec::new()) }
    }

    #[cfg(test)]
    pub(crate) fn relabel(&self) -> Option<&CnnRelabel> {
        self.relabel.as_ref()
    }

    #[cfg(test)]
    pub(crate) fn splits(&self) -> (&Dataset, &Dataset) {
        (&self.train, &self.test)
    }

    fn features(&self) -> usize {
        POOLED * self.channels
    }

    /// Runs `f` with a scratch from the pool (a new one if every scratch is in use).
    fn with_work<R>(&self, f: impl FnOnce(&mut Work) -> R) -> R {
        let taken = self.pool.lock().map(|mut p| p.pop()).unwrap_or(None);
        let mut w = taken.unwrap_or_else(|| Work::new(self.channels));
        let r = f(&mut w);
        if let Ok(mut p) = self.pool.lock() {
            p.push(w);
        }
        r
    }

    /// Forward pass of images `rows` of `ds` (at most `CHUNK`) up to the logits. The head's
    /// transpose must be in `w.ht`.
    fn forward(&self, p: &[Tensor], ds: &Dataset, rows: &[usize], w: &mut Work) {
        let (c, n, f) = (self.channels, rows.len(), self.features());
        let (kw, kb) = (&p[CW].data, &p[CB].data);
        for (b, &i) in rows.iter().enumerate() {
            let pad = &mut w.pad[b * PAD * PAD..(b + 1) * PAD * PAD];
            for y in 0..SIDE {
                pad[(y + 1) * PAD + 1..(y + 1) * PAD + 1 + SIDE].copy_from_slice(&ds.x[i * PIX + y * SIDE..i * PIX + (y + 1) * SIDE]);
            }
            let pad = &w.pad[b * PAD * PAD..(b + 1) * PAD * PAD];
            let act = &mut w.act[b * c * PIX..(b + 1) * c * PIX];
            let fr = &mut w.feats[b * f..(b + 1) * f];
            for ch in 0..c {
                let k: &[f64; TAPS] = kw[ch * TAPS..(ch + 1) * TAPS].try_into().unwrap();
                let out = &mut act[ch * PIX..(ch + 1) * PIX];
                // out[y, :] = bias + sum over the taps (in order) of k[t] * the shifted input row
                for y in 0..SIDE {
                    let mut acc = [kb[ch]; SIDE];
                    for dy in 0..3 {
                        for dx in 0..3 {
                            let row: &[f64; SIDE] = pad[(y + dy) * PAD + dx..(y + dy) * PAD + dx + SIDE].try_into().unwrap();
                            let kt = k[dy * 3 + dx];
                            for q in 0..SIDE {
                                acc[q] += kt * row[q];
                            }
                        }
                    }
                    for q in 0..SIDE {
                        out[y * SIDE + q] = acc[q].max(0.0);
                    }
                }
                // 2x2 average pooling into PyTorch's flatten order
                for py in 0..SIDE / 2 {
                    for px in 0..SIDE / 2 {
                        let o = 2 * py * SIDE + 2 * px;
                        fr[ch * POOLED + py * (SIDE / 2) + px] =
                            0.25 * ((out[o] + out[o + 1]) + (out[o + SIDE] + out[o + SIDE + 1]));
                    }
                }
            }
        }
        mm(&w.feats[..n * f], &w.ht, Some(&p[HB].data), &mut w.logits[..n * CLASSES], n, f, CLASSES);
    }

    /// Accumulates the (unscaled) gradient of the chunk whose `logits` hold `softmax - onehot`.
    fn backward(&self, p: &[Tensor], n: usize, w: &mut Work, g: &mut [Tensor]) {
        let (c, f) = (self.channels, self.features());
        let dz = &w.logits[..n * CLASSES];
        mm_tn_acc(dz, &w.feats[..n * f], &mut g[HW].data, n, CLASSES, f);
        col_sum_acc(dz, &mut g[HB].data, n, CLASSES);
        let dfeats = &mut w.dfeats[..n * f];
        mm(dz, &p[HW].data, None, dfeats, n, CLASSES, f);
        let (gw, gb) = g.split_at_mut(CB);
        let (gw, gb) = (&mut gw[CW].data, &mut gb[0].data);
        for ch in 0..c {
            // per tap, eight lanes of partial sums over the chunk (fixed order)
            let mut acc = [[0.0f64; SIDE]; TAPS];
            let mut accb = [0.0f64; SIDE];
            for b in 0..n {
                let act = &w.act[(b * c + ch) * PIX..(b * c + ch + 1) * PIX];
                let dact = &mut w.dact[..PIX];
                let dfr = &dfeats[b * f + ch * POOLED..b * f + (ch + 1) * POOLED];
                for y in 0..SIDE {
                    for q in 0..SIDE {
                        let o = y * SIDE + q;
                        let up = 0.25 * dfr[(y / 2) * (SIDE / 2) + q / 2];
                        dact[o] = if act[o] > 0.0 { up } else { 0.0 };
                    }
                }
                let pad = &w.pad[b * PAD * PAD..(b + 1) * PAD * PAD];
                for y in 0..SIDE {
                    let d: &[f64; SIDE] = dact[y * SIDE..(y + 1) * SIDE].try_into().unwrap();
                    for q in 0..SIDE {
                        accb[q] += d[q];
                    }
                    for dy in 0..3 {
                        for dx in 0..3 {
                            let row: &[f64; SIDE] = pad[(y + dy) * PAD + dx..(y + dy) * PAD + dx + SIDE].try_into().unwrap();
                            let a = &mut acc[dy * 3 + dx];
                            for q in 0..SIDE {
                                a[q] += d[q] * row[q];
                            }
                        }
                    }
                }
            }
            let lanes = |v: &[f64; SIDE]| ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
            for t in 0..TAPS {
                gw[ch * TAPS + t] += lanes(&acc[t]);
            }
            gb[ch] += lanes(&accb);
        }
    }

    /// Mean cross-entropy over images `rows` of `ds` (None = every image); with `grads`, writes
    /// the gradient; with `hits`, counts correct argmax predictions.
    fn eval(
        &self,
        params: &[Tensor],
        ds: &Dataset,
        rows: Option<&[usize]>,
        mut grads: Option<&mut [Tensor]>,
        mut hits: Option<&mut usize>,
    ) -> f64 {
        let all: Vec<usize>;
        let rows = match rows {
            Some(r) => r,
            None => {
                all = (0..ds.n).collect();
                &all
            }
        };
        if let Some(g) = grads.as_deref_mut() {
            for t in g.iter_mut() {
                t.data.fill(0.0);
            }
        }
        let want = grads.is_some();
        let total = self.with_work(|w| {
            transpose_into(&params[HW].data, CLASSES, self.features(), &mut w.ht);
            let mut total = 0.0;
            for chunk in rows.chunks(CHUNK) {
                self.forward(params, ds, chunk, w);
                for (b, &i) in chunk.iter().enumerate() {
                    let z = &mut w.logits[b * CLASSES..(b + 1) * CLASSES];
                    if let Some(h) = hits.as_deref_mut() {
                        *h += usize::from(argmax(z) == ds.y[i]);
                    }
                    total += cross_entropy(z, ds.y[i], want);
                }
                if let Some(g) = grads.as_deref_mut() {
                    self.backward(params, chunk.len(), w, g);
                }
            }
            total
        });
        let inv = 1.0 / rows.len().max(1) as f64;
        if let Some(g) = grads {
            for t in g.iter_mut() {
                for v in t.data.iter_mut() {
                    *v *= inv;
                }
            }
        }
        total * inv
    }

    fn accuracy(&self, params: &[Tensor], ds: &Dataset) -> f64 {
        let mut hits = 0;
        self.eval(params, ds, None, None, Some(&mut hits));
        hits as f64 / ds.n.max(1) as f64
    }

    /// The canonical parameters in this instance's coordinates (identity on the canonical
    /// problem).
    pub(crate) fn relabel_params(&self, params: &[Tensor]) -> Vec<Tensor> {
        match &self.relabel {
            None => params.to_vec(),
            Some(r) => r.params(params, self.channels),
        }
    }

    /// The ReLU pattern (which conv outputs are positive) on images `rows` of the training set,
    /// one bit per output, packed.
    #[cfg(test)]
    pub(crate) fn relu_pattern(&self, params: &[Tensor], rows: &[usize]) -> Vec<u64> {
        let mut bits = Vec::new();
        let (mut word, mut k) = (0u64, 0);
        self.with_work(|w| {
            transpose_into(&params[HW].data, CLASSES, self.features(), &mut w.ht);
            for chunk in rows.chunks(CHUNK) {
                self.forward(params, &self.train, chunk, w);
                for &v in &w.act[..chunk.len() * PIX * self.channels] {
                    word |= u64::from(v > 0.0) << k;
                    k += 1;
                    if k == 64 {
                        bits.push(word);
                        (word, k) = (0, 0);
                    }
                }
            }
        });
        bits.push(word);
        bits
    }
}

impl CnnRelabel {
    pub(crate) fn draw(name: &str, key: u64) -> CnnRelabel {
        let class = permutation(CLASSES, &mut Rng::derive(key, &format!("{name}/classes")));
        let sym = Symmetry(Rng::derive(key, &format!("{name}/symmetry")).below(8) as u8);
        CnnRelabel { sym, class }
    }

    /// Kernels through the symmetry (on the 3x3 grid), head columns through it (on the pooled
    /// 4x4 grid of each channel), head rows and bias through the class permutation.
    pub(crate) fn params(&self, params: &[Tensor], channels: usize) -> Vec<Tensor> {
        let (k3, k4) = (self.sym.sources(3), self.sym.sources(SIDE / 2));
        let mut out = params.to_vec();
        for ch in 0..channels {
            for (t, &s) in k3.iter().enumerate() {
                out[CW].data[ch * TAPS + t] = params[CW].data[ch * TAPS + s];
            }
        }
        let f = POOLED * channels;
        for (k, &kk) in self.class.iter().enumerate() {
            for ch in 0..channels {
                for (q, &s) in k4.iter().enumerate() {
                    out[HW].data[kk * f + ch * POOLED + q] = params[HW].data[k * f + ch * POOLED + s];
                }
            }
            out[HB].data[kk] = params[HB].data[k];
        }
        out
    }
}

fn uniform(shape: &[usize], bound: f64, rng: &mut Rng) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec(shape, (0..n).map(|_| rng.uniform_range(-bound, bound)).collect())
}

impl Problem for Cnn {
    fn name(&self) -> &str {
        &self.name
    }
    fn shapes(&self) -> Vec<Vec<usize>> {
        let c = self.channels;
        vec![vec![c, 1, 3, 3], vec![c], vec![CLASSES, POOLED * c], vec![CLASSES]]
    }
    fn kinds(&self) -> Vec<ParamKind> {
        vec![ParamKind::Matrix, ParamKind::Vector, ParamKind::Head, ParamKind::Vector]
    }
    /// PyTorch's default init of Conv2d then Linear (weight, bias, weight, bias), mapped into the
    /// instance.
    fn init(&self, rng: &mut Rng) -> Vec<Tensor> {
        let (c, f) = (self.channels, self.features());
        let (bc, bh) = (1.0 / (TAPS as f64).sqrt(), 1.0 / (f as f64).sqrt());
        let p = vec![
            uniform(&[c, 1, 3, 3], bc, rng),
            uniform(&[c], bc, rng),
            uniform(&[CLASSES, f], bh, rng),
            uniform(&[CLASSES], bh, rng),
        ];
        self.relabel_params(&p)
    }
    fn loss_grad(&self, params: &[Tensor], batch: Option<&[usize]>, grads: &mut [Tensor]) -> f64 {
        self.eval(params, &self.train, batch, Some(grads), None)
    }
    fn loss(&self, params: &[Tensor], batch: Option<&[usize]>) -> f64 {
        self.eval(params, &self.train, batch, None, None)
    }
    fn train_size(&self) -> Option<usize> {
        Some(self.train.n)
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
        1
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tests::{fingerprint, flat};
    use crate::{data, entry, instance, tensors_from_shapes, PROBLEMS};

    /// The registered problem `name` (instance `key`) as its concrete type.
    pub(crate) fn registered(name: &str, key: u64) -> Option<Cnn> {
        let channels = match name {
            "cnn-digits" => 8,
            "cnn-digits-c4" => 4,
            _ => {
                assert!(entry(name).is_none_or(|e| e.family != "cnn"), "{name}: a CNN the tests do not know");
                return None;
            }
        };
        Some(Cnn::new(name, key, data::digits(), channels, 32))
    }

    const NAMES: [&str; 2] = ["cnn-digits", "cnn-digits-c4"];

    fn cnn(name: &str, key: u64) -> Cnn {
        registered(name, key).unwrap()
    }

    fn perturbed(p: &dyn Problem, seed: u64, sd: f64) -> Vec<Tensor> {
        let mut x = p.init(&mut Rng::derive(seed, "init"));
        let mut r = Rng::derive(seed, "perturb");
        for v in x.iter_mut().flat_map(|t| t.data.iter_mut()) {
            *v += sd * r.normal();
        }
        x
    }

    /// What a kink-aware finite-difference check found.
    #[derive(Debug)]
    pub(crate) struct KinkCheck {
        /// Norm-wise relative error over the checked coordinates.
        pub err: f64,
        pub checked: usize,
        /// Coordinates checked at a smaller step than the first (a kink was within the first).
        pub shrunk: usize,
        /// Coordinates skipped: a kink stayed within every step tried.
        pub skipped: usize,
        /// Checked coordinates among the conv weights and biases.
        pub conv_checked: usize,
    }

    /// Central finite differences that are sound across the ReLU kinks. Every pre-activation is
    /// affine in each single parameter (the conv weights and bias enter once, linearly; the head
    /// does not reach them), so if the ReLU pattern on the batch is the same at `x - h` and
    /// `x + h` as at `x`, no pre-activation changes sign on the segment and the loss is smooth on
    /// it: the central difference is then accurate to O(h^2). A coordinate whose pattern changes
    /// is retried at h/10 and h/100, then skipped (and counted). About `conv_coords` evenly
    /// spaced coordinates of the conv weights and bias are checked (all of them for
    /// `usize::MAX`), and about `head_coords` of the head's. `g` is the gradient to judge (the
    /// model's own; a corrupted one to show that the check catches it).
    pub(crate) fn check_grad_kinks_of(
        p: &Cnn,
        params: &[Tensor],
        batch: Option<&[usize]>,
        g: &[f64],
        conv_coords: usize,
        head_coords: usize,
    ) -> KinkCheck {
        let all: Vec<usize> = (0..p.train.n).collect();
        let rows = batch.unwrap_or(&all);
        let base = p.relu_pattern(params, rows);
        let x = flat(params);
        let conv = params[CW].len() + params[CB].len();
        let head = x.len() - conv;
        let (cs, hs) = (conv.div_ceil(conv_coords.max(1)).max(1), head.div_ceil(head_coords.max(1)).max(1));
        let coords = (0..conv).step_by(cs).chain((conv..x.len()).step_by(hs));
        let mut work = params.to_vec();
        let mut out = KinkCheck { err: 0.0, checked: 0, shrunk: 0, skipped: 0, conv_checked: 0 };
        let (mut num, mut den) = (0.0f64, 0.0f64);
        for k in coords {
            let mut h = 1e-5 * (1.0 + x[k].abs());
            let mut found = None;
            for attempt in 0..3 {
                crate::tests::set(&mut work, k, x[k] + h);
                let (fp, pp) = (p.loss(&work, batch), p.relu_pattern(&work, rows));
                crate::tests::set(&mut work, k, x[k] - h);
                let (fm, pm) = (p.loss(&work, batch), p.relu_pattern(&work, rows));
                crate::tests::set(&mut work, k, x[k]);
                if pp == base && pm == base {
                    found = Some(((fp - fm) / (2.0 * h), attempt));
                    break;
                }
                h *= 0.1;
            }
            let Some((fd, attempt)) = found else {
                out.skipped += 1;
                continue;
            };
            out.checked += 1;
            out.shrunk += usize::from(attempt > 0);
            out.conv_checked += usize::from(k < conv);
            num += (fd - g[k]).powi(2);
            den += g[k].powi(2).max(fd * fd);
        }
        out.err = (num / den.max(1e-300)).sqrt();
        out
    }

    /// `check_grad_kinks_of` for the model's own gradient.
    pub(crate) fn check_grad_kinks(
        p: &Cnn,
        params: &[Tensor],
        batch: Option<&[usize]>,
        conv_coords: usize,
        head_coords: usize,
    ) -> KinkCheck {
        let mut g = tensors_from_shapes(&p.shapes());
        let l = p.loss_grad(params, batch, &mut g);
        assert_eq!(l.to_bits(), p.loss(params, batch).to_bits(), "loss vs loss_grad");
        check_grad_kinks_of(p, params, batch, &flat(&g), conv_coords, head_coords)
    }

    /// The shared finite-difference tests' check for a registered CNN (`None` for other
    /// problems): the kink-aware check on half the conv coordinates and 20 head coordinates,
    /// none of them skipped.
    pub(crate) fn check_grad_registered(name: &str, key: u64, params: &[Tensor], batch: Option<&[usize]>) -> Option<f64> {
        let p = registered(name, key)?;
        let r = check_grad_kinks(&p, params, batch, 40, 20);
        assert!(r.skipped == 0 && r.conv_checked >= 30, "{name} key {key}: {r:?}");
        Some(r.err)
    }

    #[test]
    fn gradient_matches_finite_differences_across_relu_kinks() {
        for name in NAMES {
            let p = cnn(name, 0);
            let n = p.train_size().unwrap();
            for seed in 0..2 {
                let x = perturbed(&p, seed, 0.3);
                let mut r = Rng::derive(seed, "batch");
                let b32: Vec<usize> = (0..32).map(|_| r.below(n)).collect();
                // two chunks, the second partial, with a repeated image
                let mut b100: Vec<usize> = (0..99).map(|_| r.below(n)).collect();
                b100.push(b100[3]);
                for (what, b) in [("batch of 32", &b32), ("batch of 100", &b100)] {
                    let c = check_grad_kinks(&p, &x, Some(b), usize::MAX, 200);
                    assert!(c.err < 1e-7, "{name} seed {seed} {what}: {c:?}");
                    assert!(c.skipped * 20 <= c.checked && c.conv_checked * 20 >= 19 * 10 * p.channels, "{name} seed {seed} {what}: {c:?}");
                }
            }
            // the whole training set: kinks within the first step do happen there
            let x = perturbed(&p, 2, 0.3);
            let c = check_grad_kinks(&p, &x, None, usize::MAX, 40);
            println!("{name} full training set: {c:?}");
            assert!(c.err < 1e-7 && c.skipped * 20 <= c.checked, "{name} full: {c:?}");
            // the full loss is the mean over every training image, whatever the chunking
            let all: Vec<usize> = (0..n).collect();
            let (mut g1, mut g2) = (tensors_from_shapes(&p.shapes()), tensors_from_shapes(&p.shapes()));
            let (l1, l2) = (p.loss_grad(&x, None, &mut g1), p.loss_grad(&x, Some(&all), &mut g2));
            assert_eq!((l1.to_bits(), flat(&g1)), (l2.to_bits(), flat(&g2)), "{name}");
        }
    }

    /// The check has teeth: small, plausible errors in the gradient fail it.
    #[test]
    fn the_kink_aware_check_catches_a_wrong_gradient() {
        let p = cnn("cnn-digits", 0);
        let x = perturbed(&p, 1, 0.3);
        let batch: Vec<usize> = (0..32).map(|i| i * 41).collect();
        let mut g = tensors_from_shapes(&p.shapes());
        p.loss_grad(&x, Some(&batch), &mut g);
        let g = flat(&g);
        let ok = check_grad_kinks_of(&p, &x, Some(&batch), &g, usize::MAX, 200);
        assert!(ok.err < 1e-7, "{ok:?}");
        let (conv, head0) = (72, 80);
        type Corrupt = Box<dyn Fn(&mut Vec<f64>)>;
        let corruptions: Vec<(&str, Corrupt)> = vec![
            ("one conv weight 0.1% off", Box::new(|g: &mut Vec<f64>| g[13] *= 1.001)),
            ("a kernel flipped (convolution for correlation)", Box::new(|g: &mut Vec<f64>| g[9..18].reverse())),
            ("conv bias gradient missing", Box::new(move |g: &mut Vec<f64>| g[conv..conv + 8].fill(0.0))),
            ("head columns transposed within a channel", Box::new(move |g: &mut Vec<f64>| {
                for k in 0..10 {
                    let row = &mut g[head0 + k * 128..head0 + k * 128 + 16];
                    let t: Vec<f64> = (0..16).map(|q| row[(q % 4) * 4 + q / 4]).collect();
                    row.copy_from_slice(&t);
                }
            })),
        ];
        for (what, corrupt) in corruptions {
            let mut bad = g.clone();
            corrupt(&mut bad);
            assert_ne!(bad, g, "{what}");
            let c = check_grad_kinks_of(&p, &x, Some(&batch), &bad, usize::MAX, 1280);
            assert!(c.err > 1e-6, "{what}: not caught, {c:?}");
        }
    }

    #[test]
    fn the_concrete_constructor_here_is_the_registered_problem() {
        let cnns: Vec<&str> = PROBLEMS.iter().filter(|e| e.family == "cnn").map(|e| e.name).collect();
        assert_eq!(cnns, NAMES);
        for name in NAMES {
            for key in [0, 5] {
                assert_eq!(fingerprint(&cnn(name, key)), fingerprint(instance(name, key).unwrap().as_ref()), "{name} {key}");
            }
        }
        assert!(registered("mlp-digits", 0).is_none());
    }

    #[test]
    fn shapes_kinds_and_the_pytorch_default_init() {
        for (name, c, dim) in [("cnn-digits", 8, 1370), ("cnn-digits-c4", 4, 690)] {
            let p = cnn(name, 0);
            assert_eq!(p.shapes(), vec![vec![c, 1, 3, 3], vec![c], vec![10, 16 * c], vec![10]]);
            assert_eq!(p.kinds(), vec![ParamKind::Matrix, ParamKind::Vector, ParamKind::Head, ParamKind::Vector]);
            assert_eq!((p.dim(), p.batch_size(), p.train_size()), (dim, 32, Some(1437)));
            assert_eq!(p.splits().1.n, 360);
            let x = p.init(&mut Rng::derive(3, "init"));
            let hb = 1.0 / (16.0 * c as f64).sqrt();
            for (t, bound) in x.iter().zip([1.0 / 3.0, 1.0 / 3.0, hb, hb]) {
                let m = t.data.iter().fold(0.0f64, |a, v| a.max(v.abs()));
                assert!(m < bound && m > 0.7 * bound, "{name}: {:?} max {m} bound {bound}", t.shape);
            }
            // chance accuracy at the init, a finite loss near ln 10
            let l = p.loss(&x, None);
            assert!((l - 10f64.ln()).abs() < 0.3, "{name}: {l}");
        }
    }

    #[test]
    fn the_symmetries_are_the_eight_of_the_square_and_commute_with_the_pooling() {
        let mut seen = std::collections::HashSet::new();
        for code in 0..8u8 {
            let s = Symmetry(code);
            for n in [3, 4, 8] {
                let mut src = s.sources(n);
                src.sort();
                assert_eq!(src, (0..n * n).collect::<Vec<_>>(), "{code} {n}");
            }
            assert!(seen.insert(s.sources(8)), "{code}: a duplicate");
            for y in 0..8 {
                for x in 0..8 {
                    let (ty, tx) = s.map(8, y, x);
                    assert_eq!((ty / 2, tx / 2), s.map(4, y / 2, x / 2), "{code}: pooling blocks");
                }
            }
        }
        // keys draw every symmetry and non-trivial class permutations
        let mut codes = std::collections::HashSet::new();
        for key in 1..=64 {
            let r = CnnRelabel::draw("cnn-digits", key);
            codes.insert(r.sym.0);
            assert_ne!(r.class, (0..10).collect::<Vec<_>>());
        }
        assert_eq!(codes.len(), 8);
    }

    /// An instance at relabelled parameters is the canonical problem: same loss, gradient
    /// (relabelled) and accuracies; its data is the canonical data through the symmetry and the
    /// class permutation; its init is the canonical init relabelled. Every symmetry, then keys.
    #[test]
    fn instances_flip_or_transpose_the_images_permute_the_classes_and_equal_the_canonical_problem() {
        for name in NAMES {
            let canon = cnn(name, 0);
            assert!(canon.relabel().is_none());
            let class = permutation(10, &mut Rng::derive(9, "test"));
            let mut insts: Vec<Cnn> = (0..8u8)
                .map(|code| {
                    let r = CnnRelabel { sym: Symmetry(code), class: class.clone() };
                    Cnn::relabelled(name, data::digits(), canon.channels, 32, Some(r))
                })
                .collect();
            insts.push(cnn(name, 1));
            insts.push(cnn(name, 0xDEAD_BEEF));
            for inst in &insts {
                let r = inst.relabel().unwrap().clone();
                let what = format!("{name} {r:?}");
                for (cd, id) in [(canon.splits().0, inst.splits().0), (canon.splits().1, inst.splits().1)] {
                    for i in [0, 7, cd.n - 1] {
                        for y in 0..SIDE {
                            for x in 0..SIDE {
                                let (ty, tx) = r.sym.map(SIDE, y, x);
                                assert_eq!(id.x[i * PIX + ty * SIDE + tx].to_bits(), cd.x[i * PIX + y * SIDE + x].to_bits());
                            }
                        }
                        assert_eq!(id.y[i], r.class[cd.y[i]], "{what}");
                    }
                }
                let map = |p: &[Tensor]| inst.relabel_params(p);
                assert_eq!(inst.init(&mut Rng::derive(4, "init")), map(&canon.init(&mut Rng::derive(4, "init"))), "{what}");
                let theta = perturbed(&canon, 6, 0.3);
                let theta_i = map(&theta);
                for b in [Some(&[5usize, 9, 9, 1000][..]), None] {
                    let (mut gc, mut gi) = (tensors_from_shapes(&canon.shapes()), tensors_from_shapes(&inst.shapes()));
                    let lc = canon.loss_grad(&theta, b, &mut gc);
                    let li = inst.loss_grad(&theta_i, b, &mut gi);
                    assert!((lc - li).abs() <= 1e-12 * lc.abs(), "{what}: {lc} vs {li}");
                    let (gc, gi) = (flat(&map(&gc)), flat(&gi));
                    let diff = gc.iter().zip(&gi).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
                    assert!(diff < 1e-13, "{what}: gradients differ by {diff:e}");
                }
                assert_eq!(canon.test_accuracy(&theta), inst.test_accuracy(&theta_i), "{what}");
                assert_eq!(canon.train_accuracy(&theta), inst.train_accuracy(&theta_i), "{what}");
                // canonical weights are of no use on the instance
                let (li, lc) = (inst.loss(&theta, None), canon.loss(&theta, None));
                assert!((li - lc).abs() > 1e-3, "{what}: {li} vs {lc}");
            }
        }
    }

    /// CPU time of this thread in microseconds (Linux's schedstat; the wall clock elsewhere): the
    /// machine is shared, so wall time overstates the cost under load.
    fn cpu_us() -> f64 {
        match std::fs::read_to_string("/proc/thread-self/schedstat") {
            Ok(s) => s.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 1e3,
            Err(_) => 0.0,
        }
    }

    /// (wall, cpu) microseconds per call of `f`.
    fn time_us(reps: usize, mut f: impl FnMut(usize)) -> (f64, f64) {
        let (t0, c0) = (std::time::Instant::now(), cpu_us());
        for i in 0..reps {
            f(i);
        }
        let (c1, t1) = (cpu_us(), t0.elapsed());
        (t1.as_secs_f64() * 1e6 / reps as f64, (c1 - c0) / reps as f64)
    }

    #[test]
    fn speed_of_one_minibatch_step() {
        for name in ["cnn-digits", "cnn-digits-c4"] {
            let p = cnn(name, 0);
            let x = p.init(&mut Rng::derive(1, "init"));
            let mut g = tensors_from_shapes(&p.shapes());
            let mut r = Rng::derive(1, "batch");
            let batches: Vec<Vec<usize>> = (0..64).map(|_| (0..p.batch_size()).map(|_| r.below(1437)).collect()).collect();
            for b in &batches {
                p.loss_grad(&x, Some(b), &mut g);
            }
            let reps = 2000;
            let (us, cpu) = time_us(reps, |i| {
                std::hint::black_box(p.loss_grad(&x, Some(&batches[i % 64]), &mut g));
            });
            let (fwd, fcpu) = time_us(reps, |i| {
                std::hint::black_box(p.loss(&x, Some(&batches[i % 64])));
            });
            let (full, _) = time_us(5, |_| {
                std::hint::black_box(p.loss(&x, None));
            });
            let mut acc = 0.0;
            let (ta, _) = time_us(5, |_| acc = p.test_accuracy(&x).unwrap());
            println!(
                "{name}: dim {} loss_grad(batch {}) {us:.1} us wall / {cpu:.1} us cpu, loss {fwd:.1} / {fcpu:.1} us; full loss {full:.0} us; test acc {acc:.3} in {ta:.0} us",
                p.dim(),
                p.batch_size()
            );
        }
    }
}
