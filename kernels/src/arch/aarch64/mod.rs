//! aarch64 kernels: NEON (Advanced SIMD), dotprod (`sdot`), i8mm (`smmla`).
//!
//! On stable Rust the dotprod and i8mm intrinsics are unstable, so those instructions are emitted
//! with `asm!` inside functions compiled for the matching target features.

pub mod dotprod;
pub mod i8mm;
pub mod neon;

use crate::dispatch::RequantTable;
use crate::gemm::{F32Kernel, I8Kernel};
use crate::isa::Isa;

/// The int8 GEMM kernels of every enabled aarch64 tier, lowest first.
pub fn i8_gemm_kernels() -> Vec<&'static I8Kernel> {
    let mut v = Vec::new();
    if Isa::Neon.enabled() {
        v.push(&neon::gemm::GEMM_I8);
    }
    if Isa::Dotprod.enabled() {
        v.push(&dotprod::gemm::GEMM_I8);
    }
    if Isa::I8mm.enabled() {
        v.push(&i8mm::gemm::GEMM_I8);
    }
    v
}

/// The f32 GEMM kernels of every enabled aarch64 tier, lowest first.
pub fn f32_gemm_kernels() -> Vec<&'static F32Kernel> {
    let mut v = Vec::new();
    if Isa::Neon.enabled() {
        v.push(&neon::gemm::GEMM_F32);
    }
    v
}

/// The requant-row kernels of every enabled aarch64 tier, lowest first.
pub fn requant_kernels() -> Vec<RequantTable> {
    let mut v = Vec::new();
    if Isa::Neon.enabled() {
        v.push(neon::requant::TABLE);
    }
    v
}
