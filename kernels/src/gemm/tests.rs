//! Every GEMM kernel that can run here against the reference, on hard shapes.

use super::*;
use crate::dispatch::{f32_gemm_candidates, i8_gemm_candidates};
use crate::reference;

/// splitmix64: a tiny deterministic generator (no dependencies, reproducible failures).
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub(crate) fn range(&mut self, lo: i32, hi: i32) -> i32 {
        lo + (self.next() % (hi - lo + 1) as u64) as i32
    }
    pub(crate) fn f32(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
}

const DIMS: &[usize] = &[
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 24, 31, 32, 33, 40, 56, 63, 64, 65,
    100, 255, 1000,
];

/// A random shape with M·N·K bounded so the reference stays fast in the test profile.
fn shape(rng: &mut Rng) -> (usize, usize, usize) {
    loop {
        let (m, n, k) = (
            DIMS[rng.below(DIMS.len())],
            DIMS[rng.below(DIMS.len())],
            DIMS[rng.below(DIMS.len())],
        );
        if m * n * k <= 300_000 {
            return (m, n, k);
        }
    }
}

fn bytes<T: Q8>(rng: &mut Rng, len: usize) -> Vec<T> {
    (0..len)
        .map(|_| T::from_i32(rng.range(T::MIN, T::MAX)))
        .collect()
}

#[derive(Debug, Clone, Copy)]
struct Case {
    m: usize,
    n: usize,
    k: usize,
    a_stride: usize,
    c_stride: usize,
    a_zp: i32,
    w_zp: i32,
    per_channel: bool,
    /// Every requant multiplier below 1/2 (right shifts only), as in real models.
    small_scales: bool,
    bias: bool,
    rows: (usize, usize),
    cols: (usize, usize),
}

fn random_case(rng: &mut Rng, a_unsigned: bool, w_unsigned: bool) -> Case {
    let (m, n, k) = shape(rng);
    let pad = |rng: &mut Rng| if rng.below(2) == 0 { 0 } else { rng.below(9) };
    let a_zp = if a_unsigned {
        rng.range(0, 255)
    } else {
        rng.range(-128, 127)
    };
    let a_zp = match rng.below(4) {
        0 if a_unsigned => 0,
        0 => -128,
        1 if a_unsigned => 128,
        1 => 0,
        _ => a_zp,
    };
    let w_zp = if w_unsigned { rng.range(0, 255) } else { 0 };
    let (rows, cols) = if rng.below(3) == 0 {
        let r0 = rng.below(m);
        let r1 = r0 + 1 + rng.below(m - r0);
        let c0 = rng.below(n);
        let c1 = c0 + 1 + rng.below(n - c0);
        ((r0, r1), (c0, c1))
    } else {
        ((0, m), (0, n))
    };
    Case {
        m,
        n,
        k,
        a_stride: k + pad(rng),
        c_stride: n + pad(rng),
        a_zp,
        w_zp,
        per_channel: rng.below(2) == 0,
        small_scales: rng.below(2) == 0,
        bias: rng.below(4) != 0,
        rows,
        cols,
    }
}

