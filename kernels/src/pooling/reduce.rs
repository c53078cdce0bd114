//! MEAN, SUM and REDUCE_MAX over any set of axes, f32 and int8 / uint8.
//!
//! The integer paths reproduce TFLite's reference dispatch exactly, because TFLite computes an
//! 8-bit MEAN in one of three different ways and each rounds differently:
//! - 4-D input, `keep_dims`, axes given as exactly `[1, 2]` or `[2, 1]`: int8 uses
//!   `reference_integer_ops::Mean` (sum of `x - zp_in`, requantized by `scale_in / scale_out`
//!   with the fixed-point multiplier, then divided by the count rounding half away from zero);
//!   uint8 uses `reference_ops::Mean` (raw sum requantized by `scale_in / (count * scale_out)`
//!   plus a float-derived bias);
//! - otherwise, equal input and output quantization: integer mean, truncated (C division);
//! - otherwise: `QuantizedMeanOrSum`, in float, rounding `round(mean * s + bias + 0.5)`.
//!
//! [`MeanQ::new`] picks the path once; [`MeanQ::run`] executes it. Every accumulation visits
//! the input in memory order, as TFLite's reference loops do, so f32 sums also match closely.

use super::Q8;
use crate::requant::{multiply_by_quantized_multiplier, quantize_multiplier};
use std::fmt;

/// The largest tensor rank the reductions accept.
pub const MAX_RANK: usize = 8;

/// A reduction that cannot be built; names what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReduceError {
    /// More dimensions than [`MAX_RANK`].
    Rank {
        /// The rank found.
        rank: usize,
    },
    /// An axis outside `-rank..rank`.
    Axis {
        /// The axis value.
        axis: i32,
        /// The input rank.
        rank: usize,
    },
    /// The element count overflows.
    Overflow,
    /// The reduced extent is zero (an empty input): the mean is undefined.
    Empty,
}

impl fmt::Display for ReduceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReduceError::Rank { rank } => {
                write!(
                    f,
                    "reduction over a rank-{rank} tensor (at most {MAX_RANK} supported)"
                )
            }
            ReduceError::Axis { axis, rank } => {
                write!(f, "reduction axis {axis} out of range for rank {rank}")
            }
            ReduceError::Overflow => write!(f, "reduction element count overflows"),
            ReduceError::Empty => write!(f, "reduction over an empty tensor"),
        }
    }
}

impl std::error::Error for ReduceError {}

/// The shape of a reduction: input dimensions and the resolved (deduplicated, non-negative)
/// axes. Built once at prepare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReduceShape {
    rank: usize,
    dims: [usize; MAX_RANK],
    reduced: [bool; MAX_RANK],
    /// When the reduced axes are contiguous: (outer, reduced, inner) extents.
    triple: Option<(usize, usize, usize)>,
    input_len: usize,
    output_len: usize,
    count: usize,
}

impl ReduceShape {
    /// Resolves `axes` (negative values count from the end; duplicates are ignored) against
    /// `dims`. An empty `axes` reduces nothing (the output equals the input).
    pub fn new(dims: &[usize], axes: &[i32]) -> Result<ReduceShape, ReduceError> {
        let rank = dims.len();
        if rank > MAX_RANK {
            return Err(ReduceError::Rank { rank });
        }
        let mut d = [1usize; MAX_RANK];
        d[..rank].copy_from_slice(dims);
        let mut reduced = [false; MAX_RANK];
        for &a in axes {
            let r = if a < 0 { a + rank as i32 } else { a };
            if r < 0 || r >= rank as i32 {
                return Err(ReduceError::Axis { axis: a, rank });
            }
            reduced[r as usize] = true;
        }
        let prod = |sel: &dyn Fn(usize) -> bool| {
            (0..rank)
                .filter(|&i| sel(i))
                .try_fold(1usize, |a, i| a.checked_mul(d[i]))
                .filter(|&n| n <= i32::MAX as usize)
                .ok_or(ReduceError::Overflow)
        };
        let input_len = prod(&|_| true)?;
        let count = prod(&|i| reduced[i])?;
        let output_len = prod(&|i| !reduced[i])?;
        if input_len == 0 || count == 0 {
            return Err(ReduceError::Empty);
        }
        let first = (0..rank).find(|&i| reduced[i]);
        let last = (0..rank).rev().find(|&i| reduced[i]);
        let triple = match (first, last) {
            (Some(f), Some(l)) if (f..=l).all(|i| reduced[i]) => Some((
                d[..f].iter().product(),
                count,
                d[l + 1..rank].iter().product(),
            )),
            (None, None) => Some((input_len, 1, 1)),
            _ => None,
        };
        Ok(ReduceShape {
            rank,
            dims: d,
            reduced,
            triple,
            input_len,
            output_len,
            count,
        })
    }

