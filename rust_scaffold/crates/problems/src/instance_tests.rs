//! Instances: gradients, where the minimum moved to, the geometry of the start, determinism,
//! and the equivalence of data instances with the canonical problems.

use crate::instance::Rotated;
use crate::models::DataModel;
use crate::registry::Build;
use crate::relabel::DataInstance;
use crate::tests::{check_grad_named, fingerprint, flat};
use crate::*;
use std::time::Instant;

const KEYS: [u64; 3] = [1, 7, 0x9E37_79B9_7F4A_7C15];

fn function_names() -> Vec<&'static str> {
    PROBLEMS.iter().filter(|e| matches!(e.build, Build::Function(_))).map(|e| e.name).collect()
}

fn rotated(name: &str, key: u64) -> Rotated {
    Rotated::new(by_name(name).unwrap(), key).unwrap()
}

fn data_instance(name: &str, key: u64) -> DataInstance {
    match entry(name).unwrap().build {
        Build::Data { data, model } => DataInstance::new(name, key, data(), model),
        Build::Function(_) | Build::Keyed(_) => panic!("{name} is not a relabelled dataset problem"),
    }
}

fn dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt()
}

fn perturbed(p: &dyn Problem, seed: u64) -> Vec<Tensor> {
    let mut x = p.init(&mut Rng::derive(seed, "init"));
    let mut r = Rng::derive(seed, "perturb");
    for v in x.iter_mut().flat_map(|t| t.data.iter_mut()) {
        *v += 0.3 * r.normal();
    }
    x
}

#[test]
fn instance_gradients_match_finite_differences() {
    for name in all_names() {
        for key in KEYS {
            let p = instance(&name, key).unwrap();
            assert_eq!((p.name(), p.shapes()), (name.as_str(), by_name(&name).unwrap().shapes()));
            let x = perturbed(p.as_ref(), key);
            let err = check_grad_named(&name, key, p.as_ref(), &x, None);
            assert!(err < 1e-5, "{name} key {key}: full gradient rel err {err:e}");
            if let Some(n) = p.train_size() {
                let mut r = Rng::derive(key, "batch");
                let batch: Vec<usize> = (0..p.batch_size()).map(|_| r.below(n)).collect();
                let err = check_grad_named(&name, key, p.as_ref(), &x, Some(&batch));
                assert!(err < 1e-5, "{name} key {key}: batch gradient rel err {err:e}");
            }
        }
    }
}

#[test]
fn a_function_instance_has_its_minimum_at_the_shift_and_not_at_the_canonical_point() {
    for name in function_names() {
        let canon = by_name(name).unwrap();
        let xstar = canon.minimizer().unwrap();
        let fstar = canon.loss(&xstar, None);
        for key in KEYS {
            let p = instance(name, key).unwrap();
            let s = p.minimizer().unwrap();
            assert_eq!(flat(&s), rotated(name, key).shift(), "{name}");
            assert!(flat(&s).iter().all(|v| v.abs() <= SHIFT_BOX), "{name}");
            // exactly the canonical minimum value, with a vanishing gradient
            let mut g = tensors_from_shapes(&p.shapes());
            assert_eq!(p.loss_grad(&s, None, &mut g).to_bits(), fstar.to_bits(), "{name} key {key}");
            assert_eq!(p.optimum(), canon.optimum());
            let gn = flat(&g).iter().map(|v| v * v).sum::<f64>().sqrt();
            assert!(gn < 1e-9, "{name} key {key}: gradient at the shift {gn:e}");
            // the documented canonical minimizer is now a poor point
            assert!(dist(&flat(&s), &flat(&xstar)) > 1.0, "{name} key {key}");
            let at_canon = p.loss(&xstar, None);
            assert!(at_canon > fstar + 1e-2 * (1.0 + fstar.abs()), "{name} key {key}: {at_canon} at x*");
            // and so is the origin
            let zero = tensors_from_shapes(&p.shapes());
            assert!(p.loss(&zero, None) > fstar + 1e-2, "{name} key {key}: origin");
        }
    }
}

#[test]
fn an_instance_starts_as_far_from_its_optimum_as_the_canonical_problem() {
    for name in function_names() {
        let canon = by_name(name).unwrap();
        let xstar = flat(&canon.minimizer().unwrap());
        for key in KEYS {
            let p = instance(name, key).unwrap();
            let s = flat(&p.minimizer().unwrap());
            for seed in [0u64, 5] {
                let z0 = canon.init(&mut Rng::derive(seed, "init"));
                let x0 = p.init(&mut Rng::derive(seed, "init"));
                let (fz, fx) = (canon.loss(&z0, None), p.loss(&x0, None));
                assert!((fz - fx).abs() <= 1e-9 * fz.abs().max(1.0), "{name} key {key}: {fz} vs {fx}");
                let (dz, dx) = (dist(&flat(&z0), &xstar), dist(&flat(&x0), &s));
                assert!((dz - dx).abs() <= 1e-12 * dz.max(1.0), "{name} key {key}: {dz} vs {dx}");
            }
        }
    }
}

