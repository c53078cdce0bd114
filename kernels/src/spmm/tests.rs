//! Every sparse kernel against the dense reference on the densified weights: exact for int8,
//! within f32 rounding for f32, on random shapes, densities, block shapes, strides and row ranges.

use super::*;
use crate::sparse::tests::Rng;
use crate::sparse::{BlockShape, BsrMatrix, CsrMatrix};

const SHAPES: [(usize, usize); 8] = [
    (1, 1),
    (1, 4),
    (4, 1),
    (2, 2),
    (16, 4),
    (32, 4),
    (4, 4),
    (3, 5),
];

/// A random matrix pruned to random blocks: (dense with zeros, keep mask).
fn sparse_matrix<T: Copy + Default>(
    rng: &mut Rng,
    n: usize,
    k: usize,
    block: BlockShape,
    density: f32,
    mut gen: impl FnMut(&mut Rng) -> T,
) -> (Vec<T>, Vec<bool>) {
    let (br, bc) = (n.div_ceil(block.r), k.div_ceil(block.c));
    let keep_block: Vec<bool> = (0..br * bc).map(|_| rng.unit() < density).collect();
    let mut dense = vec![T::default(); n * k];
    let mut keep = vec![false; n * k];
    for r in 0..n {
        for c in 0..k {
            if keep_block[(r / block.r) * bc + c / block.c] {
                keep[r * k + c] = true;
                dense[r * k + c] = gen(rng);
            }
        }
    }
    (dense, keep)
}

struct Case {
    m: usize,
    k: usize,
    n: usize,
    block: BlockShape,
    density: f32,
    csr: bool,
    a_stride: usize,
    out_stride: usize,
    rows: Range<usize>,
}

fn random_case(rng: &mut Rng, i: usize) -> Case {
    let m = match i % 4 {
        0 => 1,
        1 => 1 + rng.below(20),
        _ => 1 + rng.below(150),
    };
    // K past one chunk of input channels now and then (kernels that split K into passes).
    let k = if i.is_multiple_of(7) {
        1
    } else if i % 13 == 6 {
        190 + rng.below(800)
    } else {
        1 + rng.below(90)
    };
    let n = if i.is_multiple_of(11) {
        1
    } else {
        1 + rng.below(50)
    };
    let (r, c) = SHAPES[i % SHAPES.len()];
    let density = match i % 9 {
        0 => 0.0,
        1 => 1.0,
        _ => rng.unit(),
    };
    let a_stride = k + if i.is_multiple_of(3) { rng.below(9) } else { 0 };
    let out_stride = n + if i.is_multiple_of(5) { rng.below(9) } else { 0 };
    let start = if i.is_multiple_of(2) { 0 } else { rng.below(m) };
    let end = start + rng.below(m - start + 1);
    let rows = if i.is_multiple_of(4) {
        0..m
    } else {
        start..end
    };
    Case {
        m,
        k,
        n,
        block: BlockShape::new(r, c),
        density,
        csr: r == 1 && c == 1 && i.is_multiple_of(2),
        a_stride,
        out_stride,
        rows,
    }
}

fn describe(c: &Case) -> String {
    format!(
        "M={} K={} N={} block {} density {:.2} {} strides {}/{} rows {:?}",
        c.m,
        c.k,
        c.n,
        c.block,
        c.density,
        if c.csr { "csr" } else { "bsr" },
        c.a_stride,
        c.out_stride,
        c.rows
    )
}

fn first_diff<T: PartialEq + Copy + std::fmt::Debug>(
    got: &[T],
    want: &[T],
    stride: usize,
) -> Option<String> {
    got.iter().zip(want).position(|(g, w)| g != w).map(|i| {
        format!(
            "first difference at row {} col {}: got {:?}, want {:?}",
            i / stride,
            i % stride,
            got[i],
            want[i]
        )
    })
}