    /// Input element count.
    pub fn input_len(&self) -> usize {
        self.input_len
    }

    /// Output element count.
    pub fn output_len(&self) -> usize {
        self.output_len
    }

    /// Number of input elements folded into each output element.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The output dimensions, TFLite style: reduced axes become 1 with `keep_dims`, else vanish.
    pub fn output_dims(&self, keep_dims: bool) -> Vec<usize> {
        (0..self.rank)
            .filter_map(|i| match (self.reduced[i], keep_dims) {
                (true, true) => Some(1),
                (true, false) => None,
                (false, _) => Some(self.dims[i]),
            })
            .collect()
    }

    /// Folds the input into `acc` (length `output_len`, pre-initialized) in input memory order.
    #[inline(always)]
    fn fold<T: Copy, A: Copy>(&self, input: &[T], acc: &mut [A], f: impl Fn(A, T) -> A) {
        assert!(
            input.len() >= self.input_len,
            "reduce input {} < {}",
            input.len(),
            self.input_len
        );
        assert!(
            acc.len() >= self.output_len,
            "reduce output {} < {}",
            acc.len(),
            self.output_len
        );
        if let Some((outer, red, inner)) = self.triple {
            for o in 0..outer {
                let a = &mut acc[o * inner..(o + 1) * inner];
                for r in 0..red {
                    let x = &input[(o * red + r) * inner..][..inner];
                    for (ai, &xi) in a.iter_mut().zip(x) {
                        *ai = f(*ai, xi);
                    }
                }
            }
            return;
        }
        // General case: an odometer over the input; output strides are 0 on reduced axes.
        let mut ostride = [0usize; MAX_RANK];
        let mut s = 1;
        for i in (0..self.rank).rev() {
            if !self.reduced[i] {
                ostride[i] = s;
                s *= self.dims[i];
            }
        }
        let mut idx = [0usize; MAX_RANK];
        let mut off = 0usize;
        let last = self.rank - 1;
        let inner = self.dims[last];
        let mut pos = 0;
        while pos < self.input_len {
            // Innermost axis as a run.
            let st = ostride[last];
            for (k, &x) in input[pos..pos + inner].iter().enumerate() {
                let o = off + k * st;
                acc[o] = f(acc[o], x);
            }
            pos += inner;
            // Carry into the outer axes.
            let mut ax = last;
            while ax > 0 {
                ax -= 1;
                idx[ax] += 1;
                off += ostride[ax];
                if idx[ax] < self.dims[ax] {
                    break;
                }
                off -= ostride[ax] * idx[ax];
                idx[ax] = 0;
            }
        }
    }
}

impl ReduceShape {
    /// True when the reduced axes are contiguous, so any range of outputs can be computed on
    /// its own ([`ReduceShape::sum_q`] with a partial range; threads split the output).
    pub fn splittable(&self) -> bool {
        self.triple.is_some()
    }

