//! 8-bit FULLY_CONNECTED, ADD and MEAN through the interpreter (one-op models) against plain
//! reference loops written from TFLite's reference kernels, exact, on 1, 2 and 3 threads.

mod common;

use common::*;
use sparq::{Interpreter, Model, Options};
use sparq_schema::{Activation, DType, ModelDef, OpKind, OpOptions, Quantization, TensorDef};

fn run_bytes(def: &ModelDef, x: &[u8], threads: usize) -> Vec<u8> {
    let m = Model::from_def(def).expect("model");
    let opts = Options {
        threads,
        ..Options::default()
    };
    let mut it = Interpreter::new(&m, opts).expect("prepare");
    it.set_input_bytes(0, x).unwrap();
    it.invoke().unwrap();
    it.output_bytes(0).unwrap().to_vec()
}

/// The first differing element, named.
fn assert_bytes_eq(got: &[u8], want: &[u8], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
        panic!(
            "{what}: first difference at element {i}: got {}, want {}",
            got[i], want[i]
        );
    }
}

fn code(dtype: DType, b: u8) -> i32 {
    if dtype == DType::I8 {
        b as i8 as i32
    } else {
        b as i32
    }
}

/// TFLite's reference int8/uint8 FULLY_CONNECTED: int32 accumulators rescaled in f64,
/// `round(acc · in_scale · w_scale / out_scale)` half away from zero, plus the output zero
/// point, clamped to the fused activation's range.
#[test]
fn fully_connected_8bit_matches_reference() {
    let mut rng = Rng(0xfc08);
    let shapes = [
        (1, 1, 1),
        (1, 1280, 1000),
        (1, 7, 33),
        (2, 64, 65),
        (3, 5, 31),
        (17, 100, 9),
        (5, 33, 130),
        (40, 16, 64),
    ];
    for (case, &(rows, ic, oc)) in shapes.iter().enumerate() {
        for dtype in [DType::I8, DType::U8] {
            let act = [Activation::None, Activation::Relu, Activation::Relu6][case % 3];
            let (lo, hi, in_zp, out_zp, w_zp) = if dtype == DType::I8 {
                (-128i32, 127i32, -3 + case as i32, 5 - case as i32, 0)
            } else {
                (0, 255, 110 + case as i32, 131 - case as i32, 120)
            };
            let in_scale = 0.02f32;
            let out_scale = 0.05 + 0.2 * rng.f32().abs() * (ic as f32).sqrt() / 8.0;
            let x: Vec<u8> = (0..rows * ic).map(|_| rng.next_u64() as u8).collect();
            let wbytes: Vec<u8> = (0..oc * ic).map(|_| rng.next_u64() as u8).collect();
            let per_channel = dtype == DType::I8 && case % 2 == 0;
            let w_scales: Vec<f32> = if per_channel {
                (0..oc).map(|_| 0.001 + 0.01 * rng.f32().abs()).collect()
            } else {
                vec![0.004]
            };
            let wq = if per_channel {
                Quantization {
                    scales: w_scales.clone(),
                    zero_points: vec![0; oc],
                    axis: Some(0),
                }
            } else {
                Quantization::per_tensor(w_scales[0], w_zp as i64)
            };
            let bias: Vec<i32> = (0..oc).map(|_| rng.below(40001) as i32 - 20000).collect();
            let with_bias = case % 4 != 1;

            let mut def = ModelDef::default();
            let mut xt = TensorDef::activation("x", dims(&[rows, ic]), dtype);
            xt.quant = Some(Quantization::per_tensor(in_scale, in_zp as i64));
            let xt = def.add_tensor(xt);
            def.inputs.push(xt);
            let mut wt = TensorDef::constant("w", dims(&[oc, ic]), dtype, wbytes.clone());
            wt.quant = Some(wq);
            let wt = def.add_tensor(wt);
            let mut ins = vec![xt as i32, wt as i32];
            if with_bias {
                ins.push(def.add_tensor(TensorDef::constant(
                    "b",
                    vec![oc as i32],
                    DType::I32,
                    i32_bytes(&bias),
                )) as i32);
            }
            let mut ot = TensorDef::activation("out", dims(&[rows, oc]), dtype);
            ot.quant = Some(Quantization::per_tensor(out_scale, out_zp as i64));
            let ot = def.add_tensor(ot);
            let opts = OpOptions::FullyConnected {
                activation: act,
                keep_num_dims: false,
                asymmetric_quantize_inputs: false,
            };
            def.add_op(OpKind::FullyConnected, opts, &ins, &[ot as i32]);
            def.outputs.push(ot);

            let (alo, ahi) = match act {
                Activation::Relu => (out_zp.max(lo), hi),
                Activation::Relu6 => (
                    out_zp.max(lo),
                    (out_zp + (6.0 / out_scale).round() as i32).min(hi),
                ),
                _ => (lo, hi),
            };
            let want: Vec<u8> = (0..rows * oc)
                .map(|i| {
                    let (r, o) = (i / oc, i % oc);
                    let mut acc = if with_bias { bias[o] } else { 0 };
                    for k in 0..ic {
                        let a = code(dtype, x[r * ic + k]) - in_zp;
                        let b = code(dtype, wbytes[o * ic + k]) - w_zp;
                        acc += a * b;
                    }
                    let ws = w_scales[if per_channel { o } else { 0 }];
                    let m = in_scale as f64 * ws as f64 / out_scale as f64;
                    let v = (acc as f64 * m).round() as i32 + out_zp;
                    v.clamp(alo, ahi) as u8
                })
                .collect();
            for threads in [1, 2, 3] {
                let what = format!(
                    "fc {dtype:?} {rows}x{ic} -> {oc} {act:?} per_channel {per_channel} \
                     bias {with_bias}, {threads} threads"
                );
                assert_bytes_eq(&run_bytes(&def, &x, threads), &want, &what);
            }
        }
    }
}

