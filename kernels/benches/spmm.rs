//! Sparse × dense vs our dense GEMM on MobileNetV2-like 1×1 convolutions and the 1280→1000 FC,
//! NHWC in → NHWC out (int8 outputs requantized), one thread.
//!
//! Time is the calling thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), not wall time, so that
//! other processes sharing the cores do not skew the sparse/dense ratios the dense-or-sparse
//! decision is calibrated from.
//!
//! Ids: `dense/<dtype>/<M>x<K>x<N>` and `spmm/<dtype>/<M>x<K>x<N>/<format>/<sparsity %>`, formats
//! `csr1x1`, `bsr4x1` (f32) and `bsr1x4`, `bsr16x4`, `bsr32x4` (int8; 32×4 blocks run on the
//! 16x4 layout, two block rows at a time). Weights are random, magnitude-pruned to the sparsity
//! in the format's blocks; int8 also at 100 % (no weights: each kernel's fixed work). Example:
//! `cargo bench -p sparq-kernels --bench spmm -- --warm-up-time 1 --measurement-time 2 'i8/196x576'`

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sparq_kernels::gemm::{
    gemm_f32, gemm_i8, ActQuant, PackedF32 as DenseF32, PackedI8 as DenseI8,
};
use sparq_kernels::prune::{prune, Norm, Pattern};
use sparq_kernels::requant::Requant;
use sparq_kernels::sparse::{BlockShape, BsrMatrix, SparseWeights};
use sparq_kernels::spmm::{F32Layout, I8Layout, PackedF32, PackedI8};
use std::hint::black_box;

/// Thread CPU time in nanoseconds.
struct ThreadCpu;

#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
}

fn thread_cpu_ns() -> u64 {
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `ts` is a valid timespec for the call to write; Linux x86-64/aarch64 layout.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.sec as u64 * 1_000_000_000 + ts.nsec as u64
}

struct NsFormatter;

impl ValueFormatter for NsFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (div, unit) = if typical < 1e3 {
            (1.0, "ns")
        } else if typical < 1e6 {
            (1e3, "µs")
        } else {
            (1e6, "ms")
        };
        values.iter_mut().for_each(|v| *v /= div);
        unit
    }
    fn scale_throughputs(&self, _: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        let n = match *t {
            Throughput::Elements(n) | Throughput::Bytes(n) | Throughput::BytesDecimal(n) => n,
        } as f64;
        values.iter_mut().for_each(|v| *v = n / *v);
        "elem/ns (cpu)"
    }
    fn scale_for_machines(&self, _: &mut [f64]) -> &'static str {
        "ns"
    }
}

impl Measurement for ThreadCpu {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, i: u64) -> u64 {
        thread_cpu_ns() - i
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &NsFormatter
    }
}

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

fn bench(c: &mut Criterion<ThreadCpu>) {
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
            ("bsr32x4", I8Layout::B16x4, (32, 4)),
        ] {
            // 100 %: no weights at all, the kernel's fixed work alone (activation packing,
            // requantization, narrowing and stores), the floor of its sparse/dense ratio.
            for &s in SPARSITIES.iter().chain(&[100]) {
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

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = bench
}
criterion_main!(benches);
