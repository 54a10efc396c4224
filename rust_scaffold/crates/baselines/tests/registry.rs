//! The registry is the only list of baselines, so these tests hold every row of it to account:
//! each one is documented, builds with its defaults, and is verified against a PyTorch
//! trajectory of tests/torch_reference.txt (the fixture torch_reference.rs replays).
#![forbid(unsafe_code)]

use frontier_baselines::{build, defaults, describe, names, step_with, BASELINES};
use frontier_core::Tensor;

/// One recorded PyTorch run of the fixture.
struct Run {
    label: String,
    optimizer: String,
    lr: f64,
    opts: Vec<(String, f64)>,
    shapes: Vec<Vec<usize>>,
    init: Vec<f64>,
    /// (gradient, expected parameters after the step), both flat.
    steps: Vec<(Vec<f64>, Vec<f64>)>,
}

fn floats(s: &str) -> Vec<f64> {
    s.split_whitespace().map(|x| x.parse().unwrap()).collect()
}

/// Parses the fixture the same way torch_reference.rs reads it.
fn fixture() -> Vec<Run> {
    let text = include_str!("torch_reference.txt");
    let mut lines = text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    let mut runs = Vec::new();
    while let Some(head) = lines.next() {
        let label = head.strip_prefix("run ").expect("run line").to_string();
        let (mut optimizer, mut lr, mut opts) = (String::new(), f64::NAN, Vec::new());
        for tok in lines.next().unwrap().split_whitespace() {
            let (k, v) = tok.split_once('=').unwrap();
            match k {
                "optimizer" => optimizer = v.to_string(),
                "lr" => lr = v.parse().unwrap(),
                _ => opts.push((k.strip_prefix("opt.").unwrap().to_string(), v.parse::<f64>().unwrap())),
            }
        }
        let shapes = lines.next().unwrap().strip_prefix("shapes ").unwrap().split_whitespace();
        let shapes = shapes.map(|s| s.split('x').map(|d| d.parse().unwrap()).collect()).collect();
        let init = floats(lines.next().unwrap().strip_prefix("init").unwrap());
        let mut steps = Vec::new();
        loop {
            let l = lines.next().unwrap();
            if l == "end" {
                break;
            }
            let g = floats(l.strip_prefix("grad").unwrap());
            steps.push((g, floats(lines.next().unwrap().strip_prefix("expect").unwrap())));
        }
        runs.push(Run { label, optimizer, lr, opts, shapes, init, steps });
    }
    runs
}

/// Whether the baseline `name`, built with the run's options, reproduces the run within the
/// reference test's tolerance (1e-12 + 1e-10 |x| per coordinate) at every step.
fn reproduces(name: &str, run: &Run) -> bool {
    let Ok(mut opt) = build(name, &run.opts) else { return false };
    let split = |flat: &[f64]| {
        let mut k = 0;
        let tensors = run.shapes.iter().map(|s| {
            let n: usize = s.iter().product();
            k += n;
            Tensor::from_vec(s, flat[k - n..k].to_vec())
        });
        tensors.collect::<Vec<_>>()
    };
    let mut params = split(&run.init);
    for (i, (g, want)) in run.steps.iter().enumerate() {
        step_with(opt.as_mut(), &mut params, &split(g), run.lr, i as u64 + 1);
        let got = params.iter().flat_map(|t| t.data.iter().copied());
        if got.zip(want).any(|(a, b)| (a - b).abs().is_nan() || (a - b).abs() > 1e-12 + 1e-10 * b.abs()) {
            return false;
        }
    }
    !run.steps.is_empty()
}

/// A run verifies a baseline if it was recorded under that name (torch_reference.rs then
/// replays it through `build(name, ..)`), or, for a preset such as `momentum`, if it is the
/// preset's own configuration (every option it sets equals the preset's default) and the
/// preset reproduces it.
fn verifies(name: &str, run: &Run) -> bool {
    let d = defaults(name).unwrap();
    let at_defaults = run.opts.iter().all(|(k, v)| d.iter().any(|(dk, dv)| dk == k && dv == v));
    (run.optimizer == name || at_defaults) && reproduces(name, run)
}

#[test]
fn every_baseline_is_verified_against_pytorch() {
    let runs = fixture();
    assert!(!runs.is_empty(), "the fixture has no runs");
    let unverified: Vec<&str> = names().into_iter().filter(|n| !runs.iter().any(|r| verifies(n, r))).collect();
    assert!(
        unverified.is_empty(),
        "no PyTorch trajectory in tests/torch_reference.txt verifies: {unverified:?} \
         (add one to tests/fixtures/torch_trajectories.json and regenerate the fixture)"
    );
}

#[test]
fn every_fixture_run_names_a_registered_baseline() {
    for r in fixture() {
        assert!(names().contains(&r.optimizer.as_str()), "{}: '{}' is not registered", r.label, r.optimizer);
        assert!(reproduces(&r.optimizer, &r), "{} does not reproduce PyTorch", r.label);
    }
}

#[test]
fn a_preset_is_not_verified_by_another_rules_run() {
    // adam with weight_decay=0.01 has adamw's option values but a different rule: the check
    // must tell them apart by the trajectory, not by the options.
    let runs = fixture();
    let adam_l2 = runs.iter().find(|r| r.label == "logreg/Adam_l2").unwrap();
    assert!(reproduces("adam", adam_l2));
    assert!(!verifies("adamw", adam_l2));
}

#[test]
fn every_baseline_is_documented_and_listed_once() {
    let mut seen = Vec::new();
    for b in BASELINES {
        assert!(!seen.contains(&b.name), "{} is registered twice", b.name);
        seen.push(b.name);
        let about = describe(b.name).unwrap();
        assert!(!about.trim().is_empty() && !about.contains('\n'), "{}: one line of description", b.name);
        assert!(b.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'), "{}", b.name);
        let keys: Vec<&str> = b.defaults.iter().map(|(k, _)| *k).collect();
        assert!(keys.iter().enumerate().all(|(i, k)| !keys[..i].contains(k)), "{}: duplicate option", b.name);
        assert_eq!(build(b.name, &[]).unwrap().name(), b.name);
    }
    assert_eq!(seen, names());
    assert_eq!(describe("no-such-baseline"), None);
}
