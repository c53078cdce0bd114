//! Sparse × dense vs our dense GEMM on MobileNetV2-like 1×1 convolutions and the 1280→1000 FC,
//! NHWC in → NHWC out (int8 outputs requantized), one thread.
//!
//! Ids: `dense/<dtype>/<M>x<K>x<N>` and `spmm/<dtype>/<M>x<K>x<N>/<format>/<sparsity %>`, formats
//! `csr1x1`, `bsr4x1` (f32) and `bsr1x4`, `bsr16x4` (int8). Weights are random, magnitude-pruned
//! to the sparsity in the format's blocks. Example:
//! `cargo bench -p sparq-kernels --bench spmm -- --warm-up-time 1 --measurement-time 2 'i8/196x576'`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sparq_kernels::gemm::{
    gemm_f32, gemm_i8, ActQuant, PackedF32 as DenseF32, PackedI8 as DenseI8,
};
use sparq_kernels::prune::{prune, Norm, Pattern};
use sparq_kernels::requant::Requant;
use sparq_kernels::sparse::{BlockShape, BsrMatrix, SparseWeights};
use sparq_kernels::spmm::{F32Layout, I8Layout, PackedF32, PackedI8};
use std::hint::black_box;

const SHAPES: [(usize, usize, usize); 6] = [
    (3136, 24, 144),
    (784, 144, 32),
    (196, 384, 64),
    (196, 576, 96),
    (49, 960, 320),
    (1, 1280, 1000),
];
const SPARSITIES: [u32; 5] = [50, 70, 80, 90, 95];

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
    fn f32(&mut self) -> f32 {
        self.next() as f32 / (1u64 << 31) as f32 - 1.0
    }
    fn i8(&mut self) -> i8 {
        ((self.next() % 255) as i32 - 127) as i8
    }
}

fn bench(c: &mut Criterion) {
    let mut rng = Lcg(1);
    for &(m, k, n) in &SHAPES {
        let shape = format!("{m}x{k}x{n}");
        let mut g = c.benchmark_group("spmm");
        g.throughput(Throughput::Elements((m * k * n) as u64));
        // f32
        let a: Vec<f32> = (0..m * k).map(|_| rng.f32()).collect();
        let w: Vec<f32> = (0..n * k).map(|_| rng.f32()).collect();
        let bias: Vec<f32> = (0..n).map(|_| rng.f32()).collect();
        let mut out = vec![0.0f32; m * n];
        let dense = DenseF32::new(&w, n, k, Some(&bias)).unwrap();
        g.bench_function(BenchmarkId::new("dense", format!("f32/{shape}")), |b| {
            b.iter(|| gemm_f32(black_box(&a), k, &dense, 0.0, 6.0, &mut out, n, 0..m, 0..n))
        });
        for (fmt, layout, blk) in [
            ("csr1x1", F32Layout::B1x1, (1, 1)),
            ("bsr4x1", F32Layout::B4x1, (4, 1)),
        ] {
            for &s in &SPARSITIES {
                let shape_b = BlockShape::new(blk.0, blk.1);
                let mask = prune(
                    &w,
                    n,
                    k,
                    s as f32 / 100.0,
                    Pattern::Block {
                        shape: shape_b,
                        norm: Norm::L1,
                    },
                )
                .unwrap();
                let bsr = BsrMatrix::from_dense(&w, n, k, shape_b, &mask).unwrap();
                let p = PackedF32::new(
                    &SparseWeights::Bsr(bsr.view().unwrap()),
                    Some(&bias),
                    layout,
                )
                .unwrap();
                let mut scratch = vec![0.0f32; p.scratch_len()];
                g.bench_function(
                    BenchmarkId::new("spmm", format!("f32/{shape}/{fmt}/{s}")),
                    |b| {
                        b.iter(|| {
                            p.run(black_box(&a), k, 0..m, &mut out, n, 0.0, 6.0, &mut scratch)
                        })
                    },
                );
            }
        }
        // int8
        let a: Vec<i8> = (0..m * k).map(|_| rng.i8()).collect();
        let w: Vec<i8> = (0..n * k).map(|_| rng.i8()).collect();
        let bias: Vec<i32> = (0..n).map(|_| (rng.next() % 2001) as i32 - 1000).collect();
        let mults: Vec<i32> = (0..n)
            .map(|_| (1 << 30) + (rng.next() % (1 << 30)) as i32)
            .collect();
        let rq = Requant::new(mults, vec![-9; n], -3, -128, 127).unwrap();
        let mut out = vec![0i8; m * n];
        let dense = DenseI8::new(&w, n, k, Some(&bias), ActQuant::i8(5)).unwrap();
        g.bench_function(BenchmarkId::new("dense", format!("i8/{shape}")), |b| {
            b.iter(|| gemm_i8(black_box(&a), k, &dense, &rq, &mut out, n, 0..m, 0..n))
        });
        for (fmt, layout, blk) in [
            ("bsr1x4", I8Layout::B1x4, (1, 4)),
            ("bsr16x4", I8Layout::B16x4, (16, 4)),
        ] {
            for &s in &SPARSITIES {
                let shape_b = BlockShape::new(blk.0, blk.1);
                let mask = prune(
                    &w,
                    n,
                    k,
                    s as f32 / 100.0,
                    Pattern::Block {
                        shape: shape_b,
                        norm: Norm::L1,
                    },
                )
                .unwrap();
                let bsr = BsrMatrix::from_dense(&w, n, k, shape_b, &mask).unwrap();
                let p = PackedI8::new(
                    &SparseWeights::Bsr(bsr.view().unwrap()),
                    Some(&bias),
                    5,
                    layout,
                )
                .unwrap();
                let mut scratch = vec![0u32; p.scratch_len()];
                g.bench_function(
                    BenchmarkId::new("spmm", format!("i8/{shape}/{fmt}/{s}")),
                    |b| b.iter(|| p.run(black_box(&a), k, 0..m, &mut out, n, &rq, &mut scratch)),
                );
            }
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
