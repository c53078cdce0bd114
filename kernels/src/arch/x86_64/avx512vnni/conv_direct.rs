//! Direct convolution for few input channels (see [`crate::conv::direct`]): window rows read from
//! whole input rows, blocks of 8 (int8) or 12 (f32) output pixels × 32 output channels with every
//! accumulator in registers.
//!
//! int8: each 4-byte group of a window row (staged in the unsigned domain, int8 + 128, folded
//! into the bias) is broadcast and fed to `vpdpbusd` against 16 channels × 4 weights per zmm;
//! requantization by [`Rq16`] (exact), then saturating packs of four vectors into 64 bytes and
//! the clamp on bytes. f32: each value of a
//! window row is broadcast and FMAed into 16 channels per zmm, clamped and stored.

use core::arch::x86_64::*;

use super::requant::Rq16;
use crate::conv::direct::{block_tiles, DirectF32, DirectI8, Taps, NB, PMAX, Z64};

/// Epilogue modes: [`Rq16::unclamped_general`] (any constants).
const GENERAL: u8 = 0;
/// [`Rq16::unclamped_fast`]: both tiles' constants are fast.
const FAST: u8 = 1;
/// [`Rq16::unclamped_fast_floor`]: fast, and the clamp's lower bound is at least the zero point.
const FAST_FLOOR: u8 = 2;

/// One channel block of a segment: its packed weights, folded bias, requantization and output.
struct Blk<'a, B, O> {
    w: *const Z64,
    bias: *const B,
    /// int8: the tiles' requantization and the clamp (`None` for f32).
    rq: Option<(&'a [Rq16; 2], i32, i32)>,
    /// The segment's output at the block's first channel.
    out: *mut O,
    /// Channels stored (1..=32).
    cols: usize,
}

/// The store masks of the block's two tiles.
fn masks(cols: usize) -> (u16, u16) {
    let m = |n: usize| if n >= 16 { u16::MAX } else { (1u16 << n) - 1 };
    (m(cols.min(16)), m(cols.saturating_sub(16)))
}

/// Dword order after `vpackssdw` + `vpacksswb` of four vectors `t0..t3` (per 128-bit lane `L`:
/// dwords `t0[L], t1[L], t2[L], t3[L]`): back to `t0` (lanes 0..16), `t1`, `t2`, `t3`.
static PACK_ORDER: [i32; 16] = [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15];

/// Four vectors of requantized (unclamped) values to 64 bytes in order `t0, t1, t2, t3`,
/// clamped to `[lo, hi]`: saturating packs to 16 and 8 bits, then the clamp on bytes. Exact,
/// because the clamp range lies inside int8, to which the packs saturate.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
fn pack4(t: [__m512i; 4], order: __m512i, lo: __m512i, hi: __m512i) -> __m512i {
    let w0 = _mm512_packs_epi32(t[0], t[1]);
    let w1 = _mm512_packs_epi32(t[2], t[3]);
    let b = _mm512_permutexvar_epi32(order, _mm512_packs_epi16(w0, w1));
    _mm512_min_epi8(_mm512_max_epi8(b, lo), hi)
}

