//! AVX2 int8 GEMM (6 rows × 16 output channels, `c2`) and f32 FMA GEMM (6 × 16).
//!
//! int8: `vpmaddubsw` would saturate (255·127·2 > i16::MAX), so both operands are widened to i16
//! and `vpmaddwd` sums pairs of products exactly into i32: 16 multiply-adds per instruction, twice
//! an 8-lane FMA. Weights are packed `c2`: per pair of input channels, 16 columns × 2 bytes, which
//! `vpmovsxbw` widens into two ymm of 8 columns × (k, k+1). The tile's activation rows are
//! sign-extended once per call into a stack stage (`KC` input channels at a time), so the inner
//! loop broadcasts each row's (k, k+1) pair with one `vpbroadcastd` load. 12 accumulators of
//! 8 columns need no horizontal reduction. The epilogue requantizes per column lane with
//! constants hoisted per tile (left shift and saturation only when a channel needs them), and
//! narrows two rows at once with saturating packs: the clamp to `[min, max]` runs on 32 bytes.

use core::arch::x86_64::*;
use core::mem::MaybeUninit;

use super::requant::{scale8, Down8, Rq8};
use crate::gemm::{F32Args, F32Kernel, I8Args, I8Kernel};
use crate::isa::Isa;

/// `avx2::gemm_qs8_6x16c2`.
pub static GEMM_I8: I8Kernel = I8Kernel {
    name: "avx2::gemm_qs8_6x16c2",
    isa: Isa::Avx2,
    mr: MR,
    nr: 16,
    kr: 2,
    signed_a: true,
    run: gemm_qs8_6x16c2,
};

/// `avx2::gemm_f32_6x16`.
pub static GEMM_F32: F32Kernel = F32Kernel {
    name: "avx2::gemm_f32_6x16",
    isa: Isa::Avx2,
    mr: 6,
    nr: 16,
    run: gemm_f32_6x16,
};

/// Rows of the int8 tile.
const MR: usize = 6;
/// Input channels per stage of widened activations (even, a multiple of 16): 6 rows × 1 KiB.
const KC: usize = 512;

/// The widened activations of a tile's rows for one chunk of input channels.
#[repr(C, align(32))]
struct Stage<const R: usize>([[i16; KC]; R]);

/// # Safety
/// [`I8Args`] contract for a 6×16 `c2` tile; the CPU has AVX2.
unsafe fn gemm_qs8_6x16c2(args: &I8Args) {
    // SAFETY: forwarded contract; rows is 1..=6.
    unsafe {
        match args.rows {
            1 => i8_tile::<1>(args),
            2 => i8_tile::<2>(args),
            3 => i8_tile::<3>(args),
            4 => i8_tile::<4>(args),
            5 => i8_tile::<5>(args),
            _ => i8_tile::<6>(args),
        }
    }
}

/// Widens bytes `k0..k0 + n` (`n ≤ KC`) of each row, XORed with `xor`, into the rows of `stage`
/// as i16, then zeros up to the next multiple of 16.
///
/// # Safety
/// Each row holds `k0 + n` readable bytes; `stage` is valid for R × KC i16 writes.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn widen_rows<const R: usize>(
    a: &[*const u8; R],
    k0: usize,
    n: usize,
    xor: u8,
    stage: *mut i16,
) {
    let x = _mm_set1_epi8(xor as i8);
    for (r, &row) in a.iter().enumerate() {
        // SAFETY: row r of the stage holds KC ≥ n (rounded up to 16) values.
        let dst = unsafe { stage.add(r * KC) };
        let mut i = 0;
        if xor == 0 {
            while i + 16 <= n {
                // SAFETY: bytes k0 + i .. k0 + i + 16 ≤ k0 + n of the row exist; i + 16 ≤ KC.
                unsafe {
                    let v = _mm_loadu_si128(row.add(k0 + i) as *const __m128i);
                    _mm256_store_si256(dst.add(i) as *mut __m256i, _mm256_cvtepi8_epi16(v));
                }
                i += 16;
            }
        } else {
            while i + 16 <= n {
                // SAFETY: as above.
                unsafe {
                    let v = _mm_loadu_si128(row.add(k0 + i) as *const __m128i);
                    let v = _mm256_cvtepi8_epi16(_mm_xor_si128(v, x));
                    _mm256_store_si256(dst.add(i) as *mut __m256i, v);
                }
                i += 16;
            }
        }
        if i < n {
            let mut buf = [0u8; 16];
            for (j, b) in buf.iter_mut().enumerate().take(n - i) {
                // SAFETY: byte k0 + i + j < k0 + n of the row.
                *b = unsafe { *row.add(k0 + i + j) } ^ xor;
            }
            // SAFETY: buf holds 16 bytes; dst + i + 16 ≤ KC since i < n ≤ KC and both are
            // multiples of 16 apart from n.
            unsafe {
                let v = _mm_loadu_si128(buf.as_ptr() as *const __m128i);
                _mm256_store_si256(dst.add(i) as *mut __m256i, _mm256_cvtepi8_epi16(v));
            }
        }
    }
}

