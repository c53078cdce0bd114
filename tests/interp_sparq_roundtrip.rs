//! `.tflite` → `.sparq` → run gives the same outputs as running the `.tflite` directly, and a
//! `.sparq` made from a float16 model keeps its weights as f16 (about half the float32 file).

use std::path::Path;

use sparq::npy::NpyArray;
use sparq::{Interpreter, Model, Options};

fn fixture(p: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(p)
}

fn outputs(model: &Model, input: &[u8]) -> Vec<u8> {
    let mut it = Interpreter::new(model, Options::default()).unwrap();
    it.set_input_bytes(0, input).unwrap();
    it.invoke().unwrap();
    it.output_bytes(0).unwrap().to_vec()
}

#[test]
fn sparq_file_runs_like_the_tflite() {
    for name in [
        "digits_cnn_float32",
        "digits_cnn_fp16",
        "digits_cnn_int8",
        "digits_cnn_dynamic",
        "digits_cnn_legacy_uint8",
        "digits_cnn_p90_float32_sparse",
        "digits_mlp_block80_4x1_int8_sparse",
    ] {
        let tflite = std::fs::read(fixture(&format!("tflite/{name}.tflite"))).unwrap();
        let def = sparq::convert::import_tflite(&tflite).unwrap();
        let direct = Model::from_def(&def).unwrap();
        let bytes = sparq_schema::write(&def).unwrap();
        let from_file = Model::from_bytes(&bytes).unwrap();
        let input = NpyArray::read(fixture(&format!("io/{name}/input.npy"))).unwrap();
        assert_eq!(
            outputs(&direct, &input.data),
            outputs(&from_file, &input.data),
            "{name}"
        );
    }
}

#[test]
fn float16_sparq_keeps_f16_weights() {
    let size = |name: &str| {
        let tflite = std::fs::read(fixture(&format!("tflite/{name}.tflite"))).unwrap();
        let def = sparq::convert::import_tflite(&tflite).unwrap();
        let model = Model::from_bytes(&sparq_schema::write(&def).unwrap()).unwrap();
        (
            model.weight_bytes(),
            model.tensors().iter().any(|t| t.dtype == sparq::DType::F16),
        )
    };
    let (f32_bytes, _) = size("digits_cnn_float32");
    let (f16_bytes, has_f16) = size("digits_cnn_fp16");
    assert!(has_f16, "the float16 model lost its f16 tensors");
    assert!(
        f16_bytes * 10 <= f32_bytes * 6,
        "f16 weights {f16_bytes} B vs f32 {f32_bytes} B"
    );
}
