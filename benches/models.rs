//! Whole-model latency: MobileNetV2 1.0 (f32, float16 weights, int8, dynamic-range) and
//! MobileNetV3-Small int8, on 1 and 2 threads; invoke only (prepare is outside the timing).
//! Models come from the zoo (`SPARQ_ZOO`, or `../shared/zoo`); without it the bench says so and
//! measures nothing. `tools/bench_litert.py` times the same models in LiteRT for comparison.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use sparq::{Interpreter, Model, Options};

fn zoo() -> Option<PathBuf> {
    let p = match std::env::var_os("SPARQ_ZOO") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/zoo"),
    };
    p.join("manifest.json").exists().then_some(p)
}

const MODELS: &[&str] = &[
    "mobilenet_v2_1.0_224_float32",
    "mobilenet_v2_1.0_224_fp16",
    "mobilenet_v2_1.0_224_int8",
    "mobilenet_v2_1.0_224_dynamic",
    "mobilenet_v3_small_1.0_224_int8",
];

fn models(c: &mut Criterion) {
    let Some(zoo) = zoo() else {
        eprintln!("skipped: zoo not found (set SPARQ_ZOO)");
        return;
    };
    let mut group = c.benchmark_group("models");
    for name in MODELS {
        let bytes = std::fs::read(zoo.join("models").join(format!("{name}.tflite"))).unwrap();
        let def = sparq::convert::import_tflite(&bytes).unwrap();
        let model = Model::from_def(&def).unwrap();
        for threads in [1, 2] {
            let mut it = Interpreter::new(
                &model,
                Options {
                    threads,
                    ..Options::default()
                },
            )
            .unwrap();
            // Seeded input in the model's dtype (the bytes do not change the work done).
            let n = it.inputs()[0].byte_size;
            let input: Vec<u8> = (0..n)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 & 0x3f)
                .collect();
            it.set_input_bytes(0, &input).unwrap();
            group.bench_function(format!("{name}/{threads}T"), |b| {
                b.iter(|| it.invoke().unwrap())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, models);
criterion_main!(benches);
