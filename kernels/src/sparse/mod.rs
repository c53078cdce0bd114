//! Sparse weight formats: CSR (unstructured) and BSR (R×C blocks).
//!
//! A weight matrix has `rows` = output channels (N) and `cols` = input channels (K), like TFLite's
//! fully-connected weight `[N, K]` and a 1×1 convolution weight `[N, 1, 1, K]`. The layouts are the
//! ones the `.sparq` file stores, so a loader can hand its slices to [`Csr::new`] / [`Bsr::new`]
//! without copying:
//!
//! - CSR: `row_ptr: u32 [rows + 1]`, `col_idx: u32 [nnz]`, `values: [nnz]`; row `r` holds the
//!   entries `row_ptr[r]..row_ptr[r + 1]`, columns strictly increasing.
//! - BSR R×C: `block_row_ptr: u32 [ceil(rows / R) + 1]`, `block_col_idx: u32 [nblocks]` in block
//!   units, `values: [nblocks · R · C]`, each block row-major. When `rows` or `cols` is not a
//!   multiple of the block shape, the edge blocks stick out of the matrix; the entries outside
//!   the matrix are ignored by every reader here (decoding, packing) and written as zero by the
//!   encoder.
//!
//! Slices from a file are untrusted: the constructors check every structural invariant and return
//! a [`SparseError`] naming the row, position and bound, so that nothing downstream (decoding,
//! packing, kernels) can index out of bounds. This is the check whose absence was TFLite's
//! CVE-2022-23560.

use std::fmt;

/// What is wrong with a sparse structure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SparseError {
    /// A block shape with a zero side.
    BadBlockShape { r: usize, c: usize },
    /// A matrix too large to be indexed (element count overflows, or more than `u32` columns).
    TooLarge { rows: usize, cols: usize },
    /// `row_ptr` does not have (block) rows + 1 entries.
    RowPtrLen { expected: usize, found: usize },
    /// `row_ptr[0]` is not zero.
    RowPtrStart { found: u32 },
    /// A row pointer points past the end of the index array.
    RowPtrOverrun { row: usize, ptr: u32, len: usize },
    /// `row_ptr[row + 1] < row_ptr[row]`.
    RowPtrDecreasing { row: usize, start: u32, end: u32 },
    /// The last row pointer is not the length of the index array.
    RowPtrEnd { end: u32, len: usize },
    /// The value array does not match the index array.
    ValuesLen { expected: usize, found: usize },
    /// A (block) column index at or past the number of (block) columns.
    ColumnOutOfRange {
        row: usize,
        pos: usize,
        col: u32,
        bound: usize,
    },
    /// (Block) columns of a row not strictly increasing (unsorted or duplicated).
    ColumnsUnsorted {
        row: usize,
        pos: usize,
        prev: u32,
        col: u32,
    },
    /// A dense matrix or mask of the wrong length.
    DenseLen {
        what: &'static str,
        expected: usize,
        found: usize,
    },
}

impl fmt::Display for SparseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use SparseError::*;
        match *self {
            BadBlockShape { r, c } => write!(f, "block shape {r}x{c} has a zero side"),
            TooLarge { rows, cols } => write!(f, "sparse matrix {rows}x{cols} is too large"),
            RowPtrLen { expected, found } => {
                write!(
                    f,
                    "row pointers: expected {expected} entries, found {found}"
                )
            }
            RowPtrStart { found } => write!(f, "row pointers: first entry is {found}, not 0"),
            RowPtrOverrun { row, ptr, len } => write!(
                f,
                "row pointers: entry {row} is {ptr}, past the {len} column indices"
            ),
            RowPtrDecreasing { row, start, end } => write!(
                f,
                "row pointers: row {row} ends at {end} before it starts at {start}"
            ),
            RowPtrEnd { end, len } => write!(
                f,
                "row pointers: last entry is {end} but there are {len} column indices"
            ),
            ValuesLen { expected, found } => {
                write!(f, "values: expected {expected} entries, found {found}")
            }
            ColumnOutOfRange {
                row,
                pos,
                col,
                bound,
            } => write!(
                f,
                "column index {col} at position {pos} (row {row}) is out of range (< {bound})"
            ),
            ColumnsUnsorted {
                row,
                pos,
                prev,
                col,
            } => write!(
                f,
                "column indices of row {row} not strictly increasing: {prev} then {col} at \
                 position {pos}"
            ),
            DenseLen {
                what,
                expected,
                found,
            } => {
                write!(f, "{what}: expected {expected} elements, found {found}")
            }
        }
    }
}

impl std::error::Error for SparseError {}

/// A block shape: `r` output channels × `c` input channels. 1×1 is unstructured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockShape {
    pub r: usize,
    pub c: usize,
}

