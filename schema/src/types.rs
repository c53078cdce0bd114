//! Plain owned model types: what the importer and the converter passes build and edit, what the
//! writer serializes and what the reader decodes the file's metadata into.

use crate::fb;

/// Element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F16,
    I8,
    U8,
    I32,
}

impl DType {
    /// All dtypes, in file order.
    pub const ALL: [DType; 5] = [DType::F32, DType::F16, DType::I8, DType::U8, DType::I32];

    /// Size of one element in bytes.
    pub const fn size_bytes(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F16 => 2,
            DType::I8 | DType::U8 => 1,
        }
    }

    /// Lower-case name: `f32`, `f16`, `i8`, `u8`, `i32`.
    pub const fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::I8 => "i8",
            DType::U8 => "u8",
            DType::I32 => "i32",
        }
    }

    /// Whether quantization parameters may describe this dtype (`i8`, `u8`, `i32`).
    pub const fn is_quantizable(self) -> bool {
        matches!(self, DType::I8 | DType::U8 | DType::I32)
    }

    /// Inclusive range of a zero point for this dtype, `None` for float types.
    pub const fn zero_point_range(self) -> Option<(i64, i64)> {
        match self {
            DType::I8 => Some((i8::MIN as i64, i8::MAX as i64)),
            DType::U8 => Some((0, u8::MAX as i64)),
            DType::I32 => Some((i32::MIN as i64, i32::MAX as i64)),
            DType::F32 | DType::F16 => None,
        }
    }

    pub fn to_fb(self) -> fb::DType {
        match self {
            DType::F32 => fb::DType::F32,
            DType::F16 => fb::DType::F16,
            DType::I8 => fb::DType::I8,
            DType::U8 => fb::DType::U8,
            DType::I32 => fb::DType::I32,
        }
    }

    /// `None` for a value this version does not know.
    pub fn from_fb(d: fb::DType) -> Option<DType> {
        Some(match d {
            fb::DType::F32 => DType::F32,
            fb::DType::F16 => DType::F16,
            fb::DType::I8 => DType::I8,
            fb::DType::U8 => DType::U8,
            fb::DType::I32 => DType::I32,
            _ => return None,
        })
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Affine quantization, TFLite's meaning: `real = scale * (q - zero_point)`.
///
/// Per-tensor: one scale and one zero point, `axis = None`. Per-axis (per-channel): one scale and
/// one zero point per index of dimension `axis`.
#[derive(Clone, Debug, PartialEq)]
pub struct Quantization {
    pub scales: Vec<f32>,
    pub zero_points: Vec<i64>,
    pub axis: Option<usize>,
}

impl Quantization {
    /// Per-tensor quantization.
    pub fn per_tensor(scale: f32, zero_point: i64) -> Self {
        Quantization {
            scales: vec![scale],
            zero_points: vec![zero_point],
            axis: None,
        }
    }

    /// Per-axis quantization with zero points all 0 (symmetric weights).
    pub fn per_axis(scales: Vec<f32>, axis: usize) -> Self {
        let zero_points = vec![0; scales.len()];
        Quantization {
            scales,
            zero_points,
            axis: Some(axis),
        }
    }
}

/// Padding of convolutions and pools (TFLite's meaning).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Padding {
    Same,
    Valid,
}

/// A fused activation (TFLite's meaning).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Activation {
    #[default]
    None,
    Relu,
    ReluN1To1,
    Relu6,
    Tanh,
}

macro_rules! op_kinds {
    ($($name:ident),* $(,)?) => {
        /// The kind of an operator. Semantics follow the TFLite builtin op of the same name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum OpKind {
            $($name,)*
        }

        impl OpKind {
            /// All op kinds.
            pub const ALL: &'static [OpKind] = &[$(OpKind::$name,)*];

            /// The name, as written in this enum (`Conv2d`, `FullyConnected`…).
            pub const fn name(self) -> &'static str {
                match self {
                    $(OpKind::$name => stringify!($name),)*
                }
            }

            pub fn to_fb(self) -> fb::OpKind {
                match self {
                    $(OpKind::$name => fb::OpKind::$name,)*
                }
            }

            /// `None` for a value this version does not know.
            pub fn from_fb(k: fb::OpKind) -> Option<OpKind> {
                match k {
                    $(fb::OpKind::$name => Some(OpKind::$name),)*
                    _ => None,
                }
            }
        }
    };
}

