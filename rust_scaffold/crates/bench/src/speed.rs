//! `speed adam N STEPS` and `speed all [N] [STEPS] [CHUNK] [LABELS]`: baseline optimizer steps
//! against std-only kernels of the same memory shape. Not part of the run protocol: each prints
//! one JSON line and changes nothing the benchmark measures.
//!
//! `speed adam`: the baseline Adam step against a raw Adam-shaped in-place kernel. Both run in the
//! same process on N parameters, alternating step by step so that drift of a shared, noisy machine
//! hits them alike. The kernel reads 4 arrays (p, g, m, v) and writes 3 (p, m, v), once in f64
//! (the dtype of every baseline) and once in f32 (the dtype of the issue's ceiling and of
//! PyTorch's default). Bandwidth counts those 7 array passes: bytes/step = 7 * N * size_of(float).
//!
//! `speed all`: every element-wise baseline of [`SHAPES`] (and the option settings of
//! [`VARIANTS`], whose loops differ) against a plain f64 zip loop that reads and writes as many
//! arrays as the baseline does (p, g and its state arrays), on one tensor of N parameters and on N
//! split into tensors of CHUNK elements (the problems have many small tensors). Bytes per step =
//! (arrays read + arrays written) * N * 8, the same for both, so the ratio of their times is the
//! ratio of their bandwidths.

use crate::json::Obj;
use frontier_core::{NanOracle, StepContext, Tensor};
use std::hint::black_box;
use std::time::Instant;

const LR: f64 = 1e-3;
const B1: f64 = 0.9;
const B2: f64 = 0.999;
const EPS: f64 = 1e-8;
const B3: f64 = 0.9999;
const ALPHA: f64 = 5.0;

/// One Adam step written as a flat loop over f64 slices (same arithmetic as torch's Adam).
pub fn kernel_f64(p: &mut [f64], g: &[f64], m: &mut [f64], v: &mut [f64], t: u64) {
    let step_size = LR / (1.0 - B1.powi(t as i32));
    let bc2_sqrt = (1.0 - B2.powi(t as i32)).sqrt();
    for (((pj, &gj), mj), vj) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let mn = B1 * *mj + (1.0 - B1) * gj;
        let vn = B2 * *vj + (1.0 - B2) * gj * gj;
        *mj = mn;
        *vj = vn;
        *pj -= step_size * mn / (vn.sqrt() / bc2_sqrt + EPS);
    }
}

/// The same step in f32.
pub fn kernel_f32(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], t: u64) {
    let step_size = (LR / (1.0 - B1.powi(t as i32))) as f32;
    let bc2_sqrt = (1.0 - B2.powi(t as i32)).sqrt() as f32;
    let (b1, b2, eps) = (B1 as f32, B2 as f32, EPS as f32);
    for (((pj, &gj), mj), vj) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let mn = b1 * *mj + (1.0 - b1) * gj;
        let vn = b2 * *vj + (1.0 - b2) * gj * gj;
        *mj = mn;
        *vj = vn;
        *pj -= step_size * mn / (vn.sqrt() / bc2_sqrt + eps);
    }
}

