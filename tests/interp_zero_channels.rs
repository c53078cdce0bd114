//! FULLY_CONNECTED and 1×1 CONV_2D whose weights have no output channels (`[0, K]`,
//! `[0, 1, 1, K]`), dense or stored sparse, with int8, uint8 and f32 activations: a model is
//! untrusted input, so prepare refuses it with an error naming the operator, on every route and
//! thread count (never a panic at run time).

mod common;

use common::{fc_or_conv_1x1, quantize_io, tensor};
use sparq::{Interpreter, Model, Options, SparseRoute};
use sparq_schema::{DType, ModelDef, Quantization, SparseDef, SparseFormat};

/// The one-operator model: `x` [rows, k] (or [1, rows, 1, k] for the convolution) through a
/// weight with no output channels.
fn model(conv: bool, adt: DType, wdt: DType, format: Option<SparseFormat>) -> ModelDef {
    let (rows, k) = (3usize, 8usize);
    let (xs, ws, ys) = if conv {
        (vec![1, rows, 1, k], vec![0, 1, 1, k], vec![1, rows, 1, 0])
    } else {
        (vec![rows, k], vec![0, k], vec![rows, 0])
    };
    let mut w = tensor("w", &ws, wdt);
    if wdt != DType::F32 {
        w.quant = Some(Quantization::per_tensor(0.004, 0));
    }
    match format {
        Some(f) => {
            w.sparse = Some(SparseDef::encode(
                &[],
                0,
                k,
                if wdt == DType::F32 { 4 } else { 1 },
                f,
            ))
        }
        None => w.data = Some(Vec::new()),
    }
    let mut x = tensor("x", &xs, adt);
    let mut y = tensor("y", &ys, adt);
    quantize_io(&mut x, &mut y, adt);
    fc_or_conv_1x1(conv, x, w, y)
}

#[test]
fn weights_without_output_channels_are_a_prepare_error() {
    // (Taller blocks do not fit a matrix without rows: the model refuses them.)
    let formats = [
        None,
        Some(SparseFormat::Csr),
        Some(SparseFormat::Bsr {
            block_rows: 1,
            block_cols: 4,
        }),
    ];
    // (activations, weights): int8, uint8 activations with int8 weights, dynamic range, f32.
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
                let def = model(conv, adt, wdt, format);
                let m = Model::from_def(&def).unwrap_or_else(|e| panic!("{what}: model: {e}"));
                for route in [SparseRoute::Sparse, SparseRoute::Auto, SparseRoute::Dense] {
                    for threads in [1, 2] {
                        let opts = Options {
                            threads,
                            sparse: route,
                            ..Options::default()
                        };
                        match Interpreter::new(&m, opts) {
                            Err(e) => assert!(
                                e.to_string().contains("operator 0"),
                                "{what} ({route:?}): {e}"
                            ),
                            Ok(_) => panic!(
                                "{what} ({route:?}, {threads} threads): prepared a weight \
                                 with no output channels"
                            ),
                        }
                    }
                }
            }
        }
    }
}
