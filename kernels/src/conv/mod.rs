//! CONV_2D over NHWC tensors, f32 and int8 / uint8: convolution = im2col + the dense GEMM.
//!
//! Weights are TFLite's `[out_c, kh, kw, in_c]`, which read as a matrix is exactly the GEMM's
//! `N×K` weight layout with `K = kh·kw·in_c`; they are packed once at prepare
//! ([`crate::gemm::PackedF32`], [`crate::gemm::PackedI8`]). At run time:
//! - a 1×1 kernel with stride 1 (no padding possible) reads the input directly as `A` (pixels ×
//!   channels, no copy);
//! - anything else gathers, for a chunk of [`CHUNK`] output pixels, each pixel's window into a
//!   row of `K` values of the caller's scratch buffer (im2col), then runs the GEMM on that chunk.
//!   Taps in the padding are written as the input zero point (0 for f32), which contributes
//!   exactly nothing after the GEMM's zero-point correction — TFLite skips those taps, so the
//!   8-bit result is bit-identical to `reference_integer_ops::ConvPerChannel` and
//!   `reference_ops::Conv` (uint8).
//!
//! A call computes output pixels `pixels` (a range over `batch · out_h · out_w`) and output
//! channels `channels`, so the caller can split the work across threads in either direction;
//! it allocates nothing (the scratch size is known at prepare: [`ConvF32::scratch_len`]).

pub mod transpose;

use crate::gemm::{
    gemm_f32, gemm_i8, gemm_i8_hybrid, quantize_rows_asymmetric, quantize_rows_symmetric, ActQuant,
    HybridParams, PackError, PackedF32, PackedI8, Q8,
};
use crate::requant::Requant;
use crate::window::Window2d;
use std::fmt;
use std::ops::Range;

/// Output pixels gathered per im2col chunk (a multiple of every GEMM kernel's row tile).
pub const CHUNK: usize = 64;

/// Why a convolution cannot be prepared.
#[derive(Clone, Debug, PartialEq)]
pub enum ConvError {
    /// A parameter slice has the wrong length.
    Length {
        /// `"weights"`, `"bias"`, `"requant"`.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Found length.
        found: usize,
    },
    /// A zero point outside its type's range.
    ZeroPoint {
        /// `"input"` or `"weight"`.
        what: &'static str,
        /// The value.
        value: i32,
    },
    /// The GEMM refused the weights.
    Pack(PackError),
}

impl fmt::Display for ConvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConvError::Length {
                what,
                expected,
                found,
            } => {
                write!(f, "conv: {what} has {found} elements, expected {expected}")
            }
            ConvError::ZeroPoint { what, value } => {
                write!(f, "conv: {what} zero point {value} out of range")
            }
            ConvError::Pack(e) => write!(f, "conv: {e}"),
        }
    }
}

impl std::error::Error for ConvError {}

impl From<PackError> for ConvError {
    fn from(e: PackError) -> ConvError {
        ConvError::Pack(e)
    }
}

fn check_len(what: &'static str, expected: usize, found: usize) -> Result<(), ConvError> {
    if expected != found {
        return Err(ConvError::Length {
            what,
            expected,
            found,
        });
    }
    Ok(())
}

/// True when the input itself is the GEMM's `A` (1×1 kernel, stride 1: no padding, no gaps).
fn is_direct(w: &Window2d) -> bool {
    w.h.kernel == 1 && w.w.kernel == 1 && w.h.stride == 1 && w.w.stride == 1
}

/// `K` of the GEMM.
fn depth(w: &Window2d) -> usize {
    w.h.kernel * w.w.kernel * w.in_c
}

fn check_call<T, U>(
    w: &Window2d,
    input: &[T],
    output: &[U],
    pixels: &Range<usize>,
    channels: &Range<usize>,
) {
    assert!(
        input.len() >= w.input_len(),
        "conv input {} < {}",
        input.len(),
        w.input_len()
    );
    assert!(
        output.len() >= w.output_len(),
        "conv output {} < {}",
        output.len(),
        w.output_len()
    );
    assert!(
        pixels.start <= pixels.end && pixels.end <= w.output_pixels(),
        "conv pixels {pixels:?} beyond {}",
        w.output_pixels()
    );
    assert!(
        channels.start <= channels.end && channels.end <= w.out_c,
        "conv channels {channels:?} beyond {}",
        w.out_c
    );
}

