//! dotprod (FEAT_DotProd): int8 GEMM with `sdot`.

pub mod gemm;

use crate::dispatch::Kernels;

/// Overwrites the slots this tier does better.
pub fn plug(k: &mut Kernels) {
    k.gemm.i8 = &gemm::GEMM_I8;
}
