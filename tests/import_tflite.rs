//! The TFLite importer on real models (the committed digits fixtures, and the whole zoo when it
//! is present) and on hand-built models that exercise each path: buffers after the FlatBuffer,
//! both operator-code fields, sparse tensors (CSR, blocks, all index widths) and their checks.

mod import_util;

use import_util::*;
use sparq::convert::graph::Sparse;
use sparq::convert::{read_tflite, ImportError};
use sparq_schema::tflite::{BuiltinOperator as B, TensorType};

#[test]
fn every_fixture_imports() {
    let models = fixture_models();
    assert!(
        models.len() >= 50,
        "expected the digits fixtures, found {}",
        models.len()
    );
    for (name, bytes) in &models {
        let g = read_tflite(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!g.ops.is_empty(), "{name}: no operators");
        for op in &g.ops {
            // A PACK of computed tensors is a real operator; one of constants folds.
            let all_const = op
                .inputs
                .iter()
                .all(|&t| t < 0 || g.tensors[t as usize].data.is_some());
            let unfolded =
                matches!(op.code, B::DENSIFY | B::SHAPE) || (op.code == B::PACK && all_const);
            assert!(
                !unfolded,
                "{name}: operator {} {} left after folding",
                op.index,
                op.name()
            );
            if op.code == B::DEQUANTIZE {
                let src = &g.tensors[op.inputs[0] as usize];
                assert!(
                    src.dtype != TensorType::FLOAT16,
                    "{name}: f16 DEQUANTIZE left"
                );
            }
        }
    }
}

