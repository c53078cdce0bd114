//! DEPTHWISE_CONV_2D over NHWC tensors, f32 and int8 / uint8, with TFLite's semantics.
//!
//! Weights are TFLite's `[1, kh, kw, in_c · depth_multiplier]`; output channel
//! `oc = ic · depth_multiplier + m` reads input channel `ic`. Taps that fall in the padding are
//! skipped (for integers that is the same as reading the input zero point), exactly as
//! `reference_integer_ops::DepthwiseConvPerChannel` and `reference_ops::DepthwiseConv` do, so
//! int8 / uint8 outputs are bit-identical to TFLite's reference kernels:
//! `out = requant(bias + Σ (x − zx) · (w − zw))`.
//!
//! A prepared op ([`DepthwiseF32`], [`DepthwiseQ`]) owns its weights in the kernel's layout
//! (f32 as given; 8-bit widened to i16 with the weight zero point subtracted) and its bias. A call
//! computes output rows `rows` (a range over `batch · out_h`) and allocates nothing.
//!
//! Channels are innermost. In the interior of a row (every tap inside the input) the kernel
//! computes 4 neighbouring output pixels × 16 channels at once (`dwconv_f32_4x16` in the naming
//! grammar): the accumulators stay in registers, each weight vector is loaded once per tap for
//! the 4 pixels, and the taps are a precomputed list of offsets. Border pixels take the same
//! loop with one pixel. The loops are written once ([`generic`]) and compiled per x86 tier inside
//! `#[target_feature]` entry points (with FMA where the tier has it); on aarch64 the baseline
//! build is the NEON build. A depth multiplier above 1, or a window of more than
//! [`generic::MAX_TAPS`] taps, takes a plain per-channel loop.
//!
//! On AVX-512 CPUs with VBMI and VNNI, 8-bit 3×3 and 5×5 windows (dilation 1, horizontal stride
//! 1 or 2, weights within i8) take a row kernel (`avx512::dwconv_q8_rows_vbmi`): per 16
//! channels, each input column's bytes of 4 window rows are interleaved once (`vpermt2b`, int8
//! offset by 128 to read as unsigned, the offset folded into the initial value) and fed to every
//! output pixel whose window covers it with one `vpdpbusd`; window rows in the padding read a
//! row of the zero point and padded columns a zero-point vector (zero terms, as the reference's
//! skipped taps); the requantization combines TFLite's two roundings in one 64-bit division.
//! 3×3 windows of stride 1 take two output rows at once: the 4 input rows under both windows
//! are interleaved once per column and feed both rows (weights `[w0, w1, w2, 0]` and
//! `[0, w0, w1, w2]`).
//! f32 3×3 and 5×5 windows (horizontal stride 1 or 2) load each input column once per window row likewise
//! (`avx512::dwconv_f32_rows`, same tap order as the pixel tiles).

use crate::gemm::Q8;
use crate::requant::Requant;
use crate::window::Window2d;
use crate::Isa;
use std::fmt;
use std::ops::Range;

/// Channels accumulated per pixel before one requantization pass (8-bit path).
pub const BLOCK: usize = 64;

/// Why a depthwise convolution cannot be prepared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DepthwiseError {
    /// `out_c` is not `in_c · depth_multiplier`.
    Channels {
        /// Input channels.
        in_c: usize,
        /// Output channels.
        out_c: usize,
    },
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
}

impl fmt::Display for DepthwiseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DepthwiseError::Channels { in_c, out_c } => write!(
                f,
                "depthwise: output channels {out_c} are not a multiple of input channels {in_c}"
            ),
            DepthwiseError::Length {
                what,
                expected,
                found,
            } => {
                write!(
                    f,
                    "depthwise: {what} has {found} elements, expected {expected}"
                )
            }
            DepthwiseError::ZeroPoint { what, value } => {
                write!(f, "depthwise: {what} zero point {value} out of range")
            }
        }
    }
}

impl std::error::Error for DepthwiseError {}

fn multiplier(win: &Window2d) -> Result<usize, DepthwiseError> {
    if !win.out_c.is_multiple_of(win.in_c) {
        return Err(DepthwiseError::Channels {
            in_c: win.in_c,
            out_c: win.out_c,
        });
    }
    Ok(win.out_c / win.in_c)
}

fn check_len(what: &'static str, expected: usize, found: usize) -> Result<(), DepthwiseError> {
    if expected != found {
        return Err(DepthwiseError::Length {
            what,
            expected,
            found,
        });
    }
    Ok(())
}

/// A prepared f32 depthwise convolution.
#[derive(Clone, Debug)]
pub struct DepthwiseF32 {
    win: Window2d,
    dm: usize,
    weights: Vec<f32>,
    bias: Vec<f32>,
    min: f32,
    max: f32,
}

