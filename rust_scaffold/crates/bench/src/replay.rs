//! `replay`: feed recorded gradients to an optimizer and print its parameters after each step.
//!
//! ```text
//! optimizer=adam lr=0.05 opt.weight_decay=0.01     (line 1; optional id=<token>, eval=1)
//! shapes 5 1                                       (tensor lengths, or dims joined by 'x': 64x10)
//! init 0.1 -0.1 0.2 -0.2 0.05 0.0                  (flat concatenation of all tensors)
//! loss 0.37                                        (optional: ctx.loss of the next step; NaN if absent)
//! grad ...                                         (one line per step)
//! basis 0 1 ...                                    (optional, soap only: see below)
//! end
//! ```
//! Any number of runs may follow one another, each ending with `end`; input ends after an `end`.
//! Output: one `params <floats>` line per step (shortest round-trip); with `eval=1`, each is
//! followed by `eval <floats>`, the point the optimizer hands over for evaluation
//! ([`Optimizer::eval_params`], Schedule-Free's x; `params` when it has none).
//! `basis <tensor> <dim> <floats>` after a grad line overwrites the SOAP eigenbasis of that
//! tensor's dimension (n x n, row-major) once that step is taken: a recorded run whose first
//! eigenbasis is not unique is reproducible only with the recorded bases. A run without `id=` stops
//! the whole replay at its first error (`error <message>`, exit 1). A run with `id=X` ends with
//! `done id=X`, or with `error id=X <message>` after which the next run goes on.
//!
//! `optimizer=candidate` (with `replay --candidate BINARY`) replays through a fresh process of the
//! candidate's binary per run, exactly as `run` does ([`crate::remote::RemoteCandidate`]);
//! `knob.<name>=<v>` and `switch.<name>=0` set its declared knobs and switches. Each step's
//! context has the budget a run with `eval_budget=steps` would have left. There is no problem
//! behind a replay, so an oracle call (`loss_at`, `grad_at`, `hvp`) voids the run: the candidate
//! never gets a made-up value, and a replay can show only what `step` does with the gradients.

use crate::guard::guarded;
use frontier_core::{Optimizer, Oracle, StepContext, Tensor};
use std::io::{BufRead, Write};

/// The message of a run voided by an oracle call.
pub const NO_ORACLE: &str = "oracle calls (loss_at, grad_at, hvp) are not available in replay; the replay is void";

/// The oracle behind a replay: there is none, so any call ends the run.
struct NoOracle;

impl Oracle for NoOracle {
    fn loss(&self, _params: &[Tensor]) -> f64 {
        std::panic::panic_any(NO_ORACLE.to_string())
    }
    fn loss_grad(&self, _params: &[Tensor], _grads: &mut [Tensor]) -> f64 {
        std::panic::panic_any(NO_ORACLE.to_string())
    }
}

fn floats(rest: &str, n: usize, what: &str) -> Result<Vec<f64>, String> {
    let v: Result<Vec<f64>, _> = rest.split_whitespace().map(str::parse::<f64>).collect();
    let v = v.map_err(|e| format!("{what}: {e}"))?;
    if v.len() != n {
        return Err(format!("{what}: expected {n} values, got {}", v.len()));
    }
    Ok(v)
}

fn split(flat: &[f64], shapes: &[Vec<usize>]) -> Vec<Tensor> {
    let mut out = Vec::with_capacity(shapes.len());
    let mut k = 0;
    for s in shapes {
        let n: usize = s.iter().product();
        out.push(Tensor::from_vec(s, flat[k..k + n].to_vec()));
        k += n;
    }
    out
}

/// Builds an optimizer from a name and `opt.*` options.
pub type BuildFn<'a> = dyn Fn(&str, &[(String, f64)]) -> Result<Box<dyn Optimizer>, String> + 'a;

/// One run of a replay, as read from its lines.
struct Run {
    name: String,
    lr: f64,
    opts: Vec<(String, f64)>,
    knobs: Vec<(String, f64)>,
    switched_off: Vec<String>,
    shapes: Vec<Vec<usize>>,
    init: Vec<f64>,
    /// (ctx.loss, flat gradient) per step.
    steps: Vec<(f64, Vec<f64>)>,
    /// Print `eval` lines (`eval=1`).
    eval: bool,
    /// SOAP bases to inject after a step: (step index, tensor, dimension, n x n values).
    bases: Vec<(usize, usize, usize, Vec<f64>)>,
}

/// The optimizer a run steps: any, or the concrete SOAP when bases are injected.
enum Subject {
    Any(Box<dyn Optimizer>),
    Soap(Box<frontier_baselines::rules::soap::Soap>),
}

impl Subject {
    fn get(&mut self) -> &mut dyn Optimizer {
        match self {
            Subject::Any(o) => o.as_mut(),
            Subject::Soap(s) => s.as_mut(),
        }
    }
}

