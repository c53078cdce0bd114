//! `.tflite` → `ModelDef` → `.sparq` → `Model`: every import is a model sparq's own validator
//! accepts, the `.sparq` holds exactly what was imported, and fp16 weights stay f16.

mod import_util;

use import_util::*;
use sparq::convert::import_tflite;
use sparq::{DType, Model, OpKind, SparseFormat};

fn roundtrip(name: &str, bytes: &[u8]) -> (sparq::ModelDef, Vec<u8>) {
    let def = import_tflite(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    let file = sparq_schema::write(&def).unwrap_or_else(|e| panic!("{name}: write: {e}"));
    let model = Model::from_bytes(&file).unwrap_or_else(|e| panic!("{name}: open: {e}"));
    assert_eq!(
        model.to_def(),
        def,
        "{name}: the .sparq does not hold what was imported"
    );
    (def, file)
}

#[test]
fn every_fixture_round_trips() {
    for (name, bytes) in fixture_models() {
        let (def, _) = roundtrip(&name, &bytes);
        assert!(!def.operators.is_empty());
        assert!(
            def.operators
                .iter()
                .all(|o| o.kind != OpKind::Dequantize || !name.contains("fp16")),
            "{name}: DEQUANTIZE of f16 weights left"
        );
    }
}

#[test]
fn zoo_models_round_trip() {
    let Some(zoo) = zoo() else {
        println!("skipped: zoo not found");
        return;
    };
    let mut n = 0;
    for e in std::fs::read_dir(zoo.join("models")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|e| e == "tflite") {
            roundtrip(&p.display().to_string(), &std::fs::read(&p).unwrap());
            n += 1;
        }
    }
    assert!(n >= 63, "only {n} zoo models");
}

#[test]
fn fp16_sparq_keeps_f16_weights_at_about_half_the_size() {
    for family in ["digits_mlp", "digits_cnn"] {
        let (def16, file16) = roundtrip("fp16", &fixture(&format!("{family}_fp16")));
        let (_, file32) = roundtrip("f32", &fixture(&format!("{family}_float32")));
        let weights: Vec<_> = def16
            .operators
            .iter()
            .filter(|o| {
                matches!(
                    o.kind,
                    OpKind::FullyConnected | OpKind::Conv2d | OpKind::DepthwiseConv2d
                )
            })
            .map(|o| &def16.tensors[o.inputs[1] as usize])
            .collect();
        assert!(!weights.is_empty());
        for w in weights {
            assert_eq!(
                w.dtype,
                DType::F16,
                "{family}: weight {} is {}",
                w.name,
                w.dtype
            );
        }
        let ratio = file16.len() as f64 / file32.len() as f64;
        println!(
            "{family}: fp16 .sparq {} bytes, f32 .sparq {} bytes ({ratio:.2})",
            file16.len(),
            file32.len()
        );
        // The MLP is almost all weights (≈ 0.5); the small CNN carries more fixed overhead.
        let max = if family == "digits_mlp" { 0.56 } else { 0.8 };
        assert!(
            ratio < max,
            "{family}: fp16 file is {ratio:.2} of the f32 one"
        );
    }
}

#[test]
fn sparse_weights_arrive_as_csr_and_bsr() {
    let (def, _) = roundtrip("csr", &fixture("digits_mlp_p90_float32_sparse"));
    let csr = def
        .tensors
        .iter()
        .filter(|t| {
            t.sparse
                .as_ref()
                .is_some_and(|s| s.format == SparseFormat::Csr)
        })
        .count();
    assert_eq!(csr, 3);
    assert_eq!(def.metadata.layer_sparsity.len(), 3);
    for (name, s) in &def.metadata.layer_sparsity {
        assert!((0.85..0.95).contains(s), "{name}: sparsity {s}");
    }
    let (def, _) = roundtrip("bsr", &fixture("digits_mlp_block80_4x1_float32_sparse"));
    let bsr = def
        .tensors
        .iter()
        .filter(|t| {
            t.sparse.as_ref().is_some_and(|s| {
                s.format
                    == SparseFormat::Bsr {
                        block_rows: 1,
                        block_cols: 4,
                    }
            })
        })
        .count();
    assert_eq!(bsr, 3);
}

