//! AVX-512 VNNI raw-accumulator entries of the int8 sparse kernels (`PackedI8::run_acc`): the
//! loops of `spmm_avx512.rs` (the same activation packing and `vpdpbusd` sums, in the unsigned
//! domain the packing chose for those kernels), ending in int32 stores of `c + Σ` instead of the
//! requantization.
//!
//! Chosen only for packings of an AVX-512 VNNI kernel, which packing refuses unless that tier is
//! enabled; the safe wrappers rely on that and on `run_acc` having checked every slice length,
//! stride, the column range (whole 16-channel blocks for `16x4`) and the scratch size.

use std::arch::x86_64::*;
use std::ops::Range;

use super::acc::SpmmI8AccKernel;
use super::avx512::{channel_sums_1x4, dot_pass, dot_span, pack_i8, I8_TILE};
use super::PackedI8;

pub(super) static SPMM_I8_1X4_ACC: SpmmI8AccKernel = SpmmI8AccKernel {
    name: "avx512vnni::spmm_qu8s8_64x1c4_acc",
    words_per_k4: I8_TILE,
    only_partial: false,
    slack: 16,
    run: spmm_i8_1x4_acc,
};

pub(super) static SPMM_I8_16X4_ACC: SpmmI8AccKernel = SpmmI8AccKernel {
    name: "avx512vnni::spmm_qu8s8_4x16c4_acc",
    words_per_k4: I8_TILE,
    only_partial: true,
    slack: 0,
    run: spmm_i8_16x4_acc,
};

#[allow(clippy::too_many_arguments)]
fn spmm_i8_1x4_acc(
    p: &PackedI8,
    a: &[i8],
    a_stride: usize,
    m: usize,
    cols: Range<usize>,
    acc: &mut [i32],
    acc_stride: usize,
    scratch: &mut [u32],
) {
    let (a, acc, scratch) = (a.as_ptr(), acc.as_mut_ptr(), scratch.as_mut_ptr());
    // Gather indices are i32 word offsets.
    if m <= ROWS_GATHER && p.k.div_ceil(4) <= i32::MAX as usize {
        // SAFETY: chosen only when AVX-512 VNNI is enabled; `run_acc` checked lengths and
        // scratch (≥ K4 words); K4 fits the gather indices.
        unsafe { i8_1x4_rows_impl(p, a, a_stride, m, cols, acc, acc_stride, scratch) }
    } else {
        // SAFETY: chosen only when AVX-512 VNNI is enabled; `run_acc` checked lengths and
        // scratch.
        unsafe { i8_1x4_acc_impl(p, a, a_stride, m, cols, acc, acc_stride, scratch) }
    }
}

/// Up to this many rows the 1×4 entry runs row by row with gathers (lanes over a channel's
/// blocks) rather than on 64-pixel tiles, whose lanes few rows leave idle.
const ROWS_GATHER: usize = 1;

/// Rows one at a time: the row's activations as ⌈K/4⌉ words (`^ xor`, zero-padded) in the
/// scratch, then per channel its blocks 16 at a time — the activation words gathered by the
/// blocks' `k4`, one `vpdpbusd` with the blocks' weight words — and a horizontal sum.
///
/// # Safety
/// AVX-512 VNNI; as `i8_1x4_acc_impl`, and ⌈K/4⌉ ≤ `i32::MAX`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
#[allow(clippy::too_many_arguments)]
unsafe fn i8_1x4_rows_impl(
    p: &PackedI8,
    a: *const i8,
    a_stride: usize,
    m: usize,
    cols: Range<usize>,
    acc: *mut i32,
    acc_stride: usize,
    scratch: *mut u32,
) {
    let xw = scratch;
    for r in 0..m {
        // SAFETY: row r < m in bounds; `scratch` holds at least K4 words.
        unsafe { pack_i8(p.xor, a.add(r * a_stride), a_stride, 1, p.k, xw, false) };
        for ch in cols.clone() {
            let (s, e) = (p.block_ptr[ch] as usize, p.block_ptr[ch + 1] as usize);
            let mut v = _mm512_setzero_si512();
            let mut i = s;
            // SAFETY: blocks i..i + 16 ≤ e exist in `k4` and `w`; every k4 < K4, so the gathered
            // words lie within the packed row.
            unsafe {
                while i + 16 <= e {
                    let idx = _mm512_loadu_si512(p.k4.as_ptr().add(i) as *const _);
                    let x = _mm512_i32gather_epi32::<4>(idx, xw as *const _);
                    let w = _mm512_loadu_si512(p.w.as_ptr().add(i) as *const _);
                    v = _mm512_dpbusd_epi32(v, x, w);
                    i += 16;
                }
                if i < e {
                    let mask: __mmask16 = ((1u32 << (e - i)) - 1) as __mmask16;
                    let idx = _mm512_maskz_loadu_epi32(mask, p.k4.as_ptr().add(i) as *const _);
                    let x = _mm512_mask_i32gather_epi32::<4>(
                        _mm512_setzero_si512(),
                        mask,
                        idx,
                        xw as *const _,
                    );
                    let w = _mm512_maskz_loadu_epi32(mask, p.w.as_ptr().add(i));
                    v = _mm512_dpbusd_epi32(v, x, w);
                }
            }
            let sum = _mm512_reduce_add_epi32(v).wrapping_add(p.c[ch]);
            // SAFETY: row r < m, column ch − cols.start < cols.len() ≤ acc_stride.
            unsafe { *acc.add(r * acc_stride + ch - cols.start) = sum };
        }
    }
}

