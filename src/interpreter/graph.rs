//! The interpreter's view of a model: tensors with `usize` shapes and borrowed data, operators
//! with resolved tensor indices. Built from a [`ModelDef`] (checked here) or a validated model.

use sparq_schema::{matrix_dims, DType, ModelDef, OpKind, OpOptions, Quantization, SparseFormat};

use crate::{Error, Result};

/// A sparse constant, viewed as a 2-D matrix (rows = dimension 0, cols = the rest).
pub(crate) struct SparseView<'m> {
    pub format: SparseFormat,
    pub row_ptr: &'m [u32],
    pub col_idx: &'m [u32],
    pub values: &'m [u8],
}

impl SparseView<'_> {
    /// The dense row-major bytes, after checking every index against the shape.
    pub fn densify(&self, shape: &[usize], elem: usize) -> std::result::Result<Vec<u8>, String> {
        let dims: Vec<i32> = shape.iter().map(|&d| d as i32).collect();
        let (rows, cols) = matrix_dims(&dims).ok_or("sparse tensor has an empty shape")?;
        let (br, bc) = self.format.block();
        if br == 0 || bc == 0 {
            return Err("sparse block shape has a zero side".into());
        }
        let brows = rows.div_ceil(br);
        let bcols = cols.div_ceil(bc);
        if self.row_ptr.len() != brows + 1 {
            return Err(format!("row_ptr has {} entries, expected {}", self.row_ptr.len(), brows + 1));
        }
        let nblocks = self.col_idx.len();
        let block_bytes = br * bc * elem;
        if Some(self.values.len()) != nblocks.checked_mul(block_bytes) {
            return Err(format!("{} value bytes for {nblocks} blocks of {block_bytes}", self.values.len()));
        }
        let total = rows.checked_mul(cols).and_then(|v| v.checked_mul(elem)).ok_or("shape overflows")?;
        let mut dense = vec![0u8; total];
        for bi in 0..brows {
            let (s, e) = (self.row_ptr[bi] as usize, self.row_ptr[bi + 1] as usize);
            if s > e || e > nblocks {
                return Err(format!("row_ptr[{bi}..={}] = {s}..{e} is out of order or range", bi + 1));
            }
            for k in s..e {
                let bj = self.col_idx[k] as usize;
                if bj >= bcols {
                    return Err(format!("col_idx[{k}] = {bj} is out of range ({bcols} columns)"));
                }
                for i in 0..br {
                    for j in 0..bc {
                        let (r, c) = (bi * br + i, bj * bc + j);
                        if r < rows && c < cols {
                            let src = (k * br * bc + i * bc + j) * elem;
                            let dst = (r * cols + c) * elem;
                            dense[dst..dst + elem].copy_from_slice(&self.values[src..src + elem]);
                        }
                    }
                }
            }
        }
        Ok(dense)
    }
}

pub(crate) struct TensorView<'m> {
    pub name: &'m str,
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub quant: Option<&'m Quantization>,
    pub data: Option<&'m [u8]>,
    pub sparse: Option<SparseView<'m>>,
}

impl TensorView<'_> {
    pub fn byte_len(&self) -> Option<usize> {
        self.shape.iter().try_fold(self.dtype.size_bytes(), |a, &d| a.checked_mul(d))
    }
}

pub(crate) struct OpView<'m> {
    pub kind: OpKind,
    pub options: &'m OpOptions,
    /// `None` marks an absent optional input.
    pub inputs: Vec<Option<usize>>,
    pub outputs: Vec<usize>,
}

pub(crate) struct Graph<'m> {
    pub tensors: Vec<TensorView<'m>>,
    pub ops: Vec<OpView<'m>>,
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
}

/// Largest tensor the interpreter accepts (elements), so sizes never overflow downstream.
const MAX_ELEMENTS: usize = 1 << 31;

impl<'m> Graph<'m> {
    pub fn from_def(def: &'m ModelDef) -> Result<Graph<'m>> {
        let n = def.tensors.len();
        let mut tensors = Vec::with_capacity(n);
        for (i, t) in def.tensors.iter().enumerate() {
            let bad = |p: String| Error::InvalidTensor { index: i, name: t.name.clone(), problem: p };
            let mut shape = Vec::with_capacity(t.shape.len());
            let mut elements = 1usize;
            for &d in &t.shape {
                let d = usize::try_from(d).map_err(|_| bad(format!("negative dimension in {:?}", t.shape)))?;
                elements = elements.saturating_mul(d);
                shape.push(d);
            }
            if elements > MAX_ELEMENTS {
                return Err(bad(format!("shape {:?} has more than {MAX_ELEMENTS} elements", t.shape)));
            }
            let sparse = t.sparse.as_ref().map(|s| SparseView {
                format: s.format,
                row_ptr: &s.row_ptr,
                col_idx: &s.col_idx,
                values: &s.values,
            });
            tensors.push(TensorView {
                name: &t.name,
                shape,
                dtype: t.dtype,
                quant: t.quant.as_ref(),
                data: t.data.as_deref(),
                sparse,
            });
        }
        let index = |what: String, v: i64| -> Result<usize> {
            usize::try_from(v)
                .ok()
                .filter(|&v| v < n)
                .ok_or_else(|| Error::InvalidModel(format!("{what}: tensor index {v} out of range (0..{n})")))
        };
        let mut ops = Vec::with_capacity(def.operators.len());
        for (oi, op) in def.operators.iter().enumerate() {
            let mut inputs = Vec::with_capacity(op.inputs.len());
            for (k, &t) in op.inputs.iter().enumerate() {
                inputs.push(if t == -1 {
                    None
                } else {
                    Some(index(format!("operator {oi} ({}) input {k}", op.kind), t as i64)?)
                });
            }
            let mut outputs = Vec::with_capacity(op.outputs.len());
            for (k, &t) in op.outputs.iter().enumerate() {
                outputs.push(index(format!("operator {oi} ({}) output {k}", op.kind), t as i64)?);
            }
            ops.push(OpView { kind: op.kind, options: &op.options, inputs, outputs });
        }
        let inputs = def
            .inputs
            .iter()
            .map(|&t| index("graph input".into(), t as i64))
            .collect::<Result<Vec<_>>>()?;
        let outputs = def
            .outputs
            .iter()
            .map(|&t| index("graph output".into(), t as i64))
            .collect::<Result<Vec<_>>>()?;
        Ok(Graph { tensors, ops, inputs, outputs })
    }

    pub fn tensor_err(&self, i: usize, problem: impl Into<String>) -> Error {
        Error::InvalidTensor { index: i, name: self.tensors[i].name.to_string(), problem: problem.into() }
    }

    pub fn op_err(&self, i: usize, problem: impl Into<String>) -> Error {
        Error::InvalidOperator { index: i, kind: self.ops[i].kind.name().to_string(), problem: problem.into() }
    }
}
