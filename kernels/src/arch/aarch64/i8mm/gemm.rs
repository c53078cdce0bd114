//! i8mm int8 GEMM: 8 rows × 8 output channels, weights packed `c8`. `smmla` multiplies a 2×8
//! block of activations (two rows) by an 8×2 block of weights (two columns, stored as 2×8) into a
//! 2×2 block of accumulators; the epilogue unzips the blocks back into rows.

use core::arch::aarch64::*;
use core::arch::asm;

use crate::arch::aarch64::neon::gemm::{out_row, Epi8};
use crate::gemm::{I8Args, I8Kernel};
use crate::isa::Isa;

/// `i8mm::gemm_qs8_8x8c8`.
pub static GEMM_I8: I8Kernel = I8Kernel {
    name: "i8mm::gemm_qs8_8x8c8",
    isa: Isa::I8mm,
    mr: 8,
    nr: 8,
    kr: 8,
    signed_a: true,
    run: gemm_qs8_8x8c8,
};

/// `acc += smmla(a, w)`: `acc[i][j] += Σ_k a[i][k] · w[j][k]` for the 2×2 block.
#[inline]
#[target_feature(enable = "neon,i8mm")]
fn smmla(acc: int32x4_t, a: int8x16_t, w: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: a register-only instruction; the function is compiled for (and only called on
    // CPUs with) FEAT_I8MM.
    unsafe {
        asm!(
            ".arch_extension i8mm",
            "smmla {acc:v}.4s, {a:v}.16b, {w:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            w = in(vreg) w,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}

/// # Safety
/// [`I8Args`] contract for an 8×8 `c8` tile; the CPU has i8mm.
unsafe fn gemm_qs8_8x8c8(args: &I8Args) {
    // SAFETY: forwarded contract; rows is 1..=8, so 1..=4 row pairs.
    unsafe {
        match args.rows.div_ceil(2) {
            1 => tile::<1>(args),
            2 => tile::<2>(args),
            3 => tile::<3>(args),
            _ => tile::<4>(args),
        }
    }
}

/// Loads 8 activation bytes of a row at input channel `k0` (zero padded past `k`) in the signed
/// domain.
///
/// # Safety
/// The row holds `k` readable bytes.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn load8(row: *const u8, k0: usize, k: usize, xor: u64) -> u64 {
    let v = if k0 + 8 <= k {
        // SAFETY: bytes k0..k0+8 of the row exist.
        unsafe { (row.add(k0) as *const u64).read_unaligned() }
    } else {
        let mut v = 0u64;
        for i in 0..k - k0 {
            // SAFETY: byte k0 + i < k of the row.
            v |= (unsafe { *row.add(k0 + i) } as u64) << (8 * i);
        }
        v
    };
    v ^ xor
}

#[inline]
#[target_feature(enable = "neon,i8mm")]
unsafe fn tile<const P: usize>(args: &I8Args) {
    let k = args.k;
    let rows = args.rows;
    let mut acc = [[vdupq_n_s32(0); 4]; P];
    let mut a = [[args.a; 2]; P];
    for (p, pair) in a.iter_mut().enumerate() {
        for (i, ptr) in pair.iter_mut().enumerate() {
            // Rows past `rows` repeat the last row: computed, never stored.
            let r = (2 * p + i).min(rows - 1);
            // SAFETY: r < rows lies in A.
            *ptr = unsafe { args.a.add(r * args.a_stride) };
        }
    }
    let xor = u64::from_ne_bytes([args.a_xor; 8]);
    let mut w = args.w;
    for g in 0..k.div_ceil(8) {
        // SAFETY: the packed tile holds ceil(k/8) groups of 64 bytes (4 column pairs × 16).
        let wv = unsafe {
            [
                vld1q_s8(w),
                vld1q_s8(w.add(16)),
                vld1q_s8(w.add(32)),
                vld1q_s8(w.add(48)),
            ]
        };
        for p in 0..P {
            // SAFETY: both rows of the pair hold k bytes.
            let (x0, x1) =
                unsafe { (load8(a[p][0], 8 * g, k, xor), load8(a[p][1], 8 * g, k, xor)) };
            let av = vreinterpretq_s8_u64(vcombine_u64(vcreate_u64(x0), vcreate_u64(x1)));
            for (c, wc) in wv.iter().enumerate() {
                acc[p][c] = smmla(acc[p][c], av, *wc);
            }
        }
        // SAFETY: advances within (or one past) the packed tile.
        w = unsafe { w.add(64) };
    }
    // SAFETY: `ep` per the I8Args contract.
    let ep = unsafe { &*args.ep };
    // SAFETY: as above.
    let epi = unsafe { Epi8::new(ep, args) };
    // SAFETY: the bias array holds NR_MAX ≥ 8 values.
    let (b0, b1) = unsafe {
        (
            vld1q_s32(ep.bias.as_ptr()),
            vld1q_s32(ep.bias.as_ptr().add(4)),
        )
    };
    for (p, blocks) in acc.iter().enumerate() {
        let q = |c: usize| vreinterpretq_s64_s32(blocks[c]);
        // Block c holds [r0·c2c, r0·c2c+1, r1·c2c, r1·c2c+1].
        let rows2 = [
            (vzip1q_s64(q(0), q(1)), vzip1q_s64(q(2), q(3))),
            (vzip2q_s64(q(0), q(1)), vzip2q_s64(q(2), q(3))),
        ];
        for (i, (l, h)) in rows2.into_iter().enumerate() {
            let r = 2 * p + i;
            if r >= rows {
                break;
            }
            let l = vaddq_s32(vreinterpretq_s32_s64(l), b0);
            let h = vaddq_s32(vreinterpretq_s32_s64(h), b1);
            // SAFETY: r < rows; row r columns col_lo..col_hi are writable.
            unsafe {
                epi.store(
                    l,
                    h,
                    *args.row_off.add(r),
                    args.c.wrapping_add(r * args.c_stride),
                    args.col_lo,
                    args.col_hi,
                    out_row(args, r),
                )
            };
        }
    }
}
