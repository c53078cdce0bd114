//! Folding passes on the imported graph:
//! - DEQUANTIZE of a float16 constant: consumers read the f16 constant directly (the weights stay
//!   f16 in the `.sparq`; the interpreter widens them at prepare);
//! - DENSIFY of a sparse constant: consumers read the sparse constant directly;
//! - SHAPE → STRIDED_SLICE → PACK (→ CONCATENATION) chains on static shapes are computed into
//!   constants, so RESHAPE and friends get a constant shape operand.

use sparq_schema::tflite::{BuiltinOperator, TensorType};

use super::error::{ImportError, Result};
use super::graph::{element_size, Graph, Op, Options};

/// Largest constant (in elements) that shape arithmetic is folded into; bigger STRIDED_SLICE /
/// PACK / CONCATENATION results are left to the interpreter, so a hostile file cannot make
/// folding allocate more than the file justifies.
pub const MAX_FOLDED_ELEMENTS: usize = 4096;

/// Runs the folding passes in one forward sweep (operators are in execution order, so a folded
/// result is known before any reader of it): O(operators + tensors).
pub fn fold(g: &mut Graph) -> Result<()> {
    let n = g.tensors.len();
    // alias[t] = the tensor that replaces t (the source of a dropped DEQUANTIZE / DENSIFY).
    let mut alias: Vec<usize> = (0..n).collect();
    let mut is_output = vec![false; n];
    for &o in &g.outputs {
        is_output[o] = true;
    }
    let mut keep = vec![true; g.ops.len()];
    for (i, kept) in keep.iter_mut().enumerate() {
        for x in &mut g.ops[i].inputs {
            if *x >= 0 {
                *x = alias[*x as usize] as i32;
            }
        }
        match try_fold(g, i, &is_output)? {
            Folded::No => {}
            Folded::Constant => *kept = false,
            Folded::Alias { from, to } => {
                alias[from] = to;
                *kept = false;
            }
        }
    }
    let mut k = 0;
    g.ops.retain(|_| {
        k += 1;
        keep[k - 1]
    });
    Ok(())
}

enum Folded {
    No,
    /// The output became a constant.
    Constant,
    /// Readers of `from` read `to` instead.
    Alias {
        from: usize,
        to: usize,
    },
}

fn const_input(g: &Graph, op: &Op, k: usize) -> Option<usize> {
    let x = *op.inputs.get(k)?;
    (x >= 0 && g.tensors[x as usize].is_constant()).then_some(x as usize)
}

/// Folds operator `i` if it can be.
fn try_fold(g: &mut Graph, i: usize, is_output: &[bool]) -> Result<Folded> {
    let op = &g.ops[i];
    if op.outputs.len() != 1 {
        return Ok(Folded::No);
    }
    let out = op.outputs[0] as usize;
    if is_output[out] {
        return Ok(Folded::No);
    }
    let folded = |b: bool| if b { Folded::Constant } else { Folded::No };
    match op.code {
        BuiltinOperator::DEQUANTIZE => {
            let Some(src) = const_input(g, op, 0) else {
                return Ok(Folded::No);
            };
            if g.tensors[src].dtype != TensorType::FLOAT16 {
                return Ok(Folded::No);
            }
            check_same_shape(g, op, src, out)?;
            Ok(Folded::Alias { from: out, to: src })
        }
        BuiltinOperator::DENSIFY => {
            let Some(src) = const_input(g, op, 0) else {
                return Ok(Folded::No);
            };
            check_same_shape(g, op, src, out)?;
            if g.tensors[src].dtype != g.tensors[out].dtype {
                return Err(ImportError::invalid(
                    format!("operator {} {}", op.index, op.name()),
                    format!(
                        "input {} and output {} differ in type",
                        g.tensor_at(src),
                        g.tensor_at(out)
                    ),
                ));
            }
            if g.tensors[src].quant.is_none() {
                g.tensors[src].quant = g.tensors[out].quant.clone();
            }
            Ok(Folded::Alias { from: out, to: src })
        }
        BuiltinOperator::SHAPE => {
            let x = match op.inputs.first() {
                Some(&x) if x >= 0 => x as usize,
                _ => return Ok(Folded::No),
            };
            let dims: Vec<i64> = g.tensors[x].shape.iter().map(|&d| d as i64).collect();
            let data = match g.tensors[out].dtype {
                TensorType::INT32 => dims
                    .iter()
                    .flat_map(|&d| (d as i32).to_le_bytes())
                    .collect(),
                TensorType::INT64 => dims.iter().flat_map(|&d| d.to_le_bytes()).collect(),
                _ => return Ok(Folded::No),
            };
            set_const(g, out, vec![dims.len() as i32], data);
            Ok(Folded::Constant)
        }
        BuiltinOperator::STRIDED_SLICE => fold_strided_slice(g, i).map(folded),
        BuiltinOperator::PACK => fold_pack(g, i).map(folded),
        BuiltinOperator::CONCATENATION => fold_concat(g, i).map(folded),
        _ => Ok(Folded::No),
    }
}

