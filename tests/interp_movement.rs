//! Data-movement operators through the interpreter (one-op models) against plain reference
//! loops: STRIDED_SLICE, SLICE, TRANSPOSE, DEPTH_TO_SPACE, SPACE_TO_DEPTH, GATHER,
//! RESIZE_NEAREST_NEIGHBOR, RESIZE_BILINEAR, in f32 and 8-bit (exact for integers).

mod common;

use common::*;
use sparq::{Interpreter, Model, Options};
use sparq_schema::{DType, ModelDef, OpKind, OpOptions, Quantization, TensorDef};

/// A one-op model: input `x` (quantized for 8-bit dtypes), constant i32 inputs, output with the
/// input's dtype and quantization.
fn model(
    kind: OpKind,
    options: OpOptions,
    xs: &[usize],
    dtype: DType,
    consts: &[(Vec<usize>, Vec<i32>)],
    out: &[usize],
) -> ModelDef {
    let quant = match dtype {
        DType::U8 => Some(Quantization::per_tensor(0.05, 128)),
        DType::I8 => Some(Quantization::per_tensor(0.05, -3)),
        _ => None,
    };
    let mut def = ModelDef::default();
    let mut x = TensorDef::activation("x", dims(xs), dtype);
    x.quant = quant.clone();
    let xi = def.add_tensor(x);
    def.inputs.push(xi);
    let mut ins = vec![xi as i32];
    for (k, (s, v)) in consts.iter().enumerate() {
        ins.push(def.add_tensor(TensorDef::constant(
            format!("c{k}"),
            dims(s),
            DType::I32,
            i32_bytes(v),
        )) as i32);
    }
    let mut o = TensorDef::activation("out", dims(out), dtype);
    o.quant = quant;
    let oi = def.add_tensor(o);
    def.add_op(kind, options, &ins, &[oi as i32]);
    def.outputs.push(oi);
    def
}

fn run_bytes(def: &ModelDef, x: &[u8], threads: usize) -> Vec<u8> {
    let m = Model::from_def(def).expect("model");
    let mut it = Interpreter::new(
        &m,
        Options {
            threads,
            ..Options::default()
        },
    )
    .expect("prepare");
    it.set_input_bytes(0, x).unwrap();
    it.invoke().unwrap();
    it.output_bytes(0).unwrap().to_vec()
}

/// Random input bytes for `n` elements of `dtype` (f32 values finite).
fn input(rng: &mut Rng, n: usize, dtype: DType) -> Vec<u8> {
    match dtype {
        DType::F32 => f32_bytes(&rng.vec_f32(n)),
        _ => (0..n).map(|_| rng.next_u64() as u8).collect(),
    }
}

/// Element-wise gather by index lists: `out[i] = x[src[i]]` on elements of `elem` bytes.
fn gather_elems(x: &[u8], src: &[usize], elem: usize) -> Vec<u8> {
    src.iter()
        .flat_map(|&s| x[s * elem..(s + 1) * elem].to_vec())
        .collect()
}

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// Source element of every output element when output dim `d` walks `lists[d]` (input
/// coordinates) — a plain nested loop over the output.
fn walk(in_shape: &[usize], lists: &[Vec<usize>]) -> Vec<usize> {
    let st = strides(in_shape);
    let mut out = vec![0usize];
    for (d, l) in lists.iter().enumerate() {
        out = out
            .iter()
            .flat_map(|&base| {
                let sd = st[d];
                l.iter().map(move |&i| base + i * sd)
            })
            .collect();
    }
    out
}

fn assert_same(got: &[u8], want: &[u8], elem: usize, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: output bytes");
    if let Some(i) = (0..got.len() / elem)
        .find(|&i| got[i * elem..(i + 1) * elem] != want[i * elem..(i + 1) * elem])
    {
        panic!(
            "{what}: element {i} differs: got {:?}, want {:?}",
            &got[i * elem..(i + 1) * elem],
            &want[i * elem..(i + 1) * elem]
        );
    }
}

const DTYPES: [DType; 3] = [DType::F32, DType::U8, DType::I8];

