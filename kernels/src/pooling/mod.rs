//! MAX_POOL_2D and AVERAGE_POOL_2D over NHWC tensors, f32 and int8 / uint8, and the reductions
//! (MEAN, SUM, REDUCE_MAX) in [`reduce`].
//!
//! Semantics are TFLite's reference kernels: the window only counts taps inside the input
//! (padding is never averaged in); integer average pooling rounds `(sum ± count/2) / count`
//! half away from zero; the fused activation is the output clamp (`[lo, hi]`, already quantized
//! for integers). Kernels write output rows `rows` (a range over `batch * out_h`) into an output
//! slice that holds exactly those rows (row `rows.start` first), so that the caller can split
//! one op across threads; they allocate nothing.
//!
//! Channels are innermost, so each tap is a contiguous run of `C` values: the loops are written
//! once ([`generic`]) and compiled again inside `#[target_feature]` entry points per x86 tier,
//! where the compiler vectorizes them with that tier's registers. On aarch64 the baseline target
//! already includes NEON, so the portable build is the NEON build.

pub mod reduce;

pub use crate::gemm::Q8;
use crate::window::Window2d;
use crate::Isa;
use std::ops::Range;

/// Max pooling, f32: `out = clamp(max over the window, lo, hi)`.
pub type MaxPoolF32 = fn(&Window2d, &[f32], &mut [f32], Range<usize>, f32, f32);
/// Average pooling, f32: `out = clamp(sum / count, lo, hi)`.
pub type AvgPoolF32 = fn(&Window2d, &[f32], &mut [f32], Range<usize>, f32, f32);
/// Max or average pooling, 8-bit: the clamp bounds are quantized values.
pub type PoolQ<T> = fn(&Window2d, &[T], &mut [T], Range<usize>, i32, i32);

/// The pooling kernels of one ISA tier.
#[derive(Clone, Copy, Debug)]
pub struct PoolKernels {
    /// The tier these kernels were compiled for.
    pub isa: Isa,
    /// f32 max pooling.
    pub max_f32: MaxPoolF32,
    /// f32 average pooling.
    pub avg_f32: AvgPoolF32,
    /// int8 max pooling.
    pub max_i8: PoolQ<i8>,
    /// int8 average pooling.
    pub avg_i8: PoolQ<i8>,
    /// uint8 max pooling.
    pub max_u8: PoolQ<u8>,
    /// uint8 average pooling.
    pub avg_u8: PoolQ<u8>,
}

impl PoolKernels {
    /// The kernels of tier `isa`, or `None` when that tier may not run here (see
    /// [`Isa::enabled`]).
    pub fn for_isa(isa: Isa) -> Option<PoolKernels> {
        if !isa.enabled() {
            return None;
        }
        match isa {
            Isa::Scalar => Some(PoolKernels {
                isa,
                max_f32: generic::max_f32,
                avg_f32: generic::avg_f32,
                max_i8: generic::max_q::<i8>,
                avg_i8: generic::avg_q::<i8>,
                max_u8: generic::max_q::<u8>,
                avg_u8: generic::avg_q::<u8>,
            }),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => Some(PoolKernels {
                isa,
                max_f32: avx2::max_f32,
                avg_f32: avx2::avg_f32,
                max_i8: avx2::max_i8,
                avg_i8: avx2::avg_i8,
                max_u8: avx2::max_u8,
                avg_u8: avx2::avg_u8,
            }),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => Some(PoolKernels {
                isa,
                max_f32: avx512::max_f32,
                avg_f32: avx512::avg_f32,
                max_i8: avx512::max_i8,
                avg_i8: avx512::avg_i8,
                max_u8: avx512::max_u8,
                avg_u8: avx512::avg_u8,
            }),
            _ => None,
        }
    }

    /// The portable kernels (the dispatch table's floor).
    pub fn scalar() -> PoolKernels {
        PoolKernels::for_isa(Isa::Scalar).expect("the scalar tier is always enabled")
    }

    /// The best enabled tier's kernels (what the dispatch table plugs in).
    pub fn best() -> PoolKernels {
        [Isa::Avx512Vnni, Isa::Avx2]
            .into_iter()
            .find_map(PoolKernels::for_isa)
            .unwrap_or_else(PoolKernels::scalar)
    }

    /// The dispatch table's kernels.
    pub fn active() -> &'static PoolKernels {
        &crate::dispatch::kernels().pooling
    }
}