/// A deterministic gradient-like value in [-0.5, 0.5).
fn value(i: usize) -> f64 {
    ((i as u64).wrapping_mul(2_654_435_761) % 1000) as f64 / 1000.0 - 0.5
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn figures(name: &str, ns: &mut [f64], n: usize, bytes_per_param: usize) -> String {
    let med = median(ns);
    let min = ns[0];
    let bytes = (7 * n * bytes_per_param) as f64;
    let mut o = Obj::new();
    o.str("name", name)
        .u("bytes_per_step", bytes as u64)
        .f("ns_per_step_median", med)
        .f("ns_per_step_min", min)
        .f("gb_per_s", bytes / med)
        .f("params_per_s", n as f64 / med * 1e9);
    o.finish()
}

/// Runs `steps` timed steps (after 2 untimed warm-up steps) of each of the three and returns the
/// JSON line. It includes the largest difference between the baseline's and the f64 kernel's
/// parameters, relative to the distance Adam moved them, which shows the kernel does Adam's work.
pub fn adam(n: usize, steps: usize) -> Result<String, String> {
    if n == 0 || steps == 0 {
        return Err("speed adam needs N > 0 parameters and STEPS > 0".into());
    }
    let warmup = 2;
    let grads64: Vec<f64> = (0..n).map(value).collect();
    let init: Vec<f64> = (0..n).map(|i| value(i + 7)).collect();
    let mut params = vec![Tensor::from_vec(&[n], init.clone())];
    let grads = vec![Tensor::from_vec(&[n], grads64.clone())];
    let mut adam = frontier_baselines::build("adam", &[]).expect("adam is a baseline");
    let (mut p64, mut m64, mut v64) = (init.clone(), vec![0.0f64; n], vec![0.0f64; n]);
    let g32: Vec<f32> = grads64.iter().map(|&x| x as f32).collect();
    let mut p32: Vec<f32> = init.iter().map(|&x| x as f32).collect();
    let (mut m32, mut v32) = (vec![0.0f32; n], vec![0.0f32; n]);
    let oracle = NanOracle;
    let (mut base_ns, mut k64_ns, mut k32_ns) = (Vec::new(), Vec::new(), Vec::new());
    for t in 1..=(warmup + steps) as u64 {
        let ctx = StepContext::new(t, f64::NAN, LR, &oracle);
        let t0 = Instant::now();
        adam.step(black_box(&mut params), black_box(&grads), &ctx);
        let base = t0.elapsed().as_nanos() as f64;
        let t0 = Instant::now();
        kernel_f64(black_box(&mut p64), black_box(&grads64), &mut m64, &mut v64, t);
        let k64 = t0.elapsed().as_nanos() as f64;
        let t0 = Instant::now();
        kernel_f32(black_box(&mut p32), black_box(&g32), &mut m32, &mut v32, t);
        let k32 = t0.elapsed().as_nanos() as f64;
        if t > warmup as u64 {
            base_ns.push(base);
            k64_ns.push(k64);
            k32_ns.push(k32);
        }
    }
    // Relative to the distance Adam moves a parameter (about lr per step).
    let travel = LR * (warmup + steps) as f64;
    let max_rel_diff =
        params[0].as_slice().iter().zip(&p64).map(|(a, b)| (a - b).abs()).fold(0.0f64, f64::max) / travel;
    let checksum: f64 = p32.iter().map(|&x| x as f64).sum::<f64>() + p64.iter().sum::<f64>();
    let base = figures("baseline_adam_f64", &mut base_ns, n, 8);
    let k64 = figures("kernel_f64", &mut k64_ns, n, 8);
    let k32 = figures("kernel_f32", &mut k32_ns, n, 4);
    let (mb, m64_, m32_) = (median(&mut base_ns), median(&mut k64_ns), median(&mut k32_ns));
    let mut o = Obj::new();
    o.str("bench", "adam")
        .u("params", n as u64)
        .u("steps", steps as u64)
        .u("warmup_steps", warmup as u64)
        .u("threads", 1)
        .raw("baseline", &base)
        .raw("kernel_f64", &k64)
        .raw("kernel_f32", &k32)
        // Bandwidth ratios (baseline GB/s over kernel GB/s): 1.0 = the baseline moves its bytes
        // as fast as the raw kernel moves its own.
        .f("baseline_vs_kernel_f64_bandwidth", m64_ / mb)
        .f("baseline_vs_kernel_f32_bandwidth", (m32_ / mb) * 2.0)
        .f("baseline_vs_kernel_f32_params_per_s", m32_ / mb)
        .f("max_rel_diff_baseline_vs_kernel_f64", max_rel_diff)
        .f("checksum", checksum);
    Ok(o.finish())
}

/// The memory shape of one baseline's step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// One pass that reads p, g and `state` arrays and writes p and the `state` arrays.
    ElementWise { state: usize },
    /// Not one element-wise pass (the reason); such a baseline is not judged against a kernel.
    NotElementWise(&'static str),
}

use Shape::{ElementWise, NotElementWise};

/// Every registered baseline's shape with its default options (a test keeps it in step with
/// `frontier_baselines::names()`).
pub const SHAPES: &[(&str, Shape)] = &[
    ("sgd", ElementWise { state: 0 }),
    ("momentum", ElementWise { state: 1 }),           // buf
    ("nesterov", ElementWise { state: 1 }),           // buf
    ("adam", ElementWise { state: 2 }),               // m, v
    ("adamw", ElementWise { state: 2 }),              // m, v
    ("rmsprop", ElementWise { state: 1 }),            // square_avg
    ("adagrad", ElementWise { state: 1 }),            // state_sum
    ("lion", ElementWise { state: 1 }),               // exp_avg
    ("adamax", ElementWise { state: 2 }),             // exp_avg, exp_inf
    ("nadam", ElementWise { state: 2 }),              // m, v
    ("nadamw", ElementWise { state: 2 }),             // m, v
    ("radam", ElementWise { state: 2 }),              // m, v
    ("adadelta", ElementWise { state: 2 }),           // square_avg, acc_delta
    ("schedulefree_adamw", ElementWise { state: 2 }), // z, v (p is y)
    ("ademamix", ElementWise { state: 3 }),           // m1, v, m2
    ("adafactor", NotElementWise("factored second moment: row and column means of g*g per matrix")),
    ("muon", NotElementWise("Newton-Schulz iterations: matrix products on each hidden matrix")),
    ("soap", NotElementWise("Adam in an eigenbasis: matrix products and eigendecompositions")),
    ("prodigy", NotElementWise("two passes with a dot product and an abs-sum reduction between them")),
];

/// A baseline with non-default options, timed under its own label.
pub struct Variant {
    pub label: &'static str,
    pub baseline: &'static str,
    pub opts: &'static [(&'static str, f64)],
    pub state: usize,
}

