//! `avx512::dwconv_q8_8x16` (with 4×16 and 1×16 tiles at row ends and borders): the 8-bit
//! depthwise kernel with the requantization fused in registers (the shared 16-lane `Rq16`, bit
//! for bit `Requant::apply`) instead of a separate pass over spilled accumulators. For a full
//! window the input zero point is folded into the initial value and taps go in pairs through
//! `vpdpwssd` (AVX-512 VNNI: two i16 products per i32 lane). Channel remainders use masked
//! loads and stores, so every channel count takes this path. Layout and semantics as
//! [`super::generic::q`], which handles the depth-multiplier and huge-window cases.

use super::generic::{tap_list, MAX_TAPS, PX};
use super::{check, DepthwiseQ};
use crate::arch::x86_64::avx512vnni::requant::Rq16;
use crate::gemm::Q8;
use core::arch::x86_64::*;
use std::ops::Range;

/// 8-bit depthwise for the AVX-512 tier (see [`super::DwQ`]).
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma")]
pub(super) fn q<T: Q8>(p: &DepthwiseQ, input: &[T], output: &mut [T], rows: Range<usize>) {
    let core = &p.core;
    let w = &core.win;
    if core.dm != 1 || w.h.kernel * w.w.kernel > MAX_TAPS {
        return super::generic::q(p, input, output, rows);
    }
    check(w, input, output, &rows);
    let c = w.in_c;
    let (x_lo, x_hi) = w.w.interior();
    let dx = w.w.stride * c;
    let mut list = [(0usize, 0usize); MAX_TAPS];
    let mut next = rows.start;
    for row in rows.clone() {
        let mut ox = 0;
        if let Some(f) = p.rows.as_ref().filter(|f| f.zp_fits[T::UNSIGNED as usize]) {
            if row < next {
                // The second row of a pair, done.
                continue;
            }
            if !f.w4b.is_empty() && row + 1 < rows.end && (row + 1) % w.h.output != 0 {
                // SAFETY: as below; `w4b` exists only for 3×3 windows of stride 1.
                unsafe { q_pair(p, f, input, output, row, x_lo..x_hi) };
                next = row + 2;
                continue;
            }
            // SAFETY: `Rows::new` checked that the CPU has AVX-512 VBMI and VNNI.
            unsafe { q_row(p, f, input, output, row, x_lo..x_hi) };
            continue;
        }
        while ox < w.w.output {
            let nt = tap_list(w, row, ox, &mut list);
            let taps = &list[..nt];
            let at = (row * w.w.output + ox) * c;
            if ox >= x_lo && ox + 2 * PX <= x_hi {
                tile::<T, { 2 * PX }>(p, input, &mut output[at..at + 2 * PX * c], taps, dx);
                ox += 2 * PX;
            } else if ox >= x_lo && ox + PX <= x_hi {
                tile::<T, PX>(p, input, &mut output[at..at + PX * c], taps, dx);
                ox += PX;
            } else {
                tile::<T, 1>(p, input, &mut output[at..at + c], taps, dx);
                ox += 1;
            }
        }
    }
}

/// `P` neighbouring output pixels (input offsets `dx` apart), all channels, 16 at a time.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma")]
fn tile<T: Q8, const P: usize>(
    p: &DepthwiseQ,
    input: &[T],
    out: &mut [T],
    taps: &[(usize, usize)],
    dx: usize,
) {
    let core = &p.core;
    // With the whole window inside the input the zero point is folded into the initial value.
    let full = taps.len() == core.win.h.kernel * core.win.w.kernel;
    if full {
        tile_impl::<T, P, true>(p, input, out, taps, dx)
    } else {
        tile_impl::<T, P, false>(p, input, out, taps, dx)
    }
}

/// [`tile`]; `FOLD`: every tap is inside the input (the zero point is in the initial value).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma")]
fn tile_impl<T: Q8, const P: usize, const FOLD: bool>(
    p: &DepthwiseQ,
    input: &[T],
    out: &mut [T],
    taps: &[(usize, usize)],
    dx: usize,
) {
    let core = &p.core;
    let c = core.win.in_c;
    // Every access below is within these bounds (checked once here, not per load).
    let last = taps.last().map_or(0, |&(_, io)| io + (P - 1) * dx + c);
    assert!(last <= input.len(), "depthwise tile reads past the input");
    assert!(out.len() >= P * c && core.bias.len() >= c && p.folded.len() >= c);
    assert!(p.mult.len() >= c && p.shift.len() >= c);
    assert!(taps.iter().all(|&(wo, _)| wo + c <= core.weights.len()));
    let zp = _mm512_set1_epi32(if FOLD { 0 } else { p.in_zp });
    let init = if FOLD { &p.folded } else { &core.bias };
    let mut c0 = 0;
    while c0 < c {
        let n = (c - c0).min(16);
        let m: __mmask16 = if n == 16 { 0xFFFF } else { (1u16 << n) - 1 };
        // SAFETY: lanes c0..c0 + n of bias / mult / shift exist (asserted ≥ c above); masked-off
        // lanes are not accessed.
        let (bias, mv, sv) = unsafe {
            (
                _mm512_maskz_loadu_epi32(m, init.as_ptr().add(c0)),
                _mm512_maskz_loadu_epi32(m, p.mult.as_ptr().add(c0)),
                _mm512_maskz_loadu_epi32(m, p.shift.as_ptr().add(c0)),
            )
        };
        let mut acc = [bias; P];
        if FOLD {
            // Taps in pairs: bytes of two taps interleaved per channel, widened to i16, and one
            // `vpdpwssd` adds both products (weights pre-interleaved at prepare; an odd last
            // tap is paired with itself and a zero weight).
            let pairs = taps.len().div_ceil(2);
            assert!(p.wpairs.len() >= pairs * c * 2);
            for q in 0..pairs {
                let io0 = taps[2 * q].1;
                let io1 = taps.get(2 * q + 1).map_or(io0, |t| t.1);
                // SAFETY: pair q's weights are the 2·c i16 at (q·c)·2 (asserted length above);
                // lanes c0..c0 + n (one i32 = one i16 pair per channel) are inside.
                let wv = unsafe {
                    _mm512_maskz_loadu_epi32(
                        m,
                        p.wpairs.as_ptr().add((q * c + c0) * 2) as *const i32,
                    )
                };
                for (j, a) in acc.iter_mut().enumerate() {
                    // SAFETY: as in the per-tap loop below: both taps' offsets are bounded by
                    // the last tap's, which was checked against input.len().
                    let (x0, x1) = unsafe {
                        (
                            _mm_maskz_loadu_epi8(
                                m,
                                input.as_ptr().add(io0 + j * dx + c0) as *const i8,
                            ),
                            _mm_maskz_loadu_epi8(
                                m,
                                input.as_ptr().add(io1 + j * dx + c0) as *const i8,
                            ),
                        )
                    };
                    let xx = _mm256_set_m128i(_mm_unpackhi_epi8(x0, x1), _mm_unpacklo_epi8(x0, x1));
                    let x = if T::UNSIGNED {
                        _mm512_cvtepu8_epi16(xx)
                    } else {
                        _mm512_cvtepi8_epi16(xx)
                    };
                    *a = _mm512_dpwssd_epi32(*a, x, wv);
                }
            }
        }
        for &(wo, io) in taps.iter().take(if FOLD { 0 } else { taps.len() }) {
            // SAFETY: wo + c ≤ weights.len() (asserted), so lanes c0..c0 + n are inside.
            let wv = unsafe { _mm256_maskz_loadu_epi16(m, core.weights.as_ptr().add(wo + c0)) };
            let wv = _mm512_cvtepi16_epi32(wv);
            for (j, a) in acc.iter_mut().enumerate() {
                // SAFETY: io + j·dx + c0 + n ≤ io + (P − 1)·dx + c ≤ last ≤ input.len() (taps
                // are in increasing offset order, so the last tap bounds every other one).
                let xb = unsafe {
                    _mm_maskz_loadu_epi8(m, input.as_ptr().add(io + j * dx + c0) as *const i8)
                };
                let x = if T::UNSIGNED {
                    _mm512_cvtepu8_epi32(xb)
                } else {
                    _mm512_cvtepi8_epi32(xb)
                };
                let x = if FOLD { x } else { _mm512_sub_epi32(x, zp) };
                *a = _mm512_add_epi32(*a, _mm512_mullo_epi32(x, wv));
            }
        }
        let rq = Rq16::new(mv, sv, p.rq.zero_point(), p.rq.min(), p.rq.max());
        for (j, &a) in acc.iter().enumerate() {
            let bytes = _mm512_cvtepi32_epi8(rq.apply(a));
            // SAFETY: out holds P·c elements (asserted); lanes c0..c0 + n of pixel j are inside.
            unsafe { _mm_mask_storeu_epi8(out.as_mut_ptr().add(j * c + c0) as *mut i8, m, bytes) };
        }
        c0 += n;
    }
}