#[test]
fn i8_matches_dense_reference() {
    let mut rng = Rng(41);
    for i in 0..260 {
        let c = random_case(&mut rng, i);
        let (dense, keep) = sparse_matrix(&mut rng, c.n, c.k, c.block, c.density, |r| r.i8());
        let csr = CsrMatrix::from_dense(&dense, c.n, c.k, &keep).unwrap();
        let bsr = BsrMatrix::from_dense(&dense, c.n, c.k, c.block, &keep).unwrap();
        let w = if c.csr {
            SparseWeights::Csr(csr.view().unwrap())
        } else {
            SparseWeights::Bsr(bsr.view().unwrap())
        };
        let wd: Vec<i8> = w.to_dense();
        let zp = rng.below(256) as i32 - 128;
        let bias: Vec<i32> = (0..c.n).map(|_| rng.below(20001) as i32 - 10000).collect();
        let per_channel = i % 3 != 0;
        let nch = if per_channel { c.n } else { 1 };
        let mults: Vec<i32> = (0..nch)
            .map(|_| {
                if i % 17 == 0 {
                    i32::MIN
                } else {
                    (1 << 30) + rng.below(1 << 30) as i32
                }
            })
            .collect();
        // Every third case only right shifts (1..=22, different per channel): the kernels'
        // fast requantization; else some left shifts and zero.
        let shifts: Vec<i32> = (0..nch)
            .map(|_| {
                if i % 3 == 1 {
                    rng.below(22) as i32 - 22
                } else {
                    rng.below(16) as i32 - 13
                }
            })
            .collect();
        let (lo, hi) = if i % 4 == 0 {
            (-128, 127)
        } else {
            (-100 + rng.below(50) as i32, 20 + rng.below(100) as i32)
        };
        let ozp = rng.below(41) as i32 - 20;
        let rq = Requant::new(mults, shifts, ozp, lo, hi).unwrap();
        let a: Vec<i8> = (0..c.m * c.a_stride).map(|_| rng.i8()).collect();
        let mut want = vec![77i8; c.m * c.out_stride];
        for m in c.rows.clone() {
            for n in 0..c.n {
                let mut acc = bias[n];
                for k in 0..c.k {
                    acc = acc
                        .wrapping_add(wd[n * c.k + k] as i32 * (a[m * c.a_stride + k] as i32 - zp));
                }
                want[m * c.out_stride + n] = rq.apply(acc, n) as i8;
            }
        }
        for layout in [I8Layout::B1x4, I8Layout::B16x4] {
            for kernel in i8_candidates(layout) {
                let p = PackedI8::with_kernel(&w, Some(&bias), zp, layout, kernel).unwrap();
                // Every other case hands the kernel a scratch at an odd word offset, as a
                // thread's share of an operator's scratch can be: kernels may assume 4-byte
                // alignment only.
                let mut scratch_buf = vec![0u32; p.scratch_len() + 1];
                let scratch = &mut scratch_buf[i % 2..][..p.scratch_len()];
                let mut got = vec![77i8; c.m * c.out_stride];
                p.run(
                    &a,
                    c.a_stride,
                    c.rows.clone(),
                    &mut got,
                    c.out_stride,
                    &rq,
                    scratch,
                );
                if let Some(d) = first_diff(&got, &want, c.out_stride) {
                    panic!("case {i}: {} ({}): {d}", describe(&c), p.kernel_name());
                }
            }
        }
    }
}

#[test]
fn f32_matches_dense_reference() {
    let mut rng = Rng(42);
    for i in 0..260 {
        let c = random_case(&mut rng, i);
        let (dense, keep) = sparse_matrix(&mut rng, c.n, c.k, c.block, c.density, |r| r.f32());
        let csr = CsrMatrix::from_dense(&dense, c.n, c.k, &keep).unwrap();
        let bsr = BsrMatrix::from_dense(&dense, c.n, c.k, c.block, &keep).unwrap();
        let w = if c.csr {
            SparseWeights::Csr(csr.view().unwrap())
        } else {
            SparseWeights::Bsr(bsr.view().unwrap())
        };
        let wd: Vec<f32> = w.to_dense();
        let use_bias = i % 5 != 0;
        let bias: Vec<f32> = (0..c.n)
            .map(|_| if use_bias { rng.f32() } else { 0.0 })
            .collect();
        let (lo, hi) = if i % 3 == 0 {
            (f32::NEG_INFINITY, f32::INFINITY)
        } else {
            (-0.5, 0.7)
        };
        let a: Vec<f32> = (0..c.m * c.a_stride).map(|_| rng.f32()).collect();
        let mut want = vec![9.0f32; c.m * c.out_stride];
        let mut tol = vec![0.0f32; c.m * c.out_stride];
        for m in c.rows.clone() {
            for n in 0..c.n {
                let (mut acc, mut mag) = (bias[n] as f64, bias[n].abs() as f64);
                for k in 0..c.k {
                    let t = wd[n * c.k + k] as f64 * a[m * c.a_stride + k] as f64;
                    acc += t;
                    mag += t.abs();
                }
                want[m * c.out_stride + n] = (acc as f32).max(lo).min(hi);
                tol[m * c.out_stride + n] = 1e-5 * mag as f32 + 1e-6;
            }
        }
        for layout in [F32Layout::B1x1, F32Layout::B4x1] {
            for kernel in f32_candidates(layout) {
                let b = if use_bias { Some(&bias[..]) } else { None };
                let p = PackedF32::with_kernel(&w, b, layout, kernel).unwrap();
                let mut scratch = vec![0.0f32; p.scratch_len()];
                let mut got = vec![9.0f32; c.m * c.out_stride];
                p.run(
                    &a,
                    c.a_stride,
                    c.rows.clone(),
                    &mut got,
                    c.out_stride,
                    lo,
                    hi,
                    &mut scratch,
                );
                for (j, (&g, &w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g - w).abs() <= tol[j],
                        "case {i}: {} ({}): row {} col {}: got {g}, want {w}",
                        describe(&c),
                        p.kernel_name(),
                        j / c.out_stride,
                        j % c.out_stride
                    );
                }
            }
        }
    }
}

