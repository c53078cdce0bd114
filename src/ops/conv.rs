//! CONV_2D and DEPTHWISE_CONV_2D (NHWC activations; weights [O, kh, kw, I] and [1, kh, kw, O]).

use sparq_kernels::depthwise::{DepthwiseF32 as KDepthwiseF32, DepthwiseQ};
use sparq_kernels::gemm::quantize_rows_asymmetric;
use sparq_kernels::window::{Padding as KPadding, Window2d, WindowSpec};
use sparq_schema::{Activation, DType, OpOptions, Padding};

use super::window::RowSplit;
use super::{act_range_f32, boxed, Ctx, Exec, Inputs, OpEval, Prepared};
use crate::Result;

/// Output size and leading padding of one spatial axis, as TFLite computes them.
pub(crate) fn window_axis(
    padding: Padding,
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
) -> Option<(usize, usize)> {
    let effective = kernel
        .checked_sub(1)?
        .checked_mul(dilation)?
        .checked_add(1)?;
    let out = match padding {
        Padding::Same => input.div_ceil(stride),
        Padding::Valid => input.checked_sub(effective)? / stride + 1,
    };
    let needed = (out.checked_sub(1)?)
        .checked_mul(stride)?
        .checked_add(effective)?;
    let pad = needed.saturating_sub(input) / 2;
    Some((out, pad))
}

/// The spatial geometry shared by convolutions and pools.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geometry {
    pub n: usize,
    pub ih: usize,
    pub iw: usize,
    pub ic: usize,
    pub oh: usize,
    pub ow: usize,
    pub oc: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub dh: usize,
    pub dw: usize,
    pub pad_t: usize,
    pub pad_l: usize,
}

impl Geometry {
    /// Input row `y * sh + ky * dh - pad_t`, if inside the input.
    #[inline]
    pub fn in_y(&self, y: usize, ky: usize) -> Option<usize> {
        (y * self.sh + ky * self.dh)
            .checked_sub(self.pad_t)
            .filter(|&v| v < self.ih)
    }

    #[inline]
    pub fn in_x(&self, x: usize, kx: usize) -> Option<usize> {
        (x * self.sw + kx * self.dw)
            .checked_sub(self.pad_l)
            .filter(|&v| v < self.iw)
    }
}

/// Builds the geometry from an NHWC input, the kernel size and the options.
#[allow(clippy::too_many_arguments)]
pub(crate) fn geometry(
    ctx: &Ctx<'_, '_>,
    input: &[usize],
    kh: usize,
    kw: usize,
    oc: usize,
    padding: Padding,
    strides: (i32, i32),
    dilations: (i32, i32),
) -> Result<Geometry> {
    let pos = |v: i32, what: &str| {
        usize::try_from(v)
            .ok()
            .filter(|&v| v > 0)
            .ok_or_else(|| ctx.err(format!("{what} is {v}, must be positive")))
    };
    let (sh, sw) = (pos(strides.0, "stride_h")?, pos(strides.1, "stride_w")?);
    let (dh, dw) = (
        pos(dilations.0, "dilation_h")?,
        pos(dilations.1, "dilation_w")?,
    );
    let (n, ih, iw, ic) = (input[0], input[1], input[2], input[3]);
    let (oh, pad_t) = window_axis(padding, ih, kh, sh, dh)
        .filter(|&(o, _)| o > 0)
        .ok_or_else(|| ctx.err(format!("window {kh}x{kw} does not fit input {input:?}")))?;
    let (ow, pad_l) = window_axis(padding, iw, kw, sw, dw)
        .filter(|&(o, _)| o > 0)
        .ok_or_else(|| ctx.err(format!("window {kh}x{kw} does not fit input {input:?}")))?;
    Ok(Geometry {
        n,
        ih,
        iw,
        ic,
        oh,
        ow,
        oc,
        kh,
        kw,
        sh,
        sw,
        dh,
        dw,
        pad_t,
        pad_l,
    })
}

/// The f32 bias of a convolution (zeros when absent).
fn bias_f32(ctx: &Ctx<'_, '_>, k: usize, oc: usize) -> Result<Vec<f32>> {
    let Some(t) = ctx.opt_input(k) else {
        return Ok(vec![0.0; oc]);
    };
    if ctx.shape(t).iter().product::<usize>() != oc {
        return Err(ctx.tensor_err(
            t,
            format!("bias has shape {:?}, expected [{oc}]", ctx.shape(t)),
        ));
    }
    ctx.const_f32(t)
}

