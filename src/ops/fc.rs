//! FULLY_CONNECTED: `out[r, o] = sum_i x[r, i] * w[o, i] + bias[o]`, weights [O, I].

use std::ops::Range;

use sparq_kernels::gemm::{
    gemm_i8_acc, quantize_rows_asymmetric, quantize_rows_symmetric, ActQuant, PackedI8, Q8,
};
use sparq_kernels::requant::{activation_range, Activation as KAct};
use sparq_kernels::sparse::BlockShape;
use sparq_kernels::spmm::{self, prefer_sparse, sparse_layout, Dtype as SpDtype, SparseLayout};
use sparq_schema::{Activation, DType, OpOptions};

use super::conv::Geometry;
use super::quant::per_tensor;
use super::{act_range_f32, boxed, elements, Ctx, Exec, Inputs, OpEval, Prepared};
use crate::Result;

pub(crate) fn prepare(ctx: &Ctx<'_, '_>) -> Result<Prepared> {
    ctx.expect_inputs(2, 3)?;
    let OpOptions::FullyConnected {
        activation,
        keep_num_dims,
        asymmetric_quantize_inputs,
    } = *ctx.options
    else {
        return Err(ctx.err("options are not FullyConnected options"));
    };
    let x = ctx.input(0)?;
    let (w, _) = ctx.const_input(1)?;
    let ws = ctx.expect_rank(w, 2)?;
    let (oc, ic) = (ws[0], ws[1]);
    if oc == 0 {
        return Err(ctx.tensor_err(w, format!("weights {ws:?} have no output channels")));
    }
    let xs = ctx.shape(x);
    let n = elements(xs);
    if ic == 0 || !n.is_multiple_of(ic) {
        return Err(ctx.err(format!(
            "input {xs:?} is not a whole number of rows of {ic}"
        )));
    }
    let rows = n / ic;
    let shape = if keep_num_dims {
        if xs.last() != Some(&ic) {
            return Err(ctx.err(format!(
                "keep_num_dims with input {xs:?} and weights {ws:?}"
            )));
        }
        let mut s = xs.to_vec();
        *s.last_mut().unwrap() = oc;
        s
    } else {
        vec![rows, oc]
    };
    let g = Geometry {
        n: rows,
        ih: 1,
        iw: 1,
        ic,
        oh: 1,
        ow: 1,
        oc,
        kh: 1,
        kw: 1,
        sh: 1,
        sw: 1,
        dh: 1,
        dw: 1,
        pad_t: 0,
        pad_l: 0,
    };
    if matches!(ctx.dtype(x), DType::I8 | DType::U8) {
        return prepare_int8(ctx, rows, ic, oc, activation, shape);
    }
    if ctx.dtype(x) == DType::F32 && ctx.dtype(w) == DType::I8 && activation != Activation::Tanh {
        let asymmetric = asymmetric_quantize_inputs;
        if let Some(eval) = prepare_hybrid_sparse(ctx, w, rows, ic, oc, activation, asymmetric)? {
            let scratch = eval.scratch_bytes();
            return Ok(Prepared {
                eval: boxed(eval),
                shape,
                dtype: DType::F32,
                scratch,
            });
        }
    }
    let op = super::gemm::prepare(ctx, g, activation, asymmetric_quantize_inputs)?;
    Ok(op.into_prepared(shape, ctx.dtype(x)))
}

