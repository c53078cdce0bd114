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

/// (model, pre-softmax tensor, reference): LiteRT's reference kernels are normative; for
/// MobileNetV3-Small int8 they abort (a LiteRT bug), so its optimized builtin kernels stand in,
/// which differ from the reference formulas by a step here and there.
const INT8_MODELS: &[(&str, &str, &str)] = &[
    (
        "mobilenet_v2_1.0_224_int8",
        "mobilenetv2_1.00_224/predictions/MatMul2",
        "ref",
    ),
    (
        "mobilenet_v2_0.35_224_int8",
        "mobilenetv2_0.35_224/predictions/MatMul2",
        "ref",
    ),
    (
        "mobilenet_v3_small_1.0_224_int8",
        "MobilenetV3small/flatten/Reshape",
        "builtin",
    ),
];

#[test]
fn int8_mobilenets_equal_litert_reference() {
    let Some(zoo) = zoo() else {
        eprintln!("skipped: zoo not found (set SPARQ_ZOO)");
        return;
    };
    for &(name, pre, reference) in INT8_MODELS {
        let model = load(&zoo, name);
        let io = zoo.join("io").join(name);
        let x = NpyArray::read(io.join("input.npy")).unwrap();
        let out = NpyArray::read(io.join(format!("out_{reference}.npy"))).unwrap();
        let presoftmax = NpyArray::read(io.join(format!("presoftmax_{reference}.npy"))).unwrap();
        let mut first: Option<Vec<u8>> = None;
        for threads in [1, 2, 3] {
            let opts = Options {
                threads,
                keep: vec![pre.to_string()],
                ..Options::default()
            };
            let mut it =
                Interpreter::new(&model, opts).unwrap_or_else(|e| panic!("{name}: prepare: {e}"));
            it.set_input_bytes(0, &x.data).unwrap();
            it.invoke().unwrap();
            let got = it.tensor(pre).unwrap().1.to_vec();
            let steps: Vec<i32> = got
                .iter()
                .zip(&presoftmax.data)
                .map(|(&a, &b)| (a as i8 as i32 - b as i8 as i32).abs())
                .collect();
            let worst = steps.iter().copied().max().unwrap_or(0);
            if reference == "ref" {
                assert_eq!(
                    worst, 0,
                    "{name}: pre-softmax differs from LiteRT's reference by {worst} steps"
                );
                assert_eq!(it.output_bytes(0).unwrap(), &out.data[..], "{name}: output");
            } else {
                // Measured: at most 13 steps from the builtin kernels, same top-1.
                assert!(
                    worst <= 16,
                    "{name}: pre-softmax {worst} steps from LiteRT builtin"
                );
                let am = |v: &[u8]| {
                    (0..v.len())
                        .max_by_key(|&i| (v[i] as i8, std::cmp::Reverse(i)))
                        .unwrap()
                };
                assert_eq!(am(&got), am(&presoftmax.data), "{name}: top-1");
            }
            match &first {
                None => first = Some(got),
                Some(f) => assert!(f == &got, "{name}: {threads} threads differ from 1"),
            }
        }
    }
}

/// Dynamic-range models quantize activations at run time, so float differences of 1e-7 in the
/// layers before (summation order) can move a quantization step: the bound is LiteRT's own
/// builtin-kernel distance from its reference kernels, with the same order of error.
#[test]
fn dynamic_mobilenets_stay_within_litert_builtin_distance() {
    let Some(zoo) = zoo() else {
        eprintln!("skipped: zoo not found (set SPARQ_ZOO)");
        return;
    };
    for name in [
        "mobilenet_v2_1.0_224_dynamic",
        "mobilenet_v2_0.35_224_dynamic",
        "mobilenet_v3_small_1.0_224_dynamic",
    ] {
        let model = load(&zoo, name);
        let io = zoo.join("io").join(name);
        let x = NpyArray::read(io.join("input.npy")).unwrap().to_f32();
        let want = NpyArray::read(io.join("out_ref.npy")).unwrap().to_f32();
        let builtin = NpyArray::read(io.join("out_builtin.npy")).unwrap().to_f32();
        let dist = |a: &[f32]| {
            a.iter()
                .zip(&want)
                .fold(0f32, |m, (x, y)| m.max((x - y).abs()))
        };
        let bound = dist(&builtin) * 1.5 + 1e-6;
        let mut first: Option<Vec<f32>> = None;
        for threads in [1, 2] {
            let mut it = Interpreter::new(
                &model,
                Options {
                    threads,
                    ..Options::default()
                },
            )
            .unwrap();
            it.set_input(0, &x).unwrap();
            it.invoke().unwrap();
            let got = it.output::<f32>(0).unwrap().to_vec();
            assert!(
                dist(&got) <= bound,
                "{name}: {} from LiteRT reference, bound {bound}",
                dist(&got)
            );
            match &first {
                None => first = Some(got),
                Some(f) => assert!(f == &got, "{name}: 2 threads differ from 1"),
            }
        }
    }
}
