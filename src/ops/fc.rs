//! FULLY_CONNECTED: `out[r, o] = sum_i x[r, i] * w[o, i] + bias[o]`, weights [O, I].

use sparq_schema::OpOptions;

use super::conv::Geometry;
use super::{elements, Ctx, Prepared};
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
    let g = Geometry {
        n: rows,
        ih: 1,
        iw: 1,
        ic,
        oh: 1,
        ow: 1,
        oc,
        kh: 1,
        kw: 1,
        sh: 1,
        sw: 1,
        dh: 1,
        dw: 1,
        pad_t: 0,
        pad_l: 0,
    };
    let op = super::gemm::prepare(ctx, g, activation)?;
    Ok(op.into_prepared(shape, ctx.dtype(x)))
}
