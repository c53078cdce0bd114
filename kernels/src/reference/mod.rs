//! Scalar reference implementations: obviously correct, slow, the oracle of the kernel tests.

pub mod conv;
pub mod gemm;
pub mod pooling;
