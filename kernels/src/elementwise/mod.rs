//! Binary element-wise ops with numpy/TFLite broadcasting up to 6-D: ADD, SUB, MUL, DIV,
//! MAXIMUM, MINIMUM, SQUARED_DIFFERENCE in f32, and in int8/uint8 with TFLite's integer
//! semantics (ADD/SUB: inputs rescaled with `left_shift` 20 and per-input multipliers; MUL: one
//! output multiplier; MAXIMUM/MINIMUM on raw values).
//!
//! Use: `BroadcastPlan::new` and `prepare_binary_q` once at prepare, then `binary_f32` /
//! `binary_q` per invoke on any sub-range of the output (for threading). No allocation per call.

mod broadcast;

pub(crate) use broadcast::apply_run;
pub use broadcast::{reference_offsets, BroadcastPlan, MAX_RANK};

pub use crate::requant::Activation;
use crate::requant::{activation_range, multiply_by_quantized_multiplier, quantize_multiplier};
use crate::Isa;
use std::fmt;

/// A parameter problem found while preparing one of the element-wise, activation, shape,
/// resize or quantize kernels. Each variant names the op and what was wrong.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamError {
    /// A shape has more dimensions than the kernel supports.
    Rank {
        op: &'static str,
        what: &'static str,
        rank: usize,
        max: usize,
    },
    /// Shapes that must match or broadcast do not (or their sizes overflow).
    Shape { op: &'static str, detail: String },
    /// A quantization parameter is unusable (scale not finite and positive, zero point out of
    /// the type's range, a multiplier out of the supported range).
    Quant {
        op: &'static str,
        what: &'static str,
        value: f64,
    },
    /// An integer parameter (axis, index, block size, stride…) is out of range.
    Param {
        op: &'static str,
        what: &'static str,
        value: i64,
    },
    /// TFLite defines no semantics for this combination of op and types.
    Unsupported {
        op: &'static str,
        detail: &'static str,
    },
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamError::Rank {
                op,
                what,
                rank,
                max,
            } => {
                write!(
                    f,
                    "{op}: {what} has rank {rank}, at most {max} is supported"
                )
            }
            ParamError::Shape { op, detail } => write!(f, "{op}: {detail}"),
            ParamError::Quant { op, what, value } => write!(f, "{op}: unusable {what} {value}"),
            ParamError::Param { op, what, value } => {
                write!(f, "{op}: {what} = {value} is out of range")
            }
            ParamError::Unsupported { op, detail } => write!(f, "{op}: {detail}"),
        }
    }
}

impl std::error::Error for ParamError {}

/// The f32 clamp `[min, max]` of a fused activation (TFLite `CalculateActivationRange`).
pub fn activation_range_f32(act: Activation) -> (f32, f32) {
    match act {
        Activation::None => (f32::NEG_INFINITY, f32::INFINITY),
        Activation::Relu => (0.0, f32::INFINITY),
        Activation::ReluN1To1 => (-1.0, 1.0),
        Activation::Relu6 => (0.0, 6.0),
    }
}

/// Per-tensor quantization: `real = scale · (q − zero_point)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QParams {
    pub scale: f32,
    pub zero_point: i32,
}

impl QParams {
    pub fn new(scale: f32, zero_point: i32) -> Self {
        QParams { scale, zero_point }
    }

    /// Checks the scale is finite and positive and the zero point fits `T`.
    pub fn validate<T: QInt>(
        self,
        op: &'static str,
        what: &'static str,
    ) -> Result<Self, ParamError> {
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Err(ParamError::Quant {
                op,
                what,
                value: self.scale as f64,
            });
        }
        if self.zero_point < T::MIN || self.zero_point > T::MAX {
            return Err(ParamError::Quant {
                op,
                what,
                value: self.zero_point as f64,
            });
        }
        Ok(self)
    }
}

/// An 8-bit quantized element type (int8 or uint8).
pub trait QInt: bytemuck::Pod + Send + Sync + fmt::Debug + PartialEq {
    const MIN: i32;
    const MAX: i32;
    fn to_i32(self) -> i32;
    /// Saturating conversion.
    fn from_i32(v: i32) -> Self;
    /// The table index of this value (`value as u8`).
    fn index(self) -> usize;
}

impl QInt for i8 {
    const MIN: i32 = -128;
    const MAX: i32 = 127;
    #[inline(always)]
    fn to_i32(self) -> i32 {
        self as i32
    }
    #[inline(always)]
    fn from_i32(v: i32) -> Self {
        v.clamp(-128, 127) as i8
    }
    #[inline(always)]
    fn index(self) -> usize {
        self as u8 as usize
    }
}

impl QInt for u8 {
    const MIN: i32 = 0;
    const MAX: i32 = 255;
    #[inline(always)]
    fn to_i32(self) -> i32 {
        self as i32
    }
    #[inline(always)]
    fn from_i32(v: i32) -> Self {
        v.clamp(0, 255) as u8
    }
    #[inline(always)]
    fn index(self) -> usize {
        self as usize
    }
}

/// The binary element-wise operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Maximum,
    Minimum,
    SquaredDifference,
}

