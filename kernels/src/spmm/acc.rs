//! Raw-accumulator mode of the int8 sparse kernels: the int32 sums before any requantization,
//!
//! `acc[m][n] = bias[n] + Σ_k W[n][k] · (a[m][k] − zero_point)` (wrapping int32),
//!
//! exactly what the dense [`crate::gemm::gemm_i8_acc`] hands out for symmetric weights, for
//! epilogues the fixed-point [`crate::requant::Requant`] does not express (TFLite's int8
//! fully-connected layer rescales in f64). The same packing ([`PackedI8`]) serves both modes: the
//! bias, the input zero point and the kernel-domain offset are already folded into `c`.
//!
//! Entries by tier: AVX-512 VNNI has its own (`vpdpbusd`, the packed kernel's loops, int32
//! stores instead of requantized bytes); AVX2 runs the AVX2 coarse kernel's `vpmaddwd` loop for
//! `16x4` and the portable 1×4 loop below compiled for AVX2; the other tiers run the portable
//! loops as plain code (NEON is the aarch64 baseline). Used by FULLY_CONNECTED (int8, uint8 and
//! dynamic-range) when its weights are stored sparse.

use std::fmt;
use std::ops::Range;

use super::{I8Layout, PackedI8};
use crate::gemm::Q8;
use crate::isa::Isa;

/// An accumulator entry: rows `0..m` of `a` (already offset to the first row), output channels
/// `cols` (start a multiple of the layout's block height), into `acc[row · stride + (n −
/// cols.start)]`. Safe to call with arguments [`PackedI8::run_acc`] checked, for a packing whose
/// kernel tier is enabled (packing ensures it).
pub(crate) type I8AccFn =
    fn(&PackedI8, &[i8], usize, usize, Range<usize>, &mut [i32], usize, &mut [u32]);

/// A raw-accumulator sparse kernel: its name (`kernels/NAMING.md`, suffix `_acc`) and entry.
#[derive(Clone, Copy)]
pub struct SpmmI8AccKernel {
    /// Full name, e.g. `avx512vnni::spmm_qu8s8_4x16c4_acc`.
    pub name: &'static str,
    /// Scratch words the entry needs per group of 4 input channels (see
    /// [`PackedI8::acc_scratch_len`]).
    pub(crate) words_per_k4: usize,
    /// The entry needs its scratch only when K is not a multiple of 4 (it reads whole
    /// activation words in place).
    pub(crate) only_partial: bool,
    /// Extra words: room to align the entry's tile to a cache line.
    pub(crate) slack: usize,
    pub(crate) run: I8AccFn,
}

impl fmt::Debug for SpmmI8AccKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// Pixels per tile of the portable 1×4 accumulator loop (lanes over pixels).
const TILE: usize = 16;

static GENERIC_1X4: SpmmI8AccKernel = SpmmI8AccKernel {
    name: "generic::spmm_qs8_16x1c4_acc",
    words_per_k4: TILE,
    only_partial: false,
    slack: 0,
    run: generic_1x4,
};
static GENERIC_16X4: SpmmI8AccKernel = SpmmI8AccKernel {
    name: "generic::spmm_qs8_1x16c4_acc",
    words_per_k4: 0,
    only_partial: false,
    slack: 0,
    run: generic_16x4,
};
#[cfg(target_arch = "x86_64")]
static AVX2_1X4: SpmmI8AccKernel = SpmmI8AccKernel {
    name: "avx2::spmm_qs8_16x1c4_acc",
    words_per_k4: TILE,
    only_partial: false,
    slack: 0,
    run: avx2_1x4,
};
#[cfg(target_arch = "x86_64")]
static AVX2_16X4: SpmmI8AccKernel = SpmmI8AccKernel {
    name: "avx2::spmm_qs8_1x16c4_acc",
    // One row's activations widened to 4 × i16 per group.
    words_per_k4: 2,
    only_partial: false,
    slack: 0,
    run: avx2_16x4,
};
#[cfg(target_arch = "aarch64")]
static NEON_1X4: SpmmI8AccKernel = SpmmI8AccKernel {
    name: "neon::spmm_qs8_16x1c4_acc",
    words_per_k4: TILE,
    only_partial: false,
    slack: 0,
    run: generic_1x4,
};
#[cfg(target_arch = "aarch64")]
static NEON_16X4: SpmmI8AccKernel = SpmmI8AccKernel {
    name: "neon::spmm_qs8_1x16c4_acc",
    words_per_k4: 0,
    only_partial: false,
    slack: 0,
    run: generic_16x4,
};

