//! 8-lane requantization, bit for bit [`crate::requant::Requant::apply`].

use core::arch::x86_64::*;

use crate::dispatch::RequantTable;
use crate::requant::Requant;

/// `avx2::requant_i32_q8_x8`.
pub const TABLE: RequantTable = RequantTable {
    row: requant_row,
    row_name: "avx2::requant_i32_q8_x8",
};

/// The per-lane constants of [`scale8`] for 8 channels, derived once from their multipliers and
/// shifts (per column tile in the GEMM, per row in [`requant_row`]).
#[derive(Clone, Copy)]
pub(crate) struct Rq8 {
    mult: __m256i,
    /// The multipliers of the odd lanes, in the low dword of each 64-bit lane.
    mult_odd: __m256i,
    /// `max(shift, 0)`.
    lsh: __m256i,
    /// `max(−shift, 0)`, the exponent of the rounding division.
    rsh: __m256i,
    /// `2^rsh − 1`.
    mask: __m256i,
    /// `mask >> 1`.
    half: __m256i,
    /// All ones in the lanes whose multiplier is `i32::MIN`.
    min_mult: __m256i,
}

impl Rq8 {
    /// From 8 Q31 multipliers and 8 TFLite shifts (`−31..=30`).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn new(mult: __m256i, shift: __m256i) -> Rq8 {
        let zero = _mm256_setzero_si256();
        let one = _mm256_set1_epi32(1);
        let rsh = _mm256_max_epi32(_mm256_sub_epi32(zero, shift), zero);
        let mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, rsh), one);
        Rq8 {
            mult,
            mult_odd: _mm256_srli_epi64(mult, 32),
            lsh: _mm256_max_epi32(shift, zero),
            rsh,
            mask,
            half: _mm256_srli_epi32(mask, 1),
            min_mult: _mm256_cmpeq_epi32(mult, _mm256_set1_epi32(i32::MIN)),
        }
    }

    /// True when some lane shifts left before multiplying (a real multiplier ≥ 1).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn shifts_left(&self) -> bool {
        _mm256_testz_si256(self.lsh, self.lsh) == 0
    }

    /// True when some lane's multiplier is `i32::MIN` (the doubling high multiply can saturate).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn may_saturate(&self) -> bool {
        _mm256_testz_si256(self.min_mult, self.min_mult) == 0
    }
}

/// `MultiplyByQuantizedMultiplier` on 8 lanes (before the zero point and the clamp).
///
/// `LSH = false` skips the left shift and `SAT = false` the saturation of the doubling high
/// multiply: valid only when [`Rq8::shifts_left`] resp. [`Rq8::may_saturate`] are false.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn scale8<const LSH: bool, const SAT: bool>(x: __m256i, c: &Rq8) -> __m256i {
    let x = if LSH { _mm256_sllv_epi32(x, c.lsh) } else { x };
    // SaturatingRoundingDoublingHighMul: bits 31..62 of x·m + 2^30 (the result fits 32 bits,
    // so a logical 64-bit shift gives the same low dword as an arithmetic one; and truncating
    // (x·m ± 2^30) / 2^31 toward zero as gemmlowp does equals flooring (x·m + 2^30) / 2^31).
    let nudge = _mm256_set1_epi64x(1 << 30);
    let even = _mm256_mul_epi32(x, c.mult);
    let odd = _mm256_mul_epi32(_mm256_srli_epi64(x, 32), c.mult_odd);
    let even = _mm256_srli_epi64(_mm256_add_epi64(even, nudge), 31);
    let odd = _mm256_slli_epi64(_mm256_add_epi64(odd, nudge), 1);
    let mut high = _mm256_blend_epi32(even, odd, 0b1010_1010);
    if SAT {
        let min = _mm256_set1_epi32(i32::MIN);
        let sat = _mm256_and_si256(_mm256_cmpeq_epi32(x, min), c.min_mult);
        high = _mm256_blendv_epi8(high, _mm256_set1_epi32(i32::MAX), sat);
    }
    // RoundingDivideByPOT.
    let rem = _mm256_and_si256(high, c.mask);
    let thr = _mm256_sub_epi32(c.half, _mm256_srai_epi32(high, 31));
    let q = _mm256_srav_epi32(high, c.rsh);
    _mm256_sub_epi32(q, _mm256_cmpgt_epi32(rem, thr))
}