/// Option settings timed beside the defaults because their loops read and write more arrays.
pub const VARIANTS: &[Variant] = &[
    // m, v, max_exp_avg_sq
    Variant { label: "adam+amsgrad", baseline: "adam", opts: &[("amsgrad", 1.0)], state: 3 },
    // square_avg, grad_avg, buf
    Variant {
        label: "rmsprop+centered+momentum",
        baseline: "rmsprop",
        opts: &[("centered", 1.0), ("momentum", 0.9)],
        state: 3,
    },
];

/// One timed case: a baseline with options and its state-array count.
struct Case {
    label: String,
    baseline: &'static str,
    opts: Vec<(String, f64)>,
    state: usize,
}

fn cases() -> Vec<Case> {
    let defaults = SHAPES.iter().filter_map(|&(name, shape)| match shape {
        ElementWise { state } => Some(Case { label: name.into(), baseline: name, opts: Vec::new(), state }),
        NotElementWise(_) => None,
    });
    let variants = VARIANTS.iter().map(|v| Case {
        label: v.label.into(),
        baseline: v.baseline,
        opts: v.opts.iter().map(|&(k, x)| (k.to_string(), x)).collect(),
        state: v.state,
    });
    defaults.chain(variants).collect()
}

/// The kernels' step scalars (bias corrections as Adam's, so the work per element is alike).
#[derive(Clone, Copy)]
struct K {
    step_size: f64,
    bc2_sqrt: f64,
}

impl K {
    fn new(t: u64) -> K {
        K { step_size: LR / (1.0 - B1.powi(t as i32)), bc2_sqrt: (1.0 - B2.powi(t as i32)).sqrt() }
    }
}

/// Reads p, g; writes p.
fn kernel_state0(p: &mut [f64], g: &[f64], _k: K) {
    for (pj, &gj) in p.iter_mut().zip(g) {
        *pj -= LR * gj;
    }
}

