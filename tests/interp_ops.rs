//! Operators in f32 against plain reference loops on random shapes: stride, padding and
//! dilation corner cases, depth multipliers, broadcasting.

mod common;

use common::*;
use sparq::{Interpreter, Model, Options};
use sparq_schema::{Activation, DType, OpKind, OpOptions, Padding};

fn run(def: &sparq_schema::ModelDef, inputs: &[&[f32]]) -> Vec<f32> {
    run_threads(def, inputs, 1)
}

fn run_threads(def: &sparq_schema::ModelDef, inputs: &[&[f32]], threads: usize) -> Vec<f32> {
    let model = Model::from_def(def).expect("model");
    let opts = Options {
        threads,
        ..Options::default()
    };
    let mut it = Interpreter::new(&model, opts).expect("prepare");
    for (k, x) in inputs.iter().enumerate() {
        it.set_input(k, x).unwrap();
    }
    it.invoke().unwrap();
    it.output::<f32>(0).unwrap().to_vec()
}

fn out_size(p: Padding, i: usize, k: usize, s: usize, d: usize) -> (usize, usize) {
    let ek = (k - 1) * d + 1;
    let o = match p {
        Padding::Same => i.div_ceil(s),
        Padding::Valid => (i - ek) / s + 1,
    };
    let total = ((o - 1) * s + ek).saturating_sub(i);
    (o, total / 2)
}

fn act_apply(v: f32, a: Activation) -> f32 {
    match a {
        Activation::None => v,
        Activation::Relu => v.max(0.0),
        Activation::Relu6 => v.clamp(0.0, 6.0),
        Activation::ReluN1To1 => v.clamp(-1.0, 1.0),
        Activation::Tanh => v.tanh(),
    }
}

const ACTS: [Activation; 5] = [
    Activation::None,
    Activation::Relu,
    Activation::Relu6,
    Activation::ReluN1To1,
    Activation::Tanh,
];

#[test]
fn conv2d_f32_matches_reference() {
    let mut rng = Rng(0x1234_5678);
    for case in 0..60 {
        let (n, ih, iw, ic, oc) = (
            rng.range(1, 2),
            rng.range(1, 9),
            rng.range(1, 9),
            rng.range(1, 7),
            rng.range(1, 9),
        );
        let (kh, kw) = (rng.range(1, 3.min(ih)), rng.range(1, 3.min(iw)));
        let (sh, sw) = (rng.range(1, 3), rng.range(1, 3));
        let (dh, dw) = if case % 4 == 0 { (2, 2) } else { (1, 1) };
        let padding = if case % 2 == 0 {
            Padding::Same
        } else {
            Padding::Valid
        };
        if padding == Padding::Valid && ((kh - 1) * dh + 1 > ih || (kw - 1) * dw + 1 > iw) {
            continue;
        }
        let act = ACTS[case % 5];
        let (oh, pt) = out_size(padding, ih, kh, sh, dh);
        let (ow, pl) = out_size(padding, iw, kw, sw, dw);
        let x = rng.vec_f32(n * ih * iw * ic);
        let w = rng.vec_f32(oc * kh * kw * ic);
        let b = rng.vec_f32(oc);
        let mut m = OneOp::new();
        let xi = m.input(&[n, ih, iw, ic], DType::F32);
        let wi = m.constant(&[oc, kh, kw, ic], DType::F32, f32_bytes(&w));
        let bi = m.constant(&[oc], DType::F32, f32_bytes(&b));
        let opts = OpOptions::Conv2d {
            padding,
            stride_h: sh as i32,
            stride_w: sw as i32,
            dilation_h: dh as i32,
            dilation_w: dw as i32,
            activation: act,
        };
        let def = m.op(
            OpKind::Conv2d,
            opts,
            &[xi, wi, bi],
            &[n, oh, ow, oc],
            DType::F32,
        );
        let got = run(&def, &[&x]);
        let mut want = vec![0f32; n * oh * ow * oc];
        for bb in 0..n {
            for y in 0..oh {
                for xx in 0..ow {
                    for o in 0..oc {
                        let mut acc = b[o];
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (y * sh + ky * dh) as isize - pt as isize;
                                let ix = (xx * sw + kx * dw) as isize - pl as isize;
                                if iy < 0 || ix < 0 || iy >= ih as isize || ix >= iw as isize {
                                    continue;
                                }
                                for c in 0..ic {
                                    acc += x[((bb * ih + iy as usize) * iw + ix as usize) * ic + c]
                                        * w[((o * kh + ky) * kw + kx) * ic + c];
                                }
                            }
                        }
                        want[((bb * oh + y) * ow + xx) * oc + o] = act_apply(acc, act);
                    }
                }
            }
        }
        let what = format!("case {case}: conv in {n}x{ih}x{iw}x{ic} k {kh}x{kw} s {sh}x{sw} d {dh}x{dw} {padding:?} oc {oc}");
        assert_close(&got, &want, 1e-5, &what);
    }
}

