//! Canonical problems: gradients vs finite differences, known minima, determinism, data.

use crate::*;

pub(crate) fn flat(ts: &[Tensor]) -> Vec<f64> {
    ts.iter().flat_map(|t| t.data.iter().copied()).collect()
}

pub(crate) fn set(ts: &mut [Tensor], k: usize, v: f64) {
    let mut k = k;
    for t in ts.iter_mut() {
        if k < t.len() {
            t.data[k] = v;
            return;
        }
        k -= t.len();
    }
    panic!("index out of range");
}

/// Central finite differences on up to 120 coordinates (24 for a full-batch check of a problem
/// whose full loss is costly: the transformer's); norm-wise relative error.
pub(crate) fn check_grad(p: &dyn Problem, params: &[Tensor], batch: Option<&[usize]>) -> f64 {
    let costly = batch.is_none() && p.train_size().is_some_and(|n| n * p.dim() > 5_000_000);
    check_grad_on(p, params, batch, if costly { 24 } else { 120 })
}

/// Central finite differences on about `coords` evenly spaced coordinates.
pub(crate) fn check_grad_on(p: &dyn Problem, params: &[Tensor], batch: Option<&[usize]>, coords: usize) -> f64 {
    let mut g = tensors_from_shapes(&p.shapes());
    let l = p.loss_grad(params, batch, &mut g);
    let l2 = p.loss(params, batch);
    assert!((l - l2).abs() <= 1e-12 * (1.0 + l.abs()), "{}: loss vs loss_grad {l} {l2}", p.name());
    let g = flat(&g);
    let x = flat(params);
    let n = x.len();
    let stride = n.div_ceil(coords).max(1);
    let (mut num, mut den) = (0.0f64, 0.0f64);
    let mut work = params.to_vec();
    for k in (0..n).step_by(stride) {
        let h = 1e-5 * (1.0 + x[k].abs());
        set(&mut work, k, x[k] + h);
        let fp = p.loss(&work, batch);
        set(&mut work, k, x[k] - h);
        let fm = p.loss(&work, batch);
        set(&mut work, k, x[k]);
        let fd = (fp - fm) / (2.0 * h);
        num += (fd - g[k]).powi(2);
        den += g[k].powi(2).max(fd * fd);
    }
    (num / den.max(1e-300)).sqrt()
}

/// `check_grad`, except for the CNN: over many images its ReLU kinks fall within a step of the
/// central difference, so it has its own check, sound across them (`models/cnn.rs`).
pub(crate) fn check_grad_named(name: &str, key: u64, p: &dyn Problem, params: &[Tensor], batch: Option<&[usize]>) -> f64 {
    crate::models::cnn_tests::check_grad_registered(name, key, params, batch).unwrap_or_else(|| check_grad(p, params, batch))
}

#[test]
fn gradients_match_finite_differences() {
    for name in all_names() {
        let p = by_name(&name).unwrap();
        assert_eq!(p.name(), name);
        assert_eq!(p.dim(), p.shapes().iter().map(|s| s.iter().product::<usize>()).sum::<usize>());
        for seed in 0..3u64 {
            let mut rng = Rng::derive(seed, "init");
            let mut params = p.init(&mut rng);
            // move away from the init so biases etc. are non-zero
            let mut r = Rng::derive(seed, "perturb");
            for t in params.iter_mut() {
                for v in t.data.iter_mut() {
                    *v += 0.3 * r.normal();
                }
            }
            let err = check_grad_named(&name, 0, p.as_ref(), &params, None);
            assert!(err < 1e-5, "{name} seed {seed}: full gradient rel err {err:e}");
            if let Some(n) = p.train_size() {
                let batch: Vec<usize> = (0..p.batch_size()).map(|_| r.below(n)).collect();
                let err = check_grad_named(&name, 0, p.as_ref(), &params, Some(&batch));
                assert!(err < 1e-5, "{name} seed {seed}: batch gradient rel err {err:e}");
            }
        }
    }
}

