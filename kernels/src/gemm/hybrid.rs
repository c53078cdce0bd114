//! Dynamic-range ("hybrid") GEMM: int8 weights, activations quantized to int8 at run time per
//! row, f32 output — TFLite's hybrid fully-connected / convolution semantics:
//! `C[m][n] = bias[n] + (Σ_k (a[m][k] − za[m]) · w[n][k]) · (sa[m] · sw[n])`, clamped.
//!
//! The int8 micro-kernel of the packed weights computes the integer sums (its raw-accumulator
//! mode); the per-row zero point is applied as `− za[m] · Σ_k w[n][k]` with the column sums kept
//! at packing, and the float epilogue runs per tile.

use std::ops::Range;

use super::{check_block, row_block, row_blocks, I8Args, PackedI8, TileEpilogue, ACC_ROWS, NR_MAX};

/// The float side of a hybrid GEMM. Per-row arrays are indexed by absolute row (length 1: the
/// same for every row); per-column arrays by output channel (length 1: per-tensor).
#[derive(Clone, Copy, Debug)]
pub struct HybridParams<'a> {
    /// Activation scale per row.
    pub a_scales: &'a [f32],
    /// Activation zero point per row (all zeros for symmetric quantization).
    pub a_zero_points: &'a [i32],
    /// Weight scale per output channel.
    pub w_scales: &'a [f32],
    /// Float bias per output channel.
    pub bias: Option<&'a [f32]>,
    /// Clamp bounds (fused activation).
    pub min: f32,
    /// Clamp bounds.
    pub max: f32,
}

