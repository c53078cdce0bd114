//! Data-movement ops, generic over the element type (f32, int8, uint8, int32…): PAD/PADV2,
//! CONCATENATION (with TFLite's requantization when 8-bit input and output scales differ),
//! SPLIT/SPLIT_V, PACK/UNPACK, STRIDED_SLICE, SLICE, TRANSPOSE, DEPTH_TO_SPACE, SPACE_TO_DEPTH,
//! GATHER.
//!
//! Each op has a plan computed once from the shapes and options (all checks happen there, with
//! errors naming the op and the offending value) and an eval function that only moves data.

use crate::activation::Lut8;
use crate::elementwise::{ParamError, QInt, QParams};

/// The largest rank these ops accept.
pub const MAX_RANK: usize = 6;

fn check_rank(op: &'static str, what: &'static str, rank: usize) -> Result<(), ParamError> {
    if rank > MAX_RANK {
        return Err(ParamError::Rank {
            op,
            what,
            rank,
            max: MAX_RANK,
        });
    }
    Ok(())
}

fn numel(op: &'static str, shape: &[usize]) -> Result<usize, ParamError> {
    shape.iter().try_fold(1usize, |a, &d| {
        a.checked_mul(d).ok_or_else(|| ParamError::Shape {
            op,
            detail: format!("element count of {shape:?} overflows"),
        })
    })
}

fn shape_err(op: &'static str, detail: String) -> ParamError {
    ParamError::Shape { op, detail }
}

/// Resolves a possibly negative axis against `rank`.
pub fn resolve_axis(op: &'static str, axis: i64, rank: usize) -> Result<usize, ParamError> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    if a < 0 || a >= rank as i64 {
        return Err(ParamError::Param {
            op,
            what: "axis",
            value: axis,
        });
    }
    Ok(a as usize)
}

// ---------------------------------------------------------------------------------------------
// PAD

/// A resolved PAD / PADV2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PadPlan {
    in_shape: Vec<usize>,
    out_shape: Vec<usize>,
    before: Vec<usize>,
}

impl PadPlan {
    /// `paddings[i] = (before, after)` for each input dimension; negative padding is an error.
    pub fn new(in_shape: &[usize], paddings: &[(i64, i64)]) -> Result<Self, ParamError> {
        const OP: &str = "PAD";
        check_rank(OP, "input", in_shape.len())?;
        if paddings.len() != in_shape.len() {
            return Err(shape_err(
                OP,
                format!(
                    "{} paddings for an input of rank {}",
                    paddings.len(),
                    in_shape.len()
                ),
            ));
        }
        let mut out_shape = Vec::with_capacity(in_shape.len());
        let mut before = Vec::with_capacity(in_shape.len());
        for (&d, &(b, a)) in in_shape.iter().zip(paddings) {
            if b < 0 || a < 0 {
                return Err(ParamError::Param {
                    op: OP,
                    what: "padding",
                    value: b.min(a),
                });
            }
            let o = (d as u64)
                .checked_add(b as u64)
                .and_then(|v| v.checked_add(a as u64));
            let o = o
                .filter(|&v| v <= usize::MAX as u64)
                .ok_or_else(|| shape_err(OP, "padded size overflows".into()))?;
            out_shape.push(o as usize);
            before.push(b as usize);
        }
        numel(OP, &out_shape)?;
        Ok(PadPlan {
            in_shape: in_shape.to_vec(),
            out_shape,
            before,
        })
    }

    pub fn out_shape(&self) -> &[usize] {
        &self.out_shape
    }
}