#[test]
fn known_minima() {
    let cases: Vec<(&str, Vec<Vec<f64>>)> = vec![
        ("rosenbrock-10", vec![vec![1.0; 10]]),
        ("rastrigin-10", vec![vec![0.0; 10]]),
        ("ackley-10", vec![vec![0.0; 10]]),
        ("beale-2", vec![vec![3.0, 0.5]]),
        ("styblinski-tang-10", vec![vec![-2.903_534_027_771_177; 10]]),
        ("quadratic-ill-50", vec![vec![0.0; 50]]),
        ("noisy-quadratic-50", vec![vec![0.0; 50]]),
    ];
    for (name, x) in cases {
        let p = by_name(name).unwrap();
        let params: Vec<Tensor> = x.into_iter().zip(p.shapes()).map(|(d, s)| Tensor::from_vec(&s, d)).collect();
        let l = p.loss(&params, None);
        assert!(l.abs() < 1e-9, "{name}: loss at minimum {l}");
        assert_eq!(p.optimum(), Some(0.0));
    }
}

#[test]
fn init_is_deterministic_and_seed_dependent() {
    for name in all_names() {
        let p = by_name(&name).unwrap();
        let a = p.init(&mut Rng::derive(5, "init"));
        let b = p.init(&mut Rng::derive(5, "init"));
        let c = p.init(&mut Rng::derive(6, "init"));
        assert_eq!(a, b, "{name}");
        assert_ne!(a, c, "{name}");
        let shapes: Vec<Vec<usize>> = a.iter().map(|t| t.shape.clone()).collect();
        assert_eq!(shapes, p.shapes(), "{name}");
        // the problem's fixed structure does not depend on construction
        let q = by_name(&name).unwrap();
        assert_eq!(p.loss(&a, None).to_bits(), q.loss(&a, None).to_bits(), "{name}");
    }
}

#[test]
fn datasets_parse_and_are_standardized() {
    let (tr, te) = data::breast_cancer();
    assert_eq!((tr.n, tr.d, tr.classes), (455, 30, 2));
    assert_eq!(te.n, 114);
    for j in 0..tr.d {
        let m: f64 = (0..tr.n).map(|i| tr.x[i * tr.d + j]).sum::<f64>() / tr.n as f64;
        assert!(m.abs() < 1e-12);
    }
    let (tr, te) = data::digits();
    assert_eq!((tr.n, tr.d, tr.classes, te.n), (1437, 64, 10, 360));
    let (tr, te) = data::wine();
    assert_eq!((tr.n, tr.d, tr.classes, te.n), (142, 13, 3, 36));
}

#[test]
fn noisy_quadratic_full_loss_is_noise_free() {
    let p = by_name("noisy-quadratic-50").unwrap();
    let x = p.init(&mut Rng::derive(1, "init"));
    let mut g = tensors_from_shapes(&p.shapes());
    let full = p.loss_grad(&x, None, &mut g);
    // the mean of the batch losses over every sample equals the noise-free loss
    let n = p.train_size().unwrap();
    let all: Vec<usize> = (0..n).collect();
    let via_batch = p.loss(&x, Some(&all));
    assert!((full - via_batch).abs() < 1e-9 * full.abs().max(1.0), "{full} {via_batch}");
}

/// A fingerprint of a problem at the init of seed 11: (weighted sum of the init, full loss,
/// weighted sum of the full gradient, batch loss, weighted sum of the batch gradient, test
/// accuracy), as f64 bits. -1 for a missing accuracy, 0 for no batch.
pub(crate) fn fingerprint(p: &dyn Problem) -> [u64; 6] {
    let wsum = |ts: &[Tensor]| -> f64 {
        ts.iter().flat_map(|t| t.data.iter()).enumerate().map(|(i, v)| v * (1.0 + i as f64 * 1e-3)).sum()
    };
    let x = p.init(&mut Rng::derive(11, "init"));
    let mut g = tensors_from_shapes(&p.shapes());
    let l = p.loss_grad(&x, None, &mut g);
    let gs = wsum(&g);
    let (lb, gbs) = match p.train_size() {
        Some(n) => {
            let mut r = Rng::derive(11, "batch");
            let b: Vec<usize> = (0..p.batch_size()).map(|_| r.below(n)).collect();
            let lb = p.loss_grad(&x, Some(&b), &mut g);
            (lb, wsum(&g))
        }
        None => (0.0, 0.0),
    };
    let ta = p.test_accuracy(&x).unwrap_or(-1.0);
    [wsum(&x), l, gs, lb, gbs, ta].map(f64::to_bits)
}