/// Gathers the windows of output pixels `p0..p0 + n` into `cols` (`n` rows of `K`), padding with
/// `pad`. Rows are `(ky, kx, ic)` — the order of TFLite's weights.
fn im2col<T: Copy>(w: &Window2d, input: &[T], p0: usize, n: usize, pad: T, cols: &mut [T]) {
    let k = depth(w);
    let c = w.in_c;
    let (oh, ow) = (w.h.output, w.w.output);
    for (r, row) in cols[..n * k].chunks_exact_mut(k).enumerate() {
        let p = p0 + r;
        let (b, rem) = (p / (oh * ow), p % (oh * ow));
        let (oy, ox) = (rem / ow, rem % ow);
        for ky in 0..w.h.kernel {
            let dst_y = &mut row[ky * w.w.kernel * c..(ky + 1) * w.w.kernel * c];
            let Some(iy) = w.h.input_of(oy, ky) else {
                dst_y.fill(pad);
                continue;
            };
            let base = (b * w.h.input + iy) * w.w.input;
            for (kx, dst) in dst_y.chunks_exact_mut(c).enumerate() {
                match w.w.input_of(ox, kx) {
                    Some(ix) => dst.copy_from_slice(&input[(base + ix) * c..][..c]),
                    None => dst.fill(pad),
                }
            }
        }
    }
}

/// A prepared f32 convolution.
#[derive(Clone, Debug)]
pub struct ConvF32 {
    win: Window2d,
    packed: PackedF32,
    min: f32,
    max: f32,
}

impl ConvF32 {
    /// Prepares from TFLite's weights `[out_c·kh·kw·in_c]`, an optional bias `[out_c]` and the
    /// fused activation's clamp.
    pub fn new(
        win: Window2d,
        weights: &[f32],
        bias: Option<&[f32]>,
        min: f32,
        max: f32,
    ) -> Result<ConvF32, ConvError> {
        check_len("weights", win.out_c * depth(&win), weights.len())?;
        if let Some(b) = bias {
            check_len("bias", win.out_c, b.len())?;
        }
        let packed = PackedF32::new(weights, win.out_c, depth(&win), bias)?;
        Ok(ConvF32 {
            win,
            packed,
            min,
            max,
        })
    }

    /// The geometry.
    pub fn window(&self) -> &Window2d {
        &self.win
    }

    /// Scratch elements [`ConvF32::run`] needs (0 for a direct 1×1 convolution).
    pub fn scratch_len(&self) -> usize {
        if is_direct(&self.win) {
            0
        } else {
            CHUNK * depth(&self.win)
        }
    }

    /// Computes output pixels `pixels` × channels `channels`.
    pub fn run(
        &self,
        input: &[f32],
        output: &mut [f32],
        pixels: Range<usize>,
        channels: Range<usize>,
        scratch: &mut [f32],
    ) {
        let w = &self.win;
        check_call(w, input, output, &pixels, &channels);
        let (k, n) = (depth(w), w.out_c);
        if is_direct(w) {
            gemm_f32(
                input,
                k,
                &self.packed,
                self.min,
                self.max,
                output,
                n,
                pixels,
                channels,
            );
            return;
        }
        assert!(
            scratch.len() >= self.scratch_len(),
            "conv scratch too small"
        );
        let mut p0 = pixels.start;
        while p0 < pixels.end {
            let m = CHUNK.min(pixels.end - p0);
            im2col(w, input, p0, m, 0.0, scratch);
            let out = &mut output[p0 * n..(p0 + m) * n];
            gemm_f32(
                scratch,
                k,
                &self.packed,
                self.min,
                self.max,
                out,
                n,
                0..m,
                channels.clone(),
            );
            p0 += m;
        }
    }
}

/// A prepared 8-bit convolution: int8 per-channel (or per-tensor) weights, or legacy uint8
/// weights with a zero point; activations int8 or uint8 as given by [`ActQuant`].
#[derive(Clone, Debug)]
pub struct ConvQ {
    win: Window2d,
    packed: PackedI8,
    rq: Requant,
    act: ActQuant,
}

