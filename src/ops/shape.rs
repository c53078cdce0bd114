//! Data movement: RESHAPE, SQUEEZE, EXPAND_DIMS (a copy), CONCATENATION, PAD / PADV2. These
//! work on bytes, so every dtype runs. Quantized inputs must share the output's quantization,
//! except for 8-bit CONCATENATION, which requantizes each input whose scale or zero point
//! differs (TFLite's `ConcatenationWithScaling`).

use sparq_schema::{DType, OpKind, OpOptions};

use super::binary::MAX_RANK;
use sparq_kernels::activation::Lut8;
use sparq_kernels::elementwise::{QInt, QParams};
use sparq_kernels::shape_ops;

use super::{boxed, cast_mut, elements, Ctx, Exec, Inputs, OpEval, Prepared};
use crate::Result;

/// Resolves one `-1` in a requested shape against the element count.
fn resolve_shape(ctx: &Ctx<'_, '_>, want: &[i32], count: usize) -> Result<Vec<usize>> {
    let mut shape = Vec::with_capacity(want.len());
    let mut unknown = None;
    let mut known = 1usize;
    for (i, &d) in want.iter().enumerate() {
        if d == -1 && unknown.is_none() {
            unknown = Some(i);
            shape.push(0);
        } else {
            let d = usize::try_from(d)
                .map_err(|_| ctx.err(format!("new shape {want:?} is invalid")))?;
            known = known.saturating_mul(d);
            shape.push(d);
        }
    }
    if let Some(i) = unknown {
        if known == 0 || !count.is_multiple_of(known) {
            return Err(ctx.err(format!("cannot reshape {count} elements to {want:?}")));
        }
        shape[i] = count / known;
    }
    if elements(&shape) != count {
        return Err(ctx.err(format!("cannot reshape {count} elements to {want:?}")));
    }
    Ok(shape)
}

fn same_quant(ctx: &Ctx<'_, '_>, a: usize, b: usize) -> Result<()> {
    if ctx.dtype(a) != ctx.dtype(b) {
        return Err(ctx.err(format!(
            "input is {} but output is {}",
            ctx.dtype(a),
            ctx.dtype(b)
        )));
    }
    if ctx.dtype(a) != DType::F32 && ctx.quant(a) != ctx.quant(b) {
        return Err(ctx.unsupported("input and output quantization differ"));
    }
    Ok(())
}

pub(crate) fn prepare_reshape(ctx: &Ctx<'_, '_>) -> Result<Prepared> {
    ctx.expect_inputs(1, 2)?;
    let x = ctx.input(0)?;
    let xs = ctx.shape(x);
    let count = elements(xs);
    let declared = &ctx.info(ctx.output()).shape;
    let shape = match ctx.kind {
        OpKind::Squeeze => {
            let dims = match ctx.options {
                OpOptions::Squeeze { dims } => dims.clone(),
                _ => Vec::new(),
            };
            let mut drop = vec![false; xs.len()];
            for &d in &dims {
                let a = if d < 0 { d + xs.len() as i32 } else { d };
                if a < 0 || a as usize >= xs.len() || xs[a as usize] != 1 {
                    return Err(ctx.err(format!("cannot squeeze dimension {d} of {xs:?}")));
                }
                drop[a as usize] = true;
            }
            xs.iter()
                .zip(&drop)
                .filter(|&(&s, &dr)| !(dr || dims.is_empty() && s == 1))
                .map(|(&s, _)| s)
                .collect()
        }
        OpKind::ExpandDims => {
            let axis = *ctx
                .const_i32(1)?
                .first()
                .ok_or_else(|| ctx.err("axis is empty"))?;
            let r = xs.len() as i32 + 1;
            let a = if axis < 0 { axis + r } else { axis };
            if a < 0 || a >= r {
                return Err(ctx.err(format!("axis {axis} out of range for {xs:?}")));
            }
            let mut s = xs.to_vec();
            s.insert(a as usize, 1);
            s
        }
        _ => {
            let from_input = match ctx.opt_input(1) {
                Some(t) if ctx.const_bytes(t).is_some() && ctx.dtype(t) == DType::I32 => {
                    Some(ctx.const_i32(1)?)
                }
                _ => None,
            };
            let from_options = match ctx.options {
                OpOptions::Reshape { new_shape } if !new_shape.is_empty() => {
                    Some(new_shape.clone())
                }
                _ => None,
            };
            match from_input.or(from_options) {
                Some(want) => resolve_shape(ctx, &want, count)?,
                None if elements(declared) == count => declared.clone(),
                None => return Err(ctx.err("no target shape")),
            }
        }
    };
    same_quant(ctx, x, ctx.output())?;
    Ok(Prepared {
        eval: boxed(CopyBytes),
        shape,
        dtype: ctx.dtype(x),
        scratch: 0,
    })
}

