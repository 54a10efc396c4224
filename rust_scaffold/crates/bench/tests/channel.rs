//! The shared-memory channel between the harness and a candidate process, end to end: the same
//! numbers over it, over pipes and in-process, and candidates that attack it from the other side
//! (Python scripts that map the memory file they get as stdin and write what they like into it).
#![forbid(unsafe_code)]

mod common;

use common::{bin, script};
use frontier_bench::remote::{RemoteCandidate, RemoteConfig, Transport};
use frontier_bench::{plan, runner};
use frontier_core::Optimizer;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn served(optimizer: &str) -> RemoteConfig {
    let mut config = RemoteConfig::new(
        PathBuf::from(env!("CARGO_BIN_EXE_frontier-bench")),
        vec!["serve".into(), optimizer.into()],
    );
    config.run_timeout = Duration::from_secs(60);
    config
}

fn run(problem: &str, line: &str, make: &dyn Fn() -> Box<dyn Optimizer>) -> runner::RunResult {
    let spec = plan::parse_line(line).unwrap();
    let problem = frontier_problems::instance(problem, spec.instance).unwrap();
    runner::run(problem.as_ref(), make, &spec)
}

#[test]
fn both_transports_give_the_in_process_numbers_bit_for_bit_with_frames_larger_than_a_ring() {
    // transformer-grammar-d24's 8,472 parameters make 68 KB frames: they stream through a 64 KiB ring.
    const { assert!(8 * 8472 > frontier_core::channel::RING_BYTES) };
    for (problem, optimizer) in [("transformer-grammar-d24", "adam"), ("mlp-wine", "schedulefree_adamw")] {
        let line = format!("id=1 optimizer=candidate problem={problem} lr=0.003 seed=5 instance=3 steps=25 curve_points=5");
        let local = run(problem, &line, &|| frontier_baselines::build(optimizer, &[]).unwrap());
        assert!(local.error.is_none() && local.curve.len() == 5, "{:?}", local.error);
        for transport in [Transport::SharedMemory, Transport::Pipes] {
            let config = served(optimizer);
            let remote = run(problem, &line, &|| Box::new(RemoteCandidate::start_over(&config, transport)));
            assert_eq!(remote.error, None, "{transport:?}");
            assert_eq!(remote.curve, local.curve, "{problem} {transport:?}");
            assert_eq!(remote.params, local.params, "{problem} {transport:?}");
        }
    }
}

#[test]
fn over_pipes_a_stray_byte_on_stdout_still_breaks_the_protocol() {
    let garbage = script("pipe-garbage", "echo '{\"id\":1,\"final_loss\":0.0}'; cat >/dev/null");
    let config = RemoteConfig::new(PathBuf::from(garbage), vec!["serve".into()]);
    let r = run("rosenbrock-10", "id=1 optimizer=candidate problem=rosenbrock-10 lr=0.01 seed=1 steps=20", &|| {
        Box::new(RemoteCandidate::start_over(&config, Transport::Pipes))
    });
    let error = r.error.unwrap_or_default();
    assert!(error.contains("broke the run protocol (unexpected frame 0x7b)"), "{error}");
}

/// A candidate binary that is a Python script: `body` runs once the harness's `B` is in ring 0,
/// with `m` the mapped memory file and `send(bytes)`, `publish(ring, offset, value)` at hand.
fn python_candidate(name: &str, body: &str) -> String {
    let python = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("python3")).find(|p| p.is_file()))
        .expect("python3 on PATH (the hostile candidates are Python scripts)");
    let program = format!(
        r#"import mmap, os, struct, sys, time
m = mmap.mmap(0, os.fstat(0).st_size)
ring = struct.unpack_from('<I', m, 12)[0]
CONTROL = (64, 320)
DATA = (4096, 4096 + ring)
def index(r, at): return struct.unpack_from('<Q', m, CONTROL[r] + at)[0]
def publish(r, at, value): struct.pack_into('<Q', m, CONTROL[r] + at, value)
def send(data):
    written = index(1, 0)
    for i, b in enumerate(data): m[DATA[1] + (written + i) % ring] = b
    publish(1, 0, written + len(data))
while index(0, 0) < 1: time.sleep(0.001)
{body}
"#
    );
    let dir = std::env::temp_dir().join(format!("frontier-bench-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.py"));
    std::fs::write(&path, program).unwrap();
    script(name, &format!("exec {} {}", python.display(), path.display()))
}