/// `MultiplyByQuantizedMultiplier` plus the zero point for 8 channels that all shift right
/// (`shift ≤ −1`, the usual case: real multipliers below 1/2), with both roundings in one 64-bit
/// division.
///
/// With `P = x·m` and `e = −shift ≥ 1`, the doubling high multiply is `h = ⌊(P + 2^30) / 2^31⌋`
/// (gemmlowp's truncation of `P ± 2^30` equals this floor) and the rounding division
/// `⌊(h + 2^(e−1) − [h < 0]) / 2^e⌋`; nested floors merge into
/// `⌊(P + 2^30 + 2^(30+e) − [P < 0]·2^31) / 2^(31+e)⌋` (`[h < 0]` may be replaced by `[P < 0]`: for
/// `−2^30 ≤ P < 0` both give 0 when `e ≥ 1`; and `x = m = i32::MIN`, where the multiply saturates,
/// gives the same `2^(31−e)`). AVX2 has no 64-bit arithmetic shift, so `2^63` is added to make the
/// dividend positive and its `2^(32−e)` (mod 2^32) taken off with the zero point. Odd lanes shift by
/// `e − 1` less, which leaves their quotient in the high dword, where the blend wants it.
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct Down8 {
    mult: __m256i,
    mult_odd: __m256i,
    /// Addends for the even lanes (channels 0, 2, 4, 6 in the 64-bit lanes) when `P ≥ 0` / `P < 0`.
    add_even: [__m256i; 2],
    /// The same for the odd lanes.
    add_odd: [__m256i; 2],
    /// `31 + e` for the even lanes, `e − 1` for the odd lanes (64-bit lanes).
    sh_even: __m256i,
    sh_odd: __m256i,
    /// `zp − 2^(32−e)` per channel (wrapping).
    zp: __m256i,
}

impl Down8 {
    /// From 8 Q31 multipliers, 8 shifts that must all be `−31..=−1`, and the output zero point.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn new(mult: __m256i, shift: __m256i, zp: i32) -> Down8 {
        let e = _mm256_sub_epi32(_mm256_setzero_si256(), shift);
        // 64-bit lanes: e of the even channels, e of the odd channels.
        let lo32 = _mm256_set1_epi64x(0xffff_ffff);
        let e_even = _mm256_and_si256(e, lo32);
        let e_odd = _mm256_srli_epi64(e, 32);
        let one = _mm256_set1_epi64x(1);
        let base = _mm256_set1_epi64x((1 << 30) + i64::MIN);
        let pos = |e: __m256i| {
            _mm256_add_epi64(
                base,
                _mm256_sllv_epi64(one, _mm256_add_epi64(e, _mm256_set1_epi64x(30))),
            )
        };
        let neg = |p: __m256i| _mm256_sub_epi64(p, _mm256_set1_epi64x(1 << 31));
        let (pe, po) = (pos(e_even), pos(e_odd));
        let corr = _mm256_sllv_epi32(
            _mm256_set1_epi32(1),
            _mm256_sub_epi32(_mm256_set1_epi32(32), e),
        );
        Down8 {
            mult,
            mult_odd: _mm256_srli_epi64(mult, 32),
            add_even: [pe, neg(pe)],
            add_odd: [po, neg(po)],
            sh_even: _mm256_add_epi64(e_even, _mm256_set1_epi64x(31)),
            sh_odd: _mm256_sub_epi64(e_odd, one),
            zp: _mm256_sub_epi32(_mm256_set1_epi32(zp), corr),
        }
    }

    /// `MultiplyByQuantizedMultiplier(x) + zp` on 8 lanes (wrapping, as the scalar formula).
    ///
    /// Written as `asm!` because LLVM rewrites the intrinsics' forms (the odd-lane `vpmuldq`
    /// into a 64-bit multiply of three `vpmuludq`, a mask after each `vpsrlvq`): 11 operations.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn apply(&self, x: __m256i) -> __m256i {
        let out: __m256i;
        // SAFETY: reads the 9 × 32 bytes of `self` (a repr(C) struct of __m256i fields, in the
        // order of the offsets below); register-only otherwise; the CPU has AVX2.
        unsafe {
            core::arch::asm!(
                "vpshufd {xo}, {x}, 0xf5",
                "vpmuldq {pe}, {x}, [{c}]",
                "vpmuldq {po}, {xo}, [{c} + 32]",
                "vmovdqu {t}, [{c} + 64]",
                "vblendvpd {t}, {t}, [{c} + 96], {pe}",
                "vpaddq {pe}, {pe}, {t}",
                "vmovdqu {t}, [{c} + 128]",
                "vblendvpd {t}, {t}, [{c} + 160], {po}",
                "vpaddq {po}, {po}, {t}",
                "vpsrlvq {pe}, {pe}, [{c} + 192]",
                "vpsrlvq {po}, {po}, [{c} + 224]",
                "vpblendd {pe}, {pe}, {po}, 0xaa",
                "vpaddd {pe}, {pe}, [{c} + 256]",
                x = in(ymm_reg) x,
                c = in(reg) self as *const Down8,
                xo = out(ymm_reg) _,
                pe = out(ymm_reg) out,
                po = out(ymm_reg) _,
                t = out(ymm_reg) _,
                options(pure, readonly, nostack, preserves_flags),
            );
        }
        out
    }
}

