//! frontier-bench: the harness library behind every candidate binary.
//!
//! [`main`] implements the subcommands (see README.md for the protocol): `list`, `run` (plan on
//! stdin, one JSON line per run), `serve`, `replay` (recorded gradients in, parameters out) and
//! `version`. This binary is the trusted side of every benchmark: it owns the problems, the
//! oracle budget and every number it prints. A candidate optimizer never runs in its process:
//! `run --candidate BINARY` starts a fresh process of the candidate's binary for each run and
//! talks to it over a shared-memory channel, or pipes where no memory file can be made
//! ([`remote`], `frontier_core::channel`).
#![deny(unsafe_code)]

use frontier_core::Optimizer;
use frontier_problems::Problem;
use std::io::{self, BufRead, Write};
use std::process::ExitCode;

pub mod json;
mod os;
pub mod plan;
pub mod remote;
pub mod replay;
pub mod runner;
pub mod speed;
mod zygote;

use remote::{RemoteCandidate, RemoteConfig};

/// Bump whenever a problem, a baseline, the run protocol or the JSON output changes.
/// It is pinned (with every problem's version and the baselines' version) by a test.
pub const HARNESS_VERSION: &str = "2.6.0";

/// A candidate optimizer's constructor (in-process: the harness's own tests).
pub type Candidate = fn() -> Box<dyn Optimizer>;

/// Where `optimizer=candidate` runs come from.
#[derive(Clone, Debug, Default)]
pub enum CandidateSource {
    #[default]
    None,
    /// Built in this process (tests of the harness itself).
    InProcess(Candidate),
    /// A fresh process of the candidate's binary per run (every benchmark).
    Remote(RemoteConfig),
}

impl From<Option<Candidate>> for CandidateSource {
    fn from(c: Option<Candidate>) -> CandidateSource {
        c.map_or(CandidateSource::None, CandidateSource::InProcess)
    }
}

const USAGE: &str = "usage: frontier-bench list | run [--candidate BINARY [--sweep] [--run-timeout-ms N]] | serve BASELINE | zygote BASELINE | replay [--candidate BINARY [--sweep] [--run-timeout-ms N]] | version
  list     print problems and optimizers as one JSON line
  run      read a plan from stdin (one run per line: id=.. optimizer=.. problem=.. lr=.. seed=.. steps=.. [instance=..] [curve_points=..] [opt.<k>=<v>..] [knob.<k>=<v>..] [eval_budget=..] [time_limit_ms=..] [warmup=..] [decay=..] [accuracy=0]), print one JSON line per run; optimizer=candidate runs BINARY, one fresh process per run
  serve    answer one run's frames on stdin/stdout as a candidate binary does, with a baseline (for timing both the same way)
  zygote   fork a process per run that does what serve does (a fork server; its requests on stdin)
  replay   read runs (optimizer line [id=..], shapes, init, [loss ..] grad lines, end), print params after each step (and done id=.. / error id=.. per run with an id); optimizer=candidate runs BINARY, one fresh process per run; oracle calls void the run
  version  print the harness version
  speed    adam [N] [STEPS]: baseline Adam step vs a raw Adam-shaped kernel; all [N] [STEPS] [CHUNK] [LABELS]: every element-wise baseline vs a kernel of its shape, one tensor and tensors of CHUNK; problems [STEPS] [NAMES]: gradient vs Adam step time per problem; one JSON line (not a protocol command)";

/// Problem instances built on first use and kept for the whole process (a plan runs the same
/// instance for every optimizer and tuning point; at most `CACHED_INSTANCES` are kept).
#[derive(Default)]
pub struct ProblemCache {
    built: Vec<((String, u64), Box<dyn Problem>)>,
}

const CACHED_INSTANCES: usize = 64;

impl ProblemCache {
    pub fn get(&mut self, name: &str, instance: u64) -> Option<&dyn Problem> {
        let key = (name.to_string(), instance);
        let i = match self.built.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                let p = frontier_problems::instance(name, instance)?;
                if self.built.len() == CACHED_INSTANCES {
                    self.built.remove(0);
                }
                self.built.push((key, p));
                self.built.len() - 1
            }
        };
        Some(self.built[i].1.as_ref())
    }
}

/// Optimizer names available to this binary ("candidate" first when there is one).
pub fn optimizer_names(candidate: &CandidateSource) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    if !matches!(candidate, CandidateSource::None) {
        v.push("candidate".into());
    }
    v.extend(frontier_baselines::names().into_iter().map(String::from));
    v
}

