//! Dense GEMM benchmarks: int8 vs f32 at MobileNet layer shapes (1×1 convolutions as GEMM, and the
//! classifier), at 256³ and 1024³, plus register-only loops that measure this CPU's int8
//! (`vpdpbusd`) and f32 (FMA) peaks. Ids: `gemm/<dtype>/<M>x<K>x<N>` for the dispatched kernel
//! (`gemm/i8_relu6/…`: int8 with a ReLU6 clamp, the lower bound at the zero point),
//! `gemm/<dtype>/<M>x<K>x<N>/<kernel>` for the other kernels that can run here (`--features` none;
//! `SPARQ_ISA` caps them), `peak/<what>`. Throughput is in MACs (M·N·K elements).
//!
//! `cargo bench -p sparq-kernels --bench gemm -- --warm-up-time 1 --measurement-time 2 'gemm/i8'`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sparq_kernels::dispatch::{f32_gemm_candidates, i8_gemm_candidates, kernels};
use sparq_kernels::gemm::{gemm_f32, gemm_i8, ActQuant, PackedF32, PackedI8};
use sparq_kernels::requant::Requant;

/// (M, K, N): pixels, input channels, output channels.
const SHAPES: &[(usize, usize, usize)] = &[
    (12544, 16, 96),
    (12544, 32, 16),
    (3136, 24, 144),
    (3136, 144, 24),
    (3136, 16, 96),
    (784, 144, 32),
    (196, 384, 64),
    (49, 960, 320),
    (1, 1280, 1000),
    (256, 256, 256),
    (1024, 1024, 1024),
];

fn data_i8(len: usize, seed: u32) -> Vec<i8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as i8
        })
        .collect()
}

fn bench_gemm(c: &mut Criterion) {
    let all = std::env::var_os("SPARQ_BENCH_ALL_KERNELS").is_some();
    let mut g = c.benchmark_group("gemm");
    for &(m, k, n) in SHAPES {
        g.throughput(Throughput::Elements((m * n * k) as u64));
        let shape = format!("{m}x{k}x{n}");
        let a = data_i8(m * k, 1);
        let w = data_i8(n * k, 2);
        let bias: Vec<i32> = data_i8(n, 3).iter().map(|&b| b as i32 * 100).collect();
        let rq = Requant::from_real(&vec![0.0007; n], -5, -128, 127).unwrap();
        let mut out = vec![0i8; m * n];
        let mut i8_kernels = vec![kernels().gemm.i8];
        if all {
            i8_kernels = i8_gemm_candidates();
        }
        for kern in i8_kernels {
            let packed =
                PackedI8::with_kernel(kern, &w, n, k, Some(&bias), ActQuant::i8(-3)).unwrap();
            let id = if std::ptr::eq(kern, kernels().gemm.i8) {
                BenchmarkId::new("i8", &shape)
            } else {
                BenchmarkId::new("i8", format!("{shape}/{}", kern.name))
            };
            g.bench_function(id, |b| {
                b.iter(|| gemm_i8(&a, k, &packed, &rq, &mut out, n, 0..m, 0..n))
            });
        }

        // The dispatched kernel with a fused ReLU6's clamp (lower bound at the zero point), as
        // MobileNets' expansion convolutions run.
        let packed = PackedI8::new(&w, n, k, Some(&bias), ActQuant::i8(-3)).unwrap();
        let rq6 = Requant::from_real(&vec![0.0007; n], -5, -5, 90).unwrap();
        g.bench_function(BenchmarkId::new("i8_relu6", &shape), |b| {
            b.iter(|| gemm_i8(&a, k, &packed, &rq6, &mut out, n, 0..m, 0..n))
        });

        let af: Vec<f32> = a.iter().map(|&x| x as f32 / 64.0).collect();
        let wf: Vec<f32> = w.iter().map(|&x| x as f32 / 64.0).collect();
        let bf: Vec<f32> = bias.iter().map(|&x| x as f32).collect();
        let mut outf = vec![0f32; m * n];
        let mut f32_kernels = vec![kernels().gemm.f32];
        if all {
            f32_kernels = f32_gemm_candidates();
        }
        for kern in f32_kernels {
            let packed = PackedF32::with_kernel(kern, &wf, n, k, Some(&bf)).unwrap();
            let id = if std::ptr::eq(kern, kernels().gemm.f32) {
                BenchmarkId::new("f32", &shape)
            } else {
                BenchmarkId::new("f32", format!("{shape}/{}", kern.name))
            };
            g.bench_function(id, |b| {
                b.iter(|| gemm_f32(&af, k, &packed, 0.0, 6.0, &mut outf, n, 0..m, 0..n))
            });
        }
    }
    g.finish();
}

