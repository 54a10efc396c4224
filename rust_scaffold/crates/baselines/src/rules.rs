//! The update rules. Comments quote the PyTorch line each loop body mirrors.

use crate::{ensure, lerp, maximum, sign};
use frontier_core::{Optimizer, StepContext, Tensor};

// ---------------------------------------------------------------------------------------------

/// torch.optim.SGD. The first momentum step sets the buffer to the raw (decayed) gradient.
pub struct Sgd {
    name: &'static str,
    momentum: f64,
    dampening: f64,
    nesterov: bool,
    weight_decay: f64,
    buf: Vec<Vec<f64>>,
    started: bool,
}

impl Sgd {
    pub fn new(name: &str, momentum: f64, dampening: f64, nesterov: bool, weight_decay: f64) -> Result<Sgd, String> {
        if nesterov && (momentum <= 0.0 || dampening != 0.0) {
            return Err("Nesterov momentum requires a momentum and zero dampening".into());
        }
        let name = match name {
            "momentum" => "momentum",
            "nesterov" => "nesterov",
            _ => "sgd",
        };
        Ok(Sgd { name, momentum, dampening, nesterov, weight_decay, buf: Vec::new(), started: false })
    }
}

impl Optimizer for Sgd {
    fn name(&self) -> &str {
        self.name
    }
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        let (lr, wd, mom, damp) = (ctx.lr, self.weight_decay, self.momentum, self.dampening);
        if mom != 0.0 {
            ensure(&mut self.buf, params, 0.0);
        }
        let first = !self.started;
        self.started = true;
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let p = p.as_mut_slice();
            let g = g.as_slice();
            if mom == 0.0 {
                for (pj, &gj) in p.iter_mut().zip(g) {
                    let d = if wd != 0.0 { gj + wd * *pj } else { gj };
                    *pj += -lr * d;
                }
                continue;
            }
            let b = &mut self.buf[i];
            for ((pj, &gj), bj) in p.iter_mut().zip(g).zip(b.iter_mut()) {
                // grad = grad.add(param, alpha=weight_decay)
                let mut d = if wd != 0.0 { gj + wd * *pj } else { gj };
                // buf = clone(grad) on the first step, else buf.mul_(momentum).add_(grad, alpha=1 - dampening)
                *bj = if first { d } else { *bj * mom + (1.0 - damp) * d };
                // grad = grad.add(buf, alpha=momentum) if nesterov else buf
                d = if self.nesterov { d + mom * *bj } else { *bj };
                // param.add_(grad, alpha=-lr)
                *pj += -lr * d;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------

/// torch.optim.Adam (L2 weight decay) and torch.optim.AdamW (decoupled: weights decay first).
pub struct Adam {
    name: &'static str,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    amsgrad: bool,
    decoupled: bool,
    t: u64,
    m: Vec<Vec<f64>>,
    v: Vec<Vec<f64>>,
    vmax: Vec<Vec<f64>>,
}

impl Adam {
    pub fn new(name: &str, beta1: f64, beta2: f64, eps: f64, weight_decay: f64, amsgrad: bool, decoupled: bool) -> Adam {
        let name = if decoupled || name == "adamw" { "adamw" } else { "adam" };
        Adam {
            name,
            beta1,
            beta2,
            eps,
            weight_decay,
            amsgrad,
            decoupled,
            t: 0,
            m: Vec::new(),
            v: Vec::new(),
            vmax: Vec::new(),
        }
    }
}

impl Optimizer for Adam {
    fn name(&self) -> &str {
        self.name
    }
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        ensure(&mut self.m, params, 0.0);
        ensure(&mut self.v, params, 0.0);
        if self.amsgrad {
            ensure(&mut self.vmax, params, 0.0);
        }
        self.t += 1;
        let step = self.t as f64;
        let (lr, b1, b2, eps, wd) = (ctx.lr, self.beta1, self.beta2, self.eps, self.weight_decay);
        let bias_correction1 = 1.0 - b1.powf(step);
        let bias_correction2 = 1.0 - b2.powf(step);
        let step_size = lr / bias_correction1;
        let bc2_sqrt = bias_correction2.sqrt();
        let decay = 1.0 - lr * wd;
        let w = 1.0 - b1; // lerp weight
        let small = w.abs() < 0.5;
        let one_minus_w = 1.0 - w;
        let one_minus_b2 = 1.0 - b2;
        let l2 = wd != 0.0 && !self.decoupled;
        let decoupled = wd != 0.0 && self.decoupled;
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let p = p.as_mut_slice();
            let g = g.as_slice();
            let (m, v) = (&mut self.m[i][..], &mut self.v[i][..]);
            if decoupled {
                for pj in p.iter_mut() {
                    *pj *= decay; // param.mul_(1 - lr * weight_decay), elementwise first
                }
            }
            // One element of torch's single-tensor Adam; `vv` is the second moment used.
            macro_rules! body {
                ($pj:expr, $gj:expr, $mj:expr, $vj:expr, $vmax:expr) => {{
                    // grad = grad.add(param, alpha=weight_decay)
                    let gr = if l2 { $gj + wd * *$pj } else { $gj };
                    // exp_avg.lerp_(grad, 1 - beta1)
                    *$mj = if small { *$mj + w * (gr - *$mj) } else { gr - (gr - *$mj) * one_minus_w };
                    // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                    *$vj = *$vj * b2 + one_minus_b2 * gr * gr;
                    let vv = $vmax(*$vj);
                    // denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
                    let denom = vv.sqrt() / bc2_sqrt + eps;
                    // param.addcdiv_(exp_avg, denom, value=-step_size)
                    *$pj += -step_size * (*$mj / denom);
                }};
            }
            if self.amsgrad {
                let vm = &mut self.vmax[i][..];
                for ((pj, &gj), ((mj, vj), mx)) in p.iter_mut().zip(g).zip(m.iter_mut().zip(v.iter_mut()).zip(vm.iter_mut())) {
                    body!(pj, gj, mj, vj, |x: f64| {
                        *mx = maximum(*mx, x);
                        *mx
                    });
                }
            } else {
                for ((pj, &gj), (mj, vj)) in p.iter_mut().zip(g).zip(m.iter_mut().zip(v.iter_mut())) {
                    body!(pj, gj, mj, vj, |x: f64| x);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------

/// torch.optim.Adagrad.
pub struct Adagrad {
    lr_decay: f64,
    weight_decay: f64,
    init_acc: f64,
    eps: f64,
    t: u64,
    sum: Vec<Vec<f64>>,
}

impl Adagrad {
    pub fn new(lr_decay: f64, weight_decay: f64, initial_accumulator_value: f64, eps: f64) -> Adagrad {
        Adagrad { lr_decay, weight_decay, init_acc: initial_accumulator_value, eps, t: 0, sum: Vec::new() }
    }
}

impl Optimizer for Adagrad {
    fn name(&self) -> &str {
        "adagrad"
    }
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        ensure(&mut self.sum, params, self.init_acc);
        self.t += 1;
        let (wd, eps) = (self.weight_decay, self.eps);
        let clr = ctx.lr / (1.0 + (self.t as f64 - 1.0) * self.lr_decay);
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let p = p.as_mut_slice();
            for ((pj, &gj), sj) in p.iter_mut().zip(g.as_slice()).zip(self.sum[i].iter_mut()) {
                let gr = if wd != 0.0 { gj + wd * *pj } else { gj };
                *sj += gr * gr; // state_sum.addcmul_(grad, grad, value=1)
                let std = sj.sqrt() + eps;
                *pj += -clr * (gr / std); // param.addcdiv_(grad, std, value=-clr)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------

/// Lion (Chen et al. 2023), as lion-pytorch's update_fn: decoupled decay, sign of the
/// interpolated momentum (sign(0) = 0), then the momentum update.
pub struct Lion {
    beta1: f64,
    beta2: f64,
    weight_decay: f64,
    m: Vec<Vec<f64>>,
}

impl Lion {
    pub fn new(beta1: f64, beta2: f64, weight_decay: f64) -> Lion {
        Lion { beta1, beta2, weight_decay, m: Vec::new() }
    }
}

impl Optimizer for Lion {
    fn name(&self) -> &str {
        "lion"
    }
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        ensure(&mut self.m, params, 0.0);
        let (lr, b1, b2) = (ctx.lr, self.beta1, self.beta2);
        let decay = 1.0 - lr * self.weight_decay;
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let p = p.as_mut_slice();
            for ((pj, &gj), mj) in p.iter_mut().zip(g.as_slice()).zip(self.m[i].iter_mut()) {
                *pj *= decay; // p.data.mul_(1 - lr * wd)
                let u = sign(*mj * b1 + (1.0 - b1) * gj); // exp_avg.clone().mul_(beta1).add(grad, alpha=1 - beta1).sign_()
                *pj += -lr * u; // p.add_(update, alpha=-lr)
                *mj = *mj * b2 + (1.0 - b2) * gj; // exp_avg.mul_(beta2).add_(grad, alpha=1 - beta2)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------

/// torch.optim.Adamax.
pub struct Adamax {
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    t: u64,
    m: Vec<Vec<f64>>,
    u: Vec<Vec<f64>>,
}

impl Adamax {
    pub fn new(beta1: f64, beta2: f64, eps: f64, weight_decay: f64) -> Adamax {
        Adamax { beta1, beta2, eps, weight_decay, t: 0, m: Vec::new(), u: Vec::new() }
    }
}

impl Optimizer for Adamax {
    fn name(&self) -> &str {
        "adamax"
    }
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        ensure(&mut self.m, params, 0.0);
        ensure(&mut self.u, params, 0.0);
        self.t += 1;
        let (b1, b2, eps, wd) = (self.beta1, self.beta2, self.eps, self.weight_decay);
        let clr = ctx.lr / (1.0 - b1.powf(self.t as f64));
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let p = p.as_mut_slice();
            let (m, u) = (&mut self.m[i], &mut self.u[i]);
            for ((pj, &gj), (mj, uj)) in p.iter_mut().zip(g.as_slice()).zip(m.iter_mut().zip(u.iter_mut())) {
                let gr = if wd != 0.0 { gj + wd * *pj } else { gj };
                *mj = lerp(*mj, gr, 1.0 - b1); // exp_avg.lerp_(grad, 1 - beta1)
                *uj = maximum(*uj * b2, gr.abs() + eps); // torch.maximum(exp_inf.mul_(beta2), grad.abs().add_(eps))
                *pj += -clr * (*mj / *uj); // param.addcdiv_(exp_avg, exp_inf, value=-clr)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------

/// torch.optim.NAdam (momentum_decay schedule; optional decoupled weight decay).
pub struct NAdam {
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    momentum_decay: f64,
    decoupled: bool,
    t: u64,
    mu_product: f64,
    m: Vec<Vec<f64>>,
    v: Vec<Vec<f64>>,
}

impl NAdam {
    pub fn new(beta1: f64, beta2: f64, eps: f64, weight_decay: f64, momentum_decay: f64, decoupled: bool) -> NAdam {
        NAdam {
            beta1,
            beta2,
            eps,
            weight_decay,
            momentum_decay,
            decoupled,
            t: 0,
            mu_product: 1.0,
            m: Vec::new(),
            v: Vec::new(),
        }
    }
}

impl Optimizer for NAdam {
    fn name(&self) -> &str {
        "nadam"
    }
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        ensure(&mut self.m, params, 0.0);
        ensure(&mut self.v, params, 0.0);
        self.t += 1;
        let step = self.t as f64;
        let (lr, b1, b2, eps, wd) = (ctx.lr, self.beta1, self.beta2, self.eps, self.weight_decay);
        let bias_correction2 = 1.0 - b2.powf(step);
        let mu = b1 * (1.0 - 0.5 * 0.96f64.powf(step * self.momentum_decay));
        let mu_next = b1 * (1.0 - 0.5 * 0.96f64.powf((step + 1.0) * self.momentum_decay));
        self.mu_product *= mu;
        let mu_product_next = self.mu_product * mu_next;
        let c_grad = -lr * (1.0 - mu) / (1.0 - self.mu_product);
        let c_avg = (-lr * mu_next) / (1.0 - mu_product_next);
        let decay = 1.0 - lr * wd;
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let p = p.as_mut_slice();
            let (m, v) = (&mut self.m[i], &mut self.v[i]);
            for ((pj, &gj), (mj, vj)) in p.iter_mut().zip(g.as_slice()).zip(m.iter_mut().zip(v.iter_mut())) {
                let mut gr = gj;
                if wd != 0.0 {
                    if self.decoupled {
                        *pj *= decay;
                    } else {
                        gr = gj + wd * *pj;
                    }
                }
                *mj = lerp(*mj, gr, 1.0 - b1);
                *vj = *vj * b2 + (1.0 - b2) * gr * gr;
                let denom = (*vj / bias_correction2).sqrt() + eps; // exp_avg_sq.div(bias_correction2).sqrt().add_(eps)
                *pj += c_grad * (gr / denom); // param.addcdiv_(grad, denom, value=-lr*(1-mu)/(1-mu_product))
                *pj += c_avg * (*mj / denom); // param.addcdiv_(exp_avg, denom, value=-lr*mu_next/(1-mu_product_next))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------

/// torch.optim.RAdam (variance rectification once rho_t > 5).
pub struct RAdam {
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    decoupled: bool,
    t: u64,
    m: Vec<Vec<f64>>,
    v: Vec<Vec<f64>>,
}

impl RAdam {
    pub fn new(beta1: f64, beta2: f64, eps: f64, weight_decay: f64, decoupled: bool) -> RAdam {
        RAdam { beta1, beta2, eps, weight_decay, decoupled, t: 0, m: Vec::new(), v: Vec::new() }
    }
}

impl Optimizer for RAdam {
    fn name(&self) -> &str {
        "radam"
    }
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        ensure(&mut self.m, params, 0.0);
        ensure(&mut self.v, params, 0.0);
        self.t += 1;
        let step = self.t as f64;
        let (lr, b1, b2, eps, wd) = (ctx.lr, self.beta1, self.beta2, self.eps, self.weight_decay);
        let bias_correction1 = 1.0 - b1.powf(step);
        let bias_correction2 = 1.0 - b2.powf(step);
        let rho_inf = 2.0 / (1.0 - b2) - 1.0;
        let rho_t = rho_inf - 2.0 * step * b2.powf(step) / bias_correction2;
        let rect = if rho_t > 5.0 {
            Some(
                ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)).powf(0.5),
            )
        } else {
            None
        };
        let bc2_sqrt = bias_correction2.powf(0.5);
        let decay = 1.0 - lr * wd;
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let p = p.as_mut_slice();
            let (m, v) = (&mut self.m[i], &mut self.v[i]);
            for ((pj, &gj), (mj, vj)) in p.iter_mut().zip(g.as_slice()).zip(m.iter_mut().zip(v.iter_mut())) {
                let mut gr = gj;
                if wd != 0.0 {
                    if self.decoupled {
                        *pj *= decay;
                    } else {
                        gr = gj + wd * *pj;
                    }
                }
                *mj = lerp(*mj, gr, 1.0 - b1);
                *vj = *vj * b2 + (1.0 - b2) * gr * gr;
                let bcm = *mj / bias_correction1; // bias_corrected_exp_avg
                let upd = match rect {
                    // bias_corrected_exp_avg * lr * adaptive_lr * rect
                    Some(r) => bcm * lr * (bc2_sqrt / (vj.sqrt() + eps)) * r,
                    None => bcm * lr,
                };
                *pj += -upd; // param.add_(..., alpha=-1.0)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------

/// torch.optim.Adadelta.
pub struct Adadelta {
    rho: f64,
    eps: f64,
    weight_decay: f64,
    sq: Vec<Vec<f64>>,
    acc: Vec<Vec<f64>>,
}

impl Adadelta {
    pub fn new(rho: f64, eps: f64, weight_decay: f64) -> Adadelta {
        Adadelta { rho, eps, weight_decay, sq: Vec::new(), acc: Vec::new() }
    }
}

impl Optimizer for Adadelta {
    fn name(&self) -> &str {
        "adadelta"
    }
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        ensure(&mut self.sq, params, 0.0);
        ensure(&mut self.acc, params, 0.0);
        let (lr, rho, eps, wd) = (ctx.lr, self.rho, self.eps, self.weight_decay);
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let p = p.as_mut_slice();
            let (sq, acc) = (&mut self.sq[i], &mut self.acc[i]);
            for ((pj, &gj), (sj, aj)) in p.iter_mut().zip(g.as_slice()).zip(sq.iter_mut().zip(acc.iter_mut())) {
                let gr = if wd != 0.0 { gj + wd * *pj } else { gj };
                *sj = *sj * rho + (1.0 - rho) * gr * gr; // square_avg.mul_(rho).addcmul_(grad, grad, value=1 - rho)
                let std = (*sj + eps).sqrt();
                let delta = (*aj + eps).sqrt() / std * gr; // delta.div_(std).mul_(grad)
                *aj = *aj * rho + (1.0 - rho) * delta * delta;
                *pj += -lr * delta;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------

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
