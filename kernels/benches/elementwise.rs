//! Element-wise, activation and quantize kernels at MobileNet layer sizes.
//! Ids: `elementwise/<op>/<shape>/<kernel name>`.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sparq_kernels::activation::{self, UnaryF32};
use sparq_kernels::elementwise::{
    Activation, BinaryOp, BroadcastPlan, ElementwiseKernels, QParams,
};
use sparq_kernels::Isa;

fn tiers() -> Vec<Isa> {
    [Isa::Scalar, Isa::Avx2, Isa::Avx512Vnni, Isa::Neon]
        .into_iter()
        .filter(|i| i.enabled())
        .collect()
}

fn binary(c: &mut Criterion) {
    let mut g = c.benchmark_group("elementwise");
    // MobileNetV2 residual ADD (same shape) and a per-channel MUL (broadcast).
    let cases: [(&str, BinaryOp, Vec<usize>, Vec<usize>); 3] = [
        (
            "add",
            BinaryOp::Add,
            vec![1, 56, 56, 24],
            vec![1, 56, 56, 24],
        ),
        ("mul", BinaryOp::Mul, vec![1, 28, 28, 144], vec![144]),
        // MobileNetV3 squeeze-excite scale: few channels, many rows.
        ("mul", BinaryOp::Mul, vec![1, 56, 56, 16], vec![1, 1, 1, 16]),
    ];
    for (name, op, sa, sb) in cases {
        let plan = BroadcastPlan::new("BENCH", &sa, &sb).unwrap();
        let (na, nb) = plan.operand_lens();
        let n = plan.len();
        g.throughput(Throughput::Elements(n as u64));
        let shape = format!("{sa:?}x{sb:?}").replace(' ', "");
        let af: Vec<f32> = (0..na).map(|i| (i % 97) as f32 * 0.1).collect();
        let bf: Vec<f32> = (0..nb).map(|i| (i % 13) as f32 * 0.3).collect();
        let ai: Vec<i8> = (0..na).map(|i| (i % 251) as u8 as i8).collect();
        let bi: Vec<i8> = (0..nb).map(|i| (i % 83) as u8 as i8).collect();
        let q = sparq_kernels::elementwise::prepare_binary_q::<i8>(
            op,
            QParams::new(0.05, 3),
            QParams::new(0.02, -7),
            QParams::new(0.07, 1),
            Activation::None,
        )
        .unwrap();
        let mut of = vec![0.0f32; n];
        let mut oi = vec![0i8; n];
        let mut seen: Vec<&str> = Vec::new();
        for isa in tiers() {
            let k = ElementwiseKernels::for_isa(isa);
            let act = (f32::NEG_INFINITY, f32::INFINITY);
            if !seen.contains(&k.binary_f32.0) {
                seen.push(k.binary_f32.0);
                g.bench_function(
                    BenchmarkId::new(format!("{name}_f32/{shape}"), k.binary_f32.0),
                    |b| {
                        b.iter(|| {
                            (k.binary_f32.1)(
                                op,
                                act,
                                &plan,
                                black_box(&af),
                                black_box(&bf),
                                &mut of,
                                0,
                            )
                        })
                    },
                );
            }
            if !seen.contains(&k.binary_i8.0) {
                seen.push(k.binary_i8.0);
                g.bench_function(
                    BenchmarkId::new(format!("{name}_qs8/{shape}"), k.binary_i8.0),
                    |b| {
                        b.iter(|| {
                            (k.binary_i8.1)(&q, &plan, black_box(&ai), black_box(&bi), &mut oi, 0)
                        })
                    },
                );
            }
        }
    }
    g.finish();
}

fn unary(c: &mut Criterion) {
    let mut g = c.benchmark_group("activation");
    let n = 14 * 14 * 576; // MobileNetV3 hard-swish after an expansion
    g.throughput(Throughput::Elements(n as u64));
    let xf: Vec<f32> = (0..n).map(|i| (i % 200) as f32 * 0.05 - 5.0).collect();
    let xi: Vec<i8> = (0..n).map(|i| (i % 256) as u8 as i8).collect();
    let mut of = vec![0.0f32; n];
    let mut oi = vec![0i8; n];
    g.bench_function("hard_swish_f32/1x14x14x576", |b| {
        b.iter(|| activation::unary_f32(UnaryF32::HardSwish, black_box(&xf), &mut of))
    });
    let lut =
        activation::prepare_hard_swish_q::<i8>(QParams::new(0.05, 3), QParams::new(0.04, -20))
            .unwrap();
    g.bench_function("hard_swish_qs8_lut/1x14x14x576", |b| {
        b.iter(|| lut.apply(black_box(&xi), &mut oi))
    });
    let sm = activation::prepare_softmax_q::<i8>(
        1.0,
        QParams::new(0.1, 0),
        QParams::new(1.0 / 256.0, -128),
    )
    .unwrap();
    let xs: Vec<i8> = (0..1000).map(|i| (i % 256) as u8 as i8).collect();
    let mut os = vec![0i8; 1000];
    g.throughput(Throughput::Elements(1000));
    g.bench_function("softmax_qs8/1x1000", |b| {
        b.iter(|| activation::softmax_q(&sm, black_box(&xs), &mut os, 1000))
    });
    let n = 224 * 224 * 3;
    let xq: Vec<f32> = (0..n).map(|i| (i % 255) as f32 / 127.5 - 1.0).collect();
    let mut oq = vec![0i8; n];
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("quantize_f32_qs8/1x224x224x3", |b| {
        b.iter(|| {
            sparq_kernels::quantize::quantize_f32(
                QParams::new(1.0 / 128.0, 0),
                black_box(&xq),
                &mut oq,
            )
        })
    });
    g.finish();
}

criterion_group!(benches, binary, unary);
criterion_main!(benches);
