#![forbid(unsafe_code)]
mod optimizer;
fn main() -> std::process::ExitCode {
    frontier_core::remote::main_with(|| Box::new(optimizer::build()))
}