/// Hybrid GEMM of the block `rows × cols`. `packed` must come from int8 weights packed for
/// int8 activations with zero point 0 and no bias: `PackedI8::new(w, n, k, None,
/// ActQuant::i8(0))`. Layout and contract as [`super::gemm_i8`]; no allocation.
#[allow(clippy::too_many_arguments)]
pub fn gemm_i8_hybrid(
    a: &[i8],
    a_stride: usize,
    packed: &PackedI8,
    p: &HybridParams<'_>,
    c: &mut [f32],
    c_stride: usize,
    rows: Range<usize>,
    cols: Range<usize>,
) {
    #[cfg(target_arch = "x86_64")]
    if crate::isa::Isa::Avx2.enabled() {
        /// The same loops with 8-wide vectors for the epilogue.
        ///
        /// # Safety
        /// The CPU must have AVX2.
        #[target_feature(enable = "avx2")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn wide(
            a: &[i8],
            a_stride: usize,
            packed: &PackedI8,
            p: &HybridParams<'_>,
            c: &mut [f32],
            c_stride: usize,
            rows: Range<usize>,
            cols: Range<usize>,
        ) {
            gemm_i8_hybrid_body(a, a_stride, packed, p, c, c_stride, rows, cols)
        }
        // SAFETY: AVX2 was detected above.
        return unsafe { wide(a, a_stride, packed, p, c, c_stride, rows, cols) };
    }
    gemm_i8_hybrid_body(a, a_stride, packed, p, c, c_stride, rows, cols)
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gemm_i8_hybrid_body(
    a: &[i8],
    a_stride: usize,
    packed: &PackedI8,
    p: &HybridParams<'_>,
    c: &mut [f32],
    c_stride: usize,
    rows: Range<usize>,
    cols: Range<usize>,
) {
    let (n, k) = (packed.n, packed.k);
    assert!(
        !packed.act.unsigned && packed.act.zero_point == 0 && packed.w_zero_point == 0,
        "gemm_i8_hybrid: weights must be int8, packed for int8 activations with zero point 0"
    );
    assert!(
        cols.start <= cols.end && cols.end <= n,
        "gemm_i8_hybrid: cols {cols:?} beyond N={n}"
    );
    assert!(
        rows.start <= rows.end,
        "gemm_i8_hybrid: reversed rows {rows:?}"
    );
    let per_row = |len: usize, what: &str| {
        assert!(
            len == 1 || len >= rows.end,
            "gemm_i8_hybrid: {what} has {len} values for rows up to {}",
            rows.end
        )
    };
    per_row(p.a_scales.len(), "a_scales");
    per_row(p.a_zero_points.len(), "a_zero_points");
    assert!(
        p.w_scales.len() == 1 || p.w_scales.len() == n,
        "gemm_i8_hybrid: {} weight scales for N={n}",
        p.w_scales.len()
    );
    assert!(
        p.bias.is_none_or(|b| b.len() >= n),
        "gemm_i8_hybrid: bias shorter than N={n}"
    );
    if rows.is_empty() || cols.is_empty() {
        return;
    }
    check_block("A", a.len(), a_stride, &rows, k, k);
    check_block("C", c.len(), c_stride, &rows, cols.end, cols.end);

    let kern = packed.kernel;
    let (mr, nr) = (kern.mr.min(ACC_ROWS), kern.nr);
    let mc = row_block(k, 1, mr);
    let a_xor = if kern.signed_a { 0 } else { 0x80 };
    let tile_bytes = super::pack::tile_len(k, kern.kr) * nr;
    let mut ep = TileEpilogue {
        bias: [0; NR_MAX],
        mult: [0; NR_MAX],
        shift: [0; NR_MAX],
    };
    let row_off = [0i32; ACC_ROWS];
    let mut acc = [0i32; ACC_ROWS * NR_MAX];
    let at = |v: &[f32], i: usize| if v.len() == 1 { v[0] } else { v[i] };
    let zp_at = |i: usize| {
        if p.a_zero_points.len() == 1 {
            p.a_zero_points[0]
        } else {
            p.a_zero_points[i]
        }
    };
    for blk in row_blocks(&rows, mc) {
        for t in cols.start / nr..cols.end.div_ceil(nr) {
            let base = t * nr;
            ep.bias[..nr].copy_from_slice(&packed.bias[base..base + nr]);
            // This tile's weight scales and bias, so the epilogue runs over plain slices.
            let mut ws_t = [0f32; NR_MAX];
            let mut bias_t = [0f32; NR_MAX];
            for j in base.max(cols.start)..cols.end.min(base + nr) {
                ws_t[j - base] = at(p.w_scales, j);
                bias_t[j - base] = p.bias.map_or(0.0, |b| b[j]);
            }
            let col_lo = cols.start.max(base);
            let col_hi = cols.end.min(base + nr);
            let mut m0 = blk.start;
            while m0 < blk.end {
                let tile_rows = mr.min(blk.end - m0);
                let args = I8Args {
                    // SAFETY: rows m0.. lie inside `a` (check_block).
                    a: unsafe { a.as_ptr().add(m0 * a_stride) } as *const u8,
                    a_stride,
                    a_xor,
                    rows: tile_rows,
                    k,
                    // SAFETY: tile t < tiles; the packed data holds tiles × tile_bytes bytes.
                    w: unsafe { packed.data.as_ptr().add(t * tile_bytes) },
                    ep: &ep,
                    row_off: row_off.as_ptr(),
                    zero_point: 0,
                    min: i32::MIN,
                    max: i32::MAX,
                    c: std::ptr::null_mut(),
                    c_stride: 0,
                    col_lo: 0,
                    col_hi: 0,
                    acc_out: acc.as_mut_ptr(),
                };
                // SAFETY: the CPU has the kernel's ISA; A extents checked; in raw-accumulator mode the
                // kernel writes tile_rows × nr ≤ ACC_ROWS × NR_MAX values to `acc` and nothing to `c`.
                unsafe { (kern.run)(&args) };
                let (j0, j1) = (col_lo - base, col_hi - base);
                let (ws, bs, cs) = (
                    &ws_t[j0..j1],
                    &bias_t[j0..j1],
                    &packed.colsums[col_lo..col_hi],
                );
                for r in 0..tile_rows {
                    let m = m0 + r;
                    let (sa, za) = (at(p.a_scales, m), zp_at(m));
                    let out = &mut c[m * c_stride + col_lo..m * c_stride + col_hi];
                    let ar = &acc[r * nr + j0..r * nr + j1];
                    for ((((o, &a), &cs), &w), &b) in out.iter_mut().zip(ar).zip(cs).zip(ws).zip(bs)
                    {
                        let s = a.wrapping_sub(za.wrapping_mul(cs));
                        let v = b + s as f32 * (sa * w);
                        *o = v.max(p.min).min(p.max);
                    }
                }
                m0 += tile_rows;
            }
        }
    }
}

