//! Malformed models: every one must be refused with an `Err` whose message names the problem,
//! never a panic. Built from the tiny example (`sparq_schema::examples::tiny`), either by editing
//! its `ModelDef` (the writer does not validate) or by patching the written bytes.

use sparq::{
    DType, Error, Model, ModelDef, OpKind, OpOptions, Quantization, SparseDef, SparseFormat,
    TensorDef,
};
use sparq_schema::{examples, fb, write};
use std::panic::{catch_unwind, AssertUnwindSafe};

fn tiny_bytes() -> Vec<u8> {
    write(&examples::tiny()).unwrap()
}

fn index_of(m: &ModelDef, name: &str) -> usize {
    m.tensors.iter().position(|t| t.name == name).unwrap()
}

/// Opens `bytes`, which must fail with a message containing every one of `needles`.
#[track_caller]
fn refused(bytes: &[u8], needles: &[&str]) -> Error {
    let err = match catch_unwind(AssertUnwindSafe(|| Model::from_bytes(bytes))) {
        Err(_) => panic!("from_bytes panicked (expected an error with {needles:?})"),
        Ok(Ok(_)) => panic!("a malformed model was accepted (expected an error with {needles:?})"),
        Ok(Err(e)) => e,
    };
    let msg = err.to_string();
    for n in needles {
        assert!(msg.contains(n), "error {msg:?} does not mention {n:?}");
    }
    err
}

#[track_caller]
fn refused_def(m: &ModelDef, needles: &[&str]) -> Error {
    refused(&write(m).unwrap(), needles)
}

/// Checks, on a model that opened, the invariants the interpreter relies on; then that the
/// model survives a rewrite.
fn check_opened(model: &Model) {
    let n = model.tensors().len();
    for (i, t) in model.tensors().iter().enumerate() {
        assert_eq!(t.byte_size, t.num_elements * t.dtype.size_bytes());
        if let Some(d) = model.tensor_data(i) {
            assert_eq!(d.len(), t.byte_size);
        }
        if let Some(s) = model.sparse(i) {
            let (r, c) = s.block();
            assert_eq!(s.row_ptr.len(), s.rows.div_ceil(r) + 1);
            assert_eq!(
                s.values.len(),
                s.col_idx.len() * r * c * t.dtype.size_bytes()
            );
        }
    }
    for op in model.operators() {
        assert!(op.inputs.iter().flatten().all(|&i| i < n));
        assert!(op.outputs.iter().all(|&i| i < n));
    }
    let def = model.to_def();
    assert_eq!(
        Model::from_def(&def)
            .expect("rewrite of an accepted model")
            .to_def(),
        def
    );
}

#[test]
fn every_truncation_is_refused() {
    let bytes = tiny_bytes();
    Model::from_bytes(&bytes).expect("the untruncated model opens");
    for len in 0..bytes.len() {
        let r = catch_unwind(AssertUnwindSafe(|| Model::from_bytes(&bytes[..len])));
        match r {
            Err(_) => panic!("truncation to {len} bytes panicked"),
            Ok(Ok(_)) => panic!("truncation to {len} of {} bytes was accepted", bytes.len()),
            Ok(Err(_)) => {}
        }
    }
}

/// xorshift64*: a tiny deterministic PRNG for the byte-flip test.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_byte_flips_never_panic() {
    let bytes = tiny_bytes();
    let mut rng = Rng(0x5ba4_c0de_1234_5678);
    let (mut refused, mut accepted) = (0, 0);
    const CASES: usize = 12_000;
    for case in 0..CASES {
        let mut b = bytes.clone();
        let flips = 1 + rng.below(4);
        // Half the cases hit the FlatBuffer part (structure), half anywhere.
        let fb_len = b.len().min(1600);
        for _ in 0..flips {
            let at = if case % 2 == 0 {
                rng.below(fb_len)
            } else {
                rng.below(b.len())
            };
            b[at] = rng.next() as u8;
        }
        match catch_unwind(AssertUnwindSafe(|| Model::from_bytes(&b))) {
            Err(_) => panic!("case {case}: from_bytes panicked"),
            Ok(Err(e)) => {
                let msg = e.to_string();
                assert!(
                    !msg.contains('\n'),
                    "case {case}: a multi-line error: {msg:?}"
                );
                refused += 1
            }
            Ok(Ok(m)) => {
                accepted += 1;
                if catch_unwind(AssertUnwindSafe(|| check_opened(&m))).is_err() {
                    panic!("case {case}: an accepted model broke an invariant");
                }
            }
        }
    }
    assert_eq!(refused + accepted, CASES);
    // Flips inside weight values are legitimately accepted; most structural ones are not.
    assert!(
        refused > CASES / 4,
        "only {refused} of {CASES} flipped models refused"
    );
}