/// PAD/PADV2: `out` = `x` surrounded by `value` (for quantized tensors: the output zero point,
/// or PADV2's constant quantized).
pub fn pad<T: Copy>(plan: &PadPlan, x: &[T], value: T, out: &mut [T]) {
    out.fill(value);
    let rank = plan.in_shape.len();
    if rank == 0 {
        out.copy_from_slice(x);
        return;
    }
    if x.is_empty() {
        return;
    }
    let inner = plan.in_shape[rank - 1];
    let rows = x.len().checked_div(inner).unwrap_or(0);
    let mut idx = [0usize; MAX_RANK];
    for row in x.chunks_exact(inner.max(1)).take(rows) {
        let mut off = 0;
        for (k, &i) in idx[..rank].iter().enumerate() {
            let i = if k + 1 == rank { 0 } else { i };
            off = off * plan.out_shape[k] + i + plan.before[k];
        }
        out[off..off + inner].copy_from_slice(row);
        for k in (0..rank - 1).rev() {
            idx[k] += 1;
            if idx[k] < plan.in_shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CONCATENATION / SPLIT / PACK / UNPACK

/// A resolved concatenation along one axis (also used, reversed, for SPLIT and UNPACK).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConcatPlan {
    outer: usize,
    /// Elements each input contributes per outer step (its axis size × inner size).
    chunks: Vec<usize>,
    out_shape: Vec<usize>,
}

impl ConcatPlan {
    /// CONCATENATION of tensors of `shapes` along `axis` (negative counts from the end). All
    /// other dimensions must match.
    pub fn new(axis: i64, shapes: &[&[usize]]) -> Result<Self, ParamError> {
        const OP: &str = "CONCATENATION";
        let first = shapes
            .first()
            .ok_or_else(|| shape_err(OP, "no inputs".into()))?;
        check_rank(OP, "input 0", first.len())?;
        let ax = resolve_axis(OP, axis, first.len())?;
        let mut out_shape = first.to_vec();
        out_shape[ax] = 0;
        for (i, s) in shapes.iter().enumerate() {
            if s.len() != first.len()
                || s.iter()
                    .zip(first.iter())
                    .enumerate()
                    .any(|(k, (a, b))| k != ax && a != b)
            {
                return Err(shape_err(
                    OP,
                    format!("input {i} has shape {s:?}, incompatible with {first:?} on axis {ax}"),
                ));
            }
            out_shape[ax] = out_shape[ax]
                .checked_add(s[ax])
                .ok_or_else(|| shape_err(OP, "size overflows".into()))?;
        }
        numel(OP, &out_shape)?;
        let outer: usize = first[..ax].iter().product();
        let inner: usize = first[ax + 1..].iter().product();
        let chunks = shapes.iter().map(|s| s[ax] * inner).collect();
        Ok(ConcatPlan {
            outer,
            chunks,
            out_shape,
        })
    }

    /// PACK of `n` tensors of `shape` along `axis` (in `-(rank+1) ..= rank`).
    pub fn pack(axis: i64, shape: &[usize], n: usize) -> Result<Self, ParamError> {
        let ax = resolve_axis("PACK", axis, shape.len() + 1)?;
        let mut s = shape.to_vec();
        s.insert(ax, 1);
        let shapes: Vec<&[usize]> = vec![&s; n];
        ConcatPlan::new(ax as i64, &shapes)
    }

    /// SPLIT_V / SPLIT of a tensor of `shape` along `axis` into pieces of `sizes` (summing to
    /// the axis size).
    pub fn split(axis: i64, shape: &[usize], sizes: &[usize]) -> Result<Self, ParamError> {
        let ax = resolve_axis("SPLIT", axis, shape.len())?;
        let total = sizes.iter().try_fold(0usize, |a, &b| a.checked_add(b));
        if total != Some(shape[ax]) {
            return Err(shape_err(
                "SPLIT",
                format!("sizes {sizes:?} do not sum to dimension {ax} of {shape:?}"),
            ));
        }
        let pieces: Vec<Vec<usize>> = sizes
            .iter()
            .map(|&n| {
                let mut s = shape.to_vec();
                s[ax] = n;
                s
            })
            .collect();
        let refs: Vec<&[usize]> = pieces.iter().map(|v| v.as_slice()).collect();
        ConcatPlan::new(ax as i64, &refs)
    }

    /// UNPACK of a tensor of `shape` along `axis` into `shape[axis]` tensors.
    pub fn unpack(axis: i64, shape: &[usize]) -> Result<Self, ParamError> {
        let ax = resolve_axis("UNPACK", axis, shape.len())?;
        ConcatPlan::split(ax as i64, shape, &vec![1; shape[ax]])
    }

    /// The concatenated (or split) tensor's shape.
    pub fn out_shape(&self) -> &[usize] {
        &self.out_shape
    }

    /// Number of inputs (or split outputs).
    pub fn parts(&self) -> usize {
        self.chunks.len()
    }
}

/// CONCATENATION / PACK: `inputs[i]` in order along the plan's axis.
pub fn concat<T: Copy>(plan: &ConcatPlan, inputs: &[&[T]], out: &mut [T]) {
    assert_eq!(
        inputs.len(),
        plan.chunks.len(),
        "concat: wrong number of inputs"
    );
    let mut o = 0;
    for k in 0..plan.outer {
        for (x, &c) in inputs.iter().zip(&plan.chunks) {
            out[o..o + c].copy_from_slice(&x[k * c..(k + 1) * c]);
            o += c;
        }
    }
}

/// Quantized CONCATENATION: like [`concat`], but input `i` goes through `requant[i]` when its
/// quantization differs from the output's (see [`prepare_concat_requant`]).
pub fn concat_q<T: QInt>(
    plan: &ConcatPlan,
    inputs: &[&[T]],
    requant: &[Option<Lut8<T>>],
    out: &mut [T],
) {
    assert_eq!(
        inputs.len(),
        plan.chunks.len(),
        "concat_q: wrong number of inputs"
    );
    assert_eq!(
        requant.len(),
        plan.chunks.len(),
        "concat_q: wrong number of tables"
    );
    let mut o = 0;
    for k in 0..plan.outer {
        for ((x, &c), rq) in inputs.iter().zip(&plan.chunks).zip(requant) {
            let src = &x[k * c..(k + 1) * c];
            match rq {
                None => out[o..o + c].copy_from_slice(src),
                Some(t) => t.apply(src, &mut out[o..o + c]),
            }
            o += c;
        }
    }
}

/// TFLite's `ConcatenationWithScaling` for one input: `None` when input and output share scale
/// and zero point (a plain copy), else the table of `round(x · s + bias) + zp_out` with
/// `s = in_scale · (1 / out_scale)` and `bias = −zp_in · s` in f32.
pub fn prepare_concat_requant<T: QInt>(
    input: QParams,
    output: QParams,
) -> Result<Option<Lut8<T>>, ParamError> {
    let input = input.validate::<T>("CONCATENATION", "input quantization")?;
    let output = output.validate::<T>("CONCATENATION", "output quantization")?;
    if input == output {
        return Ok(None);
    }
    let inverse_output_scale = 1.0f32 / output.scale;
    let scale = input.scale * inverse_output_scale;
    let bias = -(input.zero_point as f32) * scale;
    Ok(Some(Lut8::from_fn(|x| {
        ((x as f32 * scale + bias).round() as i32).saturating_add(output.zero_point)
    })))
}

/// SPLIT / SPLIT_V / UNPACK: the inverse of [`concat`] with the same plan.
pub fn split<T: Copy>(plan: &ConcatPlan, x: &[T], outputs: &mut [&mut [T]]) {
    assert_eq!(
        outputs.len(),
        plan.chunks.len(),
        "split: wrong number of outputs"
    );
    let mut o = 0;
    for k in 0..plan.outer {
        for (y, &c) in outputs.iter_mut().zip(&plan.chunks) {
            y[k * c..(k + 1) * c].copy_from_slice(&x[o..o + c]);
            o += c;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// STRIDED_SLICE / SLICE

/// STRIDED_SLICE options as TFLite stores them (bit `i` of a mask refers to entry `i` of
/// `begin`/`end`/`strides`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StridedSliceSpec {
    pub begin: Vec<i64>,
    pub end: Vec<i64>,
    pub strides: Vec<i64>,
    pub begin_mask: u32,
    pub end_mask: u32,
    pub ellipsis_mask: u32,
    pub new_axis_mask: u32,
    pub shrink_axis_mask: u32,
    /// TFLite's `offset`: `end` is relative to `begin`.
    pub offset: bool,
}

/// A resolved slice: per input dimension a start, a (signed) step and a count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlicePlan {
    in_shape: Vec<usize>,
    start: Vec<i64>,
    step: Vec<i64>,
    count: Vec<usize>,
    out_shape: Vec<usize>,
}

impl SlicePlan {
    /// STRIDED_SLICE with TensorFlow's semantics (ellipsis, new axes, shrink, negative strides,
    /// masks; begin/end clamped; an absent ellipsis is implied at the end).
    pub fn strided(in_shape: &[usize], spec: &StridedSliceSpec) -> Result<Self, ParamError> {
        const OP: &str = "STRIDED_SLICE";
        check_rank(OP, "input", in_shape.len())?;
        let n = spec.begin.len();
        if spec.end.len() != n || spec.strides.len() != n {
            return Err(shape_err(
                OP,
                format!(
                    "begin/end/strides lengths {}/{}/{} differ",
                    n,
                    spec.end.len(),
                    spec.strides.len()
                ),
            ));
        }
        if n > 32 {
            return Err(ParamError::Param {
                op: OP,
                what: "number of slice entries",
                value: n as i64,
            });
        }
        let bit = |m: u32, i: usize| m >> i & 1 == 1;
        if spec.ellipsis_mask.count_ones() > 1 {
            return Err(ParamError::Param {
                op: OP,
                what: "ellipsis_mask (more than one ellipsis)",
                value: spec.ellipsis_mask as i64,
            });
        }
        // Sparse → dense (TensorFlow's BuildDenseSpec).
        let mut dims = n;
        let mut ellipsis = spec.ellipsis_mask;
        if ellipsis == 0 {
            ellipsis = 1 << n;
            dims += 1;
        }
        let first_ellipsis = (0..dims).find(|&i| bit(ellipsis, i)).unwrap_or(dims);
        let new_axes_after = (first_ellipsis + 1..n)
            .filter(|&i| bit(spec.new_axis_mask, i))
            .count();
        let rank = in_shape.len();
        // Per dense dim: (begin, end, stride, begin_masked, end_masked, shrink)
        let mut dense = vec![(0i64, 0i64, 1i64, true, true, false); rank];
        enum Out {
            Dim(usize),
            New,
        }
        let mut gather = Vec::new();
        let mut full = 0usize;
        let mut seen_ellipsis = false;
        for i in 0..dims {
            if bit(ellipsis, i) && !seen_ellipsis {
                seen_ellipsis = true;
                let next = (rank + 1 + new_axes_after)
                    .saturating_sub(dims - i)
                    .min(rank);
                while full < next {
                    gather.push(Out::Dim(full));
                    full += 1;
                }
            } else if bit(spec.new_axis_mask, i) {
                gather.push(Out::New);
            } else if i < n {
                if full >= rank {
                    return Err(ParamError::Param {
                        op: OP,
                        what: "slice entry beyond the input rank",
                        value: i as i64,
                    });
                }
                let shrink = bit(spec.shrink_axis_mask, i);
                dense[full] = (
                    spec.begin[i],
                    spec.end[i],
                    spec.strides[i],
                    bit(spec.begin_mask, i),
                    bit(spec.end_mask, i),
                    shrink,
                );
                if !shrink {
                    gather.push(Out::Dim(full));
                }
                full += 1;
            }
        }
        while full < rank {
            gather.push(Out::Dim(full));
            full += 1;
        }
        let mut start = vec![0i64; rank];
        let mut step = vec![1i64; rank];
        let mut count = vec![0usize; rank];
        for k in 0..rank {
            let (b, e, s, bm, em, shrink) = dense[k];
            let d = in_shape[k] as i64;
            if s == 0 {
                return Err(ParamError::Param {
                    op: OP,
                    what: "stride",
                    value: 0,
                });
            }
            if shrink {
                let x = if b < 0 { b + d } else { b };
                if x < 0 || x >= d {
                    return Err(ParamError::Param {
                        op: OP,
                        what: "shrunk index",
                        value: b,
                    });
                }
                start[k] = x;
                step[k] = 1;
                count[k] = 1;
                continue;
            }
            let (lo, hi) = if s > 0 { (0, d) } else { (-1, d - 1) };
            let canon = |x: i64, masked: bool, is_end: bool| {
                if masked {
                    if (s > 0) != is_end {
                        lo
                    } else {
                        hi
                    }
                } else {
                    let f = if x < 0 { x.saturating_add(d) } else { x };
                    f.clamp(lo, hi)
                }
            };
            let bb = canon(b, bm, false);
            let ee = if spec.offset && !em {
                canon(bb.saturating_add(e), false, true)
            } else {
                canon(e, em, true)
            };
            let len = ee - bb;
            let c = if len == 0 || (len < 0) != (s < 0) {
                0
            } else {
                len / s + i64::from(len % s != 0)
            };
            start[k] = bb;
            step[k] = s;
            count[k] = c as usize;
        }
        let out_shape = gather
            .iter()
            .map(|g| match g {
                Out::Dim(k) => count[*k],
                Out::New => 1,
            })
            .collect();
        Ok(SlicePlan {
            in_shape: in_shape.to_vec(),
            start,
            step,
            count,
            out_shape,
        })
    }

    /// SLICE: `size[i] = −1` means "to the end".
    pub fn slice(in_shape: &[usize], begin: &[i64], size: &[i64]) -> Result<Self, ParamError> {
        const OP: &str = "SLICE";
        check_rank(OP, "input", in_shape.len())?;
        if begin.len() != in_shape.len() || size.len() != in_shape.len() {
            return Err(shape_err(
                OP,
                format!(
                    "begin/size of lengths {}/{} for rank {}",
                    begin.len(),
                    size.len(),
                    in_shape.len()
                ),
            ));
        }
        let mut count = Vec::new();
        for k in 0..in_shape.len() {
            let d = in_shape[k] as i64;
            let b = begin[k];
            if b < 0 || b > d {
                return Err(ParamError::Param {
                    op: OP,
                    what: "begin",
                    value: b,
                });
            }
            let s = if size[k] == -1 { d - b } else { size[k] };
            if s < 0 || b + s > d {
                return Err(ParamError::Param {
                    op: OP,
                    what: "size",
                    value: size[k],
                });
            }
            count.push(s as usize);
        }
        Ok(SlicePlan {
            in_shape: in_shape.to_vec(),
            start: begin.to_vec(),
            step: vec![1; in_shape.len()],
            out_shape: count.clone(),
            count,
        })
    }

    /// The output shape (new axes inserted, shrunk axes removed).
    pub fn out_shape(&self) -> &[usize] {
        &self.out_shape
    }
}

/// STRIDED_SLICE / SLICE: gathers the planned elements of `x` in order.
pub fn slice<T: Copy>(plan: &SlicePlan, x: &[T], out: &mut [T]) {
    let rank = plan.in_shape.len();
    if rank == 0 {
        out.copy_from_slice(&x[..out.len()]);
        return;
    }
    if plan.count.contains(&0) {
        return;
    }
    let mut strides = [0i64; MAX_RANK];
    let mut s = 1i64;
    for k in (0..rank).rev() {
        strides[k] = s;
        s *= plan.in_shape[k] as i64;
    }
    let inner = plan.count[rank - 1];
    let istep = plan.step[rank - 1];
    let mut idx = [0usize; MAX_RANK];
    let mut o = 0;
    loop {
        let mut base = 0i64;
        for k in 0..rank - 1 {
            base += (plan.start[k] + idx[k] as i64 * plan.step[k]) * strides[k];
        }
        let first = base + plan.start[rank - 1];
        if istep == 1 {
            let f = first as usize;
            out[o..o + inner].copy_from_slice(&x[f..f + inner]);
        } else {
            for (j, v) in out[o..o + inner].iter_mut().enumerate() {
                *v = x[(first + j as i64 * istep) as usize];
            }
        }
        o += inner;
        let mut k = rank - 1;
        loop {
            if k == 0 {
                return;
            }
            k -= 1;
            idx[k] += 1;
            if idx[k] < plan.count[k] {
                break;
            }
            idx[k] = 0;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// TRANSPOSE

/// A resolved TRANSPOSE: `out` dimension `i` is input dimension `perm[i]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransposePlan {
    out_shape: Vec<usize>,
    /// Input stride of each output dimension.
    strides: Vec<usize>,
}

impl TransposePlan {
    pub fn new(in_shape: &[usize], perm: &[i64]) -> Result<Self, ParamError> {
        const OP: &str = "TRANSPOSE";
        check_rank(OP, "input", in_shape.len())?;
        let rank = in_shape.len();
        if perm.len() != rank {
            return Err(shape_err(
                OP,
                format!("permutation of length {} for rank {rank}", perm.len()),
            ));
        }
        let mut seen = [false; MAX_RANK];
        let mut in_strides = vec![1usize; rank];
        for k in (0..rank.saturating_sub(1)).rev() {
            in_strides[k] = in_strides[k + 1] * in_shape[k + 1];
        }
        let mut out_shape = Vec::new();
        let mut strides = Vec::new();
        for &p in perm {
            let a = resolve_axis(OP, p, rank)?;
            if seen[a] {
                return Err(ParamError::Param {
                    op: OP,
                    what: "repeated permutation entry",
                    value: p,
                });
            }
            seen[a] = true;
            out_shape.push(in_shape[a]);
            strides.push(in_strides[a]);
        }
        Ok(TransposePlan { out_shape, strides })
    }

    pub fn out_shape(&self) -> &[usize] {
        &self.out_shape
    }
}

/// TRANSPOSE.
pub fn transpose<T: Copy>(plan: &TransposePlan, x: &[T], out: &mut [T]) {
    let rank = plan.out_shape.len();
    if rank == 0 || out.is_empty() {
        out.copy_from_slice(&x[..out.len()]);
        return;
    }
    let inner = plan.out_shape[rank - 1];
    let istride = plan.strides[rank - 1];
    let mut idx = [0usize; MAX_RANK];
    for row in out.chunks_exact_mut(inner) {
        let base: usize = (0..rank - 1).map(|k| idx[k] * plan.strides[k]).sum();
        for (j, v) in row.iter_mut().enumerate() {
            *v = x[base + j * istride];
        }
        for k in (0..rank - 1).rev() {
            idx[k] += 1;
            if idx[k] < plan.out_shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// DEPTH_TO_SPACE / SPACE_TO_DEPTH (NHWC)

fn nhwc(op: &'static str, s: &[usize]) -> Result<[usize; 4], ParamError> {
    if s.len() != 4 {
        return Err(shape_err(op, format!("input must be 4-D NHWC, got {s:?}")));
    }
    Ok([s[0], s[1], s[2], s[3]])
}

/// Output shape of DEPTH_TO_SPACE (checks `block ≥ 1` divides the channel count appropriately).
pub fn depth_to_space_shape(in_shape: &[usize], block: i64) -> Result<[usize; 4], ParamError> {
    const OP: &str = "DEPTH_TO_SPACE";
    let [n, h, w, c] = nhwc(OP, in_shape)?;
    if !(1..=1 << 16).contains(&block) {
        return Err(ParamError::Param {
            op: OP,
            what: "block_size",
            value: block,
        });
    }
    let b = block as usize;
    if c % (b * b) != 0 {
        return Err(shape_err(
            OP,
            format!("channels {c} not divisible by block² = {}", b * b),
        ));
    }
    let (oh, ow) = (h.checked_mul(b), w.checked_mul(b));
    match (oh, ow) {
        (Some(oh), Some(ow)) => Ok([n, oh, ow, c / (b * b)]),
        _ => Err(shape_err(OP, "output size overflows".into())),
    }
}

/// DEPTH_TO_SPACE (TFLite's DCR order): `out[n, h·b+i, w·b+j, c] = x[n, h, w, (i·b+j)·C' + c]`.
pub fn depth_to_space<T: Copy>(in_shape: &[usize], block: usize, x: &[T], out: &mut [T]) {
    let [n, h, w, c] = [in_shape[0], in_shape[1], in_shape[2], in_shape[3]];
    let oc = c / (block * block);
    let (oh, ow) = (h * block, w * block);
    for b in 0..n {
        for y in 0..oh {
            for xo in 0..ow {
                let src = ((b * h + y / block) * w + xo / block) * c
                    + ((y % block) * block + xo % block) * oc;
                let dst = ((b * oh + y) * ow + xo) * oc;
                out[dst..dst + oc].copy_from_slice(&x[src..src + oc]);
            }
        }
    }
}

/// Output shape of SPACE_TO_DEPTH.
pub fn space_to_depth_shape(in_shape: &[usize], block: i64) -> Result<[usize; 4], ParamError> {
    const OP: &str = "SPACE_TO_DEPTH";
    let [n, h, w, c] = nhwc(OP, in_shape)?;
    if !(1..=1 << 16).contains(&block) {
        return Err(ParamError::Param {
            op: OP,
            what: "block_size",
            value: block,
        });
    }
    let b = block as usize;
    if h % b != 0 || w % b != 0 {
        return Err(shape_err(
            OP,
            format!("height {h} / width {w} not divisible by block {b}"),
        ));
    }
    let oc = c
        .checked_mul(b * b)
        .ok_or_else(|| shape_err(OP, "channels overflow".into()))?;
    Ok([n, h / b, w / b, oc])
}

/// SPACE_TO_DEPTH: the inverse of [`depth_to_space`].
pub fn space_to_depth<T: Copy>(in_shape: &[usize], block: usize, x: &[T], out: &mut [T]) {
    let [n, h, w, c] = [in_shape[0], in_shape[1], in_shape[2], in_shape[3]];
    let (oh, ow, oc) = (h / block, w / block, c * block * block);
    for b in 0..n {
        for y in 0..h {
            for xi in 0..w {
                let src = ((b * h + y) * w + xi) * c;
                let dst = ((b * oh + y / block) * ow + xi / block) * oc
                    + ((y % block) * block + xi % block) * c;
                out[dst..dst + c].copy_from_slice(&x[src..src + c]);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// GATHER

/// A resolved GATHER (`axis`, `batch_dims` as TFLite).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatherPlan {
    batch: usize,
    outer: usize,
    axis_size: usize,
    coords: usize,
    inner: usize,
    out_shape: Vec<usize>,
}

impl GatherPlan {
    pub fn new(
        params_shape: &[usize],
        indices_shape: &[usize],
        axis: i64,
        batch_dims: i64,
    ) -> Result<Self, ParamError> {
        const OP: &str = "GATHER";
        check_rank(OP, "params", params_shape.len())?;
        check_rank(OP, "indices", indices_shape.len())?;
        let ax = resolve_axis(OP, axis, params_shape.len())?;
        let bd = if batch_dims < 0 {
            batch_dims + indices_shape.len() as i64
        } else {
            batch_dims
        };
        if bd < 0 || bd as usize > ax || bd as usize > indices_shape.len() {
            return Err(ParamError::Param {
                op: OP,
                what: "batch_dims",
                value: batch_dims,
            });
        }
        let bd = bd as usize;
        if params_shape[..bd] != indices_shape[..bd] {
            return Err(shape_err(
                OP,
                format!("batch dimensions of {params_shape:?} and {indices_shape:?} differ"),
            ));
        }
        let mut out_shape = params_shape[..ax].to_vec();
        out_shape.extend_from_slice(&indices_shape[bd..]);
        out_shape.extend_from_slice(&params_shape[ax + 1..]);
        numel(OP, &out_shape)?;
        Ok(GatherPlan {
            batch: params_shape[..bd].iter().product(),
            outer: params_shape[bd..ax].iter().product(),
            axis_size: params_shape[ax],
            coords: indices_shape[bd..].iter().product(),
            inner: params_shape[ax + 1..].iter().product(),
            out_shape,
        })
    }

    pub fn out_shape(&self) -> &[usize] {
        &self.out_shape
    }
}

/// An index type GATHER accepts (int32 or int64).
pub trait GatherIndex: Copy {
    fn to_i64(self) -> i64;
}
impl GatherIndex for i32 {
    fn to_i64(self) -> i64 {
        self as i64
    }
}
impl GatherIndex for i64 {
    fn to_i64(self) -> i64 {
        self
    }
}

/// GATHER. An index outside `0..axis_size` is an error (TFLite fails the same way).
pub fn gather<T: Copy, I: GatherIndex>(
    plan: &GatherPlan,
    params: &[T],
    indices: &[I],
    out: &mut [T],
) -> Result<(), ParamError> {
    let GatherPlan {
        batch,
        outer,
        axis_size,
        coords,
        inner,
        ..
    } = *plan;
    for b in 0..batch {
        for o in 0..outer {
            for i in 0..coords {
                let idx = indices[b * coords + i].to_i64();
                if idx < 0 || idx >= axis_size as i64 {
                    return Err(ParamError::Param {
                        op: "GATHER",
                        what: "index",
                        value: idx,
                    });
                }
                let src = (((b * outer) + o) * axis_size + idx as usize) * inner;
                let dst = (((b * outer) + o) * coords + i) * inner;
                out[dst..dst + inner].copy_from_slice(&params[src..src + inner]);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
