//! NEON sparse kernels (`aarch64::neon::spmm_*`): the tiled kernels of `spmm/tiled.rs`
//! compiled for NEON (16-pixel f32 and int8 tiles), and the direct coarse-block kernel.
//!
//! Plugged only when [`Isa::Neon`] is enabled; packing refuses a kernel whose tier is not
//! enabled, so the safe entries run only on CPUs with NEON.

use super::reference;
use super::tiled;
use super::{PackedF32, PackedI8, SpmmF32Kernel, SpmmI8Kernel, SpmmTable};
use crate::isa::Isa;
use crate::requant::Requant;

const TILE: usize = 16;

/// The NEON slots of the sparse dispatch table.
pub(super) const TABLE: SpmmTable = SpmmTable {
    f32_1x1: &SpmmF32Kernel {
        name: "neon::spmm_f32_16x1",
        isa: Isa::Neon,
        tile: TILE,
        kc: 0,
        run: f32_entry,
    },
    f32_4x1: &SpmmF32Kernel {
        name: "neon::spmm_f32_16x4",
        isa: Isa::Neon,
        tile: TILE,
        kc: 0,
        run: f32_entry,
    },
    i8_1x4: &SpmmI8Kernel {
        name: "neon::spmm_qs8_16x1c4",
        isa: Isa::Neon,
        tile: TILE,
        unsigned: false,
        run: i8_entry,
    },
    i8_16x4: &SpmmI8Kernel {
        name: "neon::spmm_qs8_1x16c4",
        isa: Isa::Neon,
        tile: 0,
        unsigned: false,
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
    // SAFETY: plugged (and packable) only when NEON is enabled.
    unsafe { f32_neon(p, a, a_stride, m, out, out_stride, lo, hi, scratch) }
}

/// # Safety
/// NEON.
#[target_feature(enable = "neon")]
#[allow(clippy::too_many_arguments)]
unsafe fn f32_neon(
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
    // SAFETY: plugged (and packable) only when NEON is enabled.
    unsafe { i8_neon(p, a, a_stride, m, out, out_stride, rq, scratch) }
}

/// # Safety
/// NEON.
#[target_feature(enable = "neon")]
#[allow(clippy::too_many_arguments)]
unsafe fn i8_neon(
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
    // SAFETY: plugged (and packable) only when NEON is enabled.
    unsafe { i8_coarse_neon(p, a, a_stride, m, out, out_stride, rq, scratch) }
}

/// # Safety
/// NEON.
#[target_feature(enable = "neon")]
#[allow(clippy::too_many_arguments)]
unsafe fn i8_coarse_neon(
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