/// int8 / uint8 FULLY_CONNECTED. TFLite's reference kernel rescales its accumulators in f64
/// (`round(acc · in_scale · w_scale[c] / out_scale)`, half away from zero), not with the
/// fixed-point multiplier its other integer kernels use: a kernel computes the int32
/// accumulators — the packed int8 GEMM, or for weights stored sparse the sparse kernels'
/// raw-accumulator mode, where [`crate::SparseRoute`] and `prefer_sparse` choose it — and this
/// operator applies that f64 epilogue. Both kernels give the same accumulators.
fn prepare_int8(
    ctx: &Ctx<'_, '_>,
    rows: usize,
    ic: usize,
    oc: usize,
    act: Activation,
    shape: Vec<usize>,
) -> Result<Prepared> {
    let x = ctx.input(0)?;
    let (w, wbytes) = ctx.const_input(1)?;
    let wq = ctx
        .quant(w)
        .ok_or_else(|| ctx.tensor_err(w, "has no quantization"))?;
    if wq.scales.len() != oc && wq.scales.len() != 1 {
        return Err(ctx.tensor_err(w, format!("needs 1 or {oc} scales")));
    }
    if wbytes.len() != oc * ic {
        return Err(ctx.tensor_err(w, format!("weights are not {oc} × {ic}")));
    }
    ctx.charge(w, super::gemm::packed_bytes(oc, ic, 1))?;
    let (in_scale, in_zp) = per_tensor(ctx, x)?;
    let (out_scale, out_zp) = per_tensor(ctx, ctx.output())?;
    let unsigned = ctx.dtype(x) == DType::U8;
    let kact = match act {
        Activation::None => KAct::None,
        Activation::Relu => KAct::Relu,
        Activation::Relu6 => KAct::Relu6,
        Activation::ReluN1To1 => KAct::ReluN1To1,
        Activation::Tanh => return Err(ctx.unsupported("fused tanh on an integer output")),
    };
    let (qmin, qmax) = if unsigned { (0, 255) } else { (-128, 127) };
    let (lo, hi) = activation_range(kact, out_scale, out_zp, qmin, qmax);
    let bias = super::gemm::bias_i32(ctx, 2, oc)?;
    let aq = if unsigned {
        ActQuant::u8(in_zp)
    } else {
        ActQuant::i8(in_zp)
    };
    let symmetric = wq.zero_points.iter().all(|&z| z == 0);
    let sparse = if ctx.dtype(w) == DType::I8 && symmetric {
        prepare_sparse(ctx, w, rows, ic, oc, aq, bias.as_deref())?
    } else {
        None
    };
    let (weights, scratch) = match sparse {
        Some((packed, split)) => (
            Weights::Sparse {
                packed,
                per_row: split.per_row,
            },
            split.total * 4,
        ),
        // Weights with a zero point: symmetric int8 (0) or legacy uint8 (per-tensor).
        None => {
            let packed = match ctx.dtype(w) {
                DType::I8 if symmetric => {
                    PackedI8::new(bytemuck::cast_slice(wbytes), oc, ic, bias.as_deref(), aq)
                }
                DType::U8 if wq.zero_points.len() == 1 => PackedI8::new_u8(
                    wbytes,
                    wq.zero_points[0] as i32,
                    oc,
                    ic,
                    bias.as_deref(),
                    aq,
                ),
                d => return Err(ctx.unsupported(format!("{d} weights with these zero points"))),
            }
            .map_err(|e| ctx.err(e.to_string()))?;
            (Weights::Dense(packed), 0)
        }
    };
    let scales: Vec<f64> = (0..oc)
        .map(|c| {
            let s = wq.scales[if wq.scales.len() == 1 { 0 } else { c }];
            in_scale as f64 * s as f64 / out_scale as f64
        })
        .collect();
    let eval = FcInt8 {
        rows,
        ic,
        oc,
        weights,
        scales,
        out_zp,
        lo,
        hi,
        unsigned,
    };
    Ok(Prepared {
        eval: boxed(eval),
        shape,
        dtype: ctx.dtype(x),
        scratch,
    })
}

