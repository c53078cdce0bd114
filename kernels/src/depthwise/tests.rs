use super::*;
use crate::reference::conv::{self as r, QOut};
use crate::testutil::*;

fn row_splits(n: usize) -> Vec<Range<usize>> {
    let a = n / 2;
    [0..a, a..n].into_iter().filter(|r| !r.is_empty()).collect()
}

/// [`run_rows`], the reference on the same operands (widened to i32), and whether `p` has the
/// row kernel.
fn run_split<T: Q8>(
    p: &DepthwiseQ,
    x: &[T],
    w: &Window2d,
    wi: &[i32],
    bias: &[i32],
    q: &QOut,
) -> (Vec<i32>, Vec<i32>, bool) {
    let xi: Vec<i32> = x.iter().map(|&v| v.to_i32()).collect();
    (
        run_rows(p, x, w),
        r::depthwise_q(w, &xi, wi, Some(bias), q),
        p.has_row_kernel(),
    )
}

/// `p` over `x` in the row ranges of [`row_splits`] (as two threads split it), widened to i32.
fn run_rows<T: Q8>(p: &DepthwiseQ, x: &[T], w: &Window2d) -> Vec<i32> {
    let mut got = vec![T::default(); w.output_len()];
    for rows in row_splits(w.output_rows()) {
        p.run(x, &mut got, rows);
    }
    got.iter().map(|&v| v.to_i32()).collect()
}

/// Depth multiplier 1 mostly; sometimes 2 or 3.
fn cases(seed: u64) -> Vec<Window2d> {
    let mut v = window_cases(seed, 40, true, |c, rng| {
        c * [1, 1, 1, 2, 3][rng.usize(0, 4)]
    });
    // Channel counts around the register block.
    for c in [BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK + 17] {
        let spec = crate::window::WindowSpec {
            k_h: 3,
            k_w: 3,
            stride_h: 2,
            stride_w: 1,
            padding: crate::window::Padding::Same,
            ..crate::window::WindowSpec::new(1, 5, 6, c, c)
        };
        v.push(Window2d::new(spec).unwrap());
    }
    v
}

#[test]
fn f32_matches_reference() {
    let mut rng = Rng::new(21);
    for isa in tiers() {
        let Some(k) = DepthwiseKernels::for_isa(isa) else {
            continue;
        };
        for w in cases(22) {
            let x = rng.vec_f32(w.input_len());
            let wt = rng.vec_f32(w.h.kernel * w.w.kernel * w.out_c);
            let bias = rng.vec_f32(w.out_c);
            let with_bias = rng.range(0, 1) == 1;
            let (lo, hi) = if rng.range(0, 1) == 0 {
                (f32::MIN, f32::MAX)
            } else {
                (0.0, 6.0)
            };
            let b = with_bias.then_some(&bias[..]);
            let p = DepthwiseF32::new(w, &wt, b, lo, hi).unwrap();
            let want = r::depthwise_f32(&w, &x, &wt, b, lo, hi);
            let mut got = vec![f32::NAN; w.output_len()];
            for rows in row_splits(w.output_rows()) {
                (k.f32)(&p, &x, &mut got, rows);
            }
            assert_close(
                &got,
                &want,
                1e-5,
                &format!("{} dwconv f32 {w:?}", isa.name()),
            );
        }
    }
}

fn requant(rng: &mut Rng, oc: usize, per_channel: bool, unsigned: bool) -> (Requant, QOut) {
    let n = if per_channel { oc } else { 1 };
    let reals: Vec<f64> = (0..n)
        .map(|_| 0.0005 + rng.f32().abs() as f64 * 0.01)
        .collect();
    let zp = rng.range(-30, 30) as i32 + if unsigned { 128 } else { 0 };
    let (tmin, tmax) = if unsigned { (0, 255) } else { (-128, 127) };
    let (lo, hi) = if rng.range(0, 1) == 0 {
        (tmin, tmax)
    } else {
        (zp.max(tmin), tmax - 10)
    };
    let rq = Requant::from_real(&reals, zp, lo, hi).unwrap();
    let q = QOut {
        in_zp: 0,
        mult: (0..n).map(|i| rq.channel(i).0).collect(),
        shift: (0..n).map(|i| rq.channel(i).1).collect(),
        out_zp: zp,
        lo,
        hi,
    };
    (rq, q)
}