#[test]
fn not_a_sparq_file() {
    refused(b"", &["not a .sparq file", "0 bytes"]);
    let mut b = tiny_bytes();
    b[4..8].copy_from_slice(b"TFL3");
    refused(&b, &["not a .sparq file", "TFL3", "SPRQ"]);
}

#[test]
fn empty_file_on_disk() {
    let path = std::env::temp_dir().join(format!("sparq-empty-{}.sparq", std::process::id()));
    std::fs::write(&path, b"").unwrap();
    let e = Model::open(&path).unwrap_err();
    std::fs::remove_file(&path).ok();
    assert!(e.to_string().contains("empty"), "{e}");
    let e = Model::open("/nonexistent/model.sparq").unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
}

// ---- indices -------------------------------------------------------------------------------

#[test]
fn out_of_range_indices() {
    let mut m = examples::tiny();
    m.operators[1].inputs[1] = 999;
    refused_def(
        &m,
        &[
            "operator 1 (Conv2d)",
            "inputs[1] = 999",
            "not a tensor index",
        ],
    );

    let mut m = examples::tiny();
    m.operators[0].outputs[0] = m.tensors.len() as i32;
    refused_def(
        &m,
        &["operator 0 (Quantize)", "outputs[0]", "not a tensor index"],
    );

    let mut m = examples::tiny();
    m.operators[0].inputs[0] = -7;
    refused_def(&m, &["operator 0 (Quantize)", "inputs[0] = -7"]);

    let mut m = examples::tiny();
    m.inputs = vec![500];
    refused_def(&m, &["graph inputs[0] = 500"]);

    let mut m = examples::tiny();
    m.outputs.push(u32::MAX);
    refused_def(&m, &["graph outputs[1]", "not a tensor index"]);
}

#[test]
fn minus_one_where_a_tensor_is_required() {
    let mut m = examples::tiny();
    m.operators[1].inputs[0] = -1; // the conv's data input
    refused_def(&m, &["operator 1 (Conv2d)", "inputs[0] = -1", "required"]);
    let mut m = examples::tiny();
    m.operators[0].outputs[0] = -1;
    refused_def(&m, &["operator 0 (Quantize)", "outputs[0] = -1"]);
    // The absent FC bias (-1 at input 2) is fine: that is the tiny model itself.
    Model::from_def(&examples::tiny()).unwrap();
}

// ---- shapes and sizes ----------------------------------------------------------------------

#[test]
fn huge_and_negative_shapes() {
    for shape in [
        vec![i32::MAX, i32::MAX],
        vec![1 << 20, 1 << 20],
        vec![65536, 65536, 2],
    ] {
        let mut m = examples::tiny();
        let i = index_of(&m, "conv_f32");
        m.tensors[i].shape = shape.clone();
        refused_def(&m, &["tensor 5 \"conv_f32\"", "elements"]);
    }
    let mut m = examples::tiny();
    m.tensors[0].shape = vec![1, -1, 4, 3];
    refused_def(&m, &["tensor 0 \"input\"", "shape[1] = -1 is negative"]);
    let mut m = examples::tiny();
    m.tensors[0].shape = vec![1; 17];
    refused_def(&m, &["tensor 0 \"input\"", "rank 17"]);
    // An activation under the element cap but over the byte cap.
    let mut m = examples::tiny();
    m.tensors[0].shape = vec![1 << 30];
    refused_def(
        &m,
        &["tensor 0 \"input\"", "activation of 4294967296 bytes"],
    );
}

#[test]
fn constant_data_of_the_wrong_size() {
    let mut m = examples::tiny();
    let i = index_of(&m, "conv/bias");
    m.tensors[i].data.as_mut().unwrap().pop();
    refused_def(
        &m,
        &["tensor 3 \"conv/bias\"", "holds 15 bytes", "needs 16"],
    );
}

