//! Scalar reference implementations: obviously correct, slow, the oracle of the kernel tests.

pub mod gemm;
pub mod pooling;
