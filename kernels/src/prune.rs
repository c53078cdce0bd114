//! Magnitude pruning: pure, deterministic functions that choose which weights to keep.
//!
//! A weight matrix is `rows` (output channels) × `cols` (input channels), row-major, as in
//! [`crate::sparse`]. The result is a keep-mask of the same length, ready for
//! [`crate::sparse::CsrMatrix::from_dense`] / [`crate::sparse::BsrMatrix::from_dense`].
//!
//! - Unstructured: the weights of smallest magnitude are removed.
//! - R×C blocks: the matrix is tiled in blocks (edge blocks clipped) and whole blocks are ranked
//!   by their L1 norm (mean |w|, as tfmot's AVG block pooling) or L2 norm (root mean square);
//!   means, so that a clipped edge block competes fairly with full ones.
//! - N:M (e.g. 2:4): in each group of M consecutive input channels of a row, the N largest
//!   magnitudes are kept (the last group of a row may be shorter: it keeps at most N).
//!
//! Sparsity `s` removes `total - round(total · (1 − s))` groups (weights or blocks), like tfmot's
//! `round(size · (1 − sparsity))` kept. Ties are broken by position (the earlier group is removed
//! first), so the result depends on nothing but the input. Per-layer pruning ranks within one
//! matrix; global pruning ranks the groups of all layers together (same pattern for all).

use crate::sparse::BlockShape;
use std::cmp::Ordering;
use std::fmt;

/// A weight element whose magnitude can be ranked.
pub trait Magnitude: Copy {
    fn magnitude(self) -> f32;
}
impl Magnitude for f32 {
    fn magnitude(self) -> f32 {
        self.abs()
    }
}
impl Magnitude for i8 {
    fn magnitude(self) -> f32 {
        (self as f32).abs()
    }
}
impl Magnitude for half::f16 {
    fn magnitude(self) -> f32 {
        self.to_f32().abs()
    }
}

/// How blocks are scored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Norm {
    L1,
    L2,
}

/// The sparsity structure to prune to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// Single weights.
    Unstructured,
    /// Whole R×C blocks, ranked by `norm`.
    Block { shape: BlockShape, norm: Norm },
    /// Keep `n` of every `m` consecutive input channels (the sparsity argument is ignored).
    NOfM { n: usize, m: usize },
}

/// Why a pruning request was refused.
#[derive(Clone, Debug, PartialEq)]
pub enum PruneError {
    /// Sparsity outside [0, 1] or not a number.
    Sparsity(f32),
    /// A block with a zero side, or N:M with `m == 0` or `n > m`.
    Pattern(Pattern),
    /// A layer whose weight slice is not `rows × cols` long.
    Len {
        layer: usize,
        expected: usize,
        found: usize,
    },
}

impl fmt::Display for PruneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PruneError::Sparsity(s) => write!(f, "sparsity {s} is not in [0, 1]"),
            PruneError::Pattern(p) => write!(f, "invalid pruning pattern {p:?}"),
            PruneError::Len {
                layer,
                expected,
                found,
            } => {
                write!(
                    f,
                    "layer {layer}: expected {expected} weights, found {found}"
                )
            }
        }
    }
}

impl std::error::Error for PruneError {}

/// One weight matrix to prune.
#[derive(Clone, Copy, Debug)]
pub struct Layer<'a, T> {
    pub weights: &'a [T],
    pub rows: usize,
    pub cols: usize,
}

/// Prunes one matrix to `sparsity`; returns the keep-mask.
pub fn prune<T: Magnitude>(
    weights: &[T],
    rows: usize,
    cols: usize,
    sparsity: f32,
    pattern: Pattern,
) -> Result<Vec<bool>, PruneError> {
    let mut masks = prune_global(
        &[Layer {
            weights,
            rows,
            cols,
        }],
        sparsity,
        pattern,
    )?;
    Ok(masks.pop().unwrap_or_default())
}

