//! NEON int8 GEMM (4 rows × 8 output channels, weights packed `c1`, signed activations widened to
//! i16 and multiplied with `smlal` by lane) and f32 FMA GEMM (8 × 8), plus the 8-column int8
//! epilogue shared by the dotprod and i8mm kernels.

use core::arch::aarch64::*;

use super::requant::{low_bytes8, Rq4};
use crate::gemm::{F32Args, F32Kernel, I8Args, I8Kernel, TileEpilogue};
use crate::isa::Isa;

/// `neon::gemm_qs8_4x8c1`.
pub static GEMM_I8: I8Kernel = I8Kernel {
    name: "neon::gemm_qs8_4x8c1",
    isa: Isa::Neon,
    mr: 4,
    nr: 8,
    kr: 1,
    signed_a: true,
    run: gemm_qs8_4x8c1,
};

/// `neon::gemm_f32_8x8`.
pub static GEMM_F32: F32Kernel = F32Kernel {
    name: "neon::gemm_f32_8x8",
    isa: Isa::Neon,
    mr: 8,
    nr: 8,
    run: gemm_f32_8x8,
};

/// The epilogue constants of an 8-column tile.
#[derive(Clone, Copy)]
pub(crate) struct Epi8 {
    rq: [Rq4; 2],
}

impl Epi8 {
    /// # Safety
    /// `ep` is the tile's epilogue data (I8Args contract).
    #[inline]
    #[target_feature(enable = "neon")]
    pub(crate) unsafe fn new(ep: &TileEpilogue, args: &I8Args) -> Epi8 {
        // SAFETY: the epilogue arrays hold NR_MAX ≥ 8 values.
        let (m0, m1, s0, s1) = unsafe {
            (
                vld1q_s32(ep.mult.as_ptr()),
                vld1q_s32(ep.mult.as_ptr().add(4)),
                vld1q_s32(ep.shift.as_ptr()),
                vld1q_s32(ep.shift.as_ptr().add(4)),
            )
        };
        let (zp, lo, hi) = (args.zero_point, args.min, args.max);
        Epi8 {
            rq: [Rq4::new(m0, s0, zp, lo, hi), Rq4::new(m1, s1, zp, lo, hi)],
        }
    }

    /// Requantizes one row (8 accumulators, bias included) and stores columns `col_lo..col_hi`;
    /// or, when `acc_out` is not null, stores the 8 raw accumulators there instead.
    ///
    /// # Safety
    /// `row` is valid for writes at columns `col_lo..col_hi` (≤ 8); `acc_out` is null or valid
    /// for 8 writes.
    #[inline]
    #[target_feature(enable = "neon")]
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn store(
        &self,
        a: int32x4_t,
        b: int32x4_t,
        off: i32,
        row: *mut u8,
        col_lo: usize,
        col_hi: usize,
        acc_out: *mut i32,
    ) {
        let o = vdupq_n_s32(off);
        if !acc_out.is_null() {
            // SAFETY: acc_out is valid for 8 writes (caller contract).
            unsafe {
                vst1q_s32(acc_out, vaddq_s32(a, o));
                vst1q_s32(acc_out.add(4), vaddq_s32(b, o));
            }
            return;
        }
        let bytes = low_bytes8(
            self.rq[0].apply(vaddq_s32(a, o)),
            self.rq[1].apply(vaddq_s32(b, o)),
        );
        if col_lo == 0 && col_hi == 8 {
            // SAFETY: columns 0..8 of the row are writable.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), row, 8) };
        } else {
            for (j, &v) in bytes.iter().enumerate().take(col_hi).skip(col_lo) {
                // SAFETY: column j in col_lo..col_hi is writable.
                unsafe { *row.add(j) = v };
            }
        }
    }
}

/// Row `r` of the raw-accumulator output of an 8-column tile, or null.
#[inline]
pub(crate) fn out_row(args: &I8Args, r: usize) -> *mut i32 {
    if args.acc_out.is_null() {
        args.acc_out
    } else {
        args.acc_out.wrapping_add(8 * r)
    }
}

/// The tile's folded bias as two vectors.
///
/// # Safety
/// `ep` is the tile's epilogue data.
#[inline]
#[target_feature(enable = "neon")]
pub(crate) unsafe fn bias8(ep: &TileEpilogue) -> (int32x4_t, int32x4_t) {
    // SAFETY: the bias array holds NR_MAX ≥ 8 values.
    unsafe {
        (
            vld1q_s32(ep.bias.as_ptr()),
            vld1q_s32(ep.bias.as_ptr().add(4)),
        )
    }
}

/// # Safety
/// [`I8Args`] contract for a 4×8 `c1` tile; the CPU has NEON.
unsafe fn gemm_qs8_4x8c1(args: &I8Args) {
    // SAFETY: forwarded contract; rows is 1..=4.
    unsafe {
        match args.rows {
            1 => i8_tile::<1>(args),
            2 => i8_tile::<2>(args),
            3 => i8_tile::<3>(args),
            _ => i8_tile::<4>(args),
        }
    }
}