#[cfg(target_arch = "x86_64")]
mod peak {
    use std::arch::x86_64::*;

    /// Iterations of the register-only loops.
    pub const ITERS: usize = 1 << 16;
    /// Independent accumulators (enough to cover the instruction latency).
    pub const ACCS: usize = 12;

    /// `ITERS × ACCS` `vpdpbusd zmm` (64 MACs each) on registers only.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub fn vpdpbusd(x: __m512i, y: __m512i) -> [__m512i; ACCS] {
        let mut acc = [_mm512_setzero_si512(); ACCS];
        for _ in 0..ITERS {
            for a in acc.iter_mut() {
                *a = _mm512_dpbusd_epi32(*a, x, y);
            }
        }
        acc
    }

    /// `ITERS × ACCS` `vfmadd231ps zmm` (16 MACs each) on registers only.
    #[target_feature(enable = "avx512f,fma")]
    pub fn fma512(x: __m512, y: __m512) -> [__m512; ACCS] {
        let mut acc = [_mm512_setzero_ps(); ACCS];
        for _ in 0..ITERS {
            for a in acc.iter_mut() {
                *a = _mm512_fmadd_ps(x, y, *a);
            }
        }
        acc
    }

    /// `ITERS × ACCS` `vfmadd231ps ymm` (8 MACs each).
    #[target_feature(enable = "avx2,fma")]
    pub fn fma256(x: __m256, y: __m256) -> [__m256; ACCS] {
        let mut acc = [_mm256_setzero_ps(); ACCS];
        for _ in 0..ITERS {
            for a in acc.iter_mut() {
                *a = _mm256_fmadd_ps(x, y, *a);
            }
        }
        acc
    }
}

#[cfg(target_arch = "x86_64")]
fn bench_peak(c: &mut Criterion) {
    use std::arch::x86_64::*;
    let mut g = c.benchmark_group("peak");
    let avx512 = std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vnni");
    if avx512 {
        g.throughput(Throughput::Elements((peak::ITERS * peak::ACCS * 64) as u64));
        g.bench_function("i8_vpdpbusd_zmm", |b| {
            // SAFETY: the CPU has AVX-512 F/BW/VNNI (checked above).
            b.iter(|| unsafe {
                peak::vpdpbusd(
                    _mm512_set1_epi8(3),
                    std::hint::black_box(_mm512_set1_epi8(5)),
                )
            })
        });
        g.throughput(Throughput::Elements((peak::ITERS * peak::ACCS * 16) as u64));
        g.bench_function("f32_fma_zmm", |b| {
            // SAFETY: the CPU has AVX-512F and FMA (checked above).
            b.iter(|| unsafe {
                peak::fma512(
                    _mm512_set1_ps(1.0),
                    std::hint::black_box(_mm512_set1_ps(0.5)),
                )
            })
        });
    }
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        g.throughput(Throughput::Elements((peak::ITERS * peak::ACCS * 8) as u64));
        g.bench_function("f32_fma_ymm", |b| {
            // SAFETY: the CPU has AVX2 and FMA (checked above).
            b.iter(|| unsafe {
                peak::fma256(
                    _mm256_set1_ps(1.0),
                    std::hint::black_box(_mm256_set1_ps(0.5)),
                )
            })
        });
    }
    g.finish();
}

#[cfg(not(target_arch = "x86_64"))]
fn bench_peak(_: &mut Criterion) {}

/// Requantization of a row of int32 accumulators (per-channel), every kernel that can run here:
/// `requant/<kernel>/<len>`, throughput in elements.
fn bench_requant(c: &mut Criterion) {
    use sparq_kernels::dispatch::requant_row_candidates;
    let mut g = c.benchmark_group("requant");
    let len = 4096;
    let acc: Vec<i32> = data_i8(len, 9).iter().map(|&x| x as i32 * 1000).collect();
    let reals: Vec<f64> = (0..len).map(|i| 0.0003 + i as f64 * 1e-7).collect();
    let rq = Requant::from_real(&reals, 3, -128, 127).unwrap();
    let mut out = vec![0u8; len];
    g.throughput(Throughput::Elements(len as u64));
    for t in requant_row_candidates() {
        g.bench_function(BenchmarkId::new(t.row_name, len), |b| {
            // SAFETY: `out` holds len bytes and the Requant has len channels.
            b.iter(|| unsafe { (t.row)(&acc, 0, &rq, out.as_mut_ptr()) })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_gemm, bench_peak, bench_requant);
criterion_main!(benches);