/// Reads p, g, s; writes p, s (an Adagrad/RMSprop-shaped step).
fn kernel_state1(p: &mut [f64], g: &[f64], s: &mut [f64], k: K) {
    for ((pj, &gj), sj) in p.iter_mut().zip(g).zip(s.iter_mut()) {
        let sn = B2 * *sj + (1.0 - B2) * gj * gj;
        *sj = sn;
        *pj -= k.step_size * gj / (sn.sqrt() + EPS);
    }
}

/// Reads p, g, m, v; writes p, m, v (Adam).
fn kernel_state2(p: &mut [f64], g: &[f64], m: &mut [f64], v: &mut [f64], k: K) {
    for (((pj, &gj), mj), vj) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let mn = B1 * *mj + (1.0 - B1) * gj;
        let vn = B2 * *vj + (1.0 - B2) * gj * gj;
        *mj = mn;
        *vj = vn;
        *pj -= k.step_size * mn / (vn.sqrt() / k.bc2_sqrt + EPS);
    }
}

/// Reads p, g, m, v, s; writes p, m, v, s (Adam plus a slow EMA, as AdEMAMix).
fn kernel_state3(p: &mut [f64], g: &[f64], m: &mut [f64], v: &mut [f64], s: &mut [f64], k: K) {
    for ((((pj, &gj), mj), vj), sj) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()).zip(s.iter_mut()) {
        let mn = B1 * *mj + (1.0 - B1) * gj;
        let vn = B2 * *vj + (1.0 - B2) * gj * gj;
        let sn = B3 * *sj + (1.0 - B3) * gj;
        *mj = mn;
        *vj = vn;
        *sj = sn;
        *pj -= k.step_size * (mn + ALPHA * sn) / (vn.sqrt() / k.bc2_sqrt + EPS);
    }
}

/// The kernel's arrays, each split into the case's tensors (`state[array][tensor]`) and allocated
/// array by array as the baseline's are (all of p, all of g, then each state array): tensor after
/// tensor, an array's pieces follow each other in memory for both.
struct KernelArrays {
    p: Vec<Vec<f64>>,
    g: Vec<Vec<f64>>,
    state: Vec<Vec<Vec<f64>>>,
}

impl KernelArrays {
    fn step(&mut self, k: K) {
        for (i, (p, g)) in self.p.iter_mut().zip(&self.g).enumerate() {
            match &mut self.state[..] {
                [] => kernel_state0(p, g, k),
                [s] => kernel_state1(p, g, &mut s[i], k),
                [m, v] => kernel_state2(p, g, &mut m[i], &mut v[i], k),
                [m, v, s] => kernel_state3(p, g, &mut m[i], &mut v[i], &mut s[i], k),
                _ => unreachable!("kernels exist for 0 to 3 state arrays"),
            }
        }
    }
}

/// The largest state-array count a kernel exists for.
const MAX_STATE: usize = 3;

/// One case's timed steps: baseline and kernel ns per step, paired by step.
struct Timings {
    baseline_ns: Vec<f64>,
    kernel_ns: Vec<f64>,
    checksum: f64,
}

