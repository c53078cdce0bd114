//! CONV_2D and FULLY_CONNECTED on the packed GEMM kernels: f32, int8 and legacy uint8.
//!
//! A convolution is `out[pixels × O] = im2col(x)[pixels × K] · W[O × K]ᵀ` with `K = kh·kw·I`
//! (weights as TFLite stores them, [O, kh, kw, I], are already O × K row-major). A 1×1 stride-1
//! convolution and a fully-connected layer read the input in place; other convolutions gather
//! their rows into the op's scratch first (padding filled with the input zero point, so it adds
//! nothing). Rows (output pixels) are split across threads; each thread gathers and multiplies
//! its own rows, so the result does not depend on the thread count.

use sparq_kernels::conv::direct::{DirectF32, DirectI8};
use sparq_kernels::gemm::{
    gemm_f32, gemm_i8, gemm_i8_hybrid, quantize_rows_asymmetric, quantize_rows_symmetric, ActQuant,
    HybridParams, PackedF32, PackedI8, Q8,
};
use sparq_kernels::requant::{activation_range, Activation as KAct, Requant};
use sparq_kernels::sparse::{BlockShape, Bsr, Csr, SparseWeights};
use sparq_kernels::spmm::{self, prefer_sparse, sparse_layout, Dtype as SpDtype, SparseLayout};
use sparq_kernels::window::{Axis, Window2d};
use sparq_schema::{Activation, DType, SparseFormat};

use super::conv::{finish_f32, Geometry};
use super::quant::per_tensor;
use super::{act_range_f32, boxed, elements, Ctx, Exec, Inputs, OpEval, Prepared};
use crate::Result;

enum Kind {
    /// Dynamic-range: f32 activations quantized to int8 at run time (per row for a
    /// fully-connected layer, per image for a convolution, as TFLite), int8 weights, f32 out.
    Hybrid {
        packed: PackedI8,
        w_scales: Vec<f32>,
        bias: Option<Vec<f32>>,
        lo: f32,
        hi: f32,
        act: Activation,
        asymmetric: bool,
        /// Quantize per image (convolution) rather than per GEMM row.
        per_image: bool,
    },
    F32 {
        packed: PackedF32,
        lo: f32,
        hi: f32,
        act: Activation,
    },
    I8 {
        packed: PackedI8,
        rq: Requant,
        zp: i8,
    },
    U8 {
        packed: PackedI8,
        rq: Requant,
        zp: u8,
    },
    /// A convolution with few input channels (window rows of at most `MAX_RUN` values) on the
    /// direct kernels, where the CPU has them: no im2col. int8 activations with symmetric int8
    /// weights (legacy uint8 stays on im2col + GEMM) and f32.
    DirectI8(DirectI8),
    DirectF32 {
        conv: DirectF32,
        lo: f32,
        hi: f32,
        act: Activation,
    },
    /// f32 weights stored sparse, on the sparse × dense kernels (1×1 convolution or
    /// fully-connected layer: the input rows are the GEMM rows).
    SparseF32 {
        packed: spmm::PackedF32,
        lo: f32,
        hi: f32,
        act: Activation,
        scratch: SparseScratch,
    },
    /// Symmetric int8 weights stored sparse, int8 or uint8 activations, on the sparse kernels
    /// (same integer sums and `Requant` epilogue as the dense kernel: identical outputs).
    SparseQ {
        packed: spmm::PackedI8,
        rq: Requant,
        unsigned: bool,
        scratch: SparseScratch,
    },
}

/// The sparse kernels' scratch (4-byte elements): `per_row` per output row of a task, so every
/// task of the row split gets at least the kernel's `scratch_len`; `total` in all.
#[derive(Clone, Copy)]
struct SparseScratch {
    per_row: usize,
    total: usize,
}

impl SparseScratch {
    /// `None` on overflow.
    fn new(need: usize, m: usize, threads: usize) -> Option<SparseScratch> {
        // Sized for the smallest tasks (each gets at least `need`) and, in total, for every
        // task size the split may choose.
        let sizes = super::task_sizes(m, threads);
        let per_row = need.div_ceil(sizes[0]);
        let mut total = need;
        for per in sizes {
            total = total.max(m.div_ceil(per).checked_mul(per)?.checked_mul(per_row)?);
        }
        total.checked_mul(4)?;
        Some(SparseScratch { per_row, total })
    }
}

pub(crate) struct GemmOp {
    g: Geometry,
    /// Gather rows (im2col) into scratch; false when the input rows are the GEMM rows.
    im2col: bool,
    k: usize,
    kind: Kind,
    /// Dense f32 / 8-bit kinds with im2col: the gathered-rows scratch (elements of the input
    /// type), sized for one block of [`im2col_block_rows`] per task rather than a whole image.
    /// Direct kinds: each task's staging scratch (`scratch_len` elements).
    gather: SparseScratch,
    /// Dense f32 / 8-bit kinds with one GEMM row (a classifier head, a squeeze-excite layer):
    /// the threads the row's columns are split over (0: no column split). Each task computes
    /// its columns into its own `oc` elements of scratch and copies them out, since the kernel
    /// addresses output columns absolutely.
    col_tasks: usize,
}

