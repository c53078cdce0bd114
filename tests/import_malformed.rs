//! A `.tflite` is untrusted input: every truncation and thousands of seeded byte flips of real
//! models must give a clean error or a valid model — never a panic, a hang or a huge allocation.

mod import_util;

use import_util::*;
use sparq::convert::read_tflite;

/// Small fixtures covering dense f32, f16 + DEQUANTIZE, int8, CSR + DENSIFY, 1×4 blocks and a
/// SHAPE chain.
const MODELS: &[&str] = &[
    "digits_cnn_fp16",
    "digits_cnn_p90_int8_sparse",
    "digits_cnn_p90_float32_sparse",
    "digits_mlp_block80_4x1_int8_sparse",
    "digits_cnn_block80_4x1_float32_sparse",
    "digits_cnn_legacy_uint8",
    "shape_chain_float32",
];

#[test]
fn every_truncation_is_a_clean_error() {
    for name in MODELS {
        let bytes = fixture(name);
        for len in 0..bytes.len() {
            // A truncated file may still hold a complete model (trailing padding): fine if Ok.
            let _ = read_tflite(&bytes[..len]);
        }
    }
}

#[test]
fn seeded_byte_flips_never_panic() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let (mut ok, mut err) = (0usize, 0usize);
    for name in MODELS {
        let orig = fixture(name);
        for _ in 0..1500 {
            let mut bytes = orig.clone();
            // One to four random bytes replaced, biased toward the FlatBuffer's tables
            // (offsets, lengths, indices) by picking positions anywhere in the file.
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(bytes.len());
                bytes[at] = match rng.below(4) {
                    0 => 0xff,
                    1 => 0,
                    2 => bytes[at] ^ (1 << rng.below(8)),
                    _ => rng.next() as u8,
                };
            }
            match read_tflite(&bytes) {
                Ok(_) => ok += 1,
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    err += 1;
                }
            }
        }
    }
    println!("byte flips: {ok} imported, {err} rejected");
    assert!(
        err > 0 && ok > 0,
        "{ok} ok / {err} errors: the corruption is not exercising both"
    );
}

/// Flipped models that import also open, prepare and run (on zero inputs) without panicking:
/// every stage returns Ok or a clean error.
#[test]
fn flipped_models_that_import_also_run_or_fail_cleanly() {
    use sparq::{Interpreter, Model, Options};
    let mut rng = Rng(0xfeed_beef_0042);
    let (mut ran, mut imported) = (0usize, 0usize);
    for name in MODELS {
        let orig = fixture(name);
        for _ in 0..600 {
            let mut bytes = orig.clone();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(bytes.len());
                bytes[at] ^= 1 << rng.below(8);
            }
            let Ok(def) = sparq::convert::import_tflite(&bytes) else {
                continue;
            };
            imported += 1;
            let model = Model::from_def(&def).unwrap_or_else(|e| panic!("{name}: invalid: {e}"));
            let activations: usize = model
                .tensors()
                .iter()
                .filter(|t| !t.is_constant)
                .map(|t| t.byte_size)
                .sum();
            if activations > 16 << 20 {
                continue;
            }
            let Ok(mut it) = Interpreter::new(&model, Options::default()) else {
                continue;
            };
            let sizes: Vec<usize> = it.inputs().iter().map(|t| t.byte_size).collect();
            if sizes
                .iter()
                .enumerate()
                .all(|(k, &n)| it.set_input_bytes(k, &vec![0u8; n]).is_ok())
                && it.invoke().is_ok()
            {
                ran += 1;
            }
        }
    }
    println!("flipped models: {imported} imported, {ran} ran");
    assert!(ran > 0);
}
