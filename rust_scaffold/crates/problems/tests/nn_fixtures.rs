//! The neural-network workloads match PyTorch: loss and every gradient at fixed parameters on a
//! fixed batch, against `nn_fixtures.txt` (float64 PyTorch, written by
//! `rust_scaffold/data/make_nn_fixtures.py`; the format is in its docstring).

use frontier_core::Tensor;
use frontier_problems::{by_name, Grokking, ModOp, Transformer, TransformerConfig};
use std::collections::HashMap;

/// Relative tolerance on the loss and on each gradient entry. An entry is compared relative to
/// the larger of its own size and `FLOOR` times the largest entry of its tensor (entries that
/// cancel to ~0 carry the rounding of their terms, not their own size).
const RTOL: f64 = 1e-10;
const FLOOR: f64 = 1e-3;

struct Case {
    name: String,
    model: String,
    config: HashMap<String, f64>,
    ints: HashMap<String, Vec<i64>>,
    params: Vec<(String, Tensor)>,
    loss: f64,
    grads: Vec<(String, Tensor)>,
}

fn shape(s: &str) -> Vec<usize> {
    s.split('x').map(|v| v.parse().unwrap()).collect()
}

fn tensor(words: &[&str]) -> (String, Tensor) {
    let sh = shape(words[1]);
    let data: Vec<f64> = words[2..].iter().map(|v| v.parse().unwrap()).collect();
    assert_eq!(data.len(), sh.iter().product::<usize>(), "{}: size vs shape", words[0]);
    (words[0].to_string(), Tensor::from_vec(&sh, data))
}

fn cases() -> Vec<Case> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/nn_fixtures.txt");
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    let mut cur: Option<Case> = None;
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w[0] {
            "case" => {
                assert!(cur.is_none(), "case {} not ended", w[1]);
                let model = w[2].strip_prefix("model=").unwrap().to_string();
                cur = Some(Case {
                    name: w[1].to_string(),
                    model,
                    config: HashMap::new(),
                    ints: HashMap::new(),
                    params: vec![],
                    loss: f64::NAN,
                    grads: vec![],
                });
            }
            "end" => out.push(cur.take().unwrap()),
            key => {
                let c = cur.as_mut().unwrap();
                match key {
                    "config" => {
                        for kv in &w[1..] {
                            let (k, v) = kv.split_once('=').unwrap();
                            c.config.insert(k.to_string(), v.parse().unwrap());
                        }
                    }
                    "ints" => {
                        let v: Vec<i64> = w[3..].iter().map(|x| x.parse().unwrap()).collect();
                        assert_eq!(v.len(), w[2].parse::<usize>().unwrap());
                        c.ints.insert(w[1].to_string(), v);
                    }
                    "param" => c.params.push(tensor(&w[1..])),
                    "loss" => c.loss = w[1].parse().unwrap(),
                    "grad" => c.grads.push(tensor(&w[1..])),
                    _ => panic!("unknown line {key}"),
                }
            }
        }
    }
    assert!(cur.is_none());
    out
}

impl Case {
    fn u(&self, k: &str) -> usize {
        let v = self.config[k];
        assert_eq!(v, v.trunc(), "{k}");
        v as usize
    }
}

/// The Rust model of `c.model` at `params` on the case's batch: loss and gradient.
fn evaluate(c: &Case, params: &[Tensor]) -> (f64, Vec<Tensor>) {
    let mut g: Vec<Tensor> = params.iter().map(|t| Tensor::new(&t.shape)).collect();
    let loss = match c.model.as_str() {
        "transformer" => {
            let cfg = TransformerConfig {
                vocab: c.u("vocab"),
                ctx: c.u("ctx"),
                d: c.u("d"),
                heads: c.u("heads"),
                layers: c.u("layers"),
                mlp: c.u("mlp"),
            };
            assert_eq!(cfg.shapes(), params.iter().map(|t| t.shape.clone()).collect::<Vec<_>>());
            let tokens: Vec<u8> = c.ints["tokens"].iter().map(|&v| u8::try_from(v).unwrap()).collect();
            Transformer::eval_tokens(&cfg, params, &tokens, Some(&mut g), None)
        }
        "grokking" => {
            let (p, d, h) = (c.u("p"), c.u("d"), c.u("hidden"));
            let model = Grokking::new("fixture", 0, p, ModOp::Add, 0.4, 1, d, h, c.config["wd"], 0);
            let rows: Vec<[u16; 3]> =
                c.ints["rows"].chunks(3).map(|r| [r[0] as u16, r[1] as u16, r[2] as u16]).collect();
            model.eval_rows(params, &rows, Some(&mut g), None)
        }
        "cnn" => {
            // the registered problem itself, on rows of its training set (the fixture reads and
            // standardizes the same digits file)
            let p = by_name(&c.name).unwrap_or_else(|| panic!("{}: not registered", c.name));
            assert_eq!(p.shapes()[1], vec![c.u("channels")]);
            let rows: Vec<usize> = c.ints["rows"].iter().map(|&v| usize::try_from(v).unwrap()).collect();
            p.loss_grad(params, Some(&rows), &mut g)
        }
        other => panic!("{}: no Rust evaluation for model={other} (add it to `evaluate`)", c.name),
    };
    (loss, g)
}

