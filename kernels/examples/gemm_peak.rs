//! Best-of-N timing of the dispatched GEMM kernels against the register-only peaks, for machines
//! shared with other work (the minimum over many short runs approximates an idle core better
//! than a mean). Prints G MAC/s, % of the peak of the same dtype, and the int8 / f32 ratio.
//!
//! `cargo run --release -p sparq-kernels --example gemm_peak [seconds] [relu] [MxKxN]...`
//! (default 1 second per measurement, every shape of the list; named shapes may be any M×K×N;
//! `relu`: int8 outputs clamped at the zero point, as a fused ReLU / ReLU6 does).

use std::time::Instant;

use sparq_kernels::dispatch::kernels;
use sparq_kernels::gemm::{gemm_f32, gemm_i8, ActQuant, PackedF32, PackedI8};
use sparq_kernels::requant::Requant;

const SHAPES: &[(usize, usize, usize)] = &[
    (3136, 16, 96),
    (784, 144, 32),
    // MobileNetV2 1×1 convolutions bound by the requantization (small K).
    (12544, 16, 96),
    (12544, 32, 16),
    (3136, 24, 144),
    (3136, 144, 24),
    (196, 384, 64),
    (49, 960, 320),
    (1, 1280, 1000),
    (256, 256, 256),
    (1024, 1024, 1024),
];

/// Smallest wall time of `f` over runs totalling about `budget` seconds (at least 3 runs).
fn best(budget: f64, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut best = f64::MAX;
    let mut n = 0;
    while n < 3 || start.elapsed().as_secs_f64() < budget {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
        n += 1;
    }
    best
}

#[cfg(target_arch = "x86_64")]
fn peaks(budget: f64) -> Option<(f64, f64)> {
    use std::arch::x86_64::*;
    if !(is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni")) {
        return None;
    }
    const ITERS: usize = 1 << 14;
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    fn dp(x: __m512i, y: __m512i) -> [__m512i; 12] {
        let mut acc = [_mm512_setzero_si512(); 12];
        for _ in 0..ITERS {
            for a in acc.iter_mut() {
                *a = _mm512_dpbusd_epi32(*a, x, y);
            }
        }
        acc
    }
    #[target_feature(enable = "avx512f,fma")]
    fn fm(x: __m512, y: __m512) -> [__m512; 12] {
        let mut acc = [_mm512_setzero_ps(); 12];
        for _ in 0..ITERS {
            for a in acc.iter_mut() {
                *a = _mm512_fmadd_ps(x, y, *a);
            }
        }
        acc
    }
    // SAFETY: the CPU has AVX-512 F/BW/VNNI (checked above).
    let ti = best(budget, || unsafe {
        std::hint::black_box(dp(
            _mm512_set1_epi8(1),
            std::hint::black_box(_mm512_set1_epi8(2)),
        ));
    });
    // SAFETY: as above (FMA comes with every AVX-512 CPU).
    let tf = best(budget, || unsafe {
        std::hint::black_box(fm(
            _mm512_set1_ps(1.0),
            std::hint::black_box(_mm512_set1_ps(0.5)),
        ));
    });
    let macs = (ITERS * 12) as f64;
    Some((macs * 64.0 / ti / 1e9, macs * 16.0 / tf / 1e9))
}

#[cfg(not(target_arch = "x86_64"))]
fn peaks(_: f64) -> Option<(f64, f64)> {
    None
}

fn main() {
    let budget: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let picked: Vec<(usize, usize, usize)> = std::env::args()
        .skip(2)
        .filter_map(|s| {
            let d: Vec<usize> = s.split('x').filter_map(|v| v.parse().ok()).collect();
            (d.len() == 3 && d.iter().all(|&v| v > 0)).then(|| (d[0], d[1], d[2]))
        })
        .collect();
    let shapes = if picked.is_empty() {
        SHAPES
    } else {
        &picked[..]
    };
    let relu = std::env::args().skip(2).any(|a| a == "relu");
    let k = kernels();
    println!("kernels: {} / {}", k.gemm.i8.name, k.gemm.f32.name);
    let p = peaks(budget);
    if let Some((pi, pf)) = p {
        println!("peak: int8 vpdpbusd {pi:.1} G MAC/s, f32 FMA {pf:.1} G MAC/s");
    }
    println!(
        "{:>16} {:>10} {:>7} {:>10} {:>7} {:>6}",
        "MxKxN", "i8 GMAC/s", "%peak", "f32 GMAC/s", "%peak", "i8/f32"
    );
    for &(m, kk, n) in shapes {
        let mut x = 12345u32;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as i8
        };
        let a: Vec<i8> = (0..m * kk).map(|_| rnd()).collect();
        let w: Vec<i8> = (0..n * kk).map(|_| rnd()).collect();
        let bias: Vec<i32> = (0..n).map(|i| i as i32 * 7 - 300).collect();
        let lo = if relu { -5 } else { -128 };
        let rq = Requant::from_real(&vec![0.0007; n], -5, lo, 127).unwrap();
        let packed = PackedI8::new(&w, n, kk, Some(&bias), ActQuant::i8(-3)).unwrap();
        let mut out = vec![0i8; m * n];
        let ti = best(budget, || {
            gemm_i8(&a, kk, &packed, &rq, &mut out, n, 0..m, 0..n)
        });
        let af: Vec<f32> = a.iter().map(|&v| v as f32 / 64.0).collect();
        let wf: Vec<f32> = w.iter().map(|&v| v as f32 / 64.0).collect();
        let bf: Vec<f32> = bias.iter().map(|&v| v as f32).collect();
        let pf = PackedF32::new(&wf, n, kk, Some(&bf)).unwrap();
        let mut outf = vec![0f32; m * n];
        let tf = best(budget, || {
            gemm_f32(&af, kk, &pf, 0.0, 6.0, &mut outf, n, 0..m, 0..n)
        });
        let macs = (m * n * kk) as f64;
        let (gi, gf) = (macs / ti / 1e9, macs / tf / 1e9);
        let (pi, pfp) = p.map_or((f64::NAN, f64::NAN), |(a, b)| {
            (100.0 * gi / a, 100.0 * gf / b)
        });
        println!(
            "{:>16} {gi:>10.1} {pi:>6.0}% {gf:>10.1} {pfp:>6.0}% {:>5.2}x",
            format!("{m}x{kk}x{n}"),
            gi / gf
        );
    }
}