/// Whether a convolution reads its input rows in place (1×1 window, stride 1, no padding).
pub(crate) fn direct(g: &Geometry) -> bool {
    g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.pad_t == 0 && g.pad_l == 0
}

/// An upper bound on the bytes of `n × k` weights packed for any GEMM kernel (output channels
/// padded to the widest tile, depth to 16, plus per-channel sums and bias), `elem` bytes each.
pub(crate) fn packed_bytes(n: usize, k: usize, elem: usize) -> Option<usize> {
    let np = n.checked_next_multiple_of(sparq_kernels::gemm::NR_MAX)?;
    let kp = k.checked_next_multiple_of(16)?;
    np.checked_mul(kp)?
        .checked_mul(elem)?
        .checked_add(np.checked_mul(8)?)
}

/// The kernel's fused activation, or `None` for one it cannot fold (tanh).
fn kernel_act(a: Activation) -> Option<KAct> {
    match a {
        Activation::None => Some(KAct::None),
        Activation::Relu => Some(KAct::Relu),
        Activation::ReluN1To1 => Some(KAct::ReluN1To1),
        Activation::Relu6 => Some(KAct::Relu6),
        Activation::Tanh => None,
    }
}

/// Prepares the GEMM of a convolution (`g`) or fully-connected layer (`g` 1×1 over `n` rows)
/// from input 0 (activations), input 1 (weights, O × K) and optional input 2 (bias).
pub(crate) fn prepare(
    ctx: &Ctx<'_, '_>,
    g: Geometry,
    act: Activation,
    asymmetric: bool,
) -> Result<GemmOp> {
    let x = ctx.input(0)?;
    let (w, wbytes) = ctx.const_input(1)?;
    let (n, k) = (g.oc, g.kh * g.kw * g.ic);
    if n == 0 {
        return Err(ctx.tensor_err(w, "has no output channels"));
    }
    if elements(ctx.shape(w)) != n * k {
        return Err(ctx.tensor_err(w, format!("weights {:?} are not {n} × {k}", ctx.shape(w))));
    }
    let im2col = !direct(&g);
    // Packed weights, charged before packing: f32 (a widened copy and the packed one) or int8.
    let elem = if ctx.dtype(x) == DType::F32 && ctx.dtype(w) != DType::I8 {
        8
    } else {
        1
    };
    ctx.charge(w, packed_bytes(n, k, elem))?;
    if let Some(kind) = prepare_sparse(ctx, &g, act, n, k)? {
        return GemmOp::new(ctx, g, im2col, k, kind);
    }
    let kind = match ctx.dtype(x) {
        DType::F32 => {
            if ctx.dtype(w) == DType::I8 {
                return prepare_hybrid(ctx, g, act, asymmetric, im2col, n, k);
            }
            let wf = ctx.const_f32(w)?;
            let bias = match ctx.opt_input(2) {
                Some(b) => {
                    if elements(ctx.shape(b)) != n {
                        return Err(ctx.tensor_err(b, format!("bias is not [{n}]")));
                    }
                    Some(ctx.const_f32(b)?)
                }
                None => None,
            };
            let (lo, hi) = act_range_f32(act);
            let direct = match im2col {
                true => DirectF32::new(window(&g), &wf, bias.as_deref(), lo, hi)
                    .map_err(|e| ctx.err(e.to_string()))?,
                false => None,
            };
            if let Some(conv) = direct {
                Kind::DirectF32 { conv, lo, hi, act }
            } else {
                let packed = PackedF32::new(&wf, n, k, bias.as_deref())
                    .map_err(|e| ctx.err(e.to_string()))?;
                Kind::F32 {
                    packed,
                    lo,
                    hi,
                    act,
                }
            }
        }
        DType::I8 | DType::U8 => {
            let unsigned = ctx.dtype(x) == DType::U8;
            let (in_zp, rq) = conv_requant(ctx, x, w, act, n)?;
            let wq = ctx
                .quant(w)
                .ok_or_else(|| ctx.tensor_err(w, "has no quantization"))?;
            let bias = bias_i32(ctx, 2, n)?;
            let symmetric_i8 = ctx.dtype(w) == DType::I8 && wq.zero_points.iter().all(|&z| z == 0);
            if im2col && !unsigned && symmetric_i8 {
                let wt: &[i8] = bytemuck::cast_slice(wbytes);
                let direct = DirectI8::new(window(&g), wt, bias.as_deref(), in_zp, rq.clone())
                    .map_err(|e| ctx.err(e.to_string()))?;
                if let Some(conv) = direct {
                    return GemmOp::new(ctx, g, im2col, k, Kind::DirectI8(conv));
                }
            }
            let aq = if unsigned {
                ActQuant::u8(in_zp)
            } else {
                ActQuant::i8(in_zp)
            };
            let packed = match ctx.dtype(w) {
                DType::I8 => {
                    if wq.zero_points.iter().any(|&z| z != 0) {
                        return Err(ctx.unsupported("int8 weights with a nonzero zero point"));
                    }
                    PackedI8::new(bytemuck::cast_slice(wbytes), n, k, bias.as_deref(), aq)
                }
                DType::U8 => {
                    if wq.zero_points.len() != 1 {
                        return Err(ctx.unsupported("per-channel uint8 weights"));
                    }
                    PackedI8::new_u8(wbytes, wq.zero_points[0] as i32, n, k, bias.as_deref(), aq)
                }
                d => {
                    return Err(ctx.tensor_err(
                        w,
                        format!("is {d}; integer inputs need int8 or uint8 weights"),
                    ))
                }
            }
            .map_err(|e| ctx.err(e.to_string()))?;
            if unsigned {
                let zp = u8::try_from(in_zp)
                    .map_err(|_| ctx.tensor_err(x, "zero point outside uint8"))?;
                Kind::U8 { packed, rq, zp }
            } else {
                let zp = i8::try_from(in_zp)
                    .map_err(|_| ctx.tensor_err(x, "zero point outside int8"))?;
                Kind::I8 { packed, rq, zp }
            }
        }
        d => return Err(ctx.unsupported(format!("{d} input"))),
    };
    GemmOp::new(ctx, g, im2col, k, kind)
}