#[inline]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::needless_range_loop)] // indices name the register tile's row
unsafe fn i8_tile<const R: usize>(args: &I8Args) {
    let k = args.k;
    // SAFETY: `ep` per the I8Args contract; its arrays hold NR_MAX ≥ 16 values.
    let ep = unsafe { &*args.ep };
    // SAFETY: as above.
    let (b0, b1) = unsafe {
        (
            _mm256_loadu_si256(ep.bias.as_ptr() as *const __m256i),
            _mm256_loadu_si256(ep.bias.as_ptr().add(8) as *const __m256i),
        )
    };
    let mut acc = [[_mm256_setzero_si256(); 2]; R];
    let mut a = [args.a; R];
    for r in 0..R {
        // SAFETY: r < rows: row r lies in A and has a row offset.
        let off = _mm256_set1_epi32(unsafe { *args.row_off.add(r) });
        acc[r] = [_mm256_add_epi32(b0, off), _mm256_add_epi32(b1, off)];
        // SAFETY: as above.
        a[r] = unsafe { args.a.add(r * args.a_stride) };
    }
    if k <= 16 {
        // SAFETY: rows hold k ≤ 16 bytes; the packed tile holds ceil(k/2) groups of 32 bytes.
        acc = unsafe { dot_short::<R>(acc, &a, k, args.a_xor, args.w) };
    } else {
        // SAFETY: rows hold k bytes; the packed tile holds ceil(k/2) groups of 32 bytes.
        acc = unsafe { dot_staged::<R>(acc, &a, k, args.a_xor, args.w) };
    }
    if !args.acc_out.is_null() {
        for r in 0..R {
            // SAFETY: acc_out holds rows × 16 values (I8Args contract).
            unsafe {
                let o = args.acc_out.add(16 * r);
                _mm256_storeu_si256(o as *mut __m256i, acc[r][0]);
                _mm256_storeu_si256(o.add(8) as *mut __m256i, acc[r][1]);
            }
        }
        return;
    }
    // SAFETY: the epilogue arrays hold NR_MAX ≥ 16 values.
    let (m, s) = unsafe {
        let m = ep.mult.as_ptr() as *const __m256i;
        let s = ep.shift.as_ptr() as *const __m256i;
        (
            [_mm256_loadu_si256(m), _mm256_loadu_si256(m.add(1))],
            [_mm256_loadu_si256(s), _mm256_loadu_si256(s.add(1))],
        )
    };
    let zp = args.zero_point;
    let minus1 = _mm256_set1_epi32(-1);
    let not_right = _mm256_or_si256(
        _mm256_cmpgt_epi32(s[0], minus1),
        _mm256_cmpgt_epi32(s[1], minus1),
    );
    if _mm256_testz_si256(not_right, not_right) != 0 {
        // Every channel shifts right: the one-division form.
        let d = Down([Down8::new(m[0], s[0], zp), Down8::new(m[1], s[1], zp)]);
        // SAFETY: forwarded contract.
        unsafe { store_rows::<R, _>(acc, &d, args) };
        return;
    }
    let c = [Rq8::new(m[0], s[0]), Rq8::new(m[1], s[1])];
    let lsh = c[0].shifts_left() || c[1].shifts_left();
    let sat = c[0].may_saturate() || c[1].may_saturate();
    let zp = _mm256_set1_epi32(zp);
    // SAFETY: forwarded contract; the flags are those scale8 requires.
    unsafe {
        match (lsh, sat) {
            (false, false) => store_rows::<R, _>(acc, &General::<false, false>(c, zp), args),
            (true, false) => store_rows::<R, _>(acc, &General::<true, false>(c, zp), args),
            (false, true) => store_rows::<R, _>(acc, &General::<false, true>(c, zp), args),
            (true, true) => store_rows::<R, _>(acc, &General::<true, true>(c, zp), args),
        }
    }
}

