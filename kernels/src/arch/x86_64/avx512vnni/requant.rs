//! 16-lane requantization, bit for bit [`crate::requant::Requant::apply`].

use core::arch::x86_64::*;

use crate::dispatch::RequantTable;
use crate::requant::Requant;

/// `avx512::requant_i32_q8_x16`.
pub const TABLE: RequantTable = RequantTable {
    row: requant_row,
    row_name: "avx512::requant_i32_q8_x16",
};

/// Requantization constants of 16 channels, prepared once per column tile so that the per-row
/// work is only what depends on the accumulator.
#[derive(Clone, Copy)]
pub(crate) struct Rq16 {
    mult: __m512i,
    mult_odd: __m512i,
    lsh: __m512i,
    rsh: __m512i,
    /// `2^rsh − 1`: the remainder mask of the rounding division.
    rem_mask: __m512i,
    /// `rem_mask >> 1`: the rounding threshold for non-negative values.
    half: __m512i,
    /// Lanes whose multiplier is `i32::MIN` (only they can saturate).
    mult_min: __mmask16,
    any_lsh: bool,
    zp: __m512i,
    lo: __m512i,
    hi: __m512i,
}

impl Rq16 {
    /// From per-lane Q31 multipliers and TFLite shifts (`−31..=30`), zero point and clamp.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    pub(crate) fn new(mult: __m512i, shift: __m512i, zp: i32, lo: i32, hi: i32) -> Rq16 {
        let zero = _mm512_setzero_si512();
        let one = _mm512_set1_epi32(1);
        let lsh = _mm512_max_epi32(shift, zero);
        let rsh = _mm512_max_epi32(_mm512_sub_epi32(zero, shift), zero);
        let rem_mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, rsh), one);
        Rq16 {
            mult,
            mult_odd: _mm512_srli_epi64(mult, 32),
            lsh,
            rsh,
            rem_mask,
            half: _mm512_srli_epi32(rem_mask, 1),
            mult_min: _mm512_cmpeq_epi32_mask(mult, _mm512_set1_epi32(i32::MIN)),
            any_lsh: _mm512_test_epi32_mask(lsh, lsh) != 0,
            zp: _mm512_set1_epi32(zp),
            lo: _mm512_set1_epi32(lo),
            hi: _mm512_set1_epi32(hi),
        }
    }

    /// `MultiplyByQuantizedMultiplier`, `+ zp` (wrapping), clamp: [`Requant::apply`] on 16 lanes.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    pub(crate) fn apply(&self, x: __m512i) -> __m512i {
        let x = if self.any_lsh {
            _mm512_sllv_epi32(x, self.lsh)
        } else {
            x
        };
        // SaturatingRoundingDoublingHighMul: (x·m + 2^30) >> 31, i.e. bits 31..62 of the sum, for
        // even lanes (vpmuldq) and odd lanes (shifted down first), merged back into 32-bit lanes.
        let nudge = _mm512_set1_epi64(1 << 30);
        let even = _mm512_mul_epi32(x, self.mult);
        let odd = _mm512_mul_epi32(_mm512_srli_epi64(x, 32), self.mult_odd);
        let even = _mm512_srli_epi64(_mm512_add_epi64(even, nudge), 31);
        let odd = _mm512_slli_epi64(_mm512_add_epi64(odd, nudge), 1);
        let mut high = _mm512_mask_blend_epi32(0xAAAA, even, odd);
        if self.mult_min != 0 {
            let sat = _mm512_mask_cmpeq_epi32_mask(self.mult_min, x, _mm512_set1_epi32(i32::MIN));
            high = _mm512_mask_mov_epi32(high, sat, _mm512_set1_epi32(i32::MAX));
        }
        // RoundingDivideByPOT: (x >> e) + (remainder > (mask >> 1) + (x < 0)).
        let rem = _mm512_and_si512(high, self.rem_mask);
        let thr = _mm512_sub_epi32(self.half, _mm512_srai_epi32(high, 31));
        let q = _mm512_srav_epi32(high, self.rsh);
        let q = _mm512_mask_sub_epi32(
            q,
            _mm512_cmpgt_epi32_mask(rem, thr),
            q,
            _mm512_set1_epi32(-1),
        );
        _mm512_min_epi32(
            _mm512_max_epi32(_mm512_add_epi32(q, self.zp), self.lo),
            self.hi,
        )
    }
}

/// # Safety
/// As [`crate::dispatch::RequantRowFn`]; the CPU has AVX-512 F/BW/DQ/VL.
unsafe fn requant_row(acc: &[i32], first: usize, rq: &Requant, out: *mut u8) {
    // SAFETY: the dispatch table holds this kernel only when the CPU has AVX-512.
    unsafe { requant_row_avx512(acc, first, rq, out) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
unsafe fn requant_row_avx512(acc: &[i32], first: usize, rq: &Requant, out: *mut u8) {
    let (mults, shifts) = rq.parts();
    let prep = |m: __m512i, s: __m512i| Rq16::new(m, s, rq.zero_point(), rq.min(), rq.max());
    let mut p = prep(_mm512_set1_epi32(mults[0]), _mm512_set1_epi32(shifts[0]));
    let per_tensor = rq.is_per_tensor();
    let mut i = 0;
    while i < acc.len() {
        let n = (acc.len() - i).min(16);
        let m: __mmask16 = if n == 16 { 0xffff } else { (1u16 << n) - 1 };
        // SAFETY: lanes i..i+n of `acc` exist; masked-off lanes are not read.
        let x = unsafe { _mm512_maskz_loadu_epi32(m, acc.as_ptr().add(i)) };
        if !per_tensor {
            // SAFETY: channels first+i .. first+i+n exist (caller contract).
            let (mv, sv) = unsafe {
                (
                    _mm512_maskz_loadu_epi32(m, mults.as_ptr().add(first + i)),
                    _mm512_maskz_loadu_epi32(m, shifts.as_ptr().add(first + i)),
                )
            };
            p = prep(mv, sv);
        }
        let y = p.apply(x);
        // SAFETY: `out` is valid for acc.len() bytes; only lanes < n are written.
        unsafe { _mm_mask_storeu_epi8(out.add(i) as *mut i8, m, _mm512_cvtepi32_epi8(y)) };
        i += n;
    }
}
