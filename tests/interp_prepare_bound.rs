//! Prepare allocates within `Options::max_prepare_bytes`: a tiny model whose sparse weights
//! describe a huge matrix fails with an error naming the operator and tensor, before packing.

use sparq::{Error, Interpreter, Model, Options, DEFAULT_MAX_PREPARE_BYTES};
use sparq_schema::{
    Activation, DType, ModelDef, OpDef, OpKind, OpOptions, Padding, Quantization, SparseDef,
    SparseFormat, TensorDef,
};

fn tensor(name: &str, shape: &[i32], dtype: DType, quant: Option<Quantization>) -> TensorDef {
    TensorDef {
        name: name.into(),
        shape: shape.to_vec(),
        dtype,
        quant,
        data: None,
        sparse: None,
    }
}

/// A CONV_2D whose weight [4, kh, 3, 3] is an all-zero CSR matrix (a few bytes in the file),
/// over a [1, 1, 3, 3] input with SAME padding.
fn tall_window_conv(kh: i32, dtype: DType) -> ModelDef {
    let q = |s: f32| (dtype == DType::I8).then(|| Quantization::per_tensor(s, 0));
    let mut w = tensor("w", &[4, kh, 3, 3], dtype, q(0.02));
    w.sparse = Some(SparseDef {
        format: SparseFormat::Csr,
        row_ptr: vec![0; 5],
        col_idx: Vec::new(),
        values: Vec::new(),
    });
    ModelDef {
        tensors: vec![
            tensor("x", &[1, 1, 3, 3], dtype, q(0.5)),
            w,
            tensor("y", &[1, 1, 3, 4], dtype, q(0.25)),
        ],
        operators: vec![OpDef {
            kind: OpKind::Conv2d,
            options: OpOptions::Conv2d {
                padding: Padding::Same,
                stride_h: 1,
                stride_w: 1,
                dilation_h: 1,
                dilation_w: 1,
                activation: Activation::None,
            },
            inputs: vec![0, 1],
            outputs: vec![2],
        }],
        inputs: vec![0],
        outputs: vec![2],
        metadata: Default::default(),
    }
}

fn model(def: &ModelDef) -> Model {
    Model::from_def(def).expect("the model itself is valid")
}

#[test]
fn huge_sparse_conv_weight_is_refused_before_packing() {
    assert_eq!(
        Options::default().max_prepare_bytes,
        DEFAULT_MAX_PREPARE_BYTES
    );
    for dtype in [DType::I8, DType::F32] {
        let def = tall_window_conv(11_993_091, dtype);
        let m = model(&def);
        let err = Interpreter::new(&m, Options::default()).expect_err("must not prepare");
        let text = err.to_string();
        // int8: the densified weight (432 MB, never touched) fits, its packing does not;
        // f32: the densified weight itself (1.7 GB) is refused.
        let named = match dtype {
            DType::I8 => {
                matches!(err, Error::InvalidOperator { index: 0, .. }) && text.contains("Conv2d")
            }
            _ => matches!(err, Error::InvalidTensor { index: 1, .. }),
        };
        assert!(
            named && text.contains("\"w\"") && text.contains("max_prepare_bytes"),
            "{dtype}: {text}"
        );
    }
}

#[test]
fn small_bound_refuses_densifying_and_the_arena() {
    let def = tall_window_conv(5, DType::I8);
    let m = model(&def);
    Interpreter::new(&m, Options::default()).expect("a small conv prepares");
    // The densified weight (4 × 45 bytes) does not fit in 100 bytes.
    let err = Interpreter::new(
        &m,
        Options {
            max_prepare_bytes: 100,
            ..Options::default()
        },
    )
    .expect_err("over the bound");
    let text = err.to_string();
    assert!(
        matches!(err, Error::InvalidTensor { index: 1, .. }) && text.contains("max_prepare_bytes"),
        "{text}"
    );
    // Enough for the weight and its packing, not for the arena.
    let err = Interpreter::new(
        &m,
        Options {
            max_prepare_bytes: 4 * 45 + 64 * 48 + 64 * 8,
            ..Options::default()
        },
    )
    .expect_err("over the bound");
    assert!(err.to_string().contains("arena"), "{err}");
}

#[test]
fn folding_a_constant_operator_is_within_the_bound() {
    let mut def = tall_window_conv(5, DType::I8);
    def.tensors[0].data = Some(vec![3; 9]);
    def.inputs.clear();
    let m = model(&def);
    Interpreter::new(&m, Options::default()).expect("a small folded conv prepares");
    // The weight (4 × 45 bytes) and its packing fit; the folded output and its scratch do not.
    let err = Interpreter::new(
        &m,
        Options {
            max_prepare_bytes: 4 * 45 + 64 * 48 + 64 * 8 + 100,
            ..Options::default()
        },
    )
    .expect_err("over the bound");
    let text = err.to_string();
    assert!(
        matches!(err, Error::InvalidOperator { index: 0, .. }) && text.contains("folding"),
        "{text}"
    );
}