/// Recorded before problems got instances (commit 7b91ba3): key 0 must stay bit-identical.
const PINNED: &[(&str, u64, u64, u64, u64, u64, u64)] = &[
    ("rosenbrock-2", 0xbfd8f219cf613af8, 0x404e480a056dd3b2, 0xc080aceba4f08f46, 0x0, 0x0, 0xbff0000000000000),
    ("rosenbrock-10", 0xbff4dc31727a3284, 0x409da8053f8f0390, 0xc078e72e621d8428, 0x0, 0x0, 0xbff0000000000000),
    ("rosenbrock-50", 0xc014364abe1b941a, 0x40c840f25ce82b9c, 0x40a52b7e0245c477, 0x0, 0x0, 0xbff0000000000000),
    ("rastrigin-10", 0x401020d193bb617b, 0x405fd5aa0ae8b969, 0xc071f447dea77001, 0x0, 0x0, 0xbff0000000000000),
    ("ackley-10", 0x401020d193bb617b, 0x401d04886dc3a05a, 0xc0019003c5525f24, 0x0, 0x0, 0xbff0000000000000),
    ("beale-2", 0x3ff10872b190f48a, 0x4025ddb521d7c24e, 0xbff344acb211b7a0, 0x0, 0x0, 0xbff0000000000000),
    ("styblinski-tang-10", 0x401020d193bb617b, 0x40701cc79f172610, 0xc0320a3d74003d04, 0x0, 0x0, 0xbff0000000000000),
    ("quadratic-ill-50", 0x3fdade15fb903ce0, 0x40af013d0fa29eb1, 0x409321229acbd06d, 0x0, 0x0, 0xbff0000000000000),
    ("quadratic-ill-50-k1e5", 0x3fdade15fb903ce0, 0x410db48eb8d7a0ec, 0x40fde90cfb8bd4bc, 0x0, 0x0, 0xbff0000000000000),
    ("noisy-quadratic-50", 0x3fdade15fb903ce0, 0x404de2a4e80d51bc, 0x402262e6c9f3ae5a, 0x404f69d174d0685e, 0x401e973b81088b80, 0xbff0000000000000),
    ("logreg-breast-cancer", 0xbfcefdffe73b4407, 0x3fe9571193da1879, 0x401bc7700e9120db, 0x3fe7dce824079277, 0x4021ef1183f99201, 0x3fd7047dc11f7048),
    ("softmax-digits", 0x40073059ae1e8a54, 0x4003e8b451c79f3c, 0x3f5a78de28c224e8, 0x4004909f25ada3c8, 0x3f70bd77fd4d9750, 0x3fb60b60b60b60b6),
    ("mlp-digits", 0x3fed970cb82f643f, 0x40046d3cd071e3a1, 0x3feaa911bdc8f308, 0x40043d599802a9de, 0xc000c1382b9728df, 0x3fb82d82d82d82d8),
    ("mlp-wine", 0x4027df203d7dc117, 0x3ff3f08b63ca5850, 0x3ff8a1220c3817c4, 0x3ff3824681103bba, 0x3fed4b0dee25c06e, 0x3fd0000000000000),
    ("softmax-mnist1d", 0x400d89c9082cf392, 0x4003e1ab317c7d8a, 0x3f8bf117fd6d4db8, 0x4004772b56485178, 0x3f867a9b648993fc, 0x3fba1cac083126e9),
    ("mlp-mnist1d", 0x402a2f56ed5cdfa8, 0x40043409cf2d61d5, 0xbfcf3ff1a49e0afa, 0x4004997d8f6cfc9e, 0x3fe71dc594562b11, 0x3fb89374bc6a7efa),
    ("rosenbrock-30", 0xc0068fd91550ca60, 0x40bc2f2cab13538a, 0x409b804144522b81, 0x0, 0x0, 0xbff0000000000000),
    ("rastrigin-20", 0x3faa994602c05556, 0x406e5052a29f3a1b, 0xc077700a723c355a, 0x0, 0x0, 0xbff0000000000000),
    ("ackley-30", 0xbffedfd7edcf6807, 0x401c9acdd5ab3938, 0xbffe01f6559205c1, 0x0, 0x0, 0xbff0000000000000),
    ("styblinski-tang-20", 0x3faa994602c05556, 0x407ee6997d58fed7, 0x4044902b29d5c8d3, 0x0, 0x0, 0xbff0000000000000),
    ("quadratic-ill-100-k1e4", 0xc014af1b15362def, 0x40e5f71df73d61d4, 0x40c3f054604f9f98, 0x0, 0x0, 0xbff0000000000000),
    ("noisy-quadratic-100", 0xc014af1b15362def, 0x40555dcadbeeea7d, 0xc0384a99f3e628f9, 0x4053fc2e43a5312d, 0xc031b1ad1a84e3a5, 0xbff0000000000000),
    ("softmax-wine", 0x3fe5da61db42036f, 0x3ff1757b5a2a5a73, 0x3f6398451a9ee90c, 0x3ff36d4edc9a94a6, 0x3f6181989a3202c8, 0x3fe5555555555555),
    // the neural-network workloads (issue 14), recorded when they were added
    ("transformer-grammar", 0x4074dc931163f644, 0x4007d3417bbd7299, 0x3ff5c5dcb360b76a, 0x400800075e50c3ec, 0x3ffa3a72e28478e9, 0x3faae00000000000),
    ("grokking-mod-add-31", 0xc04ca737434a1c9a, 0x400ddb8ada79c107, 0xbfd586e310f63ff8, 0x0, 0x0, 0x3fa2cee3c9aa5181),
    ("grokking-mod-sub-37", 0xc0436968c4f01b51, 0x400fa345cf7571d8, 0xbfc5ca44e23f37b8, 0x0, 0x0, 0x3f9489e70f676d4c),
    ("transformer-grammar-d24", 0x4077742e70a5c0f1, 0x4007bf6cabc0e3a9, 0x4002458b5f4f7419, 0x4007e660878be341, 0x4004d69c80f7865d, 0x3fab4ccccccccccd),
    ("cnn-digits", 0x401c62e5a520101e, 0x4002800458a032c6, 0x3fe2bb652e35690d, 0x4002959f6c27da38, 0x4005a9fee888f2e1, 0x3fb60b60b60b60b6),
    ("cnn-digits-c4", 0x400971864c3736d9, 0x4002b607e07367ab, 0xbfb01b6617756e86, 0x40031ea7001414e6, 0x3fd41a3bd462e168, 0x3fb5555555555555),
];