/// # Safety
/// AVX-512 VNNI; `a` holds `m` rows of K at `a_stride`, `acc` `m` rows of `cols.len()` at
/// `acc_stride`; `scratch` holds `I8_TILE · ⌈K/4⌉ + 16` words; `cols` within N.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
#[allow(clippy::too_many_arguments)]
unsafe fn i8_1x4_acc_impl(
    p: &PackedI8,
    a: *const i8,
    a_stride: usize,
    m: usize,
    cols: Range<usize>,
    acc: *mut i32,
    acc_stride: usize,
    scratch: *mut u32,
) {
    const P: usize = I8_TILE;
    // SAFETY: scratch = P·K4 + 16 words: up to 15 to a 64-byte boundary (each vector load of
    // the tile within one cache line), then the tile.
    let ap = unsafe { scratch.add(scratch.align_offset(64).min(15)) };
    let mut m0 = 0;
    while m0 < m {
        let pt = (m - m0).min(P);
        // SAFETY: rows m0..m0 + pt in bounds; `ap` holds K4·P words.
        unsafe { pack_i8(p.xor, a.add(m0 * a_stride), a_stride, pt, p.k, ap, true) };
        // SAFETY: accumulator rows m0..m0 + pt exist.
        let o = unsafe { acc.add(m0 * acc_stride) };
        // SAFETY: AVX-512 VNNI; the packed tile as sized above; packed k4 < K4; `o` as above.
        unsafe {
            match pt.div_ceil(16) {
                1 => channels_acc::<1>(p, ap, &cols, pt, o, acc_stride),
                2 => channels_acc::<2>(p, ap, &cols, pt, o, acc_stride),
                3 => channels_acc::<3>(p, ap, &cols, pt, o, acc_stride),
                _ => channels_acc::<4>(p, ap, &cols, pt, o, acc_stride),
            }
        }
        m0 += P;
    }
}