/// `avx512::dwconv_f32_8x16`: f32 depthwise with 8-pixel interior tiles (8 independent FMA
/// chains per 16 channels), 4- and 1-pixel tiles elsewhere; masked channel remainders.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma")]
pub(super) fn f32(p: &super::DepthwiseF32, input: &[f32], output: &mut [f32], rows: Range<usize>) {
    let w = &p.win;
    if p.dm != 1 || w.h.kernel * w.w.kernel > MAX_TAPS {
        return super::generic::f32::<true>(p, input, output, rows);
    }
    check(w, input, output, &rows);
    let c = w.in_c;
    let (x_lo, x_hi) = w.w.interior();
    let dx = w.w.stride * c;
    let mut list = [(0usize, 0usize); MAX_TAPS];
    let (y_lo, y_hi) = w.h.interior();
    let fast = w.h.dilation == 1
        && w.w.dilation == 1
        && matches!(
            (w.h.kernel, w.w.kernel, w.w.stride),
            (3, 3, 1) | (5, 5, 1) | (3, 3, 2) | (5, 5, 2)
        );
    for row in rows {
        let mut ox = 0;
        if fast && x_lo < x_hi && (y_lo..y_hi).contains(&(row % w.h.output)) {
            match (w.h.kernel, w.w.stride) {
                (3, 1) => f32_row::<3, 3, 1>(p, input, output, row, x_lo..x_hi),
                (3, _) => f32_row::<3, 3, 2>(p, input, output, row, x_lo..x_hi),
                (_, 1) => f32_row::<5, 5, 1>(p, input, output, row, x_lo..x_hi),
                _ => f32_row::<5, 5, 2>(p, input, output, row, x_lo..x_hi),
            }
            for ox in (0..x_lo).chain(x_hi..w.w.output) {
                let nt = tap_list(w, row, ox, &mut list);
                let at = (row * w.w.output + ox) * c;
                pixel_f32(p, input, &mut output[at..at + c], &list[..nt]);
            }
            continue;
        }
        while ox < w.w.output {
            let nt = tap_list(w, row, ox, &mut list);
            let taps = &list[..nt];
            let at = (row * w.w.output + ox) * c;
            if ox >= x_lo && ox + 8 <= x_hi {
                tile_f32::<8>(p, input, &mut output[at..at + 8 * c], taps, dx);
                ox += 8;
            } else if ox >= x_lo && ox + PX <= x_hi {
                tile_f32::<PX>(p, input, &mut output[at..at + PX * c], taps, dx);
                ox += PX;
            } else {
                pixel_f32(p, input, &mut output[at..at + c], taps);
                ox += 1;
            }
        }
    }
}

/// `avx512::dwconv_f32_rows`: interior pixels `x` of an interior output row (every window
/// row inside the input), 16 channels at a time: each input column is loaded once per window
/// row and multiplied into every output pixel whose window covers it (the same taps in the same
/// order as [`tile_f32`], so the same sums).
///
/// On wide rows the pixel tiles are the outer loop and the channel blocks the inner one, so a
/// tile's input columns are read for all channels while they are in L1 (a pass of one block
/// over a 112-pixel row of 32 channels touches 43 KiB, and the next block would read the same
/// lines again from L2). Narrow rows (the 14- and 7-pixel layers) run block by block.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma")]
fn f32_row<const KH: usize, const KW: usize, const S: usize>(
    p: &super::DepthwiseF32,
    input: &[f32],
    output: &mut [f32],
    row: usize,
    x: Range<usize>,
) {
    let w = &p.win;
    let c = w.in_c;
    let (b, oy) = (row / w.h.output, row % w.h.output);
    let iy0 = oy * w.h.stride - w.h.pad_before;
    let ix0 = x.start * S - w.w.pad_before;
    let row_at = |ky: usize| ((b * w.h.input + iy0 + ky) * w.w.input + ix0) * c;
    let span = ((x.end - x.start - 1) * S + KW) * c;
    assert!(iy0 + KH <= w.h.input && (x.end - 1) * S + KW <= w.w.input + w.w.pad_before);
    assert!(
        row_at(KH - 1) + span <= input.len(),
        "depthwise row reads past the input"
    );
    let out_at = (row * w.w.output + x.start) * c;
    assert!(out_at + (x.end - x.start) * c <= output.len());
    assert!(p.weights.len() >= KH * KW * c && p.bias.len() >= c);
    let (lo, hi) = (_mm512_set1_ps(p.min), _mm512_set1_ps(p.max));
    let g = RowGeom {
        at: row_at(0),
        rs: w.w.input * c,
        c,
        out_at,
        lo,
        hi,
    };
    // Pixels per tile starting at `ox`.
    let np = |ox: usize| {
        if ox + 8 <= x.end {
            8
        } else if ox + 4 <= x.end {
            4
        } else {
            1
        }
    };
    if x.end - x.start >= 16 {
        let mut ox = x.start;
        while ox < x.end {
            let n = np(ox);
            for c0 in (0..c).step_by(16) {
                // SAFETY: the tile's columns are interior columns of rows inside the input
                // (row span asserted); its outputs lie inside the checked output row.
                unsafe { f32_tiles::<KH, KW, S>(p, input, output, &g, ox - x.start, n, c0) };
            }
            ox += n;
        }
    } else {
        for c0 in (0..c).step_by(16) {
            let mut ox = x.start;
            while ox < x.end {
                let n = np(ox);
                // SAFETY: as above.
                unsafe { f32_tiles::<KH, KW, S>(p, input, output, &g, ox - x.start, n, c0) };
                ox += n;
            }
        }
    }
}

/// Where [`f32_row`]'s tiles read and write: input offset `at` of the first window row's first
/// column, rows `rs` apart, `c` channels; output offset `out_at` of the first pixel; the clamp.
struct RowGeom {
    at: usize,
    rs: usize,
    c: usize,
    out_at: usize,
    lo: __m512,
    hi: __m512,
}

/// Channels `c0..c0 + 16` (masked to `c`) of the `n` (8, 4 or 1) pixels from pixel `px` of
/// [`f32_row`]'s interior.
///
/// # Safety
/// Pixels `px..px + n` are interior pixels of the row `g` describes (every input column read is
/// inside its window rows, every output inside the output). The CPU has the AVX-512 tier's
/// features: the caller is compiled for them, and this function is always inlined into it
/// (so the tile's instructions are, without a call per tile).
#[inline(always)]
unsafe fn f32_tiles<const KH: usize, const KW: usize, const S: usize>(
    p: &super::DepthwiseF32,
    input: &[f32],
    output: &mut [f32],
    g: &RowGeom,
    px: usize,
    n: usize,
    c0: usize,
) {
    let c = g.c;
    let k = (c - c0).min(16);
    let m: __mmask16 = if k == 16 { 0xFFFF } else { (1u16 << k) - 1 };
    // SAFETY: lanes c0..c0 + k of the bias exist (bias.len() ≥ c); masked-off lanes unread.
    let bias = unsafe { _mm512_maskz_loadu_ps(m, p.bias.as_ptr().add(c0)) };
    let at = g.at + px * S * c + c0;
    let dst = g.out_at + px * c + c0;
    let (lo, hi, rs) = (g.lo, g.hi, g.rs);
    // SAFETY: caller contract.
    unsafe {
        match (n, k == 16) {
            (8, true) => {
                f32_tile::<KH, KW, S, 8, true>(p, input, at, rs, c, m, bias, lo, hi, output, dst)
            }
            (4, true) => {
                f32_tile::<KH, KW, S, 4, true>(p, input, at, rs, c, m, bias, lo, hi, output, dst)
            }
            (_, true) => {
                f32_tile::<KH, KW, S, 1, true>(p, input, at, rs, c, m, bias, lo, hi, output, dst)
            }
            (8, false) => {
                f32_tile::<KH, KW, S, 8, false>(p, input, at, rs, c, m, bias, lo, hi, output, dst)
            }
            (4, false) => {
                f32_tile::<KH, KW, S, 4, false>(p, input, at, rs, c, m, bias, lo, hi, output, dst)
            }
            _ => f32_tile::<KH, KW, S, 1, false>(p, input, at, rs, c, m, bias, lo, hi, output, dst),
        }
    }
}

/// A 16-lane load: plain when `FULL` (all 16 lanes in bounds), else masked by `m`.
///
/// # Safety
/// The lanes of `m` (all 16 when `FULL`) are readable at `ptr`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn ld_ps<const FULL: bool>(m: __mmask16, ptr: *const f32) -> __m512 {
    // SAFETY: caller contract.
    unsafe {
        if FULL {
            _mm512_loadu_ps(ptr)
        } else {
            _mm512_maskz_loadu_ps(m, ptr)
        }
    }
}

/// A 16-lane store: plain when `FULL`, else masked by `m`.
///
/// # Safety
/// The lanes of `m` (all 16 when `FULL`) are writable at `ptr`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn st_ps<const FULL: bool>(ptr: *mut f32, m: __mmask16, v: __m512) {
    // SAFETY: caller contract.
    unsafe {
        if FULL {
            _mm512_storeu_ps(ptr, v)
        } else {
            _mm512_mask_storeu_ps(ptr, m, v)
        }
    }
}

/// `P` pixels × 16 channels of [`f32_row`]: input element offset `at` (first window row, first
/// column), rows `rs` apart, columns `c` apart; output offset `dst`.
///
/// # Safety
/// Every input element read (`at + ky·rs + i·c + lane`, lanes of `m`) and output element written
/// (`dst + j·c + lane`) is in bounds.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn f32_tile<
    const KH: usize,
    const KW: usize,
    const S: usize,
    const P: usize,
    const FULL: bool,