#[test]
fn int8_matches_reference_exactly() {
    let mut rng = Rng::new(23);
    for isa in tiers() {
        let Some(k) = DepthwiseKernels::for_isa(isa) else {
            continue;
        };
        for w in cases(24) {
            let x = rng.vec_i8(w.input_len());
            let wt: Vec<i8> = (0..w.h.kernel * w.w.kernel * w.out_c)
                .map(|_| rng.range(-127, 127) as i8)
                .collect();
            let bias: Vec<i32> = (0..w.out_c)
                .map(|_| rng.range(-5000, 5000) as i32)
                .collect();
            let b = (rng.range(0, 1) == 1).then_some(&bias[..]);
            let pc = rng.range(0, 3) > 0;
            let (rq, mut q) = requant(&mut rng, w.out_c, pc, false);
            q.in_zp = rng.range(-128, 127) as i32;
            let p = DepthwiseQ::new(w, &wt, b, q.in_zp, rq).unwrap();
            let xi: Vec<i32> = x.iter().map(|&v| v as i32).collect();
            let wi: Vec<i32> = wt.iter().map(|&v| v as i32).collect();
            let want = r::depthwise_q(&w, &xi, &wi, b, &q);
            let mut got = vec![0i8; w.output_len()];
            for rows in row_splits(w.output_rows()) {
                (k.i8)(&p, &x, &mut got, rows);
            }
            let got: Vec<i32> = got.iter().map(|&v| v as i32).collect();
            if let Some((i, g, e)) = first_diff(&got, &want) {
                panic!(
                    "{} dwconv i8 {w:?}: first difference at {i}: got {g}, want {e}",
                    isa.name()
                );
            }
        }
    }
}

#[test]
fn uint8_matches_reference_exactly() {
    let mut rng = Rng::new(25);
    for isa in tiers() {
        let Some(k) = DepthwiseKernels::for_isa(isa) else {
            continue;
        };
        for w in cases(26) {
            let x = rng.vec_u8(w.input_len());
            let wt = rng.vec_u8(w.h.kernel * w.w.kernel * w.out_c);
            let w_zp = rng.range(0, 255) as i32;
            let bias: Vec<i32> = (0..w.out_c)
                .map(|_| rng.range(-5000, 5000) as i32)
                .collect();
            let (rq, mut q) = requant(&mut rng, w.out_c, false, true);
            q.in_zp = rng.range(0, 255) as i32;
            let p = DepthwiseQ::new_u8(w, &wt, w_zp, Some(&bias), q.in_zp, rq).unwrap();
            let xi: Vec<i32> = x.iter().map(|&v| v as i32).collect();
            let wi: Vec<i32> = wt.iter().map(|&v| v as i32 - w_zp).collect();
            let want = r::depthwise_q(&w, &xi, &wi, Some(&bias), &q);
            let mut got = vec![0u8; w.output_len()];
            for rows in row_splits(w.output_rows()) {
                (k.u8)(&p, &x, &mut got, rows);
            }
            let got: Vec<i32> = got.iter().map(|&v| v as i32).collect();
            if let Some((i, g, e)) = first_diff(&got, &want) {
                panic!(
                    "{} dwconv u8 {w:?}: first difference at {i}: got {g}, want {e}",
                    isa.name()
                );
            }
        }
    }
}

