//! FULLY_CONNECTED and 1×1 CONV_2D on an input with no rows (`[0, K]`, batch 0), with dense and
//! sparse weights and int8, uint8, dynamic-range and f32 data: invoke succeeds with an empty
//! output on every route and thread count (an empty scratch is not aligned: no typed view of it
//! may require alignment).

use sparq::{Interpreter, Model, Options, SparseRoute};
use sparq_schema::{
    Activation, DType, ModelDef, OpDef, OpKind, OpOptions, Padding, Quantization, SparseDef,
    SparseFormat, TensorDef,
};

fn tensor(name: &str, shape: &[usize], dtype: DType) -> TensorDef {
    TensorDef {
        name: name.into(),
        shape: shape.iter().map(|&d| d as i32).collect(),
        dtype,
        quant: None,
        data: None,
        sparse: None,
    }
}

fn model(conv: bool, adt: DType, wdt: DType, format: Option<SparseFormat>) -> ModelDef {
    let (k, n) = (8usize, 16usize);
    let (xs, ws, ys) = if conv {
        (vec![0, 3, 1, k], vec![n, 1, 1, k], vec![0, 3, 1, n])
    } else {
        (vec![0, k], vec![n, k], vec![0, n])
    };
    let es = if wdt == DType::F32 { 4 } else { 1 };
    let dense: Vec<u8> = (0..n * k * es).map(|i| (i % 7) as u8).collect();
    let mut w = tensor("w", &ws, wdt);
    if wdt != DType::F32 {
        w.quant = Some(Quantization::per_tensor(0.004, 0));
    }
    match format {
        Some(f) => w.sparse = Some(SparseDef::encode(&dense, n, k, es, f)),
        None => w.data = Some(dense),
    }
    let mut x = tensor("x", &xs, adt);
    let mut y = tensor("y", &ys, adt);
    if adt != DType::F32 {
        let zp = if adt == DType::U8 { 128 } else { 0 };
        x.quant = Some(Quantization::per_tensor(0.05, zp));
        y.quant = Some(Quantization::per_tensor(0.3, zp));
    }
    let (kind, options) = if conv {
        (
            OpKind::Conv2d,
            OpOptions::Conv2d {
                padding: Padding::Valid,
                stride_h: 1,
                stride_w: 1,
                dilation_h: 1,
                dilation_w: 1,
                activation: Activation::None,
            },
        )
    } else {
        (
            OpKind::FullyConnected,
            OpOptions::FullyConnected {
                activation: Activation::None,
                keep_num_dims: false,
                asymmetric_quantize_inputs: false,
            },
        )
    };
    ModelDef {
        tensors: vec![x, w, y],
        operators: vec![OpDef {
            kind,
            options,
            inputs: vec![0, 1],
            outputs: vec![2],
        }],
        inputs: vec![0],
        outputs: vec![2],
        metadata: Default::default(),
    }
}

#[test]
fn inputs_without_rows_give_empty_outputs() {
    let formats = [
        None,
        Some(SparseFormat::Csr),
        Some(SparseFormat::Bsr {
            block_rows: 1,
            block_cols: 4,
        }),
        Some(SparseFormat::Bsr {
            block_rows: 16,
            block_cols: 4,
        }),
    ];
    let dtypes = [
        (DType::I8, DType::I8),
        (DType::U8, DType::I8),
        (DType::F32, DType::I8),
        (DType::F32, DType::F32),
    ];
    for conv in [false, true] {
        for (adt, wdt) in dtypes {
            for format in formats {
                let what = format!(
                    "{} {adt} x {wdt} weights {format:?}",
                    if conv { "1x1 conv" } else { "fc" }
                );
                let m = Model::from_def(&model(conv, adt, wdt, format))
                    .unwrap_or_else(|e| panic!("{what}: model: {e}"));
                for route in [SparseRoute::Sparse, SparseRoute::Dense] {
                    for threads in [1, 2] {
                        let opts = Options {
                            threads,
                            sparse: route,
                            ..Options::default()
                        };
                        let mut it = Interpreter::new(&m, opts)
                            .unwrap_or_else(|e| panic!("{what} ({route:?}): prepare: {e}"));
                        it.set_input_bytes(0, &[]).unwrap();
                        it.invoke()
                            .unwrap_or_else(|e| panic!("{what} ({route:?}): invoke: {e}"));
                        assert!(it.output_bytes(0).unwrap().is_empty(), "{what}");
                    }
                }
            }
        }
    }
}