>(
    p: &super::DepthwiseF32,
    input: &[f32],
    at: usize,
    rs: usize,
    c: usize,
    m: __mmask16,
    bias: __m512,
    lo: __m512,
    hi: __m512,
    output: &mut [f32],
    dst: usize,
) {
    let c0 = dst % c;
    let mut acc = [bias; P];
    for ky in 0..KH {
        let mut wk = [_mm512_setzero_ps(); KW];
        for (kx, v) in wk.iter_mut().enumerate() {
            // SAFETY: tap (ky, kx) < KH·KW, channels c0..c0 + n inside (caller asserted).
            *v = unsafe { ld_ps::<FULL>(m, p.weights.as_ptr().add((ky * KW + kx) * c + c0)) };
        }
        if S > 1 {
            // Stride 2: tap by tap over the pixels (independent FMA chains side by side; in
            // column order each pixel's taps would run back to back). Each pixel still sums
            // window row by row, column by column.
            for (kx, &wv) in wk.iter().enumerate() {
                for (j, a) in acc.iter_mut().enumerate() {
                    let i = j * S + kx;
                    // SAFETY: caller contract.
                    let xv = unsafe { ld_ps::<FULL>(m, input.as_ptr().add(at + ky * rs + i * c)) };
                    *a = _mm512_fmadd_ps(xv, wv, *a);
                }
            }
            continue;
        }
        for i in 0..(P - 1) * S + KW {
            // SAFETY: caller contract.
            let xv = unsafe { ld_ps::<FULL>(m, input.as_ptr().add(at + ky * rs + i * c)) };
            for (kx, &wv) in wk.iter().enumerate() {
                if i >= kx && (i - kx) % S == 0 && (i - kx) / S < P {
                    let j = (i - kx) / S;
                    acc[j] = _mm512_fmadd_ps(xv, wv, acc[j]);
                }
            }
        }
    }
    for (j, &a) in acc.iter().enumerate() {
        let v = _mm512_min_ps(_mm512_max_ps(a, lo), hi);
        // SAFETY: caller contract.
        unsafe { st_ps::<FULL>(output.as_mut_ptr().add(dst + j * c), m, v) };
    }
}

/// One output pixel (taps as [`tap_list`] gives them), 64 channels per pass: four independent
/// FMA chains instead of one, each channel's taps in the same order as [`tile_f32`].
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma")]
fn pixel_f32(p: &super::DepthwiseF32, input: &[f32], out: &mut [f32], taps: &[(usize, usize)]) {
    let c = p.win.in_c;
    let last = taps.last().map_or(0, |&(_, io)| io + c);
    assert!(last <= input.len(), "depthwise pixel reads past the input");
    assert!(out.len() >= c && p.bias.len() >= c);
    assert!(taps.iter().all(|&(wo, _)| wo + c <= p.weights.len()));
    let (lo, hi) = (_mm512_set1_ps(p.min), _mm512_set1_ps(p.max));
    let mut c0 = 0;
    while c0 + 64 <= c {
        // SAFETY: c0 + 64 ≤ c ≤ bias.len().
        let mut acc: [__m512; 4] =
            std::array::from_fn(|k| unsafe { _mm512_loadu_ps(p.bias.as_ptr().add(c0 + 16 * k)) });
        for &(wo, io) in taps {
            for (k, a) in acc.iter_mut().enumerate() {
                // SAFETY: wo + c ≤ weights.len() and io + c ≤ input.len() (asserted), and
                // c0 + 16k + 16 ≤ c.
                let (wv, x) = unsafe {
                    (
                        _mm512_loadu_ps(p.weights.as_ptr().add(wo + c0 + 16 * k)),
                        _mm512_loadu_ps(input.as_ptr().add(io + c0 + 16 * k)),
                    )
                };
                *a = _mm512_fmadd_ps(x, wv, *a);
            }
        }
        for (k, &a) in acc.iter().enumerate() {
            let v = _mm512_min_ps(_mm512_max_ps(a, lo), hi);
            // SAFETY: c0 + 16k + 16 ≤ c ≤ out.len().
            unsafe { _mm512_storeu_ps(out.as_mut_ptr().add(c0 + 16 * k), v) };
        }
        c0 += 64;
    }
    if c0 < c {
        // The last < 64 channels, 16 at a time.
        tile_f32_part(p, input, out, taps, c0, c - c0);
    }
}