    /// Sums (wrapping int32) of the 8-bit input over the reduced axes for the output elements
    /// `start .. start + acc.len()`, overwriting `acc`. A partial range needs
    /// [`ReduceShape::splittable`]. Runs in AVX2 / AVX-512 lanes when the active tier has them.
    pub fn sum_q<T: Q8>(&self, input: &[T], acc: &mut [i32], start: usize) {
        assert!(
            start + acc.len() <= self.output_len,
            "reduce: outputs {start}+{} beyond {}",
            acc.len(),
            self.output_len
        );
        assert!(
            input.len() >= self.input_len,
            "reduce input {} < {}",
            input.len(),
            self.input_len
        );
        let Some((outer, red, inner)) = self.triple else {
            assert!(
                start == 0 && acc.len() == self.output_len,
                "reduce: a partial output range needs contiguous reduced axes"
            );
            acc.fill(0);
            self.fold(input, acc, |a, x| a.wrapping_add(x.to_i32()));
            return;
        };
        let _ = outer;
        #[cfg(target_arch = "x86_64")]
        {
            use crate::isa::Isa;
            if Isa::Avx512Vnni.enabled() {
                /// # Safety
                /// AVX-512F/BW.
                #[target_feature(enable = "avx512f,avx512bw,avx2")]
                unsafe fn wide<T: Q8>(
                    x: &[T],
                    acc: &mut [i32],
                    start: usize,
                    red: usize,
                    inner: usize,
                ) {
                    sum_runs(x, acc, start, red, inner)
                }
                // SAFETY: the active tier was granted after detecting AVX-512F/BW and AVX2.
                return unsafe { wide(input, acc, start, red, inner) };
            }
            if Isa::Avx2.enabled() {
                /// # Safety
                /// AVX2.
                #[target_feature(enable = "avx2")]
                unsafe fn wide<T: Q8>(
                    x: &[T],
                    acc: &mut [i32],
                    start: usize,
                    red: usize,
                    inner: usize,
                ) {
                    sum_runs(x, acc, start, red, inner)
                }
                // SAFETY: the active tier was granted after detecting AVX2.
                return unsafe { wide(input, acc, start, red, inner) };
            }
        }
        sum_runs(input, acc, start, red, inner)
    }
}

/// [`ReduceShape::sum_q`] over an (outer, `red`, `inner`) layout: output `o·inner + i` sums
/// `x[(o·red + r)·inner + i]` over `r`. Written as plain slice loops that vectorise.
#[inline(always)]
fn sum_runs<T: Q8>(x: &[T], acc: &mut [i32], start: usize, red: usize, inner: usize) {
    let end = start + acc.len();
    let mut pos = start;
    while pos < end {
        let (o, i0) = (pos / inner, pos % inner);
        let len = (inner - i0).min(end - pos);
        let a = &mut acc[pos - start..pos - start + len];
        if inner == 1 {
            // Each output sums one contiguous run of `red` values.
            let run = &x[o * red..(o + 1) * red];
            a[0] = run.iter().fold(0i32, |s, &v| s.wrapping_add(v.to_i32()));
        } else {
            a.fill(0);
            for r in 0..red {
                let row = &x[(o * red + r) * inner + i0..][..len];
                for (ai, &v) in a.iter_mut().zip(row) {
                    *ai = ai.wrapping_add(v.to_i32());
                }
            }
        }
        pos += len;
    }
}

/// A float reduction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    /// Sum.
    Sum,
    /// Sum divided by the count.
    Mean,
    /// Maximum.
    Max,
}

/// f32 SUM / MEAN / REDUCE_MAX into `output` (length [`ReduceShape::output_len`]).
pub fn reduce_f32(s: &ReduceShape, op: ReduceOp, input: &[f32], output: &mut [f32]) {
    let out = &mut output[..s.output_len];
    match op {
        ReduceOp::Sum | ReduceOp::Mean => {
            out.fill(0.0);
            s.fold(input, out, |a, x| a + x);
            if op == ReduceOp::Mean {
                let n = s.count as f32;
                for o in out.iter_mut() {
                    *o /= n;
                }
            }
        }
        ReduceOp::Max => {
            out.fill(f32::MIN);
            s.fold(input, out, |a, x| if a < x { x } else { a });
        }
    }
}

