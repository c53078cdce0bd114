//! Dense or sparse: calibrated from `kernels/benches/spmm.rs`.

use super::{F32Layout, I8Layout};
use crate::isa::Isa;
use crate::sparse::BlockShape;

/// Operand type of a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    F32,
    I8,
}

/// The kernel layout a sparse layer is packed into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SparseLayout {
    F32(F32Layout),
    I8(I8Layout),
}

/// The layout that serves weights pruned in `block` blocks (R output × C input channels):
/// f32 `4x1` when R is a multiple of 4, else `1x1`; int8 `16x4` when R is a multiple of 16 and C
/// of 4, else `1x4`.
pub fn sparse_layout(dtype: Dtype, block: BlockShape) -> SparseLayout {
    match dtype {
        Dtype::F32 if block.r.is_multiple_of(4) && block.r > 0 => {
            SparseLayout::F32(F32Layout::B4x1)
        }
        Dtype::F32 => SparseLayout::F32(F32Layout::B1x1),
        Dtype::I8
            if block.r.is_multiple_of(16)
                && block.r > 0
                && block.c.is_multiple_of(4)
                && block.c > 0 =>
        {
            SparseLayout::I8(I8Layout::B16x4)
        }
        Dtype::I8 => SparseLayout::I8(I8Layout::B1x4),
    }
}

/// Crossover densities of one layout: the density of stored weights at or below which the
/// sparse kernel is faster than the dense one, for 1×1 convolutions at the input-channel counts
/// `K_POINTS` (interpolated in log K between them, held constant outside), and for an `M = 1`
/// fully-connected layer.
struct Crossover {
    conv: [f32; 5],
    fc: f32,
    /// Scale of the crossovers on tiers other than AVX-512 VNNI.
    other_tiers: f32,
}

const K_POINTS: [usize; 5] = [24, 144, 384, 576, 960];

/// Layers with fewer pixels than this use the fully-connected crossover.
const FC_ROWS: usize = 8;