/// Channels `c0..c0 + n` of one pixel, 16 at a time.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma")]
fn tile_f32_part(
    p: &super::DepthwiseF32,
    input: &[f32],
    out: &mut [f32],
    taps: &[(usize, usize)],
    c0: usize,
    n: usize,
) {
    let last = taps.last().map_or(0, |&(_, io)| io + c0 + n);
    assert!(last <= input.len() && out.len() >= c0 + n && c0 + n <= p.bias.len());
    assert!(taps.iter().all(|&(wo, _)| wo + c0 + n <= p.weights.len()));
    let (lo, hi) = (_mm512_set1_ps(p.min), _mm512_set1_ps(p.max));
    let mut k = 0;
    while k < n {
        let m: __mmask16 = if n - k >= 16 {
            0xFFFF
        } else {
            (1u16 << (n - k)) - 1
        };
        // SAFETY: lanes k..k + 16 under m are below n (asserted bounds above).
        let mut a = unsafe { _mm512_maskz_loadu_ps(m, p.bias.as_ptr().add(c0 + k)) };
        for &(wo, io) in taps {
            // SAFETY: as above.
            let (wv, x) = unsafe {
                (
                    _mm512_maskz_loadu_ps(m, p.weights.as_ptr().add(wo + c0 + k)),
                    _mm512_maskz_loadu_ps(m, input.as_ptr().add(io + c0 + k)),
                )
            };
            a = _mm512_fmadd_ps(x, wv, a);
        }
        let v = _mm512_min_ps(_mm512_max_ps(a, lo), hi);
        // SAFETY: as above.
        unsafe { _mm512_mask_storeu_ps(out.as_mut_ptr().add(c0 + k), m, v) };
        k += 16;
    }
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma")]
fn tile_f32<const P: usize>(
    p: &super::DepthwiseF32,
    input: &[f32],
    out: &mut [f32],
    taps: &[(usize, usize)],
    dx: usize,
) {
    let c = p.win.in_c;
    // Every access below is within these bounds (checked once here, not per load).
    let last = taps.last().map_or(0, |&(_, io)| io + (P - 1) * dx + c);
    assert!(last <= input.len(), "depthwise tile reads past the input");
    assert!(out.len() >= P * c && p.bias.len() >= c);
    assert!(taps.iter().all(|&(wo, _)| wo + c <= p.weights.len()));
    let (lo, hi) = (_mm512_set1_ps(p.min), _mm512_set1_ps(p.max));
    let mut c0 = 0;
    while c0 < c {
        let n = (c - c0).min(16);
        let m: __mmask16 = if n == 16 { 0xFFFF } else { (1u16 << n) - 1 };
        // SAFETY: lanes c0..c0 + n of the bias exist (asserted ≥ c); masked-off lanes are not read.
        let bias = unsafe { _mm512_maskz_loadu_ps(m, p.bias.as_ptr().add(c0)) };
        let mut acc = [bias; P];
        for &(wo, io) in taps {
            // SAFETY: wo + c ≤ weights.len() (asserted), so lanes c0..c0 + n are inside.
            let wv = unsafe { _mm512_maskz_loadu_ps(m, p.weights.as_ptr().add(wo + c0)) };
            for (j, a) in acc.iter_mut().enumerate() {
                // SAFETY: io + j·dx + c0 + n ≤ last ≤ input.len() (taps in increasing offset
                // order; the last tap's offset bounds the others).
                let x = unsafe { _mm512_maskz_loadu_ps(m, input.as_ptr().add(io + j * dx + c0)) };
                *a = _mm512_fmadd_ps(x, wv, *a);
            }
        }
        for (j, &a) in acc.iter().enumerate() {
            // TFLite's min(max(x, lo), hi).
            let v = _mm512_min_ps(_mm512_max_ps(a, lo), hi);
            // SAFETY: out holds P·c floats (asserted); lanes c0..c0 + n of pixel j are inside.
            unsafe { _mm512_mask_storeu_ps(out.as_mut_ptr().add(j * c + c0), m, v) };
        }
        c0 += n;
    }
}

/// Prepared data of `avx512::dwconv_q8_rows_vbmi` (see [`q_rows`]): 3×3 and 5×5 windows,
/// dilation 1, horizontal stride 1 or 2, weights within `i8` (every int8 model; uint8 models
/// when `w − zw` fits), on CPUs with AVX-512 VBMI.
#[derive(Clone, Debug)]
pub(super) struct Rows {
    kh: usize,
    kw: usize,
    stride: usize,
    /// Weights of rows `4g .. 4g + 4` of column `kx` as 4 bytes per channel (rows past the
    /// window are 0): `[g][kx][cpad][4]`, `cpad` = channels rounded up to 16.
    w4: Vec<i8>,
    /// For 3×3 windows of stride 1 (both axes, weights within i8): the weights of the second
    /// row of a pair of output rows, which reads window rows 1..4 of the 4 gathered for both,
    /// as `[0, w0, w1, w2]` per channel: `[kx][cpad][4]` (else empty).
    w4b: Vec<i8>,
    /// Weights beyond i8 (uint8 models): window rows go in pairs of i16 instead
    /// (`[g][kx][cpad][2]` i16 in the same bytes, `vpdpwssd`).
    wide: bool,
    /// `bias − (zx + 128)·Σw` (int8 input, read as `x + 128`) and `bias − zx·Σw` (uint8 input),
    /// `[cpad]` each.
    folded: [Vec<i32>; 2],
    /// Requantization multipliers and left shifts, `[cpad]`.
    mult: Vec<i32>,
    lsh: Vec<i32>,
    /// `e − 1` (`e` = the right shift, at least 1) per channel, `[cpad]`, for the fast
    /// requantization's second shift (see [`Rq64::round`]).
    rsh1: Vec<i32>,
    any_lsh: bool,
    /// Every channel shifts right (`e ≥ 1`): odd lanes can shift by `31 + e − 32` and keep
    /// their result in the high dword (a blend instead of a shuffle).
    all_right: bool,
    /// Per 16-channel block, the 64-bit rounding constants of [`Rq64`]:
    /// `[block][add, sub, shift, shift − 32][even, odd channels][8]`.
    rq64: Vec<i64>,
    /// One input row of the input zero point (`in_w · in_c` bytes), read for window rows in
    /// the padding.
    zp_row: Vec<u8>,
    /// The input zero point fits this type (only then do the zero-point bytes mean it).
    zp_fits: [bool; 2],
    /// Per input type (int8, uint8): `|folded| + 255·Σ|w| < 2^31` for every channel, so the
    /// i32 sum `folded + Σ x·w` never wraps and `folded·m` may join the 64-bit rounding
    /// constant instead of seeding the accumulators (see [`Rq64::new`]).
    init_in_k: [bool; 2],
}

impl Rows {
    /// `None` when the shape or the CPU does not fit this kernel.
    pub(super) fn new(
        core: &super::generic::QCore,
        in_zp: i32,
        rq: &crate::requant::Requant,
    ) -> Option<Rows> {
        let w = &core.win;
        let (kh, kw, stride) = (w.h.kernel, w.w.kernel, w.w.stride);
        let shape_ok = matches!(
            (kh, kw, stride),
            (3, 3, 1) | (3, 3, 2) | (5, 5, 1) | (5, 5, 2)
        );
        if core.dm != 1 || w.h.dilation != 1 || w.w.dilation != 1 || !shape_ok {
            return None;
        }
        if !(std::arch::is_x86_feature_detected!("avx512vbmi") && crate::Isa::Avx512Vnni.enabled())
        {
            return None;
        }
        let wide = core.weights.iter().any(|&v| !(-128..=127).contains(&v));
        let c = w.out_c;
        let cpad = c.div_ceil(16) * 16;
        // Window rows per group: 4 bytes or 2 i16 per channel, 4 bytes either way.
        let per = if wide { 2 } else { 4 };
        let groups = kh.div_ceil(per);
        let mut w4 = vec![0i8; groups * kw * cpad * 4];
        let mut sum = vec![0i32; cpad];
        let mut abs = vec![0i64; cpad];
        for ky in 0..kh {
            for kx in 0..kw {
                let tap = &core.weights[(ky * kw + kx) * c..][..c];
                for (ch, &v) in tap.iter().enumerate() {
                    let at = ((ky / per * kw + kx) * cpad + ch) * 4;
                    if wide {
                        let [lo, hi] = v.to_le_bytes();
                        w4[at + ky % 2 * 2] = lo as i8;
                        w4[at + ky % 2 * 2 + 1] = hi as i8;
                    } else {
                        w4[at + ky % 4] = v as i8;
                    }
                    sum[ch] += v as i32;
                    abs[ch] += (v as i64).abs();
                }
            }
        }
        let mut w4b = Vec::new();
        if !wide && (kh, kw, stride, w.h.stride) == (3, 3, 1, 1) {
            w4b = vec![0i8; kw * cpad * 4];
            for (i, b) in w4b.iter_mut().enumerate() {
                // Byte k of channel ch at column kx holds window row k − 1 (byte 0 is 0).
                let (k, ch, kx) = (i % 4, i / 4 % cpad, i / 4 / cpad);
                if k > 0 {
                    *b = w4[(kx * cpad + ch) * 4 + k - 1];
                }
            }
        }
        let fold = |off: i32| -> Vec<i32> {
            (0..cpad)
                .map(|ch| {
                    let b = core.bias.get(ch).copied().unwrap_or(0);
                    b.wrapping_sub(off.wrapping_mul(sum[ch]))
                })
                .collect()
        };
        let (mut mult, mut shift): (Vec<i32>, Vec<i32>) = (0..c).map(|ch| rq.channel(ch)).unzip();
        if mult.contains(&i32::MIN) {
            // The one saturating case of SaturatingRoundingDoublingHighMul; never produced
            // from a real scale, left to the pixel-tile kernel.
            return None;
        }
        mult.resize(cpad, 0);
        shift.resize(cpad, 0);
        if shift.iter().any(|&s| s < -22) || rq.zero_point().unsigned_abs() > 256 {
            // The zero point is added inside the 64-bit sums below (|zp|·2^(31+e) ≤ 2^61
            // needs e ≤ 22 and |zp| ≤ 256 to stay clear of overflow); such tiny scales and
            // zero points outside 8 bits are left to the pixel-tile kernel.
            return None;
        }
        let lsh: Vec<i32> = shift.iter().map(|&s| s.max(0)).collect();
        let zp = rq.zero_point() as i64;
        let mut rq64 = vec![0i64; cpad / 16 * RQ64_BLOCK];
        for (ch, &s) in shift.iter().enumerate() {
            let e = (-s).max(0) as u32;
            let (blk, lane) = (ch / 16, ch % 16);
            let at = |kind: usize| ((blk * 4 + kind) * 2 + lane % 2) * 8 + lane / 2;
            rq64[at(0)] = (1 << 30) + if e > 0 { 1i64 << (30 + e) } else { 0 } + (zp << (31 + e));
            rq64[at(1)] = if e > 0 { 1 << 31 } else { 0 };
            rq64[at(2)] = 31 + e as i64;
            rq64[at(3)] = e as i64 - 1;
        }
        let folded = [fold(in_zp + 128), fold(in_zp)];
        let init_in_k = [0, 1].map(|t: usize| {
            folded[t]
                .iter()
                .zip(&abs)
                .all(|(&f, &a)| (f as i64).abs() + 255 * a < 1 << 31)
        });
        Some(Rows {
            kh,
            kw,
            stride,
            w4,
            w4b,
            wide,
            folded,
            init_in_k,
            mult,
            any_lsh: lsh.iter().any(|&v| v > 0),
            rsh1: shift.iter().map(|&s| (-s - 1).max(0)).collect(),
            all_right: shift[..c].iter().all(|&s| s < 0),
            zp_row: vec![in_zp as u8; w.w.input * c],
            zp_fits: [(-128..=127).contains(&in_zp), (0..=255).contains(&in_zp)],
            lsh,
            rq64,
        })
    }
}

/// i64 constants per 16-channel block in [`Rows::rq64`].
const RQ64_BLOCK: usize = 64;

/// Output pixels per register tile of [`row_impl`].
const RP: usize = 8;

/// Whether [`q_row`] and [`q_pair`] take the requantization's common case compiled on its own:
/// fused ReLU, every channel shifting right, the initial value carried in the rounding constant.
fn fast_rq<T: Q8>(p: &DepthwiseQ, f: &Rows) -> bool {
    f.all_right
        && !f.any_lsh
        && p.rq.min() >= p.rq.zero_point()
        && f.init_in_k[T::UNSIGNED as usize]
}

/// Interior pixels `x_lo..x_hi` of output row `row` (every window row inside the input) with
/// [`Rows`]: for each block of 16 channels, input columns are built once as 4 rows' bytes per
/// channel (`vpermt2b`) and reused by every output pixel whose window covers them, one
/// `vpdpbusd` per (column, 4 window rows).
///
/// # Safety
/// The CPU has AVX-512 VBMI (checked by [`Rows::new`]).
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx512vbmi,avx2,fma")]
unsafe fn q_row<T: Q8>(
    p: &DepthwiseQ,
    f: &Rows,
    input: &[T],
    output: &mut [T],
    row: usize,
    x: Range<usize>,
) {
    // The common case (fused ReLU, every channel shifting right) with the requantization's
    // choices made at compile time: no flag tests between the tiles' instructions.
    let fast = fast_rq::<T>(p, f);
    if fast {
        q_row_rq::<T, true>(p, f, input, output, row, x)
    } else {
        q_row_rq::<T, false>(p, f, input, output, row, x)
    }
}

/// Output rows `row` and `row + 1` (one image, 3×3 window of stride 1, [`Rows::w4b`] built)
/// at once: the 4 input rows under both windows are gathered once per column and feed both
/// rows (`[w0, w1, w2, 0]` and `[0, w0, w1, w2]`), a third fewer gathers per output than
/// [`q_row`]. Border pixels go as in [`q_row`].
///
/// # Safety
/// The CPU has AVX-512 VBMI (checked by [`Rows::new`]).
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx512vbmi,avx2,fma")]
unsafe fn q_pair<T: Q8>(
    p: &DepthwiseQ,
    f: &Rows,
    input: &[T],
    output: &mut [T],
    row: usize,
    x: Range<usize>,
) {
    let fast = fast_rq::<T>(p, f);
    if fast {
        pair_impl::<T, true>(p, f, input, output, row, x)
    } else {
        pair_impl::<T, false>(p, f, input, output, row, x)
    }
}

/// [`q_pair`] with [`Rq64::round`]'s `FAST` mode.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx512vbmi,avx2,fma")]
fn pair_impl<T: Q8, const FAST: bool>(
    p: &DepthwiseQ,
    f: &Rows,
    input: &[T],
    output: &mut [T],
    row: usize,
    x: Range<usize>,
) {
    let w = &p.core.win;
    let c = w.in_c;
    let cpad = c.div_ceil(16) * 16;
    let (b, oy) = (row / w.h.output, row % w.h.output);
    assert!(oy + 1 < w.h.output && w.h.stride == 1 && w.w.stride == 1);
    assert!(w.h.kernel == 3 && w.w.kernel == 3 && !f.wide);
    let row_len = w.w.input * c;
    assert!(f.zp_row.len() >= row_len, "depthwise zero-point row");
    // Column 0 of input rows oy − pad .. oy − pad + 4: the rows, or the zero-point row.
    let mut row0 = [f.zp_row.as_ptr(); 4];
    for (k, r) in row0.iter_mut().enumerate() {
        let iy = if k < 3 {
            w.h.input_of(oy, k)
        } else {
            w.h.input_of(oy + 1, 2)
        };
        if let Some(iy) = iy {
            let at = (b * w.h.input + iy) * row_len;
            assert!(
                at + row_len <= input.len(),
                "depthwise row reads past the input"
            );
            // SAFETY: at + row_len ≤ input.len() (asserted).
            *r = unsafe { (input.as_ptr() as *const u8).add(at) };
        }
    }
    assert!(x.start >= x.end || x.end + 2 <= w.w.input + w.w.pad_before);
    let ix0 = x.start.saturating_sub(w.w.pad_before);
    let out_row = row * w.w.output * c;
    let rs = w.w.output * c;
    assert!(out_row + 2 * rs <= output.len());
    assert!(f.w4.len() >= 3 * cpad * 4 && f.w4b.len() >= 3 * cpad * 4);
    assert!(f.mult.len() >= cpad && f.lsh.len() >= cpad);
    assert!(f.rq64.len() >= cpad / 16 * RQ64_BLOCK);
    let folded = &f.folded[T::UNSIGNED as usize];
    assert!(folded.len() >= cpad);
    let zb = if T::UNSIGNED {
        p.in_zp as u8
    } else {
        (p.in_zp as u8) ^ 0x80
    };
    let zpg = _mm512_set1_epi8(zb as i8);
    let out = output.as_mut_ptr() as *mut u8;
    let mut c0 = 0;
    while c0 < c {
        let n = (c - c0).min(16);
        let m: __mmask16 = if n == 16 { 0xFFFF } else { (1u16 << n) - 1 };
        // SAFETY: c0 + 16 ≤ cpad, and the padded arrays hold cpad lanes (asserted above).
        let init = unsafe { _mm512_loadu_si512(folded.as_ptr().add(c0) as *const _) };
        // SAFETY: as above; block c0 / 16 of rq64 is inside (asserted).
        let rq = unsafe { Rq64::new(f, c0, &p.rq, if FAST { Some(init) } else { None }) };
        let init = if FAST { _mm512_setzero_si512() } else { init };
        let mut wa = [[_mm512_setzero_si512(); 3]; 1];
        let mut wb = [_mm512_setzero_si512(); 3];
        for kx in 0..3 {
            let at = (kx * cpad + c0) * 4;
            // SAFETY: at + 64 ≤ 3·cpad·4 for both arrays (asserted above).
            unsafe {
                wa[0][kx] = _mm512_loadu_si512(f.w4.as_ptr().add(at) as *const _);
                wb[kx] = _mm512_loadu_si512(f.w4b.as_ptr().add(at) as *const _);
            }
        }
        let mut base = row0;
        for r in base.iter_mut() {
            // SAFETY: c0 < c ≤ row_len.
            *r = unsafe { r.add(c0) };
        }
        let rows_a = [base[0], base[1], base[2]];
        // A border pixel of the second row reads its own 3 window rows (rows 1..4).
        let rows_b = [base[1], base[2], base[3]];
        for ox in (0..x.start).chain(x.end..w.w.output) {
            let ix_first = ox as isize - w.w.pad_before as isize;
            for (rows, at) in [(&rows_a, out_row), (&rows_b, out_row + rs)] {
                // SAFETY: only columns inside 0..in_w of each row are read (lanes of `m`);
                // pixel ox's lanes are inside the output rows (asserted).
                unsafe {
                    edge_pixel::<T, 3, 3, 1, false, FAST>(
                        rows,
                        ix_first,
                        w.w.input,
                        c,
                        m,
                        &wa,
                        init,
                        &rq,
                        zpg,
                        out.add(at + ox * c + c0),
                    )
                };
            }
        }
        if x.start < x.end {
            let mut rows = row0;
            for r in rows.iter_mut() {
                // SAFETY: ix0·c + c0 < row_len: the interior is not empty, so its first
                // column ix0 < in_w, and c0 < c.
                *r = unsafe { r.add(ix0 * c + c0) };
            }
            let g = PairGeom {
                rows: &rows,
                c,
                m,
                wa: &wa[0],
                wb: &wb,
                init,
                rq: &rq,
                // SAFETY: out_row + c0 is inside the output (asserted above).
                out: unsafe { out.add(out_row + c0) },
                rs,
            };
            if n == 16 {
                // SAFETY: the tiles' columns are interior columns (inside every row), their
                // outputs inside the two checked output rows; all 16 lanes exist.
                unsafe { pair_interior::<T, FAST, true>(&g, x.clone()) };
            } else {
                // SAFETY: as above, lanes past n masked.
                unsafe { pair_interior::<T, FAST, false>(&g, x.clone()) };
            }
        }
        c0 += 16;
    }
}

/// What [`pair_interior`] reads and writes: the 4 window rows at the interior's first column,
/// `c` channels per column, the lanes `m`, both rows' weights, initial value, requantization,
/// and the first row's output of pixel 0 (this block's first channel), rows `rs` apart.
struct PairGeom<'a> {
    rows: &'a [*const u8; 4],
    c: usize,
    m: __mmask16,
    wa: &'a [__m512i; 3],
    wb: &'a [__m512i; 3],
    init: __m512i,
    rq: &'a Rq64,
    out: *mut u8,
    rs: usize,
}

