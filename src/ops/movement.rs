//! Data movement by index: STRIDED_SLICE, SLICE, TRANSPOSE, DEPTH_TO_SPACE, SPACE_TO_DEPTH,
//! GATHER (constant indices), RESIZE_NEAREST_NEIGHBOR (any dtype: elements are moved as 1-, 2-,
//! 4- or 8-byte words) and RESIZE_BILINEAR (f32, int8, uint8). Quantized inputs must share the
//! output's quantization. Plans come from `sparq_kernels::shape_ops` / `resize`, computed once.

use sparq_kernels::elementwise::ParamError;
use sparq_kernels::resize::{self, ResizePlan};
use sparq_kernels::shape_ops::{self, GatherPlan, SlicePlan, StridedSliceSpec, TransposePlan};
use sparq_schema::{DType, OpKind, OpOptions};

use super::{boxed, cast_mut, Ctx, Exec, Inputs, OpEval, Prepared};
use crate::Result;

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

fn perr(ctx: &Ctx<'_, '_>, e: ParamError) -> crate::Error {
    match e {
        ParamError::Unsupported { .. } | ParamError::Rank { .. } => ctx.unsupported(e.to_string()),
        _ => ctx.err(e.to_string()),
    }
}

fn i64s(v: Vec<i32>) -> Vec<i64> {
    v.into_iter().map(i64::from).collect()
}

/// What one movement op does, element-type independent.
enum Plan {
    Slice(SlicePlan),
    Transpose(TransposePlan),
    DepthToSpace([usize; 4], usize),
    SpaceToDepth([usize; 4], usize),
    /// Gather with constant indices, checked at prepare.
    Gather(GatherPlan, Vec<i64>),
    Nearest(ResizePlan),
}

struct Move {
    plan: Plan,
    elem: usize,
}

fn run<T: bytemuck::Pod>(plan: &Plan, x: &[u8], out: &mut [u8]) {
    let x: &[T] = bytemuck::cast_slice(x);
    let out: &mut [T] = cast_mut(out);
    match plan {
        Plan::Slice(p) => shape_ops::slice(p, x, out),
        Plan::Transpose(p) => shape_ops::transpose(p, x, out),
        Plan::DepthToSpace(s, b) => shape_ops::depth_to_space(s, *b, x, out),
        Plan::SpaceToDepth(s, b) => shape_ops::space_to_depth(s, *b, x, out),
        Plan::Gather(p, idx) => {
            // Indices were range-checked at prepare.
            let _ = shape_ops::gather(p, x, idx, out);
        }
        Plan::Nearest(p) => resize::resize_nearest(p, x, out),
    }
}

impl OpEval for Move {
    fn eval(&self, ins: &Inputs<'_>, out: &mut [u8], _scratch: &mut [u8], _exec: &Exec) {
        let x = ins.bytes(0);
        match self.elem {
            1 => run::<u8>(&self.plan, x, out),
            2 => run::<u16>(&self.plan, x, out),
            4 => run::<u32>(&self.plan, x, out),
            _ => run::<u64>(&self.plan, x, out),
        }
    }
}