/// 8-bit REDUCE_MAX (TFLite requires equal input and output quantization).
pub fn reduce_max_q<T: Q8 + Ord>(s: &ReduceShape, input: &[T], output: &mut [T]) {
    let out = &mut output[..s.output_len];
    out.fill(T::from_i32(T::MIN));
    s.fold(input, out, |a, x| a.max(x));
}

/// How TFLite computes an 8-bit MEAN for one set of parameters (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
enum MeanPath {
    /// int8, 4-D, keep_dims, axes [1, 2]: fixed-point, then divide with rounding.
    HwInt8 {
        mult: i32,
        shift: i32,
        in_zp: i32,
        out_zp: i32,
    },
    /// uint8, 4-D, keep_dims, axes [1, 2]: raw sum requantized, plus a bias.
    HwUint8 { mult: i32, shift: i32, bias: i32 },
    /// Equal quantization: truncating integer mean.
    SameQuant,
    /// Float: `round(sum / n * scale + bias) + out_zp`.
    Float { scale: f32, bias: f32, out_zp: i32 },
}

/// A prepared 8-bit MEAN.
#[derive(Clone, Debug, PartialEq)]
pub struct MeanQ {
    shape: ReduceShape,
    path: MeanPath,
}

/// Quantization of the input and output of an 8-bit reduction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QParams {
    /// Input scale.
    pub in_scale: f32,
    /// Input zero point.
    pub in_zp: i32,
    /// Output scale.
    pub out_scale: f32,
    /// Output zero point.
    pub out_zp: i32,
}

impl MeanQ {
    /// Chooses TFLite's path for these parameters. `axes` are the op's axis values as given in
    /// the model (TFLite's choice depends on them literally); `unsigned` selects uint8.
    pub fn new(
        dims: &[usize],
        axes: &[i32],
        keep_dims: bool,
        q: QParams,
        unsigned: bool,
    ) -> Result<MeanQ, ReduceError> {
        let shape = ReduceShape::new(dims, axes)?;
        let hw = keep_dims && dims.len() == 4 && (axes == [1, 2] || axes == [2, 1]);
        let path = if hw && !unsigned {
            let (mult, shift) = quantize_multiplier(q.in_scale as f64 / q.out_scale as f64);
            MeanPath::HwInt8 {
                mult,
                shift,
                in_zp: q.in_zp,
                out_zp: q.out_zp,
            }
        } else if hw {
            let n = (dims[1] * dims[2]) as f32;
            let bias = q.out_zp - (q.in_zp as f32 * q.in_scale / q.out_scale) as i32;
            let real = (q.in_scale / (n * q.out_scale)) as f64;
            let (mult, shift) = quantize_multiplier(real);
            MeanPath::HwUint8 { mult, shift, bias }
        } else if q.in_scale == q.out_scale && q.in_zp == q.out_zp {
            MeanPath::SameQuant
        } else {
            let scale = q.in_scale / q.out_scale;
            MeanPath::Float {
                scale,
                bias: -q.in_zp as f32 * scale + 0.5,
                out_zp: q.out_zp,
            }
        };
        Ok(MeanQ { shape, path })
    }

    /// The reduction shape.
    pub fn shape(&self) -> &ReduceShape {
        &self.shape
    }

    /// Scratch `i32`s [`MeanQ::run`] needs (the output length).
    pub fn scratch_len(&self) -> usize {
        self.shape.output_len
    }

    /// Computes the mean into `output`, using `scratch` (at least [`MeanQ::scratch_len`]).
    pub fn run<T: Q8>(&self, input: &[T], output: &mut [T], scratch: &mut [i32]) {
        let len = self.shape.output_len;
        self.run_range(input, &mut output[..len], &mut scratch[..len], 0)
    }

