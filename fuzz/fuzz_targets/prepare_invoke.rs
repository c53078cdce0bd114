//! Any model that `Model::from_bytes` accepts must also be handled by `Interpreter::new` and
//! `invoke` with an `Ok` or an `Err`, never a panic (inputs: zero bytes). Models whose tensors
//! (activations, and sparse weights expanded to their dense size) would need more than 64 MiB are
//! skipped to keep the fuzzer's memory bounded: the format allows up to 2 GiB per such tensor.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sparq::{Interpreter, Model, Options};

fuzz_target!(|data: &[u8]| {
    let Ok(model) = Model::from_bytes(data) else {
        return;
    };
    let dense: usize = model.tensors().iter().map(|t| t.byte_size).sum();
    if dense > 64 << 20 {
        return;
    }
    let Ok(mut interp) = Interpreter::new(&model, Options::default()) else {
        return;
    };
    let _ = interp.invoke();
});
