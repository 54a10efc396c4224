#![forbid(unsafe_code)]
mod optimizer;
fn main() -> std::process::ExitCode {
    frontier_bench::main_with(Some(|| Box::new(optimizer::build())))
}