#[test]
fn run_uses_the_dispatched_kernel() {
    let w = Window2d::new(crate::window::WindowSpec {
        k_h: 3,
        k_w: 3,
        padding: crate::window::Padding::Same,
        ..crate::window::WindowSpec::new(1, 4, 4, 8, 8)
    })
    .unwrap();
    let mut rng = Rng::new(1);
    let x = rng.vec_i8(w.input_len());
    let wt = rng.vec_i8(72);
    let rq = Requant::from_real(&[0.01], 3, -128, 127).unwrap();
    let p = DepthwiseQ::new(w, &wt, None, -2, rq).unwrap();
    let (mut a, mut b) = (vec![0i8; 128], vec![0i8; 128]);
    p.run(&x, &mut a, 0..4);
    (DepthwiseKernels::for_isa(Isa::Scalar).unwrap().i8)(&p, &x, &mut b, 0..4);
    assert_eq!(a, b);
}

#[test]
fn bad_parameters_are_errors() {
    let w = Window2d::new(crate::window::WindowSpec::new(1, 4, 4, 3, 5)).unwrap();
    assert_eq!(
        DepthwiseF32::new(w, &[0.0; 5], None, 0.0, 1.0).unwrap_err(),
        DepthwiseError::Channels { in_c: 3, out_c: 5 }
    );
    let w = Window2d::new(crate::window::WindowSpec::new(1, 4, 4, 3, 6)).unwrap();
    assert_eq!(
        DepthwiseF32::new(w, &[0.0; 5], None, 0.0, 1.0).unwrap_err(),
        DepthwiseError::Length {
            what: "weights",
            expected: 6,
            found: 5
        }
    );
}

#[test]
fn dispatch_plugs_the_best_tier() {
    let best = tiers()
        .into_iter()
        .filter(|i| DepthwiseKernels::for_isa(*i).is_some())
        .max()
        .unwrap();
    assert_eq!(DepthwiseKernels::active().isa, best);
    if Isa::Avx2.enabled() {
        assert_ne!(
            DepthwiseKernels::active().isa,
            Isa::Scalar,
            "depthwise slot is scalar"
        );
    }
}

#[test]
fn hybrid_matches_reference() {
    let mut rng = Rng::new(27);
    let mut ws = cases(28);
    ws.push(
        Window2d::new(crate::window::WindowSpec {
            k_h: 3,
            k_w: 3,
            padding: crate::window::Padding::Same,
            ..crate::window::WindowSpec::new(3, 6, 9, 20, 20)
        })
        .unwrap(),
    );
    for isa in tiers() {
        let Some(k) = DepthwiseKernels::for_isa(isa) else {
            continue;
        };
        for w in &ws {
            let w = *w;
            let x: Vec<f32> = rng
                .vec_f32(w.input_len())
                .iter()
                .map(|v| v * 2.0 + 0.7)
                .collect();
            let wt: Vec<i8> = (0..w.h.kernel * w.w.kernel * w.out_c)
                .map(|_| rng.range(-127, 127) as i8)
                .collect();
            let w_scales: Vec<f32> = (0..w.out_c)
                .map(|_| 0.001 + rng.f32().abs() * 0.02)
                .collect();
            let bias = rng.vec_f32(w.out_c);
            let p = DepthwiseHybrid::new(w, &wt, &w_scales, Some(&bias), -1.0, 2.5).unwrap();
            let mut q = vec![0i8; w.input_len()];
            let (mut sc, mut zp) = (vec![0f32; w.batch], vec![0i32; w.batch]);
            p.quantize_input(&x, &mut q, &mut sc, &mut zp);
            // Reference: per batch image, integer sums with its zero point, then TFLite's scale
            // order `acc * (w_scale * in_scale) + bias`.
            let per_in = w.h.input * w.w.input * w.in_c;
            let per_out = w.h.output * w.w.output * w.out_c;
            let wi: Vec<i32> = wt.iter().map(|&v| v as i32).collect();
            let mut want = vec![0f32; w.output_len()];
            for b in 0..w.batch {
                let wb = Window2d { batch: 1, ..w };
                let xi: Vec<i32> = q[b * per_in..(b + 1) * per_in]
                    .iter()
                    .map(|&v| v as i32)
                    .collect();
                let qo = QOut {
                    in_zp: zp[b],
                    mult: vec![1 << 30],
                    shift: vec![1],
                    out_zp: 0,
                    lo: i32::MIN,
                    hi: i32::MAX,
                };
                let acc = r::depthwise_q(&wb, &xi, &wi, None, &qo);
                for (i, &a) in acc.iter().enumerate() {
                    let oc = i % w.out_c;
                    let v = a as f32 * (w_scales[oc] * sc[b]) + bias[oc];
                    want[b * per_out + i] = v.clamp(-1.0, 2.5);
                }
            }
            let mut got = vec![f32::NAN; w.output_len()];
            for rows in row_splits(w.output_rows()) {
                (k.hybrid)(&p, &q, &sc, &zp, &mut got, rows);
            }
            if let Some((i, g, e)) = first_diff(&got, &want) {
                panic!(
                    "{} dwconv hybrid {w:?}: first difference at {i}: got {g}, want {e}",
                    isa.name()
                );
            }
        }
    }
}