/// Builds an optimizer by plan name.
pub fn build_optimizer(
    name: &str,
    opts: &[(String, f64)],
    candidate: &CandidateSource,
) -> Result<Box<dyn Fn() -> Box<dyn Optimizer>>, String> {
    if let Some(baseline) = name.strip_prefix("served:") {
        // A baseline in a process of its own, over the same pipe as a candidate: for timing both alike.
        frontier_baselines::build(baseline, opts)?;
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let config = RemoteConfig::new(exe, vec!["serve".into(), baseline.to_string()]);
        return Ok(Box::new(move || Box::new(RemoteCandidate::start(&config)) as Box<dyn Optimizer>));
    }
    if name == "candidate" {
        if !opts.is_empty() {
            return Err("the candidate takes no opt.* options".into());
        }
        return match candidate {
            CandidateSource::None => Err("this harness was given no candidate (run --candidate BINARY)".into()),
            CandidateSource::InProcess(c) => Ok(Box::new(*c)),
            CandidateSource::Remote(config) => {
                let config = config.clone();
                Ok(Box::new(move || Box::new(RemoteCandidate::start(&config)) as Box<dyn Optimizer>))
            }
        };
    }
    // validate once, then build fresh per run
    frontier_baselines::build(name, opts)?;
    let (name, opts) = (name.to_string(), opts.to_vec());
    Ok(Box::new(move || frontier_baselines::build(&name, &opts).expect("validated")))
}

pub use frontier_core::contract::{check_switches, resolve_knobs, MAX_KNOBS, MAX_SWITCHES};
pub use frontier_core::guard;

/// The `knobs` JSON line of an in-process candidate (a candidate binary prints its own).
pub fn knobs_json(candidate: Option<Candidate>) -> String {
    match candidate {
        None => r#"{"knobs":[],"switches":[]}"#.to_string(),
        Some(c) => frontier_core::remote::knobs_json(&c),
    }
}

/// The `list` JSON line.
pub fn list_json(candidate: &CandidateSource) -> String {
    let mut probs = Vec::new();
    for name in frontier_problems::all_names() {
        let p = frontier_problems::by_name(&name).expect("listed problem");
        let shapes: Vec<String> = p
            .shapes()
            .iter()
            .map(|s| format!("[{}]", s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(",")))
            .collect();
        let mut o = json::Obj::new();
        o.str("name", &name)
            .u("dim", p.dim() as u64)
            .b("has_data", p.has_data())
            .b("stochastic", p.train_size().is_some())
            .u("batch_size", p.batch_size() as u64)
            .raw("train_size", &p.train_size().map_or("null".into(), |n| n.to_string()))
            .opt_f("optimum", p.optimum())
            .raw("shapes", &format!("[{}]", shapes.join(",")))
            .u("version", p.version() as u64);
        probs.push(o.finish());
    }
    let opts: Vec<String> = optimizer_names(candidate).iter().map(|s| json::string(s)).collect();
    let mut defaults = json::Obj::new();
    let mut search = json::Obj::new();
    for n in frontier_baselines::names() {
        let mut d = json::Obj::new();
        for (k, v) in frontier_baselines::defaults(n).expect("listed baseline") {
            d.f(k, v);
        }
        defaults.raw(n, &d.finish());
        let space: Vec<String> = frontier_baselines::search_space(n)
            .expect("listed baseline")
            .iter()
            .map(|hp| {
                let mut o = json::Obj::new();
                o.str("name", hp.name).f("low", hp.low).f("high", hp.high).str("scale", hp.scale.name());
                o.finish()
            })
            .collect();
        search.raw(n, &format!("[{}]", space.join(",")));
    }
    json::Obj::new()
        .str("harness_version", HARNESS_VERSION)
        .u("baselines_version", frontier_baselines::BASELINES_VERSION as u64)
        .raw("problems", &format!("[{}]", probs.join(",")))
        .raw("optimizers", &format!("[{}]", opts.join(",")))
        .raw("optimizer_defaults", &defaults.finish())
        .raw("search_spaces", &search.finish())
        .finish()
}

/// Runs one plan line and returns its JSON line.
pub fn run_line(line: &str, cache: &mut ProblemCache, candidate: &CandidateSource) -> String {
    let bad = |msg: String| {
        json::Obj::new().raw("id", &plan::id_json_of(line)).str("error", &format!("bad plan line: {msg}")).finish()
    };
    let spec = match plan::parse_line(line) {
        Ok(s) => s,
        Err(e) => return bad(e),
    };
    if spec.optimizer != "candidate" && (!spec.knobs.is_empty() || !spec.switched_off.is_empty()) {
        return bad("knob.* and switch.* are for the candidate; baselines take opt.*".into());
    }
    let make = match build_optimizer(&spec.optimizer, &spec.opts, candidate) {
        Ok(m) => m,
        Err(e) => return bad(e),
    };
    let problem = match cache.get(&spec.problem, spec.instance) {
        Some(p) => p,
        None => {
            return bad(format!(
                "unknown problem '{}'; known: {}",
                spec.problem,
                frontier_problems::all_names().join(", ")
            ))
        }
    };
    let res = runner::run(problem, make.as_ref(), &spec);
    res.to_json(&spec, problem.dim())
}

