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
use crate::arch::x86_64::avx512vnni::requant::Rq16;
use crate::isa::Isa;
use crate::requant::Requant;
use std::arch::x86_64::*;

const F32_TILE: usize = 32;
const I8_TILE: usize = 64;

/// The AVX-512 slots of the sparse dispatch table.
pub(super) const TABLE: SpmmTable = SpmmTable {
    f32_1x1: &SpmmF32Kernel {
        name: "avx512::spmm_f32_32x1",
        isa: Isa::Avx512Vnni,
        tile: F32_TILE,
        run: spmm_f32,
    },
    f32_4x1: &SpmmF32Kernel {
        name: "avx512::spmm_f32_32x4",
        isa: Isa::Avx512Vnni,
        tile: F32_TILE,
        run: spmm_f32,
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
fn spmm_f32(
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
        spmm_f32_impl(
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

/// `dst[c·ds + r] = src[r·ss + c] ^ xor` for `r < rows`, `c < cols` (32-bit elements): 16×16
/// blocks in registers (4 shuffle stages), the edges by [`transpose32_edges`].
///
/// # Safety
/// AVX-512F; `src` readable and `dst` writable at those positions.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn transpose32(
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
            let mut x = [_mm512_setzero_si512(); 16];
            for (i, x) in x.iter_mut().enumerate() {
                // SAFETY: row r0 + i < rows, columns c0..c0 + 16 ≤ cols.
                *x = unsafe { _mm512_loadu_si512(src.add((r0 + i) * ss + c0) as *const _) };
                *x = _mm512_xor_si512(*x, xv);
            }
            let mut t = [_mm512_setzero_si512(); 16];
            for i in 0..8 {
                t[2 * i] = _mm512_unpacklo_epi32(x[2 * i], x[2 * i + 1]);
                t[2 * i + 1] = _mm512_unpackhi_epi32(x[2 * i], x[2 * i + 1]);
            }
            // u[4g + j]: rows 4g..4g + 4, columns j, j + 4, j + 8, j + 12 (one per lane).
            let mut u = [_mm512_setzero_si512(); 16];
            for g in 0..4 {
                let (a, b, c, d) = (t[4 * g], t[4 * g + 1], t[4 * g + 2], t[4 * g + 3]);
                u[4 * g] = _mm512_unpacklo_epi64(a, c);
                u[4 * g + 1] = _mm512_unpackhi_epi64(a, c);
                u[4 * g + 2] = _mm512_unpacklo_epi64(b, d);
                u[4 * g + 3] = _mm512_unpackhi_epi64(b, d);
            }
            for j in 0..4 {
                let v0 = _mm512_shuffle_i32x4::<0x88>(u[j], u[4 + j]);
                let v1 = _mm512_shuffle_i32x4::<0xDD>(u[j], u[4 + j]);
                let v2 = _mm512_shuffle_i32x4::<0x88>(u[8 + j], u[12 + j]);
                let v3 = _mm512_shuffle_i32x4::<0xDD>(u[8 + j], u[12 + j]);
                let cols4 = [
                    (j, _mm512_shuffle_i32x4::<0x88>(v0, v2)),
                    (j + 8, _mm512_shuffle_i32x4::<0xDD>(v0, v2)),
                    (j + 4, _mm512_shuffle_i32x4::<0x88>(v1, v3)),
                    (j + 12, _mm512_shuffle_i32x4::<0xDD>(v1, v3)),
                ];
                for (c, v) in cols4 {
                    // SAFETY: column c0 + c < cols, rows r0..r0 + 16 ≤ rows of `dst`.
                    unsafe { _mm512_storeu_si512(dst.add((c0 + c) * ds + r0) as *mut _, v) };
                }
            }
            c0 += 16;
        }
        if c0 < cols {
            // SAFETY: the remaining columns of these 16 rows, same bounds.
            unsafe {
                transpose32_edges(
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
        unsafe { transpose32_edges(src.add(r0 * ss), ss, rows - r0, cols, dst.add(r0), ds, xor) };
    }
}

/// As [`transpose32`], 4 rows at a time (4×4 per 128-bit lane), then single elements.
///
/// # Safety
/// As [`transpose32`].
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn transpose32_edges(
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
                *x = _mm512_xor_si512(*x, xv);
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
                *x = _mm_xor_si128(*x, xx);
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
unsafe fn spmm_f32_impl(
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
    const P: usize = F32_TILE;
    let k = p.k;
    let ap = scratch;
    // SAFETY: scratch_len = P·(K + ceil(N/4)·4 + 4): activations [K][P], then outputs [N'][P].
    let cb = unsafe { scratch.add(P * k) };
    let mut m0 = 0;
    while m0 < m {
        let pt = (m - m0).min(P);
        // Vectors of 16 pixels actually computed: a short last tile costs what it holds.
        let nv = pt.div_ceil(16);
        // SAFETY: rows m0..m0 + pt of `a` (K each) are in bounds; `ap` holds K·P floats.
        unsafe {
            transpose32(
                a.add(m0 * a_stride) as *const u32,
                a_stride,
                pt,
                k,
                ap as *mut u32,
                P,
                0,
            );
            if pt < nv * 16 {
                for c in 0..k {
                    for r in pt..nv * 16 {
                        *ap.add(c * P + r) = 0.0;
                    }
                }
            }
            if nv == 1 {
                f32_groups::<1>(p, ap, cb, lo, hi);
            } else {
                f32_groups::<2>(p, ap, cb, lo, hi);
            }
        }
        // SAFETY: `cb` holds N rows of P; output rows m0..m0 + pt have N columns.
        unsafe {
            transpose32(
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

/// Every group of channels on `NV` vectors of 16 pixels: `cb[n][..] = clamp(bias + Σ w·ap[k])`.
///
/// # Safety
/// AVX-512F + FMA; `ap` holds K rows of `F32_TILE` floats, `cb` ceil(N/4)·4 rows; the packed
/// column indices are below K.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,fma")]
#[inline]
unsafe fn f32_groups<const NV: usize>(
    p: &PackedF32,
    ap: *const f32,
    cb: *mut f32,
    lo: f32,
    hi: f32,
) {
    const P: usize = F32_TILE;
    let (lov, hiv) = (_mm512_set1_ps(lo), _mm512_set1_ps(hi));
    let ngroups = p.group_ptr.len() - 1;
    for grp in 0..ngroups {
        let (s, e) = (p.group_ptr[grp] as usize, p.group_ptr[grp + 1] as usize);
        if p.layout.rows() == 1 {
            let mut acc = [_mm512_set1_ps(p.bias[grp]); NV];
            let mut acc2 = [_mm512_setzero_ps(); NV];
            let mut i = s;
            // SAFETY: kidx < K (validated source), so every load is within `ap`'s K·P.
            unsafe {
                while i + 2 <= e {
                    let x = ap.add(*p.kidx.get_unchecked(i) as usize * P);
                    let w = _mm512_set1_ps(*p.vals.get_unchecked(i));
                    let x2 = ap.add(*p.kidx.get_unchecked(i + 1) as usize * P);
                    let w2 = _mm512_set1_ps(*p.vals.get_unchecked(i + 1));
                    for v in 0..NV {
                        acc[v] = _mm512_fmadd_ps(w, _mm512_loadu_ps(x.add(16 * v)), acc[v]);
                        acc2[v] = _mm512_fmadd_ps(w2, _mm512_loadu_ps(x2.add(16 * v)), acc2[v]);
                    }
                    i += 2;
                }
                if i < e {
                    let x = ap.add(*p.kidx.get_unchecked(i) as usize * P);
                    let w = _mm512_set1_ps(*p.vals.get_unchecked(i));
                    for (v, acc) in acc.iter_mut().enumerate() {
                        *acc = _mm512_fmadd_ps(w, _mm512_loadu_ps(x.add(16 * v)), *acc);
                    }
                }
            }
            for v in 0..NV {
                let r = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(acc[v], acc2[v]), lov), hiv);
                // SAFETY: channel grp < N' rows of `cb`.
                unsafe { _mm512_storeu_ps(cb.add(grp * P + 16 * v), r) };
            }
        } else {
            let mut acc = [[_mm512_setzero_ps(); NV]; 4];
            for (r, acc) in acc.iter_mut().enumerate() {
                *acc = [_mm512_set1_ps(p.bias[grp * 4 + r]); NV];
            }
            // SAFETY: kidx < K; vals has 4 per entry.
            unsafe {
                for i in s..e {
                    let x = ap.add(*p.kidx.get_unchecked(i) as usize * P);
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
                    let y = _mm512_min_ps(_mm512_max_ps(av, lov), hiv);
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
unsafe fn pack_i8(
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
            unsafe { transpose32(a as *const u32, a_stride / 4, rows, k4f, dst, P, flip) };
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

fn channel_params(rq: &Requant, first: usize, n: usize) -> ([i32; 16], [i32; 16]) {
    let (mut m, mut s) = ([0i32; 16], [0i32; 16]);
    for i in 0..16 {
        let ch = (first + i).min(n - 1);
        (m[i], s[i]) = rq.channel(ch);
    }
    (m, s)
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
    let ap = scratch;
    // SAFETY: scratch = P·(K4 + ceil(N/16)·4 + 1) words: activations, then N'·P output bytes.
    let cb = unsafe { scratch.add(P * k4n) } as *mut i8;
    let n = p.n;
    let mut m0 = 0;
    while m0 < m {
        let pt = (m - m0).min(P);
        // SAFETY: rows m0..m0 + pt in bounds; `ap` holds K4·P words.
        unsafe { pack_i8(p.xor, a.add(m0 * a_stride), a_stride, pt, p.k, ap, true) };
        // SAFETY: AVX-512 VNNI; `ap` and `cb` as sized above; packed k4 < K4.
        unsafe {
            match pt.div_ceil(16) {
                1 => i8_channels::<1>(p, ap, cb, rq),
                2 => i8_channels::<2>(p, ap, cb, rq),
                3 => i8_channels::<3>(p, ap, cb, rq),
                _ => i8_channels::<4>(p, ap, cb, rq),
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
            for _ in 0..4 {
                let mut y = [_mm512_setzero_si512(); 16];
                for i in 0..8 {
                    y[2 * i] = _mm512_unpacklo_epi8(x[i], x[i + 8]);
                    y[2 * i + 1] = _mm512_unpackhi_epi8(x[i], x[i + 8]);
                }
                x = y;
            }
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
    for ch in 0..p.n {
        let (s, e) = (p.block_ptr[ch] as usize, p.block_ptr[ch + 1] as usize);
        let mut acc = [_mm512_setzero_si512(); NV];
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
        let c = _mm512_set1_epi32(p.c[ch]);
        let (mm, ss) = rq.channel(ch);
        let q = Rq16::new(
            _mm512_set1_epi32(mm),
            _mm512_set1_epi32(ss),
            rq.zero_point(),
            rq.min(),
            rq.max(),
        );
        for v in 0..NV {
            // SAFETY: AVX-512; byte row `ch` of `cb` holds P bytes.
            unsafe {
                let r = q.apply(_mm512_add_epi32(_mm512_add_epi32(acc[v], acc2[v]), c));
                _mm_storeu_si128(cb.add(ch * P + 16 * v) as *mut _, _mm512_cvtepi32_epi8(r));
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
    let ap = scratch;
    let n = p.n;
    let nb = p.block_ptr.len() - 1;
    let mut m0 = 0;
    while m0 < m {
        let pt = (m - m0).min(P);
        // SAFETY: rows m0..m0 + pt in bounds; `ap` holds P·K4 words.
        unsafe { pack_i8(p.xor, a.add(m0 * a_stride), a_stride, pt, p.k, ap, false) };
        // SAFETY: output rows m0..m0 + pt.
        let o = unsafe { out.add(m0 * out_stride) };
        for g in 0..nb {
            let (s, e) = (p.block_ptr[g] as usize, p.block_ptr[g + 1] as usize);
            let (mm, ss) = channel_params(rq, g * 16, n);
            // SAFETY: 16 words each; `c` has ceil(N/16)·16 entries.
            let (mv, sv, c) = unsafe {
                (
                    _mm512_loadu_si512(mm.as_ptr() as *const _),
                    _mm512_loadu_si512(ss.as_ptr() as *const _),
                    _mm512_loadu_si512(p.c.as_ptr().add(g * 16) as *const _),
                )
            };
            let q = Rq16::new(mv, sv, rq.zero_point(), rq.min(), rq.max());
            let nvalid = (n - g * 16).min(16);
            let smask: __mmask16 = if nvalid == 16 {
                0xFFFF
            } else {
                (1u16 << nvalid) - 1
            };
            macro_rules! store {
                ($px:expr, $acc:expr) => {
                    // SAFETY: AVX-512; row px < pt, masked to the valid channels
                    // g·16..g·16 + nvalid ≤ N.
                    unsafe {
                        let r = q.apply(_mm512_add_epi32($acc, c));
                        let at = o.add(($px) * out_stride + g * 16);
                        _mm_mask_storeu_epi8(at, smask, _mm512_cvtepi32_epi8(r));
                    }
                };
            }
            let mut px = 0;
            while px + 4 <= pt {
                let z = _mm512_setzero_si512();
                let mut acc = [z; 4];
                // SAFETY: k4 < K4; weights 16 words per block; rows px..px + 4 of `ap`.
                unsafe {
                    let row = ap.add(px * k4n);
                    for b in s..e {
                        let w = _mm512_loadu_si512(p.w.as_ptr().add(b * 16) as *const _);
                        let q4 = *p.k4.get_unchecked(b) as usize;
                        for (j, acc) in acc.iter_mut().enumerate() {
                            let x = _mm512_set1_epi32(*row.add(j * k4n + q4) as i32);
                            *acc = _mm512_dpbusd_epi32(*acc, x, w);
                        }
                    }
                }
                for (j, &acc) in acc.iter().enumerate() {
                    store!(px + j, acc);
                }
                px += 4;
            }
            while px < pt {
                let z = _mm512_setzero_si512();
                let (mut a0, mut a1) = (z, z);
                // SAFETY: as above, one row.
                unsafe {
                    let row = ap.add(px * k4n);
                    let mut b = s;
                    while b + 2 <= e {
                        let w0 = _mm512_loadu_si512(p.w.as_ptr().add(b * 16) as *const _);
                        let w1 = _mm512_loadu_si512(p.w.as_ptr().add(b * 16 + 16) as *const _);
                        let x0 =
                            _mm512_set1_epi32(*row.add(*p.k4.get_unchecked(b) as usize) as i32);
                        let x1 =
                            _mm512_set1_epi32(*row.add(*p.k4.get_unchecked(b + 1) as usize) as i32);
                        a0 = _mm512_dpbusd_epi32(a0, x0, w0);
                        a1 = _mm512_dpbusd_epi32(a1, x1, w1);
                        b += 2;
                    }
                    if b < e {
                        let w0 = _mm512_loadu_si512(p.w.as_ptr().add(b * 16) as *const _);
                        let x0 =
                            _mm512_set1_epi32(*row.add(*p.k4.get_unchecked(b) as usize) as i32);
                        a0 = _mm512_dpbusd_epi32(a0, x0, w0);
                    }
                }
                store!(px, _mm512_add_epi32(a0, a1));
                px += 1;
            }
        }
        m0 += P;
    }
}
