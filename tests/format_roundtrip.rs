//! Round trips: write a `ModelDef` → open it → read everything back equal.

use sparq::{
    Activation, DType, Model, ModelDef, OpKind, OpOptions, Padding, Quantization, SparseDef,
    SparseFormat, TensorDef,
};
use sparq_schema::examples;

fn roundtrip(def: &ModelDef) -> Model {
    let model = Model::from_def(def).unwrap_or_else(|e| panic!("valid model refused: {e}"));
    assert_eq!(
        &model.to_def(),
        def,
        "read back differs from what was written"
    );
    model
}

/// One constant of `dtype`, consumed by an op so the graph is valid.
fn single_constant(t: TensorDef) -> ModelDef {
    let mut m = ModelDef::default();
    let dtype = t.dtype;
    let quant = t.quant.clone().filter(|q| q.axis.is_none());
    let c = m.add_tensor(t);
    let mut out = TensorDef::activation("out", vec![], dtype);
    out.quant = quant;
    let o = m.add_tensor(out);
    m.add_op(OpKind::Reshape, OpOptions::None, &[c as i32], &[o as i32]);
    m.outputs = vec![o];
    m
}

#[test]
fn every_dtype_dense() {
    for dtype in DType::ALL {
        let n = 2 * 3 * 5;
        let data: Vec<u8> = (0..n * dtype.size_bytes())
            .map(|k| (k * 7 + 1) as u8)
            .collect();
        let mut t = TensorDef::constant(format!("w_{dtype}"), vec![2, 3, 5], dtype, data.clone());
        if dtype.is_quantizable() {
            let zp = if dtype == DType::U8 { 128 } else { -3 };
            t.quant = Some(Quantization::per_tensor(0.125, zp));
        }
        let model = roundtrip(&single_constant(t));
        let info = &model.tensors()[0];
        assert_eq!(info.shape, vec![2, 3, 5], "{dtype}");
        assert_eq!(info.dtype, dtype);
        assert!(info.is_constant);
        assert_eq!(info.byte_size, n * dtype.size_bytes());
        assert_eq!(model.tensor_data(0), Some(&data[..]), "{dtype}");
        assert!(!model.tensors()[1].is_constant);
        assert_eq!(model.tensor_data(1), None);
    }
}

#[test]
fn quantization_per_tensor_and_per_axis() {
    for axis in 0..3 {
        let shape = [3usize, 4, 2];
        let n = shape[axis];
        let scales: Vec<f32> = (0..n).map(|k| 0.01 * (k + 1) as f32).collect();
        let zero_points: Vec<i64> = (0..n as i64).map(|k| k - 1).collect();
        let q = Quantization {
            scales,
            zero_points,
            axis: Some(axis),
        };
        let t =
            TensorDef::constant("w", vec![3, 4, 2], DType::I8, vec![1; 24]).with_quant(q.clone());
        let model = roundtrip(&single_constant(t));
        assert_eq!(model.tensors()[0].quant.as_ref(), Some(&q));
    }
    let q = Quantization::per_tensor(f32::MIN_POSITIVE, i32::MIN as i64);
    let t = TensorDef::constant("bias", vec![4], DType::I32, vec![0; 16]).with_quant(q.clone());
    let model = roundtrip(&single_constant(t));
    assert_eq!(model.tensors()[0].quant.as_ref(), Some(&q));
}

fn pattern(rows: usize, cols: usize, elem: usize, keep: impl Fn(usize, usize) -> bool) -> Vec<u8> {
    let mut v = vec![0u8; rows * cols * elem];
    for r in 0..rows {
        for c in 0..cols {
            if keep(r, c) {
                for b in 0..elem {
                    v[(r * cols + c) * elem + b] = (1 + (r * 31 + c * 7 + b) % 250) as u8;
                }
            }
        }
    }
    v
}

