//! Helpers shared by the interpreter tests: a seeded generator and small model builders.
#![allow(dead_code)]

use sparq_schema::{DType, ModelDef, OpKind, OpOptions, TensorDef};

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

/// A one-operator model: activation inputs `ins` (name, shape) become graph inputs, constants
/// are added as given, the output is declared with `out_shape`.
pub struct OneOp {
    pub def: ModelDef,
}

impl OneOp {
    pub fn new() -> OneOp {
        OneOp { def: ModelDef::default() }
    }

    pub fn input(&mut self, shape: &[usize], dtype: DType) -> i32 {
        let n = self.def.tensors.len();
        let t = self.def.add_tensor(TensorDef::activation(format!("in{n}"), dims(shape), dtype));
        self.def.inputs.push(t);
        t as i32
    }

    pub fn constant(&mut self, shape: &[usize], dtype: DType, data: Vec<u8>) -> i32 {
        let n = self.def.tensors.len();
        self.def.add_tensor(TensorDef::constant(format!("c{n}"), dims(shape), dtype, data)) as i32
    }

    pub fn tensor(&mut self, t: TensorDef) -> i32 {
        self.def.add_tensor(t) as i32
    }

    pub fn op(mut self, kind: OpKind, options: OpOptions, inputs: &[i32], out_shape: &[usize], dtype: DType) -> ModelDef {
        let t = self.def.add_tensor(TensorDef::activation("out", dims(out_shape), dtype));
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
