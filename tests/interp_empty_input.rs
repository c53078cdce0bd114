//! FULLY_CONNECTED and 1×1 CONV_2D on an input with no rows (`[0, K]`, batch 0), with dense and
//! sparse weights and int8, uint8, dynamic-range and f32 data: invoke succeeds with an empty
//! output on every route and thread count (an empty scratch is not aligned: no typed view of it
//! may require alignment).

mod common;

use common::{fc_or_conv_1x1, quantize_io, tensor};
use sparq::{Interpreter, Model, Options, SparseRoute};
use sparq_schema::{DType, ModelDef, Quantization, SparseDef, SparseFormat};

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
    quantize_io(&mut x, &mut y, adt);
    fc_or_conv_1x1(conv, x, w, y)
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