#[test]
fn hostile_candidates_fail_their_own_run_with_a_clear_message_and_nothing_else() {
    let declare_nothing = r"send(b'R' + struct.pack('<II', 0, 0))";
    let cases = [
        ("forged-write-index", "publish(1, 0, 1 << 40)\ntime.sleep(30)".to_string(), "broke the run protocol: an impossible ring index"),
        ("backward-write-index", format!("{declare_nothing}\ntime.sleep(0.2)\npublish(1, 0, 2)\ntime.sleep(30)"), "broke the run protocol: an impossible ring index"),
        ("forged-read-index", format!("publish(0, 64, 1 << 50)\n{declare_nothing}\ntime.sleep(30)"), "broke the run protocol: an impossible ring index"),
        ("huge-length", "send(b'R' + struct.pack('<II', 1, 0xFFFFFFFF))\ntime.sleep(30)".to_string(), "broke the run protocol: a string of 4294967295 bytes"),
        ("too-many-knobs", "send(b'R' + struct.pack('<I', 1 << 31))\ntime.sleep(30)".to_string(), "broke the run protocol: 2147483648 knobs"),
        ("dies-mid-frame", "send(b'R' + b'\\x01\\x00')\nos._exit(0)".to_string(), "ended in the middle of its run"),
        ("silent", "time.sleep(30)".to_string(), "exceeded its time limit of 1 s"),
        ("prints", format!("sys.stdout.write('{{\"id\":1,\"final_loss\":0.0}}\\n'); sys.stdout.flush()\n{declare_nothing}\ntime.sleep(30)"), "broke the run protocol: it wrote to its standard output"),
    ];
    let plan = "id=1 optimizer=candidate problem=rosenbrock-10 lr=0.01 seed=1 steps=20\n\
                id=2 optimizer=adam problem=rosenbrock-10 lr=0.01 seed=1 steps=20\n";
    for (name, body, expect) in cases {
        let candidate = python_candidate(name, &body);
        let started = Instant::now();
        let (out, code) = bin(&["run", "--candidate", &candidate, "--run-timeout-ms", "1000"], plan);
        assert_eq!(code, 0, "{name}: {out}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{name}: {out}");
        assert!(lines[0].contains(expect), "{name}: {}", lines[0]);
        assert!(lines[0].contains(r#""final_loss":null"#) && lines[0].contains(r#""diverged":true"#), "{}", lines[0]);
        assert!(lines[1].contains(r#""error":null"#), "{name}: the next run is unaffected: {}", lines[1]);
        assert!(started.elapsed() < Duration::from_secs(10), "{name}: the candidate was not stopped");
    }
}

#[test]
fn a_candidate_that_fails_before_its_optimizer_is_built_is_reaped() {
    // Each candidate looks at the harness's other children: a process left by an earlier run (a
    // zombie, unreaped) makes it end at once instead of breaking the protocol as it otherwise does.
    // A harness that serves many runs (a benchmark's kept process) ran out of processes this way.
    let candidate = script(
        "fails-at-start",
        r#"others=$(cat /proc/$PPID/task/*/children | tr ' ' '\n' | grep -v "^$$\$" | grep -c .)
[ "$others" -gt 0 ] && exit 0
echo '{"id":1,"final_loss":0.0}'
exec sleep 30"#,
    );
    let plan: String = (1..=5).map(|i| format!("id={i} optimizer=candidate problem=rosenbrock-10 lr=0.01 seed=1 steps=20\n")).collect();
    let (out, code) = bin(&["run", "--candidate", &candidate, "--run-timeout-ms", "5000"], &plan);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    for line in lines {
        assert!(line.contains("broke the run protocol: it wrote to its standard output"), "{line}");
    }
}