impl BlockShape {
    pub const fn new(r: usize, c: usize) -> BlockShape {
        BlockShape { r, c }
    }
    /// Elements per block.
    pub const fn len(self) -> usize {
        self.r * self.c
    }
    /// Always false for a valid block shape (kept for clippy's `len_without_is_empty`).
    pub const fn is_empty(self) -> bool {
        self.r == 0 || self.c == 0
    }
}

impl fmt::Display for BlockShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.r, self.c)
    }
}

fn check_size(rows: usize, cols: usize) -> Result<(), SparseError> {
    if rows.checked_mul(cols).is_none() || cols > u32::MAX as usize || rows > u32::MAX as usize {
        return Err(SparseError::TooLarge { rows, cols });
    }
    Ok(())
}

/// Checks one compressed-row structure: pointers, then sorted in-range indices per row.
fn check_compressed(
    ptr: &[u32],
    idx: &[u32],
    nrows: usize,
    ncols: usize,
) -> Result<(), SparseError> {
    if ptr.len() != nrows + 1 {
        return Err(SparseError::RowPtrLen {
            expected: nrows + 1,
            found: ptr.len(),
        });
    }
    if ptr[0] != 0 {
        return Err(SparseError::RowPtrStart { found: ptr[0] });
    }
    for (row, w) in ptr.windows(2).enumerate() {
        let (start, end) = (w[0], w[1]);
        if end as usize > idx.len() {
            return Err(SparseError::RowPtrOverrun {
                row: row + 1,
                ptr: end,
                len: idx.len(),
            });
        }
        if end < start {
            return Err(SparseError::RowPtrDecreasing { row, start, end });
        }
        let seg = &idx[start as usize..end as usize];
        for (i, &col) in seg.iter().enumerate() {
            let pos = start as usize + i;
            if col as usize >= ncols {
                return Err(SparseError::ColumnOutOfRange {
                    row,
                    pos,
                    col,
                    bound: ncols,
                });
            }
            if i > 0 && seg[i - 1] >= col {
                return Err(SparseError::ColumnsUnsorted {
                    row,
                    pos,
                    prev: seg[i - 1],
                    col,
                });
            }
        }
    }
    let end = ptr[nrows];
    if end as usize != idx.len() {
        return Err(SparseError::RowPtrEnd {
            end,
            len: idx.len(),
        });
    }
    Ok(())
}

/// A validated CSR view. Construct with [`Csr::new`]; borrowing the slices of a mapped file.
#[derive(Clone, Copy, Debug)]
pub struct Csr<'a, T> {
    rows: usize,
    cols: usize,
    row_ptr: &'a [u32],
    col_idx: &'a [u32],
    values: &'a [T],
}

impl<'a, T: Copy> Csr<'a, T> {
    /// Validates untrusted CSR slices for a `rows × cols` matrix.
    pub fn new(
        rows: usize,
        cols: usize,
        row_ptr: &'a [u32],
        col_idx: &'a [u32],
        values: &'a [T],
    ) -> Result<Self, SparseError> {
        check_size(rows, cols)?;
        check_compressed(row_ptr, col_idx, rows, cols)?;
        if values.len() != col_idx.len() {
            return Err(SparseError::ValuesLen {
                expected: col_idx.len(),
                found: values.len(),
            });
        }
        Ok(Csr {
            rows,
            cols,
            row_ptr,
            col_idx,
            values,
        })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Stored entries (explicit zeros included).
    pub fn nnz(&self) -> usize {
        self.values.len()
    }
    pub fn row_ptr(&self) -> &'a [u32] {
        self.row_ptr
    }
    pub fn col_idx(&self) -> &'a [u32] {
        self.col_idx
    }
    pub fn values(&self) -> &'a [T] {
        self.values
    }

    /// The stored `(column, value)` entries of one row, columns increasing.
    pub fn row(&self, r: usize) -> impl Iterator<Item = (usize, T)> + 'a {
        let (s, e) = (self.row_ptr[r] as usize, self.row_ptr[r + 1] as usize);
        let vals = self.values;
        self.col_idx[s..e]
            .iter()
            .zip(s..e)
            .map(move |(&c, i)| (c as usize, vals[i]))
    }

    /// The dense row-major `rows × cols` matrix (absent entries are `T::default()`).
    pub fn to_dense(&self) -> Vec<T>
    where
        T: Default,
    {
        let mut out = vec![T::default(); self.rows * self.cols];
        for r in 0..self.rows {
            for (c, v) in self.row(r) {
                out[r * self.cols + c] = v;
            }
        }
        out
    }
}

/// An owned CSR matrix, as produced by the encoder (and written to a `.sparq` file).
#[derive(Clone, Debug, PartialEq)]
pub struct CsrMatrix<T> {
    pub rows: usize,
    pub cols: usize,
    pub row_ptr: Vec<u32>,
    pub col_idx: Vec<u32>,
    pub values: Vec<T>,
}