impl PackedI8 {
    /// The raw-accumulator kernel for this packing: the one of the packed kernel's tier.
    pub fn acc_kernel(&self) -> &'static SpmmI8AccKernel {
        let (isa, layout) = (self.kernel.isa, self.layout);
        #[cfg(target_arch = "x86_64")]
        {
            // The AVX-512 entries read activations in the packing's unsigned domain.
            if isa == Isa::Avx512Vnni && self.kernel.unsigned {
                return match layout {
                    I8Layout::B1x4 => &super::avx512_acc::SPMM_I8_1X4_ACC,
                    I8Layout::B16x4 => &super::avx512_acc::SPMM_I8_16X4_ACC,
                };
            }
            // The AVX2 16x4 entry widens activations in the packing's signed domain.
            if isa == Isa::Avx2 && !self.kernel.unsigned {
                return match layout {
                    I8Layout::B1x4 => &AVX2_1X4,
                    I8Layout::B16x4 => &AVX2_16X4,
                };
            }
        }
        #[cfg(target_arch = "aarch64")]
        if isa != Isa::Scalar {
            return match layout {
                I8Layout::B1x4 => &NEON_1X4,
                I8Layout::B16x4 => &NEON_16X4,
            };
        }
        let _ = isa;
        match layout {
            I8Layout::B1x4 => &GENERIC_1X4,
            I8Layout::B16x4 => &GENERIC_16X4,
        }
    }

    /// The scratch [`PackedI8::run_acc`] needs, in u32 elements (none for the AVX-512 `16x4`
    /// entry when K is a multiple of 4, nor for the portable `16x4` loop).
    pub fn acc_scratch_len(&self) -> usize {
        let kern = self.acc_kernel();
        if kern.only_partial && self.k.is_multiple_of(4) {
            return 0;
        }
        kern.words_per_k4 * self.k.div_ceil(4) + kern.slack
    }

    /// The layout the weights were packed into.
    pub fn layout(&self) -> I8Layout {
        self.layout
    }

    /// Raw-accumulator mode: for rows `rows` of `a` (int8 or uint8, as packed) and output
    /// channels `cols`, `acc[(m − rows.start)·acc_stride + (n − cols.start)] = bias[n] + Σ_k
    /// W[n][k]·(a[m·a_stride + k] − zero_point)` (wrapping int32), the sums the dense
    /// [`crate::gemm::gemm_i8_acc`] gives for the same weights. Only that block of `acc` is
    /// written. `cols.start` must be a multiple of the layout's block height (16 for `16x4`),
    /// so that threads can split the channels by whole blocks.
    ///
    /// Panics if `A` is not the activation type the weights were packed for, on a misaligned or
    /// out-of-range `cols`, short slices or strides (`a_stride` below K, `acc_stride` below
    /// `cols.len()`), or a `scratch` shorter than [`PackedI8::acc_scratch_len`].
    #[allow(clippy::too_many_arguments)]
    pub fn run_acc<A: Q8 + bytemuck::Pod>(
        &self,
        a: &[A],
        a_stride: usize,
        rows: Range<usize>,
        cols: Range<usize>,
        acc: &mut [i32],
        acc_stride: usize,
        scratch: &mut [u32],
    ) {
        assert_eq!(
            A::UNSIGNED,
            self.unsigned_input,
            "spmm: activation type differs from the one the weights were packed for"
        );
        assert!(
            cols.start <= cols.end
                && cols.end <= self.n
                && cols.start.is_multiple_of(self.layout.rows()),
            "spmm: cols {cols:?} not whole blocks within N={}",
            self.n
        );
        if rows.is_empty() || cols.is_empty() {
            return;
        }
        let m = rows.end - rows.start;
        // The accumulator block is relative: rows 0..m, columns 0..cols.len().
        check_block(a.len(), a_stride, self.k, &rows, "activations");
        check_block(acc.len(), acc_stride, cols.len(), &(0..m), "accumulators");
        let kern = self.acc_kernel();
        assert!(
            scratch.len() >= self.acc_scratch_len(),
            "spmm: scratch too short"
        );
        let a: &[i8] = bytemuck::cast_slice(a);
        (kern.run)(
            self,
            &a[rows.start * a_stride..],
            a_stride,
            m,
            cols,
            acc,
            acc_stride,
            scratch,
        );
    }
}