/// Runs one int8 case on `kernel` and on the reference; panics naming the first difference.
fn check_i8_case<A: Q8, W: Q8, O: Q8>(kernel: &'static I8Kernel, case: Case, rng: &mut Rng) {
    let Case {
        m,
        n,
        k,
        a_stride,
        c_stride,
        a_zp,
        w_zp,
        ..
    } = case;
    let a: Vec<A> = bytes(rng, (m - 1) * a_stride + k);
    let w: Vec<W> = bytes(rng, n * k);
    let bias: Vec<i32> = (0..n).map(|_| rng.range(-20_000, 20_000)).collect();
    let bias = case.bias.then_some(&bias[..]);
    let scale = |rng: &mut Rng| {
        // Multipliers from tiny to above 1: exercises right and left shifts; powers of two (as
        // real models often have) put products exactly on rounding ties.
        let e = rng.range(-14, if case.small_scales { -1 } else { 1 }) as f64;
        let frac = if rng.below(3) == 0 {
            0.5
        } else {
            0.5 + rng.f32().abs() as f64 / 2.0
        };
        2f64.powf(e) * frac
    };
    let reals: Vec<f64> = if case.per_channel {
        (0..n).map(|_| scale(rng)).collect()
    } else {
        vec![scale(rng)]
    };
    let out_zp = rng.range(O::MIN, O::MAX);
    let (lo, hi) = match rng.below(3) {
        0 => (O::MIN, O::MAX),
        1 => (out_zp.max(O::MIN), O::MAX),
        _ => {
            let a = rng.range(O::MIN, O::MAX);
            let b = rng.range(O::MIN, O::MAX);
            (a.min(b), a.max(b))
        }
    };
    let rq = Requant::from_real(&reals, out_zp, lo, hi).unwrap();
    let act = ActQuant {
        unsigned: A::UNSIGNED,
        zero_point: a_zp,
    };
    let packed = if W::UNSIGNED {
        let wu: Vec<u8> = w.iter().map(|x| x.to_bits()).collect();
        PackedI8::with_kernel_u8(kernel, &wu, w_zp, n, k, bias, act).unwrap()
    } else {
        let wi: Vec<i8> = w.iter().map(|x| x.to_bits() as i8).collect();
        PackedI8::with_kernel(kernel, &wi, n, k, bias, act).unwrap()
    };
    let sentinel = O::from_i32(0x5a);
    let len = (m - 1) * c_stride + n;
    let mut want = vec![sentinel; len];
    reference::gemm::gemm_q8(
        m, n, k, &a, a_stride, a_zp, &w, w_zp, bias, &rq, &mut want, c_stride,
    );
    for r in 0..m {
        for j in 0..n {
            if !(case.rows.0..case.rows.1).contains(&r) || !(case.cols.0..case.cols.1).contains(&j)
            {
                want[r * c_stride + j] = sentinel;
            }
        }
    }
    let mut got = vec![sentinel; len];
    gemm_i8(
        &a,
        a_stride,
        &packed,
        &rq,
        &mut got,
        c_stride,
        case.rows.0..case.rows.1,
        case.cols.0..case.cols.1,
    );
    if let Some(i) = (0..len).find(|&i| got[i].to_bits() != want[i].to_bits()) {
        panic!(
            "{}: M×N×K = {m}×{n}×{k} ({}{}{} {case:?}): first difference at row {} col {}: got {}, want {}",
            kernel.name,
            if A::UNSIGNED { "u8" } else { "i8" },
            if W::UNSIGNED { "u8" } else { "i8" },
            if O::UNSIGNED { "u8" } else { "i8" },
            i / c_stride,
            i % c_stride,
            got[i].to_i32(),
            want[i].to_i32()
        );
    }
}

#[test]
fn i8_kernels_match_reference() {
    for kernel in i8_gemm_candidates() {
        let mut rng = Rng::new(0x5eed_0001);
        for i in 0..320 {
            match i % 6 {
                0 => check_i8_case::<i8, i8, i8>(
                    kernel,
                    random_case(&mut rng, false, false),
                    &mut rng,
                ),
                1 => {
                    check_i8_case::<u8, u8, u8>(kernel, random_case(&mut rng, true, true), &mut rng)
                }
                2 => check_i8_case::<i8, i8, u8>(
                    kernel,
                    random_case(&mut rng, false, false),
                    &mut rng,
                ),
                3 => check_i8_case::<u8, i8, i8>(
                    kernel,
                    random_case(&mut rng, true, false),
                    &mut rng,
                ),
                4 => check_i8_case::<i8, u8, i8>(
                    kernel,
                    random_case(&mut rng, false, true),
                    &mut rng,
                ),
                _ => {
                    check_i8_case::<u8, u8, i8>(kernel, random_case(&mut rng, true, true), &mut rng)
                }
            }
        }
    }
}

/// Every dimension of the list, each as M, N and K with the others small, and extreme values.
#[test]
fn i8_kernels_edge_shapes() {
    for kernel in i8_gemm_candidates() {
        let mut rng = Rng::new(0x5eed_0002);
        for &d in DIMS {
            for (m, n, k) in [
                (d, 3, 5),
                (2, d, 7),
                (3, 5, d),
                (1, d, d.min(300)),
                (d, 1, 1),
            ] {
                let case = Case {
                    m,
                    n,
                    k,
                    a_stride: k,
                    c_stride: n,
                    a_zp: -128,
                    w_zp: 0,
                    per_channel: true,
                    small_scales: false,
                    bias: true,
                    rows: (0, m),
                    cols: (0, n),
                };
                check_i8_case::<i8, i8, i8>(kernel, case, &mut rng);
                let case = Case {
                    a_zp: 255,
                    w_zp: 255,
                    ..case
                };
                check_i8_case::<u8, u8, u8>(kernel, case, &mut rng);
            }
        }
    }
}

