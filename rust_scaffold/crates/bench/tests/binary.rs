//! Tests that run the real `frontier-bench` binary.
#![forbid(unsafe_code)]

mod common;

use common::{bin, script};

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


fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let start = line.find(&format!("\"{key}\":")).unwrap_or_else(|| panic!("no {key} in {line}")) + key.len() + 3;
    let rest = &line[start..];
    if rest.starts_with('[') {
        // A list (a curve): up to its matching bracket.
        let mut depth = 0;
        for (i, c) in rest.char_indices() {
            depth += match c {
                '[' => 1,
                ']' => -1,
                _ => 0,
            };
            if depth == 0 {
                return &rest[..=i];
            }
        }
    }
    &rest[..rest.find([',', '}']).unwrap()]
}

#[test]
fn a_candidate_in_its_own_process_gives_the_same_numbers_as_in_process() {
    // Adam served over the pipe, one process per run, against the harness's own Adam: the frames
    // carry every f64 exactly, so the runs agree to the bit.
    // `$1` is `serve` for a run of its own or `zygote` for the fork server, as for a real candidate.
    let remote = script("adam", &format!("exec {} \"$1\" adam", env!("CARGO_BIN_EXE_frontier-bench")));
    let mut plan = String::new();
    for (i, problem) in ["rosenbrock-10", "logreg-breast-cancer", "mlp-wine"].iter().enumerate() {
        for who in ["adam", "candidate", "served:adam"] {
            plan += &format!("id={i}{who} optimizer={who} problem={problem} lr=0.01 seed=4 instance=77 steps=60 curve_points=5 eval_budget=60\n");
        }
    }
    let (out, code) = bin(&["run", "--candidate", &remote], &plan);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 9, "{out}");
    for triple in lines.chunks(3) {
        for other in &triple[1..] {
            assert_eq!(field(other, "error"), "null", "{other}");
            for key in ["final_loss", "best_loss", "curve", "test_accuracy", "grad_evals", "steps_done"] {
                assert_eq!(field(triple[0], key), field(other, key), "{key}: {} vs {other}", triple[0]);
            }
        }
    }
    // Optimizers that read each tensor's kind (Muon: Newton-Schulz for hidden matrices, AdamW for the
    // rest) and hand over another point than their parameters (Schedule-Free's averaged iterate): the
    // kinds and the evaluation point cross the pipe exactly too.
    for optimizer in ["muon", "schedulefree_adamw"] {
        let served = script(optimizer, &format!("exec {} \"$1\" {optimizer}", env!("CARGO_BIN_EXE_frontier-bench")));
        let mut plan = String::new();
        for who in [optimizer, "candidate"] {
            plan += &format!("id=1{who} optimizer={who} problem=mlp-wine lr=0.01 seed=4 instance=77 steps=60 curve_points=5\n");
        }
        let (out, code) = bin(&["run", "--candidate", &served], &plan);
        assert_eq!(code, 0, "{out}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(field(lines[1], "error"), "null", "{}", lines[1]);
        for key in ["final_loss", "curve", "accuracy_curve", "test_accuracy"] {
            assert_eq!(field(lines[0], key), field(lines[1], key), "{optimizer} {key}: {out}");
        }
    }
    // Another instance of the same problem is another landscape.
    let (other, _) = bin(&["run"], &plan.lines().next().unwrap().replace("instance=77", "instance=78"));
    assert_ne!(field(&other, "final_loss"), field(lines[0], "final_loss"));
}