/// Requantization of the tile's two 8-column halves, zero point included (before the clamp).
trait Scale {
    /// `MultiplyByQuantizedMultiplier(x) + zp` for the columns of half `h` (0 or 1).
    ///
    /// # Safety
    /// The CPU has AVX2.
    unsafe fn q(&self, x: __m256i, h: usize) -> __m256i;
}

/// The general form; `LSH`/`SAT` as [`scale8`] requires of the constants.
struct General<const LSH: bool, const SAT: bool>([Rq8; 2], __m256i);

impl<const LSH: bool, const SAT: bool> Scale for General<LSH, SAT> {
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn q(&self, x: __m256i, h: usize) -> __m256i {
        _mm256_add_epi32(scale8::<LSH, SAT>(x, &self.0[h]), self.1)
    }
}

/// Every channel shifts right.
struct Down([Down8; 2]);

impl Scale for Down {
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn q(&self, x: __m256i, h: usize) -> __m256i {
        self.0[h].apply(x)
    }
}

/// The tile's products over all `k` input channels, activations widened through a stack stage.
///
/// # Safety
/// Each row of `a` holds `k` readable bytes; `w` holds the tile's ceil(k/2) groups of 32 bytes.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_staged<const R: usize>(
    mut acc: [[__m256i; 2]; R],
    a: &[*const u8; R],
    k: usize,
    xor: u8,
    mut w: *const i8,
) -> [[__m256i; 2]; R] {
    let mut stage = MaybeUninit::<Stage<R>>::uninit();
    let sp = stage.as_mut_ptr() as *mut i16;
    let mut k0 = 0;
    while k0 < k {
        let n = (k - k0).min(KC);
        // SAFETY: rows hold k ≥ k0 + n bytes; the stage holds R × KC i16.
        unsafe { widen_rows::<R>(a, k0, n, xor, sp) };
        let pairs = n.div_ceil(2);
        // SAFETY: the stage rows hold `pairs` widened pairs (written above); the packed tile
        // holds ceil(k/2) groups of 32 bytes from `w` on, of which these are k0/2..k0/2 + pairs.
        acc = unsafe { dot_pairs::<R>(acc, sp as *const i32, w, pairs) };
        // SAFETY: advances within (or one past) the packed tile.
        w = unsafe { w.add(32 * pairs) };
        k0 += n;
    }
    acc
}

