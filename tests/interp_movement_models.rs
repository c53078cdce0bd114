//! Real converter output with the data-movement operators (TRANSPOSE_CONV, RESIZE_BILINEAR,
//! RESIZE_NEAREST_NEIGHBOR, DEPTH_TO_SPACE, SPACE_TO_DEPTH, TRANSPOSE, STRIDED_SLICE, GATHER,
//! SPLIT, PACK, CONCATENATION): imported from `.tflite`, run, and compared with LiteRT's
//! reference kernels (fixtures from tools/make_movement_models.py; the int8 graph has no
//! DEPTH_TO_SPACE, which LiteRT's reference kernels lack in int8).

use std::path::PathBuf;

use sparq::npy::NpyArray;
use sparq::{Interpreter, Model, Options};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Runs model `name` on its committed input; returns (ours, LiteRT's) per output.
fn run(name: &str, threads: usize) -> Vec<(Vec<u8>, NpyArray)> {
    let dir = fixtures();
    let bytes = std::fs::read(dir.join("tflite").join(format!("{name}.tflite"))).unwrap();
    let def = sparq::convert::import_tflite(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    let model = Model::from_def(&def).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut it = Interpreter::new(
        &model,
        Options {
            threads,
            ..Options::default()
        },
    )
    .unwrap_or_else(|e| panic!("{name}: prepare: {e}"));
    let io = dir.join("io").join(name);
    let x = NpyArray::read(io.join("input.npy")).unwrap();
    it.set_input_bytes(0, &x.data).unwrap();
    it.invoke().unwrap();
    let outputs = (0..)
        .take_while(|k| io.join(format!("out{k}_ref.npy")).exists())
        .count();
    assert_eq!(outputs, it.outputs().len(), "{name}: reference outputs");
    (0..outputs)
        .map(|k| {
            let want = NpyArray::read(io.join(format!("out{k}_ref.npy"))).unwrap();
            (it.output_bytes(k).unwrap().to_vec(), want)
        })
        .collect()
}

#[test]
fn float_movement_model_matches_litert() {
    for threads in [1, 2] {
        for (k, (got, want)) in run("movement_float32", threads).into_iter().enumerate() {
            let got: Vec<f32> = got
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            let want = want.to_f32();
            assert_eq!(got.len(), want.len(), "output {k}: length");
            let scale = want.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-5 * scale,
                    "output {k} ({threads} threads): element {i}: got {g}, want {w}"
                );
            }
        }
    }
}

#[test]
fn int8_movement_model_equals_litert() {
    for threads in [1, 2] {
        for (k, (got, want)) in run("movement_int8", threads).into_iter().enumerate() {
            assert_eq!(got.len(), want.data.len(), "output {k}: length");
            if let Some(i) = (0..got.len()).find(|&i| got[i] != want.data[i]) {
                panic!(
                    "output {k} ({threads} threads): element {i}: got {}, want {}",
                    got[i] as i8, want.data[i] as i8
                );
            }
        }
    }
}