/// Does the sparse kernel beat the dense one on a layer of `m` pixels, `k` input and `n` output
/// channels, whose weights are pruned in `block` blocks with the given `density` (fraction of
/// weights stored, in [0, 1])? The layout is [`sparse_layout`]; int8 weights pruned in blocks
/// narrower than 4 input channels are judged by the density of the 1×4 blocks they fill.
/// `n` does not enter the model.
///
/// Calibrated on the development machine (2-core AMD EPYC, AVX-512 VNNI, one thread) from
/// `cargo bench -p sparq-kernels --bench spmm -- --warm-up-time 0.3 --measurement-time 1
/// 'spmm/(dense|spmm)/f32/'` and `i8/` (thread CPU time, NHWC in → NHWC out, int8 requantized;
/// on the shared machine single timings vary by about ±15 %; the f32 and int8 rows are the best
/// of two runs), speedup over our dense kernel at sparsity 50 / 70 / 80 / 90 / 95 %:
///
/// | layout      | M×K×N        | 50%  | 70%  | 80%  | 90%  | 95%   | crossover density |
/// |-------------|--------------|------|------|------|------|-------|-------------------|
/// | f32 1x1     | 3136×24×144  | 1.08 | 1.43 | 1.74 | 2.21 | 2.49  | ≥ 0.50            |
/// | f32 1x1     | 784×144×32   | 1.14 | 1.68 | 2.18 | 3.10 | 3.97  | ≥ 0.50            |
/// | f32 1x1     | 196×384×64   | 1.14 | 1.74 | 2.39 | 3.73 | 5.18  | ≥ 0.50            |
/// | f32 1x1     | 196×576×96   | 1.17 | 1.79 | 2.45 | 4.15 | 6.24  | ≥ 0.50            |
/// | f32 1x1     | 49×960×320   | 1.02 | 1.63 | 2.33 | 4.05 | 6.62  | ≥ 0.50            |
/// | f32 1x1     | 1×1280×1000  | 0.13 | 0.23 | 0.34 | 0.68 | 1.26  | 0.072 (0.05 used) |
/// | f32 4x1     | 3136×24×144  | 1.28 | 1.71 | 2.02 | 2.47 | 2.76  | ≥ 0.50            |
/// | f32 4x1     | 784×144×32   | 1.54 | 2.21 | 2.84 | 3.98 | 4.91  | ≥ 0.50            |
/// | f32 4x1     | 196×384×64   | 1.61 | 2.41 | 3.26 | 5.13 | 7.07  | ≥ 0.50            |
/// | f32 4x1     | 196×576×96   | 1.68 | 2.64 | 3.70 | 5.95 | 8.95  | ≥ 0.50            |
/// | f32 4x1     | 49×960×320   | 1.46 | 2.40 | 3.48 | 6.42 | 10.85 | ≥ 0.50            |
/// | f32 4x1     | 1×1280×1000  | 0.30 | 0.49 | 0.72 | 1.34 | 2.27  | 0.155 (≈ 0.156)   |
/// | int8 1x4    | 3136×24×144  | 1.04 | 1.12 | 1.16 | 1.21 | 1.24  | ≥ 0.50            |
/// | int8 1x4    | 784×144×32   | 1.13 | 1.48 | 1.79 | 2.15 | 2.34  | ≥ 0.50            |
/// | int8 1x4    | 196×384×64   | 1.20 | 1.79 | 2.35 | 3.37 | 4.33  | ≥ 0.50            |
/// | int8 1x4    | 196×576×96   | 1.21 | 1.86 | 2.54 | 3.88 | 5.32  | ≥ 0.50            |
/// | int8 1x4    | 49×960×320   | 0.91 | 1.63 | 2.43 | 4.36 | 6.90  | 0.475             |
/// | int8 1x4    | 1×1280×1000  | 0.16 | 0.30 | 0.44 | 0.77 | 1.15  | 0.070 (0.05 used) |
/// | int8 16x4   | 3136×24×144  | 1.34 | 1.56 | 1.68 | 1.87 | 1.81  | ≥ 0.50            |
/// | int8 16x4   | 784×144×32   | 1.63 | 2.25 | 2.88 | 3.74 | 4.43  | ≥ 0.50            |
/// | int8 16x4   | 196×384×64   | 1.83 | 2.77 | 3.73 | 5.62 | 7.48  | ≥ 0.50            |
/// | int8 16x4   | 196×576×96   | 1.84 | 2.87 | 4.01 | 5.93 | 8.36  | ≥ 0.50            |
/// | int8 16x4   | 49×960×320   | 1.93 | 3.04 | 4.31 | 6.74 | 10.19 | ≥ 0.50            |
/// | int8 16x4   | 1×1280×1000  | 2.45 | 3.59 | 5.77 | 8.86 | 10.85 | ≥ 0.50            |
/// | int8 32x4   | 784×144×32   | 1.79 | 2.37 | 2.92 | 3.61 | 4.25  | (16x4 layout)     |
/// | int8 32x4   | 196×384×64   | 1.97 | 3.04 | 4.12 | 6.10 | 7.87  | (16x4 layout)     |
/// | int8 32x4   | 196×576×96   | 1.96 | 3.12 | 4.45 | 7.06 | 9.85  | (16x4 layout)     |
/// | int8 32x4   | 49×960×320   | 1.99 | 3.15 | 4.52 | 7.70 | 11.38 | (16x4 layout)     |
///
/// "≥ 0.50": sparse already wins at the densest measured point; the decision uses 0.5 (sparse
/// storage denser than half is not what pruning produces). The crossover is interpolated
/// linearly between the two measured points around a speedup of 1.
///
/// Other tiers: the AVX2 kernels (the portable tiled kernels compiled for AVX2, and a
/// `vpmaddwd` coarse kernel) were measured on 196×576×96 (and the coarse one on the FC) with
/// `SPARQ_ISA=avx2` against the AVX2 dense kernel: speedups at 50 / 70 / 80 / 90 / 95 % were
/// f32 1x1 0.40 / 0.61 / 0.82 / 1.24 / 1.62 (crossover 0.157), f32 4x1 0.90 / 1.19 / 1.42 /
/// 1.68 / 1.92 (0.43), int8 1x4 0.38 / 0.58 / 0.78 / 1.15 / 1.51 (0.14), int8 16x4 1.20 /
/// 1.59 / 1.85 / 2.35 / 2.67 (≥ 0.5; FC 2.25 / 3.22 / 5.01 / 7.82 / 11.28). Their crossovers
/// are the AVX-512 ones scaled by the ratio at that shape (0.31, 0.86, 0.28, 1). NEON /
/// dotprod (not timed: CI runs them under qemu) use the AVX2 factors as a stand-in; the scalar
/// tier never prefers sparse.
pub fn prefer_sparse(
    dtype: Dtype,
    m: usize,
    k: usize,
    n: usize,
    block: BlockShape,
    density: f32,
) -> bool {
    let _ = n;
    if !(0.0..=1.0).contains(&density) || m == 0 || k == 0 {
        return false;
    }
    let layout = sparse_layout(dtype, block);
    // 1x4 int8 blocks re-cut from narrower blocks: a 1x4 block is stored when any of its
    // 4 / C source blocks is (independence assumed).
    let density = match layout {
        SparseLayout::I8(I8Layout::B1x4) if block.c > 0 && !block.c.is_multiple_of(4) => {
            let per = 4.0 / block.c.min(4) as f32;
            1.0 - (1.0 - density).powf(per)
        }
        _ => density,
    };
    let table = match layout {
        SparseLayout::F32(F32Layout::B1x1) => &F32_1X1,
        SparseLayout::F32(F32Layout::B4x1) => &F32_4X1,
        SparseLayout::I8(I8Layout::B1x4) => &I8_1X4,
        SparseLayout::I8(I8Layout::B16x4) => &I8_16X4,
    };
    let scale = match Isa::active() {
        Isa::Avx512Vnni => 1.0,
        Isa::Scalar => return false,
        _ => table.other_tiers,
    };
    density <= scale * crossover(table, m, k)
}

