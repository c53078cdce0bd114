//! AVX-512 (F/BW/DQ/VL + VNNI) sparse kernels: `x86_64::avx512vnni::spmm_*`.
//!
//! Plugged into the dispatch table only when [`Isa::Avx512Vnni`] is enabled, and packing refuses a
//! kernel whose tier is not enabled; the safe wrappers rely on that (a `PackedF32`/`PackedI8`
//! carrying one of these kernels was built on a CPU that has the features), and on `run` having
//! checked every slice length, stride and the scratch size. The int8 kernels feed activations to
//! `vpdpbusd` as unsigned bytes: int8 as `a ^ 0x80` (= a + 128), uint8 as they are; packing folds
//! the offset into the bias. Outputs are the low byte of the clamped value (int8 or uint8).
//!
//! Transposes use one trick: `unpacklo/hi(x[i], x[i + h])` applied log2(rows) times transposes a
//! square of elements within each 128-bit lane (4×4 32-bit words or 16×16 bytes), so a zmm
//! register carries 4 independent transposes.

use super::{PackedF32, PackedI8, SpmmF32Kernel, SpmmI8Kernel, SpmmTable};
use crate::isa::Isa;
use crate::requant::Requant;
use std::arch::x86_64::*;

/// Pixels per tile of the f32 kernels: 1x1 (one channel per pass) and 4x1.
const F32_TILE_1X1: usize = 64;
const F32_TILE: usize = 32;
/// Most input channels per pass of the f32 kernels (a [kc][P] tile of 24 to 40 KiB, about L1).
const F32_KC_1X1: usize = 160;
const F32_KC: usize = 192;
pub(super) const I8_TILE: usize = 64;

/// The AVX-512 slots of the sparse dispatch table.
pub(super) const TABLE: SpmmTable = SpmmTable {
    f32_1x1: &SpmmF32Kernel {
        name: "avx512::spmm_f32_64x1",
        isa: Isa::Avx512Vnni,
        tile: F32_TILE_1X1,
        kc: F32_KC_1X1,
        run: spmm_f32::<F32_TILE_1X1>,
    },
    f32_4x1: &SpmmF32Kernel {
        name: "avx512::spmm_f32_32x4",
        isa: Isa::Avx512Vnni,
        tile: F32_TILE,
        kc: F32_KC,
        run: spmm_f32::<F32_TILE>,
    },
    i8_1x4: &SpmmI8Kernel {
        name: "avx512vnni::spmm_qu8s8_64x1c4",
        isa: Isa::Avx512Vnni,
        tile: I8_TILE,
        unsigned: true,
        run: spmm_i8_1x4,
    },
    i8_16x4: &SpmmI8Kernel {
        name: "avx512vnni::spmm_qu8s8_4x16c4",
        isa: Isa::Avx512Vnni,
        tile: I8_TILE,
        unsigned: true,
        run: spmm_i8_16x4,
    },
};

#[allow(clippy::too_many_arguments)]
fn spmm_f32<const P: usize>(
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
    // SAFETY: this kernel is plugged only when AVX-512 VNNI is enabled; `run` checked that `a`
    // holds `m` rows of K at `a_stride`, `out` `m` rows of N at `out_stride`, and the scratch size.
    unsafe {
        spmm_f32_impl::<P>(
            p,
            a.as_ptr(),
            a_stride,
            m,
            out.as_mut_ptr(),
            out_stride,
            lo,
            hi,
            scratch.as_mut_ptr(),
        )
    }
}

/// `dst[c·ds + r] = src[r·ss + c] ^ xor` (`xor` applied only when `FLIP`) for `r < rows`, `c < cols` (32-bit elements): 16×16
/// blocks in registers ([`t16x16_asm`], or [`t16x16`] with the flip), the edges by
/// [`transpose32_edges`].
///
/// # Safety
/// AVX-512F; `src` readable and `dst` writable at those positions.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn transpose32<const FLIP: bool>(
    src: *const u32,
    ss: usize,
    rows: usize,
    cols: usize,
    dst: *mut u32,
    ds: usize,
    xor: u32,
) {
    let xv = _mm512_set1_epi32(xor as i32);
    let mut r0 = 0;
    while r0 + 16 <= rows {
        let mut c0 = 0;
        while c0 + 16 <= cols {
            // SAFETY: rows r0..r0 + 16 ≤ rows and columns c0..c0 + 16 ≤ cols of both.
            unsafe {
                let (s, d) = (src.add(r0 * ss + c0), dst.add(c0 * ds + r0));
                if FLIP {
                    t16x16::<FLIP>(s, ss, d, ds, xv)
                } else {
                    t16x16_asm(s, ss, d, ds)
                }
            };
            c0 += 16;
        }
        if c0 < cols {
            // SAFETY: the remaining columns of these 16 rows, same bounds.
            unsafe {
                transpose32_edges::<FLIP>(
                    src.add(r0 * ss + c0),
                    ss,
                    16,
                    cols - c0,
                    dst.add(c0 * ds + r0),
                    ds,
                    xor,
                )
            };
        }
        r0 += 16;
    }
    if r0 < rows {
        // SAFETY: the remaining rows, all columns.
        unsafe {
            transpose32_edges::<FLIP>(src.add(r0 * ss), ss, rows - r0, cols, dst.add(r0), ds, xor)
        };
    }
}

/// One 16×16 block of [`transpose32`]: `dst[c·ds + r] = src[r·ss + c] (^ xv)`. The 128-bit
/// lanes are gathered by the loads (register `z[c][s]`, lane `L` = row `4L + s`, columns
/// `4c..4c + 4`), so only the 4×4 transposes inside the lanes take shuffles (2 stages, not 4).
///
/// # Safety
/// AVX-512F; 16 rows of 16 elements readable at `src`, 16 columns of 16 writable at `dst`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
#[inline]
unsafe fn t16x16<const FLIP: bool>(
    src: *const u32,
    ss: usize,
    dst: *mut u32,
    ds: usize,
    xv: __m512i,
) {
    for c in 0..4 {
        let mut z = [_mm512_setzero_si512(); 4];
        for (s, z) in z.iter_mut().enumerate() {
            // SAFETY: rows s, 4 + s, 8 + s, 12 + s, columns 4c..4c + 4 of the block.
            unsafe {
                let at = |l: usize| src.add((4 * l + s) * ss + 4 * c) as *const __m128i;
                let v = _mm512_broadcast_i32x4(_mm_loadu_si128(at(0)));
                let v = _mm512_mask_broadcast_i32x4(v, 0x00F0, _mm_loadu_si128(at(1)));
                let v = _mm512_mask_broadcast_i32x4(v, 0x0F00, _mm_loadu_si128(at(2)));
                *z = _mm512_mask_broadcast_i32x4(v, 0xF000, _mm_loadu_si128(at(3)));
            }
            if FLIP {
                *z = _mm512_xor_si512(*z, xv);
            }
        }
        let t0 = _mm512_unpacklo_epi32(z[0], z[1]);
        let t1 = _mm512_unpackhi_epi32(z[0], z[1]);
        let t2 = _mm512_unpacklo_epi32(z[2], z[3]);
        let t3 = _mm512_unpackhi_epi32(z[2], z[3]);
        let w = [
            _mm512_unpacklo_epi64(t0, t2),
            _mm512_unpackhi_epi64(t0, t2),
            _mm512_unpacklo_epi64(t1, t3),
            _mm512_unpackhi_epi64(t1, t3),
        ];
        for (t, &w) in w.iter().enumerate() {
            // SAFETY: column 4c + t of the block, 16 rows.
            unsafe { _mm512_storeu_si512(dst.add((4 * c + t) * ds) as *mut _, w) };
        }
    }
}

/// The assembly of one 8×4 quarter of [`t16x16_asm`]: source rows `lo..lo + 4` and
/// `hi..hi + 4` (row pointers `{lo}`, `{hi}`, stride `{ss}`), 4 columns from byte `off`, as 4
/// destination columns from `{d}` (stride `{ds}`), 8 rows from byte `doff`: each row pair one
/// 128-bit load and one 128-bit insert, two unpack stages within the 128-bit lanes.
#[rustfmt::skip]
macro_rules! t8x4_asm {
    ($lo:literal, $hi:literal, $off:literal, $d:literal, $doff:literal) => {
        concat!(
            "vmovups xmm0, xmmword ptr [{", $lo, "} + ", $off, "]\n",
            "vinsertf128 ymm0, ymm0, xmmword ptr [{", $hi, "} + ", $off, "], 1\n",
            "vmovups xmm1, xmmword ptr [{", $lo, "} + {ss} + ", $off, "]\n",
            "vinsertf128 ymm1, ymm1, xmmword ptr [{", $hi, "} + {ss} + ", $off, "], 1\n",
            "vmovups xmm2, xmmword ptr [{", $lo, "} + {ss}*2 + ", $off, "]\n",
            "vinsertf128 ymm2, ymm2, xmmword ptr [{", $hi, "} + {ss}*2 + ", $off, "], 1\n",
            "vmovups xmm3, xmmword ptr [{", $lo, "} + {ss3} + ", $off, "]\n",
            "vinsertf128 ymm3, ymm3, xmmword ptr [{", $hi, "} + {ss3} + ", $off, "], 1\n",
            "vunpcklps ymm4, ymm0, ymm1\n",
            "vunpckhps ymm5, ymm0, ymm1\n",
            "vunpcklps ymm6, ymm2, ymm3\n",
            "vunpckhps ymm7, ymm2, ymm3\n",
            "vunpcklpd ymm8, ymm4, ymm6\n",
            "vunpckhpd ymm9, ymm4, ymm6\n",
            "vunpcklpd ymm10, ymm5, ymm7\n",
            "vunpckhpd ymm11, ymm5, ymm7\n",
            "vmovups ymmword ptr [{", $d, "} + ", $doff, "], ymm8\n",
            "vmovups ymmword ptr [{", $d, "} + {ds} + ", $doff, "], ymm9\n",
            "vmovups ymmword ptr [{", $d, "} + {ds}*2 + ", $doff, "], ymm10\n",
            "vmovups ymmword ptr [{", $d, "} + {ds3} + ", $doff, "], ymm11\n",
        )
    };
}