/// Panics unless rows `rows` of `len` elements at `stride` lie within a slice of `have`.
fn check_block(have: usize, stride: usize, len: usize, rows: &Range<usize>, what: &str) {
    assert!(stride >= len, "spmm: {what} stride below the row length");
    let need = (rows.end - 1)
        .checked_mul(stride)
        .and_then(|x| x.checked_add(len));
    assert!(
        need.is_some_and(|x| x <= have),
        "spmm: {what} too short for rows {rows:?}"
    );
}

/// An activation byte in the packed kernel's domain (`^ xor`, then unsigned or signed).
#[inline(always)]
fn domain<const U: bool>(b: u8, xor: u8) -> i32 {
    let v = b ^ xor;
    if U {
        v as i32
    } else {
        v as i8 as i32
    }
}

/// The dot product of the 4 weights of a little-endian word with 4 activations.
#[inline(always)]
fn dot4(w: i32, x: [i32; 4]) -> i32 {
    let w = w.to_le_bytes();
    w[0] as i8 as i32 * x[0]
        + w[1] as i8 as i32 * x[1]
        + w[2] as i8 as i32 * x[2]
        + w[3] as i8 as i32 * x[3]
}

#[allow(clippy::too_many_arguments)]
fn generic_1x4(
    p: &PackedI8,
    a: &[i8],
    a_stride: usize,
    m: usize,
    cols: Range<usize>,
    acc: &mut [i32],
    acc_stride: usize,
    scratch: &mut [u32],
) {
    if p.kernel.unsigned {
        tiled_1x4::<TILE, true>(p, a, a_stride, m, cols, acc, acc_stride, scratch)
    } else {
        tiled_1x4::<TILE, false>(p, a, a_stride, m, cols, acc, acc_stride, scratch)
    }
}

