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
    let odd = _mm256_mul_epi32(_mm256_shuffle_epi32(x, 0b11_11_01_01), c.mult_odd);
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
    let (mults, shifts) = rq.parts();
    let per_tensor = rq.is_per_tensor();
    let zp = rq.zero_point();
    let zpv = _mm256_set1_epi32(zp);
    // [min, max] fits the output type: an upper bound above 127 means uint8 outputs.
    let unsigned = rq.max() > 127;
    let lo = _mm256_set1_epi8(rq.min() as u8 as i8);
    let hi = _mm256_set1_epi8(rq.max() as u8 as i8);
    let tensor = Rq8::new(_mm256_set1_epi32(mults[0]), _mm256_set1_epi32(shifts[0]));
    let tensor_down =
        (shifts[0] < 0).then(|| Down8::new(tensor.mult, _mm256_set1_epi32(shifts[0]), zp));
    // 8 lanes from index i (n ≤ 8 valid; the rest padding), requantized, zero point added.
    let lanes = |i: usize, n: usize| -> __m256i {
        let load = |v: &[i32], pad: i32| {
            if n == 8 {
                // SAFETY: v holds 8 values from i (callers pass n = 8 only then).
                unsafe { _mm256_loadu_si256(v.as_ptr() as *const __m256i) }
            } else {
                let mut b = [pad; 8];
                b[..n].copy_from_slice(&v[..n]);
                // SAFETY: b holds 8 i32.
                unsafe { _mm256_loadu_si256(b.as_ptr() as *const __m256i) }
            }
        };
        let x = load(&acc[i..], 0);
        if per_tensor {
            if let Some(d) = &tensor_down {
                return d.apply(x);
            }
            return _mm256_add_epi32(scale8::<true, true>(x, &tensor), zpv);
        }
        let c = Rq8::new(load(&mults[first + i..], 0), load(&shifts[first + i..], 0));
        let q = match (c.shifts_left(), c.may_saturate()) {
            (false, false) => scale8::<false, false>(x, &c),
            (true, false) => scale8::<true, false>(x, &c),
            (false, true) => scale8::<false, true>(x, &c),
            (true, true) => scale8::<true, true>(x, &c),
        };
        _mm256_add_epi32(q, zpv)
    };
    let mut i = 0;
    while i < acc.len() {
        let n = (acc.len() - i).min(16);
        let y0 = lanes(i, n.min(8));
        let y1 = if n > 8 { lanes(i + 8, n - 8) } else { y0 };
        // Saturating narrowing is monotone and [min, max] lies in the byte range, so
        // clamp(narrow(y)) = clamp(y). Dwords of bytes come out as [y0 0..3, y1 0..3, (again) |
        // y0 4..7, y1 4..7, (again)]: one dword permute puts y0 then y1 in the low 128 bits.
        let p = _mm256_packs_epi32(y0, y1);
        let b = if unsigned {
            _mm256_min_epu8(_mm256_max_epu8(_mm256_packus_epi16(p, p), lo), hi)
        } else {
            _mm256_min_epi8(_mm256_max_epi8(_mm256_packs_epi16(p, p), lo), hi)
        };
        let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        let b = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(b, order));
        if n == 16 {
            // SAFETY: `out` is valid for acc.len() bytes; bytes i..i+16 are written.
            unsafe { _mm_storeu_si128(out.add(i) as *mut __m128i, b) };
        } else {
            let mut bytes = [0u8; 16];
            // SAFETY: bytes holds 16 bytes.
            unsafe { _mm_storeu_si128(bytes.as_mut_ptr() as *mut __m128i, b) };
            // SAFETY: `out` is valid for acc.len() bytes; bytes i..i+n are written.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), out.add(i), n) };
        }
        i += n;
    }
}
