//! Example candidate: Adam with a Nesterov look-ahead and sign-agreement damping.
//!
//! Conjecture: when the fresh gradient disagrees in sign with the momentum, the momentum is
//! probably overshooting a narrow valley (Rosenbrock-like curvature), so the step along that
//! coordinate should shrink; when they agree, Nesterov's look-ahead lets us move further.
#![forbid(unsafe_code)]

use frontier_core::{Optimizer, StepContext, Tensor};

pub struct NesterovSignAdam {
    beta1: f64,
    beta2: f64,
    eps: f64,
    /// Multiplier on coordinates where sign(grad) != sign(momentum).
    damping: f64,
    m: Vec<Vec<f64>>, // first moment, one buffer per tensor
    v: Vec<Vec<f64>>, // second moment
}

/// The harness calls this once per run.
pub fn build() -> impl Optimizer + 'static {
    NesterovSignAdam { beta1: 0.9, beta2: 0.999, eps: 1e-8, damping: 0.5, m: Vec::new(), v: Vec::new() }
}

impl Optimizer for NesterovSignAdam {
    fn name(&self) -> &str {
        "nesterov-sign-adam"
    }

    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        // State is allocated on the first step, when the shapes are known; never again after.
        if self.m.is_empty() {
            self.m = params.iter().map(|p| vec![0.0; p.len()]).collect();
            self.v = params.iter().map(|p| vec![0.0; p.len()]).collect();
        }
        let (b1, b2) = (self.beta1, self.beta2);
        let t = ctx.step as f64; // 1-based
        // Bias corrections: NAdam-style look-ahead uses beta1^(t+1) for the momentum part.
        let bc1_next = 1.0 - b1.powf(t + 1.0);
        let bc1 = 1.0 - b1.powf(t);
        let bc2_sqrt = (1.0 - b2.powf(t)).sqrt();
        for ((p, g), (m, v)) in params.iter_mut().zip(grads).zip(self.m.iter_mut().zip(self.v.iter_mut())) {
            let p = p.as_mut_slice();
            for (((pi, &gi), mi), vi) in p.iter_mut().zip(g.as_slice()).zip(m.iter_mut()).zip(v.iter_mut()) {
                *mi = b1 * *mi + (1.0 - b1) * gi;
                *vi = b2 * *vi + (1.0 - b2) * gi * gi;
                // Nesterov look-ahead: blend the (bias-corrected) momentum and the fresh gradient.
                let look = b1 * *mi / bc1_next + (1.0 - b1) * gi / bc1;
                // Sign agreement: damp coordinates where the gradient fights the momentum.
                let agree = gi * *mi >= 0.0;
                let scale = if agree { 1.0 } else { self.damping };
                *pi -= ctx.lr * scale * look / (vi.sqrt() / bc2_sqrt + self.eps);
            }
        }
    }
}