pub(crate) struct CopyBytes;

impl OpEval for CopyBytes {
    fn eval(&self, ins: &Inputs<'_>, out: &mut [u8], _scratch: &mut [u8], _exec: &Exec) {
        out.copy_from_slice(ins.bytes(0));
    }
}

pub(crate) fn prepare_concat(ctx: &Ctx<'_, '_>) -> Result<Prepared> {
    let n = ctx.num_inputs();
    if n == 0 {
        return Err(ctx.err("has no inputs"));
    }
    let OpOptions::Concatenation { axis, activation } = *ctx.options else {
        return Err(ctx.err("options are not Concatenation options"));
    };
    if activation != sparq_schema::Activation::None {
        return Err(ctx.unsupported(format!("fused {activation:?}")));
    }
    let first = ctx.input(0)?;
    let s0 = ctx.shape(first).to_vec();
    let rank = s0.len() as i32;
    let a = if axis < 0 { axis + rank } else { axis };
    if a < 0 || a >= rank {
        return Err(ctx.err(format!("axis {axis} out of range for {s0:?}")));
    }
    let a = a as usize;
    let elem = ctx.dtype(first).size_bytes();
    let inner: usize = s0[a + 1..].iter().product::<usize>() * elem;
    let outer: usize = s0[..a].iter().product();
    let mut shape = s0.clone();
    shape[a] = 0;
    let mut chunks = Vec::with_capacity(n);
    for k in 0..n {
        let t = ctx.input(k)?;
        let s = ctx.shape(t);
        let mismatch = s.len() != s0.len() || (0..s.len()).any(|d| d != a && s[d] != s0[d]);
        if mismatch {
            return Err(ctx.tensor_err(
                t,
                format!("shape {s:?} does not concatenate with {s0:?} on axis {a}"),
            ));
        }
        if matches!(ctx.dtype(t), DType::I8 | DType::U8) {
            if ctx.dtype(t) != ctx.dtype(ctx.output()) {
                same_quant(ctx, t, ctx.output())?;
            }
        } else {
            same_quant(ctx, t, ctx.output())?;
        }
        shape[a] += s[a];
        chunks.push(s[a] * inner);
    }
    let out = ctx.output();
    let requant = match ctx.dtype(out) {
        DType::I8 => ConcatTables::I8(concat_tables::<i8>(ctx, n)?),
        DType::U8 => ConcatTables::U8(concat_tables::<u8>(ctx, n)?),
        _ => ConcatTables::None,
    };
    if !matches!(requant, ConcatTables::None) {
        return Ok(Prepared {
            eval: boxed(ConcatQ {
                outer,
                chunks,
                requant,
            }),
            shape,
            dtype: ctx.dtype(first),
            scratch: 0,
        });
    }
    Ok(Prepared {
        eval: boxed(Concat { outer, chunks }),
        shape,
        dtype: ctx.dtype(first),
        scratch: 0,
    })
}

