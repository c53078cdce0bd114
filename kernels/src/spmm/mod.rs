//! Sparse weights × dense activations: 1×1 convolutions and fully-connected layers.
//!
//! `out[m][n] = epilogue(bias[n] + Σ_k W[n][k] · a[m][k])` for pixels `m` (rows of the NHWC
//! activation matrix, row stride given) and output channels `n`, with `W` sparse (a validated
//! [`SparseWeights`]). The epilogue is the dense GEMM's: f32 bias + clamp; int8 bias (int32),
//! TFLite requantization ([`Requant`]) + clamp, with asymmetric int8 activations (zero point) and
//! symmetric int8 weights.
//!
//! Weights are packed once ([`PackedF32::new`], [`PackedI8::new`]) into a kernel layout, which also
//! picks the kernel for the active ISA; `run` then computes any sub-range of output rows (pixels,
//! for threads), allocates nothing, and uses a caller-provided scratch of `scratch_len()`
//! elements. Any source format is accepted by any layout (blocks are re-cut at packing); the
//! speed comes from a layout that matches the sparsity structure:
//!
//! - f32 `1x1` (CSR): XNNPACK-style, lanes over pixels: activations of a tile of pixels are
//!   transposed to `[K][pixels]`, each nonzero is one broadcast weight × one vector FMA per
//!   vector of pixels, then the tile is transposed back to NHWC.
//! - f32 `4x1`: as `1x1`, 4 output channels share the column pattern (4 accumulators per load).
//! - int8 `1x4`: 4 consecutive input channels per block (one `vpdpbusd` / `sdot` lane group):
//!   activations packed per tile as `[K/4][pixels][4]`, one broadcast i32 of weights per block;
//!   the tile is requantized to bytes, then transposed back to NHWC.
//! - int8 `16x4` (coarse): lanes over 16 output channels, one 64-byte block = one `vpdpbusd`
//!   per pixel, written straight to NHWC (no transposes). The only layout that helps `M = 1`.
//!
//! [`prefer_sparse`] says when a layout beats the dense kernel on this CPU.

mod acc;
mod reference;
#[cfg(test)]
mod tests;
#[cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(dead_code)
)]
mod tiled;

#[cfg(target_arch = "x86_64")]
#[path = "../arch/x86_64/spmm_avx2.rs"]
mod avx2;
#[cfg(target_arch = "x86_64")]
#[path = "../arch/x86_64/spmm_avx512.rs"]
mod avx512;
#[cfg(target_arch = "x86_64")]
#[path = "../arch/x86_64/spmm_avx512_acc.rs"]
mod avx512_acc;
#[cfg(target_arch = "aarch64")]
#[path = "../arch/aarch64/spmm_dotprod.rs"]
mod dotprod;
#[cfg(target_arch = "aarch64")]
#[path = "../arch/aarch64/spmm_neon.rs"]
mod neon;

use crate::gemm::ActQuant;
use crate::isa::Isa;
use crate::requant::Requant;
use crate::sparse::SparseWeights;
use std::fmt;
use std::ops::Range;

/// Why weights could not be packed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpmmError {
    /// Bias of the wrong length.
    Bias { expected: usize, found: usize },
    /// A per-channel requantization with the wrong number of channels.
    RequantChannels { expected: usize, found: usize },
    /// Requantization clamp outside int8.
    RequantRange { min: i32, max: i32 },
    /// Input zero point outside int8.
    ZeroPoint(i32),
    /// More stored blocks than a `u32` index can address.
    TooLarge,
}

impl fmt::Display for SpmmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpmmError::Bias { expected, found } => {
                write!(f, "bias: expected {expected} values, found {found}")
            }
            SpmmError::RequantChannels { expected, found } => write!(
                f,
                "requantization: expected 1 or {expected} channels, found {found}"
            ),
            SpmmError::RequantRange { min, max } => {
                write!(f, "requantization clamp {min}..={max} is not within int8")
            }
            SpmmError::ZeroPoint(z) => {
                write!(f, "input zero point {z} is outside the activation type")
            }
            SpmmError::TooLarge => write!(f, "sparse weights too large to pack"),
        }
    }
}

impl std::error::Error for SpmmError {}