/// Prunes all `layers` together to an overall `sparsity` (groups ranked across layers).
pub fn prune_global<T: Magnitude>(
    layers: &[Layer<'_, T>],
    sparsity: f32,
    pattern: Pattern,
) -> Result<Vec<Vec<bool>>, PruneError> {
    if !(0.0..=1.0).contains(&sparsity) {
        return Err(PruneError::Sparsity(sparsity));
    }
    match pattern {
        Pattern::Block { shape, .. } if shape.r == 0 || shape.c == 0 => {
            return Err(PruneError::Pattern(pattern))
        }
        Pattern::NOfM { n, m } if m == 0 || n > m => return Err(PruneError::Pattern(pattern)),
        _ => {}
    }
    for (i, l) in layers.iter().enumerate() {
        let expected = l.rows.saturating_mul(l.cols);
        if l.weights.len() != expected {
            return Err(PruneError::Len {
                layer: i,
                expected,
                found: l.weights.len(),
            });
        }
    }
    let (shape, norm) = match pattern {
        Pattern::NOfM { n, m } => return Ok(layers.iter().map(|l| n_of_m(l, n, m)).collect()),
        Pattern::Unstructured => (BlockShape::new(1, 1), Norm::L1),
        Pattern::Block { shape, norm } => (shape, norm),
    };
    // (score, layer, block) for every block of every layer.
    let mut groups: Vec<(f32, usize, usize)> = Vec::new();
    for (li, l) in layers.iter().enumerate() {
        let bcols = l.cols.div_ceil(shape.c);
        for br in 0..l.rows.div_ceil(shape.r) {
            for bc in 0..bcols {
                let (mut sum, mut count) = (0.0f64, 0usize);
                for r in br * shape.r..((br + 1) * shape.r).min(l.rows) {
                    for c in bc * shape.c..((bc + 1) * shape.c).min(l.cols) {
                        let a = l.weights[r * l.cols + c].magnitude() as f64;
                        sum += if norm == Norm::L2 { a * a } else { a };
                        count += 1;
                    }
                }
                let mean = sum / count as f64;
                let score = if norm == Norm::L2 { mean.sqrt() } else { mean };
                groups.push((score as f32, li, br * bcols + bc));
            }
        }
    }
    let total = groups.len();
    let keep_n = ((total as f64) * (1.0 - sparsity as f64)).round() as usize;
    let remove_n = total - keep_n.min(total);
    let cmp = |a: &(f32, usize, usize), b: &(f32, usize, usize)| {
        a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2))
    };
    if remove_n > 0 && remove_n < total {
        groups.select_nth_unstable_by(remove_n - 1, cmp);
    }
    let mut masks: Vec<Vec<bool>> = layers.iter().map(|l| vec![true; l.weights.len()]).collect();
    for &(_, li, b) in &groups[..remove_n] {
        let l = &layers[li];
        let bcols = l.cols.div_ceil(shape.c);
        let (br, bc) = (b / bcols, b % bcols);
        for r in br * shape.r..((br + 1) * shape.r).min(l.rows) {
            for c in bc * shape.c..((bc + 1) * shape.c).min(l.cols) {
                masks[li][r * l.cols + c] = false;
            }
        }
    }
    Ok(masks)
}