/// The 1×1-convolution shapes of MobileNets (small K; N = 8, 16, 24, 96, 144: partial and
/// half-used column tiles) with real-model scales, every activation/output type pair.
#[test]
fn i8_kernels_conv1x1_shapes() {
    for kernel in i8_gemm_candidates() {
        let mut rng = Rng::new(0x5eed_0007);
        for (m, n, k) in [
            (37, 16, 32),
            (29, 96, 16),
            (21, 144, 24),
            (13, 24, 96),
            (19, 32, 27),
            (17, 8, 3),
            (11, 48, 8),
            (67, 24, 144),
            (70, 56, 96),
            (9, 88, 5),
            (15, 40, 33),
        ] {
            for per_channel in [false, true] {
                let case = Case {
                    m,
                    n,
                    k,
                    a_stride: k,
                    c_stride: n,
                    a_zp: rng.range(-128, 127),
                    w_zp: 0,
                    per_channel,
                    small_scales: true,
                    bias: true,
                    rows: (0, m),
                    cols: (0, n),
                };
                check_i8_case::<i8, i8, i8>(kernel, case, &mut rng);
                let sub = Case {
                    rows: (1, m - 2),
                    cols: (n / 3, n - 1),
                    ..case
                };
                check_i8_case::<i8, i8, i8>(kernel, sub, &mut rng);
                let case = Case {
                    a_zp: rng.range(0, 255),
                    w_zp: rng.range(0, 255),
                    ..case
                };
                check_i8_case::<u8, u8, u8>(kernel, case, &mut rng);
                check_i8_case::<i8, i8, u8>(kernel, case_i8(case), &mut rng);
            }
        }
    }
}

/// K ≥ 64 over several passes of rows (kernels that requantize one pass while the next one
/// computes), every column-tile shape (N = 8, 16, 24, 32, 40, 56), row and column sub-ranges
/// that start and end inside a pass, more rows than one call of the largest `mr` takes, and
/// each clamp kind (rounds draw them at random).
#[test]
fn i8_kernels_deep_k_multi_pass() {
    for kernel in i8_gemm_candidates() {
        let mut rng = Rng::new(0x5eed_0009);
        for (m, n, k) in [
            (45, 8, 64),
            (33, 16, 68),
            (64, 24, 144),
            (29, 40, 100),
            (100, 32, 67),
            (17, 56, 96),
            (130, 16, 256),
            (1100, 24, 68),
        ] {
            for round in 0..6 {
                let case = Case {
                    m,
                    n,
                    k,
                    a_stride: k + round % 3,
                    c_stride: n + round % 2,
                    a_zp: rng.range(-128, 127),
                    w_zp: 0,
                    per_channel: round % 2 == 0,
                    small_scales: true,
                    bias: true,
                    rows: if round % 3 == 2 { (3, m - 5) } else { (0, m) },
                    cols: if round % 3 == 2 { (1, n - 1) } else { (0, n) },
                };
                check_i8_case::<i8, i8, i8>(kernel, case, &mut rng);
                check_i8_case::<i8, i8, u8>(kernel, case, &mut rng);
            }
        }
    }
}

/// `case` with the zero points of int8 activations and weights.
fn case_i8(case: Case) -> Case {
    Case {
        a_zp: case.a_zp - 128,
        w_zp: 0,
        ..case
    }
}

#[test]
fn f32_kernels_match_reference() {
    for kernel in f32_gemm_candidates() {
        let mut rng = Rng::new(0x5eed_0003);
        for _ in 0..300 {
            let case = random_case(&mut rng, false, false);
            check_f32_case(kernel, case, &mut rng);
        }
    }
}