impl BinaryOp {
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "ADD",
            BinaryOp::Sub => "SUB",
            BinaryOp::Mul => "MUL",
            BinaryOp::Div => "DIV",
            BinaryOp::Maximum => "MAXIMUM",
            BinaryOp::Minimum => "MINIMUM",
            BinaryOp::SquaredDifference => "SQUARED_DIFFERENCE",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// f32

/// `min(max(x, lo), hi)` with C++ `std::min`/`std::max` semantics (TFLite
/// `ActivationFunctionWithMinMax`).
#[inline(always)]
fn clamp_f32(x: f32, lo: f32, hi: f32) -> f32 {
    let x = if x < lo { lo } else { x };
    if hi < x {
        hi
    } else {
        x
    }
}

/// The scalar definition of each f32 op (before the activation clamp).
#[inline(always)]
pub fn apply_f32(op: BinaryOp, x: f32, y: f32) -> f32 {
    match op {
        BinaryOp::Add => x + y,
        BinaryOp::Sub => x - y,
        BinaryOp::Mul => x * y,
        BinaryOp::Div => x / y,
        BinaryOp::Maximum => {
            if x < y {
                y
            } else {
                x
            }
        }
        BinaryOp::Minimum => {
            if y < x {
                y
            } else {
                x
            }
        }
        BinaryOp::SquaredDifference => (x - y) * (x - y),
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn binary_f32_body(
    op: BinaryOp,
    lo: f32,
    hi: f32,
    plan: &BroadcastPlan,
    a: &[f32],
    b: &[f32],
    out: &mut [f32],
    start: usize,
) {
    macro_rules! go {
        ($f:expr) => {
            plan.for_each_run(start, start + out.len(), |ao, sa, bo, sb, o, n| {
                apply_run(a, ao, sa, b, bo, sb, &mut out[o..o + n], $f)
            })
        };
    }
    match op {
        BinaryOp::Add => go!(|x: f32, y: f32| clamp_f32(x + y, lo, hi)),
        BinaryOp::Sub => go!(|x: f32, y: f32| clamp_f32(x - y, lo, hi)),
        BinaryOp::Mul => go!(|x: f32, y: f32| clamp_f32(x * y, lo, hi)),
        BinaryOp::Div => go!(|x: f32, y: f32| clamp_f32(x / y, lo, hi)),
        BinaryOp::Maximum => {
            go!(|x: f32, y: f32| clamp_f32(apply_f32(BinaryOp::Maximum, x, y), lo, hi))
        }
        BinaryOp::Minimum => {
            go!(|x: f32, y: f32| clamp_f32(apply_f32(BinaryOp::Minimum, x, y), lo, hi))
        }
        BinaryOp::SquaredDifference => go!(|x: f32, y: f32| clamp_f32((x - y) * (x - y), lo, hi)),
    }
}

/// Signature of the f32 binary kernels in the dispatch table.
pub type BinaryF32Fn = fn(BinaryOp, (f32, f32), &BroadcastPlan, &[f32], &[f32], &mut [f32], usize);

/// Signature of the quantized binary kernels in the dispatch table.
pub type BinaryQFn<T> = fn(&QBinary, &BroadcastPlan, &[T], &[T], &mut [T], usize);

fn binary_f32_scalar(
    op: BinaryOp,
    act: (f32, f32),
    plan: &BroadcastPlan,
    a: &[f32],
    b: &[f32],
    out: &mut [f32],
    start: usize,
) {
    binary_f32_body(op, act.0, act.1, plan, a, b, out, start)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::*;
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn binary_f32_avx2_tf(
        op: BinaryOp,
        act: (f32, f32),
        plan: &BroadcastPlan,
        a: &[f32],
        b: &[f32],
        out: &mut [f32],
        start: usize,
    ) {
        binary_f32_body(op, act.0, act.1, plan, a, b, out, start)
    }

    pub fn binary_f32_avx2(
        op: BinaryOp,
        act: (f32, f32),
        plan: &BroadcastPlan,
        a: &[f32],
        b: &[f32],
        out: &mut [f32],
        start: usize,
    ) {
        // SAFETY: only installed in the dispatch table when `Isa::Avx2` is enabled, which
        // `Isa::detected` grants only after runtime detection of AVX2 and FMA.
        unsafe { binary_f32_avx2_tf(op, act, plan, a, b, out, start) }
    }

    /// # Safety
    /// The CPU must support AVX-512F/BW.
    #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
    unsafe fn binary_f32_avx512_tf(
        op: BinaryOp,
        act: (f32, f32),
        plan: &BroadcastPlan,
        a: &[f32],
        b: &[f32],
        out: &mut [f32],
        start: usize,
    ) {
        binary_f32_body(op, act.0, act.1, plan, a, b, out, start)
    }

    pub fn binary_f32_avx512(
        op: BinaryOp,
        act: (f32, f32),
        plan: &BroadcastPlan,
        a: &[f32],
        b: &[f32],
        out: &mut [f32],
        start: usize,
    ) {
        // SAFETY: only installed when `Isa::Avx512Vnni` is enabled, which requires runtime
        // detection of AVX-512 F/BW/DQ/VL/VNNI, AVX2 and FMA.
        unsafe { binary_f32_avx512_tf(op, act, plan, a, b, out, start) }
    }

    /// Vector `multiply_by_quantized_multiplier` for a positive multiplier, exactly
    /// [`mbqm_positive`] per lane. With `m > 0`, TFLite's `SaturatingRoundingDoublingHighMul`
    /// equals `floor((x·m + 2^30) / 2^31)` (its sign-dependent nudge and truncating division
    /// combine into that), whose low 32 bits a 64-bit *logical* shift yields.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn mbqm_avx2(x: __m256i, m: i32, shift: i32) -> __m256i {
        let left = _mm_cvtsi32_si128(shift.max(0));
        let right = (-shift).max(0);
        let x = _mm256_sll_epi32(x, left);
        let mv = _mm256_set1_epi32(m);
        let nudge = _mm256_set1_epi64x(1 << 30);
        let even = _mm256_add_epi64(_mm256_mul_epi32(x, mv), nudge);
        let odd = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64::<32>(x), mv), nudge);
        let hi = _mm256_blend_epi32::<0b1010_1010>(
            _mm256_srli_epi64::<31>(even),
            _mm256_slli_epi64::<1>(odd),
        );
        // RoundingDivideByPOT(hi, right).
        let mask = (1i32 << right).wrapping_sub(1);
        let rem = _mm256_and_si256(hi, _mm256_set1_epi32(mask));
        let thr = _mm256_add_epi32(_mm256_set1_epi32(mask >> 1), _mm256_srli_epi32::<31>(hi));
        let q = _mm256_sra_epi32(hi, _mm_cvtsi32_si128(right));
        _mm256_sub_epi32(q, _mm256_cmpgt_epi32(rem, thr))
    }