impl ConvQ {
    /// Prepares int8 weights `[out_c·kh·kw·in_c]` (zero point 0), an optional int32 bias, the
    /// input quantization and the output requantization (multipliers `in_scale · w_scale /
    /// out_scale`, output zero point, activation clamp).
    pub fn new(
        win: Window2d,
        weights: &[i8],
        bias: Option<&[i32]>,
        act: ActQuant,
        rq: Requant,
    ) -> Result<ConvQ, ConvError> {
        ConvQ::check(&win, weights.len(), bias, &rq)?;
        let packed = PackedI8::new(weights, win.out_c, depth(&win), bias, act)?;
        Ok(ConvQ {
            win,
            packed,
            rq,
            act,
        })
    }

    /// Prepares legacy uint8 weights with a per-tensor zero point.
    pub fn new_u8(
        win: Window2d,
        weights: &[u8],
        w_zero_point: i32,
        bias: Option<&[i32]>,
        act: ActQuant,
        rq: Requant,
    ) -> Result<ConvQ, ConvError> {
        ConvQ::check(&win, weights.len(), bias, &rq)?;
        let packed = PackedI8::new_u8(weights, w_zero_point, win.out_c, depth(&win), bias, act)?;
        Ok(ConvQ {
            win,
            packed,
            rq,
            act,
        })
    }

    fn check(
        win: &Window2d,
        weights: usize,
        bias: Option<&[i32]>,
        rq: &Requant,
    ) -> Result<(), ConvError> {
        check_len("weights", win.out_c * depth(win), weights)?;
        if let Some(b) = bias {
            check_len("bias", win.out_c, b.len())?;
        }
        if !rq.is_per_tensor() {
            check_len("requant", win.out_c, rq.channels())?;
        }
        Ok(())
    }

    /// The geometry.
    pub fn window(&self) -> &Window2d {
        &self.win
    }

    /// Scratch bytes [`ConvQ::run`] needs (0 for a direct 1×1 convolution).
    pub fn scratch_len(&self) -> usize {
        if is_direct(&self.win) {
            0
        } else {
            CHUNK * depth(&self.win)
        }
    }

    /// Computes output pixels `pixels` × channels `channels`. `A` is the input type (as the
    /// [`ActQuant`] given at prepare), `O` the output type.
    pub fn run<A: Q8, O: Q8>(
        &self,
        input: &[A],
        output: &mut [O],
        pixels: Range<usize>,
        channels: Range<usize>,
        scratch: &mut [A],
    ) {
        let w = &self.win;
        check_call(w, input, output, &pixels, &channels);
        let (k, n) = (depth(w), w.out_c);
        if is_direct(w) {
            gemm_i8(
                input,
                k,
                &self.packed,
                &self.rq,
                output,
                n,
                pixels,
                channels,
            );
            return;
        }
        assert!(
            scratch.len() >= self.scratch_len(),
            "conv scratch too small"
        );
        let pad = A::from_i32(self.act.zero_point);
        let mut p0 = pixels.start;
        while p0 < pixels.end {
            let m = CHUNK.min(pixels.end - p0);
            im2col(w, input, p0, m, pad, scratch);
            let out = &mut output[p0 * n..(p0 + m) * n];
            gemm_i8(
                scratch,
                k,
                &self.packed,
                &self.rq,
                out,
                n,
                0..m,
                channels.clone(),
            );
            p0 += m;
        }
    }
}

/// A prepared dynamic-range ("hybrid") convolution: int8 weights, f32 activations quantized to
/// int8 on the fly, f32 output — TFLite's hybrid CONV_2D. As TFLite decides: weights with
/// several distinct scales take the per-channel path (each batch image quantized asymmetrically,
/// `reference_ops::HybridConvPerChannel`); otherwise the per-tensor path (each batch image
/// quantized symmetrically, `HybridConv`). Output `bias + acc · s_in · s_w`, clamped.
///
/// Use: [`ConvHybrid::quantize_input`] once per invocation, then [`ConvHybrid::run`] on any
/// split of the output (threads share the quantized input).
#[derive(Clone, Debug)]
pub struct ConvHybrid {
    win: Window2d,
    packed: PackedI8,
    w_scales: Vec<f32>,
    bias: Option<Vec<f32>>,
    min: f32,
    max: f32,
    per_channel: bool,
}