/// f32 kernel layouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum F32Layout {
    /// One output channel per row of nonzeros (CSR).
    B1x1,
    /// Four output channels share each nonzero column.
    B4x1,
}

impl F32Layout {
    /// Output channels per group.
    pub const fn rows(self) -> usize {
        match self {
            F32Layout::B1x1 => 1,
            F32Layout::B4x1 => 4,
        }
    }
}

/// int8 kernel layouts (blocks always span 4 input channels).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum I8Layout {
    /// 1 output channel × 4 input channels.
    B1x4,
    /// 16 output channels × 4 input channels.
    B16x4,
}

impl I8Layout {
    /// Output channels per block.
    pub const fn rows(self) -> usize {
        match self {
            I8Layout::B1x4 => 1,
            I8Layout::B16x4 => 16,
        }
    }
}

/// A kernel entry: runs rows `0..m` of `a`/`out` (already offset to the first row). Safe to
/// call with arguments `run` checked, on a CPU that has the kernel's ISA (dispatch ensures it).
pub(crate) type F32Fn =
    fn(&PackedF32, &[f32], usize, usize, &mut [f32], usize, f32, f32, &mut [f32]);
pub(crate) type I8Fn = fn(&PackedI8, &[i8], usize, usize, &mut [i8], usize, &Requant, &mut [u32]);

/// An f32 sparse kernel: its name (`kernels/NAMING.md`), tile and entry.
#[derive(Clone, Copy)]
pub struct SpmmF32Kernel {
    /// Full name, e.g. `avx512::spmm_f32_32x4`.
    pub name: &'static str,
    /// The tier it needs.
    pub isa: Isa,
    /// Pixels per tile (0: works in place, needs no scratch).
    pub(crate) tile: usize,
    /// Most input channels per pass over the tile (0: all): a tile's activations stay in L1,
    /// the weights are split into chunks of input channels at packing.
    pub(crate) kc: usize,
    pub(crate) run: F32Fn,
}

/// An int8 sparse kernel.
#[derive(Clone, Copy)]
pub struct SpmmI8Kernel {
    /// Full name, e.g. `avx512vnni::spmm_qu8s8_64x1c4`.
    pub name: &'static str,
    /// The tier it needs.
    pub isa: Isa,
    /// Pixels per tile (0: works in place, needs no scratch).
    pub(crate) tile: usize,
    /// The kernel multiplies activations as unsigned bytes (`vpdpbusd`), else as signed.
    pub(crate) unsigned: bool,
    pub(crate) run: I8Fn,
}

impl fmt::Debug for SpmmF32Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl fmt::Debug for SpmmI8Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// The sparse slots of the dispatch table ([`crate::dispatch::Kernels::spmm`]).
#[derive(Clone, Copy, Debug)]
pub struct SpmmTable {
    pub f32_1x1: &'static SpmmF32Kernel,
    pub f32_4x1: &'static SpmmF32Kernel,
    pub i8_1x4: &'static SpmmI8Kernel,
    pub i8_16x4: &'static SpmmI8Kernel,
}

impl SpmmTable {
    /// The portable kernels.
    pub fn scalar() -> SpmmTable {
        SpmmTable {
            f32_1x1: &reference::SPMM_F32_1X1,
            f32_4x1: &reference::SPMM_F32_4X1,
            i8_1x4: &reference::SPMM_I8_1X4,
            i8_16x4: &reference::SPMM_I8_16X4,
        }
    }

    /// Overwrites the slots of every enabled tier that has sparse kernels, lowest tier first.
    pub(crate) fn plug(&mut self) {
        for t in tier_tables() {
            *self = t;
        }
    }

    /// The kernel for an f32 layout.
    pub fn f32(&self, layout: F32Layout) -> &'static SpmmF32Kernel {
        match layout {
            F32Layout::B1x1 => self.f32_1x1,
            F32Layout::B4x1 => self.f32_4x1,
        }
    }

    /// The kernel for an int8 layout.
    pub fn i8(&self, layout: I8Layout) -> &'static SpmmI8Kernel {
        match layout {
            I8Layout::B1x4 => self.i8_1x4,
            I8Layout::B16x4 => self.i8_16x4,
        }
    }
}