impl<T: Copy> CsrMatrix<T> {
    /// Encodes the entries of a dense row-major `rows × cols` matrix where `keep` is true.
    pub fn from_dense(
        dense: &[T],
        rows: usize,
        cols: usize,
        keep: &[bool],
    ) -> Result<Self, SparseError> {
        check_size(rows, cols)?;
        let n = rows * cols;
        if dense.len() != n {
            return Err(SparseError::DenseLen {
                what: "dense matrix",
                expected: n,
                found: dense.len(),
            });
        }
        if keep.len() != n {
            return Err(SparseError::DenseLen {
                what: "mask",
                expected: n,
                found: keep.len(),
            });
        }
        let nnz = keep.iter().filter(|&&k| k).count();
        if nnz > u32::MAX as usize {
            return Err(SparseError::TooLarge { rows, cols });
        }
        let mut row_ptr = Vec::with_capacity(rows + 1);
        let mut col_idx = Vec::with_capacity(nnz);
        let mut values = Vec::with_capacity(nnz);
        row_ptr.push(0u32);
        for r in 0..rows {
            for c in 0..cols {
                if keep[r * cols + c] {
                    col_idx.push(c as u32);
                    values.push(dense[r * cols + c]);
                }
            }
            row_ptr.push(col_idx.len() as u32);
        }
        Ok(CsrMatrix {
            rows,
            cols,
            row_ptr,
            col_idx,
            values,
        })
    }

    /// The validated view (always valid for an encoder's output).
    pub fn view(&self) -> Result<Csr<'_, T>, SparseError> {
        Csr::new(
            self.rows,
            self.cols,
            &self.row_ptr,
            &self.col_idx,
            &self.values,
        )
    }
}

/// A validated BSR view. Construct with [`Bsr::new`].
#[derive(Clone, Copy, Debug)]
pub struct Bsr<'a, T> {
    rows: usize,
    cols: usize,
    block: BlockShape,
    block_row_ptr: &'a [u32],
    block_col_idx: &'a [u32],
    values: &'a [T],
}

impl<'a, T: Copy> Bsr<'a, T> {
    /// Validates untrusted BSR slices for a `rows × cols` matrix in `block` blocks.
    pub fn new(
        rows: usize,
        cols: usize,
        block: BlockShape,
        block_row_ptr: &'a [u32],
        block_col_idx: &'a [u32],
        values: &'a [T],
    ) -> Result<Self, SparseError> {
        if block.r == 0 || block.c == 0 {
            return Err(SparseError::BadBlockShape {
                r: block.r,
                c: block.c,
            });
        }
        check_size(rows, cols)?;
        let (brows, bcols) = (rows.div_ceil(block.r), cols.div_ceil(block.c));
        check_compressed(block_row_ptr, block_col_idx, brows, bcols)?;
        let expected = block_col_idx
            .len()
            .checked_mul(block.len())
            .ok_or(SparseError::TooLarge { rows, cols })?;
        if values.len() != expected {
            return Err(SparseError::ValuesLen {
                expected,
                found: values.len(),
            });
        }
        Ok(Bsr {
            rows,
            cols,
            block,
            block_row_ptr,
            block_col_idx,
            values,
        })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    pub fn block(&self) -> BlockShape {
        self.block
    }
    /// Stored blocks.
    pub fn nblocks(&self) -> usize {
        self.block_col_idx.len()
    }
    pub fn block_row_ptr(&self) -> &'a [u32] {
        self.block_row_ptr
    }
    pub fn block_col_idx(&self) -> &'a [u32] {
        self.block_col_idx
    }
    pub fn values(&self) -> &'a [T] {
        self.values
    }

    /// The stored `(column, value)` entries of matrix row `r` (edge entries outside the matrix
    /// skipped), columns increasing.
    pub fn row(&self, r: usize) -> impl Iterator<Item = (usize, T)> + 'a {
        let BlockShape { r: br, c: bc } = self.block;
        let (brow, rr) = (r / br, r % br);
        let (s, e) = (
            self.block_row_ptr[brow] as usize,
            self.block_row_ptr[brow + 1] as usize,
        );
        let (idx, vals, cols) = (self.block_col_idx, self.values, self.cols);
        (s..e).flat_map(move |b| {
            let c0 = idx[b] as usize * bc;
            let base = b * br * bc + rr * bc;
            (0..bc.min(cols - c0)).map(move |j| (c0 + j, vals[base + j]))
        })
    }

    /// The dense row-major `rows × cols` matrix.
    pub fn to_dense(&self) -> Vec<T>
    where
        T: Default,
    {
        let mut out = vec![T::default(); self.rows * self.cols];
        for r in 0..self.rows {
            for (c, v) in self.row(r) {
                out[r * self.cols + c] = v;
            }
        }
        out
    }
}