pub(crate) fn prepare_conv(ctx: &Ctx<'_, '_>) -> Result<Prepared> {
    ctx.expect_inputs(2, 3)?;
    let OpOptions::Conv2d {
        padding,
        stride_h,
        stride_w,
        dilation_h,
        dilation_w,
        activation,
    } = *ctx.options
    else {
        return Err(ctx.err("options are not Conv2d options"));
    };
    let x = ctx.input(0)?;
    let input = ctx.expect_rank(x, 4)?;
    let (w, _) = ctx.const_input(1)?;
    let ws = ctx.expect_rank(w, 4)?;
    let (oc, kh, kw, wic) = (ws[0], ws[1], ws[2], ws[3]);
    if wic != input[3] {
        return Err(ctx.tensor_err(
            w,
            format!("weights {ws:?} do not match input channels {}", input[3]),
        ));
    }
    let g = geometry(
        ctx,
        input,
        kh,
        kw,
        oc,
        padding,
        (stride_h, stride_w),
        (dilation_h, dilation_w),
    )?;
    let shape = vec![g.n, g.oh, g.ow, oc];
    let op = super::gemm::prepare(ctx, g, activation, true)?;
    Ok(op.into_prepared(shape, ctx.dtype(x)))
}

/// Applies a fused activation in place.
#[inline]
pub(crate) fn finish_f32(o: &mut [f32], lo: f32, hi: f32, act: Activation) {
    if act == Activation::Tanh {
        o.iter_mut().for_each(|v| *v = v.tanh());
    } else if act != Activation::None {
        o.iter_mut().for_each(|v| *v = v.max(lo).min(hi));
    }
}

