//! TFLite sparse tensors (`SparsityParameters`, a variant of the TACO format) decoded into
//! sparq's CSR / BSR over the weight matrix (rows = dimension 0, cols = the rest).
//!
//! Every index is checked before use: segment arrays must start at 0, never decrease and end at
//! the index count; every index must lie inside its dimension and be strictly increasing within
//! a segment; the number of stored values must match the buffer. Out-of-range indices are what
//! CVE-2022-23560 exploited in TFLite's own densifier. Work and memory are bounded by the sizes
//! of the index arrays and the values, which are all inside the file.

use super::error::{ImportError, Result};
use super::graph::Sparse;

/// One level of the traversal (one entry of `dim_metadata`).
#[derive(Debug, Clone, PartialEq)]
pub enum SparseLevel {
    /// Every coordinate 0..size stored implicitly.
    Dense(i32),
    /// Compressed: `segments[p]..segments[p + 1]` are the children of position `p` of the
    /// previous level, and `indices[j]` the coordinate of child `j`.
    Csr {
        segments: Vec<u32>,
        indices: Vec<u32>,
    },
}

/// TFLite's sparsity parameters, read from the file but not yet checked.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseSpec {
    pub traversal_order: Vec<i32>,
    pub block_map: Vec<i32>,
    pub levels: Vec<SparseLevel>,
}

/// Largest block (R × C elements) kept as BSR; larger blocks are stored as CSR.
const MAX_BSR_BLOCK: usize = 64;

