//! AVX2 + FMA sparse kernels (`x86_64::avx2::spmm_*`): the tiled kernels of `spmm/tiled.rs`
//! compiled for AVX2 (16-pixel f32 and int8 tiles), and the direct coarse-block kernel.
//!
//! Plugged only when [`Isa::Avx2`] is enabled; packing refuses a kernel whose tier is not
//! enabled, so the safe entries run only on CPUs with AVX2 + FMA.

use super::reference;
use super::tiled;
use super::{PackedF32, PackedI8, SpmmF32Kernel, SpmmI8Kernel, SpmmTable};
use crate::isa::Isa;
use crate::requant::Requant;

const TILE: usize = 16;

/// The AVX2 slots of the sparse dispatch table.
pub(super) const TABLE: SpmmTable = SpmmTable {
    f32_1x1: &SpmmF32Kernel {
        name: "avx2::spmm_f32_16x1",
        isa: Isa::Avx2,
        tile: TILE,
        run: f32_entry,
    },
    f32_4x1: &SpmmF32Kernel {
        name: "avx2::spmm_f32_16x4",
        isa: Isa::Avx2,
        tile: TILE,
        run: f32_entry,
    },
    i8_1x4: &SpmmI8Kernel {
        name: "avx2::spmm_qs8_16x1c4",
        isa: Isa::Avx2,
        tile: TILE,
        offset: 0,
        run: i8_entry,
    },
    i8_16x4: &SpmmI8Kernel {
        name: "avx2::spmm_qs8_1x16c4",
        isa: Isa::Avx2,
        tile: 0,
        offset: 0,
        run: i8_coarse_entry,
    },
};

#[allow(clippy::too_many_arguments)]
fn f32_entry(
    p: &PackedF32,
    a: &[f32],
    a_stride: usize,
    m: usize,
    out: &mut [f32],
    out_stride: usize,
    lo: f32,
    hi: f32,
    scratch: &mut [f32],
) {
    // SAFETY: plugged (and packable) only when AVX2 + FMA are enabled.
    unsafe { f32_avx2(p, a, a_stride, m, out, out_stride, lo, hi, scratch) }
}

/// # Safety
/// AVX2 + FMA.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn f32_avx2(
    p: &PackedF32,
    a: &[f32],
    a_stride: usize,
    m: usize,
    out: &mut [f32],
    out_stride: usize,
    lo: f32,
    hi: f32,
    scratch: &mut [f32],
) {
    tiled::f32_tiled::<TILE>(p, a, a_stride, m, out, out_stride, lo, hi, scratch)
}

#[allow(clippy::too_many_arguments)]
fn i8_entry(
    p: &PackedI8,
    a: &[i8],
    a_stride: usize,
    m: usize,
    out: &mut [i8],
    out_stride: usize,
    rq: &Requant,
    scratch: &mut [u32],
) {
    // SAFETY: plugged (and packable) only when AVX2 is enabled.
    unsafe { i8_avx2(p, a, a_stride, m, out, out_stride, rq, scratch) }
}

/// # Safety
/// AVX2.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn i8_avx2(
    p: &PackedI8,
    a: &[i8],
    a_stride: usize,
    m: usize,
    out: &mut [i8],
    out_stride: usize,
    rq: &Requant,
    scratch: &mut [u32],
) {
    tiled::i8_tiled::<TILE>(p, a, a_stride, m, out, out_stride, rq, scratch)
}

#[allow(clippy::too_many_arguments)]
fn i8_coarse_entry(
    p: &PackedI8,
    a: &[i8],
    a_stride: usize,
    m: usize,
    out: &mut [i8],
    out_stride: usize,
    rq: &Requant,
    scratch: &mut [u32],
) {
    // SAFETY: plugged (and packable) only when AVX2 is enabled.
    unsafe { i8_coarse_avx2(p, a, a_stride, m, out, out_stride, rq, scratch) }
}

/// # Safety
/// AVX2.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn i8_coarse_avx2(
    p: &PackedI8,
    a: &[i8],
    a_stride: usize,
    m: usize,
    out: &mut [i8],
    out_stride: usize,
    rq: &Requant,
    scratch: &mut [u32],
) {
    reference::spmm_i8(p, a, a_stride, m, out, out_stride, rq, scratch)
}