/// Column counts whose last tile is partly used (N mod 32 = 8, 24: quarter and three-quarter
/// tiles), with every row remainder of the 8-row tiles and column sub-ranges.
#[test]
fn f32_kernels_partial_tile_shapes() {
    for kernel in f32_gemm_candidates() {
        let mut rng = Rng::new(0x5eed_0008);
        for n in [8, 24, 40, 56, 88] {
            for m in [1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 23] {
                for k in [1, 3, 96] {
                    let case = Case {
                        m,
                        n,
                        k,
                        a_stride: k,
                        c_stride: n + 3,
                        a_zp: 0,
                        w_zp: 0,
                        per_channel: false,
                        small_scales: false,
                        bias: true,
                        rows: (0, m),
                        cols: (0, n),
                    };
                    check_f32_case(kernel, case, &mut rng);
                    let sub = Case {
                        rows: (m / 2, m),
                        cols: (n / 3, n - 1),
                        ..case
                    };
                    check_f32_case(kernel, sub, &mut rng);
                }
            }
        }
    }
}

/// Runs one f32 case on `kernel` and on the reference; panics naming the first difference.
fn check_f32_case(kernel: &'static F32Kernel, case: Case, rng: &mut Rng) {
    let Case {
        m,
        n,
        k,
        a_stride,
        c_stride,
        ..
    } = case;
    let a: Vec<f32> = (0..(m - 1) * a_stride + k).map(|_| rng.f32()).collect();
    let w: Vec<f32> = (0..n * k).map(|_| rng.f32()).collect();
    let bias: Vec<f32> = (0..n).map(|_| rng.f32()).collect();
    let bias = case.bias.then_some(&bias[..]);
    let (min, max) = match rng.below(3) {
        0 => (f32::NEG_INFINITY, f32::INFINITY),
        1 => (0.0, 6.0),
        _ => (-0.5, 0.7),
    };
    let packed = PackedF32::with_kernel(kernel, &w, n, k, bias).unwrap();
    let len = (m - 1) * c_stride + n;
    let mut want = vec![f32::NAN; len];
    reference::gemm::gemm_f32(
        m, n, k, &a, a_stride, &w, bias, min, max, &mut want, c_stride,
    );
    let mut got = vec![f32::NAN; len];
    let (rows, cols) = (case.rows.0..case.rows.1, case.cols.0..case.cols.1);
    gemm_f32(
        &a,
        a_stride,
        &packed,
        min,
        max,
        &mut got,
        c_stride,
        rows.clone(),
        cols.clone(),
    );
    let tol = 1e-5 * (k as f32).sqrt() * 4.0 + 1e-6;
    for r in 0..m {
        for j in 0..n {
            let (g, w) = (got[r * c_stride + j], want[r * c_stride + j]);
            let inside = rows.contains(&r) && cols.contains(&j);
            let ok = if inside {
                (g - w).abs() <= tol * (1.0 + w.abs())
            } else {
                g.is_nan()
            };
            assert!(
                ok,
                "{}: M×N×K = {m}×{n}×{k} ({case:?}): first difference at row {r} col {j}: \
                         got {g}, want {}",
                kernel.name,
                if inside { w } else { f32::NAN }
            );
        }
    }
}

#[test]
fn pack_errors_are_typed() {
    let k = crate::dispatch::kernels().gemm.i8;
    assert_eq!(
        PackedI8::with_kernel(k, &[0; 5], 2, 3, None, ActQuant::i8(0)).unwrap_err(),
        PackError::Length {
            what: "weights",
            needed: 6,
            found: 5
        }
    );
    assert_eq!(
        PackedI8::with_kernel(k, &[0; 6], 2, 3, Some(&[1]), ActQuant::i8(0)).unwrap_err(),
        PackError::Length {
            what: "bias",
            needed: 2,
            found: 1
        }
    );
    assert!(matches!(
        PackedI8::with_kernel(k, &[0; 6], 2, 3, None, ActQuant::i8(200)),
        Err(PackError::ZeroPoint {
            what: "activation",
            value: 200
        })
    ));
    assert!(matches!(
        PackedI8::with_kernel_u8(k, &[0; 6], 256, 2, 3, None, ActQuant::u8(0)),
        Err(PackError::ZeroPoint {
            what: "weight",
            value: 256
        })
    ));
    assert!(matches!(
        PackedF32::new(&[], 0, 3, None),
        Err(PackError::Shape { n: 0, k: 3 })
    ));
}

