//! Weights stored sparse on the sparse × dense kernels give what the dense kernels give: one
//! operator (1×1 CONV_2D or FULLY_CONNECTED) prepared with `SparseRoute::Sparse` and with
//! `SparseRoute::Dense`, on 1 and 2 threads — integers bit for bit, f32 within rounding.

mod common;

use common::{fc_or_conv_1x1_op, tensor};
use sparq::{Interpreter, Model, Options, SparseRoute};
use sparq_schema::{
    Activation, DType, ModelDef, OpDef, Quantization, SparseDef, SparseFormat, TensorDef,
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

const FORMATS: [SparseFormat; 5] = [
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
        block_rows: 4,
        block_cols: 1,
    },
    SparseFormat::Bsr {
        block_rows: 2,
        block_cols: 3,
    },
];

/// Weights N × K (`elem` bytes each) with about `keep` of the `format` blocks non-zero.
fn pruned(
    rng: &mut Rng,
    n: usize,
    k: usize,
    format: SparseFormat,
    keep: u32,
    value: &mut dyn FnMut(&mut Rng) -> Vec<u8>,
) -> Vec<u8> {
    let (br, bc) = format.block();
    let mut kept = vec![false; n.div_ceil(br) * k.div_ceil(bc)];
    kept.iter_mut().for_each(|b| *b = rng.below(100) < keep);
    let mut out = Vec::new();
    for r in 0..n {
        for c in 0..k {
            let v = value(rng);
            if kept[(r / br) * k.div_ceil(bc) + c / bc] {
                out.extend(v);
            } else {
                out.extend(vec![0u8; v.len()]);
            }
        }
    }
    out
}

struct Case {
    /// Input shape: [M, K] (fully connected) or [1, H, W, K] (1×1 convolution).
    input: Vec<usize>,
    n: usize,
    format: SparseFormat,
    keep: u32,
}

impl Case {
    fn k(&self) -> usize {
        *self.input.last().unwrap()
    }
    fn output(&self) -> Vec<usize> {
        let mut s = self.input.clone();
        *s.last_mut().unwrap() = self.n;
        s
    }
    fn what(&self, dtype: DType) -> String {
        format!(
            "{dtype} input {:?} N {} {:?} keep {}%",
            self.input, self.n, self.format, self.keep
        )
    }
}

/// One-operator model x → y with weight `w` (and bias `b`).
fn model(
    c: &Case,
    x: TensorDef,
    w: TensorDef,
    b: TensorDef,
    y: TensorDef,
    act: Activation,
) -> ModelDef {
    let (kind, options) = fc_or_conv_1x1_op(c.input.len() == 4, act);
    ModelDef {
        tensors: vec![x, w, b, y],
        operators: vec![OpDef {
            kind,
            options,
            inputs: vec![0, 1, 2],
            outputs: vec![3],
        }],
        inputs: vec![0],
        outputs: vec![3],
        metadata: Default::default(),
    }
}

/// Runs the model with `route` on `threads`, returning the output bytes and whether the
/// operator chose a sparse kernel.
fn run(def: &ModelDef, input: &[u8], route: SparseRoute, threads: usize) -> (Vec<u8>, bool) {
    let m = Model::from_def(def).expect("model");
    let opts = Options {
        threads,
        sparse: route,
        ..Options::default()
    };
    let mut it = Interpreter::new(&m, opts).expect("prepare");
    let sparse = it.kernels()[0].2.is_some();
    it.set_input_bytes(0, input).unwrap();
    it.invoke().unwrap();
    (it.output_bytes(0).unwrap().to_vec(), sparse)
}

fn int_cases() -> Vec<Case> {
    let mut v = Vec::new();
    for (i, format) in FORMATS.into_iter().enumerate() {
        for (input, n) in [
            (vec![1, 1, 1, 37], 17),
            (vec![1, 5, 7, 64], 32),
            (vec![1, 3, 100, 24], 48),
            (vec![1, 2, 9, 3], 1),
        ] {
            // A block must fit in the matrix (the model format's rule).
            let (br, bc) = format.block();
            if br > n || bc > input[3] {
                continue;
            }
            v.push(Case {
                input,
                n,
                format,
                keep: [10, 30, 50, 100, 0][i],
            });
        }
    }
    v
}

