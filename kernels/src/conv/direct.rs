//! Direct CONV_2D for few input channels (the first layer of nearly every CNN: 3×3 stride 2 over
//! an RGB image), int8 and f32, without im2col.
//!
//! With NHWC input and dilation 1 along the width, one kernel row of one output pixel's window is
//! `run = kw · in_c` contiguous values of the input. The kernels read those runs from whole input
//! rows (no per-pixel gathered copy), for blocks of output pixels that share a row, and keep all
//! accumulators of 32 output channels in registers:
//! - int8: the `kh` input rows of an output row are first copied into the caller's scratch,
//!   shifted to unsigned (XOR 0x80, for `vpdpbusd`'s unsigned operand) and framed by the input
//!   zero point where the window overhangs the image (a row of zero points stands for rows
//!   above or below it). Each run is then read as `groups = ⌈run/4⌉` 4-byte groups. The weights
//!   of the group positions past `run` are zero, so the bytes read there (the neighbouring
//!   pixel's) add nothing; the zero-point correction is folded from the real weights only, and
//!   the padding's zero points add nothing after it — TFLite skips those taps, so the results
//!   equal `reference_integer_ops::ConvPerChannel` (requantization is
//!   [`crate::requant::Requant`] bit for bit).
//! - f32: each value of a run is broadcast against 32 output channels' weights (FMA). Pixels
//!   whose window leaves the image are staged: their runs are copied into the scratch with 0.0
//!   in the padding; window rows above or below the image read a row of zeros.
//!
//! A call computes any range of output pixels (so callers split the work across threads freely)
//! and allocates nothing (the scratch size is known at prepare: `scratch_len`). The kernels exist
//! for AVX-512 (VNNI); `new` returns `None` elsewhere, and the caller keeps im2col + GEMM.

use crate::requant::Requant;
use crate::window::Window2d;
use std::fmt;
use std::ops::Range;

/// The largest kernel height.
pub const MAX_KH: usize = 16;
/// The largest `kw · in_c` (one window row's values). Measured against im2col + GEMM (thread CPU
/// time, int8 / f32): run 9 (224×224×3 3×3 s2 → 32) 105 / 208 µs vs 446 / 589; run 24
/// (56×56×8 3×3 → 32) 42 / 135 vs 136 / 224; run 32 (56×56×16 2×2 s2 → 32) 11 / 29 vs 22 / 44;
/// at run 48 the f32 margin is down to 10%.
pub const MAX_RUN: usize = 32;
/// Output pixels per kernel block.
pub(crate) const PMAX: usize = 8;
/// Output channels per kernel pass (two 16-lane tiles).
pub(crate) const NB: usize = 32;

/// Why a direct convolution cannot be built from the given parameters.
#[derive(Clone, Debug, PartialEq)]
pub enum DirectError {
    /// A parameter slice has the wrong length.
    Length {
        /// `"weights"`, `"bias"`, `"requant"`.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Found length.
        found: usize,
    },
    /// The input zero point is outside int8.
    ZeroPoint(i32),
}

impl fmt::Display for DirectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DirectError::Length {
                what,
                expected,
                found,
            } => write!(
                f,
                "direct conv: {what} has {found} elements, expected {expected}"
            ),
            DirectError::ZeroPoint(z) => {
                write!(f, "direct conv: input zero point {z} outside int8")
            }
        }
    }
}

impl std::error::Error for DirectError {}

fn check_len(what: &'static str, expected: usize, found: usize) -> Result<(), DirectError> {
    if expected == found {
        Ok(())
    } else {
        Err(DirectError::Length {
            what,
            expected,
            found,
        })
    }
}

/// Whether the direct kernels take this geometry: dilation 1 along the width (window rows are
/// contiguous), `kw · in_c ≤ MAX_RUN`, `kh ≤ MAX_KH`. The CPU is checked by `new`.
pub fn supports(win: &Window2d) -> bool {
    win.w.dilation == 1
        && win.h.kernel <= MAX_KH
        && win
            .w
            .kernel
            .checked_mul(win.in_c)
            .is_some_and(|r| r <= MAX_RUN)
        && win.out_c > 0
        && win.input_len() > 0
}

/// 64 bytes, 64-byte aligned: one zmm of packed weights.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub(crate) struct Z64(pub [u8; 64]);

