//! The limits of the optimizer contract: how many knobs and switches a candidate may declare, and
//! how the values a tuner or an ablation hands over are checked against the declaration.

use crate::Knob;

/// The most knobs a candidate may declare: every knob thins the same tuning budget.
pub const MAX_KNOBS: usize = 4;

/// The most switches a candidate may declare for ablations.
pub const MAX_SWITCHES: usize = 8;

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 32 && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Checks a candidate's declared knobs and fills in the given values (defaults elsewhere).
pub fn resolve_knobs(declared: &[Knob], given: &[(String, f64)]) -> Result<Vec<(String, f64)>, String> {
    if declared.len() > MAX_KNOBS {
        return Err(format!("{} knobs declared; at most {MAX_KNOBS}", declared.len()));
    }
    for (i, k) in declared.iter().enumerate() {
        if !valid_name(k.name) {
            return Err(format!("knob name '{}' must be 1-32 characters of a-z, 0-9 and _", k.name));
        }
        if declared[..i].iter().any(|o| o.name == k.name) {
            return Err(format!("knob '{}' is declared twice", k.name));
        }
        let ordered = k.low.is_finite() && k.high.is_finite() && k.low < k.high;
        if !ordered || !(k.low..=k.high).contains(&k.default) || (k.log_scale && k.low <= 0.0) {
            return Err(format!(
                "knob '{}' needs finite low < high, low <= default <= high, and low > 0 on a log scale",
                k.name
            ));
        }
    }
    for (name, value) in given {
        let k = declared.iter().find(|k| k.name == name).ok_or_else(|| format!("knob '{name}' is not declared"))?;
        if !(k.low..=k.high).contains(value) {
            return Err(format!("knob '{name}'={value} is outside [{}, {}]", k.low, k.high));
        }
    }
    Ok(declared
        .iter()
        .map(|k| {
            let v = given.iter().find(|(n, _)| n == k.name).map_or(k.default, |(_, v)| *v);
            (k.name.to_string(), v)
        })
        .collect())
}

/// Checks a candidate's declared switches and that every switched-off name is one of them.
pub fn check_switches(declared: &[&str], off: &[String]) -> Result<(), String> {
    if declared.len() > MAX_SWITCHES {
        return Err(format!("{} switches declared; at most {MAX_SWITCHES}", declared.len()));
    }
    for (i, name) in declared.iter().enumerate() {
        if !valid_name(name) || declared[..i].contains(name) {
            return Err(format!("switch name '{name}' must be unique, 1-32 characters of a-z, 0-9 and _"));
        }
    }
    match off.iter().find(|n| !declared.contains(&n.as_str())) {
        Some(n) => Err(format!("switch '{n}' is not declared")),
        None => Ok(()),
    }
}