/// The kernel crate's window of a convolution's geometry.
fn window(g: &Geometry) -> Window2d {
    let axis = |input, output, kernel, stride, dilation, pad_before| Axis {
        input,
        output,
        kernel,
        stride,
        dilation,
        pad_before,
    };
    Window2d {
        batch: g.n,
        h: axis(g.ih, g.oh, g.kh, g.sh, g.dh, g.pad_t),
        w: axis(g.iw, g.ow, g.kw, g.sw, g.dw, g.pad_l),
        in_c: g.ic,
        out_c: g.oc,
    }
}

/// The validated kernel view of a sparse weight with `values` (the view's, typed).
pub(crate) fn sparse_weights<'v, T: Copy>(
    v: &'v crate::SparseView<'_>,
    values: &'v [T],
) -> Option<SparseWeights<'v, T>> {
    let (br, bc) = v.block();
    match v.format {
        SparseFormat::Csr => Csr::new(v.rows, v.cols, v.row_ptr, v.col_idx, values)
            .ok()
            .map(SparseWeights::Csr),
        _ => Bsr::new(
            v.rows,
            v.cols,
            BlockShape::new(br, bc),
            v.row_ptr,
            v.col_idx,
            values,
        )
        .ok()
        .map(SparseWeights::Bsr),
    }
}

