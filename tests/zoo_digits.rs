//! The digits models of the zoo (committed under tests/fixtures/): imported from `.tflite`, run,
//! and compared with LiteRT's reference kernels — float models within 1e-4 of the output's
//! scale, and the same accuracy on the whole test split.

use std::path::{Path, PathBuf};

use sparq::npy::NpyArray;
use sparq::{Interpreter, Model, Options};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn load(name: &str) -> Model {
    let path = fixtures().join("tflite").join(format!("{name}.tflite"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let def =
        sparq::convert::import_tflite(&bytes).unwrap_or_else(|e| panic!("{name}: import: {e}"));
    Model::from_def(&def).unwrap_or_else(|e| panic!("{name}: model: {e}"))
}

fn io(name: &str, file: &str) -> NpyArray {
    NpyArray::read(fixtures().join("io").join(name).join(file)).unwrap()
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Float models: output within 1e-4 of the output's scale on the reference input, and on every
/// test sample; accuracy equal to LiteRT's.
fn check_float(name: &str) {
    let model = load(name);
    let mut it = Interpreter::new(&model, Options::default())
        .unwrap_or_else(|e| panic!("{name}: prepare: {e}"));
    let x = io(name, "input.npy").to_f32();
    it.set_input(0, &x).unwrap();
    it.invoke().unwrap();
    let want = io(name, "out_ref.npy").to_f32();
    let got = it.output::<f32>(0).unwrap();
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-4 * scale,
            "{name}: element {i}: got {g}, LiteRT {w}"
        );
    }
    // The whole test split.
    let xs = NpyArray::read(fixtures().join("digits_test_x.npy")).unwrap();
    let ys = NpyArray::read(fixtures().join("digits_test_y.npy"))
        .unwrap()
        .to_f32();
    let refs = io(name, "test_out_ref.npy").to_f32();
    let xs = xs.to_f32();
    let per = x.len();
    let classes = want.len();
    let (mut ours, mut theirs) = (0, 0);
    for s in 0..ys.len() {
        it.set_input(0, &xs[s * per..(s + 1) * per]).unwrap();
        it.invoke().unwrap();
        let got = it.output::<f32>(0).unwrap();
        let r = &refs[s * classes..(s + 1) * classes];
        let scale = r.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (i, (g, w)) in got.iter().zip(r).enumerate() {
            assert!(
                (g - w).abs() <= 1e-4 * scale,
                "{name}: sample {s} element {i}: got {g}, LiteRT {w}"
            );
        }
        ours += (argmax(got) == ys[s] as usize) as usize;
        theirs += (argmax(r) == ys[s] as usize) as usize;
    }
    assert_eq!(
        ours,
        theirs,
        "{name}: accuracy {ours}/{} vs LiteRT {theirs}",
        ys.len()
    );
}

const FLOAT_MODELS: &[&str] = &[
    "digits_mlp_float32",
    "digits_mlp_fp16",
    "digits_mlp_p50_float32",
    "digits_mlp_p50_float32_sparse",
    "digits_mlp_p90_float32",
    "digits_mlp_p90_float32_sparse",
    "digits_mlp_block80_1x4_float32",
    "digits_mlp_block80_1x4_float32_sparse",
    "digits_mlp_block80_4x1_float32",
    "digits_mlp_block80_4x1_float32_sparse",
    "digits_cnn_float32",
    "digits_cnn_fp16",
    "digits_cnn_p50_float32",
    "digits_cnn_p50_float32_sparse",
    "digits_cnn_p90_float32",
    "digits_cnn_p90_float32_sparse",
    "digits_cnn_block80_1x4_float32",
    "digits_cnn_block80_1x4_float32_sparse",
    "digits_cnn_block80_4x1_float32",
    "digits_cnn_block80_4x1_float32_sparse",
    "digits_cnn_poly80_float32",
    "digits_cnn_poly80_float32_sparse",
];

#[test]
fn float_models_match_litert() {
    for name in FLOAT_MODELS {
        check_float(name);
    }
}
