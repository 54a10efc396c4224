use super::*;
use frontier_core::Tensor;

fn t(v: &[f64]) -> Vec<Tensor> {
    vec![Tensor::from_vec(&[v.len()], v.to_vec())]
}

fn run(name: &str, opts: &[(&str, f64)], lr: f64, x0: &[f64], grads: &[&[f64]]) -> Vec<f64> {
    let opts: Vec<(String, f64)> = opts.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    let mut o = build(name, &opts).unwrap();
    let mut p = t(x0);
    for (i, g) in grads.iter().enumerate() {
        step_with(o.as_mut(), &mut p, &t(g), lr, i as u64 + 1);
    }
    p[0].data.clone()
}

#[test]
fn every_name_builds_with_defaults() {
    for n in names() {
        let o = build(n, &[]).unwrap();
        assert_eq!(o.name(), n);
    }
    assert!(build("adamm", &[]).err().unwrap().contains("unknown optimizer"));
    assert!(build("adam", &[("betas".into(), 0.9)]).err().unwrap().contains("unknown option"));
    assert!(build("adam", &[("amsgrad".into(), 0.5)]).is_err());
    assert!(build("sgd", &[("nesterov".into(), 1.0)]).is_err());
}

#[test]
fn sgd_and_momentum_by_hand() {
    assert_eq!(run("sgd", &[], 0.1, &[1.0], &[&[2.0]]), vec![1.0 - 0.1 * 2.0]);
    // first momentum step uses the raw gradient, then buf = 0.9 buf + g
    let p = run("momentum", &[], 0.1, &[0.0], &[&[1.0], &[1.0]]);
    assert_eq!(p, vec![-0.1 * 1.0 + -0.1 * 1.9]);
    // nesterov: d = g + 0.9 buf
    let p = run("nesterov", &[], 0.1, &[0.0], &[&[1.0]]);
    assert_eq!(p, vec![-0.1 * 1.9]);
}

#[test]
fn adam_first_step_is_lr_times_sign() {
    let p = run("adam", &[], 0.01, &[1.0, 1.0, 1.0], &[&[3.0, -0.5, 0.0]]);
    assert!((p[0] - 0.99).abs() < 1e-9 && (p[1] - 1.01).abs() < 1e-9 && p[2] == 1.0, "{p:?}");
}

#[test]
fn lion_sign_of_zero_is_zero() {
    let p = run("lion", &[], 0.1, &[1.0, 1.0], &[&[0.0, -2.0]]);
    assert_eq!(p, vec![1.0, 1.1]);
}

#[test]
fn adamw_decays_before_update() {
    let p = run("adamw", &[("weight_decay", 0.5)], 0.1, &[2.0], &[&[0.0]]);
    assert_eq!(p, vec![2.0 * (1.0 - 0.1 * 0.5)]);
}

#[test]
fn adafactor_factored_matches_unfactored_on_rank_one_gradients() {
    // For a rank-1 |g|^2 pattern (outer product), the factored estimate equals the full one
    // at step 1, so a [2,3] tensor must move like the flat version of it.
    let mut o2 = build("adafactor", &[]).unwrap();
    let mut o1 = build("adafactor", &[]).unwrap();
    let u = [1.0, 2.0];
    let v = [0.5, -1.0, 3.0];
    let g: Vec<f64> = u.iter().flat_map(|a| v.iter().map(move |b| a * b)).collect();
    let x0 = vec![0.3, -0.2, 0.1, 0.4, 0.0, -0.5];
    let mut p2 = vec![Tensor::from_vec(&[2, 3], x0.clone())];
    let mut p1 = vec![Tensor::from_vec(&[6], x0)];
    step_with(o2.as_mut(), &mut p2, &[Tensor::from_vec(&[2, 3], g.clone())], 0.01, 1);
    step_with(o1.as_mut(), &mut p1, &[Tensor::from_vec(&[6], g)], 0.01, 1);
    for (a, b) in p2[0].data.iter().zip(&p1[0].data) {
        assert!((a - b).abs() < 1e-12, "{a} {b}");
    }
}

#[test]
fn deterministic_bits() {
    for n in names() {
        let a = run(n, &[], 0.01, &[1.0, -2.0], &[&[0.3, 0.1], &[-0.2, 0.5], &[0.0, 1.0]]);
        let b = run(n, &[], 0.01, &[1.0, -2.0], &[&[0.3, 0.1], &[-0.2, 0.5], &[0.0, 1.0]]);
        assert_eq!(
            a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            b.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        assert!(a.iter().all(|x| x.is_finite()), "{n}: {a:?}");
    }
}

/// Every searched hyperparameter is an option of its baseline, its range holds the default, its
/// scale suits its bounds, and the baseline builds at both ends of every range.
#[test]
fn search_spaces_are_valid() {
    for b in BASELINES {
        assert!(b.search.len() <= 4, "{}", b.name);
        for (i, hp) in b.search.iter().enumerate() {
            assert!(b.search[..i].iter().all(|o| o.name != hp.name), "{} lists {} twice", b.name, hp.name);
            let default = b.defaults.iter().find(|(k, _)| *k == hp.name).map(|(_, v)| *v);
            let default = default.unwrap_or_else(|| panic!("{}: {} is not an option", b.name, hp.name));
            assert!(hp.low < hp.high && (hp.low..=hp.high).contains(&default), "{}.{}", b.name, hp.name);
            match hp.scale {
                Scale::Log => assert!(hp.low > 0.0, "{}.{}", b.name, hp.name),
                Scale::LogOneMinus => assert!(hp.high < 1.0, "{}.{}", b.name, hp.name),
                Scale::Linear => {}
            }
            for v in [hp.low, hp.high] {
                assert!(build(b.name, &[(hp.name.to_string(), v)]).is_ok(), "{}.{}={v}", b.name, hp.name);
            }
        }
        assert_eq!(search_space(b.name).unwrap().len(), b.search.len());
    }
}
