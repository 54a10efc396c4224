//! Plan lines: whitespace-separated `key=value` pairs, one run per line.

use crate::json;

/// One run of a plan.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSpec {
    /// The id as a JSON value (an integer stays a number, anything else becomes a string).
    pub id_json: String,
    pub optimizer: String,
    pub problem: String,
    pub lr: f64,
    pub seed: u64,
    /// Which instance of the problem (a random shift and rotation, or a permutation of features
    /// and classes), drawn by the server from a secret of the lab; 0 is the canonical problem.
    pub instance: u64,
    pub steps: u64,
    pub curve_points: usize,
    /// `opt.<key>=<float>` options for a baseline.
    pub opts: Vec<(String, f64)>,
    /// `knob.<name>=<float>` values for the candidate's declared knobs.
    pub knobs: Vec<(String, f64)>,
    /// `switch.<name>=0`: mechanisms of the candidate switched off (an ablation).
    pub switched_off: Vec<String>,
    /// Optional wall-time budget of the run; the run stops (not diverged) when it is exceeded.
    pub time_limit_ms: Option<u64>,
    /// Optional oracle budget: the run stops once gradient plus loss evaluations (an HVP costs two
    /// gradients) reach it, so extra oracle calls inside `step` are paid for with steps.
    pub eval_budget: Option<u64>,
    /// `warmup=<fraction>`: linear warm-up of the learning rate over this fraction of the budget (0 to 0.5).
    pub warmup: f64,
    /// `decay=constant|cosine|linear`: the learning rate's decay after warm-up (to zero at the end).
    pub decay: Decay,
    /// `accuracy=0`: no held-out or training accuracy (a tuning run reads only its final loss, and the
    /// accuracies are full passes over the data: ~15 % of an mlp-mnist1d tuning run). Default 1.
    pub accuracy: bool,
}

/// The learning-rate decay after warm-up, applied by the harness to every optimizer alike.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Decay {
    #[default]
    Constant,
    Cosine,
    Linear,
}

impl Decay {
    pub fn name(self) -> &'static str {
        match self {
            Decay::Constant => "constant",
            Decay::Cosine => "cosine",
            Decay::Linear => "linear",
        }
    }

    pub fn parse(v: &str) -> Result<Decay, String> {
        match v {
            "constant" => Ok(Decay::Constant),
            "cosine" => Ok(Decay::Cosine),
            "linear" => Ok(Decay::Linear),
            _ => Err(format!("decay={v}: use constant, cosine or linear")),
        }
    }
}

/// The largest warm-up fraction a plan line may ask for.
pub const MAX_WARMUP: f64 = 0.5;

/// The learning-rate multiplier at oracle evaluation `used` (1-based: the evaluation of this
/// step's gradient) of a budget of `total`: linear warm-up from 1/W to 1 over the first
/// W = round(warmup * total) evaluations, then `decay` from 1 to 0 at the last one. A baseline
/// spends one evaluation a step, so `used` is its step; a candidate that calls the oracle inside
/// its steps moves through the schedule as fast as it spends its budget, and so ends it, too.
/// The constant schedule without warm-up is exactly 1.
pub fn schedule(warmup: f64, decay: Decay, used: u64, total: u64) -> f64 {
    let total = total.max(1);
    let s = used.clamp(1, total) - 1; // 0-based
    let w = ((warmup * total as f64).round() as u64).min(total);
    if s < w {
        return (s + 1) as f64 / w as f64;
    }
    let span = total - w; // >= 1 evaluations after warm-up
    let q = if span <= 1 { 1.0 } else { (s - w) as f64 / (span - 1) as f64 };
    match decay {
        Decay::Constant => 1.0,
        Decay::Linear => 1.0 - q,
        Decay::Cosine => 0.5 * (1.0 + (std::f64::consts::PI * q).cos()),
    }
}

impl RunSpec {
    /// The learning rate the optimizer sees at oracle evaluation `used` (see [`schedule`]).
    pub fn lr_at(&self, used: u64) -> f64 {
        if self.warmup == 0.0 && self.decay == Decay::Constant {
            return self.lr; // today's behaviour, bit for bit
        }
        self.lr * schedule(self.warmup, self.decay, used, self.eval_budget.unwrap_or(self.steps))
    }
}

pub const DEFAULT_CURVE_POINTS: usize = 20;

/// The id of a line as a JSON value, as far as it can be found (`null` if absent).
pub fn id_json_of(line: &str) -> String {
    for tok in line.split_whitespace() {
        if let Some(v) = tok.strip_prefix("id=") {
            return id_json(v);
        }
    }
    "null".to_string()
}

fn id_json(v: &str) -> String {
    match v.parse::<i64>() {
        Ok(i) => i.to_string(),
        Err(_) => json::string(v),
    }
}

fn parse_f64(key: &str, v: &str) -> Result<f64, String> {
    v.parse::<f64>().map_err(|_| format!("{key}={v} is not a number"))
}

fn parse_u64(key: &str, v: &str) -> Result<u64, String> {
    v.parse::<u64>().map_err(|_| format!("{key}={v} is not a non-negative integer"))
}

