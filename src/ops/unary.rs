//! Element-wise unary operators: RELU, RELU6, RELU_N1_TO_1, HARD_SWISH, LOGISTIC, TANH,
//! LEAKY_RELU, ABS, NEG, EXP, SQRT, RSQRT, SQUARE.

use sparq_schema::{DType, OpKind, OpOptions};

use super::{boxed, Ctx, Exec, Inputs, OpEval, Prepared};
use crate::Result;

pub(crate) fn prepare(ctx: &Ctx<'_, '_>) -> Result<Prepared> {
    ctx.expect_inputs(1, 1)?;
    let x = ctx.input(0)?;
    let shape = ctx.shape(x).to_vec();
    let alpha = match *ctx.options {
        OpOptions::LeakyRelu { alpha } => alpha,
        _ => 0.0,
    };
    match ctx.dtype(x) {
        DType::F32 => {
            let f: fn(f32, f32) -> f32 = match ctx.kind {
                OpKind::Relu => |v, _| v.max(0.0),
                OpKind::Relu6 => |v, _| v.clamp(0.0, 6.0),
                OpKind::ReluN1To1 => |v, _| v.clamp(-1.0, 1.0),
                OpKind::HardSwish => |v, _| v * (v + 3.0).clamp(0.0, 6.0) / 6.0,
                OpKind::Logistic => |v, _| 1.0 / (1.0 + (-v).exp()),
                OpKind::Tanh => |v, _| v.tanh(),
                OpKind::LeakyRelu => |v, a| if v >= 0.0 { v } else { v * a },
                OpKind::Abs => |v, _| v.abs(),
                OpKind::Neg => |v, _| -v,
                OpKind::Exp => |v, _| v.exp(),
                OpKind::Sqrt => |v, _| v.sqrt(),
                OpKind::Rsqrt => |v, _| 1.0 / v.sqrt(),
                _ => |v, _| v * v,
            };
            Ok(Prepared {
                eval: boxed(UnaryF32 { f, alpha }),
                shape,
                dtype: DType::F32,
                scratch: 0,
            })
        }
        d => Err(ctx.unsupported(format!("{d} input"))),
    }
}

struct UnaryF32 {
    f: fn(f32, f32) -> f32,
    alpha: f32,
}

/// Elements per parallel row of an element-wise operator.
const ROW: usize = 4096;

impl OpEval for UnaryF32 {
    fn eval(&self, ins: &Inputs<'_>, out: &mut [u8], _scratch: &mut [u8], exec: &Exec) {
        let x = ins.f32(0);
        let out: &mut [f32] = bytemuck::cast_slice_mut(out);
        let work = out.len();
        exec.rows(out, ROW, work, &|r0, rows| {
            let xs = &x[r0 * ROW..r0 * ROW + rows.len()];
            for (o, &v) in rows.iter_mut().zip(xs) {
                *o = (self.f)(v, self.alpha);
            }
        });
    }
}
