use super::*;
use crate::requant::{multiply_by_quantized_multiplier as mbqm, quantize_multiplier};

/// Small deterministic PRNG for the tests.
pub(crate) struct Rng(u64);
impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub(crate) fn f32(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next() >> 40) as f32 / (1u64 << 24) as f32)
    }
}

/// Random broadcast-compatible shape pairs, including rank mismatch, size-1 dims and scalars.
fn shape_pairs(rng: &mut Rng) -> Vec<(Vec<usize>, Vec<usize>)> {
    let mut v: Vec<(Vec<usize>, Vec<usize>)> = vec![
        (vec![], vec![]),
        (vec![1], vec![]),
        (vec![37], vec![37]),
        (vec![2, 5, 7, 3], vec![3]),
        (vec![3], vec![2, 5, 7, 3]),
        (vec![1, 4, 4, 16], vec![1, 1, 1, 16]),
        (vec![1, 4, 4, 16], vec![]),
        (vec![5, 1], vec![1, 9]),
        (vec![2, 1, 3, 1, 2, 3], vec![1, 4, 1, 5, 1, 3]),
        (vec![1, 1, 1], vec![1]),
        (vec![1, 8, 8, 67], vec![1, 8, 8, 67]),
        (vec![2, 0, 3], vec![3]),
        (vec![1, 3, 1, 33], vec![1, 1, 6, 1]),
    ];
    for _ in 0..30 {
        let rank = rng.below(7);
        let full: Vec<usize> = (0..rank).map(|_| 1 + rng.below(6)).collect();
        let mk = |rng: &mut Rng| {
            let drop = rng.below(rank + 1);
            full[drop..]
                .iter()
                .map(|&d| if rng.below(3) == 0 { 1 } else { d })
                .collect::<Vec<_>>()
        };
        let a = mk(rng);
        let b = mk(rng);
        v.push((a, b));
    }
    v
}

fn tiers() -> Vec<Isa> {
    #[allow(unused_mut)]
    let mut t = vec![Isa::Scalar];
    #[cfg(target_arch = "x86_64")]
    for i in [Isa::Avx2, Isa::Avx512Vnni] {
        if i <= Isa::active() && Isa::detected() >= i {
            t.push(i);
        }
    }
    t
}

const OPS: [BinaryOp; 7] = [
    BinaryOp::Add,
    BinaryOp::Sub,
    BinaryOp::Mul,
    BinaryOp::Div,
    BinaryOp::Maximum,
    BinaryOp::Minimum,
    BinaryOp::SquaredDifference,
];

#[test]
fn f32_matches_reference_on_random_broadcasts() {
    let mut rng = Rng::new(1);
    for (sa, sb) in shape_pairs(&mut rng) {
        let plan = BroadcastPlan::new("TEST", &sa, &sb).unwrap();
        let a: Vec<f32> = (0..sa.iter().product::<usize>())
            .map(|_| rng.f32(-4.0, 4.0))
            .collect();
        let b: Vec<f32> = (0..sb.iter().product::<usize>())
            .map(|_| rng.f32(0.5, 3.0))
            .collect();
        for op in OPS {
            for act in [Activation::None, Activation::Relu6] {
                let r = activation_range_f32(act);
                let mut want = vec![0.0; plan.len()];
                reference_binary_f32(op, r, &sa, &a, &sb, &b, &mut want);
                for isa in tiers() {
                    let k = ElementwiseKernels::for_isa(isa);
                    let mut got = vec![f32::NAN; plan.len()];
                    // Whole output, then in two sub-ranges as threads would.
                    (k.binary_f32.1)(op, r, &plan, &a, &b, &mut got, 0);
                    assert_first_eq(
                        &got,
                        &want,
                        &format!("{} {op:?} {sa:?}∘{sb:?} {act:?}", k.binary_f32.0),
                    );
                    let mid = plan.len() / 2 + 1;
                    if mid < plan.len() {
                        let mut got2 = vec![f32::NAN; plan.len()];
                        let (lo, hi) = got2.split_at_mut(mid);
                        (k.binary_f32.1)(op, r, &plan, &a, &b, lo, 0);
                        (k.binary_f32.1)(op, r, &plan, &a, &b, hi, mid);
                        assert_first_eq(
                            &got2,
                            &want,
                            &format!("{} {op:?} {sa:?}∘{sb:?} split", k.binary_f32.0),
                        );
                    }
                }
            }
        }
    }
}

pub(crate) fn assert_first_eq<T: PartialEq + std::fmt::Debug>(got: &[T], want: &[T], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
        panic!(
            "{what}: first difference at element {i}: got {:?}, want {:?}",
            got[i], want[i]
        );
    }
}

