//! `vpdpbusd` int8 GEMM (8 rows × 32 output channels, weights packed `c4`) and f32 FMA GEMM
//! (8 × 32), both with the epilogue in registers.
//!
//! int8: each row's 4 activation bytes are broadcast to all lanes, XORed into the unsigned domain
//! (int8 + 128) and fed to `vpdpbusd`'s unsigned operand; the packed int8 weights are its signed
//! operand, 16 output channels × 4 input channels per zmm. The `+128` shift is folded into the
//! packed bias (see `gemm/pack.rs`).

use core::arch::x86_64::*;

use super::requant::Rq16;
use crate::gemm::{F32Args, F32Kernel, I8Args, I8Kernel};
use crate::isa::Isa;

/// `avx512vnni::gemm_qu8s8_8x32c4`.
pub static GEMM_I8: I8Kernel = I8Kernel {
    name: "avx512vnni::gemm_qu8s8_8x32c4",
    isa: Isa::Avx512Vnni,
    mr: 8,
    nr: 32,
    kr: 4,
    signed_a: false,
    run: gemm_qu8s8_8x32c4,
};

/// `avx512::gemm_f32_8x32`.
pub static GEMM_F32: F32Kernel = F32Kernel {
    name: "avx512::gemm_f32_8x32",
    isa: Isa::Avx512Vnni,
    mr: 8,
    nr: 32,
    run: gemm_f32_8x32,
};

/// # Safety
/// [`I8Args`] contract for an 8×32 `c4` tile; the CPU has AVX-512 VNNI.
unsafe fn gemm_qu8s8_8x32c4(args: &I8Args) {
    // SAFETY: forwarded contract; `rows` is 1..=8 (the driver never passes more than mr).
    unsafe {
        match args.rows {
            1 => i8_tile::<1>(args),
            2 => i8_tile::<2>(args),
            3 => i8_tile::<3>(args),
            4 => i8_tile::<4>(args),
            5 => i8_tile::<5>(args),
            6 => i8_tile::<6>(args),
            7 => i8_tile::<7>(args),
            _ => i8_tile::<8>(args),
        }
    }
}