#[test]
fn zoo_models_import() {
    let Some(zoo) = zoo() else {
        println!("skipped: zoo not found");
        return;
    };
    let mut n = 0;
    let mut paths: Vec<_> = std::fs::read_dir(zoo.join("models"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tflite"))
        .collect();
    paths.sort();
    for p in paths {
        let bytes = std::fs::read(&p).unwrap();
        read_tflite(&bytes).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        n += 1;
    }
    assert!(n >= 63, "only {n} zoo models");
}

/// The fp16 models keep float16 constants, read directly by the consumers.
#[test]
fn fp16_weights_stay_f16() {
    for name in ["digits_mlp_fp16", "digits_cnn_fp16"] {
        let g = read_tflite(&fixture(name)).unwrap();
        let f32g = read_tflite(&fixture(&name.replace("fp16", "float32"))).unwrap();
        assert_eq!(
            g.ops.len(),
            f32g.ops.len(),
            "{name}: DEQUANTIZE ops not all folded"
        );
        for (op, op32) in g.ops.iter().zip(&f32g.ops) {
            assert_eq!(op.code, op32.code);
            if matches!(
                op.code,
                B::FULLY_CONNECTED | B::CONV_2D | B::DEPTHWISE_CONV_2D
            ) {
                let w = &g.tensors[op.inputs[1] as usize];
                assert_eq!(
                    w.dtype,
                    TensorType::FLOAT16,
                    "{name}: operator {} weight",
                    op.index
                );
                assert_eq!(w.data.as_ref().unwrap().len(), w.elements() * 2);
            }
        }
    }
}

/// TFLite sparse tensors decode to exactly the weights of the same model stored dense.
#[test]
fn sparse_fixtures_match_their_dense_twins() {
    let mut compared = 0;
    for (name, bytes) in fixture_models() {
        let Some(dense_name) = name.strip_suffix("_sparse") else {
            continue;
        };
        let sparse = read_tflite(&bytes).unwrap();
        let dense = read_tflite(&fixture(dense_name)).unwrap();
        assert_eq!(sparse.ops.len(), dense.ops.len(), "{name}");
        let mut found = 0;
        for (a, b) in sparse.ops.iter().zip(&dense.ops) {
            for (&x, &y) in a.inputs.iter().zip(&b.inputs) {
                if x < 0 {
                    continue;
                }
                let (ta, tb) = (&sparse.tensors[x as usize], &dense.tensors[y as usize]);
                let Some(sp) = &ta.sparse else { continue };
                found += 1;
                assert_eq!(ta.shape, tb.shape, "{name}: {}", ta.name);
                let rows = ta.shape[0] as usize;
                let cols = ta.elements() / rows;
                let es = if ta.dtype == TensorType::FLOAT32 {
                    4
                } else {
                    1
                };
                let got = densify(sp, rows, cols, es);
                let want = tb.data.as_ref().unwrap();
                // Compare values (the dense file keeps -0.0 where pruning zeroed a weight), and
                // for int8 (quantized separately) only the zero pattern.
                let first_diff = (0..rows * cols).find(|&i| {
                    let (g, w) = (&got[i * es..(i + 1) * es], &want[i * es..(i + 1) * es]);
                    if es == 4 {
                        let f = |b: &[u8]| f32::from_le_bytes(b.try_into().unwrap());
                        f(g) != f(w)
                    } else {
                        (g[0] == 0) != (w[0] == 0)
                    }
                });
                assert!(
                    first_diff.is_none(),
                    "{name}: {} differs from {dense_name} at element {first_diff:?}",
                    ta.name
                );
                compared += 1;
            }
        }
        assert!(found > 0, "{name}: no sparse tensor");
    }
    assert!(compared >= 20, "only {compared} sparse tensors compared");
}

/// The 4×1-pruned Dense weights arrive as TFLite 1×4 blocks read by FULLY_CONNECTED directly
/// (no DENSIFY) and are stored as 1×4 BSR.
#[test]
fn block_sparse_fc_becomes_bsr() {
    let g = read_tflite(&fixture("digits_mlp_block80_4x1_float32_sparse")).unwrap();
    let mut bsr = 0;
    for op in g.ops.iter().filter(|o| o.code == B::FULLY_CONNECTED) {
        match &g.tensors[op.inputs[1] as usize].sparse {
            Some(Sparse::Bsr { block, .. }) => {
                assert_eq!(*block, [1, 4]);
                bsr += 1;
            }
            other => panic!("operator {}: expected BSR, got {other:?}", op.index),
        }
    }
    assert_eq!(bsr, 3);
}

#[test]
fn shape_chain_folds_to_a_constant() {
    let g = read_tflite(&fixture("shape_chain_float32")).unwrap();
    let names: Vec<String> = g.ops.iter().map(|o| o.name()).collect();
    assert_eq!(names, ["RESHAPE", "FULLY_CONNECTED"]);
    let shape = &g.tensors[g.ops[0].inputs[1] as usize];
    assert_eq!(shape.dtype, TensorType::INT32);
    let v: Vec<i32> = shape
        .data
        .as_ref()
        .expect("constant shape")
        .chunks(4)
        .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(v, [1, 32]);
}

// ----- hand-built models -----

fn csr_sparsity(segments: Idx, indices: Idx, rows: i32) -> Sparsity {
    Sparsity {
        traversal: vec![0, 1],
        block_map: vec![],
        dims: vec![Dim::Dense(rows), Dim::Csr(segments, indices)],
    }
}

/// 3×4 matrix [[1,0,2,0],[0,0,0,0],[0,3,0,4]] as TFLite CSR.
fn small_csr(seg: Idx, idx: Idx) -> M {
    fc_model(
        3,
        4,
        Buf::Inline(f32_bytes(&[1.0, 2.0, 3.0, 4.0])),
        Some(csr_sparsity(seg, idx, 3)),
    )
}

fn expect_invalid(m: &M, needle: &str) {
    match read_tflite(&build(m)) {
        Err(e) => {
            let s = e.to_string();
            assert!(
                s.contains(needle),
                "error {s:?} does not mention {needle:?}"
            );
        }
        Ok(_) => panic!("accepted a model that should fail with {needle:?}"),
    }
}

#[test]
fn csr_with_every_index_width() {
    let cases = [
        (Idx::I32(vec![0, 2, 2, 4]), Idx::I32(vec![0, 2, 1, 3])),
        (Idx::U16(vec![0, 2, 2, 4]), Idx::U16(vec![0, 2, 1, 3])),
        (Idx::U8(vec![0, 2, 2, 4]), Idx::U8(vec![0, 2, 1, 3])),
    ];
    for (seg, idx) in cases {
        let g = read_tflite(&build(&small_csr(seg, idx))).unwrap();
        let w = g.tensors[1].sparse.as_ref().expect("sparse weight");
        assert_eq!(
            *w,
            Sparse::Csr {
                row_ptr: vec![0, 2, 2, 4],
                col_idx: vec![0, 2, 1, 3],
                values: f32_bytes(&[1.0, 2.0, 3.0, 4.0])
            }
        );
    }
}

#[test]
fn column_major_traversal() {
    // The same matrix traversed column by column: columns 0..4 have rows {0}, {2}, {0}, {2}.
    let sp = Sparsity {
        traversal: vec![1, 0],
        block_map: vec![],
        dims: vec![
            Dim::Dense(4),
            Dim::Csr(Idx::I32(vec![0, 1, 2, 3, 4]), Idx::I32(vec![0, 2, 0, 2])),
        ],
    };
    let m = fc_model(
        3,
        4,
        Buf::Inline(f32_bytes(&[1.0, 3.0, 2.0, 4.0])),
        Some(sp),
    );
    let g = read_tflite(&build(&m)).unwrap();
    let w = g.tensors[1].sparse.as_ref().unwrap();
    assert_eq!(
        densify(w, 3, 4, 4),
        f32_bytes(&[1., 0., 2., 0., 0., 0., 0., 0., 0., 3., 0., 4.])
    );
}

#[test]
fn block_sparse_1x4_is_bsr() {
    // 2×8 matrix in 1×4 blocks: block row 0 has block col 1, block row 1 has block cols 0 and 1.
    let sp = Sparsity {
        traversal: vec![0, 1, 2],
        block_map: vec![1],
        dims: vec![
            Dim::Dense(2),
            Dim::Csr(Idx::U8(vec![0, 1, 3]), Idx::U8(vec![1, 0, 1])),
            Dim::Dense(4),
        ],
    };
    let vals: Vec<f32> = (1..=12).map(|v| v as f32).collect();
    let m = fc_model(2, 8, Buf::Inline(f32_bytes(&vals)), Some(sp));
    let g = read_tflite(&build(&m)).unwrap();
    let w = g.tensors[1].sparse.as_ref().unwrap();
    let Sparse::Bsr {
        block,
        row_ptr,
        col_idx,
        ..
    } = w
    else {
        panic!("not BSR: {w:?}")
    };
    assert_eq!(
        (*block, row_ptr.as_slice(), col_idx.as_slice()),
        ([1, 4], &[0, 1, 3][..], &[1, 0, 1][..])
    );
    let want = [
        0., 0., 0., 0., 1., 2., 3., 4., 5., 6., 7., 8., 9., 10., 11., 12.,
    ];
    assert_eq!(densify(w, 2, 8, 4), f32_bytes(&want));
}

#[test]
fn sparse_index_out_of_range_is_rejected() {
    // CVE-2022-23560: an index past the dimension must not be written anywhere.
    expect_invalid(
        &small_csr(Idx::I32(vec![0, 2, 2, 4]), Idx::I32(vec![0, 2, 1, 4])),
        "out of range",
    );
    expect_invalid(
        &small_csr(Idx::U16(vec![0, 2, 2, 4]), Idx::U16(vec![0, 60000, 1, 3])),
        "out of range",
    );
    expect_invalid(
        &small_csr(Idx::I32(vec![0, 2, 2, 4]), Idx::I32(vec![0, -1, 1, 3])),
        "negative",
    );
}

#[test]
fn bad_segments_are_rejected() {
    // Decreasing, not starting at 0, past the index count, wrong length.
    expect_invalid(
        &small_csr(Idx::I32(vec![0, 3, 2, 4]), Idx::I32(vec![0, 2, 1, 3])),
        "segment",
    );
    expect_invalid(
        &small_csr(Idx::I32(vec![1, 2, 2, 4]), Idx::I32(vec![0, 2, 1, 3])),
        "segments run",
    );
    expect_invalid(
        &small_csr(Idx::I32(vec![0, 9, 2, 4]), Idx::I32(vec![0, 2, 1, 3])),
        "segment",
    );
    expect_invalid(
        &small_csr(Idx::I32(vec![0, 2, 4]), Idx::I32(vec![0, 2, 1, 3])),
        "segments",
    );
    // Unsorted / duplicate indices in one segment.
    expect_invalid(
        &small_csr(Idx::I32(vec![0, 2, 2, 4]), Idx::I32(vec![2, 0, 1, 3])),
        "increasing",
    );
    expect_invalid(
        &small_csr(Idx::I32(vec![0, 2, 2, 4]), Idx::I32(vec![2, 2, 1, 3])),
        "increasing",
    );
}

#[test]
fn bad_sparsity_structure_is_rejected() {
    let mut m = small_csr(Idx::I32(vec![0, 2, 2, 4]), Idx::I32(vec![0, 2, 1, 3]));
    m.tensors[1].sparsity.as_mut().unwrap().traversal = vec![0, 0];
    expect_invalid(&m, "traversal_order");
    let mut m = small_csr(Idx::I32(vec![0, 2, 2, 4]), Idx::I32(vec![0, 2, 1, 3]));
    m.tensors[1].sparsity.as_mut().unwrap().dims[0] = Dim::Dense(5);
    expect_invalid(&m, "dense size");
    let mut m = small_csr(Idx::I32(vec![0, 2, 2, 4]), Idx::I32(vec![0, 2, 1, 3]));
    m.buffers[1] = Buf::Inline(f32_bytes(&[1.0, 2.0, 3.0]));
    expect_invalid(&m, "stored values");
    // A block size that does not divide its dimension.
    let sp = Sparsity {
        traversal: vec![0, 1, 2],
        block_map: vec![1],
        dims: vec![
            Dim::Dense(2),
            Dim::Csr(Idx::U8(vec![0, 1, 2]), Idx::U8(vec![0, 0])),
            Dim::Dense(3),
        ],
    };
    expect_invalid(
        &fc_model(2, 8, Buf::Inline(f32_bytes(&[0.0; 6])), Some(sp)),
        "block size",
    );
}

#[test]
fn buffers_after_the_flatbuffer() {
    let w: Vec<f32> = (0..12).map(|v| v as f32 * 0.5).collect();
    let m = fc_model(3, 4, Buf::After(f32_bytes(&w)), None);
    let bytes = build(&m);
    let g = read_tflite(&bytes).unwrap();
    assert_eq!(g.tensors[1].data.as_deref(), Some(&f32_bytes(&w)[..]));
    // The same data inline gives the same graph.
    let inline = read_tflite(&build(&fc_model(3, 4, Buf::Inline(f32_bytes(&w)), None))).unwrap();
    assert_eq!(g.tensors, inline.tensors);
    // Past the end of the file, or overflowing.
    let mut m2 = fc_model(3, 4, Buf::At(bytes.len() as u64, 48), None);
    m2.buffers[1] = Buf::At(10_000_000, 48);
    expect_invalid(&m2, "past the end of the file");
    m2.buffers[1] = Buf::At(u64::MAX - 8, 48);
    expect_invalid(&m2, "past the end of the file");
}

#[test]
fn wrong_buffer_size_is_rejected() {
    expect_invalid(
        &fc_model(3, 4, Buf::Inline(f32_bytes(&[1.0; 11])), None),
        "needs 48",
    );
}

#[test]
fn operator_code_fields() {
    let w = Buf::Inline(f32_bytes(&[0.0; 12]));
    // Old files: only the deprecated byte field.
    let mut m = fc_model(3, 4, w.clone(), None);
    m.codes = vec![(9, 0, None)];
    assert_eq!(
        read_tflite(&build(&m)).unwrap().ops[0].code,
        B::FULLY_CONNECTED
    );
    // New files: codes above 127 only in builtin_code, the byte field holding the placeholder.
    m.codes = vec![(127, B::GELU.0, None)];
    let e = read_tflite(&build(&m));
    assert!(e.is_ok(), "GELU reads (mapping decides support): {e:?}");
    assert_eq!(e.unwrap().ops[0].code, B::GELU);
    // Out-of-range opcode index.
    m.codes = vec![(9, 9, None)];
    m.ops[0].opcode = 3;
    expect_invalid(&m, "opcode index 3 out of range");
}

#[test]
fn custom_op_is_named() {
    let mut m = fc_model(3, 4, Buf::Inline(f32_bytes(&[0.0; 12])), None);
    m.codes = vec![(32, 32, Some("TFLite_Detection_PostProcess".into()))];
    m.ops[0].options = Opt::None;
    match read_tflite(&build(&m)) {
        Err(ImportError::UnsupportedOp { index, op, .. }) => {
            assert_eq!(index, 0);
            assert!(op.contains("TFLite_Detection_PostProcess"), "{op}");
        }
        other => panic!("expected an unsupported-op error, got {other:?}"),
    }
}

#[test]
fn bad_indices_are_rejected() {
    let w = Buf::Inline(f32_bytes(&[0.0; 12]));
    let mut m = fc_model(3, 4, w.clone(), None);
    m.ops[0].inputs[0] = 7;
    expect_invalid(&m, "input 0 is tensor 7, out of range");
    let mut m = fc_model(3, 4, w.clone(), None);
    m.ops[0].outputs[0] = -1;
    expect_invalid(&m, "output 0 is tensor -1");
    let mut m = fc_model(3, 4, w.clone(), None);
    m.outputs = vec![9];
    expect_invalid(&m, "tensor index 9 out of range");
    let mut m = fc_model(3, 4, w.clone(), None);
    m.tensors[1].buffer = 5;
    expect_invalid(&m, "buffer 5 out of range");
    let mut m = fc_model(3, 4, w.clone(), None);
    m.tensors[0].shape = vec![1, -4];
    expect_invalid(&m, "dimension 1 is -4");
    // Reading a tensor nothing wrote.
    let mut m = fc_model(3, 4, w.clone(), None);
    m.inputs = vec![];
    expect_invalid(&m, "read before any operator writes it");
    // Writing a constant.
    let mut m = fc_model(3, 4, w, None);
    m.ops[0].outputs[0] = 1;
    expect_invalid(&m, "constant");
}

#[test]
fn bad_quantization_is_rejected() {
    let w = Buf::Inline(vec![0u8; 12]);
    let q = |m: &mut M, s: Vec<f32>, z: Vec<i64>, d: i32| {
        m.tensors[1].ty = TensorType::INT8;
        m.tensors[1].quant = Some((s, z, d));
    };
    let mut m = fc_model(3, 4, w.clone(), None);
    q(&mut m, vec![0.1, 0.2, 0.3], vec![0, 0, 0], 0);
    let g = read_tflite(&build(&m)).unwrap();
    assert_eq!(g.tensors[1].quant.as_ref().unwrap().axis, Some(0));
    let mut m = fc_model(3, 4, w.clone(), None);
    q(&mut m, vec![0.1, 0.2], vec![0, 0], 0);
    expect_invalid(&m, "2 per-axis scales along dimension 0 of size 3");
    let mut m = fc_model(3, 4, w.clone(), None);
    q(&mut m, vec![0.1, 0.2, 0.3], vec![0, 0, 0], 5);
    expect_invalid(&m, "quantized dimension 5");
    let mut m = fc_model(3, 4, w.clone(), None);
    q(&mut m, vec![0.1], vec![0, 1], 0);
    expect_invalid(&m, "1 scales but 2 zero points");
    let mut m = fc_model(3, 4, w.clone(), None);
    q(&mut m, vec![f32::NAN], vec![0], 0);
    expect_invalid(&m, "scale 0 is NaN");
    let mut m = fc_model(3, 4, w.clone(), None);
    q(&mut m, vec![0.1, 0.0, 0.3], vec![0, 0, 0], 0);
    expect_invalid(&m, "scale 1 is 0");
    let mut m = fc_model(3, 4, w, None);
    q(&mut m, vec![0.5], vec![300], 0);
    expect_invalid(&m, "zero point 0 is 300");
}

#[test]
fn shared_buffer_amplification_is_bounded() {
    // 200 tensors sharing one 1 MiB buffer would copy 200 MiB out of a 1 MiB file.
    let n = 1 << 18;
    let tensors = (0..200)
        .map(|i| T::new(&format!("c{i}"), &[n], TensorType::FLOAT32, 1))
        .collect();
    let m = M {
        codes: vec![],
        tensors,
        ops: vec![],
        inputs: vec![],
        outputs: vec![],
        buffers: vec![Buf::Empty, Buf::Inline(vec![0u8; 4 * n as usize])],
        version: 3,
    };
    expect_invalid(&m, "shared buffers");
    // A few sharers are fine.
    let mut few = m.clone();
    few.tensors.truncate(3);
    read_tflite(&build(&few)).expect("three tensors sharing a buffer");
}

#[test]
fn absent_required_input_is_rejected() {
    // ADD has no optional inputs: -1 is only allowed for a bias (found by fuzzing).
    let mut m = fc_model(3, 4, Buf::Inline(f32_bytes(&[0.0; 12])), None);
    m.codes = vec![(0, 0, None)];
    m.ops[0].options = Opt::None;
    m.ops[0].inputs = vec![0, -1];
    m.tensors[2].shape = vec![1, 4];
    match sparq::convert::import_tflite(&build(&m)) {
        Err(e) => assert!(
            e.to_string()
                .contains("input 1 is absent (-1) but Add requires it"),
            "{e}"
        ),
        Ok(_) => panic!("accepted ADD with an absent input"),
    }
    // The FULLY_CONNECTED bias may be absent.
    let m = fc_model(3, 4, Buf::Inline(f32_bytes(&[0.0; 12])), None);
    sparq::convert::import_tflite(&build(&m)).expect("FC without bias");
}

#[test]
fn huge_shape_with_a_zero_dimension_is_rejected() {
    // 8 × 268435464 overflows the element limit before the trailing 0 (found by fuzzing).
    let mut m = fc_model(3, 4, Buf::Inline(f32_bytes(&[0.0; 12])), None);
    m.tensors[0].shape = vec![1, 8, 268_435_464, 0];
    expect_invalid(&m, "has more than 2147483647 elements");
}