/// TFLite's reference arithmetic, written out independently of `apply_q` from add.cc/sub.cc/
/// mul.cc/squared_difference.cc and reference_ops / reference_integer_ops.
#[allow(clippy::too_many_arguments)]
fn tflite_reference_q(
    op: BinaryOp,
    q1: QParams,
    q2: QParams,
    qo: QParams,
    lo: i32,
    hi: i32,
    x: i32,
    y: i32,
) -> i32 {
    let smaller = |m: f64| quantize_multiplier(m);
    match op {
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::SquaredDifference => {
            let ls = if op == BinaryOp::SquaredDifference {
                7
            } else {
                20
            };
            let twice = 2.0 * (q1.scale.max(q2.scale) as f64);
            let (m1, s1) = smaller(q1.scale as f64 / twice);
            let (m2, s2) = smaller(q2.scale as f64 / twice);
            let ro = if op == BinaryOp::SquaredDifference {
                twice * twice / ((1i64 << 14) as f64 * qo.scale as f64)
            } else {
                twice / ((1i64 << 20) as f64 * qo.scale as f64)
            };
            let (mo, so) = smaller(ro);
            let a = mbqm((x - q1.zero_point) * (1 << ls), m1, s1);
            let b = mbqm((y - q2.zero_point) * (1 << ls), m2, s2);
            let raw = match op {
                BinaryOp::Add => a + b,
                BinaryOp::Sub => a - b,
                _ => (a - b) * (a - b),
            };
            (mbqm(raw, mo, so) + qo.zero_point).clamp(lo, hi)
        }
        BinaryOp::Mul => {
            let (mo, so) = quantize_multiplier((q1.scale * q2.scale / qo.scale) as f64);
            (mbqm((x - q1.zero_point) * (y - q2.zero_point), mo, so) + qo.zero_point).clamp(lo, hi)
        }
        BinaryOp::Maximum => x.max(y),
        BinaryOp::Minimum => x.min(y),
        BinaryOp::Div => unreachable!(),
    }
}

fn check_q<T: QInt>(
    rng: &mut Rng,
    kernel: fn(&ElementwiseKernels) -> (&'static str, BinaryQFn<T>),
) {
    let ops = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::SquaredDifference,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
    ];
    for (sa, sb) in shape_pairs(rng) {
        let plan = BroadcastPlan::new("TEST", &sa, &sb).unwrap();
        let rand_q = |rng: &mut Rng| -> T { T::from_i32(T::MIN + rng.below(256) as i32) };
        let a: Vec<T> = (0..sa.iter().product::<usize>())
            .map(|_| rand_q(rng))
            .collect();
        let b: Vec<T> = (0..sb.iter().product::<usize>())
            .map(|_| rand_q(rng))
            .collect();
        for op in ops {
            let zp = |rng: &mut Rng| T::MIN + rng.below(256) as i32;
            let (q1, q2, qo) = if matches!(op, BinaryOp::Maximum | BinaryOp::Minimum) {
                let q = QParams::new(rng.f32(0.01, 0.1), zp(rng));
                (q, q, q)
            } else {
                (
                    QParams::new(rng.f32(0.005, 0.1), zp(rng)),
                    QParams::new(rng.f32(0.005, 0.1), zp(rng)),
                    QParams::new(rng.f32(0.01, 0.3), zp(rng)),
                )
            };
            let act = [Activation::None, Activation::Relu, Activation::Relu6][rng.below(3)];
            let p = prepare_binary_q::<T>(op, q1, q2, qo, act).unwrap();
            let (lo, hi) = (p.act_min, p.act_max);
            let want: Vec<T> = (0..plan.len())
                .map(|i| {
                    let (ia, ib) = reference_offsets(&sa, &sb, i);
                    T::from_i32(tflite_reference_q(
                        op,
                        q1,
                        q2,
                        qo,
                        lo,
                        hi,
                        a[ia].to_i32(),
                        b[ib].to_i32(),
                    ))
                })
                .collect();
            for isa in tiers() {
                let (name, f) = kernel(&ElementwiseKernels::for_isa(isa));
                let mut got = vec![T::from_i32(0); plan.len()];
                f(&p, &plan, &a, &b, &mut got, 0);
                assert_first_eq(
                    &got,
                    &want,
                    &format!("{name} {op:?} {sa:?}∘{sb:?} {q1:?} {q2:?} {qo:?}"),
                );
            }
        }
    }
}

#[test]
fn int8_matches_tflite_reference() {
    check_q::<i8>(&mut Rng::new(2), |k| k.binary_i8);
}

#[test]
fn uint8_matches_tflite_reference() {
    check_q::<u8>(&mut Rng::new(3), |k| k.binary_u8);
}