#[allow(clippy::too_many_arguments)]
fn generic_16x4(
    p: &PackedI8,
    a: &[i8],
    a_stride: usize,
    m: usize,
    cols: Range<usize>,
    acc: &mut [i32],
    acc_stride: usize,
    _scratch: &mut [u32],
) {
    if p.kernel.unsigned {
        rows_16x4::<true>(p, a, a_stride, m, cols, acc, acc_stride)
    } else {
        rows_16x4::<false>(p, a, a_stride, m, cols, acc, acc_stride)
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
fn avx2_1x4(
    p: &PackedI8,
    a: &[i8],
    a_stride: usize,
    m: usize,
    cols: Range<usize>,
    acc: &mut [i32],
    acc_stride: usize,
    scratch: &mut [u32],
) {
    /// # Safety
    /// AVX2 + FMA available.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn go(
        p: &PackedI8,
        a: &[i8],
        a_stride: usize,
        m: usize,
        cols: Range<usize>,
        acc: &mut [i32],
        acc_stride: usize,
        scratch: &mut [u32],
    ) {
        // Inlined here, so compiled for AVX2; AVX2 packings are in the signed domain.
        tiled_1x4::<TILE, false>(p, a, a_stride, m, cols, acc, acc_stride, scratch)
    }
    // SAFETY: chosen only for packings of an AVX2-tier kernel, which packing refuses unless
    // the tier is enabled (the CPU has AVX2 + FMA).
    unsafe { go(p, a, a_stride, m, cols, acc, acc_stride, scratch) }
}

#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
fn avx2_16x4(
    p: &PackedI8,
    a: &[i8],
    a_stride: usize,
    m: usize,
    cols: Range<usize>,
    acc: &mut [i32],
    acc_stride: usize,
    scratch: &mut [u32],
) {
    // SAFETY: as `avx2_1x4`; `run_acc` checked the scratch (2 words per group of 4 channels).
    unsafe { avx2_16x4_impl(p, a, a_stride, m, cols, acc, acc_stride, scratch) }
}

/// The AVX2 16×4 loop of `spmm_avx2.rs` (activations widened to i16 once per row, weights per
/// block, `vpmaddwd`: exact), ending in int32 stores of `c + Σ`.
///
/// # Safety
/// AVX2; `scratch` holds at least 2·⌈K/4⌉ words; the rest as [`PackedI8::run_acc`] checked.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn avx2_16x4_impl(
    p: &PackedI8,
    a: &[i8],
    a_stride: usize,
    m: usize,
    cols: Range<usize>,
    acc: &mut [i32],
    acc_stride: usize,
    scratch: &mut [u32],
) {
    use super::avx2::{block_row_sums, widen_row_i16};
    use std::arch::x86_64::*;
    let k = p.k;
    let k4n = k.div_ceil(4);
    let row16 = &mut scratch[..2 * k4n];
    let (g0, g1) = (cols.start / 16, cols.end.div_ceil(16));
    for r in 0..m {
        widen_row_i16(&a[r * a_stride..][..k], p.xor, row16);
        let y = &mut acc[r * acc_stride..][..cols.len()];
        for g in g0..g1 {
            let sums = block_row_sums(p, row16, g);
            for (half, &v) in sums.iter().enumerate() {
                let c0 = g * 16 + 8 * half;
                if c0 >= cols.end {
                    break;
                }
                // SAFETY: `c` has ⌈N/16⌉·16 entries.
                let cv = unsafe { _mm256_loadu_si256(p.c.as_ptr().add(c0) as *const _) };
                let mut lanes = [0i32; 8];
                // SAFETY: 8 words.
                unsafe {
                    _mm256_storeu_si256(lanes.as_mut_ptr() as *mut _, _mm256_add_epi32(v, cv))
                };
                let cnt = (cols.end - c0).min(8);
                y[c0 - cols.start..][..cnt].copy_from_slice(&lanes[..cnt]);
            }
        }
    }
}

/// 1×4 layout (one channel per block row), lanes over `P` pixels: a tile's activations packed
/// as `[K/4][P][4]` domain bytes in `scratch`, then per channel `P` independent sums (the
/// shape `spmm/tiled.rs` uses, which vectorizes for the enclosing target features).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn tiled_1x4<const P: usize, const U: bool>(
    p: &PackedI8,
    a: &[i8],
    a_stride: usize,
    m: usize,
    cols: Range<usize>,
    acc: &mut [i32],
    acc_stride: usize,
    scratch: &mut [u32],
) {
    let k = p.k;
    let k4n = k.div_ceil(4);
    let ap: &mut [[u8; 4]] = bytemuck::cast_slice_mut(&mut scratch[..P * k4n]);
    let (c0, xor) = (cols.start, p.xor);
    let mut m0 = 0;
    while m0 < m {
        let pt = (m - m0).min(P);
        // Rows pt..P keep older bytes: their sums are computed and dropped.
        for r in 0..pt {
            let row = &a[(m0 + r) * a_stride..][..k];
            for q in 0..k4n {
                let mut b = [0u8; 4];
                for (j, b) in b.iter_mut().enumerate() {
                    // Past K the weights are zero: any byte will do.
                    *b = row.get(4 * q + j).map_or(0, |&v| v as u8 ^ xor);
                }
                ap[q * P + r] = b;
            }
        }
        for ch in cols.clone() {
            let (s, e) = (p.block_ptr[ch] as usize, p.block_ptr[ch + 1] as usize);
            let mut sum = [0i32; P];
            for i in s..e {
                let x: &[[u8; 4]; P] = ap[p.k4[i] as usize * P..][..P].try_into().unwrap();
                let w = p.w[i].to_le_bytes().map(|b| b as i8 as i32);
                for j in 0..P {
                    let d = domain::<U>(x[j][0], 0) * w[0]
                        + domain::<U>(x[j][1], 0) * w[1]
                        + domain::<U>(x[j][2], 0) * w[2]
                        + domain::<U>(x[j][3], 0) * w[3];
                    sum[j] = sum[j].wrapping_add(d);
                }
            }
            let c = p.c[ch];
            for (j, &v) in sum.iter().enumerate().take(pt) {
                acc[(m0 + j) * acc_stride + ch - c0] = v.wrapping_add(c);
            }
        }
        m0 += P;
    }
}