/// The tile's products for `k ≤ 16`: each row widened once into a register, its pairs broadcast
/// by `vpermd` (a stage round trip through memory costs more than the shuffles here).
///
/// # Safety
/// Each row of `a` holds `k ≤ 16` readable bytes; `w` holds ceil(k/2) groups of 32 bytes.
#[inline]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::needless_range_loop)] // indices name the register tile's row
unsafe fn dot_short<const R: usize>(
    acc: [[__m256i; 2]; R],
    a: &[*const u8; R],
    k: usize,
    xor: u8,
    w: *const i8,
) -> [[__m256i; 2]; R] {
    let x = _mm_set1_epi8(xor as i8);
    let mut av = [_mm256_setzero_si256(); R];
    for r in 0..R {
        let v = if k == 16 {
            // SAFETY: the row holds 16 bytes.
            unsafe { _mm_loadu_si128(a[r] as *const __m128i) }
        } else {
            let mut buf = [xor; 16];
            // SAFETY: the row holds k bytes; buf 16 ≥ k.
            unsafe { core::ptr::copy_nonoverlapping(a[r], buf.as_mut_ptr(), k) };
            // SAFETY: buf holds 16 bytes.
            unsafe { _mm_loadu_si128(buf.as_ptr() as *const __m128i) }
        };
        // Padding bytes are xor ^ xor = 0; their weights are 0 too.
        av[r] = _mm256_cvtepi8_epi16(_mm_xor_si128(v, x));
    }
    let mut acc0 = [_mm256_setzero_si256(); R];
    let mut acc1 = [_mm256_setzero_si256(); R];
    for r in 0..R {
        acc0[r] = acc[r][0];
        acc1[r] = acc[r][1];
    }
    for p in 0..k.div_ceil(2) {
        // SAFETY: group p < ceil(k/2) of the packed weights.
        let (w0, w1) = unsafe {
            (
                _mm256_cvtepi8_epi16(_mm_loadu_si128(w.add(32 * p) as *const __m128i)),
                _mm256_cvtepi8_epi16(_mm_loadu_si128(w.add(32 * p + 16) as *const __m128i)),
            )
        };
        let idx = _mm256_set1_epi32(p as i32);
        for r in 0..R {
            let b = _mm256_permutevar8x32_epi32(av[r], idx);
            acc0[r] = _mm256_add_epi32(acc0[r], _mm256_madd_epi16(b, w0));
            acc1[r] = _mm256_add_epi32(acc1[r], _mm256_madd_epi16(b, w1));
        }
    }
    let mut out = acc;
    for r in 0..R {
        out[r] = [acc0[r], acc1[r]];
    }
    out
}

/// Adds `pairs` (k, k+1) pairs of products to the accumulators: `stage` holds the widened rows
/// (row r at `r·KC/2` pairs), `w` the packed groups of 16 columns × 2 bytes.
///
/// # Safety
/// `stage` rows hold `pairs` initialized pairs, `w` holds `pairs` groups of 32 bytes.
#[inline]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::needless_range_loop)] // indices name the register tile's row
unsafe fn dot_pairs<const R: usize>(
    acc: [[__m256i; 2]; R],
    stage: *const i32,
    w: *const i8,
    pairs: usize,
) -> [[__m256i; 2]; R] {
    let mut acc0 = [_mm256_setzero_si256(); R];
    let mut acc1 = [_mm256_setzero_si256(); R];
    for r in 0..R {
        acc0[r] = acc[r][0];
        acc1[r] = acc[r][1];
    }
    for p in 0..pairs {
        // SAFETY: group p < pairs of the packed weights.
        let (w0, w1) = unsafe {
            (
                _mm256_cvtepi8_epi16(_mm_loadu_si128(w.add(32 * p) as *const __m128i)),
                _mm256_cvtepi8_epi16(_mm_loadu_si128(w.add(32 * p + 16) as *const __m128i)),
            )
        };
        for r in 0..R {
            // SAFETY: pair p < pairs of stage row r.
            let av = _mm256_set1_epi32(unsafe { *stage.add(r * (KC / 2) + p) });
            acc0[r] = _mm256_add_epi32(acc0[r], _mm256_madd_epi16(av, w0));
            acc1[r] = _mm256_add_epi32(acc1[r], _mm256_madd_epi16(av, w1));
        }
    }
    let mut out = acc;
    for r in 0..R {
        out[r] = [acc0[r], acc1[r]];
    }
    out
}