    /// Eight codes from `v[i..i + 8]` (step 1) or `v[i]` repeated (step 0), widened to i32.
    ///
    /// # Safety
    /// AVX2; with step 1, `v[i..i + 8]` must be in bounds.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn load8<T: QInt>(v: &[T], i: usize, step: usize) -> __m256i {
        if step == 0 {
            return _mm256_set1_epi32(v[i].to_i32());
        }
        debug_assert!(i + 8 <= v.len());
        // SAFETY: the caller guarantees `v[i..i + 8]` is in bounds; T is one byte.
        let b = unsafe { _mm_loadl_epi64(v.as_ptr().add(i) as *const __m128i) };
        if T::MIN < 0 {
            _mm256_cvtepi8_epi32(b)
        } else {
            _mm256_cvtepu8_epi32(b)
        }
    }

    /// ADD/SUB/MUL over one run (see `apply_run`), eight lanes at a time, the tail in scalar.
    ///
    /// # Safety
    /// AVX2.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2")]
    unsafe fn run_q_avx2<T: QInt>(
        p: &QBinary,
        a: &[T],
        ao: usize,
        sa: usize,
        b: &[T],
        bo: usize,
        sb: usize,
        out: &mut [T],
    ) {
        let n = out.len();
        let (o1, o2) = (
            _mm256_set1_epi32(p.input1_offset),
            _mm256_set1_epi32(p.input2_offset),
        );
        let zp = _mm256_set1_epi32(p.output_offset);
        let (lo, hi) = (_mm256_set1_epi32(p.act_min), _mm256_set1_epi32(p.act_max));
        let (a, b) = (&a[ao..], &b[bo..]);
        if sa != 0 {
            assert!(a.len() >= n, "run_q_avx2: input 0 too short");
        }
        if sb != 0 {
            assert!(b.len() >= n, "run_q_avx2: input 1 too short");
        }
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: `i + 8 <= n` and the asserts above bound the step-1 loads.
            let (x, y) = unsafe { (load8(a, i * sa, sa), load8(b, i * sb, sb)) };
            let x = _mm256_add_epi32(x, o1);
            let y = _mm256_add_epi32(y, o2);
            let r = match p.op {
                BinaryOp::Mul => _mm256_mullo_epi32(x, y),
                // SAFETY: `mbqm_avx2` needs AVX2, which this function enables.
                _ => unsafe {
                    let sx = mbqm_avx2(
                        _mm256_slli_epi32::<20>(x),
                        p.input1_multiplier,
                        p.input1_shift,
                    );
                    let sy = mbqm_avx2(
                        _mm256_slli_epi32::<20>(y),
                        p.input2_multiplier,
                        p.input2_shift,
                    );
                    if p.op == BinaryOp::Sub {
                        _mm256_sub_epi32(sx, sy)
                    } else {
                        _mm256_add_epi32(sx, sy)
                    }
                },
            };
            // SAFETY: AVX2 is enabled in this function.
            let v = unsafe { mbqm_avx2(r, p.output_multiplier, p.output_shift) };
            let v = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(v, zp), lo), hi);
            let w = _mm256_packs_epi32(v, v);
            let w = if T::MIN < 0 {
                _mm256_packs_epi16(w, w)
            } else {
                _mm256_packus_epi16(w, w)
            };
            let lo4 = _mm_cvtsi128_si32(_mm256_castsi256_si128(w)) as u32 as u64;
            let hi4 = _mm_cvtsi128_si32(_mm256_extracti128_si256::<1>(w)) as u32 as u64;
            // SAFETY: `i + 8 <= n = out.len()`; an unaligned 8-byte store of one-byte codes.
            unsafe {
                std::ptr::write_unaligned(out.as_mut_ptr().add(i) as *mut u64, lo4 | hi4 << 32)
            };
            i += 8;
        }
        for j in i..n {
            out[j] = T::from_i32(q_elem(p, a[j * sa].to_i32(), b[j * sb].to_i32()));
        }
    }

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    unsafe fn binary_q_avx2_tf<T: QInt>(
        p: &QBinary,
        plan: &BroadcastPlan,
        a: &[T],
        b: &[T],
        out: &mut [T],
        start: usize,
    ) {
        if !matches!(p.op, BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul) {
            return binary_q_body(p, plan, a, b, out, start);
        }
        plan.for_each_run(start, start + out.len(), |ao, sa, bo, sb, o, n| {
            // SAFETY: AVX2 is enabled in this function.
            unsafe { run_q_avx2(p, a, ao, sa, b, bo, sb, &mut out[o..o + n]) }
        })
    }

    pub fn binary_q_avx2<T: QInt>(
        p: &QBinary,
        plan: &BroadcastPlan,
        a: &[T],
        b: &[T],
        out: &mut [T],
        start: usize,
    ) {
        // SAFETY: only installed when the `Avx2` tier (AVX2 detected at run time) is enabled.
        unsafe { binary_q_avx2_tf(p, plan, a, b, out, start) }
    }

    /// The constants of one input's rescale in ADD/SUB for [`run_q_avx512`]: with
    /// `a = q + offset` and `m = mh·2^11 + ml`, TFLite's
    /// `RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(a·2^20, m), r)` is
    /// `h = a·mh + ⌊(a·ml + 2^10) / 2^11⌋` (the high multiply of `a·2^20` by a positive `m` is
    /// `⌊(a·m + 2^10) / 2^11⌋`), then `(h + 2^(r−1) − [h < 0]) >> r`, all in 32-bit lanes.
    #[derive(Clone, Copy)]
    struct InScale {
        /// `offset·mh + 2^(r−1)` (wrapping; the sum it enters fits).
        c_hi: i32,
        /// `offset·ml + 2^10`.
        c_lo: i32,
        mh: i32,
        ml: i32,
        r: i32,
        /// 31 when `r > 0` (the logical shift yields `[h < 0]`), else 32 (yields 0).
        sign_shift: i32,
    }

    impl InScale {
        /// `None` when the parameters are outside the range the 32-bit formula is exact for
        /// (TFLite's ADD/SUB always give `left_shift` 20, a normalised multiplier and a small
        /// right shift; anything else takes the general path).
        fn new(left_shift: i32, offset: i32, m: i32, shift: i32) -> Option<InScale> {
            let r = -shift;
            if left_shift != 20 || m < (1 << 30) || !(0..=16).contains(&r) {
                return None;
            }
            let (mh, ml) = (m >> 11, m & 0x7ff);
            let round = if r > 0 { 1 << (r - 1) } else { 0 };
            Some(InScale {
                c_hi: offset.wrapping_mul(mh).wrapping_add(round),
                c_lo: offset * ml + (1 << 10),
                mh,
                ml,
                r,
                sign_shift: if r > 0 { 31 } else { 32 },
            })
        }

        /// The rescaled term of 16 codes (as i32 lanes).
        ///
        /// # Safety
        /// AVX-512F.
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn apply(&self, q: __m512i) -> __m512i {
            let hi = _mm512_add_epi32(
                _mm512_mullo_epi32(q, _mm512_set1_epi32(self.mh)),
                _mm512_set1_epi32(self.c_hi),
            );
            let lo = _mm512_add_epi32(
                _mm512_mullo_epi32(q, _mm512_set1_epi32(self.ml)),
                _mm512_set1_epi32(self.c_lo),
            );
            let h = _mm512_add_epi32(hi, _mm512_srai_epi32::<11>(lo));
            let neg = _mm512_srl_epi32(h, _mm_cvtsi32_si128(self.sign_shift));
            _mm512_sra_epi32(_mm512_sub_epi32(h, neg), _mm_cvtsi32_si128(self.r))
        }
    }

    /// The output stage `clamp(MultiplyByQuantizedMultiplier(v, m, shift) + zp)` for a positive
    /// multiplier, in 64-bit lanes: with `p = (v << left)·m`, the high multiply is
    /// `h = ⌊(p + 2^30) / 2^31⌋` and the rounding right shift by `r` is
    /// `⌊(p + 2^30 + (2^(r−1) − [h < 0])·2^31) / 2^(31+r)⌋`, where `h < 0` iff `p < −2^30`.
    #[derive(Clone, Copy)]
    struct OutScale {
        m: i32,
        left: i32,
        /// `2^30 + 2^(r−1)·2^31`.
        nudge: i64,
        /// `2^31` when `r > 0`, else 0.
        neg: i64,
        /// `31 + r`.
        shift: u32,
        zp: i32,
        lo: i32,
        hi: i32,
    }

    impl OutScale {
        /// `None` outside the range the formula is exact for (a non-normalised multiplier, a
        /// right shift beyond 31).
        fn new(p: &QBinary) -> Option<OutScale> {
            let (m, sh) = (p.output_multiplier, p.output_shift);
            let (left, r) = (sh.max(0), (-sh).max(0));
            if m < (1 << 30) || r > 31 || left > 30 {
                return None;
            }
            Some(OutScale {
                m,
                left,
                nudge: (1i64 << 30) + if r > 0 { 1i64 << (30 + r) } else { 0 },
                neg: if r > 0 { 1i64 << 31 } else { 0 },
                shift: 31 + r as u32,
                zp: p.output_offset,
                lo: p.act_min,
                hi: p.act_max,
            })
        }

        /// # Safety
        /// AVX-512F.
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn apply(&self, v: __m512i) -> __m512i {
            let v = _mm512_sll_epi32(v, _mm_cvtsi32_si128(self.left));
            let m = _mm512_set1_epi32(self.m);
            let (nudge, neg) = (_mm512_set1_epi64(self.nudge), _mm512_set1_epi64(self.neg));
            let thr = _mm512_set1_epi64(-(1i64 << 30));
            let cnt = _mm_cvtsi32_si128(self.shift as i32);
            /// One 64-bit lane group of the rounding (a function, not a closure, so it
            /// inherits the target features when inlined).
            #[inline]
            #[target_feature(enable = "avx512f")]
            fn round(
                p: __m512i,
                thr: __m512i,
                nudge: __m512i,
                neg: __m512i,
                cnt: __m128i,
            ) -> __m512i {
                let k = _mm512_cmplt_epi64_mask(p, thr);
                let p = _mm512_add_epi64(p, nudge);
                _mm512_sra_epi64(_mm512_mask_sub_epi64(p, k, p, neg), cnt)
            }
            let even = round(_mm512_mul_epi32(v, m), thr, nudge, neg, cnt);
            let odd = round(
                _mm512_mul_epi32(_mm512_srli_epi64::<32>(v), m),
                thr,
                nudge,
                neg,
                cnt,
            );
            let idx = _mm512_setr_epi32(0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30);
            let r = _mm512_permutex2var_epi32(even, idx, odd);
            let r = _mm512_add_epi32(r, _mm512_set1_epi32(self.zp));
            _mm512_min_epi32(
                _mm512_max_epi32(r, _mm512_set1_epi32(self.lo)),
                _mm512_set1_epi32(self.hi),
            )
        }
    }

    /// Up to 16 codes from `v[i..i + n]` (step 1) or `v[i]` repeated (step 0), widened to i32.
    ///
    /// # Safety
    /// AVX-512F/BW/VL; with step 1, `v[i..i + n]` must be in bounds; `n <= 16`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn load16<T: QInt>(v: &[T], i: usize, step: usize, n: usize) -> __m512i {
        if step == 0 {
            return _mm512_set1_epi32(v[i].to_i32());
        }
        debug_assert!(n <= 16 && i + n <= v.len());
        let k: __mmask16 = if n >= 16 { !0 } else { (1u16 << n) - 1 };
        // SAFETY: the mask limits the load to `v[i..i + n]`, in bounds (caller); T is one byte.
        let b = unsafe { _mm_maskz_loadu_epi8(k, v.as_ptr().add(i) as *const i8) };
        if T::MIN < 0 {
            _mm512_cvtepi8_epi32(b)
        } else {
            _mm512_cvtepu8_epi32(b)
        }
    }

    /// ADD/SUB/MUL over one run (see `apply_run`), 16 lanes at a time (the tail masked), with
    /// the exact 32/64-bit formulas of [`InScale`] and [`OutScale`].
    ///
    /// # Safety
    /// AVX-512F/BW/VL.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn run_q_avx512<T: QInt>(
        p: &QBinary,
        s1: Option<InScale>,
        s2: Option<InScale>,
        os: &OutScale,
        a: &[T],
        sa: usize,
        b: &[T],
        sb: usize,
        out: &mut [T],
    ) {
        let n = out.len();
        if sa != 0 {
            assert!(a.len() >= n, "run_q_avx512: input 0 too short");
        }
        if sb != 0 {
            assert!(b.len() >= n, "run_q_avx512: input 1 too short");
        }
        // A broadcast operand's term is computed once.
        let (o1, o2) = (
            _mm512_set1_epi32(p.input1_offset),
            _mm512_set1_epi32(p.input2_offset),
        );
        match (p.op, s1, s2) {
            (BinaryOp::Add, Some(s1), Some(s2)) => {
                // SAFETY: AVX-512F/BW/VL are enabled in this function; the asserts above hold.
                unsafe {
                    lanes16(a, sa, b, sb, out, os, |x, y| {
                        _mm512_add_epi32(s1.apply(x), s2.apply(y))
                    })
                }
            }
            (BinaryOp::Sub, Some(s1), Some(s2)) => {
                // SAFETY: as above.
                unsafe {
                    lanes16(a, sa, b, sb, out, os, |x, y| {
                        _mm512_sub_epi32(s1.apply(x), s2.apply(y))
                    })
                }
            }
            _ => {
                // SAFETY: as above.
                unsafe {
                    lanes16(a, sa, b, sb, out, os, |x, y| {
                        _mm512_mullo_epi32(_mm512_add_epi32(x, o1), _mm512_add_epi32(y, o2))
                    })
                }
            }
        }
    }

    /// The loop of [`run_q_avx512`]: 16 lanes of each operand, `f` combines them into the
    /// value the output stage rescales. `f` runs inside this AVX-512 function and must be
    /// `#[inline(always)]`-able (a closure whose body calls only intrinsics).
    ///
    /// # Safety
    /// AVX-512F/BW/VL; with a step of 1 the operand holds at least `out.len()` codes; `f` may
    /// only use AVX-512F instructions.
    #[inline(always)]
    unsafe fn lanes16<T: QInt>(
        a: &[T],
        sa: usize,
        b: &[T],
        sb: usize,
        out: &mut [T],
        os: &OutScale,
        f: impl Fn(__m512i, __m512i) -> __m512i,
    ) {
        let n = out.len();
        let mut i = 0;
        while i < n {
            let len = (n - i).min(16);
            // SAFETY: `i + len <= n` and the caller bounds the step-1 operands.
            let (x, y) = unsafe { (load16(a, i * sa, sa, len), load16(b, i * sb, sb, len)) };
            // SAFETY: AVX-512F (caller).
            let v = unsafe { os.apply(f(x, y)) };
            let k: __mmask16 = if len >= 16 { !0 } else { (1u16 << len) - 1 };
            // SAFETY: the mask limits the store to `out[i..i + len]`, in bounds.
            unsafe { _mm512_mask_cvtepi32_storeu_epi8(out.as_mut_ptr().add(i) as *mut i8, k, v) };
            i += len;
        }
    }

    /// Longest per-channel vector [`channels_q_avx512`] takes (its terms live on the stack).
    const CHANNELS_MAX: usize = 1024;

    /// ADD/SUB/MUL of a full operand with a per-channel vector (see
    /// [`BroadcastPlan::channel_vector`]) over output elements `start..start + out.len()`: the
    /// vector's terms are computed once per call (exactly, from the scalar tables), then each
    /// output row runs in 16-lane steps without a per-row call. `s_full` rescales the full
    /// operand (ADD/SUB; `None` for MUL, which adds `o_full`).
    ///
    /// # Safety
    /// AVX-512F/BW/VL; `full` holds the whole output's count of codes; `vec.len() <=
    /// CHANNELS_MAX`, nonzero.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn channels_q_avx512<T: QInt>(
        p: &QBinary,
        s_full: Option<InScale>,
        os: &OutScale,
        full: &[T],
        vec: &[T],
        vec_is_b: bool,
        out: &mut [T],
        start: usize,
    ) {
        let l = vec.len();
        let end = start + out.len();
        assert!(
            l > 0 && l <= CHANNELS_MAX && full.len() >= end,
            "channels_q_avx512: shapes"
        );
        let mut tv = [0i32; CHANNELS_MAX];
        for (t, &v) in tv.iter_mut().zip(vec) {
            *t = match (p.op, vec_is_b) {
                (BinaryOp::Mul, true) => v.to_i32() + p.input2_offset,
                (BinaryOp::Mul, false) => v.to_i32() + p.input1_offset,
                (_, true) => p.t2[v.index()],
                (_, false) => p.t1[v.index()],
            };
        }
        let o_full = _mm512_set1_epi32(if vec_is_b {
            p.input1_offset
        } else {
            p.input2_offset
        });
        macro_rules! rows {
            ($f:expr) => {{
                let mut pos = start;
                while pos < end {
                    let c = pos % l;
                    let seg = (l - c).min(end - pos);
                    let mut j = 0;
                    while j < seg {
                        let len = (seg - j).min(16);
                        let k: __mmask16 = if len >= 16 { !0 } else { (1u16 << len) - 1 };
                        // SAFETY: `pos + j + len <= end <= full.len()`; `c + j + len <= l`,
                        // inside `tv`; `pos - start + j + len <= out.len()`.
                        unsafe {
                            let x = load16(full, pos + j, 1, len);
                            let t = _mm512_maskz_loadu_epi32(k, tv.as_ptr().add(c + j));
                            let v = os.apply($f(x, t));
                            _mm512_mask_cvtepi32_storeu_epi8(
                                out.as_mut_ptr().add(pos - start + j) as *mut i8,
                                k,
                                v,
                            );
                        }
                        j += len;
                    }
                    pos += seg;
                }
            }};
        }
        match (p.op, s_full, vec_is_b) {
            (BinaryOp::Add, Some(s), _) => rows!(|x, t| _mm512_add_epi32(s.apply(x), t)),
            (BinaryOp::Sub, Some(s), true) => rows!(|x, t| _mm512_sub_epi32(s.apply(x), t)),
            (BinaryOp::Sub, Some(s), false) => rows!(|x, t| _mm512_sub_epi32(t, s.apply(x))),
            _ => rows!(|x, t| _mm512_mullo_epi32(_mm512_add_epi32(x, o_full), t)),
        }
    }

    /// # Safety
    /// The CPU must support AVX-512F/BW/VL and AVX2.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2")]
    unsafe fn binary_q_avx512_tf<T: QInt>(
        p: &QBinary,
        plan: &BroadcastPlan,
        a: &[T],
        b: &[T],
        out: &mut [T],
        start: usize,
    ) {
        let ins = match p.op {
            BinaryOp::Add | BinaryOp::Sub => InScale::new(
                p.left_shift,
                p.input1_offset,
                p.input1_multiplier,
                p.input1_shift,
            )
            .zip(InScale::new(
                p.left_shift,
                p.input2_offset,
                p.input2_multiplier,
                p.input2_shift,
            ))
            .map(|(x, y)| (Some(x), Some(y))),
            BinaryOp::Mul => Some((None, None)),
            _ => None,
        };
        let (Some((s1, s2)), Some(os)) = (ins, OutScale::new(p)) else {
            // SAFETY: AVX2 is enabled in this function.
            return unsafe { binary_q_avx2_tf(p, plan, a, b, out, start) };
        };
        if let Some((vec_is_b, l)) = plan.channel_vector() {
            if l <= CHANNELS_MAX {
                let (full, vec, s_full) = if vec_is_b { (a, b, s1) } else { (b, a, s2) };
                // SAFETY: AVX-512F/BW/VL are enabled in this function; the plan gives the full
                // operand the output's length and the vector `l` values.
                return unsafe {
                    channels_q_avx512(p, s_full, &os, full, &vec[..l], vec_is_b, out, start)
                };
            }
        }
        plan.for_each_run(start, start + out.len(), |ao, sa, bo, sb, o, n| {
            // SAFETY: AVX-512F/BW/VL are enabled in this function.
            unsafe {
                run_q_avx512(
                    p,
                    s1,
                    s2,
                    &os,
                    &a[ao..],
                    sa,
                    &b[bo..],
                    sb,
                    &mut out[o..o + n],
                )
            }
        })
    }

    pub fn binary_q_avx512<T: QInt>(
        p: &QBinary,
        plan: &BroadcastPlan,
        a: &[T],
        b: &[T],
        out: &mut [T],
        start: usize,
    ) {
        // SAFETY: only installed when the `Avx512Vnni` tier (AVX-512 F/BW/DQ/VL and AVX2
        // detected at run time) is enabled.
        unsafe { binary_q_avx512_tf(p, plan, a, b, out, start) }
    }

    /// # Safety
    /// The CPU must support AVX-512 F/BW and VBMI.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    unsafe fn lut8_vbmi_tf(table: &[u8; 256], x: &[u8], out: &mut [u8]) {
        use std::arch::x86_64::*;
        let n = x.len().min(out.len());
        let t = table.as_ptr();
        // SAFETY: `table` has 256 bytes: four unaligned 64-byte loads at 0, 64, 128, 192.
        let (t0, t1, t2, t3) = unsafe {
            (
                _mm512_loadu_si512(t as *const _),
                _mm512_loadu_si512(t.add(64) as *const _),
                _mm512_loadu_si512(t.add(128) as *const _),
                _mm512_loadu_si512(t.add(192) as *const _),
            )
        };
        let mut i = 0;
        while i + 64 <= n {
            // SAFETY: `i + 64 <= n <= x.len(), out.len()`: the 64-byte load and store are in
            // bounds (unaligned access is allowed by loadu/storeu).
            unsafe {
                let idx = _mm512_loadu_si512(x.as_ptr().add(i) as *const _);
                // Bit 6 of each index picks t0/t1 (t2/t3); bit 7 picks the upper pair.
                let lo = _mm512_permutex2var_epi8(t0, idx, t1);
                let hi = _mm512_permutex2var_epi8(t2, idx, t3);
                let r = _mm512_mask_blend_epi8(_mm512_movepi8_mask(idx), lo, hi);
                _mm512_storeu_si512(out.as_mut_ptr().add(i) as *mut _, r);
            }
            i += 64;
        }
        for j in i..n {
            out[j] = table[x[j] as usize];
        }
    }

    pub fn lut8_vbmi(table: &[u8; 256], x: &[u8], out: &mut [u8]) {
        assert_eq!(x.len(), out.len(), "lut8: input and output lengths differ");
        // SAFETY: only installed when AVX-512 F/BW (the `Avx512Vnni` tier) and VBMI were
        // detected at run time.
        unsafe { lut8_vbmi_tf(table, x, out) }
    }

    /// The lane formulas of the AVX-512 quantized kernel against the normative
    /// `multiply_by_quantized_multiplier`, on multipliers whose low bits put results exactly on
    /// rounding ties (negative ones included) and on every input offset.
    #[cfg(test)]
    mod avx512_formulas {
        use super::*;
        use crate::requant::multiply_by_quantized_multiplier as mbqm;

        fn lanes(v: __m512i) -> [i32; 16] {
            // SAFETY: __m512i and [i32; 16] have the same size, every bit pattern is valid.
            unsafe { std::mem::transmute(v) }
        }

        fn multipliers() -> Vec<i32> {
            let mut v = vec![1 << 30, (1 << 30) + 1, i32::MAX, (1 << 30) + (1 << 11)];
            let mut x = 0x1234_5678_9abc_def1u64;
            for _ in 0..200 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let m = (1u32 << 30) | (x as u32 & 0x3fff_ffff);
                // Clear a random number of low bits: exact ties need them.
                v.push((m & !((1u32 << ((x >> 40) % 28)) - 1)) as i32);
            }
            v
        }

        #[test]
        fn input_rescale_is_exact() {
            if !(std::arch::is_x86_feature_detected!("avx512f")) {
                return;
            }
            for m in multipliers() {
                for r in 0..=16 {
                    for offset in [-255, -128, -1, 0, 1, 127, 255] {
                        let s = InScale::new(20, offset, m, -r).unwrap();
                        for q0 in (-128..256).step_by(16) {
                            let q: Vec<i32> = (q0..q0 + 16).collect();
                            // SAFETY: AVX-512F detected above; q holds 16 values.
                            let got = lanes(unsafe {
                                s.apply(_mm512_loadu_si512(q.as_ptr() as *const __m512i))
                            });
                            for (j, &g) in got.iter().enumerate() {
                                let a = q[j] + offset;
                                if !(-255..=255).contains(&a) {
                                    continue;
                                }
                                let want = mbqm(a * (1 << 20), m, -r);
                                assert_eq!(
                                    g, want,
                                    "m {m} shift {} offset {offset} q {}",
                                    -r, q[j]
                                );
                            }
                        }
                    }
                }
            }
        }

        #[test]
        fn output_rescale_is_exact() {
            if !(std::arch::is_x86_feature_detected!("avx512f")) {
                return;
            }
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            for m in multipliers() {
                for shift in [-31, -20, -13, -5, -1, 0, 1, 3] {
                    let p = QBinary {
                        op: BinaryOp::Add,
                        input1_offset: 0,
                        input2_offset: 0,
                        output_offset: 7,
                        left_shift: 20,
                        input1_multiplier: 0,
                        input1_shift: 0,
                        input2_multiplier: 0,
                        input2_shift: 0,
                        output_multiplier: m,
                        output_shift: shift,
                        act_min: i32::MIN,
                        act_max: i32::MAX,
                        t1: [0; 256],
                        t2: [0; 256],
                    };
                    let os = OutScale::new(&p).unwrap();
                    let mut v = [0i32; 16];
                    for round in 0..64 {
                        for (j, e) in v.iter_mut().enumerate() {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            // Small values (ties), then values up to 2^28 in magnitude.
                            let bits = if round < 16 { 12 } else { 29 };
                            *e = ((x >> 20) as i32 >> (32 - bits)).wrapping_add(j as i32 - 8);
                            if shift > 0 {
                                *e >>= 3 + shift;
                            }
                        }
                        // SAFETY: AVX-512F detected above.
                        let got = lanes(unsafe {
                            os.apply(_mm512_loadu_si512(v.as_ptr() as *const __m512i))
                        });
                        for j in 0..16 {
                            let want = mbqm(v[j], m, shift) + 7;
                            assert_eq!(got[j], want, "m {m} shift {shift} x {}", v[j]);
                        }
                    }
                }
            }
        }
    }
}