/// Interior pixels `x` of both rows of [`q_pair`], one 16-channel block, in tiles of [`RP`],
/// `RP / 2` and 1 pixels. `FULL`: all 16 lanes (plain loads and stores).
///
/// # Safety
/// Every column of the interior is readable at `rows[k] + i·c` for the lanes of `m` (all 16
/// when `FULL`); pixel `ox` at `out + ox·c` and `out + rs + ox·c` is writable for them.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx512vbmi,avx2,fma")]
unsafe fn pair_interior<T: Q8, const FAST: bool, const FULL: bool>(
    g: &PairGeom<'_>,
    x: Range<usize>,
) {
    let c = g.c;
    let mut ox = x.start;
    while ox < x.end {
        let col = (ox - x.start) * c;
        // SAFETY: caller contract (pixel ox of the first row).
        let dst = unsafe { g.out.add(ox * c) };
        if ox + RP <= x.end {
            // SAFETY: caller contract: the tile's columns and outputs are inside.
            unsafe { tile_pair::<T, RP, FAST, FULL>(g, col, dst) };
            ox += RP;
            continue;
        }
        // The last pixels row by row (pair tiles this narrow gain nothing).
        let wa = [*g.wa];
        let (ra, rb) = (
            [g.rows[0], g.rows[1], g.rows[2]],
            [g.rows[1], g.rows[2], g.rows[3]],
        );
        let n = if ox + RP / 2 <= x.end { RP / 2 } else { 1 };
        for (rows, at) in [(&ra, 0), (&rb, g.rs)] {
            // SAFETY: caller contract: the tile's columns and outputs (of either row) are
            // inside.
            unsafe {
                let dst = dst.add(at);
                if n == RP / 2 {
                    tile_rows::<T, 3, 3, 1, 1, { RP / 2 }, false, FAST, FULL>(
                        rows, col, c, c, g.m, &wa, g.init, g.rq, dst,
                    )
                } else {
                    tile_rows::<T, 3, 3, 1, 1, 1, false, FAST, FULL>(
                        rows, col, c, c, g.m, &wa, g.init, g.rq, dst,
                    )
                }
            };
        }
        ox += n;
    }
}

/// `P` pixels of both rows of [`q_pair`] (one 16-channel block): each of the `P + 2` columns
/// gathered once from 4 rows, then requantized and stored row by row.
///
/// # Safety
/// Columns `0..P + 2` at `col + i·c` of every row pointer are readable for the lanes of `m`;
/// `out + j·c` and `out + rs + j·c` are writable for those lanes, `j < P`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx512vbmi,avx2,fma")]
unsafe fn tile_pair<T: Q8, const P: usize, const FAST: bool, const FULL: bool>(
    g: &PairGeom<'_>,
    col: usize,
    out: *mut u8,
) {
    let mut a = [g.init; P];
    let mut b = [g.init; P];
    for i in 0..P + 2 {
        // SAFETY: caller contract.
        let v = unsafe { gather::<T, 4, false, FULL>(g.rows, 0, col + i * g.c, g.m) };
        for kx in 0..3 {
            if i >= kx && i - kx < P {
                let j = i - kx;
                a[j] = _mm512_dpbusd_epi32(a[j], v, g.wa[kx]);
                b[j] = _mm512_dpbusd_epi32(b[j], v, g.wb[kx]);
            }
        }
    }
    // SAFETY: caller contract.
    unsafe {
        store_row::<T, P, FAST, FULL>(g.rq, &a, out, g.c, g.m);
        store_row::<T, P, FAST, FULL>(g.rq, &b, out.add(g.rs), g.c, g.m);
    }
}

/// Requantizes and stores `P` pixels (`c` elements apart) of one 16-channel block.
///
/// # Safety
/// `out + j·c` is writable for the lanes of `m` (all 16 when `FULL`), `j < P`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
unsafe fn store_row<T: Q8, const P: usize, const FAST: bool, const FULL: bool>(
    rq: &Rq64,
    acc: &[__m512i; P],
    out: *mut u8,
    c: usize,
    m: __mmask16,
) {
    let mut j = 0;
    while j + 4 <= P {
        let r = [
            rq.round::<FAST>(acc[j]),
            rq.round::<FAST>(acc[j + 1]),
            rq.round::<FAST>(acc[j + 2]),
            rq.round::<FAST>(acc[j + 3]),
        ];
        // SAFETY: caller contract (pixels j..j + 4 < P).
        unsafe { rq.store4::<T, FULL>(r, out.add(j * c), c, m) };
        j += 4;
    }
    while j < P {
        let bytes = rq.finish::<T>(rq.round::<FAST>(acc[j]));
        // SAFETY: caller contract.
        unsafe { _mm_mask_storeu_epi8(out.add(j * c) as *mut i8, m, bytes) };
        j += 1;
    }
}

