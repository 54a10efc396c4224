//! frontier-bench: the harness library behind every candidate binary.
//!
//! `main_with(candidate)` implements the subcommands (see README.md for the protocol):
//! `list`, `run` (plan on stdin, one JSON line per run), `replay` (recorded gradients in,
//! parameters out) and `version`.
#![forbid(unsafe_code)]

use frontier_core::{Knob, Optimizer};
use frontier_problems::Problem;
use std::io::{self, BufRead, Write};
use std::process::ExitCode;

pub mod guard;
pub mod json;
pub mod plan;
pub mod replay;
pub mod runner;
pub mod speed;

/// Bump whenever a problem, a baseline, the run protocol or the JSON output changes.
/// It is pinned (with every problem's version and the baselines' version) by a test.
pub const HARNESS_VERSION: &str = "1.2.0";

/// A candidate optimizer's constructor.
pub type Candidate = fn() -> Box<dyn Optimizer>;

const USAGE: &str = "usage: <binary> list | run | replay | version
  list     print problems and optimizers as one JSON line
  run      read a plan from stdin (one run per line: id=.. optimizer=.. problem=.. lr=.. seed=.. steps=.. [curve_points=..] [opt.<k>=<v>..] [time_limit_ms=..]), print one JSON line per run
  replay   read optimizer line, shapes, init, grad lines, end; print params after each step
  version  print the harness version
  speed    adam [N] [STEPS]: baseline Adam step vs a raw Adam-shaped kernel, one JSON line (not a protocol command)";

/// Problems built on first use and kept for the whole process.
#[derive(Default)]
pub struct ProblemCache {
    built: Vec<(String, Box<dyn Problem>)>,
}

impl ProblemCache {
    pub fn get(&mut self, name: &str) -> Option<&dyn Problem> {
        let i = match self.built.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                let p = frontier_problems::by_name(name)?;
                self.built.push((name.to_string(), p));
                self.built.len() - 1
            }
        };
        Some(self.built[i].1.as_ref())
    }
}

/// Optimizer names available to this binary ("candidate" first when there is one).
pub fn optimizer_names(candidate: Option<Candidate>) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    if candidate.is_some() {
        v.push("candidate".into());
    }
    v.extend(frontier_baselines::names().into_iter().map(String::from));
    v
}

/// Builds an optimizer by plan name.
pub fn build_optimizer(
    name: &str,
    opts: &[(String, f64)],
    candidate: Option<Candidate>,
) -> Result<Box<dyn Fn() -> Box<dyn Optimizer>>, String> {
    if name == "candidate" {
        let c = candidate.ok_or("this binary has no candidate optimizer")?;
        if !opts.is_empty() {
            return Err("the candidate takes no opt.* options".into());
        }
        return Ok(Box::new(c));
    }
    // validate once, then build fresh per run
    frontier_baselines::build(name, opts)?;
    let (name, opts) = (name.to_string(), opts.to_vec());
    Ok(Box::new(move || frontier_baselines::build(&name, &opts).expect("validated")))
}

/// The most knobs a candidate may declare: every knob thins the same tuning budget.
pub const MAX_KNOBS: usize = 4;

/// Checks a candidate's declared knobs and fills in the plan's values (defaults elsewhere).
pub fn resolve_knobs(declared: &[Knob], given: &[(String, f64)]) -> Result<Vec<(String, f64)>, String> {
    if declared.len() > MAX_KNOBS {
        return Err(format!("{} knobs declared; at most {MAX_KNOBS}", declared.len()));
    }
    for (i, k) in declared.iter().enumerate() {
        let valid_name = !k.name.is_empty()
            && k.name.len() <= 32
            && k.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid_name {
            return Err(format!("knob name '{}' must be 1-32 characters of a-z, 0-9 and _", k.name));
        }
        if declared[..i].iter().any(|o| o.name == k.name) {
            return Err(format!("knob '{}' is declared twice", k.name));
        }
        let ordered = k.low.is_finite() && k.high.is_finite() && k.low < k.high;
        if !ordered || !(k.low..=k.high).contains(&k.default) || (k.log_scale && k.low <= 0.0) {
            return Err(format!(
                "knob '{}' needs finite low < high, low <= default <= high, and low > 0 on a log scale",
                k.name
            ));
        }
    }
    for (name, value) in given {
        let k = declared.iter().find(|k| k.name == name).ok_or_else(|| format!("knob '{name}' is not declared"))?;
        if !(k.low..=k.high).contains(value) {
            return Err(format!("knob '{name}'={value} is outside [{}, {}]", k.low, k.high));
        }
    }
    Ok(declared
        .iter()
        .map(|k| {
            let v = given.iter().find(|(n, _)| n == k.name).map_or(k.default, |(_, v)| *v);
            (k.name.to_string(), v)
        })
        .collect())
}