/// [`t16x16`] without the flip, in assembly: four 8×8 blocks in 256-bit registers (each row
/// pair of a 128-bit load and a 128-bit insert, two unpack stages, 256-bit stores), every
/// address `base + index·scale + offset` from 4 source rows, 4 destination columns and the two
/// strides (×1, ×2, ×3), so no row pointer is kept on the stack.
///
/// # Safety
/// AVX-512F; 16 rows of 16 elements readable at `src`, 16 columns of 16 writable at `dst`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
#[inline]
unsafe fn t16x16_asm(src: *const u32, ss: usize, dst: *mut u32, ds: usize) {
    let (ssb, dsb) = (4 * ss, 4 * ds);
    // SAFETY: every load is within rows 0..16, columns 0..16 of `src`, every store within
    // columns 0..16, rows 0..16 of `dst` (the caller's bounds); no stack, flags kept.
    unsafe {
        std::arch::asm!(
            // Source columns 0..8 (rows 0..8, then 8..16), then columns 8..16.
            t8x4_asm!("s0", "s4", 0, "d0", 0),
            t8x4_asm!("s0", "s4", 16, "d4", 0),
            t8x4_asm!("s8", "s12", 0, "d0", 32),
            t8x4_asm!("s8", "s12", 16, "d4", 32),
            t8x4_asm!("s0", "s4", 32, "d8", 0),
            t8x4_asm!("s0", "s4", 48, "d12", 0),
            t8x4_asm!("s8", "s12", 32, "d8", 32),
            t8x4_asm!("s8", "s12", 48, "d12", 32),
            s0 = in(reg) src,
            s4 = in(reg) src.add(4 * ss),
            s8 = in(reg) src.add(8 * ss),
            s12 = in(reg) src.add(12 * ss),
            ss = in(reg) ssb,
            ss3 = in(reg) 3 * ssb,
            d0 = in(reg) dst,
            d4 = in(reg) dst.add(4 * ds),
            d8 = in(reg) dst.add(8 * ds),
            d12 = in(reg) dst.add(12 * ds),
            ds = in(reg) dsb,
            ds3 = in(reg) 3 * dsb,
            out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _,
            out("zmm4") _, out("zmm5") _, out("zmm6") _, out("zmm7") _,
            out("zmm8") _, out("zmm9") _, out("zmm10") _, out("zmm11") _,
            options(nostack, preserves_flags),
        )
    };
}

/// As [`transpose32`], 4 rows at a time (4×4 per 128-bit lane), then single elements.
///
/// # Safety
/// As [`transpose32`].
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn transpose32_edges<const FLIP: bool>(
    src: *const u32,
    ss: usize,
    rows: usize,
    cols: usize,
    dst: *mut u32,
    ds: usize,
    xor: u32,
) {
    let xv = _mm512_set1_epi32(xor as i32);
    let xx = _mm_set1_epi32(xor as i32);
    let mut r0 = 0;
    while r0 + 4 <= rows {
        let mut c0 = 0;
        // SAFETY (whole loop): rows r0..r0 + 4 < rows and columns c0..c0 + 16 ≤ cols are in
        // bounds of `src`; the stores hit columns < cols, rows r0..r0 + 4 of `dst`.
        while c0 + 16 <= cols {
            let mut x = [_mm512_setzero_si512(); 4];
            for (i, x) in x.iter_mut().enumerate() {
                // SAFETY: see the loop.
                *x = unsafe { _mm512_loadu_si512(src.add((r0 + i) * ss + c0) as *const _) };
                if FLIP {
                    *x = _mm512_xor_si512(*x, xv);
                }
            }
            let [x0, x1, x2, x3] = x;
            let y0 = _mm512_unpacklo_epi32(x0, x2);
            let y1 = _mm512_unpackhi_epi32(x0, x2);
            let y2 = _mm512_unpacklo_epi32(x1, x3);
            let y3 = _mm512_unpackhi_epi32(x1, x3);
            let z = [
                _mm512_unpacklo_epi32(y0, y2),
                _mm512_unpackhi_epi32(y0, y2),
                _mm512_unpacklo_epi32(y1, y3),
                _mm512_unpackhi_epi32(y1, y3),
            ];
            for (j, &zj) in z.iter().enumerate() {
                let lanes = [
                    _mm512_extracti32x4_epi32::<0>(zj),
                    _mm512_extracti32x4_epi32::<1>(zj),
                    _mm512_extracti32x4_epi32::<2>(zj),
                    _mm512_extracti32x4_epi32::<3>(zj),
                ];
                for (lane, &v) in lanes.iter().enumerate() {
                    // SAFETY: see the loop.
                    unsafe {
                        _mm_storeu_si128(dst.add((c0 + 4 * lane + j) * ds + r0) as *mut _, v)
                    };
                }
            }
            c0 += 16;
        }
        while c0 + 4 <= cols {
            // SAFETY: as above, 4 columns.
            let mut x = [_mm_setzero_si128(); 4];
            for (i, x) in x.iter_mut().enumerate() {
                // SAFETY: as above, 4 columns.
                *x = unsafe { _mm_loadu_si128(src.add((r0 + i) * ss + c0) as *const _) };
                if FLIP {
                    *x = _mm_xor_si128(*x, xx);
                }
            }
            let [x0, x1, x2, x3] = x;
            let y0 = _mm_unpacklo_epi32(x0, x2);
            let y1 = _mm_unpackhi_epi32(x0, x2);
            let y2 = _mm_unpacklo_epi32(x1, x3);
            let y3 = _mm_unpackhi_epi32(x1, x3);
            let z = [
                _mm_unpacklo_epi32(y0, y2),
                _mm_unpackhi_epi32(y0, y2),
                _mm_unpacklo_epi32(y1, y3),
                _mm_unpackhi_epi32(y1, y3),
            ];
            for (j, &zj) in z.iter().enumerate() {
                // SAFETY: column c0 + j < cols, rows r0..r0 + 4.
                unsafe { _mm_storeu_si128(dst.add((c0 + j) * ds + r0) as *mut _, zj) };
            }
            c0 += 4;
        }
        for c in c0..cols {
            for r in r0..r0 + 4 {
                // SAFETY: r < rows, c < cols.
                unsafe { *dst.add(c * ds + r) = src.add(r * ss + c).read_unaligned() ^ xor };
            }
        }
        r0 += 4;
    }
    for r in r0..rows {
        for c in 0..cols {
            // SAFETY: r < rows, c < cols.
            unsafe { *dst.add(c * ds + r) = src.add(r * ss + c).read_unaligned() ^ xor };
        }
    }
}

/// # Safety
/// AVX-512; pointers valid as `spmm_f32` states; `scratch` holds `p.scratch_len()` floats.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn spmm_f32_impl<const P: usize>(
    p: &PackedF32,
    a: *const f32,
    a_stride: usize,
    m: usize,
    out: *mut f32,
    out_stride: usize,
    lo: f32,
    hi: f32,
    scratch: *mut f32,
) {
    let kc = p.kc;
    // SAFETY: scratch_len = P·(kc + ceil(N/4)·4 + 4) + 16: up to 15 floats to a 64-byte boundary
    // (vector loads within one cache line), activations (kc·P floats), then outputs [N'][P].
    let ap = unsafe { scratch.add(scratch.align_offset(64).min(15)) };
    // SAFETY: as above.
    let cb = unsafe { ap.add(P * kc) };
    let mut m0 = 0;
    while m0 < m {
        let pt = (m - m0).min(P);
        // Vectors of 16 pixels actually computed: a short last tile costs what it holds.
        // SAFETY: rows m0..m0 + pt of `a`; `ap` and `cb` as above.
        unsafe {
            let a = a.add(m0 * a_stride);
            match pt.div_ceil(16).min(P / 16) {
                1 => f32_tile::<P, 1>(p, a, a_stride, pt, ap, cb, lo, hi),
                2 => f32_tile::<P, 2>(p, a, a_stride, pt, ap, cb, lo, hi),
                3 => f32_tile::<P, 3>(p, a, a_stride, pt, ap, cb, lo, hi),
                _ => f32_tile::<P, 4>(p, a, a_stride, pt, ap, cb, lo, hi),
            }
        }
        // SAFETY: `cb` holds N rows of P; output rows m0..m0 + pt have N columns.
        unsafe {
            transpose32::<false>(
                cb as *const u32,
                P,
                p.n,
                pt,
                out.add(m0 * out_stride) as *mut u32,
                out_stride,
                0,
            )
        };
        m0 += P;
    }
}

/// One tile of `pt ≤ 16·NV` pixels into `cb` (rows of `P`): activations transposed to rows of
/// `16·NV` floats, as many chunks of input channels per pass as fit the `kc·P` floats of `ap`
/// (a short tile takes a wider slice of K).
///
/// # Safety
/// AVX-512F + FMA; `a` holds `pt` rows of K at `a_stride`; `ap` holds kc·P floats, `cb`
/// ceil(N/4)·4 rows of `P`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn f32_tile<const P: usize, const NV: usize>(
    p: &PackedF32,
    a: *const f32,
    a_stride: usize,
    pt: usize,
    ap: *mut f32,
    cb: *mut f32,
    lo: f32,
    hi: f32,
) {
    let (k, kc, nc) = (p.k, p.kc, p.chunks());
    let s = 16 * NV;
    let per = (P / s).max(1);
    let mut c0 = 0;
    while c0 < nc {
        let c1 = (c0 + per).min(nc);
        let k0 = c0 * kc;
        let kw = (c1 * kc).min(k) - k0;
        // SAFETY: rows 0..pt of `a` hold input channels k0..k0 + kw; kw·s ≤ per·kc·16·NV ≤ kc·P
        // floats of `ap`.
        unsafe {
            transpose32::<false>(
                a.add(k0) as *const u32,
                a_stride,
                pt,
                kw,
                ap as *mut u32,
                s,
                0,
            );
            if pt < s {
                // Pixels pt..16·NV of the last vector: zeros (one masked store per row).
                let keep = (1u32 << (pt - 16 * (NV - 1))) - 1;
                let pad = !(keep as __mmask16);
                for r in 0..kw {
                    _mm512_mask_storeu_ps(ap.add(r * s + 16 * (NV - 1)), pad, _mm512_setzero_ps());
                }
            }
            let ch = Chunk {
                c0,
                c1,
                nc,
                k0,
                lo,
                hi,
            };
            f32_groups::<P, NV>(p, ap, cb, &ch);
        }
        c0 = c1;
    }
}

/// Chunks `c0..c1` of `nc` of input channels, starting at channel `k0`; the clamp.
struct Chunk {
    c0: usize,
    c1: usize,
    nc: usize,
    k0: usize,
    lo: f32,
    hi: f32,
}