impl DepthwiseF32 {
    /// Prepares from TFLite's weights `[kh·kw·out_c]`, an optional bias `[out_c]` and the fused
    /// activation's clamp `[min, max]`.
    pub fn new(
        win: Window2d,
        weights: &[f32],
        bias: Option<&[f32]>,
        min: f32,
        max: f32,
    ) -> Result<DepthwiseF32, DepthwiseError> {
        let dm = multiplier(&win)?;
        check_len(
            "weights",
            win.h.kernel * win.w.kernel * win.out_c,
            weights.len(),
        )?;
        let bias = match bias {
            Some(b) => {
                check_len("bias", win.out_c, b.len())?;
                b.to_vec()
            }
            None => vec![0.0; win.out_c],
        };
        Ok(DepthwiseF32 {
            win,
            dm,
            weights: weights.to_vec(),
            bias,
            min,
            max,
        })
    }

    /// The geometry.
    pub fn window(&self) -> &Window2d {
        &self.win
    }

    /// Computes output rows `rows` (of `batch · out_h`) with the dispatched kernel.
    pub fn run(&self, input: &[f32], output: &mut [f32], rows: Range<usize>) {
        (DepthwiseKernels::active().f32)(self, input, output, rows)
    }
}

/// A prepared 8-bit depthwise convolution (int8 per-channel or legacy uint8 per-tensor).
#[derive(Clone, Debug)]
// The vector layouts below are read by the x86 kernels only.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub struct DepthwiseQ {
    core: generic::QCore,
    in_zp: i32,
    rq: Requant,
    /// The requantization's multiplier and shift per output channel (vector kernels load them).
    mult: Vec<i32>,
    shift: Vec<i32>,
    /// `bias − zx · Σ_taps w` per channel: with every tap inside the input,
    /// `bias + Σ (x − zx)·w = folded + Σ x·w`, one subtraction less per multiply-add.
    folded: Vec<i32>,
    /// Weights of taps (2q, 2q + 1) interleaved per channel, `[pair][out_c][2]` (the odd last
    /// tap paired with 0), for kernels that multiply two taps per instruction.
    wpairs: Vec<i16>,
    /// The row kernel's layout, when it applies (shape, weights within i8, CPU).
    #[cfg(target_arch = "x86_64")]
    rows: Option<avx512q::Rows>,
}

fn q_core(
    win: Window2d,
    weights: Vec<i16>,
    bias: Option<&[i32]>,
) -> Result<generic::QCore, DepthwiseError> {
    let dm = multiplier(&win)?;
    check_len(
        "weights",
        win.h.kernel * win.w.kernel * win.out_c,
        weights.len(),
    )?;
    let bias = match bias {
        Some(b) => {
            check_len("bias", win.out_c, b.len())?;
            b.to_vec()
        }
        None => vec![0; win.out_c],
    };
    Ok(generic::QCore {
        win,
        dm,
        weights,
        bias,
    })
}

impl DepthwiseQ {
    /// Prepares int8 weights (zero point 0) `[kh·kw·out_c]`.
    pub fn new(
        win: Window2d,
        weights: &[i8],
        bias: Option<&[i32]>,
        in_zp: i32,
        rq: Requant,
    ) -> Result<DepthwiseQ, DepthwiseError> {
        let w: Vec<i16> = weights.iter().map(|&v| v as i16).collect();
        DepthwiseQ::build(win, w, bias, in_zp, rq)
    }

    /// Prepares legacy uint8 weights with a per-tensor zero point.
    pub fn new_u8(
        win: Window2d,
        weights: &[u8],
        w_zp: i32,
        bias: Option<&[i32]>,
        in_zp: i32,
        rq: Requant,
    ) -> Result<DepthwiseQ, DepthwiseError> {
        if !(0..=255).contains(&w_zp) {
            return Err(DepthwiseError::ZeroPoint {
                what: "weight",
                value: w_zp,
            });
        }
        let w: Vec<i16> = weights.iter().map(|&v| (v as i32 - w_zp) as i16).collect();
        DepthwiseQ::build(win, w, bias, in_zp, rq)
    }

