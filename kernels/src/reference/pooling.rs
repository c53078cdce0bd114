//! Plain reference loops for pooling, written from TFLite's reference kernels
//! (`reference_ops::MaxPool` / `AveragePool`, `reference_integer_ops::MaxPool` / `AveragePool`).
//! Slow and obviously correct: the optimized kernels are tested against these.

use crate::window::Window2d;

fn origin(o: usize, stride: usize, pad: usize) -> isize {
    (o * stride) as isize - pad as isize
}

/// Visits the window of output `(b, oy, ox)` as TFLite does; returns the input pixel offsets.
fn window(w: &Window2d, b: usize, oy: usize, ox: usize) -> Vec<usize> {
    let in_y0 = origin(oy, w.h.stride, w.h.pad_before);
    let in_x0 = origin(ox, w.w.stride, w.w.pad_before);
    let fy_start = (-in_y0).max(0);
    let fy_end = (w.h.kernel as isize).min(w.h.input as isize - in_y0);
    let fx_start = (-in_x0).max(0);
    let fx_end = (w.w.kernel as isize).min(w.w.input as isize - in_x0);
    let mut v = Vec::new();
    for fy in fy_start..fy_end {
        for fx in fx_start..fx_end {
            let iy = (in_y0 + fy) as usize;
            let ix = (in_x0 + fx) as usize;
            v.push(((b * w.h.input + iy) * w.w.input + ix) * w.in_c);
        }
    }
    v
}

fn each_output(w: &Window2d, mut f: impl FnMut(usize, &[usize])) {
    for b in 0..w.batch {
        for oy in 0..w.h.output {
            for ox in 0..w.w.output {
                let taps = window(w, b, oy, ox);
                f(((b * w.h.output + oy) * w.w.output + ox) * w.out_c, &taps);
            }
        }
    }
}

/// f32 max pooling.
pub fn max_pool_f32(w: &Window2d, input: &[f32], lo: f32, hi: f32) -> Vec<f32> {
    let mut out = vec![0.0; w.output_len()];
    each_output(w, |o, taps| {
        for c in 0..w.in_c {
            let mut m = f32::MIN;
            for &t in taps {
                m = if m < input[t + c] { input[t + c] } else { m };
            }
            out[o + c] = m.max(lo).min(hi);
        }
    });
    out
}

/// f32 average pooling.
pub fn avg_pool_f32(w: &Window2d, input: &[f32], lo: f32, hi: f32) -> Vec<f32> {
    let mut out = vec![0.0; w.output_len()];
    each_output(w, |o, taps| {
        for c in 0..w.in_c {
            let mut total = 0.0f32;
            for &t in taps {
                total += input[t + c];
            }
            out[o + c] = (total / taps.len() as f32).max(lo).min(hi);
        }
    });
    out
}

/// 8-bit max pooling on values widened to i32 (`lo`/`hi` quantized clamp bounds).
pub fn max_pool_q(w: &Window2d, input: &[i32], type_min: i32, lo: i32, hi: i32) -> Vec<i32> {
    let mut out = vec![0; w.output_len()];
    each_output(w, |o, taps| {
        for c in 0..w.in_c {
            let mut m = type_min;
            for &t in taps {
                m = m.max(input[t + c]);
            }
            out[o + c] = m.max(lo).min(hi);
        }
    });
    out
}

/// 8-bit average pooling on values widened to i32: `(sum ± count/2) / count`, C division.
pub fn avg_pool_q(w: &Window2d, input: &[i32], lo: i32, hi: i32) -> Vec<i32> {
    let mut out = vec![0; w.output_len()];
    each_output(w, |o, taps| {
        for c in 0..w.in_c {
            let mut acc = 0i32;
            for &t in taps {
                acc += input[t + c];
            }
            let n = taps.len() as i32;
            let r = if acc > 0 {
                (acc + n / 2) / n
            } else {
                (acc - n / 2) / n
            };
            out[o + c] = r.max(lo).min(hi);
        }
    });
    out
}