/// The sparse-kernel form of a layer that reads its input rows in place and whose weight is
/// stored sparse, when [`crate::SparseRoute`] and `prefer_sparse` choose it; `None`: dense.
fn prepare_sparse(
    ctx: &Ctx<'_, '_>,
    g: &Geometry,
    act: Activation,
    n: usize,
    k: usize,
) -> Result<Option<Kind>> {
    if ctx.route == crate::SparseRoute::Dense || !direct(g) {
        return Ok(None);
    }
    let (x, w) = (ctx.input(0)?, ctx.input(1)?);
    let Some(view) = ctx.sparse(w) else {
        return Ok(None);
    };
    if view.rows != n || view.cols != k {
        return Ok(None);
    }
    let symmetric = ctx
        .quant(w)
        .is_some_and(|q| q.zero_points.iter().all(|&z| z == 0));
    let dtype = match (ctx.dtype(x), ctx.dtype(w)) {
        (DType::F32, DType::F32) => SpDtype::F32,
        (DType::I8 | DType::U8, DType::I8) if symmetric => SpDtype::I8,
        _ => return Ok(None),
    };
    let (br, bc) = view.block();
    let block = BlockShape::new(br, bc);
    let density = (1.0 - view.sparsity()) as f32;
    let m = g.n * g.oh * g.ow;
    if ctx.route == crate::SparseRoute::Auto && !prefer_sparse(dtype, m, k, n, block, density) {
        return Ok(None);
    }
    let scratch = |need: usize| {
        SparseScratch::new(need, m, ctx.threads)
            .ok_or_else(|| ctx.err("sparse kernel scratch size overflows"))
    };
    let kind = match sparse_layout(dtype, block) {
        SparseLayout::F32(layout) => {
            let values: Vec<f32> = view
                .values
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            let Some(sw) = sparse_weights(view, &values) else {
                return Ok(None);
            };
            let bias = match ctx.opt_input(2) {
                Some(b) => {
                    if elements(ctx.shape(b)) != n {
                        return Err(ctx.tensor_err(b, format!("bias is not [{n}]")));
                    }
                    Some(ctx.const_f32(b)?)
                }
                None => None,
            };
            let packed = spmm::PackedF32::new(&sw, bias.as_deref(), layout)
                .map_err(|e| ctx.tensor_err(w, e))?;
            let (lo, hi) = act_range_f32(act);
            let scratch = scratch(packed.scratch_len())?;
            Kind::SparseF32 {
                packed,
                lo,
                hi,
                act,
                scratch,
            }
        }
        SparseLayout::I8(layout) => {
            let Some(sw) = sparse_weights(view, bytemuck::cast_slice::<u8, i8>(view.values)) else {
                return Ok(None);
            };
            let unsigned = ctx.dtype(x) == DType::U8;
            let (in_zp, rq) = conv_requant(ctx, x, w, act, n)?;
            let bias = bias_i32(ctx, 2, n)?;
            let packed = if unsigned {
                spmm::PackedI8::new_u8(&sw, bias.as_deref(), in_zp, layout)
            } else {
                spmm::PackedI8::new(&sw, bias.as_deref(), in_zp, layout)
            }
            .map_err(|e| ctx.tensor_err(x, e))?;
            let scratch = scratch(packed.scratch_len())?;
            Kind::SparseQ {
                packed,
                rq,
                unsigned,
                scratch,
            }
        }
    };
    Ok(Some(kind))
}

/// The output requantization of an integer convolution or fully-connected layer, as TFLite's
/// `PopulateConvolutionQuantizationParams`: multiplier `in_scale · w_scale[c] / out_scale` in
/// f64 per channel (or one, per-tensor), the fused activation folded into the clamp. Returns the
/// input zero point too.
pub(crate) fn conv_requant(
    ctx: &Ctx<'_, '_>,
    x: usize,
    w: usize,
    act: Activation,
    n: usize,
) -> Result<(i32, Requant)> {
    let unsigned = ctx.dtype(x) == DType::U8;
    let y = ctx.output();
    let (in_scale, in_zp) = per_tensor(ctx, x)?;
    let (out_scale, out_zp) = per_tensor(ctx, y)?;
    let wq = ctx
        .quant(w)
        .ok_or_else(|| ctx.tensor_err(w, "has no quantization"))?;
    if wq.scales.len() != 1 && wq.scales.len() != n {
        return Err(ctx.tensor_err(w, format!("{} scales for {n} channels", wq.scales.len())));
    }
    let reals: Vec<f64> = wq
        .scales
        .iter()
        .map(|&ws| in_scale as f64 * ws as f64 / out_scale as f64)
        .collect();
    let kact = kernel_act(act)
        .ok_or_else(|| ctx.unsupported(format!("fused {act:?} on an integer output")))?;
    let (qmin, qmax) = if unsigned { (0, 255) } else { (-128, 127) };
    let (lo, hi) = activation_range(kact, out_scale, out_zp, qmin, qmax);
    let rq = Requant::from_real(&reals, out_zp, lo, hi)
        .map_err(|e| ctx.err(format!("output requantization: {e}")))?;
    Ok((in_zp, rq))
}

/// The int32 bias (input `k`, optional) of an integer convolution with `n` channels.
pub(crate) fn bias_i32(ctx: &Ctx<'_, '_>, k: usize, n: usize) -> Result<Option<Vec<i32>>> {
    let Some(b) = ctx.opt_input(k) else {
        return Ok(None);
    };
    if ctx.dtype(b) != DType::I32 || elements(ctx.shape(b)) != n {
        return Err(ctx.tensor_err(b, format!("bias must be i32 [{n}]")));
    }
    let bb = ctx
        .const_bytes(b)
        .ok_or_else(|| ctx.unsupported("a non-constant bias"))?;
    Ok(Some(bytemuck::cast_slice::<u8, i32>(bb).to_vec()))
}

