//! The lab's trusted harness: problems, baselines, the oracle budget and every reported number.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    frontier_bench::main()
}