/// The tables of the enabled tiers that have sparse kernels, lowest first.
fn tier_tables() -> Vec<SpmmTable> {
    #[allow(unused_mut)]
    let mut v = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if Isa::Avx2.enabled() {
            v.push(avx2::TABLE);
        }
        if Isa::Avx512Vnni.enabled() {
            v.push(avx512::TABLE);
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if Isa::Neon.enabled() {
            v.push(neon::TABLE);
        }
        if Isa::Dotprod.enabled() {
            v.push(SpmmTable {
                i8_1x4: &dotprod::SPMM_I8_1X4,
                i8_16x4: &dotprod::SPMM_I8_16X4,
                ..neon::TABLE
            });
        }
    }
    v
}

/// Every f32 kernel of `layout` that may run here (scalar first), for tests and benchmarks.
pub fn f32_candidates(layout: F32Layout) -> Vec<&'static SpmmF32Kernel> {
    let mut v = vec![SpmmTable::scalar().f32(layout)];
    v.extend(tier_tables().iter().map(|t| t.f32(layout)));
    v
}

/// Every int8 kernel of `layout` that may run here (scalar first).
pub fn i8_candidates(layout: I8Layout) -> Vec<&'static SpmmI8Kernel> {
    let mut v = vec![SpmmTable::scalar().i8(layout)];
    v.extend(tier_tables().iter().map(|t| t.i8(layout)));
    v
}

/// f32 sparse weights packed for one kernel.
pub struct PackedF32 {
    pub(crate) n: usize,
    pub(crate) k: usize,
    pub(crate) layout: F32Layout,
    /// Groups of `layout.rows()` channels: entries `group_ptr[g]..group_ptr[g + 1]`.
    pub(crate) group_ptr: Vec<u32>,
    /// Input channel of each entry.
    pub(crate) kidx: Vec<u32>,
    /// `layout.rows()` weights per entry (channels of the group; zero past `n`).
    pub(crate) vals: Vec<f32>,
    /// Bias, padded with zeros to whole groups.
    pub(crate) bias: Vec<f32>,
    /// Input channels per chunk ([`chunking`]); K when the weights are not split.
    pub(crate) kc: usize,
    /// With `nc = K.div_ceil(kc) > 1` chunks: `chunk_end[g·nc + c]` is the end of group `g`'s
    /// entries of chunk `c` (input channels `c·kc..(c + 1)·kc`; entries are sorted by column
    /// within a group, chunk `c` starts where chunk `c − 1` ends). Empty when `nc = 1`.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) chunk_end: Vec<u32>,
    kernel: &'static SpmmF32Kernel,
}

impl fmt::Debug for PackedF32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PackedF32({}x{} {:?} nnz={} {})",
            self.n,
            self.k,
            self.layout,
            self.kidx.len(),
            self.kernel.name
        )
    }
}

impl PackedF32 {
    /// Packs `w` (N × K) and an optional bias for the best kernel of `layout` on this CPU.
    pub fn new(
        w: &SparseWeights<'_, f32>,
        bias: Option<&[f32]>,
        layout: F32Layout,
    ) -> Result<Self, SpmmError> {
        Self::with_kernel(w, bias, layout, crate::dispatch::kernels().spmm.f32(layout))
    }

