use super::*;
use crate::reference::conv::{self as r, QOut};
use crate::testutil::*;

fn cases(seed: u64) -> Vec<Window2d> {
    let mut v = window_cases(seed, 30, true, |_, rng| rng.usize(1, 40));
    // Direct 1×1 and a chunk boundary (pixels > CHUNK), and channel counts around tiles.
    for (hw, c, oc, k, s) in [
        (9, 16, 24, 1, 1),
        (10, 7, 33, 1, 2),
        (9, 3, 17, 3, 1),
        (1, 64, 70, 1, 1),
    ] {
        let spec = crate::window::WindowSpec {
            k_h: k,
            k_w: k,
            stride_h: s,
            stride_w: s,
            padding: crate::window::Padding::Same,
            ..crate::window::WindowSpec::new(1, hw, hw, c, oc)
        };
        v.push(Window2d::new(spec).unwrap());
    }
    v
}

/// Pixel and channel splits as a thread pool would make them.
fn splits(w: &Window2d) -> Vec<(Range<usize>, Range<usize>)> {
    let (p, n) = (w.output_pixels(), w.out_c);
    let (pm, nm) = (p / 3, n / 2);
    vec![(0..pm, 0..n), (pm..p, 0..nm), (pm..p, nm..n)]
}

#[test]
fn f32_matches_reference() {
    let mut rng = Rng::new(31);
    for w in cases(32) {
        let x = rng.vec_f32(w.input_len());
        let k = w.h.kernel * w.w.kernel * w.in_c;
        let wt = rng.vec_f32(w.out_c * k);
        let bias = rng.vec_f32(w.out_c);
        let b = (rng.range(0, 1) == 1).then_some(&bias[..]);
        let (lo, hi) = if rng.range(0, 1) == 0 {
            (f32::MIN, f32::MAX)
        } else {
            (-0.5, 1.5)
        };
        let conv = ConvF32::new(w, &wt, b, lo, hi).unwrap();
        let want = r::conv_f32(&w, &x, &wt, b, lo, hi);
        let mut got = vec![f32::NAN; w.output_len()];
        let mut scratch = vec![0.0; conv.scratch_len()];
        for (p, c) in splits(&w) {
            conv.run(&x, &mut got, p, c, &mut scratch);
        }
        assert_close(&got, &want, 1e-4, &format!("conv f32 {w:?}"));
    }
}