/// The element-wise slots of the dispatch table (`dispatch::Kernels::elementwise`): the scalar
/// floor, overwritten per ISA tier. Each slot holds (kernel name, kernel).
#[derive(Clone, Copy)]
pub struct ElementwiseKernels {
    pub binary_f32: (&'static str, BinaryF32Fn),
    pub binary_i8: (&'static str, BinaryQFn<i8>),
    pub binary_u8: (&'static str, BinaryQFn<u8>),
    /// A 256-entry byte table applied to a byte slice (the quantized unary activations,
    /// requantization): `out[i] = table[x[i]]`.
    pub lut8: (&'static str, Lut8Fn),
}

/// Signature of the byte-table kernels.
pub type Lut8Fn = fn(&[u8; 256], &[u8], &mut [u8]);

fn lut8_scalar(table: &[u8; 256], x: &[u8], out: &mut [u8]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = table[v as usize];
    }
}

impl ElementwiseKernels {
    /// The table for `isa` (each slot: the best kernel at or below that tier).
    pub fn for_isa(isa: Isa) -> Self {
        #[allow(unused_mut)]
        let mut k = ElementwiseKernels {
            binary_f32: ("generic::binary_f32_x1", binary_f32_scalar),
            binary_i8: ("generic::binary_qs8_x1", binary_q_scalar::<i8>),
            binary_u8: ("generic::binary_qu8_x1", binary_q_scalar::<u8>),
            lut8: ("generic::lut8_x1", lut8_scalar),
        };
        #[cfg(target_arch = "x86_64")]
        {
            let x86 = (Isa::Avx2..=Isa::Avx512Vnni).contains(&isa);
            let enabled = |t: Isa| x86 && t <= isa && Isa::detected() >= t;
            if enabled(Isa::Avx2) {
                k.binary_f32 = ("avx2::binary_f32_x8", x86::binary_f32_avx2);
                k.binary_i8 = ("avx2::binary_qs8_x8", x86::binary_q_avx2::<i8>);
                k.binary_u8 = ("avx2::binary_qu8_x8", x86::binary_q_avx2::<u8>);
            }
            if enabled(Isa::Avx512Vnni) {
                k.binary_f32 = ("avx512::binary_f32_x16", x86::binary_f32_avx512);
                k.binary_i8 = ("avx512::binary_qs8_x16", x86::binary_q_avx512::<i8>);
                k.binary_u8 = ("avx512::binary_qu8_x16", x86::binary_q_avx512::<u8>);
                if std::arch::is_x86_feature_detected!("avx512vbmi") {
                    k.lut8 = ("avx512::lut8_x64", x86::lut8_vbmi);
                }
            }
        }
        let _ = isa;
        k
    }

    /// The table in use: the process-wide dispatch table's slots.
    pub fn get() -> &'static ElementwiseKernels {
        &crate::dispatch::kernels().elementwise
    }
}

impl fmt::Debug for ElementwiseKernels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ElementwiseKernels")
            .field("binary_f32", &self.binary_f32.0)
            .field("binary_i8", &self.binary_i8.0)
            .field("binary_u8", &self.binary_u8.0)
            .field("lut8", &self.lut8.0)
            .finish()
    }
}

