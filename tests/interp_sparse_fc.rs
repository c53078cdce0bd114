//! int8 / uint8 FULLY_CONNECTED with weights stored sparse runs on the sparse kernels'
//! raw-accumulator mode and gives exactly what the dense kernel gives (TFLite's f64 epilogue on
//! the same int32 accumulators): each layer prepared with `SparseRoute::Sparse` and with
//! `SparseRoute::Dense` on 1, 2 and 3 threads, over batch sizes that take the column split (one
//! row, a classifier head) and the row split, with every block format (CSR, 1×4, 16×4, 32×4 and
//! blocks re-cut from other shapes). `SparseRoute::Auto` routes exactly where `prefer_sparse`
//! says it pays, and the operator reports the kernel it runs.

mod common;

use common::tensor;
use sparq::{Interpreter, Model, Options, SparseRoute};
use sparq_kernels::sparse::BlockShape;
use sparq_kernels::spmm::{prefer_sparse, Dtype};
use sparq_schema::{
    Activation, DType, ModelDef, OpDef, OpKind, OpOptions, Quantization, SparseDef, SparseFormat,
};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
    fn below(&mut self, n: u32) -> u32 {
        self.next() % n
    }
}

struct Layer {
    m: usize,
    k: usize,
    n: usize,
    format: SparseFormat,
    /// Percent of blocks kept.
    keep: u32,
    unsigned: bool,
    act: Activation,
    per_channel: bool,
}

impl Layer {
    fn what(&self) -> String {
        format!(
            "FC {}x{}x{} {:?} keep {}% {} {:?} {}",
            self.m,
            self.k,
            self.n,
            self.format,
            self.keep,
            if self.unsigned { "uint8" } else { "int8" },
            self.act,
            if self.per_channel {
                "per-channel"
            } else {
                "per-tensor"
            }
        )
    }

    /// The one-operator model and its input bytes.
    fn build(&self, rng: &mut Rng) -> (ModelDef, Vec<u8>) {
        let (m, k, n) = (self.m, self.k, self.n);
        let (br, bc) = self.format.block();
        let nbc = k.div_ceil(bc);
        let kept: Vec<bool> = (0..n.div_ceil(br) * nbc)
            .map(|_| rng.below(100) < self.keep)
            .collect();
        let mut dense = vec![0u8; n * k];
        for r in 0..n {
            for c in 0..k {
                if kept[(r / br) * nbc + c / bc] {
                    dense[r * k + c] = (rng.below(255) as i32 - 127) as i8 as u8;
                }
            }
        }
        let w_scales: Vec<f32> = (0..if self.per_channel { n } else { 1 })
            .map(|_| 0.002 + rng.below(100) as f32 * 1e-4)
            .collect();
        let mut w = tensor("w", &[n, k], DType::I8);
        w.quant = Some(Quantization {
            scales: w_scales.clone(),
            zero_points: vec![0; w_scales.len()],
            axis: self.per_channel.then_some(0),
        });
        w.sparse = Some(SparseDef::encode(&dense, n, k, 1, self.format));
        let adt = if self.unsigned { DType::U8 } else { DType::I8 };
        let (in_zp, out_zp) = if self.unsigned { (131, 120) } else { (-5, 3) };
        let mut x = tensor("x", &[m, k], adt);
        x.quant = Some(Quantization::per_tensor(0.05, in_zp));
        let mut b = tensor("b", &[n], DType::I32);
        b.data = Some(
            (0..n)
                .flat_map(|_| (rng.below(40001) as i32 - 20000).to_le_bytes())
                .collect(),
        );
        let mut y = tensor("y", &[m, n], adt);
        y.quant = Some(Quantization::per_tensor(0.3, out_zp));
        let def = ModelDef {
            tensors: vec![x, w, b, y],
            operators: vec![OpDef {
                kind: OpKind::FullyConnected,
                options: OpOptions::FullyConnected {
                    activation: self.act,
                    keep_num_dims: false,
                    asymmetric_quantize_inputs: false,
                },
                inputs: vec![0, 1, 2],
                outputs: vec![3],
            }],
            inputs: vec![0],
            outputs: vec![3],
            metadata: Default::default(),
        };
        let input = (0..m * k).map(|_| rng.next() as u8).collect();
        (def, input)
    }
}