op_kinds!(
    Conv2d,
    DepthwiseConv2d,
    FullyConnected,
    TransposeConv,
    Add,
    Sub,
    Mul,
    Div,
    Maximum,
    Minimum,
    Pad,
    PadV2,
    MaxPool2d,
    AveragePool2d,
    Mean,
    Sum,
    ReduceMax,
    Reshape,
    Squeeze,
    ExpandDims,
    Concatenation,
    StridedSlice,
    Slice,
    Transpose,
    DepthToSpace,
    SpaceToDepth,
    ResizeBilinear,
    ResizeNearestNeighbor,
    Softmax,
    LogSoftmax,
    Relu,
    Relu6,
    ReluN1To1,
    LeakyRelu,
    Prelu,
    HardSwish,
    Logistic,
    Tanh,
    Quantize,
    Dequantize,
    BatchMatMul,
    Gather,
    Pack,
    Unpack,
    Split,
    Square,
    Rsqrt,
    Sqrt,
    Exp,
    Abs,
    Neg,
    SquaredDifference,
);

impl std::fmt::Display for OpKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Typed operator options, one variant per options shape, with TFLite's meanings.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum OpOptions {
    /// No options (or ops whose options carry nothing).
    #[default]
    None,
    Conv2d {
        padding: Padding,
        stride_h: i32,
        stride_w: i32,
        dilation_h: i32,
        dilation_w: i32,
        activation: Activation,
    },
    DepthwiseConv2d {
        padding: Padding,
        stride_h: i32,
        stride_w: i32,
        dilation_h: i32,
        dilation_w: i32,
        depth_multiplier: i32,
        activation: Activation,
    },
    FullyConnected {
        activation: Activation,
        keep_num_dims: bool,
        /// Hybrid (f32 input, int8 weights): quantize the input asymmetrically (TFLite's
        /// `asymmetric_quantize_inputs`); false: symmetric.
        asymmetric_quantize_inputs: bool,
    },
    /// MaxPool2d, AveragePool2d.
    Pool2d {
        padding: Padding,
        stride_h: i32,
        stride_w: i32,
        filter_h: i32,
        filter_w: i32,
        activation: Activation,
    },
    TransposeConv {
        padding: Padding,
        stride_h: i32,
        stride_w: i32,
        activation: Activation,
    },
    /// Add, Sub, Mul, Div.
    Elementwise {
        activation: Activation,
    },
    Concatenation {
        axis: i32,
        activation: Activation,
    },
    Reshape {
        new_shape: Vec<i32>,
    },
    Squeeze {
        dims: Vec<i32>,
    },
    StridedSlice {
        begin_mask: i32,
        end_mask: i32,
        ellipsis_mask: i32,
        new_axis_mask: i32,
        shrink_axis_mask: i32,
        offset: bool,
    },
    DepthToSpace {
        block_size: i32,
    },
    SpaceToDepth {
        block_size: i32,
    },
    /// ResizeBilinear, ResizeNearestNeighbor.
    Resize {
        align_corners: bool,
        half_pixel_centers: bool,
    },
    /// Softmax (LogSoftmax has no options).
    Softmax {
        beta: f32,
    },
    /// Mean, Sum, ReduceMax.
    Reducer {
        keep_dims: bool,
    },
    LeakyRelu {
        alpha: f32,
    },
    Gather {
        axis: i32,
        batch_dims: i32,
    },
    /// Pack, Unpack (`values_count` = number of inputs of Pack, outputs of Unpack).
    Pack {
        axis: i32,
        values_count: i32,
    },
    Split {
        num_splits: i32,
    },
    BatchMatMul {
        adj_x: bool,
        adj_y: bool,
    },
}