/// Every group of channels on `NV` vectors of 16 pixels, the entries of chunks `ch.c0..ch.c1`:
/// the first chunk starts from the bias, later ones from the partial sums in `cb`; the last one
/// clamps: `cb[n][..] = clamp(bias + Σ w·ap[k − k0])`.
///
/// # Safety
/// AVX-512F + FMA; `ap` holds the chunks' rows of `16·NV` floats, `cb` ceil(N/4)·4 rows of `P`;
/// the packed column indices are below K, those of the chunks within the rows of `ap`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,fma")]
#[inline]
unsafe fn f32_groups<const P: usize, const NV: usize>(
    p: &PackedF32,
    ap: *const f32,
    cb: *mut f32,
    ch: &Chunk,
) {
    let (lov, hiv) = (_mm512_set1_ps(ch.lo), _mm512_set1_ps(ch.hi));
    let (first, last) = (ch.c0 == 0, ch.c1 == ch.nc);
    let ngroups = p.group_ptr.len() - 1;
    let at = |i: usize| {
        // SAFETY: entry i of these chunks: kidx − k0 is a row of `ap`.
        unsafe { ap.add((*p.kidx.get_unchecked(i) as usize - ch.k0) * 16 * NV) }
    };
    for grp in 0..ngroups {
        let s = p.chunk_range(grp, ch.c0, ch.nc).0;
        let e = p.chunk_range(grp, ch.c1 - 1, ch.nc).1;
        if p.layout.rows() == 1 {
            let mut acc = [_mm512_setzero_ps(); NV];
            for (v, acc) in acc.iter_mut().enumerate() {
                *acc = if first {
                    _mm512_set1_ps(p.bias[grp])
                } else {
                    // SAFETY: channel grp < N' rows of `cb`.
                    unsafe { _mm512_loadu_ps(cb.add(grp * P + 16 * v)) }
                };
            }
            let mut acc2 = [_mm512_setzero_ps(); NV];
            let mut i = s;
            // SAFETY: rows of `ap` (see `at`); one weight per entry.
            unsafe {
                while i + 2 <= e {
                    let x = at(i);
                    let w = _mm512_set1_ps(*p.vals.get_unchecked(i));
                    let x2 = at(i + 1);
                    let w2 = _mm512_set1_ps(*p.vals.get_unchecked(i + 1));
                    for v in 0..NV {
                        acc[v] = _mm512_fmadd_ps(w, _mm512_loadu_ps(x.add(16 * v)), acc[v]);
                        acc2[v] = _mm512_fmadd_ps(w2, _mm512_loadu_ps(x2.add(16 * v)), acc2[v]);
                    }
                    i += 2;
                }
                if i < e {
                    let x = at(i);
                    let w = _mm512_set1_ps(*p.vals.get_unchecked(i));
                    for (v, acc) in acc.iter_mut().enumerate() {
                        *acc = _mm512_fmadd_ps(w, _mm512_loadu_ps(x.add(16 * v)), *acc);
                    }
                }
            }
            for v in 0..NV {
                let mut r = _mm512_add_ps(acc[v], acc2[v]);
                if last {
                    r = _mm512_min_ps(_mm512_max_ps(r, lov), hiv);
                }
                // SAFETY: channel grp < N' rows of `cb`.
                unsafe { _mm512_storeu_ps(cb.add(grp * P + 16 * v), r) };
            }
        } else {
            let mut acc = [[_mm512_setzero_ps(); NV]; 4];
            for (r, acc) in acc.iter_mut().enumerate() {
                for (v, acc) in acc.iter_mut().enumerate() {
                    *acc = if first {
                        _mm512_set1_ps(p.bias[grp * 4 + r])
                    } else {
                        // SAFETY: channel grp·4 + r < ceil(N/4)·4 rows of `cb`.
                        unsafe { _mm512_loadu_ps(cb.add((grp * 4 + r) * P + 16 * v)) }
                    };
                }
            }
            // SAFETY: rows of `ap` (see `at`); vals has 4 per entry.
            unsafe {
                for i in s..e {
                    let x = at(i);
                    let wp = p.vals.as_ptr().add(i * 4);
                    for v in 0..NV {
                        let xv = _mm512_loadu_ps(x.add(16 * v));
                        for (r, acc) in acc.iter_mut().enumerate() {
                            acc[v] = _mm512_fmadd_ps(_mm512_set1_ps(*wp.add(r)), xv, acc[v]);
                        }
                    }
                }
            }
            for (r, acc) in acc.iter().enumerate() {
                for (v, &av) in acc.iter().enumerate() {
                    let y = if last {
                        _mm512_min_ps(_mm512_max_ps(av, lov), hiv)
                    } else {
                        av
                    };
                    // SAFETY: channel grp·4 + r < ceil(N/4)·4 rows of `cb`.
                    unsafe { _mm512_storeu_ps(cb.add((grp * 4 + r) * P + 16 * v), y) };
                }
            }
        }
    }
}

/// Copies rows of `k` int8 activations into `dst` as `k.div_ceil(4)` words per row (`^ xor`
/// on every byte), transposed (`dst[q·P + r]`) when `transpose`, else row-major
/// (`dst[r·K4 + q]`). Rows `rows..P` of the transposed form are left as they are.
///
/// # Safety
/// AVX-512; `a` holds `rows` rows of `k` bytes at `a_stride`; `dst` holds P·K4 words.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(super) unsafe fn pack_i8(
    xor: u8,
    a: *const i8,
    a_stride: usize,
    rows: usize,
    k: usize,
    dst: *mut u32,
    transpose: bool,
) {
    const P: usize = I8_TILE;
    let (k4f, k4) = (k / 4, k.div_ceil(4));
    let flip = u32::from_ne_bytes([xor; 4]);
    if transpose {
        // Word loads from byte rows: `transpose32` reads unaligned words at r·a_stride/4 words.
        if a_stride.is_multiple_of(4) {
            // SAFETY: full words of each row are in bounds.
            unsafe {
                if flip != 0 {
                    transpose32::<true>(a as *const u32, a_stride / 4, rows, k4f, dst, P, flip)
                } else {
                    transpose32::<false>(a as *const u32, a_stride / 4, rows, k4f, dst, P, 0)
                }
            };
        } else {
            for r in 0..rows {
                for q in 0..k4f {
                    // SAFETY: bytes 4q..4q + 4 ≤ k of row r.
                    unsafe {
                        *dst.add(q * P + r) =
                            (a.add(r * a_stride + 4 * q) as *const u32).read_unaligned() ^ flip
                    };
                }
            }
        }
    } else {
        let xv = _mm512_set1_epi32(flip as i32);
        for r in 0..rows {
            let mut q = 0;
            while q + 16 <= k4f {
                // SAFETY: 64 bytes within row r's k bytes; 16 words within dst row r.
                unsafe {
                    let v = _mm512_loadu_si512(a.add(r * a_stride + 4 * q) as *const _);
                    _mm512_storeu_si512(dst.add(r * k4 + q) as *mut _, _mm512_xor_si512(v, xv));
                }
                q += 16;
            }
            while q < k4f {
                // SAFETY: bytes 4q..4q + 4 ≤ k.
                unsafe {
                    *dst.add(r * k4 + q) =
                        (a.add(r * a_stride + 4 * q) as *const u32).read_unaligned() ^ flip
                };
                q += 1;
            }
        }
    }
    if k4f < k4 {
        // The last partial word: missing bytes are 0 (their weights are zero).
        for r in 0..rows {
            let mut b = [0u8; 4];
            for (j, b) in b.iter_mut().enumerate().take(k - 4 * k4f) {
                // SAFETY: byte 4·k4f + j < k of row r.
                *b = unsafe { *a.add(r * a_stride + 4 * k4f + j) } as u8 ^ xor;
            }
            let at = if transpose { k4f * P + r } else { r * k4 + k4f };
            // SAFETY: within dst.
            unsafe { *dst.add(at) = u32::from_le_bytes(b) };
        }
    }
}

/// Multipliers and shifts of channels `first..first + 16` (those past `n` repeat channel
/// `n − 1`'s) as 16 lanes.
#[target_feature(enable = "avx512f")]
fn channel_params(rq: &Requant, first: usize, n: usize) -> (__m512i, __m512i) {
    if rq.is_per_tensor() {
        let (m, s) = rq.channel(0);
        return (_mm512_set1_epi32(m), _mm512_set1_epi32(s));
    }
    let (mults, shifts) = rq.parts();
    if first + 16 <= mults.len() {
        // SAFETY: 16 entries from `first` exist.
        return unsafe {
            (
                _mm512_loadu_si512(mults.as_ptr().add(first) as *const _),
                _mm512_loadu_si512(shifts.as_ptr().add(first) as *const _),
            )
        };
    }
    let (mut m, mut s) = ([0i32; 16], [0i32; 16]);
    for i in 0..16 {
        let ch = (first + i).min(n - 1);
        (m[i], s[i]) = rq.channel(ch);
    }
    // SAFETY: 16 words each.
    unsafe {
        (
            _mm512_loadu_si512(m.as_ptr() as *const _),
            _mm512_loadu_si512(s.as_ptr() as *const _),
        )
    }
}

#[allow(clippy::too_many_arguments)]
fn spmm_i8_1x4(
    p: &PackedI8,
    a: &[i8],
    a_stride: usize,
    m: usize,
    out: &mut [i8],
    out_stride: usize,
    rq: &Requant,
    scratch: &mut [u32],
) {
    // SAFETY: plugged only when AVX-512 VNNI is enabled; `run` checked lengths and scratch.
    unsafe {
        i8_1x4_impl(
            p,
            a.as_ptr(),
            a_stride,
            m,
            out.as_mut_ptr(),
            out_stride,
            rq,
            scratch.as_mut_ptr(),
        )
    }
}