#[test]
fn strided_slice_and_slice_match_reference() {
    let mut rng = Rng(0x51);
    for case in 0..60 {
        let dtype = DTYPES[case % 3];
        let elem = dtype.size_bytes();
        let rank = rng.range(1, 4);
        let xs: Vec<usize> = (0..rank).map(|_| rng.range(1, 7)).collect();
        // Per dim: begin, end, stride (possibly negative, possibly out of range: clamped).
        let mut begin = Vec::new();
        let mut end = Vec::new();
        let mut step = Vec::new();
        let mut lists = Vec::new();
        let (mut bm, mut em, mut sm) = (0i32, 0i32, 0i32);
        let mut out_shape = Vec::new();
        for (d, &n) in xs.iter().enumerate() {
            let n = n as i64;
            let s: i64 = [1, 1, 2, 3, -1, -2][rng.below(6)];
            let b = rng.below(n as usize + 3) as i64 - 1 - n / 2;
            let e = rng.below(n as usize + 3) as i64 - 1 - n / 2;
            let (bmask, emask) = (rng.below(4) == 0, rng.below(4) == 0);
            let shrink = case % 5 == 0 && d == 0 && !bmask;
            bm |= (bmask as i32) << d;
            em |= (emask as i32) << d;
            sm |= (shrink as i32) << d;
            let norm = |v: i64| if v < 0 { v + n } else { v };
            let list: Vec<usize> = if shrink {
                let i = norm(b);
                if !(0..n).contains(&i) {
                    // Out-of-range shrink index: not a valid model; pick 0.
                    begin.push(0);
                    end.push(1);
                    step.push(1);
                    lists.push(vec![0]);
                    continue;
                }
                vec![i as usize]
            } else if s > 0 {
                let lo = if bmask { 0 } else { norm(b).clamp(0, n) };
                let hi = if emask { n } else { norm(e).clamp(0, n) };
                (lo..hi).step_by(s as usize).map(|v| v as usize).collect()
            } else {
                let lo = if bmask {
                    n - 1
                } else {
                    norm(b).clamp(-1, n - 1)
                };
                let hi = if emask { -1 } else { norm(e).clamp(-1, n - 1) };
                let mut v = Vec::new();
                let mut i = lo;
                while i > hi {
                    v.push(i as usize);
                    i += s;
                }
                v
            };
            begin.push(b as i32);
            end.push(if shrink { b as i32 + 1 } else { e as i32 });
            step.push(if shrink { 1 } else { s as i32 });
            if !shrink {
                out_shape.push(list.len());
            }
            lists.push(list);
        }
        let want_src = walk(&xs, &lists);
        let x = input(&mut rng, xs.iter().product(), dtype);
        let want = gather_elems(&x, &want_src, elem);
        let def = model(
            OpKind::StridedSlice,
            OpOptions::StridedSlice {
                begin_mask: bm,
                end_mask: em,
                ellipsis_mask: 0,
                new_axis_mask: 0,
                shrink_axis_mask: sm,
                offset: false,
            },
            &xs,
            dtype,
            &[
                (vec![rank], begin.clone()),
                (vec![rank], end.clone()),
                (vec![rank], step.clone()),
            ],
            &out_shape,
        );
        let what = format!(
            "case {case}: {dtype} strided slice of {xs:?} begin {begin:?} end {end:?} strides {step:?} masks {bm}/{em}/{sm}"
        );
        assert_same(&run_bytes(&def, &x, 1), &want, elem, &what);
    }
    // SLICE with size -1.
    for (case, dtype) in DTYPES.into_iter().enumerate() {
        let elem = dtype.size_bytes();
        let xs = [2usize, 5, 3];
        let x = input(&mut rng, 30, dtype);
        let lists = vec![vec![1], vec![1, 2, 3, 4], vec![0, 1]];
        let want = gather_elems(&x, &walk(&xs, &lists), elem);
        let def = model(
            OpKind::Slice,
            OpOptions::None,
            &xs,
            dtype,
            &[(vec![3], vec![1, 1, 0]), (vec![3], vec![1, -1, 2])],
            &[1, 4, 2],
        );
        let what = format!("case {case}: {dtype} slice of {xs:?}");
        assert_same(&run_bytes(&def, &x, 1), &want, elem, &what);
    }
}

