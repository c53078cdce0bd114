//! sparq: an on-device inference runtime for pruned and quantized neural networks.

pub mod convert;
pub mod error;
pub mod interpreter;
pub mod model;
pub mod npy;
pub(crate) mod ops;

pub use error::{Error, Result};
pub use interpreter::{Interpreter, Options, SparseRoute, DEFAULT_MAX_PREPARE_BYTES};
pub use model::{Model, OpInfo, SparseView, TensorInfo};
pub use sparq_schema::{
    Activation, DType, Metadata, ModelDef, OpDef, OpKind, OpOptions, Padding, Quantization,
    SparseDef, SparseFormat, TensorDef,
};