    /// As [`PackedF32::new`] for a given kernel (one of [`f32_candidates`]).
    pub fn with_kernel(
        w: &SparseWeights<'_, f32>,
        bias: Option<&[f32]>,
        layout: F32Layout,
        kernel: &'static SpmmF32Kernel,
    ) -> Result<Self, SpmmError> {
        assert!(
            kernel.isa.enabled(),
            "spmm: kernel {} not enabled here",
            kernel.name
        );
        let (n, k) = (w.rows(), w.cols());
        let g = layout.rows();
        let ngroups = n.div_ceil(g);
        let mut bias_p = vec![0.0f32; ngroups * g];
        if let Some(b) = bias {
            if b.len() != n {
                return Err(SpmmError::Bias {
                    expected: n,
                    found: b.len(),
                });
            }
            bias_p[..n].copy_from_slice(b);
        }
        let mut group_ptr = Vec::with_capacity(ngroups + 1);
        let (mut kidx, mut vals) = (Vec::new(), Vec::new());
        group_ptr.push(0u32);
        // The group's entries merged by column: work and memory follow the stored entries,
        // never K (an untrusted shape).
        let mut ent: Vec<(u32, usize, f32)> = Vec::new();
        for grp in 0..ngroups {
            ent.clear();
            for r in 0..g {
                let row = grp * g + r;
                if row < n {
                    w.for_each_in_row(row, |c, v| {
                        if v != 0.0 {
                            ent.push((c as u32, r, v));
                        }
                    });
                }
            }
            ent.sort_unstable_by_key(|e| (e.0, e.1));
            let mut i = 0;
            while i < ent.len() {
                let c = ent[i].0;
                kidx.push(c);
                let base = vals.len();
                vals.resize(base + g, 0.0);
                while i < ent.len() && ent[i].0 == c {
                    vals[base + ent[i].1] = ent[i].2;
                    i += 1;
                }
            }
            group_ptr.push(u32::try_from(kidx.len()).map_err(|_| SpmmError::TooLarge)?);
        }
        let kc = chunking(k, kernel.kc, ngroups, kidx.len());
        let chunk_end = chunk_ends(&group_ptr, &kidx, kc, k);
        Ok(PackedF32 {
            n,
            k,
            layout,
            group_ptr,
            kidx,
            vals,
            bias: bias_p,
            kc,
            chunk_end,
            kernel,
        })
    }

    /// Chunks of input channels (at least 1).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn chunks(&self) -> usize {
        if self.kc == 0 {
            1
        } else {
            self.k.div_ceil(self.kc)
        }
    }

    /// Entries `start..end` of group `grp` in chunk `c` (of `nc`).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    #[inline(always)]
    pub(crate) fn chunk_range(&self, grp: usize, c: usize, nc: usize) -> (usize, usize) {
        if nc == 1 {
            return (
                self.group_ptr[grp] as usize,
                self.group_ptr[grp + 1] as usize,
            );
        }
        let s = if c == 0 {
            self.group_ptr[grp]
        } else {
            self.chunk_end[grp * nc + c - 1]
        };
        (s as usize, self.chunk_end[grp * nc + c] as usize)
    }

    /// Output channels.
    pub fn n(&self) -> usize {
        self.n
    }
    /// Input channels.
    pub fn k(&self) -> usize {
        self.k
    }
    /// Stored entries (nonzero columns × group rows).
    pub fn stored(&self) -> usize {
        self.vals.len()
    }
    /// The kernel's name (naming grammar of `kernels/NAMING.md`).
    pub fn kernel_name(&self) -> &'static str {
        self.kernel.name
    }
    /// The scratch `run` needs, in f32 elements.
    pub fn scratch_len(&self) -> usize {
        // (+ 16: room to align the tile to a cache line.)
        self.kernel.tile * (self.kc + self.n.div_ceil(4) * 4 + 4) + 16
    }

    /// Computes output rows `rows` (pixels): `out[m·out_stride + n] = clamp(bias[n] +
    /// Σ_k W[n][k]·a[m·a_stride + k], lo, hi)`.
    ///
    /// Panics if a slice is too short for `rows`, a stride is below K (for `a`) or N (for `out`),
    /// or `scratch` is shorter than [`PackedF32::scratch_len`].
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        a: &[f32],
        a_stride: usize,
        rows: Range<usize>,
        out: &mut [f32],
        out_stride: usize,
        lo: f32,
        hi: f32,
        scratch: &mut [f32],
    ) {
        if rows.is_empty() {
            return;
        }
        check_args(
            a.len(),
            a_stride,
            self.k,
            &rows,
            out.len(),
            out_stride,
            self.n,
        );
        assert!(
            scratch.len() >= self.scratch_len(),
            "spmm: scratch too short"
        );
        let m = rows.end - rows.start;
        (self.kernel.run)(
            self,
            &a[rows.start * a_stride..],
            a_stride,
            m,
            &mut out[rows.start * out_stride..],
            out_stride,
            lo,
            hi,
            scratch,
        );
    }
}