fn crossover(t: &Crossover, m: usize, k: usize) -> f32 {
    if m < FC_ROWS {
        return t.fc;
    }
    let lk = (k as f32).log2();
    let pts = K_POINTS.map(|p| (p as f32).log2());
    if lk <= pts[0] {
        return t.conv[0];
    }
    for i in 1..pts.len() {
        if lk <= pts[i] {
            let f = (lk - pts[i - 1]) / (pts[i] - pts[i - 1]);
            return t.conv[i - 1] + f * (t.conv[i] - t.conv[i - 1]);
        }
    }
    t.conv[pts.len() - 1]
}

const F32_1X1: Crossover = Crossover {
    conv: [0.5, 0.5, 0.5, 0.5, 0.5],
    fc: 0.05,
    other_tiers: 0.31,
};
const F32_4X1: Crossover = Crossover {
    conv: [0.5, 0.5, 0.5, 0.5, 0.5],
    fc: 0.156,
    other_tiers: 0.86,
};
const I8_1X4: Crossover = Crossover {
    conv: [0.5, 0.5, 0.5, 0.5, 0.475],
    fc: 0.05,
    other_tiers: 0.28,
};
const I8_16X4: Crossover = Crossover {
    conv: [0.5, 0.5, 0.5, 0.5, 0.5],
    fc: 0.5,
    other_tiers: 1.0,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        let b = BlockShape::new;
        assert_eq!(
            sparse_layout(Dtype::F32, b(1, 1)),
            SparseLayout::F32(F32Layout::B1x1)
        );
        assert_eq!(
            sparse_layout(Dtype::F32, b(4, 1)),
            SparseLayout::F32(F32Layout::B4x1)
        );
        assert_eq!(
            sparse_layout(Dtype::F32, b(8, 2)),
            SparseLayout::F32(F32Layout::B4x1)
        );
        assert_eq!(
            sparse_layout(Dtype::I8, b(1, 4)),
            SparseLayout::I8(I8Layout::B1x4)
        );
        assert_eq!(
            sparse_layout(Dtype::I8, b(32, 4)),
            SparseLayout::I8(I8Layout::B16x4)
        );
        assert_eq!(
            sparse_layout(Dtype::I8, b(16, 2)),
            SparseLayout::I8(I8Layout::B1x4)
        );
    }

    #[test]
    fn interpolation_and_bounds() {
        let t = Crossover {
            conv: [0.0, 0.4, 0.4, 0.2, 0.1],
            fc: 0.3,
            other_tiers: 1.0,
        };
        assert_eq!(crossover(&t, 100, 8), 0.0);
        assert_eq!(crossover(&t, 100, 144), 0.4);
        assert_eq!(crossover(&t, 100, 4096), 0.1);
        let mid = crossover(&t, 100, 59); // between 24 and 144 in log K
        assert!(mid > 0.0 && mid < 0.4, "{mid}");
        assert_eq!(crossover(&t, 1, 144), 0.3);
        assert!(!prefer_sparse(
            Dtype::F32,
            100,
            144,
            8,
            BlockShape::new(1, 1),
            1.5
        ));
        assert!(!prefer_sparse(
            Dtype::F32,
            100,
            144,
            8,
            BlockShape::new(1, 1),
            f32::NAN
        ));
        assert!(!prefer_sparse(
            Dtype::I8,
            100,
            144,
            8,
            BlockShape::new(1, 4),
            1.0
        ));
    }

    #[test]
    fn calibrated_choices() {
        let b = BlockShape::new;
        if Isa::active() == Isa::Scalar {
            assert!(!prefer_sparse(Dtype::F32, 196, 576, 96, b(4, 1), 0.01));
        }
        if matches!(
            Isa::active(),
            Isa::Avx2 | Isa::Neon | Isa::Dotprod | Isa::I8mm
        ) {
            assert!(prefer_sparse(Dtype::I8, 1, 1280, 1000, b(16, 4), 0.1));
            assert!(!prefer_sparse(Dtype::I8, 196, 576, 96, b(1, 4), 0.3));
            assert!(prefer_sparse(Dtype::F32, 196, 576, 96, b(4, 1), 0.1));
        }
        if Isa::active() != Isa::Avx512Vnni {
            return;
        }
        // Coarse int8 blocks pay off on the classifier, 1x4 blocks do not; 1x4 does on K = 24.
        assert!(prefer_sparse(Dtype::I8, 1, 1280, 1000, b(16, 4), 0.1));
        assert!(!prefer_sparse(Dtype::I8, 1, 1280, 1000, b(1, 4), 0.1));
        assert!(prefer_sparse(Dtype::I8, 3136, 24, 144, b(1, 4), 0.1));
        assert!(prefer_sparse(Dtype::I8, 196, 576, 96, b(1, 4), 0.1));
        assert!(prefer_sparse(Dtype::F32, 196, 576, 96, b(1, 1), 0.1));
        assert!(!prefer_sparse(Dtype::F32, 196, 576, 96, b(1, 1), 0.6));
        // f32 1x1 wins from half density on (cache-line aligned tiles).
        assert!(prefer_sparse(Dtype::F32, 196, 576, 96, b(1, 1), 0.45));
        // Unstructured int8 at 80 % fills about 59 % of the 1x4 blocks: dense; at 90 %, 34 %.
        assert!(!prefer_sparse(Dtype::I8, 196, 576, 96, b(1, 1), 0.2));
        assert!(prefer_sparse(Dtype::I8, 196, 576, 96, b(1, 1), 0.1));
    }
}