    fn build(
        win: Window2d,
        weights: Vec<i16>,
        bias: Option<&[i32]>,
        in_zp: i32,
        rq: Requant,
    ) -> Result<DepthwiseQ, DepthwiseError> {
        let core = q_core(win, weights, bias)?;
        if !(-128..=255).contains(&in_zp) {
            return Err(DepthwiseError::ZeroPoint {
                what: "input",
                value: in_zp,
            });
        }
        if !rq.is_per_tensor() {
            check_len("requant", win.out_c, rq.channels())?;
        }
        let (mult, shift) = (0..win.out_c).map(|c| rq.channel(c)).unzip();
        let mut folded = core.bias.clone();
        for tap in core.weights.chunks_exact(win.out_c) {
            for (f, &w) in folded.iter_mut().zip(tap) {
                *f = f.wrapping_sub(in_zp.wrapping_mul(w as i32));
            }
        }
        let taps = win.h.kernel * win.w.kernel;
        let mut wpairs = vec![0i16; taps.div_ceil(2) * win.out_c * 2];
        for (t, tap) in core.weights.chunks_exact(win.out_c).enumerate() {
            for (c, &w) in tap.iter().enumerate() {
                wpairs[((t / 2) * win.out_c + c) * 2 + t % 2] = w;
            }
        }
        #[cfg(target_arch = "x86_64")]
        let rows = avx512q::Rows::new(&core, in_zp, &rq);
        Ok(DepthwiseQ {
            core,
            in_zp,
            rq,
            mult,
            shift,
            folded,
            wpairs,
            #[cfg(target_arch = "x86_64")]
            rows,
        })
    }

    /// The geometry.
    pub fn window(&self) -> &Window2d {
        &self.core.win
    }

    /// The output requantization.
    pub fn requant(&self) -> &Requant {
        &self.rq
    }

    /// Whether interior rows take the row kernel (`avx512::dwconv_q8_rows_vbmi`).
    pub fn has_row_kernel(&self) -> bool {
        #[cfg(target_arch = "x86_64")]
        return self.rows.is_some();
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    /// Leaves the row kernel out (every pixel takes the tier's pixel-tile kernel), for tests and
    /// benchmarks that compare the two.
    #[doc(hidden)]
    pub fn without_row_kernel(self) -> DepthwiseQ {
        #[cfg(target_arch = "x86_64")]
        return DepthwiseQ { rows: None, ..self };
        #[cfg(not(target_arch = "x86_64"))]
        self
    }

    /// Computes output rows `rows` (of `batch · out_h`) with the dispatched kernel. `T` is the
    /// activation type (input and output): `i8` or `u8`.
    pub fn run<T: Q8>(&self, input: &[T], output: &mut [T], rows: Range<usize>) {
        let k = DepthwiseKernels::active();
        if T::UNSIGNED {
            let i: &[u8] = cast8(input);
            let o: &mut [u8] = cast8_mut(output);
            (k.u8)(self, i, o, rows)
        } else {
            let i: &[i8] = cast8(input);
            let o: &mut [i8] = cast8_mut(output);
            (k.i8)(self, i, o, rows)
        }
    }
}

/// A prepared dynamic-range ("hybrid") depthwise convolution: int8 per-channel weights, f32
/// activations quantized per batch image (asymmetric, TFLite's `AsymmetricQuantizeFloats`),
/// f32 output: `clamp(Σ (q − zp) · w · (w_scale[c] · in_scale) + bias[c])`, as TFLite's
/// `DepthwiseConvHybridPerChannel`.
#[derive(Clone, Debug)]
pub struct DepthwiseHybrid {
    core: generic::QCore,
    w_scales: Vec<f32>,
    bias: Vec<f32>,
    min: f32,
    max: f32,
}

impl DepthwiseHybrid {
    /// Prepares int8 weights `[kh·kw·out_c]` with their scales (one per output channel, or one
    /// for all), an optional f32 bias and the activation clamp.
    pub fn new(
        win: Window2d,
        weights: &[i8],
        w_scales: &[f32],
        bias: Option<&[f32]>,
        min: f32,
        max: f32,
    ) -> Result<DepthwiseHybrid, DepthwiseError> {
        let core = q_core(win, weights.iter().map(|&v| v as i16).collect(), None)?;
        let w_scales = match w_scales.len() {
            1 => vec![w_scales[0]; win.out_c],
            _ => {
                check_len("weight scales", win.out_c, w_scales.len())?;
                w_scales.to_vec()
            }
        };
        let bias = match bias {
            Some(b) => {
                check_len("bias", win.out_c, b.len())?;
                b.to_vec()
            }
            None => vec![0.0; win.out_c],
        };
        Ok(DepthwiseHybrid {
            core,
            w_scales,
            bias,
            min,
            max,
        })
    }

    /// The geometry.
    pub fn window(&self) -> &Window2d {
        &self.core.win
    }

    /// Quantizes the input, one asymmetric scale and zero point per batch image.
    pub fn quantize_input(
        &self,
        input: &[f32],
        q: &mut [i8],
        scales: &mut [f32],
        zero_points: &mut [i32],
    ) {
        let w = &self.core.win;
        let per_image = w.h.input * w.w.input * w.in_c;
        crate::gemm::quantize_rows_asymmetric(
            input,
            per_image,
            w.batch,
            per_image,
            q,
            per_image,
            scales,
            zero_points,
        );
    }