// ---- buffers -------------------------------------------------------------------------------

/// Byte position in `bytes` of the `data` Buffer struct of tensor `t`.
fn data_buffer_pos(bytes: &[u8], t: usize) -> usize {
    let root = fb::root_as_model(bytes).unwrap();
    let b = root.tensors().unwrap().get(t).data().unwrap();
    (b as *const fb::Buffer as usize) - bytes.as_ptr() as usize
}

fn patch_buffer(bytes: &mut [u8], t: usize, offset: u64, length: u64) {
    let pos = data_buffer_pos(bytes, t);
    bytes[pos..pos + 8].copy_from_slice(&offset.to_le_bytes());
    bytes[pos + 8..pos + 16].copy_from_slice(&length.to_le_bytes());
}

#[test]
fn buffers_out_of_file_overflowing_or_misaligned() {
    let m = examples::tiny();
    let t = index_of(&m, "conv/bias");
    let bytes = tiny_bytes();
    let root = fb::root_as_model(&bytes).unwrap();
    let b = *root.tensors().unwrap().get(t).data().unwrap();
    let len = bytes.len() as u64;

    let mut x = bytes.clone();
    patch_buffer(&mut x, t, u64::MAX - 7, 16);
    refused(&x, &["tensor 3 \"conv/bias\"", "overflows u64"]);

    let mut x = bytes.clone();
    patch_buffer(&mut x, t, 1 << 63, 1 << 63);
    refused(&x, &["tensor 3 \"conv/bias\"", "overflows u64"]);

    let mut x = bytes.clone();
    let past = len.div_ceil(64) * 64;
    patch_buffer(&mut x, t, past, 16);
    refused(
        &x,
        &[
            "tensor 3 \"conv/bias\"",
            &format!(
                "data buffer [offset {past}, len 16] ends past the end of the file ({len} bytes)"
            ),
        ],
    );

    let mut x = bytes.clone();
    patch_buffer(&mut x, t, b.offset() + 4, 16);
    refused(&x, &["tensor 3 \"conv/bias\"", "not aligned to 64 bytes"]);

    let mut x = bytes.clone();
    patch_buffer(&mut x, t, b.offset(), 1 << 40);
    refused(
        &x,
        &["tensor 3 \"conv/bias\"", "ends past the end of the file"],
    );

    // Sanity: the unpatched offsets open.
    let mut x = bytes.clone();
    patch_buffer(&mut x, t, b.offset(), b.length());
    Model::from_bytes(&x).unwrap();
}

#[test]
fn dense_and_sparse_both_present() {
    let mut m = examples::tiny();
    let i = index_of(&m, "conv/weights");
    m.tensors[i].data = Some(vec![0; 108]);
    refused_def(
        &m,
        &[
            "tensor 2 \"conv/weights\"",
            "both dense data and a sparse encoding",
        ],
    );
}

// ---- quantization --------------------------------------------------------------------------

