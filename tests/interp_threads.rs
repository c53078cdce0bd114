//! Outputs are identical, bit for bit, for every thread count.

mod common;

use common::*;
use sparq::{Interpreter, Model, Options};

#[test]
fn outputs_identical_for_1_2_3_threads() {
    let mut rng = Rng(3);
    let def = small_cnn(&mut rng);
    let model = Model::from_def(&def).unwrap();
    let keep = vec!["c1".to_string(), "pw".to_string(), "mean".to_string()];
    let mut reference: Option<Vec<Vec<u8>>> = None;
    for threads in [1, 2, 3] {
        let mut it = Interpreter::new(
            &model,
            Options {
                threads,
                keep: keep.clone(),
                ..Options::default()
            },
        )
        .unwrap();
        assert_eq!(it.threads(), threads);
        let mut outs = Vec::new();
        for sample in 0..3 {
            let x = Rng(100 + sample).vec_f32(32 * 32 * 3);
            it.set_input(0, &x).unwrap();
            it.invoke().unwrap();
            outs.push(it.output_bytes(0).unwrap().to_vec());
            for name in &keep {
                outs.push(it.tensor(name).unwrap().1.to_vec());
            }
        }
        match &reference {
            None => reference = Some(outs),
            Some(r) => {
                for (i, (a, b)) in r.iter().zip(&outs).enumerate() {
                    assert!(
                        a == b,
                        "{threads} threads: tensor {i} differs from 1 thread"
                    );
                }
            }
        }
    }
}

#[test]
fn kept_intermediates_are_readable_and_others_are_not() {
    let mut rng = Rng(4);
    let def = small_cnn(&mut rng);
    let model = Model::from_def(&def).unwrap();
    let mut it = Interpreter::new(
        &model,
        Options {
            keep: vec!["mean".into()],
            ..Options::default()
        },
    )
    .unwrap();
    it.set_input(0, &rng.vec_f32(32 * 32 * 3)).unwrap();
    it.invoke().unwrap();
    let (info, bytes) = it.tensor("mean").unwrap();
    assert_eq!(info.shape, vec![1, 16]);
    assert_eq!(bytes.len(), 64);
    assert!(it.tensor("dw").is_err());
    assert!(it.tensor("nope").is_err());
    assert!(Interpreter::new(
        &model,
        Options {
            keep: vec!["nope".into()],
            ..Options::default()
        }
    )
    .is_err());
    // The softmax output sums to one.
    let p = it.output::<f32>(0).unwrap();
    assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
}

#[test]
fn repeated_invokes_give_the_same_output() {
    // Inputs set once must survive invoke: the arena never reuses their bytes.
    let mut rng = Rng(8);
    let def = small_cnn(&mut rng);
    let model = Model::from_def(&def).unwrap();
    let mut it = Interpreter::new(&model, Options::default()).unwrap();
    it.set_input(0, &rng.vec_f32(32 * 32 * 3)).unwrap();
    it.invoke().unwrap();
    let first = it.output_bytes(0).unwrap().to_vec();
    for _ in 0..3 {
        it.invoke().unwrap();
        assert_eq!(it.output_bytes(0).unwrap(), &first[..]);
    }
}

/// Output bytes of a one-input model on `threads` threads.
fn run_on(def: &sparq_schema::ModelDef, x: &[u8], threads: usize) -> Vec<u8> {
    let model = Model::from_def(def).unwrap();
    let opts = Options {
        threads,
        ..Options::default()
    };
    let mut it = Interpreter::new(&model, opts).unwrap();
    it.set_input_bytes(0, x).unwrap();
    it.invoke().unwrap();
    it.output_bytes(0).unwrap().to_vec()
}

