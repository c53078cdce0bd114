//! Depthwise convolution on MobileNetV2's 3×3 layers (224×224 input), f32 and int8 (`i8_relu`:
//! with the clamp at the zero point; `i8_relu6`: MobileNetV2's own quantization, output zero
//! point −128 with the clamp at the zero point, so the clamp is int8's whole range), through the
//! dispatched kernel and each enabled tier. Ids:
//! `dwconv/<dtype>/<H>x<W>x<C>s<stride>[/<tier>]`.
//! Throughput counts multiply-adds (`out_h · out_w · C · 9`).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sparq_kernels::depthwise::{DepthwiseF32, DepthwiseKernels, DepthwiseQ};
use sparq_kernels::requant::Requant;
use sparq_kernels::window::{Padding, Window2d, WindowSpec};
use sparq_kernels::Isa;

const LAYERS: &[(usize, usize, usize)] = &[
    (112, 32, 1),
    (112, 96, 2),
    (56, 144, 1),
    (56, 144, 2),
    (28, 192, 1),
    (28, 192, 2),
    (14, 384, 1),
    (14, 576, 2),
    (7, 960, 1),
];

fn window(hw: usize, c: usize, s: usize) -> Window2d {
    Window2d::new(WindowSpec {
        k_h: 3,
        k_w: 3,
        stride_h: s,
        stride_w: s,
        padding: Padding::Same,
        ..WindowSpec::new(1, hw, hw, c, c)
    })
    .unwrap()
}

fn tiers() -> Vec<DepthwiseKernels> {
    [Isa::Scalar, Isa::Avx2, Isa::Avx512Vnni]
        .into_iter()
        .filter_map(DepthwiseKernels::for_isa)
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("dwconv");
    for &(hw, ch, s) in LAYERS {
        let w = window(hw, ch, s);
        let id = format!("{hw}x{hw}x{ch}s{s}");
        g.throughput(Throughput::Elements((w.output_len() * 9) as u64));
        let x: Vec<f32> = (0..w.input_len())
            .map(|i| (i % 13) as f32 * 0.1 - 0.6)
            .collect();
        let wt: Vec<f32> = (0..9 * ch).map(|i| (i % 7) as f32 * 0.1 - 0.3).collect();
        let p = DepthwiseF32::new(w, &wt, None, 0.0, 6.0).unwrap();
        let mut out = vec![0f32; w.output_len()];
        g.bench_function(BenchmarkId::new("f32", &id), |b| {
            b.iter(|| p.run(&x, &mut out, 0..w.output_rows()))
        });
        let xq: Vec<i8> = (0..w.input_len()).map(|i| (i % 251) as i8).collect();
        let wq: Vec<i8> = (0..9 * ch).map(|i| (i % 17) as i8 - 8).collect();
        let rq = Requant::from_real(&vec![0.004; ch], -3, -128, 127).unwrap();
        let pq = DepthwiseQ::new(w, &wq, None, 5, rq).unwrap();
        let mut outq = vec![0i8; w.output_len()];
        g.bench_function(BenchmarkId::new("i8", &id), |b| {
            b.iter(|| pq.run(&xq, &mut outq, 0..w.output_rows()))
        });
        // A fused ReLU (the clamp's lower bound at the zero point), as MobileNetV2's layers.
        let rq_relu = Requant::from_real(&vec![0.004; ch], -3, -3, 127).unwrap();
        let pr = DepthwiseQ::new(w, &wq, None, 5, rq_relu).unwrap();
        g.bench_function(BenchmarkId::new("i8_relu", &id), |b| {
            b.iter(|| pr.run(&xq, &mut outq, 0..w.output_rows()))
        });
        let rq_relu6 = Requant::from_real(&vec![0.004; ch], -128, -128, 127).unwrap();
        let p6 = DepthwiseQ::new(w, &wq, None, 5, rq_relu6).unwrap();
        g.bench_function(BenchmarkId::new("i8_relu6", &id), |b| {
            b.iter(|| p6.run(&xq, &mut outq, 0..w.output_rows()))
        });
        let plain = pq.clone().without_row_kernel();
        if pq.has_row_kernel() {
            g.bench_function(BenchmarkId::new("i8", format!("{id}/pixel-tiles")), |b| {
                b.iter(|| plain.run(&xq, &mut outq, 0..w.output_rows()))
            });
        }
        for k in tiers() {
            let name = k.isa.name();
            g.bench_function(BenchmarkId::new("f32", format!("{id}/{name}")), |b| {
                b.iter(|| (k.f32)(&p, &x, &mut out, 0..w.output_rows()))
            });
            g.bench_function(BenchmarkId::new("i8", format!("{id}/{name}")), |b| {
                b.iter(|| (k.i8)(&pq, &xq, &mut outq, 0..w.output_rows()))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
