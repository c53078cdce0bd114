//! Helpers shared by the interpreter tests: a seeded generator and small model builders.
#![allow(dead_code)]

use sparq_schema::{
    Activation, DType, ModelDef, OpDef, OpKind, OpOptions, Padding, Quantization, TensorDef,
};

/// xorshift64*: deterministic, no crate needed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
    /// Uniform in [-1, 1).
    pub fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    pub fn vec_f32(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f32()).collect()
    }
}

pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    bytemuck::cast_slice(v).to_vec()
}

pub fn i32_bytes(v: &[i32]) -> Vec<u8> {
    bytemuck::cast_slice(v).to_vec()
}

pub fn dims(s: &[usize]) -> Vec<i32> {
    s.iter().map(|&d| d as i32).collect()
}

/// An activation tensor `name` of `shape` (no data, no quantization).
pub fn tensor(name: &str, shape: &[usize], dtype: DType) -> TensorDef {
    TensorDef::activation(name, dims(shape), dtype)
}

/// Quantizes the activations `x` and `y` per tensor unless `dtype` is f32 (zero point 128 for
/// uint8, 0 for int8).
pub fn quantize_io(x: &mut TensorDef, y: &mut TensorDef, dtype: DType) {
    if dtype != DType::F32 {
        let zp = if dtype == DType::U8 { 128 } else { 0 };
        x.quant = Some(Quantization::per_tensor(0.05, zp));
        y.quant = Some(Quantization::per_tensor(0.3, zp));
    }
}

/// The operator of a FULLY_CONNECTED (or, when `conv`, a 1×1 CONV_2D: valid, stride 1) with
/// the fused activation `act`.
pub fn fc_or_conv_1x1_op(conv: bool, act: Activation) -> (OpKind, OpOptions) {
    if conv {
        (
            OpKind::Conv2d,
            OpOptions::Conv2d {
                padding: Padding::Valid,
                stride_h: 1,
                stride_w: 1,
                dilation_h: 1,
                dilation_w: 1,
                activation: act,
            },
        )
    } else {
        (
            OpKind::FullyConnected,
            OpOptions::FullyConnected {
                activation: act,
                keep_num_dims: false,
                asymmetric_quantize_inputs: false,
            },
        )
    }
}

/// The model of one FULLY_CONNECTED (or, when `conv`, 1×1 CONV_2D: valid, stride 1), without
/// fused activation or bias, from the graph input `x` and the weight `w` to the output `y`.
pub fn fc_or_conv_1x1(conv: bool, x: TensorDef, w: TensorDef, y: TensorDef) -> ModelDef {
    let (kind, options) = fc_or_conv_1x1_op(conv, Activation::None);
    ModelDef {
        tensors: vec![x, w, y],
        operators: vec![OpDef {
            kind,
            options,
            inputs: vec![0, 1],
            outputs: vec![2],
        }],
        inputs: vec![0],
        outputs: vec![2],
        metadata: Default::default(),
    }
}

/// A one-operator model: activation inputs `ins` (name, shape) become graph inputs, constants
/// are added as given, the output is declared with `out_shape`.
pub struct OneOp {
    pub def: ModelDef,
}

impl OneOp {
    pub fn new() -> OneOp {
        OneOp {
            def: ModelDef::default(),
        }
    }

    pub fn input(&mut self, shape: &[usize], dtype: DType) -> i32 {
        let n = self.def.tensors.len();
        let t = self
            .def
            .add_tensor(TensorDef::activation(format!("in{n}"), dims(shape), dtype));
        self.def.inputs.push(t);
        t as i32
    }

    pub fn constant(&mut self, shape: &[usize], dtype: DType, data: Vec<u8>) -> i32 {
        let n = self.def.tensors.len();
        self.def.add_tensor(TensorDef::constant(
            format!("c{n}"),
            dims(shape),
            dtype,
            data,
        )) as i32
    }

    pub fn tensor(&mut self, t: TensorDef) -> i32 {
        self.def.add_tensor(t) as i32
    }

    pub fn op(
        mut self,
        kind: OpKind,
        options: OpOptions,
        inputs: &[i32],
        out_shape: &[usize],
        dtype: DType,
    ) -> ModelDef {
        let t = self
            .def
            .add_tensor(TensorDef::activation("out", dims(out_shape), dtype));
        self.def.add_op(kind, options, inputs, &[t as i32]);
        self.def.outputs.push(t);
        self.def
    }
}