/// TFLite's `QuantizedMeanOrSum` multiplier: `in_scale / out_scale` with the 1/n folded in.
fn mean_multiplier(in_scale: f32, out_scale: f32, n: i64) -> (i32, i32) {
    let (mut mult, mut shift) =
        sparq_kernels::requant::quantize_multiplier(in_scale as f64 / out_scale as f64);
    let sh = (63 - (n as u64).leading_zeros() as i32)
        .min(32)
        .min(31 + shift);
    mult = (((mult as i64) << sh) / n) as i32;
    shift -= sh;
    (mult, shift)
}

/// 8-bit MEAN without keep_dims (TFLite's integer mean with the folded multiplier) and with
/// keep_dims over height and width, on shapes with long channel runs, 1, 2 and 3 threads.
#[test]
fn mean_8bit_matches_reference() {
    let mut rng = Rng(0x3ea7);
    let cases: [(&[usize], &[i32], bool); 6] = [
        (&[1, 7, 7, 1280], &[1, 2], false),
        (&[2, 5, 5, 40], &[1, 2], false),
        (&[3, 70], &[1], false),
        (&[4, 3, 33], &[0], false),
        (&[1, 7, 7, 1280], &[1, 2], true),
        (&[2, 3, 3, 67], &[2, 1], true),
    ];
    for (xs, axes, keep) in cases {
        for dtype in [DType::I8, DType::U8] {
            let (lo, hi, in_zp, out_zp) = if dtype == DType::I8 {
                (-128, 127, -7, 4)
            } else {
                (0, 255, 121, 130)
            };
            let (in_scale, out_scale) = (0.03f32, 0.02f32);
            let n: usize = axes.iter().map(|&a| xs[a as usize]).product();
            let total: usize = xs.iter().product();
            let x: Vec<u8> = (0..total).map(|_| rng.next_u64() as u8).collect();
            let out_shape: Vec<usize> = (0..xs.len())
                .filter_map(|d| {
                    if axes.contains(&(d as i32)) {
                        keep.then_some(1)
                    } else {
                        Some(xs[d])
                    }
                })
                .collect();
            let mut def = ModelDef::default();
            let mut xt = TensorDef::activation("x", dims(xs), dtype);
            xt.quant = Some(Quantization::per_tensor(in_scale, in_zp as i64));
            let xt = def.add_tensor(xt);
            def.inputs.push(xt);
            let axes_bytes: Vec<u8> = axes.iter().flat_map(|a| a.to_le_bytes()).collect();
            let at = def.add_tensor(TensorDef::constant(
                "axes",
                vec![axes.len() as i32],
                DType::I32,
                axes_bytes,
            ));
            let mut ot = TensorDef::activation("out", dims(&out_shape), dtype);
            ot.quant = Some(Quantization::per_tensor(out_scale, out_zp as i64));
            let ot = def.add_tensor(ot);
            def.add_op(
                OpKind::Mean,
                OpOptions::Reducer { keep_dims: keep },
                &[xt as i32, at as i32],
                &[ot as i32],
            );
            def.outputs.push(ot);
            // Group sums in output order (the reduced axes are leading or contiguous here).
            let out_len = total / n;
            let mut sums = vec![0i32; out_len];
            let mut idx = vec![0usize; xs.len()];
            for &b in x.iter() {
                let mut o = 0;
                for d in 0..xs.len() {
                    if !axes.contains(&(d as i32)) {
                        o = o * xs[d] + idx[d];
                    }
                }
                sums[o] += code(dtype, b);
                for d in (0..xs.len()).rev() {
                    idx[d] += 1;
                    if idx[d] < xs[d] {
                        break;
                    }
                    idx[d] = 0;
                }
            }
            let mbqm = sparq_kernels::requant::multiply_by_quantized_multiplier;
            let want: Vec<u8> = sums
                .iter()
                .map(|&s| {
                    let v = if keep && dtype == DType::I8 {
                        // reference_integer_ops::Mean.
                        let (m, sh) = sparq_kernels::requant::quantize_multiplier(
                            in_scale as f64 / out_scale as f64,
                        );
                        let v = mbqm(s - in_zp * n as i32, m, sh);
                        let n = n as i32;
                        (if v > 0 {
                            (v + n / 2) / n
                        } else {
                            (v - n / 2) / n
                        }) + out_zp
                    } else if keep {
                        // reference_ops::Mean (uint8).
                        let real = (in_scale / (n as f32 * out_scale)) as f64;
                        let (m, sh) = sparq_kernels::requant::quantize_multiplier(real);
                        let bias = out_zp - (in_zp as f32 * in_scale / out_scale) as i32;
                        mbqm(s, m, sh) + bias
                    } else {
                        let (m, sh) = mean_multiplier(in_scale, out_scale, n as i64);
                        mbqm(s - in_zp * n as i32, m, sh) + out_zp
                    };
                    v.clamp(lo, hi) as u8
                })
                .collect();
            for threads in [1, 2, 3] {
                let what =
                    format!("mean {dtype:?} {xs:?} axes {axes:?} keep {keep}, {threads} threads");
                assert_bytes_eq(&run_bytes(&def, &x, threads), &want, &what);
            }
        }
    }
}