    /// Computes output rows `rows` (of `batch · out_h`) from the quantized input.
    pub fn run(
        &self,
        q: &[i8],
        scales: &[f32],
        zero_points: &[i32],
        output: &mut [f32],
        rows: Range<usize>,
    ) {
        (DepthwiseKernels::active().hybrid)(self, q, scales, zero_points, output, rows)
    }
}

/// `&[T]` as `&[U]` for the two one-byte Q8 types (same size, every bit pattern valid).
fn cast8<T: Q8, U: bytemuck::Pod>(s: &[T]) -> &[U] {
    assert_eq!(std::mem::size_of::<T>(), 1);
    assert_eq!(std::mem::size_of::<U>(), 1);
    // SAFETY: T and U are one-byte types (i8/u8; asserted above) with every bit pattern valid,
    // alignment 1; the length in elements is unchanged and the borrow is carried over.
    unsafe { std::slice::from_raw_parts(s.as_ptr() as *const U, s.len()) }
}

fn cast8_mut<T: Q8, U: bytemuck::Pod>(s: &mut [T]) -> &mut [U] {
    assert_eq!(std::mem::size_of::<T>(), 1);
    assert_eq!(std::mem::size_of::<U>(), 1);
    // SAFETY: as in `cast8`; the exclusive borrow is carried over.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr() as *mut U, s.len()) }
}

/// f32 depthwise kernel.
pub type DwF32 = fn(&DepthwiseF32, &[f32], &mut [f32], Range<usize>);
/// 8-bit depthwise kernel for activation type `T`.
pub type DwQ<T> = fn(&DepthwiseQ, &[T], &mut [T], Range<usize>);
/// Hybrid depthwise kernel: quantized input, per-batch scales and zero points, f32 output.
pub type DwHybrid = fn(&DepthwiseHybrid, &[i8], &[f32], &[i32], &mut [f32], Range<usize>);

/// The depthwise kernels of one ISA tier.
#[derive(Clone, Copy, Debug)]
pub struct DepthwiseKernels {
    /// The tier.
    pub isa: Isa,
    /// f32.
    pub f32: DwF32,
    /// int8 activations.
    pub i8: DwQ<i8>,
    /// uint8 activations.
    pub u8: DwQ<u8>,
    /// Dynamic-range (f32 activations quantized on the fly).
    pub hybrid: DwHybrid,
}

impl DepthwiseKernels {
    /// The kernels of tier `isa`, or `None` when that tier may not run here.
    pub fn for_isa(isa: Isa) -> Option<DepthwiseKernels> {
        if !isa.enabled() {
            return None;
        }
        match isa {
            Isa::Scalar => Some(DepthwiseKernels {
                isa,
                f32: generic::f32::<false>,
                i8: generic::q::<i8>,
                u8: generic::q::<u8>,
                hybrid: generic::hybrid,
            }),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => Some(DepthwiseKernels {
                isa,
                f32: avx2::f32,
                i8: avx2::i8,
                u8: avx2::u8,
                hybrid: avx2::hybrid,
            }),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => Some(DepthwiseKernels {
                isa,
                f32: avx512::f32,
                i8: avx512::i8,
                u8: avx512::u8,
                hybrid: avx512::hybrid,
            }),
            _ => None,
        }
    }

    /// The portable kernels (the dispatch table's floor).
    pub fn scalar() -> DepthwiseKernels {
        DepthwiseKernels::for_isa(Isa::Scalar).expect("the scalar tier is always enabled")
    }

    /// The best enabled tier's kernels (what the dispatch table plugs in).
    pub fn best() -> DepthwiseKernels {
        [Isa::Avx512Vnni, Isa::Avx2]
            .into_iter()
            .find_map(DepthwiseKernels::for_isa)
            .unwrap_or_else(DepthwiseKernels::scalar)
    }

    /// The dispatch table's kernels.
    pub fn active() -> &'static DepthwiseKernels {
        &crate::dispatch::kernels().depthwise
    }
}

fn check<T, U>(w: &Window2d, input: &[T], output: &[U], rows: &Range<usize>) {
    assert!(
        input.len() >= w.input_len(),
        "depthwise input {} < {}",
        input.len(),
        w.input_len()
    );
    assert!(
        output.len() >= w.output_len(),
        "depthwise output {} < {}",
        output.len(),
        w.output_len()
    );
    assert!(
        rows.start <= rows.end && rows.end <= w.output_rows(),
        "depthwise rows {rows:?}"
    );
}

/// The loops, written once; instantiated per tier.
pub mod generic {
    use super::*;

