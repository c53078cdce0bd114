//! RESIZE_BILINEAR (f32; int8 with TFLite's integer algorithm `ResizeBilinearInteger`; uint8
//! with its float reference and +0.5 rounding) and RESIZE_NEAREST_NEIGHBOR, on NHWC tensors,
//! honouring `align_corners` and `half_pixel_centers` exactly as TFLite's reference kernels.

use crate::elementwise::ParamError;

/// A resolved resize of an NHWC tensor to `out_h × out_w`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResizePlan {
    pub n: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub c: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub align_corners: bool,
    pub half_pixel_centers: bool,
}

impl ResizePlan {
    /// `op` names the op in errors. Sizes must be positive and fit in i32 arithmetic, and
    /// `align_corners` excludes `half_pixel_centers` (as TFLite checks).
    pub fn new(
        op: &'static str,
        in_shape: &[usize],
        out_h: i64,
        out_w: i64,
        align_corners: bool,
        half_pixel_centers: bool,
    ) -> Result<Self, ParamError> {
        if in_shape.len() != 4 {
            return Err(ParamError::Shape {
                op,
                detail: format!("input must be 4-D NHWC, got {in_shape:?}"),
            });
        }
        if align_corners && half_pixel_centers {
            return Err(ParamError::Unsupported {
                op,
                detail: "align_corners and half_pixel_centers both set",
            });
        }
        // The integer algorithm needs (1 << 10) · size in i32.
        const LIMIT: i64 = 1 << 20;
        for (what, v) in [("output height", out_h), ("output width", out_w)] {
            if !(1..LIMIT).contains(&v) {
                return Err(ParamError::Param { op, what, value: v });
            }
        }
        for (what, v) in [("input height", in_shape[1]), ("input width", in_shape[2])] {
            if v == 0 || v as i64 >= LIMIT {
                return Err(ParamError::Param {
                    op,
                    what,
                    value: v as i64,
                });
            }
        }
        let total = [in_shape[0], out_h as usize, out_w as usize, in_shape[3]]
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d));
        if total.is_none() {
            return Err(ParamError::Shape {
                op,
                detail: "output size overflows".into(),
            });
        }
        Ok(ResizePlan {
            n: in_shape[0],
            in_h: in_shape[1],
            in_w: in_shape[2],
            c: in_shape[3],
            out_h: out_h as usize,
            out_w: out_w as usize,
            align_corners,
            half_pixel_centers,
        })
    }

    pub fn out_shape(&self) -> [usize; 4] {
        [self.n, self.out_h, self.out_w, self.c]
    }

    fn scale_f32(&self, in_size: usize, out_size: usize) -> f32 {
        if self.align_corners && out_size > 1 {
            (in_size - 1) as f32 / (out_size - 1) as f32
        } else {
            in_size as f32 / out_size as f32
        }
    }

    fn scale_10(&self, in_size: usize, out_size: usize) -> i32 {
        let (i, o) = (in_size as i32, out_size as i32);
        if self.align_corners && o > 1 {
            ((1 << 10) * (i - 1) + (o - 1) / 2) / (o - 1)
        } else {
            ((1 << 10) * i + o / 2) / o
        }
    }
}

/// TFLite `ComputeInterpolationValues`: (scaled coordinate, lower, upper).
#[inline]
fn interp_f32(value: usize, scale: f32, half_pixel: bool, in_size: usize) -> (f32, usize, usize) {
    let v = value as f32;
    let s = if half_pixel {
        (v + 0.5) * scale - 0.5
    } else {
        v * scale
    };
    let lo = (s.floor() as i32).max(0) as usize;
    let hi = (s.ceil() as i32).min(in_size as i32 - 1).max(0) as usize;
    (s, lo, hi)
}

/// TFLite `ComputeInterpolationValuesInteger` (10 fractional bits; C division truncates).
#[inline]
fn interp_int(
    value: usize,
    scale_10: i32,
    half_pixel: bool,
    in_size: usize,
) -> (i32, usize, usize) {
    let v = value as i32;
    let s = if half_pixel {
        v * scale_10 + scale_10 / 2 - (1 << 9)
    } else {
        v * scale_10
    };
    let lo = (s / (1 << 10)).max(0) as usize;
    let hi = ((s + (1 << 10) - 1) / (1 << 10))
        .min(in_size as i32 - 1)
        .max(0) as usize;
    (s, lo, hi)
}

