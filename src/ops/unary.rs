//! Element-wise unary operators: RELU, RELU6, RELU_N1_TO_1, HARD_SWISH, LOGISTIC, TANH,
//! LEAKY_RELU, ABS, NEG, EXP, SQRT, RSQRT, SQUARE.

use sparq_schema::{DType, OpKind, OpOptions};

use sparq_kernels::activation::{
    prepare_hard_swish_q, prepare_leaky_relu_q, prepare_logistic_q, prepare_relu_q, prepare_tanh_q,
    unary_f32, Lut8, ReluKind, UnaryF32,
};
use sparq_kernels::elementwise::{QInt, QParams};

use super::quant::per_tensor;
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
        DType::I8 => Ok(Prepared {
            eval: lut::<i8>(ctx, x, alpha)?,
            shape,
            dtype: DType::I8,
            scratch: 0,
        }),
        DType::U8 => Ok(Prepared {
            eval: lut::<u8>(ctx, x, alpha)?,
            shape,
            dtype: DType::U8,
            scratch: 0,
        }),
        DType::F32 => {
            let k = match ctx.kind {
                OpKind::Relu => Some(UnaryF32::Relu),
                OpKind::Relu6 => Some(UnaryF32::Relu6),
                OpKind::ReluN1To1 => Some(UnaryF32::ReluN1To1),
                OpKind::HardSwish => Some(UnaryF32::HardSwish),
                OpKind::Logistic => Some(UnaryF32::Logistic),
                OpKind::Tanh => Some(UnaryF32::Tanh),
                OpKind::LeakyRelu => Some(UnaryF32::LeakyRelu(alpha)),
                _ => None,
            };
            if let Some(op) = k {
                return Ok(Prepared {
                    eval: boxed(UnaryF32K { op }),
                    shape,
                    dtype: DType::F32,
                    scratch: 0,
                });
            }
            let f: fn(f32, f32) -> f32 = match ctx.kind {
                OpKind::Abs => |v, _| v.abs(),
                OpKind::Neg => |v, _| -v,
                OpKind::Exp => |v, _| v.exp(),
                OpKind::Sqrt => |v, _| v.sqrt(),
                OpKind::Rsqrt => |v, _| 1.0 / v.sqrt(),
                _ => |v, _| v * v,
            };
            Ok(Prepared {
                eval: boxed(UnaryScalar { f, alpha }),
                shape,
                dtype: DType::F32,
                scratch: 0,
            })
        }
        d => Err(ctx.unsupported(format!("{d} input"))),
    }
}

struct UnaryScalar {
    f: fn(f32, f32) -> f32,
    alpha: f32,
}

/// Elements per parallel row of an element-wise operator.
const ROW: usize = 4096;

impl OpEval for UnaryScalar {
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

/// The 256-entry table of an integer unary operator, built with TFLite's parameters.
fn lut<T: QInt + bytemuck::Pod>(
    ctx: &Ctx<'_, '_>,
    x: usize,
    alpha: f32,
) -> Result<Box<dyn OpEval>> {
    let q = |t| per_tensor(ctx, t).map(|(s, z)| QParams::new(s, z));
    let (qi, qo) = (q(x)?, q(ctx.output())?);
    let table = match ctx.kind {
        OpKind::Relu => prepare_relu_q::<T>(ReluKind::Relu, qi, qo),
        OpKind::Relu6 => prepare_relu_q::<T>(ReluKind::Relu6, qi, qo),
        OpKind::ReluN1To1 => prepare_relu_q::<T>(ReluKind::ReluN1To1, qi, qo),
        OpKind::HardSwish => prepare_hard_swish_q::<T>(qi, qo),
        OpKind::Logistic => prepare_logistic_q::<T>(qi, qo),
        OpKind::Tanh => prepare_tanh_q::<T>(qi, qo),
        OpKind::LeakyRelu => prepare_leaky_relu_q::<T>(alpha, qi, qo),
        k => return Err(ctx.unsupported(format!("integer {k}"))),
    }
    .map_err(|e| ctx.err(e.to_string()))?;
    Ok(boxed(LutOp { table }))
}

struct LutOp<T: QInt> {
    table: Lut8<T>,
}

impl<T: QInt + bytemuck::Pod> OpEval for LutOp<T> {
    fn eval(&self, ins: &Inputs<'_>, out: &mut [u8], _scratch: &mut [u8], exec: &Exec) {
        let x: &[T] = bytemuck::cast_slice(ins.bytes(0));
        let out: &mut [T] = bytemuck::cast_slice_mut(out);
        let work = out.len();
        exec.rows(out, ROW, work, &|r0, o| {
            self.table.apply(&x[r0 * ROW..r0 * ROW + o.len()], o);
        });
    }
}

/// f32 activation on the kernel crate's vectorized kernels.
struct UnaryF32K {
    op: UnaryF32,
}

impl OpEval for UnaryF32K {
    fn eval(&self, ins: &Inputs<'_>, out: &mut [u8], _scratch: &mut [u8], exec: &Exec) {
        let x = ins.f32(0);
        let out: &mut [f32] = bytemuck::cast_slice_mut(out);
        let work = out.len();
        exec.rows(out, ROW, work, &|r0, o| {
            unary_f32(self.op, &x[r0 * ROW..r0 * ROW + o.len()], o);
        });
    }
}