/// # Safety
/// AVX-512 VNNI; pointers valid as `run` checked; `scratch` holds `p.scratch_len()` words.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
#[allow(clippy::too_many_arguments)]
unsafe fn i8_1x4_impl(
    p: &PackedI8,
    a: *const i8,
    a_stride: usize,
    m: usize,
    out: *mut i8,
    out_stride: usize,
    rq: &Requant,
    scratch: *mut u32,
) {
    const P: usize = I8_TILE;
    let k4n = p.k.div_ceil(4);
    // SAFETY: scratch = P·(K4 + ceil(N/16)·4 + 1) + 16 words: up to 15 to a 64-byte boundary,
    // activations, then N'·P output bytes.
    let ap = unsafe { scratch.add(scratch.align_offset(64).min(15)) };
    // SAFETY: as above.
    let cb = unsafe { ap.add(P * k4n) } as *mut i8;
    let n = p.n;
    let mut m0 = 0;
    while m0 < m {
        let pt = (m - m0).min(P);
        // SAFETY: rows m0..m0 + pt in bounds; `ap` holds K4·P words.
        unsafe { pack_i8(p.xor, a.add(m0 * a_stride), a_stride, pt, p.k, ap, true) };
        // SAFETY: AVX-512 VNNI; `ap` and `cb` as sized above; packed k4 < K4.
        unsafe {
            match (
                pt.div_ceil(16),
                RqSplat::fits(rq),
                needs_fix(rq.zero_point(), rq.min()),
            ) {
                (1, true, true) => i8_channels_splat::<1, true>(p, ap, cb, rq),
                (2, true, true) => i8_channels_splat::<2, true>(p, ap, cb, rq),
                (3, true, true) => i8_channels_splat::<3, true>(p, ap, cb, rq),
                (_, true, true) => i8_channels_splat::<4, true>(p, ap, cb, rq),
                (1, true, false) => i8_channels_splat::<1, false>(p, ap, cb, rq),
                (2, true, false) => i8_channels_splat::<2, false>(p, ap, cb, rq),
                (3, true, false) => i8_channels_splat::<3, false>(p, ap, cb, rq),
                (_, true, false) => i8_channels_splat::<4, false>(p, ap, cb, rq),
                (1, false, _) => i8_channels::<1>(p, ap, cb, rq),
                (2, false, _) => i8_channels::<2>(p, ap, cb, rq),
                (3, false, _) => i8_channels::<3>(p, ap, cb, rq),
                (_, false, _) => i8_channels::<4>(p, ap, cb, rq),
            }
        }
        // Transpose bytes [N][P] → out rows m0..m0 + pt.
        // SAFETY: output row m0 < m.
        let o = unsafe { out.add(m0 * out_stride) };
        let mut n0 = 0;
        while n0 + 16 <= n {
            let mut x = [_mm512_setzero_si512(); 16];
            for (i, x) in x.iter_mut().enumerate() {
                // SAFETY: byte rows n0..n0 + 16 < N' of `cb`, P bytes each.
                *x = unsafe { _mm512_loadu_si512(cb.add((n0 + i) * P) as *const _) };
            }
            let x = unpack_stage(unpack_stage(unpack_stage(unpack_stage(x))));
            // x[j] lane L = pixel 16L + j, channels n0..n0 + 16.
            for (j, &xj) in x.iter().enumerate() {
                let lanes = [
                    _mm512_extracti32x4_epi32::<0>(xj),
                    _mm512_extracti32x4_epi32::<1>(xj),
                    _mm512_extracti32x4_epi32::<2>(xj),
                    _mm512_extracti32x4_epi32::<3>(xj),
                ];
                for (l, &v) in lanes.iter().enumerate() {
                    let px = 16 * l + j;
                    if px < pt {
                        // SAFETY: output row m0 + px < m, columns n0..n0 + 16 ≤ N.
                        unsafe { _mm_storeu_si128(o.add(px * out_stride + n0) as *mut _, v) };
                    }
                }
            }
            n0 += 16;
        }
        for ch in n0..n {
            for px in 0..pt {
                // SAFETY: ch < N, px < pt.
                unsafe { *o.add(px * out_stride + ch) = *cb.add(ch * P + px) };
            }
        }
        m0 += P;
    }
}

/// One stage of the byte transpose: `y[2i], y[2i + 1] = unpacklo/hi(x[i], x[i + 8])` (written
/// out, not a loop over arrays, so that the vectors stay in registers).
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
#[inline]
fn unpack_stage(x: [__m512i; 16]) -> [__m512i; 16] {
    [
        _mm512_unpacklo_epi8(x[0], x[8]),
        _mm512_unpackhi_epi8(x[0], x[8]),
        _mm512_unpacklo_epi8(x[1], x[9]),
        _mm512_unpackhi_epi8(x[1], x[9]),
        _mm512_unpacklo_epi8(x[2], x[10]),
        _mm512_unpackhi_epi8(x[2], x[10]),
        _mm512_unpacklo_epi8(x[3], x[11]),
        _mm512_unpackhi_epi8(x[3], x[11]),
        _mm512_unpacklo_epi8(x[4], x[12]),
        _mm512_unpackhi_epi8(x[4], x[12]),
        _mm512_unpacklo_epi8(x[5], x[13]),
        _mm512_unpackhi_epi8(x[5], x[13]),
        _mm512_unpacklo_epi8(x[6], x[14]),
        _mm512_unpackhi_epi8(x[6], x[14]),
        _mm512_unpacklo_epi8(x[7], x[15]),
        _mm512_unpackhi_epi8(x[7], x[15]),
    ]
}

/// Channel `ch`'s 1×4 block sums over a packed tile, `NV` vectors of 16 pixels:
/// `Σ_blocks dot4(ap[k4][px], w)` (two interleaved `vpdpbusd` chains, added at the end).
///
/// # Safety
/// AVX-512 VNNI; `ap` holds K4 rows of `I8_TILE` words and the packed `k4` are below K4.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
#[inline]
pub(super) unsafe fn channel_sums_1x4<const NV: usize>(
    p: &PackedI8,
    ap: *const u32,
    ch: usize,
) -> [__m512i; NV] {
    const P: usize = I8_TILE;
    let (s, e) = (p.block_ptr[ch] as usize, p.block_ptr[ch + 1] as usize);
    let mut acc = [_mm512_setzero_si512(); NV];
    let mut acc2 = [_mm512_setzero_si512(); NV];
    let mut i = s;
    // SAFETY: k4 < K4 (caller), so every load is within `ap`.
    unsafe {
        while i + 2 <= e {
            let x = ap.add(*p.k4.get_unchecked(i) as usize * P) as *const __m512i;
            let w = _mm512_set1_epi32(*p.w.get_unchecked(i));
            let x2 = ap.add(*p.k4.get_unchecked(i + 1) as usize * P) as *const __m512i;
            let w2 = _mm512_set1_epi32(*p.w.get_unchecked(i + 1));
            for v in 0..NV {
                acc[v] = _mm512_dpbusd_epi32(acc[v], _mm512_loadu_si512(x.add(v) as *const _), w);
                acc2[v] =
                    _mm512_dpbusd_epi32(acc2[v], _mm512_loadu_si512(x2.add(v) as *const _), w2);
            }
            i += 2;
        }
        if i < e {
            let x = ap.add(*p.k4.get_unchecked(i) as usize * P) as *const __m512i;
            let w = _mm512_set1_epi32(*p.w.get_unchecked(i));
            for (v, acc) in acc.iter_mut().enumerate() {
                *acc = _mm512_dpbusd_epi32(*acc, _mm512_loadu_si512(x.add(v) as *const _), w);
            }
        }
    }
    let mut sum = [_mm512_setzero_si512(); NV];
    for v in 0..NV {
        sum[v] = _mm512_add_epi32(acc[v], acc2[v]);
    }
    sum
}

/// Every output channel on `NV` vectors of 16 pixels: bytes `cb[n][..]` = requantized
/// `c[n] + Σ_blocks dot4(ap[k4], w)`.
///
/// # Safety
/// AVX-512 VNNI; `ap` holds K4 rows of `I8_TILE` words, `cb` N rows of `I8_TILE` bytes; the
/// packed `k4` are below K4.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
#[inline]
unsafe fn i8_channels<const NV: usize>(p: &PackedI8, ap: *const u32, cb: *mut i8, rq: &Requant) {
    const P: usize = I8_TILE;
    let st = Store::new(rq);
    let shared = rq.is_per_tensor().then(|| {
        let (mm, ss) = rq.channel(0);
        RqLanes::splat(mm, ss, rq.zero_point(), rq.min())
    });
    for ch in 0..p.n {
        // SAFETY: as this function's contract (`ap` holds the tile, `k4` below K4).
        let acc = unsafe { channel_sums_1x4::<NV>(p, ap, ch) };
        let c = _mm512_set1_epi32(p.c[ch]);
        let own;
        let q = match &shared {
            Some(q) => q,
            None => {
                let (mm, ss) = rq.channel(ch);
                own = RqLanes::splat(mm, ss, rq.zero_point(), rq.min());
                &own
            }
        };
        let mut y = [_mm512_setzero_si512(); 4];
        for v in 0..NV {
            y[v] = q.apply(_mm512_add_epi32(acc[v], c));
        }
        // SAFETY: byte row `ch` of `cb` holds P = 64 bytes.
        unsafe { _mm512_storeu_si512(cb.add(ch * P) as *mut _, st.narrow4(y)) };
    }
}