/// The dynamic-range GEMM: int8 weights (per-channel or per-tensor scales, zero point 0).
fn prepare_hybrid(
    ctx: &Ctx<'_, '_>,
    g: Geometry,
    act: Activation,
    asymmetric: bool,
    im2col: bool,
    n: usize,
    k: usize,
) -> Result<GemmOp> {
    let (w, wbytes) = ctx.const_input(1)?;
    let wq = ctx
        .quant(w)
        .ok_or_else(|| ctx.tensor_err(w, "has no quantization"))?;
    if (wq.scales.len() != 1 && wq.scales.len() != n) || wq.zero_points.iter().any(|&z| z != 0) {
        return Err(ctx.tensor_err(w, format!("needs 1 or {n} scales and zero points 0")));
    }
    let bias = match ctx.opt_input(2) {
        Some(b) => {
            if elements(ctx.shape(b)) != n {
                return Err(ctx.tensor_err(b, format!("bias is not [{n}]")));
            }
            Some(ctx.const_f32(b)?)
        }
        None => None,
    };
    let packed = PackedI8::new(bytemuck::cast_slice(wbytes), n, k, None, ActQuant::i8(0))
        .map_err(|e| ctx.err(e.to_string()))?;
    let (lo, hi) = act_range_f32(act);
    // A convolution quantizes each input image; a fully-connected layer each row.
    let per_image = !(g.ih == 1 && g.iw == 1 && g.kh == 1 && g.kw == 1);
    let kind = Kind::Hybrid {
        packed,
        w_scales: wq.scales.clone(),
        bias,
        lo,
        hi,
        act,
        asymmetric,
        per_image,
    };
    GemmOp::new(ctx, g, im2col, k, kind)
}

impl GemmOp {
    fn new(ctx: &Ctx<'_, '_>, g: Geometry, im2col: bool, k: usize, kind: Kind) -> Result<GemmOp> {
        let elem = match kind {
            Kind::F32 { .. } => 4,
            Kind::I8 { .. } | Kind::U8 { .. } => 1,
            _ => 0,
        };
        let mut gather = SparseScratch {
            per_row: 0,
            total: 0,
        };
        let direct_need = match &kind {
            Kind::DirectI8(c) => Some(c.scratch_len()),
            Kind::DirectF32 { conv, .. } => Some(conv.scratch_len()),
            _ => None,
        };
        if let Some(need) = direct_need {
            let m = g.n * g.oh * g.ow;
            gather = SparseScratch::new(need, m, ctx.threads)
                .ok_or_else(|| ctx.err("direct convolution scratch size overflows"))?;
        } else if im2col && elem != 0 {
            let m = g.n * g.oh * g.ow;
            let block = im2col_block_rows(k, elem);
            let smallest = super::task_sizes(m, ctx.threads)[0];
            gather = block
                .min(smallest)
                .checked_mul(k)
                .and_then(|need| SparseScratch::new(need, m, ctx.threads))
                .ok_or_else(|| ctx.err("im2col scratch size overflows"))?;
        }
        let one_row = g.n * g.oh * g.ow == 1;
        let dense = matches!(kind, Kind::F32 { .. } | Kind::I8 { .. } | Kind::U8 { .. });
        let col_tasks = if one_row && !im2col && dense && ctx.threads > 1 {
            ctx.threads
        } else {
            0
        };
        Ok(GemmOp {
            g,
            im2col,
            k,
            kind,
            gather,
            col_tasks,
        })
    }
}

/// Byte offsets of the hybrid scratch parts: quantized input, gathered rows, row scales, row
/// zero points; and the total.
struct HybridScratch {
    rows_at: usize,
    scales_at: usize,
    zps_at: usize,
    total: usize,
}

impl GemmOp {
    fn hybrid_scratch(&self) -> HybridScratch {
        let g = &self.g;
        let m = g.n * g.oh * g.ow;
        let input = g.n * g.ih * g.iw * g.ic;
        let a = |v: usize| v.next_multiple_of(64);
        let rows_at = a(input);
        let scales_at = rows_at + if self.im2col { a(m * self.k) } else { 0 };
        let zps_at = scales_at + a(m * 4);
        HybridScratch {
            rows_at,
            scales_at,
            zps_at,
            total: zps_at + a(m * 4),
        }
    }

    /// Scratch bytes for the gathered rows (and, dynamic-range, the quantized input);
    /// `usize::MAX` when the size overflows (the arena plan then refuses it).
    pub(crate) fn scratch(&self) -> usize {
        if let Kind::SparseF32 { scratch, .. } | Kind::SparseQ { scratch, .. } = &self.kind {
            return scratch.total * 4;
        }
        let g = &self.g;
        let bound = (|| {
            let m = g.n.checked_mul(g.oh)?.checked_mul(g.ow)?;
            let input =
                g.n.checked_mul(g.ih)?
                    .checked_mul(g.iw)?
                    .checked_mul(g.ic)?;
            m.checked_mul(self.k)?
                .checked_mul(4)?
                .checked_add(input)?
                .checked_add(m.checked_mul(8)?)?
                .checked_add(4 * 64)
        })();
        if bound.is_none() {
            return usize::MAX;
        }
        if matches!(self.kind, Kind::Hybrid { .. }) {
            return self.hybrid_scratch().total;
        }
        let elem = if matches!(self.kind, Kind::F32 { .. } | Kind::DirectF32 { .. }) {
            4
        } else {
            1
        };
        if !self.im2col {
            return self
                .col_tasks
                .checked_mul(g.oc)
                .and_then(|v| v.checked_mul(elem))
                .unwrap_or(usize::MAX);
        }
        self.gather.total * elem
    }

