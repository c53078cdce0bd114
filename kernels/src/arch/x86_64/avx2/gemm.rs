//! AVX2 int8 GEMM (6 rows × 8 output channels, `c4`) and f32 FMA GEMM (6 × 16).
//!
//! int8: `vpmaddubsw` would saturate (255·127·2 > i16::MAX), so weights are widened to i16
//! (`vpmovsxbw`) and activations, in the unsigned domain, zero-extended to i16; `vpmaddwd` sums
//! pairs exactly into i32. Each column keeps two partial sums until the epilogue.

use core::arch::x86_64::*;

use super::requant::{low_bytes8, requant8};
use crate::gemm::{F32Args, F32Kernel, I8Args, I8Kernel};
use crate::isa::Isa;

/// `avx2::gemm_qu8s8_6x8c4`.
pub static GEMM_I8: I8Kernel = I8Kernel {
    name: "avx2::gemm_qu8s8_6x8c4",
    isa: Isa::Avx2,
    mr: 6,
    nr: 8,
    kr: 4,
    signed_a: false,
    run: gemm_qu8s8_6x8c4,
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
/// [`I8Args`] contract for a 6×8 `c4` tile; the CPU has AVX2.
unsafe fn gemm_qu8s8_6x8c4(args: &I8Args) {
    // SAFETY: forwarded contract; rows is 1..=6.
    unsafe {
        match args.rows {
            1 => i8_tile::<1>(args),
            2 => i8_tile::<2>(args),
            3 => i8_tile::<3>(args),
            4 => i8_tile::<4>(args),
            5 => i8_tile::<5>(args),
            _ => i8_tile::<6>(args),
        }
    }
}

#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn i8_tile<const R: usize>(args: &I8Args) {
    let k = args.k;
    let groups = k.div_ceil(4);
    let xor = u32::from_ne_bytes([args.a_xor; 4]);
    let mut acc_lo = [_mm256_setzero_si256(); R];
    let mut acc_hi = [_mm256_setzero_si256(); R];
    let mut a = [args.a; R];
    for (r, p) in a.iter_mut().enumerate() {
        // SAFETY: row r < rows lies in A.
        *p = unsafe { args.a.add(r * args.a_stride) };
    }
    let mut w = args.w;
    for g in 0..groups {
        // SAFETY: the packed tile holds ceil(k/4) groups of 32 bytes.
        let (wl, wh) = unsafe {
            (
                _mm256_cvtepi8_epi16(_mm_loadu_si128(w as *const __m128i)),
                _mm256_cvtepi8_epi16(_mm_loadu_si128(w.add(16) as *const __m128i)),
            )
        };
        let full = 4 * g + 4 <= k;
        for r in 0..R {
            let v = if full {
                // SAFETY: bytes 4g..4g+4 of row r exist.
                unsafe { (a[r].add(4 * g) as *const u32).read_unaligned() }
            } else {
                let mut v = 0u32;
                for i in 0..k - 4 * g {
                    // SAFETY: byte 4g + i < k of row r.
                    v |= (unsafe { *a[r].add(4 * g + i) } as u32) << (8 * i);
                }
                v
            };
            let av =
                _mm256_broadcastq_epi64(_mm_cvtepu8_epi16(_mm_cvtsi32_si128((v ^ xor) as i32)));
            acc_lo[r] = _mm256_add_epi32(acc_lo[r], _mm256_madd_epi16(wl, av));
            acc_hi[r] = _mm256_add_epi32(acc_hi[r], _mm256_madd_epi16(wh, av));
        }
        // SAFETY: advances within (or one past) the packed tile.
        w = unsafe { w.add(32) };
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
    for r in 0..R {
        // hadd: [c0 c1 c4 c5 | c2 c3 c6 c7] → reorder 64-bit pairs to c0..c7.
        let s = _mm256_hadd_epi32(acc_lo[r], acc_hi[r]);
        let s = _mm256_permute4x64_epi64(s, 0b11_01_10_00);
        // SAFETY: r < rows.
        let off = _mm256_set1_epi32(unsafe { *args.row_off.add(r) });
        let x = _mm256_add_epi32(_mm256_add_epi32(s, bias), off);
        if !args.acc_out.is_null() {
            // SAFETY: acc_out holds rows × 8 values (I8Args contract).
            unsafe { _mm256_storeu_si256(args.acc_out.add(8 * r) as *mut __m256i, x) };
            continue;
        }
        let bytes = low_bytes8(requant8(x, mult, lsh, rsh, zp, lo, hi)).to_le_bytes();
        let row = args.c.wrapping_add(r * args.c_stride);
        for (j, &b) in bytes.iter().enumerate().take(args.col_hi).skip(args.col_lo) {
            // SAFETY: column j in col_lo..col_hi of row r is writable.
            unsafe { *row.add(j) = b };
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
