//! SOFTMAX and LOG_SOFTMAX along the last dimension.

use sparq_schema::{DType, OpKind, OpOptions};

use sparq_kernels::activation::{prepare_softmax_q, softmax_q, SoftmaxQ};
use sparq_kernels::elementwise::QParams;

use super::quant::per_tensor;
use super::{boxed, Ctx, Exec, Inputs, OpEval, Prepared};
use crate::Result;

pub(crate) fn prepare(ctx: &Ctx<'_, '_>) -> Result<Prepared> {
    ctx.expect_inputs(1, 1)?;
    let x = ctx.input(0)?;
    let shape = ctx.shape(x).to_vec();
    let depth = *shape.last().ok_or_else(|| ctx.err("input is a scalar"))?;
    let beta = match *ctx.options {
        OpOptions::Softmax { beta } => beta,
        _ => 1.0,
    };
    let log = ctx.kind == OpKind::LogSoftmax;
    match ctx.dtype(x) {
        DType::I8 | DType::U8 if !log => {
            let unsigned = ctx.dtype(x) == DType::U8;
            let q = |t| per_tensor(ctx, t).map(|(s, z)| QParams::new(s, z));
            let (qi, qo) = (q(x)?, q(ctx.output())?);
            let p = if unsigned {
                prepare_softmax_q::<u8>(beta, qi, qo)
            } else {
                prepare_softmax_q::<i8>(beta, qi, qo)
            }
            .map_err(|e| ctx.err(e.to_string()))?;
            Ok(Prepared {
                eval: boxed(SoftmaxQuant { p, depth, unsigned }),
                shape,
                dtype: ctx.dtype(x),
                scratch: 0,
            })
        }
        DType::F32 => Ok(Prepared {
            eval: boxed(SoftmaxF32 { depth, beta, log }),
            shape,
            dtype: DType::F32,
            scratch: 0,
        }),
        d => Err(ctx.unsupported(format!("{d} input"))),
    }
}

struct SoftmaxF32 {
    depth: usize,
    beta: f32,
    log: bool,
}

impl SoftmaxF32 {
    fn rows(&self, x: &[f32], out: &mut [f32]) {
        for (o, xr) in out
            .chunks_exact_mut(self.depth)
            .zip(x.chunks_exact(self.depth))
        {
            let max = xr.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let mut sum = 0f32;
            for (v, &xv) in o.iter_mut().zip(xr) {
                *v = ((xv - max) * self.beta).exp();
                sum += *v;
            }
            if self.log {
                let ls = sum.ln();
                for (v, &xv) in o.iter_mut().zip(xr) {
                    *v = (xv - max) * self.beta - ls;
                }
            } else {
                let inv = 1.0 / sum;
                o.iter_mut().for_each(|v| *v *= inv);
            }
        }
    }
}

impl OpEval for SoftmaxF32 {
    fn eval(&self, ins: &Inputs<'_>, out: &mut [u8], _scratch: &mut [u8], exec: &Exec) {
        let x = ins.f32(0);
        let out: &mut [f32] = bytemuck::cast_slice_mut(out);
        if self.depth == 0 {
            return;
        }
        let d = self.depth;
        exec.rows(out, d, out.len() * SOFTMAX_ELEM_WORK, &|r0, o| {
            self.rows(&x[r0 * d..r0 * d + o.len()], o)
        });
    }
}

/// Work units (GEMM multiply-adds, the unit of `Exec::rows`) of one softmax element: an
/// exponential and a few passes.
const SOFTMAX_ELEM_WORK: usize = 16;

/// Integer SOFTMAX, TFLite's reference algorithm (bit-exact).
struct SoftmaxQuant {
    p: SoftmaxQ,
    depth: usize,
    unsigned: bool,
}

impl OpEval for SoftmaxQuant {
    fn eval(&self, ins: &Inputs<'_>, out: &mut [u8], _scratch: &mut [u8], exec: &Exec) {
        let d = self.depth;
        if d == 0 {
            return;
        }
        let work = out.len() * SOFTMAX_ELEM_WORK;
        if self.unsigned {
            let x = ins.bytes(0);
            exec.rows(out, d, work, &|r0, o| {
                softmax_q::<u8>(&self.p, &x[r0 * d..r0 * d + o.len()], o, d)
            });
        } else {
            let x: &[i8] = bytemuck::cast_slice(ins.bytes(0));
            let out: &mut [i8] = bytemuck::cast_slice_mut(out);
            exec.rows(out, d, work, &|r0, o| {
                softmax_q::<i8>(&self.p, &x[r0 * d..r0 * d + o.len()], o, d)
            });
        }
    }
}
