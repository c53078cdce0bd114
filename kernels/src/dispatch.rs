//! The one dispatch table: a struct of kernel slots per family, built once (in a `OnceLock`).
//!
//! Building starts from the scalar floor, which always exists; then each ISA tier that is
//! [`Isa::enabled`] (the CPU has it and `SPARQ_ISA` does not cap it away), from lowest to highest,
//! overwrites the slots it does better. To add a family: add a field holding its table, give the
//! table a `scalar()` constructor, and plug the per-ISA kernels in [`Kernels::build`].

use std::sync::OnceLock;

use crate::gemm::{F32Kernel, I8Kernel};
use crate::isa::Isa;
use crate::requant::Requant;

/// Dense GEMM kernels.
#[derive(Clone, Copy, Debug)]
pub struct GemmTable {
    /// int8 × int8 → int32 → requantized 8-bit.
    pub i8: &'static I8Kernel,
    /// f32 with bias and clamp.
    pub f32: &'static F32Kernel,
}

/// Requantization of a row of int32 accumulators into 8-bit outputs (see [`Requant::apply_row`]).
///
/// The function's contract: `out` is valid for `acc.len()` byte writes and the `Requant` has the
/// channels `first..first + acc.len()` (or is per-tensor).
pub type RequantRowFn = unsafe fn(acc: &[i32], first: usize, rq: &Requant, out: *mut u8);

/// Requantization kernels.
#[derive(Clone, Copy)]
pub struct RequantTable {
    /// A row of accumulators to 8-bit.
    pub row: RequantRowFn,
    /// The name of the `row` kernel (naming grammar of NAMING.md).
    pub row_name: &'static str,
}

impl std::fmt::Debug for RequantTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequantTable")
            .field("row", &self.row_name)
            .finish()
    }
}

/// Every kernel family's table.
#[derive(Clone, Copy, Debug)]
pub struct Kernels {
    /// The tier the table was built for ([`Isa::active`]).
    pub isa: Isa,
    /// Dense GEMM.
    pub gemm: GemmTable,
    /// Requantization.
    pub requant: RequantTable,
    /// Element-wise binary ops (see `elementwise::ElementwiseKernels`).
    pub elementwise: crate::elementwise::ElementwiseKernels,
    /// Sparse × dense.
    pub spmm: crate::spmm::SpmmTable,
    /// Max / average pooling.
    pub pooling: crate::pooling::PoolKernels,
    /// Depthwise convolution.
    pub depthwise: crate::depthwise::DepthwiseKernels,
}

impl Kernels {
    /// The scalar floor: every slot holds the portable kernel.
    pub fn scalar() -> Kernels {
        Kernels {
            isa: Isa::Scalar,
            gemm: GemmTable {
                i8: &crate::gemm::generic::GEMM_I8,
                f32: &crate::gemm::generic::GEMM_F32,
            },
            requant: RequantTable {
                row: crate::requant::requant_row_scalar,
                row_name: "generic::requant_i32_q8",
            },
            elementwise: crate::elementwise::ElementwiseKernels::for_isa(Isa::Scalar),
            spmm: crate::spmm::SpmmTable::scalar(),
            pooling: crate::pooling::PoolKernels::scalar(),
            depthwise: crate::depthwise::DepthwiseKernels::scalar(),
        }
    }

    /// The table for the active tier: the scalar floor overwritten tier by tier.
    fn build() -> Kernels {
        #[allow(unused_mut)]
        let mut k = Kernels::scalar();
        k.isa = Isa::active();
        k.elementwise = crate::elementwise::ElementwiseKernels::for_isa(k.isa);
        #[cfg(target_arch = "x86_64")]
        {
            if Isa::Avx2.enabled() {
                crate::arch::x86_64::avx2::plug(&mut k);
            }
            if Isa::Avx512Vnni.enabled() {
                crate::arch::x86_64::avx512vnni::plug(&mut k);
            }
        }
        #[cfg(target_arch = "aarch64")]
        {
            if Isa::Neon.enabled() {
                crate::arch::aarch64::neon::plug(&mut k);
            }
            if Isa::Dotprod.enabled() {
                crate::arch::aarch64::dotprod::plug(&mut k);
            }
            if Isa::I8mm.enabled() {
                crate::arch::aarch64::i8mm::plug(&mut k);
            }
        }
        k.spmm.plug();
        k.pooling = crate::pooling::PoolKernels::best();
        k.depthwise = crate::depthwise::DepthwiseKernels::best();
        k
    }
}

/// The table for this process (built on first use, then shared).
pub fn kernels() -> &'static Kernels {
    static TABLE: OnceLock<Kernels> = OnceLock::new();
    TABLE.get_or_init(Kernels::build)
}

/// Every int8 GEMM kernel that may run here (the scalar floor and each enabled tier's), for tests
/// and benchmarks that compare paths.
pub fn i8_gemm_candidates() -> Vec<&'static I8Kernel> {
    #[allow(unused_mut)]
    let mut v: Vec<&'static I8Kernel> = vec![&crate::gemm::generic::GEMM_I8];
    #[cfg(target_arch = "x86_64")]
    {
        v.extend(crate::arch::x86_64::i8_gemm_kernels());
    }
    #[cfg(target_arch = "aarch64")]
    {
        v.extend(crate::arch::aarch64::i8_gemm_kernels());
    }
    v
}

/// Every f32 GEMM kernel that may run here.
pub fn f32_gemm_candidates() -> Vec<&'static F32Kernel> {
    #[allow(unused_mut)]
    let mut v: Vec<&'static F32Kernel> = vec![&crate::gemm::generic::GEMM_F32];
    #[cfg(target_arch = "x86_64")]
    {
        v.extend(crate::arch::x86_64::f32_gemm_kernels());
    }
    #[cfg(target_arch = "aarch64")]
    {
        v.extend(crate::arch::aarch64::f32_gemm_kernels());
    }
    v
}

/// Every requant-row kernel that may run here, with its name.
pub fn requant_row_candidates() -> Vec<RequantTable> {
    #[allow(unused_mut)]
    let mut v = vec![Kernels::scalar().requant];
    #[cfg(target_arch = "x86_64")]
    {
        v.extend(crate::arch::x86_64::requant_kernels());
    }
    #[cfg(target_arch = "aarch64")]
    {
        v.extend(crate::arch::aarch64::requant_kernels());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a capable host (and without a cap), the hot slots must not be the scalar ones: a fast
    /// kernel that is never plugged in would otherwise go unnoticed.
    #[test]
    fn hot_slots_are_not_scalar_on_capable_hosts() {
        let k = kernels();
        eprintln!(
            "dispatch: isa {} gemm.i8 {} gemm.f32 {} requant.row {}",
            k.isa.name(),
            k.gemm.i8.name,
            k.gemm.f32.name,
            k.requant.row_name
        );
        if k.isa != Isa::Scalar {
            assert_ne!(
                k.gemm.i8.isa,
                Isa::Scalar,
                "gemm.i8 slot is scalar under {:?}",
                k.isa
            );
            assert_ne!(
                k.gemm.f32.isa,
                Isa::Scalar,
                "gemm.f32 slot is scalar under {:?}",
                k.isa
            );
        }
        if k.isa == Isa::Avx512Vnni || k.isa == Isa::Dotprod || k.isa == Isa::I8mm {
            assert_eq!(
                k.gemm.i8.isa, k.isa,
                "gemm.i8 is not the {:?} kernel",
                k.isa
            );
        }
        if std::env::var_os("SPARQ_ISA").is_none() {
            assert_eq!(k.isa, Isa::detected());
        }
    }
}