/// The chunk width for `k` input channels and a kernel taking at most `max` per pass (0: no
/// limit): K split into equal chunks, rounded up to 16 channels. Not split when the chunk table
/// (`groups` × chunks) would outgrow the stored entries (a huge K with few entries).
fn chunking(k: usize, max: usize, groups: usize, stored: usize) -> usize {
    if max == 0 || k <= max {
        return k;
    }
    let nc = k.div_ceil(max);
    if groups.saturating_mul(nc) > 4 * (stored + groups) + 4096 {
        return k;
    }
    k.div_ceil(nc).next_multiple_of(16).min(k)
}

/// `chunk_end` of [`PackedF32`] (the same form for int8 with `k4` as the columns): per group,
/// the end of each chunk's entries; empty for a single chunk.
fn chunk_ends(ptr: &[u32], cols: &[u32], kc: usize, k: usize) -> Vec<u32> {
    let nc = k.div_ceil(kc.max(1));
    if nc <= 1 {
        return Vec::new();
    }
    let mut ends = Vec::with_capacity((ptr.len() - 1) * nc);
    for g in 0..ptr.len() - 1 {
        let (mut i, e) = (ptr[g] as usize, ptr[g + 1] as usize);
        for c in 0..nc {
            let limit = (c + 1) * kc;
            while i < e && (cols[i] as usize) < limit {
                i += 1;
            }
            ends.push(i as u32);
        }
    }
    ends
}

fn check_args(
    a_len: usize,
    a_stride: usize,
    k: usize,
    rows: &Range<usize>,
    out_len: usize,
    out_stride: usize,
    n: usize,
) {
    assert!(
        a_stride >= k && out_stride >= n,
        "spmm: stride below the row length"
    );
    let need = |stride: usize, len: usize| {
        (rows.end - 1)
            .checked_mul(stride)
            .and_then(|x| x.checked_add(len))
    };
    assert!(
        need(a_stride, k).is_some_and(|x| x <= a_len),
        "spmm: activations too short for rows {rows:?}"
    );
    assert!(
        need(out_stride, n).is_some_and(|x| x <= out_len),
        "spmm: output too short for rows {rows:?}"
    );
}

/// int8 sparse weights packed for one kernel, with the bias and input zero point folded in.
pub struct PackedI8 {
    pub(crate) n: usize,
    pub(crate) k: usize,
    pub(crate) layout: I8Layout,
    /// Block rows: blocks `block_ptr[g]..block_ptr[g + 1]`.
    pub(crate) block_ptr: Vec<u32>,
    /// Input-channel group (`k / 4`) of each block.
    pub(crate) k4: Vec<u32>,
    /// `layout.rows()` little-endian words per block: the 4 weights of each channel.
    pub(crate) w: Vec<i32>,
    /// Per channel (padded to whole blocks): `bias − (zero_point + offset) · Σ_k W[n][k]`,
    /// wrapping, where `offset` is what reaching the kernel's domain adds to each activation
    /// (int8 → unsigned: `a ^ 0x80` = a + 128; uint8 → signed: a − 128; else 0).
    pub(crate) c: Vec<i32>,
    /// XOR applied to every activation byte to reach the kernel's domain (0 or 0x80).
    pub(crate) xor: u8,
    /// Per block row: the next block row has the same blocks (input-channel groups), as when
    /// weights were pruned in blocks of 32 or more output channels; a kernel may run both on
    /// the same activations. Never set for the last block row nor for the one after a pair.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) paired: Vec<bool>,
    /// The activations are uint8 (`run_u8`), else int8 (`run`).
    unsigned_input: bool,
    kernel: &'static SpmmI8Kernel,
}

impl fmt::Debug for PackedI8 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PackedI8({}x{} {:?} blocks={} {})",
            self.n,
            self.k,
            self.layout,
            self.k4.len(),
            self.kernel.name
        )
    }
}

impl PackedI8 {
    /// Packs `w` (N × K, symmetric int8), int32 bias and the zero point of int8 activations
    /// for the best kernel of `layout` on this CPU.
    pub fn new(
        w: &SparseWeights<'_, i8>,
        bias: Option<&[i32]>,
        input_zero_point: i32,
        layout: I8Layout,
    ) -> Result<Self, SpmmError> {
        let kernel = crate::dispatch::kernels().spmm.i8(layout);
        Self::with_kernel_act(w, bias, ActQuant::i8(input_zero_point), layout, kernel)
    }