#[test]
fn int8_and_uint8_1x1_conv_sparse_equals_dense() {
    let mut rng = Rng(7);
    for c in int_cases() {
        for unsigned in [false, true] {
            let (k, n) = (c.k(), c.n);
            let adt = if unsigned { DType::U8 } else { DType::I8 };
            let what = c.what(adt);
            let per_channel = rng.below(2) == 0;
            let w_scales: Vec<f32> = (0..if per_channel { n } else { 1 })
                .map(|_| 0.002 + rng.below(100) as f32 * 1e-4)
                .collect();
            let dense = pruned(&mut rng, n, k, c.format, c.keep, &mut |r| {
                vec![(r.below(255) as i32 - 127) as i8 as u8]
            });
            let mut w = tensor("w", &[n, 1, 1, k], DType::I8);
            w.quant = Some(Quantization {
                scales: w_scales.clone(),
                zero_points: vec![0; w_scales.len()],
                axis: per_channel.then_some(0),
            });
            w.sparse = Some(SparseDef::encode(&dense, n, k, 1, c.format));
            let in_zp = if unsigned { 131 } else { -5 };
            let out_zp = if unsigned { 120 } else { 3 };
            let mut x = tensor("x", &c.input, adt);
            x.quant = Some(Quantization::per_tensor(0.05, in_zp));
            let mut b = tensor("b", &[n], DType::I32);
            b.data = Some(
                (0..n)
                    .flat_map(|_| (rng.below(4001) as i32 - 2000).to_le_bytes())
                    .collect(),
            );
            let mut y = tensor("y", &c.output(), adt);
            y.quant = Some(Quantization::per_tensor(0.09, out_zp));
            let act =
                [Activation::None, Activation::Relu, Activation::Relu6][rng.below(3) as usize];
            let def = model(&c, x, w, b, y, act);
            let input: Vec<u8> = (0..c.input.iter().product::<usize>())
                .map(|_| rng.next() as u8)
                .collect();
            let (want, routed) = run(&def, &input, SparseRoute::Dense, 1);
            assert!(!routed, "{what}: dense route chose a sparse kernel");
            for threads in [1, 2] {
                let (got, routed) = run(&def, &input, SparseRoute::Sparse, threads);
                assert!(routed, "{what}: not on a sparse kernel");
                if let Some(i) = (0..want.len()).find(|&i| got[i] != want[i]) {
                    panic!(
                        "{what} ({threads} threads): element {i} (pixel {}, channel {}): sparse {}, dense {}",
                        i / n,
                        i % n,
                        got[i],
                        want[i]
                    );
                }
            }
        }
    }
}

#[test]
fn f32_fully_connected_and_1x1_conv_sparse_equals_dense() {
    let mut rng = Rng(11);
    let mut cases = int_cases();
    for c in &mut cases {
        if c.input[1] == 3 {
            c.input = vec![7, c.input[3]];
        } else if c.input[1] == 1 {
            c.input = vec![1, c.input[3]];
        }
    }
    for c in cases {
        let (k, n) = (c.k(), c.n);
        let what = c.what(DType::F32);
        let unit = |r: &mut Rng| r.below(2001) as f32 / 1000.0 - 1.0;
        let dense = pruned(&mut rng, n, k, c.format, c.keep, &mut |r| {
            unit(r).to_le_bytes().to_vec()
        });
        let wshape = if c.input.len() == 4 {
            vec![n, 1, 1, k]
        } else {
            vec![n, k]
        };
        let mut w = tensor("w", &wshape, DType::F32);
        w.sparse = Some(SparseDef::encode(&dense, n, k, 4, c.format));
        let mut b = tensor("b", &[n], DType::F32);
        b.data = Some((0..n).flat_map(|_| unit(&mut rng).to_le_bytes()).collect());
        let x = tensor("x", &c.input, DType::F32);
        let y = tensor("y", &c.output(), DType::F32);
        let act = [Activation::None, Activation::Relu, Activation::Tanh][rng.below(3) as usize];
        let def = model(&c, x, w, b, y, act);
        let input: Vec<u8> = (0..c.input.iter().product::<usize>())
            .flat_map(|_| unit(&mut rng).to_le_bytes())
            .collect();
        let (want, routed) = run(&def, &input, SparseRoute::Dense, 1);
        assert!(!routed, "{what}: dense route chose a sparse kernel");
        let want: Vec<f32> = bytemuck::cast_slice(&want).to_vec();
        for threads in [1, 2] {
            let (got, routed) = run(&def, &input, SparseRoute::Sparse, threads);
            assert!(routed, "{what}: not on a sparse kernel");
            let got: &[f32] = bytemuck::cast_slice(&got);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                // Sums of ≤ 64 products of magnitude ≤ 1 in another order: a few ulps of K.
                assert!(
                    (g - w).abs() <= 1e-5 * (k as f32 + 1.0),
                    "{what} ({threads} threads): element {i} (row {}, channel {}): sparse {g}, dense {w}",
                    i / n,
                    i % n
                );
            }
        }
    }
}