/// As [`i8_channels`] for requantizations [`RqSplat`] serves (right shifts 1..=22, small
/// zero point: the common case), `FIX` = [`needs_fix`]: the bias starts the sums, and each
/// channel's requantization is a handful of splat constants.
///
/// # Safety
/// As [`i8_channels`]; `RqSplat::fits(rq)`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
#[inline]
unsafe fn i8_channels_splat<const NV: usize, const FIX: bool>(
    p: &PackedI8,
    ap: *const u32,
    cb: *mut i8,
    rq: &Requant,
) {
    const P: usize = I8_TILE;
    let st = Store::new(rq);
    let zp = rq.zero_point();
    let shared = rq.is_per_tensor().then(|| {
        let (mm, ss) = rq.channel(0);
        RqSplat::new(mm, ss, zp)
    });
    for ch in 0..p.n {
        let (s, e) = (p.block_ptr[ch] as usize, p.block_ptr[ch + 1] as usize);
        let q = match shared {
            Some(q) => q,
            None => {
                let (mm, ss) = rq.channel(ch);
                RqSplat::new(mm, ss, zp)
            }
        };
        let mut acc = [_mm512_set1_epi32(p.c[ch]); NV];
        let mut acc2 = [_mm512_setzero_si512(); NV];
        let mut i = s;
        // SAFETY: k4 < K4, loads within `ap`.
        unsafe {
            while i + 2 <= e {
                let x = ap.add(*p.k4.get_unchecked(i) as usize * P) as *const __m512i;
                let w = _mm512_set1_epi32(*p.w.get_unchecked(i));
                let x2 = ap.add(*p.k4.get_unchecked(i + 1) as usize * P) as *const __m512i;
                let w2 = _mm512_set1_epi32(*p.w.get_unchecked(i + 1));
                for v in 0..NV {
                    acc[v] =
                        _mm512_dpbusd_epi32(acc[v], _mm512_loadu_si512(x.add(v) as *const _), w);
                    acc2[v] =
                        _mm512_dpbusd_epi32(acc2[v], _mm512_loadu_si512(x2.add(v) as *const _), w2);
                }
                i += 2;
            }
            if i < e {
                let x = ap.add(*p.k4.get_unchecked(i) as usize * P) as *const __m512i;
                let w = _mm512_set1_epi32(*p.w.get_unchecked(i));
                for (v, acc) in acc.iter_mut().enumerate() {
                    *acc = _mm512_dpbusd_epi32(*acc, _mm512_loadu_si512(x.add(v) as *const _), w);
                }
            }
        }
        let mut y = [_mm512_setzero_si512(); 4];
        for v in 0..NV {
            y[v] = q.apply::<FIX>(_mm512_add_epi32(acc[v], acc2[v]));
        }
        if st.unsigned {
            // SAFETY: byte row `ch` of `cb` holds P = 64 bytes.
            unsafe { _mm512_storeu_si512(cb.add(ch * P) as *mut _, st.narrow4(y)) };
        } else {
            // int8 outputs: one saturating narrowing per vector (pixels past NV·16 are left
            // as they are: dropped by the transpose).
            for (v, &yv) in y.iter().enumerate().take(NV) {
                let b = st.clamp16(_mm512_cvtsepi32_epi8(yv));
                // SAFETY: bytes 16v..16v + 16 < P of row `ch` of `cb`.
                unsafe { _mm_storeu_si128(cb.add(ch * P + 16 * v) as *mut _, b) };
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn spmm_i8_16x4(
    p: &PackedI8,
    a: &[i8],
    a_stride: usize,
    m: usize,
    out: &mut [i8],
    out_stride: usize,
    rq: &Requant,
    scratch: &mut [u32],
) {
    // SAFETY: plugged only when AVX-512 VNNI is enabled; `run` checked lengths and scratch.
    unsafe {
        i8_16x4_impl(
            p,
            a.as_ptr(),
            a_stride,
            m,
            out.as_mut_ptr(),
            out_stride,
            rq,
            scratch.as_mut_ptr(),
        )
    }
}

/// # Safety
/// As `i8_1x4_impl`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
#[allow(clippy::too_many_arguments)]
unsafe fn i8_16x4_impl(
    p: &PackedI8,
    a: *const i8,
    a_stride: usize,
    m: usize,
    out: *mut i8,
    out_stride: usize,
    rq: &Requant,
    scratch: *mut u32,
) {
    const P: usize = I8_TILE;
    let k4n = p.k.div_ceil(4);
    let nb = p.block_ptr.len() - 1;
    let st = Store::new(rq);
    // Whole words per row: activations are read in place (`^ xor` in registers); else the tile
    // is copied into whole, zero-padded words first.
    let direct = p.k.is_multiple_of(4);
    let flip = u32::from_ne_bytes([p.xor; 4]);
    let (fast, fix) = (RqSplat::fits(rq), needs_fix(rq.zero_point(), rq.min()));
    // Rows per pass over the block rows: read in place, all of them (each pass over a block
    // row has a fixed cost: its constants, the pipeline's fill and drain); copied, a tile.
    let tile = if direct { m } else { P };
    let mut m0 = 0;
    while m0 < m {
        let pt = (m - m0).min(tile);
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
        // SAFETY: output rows m0..m0 + pt.
        let o = unsafe { out.add(m0 * out_stride) };
        let mut g = 0;
        while g < nb {
            // SAFETY: block rows g (and g + 1 when paired) exist; `rows_at` gives rows < pt.
            unsafe {
                let pair = p.paired[g];
                let args = (p, rq, &st, g, base, stride, pt, flip, o, out_stride);
                match (pair, fast, fix) {
                    (true, true, true) => span_16x4::<2, true, true>(args),
                    (true, true, false) => span_16x4::<2, true, false>(args),
                    (true, false, _) => span_16x4::<2, false, true>(args),
                    (false, true, true) => span_16x4::<1, true, true>(args),
                    (false, true, false) => span_16x4::<1, true, false>(args),
                    (false, false, _) => span_16x4::<1, false, true>(args),
                }
                g += if pair { 2 } else { 1 };
            }
        }
        m0 += tile;
    }
}

/// `G` block rows (16·G channels, the same blocks: paired rows) from block row `g`, all pixels
/// `0..pt` of the tile at `base` (rows `stride` bytes apart, `^ flip` in registers),
/// requantized into `o` (rows `out_stride` apart).
///
/// # Safety
/// AVX-512 VNNI; block rows `g..g + G` exist and share their blocks' `k4` when `G = 2`; every
/// row `< pt` at `base` is readable for 4 bytes at every block's `4·k4`; `o` holds `pt` rows of N.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
#[allow(clippy::too_many_arguments)]
unsafe fn span_16x4<const G: usize, const FAST: bool, const FIX: bool>(
    (p, rq, st, g, base, stride, pt, flip, o, out_stride): SpanArgs,
) {
    let n = p.n;
    let (s, e) = (p.block_ptr[g] as usize, p.block_ptr[g + 1] as usize);
    let zero = _mm512_setzero_si512();
    let mut q = [RqLanes::new(zero, zero, 0, 0); G];
    let mut qf = [RqFast::new(zero, _mm512_set1_epi32(-1), 0); G];
    let mut c = [_mm512_setzero_si512(); G];
    let mut nvalid = [0usize; G];
    let mut w0 = [0usize; G];
    for h in 0..G {
        let (mv, sv) = channel_params(rq, (g + h) * 16, n);
        if FAST {
            qf[h] = RqFast::new(mv, sv, rq.zero_point());
        } else {
            q[h] = RqLanes::new(mv, sv, rq.zero_point(), rq.min());
        }
        // SAFETY: `c` has ceil(N/16)·16 entries.
        c[h] = unsafe { _mm512_loadu_si512(p.c.as_ptr().add((g + h) * 16) as *const _) };
        nvalid[h] = (n - (g + h) * 16).min(16);
        w0[h] = p.block_ptr[g + h] as usize;
    }
    let mut px = 0;
    // Paired block rows only: one block row measured no faster pipelined (784×144×32 at 90 %:
    // 4884 ns plain, 5384 ns pipelined), its 8 sums leaving fewer registers to overlap with.
    if G == 2 && FAST && !st.unsigned && nvalid.iter().all(|&v| v == 16) && pt >= PIPE_R {
        let groups = pt / PIPE_R;
        let lohi = (_mm512_set1_epi32(rq.min()), _mm512_set1_epi32(rq.max()));
        // SAFETY: as the caller guarantees; rows 0..PIPE_R·groups ≤ pt; 16·G whole channels.
        unsafe {
            let at = o.add(g * 16);
            let args = (
                p, &qf, &c, lohi, s, e, &w0, base, stride, groups, flip, at, out_stride,
            );
            match (flip != 0, st.full) {
                (true, true) => span_pipelined::<G, FIX, true, false>(args),
                (true, false) => span_pipelined::<G, FIX, true, true>(args),
                (false, true) => span_pipelined::<G, FIX, false, false>(args),
                (false, false) => span_pipelined::<G, FIX, false, true>(args),
            }
        }
        px = PIPE_R * groups;
    }
    while px < pt {
        // SAFETY: as the caller guarantees.
        let (acc, cnt) = unsafe { dot_pass!(G, p, s, e, &w0, base, stride, px, pt, flip, &c) };
        for h in 0..G {
            let mut y = [_mm512_setzero_si512(); 8];
            if FAST {
                // Fixed bounds (1, 4 or 8 rows, as `dot_span`) keep the rows in registers; rows
                // past `cnt` are dropped by the stores.
                let r = |j: usize| qf[h].apply::<FIX>(acc[h][j]);
                match cnt {
                    1 => y[0] = r(0),
                    2..=4 => {
                        for (j, y) in y.iter_mut().enumerate().take(4) {
                            *y = r(j);
                        }
                    }
                    _ => {
                        for (j, y) in y.iter_mut().enumerate() {
                            *y = r(j);
                        }
                    }
                }
            } else {
                for j in 0..cnt {
                    y[j] = q[h].apply(acc[h][j]);
                }
            }
            // SAFETY: output row px < pt; channels (g + h)·16.. + nvalid ≤ N.
            let at = unsafe { o.add(px * out_stride + (g + h) * 16) };
            if !st.unsigned {
                // int8 outputs: one saturating narrowing per row (which keeps every value on
                // its side of an int8 clamp), the clamp on 16 bytes.
                let mask = if nvalid[h] >= 16 {
                    0xFFFF
                } else {
                    (1u16 << nvalid[h]) - 1
                };
                for (j, &yj) in y.iter().enumerate().take(cnt) {
                    let b = st.clamp16(_mm512_cvtsepi32_epi8(yj));
                    // SAFETY: row px + j < pt, `nvalid` bytes from `at`.
                    unsafe {
                        if nvalid[h] >= 16 {
                            _mm_storeu_si128(at.add(j * out_stride) as *mut _, b);
                        } else {
                            _mm_mask_storeu_epi8(at.add(j * out_stride), mask, b);
                        }
                    }
                }
            } else {
                let lo4 = st.narrow4([y[0], y[1], y[2], y[3]]);
                let hi4 = st.narrow4([y[4], y[5], y[6], y[7]]);
                // SAFETY: rows px..px + cnt < pt; channels (g + h)·16.. + nvalid ≤ N.
                unsafe {
                    store_lanes(lo4, at, out_stride, cnt.min(4), nvalid[h]);
                    if cnt > 4 {
                        store_lanes(hi4, at.add(4 * out_stride), out_stride, cnt - 4, nvalid[h]);
                    }
                }
            }
        }
        px += 8;
    }
}

/// Pixels per pass of [`span_pipelined`].
const PIPE_R: usize = 8;

/// The arguments of [`span_pipelined`].
type PipeArgs<'a, const G: usize> = (
    &'a PackedI8,
    &'a [RqFast; G],
    &'a [__m512i; G],
    (__m512i, __m512i),
    usize,
    usize,
    &'a [usize; G],
    *const u8,
    usize,
    usize,
    u32,
    *mut i8,
    usize,
);

/// Whole passes of `PIPE_R` pixels of [`span_16x4`] (fast requantization, int8 outputs, 16·G
/// whole channels), software-pipelined: each pass's blocks are split into `PIPE_R` steps, and
/// step `j` first requantizes and stores the previous pass's pixel `j`, so that the epilogue runs
/// beside the `vpdpbusd` chains instead of after them. Sums start from the bias. `CLAMP`: clamp
/// to `lohi` (in int32) before the saturating narrowing, else the clamp is int8's whole range.
///
/// # Safety
/// AVX-512 VNNI; as [`span_16x4`] for rows `0..PIPE_R·groups`; `o` (the block rows' first
/// channel) holds `PIPE_R·groups` rows of 16·G bytes at `out_stride`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
unsafe fn span_pipelined<const G: usize, const FIX: bool, const FLIP: bool, const CLAMP: bool>(
    (p, qf, c, (lo, hi), s, e, w0, base, stride, groups, flip, o, out_stride): PipeArgs<G>,
) {
    const R: usize = PIPE_R;
    let fv = _mm512_set1_epi32(flip as i32);
    let nb = e - s;
    let mut bounds = [s; R + 1];
    for (j, b) in bounds.iter_mut().enumerate() {
        *b = s + nb * j / R;
    }
    let mut prev = [[_mm512_setzero_si512(); R]; G];
    for grp in 0..=groups {
        let cur = grp < groups;
        let mut rows = [base; R];
        if cur {
            for (j, r) in rows.iter_mut().enumerate() {
                // SAFETY: row R·grp + j < R·groups ≤ pt.
                *r = unsafe { base.add((R * grp + j) * stride) };
            }
        }
        let mut acc = [[_mm512_setzero_si512(); R]; G];
        for h in 0..G {
            acc[h] = [c[h]; R];
        }
        for step in 0..R {
            if grp > 0 {
                // SAFETY: row R·(grp − 1) + step < R·groups of `o`, 16·G bytes.
                let at = unsafe { o.add((R * (grp - 1) + step) * out_stride) };
                for h in 0..G {
                    let mut y = qf[h].apply::<FIX>(prev[h][step]);
                    if CLAMP {
                        y = _mm512_min_epi32(_mm512_max_epi32(y, lo), hi);
                    }
                    // SAFETY: as above.
                    unsafe { _mm512_mask_cvtsepi32_storeu_epi8(at.add(16 * h), 0xFFFF, y) };
                }
            }
            if cur {
                for b in bounds[step]..bounds[step + 1] {
                    let mut wv = [_mm512_setzero_si512(); G];
                    for h in 0..G {
                        // SAFETY: block row h's blocks w0[h]..w0[h] + nb hold 16 words each.
                        wv[h] = unsafe {
                            _mm512_loadu_si512(p.w.as_ptr().add((w0[h] + b - s) * 16) as *const _)
                        };
                    }
                    // SAFETY: block b < e; every row is readable at 4·k4 (caller).
                    let k4 = unsafe { *p.k4.get_unchecked(b) } as usize * 4;
                    #[allow(clippy::needless_range_loop)] // `j` indexes rows and accumulators
                    for j in 0..R {
                        // SAFETY: as above.
                        let xb = unsafe {
                            if FLIP {
                                bcast_xor(rows[j].add(k4), fv)
                            } else {
                                _mm512_set1_epi32((rows[j].add(k4) as *const i32).read_unaligned())
                            }
                        };
                        for h in 0..G {
                            acc[h][j] = _mm512_dpbusd_epi32(acc[h][j], xb, wv[h]);
                        }
                    }
                }
            }
        }
        prev = acc;
    }
}

/// One pass of `dot_span` over the 8 pixels from `px` of a tile of `pt` rows at `base` (rows
/// `stride` bytes apart; a row repeated past the tile is computed and dropped), instantiated
/// for 1, 4 or 8 rows and with or without `flip`: `(sums, rows that count)`. A macro because
/// the compiler did not inline the same code as an `#[inline]` `target_feature` function
/// (196×384×64 16×4 at 90 %: 3888 → 4570 ns).
///
/// Unsafe to expand: as `dot_span`, for rows `0..pt` at `base`.
macro_rules! dot_pass {
    ($g:ident, $p:expr, $s:expr, $e:expr, $w0:expr, $base:expr, $stride:expr, $px:expr,
     $pt:expr, $flip:expr, $c:expr) => {{
        let (base, stride, px, pt, flip): (*const u8, usize, usize, usize, u32) =
            ($base, $stride, $px, $pt, $flip);
        let mut rows = [base; 8];
        for (j, r) in rows.iter_mut().enumerate() {
            // Row min(px + j, pt − 1) < pt of the source.
            *r = base.add((px + j).min(pt - 1) * stride);
        }
        let cnt = (pt - px).min(8);
        let (p, s, e, w0, c) = ($p, $s, $e, $w0, $c);
        let sums = match (cnt, flip != 0) {
            (1, true) => dot_span::<$g, 1, true>(p, s, e, w0, &rows, flip, c),
            (1, false) => dot_span::<$g, 1, false>(p, s, e, w0, &rows, 0, c),
            (2..=4, true) => dot_span::<$g, 4, true>(p, s, e, w0, &rows, flip, c),
            (2..=4, false) => dot_span::<$g, 4, false>(p, s, e, w0, &rows, 0, c),
            (_, true) => dot_span::<$g, 8, true>(p, s, e, w0, &rows, flip, c),
            (_, false) => dot_span::<$g, 8, false>(p, s, e, w0, &rows, 0, c),
        };
        (sums, cnt)
    }};
}
pub(super) use dot_pass;

/// `R` rows (pixels) × `G` block rows of 16 channels sharing blocks `s..e`'s `k4` (block row
/// `h`'s weights start at block `w0[h]`): `init[h] + Σ_blocks dot4(row[k4] ^ flip, w)`.
///
/// # Safety
/// AVX-512 VNNI; each `rows[j]` is readable for 4 bytes at `4·k4` of every block `s..e`; block
/// rows `h` hold `e − s` blocks from `w0[h]`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
#[inline]
pub(super) unsafe fn dot_span<const G: usize, const R: usize, const FLIP: bool>(
    p: &PackedI8,
    s: usize,
    e: usize,
    w0: &[usize; G],
    rows: &[*const u8; 8],
    flip: u32,
    init: &[__m512i; G],
) -> [[__m512i; 8]; G] {
    let fv = _mm512_set1_epi32(flip as i32);
    let mut acc = [[_mm512_setzero_si512(); 8]; G];
    for h in 0..G {
        if R == 1 {
            acc[h][0] = init[h];
        } else {
            acc[h] = [init[h]; 8];
        }
    }
    let r = *rows;
    let x = |b: usize, j: usize| {
        // SAFETY: as the caller guarantees (block b < e, row j).
        unsafe {
            let at = r[j].add(*p.k4.get_unchecked(b) as usize * 4);
            if FLIP {
                bcast_xor(at, fv)
            } else {
                _mm512_set1_epi32((at as *const i32).read_unaligned())
            }
        }
    };
    // SAFETY: the weights hold 16 words per block.
    let w = |b: usize| unsafe { _mm512_loadu_si512(p.w.as_ptr().add(b * 16) as *const _) };
    if R == 1 {
        // One pixel: independent chains over the blocks (4 for one block row, 2 each for two).
        const U: usize = 4;
        let mut b = s;
        while b + U <= e {
            for u in 0..U {
                let xb = x(b + u, 0);
                if G == 1 {
                    acc[0][u] = _mm512_dpbusd_epi32(acc[0][u], xb, w(b + u));
                } else {
                    for h in 0..G {
                        let wb = w(w0[h] + (b + u - s));
                        acc[h][u % 2] = _mm512_dpbusd_epi32(acc[h][u % 2], xb, wb);
                    }
                }
            }
            b += U;
        }
        for (u, b) in (b..e).enumerate() {
            let xb = x(b, 0);
            for h in 0..G {
                acc[h][u] = _mm512_dpbusd_epi32(acc[h][u], xb, w(w0[h] + (b - s)));
            }
        }
        for acc in acc.iter_mut() {
            let s01 = _mm512_add_epi32(acc[0], acc[1]);
            let s23 = _mm512_add_epi32(acc[2], acc[3]);
            acc[0] = _mm512_add_epi32(s01, s23);
        }
        return acc;
    }
    for b in s..e {
        let mut wv = [_mm512_setzero_si512(); G];
        for h in 0..G {
            wv[h] = w(w0[h] + (b - s));
        }
        #[allow(clippy::needless_range_loop)] // `j` indexes the rows and every block row's `acc`
        for j in 0..R {
            let xb = x(b, j);
            for h in 0..G {
                acc[h][j] = _mm512_dpbusd_epi32(acc[h][j], xb, wv[h]);
            }
        }
    }
    acc
}

/// The 4 bytes at `p` broadcast to 16 lanes, `^ f`, in one instruction (an embedded broadcast:
/// the compiler would otherwise xor a scalar and broadcast it with a shuffle).
///
/// The alternative without the XOR (weights stored `+ 128` as the unsigned operand, int8
/// activations as `vpdpbusd`'s signed broadcast operand, `128 · Σ a` over each block row's
/// columns subtracted per pixel) measured slower on Zen 4 with every correction tried, against
/// ~9 % to gain at most (paired block rows, pipelined, no correction at all: 196×384×64 at 90 %,
/// 32×4 blocks, 3337 ns against 3659–3729 ns): per-word activation sums in a pass of their own
/// (one `vpdpbusd` with ones per 64 bytes, stored) + scalar sums per pixel and block row,
/// 1.7–2× slower (the pass alone 0.4–0.9 ns per 64 bytes of activations); the sums of 8 pixels'
/// words per block by `vpgatherdd` + `vpdpbusd`, +30 %; by `pdep` into 16-bit fields on the
/// integer pipes, +55 %. Reading a pre-XORed copy of the activations as plain broadcasts (the
/// copied-tile path) costs +5 % (49×960×320) to +60 % (784×144×32): at these shapes any extra
/// pass over the activations costs more than the XOR it saves.
///
/// # Safety
/// AVX-512F; `p` readable for 4 bytes.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn bcast_xor(p: *const u8, f: __m512i) -> __m512i {
    let x: __m512i;
    // SAFETY: reads 4 bytes at `p` (caller guarantees); AVX-512F enabled.
    unsafe {
        std::arch::asm!(
            "vpxord {x}, {f}, dword ptr [{p}]{{1to16}}",
            x = lateout(zmm_reg) x,
            f = in(zmm_reg) f,
            p = in(reg) p,
            options(pure, readonly, nostack, preserves_flags)
        );
    }
    x
}

/// Stores 128-bit lane `j < rows` of `v` (16 bytes) at `at + j·stride`, its first `cols` bytes.
///
/// # Safety
/// AVX-512; those bytes writable.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
#[inline]
unsafe fn store_lanes(v: __m512i, at: *mut i8, stride: usize, rows: usize, cols: usize) {
    let lanes = [
        _mm512_extracti32x4_epi32::<0>(v),
        _mm512_extracti32x4_epi32::<1>(v),
        _mm512_extracti32x4_epi32::<2>(v),
        _mm512_extracti32x4_epi32::<3>(v),
    ];
    let mask: __mmask16 = if cols >= 16 {
        0xFFFF
    } else {
        (1u16 << cols) - 1
    };
    for (j, &l) in lanes.iter().enumerate().take(rows) {
        // SAFETY: as the caller guarantees.
        unsafe {
            if cols >= 16 {
                _mm_storeu_si128(at.add(j * stride) as *mut _, l);
            } else {
                _mm_mask_storeu_epi8(at.add(j * stride), mask, l);
            }
        }
    }
}

/// Requantization of 16 lanes, bit for bit [`Requant::apply`] before the clamp, with the two
/// roundings of `MultiplyByQuantizedMultiplier` combined into one in 64-bit lanes: for the
/// product `p = x·m` and right shift `e`,
/// `RDP(SRDHM(x, m), e) = ⌊(p + 2^30 + 2^(30+e) − [p < −2^30]·2^31) / 2^(31+e)⌋` when `e ≥ 1`
/// (nested floor divisions; SRDHM's half-up rounding is the `2^30`, RDP's ties-away rounding the
/// rest) and `⌊(p + 2^30) / 2^31⌋` when `e = 0`. The one saturating case (`x = m = i32::MIN`)
/// lands on `2^31` only when `e = 0` and is clamped to `i32::MAX` there.
#[derive(Clone, Copy)]
struct RqLanes {
    mult: __m512i,
    mult_odd: __m512i,
    lsh: __m512i,
    any_lsh: bool,
    /// Even / odd channels, 64-bit lanes: the added constant, the `[p < −2^30]` correction, and
    /// the shift `31 + e`.
    nudge: [__m512i; 2],
    corr: [__m512i; 2],
    sh: [__m512i; 2],
    /// Some multiplier is `i32::MIN`.
    sat: bool,
    /// Apply the `[p < −2^30]` correction. It only moves results of negative `SRDHM` (whose
    /// final value is then ≤ 0, and ≥ −2^30 when `e ≥ 1`, the only lanes corrected), so it is
    /// not needed when the clamp's lower bound is at least the zero point and the zero point
    /// above −2^30 (every such result clamps to the lower bound either way: fused ReLU).
    fix: bool,
    zp: __m512i,
}

impl RqLanes {
    /// From per-lane Q31 multipliers and TFLite shifts (`−31..=30`), the zero point and the
    /// clamp's lower bound.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    fn new(mult: __m512i, shift: __m512i, zp: i32, lo: i32) -> RqLanes {
        let zero = _mm512_setzero_si512();
        let lsh = _mm512_max_epi32(shift, zero);
        let rsh = _mm512_max_epi32(_mm512_sub_epi32(zero, shift), zero);
        let halves = [
            _mm512_and_si512(rsh, _mm512_set1_epi64(0xFFFF_FFFF)),
            _mm512_srli_epi64(rsh, 32),
        ];
        let (mut nudge, mut corr, mut sh) = ([zero; 2], [zero; 2], [zero; 2]);
        for i in 0..2 {
            let e = halves[i];
            let pos = _mm512_cmpneq_epi64_mask(e, zero);
            let big = _mm512_sllv_epi64(
                _mm512_set1_epi64(1),
                _mm512_add_epi64(e, _mm512_set1_epi64(30)),
            );
            nudge[i] =
                _mm512_add_epi64(_mm512_set1_epi64(1 << 30), _mm512_maskz_mov_epi64(pos, big));
            corr[i] = _mm512_maskz_mov_epi64(pos, _mm512_set1_epi64(1 << 31));
            sh[i] = _mm512_add_epi64(e, _mm512_set1_epi64(31));
        }
        RqLanes {
            mult,
            mult_odd: _mm512_srli_epi64(mult, 32),
            lsh,
            any_lsh: _mm512_test_epi32_mask(lsh, lsh) != 0,
            nudge,
            corr,
            sh,
            sat: _mm512_cmpeq_epi32_mask(mult, _mm512_set1_epi32(i32::MIN)) != 0,
            fix: needs_fix(zp, lo),
            zp: _mm512_set1_epi32(zp),
        }
    }

    /// The same multiplier and shift in every lane.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    fn splat(mult: i32, shift: i32, zp: i32, lo: i32) -> RqLanes {
        let lsh = shift.max(0);
        let e = (-shift).max(0) as i64;
        let (nudge, corr) = if e == 0 {
            (1i64 << 30, 0)
        } else {
            ((1i64 << 30) + (1i64 << (30 + e)), 1i64 << 31)
        };
        let m = _mm512_set1_epi32(mult);
        RqLanes {
            mult: m,
            mult_odd: m,
            lsh: _mm512_set1_epi32(lsh),
            any_lsh: lsh != 0,
            nudge: [_mm512_set1_epi64(nudge); 2],
            corr: [_mm512_set1_epi64(corr); 2],
            sh: [_mm512_set1_epi64(31 + e); 2],
            sat: mult == i32::MIN,
            fix: needs_fix(zp, lo),
            zp: _mm512_set1_epi32(zp),
        }
    }

    /// `MultiplyByQuantizedMultiplier(x) + zp` (wrapping), not yet clamped.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    fn apply(&self, x: __m512i) -> __m512i {
        let x = if self.any_lsh {
            _mm512_sllv_epi32(x, self.lsh)
        } else {
            x
        };
        let p = [
            _mm512_mul_epi32(x, self.mult),
            _mm512_mul_epi32(_mm512_srli_epi64(x, 32), self.mult_odd),
        ];
        let lim = _mm512_set1_epi64(-(1 << 30));
        let mut t = [_mm512_setzero_si512(); 2];
        for i in 0..2 {
            let s = _mm512_add_epi64(p[i], self.nudge[i]);
            let s = if self.fix {
                _mm512_mask_sub_epi64(s, _mm512_cmplt_epi64_mask(p[i], lim), s, self.corr[i])
            } else {
                s
            };
            t[i] = _mm512_srav_epi64(s, self.sh[i]);
            if self.sat {
                t[i] = _mm512_min_epi64(t[i], _mm512_set1_epi64(i32::MAX as i64));
            }
        }
        // The low words of the even and odd results, interleaved back.
        let idx = _mm512_setr_epi32(0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30);
        _mm512_add_epi32(_mm512_permutex2var_epi32(t[0], idx, t[1]), self.zp)
    }
}

