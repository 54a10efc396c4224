//! A fixed CPU workload for `benches/regress.py`: none of the project's code, so its time depends
//! only on the machine and its load. Its shape resembles a benchmark's: dense f64 loops (a small
//! tanh layer over many rows), `exp`, and a streaming pass over a few MiB. Prints a checksum so that
//! nothing is optimised away.

use std::hint::black_box;

fn main() {
    let (rows, d, h) = (20_000usize, 32usize, 32usize);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let x: Vec<f64> = (0..rows * d).map(|_| next()).collect();
    let w: Vec<f64> = (0..d * h).map(|_| next() * 0.3).collect();
    let mut stream = vec![0.0f64; 1 << 19];
    let mut checksum = 0.0;
    for round in 0..96 {
        let mut a = vec![0.0f64; h];
        for row in x.chunks_exact(d) {
            a.fill(0.0);
            for (j, &xj) in row.iter().enumerate() {
                for (av, wv) in a.iter_mut().zip(&w[j * h..(j + 1) * h]) {
                    *av += xj * wv;
                }
            }
            for av in &a {
                checksum += 1.0 - 2.0 / ((2.0 * av).exp() + 1.0);
            }
        }
        for (i, v) in stream.iter_mut().enumerate() {
            *v = *v * 0.5 + (i + round) as f64;
        }
        checksum += black_box(&stream)[round];
    }
    println!("{checksum}");
}