#[test]
fn depthwise_f32_matches_reference() {
    let mut rng = Rng(0xdead_beef);
    for case in 0..60 {
        let (n, ih, iw, ic, mult) = (
            rng.range(1, 2),
            rng.range(1, 9),
            rng.range(1, 9),
            rng.range(1, 9),
            rng.range(1, 3),
        );
        let oc = ic * mult;
        let (kh, kw) = (rng.range(1, 5.min(ih)), rng.range(1, 5.min(iw)));
        let (sh, sw) = (rng.range(1, 2), rng.range(1, 2));
        let (dh, dw) = if case % 3 == 0 { (2, 1) } else { (1, 1) };
        let padding = if case % 2 == 0 {
            Padding::Same
        } else {
            Padding::Valid
        };
        if padding == Padding::Valid && ((kh - 1) * dh + 1 > ih || (kw - 1) * dw + 1 > iw) {
            continue;
        }
        let act = ACTS[case % 5];
        let (oh, pt) = out_size(padding, ih, kh, sh, dh);
        let (ow, pl) = out_size(padding, iw, kw, sw, dw);
        let x = rng.vec_f32(n * ih * iw * ic);
        let w = rng.vec_f32(kh * kw * oc);
        let b = rng.vec_f32(oc);
        let mut m = OneOp::new();
        let xi = m.input(&[n, ih, iw, ic], DType::F32);
        let wi = m.constant(&[1, kh, kw, oc], DType::F32, f32_bytes(&w));
        let bi = m.constant(&[oc], DType::F32, f32_bytes(&b));
        let opts = OpOptions::DepthwiseConv2d {
            padding,
            stride_h: sh as i32,
            stride_w: sw as i32,
            dilation_h: dh as i32,
            dilation_w: dw as i32,
            depth_multiplier: mult as i32,
            activation: act,
        };
        let def = m.op(
            OpKind::DepthwiseConv2d,
            opts,
            &[xi, wi, bi],
            &[n, oh, ow, oc],
            DType::F32,
        );
        let got = run(&def, &[&x]);
        let mut want = vec![0f32; n * oh * ow * oc];
        for bb in 0..n {
            for y in 0..oh {
                for xx in 0..ow {
                    for o in 0..oc {
                        let c = o / mult;
                        let mut acc = b[o];
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (y * sh + ky * dh) as isize - pt as isize;
                                let ix = (xx * sw + kx * dw) as isize - pl as isize;
                                if iy < 0 || ix < 0 || iy >= ih as isize || ix >= iw as isize {
                                    continue;
                                }
                                acc += x[((bb * ih + iy as usize) * iw + ix as usize) * ic + c]
                                    * w[(ky * kw + kx) * oc + o];
                            }
                        }
                        want[((bb * oh + y) * ow + xx) * oc + o] = act_apply(acc, act);
                    }
                }
            }
        }
        let what = format!(
            "case {case}: depthwise in {n}x{ih}x{iw}x{ic} k {kh}x{kw} mult {mult} {padding:?}"
        );
        assert_close(&got, &want, 1e-5, &what);
    }
}

