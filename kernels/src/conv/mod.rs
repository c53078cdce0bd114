//! Convolutions beyond the GEMM: the direct kernels for few input channels ([`direct`]) and
//! TRANSPOSE_CONV ([`transpose`]).
//!
//! A general CONV_2D runs as im2col + the dense GEMM ([`crate::gemm`]), blocked by the caller;
//! a convolution whose window rows hold at most [`direct::MAX_RUN`] values (the first layer of a
//! CNN over an RGB image) runs on [`direct`] where the CPU has its kernels.

pub mod direct;
pub mod transpose;