#[test]
fn sparse_csr_and_bsr() {
    let cases: &[(&[i32], SparseFormat, DType)] = &[
        (&[8, 3, 3, 5], SparseFormat::Csr, DType::I8),
        (&[7, 13], SparseFormat::Csr, DType::F32),
        (&[1, 1], SparseFormat::Csr, DType::F16),
        (
            &[8, 16],
            SparseFormat::Bsr {
                block_rows: 1,
                block_cols: 4,
            },
            DType::I8,
        ),
        (
            &[9, 10],
            SparseFormat::Bsr {
                block_rows: 4,
                block_cols: 1,
            },
            DType::F32,
        ),
        (
            &[6, 2, 2, 3],
            SparseFormat::Bsr {
                block_rows: 2,
                block_cols: 4,
            },
            DType::U8,
        ),
        (
            &[5, 5],
            SparseFormat::Bsr {
                block_rows: 5,
                block_cols: 5,
            },
            DType::I32,
        ),
    ];
    for &(shape, format, dtype) in cases {
        let (rows, cols) = sparq_schema::matrix_dims(shape).unwrap();
        let elem = dtype.size_bytes();
        let dense = pattern(rows, cols, elem, |r, c| (r * 3 + c / 2) % 5 < 2);
        let sparse = SparseDef::encode(&dense, rows, cols, elem, format);
        assert_eq!(sparse.decode(rows, cols, elem).as_deref(), Some(&dense[..]));
        let t = TensorDef {
            name: "w".into(),
            shape: shape.to_vec(),
            dtype,
            quant: None,
            data: None,
            sparse: Some(sparse.clone()),
        };
        let model = roundtrip(&single_constant(t));
        let view = model.sparse(0).expect("sparse view");
        let what = format!("{shape:?} {format:?} {dtype}");
        assert_eq!((view.rows, view.cols), (rows, cols), "{what}");
        assert_eq!(view.format, format, "{what}");
        assert_eq!(view.row_ptr, &sparse.row_ptr[..], "{what}");
        assert_eq!(view.col_idx, &sparse.col_idx[..], "{what}");
        assert_eq!(view.values, &sparse.values[..], "{what}");
        assert!(model.tensors()[0].is_constant);
        assert_eq!(
            model.tensor_data(0),
            None,
            "a sparse tensor has no dense data"
        );
        let (br, bc) = view.block();
        let stored = (view.stored_blocks() * br * bc) as f64;
        let expect = (1.0 - stored / (rows * cols) as f64).max(0.0);
        assert!(
            (view.sparsity() - expect).abs() < 1e-12,
            "{what}: {}",
            view.sparsity()
        );
    }
}

#[test]
fn all_zero_sparse_matrix() {
    let sparse = SparseDef::encode(&[0; 12], 3, 4, 1, SparseFormat::Csr);
    assert!(sparse.col_idx.is_empty() && sparse.values.is_empty());
    let t = TensorDef {
        name: "w".into(),
        shape: vec![3, 4],
        dtype: DType::I8,
        quant: None,
        data: None,
        sparse: Some(sparse),
    };
    let model = roundtrip(&single_constant(t));
    assert_eq!(model.sparse(0).unwrap().sparsity(), 1.0);
}

