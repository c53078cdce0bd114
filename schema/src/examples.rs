//! Small models built in code, for tests, fixtures and documentation.

use crate::{
    Activation, DType, Metadata, ModelDef, OpKind, OpOptions, Padding, Quantization, SparseDef,
    SparseFormat, TensorDef,
};

/// Deterministic pseudo-random numbers (64-bit LCG), so the fixture is reproducible.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        (self.next() % 2000) as f32 / 1000.0 - 1.0
    }
}

/// The model behind `tests/fixtures/tiny.sparq`: a tiny but well-formed graph that uses every
/// dtype, per-tensor and per-axis quantization, a CSR and a BSR weight, an absent optional input
/// and options of several kinds.
///
/// ```text
/// input f32 [1,4,4,3] ─Quantize→ i8 ─Conv2d(i8 CSR weights [4,3,3,3] per-axis, i32 bias)→ i8
///   ─Dequantize→ f32 [1,4,4,4] ─Reshape(i32 shape)→ [1,64] ─FullyConnected(f32 BSR 1x4, no bias)→
///   [1,2] ─Mul(Dequantize(f16 [2]))→ [1,2] ─Quantize→ u8 [1,2] (output)
/// ```
pub fn tiny() -> ModelDef {
    let mut rng = Lcg(0x5eed);
    let mut m = ModelDef {
        metadata: Metadata {
            producer: "sparq-schema examples::tiny".into(),
            settings: vec![
                ("quantize".into(), "int8".into()),
                ("sparse".into(), "csr,bsr".into()),
            ],
            layer_sparsity: vec![("conv".into(), 0.5), ("fc".into(), 0.75)],
        },
        ..ModelDef::default()
    };

    let input = m.add_tensor(TensorDef::activation("input", vec![1, 4, 4, 3], DType::F32));
    let input_q = m.add_tensor(
        TensorDef::activation("input_q", vec![1, 4, 4, 3], DType::I8)
            .with_quant(Quantization::per_tensor(1.0 / 128.0, 0)),
    );

    // Conv weights: i8 [4, 3, 3, 3], every other element zero, stored CSR (4 x 27).
    let w_scales: Vec<f32> = (0..4).map(|o| 0.01 + 0.005 * o as f32).collect();
    let mut w = vec![0u8; 4 * 27];
    for (k, v) in w.iter_mut().enumerate() {
        if k % 2 == 0 {
            *v = ((rng.next() % 255) as i32 - 127).clamp(-127, 127).max(1) as i8 as u8;
        }
    }
    let conv_w = m.add_tensor(TensorDef {
        name: "conv/weights".into(),
        shape: vec![4, 3, 3, 3],
        dtype: DType::I8,
        quant: Some(Quantization::per_axis(w_scales.clone(), 0)),
        data: None,
        sparse: Some(SparseDef::encode(&w, 4, 27, 1, SparseFormat::Csr)),
    });
    let bias: Vec<i32> = (0..4).map(|o| o * 100 - 150).collect();
    let conv_b = m.add_tensor(
        TensorDef::constant(
            "conv/bias",
            vec![4],
            DType::I32,
            bytemuck::cast_slice(&bias).to_vec(),
        )
        .with_quant(Quantization::per_axis(
            w_scales.iter().map(|s| s / 128.0).collect(),
            0,
        )),
    );
    let conv = m.add_tensor(
        TensorDef::activation("conv", vec![1, 4, 4, 4], DType::I8)
            .with_quant(Quantization::per_tensor(0.05, -3)),
    );
    let conv_f = m.add_tensor(TensorDef::activation(
        "conv_f32",
        vec![1, 4, 4, 4],
        DType::F32,
    ));
    let shape: Vec<i32> = vec![1, 64];
    let shape_t = m.add_tensor(TensorDef::constant(
        "reshape/shape",
        vec![2],
        DType::I32,
        bytemuck::cast_slice(&shape).to_vec(),
    ));
    let flat = m.add_tensor(TensorDef::activation("flat", vec![1, 64], DType::F32));

    // FC weights: f32 [2, 64], three of every four 1x4 blocks zero, stored BSR 1x4.
    let mut fc = vec![0f32; 2 * 64];
    for (k, v) in fc.iter_mut().enumerate() {
        if (k / 4) % 4 == 1 {
            *v = rng.unit();
        }
    }
    let fc_w = m.add_tensor(TensorDef {
        name: "fc/weights".into(),
        shape: vec![2, 64],
        dtype: DType::F32,
        quant: None,
        data: None,
        sparse: Some(SparseDef::encode(
            bytemuck::cast_slice(&fc),
            2,
            64,
            4,
            SparseFormat::Bsr {
                block_rows: 1,
                block_cols: 4,
            },
        )),
    });
    let logits = m.add_tensor(TensorDef::activation("logits", vec![1, 2], DType::F32));
    let scale16: Vec<half::f16> = [0.5f32, 2.0]
        .iter()
        .map(|&x| half::f16::from_f32(x))
        .collect();
    let scale_h = m.add_tensor(TensorDef::constant(
        "scale_f16",
        vec![2],
        DType::F16,
        scale16.iter().flat_map(|h| h.to_le_bytes()).collect(),
    ));
    let scale_f = m.add_tensor(TensorDef::activation("scale", vec![2], DType::F32));
    let scaled = m.add_tensor(TensorDef::activation("scaled", vec![1, 2], DType::F32));
    let output = m.add_tensor(
        TensorDef::activation("output", vec![1, 2], DType::U8)
            .with_quant(Quantization::per_tensor(0.02, 128)),
    );

    let i = |t: u32| t as i32;
    m.add_op(
        OpKind::Quantize,
        OpOptions::None,
        &[i(input)],
        &[i(input_q)],
    );
    m.add_op(
        OpKind::Conv2d,
        OpOptions::Conv2d {
            padding: Padding::Same,
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            activation: Activation::Relu6,
        },
        &[i(input_q), i(conv_w), i(conv_b)],
        &[i(conv)],
    );
    m.add_op(
        OpKind::Dequantize,
        OpOptions::None,
        &[i(conv)],
        &[i(conv_f)],
    );
    m.add_op(
        OpKind::Reshape,
        OpOptions::Reshape {
            new_shape: shape.clone(),
        },
        &[i(conv_f), i(shape_t)],
        &[i(flat)],
    );
    m.add_op(
        OpKind::FullyConnected,
        OpOptions::FullyConnected {
            activation: Activation::None,
            keep_num_dims: false,
            asymmetric_quantize_inputs: false,
        },
        &[i(flat), i(fc_w), -1],
        &[i(logits)],
    );
    m.add_op(
        OpKind::Dequantize,
        OpOptions::None,
        &[i(scale_h)],
        &[i(scale_f)],
    );
    m.add_op(
        OpKind::Mul,
        OpOptions::Elementwise {
            activation: Activation::None,
        },
        &[i(logits), i(scale_f)],
        &[i(scaled)],
    );
    m.add_op(
        OpKind::Quantize,
        OpOptions::None,
        &[i(scaled)],
        &[i(output)],
    );
    m.inputs = vec![input];
    m.outputs = vec![output];
    m
}