/// How a sparse weight matrix is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SparseFormat {
    /// Compressed sparse rows: `row_ptr` [rows + 1], `col_idx` [nnz], values [nnz].
    Csr,
    /// Block sparse rows with blocks of `block_rows` × `block_cols`: `row_ptr` holds block-row
    /// pointers [ceil(rows / R) + 1], `col_idx` block-column indices [nblocks], values
    /// [nblocks · R · C] (block-major, row-major inside a block). Edge blocks are stored full
    /// size; their positions outside the matrix hold zero.
    Bsr { block_rows: u32, block_cols: u32 },
}

impl SparseFormat {
    /// Block shape (R, C); (1, 1) for CSR.
    pub fn block(self) -> (usize, usize) {
        match self {
            SparseFormat::Csr => (1, 1),
            SparseFormat::Bsr {
                block_rows,
                block_cols,
            } => (block_rows as usize, block_cols as usize),
        }
    }
}

/// Sparse encoding of a weight viewed as a 2-D matrix: rows = `shape[0]` (output channels), cols
/// = product of the other dimensions (for a conv weight [O, kh, kw, I]: kh·kw·I).
#[derive(Clone, Debug, PartialEq)]
pub struct SparseDef {
    pub format: SparseFormat,
    /// Row pointers (CSR) or block-row pointers (BSR).
    pub row_ptr: Vec<u32>,
    /// Column indices (CSR) or block-column indices (BSR), sorted inside each (block) row.
    pub col_idx: Vec<u32>,
    /// Stored values, little-endian elements of the tensor's dtype.
    pub values: Vec<u8>,
}

/// Rows and columns of the 2-D matrix view of a weight of this shape (see [`SparseDef`]).
/// `None` when the shape is empty, has a negative dimension, or overflows.
pub fn matrix_dims(shape: &[i32]) -> Option<(usize, usize)> {
    let (&first, rest) = shape.split_first()?;
    let rows = usize::try_from(first).ok()?;
    let mut cols = 1usize;
    for &d in rest {
        cols = cols.checked_mul(usize::try_from(d).ok()?)?;
    }
    Some((rows, cols))
}

impl SparseDef {
    /// Encodes a dense row-major matrix (`rows` × `cols` elements of `elem` bytes). An element
    /// (or a whole block, for BSR) is stored when any of its bytes is non-zero.
    ///
    /// Panics if `dense.len() != rows * cols * elem` or a block dimension is 0 (programming
    /// errors of the caller).
    pub fn encode(
        dense: &[u8],
        rows: usize,
        cols: usize,
        elem: usize,
        format: SparseFormat,
    ) -> Self {
        assert_eq!(dense.len(), rows * cols * elem, "dense matrix size");
        let (br, bc) = format.block();
        assert!(br > 0 && bc > 0, "block shape must be positive");
        let brows = rows.div_ceil(br);
        let bcols = cols.div_ceil(bc);
        let at = |r: usize, c: usize| &dense[(r * cols + c) * elem..(r * cols + c + 1) * elem];
        let mut row_ptr = vec![0u32];
        let mut col_idx = Vec::new();
        let mut values = Vec::new();
        let zero = vec![0u8; elem];
        for bi in 0..brows {
            for bj in 0..bcols {
                let mut nonzero = false;
                for r in bi * br..((bi + 1) * br).min(rows) {
                    for c in bj * bc..((bj + 1) * bc).min(cols) {
                        nonzero |= at(r, c).iter().any(|&b| b != 0);
                    }
                }
                if !nonzero {
                    continue;
                }
                col_idx.push(bj as u32);
                for r in bi * br..(bi + 1) * br {
                    for c in bj * bc..(bj + 1) * bc {
                        if r < rows && c < cols {
                            values.extend_from_slice(at(r, c));
                        } else {
                            values.extend_from_slice(&zero);
                        }
                    }
                }
            }
            row_ptr.push(col_idx.len() as u32);
        }
        SparseDef {
            format,
            row_ptr,
            col_idx,
            values,
        }
    }