/// The stored density of the weight (tensor 1) as the interpreter judges it: stored blocks.
fn density(def: &ModelDef) -> f32 {
    let model = Model::from_def(def).expect("model");
    let view = model.sparse(1).expect("sparse weight");
    (1.0 - view.sparsity()) as f32
}

/// Output bytes and the operator's kernel name (`None`: dense).
fn run(
    def: &ModelDef,
    input: &[u8],
    route: SparseRoute,
    threads: usize,
) -> (Vec<u8>, Option<&'static str>) {
    let model = Model::from_def(def).expect("model");
    let opts = Options {
        threads,
        sparse: route,
        ..Options::default()
    };
    let mut it = Interpreter::new(&model, opts).expect("prepare");
    let kernel = it.kernels()[0].2;
    it.set_input_bytes(0, input).unwrap();
    it.invoke().unwrap();
    (it.output_bytes(0).unwrap().to_vec(), kernel)
}

fn check(layer: &Layer, rng: &mut Rng) {
    let what = layer.what();
    let (def, input) = layer.build(rng);
    let density = density(&def);
    let (want, kernel) = run(&def, &input, SparseRoute::Dense, 1);
    assert_eq!(kernel, None, "{what}: the dense route chose {kernel:?}");
    let (br, bc) = layer.format.block();
    let pays = prefer_sparse(
        Dtype::I8,
        layer.m,
        layer.k,
        layer.n,
        BlockShape::new(br, bc),
        density,
    );
    for route in [SparseRoute::Sparse, SparseRoute::Auto] {
        for threads in [1, 2, 3] {
            let (got, kernel) = run(&def, &input, route, threads);
            let sparse = route == SparseRoute::Sparse || pays;
            match kernel {
                Some(name) => assert!(
                    sparse && name.contains("::spmm_") && name.ends_with("_acc"),
                    "{what} ({route:?}): kernel {name}"
                ),
                None => assert!(!sparse, "{what} ({route:?}): not on a sparse kernel"),
            }
            if let Some(i) = (0..want.len()).find(|&i| got[i] != want[i]) {
                panic!(
                    "{what} ({route:?}, {threads} threads, {kernel:?}): element {i} (row {}, \
                     channel {}): sparse {}, dense {}",
                    i / layer.n,
                    i % layer.n,
                    got[i],
                    want[i]
                );
            }
        }
    }
}

const FORMATS: [SparseFormat; 6] = [
    SparseFormat::Csr,
    SparseFormat::Bsr {
        block_rows: 1,
        block_cols: 4,
    },
    SparseFormat::Bsr {
        block_rows: 16,
        block_cols: 4,
    },
    SparseFormat::Bsr {
        block_rows: 32,
        block_cols: 4,
    },
    SparseFormat::Bsr {
        block_rows: 4,
        block_cols: 1,
    },
    SparseFormat::Bsr {
        block_rows: 2,
        block_cols: 3,
    },
];

#[test]
fn int8_and_uint8_sparse_fully_connected_equals_dense() {
    let mut rng = Rng(5);
    let mut i = 0;
    // Batch 1 and 2: the column split of a classifier head; 5, 37 and 70: the row split.
    for (m, k, n) in [
        (1, 64, 48),
        (1, 130, 300),
        (2, 36, 40),
        (5, 64, 17),
        (37, 96, 64),
        (70, 20, 33),
    ] {
        for format in FORMATS {
            let (br, bc) = format.block();
            if br > n || bc > k {
                continue;
            }
            i += 1;
            let layer = Layer {
                m,
                k,
                n,
                format,
                keep: [10, 30, 60, 100, 0][i % 5],
                unsigned: i % 3 == 0,
                act: [Activation::None, Activation::Relu, Activation::Relu6][i % 3],
                per_channel: i % 2 == 0,
            };
            check(&layer, &mut rng);
        }
    }
}

/// The classifier head of MobileNet-like models at a pruning that pays: 16×4 blocks at 90%
/// sparsity, one row. Where `prefer_sparse` expects the sparse kernel to win (every SIMD tier),
/// the default route takes it.
#[test]
fn pruned_classifier_head_takes_the_sparse_kernel() {
    let mut rng = Rng(6);
    let layer = Layer {
        m: 1,
        k: 320,
        n: 1000,
        format: SparseFormat::Bsr {
            block_rows: 16,
            block_cols: 4,
        },
        keep: 10,
        unsigned: false,
        act: Activation::None,
        per_channel: true,
    };
    check(&layer, &mut rng);
    let (def, input) = layer.build(&mut rng);
    let pays = prefer_sparse(
        Dtype::I8,
        1,
        320,
        1000,
        BlockShape::new(16, 4),
        density(&def),
    );
    let (_, kernel) = run(&def, &input, SparseRoute::Auto, 1);
    assert_eq!(
        kernel.is_some(),
        pays,
        "{kernel:?}, density {}",
        density(&def)
    );
    if let Some(name) = kernel {
        println!("{}: {name}", layer.what());
    }
}

