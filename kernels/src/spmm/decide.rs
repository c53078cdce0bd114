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
/// `cargo bench -p sparq-kernels --bench spmm -- --warm-up-time 0.5 --measurement-time 1.5`
/// (thread CPU time, NHWC in → NHWC out, int8 requantized), speedup over our dense kernel at
/// sparsity 50 / 70 / 80 / 90 / 95 %:
///
/// | layout      | M×K×N        | 50%  | 70%  | 80%  | 90%  | 95%  | crossover density |
/// |-------------|--------------|------|------|------|------|------|-------------------|
/// | f32 1x1     | 3136×24×144  | 1.01 | 1.44 | 1.38 | 2.28 | 2.52 | ≥ 0.50            |
/// | f32 1x1     | 784×144×32   | 1.03 | 1.45 | 1.53 | 2.00 | 2.86 | ≥ 0.50            |
/// | f32 1x1     | 196×384×64   | 0.60 | 1.43 | 1.85 | 2.39 | 2.93 | 0.40              |
/// | f32 1x1     | 196×576×96   | 0.59 | 1.01 | 2.08 | 2.60 | 3.59 | 0.30              |
/// | f32 1x1     | 49×960×320   | 0.48 | 0.84 | 1.13 | 2.41 | 6.26 | 0.245             |
/// | f32 1x1     | 1×1280×1000  | 0.07 | 0.12 | 0.19 | 0.40 | 0.77 | never             |
/// | f32 4x1     | 3136×24×144  | 1.42 | 1.76 | 1.99 | 2.28 | 2.44 | ≥ 0.50            |
/// | f32 4x1     | 784×144×32   | 1.41 | 1.86 | 2.29 | 2.83 | 3.11 | ≥ 0.50            |
/// | f32 4x1     | 196×384×64   | 1.29 | 1.89 | 2.41 | 3.05 | 3.83 | ≥ 0.50            |
/// | f32 4x1     | 196×576×96   | 1.48 | 2.21 | 2.80 | 4.06 | 5.32 | ≥ 0.50            |
/// | f32 4x1     | 49×960×320   | 1.45 | 2.14 | 3.05 | 5.46 | 8.56 | ≥ 0.50            |
/// | f32 4x1     | 1×1280×1000  | 0.22 | 0.37 | 0.78 | 1.22 | 2.27 | 0.15              |
/// | int8 1x4    | 3136×24×144  | 0.79 | 0.78 | 0.85 | 0.87 | 0.88 | never             |
/// | int8 1x4    | 784×144×32   | 1.00 | 1.06 | 1.29 | 1.25 | 1.16 | 0.49              |
/// | int8 1x4    | 196×384×64   | 0.84 | 1.51 | 1.87 | 2.32 | 2.57 | 0.45              |
/// | int8 1x4    | 196×576×96   | 0.97 | 1.42 | 1.57 | 2.53 | 2.93 | 0.49              |
/// | int8 1x4    | 49×960×320   | 0.86 | 1.47 | 1.99 | 2.45 | 3.83 | 0.455             |
/// | int8 1x4    | 1×1280×1000  | 0.08 | 0.16 | 0.35 | 0.45 | 0.79 | never             |
/// | int8 16x4   | 3136×24×144  | 1.22 | 1.31 | 1.33 | 1.38 | 1.39 | ≥ 0.50            |
/// | int8 16x4   | 784×144×32   | 1.16 | 1.40 | 1.69 | 1.95 | 2.02 | ≥ 0.50            |
/// | int8 16x4   | 196×384×64   | 1.59 | 2.17 | 2.68 | 3.64 | 4.35 | ≥ 0.50            |
/// | int8 16x4   | 196×576×96   | 1.55 | 2.16 | 2.86 | 4.00 | 5.23 | ≥ 0.50            |
/// | int8 16x4   | 49×960×320   | 1.79 | 2.59 | 3.42 | 5.22 | 7.69 | ≥ 0.50            |
/// | int8 16x4   | 1×1280×1000  | 1.96 | 3.36 | 4.66 | 7.07 | 8.43 | ≥ 0.50            |
///
/// "≥ 0.50": sparse already wins at the densest measured point; the decision uses 0.5 (sparse
/// storage denser than half is not what pruning produces). The crossover is interpolated
/// linearly between the two measured points around a speedup of 1.
///
/// Other tiers are not calibrated on their own: AVX2 and NEON/dotprod run the portable tiled
/// kernels, for which the decision uses half the AVX-512 crossover densities (a conservative
/// stand-in; sparse must then be clearly sparser to be chosen); the scalar tier never prefers
/// sparse.
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
        _ => 0.5,
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
    conv: [0.5, 0.5, 0.40, 0.30, 0.245],
    fc: 0.0,
};
const F32_4X1: Crossover = Crossover {
    conv: [0.5, 0.5, 0.5, 0.5, 0.5],
    fc: 0.15,
};
const I8_1X4: Crossover = Crossover {
    conv: [0.0, 0.49, 0.45, 0.49, 0.455],
    fc: 0.0,
};
const I8_16X4: Crossover = Crossover {
    conv: [0.5, 0.5, 0.5, 0.5, 0.5],
    fc: 0.5,
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
        if Isa::active() != Isa::Avx512Vnni {
            return;
        }
        let b = BlockShape::new;
        // Coarse int8 blocks pay off on the classifier; 1x4 does not on K = 24.
        assert!(prefer_sparse(Dtype::I8, 1, 1280, 1000, b(16, 4), 0.1));
        assert!(!prefer_sparse(Dtype::I8, 3136, 24, 144, b(1, 4), 0.1));
        assert!(prefer_sparse(Dtype::I8, 196, 576, 96, b(1, 4), 0.1));
        assert!(prefer_sparse(Dtype::F32, 196, 576, 96, b(1, 1), 0.1));
        assert!(!prefer_sparse(Dtype::F32, 196, 576, 96, b(1, 1), 0.6));
        // Unstructured int8 at 80 % fills about 59 % of the 1x4 blocks: dense; at 90 %, 34 %.
        assert!(!prefer_sparse(Dtype::I8, 196, 576, 96, b(1, 1), 0.2));
        assert!(prefer_sparse(Dtype::I8, 196, 576, 96, b(1, 1), 0.1));
    }
}
