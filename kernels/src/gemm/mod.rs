//! Dense GEMM: int8 with exact requantization, and f32 with bias and clamp.
//!
//! Shapes: `C[M×N] = epilogue(A[M×K] · Bᵀ + bias)`, where A holds activations row-major with a
//! row stride (NHWC pixels × channels), B holds weights as TFLite stores them, N×K row-major
//! (output channels × input channels), and C is row-major with a row stride (so a convolution can
//! write into a slice of a concatenation).
//!
//! Weights are packed once ([`PackedI8::new`], [`PackedF32::new`]) into the layout of the kernel
//! the dispatch table chose, with bias and zero-point corrections folded in. A call computes the
//! sub-block `rows × cols` of C (so threads can split the work), allocates nothing and reads
//! exactly the rows of A it needs.
//!
//! int8 semantics (TFLite's): `acc[m][n] = bias[n] + Σ_k (a[m][k] − za) · (w[n][k] − zw)` in
//! int32, then [`Requant::apply`]. Activations are int8 or uint8 with any zero point; weights are
//! int8 (symmetric, `zw = 0`) or legacy uint8 with a per-tensor zero point. Internally activations
//! are seen as unsigned (`a XOR 0x80` for int8) or signed bytes as the kernel prefers, weights as
//! int8 (`w XOR 0x80` for uint8, `zw − 128`); the terms that differ are folded into the packed
//! bias, and a nonzero weight zero point adds a per-row correction `−zw · Σ_k a[m][k]`.

mod acc;
pub mod generic;
mod hybrid;
mod pack;

pub use acc::gemm_i8_acc;
pub use hybrid::{gemm_i8_hybrid, quantize_rows_asymmetric, quantize_rows_symmetric, HybridParams};

use std::ops::Range;

use crate::isa::Isa;
use crate::requant::Requant;

/// An 8-bit quantized element: `i8` or `u8`. Sealed.
pub trait Q8: Copy + Default + Send + Sync + 'static + private::Sealed {
    /// True for `u8`.
    const UNSIGNED: bool;
    /// Smallest value, as i32.
    const MIN: i32;
    /// Largest value, as i32.
    const MAX: i32;
    /// The value as i32.
    fn to_i32(self) -> i32;
    /// The low byte of `v` (callers clamp first).
    fn from_i32(v: i32) -> Self;
    /// The bit pattern.
    fn to_bits(self) -> u8;
}

mod private {
    pub trait Sealed {}
    impl Sealed for i8 {}
    impl Sealed for u8 {}
}

impl Q8 for i8 {
    const UNSIGNED: bool = false;
    const MIN: i32 = -128;
    const MAX: i32 = 127;
    #[inline(always)]
    fn to_i32(self) -> i32 {
        self as i32
    }
    #[inline(always)]
    fn from_i32(v: i32) -> Self {
        v as i8
    }
    #[inline(always)]
    fn to_bits(self) -> u8 {
        self as u8
    }
}

impl Q8 for u8 {
    const UNSIGNED: bool = true;
    const MIN: i32 = 0;
    const MAX: i32 = 255;
    #[inline(always)]
    fn to_i32(self) -> i32 {
        self as i32
    }
    #[inline(always)]
    fn from_i32(v: i32) -> Self {
        v as u8
    }
    #[inline(always)]
    fn to_bits(self) -> u8 {
        self
    }
}

/// Largest `nr` of any kernel (sizes the per-tile epilogue arrays on the stack).
pub const NR_MAX: usize = 64;
/// Largest `mr` of any kernel.
pub const MR_MAX: usize = 1024;

/// Rows of the raw-accumulator drivers' tiles ([`gemm_i8_acc`], [`gemm_i8_hybrid`]): their
/// accumulator buffer holds `ACC_ROWS × NR_MAX` values, so a kernel with a larger `mr` gets
/// tiles of at most this many rows there.
pub(crate) const ACC_ROWS: usize = 64;

/// The unit of the int8 drivers' cache blocks: a multiple of every kernel's pass of rows, and
/// small enough that blocks follow the cache budget, not a kernel's `mr`.
const BLOCK_UNIT: usize = 64;

