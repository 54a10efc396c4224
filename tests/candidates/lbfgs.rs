//! L-BFGS (memory 10) with a backtracking Armijo line search whose trial losses are paid for with
//! `ctx.loss_at` inside the oracle budget. A quasi-Newton method is invariant to rotations and
//! strong on smooth deterministic problems; on minibatch problems its curvature pairs are noise.
use frontier_core::{Optimizer, StepContext, Tensor};

pub struct Lbfgs {
    s: Vec<Vec<f64>>,
    y: Vec<Vec<f64>>,
    prev_x: Vec<f64>,
    prev_g: Vec<f64>,
}

pub fn build() -> impl Optimizer + 'static {
    Lbfgs { s: Vec::new(), y: Vec::new(), prev_x: Vec::new(), prev_g: Vec::new() }
}

fn flat(ts: &[Tensor]) -> Vec<f64> {
    ts.iter().flat_map(|t| t.data.iter().copied()).collect()
}

fn put(ts: &mut [Tensor], v: &[f64]) {
    let mut k = 0;
    for t in ts.iter_mut() {
        for x in t.data.iter_mut() {
            *x = v[k];
            k += 1;
        }
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl Optimizer for Lbfgs {
    fn name(&self) -> &str {
        "lbfgs"
    }

    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        let x = flat(params);
        let g = flat(grads);
        if !self.prev_x.is_empty() {
            let s: Vec<f64> = x.iter().zip(&self.prev_x).map(|(a, b)| a - b).collect();
            let y: Vec<f64> = g.iter().zip(&self.prev_g).map(|(a, b)| a - b).collect();
            if dot(&s, &y) > 1e-12 * dot(&y, &y).max(1e-300) {
                self.s.push(s);
                self.y.push(y);
                if self.s.len() > 10 {
                    self.s.remove(0);
                    self.y.remove(0);
                }
            }
        }
        // Two-loop recursion: q = H g.
        let k = self.s.len();
        let mut q = g.clone();
        let mut alpha = vec![0.0; k];
        for i in (0..k).rev() {
            let rho = 1.0 / dot(&self.y[i], &self.s[i]);
            alpha[i] = rho * dot(&self.s[i], &q);
            for (qj, yj) in q.iter_mut().zip(&self.y[i]) {
                *qj -= alpha[i] * yj;
            }
        }
        let scale = if k > 0 { dot(&self.s[k - 1], &self.y[k - 1]) / dot(&self.y[k - 1], &self.y[k - 1]) } else { ctx.lr };
        for v in q.iter_mut() {
            *v *= scale;
        }
        for i in 0..k {
            let rho = 1.0 / dot(&self.y[i], &self.s[i]);
            let b = rho * dot(&self.y[i], &q);
            for (qj, sj) in q.iter_mut().zip(&self.s[i]) {
                *qj += (alpha[i] - b) * sj;
            }
        }
        // Backtracking along -q; every trial loss is a paid oracle call, never past the budget.
        let slope = -dot(&g, &q);
        let mut next = x.clone();
        let mut accepted = false;
        let mut t = 1.0;
        let mut trial: Vec<Tensor> = params.to_vec();
        if slope < 0.0 && slope.is_finite() {
            for _ in 0..8 {
                if ctx.budget_left() == 0 {
                    break;
                }
                for (c, (xi, qi)) in next.iter_mut().zip(x.iter().zip(&q)) {
                    *c = xi - t * qi;
                }
                put(&mut trial, &next);
                let f = ctx.loss_at(&trial);
                if f.is_finite() && f <= ctx.loss + 1e-4 * t * slope {
                    accepted = true;
                    break;
                }
                t *= 0.5;
            }
        }
        if !accepted {
            // No acceptable step: forget the curvature and take a plain gradient step.
            self.s.clear();
            self.y.clear();
            for (c, (xi, gi)) in next.iter_mut().zip(x.iter().zip(&g)) {
                *c = xi - ctx.lr * gi;
            }
        }
        self.prev_x = x;
        self.prev_g = g;
        put(params, &next);
    }
}
