//! `sparq::Error`: the one error type of the `sparq` crate. Variants are grouped by the stage
//! that raises them; each message names the tensor or operator, the field and the bound.

use std::path::PathBuf;

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- I/O ----
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    // ---- opening a .sparq model (src/model.rs) ----
    /// The bytes are not a `.sparq` file at all (too short, wrong file identifier).
    #[error("not a .sparq file: {0}")]
    NotSparq(String),
    /// The FlatBuffer part failed verification (offsets out of range, bad UTF-8, limits…).
    #[error("corrupt .sparq file: {}", one_line(.0))]
    Flatbuffer(#[from] flatbuffers::InvalidFlatbuffer),
    /// The file's format major version is not the one this build reads.
    #[error(
        ".sparq format version {major}.{minor} is not supported (this build reads {supported}.x)"
    )]
    UnsupportedVersion {
        major: u16,
        minor: u16,
        supported: u16,
    },
    /// A tensor is inconsistent (shape, dtype, quantization, buffer, sparse encoding).
    #[error("tensor {index} \"{name}\": {problem}")]
    InvalidTensor {
        index: usize,
        name: String,
        problem: String,
    },
    /// An operator is inconsistent (kind, options, tensor indices, order).
    #[error("operator {index} ({kind}): {problem}")]
    InvalidOperator {
        index: usize,
        kind: String,
        problem: String,
    },
    /// The graph as a whole is inconsistent (inputs, outputs, top-level fields).
    #[error("invalid model: {0}")]
    InvalidModel(String),
    /// The model cannot be used on this host.
    #[error("unsupported: {0}")]
    Unsupported(String),

    // ---- importing a .tflite model (src/convert/) ----
    /// A `.tflite` file could not be imported (corrupt, inconsistent, or unsupported).
    #[error(transparent)]
    Import(#[from] crate::convert::ImportError),

    // ---- preparing and running a model (src/interpreter/, src/ops/) ----
    /// An operator is implemented, but not for these dtypes, options or shapes.
    #[error("operator {index} ({kind}): not supported: {problem}")]
    UnsupportedOp {
        index: usize,
        kind: String,
        problem: String,
    },
    /// A call to the interpreter is wrong: an unknown tensor name, an input of the wrong size or
    /// dtype, an option out of range.
    #[error("{0}")]
    Argument(String),

    // ---- writing a .sparq model ----
    /// A model could not be serialized.
    #[error("cannot write .sparq: {0}")]
    Write(#[from] sparq_schema::WriteError),
}

/// The verifier's message with its trace ("while verifying table field `shape`…") on one line.
fn one_line(e: &flatbuffers::InvalidFlatbuffer) -> String {
    let text = e.to_string();
    let parts: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    parts.join(" ")
}
