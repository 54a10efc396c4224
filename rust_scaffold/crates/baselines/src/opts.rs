//! Keyword options: defaults merged with user values; unknown keys are errors.

/// Resolved options of one baseline.
pub struct Opts {
    name: String,
    values: Vec<(&'static str, f64)>,
}

impl Opts {
    pub fn new(name: &str, defaults: &[(&'static str, f64)], user: &[(String, f64)]) -> Result<Opts, String> {
        let mut values = defaults.to_vec();
        for (k, v) in user {
            match values.iter_mut().find(|(d, _)| d == k) {
                Some(slot) => {
                    if !v.is_finite() {
                        return Err(format!("option '{k}' of {name} must be finite, got {v}"));
                    }
                    slot.1 = *v;
                }
                None => {
                    let valid: Vec<&str> = defaults.iter().map(|(d, _)| *d).collect();
                    return Err(format!("unknown option '{k}' for {name}; valid: {}", valid.join(", ")));
                }
            }
        }
        Ok(Opts { name: name.to_string(), values })
    }

    /// The registered name these options were resolved for (presets share a constructor).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn get(&self, key: &str) -> f64 {
        self.values.iter().find(|(k, _)| *k == key).map(|(_, v)| *v).expect("option without a default")
    }

    pub fn flag(&self, key: &str) -> Result<bool, String> {
        let v = self.get(key);
        if v == 0.0 {
            Ok(false)
        } else if v == 1.0 {
            Ok(true)
        } else {
            Err(format!("option '{key}' must be 0 or 1, got {v}"))
        }
    }
}