/// Symmetric int8 weights `w` stored sparse, packed for the sparse kernels when
/// [`crate::SparseRoute`] and `prefer_sparse` choose them, with the op scratch they need;
/// `None`: dense.
fn prepare_sparse(
    ctx: &Ctx<'_, '_>,
    w: usize,
    rows: usize,
    ic: usize,
    oc: usize,
    aq: ActQuant,
    bias: Option<&[i32]>,
) -> Result<Option<(spmm::PackedI8, SparseSplit)>> {
    if ctx.route == crate::SparseRoute::Dense {
        return Ok(None);
    }
    let Some(view) = ctx.sparse(w) else {
        return Ok(None);
    };
    if view.rows != oc || view.cols != ic {
        return Ok(None);
    }
    let (br, bc) = view.block();
    let block = BlockShape::new(br, bc);
    let density = (1.0 - view.sparsity()) as f32;
    if ctx.route == crate::SparseRoute::Auto
        && !prefer_sparse(SpDtype::I8, rows, ic, oc, block, density)
    {
        return Ok(None);
    }
    let SparseLayout::I8(layout) = sparse_layout(SpDtype::I8, block) else {
        return Ok(None);
    };
    // Packed: at worst one 16-word block (and its index) per stored weight, plus per-channel
    // terms.
    let bound = view
        .values
        .len()
        .checked_mul(68)
        .and_then(|b| b.checked_add(oc.checked_mul(8)?.checked_add(128)?));
    ctx.charge(w, bound)?;
    let values: &[i8] = bytemuck::cast_slice(view.values);
    let Some(sw) = super::gemm::sparse_weights(view, values) else {
        return Ok(None);
    };
    let packed = if aq.unsigned {
        spmm::PackedI8::new_u8(&sw, bias, aq.zero_point, layout)
    } else {
        spmm::PackedI8::new(&sw, bias, aq.zero_point, layout)
    }
    .map_err(|e| ctx.tensor_err(w, e))?;
    let split = SparseSplit::new(rows, oc, packed.acc_scratch_len(), ctx.threads)
        .ok_or_else(|| ctx.err("sparse kernel scratch size overflows"))?;
    Ok(Some((packed, split)))
}

/// The op scratch of the sparse path's row split (u32 words): each task gets the int32
/// accumulators of its rows (`oc` per row) and at least the kernel's scratch (`need`), for every
/// task size the split may choose; `total` in all.
struct SparseSplit {
    per_row: usize,
    total: usize,
}

impl SparseSplit {
    /// `None` on overflow.
    fn new(rows: usize, oc: usize, need: usize, threads: usize) -> Option<SparseSplit> {
        let sizes = super::task_sizes(rows, threads);
        let per_row = oc.checked_add(need.div_ceil(sizes[0]))?;
        // One task (no split) gets the whole buffer.
        let mut total = rows.checked_mul(oc)?.checked_add(need)?;
        for per in sizes {
            total = total.max(rows.div_ceil(per).checked_mul(per)?.checked_mul(per_row)?);
        }
        total.checked_mul(4)?;
        Some(SparseSplit { per_row, total })
    }
}

enum Weights {
    Dense(PackedI8),
    /// Stored sparse: the sparse kernels' raw-accumulator mode; `per_row`: the row split's
    /// scratch words per row ([`SparseSplit`]).
    Sparse {
        packed: spmm::PackedI8,
        per_row: usize,
    },
}

struct FcInt8 {
    rows: usize,
    ic: usize,
    oc: usize,
    weights: Weights,
    /// `in_scale · w_scale[c] / out_scale` per output channel.
    scales: Vec<f64>,
    out_zp: i32,
    lo: i32,
    hi: i32,
    unsigned: bool,
}

/// `f64::round` (half away from zero) of `v` as i64, saturating: the truncation is exact and so
/// is `v − trunc(v)`, so comparing that fraction with ±0.5 rounds exactly.
#[inline(always)]
fn round_half_away(v: f64) -> i64 {
    let t = v as i64;
    let frac = v - t as f64;
    t.saturating_add(i64::from(frac >= 0.5) - i64::from(frac <= -0.5))
}

