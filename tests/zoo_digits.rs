//! The digits models of the zoo (committed under tests/fixtures/): imported from `.tflite`, run,
//! and compared with LiteRT's reference kernels — float models within 1e-4 of the output's
//! scale, integer models bit for bit — on the reference input and on the whole test split
//! (where the accuracy must equal LiteRT's).

use std::path::{Path, PathBuf};

use sparq::npy::NpyArray;
use sparq::{Interpreter, Model, Options, SparseRoute};

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
fn check_float(name: &str, route: SparseRoute) {
    let model = load(name);
    let opts = Options {
        sparse: route,
        ..Options::default()
    };
    let mut it = Interpreter::new(&model, opts).unwrap_or_else(|e| panic!("{name}: prepare: {e}"));
    let routed = it.kernels().iter().filter(|k| k.2.is_some()).count();
    if route == SparseRoute::Sparse && name.contains("mlp") && name.ends_with("float32_sparse") {
        // Every f32 fully-connected layer with sparse weights runs on a sparse kernel.
        assert!(routed > 0, "{name}: no layer on the sparse kernels");
    }
    if route == SparseRoute::Dense || !name.ends_with("_sparse") {
        assert_eq!(routed, 0, "{name}: {:?}", it.kernels());
    }
    let label = format!("{name} ({route:?})");
    let x = io(name, "input.npy").to_f32();
    it.set_input(0, &x).unwrap();
    it.invoke().unwrap();
    let want = io(name, "out_ref.npy").to_f32();
    let got = it.output::<f32>(0).unwrap();
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-4 * scale,
            "{label}: element {i}: got {g}, LiteRT {w}"
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
                "{label}: sample {s} element {i}: got {g}, LiteRT {w}"
            );
        }
        ours += (argmax(got) == ys[s] as usize) as usize;
        theirs += (argmax(r) == ys[s] as usize) as usize;
    }
    assert_eq!(
        ours,
        theirs,
        "{label}: accuracy {ours}/{} vs LiteRT {theirs}",
        ys.len()
    );
}

const FLOAT_MODELS: &[&str] = &[
    "digits_mlp_dynamic",
    "digits_cnn_dynamic",
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
        check_float(name, SparseRoute::Auto);
        if name.ends_with("_sparse") {
            check_float(name, SparseRoute::Sparse);
            check_float(name, SparseRoute::Dense);
        }
    }
}

/// Quantizes like TFLite's QUANTIZE: round half away from zero of x / scale, plus the zero point.
fn quantize(x: &[f32], scale: f32, zp: i32, unsigned: bool) -> Vec<u8> {
    let (lo, hi) = if unsigned { (0, 255) } else { (-128, 127) };
    x.iter()
        .map(|&v| {
            (((v / scale).round() as i32)
                .saturating_add(zp)
                .clamp(lo, hi)) as u8
        })
        .collect()
}

/// Integer models: outputs equal LiteRT's reference kernels exactly, on the reference input and
/// on every test sample; accuracy equal.
fn check_quant(name: &str, route: SparseRoute) {
    let model = load(name);
    let label = format!("{name} ({route:?})");
    for threads in [1, 2, 3] {
        let opts = Options {
            threads,
            sparse: route,
            ..Options::default()
        };
        let mut it =
            Interpreter::new(&model, opts).unwrap_or_else(|e| panic!("{label}: prepare: {e}"));
        let routed: Vec<_> = it.kernels().into_iter().filter(|k| k.2.is_some()).collect();
        if route == SparseRoute::Sparse && name.contains("mlp") && name.ends_with("int8_sparse") {
            // Every int8 fully-connected layer with sparse weights runs on a sparse kernel.
            assert!(
                !routed.is_empty(),
                "{label}: no layer on the sparse kernels"
            );
        }
        if threads == 1 && name.ends_with("_sparse") {
            println!("{label}: {routed:?}");
        }
        let input = io(name, "input.npy");
        it.set_input_bytes(0, &input.data).unwrap();
        it.invoke().unwrap();
        let want = io(name, "out_ref.npy");
        let got = it.output_bytes(0).unwrap();
        if let Some(i) = (0..got.len()).find(|&i| got[i] != want.data[i]) {
            panic!(
                "{label} ({threads} threads): element {i}: got {}, LiteRT {}",
                got[i], want.data[i]
            );
        }
        if threads != 1 {
            continue;
        }
        let info = it.inputs()[0].clone();
        let q = info.quant.as_ref().expect("quantized input");
        let unsigned = info.dtype == sparq::DType::U8;
        let xs = NpyArray::read(fixtures().join("digits_test_x.npy"))
            .unwrap()
            .to_f32();
        let ys = NpyArray::read(fixtures().join("digits_test_y.npy"))
            .unwrap()
            .to_f32();
        let refs = io(name, "test_out_ref.npy");
        let per = info.num_elements;
        let classes = want.data.len();
        let signed = |b: u8| if unsigned { b as i32 } else { b as i8 as i32 };
        let (mut ours, mut theirs) = (0, 0);
        for s in 0..ys.len() {
            let x = quantize(
                &xs[s * per..(s + 1) * per],
                q.scales[0],
                q.zero_points[0] as i32,
                unsigned,
            );
            it.set_input_bytes(0, &x).unwrap();
            it.invoke().unwrap();
            let got = it.output_bytes(0).unwrap();
            let r = &refs.data[s * classes..(s + 1) * classes];
            if let Some(i) = (0..classes).find(|&i| got[i] != r[i]) {
                panic!(
                    "{label}: sample {s} element {i}: got {}, LiteRT {}",
                    got[i], r[i]
                );
            }
            let am = |v: &[u8]| {
                (0..classes)
                    .max_by_key(|&i| (signed(v[i]), std::cmp::Reverse(i)))
                    .unwrap()
            };
            ours += (am(got) == ys[s] as usize) as usize;
            theirs += (am(r) == ys[s] as usize) as usize;
        }
        assert_eq!(ours, theirs, "{label}: accuracy {ours} vs LiteRT {theirs}");
    }
}

const QUANT_MODELS: &[&str] = &[
    "digits_mlp_int8",
    "digits_mlp_int8_uint8io",
    "digits_mlp_qat_int8",
    "digits_mlp_qat_pertensor_int8",
    "digits_mlp_p50_int8",
    "digits_mlp_p50_int8_sparse",
    "digits_mlp_p90_int8",
    "digits_mlp_p90_int8_sparse",
    "digits_mlp_block80_1x4_int8",
    "digits_mlp_block80_1x4_int8_sparse",
    "digits_mlp_block80_4x1_int8",
    "digits_mlp_block80_4x1_int8_sparse",
    "digits_cnn_int8",
    "digits_cnn_int8_uint8io",
    "digits_cnn_legacy_uint8",
    "digits_cnn_qat_int8",
    "digits_cnn_qat_pertensor_int8",
    "digits_cnn_p50_int8",
    "digits_cnn_p50_int8_sparse",
    "digits_cnn_p90_int8",
    "digits_cnn_p90_int8_sparse",
    "digits_cnn_block80_1x4_int8",
    "digits_cnn_block80_1x4_int8_sparse",
    "digits_cnn_block80_4x1_int8",
    "digits_cnn_block80_4x1_int8_sparse",
    "digits_cnn_poly80_int8",
    "digits_cnn_poly80_int8_sparse",
];

#[test]
fn integer_models_equal_litert_reference() {
    for name in QUANT_MODELS {
        check_quant(name, SparseRoute::Auto);
        if name.ends_with("_sparse") {
            check_quant(name, SparseRoute::Sparse);
        }
    }
}