#[test]
fn transpose_depth_space_gather_match_reference() {
    let mut rng = Rng(0x7a);
    for case in 0..30 {
        let dtype = DTYPES[case % 3];
        let elem = dtype.size_bytes();
        let rank = rng.range(1, 5);
        let xs: Vec<usize> = (0..rank).map(|_| rng.range(1, 5)).collect();
        // A random permutation.
        let mut perm: Vec<usize> = (0..rank).collect();
        for i in (1..rank).rev() {
            perm.swap(i, rng.below(i + 1));
        }
        let out_shape: Vec<usize> = perm.iter().map(|&p| xs[p]).collect();
        let x = input(&mut rng, xs.iter().product(), dtype);
        let st = strides(&xs);
        let mut src = vec![0usize];
        for &p in &perm {
            src = src
                .iter()
                .flat_map(|&b| {
                    let sp = st[p];
                    (0..xs[p]).map(move |i| b + i * sp)
                })
                .collect();
        }
        let want = gather_elems(&x, &src, elem);
        let perm_i32: Vec<i32> = perm.iter().map(|&p| p as i32).collect();
        let def = model(
            OpKind::Transpose,
            OpOptions::None,
            &xs,
            dtype,
            &[(vec![rank], perm_i32)],
            &out_shape,
        );
        let what = format!("case {case}: {dtype} transpose {xs:?} by {perm:?}");
        assert_same(&run_bytes(&def, &x, 1), &want, elem, &what);
    }
    for case in 0..12 {
        let dtype = DTYPES[case % 3];
        let elem = dtype.size_bytes();
        let bs = rng.range(2, 3);
        let (n, h, w, c) = (
            rng.range(1, 2),
            rng.range(1, 4),
            rng.range(1, 4),
            rng.range(1, 3),
        );
        // DEPTH_TO_SPACE: [n, h, w, bs*bs*c] -> [n, h*bs, w*bs, c].
        let xs = [n, h, w, bs * bs * c];
        let x = input(&mut rng, xs.iter().product(), dtype);
        let mut src = Vec::new();
        for b in 0..n {
            for oy in 0..h * bs {
                for ox in 0..w * bs {
                    for ch in 0..c {
                        let ic = ((oy % bs) * bs + ox % bs) * c + ch;
                        src.push(((b * h + oy / bs) * w + ox / bs) * xs[3] + ic);
                    }
                }
            }
        }
        let def = model(
            OpKind::DepthToSpace,
            OpOptions::DepthToSpace {
                block_size: bs as i32,
            },
            &xs,
            dtype,
            &[],
            &[n, h * bs, w * bs, c],
        );
        let what = format!("case {case}: {dtype} depth_to_space {xs:?} block {bs}");
        let got = run_bytes(&def, &x, 1);
        assert_same(&got, &gather_elems(&x, &src, elem), elem, &what);
        // SPACE_TO_DEPTH undoes it.
        let ys = [n, h * bs, w * bs, c];
        let def = model(
            OpKind::SpaceToDepth,
            OpOptions::SpaceToDepth {
                block_size: bs as i32,
            },
            &ys,
            dtype,
            &[],
            &xs,
        );
        let what = format!("case {case}: {dtype} space_to_depth {ys:?} block {bs}");
        assert_same(&run_bytes(&def, &got, 1), &x, elem, &what);
    }
    // GATHER on every axis with constant indices (repeats included).
    for case in 0..18 {
        let dtype = DTYPES[case % 3];
        let elem = dtype.size_bytes();
        let xs = [rng.range(1, 4), rng.range(1, 5), rng.range(1, 4)];
        let axis = case % 3;
        let idx: Vec<i32> = (0..rng.range(1, 5))
            .map(|_| rng.below(xs[axis]) as i32)
            .collect();
        let mut lists: Vec<Vec<usize>> = xs.iter().map(|&n| (0..n).collect()).collect();
        lists[axis] = idx.iter().map(|&i| i as usize).collect();
        let mut out_shape = xs.to_vec();
        out_shape[axis] = idx.len();
        let x = input(&mut rng, xs.iter().product(), dtype);
        let want = gather_elems(&x, &walk(&xs, &lists), elem);
        let def = model(
            OpKind::Gather,
            OpOptions::Gather {
                axis: axis as i32 - if case % 2 == 0 { 3 } else { 0 },
                batch_dims: 0,
            },
            &xs,
            dtype,
            &[(vec![idx.len()], idx.clone())],
            &out_shape,
        );
        let what = format!("case {case}: {dtype} gather {xs:?} axis {axis} indices {idx:?}");
        assert_same(&run_bytes(&def, &x, 1), &want, elem, &what);
    }
}

#[test]
fn resize_matches_reference() {
    let mut rng = Rng(0x4e);
    for case in 0..36 {
        let dtype = DTYPES[case % 3];
        let elem = dtype.size_bytes();
        let (n, ih, iw, c) = (
            rng.range(1, 2),
            rng.range(1, 5),
            rng.range(1, 5),
            rng.range(1, 4),
        );
        let (oh, ow) = (rng.range(1, 9), rng.range(1, 9));
        let (align, half) = match case % 4 {
            0 => (false, false),
            1 => (true, false),
            _ => (false, true),
        };
        let xs = [n, ih, iw, c];
        let x = input(&mut rng, xs.iter().product(), dtype);
        let opts = OpOptions::Resize {
            align_corners: align,
            half_pixel_centers: half,
        };
        let size = vec![(vec![2], vec![oh as i32, ow as i32])];
        let what = format!(
            "case {case}: {dtype} {xs:?} -> {oh}x{ow} align_corners {align} half_pixel {half}"
        );
        // Nearest (TFLite's reference formula).
        let near = |o: usize, i: usize, out: usize| -> usize {
            let scale = if align && out > 1 {
                (i - 1) as f32 / (out - 1) as f32
            } else {
                i as f32 / out as f32
            };
            let off = if half { 0.5 } else { 0.0 };
            let v = (o as f32 + off) * scale;
            let v = if align { v.round() } else { v.floor() };
            (v as usize).min(i - 1)
        };
        let lists = vec![
            (0..n).collect(),
            (0..oh).map(|o| near(o, ih, oh)).collect(),
            (0..ow).map(|o| near(o, iw, ow)).collect(),
            (0..c).collect::<Vec<_>>(),
        ];
        let def = model(
            OpKind::ResizeNearestNeighbor,
            opts.clone(),
            &xs,
            dtype,
            &size,
            &[n, oh, ow, c],
        );
        let want = gather_elems(&x, &walk(&xs, &lists), elem);
        assert_same(
            &run_bytes(&def, &x, 1),
            &want,
            elem,
            &format!("nearest {what}"),
        );
        // Bilinear: f32 against a plain loop, 8-bit against the kernel crate exactly.
        let def = model(
            OpKind::ResizeBilinear,
            opts,
            &xs,
            dtype,
            &size,
            &[n, oh, ow, c],
        );
        let got = run_bytes(&def, &x, 1);
        let plan = sparq_kernels::resize::ResizePlan::new(
            "RESIZE_BILINEAR",
            &xs,
            oh as i64,
            ow as i64,
            align,
            half,
        )
        .unwrap();
        match dtype {
            DType::F32 => {
                let xf: Vec<f32> = bytemuck_f32(&x);
                let scale = |i: usize, o: usize| {
                    if align && o > 1 {
                        (i - 1) as f32 / (o - 1) as f32
                    } else {
                        i as f32 / o as f32
                    }
                };
                let coord = |o: usize, i: usize, out: usize| {
                    let s = if half {
                        (o as f32 + 0.5) * scale(i, out) - 0.5
                    } else {
                        o as f32 * scale(i, out)
                    };
                    let lo = (s.floor() as i64).max(0) as usize;
                    let hi = (s.ceil() as i64).clamp(0, i as i64 - 1) as usize;
                    (s - lo as f32, lo, hi)
                };
                let mut want = Vec::new();
                for b in 0..n {
                    for y in 0..oh {
                        let (dy, y0, y1) = coord(y, ih, oh);
                        for xo in 0..ow {
                            let (dx, x0, x1) = coord(xo, iw, ow);
                            for ch in 0..c {
                                let at =
                                    |yy: usize, xx: usize| xf[((b * ih + yy) * iw + xx) * c + ch];
                                want.push(
                                    at(y0, x0) * (1.0 - dy) * (1.0 - dx)
                                        + at(y1, x0) * dy * (1.0 - dx)
                                        + at(y0, x1) * (1.0 - dy) * dx
                                        + at(y1, x1) * dy * dx,
                                );
                            }
                        }
                    }
                }
                assert_close(
                    &bytemuck_f32(&got),
                    &want,
                    1e-5,
                    &format!("bilinear {what}"),
                );
            }
            DType::U8 => {
                let mut want = vec![0u8; n * oh * ow * c];
                sparq_kernels::resize::resize_bilinear_u8(&plan, &x, &mut want);
                assert_same(&got, &want, 1, &format!("bilinear {what}"));
            }
            _ => {
                let xi: Vec<i8> = x.iter().map(|&v| v as i8).collect();
                let mut want = vec![0i8; n * oh * ow * c];
                sparq_kernels::resize::resize_bilinear_i8(&plan, &xi, &mut want);
                let want: Vec<u8> = want.iter().map(|&v| v as u8).collect();
                assert_same(&got, &want, 1, &format!("bilinear {what}"));
            }
        }
    }
}