    /// Computes the output elements `start .. start + out.len()` into `out`, using `acc` (as
    /// long as `out`) as scratch. A partial range needs [`ReduceShape::splittable`].
    pub fn run_range<T: Q8>(&self, input: &[T], out: &mut [T], acc: &mut [i32], start: usize) {
        let s = &self.shape;
        let acc = &mut acc[..out.len()];
        s.sum_q(input, acc, start);
        let n = s.count as i32;
        match self.path {
            MeanPath::HwInt8 {
                mult,
                shift,
                in_zp,
                out_zp,
            } => {
                let zsum = in_zp.wrapping_mul(n);
                for (o, &a) in out.iter_mut().zip(acc.iter()) {
                    let a = a.wrapping_sub(zsum);
                    let v = multiply_by_quantized_multiplier(a, mult, shift);
                    let v = if v > 0 {
                        (v + n / 2) / n
                    } else {
                        (v - n / 2) / n
                    };
                    *o = T::from_i32((v + out_zp).clamp(T::MIN, T::MAX));
                }
            }
            MeanPath::HwUint8 { mult, shift, bias } => {
                for (o, &a) in out.iter_mut().zip(acc.iter()) {
                    let v = multiply_by_quantized_multiplier(a, mult, shift) + bias;
                    *o = T::from_i32(v.clamp(T::MIN, T::MAX));
                }
            }
            MeanPath::SameQuant => {
                for (o, &a) in out.iter_mut().zip(acc.iter()) {
                    *o = T::from_i32(a / n);
                }
            }
            MeanPath::Float {
                scale,
                bias,
                out_zp,
            } => {
                let nf = n as f32;
                for (o, &a) in out.iter_mut().zip(acc.iter()) {
                    let mean = a as f32 / nf;
                    let r = ((mean * scale + bias).round() + out_zp as f32)
                        .min(T::MAX as f32)
                        .max(T::MIN as f32);
                    *o = T::from_i32(r as i32);
                }
            }
        }
    }
}

/// A prepared 8-bit SUM, TFLite's way: with equal quantization a wrapping 8-bit sum; otherwise
/// `round(sum * s + bias)` in float (`bias = -zp_in * s * count + 0.5`), wrapped to 8 bits.
#[derive(Clone, Debug, PartialEq)]
pub struct SumQ {
    shape: ReduceShape,
    /// `None` for equal quantization.
    rescale: Option<(f32, f32, i32)>,
}

impl SumQ {
    /// Prepares a SUM over `axes` of `dims`.
    pub fn new(dims: &[usize], axes: &[i32], q: QParams) -> Result<SumQ, ReduceError> {
        let shape = ReduceShape::new(dims, axes)?;
        let rescale = if q.in_scale == q.out_scale && q.in_zp == q.out_zp {
            None
        } else {
            let scale = q.in_scale / q.out_scale;
            let bias = -q.in_zp as f32 * scale * shape.count as f32 + 0.5;
            Some((scale, bias, q.out_zp))
        };
        Ok(SumQ { shape, rescale })
    }

    /// Scratch `i32`s [`SumQ::run`] needs.
    pub fn scratch_len(&self) -> usize {
        self.shape.output_len
    }

