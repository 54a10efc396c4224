//! torch.optim.RMSprop.

use crate::ops::{ensure, lerp};
use crate::Opts;
use frontier_core::{Optimizer, StepContext, Tensor};

/// Registry constructor.
pub(crate) fn build(o: &Opts) -> Result<Box<dyn Optimizer>, String> {
    let centered = o.flag("centered")?;
    Ok(Box::new(RmsProp::new(o.get("alpha"), o.get("eps"), o.get("weight_decay"), o.get("momentum"), centered)))
}

/// torch.optim.RMSprop (no bias correction; eps added after the square root).
pub struct RmsProp {
    alpha: f64,
    eps: f64,
    weight_decay: f64,
    momentum: f64,
    centered: bool,
    sq: Vec<Vec<f64>>,
    gavg: Vec<Vec<f64>>,
    buf: Vec<Vec<f64>>,
}

impl RmsProp {
    pub fn new(alpha: f64, eps: f64, weight_decay: f64, momentum: f64, centered: bool) -> RmsProp {
        RmsProp { alpha, eps, weight_decay, momentum, centered, sq: Vec::new(), gavg: Vec::new(), buf: Vec::new() }
    }
}

impl Optimizer for RmsProp {
    fn name(&self) -> &str {
        "rmsprop"
    }
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        ensure(&mut self.sq, params, 0.0);
        if self.centered {
            ensure(&mut self.gavg, params, 0.0);
        }
        if self.momentum > 0.0 {
            ensure(&mut self.buf, params, 0.0);
        }
        let (lr, a, eps, wd, mom) = (ctx.lr, self.alpha, self.eps, self.weight_decay, self.momentum);
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let p = p.as_mut_slice();
            let sq = &mut self.sq[i];
            for (j, ((pj, &gj), sj)) in p.iter_mut().zip(g.as_slice()).zip(sq.iter_mut()).enumerate() {
                let gr = if wd != 0.0 { gj + wd * *pj } else { gj };
                *sj = *sj * a + (1.0 - a) * gr * gr; // square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
                let avg = if self.centered {
                    let ga = &mut self.gavg[i][j];
                    *ga = lerp(*ga, gr, 1.0 - a); // grad_avg.lerp_(grad, 1 - alpha)
                    (*sj - *ga * *ga).sqrt() // square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
                } else {
                    sj.sqrt()
                } + eps;
                if mom > 0.0 {
                    let b = &mut self.buf[i][j];
                    *b = *b * mom + gr / avg; // buf.mul_(momentum).addcdiv_(grad, avg)
                    *pj += -lr * *b; // param.add_(buf, alpha=-lr)
                } else {
                    *pj += -lr * (gr / avg); // param.addcdiv_(grad, avg, value=-lr)
                }
            }
        }
    }
}