/// An owned BSR matrix, as produced by the encoder.
#[derive(Clone, Debug, PartialEq)]
pub struct BsrMatrix<T> {
    pub rows: usize,
    pub cols: usize,
    pub block: BlockShape,
    pub block_row_ptr: Vec<u32>,
    pub block_col_idx: Vec<u32>,
    pub values: Vec<T>,
}

impl<T: Copy + Default> BsrMatrix<T> {
    /// Encodes a dense row-major matrix in `block` blocks: a block is stored when any of its
    /// in-matrix entries has `keep` true; within a stored block, entries with `keep` false (and
    /// entries outside the matrix) are stored as `T::default()` (zero).
    pub fn from_dense(
        dense: &[T],
        rows: usize,
        cols: usize,
        block: BlockShape,
        keep: &[bool],
    ) -> Result<Self, SparseError> {
        if block.r == 0 || block.c == 0 {
            return Err(SparseError::BadBlockShape {
                r: block.r,
                c: block.c,
            });
        }
        check_size(rows, cols)?;
        let n = rows * cols;
        if dense.len() != n {
            return Err(SparseError::DenseLen {
                what: "dense matrix",
                expected: n,
                found: dense.len(),
            });
        }
        if keep.len() != n {
            return Err(SparseError::DenseLen {
                what: "mask",
                expected: n,
                found: keep.len(),
            });
        }
        let (brows, bcols) = (rows.div_ceil(block.r), cols.div_ceil(block.c));
        let mut block_row_ptr = Vec::with_capacity(brows + 1);
        let mut block_col_idx = Vec::new();
        let mut values = Vec::new();
        block_row_ptr.push(0u32);
        for br in 0..brows {
            for bc in 0..bcols {
                let (r0, c0) = (br * block.r, bc * block.c);
                let (r1, c1) = ((r0 + block.r).min(rows), (c0 + block.c).min(cols));
                let any = (r0..r1).any(|r| keep[r * cols + c0..r * cols + c1].iter().any(|&k| k));
                if !any {
                    continue;
                }
                block_col_idx.push(bc as u32);
                for r in r0..r0 + block.r {
                    for c in c0..c0 + block.c {
                        let inside = r < rows && c < cols && keep[r * cols + c];
                        values.push(if inside {
                            dense[r * cols + c]
                        } else {
                            T::default()
                        });
                    }
                }
            }
            if block_col_idx.len() > u32::MAX as usize {
                return Err(SparseError::TooLarge { rows, cols });
            }
            block_row_ptr.push(block_col_idx.len() as u32);
        }
        Ok(BsrMatrix {
            rows,
            cols,
            block,
            block_row_ptr,
            block_col_idx,
            values,
        })
    }

    /// The validated view (always valid for an encoder's output).
    pub fn view(&self) -> Result<Bsr<'_, T>, SparseError> {
        Bsr::new(
            self.rows,
            self.cols,
            self.block,
            &self.block_row_ptr,
            &self.block_col_idx,
            &self.values,
        )
    }
}

/// Either validated format, as the kernels' packers take it.
#[derive(Clone, Copy, Debug)]
pub enum SparseWeights<'a, T> {
    Csr(Csr<'a, T>),
    Bsr(Bsr<'a, T>),
}

impl<'a, T: Copy> SparseWeights<'a, T> {
    pub fn rows(&self) -> usize {
        match self {
            SparseWeights::Csr(m) => m.rows(),
            SparseWeights::Bsr(m) => m.rows(),
        }
    }
    pub fn cols(&self) -> usize {
        match self {
            SparseWeights::Csr(m) => m.cols(),
            SparseWeights::Bsr(m) => m.cols(),
        }
    }
    /// The block shape (1×1 for CSR).
    pub fn block(&self) -> BlockShape {
        match self {
            SparseWeights::Csr(_) => BlockShape::new(1, 1),
            SparseWeights::Bsr(m) => m.block(),
        }
    }
    /// Calls `f(column, value)` for the stored entries of row `r`, columns increasing.
    pub fn for_each_in_row(&self, r: usize, mut f: impl FnMut(usize, T)) {
        match self {
            SparseWeights::Csr(m) => m.row(r).for_each(|(c, v)| f(c, v)),
            SparseWeights::Bsr(m) => m.row(r).for_each(|(c, v)| f(c, v)),
        }
    }
    /// The dense row-major matrix.
    pub fn to_dense(&self) -> Vec<T>
    where
        T: Default,
    {
        match self {
            SparseWeights::Csr(m) => m.to_dense(),
            SparseWeights::Bsr(m) => m.to_dense(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