fn parse_head(head: &str) -> Result<(Option<String>, Run), String> {
    let mut run = Run {
        name: String::new(),
        lr: f64::NAN,
        opts: Vec::new(),
        knobs: Vec::new(),
        switched_off: Vec::new(),
        shapes: Vec::new(),
        init: Vec::new(),
        steps: Vec::new(),
        eval: false,
        bases: Vec::new(),
    };
    let (mut id, mut name, mut lr) = (None, None, None);
    for tok in head.split_whitespace() {
        let (k, v) = tok.split_once('=').ok_or_else(|| format!("token '{tok}' is not key=value"))?;
        let num = |v: &str| v.parse::<f64>().map_err(|_| format!("bad value for {k}"));
        match k {
            "id" => id = Some(v.to_string()),
            "optimizer" => name = Some(v.to_string()),
            "lr" => lr = Some(v.parse::<f64>().map_err(|_| format!("bad lr '{v}'"))?),
            "eval" => {
                run.eval = match v {
                    "1" => true,
                    "0" => false,
                    _ => return Err(format!("'{tok}': eval=0 or eval=1")),
                }
            }
            _ => {
                if let Some(o) = k.strip_prefix("opt.") {
                    run.opts.push((o.to_string(), num(v)?));
                } else if let Some(o) = k.strip_prefix("knob.") {
                    run.knobs.push((o.to_string(), num(v)?));
                } else if let Some(o) = k.strip_prefix("switch.") {
                    if o.is_empty() || v != "0" || run.switched_off.iter().any(|n| n == o) {
                        return Err(format!("'{tok}': use switch.<name>=0 once per switch"));
                    }
                    run.switched_off.push(o.to_string());
                } else {
                    return Err(format!("unknown key '{k}'"));
                }
            }
        }
    }
    run.name = name.ok_or("missing optimizer=")?;
    run.lr = lr.ok_or("missing lr=")?;
    if run.name != "candidate" && (!run.knobs.is_empty() || !run.switched_off.is_empty()) {
        return Err("knob.* and switch.* are for the candidate; baselines take opt.*".into());
    }
    Ok((id, run))
}

/// Reads one run's lines after its head (through `end`).
fn parse_body(run: &mut Run, next: &mut dyn FnMut(&str) -> Result<String, String>) -> Result<(), String> {
    let shapes_line = next("the shapes line")?;
    let rest = shapes_line.trim().strip_prefix("shapes").ok_or("line 2 must start with 'shapes'")?;
    run.shapes = rest
        .split_whitespace()
        .map(|s| s.split('x').map(|d| d.parse::<usize>().map_err(|_| format!("bad shape '{s}'"))).collect())
        .collect::<Result<_, _>>()?;
    let n: usize = run.shapes.iter().map(|s| s.iter().product::<usize>()).sum();

    let init_line = next("the init line")?;
    let rest = init_line.trim().strip_prefix("init").ok_or("line 3 must start with 'init'")?;
    run.init = floats(rest, n, "init")?;
    let mut loss = f64::NAN;
    loop {
        let l = next("a grad line or 'end'")?;
        let l = l.trim();
        if l == "end" {
            return Ok(());
        }
        if let Some(rest) = l.strip_prefix("basis") {
            let step = run.steps.len().checked_sub(1).ok_or("a basis line must follow a grad line")?;
            let mut it = rest.split_whitespace();
            let mut index = |what: &str| -> Result<usize, String> {
                it.next().and_then(|x| x.parse().ok()).ok_or_else(|| format!("basis: bad {what}"))
            };
            let (tensor, dim) = (index("tensor")?, index("dimension")?);
            let n = *run.shapes.get(tensor).and_then(|s| s.get(dim)).ok_or("basis: no such tensor dimension")?;
            let values: Vec<f64> = it.map(str::parse::<f64>).collect::<Result<_, _>>().map_err(|e| format!("basis: {e}"))?;
            if values.len() != n * n {
                return Err(format!("basis: expected {} values, got {}", n * n, values.len()));
            }
            run.bases.push((step, tensor, dim, values));
            continue;
        }
        if let Some(rest) = l.strip_prefix("loss") {
            loss = rest.trim().parse::<f64>().map_err(|_| format!("bad loss line '{l}'"))?;
            continue;
        }
        let rest = l.strip_prefix("grad").ok_or_else(|| format!("expected 'grad ...', 'loss ...' or 'end', got '{l}'"))?;
        run.steps.push((loss, floats(rest, n, "grad")?));
        loss = f64::NAN;
    }
}

/// Appends `<tag> <floats>\n` (shortest round-trip) to `text`.
fn write_floats(text: &mut String, tag: &str, tensors: &[Tensor]) {
    text.push_str(tag);
    for p in tensors {
        for x in &p.data {
            text.push(' ');
            text.push_str(&format!("{x:?}"));
        }
    }
    text.push('\n');
}

