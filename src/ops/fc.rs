//! FULLY_CONNECTED: `out[r, o] = sum_i x[r, i] * w[o, i] + bias[o]`, weights [O, I].

use sparq_schema::{Activation, DType, OpOptions};

use super::conv::finish_f32;
use super::{act_range_f32, boxed, elements, Ctx, Exec, Inputs, OpEval, Prepared};
use crate::Result;

pub(crate) fn prepare(ctx: &Ctx<'_, '_>) -> Result<Prepared> {
    ctx.expect_inputs(2, 3)?;
    let OpOptions::FullyConnected {
        activation,
        keep_num_dims,
        ..
    } = *ctx.options
    else {
        return Err(ctx.err("options are not FullyConnected options"));
    };
    let x = ctx.input(0)?;
    let (w, _) = ctx.const_input(1)?;
    let ws = ctx.expect_rank(w, 2)?;
    let (oc, ic) = (ws[0], ws[1]);
    let xs = ctx.shape(x);
    let n = elements(xs);
    if ic == 0 || !n.is_multiple_of(ic) {
        return Err(ctx.err(format!(
            "input {xs:?} is not a whole number of rows of {ic}"
        )));
    }
    let rows = n / ic;
    let shape = if keep_num_dims {
        if xs.last() != Some(&ic) {
            return Err(ctx.err(format!(
                "keep_num_dims with input {xs:?} and weights {ws:?}"
            )));
        }
        let mut s = xs.to_vec();
        *s.last_mut().unwrap() = oc;
        s
    } else {
        vec![rows, oc]
    };
    match ctx.dtype(x) {
        DType::F32 => {
            let wf = ctx.const_f32(w)?;
            // Pack transposed, [I][O], so the inner loop runs along outputs.
            let mut wt = vec![0f32; wf.len()];
            for o in 0..oc {
                for i in 0..ic {
                    wt[i * oc + o] = wf[o * ic + i];
                }
            }
            let bias = match ctx.opt_input(2) {
                None => vec![0.0; oc],
                Some(b) => {
                    if elements(ctx.shape(b)) != oc {
                        return Err(ctx.tensor_err(b, format!("bias is not [{oc}]")));
                    }
                    ctx.const_f32(b)?
                }
            };
            Ok(Prepared {
                eval: boxed(FcF32 {
                    ic,
                    oc,
                    wt,
                    bias,
                    act: activation,
                }),
                shape,
                dtype: DType::F32,
            })
        }
        d => Err(ctx.unsupported(format!("{d} input"))),
    }
}

struct FcF32 {
    ic: usize,
    oc: usize,
    wt: Vec<f32>,
    bias: Vec<f32>,
    act: Activation,
}

impl OpEval for FcF32 {
    fn eval(&self, ins: &Inputs<'_>, out: &mut [u8], exec: &Exec) {
        let x = ins.f32(0);
        let out: &mut [f32] = bytemuck::cast_slice_mut(out);
        let (lo, hi) = act_range_f32(self.act);
        let work = out.len() * self.ic;
        exec.rows(out, self.oc, work, &|r0, rows| {
            for (ri, o) in rows.chunks_exact_mut(self.oc).enumerate() {
                let xr = &x[(r0 + ri) * self.ic..][..self.ic];
                o.copy_from_slice(&self.bias);
                for (&v, wr) in xr.iter().zip(self.wt.chunks_exact(self.oc)) {
                    for (a, &w) in o.iter_mut().zip(wr) {
                        *a += v * w;
                    }
                }
                finish_f32(o, lo, hi, self.act);
            }
        });
    }
}
