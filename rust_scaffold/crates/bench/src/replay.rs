//! `replay`: feed recorded gradients to an optimizer and print its parameters after each step.
//!
//! ```text
//! optimizer=adam lr=0.05 opt.weight_decay=0.01     (line 1)
//! shapes 5 1                                       (tensor lengths, or dims joined by 'x': 64x10)
//! init 0.1 -0.1 0.2 -0.2 0.05 0.0                  (flat concatenation of all tensors)
//! grad ...                                         (one line per step)
//! end
//! ```
//! Output: one `params <floats>` line per step (shortest round-trip), or `error <message>`.

use crate::guard::guarded;
use frontier_core::{NanOracle, Optimizer, StepContext, Tensor};
use std::io::{BufRead, Write};

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

pub fn replay(
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    build: &BuildFn<'_>,
) -> Result<(), String> {
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
    let head = next("the optimizer line")?;
    let (mut name, mut lr, mut opts) = (None, None, Vec::new());
    for tok in head.split_whitespace() {
        let (k, v) = tok.split_once('=').ok_or_else(|| format!("token '{tok}' is not key=value"))?;
        match k {
            "optimizer" => name = Some(v.to_string()),
            "lr" => lr = Some(v.parse::<f64>().map_err(|_| format!("bad lr '{v}'"))?),
            _ => match k.strip_prefix("opt.") {
                Some(o) => opts.push((o.to_string(), v.parse::<f64>().map_err(|_| format!("bad value for {k}"))?)),
                None => return Err(format!("unknown key '{k}'")),
            },
        }
    }
    let name = name.ok_or("missing optimizer=")?;
    let lr = lr.ok_or("missing lr=")?;
    let mut opt = build(&name, &opts)?;

    let shapes_line = next("the shapes line")?;
    let rest = shapes_line.strip_prefix("shapes").ok_or("line 2 must start with 'shapes'")?;
    let shapes: Vec<Vec<usize>> = rest
        .split_whitespace()
        .map(|s| s.split('x').map(|d| d.parse::<usize>().map_err(|_| format!("bad shape '{s}'"))).collect())
        .collect::<Result<_, _>>()?;
    let n: usize = shapes.iter().map(|s| s.iter().product::<usize>()).sum();

    let init_line = next("the init line")?;
    let rest = init_line.strip_prefix("init").ok_or("line 3 must start with 'init'")?;
    let mut params = split(&floats(rest, n, "init")?, &shapes);
    let mut grads: Vec<Tensor> = params.iter().map(Tensor::zeros_like).collect();

    let oracle = NanOracle;
    let mut step = 0u64;
    let mut text = String::new();
    loop {
        let l = next("a grad line or 'end'")?;
        let l = l.trim();
        if l == "end" {
            break;
        }
        let rest = l.strip_prefix("grad").ok_or_else(|| format!("expected 'grad ...' or 'end', got '{l}'"))?;
        let flat = floats(rest, n, "grad")?;
        let mut k = 0;
        for g in grads.iter_mut() {
            let m = g.len();
            g.data.copy_from_slice(&flat[k..k + m]);
            k += m;
        }
        step += 1;
        let ctx = StepContext::new(step, f64::NAN, lr, &oracle);
        guarded(|| opt.step(&mut params, &grads, &ctx)).map_err(|c| format!("panic: {}", c.message))?;
        text.clear();
        text.push_str("params");
        for p in &params {
            for x in &p.data {
                text.push(' ');
                text.push_str(&format!("{x:?}"));
            }
        }
        text.push('\n');
        out.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())?;
    Ok(())
}