fn requant(rng: &mut Rng, oc: usize, per_channel: bool, unsigned: bool) -> (Requant, QOut) {
    let n = if per_channel { oc } else { 1 };
    let reals: Vec<f64> = (0..n)
        .map(|_| 0.0002 + rng.f32().abs() as f64 * 0.002)
        .collect();
    let zp = rng.range(-30, 30) as i32 + if unsigned { 128 } else { 0 };
    let (tmin, tmax) = if unsigned { (0, 255) } else { (-128, 127) };
    let (lo, hi) = if rng.range(0, 1) == 0 {
        (tmin, tmax)
    } else {
        (zp.max(tmin), tmax - 20)
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
    let mut rng = Rng::new(33);
    for w in cases(34) {
        let x = rng.vec_i8(w.input_len());
        let k = w.h.kernel * w.w.kernel * w.in_c;
        let wt: Vec<i8> = (0..w.out_c * k)
            .map(|_| rng.range(-127, 127) as i8)
            .collect();
        let bias: Vec<i32> = (0..w.out_c)
            .map(|_| rng.range(-20000, 20000) as i32)
            .collect();
        let b = (rng.range(0, 1) == 1).then_some(&bias[..]);
        let pc = rng.range(0, 3) > 0;
        let (rq, mut q) = requant(&mut rng, w.out_c, pc, false);
        q.in_zp = rng.range(-128, 127) as i32;
        let conv = ConvQ::new(w, &wt, b, ActQuant::i8(q.in_zp), rq).unwrap();
        let xi: Vec<i32> = x.iter().map(|&v| v as i32).collect();
        let wi: Vec<i32> = wt.iter().map(|&v| v as i32).collect();
        let want = r::conv_q(&w, &xi, &wi, b, &q);
        let mut got = vec![0i8; w.output_len()];
        let mut scratch = vec![0i8; conv.scratch_len()];
        for (p, c) in splits(&w) {
            conv.run(&x, &mut got, p, c, &mut scratch);
        }
        let got: Vec<i32> = got.iter().map(|&v| v as i32).collect();
        if let Some((i, g, e)) = first_diff(&got, &want) {
            panic!("conv i8 {w:?}: first difference at {i}: got {g}, want {e}");
        }
    }
}

#[test]
fn uint8_matches_reference_exactly() {
    let mut rng = Rng::new(35);
    for w in cases(36) {
        let x = rng.vec_u8(w.input_len());
        let k = w.h.kernel * w.w.kernel * w.in_c;
        let wt = rng.vec_u8(w.out_c * k);
        let w_zp = rng.range(0, 255) as i32;
        let bias: Vec<i32> = (0..w.out_c)
            .map(|_| rng.range(-20000, 20000) as i32)
            .collect();
        let (rq, mut q) = requant(&mut rng, w.out_c, false, true);
        q.in_zp = rng.range(0, 255) as i32;
        let conv = ConvQ::new_u8(w, &wt, w_zp, Some(&bias), ActQuant::u8(q.in_zp), rq).unwrap();
        let xi: Vec<i32> = x.iter().map(|&v| v as i32).collect();
        let wi: Vec<i32> = wt.iter().map(|&v| v as i32 - w_zp).collect();
        let want = r::conv_q(&w, &xi, &wi, Some(&bias), &q);
        let mut got = vec![0u8; w.output_len()];
        let mut scratch = vec![0u8; conv.scratch_len()];
        for (p, c) in splits(&w) {
            conv.run(&x, &mut got, p, c, &mut scratch);
        }
        let got: Vec<i32> = got.iter().map(|&v| v as i32).collect();
        if let Some((i, g, e)) = first_diff(&got, &want) {
            panic!("conv u8 {w:?}: first difference at {i}: got {g}, want {e}");
        }
    }
}

#[test]
fn bad_parameters_are_errors() {
    let w = Window2d::new(crate::window::WindowSpec::new(1, 4, 4, 3, 5)).unwrap();
    assert_eq!(
        ConvF32::new(w, &[0.0; 14], None, 0.0, 1.0).unwrap_err(),
        ConvError::Length {
            what: "weights",
            expected: 15,
            found: 14
        }
    );
    assert_eq!(
        ConvF32::new(w, &[0.0; 15], Some(&[0.0; 4]), 0.0, 1.0).unwrap_err(),
        ConvError::Length {
            what: "bias",
            expected: 5,
            found: 4
        }
    );
}

#[test]
fn hybrid_matches_reference() {
    let mut rng = Rng::new(37);
    let mut ws = cases(38);
    // A batch of 3 with > CHUNK pixels per image, so chunks meet image boundaries.
    ws.push(
        Window2d::new(crate::window::WindowSpec {
            k_h: 3,
            k_w: 3,
            padding: crate::window::Padding::Same,
            ..crate::window::WindowSpec::new(3, 9, 10, 5, 6)
        })
        .unwrap(),
    );
    for (case, w) in ws.into_iter().enumerate() {
        let k = w.h.kernel * w.w.kernel * w.in_c;
        let x: Vec<f32> = rng
            .vec_f32(w.input_len())
            .iter()
            .map(|v| v * 3.0 + 0.5)
            .collect();
        let wt: Vec<i8> = (0..w.out_c * k)
            .map(|_| rng.range(-127, 127) as i8)
            .collect();
        let per_channel = case % 2 == 0;
        let w_scales: Vec<f32> = if per_channel {
            (0..w.out_c)
                .map(|_| 0.001 + rng.f32().abs() * 0.01)
                .collect()
        } else {
            vec![0.004]
        };
        let bias = rng.vec_f32(w.out_c);
        let conv = ConvHybrid::new(w, &wt, &w_scales, Some(&bias), -2.0, 3.0).unwrap();
        assert_eq!(conv.per_channel(), per_channel && w.out_c > 1);
        let mut q = vec![0i8; w.input_len()];
        let (mut sc, mut zp) = (vec![0f32; w.batch], vec![0i32; w.batch]);
        conv.quantize_input(&x, &mut q, &mut sc, &mut zp);
        if !conv.per_channel() {
            assert!(
                zp.iter().all(|&z| z == 0),
                "per-tensor hybrid quantizes symmetrically"
            );
        }
        // Reference: integer sums per batch image with that image's zero point, then scales.
        let per_image = w.h.input * w.w.input * w.in_c;
        let out_image = w.h.output * w.w.output * w.out_c;
        let mut want = vec![0f32; w.output_len()];
        for b in 0..w.batch {
            let wb = Window2d { batch: 1, ..w };
            let xi: Vec<i32> = q[b * per_image..(b + 1) * per_image]
                .iter()
                .map(|&v| v as i32)
                .collect();
            let wi: Vec<i32> = wt.iter().map(|&v| v as i32).collect();
            let qo = QOut {
                in_zp: zp[b],
                mult: vec![1 << 30],
                shift: vec![1],
                out_zp: 0,
                lo: i32::MIN,
                hi: i32::MAX,
            };
            // multiplier 2^30 with shift 1 is the identity: the raw accumulator comes back.
            let acc = r::conv_q(&wb, &xi, &wi, None, &qo);
            for (i, &a) in acc.iter().enumerate() {
                let oc = i % w.out_c;
                let ws = if conv.per_channel() {
                    w_scales[oc]
                } else {
                    w_scales[0]
                };
                want[b * out_image + i] = (a as f32 * (sc[b] * ws) + bias[oc]).clamp(-2.0, 3.0);
            }
        }
        let mut got = vec![f32::NAN; w.output_len()];
        let mut scratch = vec![0i8; conv.scratch_len()];
        for (p, c) in splits(&w) {
            conv.run(&q, &sc, &zp, &mut got, p, c, &mut scratch);
        }
        assert_close(&got, &want, 1e-5, &format!("hybrid conv {w:?}"));
    }
}