fn check_same_shape(g: &Graph, op: &Op, src: usize, out: usize) -> Result<()> {
    if g.tensors[src].shape != g.tensors[out].shape {
        return Err(ImportError::invalid(
            format!("operator {} {}", op.index, op.name()),
            format!(
                "input {} has shape {:?} but output {} has shape {:?}",
                g.tensor_at(src),
                g.tensors[src].shape,
                g.tensor_at(out),
                g.tensors[out].shape
            ),
        ));
    }
    Ok(())
}

fn set_const(g: &mut Graph, t: usize, shape: Vec<i32>, data: Vec<u8>) {
    let t = &mut g.tensors[t];
    t.shape = shape;
    t.data = Some(data);
    t.sparse = None;
}

/// Integer values of a dense constant int32/int64 tensor.
fn ints(g: &Graph, t: usize) -> Option<Vec<i64>> {
    let d = g.tensors[t].data.as_ref()?;
    match g.tensors[t].dtype {
        TensorType::INT32 => Some(
            d.chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                .collect(),
        ),
        TensorType::INT64 => Some(
            d.chunks_exact(8)
                .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
        ),
        _ => None,
    }
}

/// STRIDED_SLICE of a constant vector with constant begin/end/strides (TFLite's semantics,
/// including the begin/end/shrink masks and `offset`). Other forms are left to the interpreter.
fn fold_strided_slice(g: &mut Graph, i: usize) -> Result<bool> {
    let op = &g.ops[i];
    let Options::StridedSlice {
        begin_mask,
        end_mask,
        ellipsis_mask,
        new_axis_mask,
        shrink_axis_mask,
        offset,
    } = op.options
    else {
        return Ok(false);
    };
    if ellipsis_mask != 0 || new_axis_mask != 0 || op.inputs.len() != 4 {
        return Ok(false);
    }
    let ids: Vec<Option<usize>> = (0..4).map(|k| const_input(g, op, k)).collect();
    let [Some(x), Some(b), Some(e), Some(s)] = ids[..] else {
        return Ok(false);
    };
    let xt = &g.tensors[x];
    let out_dtype = g.tensors[op.outputs[0] as usize].dtype;
    if xt.shape.len() != 1 || xt.sparse.is_some() || xt.dtype != out_dtype {
        return Ok(false);
    }
    let Some(es) = element_size(xt.dtype) else {
        return Ok(false);
    };
    let (Some(b), Some(e), Some(s)) = (ints(g, b), ints(g, e), ints(g, s)) else {
        return Ok(false);
    };
    if b.len() != 1 || e.len() != 1 || s.len() != 1 || s[0] == 0 {
        return Ok(false);
    }
    let len = xt.shape[0] as i64;
    let (mut begin, mut end, stride) = (b[0], e[0], s[0]);
    if offset {
        end = begin.saturating_add(end);
    }
    let norm = |v: i64| if v < 0 { v.saturating_add(len) } else { v };
    let data = xt.data.as_ref().expect("constant checked above");
    let out = op.outputs[0] as usize;
    if shrink_axis_mask & 1 != 0 {
        let at = norm(begin);
        if at < 0 || at >= len {
            return Ok(false);
        }
        let at = at as usize;
        let bytes = data[at * es..(at + 1) * es].to_vec();
        set_const(g, out, vec![], bytes);
        return Ok(true);
    }
    if stride > 0 {
        begin = if begin_mask & 1 != 0 {
            0
        } else {
            norm(begin).clamp(0, len)
        };
        end = if end_mask & 1 != 0 {
            len
        } else {
            norm(end).clamp(0, len)
        };
    } else {
        begin = if begin_mask & 1 != 0 {
            len - 1
        } else {
            norm(begin).clamp(-1, len - 1)
        };
        end = if end_mask & 1 != 0 {
            -1
        } else {
            norm(end).clamp(-1, len - 1)
        };
    }
    let mut bytes = Vec::new();
    let mut at = begin;
    while (stride > 0 && at < end) || (stride < 0 && at > end) {
        bytes.extend_from_slice(&data[at as usize * es..(at as usize + 1) * es]);
        at = at.saturating_add(stride);
    }
    let n = (bytes.len() / es) as i32;
    set_const(g, out, vec![n], bytes);
    Ok(true)
}