#[test]
fn inconsistent_quantization() {
    let cases: Vec<(&str, Option<Quantization>, DType, &str)> = vec![
        (
            "conv/bias",
            Some(Quantization::per_axis(vec![0.1, 0.0, 0.1, 0.1], 0)),
            DType::I32,
            "scales[1] = 0",
        ),
        (
            "conv/bias",
            Some(Quantization::per_axis(vec![0.1, f32::NAN, 0.1, 0.1], 0)),
            DType::I32,
            "scales[1] = NaN",
        ),
        (
            "conv/bias",
            Some(Quantization::per_axis(
                vec![0.1, 0.1, f32::INFINITY, 0.1],
                0,
            )),
            DType::I32,
            "scales[2] = inf",
        ),
        (
            "conv/bias",
            Some(Quantization::per_axis(vec![-0.1, 0.1, 0.1, 0.1], 0)),
            DType::I32,
            "scales[0] = -0.1",
        ),
        (
            "conv/bias",
            Some(Quantization::per_axis(vec![0.1; 3], 0)),
            DType::I32,
            "3 scales, expected 4",
        ),
        (
            "conv/bias",
            Some(Quantization::per_axis(vec![0.1; 4], 1)),
            DType::I32,
            "axis 1 is out of range",
        ),
        (
            "conv/bias",
            Some(Quantization {
                scales: vec![0.1, 0.1],
                zero_points: vec![0, 0],
                axis: None,
            }),
            DType::I32,
            "per-tensor quantization has 2 scales",
        ),
        (
            "conv/bias",
            Some(Quantization {
                scales: vec![0.1],
                zero_points: vec![],
                axis: None,
            }),
            DType::I32,
            "1 scales but 0 zero points",
        ),
        (
            "conv/bias",
            Some(Quantization {
                scales: vec![],
                zero_points: vec![],
                axis: None,
            }),
            DType::I32,
            "no scales",
        ),
        (
            "conv",
            Some(Quantization::per_tensor(0.1, 128)),
            DType::I8,
            "zero_points[0] = 128 is outside the i8 range [-128, 127]",
        ),
        (
            "output",
            Some(Quantization::per_tensor(0.1, -1)),
            DType::U8,
            "zero_points[0] = -1 is outside the u8 range [0, 255]",
        ),
        (
            "conv/bias",
            Some(Quantization::per_tensor(0.1, 1 << 40)),
            DType::I32,
            "outside the i32 range",
        ),
        (
            "logits",
            Some(Quantization::per_tensor(0.1, 0)),
            DType::F32,
            "f32 tensor has quantization parameters",
        ),
    ];
    for (name, quant, dtype, needle) in cases {
        let mut m = examples::tiny();
        let i = index_of(&m, name);
        assert_eq!(m.tensors[i].dtype, dtype);
        if name == "conv/bias" && quant.as_ref().is_some_and(|q| q.axis.is_none()) {
            m.tensors[i].shape = vec![4];
        }
        m.tensors[i].quant = quant;
        refused_def(&m, &[&format!("tensor {i} \"{name}\""), needle]);
    }
}

// ---- sparse structure ----------------------------------------------------------------------

/// The tiny model with its CSR conv weight (4 rows x 27 cols) replaced.
fn with_csr(edit: impl FnOnce(&mut SparseDef)) -> ModelDef {
    let mut m = examples::tiny();
    let i = index_of(&m, "conv/weights");
    edit(m.tensors[i].sparse.as_mut().unwrap());
    m
}

#[test]
fn bad_sparse_structure() {
    let w = "tensor 2 \"conv/weights\"";
    refused_def(
        &with_csr(|s| s.col_idx.swap(0, 1)),
        &[w, "not strictly increasing", "row 0"],
    );
    refused_def(
        &with_csr(|s| s.col_idx[1] = s.col_idx[0]),
        &[w, "not strictly increasing"],
    );
    refused_def(
        &with_csr(|s| s.col_idx[3] = 27),
        &[w, "col_idx[3] = 27", "out of range (27 columns)"],
    );
    refused_def(&with_csr(|s| s.col_idx[3] = u32::MAX), &[w, "out of range"]);
    refused_def(
        &with_csr(|s| s.row_ptr[2] = s.row_ptr[1] - 1),
        &[w, "row_ptr decreases"],
    );
    refused_def(
        &with_csr(|s| s.row_ptr[2] = 10_000),
        &[w, "row_ptr", "overruns col_idx"],
    );
    refused_def(
        &with_csr(|s| s.row_ptr[0] = 1),
        &[w, "row_ptr[0] = 1, expected 0"],
    );
    refused_def(
        &with_csr(|s| {
            s.row_ptr[4] -= 1;
        }),
        &[w, "row_ptr[4]", "expected 54"],
    );
    refused_def(
        &with_csr(|s| s.row_ptr.push(54)),
        &[w, "row_ptr holds 24 bytes, expected 20"],
    );
    refused_def(
        &with_csr(|s| s.row_ptr.truncate(2)),
        &[w, "row_ptr holds 8 bytes"],
    );
    refused_def(
        &with_csr(|s| s.values.pop().map(|_| ()).unwrap()),
        &[w, "values hold 53 bytes, expected 54"],
    );
    refused_def(
        &with_csr(|s| {
            s.format = SparseFormat::Bsr {
                block_rows: 0,
                block_cols: 4,
            }
        }),
        &[w, "block shape 0x4"],
    );
    refused_def(
        &with_csr(|s| {
            s.format = SparseFormat::Bsr {
                block_rows: 1,
                block_cols: 100,
            }
        }),
        &[w, "block shape 1x100"],
    );
    // BSR: block columns counted in blocks.
    let mut m = examples::tiny();
    let i = index_of(&m, "fc/weights");
    m.tensors[i].sparse.as_mut().unwrap().col_idx[0] = 16; // 64 cols / 4 = 16 block columns
    refused_def(
        &m,
        &[
            "tensor 8 \"fc/weights\"",
            "= 16 (in block row 0) is out of range (16 block columns)",
        ],
    );
    // A sparse scalar has no matrix view.
    let mut m = examples::tiny();
    let i = index_of(&m, "conv/weights");
    m.tensors[i].shape = vec![];
    m.tensors[i].quant = None;
    refused_def(&m, &[w, "rank >= 1"]);
}