#[test]
fn unsupported_op_names_op_index_and_need() {
    let mut m = fc_model(3, 4, Buf::Inline(f32_bytes(&[0.0; 12])), None);
    m.codes = vec![(16, 16, None)]; // LSTM
    m.ops[0].options = Opt::None;
    let e = import_tflite(&build(&m)).unwrap_err().to_string();
    assert!(
        e.contains("operator 0 LSTM") && e.contains("recurrent"),
        "{e}"
    );
    m.codes = vec![(127, sparq_schema::tflite::BuiltinOperator::GELU.0, None)];
    let e = import_tflite(&build(&m)).unwrap_err().to_string();
    assert!(
        e.contains("operator 0 GELU") && e.contains("would need"),
        "{e}"
    );
}

/// Byte flips of real models: an import that succeeds must give a model sparq's validator
/// accepts (the importer never hands on an inconsistent graph).
#[test]
fn flipped_models_that_import_are_valid() {
    let mut rng = Rng(0x0dd_f00d_cafe);
    let mut imported = 0;
    for name in [
        "digits_cnn_fp16",
        "digits_cnn_p90_int8_sparse",
        "digits_mlp_block80_4x1_float32_sparse",
    ] {
        let orig = fixture(name);
        for _ in 0..1000 {
            let mut bytes = orig.clone();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(bytes.len());
                bytes[at] ^= 1 << rng.below(8);
            }
            if let Ok(def) = import_tflite(&bytes) {
                let file =
                    sparq_schema::write(&def).unwrap_or_else(|e| panic!("{name}: write: {e}"));
                if let Err(e) = Model::from_bytes(&file) {
                    panic!("{name}: imported but invalid: {e}");
                }
                imported += 1;
            }
        }
    }
    assert!(imported > 100, "only {imported} flipped models imported");
}

/// Dynamic-range models keep TFLite's `asymmetric_quantize_inputs` on hybrid FULLY_CONNECTED.
#[test]
fn hybrid_fc_keeps_asymmetric_input_flag() {
    let (def, _) = roundtrip("dynamic", &fixture("digits_mlp_dynamic"));
    let flags: Vec<bool> = def
        .operators
        .iter()
        .filter_map(|o| match o.options {
            sparq::OpOptions::FullyConnected {
                asymmetric_quantize_inputs,
                ..
            } => Some(asymmetric_quantize_inputs),
            _ => None,
        })
        .collect();
    // fc1 and fc2 have int8 weights (hybrid); the small logits layer stayed f32.
    assert_eq!(flags, [true, true, false]);
}

/// `.tflite` → `.sparq` file → run gives exactly what running the `.tflite` (imported in memory)
/// gives, for dense, f16, CSR, BSR and folded-shape models; and matches LiteRT's reference.
#[test]
fn sparq_file_runs_like_the_tflite() {
    use sparq::npy::NpyArray;
    use sparq::{Interpreter, Options};
    let run = |model: &Model, x: &[f32]| -> Vec<f32> {
        let mut it = Interpreter::new(model, Options::default()).expect("prepare");
        it.set_input(0, x).expect("input");
        it.invoke().expect("invoke");
        it.output::<f32>(0).expect("output").to_vec()
    };
    for name in [
        "digits_cnn_float32",
        "digits_mlp_fp16",
        "digits_cnn_fp16",
        "digits_cnn_p90_float32_sparse",
        "digits_mlp_block80_4x1_float32_sparse",
        "shape_chain_float32",
    ] {
        let io = fixtures().join("io").join(name);
        let x = NpyArray::read(io.join("input.npy")).unwrap().to_f32();
        let want = NpyArray::read(io.join("out_ref.npy")).unwrap().to_f32();
        let def = import_tflite(&fixture(name)).unwrap();
        let direct = run(&Model::from_def(&def).unwrap(), &x);
        let path =
            std::env::temp_dir().join(format!("sparq-import-{}-{name}.sparq", std::process::id()));
        std::fs::write(&path, sparq_schema::write(&def).unwrap()).unwrap();
        let via_file = run(&Model::open(&path).unwrap(), &x);
        std::fs::remove_file(&path).ok();
        assert_eq!(
            direct, via_file,
            "{name}: .sparq run differs from the .tflite run"
        );
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (i, (g, w)) in direct.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-4 * scale,
                "{name}: element {i}: got {g}, LiteRT {w}"
            );
        }
    }
}