/// The one saturating case of the doubling high multiply (`i32::MIN · i32::MIN`), on every lane
/// position, for every requant-row kernel.
#[test]
fn requant_rows_saturate_like_scalar() {
    let acc: Vec<i32> = (0..40)
        .map(|i| if i % 3 == 0 { i32::MIN } else { i32::MAX - i })
        .collect();
    for row in crate::dispatch::requant_row_candidates() {
        for shift in [0, -1, -3, -31, 2] {
            for (lo, hi) in [(-128, 127), (-128, -100), (100, 127)] {
                let rq = Requant::new(vec![i32::MIN], vec![shift], 7, lo, hi).unwrap();
                let mut got = vec![0u8; acc.len()];
                // SAFETY: `got` holds acc.len() bytes; the Requant is per-tensor.
                unsafe { (row.row)(&acc, 0, &rq, got.as_mut_ptr()) };
                for (i, (&g, &x)) in got.iter().zip(&acc).enumerate() {
                    assert_eq!(
                        g as i8,
                        rq.apply(x, i) as i8,
                        "{}: shift {shift} clamp [{lo}, {hi}]: element {i} acc {x}",
                        row.row_name
                    );
                }
            }
        }
    }
}

#[test]
fn requant_rows_match_scalar() {
    let mut rng = Rng::new(0x5eed_0004);
    let specials = [
        i32::MIN,
        i32::MIN + 1,
        -1,
        0,
        1,
        i32::MAX - 1,
        i32::MAX,
        1 << 30,
        -(1 << 30),
    ];
    for row in crate::dispatch::requant_row_candidates() {
        for len in [1usize, 3, 15, 16, 17, 31, 64, 100] {
            for per_channel in [false, true] {
                let first = rng.below(5);
                let chans = if per_channel { first + len } else { 1 };
                let mut mult = Vec::new();
                let mut shift = Vec::new();
                for _ in 0..chans {
                    let e = 2f64.powi(rng.range(-33, 7));
                    // Powers of two (and 1.5×) make x·m land exactly on rounding ties.
                    let frac = match rng.below(3) {
                        0 => 0.5,
                        1 => 0.75,
                        _ => 0.5 + rng.f32().abs() as f64 / 2.0,
                    };
                    let (m, s) = crate::requant::quantize_multiplier(e * frac);
                    mult.push(if rng.below(64) == 0 { i32::MIN } else { m });
                    shift.push(s.clamp(-31, 30));
                }
                let rq = Requant::new(mult, shift, rng.range(-128, 127), -128, 127).unwrap();
                let acc: Vec<i32> = (0..len)
                    .map(|_| {
                        if rng.below(4) == 0 {
                            specials[rng.below(specials.len())]
                        } else {
                            rng.next() as i32 >> rng.below(31)
                        }
                    })
                    .collect();
                let mut got = vec![0u8; len];
                // SAFETY: `got` holds len bytes; the Requant has channels first..first+len.
                unsafe { (row.row)(&acc, first, &rq, got.as_mut_ptr()) };
                for i in 0..len {
                    let want = rq.apply(acc[i], first + i) as i8;
                    assert_eq!(
                        got[i] as i8,
                        want,
                        "{}: len {len} per_channel {per_channel}: element {i} acc {} channel {}",
                        row.row_name,
                        acc[i],
                        first + i
                    );
                }
            }
        }
    }
}