/// Requantizes the tile's accumulators and stores columns `col_lo..col_hi` of each row.
///
/// # Safety
/// [`I8Args`] contract (`rows == R`).
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn store_rows<const R: usize, S: Scale>(acc: [[__m256i; 2]; R], sc: &S, args: &I8Args) {
    // [min, max] fits the output type: an upper bound above 127 means uint8 outputs.
    let unsigned = args.max > 127;
    let lo = _mm256_set1_epi8(args.min as u8 as i8);
    let hi = _mm256_set1_epi8(args.max as u8 as i8);
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    let full = args.col_lo == 0 && args.col_hi == 16;
    let mut r = 0;
    while r < R {
        let r1 = (r + 1).min(R - 1);
        // SAFETY: the CPU has AVX2.
        let q = |row: usize, h: usize| unsafe { sc.q(acc[row][h], h) };
        // Lanes: [c0..3 c8..11 | c4..7 c12..15] per row as i16, then as bytes
        // [r c0..3, r c8..11, r1 c0..3, r1 c8..11 | r c4..7, r c12..15, r1 c4..7, r1 c12..15].
        // Saturating narrowing is monotone and [min, max] lies in the byte range, so
        // clamp(narrow(x)) = clamp(x).
        let p0 = _mm256_packs_epi32(q(r, 0), q(r, 1));
        let p1 = _mm256_packs_epi32(q(r1, 0), q(r1, 1));
        let b = if unsigned {
            let b = _mm256_packus_epi16(p0, p1);
            _mm256_min_epu8(_mm256_max_epu8(b, lo), hi)
        } else {
            let b = _mm256_packs_epi16(p0, p1);
            _mm256_min_epi8(_mm256_max_epi8(b, lo), hi)
        };
        let b = _mm256_permutevar8x32_epi32(b, order);
        let halves = [_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1)];
        for (i, &v) in halves.iter().enumerate().take(if r1 > r { 2 } else { 1 }) {
            let row = args.c.wrapping_add((r + i) * args.c_stride);
            if full {
                // SAFETY: columns 0..16 of row r + i < rows are writable.
                unsafe { _mm_storeu_si128(row as *mut __m128i, v) };
            } else {
                let mut bytes = [0u8; 16];
                // SAFETY: bytes holds 16 bytes.
                unsafe { _mm_storeu_si128(bytes.as_mut_ptr() as *mut __m128i, v) };
                for (j, &b) in bytes.iter().enumerate().take(args.col_hi).skip(args.col_lo) {
                    // SAFETY: column j in col_lo..col_hi of row r + i is writable.
                    unsafe { *row.add(j) = b };
                }
            }
        }
        r += 2;
    }
}

/// # Safety
/// [`F32Args`] contract for a 6×16 tile; the CPU has AVX2 + FMA.
unsafe fn gemm_f32_6x16(args: &F32Args) {
    // SAFETY: forwarded contract; rows is 1..=6.
    unsafe {
        match args.rows {
            1 => f32_tile::<1>(args),
            2 => f32_tile::<2>(args),
            3 => f32_tile::<3>(args),
            4 => f32_tile::<4>(args),
            5 => f32_tile::<5>(args),
            _ => f32_tile::<6>(args),
        }
    }
}