/// [`q_row`] with [`Rq64::round`]'s `FAST` mode.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx512vbmi,avx2,fma")]
fn q_row_rq<T: Q8, const FAST: bool>(
    p: &DepthwiseQ,
    f: &Rows,
    input: &[T],
    output: &mut [T],
    row: usize,
    x: Range<usize>,
) {
    match (f.kh, f.kw, f.stride, f.wide) {
        (3, 3, 1, false) => row_impl::<T, 3, 3, 1, 1, false, FAST>(p, f, input, output, row, x),
        (3, 3, 2, false) => row_impl::<T, 3, 3, 2, 1, false, FAST>(p, f, input, output, row, x),
        (5, 5, 1, false) => row_impl::<T, 5, 5, 1, 2, false, FAST>(p, f, input, output, row, x),
        (5, 5, 2, false) => row_impl::<T, 5, 5, 2, 2, false, FAST>(p, f, input, output, row, x),
        (3, 3, 1, true) => row_impl::<T, 3, 3, 1, 2, true, FAST>(p, f, input, output, row, x),
        (3, 3, 2, true) => row_impl::<T, 3, 3, 2, 2, true, FAST>(p, f, input, output, row, x),
        (5, 5, 1, true) => row_impl::<T, 5, 5, 1, 3, true, FAST>(p, f, input, output, row, x),
        (5, 5, 2, true) => row_impl::<T, 5, 5, 2, 3, true, FAST>(p, f, input, output, row, x),
        _ => unreachable!("Rows::new admits only these shapes"),
    }
}

/// [`q_row`] for a `KH`×`KW` window (`G` = ⌈KH/4⌉ groups of window rows, ⌈KH/2⌉ when
/// `WIDE`), stride `S`.
/// Window rows in the padding read [`Rows::zp_row`] (the input zero point: a zero term, as the
/// reference's skipped taps); border pixels read their window from a stack copy with the
/// zero point in the padded columns.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx512vbmi,avx2,fma")]
fn row_impl<
    T: Q8,
    const KH: usize,
    const KW: usize,
    const S: usize,
    const G: usize,
    const WIDE: bool,
    const FAST: bool,
>(
    p: &DepthwiseQ,
    f: &Rows,
    input: &[T],
    output: &mut [T],
    row: usize,
    x: Range<usize>,
) {
    let w = &p.core.win;
    let c = w.in_c;
    let cpad = c.div_ceil(16) * 16;
    let (b, oy) = (row / w.h.output, row % w.h.output);
    let row_len = w.w.input * c;
    assert!(f.zp_row.len() >= row_len, "depthwise zero-point row");
    // Column 0 of each window row: the input row, or the zero-point row in the padding.
    let mut row0 = [f.zp_row.as_ptr(); KH];
    for (ky, r) in row0.iter_mut().enumerate() {
        if let Some(iy) = w.h.input_of(oy, ky) {
            let at = (b * w.h.input + iy) * row_len;
            assert!(
                at + row_len <= input.len(),
                "depthwise row reads past the input"
            );
            // SAFETY: at + row_len ≤ input.len() (asserted).
            *r = unsafe { (input.as_ptr() as *const u8).add(at) };
        }
    }
    // Every read below is of columns 0..in_w of those rows (the interior's columns by
    // `Axis::interior`, border columns checked one by one).
    assert!(x.start >= x.end || (x.end - 1) * S + KW <= w.w.input + w.w.pad_before);
    let ix0 = (x.start * S).saturating_sub(w.w.pad_before);
    let out_row = row * w.w.output * c;
    assert!(out_row + w.w.output * c <= output.len());
    assert!(f.w4.len() >= G * KW * cpad * 4 && f.mult.len() >= cpad && f.lsh.len() >= cpad);
    assert!(f.rq64.len() >= cpad / 16 * RQ64_BLOCK);
    let folded = &f.folded[T::UNSIGNED as usize];
    assert!(folded.len() >= cpad);
    // The gathered bytes of a padded column (as `gather` offsets int8 by 128).
    let zb = if T::UNSIGNED {
        p.in_zp as u8
    } else {
        (p.in_zp as u8) ^ 0x80
    };
    let zpg = if WIDE {
        _mm512_set1_epi16(zb as i16)
    } else {
        _mm512_set1_epi8(zb as i8)
    };
    let out = output.as_mut_ptr() as *mut u8;
    let mut c0 = 0;
    while c0 < c {
        let n = (c - c0).min(16);
        let m: __mmask16 = if n == 16 { 0xFFFF } else { (1u16 << n) - 1 };
        // SAFETY: c0 + 16 ≤ cpad, and the padded arrays hold cpad lanes (asserted above).
        let init = unsafe { _mm512_loadu_si512(folded.as_ptr().add(c0) as *const _) };
        // SAFETY: as above; block c0 / 16 of rq64 is inside (asserted).
        let rq = unsafe { Rq64::new(f, c0, &p.rq, if FAST { Some(init) } else { None }) };
        // In the fast mode the initial value is inside the rounding constant.
        let init = if FAST { _mm512_setzero_si512() } else { init };
        let mut wv = [[_mm512_setzero_si512(); KW]; G];
        for (g, wg) in wv.iter_mut().enumerate() {
            for (kx, v) in wg.iter_mut().enumerate() {
                // SAFETY: ((g·KW + kx)·cpad + c0)·4 + 64 ≤ G·KW·cpad·4 (asserted above).
                *v = unsafe {
                    _mm512_loadu_si512(
                        f.w4.as_ptr().add(((g * KW + kx) * cpad + c0) * 4) as *const _
                    )
                };
            }
        }
        // Border pixels: padded columns are the zero point's bytes.
        let mut base = row0;
        for r in base.iter_mut() {
            // SAFETY: c0 < c ≤ row_len.
            *r = unsafe { r.add(c0) };
        }
        for ox in (0..x.start).chain(x.end..w.w.output) {
            let ix_first = (ox * S) as isize - w.w.pad_before as isize;
            // SAFETY: only columns inside 0..in_w of each row are read (lanes of `m`); pixel
            // ox's lanes are inside the output row (asserted).
            unsafe {
                edge_pixel::<T, KH, KW, G, WIDE, FAST>(
                    &base,
                    ix_first,
                    w.w.input,
                    c,
                    m,
                    &wv,
                    init,
                    &rq,
                    zpg,
                    out.add(out_row + ox * c + c0),
                )
            };
        }
        if x.start >= x.end {
            c0 += 16;
            continue;
        }
        let mut rows = row0;
        for r in rows.iter_mut() {
            // SAFETY: ix0·c + c0 < row_len: the interior is not empty, so its first column
            // ix0 < in_w, and c0 < c.
            *r = unsafe { r.add(ix0 * c + c0) };
        }
        let g = Interior {
            rows: &rows,
            c,
            m,
            wv: &wv,
            init,
            rq: &rq,
            // SAFETY: out_row + c0 is inside the output row (asserted above).
            out: unsafe { out.add(out_row + c0) },
        };
        if n == 16 {
            // SAFETY: the tiles' input columns are interior columns (inside every row), and
            // their outputs within the checked output row; all 16 lanes exist.
            unsafe { interior::<T, KH, KW, S, G, WIDE, FAST, true>(&g, x.clone()) };
        } else {
            // SAFETY: as above, lanes past n masked.
            unsafe { interior::<T, KH, KW, S, G, WIDE, FAST, false>(&g, x.clone()) };
        }
        c0 += 16;
    }
}

/// What [`interior`] reads and writes: window row pointers at the interior's first column,
/// `c` channels per column, the lanes `m`, weights, initial value, requantization, and the
/// output of pixel 0 of the row (this block's first channel).
struct Interior<'a, const KH: usize, const KW: usize, const G: usize> {
    rows: &'a [*const u8; KH],
    c: usize,
    m: __mmask16,
    wv: &'a [[__m512i; KW]; G],
    init: __m512i,
    rq: &'a Rq64,
    out: *mut u8,
}

/// Interior pixels `x` of one 16-channel block in tiles of [`RP`], `RP / 2` and 1 pixels.
/// `FULL`: all 16 lanes (plain loads and stores).
///
/// # Safety
/// Every column of the interior is readable at `rows[ky] + i·c` for the lanes of `m` (all 16
/// when `FULL`), and pixel `ox` of the output row at `out + ox·c` is writable for them.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx512vbmi,avx2,fma")]
unsafe fn interior<
    T: Q8,
    const KH: usize,
    const KW: usize,
    const S: usize,
    const G: usize,
    const WIDE: bool,
    const FAST: bool,
    const FULL: bool,
>(
    g: &Interior<'_, KH, KW, G>,
    x: Range<usize>,
) {
    let c = g.c;
    let mut ox = x.start;
    while ox < x.end {
        let col = (ox - x.start) * S * c;
        // SAFETY: caller contract (pixel ox of the row).
        let dst = unsafe { g.out.add(ox * c) };
        if ox + RP <= x.end {
            // SAFETY: caller contract: the tile's columns and outputs are inside.
            unsafe {
                tile_rows::<T, KH, KW, S, G, RP, WIDE, FAST, FULL>(
                    g.rows, col, c, c, g.m, g.wv, g.init, g.rq, dst,
                )
            };
            ox += RP;
        } else if ox + RP / 2 <= x.end {
            // SAFETY: as for the full tile.
            unsafe {
                tile_rows::<T, KH, KW, S, G, { RP / 2 }, WIDE, FAST, FULL>(
                    g.rows, col, c, c, g.m, g.wv, g.init, g.rq, dst,
                )
            };
            ox += RP / 2;
        } else {
            // SAFETY: as for the full tile.
            unsafe {
                tile_rows::<T, KH, KW, S, G, 1, WIDE, FAST, FULL>(
                    g.rows, col, c, c, g.m, g.wv, g.init, g.rq, dst,
                )
            };
            ox += 1;
        }
    }
}

/// One border pixel: window columns `ix_first + kx` outside `0..in_w` are the zero point
/// (`zpg`, already gathered), the others are gathered from the rows.
///
/// # Safety
/// `rows[ky] + ix·c` is readable for the lanes of `m` for every `ix` in `0..in_w`; `out` is
/// writable for those lanes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx512vbmi,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn edge_pixel<
    T: Q8,
    const KH: usize,
    const KW: usize,
    const G: usize,
    const WIDE: bool,
    const FAST: bool,