    pub(crate) fn into_prepared(self, shape: Vec<usize>, dtype: DType) -> Prepared {
        let scratch = self.scratch();
        Prepared {
            eval: boxed(self),
            shape,
            dtype,
            scratch,
        }
    }
}

/// Gathers the im2col rows of output pixels `p0..p0 + rows` into `dst` (`k` elements each).
fn im2col<T: Copy>(g: &Geometry, x: &[T], p0: usize, dst: &mut [T], pad: T) {
    let k = g.kh * g.kw * g.ic;
    let run = g.kw * g.ic;
    let plane = g.oh * g.ow;
    let (mut b, mut y, mut xo) = (p0 / plane, (p0 / g.ow) % g.oh, p0 % g.ow);
    for row in dst.chunks_exact_mut(k) {
        // Leftmost input column of the window; with dilation 1 and the window inside the
        // image, the kw taps of one kernel row are one contiguous run of kw·ic values.
        let x0 = (xo * g.sw) as isize - g.pad_l as isize;
        let inside = g.dw == 1 && x0 >= 0 && x0 as usize + g.kw <= g.iw;
        for ky in 0..g.kh {
            let iy = g.in_y(y, ky);
            let d = &mut row[ky * run..(ky + 1) * run];
            match iy {
                Some(iy) if inside => {
                    let at = ((b * g.ih + iy) * g.iw + x0 as usize) * g.ic;
                    copy_run(d, &x[at..at + run]);
                }
                Some(iy) => {
                    for kx in 0..g.kw {
                        let dk = &mut d[kx * g.ic..(kx + 1) * g.ic];
                        match g.in_x(xo, kx) {
                            Some(ix) => {
                                copy_run(dk, &x[((b * g.ih + iy) * g.iw + ix) * g.ic..][..g.ic])
                            }
                            None => dk.fill(pad),
                        }
                    }
                }
                None => d.fill(pad),
            }
        }
        xo += 1;
        if xo == g.ow {
            xo = 0;
            y += 1;
            if y == g.oh {
                y = 0;
                b += 1;
            }
        }
    }
}

/// `d.copy_from_slice(s)` without a library call for the short runs of a convolution with few
/// input channels (the first layer of most CNNs: 3 channels, runs of 9 values), where the call
/// costs more than the copy.
#[inline(always)]
fn copy_run<T: Copy>(d: &mut [T], s: &[T]) {
    let n = d.len();
    if n >= 64 {
        d.copy_from_slice(s);
        return;
    }
    let s = &s[..n];
    if n < 8 {
        for (a, b) in d.iter_mut().zip(s) {
            *a = *b;
        }
        return;
    }
    // Blocks of 8, the last one overlapping the one before it: no remainder loop.
    let mut i = 0;
    loop {
        let at = i.min(n - 8);
        let b: &[T; 8] = s[at..at + 8].try_into().expect("block of 8");
        let a: &mut [T; 8] = (&mut d[at..at + 8]).try_into().expect("block of 8");
        *a = *b;
        if at + 8 == n {
            break;
        }
        i += 8;
    }
}

/// Output pixels gathered per im2col block: the block of A stays in L1/L2 while the GEMM reads
/// it, instead of a whole image of windows written out and read back (at least 64 rows, the
/// GEMM's row pass).
fn im2col_block_rows(k: usize, elem: usize) -> usize {
    ((48 * 1024) / (k * elem).max(1)).clamp(64, 1024) / 64 * 64
}

/// Output pixels `p0..` (the rows of `out`) in blocks of [`im2col_block_rows`]: each block's
/// windows gathered into `scratch`, then `gemm(windows, out_block, pixels)`.
#[allow(clippy::too_many_arguments)]
fn im2col_blocks<T: Copy, U>(
    g: &Geometry,
    k: usize,
    x: &[T],
    p0: usize,
    out: &mut [U],
    scratch: &mut [T],
    pad: T,
    gemm: impl Fn(&[T], &mut [U], usize),
) {
    let block = im2col_block_rows(k, std::mem::size_of::<T>());
    for (b, ob) in out.chunks_mut(block * g.oc).enumerate() {
        let n = ob.len() / g.oc;
        let a = &mut scratch[..n * k];
        im2col(g, x, p0 + b * block, a, pad);
        gemm(a, ob, n);
    }
}