fn time_case(case: &Case, n: usize, chunk: usize, warmup: usize, steps: usize) -> Result<Timings, String> {
    let bounds: Vec<(usize, usize)> = (0..n).step_by(chunk).map(|a| (a, (a + chunk).min(n))).collect();
    let mut params: Vec<Tensor> =
        bounds.iter().map(|&(a, b)| Tensor::from_vec(&[b - a], (a..b).map(|i| value(i + 7)).collect())).collect();
    let grads: Vec<Tensor> =
        bounds.iter().map(|&(a, b)| Tensor::from_vec(&[b - a], (a..b).map(value).collect())).collect();
    let mut opt = frontier_baselines::build(case.baseline, &case.opts)?;
    let pieces =
        |f: &dyn Fn(usize) -> f64| -> Vec<Vec<f64>> { bounds.iter().map(|&(a, b)| (a..b).map(f).collect()).collect() };
    let mut kernel = KernelArrays {
        p: pieces(&|i| value(i + 7)),
        g: pieces(&value),
        state: (0..case.state).map(|_| pieces(&|_| 0.0)).collect(),
    };
    let oracle = NanOracle;
    let (mut base_ns, mut kern_ns) = (Vec::with_capacity(steps), Vec::with_capacity(steps));
    for t in 1..=(warmup + steps) as u64 {
        let ctx = StepContext::new(t, f64::NAN, LR, &oracle);
        let k = K::new(t);
        let mut time_baseline = || {
            let t0 = Instant::now();
            opt.step(black_box(&mut params), black_box(&grads), &ctx);
            t0.elapsed().as_nanos() as f64
        };
        let mut time_kernel = || {
            let t0 = Instant::now();
            black_box(&mut kernel).step(k);
            t0.elapsed().as_nanos() as f64
        };
        // Each goes first on every other step, so neither always inherits the other's cache state.
        let (b, kn) = if t % 2 == 0 {
            let b = time_baseline();
            (b, time_kernel())
        } else {
            let kn = time_kernel();
            (time_baseline(), kn)
        };
        if t > warmup as u64 {
            base_ns.push(b);
            kern_ns.push(kn);
        }
    }
    let checksum = params.iter().flat_map(|p| p.as_slice()).sum::<f64>() + kernel.p.iter().flatten().sum::<f64>();
    Ok(Timings { baseline_ns: base_ns, kernel_ns: kern_ns, checksum })
}

/// The CPU's model name and which of the SIMD flags the bench cares about it has (`/proc/cpuinfo`).
pub fn cpu() -> (String, Vec<&'static str>) {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |key: &str| {
        info.lines()
            .find(|l| l.split(':').next().is_some_and(|k| k.trim() == key))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    let model = field("model name").unwrap_or_else(|| "unknown".into());
    let flags = field("flags").unwrap_or_default();
    let have: Vec<&str> = flags.split_whitespace().collect();
    (model, SIMD_FLAGS.iter().copied().filter(|f| have.contains(f)).collect())
}

const SIMD_FLAGS: &[&str] = &["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512vl"];

/// The SIMD features this binary was compiled for (`-C target-cpu=native` turns them on).
fn compiled_for() -> Vec<&'static str> {
    let mut on = Vec::new();
    if cfg!(target_feature = "sse4.2") {
        on.push("sse4_2");
    }
    if cfg!(target_feature = "avx") {
        on.push("avx");
    }
    if cfg!(target_feature = "avx2") {
        on.push("avx2");
    }
    if cfg!(target_feature = "fma") {
        on.push("fma");
    }
    if cfg!(target_feature = "avx512f") {
        on.push("avx512f");
    }
    on
}

fn str_list(xs: &[&str]) -> String {
    let quoted: Vec<String> = xs.iter().map(|x| crate::json::string(x)).collect();
    format!("[{}]", quoted.join(","))
}

