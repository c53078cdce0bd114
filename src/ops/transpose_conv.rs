//! TRANSPOSE_CONV (NHWC): f32 (f32 or f16 weights) and int8 / uint8 (int8 weights per channel
//! or per tensor, or uint8 weights with a per-tensor zero point), with TFLite's semantics: the
//! output shape is the constant input 0, padding is computed from the output size, then bias,
//! requantization and the fused activation. Inputs: output_shape, weights `[out_c, kh, kw,
//! in_c]`, input, optional bias.

use sparq_kernels::conv::transpose::{TransposeConvF32, TransposeConvQ, TransposeGeom};
use sparq_kernels::window::Padding as KPadding;
use sparq_schema::{Activation, DType, OpOptions, Padding};

use super::gemm::{bias_i32, conv_requant};
use super::{act_range_f32, boxed, cast_mut, elements, Ctx, Exec, Inputs, OpEval, Prepared};
use crate::Result;

/// Input positions.
const SHAPE: usize = 0;
const WEIGHTS: usize = 1;
const INPUT: usize = 2;
const BIAS: usize = 3;

pub(crate) fn prepare(ctx: &Ctx<'_, '_>) -> Result<Prepared> {
    ctx.expect_inputs(3, 4)?;
    let OpOptions::TransposeConv {
        padding,
        stride_h,
        stride_w,
        activation,
    } = *ctx.options
    else {
        return Err(ctx.err("options are not TransposeConv options"));
    };
    let x = ctx.input(INPUT)?;
    let w = ctx.input(WEIGHTS)?;
    let xs = ctx.expect_rank(x, 4)?.to_vec();
    let ws = ctx.expect_rank(w, 4)?.to_vec();
    let want = ctx.const_i32(SHAPE)?;
    if want.len() != 4 || want.iter().any(|&d| d <= 0) {
        return Err(ctx.err(format!("output shape {want:?} is not 4 positive sizes")));
    }
    let shape: Vec<usize> = want.iter().map(|&d| d as usize).collect();
    if shape[0] != xs[0] || shape[3] != ws[0] || ws[3] != xs[3] {
        return Err(ctx.err(format!(
            "input {xs:?}, weights {ws:?} and output shape {shape:?} do not match \
             (batch, output channels, input channels)"
        )));
    }
    if stride_h <= 0 || stride_w <= 0 {
        return Err(ctx.err(format!("stride {stride_h}x{stride_w} is not positive")));
    }
    let kpad = match padding {
        Padding::Same => KPadding::Same,
        Padding::Valid => KPadding::Valid,
    };
    let geom = TransposeGeom::new(
        xs[0],
        (xs[1], xs[2], xs[3]),
        (shape[1], shape[2], shape[3]),
        (ws[1], ws[2]),
        (stride_h as usize, stride_w as usize),
        kpad,
    )
    .map_err(|e| ctx.err(e.to_string()))?;
    let dtype = ctx.dtype(x);
    if ctx.dtype(ctx.output()) != dtype {
        return Err(ctx.err(format!(
            "input is {dtype} but output is {}",
            ctx.dtype(ctx.output())
        )));
    }
    let nw = elements(&ws);
    let kernel = match dtype {
        DType::F32 => {
            if activation == Activation::Tanh {
                return Err(ctx.unsupported("fused Tanh"));
            }
            // The widened weights and the kernel's copy.
            ctx.charge(w, nw.checked_mul(8))?;
            let weights = ctx.const_f32(w)?;
            let bias = match ctx.opt_input(BIAS) {
                Some(b) => {
                    let v = ctx.const_f32(b)?;
                    if v.len() != geom.out_c {
                        return Err(
                            ctx.tensor_err(b, format!("bias must have {} values", geom.out_c))
                        );
                    }
                    Some(v)
                }
                None => None,
            };
            let (lo, hi) = act_range_f32(activation);
            Kernel::F32(
                TransposeConvF32::new(geom, &weights, bias.as_deref(), lo, hi)
                    .map_err(|e| ctx.err(e.to_string()))?,
            )
        }
        DType::I8 | DType::U8 => {
            ctx.charge(w, nw.checked_mul(2))?;
            let (in_zp, rq) = conv_requant(ctx, x, w, activation, geom.out_c)?;
            let bias = bias_i32(ctx, BIAS, geom.out_c)?;
            let (_, wb) = ctx.const_input(WEIGHTS)?;
            let wq = ctx
                .quant(w)
                .ok_or_else(|| ctx.tensor_err(w, "has no quantization"))?;
            let k = match ctx.dtype(w) {
                DType::I8 => {
                    if wq.zero_points.iter().any(|&z| z != 0) {
                        return Err(ctx.tensor_err(w, "int8 weights need zero points 0"));
                    }
                    TransposeConvQ::new(geom, bytemuck::cast_slice(wb), bias.as_deref(), in_zp, rq)
                }
                DType::U8 if wq.zero_points.len() == 1 => TransposeConvQ::new_u8(
                    geom,
                    wb,
                    wq.zero_points[0] as i32,
                    bias.as_deref(),
                    in_zp,
                    rq,
                ),
                d => {
                    return Err(ctx.tensor_err(
                        w,
                        format!("{d} weights with {} zero points", wq.zero_points.len()),
                    ))
                }
            }
            .map_err(|e| ctx.err(e.to_string()))?;
            Kernel::Q(k, dtype == DType::U8)
        }
        d => return Err(ctx.unsupported(format!("{d} input"))),
    };
    Ok(Prepared {
        eval: boxed(TransposeConv {
            kernel,
            rows: geom.output_rows(),
        }),
        shape,
        dtype,
        scratch: 0,
    })
}

enum Kernel {
    F32(TransposeConvF32),
    /// The prepared kernel; true for uint8 activations.
    Q(TransposeConvQ, bool),
}

struct TransposeConv {
    kernel: Kernel,
    rows: usize,
}

impl OpEval for TransposeConv {
    fn eval(&self, ins: &Inputs<'_>, out: &mut [u8], _scratch: &mut [u8], _exec: &Exec) {
        let x = ins.bytes(INPUT);
        match &self.kernel {
            Kernel::F32(k) => k.run(bytemuck::cast_slice(x), cast_mut(out), 0..self.rows),
            Kernel::Q(k, true) => k.run::<u8>(x, out, 0..self.rows),
            Kernel::Q(k, false) => {
                k.run::<i8>(bytemuck::cast_slice(x), cast_mut(out), 0..self.rows)
            }
        }
    }
}
