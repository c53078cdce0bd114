//! A k×k convolution gathers its windows (im2col) block by block: the arena holds a few blocks of
//! windows per task, not every window of the image, and the blocked result equals a plain
//! convolution loop for every thread count.

use sparq::{Interpreter, Model, Options};
use sparq_schema::{Activation, DType, ModelDef, OpDef, OpKind, OpOptions, Padding, TensorDef};

const H: usize = 96;
const W: usize = 96;
const C: usize = 32;
const O: usize = 8;

fn tensor(name: &str, shape: &[i32], data: Option<Vec<u8>>) -> TensorDef {
    TensorDef {
        name: name.into(),
        shape: shape.to_vec(),
        dtype: DType::F32,
        quant: None,
        data,
        sparse: None,
    }
}

/// Deterministic values in [−1, 1).
fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

fn conv_model(w: &[f32]) -> ModelDef {
    let bytes: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
    ModelDef {
        tensors: vec![
            tensor("x", &[1, H as i32, W as i32, C as i32], None),
            tensor("w", &[O as i32, 3, 3, C as i32], Some(bytes)),
            tensor("y", &[1, H as i32, W as i32, O as i32], None),
        ],
        operators: vec![OpDef {
            kind: OpKind::Conv2d,
            options: OpOptions::Conv2d {
                padding: Padding::Same,
                stride_h: 1,
                stride_w: 1,
                dilation_h: 1,
                dilation_w: 1,
                activation: Activation::None,
            },
            inputs: vec![0, 1],
            outputs: vec![2],
        }],
        inputs: vec![0],
        outputs: vec![2],
        metadata: Default::default(),
    }
}

/// SAME 3×3 stride-1 convolution, in f64.
fn reference(x: &[f32], w: &[f32]) -> Vec<f64> {
    let mut y = vec![0.0f64; H * W * O];
    for oy in 0..H {
        for ox in 0..W {
            for o in 0..O {
                let mut acc = 0.0f64;
                for ky in 0..3 {
                    for kx in 0..3 {
                        let (iy, ix) = (oy + ky, ox + kx);
                        if iy < 1 || ix < 1 || iy > H || ix > W {
                            continue;
                        }
                        let xi = &x[((iy - 1) * W + ix - 1) * C..][..C];
                        let wi = &w[((o * 3 + ky) * 3 + kx) * C..][..C];
                        acc += xi
                            .iter()
                            .zip(wi)
                            .map(|(a, b)| *a as f64 * *b as f64)
                            .sum::<f64>();
                    }
                }
                y[(oy * W + ox) * O + o] = acc;
            }
        }
    }
    y
}

#[test]
fn im2col_scratch_is_blocked_and_exact() {
    let w = values(O * 9 * C, 7);
    let x = values(H * W * C, 11);
    let want = reference(&x, &w);
    let model = Model::from_def(&conv_model(&w)).expect("valid model");
    let tensors = (H * W * C + H * W * O) * 4;
    let whole_image_windows = H * W * 9 * C * 4;
    for threads in [1, 2, 3] {
        let mut it = Interpreter::new(
            &model,
            Options {
                threads,
                ..Options::default()
            },
        )
        .expect("prepare");
        // Input and output plus at most ~1 MiB of gathered windows (the whole image's windows
        // would be 10.6 MB).
        assert!(
            it.arena_bytes() < tensors + (1 << 20),
            "{threads} thread(s): arena {} bytes for {tensors} bytes of tensors \
             (every window of the image: {whole_image_windows})",
            it.arena_bytes()
        );
        it.set_input(0, &x).expect("input");
        it.invoke().expect("invoke");
        let y: &[f32] = it.output(0).expect("output");
        for (i, (a, b)) in y.iter().zip(&want).enumerate() {
            assert!(
                (*a as f64 - b).abs() <= 1e-4 * (1.0 + b.abs()),
                "{threads} thread(s): output {i} (pixel {}, channel {}) is {a}, want {b}",
                i / O,
                i % O
            );
        }
    }
}