    /// As [`PackedI8::new`] for uint8 activations (zero point 0..=255); run with
    /// [`PackedI8::run_u8`].
    pub fn new_u8(
        w: &SparseWeights<'_, i8>,
        bias: Option<&[i32]>,
        input_zero_point: i32,
        layout: I8Layout,
    ) -> Result<Self, SpmmError> {
        let kernel = crate::dispatch::kernels().spmm.i8(layout);
        Self::with_kernel_act(w, bias, ActQuant::u8(input_zero_point), layout, kernel)
    }

    /// As [`PackedI8::new`] for a given kernel (one of [`i8_candidates`]).
    pub fn with_kernel(
        w: &SparseWeights<'_, i8>,
        bias: Option<&[i32]>,
        input_zero_point: i32,
        layout: I8Layout,
        kernel: &'static SpmmI8Kernel,
    ) -> Result<Self, SpmmError> {
        Self::with_kernel_act(w, bias, ActQuant::i8(input_zero_point), layout, kernel)
    }

    /// The general form: activations quantized as `act` (int8 or uint8), a given kernel.
    pub fn with_kernel_act(
        w: &SparseWeights<'_, i8>,
        bias: Option<&[i32]>,
        act: ActQuant,
        layout: I8Layout,
        kernel: &'static SpmmI8Kernel,
    ) -> Result<Self, SpmmError> {
        assert!(
            kernel.isa.enabled(),
            "spmm: kernel {} not enabled here",
            kernel.name
        );
        let input_zero_point = act.zero_point;
        let range = if act.unsigned { 0..=255 } else { -128..=127 };
        if !range.contains(&input_zero_point) {
            return Err(SpmmError::ZeroPoint(input_zero_point));
        }
        let (n, k) = (w.rows(), w.cols());
        let r = layout.rows();
        let nb = n.div_ceil(r);
        if let Some(b) = bias {
            if b.len() != n {
                return Err(SpmmError::Bias {
                    expected: n,
                    found: b.len(),
                });
            }
        }
        let mut block_ptr = Vec::with_capacity(nb + 1);
        let (mut k4, mut wv) = (Vec::new(), Vec::new());
        let mut rowsum = vec![0i32; nb * r];
        block_ptr.push(0u32);
        // (k / 4, row in block, k % 4, weight), merged by input-channel group.
        let mut ent: Vec<(u32, usize, usize, i8)> = Vec::new();
        for g in 0..nb {
            ent.clear();
            for rr in 0..r {
                let row = g * r + rr;
                if row < n {
                    w.for_each_in_row(row, |c, v| {
                        if v != 0 {
                            ent.push(((c / 4) as u32, rr, c % 4, v));
                            rowsum[row] = rowsum[row].wrapping_add(v as i32);
                        }
                    });
                }
            }
            ent.sort_unstable_by_key(|e| (e.0, e.1, e.2));
            let mut i = 0;
            while i < ent.len() {
                let q = ent[i].0;
                k4.push(q);
                let base = wv.len();
                wv.resize(base + r, 0i32);
                while i < ent.len() && ent[i].0 == q {
                    let (_, rr, j, v) = ent[i];
                    let mut b = wv[base + rr].to_le_bytes();
                    b[j] = v as u8;
                    wv[base + rr] = i32::from_le_bytes(b);
                    i += 1;
                }
            }
            block_ptr.push(u32::try_from(k4.len()).map_err(|_| SpmmError::TooLarge)?);
        }
        let offset = if kernel.unsigned { 128 } else { 0 } - if act.unsigned { 128 } else { 0 };
        let xor = if act.unsigned == kernel.unsigned {
            0
        } else {
            0x80
        };
        let c = (0..nb * r)
            .map(|ch| {
                let b = bias.and_then(|b| b.get(ch)).copied().unwrap_or(0);
                b.wrapping_sub((input_zero_point + offset).wrapping_mul(rowsum[ch]))
            })
            .collect();
        let row_k4 = |g: usize| &k4[block_ptr[g] as usize..block_ptr[g + 1] as usize];
        let mut paired = vec![false; nb];
        let mut g = 0;
        while g + 1 < nb {
            if row_k4(g) == row_k4(g + 1) {
                paired[g] = true;
                g += 2;
            } else {
                g += 1;
            }
        }
        Ok(PackedI8 {
            n,
            k,
            layout,
            block_ptr,
            paired,
            k4,
            w: wv,
            c,
            kernel,
            xor,
            unsigned_input: act.unsigned,
        })
    }

