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
    for row in rows {
        let mut ox = 0;
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
    for row in rows {
        let mut ox = 0;
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
                tile_f32::<1>(p, input, &mut output[at..at + c], taps, dx);
                ox += 1;
            }
        }
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