    /// Computes the sum into `output`, using `scratch`.
    pub fn run<T: Q8>(&self, input: &[T], output: &mut [T], scratch: &mut [i32]) {
        let s = &self.shape;
        let acc = &mut scratch[..s.output_len];
        s.sum_q(input, acc, 0);
        for (o, &a) in output[..s.output_len].iter_mut().zip(acc.iter()) {
            *o = match self.rescale {
                None => T::from_i32(a),
                Some((scale, bias, zp)) => {
                    T::from_i32(((a as f32 * scale + bias).round() as i32).wrapping_add(zp))
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    /// Reference: for each output index, visit every input index whose non-reduced
    /// coordinates match (slow, independent of the odometer).
    fn ref_groups(dims: &[usize], axes: &[i32]) -> Vec<Vec<usize>> {
        let rank = dims.len();
        let red: Vec<bool> = (0..rank)
            .map(|i| {
                axes.iter()
                    .any(|&a| (if a < 0 { a + rank as i32 } else { a }) as usize == i)
            })
            .collect();
        let total: usize = dims.iter().product();
        let mut groups: std::collections::BTreeMap<Vec<usize>, Vec<usize>> = Default::default();
        for flat in 0..total {
            let mut rem = flat;
            let mut coord = vec![0; rank];
            for i in (0..rank).rev() {
                coord[i] = rem % dims[i];
                rem /= dims[i];
            }
            let key: Vec<usize> = (0..rank).filter(|&i| !red[i]).map(|i| coord[i]).collect();
            groups.entry(key).or_default().push(flat);
        }
        groups.into_values().collect()
    }

    fn cases() -> Vec<(Vec<usize>, Vec<i32>)> {
        let mut v: Vec<(Vec<usize>, Vec<i32>)> = vec![
            (vec![1, 7, 7, 33], vec![1, 2]),
            (vec![2, 3, 5, 4], vec![2, 1]),
            (vec![2, 3, 5, 4], vec![-3, -2]),
            (vec![2, 3, 5, 4], vec![0, 2]),
            (vec![2, 3, 5, 4], vec![3]),
            (vec![2, 3, 5, 4], vec![0, 1, 2, 3]),
            (vec![2, 3, 5, 4], vec![1, 1]),
            (vec![6], vec![0]),
            (vec![3, 4, 5], vec![0, 2]),
            (vec![2, 1, 3, 1, 2], vec![1, 4]),
        ];
        let mut rng = Rng::new(5);
        for _ in 0..20 {
            let rank = rng.usize(1, 5);
            let dims: Vec<usize> = (0..rank).map(|_| rng.usize(1, 5)).collect();
            let axes: Vec<i32> = (0..rng.usize(1, rank))
                .map(|_| rng.range(-(rank as i64), rank as i64 - 1) as i32)
                .collect();
            v.push((dims, axes));
        }
        v
    }

    #[test]
    fn f32_reductions_match_reference() {
        let mut rng = Rng::new(1);
        for (dims, axes) in cases() {
            let s = ReduceShape::new(&dims, &axes).unwrap();
            let x = rng.vec_f32(s.input_len());
            let groups = ref_groups(&dims, &axes);
            assert_eq!(groups.len(), s.output_len());
            for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max] {
                let want: Vec<f32> = groups
                    .iter()
                    .map(|g| match op {
                        ReduceOp::Sum => g.iter().map(|&i| x[i]).sum(),
                        ReduceOp::Mean => g.iter().map(|&i| x[i]).sum::<f32>() / g.len() as f32,
                        ReduceOp::Max => g.iter().map(|&i| x[i]).fold(f32::MIN, f32::max),
                    })
                    .collect();
                let mut got = vec![f32::NAN; s.output_len()];
                reduce_f32(&s, op, &x, &mut got);
                assert_close(
                    &got,
                    &want,
                    1e-6,
                    &format!("{op:?} dims {dims:?} axes {axes:?}"),
                );
            }
        }
    }

    fn ref_mean_q(
        x: &[i32],
        dims: &[usize],
        axes: &[i32],
        keep: bool,
        q: QParams,
        unsigned: bool,
    ) -> Vec<i32> {
        let (tmin, tmax) = if unsigned { (0, 255) } else { (-128, 127) };
        let groups = ref_groups(dims, axes);
        let hw = keep && dims.len() == 4 && (axes == [1, 2] || axes == [2, 1]);
        groups
            .iter()
            .map(|g| {
                let n = g.len() as i32;
                if hw && !unsigned {
                    let (m, sh) = quantize_multiplier(q.in_scale as f64 / q.out_scale as f64);
                    let acc: i32 = g.iter().map(|&i| x[i] - q.in_zp).sum();
                    let acc = multiply_by_quantized_multiplier(acc, m, sh);
                    let acc = if acc > 0 {
                        (acc + n / 2) / n
                    } else {
                        (acc - n / 2) / n
                    };
                    (acc + q.out_zp).clamp(tmin, tmax)
                } else if hw {
                    let nf = (dims[1] * dims[2]) as f32;
                    let bias = q.out_zp - (q.in_zp as f32 * q.in_scale / q.out_scale) as i32;
                    let real = (q.in_scale / (nf * q.out_scale)) as f64;
                    let (m, sh) = quantize_multiplier(real);
                    let acc: i32 = g.iter().map(|&i| x[i]).sum();
                    (multiply_by_quantized_multiplier(acc, m, sh) + bias).clamp(tmin, tmax)
                } else if q.in_scale == q.out_scale && q.in_zp == q.out_zp {
                    g.iter().map(|&i| x[i]).sum::<i32>() / n
                } else {
                    let scale = q.in_scale / q.out_scale;
                    let bias = -q.in_zp as f32 * scale + 0.5;
                    let mean = g.iter().map(|&i| x[i]).sum::<i32>() as f32 / n as f32;
                    let r = ((mean * scale + bias).round() + q.out_zp as f32)
                        .min(tmax as f32)
                        .max(tmin as f32);
                    r as i32
                }
            })
            .collect()
    }

    #[test]
    fn quantized_mean_matches_reference_exactly() {
        let mut rng = Rng::new(2);
        for (dims, axes) in cases() {
            for keep in [true, false] {
                for same in [true, false] {
                    for unsigned in [false, true] {
                        let q = if same {
                            QParams {
                                in_scale: 0.05,
                                in_zp: 3,
                                out_scale: 0.05,
                                out_zp: 3,
                            }
                        } else {
                            QParams {
                                in_scale: 0.02 + rng.f32().abs() * 0.1,
                                in_zp: rng.range(-20, 20) as i32 + if unsigned { 128 } else { 0 },
                                out_scale: 0.02 + rng.f32().abs() * 0.1,
                                out_zp: rng.range(-20, 20) as i32 + if unsigned { 128 } else { 0 },
                            }
                        };
                        let m = MeanQ::new(&dims, &axes, keep, q, unsigned).unwrap();
                        let mut scratch = vec![0; m.scratch_len()];
                        let what = format!("dims {dims:?} axes {axes:?} keep {keep} {q:?}");
                        let (got, xi): (Vec<i32>, Vec<i32>) = if unsigned {
                            let x = rng.vec_u8(m.shape().input_len());
                            let mut out = vec![0u8; m.shape().output_len()];
                            m.run(&x, &mut out, &mut scratch);
                            (
                                out.iter().map(|&v| v as i32).collect(),
                                x.iter().map(|&v| v as i32).collect(),
                            )
                        } else {
                            let x = rng.vec_i8(m.shape().input_len());
                            let mut out = vec![0i8; m.shape().output_len()];
                            m.run(&x, &mut out, &mut scratch);
                            (
                                out.iter().map(|&v| v as i32).collect(),
                                x.iter().map(|&v| v as i32).collect(),
                            )
                        };
                        let want = ref_mean_q(&xi, &dims, &axes, keep, q, unsigned);
                        if let Some((i, g, w)) = first_diff(&got, &want) {
                            panic!("mean u8={unsigned} {what}: first difference at {i}: got {g}, want {w}");
                        }
                    }
                }
            }
        }
    }

    /// `sum_q` over arbitrary output sub-ranges (as threads split them) equals the reference
    /// group sums, on shapes with long inner runs (vector bodies and tails) and `inner == 1`.
    #[test]
    fn sums_of_output_ranges_match_reference() {
        let mut rng = Rng::new(9);
        let mut shapes = cases();
        shapes.extend([
            (vec![1, 7, 7, 1280], vec![1, 2]),
            (vec![2, 3, 3, 67], vec![1, 2]),
            (vec![5, 300], vec![1]),
            (vec![3, 33, 17], vec![1]),
            (vec![1, 1, 1, 1000], vec![1, 2]),
        ]);
        for (dims, axes) in shapes {
            let s = ReduceShape::new(&dims, &axes).unwrap();
            let x = rng.vec_i8(s.input_len());
            let xu: Vec<u8> = x.iter().map(|&v| v as u8).collect();
            let groups = ref_groups(&dims, &axes);
            let want: Vec<i32> = groups
                .iter()
                .map(|g| g.iter().map(|&i| x[i] as i32).sum())
                .collect();
            let want_u: Vec<i32> = groups
                .iter()
                .map(|g| g.iter().map(|&i| xu[i] as i32).sum())
                .collect();
            let n = s.output_len();
            let mut cuts = vec![0, n];
            if s.splittable() {
                for _ in 0..3 {
                    cuts.push(rng.usize(0, n));
                }
            }
            cuts.sort_unstable();
            let (mut got, mut got_u) = (vec![0i32; n], vec![0i32; n]);
            for w in cuts.windows(2) {
                s.sum_q(&x, &mut got[w[0]..w[1]], w[0]);
                s.sum_q(&xu, &mut got_u[w[0]..w[1]], w[0]);
            }
            let what = format!("dims {dims:?} axes {axes:?} cuts {cuts:?}");
            if let Some((i, g, w)) = first_diff(&got, &want) {
                panic!("sum i8 {what}: first difference at {i}: got {g}, want {w}");
            }
            if let Some((i, g, w)) = first_diff(&got_u, &want_u) {
                panic!("sum u8 {what}: first difference at {i}: got {g}, want {w}");
            }
        }
    }

    #[test]
    fn quantized_sum_and_max() {
        let mut rng = Rng::new(3);
        for (dims, axes) in cases() {
            let groups = ref_groups(&dims, &axes);
            let q = QParams {
                in_scale: 0.1,
                in_zp: -5,
                out_scale: 0.7,
                out_zp: 9,
            };
            let s = SumQ::new(&dims, &axes, q).unwrap();
            let x = rng.vec_i8(s.shape.input_len());
            let mut out = vec![0i8; s.shape.output_len()];
            let mut scratch = vec![0; s.scratch_len()];
            s.run(&x, &mut out, &mut scratch);
            let scale = 0.1f32 / 0.7;
            for (k, g) in groups.iter().enumerate() {
                let sum: i32 = g.iter().map(|&i| x[i] as i32).sum();
                let bias = 5.0 * scale * g.len() as f32 + 0.5;
                let want = (((sum as f32 * scale + bias).round() as i32) + 9) as i8;
                assert_eq!(out[k], want, "sum dims {dims:?} axes {axes:?} at {k}");
            }
            let sh = ReduceShape::new(&dims, &axes).unwrap();
            reduce_max_q(&sh, &x, &mut out);
            for (k, g) in groups.iter().enumerate() {
                let want = g.iter().map(|&i| x[i]).max().unwrap();
                assert_eq!(out[k], want, "max dims {dims:?} axes {axes:?} at {k}");
            }
        }
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(
            ReduceShape::new(&[2, 3], &[2]),
            Err(ReduceError::Axis { axis: 2, rank: 2 })
        );
        assert_eq!(ReduceShape::new(&[2, 0], &[1]), Err(ReduceError::Empty));
        assert_eq!(
            ReduceShape::new(&[1; 9], &[0]),
            Err(ReduceError::Rank { rank: 9 })
        );
        let s = ReduceShape::new(&[2, 3, 4], &[1]).unwrap();
        assert_eq!(s.output_dims(true), vec![2, 1, 4]);
        assert_eq!(s.output_dims(false), vec![2, 4]);
    }
}
