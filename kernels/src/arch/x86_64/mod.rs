//! x86-64 kernels: AVX2 + FMA, and AVX-512 (F/BW/DQ/VL) + VNNI.

pub mod avx2;
pub mod avx512vnni;

use crate::dispatch::RequantTable;
use crate::gemm::{F32Kernel, I8Kernel};
use crate::isa::Isa;

/// The int8 GEMM kernels of every enabled x86 tier, lowest first.
pub fn i8_gemm_kernels() -> Vec<&'static I8Kernel> {
    let mut v = Vec::new();
    if Isa::Avx2.enabled() {
        v.push(&avx2::gemm::GEMM_I8);
    }
    if Isa::Avx512Vnni.enabled() {
        v.push(&avx512vnni::gemm::GEMM_I8);
    }
    v
}

/// The f32 GEMM kernels of every enabled x86 tier, lowest first.
pub fn f32_gemm_kernels() -> Vec<&'static F32Kernel> {
    let mut v = Vec::new();
    if Isa::Avx2.enabled() {
        v.push(&avx2::gemm::GEMM_F32);
    }
    if Isa::Avx512Vnni.enabled() {
        v.push(&avx512vnni::gemm::GEMM_F32);
    }
    v
}

/// The requant-row kernels of every enabled x86 tier, lowest first.
pub fn requant_kernels() -> Vec<RequantTable> {
    let mut v = Vec::new();
    if Isa::Avx2.enabled() {
        v.push(avx2::requant::TABLE);
    }
    if Isa::Avx512Vnni.enabled() {
        v.push(avx512vnni::requant::TABLE);
    }
    v
}