/// PACK: `values_count` tensors of one shape stacked along a new axis (a byte concatenation).
pub(crate) fn prepare_pack(ctx: &Ctx<'_, '_>) -> Result<Prepared> {
    let OpOptions::Pack { axis, values_count } = *ctx.options else {
        return Err(ctx.err("options are not Pack options"));
    };
    let n = ctx.num_inputs();
    if n == 0 || values_count as i64 != n as i64 {
        return Err(ctx.err(format!("values_count {values_count} but {n} inputs")));
    }
    let first = ctx.input(0)?;
    let s0 = ctx.shape(first).to_vec();
    let plan =
        shape_ops::ConcatPlan::pack(axis as i64, &s0, n).map_err(|e| ctx.err(e.to_string()))?;
    let a = shape_ops::resolve_axis("PACK", axis as i64, s0.len() + 1)
        .map_err(|e| ctx.err(e.to_string()))?;
    for k in 0..n {
        let t = ctx.input(k)?;
        if ctx.shape(t) != s0.as_slice() {
            return Err(ctx.tensor_err(t, format!("shape {:?} differs from {s0:?}", ctx.shape(t))));
        }
        same_quant(ctx, t, ctx.output())?;
    }
    let elem = ctx.dtype(first).size_bytes();
    let outer: usize = s0[..a].iter().product();
    let chunk = s0[a..].iter().product::<usize>() * elem;
    Ok(Prepared {
        eval: boxed(Concat {
            outer,
            chunks: vec![chunk; n],
        }),
        shape: plan.out_shape().to_vec(),
        dtype: ctx.dtype(first),
        scratch: 0,
    })
}

struct Concat {
    outer: usize,
    /// Bytes each input contributes per outer index.
    chunks: Vec<usize>,
}

impl OpEval for Concat {
    fn eval(&self, ins: &Inputs<'_>, out: &mut [u8], _scratch: &mut [u8], _exec: &Exec) {
        let mut o = 0;
        for i in 0..self.outer {
            for (k, &c) in self.chunks.iter().enumerate() {
                out[o..o + c].copy_from_slice(&ins.bytes(k)[i * c..(i + 1) * c]);
                o += c;
            }
        }
    }
}

/// The per-tensor quantization of an 8-bit tensor.
fn qparams(ctx: &Ctx<'_, '_>, t: usize) -> Result<QParams> {
    match ctx.quant(t) {
        Some(q) if q.scales.len() == 1 && q.zero_points.len() == 1 => {
            let zp = i32::try_from(q.zero_points[0])
                .map_err(|_| ctx.tensor_err(t, "zero point out of range"))?;
            Ok(QParams::new(q.scales[0], zp))
        }
        Some(_) => Err(ctx.unsupported(format!(
            "tensor {t} \"{}\" is not quantized per tensor",
            ctx.info(t).name
        ))),
        None => Err(ctx.tensor_err(t, "8-bit tensor without quantization")),
    }
}

/// Requantization tables of the inputs of an 8-bit CONCATENATION (`None`: a plain copy).
fn concat_tables<T: QInt>(ctx: &Ctx<'_, '_>, n: usize) -> Result<Vec<Option<Lut8<T>>>> {
    let o = ctx.output();
    let mut tables = Vec::with_capacity(n);
    for k in 0..n {
        let t = ctx.input(k)?;
        if ctx.quant(t) == ctx.quant(o) {
            tables.push(None);
            continue;
        }
        let table = shape_ops::prepare_concat_requant::<T>(qparams(ctx, t)?, qparams(ctx, o)?)
            .map_err(|e| ctx.tensor_err(t, e))?;
        tables.push(table);
    }
    Ok(tables)
}

enum ConcatTables {
    None,
    I8(Vec<Option<Lut8<i8>>>),
    U8(Vec<Option<Lut8<u8>>>),
}