/// Dynamic-range FULLY_CONNECTED (f32 in and out, int8 weights stored sparse, activations
/// quantized per row at run time, symmetric or asymmetric): the sparse kernels' accumulators
/// and the dense hybrid GEMM's give identical outputs.
#[test]
fn hybrid_sparse_fully_connected_equals_dense() {
    let mut rng = Rng(7);
    let mut i = 0;
    for (m, k, n) in [(1, 64, 48), (1, 130, 300), (3, 36, 40), (37, 96, 64)] {
        for format in FORMATS {
            let (br, bc) = format.block();
            if br > n || bc > k {
                continue;
            }
            i += 1;
            let keep = [10, 30, 60, 100, 0][i % 5];
            let asymmetric = i % 2 == 0;
            let act = [Activation::None, Activation::Relu, Activation::Relu6][i % 3];
            let what = format!(
                "hybrid FC {m}x{k}x{n} {format:?} keep {keep}% asymmetric {asymmetric} {act:?}"
            );
            let nbc = k.div_ceil(bc);
            let kept: Vec<bool> = (0..n.div_ceil(br) * nbc)
                .map(|_| rng.below(100) < keep)
                .collect();
            let mut dense = vec![0u8; n * k];
            for r in 0..n {
                for c in 0..k {
                    if kept[(r / br) * nbc + c / bc] {
                        dense[r * k + c] = (rng.below(255) as i32 - 127) as i8 as u8;
                    }
                }
            }
            let nscales = if i % 3 == 0 { 1 } else { n };
            let mut w = tensor("w", &[n, k], DType::I8);
            w.quant = Some(Quantization {
                scales: (0..nscales)
                    .map(|_| 0.002 + rng.below(100) as f32 * 1e-4)
                    .collect(),
                zero_points: vec![0; nscales],
                axis: (nscales > 1).then_some(0),
            });
            w.sparse = Some(SparseDef::encode(&dense, n, k, 1, format));
            let unit = |r: &mut Rng| r.below(2001) as f32 / 1000.0 - 0.7;
            let mut b = tensor("b", &[n], DType::F32);
            b.data = Some((0..n).flat_map(|_| unit(&mut rng).to_le_bytes()).collect());
            let def = ModelDef {
                tensors: vec![
                    tensor("x", &[m, k], DType::F32),
                    w,
                    b,
                    tensor("y", &[m, n], DType::F32),
                ],
                operators: vec![OpDef {
                    kind: OpKind::FullyConnected,
                    options: OpOptions::FullyConnected {
                        activation: act,
                        keep_num_dims: false,
                        asymmetric_quantize_inputs: asymmetric,
                    },
                    inputs: vec![0, 1, 2],
                    outputs: vec![3],
                }],
                inputs: vec![0],
                outputs: vec![3],
                metadata: Default::default(),
            };
            let input: Vec<u8> = (0..m * k)
                .flat_map(|_| unit(&mut rng).to_le_bytes())
                .collect();
            let (want, kernel) = run(&def, &input, SparseRoute::Dense, 1);
            assert_eq!(kernel, None, "{what}: the dense route chose {kernel:?}");
            for threads in [1, 2, 3] {
                let (got, kernel) = run(&def, &input, SparseRoute::Sparse, threads);
                assert!(
                    kernel.is_some_and(|k| k.ends_with("_acc")),
                    "{what}: kernel {kernel:?}"
                );
                let (g, w): (&[f32], &[f32]) =
                    (bytemuck::cast_slice(&got), bytemuck::cast_slice(&want));
                if let Some(j) = (0..w.len()).find(|&j| g[j].to_bits() != w[j].to_bits()) {
                    panic!(
                        "{what} ({threads} threads, {kernel:?}): row {} channel {}: sparse {}, \
                         dense {}",
                        j / n,
                        j % n,
                        g[j],
                        w[j]
                    );
                }
            }
        }
    }
}