/// Quantizes each row of `x` (`rows` rows of `k` values, row stride `x_stride`) to int8 with its
/// own asymmetric scale and zero point, as TFLite's `AsymmetricQuantizeFloats`: the range is
/// `[min(0, min x), max(0, max x)]` mapped onto −128..127 with a nudged integer zero point.
/// Writes `q[r·q_stride + i]`, `scales[r]`, `zero_points[r]`. An all-zero row gets scale 1 and
/// zero point 0.
#[allow(clippy::too_many_arguments)]
pub fn quantize_rows_asymmetric(
    x: &[f32],
    x_stride: usize,
    rows: usize,
    k: usize,
    q: &mut [i8],
    q_stride: usize,
    scales: &mut [f32],
    zero_points: &mut [i32],
) {
    #[cfg(target_arch = "x86_64")]
    if crate::isa::Isa::Avx2.enabled() {
        /// The same loops with 8-wide vectors.
        ///
        /// # Safety
        /// The CPU must have AVX2.
        #[target_feature(enable = "avx2")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn wide(
            x: &[f32],
            x_stride: usize,
            rows: usize,
            k: usize,
            q: &mut [i8],
            q_stride: usize,
            scales: &mut [f32],
            zero_points: &mut [i32],
        ) {
            quantize_rows_asymmetric_body(x, x_stride, rows, k, q, q_stride, scales, zero_points)
        }
        // SAFETY: AVX2 was detected above.
        return unsafe { wide(x, x_stride, rows, k, q, q_stride, scales, zero_points) };
    }
    quantize_rows_asymmetric_body(x, x_stride, rows, k, q, q_stride, scales, zero_points)
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn quantize_rows_asymmetric_body(
    x: &[f32],
    x_stride: usize,
    rows: usize,
    k: usize,
    q: &mut [i8],
    q_stride: usize,
    scales: &mut [f32],
    zero_points: &mut [i32],
) {
    assert!(
        scales.len() >= rows && zero_points.len() >= rows,
        "quantize: outputs too short"
    );
    let r = 0..rows;
    check_block("x", x.len(), x_stride, &r, k, k);
    check_block("q", q.len(), q_stride, &r, k, k);
    for row in 0..rows {
        let xs = &x[row * x_stride..row * x_stride + k];
        let qs = &mut q[row * q_stride..row * q_stride + k];
        let (lo, hi) = min_max_with_zero(xs);
        if lo == hi {
            qs.fill(0);
            scales[row] = 1.0;
            zero_points[row] = 0;
            continue;
        }
        let (qmin, qmax) = (-128f64, 127f64);
        let scale = (hi - lo) as f64 / (qmax - qmin);
        let scale = scale as f32;
        let (lo, hi, s) = (lo as f64, hi as f64, scale as f64);
        let zp_from_min = qmin - lo / s;
        let zp_from_max = qmax - hi / s;
        let err_min = qmin.abs() + (lo / s).abs();
        let err_max = qmax.abs() + (hi / s).abs();
        let zp = if err_min < err_max {
            zp_from_min
        } else {
            zp_from_max
        };
        let zp = if zp <= qmin {
            -128
        } else if zp >= qmax {
            127
        } else {
            zp.round() as i32
        };
        let inv = 1.0 / scale;
        for (o, &v) in qs.iter_mut().zip(xs) {
            *o = (zp + round_half_away(v * inv)).clamp(-128, 127) as i8;
        }
        scales[row] = scale;
        zero_points[row] = zp;
    }
}

/// `(min(0, min x), max(0, max x))`, NaNs ignored, in lanes so the compiler vectorizes it
/// (min and max are exact, so the lane order does not change the result).
fn min_max_with_zero(xs: &[f32]) -> (f32, f32) {
    #[cfg(target_arch = "x86_64")]
    if crate::isa::Isa::Avx2.enabled() {
        /// The same lanes with 8-wide vectors.
        ///
        /// # Safety
        /// The CPU must have AVX2.
        #[target_feature(enable = "avx2")]
        unsafe fn wide(xs: &[f32]) -> (f32, f32) {
            min_max_with_zero_body(xs)
        }
        // SAFETY: AVX2 was detected above.
        return unsafe { wide(xs) };
    }
    min_max_with_zero_body(xs)
}

