//! A character-level corpus from a small stochastic grammar with long-range agreement, generated
//! in Rust from a fixed seed (no data files).
//!
//! Tokens: `letters` content letters, `kinds` bracket kinds (an opener and a closer each) and a
//! full stop; vocabulary `letters + 2 kinds + 1`. The text is a stream of bracketed groups
//! nested at most two deep: a closer must match the kind of the innermost open bracket, opened
//! at least 3 and usually at most 8 positions earlier (more around a nested group), and the
//! letters inside a group follow a bigram chain whose table depends on that group's kind. So
//! predicting a closer or a letter well takes attention to an earlier position; outside brackets
//! letters follow their own chain and a full stop may end a sentence.
//!
//! Each sequence starts a fresh stream (empty stack) and is `ctx + 1` tokens long: the model
//! reads the first `ctx` and predicts the last `ctx`. Tables and sequences come from
//! `SplitMix(seed)`; the bytes are pinned by a hash in the tests.

use super::nn::SplitMix;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Grammar {
    pub letters: usize,
    pub kinds: usize,
    pub seed: u64,
}

/// Shortest and longest content of a group (tokens between its opener and its closer).
const MIN_GROUP: usize = 2;
const MAX_GROUP: usize = 7;
const MAX_DEPTH: usize = 2;

impl Grammar {
    pub fn vocab(&self) -> usize {
        self.letters + 2 * self.kinds + 1
    }
    fn opener(&self, k: usize) -> u8 {
        (self.letters + k) as u8
    }
    fn closer(&self, k: usize) -> u8 {
        (self.letters + self.kinds + k) as u8
    }
    fn stop(&self) -> u8 {
        (self.letters + 2 * self.kinds) as u8
    }

    /// Bigram tables: for each context (a bracket kind, or `kinds` = outside) and previous letter
    /// (or `letters` = none yet), cumulative probabilities over the next letter: a favourite
    /// successor with 0.55, a second with 0.25, the rest sharing 0.2.
    fn tables(&self, rng: &mut SplitMix) -> Vec<f64> {
        let l = self.letters;
        let mut cum = Vec::with_capacity((self.kinds + 1) * (l + 1) * l);
        for _ctx in 0..=self.kinds {
            for _prev in 0..=l {
                let a = rng.below(l);
                let b = (a + 1 + rng.below(l - 1)) % l;
                let mut p = vec![0.2 / (l - 2) as f64; l];
                p[a] = 0.55;
                p[b] = 0.25;
                let mut s = 0.0;
                for v in p {
                    s += v;
                    cum.push(s);
                }
            }
        }
        cum
    }

    /// `n` sequences of `len` tokens, row-major.
    pub fn generate(&self, n: usize, len: usize) -> Vec<u8> {
        assert!(self.letters >= 3 && self.kinds >= 1 && self.vocab() <= 256);
        let mut rng = SplitMix(self.seed);
        let cum = self.tables(&mut rng);
        let l = self.letters;
        let mut out = Vec::with_capacity(n * len);
        for _ in 0..n {
            // stack of (kind, tokens emitted inside so far)
            let mut stack: Vec<(usize, usize)> = Vec::with_capacity(MAX_DEPTH);
            let mut prev = l; // no letter yet in this context
            let mut last_stop = true;
            for _ in 0..len {
                let r = rng.uniform();
                let tok = match stack.last().copied() {
                    Some((k, inside)) if inside >= MAX_GROUP || (inside >= MIN_GROUP && r < 0.3) => {
                        stack.pop();
                        prev = l;
                        self.closer(k)
                    }
                    _ if stack.len() < MAX_DEPTH && rng.uniform() < if stack.is_empty() { 0.3 } else { 0.12 } => {
                        let k = rng.below(self.kinds);
                        stack.push((k, 0));
                        prev = l;
                        self.opener(k)
                    }
                    None if !last_stop && rng.uniform() < 0.15 => {
                        prev = l;
                        self.stop()
                    }
                    top => {
                        let ctx = top.map_or(self.kinds, |(k, _)| k);
                        let row = &cum[(ctx * (l + 1) + prev) * l..(ctx * (l + 1) + prev + 1) * l];
                        let u = rng.uniform();
                        let c = row.iter().position(|&c| u < c).unwrap_or(l - 1);
                        prev = c;
                        c as u8
                    }
                };
                last_stop = tok == self.stop();
                // the new token counts as content of every group still open (a closer counts
                // for the enclosing group, an opener for the group it opens in)
                let depth = stack.len() - usize::from(tok >= self.opener(0) && tok < self.closer(0));
                for s in stack.iter_mut().take(depth) {
                    s.1 += 1;
                }
                out.push(tok);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::nn::fnv1a64;

    const G: Grammar = Grammar { letters: 8, kinds: 4, seed: 0x5EED_0001 };

    #[test]
    fn brackets_match_and_nest_at_most_two_deep() {
        let len = 17;
        let text = G.generate(2000, len);
        let (mut closers, mut max_gap) = (0, 0);
        for seq in text.chunks_exact(len) {
            let mut stack: Vec<(u8, usize)> = Vec::new();
            for (t, &tok) in seq.iter().enumerate() {
                assert!((tok as usize) < G.vocab());
                if (8..12).contains(&tok) {
                    stack.push((tok, t));
                    assert!(stack.len() <= 2);
                } else if (12..16).contains(&tok) {
                    let (open, at) = stack.pop().expect("closer without an opener");
                    assert_eq!(tok, open + 4, "closer of another kind");
                    assert!(t - at > MIN_GROUP, "group too short");
                    max_gap = max_gap.max(t - at);
                    closers += 1;
                } else if tok == 16 {
                    assert!(stack.is_empty(), "full stop inside a group");
                }
            }
        }
        assert!(closers > 3000, "{closers}");
        assert!(max_gap >= 7, "{max_gap}");
    }

    #[test]
    fn generation_is_deterministic_and_seeded() {
        assert_eq!(G.generate(50, 17), G.generate(50, 17));
        assert_ne!(G.generate(50, 17), Grammar { seed: 2, ..G }.generate(50, 17));
        assert_ne!(fnv1a64(&G.generate(50, 17)), 0);
    }
}
