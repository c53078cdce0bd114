//! sparq's file formats: the `.sparq` FlatBuffers schema (generated code), the owned model types
//! shared by the writer, the reader and the importer, and the `.sparq` writer.
//!
//! The `.sparq` file is a FlatBuffer (root [`fb::Model`], identifier `SPRQ`) followed by a data
//! section; every weight buffer is (offset, length) into the file with the offset a multiple of
//! [`DATA_ALIGN`], so a memory-mapped file is used in place. See `schema/sparq.fbs`.

#[rustfmt::skip]
#[allow(
    clippy::all,
    clippy::pedantic,
    clippy::undocumented_unsafe_blocks,
    unused_imports,
    dead_code,
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    unsafe_op_in_unsafe_fn,
    deprecated,
    mismatched_lifetime_syntaxes,
    unknown_lints,
)]
mod sparq_generated;

/// The generated FlatBuffers code for `schema/sparq.fbs` (namespace `sparq.fb`).
pub use sparq_generated::sparq::fb;

pub mod examples;
pub mod tflite;
mod types;
mod write;

pub use types::*;
pub use write::{write, WriteError};

/// The format version this crate writes. A reader refuses files with another major version.
pub const FORMAT_VERSION: (u16, u16) = (1, 0);

/// Alignment in bytes of every buffer offset in the data section.
pub const DATA_ALIGN: usize = 64;

/// The FlatBuffers file identifier of `.sparq` files.
pub const FILE_IDENTIFIER: &str = "SPRQ";