fn bytemuck_f32(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[test]
fn movement_errors_name_the_operator() {
    let prep = |def: &ModelDef| {
        let m = Model::from_def(def).expect("model");
        Interpreter::new(&m, Options::default())
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    // Out-of-range gather index.
    let def = model(
        OpKind::Gather,
        OpOptions::Gather {
            axis: 0,
            batch_dims: 0,
        },
        &[3, 2],
        DType::F32,
        &[(vec![2], vec![0, 3])],
        &[2, 2],
    );
    let e = prep(&def);
    assert!(e.contains("Gather") && e.contains("index 3"), "{e}");
    // Not a permutation.
    let def = model(
        OpKind::Transpose,
        OpOptions::None,
        &[2, 3],
        DType::F32,
        &[(vec![2], vec![0, 0])],
        &[2, 2],
    );
    let e = prep(&def);
    assert!(e.contains("Transpose"), "{e}");
    // Depth not divisible by block².
    let def = model(
        OpKind::DepthToSpace,
        OpOptions::DepthToSpace { block_size: 2 },
        &[1, 2, 2, 3],
        DType::F32,
        &[],
        &[1, 4, 4, 1],
    );
    let e = prep(&def);
    assert!(e.contains("DepthToSpace"), "{e}");
    // Non-positive resize size.
    let def = model(
        OpKind::ResizeBilinear,
        OpOptions::Resize {
            align_corners: false,
            half_pixel_centers: false,
        },
        &[1, 2, 2, 1],
        DType::F32,
        &[(vec![2], vec![0, 4])],
        &[1, 1, 4, 1],
    );
    let e = prep(&def);
    assert!(e.contains("ResizeBilinear"), "{e}");
    // TRANSPOSE_CONV whose output shape disagrees with the weights' output channels.
    let mut def = ModelDef::default();
    let s = def.add_tensor(TensorDef::constant(
        "output_shape",
        vec![4],
        DType::I32,
        i32_bytes(&[1, 4, 4, 3]),
    ));
    let w = def.add_tensor(TensorDef::constant(
        "w",
        vec![2, 3, 3, 1],
        DType::F32,
        f32_bytes(&[0.5; 18]),
    ));
    let x = def.add_tensor(TensorDef::activation("x", vec![1, 2, 2, 1], DType::F32));
    def.inputs.push(x);
    let o = def.add_tensor(TensorDef::activation("out", vec![1, 4, 4, 3], DType::F32));
    def.add_op(
        OpKind::TransposeConv,
        OpOptions::TransposeConv {
            padding: sparq_schema::Padding::Same,
            stride_h: 2,
            stride_w: 2,
            activation: sparq_schema::Activation::None,
        },
        &[s as i32, w as i32, x as i32],
        &[o as i32],
    );
    def.outputs.push(o);
    let e = prep(&def);
    assert!(
        e.contains("TransposeConv") && e.contains("output channels"),
        "{e}"
    );
}

/// 8-bit CONCATENATION with a different scale and zero point per input: TFLite's
/// `ConcatenationWithScaling` (`round(x · s + bias) + zp_out`, `s = in_scale · (1 / out_scale)`,
/// `bias = −zp_in · s`, in f32), saturated; inputs sharing the output's quantization are copied.
#[test]
fn quantized_concat_rescales_each_input() {
    let mut rng = Rng(0xc0);
    for case in 0..24 {
        let dtype = if case % 2 == 0 { DType::I8 } else { DType::U8 };
        let (lo, hi) = if dtype == DType::I8 {
            (-128i32, 127i32)
        } else {
            (0, 255)
        };
        let rank = rng.range(1, 4);
        let base: Vec<usize> = (0..rank).map(|_| rng.range(1, 4)).collect();
        let axis = rng.below(rank);
        let parts = rng.range(1, 3);
        let out_q = (
            0.02 + rng.f32().abs() * 0.1,
            rng.range(0, 40) as i32 + lo + 60,
        );
        let mut def = ModelDef::default();
        let mut ins = Vec::new();
        let mut shapes = Vec::new();
        let mut quants = Vec::new();
        for k in 0..parts {
            let mut s = base.clone();
            s[axis] = rng.range(1, 4);
            // Input 0 of odd cases shares the output's quantization.
            let q = if k == 0 && case % 3 == 0 {
                out_q
            } else {
                (
                    0.01 + rng.f32().abs() * 0.2,
                    rng.range(0, 100) as i32 + lo + 20,
                )
            };
            let mut t = TensorDef::activation(format!("x{k}"), dims(&s), dtype);
            t.quant = Some(Quantization::per_tensor(q.0, q.1 as i64));
            let ti = def.add_tensor(t);
            def.inputs.push(ti);
            ins.push(ti as i32);
            shapes.push(s);
            quants.push(q);
        }
        let mut out_shape = base.clone();
        out_shape[axis] = shapes.iter().map(|s| s[axis]).sum();
        let mut o = TensorDef::activation("out", dims(&out_shape), dtype);
        o.quant = Some(Quantization::per_tensor(out_q.0, out_q.1 as i64));
        let oi = def.add_tensor(o);
        def.add_op(
            OpKind::Concatenation,
            OpOptions::Concatenation {
                axis: axis as i32 - if case % 4 == 1 { rank as i32 } else { 0 },
                activation: sparq_schema::Activation::None,
            },
            &ins,
            &[oi as i32],
        );
        def.outputs.push(oi);
        let xs: Vec<Vec<u8>> = shapes
            .iter()
            .map(|s| input(&mut rng, s.iter().product(), dtype))
            .collect();
        let code = |b: u8| {
            if dtype == DType::I8 {
                b as i8 as i32
            } else {
                b as i32
            }
        };
        let outer: usize = base[..axis].iter().product();
        let inner: usize = base[axis + 1..].iter().product();
        let mut want = Vec::new();
        for i in 0..outer {
            for (k, x) in xs.iter().enumerate() {
                let c = shapes[k][axis] * inner;
                for &b in &x[i * c..(i + 1) * c] {
                    let (sc, zp) = quants[k];
                    if (sc, zp) == out_q {
                        want.push(b);
                        continue;
                    }
                    let s = sc * (1.0f32 / out_q.0);
                    let bias = -(zp as f32) * s;
                    let v = ((code(b) as f32 * s + bias).round() as i32 + out_q.1).clamp(lo, hi);
                    want.push(v as u8);
                }
            }
        }
        let m = Model::from_def(&def).expect("model");
        let mut it = Interpreter::new(&m, Options::default()).expect("prepare");
        for (k, x) in xs.iter().enumerate() {
            it.set_input_bytes(k, x).unwrap();
        }
        it.invoke().unwrap();
        let what = format!("case {case}: {dtype} concat of {shapes:?} on axis {axis}, quant {quants:?} -> {out_q:?}");
        assert_same(it.output_bytes(0).unwrap(), &want, 1, &what);
    }
}

/// 8-bit PAD fills with the zero point; PADV2 with the given constant.
#[test]
fn quantized_pad_fills_with_zero_point_or_constant() {
    let mut rng = Rng(0xad);
    for (case, dtype) in [DType::I8, DType::U8].into_iter().enumerate() {
        let xs = [1usize, 2, 3, 2];
        let x = input(&mut rng, 12, dtype);
        let pads = vec![0, 0, 1, 2, 0, 1, 1, 0];
        let out_shape = [1usize, 5, 4, 3];
        let def = model(
            OpKind::Pad,
            OpOptions::None,
            &xs,
            dtype,
            &[(vec![4, 2], pads.clone())],
            &out_shape,
        );
        let zp = if dtype == DType::I8 { -3i8 as u8 } else { 128 };
        let mut want = vec![zp; 60];
        for y in 0..2 {
            for xx in 0..3 {
                for c in 0..2 {
                    want[((y + 1) * 4 + xx) * 3 + c + 1] = x[(y * 3 + xx) * 2 + c];
                }
            }
        }
        let what = format!("case {case}: {dtype} pad");
        assert_same(&run_bytes(&def, &x, 1), &want, 1, &what);
        // PADV2 with a constant 8-bit value.
        let mut def = def;
        let fill = 77u8;
        let mut c = TensorDef::constant("fill", vec![], dtype, vec![fill]);
        c.quant = def.tensors[0].quant.clone();
        let ci = def.add_tensor(c);
        def.operators[0].kind = OpKind::PadV2;
        def.operators[0].inputs.push(ci as i32);
        let mut want = vec![fill; 60];
        for y in 0..2 {
            for xx in 0..3 {
                for c in 0..2 {
                    want[((y + 1) * 4 + xx) * 3 + c + 1] = x[(y * 3 + xx) * 2 + c];
                }
            }
        }
        assert_same(&run_bytes(&def, &x, 1), &want, 1, &format!("{what}v2"));
    }
}

/// TFLite's padding for TRANSPOSE_CONV on one axis (computed from the output size).
fn tconv_pad(p: sparq_schema::Padding, out: usize, k: usize, s: usize) -> isize {
    let o = match p {
        sparq_schema::Padding::Same => out.div_ceil(s),
        sparq_schema::Padding::Valid => (out + s - k) / s,
    } as isize;
    (((o - 1) * s as isize + k as isize - out as isize).max(0)) / 2
}

/// TRANSPOSE_CONV as TFLite defines it: a scatter of every input pixel through the kernel,
/// then bias; f32 against a plain loop, int8/uint8 exactly (per-channel int8 weights, uint8
/// weights with a zero point) against the same loop in i32 and TFLite's requantization.
#[test]
fn transpose_conv_matches_scatter_reference() {
    use sparq_kernels::requant::{multiply_by_quantized_multiplier, quantize_multiplier};
    use sparq_schema::{Activation, Padding};
    let mut rng = Rng(0x7c0);
    for case in 0..36 {
        let dtype = DTYPES[case % 3];
        let padding = if case % 2 == 0 {
            Padding::Same
        } else {
            Padding::Valid
        };
        let (n, ih, iw, ic, oc) = (
            rng.range(1, 2),
            rng.range(1, 5),
            rng.range(1, 5),
            rng.range(1, 6),
            rng.range(1, 6),
        );
        let (kh, kw, s) = (rng.range(1, 4), rng.range(1, 4), rng.range(1, 3));
        let (oh, ow) = match padding {
            Padding::Same => (ih * s, iw * s),
            Padding::Valid => ((ih - 1) * s + kh, (iw - 1) * s + kw),
        };
        let (pt, pl) = (tconv_pad(padding, oh, kh, s), tconv_pad(padding, ow, kw, s));
        let act = if case % 5 == 0 {
            Activation::Relu
        } else {
            Activation::None
        };
        let with_bias = case % 4 != 3;
        let xs = [n, ih, iw, ic];
        let nw = oc * kh * kw * ic;
        let x = input(&mut rng, n * ih * iw * ic, dtype);
        // Scatter into i64/f64 accumulators given element readers.
        let scatter = |xv: &dyn Fn(usize) -> f64, wv: &dyn Fn(usize) -> f64| {
            let mut acc = vec![0f64; n * oh * ow * oc];
            for b in 0..n {
                for y in 0..ih {
                    for xx in 0..iw {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let oy = (y * s + ky) as isize - pt;
                                let ox = (xx * s + kx) as isize - pl;
                                if oy < 0 || ox < 0 || oy >= oh as isize || ox >= ow as isize {
                                    continue;
                                }
                                for o in 0..oc {
                                    for c in 0..ic {
                                        acc[((b * oh + oy as usize) * ow + ox as usize) * oc
                                            + o] += xv(((b * ih + y) * iw + xx) * ic + c)
                                            * wv(((o * kh + ky) * kw + kx) * ic + c);
                                    }
                                }
                            }
                        }
                    }
                }
            }
            acc
        };
        let mut def = ModelDef::default();
        let shape_t = def.add_tensor(TensorDef::constant(
            "output_shape",
            vec![4],
            DType::I32,
            i32_bytes(&[n as i32, oh as i32, ow as i32, oc as i32]),
        ));
        let what = format!(
            "case {case}: {dtype} transpose conv {xs:?} k {kh}x{kw} s {s} {padding:?} oc {oc} -> {oh}x{ow} {act:?} bias {with_bias}"
        );
        let opts = OpOptions::TransposeConv {
            padding,
            stride_h: s as i32,
            stride_w: s as i32,
            activation: act,
        };
        if dtype == DType::F32 {
            let w = rng.vec_f32(nw);
            let bias = rng.vec_f32(oc);
            let wt = def.add_tensor(TensorDef::constant(
                "w",
                dims(&[oc, kh, kw, ic]),
                DType::F32,
                f32_bytes(&w),
            ));
            let xt = def.add_tensor(TensorDef::activation("x", dims(&xs), DType::F32));
            def.inputs.push(xt);
            let mut ins = vec![shape_t as i32, wt as i32, xt as i32];
            if with_bias {
                ins.push(def.add_tensor(TensorDef::constant(
                    "b",
                    vec![oc as i32],
                    DType::F32,
                    f32_bytes(&bias),
                )) as i32);
            }
            let ot = def.add_tensor(TensorDef::activation(
                "out",
                dims(&[n, oh, ow, oc]),
                DType::F32,
            ));
            def.add_op(OpKind::TransposeConv, opts, &ins, &[ot as i32]);
            def.outputs.push(ot);
            let xf = bytemuck_f32(&x);
            let acc = scatter(&|i| xf[i] as f64, &|i| w[i] as f64);
            let want: Vec<f32> = acc
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    let v = v as f32 + if with_bias { bias[i % oc] } else { 0.0 };
                    if act == Activation::Relu {
                        v.max(0.0)
                    } else {
                        v
                    }
                })
                .collect();
            assert_close(&bytemuck_f32(&run_bytes(&def, &x, 1)), &want, 1e-5, &what);
            continue;
        }
        // 8-bit: activations `dtype`; weights int8 per channel (i8) or uint8 per tensor (u8).
        let (lo, hi, in_zp, out_zp) = if dtype == DType::I8 {
            (-128i32, 127i32, -5i32, 3i32)
        } else {
            (0, 255, 120, 131)
        };
        let (in_scale, out_scale) = (0.02f32, 0.05 + 0.05 * rng.f32().abs());
        let wbytes: Vec<u8> = (0..nw).map(|_| rng.next_u64() as u8).collect();
        let (w_scales, w_zp): (Vec<f32>, i32) = if dtype == DType::I8 {
            ((0..oc).map(|_| 0.002 + 0.01 * rng.f32().abs()).collect(), 0)
        } else {
            (vec![0.004], 117)
        };
        let wq = if dtype == DType::I8 {
            Quantization {
                scales: w_scales.clone(),
                zero_points: vec![0; oc],
                axis: Some(0),
            }
        } else {
            Quantization::per_tensor(w_scales[0], w_zp as i64)
        };
        let bias: Vec<i32> = (0..oc).map(|_| rng.below(4001) as i32 - 2000).collect();
        let mut wt = TensorDef::constant("w", dims(&[oc, kh, kw, ic]), dtype, wbytes.clone());
        wt.quant = Some(wq);
        let wt = def.add_tensor(wt);
        let mut xt = TensorDef::activation("x", dims(&xs), dtype);
        xt.quant = Some(Quantization::per_tensor(in_scale, in_zp as i64));
        let xt = def.add_tensor(xt);
        def.inputs.push(xt);
        let mut ins = vec![shape_t as i32, wt as i32, xt as i32];
        if with_bias {
            ins.push(def.add_tensor(TensorDef::constant(
                "b",
                vec![oc as i32],
                DType::I32,
                i32_bytes(&bias),
            )) as i32);
        }
        let mut ot = TensorDef::activation("out", dims(&[n, oh, ow, oc]), dtype);
        ot.quant = Some(Quantization::per_tensor(out_scale, out_zp as i64));
        let ot = def.add_tensor(ot);
        def.add_op(OpKind::TransposeConv, opts, &ins, &[ot as i32]);
        def.outputs.push(ot);
        let code = |b: u8| {
            if dtype == DType::I8 {
                b as i8 as i32
            } else {
                b as i32
            }
        };
        let acc = scatter(&|i| (code(x[i]) - in_zp) as f64, &|i| {
            (code(wbytes[i]) - w_zp) as f64
        });
        let relu_lo = if act == Activation::Relu {
            out_zp.max(lo)
        } else {
            lo
        };
        let want: Vec<u8> = acc
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let o = i % oc;
                let ws = w_scales[if w_scales.len() == 1 { 0 } else { o }];
                let (m, sh) = quantize_multiplier(in_scale as f64 * ws as f64 / out_scale as f64);
                let a = v as i32 + if with_bias { bias[o] } else { 0 };
                let q = multiply_by_quantized_multiplier(a, m, sh) + out_zp;
                q.clamp(relu_lo, hi) as u8
            })
            .collect();
        assert_same(&run_bytes(&def, &x, 1), &want, 1, &what);
    }
}