#[test]
fn packing_errors() {
    let m = CsrMatrix::from_dense(&[1i8, 2, 3, 4], 2, 2, &[true; 4]).unwrap();
    let w = SparseWeights::Csr(m.view().unwrap());
    assert_eq!(
        PackedI8::new(&w, Some(&[1]), 0, I8Layout::B1x4).unwrap_err(),
        SpmmError::Bias {
            expected: 2,
            found: 1
        }
    );
    assert_eq!(
        PackedI8::new(&w, None, 300, I8Layout::B1x4).unwrap_err(),
        SpmmError::ZeroPoint(300)
    );
    let mf = CsrMatrix::from_dense(&[1.0f32, 2.0], 1, 2, &[true; 2]).unwrap();
    let wf = SparseWeights::Csr(mf.view().unwrap());
    assert_eq!(
        PackedF32::new(&wf, Some(&[1.0, 2.0]), F32Layout::B1x1).unwrap_err(),
        SpmmError::Bias {
            expected: 1,
            found: 2
        }
    );
}

/// On a capable host the dispatch table holds the fast kernels, not the generic ones.
#[test]
fn fast_kernels_are_plugged() {
    let t = crate::dispatch::kernels().spmm;
    let names = [
        t.f32_1x1.name,
        t.f32_4x1.name,
        t.i8_1x4.name,
        t.i8_16x4.name,
    ];
    let fast = match Isa::active() {
        Isa::Avx512Vnni => Some("avx512"),
        Isa::Avx2 => Some("avx2::"),
        Isa::Neon | Isa::Dotprod | Isa::I8mm => Some("neon::"),
        _ => None,
    };
    for (i, name) in names.into_iter().enumerate() {
        let fast = match (Isa::active(), i) {
            (Isa::Dotprod | Isa::I8mm, 2..) => Some("dotprod::"),
            _ => fast,
        };
        match fast {
            Some(prefix) => assert!(name.starts_with(prefix), "{name} on {:?}", Isa::active()),
            None => assert!(
                name.starts_with("generic::"),
                "{name} on {:?}",
                Isa::active()
            ),
        }
    }
}

/// Packing costs follow the stored entries, not the declared (untrusted) input width.
#[test]
fn packing_is_bounded_by_entries() {
    let k = u32::MAX as usize;
    let (rp, ci) = ([0u32, 1, 2], [5u32, k as u32 - 1]);
    let wf = SparseWeights::Csr(crate::sparse::Csr::new(2, k, &rp, &ci, &[1.0f32, 2.0]).unwrap());
    for layout in [F32Layout::B1x1, F32Layout::B4x1] {
        let p = PackedF32::new(&wf, None, layout).unwrap();
        assert_eq!(p.kidx, vec![5, k as u32 - 1]);
    }
    let wi = SparseWeights::Csr(crate::sparse::Csr::new(2, k, &rp, &ci, &[1i8, 2]).unwrap());
    for layout in [I8Layout::B1x4, I8Layout::B16x4] {
        let p = PackedI8::new(&wi, None, 0, layout).unwrap();
        assert_eq!(p.blocks(), 2);
    }
}

