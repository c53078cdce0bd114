//! The conversion summary `sparq-convert` prints: operators by kind, parameters, bytes before and
//! after, and the sparsity of every conv / fully-connected weight.

use std::fmt::Write as _;

use sparq_schema::{ModelDef, OpKind, SparseFormat, TensorDef};

/// One weighted layer of the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSparsity {
    pub op_index: usize,
    pub kind: OpKind,
    pub weight: String,
    pub shape: Vec<i32>,
    pub dtype: String,
    /// "dense", "csr" or "bsr RxC".
    pub storage: String,
    /// Fraction of zero weights.
    pub sparsity: f64,
}

/// Elements of a tensor's shape.
fn elements(t: &TensorDef) -> usize {
    t.shape.iter().map(|&d| d.max(0) as usize).product()
}

/// Fraction of zero elements of a constant (not stored, or stored as zero bytes).
pub fn zero_fraction(t: &TensorDef) -> f64 {
    let n = elements(t);
    if n == 0 {
        return 0.0;
    }
    let es = t.dtype.size_bytes();
    let nonzero = |b: &[u8]| b.chunks(es).filter(|c| c.iter().any(|&x| x != 0)).count();
    let nz = match (&t.sparse, &t.data) {
        (Some(s), _) => nonzero(&s.values),
        (None, Some(d)) => nonzero(d),
        (None, None) => n,
    };
    1.0 - nz as f64 / n as f64
}

/// Conv / depthwise / fully-connected / transpose-conv weights and their sparsity.
pub fn layer_sparsity(def: &ModelDef) -> Vec<LayerSparsity> {
    let mut out = Vec::new();
    for (i, op) in def.operators.iter().enumerate() {
        let w = match op.kind {
            OpKind::Conv2d | OpKind::DepthwiseConv2d | OpKind::FullyConnected => op.inputs.get(1),
            OpKind::TransposeConv => op.inputs.get(1),
            _ => None,
        };
        let Some(t) = w
            .and_then(|&w| usize::try_from(w).ok())
            .and_then(|w| def.tensors.get(w))
        else {
            continue;
        };
        if t.data.is_none() && t.sparse.is_none() {
            continue;
        }
        let storage = match t.sparse.as_ref().map(|s| s.format) {
            None => "dense".to_owned(),
            Some(SparseFormat::Csr) => "csr".to_owned(),
            Some(SparseFormat::Bsr {
                block_rows,
                block_cols,
            }) => {
                format!("bsr {block_rows}x{block_cols}")
            }
        };
        out.push(LayerSparsity {
            op_index: i,
            kind: op.kind,
            weight: t.name.clone(),
            shape: t.shape.clone(),
            dtype: t.dtype.to_string(),
            storage,
            sparsity: zero_fraction(t),
        });
    }
    out
}

/// The human-readable summary of a conversion.
pub fn summary(def: &ModelDef, bytes_before: usize, bytes_after: usize) -> String {
    let mut s = String::new();
    let mut kinds: Vec<(OpKind, usize)> = Vec::new();
    for op in &def.operators {
        match kinds.iter_mut().find(|(k, _)| *k == op.kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((op.kind, 1)),
        }
    }
    let list: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} x{n}")).collect();
    let _ = writeln!(
        s,
        "operators: {} ({})",
        def.operators.len(),
        list.join(", ")
    );
    let consts: Vec<&TensorDef> = def
        .tensors
        .iter()
        .filter(|t| t.data.is_some() || t.sparse.is_some())
        .collect();
    let params: usize = consts.iter().map(|t| elements(t)).sum();
    let mut by_dtype: Vec<(String, usize)> = Vec::new();
    for t in &consts {
        let d = t.dtype.to_string();
        match by_dtype.iter_mut().find(|(k, _)| *k == d) {
            Some((_, n)) => *n += elements(t),
            None => by_dtype.push((d, elements(t))),
        }
    }
    let list: Vec<String> = by_dtype.iter().map(|(d, n)| format!("{d} {n}")).collect();
    let _ = writeln!(s, "parameters: {params} ({})", list.join(", "));
    let _ = writeln!(
        s,
        "tensors: {} ({} constant), inputs {}, outputs {}",
        def.tensors.len(),
        consts.len(),
        def.inputs.len(),
        def.outputs.len()
    );
    let ratio = if bytes_before > 0 {
        bytes_after as f64 / bytes_before as f64
    } else {
        0.0
    };
    let _ = writeln!(
        s,
        "bytes: {bytes_before} before, {bytes_after} after ({ratio:.2}x)"
    );
    let layers = layer_sparsity(def);
    if !layers.is_empty() {
        let _ = writeln!(s, "sparsity per layer:");
        for l in layers {
            let _ = writeln!(
                s,
                "  op {:>3} {:<16} {:>5.1}% zero  {:<9} {} {:?} \"{}\"",
                l.op_index,
                l.kind.name(),
                l.sparsity * 100.0,
                l.storage,
                l.dtype,
                l.shape,
                l.weight
            );
        }
    }
    s
}