/// Worst relative difference of the loss and of the gradient (per the tolerance's measure).
fn compare(c: &Case, loss: f64, g: &[Tensor]) -> (f64, f64, String) {
    let loss_rel = (loss - c.loss).abs() / c.loss.abs();
    let (mut worst, mut at) = (0.0f64, String::new());
    assert_eq!(g.len(), c.grads.len());
    for (mine, (name, want)) in g.iter().zip(&c.grads) {
        assert_eq!(mine.shape, want.shape, "{} {name}", c.name);
        let scale = want.data.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(scale > 0.0, "{} {name}: an all-zero gradient tests nothing", c.name);
        for (i, (a, b)) in mine.data.iter().zip(&want.data).enumerate() {
            let rel = (a - b).abs() / b.abs().max(FLOOR * scale);
            if rel > worst || rel.is_nan() {
                (worst, at) = (rel, format!("{name}[{i}]: {a:e} vs torch {b:e}"));
            }
        }
    }
    (loss_rel, worst, at)
}

fn params_of(c: &Case) -> Vec<Tensor> {
    c.params.iter().map(|(_, t)| t.clone()).collect()
}

#[test]
fn loss_and_every_gradient_match_pytorch() {
    let cases = cases();
    let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    for want in [
        "transformer-grammar",
        "transformer-grammar-d24",
        "grokking-mod-add-31",
        "grokking-mod-sub-37",
        "cnn-digits",
        "cnn-digits-c4",
    ] {
        assert!(names.contains(&want), "no fixture case for {want}: {names:?}");
    }
    for c in &cases {
        let params = params_of(c);
        // the fixture is at the registered problem's sizes
        if let Some(p) = by_name(&c.name) {
            assert_eq!(p.shapes(), params.iter().map(|t| t.shape.clone()).collect::<Vec<_>>(), "{}", c.name);
        }
        let (loss, g) = evaluate(c, &params);
        let (loss_rel, worst, at) = compare(c, loss, &g);
        println!("{}: loss {loss} (torch {}), rel diff {loss_rel:.1e}; worst gradient rel diff {worst:.1e} at {at}", c.name, c.loss);
        assert!(loss_rel <= RTOL, "{}: loss {loss} vs torch {}", c.name, c.loss);
        assert!(worst <= RTOL, "{}: gradient {at}", c.name);
    }
}

/// The comparison can fail: a parameter moved by one part in 10^7 (or a gradient entry by one
/// part in 10^8) is caught.
#[test]
fn the_comparison_catches_a_small_change() {
    for c in &cases() {
        let mut params = params_of(c);
        let k = params.len() / 2;
        params[k].data[0] *= 1.0 + 1e-7;
        let (loss, g) = evaluate(c, &params);
        let (loss_rel, worst, _) = compare(c, loss, &g);
        assert!(loss_rel > RTOL || worst > RTOL, "{}: a moved parameter went unnoticed", c.name);
        let (loss, mut g) = evaluate(c, &params_of(c));
        let last = g.len() - 1;
        let big = (0..g[last].data.len()).max_by(|&i, &j| g[last].data[i].abs().total_cmp(&g[last].data[j].abs())).unwrap();
        g[last].data[big] *= 1.0 + 1e-8;
        assert!(compare(c, loss, &g).1 > RTOL, "{}: a changed gradient entry went unnoticed", c.name);
    }
}
