//! sparq: an on-device inference runtime for pruned and quantized neural networks.

pub mod interpreter;
pub mod npy;