/// Output channels per step of the sparse column split (a whole number of 16-channel blocks):
/// the accumulators of one step live on the stack.
const SPARSE_COLS: usize = 256;

impl FcInt8 {
    /// The f64 epilogue of accumulators `acc` of channels `c0 ..` into `dst`.
    #[inline(always)]
    fn finish(&self, acc: &[i32], c0: usize, dst: &mut [u8]) {
        let (zp, lo, hi) = (self.out_zp as i64, self.lo as i64, self.hi as i64);
        let sc = &self.scales[c0..c0 + acc.len()];
        for ((d, &a), &s) in dst.iter_mut().zip(acc).zip(sc) {
            let v = round_half_away(a as f64 * s)
                .saturating_add(zp)
                .clamp(lo, hi);
            *d = v as u8;
        }
    }

    /// Output block `rows × cols`: `out` holds exactly that block, row-major (`cols.len()`
    /// bytes per row).
    fn block<T: Q8>(
        &self,
        packed: &PackedI8,
        x: &[T],
        out: &mut [u8],
        rows: Range<usize>,
        cols: Range<usize>,
    ) {
        let (stride, c_base, r_base) = (cols.len(), cols.start, rows.start);
        gemm_i8_acc(x, self.ic, packed, rows, cols, |r, c0, acc| {
            let o = (r - r_base) * stride + (c0 - c_base);
            self.finish(acc, c0, &mut out[o..o + acc.len()]);
        });
    }

    fn run<T: Q8>(&self, packed: &PackedI8, x: &[T], out: &mut [u8], exec: &Exec) {
        let (rows, oc) = (self.rows, self.oc);
        let work = rows * oc * self.ic;
        if rows >= 2 * exec.threads() {
            // Many rows: each task a block of whole rows.
            exec.rows(out, oc, work, &|r0, o| {
                let n = o.len() / oc;
                self.block(packed, x, o, r0..r0 + n, 0..oc)
            });
        } else {
            // A classifier head: one row at a time, split over column blocks of whole tiles.
            let nr = packed.kernel().nr;
            for (r, o) in out.chunks_mut(oc).enumerate() {
                exec.rows(o, nr, work / rows, &|t0, o| {
                    let c0 = t0 * nr;
                    self.block(packed, x, o, r..r + 1, c0..c0 + o.len())
                });
            }
        }
    }

    fn run_sparse<T: Q8 + bytemuck::Pod>(
        &self,
        packed: &spmm::PackedI8,
        per_row: usize,
        x: &[T],
        out: &mut [u8],
        scratch: &mut [u8],
        exec: &Exec,
    ) {
        let (rows, oc, ic) = (self.rows, self.oc, self.ic);
        // Multiply-adds actually done: 4 per stored weight word.
        let work = rows * packed.blocks() * 4 * packed.layout().rows();
        let need = packed.acc_scratch_len();
        if rows < 2 * exec.threads() && need == 0 {
            // A classifier head: one row at a time, split over blocks of 16 channels, each
            // task's accumulators on the stack.
            for (r, o) in out.chunks_mut(oc).enumerate() {
                exec.rows(o, 16, work / rows, &|t0, o| {
                    let mut acc = [0i32; SPARSE_COLS];
                    let c_first = t0 * 16;
                    for (j, o) in o.chunks_mut(SPARSE_COLS).enumerate() {
                        let c0 = c_first + j * SPARSE_COLS;
                        let acc = &mut acc[..o.len()];
                        let cols = c0..c0 + o.len();
                        packed.run_acc(x, ic, r..r + 1, cols, acc, o.len(), &mut []);
                        self.finish(acc, c0, o);
                    }
                });
            }
            return;
        }
        // Each task: its rows' accumulators, then at least the kernel's scratch.
        let scratch: &mut [u32] = super::cast_mut(scratch);
        exec.rows_with_scratch(out, oc, scratch, per_row, work, &|r0, o, s| {
            let n = o.len() / oc;
            let (acc, ks) = s.split_at_mut(n * oc);
            let acc: &mut [i32] = bytemuck::cast_slice_mut(acc);
            packed.run_acc(x, ic, r0..r0 + n, 0..oc, acc, oc, ks);
            for (o, a) in o.chunks_mut(oc).zip(acc.chunks(oc)) {
                self.finish(a, 0, o);
            }
        });
    }