fn n_of_m<T: Magnitude>(l: &Layer<'_, T>, n: usize, m: usize) -> Vec<bool> {
    let mut mask = vec![false; l.weights.len()];
    let mut order: Vec<usize> = Vec::with_capacity(m);
    for r in 0..l.rows {
        for g0 in (0..l.cols).step_by(m) {
            let g1 = (g0 + m).min(l.cols);
            order.clear();
            order.extend(g0..g1);
            // Largest magnitude first; on ties the earlier position is kept.
            order.sort_by(|&a, &b| {
                let (wa, wb) = (l.weights[r * l.cols + a], l.weights[r * l.cols + b]);
                match wb.magnitude().total_cmp(&wa.magnitude()) {
                    Ordering::Equal => a.cmp(&b),
                    o => o,
                }
            });
            for &c in order.iter().take(n) {
                mask[r * l.cols + c] = true;
            }
        }
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparse::tests::Rng;

    fn weights(rng: &mut Rng, n: usize) -> Vec<f32> {
        (0..n).map(|_| rng.f32()).collect()
    }

    #[test]
    fn unstructured_keeps_the_largest() {
        let w = [0.1f32, -0.9, 0.3, 0.0, -0.2, 0.8, 0.5, -0.4];
        let m = prune(&w, 2, 4, 0.5, Pattern::Unstructured).unwrap();
        assert_eq!(m, [false, true, false, false, false, true, true, true]);
        assert_eq!(
            prune(&w, 2, 4, 0.0, Pattern::Unstructured).unwrap(),
            [true; 8]
        );
        assert_eq!(
            prune(&w, 2, 4, 1.0, Pattern::Unstructured).unwrap(),
            [false; 8]
        );
    }

    #[test]
    fn sparsity_is_reached_exactly_and_deterministically() {
        let mut rng = Rng(7);
        for &(rows, cols) in &[(1, 1), (7, 13), (32, 96), (144, 24)] {
            let w = weights(&mut rng, rows * cols);
            for &s in &[0.0f32, 0.5, 0.7, 0.9, 0.95] {
                let m = prune(&w, rows, cols, s, Pattern::Unstructured).unwrap();
                let kept = m.iter().filter(|&&k| k).count();
                let want = ((rows * cols) as f64 * (1.0 - s as f64)).round() as usize;
                assert_eq!(kept, want, "{rows}x{cols} at {s}");
                // Every kept weight is at least as large as every removed one.
                let min_kept = w
                    .iter()
                    .zip(&m)
                    .filter(|p| *p.1)
                    .map(|p| p.0.abs())
                    .fold(f32::MAX, f32::min);
                let max_cut = w
                    .iter()
                    .zip(&m)
                    .filter(|p| !*p.1)
                    .map(|p| p.0.abs())
                    .fold(0.0, f32::max);
                assert!(kept == 0 || kept == w.len() || min_kept >= max_cut);
                assert_eq!(m, prune(&w, rows, cols, s, Pattern::Unstructured).unwrap());
            }
        }
        // All-equal weights: ties removed in order.
        let m = prune(&[1.0f32; 6], 2, 3, 0.5, Pattern::Unstructured).unwrap();
        assert_eq!(m, [false, false, false, true, true, true]);
    }

    #[test]
    fn blocks_are_removed_whole() {
        let mut rng = Rng(8);
        for &(rows, cols, r, c) in &[
            (16, 24, 1, 4),
            (33, 17, 4, 1),
            (64, 32, 16, 4),
            (10, 10, 3, 3),
        ] {
            let w = weights(&mut rng, rows * cols);
            for norm in [Norm::L1, Norm::L2] {
                let shape = BlockShape::new(r, c);
                let m = prune(&w, rows, cols, 0.8, Pattern::Block { shape, norm }).unwrap();
                let nblocks = rows.div_ceil(r) * cols.div_ceil(c);
                let mut kept_blocks = 0;
                for br in 0..rows.div_ceil(r) {
                    for bc in 0..cols.div_ceil(c) {
                        let cells: Vec<bool> = (br * r..((br + 1) * r).min(rows))
                            .flat_map(|i| (bc * c..((bc + 1) * c).min(cols)).map(move |j| (i, j)))
                            .map(|(i, j)| m[i * cols + j])
                            .collect();
                        assert!(
                            cells.iter().all(|&k| k == cells[0]),
                            "{rows}x{cols} {r}x{c}: block split"
                        );
                        kept_blocks += cells[0] as usize;
                    }
                }
                assert_eq!(kept_blocks, (nblocks as f64 * 0.2).round() as usize);
            }
        }
    }

    #[test]
    fn l1_and_l2_rank_differently() {
        // Block 0: one large weight (L2 wins), block 1: spread weights (L1 wins).
        let w = [1.0f32, 0.0, 0.0, 0.0, 0.4, 0.4, 0.4, 0.4];
        let b = |norm| Pattern::Block {
            shape: BlockShape::new(1, 4),
            norm,
        };
        assert_eq!(
            prune(&w, 1, 8, 0.5, b(Norm::L1)).unwrap()[..5],
            [false, false, false, false, true]
        );
        assert_eq!(
            prune(&w, 1, 8, 0.5, b(Norm::L2)).unwrap()[..5],
            [true, true, true, true, false]
        );
    }

    #[test]
    fn two_of_four() {
        let w = [0.1f32, -0.9, 0.3, 0.2, 1.0, 1.0, 1.0, 1.0, 0.5, -0.6];
        let m = prune(&w, 1, 10, 0.0, Pattern::NOfM { n: 2, m: 4 }).unwrap();
        assert_eq!(
            m,
            [false, true, true, false, true, true, false, false, true, true]
        );
        let i8w: Vec<i8> = vec![1, -5, 3, 2];
        let m = prune(&i8w, 1, 4, 0.0, Pattern::NOfM { n: 2, m: 4 }).unwrap();
        assert_eq!(m, [false, true, true, false]);
    }

    #[test]
    fn global_ranks_across_layers() {
        let a = [0.1f32, 0.2, 0.3, 0.4];
        let b = [1.0f32, 2.0, 3.0, 4.0];
        let layers = [
            Layer {
                weights: &a[..],
                rows: 2,
                cols: 2,
            },
            Layer {
                weights: &b[..],
                rows: 1,
                cols: 4,
            },
        ];
        let m = prune_global(&layers, 0.5, Pattern::Unstructured).unwrap();
        assert_eq!(m[0], [false; 4]);
        assert_eq!(m[1], [true; 4]);
    }

    #[test]
    fn bad_requests_are_errors() {
        let w = [1.0f32; 4];
        assert_eq!(
            prune(&w, 2, 2, 1.5, Pattern::Unstructured),
            Err(PruneError::Sparsity(1.5))
        );
        assert!(matches!(
            prune(&w, 2, 2, f32::NAN, Pattern::Unstructured),
            Err(PruneError::Sparsity(_))
        ));
        assert!(matches!(
            prune(&w, 2, 3, 0.5, Pattern::Unstructured),
            Err(PruneError::Len { .. })
        ));
        let p = Pattern::NOfM { n: 3, m: 2 };
        assert_eq!(prune(&w, 2, 2, 0.5, p), Err(PruneError::Pattern(p)));
        let p = Pattern::Block {
            shape: BlockShape::new(0, 2),
            norm: Norm::L1,
        };
        assert_eq!(prune(&w, 2, 2, 0.5, p), Err(PruneError::Pattern(p)));
        assert_eq!(
            prune::<f32>(&[], 0, 0, 0.5, Pattern::Unstructured).unwrap(),
            Vec::<bool>::new()
        );
    }
}