#[allow(clippy::too_many_arguments)]
fn run_q<T: Q8>(
    op: &GemmOp,
    x: &[T],
    out: &mut [T],
    scratch: &mut [T],
    packed: &PackedI8,
    rq: &Requant,
    zp: T,
    exec: &Exec,
) {
    let (g, k, oc) = (&op.g, op.k, op.g.oc);
    let work = out.len() * k;
    if op.col_tasks > 0 {
        let nr = packed.kernel().nr;
        let split = exec.cols_with_scratch(out, nr, scratch, oc, work, &|c0, o, s| {
            let cols = c0..c0 + o.len();
            gemm_i8(&x[..k], k, packed, rq, s, oc, 0..1, cols.clone());
            o.copy_from_slice(&s[cols]);
        });
        if split {
            return;
        }
    }
    let srow = op.gather.per_row;
    exec.rows_with_scratch(out, oc, scratch, srow, work, &|p0, o, s| {
        let rows = o.len() / oc;
        if !op.im2col {
            gemm_i8(
                &x[p0 * k..(p0 + rows) * k],
                k,
                packed,
                rq,
                o,
                oc,
                0..rows,
                0..oc,
            );
            return;
        }
        im2col_blocks(g, k, x, p0, o, s, zp, |a, ob, n| {
            gemm_i8(a, k, packed, rq, ob, oc, 0..n, 0..oc)
        });
    });
}