    fn dispatch<T: Q8 + bytemuck::Pod>(
        &self,
        x: &[T],
        out: &mut [u8],
        scratch: &mut [u8],
        exec: &Exec,
    ) {
        match &self.weights {
            Weights::Dense(p) => self.run(p, x, out, exec),
            Weights::Sparse { packed, per_row } => {
                self.run_sparse(packed, *per_row, x, out, scratch, exec)
            }
        }
    }
}

impl OpEval for FcInt8 {
    fn kernel(&self) -> Option<&'static str> {
        match &self.weights {
            Weights::Sparse { packed, .. } => Some(packed.acc_kernel().name),
            Weights::Dense(_) => None,
        }
    }

    fn eval(&self, ins: &Inputs<'_>, out: &mut [u8], scratch: &mut [u8], exec: &Exec) {
        if self.unsigned {
            self.dispatch::<u8>(ins.bytes(0), out, scratch, exec);
        } else {
            let x: &[i8] = bytemuck::cast_slice(ins.bytes(0));
            self.dispatch::<i8>(x, out, scratch, exec);
        }
    }
}

/// Dynamic-range FULLY_CONNECTED (f32 activations quantized to int8 per row at run time, int8
/// weights) whose weight is stored sparse, on the sparse kernels' raw-accumulator mode where
/// [`crate::SparseRoute`] and `prefer_sparse` choose it; `None`: the dense hybrid GEMM. The
/// float epilogue is the dense one's ([`sparq_kernels::gemm::gemm_i8_hybrid`]): `bias + (acc −
/// za·Σ_k w) · (sa · w_scale)`, so both give the same outputs.
#[allow(clippy::too_many_arguments)]
fn prepare_hybrid_sparse(
    ctx: &Ctx<'_, '_>,
    w: usize,
    rows: usize,
    ic: usize,
    oc: usize,
    act: Activation,
    asymmetric: bool,
) -> Result<Option<FcHybridSparse>> {
    if ctx.route == crate::SparseRoute::Dense || ctx.sparse(w).is_none() {
        return Ok(None);
    }
    let Some(wq) = ctx.quant(w) else {
        return Ok(None);
    };
    if (wq.scales.len() != 1 && wq.scales.len() != oc) || wq.zero_points.iter().any(|&z| z != 0) {
        // The dense path names the problem.
        return Ok(None);
    }
    let bias = match ctx.opt_input(2) {
        Some(b) => {
            if elements(ctx.shape(b)) != oc {
                return Err(ctx.tensor_err(b, format!("bias is not [{oc}]")));
            }
            Some(ctx.const_f32(b)?)
        }
        None => None,
    };
    let Some((packed, split)) = prepare_sparse(ctx, w, rows, ic, oc, ActQuant::i8(0), None)? else {
        return Ok(None);
    };
    // Σ_k w[n][k] per output channel, for the per-row zero points.
    let Some(view) = ctx.sparse(w) else {
        return Ok(None);
    };
    let values: &[i8] = bytemuck::cast_slice(view.values);
    let Some(sw) = super::gemm::sparse_weights(view, values) else {
        return Ok(None);
    };
    let colsums: Vec<i32> = (0..oc)
        .map(|n| {
            let mut s = 0i32;
            sw.for_each_in_row(n, |_, v| s = s.wrapping_add(v as i32));
            s
        })
        .collect();
    let (lo, hi) = act_range_f32(act);
    let a = |v: usize| v.next_multiple_of(64);
    let scales_at = a(rows * ic);
    let zps_at = scales_at + a(rows * 4);
    let acc_at = zps_at + a(rows * 4);
    Ok(Some(FcHybridSparse {
        rows,
        ic,
        oc,
        packed,
        per_row: split.per_row,
        acc_words: split.total,
        colsums,
        w_scales: wq.scales.clone(),
        bias,
        lo,
        hi,
        asymmetric,
        scales_at,
        zps_at,
        acc_at,
    }))
}