/// PACK of 1 to 4 tensors on every axis (negative axes too), f32 and 8-bit.
#[test]
fn pack_matches_reference() {
    let mut rng = Rng(0x9ac);
    for case in 0..24 {
        let dtype = DTYPES[case % 3];
        let elem = dtype.size_bytes();
        let rank = rng.range(0, 3);
        let s: Vec<usize> = (0..rank).map(|_| rng.range(1, 4)).collect();
        let parts = rng.range(1, 4);
        let axis = rng.below(rank + 1);
        let quant = match dtype {
            DType::I8 => Some(Quantization::per_tensor(0.1, 2)),
            DType::U8 => Some(Quantization::per_tensor(0.1, 130)),
            _ => None,
        };
        let mut def = ModelDef::default();
        let mut ins = Vec::new();
        let count: usize = s.iter().product();
        let xs: Vec<Vec<u8>> = (0..parts).map(|_| input(&mut rng, count, dtype)).collect();
        for k in 0..parts {
            let mut t = TensorDef::activation(format!("x{k}"), dims(&s), dtype);
            t.quant = quant.clone();
            let ti = def.add_tensor(t);
            def.inputs.push(ti);
            ins.push(ti as i32);
        }
        let mut out_shape = s.clone();
        out_shape.insert(axis, parts);
        let mut o = TensorDef::activation("out", dims(&out_shape), dtype);
        o.quant = quant;
        let oi = def.add_tensor(o);
        let a = if case % 2 == 0 {
            axis as i32
        } else {
            axis as i32 - rank as i32 - 1
        };
        def.add_op(
            OpKind::Pack,
            OpOptions::Pack {
                axis: a,
                values_count: parts as i32,
            },
            &ins,
            &[oi as i32],
        );
        def.outputs.push(oi);
        // out[outer, k, inner] = x_k[outer, inner].
        let inner: usize = s[axis..].iter().product();
        let outer: usize = s[..axis].iter().product();
        let mut want = Vec::new();
        for i in 0..outer {
            for x in &xs {
                want.extend_from_slice(&x[i * inner * elem..(i + 1) * inner * elem]);
            }
        }
        let m = Model::from_def(&def).expect("model");
        let mut it = Interpreter::new(&m, Options::default()).expect("prepare");
        for (k, x) in xs.iter().enumerate() {
            it.set_input_bytes(k, x).unwrap();
        }
        it.invoke().unwrap();
        let what = format!("case {case}: {dtype} pack {parts} x {s:?} on axis {a}");
        assert_same(it.output_bytes(0).unwrap(), &want, elem, &what);
    }
}

