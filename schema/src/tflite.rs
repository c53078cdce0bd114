//! The part of TFLite's model format that sparq's importer reads (`schema/tflite.fbs`), and a
//! verified entry point with limits suited to untrusted files.

#[rustfmt::skip]
#[allow(
    clippy::all,
    clippy::pedantic,
    deprecated,
    dead_code,
    unused_imports,
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    unsafe_op_in_unsafe_fn,
    mismatched_lifetime_syntaxes
)]
#[path = "tflite_generated.rs"]
mod generated;

pub use generated::tflite::*;

/// Largest buffer a FlatBuffer can address (32-bit signed offsets).
pub const MAX_FLATBUFFER_BYTES: usize = (1 << 31) - 1;

/// Verifies `file` as a TFLite model and returns its root table.
///
/// Only the first 2 GiB are handed to the verifier: larger models keep their constant data after
/// the FlatBuffer (buffers with `offset`/`size`), which the importer checks separately against
/// the whole file. The limits bound the work a hostile file can cause: nesting depth 64, at most
/// 10 million tables, and an "apparent size" (the object graph expanded as a tree) of at most
/// twice the buffer plus 1 MiB, so shared sub-objects cannot blow verification up.
pub fn verified_model(file: &[u8]) -> Result<Model<'_>, flatbuffers::InvalidFlatbuffer> {
    let buf = &file[..file.len().min(MAX_FLATBUFFER_BYTES)];
    let opts = flatbuffers::VerifierOptions {
        max_depth: 64,
        max_tables: 10_000_000,
        max_apparent_size: buf.len().saturating_mul(2).saturating_add(1 << 20),
        ignore_missing_null_terminator: false,
    };
    root_as_model_with_opts(&opts, buf)
}

/// True when `file` carries TFLite's file identifier `TFL3` (bytes 4..8).
pub fn has_tflite_identifier(file: &[u8]) -> bool {
    file.len() >= 8 && &file[4..8] == MODEL_IDENTIFIER.as_bytes()
}