/// The most switches a candidate may declare for ablations.
pub const MAX_SWITCHES: usize = 8;

/// Checks a candidate's declared switches and that every switched-off name is one of them.
pub fn check_switches(declared: &[&str], off: &[String]) -> Result<(), String> {
    if declared.len() > MAX_SWITCHES {
        return Err(format!("{} switches declared; at most {MAX_SWITCHES}", declared.len()));
    }
    for (i, name) in declared.iter().enumerate() {
        let valid = !name.is_empty()
            && name.len() <= 32
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid || declared[..i].contains(name) {
            return Err(format!("switch name '{name}' must be unique, 1-32 characters of a-z, 0-9 and _"));
        }
    }
    match off.iter().find(|n| !declared.contains(&n.as_str())) {
        Some(n) => Err(format!("switch '{n}' is not declared")),
        None => Ok(()),
    }
}

/// The `knobs` JSON line: the candidate's declared knobs and switches, or an error.
pub fn knobs_json(candidate: Option<Candidate>) -> String {
    let declared = match candidate.map(|c| guard::guarded(|| { let o = c(); (o.knobs(), o.switches()) })) {
        None => Ok((Vec::new(), Vec::new())),
        Some(Ok((k, s))) => resolve_knobs(&k, &[]).and_then(|_| check_switches(&s, &[])).map(|_| (k, s)),
        Some(Err(c)) => Err(format!("panic: {}", c.message)),
    };
    match declared {
        Ok((knobs, switches)) => {
            let items: Vec<String> = knobs
                .iter()
                .map(|k| {
                    let mut o = json::Obj::new();
                    o.str("name", k.name).f("low", k.low).f("high", k.high).f("default", k.default).b("log_scale", k.log_scale);
                    o.finish()
                })
                .collect();
            let names: Vec<String> = switches.iter().map(|n| json::string(n)).collect();
            format!("{{\"knobs\":[{}],\"switches\":[{}]}}", items.join(","), names.join(","))
        }
        Err(e) => json::Obj::new().str("error", &e).finish(),
    }
}

/// The `list` JSON line.
pub fn list_json(candidate: Option<Candidate>) -> String {
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
    for n in frontier_baselines::names() {
        let mut d = json::Obj::new();
        for (k, v) in frontier_baselines::defaults(n).expect("listed baseline") {
            d.f(k, v);
        }
        defaults.raw(n, &d.finish());
    }
    json::Obj::new()
        .str("harness_version", HARNESS_VERSION)
        .u("baselines_version", frontier_baselines::BASELINES_VERSION as u64)
        .raw("problems", &format!("[{}]", probs.join(",")))
        .raw("optimizers", &format!("[{}]", opts.join(",")))
        .raw("optimizer_defaults", &defaults.finish())
        .finish()
}

/// Runs one plan line and returns its JSON line.
pub fn run_line(line: &str, cache: &mut ProblemCache, candidate: Option<Candidate>) -> String {
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
    let problem = match cache.get(&spec.problem) {
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
pub fn run_plan(input: &mut dyn BufRead, out: &mut dyn Write, candidate: Option<Candidate>) -> io::Result<()> {
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

/// The `main` of every candidate binary (and of `frontier-bench` itself, with `None`).
pub fn main_with(candidate: Option<Candidate>) -> ExitCode {
    guard::install_hook();
    let args: Vec<String> = std::env::args().collect();
    let cmd = args.get(1).map(String::as_str).unwrap_or("");
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match cmd {
        "version" | "--version" => {
            let _ = writeln!(out, "{HARNESS_VERSION}");
            ExitCode::SUCCESS
        }
        "list" => {
            let _ = writeln!(out, "{}", list_json(candidate));
            ExitCode::SUCCESS
        }
        "knobs" => {
            let _ = writeln!(out, "{}", knobs_json(candidate));
            ExitCode::SUCCESS
        }
        "run" => {
            let stdin = io::stdin();
            match run_plan(&mut stdin.lock(), &mut out, candidate) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("run: {e}");
                    ExitCode::from(1)
                }
            }
        }
        "replay" => {
            let stdin = io::stdin();
            let build = |name: &str, opts: &[(String, f64)]| -> Result<Box<dyn Optimizer>, String> {
                let make = build_optimizer(name, opts, candidate)?;
                guard::guarded(make).map_err(|c| format!("panic: {}", c.message))
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
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests;