/// `MultiplyByQuantizedMultiplier` on 8 lanes, then `+ zp`, clamp to `[lo, hi]`.
/// `lsh = max(shift, 0)`, `rsh = max(−shift, 0)` per lane.
#[inline]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub(crate) fn requant8(
    x: __m256i,
    mult: __m256i,
    lsh: __m256i,
    rsh: __m256i,
    zp: __m256i,
    lo: __m256i,
    hi: __m256i,
) -> __m256i {
    let x = _mm256_sllv_epi32(x, lsh);
    // SaturatingRoundingDoublingHighMul: bits 31..62 of x·m + 2^30 (the result fits 32 bits,
    // so a logical 64-bit shift gives the same low dword as an arithmetic one).
    let nudge = _mm256_set1_epi64x(1 << 30);
    let even = _mm256_mul_epi32(x, mult);
    let odd = _mm256_mul_epi32(_mm256_srli_epi64(x, 32), _mm256_srli_epi64(mult, 32));
    let even = _mm256_srli_epi64(_mm256_add_epi64(even, nudge), 31);
    let odd = _mm256_slli_epi64(_mm256_add_epi64(odd, nudge), 1);
    let high = _mm256_blend_epi32(even, odd, 0b1010_1010);
    let min = _mm256_set1_epi32(i32::MIN);
    let sat = _mm256_and_si256(_mm256_cmpeq_epi32(x, min), _mm256_cmpeq_epi32(mult, min));
    let high = _mm256_blendv_epi8(high, _mm256_set1_epi32(i32::MAX), sat);
    // RoundingDivideByPOT.
    let one = _mm256_set1_epi32(1);
    let mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, rsh), one);
    let rem = _mm256_and_si256(high, mask);
    let thr = _mm256_sub_epi32(_mm256_srli_epi32(mask, 1), _mm256_srai_epi32(high, 31));
    let q = _mm256_srav_epi32(high, rsh);
    let q = _mm256_sub_epi32(q, _mm256_cmpgt_epi32(rem, thr));
    _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(q, zp), lo), hi)
}

/// The low byte of each of the 8 lanes, in order, as a u64.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn low_bytes8(y: __m256i) -> u64 {
    let idx = _mm256_setr_epi8(
        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1,
    );
    let b = _mm256_shuffle_epi8(y, idx);
    let b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0));
    _mm_cvtsi128_si64(_mm256_castsi256_si128(b)) as u64
}

/// # Safety
/// As [`crate::dispatch::RequantRowFn`]; the CPU has AVX2.
unsafe fn requant_row(acc: &[i32], first: usize, rq: &Requant, out: *mut u8) {
    // SAFETY: the dispatch table holds this kernel only when the CPU has AVX2.
    unsafe { requant_row_avx2(acc, first, rq, out) }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn requant_row_avx2(acc: &[i32], first: usize, rq: &Requant, out: *mut u8) {
    let zp = _mm256_set1_epi32(rq.zero_point());
    let lo = _mm256_set1_epi32(rq.min());
    let hi = _mm256_set1_epi32(rq.max());
    let zero = _mm256_setzero_si256();
    let (mults, shifts) = rq.parts();
    let per_tensor = rq.is_per_tensor();
    let s = _mm256_set1_epi32(shifts[0]);
    let mut mult = _mm256_set1_epi32(mults[0]);
    let mut lsh = _mm256_max_epi32(s, zero);
    let mut rsh = _mm256_max_epi32(_mm256_sub_epi32(zero, s), zero);
    let mut i = 0;
    while i < acc.len() {
        let n = (acc.len() - i).min(8);
        let mut xa = [0i32; 8];
        xa[..n].copy_from_slice(&acc[i..i + n]);
        // SAFETY: xa holds 8 i32.
        let x = unsafe { _mm256_loadu_si256(xa.as_ptr() as *const __m256i) };
        if !per_tensor {
            let mut ma = [0i32; 8];
            let mut sa = [0i32; 8];
            ma[..n].copy_from_slice(&mults[first + i..first + i + n]);
            sa[..n].copy_from_slice(&shifts[first + i..first + i + n]);
            // SAFETY: ma, sa hold 8 i32 each.
            let (mv, sv) = unsafe {
                (
                    _mm256_loadu_si256(ma.as_ptr() as *const __m256i),
                    _mm256_loadu_si256(sa.as_ptr() as *const __m256i),
                )
            };
            mult = mv;
            lsh = _mm256_max_epi32(sv, zero);
            rsh = _mm256_max_epi32(_mm256_sub_epi32(zero, sv), zero);
        }
        let bytes = low_bytes8(requant8(x, mult, lsh, rsh, zp, lo, hi)).to_le_bytes();
        // SAFETY: `out` is valid for acc.len() bytes; bytes i..i+n are written.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), out.add(i), n) };
        i += n;
    }
}
