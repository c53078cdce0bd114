#![allow(clippy::needless_range_loop)]
use super::*;
use crate::elementwise::{reference_offsets, QInt};
use crate::requant::quantize_multiplier;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn f32(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next() >> 40) as f32 / (1u64 << 24) as f32)
    }
}

fn all_codes<T: QInt>() -> Vec<T> {
    (T::MIN..=T::MAX).map(T::from_i32).collect()
}

#[test]
fn f32_unary_simd_equals_scalar() {
    let mut rng = Rng(7);
    for n in [0usize, 1, 7, 8, 15, 16, 17, 33, 1000] {
        let x: Vec<f32> = (0..n).map(|_| rng.f32(-12.0, 12.0)).collect();
        for op in [
            UnaryF32::Relu,
            UnaryF32::Relu6,
            UnaryF32::ReluN1To1,
            UnaryF32::LeakyRelu(0.2),
            UnaryF32::HardSwish,
            UnaryF32::Logistic,
            UnaryF32::Tanh,
        ] {
            let mut got = vec![f32::NAN; n];
            unary_f32(op, &x, &mut got);
            let mut scalar = vec![f32::NAN; n];
            unary_f32_scalar(op, &x, &mut scalar);
            for i in 0..n {
                assert_eq!(
                    got[i].to_bits(),
                    scalar[i].to_bits(),
                    "{op:?} n={n}: SIMD vs scalar at {i} (x={})",
                    x[i]
                );
                let want = reference_unary_f32(op, x[i]);
                let tol = if matches!(op, UnaryF32::Logistic | UnaryF32::Tanh) {
                    3e-7 * want.abs().max(1e-3)
                } else {
                    0.0
                };
                assert!(
                    (got[i] - want).abs() <= tol,
                    "{op:?}: element {i} (x={}): {} vs libm {}",
                    x[i],
                    got[i],
                    want
                );
            }
        }
    }
    // Dense sweep of the transcendental ones against libm.
    for i in -200_000..200_000 {
        let x = i as f32 * 1e-4;
        let l = logistic_f32_fast(x);
        let lw = reference_unary_f32(UnaryF32::Logistic, x);
        assert!(
            (l - lw).abs() <= 3e-7 * lw + 1e-12,
            "logistic({x}) = {l}, libm {lw}"
        );
        let t = tanh_f32_fast(x);
        let tw = x.tanh();
        assert!(
            (t - tw).abs() <= 3e-7 * tw.abs().max(1e-3),
            "tanh({x}) = {t}, libm {tw}"
        );
    }
    for x in [-100.0f32, -87.5, -20.0, 20.0, 88.5, 100.0] {
        assert!(exp_f32_fast(x).is_finite());
        assert!((logistic_f32_fast(x) - reference_unary_f32(UnaryF32::Logistic, x)).abs() < 1e-7);
        assert!((tanh_f32_fast(x) - x.tanh()).abs() < 1e-7);
    }
    assert_eq!(
        reference_unary_f32(UnaryF32::HardSwish, 1.0),
        1.0 * 4.0 / 6.0
    );
    assert!((reference_unary_f32(UnaryF32::Logistic, 0.5) - 0.622_459_3).abs() < 1e-6);
}

/// ReLU written from scratch from `QuantizedReluX` (no shared helpers).
fn relu_by_hand<T: QInt>(lo: f32, hi: f32, i: QParams, o: QParams, x: i32) -> i32 {
    let (m, s) = quantize_multiplier((i.scale / o.scale) as f64);
    let amin = T::MIN.max(o.zero_point + (lo / o.scale).round() as i32);
    let amax = if hi.is_infinite() {
        T::MAX
    } else {
        T::MAX.min(o.zero_point + (hi / o.scale).round() as i32)
    };
    (o.zero_point + crate::requant::multiply_by_quantized_multiplier(x - i.zero_point, m, s))
        .clamp(amin, amax)
}