/// Reads a plan from `input` and writes one JSON line per run to `out`, flushing each.
pub fn run_plan(input: &mut dyn BufRead, out: &mut dyn Write, candidate: &CandidateSource) -> io::Result<()> {
    let mut cache = ProblemCache::default();
    let mut line = String::new();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let s = run_line(l, &mut cache, candidate);
        out.write_all(s.as_bytes())?;
        out.write_all(b"\n")?;
        out.flush()?;
    }
}

/// Parses `run`'s options: `--candidate BINARY`, `--sweep`, `--run-timeout-ms N`.
pub fn run_options(args: &[String]) -> Result<CandidateSource, String> {
    let mut binary = None;
    let mut sweep = false;
    let mut timeout_ms: u64 = 120_000;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--candidate" => binary = Some(it.next().ok_or("--candidate needs a path")?.into()),
            "--sweep" => sweep = true,
            "--run-timeout-ms" => {
                timeout_ms = it.next().and_then(|v| v.parse().ok()).ok_or("--run-timeout-ms needs an integer")?
            }
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    Ok(match binary {
        None => CandidateSource::None,
        Some(binary) => CandidateSource::Remote(RemoteConfig {
            binary,
            args: vec!["serve".into()],
            run_timeout: std::time::Duration::from_millis(timeout_ms),
            sweep: sweep && std::process::id() == 2,
        }),
    })
}

/// The `main` of `frontier-bench`, the lab's trusted harness.
pub fn main() -> ExitCode {
    guard::install_hook();
    let args: Vec<String> = std::env::args().collect();
    let cmd = args.get(1).map(String::as_str).unwrap_or("");
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let usage_error = |e: String| {
        eprintln!("{e}\n{USAGE}");
        ExitCode::from(2)
    };
    match cmd {
        "version" | "--version" => {
            let _ = writeln!(out, "{HARNESS_VERSION}");
            ExitCode::SUCCESS
        }
        "list" => {
            let _ = writeln!(out, "{}", list_json(&CandidateSource::None));
            ExitCode::SUCCESS
        }
        "run" => {
            let candidate = match run_options(&args[2..]) {
                Ok(c) => c,
                Err(e) => return usage_error(e),
            };
            // Candidates run as this user, in this sandbox: they must not read or write this
            // process's memory, descriptors or environment.
            if matches!(candidate, CandidateSource::Remote(_)) && !os::forbid_inspection() {
                eprintln!("run: could not make the harness non-dumpable");
                return ExitCode::from(1);
            }
            let stdin = io::stdin();
            match run_plan(&mut stdin.lock(), &mut out, &candidate) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("run: {e}");
                    ExitCode::from(1)
                }
            }
        }
        "serve" | "zygote" => {
            // `zygote`: the fork server of `serve` (see `frontier_core::zygote`).
            let name = args.get(2).cloned().unwrap_or_default();
            if name.starts_with("served:") || name == "candidate" {
                return usage_error(format!("serve takes a baseline name, not '{name}'"));
            }
            let make = match build_optimizer(&name, &[], &CandidateSource::None) {
                Ok(m) => m,
                Err(e) => return usage_error(e),
            };
            drop(out);
            if cmd == "zygote" {
                return frontier_core::zygote::serve_forks(&*make);
            }
            match frontier_core::remote::serve(&*make) {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::from(1),
            }
        }
        "replay" => {
            // `--candidate BINARY`: optimizer=candidate replays through a fresh process of it per
            // run, behind the same boundary as `run` (non-dumpable harness, sweep, time limit).
            let candidate = match run_options(&args[2..]) {
                Ok(c) => c,
                Err(e) => return usage_error(e),
            };
            if matches!(candidate, CandidateSource::Remote(_)) && !os::forbid_inspection() {
                eprintln!("replay: could not make the harness non-dumpable");
                return ExitCode::from(1);
            }
            let stdin = io::stdin();
            let build = |name: &str, opts: &[(String, f64)]| -> Result<Box<dyn Optimizer>, String> {
                let make = build_optimizer(name, opts, &candidate)?;
                guard::guarded(make).map_err(|c| c.describe())
            };
            match replay::replay(&mut stdin.lock(), &mut out, &build) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    let _ = writeln!(out, "error {e}");
                    let _ = out.flush();
                    ExitCode::from(1)
                }
            }
        }
        "speed" => match speed::main(&args[2..]) {
            Ok(line) => {
                let _ = writeln!(out, "{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("speed: {e}");
                ExitCode::from(2)
            }
        },
        "help" | "--help" | "-h" => {
            let _ = writeln!(out, "{USAGE}");
            ExitCode::SUCCESS
        }
        _ => usage_error(format!("unknown command '{cmd}'")),
    }
}

#[cfg(test)]
mod tests;
