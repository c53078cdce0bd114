//! Untrusted models end to end: seeded byte flips and truncations of committed `.tflite`
//! fixtures go through import, prepare and invoke; each gives a clean error or a run — never a
//! panic (a panic fails the test with the seed that caused it).

use std::path::Path;

use sparq::{Interpreter, Model, Options};

fn run(bytes: &[u8]) {
    let Ok(def) = sparq::convert::import_tflite(bytes) else {
        return;
    };
    let Ok(model) = Model::from_def(&def) else {
        return;
    };
    for threads in [1, 2] {
        let Ok(mut it) = Interpreter::new(
            &model,
            Options {
                threads,
                ..Options::default()
            },
        ) else {
            return;
        };
        for k in 0..it.inputs().len() {
            let n = it.inputs()[k].byte_size;
            let _ = it.set_input_bytes(k, &vec![0x3c; n]);
        }
        it.invoke().unwrap();
    }
}

#[test]
fn byte_flips_and_truncations_never_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tflite");
    for name in [
        "digits_cnn_float32",
        "digits_cnn_int8",
        "digits_mlp_p90_int8_sparse",
        "digits_cnn_dynamic",
    ] {
        let good = std::fs::read(dir.join(format!("{name}.tflite"))).unwrap();
        let mut state = 0x5eed_u64 ^ good.len() as u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for case in 0..1000 {
            let mut b = good.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() % b.len() as u64) as usize;
                b[at] ^= 1 << (next() % 8);
            }
            let r = std::panic::catch_unwind(|| run(&b));
            assert!(r.is_ok(), "{name}: flip case {case} panicked");
        }
        for cut in (0..good.len()).step_by(97) {
            let r = std::panic::catch_unwind(|| run(&good[..cut]));
            assert!(r.is_ok(), "{name}: truncation at {cut} panicked");
        }
    }
}