impl OpEval for GemmOp {
    fn kernel(&self) -> Option<&'static str> {
        match &self.kind {
            Kind::SparseF32 { packed, .. } => Some(packed.kernel_name()),
            Kind::SparseQ { packed, .. } => Some(packed.kernel_name()),
            _ => None,
        }
    }

    fn eval(&self, ins: &Inputs<'_>, out: &mut [u8], scratch: &mut [u8], exec: &Exec) {
        let (g, k, oc) = (&self.g, self.k, self.g.oc);
        match &self.kind {
            Kind::SparseF32 {
                packed,
                lo,
                hi,
                act,
                scratch: lay,
            } => {
                let x = ins.f32(0);
                let out: &mut [f32] = bytemuck::cast_slice_mut(out);
                let scratch: &mut [f32] = super::cast_mut(scratch);
                let work = out.len() * k;
                exec.rows_with_scratch(out, oc, scratch, lay.per_row, work, &|p0, o, s| {
                    let rows = o.len() / oc;
                    let a = &x[p0 * k..(p0 + rows) * k];
                    packed.run(a, k, 0..rows, o, oc, *lo, *hi, s);
                    if *act == Activation::Tanh {
                        finish_f32(o, *lo, *hi, *act);
                    }
                });
            }
            Kind::SparseQ {
                packed,
                rq,
                unsigned,
                scratch: lay,
            } => {
                let scratch: &mut [u32] = super::cast_mut(scratch);
                let work = out.len() * k;
                let x = ins.bytes(0);
                let f = |p0: usize, o: &mut [u8], s: &mut [u32]| {
                    let rows = o.len() / oc;
                    let a = &x[p0 * k..(p0 + rows) * k];
                    if *unsigned {
                        packed.run_u8(a, k, 0..rows, o, oc, rq, s);
                    } else {
                        let (a, o) = (bytemuck::cast_slice(a), bytemuck::cast_slice_mut(o));
                        packed.run(a, k, 0..rows, o, oc, rq, s);
                    }
                };
                exec.rows_with_scratch(out, oc, scratch, lay.per_row, work, &f);
            }
            Kind::F32 {
                packed,
                lo,
                hi,
                act,
            } => {
                let x = ins.f32(0);
                let out: &mut [f32] = bytemuck::cast_slice_mut(out);
                let scratch: &mut [f32] = super::cast_mut(scratch);
                let work = out.len() * k;
                if self.col_tasks > 0 {
                    let nr = packed.kernel().nr;
                    let split = exec.cols_with_scratch(out, nr, scratch, oc, work, &|c0, o, s| {
                        let cols = c0..c0 + o.len();
                        gemm_f32(&x[..k], k, packed, *lo, *hi, s, oc, 0..1, cols.clone());
                        o.copy_from_slice(&s[cols]);
                        if *act == Activation::Tanh {
                            finish_f32(o, *lo, *hi, *act);
                        }
                    });
                    if split {
                        return;
                    }
                }
                let srow = self.gather.per_row;
                exec.rows_with_scratch(out, oc, scratch, srow, work, &|p0, o, s| {
                    let rows = o.len() / oc;
                    if self.im2col {
                        im2col_blocks(g, k, x, p0, o, s, 0.0, |a, ob, n| {
                            gemm_f32(a, k, packed, *lo, *hi, ob, oc, 0..n, 0..oc)
                        });
                    } else {
                        let a = &x[p0 * k..(p0 + rows) * k];
                        gemm_f32(a, k, packed, *lo, *hi, o, oc, 0..rows, 0..oc);
                    }
                    if *act == Activation::Tanh {
                        finish_f32(o, *lo, *hi, *act);
                    }
                });
            }
            Kind::I8 { packed, rq, zp } => {
                let x: &[i8] = bytemuck::cast_slice(ins.bytes(0));
                let out: &mut [i8] = bytemuck::cast_slice_mut(out);
                let scratch: &mut [i8] = super::cast_mut(scratch);
                run_q(self, x, out, scratch, packed, rq, *zp, exec);
            }
            Kind::U8 { packed, rq, zp } => {
                run_q(self, ins.bytes(0), out, scratch, packed, rq, *zp, exec);
            }
            Kind::DirectI8(conv) => {
                let x: &[i8] = bytemuck::cast_slice(ins.bytes(0));
                let out: &mut [i8] = bytemuck::cast_slice_mut(out);
                let scratch: &mut [i8] = super::cast_mut(scratch);
                let work = out.len() * k;
                let srow = self.gather.per_row;
                exec.rows_with_scratch(out, oc, scratch, srow, work, &|p0, o, s| {
                    conv.run(x, p0..p0 + o.len() / oc, o, s);
                });
            }
            Kind::DirectF32 { conv, lo, hi, act } => {
                let x = ins.f32(0);
                let out: &mut [f32] = bytemuck::cast_slice_mut(out);
                let scratch: &mut [f32] = super::cast_mut(scratch);
                let work = out.len() * k;
                let srow = self.gather.per_row;
                exec.rows_with_scratch(out, oc, scratch, srow, work, &|p0, o, s| {
                    conv.run(x, p0..p0 + o.len() / oc, o, s);
                    if *act == Activation::Tanh {
                        finish_f32(o, *lo, *hi, *act);
                    }
                });
            }
            Kind::Hybrid {
                packed,
                w_scales,
                bias,
                lo,
                hi,
                act,
                asymmetric,
                per_image,
            } => {
                let x = ins.f32(0);
                let out: &mut [f32] = bytemuck::cast_slice_mut(out);
                let lay = self.hybrid_scratch();
                let m = g.n * g.oh * g.ow;
                let (qin, rest) = scratch.split_at_mut(lay.rows_at);
                let (rows_buf, rest) = rest.split_at_mut(lay.scales_at - lay.rows_at);
                let (sc, zp) = rest.split_at_mut(lay.zps_at - lay.scales_at);
                let qin: &mut [i8] = bytemuck::cast_slice_mut(qin);
                let rows_buf: &mut [i8] = super::cast_mut(rows_buf);
                let scales: &mut [f32] = &mut super::cast_mut(sc)[..m];
                let zps: &mut [i32] = &mut super::cast_mut(zp)[..m];
                // Quantize per image (convolution) or per row (fully connected), then spread
                // each image's parameters over its rows.
                let (units, len) = if *per_image {
                    (g.n, g.ih * g.iw * g.ic)
                } else {
                    (m, k)
                };
                let q = &mut qin[..units * len];
                if *asymmetric {
                    quantize_rows_asymmetric(x, len, units, len, q, len, scales, zps);
                } else {
                    quantize_rows_symmetric(x, len, units, len, q, len, scales);
                    zps[..units].fill(0);
                }
                if *per_image {
                    let plane = g.oh * g.ow;
                    for b in (0..g.n).rev() {
                        let (s, z) = (scales[b], zps[b]);
                        scales[b * plane..(b + 1) * plane].fill(s);
                        zps[b * plane..(b + 1) * plane].fill(z);
                    }
                }
                let (q, scales, zps): (&[i8], &[f32], &[i32]) = (q, scales, zps);
                let srow = if self.im2col { k } else { 0 };
                let work = out.len() * k;
                exec.rows_with_scratch(out, oc, rows_buf, srow, work, &|p0, o, s| {
                    let rows = o.len() / oc;
                    let a: &[i8] = if self.im2col {
                        // Padding takes the image's zero point, so it adds nothing.
                        for r in 0..rows {
                            let pad = zps[p0 + r] as i8;
                            im2col(g, q, p0 + r, &mut s[r * k..(r + 1) * k], pad);
                        }
                        &s[..rows * k]
                    } else {
                        &q[p0 * k..(p0 + rows) * k]
                    };
                    let p = HybridParams {
                        a_scales: &scales[p0..p0 + rows],
                        a_zero_points: &zps[p0..p0 + rows],
                        w_scales,
                        bias: bias.as_deref(),
                        min: *lo,
                        max: *hi,
                    };
                    gemm_i8_hybrid(a, k, packed, &p, o, oc, 0..rows, 0..oc);
                    if *act == Activation::Tanh {
                        finish_f32(o, *lo, *hi, *act);
                    }
                });
            }
        }
    }
}