#[test]
fn fully_connected_f32_matches_reference() {
    let mut rng = Rng(42);
    for (rows, ic, oc) in [
        (1, 1, 1),
        (1, 64, 10),
        (3, 7, 5),
        (4, 128, 33),
        (1, 1000, 1),
    ] {
        let x = rng.vec_f32(rows * ic);
        let w = rng.vec_f32(oc * ic);
        let b = rng.vec_f32(oc);
        let mut m = OneOp::new();
        let xi = m.input(&[rows, ic], DType::F32);
        let wi = m.constant(&[oc, ic], DType::F32, f32_bytes(&w));
        let bi = m.constant(&[oc], DType::F32, f32_bytes(&b));
        let opts = OpOptions::FullyConnected {
            activation: Activation::Relu,
            keep_num_dims: false,
            asymmetric_quantize_inputs: false,
        };
        let def = m.op(
            OpKind::FullyConnected,
            opts,
            &[xi, wi, bi],
            &[rows, oc],
            DType::F32,
        );
        let got = run(&def, &[&x]);
        let want: Vec<f32> = (0..rows * oc)
            .map(|i| {
                let (r, o) = (i / oc, i % oc);
                (b[o] + (0..ic).map(|k| x[r * ic + k] * w[o * ic + k]).sum::<f32>()).max(0.0)
            })
            .collect();
        assert_close(&got, &want, 1e-5, &format!("fc {rows}x{ic} -> {oc}"));
    }
}

#[test]
fn binary_broadcasting_matches_reference() {
    let mut rng = Rng(7);
    let cases: &[(&[usize], &[usize], &[usize])] = &[
        (&[2, 3], &[2, 3], &[2, 3]),
        (&[1, 4, 4, 8], &[8], &[1, 4, 4, 8]),
        (&[1, 4, 4, 8], &[1, 1, 1, 8], &[1, 4, 4, 8]),
        (&[3, 1, 5], &[1, 4, 1], &[3, 4, 5]),
        (&[1], &[2, 2], &[2, 2]),
        (&[], &[3], &[3]),
        (&[2, 1, 3], &[2, 4, 1], &[2, 4, 3]),
    ];
    for kind in [
        OpKind::Add,
        OpKind::Sub,
        OpKind::Mul,
        OpKind::Maximum,
        OpKind::Minimum,
        OpKind::SquaredDifference,
    ] {
        for (sa, sb, so) in cases {
            let a = rng.vec_f32(sa.iter().product());
            let b = rng.vec_f32(sb.iter().product());
            let mut m = OneOp::new();
            let ai = m.input(sa, DType::F32);
            let bi = m.input(sb, DType::F32);
            let opts = match kind {
                OpKind::Add | OpKind::Sub | OpKind::Mul => OpOptions::Elementwise {
                    activation: Activation::None,
                },
                _ => OpOptions::None,
            };
            let def = m.op(kind, opts, &[ai, bi], so, DType::F32);
            let got = run(&def, &[&a, &b]);
            // Reference: index each operand through its own broadcast.
            let r = so.len();
            let pad = |s: &[usize]| {
                let mut p = vec![1; r - s.len()];
                p.extend_from_slice(s);
                p
            };
            let (pa, pb) = (pad(sa), pad(sb));
            let n: usize = so.iter().product();
            let want: Vec<f32> = (0..n)
                .map(|i| {
                    let mut rem = i;
                    let (mut ia, mut ib, mut sta, mut stb) = (0, 0, 1, 1);
                    for d in (0..r).rev() {
                        let idx = rem % so[d];
                        rem /= so[d];
                        ia += if pa[d] == 1 { 0 } else { idx * sta };
                        ib += if pb[d] == 1 { 0 } else { idx * stb };
                        sta *= pa[d];
                        stb *= pb[d];
                    }
                    let (x, y) = (a[ia], b[ib]);
                    match kind {
                        OpKind::Add => x + y,
                        OpKind::Sub => x - y,
                        OpKind::Mul => x * y,
                        OpKind::Maximum => x.max(y),
                        OpKind::Minimum => x.min(y),
                        _ => (x - y) * (x - y),
                    }
                })
                .collect();
            assert_close(&got, &want, 1e-6, &format!("{kind} {sa:?} {sb:?}"));
        }
    }
}