fn check_relu<T: QInt>() {
    let mut rng = Rng(11);
    for _ in 0..50 {
        let i = QParams::new(rng.f32(0.01, 0.2), T::MIN + rng.below(256) as i32);
        let o = QParams::new(rng.f32(0.01, 0.2), T::MIN + rng.below(256) as i32);
        for (kind, lo, hi) in [
            (ReluKind::Relu, 0.0, f32::INFINITY),
            (ReluKind::Relu6, 0.0, 6.0),
            (ReluKind::ReluN1To1, -1.0, 1.0),
        ] {
            let lut = prepare_relu_q::<T>(kind, i, o).unwrap();
            let x = all_codes::<T>();
            let mut got = vec![T::from_i32(0); 256];
            lut.apply(&x, &mut got);
            for (k, &v) in x.iter().enumerate() {
                let want = T::from_i32(relu_by_hand::<T>(lo, hi, i, o, v.to_i32()));
                assert_eq!(got[k], want, "{kind:?} {i:?}->{o:?} at input {v:?}");
            }
        }
    }
}

#[test]
fn relu_family_matches_reference() {
    check_relu::<i8>();
    check_relu::<u8>();
}

#[test]
fn quantized_activations_track_float() {
    // The integer algorithms are within a step or two of the real function.
    let i = QParams::new(0.05, 3);
    let o = QParams::new(0.04, -20);
    let cases: Vec<(UnaryF32, Lut8<i8>, f32)> = vec![
        (
            UnaryF32::HardSwish,
            prepare_hard_swish_q::<i8>(i, o).unwrap(),
            1.5,
        ),
        (
            UnaryF32::LeakyRelu(0.1),
            prepare_leaky_relu_q::<i8>(0.1, i, o).unwrap(),
            1.0,
        ),
        (
            UnaryF32::Relu6,
            prepare_relu_q::<i8>(ReluKind::Relu6, i, o).unwrap(),
            1.0,
        ),
        (
            UnaryF32::Tanh,
            prepare_tanh_q::<i8>(i, QParams::new(1.0 / 128.0, 0)).unwrap(),
            0.5,
        ),
        (
            UnaryF32::Logistic,
            prepare_logistic_q::<i8>(i, QParams::new(1.0 / 256.0, -128)).unwrap(),
            0.5,
        ),
    ];
    for (op, lut, tol) in cases {
        let oq = match op {
            UnaryF32::Tanh => QParams::new(1.0 / 128.0, 0),
            UnaryF32::Logistic => QParams::new(1.0 / 256.0, -128),
            _ => o,
        };
        for q in -128..128 {
            let real = reference_unary_f32(op, i.scale * (q - i.zero_point) as f32);
            let want = ((real / oq.scale).round() as i32 + oq.zero_point).clamp(-128, 127);
            let got = lut.get(q as i8) as i32;
            assert!(
                ((got - want) as f32).abs() <= tol + 0.5,
                "{op:?} at {q}: {got} vs {want}"
            );
        }
    }
}

#[test]
fn hard_swish_rejects_huge_ratio() {
    assert!(prepare_hard_swish_q::<i8>(QParams::new(200.0, 0), QParams::new(1.0, 0)).is_err());
    assert!(prepare_logistic_q::<i8>(QParams::new(0.1, 0), QParams::new(0.1, 0)).is_err());
    assert!(prepare_softmax_q::<i8>(1.0, QParams::new(0.1, 0), QParams::new(0.1, 0)).is_err());
}

