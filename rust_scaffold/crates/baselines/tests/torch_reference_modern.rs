//! The modern baselines (nadamw, muon, schedulefree_adamw, soap, ademamix, prodigy) reproduce
//! PyTorch's float64 trajectories of shared/reference/torch_trajectories_modern.json
//! (tests/torch_reference_modern.txt, written by data/write_reference_fixture.py), fed the
//! recorded gradients, each run within its own `recommended_check` (1e-12 + 1e-10 |x| for the
//! tight group; atol 1e-6 for SOAP's float32-QR runs; atol 1e-8 for the degenerate SOAP runs,
//! which inject the recorded eigenbases). Schedule-Free's evaluation points are checked as well.
#![forbid(unsafe_code)]

mod fixture;

use fixture::{parse, replay, MODERN, TIGHT};

#[test]
fn modern_baselines_match_pytorch() {
    let runs = parse(MODERN);
    let mut failures = Vec::new();
    let mut table = Vec::new();
    for run in &runs {
        assert_eq!(run.steps.len(), 50, "{}", run.label);
        let out = replay(&run.optimizer, run, true).unwrap_or_else(|e| panic!("{}: {e}", run.label));
        let line = format!(
            "{:<48} {:<18} tol {:e}+{:e}|x| worst diff/tol {:.3e} (eval {:.3e}) |diff| {:.2e}{}",
            run.label,
            run.optimizer,
            run.tol.0,
            run.tol.1,
            out.params,
            out.eval,
            out.worst_abs,
            if run.injects() { " [recorded soap_Q injected]" } else { "" }
        );
        if !out.passes() {
            failures.push(line.clone());
        }
        table.push(line);
    }
    eprintln!("{}", table.join("\n"));
    assert_eq!(runs.len(), 32);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The tight group holds the old tolerance: every run but SOAP's float32-QR and degenerate ones.
#[test]
fn the_tight_group_is_checked_at_the_old_tolerance() {
    let runs = parse(MODERN);
    let loose: Vec<&str> = runs.iter().filter(|r| r.tol != TIGHT).map(|r| r.label.as_str()).collect();
    assert_eq!(
        loose,
        [
            "matreg/SOAP_pf1",
            "matreg/SOAP_pf1_maxdim4",
            "matreg/SOAP_pf5_maxdim4_betas_nowd",
            "logreg/SOAP_pf5_precond1d"
        ]
    );
    for r in runs.iter().filter(|r| r.tol != TIGHT) {
        assert!(r.tol.0 <= 1e-6 && r.tol.1 == 0.0, "{}", r.label);
    }
}

/// The degenerate SOAP runs need the recorded bases: our own eigenbasis lands elsewhere in the
/// degenerate eigenspace, so without injection they fail (the injection is not decorative).
#[test]
fn degenerate_soap_runs_fail_without_the_recorded_bases() {
    let runs = parse(MODERN);
    let degenerate: Vec<_> = runs.iter().filter(|r| r.injects()).collect();
    assert_eq!(degenerate.len(), 2);
    for run in degenerate {
        let own = replay("soap", run, false).unwrap();
        assert!(own.params > 1.0, "{}: {own:?}", run.label);
        assert!(replay("soap", run, true).unwrap().passes(), "{}", run.label);
    }
}

/// Muon's bfloat16 runs need the bf16 emulation: float64 Newton-Schulz misses them by far, and
/// the emulation misses the float64 twins.
#[test]
fn muon_bf16_and_float64_newton_schulz_are_told_apart() {
    for run in parse(MODERN).iter().filter(|r| r.optimizer == "muon") {
        let bf16 = run.opts.iter().any(|(k, v)| k == "ns_bf16" && *v == 1.0);
        let mut other = fixture::Run { opts: run.opts.clone(), ..clone_run(run) };
        for o in other.opts.iter_mut().filter(|o| o.0 == "ns_bf16") {
            o.1 = if bf16 { 0.0 } else { 1.0 };
        }
        assert!(replay("muon", run, false).unwrap().passes(), "{}", run.label);
        assert!(replay("muon", &other, false).unwrap().params > 1e3, "{}", run.label);
    }
}

/// Schedule-Free's check covers x, which is not y: a baseline handing over y would fail.
#[test]
fn schedule_free_eval_points_differ_from_params() {
    for run in parse(MODERN).iter().filter(|r| r.optimizer == "schedulefree_adamw") {
        let mut as_y = clone_run(run);
        for s in as_y.steps.iter_mut() {
            s.expect = s.expect_eval.clone().unwrap();
        }
        assert!(replay(&run.optimizer, &as_y, false).unwrap().params > 1.0, "{}", run.label);
    }
}

fn clone_run(r: &fixture::Run) -> fixture::Run {
    fixture::Run {
        label: r.label.clone(),
        optimizer: r.optimizer.clone(),
        lr: r.lr,
        opts: r.opts.clone(),
        tol: r.tol,
        shapes: r.shapes.clone(),
        init: r.init.clone(),
        steps: r
            .steps
            .iter()
            .map(|s| fixture::Step {
                grad: s.grad.clone(),
                bases: s.bases.clone(),
                expect: s.expect.clone(),
                expect_eval: s.expect_eval.clone(),
            })
            .collect(),
    }
}
