//! Prints a registered transformer problem's sizes and corpus (training and held-out sequences)
//! as one JSON object, for the PyTorch dev scripts (benches/neural_sanity_torch.py):
//!
//!   cargo run --release -p frontier-problems --example transformer_corpus -- transformer-grammar
//!
//! The grammar parameters below repeat registry.rs; before printing, the problem built here is
//! checked against the registered one (shapes, training-set size, losses on batches spanning
//! the training set and the held-out accuracy at an init, bit for bit), so a registry change
//! that is not mirrored here stops the script instead of training on another corpus.

use frontier_core::Rng;
use frontier_problems::{by_name, Problem, Transformer};

/// (letters, kinds, grammar seed), ctx, d, heads, layers, n_train, n_test, batch, as registered.
type Args = ((usize, usize, u64), usize, usize, usize, usize, usize, usize, usize);

fn registered_args(name: &str) -> Option<Args> {
    match name {
        "transformer-grammar" => Some(((8, 4, 0x5EED_0001), 16, 16, 2, 2, 2048, 256, 16)),
        "transformer-grammar-d24" => Some(((10, 3, 0x5EED_0002), 20, 24, 2, 1, 2048, 256, 16)),
        _ => None,
    }
}

fn ints(v: &[u8]) -> String {
    v.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(",")
}

fn main() {
    let name = std::env::args().nth(1).unwrap_or_else(|| "transformer-grammar".to_string());
    let (g, ctx, d, heads, layers, n_train, n_test, batch) =
        registered_args(&name).unwrap_or_else(|| panic!("{name}: not a transformer problem this example knows"));
    let t = Transformer::on_bracket_grammar(&name, 0, g, ctx, d, heads, layers, n_train, n_test, batch);
    let reg = by_name(&name).unwrap();
    assert_eq!(t.shapes(), reg.shapes(), "{name}: sizes differ from the registry");
    assert_eq!((t.train_size(), t.batch_size()), (reg.train_size(), reg.batch_size()), "{name}: data sizes differ");
    let x = reg.init(&mut Rng::derive(7, "init"));
    let n = t.train_size().unwrap();
    for start in (0..n).step_by(128) {
        let b: Vec<usize> = (start..(start + 128).min(n)).collect();
        assert_eq!(t.loss(&x, Some(&b)).to_bits(), reg.loss(&x, Some(&b)).to_bits(), "{name}: corpus differs at {start}");
    }
    assert_eq!(t.test_accuracy(&x), reg.test_accuracy(&x), "{name}: held-out corpus differs");
    let c = t.config();
    println!(
        "{{\"problem\":\"{name}\",\"vocab\":{},\"ctx\":{},\"d\":{},\"heads\":{},\"layers\":{},\"mlp\":{},\"batch\":{},\"dim\":{},\"train\":[{}],\"test\":[{}]}}",
        c.vocab,
        c.ctx,
        c.d,
        c.heads,
        c.layers,
        c.mlp,
        t.batch_size(),
        t.dim(),
        ints(t.train_tokens()),
        ints(t.test_tokens())
    );
}
