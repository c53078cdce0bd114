//! Errors of the TFLite importer. Every message says where (tensor or operator, by index and
//! name) and what is wrong or missing, so a user can act on it.

/// Why a `.tflite` file could not be imported.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImportError {
    /// The bytes are not a well-formed TFLite FlatBuffer.
    #[error("not a valid TFLite model: {0}")]
    NotTflite(String),
    /// The FlatBuffer is well formed but its contents are inconsistent (an index out of range, a
    /// buffer of the wrong size, bad sparsity or quantization parameters, ...).
    #[error("invalid TFLite model: {at}: {problem}")]
    Invalid { at: String, problem: String },
    /// A well-formed feature that sparq does not handle yet.
    #[error("unsupported TFLite model: {at}: {what}")]
    Unsupported { at: String, what: String },
    /// An operator sparq has no implementation for.
    #[error("unsupported operator {index} {op}: {needs}")]
    UnsupportedOp {
        index: usize,
        op: String,
        needs: String,
    },
}

impl ImportError {
    pub(crate) fn invalid(at: impl Into<String>, problem: impl Into<String>) -> Self {
        ImportError::Invalid {
            at: at.into(),
            problem: problem.into(),
        }
    }

    pub(crate) fn unsupported(at: impl Into<String>, what: impl Into<String>) -> Self {
        ImportError::Unsupported {
            at: at.into(),
            what: what.into(),
        }
    }
}

pub(crate) type Result<T> = std::result::Result<T, ImportError>;
