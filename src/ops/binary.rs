//! Element-wise binary operators with NumPy broadcasting: ADD, SUB, MUL, DIV, MAXIMUM, MINIMUM,
//! SQUARED_DIFFERENCE.

use sparq_schema::{Activation, DType, OpKind, OpOptions};

use sparq_kernels::elementwise::{
    binary_f32, binary_i8, binary_q_table, binary_u8, lut8, prepare_binary_q, BinaryOp,
    BroadcastPlan, QBinary, QParams,
};
use sparq_kernels::requant::Activation as KAct;

use super::conv::finish_f32;
use super::quant::per_tensor;
use super::{act_range_f32, boxed, Ctx, Exec, Inputs, OpEval, Prepared};
use crate::Result;

/// Highest rank broadcasting handles.
pub(crate) const MAX_RANK: usize = 6;

/// Shapes padded to one rank, with each operand's strides (0 along broadcast dimensions).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Broadcast {
    pub rank: usize,
    pub out: [usize; MAX_RANK],
}

impl Broadcast {
    pub(crate) fn new(a: &[usize], b: &[usize]) -> Option<Broadcast> {
        let rank = a.len().max(b.len()).max(1);
        if rank > MAX_RANK {
            return None;
        }
        let pad = |s: &[usize]| {
            let mut p = [1usize; MAX_RANK];
            p[rank - s.len()..rank].copy_from_slice(s);
            p
        };
        let (pa, pb) = (pad(a), pad(b));
        let mut out = [1usize; MAX_RANK];
        for d in 0..rank {
            out[d] = match (pa[d], pb[d]) {
                (x, y) if x == y => x,
                (1, y) => y,
                (x, 1) => x,
                _ => return None,
            };
        }
        Some(Broadcast { rank, out })
    }

    pub(crate) fn out_shape(&self, a: &[usize], b: &[usize]) -> Vec<usize> {
        let r = a.len().max(b.len());
        self.out[self.rank - r..self.rank].to_vec()
    }
}

pub(crate) fn prepare(ctx: &Ctx<'_, '_>) -> Result<Prepared> {
    ctx.expect_inputs(2, 2)?;
    let (a, b) = (ctx.input(0)?, ctx.input(1)?);
    let act = match *ctx.options {
        OpOptions::Elementwise { activation } => activation,
        _ => Activation::None,
    };
    let (sa, sb) = (ctx.shape(a), ctx.shape(b));
    let bc = Broadcast::new(sa, sb)
        .ok_or_else(|| ctx.err(format!("shapes {sa:?} and {sb:?} do not broadcast")))?;
    let shape = bc.out_shape(sa, sb);
    if ctx.dtype(a) != ctx.dtype(b) {
        return Err(ctx.err(format!("inputs are {} and {}", ctx.dtype(a), ctx.dtype(b))));
    }
    match ctx.dtype(a) {
        DType::I8 | DType::U8 => {
            let kop = match ctx.kind {
                OpKind::Add => BinaryOp::Add,
                OpKind::Sub => BinaryOp::Sub,
                OpKind::Mul => BinaryOp::Mul,
                OpKind::Div => BinaryOp::Div,
                OpKind::Maximum => BinaryOp::Maximum,
                OpKind::Minimum => BinaryOp::Minimum,
                _ => BinaryOp::SquaredDifference,
            };
            let y = ctx.output();
            let q = |t| per_tensor(ctx, t).map(|(s, z)| QParams::new(s, z));
            let (qa, qb, qo) = (q(a)?, q(b)?, q(y)?);
            let kact = match act {
                Activation::None => KAct::None,
                Activation::Relu => KAct::Relu,
                Activation::Relu6 => KAct::Relu6,
                Activation::ReluN1To1 => KAct::ReluN1To1,
                Activation::Tanh => return Err(ctx.unsupported("fused tanh on an integer output")),
            };
            let unsigned = ctx.dtype(a) == DType::U8;
            let p = if unsigned {
                prepare_binary_q::<u8>(kop, qa, qb, qo, kact)
            } else {
                prepare_binary_q::<i8>(kop, qa, qb, qo, kact)
            }
            .map_err(|e| ctx.err(e.to_string()))?;
            let plan =
                BroadcastPlan::new(kop.name(), sa, sb).map_err(|e| ctx.err(e.to_string()))?;
            Ok(Prepared {
                eval: boxed(BinaryQ { p, plan, unsigned }),
                shape,
                dtype: ctx.dtype(a),
                scratch: 0,
            })
        }
        DType::F32 => {
            let kop = match ctx.kind {
                OpKind::Add => BinaryOp::Add,
                OpKind::Sub => BinaryOp::Sub,
                OpKind::Mul => BinaryOp::Mul,
                OpKind::Div => BinaryOp::Div,
                OpKind::Maximum => BinaryOp::Maximum,
                OpKind::Minimum => BinaryOp::Minimum,
                _ => BinaryOp::SquaredDifference,
            };
            let plan =
                BroadcastPlan::new(kop.name(), sa, sb).map_err(|e| ctx.err(e.to_string()))?;
            let _ = bc;
            Ok(Prepared {
                eval: boxed(BinaryF32K { op: kop, plan, act }),
                shape,
                dtype: DType::F32,
                scratch: 0,
            })
        }
        d => Err(ctx.unsupported(format!("{d} inputs"))),
    }
}