#[test]
fn rotations_are_orthogonal_and_two_keys_give_different_shifts_and_rotations() {
    for name in function_names() {
        let (a, b) = (rotated(name, 1), rotated(name, 2));
        assert_ne!(a.shift(), b.shift(), "{name}");
        assert_ne!(a.rotation(), b.rotation(), "{name}");
        let n = a.shift().len();
        let r = a.rotation();
        for i in 0..n {
            for j in 0..n {
                let d: f64 = (0..n).map(|k| r[i * n + k] * r[j * n + k]).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((d - want).abs() < 1e-13, "{name}: (R R^T)[{i},{j}] = {d}");
            }
        }
    }
    // one key, two problems of the same size: independent coordinates
    assert_ne!(rotated("rastrigin-10", 3).shift(), rotated("ackley-10", 3).shift());
}

#[test]
fn rotations_are_haar_distributed() {
    // For Haar measure on O(n), n >= 2: E[tr R] = 0 and E[(tr R)^2] = 1. Without the sign fix,
    // QR of a Gaussian matrix gives a visibly biased trace.
    let m = 4000;
    let (mut s1, mut s2) = (0.0, 0.0);
    for k in 0..m {
        let r = haar_orthogonal(4, &mut Rng::derive(k, "haar-test"));
        let t = r[0] + r[5] + r[10] + r[15];
        s1 += t;
        s2 += t * t;
    }
    let (mean, sq) = (s1 / m as f64, s2 / m as f64);
    assert!(mean.abs() < 0.06, "mean trace {mean}");
    assert!((sq - 1.0).abs() < 0.1, "mean squared trace {sq}");
}

#[test]
fn the_same_name_and_key_give_the_same_problem_bit_for_bit() {
    for name in all_names() {
        for key in [0, 1, 7] {
            let (a, b) = (instance(&name, key).unwrap(), instance(&name, key).unwrap());
            assert_eq!(fingerprint(a.as_ref()), fingerprint(b.as_ref()), "{name} key {key}");
        }
        let (a, b) = (instance(&name, 1).unwrap(), instance(&name, 2).unwrap());
        let (fa, fb) = (fingerprint(a.as_ref()), fingerprint(b.as_ref()));
        assert_ne!(fa, fb, "{name}: keys 1 and 2 give the same problem");
        assert_ne!(fa, fingerprint(by_name(&name).unwrap().as_ref()), "{name}: key 1 is canonical");
    }
}

#[test]
fn noisy_quadratic_instances_keep_minibatch_noise_and_a_noise_free_full_loss() {
    let p = instance("noisy-quadratic-50", 4).unwrap();
    assert_eq!((p.train_size(), p.batch_size()), (Some(1000), 32));
    let s = p.minimizer().unwrap();
    assert!(p.loss(&s, None).abs() < 1e-12);
    let mut g = tensors_from_shapes(&p.shapes());
    p.loss_grad(&s, Some(&[1, 2, 3]), &mut g);
    assert!(flat(&g).iter().any(|v| v.abs() > 1e-3), "a minibatch gradient at the optimum is noisy");
    let x = p.init(&mut Rng::derive(1, "init"));
    let all: Vec<usize> = (0..1000).collect();
    let (full, via_batch) = (p.loss(&x, None), p.loss(&x, Some(&all)));
    assert!((full - via_batch).abs() < 1e-9 * full.abs().max(1.0), "{full} {via_batch}");
}

/// Canonical loss, gradient and accuracies at theta equal the instance's at relabel(theta).
fn assert_data_instance_equivalent(name: &str, key: u64) -> bool {
    let canon = by_name(name).unwrap();
    let inst = data_instance(name, key);
    let model: &dyn DataModel = inst.model();
    let map = |p: &[Tensor]| model.relabel_params(p, inst.relabel());
    // the init is the canonical init, mapped
    let z0 = canon.init(&mut Rng::derive(3, "init"));
    assert_eq!(inst.init(&mut Rng::derive(3, "init")), map(&z0), "{name} key {key}");
    let theta = perturbed(canon.as_ref(), key);
    let theta_i = map(&theta);
    assert_ne!(flat(&theta), flat(&theta_i), "{name} key {key}: identity relabelling");
    let n = canon.train_size().unwrap();
    let mut r = Rng::derive(key, "batch");
    let batch: Vec<usize> = (0..canon.batch_size()).map(|_| r.below(n)).collect();
    for b in [None, Some(batch.as_slice())] {
        let (mut gc, mut gi) = (tensors_from_shapes(&canon.shapes()), tensors_from_shapes(&inst.shapes()));
        let lc = canon.loss_grad(&theta, b, &mut gc);
        let li = inst.loss_grad(&theta_i, b, &mut gi);
        assert!((lc - li).abs() <= 1e-12 * lc.abs().max(1.0), "{name} key {key}: loss {lc} vs {li}");
        let (gc, gi) = (flat(&map(&gc)), flat(&gi));
        let scale = gc.iter().map(|v| v.abs()).fold(0.0, f64::max);
        assert!(dist(&gc, &gi) <= 1e-12 * scale.max(1.0), "{name} key {key}: gradients differ");
    }
    assert_eq!(canon.train_accuracy(&theta), inst.train_accuracy(&theta_i), "{name} key {key}");
    assert_eq!(canon.test_accuracy(&theta), inst.test_accuracy(&theta_i), "{name} key {key}");
    // weights pasted from the canonical problem are not the same model on the instance
    assert!((inst.loss(&theta, None) - canon.loss(&theta, None)).abs() > 1e-6, "{name} key {key}");
    inst.relabel().class[0] != 0
}