/// A one-op model: input 0 quantized as `qin` (none for f32), optional constant second
/// operand, output quantized as `qout`.
#[allow(clippy::too_many_arguments)]
fn one_op(
    kind: OpKind,
    options: OpOptions,
    xs: &[usize],
    dtype: DType,
    qin: Option<(f32, i64)>,
    second: Option<(Vec<usize>, Vec<u8>)>,
    out: &[usize],
    out_dtype: DType,
    qout: Option<(f32, i64)>,
) -> ModelDef {
    let mut def = ModelDef::default();
    let mut xt = TensorDef::activation("x", dims(xs), dtype);
    xt.quant = qin.map(|(s, z)| Quantization::per_tensor(s, z));
    let xt = def.add_tensor(xt);
    def.inputs.push(xt);
    let mut ins = vec![xt as i32];
    if let Some((shape, bytes)) = second {
        let mut c = TensorDef::constant("c", dims(&shape), dtype, bytes);
        c.quant = Some(Quantization::per_tensor(0.07, 3));
        ins.push(def.add_tensor(c) as i32);
    }
    let mut ot = TensorDef::activation("out", dims(out), out_dtype);
    ot.quant = qout.map(|(s, z)| Quantization::per_tensor(s, z));
    let ot = def.add_tensor(ot);
    def.add_op(kind, options, &ins, &[ot as i32]);
    def.outputs.push(ot);
    def
}

