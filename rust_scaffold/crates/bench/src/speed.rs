//! `speed adam N STEPS`: the baseline Adam step against a raw Adam-shaped in-place kernel.
//!
//! Both run in the same process on N parameters, alternating step by step so that drift of a
//! shared, noisy machine hits them alike. The kernel reads 4 arrays (p, g, m, v) and writes 3
//! (p, m, v), once in f64 (the dtype of every baseline) and once in f32 (the dtype of the
//! issue's ceiling and of PyTorch's default). Bandwidth counts those 7 array passes:
//! bytes/step = 7 * N * size_of(float). Not part of the run protocol: it prints one JSON line
//! and changes nothing the benchmark measures.

use crate::json::Obj;
use frontier_core::{NanOracle, StepContext, Tensor};
use std::hint::black_box;
use std::time::Instant;

const LR: f64 = 1e-3;
const B1: f64 = 0.9;
const B2: f64 = 0.999;
const EPS: f64 = 1e-8;

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
    let max_rel_diff = params[0].as_slice().iter().zip(&p64).map(|(a, b)| (a - b).abs()).fold(0.0f64, f64::max) / travel;
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

/// `speed <what> [args]`: today only `adam N STEPS` (defaults 10000000 and 20).
pub fn main(args: &[String]) -> Result<String, String> {
    let what = args.first().map(String::as_str).unwrap_or("adam");
    let num = |i: usize, default: usize| -> Result<usize, String> {
        args.get(i).map_or(Ok(default), |s| s.replace('_', "").parse().map_err(|_| format!("bad number '{s}'")))
    };
    match what {
        "adam" => adam(num(1, 10_000_000)?, num(2, 20)?),
        other => Err(format!("unknown speed bench '{other}'; known: adam")),
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
    }
}