/// Parses one non-empty plan line.
pub fn parse_line(line: &str) -> Result<RunSpec, String> {
    let mut id = None;
    let mut optimizer = None;
    let mut problem = None;
    let mut lr = None;
    let mut seed = None;
    let mut instance = None;
    let mut steps = None;
    let mut curve_points = None;
    let mut time_limit_ms = None;
    let mut eval_budget = None;
    let mut warmup = None;
    let mut decay = None;
    let mut accuracy = None;
    let mut opts: Vec<(String, f64)> = Vec::new();
    let mut knobs: Vec<(String, f64)> = Vec::new();
    let mut switched_off: Vec<String> = Vec::new();
    for tok in line.split_whitespace() {
        let (k, v) = tok.split_once('=').ok_or_else(|| format!("token '{tok}' is not key=value"))?;
        if v.is_empty() {
            return Err(format!("empty value for '{k}'"));
        }
        fn set<T>(slot: &mut Option<T>, k: &str, v: T) -> Result<(), String> {
            if slot.is_some() {
                return Err(format!("duplicate key '{k}'"));
            }
            *slot = Some(v);
            Ok(())
        }
        match k {
            "id" => set(&mut id, k, id_json(v))?,
            "optimizer" => set(&mut optimizer, k, v.to_string())?,
            "problem" => set(&mut problem, k, v.to_string())?,
            "lr" => {
                let x = parse_f64(k, v)?;
                if !x.is_finite() || x < 0.0 {
                    return Err(format!("lr={v} must be finite and >= 0"));
                }
                set(&mut lr, k, x)?
            }
            "seed" => set(&mut seed, k, parse_u64(k, v)?)?,
            "instance" => set(&mut instance, k, parse_u64(k, v)?)?,
            "steps" => set(&mut steps, k, parse_u64(k, v)?)?,
            "curve_points" => set(&mut curve_points, k, parse_u64(k, v)? as usize)?,
            "time_limit_ms" => set(&mut time_limit_ms, k, parse_u64(k, v)?)?,
            "eval_budget" => set(&mut eval_budget, k, parse_u64(k, v)?)?,
            "warmup" => {
                let x = parse_f64(k, v)?;
                if !(0.0..=MAX_WARMUP).contains(&x) {
                    return Err(format!("warmup={v} must be a fraction in [0, {MAX_WARMUP}]"));
                }
                set(&mut warmup, k, x)?
            }
            "decay" => set(&mut decay, k, Decay::parse(v)?)?,
            "accuracy" => match v {
                "0" => set(&mut accuracy, k, false)?,
                "1" => set(&mut accuracy, k, true)?,
                _ => return Err(format!("accuracy={v}: use 0 or 1")),
            },
            _ if k.starts_with("switch.") => {
                let name = &k["switch.".len()..];
                if name.is_empty() || switched_off.iter().any(|n| n == name) || v != "0" {
                    return Err(format!("'{tok}': use switch.<name>=0 once per switch"));
                }
                switched_off.push(name.to_string());
            }
            _ => {
                let (list, name) = match (k.strip_prefix("opt."), k.strip_prefix("knob.")) {
                    (Some(name), _) => (&mut opts, name),
                    (_, Some(name)) => (&mut knobs, name),
                    _ => return Err(format!("unknown key '{k}'")),
                };
                if name.is_empty() || list.iter().any(|(n, _)| n == name) {
                    return Err(format!("empty or duplicate key '{k}'"));
                }
                list.push((name.to_string(), parse_f64(k, v)?));
            }
        }
    }
    fn need<T>(o: Option<T>, k: &str) -> Result<T, String> {
        o.ok_or_else(|| format!("missing '{k}'"))
    }
    Ok(RunSpec {
        id_json: id.unwrap_or_else(|| "null".to_string()),
        optimizer: need(optimizer, "optimizer")?,
        problem: need(problem, "problem")?,
        lr: need(lr, "lr")?,
        seed: need(seed, "seed")?,
        instance: instance.unwrap_or(0),
        steps: need(steps, "steps")?,
        curve_points: curve_points.unwrap_or(DEFAULT_CURVE_POINTS),
        opts,
        knobs,
        switched_off,
        time_limit_ms,
        eval_budget,
        warmup: warmup.unwrap_or(0.0),
        decay: decay.unwrap_or_default(),
        accuracy: accuracy.unwrap_or(true),
    })
}