    #[inline(always)]
    fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
        if FMA {
            a.mul_add(b, c)
        } else {
            a * b + c
        }
    }

    /// Calls `f(tap, input_pixel_offset)` for each window tap of output `(row, ox)` that lies
    /// inside the input, rows outer, columns inner.
    #[inline(always)]
    fn for_taps(w: &Window2d, row: usize, ox: usize, mut f: impl FnMut(usize, usize)) {
        let (b, oy) = (row / w.h.output, row % w.h.output);
        for ky in 0..w.h.kernel {
            let Some(iy) = w.h.input_of(oy, ky) else {
                continue;
            };
            let base = (b * w.h.input + iy) * w.w.input;
            for kx in 0..w.w.kernel {
                let Some(ix) = w.w.input_of(ox, kx) else {
                    continue;
                };
                f(ky * w.w.kernel + kx, (base + ix) * w.in_c);
            }
        }
    }

    /// Window taps per output pixel handled by the register-blocked path.
    pub const MAX_TAPS: usize = 64;

    /// The taps of output `(row, ox)` inside the input as `(weight offset, input offset)`
    /// pairs (element offsets, the channel block is added by the caller); `kh·kw ≤ MAX_TAPS`.
    #[inline(always)]
    pub(super) fn tap_list(
        w: &Window2d,
        row: usize,
        ox: usize,
        list: &mut [(usize, usize); MAX_TAPS],
    ) -> usize {
        let (b, oy) = (row / w.h.output, row % w.h.output);
        let mut n = 0;
        for ky in 0..w.h.kernel {
            let Some(iy) = w.h.input_of(oy, ky) else {
                continue;
            };
            let base = (b * w.h.input + iy) * w.w.input;
            for kx in 0..w.w.kernel {
                let Some(ix) = w.w.input_of(ox, kx) else {
                    continue;
                };
                list[n] = ((ky * w.w.kernel + kx) * w.out_c, (base + ix) * w.in_c);
                n += 1;
            }
        }
        n
    }

    /// f32 depthwise (see [`DwF32`]); `FMA` fuses multiply-adds (tiers that have FMA).
    #[inline(always)]
    pub fn f32<const FMA: bool>(
        p: &DepthwiseF32,
        input: &[f32],
        output: &mut [f32],
        rows: Range<usize>,
    ) {
        let w = &p.win;
        check(w, input, output, &rows);
        let (c, oc) = (w.in_c, w.out_c);
        let mut list = [(0usize, 0usize); MAX_TAPS];
        let general = p.dm != 1 || w.h.kernel * w.w.kernel > MAX_TAPS;
        let (x_lo, x_hi) = w.w.interior();
        let dx = w.w.stride * c;
        for row in rows {
            let mut ox = 0;
            while !general && ox < w.w.output {
                if ox >= x_lo && ox + PX <= x_hi {
                    // PX neighbouring pixels with the same taps, shifted by `dx` in the input.
                    let nt = tap_list(w, row, ox, &mut list);
                    let taps = &list[..nt];
                    let out = &mut output[(row * w.w.output + ox) * oc..][..PX * oc];
                    let mut c0 = 0;
                    while c0 + 16 <= c {
                        block_f32_px::<16, PX, FMA>(p, input, out, taps, c0, dx);
                        c0 += 16;
                    }
                    while c0 + 4 <= c {
                        block_f32_px::<4, PX, FMA>(p, input, out, taps, c0, dx);
                        c0 += 4;
                    }
                    while c0 < c {
                        block_f32_px::<1, PX, FMA>(p, input, out, taps, c0, dx);
                        c0 += 1;
                    }
                    ox += PX;
                    continue;
                }
                let nt = tap_list(w, row, ox, &mut list);
                let taps = &list[..nt];
                let out = &mut output[(row * w.w.output + ox) * oc..][..oc];
                let mut c0 = 0;
                while c0 + 16 <= c {
                    block_f32_px::<16, 1, FMA>(p, input, out, taps, c0, dx);
                    c0 += 16;
                }
                while c0 + 4 <= c {
                    block_f32_px::<4, 1, FMA>(p, input, out, taps, c0, dx);
                    c0 += 4;
                }
                while c0 < c {
                    block_f32_px::<1, 1, FMA>(p, input, out, taps, c0, dx);
                    c0 += 1;
                }
                ox += 1;
            }
            for ox in 0..if general { w.w.output } else { 0 } {
                let out = &mut output[(row * w.w.output + ox) * oc..][..oc];
                {
                    out.copy_from_slice(&p.bias);
                    for_taps(w, row, ox, |t, off| {
                        let wt = &p.weights[t * oc..][..oc];
                        for (ic, &x) in input[off..off + c].iter().enumerate() {
                            for m in 0..p.dm {
                                let o = ic * p.dm + m;
                                out[o] = madd::<false>(x, wt[o], out[o]);
                            }
                        }
                    });
                    for o in out.iter_mut() {
                        *o = clamp(*o, p.min, p.max);
                    }
                }
            }
        }
    }

    /// TFLite's `ActivationFunctionWithMinMax`: `min(max(x, lo), hi)` with std's operand order.
    #[inline(always)]
    fn clamp(x: f32, lo: f32, hi: f32) -> f32 {
        let v = if x < lo { lo } else { x };
        if hi < v {
            hi
        } else {
            v
        }
    }

    /// Output pixels in the register tile of the interior (same taps, shifted input).
    pub(super) const PX: usize = 4;

    /// Channels `c0..c0 + N` of `P` neighbouring output pixels (input offsets `dx` apart; the
    /// outputs are consecutive pixels of `out`), accumulators in registers (dm = 1).
    #[inline(always)]
    fn block_f32_px<const N: usize, const P: usize, const FMA: bool>(
        p: &DepthwiseF32,
        input: &[f32],
        out: &mut [f32],
        taps: &[(usize, usize)],
        c0: usize,
        dx: usize,
    ) {
        let bias: [f32; N] = p.bias[c0..c0 + N].try_into().unwrap();
        let mut acc = [bias; P];
        let last = taps.last().map_or(0, |&(_, io)| io + (P - 1) * dx + c0 + N);
        assert!(last <= input.len() && c0 + N <= p.win.out_c);
        for &(wo, io) in taps {
            debug_assert!(io + (P - 1) * dx + c0 + N <= input.len());
            debug_assert!(wo + c0 + N <= p.weights.len());
            // SAFETY: `wo` is a tap's weight offset (`tap · out_c`) and c0 + N ≤ out_c, so the
            // N weights lie inside `weights` (kh·kw·out_c long).
            let wt = unsafe { &*(p.weights.as_ptr().add(wo + c0) as *const [f32; N]) };
            for (j, a) in acc.iter_mut().enumerate() {
                // SAFETY: pixel j of the tile is inside the input at every tap (interior tile,
                // or P = 1 with `io` from `tap_list`), so channels c0..c0 + N are in bounds; the
                // assert above bounds the largest offset by input.len().
                let x = unsafe { &*(input.as_ptr().add(io + j * dx + c0) as *const [f32; N]) };
                for i in 0..N {
                    a[i] = madd::<FMA>(x[i], wt[i], a[i]);
                }
            }
        }
        let (lo, hi) = (p.min, p.max);
        let oc = p.win.out_c;
        for (j, a) in acc.iter().enumerate() {
            let o: &mut [f32; N] = (&mut out[j * oc + c0..][..N]).try_into().unwrap();
            for i in 0..N {
                o[i] = clamp(a[i], lo, hi);
            }
        }
    }

    /// Turns the int32 accumulators of channels `c0..c0 + acc.len()` into outputs.
    pub trait Epilogue<O> {
        /// Writes `out[i]` from `acc[i]` (channel `c0 + i`).
        fn row(&self, acc: &[i32], c0: usize, out: &mut [O]);
    }

    impl<T: Q8> Epilogue<T> for &Requant {
        #[inline(always)]
        fn row(&self, acc: &[i32], c0: usize, out: &mut [T]) {
            self.apply_row(acc, c0, out)
        }
    }

    /// TFLite's hybrid epilogue: `clamp(acc · (w_scale[c] · input_scale) + bias[c])`.
    pub struct HybridEpilogue<'a> {
        /// The batch image's input scale.
        pub input_scale: f32,
        /// Per-channel weight scales.
        pub w_scales: &'a [f32],
        /// Per-channel bias.
        pub bias: &'a [f32],
        /// Clamp.
        pub min: f32,
        /// Clamp.
        pub max: f32,
    }

    impl Epilogue<f32> for HybridEpilogue<'_> {
        #[inline(always)]
        fn row(&self, acc: &[i32], c0: usize, out: &mut [f32]) {
            let n = acc.len();
            let (ws, b) = (&self.w_scales[c0..c0 + n], &self.bias[c0..c0 + n]);
            for i in 0..n {
                let v = acc[i] as f32 * (ws[i] * self.input_scale) + b[i];
                out[i] = clamp(v, self.min, self.max);
            }
        }
    }

    /// The integer weights and bias of an 8-bit or hybrid depthwise convolution.
    #[derive(Clone, Debug)]
    pub(super) struct QCore {
        pub win: Window2d,
        pub dm: usize,
        /// `w − zw`, `[kh·kw·out_c]`.
        pub weights: Vec<i16>,
        pub bias: Vec<i32>,
    }

    /// 8-bit depthwise (see [`DwQ`]).
    #[inline(always)]
    pub fn q<T: Q8>(p: &DepthwiseQ, input: &[T], output: &mut [T], rows: Range<usize>) {
        let zp = p.in_zp;
        let rq = &p.rq;
        q_core(&p.core, input, output, rows, |_| zp, |_| rq);
    }

    /// Hybrid depthwise (see [`DwHybrid`]).
    #[inline(always)]
    pub fn hybrid(
        p: &DepthwiseHybrid,
        q: &[i8],
        scales: &[f32],
        zero_points: &[i32],
        output: &mut [f32],
        rows: Range<usize>,
    ) {
        let batch = p.core.win.batch;
        assert!(
            scales.len() >= batch && zero_points.len() >= batch,
            "hybrid depthwise: batch params"
        );
        q_core(
            &p.core,
            q,
            output,
            rows,
            |b| zero_points[b],
            |b| HybridEpilogue {
                input_scale: scales[b],
                w_scales: &p.w_scales,
                bias: &p.bias,
                min: p.min,
                max: p.max,
            },
        );
    }

    /// The integer loops: accumulators `bias + Σ (x − zp(b)) · w`, then `epi(b)` per row of
    /// channels, `b` the batch image of the output row.
    #[inline(always)]
    fn q_core<T: Q8, O: Copy, E: Epilogue<O>>(
        p: &QCore,
        input: &[T],
        output: &mut [O],
        rows: Range<usize>,
        zp_of: impl Fn(usize) -> i32,
        epi_of: impl Fn(usize) -> E,
    ) {
        let w = &p.win;
        check(w, input, output, &rows);
        let (c, oc) = (w.in_c, w.out_c);
        let mut list = [(0usize, 0usize); MAX_TAPS];
        let general = p.dm != 1 || w.h.kernel * w.w.kernel > MAX_TAPS;
        let (x_lo, x_hi) = w.w.interior();
        let dx = w.w.stride * c;
        for row in rows {
            let b = row / w.h.output;
            let (zp, epi) = (zp_of(b), epi_of(b));
            for ox in 0..if general { w.w.output } else { 0 } {
                let out = &mut output[(row * w.w.output + ox) * oc..][..oc];
                for (o, dst) in out.chunks_exact_mut(1).enumerate() {
                    let (ic, mut acc) = (o / p.dm, p.bias[o]);
                    for_taps(w, row, ox, |t, off| {
                        acc += (input[off + ic].to_i32() - zp) * p.weights[t * oc + o] as i32;
                    });
                    epi.row(&[acc], o, dst);
                }
            }
            let mut ox = 0;
            while !general && ox < w.w.output {
                let nt = tap_list(w, row, ox, &mut list);
                let taps = &list[..nt];
                let out_row = (row * w.w.output + ox) * oc;
                if ox >= x_lo && ox + PX <= x_hi {
                    let out = &mut output[out_row..out_row + PX * oc];
                    q_pixels::<T, O, E, PX>(p, input, out, taps, dx, zp, &epi);
                    ox += PX;
                } else {
                    let out = &mut output[out_row..out_row + oc];
                    q_pixels::<T, O, E, 1>(p, input, out, taps, dx, zp, &epi);
                    ox += 1;
                }
            }
        }
    }

    /// `P` neighbouring output pixels (dm = 1): channel chunks of [`BLOCK`] accumulated in
    /// registers 16 at a time, then passed to the epilogue row by row.
    #[inline(always)]
    fn q_pixels<T: Q8, O: Copy, E: Epilogue<O>, const P: usize>(
        p: &QCore,
        input: &[T],
        out: &mut [O],
        taps: &[(usize, usize)],
        dx: usize,
        zp: i32,
        epi: &E,
    ) {
        let (c, oc) = (p.win.in_c, p.win.out_c);
        let mut acc = [[0i32; BLOCK]; P];
        let mut c0 = 0;
        while c0 < c {
            let n = BLOCK.min(c - c0);
            let mut k = 0;
            while k + 16 <= n {
                block_q_px::<T, 16, P>(p, input, &mut acc, taps, c0, k, dx, zp);
                k += 16;
            }
            while k + 4 <= n {
                block_q_px::<T, 4, P>(p, input, &mut acc, taps, c0, k, dx, zp);
                k += 4;
            }
            while k < n {
                block_q_px::<T, 1, P>(p, input, &mut acc, taps, c0, k, dx, zp);
                k += 1;
            }
            for (j, a) in acc.iter().enumerate() {
                epi.row(&a[..n], c0, &mut out[j * oc + c0..j * oc + c0 + n]);
            }
            c0 += n;
        }
    }

    /// Channels `c0 + k .. c0 + k + N` of `P` pixels into `acc[j][k..k + N]`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn block_q_px<T: Q8, const N: usize, const P: usize>(
        p: &QCore,
        input: &[T],
        acc: &mut [[i32; BLOCK]; P],
        taps: &[(usize, usize)],
        c0: usize,
        k: usize,
        dx: usize,
        zp: i32,
    ) {
        let ch = c0 + k;
        let bias: [i32; N] = p.bias[ch..ch + N].try_into().unwrap();
        let mut a = [bias; P];
        // One bounds check per tile instead of one per load: the last pixel's last tap.
        let last = taps.last().map_or(0, |&(_, io)| io + (P - 1) * dx + ch + N);
        assert!(last <= input.len() && ch + N <= p.win.out_c);
        for &(wo, io) in taps {
            debug_assert!(io + (P - 1) * dx + ch + N <= input.len());
            debug_assert!(wo + ch + N <= p.weights.len());
            // SAFETY: `wo` is a tap's weight offset (`tap · out_c`, tap < kh·kw) and
            // ch + N ≤ out_c, so the N weights lie inside `weights` (kh·kw·out_c long).
            let wt = unsafe { &*(p.weights.as_ptr().add(wo + ch) as *const [i16; N]) };
            for (j, aj) in a.iter_mut().enumerate() {
                // SAFETY: `io` is the offset of an input pixel inside the input and the P pixels
                // of a tile are interior (every tap inside), so pixel j's channels ch..ch + N
                // are inside; the assert above bounds the largest such offset by input.len().
                let x = unsafe { &*(input.as_ptr().add(io + j * dx + ch) as *const [T; N]) };
                for i in 0..N {
                    aj[i] += (x[i].to_i32() - zp) * wt[i] as i32;
                }
            }
        }
        for (dst, src) in acc.iter_mut().zip(&a) {
            dst[k..k + N].copy_from_slice(src);
        }
    }
}

