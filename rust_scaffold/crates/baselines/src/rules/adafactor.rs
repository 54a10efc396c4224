//! torch.optim.Adafactor.

use crate::ops::lerp;
use crate::Opts;
use frontier_core::{Optimizer, StepContext, Tensor};

/// Registry constructor.
pub(crate) fn build(o: &Opts) -> Result<Box<dyn Optimizer>, String> {
    // eps1 = 0 stands for PyTorch's None: machine epsilon.
    let eps1 = if o.get("eps1") == 0.0 { f64::EPSILON } else { o.get("eps1") };
    Ok(Box::new(Adafactor::new(o.get("beta2_decay"), eps1, o.get("eps2"), o.get("d"), o.get("weight_decay"))))
}

/// torch.optim.Adafactor (factored second moment for tensors of rank >= 2, over the last two
/// dimensions; leading dimensions are batch dimensions).
pub struct Adafactor {
    beta2_decay: f64,
    eps1: f64,
    eps2: f64,
    d: f64,
    weight_decay: f64,
    t: u64,
    // rank <= 1: the full second moment; rank >= 2: row variances then column variances
    var: Vec<Vec<f64>>,
    col: Vec<Vec<f64>>,
    upd: Vec<Vec<f64>>,
}

impl Adafactor {
    pub fn new(beta2_decay: f64, eps1: f64, eps2: f64, d: f64, weight_decay: f64) -> Adafactor {
        Adafactor { beta2_decay, eps1, eps2, d, weight_decay, t: 0, var: Vec::new(), col: Vec::new(), upd: Vec::new() }
    }

    /// (batch, rows, cols) of a tensor of rank >= 2.
    fn dims(shape: &[usize]) -> (usize, usize, usize) {
        let r = shape[shape.len() - 2];
        let c = shape[shape.len() - 1];
        (shape[..shape.len() - 2].iter().product(), r, c)
    }
}

impl Optimizer for Adafactor {
    fn name(&self) -> &str {
        "adafactor"
    }
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        if self.var.is_empty() {
            for p in params.iter() {
                if p.shape.len() >= 2 {
                    let (b, r, c) = Adafactor::dims(&p.shape);
                    self.var.push(vec![0.0; b * r]);
                    self.col.push(vec![0.0; b * c]);
                } else {
                    self.var.push(vec![0.0; p.len()]);
                    self.col.push(Vec::new());
                }
                self.upd.push(vec![0.0; p.len()]);
            }
        }
        self.t += 1;
        let step = self.t as f64;
        let lr = ctx.lr;
        let (eps1, eps2) = (self.eps1, self.eps2);
        let w = step.powf(self.beta2_decay); // one_minus_beta2_t
        let rho_t = lr.min(1.0 / step.powf(0.5));
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let n = p.len();
            let pn = p.norm_sq().sqrt();
            let alpha = eps2.max(pn / (n as f64).powf(0.5)) * rho_t;
            if self.weight_decay != 0.0 {
                let decay = 1.0 - lr * self.weight_decay;
                for pj in p.data.iter_mut() {
                    *pj *= decay;
                }
            }
            let g = g.as_slice();
            let upd = &mut self.upd[i];
            if p.shape.len() >= 2 {
                let (nb, r, c) = Adafactor::dims(&p.shape);
                let (rv, cv) = (&mut self.var[i], &mut self.col[i]);
                for bi in 0..nb {
                    let gb = &g[bi * r * c..(bi + 1) * r * c];
                    let rvb = &mut rv[bi * r..(bi + 1) * r];
                    let cvb = &mut cv[bi * c..(bi + 1) * c];
                    // row_mean = norm(grad, dim=-1).square() / cols ; row_var.lerp_(row_mean, w)
                    for (ri, rvi) in rvb.iter_mut().enumerate() {
                        let mut s = 0.0;
                        for &x in &gb[ri * c..(ri + 1) * c] {
                            s += x * x;
                        }
                        let nrm = s.sqrt();
                        *rvi = lerp(*rvi, nrm * nrm / c as f64, w);
                    }
                    for (ci, cvi) in cvb.iter_mut().enumerate() {
                        let mut s = 0.0;
                        for ri in 0..r {
                            let x = gb[ri * c + ci];
                            s += x * x;
                        }
                        let nrm = s.sqrt();
                        *cvi = lerp(*cvi, nrm * nrm / r as f64, w);
                    }
                    // var_estimate = row_var @ col_var / row_var.mean().clamp(min=eps1)
                    let mut rm = 0.0;
                    for &x in rvb.iter() {
                        rm += x;
                    }
                    let rm = (rm / r as f64).max(eps1);
                    let ub = &mut upd[bi * r * c..(bi + 1) * r * c];
                    for ri in 0..r {
                        for ci in 0..c {
                            ub[ri * c + ci] = rvb[ri] * cvb[ci] / rm;
                        }
                    }
                }
            } else {
                let v = &mut self.var[i];
                for ((vj, &gj), uj) in v.iter_mut().zip(g).zip(upd.iter_mut()) {
                    *vj = lerp(*vj, gj * gj, w); // variance.lerp_(grad * grad, w)
                    *uj = *vj;
                }
            }
            // update = var_estimate.clamp_(min=eps1 * eps1).rsqrt_() * grad
            let mut us = 0.0;
            for (uj, &gj) in upd.iter_mut().zip(g) {
                *uj = 1.0 / uj.max(eps1 * eps1).sqrt() * gj;
                us += *uj * *uj;
            }
            let denom = 1.0f64.max(us.sqrt() / ((n as f64).powf(0.5) * self.d));
            let a = -alpha / denom;
            for (pj, &uj) in p.data.iter_mut().zip(upd.iter()) {
                *pj += a * uj;
            }
        }
    }
}