/// Compares with a tolerance relative to the largest reference magnitude; names the first
/// differing element.
pub fn assert_close(got: &[f32], want: &[f32], rel: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= rel * scale,
            "{what}: element {i}: got {g}, want {w} (tolerance {})",
            rel * scale
        );
    }
}

/// A small CNN with every op family MobileNets use, big enough to be split across threads.
pub fn small_cnn(rng: &mut Rng) -> ModelDef {
    let mut d = ModelDef::default();
    let act = |d: &mut ModelDef, name: &str, s: &[usize]| {
        d.add_tensor(TensorDef::activation(name, dims(s), DType::F32)) as i32
    };
    let cst = |d: &mut ModelDef, rng: &mut Rng, name: &str, s: &[usize]| {
        let v = rng.vec_f32(s.iter().product());
        d.add_tensor(TensorDef::constant(
            name,
            dims(s),
            DType::F32,
            f32_bytes(&v),
        )) as i32
    };
    let x = act(&mut d, "x", &[1, 32, 32, 3]);
    d.inputs.push(x as u32);
    let w1 = cst(&mut d, rng, "w1", &[16, 3, 3, 3]);
    let b1 = cst(&mut d, rng, "b1", &[16]);
    let c1 = act(&mut d, "c1", &[1, 16, 16, 16]);
    let conv = |padding, s: i32| OpOptions::Conv2d {
        padding,
        stride_h: s,
        stride_w: s,
        dilation_h: 1,
        dilation_w: 1,
        activation: Activation::Relu6,
    };
    d.add_op(OpKind::Conv2d, conv(Padding::Same, 2), &[x, w1, b1], &[c1]);
    let wd = cst(&mut d, rng, "wd", &[1, 3, 3, 16]);
    let bd = cst(&mut d, rng, "bd", &[16]);
    let dw = act(&mut d, "dw", &[1, 16, 16, 16]);
    let dwo = OpOptions::DepthwiseConv2d {
        padding: Padding::Same,
        stride_h: 1,
        stride_w: 1,
        dilation_h: 1,
        dilation_w: 1,
        depth_multiplier: 1,
        activation: Activation::Relu6,
    };
    d.add_op(OpKind::DepthwiseConv2d, dwo, &[c1, wd, bd], &[dw]);
    let w2 = cst(&mut d, rng, "w2", &[16, 1, 1, 16]);
    let b2 = cst(&mut d, rng, "b2", &[16]);
    let pw = act(&mut d, "pw", &[1, 16, 16, 16]);
    d.add_op(
        OpKind::Conv2d,
        conv(Padding::Valid, 1),
        &[dw, w2, b2],
        &[pw],
    );
    let sum = act(&mut d, "sum", &[1, 16, 16, 16]);
    d.add_op(
        OpKind::Add,
        OpOptions::Elementwise {
            activation: Activation::None,
        },
        &[pw, c1],
        &[sum],
    );
    let mp = act(&mut d, "mp", &[1, 8, 8, 16]);
    let po = OpOptions::Pool2d {
        padding: Padding::Valid,
        stride_h: 2,
        stride_w: 2,
        filter_h: 2,
        filter_w: 2,
        activation: Activation::None,
    };
    d.add_op(OpKind::MaxPool2d, po, &[sum], &[mp]);
    let axes = d.add_tensor(TensorDef::constant(
        "axes",
        vec![2],
        DType::I32,
        i32_bytes(&[1, 2]),
    )) as i32;
    let mean = act(&mut d, "mean", &[1, 16]);
    d.add_op(
        OpKind::Mean,
        OpOptions::Reducer { keep_dims: false },
        &[mp, axes],
        &[mean],
    );
    let wf = cst(&mut d, rng, "wf", &[10, 16]);
    let bf = cst(&mut d, rng, "bf", &[10]);
    let logits = act(&mut d, "logits", &[1, 10]);
    d.add_op(
        OpKind::FullyConnected,
        OpOptions::FullyConnected {
            activation: Activation::None,
            keep_num_dims: false,
            asymmetric_quantize_inputs: false,
        },
        &[mean, wf, bf],
        &[logits],
    );
    let prob = act(&mut d, "prob", &[1, 10]);
    d.add_op(
        OpKind::Softmax,
        OpOptions::Softmax { beta: 1.0 },
        &[logits],
        &[prob],
    );
    d.outputs.push(prob as u32);
    d
}