/// Instantiates the generic loops inside `#[target_feature]` functions for one x86 tier.
#[cfg(target_arch = "x86_64")]
macro_rules! dw_tier {
    ($module:ident, $features:literal, $isa:expr, $qf32:path, $qi8:path, $qu8:path) => {
        mod $module {
            use super::*;

            #[target_feature(enable = $features)]
            unsafe fn f32_tf(p: &DepthwiseF32, i: &[f32], o: &mut [f32], r: Range<usize>) {
                $qf32(p, i, o, r)
            }
            #[target_feature(enable = $features)]
            unsafe fn i8_tf(p: &DepthwiseQ, i: &[i8], o: &mut [i8], r: Range<usize>) {
                $qi8(p, i, o, r)
            }
            #[target_feature(enable = $features)]
            unsafe fn u8_tf(p: &DepthwiseQ, i: &[u8], o: &mut [u8], r: Range<usize>) {
                $qu8(p, i, o, r)
            }

            /// Only reachable through a [`DepthwiseKernels`] table of this tier.
            pub(super) fn f32(p: &DepthwiseF32, i: &[f32], o: &mut [f32], r: Range<usize>) {
                debug_assert!($isa.enabled());
                // SAFETY: placed in a table only by `DepthwiseKernels::for_isa`, which checks
                // that this tier's features are present.
                unsafe { f32_tf(p, i, o, r) }
            }
            /// Only reachable through a [`DepthwiseKernels`] table of this tier.
            pub(super) fn i8(p: &DepthwiseQ, i: &[i8], o: &mut [i8], r: Range<usize>) {
                debug_assert!($isa.enabled());
                // SAFETY: as for `f32`.
                unsafe { i8_tf(p, i, o, r) }
            }
            #[target_feature(enable = $features)]
            unsafe fn hybrid_tf(
                p: &DepthwiseHybrid,
                q: &[i8],
                s: &[f32],
                z: &[i32],
                o: &mut [f32],
                r: Range<usize>,
            ) {
                generic::hybrid(p, q, s, z, o, r)
            }
            /// Only reachable through a [`DepthwiseKernels`] table of this tier.
            pub(super) fn hybrid(
                p: &DepthwiseHybrid,
                q: &[i8],
                s: &[f32],
                z: &[i32],
                o: &mut [f32],
                r: Range<usize>,
            ) {
                debug_assert!($isa.enabled());
                // SAFETY: as for `f32`.
                unsafe { hybrid_tf(p, q, s, z, o, r) }
            }
            /// Only reachable through a [`DepthwiseKernels`] table of this tier.
            pub(super) fn u8(p: &DepthwiseQ, i: &[u8], o: &mut [u8], r: Range<usize>) {
                debug_assert!($isa.enabled());
                // SAFETY: as for `f32`.
                unsafe { u8_tf(p, i, o, r) }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
dw_tier!(
    avx2,
    "avx2,fma",
    Isa::Avx2,
    generic::f32::<true>,
    generic::q::<i8>,
    generic::q::<u8>
);
#[cfg(target_arch = "x86_64")]
dw_tier!(
    avx512,
    "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma",
    Isa::Avx512Vnni,
    avx512q::f32,
    avx512q::q::<i8>,
    avx512q::q::<u8>
);
#[cfg(target_arch = "x86_64")]
mod avx512q;

#[cfg(test)]
mod tests;
