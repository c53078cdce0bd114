//! 16-lane requantization, bit for bit [`crate::requant::Requant::apply`].

use core::arch::x86_64::*;

use crate::dispatch::RequantTable;
use crate::requant::Requant;

/// `avx512::requant_i32_q8_x16`.
pub const TABLE: RequantTable = RequantTable {
    row: requant_row,
    row_name: "avx512::requant_i32_q8_x16",
};

/// `MultiplyByQuantizedMultiplier` on 16 lanes, then `+ zp`, clamp to `[lo, hi]`.
///
/// `lsh = max(shift, 0)` and `rsh = max(−shift, 0)` per lane (`rsh ≤ 31`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
#[allow(clippy::too_many_arguments)]
pub(crate) fn requant16(
    x: __m512i,
    mult: __m512i,
    lsh: __m512i,
    rsh: __m512i,
    zp: __m512i,
    lo: __m512i,
    hi: __m512i,
) -> __m512i {
    let x = _mm512_sllv_epi32(x, lsh);
    // SaturatingRoundingDoublingHighMul: (x·m + 2^30) >> 31, i.e. bits 31..62 of the sum, for
    // even lanes (vpmuldq) and odd lanes (shifted down first), merged back into 32-bit lanes.
    let nudge = _mm512_set1_epi64(1 << 30);
    let even = _mm512_mul_epi32(x, mult);
    let odd = _mm512_mul_epi32(_mm512_srli_epi64(x, 32), _mm512_srli_epi64(mult, 32));
    let even = _mm512_srli_epi64(_mm512_add_epi64(even, nudge), 31);
    let odd = _mm512_slli_epi64(_mm512_add_epi64(odd, nudge), 1);
    let high = _mm512_mask_blend_epi32(0xAAAA, even, odd);
    let min = _mm512_set1_epi32(i32::MIN);
    let sat = _mm512_cmpeq_epi32_mask(x, min) & _mm512_cmpeq_epi32_mask(mult, min);
    let high = _mm512_mask_mov_epi32(high, sat, _mm512_set1_epi32(i32::MAX));
    // RoundingDivideByPOT: (x >> e) + (remainder > (mask >> 1) + (x < 0)).
    let one = _mm512_set1_epi32(1);
    let mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, rsh), one);
    let rem = _mm512_and_si512(high, mask);
    let thr = _mm512_sub_epi32(_mm512_srli_epi32(mask, 1), _mm512_srai_epi32(high, 31));
    let q = _mm512_srav_epi32(high, rsh);
    let q = _mm512_mask_add_epi32(q, _mm512_cmpgt_epi32_mask(rem, thr), q, one);
    _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(q, zp), lo), hi)
}

/// # Safety
/// As [`crate::dispatch::RequantRowFn`]; the CPU has AVX-512 F/BW/DQ/VL.
unsafe fn requant_row(acc: &[i32], first: usize, rq: &Requant, out: *mut u8) {
    // SAFETY: the dispatch table holds this kernel only when the CPU has AVX-512.
    unsafe { requant_row_avx512(acc, first, rq, out) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
unsafe fn requant_row_avx512(acc: &[i32], first: usize, rq: &Requant, out: *mut u8) {
    let zp = _mm512_set1_epi32(rq.zero_point());
    let lo = _mm512_set1_epi32(rq.min());
    let hi = _mm512_set1_epi32(rq.max());
    let zero = _mm512_setzero_si512();
    let (mults, shifts) = rq.parts();
    let per_tensor = rq.is_per_tensor();
    let (mut mult, mut lsh, mut rsh) = {
        let s = _mm512_set1_epi32(shifts[0]);
        (
            _mm512_set1_epi32(mults[0]),
            _mm512_max_epi32(s, zero),
            _mm512_max_epi32(_mm512_sub_epi32(zero, s), zero),
        )
    };
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
            mult = mv;
            lsh = _mm512_max_epi32(sv, zero);
            rsh = _mm512_max_epi32(_mm512_sub_epi32(zero, sv), zero);
        }
        let y = requant16(x, mult, lsh, rsh, zp, lo, hi);
        // SAFETY: `out` is valid for acc.len() bytes; only lanes < n are written.
        unsafe { _mm_mask_storeu_epi8(out.add(i) as *mut i8, m, _mm512_cvtepi32_epi8(y)) };
        i += n;
    }
}