/// Per-column-tile epilogue data the int8 driver hands to a kernel.
#[repr(C, align(64))]
pub struct TileEpilogue {
    /// Folded bias per column of the tile.
    pub bias: [i32; NR_MAX],
    /// Q31 multiplier per column.
    pub mult: [i32; NR_MAX],
    /// TFLite shift per column (positive: left).
    pub shift: [i32; NR_MAX],
}

/// Arguments of one int8 micro-kernel call: a tile of up to `mr` rows × `nr` columns.
///
/// Pointers are raw so one signature serves every ISA; the driver ([`gemm_i8`]) guarantees their
/// extents: `a` is valid for rows `0..rows`, each `k` bytes at `a + r·a_stride`; `w` for the
/// tile's `ceil(k/kr)·nr·kr` packed bytes; `c` for row `r` columns `col_lo..col_hi` at
/// `c + r·c_stride`; `row_off` for `rows` values.
#[derive(Debug)]
#[repr(C)]
pub struct I8Args {
    /// First activation row of the tile (bit patterns of i8 or u8).
    pub a: *const u8,
    /// Activation row stride in bytes.
    pub a_stride: usize,
    /// XOR applied to every activation byte to reach the kernel's domain (0 or 0x80).
    pub a_xor: u8,
    /// Rows in this tile, `1..=mr`.
    pub rows: usize,
    /// Reduction length.
    pub k: usize,
    /// The packed weights of this column tile.
    pub w: *const i8,
    /// Epilogue data of this column tile.
    pub ep: *const TileEpilogue,
    /// Per-row term added to every accumulator of the row (weight-zero-point correction).
    pub row_off: *const i32,
    /// Output zero point.
    pub zero_point: i32,
    /// Clamp bounds.
    pub min: i32,
    /// Clamp bounds.
    pub max: i32,
    /// Output of column 0 of the tile, row 0.
    pub c: *mut u8,
    /// Output row stride in bytes.
    pub c_stride: usize,
    /// Columns of the tile to store: `col_lo..col_hi` (⊆ `0..nr`).
    pub col_lo: usize,
    /// See `col_lo`.
    pub col_hi: usize,
    /// Null, or where to write the raw int32 accumulators (bias and row term included) instead
    /// of requantizing: `acc_out[r·nr + j]` for every row `r < rows` and every column `j < nr`.
    pub acc_out: *mut i32,
}

/// An int8 GEMM micro-kernel and the packing it expects.
#[derive(Debug)]
pub struct I8Kernel {
    /// Name per NAMING.md, e.g. `avx512vnni::gemm_qs8_8x32c4`.
    pub name: &'static str,
    /// The tier it needs.
    pub isa: Isa,
    /// Rows per tile.
    pub mr: usize,
    /// Columns per tile.
    pub nr: usize,
    /// Consecutive input channels per column in the packed layout.
    pub kr: usize,
    /// True when the kernel multiplies signed activations (`a` as i8); false for unsigned
    /// (`a XOR 0x80` for int8 inputs).
    pub signed_a: bool,
    /// The micro-kernel.
    ///
    /// # Safety
    /// The pointers of [`I8Args`] are valid as documented there, and the CPU has `isa`.
    pub run: unsafe fn(&I8Args),
}

/// Arguments of one f32 micro-kernel call (extents as in [`I8Args`]; `w` holds `k·nr` floats,
/// `bias` `nr` floats).
#[derive(Debug)]
#[repr(C)]
pub struct F32Args {
    /// First activation row of the tile.
    pub a: *const f32,
    /// Activation row stride in elements.
    pub a_stride: usize,
    /// Rows in this tile, `1..=mr`.
    pub rows: usize,
    /// Reduction length.
    pub k: usize,
    /// Packed weights of this column tile, k-major: `w[kk·nr + j]`.
    pub w: *const f32,
    /// Bias of this column tile (zeros when absent, and beyond N).
    pub bias: *const f32,
    /// Clamp bounds.
    pub min: f32,
    /// Clamp bounds.
    pub max: f32,
    /// Output of column 0 of the tile, row 0.
    pub c: *mut f32,
    /// Output row stride in elements.
    pub c_stride: usize,
    /// Columns of the tile to store.
    pub col_lo: usize,
    /// See `col_lo`.
    pub col_hi: usize,
}

