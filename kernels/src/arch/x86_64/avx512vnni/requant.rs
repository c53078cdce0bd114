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
///
/// Two exact evaluations of `MultiplyByQuantizedMultiplier`:
/// - the fast one, when every lane shifts right by 1..=22 (`−22 ≤ shift ≤ −1`: real models
///   are there), no multiplier is negative (TFLite's are in `[2^30, 2^31)`, or 0; this also
///   excludes `i32::MIN`, the only one that can saturate) and `|zp| ≤ 256`: with `P = x·m` in
///   64-bit lanes and `e = −shift`, `RoundingDivideByPOT(SRDHM(x, m), e) + zp =
///   (P + 2^30 + 2^(30+e) + zp·2^(31+e) − [x < 0]·2^31) >> (31+e)` (arithmetic), by
///   nested floor division: `h = SRDHM = ⌊(P + 2^30)/2^31⌋`, the rounding division is
///   `⌊(h + 2^(e−1) − [h < 0])/2^e⌋`, and adding a multiple of the divisor adds its quotient
///   exactly. The correction may be applied wherever `h ≤ 0` as long as it is applied wherever
///   `h < 0`: at `h = 0` both `⌊(2^(e−1) − 1)/2^e⌋` and `⌊2^(e−1)/2^e⌋` are 0 (`e ≥ 1`). With
///   `m ≥ 0`, `x < 0` gives `P ≤ 0`, so `h ≤ 0`, and `h < 0` (`P < −2^30`) needs `x < 0`: the
///   sign bit of `x` serves, without a 64-bit compare. The bounds keep the sum inside i64
///   (`|P| < 2^62`, `|zp|·2^(31+e) ≤ 2^61`). The 64-bit sums' high halves (`⌊t/2^32⌋`) of the
///   even and the odd lanes are gathered into one vector and shifted right by `e − 1` in 32
///   bits: `⌊⌊t/2^32⌋/2^(e−1)⌋ = ⌊t/2^(31+e)⌋`;
/// - the general one (left shifts, `e = 0`, saturation), step by step as TFLite.
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
    /// Every lane takes the fast evaluation.
    fast: bool,
    /// Fast path: `2^30 + 2^(30+e) + zp·2^(31+e)` per 64-bit lane, for the even and the odd
    /// 32-bit lanes.
    add_even: __m512i,
    add_odd: __m512i,
    /// Fast path: `e − 1` per 32-bit lane, the shift of the sums' high halves.
    sh_hi: __m512i,
    /// Fast path, [`Rq16::unclamped_fast_blend`]: 64-bit shift counts, `31 + e` (even lanes)
    /// and `e − 1` (odd lanes).
    sh_even: __m512i,
    sh_odd: __m512i,
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
        let mult_min = _mm512_cmpeq_epi32_mask(mult, _mm512_set1_epi32(i32::MIN));
        let fast = _mm512_movepi32_mask(mult) == 0
            && _mm512_cmpgt_epi32_mask(one, rsh) == 0
            && _mm512_cmpgt_epi32_mask(rsh, _mm512_set1_epi32(22)) == 0
            && zp.unsigned_abs() <= 256;
        // 64-bit lanes: the even 32-bit lane's e is the low half, the odd one's the high half.
        let e_even = _mm512_and_si512(rsh, _mm512_set1_epi64(0xffff_ffff));
        let e_odd = _mm512_srli_epi64(rsh, 32);
        let nudge = _mm512_set1_epi64(1 << 30);
        let zp64 = _mm512_set1_epi64(zp as i64);
        // 2^30 + 2^(30+e) + zp·2^(31+e) (only used when fast, where it fits).
        let add = |e: __m512i| {
            let e = _mm512_and_si512(e, _mm512_set1_epi64(31));
            _mm512_add_epi64(
                _mm512_add_epi64(nudge, _mm512_sllv_epi64(nudge, e)),
                _mm512_sllv_epi64(zp64, _mm512_add_epi64(e, _mm512_set1_epi64(31))),
            )
        };
        Rq16 {
            mult,
            mult_odd: _mm512_srli_epi64(mult, 32),
            lsh,
            rsh,
            rem_mask,
            half: _mm512_srli_epi32(rem_mask, 1),
            mult_min,
            any_lsh: _mm512_test_epi32_mask(lsh, lsh) != 0,
            fast,
            add_even: add(e_even),
            add_odd: add(e_odd),
            sh_hi: _mm512_sub_epi32(rsh, one),
            sh_even: _mm512_add_epi64(e_even, _mm512_set1_epi64(31)),
            sh_odd: _mm512_sub_epi64(e_odd, _mm512_set1_epi64(1)),
            zp: _mm512_set1_epi32(zp),
            lo: _mm512_set1_epi32(lo),
            hi: _mm512_set1_epi32(hi),
        }
    }

    /// True when every lane takes the fast evaluation ([`Rq16::unclamped_fast`] is exact).
    #[inline(always)]
    pub(crate) fn is_fast(&self) -> bool {
        self.fast
    }

    /// `MultiplyByQuantizedMultiplier + zp` (wrapping), before the clamp.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    pub(crate) fn unclamped(&self, x: __m512i) -> __m512i {
        if self.fast {
            self.unclamped_fast(x)
        } else {
            _mm512_add_epi32(self.general(x), self.zp)
        }
    }

    /// [`Rq16::unclamped`] when [`Rq16::is_fast`] (otherwise the result is meaningless).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    pub(crate) fn unclamped_fast(&self, x: __m512i) -> __m512i {
        // The tie correction `[P < −2^30]·2^31` is taken as `[x < 0]·2^31`: bit 31 of the
        // 64-bit lane the multiply reads (see `Rq16`). No compares: those compete with
        // `vpdpbusd` for the same pipes on some cores, the AND and subtraction do not.
        let (even, odd) = self.fast_sums(x);
        self.shift_high_halves(even, odd)
    }

    /// The 64-bit sums `t` of [`Rq16::unclamped_fast`] for the even and the odd lanes (the
    /// odd lanes' shifted down into the low half first), tie correction included.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    fn fast_sums(&self, x: __m512i) -> (__m512i, __m512i) {
        let x_odd = _mm512_srli_epi64(x, 32);
        let even = _mm512_mul_epi32(x, self.mult);
        let odd = _mm512_mul_epi32(x_odd, self.mult_odd);
        let sign = _mm512_set1_epi64(1 << 31);
        let even = _mm512_add_epi64(even, self.add_even);
        let odd = _mm512_add_epi64(odd, self.add_odd);
        (
            _mm512_sub_epi64(even, _mm512_and_si512(x, sign)),
            _mm512_sub_epi64(odd, _mm512_and_si512(x_odd, sign)),
        )
    }

    /// [`Rq16::unclamped_fast`] with each half's sums shifted in 64 bits (by `31 + e`, and by
    /// `e − 1` for the odd lanes, which leaves their result in the high half) and blended: one
    /// vector instruction more, but it measured faster inside the int8 GEMM's software
    /// pipeline (784×144×32: 201.7 against 196 G MAC/s).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    pub(crate) fn unclamped_fast_blend(&self, x: __m512i) -> __m512i {
        let (even, odd) = self.fast_sums(x);
        _mm512_mask_blend_epi32(
            0xAAAA,
            _mm512_srav_epi64(even, self.sh_even),
            _mm512_srav_epi64(odd, self.sh_odd),
        )
    }

    /// `⌊t/2^(31+e)⌋` per 32-bit lane from the 64-bit sums `t` of the even and the odd lanes:
    /// their high halves gathered into one vector (one `vpshufd` merged under a mask), then one
    /// 32-bit arithmetic shift by `e − 1`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    fn shift_high_halves(&self, even: __m512i, odd: __m512i) -> __m512i {
        // Even lanes take dword 2i + 1 of `even` (its high half); odd lanes keep `odd`'s.
        let hi = _mm512_mask_shuffle_epi32::<0b11_11_01_01>(odd, 0x5555, even);
        _mm512_srav_epi32(hi, self.sh_hi)
    }

    /// [`Rq16::unclamped_fast`] without the tie correction of negative values: equal to it
    /// wherever that is above `zp`, and at most `zp` elsewhere (the correction only lowers a
    /// negative `SRDHM` result's rounding, and both roundings of a negative value are ≤ 0). So
    /// the two agree after a clamp whose lower bound is at least `zp` (fused ReLU / ReLU6).
    /// Meaningless unless [`Rq16::is_fast`].
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    pub(crate) fn unclamped_fast_floor(&self, x: __m512i) -> __m512i {
        let even = _mm512_mul_epi32(x, self.mult);
        let odd = _mm512_mul_epi32(_mm512_srli_epi64(x, 32), self.mult_odd);
        let even = _mm512_add_epi64(even, self.add_even);
        let odd = _mm512_add_epi64(odd, self.add_odd);
        self.shift_high_halves(even, odd)
    }

    /// [`Rq16::unclamped`] by the step-by-step evaluation (any lanes).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    pub(crate) fn unclamped_general(&self, x: __m512i) -> __m512i {
        _mm512_add_epi32(self.general(x), self.zp)
    }

    /// The step-by-step evaluation (any shift, saturation), without zero point.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    fn general(&self, x: __m512i) -> __m512i {
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
        _mm512_mask_sub_epi32(
            q,
            _mm512_cmpgt_epi32_mask(rem, thr),
            q,
            _mm512_set1_epi32(-1),
        )
    }

    /// `MultiplyByQuantizedMultiplier`, `+ zp` (wrapping), clamp: [`Requant::apply`] on 16 lanes.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    pub(crate) fn apply(&self, x: __m512i) -> __m512i {
        _mm512_min_epi32(_mm512_max_epi32(self.unclamped(x), self.lo), self.hi)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::Isa;
    use crate::requant::multiply_by_quantized_multiplier;

    /// Both evaluations of [`Rq16`] against the scalar formula, lane by lane: every shift, the
    /// multipliers at the edges of the Q31 range (2^30 puts products on rounding ties), negative
    /// ones, and accumulators at the edges of i32 and next to the ties.
    #[test]
    fn rq16_matches_scalar() {
        if !Isa::Avx512Vnni.enabled() {
            println!("skipped: no AVX-512 VNNI");
            return;
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        // The first six are non-negative.
        let mults = [
            1 << 30,
            (1 << 30) + 1,
            i32::MAX,
            1_518_500_250,
            1,
            0,
            -1,
            -(1 << 30),
            i32::MIN + 1,
            i32::MIN,
        ];
        for shift in -31..=30 {
            for round in 0..40 {
                let mut m = [0i32; 16];
                let mut s = [shift; 16];
                let mut x = [0i32; 16];
                for l in 0..16 {
                    m[l] = if round % 4 == 2 {
                        // Non-negative edge multipliers only: the fast evaluation's domain,
                        // with products near 0 (h = 0 for negative x) and on ties.
                        mults[(round / 4 + l) % 6]
                    } else if round % 2 == 0 {
                        mults[(round / 2 + l) % mults.len()]
                    } else {
                        ((next() as u32 >> 1) | (1 << 30)) as i32
                    };
                    if round % 5 == 4 {
                        // Mixed shifts in one vector.
                        s[l] = -((next() % 32) as i32);
                    }
                    let e = (-s[l]).max(0);
                    let tie = if e > 0 { 1i64 << (e - 1) } else { 0 };
                    x[l] = match next() % 6 {
                        0 => [i32::MIN, i32::MIN + 1, -1, 0, 1, i32::MAX][l % 6],
                        // Near ties of the final rounding for m = 2^30 (x·m/2^31 = x/2).
                        1 => ((2 * tie * (next() % 64) as i64 + 2 * tie) as i32)
                            .wrapping_add((next() % 5) as i32 - 2)
                            .wrapping_mul(if next() % 2 == 0 { 1 } else { -1 }),
                        2 => next() as i32 >> (next() % 31),
                        _ => next() as i32,
                    };
                }
                let zp = match round % 7 {
                    0 => 256,
                    1 => -256,
                    2 => 257,
                    _ => (next() % 512) as i32 - 256,
                };
                // SAFETY: the CPU has AVX-512 (checked above); the arrays hold 16 values each.
                let got = unsafe {
                    let ld = |p: &[i32; 16]| _mm512_loadu_si512(p.as_ptr() as *const __m512i);
                    let rq = Rq16::new(ld(&m), ld(&s), zp, -128, 127);
                    let fast = s.iter().all(|&v| (-22..=-1).contains(&v))
                        && m.iter().all(|&v| v >= 0)
                        && zp.abs() <= 256;
                    assert_eq!(rq.is_fast(), fast, "shift {s:?} mult {m:?}");
                    let mut out = [[0i32; 16]; 5];
                    let y = [
                        rq.unclamped(ld(&x)),
                        rq.unclamped_general(ld(&x)),
                        if fast {
                            rq.unclamped_fast(ld(&x))
                        } else {
                            rq.unclamped_general(ld(&x))
                        },
                        if fast {
                            rq.unclamped_fast_blend(ld(&x))
                        } else {
                            rq.unclamped_general(ld(&x))
                        },
                        if fast {
                            rq.unclamped_fast_floor(ld(&x))
                        } else {
                            rq.unclamped_general(ld(&x))
                        },
                    ];
                    for (o, v) in out.iter_mut().zip(y) {
                        _mm512_storeu_si512(o.as_mut_ptr() as *mut __m512i, v);
                    }
                    out
                };
                for l in 0..16 {
                    let want = multiply_by_quantized_multiplier(x[l], m[l], s[l]).wrapping_add(zp);
                    let paths = ["unclamped", "general", "fast", "fast_blend"];
                    for (path, g) in paths.iter().zip(&got) {
                        assert_eq!(
                            g[l], want,
                            "{path}: lane {l}: x {} m {} shift {} zp {zp}",
                            x[l], m[l], s[l]
                        );
                    }
                    // The floor variant: equal above zp, at most zp elsewhere.
                    let g = got[4][l];
                    assert!(
                        if want > zp { g == want } else { g <= zp },
                        "fast_floor: lane {l}: x {} m {} shift {} zp {zp}: got {g}, want {want}",
                        x[l],
                        m[l],
                        s[l]
                    );
                }
            }
        }
    }
}
