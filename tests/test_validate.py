from frontier_mcp.validate import check_name, check_source, normalized_hash, strip_comments_and_strings

from .conftest import example_source

GOOD = """use frontier_core::{Optimizer, StepContext, Tensor};
pub struct Sgd;
impl Optimizer for Sgd {
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        for (p, g) in params.iter_mut().zip(grads) {
            for (x, d) in p.data.iter_mut().zip(&g.data) { *x -= ctx.lr * d; }
        }
    }
}
pub fn build() -> impl Optimizer + 'static { Sgd }
"""


def test_example_and_simple_sources_pass() -> None:
    assert check_source(example_source(), 64 * 1024) == []
    assert check_source(GOOD, 64 * 1024) == []


def test_names() -> None:
    assert check_name("padic_momentum") is None
    for bad in ("../x", "a/b", "x\x00y", "-rf", "A", "", "x" * 10_000, "_x", "9x", "x-y"):
        assert check_name(bad) is not None, bad


def test_each_forbidden_construct_is_reported_on_its_line() -> None:
    cases = {
        "unsafe { }": "unsafe",
        '#[path = "/etc/passwd"] mod evil;': "#[path]",
        'const S: &str = include_str!("/etc/shadow");': "include",
        'const S: &str = env!("HOME");': "env!",
        "extern crate libc;": "extern crate",
        "use std::process::Command;": "std::process",
        "use std::{fs, io};": "std::fs",
        "use std as s;": "renaming `std`",
        "macro_rules! m { ($a:ident) => { std::$a::read(\"/x\") } }": "macro variable",
        "fn out() { let _ = std::io::stdout(); }": "std::io",
        "fn t() { std::thread::spawn(|| ()); }": "std::thread",
        "use ::core::{f64, mem, panic};": "std::panic",
        "use std::*;": "std::*",
        "use std::{collections::{HashMap}, io};": "std::io",
        "use std::{self as s2};": "std::self",
        "use std::{collections::HashMap, io::{self, Write}};": "std::io",
        "use std::{ {io} };": "std::io",
        "mod other;": "mod name;",
        'fn f() { println!("hi"); }': "printing",
        "use frontier_bench::problems_cache;": "frontier_core",
    }
    for line, expected in cases.items():
        findings = check_source(GOOD + "\n" + line + "\n", 64 * 1024)
        assert findings, line
        assert any(expected in f.message for f in findings), (line, findings)
        assert findings[0].line == GOOD.count("\n") + 2, (line, findings)


def test_the_std_an_optimizer_needs_is_allowed() -> None:
    source = GOOD + "use std::collections::HashMap;\nuse std::{f64::consts::PI, cmp::Ordering, mem};\n" \
                    "fn f(x: f64) -> f64 { std::f64::consts::E * x.max(core::f64::EPSILON) }\n"
    assert check_source(source, 64 * 1024) == []


def test_mentions_in_comments_and_strings_are_fine() -> None:
    source = GOOD + '// unsafe std::fs include_str!\nconst NOTE: &str = "std::process and unsafe";\n'
    assert check_source(source, 64 * 1024) == []


def test_lifetimes_survive_stripping_and_chars_are_blanked() -> None:
    code = strip_comments_and_strings("fn f<'a>(x: &'a str) -> char { '\"' }")
    assert "'a" in code and '"' not in code.replace("' '", "")


def test_size_cap_and_missing_build() -> None:
    assert "limit" in check_source("x" * 70_000, 64 * 1024)[0].message
    assert any("pub fn build" in f.message for f in check_source("fn main() {}", 1024))


def test_normalized_hash_ignores_comments_and_whitespace() -> None:
    assert normalized_hash(GOOD) == normalized_hash("// a comment\n" + GOOD.replace("\n", "\n\n"))
    assert normalized_hash(GOOD) != normalized_hash(GOOD.replace("ctx.lr", "2.0 * ctx.lr"))
