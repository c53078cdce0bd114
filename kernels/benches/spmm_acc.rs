//! The raw-accumulator mode of the int8 sparse kernels (`PackedI8::run_acc`, what an int8
//! FULLY_CONNECTED with sparse weights runs on) against the dense raw-accumulator GEMM
//! (`gemm_i8_acc`) on fully-connected shapes, int32 accumulators out, one thread, thread CPU
//! time as in `benches/spmm.rs`.
//!
//! Ids: `spmm_acc/dense/<M>x<K>x<N>` and `spmm_acc/spmm/<M>x<K>x<N>/<format>/<sparsity %>`.
//! Example: `cargo bench -p sparq-kernels --bench spmm_acc -- --warm-up-time 1
//! --measurement-time 2 '1x1280x1000'`

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sparq_kernels::gemm::{gemm_i8_acc, ActQuant, PackedI8 as DenseI8};
use sparq_kernels::prune::{prune, Norm, Pattern};
use sparq_kernels::sparse::{BlockShape, BsrMatrix, SparseWeights};
use sparq_kernels::spmm::{I8Layout, PackedI8};
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

/// Classifier heads: MobileNetV2 (1280 → 1000), MobileNetV3-Small (576 → 1024, 1024 → 1000),
/// a batch of 16 rows, and 196 rows (a token-wise layer; the shape of `benches/spmm.rs`'s
/// 196x576x96 1×1 convolution, for the requantizing kernels' numbers).
const SHAPES: [(usize, usize, usize); 5] = [
    (1, 1280, 1000),
    (1, 576, 1024),
    (1, 1024, 1000),
    (16, 1280, 1000),
    (196, 576, 96),
];
const SPARSITIES: [u32; 3] = [70, 90, 95];

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
    fn i8(&mut self) -> i8 {
        ((self.next() % 255) as i32 - 127) as i8
    }
}

fn bench(c: &mut Criterion<ThreadCpu>) {
    let mut rng = Lcg(1);
    for &(m, k, n) in &SHAPES {
        let shape = format!("{m}x{k}x{n}");
        let mut g = c.benchmark_group("spmm_acc");
        g.throughput(Throughput::Elements((m * k * n) as u64));
        let a: Vec<i8> = (0..m * k).map(|_| rng.i8()).collect();
        let w: Vec<i8> = (0..n * k).map(|_| rng.i8()).collect();
        let bias: Vec<i32> = (0..n).map(|_| (rng.next() % 2001) as i32 - 1000).collect();
        let mut acc = vec![0i32; m * n];
        let dense = DenseI8::new(&w, n, k, Some(&bias), ActQuant::i8(5)).unwrap();
        g.bench_function(BenchmarkId::new("dense", &shape), |b| {
            b.iter(|| {
                gemm_i8_acc(black_box(&a), k, &dense, 0..m, 0..n, |r, c0, v| {
                    acc[r * n + c0..][..v.len()].copy_from_slice(v)
                })
            })
        });
        for (fmt, layout, blk) in [
            ("bsr1x4", I8Layout::B1x4, (1, 4)),
            ("bsr16x4", I8Layout::B16x4, (16, 4)),
            ("bsr32x4", I8Layout::B16x4, (32, 4)),
        ] {
            for &s in &SPARSITIES {
                let shape_b = BlockShape::new(blk.0, blk.1);
                let pattern = Pattern::Block {
                    shape: shape_b,
                    norm: Norm::L1,
                };
                let mask = prune(&w, n, k, s as f32 / 100.0, pattern).unwrap();
                let bsr = BsrMatrix::from_dense(&w, n, k, shape_b, &mask).unwrap();
                let sw = SparseWeights::Bsr(bsr.view().unwrap());
                let p = PackedI8::new(&sw, Some(&bias), 5, layout).unwrap();
                let mut scratch = vec![0u32; p.acc_scratch_len()];
                let id = format!("{shape}/{fmt}/{s}");
                g.bench_function(BenchmarkId::new("spmm", id), |b| {
                    b.iter(|| p.run_acc(black_box(&a), k, 0..m, 0..n, &mut acc, n, &mut scratch))
                });
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
