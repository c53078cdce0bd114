use super::*;
use crate::reference::conv::{self as r, QOut};
use crate::requant::quantize_multiplier;
use crate::testutil::*;
use crate::window::{Padding, WindowSpec};

/// Hand-picked shapes (the first layer of MobileNet / ResNet, borders on every side, outputs
/// that end mid-block, one input channel, runs of exactly 16) and random ones, all `supports`ed.
fn cases(seed: u64, random: usize) -> Vec<Window2d> {
    let mut rng = Rng::new(seed);
    // (batch, h, w, c, oc, kh, kw, sh, sw, dh, padding)
    let fixed = [
        (1, 33, 35, 3, 32, 3, 3, 2, 2, 1, Padding::Same),
        (1, 32, 32, 3, 32, 3, 3, 2, 2, 1, Padding::Same),
        (1, 17, 19, 3, 24, 3, 3, 1, 1, 1, Padding::Same),
        (2, 9, 11, 3, 16, 3, 3, 2, 2, 1, Padding::Valid),
        (1, 21, 23, 3, 64, 7, 5, 2, 2, 1, Padding::Same),
        (1, 15, 13, 1, 33, 3, 3, 1, 1, 1, Padding::Same),
        (1, 12, 12, 4, 70, 3, 3, 2, 2, 1, Padding::Same),
        (1, 7, 9, 2, 1, 3, 5, 1, 2, 2, Padding::Same),
        (1, 6, 5, 16, 17, 2, 1, 2, 2, 1, Padding::Valid),
        (1, 1, 1, 3, 8, 3, 3, 1, 1, 1, Padding::Same),
        (3, 4, 4, 1, 48, 4, 4, 1, 1, 1, Padding::Valid),
        (1, 10, 3, 3, 40, 3, 3, 3, 3, 1, Padding::Same),
        (1, 9, 10, 8, 32, 3, 4, 1, 1, 1, Padding::Same),
        (2, 7, 6, 32, 20, 2, 1, 2, 2, 1, Padding::Valid),
        (1, 8, 7, 11, 33, 3, 2, 1, 2, 1, Padding::Same),
        // Extremes: the tallest window (dilated far past the image), the longest run with a
        // stride wider than the window, a window wider and taller than the image on both sides.
        (3, 5, 4, 16, 33, 16, 2, 1, 7, 3, Padding::Same),
        (1, 2, 40, 32, 16, 1, 1, 5, 9, 1, Padding::Valid),
        (2, 3, 2, 1, 5, 16, 16, 1, 1, 1, Padding::Same),
    ];
    let mut out = Vec::new();
    for (b, h, w, c, oc, kh, kw, sh, sw, dh, p) in fixed {
        let spec = WindowSpec {
            k_h: kh,
            k_w: kw,
            stride_h: sh,
            stride_w: sw,
            dilation_h: dh,
            padding: p,
            ..WindowSpec::new(b, h, w, c, oc)
        };
        out.push(Window2d::new(spec).unwrap());
    }
    while out.len() < fixed.len() + random {
        let c = if rng.range(0, 3) == 0 {
            rng.usize(5, 16)
        } else {
            rng.usize(1, 4)
        };
        let kw = rng.usize(1, (MAX_RUN / c).min(5));
        let spec = WindowSpec {
            k_h: rng.usize(1, 5),
            k_w: kw,
            stride_h: rng.usize(1, 3),
            stride_w: rng.usize(1, 3),
            dilation_h: rng.usize(1, 2),
            padding: if rng.range(0, 1) == 0 {
                Padding::Same
            } else {
                Padding::Valid
            },
            ..WindowSpec::new(
                rng.usize(1, 2),
                rng.usize(1, 14),
                rng.usize(1, 14),
                c,
                rng.usize(1, 70),
            )
        };
        if let Ok(w) = Window2d::new(spec) {
            out.push(w);
        }
    }
    for w in &out {
        assert!(supports(w), "{w:?}");
    }
    out
}