/// `out[i] = act(a[i'] ∘ b[i''])` for output elements `start .. start + out.len()` of `plan`;
/// `act` is the f32 clamp (see [`activation_range_f32`]). `a`/`b` hold the whole operands.
pub fn binary_f32(
    op: BinaryOp,
    act: (f32, f32),
    plan: &BroadcastPlan,
    a: &[f32],
    b: &[f32],
    out: &mut [f32],
    start: usize,
) {
    debug_assert_eq!(plan.operand_lens(), (a.len(), b.len()));
    (ElementwiseKernels::get().binary_f32.1)(op, act, plan, a, b, out, start)
}

/// Plain reference loop for f32 (obviously correct, no plan): used by tests.
pub fn reference_binary_f32(
    op: BinaryOp,
    act: (f32, f32),
    a_shape: &[usize],
    a: &[f32],
    b_shape: &[usize],
    b: &[f32],
    out: &mut [f32],
) {
    for (i, o) in out.iter_mut().enumerate() {
        let (ia, ib) = reference_offsets(a_shape, b_shape, i);
        *o = clamp_f32(apply_f32(op, a[ia], b[ib]), act.0, act.1);
    }
}

// ---------------------------------------------------------------------------------------------
// int8 / uint8

/// Quantized parameters of one binary op, computed once by [`prepare_binary_q`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QBinary {
    pub op: BinaryOp,
    pub input1_offset: i32,
    pub input2_offset: i32,
    pub output_offset: i32,
    pub left_shift: i32,
    pub input1_multiplier: i32,
    pub input1_shift: i32,
    pub input2_multiplier: i32,
    pub input2_shift: i32,
    pub output_multiplier: i32,
    pub output_shift: i32,
    pub act_min: i32,
    pub act_max: i32,
    /// ADD/SUB/SQUARED_DIFFERENCE: each input's rescaled term
    /// `MultiplyByQuantizedMultiplier((q + offset) << left_shift, m, shift)` per code (indexed
    /// by the code's bit pattern), so eval does one multiplication per element, not three.
    t1: [i32; 256],
    t2: [i32; 256],
}