/// Times every case on one tensor of `n` parameters and, if `chunk > 0` and `chunk < n`, on `n`
/// split into tensors of `chunk`; `only` (comma-separated labels) restricts the cases.
pub fn all(n: usize, steps: usize, chunk: usize, only: Option<&str>) -> Result<String, String> {
    if n == 0 || steps == 0 {
        return Err("speed all needs N > 0 parameters and STEPS > 0".into());
    }
    let warmup = 2;
    let wanted: Option<Vec<&str>> = only.map(|s| s.split(',').collect());
    let chosen: Vec<Case> =
        cases().into_iter().filter(|c| wanted.as_ref().is_none_or(|w| w.contains(&c.label.as_str()))).collect();
    if let Some(w) = &wanted {
        if let Some(unknown) = w.iter().find(|l| !chosen.iter().any(|c| c.label == **l)) {
            let known: Vec<String> = cases().into_iter().map(|c| c.label).collect();
            return Err(format!("unknown case '{unknown}'; known: {}", known.join(", ")));
        }
    }
    let mut layouts = vec![("one_tensor", n)];
    if chunk > 0 && chunk < n {
        layouts.push(("many_tensors", chunk));
    }
    let mut rows = Vec::new();
    let mut checksum = 0.0;
    for case in &chosen {
        assert!(case.state <= MAX_STATE, "{}: no kernel for {} state arrays", case.label, case.state);
        for &(layout, size) in &layouts {
            let mut timed = time_case(case, n, size, warmup, steps)?;
            checksum += timed.checksum;
            // Neighbouring steps share the machine's state (other processes' memory traffic comes in
            // bursts), so the median of the per-step ratios is steadier than a ratio of medians.
            let mut paired: Vec<f64> = timed.kernel_ns.iter().zip(&timed.baseline_ns).map(|(k, b)| k / b).collect();
            let paired = median(&mut paired);
            let (base, kern) = (median(&mut timed.baseline_ns), median(&mut timed.kernel_ns));
            let (read, written) = (2 + case.state, 1 + case.state);
            let bytes = ((read + written) * n * 8) as f64;
            let opts: Vec<String> = case.opts.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let mut o = Obj::new();
            o.str("name", &case.label)
                .str("baseline", case.baseline)
                .str("options", &opts.join(" "))
                .str("layout", layout)
                .u("tensor_size", size as u64)
                .u("tensors", n.div_ceil(size) as u64)
                .u("state_arrays", case.state as u64)
                .u("arrays_read", read as u64)
                .u("arrays_written", written as u64)
                .u("bytes_per_step", bytes as u64)
                .f("baseline_ns_per_step", base)
                .f("kernel_ns_per_step", kern)
                .f("baseline_gb_per_s", bytes / base)
                .f("kernel_gb_per_s", bytes / kern)
                // Same bytes for both: bandwidth ratios, 1.0 = the baseline as fast as the kernel.
                .f("ratio_of_medians", kern / base)
                .f("ratio", paired);
            rows.push(o.finish());
        }
    }
    let not_judged: Vec<String> = SHAPES
        .iter()
        .filter_map(|&(name, shape)| match shape {
            NotElementWise(why) => {
                let mut o = Obj::new();
                o.str("name", name).str("why", why);
                Some(o.finish())
            }
            ElementWise { .. } => None,
        })
        .collect();
    let (model, flags) = cpu();
    let mut o = Obj::new();
    o.str("bench", "all")
        .u("params", n as u64)
        .u("steps", steps as u64)
        .u("warmup_steps", warmup as u64)
        .u("chunk", chunk as u64)
        .u("threads", 1)
        .str("cpu_model", &model)
        .raw("cpu_flags", &str_list(&flags))
        .raw("compiled_for", &str_list(&compiled_for()))
        .raw("rows", &format!("[{}]", rows.join(",")))
        .raw("not_judged", &format!("[{}]", not_judged.join(",")))
        .f("checksum", checksum);
    Ok(o.finish())
}

/// The problems whose optimizer-step share `speed problems` reports by default: the neural and
/// data problems, where the f32 question arises.
pub const STEP_SHARE_PROBLEMS: &[&str] =
    &["transformer-grammar", "grokking-mod-add-31", "cnn-digits", "mlp-mnist1d", "softmax-digits"];

