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

fn opts(o: &[(&str, f64)]) -> Vec<(String, f64)> {
    o.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Muon's non-matrix tensors (and matrices the harness calls embeddings or heads) are AdamW's,
/// at adamw_lr_ratio x lr with AdamW's own betas, eps and decay, bit for bit.
#[test]
fn muon_steps_everything_but_hidden_matrices_with_adamw() {
    use frontier_core::{NanOracle, ParamKind};
    let mo = opts(&[("adamw_lr_ratio", 0.3), ("adamw_beta1", 0.8), ("adamw_beta2", 0.99), ("adamw_eps", 1e-6), ("adamw_weight_decay", 0.05)]);
    let ao = opts(&[("beta1", 0.8), ("beta2", 0.99), ("eps", 1e-6), ("weight_decay", 0.05)]);
    let shapes: [&[usize]; 3] = [&[2, 3], &[3], &[2, 3]];
    let init = |s: &[usize], k: f64| Tensor::from_vec(s, (0..s.iter().product()).map(|i| (i as f64 + k).sin()).collect());
    let mut p: Vec<Tensor> = shapes.iter().enumerate().map(|(k, s)| init(s, k as f64)).collect();
    let mut q = p.clone();
    let (mut muon, mut adamw) = (build("muon", &mo).unwrap(), build("adamw", &ao).unwrap());
    let kinds = [ParamKind::Matrix, ParamKind::Vector, ParamKind::Embedding];
    for t in 1..=5u64 {
        let g: Vec<Tensor> = shapes.iter().enumerate().map(|(k, s)| init(s, (k as f64) * 7.0 + t as f64)).collect();
        let ctx = StepContext::new(t, f64::NAN, 0.02, &NanOracle).with_kinds(&kinds);
        muon.step(&mut p, &g, &ctx);
        let rest = [g[1].clone(), g[2].clone()];
        let mut qr = [q[1].clone(), q[2].clone()];
        step_with(adamw.as_mut(), &mut qr, &rest, 0.02 * 0.3, t);
        q[1] = qr[0].clone();
        q[2] = qr[1].clone();
        assert_eq!(p[1], q[1], "step {t}: the vector");
        assert_eq!(p[2], q[2], "step {t}: the embedding");
    }
    assert_ne!(p[0], q[0], "the hidden matrix is Muon's");
}

/// Muon's update of a matrix is orthogonalised: with momentum 0 and no decay, one step moves a
/// square matrix by lr times a matrix whose singular values are all near 1 (Newton-Schulz's
/// quintic leaves them in about [0.5, 1.5]), though the gradient's are 3.4 and 1.6.
#[test]
fn muon_update_is_near_orthogonal() {
    let o = opts(&[("momentum", 0.0), ("nesterov", 0.0), ("weight_decay", 0.0)]);
    for bf16 in [0.0, 1.0] {
        let mut m = build("muon", &[o.clone(), opts(&[("ns_bf16", bf16)])].concat()).unwrap();
        let g = vec![Tensor::from_vec(&[2, 2], vec![3.0, 1.0, 0.5, 2.0])];
        let mut p = vec![Tensor::new(&[2, 2])];
        step_with(m.as_mut(), &mut p, &g, 1.0, 1);
        let u: Vec<f64> = p[0].data.iter().map(|x| -x).collect();
        // U U^T's eigenvalues are the squared singular values.
        let (a, b, d) = (u[0] * u[0] + u[1] * u[1], u[0] * u[2] + u[1] * u[3], u[2] * u[2] + u[3] * u[3]);
        let (mean, diff) = ((a + d) / 2.0, (((a - d) / 2.0).powi(2) + b * b).sqrt());
        for s2 in [mean - diff, mean + diff] {
            assert!((0.25..2.25).contains(&s2), "bf16={bf16}: singular value^2 {s2}");
        }
    }
}

/// The SOAP helpers: Jacobi's eigenvectors diagonalise, in descending order; QR's Q is orthogonal
/// and spans P's columns in order.
#[test]
fn soap_eigh_and_qr() {
    use crate::rules::soap::{eigh_desc, qr_q};
    let n = 5;
    let b: Vec<f64> = (0..n * n).map(|i| ((i * 7 % 11) as f64 - 5.0) / 3.0).collect();
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            a[i * n + j] = (0..n).map(|k| b[i * n + k] * b[j * n + k]).sum();
        }
    }
    let q = eigh_desc(&a, n);
    let mut last = f64::INFINITY;
    for c in 0..n {
        let av: Vec<f64> = (0..n).map(|i| (0..n).map(|k| a[i * n + k] * q[k * n + c]).sum()).collect();
        let lambda: f64 = (0..n).map(|i| q[i * n + c] * av[i]).sum();
        for i in 0..n {
            assert!((av[i] - lambda * q[i * n + c]).abs() < 1e-12 * (1.0 + lambda.abs()), "column {c}");
        }
        assert!(lambda <= last + 1e-12, "descending");
        last = lambda;
    }
    let mut p = b.clone();
    let mut qq = vec![0.0; n * n];
    qr_q(&mut p, &mut qq, n);
    for i in 0..n {
        for j in 0..n {
            let dot: f64 = (0..n).map(|k| qq[k * n + i] * qq[k * n + j]).sum();
            assert!((dot - if i == j { 1.0 } else { 0.0 }).abs() < 1e-14, "Q^T Q at {i},{j}");
        }
    }
    // R = Q^T B is upper triangular.
    for i in 0..n {
        for j in 0..i {
            let r: f64 = (0..n).map(|k| qq[k * n + i] * b[k * n + j]).sum();
            assert!(r.abs() < 1e-12, "R[{i}][{j}] = {r}");
        }
    }
}

/// Prodigy's spellings: growth_rate 0 is unbounded (as a huge finite rate), beta3 < 0 is
/// sqrt(beta2) (as beta3 given explicitly).
#[test]
fn prodigy_growth_rate_and_beta3_spellings() {
    let g: [&[f64]; 12] = [&[1.0, -2.0]; 12];
    let same = |a: &[(&str, f64)], b: &[(&str, f64)]| {
        let (a, b) = (opts(a), opts(b));
        let r = |o: &[(String, f64)]| {
            let mut opt = build("prodigy", o).unwrap();
            let mut p = t(&[1.0, 1.0]);
            for (i, gi) in g.iter().enumerate() {
                step_with(opt.as_mut(), &mut p, &t(gi), 1.0, i as u64 + 1);
            }
            p[0].data.clone()
        };
        (r(&a), r(&b))
    };
    let (a, b) = same(&[("growth_rate", 0.0)], &[("growth_rate", 1e300)]);
    assert_eq!(a, b);
    let (a, b) = same(&[("growth_rate", 0.0)], &[("growth_rate", 1.0)]);
    assert_ne!(a, b);
    let (a, b) = same(&[], &[("beta3", 0.999f64.sqrt())]);
    assert_eq!(a, b);
    assert!(build("prodigy", &opts(&[("d0", 0.0)])).is_err());
    assert!(build("muon", &opts(&[("adjust_lr_fn", 3.0)])).is_err());
    assert!(build("schedulefree_adamw", &opts(&[("warmup_steps", 2.5)])).is_err());
    assert!(build("soap", &opts(&[("precondition_frequency", 0.0)])).is_err());
}