/// 8-bit CONCATENATION whose inputs may each have their own scale and zero point.
struct ConcatQ {
    outer: usize,
    /// Elements (= bytes) each input contributes per outer index.
    chunks: Vec<usize>,
    requant: ConcatTables,
}

fn concat_q<T: QInt>(
    outer: usize,
    chunks: &[usize],
    tables: &[Option<Lut8<T>>],
    ins: &Inputs<'_>,
    out: &mut [T],
) {
    let mut o = 0;
    for i in 0..outer {
        for (k, (&c, table)) in chunks.iter().zip(tables).enumerate() {
            let x: &[T] = bytemuck::cast_slice(ins.bytes(k));
            let src = &x[i * c..(i + 1) * c];
            match table {
                None => out[o..o + c].copy_from_slice(src),
                Some(t) => t.apply(src, &mut out[o..o + c]),
            }
            o += c;
        }
    }
}

impl OpEval for ConcatQ {
    fn eval(&self, ins: &Inputs<'_>, out: &mut [u8], _scratch: &mut [u8], _exec: &Exec) {
        match &self.requant {
            ConcatTables::I8(t) => concat_q(self.outer, &self.chunks, t, ins, cast_mut(out)),
            ConcatTables::U8(t) => concat_q(self.outer, &self.chunks, t, ins, out),
            ConcatTables::None => {}
        }
    }
}

pub(crate) fn prepare_pad(ctx: &Ctx<'_, '_>) -> Result<Prepared> {
    ctx.expect_inputs(2, 3)?;
    let x = ctx.input(0)?;
    let xs = ctx.shape(x).to_vec();
    let rank = xs.len();
    if rank == 0 || rank > MAX_RANK {
        return Err(ctx.unsupported(format!("rank {rank} input")));
    }
    let pads = ctx.const_i32(1)?;
    if pads.len() != 2 * rank {
        return Err(ctx.err(format!(
            "paddings have {} values, expected {}",
            pads.len(),
            2 * rank
        )));
    }
    let mut before = [0usize; MAX_RANK];
    let mut shape = Vec::with_capacity(rank);
    for d in 0..rank {
        let (b, a) = (pads[2 * d], pads[2 * d + 1]);
        if b < 0 || a < 0 {
            return Err(ctx.err(format!("negative padding {pads:?}")));
        }
        before[d] = b as usize;
        shape.push(xs[d] + b as usize + a as usize);
    }
    let dtype = ctx.dtype(x);
    same_quant(ctx, x, ctx.output())?;
    let elem = dtype.size_bytes();
    let fill: Vec<u8> = match (ctx.opt_input(2), dtype) {
        (Some(_), _) => {
            let (_, b) = ctx.const_input(2)?;
            if b.len() != elem {
                return Err(ctx.err("the constant value is not one element"));
            }
            b.to_vec()
        }
        (None, DType::I8 | DType::U8) => {
            let zp = ctx
                .quant(x)
                .and_then(|q| q.zero_points.first().copied())
                .unwrap_or(0);
            vec![zp as u8]
        }
        _ => vec![0u8; elem],
    };
    let mut in_dims = [1usize; MAX_RANK];
    in_dims[..rank].copy_from_slice(&xs);
    let mut out_dims = [1usize; MAX_RANK];
    out_dims[..rank].copy_from_slice(&shape);
    Ok(Prepared {
        eval: boxed(Pad {
            rank,
            in_dims,
            out_dims,
            before,
            elem,
            fill,
        }),
        shape,
        dtype,
        scratch: 0,
    })
}

struct Pad {
    rank: usize,
    in_dims: [usize; MAX_RANK],
    out_dims: [usize; MAX_RANK],
    before: [usize; MAX_RANK],
    elem: usize,
    fill: Vec<u8>,
}

