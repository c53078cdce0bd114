//! The full zoo (MobileNets and the rest), when present: `SPARQ_ZOO`, or `../shared/zoo` next to
//! the workspace. Imported from `.tflite`, run, and compared with LiteRT's reference kernels.
//! Skipped with a message when the zoo is absent (CI proves the same paths on the committed
//! digits fixtures).

use std::path::PathBuf;

use sparq::npy::NpyArray;
use sparq::{Interpreter, Model, Options};

fn zoo() -> Option<PathBuf> {
    let p = match std::env::var_os("SPARQ_ZOO") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/zoo"),
    };
    p.join("manifest.json").exists().then_some(p)
}

fn load(zoo: &std::path::Path, name: &str) -> Model {
    let path = zoo.join("models").join(format!("{name}.tflite"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let def =
        sparq::convert::import_tflite(&bytes).unwrap_or_else(|e| panic!("{name}: import: {e}"));
    Model::from_def(&def).unwrap_or_else(|e| panic!("{name}: model: {e}"))
}

const FLOAT_MODELS: &[&str] = &[
    "mobilenet_v2_1.0_224_float32",
    "mobilenet_v2_1.0_224_fp16",
    "mobilenet_v2_0.35_224_float32",
    "mobilenet_v2_0.35_224_fp16",
    "mobilenet_v3_small_1.0_224_float32",
    "mobilenet_v3_small_1.0_224_fp16",
];

#[test]
fn float_mobilenets_match_litert() {
    let Some(zoo) = zoo() else {
        eprintln!("skipped: zoo not found (set SPARQ_ZOO)");
        return;
    };
    for name in FLOAT_MODELS {
        let model = load(&zoo, name);
        let io = zoo.join("io").join(name);
        let x = NpyArray::read(io.join("input.npy")).unwrap().to_f32();
        let want = NpyArray::read(io.join("out_ref.npy")).unwrap().to_f32();
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        let mut first: Option<Vec<f32>> = None;
        for threads in [1, 2] {
            let mut it = Interpreter::new(
                &model,
                Options {
                    threads,
                    ..Options::default()
                },
            )
            .unwrap_or_else(|e| panic!("{name}: prepare: {e}"));
            it.set_input(0, &x).unwrap();
            it.invoke().unwrap();
            let got = it.output::<f32>(0).unwrap().to_vec();
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-4 * scale,
                    "{name}: element {i}: got {g}, LiteRT {w}"
                );
            }
            match &first {
                None => first = Some(got),
                Some(f) => assert!(f == &got, "{name}: 2 threads differ from 1"),
            }
        }
    }
}