/// Requantization of 16 lanes with one multiplier, right shift `e` in 1..=22 (TFLite shift
/// −22..=−1) and zero point within ±256, bit for bit [`RqLanes::apply`] (same combined
/// rounding) in fewer operations: the zero point rides in the 64-bit addend (`zp·2^(31+e)`, no
/// overflow for these shifts), and since `31 + e ≥ 32` the 64-bit shift is the high words'
/// 32-bit shift by `e − 1` (nested floor divisions), so the even and odd products merge with
/// one masked shuffle instead of a permute and an add.
#[derive(Clone, Copy)]
struct RqSplat {
    mult: __m512i,
    nudge: __m512i,
    corr: __m512i,
    /// `e − 1` in every lane (a per-lane shift: the shift by an `xmm` count takes `vpdpbusd`'s
    /// pipes on Zen 4, `vpsravd` does not).
    cnt: __m512i,
}

impl RqSplat {
    /// Every channel of `rq` has a right shift in 1..=22 and a multiplier ≥ 0 (TFLite's are),
    /// and the zero point is within ±256.
    fn fits(rq: &Requant) -> bool {
        let (mults, shifts) = rq.parts();
        // One pass without early exit (it vectorizes): this runs on every call, and a
        // fully-connected layer of 1000 channels runs in about 3 µs.
        let ok = mults
            .iter()
            .zip(shifts)
            .fold(true, |ok, (&m, &s)| ok & (m >= 0) & (-22..=-1).contains(&s));
        rq.zero_point().abs() <= 256 && ok
    }