impl ConvHybrid {
    /// Prepares int8 weights `[out_c·kh·kw·in_c]` with their scales (one, or one per output
    /// channel), an optional f32 bias and the activation clamp.
    pub fn new(
        win: Window2d,
        weights: &[i8],
        w_scales: &[f32],
        bias: Option<&[f32]>,
        min: f32,
        max: f32,
    ) -> Result<ConvHybrid, ConvError> {
        check_len("weights", win.out_c * depth(&win), weights.len())?;
        if w_scales.len() != 1 {
            check_len("weight scales", win.out_c, w_scales.len())?;
        }
        if let Some(b) = bias {
            check_len("bias", win.out_c, b.len())?;
        }
        let per_channel = w_scales.iter().any(|&s| s != w_scales[0]);
        let w_scales = if per_channel {
            w_scales.to_vec()
        } else {
            vec![w_scales[0]]
        };
        let packed = PackedI8::new(weights, win.out_c, depth(&win), None, ActQuant::i8(0))?;
        Ok(ConvHybrid {
            win,
            packed,
            w_scales,
            bias: bias.map(<[f32]>::to_vec),
            min,
            max,
            per_channel,
        })
    }

    /// The geometry.
    pub fn window(&self) -> &Window2d {
        &self.win
    }

    /// True when TFLite's per-channel (asymmetric input) path applies.
    pub fn per_channel(&self) -> bool {
        self.per_channel
    }

    /// Quantizes the input, one scale and zero point per batch image, into `q` (input length),
    /// `scales` and `zero_points` (batch length).
    pub fn quantize_input(
        &self,
        input: &[f32],
        q: &mut [i8],
        scales: &mut [f32],
        zero_points: &mut [i32],
    ) {
        let w = &self.win;
        let per_image = w.h.input * w.w.input * w.in_c;
        if self.per_channel {
            quantize_rows_asymmetric(
                input,
                per_image,
                w.batch,
                per_image,
                q,
                per_image,
                scales,
                zero_points,
            );
        } else {
            quantize_rows_symmetric(input, per_image, w.batch, per_image, q, per_image, scales);
            zero_points[..w.batch].fill(0);
        }
    }

    /// Scratch `i8`s [`ConvHybrid::run`] needs (0 for a direct 1×1 convolution).
    pub fn scratch_len(&self) -> usize {
        if is_direct(&self.win) {
            0
        } else {
            CHUNK * depth(&self.win)
        }
    }

    /// Computes output pixels `pixels` × channels `channels` from the quantized input.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        q: &[i8],
        scales: &[f32],
        zero_points: &[i32],
        output: &mut [f32],
        pixels: Range<usize>,
        channels: Range<usize>,
        scratch: &mut [i8],
    ) {
        let w = &self.win;
        check_call(w, q, output, &pixels, &channels);
        assert!(
            scales.len() >= w.batch && zero_points.len() >= w.batch,
            "hybrid conv: batch params"
        );
        let (k, n) = (depth(w), w.out_c);
        let per_image = w.h.output * w.w.output;
        let mut p0 = pixels.start;
        while p0 < pixels.end {
            // One GEMM call never crosses a batch image (one scale and zero point per call).
            let b = p0 / per_image;
            let end = pixels.end.min((b + 1) * per_image);
            let params = HybridParams {
                a_scales: &scales[b..b + 1],
                a_zero_points: &zero_points[b..b + 1],
                w_scales: &self.w_scales,
                bias: self.bias.as_deref(),
                min: self.min,
                max: self.max,
            };
            if is_direct(w) {
                gemm_i8_hybrid(
                    q,
                    k,
                    &self.packed,
                    &params,
                    output,
                    n,
                    p0..end,
                    channels.clone(),
                );
                p0 = end;
                continue;
            }
            assert!(
                scratch.len() >= self.scratch_len(),
                "conv scratch too small"
            );
            let m = CHUNK.min(end - p0);
            im2col(w, q, p0, m, zero_points[b] as i8, scratch);
            let out = &mut output[p0 * n..(p0 + m) * n];
            gemm_i8_hybrid(
                scratch,
                k,
                &self.packed,
                &params,
                out,
                n,
                0..m,
                channels.clone(),
            );
            p0 += m;
        }
    }
}

#[cfg(test)]
mod tests;
