//! Mapping the folded importer graph to sparq's [`ModelDef`]: operator kinds and options, dtypes,
//! quantization, sparse encodings; tensors nobody reads or writes any more (DEQUANTIZE and
//! DENSIFY outputs, folded shape arithmetic) are dropped and indices renumbered.

use sparq_schema::tflite::{BuiltinOperator as B, TensorType};
use sparq_schema::{
    DType, Metadata, ModelDef, OpDef, OpKind, OpOptions, Quantization, SparseDef, SparseFormat,
    TensorDef,
};

use super::error::{ImportError, Result};
use super::graph::{op_name, type_name, Graph, Op, Sparse};

/// The sparq operator kind of a TFLite builtin, or why there is none.
fn kind_of(code: B) -> std::result::Result<OpKind, String> {
    Ok(match code {
        B::CONV_2D => OpKind::Conv2d,
        B::DEPTHWISE_CONV_2D => OpKind::DepthwiseConv2d,
        B::FULLY_CONNECTED => OpKind::FullyConnected,
        B::TRANSPOSE_CONV => OpKind::TransposeConv,
        B::ADD => OpKind::Add,
        B::SUB => OpKind::Sub,
        B::MUL => OpKind::Mul,
        B::DIV => OpKind::Div,
        B::MAXIMUM => OpKind::Maximum,
        B::MINIMUM => OpKind::Minimum,
        B::PAD => OpKind::Pad,
        B::PADV2 => OpKind::PadV2,
        B::MAX_POOL_2D => OpKind::MaxPool2d,
        B::AVERAGE_POOL_2D => OpKind::AveragePool2d,
        B::MEAN => OpKind::Mean,
        B::SUM => OpKind::Sum,
        B::REDUCE_MAX => OpKind::ReduceMax,
        B::RESHAPE => OpKind::Reshape,
        B::SQUEEZE => OpKind::Squeeze,
        B::EXPAND_DIMS => OpKind::ExpandDims,
        B::CONCATENATION => OpKind::Concatenation,
        B::STRIDED_SLICE => OpKind::StridedSlice,
        B::SLICE => OpKind::Slice,
        B::TRANSPOSE => OpKind::Transpose,
        B::DEPTH_TO_SPACE => OpKind::DepthToSpace,
        B::SPACE_TO_DEPTH => OpKind::SpaceToDepth,
        B::RESIZE_BILINEAR => OpKind::ResizeBilinear,
        B::RESIZE_NEAREST_NEIGHBOR => OpKind::ResizeNearestNeighbor,
        B::SOFTMAX => OpKind::Softmax,
        B::LOG_SOFTMAX => OpKind::LogSoftmax,
        B::RELU => OpKind::Relu,
        B::RELU6 => OpKind::Relu6,
        B::RELU_N1_TO_1 => OpKind::ReluN1To1,
        B::LEAKY_RELU => OpKind::LeakyRelu,
        B::PRELU => OpKind::Prelu,
        B::HARD_SWISH => OpKind::HardSwish,
        B::LOGISTIC => OpKind::Logistic,
        B::TANH => OpKind::Tanh,
        B::QUANTIZE => OpKind::Quantize,
        B::DEQUANTIZE => OpKind::Dequantize,
        B::BATCH_MATMUL => OpKind::BatchMatMul,
        B::GATHER => OpKind::Gather,
        B::PACK => OpKind::Pack,
        B::UNPACK => OpKind::Unpack,
        B::SPLIT => OpKind::Split,
        B::SQUARE => OpKind::Square,
        B::RSQRT => OpKind::Rsqrt,
        B::SQRT => OpKind::Sqrt,
        B::EXP => OpKind::Exp,
        B::ABS => OpKind::Abs,
        B::NEG => OpKind::Neg,
        B::SQUARED_DIFFERENCE => OpKind::SquaredDifference,
        B::SHAPE => {
            return Err(
                "SHAPE of a tensor whose shape is not static; sparq runs static shapes \
                        and needs it folded to a constant"
                    .into(),
            )
        }
        B::DENSIFY => {
            return Err(
                "DENSIFY of a tensor that is not a sparse constant; sparq would need a \
                        run-time densify op"
                    .into(),
            )
        }
        B::CALL | B::IF | B::WHILE | B::CALL_ONCE => {
            return Err(
                "control flow across subgraphs; sparq runs subgraph 0 only and would \
                        need subgraph calls"
                    .into(),
            )
        }
        B::LSTM
        | B::UNIDIRECTIONAL_SEQUENCE_LSTM
        | B::BIDIRECTIONAL_SEQUENCE_LSTM
        | B::RNN
        | B::UNIDIRECTIONAL_SEQUENCE_RNN
        | B::BIDIRECTIONAL_SEQUENCE_RNN
        | B::SVDF => {
            return Err(
                "recurrent operators need state tensors and a recurrent kernel, which \
                        sparq does not have"
                    .into(),
            )
        }
        other => {
            return Err(format!(
                "sparq has no {} operator; it would need an OpKind and a kernel for it",
                op_name(other)
            ))
        }
    })
}