/// Decodes a sparse constant of dense shape `shape` whose stored values are `values`
/// (`esize` bytes each) into sparq's CSR, or BSR when the TFLite tensor is block-sparse over
/// the first and/or last dimension.
pub fn decode_sparse(
    at: &str,
    shape: &[i32],
    esize: usize,
    spec: &SparseSpec,
    values: &[u8],
) -> Result<Sparse> {
    let bad = |p: String| ImportError::invalid(at, format!("sparsity: {p}"));
    let n = shape.len();
    let k = spec.block_map.len();
    if n == 0 {
        return Err(bad("a scalar cannot be sparse".into()));
    }
    if shape.contains(&0) {
        return Err(bad(format!("shape {shape:?} is empty")));
    }
    if spec.traversal_order.len() != n + k || spec.levels.len() != n + k {
        return Err(bad(format!(
            "traversal_order has {} entries and dim_metadata {}, rank {n} with {k} block \
             dimensions needs {}",
            spec.traversal_order.len(),
            spec.levels.len(),
            n + k
        )));
    }
    // The first n entries permute the tensor dimensions, the last k the block dimensions.
    let mut seen = vec![false; n + k];
    for (p, &d) in spec.traversal_order.iter().enumerate() {
        let (lo, hi) = if p < n { (0, n) } else { (n, n + k) };
        let ok = d >= 0 && (d as usize) >= lo && (d as usize) < hi && !seen[d as usize];
        if !ok {
            return Err(bad(format!(
                "traversal_order {:?} is not a valid order",
                spec.traversal_order
            )));
        }
        seen[d as usize] = true;
    }
    // Block sizes: the dense size of each block dimension, dividing the dimension it blocks.
    let mut block_of_dim = vec![1usize; n];
    let mut block_size = vec![0usize; k];
    for (j, &m) in spec.block_map.iter().enumerate() {
        let ok = m >= 0 && (m as usize) < n && block_of_dim[m as usize] == 1;
        if !ok {
            return Err(bad(format!(
                "block_map {:?} is not valid for rank {n}",
                spec.block_map
            )));
        }
        let p = spec
            .traversal_order
            .iter()
            .position(|&d| d as usize == n + j)
            .unwrap_or(0);
        let b = match spec.levels[p] {
            SparseLevel::Dense(b) if b >= 1 => b as usize,
            _ => {
                return Err(bad(format!(
                    "block dimension {j} is not dense with a size >= 1"
                )))
            }
        };
        let dim = shape[m as usize] as usize;
        if !dim.is_multiple_of(b) {
            return Err(bad(format!(
                "block size {b} does not divide dimension {m} ({dim})"
            )));
        }
        block_of_dim[m as usize] = b;
        block_size[j] = b;
    }
    // Size of each traversal level and the number of positions after it.
    let mut sizes = Vec::with_capacity(n + k);
    let mut count: u64 = 1;
    for (p, level) in spec.levels.iter().enumerate() {
        let d = spec.traversal_order[p] as usize;
        let size = if d < n {
            shape[d] as usize / block_of_dim[d]
        } else {
            block_size[d - n]
        };
        sizes.push(size);
        match level {
            SparseLevel::Dense(s) => {
                if *s < 0 || *s as usize != size {
                    return Err(bad(format!(
                        "level {p} dense size {s}, dimension needs {size}"
                    )));
                }
                count = count.saturating_mul(size as u64);
            }
            SparseLevel::Csr { segments, indices } => {
                if segments.len() as u64 != count.saturating_add(1) {
                    return Err(bad(format!(
                        "level {p} has {} segments, needs {} (one per position plus one)",
                        segments.len(),
                        count.saturating_add(1)
                    )));
                }
                if segments[0] != 0 || *segments.last().unwrap_or(&0) as usize != indices.len() {
                    return Err(bad(format!(
                        "level {p} segments run from {} to {}, must run from 0 to {}",
                        segments[0],
                        segments.last().unwrap_or(&0),
                        indices.len()
                    )));
                }
                for (q, w) in segments.windows(2).enumerate() {
                    if w[1] < w[0] || w[1] as usize > indices.len() {
                        return Err(bad(format!(
                            "level {p} segment {q} runs from {} to {} ({} indices)",
                            w[0],
                            w[1],
                            indices.len()
                        )));
                    }
                    let seg = &indices[w[0] as usize..w[1] as usize];
                    for (r, &x) in seg.iter().enumerate() {
                        if x as usize >= size {
                            return Err(bad(format!(
                                "level {p} index {} is {x}, out of range for size {size}",
                                w[0] as usize + r
                            )));
                        }
                        if r > 0 && seg[r - 1] >= x {
                            return Err(bad(format!(
                                "level {p} indices in segment {q} are not strictly increasing"
                            )));
                        }
                    }
                }
                count = indices.len() as u64;
            }
        }
    }
    if values.len() as u64 != count.saturating_mul(esize as u64) {
        return Err(bad(format!(
            "{count} stored values need {} bytes, the buffer has {}",
            count.saturating_mul(esize as u64),
            values.len()
        )));
    }

    // Walk the levels; each leaf is one stored value, in order.
    let strides: Vec<u64> = {
        let mut s = vec![1u64; n];
        for d in (0..n.saturating_sub(1)).rev() {
            s[d] = s[d + 1] * shape[d + 1] as u64;
        }
        s
    };
    let mut flat: Vec<u64> = Vec::with_capacity(count as usize);
    let mut coord = vec![0usize; n + k];
    walk(spec, &sizes, 0, 0, &mut coord, &mut |coord: &[usize]| {
        let mut idx = 0u64;
        for d in 0..n {
            let mut c = coord[d];
            if let Some(j) = spec.block_map.iter().position(|&m| m as usize == d) {
                c = c * block_size[j] + coord[n + j];
            }
            idx += c as u64 * strides[d];
        }
        flat.push(idx);
    });
    debug_assert_eq!(flat.len() as u64, count);

    // Sort the stored entries by dense position (the traversal order may be any permutation).
    let mut order: Vec<u32> = (0..flat.len() as u32).collect();
    order.sort_unstable_by_key(|&i| flat[i as usize]);
    for w in order.windows(2) {
        if flat[w[0] as usize] == flat[w[1] as usize] {
            return Err(bad("two stored values at the same position".into()));
        }
    }

    let rows = shape[0] as usize;
    let total: u64 = shape.iter().map(|&d| d as u64).product();
    let cols = if rows == 0 {
        0
    } else {
        (total / rows as u64) as usize
    };
    if cols > u32::MAX as usize || rows > u32::MAX as usize {
        return Err(bad(format!(
            "matrix {rows} x {cols} too large for 32-bit indices"
        )));
    }
    let r_blk = block_of_dim[0];
    let c_blk = if n >= 2 { block_of_dim[n - 1] } else { 1 };
    let only_outer = (1..n.saturating_sub(1)).all(|d| block_of_dim[d] == 1);
    let value = |i: u32| &values[i as usize * esize..(i as usize + 1) * esize];

    if k > 0 && only_outer && r_blk * c_blk <= MAX_BSR_BLOCK {
        // BSR: group entries by block, fill each block (zeros where nothing is stored).
        let (br, bc) = (r_blk, c_blk);
        let bcols = cols / bc;
        let mut block_keys: Vec<(u64, u32)> = order
            .iter()
            .map(|&i| {
                let (r, c) = (
                    (flat[i as usize] / cols as u64) as usize,
                    (flat[i as usize] % cols as u64) as usize,
                );
                (((r / br) * bcols + c / bc) as u64, i)
            })
            .collect();
        block_keys.sort_unstable_by_key(|&(b, _)| b);
        let mut row_ptr = vec![0u32; rows / br + 1];
        let mut col_idx = Vec::new();
        let mut vals: Vec<u8> = Vec::new();
        let mut last: Option<u64> = None;
        for &(b, i) in &block_keys {
            if last != Some(b) {
                last = Some(b);
                let brow = b as usize / bcols;
                row_ptr[brow + 1] += 1;
                col_idx.push((b as usize % bcols) as u32);
                vals.resize(vals.len() + br * bc * esize, 0);
            }
            let f = flat[i as usize];
            let (r, c) = ((f / cols as u64) as usize, (f % cols as u64) as usize);
            let base = vals.len() - br * bc * esize;
            let off = base + ((r % br) * bc + c % bc) * esize;
            vals[off..off + esize].copy_from_slice(value(i));
        }
        for q in 0..rows / br {
            row_ptr[q + 1] += row_ptr[q];
        }
        return Ok(Sparse::Bsr {
            block: [br as u32, bc as u32],
            row_ptr,
            col_idx,
            values: vals,
        });
    }

    let mut row_ptr = vec![0u32; rows + 1];
    let mut col_idx = Vec::with_capacity(order.len());
    let mut vals = Vec::with_capacity(order.len() * esize);
    for &i in &order {
        let f = flat[i as usize];
        let (r, c) = ((f / cols as u64) as usize, (f % cols as u64) as u32);
        row_ptr[r + 1] += 1;
        col_idx.push(c);
        vals.extend_from_slice(value(i));
    }
    for q in 0..rows {
        row_ptr[q + 1] += row_ptr[q];
    }
    Ok(Sparse::Csr {
        row_ptr,
        col_idx,
        values: vals,
    })
}

/// Depth-first traversal as TFLite defines it: a dense level's child `i` of position `pos` is
/// position `pos * size + i`; a compressed level's children of `pos` are its segment's entries.
fn walk(
    spec: &SparseSpec,
    sizes: &[usize],
    level: usize,
    pos: usize,
    coord: &mut [usize],
    leaf: &mut dyn FnMut(&[usize]),
) {
    if level == spec.levels.len() {
        leaf(coord);
        return;
    }
    let d = spec.traversal_order[level] as usize;
    match &spec.levels[level] {
        SparseLevel::Dense(_) => {
            let size = sizes[level];
            for i in 0..size {
                coord[d] = i;
                walk(spec, sizes, level + 1, pos * size + i, coord, leaf);
            }
        }
        SparseLevel::Csr { segments, indices } => {
            let (lo, hi) = (segments[pos] as usize, segments[pos + 1] as usize);
            for (j, &x) in indices[lo..hi].iter().enumerate() {
                coord[d] = x as usize;
                walk(spec, sizes, level + 1, lo + j, coord, leaf);
            }
        }
    }
}