// ---- graph ---------------------------------------------------------------------------------

fn chain() -> ModelDef {
    // x -> Relu -> a -> Relu -> b
    let mut m = ModelDef::default();
    let x = m.add_tensor(TensorDef::activation("x", vec![4], DType::F32)) as i32;
    let a = m.add_tensor(TensorDef::activation("a", vec![4], DType::F32)) as i32;
    let b = m.add_tensor(TensorDef::activation("b", vec![4], DType::F32)) as i32;
    m.add_op(OpKind::Relu, OpOptions::None, &[x], &[a]);
    m.add_op(OpKind::Relu, OpOptions::None, &[a], &[b]);
    m.inputs = vec![0];
    m.outputs = vec![2];
    m
}

#[test]
fn cycles_and_order() {
    Model::from_def(&chain()).unwrap();
    // A cycle: a -> Relu -> b -> Relu -> a.
    let mut m = chain();
    m.operators[0].inputs = vec![2];
    refused_def(
        &m,
        &[
            "operator 0 (Relu)",
            "tensor 2 \"b\"",
            "written by operator 1",
            "topological",
        ],
    );
    // Not in topological order.
    let mut m = chain();
    m.operators.swap(0, 1);
    refused_def(&m, &["operator 0 (Relu)", "written by operator 1"]);
    // A tensor both input and output of one op (a self-loop).
    let mut m = chain();
    m.operators[1].inputs = vec![2];
    refused_def(
        &m,
        &[
            "operator 1 (Relu)",
            "tensor 2 \"b\" is both an input and an output",
        ],
    );
}

#[test]
fn writes_and_reads_that_make_no_sense() {
    let mut m = chain();
    m.add_op(OpKind::Relu, OpOptions::None, &[0], &[1]);
    refused_def(
        &m,
        &[
            "operator 2 (Relu)",
            "writes tensor 1 \"a\"",
            "operator 0 (Relu) writes it too",
        ],
    );
    let mut m = chain();
    m.operators[0].outputs = vec![0, 1];
    refused_def(&m, &["operator 0 (Relu)", "both an input and an output"]);
    let mut m = chain();
    m.add_op(OpKind::Relu, OpOptions::None, &[1], &[0]);
    refused_def(
        &m,
        &["operator 2 (Relu)", "writes tensor 0 \"x\"", "graph input"],
    );
    let mut m = chain();
    m.inputs = vec![];
    refused_def(
        &m,
        &[
            "operator 0 (Relu)",
            "tensor 0 \"x\"",
            "neither a constant, a graph input nor written",
        ],
    );
    let mut m = chain();
    m.tensors[1].data = Some(vec![0; 16]);
    refused_def(
        &m,
        &[
            "operator 0 (Relu)",
            "outputs[0] is tensor 1 \"a\", a constant",
        ],
    );
    let mut m = chain();
    m.tensors[0].data = Some(vec![0; 16]);
    refused_def(&m, &["graph input tensor 0 \"x\" is a constant"]);
    let mut m = chain();
    m.outputs = vec![2, 2];
    refused_def(&m, &["graph outputs[1] repeats tensor 2"]);
    let mut m = chain();
    m.operators.pop();
    refused_def(
        &m,
        &["graph outputs[0] is tensor 2 \"b\", which no operator writes"],
    );
    let mut m = chain();
    m.operators[0].outputs.clear();
    refused_def(&m, &["operator 0 (Relu)", "no outputs"]);
}

// ---- operators -----------------------------------------------------------------------------

