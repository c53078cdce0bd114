//! Reference dense GEMM: the textbook triple loop with TFLite's semantics.

use crate::gemm::Q8;
use crate::requant::Requant;

/// `c[m][n] = rq.apply(bias[n] + Σ_k (a[m][k] − a_zp) · (w[n][k] − w_zp), n)` for all `m < rows`,
/// `n < n_cols`, accumulated in wrapping int32 as TFLite does. `w` is N×K row-major.
#[allow(clippy::too_many_arguments)]
pub fn gemm_q8<A: Q8, W: Q8, O: Q8>(
    rows: usize,
    n_cols: usize,
    k: usize,
    a: &[A],
    a_stride: usize,
    a_zp: i32,
    w: &[W],
    w_zp: i32,
    bias: Option<&[i32]>,
    rq: &Requant,
    c: &mut [O],
    c_stride: usize,
) {
    for m in 0..rows {
        for n in 0..n_cols {
            let mut acc = bias.map_or(0, |b| b[n]);
            for kk in 0..k {
                let x = a[m * a_stride + kk].to_i32() - a_zp;
                let y = w[n * k + kk].to_i32() - w_zp;
                acc = acc.wrapping_add(x * y);
            }
            c[m * c_stride + n] = O::from_i32(rq.apply(acc, n));
        }
    }
}

/// `c[m][n] = clamp(bias[n] + Σ_k a[m][k] · w[n][k], min, max)`, accumulated in f64 (so it is
/// the exact result rounded once; kernels are compared to it with a tolerance scaled by K).
#[allow(clippy::too_many_arguments)]
pub fn gemm_f32(
    rows: usize,
    n_cols: usize,
    k: usize,
    a: &[f32],
    a_stride: usize,
    w: &[f32],
    bias: Option<&[f32]>,
    min: f32,
    max: f32,
    c: &mut [f32],
    c_stride: usize,
) {
    for m in 0..rows {
        for n in 0..n_cols {
            let mut acc = bias.map_or(0.0, |b| b[n] as f64);
            for kk in 0..k {
                acc += a[m * a_stride + kk] as f64 * w[n * k + kk] as f64;
            }
            c[m * c_stride + n] = (acc as f32).max(min).min(max);
        }
    }
}

/// Hybrid (dynamic-range) GEMM: `c[m][n] = clamp(bias[n] + (Σ_k (a[m][k] − za[m]) · w[n][k]) as
/// f32 · (sa[m] · sw[n]))`; per-row / per-column slices of length 1 apply to all.
#[allow(clippy::too_many_arguments)]
pub fn gemm_hybrid(
    rows: usize,
    n_cols: usize,
    k: usize,
    a: &[i8],
    a_stride: usize,
    a_zp: &[i32],
    a_scale: &[f32],
    w: &[i8],
    w_scale: &[f32],
    bias: Option<&[f32]>,
    min: f32,
    max: f32,
    c: &mut [f32],
    c_stride: usize,
) {
    let at = |v: &[f32], i: usize| if v.len() == 1 { v[0] } else { v[i] };
    for m in 0..rows {
        let za = if a_zp.len() == 1 { a_zp[0] } else { a_zp[m] };
        for n in 0..n_cols {
            let mut acc = 0i32;
            for kk in 0..k {
                acc = acc.wrapping_add((a[m * a_stride + kk] as i32 - za) * w[n * k + kk] as i32);
            }
            let b = bias.map_or(0.0, |b| b[n]);
            let v = b + acc as f32 * (at(a_scale, m) * at(w_scale, n));
            c[m * c_stride + n] = v.max(min).min(max);
        }
    }
}