/// 3×3 and 5×5 windows with strides 1 and 2, channel counts around the 16-lane block, widths
/// around the 8-pixel tile, both paddings, uneven vertical strides, two images: the row kernel
/// (where the CPU has it) against the reference, for int8 and for uint8 weights within i8.
#[test]
fn row_kernel_matches_reference_exactly() {
    let mut rng = Rng::new(29);
    let mut used = 0;
    for (k, s) in [(3, 1), (3, 2), (5, 1), (5, 2)] {
        for (i, c) in [1, 7, 16, 17, 40, 64].into_iter().enumerate() {
            for in_w in [k, k + 1, k + 8, k + 17, 2 * k + 21] {
                let padding = if (i + in_w) % 2 == 0 {
                    crate::window::Padding::Same
                } else {
                    crate::window::Padding::Valid
                };
                let spec = crate::window::WindowSpec {
                    k_h: k,
                    k_w: k,
                    stride_h: [1, 2, 3][(c + in_w) % 3],
                    stride_w: s,
                    padding,
                    ..crate::window::WindowSpec::new(1 + in_w % 2, k + 3, in_w, c, c)
                };
                let w = Window2d::new(spec).unwrap();
                let x = rng.vec_i8(w.input_len());
                let wt: Vec<i8> = (0..k * k * c).map(|_| rng.range(-127, 127) as i8).collect();
                let bias: Vec<i32> = (0..c).map(|_| rng.range(-5000, 5000) as i32).collect();
                let pc = rng.range(0, 3) > 0;
                let (rq, mut q) = if in_w % 3 == 0 {
                    // Multipliers ≥ 0.5 (shift 0) and above 1 (left shifts).
                    let reals: Vec<f64> = (0..c)
                        .map(|i| [0.6, 1.7, 3.1, 0.0004, 0.9][(i + in_w) % 5])
                        .collect();
                    let zp = rng.range(-30, 30) as i32;
                    let rq = Requant::from_real(&reals, zp, -128, 127).unwrap();
                    let q = QOut {
                        in_zp: 0,
                        mult: (0..c).map(|i| rq.channel(i).0).collect(),
                        shift: (0..c).map(|i| rq.channel(i).1).collect(),
                        out_zp: zp,
                        lo: -128,
                        hi: 127,
                    };
                    (rq, q)
                } else {
                    requant(&mut rng, c, pc, false)
                };
                q.in_zp = rng.range(-128, 127) as i32;
                let p = DepthwiseQ::new(w, &wt, Some(&bias), q.in_zp, rq).unwrap();
                used += p.has_row_kernel() as usize;
                let xi: Vec<i32> = x.iter().map(|&v| v as i32).collect();
                let wi: Vec<i32> = wt.iter().map(|&v| v as i32).collect();
                let want = r::depthwise_q(&w, &xi, &wi, Some(&bias), &q);
                for p in [p.clone(), p.without_row_kernel()] {
                    let got = run_rows(&p, &x, &w);
                    if let Some((i, g, e)) = first_diff(&got, &want) {
                        panic!(
                            "dwconv i8 (row kernel {}) {w:?}: first difference at {i}: got {g}, want {e}",
                            p.has_row_kernel()
                        );
                    }
                }
                // uint8: weights with zero point 128 span −128..127 after subtraction (bytes);
                // with zero point 30 they reach 225 (16-bit pairs).
                let w_zp = if in_w % 2 == 0 { 128 } else { 30 };
                let xu = rng.vec_u8(w.input_len());
                let wu = rng.vec_u8(k * k * c);
                let (rq, mut q) = requant(&mut rng, c, false, true);
                q.in_zp = rng.range(0, 255) as i32;
                let p = DepthwiseQ::new_u8(w, &wu, w_zp, Some(&bias), q.in_zp, rq).unwrap();
                used += p.has_row_kernel() as usize;
                let xi: Vec<i32> = xu.iter().map(|&v| v as i32).collect();
                let wi: Vec<i32> = wu.iter().map(|&v| v as i32 - w_zp).collect();
                let want = r::depthwise_q(&w, &xi, &wi, Some(&bias), &q);
                let got = run_rows(&p, &xu, &w);
                if let Some((i, g, e)) = first_diff(&got, &want) {
                    panic!(
                        "dwconv u8 (row kernel {}) {w:?}: first difference at {i}: got {g}, want {e}",
                        p.has_row_kernel()
                    );
                }
                // The same uint8 weights with int8 activations.
                let xs = rng.vec_i8(w.input_len());
                let (rq, mut q) = requant(&mut rng, c, false, false);
                q.in_zp = rng.range(-128, 127) as i32;
                let p = DepthwiseQ::new_u8(w, &wu, w_zp, Some(&bias), q.in_zp, rq).unwrap();
                let xi: Vec<i32> = xs.iter().map(|&v| v as i32).collect();
                let want = r::depthwise_q(&w, &xi, &wi, Some(&bias), &q);
                let got = run_rows(&p, &xs, &w);
                if let Some((i, g, e)) = first_diff(&got, &want) {
                    panic!(
                        "dwconv i8 x u8-weights (row kernel {}) {w:?}: first difference at {i}: got {g}, want {e}",
                        p.has_row_kernel()
                    );
                }
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    if Isa::Avx512Vnni.enabled() && std::arch::is_x86_feature_detected!("avx512vbmi") {
        assert!(used > 0, "the row kernel never applied");
    }
    let _ = used;
}

/// The row kernel's requantization modes: a clamp equal to the whole output type (MobileNetV2's
/// ReLU6 with zero point −128: the saturating packs alone clamp), the fused-ReLU fast form with
/// the initial value inside the rounding constant, and biases near the i32 limits (where it
/// stays in the accumulators); int8 and uint8; vertical strides 1 and 2 over several rows.
#[test]
fn row_kernel_clamp_and_bias_modes_match_reference() {
    let mut rng = Rng::new(31);
    for (k, s) in [(3, 1), (3, 2), (5, 1), (5, 2)] {
        for c in [16, 33, 64] {
            for in_w in [k + 8, 2 * k + 21] {
                for mode in 0..4 {
                    let spec = crate::window::WindowSpec {
                        k_h: k,
                        k_w: k,
                        stride_h: 1 + (in_w + mode) % 2,
                        stride_w: s,
                        padding: crate::window::Padding::Same,
                        ..crate::window::WindowSpec::new(1, k + 6, in_w, c, c)
                    };
                    let w = Window2d::new(spec).unwrap();
                    let unsigned = mode == 3;
                    let (tmin, tmax) = if unsigned { (0, 255) } else { (-128, 127) };
                    let taps = (k * k) as i64;
                    let bias: Vec<i32> = (0..c)
                        .map(|_| {
                            if mode == 2 {
                                // |bias| + |Σ (x − zx)·w| stays below 2^31 (no wrap in the
                                // reference), but close to it.
                                let m = (1i64 << 31) - 1 - 255 * 127 * taps - rng.range(0, 300000);
                                (if rng.range(0, 1) == 0 { m } else { -m }) as i32
                            } else {
                                rng.range(-5000, 5000) as i32
                            }
                        })
                        .collect();
                    let reals: Vec<f64> = (0..c)
                        .map(|_| 0.0005 + rng.f32().abs() as f64 * 0.01)
                        .collect();
                    // Modes 0, 2, 3: clamp = the whole type at the zero point (ReLU6 with
                    // zero point at the type's minimum); mode 1: fused ReLU with a tighter top.
                    let zp = tmin;
                    let (lo, hi) = if mode == 1 {
                        (zp, tmax - 20)
                    } else {
                        (tmin, tmax)
                    };
                    let rq = Requant::from_real(&reals, zp, lo, hi).unwrap();
                    let in_zp = rng.range(tmin as i64, tmax as i64) as i32;
                    let q = QOut {
                        in_zp,
                        mult: (0..c).map(|i| rq.channel(i).0).collect(),
                        shift: (0..c).map(|i| rq.channel(i).1).collect(),
                        out_zp: zp,
                        lo,
                        hi,
                    };
                    let wt: Vec<i8> = (0..k * k * c).map(|_| rng.range(-127, 127) as i8).collect();
                    let wi: Vec<i32> = wt.iter().map(|&v| v as i32).collect();
                    let (got, want, row_kernel) = if unsigned {
                        let x = rng.vec_u8(w.input_len());
                        let wu: Vec<u8> = wt.iter().map(|&v| (v as i32 + 128) as u8).collect();
                        let p = DepthwiseQ::new_u8(w, &wu, 128, Some(&bias), in_zp, rq).unwrap();
                        run_split(&p, &x, &w, &wi, &bias, &q)
                    } else {
                        let x = rng.vec_i8(w.input_len());
                        let p = DepthwiseQ::new(w, &wt, Some(&bias), in_zp, rq).unwrap();
                        run_split(&p, &x, &w, &wi, &bias, &q)
                    };
                    if let Some((i, g, e)) = first_diff(&got, &want) {
                        panic!(
                            "dwconv mode {mode} (row kernel {row_kernel}) {w:?}: first difference at {i}: got {g}, want {e}"
                        );
                    }
                }
            }
        }
    }
}

/// The f32 row path (3×3 and 5×5, horizontal stride 1 and 2) sums the same taps in the same order as
/// the pixel tiles, so with FMA it equals the AVX2 tier bit for bit, and the reference closely.
#[test]
fn f32_rows_match_fma_tiles_exactly() {
    let (Some(a512), Some(a2)) = (
        DepthwiseKernels::for_isa(Isa::Avx512Vnni),
        DepthwiseKernels::for_isa(Isa::Avx2),
    ) else {
        return;
    };
    let mut rng = Rng::new(31);
    for (k, s) in [(3, 1), (3, 2), (5, 1), (5, 2)] {
        for (i, c) in [1, 7, 16, 17, 40, 81].into_iter().enumerate() {
            for in_w in [k, k + 3, k + 8, k + 13, 2 * k + 21, 4 * k + 29] {
                let padding = if (i + in_w) % 2 == 0 {
                    crate::window::Padding::Same
                } else {
                    crate::window::Padding::Valid
                };
                let spec = crate::window::WindowSpec {
                    k_h: k,
                    k_w: k,
                    stride_h: [1, 2, 3][(c + in_w) % 3],
                    stride_w: s,
                    padding,
                    ..crate::window::WindowSpec::new(1 + in_w % 2, k + 3, in_w, c, c)
                };
                let w = Window2d::new(spec).unwrap();
                let x = rng.vec_f32(w.input_len());
                let wt = rng.vec_f32(k * k * c);
                let bias = rng.vec_f32(c);
                let (lo, hi) = if in_w % 2 == 0 {
                    (f32::MIN, f32::MAX)
                } else {
                    (0.0, 0.5)
                };
                let p = DepthwiseF32::new(w, &wt, Some(&bias), lo, hi).unwrap();
                let want = r::depthwise_f32(&w, &x, &wt, Some(&bias), lo, hi);
                let mut got = vec![f32::NAN; w.output_len()];
                let mut fma = vec![f32::NAN; w.output_len()];
                for rows in row_splits(w.output_rows()) {
                    (a512.f32)(&p, &x, &mut got, rows.clone());
                    (a2.f32)(&p, &x, &mut fma, rows);
                }
                assert_close(&got, &want, 1e-5, &format!("dwconv f32 rows {w:?}"));
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits() as i32).collect::<Vec<_>>();
                if let Some((i, g, e)) = first_diff(&bits(&got), &bits(&fma)) {
                    panic!("dwconv f32 rows {w:?}: first difference from the AVX2 tiles at {i}: bits {g:#x}, want {e:#x}");
                }
            }
        }
    }
}

/// Output zero points far outside the 8-bit range (the kernel API takes any `Requant`): every
/// kernel still equals the reference (`rounded + zp`, then the clamp), including the row
/// kernel's 64-bit sums, with small scales (right shifts up to 22) and a clamp that is at or
/// above a very negative zero point.
#[test]
fn output_zero_points_outside_int8_match_reference() {
    let mut rng = Rng::new(31);
    for (k, s) in [(3, 1), (5, 2)] {
        for zp in [
            256,
            -256,
            100_000,
            -100_000,
            40_000,
            -3_000,
            300,
            -257,
            1 << 24,
            -(1 << 24),
        ] {
            for real in [0.0004, 0.02, 1.3] {
                let c = 20;
                let spec = crate::window::WindowSpec {
                    k_h: k,
                    k_w: k,
                    stride_h: 1,
                    stride_w: s,
                    padding: crate::window::Padding::Same,
                    ..crate::window::WindowSpec::new(1, k + 2, 2 * k + 13, c, c)
                };
                let w = Window2d::new(spec).unwrap();
                let x = rng.vec_i8(w.input_len());
                let wt: Vec<i8> = (0..k * k * c).map(|_| rng.range(-127, 127) as i8).collect();
                let bias: Vec<i32> = (0..c).map(|_| rng.range(-5000, 5000) as i32).collect();
                let rq = Requant::from_real(&[real], zp, -128, 127).unwrap();
                let q = QOut {
                    in_zp: rng.range(-128, 127) as i32,
                    mult: vec![rq.channel(0).0],
                    shift: vec![rq.channel(0).1],
                    out_zp: zp,
                    lo: -128,
                    hi: 127,
                };
                let p = DepthwiseQ::new(w, &wt, Some(&bias), q.in_zp, rq).unwrap();
                let xi: Vec<i32> = x.iter().map(|&v| v as i32).collect();
                let wi: Vec<i32> = wt.iter().map(|&v| v as i32).collect();
                let want = r::depthwise_q(&w, &xi, &wi, Some(&bias), &q);
                for p in [p.clone(), p.without_row_kernel()] {
                    let got = run_rows(&p, &x, &w);
                    if let Some((i, g, e)) = first_diff(&got, &want) {
                        panic!(
                            "dwconv i8 (row kernel {}) {k}x{k} s{s} zp {zp} real {real}: \
                             first difference at {i}: got {g}, want {e}",
                            p.has_row_kernel()
                        );
                    }
                }
            }
        }
    }
}