    pub fn n(&self) -> usize {
        self.n
    }
    pub fn k(&self) -> usize {
        self.k
    }
    /// Stored blocks.
    pub fn blocks(&self) -> usize {
        self.k4.len()
    }
    pub fn kernel_name(&self) -> &'static str {
        self.kernel.name
    }
    /// The scratch `run` needs, in u32 elements.
    pub fn scratch_len(&self) -> usize {
        // Packed activations (tile × K/4 words) + a byte tile of the outputs (N × tile).
        // (+ 16: room to align the tile to a cache line.)
        self.kernel.tile * (self.k.div_ceil(4) + self.n.div_ceil(16) * 4 + 1) + 16
    }

    /// Computes output rows `rows` (pixels) from int8 activations into int8 outputs:
    /// `out[m·out_stride + n] = rq.apply(c[n] + Σ_k W[n][k]·(a[m·a_stride + k] − zero_point), n)`
    /// with `c` the bias.
    ///
    /// Panics if the weights were packed for uint8 activations, on short slices or strides (as
    /// [`PackedF32::run`]), a short `scratch`, or a `Requant` whose channel count is neither 1
    /// nor N, or whose clamp exceeds int8.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        a: &[i8],
        a_stride: usize,
        rows: Range<usize>,
        out: &mut [i8],
        out_stride: usize,
        rq: &Requant,
        scratch: &mut [u32],
    ) {
        assert!(
            !self.unsigned_input,
            "spmm: weights packed for uint8 activations"
        );
        assert!(
            rq.min() >= -128 && rq.max() <= 127,
            "spmm: clamp outside int8"
        );
        self.run_raw(a, a_stride, rows, out, out_stride, rq, scratch);
    }

    /// As [`PackedI8::run`] for uint8 activations and outputs (weights packed by
    /// [`PackedI8::new_u8`]; clamp within 0..=255).
    #[allow(clippy::too_many_arguments)]
    pub fn run_u8(
        &self,
        a: &[u8],
        a_stride: usize,
        rows: Range<usize>,
        out: &mut [u8],
        out_stride: usize,
        rq: &Requant,
        scratch: &mut [u32],
    ) {
        assert!(
            self.unsigned_input,
            "spmm: weights packed for int8 activations"
        );
        assert!(
            rq.min() >= 0 && rq.max() <= 255,
            "spmm: clamp outside uint8"
        );
        let (a, out) = (bytemuck::cast_slice(a), bytemuck::cast_slice_mut(out));
        self.run_raw(a, a_stride, rows, out, out_stride, rq, scratch);
    }

    /// Bytes in, bytes out (the kernels store the low byte of the clamped value).
    #[allow(clippy::too_many_arguments)]
    fn run_raw(
        &self,
        a: &[i8],
        a_stride: usize,
        rows: Range<usize>,
        out: &mut [i8],
        out_stride: usize,
        rq: &Requant,
        scratch: &mut [u32],
    ) {
        if rows.is_empty() {
            return;
        }
        check_args(
            a.len(),
            a_stride,
            self.k,
            &rows,
            out.len(),
            out_stride,
            self.n,
        );
        assert!(
            scratch.len() >= self.scratch_len(),
            "spmm: scratch too short"
        );
        assert!(
            rq.is_per_tensor() || rq.channels() == self.n,
            "spmm: requantization has {} channels for {} outputs",
            rq.channels(),
            self.n
        );
        let m = rows.end - rows.start;
        (self.kernel.run)(
            self,
            &a[rows.start * a_stride..],
            a_stride,
            m,
            &mut out[rows.start * out_stride..],
            out_stride,
            rq,
            scratch,
        );
    }
}

mod decide;
pub use acc::SpmmI8AccKernel;
pub use decide::{prefer_sparse, sparse_layout, Dtype, SparseLayout};