    /// For a multiplier and TFLite shift (−22..=−1) and zero point of [`RqSplat::fits`].
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    fn new(mult: i32, shift: i32, zp: i32) -> RqSplat {
        let e = -shift as i64;
        let nudge = (1i64 << 30) + (1i64 << (30 + e)) + (zp as i64) * (1i64 << (31 + e));
        RqSplat {
            mult: _mm512_set1_epi32(mult),
            nudge: _mm512_set1_epi64(nudge),
            corr: _mm512_set1_epi64(1 << 31),
            cnt: _mm512_set1_epi32(-shift - 1),
        }
    }

    /// `MultiplyByQuantizedMultiplier(x) + zp`, not yet clamped; `FIX`: see [`RqLanes::fix`].
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    fn apply<const FIX: bool>(&self, x: __m512i) -> __m512i {
        let xo = _mm512_srli_epi64(x, 32);
        let pe = pmuldq(x, self.mult);
        let po = pmuldq(xo, self.mult);
        let mut se = _mm512_add_epi64(pe, self.nudge);
        let mut so = _mm512_add_epi64(po, self.nudge);
        if FIX {
            // The correction where `x < 0` (bit 31 of the word the multiply reads): with a
            // multiplier ≥ 0 that covers every `p < −2^30` and adds only lanes whose result it
            // leaves unchanged (see `Rq16`). An AND and a subtraction, not a 64-bit compare,
            // which would take `vpdpbusd`'s pipes.
            se = _mm512_sub_epi64(se, _mm512_and_si512(x, self.corr));
            so = _mm512_sub_epi64(so, _mm512_and_si512(xo, self.corr));
        }
        // Even words from `se`'s high words, odd words are `so`'s high words already.
        _mm512_srav_epi32(high_words(se, so), self.cnt)
    }
}

/// The per-lane form of [`RqSplat`] (16 channels, each with its multiplier and a right shift
/// in 1..=22; zero point within ±256), bit for bit [`RqLanes::apply`].
#[derive(Clone, Copy)]
struct RqFast {
    mult: __m512i,
    mult_odd: __m512i,
    /// Even / odd lanes' 64-bit addend (rounding + zero point).
    nudge: [__m512i; 2],
    cnt: __m512i,
}

impl RqFast {
    /// From per-lane multipliers and TFLite shifts (each −22..=−1) and the zero point.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    fn new(mult: __m512i, shift: __m512i, zp: i32) -> RqFast {
        let rsh = _mm512_sub_epi32(_mm512_setzero_si512(), shift);
        let halves = [
            _mm512_and_si512(rsh, _mm512_set1_epi64(0xFFFF_FFFF)),
            _mm512_srli_epi64(rsh, 32),
        ];
        let mut nudge = [_mm512_setzero_si512(); 2];
        for (nudge, &e) in nudge.iter_mut().zip(&halves) {
            let big = _mm512_sllv_epi64(
                _mm512_set1_epi64(1),
                _mm512_add_epi64(e, _mm512_set1_epi64(30)),
            );
            let z = _mm512_sllv_epi64(
                _mm512_set1_epi64(zp as i64),
                _mm512_add_epi64(e, _mm512_set1_epi64(31)),
            );
            *nudge = _mm512_add_epi64(_mm512_add_epi64(_mm512_set1_epi64(1 << 30), big), z);
        }
        RqFast {
            mult,
            mult_odd: _mm512_srli_epi64(mult, 32),
            nudge,
            cnt: _mm512_sub_epi32(rsh, _mm512_set1_epi32(1)),
        }
    }

    /// `MultiplyByQuantizedMultiplier(x) + zp`, not yet clamped; `FIX`: see [`RqLanes::fix`].
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    fn apply<const FIX: bool>(&self, x: __m512i) -> __m512i {
        let xo = _mm512_srli_epi64(x, 32);
        let pe = pmuldq(x, self.mult);
        let po = pmuldq(xo, self.mult_odd);
        let mut se = _mm512_add_epi64(pe, self.nudge[0]);
        let mut so = _mm512_add_epi64(po, self.nudge[1]);
        if FIX {
            // As `RqSplat::apply`.
            let corr = _mm512_set1_epi64(1 << 31);
            se = _mm512_sub_epi64(se, _mm512_and_si512(x, corr));
            so = _mm512_sub_epi64(so, _mm512_and_si512(xo, corr));
        }
        _mm512_srav_epi32(high_words(se, so), self.cnt)
    }
}

