//! AVX-512 F/BW/DQ/VL + VNNI: `vpdpbusd` int8 GEMM, 16-lane f32 FMA GEMM, 16-lane requantization.

pub mod conv_direct;
pub mod gemm;
pub mod requant;

use crate::dispatch::Kernels;

/// Overwrites the slots this tier does better.
pub fn plug(k: &mut Kernels) {
    k.gemm.i8 = &gemm::GEMM_I8;
    k.gemm.f32 = &gemm::GEMM_F32;
    k.requant = requant::TABLE;
}