#[test]
fn quantized_add_tracks_float() {
    // A sanity check of the formulas themselves: within one step of the real sum.
    let (q1, q2, qo) = (
        QParams::new(0.05, -3),
        QParams::new(0.02, 10),
        QParams::new(0.08, 5),
    );
    let p = prepare_binary_q::<i8>(BinaryOp::Add, q1, q2, qo, Activation::None).unwrap();
    let pm = prepare_binary_q::<i8>(
        BinaryOp::Mul,
        q1,
        q2,
        QParams::new(0.1, 0),
        Activation::None,
    )
    .unwrap();
    for x in -128..128 {
        for y in (-128..128).step_by(7) {
            let real = 0.05 * (x + 3) as f32 + 0.02 * (y - 10) as f32;
            let want = ((real / 0.08).round() as i32 + 5).clamp(-128, 127);
            let got = apply_q(&p, x, y);
            assert!((got - want).abs() <= 1, "add {x} {y}: {got} vs {want}");
            let real = 0.05 * (x + 3) as f32 * 0.02 * (y - 10) as f32;
            let want = ((real / 0.1).round() as i32).clamp(-128, 127);
            assert!((apply_q(&pm, x, y) - want).abs() <= 1, "mul {x} {y}");
        }
    }
}

#[test]
fn prepare_rejects_bad_quantization() {
    let ok = QParams::new(0.1, 0);
    assert!(prepare_binary_q::<i8>(
        BinaryOp::Add,
        QParams::new(0.0, 0),
        ok,
        ok,
        Activation::None
    )
    .is_err());
    assert!(prepare_binary_q::<i8>(
        BinaryOp::Add,
        QParams::new(f32::NAN, 0),
        ok,
        ok,
        Activation::None
    )
    .is_err());
    assert!(prepare_binary_q::<i8>(
        BinaryOp::Add,
        QParams::new(0.1, 200),
        ok,
        ok,
        Activation::None
    )
    .is_err());
    assert!(prepare_binary_q::<u8>(
        BinaryOp::Add,
        QParams::new(0.1, -1),
        ok,
        QParams::new(0.1, 0),
        Activation::None
    )
    .is_err());
    assert!(prepare_binary_q::<i8>(BinaryOp::Div, ok, ok, ok, Activation::None).is_err());
}

#[test]
fn dispatch_uses_simd_on_capable_hosts() {
    #[cfg(target_arch = "x86_64")]
    if Isa::active() >= Isa::Avx2 && Isa::active() <= Isa::Avx512Vnni {
        assert!(!ElementwiseKernels::get()
            .binary_f32
            .0
            .starts_with("generic"));
    }
}

#[test]
fn lut8_kernels_equal_scalar() {
    let mut rng = Rng::new(4);
    let mut table = [0u8; 256];
    for t in table.iter_mut() {
        *t = rng.next() as u8;
    }
    for n in [0usize, 1, 63, 64, 65, 127, 128, 200, 1000] {
        let x: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
        let want: Vec<u8> = x.iter().map(|&v| table[v as usize]).collect();
        for isa in tiers() {
            let k = ElementwiseKernels::for_isa(isa);
            let mut got = vec![0u8; n];
            (k.lut8.1)(&table, &x, &mut got);
            assert_first_eq(&got, &want, &format!("{} n={n}", k.lut8.0));
        }
    }
}

#[test]
fn quantized_kernels_exact_on_all_code_pairs_and_extreme_scales() {
    // Every (x, y) pair, as a [256, 256] broadcast of [256, 1] and [256], for multipliers from
    // tiny (large right shifts) to large (left shifts), against the scalar definition.
    let x: Vec<i8> = (-128..128).map(|v| v as i8).collect();
    let plan = BroadcastPlan::new("TEST", &[256, 1], &[256]).unwrap();
    let scales = [
        (0.5f32, 0.01f32, 0.001f32),
        (0.001, 0.002, 0.5),
        (1e-4, 3e-4, 2e-5),
        (2.0, 0.7, 0.03),
    ];
    for (s1, s2, so) in scales {
        for op in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul] {
            let p = prepare_binary_q::<i8>(
                op,
                QParams::new(s1, 5),
                QParams::new(s2, -9),
                QParams::new(so, 3),
                Activation::None,
            )
            .unwrap();
            let want: Vec<i8> = (0..65536)
                .map(|i| apply_q(&p, x[i / 256] as i32, x[i % 256] as i32) as i8)
                .collect();
            for isa in tiers() {
                let k = ElementwiseKernels::for_isa(isa);
                let mut got = vec![0i8; 65536];
                (k.binary_i8.1)(&p, &plan, &x, &x, &mut got, 0);
                assert_first_eq(
                    &got,
                    &want,
                    &format!("{} {op:?} scales {s1} {s2} {so}", k.binary_i8.0),
                );
                // Same-shape runs too.
                let a: Vec<i8> = (0..65536).map(|i| x[i / 256]).collect();
                let b: Vec<i8> = (0..65536).map(|i| x[i % 256]).collect();
                let flat = BroadcastPlan::new("TEST", &[65536], &[65536]).unwrap();
                (k.binary_i8.1)(&p, &flat, &a, &b, &mut got, 0);
                assert_first_eq(&got, &want, &format!("{} {op:?} same-shape", k.binary_i8.0));
            }
        }
    }
}