/// One-row GEMMs (a classifier head, a squeeze-excite 1×1 convolution) split over column
/// blocks give 1 thread's bytes on 2 and 3 threads: f32 (fused clamp and tanh), int8 and
/// uint8, output channel counts that are not a whole number of column tiles.
#[test]
fn one_row_gemms_split_over_columns_identically() {
    use sparq_schema::{Activation, DType, OpKind, OpOptions, Padding, Quantization, TensorDef};
    let mut rng = Rng(0xc015);
    let conv = |activation| OpOptions::Conv2d {
        padding: Padding::Valid,
        stride_h: 1,
        stride_w: 1,
        dilation_h: 1,
        dilation_w: 1,
        activation,
    };
    let fc = |activation| OpOptions::FullyConnected {
        activation,
        keep_num_dims: false,
        asymmetric_quantize_inputs: false,
    };
    // (what, dtype, k, oc, options, convolution rather than fully connected)
    let cases = [
        (
            "conv f32 relu6",
            DType::F32,
            576,
            1000,
            conv(Activation::Relu6),
            true,
        ),
        (
            "fc f32 tanh",
            DType::F32,
            1024,
            77,
            fc(Activation::Tanh),
            false,
        ),
        ("fc f32", DType::F32, 2048, 40, fc(Activation::None), false),
        (
            "conv int8 relu",
            DType::I8,
            576,
            1001,
            conv(Activation::Relu),
            true,
        ),
        (
            "conv uint8",
            DType::U8,
            1024,
            100,
            conv(Activation::None),
            true,
        ),
    ];
    for (what, dtype, k, oc, options, is_conv) in cases {
        let mut b = OneOp::new();
        let (xs, ws, outs) = if is_conv {
            (vec![1, 1, 1, k], vec![oc, 1, 1, k], vec![1, 1, 1, oc])
        } else {
            (vec![1, k], vec![oc, k], vec![1, oc])
        };
        let quant = |s: f32, z: i64| Some(Quantization::per_tensor(s, z));
        let (x, w, bias, out_q) = if dtype == DType::F32 {
            let x = b.input(&xs, dtype);
            let w = b.constant(&ws, dtype, f32_bytes(&rng.vec_f32(oc * k)));
            let bias = b.constant(&[oc], dtype, f32_bytes(&rng.vec_f32(oc)));
            (x, w, bias, None)
        } else {
            let zp = if dtype == DType::I8 { -3 } else { 120 };
            let mut xt = TensorDef::activation("x", dims(&xs), dtype);
            xt.quant = quant(0.02, zp);
            let x = b.tensor(xt);
            b.def.inputs.push(x as u32);
            let wbytes: Vec<u8> = (0..oc * k).map(|_| rng.next_u64() as u8).collect();
            let mut wt = TensorDef::constant("w", dims(&ws), dtype, wbytes);
            wt.quant = quant(0.003, if dtype == DType::I8 { 0 } else { 128 });
            let w = b.tensor(wt);
            let bias: Vec<i32> = (0..oc).map(|_| rng.below(20001) as i32 - 10000).collect();
            let bias = b.constant(&[oc], DType::I32, i32_bytes(&bias));
            (x, w, bias, quant(0.2, zp + 7))
        };
        let kind = if is_conv {
            OpKind::Conv2d
        } else {
            OpKind::FullyConnected
        };
        let mut def = b.op(kind, options, &[x, w, bias], &outs, dtype);
        let out = def.outputs[0] as usize;
        def.tensors[out].quant = out_q;
        let input: Vec<u8> = if dtype == DType::F32 {
            f32_bytes(&rng.vec_f32(k))
        } else {
            (0..k).map(|_| rng.next_u64() as u8).collect()
        };
        let one = run_on(&def, &input, 1);
        for threads in [2, 3] {
            let many = run_on(&def, &input, threads);
            assert_eq!(many.len(), one.len(), "{what}: {threads} threads: length");
            if let Some(i) = (0..one.len()).find(|&i| many[i] != one[i]) {
                panic!(
                    "{what} k {k} oc {oc}: {threads} threads: byte {i} (channel {}) differs: {} vs {}",
                    i / dtype.size_bytes(),
                    many[i],
                    one[i]
                );
            }
        }
    }
}