/// TFLite `QuantizeMultiplierSmallerThanOneExp`: the real multiplier must be in (0, 1).
fn multiplier_below_one(
    op: &'static str,
    what: &'static str,
    m: f64,
) -> Result<(i32, i32), ParamError> {
    if !(m > 0.0 && m < 1.0) {
        return Err(ParamError::Quant { op, what, value: m });
    }
    Ok(quantize_multiplier(m))
}

/// Computes TFLite's integer parameters for `op` on `T` (int8 or uint8) from the tensors'
/// quantization, with the fused activation folded into the output clamp.
pub fn prepare_binary_q<T: QInt>(
    op: BinaryOp,
    in1: QParams,
    in2: QParams,
    out: QParams,
    act: Activation,
) -> Result<QBinary, ParamError> {
    let name = op.name();
    let in1 = in1.validate::<T>(name, "input 0 quantization")?;
    let in2 = in2.validate::<T>(name, "input 1 quantization")?;
    let out = out.validate::<T>(name, "output quantization")?;
    let (act_min, act_max) = activation_range(act, out.scale, out.zero_point, T::MIN, T::MAX);
    let mut p = QBinary {
        op,
        input1_offset: -in1.zero_point,
        input2_offset: -in2.zero_point,
        output_offset: out.zero_point,
        left_shift: 0,
        input1_multiplier: 0,
        input1_shift: 0,
        input2_multiplier: 0,
        input2_shift: 0,
        output_multiplier: 0,
        output_shift: 0,
        act_min,
        act_max,
        t1: [0; 256],
        t2: [0; 256],
    };
    match op {
        BinaryOp::Add | BinaryOp::Sub => {
            // add.cc / sub.cc Prepare (doubles throughout).
            p.left_shift = 20;
            let twice_max = 2.0 * in1.scale.max(in2.scale) as f64;
            let r1 = in1.scale as f64 / twice_max;
            let r2 = in2.scale as f64 / twice_max;
            let ro = twice_max / ((1i64 << p.left_shift) as f64 * out.scale as f64);
            (p.input1_multiplier, p.input1_shift) =
                multiplier_below_one(name, "input 0 multiplier", r1)?;
            (p.input2_multiplier, p.input2_shift) =
                multiplier_below_one(name, "input 1 multiplier", r2)?;
            (p.output_multiplier, p.output_shift) =
                multiplier_below_one(name, "output multiplier", ro)?;
        }
        BinaryOp::Mul => {
            // mul.cc Prepare: the product is formed in f32, then widened.
            let r = (in1.scale * in2.scale / out.scale) as f64;
            if !(r.is_finite() && r > 0.0) {
                return Err(ParamError::Quant {
                    op: name,
                    what: "output multiplier",
                    value: r,
                });
            }
            (p.output_multiplier, p.output_shift) = quantize_multiplier(r);
        }
        BinaryOp::SquaredDifference => {
            // squared_difference.cc Prepare: left_shift 7, squared on the twice-max scale.
            p.left_shift = 7;
            let twice_max = 2.0 * in1.scale.max(in2.scale) as f64;
            let r1 = in1.scale as f64 / twice_max;
            let r2 = in2.scale as f64 / twice_max;
            let ro =
                twice_max * twice_max / ((1i64 << (2 * p.left_shift)) as f64 * out.scale as f64);
            (p.input1_multiplier, p.input1_shift) =
                multiplier_below_one(name, "input 0 multiplier", r1)?;
            (p.input2_multiplier, p.input2_shift) =
                multiplier_below_one(name, "input 1 multiplier", r2)?;
            if !(ro.is_finite() && ro > 0.0) {
                return Err(ParamError::Quant {
                    op: name,
                    what: "output multiplier",
                    value: ro,
                });
            }
            (p.output_multiplier, p.output_shift) = quantize_multiplier(ro);
        }
        BinaryOp::Maximum | BinaryOp::Minimum => {
            // maximum_minimum.cc compares and copies raw codes, whatever the quantization
            // (the converter gives inputs and output the same), with no activation.
            p.act_min = T::MIN;
            p.act_max = T::MAX;
        }
        BinaryOp::Div => {
            return Err(ParamError::Unsupported {
                op: name,
                detail: "quantized DIV is not supported",
            });
        }
    }
    if matches!(
        op,
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::SquaredDifference
    ) {
        for q in T::MIN..=T::MAX {
            let i = T::from_i32(q).index();
            p.t1[i] = multiply_by_quantized_multiplier(
                (q + p.input1_offset) * (1 << p.left_shift),
                p.input1_multiplier,
                p.input1_shift,
            );
            p.t2[i] = multiply_by_quantized_multiplier(
                (q + p.input2_offset) * (1 << p.left_shift),
                p.input2_multiplier,
                p.input2_shift,
            );
        }
    }
    Ok(p)
}

