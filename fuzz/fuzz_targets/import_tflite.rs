//! `.tflite` import → `.sparq` → open → prepare → invoke on arbitrary bytes: every stage returns
//! `Ok` or `Err`, never panics, reads out of bounds or allocates without bound. An import that
//! succeeds must give a model sparq's own validator accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sparq::{Interpreter, Model, Options};

/// Skip prepare when the activations alone would exceed this (keeps the fuzzer within its
/// memory limit; the interpreter's own bounds are tested elsewhere).
const MAX_ACTIVATION_TOTAL: usize = 64 << 20;

fuzz_target!(|data: &[u8]| {
    let Ok(def) = sparq::convert::import_tflite(data) else {
        return;
    };
    let file = sparq_schema::write(&def).expect("an imported model must serialize");
    let model = Model::from_bytes(&file).expect("an imported model must validate");
    let activations: usize = model
        .tensors()
        .iter()
        .filter(|t| !t.is_constant)
        .map(|t| t.byte_size)
        .sum();
    if activations > MAX_ACTIVATION_TOTAL {
        return;
    }
    let Ok(mut it) = Interpreter::new(&model, Options::default()) else {
        return;
    };
    let sizes: Vec<usize> = it.inputs().iter().map(|t| t.byte_size).collect();
    for (k, n) in sizes.into_iter().enumerate() {
        if it.set_input_bytes(k, &vec![0u8; n]).is_err() {
            return;
        }
    }
    let _ = it.invoke();
});