struct FcHybridSparse {
    rows: usize,
    ic: usize,
    oc: usize,
    /// Packed for int8 activations with zero point 0, no bias: the plain integer sums.
    packed: spmm::PackedI8,
    /// The row split's scratch ([`SparseSplit`]): words per row, and in all.
    per_row: usize,
    acc_words: usize,
    colsums: Vec<i32>,
    w_scales: Vec<f32>,
    bias: Option<Vec<f32>>,
    lo: f32,
    hi: f32,
    asymmetric: bool,
    /// Scratch byte offsets: quantized rows at 0, then row scales, row zero points, and the
    /// row split's accumulators and kernel scratch.
    scales_at: usize,
    zps_at: usize,
    acc_at: usize,
}

impl FcHybridSparse {
    fn scratch_bytes(&self) -> usize {
        self.acc_at + self.acc_words * 4
    }
}

impl OpEval for FcHybridSparse {
    fn kernel(&self) -> Option<&'static str> {
        Some(self.packed.acc_kernel().name)
    }

    fn eval(&self, ins: &Inputs<'_>, out: &mut [u8], scratch: &mut [u8], exec: &Exec) {
        let (rows, ic, oc) = (self.rows, self.ic, self.oc);
        let x = ins.f32(0);
        let out: &mut [f32] = bytemuck::cast_slice_mut(out);
        let (qb, rest) = scratch.split_at_mut(self.scales_at);
        let (sb, rest) = rest.split_at_mut(self.zps_at - self.scales_at);
        let (zb, accb) = rest.split_at_mut(self.acc_at - self.zps_at);
        let q: &mut [i8] = bytemuck::cast_slice_mut(&mut qb[..rows * ic]);
        let scales: &mut [f32] = super::cast_mut(&mut sb[..rows * 4]);
        let zps: &mut [i32] = super::cast_mut(&mut zb[..rows * 4]);
        if self.asymmetric {
            quantize_rows_asymmetric(x, ic, rows, ic, q, ic, scales, zps);
        } else {
            quantize_rows_symmetric(x, ic, rows, ic, q, ic, scales);
            zps.fill(0);
        }
        let (q, scales, zps): (&[i8], &[f32], &[i32]) = (q, scales, zps);
        let accs: &mut [u32] = super::cast_mut(accb);
        let work = rows * self.packed.blocks() * 4 * self.packed.layout().rows();
        let ws = |c: usize| self.w_scales[if self.w_scales.len() == 1 { 0 } else { c }];
        exec.rows_with_scratch(out, oc, accs, self.per_row, work, &|r0, o, s| {
            let n = o.len() / oc;
            let (acc, ks) = s.split_at_mut(n * oc);
            let acc: &mut [i32] = bytemuck::cast_slice_mut(acc);
            self.packed.run_acc(q, ic, r0..r0 + n, 0..oc, acc, oc, ks);
            for (r, (o, a)) in o.chunks_mut(oc).zip(acc.chunks(oc)).enumerate() {
                let (sa, za) = (scales[r0 + r], zps[r0 + r]);
                for (c, (o, &a)) in o.iter_mut().zip(a).enumerate() {
                    let s = a.wrapping_sub(za.wrapping_mul(self.colsums[c]));
                    let b = self.bias.as_ref().map_or(0.0, |b| b[c]);
                    let v = b + s as f32 * (sa * ws(c));
                    *o = v.max(self.lo).min(self.hi);
                }
            }
        });
    }
}