/// The scalar definition of one quantized binary op on raw values (TFLite's reference
/// `AddElementwise`, `SubElementwise`, `MulElementwise`, squared difference, max/min).
#[inline(always)]
pub fn apply_q(p: &QBinary, x: i32, y: i32) -> i32 {
    let raw = match p.op {
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::SquaredDifference => {
            let sx = (x + p.input1_offset) * (1 << p.left_shift);
            let sy = (y + p.input2_offset) * (1 << p.left_shift);
            let sx = multiply_by_quantized_multiplier(sx, p.input1_multiplier, p.input1_shift);
            let sy = multiply_by_quantized_multiplier(sy, p.input2_multiplier, p.input2_shift);
            let r = match p.op {
                BinaryOp::Add => sx + sy,
                BinaryOp::Sub => sx - sy,
                _ => (sx - sy).wrapping_mul(sx - sy),
            };
            multiply_by_quantized_multiplier(r, p.output_multiplier, p.output_shift)
                + p.output_offset
        }
        BinaryOp::Mul => {
            let prod = (x + p.input1_offset) * (y + p.input2_offset);
            multiply_by_quantized_multiplier(prod, p.output_multiplier, p.output_shift)
                + p.output_offset
        }
        BinaryOp::Maximum => x.max(y),
        BinaryOp::Minimum => x.min(y),
        BinaryOp::Div => x, // rejected by prepare_binary_q
    };
    raw.clamp(p.act_min, p.act_max)
}

