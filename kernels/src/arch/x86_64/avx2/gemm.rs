//! AVX2 int8 GEMM (3 rows × 8 output channels, `c8`) and f32 FMA GEMM (6 × 16).
//!
//! int8: `vpmaddubsw` would saturate (255·127·2 > i16::MAX), so weights are widened to i16
//! (`vpmovsxbw`) and activations, in the signed domain, sign-extended to i16; `vpmaddwd` sums
//! pairs exactly into i32. Weights are packed `c8`: one 16-byte load holds two columns × 8 input
//! channels, widened to a ymm. A row's 8 activation bytes are broadcast to both 128-bit halves and
//! widened once per 8 input channels, then multiplied with 4 column pairs: each accumulator keeps
//! 4 partial sums per column, reduced by horizontal adds in the epilogue.

use core::arch::x86_64::*;

use super::requant::{low_bytes8, requant8};
use crate::gemm::{F32Args, F32Kernel, I8Args, I8Kernel};
use crate::isa::Isa;

/// `avx2::gemm_qs8_3x8c8`.
pub static GEMM_I8: I8Kernel = I8Kernel {
    name: "avx2::gemm_qs8_3x8c8",
    isa: Isa::Avx2,
    mr: 3,
    nr: 8,
    kr: 8,
    signed_a: true,
    run: gemm_qs8_3x8c8,
};

/// `avx2::gemm_f32_6x16`.
pub static GEMM_F32: F32Kernel = F32Kernel {
    name: "avx2::gemm_f32_6x16",
    isa: Isa::Avx2,
    mr: 6,
    nr: 16,
    run: gemm_f32_6x16,
};

/// # Safety
/// [`I8Args`] contract for a 3×8 `c8` tile; the CPU has AVX2.
unsafe fn gemm_qs8_3x8c8(args: &I8Args) {
    // SAFETY: forwarded contract; rows is 1..=3.
    unsafe {
        match args.rows {
            1 => i8_tile::<1>(args),
            2 => i8_tile::<2>(args),
            _ => i8_tile::<3>(args),
        }
    }
}

/// 8 activation bytes of a row at input channel `k0` (zero padded past `k`), XORed into the
/// signed domain and sign-extended to 16 i16 lanes (the 8 values twice).
///
/// # Safety
/// The row holds `k` readable bytes.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn act8(row: *const u8, k0: usize, k: usize, xor: u64) -> __m256i {
    if k0 + 8 <= k {
        // SAFETY: bytes k0..k0+8 of the row exist.
        let v = _mm_set1_epi64x(unsafe { (row.add(k0) as *const i64).read_unaligned() });
        if xor == 0 {
            return _mm256_cvtepi8_epi16(v);
        }
        return _mm256_cvtepi8_epi16(_mm_xor_si128(v, _mm_set1_epi64x(xor as i64)));
    }
    let v = {
        let mut v = 0u64;
        for i in 0..k - k0 {
            // SAFETY: byte k0 + i < k of the row.
            v |= (unsafe { *row.add(k0 + i) } as u64) << (8 * i);
        }
        // The padding must stay 0 after the XOR (its weights are 0 anyway, but keep it clean).
        v | (xor & !(u64::MAX >> (8 * (8 - (k - k0)))))
    };
    _mm256_cvtepi8_epi16(_mm_set1_epi64x((v ^ xor) as i64))
}