>(
    rows: &[*const u8; KH],
    ix_first: isize,
    in_w: usize,
    c: usize,
    m: __mmask16,
    wv: &[[__m512i; KW]; G],
    init: __m512i,
    rq: &Rq64,
    zpg: __m512i,
    out: *mut u8,
) {
    let mut acc = init;
    for kx in 0..KW {
        let ix = ix_first + kx as isize;
        for (g, wg) in wv.iter().enumerate() {
            let v = if (0..in_w as isize).contains(&ix) {
                // SAFETY: caller contract (ix inside the row).
                unsafe {
                    if m == 0xFFFF {
                        gather::<T, KH, WIDE, true>(rows, g, ix as usize * c, m)
                    } else {
                        gather::<T, KH, WIDE, false>(rows, g, ix as usize * c, m)
                    }
                }
            } else {
                zpg
            };
            acc = mac::<WIDE>(acc, v, wg[kx]);
        }
    }
    let bytes = rq.finish::<T>(rq.round::<FAST>(acc));
    // SAFETY: caller contract.
    unsafe { _mm_mask_storeu_epi8(out as *mut i8, m, bytes) };
}

/// Bytes of window rows `4g..4g + 4` at column offset `at` (16 channels, lanes past `m` zero)
/// as 4 bytes per channel, int8 values offset by 128 to read as unsigned.
///
/// # Safety
/// Each `rows[ky] + at` is valid for the bytes selected by `m`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx512vbmi,avx2,fma")]
unsafe fn gather<T: Q8, const KH: usize, const WIDE: bool, const FULL: bool>(
    rows: &[*const u8; KH],
    g: usize,
    at: usize,
    m: __mmask16,
) -> __m512i {
    let per = if WIDE { 2 } else { 4 };
    let first = per * g;
    let nr = (KH - first).min(per);
    macro_rules! ld {
        ($ky:expr) => {
            // SAFETY: caller contract (row pointer + `at` readable for the lanes of `m`, all
            // 16 when `FULL`).
            unsafe {
                if FULL {
                    _mm_loadu_si128(rows[$ky].add(at) as *const __m128i)
                } else {
                    _mm_maskz_loadu_epi8(m, rows[$ky].add(at) as *const i8)
                }
            }
        };
    }
    if WIDE {
        // Two rows as zero-extended 16-bit pairs per channel (a lone row paired with 0).
        let v = if nr == 1 {
            _mm512_cvtepu8_epi32(ld!(first))
        } else {
            let a = _mm512_castsi128_si512(ld!(first));
            let b = _mm512_castsi128_si512(ld!(first + 1));
            _mm512_maskz_permutex2var_epi8(0x5555_5555_5555_5555, a, idx(&IDX2), b)
        };
        return if T::UNSIGNED {
            v
        } else {
            _mm512_xor_si512(v, _mm512_set1_epi16(0x80))
        };
    }
    let v = match nr {
        1 => _mm512_cvtepu8_epi32(ld!(first)),
        2 => {
            let a = _mm512_castsi128_si512(ld!(first));
            let b = _mm512_castsi128_si512(ld!(first + 1));
            _mm512_permutex2var_epi8(a, idx(&IDX2B), b)
        }
        3 => {
            let a = _mm512_inserti32x4(_mm512_castsi128_si512(ld!(first)), ld!(first + 2), 1);
            let b = _mm512_castsi128_si512(ld!(first + 1));
            _mm512_permutex2var_epi8(a, idx(&IDX3), b)
        }
        _ => {
            let a = _mm512_inserti32x4(_mm512_castsi128_si512(ld!(first)), ld!(first + 1), 1);
            let b = _mm512_inserti32x4(_mm512_castsi128_si512(ld!(first + 2)), ld!(first + 3), 1);
            _mm512_permutex2var_epi8(a, idx(&IDX4), b)
        }
    };
    if T::UNSIGNED {
        v
    } else {
        _mm512_xor_si512(v, _mm512_set1_epi8(-128))
    }
}

/// `vpdpwssd` (16-bit pairs) or `vpdpbusd` (4 bytes).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn mac<const WIDE: bool>(acc: __m512i, v: __m512i, w: __m512i) -> __m512i {
    if WIDE {
        _mm512_dpwssd_epi32(acc, v, w)
    } else {
        _mm512_dpbusd_epi32(acc, v, w)
    }
}

/// The `vpermt2b` index putting byte `base[k] + c` in byte `4c + k` (bytes 64.. are the
/// second operand's).
const fn make_idx(base: [u8; 4]) -> [u8; 64] {
    let mut b = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        b[i] = base[i % 4] + (i / 4) as u8;
        i += 1;
    }
    b
}

/// Two rows (a, b): `[a, b, a, a]` per channel (the last two bytes meet zero weights);
/// zero-masked to bytes 0 and 2, `[a, 0, b, 0]`: two 16-bit values.
static IDX2: [u8; 64] = make_idx([0, 0, 64, 0]);
/// Two rows (a, b) for bytes: `[a, b, a, a]`.
static IDX2B: [u8; 64] = make_idx([0, 64, 0, 0]);
/// Three rows (`a` = rows 0 | 2, `b` = row 1): `[r0, r1, r2, r0]`.
static IDX3: [u8; 64] = make_idx([0, 64, 16, 0]);
/// Four rows (`a` = rows 0 | 1, `b` = rows 2 | 3).
static IDX4: [u8; 64] = make_idx([0, 16, 64, 80]);

#[inline]
#[target_feature(enable = "avx512f")]
fn idx(b: &[u8; 64]) -> __m512i {
    // SAFETY: 64 readable bytes.
    unsafe { _mm512_loadu_si512(b.as_ptr() as *const _) }
}

/// `P` output pixels of one 16-channel block: accumulate every input column once per window
/// row group, requantize, store.
///
/// # Safety
/// Columns `0..(P − 1)·S + KW` at `col + i·cs` of every row pointer are readable for the lanes
/// of `m`; `out + j·c` is writable for those lanes, `j < P`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx512vbmi,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_rows<
    T: Q8,
    const KH: usize,
    const KW: usize,
    const S: usize,
    const G: usize,
    const P: usize,
    const WIDE: bool,
    const FAST: bool,
    const FULL: bool,
>(
    rows: &[*const u8; KH],
    col: usize,
    cs: usize,
    c: usize,
    m: __mmask16,
    wv: &[[__m512i; KW]; G],
    init: __m512i,
    rq: &Rq64,
    out: *mut u8,
) {
    let mut acc = [init; P];
    if S > 1 {
        // Stride 2: the columns gathered first, then tap by tap over the pixels, so the
        // pixels' `vpdpbusd` chains interleave (in column order each pixel's taps would run
        // back to back; 56x56x144 s2 37 -> 33 us).
        const MAX_COLS: usize = 20;
        assert!((P - 1) * S + KW <= MAX_COLS);
        let mut cols = [[_mm512_setzero_si512(); G]; MAX_COLS];
        for (i, col_v) in cols.iter_mut().enumerate().take((P - 1) * S + KW) {
            for (g, v) in col_v.iter_mut().enumerate() {
                // SAFETY: caller contract.
                *v = unsafe { gather::<T, KH, WIDE, FULL>(rows, g, col + i * cs, m) };
            }
        }
        for (g, wg) in wv.iter().enumerate() {
            for (kx, &wk) in wg.iter().enumerate() {
                for (j, a) in acc.iter_mut().enumerate() {
                    *a = mac::<WIDE>(*a, cols[j * S + kx][g], wk);
                }
            }
        }
    } else {
        for i in 0..(P - 1) * S + KW {
            for (g, wg) in wv.iter().enumerate() {
                // SAFETY: caller contract.
                let v = unsafe { gather::<T, KH, WIDE, FULL>(rows, g, col + i * cs, m) };
                for (kx, &wk) in wg.iter().enumerate() {
                    if i >= kx && (i - kx) % S == 0 && (i - kx) / S < P {
                        let j = (i - kx) / S;
                        acc[j] = mac::<WIDE>(acc[j], v, wk);
                    }
                }
            }
        }
    }
    let mut j = 0;
    while j + 4 <= P {
        let r = [
            rq.round::<FAST>(acc[j]),
            rq.round::<FAST>(acc[j + 1]),
            rq.round::<FAST>(acc[j + 2]),
            rq.round::<FAST>(acc[j + 3]),
        ];
        // SAFETY: caller contract (pixels j..j + 4 < P).
        unsafe { rq.store4::<T, FULL>(r, out.add(j * c), c, m) };
        j += 4;
    }
    while j < P {
        let bytes = rq.finish::<T>(rq.round::<FAST>(acc[j]));
        // SAFETY: caller contract.
        unsafe { _mm_mask_storeu_epi8(out.add(j * c) as *mut i8, m, bytes) };
        j += 1;
    }
}