#[test]
fn data_instances_equal_the_canonical_problem_at_relabelled_parameters() {
    // one problem of each model kind on every dataset, and both outcomes of the binary swap
    let mut swapped = [false, false];
    for key in 1..=6 {
        swapped[usize::from(assert_data_instance_equivalent("logreg-breast-cancer", key))] = true;
    }
    assert_eq!(swapped, [true, true], "keys 1..=6 should both swap and keep the two labels");
    for name in ["softmax-digits", "mlp-digits", "mlp-wine", "softmax-wine", "softmax-mnist1d", "mlp-mnist1d"] {
        for key in [1, 0xDEAD_BEEF] {
            assert_data_instance_equivalent(name, key);
        }
    }
}

#[test]
fn data_instances_permute_features_and_classes_of_both_splits() {
    let (tr, te) = crate::data::digits();
    let inst = data_instance("softmax-digits", 9);
    let r = inst.relabel().clone();
    let mut f = r.feature.clone();
    f.sort();
    assert_eq!(f, (0..64).collect::<Vec<_>>());
    assert_ne!(r.feature, (0..64).collect::<Vec<_>>());
    assert_ne!(r.class, (0..10).collect::<Vec<_>>());
    for ds in [&*tr, &*te] {
        let re = ds.relabelled(&r.feature, &r.class);
        for i in [0, ds.n - 1] {
            for (j, &fj) in r.feature.iter().enumerate() {
                assert_eq!(re.x[i * 64 + j].to_bits(), ds.x[i * 64 + fj].to_bits());
            }
            assert_eq!(re.y[i], r.class[ds.y[i]]);
        }
    }
    assert_ne!(data_instance("softmax-digits", 10).relabel(), &r);
}

/// Median wall time of building `instance(name, key)`, in microseconds.
fn build_us(name: &str) -> f64 {
    let _ = by_name(name); // datasets are parsed once per process, not per instance
    let mut t: Vec<f64> = (0..7u64)
        .map(|k| {
            let start = Instant::now();
            let p = instance(name, 100 + k).unwrap();
            let us = start.elapsed().as_secs_f64() * 1e6;
            std::hint::black_box(p);
            us
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

#[test]
fn building_an_instance_is_cheap() {
    for name in [
        "rosenbrock-50",
        "quadratic-ill-50",
        "noisy-quadratic-50",
        "quadratic-ill-100-k1e4",
        "noisy-quadratic-100",
        "softmax-mnist1d",
        "mlp-mnist1d",
    ] {
        let canon = {
            let _ = by_name(name);
            let start = Instant::now();
            std::hint::black_box(by_name(name));
            start.elapsed().as_secs_f64() * 1e6
        };
        let us = build_us(name);
        let wrap = if matches!(entry(name).unwrap().build, Build::Function(_)) {
            let mut t: Vec<f64> = (0..7u64)
                .map(|k| {
                    let inner = by_name(name).unwrap();
                    let start = Instant::now();
                    std::hint::black_box(Rotated::new(inner, 100 + k));
                    start.elapsed().as_secs_f64() * 1e6
                })
                .collect();
            t.sort_by(f64::total_cmp);
            format!(", of which shift + rotation {:.0} us", t[3])
        } else {
            String::new()
        };
        println!("instance build {name}: {us:.0} us{wrap} (canonical build {canon:.0} us)");
        let eval_us = |p: &dyn Problem| {
            let x = p.init(&mut Rng::derive(1, "init"));
            let mut g = tensors_from_shapes(&p.shapes());
            let batch: Option<Vec<usize>> = p.train_size().map(|_| (0..p.batch_size()).collect());
            let start = Instant::now();
            for _ in 0..200 {
                std::hint::black_box(p.loss_grad(&x, batch.as_deref(), &mut g));
            }
            start.elapsed().as_secs_f64() * 1e6 / 200.0
        };
        let (ec, ei) = (eval_us(by_name(name).unwrap().as_ref()), eval_us(instance(name, 5).unwrap().as_ref()));
        println!("  loss_grad {name}: canonical {ec:.2} us, instance {ei:.2} us");
        // generous: the tests run in parallel on a shared machine; the report quotes the numbers
        assert!(us < 20_000.0, "{name}: {us} us");
    }
}