#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn f32_tile<const R: usize>(args: &F32Args) {
    // SAFETY: the tile's bias holds 16 floats.
    let (b0, b1) = unsafe {
        (
            _mm256_loadu_ps(args.bias),
            _mm256_loadu_ps(args.bias.add(8)),
        )
    };
    let mut acc0 = [b0; R];
    let mut acc1 = [b1; R];
    let mut a = [args.a; R];
    for (r, p) in a.iter_mut().enumerate() {
        // SAFETY: row r < rows lies in A.
        *p = unsafe { args.a.add(r * args.a_stride) };
    }
    let mut w = args.w;
    for kk in 0..args.k {
        // SAFETY: the packed tile holds k rows of 16 floats, 64-byte aligned.
        let (w0, w1) = unsafe { (_mm256_load_ps(w), _mm256_load_ps(w.add(8))) };
        for r in 0..R {
            // SAFETY: element kk < k of row r.
            let av = _mm256_set1_ps(unsafe { *a[r].add(kk) });
            acc0[r] = _mm256_fmadd_ps(av, w0, acc0[r]);
            acc1[r] = _mm256_fmadd_ps(av, w1, acc1[r]);
        }
        // SAFETY: advances within (or one past) the packed tile.
        w = unsafe { w.add(16) };
    }
    let lo = _mm256_set1_ps(args.min);
    let hi = _mm256_set1_ps(args.max);
    let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let mut mask = [_mm256_setzero_si256(); 2];
    for (h, m) in mask.iter_mut().enumerate() {
        let from = _mm256_set1_epi32(args.col_lo as i32 - 8 * h as i32);
        let to = _mm256_set1_epi32(args.col_hi as i32 - 8 * h as i32);
        // lane ≥ from && lane < to
        *m = _mm256_andnot_si256(_mm256_cmpgt_epi32(from, lane), _mm256_cmpgt_epi32(to, lane));
    }
    for r in 0..R {
        let row = args.c.wrapping_add(r * args.c_stride);
        for (h, acc) in [acc0[r], acc1[r]].into_iter().enumerate() {
            let y = _mm256_min_ps(_mm256_max_ps(acc, lo), hi);
            // SAFETY: masked store (vmaskmovps does not touch masked-off lanes) of the tile's
            // columns col_lo..col_hi of row r only.
            unsafe { _mm256_maskstore_ps(row.wrapping_add(8 * h), mask[h], y) };
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::gemm::{gemm_i8, ActQuant, PackedI8, Q8};
    use crate::isa::Isa;
    use crate::reference;
    use crate::requant::Requant;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn pick<T: Copy>(&mut self, v: &[T]) -> T {
            v[(self.next() % v.len() as u64) as usize]
        }
    }

    fn case<O: Q8>(rng: &mut Rng, m: usize, n: usize, k: usize) {
        let kernel = &super::GEMM_I8;
        let a: Vec<i8> = (0..m * k).map(|_| rng.next() as i8).collect();
        let w: Vec<i8> = (0..n * k).map(|_| rng.next() as i8).collect();
        let bias: Vec<i32> = (0..n)
            .map(|_| rng.pick(&[0, 1 << 30, -(1 << 30), i32::MAX, i32::MIN, 12345]))
            .collect();
        let mult: Vec<i32> = (0..n)
            .map(|_| rng.pick(&[i32::MIN, i32::MAX, 1 << 30, 0, 1_518_500_250, -7]))
            .collect();
        // Half the cases shift every channel right (the one-division epilogue), half mix in
        // shifts ≥ 0 (the general one).
        let right = rng.next() & 1 == 0;
        let shift: Vec<i32> = (0..n)
            .map(|_| {
                if right {
                    rng.pick(&[-31, -30, -20, -7, -2, -1])
                } else {
                    rng.pick(&[-31, -20, -7, -1, 0, 1, 9, 30])
                }
            })
            .collect();
        let zp = rng.pick(&[-300, 0, 77, 500]);
        let (lo, hi) = rng.pick(&[(O::MIN, O::MAX), (O::MIN + 5, O::MAX - 9)]);
        let rq = Requant::new(mult, shift, zp, lo, hi).unwrap();
        let a_zp = rng.pick(&[-128, 0, 3, 127]);
        let packed =
            PackedI8::with_kernel(kernel, &w, n, k, Some(&bias), ActQuant::i8(a_zp)).unwrap();
        let sentinel = O::from_i32(0x5a);
        let mut want = vec![sentinel; m * n];
        reference::gemm::gemm_q8(m, n, k, &a, k, a_zp, &w, 0, Some(&bias), &rq, &mut want, n);
        let cols = 1..n.min(19);
        for (i, x) in want.iter_mut().enumerate() {
            if !cols.contains(&(i % n)) {
                *x = sentinel;
            }
        }
        let mut got = vec![sentinel; m * n];
        gemm_i8(&a, k, &packed, &rq, &mut got, n, 0..m, cols);
        if let Some(i) = (0..m * n).find(|&i| got[i].to_bits() != want[i].to_bits()) {
            panic!(
                "{}: M×N×K = {m}×{n}×{k}: first difference at row {} col {}: got {}, want {}",
                kernel.name,
                i / n,
                i % n,
                got[i].to_i32(),
                want[i].to_i32()
            );
        }
    }

    /// What random real-valued scales rarely reach: left shifts up to 30 (wrapping), the
    /// `i32::MIN` multiplier (saturating doubling multiply), negative multipliers, extreme biases
    /// and zero points, every tile height, K across the activation stage, column sub-ranges.
    #[test]
    fn i8_tile_requant_extremes() {
        if !Isa::Avx2.enabled() {
            eprintln!("skipped: no AVX2");
            return;
        }
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for m in 1..=13 {
            for k in [1, 2, 17, 512, 513, 1100] {
                for n in [3, 16, 21] {
                    case::<i8>(&mut rng, m, n, k);
                    case::<u8>(&mut rng, m, n, k);
                }
            }
        }
    }
}