#[test]
fn prelu_matches_reference_on_broadcasts() {
    let mut rng = Rng(5);
    let shapes: [(&[usize], &[usize]); 4] = [
        (&[1, 4, 4, 8], &[8]),
        (&[1, 3, 5, 2], &[1, 1, 2]),
        (&[2, 3], &[2, 3]),
        (&[3, 7], &[]),
    ];
    for (xs, als) in shapes {
        let plan = BroadcastPlan::new("PRELU", xs, als).unwrap();
        let n: usize = xs.iter().product();
        let na: usize = als.iter().product();
        let x: Vec<i8> = (0..n)
            .map(|_| (rng.below(256) as i32 - 128) as i8)
            .collect();
        let a: Vec<i8> = (0..na)
            .map(|_| (rng.below(256) as i32 - 128) as i8)
            .collect();
        let (qi, qa, qo) = (
            QParams::new(0.03, -5),
            QParams::new(0.01, 7),
            QParams::new(0.05, 2),
        );
        let p = prepare_prelu_q::<i8>(qi, qa, qo).unwrap();
        let mut got = vec![0i8; n];
        prelu_q(&p, &plan, &x, &a, &mut got, 0);
        let (m1, s1) = quantize_multiplier((0.03f32 / 0.05f32) as f64);
        let (m2, s2) = quantize_multiplier((0.03f32 * 0.01f32 / 0.05f32) as f64);
        for i in 0..n {
            let (ix, ia) = reference_offsets(xs, als, i);
            let v = x[ix] as i32 + 5;
            let r = if v >= 0 {
                crate::requant::multiply_by_quantized_multiplier(v, m1, s1)
            } else {
                crate::requant::multiply_by_quantized_multiplier(v * (a[ia] as i32 - 7), m2, s2)
            };
            assert_eq!(
                got[i] as i32,
                (r + 2).clamp(-128, 127),
                "PRELU {xs:?}/{als:?} element {i}"
            );
        }
        // f32 path.
        let xf: Vec<f32> = x.iter().map(|&v| v as f32 * 0.1).collect();
        let af: Vec<f32> = a.iter().map(|&v| v as f32 * 0.01).collect();
        let mut gf = vec![0.0; n];
        prelu_f32(&plan, &xf, &af, &mut gf, 0);
        for i in 0..n {
            let (ix, ia) = reference_offsets(xs, als, i);
            let want = if xf[ix] >= 0.0 {
                xf[ix]
            } else {
                xf[ix] * af[ia]
            };
            assert_eq!(gf[i], want, "PRELU f32 element {i}");
        }
    }
}

#[test]
fn softmax_q_matches_reference_and_float() {
    let mut rng = Rng(9);
    for &(depth, rows) in &[(1usize, 3usize), (10, 4), (37, 2), (1000, 1)] {
        for beta in [1.0f32, 0.5] {
            let qi = QParams::new(rng.f32(0.02, 0.3), rng.below(40) as i32 - 20);
            let p = prepare_softmax_q::<i8>(beta, qi, QParams::new(1.0 / 256.0, -128)).unwrap();
            let x: Vec<i8> = (0..depth * rows)
                .map(|_| (rng.below(256) as i32 - 128) as i8)
                .collect();
            let mut got = vec![0i8; x.len()];
            let mut want = vec![0i8; x.len()];
            softmax_q(&p, &x, &mut got, depth);
            reference_softmax_q(&p, &x, &mut want, depth);
            crate::elementwise::tests_support::assert_first_eq(
                &got,
                &want,
                &format!("softmax depth {depth}"),
            );
            let xf: Vec<f32> = x
                .iter()
                .map(|&v| qi.scale * (v as i32 - qi.zero_point) as f32)
                .collect();
            let mut f = vec![0.0; x.len()];
            softmax_f32(&xf, &mut f, depth, beta);
            for i in 0..x.len() {
                let real = (got[i] as i32 + 128) as f32 / 256.0;
                assert!(
                    (real - f[i]).abs() <= 1.5 / 256.0,
                    "softmax {depth}: {real} vs {} at {i}",
                    f[i]
                );
            }
        }
    }
    // uint8
    let qi = QParams::new(0.1, 128);
    let p = prepare_softmax_q::<u8>(1.0, qi, QParams::new(1.0 / 256.0, 0)).unwrap();
    let x: Vec<u8> = (0..40).map(|v| (v * 6) as u8).collect();
    let (mut got, mut want) = (vec![0u8; 40], vec![0u8; 40]);
    softmax_q(&p, &x, &mut got, 20);
    reference_softmax_q(&p, &x, &mut want, 20);
    assert_eq!(got, want);
}

#[test]
fn log_softmax_f32_is_log_of_softmax() {
    let x: Vec<f32> = (0..24).map(|v| (v as f32 * 0.37).sin() * 3.0).collect();
    let (mut s, mut l) = (vec![0.0; 24], vec![0.0; 24]);
    softmax_f32(&x, &mut s, 8, 1.0);
    log_softmax_f32(&x, &mut l, 8);
    for i in 0..24 {
        assert!((s[i].ln() - l[i]).abs() < 1e-5, "element {i}");
    }
}
