//! sparq's compute kernels: pure functions on slices. They know nothing of models or files.
#![deny(
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc
)]

pub mod isa;
pub mod pool;
pub use isa::Isa;
pub mod activation;
pub mod arch;
pub mod conv;
pub mod depthwise;
pub mod dispatch;
pub mod elementwise;
pub mod gemm;
pub mod pooling;
pub mod prune;
pub mod quantize;
pub mod reference;
pub mod requant;
pub mod resize;
pub mod shape_ops;
pub mod sparse;
pub mod spmm;
#[cfg(test)]
mod testutil;
pub mod window;
