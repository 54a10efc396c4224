//! Every baseline reproduces PyTorch's float64 trajectories (tests/torch_reference.txt, made by
//! data/write_reference_fixture.py from tests/fixtures/torch_trajectories.json) within
//! 1e-12 + 1e-10 |x| per coordinate, fed the recorded gradients.
#![forbid(unsafe_code)]

use frontier_baselines::{build, step_with};
use frontier_core::Tensor;

fn floats(s: &str) -> Vec<f64> {
    s.split_whitespace().map(|x| x.parse().unwrap()).collect()
}

#[test]
fn baselines_match_pytorch() {
    let text = include_str!("torch_reference.txt");
    let mut lines = text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    let mut runs = 0;
    let mut failures = Vec::new();
    while let Some(head) = lines.next() {
        let run = head.strip_prefix("run ").expect("run line");
        let cfg = lines.next().unwrap();
        let (mut name, mut lr, mut opts) = ("", 0.0, Vec::new());
        for tok in cfg.split_whitespace() {
            let (k, v) = tok.split_once('=').unwrap();
            match k {
                "optimizer" => name = v,
                "lr" => lr = v.parse().unwrap(),
                _ => opts.push((k.strip_prefix("opt.").unwrap().to_string(), v.parse::<f64>().unwrap())),
            }
        }
        let shapes: Vec<Vec<usize>> = lines.next().unwrap().strip_prefix("shapes ").unwrap().split_whitespace()
            .map(|s| s.split('x').map(|d| d.parse().unwrap()).collect()).collect();
        let init = floats(lines.next().unwrap().strip_prefix("init").unwrap());
        let split = |flat: &[f64]| {
            let mut k = 0;
            shapes.iter().map(|s| {
                let n: usize = s.iter().product();
                k += n;
                Tensor::from_vec(s, flat[k - n..k].to_vec())
            }).collect::<Vec<_>>()
        };
        let mut params = split(&init);
        let mut opt = build(name, &opts).unwrap_or_else(|e| panic!("{run}: {e}"));
        let mut step = 0;
        let mut worst = 0.0f64;
        loop {
            let l = lines.next().unwrap();
            if l == "end" {
                break;
            }
            let g = split(&floats(l.strip_prefix("grad").unwrap()));
            step += 1;
            step_with(opt.as_mut(), &mut params, &g, lr, step);
            let want = floats(lines.next().unwrap().strip_prefix("expect").unwrap());
            let got: Vec<f64> = params.iter().flat_map(|t| t.data.iter().copied()).collect();
            for (a, b) in got.iter().zip(&want) {
                let r = (a - b).abs() / (1e-12 + 1e-10 * b.abs());
                worst = if r.is_nan() { f64::INFINITY } else { worst.max(r) };
            }
        }
        assert_eq!(step, 50, "{run}");
        if worst > 1.0 {
            failures.push(format!("{run}: worst diff/tol {worst:e}"));
        }
        runs += 1;
    }
    assert_eq!(runs, 44);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