#[test]
fn hybrid_matches_reference() {
    for kernel in i8_gemm_candidates() {
        let mut rng = Rng::new(0x5eed_0005);
        for _ in 0..120 {
            let case = random_case(&mut rng, false, false);
            let Case {
                m,
                n,
                k,
                a_stride,
                c_stride,
                ..
            } = case;
            let a: Vec<i8> = bytes(&mut rng, (m - 1) * a_stride + k);
            let w: Vec<i8> = bytes(&mut rng, n * k);
            let per_row = rng.below(2) == 0;
            let rows_n = if per_row { m } else { 1 };
            let a_zp: Vec<i32> = (0..rows_n).map(|_| rng.range(-128, 127)).collect();
            let a_scale: Vec<f32> = (0..rows_n).map(|_| rng.f32().abs() + 0.01).collect();
            let w_scale: Vec<f32> = if case.per_channel {
                (0..n).map(|_| rng.f32().abs() * 0.1 + 0.001).collect()
            } else {
                vec![0.02]
            };
            let bias: Vec<f32> = (0..n).map(|_| rng.f32() * 10.0).collect();
            let bias = case.bias.then_some(&bias[..]);
            let (min, max) = if rng.below(2) == 0 {
                (f32::MIN, f32::MAX)
            } else {
                (0.0, 6.0)
            };
            let packed = PackedI8::with_kernel(kernel, &w, n, k, None, ActQuant::i8(0)).unwrap();
            let len = (m - 1) * c_stride + n;
            let mut want = vec![f32::NAN; len];
            reference::gemm::gemm_hybrid(
                m, n, k, &a, a_stride, &a_zp, &a_scale, &w, &w_scale, bias, min, max, &mut want,
                c_stride,
            );
            let mut got = vec![f32::NAN; len];
            let p = HybridParams {
                a_scales: &a_scale,
                a_zero_points: &a_zp,
                w_scales: &w_scale,
                bias,
                min,
                max,
            };
            let (rows, cols) = (case.rows.0..case.rows.1, case.cols.0..case.cols.1);
            gemm_i8_hybrid(
                &a,
                a_stride,
                &packed,
                &p,
                &mut got,
                c_stride,
                rows.clone(),
                cols.clone(),
            );
            for r in 0..m {
                for j in 0..n {
                    let (g, w) = (got[r * c_stride + j], want[r * c_stride + j]);
                    let inside = rows.contains(&r) && cols.contains(&j);
                    let ok = if inside {
                        g.to_bits() == w.to_bits()
                    } else {
                        g.is_nan()
                    };
                    assert!(
                        ok,
                        "{} hybrid: M×N×K = {m}×{n}×{k} ({case:?}): first difference at row {r} \
                         col {j}: got {g}, want {}",
                        kernel.name,
                        if inside { w } else { f32::NAN }
                    );
                }
            }
        }
    }
}

#[test]
fn row_quantizers() {
    let x = [
        -1.0f32, 0.0, 0.5, 3.0, /* row 2 */ 0.0, 0.0, 0.0, 0.0, /* row 3 */ 2.0, 4.0,
        1.0, 0.25,
    ];
    let mut q = [0i8; 12];
    let mut s = [0f32; 3];
    let mut z = [0i32; 3];
    quantize_rows_asymmetric(&x, 4, 3, 4, &mut q, 4, &mut s, &mut z);
    // Row 0: range [-1, 3], scale 4/255; zero point from min: -128 + 63.75 → -64.
    assert_eq!(s[0], 4.0 / 255.0);
    assert_eq!(z[0], -64);
    assert_eq!(&q[..4], &[-128, -64, -32, 127]);
    assert_eq!((s[1], z[1], &q[4..8]), (1.0, 0, &[0i8, 0, 0, 0][..]));
    // Row 2: range [0, 4] (0 is always included): zero point −128.
    assert_eq!(z[2], -128);
    for i in 0..4 {
        let back = (q[8 + i] as i32 - z[2]) as f32 * s[2];
        assert!(
            (back - x[8 + i]).abs() <= s[2] / 2.0 + 1e-6,
            "element {i}: {back}"
        );
    }
    let mut s2 = [0f32; 3];
    quantize_rows_symmetric(&x, 4, 3, 4, &mut q, 4, &mut s2);
    assert_eq!(&q[..4], &[-42, 0, 21, 127]);
    assert_eq!(s2[0], 3.0 / 127.0);
    assert_eq!(&q[4..8], &[0, 0, 0, 0]);
}