/// Channels `cols` on `NV` vectors of 16 pixels: `o[px·stride + (n − cols.start)] = c[n] +
/// Σ_blocks dot4(ap[k4][px], w)` for pixels `px < pt`.
///
/// # Safety
/// AVX-512 VNNI; `ap` holds K4 rows of `I8_TILE` words and the packed `k4` are below K4; `o`
/// holds `pt` rows of `cols.len()` at `stride`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
#[inline]
unsafe fn channels_acc<const NV: usize>(
    p: &PackedI8,
    ap: *const u32,
    cols: &Range<usize>,
    pt: usize,
    o: *mut i32,
    stride: usize,
) {
    const P: usize = I8_TILE;
    let mut lanes = [0i32; P];
    for ch in cols.clone() {
        // SAFETY: as this function's contract (`ap` holds the tile, `k4` below K4).
        let acc = unsafe { channel_sums_1x4::<NV>(p, ap, ch) };
        let c = _mm512_set1_epi32(p.c[ch]);
        for (v, &acc) in acc.iter().enumerate() {
            let y = _mm512_add_epi32(acc, c);
            // SAFETY: lanes 16v..16v + 16 ≤ P of `lanes`.
            unsafe { _mm512_storeu_si512(lanes.as_mut_ptr().add(16 * v) as *mut _, y) };
        }
        let col = ch - cols.start;
        for (px, &v) in lanes.iter().enumerate().take(pt) {
            // SAFETY: px < pt rows, column `col` < cols.len() ≤ stride.
            unsafe { *o.add(px * stride + col) = v };
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn spmm_i8_16x4_acc(
    p: &PackedI8,
    a: &[i8],
    a_stride: usize,
    m: usize,
    cols: Range<usize>,
    acc: &mut [i32],
    acc_stride: usize,
    scratch: &mut [u32],
) {
    // SAFETY: chosen only when AVX-512 VNNI is enabled; `run_acc` checked lengths, the column
    // range (whole blocks) and scratch.
    unsafe {
        i8_16x4_acc_impl(
            p,
            a.as_ptr(),
            a_stride,
            m,
            cols,
            acc.as_mut_ptr(),
            acc_stride,
            scratch.as_mut_ptr(),
        )
    }
}

/// # Safety
/// As `i8_1x4_acc_impl`, and `cols.start` a multiple of 16.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
#[allow(clippy::too_many_arguments)]
unsafe fn i8_16x4_acc_impl(
    p: &PackedI8,
    a: *const i8,
    a_stride: usize,
    m: usize,
    cols: Range<usize>,
    acc: *mut i32,
    acc_stride: usize,
    scratch: *mut u32,
) {
    const P: usize = I8_TILE;
    let k4n = p.k.div_ceil(4);
    // Whole words per row: activations are read in place (`^ xor` in registers); else the tile
    // is copied into whole, zero-padded words first.
    let direct = p.k.is_multiple_of(4);
    let flip = u32::from_ne_bytes([p.xor; 4]);
    let (g0, g1) = (cols.start / 16, cols.end.div_ceil(16));
    let mut m0 = 0;
    while m0 < m {
        let pt = (m - m0).min(P);
        let (base, stride, flip) = if direct {
            // SAFETY: row m0 < m.
            (unsafe { a.add(m0 * a_stride) } as *const u8, a_stride, flip)
        } else {
            // SAFETY: rows m0..m0 + pt in bounds; `scratch` holds P·K4 words.
            unsafe {
                pack_i8(
                    p.xor,
                    a.add(m0 * a_stride),
                    a_stride,
                    pt,
                    p.k,
                    scratch,
                    false,
                )
            };
            (scratch as *const u8, k4n * 4, 0)
        };
        // SAFETY: accumulator rows m0..m0 + pt exist.
        let o = unsafe { acc.add(m0 * acc_stride) };
        let mut g = g0;
        while g < g1 {
            // SAFETY: block rows g (and g + 1 < g1 when paired) exist and lie within `cols`.
            unsafe {
                if p.paired[g] && g + 1 < g1 {
                    span_acc::<2>(p, g, base, stride, pt, flip, o, acc_stride, &cols);
                    g += 2;
                } else {
                    span_acc::<1>(p, g, base, stride, pt, flip, o, acc_stride, &cols);
                    g += 1;
                }
            }
        }
        m0 += P;
    }
}

/// `G` block rows (16·G channels, the same blocks when `G = 2`) from block row `g`, pixels
/// `0..pt` of the tile at `base` (rows `stride` bytes apart, `^ flip` in registers): `c + Σ`
/// stored to `o` (rows `acc_stride` apart, column `n − cols.start`), channels within `cols`.
///
/// # Safety
/// AVX-512 VNNI; block rows `g..g + G` exist, start at or after `cols.start` and before
/// `cols.end`, and share their blocks' `k4` when `G = 2`; every row `< pt` at `base` is readable
/// for 4 bytes at every block's `4·k4`; `o` holds `pt` rows of `cols.len()` at `acc_stride`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
#[allow(clippy::too_many_arguments)]
unsafe fn span_acc<const G: usize>(
    p: &PackedI8,
    g: usize,
    base: *const u8,
    stride: usize,
    pt: usize,
    flip: u32,
    o: *mut i32,
    acc_stride: usize,
    cols: &Range<usize>,
) {
    let (s, e) = (p.block_ptr[g] as usize, p.block_ptr[g + 1] as usize);
    let mut c = [_mm512_setzero_si512(); G];
    let mut mask = [0 as __mmask16; G];
    let mut col = [0usize; G];
    let mut w0 = [0usize; G];
    for h in 0..G {
        let first = (g + h) * 16;
        // SAFETY: `c` has ⌈N/16⌉·16 entries.
        c[h] = unsafe { _mm512_loadu_si512(p.c.as_ptr().add(first) as *const _) };
        let valid = (cols.end - first).min(16);
        mask[h] = ((1u32 << valid) - 1) as __mmask16;
        col[h] = first - cols.start;
        w0[h] = p.block_ptr[g + h] as usize;
    }
    let mut px = 0;
    while px < pt {
        // SAFETY: as the caller guarantees.
        let (sums, cnt) = unsafe { dot_pass!(G, p, s, e, &w0, base, stride, px, pt, flip, &c) };
        for h in 0..G {
            for (j, &v) in sums[h].iter().enumerate().take(cnt) {
                // SAFETY: row px + j < pt; columns col..col + valid ≤ cols.len() (masked).
                unsafe {
                    _mm512_mask_storeu_epi32(o.add((px + j) * acc_stride + col[h]), mask[h], v)
                };
            }
        }
        px += 8;
    }
}