#[test]
fn every_options_variant() {
    let options = vec![
        (
            OpKind::Conv2d,
            OpOptions::Conv2d {
                padding: Padding::Valid,
                stride_h: 2,
                stride_w: 3,
                dilation_h: 4,
                dilation_w: 5,
                activation: Activation::Relu,
            },
        ),
        (
            OpKind::DepthwiseConv2d,
            OpOptions::DepthwiseConv2d {
                padding: Padding::Same,
                stride_h: 1,
                stride_w: 2,
                dilation_h: 1,
                dilation_w: 1,
                depth_multiplier: 2,
                activation: Activation::Relu6,
            },
        ),
        (
            OpKind::FullyConnected,
            OpOptions::FullyConnected {
                activation: Activation::Tanh,
                keep_num_dims: true,
                asymmetric_quantize_inputs: true,
            },
        ),
        (
            OpKind::MaxPool2d,
            OpOptions::Pool2d {
                padding: Padding::Valid,
                stride_h: 2,
                stride_w: 2,
                filter_h: 3,
                filter_w: 3,
                activation: Activation::ReluN1To1,
            },
        ),
        (
            OpKind::TransposeConv,
            OpOptions::TransposeConv {
                padding: Padding::Same,
                stride_h: 2,
                stride_w: 2,
                activation: Activation::None,
            },
        ),
        (
            OpKind::Sub,
            OpOptions::Elementwise {
                activation: Activation::Relu,
            },
        ),
        (
            OpKind::Concatenation,
            OpOptions::Concatenation {
                axis: -1,
                activation: Activation::None,
            },
        ),
        (
            OpKind::Reshape,
            OpOptions::Reshape {
                new_shape: vec![1, -1],
            },
        ),
        (OpKind::Squeeze, OpOptions::Squeeze { dims: vec![1, 2] }),
        (
            OpKind::StridedSlice,
            OpOptions::StridedSlice {
                begin_mask: 1,
                end_mask: 2,
                ellipsis_mask: 0,
                new_axis_mask: 4,
                shrink_axis_mask: 8,
                offset: true,
            },
        ),
        (
            OpKind::DepthToSpace,
            OpOptions::DepthToSpace { block_size: 2 },
        ),
        (
            OpKind::SpaceToDepth,
            OpOptions::SpaceToDepth { block_size: 3 },
        ),
        (
            OpKind::ResizeBilinear,
            OpOptions::Resize {
                align_corners: false,
                half_pixel_centers: true,
            },
        ),
        (OpKind::Softmax, OpOptions::Softmax { beta: 0.5 }),
        (OpKind::Mean, OpOptions::Reducer { keep_dims: true }),
        (OpKind::LeakyRelu, OpOptions::LeakyRelu { alpha: 0.2 }),
        (
            OpKind::Gather,
            OpOptions::Gather {
                axis: 1,
                batch_dims: 0,
            },
        ),
        (
            OpKind::Pack,
            OpOptions::Pack {
                axis: 0,
                values_count: 1,
            },
        ),
        (OpKind::Split, OpOptions::Split { num_splits: 1 }),
        (
            OpKind::BatchMatMul,
            OpOptions::BatchMatMul {
                adj_x: true,
                adj_y: false,
            },
        ),
        (OpKind::Relu, OpOptions::None),
    ];
    let mut m = ModelDef::default();
    let x = m.add_tensor(TensorDef::activation("x", vec![1, 4], DType::F32));
    m.inputs = vec![x];
    for (k, (kind, opts)) in options.into_iter().enumerate() {
        let y = m.add_tensor(TensorDef::activation(
            format!("y{k}"),
            vec![1, 4],
            DType::F32,
        ));
        m.add_op(kind, opts, &[x as i32], &[y as i32]);
        m.outputs.push(y);
    }
    let model = roundtrip(&m);
    assert_eq!(model.operators().len(), 21);
}

#[test]
fn every_op_kind_roundtrips() {
    for &kind in sparq::OpKind::ALL {
        assert_eq!(OpKind::from_fb(kind.to_fb()), Some(kind));
    }
}

#[test]
fn tiny_example_roundtrips_and_has_every_dtype() {
    let def = examples::tiny();
    let model = roundtrip(&def);
    for dtype in DType::ALL {
        assert!(
            model.tensors().iter().any(|t| t.dtype == dtype),
            "no {dtype} tensor"
        );
    }
    assert!((0..model.tensors().len())
        .any(|i| matches!(model.sparse(i), Some(v) if v.format == SparseFormat::Csr)));
    assert!((0..model.tensors().len()).any(
        |i| matches!(model.sparse(i), Some(v) if matches!(v.format, SparseFormat::Bsr { .. }))
    ));
    assert_eq!(model.operators()[4].inputs[2], None, "absent bias");
    assert_eq!(model.metadata(), &def.metadata);
    assert_eq!(model.version(), sparq_schema::FORMAT_VERSION);
}

