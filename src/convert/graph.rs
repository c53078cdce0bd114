//! The importer's working graph: TFLite's model, decoded, validated and owned, before it is
//! mapped to sparq's `ModelDef`. Folding passes (float16 DEQUANTIZE, DENSIFY, static shape
//! chains) work on this form.

use sparq_schema::tflite::{BuiltinOperator, TensorType};

/// Quantization parameters: real = scale × (q − zero_point); per-axis when `axis` is set.
#[derive(Debug, Clone, PartialEq)]
pub struct Quant {
    pub scales: Vec<f32>,
    pub zero_points: Vec<i64>,
    /// The dimension the scales run along (per-axis); `None` for per-tensor.
    pub axis: Option<usize>,
}

/// A sparse constant, as a 2-D matrix view of the tensor: rows = dimension 0 (output channels),
/// cols = the product of the other dimensions.
#[derive(Debug, Clone, PartialEq)]
pub enum Sparse {
    /// Compressed sparse rows: `row_ptr` has rows + 1 entries, `col_idx` and `values` one entry
    /// per stored element (`values` holds the element bytes).
    Csr {
        row_ptr: Vec<u32>,
        col_idx: Vec<u32>,
        values: Vec<u8>,
    },
    /// Block sparse rows with R×C blocks: `row_ptr` over block rows, `col_idx` in block columns,
    /// `values` block after block, row-major inside a block.
    Bsr {
        block: [u32; 2],
        row_ptr: Vec<u32>,
        col_idx: Vec<u32>,
        values: Vec<u8>,
    },
}

impl Sparse {
    /// Stored (structurally non-zero) elements.
    pub fn stored_elements(&self) -> usize {
        match self {
            Sparse::Csr { col_idx, .. } => col_idx.len(),
            Sparse::Bsr { block, col_idx, .. } => col_idx.len() * (block[0] * block[1]) as usize,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    /// Static shape (TFLite's `shape`; a dynamic batch is taken at its converted size).
    pub shape: Vec<i32>,
    pub dtype: TensorType,
    pub quant: Option<Quant>,
    /// Dense constant data, little-endian, `elements × size` bytes.
    pub data: Option<Vec<u8>>,
    /// Sparse constant data (then `data` is `None`).
    pub sparse: Option<Sparse>,
}

impl Tensor {
    pub fn is_constant(&self) -> bool {
        self.data.is_some() || self.sparse.is_some()
    }

    /// Element count of the shape (validated at import not to overflow).
    pub fn elements(&self) -> usize {
        self.shape.iter().map(|&d| d.max(0) as usize).product()
    }
}

/// Operator options, padding and fused activations are sparq's own (TFLite's meanings), so the
/// importer fills them in directly; UNPACK's options are carried as `Pack` (`values_count` = the
/// number of outputs), as sparq stores them.
pub use sparq_schema::{Activation, OpOptions as Options, Padding};

#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    /// Position of the operator in the TFLite subgraph (for messages).
    pub index: usize,
    pub code: BuiltinOperator,
    pub options: Options,
    /// Tensor indices; −1 marks an absent optional input.
    pub inputs: Vec<i32>,
    pub outputs: Vec<i32>,
}

impl Op {
    /// "CONV_2D" and the like.
    pub fn name(&self) -> String {
        op_name(self.code)
    }
}

/// TFLite's name of a builtin operator code, or `BUILTIN_<n>` for codes this schema lacks.
pub fn op_name(code: BuiltinOperator) -> String {
    code.variant_name()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("BUILTIN_{}", code.0))
}

/// TFLite's name of a tensor type.
pub fn type_name(t: TensorType) -> String {
    t.variant_name()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("TYPE_{}", t.0))
}

/// Bytes per element of the types sparq can hold, `None` for the others.
pub fn element_size(t: TensorType) -> Option<usize> {
    match t {
        TensorType::FLOAT32 | TensorType::INT32 => Some(4),
        TensorType::FLOAT16 | TensorType::INT16 => Some(2),
        TensorType::INT8 | TensorType::UINT8 | TensorType::BOOL => Some(1),
        TensorType::INT64 => Some(8),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Graph {
    pub tensors: Vec<Tensor>,
    pub ops: Vec<Op>,
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
    /// The model's description string (e.g. "MLIR Converted.").
    pub description: String,
    /// TFLite schema version of the source file.
    pub version: u32,
}

impl Graph {
    /// "tensor 3 \"dense/kernel\"" for messages.
    pub fn tensor_at(&self, i: usize) -> String {
        match self.tensors.get(i) {
            Some(t) => format!("tensor {i} \"{}\"", t.name),
            None => format!("tensor {i}"),
        }
    }
}