#[test]
fn a_candidate_that_breaks_the_protocol_dies_or_hangs_fails_only_its_own_run() {
    let garbage = script("garbage", "echo '{\"id\":1,\"final_loss\":0.0}'; cat >/dev/null");
    let quits = script("quits", "exit 0");
    let hangs = script("hangs", "exec sleep 30");
    let line = "id=1 optimizer=candidate problem=rosenbrock-10 lr=0.01 seed=1 steps=20\nid=2 optimizer=adam problem=rosenbrock-10 lr=0.01 seed=1 steps=20\n";
    for (path, expect) in [
        (&garbage, "broke the run protocol"),
        (&quits, "ended in the middle of its run"),
        (&hangs, "exceeded its time limit"),
    ] {
        let started = std::time::Instant::now();
        let (out, code) = bin(&["run", "--candidate", path, "--run-timeout-ms", "500"], line);
        assert_eq!(code, 0, "{out}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(lines[0].contains(expect) && lines[0].contains(r#""diverged":true"#), "{}", lines[0]);
        assert!(lines[0].contains(r#""final_loss":null"#), "{}", lines[0]);
        assert!(lines[1].contains(r#""error":null"#), "the next run is unaffected: {}", lines[1]);
        assert!(started.elapsed().as_secs() < 10, "the hung candidate was not stopped");
    }
}

const TIMELESS: [&str; 8] =
    ["error", "final_loss", "best_loss", "curve", "test_accuracy", "grad_evals", "steps_done", "diverged"];

#[test]
fn one_zygote_forks_every_run_and_the_numbers_are_those_of_an_exec_per_run() {
    let bench = env!("CARGO_BIN_EXE_frontier-bench");
    let log = std::env::temp_dir().join(format!("frontier-bench-starts-{}", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let forking = script("zygote-forking", &format!("echo \"$1\" >> {}\nexec {bench} \"$1\" adam", log.display()));
    let exec_only = script("zygote-exec-only", &format!("[ \"$1\" = zygote ] && exit 3\nexec {bench} serve adam"));
    let mut plan = String::new();
    for (i, problem) in ["rosenbrock-10", "mlp-wine", "logreg-breast-cancer", "rastrigin-10"].iter().enumerate() {
        plan += &format!("id={i} optimizer=candidate problem={problem} lr=0.01 seed={i} instance=9 steps=40 curve_points=4\n");
    }
    let (forked, code) = bin(&["run", "--candidate", &forking, "--run-timeout-ms", "20000"], &plan);
    assert_eq!(code, 0, "{forked}");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "zygote\n", "one process start for four runs");
    let (execed, code) = bin(&["run", "--candidate", &exec_only, "--run-timeout-ms", "20000"], &plan);
    assert_eq!(code, 0, "{execed}");
    let (forked, execed): (Vec<&str>, Vec<&str>) = (forked.lines().collect(), execed.lines().collect());
    assert_eq!(forked.len(), 4);
    assert_eq!(execed.len(), 4);
    for (a, b) in forked.iter().zip(&execed) {
        assert_eq!(field(a, "error"), "null", "{a}");
        for key in TIMELESS {
            assert_eq!(field(a, key), field(b, key), "{key}: forked {a} vs exec {b}");
        }
    }
}

#[test]
fn a_zygote_that_lies_dies_or_hangs_is_not_trusted_and_its_runs_start_by_exec() {
    // Impostors of the fork server: in `serve` mode each is Adam, so every run must still come out
    // as the harness's own Adam, and the harness must never signal a process the zygote named
    // without checking that it is the zygote's child (the harness itself, the zygote itself).
    let bench = env!("CARGO_BIN_EXE_frontier-bench");
    let python = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("python3")).find(|p| p.is_file()))
        .expect("python3 on PATH (the impostors are Python scripts)");
    let impostor = |name: &str, body: &str| {
        let program = format!(
            "import os, socket, struct, sys, time\ns = socket.socket(fileno=0)\n\
             msg, fds, flags, addr = socket.recv_fds(s, 16, 1)\n{body}\ntime.sleep(30)\n"
        );
        let path = script(&format!("{name}.py"), "");
        std::fs::write(&path, program).unwrap();
        script(name, &format!("[ \"$1\" = serve ] && exec {bench} serve adam\nexec {} {path}", python.display()))
    };
    let cases = [
        impostor("zygote-names-the-harness", "s.send(b'P' + struct.pack('<i', os.getppid()))"),
        impostor("zygote-names-itself", "s.send(b'P' + struct.pack('<i', os.getpid()))"),
        impostor("zygote-names-pid-1", "s.send(b'P' + struct.pack('<i', 1))"),
        impostor("zygote-garbage", "s.send(b'Q' * 5)"),
        // Keeps the run's memory file in a child that scribbles over its rings, and names the harness:
        // the run must go to a process started by exec with a memory file of its own.
        impostor(
            "zygote-keeps-the-file",
            "import mmap\nm = mmap.mmap(fds[0], os.fstat(fds[0]).st_size)\nzygote = os.getpid()\n\
             if os.fork() == 0:\n    end = time.time() + 10\n\
             \x20   while os.getppid() == zygote and time.time() < end:\n\
             \x20       m[64:4096] = bytes([0xFF]) * (4096 - 64)\n\
             \x20       time.sleep(0.0005)\n    os._exit(0)\n\
             s.send(b'P' + struct.pack('<i', os.getppid()))",
        ),
        impostor("zygote-hangs", ""),
        script("zygote-dies", &format!("[ \"$1\" = serve ] && exec {bench} serve adam\nexit 0")),
    ];
    let mut plan = String::new();
    for id in 1..=3 {
        plan += &format!("id={id}c optimizer=candidate problem=rosenbrock-10 lr=0.01 seed={id} instance=5 steps=30 curve_points=3\n");
        plan += &format!("id={id}a optimizer=adam problem=rosenbrock-10 lr=0.01 seed={id} instance=5 steps=30 curve_points=3\n");
    }
    for candidate in cases {
        let (out, code) = bin(&["run", "--candidate", &candidate, "--run-timeout-ms", "20000"], &plan);
        assert_eq!(code, 0, "{candidate}: {out}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 6, "{candidate}: {out}");
        for pair in lines.chunks(2) {
            assert_eq!(field(pair[0], "error"), "null", "{candidate}: {}", pair[0]);
            for key in TIMELESS {
                assert_eq!(field(pair[0], key), field(pair[1], key), "{candidate} {key}: {out}");
            }
        }
    }
}