/// 16×4 layout, one pixel at a time, lanes over the 16 channels of a block row.
#[inline(always)]
fn rows_16x4<const U: bool>(
    p: &PackedI8,
    a: &[i8],
    a_stride: usize,
    m: usize,
    cols: Range<usize>,
    acc: &mut [i32],
    acc_stride: usize,
) {
    const R: usize = 16;
    let (g0, g1) = (cols.start / R, cols.end.div_ceil(R));
    for row in 0..m {
        let x = &a[row * a_stride..][..p.k];
        let y = &mut acc[row * acc_stride..][..cols.len()];
        for g in g0..g1 {
            let mut sum: [i32; R] = p.c[g * R..][..R].try_into().unwrap();
            for b in p.block_ptr[g] as usize..p.block_ptr[g + 1] as usize {
                let k0 = p.k4[b] as usize * 4;
                let mut xv = [0i32; 4];
                for (j, xv) in xv.iter_mut().enumerate() {
                    // Past K the weights are zero: skip the missing activations.
                    if let Some(&v) = x.get(k0 + j) {
                        *xv = domain::<U>(v as u8, p.xor);
                    }
                }
                let w: &[i32; R] = p.w[b * R..][..R].try_into().unwrap();
                for l in 0..R {
                    sum[l] = sum[l].wrapping_add(dot4(w[l], xv));
                }
            }
            let lo = g * R;
            for (l, &v) in sum.iter().enumerate() {
                if cols.contains(&(lo + l)) {
                    y[lo + l - cols.start] = v;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{i8_candidates, PackedI8};
    use super::*;
    use crate::gemm::{gemm_i8_acc, ActQuant, PackedI8 as DenseI8};
    use crate::sparse::tests::Rng;
    use crate::sparse::{BlockShape, BsrMatrix, CsrMatrix, SparseWeights};

    const BLOCKS: [(usize, usize); 7] = [(1, 1), (1, 4), (4, 1), (16, 4), (32, 4), (2, 3), (4, 4)];

    /// One random case, every layout and every kernel of this host, int8 or uint8 activations:
    /// `run_acc` equals the dense raw-accumulator GEMM on the densified weights.
    fn check(rng: &mut Rng, i: usize, unsigned: bool) {
        let m = match i % 4 {
            0 => 1,
            1 => 1 + rng.below(8),
            _ => 1 + rng.below(140),
        };
        let k = match i % 7 {
            0 => 1 + rng.below(4),
            1 => 4 * (1 + rng.below(40)),
            _ => 1 + rng.below(150),
        };
        let n = match i % 5 {
            0 => 1 + rng.below(3),
            1 => 16 * (1 + rng.below(4)),
            _ => 1 + rng.below(70),
        };
        let (br, bc) = BLOCKS[i % BLOCKS.len()];
        let block = BlockShape::new(br.min(n), bc.min(k));
        let density = match i % 6 {
            0 => 0.0,
            1 => 1.0,
            _ => rng.unit(),
        };
        let (nbr, nbc) = (n.div_ceil(block.r), k.div_ceil(block.c));
        let kept: Vec<bool> = (0..nbr * nbc).map(|_| rng.unit() < density).collect();
        let mut dense = vec![0i8; n * k];
        let mut keep = vec![false; n * k];
        for r in 0..n {
            for c in 0..k {
                if kept[(r / block.r) * nbc + c / block.c] {
                    keep[r * k + c] = true;
                    dense[r * k + c] = if rng.below(9) == 0 { -127 } else { rng.i8() };
                }
            }
        }
        let csr = CsrMatrix::from_dense(&dense, n, k, &keep).unwrap();
        let bsr = BsrMatrix::from_dense(&dense, n, k, block, &keep).unwrap();
        let w = if i.is_multiple_of(3) {
            SparseWeights::Csr(csr.view().unwrap())
        } else {
            SparseWeights::Bsr(bsr.view().unwrap())
        };
        let wd: Vec<i8> = w.to_dense();
        let bias: Vec<i32> = (0..n)
            .map(|_| rng.below(2_000_001) as i32 - 1_000_000)
            .collect();
        let act = if unsigned {
            ActQuant::u8(rng.below(256) as i32)
        } else {
            ActQuant::i8(rng.below(256) as i32 - 128)
        };
        let a_stride = k + if i.is_multiple_of(2) { rng.below(9) } else { 0 };
        let a: Vec<u8> = (0..m * a_stride).map(|_| rng.below(256) as u8).collect();
        let rows = if i.is_multiple_of(3) {
            0..m
        } else {
            let s = rng.below(m);
            s..s + 1 + rng.below(m - s)
        };
        let dense_p = DenseI8::new(&wd, n, k, Some(&bias), act).unwrap();
        let mut want = vec![0i32; m * n];
        let mut put =
            |r: usize, c0: usize, v: &[i32]| want[r * n + c0..][..v.len()].copy_from_slice(v);
        if unsigned {
            gemm_i8_acc(&a, a_stride, &dense_p, rows.clone(), 0..n, &mut put);
        } else {
            let ai: &[i8] = bytemuck::cast_slice(&a);
            gemm_i8_acc(ai, a_stride, &dense_p, rows.clone(), 0..n, &mut put);
        }
        for layout in [I8Layout::B1x4, I8Layout::B16x4] {
            let h = layout.rows();
            let c0 = h * rng.below(n.div_ceil(h));
            let cols = if i.is_multiple_of(2) {
                0..n
            } else {
                c0..c0 + rng.below(n - c0 + 1)
            };
            for kernel in i8_candidates(layout) {
                let p = PackedI8::with_kernel_act(&w, Some(&bias), act, layout, kernel).unwrap();
                let acc_stride = cols.len() + rng.below(5);
                let mut got = vec![i32::MIN + 7; rows.len() * acc_stride];
                let mut scratch = vec![0u32; p.acc_scratch_len()];
                if unsigned {
                    p.run_acc(
                        &a,
                        a_stride,
                        rows.clone(),
                        cols.clone(),
                        &mut got,
                        acc_stride,
                        &mut scratch,
                    );
                } else {
                    let ai: &[i8] = bytemuck::cast_slice(&a);
                    p.run_acc(
                        ai,
                        a_stride,
                        rows.clone(),
                        cols.clone(),
                        &mut got,
                        acc_stride,
                        &mut scratch,
                    );
                }
                for (r, row) in rows.clone().enumerate() {
                    for j in 0..acc_stride {
                        let g = got[r * acc_stride + j];
                        let w = if j < cols.len() {
                            want[row * n + cols.start + j]
                        } else {
                            i32::MIN + 7
                        };
                        assert_eq!(
                            g,
                            w,
                            "case {i}: M={m} K={k} N={n} block {block} density {density:.2} \
                             {} rows {rows:?} cols {cols:?} unsigned={unsigned} ({}): first \
                             difference at row {row} col {}",
                            if i.is_multiple_of(3) { "csr" } else { "bsr" },
                            p.acc_kernel().name,
                            cols.start + j
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn acc_matches_dense_acc() {
        let mut rng = Rng(61);
        for i in 0..220 {
            check(&mut rng, i, i % 5 == 4);
        }
    }

    /// Weights pruned in 32×4 blocks pair their 16-channel block rows; a column range may start
    /// on the second row of a pair.
    #[test]
    fn acc_paired_rows_and_split_columns() {
        let mut rng = Rng(62);
        for (m, k, n) in [
            (1usize, 64usize, 96usize),
            (3, 128, 64),
            (70, 64, 48),
            (9, 36, 80),
        ] {
            let block = BlockShape::new(32, 4);
            let (nbr, nbc) = (n.div_ceil(32), k.div_ceil(4));
            let kept: Vec<bool> = (0..nbr * nbc).map(|_| rng.unit() < 0.3).collect();
            let mut dense = vec![0i8; n * k];
            let mut keep = vec![false; n * k];
            for r in 0..n {
                for c in 0..k {
                    if kept[(r / 32) * nbc + c / 4] {
                        keep[r * k + c] = true;
                        dense[r * k + c] = rng.i8();
                    }
                }
            }
            let bsr = BsrMatrix::from_dense(&dense, n, k, block, &keep).unwrap();
            let w = SparseWeights::Bsr(bsr.view().unwrap());
            let bias: Vec<i32> = (0..n).map(|_| rng.below(20001) as i32 - 10000).collect();
            let act = ActQuant::i8(-3);
            let dense_p = DenseI8::new(&dense, n, k, Some(&bias), act).unwrap();
            let a: Vec<i8> = (0..m * k).map(|_| rng.i8()).collect();
            let mut want = vec![0i32; m * n];
            gemm_i8_acc(&a, k, &dense_p, 0..m, 0..n, |r, c0, v| {
                want[r * n + c0..][..v.len()].copy_from_slice(v)
            });
            for kernel in i8_candidates(I8Layout::B16x4) {
                let p = PackedI8::with_kernel_act(&w, Some(&bias), act, I8Layout::B16x4, kernel)
                    .unwrap();
                assert!(p.paired[0]);
                for cols in [0..n, 16..n, 16..n - 1, 32..48] {
                    let mut got = vec![0i32; m * cols.len()];
                    let mut scratch = vec![0u32; p.acc_scratch_len()];
                    p.run_acc(
                        &a,
                        k,
                        0..m,
                        cols.clone(),
                        &mut got,
                        cols.len(),
                        &mut scratch,
                    );
                    for r in 0..m {
                        for (j, c) in cols.clone().enumerate() {
                            assert_eq!(
                                got[r * cols.len() + j],
                                want[r * n + c],
                                "M={m} K={k} N={n} 32x4 cols {cols:?} ({}): row {r} col {c}",
                                p.acc_kernel().name
                            );
                        }
                    }
                }
            }
        }
    }

    /// On a capable host the accumulator mode of a dispatched packing is not the generic loop.
    #[test]
    fn fast_acc_kernels_are_plugged() {
        let m = CsrMatrix::from_dense(&[1i8, 2, 3, 4], 2, 2, &[true; 4]).unwrap();
        let w = SparseWeights::Csr(m.view().unwrap());
        for layout in [I8Layout::B1x4, I8Layout::B16x4] {
            let name = PackedI8::new(&w, None, 0, layout)
                .unwrap()
                .acc_kernel()
                .name;
            let prefix = match Isa::active() {
                Isa::Avx512Vnni => "avx512vnni::",
                Isa::Avx2 => "avx2::",
                Isa::Neon | Isa::Dotprod | Isa::I8mm => "neon::",
                _ => "generic::",
            };
            assert!(name.starts_with(prefix), "{name} on {:?}", Isa::active());
            assert!(name.ends_with("_acc"), "{name}");
        }
    }

    #[test]
    #[should_panic(expected = "not whole blocks")]
    fn acc_columns_must_start_on_a_block() {
        let m = CsrMatrix::from_dense(&[1i8; 64], 32, 2, &[true; 64]).unwrap();
        let w = SparseWeights::Csr(m.view().unwrap());
        let p = PackedI8::new(&w, None, 0, I8Layout::B16x4).unwrap();
        let mut acc = vec![0i32; 32];
        p.run_acc(&[0i8; 2], 2, 0..1, 3..32, &mut acc, 32, &mut []);
    }
}
