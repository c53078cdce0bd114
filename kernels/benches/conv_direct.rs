//! Direct convolution for few input channels on the first layers of common CNNs (NHWC, SAME),
//! int8 (`i8_relu6`: clamp above the zero point, per-channel) and f32. Ids:
//! `conv_direct/<dtype>/<H>x<W>x<C>k<K>s<S>o<O>`. Throughput counts multiply-adds
//! (`out_h · out_w · O · K·K·C`).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sparq_kernels::conv::direct::{DirectF32, DirectI8};
use sparq_kernels::requant::Requant;
use sparq_kernels::window::{Padding, Window2d, WindowSpec};

/// (H = W, C, K, stride, O): MobileNetV1/V2/V3 and EfficientNet (224, 3×3 s2), ResNet (7×7 s2,
/// 64), a 3×3 s1 stem on a 96×96 grayscale image.
const LAYERS: &[(usize, usize, usize, usize, usize)] = &[
    (224, 3, 3, 2, 32),
    (224, 3, 3, 2, 16),
    (224, 3, 7, 2, 64),
    (96, 1, 3, 1, 24),
];

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("conv_direct");
    for &(hw, ch, k, s, o) in LAYERS {
        let w = Window2d::new(WindowSpec {
            k_h: k,
            k_w: k,
            stride_h: s,
            stride_w: s,
            padding: Padding::Same,
            ..WindowSpec::new(1, hw, hw, ch, o)
        })
        .unwrap();
        let id = format!("{hw}x{hw}x{ch}k{k}s{s}o{o}");
        let kk = k * k * ch;
        g.throughput(Throughput::Elements((w.output_pixels() * o * kk) as u64));
        let px = 0..w.output_pixels();
        let xq: Vec<i8> = (0..w.input_len()).map(|i| (i % 251) as i8).collect();
        let wq: Vec<i8> = (0..o * kk).map(|i| (i % 17) as i8 - 8).collect();
        let reals: Vec<f64> = (0..o).map(|i| 0.002 + 0.0001 * i as f64).collect();
        let rq = Requant::from_real(&reals, -128, -128, 127).unwrap();
        let Some(pq) = DirectI8::new(w, &wq, None, 5, rq).unwrap() else {
            println!("skipped: no direct kernel on this CPU");
            return;
        };
        let mut outq = vec![0i8; w.output_len()];
        let mut sq = vec![0i8; pq.scratch_len()];
        g.bench_function(BenchmarkId::new("i8_relu6", &id), |b| {
            b.iter(|| pq.run(&xq, px.clone(), &mut outq, &mut sq))
        });
        let x: Vec<f32> = (0..w.input_len())
            .map(|i| (i % 13) as f32 * 0.1 - 0.6)
            .collect();
        let wt: Vec<f32> = (0..o * kk).map(|i| (i % 7) as f32 * 0.1 - 0.3).collect();
        let p = DirectF32::new(w, &wt, None, 0.0, 6.0).unwrap().unwrap();
        let mut out = vec![0f32; w.output_len()];
        let mut sf = vec![0f32; p.scratch_len()];
        g.bench_function(BenchmarkId::new("f32", &id), |b| {
            b.iter(|| p.run(&x, px.clone(), &mut out, &mut sf))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