impl OpEval for Pad {
    fn eval(&self, ins: &Inputs<'_>, out: &mut [u8], _scratch: &mut [u8], _exec: &Exec) {
        let x = ins.bytes(0);
        for c in out.chunks_exact_mut(self.elem) {
            c.copy_from_slice(&self.fill);
        }
        let r = self.rank;
        let row = self.in_dims[r - 1] * self.elem;
        let rows = elements(&self.in_dims[..r - 1]);
        let mut idx = [0usize; MAX_RANK];
        for i in 0..rows {
            // Output offset of input row `idx`.
            let mut o = 0usize;
            for (d, &v) in idx.iter().enumerate().take(r) {
                let v = if d == r - 1 { 0 } else { v };
                o = o * self.out_dims[d] + v + self.before[d];
            }
            out[o * self.elem..o * self.elem + row].copy_from_slice(&x[i * row..(i + 1) * row]);
            for d in (0..r - 1).rev() {
                idx[d] += 1;
                if idx[d] < self.in_dims[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
    }
}

/// SPLIT (inputs: axis, x; `num_splits` equal parts) and UNPACK (input x; `shape[axis]` parts,
/// the axis removed): prepares the part `ctx.output_part().0` as a strided copy.
pub(crate) fn prepare_split(ctx: &Ctx<'_, '_>) -> Result<Prepared> {
    let (part, parts) = ctx.output_part();
    let (x_k, axis, count) = match (ctx.kind, ctx.options) {
        (OpKind::Split, OpOptions::Split { num_splits }) => {
            ctx.expect_inputs(2, 2)?;
            let axis = *ctx
                .const_i32(0)?
                .first()
                .ok_or_else(|| ctx.err("axis is empty"))?;
            (1, axis, *num_splits)
        }
        (OpKind::Unpack, OpOptions::Pack { axis, values_count }) => {
            ctx.expect_inputs(1, 1)?;
            (0, *axis, *values_count)
        }
        _ => return Err(ctx.err("options do not match the operator")),
    };
    let x = ctx.input(x_k)?;
    let xs = ctx.shape(x).to_vec();
    let a = shape_ops::resolve_axis(ctx.kind.name(), axis as i64, xs.len())
        .map_err(|e| ctx.err(e.to_string()))?;
    if count <= 0 || count as usize != parts || !xs[a].is_multiple_of(parts) {
        return Err(ctx.err(format!(
            "{parts} outputs, count {count}: dimension {a} of {xs:?} does not split evenly"
        )));
    }
    if ctx.kind == OpKind::Unpack && xs[a] != parts {
        return Err(ctx.err(format!(
            "{parts} outputs but dimension {a} of {xs:?} is {}",
            xs[a]
        )));
    }
    same_quant(ctx, x, ctx.output())?;
    let elem = ctx.dtype(x).size_bytes();
    let piece = xs[a] / parts;
    let inner = xs[a + 1..].iter().product::<usize>() * elem;
    let mut shape = xs.clone();
    if ctx.kind == OpKind::Unpack {
        shape.remove(a);
    } else {
        shape[a] = piece;
    }
    Ok(Prepared {
        eval: boxed(SplitPart {
            x: x_k,
            outer: xs[..a].iter().product(),
            chunk: piece * inner,
            stride: xs[a] * inner,
            offset: part * piece * inner,
        }),
        shape,
        dtype: ctx.dtype(x),
        scratch: 0,
    })
}

/// One output of a SPLIT / UNPACK: `outer` chunks of `chunk` bytes, taken `stride` bytes apart
/// from byte `offset` of input `x`.
struct SplitPart {
    x: usize,
    outer: usize,
    chunk: usize,
    stride: usize,
    offset: usize,
}

impl OpEval for SplitPart {
    fn eval(&self, ins: &Inputs<'_>, out: &mut [u8], _scratch: &mut [u8], _exec: &Exec) {
        let x = ins.bytes(self.x);
        for i in 0..self.outer {
            let src = i * self.stride + self.offset;
            out[i * self.chunk..(i + 1) * self.chunk].copy_from_slice(&x[src..src + self.chunk]);
        }
    }
}