/// Steps at which the full loss is recorded: about `points` evenly spaced steps in [0, steps],
/// always including 0 and `steps`, strictly increasing.
pub fn curve_steps(steps: u64, points: usize) -> Vec<u64> {
    let c = points.max(2) as u64;
    if c > steps {
        return (0..=steps).collect();
    }
    let mut out: Vec<u64> = Vec::with_capacity(c as usize);
    for i in 0..c {
        let s = ((i as u128 * steps as u128 + (c as u128 - 1) / 2) / (c as u128 - 1)) as u64;
        if out.last() != Some(&s) {
            out.push(s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_line() {
        let r = parse_line("id=17 optimizer=adam problem=rosenbrock-10 lr=0.001 seed=3 steps=500 curve_points=40 opt.beta1=0.8")
            .unwrap();
        assert_eq!(r.id_json, "17");
        assert_eq!(r.optimizer, "adam");
        assert_eq!(r.lr, 0.001);
        assert_eq!(r.curve_points, 40);
        assert_eq!(r.opts, vec![("beta1".to_string(), 0.8)]);
        let r = parse_line("id=a-1 optimizer=sgd problem=x lr=1 seed=0 steps=5").unwrap();
        assert_eq!(r.id_json, "\"a-1\"");
        assert!(parse_line("optimizer=sgd").unwrap_err().contains("missing"));
        assert!(parse_line("id=1 optimizer=sgd problem=x lr=1 seed=0 steps=5 foo=3").unwrap_err().contains("unknown key"));
        assert!(parse_line("id=1 id=2").unwrap_err().contains("duplicate"));
        assert!(parse_line("id=1 lr=nan").is_err());
        assert_eq!(id_json_of("junk id=9 x"), "9");
    }

    #[test]
    fn parses_schedules() {
        let r = parse_line("id=1 optimizer=sgd problem=x lr=1 seed=0 steps=5").unwrap();
        assert_eq!((r.warmup, r.decay), (0.0, Decay::Constant));
        let r = parse_line("id=1 optimizer=sgd problem=x lr=1 seed=0 steps=5 warmup=0.25 decay=cosine").unwrap();
        assert_eq!((r.warmup, r.decay), (0.25, Decay::Cosine));
        assert!(parse_line("id=1 optimizer=sgd problem=x lr=1 seed=0 steps=5 warmup=0.6").unwrap_err().contains("warmup"));
        assert!(parse_line("id=1 optimizer=sgd problem=x lr=1 seed=0 steps=5 warmup=-0.1").is_err());
        assert!(parse_line("id=1 optimizer=sgd problem=x lr=1 seed=0 steps=5 decay=step").unwrap_err().contains("decay"));
        assert!(parse_line("id=1 optimizer=sgd problem=x lr=1 seed=0 steps=5 decay=linear decay=cosine").is_err());
    }

    #[test]
    fn schedule_shapes() {
        // constant, no warm-up: exactly 1 everywhere, and lr_at is lr bit for bit
        assert!((1..=100).all(|t| schedule(0.0, Decay::Constant, t, 100) == 1.0));
        let r = parse_line("id=1 optimizer=sgd problem=x lr=0.123456789 seed=0 steps=100").unwrap();
        assert!((1..=100).all(|t| r.lr_at(t).to_bits() == 0.123456789f64.to_bits()));
        // linear warm-up over 10 of 100 evaluations: 0.1, 0.2, ..., 1, then flat
        let w: Vec<f64> = (1..=12).map(|t| schedule(0.1, Decay::Constant, t, 100)).collect();
        for (i, x) in w.iter().take(10).enumerate() {
            assert!((x - (i + 1) as f64 / 10.0).abs() < 1e-15, "{w:?}");
        }
        assert_eq!((w[10], w[11]), (1.0, 1.0));
        // linear and cosine decay: 1 at the first step after warm-up, 0 at the last, monotone
        for decay in [Decay::Linear, Decay::Cosine] {
            let f: Vec<f64> = (1..=100).map(|t| schedule(0.0, decay, t, 100)).collect();
            assert_eq!((f[0], f[99]), (1.0, 0.0), "{decay:?}");
            assert!(f.windows(2).all(|p| p[1] < p[0]), "{decay:?}");
            assert!(f.iter().all(|x| (0.0..=1.0).contains(x)));
            let g: Vec<f64> = (1..=100).map(|t| schedule(0.2, decay, t, 100)).collect();
            assert_eq!((g[19], g[20], g[99]), (1.0, 1.0, 0.0), "{decay:?}");
            assert!((g[0] - 0.05).abs() < 1e-15);
        }
        // the midpoint: linear 1/2, cosine 1/2 (symmetric), cosine above linear before it
        let mid = |d| schedule(0.0, d, 51, 101);
        assert!((mid(Decay::Linear) - 0.5).abs() < 1e-15 && (mid(Decay::Cosine) - 0.5).abs() < 1e-15);
        assert!(schedule(0.0, Decay::Cosine, 20, 101) > schedule(0.0, Decay::Linear, 20, 101));
        // out-of-range evaluations clamp; tiny budgets do not divide by zero
        assert_eq!(schedule(0.0, Decay::Linear, 500, 100), 0.0);
        assert_eq!(schedule(0.5, Decay::Cosine, 1, 1), 1.0);
        assert!(schedule(0.5, Decay::Linear, 2, 2).is_finite());
    }

    #[test]
    fn curve_steps_cover_the_run() {
        assert_eq!(curve_steps(10, 3), vec![0, 5, 10]);
        assert_eq!(curve_steps(3, 10), vec![0, 1, 2, 3]);
        assert_eq!(curve_steps(0, 10), vec![0]);
        let c = curve_steps(500, 40);
        assert_eq!(c.len(), 40);
        assert_eq!((c[0], *c.last().unwrap()), (0, 500));
        assert!(c.windows(2).all(|w| w[0] < w[1]));
    }
}