/// The window rows of a segment of consecutive output pixels (one output row), as the kernels
/// read them.
///
/// Contract: for every pixel `p < npix` and kernel row `ky < kh`, the `read` elements from
/// `rows[ky] + p · pix_stride` are readable (`read` = `4 · groups` bytes for int8, `run` values
/// for f32).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) struct Taps<T> {
    pub rows: [*const T; MAX_KH],
    pub pix_stride: usize,
    pub npix: usize,
}

/// int8 segment kernel: computes `t.npix` pixels × all output channels into `out`
/// (`npix · out_c` values, pixel-major).
pub(crate) type I8SegFn = unsafe fn(c: &DirectI8, t: &Taps<u8>, out: *mut i8);
/// f32 segment kernel.
pub(crate) type F32SegFn = unsafe fn(c: &DirectF32, t: &Taps<f32>, out: *mut f32);

/// A prepared int8 direct convolution (int8 activations, symmetric int8 weights).
#[derive(Clone, Debug)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub struct DirectI8 {
    pub(crate) win: Window2d,
    /// `⌈kw · in_c / 4⌉`.
    pub(crate) groups: usize,
    /// Per block of [`NB`] channels (one or two tiles of 16), per kernel row, per group, per
    /// tile: 16 channels × 4 bytes (`c4`), zero past `run` and past `out_c`.
    pub(crate) w: Vec<Z64>,
    /// Per channel (padded to blocks of [`NB`]): bias − (in_zp + 128) · Σ weights, for
    /// activations shifted to unsigned by XOR 0x80.
    pub(crate) bias: Vec<i32>,
    /// Per channel (padded): Q31 multipliers and shifts.
    pub(crate) mult: Vec<i32>,
    pub(crate) shift: Vec<i32>,
    pub(crate) rq: Requant,
    in_zp: i8,
    kernel: I8SegFn,
}

/// A prepared f32 direct convolution.
#[derive(Clone, Debug)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub struct DirectF32 {
    pub(crate) win: Window2d,
    pub(crate) run: usize,
    /// Per block of [`NB`] channels, per kernel row, per run value, per tile: 16 weights.
    pub(crate) w: Vec<Z64>,
    /// Per channel, padded to blocks of [`NB`].
    pub(crate) bias: Vec<f32>,
    pub(crate) min: f32,
    pub(crate) max: f32,
    kernel: F32SegFn,
}

/// Tiles (of 16 channels) in channel block `b` of `oc` channels.
pub(crate) fn block_tiles(oc: usize, b: usize) -> usize {
    (oc - b * NB).min(NB).div_ceil(16)
}

impl DirectI8 {
    /// Prepares from TFLite's weights `[out_c][kh][kw][in_c]` (symmetric int8), an optional
    /// bias `[out_c]`, the input zero point and the output requantization. `Ok(None)` when the
    /// geometry is not [`supports`]ed or the CPU has no direct kernel.
    pub fn new(
        win: Window2d,
        weights: &[i8],
        bias: Option<&[i32]>,
        in_zp: i32,
        rq: Requant,
    ) -> Result<Option<DirectI8>, DirectError> {
        let Some(kernel) = i8_kernel() else {
            return Ok(None);
        };
        if !supports(&win) {
            return Ok(None);
        }
        let (oc, kh) = (win.out_c, win.h.kernel);
        let run = win.w.kernel * win.in_c;
        let k = kh * run;
        check_len("weights", oc * k, weights.len())?;
        if let Some(b) = bias {
            check_len("bias", oc, b.len())?;
        }
        if !rq.is_per_tensor() {
            check_len("requant", oc, rq.channels())?;
        }
        let zp = i8::try_from(in_zp).map_err(|_| DirectError::ZeroPoint(in_zp))?;
        let groups = run.div_ceil(4);
        let blocks = oc.div_ceil(NB);
        let mut w = Vec::new();
        for b in 0..blocks {
            let tiles = block_tiles(oc, b);
            for ky in 0..kh {
                for g in 0..groups {
                    for t in 0..tiles {
                        let mut z = Z64([0; 64]);
                        for j in 0..16 {
                            let n = b * NB + t * 16 + j;
                            for i in 0..4 {
                                let kk = 4 * g + i;
                                if n < oc && kk < run {
                                    z.0[4 * j + i] = weights[n * k + ky * run + kk] as u8;
                                }
                            }
                        }
                        w.push(z);
                    }
                }
            }
        }
        let padded = blocks * NB;
        let mut fbias = vec![0i32; padded];
        let (mut mult, mut shift) = (vec![0i32; padded], vec![0i32; padded]);
        for n in 0..oc {
            let sum: i32 = weights[n * k..(n + 1) * k].iter().map(|&v| v as i32).sum();
            let b0 = bias.map_or(0, |b| b[n]);
            fbias[n] = b0.wrapping_sub((in_zp + 128).wrapping_mul(sum));
            (mult[n], shift[n]) = rq.channel(n);
        }
        // Padding channels: multiplier 0 with a valid shift, never stored.
        shift[oc..].fill(-1);
        Ok(Some(DirectI8 {
            win,
            groups,
            w,
            bias: fbias,
            mult,
            shift,
            rq,
            in_zp: zp,
            kernel,
        }))
    }