#[test]
fn scalar_operand_tables_equal_the_kernels() {
    // Every code against a scalar, the scalar on either side, through the byte table and
    // through the broadcasting kernels.
    let mut rng = Rng::new(11);
    for op in [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::SquaredDifference,
    ] {
        for _ in 0..6 {
            let zp = |rng: &mut Rng| -128 + rng.below(256) as i32;
            let p = prepare_binary_q::<i8>(
                op,
                QParams::new(rng.f32(0.005, 0.1), zp(&mut rng)),
                QParams::new(rng.f32(0.005, 0.1), zp(&mut rng)),
                QParams::new(rng.f32(0.01, 0.3), zp(&mut rng)),
                Activation::Relu6,
            )
            .unwrap();
            let x: Vec<i8> = (-128..128).map(|v| v as i8).collect();
            let s = [(rng.below(256) as i32 - 128) as i8];
            for scalar_first in [false, true] {
                let table = binary_q_table::<i8>(&p, s[0], scalar_first);
                let mut got = vec![0u8; 256];
                lut8(&table, bytemuck::cast_slice(&x), &mut got);
                let mut want = vec![0i8; 256];
                if scalar_first {
                    let plan = BroadcastPlan::new("TEST", &[1], &[256]).unwrap();
                    binary_i8(&p, &plan, &s, &x, &mut want, 0);
                } else {
                    let plan = BroadcastPlan::new("TEST", &[256], &[1]).unwrap();
                    binary_i8(&p, &plan, &x, &s, &mut want, 0);
                }
                let want: Vec<u8> = want.iter().map(|&v| v as u8).collect();
                assert_first_eq(
                    &got,
                    &want,
                    &format!("{op:?} scalar_first {scalar_first} {p:?}"),
                );
            }
        }
    }
}

#[test]
fn quantized_kernels_equal_on_any_output_split() {
    // Threads hand each kernel call an output sub-range: any split must give the whole call's
    // bytes (per-channel vectors whose rows straddle a split included).
    let mut rng = Rng::new(12);
    let shapes: [(&[usize], &[usize]); 5] = [
        (&[1, 9, 7, 16], &[16]),
        (&[37], &[3, 37]),
        (&[2, 5, 5, 67], &[1, 1, 1, 67]),
        (&[1, 6, 6, 24], &[1, 6, 6, 24]),
        (&[4, 1, 9], &[4, 5, 1]),
    ];
    for (sa, sb) in shapes {
        let plan = BroadcastPlan::new("TEST", sa, sb).unwrap();
        let (na, nb) = plan.operand_lens();
        let a: Vec<i8> = (0..na).map(|_| rng.next() as i8).collect();
        let b: Vec<i8> = (0..nb).map(|_| rng.next() as i8).collect();
        for op in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul] {
            let p = prepare_binary_q::<i8>(
                op,
                QParams::new(0.04, -3),
                QParams::new(0.09, 11),
                QParams::new(0.11, 2),
                Activation::None,
            )
            .unwrap();
            let n = plan.len();
            let want: Vec<i8> = (0..n)
                .map(|i| {
                    let (ia, ib) = reference_offsets(sa, sb, i);
                    apply_q(&p, a[ia] as i32, b[ib] as i32) as i8
                })
                .collect();
            for isa in tiers() {
                let k = ElementwiseKernels::for_isa(isa);
                let mut cuts = vec![0, n, rng.below(n + 1), rng.below(n + 1), 5.min(n)];
                cuts.sort_unstable();
                let mut got = vec![0i8; n];
                for w in cuts.windows(2) {
                    (k.binary_i8.1)(&p, &plan, &a, &b, &mut got[w[0]..w[1]], w[0]);
                }
                assert_first_eq(
                    &got,
                    &want,
                    &format!("{} {op:?} {sa:?}∘{sb:?} cuts {cuts:?}", k.binary_i8.0),
                );
            }
        }
    }
}