#[test]
fn pools_mean_softmax_match_reference() {
    let mut rng = Rng(99);
    for (ih, iw, c, k, s, padding) in [
        (4, 4, 3, 2, 2, Padding::Valid),
        (5, 7, 2, 3, 2, Padding::Same),
        (8, 8, 4, 4, 4, Padding::Valid),
        (3, 3, 1, 3, 1, Padding::Same),
    ] {
        for kind in [OpKind::MaxPool2d, OpKind::AveragePool2d] {
            let (oh, pt) = out_size(padding, ih, k, s, 1);
            let (ow, pl) = out_size(padding, iw, k, s, 1);
            let x = rng.vec_f32(ih * iw * c);
            let mut m = OneOp::new();
            let xi = m.input(&[1, ih, iw, c], DType::F32);
            let opts = OpOptions::Pool2d {
                padding,
                stride_h: s as i32,
                stride_w: s as i32,
                filter_h: k as i32,
                filter_w: k as i32,
                activation: Activation::None,
            };
            let def = m.op(kind, opts, &[xi], &[1, oh, ow, c], DType::F32);
            let got = run(&def, &[&x]);
            let mut want = vec![0f32; oh * ow * c];
            for y in 0..oh {
                for xx in 0..ow {
                    for ch in 0..c {
                        let mut vals = Vec::new();
                        for ky in 0..k {
                            for kx in 0..k {
                                let iy = (y * s + ky) as isize - pt as isize;
                                let ix = (xx * s + kx) as isize - pl as isize;
                                if iy >= 0 && ix >= 0 && (iy as usize) < ih && (ix as usize) < iw {
                                    vals.push(x[(iy as usize * iw + ix as usize) * c + ch]);
                                }
                            }
                        }
                        want[(y * ow + xx) * c + ch] = if kind == OpKind::MaxPool2d {
                            vals.iter().cloned().fold(f32::NEG_INFINITY, f32::max)
                        } else {
                            vals.iter().sum::<f32>() / vals.len() as f32
                        };
                    }
                }
            }
            assert_close(
                &got,
                &want,
                1e-6,
                &format!("{kind} {ih}x{iw}x{c} k{k} s{s} {padding:?}"),
            );
        }
    }
    // MEAN over H and W, keep_dims both ways.
    for keep in [false, true] {
        let x = rng.vec_f32(2 * 3 * 5 * 4);
        let mut m = OneOp::new();
        let xi = m.input(&[2, 3, 5, 4], DType::F32);
        let ax = m.constant(&[2], DType::I32, i32_bytes(&[1, -2]));
        let out: &[usize] = if keep { &[2, 1, 1, 4] } else { &[2, 4] };
        let def = m.op(
            OpKind::Mean,
            OpOptions::Reducer { keep_dims: keep },
            &[xi, ax],
            out,
            DType::F32,
        );
        let got = run(&def, &[&x]);
        let want: Vec<f32> = (0..8)
            .map(|i| {
                let (b, c) = (i / 4, i % 4);
                (0..15).map(|p| x[(b * 15 + p) * 4 + c]).sum::<f32>() / 15.0
            })
            .collect();
        assert_close(&got, &want, 1e-6, &format!("mean keep_dims {keep}"));
    }
    // SOFTMAX.
    let x: Vec<f32> = rng.vec_f32(3 * 10).iter().map(|v| v * 20.0).collect();
    let mut m = OneOp::new();
    let xi = m.input(&[3, 10], DType::F32);
    let def = m.op(
        OpKind::Softmax,
        OpOptions::Softmax { beta: 1.0 },
        &[xi],
        &[3, 10],
        DType::F32,
    );
    let got = run(&def, &[&x]);
    let mut want = Vec::new();
    for r in x.chunks(10) {
        let e: Vec<f64> = r.iter().map(|&v| (v as f64).exp()).collect();
        let s: f64 = e.iter().sum();
        want.extend(e.iter().map(|v| (v / s) as f32));
    }
    assert_close(&got, &want, 1e-6, "softmax");
}