/// TFLite's `MultiplyByQuantizedMultiplier` on 16 lanes with both roundings combined into one
/// 64-bit division: for `e = −shift ≥ 1`, `RoundingDivideByPOT(SRDHM(x, m), e) =
/// ⌊(x·m + 2^30 + 2^(30+e) − [x·m < −2^30]·2^31) / 2^(31+e)⌋` (SRDHM is `⌊(x·m + 2^30)/2^31⌋`
/// apart from the saturating `m = x = i32::MIN`, which [`Rows::new`] excludes; nested floor
/// divisions combine), and `⌊(x·m + 2^30)/2^31⌋` for `e = 0`. The zero point is added as
/// `zp·2^(31+e)` inside the sum (the low 32 bits of the quotient are the reference's wrapping
/// `+ zp`; |x·m| ≤ 2^62, e ≤ 22 and |zp| ≤ 256 keep the sum inside i64). Then the clamp, with
/// saturating packs for 4 pixels at a time, or, when the clamp is int8's whole range, one
/// saturating narrowing (`vpmovsdb`) per pixel.
///
/// When the clamp's lower bound is at least the zero point (a fused ReLU / ReLU6) the
/// `[x·m < −2^30]` term is left out: it only matters for `x·m < −2^30`, where the sum without
/// it is below `2^(30+e)` (quotient ≤ 0) and with it lower still, so both results are at most
/// the zero point and clamp to the same lower bound.
struct Rq64 {
    m: __m512i,
    m_odd: __m512i,
    lsh: __m512i,
    /// `e − 1` per channel (dwords).
    rsh1: __m512i,
    any_lsh: bool,
    /// The lower clamp is at least the zero point (the negative correction cannot matter).
    relu: bool,
    /// Odd lanes shift by `31 + e − 32` (every `e ≥ 1`), leaving results in the high dwords.
    blend: bool,
    /// [add, sub, shift] × [even, odd].
    k: [[__m512i; 2]; 3],
    lo: __m512i,
    hi: __m512i,
    lo8: __m512i,
    hi8: __m512i,
    /// The clamp is the whole int8 / uint8 range: the saturating packs alone apply it.
    no_clamp: [bool; 2],
}

/// `vpermd` order taking the packed bytes of 4 pixels (dword `4·lane + pixel`) to pixel-major
/// (dword `4·pixel + lane`).
static UNPACK4: [i32; 16] = [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15];

impl Rq64 {
    /// # Safety
    /// Channels `c0..c0 + 16` are inside the padded arrays of `f` (`c0` a multiple of 16).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    ///
    /// With `init` (the accumulators' initial value, `init_in_k` holding), `init·m` joins the
    /// rounding constants: the sums then start at 0 and `(acc + init)·m + k = acc·m +
    /// (init·m + k)`, the same 64-bit value (`|init·m| < 2^62` as `|init| < 2^31`, and the
    /// sum stays inside i64 as without the fold, `acc + init` being the unwrapped i32 sum).
    unsafe fn new(
        f: &Rows,
        c0: usize,
        rq: &crate::requant::Requant,
        init: Option<__m512i>,
    ) -> Rq64 {
        // SAFETY: caller contract; RQ64_BLOCK i64 per block.
        let ld = |i: usize| unsafe {
            _mm512_loadu_si512(f.rq64.as_ptr().add(c0 / 16 * RQ64_BLOCK + i * 8) as *const _)
        };
        // SAFETY: caller contract.
        let (m, lsh, rsh1) = unsafe {
            (
                _mm512_loadu_si512(f.mult.as_ptr().add(c0) as *const _),
                _mm512_loadu_si512(f.lsh.as_ptr().add(c0) as *const _),
                _mm512_loadu_si512(f.rsh1.as_ptr().add(c0) as *const _),
            )
        };
        let (lo, hi) = (rq.min(), rq.max());
        let (lo8, hi8) = (_mm512_set1_epi8(lo as i8), _mm512_set1_epi8(hi as i8));
        let blend = f.all_right;
        let m_odd = _mm512_srli_epi64(m, 32);
        let (mut k0, mut k1) = (ld(0), ld(1));
        if let Some(v) = init {
            k0 = _mm512_add_epi64(k0, _mm512_mul_epi32(v, m));
            k1 = _mm512_add_epi64(k1, _mm512_mul_epi32(_mm512_srli_epi64(v, 32), m_odd));
        }
        Rq64 {
            m,
            m_odd,
            lsh,
            rsh1,
            any_lsh: f.any_lsh,
            relu: lo >= rq.zero_point(),
            k: [
                [k0, k1],
                [ld(2), ld(3)],
                [ld(4), if blend { ld(7) } else { ld(5) }],
            ],
            blend,
            lo: _mm512_set1_epi32(lo),
            hi: _mm512_set1_epi32(hi),
            lo8,
            hi8,
            no_clamp: [lo <= -128 && hi >= 127, lo <= 0 && hi >= 255],
        }
    }

    /// The rounded product plus the zero point. `FAST`: the caller knows that `relu` and
    /// `blend` hold and no channel shifts left (the flags are then not read).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    fn round<const FAST: bool>(&self, x: __m512i) -> __m512i {
        if FAST {
            // ⌊t / 2^(31+e)⌋ = ⌊⌊t / 2^32⌋ / 2^(e−1)⌋ (e ≥ 1): the high dwords of both
            // halves' 64-bit sums t, merged into one vector, then one 32-bit shift.
            let even = _mm512_add_epi64(_mm512_mul_epi32(x, self.m), self.k[0][0]);
            let odd = _mm512_mul_epi32(_mm512_srli_epi64(x, 32), self.m_odd);
            let odd = _mm512_add_epi64(odd, self.k[0][1]);
            let hi = _mm512_mask_shuffle_epi32(odd, 0x5555, even, _MM_PERM_DDBB);
            return _mm512_srav_epi32(hi, self.rsh1);
        }
        let x = if self.any_lsh {
            _mm512_sllv_epi32(x, self.lsh)
        } else {
            x
        };
        let thr = _mm512_set1_epi64(-(1 << 30));
        let half = |ab: __m512i, p: usize| {
            if self.relu {
                return _mm512_srav_epi64(_mm512_add_epi64(ab, self.k[0][p]), self.k[2][p]);
            }
            let below = _mm512_cmplt_epi64_mask(ab, thr);
            let v = _mm512_add_epi64(ab, self.k[0][p]);
            let v = _mm512_mask_sub_epi64(v, below, v, self.k[1][p]);
            _mm512_srav_epi64(v, self.k[2][p])
        };
        let even = half(_mm512_mul_epi32(x, self.m), 0);
        let odd = half(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), self.m_odd), 1);
        if self.blend {
            // The odd results were shifted 32 bits less: they are in the high dwords.
            return _mm512_mask_blend_epi32(0xAAAA, even, odd);
        }
        // Odd lanes take the low dword of the odd results.
        _mm512_mask_shuffle_epi32(even, 0xAAAA, odd, _MM_PERM_CDAB)
    }

    /// One pixel's bytes: clamp (int8's whole range: the saturating narrowing).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    fn finish<T: Q8>(&self, v: __m512i) -> __m128i {
        if !T::UNSIGNED && self.no_clamp[0] {
            // The clamp is int8's range: the saturating narrowing alone.
            return _mm512_cvtsepi32_epi8(v);
        }
        _mm512_cvtepi32_epi8(_mm512_min_epi32(_mm512_max_epi32(v, self.lo), self.hi))
    }

    /// Four pixels (`c` elements apart): saturating packs, which leave every value inside `[lo, hi]` ⊂ the output type unchanged
    /// and move the rest beyond it on the same side, then the clamp on bytes.
    ///
    /// # Safety
    /// `out + j·c` is writable for the lanes of `m`, `j < 4`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    unsafe fn store4<T: Q8, const FULL: bool>(
        &self,
        r: [__m512i; 4],
        out: *mut u8,
        c: usize,
        m: __mmask16,
    ) {
        if !T::UNSIGNED && self.no_clamp[0] {
            // The clamp is int8's range: one saturating narrowing per pixel (`vpmovsdb`)
            // instead of packs and a transpose.
            for (j, &v) in r.iter().enumerate() {
                let b = _mm512_cvtsepi32_epi8(v);
                // SAFETY: caller contract (pixel j's lanes of `m`, all 16 when `FULL`).
                unsafe {
                    if FULL {
                        _mm_storeu_si128(out.add(j * c) as *mut __m128i, b)
                    } else {
                        _mm_mask_storeu_epi8(out.add(j * c) as *mut i8, m, b)
                    }
                }
            }
            return;
        }
        let a = r;
        let p01 = _mm512_packs_epi32(a[0], a[1]);
        let p23 = _mm512_packs_epi32(a[2], a[3]);
        let b = if T::UNSIGNED {
            let b = _mm512_packus_epi16(p01, p23);
            if self.no_clamp[1] {
                b
            } else {
                _mm512_min_epu8(_mm512_max_epu8(b, self.lo8), self.hi8)
            }
        } else {
            let b = _mm512_packs_epi16(p01, p23);
            if self.no_clamp[0] {
                b
            } else {
                _mm512_min_epi8(_mm512_max_epi8(b, self.lo8), self.hi8)
            }
        };
        // SAFETY: 16 readable i32.
        let perm = unsafe { _mm512_loadu_si512(UNPACK4.as_ptr() as *const _) };
        let b = _mm512_permutexvar_epi32(perm, b);
        // SAFETY: caller contract (each store: pixel j's lanes of `m`, all 16 when `FULL`,
        // j < 4).
        unsafe {
            if FULL {
                _mm_storeu_si128(out as *mut __m128i, _mm512_castsi512_si128(b));
                _mm_storeu_si128(out.add(c) as *mut __m128i, _mm512_extracti32x4_epi32(b, 1));
                _mm_storeu_si128(
                    out.add(2 * c) as *mut __m128i,
                    _mm512_extracti32x4_epi32(b, 2),
                );
                _mm_storeu_si128(
                    out.add(3 * c) as *mut __m128i,
                    _mm512_extracti32x4_epi32(b, 3),
                );
            } else {
                _mm_mask_storeu_epi8(out as *mut i8, m, _mm512_castsi512_si128(b));
                _mm_mask_storeu_epi8(out.add(c) as *mut i8, m, _mm512_extracti32x4_epi32(b, 1));
                _mm_mask_storeu_epi8(
                    out.add(2 * c) as *mut i8,
                    m,
                    _mm512_extracti32x4_epi32(b, 2),
                );
                _mm_mask_storeu_epi8(
                    out.add(3 * c) as *mut i8,
                    m,
                    _mm512_extracti32x4_epi32(b, 3),
                );
            }
        }
    }
}