#[test]
fn options_that_do_not_fit_the_op() {
    let mut m = examples::tiny();
    m.operators[1].options = OpOptions::Pool2d {
        padding: sparq::Padding::Same,
        stride_h: 1,
        stride_w: 1,
        filter_h: 2,
        filter_w: 2,
        activation: sparq::Activation::None,
    };
    refused_def(
        &m,
        &["operator 1 (Conv2d)", "options Pool2d, expected Conv2d"],
    );
    let mut m = examples::tiny();
    m.operators[1].options = OpOptions::None;
    refused_def(
        &m,
        &["operator 1 (Conv2d)", "options None, expected Conv2d"],
    );
    let mut m = examples::tiny();
    m.operators[0].options = OpOptions::Softmax { beta: 1.0 };
    refused_def(
        &m,
        &["operator 0 (Quantize)", "options Softmax, expected None"],
    );
    let mut m = examples::tiny();
    if let OpOptions::Conv2d { stride_w, .. } = &mut m.operators[1].options {
        *stride_w = 0;
    }
    refused_def(&m, &["operator 1 (Conv2d)", "stride_w = 0, expected >= 1"]);
    let mut m = chain();
    m.operators[0].kind = OpKind::Softmax;
    m.operators[0].options = OpOptions::Softmax { beta: f32::NAN };
    refused_def(&m, &["operator 0 (Softmax)", "beta = NaN is not finite"]);
}

// ---- raw FlatBuffers: unknown enum values, versions ----------------------------------------

/// A one-tensor, one-op model built with the raw FlatBuffers API, so enum values the owned types
/// cannot express can be written.
fn raw(
    dtype: fb::DType,
    kind: fb::OpKind,
    version: Option<(u16, u16)>,
    format: fb::SparseFormat,
) -> Vec<u8> {
    let mut fbb = flatbuffers::FlatBufferBuilder::new();
    let name = fbb.create_string("t");
    let shape = fbb.create_vector(&[2i32, 2]);
    let row = fb::Buffer::new(0, 0);
    let sparse = (format != fb::SparseFormat::Csr).then(|| {
        fb::Sparse::create(
            &mut fbb,
            &fb::SparseArgs {
                format,
                block_rows: 1,
                block_cols: 1,
                row_ptr: Some(&row),
                col_idx: Some(&row),
                values: Some(&row),
            },
        )
    });
    let t = fb::Tensor::create(
        &mut fbb,
        &fb::TensorArgs {
            name: Some(name),
            shape: Some(shape),
            dtype,
            quantization: None,
            data: None,
            sparse,
        },
    );
    let name2 = fbb.create_string("u");
    let shape2 = fbb.create_vector(&[2i32, 2]);
    let u = fb::Tensor::create(
        &mut fbb,
        &fb::TensorArgs {
            name: Some(name2),
            shape: Some(shape2),
            dtype: fb::DType::F32,
            ..Default::default()
        },
    );
    let tensors = fbb.create_vector(&[t, u]);
    let ins = fbb.create_vector(&[0i32]);
    let outs = fbb.create_vector(&[1i32]);
    let op = fb::Operator::create(
        &mut fbb,
        &fb::OperatorArgs {
            kind,
            options_type: fb::OpOptions::NONE,
            options: None,
            inputs: Some(ins),
            outputs: Some(outs),
        },
    );
    let ops = fbb.create_vector(&[op]);
    let gin = fbb.create_vector(&[0i32]);
    let gout = fbb.create_vector(&[1i32]);
    let v = version.map(|(a, b)| fb::Version::new(a, b));
    let root = fb::Model::create(
        &mut fbb,
        &fb::ModelArgs {
            version: v.as_ref(),
            tensors: Some(tensors),
            operators: Some(ops),
            inputs: Some(gin),
            outputs: Some(gout),
            metadata: None,
        },
    );
    fb::finish_model_buffer(&mut fbb, root);
    fbb.finished_data().to_vec()
}

