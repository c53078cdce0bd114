//! MAX_POOL_2D and AVERAGE_POOL_2D (NHWC). The average counts only the taps inside the input,
//! as TFLite does.

use sparq_schema::{Activation, DType, OpKind, OpOptions};

use sparq_kernels::pooling::{PoolKernels, PoolQ as PoolQFn};
use sparq_kernels::requant::{activation_range, Activation as KAct};
use sparq_kernels::window::{Padding as KPadding, Window2d, WindowSpec};

use super::conv::{finish_f32, geometry, Geometry};
use super::quant::per_tensor;
use super::{act_range_f32, boxed, Ctx, Exec, Inputs, OpEval, Prepared};
use crate::Result;

pub(crate) fn prepare(ctx: &Ctx<'_, '_>) -> Result<Prepared> {
    ctx.expect_inputs(1, 1)?;
    let OpOptions::Pool2d {
        padding,
        stride_h,
        stride_w,
        filter_h,
        filter_w,
        activation,
    } = *ctx.options
    else {
        return Err(ctx.err("options are not Pool2d options"));
    };
    let x = ctx.input(0)?;
    let input = ctx.expect_rank(x, 4)?;
    let (kh, kw) = match (usize::try_from(filter_h), usize::try_from(filter_w)) {
        (Ok(h), Ok(w)) if h > 0 && w > 0 => (h, w),
        _ => return Err(ctx.err(format!("filter {filter_h}x{filter_w} is not positive"))),
    };
    let g = geometry(
        ctx,
        input,
        kh,
        kw,
        input[3],
        padding,
        (stride_h, stride_w),
        (1, 1),
    )?;
    let shape = vec![g.n, g.oh, g.ow, g.oc];
    let max = ctx.kind == OpKind::MaxPool2d;
    match ctx.dtype(x) {
        DType::I8 | DType::U8 => {
            let y = ctx.output();
            if ctx.quant(x) != ctx.quant(y) {
                return Err(ctx.unsupported("pooling with different input and output quantization"));
            }
            let (scale, zp) = per_tensor(ctx, y)?;
            let unsigned = ctx.dtype(x) == DType::U8;
            let kact = match activation {
                Activation::None => KAct::None,
                Activation::Relu => KAct::Relu,
                Activation::Relu6 => KAct::Relu6,
                Activation::ReluN1To1 => KAct::ReluN1To1,
                Activation::Tanh => return Err(ctx.unsupported("fused tanh on an integer output")),
            };
            let (qmin, qmax) = if unsigned { (0, 255) } else { (-128, 127) };
            let (lo, hi) = activation_range(kact, scale, zp, qmin, qmax);
            let mut spec = WindowSpec::new(g.n, g.ih, g.iw, g.ic, g.oc);
            (spec.k_h, spec.k_w) = (kh, kw);
            (spec.stride_h, spec.stride_w) = (g.sh, g.sw);
            spec.padding = match padding {
                sparq_schema::Padding::Same => KPadding::Same,
                sparq_schema::Padding::Valid => KPadding::Valid,
            };
            let win = Window2d::new(spec).map_err(|e| ctx.err(e.to_string()))?;
            Ok(Prepared {
                eval: boxed(PoolQ {
                    win,
                    max,
                    unsigned,
                    lo,
                    hi,
                }),
                shape,
                dtype: ctx.dtype(x),
                scratch: 0,
            })
        }
        DType::F32 => Ok(Prepared {
            eval: boxed(PoolF32 {
                g,
                max,
                act: activation,
            }),
            shape,
            dtype: DType::F32,
            scratch: 0,
        }),
        d => Err(ctx.unsupported(format!("{d} input"))),
    }
}

struct PoolF32 {
    g: Geometry,
    max: bool,
    act: Activation,
}

impl OpEval for PoolF32 {
    fn eval(&self, ins: &Inputs<'_>, out: &mut [u8], _scratch: &mut [u8], exec: &Exec) {
        let g = &self.g;
        let x = ins.f32(0);
        let out: &mut [f32] = bytemuck::cast_slice_mut(out);
        let (lo, hi) = act_range_f32(self.act);
        let row_len = g.ow * g.oc;
        let work = out.len() * g.kh * g.kw;
        exec.rows(out, row_len, work, &|r0, rows| {
            for (ri, orow) in rows.chunks_exact_mut(row_len).enumerate() {
                let r = r0 + ri;
                let (b, y) = (r / g.oh, r % g.oh);
                for (xo, o) in orow.chunks_exact_mut(g.oc).enumerate() {
                    o.fill(if self.max { f32::NEG_INFINITY } else { 0.0 });
                    let mut count = 0usize;
                    for ky in 0..g.kh {
                        let Some(iy) = g.in_y(y, ky) else { continue };
                        for kx in 0..g.kw {
                            let Some(ix) = g.in_x(xo, kx) else { continue };
                            count += 1;
                            let px = &x[((b * g.ih + iy) * g.iw + ix) * g.ic..][..g.ic];
                            if self.max {
                                o.iter_mut().zip(px).for_each(|(a, &v)| *a = a.max(v));
                            } else {
                                o.iter_mut().zip(px).for_each(|(a, &v)| *a += v);
                            }
                        }
                    }
                    if !self.max {
                        let n = count.max(1) as f32;
                        o.iter_mut().for_each(|a| *a /= n);
                    }
                    finish_f32(o, lo, hi, self.act);
                }
            }
        });
    }
}

/// Integer pooling on the kernel crate's TFLite-exact kernels, split over output rows.
struct PoolQ {
    win: Window2d,
    max: bool,
    unsigned: bool,
    lo: i32,
    hi: i32,
}

impl PoolQ {
    fn run<T: Send + Sync>(&self, x: &[T], out: &mut [T], f: PoolQFn<T>, exec: &Exec) {
        let w = &self.win;
        let row_len = w.w.output * w.out_c;
        let work = out.len() * w.h.kernel * w.w.kernel;
        exec.rows(out, row_len, work, &|r0, o| {
            let rows = r0..r0 + o.len() / row_len.max(1);
            f(w, x, o, rows, self.lo, self.hi)
        });
    }
}

impl OpEval for PoolQ {
    fn eval(&self, ins: &Inputs<'_>, out: &mut [u8], _scratch: &mut [u8], exec: &Exec) {
        let k = PoolKernels::active();
        if self.unsigned {
            let f = if self.max { k.max_u8 } else { k.avg_u8 };
            self.run(ins.bytes(0), out, f, exec);
        } else {
            let x: &[i8] = bytemuck::cast_slice(ins.bytes(0));
            let o: &mut [i8] = bytemuck::cast_slice_mut(out);
            let f = if self.max { k.max_i8 } else { k.avg_i8 };
            self.run(x, o, f, exec);
        }
    }
}