/// The whole output in one call, and in three calls over pixel ranges that start and end in
/// the middle of output rows (as a thread split makes them).
fn splits(w: &Window2d) -> Vec<Vec<Range<usize>>> {
    let p = w.output_pixels();
    let (a, b) = (p / 3 + 1, (2 * p) / 3 + 2);
    let (a, b) = (a.min(p), b.min(p));
    vec![vec![0..p], vec![0..a, a..b, b..p]]
}

fn name(w: &Window2d) -> String {
    format!(
        "{}x{}x{}x{} -> {} k{}x{} s{}x{} d{} pad {}/{}",
        w.batch,
        w.h.input,
        w.w.input,
        w.in_c,
        w.out_c,
        w.h.kernel,
        w.w.kernel,
        w.h.stride,
        w.w.stride,
        w.h.dilation,
        w.h.pad_before,
        w.w.pad_before
    )
}

/// Requantization variants: per-channel and per-tensor, the fast and the general evaluation
/// (a left shift), a ReLU clamp at the zero point (the floor variant), a wide clamp, and a zero
/// point far outside 8 bits (the kernel API takes any).
fn requants(rng: &mut Rng, oc: usize, k: usize) -> Vec<(Requant, QOut)> {
    let mut v = Vec::new();
    for variant in 0..5 {
        let n = if variant == 1 { 1 } else { oc };
        let mut mult = Vec::new();
        let mut shift = Vec::new();
        for _ in 0..n {
            // Outputs spread over the int8 range: random accumulators reach ~ 5000·√k.
            let real = if variant == 3 {
                2.0 + rng.f32().abs() as f64
            } else {
                (0.5 + rng.f32().abs() as f64) / ((k as f64).sqrt() * 60.0)
            };
            let (m, s) = quantize_multiplier(real);
            mult.push(m);
            shift.push(s);
        }
        let out_zp = if variant == 4 {
            [100_000, -100_000, 300, -257][rng.usize(0, 3)]
        } else {
            rng.range(-20, 20) as i32
        };
        let (lo, hi) = match variant {
            2 => (out_zp, 127),
            3 => (-128, 127),
            _ => (-128 + rng.range(0, 3) as i32, 127 - rng.range(0, 3) as i32),
        };
        let rq = Requant::new(mult.clone(), shift.clone(), out_zp, lo, hi).unwrap();
        let q = QOut {
            in_zp: 0,
            mult,
            shift,
            out_zp,
            lo,
            hi,
        };
        v.push((rq, q));
    }
    v
}

#[test]
fn i8_matches_reference() {
    if i8_kernel().is_none() {
        println!("skipped: no direct int8 kernel on this CPU");
        return;
    }
    let mut rng = Rng::new(71);
    for w in cases(72, 40) {
        let k = w.h.kernel * w.w.kernel * w.in_c;
        // The input exactly as long as the tensor: the last pixels must not read past it.
        let x = rng.vec_i8(w.input_len());
        let wt: Vec<i8> = rng
            .vec_i8(w.out_c * k)
            .into_iter()
            .map(|v| v.max(-127))
            .collect();
        let bias: Vec<i32> = (0..w.out_c)
            .map(|_| rng.range(-3000, 3000) as i32)
            .collect();
        let in_zp = [-128, -5, 0, 37, 127][rng.usize(0, 4)];
        for (vi, (rq, mut q)) in requants(&mut rng, w.out_c, k).into_iter().enumerate() {
            q.in_zp = in_zp;
            let xi: Vec<i32> = x.iter().map(|&v| v as i32).collect();
            let wi: Vec<i32> = wt.iter().map(|&v| v as i32).collect();
            let want: Vec<i8> = r::conv_q(&w, &xi, &wi, Some(&bias), &q)
                .into_iter()
                .map(|v| v as i8)
                .collect();
            let conv = DirectI8::new(w, &wt, Some(&bias), in_zp, rq)
                .unwrap()
                .unwrap();
            for split in splits(&w) {
                let mut got = vec![0i8; w.output_len()];
                let mut scratch = vec![0x55i8; conv.scratch_len()];
                for px in &split {
                    let o = &mut got[px.start * w.out_c..px.end * w.out_c];
                    conv.run(&x, px.clone(), o, &mut scratch);
                }
                if let Some((i, g, e)) = first_diff(&got, &want) {
                    panic!(
                        "{}: requant {vi}, in_zp {in_zp}, split {split:?}: output {i} \
                         (pixel {}, channel {}): got {g}, want {e}",
                        name(&w),
                        i / w.out_c,
                        i % w.out_c
                    );
                }
            }
        }
    }
}