    /// Number of stored blocks (stored elements for CSR).
    pub fn stored_blocks(&self) -> usize {
        self.col_idx.len()
    }

    /// Decodes into a dense row-major matrix of `rows` × `cols` elements of `elem` bytes.
    /// `None` if the encoding is inconsistent with that shape.
    pub fn decode(&self, rows: usize, cols: usize, elem: usize) -> Option<Vec<u8>> {
        let (br, bc) = self.format.block();
        let block_bytes = br.checked_mul(bc)?.checked_mul(elem)?;
        if self.row_ptr.len() != rows.div_ceil(br) + 1
            || self.values.len() != self.col_idx.len().checked_mul(block_bytes)?
        {
            return None;
        }
        let mut dense = vec![0u8; rows.checked_mul(cols)?.checked_mul(elem)?];
        for bi in 0..rows.div_ceil(br) {
            let (start, end) = (self.row_ptr[bi] as usize, self.row_ptr[bi + 1] as usize);
            for k in start..end.min(self.col_idx.len()) {
                let bj = self.col_idx[k] as usize;
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
        Some(dense)
    }
}

/// A tensor: an activation (no data) or a constant (dense `data` or a `sparse` encoding).
#[derive(Clone, Debug, PartialEq)]
pub struct TensorDef {
    pub name: String,
    /// Dimensions; -1 is not allowed (shapes are static).
    pub shape: Vec<i32>,
    pub dtype: DType,
    pub quant: Option<Quantization>,
    /// Dense row-major little-endian bytes of a constant.
    pub data: Option<Vec<u8>>,
    /// Sparse encoding of a constant weight (then `data` is `None`).
    pub sparse: Option<SparseDef>,
}

impl TensorDef {
    /// An activation (no data, no quantization).
    pub fn activation(name: impl Into<String>, shape: Vec<i32>, dtype: DType) -> Self {
        TensorDef {
            name: name.into(),
            shape,
            dtype,
            quant: None,
            data: None,
            sparse: None,
        }
    }

    /// A dense constant.
    pub fn constant(name: impl Into<String>, shape: Vec<i32>, dtype: DType, data: Vec<u8>) -> Self {
        TensorDef {
            name: name.into(),
            shape,
            dtype,
            quant: None,
            data: Some(data),
            sparse: None,
        }
    }

    /// Builder-style: sets the quantization.
    pub fn with_quant(mut self, quant: Quantization) -> Self {
        self.quant = Some(quant);
        self
    }
}

/// An operator: `inputs` and `outputs` are tensor indices; -1 in `inputs` marks an absent
/// optional input (as in TFLite).
#[derive(Clone, Debug, PartialEq)]
pub struct OpDef {
    pub kind: OpKind,
    pub options: OpOptions,
    pub inputs: Vec<i32>,
    pub outputs: Vec<i32>,
}

/// Producer, conversion settings and per-layer sparsity.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Metadata {
    pub producer: String,
    /// Conversion settings as (key, value), e.g. ("quantize", "int8").
    pub settings: Vec<(String, String)>,
    /// Fraction of zero weights per pruned layer, as (layer or tensor name, sparsity).
    pub layer_sparsity: Vec<(String, f32)>,
}

/// A whole model, as plain data. `operators` are in execution (topological) order.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ModelDef {
    pub tensors: Vec<TensorDef>,
    pub operators: Vec<OpDef>,
    pub inputs: Vec<u32>,
    pub outputs: Vec<u32>,
    pub metadata: Metadata,
}

impl ModelDef {
    /// Appends a tensor and returns its index.
    pub fn add_tensor(&mut self, t: TensorDef) -> u32 {
        self.tensors.push(t);
        (self.tensors.len() - 1) as u32
    }

    /// Appends an operator.
    pub fn add_op(&mut self, kind: OpKind, options: OpOptions, inputs: &[i32], outputs: &[i32]) {
        self.operators.push(OpDef {
            kind,
            options,
            inputs: inputs.to_vec(),
            outputs: outputs.to_vec(),
        });
    }
}