/// PACK of constants of equal shape and type along `axis`.
fn fold_pack(g: &mut Graph, i: usize) -> Result<bool> {
    let op = &g.ops[i];
    let Options::Pack { axis, .. } = op.options else {
        return Ok(false);
    };
    let mut ids = Vec::new();
    for k in 0..op.inputs.len() {
        match const_input(g, op, k) {
            Some(t) if g.tensors[t].data.is_some() => ids.push(t),
            _ => return Ok(false),
        }
    }
    let Some(&first) = ids.first() else {
        return Ok(false);
    };
    let (shape, dtype) = (g.tensors[first].shape.clone(), g.tensors[first].dtype);
    if ids
        .iter()
        .any(|&t| g.tensors[t].shape != shape || g.tensors[t].dtype != dtype)
    {
        return Ok(false);
    }
    let rank = shape.len() as i32;
    let a = if axis < 0 { axis + rank + 1 } else { axis };
    if a < 0 || a > rank {
        return Ok(false);
    }
    let Some(es) = element_size(dtype) else {
        return Ok(false);
    };
    let inner: usize = shape[a as usize..]
        .iter()
        .map(|&d| d as usize)
        .product::<usize>()
        * es;
    let outer: usize = shape[..a as usize].iter().map(|&d| d as usize).product();
    if outer.saturating_mul(inner).saturating_mul(ids.len()) > MAX_FOLDED_ELEMENTS * es {
        return Ok(false);
    }
    let mut bytes = Vec::with_capacity(outer * inner * ids.len());
    for o in 0..outer {
        for &t in &ids {
            let d = g.tensors[t].data.as_ref().expect("checked dense above");
            bytes.extend_from_slice(&d[o * inner..(o + 1) * inner]);
        }
    }
    let mut out_shape = shape;
    out_shape.insert(a as usize, ids.len() as i32);
    let out = g.ops[i].outputs[0] as usize;
    if g.tensors[out].dtype != dtype {
        return Ok(false);
    }
    set_const(g, out, out_shape, bytes);
    Ok(true)
}

/// CONCATENATION of constant int32/int64 vectors (shape arithmetic), without activation.
fn fold_concat(g: &mut Graph, i: usize) -> Result<bool> {
    let op = &g.ops[i];
    if !matches!(
        op.options,
        Options::Concatenation {
            activation: super::graph::Activation::None,
            ..
        }
    ) {
        return Ok(false);
    }
    let mut bytes = Vec::new();
    let mut n = 0i32;
    let out = op.outputs[0] as usize;
    let dtype = g.tensors[out].dtype;
    if !matches!(dtype, TensorType::INT32 | TensorType::INT64) {
        return Ok(false);
    }
    for k in 0..op.inputs.len() {
        let Some(t) = const_input(g, op, k) else {
            return Ok(false);
        };
        let tt = &g.tensors[t];
        let Some(d) = tt.data.as_ref() else {
            return Ok(false);
        };
        if tt.shape.len() != 1 || tt.dtype != dtype {
            return Ok(false);
        }
        n = n.saturating_add(tt.shape[0]);
        if n as usize > MAX_FOLDED_ELEMENTS {
            return Ok(false);
        }
        bytes.extend_from_slice(d);
    }
    set_const(g, out, vec![n], bytes);
    Ok(true)
}