#[test]
fn unknown_enum_values_and_versions() {
    let ok = raw(
        fb::DType::F32,
        fb::OpKind::Relu,
        Some((1, 0)),
        fb::SparseFormat::Csr,
    );
    Model::from_bytes(&ok).unwrap();
    // A newer minor version is read.
    Model::from_bytes(&raw(
        fb::DType::F32,
        fb::OpKind::Relu,
        Some((1, 7)),
        fb::SparseFormat::Csr,
    ))
    .unwrap();
    refused(
        &raw(
            fb::DType(9),
            fb::OpKind::Relu,
            Some((1, 0)),
            fb::SparseFormat::Csr,
        ),
        &["tensor 0 \"t\"", "unknown dtype value 9"],
    );
    refused(
        &raw(
            fb::DType::F32,
            fb::OpKind(999),
            Some((1, 0)),
            fb::SparseFormat::Csr,
        ),
        &["operator 0 (kind 999)", "unknown operator kind"],
    );
    refused(
        &raw(
            fb::DType::F32,
            fb::OpKind::Relu,
            Some((2, 0)),
            fb::SparseFormat::Csr,
        ),
        &["format version 2.0 is not supported", "reads 1.x"],
    );
    refused(
        &raw(
            fb::DType::F32,
            fb::OpKind::Relu,
            None,
            fb::SparseFormat::Csr,
        ),
        &["format version is missing"],
    );
    refused(
        &raw(
            fb::DType::F32,
            fb::OpKind::Relu,
            Some((1, 0)),
            fb::SparseFormat(7),
        ),
        &["tensor 0 \"t\"", "unknown sparse format value 7"],
    );
}

#[test]
fn metadata_sparsity_out_of_range() {
    for bad in [f32::NAN, -0.5, 1.5, f32::INFINITY] {
        let mut m = examples::tiny();
        m.metadata.layer_sparsity[1].1 = bad;
        refused_def(
            &m,
            &["metadata layer_sparsity[1] (\"fc\")", "is not in [0, 1]"],
        );
    }
}

/// Wide operators and graph lists are checked in linear time (a quadratic duplicate check would
/// make this take minutes: 50,000 inputs x 50,000 outputs).
#[test]
fn wide_operator_opens_quickly() {
    const N: usize = 50_000;
    let mut m = ModelDef::default();
    let x = m.add_tensor(TensorDef::activation("x", vec![1], DType::F32));
    let outs: Vec<i32> = (0..N)
        .map(|k| m.add_tensor(TensorDef::activation(format!("y{k}"), vec![1], DType::F32)) as i32)
        .collect();
    m.add_op(
        OpKind::Unpack,
        OpOptions::Pack {
            axis: 0,
            values_count: N as i32,
        },
        &vec![x as i32; N],
        &outs,
    );
    m.inputs = vec![x];
    m.outputs = outs.iter().map(|&o| o as u32).collect();
    let model = Model::from_def(&m).unwrap();
    assert_eq!(model.operators()[0].outputs.len(), N);
    // The same op with its last output also among its inputs is refused.
    m.operators[0].inputs[N - 1] = outs[N - 1];
    refused_def(
        &m,
        &[
            "operator 0 (Unpack)",
            &format!("tensor {N} \"y{}\" is both", N - 1),
        ],
    );
}

#[test]
fn sparse_weight_with_a_huge_dense_shape() {
    // Two row pointers and no entries describe a [1, 2^30] f32 matrix: 4 GiB if expanded.
    let mut m = examples::tiny();
    let i = index_of(&m, "fc/weights");
    m.tensors[i].shape = vec![1, 1 << 30];
    m.tensors[i].sparse = Some(SparseDef {
        format: SparseFormat::Csr,
        row_ptr: vec![0, 0],
        col_idx: vec![],
        values: vec![],
    });
    refused_def(
        &m,
        &[
            "tensor 8 \"fc/weights\"",
            "sparse weight's dense size of 4294967296 bytes",
        ],
    );
}

/// The committed fuzz seeds (fuzz/seeds/from_bytes: inputs the fuzzer found useful) never make
/// `from_bytes` panic, and the ones that open keep every invariant.
#[test]
fn fuzz_seeds_never_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/from_bytes");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        match catch_unwind(AssertUnwindSafe(|| Model::from_bytes(&bytes))) {
            Err(_) => panic!("{}: from_bytes panicked", path.display()),
            Ok(Ok(m)) => check_opened(&m),
            Ok(Err(e)) => assert!(!e.to_string().contains('\n'), "{}: {e}", path.display()),
        }
        n += 1;
    }
    assert!(n >= 10, "only {n} seeds in {}", dir.display());
}