/// # Safety
/// `t` upholds the [`Taps`] contract for `c`'s geometry (`4 · groups` bytes per read), the bytes
/// in the unsigned domain (int8 XOR 0x80); `out` is valid for `t.npix · out_c` writes; the CPU
/// has AVX-512 F/BW/DQ/VL + VNNI.
pub(crate) unsafe fn conv_i8(c: &DirectI8, t: &Taps<u8>, out: *mut i8) {
    // SAFETY: forwarded contract.
    unsafe { conv_i8_avx512(c, t, out) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn conv_i8_avx512(c: &DirectI8, t: &Taps<u8>, out: *mut i8) {
    let oc = c.win.out_c;
    let (zp, lo, hi) = (c.rq.zero_point(), c.rq.min(), c.rq.max());
    let per_block = c.win.h.kernel * c.groups * 2;
    for b in 0..oc.div_ceil(NB) {
        let ld = |v: &[i32], h: usize| {
            let s = &v[b * NB + 16 * h..][..16];
            // SAFETY: 16 values.
            unsafe { _mm512_loadu_si512(s.as_ptr() as *const __m512i) }
        };
        let rq = [
            Rq16::new(ld(&c.mult, 0), ld(&c.shift, 0), zp, lo, hi),
            Rq16::new(ld(&c.mult, 1), ld(&c.shift, 1), zp, lo, hi),
        ];
        let mode = if !(rq[0].is_fast() && rq[1].is_fast()) {
            GENERAL
        } else if lo >= zp {
            FAST_FLOOR
        } else {
            FAST
        };
        let blk = Blk {
            w: c.w[b * per_block..].as_ptr(),
            bias: c.bias[b * NB..].as_ptr(),
            rq: Some((&rq, lo, hi)),
            out: out.wrapping_add(b * NB),
            cols: (oc - b * NB).min(NB),
        };
        // SAFETY: forwarded contract; the block's weights and bias lie in `c`; the mode's
        // conditions hold.
        unsafe {
            match (block_tiles(oc, b), mode) {
                (1, GENERAL) => seg_i8::<1, GENERAL>(c, t, &blk),
                (1, FAST) => seg_i8::<1, FAST>(c, t, &blk),
                (1, _) => seg_i8::<1, FAST_FLOOR>(c, t, &blk),
                (_, GENERAL) => seg_i8::<2, GENERAL>(c, t, &blk),
                (_, FAST) => seg_i8::<2, FAST>(c, t, &blk),
                (_, _) => seg_i8::<2, FAST_FLOOR>(c, t, &blk),
            }
        }
    }
}

/// The segment's pixels in blocks of 8, then 4, 2, 1.
///
/// # Safety
/// As [`conv_i8`]; `blk` is a channel block of `c` with `T` tiles and the conditions of `MODE`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn seg_i8<const T: usize, const MODE: u8>(
    c: &DirectI8,
    t: &Taps<u8>,
    blk: &Blk<'_, i32, i8>,
) {
    let mut p = 0;
    while p < t.npix {
        // SAFETY: pixels p..p + step ≤ npix.
        p += unsafe {
            match t.npix - p {
                PMAX.. => {
                    block_i8::<8, T, MODE>(c, t, p, blk);
                    8
                }
                4..PMAX => {
                    block_i8::<4, T, MODE>(c, t, p, blk);
                    4
                }
                2 | 3 => {
                    block_i8::<2, T, MODE>(c, t, p, blk);
                    2
                }
                _ => {
                    block_i8::<1, T, MODE>(c, t, p, blk);
                    1
                }
            }
        };
    }
}

/// Pixels `p0..p0 + P` of the segment, the block's `16·T` channels.
///
/// # Safety
/// As [`seg_i8`], and `p0 + P ≤ t.npix`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn block_i8<const P: usize, const T: usize, const MODE: u8>(
    c: &DirectI8,
    t: &Taps<u8>,
    p0: usize,
    blk: &Blk<'_, i32, i8>,
) {
    let (kh, groups, oc, ps) = (c.win.h.kernel, c.groups, c.win.out_c, t.pix_stride);
    // SAFETY: the block's bias holds 32 values (padded).
    let (b0, b1) = unsafe {
        (
            _mm512_loadu_si512(blk.bias as *const __m512i),
            _mm512_loadu_si512(blk.bias.add(16) as *const __m512i),
        )
    };
    let mut acc0 = [b0; P];
    let mut acc1 = [b1; P];
    let mut w = blk.w;
    for ky in 0..kh {
        let base = t.rows[ky].wrapping_add(p0 * ps);
        for g in 0..groups {
            // SAFETY: the block holds kh · groups · T aligned weight vectors, in this order.
            let (w0, w1) = unsafe {
                (
                    _mm512_load_si512(w as *const __m512i),
                    _mm512_load_si512(w.add(T - 1) as *const __m512i),
                )
            };
            for p in 0..P {
                // SAFETY: bytes 4g..4g + 4 ≤ 4 · groups of pixel p0 + p's window row ky
                // (Taps contract).
                let v = unsafe { (base.add(p * ps + 4 * g) as *const u32).read_unaligned() };
                let av = _mm512_set1_epi32(v as i32);
                acc0[p] = _mm512_dpbusd_epi32(acc0[p], av, w0);
                if T == 2 {
                    acc1[p] = _mm512_dpbusd_epi32(acc1[p], av, w1);
                }
            }
            // SAFETY: within (or one past) the block's weights.
            w = unsafe { w.add(T) };
        }
    }
    let Some((rq, lo, hi)) = blk.rq else {
        return;
    };
    let q = |h: usize, x: __m512i| match MODE {
        FAST_FLOOR => rq[h].unclamped_fast_floor(x),
        FAST => rq[h].unclamped_fast(x),
        _ => rq[h].unclamped_general(x),
    };
    // SAFETY: 16 i32 values.
    let order = unsafe { _mm512_loadu_si512(PACK_ORDER.as_ptr() as *const __m512i) };
    let (lo, hi) = (_mm512_set1_epi8(lo as i8), _mm512_set1_epi8(hi as i8));
    let (m0, m1) = masks(blk.cols);
    let row = |p: usize| blk.out.wrapping_add((p0 + p) * oc);
    if T == 2 {
        // Two pixels of 32 channels per pack.
        let mask = m0 as u32 | (m1 as u32) << 16;
        let whole = oc == NB;
        for p in (0..P).step_by(2) {
            let p1 = (p + 1).min(P - 1);
            let t = [q(0, acc0[p]), q(1, acc1[p]), q(0, acc0[p1]), q(1, acc1[p1])];
            let b = pack4(t, order, lo, hi);
            // SAFETY: the block's `cols` channels of pixels p0 + p, p0 + p1 < npix lie in the
            // output (masked-off bytes are not written); with exactly 32 channels the two
            // pixels are 64 contiguous bytes.
            unsafe {
                if whole && p + 1 < P {
                    _mm512_storeu_si512(row(p) as *mut __m512i, b);
                } else {
                    _mm256_mask_storeu_epi8(row(p), mask, _mm512_castsi512_si256(b));
                    if p + 1 < P {
                        let v = _mm512_extracti64x4_epi64::<1>(b);
                        _mm256_mask_storeu_epi8(row(p1), mask, v);
                    }
                }
            }
        }
    } else {
        // Four pixels of 16 channels per pack.
        for p in (0..P).step_by(4) {
            let r = |i: usize| (p + i).min(P - 1);
            let t = [
                q(0, acc0[r(0)]),
                q(0, acc0[r(1)]),
                q(0, acc0[r(2)]),
                q(0, acc0[r(3)]),
            ];
            let b = pack4(t, order, lo, hi);
            // SAFETY: as above, the block's `cols ≤ 16` channels of pixels p0 + r(i) < npix.
            unsafe {
                _mm_mask_storeu_epi8(row(p), m0, _mm512_castsi512_si128(b));
                if p + 1 < P {
                    _mm_mask_storeu_epi8(row(p + 1), m0, _mm512_extracti32x4_epi32::<1>(b));
                }
                if p + 2 < P {
                    _mm_mask_storeu_epi8(row(p + 2), m0, _mm512_extracti32x4_epi32::<2>(b));
                }
                if p + 3 < P {
                    _mm_mask_storeu_epi8(row(p + 3), m0, _mm512_extracti32x4_epi32::<3>(b));
                }
            }
        }
    }
}

