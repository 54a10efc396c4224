//! Tests that run the real `frontier-bench` binary.
#![forbid(unsafe_code)]

use std::io::Write;
use std::process::{Command, Stdio};

fn bin(args: &[&str], stdin: &str) -> (String, i32) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_frontier-bench"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (String::from_utf8(out.stdout).unwrap(), out.status.code().unwrap_or(-1))
}

#[test]
fn version_and_list() {
    let (v, code) = bin(&["version"], "");
    assert_eq!((v.trim(), code), (frontier_bench::HARNESS_VERSION, 0));
    let (l, code) = bin(&["list"], "");
    assert_eq!(code, 0);
    assert_eq!(l.lines().count(), 1);
    assert!(l.starts_with(r#"{"harness_version":""#));
    assert!(l.contains(r#"{"name":"logreg-breast-cancer","dim":31,"has_data":true"#), "{l}");
    assert!(l.contains(r#""optimizers":["sgd","momentum","nesterov","adam""#), "{l}");
    let (_, code) = bin(&["frobnicate"], "");
    assert_eq!(code, 2);
}

#[test]
fn run_prints_one_line_per_plan_line() {
    let plan = "id=1 optimizer=adam problem=quadratic-ill-50 lr=0.05 seed=1 steps=300 curve_points=4\n\
                \n# comment\n\
                garbage\n\
                id=3 optimizer=sgd problem=logreg-breast-cancer lr=0.5 seed=2 steps=300 curve_points=3\n";
    let (out, code) = bin(&["run"], plan);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with(r#"{"id":1,"optimizer":"adam","problem":"quadratic-ill-50","lr":0.05,"seed":1,"steps":300,"steps_done":300,"diverged":false,"time_limited":false,"budget_exhausted":false,"error":null"#), "{}", lines[0]);
    assert!(lines[0].contains(r#""curve":[[0,"#) && lines[0].contains("],[300,"), "{}", lines[0]);
    assert!(lines[1].starts_with(r#"{"id":null,"error":"bad plan line: "#), "{}", lines[1]);
    assert!(lines[2].contains(r#""test_accuracy":0.9"#), "{}", lines[2]);
}

#[test]
fn replay_feeds_gradients() {
    let input = "optimizer=sgd lr=0.1 opt.momentum=0.9\nshapes 1 2x1\ninit 1.0 2.0 3.0\ngrad 1 1 1\ngrad 1 0 -1\nend\n";
    let (out, code) = bin(&["replay"], input);
    assert_eq!(code, 0, "{out}");
    let want = "params 0.9 1.9 2.9\nparams 0.71 1.8100000000000003 2.9\n";
    // step 2: buf = 0.9*1 + 1 = 1.9 -> 0.9 - 0.19; buf = 0.9*1 + 0 = 0.9 -> 1.9 - 0.09; buf = 0.9 - 1 = -0.1 -> 2.9 + 0.01
    let lines: Vec<Vec<f64>> = out.lines().map(|l| l.split_whitespace().skip(1).map(|x| x.parse().unwrap()).collect()).collect();
    assert_eq!(lines.len(), 2, "{out} vs {want}");
    let exp = [[0.9, 1.9, 2.9], [0.9 - 0.1 * 1.9, 1.9 - 0.1 * 0.9, 2.9 - 0.1 * (0.9 * 1.0 - 1.0)]];
    for (g, e) in lines.iter().zip(exp) {
        for (a, b) in g.iter().zip(e) {
            assert!((a - b).abs() < 1e-15, "{out}");
        }
    }
    let (out, code) = bin(&["replay"], "optimizer=adam lr=0.1\nshapes 2\ninit 1\n");
    assert_eq!(code, 1);
    assert!(out.starts_with("error init: expected 2 values"), "{out}");
}