/// `speed problems [STEPS] [NAMES]`: on each problem's canonical instance, the gradient
/// (`loss_grad` on a minibatch as the harness draws them, or the full batch) and the baseline Adam
/// step, alternating, `steps` of each after 3 untimed ones; medians and the step's share of the
/// two. It says how much of a run an optimizer kernel can save at most.
pub fn problems(steps: usize, names: Option<&str>) -> Result<String, String> {
    if steps == 0 {
        return Err("speed problems needs STEPS > 0".into());
    }
    let names: Vec<&str> = names.map_or_else(|| STEP_SHARE_PROBLEMS.to_vec(), |s| s.split(',').collect());
    let warmup = 3;
    let mut rows = Vec::new();
    for name in names {
        let problem = frontier_problems::by_name(name).ok_or_else(|| format!("unknown problem '{name}'"))?;
        let mut params = problem.init(&mut frontier_core::Rng::new(1));
        let mut grads = frontier_problems::tensors_from_shapes(&problem.shapes());
        let kinds = problem.kinds();
        let mut adam = frontier_baselines::build("adam", &[])?;
        let mut rng = frontier_core::Rng::new(2);
        let mut batch = vec![0usize; problem.batch_size().max(1)];
        let oracle = NanOracle;
        let (mut grad_ns, mut step_ns) = (Vec::new(), Vec::new());
        let mut loss_sum = 0.0;
        for t in 1..=(warmup + steps) as u64 {
            let batch_ref = problem.train_size().map(|n| {
                for b in batch.iter_mut() {
                    *b = rng.below(n);
                }
                &batch[..]
            });
            let t0 = Instant::now();
            loss_sum += problem.loss_grad(black_box(&params), batch_ref, &mut grads);
            let g = t0.elapsed().as_nanos() as f64;
            let ctx = StepContext::new(t, f64::NAN, 1e-3, &oracle).with_kinds(&kinds);
            let t0 = Instant::now();
            adam.step(black_box(&mut params), black_box(&grads), &ctx);
            let s = t0.elapsed().as_nanos() as f64;
            if t > warmup as u64 {
                grad_ns.push(g);
                step_ns.push(s);
            }
        }
        let (g, s) = (median(&mut grad_ns), median(&mut step_ns));
        let mut o = Obj::new();
        o.str("problem", name)
            .u("params", problem.dim() as u64)
            .u("tensors", params.len() as u64)
            .u("batch", problem.train_size().map_or(0, |_| batch.len()) as u64)
            .f("loss_grad_ns", g)
            .f("adam_step_ns", s)
            .f("step_share", s / (s + g))
            .f("loss_sum", loss_sum);
        rows.push(o.finish());
    }
    let (model, flags) = cpu();
    let mut o = Obj::new();
    o.str("bench", "problems")
        .u("steps", steps as u64)
        .str("cpu_model", &model)
        .raw("cpu_flags", &str_list(&flags))
        .raw("compiled_for", &str_list(&compiled_for()))
        .raw("rows", &format!("[{}]", rows.join(",")));
    Ok(o.finish())
}

