//! Every baseline reproduces PyTorch's float64 trajectories (tests/torch_reference.txt, made by
//! data/write_reference_fixture.py from tests/fixtures/torch_trajectories.json) within
//! 1e-12 + 1e-10 |x| per coordinate, fed the recorded gradients.
#![forbid(unsafe_code)]

mod fixture;

#[test]
fn baselines_match_pytorch() {
    let runs = fixture::parse(fixture::OLD);
    let mut failures = Vec::new();
    for run in &runs {
        assert_eq!(run.tol, fixture::TIGHT, "{}", run.label);
        assert_eq!(run.steps.len(), 50, "{}", run.label);
        let out = fixture::replay(&run.optimizer, run, false).unwrap_or_else(|e| panic!("{}: {e}", run.label));
        if !out.passes() {
            failures.push(format!("{}: worst diff/tol {:e}", run.label, out.params));
        }
    }
    assert_eq!(runs.len(), 44);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