/// Reads the last `rem` (1..=3) activation bytes of a row as a little-endian u32, zero-padded
/// (the padded weights are zero, so the padding value does not matter, but the read must stay
/// inside the row).
///
/// # Safety
/// `p` is valid for `rem` byte reads.
#[inline(always)]
unsafe fn tail_u32(p: *const u8, rem: usize) -> u32 {
    let mut v = 0u32;
    for i in 0..rem {
        // SAFETY: i < rem (caller contract).
        v |= (unsafe { *p.add(i) } as u32) << (8 * i);
    }
    v
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn i8_tile<const R: usize>(args: &I8Args) {
    let k = args.k;
    let groups = k / 4;
    let rem = k % 4;
    let xor = _mm512_set1_epi8(args.a_xor as i8);
    // SAFETY: `ep` per the I8Args contract; its arrays hold NR_MAX ≥ 32 values.
    let ep = unsafe { &*args.ep };
    let ld = |p: &[i32; crate::gemm::NR_MAX], h: usize| {
        // SAFETY: 16h + 16 ≤ 32 ≤ NR_MAX.
        unsafe { _mm512_loadu_si512(p.as_ptr().add(16 * h) as *const __m512i) }
    };
    // The accumulators start at the folded bias.
    let mut acc0 = [ld(&ep.bias, 0); R];
    let mut acc1 = [ld(&ep.bias, 1); R];
    let mut a = [args.a; R];
    for (r, p) in a.iter_mut().enumerate() {
        // SAFETY: r < R = rows, so row r lies in A (I8Args contract).
        *p = unsafe { args.a.add(r * args.a_stride) };
    }
    let mut w = args.w;
    for g in 0..groups {
        // SAFETY: the packed tile holds ceil(k/4) groups of 128 bytes, 64-byte aligned.
        let (w0, w1) = unsafe {
            (
                _mm512_load_si512(w as *const __m512i),
                _mm512_load_si512(w.add(64) as *const __m512i),
            )
        };
        for r in 0..R {
            // SAFETY: 4g + 4 ≤ k: the 4 bytes lie in row r.
            let v = unsafe { (a[r].add(4 * g) as *const u32).read_unaligned() };
            let av = _mm512_xor_si512(_mm512_set1_epi32(v as i32), xor);
            acc0[r] = _mm512_dpbusd_epi32(acc0[r], av, w0);
            acc1[r] = _mm512_dpbusd_epi32(acc1[r], av, w1);
        }
        // SAFETY: advances within (or one past) the packed tile.
        w = unsafe { w.add(128) };
    }
    if rem != 0 {
        // SAFETY: the last (partial) group of the tile.
        let (w0, w1) = unsafe {
            (
                _mm512_load_si512(w as *const __m512i),
                _mm512_load_si512(w.add(64) as *const __m512i),
            )
        };
        for r in 0..R {
            // SAFETY: bytes 4·groups .. k of row r exist.
            let v = unsafe { tail_u32(a[r].add(4 * groups), rem) };
            let av = _mm512_xor_si512(_mm512_set1_epi32(v as i32), xor);
            acc0[r] = _mm512_dpbusd_epi32(acc0[r], av, w0);
            acc1[r] = _mm512_dpbusd_epi32(acc1[r], av, w1);
        }
    }
    let mut rq = [Rq16::new(
        ld(&ep.mult, 0),
        ld(&ep.shift, 0),
        args.zero_point,
        args.min,
        args.max,
    ); 2];
    rq[1] = Rq16::new(
        ld(&ep.mult, 1),
        ld(&ep.shift, 1),
        args.zero_point,
        args.min,
        args.max,
    );
    let mut mask = [0u16; 2];
    for (h, m) in mask.iter_mut().enumerate() {
        let from = args.col_lo.clamp(16 * h, 16 * h + 16) - 16 * h;
        let to = args.col_hi.clamp(16 * h, 16 * h + 16) - 16 * h;
        *m = (((1u32 << to) - 1) & !((1u32 << from) - 1)) as u16;
    }
    for r in 0..R {
        // SAFETY: r < rows (row_off holds `rows` values).
        let off = unsafe { *args.row_off.add(r) };
        let row = args.c.wrapping_add(r * args.c_stride);
        for (h, acc) in [acc0[r], acc1[r]].into_iter().enumerate() {
            let x = if off != 0 {
                _mm512_add_epi32(acc, _mm512_set1_epi32(off))
            } else {
                acc
            };
            if !args.acc_out.is_null() {
                // SAFETY: acc_out holds rows × 32 values (I8Args contract).
                unsafe {
                    _mm512_storeu_si512(args.acc_out.add(32 * r + 16 * h) as *mut __m512i, x)
                };
                continue;
            }
            let y = rq[h].apply(x);
            // SAFETY: only the tile's columns col_lo..col_hi of row r are written (masked
            // store: masked-off bytes are neither read nor written).
            unsafe {
                _mm_mask_storeu_epi8(
                    row.wrapping_add(16 * h) as *mut i8,
                    mask[h],
                    _mm512_cvtepi32_epi8(y),
                )
            };
        }
    }
}

/// # Safety
/// [`F32Args`] contract for an 8×32 tile; the CPU has AVX-512F.
unsafe fn gemm_f32_8x32(args: &F32Args) {
    // A tile whose columns all lie in its first 16 lanes (N = 16, 24 − 16 … and the last tile of
    // N = 144) runs one FMA per row and k instead of two.
    let half = args.col_hi <= 16;
    // SAFETY: forwarded contract; rows is 1..=8.
    unsafe {
        match (args.rows, half) {
            (1, false) => f32_tile::<1, 2>(args),
            (2, false) => f32_tile::<2, 2>(args),
            (3, false) => f32_tile::<3, 2>(args),
            (4, false) => f32_tile::<4, 2>(args),
            (5, false) => f32_tile::<5, 2>(args),
            (6, false) => f32_tile::<6, 2>(args),
            (7, false) => f32_tile::<7, 2>(args),
            (_, false) => f32_tile::<8, 2>(args),
            (1, true) => f32_tile::<1, 1>(args),
            (2, true) => f32_tile::<2, 1>(args),
            (3, true) => f32_tile::<3, 1>(args),
            (4, true) => f32_tile::<4, 1>(args),
            (5, true) => f32_tile::<5, 1>(args),
            (6, true) => f32_tile::<6, 1>(args),
            (7, true) => f32_tile::<7, 1>(args),
            (_, true) => f32_tile::<8, 1>(args),
        }
    }
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma")]
unsafe fn f32_tile<const R: usize, const H: usize>(args: &F32Args) {
    // SAFETY: the tile's bias holds 32 floats.
    let (b0, b1) = unsafe {
        (
            _mm512_loadu_ps(args.bias),
            _mm512_loadu_ps(args.bias.add(16)),
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
        // SAFETY: the packed tile holds k rows of 32 floats, 64-byte aligned.
        let w0 = unsafe { _mm512_load_ps(w) };
        if H == 2 {
            // SAFETY: as above, the second 16 floats of the row.
            let w1 = unsafe { _mm512_load_ps(w.add(16)) };
            for r in 0..R {
                // SAFETY: kk < k: element kk of row r.
                let av = _mm512_set1_ps(unsafe { *a[r].add(kk) });
                acc0[r] = _mm512_fmadd_ps(av, w0, acc0[r]);
                acc1[r] = _mm512_fmadd_ps(av, w1, acc1[r]);
            }
        } else {
            for r in 0..R {
                // SAFETY: kk < k: element kk of row r.
                let av = _mm512_set1_ps(unsafe { *a[r].add(kk) });
                acc0[r] = _mm512_fmadd_ps(av, w0, acc0[r]);
            }
        }
        // SAFETY: advances within (or one past) the packed tile.
        w = unsafe { w.add(32) };
    }
    let lo = _mm512_set1_ps(args.min);
    let hi = _mm512_set1_ps(args.max);
    let mut mask = [0u16; 2];
    for (h, m) in mask.iter_mut().enumerate() {
        let from = args.col_lo.clamp(16 * h, 16 * h + 16) - 16 * h;
        let to = args.col_hi.clamp(16 * h, 16 * h + 16) - 16 * h;
        *m = (((1u32 << to) - 1) & !((1u32 << from) - 1)) as u16;
    }
    for r in 0..R {
        let row = args.c.wrapping_add(r * args.c_stride);
        for (h, acc) in [acc0[r], acc1[r]].into_iter().enumerate().take(H) {
            let y = _mm512_min_ps(_mm512_max_ps(acc, lo), hi);
            // SAFETY: masked store of the tile's columns col_lo..col_hi of row r only.
            unsafe { _mm512_mask_storeu_ps(row.wrapping_add(16 * h), mask[h], y) };
        }
    }
}