#[inline(always)]
fn min_max_with_zero_body(xs: &[f32]) -> (f32, f32) {
    const L: usize = 16;
    let (mut lo, mut hi) = ([0f32; L], [0f32; L]);
    let mut chunks = xs.chunks_exact(L);
    for ch in &mut chunks {
        for i in 0..L {
            // Comparisons rather than f32::min/max so they map onto vector min/max; NaNs are
            // skipped either way, and a −0 kept as 0 changes nothing downstream.
            lo[i] = if ch[i] < lo[i] { ch[i] } else { lo[i] };
            hi[i] = if ch[i] > hi[i] { ch[i] } else { hi[i] };
        }
    }
    let (mut l, mut h) = (0f32, 0f32);
    for &v in chunks.remainder() {
        l = l.min(v);
        h = h.max(v);
    }
    for i in 0..L {
        l = l.min(lo[i]);
        h = h.max(hi[i]);
    }
    (l, h)
}

/// `y.round() as i32` (ties away from zero) for the quantizers, written with a truncating
/// conversion so it vectorizes. Magnitudes beyond 2¹⁰ are clamped first (every caller clamps
/// the result to 8 bits afterwards, and this keeps the sum with a zero point from overflowing);
/// NaN gives 0 as `round() as i32` does.
#[inline(always)]
fn round_half_away(y: f32) -> i32 {
    let y = if y.is_nan() {
        0.0
    } else {
        y.clamp(-1024.0, 1024.0)
    };
    // SAFETY: y is finite and within ±1024, so its truncation fits an i32.
    let t: i32 = unsafe { y.to_int_unchecked() };
    // Exact: y and its truncation share their exponent range.
    let f = y - t as f32;
    t + (f >= 0.5) as i32 - (f <= -0.5) as i32
}

/// Quantizes each row symmetrically (zero point 0), as TFLite's `SymmetricQuantizeFloats`:
/// `scale = max|x| / 127`, `q = clamp(round(x · 127 / max|x|), −127, 127)`.
pub fn quantize_rows_symmetric(
    x: &[f32],
    x_stride: usize,
    rows: usize,
    k: usize,
    q: &mut [i8],
    q_stride: usize,
    scales: &mut [f32],
) {
    assert!(scales.len() >= rows, "quantize: scales too short");
    let r = 0..rows;
    check_block("x", x.len(), x_stride, &r, k, k);
    check_block("q", q.len(), q_stride, &r, k, k);
    for row in 0..rows {
        let xs = &x[row * x_stride..row * x_stride + k];
        let qs = &mut q[row * q_stride..row * q_stride + k];
        let m = xs.iter().fold(0f32, |m, &v| m.max(v.abs()));
        if m == 0.0 {
            qs.fill(0);
            scales[row] = 1.0;
            continue;
        }
        let inv = 127.0 / m;
        for (o, &v) in qs.iter_mut().zip(xs) {
            *o = round_half_away(v * inv).clamp(-127, 127) as i8;
        }
        scales[row] = m / 127.0;
    }
}

#[cfg(test)]
mod round_tests {
    use super::round_half_away;

    #[test]
    fn round_half_away_equals_round() {
        let mut vals = vec![
            0.0f32,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            0.49999997,
            -0.49999997,
            0.50000006,
            127.5,
            -128.5,
            255.49998,
            f32::NAN,
            1000.5,
            -1000.5,
        ];
        let mut x = 0x1234_5678u32;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            vals.push((x as f32 / u32::MAX as f32 - 0.5) * 600.0);
            vals.push((x % 2048) as f32 * 0.25 - 256.0);
        }
        for v in vals {
            let want = v.round() as i32;
            assert_eq!(round_half_away(v), want, "round_half_away({v:e})");
        }
    }
}