/// An f32 GEMM micro-kernel.
#[derive(Debug)]
pub struct F32Kernel {
    /// Name per NAMING.md, e.g. `avx512::gemm_f32_8x32`.
    pub name: &'static str,
    /// The tier it needs.
    pub isa: Isa,
    /// Rows per tile.
    pub mr: usize,
    /// Columns per tile.
    pub nr: usize,
    /// The micro-kernel.
    ///
    /// # Safety
    /// The pointers of [`F32Args`] are valid as documented there, and the CPU has `isa`.
    pub run: unsafe fn(&F32Args),
}

/// Why weights could not be packed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PackError {
    /// A buffer is shorter than the shape needs (what, needed, found).
    Length {
        what: &'static str,
        needed: usize,
        found: usize,
    },
    /// N or K is zero, or N·K overflows.
    Shape { n: usize, k: usize },
    /// A zero point outside the range of its type (what, value).
    ZeroPoint { what: &'static str, value: i32 },
}

impl std::fmt::Display for PackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PackError::Length {
                what,
                needed,
                found,
            } => {
                write!(
                    f,
                    "gemm: {what} has {found} elements, the shape needs {needed}"
                )
            }
            PackError::Shape { n, k } => write!(f, "gemm: invalid weight shape {n}×{k}"),
            PackError::ZeroPoint { what, value } => {
                write!(
                    f,
                    "gemm: {what} zero point {value} outside its type's range"
                )
            }
        }
    }
}

impl std::error::Error for PackError {}

/// How the activations of an int8 GEMM are quantized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActQuant {
    /// True for uint8 activations, false for int8.
    pub unsigned: bool,
    /// The activations' zero point (−128..=127 for int8, 0..=255 for uint8).
    pub zero_point: i32,
}

impl ActQuant {
    /// int8 activations with this zero point.
    pub fn i8(zero_point: i32) -> ActQuant {
        ActQuant {
            unsigned: false,
            zero_point,
        }
    }
    /// uint8 activations with this zero point.
    pub fn u8(zero_point: i32) -> ActQuant {
        ActQuant {
            unsigned: true,
            zero_point,
        }
    }
}

/// int8 weights packed for one kernel, with bias and zero-point corrections folded in.
#[derive(Debug, Clone)]
pub struct PackedI8 {
    kernel: &'static I8Kernel,
    n: usize,
    k: usize,
    act: ActQuant,
    /// Weight zero point in the int8 domain (0 for int8 weights; `zw − 128` for uint8).
    w_zero_point: i32,
    /// Tiles × ceil(k/kr) × nr × kr bytes, 64-byte aligned.
    data: pack::AlignedBytes,
    /// Folded bias, tiles × nr.
    bias: Vec<i32>,
    /// Σ_k w[n][k] in the int8 domain, tiles × nr (for per-row zero points of hybrid GEMM).
    colsums: Vec<i32>,
}

impl PackedI8 {
    /// Packs int8 weights (N×K row-major, symmetric: zero point 0) with an optional int32 bias
    /// for activations quantized as `act`, for the kernel of the dispatch table.
    pub fn new(
        weights: &[i8],
        n: usize,
        k: usize,
        bias: Option<&[i32]>,
        act: ActQuant,
    ) -> Result<PackedI8, PackError> {
        PackedI8::with_kernel(crate::dispatch::kernels().gemm.i8, weights, n, k, bias, act)
    }

    /// Packs legacy uint8 weights with a per-tensor zero point `w_zero_point` (0..=255).
    pub fn new_u8(
        weights: &[u8],
        w_zero_point: i32,
        n: usize,
        k: usize,
        bias: Option<&[i32]>,
        act: ActQuant,
    ) -> Result<PackedI8, PackError> {
        PackedI8::with_kernel_u8(
            crate::dispatch::kernels().gemm.i8,
            weights,
            w_zero_point,
            n,
            k,
            bias,
            act,
        )
    }

    /// [`PackedI8::new`] for a given kernel (tests and benchmarks compare kernels with it).
    pub fn with_kernel(
        kernel: &'static I8Kernel,
        weights: &[i8],
        n: usize,
        k: usize,
        bias: Option<&[i32]>,
        act: ActQuant,
    ) -> Result<PackedI8, PackError> {
        pack::pack_i8(
            kernel,
            n,
            k,
            bias,
            act,
            0,
            |r, c| weights[r * k + c],
            weights.len(),
        )
    }

