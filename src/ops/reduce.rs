//! MEAN, SUM and REDUCE_MAX over constant axes.

use sparq_schema::{DType, OpKind, OpOptions};

use super::binary::MAX_RANK;
use super::{boxed, elements, Ctx, Exec, Inputs, OpEval, Prepared};
use crate::Result;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Reducer {
    Mean,
    Sum,
    Max,
}

/// The input viewed as [outer, reduced, inner] after merging dimensions, when the reduced axes
/// are contiguous; otherwise a general walk.
struct Plan {
    rank: usize,
    dims: [usize; MAX_RANK],
    reduced: [bool; MAX_RANK],
    count: usize,
}

pub(crate) fn prepare(ctx: &Ctx<'_, '_>) -> Result<Prepared> {
    ctx.expect_inputs(2, 2)?;
    let keep_dims = match *ctx.options {
        OpOptions::Reducer { keep_dims } => keep_dims,
        _ => false,
    };
    let x = ctx.input(0)?;
    let xs = ctx.shape(x);
    let rank = xs.len();
    if rank > MAX_RANK {
        return Err(ctx.unsupported(format!("rank {rank} input")));
    }
    let mut reduced = [false; MAX_RANK];
    for a in ctx.const_i32(1)? {
        let d = if a < 0 { a + rank as i32 } else { a };
        if d < 0 || d as usize >= rank.max(1) {
            return Err(ctx.err(format!("axis {a} out of range for input {xs:?}")));
        }
        reduced[d as usize] = true;
    }
    let mut shape = Vec::new();
    let mut count = 1;
    for d in 0..rank {
        if reduced[d] {
            count *= xs[d];
            if keep_dims {
                shape.push(1);
            }
        } else {
            shape.push(xs[d]);
        }
    }
    let mut dims = [1usize; MAX_RANK];
    dims[..rank].copy_from_slice(xs);
    let plan = Plan {
        rank,
        dims,
        reduced,
        count,
    };
    let reducer = match ctx.kind {
        OpKind::Mean => Reducer::Mean,
        OpKind::Sum => Reducer::Sum,
        _ => Reducer::Max,
    };
    match ctx.dtype(x) {
        DType::F32 => Ok(Prepared {
            eval: boxed(ReduceF32 { plan, reducer }),
            shape,
            dtype: DType::F32,
            scratch: 0,
        }),
        d => Err(ctx.unsupported(format!("{d} input"))),
    }
}

struct ReduceF32 {
    plan: Plan,
    reducer: Reducer,
}

impl OpEval for ReduceF32 {
    fn eval(&self, ins: &Inputs<'_>, out: &mut [u8], _scratch: &mut [u8], _exec: &Exec) {
        let x = ins.f32(0);
        let out: &mut [f32] = bytemuck::cast_slice_mut(out);
        let p = &self.plan;
        out.fill(if self.reducer == Reducer::Max {
            f32::NEG_INFINITY
        } else {
            0.0
        });
        // Output strides for each input dimension (0 along reduced ones).
        let mut ostride = [0usize; MAX_RANK];
        let mut acc = 1;
        for d in (0..p.rank).rev() {
            if !p.reduced[d] {
                ostride[d] = acc;
                acc *= p.dims[d];
            }
        }
        let mut idx = [0usize; MAX_RANK];
        let mut o = 0usize;
        for &v in x.iter().take(elements(&p.dims[..p.rank])) {
            match self.reducer {
                Reducer::Max => out[o] = out[o].max(v),
                _ => out[o] += v,
            }
            // Advance the multi-index and the output offset.
            for d in (0..p.rank).rev() {
                idx[d] += 1;
                o += ostride[d];
                if idx[d] < p.dims[d] {
                    break;
                }
                o -= ostride[d] * idx[d];
                idx[d] = 0;
            }
        }
        if self.reducer == Reducer::Mean {
            let n = p.count.max(1) as f32;
            out.iter_mut().for_each(|v| *v /= n);
        }
    }
}