/// uint8 activations and outputs (legacy asymmetric models) on every kernel.
#[test]
fn u8_matches_dense_reference() {
    let mut rng = Rng(43);
    for i in 0..150 {
        let c = random_case(&mut rng, i);
        let (dense, keep) = sparse_matrix(&mut rng, c.n, c.k, c.block, c.density, |r| r.i8());
        let bsr = BsrMatrix::from_dense(&dense, c.n, c.k, c.block, &keep).unwrap();
        let w = SparseWeights::Bsr(bsr.view().unwrap());
        let wd: Vec<i8> = w.to_dense();
        let zp = rng.below(256) as i32;
        let bias: Vec<i32> = (0..c.n).map(|_| rng.below(20001) as i32 - 10000).collect();
        let mults: Vec<i32> = (0..c.n)
            .map(|_| (1 << 30) + rng.below(1 << 30) as i32)
            .collect();
        let shifts: Vec<i32> = (0..c.n).map(|_| rng.below(14) as i32 - 12).collect();
        let (lo, hi) = if i % 3 == 0 {
            (0, 255)
        } else {
            (rng.below(60) as i32, 150 + rng.below(106) as i32)
        };
        let rq = Requant::new(mults, shifts, rng.below(256) as i32, lo, hi).unwrap();
        let a: Vec<u8> = (0..c.m * c.a_stride)
            .map(|_| rng.below(256) as u8)
            .collect();
        let mut want = vec![7u8; c.m * c.out_stride];
        for m in c.rows.clone() {
            for n in 0..c.n {
                let mut acc = bias[n];
                for k in 0..c.k {
                    acc = acc
                        .wrapping_add(wd[n * c.k + k] as i32 * (a[m * c.a_stride + k] as i32 - zp));
                }
                want[m * c.out_stride + n] = rq.apply(acc, n) as u8;
            }
        }
        for layout in [I8Layout::B1x4, I8Layout::B16x4] {
            for kernel in i8_candidates(layout) {
                let act = crate::gemm::ActQuant::u8(zp);
                let p = PackedI8::with_kernel_act(&w, Some(&bias), act, layout, kernel).unwrap();
                let mut scratch = vec![0u32; p.scratch_len()];
                let mut got = vec![7u8; c.m * c.out_stride];
                p.run_u8(
                    &a,
                    c.a_stride,
                    c.rows.clone(),
                    &mut got,
                    c.out_stride,
                    &rq,
                    &mut scratch,
                );
                if let Some(d) = first_diff(&got, &want, c.out_stride) {
                    panic!("u8 case {i}: {} ({}): {d}", describe(&c), p.kernel_name());
                }
            }
        }
    }
}

/// Weights pruned in 32×4 blocks: the 16×4 layout pairs block rows with the same blocks, and
/// kernels that run pairs together still equal the dense reference (1, 3 and many pixels, a
/// partial last block row, int8 and uint8).
#[test]
fn paired_block_rows_match_dense_reference() {
    let mut rng = Rng(44);
    for (m, k, n) in [(1, 64, 48), (3, 128, 64), (70, 64, 40), (9, 36, 96)] {
        let block = BlockShape::new(32, 4);
        let (dense, keep) = sparse_matrix(&mut rng, n, k, block, 0.3, |r| r.i8());
        let bsr = BsrMatrix::from_dense(&dense, n, k, block, &keep).unwrap();
        let w = SparseWeights::Bsr(bsr.view().unwrap());
        let bias: Vec<i32> = (0..n).map(|_| rng.below(20001) as i32 - 10000).collect();
        let mults: Vec<i32> = (0..n)
            .map(|_| (1 << 30) + rng.below(1 << 30) as i32)
            .collect();
        let shifts: Vec<i32> = (0..n).map(|_| rng.below(12) as i32 - 10).collect();
        for unsigned in [false, true] {
            let zp = rng.below(256) as i32 - if unsigned { 0 } else { 128 };
            let (lo, hi) = if unsigned { (0, 255) } else { (-128, 127) };
            let rq = Requant::new(mults.clone(), shifts.clone(), 3, lo, hi).unwrap();
            let a: Vec<u8> = (0..m * k).map(|_| rng.below(256) as u8).collect();
            let mut want = vec![0u8; m * n];
            for r in 0..m {
                for c in 0..n {
                    let mut acc = bias[c];
                    for j in 0..k {
                        let x = if unsigned {
                            a[r * k + j] as i32
                        } else {
                            a[r * k + j] as i8 as i32
                        };
                        acc = acc.wrapping_add(dense[c * k + j] as i32 * (x - zp));
                    }
                    want[r * n + c] = rq.apply(acc, c) as u8;
                }
            }
            for kernel in i8_candidates(I8Layout::B16x4) {
                let act = if unsigned {
                    crate::gemm::ActQuant::u8(zp)
                } else {
                    crate::gemm::ActQuant::i8(zp)
                };
                let p = PackedI8::with_kernel_act(&w, Some(&bias), act, I8Layout::B16x4, kernel)
                    .unwrap();
                assert!(p.paired[0], "block rows 0 and 1 share their blocks");
                let mut scratch = vec![0u32; p.scratch_len()];
                let mut got = vec![0u8; m * n];
                if unsigned {
                    p.run_u8(&a, k, 0..m, &mut got, n, &rq, &mut scratch);
                } else {
                    let (ai, gi): (&[i8], &mut [i8]) =
                        (bytemuck::cast_slice(&a), bytemuck::cast_slice_mut(&mut got));
                    p.run(ai, k, 0..m, gi, n, &rq, &mut scratch);
                }
                if let Some(d) = first_diff(&got, &want, n) {
                    panic!(
                        "M={m} K={k} N={n} 32x4 blocks unsigned={unsigned} ({}): {d}",
                        p.kernel_name()
                    );
                }
            }
        }
    }
}