fn fix_depth_multiplier(g: &Graph, op: &Op, o: OpOptions) -> OpOptions {
    let OpOptions::DepthwiseConv2d {
        padding,
        stride_h,
        stride_w,
        dilation_h,
        dilation_w,
        depth_multiplier,
        activation,
    } = o
    else {
        return o;
    };
    let channels = |k: usize| -> Option<i32> {
        let t = *op.inputs.get(k)?;
        let shape = &g.tensors.get(usize::try_from(t).ok()?)?.shape;
        shape.last().copied().filter(|&c| c > 0)
    };
    let derived = match (channels(0), channels(1)) {
        (Some(cin), Some(cout)) if cout % cin == 0 => cout / cin,
        _ => 1,
    };
    OpOptions::DepthwiseConv2d {
        padding,
        stride_h,
        stride_w,
        dilation_h,
        dilation_w,
        depth_multiplier: if depth_multiplier >= 1 {
            depth_multiplier
        } else {
            derived
        },
        activation,
    }
}

/// The sparq dtype of a tensor; int64 constants (shape arithmetic) narrow to int32 when every
/// value fits.
fn dtype_and_data(g: &Graph, i: usize) -> Result<(DType, Option<Vec<u8>>)> {
    let t = &g.tensors[i];
    let dt = match t.dtype {
        TensorType::FLOAT32 => DType::F32,
        TensorType::FLOAT16 => DType::F16,
        TensorType::INT8 => DType::I8,
        TensorType::UINT8 => DType::U8,
        TensorType::INT32 => DType::I32,
        TensorType::INT64 if t.sparse.is_none() => {
            if let Some(d) = &t.data {
                let mut out = Vec::with_capacity(d.len() / 2);
                for c in d.chunks_exact(8) {
                    let v = i64::from_le_bytes(c.try_into().expect("8-byte chunk"));
                    let v = i32::try_from(v).map_err(|_| {
                        ImportError::unsupported(
                            g.tensor_at(i),
                            format!("int64 constant value {v} does not fit int32"),
                        )
                    })?;
                    out.extend_from_slice(&v.to_le_bytes());
                }
                return Ok((DType::I32, Some(out)));
            }
            return Err(ImportError::unsupported(
                g.tensor_at(i),
                "int64 activations",
            ));
        }
        other => {
            return Err(ImportError::unsupported(
                g.tensor_at(i),
                format!(
                    "tensor type {} (sparq holds f32, f16, i8, u8, i32)",
                    type_name(other)
                ),
            ))
        }
    };
    Ok((dt, t.data.clone()))
}

fn sparse_def(s: &Sparse) -> SparseDef {
    match s.clone() {
        Sparse::Csr {
            row_ptr,
            col_idx,
            values,
        } => SparseDef {
            format: SparseFormat::Csr,
            row_ptr,
            col_idx,
            values,
        },
        Sparse::Bsr {
            block,
            row_ptr,
            col_idx,
            values,
        } => SparseDef {
            format: SparseFormat::Bsr {
                block_rows: block[0],
                block_cols: block[1],
            },
            row_ptr,
            col_idx,
            values,
        },
    }
}