/// Checks the slice lengths against the geometry (once per call, not per element).
fn check<T>(w: &Window2d, input: &[T], output: &[T], rows: &Range<usize>) {
    assert_eq!(w.in_c, w.out_c, "pooling keeps the channel count");
    assert!(
        input.len() >= w.input_len(),
        "pool input: {} < {}",
        input.len(),
        w.input_len()
    );
    assert!(
        rows.start <= rows.end && rows.end <= w.output_rows(),
        "pool rows {rows:?}"
    );
    let need = rows.len() * w.w.output * w.out_c;
    assert!(
        output.len() >= need,
        "pool output: {} < {need} for rows {rows:?}",
        output.len(),
    );
}

/// The loops, written once; instantiated per tier.
pub mod generic {
    use super::*;

    /// Window taps of output `(row, ox)` that lie inside the input: the input offset of the
    /// first tap, the taps per window row, the window rows, and the offset between window rows.
    /// Taps are visited in TFLite's order (rows outer, columns inner).
    #[inline(always)]
    fn window(w: &Window2d, row: usize, ox: usize) -> (usize, usize, usize, usize) {
        let oh = w.h.output;
        let (b, oy) = (row / oh, row % oh);
        let (fy0, fy1) = w.h.taps_inside(oy);
        let (fx0, fx1) = w.w.taps_inside(ox);
        let iy = oy * w.h.stride + fy0 - w.h.pad_before;
        let ix = ox * w.w.stride + fx0 - w.w.pad_before;
        let first = ((b * w.h.input + iy) * w.w.input + ix) * w.in_c;
        (first, fx1 - fx0, fy1 - fy0, w.w.input * w.in_c)
    }

    /// f32 max pooling (see [`MaxPoolF32`]).
    #[inline(always)]
    pub fn max_f32(
        w: &Window2d,
        input: &[f32],
        output: &mut [f32],
        rows: Range<usize>,
        lo: f32,
        hi: f32,
    ) {
        check(w, input, output, &rows);
        let c = w.in_c;
        let r0 = rows.start;
        for row in rows {
            for ox in 0..w.w.output {
                let out = &mut output[((row - r0) * w.w.output + ox) * c..][..c];
                out.fill(f32::MIN);
                let (first, nx, ny, row_step) = window(w, row, ox);
                for y in 0..ny {
                    for x in 0..nx {
                        let off = first + y * row_step + x * c;
                        for (o, &v) in out.iter_mut().zip(&input[off..off + c]) {
                            if *o < v {
                                *o = v;
                            }
                        }
                    }
                }
                for o in out.iter_mut() {
                    *o = o.max(lo).min(hi);
                }
            }
        }
    }

    /// f32 average pooling (see [`AvgPoolF32`]).
    #[inline(always)]
    pub fn avg_f32(
        w: &Window2d,
        input: &[f32],
        output: &mut [f32],
        rows: Range<usize>,
        lo: f32,
        hi: f32,
    ) {
        check(w, input, output, &rows);
        let c = w.in_c;
        let r0 = rows.start;
        for row in rows {
            for ox in 0..w.w.output {
                let out = &mut output[((row - r0) * w.w.output + ox) * c..][..c];
                out.fill(0.0);
                let (first, nx, ny, row_step) = window(w, row, ox);
                for y in 0..ny {
                    for x in 0..nx {
                        let off = first + y * row_step + x * c;
                        for (o, &v) in out.iter_mut().zip(&input[off..off + c]) {
                            *o += v;
                        }
                    }
                }
                let n = (nx * ny) as f32;
                for o in out.iter_mut() {
                    *o = (*o / n).max(lo).min(hi);
                }
            }
        }
    }

    /// 8-bit max pooling (see [`PoolQ`]).
    #[inline(always)]
    pub fn max_q<T: Q8 + Ord>(
        w: &Window2d,
        input: &[T],
        output: &mut [T],
        rows: Range<usize>,
        lo: i32,
        hi: i32,
    ) {
        check(w, input, output, &rows);
        let c = w.in_c;
        let (lo, hi) = (
            T::from_i32(lo.clamp(T::MIN, T::MAX)),
            T::from_i32(hi.clamp(T::MIN, T::MAX)),
        );
        let r0 = rows.start;
        for row in rows {
            for ox in 0..w.w.output {
                let out = &mut output[((row - r0) * w.w.output + ox) * c..][..c];
                out.fill(T::from_i32(T::MIN));
                let (first, nx, ny, row_step) = window(w, row, ox);
                for y in 0..ny {
                    for x in 0..nx {
                        let off = first + y * row_step + x * c;
                        for (o, &v) in out.iter_mut().zip(&input[off..off + c]) {
                            *o = (*o).max(v);
                        }
                    }
                }
                for o in out.iter_mut() {
                    *o = (*o).max(lo).min(hi);
                }
            }
        }
    }

