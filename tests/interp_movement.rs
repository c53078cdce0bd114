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