macro_rules! lanes8 {
    ($body:ident) => {
        $body!(0);
        $body!(1);
        $body!(2);
        $body!(3);
        $body!(4);
        $body!(5);
        $body!(6);
        $body!(7);
    };
}

#[inline]
#[target_feature(enable = "neon")]
unsafe fn i8_tile<const R: usize>(args: &I8Args) {
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
    let xor8 = vdup_n_u8(args.a_xor);
    let chunks = k / 8;
    for c in 0..chunks {
        let mut av = [vdupq_n_s16(0); R];
        for r in 0..R {
            // SAFETY: bytes 8c..8c+8 of row r exist (8c + 8 ≤ k).
            let v = unsafe { vld1_u8(a[r].add(8 * c)) };
            av[r] = vmovl_s8(vreinterpret_s8_u8(veor_u8(v, xor8)));
        }
        // SAFETY: the packed tile holds k rows of 8 weights.
        let wbase = unsafe { args.w.add(64 * c) };
        macro_rules! step {
            ($l:literal) => {
                // SAFETY: weights of input channel 8c + l, inside the tile.
                let w = vmovl_s8(unsafe { vld1_s8(wbase.add(8 * $l)) });
                for r in 0..R {
                    lo[r] = vmlal_laneq_s16::<$l>(lo[r], vget_low_s16(w), av[r]);
                    hi[r] = vmlal_high_laneq_s16::<$l>(hi[r], w, av[r]);
                }
            };
        }
        lanes8!(step);
    }
    for kk in 8 * chunks..k {
        // SAFETY: weights of input channel kk, inside the tile.
        let w = vmovl_s8(unsafe { vld1_s8(args.w.add(8 * kk)) });
        for r in 0..R {
            // SAFETY: byte kk < k of row r.
            let x = (unsafe { *a[r].add(kk) } ^ args.a_xor) as i8 as i16;
            lo[r] = vmlal_n_s16(lo[r], vget_low_s16(w), x);
            hi[r] = vmlal_high_n_s16(hi[r], w, x);
        }
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

/// # Safety
/// [`F32Args`] contract for an 8×8 tile; the CPU has NEON.
unsafe fn gemm_f32_8x8(args: &F32Args) {
    // SAFETY: forwarded contract; rows is 1..=8.
    unsafe {
        match args.rows {
            1 => f32_tile::<1>(args),
            2 => f32_tile::<2>(args),
            3 => f32_tile::<3>(args),
            4 => f32_tile::<4>(args),
            5 => f32_tile::<5>(args),
            6 => f32_tile::<6>(args),
            7 => f32_tile::<7>(args),
            _ => f32_tile::<8>(args),
        }
    }
}

#[inline]
#[target_feature(enable = "neon")]
unsafe fn f32_tile<const R: usize>(args: &F32Args) {
    // SAFETY: the tile's bias holds 8 floats.
    let (b0, b1) = unsafe { (vld1q_f32(args.bias), vld1q_f32(args.bias.add(4))) };
    let mut acc0 = [b0; R];
    let mut acc1 = [b1; R];
    let mut a = [args.a; R];
    for (r, p) in a.iter_mut().enumerate() {
        // SAFETY: row r < rows lies in A.
        *p = unsafe { args.a.add(r * args.a_stride) };
    }
    let mut w = args.w;
    for kk in 0..args.k {
        // SAFETY: the packed tile holds k rows of 8 floats.
        let (w0, w1) = unsafe { (vld1q_f32(w), vld1q_f32(w.add(4))) };
        for r in 0..R {
            // SAFETY: element kk < k of row r.
            let x = unsafe { *a[r].add(kk) };
            acc0[r] = vfmaq_n_f32(acc0[r], w0, x);
            acc1[r] = vfmaq_n_f32(acc1[r], w1, x);
        }
        // SAFETY: advances within (or one past) the packed tile.
        w = unsafe { w.add(8) };
    }
    let lo = vdupq_n_f32(args.min);
    let hi = vdupq_n_f32(args.max);
    for r in 0..R {
        let mut v = [0f32; 8];
        // SAFETY: v holds 8 floats.
        unsafe {
            vst1q_f32(v.as_mut_ptr(), vminq_f32(vmaxq_f32(acc0[r], lo), hi));
            vst1q_f32(v.as_mut_ptr().add(4), vminq_f32(vmaxq_f32(acc1[r], lo), hi));
        }
        let row = args.c.wrapping_add(r * args.c_stride);
        for (j, &x) in v.iter().enumerate().take(args.col_hi).skip(args.col_lo) {
            // SAFETY: column j in col_lo..col_hi of row r is writable.
            unsafe { *row.add(j) = x };
        }
    }
}