    /// The geometry.
    pub fn window(&self) -> &Window2d {
        &self.win
    }

    /// The kernel's name.
    pub fn kernel_name(&self) -> &'static str {
        "avx512vnni::conv_direct_qu8s8_8x32c4"
    }

    /// Scratch elements a call to [`DirectI8::run`] needs.
    pub fn scratch_len(&self) -> usize {
        (self.win.h.kernel + 1) * self.row_len()
    }

    /// Bytes of one staged input row: the padded width the windows span (at least the zero
    /// points before the image and the image), plus the last group's overhang.
    fn row_len(&self) -> usize {
        let (w, c) = (&self.win.w, self.win.in_c);
        let span = (w.output - 1) * w.stride + w.kernel;
        span.max(w.pad_before + w.input) * c + 4
    }

    /// Output pixels `pixels` (of `batch · out_h · out_w`) into `out` (`pixels.len() · out_c`
    /// values). Panics if `x` is shorter than the input, `out` has the wrong length, `pixels`
    /// exceeds the output or `scratch` is shorter than [`DirectI8::scratch_len`].
    pub fn run(&self, x: &[i8], pixels: Range<usize>, out: &mut [i8], scratch: &mut [i8]) {
        let x: &[u8] = bytemuck::cast_slice(x);
        let scratch: &mut [u8] = bytemuck::cast_slice_mut(scratch);
        let win = &self.win;
        check_run(
            win,
            x.len(),
            &pixels,
            out.len(),
            scratch.len(),
            self.scratch_len(),
        );
        let (ih, iw, c) = (win.h.input, win.w.input, win.in_c);
        let (oh, ow, kh, oc) = (win.h.output, win.w.output, win.h.kernel, win.out_c);
        let row_len = self.row_len();
        let zp = self.in_zp as u8 ^ 0x80;
        let (zrow, staged) = scratch[..(kh + 1) * row_len].split_at_mut(row_len);
        zrow.fill(zp);
        let at = win.w.pad_before * c;
        for row in staged.chunks_exact_mut(row_len) {
            row[..at].fill(zp);
            row[at + iw * c..].fill(zp);
        }
        let plane = oh * ow;
        let mut p = pixels.start;
        while p < pixels.end {
            let (b, oy, ox0) = (p / plane, (p / ow) % oh, p % ow);
            let ox1 = ow.min(ox0 + (pixels.end - p));
            let mut rows = [zrow.as_ptr(); MAX_KH];
            let stage = staged.chunks_exact_mut(row_len);
            for (ky, (r, dst)) in rows.iter_mut().zip(stage).enumerate() {
                if let Some(iy) = win.h.input_of(oy, ky) {
                    let src = &x[(b * ih + iy) * iw * c..][..iw * c];
                    for (d, s) in dst[at..at + iw * c].iter_mut().zip(src) {
                        *d = s ^ 0x80;
                    }
                    *r = dst.as_ptr();
                }
            }
            // Pixel ox's window row starts at byte ox · sw · c of a staged row, and its last
            // group ends before (ox · sw + kw) · c + 4 ≤ row_len.
            let step = win.w.stride * c;
            for r in rows.iter_mut().take(kh) {
                *r = r.wrapping_add(ox0 * step);
            }
            let taps = Taps {
                rows,
                pix_stride: step,
                npix: ox1 - ox0,
            };
            let i = p - pixels.start;
            let o = &mut out[i * oc..(i + taps.npix) * oc];
            // SAFETY: the Taps contract holds (above); `o` holds npix · out_c values; the kernel
            // was chosen for this CPU by `new`.
            unsafe { (self.kernel)(self, &taps, o.as_mut_ptr()) };
            p += ox1 - ox0;
        }
    }
}