pub(crate) fn prepare_depthwise(ctx: &Ctx<'_, '_>) -> Result<Prepared> {
    ctx.expect_inputs(2, 3)?;
    let OpOptions::DepthwiseConv2d {
        padding,
        stride_h,
        stride_w,
        dilation_h,
        dilation_w,
        depth_multiplier,
        activation,
    } = *ctx.options
    else {
        return Err(ctx.err("options are not DepthwiseConv2d options"));
    };
    let x = ctx.input(0)?;
    let input = ctx.expect_rank(x, 4)?;
    let (w, _) = ctx.const_input(1)?;
    let ws = ctx.expect_rank(w, 4)?;
    let (kh, kw, oc) = (ws[1], ws[2], ws[3]);
    let ic = input[3];
    if ws[0] != 1 || ic == 0 || oc % ic != 0 {
        return Err(ctx.tensor_err(w, format!("weights {ws:?} do not fit input channels {ic}")));
    }
    let mult = oc / ic;
    // TFLite ignores depth_multiplier when the shapes say otherwise; only reject nonsense.
    if depth_multiplier > 0
        && depth_multiplier as usize != mult
        && oc != ic * depth_multiplier as usize
    {
        return Err(ctx.err(format!(
            "depth_multiplier {depth_multiplier} but weights give {mult}"
        )));
    }
    let g = geometry(
        ctx,
        input,
        kh,
        kw,
        oc,
        padding,
        (stride_h, stride_w),
        (dilation_h, dilation_w),
    )?;
    let shape = vec![g.n, g.oh, g.ow, oc];
    match ctx.dtype(x) {
        DType::F32 if ctx.dtype(w) == DType::I8 => {
            let wq = ctx
                .quant(w)
                .ok_or_else(|| ctx.tensor_err(w, "has no quantization"))?;
            if (wq.scales.len() != 1 && wq.scales.len() != oc)
                || wq.zero_points.iter().any(|&z| z != 0)
            {
                return Err(ctx.tensor_err(w, format!("needs 1 or {oc} scales and zero points 0")));
            }
            let (_, wbytes) = ctx.const_input(1)?;
            let weights: Vec<i8> = bytemuck::cast_slice(wbytes).to_vec();
            let w_scales: Vec<f32> = (0..oc)
                .map(|c| wq.scales[if wq.scales.len() == 1 { 0 } else { c }])
                .collect();
            let bias = bias_f32(ctx, 2, oc)?;
            let image = g.ih * g.iw * g.ic;
            // The integer sums run through the f32 depthwise kernel on integer-valued operands:
            // |w| ≤ 127, |q − zp| ≤ 255, so every partial sum of up to 515 taps stays below 2²⁴
            // and is exact in f32 — the result equals the int32 accumulation.
            if kh * kw > 515 {
                return Err(ctx.unsupported(format!("dynamic-range depthwise with {kh}x{kw} taps")));
            }
            let wf: Vec<f32> = weights.iter().map(|&v| v as f32).collect();
            let win = window2d(ctx, &g, padding)?;
            let split = RowSplit::new(win, ctx.threads, |w| {
                KDepthwiseF32::new(w, &wf, None, f32::NEG_INFINITY, f32::INFINITY)
                    .map_err(|e| ctx.err(e.to_string()))
            })?;
            let lay = HybridDwScratch::new(g.n, image);
            Ok(Prepared {
                eval: boxed(DepthwiseHybrid {
                    g,
                    split,
                    w_scales,
                    bias,
                    act: activation,
                    image,
                }),
                shape,
                dtype: DType::F32,
                scratch: lay.total,
            })
        }
        DType::F32 => {
            let wf = ctx.const_f32(w)?;
            let bias = bias_f32(ctx, 2, oc)?;
            let (lo, hi) = act_range_f32(activation);
            let win = window2d(ctx, &g, padding)?;
            let split = RowSplit::new(win, ctx.threads, |w| {
                KDepthwiseF32::new(w, &wf, Some(&bias), lo, hi).map_err(|e| ctx.err(e.to_string()))
            })?;
            let _ = mult;
            Ok(Prepared {
                eval: boxed(DepthwiseF32K {
                    split,
                    act: activation,
                    taps: kh * kw,
                }),
                shape,
                dtype: DType::F32,
                scratch: 0,
            })
        }
        DType::I8 | DType::U8 => {
            let unsigned = ctx.dtype(x) == DType::U8;
            let (in_zp, rq) = super::gemm::conv_requant(ctx, x, w, activation, oc)?;
            let bias = super::gemm::bias_i32(ctx, 2, oc)?;
            let win = window2d(ctx, &g, padding)?;
            let wq = ctx
                .quant(w)
                .ok_or_else(|| ctx.tensor_err(w, "has no quantization"))?;
            let (_, wbytes) = ctx.const_input(1)?;
            match ctx.dtype(w) {
                DType::I8 if wq.zero_points.iter().all(|&z| z == 0) => {}
                DType::U8 if wq.zero_points.len() == 1 => {}
                d => return Err(ctx.tensor_err(w, format!("{d} weights with these zero points"))),
            }
            let make = |win| {
                match ctx.dtype(w) {
                    DType::I8 => DepthwiseQ::new(
                        win,
                        bytemuck::cast_slice(wbytes),
                        bias.as_deref(),
                        in_zp,
                        rq.clone(),
                    ),
                    _ => DepthwiseQ::new_u8(
                        win,
                        wbytes,
                        wq.zero_points[0] as i32,
                        bias.as_deref(),
                        in_zp,
                        rq.clone(),
                    ),
                }
                .map_err(|e| ctx.err(e.to_string()))
            };
            let split = RowSplit::new(win, ctx.threads, make)?;
            Ok(Prepared {
                eval: boxed(DepthwiseQuant {
                    split,
                    unsigned,
                    taps: kh * kw,
                }),
                shape,
                dtype: ctx.dtype(x),
                scratch: 0,
            })
        }
        d => Err(ctx.unsupported(format!("{d} input"))),
    }
}

/// The kernel crate's window for a geometry.
fn window2d(ctx: &Ctx<'_, '_>, g: &Geometry, padding: Padding) -> Result<Window2d> {
    let mut spec = WindowSpec::new(g.n, g.ih, g.iw, g.ic, g.oc);
    (spec.k_h, spec.k_w) = (g.kh, g.kw);
    (spec.stride_h, spec.stride_w) = (g.sh, g.sw);
    (spec.dilation_h, spec.dilation_w) = (g.dh, g.dw);
    spec.padding = match padding {
        Padding::Same => KPadding::Same,
        Padding::Valid => KPadding::Valid,
    };
    Window2d::new(spec).map_err(|e| ctx.err(e.to_string()))
}

/// Integer depthwise convolution on the kernel crate's TFLite-exact kernel, split by rows.
struct DepthwiseQuant {
    split: RowSplit<DepthwiseQ>,
    unsigned: bool,
    taps: usize,
}

impl OpEval for DepthwiseQuant {
    fn eval(&self, ins: &Inputs<'_>, out: &mut [u8], _scratch: &mut [u8], exec: &Exec) {
        let work = out.len() * self.taps;
        if self.unsigned {
            self.split
                .run::<u8>(exec, ins.bytes(0), out, work, &|k, x, o, r| {
                    k.run::<u8>(x, o, r)
                });
        } else {
            let x: &[i8] = bytemuck::cast_slice(ins.bytes(0));
            let o: &mut [i8] = bytemuck::cast_slice_mut(out);
            self.split
                .run::<i8>(exec, x, o, work, &|k, x, o, r| k.run::<i8>(x, o, r));
        }
    }
}