/// Elements per parallel chunk of an element-wise operator.
const QROW: usize = 4096;

/// Work units (multiply-adds of a GEMM, the unit of `Exec::rows`) one element of a quantized
/// ADD/SUB/MUL costs: about three fixed-point rescales, so a few thousand elements already
/// outweigh a hand-off.
const Q_ELEM_WORK: usize = 8;

/// Outputs from which a quantized op with a single-value operand runs as a byte table (built
/// per call: 256 evaluations).
const TABLE_MIN: usize = 2048;

/// Work units of one f32 element-wise element.
const F32_ELEM_WORK: usize = 2;

struct BinaryQ {
    p: QBinary,
    plan: BroadcastPlan,
    unsigned: bool,
}

impl OpEval for BinaryQ {
    fn eval(&self, ins: &Inputs<'_>, out: &mut [u8], _scratch: &mut [u8], exec: &Exec) {
        let work = out.len() * Q_ELEM_WORK;
        let (na, nb) = self.plan.operand_lens();
        if (na == 1) != (nb == 1) && out.len() >= TABLE_MIN {
            // One operand is a single value: the op is a byte table of the other's codes.
            let (x, s, scalar_first) = if na == 1 {
                (ins.bytes(1), ins.bytes(0)[0], true)
            } else {
                (ins.bytes(0), ins.bytes(1)[0], false)
            };
            let table = if self.unsigned {
                binary_q_table::<u8>(&self.p, s, scalar_first)
            } else {
                binary_q_table::<i8>(&self.p, s as i8, scalar_first)
            };
            exec.rows(out, QROW, out.len(), &|r0, o| {
                lut8(&table, &x[r0 * QROW..r0 * QROW + o.len()], o)
            });
            return;
        }
        if self.unsigned {
            let (a, b) = (ins.bytes(0), ins.bytes(1));
            exec.rows(out, QROW, work, &|r0, o| {
                binary_u8(&self.p, &self.plan, a, b, o, r0 * QROW)
            });
        } else {
            let a: &[i8] = bytemuck::cast_slice(ins.bytes(0));
            let b: &[i8] = bytemuck::cast_slice(ins.bytes(1));
            let out: &mut [i8] = bytemuck::cast_slice_mut(out);
            exec.rows(out, QROW, work, &|r0, o| {
                binary_i8(&self.p, &self.plan, a, b, o, r0 * QROW)
            });
        }
    }
}

/// f32 binary operator on the kernel crate's broadcast-plan kernels, split in element chunks.
struct BinaryF32K {
    op: BinaryOp,
    plan: BroadcastPlan,
    act: Activation,
}

impl OpEval for BinaryF32K {
    fn eval(&self, ins: &Inputs<'_>, out: &mut [u8], _scratch: &mut [u8], exec: &Exec) {
        let (a, b) = (ins.f32(0), ins.f32(1));
        let out: &mut [f32] = bytemuck::cast_slice_mut(out);
        let range = act_range_f32(self.act);
        let work = out.len() * F32_ELEM_WORK;
        exec.rows(out, QROW, work, &|r0, o| {
            binary_f32(self.op, range, &self.plan, a, b, o, r0 * QROW);
            if self.act == Activation::Tanh {
                finish_f32(o, range.0, range.1, self.act);
            }
        });
    }
}