/// The coarse kernel's fast requantization (right shifts 1..=22, multipliers ≥ 0, small zero
/// points: what TFLite models have) on int8 outputs, software-pipelined over passes of 8 pixels
/// for paired block rows: pixel counts around the pass, whole and partial last block rows, 16×4
/// and 32×4 blocks, empty and full block rows, every clamp form (int8's whole range, ReLU-like,
/// a lower bound below the zero point).
#[test]
fn coarse_fast_requant_matches_dense_reference() {
    let mut rng = Rng(45);
    let shapes = [
        (8, 64, 16),
        (17, 144, 32),
        (70, 384, 64),
        (9, 36, 48),
        (200, 40, 96),
        (33, 20, 40),
        (16, 8, 32),
    ];
    for (i, &(m, k, n)) in shapes.iter().enumerate() {
        for (b, block) in [BlockShape::new(16, 4), BlockShape::new(32, 4)]
            .into_iter()
            .enumerate()
        {
            let density = [0.0, 0.1, 0.5, 1.0][(i + b) % 4];
            let (dense, keep) = sparse_matrix(&mut rng, n, k, block, density, |r| r.i8());
            let bsr = BsrMatrix::from_dense(&dense, n, k, block, &keep).unwrap();
            let w = SparseWeights::Bsr(bsr.view().unwrap());
            let bias: Vec<i32> = (0..n).map(|_| rng.below(200001) as i32 - 100000).collect();
            let mults: Vec<i32> = (0..n)
                .map(|_| (1 << 30) + rng.below(1 << 30) as i32)
                .collect();
            let shifts: Vec<i32> = (0..n).map(|_| -1 - rng.below(22) as i32).collect();
            let zp = rng.below(256) as i32 - 128;
            let a: Vec<i8> = (0..m * k).map(|_| rng.i8()).collect();
            let ozp = rng.below(41) as i32 - 20;
            for (lo, hi) in [(-128, 127), (ozp, 127), (ozp - 30, 100)] {
                let rq = Requant::new(mults.clone(), shifts.clone(), ozp, lo, hi).unwrap();
                let mut want = vec![0i8; m * n];
                for r in 0..m {
                    for c in 0..n {
                        let mut acc = bias[c];
                        for j in 0..k {
                            acc = acc
                                .wrapping_add(dense[c * k + j] as i32 * (a[r * k + j] as i32 - zp));
                        }
                        want[r * n + c] = rq.apply(acc, c) as i8;
                    }
                }
                for kernel in i8_candidates(I8Layout::B16x4) {
                    let p = PackedI8::with_kernel(&w, Some(&bias), zp, I8Layout::B16x4, kernel)
                        .unwrap();
                    let mut scratch = vec![0u32; p.scratch_len()];
                    let mut got = vec![0i8; m * n];
                    p.run(&a, k, 0..m, &mut got, n, &rq, &mut scratch);
                    if let Some(d) = first_diff(&got, &want, n) {
                        panic!(
                            "M={m} K={k} N={n} {block} density {density} clamp {lo}..={hi} \
                             ({}): {d}",
                            p.kernel_name()
                        );
                    }
                }
            }
        }
    }
}