/// Builds the `ModelDef` of a folded graph.
pub fn to_model_def(g: &Graph) -> Result<ModelDef> {
    let mut kinds = Vec::with_capacity(g.ops.len());
    for op in &g.ops {
        let kind = kind_of(op.code).map_err(|needs| ImportError::UnsupportedOp {
            index: op.index,
            op: op.name(),
            needs,
        })?;
        // TFLite marks absent optional inputs with -1; only a few positions are optional.
        for (k, &x) in op.inputs.iter().enumerate() {
            if x < 0 && !crate::model::optional_input(kind, k) {
                return Err(ImportError::invalid(
                    format!("operator {} {}", op.index, op.name()),
                    format!("input {k} is absent (-1) but {kind} requires it"),
                ));
            }
        }
        kinds.push(kind);
    }

    // Keep the tensors the graph still refers to, in their original order.
    let n = g.tensors.len();
    let mut used = vec![false; n];
    for &i in g.inputs.iter().chain(&g.outputs) {
        used[i] = true;
    }
    for op in &g.ops {
        for &x in op.inputs.iter().chain(&op.outputs) {
            if x >= 0 {
                used[x as usize] = true;
            }
        }
    }
    let mut remap = vec![u32::MAX; n];
    let mut tensors = Vec::new();
    for i in 0..n {
        if !used[i] {
            continue;
        }
        let t = &g.tensors[i];
        let (dtype, data) = dtype_and_data(g, i)?;
        let quant = t
            .quant
            .as_ref()
            .filter(|_| dtype.is_quantizable())
            .map(|q| Quantization {
                scales: q.scales.clone(),
                zero_points: q.zero_points.clone(),
                axis: q.axis,
            });
        let sparse = t.sparse.as_ref().map(sparse_def);
        remap[i] = tensors.len() as u32;
        tensors.push(TensorDef {
            name: t.name.clone(),
            shape: t.shape.clone(),
            dtype,
            quant,
            data,
            sparse,
        });
    }
    let map = |x: i32| if x < 0 { -1 } else { remap[x as usize] as i32 };
    let operators = g
        .ops
        .iter()
        .zip(kinds)
        .map(|(op, kind)| OpDef {
            kind,
            options: fix_depth_multiplier(g, op, op.options.clone()),
            inputs: op.inputs.iter().map(|&x| map(x)).collect(),
            outputs: op.outputs.iter().map(|&x| map(x)).collect(),
        })
        .collect();
    let mut settings = vec![
        ("source".to_owned(), "tflite".to_owned()),
        ("tflite_schema_version".to_owned(), g.version.to_string()),
        ("quantize".to_owned(), "keep".to_owned()),
    ];
    if !g.description.is_empty() {
        settings.push(("tflite_description".to_owned(), g.description.clone()));
    }
    // Per-layer sparsity of the weights stored sparse.
    let layer_sparsity = tensors
        .iter()
        .filter(|t| t.sparse.is_some())
        .map(|t| (t.name.clone(), super::summary::zero_fraction(t) as f32))
        .collect();
    Ok(ModelDef {
        tensors,
        operators,
        inputs: g.inputs.iter().map(|&i| remap[i]).collect(),
        outputs: g.outputs.iter().map(|&i| remap[i]).collect(),
        metadata: Metadata {
            producer: format!("sparq {} (TFLite import)", env!("CARGO_PKG_VERSION")),
            settings,
            layer_sparsity,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::graph::{Activation, Options, Padding, Tensor};
    use sparq_schema::tflite::TensorType;

    fn t(name: &str, shape: &[i32], data: bool) -> Tensor {
        Tensor {
            name: name.into(),
            shape: shape.to_vec(),
            dtype: TensorType::FLOAT32,
            quant: None,
            data: data.then(|| vec![0u8; shape.iter().product::<i32>() as usize * 4]),
            sparse: None,
        }
    }

    /// A DEPTHWISE_CONV_2D written with depth_multiplier 0 gets it from the shapes.
    #[test]
    fn missing_depth_multiplier_is_derived() {
        for (written, want) in [(0, 2), (-3, 2), (2, 2)] {
            let g = Graph {
                tensors: vec![
                    t("x", &[1, 8, 8, 4], false),
                    t("w", &[1, 3, 3, 8], true),
                    t("y", &[1, 8, 8, 8], false),
                ],
                ops: vec![Op {
                    index: 0,
                    code: B::DEPTHWISE_CONV_2D,
                    options: Options::DepthwiseConv2d {
                        padding: Padding::Same,
                        stride_h: 1,
                        stride_w: 1,
                        dilation_h: 1,
                        dilation_w: 1,
                        depth_multiplier: written,
                        activation: Activation::None,
                    },
                    inputs: vec![0, 1, -1],
                    outputs: vec![2],
                }],
                inputs: vec![0],
                outputs: vec![2],
                ..Default::default()
            };
            let def = to_model_def(&g).unwrap();
            match &def.operators[0].options {
                OpOptions::DepthwiseConv2d {
                    depth_multiplier, ..
                } => {
                    assert_eq!(*depth_multiplier, want, "written {written}")
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
