//! 4-lane requantization, bit for bit [`crate::requant::Requant::apply`].
//!
//! `SaturatingRoundingDoublingHighMul` is exactly `sqrdmulh` (both round half up and saturate only
//! `i32::MIN · i32::MIN`); `RoundingDivideByPOT` is `srshl` by `−e` after subtracting 1 from
//! negative values when `e > 0` (gemmlowp's NEON fixup), which turns its ties-up rounding into
//! ties away from zero.

use core::arch::aarch64::*;

use crate::dispatch::RequantTable;
use crate::requant::Requant;

/// `neon::requant_i32_q8_x4`.
pub const TABLE: RequantTable = RequantTable {
    row: requant_row,
    row_name: "neon::requant_i32_q8_x4",
};

/// Requantization constants of 4 channels.
#[derive(Clone, Copy)]
pub(crate) struct Rq4 {
    mult: int32x4_t,
    lsh: int32x4_t,
    neg_rsh: int32x4_t,
    zp: int32x4_t,
    lo: int32x4_t,
    hi: int32x4_t,
}

impl Rq4 {
    /// From Q31 multipliers, TFLite shifts, zero point and clamp.
    #[inline]
    #[target_feature(enable = "neon")]
    pub(crate) fn new(mult: int32x4_t, shift: int32x4_t, zp: i32, lo: i32, hi: i32) -> Rq4 {
        let zero = vdupq_n_s32(0);
        Rq4 {
            mult,
            lsh: vmaxq_s32(shift, zero),
            neg_rsh: vminq_s32(shift, zero),
            zp: vdupq_n_s32(zp),
            lo: vdupq_n_s32(lo),
            hi: vdupq_n_s32(hi),
        }
    }

    /// [`Requant::apply`] on 4 lanes.
    #[inline]
    #[target_feature(enable = "neon")]
    pub(crate) fn apply(&self, x: int32x4_t) -> int32x4_t {
        let x = vshlq_s32(x, self.lsh);
        let h = vqrdmulhq_s32(x, self.mult);
        let fixup = vshrq_n_s32::<31>(vandq_s32(h, self.neg_rsh));
        let q = vrshlq_s32(vqaddq_s32(h, fixup), self.neg_rsh);
        vminq_s32(vmaxq_s32(vaddq_s32(q, self.zp), self.lo), self.hi)
    }
}

/// The low bytes of 8 lanes (two vectors), in order.
#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn low_bytes8(a: int32x4_t, b: int32x4_t) -> [u8; 8] {
    let v = vmovn_s16(vcombine_s16(vmovn_s32(a), vmovn_s32(b)));
    (vget_lane_u64::<0>(vreinterpret_u64_s8(v))).to_le_bytes()
}

/// # Safety
/// As [`crate::dispatch::RequantRowFn`]; the CPU has NEON.
unsafe fn requant_row(acc: &[i32], first: usize, rq: &Requant, out: *mut u8) {
    // SAFETY: the dispatch table holds this kernel only when the CPU has NEON.
    unsafe { requant_row_neon(acc, first, rq, out) }
}

#[target_feature(enable = "neon")]
unsafe fn requant_row_neon(acc: &[i32], first: usize, rq: &Requant, out: *mut u8) {
    let (mults, shifts) = rq.parts();
    let prep = |m: int32x4_t, s: int32x4_t| Rq4::new(m, s, rq.zero_point(), rq.min(), rq.max());
    let uniform = prep(vdupq_n_s32(mults[0]), vdupq_n_s32(shifts[0]));
    let mut i = 0;
    while i < acc.len() {
        let n = (acc.len() - i).min(8);
        let mut x = [0i32; 8];
        x[..n].copy_from_slice(&acc[i..i + n]);
        let (p0, p1) = if rq.is_per_tensor() {
            (uniform, uniform)
        } else {
            let mut m = [0i32; 8];
            let mut s = [0i32; 8];
            m[..n].copy_from_slice(&mults[first + i..first + i + n]);
            s[..n].copy_from_slice(&shifts[first + i..first + i + n]);
            // SAFETY: m and s hold 8 values each.
            unsafe {
                (
                    prep(vld1q_s32(m.as_ptr()), vld1q_s32(s.as_ptr())),
                    prep(vld1q_s32(m.as_ptr().add(4)), vld1q_s32(s.as_ptr().add(4))),
                )
            }
        };
        // SAFETY: x holds 8 values.
        let (x0, x1) = unsafe { (vld1q_s32(x.as_ptr()), vld1q_s32(x.as_ptr().add(4))) };
        let bytes = low_bytes8(p0.apply(x0), p1.apply(x1));
        // SAFETY: `out` is valid for acc.len() bytes; bytes i..i+n are written.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), out.add(i), n) };
        i += n;
    }
}