impl DirectF32 {
    /// Prepares from TFLite's weights `[out_c][kh][kw][in_c]`, an optional bias `[out_c]` and
    /// the fused activation's clamp. `Ok(None)` when the geometry is not [`supports`]ed or the
    /// CPU has no direct kernel.
    pub fn new(
        win: Window2d,
        weights: &[f32],
        bias: Option<&[f32]>,
        min: f32,
        max: f32,
    ) -> Result<Option<DirectF32>, DirectError> {
        let Some(kernel) = f32_kernel() else {
            return Ok(None);
        };
        if !supports(&win) {
            return Ok(None);
        }
        let (oc, kh) = (win.out_c, win.h.kernel);
        let run = win.w.kernel * win.in_c;
        let k = kh * run;
        check_len("weights", oc * k, weights.len())?;
        if let Some(b) = bias {
            check_len("bias", oc, b.len())?;
        }
        let blocks = oc.div_ceil(NB);
        let mut w = Vec::new();
        for b in 0..blocks {
            let tiles = block_tiles(oc, b);
            for ky in 0..kh {
                for kk in 0..run {
                    for t in 0..tiles {
                        let mut z = [0f32; 16];
                        for (j, v) in z.iter_mut().enumerate() {
                            let n = b * NB + t * 16 + j;
                            if n < oc {
                                *v = weights[n * k + ky * run + kk];
                            }
                        }
                        w.push(Z64(bytemuck::cast(z)));
                    }
                }
            }
        }
        let mut fbias = vec![0f32; blocks * NB];
        if let Some(b) = bias {
            fbias[..oc].copy_from_slice(b);
        }
        Ok(Some(DirectF32 {
            win,
            run,
            w,
            bias: fbias,
            min,
            max,
            kernel,
        }))
    }

    /// The geometry.
    pub fn window(&self) -> &Window2d {
        &self.win
    }

    /// The kernel's name.
    pub fn kernel_name(&self) -> &'static str {
        "avx512::conv_direct_f32_12x32"
    }

    /// Scratch elements a call to [`DirectF32::run`] needs.
    pub fn scratch_len(&self) -> usize {
        scratch_len(&self.win, self.run)
    }

    /// As [`DirectI8::run`], for f32.
    pub fn run(&self, x: &[f32], pixels: Range<usize>, out: &mut [f32], scratch: &mut [f32]) {
        let oc = self.win.out_c;
        check_run(
            &self.win,
            x.len(),
            &pixels,
            out.len(),
            scratch.len(),
            self.scratch_len(),
        );
        drive(&self.win, self.run, x, pixels, scratch, 0.0, |t, i| {
            let o = &mut out[i * oc..(i + t.npix) * oc];
            // SAFETY: as in DirectI8::run.
            unsafe { (self.kernel)(self, t, o.as_mut_ptr()) }
        });
    }
}

fn i8_kernel() -> Option<I8SegFn> {
    #[cfg(target_arch = "x86_64")]
    if crate::Isa::Avx512Vnni.enabled() {
        return Some(crate::arch::x86_64::avx512vnni::conv_direct::conv_i8);
    }
    None
}

fn f32_kernel() -> Option<F32SegFn> {
    #[cfg(target_arch = "x86_64")]
    if crate::Isa::Avx512Vnni.enabled() {
        return Some(crate::arch::x86_64::avx512vnni::conv_direct::conv_f32);
    }
    None
}

fn check_run(win: &Window2d, x: usize, px: &Range<usize>, out: usize, s: usize, need: usize) {
    assert!(x >= win.input_len(), "conv input {x} < {}", win.input_len());
    assert!(
        px.start <= px.end && px.end <= win.output_pixels(),
        "conv pixels {px:?} beyond {}",
        win.output_pixels()
    );
    assert_eq!(out, px.len() * win.out_c, "conv output length");
    assert!(s >= need, "conv scratch {s} < {need}");
}

/// Elements of the row of zero points (`in_w · in_c` plus the longest read).
fn zero_row_len(win: &Window2d, read: usize) -> usize {
    win.w.input * win.in_c + read
}