/// SPLIT and UNPACK: every output equals the plain strided copy; the parts then feed another
/// operator (an ADD of the first two) so the arena plan sees multi-output steps.
#[test]
fn split_and_unpack_match_reference() {
    let mut rng = Rng(0x5b1);
    for case in 0..24 {
        let dtype = DTYPES[case % 3];
        let elem = dtype.size_bytes();
        let unpack = case % 2 == 1;
        let rank = rng.range(1, 4);
        let mut xs: Vec<usize> = (0..rank).map(|_| rng.range(1, 4)).collect();
        let axis = rng.below(rank);
        let parts = rng.range(1, 3);
        if unpack {
            xs[axis] = parts;
        } else {
            xs[axis] = parts * rng.range(1, 3);
        }
        let piece = xs[axis] / parts;
        let quant = match dtype {
            DType::I8 => Some(Quantization::per_tensor(0.1, 2)),
            DType::U8 => Some(Quantization::per_tensor(0.1, 130)),
            _ => None,
        };
        let mut def = ModelDef::default();
        let mut xt = TensorDef::activation("x", dims(&xs), dtype);
        xt.quant = quant.clone();
        let xi = def.add_tensor(xt);
        def.inputs.push(xi);
        let mut out_shape = xs.clone();
        if unpack {
            out_shape.remove(axis);
        } else {
            out_shape[axis] = piece;
        }
        let outs: Vec<i32> = (0..parts)
            .map(|k| {
                let mut t = TensorDef::activation(format!("part{k}"), dims(&out_shape), dtype);
                t.quant = quant.clone();
                def.add_tensor(t) as i32
            })
            .collect();
        let a = axis as i32 - if case % 3 == 0 { rank as i32 } else { 0 };
        if unpack {
            def.add_op(
                OpKind::Unpack,
                OpOptions::Pack {
                    axis: a,
                    values_count: parts as i32,
                },
                &[xi as i32],
                &outs,
            );
        } else {
            let at = def.add_tensor(TensorDef::constant(
                "axis",
                vec![],
                DType::I32,
                i32_bytes(&[a]),
            ));
            def.add_op(
                OpKind::Split,
                OpOptions::Split {
                    num_splits: parts as i32,
                },
                &[at as i32, xi as i32],
                &outs,
            );
        }
        for &o in &outs {
            def.outputs.push(o as u32);
        }
        // f32: the first part plus the last, as one more output.
        if dtype == DType::F32 {
            let s = def.add_tensor(TensorDef::activation("sum", dims(&out_shape), dtype));
            def.add_op(
                OpKind::Add,
                OpOptions::Elementwise {
                    activation: sparq_schema::Activation::None,
                },
                &[outs[0], outs[parts - 1]],
                &[s as i32],
            );
            def.outputs.push(s);
        }
        let x = input(&mut rng, xs.iter().product(), dtype);
        let outer: usize = xs[..axis].iter().product();
        let inner: usize = xs[axis + 1..].iter().product::<usize>() * elem;
        let want: Vec<Vec<u8>> = (0..parts)
            .map(|k| {
                (0..outer)
                    .flat_map(|i| {
                        let src = (i * xs[axis] + k * piece) * inner;
                        x[src..src + piece * inner].to_vec()
                    })
                    .collect()
            })
            .collect();
        let m = Model::from_def(&def).expect("model");
        for threads in [1, 2] {
            let mut it = Interpreter::new(
                &m,
                Options {
                    threads,
                    ..Options::default()
                },
            )
            .expect("prepare");
            it.set_input_bytes(0, &x).unwrap();
            it.invoke().unwrap();
            let what = format!(
                "case {case}: {dtype} {} of {xs:?} on axis {a} into {parts}, {threads} threads",
                if unpack { "unpack" } else { "split" }
            );
            for (k, w) in want.iter().enumerate() {
                assert_same(
                    it.output_bytes(k).unwrap(),
                    w,
                    elem,
                    &format!("{what}: part {k}"),
                );
            }
            if dtype == DType::F32 {
                let (a0, a1) = (bytemuck_f32(&want[0]), bytemuck_f32(&want[parts - 1]));
                let sum: Vec<f32> = a0.iter().zip(&a1).map(|(p, q)| p + q).collect();
                let got = bytemuck_f32(it.output_bytes(parts).unwrap());
                assert_close(&got, &sum, 1e-6, &format!("{what}: sum"));
            }
        }
    }
}