    /// [`PackedI8::new_u8`] for a given kernel.
    pub fn with_kernel_u8(
        kernel: &'static I8Kernel,
        weights: &[u8],
        w_zero_point: i32,
        n: usize,
        k: usize,
        bias: Option<&[i32]>,
        act: ActQuant,
    ) -> Result<PackedI8, PackError> {
        if !(0..=255).contains(&w_zero_point) {
            return Err(PackError::ZeroPoint {
                what: "weight",
                value: w_zero_point,
            });
        }
        pack::pack_i8(
            kernel,
            n,
            k,
            bias,
            act,
            w_zero_point - 128,
            |r, c| (weights[r * k + c] ^ 0x80) as i8,
            weights.len(),
        )
    }

    /// Output channels.
    pub fn n(&self) -> usize {
        self.n
    }
    /// Input channels.
    pub fn k(&self) -> usize {
        self.k
    }
    /// The kernel these weights are packed for.
    pub fn kernel(&self) -> &'static I8Kernel {
        self.kernel
    }
    /// The activation quantization the corrections were folded for.
    pub fn act(&self) -> ActQuant {
        self.act
    }
}

/// f32 weights packed for one kernel, with the bias.
#[derive(Debug, Clone)]
pub struct PackedF32 {
    kernel: &'static F32Kernel,
    n: usize,
    k: usize,
    data: pack::AlignedF32,
    bias: Vec<f32>,
}

impl PackedF32 {
    /// Packs f32 weights (N×K row-major) and an optional bias for the dispatched kernel.
    pub fn new(
        weights: &[f32],
        n: usize,
        k: usize,
        bias: Option<&[f32]>,
    ) -> Result<PackedF32, PackError> {
        PackedF32::with_kernel(crate::dispatch::kernels().gemm.f32, weights, n, k, bias)
    }

    /// [`PackedF32::new`] for a given kernel.
    pub fn with_kernel(
        kernel: &'static F32Kernel,
        weights: &[f32],
        n: usize,
        k: usize,
        bias: Option<&[f32]>,
    ) -> Result<PackedF32, PackError> {
        pack::pack_f32(kernel, weights, n, k, bias)
    }

    /// Output channels.
    pub fn n(&self) -> usize {
        self.n
    }
    /// Input channels.
    pub fn k(&self) -> usize {
        self.k
    }
    /// The kernel these weights are packed for.
    pub fn kernel(&self) -> &'static F32Kernel {
        self.kernel
    }
}

fn check_block(
    what: &str,
    len: usize,
    stride: usize,
    rows: &Range<usize>,
    row_len: usize,
    width: usize,
) {
    assert!(
        stride >= width,
        "gemm: {what} row stride {stride} < row length {width}"
    );
    if rows.start < rows.end {
        let need = (rows.end - 1)
            .checked_mul(stride)
            .and_then(|x| x.checked_add(row_len))
            .expect("gemm: extent overflows usize");
        assert!(
            len >= need,
            "gemm: {what} has {len} elements, rows {rows:?} need {need}"
        );
    }
}

/// Rows per cache block: the block's activations (`rows × k` elements of `elem` bytes) stay in L2
/// while every column tile of weights passes over them, so A is read from memory once.
pub(crate) fn row_block(k: usize, elem: usize, mr: usize) -> usize {
    const BLOCK_BYTES: usize = 512 * 1024;
    (BLOCK_BYTES / (k * elem).max(1)).max(mr) / mr * mr
}

/// Rows per cache block of the int8 driver: [`row_block`], and small enough that the block's
/// outputs (`rows × n` bytes, written one column tile at a time in partial cache lines) stay in
/// L2 between the column tiles' passes.
pub(crate) fn row_block_q8(k: usize, n: usize, mr: usize) -> usize {
    const OUT_BYTES: usize = 128 * 1024;
    let by_out = (OUT_BYTES / n.max(1)).max(mr) / mr * mr;
    row_block(k, 1, mr).min(by_out)
}