/// `speed adam [N] [STEPS]` (defaults 10000000 and 20) or `speed all [N] [STEPS] [CHUNK] [LABELS]`
/// (defaults 10000000, 10 and 1000; LABELS comma-separated, default every case) or
/// `speed problems [STEPS] [NAMES]` (default 200 and [`STEP_SHARE_PROBLEMS`]).
pub fn main(args: &[String]) -> Result<String, String> {
    let what = args.first().map(String::as_str).unwrap_or("adam");
    let num = |i: usize, default: usize| -> Result<usize, String> {
        args.get(i).map_or(Ok(default), |s| s.replace('_', "").parse().map_err(|_| format!("bad number '{s}'")))
    };
    match what {
        "adam" => adam(num(1, 10_000_000)?, num(2, 20)?),
        "all" => all(num(1, 10_000_000)?, num(2, 10)?, num(3, 1000)?, args.get(4).map(String::as_str)),
        "problems" => problems(num(1, 200)?, args.get(2).map(String::as_str)),
        other => Err(format!("unknown speed bench '{other}'; known: adam, all, problems")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_f64_does_what_the_baseline_adam_does() {
        let out = adam(1000, 5).unwrap();
        assert!(out.starts_with(r#"{"bench":"adam","params":1000,"steps":5"#), "{out}");
        let key = r#""max_rel_diff_baseline_vs_kernel_f64":"#;
        let at = out.find(key).unwrap() + key.len();
        let diff: f64 = out[at..].split(',').next().unwrap().parse().unwrap();
        assert!(diff < 1e-9, "{out}");
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(main(&["adam".into(), "x".into()]).is_err());
        assert!(main(&["adam".into(), "0".into()]).is_err());
        assert!(main(&["sgd".into()]).is_err());
        assert!(main(&["all".into(), "100".into(), "1".into(), "10".into(), "adam,nope".into()]).is_err());
        assert!(main(&["all".into(), "0".into()]).is_err());
        assert!(main(&["problems".into(), "1".into(), "no-such-problem".into()]).is_err());
    }

    #[test]
    fn problems_reports_the_step_share_of_each_problem() {
        let out = problems(2, Some("softmax-digits,rosenbrock-10")).unwrap();
        assert!(out.starts_with(r#"{"bench":"problems","steps":2,"cpu_model":"#), "{out}");
        assert!(out.contains(r#"{"problem":"softmax-digits","params":650,"tensors":2,"batch":"#), "{out}");
        assert!(out.contains(r#"{"problem":"rosenbrock-10","params":10,"tensors":1,"batch":0,"#), "{out}");
        assert_eq!(out.matches(r#""step_share":0."#).count(), 2, "{out}");
    }

    #[test]
    fn every_registered_baseline_has_exactly_one_shape() {
        let names = frontier_baselines::names();
        for name in &names {
            let rows = SHAPES.iter().filter(|(n, _)| n == name).count();
            assert_eq!(
                rows, 1,
                "{name} must be in SHAPES once (element-wise with its state arrays, or not element-wise)"
            );
        }
        for (name, _) in SHAPES {
            assert!(names.contains(name), "{name} is in SHAPES but not registered");
        }
        for v in VARIANTS {
            assert!(names.contains(&v.baseline), "variant {} of an unregistered {}", v.label, v.baseline);
        }
    }

    /// Element-wise means: flipping one gradient element changes only that parameter, over
    /// several steps. A reduction or a matrix product would spread it.
    #[test]
    fn the_element_wise_cases_are_element_wise() {
        let n = 64;
        for case in cases() {
            let run = |flip: bool| {
                let mut opt = frontier_baselines::build(case.baseline, &case.opts).unwrap();
                let mut params = vec![Tensor::from_vec(&[n], (0..n).map(|i| value(i + 7)).collect())];
                let mut g: Vec<f64> = (0..n).map(|i| value(i * 13 + 1)).collect();
                assert!(g[5] != 0.0);
                if flip {
                    g[5] = -g[5]; // a new sign, which even Lion's sign update sees
                }
                let grads = vec![Tensor::from_vec(&[n], g)];
                for t in 1..=3 {
                    frontier_baselines::step_with(opt.as_mut(), &mut params, &grads, 1e-2, t);
                }
                params[0].as_slice().to_vec()
            };
            let (a, b) = (run(false), run(true));
            for j in 0..n {
                assert_eq!(a[j] != b[j], j == 5, "{}: parameter {j} after flipping gradient 5", case.label);
            }
        }
    }

    #[test]
    fn all_reports_every_case_in_both_layouts_and_the_cpu() {
        let out = all(3000, 1, 1000, None).unwrap();
        for case in cases() {
            for layout in ["one_tensor", "many_tensors"] {
                let row = format!(r#"{{"name":"{}","baseline":"{}","#, case.label, case.baseline);
                let at = out.find(&row).unwrap_or_else(|| panic!("no row for {}: {out}", case.label));
                assert!(out[at..].contains(&format!(r#""layout":"{layout}""#)), "{out}");
            }
        }
        let adam = out.find(r#"{"name":"adam","#).unwrap();
        assert!(out[adam..].starts_with(r#"{"name":"adam","baseline":"adam","options":"","layout":"one_tensor","tensor_size":3000,"tensors":1,"state_arrays":2,"arrays_read":4,"arrays_written":3,"bytes_per_step":168000,"#), "{out}");
        assert!(out.contains(r#""cpu_model":""#) && out.contains(r#""not_judged":[{"name":"adafactor""#), "{out}");
        assert_eq!(
            out.matches(r#""layout":"many_tensors","tensor_size":1000,"tensors":3,"#).count(),
            cases().len(),
            "{out}"
        );
    }
}