/// # Safety
/// `t` upholds the [`Taps`] contract for `c`'s geometry (`run` values per read); `out` is valid
/// for `t.npix · out_c` writes; the CPU has AVX-512F.
pub(crate) unsafe fn conv_f32(c: &DirectF32, t: &Taps<f32>, out: *mut f32) {
    // SAFETY: forwarded contract.
    unsafe { conv_f32_avx512(c, t, out) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
unsafe fn conv_f32_avx512(c: &DirectF32, t: &Taps<f32>, out: *mut f32) {
    let oc = c.win.out_c;
    let per_block = c.win.h.kernel * c.run * 2;
    for b in 0..oc.div_ceil(NB) {
        let blk = Blk {
            w: c.w[b * per_block..].as_ptr(),
            bias: c.bias[b * NB..].as_ptr(),
            rq: None,
            out: out.wrapping_add(b * NB),
            cols: (oc - b * NB).min(NB),
        };
        // SAFETY: forwarded contract; the block's weights and bias lie in `c`.
        unsafe {
            if block_tiles(oc, b) == 1 {
                seg_f32::<1>(c, t, &blk)
            } else {
                seg_f32::<2>(c, t, &blk)
            }
        }
    }
}

/// # Safety
/// As [`conv_f32`]; `blk` is a channel block of `c` with `T` tiles.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
unsafe fn seg_f32<const T: usize>(c: &DirectF32, t: &Taps<f32>, blk: &Blk<'_, f32, f32>) {
    let mut p = 0;
    while p < t.npix {
        // SAFETY: pixels p..p + step ≤ npix.
        p += unsafe {
            match t.npix - p {
                12.. => {
                    block_f32::<12, T>(c, t, p, blk);
                    12
                }
                PMAX.. => {
                    block_f32::<8, T>(c, t, p, blk);
                    8
                }
                4..PMAX => {
                    block_f32::<4, T>(c, t, p, blk);
                    4
                }
                2 | 3 => {
                    block_f32::<2, T>(c, t, p, blk);
                    2
                }
                _ => {
                    block_f32::<1, T>(c, t, p, blk);
                    1
                }
            }
        };
    }
}

/// # Safety
/// As [`seg_f32`], and `p0 + P ≤ t.npix`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
unsafe fn block_f32<const P: usize, const T: usize>(
    c: &DirectF32,
    t: &Taps<f32>,
    p0: usize,
    blk: &Blk<'_, f32, f32>,
) {
    let (kh, run, oc, ps) = (c.win.h.kernel, c.run, c.win.out_c, t.pix_stride);
    // SAFETY: the block's bias holds 32 values (padded).
    let (b0, b1) = unsafe { (_mm512_loadu_ps(blk.bias), _mm512_loadu_ps(blk.bias.add(16))) };
    let mut acc0 = [b0; P];
    let mut acc1 = [b1; P];
    let mut w = blk.w;
    for ky in 0..kh {
        let base = t.rows[ky].wrapping_add(p0 * ps);
        for k in 0..run {
            // SAFETY: the block holds kh · run · T aligned weight vectors, in this order.
            let (w0, w1) = unsafe {
                (
                    _mm512_load_ps(w as *const f32),
                    _mm512_load_ps(w.add(T - 1) as *const f32),
                )
            };
            for p in 0..P {
                // SAFETY: value k < run of pixel p0 + p's window row ky (Taps contract).
                let a = _mm512_set1_ps(unsafe { *base.add(p * ps + k) });
                acc0[p] = _mm512_fmadd_ps(a, w0, acc0[p]);
                if T == 2 {
                    acc1[p] = _mm512_fmadd_ps(a, w1, acc1[p]);
                }
            }
            // SAFETY: within (or one past) the block's weights.
            w = unsafe { w.add(T) };
        }
    }
    let (lo, hi) = (_mm512_set1_ps(c.min), _mm512_set1_ps(c.max));
    let (m0, m1) = masks(blk.cols);
    for p in 0..P {
        let o = blk.out.wrapping_add((p0 + p) * oc);
        // SAFETY: the block's `cols` channels of pixel p0 + p < npix lie in the output
        // (masked-off lanes are not written).
        unsafe {
            _mm512_mask_storeu_ps(o, m0, _mm512_min_ps(_mm512_max_ps(acc0[p], lo), hi));
            if T == 2 {
                let y = _mm512_min_ps(_mm512_max_ps(acc1[p], lo), hi);
                _mm512_mask_storeu_ps(o.add(16), m1, y);
            }
        }
    }
}
