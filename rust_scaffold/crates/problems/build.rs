//! Parses the shipped datasets (data/*.csv) once, at build time, into the raw values the harness
//! loads: every harness process used to spend ~30 ms parsing MNIST-1D's text before its first run.
//! The numbers are the ones run-time parsing gave, bit for bit: the same `str::parse::<f64>` and
//! the same division by the dataset's scale; standardisation stays at run time (data.rs).
//!
//! Output per split, `OUT_DIR/<file>.bin`: rows (u64 LE), columns (u64 LE), rows x columns f64 LE
//! (row-major), rows labels (u64 LE). A malformed file fails the build with its line number.

use std::path::Path;

/// (file stem, scale): the scale each dataset's raw values are divided by (data.rs names why).
const DATASETS: [(&str, f64); 4] = [("breast_cancer", 1.0), ("digits", 16.0), ("wine", 1.0), ("mnist1d", 1.0)];

fn main() {
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    for (stem, scale) in DATASETS {
        for split in ["train", "test"] {
            let file = format!("{stem}_{split}");
            let source = Path::new("data").join(format!("{file}.csv"));
            println!("cargo:rerun-if-changed={}", source.display());
            let text = std::fs::read_to_string(&source).unwrap_or_else(|e| panic!("{}: {e}", source.display()));
            let bytes = encode(&file, &text, scale);
            std::fs::write(Path::new(&out).join(format!("{file}.bin")), bytes).expect("OUT_DIR is writable");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}

fn encode(name: &str, text: &str, scale: f64) -> Vec<u8> {
    let mut x: Vec<f64> = Vec::new();
    let mut y: Vec<u64> = Vec::new();
    let mut d = None;
    for (ln, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        let nd = fields.len() - 1;
        if *d.get_or_insert(nd) != nd {
            panic!("{name}: line {} has {} columns", ln + 1, fields.len());
        }
        for f in &fields[..nd] {
            let v: f64 = f.parse().unwrap_or_else(|_| panic!("{name}: line {}: bad number {f:?}", ln + 1));
            x.push(v / scale);
        }
        let label: u64 = fields[nd].parse().unwrap_or_else(|_| panic!("{name}: line {}: bad label", ln + 1));
        y.push(label);
    }
    let mut bytes = Vec::with_capacity(16 + 8 * (x.len() + y.len()));
    bytes.extend_from_slice(&(y.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&(d.unwrap_or(0) as u64).to_le_bytes());
    for v in x {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    for c in y {
        bytes.extend_from_slice(&c.to_le_bytes());
    }
    bytes
}
