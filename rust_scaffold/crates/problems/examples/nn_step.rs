//! Times one forward + backward pass (`loss_grad`) of a registered problem, as the harness calls
//! it: at the problem's init (seed 1), on a fixed minibatch (or the full batch).
//!
//!   cargo run --release -p frontier-problems --example nn_step -- \
//!       [--problem transformer-grammar] [--batch 16|full] [--reps 200] [--runs 7]
//!       [--grokking P:D:HIDDEN:TRAIN_FRAC]    (an unregistered grokking size instead, a + b mod P)
//!
//! Prints one JSON line: per-call microseconds of each run (wall clock, `reps` calls after a
//! warm-up), their median and minimum, and the thread's CPU time per call over all runs (from
//! /proc/thread-self/stat, 10 ms ticks; null where unavailable). benches/nn_step.py runs it
//! with RUSTFLAGS="-C target-cpu=native", as the lab builds the harness.

use frontier_core::Rng;
use frontier_problems::{by_name, tensors_from_shapes, Grokking, ModOp, Problem};
use std::time::Instant;

/// utime + stime of this thread, in clock ticks (100 per second on Linux).
fn cpu_ticks() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |k: &str, d: &str| -> String {
        args.iter().position(|a| a == k).map_or(d.to_string(), |i| args[i + 1].clone())
    };
    let name = arg("--problem", "transformer-grammar");
    let reps: usize = arg("--reps", "200").parse().unwrap();
    let runs: usize = arg("--runs", "7").parse().unwrap();
    let grok = arg("--grokking", "");
    let (name, p): (String, Box<dyn Problem>) = if grok.is_empty() {
        let p = by_name(&name).unwrap_or_else(|| panic!("no problem {name}"));
        (name, p)
    } else {
        let v: Vec<f64> = grok.split(':').map(|x| x.parse().unwrap()).collect();
        let (m, d, h) = (v[0] as usize, v[1] as usize, v[2] as usize);
        (format!("grokking {grok}"), Box::new(Grokking::new("g", 0, m, ModOp::Add, v[3], 1, d, h, 1e-3, 0)))
    };
    let batch_arg = arg("--batch", "16");
    let batch: Option<Vec<usize>> = match batch_arg.as_str() {
        "full" => None,
        b => {
            let n = p.train_size().expect("a minibatch needs a problem with training data");
            let b: usize = b.parse().unwrap();
            let mut r = Rng::derive(1, "batch");
            Some((0..b).map(|_| r.below(n)).collect())
        }
    };
    let x = p.init(&mut Rng::derive(1, "init"));
    let mut g = tensors_from_shapes(&p.shapes());
    for _ in 0..reps.div_ceil(4).max(3) {
        std::hint::black_box(p.loss_grad(&x, batch.as_deref(), &mut g));
    }
    let mut per_call = Vec::with_capacity(runs);
    let c0 = cpu_ticks();
    for _ in 0..runs {
        let t0 = Instant::now();
        for _ in 0..reps {
            std::hint::black_box(p.loss_grad(std::hint::black_box(&x), batch.as_deref(), &mut g));
        }
        per_call.push(t0.elapsed().as_secs_f64() * 1e6 / reps as f64);
    }
    let cpu_us = match (c0, cpu_ticks()) {
        (Some(a), Some(b)) => format!("{:.2}", (b - a) as f64 * 1e4 / (reps * runs) as f64),
        _ => "null".to_string(),
    };
    let mut sorted = per_call.clone();
    sorted.sort_by(f64::total_cmp);
    let list: Vec<String> = per_call.iter().map(|v| format!("{v:.2}")).collect();
    println!(
        "{{\"problem\":\"{name}\",\"batch\":\"{batch_arg}\",\"dim\":{},\"reps\":{reps},\"us_per_call\":[{}],\"us_median\":{:.2},\"us_min\":{:.2},\"cpu_us_per_call\":{cpu_us}}}",
        p.dim(),
        list.join(","),
        sorted[runs / 2],
        sorted[0]
    );
}