/// Operators that split their output over threads compute every element once, the same way:
/// 2 and 3 threads give 1 thread's bytes (pooling, softmax, broadcast ADD, (de)quantize).
#[test]
fn split_ops_identical_for_1_2_3_threads() {
    let mut rng = Rng(0x7b3a);
    let pool = |kind| {
        (
            kind,
            OpOptions::Pool2d {
                padding: sparq_schema::Padding::Same,
                stride_h: 2,
                stride_w: 2,
                filter_h: 3,
                filter_w: 3,
                activation: Activation::None,
            },
        )
    };
    let mut cases: Vec<(String, ModelDef, usize)> = Vec::new();
    for dtype in [DType::I8, DType::U8] {
        for (kind, opts) in [pool(OpKind::AveragePool2d), pool(OpKind::MaxPool2d)] {
            let def = one_op(
                kind,
                opts,
                &[2, 31, 31, 48],
                dtype,
                Some((0.05, 3)),
                None,
                &[2, 16, 16, 48],
                dtype,
                Some((0.05, 3)),
            );
            cases.push((format!("{kind:?} {dtype:?}"), def, 2 * 31 * 31 * 48));
        }
        let zp = if dtype == DType::I8 { -128 } else { 0 };
        let def = one_op(
            OpKind::Softmax,
            OpOptions::Softmax { beta: 1.0 },
            &[64, 100],
            dtype,
            Some((0.1, 5)),
            None,
            &[64, 100],
            dtype,
            Some((1.0 / 256.0, zp)),
        );
        cases.push((format!("Softmax {dtype:?}"), def, 6400));
        let b: Vec<u8> = (0..24).map(|_| rng.next_u64() as u8).collect();
        let def = one_op(
            OpKind::Add,
            OpOptions::Elementwise {
                activation: Activation::Relu,
            },
            &[1, 40, 40, 24],
            dtype,
            Some((0.05, 3)),
            Some((vec![24], b)),
            &[1, 40, 40, 24],
            dtype,
            Some((0.09, zp + 126)),
        );
        cases.push((format!("Add {dtype:?}"), def, 38400));
        let def = one_op(
            OpKind::Dequantize,
            OpOptions::None,
            &[50000],
            dtype,
            Some((0.05, 3)),
            None,
            &[50000],
            DType::F32,
            None,
        );
        cases.push((format!("Dequantize {dtype:?}"), def, 50000));
        let def = one_op(
            OpKind::Quantize,
            OpOptions::None,
            &[50000],
            DType::F32,
            None,
            None,
            &[50000],
            dtype,
            Some((0.01, 3)),
        );
        cases.push((format!("Quantize {dtype:?}"), def, 50000 * 4));
    }
    for (what, def, in_bytes) in cases {
        let x: Vec<u8> = if what.starts_with("Quantize") {
            f32_bytes(&rng.vec_f32(in_bytes / 4))
        } else {
            (0..in_bytes).map(|_| rng.next_u64() as u8).collect()
        };
        let one = run_bytes(&def, &x, 1);
        for threads in [2, 3] {
            assert_bytes_eq(
                &run_bytes(&def, &x, threads),
                &one,
                &format!("{what}: {threads} threads vs 1"),
            );
        }
    }
}

/// ADD/SUB/MUL with a single-value constant operand (the byte-table path) equal the
/// broadcasting kernel, on 1, 2 and 3 threads.
#[test]
fn scalar_operand_binary_ops_match_kernel() {
    use sparq_kernels::elementwise::{binary_i8, prepare_binary_q, Activation as KAct};
    use sparq_kernels::elementwise::{BinaryOp, BroadcastPlan, QParams};
    let mut rng = Rng(0x5ca1);
    for (kind, op) in [
        (OpKind::Add, BinaryOp::Add),
        (OpKind::Sub, BinaryOp::Sub),
        (OpKind::Mul, BinaryOp::Mul),
    ] {
        let xs = [1, 50, 50, 8];
        let n: usize = xs.iter().product();
        let s = rng.next_u64() as u8;
        let def = one_op(
            kind,
            OpOptions::Elementwise {
                activation: Activation::Relu6,
            },
            &xs,
            DType::I8,
            Some((0.05, 3)),
            Some((vec![1], vec![s])),
            &xs,
            DType::I8,
            Some((0.09, -5)),
        );
        let x: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
        let p = prepare_binary_q::<i8>(
            op,
            QParams::new(0.05, 3),
            QParams::new(0.07, 3),
            QParams::new(0.09, -5),
            KAct::Relu6,
        )
        .unwrap();
        let plan = BroadcastPlan::new("TEST", &xs, &[1]).unwrap();
        let xi: Vec<i8> = x.iter().map(|&v| v as i8).collect();
        let mut want = vec![0i8; n];
        binary_i8(&p, &plan, &xi, &[s as i8], &mut want, 0);
        let want: Vec<u8> = want.iter().map(|&v| v as u8).collect();
        for threads in [1, 2, 3] {
            let what = format!("{kind:?} with a scalar, {threads} threads");
            assert_bytes_eq(&run_bytes(&def, &x, threads), &want, &what);
        }
    }
}