/// f32 depthwise convolution on the kernel crate's kernel, split by rows.
struct DepthwiseF32K {
    split: RowSplit<KDepthwiseF32>,
    act: Activation,
    taps: usize,
}

impl OpEval for DepthwiseF32K {
    fn eval(&self, ins: &Inputs<'_>, out: &mut [u8], _scratch: &mut [u8], exec: &Exec) {
        let x = ins.f32(0);
        let out: &mut [f32] = bytemuck::cast_slice_mut(out);
        let work = out.len() * self.taps;
        let act = self.act;
        self.split.run::<f32>(exec, x, out, work, &|k, x, o, r| {
            k.run(x, o, r);
            if act == Activation::Tanh {
                finish_f32(o, f32::NEG_INFINITY, f32::INFINITY, act);
            }
        });
    }
}

/// Scratch layout of the dynamic-range depthwise: int8 codes, centred f32 codes, per-image
/// scales and zero points.
struct HybridDwScratch {
    centred_at: usize,
    scales_at: usize,
    zps_at: usize,
    total: usize,
}

impl HybridDwScratch {
    fn new(n: usize, image: usize) -> HybridDwScratch {
        let a = |v: usize| v.next_multiple_of(64);
        let centred_at = a(n * image);
        let scales_at = centred_at + a(n * image * 4);
        let zps_at = scales_at + a(n * 4);
        HybridDwScratch {
            centred_at,
            scales_at,
            zps_at,
            total: zps_at + a(n * 4),
        }
    }
}

/// Dynamic-range depthwise convolution (TFLite's hybrid per-channel kernel): each input image
/// is quantized to int8 (asymmetric), taps inside the image accumulate `w · (q − zp)`, and the
/// sum is scaled by `w_scale[c] · image_scale`, biased and clamped in f32.
struct DepthwiseHybrid {
    g: Geometry,
    split: RowSplit<KDepthwiseF32>,
    w_scales: Vec<f32>,
    bias: Vec<f32>,
    act: Activation,
    image: usize,
}

impl OpEval for DepthwiseHybrid {
    fn eval(&self, ins: &Inputs<'_>, out: &mut [u8], scratch: &mut [u8], exec: &Exec) {
        let g = &self.g;
        let x = ins.f32(0);
        let out: &mut [f32] = bytemuck::cast_slice_mut(out);
        let lay = HybridDwScratch::new(g.n, self.image);
        let (q, rest) = scratch.split_at_mut(lay.centred_at);
        let (xc, rest) = rest.split_at_mut(lay.scales_at - lay.centred_at);
        let (sc, zp) = rest.split_at_mut(lay.zps_at - lay.scales_at);
        let len = g.n * self.image;
        let q: &mut [i8] = &mut bytemuck::cast_slice_mut(q)[..len];
        let xc: &mut [f32] = &mut super::cast_mut(xc)[..len];
        let scales: &mut [f32] = &mut super::cast_mut(sc)[..g.n];
        let zps: &mut [i32] = &mut super::cast_mut(zp)[..g.n];
        quantize_rows_asymmetric(x, self.image, g.n, self.image, q, self.image, scales, zps);
        for (b, (c, qi)) in xc
            .chunks_mut(self.image)
            .zip(q.chunks(self.image))
            .enumerate()
        {
            let z = zps[b];
            for (o, &v) in c.iter_mut().zip(qi) {
                *o = (v as i32 - z) as f32;
            }
        }
        let (xc, scales): (&[f32], &[f32]) = (xc, scales);
        let work = out.len() * g.kh * g.kw;
        self.split
            .run::<f32>(exec, xc, out, work, &|k, x, o, r| k.run(x, o, r));
        let (lo, hi) = act_range_f32(self.act);
        let plane = g.oh * g.ow * g.oc;
        let oc = g.oc;
        exec.rows(out, oc, out.len(), &|p0, o| {
            let (ws, bias) = (&self.w_scales[..oc], &self.bias[..oc]);
            for (pi, px) in o.chunks_exact_mut(oc).enumerate() {
                let s = scales[(p0 + pi) * oc / plane];
                for ((v, &w), &b) in px.iter_mut().zip(ws).zip(bias) {
                    *v = *v * (w * s) + b;
                }
                finish_f32(px, lo, hi, self.act);
            }
        });
    }
}
