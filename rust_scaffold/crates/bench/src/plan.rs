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
