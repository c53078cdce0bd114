//! i8mm (FEAT_I8MM): int8 GEMM with `smmla` (2×8 · 8×2 int8 matrix multiply-accumulate).

pub mod gemm;

use crate::dispatch::Kernels;

/// Overwrites the slots this tier does better.
pub fn plug(k: &mut Kernels) {
    k.gemm.i8 = &gemm::GEMM_I8;
}