#[test]
fn weights_are_views_into_the_mapping() {
    let bytes = sparq_schema::write(&examples::tiny()).unwrap();
    let path = std::env::temp_dir().join(format!("sparq-zero-copy-{}.sparq", std::process::id()));
    std::fs::write(&path, &bytes).unwrap();
    let model = Model::open(&path).unwrap();
    std::fs::remove_file(&path).ok();
    let file = model.as_bytes().as_ptr_range();
    let inside = |s: &[u8]| {
        let r = s.as_ptr_range();
        file.start <= r.start && r.end <= file.end
    };
    let mut seen = 0;
    for i in 0..model.tensors().len() {
        if let Some(d) = model.tensor_data(i) {
            assert!(inside(d), "tensor {i} data is not inside the mapping");
            assert_eq!(
                d.as_ptr() as usize % 64,
                0,
                "tensor {i} data not 64-byte aligned"
            );
            seen += 1;
        }
        if let Some(s) = model.sparse(i) {
            assert!(
                inside(s.values)
                    && inside(bytemuck::cast_slice(s.row_ptr))
                    && inside(bytemuck::cast_slice(s.col_idx))
            );
            seen += 1;
        }
    }
    assert!(seen >= 4);
    assert_eq!(model.as_bytes(), &bytes[..]);
}

#[test]
fn from_bytes_accepts_misaligned_slices() {
    let bytes = sparq_schema::write(&examples::tiny()).unwrap();
    let mut shifted = vec![0u8; bytes.len() + 1];
    shifted[1..].copy_from_slice(&bytes);
    let model = Model::from_bytes(&shifted[1..]).unwrap();
    assert_eq!(model.to_def(), examples::tiny());
    for i in 0..model.tensors().len() {
        if let Some(d) = model.tensor_data(i) {
            assert_eq!(d.as_ptr() as usize % 64, 0);
        }
    }
}

/// 64-byte alignment for an embedded model (`include_bytes!` alone aligns to 1).
#[repr(C, align(64))]
struct Align64;
#[repr(C)]
struct AlignedAs<A, B: ?Sized> {
    _align: [A; 0],
    bytes: B,
}
static TINY: &AlignedAs<Align64, [u8]> = &AlignedAs {
    _align: [],
    bytes: *include_bytes!("fixtures/tiny.sparq"),
};

#[test]
fn from_static_uses_aligned_bytes_in_place() {
    let model = Model::from_static(&TINY.bytes).unwrap();
    assert_eq!(
        model.as_bytes().as_ptr(),
        TINY.bytes.as_ptr(),
        "aligned static bytes were copied"
    );
    // Misaligned static bytes are copied into an aligned buffer.
    let leaked: &'static mut [u8] = Vec::leak(vec![0u8; TINY.bytes.len() + 2]);
    let k = if leaked[1..].as_ptr().align_offset(64) == 0 {
        2
    } else {
        1
    };
    leaked[k..k + TINY.bytes.len()].copy_from_slice(&TINY.bytes);
    let misaligned: &'static [u8] = &leaked[k..k + TINY.bytes.len()];
    let model = Model::from_static(misaligned).unwrap();
    assert_ne!(model.as_bytes().as_ptr(), misaligned.as_ptr());
    assert_eq!(model.as_bytes().as_ptr() as usize % 64, 0);
    assert_eq!(model.to_def(), examples::tiny());
}

#[test]
fn model_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Model>();
}

#[test]
fn writer_layout_is_aligned_and_tight() {
    let bytes = sparq_schema::write(&examples::tiny()).unwrap();
    let root = sparq_schema::fb::root_as_model(&bytes).unwrap();
    let mut buffers = Vec::new();
    for t in root.tensors().unwrap() {
        buffers.extend(t.data().copied());
        if let Some(s) = t.sparse() {
            buffers.extend(
                [s.row_ptr(), s.col_idx(), s.values()]
                    .into_iter()
                    .flatten()
                    .copied(),
            );
        }
    }
    assert_eq!(
        buffers.len(),
        3 + 3 + 3,
        "3 dense constants + 2 sparse x 3 arrays"
    );
    let mut end = 0;
    for b in &buffers {
        assert_eq!(b.offset() % 64, 0, "offset {} not 64-aligned", b.offset());
        assert!(b.offset() >= end, "buffers overlap or are out of order");
        end = b.offset() + b.length();
    }
    assert_eq!(
        end,
        bytes.len() as u64,
        "the file ends where the last buffer ends"
    );
}
