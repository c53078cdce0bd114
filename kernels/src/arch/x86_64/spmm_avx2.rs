//! AVX2 + FMA sparse kernels (`x86_64::avx2::spmm_*`): the tiled kernels of `spmm/tiled.rs`
//! compiled for AVX2 (16-pixel f32 and int8 tiles), and the coarse 16×4 kernel: lanes over
//! output channels, weights and activations widened to i16 for `vpmaddwd` (exact: no
//! saturating `vpmaddubsw`), requantized by the shared 8-lane requantization.
//!
//! Plugged only when [`Isa::Avx2`] is enabled; packing refuses a kernel whose tier is not
//! enabled, so the safe entries run only on CPUs with AVX2 + FMA.

use super::tiled;
use super::{PackedF32, PackedI8, SpmmF32Kernel, SpmmI8Kernel, SpmmTable};
use crate::arch::x86_64::avx2::requant::{low_bytes8, requant8};
use crate::isa::Isa;
use crate::requant::Requant;
use std::arch::x86_64::*;

const TILE: usize = 16;

/// The AVX2 slots of the sparse dispatch table.
pub(super) const TABLE: SpmmTable = SpmmTable {
    f32_1x1: &SpmmF32Kernel {
        name: "avx2::spmm_f32_16x1",
        isa: Isa::Avx2,
        tile: TILE,
        kc: 0,
        run: f32_entry,
    },
    f32_4x1: &SpmmF32Kernel {
        name: "avx2::spmm_f32_16x4",
        isa: Isa::Avx2,
        tile: TILE,
        kc: 0,
        run: f32_entry,
    },
    i8_1x4: &SpmmI8Kernel {
        name: "avx2::spmm_qs8_16x1c4",
        isa: Isa::Avx2,
        tile: TILE,
        unsigned: false,
        run: i8_entry,
    },
    i8_16x4: &SpmmI8Kernel {
        name: "avx2::spmm_qs8_1x16c4",
        isa: Isa::Avx2,
        // Scratch for one pixel's activations widened to 4 × i16 per input-channel group.
        tile: 2,
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

/// One activation row's 4-channel groups widened to i16 domain values (`xor` maps the stored
/// bytes to the packing's domain), group `q` as words `2q` (channels 0, 1) and `2q + 1`
/// (channels 2, 3): word pairs, because the scratch is only 4-byte aligned (a thread's share
/// of an operator's scratch). `row16` holds `2·⌈len/4⌉` words; a partial last group is
/// zero-padded.
#[inline(always)]
pub(super) fn widen_row_i16(row: &[i8], xor: u8, row16: &mut [u32]) {
    for (q, w) in row16.chunks_exact_mut(2).enumerate() {
        let mut v = [0u16; 4];
        for (j, v) in v.iter_mut().enumerate() {
            *v = row.get(4 * q + j).map_or(0, |&x| (x as u8 ^ xor) as i8) as i16 as u16;
        }
        w[0] = v[0] as u32 | (v[1] as u32) << 16;
        w[1] = v[2] as u32 | (v[3] as u32) << 16;
    }
}

/// The sums of 16×4 block row `g` over one row widened by [`widen_row_i16`]: channels
/// `16g..16g + 8` and `16g + 8..16g + 16`, in channel order (`vpmaddwd` on i16 pairs: exact).
/// Called from AVX2 kernels only.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) fn block_row_sums(p: &PackedI8, row16: &[u32], g: usize) -> [__m256i; 2] {
    let (s, e) = (p.block_ptr[g] as usize, p.block_ptr[g + 1] as usize);
    // acc[j]: channels 4j..4j + 4, two partial sums each.
    let mut acc = [_mm256_setzero_si256(); 4];
    for b in s..e {
        let q = 2 * p.k4[b] as usize;
        let x = _mm256_set1_epi64x(bytemuck::pod_read_unaligned::<u64>(bytemuck::cast_slice(
            &row16[q..q + 2],
        )) as i64);
        let w: &[i32; 16] = p.w[b * 16..][..16].try_into().unwrap();
        for (j, acc) in acc.iter_mut().enumerate() {
            // SAFETY: 16 bytes = words 4j..4j + 4 of the block.
            let wb = unsafe { _mm_loadu_si128(w.as_ptr().add(4 * j) as *const _) };
            let prod = _mm256_madd_epi16(_mm256_cvtepi8_epi16(wb), x);
            *acc = _mm256_add_epi32(*acc, prod);
        }
    }
    // Pair sums of channels 8h..8h + 8, back in channel order.
    let lo = _mm256_hadd_epi32(acc[0], acc[1]);
    let hi = _mm256_hadd_epi32(acc[2], acc[3]);
    [
        _mm256_permute4x64_epi64::<0b11_01_10_00>(lo),
        _mm256_permute4x64_epi64::<0b11_01_10_00>(hi),
    ]
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
/// AVX2; `scratch` holds at least 2·K/4 words (`run` checked `scratch_len` with tile 2).
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
    let (k, n) = (p.k, p.n);
    let k4n = k.div_ceil(4);
    let row16 = &mut scratch[..2 * k4n];
    let nb = p.block_ptr.len() - 1;
    let (zp, lo, hi) = (
        _mm256_set1_epi32(rq.zero_point()),
        _mm256_set1_epi32(rq.min()),
        _mm256_set1_epi32(rq.max()),
    );
    for r in 0..m {
        widen_row_i16(&a[r * a_stride..][..k], p.xor, row16);
        let y = &mut out[r * out_stride..][..n];
        for g in 0..nb {
            let sums = block_row_sums(p, row16, g);
            for (half, &sum) in sums.iter().enumerate() {
                let c0 = g * 16 + 8 * half;
                let (mut mult, mut shift) = ([0i32; 8], [0i32; 8]);
                for i in 0..8 {
                    (mult[i], shift[i]) = rq.channel((c0 + i).min(n - 1));
                }
                // SAFETY: 8 words each; `c` has ceil(N/16)·16 entries.
                let (mv, sv, cv) = unsafe {
                    (
                        _mm256_loadu_si256(mult.as_ptr() as *const _),
                        _mm256_loadu_si256(shift.as_ptr() as *const _),
                        _mm256_loadu_si256(p.c.as_ptr().add(c0) as *const _),
                    )
                };
                let zero = _mm256_setzero_si256();
                let lsh = _mm256_max_epi32(sv, zero);
                let rsh = _mm256_max_epi32(_mm256_sub_epi32(zero, sv), zero);
                let v = requant8(_mm256_add_epi32(sum, cv), mv, lsh, rsh, zp, lo, hi);
                let bytes = low_bytes8(v).to_le_bytes();
                for (i, &b) in bytes.iter().enumerate() {
                    if let Some(y) = y.get_mut(c0 + i) {
                        *y = b as i8;
                    }
                }
            }
        }
    }
}