#[test]
fn f32_matches_reference() {
    if f32_kernel().is_none() {
        println!("skipped: no direct f32 kernel on this CPU");
        return;
    }
    let mut rng = Rng::new(81);
    for (ci, w) in cases(82, 40).into_iter().enumerate() {
        let k = w.h.kernel * w.w.kernel * w.in_c;
        let x = rng.vec_f32(w.input_len());
        let wt = rng.vec_f32(w.out_c * k);
        let bias = rng.vec_f32(w.out_c);
        let (lo, hi) = if ci % 2 == 0 {
            (0.0, 6.0)
        } else {
            (f32::NEG_INFINITY, f32::INFINITY)
        };
        let with_bias = ci % 3 != 0;
        let b = with_bias.then_some(&bias[..]);
        let want = r::conv_f32(&w, &x, &wt, b, lo, hi);
        let conv = DirectF32::new(w, &wt, b, lo, hi).unwrap().unwrap();
        for split in splits(&w) {
            let mut got = vec![f32::NAN; w.output_len()];
            let mut scratch = vec![f32::NAN; conv.scratch_len()];
            for px in &split {
                let o = &mut got[px.start * w.out_c..px.end * w.out_c];
                conv.run(&x, px.clone(), o, &mut scratch);
            }
            assert_close(&got, &want, 1e-5, &format!("{} split {split:?}", name(&w)));
        }
    }
}

#[test]
fn refuses_what_it_does_not_take() {
    let spec = |c: usize, kw: usize, dw: usize| {
        Window2d::new(WindowSpec {
            k_h: 3,
            k_w: kw,
            dilation_w: dw,
            ..WindowSpec::new(1, 8, 8, c, 4)
        })
        .unwrap()
    };
    assert!(supports(&spec(3, 3, 1)));
    assert!(supports(&spec(32, 1, 1)));
    assert!(supports(&spec(8, 4, 1)));
    assert!(!supports(&spec(33, 1, 1)), "run above MAX_RUN");
    assert!(!supports(&spec(11, 3, 1)), "run 33");
    assert!(!supports(&spec(3, 3, 2)), "width dilation");
    if i8_kernel().is_none() {
        println!("skipped: no direct int8 kernel on this CPU");
        return;
    }
    let rq = Requant::new(vec![1 << 30], vec![-8], 0, -128, 127).unwrap();
    let w = spec(3, 3, 1);
    let err = DirectI8::new(w, &[0; 10], None, 0, rq.clone()).unwrap_err();
    assert!(
        matches!(
            err,
            DirectError::Length {
                what: "weights",
                ..
            }
        ),
        "{err}"
    );
    let err = DirectI8::new(w, &[0; 108], None, 300, rq.clone()).unwrap_err();
    assert_eq!(err, DirectError::ZeroPoint(300));
    let rq4 = Requant::new(vec![1 << 30; 3], vec![-8; 3], 0, -128, 127).unwrap();
    let err = DirectI8::new(w, &[0; 108], None, 0, rq4).unwrap_err();
    assert!(
        matches!(
            err,
            DirectError::Length {
                what: "requant",
                ..
            }
        ),
        "{err}"
    );
    assert!(DirectI8::new(spec(3, 3, 2), &[0; 108], None, 0, rq)
        .unwrap()
        .is_none());
}
