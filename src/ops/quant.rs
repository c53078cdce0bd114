//! DEQUANTIZE (f16 / i8 / u8 → f32) and QUANTIZE (f32 → i8 / u8), with TFLite's rounding.

use sparq_schema::{DType, Quantization};

use sparq_kernels::elementwise::{lut8, QParams};
use sparq_kernels::quantize::quantize_f32;
use sparq_kernels::requant::{multiply_by_quantized_multiplier, quantize_multiplier};

use super::{boxed, elements, Ctx, Exec, Inputs, OpEval, Prepared};
use crate::Result;

/// Per-tensor (scale, zero point) of tensor `t`; an error for a missing or per-axis one.
pub(crate) fn per_tensor(ctx: &Ctx<'_, '_>, t: usize) -> Result<(f32, i32)> {
    let q: &Quantization = ctx
        .quant(t)
        .ok_or_else(|| ctx.tensor_err(t, "has no quantization parameters"))?;
    if q.scales.len() != 1 || q.zero_points.len() != 1 {
        return Err(ctx.tensor_err(
            t,
            format!(
                "needs per-tensor quantization, has {} scales",
                q.scales.len()
            ),
        ));
    }
    let scale = q.scales[0];
    if !(scale > 0.0 && scale.is_finite()) {
        return Err(ctx.tensor_err(t, format!("scale {scale} is not a positive number")));
    }
    Ok((scale, q.zero_points[0] as i32))
}

pub(crate) fn prepare_dequantize(ctx: &Ctx<'_, '_>) -> Result<Prepared> {
    ctx.expect_inputs(1, 1)?;
    let x = ctx.input(0)?;
    let shape = ctx.shape(x).to_vec();
    let eval = match ctx.dtype(x) {
        DType::F16 => boxed(DequantizeF16),
        // A float16 constant already widened at prepare.
        DType::F32 => boxed(super::shape::CopyBytes),
        DType::I8 | DType::U8 => {
            let (scale, zp) = per_tensor(ctx, x)?;
            boxed(DequantizeQ8 {
                scale,
                zp,
                unsigned: ctx.dtype(x) == DType::U8,
            })
        }
        d => return Err(ctx.unsupported(format!("{d} input"))),
    };
    Ok(Prepared {
        eval,
        shape,
        dtype: DType::F32,
        scratch: 0,
    })
}

/// Elements per parallel chunk of the (de)quantizers.
const CHUNK: usize = 4096;

/// Work units (GEMM multiply-adds, the unit of `Exec::rows`) of one converted element.
const ELEM_WORK: usize = 4;

struct DequantizeF16;

impl OpEval for DequantizeF16 {
    fn eval(&self, ins: &Inputs<'_>, out: &mut [u8], _scratch: &mut [u8], exec: &Exec) {
        let x: &[half::f16] = bytemuck::cast_slice(ins.bytes(0));
        let out: &mut [f32] = bytemuck::cast_slice_mut(out);
        exec.rows(out, CHUNK, out.len() * ELEM_WORK, &|c0, out| {
            for (o, v) in out.iter_mut().zip(&x[c0 * CHUNK..]) {
                *o = v.to_f32();
            }
        });
    }
}

struct DequantizeQ8 {
    scale: f32,
    zp: i32,
    unsigned: bool,
}

impl OpEval for DequantizeQ8 {
    fn eval(&self, ins: &Inputs<'_>, out: &mut [u8], _scratch: &mut [u8], exec: &Exec) {
        let x = ins.bytes(0);
        let out: &mut [f32] = bytemuck::cast_slice_mut(out);
        exec.rows(out, CHUNK, out.len() * ELEM_WORK, &|c0, out| {
            for (o, &b) in out.iter_mut().zip(&x[c0 * CHUNK..]) {
                let q = if self.unsigned {
                    b as i32
                } else {
                    b as i8 as i32
                };
                *o = self.scale * (q - self.zp) as f32;
            }
        });
    }
}

pub(crate) fn prepare_quantize(ctx: &Ctx<'_, '_>) -> Result<Prepared> {
    ctx.expect_inputs(1, 1)?;
    let x = ctx.input(0)?;
    let y = ctx.output();
    let shape = ctx.shape(x).to_vec();
    let dtype = ctx.dtype(y);
    let (scale, zp) = per_tensor(ctx, y)?;
    let (lo, hi) = match dtype {
        DType::I8 => (-128, 127),
        DType::U8 => (0, 255),
        d => return Err(ctx.unsupported(format!("{d} output"))),
    };
    let _ = elements(&shape);
    match ctx.dtype(x) {
        DType::F32 => Ok(Prepared {
            eval: boxed(QuantizeF32 {
                scale,
                zp,
                signed: dtype == DType::I8,
            }),
            shape,
            dtype,
            scratch: 0,
        }),
        DType::I8 | DType::U8 => {
            // Requantize (TFLite's `Requantize`): out = MBQM(q − in_zp, in_scale / out_scale)
            // + out_zp, clamped; tabulated over the 256 input codes.
            let (in_scale, in_zp) = per_tensor(ctx, x)?;
            let (m, sh) = quantize_multiplier(in_scale as f64 / scale as f64);
            let signed_in = ctx.dtype(x) == DType::I8;
            let mut table = [0u8; 256];
            for (code, t) in table.iter_mut().enumerate() {
                let q = if signed_in {
                    code as u8 as i8 as i32
                } else {
                    code as i32
                };
                let v = multiply_by_quantized_multiplier(q - in_zp, m, sh).saturating_add(zp);
                *t = v.clamp(lo, hi) as u8;
            }
            Ok(Prepared {
                eval: boxed(Requantize { table }),
                shape,
                dtype,
                scratch: 0,
            })
        }
        d => Err(ctx.unsupported(format!("{d} input"))),
    }
}

struct QuantizeF32 {
    scale: f32,
    zp: i32,
    /// int8 output (else uint8).
    signed: bool,
}

impl OpEval for QuantizeF32 {
    fn eval(&self, ins: &Inputs<'_>, out: &mut [u8], _scratch: &mut [u8], exec: &Exec) {
        let x = ins.f32(0);
        // TFLite: round half away from zero of val / scale, in f32, plus the zero point,
        // saturated to the output type (the vectorized kernel of the kernel crate).
        let q = QParams::new(self.scale, self.zp);
        let signed = self.signed;
        exec.rows(out, CHUNK, out.len() * ELEM_WORK, &|c0, out| {
            let x = &x[c0 * CHUNK..c0 * CHUNK + out.len()];
            if signed {
                quantize_f32::<i8>(q, x, bytemuck::cast_slice_mut(out));
            } else {
                quantize_f32::<u8>(q, x, out);
            }
        });
    }
}

/// 8-bit to 8-bit requantization through a table of the 256 input codes.
struct Requantize {
    table: [u8; 256],
}

impl OpEval for Requantize {
    fn eval(&self, ins: &Inputs<'_>, out: &mut [u8], _scratch: &mut [u8], exec: &Exec) {
        let x = ins.bytes(0);
        exec.rows(out, CHUNK, out.len() * ELEM_WORK, &|c0, out| {
            lut8(&self.table, &x[c0 * CHUNK..c0 * CHUNK + out.len()], out)
        });
    }
}