/// The kernels' per-row offsets for a weight zero point `zw` (legacy uint8 weights):
/// `−zw · Σ_k a_u[r][k]` for the rows `m0..m0 + out.len()`, where a_u = a (uint8) or a + 128
/// (int8) is the unsigned domain of the zero-point folding.
pub(crate) fn weight_zp_row_offsets<A: Q8>(
    a: &[A],
    a_stride: usize,
    k: usize,
    m0: usize,
    zw: i32,
    out: &mut [i32],
) {
    let u_xor = if A::UNSIGNED { 0 } else { 0x80 };
    for (r, off) in out.iter_mut().enumerate() {
        let row = &a[(m0 + r) * a_stride..(m0 + r) * a_stride + k];
        let s: i32 = row.iter().map(|&x| (x.to_bits() ^ u_xor) as i32).sum();
        *off = s.wrapping_mul(zw).wrapping_neg();
    }
}

/// `rows` split into consecutive blocks of at most `mc` rows.
pub(crate) fn row_blocks(rows: &Range<usize>, mc: usize) -> impl Iterator<Item = Range<usize>> {
    let end = rows.end;
    (rows.start..end)
        .step_by(mc)
        .map(move |s| s..(s + mc).min(end))
}

/// int8 GEMM of the block `rows × cols` of C: `C = requant(A·Bᵀ + bias)`.
///
/// `a[m·a_stride + k]` is activation `k` of row `m` (element type matching the packed
/// [`ActQuant`]); `c[m·c_stride + n]` receives output channel `n` of row `m`. Rows and columns are
/// absolute indices; other elements of C are left untouched. No allocation.
///
/// Panics on a contract violation (shapes, strides, a `Requant` whose channel count or clamp range
/// does not fit): these are programming errors, checked once per call outside the hot loop.
#[allow(clippy::too_many_arguments)]
pub fn gemm_i8<A: Q8, O: Q8>(
    a: &[A],
    a_stride: usize,
    packed: &PackedI8,
    rq: &Requant,
    c: &mut [O],
    c_stride: usize,
    rows: Range<usize>,
    cols: Range<usize>,
) {
    let (n, k) = (packed.n, packed.k);
    assert_eq!(
        A::UNSIGNED,
        packed.act.unsigned,
        "gemm_i8: activation type differs from the one the weights were packed for"
    );
    assert!(
        cols.start <= cols.end && cols.end <= n,
        "gemm_i8: cols {cols:?} beyond N={n}"
    );
    assert!(
        rows.start <= rows.end,
        "gemm_i8: empty-reversed rows {rows:?}"
    );
    assert!(
        rq.is_per_tensor() || rq.channels() == n,
        "gemm_i8: {} requant channels for N={n}",
        rq.channels()
    );
    assert!(
        rq.min() >= O::MIN && rq.max() <= O::MAX,
        "gemm_i8: clamp [{}, {}] does not fit the output type",
        rq.min(),
        rq.max()
    );
    if rows.is_empty() || cols.is_empty() {
        return;
    }
    check_block("A", a.len(), a_stride, &rows, k, k);
    check_block("C", c.len(), c_stride, &rows, cols.end, cols.end);

    let kern = packed.kernel;
    let (mr, nr) = (kern.mr, kern.nr);
    let mc = row_block_q8(k, n, mr.min(BLOCK_UNIT));
    let a_xor = if A::UNSIGNED == kern.signed_a {
        0x80
    } else {
        0
    };
    let tile_bytes = pack::tile_len(k, kern.kr) * nr;
    let zw = packed.w_zero_point;

    let mut ep = TileEpilogue {
        bias: [0; NR_MAX],
        mult: [0; NR_MAX],
        shift: [0; NR_MAX],
    };
    let mut row_off = [0i32; MR_MAX];
    for blk in row_blocks(&rows, mc) {
        for t in cols.start / nr..cols.end.div_ceil(nr) {
            let base = t * nr;
            for j in 0..nr {
                ep.bias[j] = packed.bias[base + j];
                let (m, s) = rq.channel((base + j).min(n - 1));
                ep.mult[j] = m;
                ep.shift[j] = s;
            }
            let col_lo = cols.start.max(base) - base;
            let col_hi = cols.end.min(base + nr) - base;
            let mut m0 = blk.start;
            while m0 < blk.end {
                let tile_rows = mr.min(blk.end - m0);
                if zw != 0 {
                    weight_zp_row_offsets(a, a_stride, k, m0, zw, &mut row_off[..tile_rows]);
                }
                let args = I8Args {
                    // SAFETY: m0 < rows.end, and check_block proved rows m0.. lie inside `a`.
                    a: unsafe { a.as_ptr().add(m0 * a_stride) } as *const u8,
                    a_stride,
                    a_xor,
                    rows: tile_rows,
                    k,
                    // SAFETY: tile t < tiles, and the packed data holds tiles × tile_bytes bytes.
                    w: unsafe { packed.data.as_ptr().add(t * tile_bytes) },
                    ep: &ep,
                    row_off: row_off.as_ptr(),
                    zero_point: rq.zero_point(),
                    min: rq.min(),
                    max: rq.max(),
                    // SAFETY: row m0 starts inside `c` (check_block), base ≤ cols.end ≤ c_stride.
                    c: unsafe { c.as_mut_ptr().add(m0 * c_stride + base) } as *mut u8,
                    c_stride,
                    col_lo,
                    col_hi,
                    acc_out: std::ptr::null_mut(),
                };
                // SAFETY: the kernel came from the dispatch table or a candidate list, so the CPU has
                // its ISA; the extents of `args` were checked above (A rows of k bytes, C columns up
                // to cols.end per row, a full packed tile, `tile_rows` row offsets).
                unsafe { (kern.run)(&args) };
                m0 += tile_rows;
            }
        }
    }
}

