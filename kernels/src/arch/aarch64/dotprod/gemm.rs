//! dotprod int8 GEMM: 8 rows × 8 output channels, weights packed `c4`; each row's 4 signed
//! activation bytes are duplicated to all lanes and `sdot` multiplies them with 4 columns × 4 input
//! channels per register.

use core::arch::aarch64::*;
use core::arch::asm;

use crate::arch::aarch64::neon::gemm::{bias8, out_row, Epi8};
use crate::gemm::{I8Args, I8Kernel};
use crate::isa::Isa;

/// `dotprod::gemm_qs8_8x8c4`.
pub static GEMM_I8: I8Kernel = I8Kernel {
    name: "dotprod::gemm_qs8_8x8c4",
    isa: Isa::Dotprod,
    mr: 8,
    nr: 8,
    kr: 4,
    signed_a: true,
    run: gemm_qs8_8x8c4,
};

/// `acc += sdot(w, a)` (4 lanes, each the dot product of 4 signed bytes).
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn sdot(acc: int32x4_t, w: int8x16_t, a: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: a register-only instruction; the function is compiled for (and only called on
    // CPUs with) FEAT_DotProd.
    unsafe {
        asm!(
            ".arch_extension dotprod",
            "sdot {acc:v}.4s, {w:v}.16b, {a:v}.16b",
            acc = inout(vreg) acc,
            w = in(vreg) w,
            a = in(vreg) a,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}

/// # Safety
/// [`I8Args`] contract for an 8×8 `c4` tile; the CPU has dotprod.
unsafe fn gemm_qs8_8x8c4(args: &I8Args) {
    // SAFETY: forwarded contract; rows is 1..=8.
    unsafe {
        match args.rows {
            1 => tile::<1>(args),
            2 => tile::<2>(args),
            3 => tile::<3>(args),
            4 => tile::<4>(args),
            5 => tile::<5>(args),
            6 => tile::<6>(args),
            7 => tile::<7>(args),
            _ => tile::<8>(args),
        }
    }
}

#[inline]
#[target_feature(enable = "neon,dotprod")]
unsafe fn tile<const R: usize>(args: &I8Args) {
    let k = args.k;
    // SAFETY: `ep` per the I8Args contract.
    let ep = unsafe { &*args.ep };
    // SAFETY: as above.
    let (b0, b1) = unsafe { bias8(ep) };
    let mut lo = [b0; R];
    let mut hi = [b1; R];
    let mut a = [args.a; R];
    for (r, p) in a.iter_mut().enumerate() {
        // SAFETY: row r < rows lies in A.
        *p = unsafe { args.a.add(r * args.a_stride) };
    }
    let xor = u32::from_ne_bytes([args.a_xor; 4]);
    let mut w = args.w;
    for g in 0..k.div_ceil(4) {
        // SAFETY: the packed tile holds ceil(k/4) groups of 32 bytes.
        let (w0, w1) = unsafe { (vld1q_s8(w), vld1q_s8(w.add(16))) };
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
            let av = vreinterpretq_s8_u32(vdupq_n_u32(v ^ xor));
            lo[r] = sdot(lo[r], w0, av);
            hi[r] = sdot(hi[r], w1, av);
        }
        // SAFETY: advances within (or one past) the packed tile.
        w = unsafe { w.add(32) };
    }
    // SAFETY: `ep` is the tile's epilogue data.
    let epi = unsafe { Epi8::new(ep, args) };
    for r in 0..R {
        // SAFETY: r < rows; row r columns col_lo..col_hi are writable.
        unsafe {
            epi.store(
                lo[r],
                hi[r],
                *args.row_off.add(r),
                args.c.wrapping_add(r * args.c_stride),
                args.col_lo,
                args.col_hi,
                out_row(args, r),
            )
        };
    }
}