#[test]
fn canonical_problems_and_key_0_instances_match_the_pinned_fingerprints_bit_for_bit() {
    assert_eq!(PINNED.len(), all_names().len());
    for &(name, a, b, c, d, e, f) in PINNED {
        let want = [a, b, c, d, e, f];
        let got = fingerprint(by_name(name).unwrap().as_ref());
        assert_eq!(got, want, "{name}: by_name; got {}", got.map(|v| format!("{v:#x}")).join(", "));
        assert_eq!(fingerprint(instance(name, 0).unwrap().as_ref()), want, "{name}: instance(name, 0)");
    }
}

#[test]
fn every_problem_without_data_reports_a_minimizer_where_the_optimum_is_attained() {
    for e in PROBLEMS {
        let p = by_name(e.name).unwrap();
        if p.has_data() {
            assert!(p.minimizer().is_none(), "{}", e.name);
            continue;
        }
        let x = p.minimizer().unwrap_or_else(|| panic!("{}: no minimizer", e.name));
        let shapes: Vec<Vec<usize>> = x.iter().map(|t| t.shape.clone()).collect();
        assert_eq!(shapes, p.shapes(), "{}", e.name);
        let mut g = tensors_from_shapes(&p.shapes());
        let l = p.loss_grad(&x, None, &mut g);
        assert!((l - p.optimum().unwrap()).abs() < 1e-10, "{}: loss at minimizer {l}", e.name);
        let gn = flat(&g).iter().map(|v| v * v).sum::<f64>().sqrt();
        assert!(gn < 1e-9, "{}: gradient at minimizer {gn:e}", e.name);
    }
}

#[test]
fn registry_names_are_unique_and_every_entry_has_a_family() {
    let mut names = all_names();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), PROBLEMS.len());
    for e in PROBLEMS {
        assert!(!e.family.is_empty() && e.name.starts_with(e.family.split('-').next().unwrap()), "{}", e.name);
        assert_eq!(entry(e.name).unwrap().name, e.name);
    }
    assert!(by_name("no-such-problem").is_none() && instance("no-such-problem", 3).is_none());
}