/// The float reference shared by f32 (`offset` 0) and uint8 (`offset` 0.5, truncating cast).
fn bilinear_float<T: Copy>(
    p: &ResizePlan,
    x: &[T],
    out: &mut [T],
    to_f: impl Fn(T) -> f32,
    from_f: impl Fn(f32) -> T,
    offset: f32,
) {
    let hs = p.scale_f32(p.in_h, p.out_h);
    let ws = p.scale_f32(p.in_w, p.out_w);
    let c = p.c;
    let at = |b: usize, y: usize, xx: usize| ((b * p.in_h + y) * p.in_w + xx) * c;
    let mut o = 0;
    for b in 0..p.n {
        for y in 0..p.out_h {
            let (iy, y0, y1) = interp_f32(y, hs, p.half_pixel_centers, p.in_h);
            let dy = iy - y0 as f32;
            for xo in 0..p.out_w {
                let (ix, x0, x1) = interp_f32(xo, ws, p.half_pixel_centers, p.in_w);
                let dx = ix - x0 as f32;
                let (a, bb, cc, d) = (at(b, y0, x0), at(b, y1, x0), at(b, y0, x1), at(b, y1, x1));
                for ch in 0..c {
                    let v = to_f(x[a + ch]) * (1.0 - dy) * (1.0 - dx)
                        + to_f(x[bb + ch]) * dy * (1.0 - dx)
                        + to_f(x[cc + ch]) * (1.0 - dy) * dx
                        + to_f(x[d + ch]) * dy * dx
                        + offset;
                    out[o + ch] = from_f(v);
                }
                o += c;
            }
        }
    }
}

/// RESIZE_BILINEAR in f32 (TFLite's reference arithmetic).
pub fn resize_bilinear_f32(p: &ResizePlan, x: &[f32], out: &mut [f32]) {
    bilinear_float(p, x, out, |v| v, |v| v, 0.0)
}

/// RESIZE_BILINEAR on uint8 (TFLite's reference: the float path plus 0.5, truncated).
pub fn resize_bilinear_u8(p: &ResizePlan, x: &[u8], out: &mut [u8]) {
    bilinear_float(p, x, out, |v| v as f32, |v| v as u8, 0.5)
}

/// RESIZE_BILINEAR on int8 (TFLite's `ResizeBilinearInteger`: 10-bit fixed-point weights, one
/// rounding of the 20-bit product sum, half away from zero).
pub fn resize_bilinear_i8(p: &ResizePlan, x: &[i8], out: &mut [i8]) {
    let hs = p.scale_10(p.in_h, p.out_h);
    let ws = p.scale_10(p.in_w, p.out_w);
    let c = p.c;
    let at = |b: usize, y: usize, xx: usize| ((b * p.in_h + y) * p.in_w + xx) * c;
    let mut o = 0;
    for b in 0..p.n {
        for y in 0..p.out_h {
            let (iy, y0, y1) = interp_int(y, hs, p.half_pixel_centers, p.in_h);
            let wy1 = (iy - (1 << 10) * y0 as i32) as i64;
            let wy0 = (1 << 10) - wy1;
            for xo in 0..p.out_w {
                let (ix, x0, x1) = interp_int(xo, ws, p.half_pixel_centers, p.in_w);
                let wx1 = (ix - (1 << 10) * x0 as i32) as i64;
                let wx0 = (1 << 10) - wx1;
                let (a, bb, cc, d) = (at(b, y0, x0), at(b, y1, x0), at(b, y0, x1), at(b, y1, x1));
                for ch in 0..c {
                    let s = x[a + ch] as i64 * wy0 * wx0
                        + x[bb + ch] as i64 * wy1 * wx0
                        + x[cc + ch] as i64 * wy0 * wx1
                        + x[d + ch] as i64 * wy1 * wx1;
                    let round = if s > 0 { 1i64 << 19 } else { -(1i64 << 19) };
                    out[o + ch] = ((s + round) / (1 << 20)) as i8;
                }
                o += c;
            }
        }
    }
}