/// Deep K makes the driver split the rows into several cache blocks (`row_block`); a sub-range
/// of rows and columns crosses block and tile edges.
#[test]
fn row_blocks_cover_every_row() {
    let (m, n, k) = (700, 37, 1000);
    assert!(row_block(k, 1, 8) < m && row_block(k, 4, 8) < m);
    let mut rng = Rng::new(0x5eed_0006);
    for kernel in i8_gemm_candidates() {
        let case = Case {
            m,
            n,
            k,
            a_stride: k + 3,
            c_stride: n + 1,
            a_zp: 5,
            w_zp: 0,
            per_channel: true,
            small_scales: false,
            bias: true,
            rows: (3, 697),
            cols: (1, 36),
        };
        check_i8_case::<i8, i8, i8>(kernel, case, &mut rng);
    }
    for kernel in f32_gemm_candidates() {
        let a: Vec<f32> = (0..m * k).map(|_| rng.f32()).collect();
        let w: Vec<f32> = (0..n * k).map(|_| rng.f32()).collect();
        let packed = PackedF32::with_kernel(kernel, &w, n, k, None).unwrap();
        let mut want = vec![0f32; m * n];
        reference::gemm::gemm_f32(m, n, k, &a, k, &w, None, -1e9, 1e9, &mut want, n);
        let mut got = vec![f32::NAN; m * n];
        gemm_f32(&a, k, &packed, -1e9, 1e9, &mut got, n, 0..m, 0..n);
        for i in 0..m * n {
            assert!(
                (got[i] - want[i]).abs() <= 1e-3 * (1.0 + want[i].abs()),
                "{}: {m}×{n}×{k}: first difference at row {} col {}: got {}, want {}",
                kernel.name,
                i / n,
                i % n,
                got[i],
                want[i]
            );
        }
    }
}

/// `gemm_i8_acc` hands over exactly `bias + Σ (a − za)(w − zw)` for every element of the block,
/// once each, on every kernel and every activation/weight type pair.
#[test]
fn acc_matches_reference() {
    fn run<A: Q8, W: Q8>(kernel: &'static I8Kernel, case: Case, rng: &mut Rng) {
        let Case {
            m,
            n,
            k,
            a_stride,
            a_zp,
            w_zp,
            ..
        } = case;
        let a: Vec<A> = bytes(rng, (m - 1) * a_stride + k);
        let w: Vec<W> = bytes(rng, n * k);
        let bias: Vec<i32> = (0..n).map(|_| rng.range(-20_000, 20_000)).collect();
        let bias = case.bias.then_some(&bias[..]);
        let act = ActQuant {
            unsigned: A::UNSIGNED,
            zero_point: a_zp,
        };
        let packed = if W::UNSIGNED {
            let wu: Vec<u8> = w.iter().map(|v| v.to_bits()).collect();
            PackedI8::with_kernel_u8(kernel, &wu, w_zp, n, k, bias, act)
        } else {
            let wi: Vec<i8> = w.iter().map(|v| v.to_bits() as i8).collect();
            PackedI8::with_kernel(kernel, &wi, n, k, bias, act)
        }
        .unwrap();
        let (r0, r1) = case.rows;
        let (c0, c1) = case.cols;
        let mut got = vec![None::<i32>; m * n];
        gemm_i8_acc(&a, a_stride, &packed, r0..r1, c0..c1, |r, c, acc| {
            for (j, &v) in acc.iter().enumerate() {
                let slot = &mut got[r * n + c + j];
                assert!(
                    slot.is_none(),
                    "{}: ({r}, {}) passed twice",
                    kernel.name,
                    c + j
                );
                *slot = Some(v);
            }
        });
        for r in 0..m {
            for c in 0..n {
                let inside = (r0..r1).contains(&r) && (c0..c1).contains(&c);
                let want = inside.then(|| {
                    let mut s = bias.map_or(0, |b| b[c]);
                    for i in 0..k {
                        let x = a[r * a_stride + i].to_i32() - a_zp;
                        let y = w[c * k + i].to_i32() - w_zp;
                        s = s.wrapping_add(x * y);
                    }
                    s
                });
                assert_eq!(
                    got[r * n + c],
                    want,
                    "{}: {m}x{n}x{k} {case:?}: first difference at ({r}, {c})",
                    kernel.name
                );
            }
        }
    }
    for kernel in i8_gemm_candidates() {
        let mut rng = Rng::new(0x5eed_00ac);
        for i in 0..120 {
            match i % 4 {
                0 => run::<i8, i8>(kernel, random_case(&mut rng, false, false), &mut rng),
                1 => run::<u8, u8>(kernel, random_case(&mut rng, true, true), &mut rng),
                2 => run::<u8, i8>(kernel, random_case(&mut rng, true, false), &mut rng),
                _ => run::<i8, u8>(kernel, random_case(&mut rng, false, true), &mut rng),
            }
        }
    }
}
