//! MEAN, SUM and REDUCE_MAX over constant axes.

use sparq_schema::{DType, OpKind, OpOptions};

use sparq_kernels::gemm::Q8;
use sparq_kernels::pooling::reduce::{
    reduce_f32, reduce_max_q, MeanQ, QParams as KQ, ReduceOp, ReduceShape, SumQ,
};
use sparq_kernels::requant::{multiply_by_quantized_multiplier, quantize_multiplier};

use super::binary::MAX_RANK;
use super::quant::per_tensor;
use super::{boxed, elements, Ctx, Exec, Inputs, OpEval, Prepared};
use crate::Result;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Reducer {
    Mean,
    Sum,
    Max,
}

pub(crate) fn prepare(ctx: &Ctx<'_, '_>) -> Result<Prepared> {
    ctx.expect_inputs(2, 2)?;
    let keep_dims = match *ctx.options {
        OpOptions::Reducer { keep_dims } => keep_dims,
        _ => false,
    };
    let x = ctx.input(0)?;
    let xs = ctx.shape(x);
    let rank = xs.len();
    if rank > MAX_RANK {
        return Err(ctx.unsupported(format!("rank {rank} input")));
    }
    let mut reduced = [false; MAX_RANK];
    let axes = ctx.const_i32(1)?;
    for &a in &axes {
        let d = if a < 0 { a + rank as i32 } else { a };
        if d < 0 || d as usize >= rank.max(1) {
            return Err(ctx.err(format!("axis {a} out of range for input {xs:?}")));
        }
        reduced[d as usize] = true;
    }
    let mut shape = Vec::new();
    let mut count = 1;
    for d in 0..rank {
        if reduced[d] {
            count *= xs[d];
            if keep_dims {
                shape.push(1);
            }
        } else {
            shape.push(xs[d]);
        }
    }
    let reducer = match ctx.kind {
        OpKind::Mean => Reducer::Mean,
        OpKind::Sum => Reducer::Sum,
        _ => Reducer::Max,
    };
    match ctx.dtype(x) {
        DType::I8 | DType::U8 => {
            let unsigned = ctx.dtype(x) == DType::U8;
            let (in_scale, in_zp) = per_tensor(ctx, x)?;
            let (out_scale, out_zp) = per_tensor(ctx, ctx.output())?;
            let q = KQ {
                in_scale,
                in_zp,
                out_scale,
                out_zp,
            };
            let (op, scratch) = match reducer {
                Reducer::Mean
                    if keep_dims && xs.len() == 4 && (axes == [1, 2] || axes == [2, 1]) =>
                {
                    let m = MeanQ::new(xs, &axes, keep_dims, q, unsigned)
                        .map_err(|e| ctx.err(e.to_string()))?;
                    let n = m.scratch_len();
                    (QReduce::Mean(m), n * 4)
                }
                Reducer::Mean => {
                    // TFLite's `QuantizedMeanOrSum`: the 1/n folded into the multiplier.
                    let (mut mult, mut shift) =
                        quantize_multiplier(in_scale as f64 / out_scale as f64);
                    let n = count as i64;
                    if n > 0 {
                        let sh = (63 - (n as u64).leading_zeros() as i32)
                            .min(32)
                            .min(31 + shift);
                        mult = (((mult as i64) << sh) / n) as i32;
                        shift -= sh;
                    }
                    let out_len = elements(&shape);
                    let m = IntMean {
                        mult,
                        shift,
                        in_zp,
                        out_zp,
                        n: count as i32,
                    };
                    (QReduce::IntMean(m), out_len * 4)
                }
                Reducer::Sum => {
                    let m = SumQ::new(xs, &axes, q).map_err(|e| ctx.err(e.to_string()))?;
                    let n = m.scratch_len();
                    (QReduce::Sum(m), n * 4)
                }
                Reducer::Max => {
                    if in_scale != out_scale || in_zp != out_zp {
                        return Err(ctx.unsupported(
                            "REDUCE_MAX with different input and output quantization",
                        ));
                    }
                    let s = ReduceShape::new(xs, &axes).map_err(|e| ctx.err(e.to_string()))?;
                    (QReduce::Max(s), 0)
                }
            };
            let rs = ReduceShape::new(xs, &axes).map_err(|e| ctx.err(e.to_string()))?;
            Ok(Prepared {
                eval: boxed(ReduceQ { op, unsigned, rs }),
                shape,
                dtype: ctx.dtype(x),
                scratch,
            })
        }
        DType::F32 => {
            let rs = ReduceShape::new(xs, &axes).map_err(|e| ctx.err(e.to_string()))?;
            let op = match reducer {
                Reducer::Mean => ReduceOp::Mean,
                Reducer::Sum => ReduceOp::Sum,
                Reducer::Max => ReduceOp::Max,
            };
            Ok(Prepared {
                eval: boxed(ReduceF32K { rs, op }),
                shape,
                dtype: DType::F32,
                scratch: 0,
            })
        }
        d => Err(ctx.unsupported(format!("{d} input"))),
    }
}

