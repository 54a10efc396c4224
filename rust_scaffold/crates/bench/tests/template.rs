//! The example candidate in template/ compiles against the current API and optimizes.
#![forbid(unsafe_code)]

#[path = "../../../template/optimizer.rs"]
mod optimizer;

use frontier_bench::{CandidateSource, run_line, ProblemCache};

fn field(line: &str, key: &str) -> f64 {
    let pat = format!("\"{key}\":");
    let rest = &line[line.find(&pat).unwrap_or_else(|| panic!("{key} missing in {line}")) + pat.len()..];
    rest[..rest.find([',', '}']).unwrap()].parse().unwrap_or(f64::NAN)
}

#[test]
fn template_candidate_runs_and_improves() {
    let mut cache = ProblemCache::default();
    for (problem, lr) in [("rosenbrock-10", 0.001), ("quadratic-ill-50", 0.05), ("logreg-breast-cancer", 0.01)] {
        let line = format!("id=1 optimizer=candidate problem={problem} lr={lr} seed=1 steps=300 curve_points=10");
        let out = run_line(&line, &mut cache, &CandidateSource::InProcess(|| Box::new(optimizer::build())));
        assert!(out.contains(r#""diverged":false,"time_limited":false,"budget_exhausted":false,"error":null"#), "{out}");
        assert!(field(&out, "final_loss") < 0.5 * field(&out, "initial_loss"), "{out}");
    }
}