/// TFLite `GetNearestNeighbor`.
fn nearest(value: usize, in_size: usize, out_size: usize, align: bool, half: bool) -> usize {
    let scale = if align && out_size > 1 {
        (in_size - 1) as f32 / (out_size - 1) as f32
    } else {
        in_size as f32 / out_size as f32
    };
    let offset = if half { 0.5f32 } else { 0.0 };
    let s = (value as f32 + offset) * scale;
    let v = if align {
        s.round() as i32
    } else {
        s.floor() as i32
    };
    let v = v.min(in_size as i32 - 1);
    v.max(0) as usize
}

/// RESIZE_NEAREST_NEIGHBOR (any element type: it only copies).
pub fn resize_nearest<T: Copy>(p: &ResizePlan, x: &[T], out: &mut [T]) {
    let c = p.c;
    let mut o = 0;
    for b in 0..p.n {
        for y in 0..p.out_h {
            let iy = nearest(y, p.in_h, p.out_h, p.align_corners, p.half_pixel_centers);
            for xo in 0..p.out_w {
                let ix = nearest(xo, p.in_w, p.out_w, p.align_corners, p.half_pixel_centers);
                let src = ((b * p.in_h + iy) * p.in_w + ix) * c;
                out[o..o + c].copy_from_slice(&x[src..src + c]);
                o += c;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_and_corners() {
        let p = ResizePlan::new("RESIZE_BILINEAR", &[1, 2, 3, 1], 2, 3, false, false).unwrap();
        let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut out = [0.0; 6];
        resize_bilinear_f32(&p, &x, &mut out);
        assert_eq!(out, x);
        let xi = [-128i8, -1, 0, 1, 100, 127];
        let mut oi = [0i8; 6];
        resize_bilinear_i8(&p, &xi, &mut oi);
        assert_eq!(oi, xi);
        // align_corners 2 → 3 along one axis: the middle is the average.
        let p = ResizePlan::new("RESIZE_BILINEAR", &[1, 1, 2, 1], 1, 3, true, false).unwrap();
        let mut o = [0.0f32; 3];
        resize_bilinear_f32(&p, &[0.0, 10.0], &mut o);
        assert_eq!(o, [0.0, 5.0, 10.0]);
        let mut ou = [0u8; 3];
        resize_bilinear_u8(&p, &[0, 11], &mut ou);
        assert_eq!(ou, [0, 6, 11]);
        let mut on = [0i32; 3];
        resize_nearest(&p, &[7, 9], &mut on);
        assert_eq!(on, [7, 9, 9]);
        assert!(ResizePlan::new("RESIZE_BILINEAR", &[1, 2, 2, 1], 4, 4, true, true).is_err());
        assert!(ResizePlan::new("RESIZE_BILINEAR", &[1, 2, 2, 1], 0, 4, false, false).is_err());
        assert!(ResizePlan::new("RESIZE_BILINEAR", &[2, 2, 1], 4, 4, false, false).is_err());
    }

    #[test]
    fn int8_tracks_float() {
        for (align, half) in [(false, false), (true, false), (false, true)] {
            let p = ResizePlan::new("RESIZE_BILINEAR", &[2, 5, 7, 3], 11, 4, align, half).unwrap();
            let x: Vec<i8> = (0..2 * 5 * 7 * 3)
                .map(|i| ((i * 37) % 256) as u8 as i8)
                .collect();
            let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let n = 2 * 11 * 4 * 3;
            let (mut oi, mut of) = (vec![0i8; n], vec![0.0f32; n]);
            resize_bilinear_i8(&p, &x, &mut oi);
            resize_bilinear_f32(&p, &xf, &mut of);
            for i in 0..n {
                assert!(
                    (oi[i] as f32 - of[i]).abs() <= 1.0,
                    "{align} {half}: element {i}: {} vs {}",
                    oi[i],
                    of[i]
                );
            }
        }
    }
}