/// f32 reductions on the kernel crate's kernel.
struct ReduceF32K {
    rs: ReduceShape,
    op: ReduceOp,
}

impl OpEval for ReduceF32K {
    fn eval(&self, ins: &Inputs<'_>, out: &mut [u8], _scratch: &mut [u8], _exec: &Exec) {
        reduce_f32(&self.rs, self.op, ins.f32(0), bytemuck::cast_slice_mut(out));
    }
}

/// TFLite's integer mean outside the 4-D height-and-width case.
struct IntMean {
    mult: i32,
    shift: i32,
    in_zp: i32,
    out_zp: i32,
    n: i32,
}

enum QReduce {
    Mean(MeanQ),
    IntMean(IntMean),
    Sum(SumQ),
    Max(ReduceShape),
}

/// Integer reductions on the kernel crate's TFLite-exact kernels.
struct ReduceQ {
    op: QReduce,
    unsigned: bool,
    rs: ReduceShape,
}

impl ReduceQ {
    /// Output elements `start..start + out.len()` of the integer mean (`acc` as scratch).
    fn int_mean<T: Q8>(&self, m: &IntMean, x: &[T], out: &mut [T], acc: &mut [i32], start: usize) {
        self.rs.sum_q(x, acc, start);
        let zsum = m.in_zp.wrapping_mul(m.n);
        for (o, &s) in out.iter_mut().zip(acc.iter()) {
            let shifted = s.wrapping_sub(zsum);
            let v =
                multiply_by_quantized_multiplier(shifted, m.mult, m.shift).saturating_add(m.out_zp);
            *o = T::from_i32(v.clamp(T::MIN, T::MAX));
        }
    }

    /// MEAN over output ranges, split over threads when the reduced axes are contiguous.
    fn mean<T: Q8>(&self, x: &[T], out: &mut [T], acc: &mut [i32], exec: &Exec) {
        let acc = &mut acc[..out.len()];
        let f = |start: usize, o: &mut [T], a: &mut [i32]| match &self.op {
            QReduce::Mean(m) => m.run_range(x, o, a, start),
            QReduce::IntMean(m) => self.int_mean(m, x, o, a, start),
            _ => unreachable!("mean called for another reduction"),
        };
        if self.rs.splittable() {
            exec.rows_with_scratch(out, 1, acc, 1, self.rs.input_len() * 4, &f);
        } else {
            f(0, out, acc);
        }
    }
}

impl OpEval for ReduceQ {
    fn eval(&self, ins: &Inputs<'_>, out: &mut [u8], scratch: &mut [u8], exec: &Exec) {
        let acc: &mut [i32] = super::cast_mut(scratch);
        if self.unsigned {
            let x = ins.bytes(0);
            match &self.op {
                QReduce::Mean(_) | QReduce::IntMean(_) => self.mean::<u8>(x, out, acc, exec),
                QReduce::Sum(m) => m.run::<u8>(x, out, acc),
                QReduce::Max(s) => reduce_max_q::<u8>(s, x, out),
            }
        } else {
            let x: &[i8] = bytemuck::cast_slice(ins.bytes(0));
            let out: &mut [i8] = bytemuck::cast_slice_mut(out);
            match &self.op {
                QReduce::Mean(_) | QReduce::IntMean(_) => self.mean::<i8>(x, out, acc, exec),
                QReduce::Sum(m) => m.run::<i8>(x, out, acc),
                QReduce::Max(s) => reduce_max_q::<i8>(s, x, out),
            }
        }
    }
}