#[inline(always)]
fn binary_q_body<T: QInt>(
    p: &QBinary,
    plan: &BroadcastPlan,
    a: &[T],
    b: &[T],
    out: &mut [T],
    start: usize,
) {
    macro_rules! go {
        ($f:expr) => {
            plan.for_each_run(start, start + out.len(), |ao, sa, bo, sb, o, n| {
                apply_run(a, ao, sa, b, bo, sb, &mut out[o..o + n], $f)
            })
        };
    }
    let (m, sh, zp, lo, hi) = (
        p.output_multiplier,
        p.output_shift,
        p.output_offset,
        p.act_min,
        p.act_max,
    );
    let (t1, t2) = (&p.t1, &p.t2);
    let (o1, o2) = (p.input1_offset, p.input2_offset);
    // One closure per op so each inner loop is specialised.
    match p.op {
        BinaryOp::Add => go!(|x: T, y: T| {
            T::from_i32((mbqm_positive(t1[x.index()] + t2[y.index()], m, sh) + zp).clamp(lo, hi))
        }),
        BinaryOp::Sub => go!(|x: T, y: T| {
            T::from_i32((mbqm_positive(t1[x.index()] - t2[y.index()], m, sh) + zp).clamp(lo, hi))
        }),
        BinaryOp::SquaredDifference => go!(|x: T, y: T| {
            let d = t1[x.index()] - t2[y.index()];
            T::from_i32((mbqm_positive(d.wrapping_mul(d), m, sh) + zp).clamp(lo, hi))
        }),
        BinaryOp::Mul => go!(|x: T, y: T| {
            let prod = (x.to_i32() + o1) * (y.to_i32() + o2);
            T::from_i32((mbqm_positive(prod, m, sh) + zp).clamp(lo, hi))
        }),
        _ => go!(|x: T, y: T| T::from_i32(apply_q(p, x.to_i32(), y.to_i32()))),
    }
}

/// One element of ADD/SUB/SQUARED_DIFFERENCE/MUL exactly as the scalar loops compute it.
#[inline(always)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn q_elem(p: &QBinary, x: i32, y: i32) -> i32 {
    let (m, sh, zp) = (p.output_multiplier, p.output_shift, p.output_offset);
    let xi = T8::index_of(x);
    let yi = T8::index_of(y);
    let r = match p.op {
        BinaryOp::Add => p.t1[xi] + p.t2[yi],
        BinaryOp::Sub => p.t1[xi] - p.t2[yi],
        BinaryOp::SquaredDifference => {
            let d = p.t1[xi] - p.t2[yi];
            d.wrapping_mul(d)
        }
        BinaryOp::Mul => (x + p.input1_offset) * (y + p.input2_offset),
        _ => return apply_q(p, x, y),
    };
    (mbqm_positive(r, m, sh) + zp).clamp(p.act_min, p.act_max)
}

/// Table index of an 8-bit code given as i32 (its low byte: the bit pattern for int8 and uint8).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct T8;
impl T8 {
    #[inline(always)]
    fn index_of(v: i32) -> usize {
        (v & 0xff) as usize
    }
}

/// `multiply_by_quantized_multiplier(x, m, shift)` for a positive multiplier `m`, written
/// without branches so the element loops vectorise. Equal to the normative function whenever
/// `m > 0` (its one saturating case, `x = m = i32::MIN`, cannot occur), which every multiplier
/// here is (scales are positive); the tests compare both on every op.
#[inline(always)]
fn mbqm_positive(x: i32, m: i32, shift: i32) -> i32 {
    let left = shift.max(0);
    let right = (-shift).max(0);
    let x = x.wrapping_shl(left as u32);
    let ab = x as i64 * m as i64;
    let nudge = if ab >= 0 {
        1i64 << 30
    } else {
        1 - (1i64 << 30)
    };
    let hi = ((ab + nudge) / (1i64 << 31)) as i32;
    let mask = ((1i64 << right) - 1) as i32;
    let rem = hi & mask;
    let thr = (mask >> 1) + (hi >> 31 & 1);
    (hi >> right) + i32::from(rem > thr)
}

fn binary_q_scalar<T: QInt>(
    p: &QBinary,
    plan: &BroadcastPlan,
    a: &[T],
    b: &[T],
    out: &mut [T],
    start: usize,
) {
    binary_q_body(p, plan, a, b, out, start)
}

/// With one operand a single value `scalar`, a quantized binary op is a function of the other
/// operand's code alone: its 256-entry byte table (indexed by the code's bit pattern), exactly
/// [`apply_q`]. `scalar_first`: the scalar is input 0 (matters for SUB and the per-input
/// rescales). Apply it with [`lut8`].
pub fn binary_q_table<T: QInt>(p: &QBinary, scalar: T, scalar_first: bool) -> [u8; 256] {
    let mut table = [0u8; 256];
    let s = scalar.to_i32();
    for q in T::MIN..=T::MAX {
        let v = if scalar_first {
            apply_q(p, s, q)
        } else {
            apply_q(p, q, s)
        };
        table[T::from_i32(q).index()] = T::from_i32(v).index() as u8;
    }
    table
}

/// `out[i] = table[x[i]]` on the dispatched byte-table kernel.
pub fn lut8(table: &[u8; 256], x: &[u8], out: &mut [u8]) {
    (ElementwiseKernels::get().lut8.1)(table, x, out)
}

/// Quantized counterpart of [`binary_f32`] for int8.
pub fn binary_i8(
    p: &QBinary,
    plan: &BroadcastPlan,
    a: &[i8],
    b: &[i8],
    out: &mut [i8],
    start: usize,
) {
    debug_assert_eq!(plan.operand_lens(), (a.len(), b.len()));
    (ElementwiseKernels::get().binary_i8.1)(p, plan, a, b, out, start)
}

/// Quantized counterpart of [`binary_f32`] for uint8.
pub fn binary_u8(
    p: &QBinary,
    plan: &BroadcastPlan,
    a: &[u8],
    b: &[u8],
    out: &mut [u8],
    start: usize,
) {
    debug_assert_eq!(plan.operand_lens(), (a.len(), b.len()));
    (ElementwiseKernels::get().binary_u8.1)(p, plan, a, b, out, start)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod tests_support {
    pub(crate) use super::tests::assert_first_eq;
}