#[test]
fn data_movement_ops() {
    let mut rng = Rng(5);
    // Concatenation on the channel axis.
    let a = rng.vec_f32(2 * 3 * 2);
    let b = rng.vec_f32(2 * 3 * 4);
    let mut m = OneOp::new();
    let ai = m.input(&[2, 3, 2], DType::F32);
    let bi = m.input(&[2, 3, 4], DType::F32);
    let def = m.op(
        OpKind::Concatenation,
        OpOptions::Concatenation {
            axis: -1,
            activation: Activation::None,
        },
        &[ai, bi],
        &[2, 3, 6],
        DType::F32,
    );
    let got = run(&def, &[&a, &b]);
    let want: Vec<f32> = (0..6)
        .flat_map(|r| {
            a[r * 2..r * 2 + 2]
                .iter()
                .chain(&b[r * 4..r * 4 + 4])
                .cloned()
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(got, want);
    // Pad.
    let x = rng.vec_f32(2 * 3);
    let mut m = OneOp::new();
    let xi = m.input(&[1, 2, 3], DType::F32);
    let p = m.constant(&[3, 2], DType::I32, i32_bytes(&[0, 0, 1, 2, 2, 0]));
    let def = m.op(
        OpKind::Pad,
        OpOptions::None,
        &[xi, p],
        &[1, 5, 5],
        DType::F32,
    );
    let got = run(&def, &[&x]);
    let mut want = vec![0f32; 25];
    for r in 0..2 {
        for c in 0..3 {
            want[(r + 1) * 5 + c + 2] = x[r * 3 + c];
        }
    }
    assert_eq!(got, want);
    // Reshape with -1.
    let x = rng.vec_f32(12);
    let mut m = OneOp::new();
    let xi = m.input(&[1, 3, 4], DType::F32);
    let def = m.op(
        OpKind::Reshape,
        OpOptions::Reshape {
            new_shape: vec![-1, 6],
        },
        &[xi],
        &[2, 6],
        DType::F32,
    );
    assert_eq!(run(&def, &[&x]), x);
}

fn prepare(def: &sparq_schema::ModelDef) -> sparq::Result<()> {
    let model = Model::from_def(def)?;
    Interpreter::new(&model, Options::default()).map(|_| ())
}

#[test]
fn bad_models_give_errors_naming_the_operator() {
    // Declared output shape disagrees with the computed one.
    let mut m = OneOp::new();
    let xi = m.input(&[1, 4], DType::F32);
    let w = m.constant(&[3, 4], DType::F32, f32_bytes(&[0.0; 12]));
    let def = m.op(
        OpKind::FullyConnected,
        OpOptions::FullyConnected {
            activation: Activation::None,
            keep_num_dims: false,
            asymmetric_quantize_inputs: false,
        },
        &[xi, w],
        &[1, 5],
        DType::F32,
    );
    let e = prepare(&def).unwrap_err().to_string();
    assert!(
        e.contains("operator 0 (FullyConnected)") && e.contains("[1, 5]"),
        "{e}"
    );
    // Weight shape mismatch.
    let mut m = OneOp::new();
    let xi = m.input(&[1, 4], DType::F32);
    let w = m.constant(&[3, 5], DType::F32, f32_bytes(&[0.0; 15]));
    let def = m.op(
        OpKind::FullyConnected,
        OpOptions::FullyConnected {
            activation: Activation::None,
            keep_num_dims: false,
            asymmetric_quantize_inputs: false,
        },
        &[xi, w],
        &[1, 3],
        DType::F32,
    );
    assert!(prepare(&def).is_err());
    // Constant data of the wrong length.
    let mut m = OneOp::new();
    let xi = m.input(&[1, 4], DType::F32);
    let w = m.constant(&[3, 4], DType::F32, f32_bytes(&[0.0; 11]));
    let def = m.op(
        OpKind::FullyConnected,
        OpOptions::FullyConnected {
            activation: Activation::None,
            keep_num_dims: false,
            asymmetric_quantize_inputs: false,
        },
        &[xi, w],
        &[1, 3],
        DType::F32,
    );
    let e = prepare(&def).unwrap_err().to_string();
    assert!(e.contains("c1"), "{e}");
    // Index out of range.
    let mut m = OneOp::new();
    let xi = m.input(&[1, 4], DType::F32);
    let def = m.op(
        OpKind::Relu,
        OpOptions::None,
        &[xi + 7],
        &[1, 4],
        DType::F32,
    );
    assert!(prepare(&def).is_err());
    // Wrong input size at run time.
    let mut m = OneOp::new();
    let xi = m.input(&[1, 4], DType::F32);
    let def = m.op(OpKind::Relu, OpOptions::None, &[xi], &[1, 4], DType::F32);
    let model = Model::from_def(&def).unwrap();
    let mut it = Interpreter::new(&model, Options::default()).unwrap();
    assert!(it.set_input(0, &[1.0f32; 3]).is_err());
    assert!(it.set_input(0, &[1i8; 4]).is_err());
    assert!(it.set_input(1, &[1.0f32; 4]).is_err());
}

#[test]
fn window_ops_split_across_threads_identically() {
    // Big enough to be split: each thread computes its rows as its own sub-window, with the
    // padding its rows see. Outputs must equal the one-thread run exactly.
    let mut rng = Rng(77);
    for (ih, iw, c, k, s, d, padding) in [
        (41, 23, 32, 3, 1, 1, Padding::Same),
        (40, 40, 24, 3, 2, 1, Padding::Same),
        (37, 19, 16, 5, 2, 1, Padding::Valid),
        (30, 30, 16, 3, 1, 2, Padding::Same),
    ] {
        let w = rng.vec_f32(k * k * c);
        let b = rng.vec_f32(c);
        let x = rng.vec_f32(ih * iw * c);
        let (oh, _) = out_size(padding, ih, k, s, d);
        let (ow, _) = out_size(padding, iw, k, s, d);
        let mut m = OneOp::new();
        let xi = m.input(&[1, ih, iw, c], DType::F32);
        let wi = m.constant(&[1, k, k, c], DType::F32, f32_bytes(&w));
        let bi = m.constant(&[c], DType::F32, f32_bytes(&b));
        let opts = OpOptions::DepthwiseConv2d {
            padding,
            stride_h: s as i32,
            stride_w: s as i32,
            dilation_h: d as i32,
            dilation_w: d as i32,
            depth_multiplier: 1,
            activation: Activation::Relu6,
        };
        let def = m.op(
            OpKind::DepthwiseConv2d,
            opts,
            &[xi, wi, bi],
            &[1, oh, ow, c],
            DType::F32,
        );
        let one = run_threads(&def, &[&x], 1);
        for threads in [2, 3] {
            let many = run_threads(&def, &[&x], threads);
            let first = one.iter().zip(&many).position(|(a, b)| a != b);
            assert!(first.is_none(), "depthwise {ih}x{iw}x{c} k{k} s{s} d{d} {padding:?}, {threads} threads: element {first:?} differs");
        }
    }
}