#[inline]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::needless_range_loop)] // indices name the register tile's row and column pair
unsafe fn i8_tile<const R: usize>(args: &I8Args) {
    let k = args.k;
    let xor = u64::from_ne_bytes([args.a_xor; 8]);
    let mut acc = [[_mm256_setzero_si256(); 4]; R];
    let mut a = [args.a; R];
    for (r, p) in a.iter_mut().enumerate() {
        // SAFETY: row r < rows lies in A.
        *p = unsafe { args.a.add(r * args.a_stride) };
    }
    let mut w = args.w;
    for g in 0..k.div_ceil(8) {
        let mut av = [_mm256_setzero_si256(); R];
        for r in 0..R {
            // SAFETY: row r holds k bytes.
            av[r] = unsafe { act8(a[r], 8 * g, k, xor) };
        }
        for p in 0..4 {
            // SAFETY: the packed tile holds ceil(k/8) groups of 64 bytes (4 column pairs × 16).
            let wp =
                _mm256_cvtepi8_epi16(unsafe { _mm_load_si128(w.add(16 * p) as *const __m128i) });
            for r in 0..R {
                acc[r][p] = _mm256_add_epi32(acc[r][p], _mm256_madd_epi16(av[r], wp));
            }
        }
        // SAFETY: advances within (or one past) the packed tile.
        w = unsafe { w.add(64) };
    }
    // SAFETY: `ep`, `row_off` per the I8Args contract.
    let ep = unsafe { &*args.ep };
    // SAFETY: the epilogue arrays hold NR_MAX ≥ 8 values.
    let (bias, mult, shift) = unsafe {
        (
            _mm256_loadu_si256(ep.bias.as_ptr() as *const __m256i),
            _mm256_loadu_si256(ep.mult.as_ptr() as *const __m256i),
            _mm256_loadu_si256(ep.shift.as_ptr() as *const __m256i),
        )
    };
    let zero = _mm256_setzero_si256();
    let lsh = _mm256_max_epi32(shift, zero);
    let rsh = _mm256_max_epi32(_mm256_sub_epi32(zero, shift), zero);
    let zp = _mm256_set1_epi32(args.zero_point);
    let lo = _mm256_set1_epi32(args.min);
    let hi = _mm256_set1_epi32(args.max);
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (r, acc_r) in acc.iter().enumerate() {
        // Accumulator p holds 4 partial sums of column 2p (low half) and of 2p + 1 (high half):
        // two rounds of hadd give [c0 c2 c4 c6 | c1 c3 c5 c7], then interleave.
        let h01 = _mm256_hadd_epi32(acc_r[0], acc_r[1]);
        let h23 = _mm256_hadd_epi32(acc_r[2], acc_r[3]);
        let s = _mm256_permutevar8x32_epi32(_mm256_hadd_epi32(h01, h23), order);
        // SAFETY: r < rows.
        let off = _mm256_set1_epi32(unsafe { *args.row_off.add(r) });
        let x = _mm256_add_epi32(_mm256_add_epi32(s, bias), off);
        if !args.acc_out.is_null() {
            // SAFETY: acc_out holds rows × 8 values (I8Args contract).
            unsafe { _mm256_storeu_si256(args.acc_out.add(8 * r) as *mut __m256i, x) };
            continue;
        }
        let bytes = low_bytes8(requant8(x, mult, lsh, rsh, zp, lo, hi));
        let row = args.c.wrapping_add(r * args.c_stride);
        if args.col_lo == 0 && args.col_hi == 8 {
            // SAFETY: columns 0..8 of row r are writable.
            unsafe { (row as *mut u64).write_unaligned(bytes) };
        } else {
            for (j, &b) in bytes
                .to_le_bytes()
                .iter()
                .enumerate()
                .take(args.col_hi)
                .skip(args.col_lo)
            {
                // SAFETY: column j in col_lo..col_hi of row r is writable.
                unsafe { *row.add(j) = b };
            }
        }
    }
}

/// # Safety
/// [`F32Args`] contract for a 6×16 tile; the CPU has AVX2 + FMA.
unsafe fn gemm_f32_6x16(args: &F32Args) {
    // SAFETY: forwarded contract; rows is 1..=6.
    unsafe {
        match args.rows {
            1 => f32_tile::<1>(args),
            2 => f32_tile::<2>(args),
            3 => f32_tile::<3>(args),
            4 => f32_tile::<4>(args),
            5 => f32_tile::<5>(args),
            _ => f32_tile::<6>(args),
        }
    }
}

#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn f32_tile<const R: usize>(args: &F32Args) {
    // SAFETY: the tile's bias holds 16 floats.
    let (b0, b1) = unsafe {
        (
            _mm256_loadu_ps(args.bias),
            _mm256_loadu_ps(args.bias.add(8)),
        )
    };
    let mut acc0 = [b0; R];
    let mut acc1 = [b1; R];
    let mut a = [args.a; R];
    for (r, p) in a.iter_mut().enumerate() {
        // SAFETY: row r < rows lies in A.
        *p = unsafe { args.a.add(r * args.a_stride) };
    }
    let mut w = args.w;
    for kk in 0..args.k {
        // SAFETY: the packed tile holds k rows of 16 floats, 64-byte aligned.
        let (w0, w1) = unsafe { (_mm256_load_ps(w), _mm256_load_ps(w.add(8))) };
        for r in 0..R {
            // SAFETY: element kk < k of row r.
            let av = _mm256_set1_ps(unsafe { *a[r].add(kk) });
            acc0[r] = _mm256_fmadd_ps(av, w0, acc0[r]);
            acc1[r] = _mm256_fmadd_ps(av, w1, acc1[r]);
        }
        // SAFETY: advances within (or one past) the packed tile.
        w = unsafe { w.add(16) };
    }
    let lo = _mm256_set1_ps(args.min);
    let hi = _mm256_set1_ps(args.max);
    let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let mut mask = [_mm256_setzero_si256(); 2];
    for (h, m) in mask.iter_mut().enumerate() {
        let from = _mm256_set1_epi32(args.col_lo as i32 - 8 * h as i32);
        let to = _mm256_set1_epi32(args.col_hi as i32 - 8 * h as i32);
        // lane ≥ from && lane < to
        *m = _mm256_andnot_si256(_mm256_cmpgt_epi32(from, lane), _mm256_cmpgt_epi32(to, lane));
    }
    for r in 0..R {
        let row = args.c.wrapping_add(r * args.c_stride);
        for (h, acc) in [acc0[r], acc1[r]].into_iter().enumerate() {
            let y = _mm256_min_ps(_mm256_max_ps(acc, lo), hi);
            // SAFETY: masked store (vmaskmovps does not touch masked-off lanes) of the tile's
            // columns col_lo..col_hi of row r only.
            unsafe { _mm256_maskstore_ps(row.wrapping_add(8 * h), mask[h], y) };
        }
    }
}
