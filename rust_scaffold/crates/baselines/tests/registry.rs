//! The registry is the only list of baselines, so these tests hold every row of it to account:
//! each one is documented, builds with its defaults, and is verified against a PyTorch
//! trajectory of tests/torch_reference.txt or tests/torch_reference_modern.txt (the fixtures
//! torch_reference.rs and torch_reference_modern.rs replay).
#![forbid(unsafe_code)]

mod fixture;

use fixture::Run;
use frontier_baselines::{build, defaults, describe, names, BASELINES};

/// Every run of both fixtures.
fn runs() -> Vec<Run> {
    let mut runs = fixture::parse(fixture::OLD);
    runs.extend(fixture::parse(fixture::MODERN));
    runs
}

/// Whether the baseline `name`, built with the run's options, reproduces the run within its
/// tolerance at every step (injecting recorded SOAP bases where the run needs them).
fn reproduces(name: &str, run: &Run) -> bool {
    fixture::replay(name, run, true).is_ok_and(|o| o.passes())
}

/// A run verifies a baseline if it was recorded under that name (the reference tests then
/// replay it through `build(name, ..)`), or, for a preset such as `momentum`, if it is the
/// preset's own configuration (every option it sets equals the preset's default) and the
/// preset reproduces it. A run that needs injected eigenbases verifies nothing on its own.
fn verifies(name: &str, run: &Run) -> bool {
    let d = defaults(name).unwrap();
    let at_defaults = run.opts.iter().all(|(k, v)| d.iter().any(|(dk, dv)| dk == k && dv == v));
    (run.optimizer == name || at_defaults) && !run.injects() && reproduces(name, run)
}

#[test]
fn every_baseline_is_verified_against_pytorch() {
    let runs = runs();
    assert!(!runs.is_empty(), "the fixtures have no runs");
    let unverified: Vec<&str> = names().into_iter().filter(|n| !runs.iter().any(|r| verifies(n, r))).collect();
    assert!(
        unverified.is_empty(),
        "no PyTorch trajectory in tests/torch_reference*.txt verifies: {unverified:?} \
         (add one to a reference file and regenerate the fixture)"
    );
}

#[test]
fn every_fixture_run_names_a_registered_baseline() {
    for r in runs() {
        assert!(names().contains(&r.optimizer.as_str()), "{}: '{}' is not registered", r.label, r.optimizer);
        assert!(reproduces(&r.optimizer, &r), "{} does not reproduce PyTorch", r.label);
    }
}

#[test]
fn a_preset_is_not_verified_by_another_rules_run() {
    // adam with weight_decay=0.01 has adamw's option values but a different rule: the check
    // must tell them apart by the trajectory, not by the options.
    let runs = runs();
    let adam_l2 = runs.iter().find(|r| r.label == "logreg/Adam_l2").unwrap();
    assert!(reproduces("adam", adam_l2));
    assert!(!verifies("adamw", adam_l2));
    // nadam with decoupled decay is nadamw's rule, run under nadam's name: it reproduces, and
    // plain NAdam's run is not nadamw's (its decay differs from nadamw's default).
    let nadamw = runs.iter().find(|r| r.label == "matreg/NAdamW").unwrap();
    assert!(reproduces("nadam", nadamw));
    let nadam = runs.iter().find(|r| r.label == "logreg/NAdam").unwrap();
    assert!(!verifies("nadamw", nadam));
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
        assert!(b.search.len() <= 4, "{}: at most four searched hyperparameters", b.name);
        for h in b.search {
            let (_, v) = b.defaults.iter().find(|(k, _)| *k == h.name).unwrap_or_else(|| panic!("{}: {}", b.name, h.name));
            assert!(h.low <= *v && *v <= h.high, "{}: {}'s default {v} is outside its range", b.name, h.name);
        }
    }
    assert_eq!(seen, names());
    assert_eq!(describe("no-such-baseline"), None);
}