/// f32 GEMM of the block `rows × cols` of C: `C = clamp(A·Bᵀ + bias, min, max)`.
///
/// Layout and contract as [`gemm_i8`]. Use `f32::NEG_INFINITY` / `f32::INFINITY` for no clamp.
#[allow(clippy::too_many_arguments)]
pub fn gemm_f32(
    a: &[f32],
    a_stride: usize,
    packed: &PackedF32,
    min: f32,
    max: f32,
    c: &mut [f32],
    c_stride: usize,
    rows: Range<usize>,
    cols: Range<usize>,
) {
    let (n, k) = (packed.n, packed.k);
    assert!(
        cols.start <= cols.end && cols.end <= n,
        "gemm_f32: cols {cols:?} beyond N={n}"
    );
    assert!(rows.start <= rows.end, "gemm_f32: reversed rows {rows:?}");
    assert!(min <= max, "gemm_f32: clamp [{min}, {max}] is empty");
    if rows.is_empty() || cols.is_empty() {
        return;
    }
    check_block("A", a.len(), a_stride, &rows, k, k);
    check_block("C", c.len(), c_stride, &rows, cols.end, cols.end);
    let kern = packed.kernel;
    let (mr, nr) = (kern.mr, kern.nr);
    let mc = row_block(k, 4, mr);
    for blk in row_blocks(&rows, mc) {
        for t in cols.start / nr..cols.end.div_ceil(nr) {
            let base = t * nr;
            let col_lo = cols.start.max(base) - base;
            let col_hi = cols.end.min(base + nr) - base;
            let mut m0 = blk.start;
            while m0 < blk.end {
                let tile_rows = mr.min(blk.end - m0);
                let args = F32Args {
                    // SAFETY: rows m0.. lie inside `a` (check_block).
                    a: unsafe { a.as_ptr().add(m0 * a_stride) },
                    a_stride,
                    rows: tile_rows,
                    k,
                    // SAFETY: tile t < tiles; the packed data holds tiles × k × nr floats.
                    w: unsafe { packed.data.as_ptr().add(t * k * nr) },
                    // SAFETY: the bias holds tiles × nr floats.
                    bias: unsafe { packed.bias.as_ptr().add(base) },
                    min,
                    max,
                    // SAFETY: row m0 starts inside `c`, base ≤ cols.end ≤ c_stride.
                    c: unsafe { c.as_mut_ptr().add(m0 * c_stride + base) },
                    c_stride,
                    col_lo,
                    col_hi,
                };
                // SAFETY: as in gemm_i8: the CPU has the kernel's ISA and the extents were checked.
                unsafe { (kern.run)(&args) };
                m0 += tile_rows;
            }
        }
    }
}

#[cfg(test)]
mod tests;