/// Prepares STRIDED_SLICE, SLICE, TRANSPOSE, DEPTH_TO_SPACE, SPACE_TO_DEPTH, GATHER and
/// RESIZE_NEAREST_NEIGHBOR.
pub(crate) fn prepare(ctx: &Ctx<'_, '_>) -> Result<Prepared> {
    let x = ctx.input(0)?;
    let xs = ctx.shape(x).to_vec();
    let dtype = ctx.dtype(x);
    let elem = dtype.size_bytes();
    if !matches!(elem, 1 | 2 | 4 | 8) {
        return Err(ctx.unsupported(format!("{dtype} elements")));
    }
    same_quant(ctx, x, ctx.output())?;
    let (plan, shape) = match ctx.kind {
        OpKind::StridedSlice => {
            ctx.expect_inputs(4, 4)?;
            let OpOptions::StridedSlice {
                begin_mask,
                end_mask,
                ellipsis_mask,
                new_axis_mask,
                shrink_axis_mask,
                offset,
            } = *ctx.options
            else {
                return Err(ctx.err("options are not StridedSlice options"));
            };
            let spec = StridedSliceSpec {
                begin: i64s(ctx.const_i32(1)?),
                end: i64s(ctx.const_i32(2)?),
                strides: i64s(ctx.const_i32(3)?),
                begin_mask: begin_mask as u32,
                end_mask: end_mask as u32,
                ellipsis_mask: ellipsis_mask as u32,
                new_axis_mask: new_axis_mask as u32,
                shrink_axis_mask: shrink_axis_mask as u32,
                offset,
            };
            let p = SlicePlan::strided(&xs, &spec).map_err(|e| perr(ctx, e))?;
            let s = p.out_shape().to_vec();
            (Plan::Slice(p), s)
        }
        OpKind::Slice => {
            ctx.expect_inputs(3, 3)?;
            let begin = i64s(ctx.const_i32(1)?);
            let size = i64s(ctx.const_i32(2)?);
            let p = SlicePlan::slice(&xs, &begin, &size).map_err(|e| perr(ctx, e))?;
            let s = p.out_shape().to_vec();
            (Plan::Slice(p), s)
        }
        OpKind::Transpose => {
            ctx.expect_inputs(2, 2)?;
            let perm = i64s(ctx.const_i32(1)?);
            let p = TransposePlan::new(&xs, &perm).map_err(|e| perr(ctx, e))?;
            let s = p.out_shape().to_vec();
            (Plan::Transpose(p), s)
        }
        OpKind::DepthToSpace | OpKind::SpaceToDepth => {
            ctx.expect_inputs(1, 1)?;
            let block = match *ctx.options {
                OpOptions::DepthToSpace { block_size } | OpOptions::SpaceToDepth { block_size } => {
                    block_size
                }
                _ => return Err(ctx.err("options carry no block size")),
            };
            if ctx.kind == OpKind::DepthToSpace {
                let s =
                    shape_ops::depth_to_space_shape(&xs, block as i64).map_err(|e| perr(ctx, e))?;
                let in4: [usize; 4] = [xs[0], xs[1], xs[2], xs[3]];
                (Plan::DepthToSpace(in4, block as usize), s.to_vec())
            } else {
                let s =
                    shape_ops::space_to_depth_shape(&xs, block as i64).map_err(|e| perr(ctx, e))?;
                let in4: [usize; 4] = [xs[0], xs[1], xs[2], xs[3]];
                (Plan::SpaceToDepth(in4, block as usize), s.to_vec())
            }
        }
        OpKind::Gather => {
            ctx.expect_inputs(2, 2)?;
            let (axis, batch_dims) = match *ctx.options {
                OpOptions::Gather { axis, batch_dims } => (axis, batch_dims),
                _ => (0, 0),
            };
            let (it, ib) = ctx.const_input(1)?;
            let idx: Vec<i64> = match ctx.dtype(it) {
                DType::I32 => bytemuck::cast_slice::<u8, i32>(ib)
                    .iter()
                    .map(|&v| v as i64)
                    .collect(),
                d => return Err(ctx.tensor_err(it, format!("indices are {d}, expected i32"))),
            };
            let p = GatherPlan::new(&xs, ctx.shape(it), axis as i64, batch_dims as i64)
                .map_err(|e| perr(ctx, e))?;
            let axis_size = xs[shape_ops::resolve_axis("GATHER", axis as i64, xs.len())
                .map_err(|e| perr(ctx, e))?];
            if let Some(&bad) = idx.iter().find(|&&v| v < 0 || v >= axis_size as i64) {
                return Err(ctx.tensor_err(it, format!("index {bad} out of range 0..{axis_size}")));
            }
            let s = p.out_shape().to_vec();
            (Plan::Gather(p, idx), s)
        }
        OpKind::ResizeNearestNeighbor => {
            let p = resize_plan(ctx, &xs)?;
            let s = p.out_shape().to_vec();
            (Plan::Nearest(p), s)
        }
        _ => return Err(ctx.unsupported("not a movement operator")),
    };
    Ok(Prepared {
        eval: boxed(Move { plan, elem }),
        shape,
        dtype,
        scratch: 0,
    })
}

fn resize_plan(ctx: &Ctx<'_, '_>, xs: &[usize]) -> Result<ResizePlan> {
    ctx.expect_inputs(2, 2)?;
    let size = ctx.const_i32(1)?;
    if size.len() != 2 {
        return Err(ctx.err(format!("size has {} values, expected 2", size.len())));
    }
    let (align_corners, half_pixel_centers) = match *ctx.options {
        OpOptions::Resize {
            align_corners,
            half_pixel_centers,
        } => (align_corners, half_pixel_centers),
        _ => (false, false),
    };
    ResizePlan::new(
        ctx.kind.name(),
        xs,
        size[0] as i64,
        size[1] as i64,
        align_corners,
        half_pixel_centers,
    )
    .map_err(|e| perr(ctx, e))
}

struct Bilinear {
    plan: ResizePlan,
    dtype: DType,
}

impl OpEval for Bilinear {
    fn eval(&self, ins: &Inputs<'_>, out: &mut [u8], _scratch: &mut [u8], _exec: &Exec) {
        let x = ins.bytes(0);
        match self.dtype {
            DType::F32 => {
                resize::resize_bilinear_f32(&self.plan, bytemuck::cast_slice(x), cast_mut(out))
            }
            DType::U8 => resize::resize_bilinear_u8(&self.plan, x, out),
            _ => resize::resize_bilinear_i8(&self.plan, bytemuck::cast_slice(x), cast_mut(out)),
        }
    }
}

/// Prepares RESIZE_BILINEAR (f32, int8, uint8).
pub(crate) fn prepare_bilinear(ctx: &Ctx<'_, '_>) -> Result<Prepared> {
    let x = ctx.input(0)?;
    let dtype = ctx.dtype(x);
    if !matches!(dtype, DType::F32 | DType::U8 | DType::I8) {
        return Err(ctx.unsupported(format!("{dtype} input")));
    }
    same_quant(ctx, x, ctx.output())?;
    let xs = ctx.shape(x).to_vec();
    let plan = resize_plan(ctx, &xs)?;
    Ok(Prepared {
        eval: boxed(Bilinear { plan, dtype }),
        shape: plan.out_shape().to_vec(),
        dtype,
        scratch: 0,
    })
}