    /// 8-bit average pooling (see [`PoolQ`]): rounds half away from zero, as TFLite.
    #[inline(always)]
    pub fn avg_q<T: Q8>(
        w: &Window2d,
        input: &[T],
        output: &mut [T],
        rows: Range<usize>,
        lo: i32,
        hi: i32,
    ) {
        check(w, input, output, &rows);
        const BLOCK: usize = 64;
        let c = w.in_c;
        let (lo, hi) = (lo.max(T::MIN), hi.min(T::MAX));
        let r0 = rows.start;
        for row in rows {
            for ox in 0..w.w.output {
                let out_off = ((row - r0) * w.w.output + ox) * c;
                let mut c0 = 0;
                while c0 < c {
                    let n = BLOCK.min(c - c0);
                    let mut acc = [0i32; BLOCK];
                    let acc = &mut acc[..n];
                    let (first, nx, ny, row_step) = window(w, row, ox);
                    let count = (nx * ny) as i32;
                    for y in 0..ny {
                        for x in 0..nx {
                            let off = first + y * row_step + x * c + c0;
                            for (a, &v) in acc.iter_mut().zip(&input[off..off + n]) {
                                *a += v.to_i32();
                            }
                        }
                    }
                    let half = count / 2;
                    for (o, &a) in output[out_off + c0..out_off + c0 + n]
                        .iter_mut()
                        .zip(acc.iter())
                    {
                        let r = if a > 0 {
                            (a + half) / count
                        } else {
                            (a - half) / count
                        };
                        *o = T::from_i32(r.max(lo).min(hi));
                    }
                    c0 += n;
                }
            }
        }
    }
}

/// Instantiates the generic loops inside `#[target_feature]` functions for one x86 tier.
#[cfg(target_arch = "x86_64")]
macro_rules! pool_tier {
    ($module:ident, $features:literal, $isa:expr) => {
        mod $module {
            use super::*;

            macro_rules! entry {
                ($name:ident, $inner:ident, $body:path, $t:ty, $b:ty) => {
                    #[target_feature(enable = $features)]
                    unsafe fn $inner(
                        w: &Window2d,
                        i: &[$t],
                        o: &mut [$t],
                        r: Range<usize>,
                        lo: $b,
                        hi: $b,
                    ) {
                        $body(w, i, o, r, lo, hi)
                    }

                    /// Only reachable through a [`PoolKernels`] table of this tier.
                    pub(super) fn $name(
                        w: &Window2d,
                        i: &[$t],
                        o: &mut [$t],
                        r: Range<usize>,
                        lo: $b,
                        hi: $b,
                    ) {
                        debug_assert!($isa.enabled());
                        // SAFETY: this function is only placed in a `PoolKernels` table by
                        // `PoolKernels::for_isa`, which checks that the tier's features are
                        // present on this CPU.
                        unsafe { $inner(w, i, o, r, lo, hi) }
                    }
                };
            }

            entry!(max_f32, max_f32_tf, generic::max_f32, f32, f32);
            entry!(avg_f32, avg_f32_tf, generic::avg_f32, f32, f32);
            entry!(max_i8, max_i8_tf, generic::max_q::<i8>, i8, i32);
            entry!(avg_i8, avg_i8_tf, generic::avg_q::<i8>, i8, i32);
            entry!(max_u8, max_u8_tf, generic::max_q::<u8>, u8, i32);
            entry!(avg_u8, avg_u8_tf, generic::avg_q::<u8>, u8, i32);
        }
    };
}

#[cfg(target_arch = "x86_64")]
pool_tier!(avx2, "avx2,fma", Isa::Avx2);
#[cfg(target_arch = "x86_64")]
pool_tier!(
    avx512,
    "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma",
    Isa::Avx512Vnni
);

#[cfg(test)]
mod tests;