/// The arguments of [`span_16x4`]: weights, requantization, store, first block row, the tile
/// (base, row stride, pixels, activation flip), the output (base, row stride).
type SpanArgs<'a> = (
    &'a PackedI8,
    &'a Requant,
    &'a Store,
    usize,
    *const u8,
    usize,
    usize,
    u32,
    *mut i8,
    usize,
);

/// `vpmuldq` (`_mm512_mul_epi32`) as written: on a splat multiplier the compiler otherwise
/// rewrites it into sign extensions and the slower `vpmullq`.
#[inline]
#[target_feature(enable = "avx512f")]
fn pmuldq(a: __m512i, b: __m512i) -> __m512i {
    let r: __m512i;
    // SAFETY: a register-only AVX-512F instruction; the feature is enabled.
    unsafe {
        std::arch::asm!(
            "vpmuldq {r}, {a}, {b}",
            r = lateout(zmm_reg) r,
            a = in(zmm_reg) a,
            b = in(zmm_reg) b,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    r
}

/// The high words of the 64-bit lanes of `even` and `odd`, interleaved back into 16 words (word
/// 2i from `even`'s lane i, word 2i + 1 from `odd`'s): one masked `vpshufd` as written. Left to
/// itself the compiler picks `vpermt2d`, which on Zen 4 competes with `vpdpbusd` for its pipes.
#[inline]
#[target_feature(enable = "avx512f")]
fn high_words(even: __m512i, odd: __m512i) -> __m512i {
    let mut r = odd;
    let even_words: __mmask16 = 0x5555;
    // SAFETY: a register-only AVX-512F instruction; the feature is enabled.
    unsafe {
        std::arch::asm!(
            "vpshufd {r}{{{k}}}, {e}, 0xB1",
            r = inout(zmm_reg) r,
            e = in(zmm_reg) even,
            k = in(kreg) even_words,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    r
}

/// See [`RqLanes::fix`].
fn needs_fix(zp: i32, lo: i32) -> bool {
    !(lo >= zp && zp > -(1 << 30))
}

/// The clamp and narrowing of requantized int32 to output bytes: saturating packs (which keep
/// every value on its side of a clamp range inside the byte type), then one byte clamp.
#[derive(Clone, Copy)]
struct Store {
    unsigned: bool,
    /// The clamp is int8's whole range (nothing to clamp after a saturating narrowing).
    full: bool,
    lo: __m512i,
    hi: __m512i,
}

impl Store {
    /// For `rq`'s clamp, within int8 or uint8 (uint8 bytes when the maximum exceeds 127).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    fn new(rq: &Requant) -> Store {
        Store {
            unsigned: rq.max() > 127,
            full: rq.min() == -128 && rq.max() == 127,
            lo: _mm512_set1_epi8(rq.min() as u8 as i8),
            hi: _mm512_set1_epi8(rq.max() as u8 as i8),
        }
    }

    /// The int8 clamp of 16 signed bytes (saturated from int32; the clamp within int8).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    fn clamp16(&self, b: __m128i) -> __m128i {
        if self.full {
            b
        } else {
            _mm_min_epi8(
                _mm_max_epi8(b, _mm512_castsi512_si128(self.lo)),
                _mm512_castsi512_si128(self.hi),
            )
        }
    }

    /// Four vectors of 16 int32 → 64 clamped bytes, 128-bit lane `j` holding `y[j]` in order.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    fn narrow4(&self, y: [__m512i; 4]) -> __m512i {
        let a = _mm512_packs_epi32(y[0], y[1]);
        let b = _mm512_packs_epi32(y[2], y[3]);
        let v = if self.unsigned {
            _mm512_min_epu8(_mm512_max_epu8(_mm512_packus_epi16(a, b), self.lo), self.hi)
        } else {
            _mm512_min_epi8(_mm512_max_epi8(_mm512_packs_epi16(a, b), self.lo), self.hi)
        };
        // Lane L, word j holds y[j][4L..4L + 4]: transpose the 4×4 words.
        let idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
        _mm512_permutexvar_epi32(idx, v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The combined rounding and the saturating narrowing against `Requant::apply` on edge
    /// values: extreme accumulators and multipliers (incl. `i32::MIN`, the saturating case),
    /// every shift, ties of both roundings, zero points that make the addition wrap.
    #[test]
    fn requant_lanes_match_scalar() {
        if !Isa::Avx512Vnni.enabled() {
            eprintln!("skipped: no AVX-512 VNNI");
            return;
        }
        let mut xs = vec![
            i32::MIN,
            i32::MIN + 1,
            i32::MAX,
            i32::MAX - 1,
            0,
            1,
            -1,
            2,
            -2,
        ];
        for e in 0..31 {
            for d in [-1i64, 0, 1] {
                // Around ties of the final division by 2^e, for multipliers near 2^30.
                xs.push(((1i64 << e) * 3 / 2 + d).clamp(i32::MIN as i64, i32::MAX as i64) as i32);
                xs.push((-(1i64 << e) * 3 / 2 + d).clamp(i32::MIN as i64, i32::MAX as i64) as i32);
            }
        }
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 32) as i32
        };
        for _ in 0..200 {
            let v = next();
            xs.push(v);
            xs.push(v >> (v as u32 % 31));
        }
        while !xs.len().is_multiple_of(64) {
            xs.push(next() >> 9);
        }
        let mults = [
            i32::MIN,
            i32::MAX,
            1 << 30,
            (1 << 30) + 1,
            1_518_500_250,
            -1 << 30,
            1,
            0,
        ];
        for &mult in &mults {
            for shift in -31..=30 {
                for (zp, lo, hi) in [
                    (0, -128, 127),
                    (-128, -128, 127),
                    (127, -100, 20),
                    (i32::MAX, -128, 127),
                    (i32::MIN + 3, -128, 127),
                    (255, 0, 255),
                    (0, 3, 200),
                    (-128, -128, 127),
                    (-128, -128, -20),
                    (-5, 0, 127),
                    (0, 0, 255),
                    (7, 7, 255),
                    (-(1 << 30) + 1, -128, 127),
                ] {
                    let rq = Requant::new(vec![mult], vec![shift], zp, lo, hi).unwrap();
                    let got = run_lanes(&rq, &xs);
                    for (i, &x) in xs.iter().enumerate() {
                        let want = rq.apply(x, 0) as u8;
                        assert_eq!(
                            got[i], want,
                            "x {x} mult {mult} shift {shift} zp {zp} clamp {lo}..={hi}"
                        );
                    }
                }
            }
        }
    }

    /// Both constructors (per-lane and splat) through `narrow4`, 64 values at a time.
    fn run_lanes(rq: &Requant, xs: &[i32]) -> Vec<u8> {
        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
        fn go(rq: &Requant, xs: &[i32], out: &mut [u8], per_lane: bool) {
            let (m, s) = rq.channel(0);
            let q = if per_lane {
                RqLanes::new(
                    _mm512_set1_epi32(m),
                    _mm512_set1_epi32(s),
                    rq.zero_point(),
                    rq.min(),
                )
            } else {
                RqLanes::splat(m, s, rq.zero_point(), rq.min())
            };
            let st = Store::new(rq);
            let fix = needs_fix(rq.zero_point(), rq.min());
            let splat = RqSplat::fits(rq).then(|| RqSplat::new(m, s, rq.zero_point()));
            let lanes = RqSplat::fits(rq)
                .then(|| RqFast::new(_mm512_set1_epi32(m), _mm512_set1_epi32(s), rq.zero_point()));
            for (x, o) in xs.chunks_exact(64).zip(out.chunks_exact_mut(64)) {
                let mut y = [_mm512_setzero_si512(); 4];
                for (j, y) in y.iter_mut().enumerate() {
                    // SAFETY: 16 values at 16·j of the 64.
                    let v = unsafe { _mm512_loadu_si512(x[16 * j..].as_ptr() as *const _) };
                    *y = q.apply(v);
                    if let (Some(sq), Some(lq)) = (&splat, &lanes) {
                        // The splat and per-lane fast forms (with and without the correction
                        // when allowed) agree.
                        let forms = [
                            sq.apply::<true>(v),
                            lq.apply::<true>(v),
                            sq.apply::<false>(v),
                            lq.apply::<false>(v),
                        ];
                        for z in forms.into_iter().take(if fix { 2 } else { 4 }) {
                            let mut a = [0i32; 16];
                            let mut b = [0i32; 16];
                            // SAFETY: 16 words each.
                            unsafe {
                                _mm512_storeu_si512(a.as_mut_ptr() as *mut _, *y);
                                _mm512_storeu_si512(b.as_mut_ptr() as *mut _, z);
                            }
                            for i in 0..16 {
                                let (lo, hi) = (rq.min(), rq.max());
                                assert_eq!(
                                    a[i].clamp(lo, hi),
                                    b[i].clamp(lo, hi),
                                    "splat form: x {} mult {m} shift {s} zp {}",
                                    x[16 * j + i],
                                    rq.zero_point()
                                );
                            }
                        }
                    }
                }
                // SAFETY: 64 bytes.
                unsafe { _mm512_storeu_si512(o.as_mut_ptr() as *mut _, st.narrow4(y)) };
            }
        }
        let mut a = vec![0u8; xs.len()];
        let mut b = vec![0u8; xs.len()];
        // SAFETY: AVX-512 checked by the caller.
        unsafe {
            go(rq, xs, &mut a, true);
            go(rq, xs, &mut b, false);
        }
        if let Some(i) = a.iter().zip(&b).position(|(x, y)| x != y) {
            panic!(
                "x {}: per-lane constants give {}, splat {}",
                xs[i], a[i], b[i]
            );
        }
        a
    }
}
