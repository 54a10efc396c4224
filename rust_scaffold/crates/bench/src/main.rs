//! The harness without a candidate: baselines, `list`, `replay`, `version`.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    frontier_bench::main_with(None)
}