/// Runs one parsed run, writing its `params` (and `eval`) lines.
fn execute(run: &Run, out: &mut dyn Write, build: &BuildFn<'_>) -> Result<(), String> {
    let mut subject = if run.bases.is_empty() {
        Subject::Any(build(&run.name, &run.opts)?)
    } else if run.name == "soap" {
        Subject::Soap(Box::new(frontier_baselines::rules::soap::Soap::with_options(&run.opts)?))
    } else {
        return Err(format!("basis lines are for optimizer=soap, not {}", run.name));
    };
    let opt = subject.get();
    let declared = guarded(|| (opt.knobs(), opt.switches())).map_err(|c| c.describe())?;
    crate::check_switches(&declared.1, &run.switched_off).map_err(|e| format!("switches: {e}"))?;
    let knobs = crate::resolve_knobs(&declared.0, &run.knobs).map_err(|e| format!("knobs: {e}"))?;

    let mut params = split(&run.init, &run.shapes);
    let mut grads: Vec<Tensor> = params.iter().map(Tensor::zeros_like).collect();
    let lens: Vec<usize> = params.iter().map(Tensor::len).collect();
    let total = run.steps.len() as u64;
    let oracle = NoOracle;
    let mut text = String::new();
    for (i, (loss, flat)) in run.steps.iter().enumerate() {
        let mut k = 0;
        for g in grads.iter_mut() {
            let m = g.len();
            g.data.copy_from_slice(&flat[k..k + m]);
            k += m;
        }
        let step = i as u64 + 1;
        // What a run with eval_budget=steps has left once this step's gradient is paid for.
        let ctx = StepContext::new(step, *loss, run.lr, &oracle)
            .with_knobs(&knobs)
            .with_switched_off(&run.switched_off)
            .with_budget(total - step);
        let opt = subject.get();
        guarded(|| opt.step(&mut params, &grads, &ctx)).map_err(|c| c.describe())?;
        if params.len() != lens.len() || params.iter().zip(&lens).any(|(p, &n)| p.len() != n) {
            return Err("the optimizer changed the number or length of the parameter tensors".into());
        }
        if let Subject::Soap(soap) = &mut subject {
            for (_, tensor, dim, q) in run.bases.iter().filter(|b| b.0 == i) {
                soap.set_basis(*tensor, *dim, q).map_err(|e| format!("basis {tensor} {dim}: {e}"))?;
            }
        }
        text.clear();
        write_floats(&mut text, "params", &params);
        if run.eval {
            let opt = subject.get();
            let x = guarded(|| opt.eval_params(&params)).map_err(|c| c.describe())?;
            let x = x.as_deref().unwrap_or(&params);
            if x.len() != lens.len() || x.iter().zip(&lens).any(|(p, &n)| p.len() != n) {
                return Err("eval_params has another number or length of tensors than params".into());
            }
            write_floats(&mut text, "eval", x);
        }
        out.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Replays every run of `input`. Returns Err only for an error that ends the whole replay (a run
/// without `id=`, or input that ends in the middle of a run).
pub fn replay(input: &mut dyn BufRead, out: &mut dyn Write, build: &BuildFn<'_>) -> Result<(), String> {
    let mut lines = input.lines().map(|l| l.map_err(|e| format!("reading stdin: {e}")));
    let mut next = |what: &str| -> Result<String, String> {
        loop {
            match lines.next() {
                None => return Err(format!("unexpected end of input, expected {what}")),
                Some(l) => {
                    let l = l?;
                    if !l.trim().is_empty() {
                        return Ok(l);
                    }
                }
            }
        }
    };
    let mut first = true;
    loop {
        let head = match next("the optimizer line") {
            Ok(h) => h,
            Err(_) if !first => break, // input ends after a run's `end`
            Err(e) => return Err(e),
        };
        first = false;
        let id = head.split_whitespace().find_map(|t| t.strip_prefix("id=")).map(str::to_string);
        let parsed = parse_head(&head).and_then(|(_, mut run)| parse_body(&mut run, &mut next).map(|()| run));
        let result = match parsed {
            Ok(run) => execute(&run, out, build),
            Err(e) => {
                if id.is_some() && !e.starts_with("unexpected end of input") {
                    // Skip to this run's `end`, so that the next run is read from its own head.
                    loop {
                        match next("'end'") {
                            Ok(l) if l.trim() == "end" => break,
                            Ok(_) => continue,
                            Err(eof) => return Err(format!("{e}; then {eof}")),
                        }
                    }
                }
                Err(e)
            }
        };
        match (result, &id) {
            (Ok(()), Some(id)) => writeln!(out, "done id={id}").map_err(|e| e.to_string())?,
            (Ok(()), None) => {}
            (Err(e), Some(id)) if !e.starts_with("unexpected end of input") => {
                writeln!(out, "error id={id} {}", e.replace('\n', " ")).map_err(|e| e.to_string())?
            }
            (Err(e), _) => return Err(e),
        }
        out.flush().map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())?;
    Ok(())
}