fn scratch_len(win: &Window2d, read: usize) -> usize {
    zero_row_len(win, read) + PMAX * win.h.kernel * read
}

/// Walks output pixels `pixels` row by row and hands the kernel segments of consecutive pixels
/// with their [`Taps`]: in place where every read lies in `x`, else staged in `scratch`.
/// `seg(taps, i)` computes the pixels `pixels.start + i ..` of the segment.
fn drive<T: Copy>(
    win: &Window2d,
    read: usize,
    x: &[T],
    pixels: Range<usize>,
    scratch: &mut [T],
    pad: T,
    mut seg: impl FnMut(&Taps<T>, usize),
) {
    let (ih, iw, c) = (win.h.input, win.w.input, win.in_c);
    let (oh, ow, kh, kw) = (win.h.output, win.w.output, win.h.kernel, win.w.kernel);
    let (sw, pad_l) = (win.w.stride, win.w.pad_before);
    let (zrow, stage) = scratch.split_at_mut(zero_row_len(win, read));
    zrow.fill(pad);
    let stage = &mut stage[..PMAX * kh * read];
    let plane = oh * ow;
    // First output column whose window starts inside the image.
    let lo = pad_l.div_ceil(sw);
    let mut p = pixels.start;
    while p < pixels.end {
        let (b, oy, ox0) = (p / plane, (p / ow) % oh, p % ow);
        let ox1 = ow.min(ox0 + (pixels.end - p));
        // Offset of each window row's input row, or None: above or below the image.
        let mut row_at = [None; MAX_KH];
        for (ky, r) in row_at.iter_mut().enumerate().take(kh) {
            *r = win.h.input_of(oy, ky).map(|iy| (b * ih + iy) * iw * c);
        }
        // A pixel reads in place when its window lies inside the row and its last read ends
        // inside `x` (and inside the zero row: `ix0 + kw ≤ iw` keeps it there). Monotone in ox.
        let fits = |ox: usize| {
            let Some(ix0) = (ox * sw).checked_sub(pad_l) else {
                return false;
            };
            ix0 + kw <= iw
                && row_at[..kh]
                    .iter()
                    .flatten()
                    .all(|&r| r + ix0 * c + read <= x.len())
        };
        let mut hi = ox1;
        while hi > ox0.max(lo) && !fits(hi - 1) {
            hi -= 1;
        }
        let (mid0, mid1) = (ox0.max(lo).min(hi), hi);
        let first = p - pixels.start;
        if mid0 < mid1 {
            let ix0 = mid0 * sw - pad_l;
            let mut rows = [zrow.as_ptr(); MAX_KH];
            for (r, at) in rows.iter_mut().zip(&row_at).take(kh) {
                *r = match at {
                    Some(at) => x[at + ix0 * c..].as_ptr(),
                    None => zrow[ix0 * c..].as_ptr(),
                };
            }
            let taps = Taps {
                rows,
                pix_stride: sw * c,
                npix: mid1 - mid0,
            };
            seg(&taps, first + (mid0 - ox0));
        }
        // Staged pixels: before and after the in-place ones.
        for range in [ox0..mid0, mid1.max(ox0)..ox1] {
            let mut ox = range.start;
            while ox < range.end {
                let n = (range.end - ox).min(PMAX);
                for j in 0..n {
                    for (ky, at) in row_at.iter().enumerate().take(kh) {
                        let dst = &mut stage[(j * kh + ky) * read..][..read];
                        dst.fill(pad);
                        let Some(at) = at else { continue };
                        for kx in 0..kw {
                            if let Some(ix) = win.w.input_of(ox + j, kx) {
                                let src = &x[at + ix * c..][..c];
                                dst[kx * c..(kx + 1) * c].copy_from_slice(src);
                            }
                        }
                    }
                }
                let mut rows = [stage.as_ptr(); MAX_KH];
                for (ky, r) in rows.iter_mut().enumerate().take(kh) {
                    *r = stage[ky * read..].as_ptr();
                }
                let taps = Taps {
                    rows,
                    pix_stride: kh * read,
                    npix: n,
                };
                seg(&taps, first + (ox - ox0));
                ox += n;
            }
        }
        p += ox1 - ox0;
    }
}

#[cfg(test)]
mod tests;
