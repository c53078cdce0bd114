//! Reading a `.tflite` file into the importer's [`Graph`]: FlatBuffer verification with limits,
//! then every index, length, shape, quantization and sparsity parameter checked before use.
//! A `.tflite` is untrusted input: nothing here panics or allocates more than the file justifies.

use sparq_schema::tflite::{
    self as tfl, ActivationFunctionType, BuiltinOperator, DimensionType, SparseIndexVector,
    TensorType,
};

use super::error::{ImportError, Result};
use super::graph::{
    element_size, op_name, type_name, Activation, Graph, Op, Options, Padding, Quant, Tensor,
};
use super::sparse::{decode_sparse, SparseLevel, SparseSpec};

/// Highest tensor rank accepted (as `.sparq`).
pub const MAX_RANK: usize = crate::model::MAX_RANK;
/// Largest element count of one tensor (as `.sparq`).
pub const MAX_ELEMENTS: u64 = crate::model::MAX_TENSOR_ELEMENTS as u64;

/// Decodes and validates subgraph 0 of a TFLite model.
pub fn read(file: &[u8]) -> Result<Graph> {
    let model = tfl::verified_model(file).map_err(|e| {
        // The verifier's message spans lines (error, then a trace of fields): keep one line.
        let text = e.to_string();
        let msg = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>();
        let msg = msg.join(", ");
        if tfl::has_tflite_identifier(file) {
            ImportError::NotTflite(msg)
        } else {
            ImportError::NotTflite(format!("{msg} (and no TFL3 file identifier)"))
        }
    })?;
    let version = model.version();
    if version != 3 {
        return Err(ImportError::unsupported(
            "model",
            format!("schema version {version} (sparq reads version 3)"),
        ));
    }
    let subgraphs = model
        .subgraphs()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ImportError::invalid("model", "no subgraphs"))?;
    let sg = subgraphs.get(0);
    let buffers = model.buffers();
    let codes = model.operator_codes();

    let tensors_fb = sg
        .tensors()
        .ok_or_else(|| ImportError::invalid("subgraph 0", "no tensor list"))?;
    let mut tensors = Vec::with_capacity(tensors_fb.len());
    // Tensors may share a buffer; the copies they get are bounded so that a small file cannot
    // make the importer allocate without bound by pointing many tensors at one large buffer.
    let budget = (file.len() as u64)
        .saturating_mul(4)
        .saturating_add(64 << 20);
    let mut copied: u64 = 0;
    for (i, t) in tensors_fb.iter().enumerate() {
        tensors.push(read_tensor(file, buffers, i, &t, budget, &mut copied)?);
    }
    let n_tensors = tensors.len();

    let io = |list: Option<flatbuffers::Vector<'_, i32>>, what: &str| -> Result<Vec<usize>> {
        let mut out = Vec::new();
        for (k, idx) in list.into_iter().flatten().enumerate() {
            let i = usize::try_from(idx)
                .ok()
                .filter(|&i| i < n_tensors)
                .ok_or_else(|| {
                    ImportError::invalid(
                        format!("subgraph 0 {what} {k}"),
                        format!("tensor index {idx} out of range ({n_tensors} tensors)"),
                    )
                })?;
            out.push(i);
        }
        Ok(out)
    };
    let inputs = io(sg.inputs(), "input")?;
    let outputs = io(sg.outputs(), "output")?;

    let mut ops = Vec::new();
    for (index, op) in sg.operators().into_iter().flatten().enumerate() {
        ops.push(read_op(codes, index, &op, n_tensors)?);
    }

    let graph = Graph {
        tensors,
        ops,
        inputs,
        outputs,
        description: model.description().unwrap_or("").to_owned(),
        version,
    };
    check_dataflow(&graph)?;
    Ok(graph)
}

fn tensor_at(i: usize, name: &str) -> String {
    format!("tensor {i} \"{name}\"")
}

fn read_tensor(
    file: &[u8],
    buffers: Option<flatbuffers::Vector<'_, flatbuffers::ForwardsUOffset<tfl::Buffer<'_>>>>,
    i: usize,
    t: &tfl::Tensor<'_>,
    budget: u64,
    copied: &mut u64,
) -> Result<Tensor> {
    let name = t.name().unwrap_or("").to_owned();
    let at = tensor_at(i, &name);
    if t.is_variable() {
        return Err(ImportError::unsupported(
            &at,
            "variable tensors (stateful models)",
        ));
    }
    let dtype = t.type_();
    let shape: Vec<i32> = t.shape().map(|s| s.iter().collect()).unwrap_or_default();
    if shape.len() > MAX_RANK {
        return Err(ImportError::invalid(
            &at,
            format!("rank {} exceeds {MAX_RANK}", shape.len()),
        ));
    }
    // Every partial product is bounded (as `.sparq` checks it), even when a later dimension is 0.
    let mut elements: u64 = 1;
    for (d, &s) in shape.iter().enumerate() {
        if s < 0 {
            return Err(ImportError::invalid(&at, format!("dimension {d} is {s}")));
        }
        elements = elements.saturating_mul(s as u64);
        if elements > MAX_ELEMENTS {
            return Err(ImportError::invalid(
                &at,
                format!("shape {shape:?} has more than {MAX_ELEMENTS} elements"),
            ));
        }
    }

    let quant = match t.quantization() {
        Some(q) => read_quant(&at, &q, dtype, &shape)?,
        None => None,
    };

    // Constant data: buffer 0 is TFLite's empty sentinel.
    let bidx = t.buffer() as usize;
    let raw: Option<&[u8]> = if bidx == 0 {
        None
    } else {
        let buffers = buffers.ok_or_else(|| {
            ImportError::invalid(&at, format!("buffer {bidx} but the model has no buffers"))
        })?;
        if bidx >= buffers.len() {
            return Err(ImportError::invalid(
                &at,
                format!("buffer {bidx} out of range ({} buffers)", buffers.len()),
            ));
        }
        buffer_bytes(file, &buffers.get(bidx), bidx, &at)?
    };

    let mut tensor = Tensor {
        name,
        shape,
        dtype,
        quant,
        data: None,
        sparse: None,
    };
    let Some(raw) = raw else {
        if t.sparsity().is_some() {
            return Err(ImportError::invalid(
                &at,
                "sparsity parameters without data",
            ));
        }
        let bytes = elements.saturating_mul(element_size(dtype).unwrap_or(1) as u64);
        if bytes > crate::model::MAX_ACTIVATION_BYTES as u64 {
            return Err(ImportError::invalid(
                &at,
                format!(
                    "activation of {bytes} bytes exceeds the maximum {}",
                    crate::model::MAX_ACTIVATION_BYTES
                ),
            ));
        }
        return Ok(tensor);
    };
    let esize = element_size(dtype).ok_or_else(|| {
        ImportError::unsupported(&at, format!("constant of type {}", type_name(dtype)))
    })?;
    *copied = copied.saturating_add(raw.len() as u64);
    if *copied > budget {
        return Err(ImportError::invalid(
            &at,
            format!(
                "constants reference {} bytes of buffers in a {}-byte file (shared buffers \
                 beyond the limit of {budget})",
                *copied,
                file.len()
            ),
        ));
    }
    match t.sparsity() {
        None => {
            let want = elements * esize as u64;
            if raw.len() as u64 != want {
                return Err(ImportError::invalid(
                    &at,
                    format!(
                        "buffer {bidx} has {} bytes, shape {:?} of {} needs {want}",
                        raw.len(),
                        tensor.shape,
                        type_name(dtype)
                    ),
                ));
            }
            tensor.data = Some(raw.to_vec());
        }
        Some(sp) => {
            // Consumers may densify a sparse weight: its dense size is bounded like an activation.
            let dense = elements * esize as u64;
            if dense > crate::model::MAX_ACTIVATION_BYTES as u64 {
                return Err(ImportError::invalid(
                    &at,
                    format!(
                        "sparse weight's dense size of {dense} bytes exceeds the maximum {}",
                        crate::model::MAX_ACTIVATION_BYTES
                    ),
                ));
            }
            let spec = read_sparsity(&at, &sp)?;
            tensor.sparse = Some(decode_sparse(&at, &tensor.shape, esize, &spec, raw)?);
        }
    }
    Ok(tensor)
}

/// The bytes of a buffer: inside the FlatBuffer (`data`) or at `offset` in the file.
fn buffer_bytes<'f>(
    file: &'f [u8],
    b: &tfl::Buffer<'f>,
    bidx: usize,
    at: &str,
) -> Result<Option<&'f [u8]>> {
    if let Some(d) = b.data().filter(|d| !d.is_empty()) {
        return Ok(Some(d.bytes()));
    }
    let (offset, size) = (b.offset(), b.size());
    if offset <= 1 {
        return Ok(None);
    }
    let end = offset
        .checked_add(size)
        .filter(|&e| e <= file.len() as u64)
        .ok_or_else(|| {
            ImportError::invalid(
                at,
                format!(
                    "buffer {bidx} [offset {offset}, size {size}] ends past the end of the file \
                 ({} bytes)",
                    file.len()
                ),
            )
        })?;
    Ok(Some(&file[offset as usize..end as usize]))
}

fn read_quant(
    at: &str,
    q: &tfl::QuantizationParameters<'_>,
    dtype: TensorType,
    shape: &[i32],
) -> Result<Option<Quant>> {
    if q.details_type() != tfl::QuantizationDetails::NONE {
        return Err(ImportError::unsupported(at, "custom quantization details"));
    }
    let scales: Vec<f32> = q.scale().map(|v| v.iter().collect()).unwrap_or_default();
    let mut zero_points: Vec<i64> = q
        .zero_point()
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    if scales.is_empty() {
        // Float tensors often carry an empty table, or only min/max for re-import into TF.
        if !zero_points.is_empty() {
            return Err(ImportError::invalid(at, "zero points without scales"));
        }
        return Ok(None);
    }
    if zero_points.is_empty() {
        zero_points = vec![0; scales.len()];
    }
    if zero_points.len() != scales.len() {
        return Err(ImportError::invalid(
            at,
            format!(
                "{} scales but {} zero points",
                scales.len(),
                zero_points.len()
            ),
        ));
    }
    for (k, &s) in scales.iter().enumerate() {
        if !s.is_finite() || s <= 0.0 {
            return Err(ImportError::invalid(
                at,
                format!("quantization scale {k} is {s}"),
            ));
        }
    }
    let (lo, hi): (i64, i64) = match dtype {
        TensorType::INT8 => (-128, 127),
        TensorType::UINT8 => (0, 255),
        TensorType::INT16 => (-32768, 32767),
        _ => (i32::MIN as i64, i32::MAX as i64),
    };
    for (k, &z) in zero_points.iter().enumerate() {
        if z < lo || z > hi {
            return Err(ImportError::invalid(
                at,
                format!(
                    "zero point {k} is {z}, outside {lo}..={hi} for {}",
                    type_name(dtype)
                ),
            ));
        }
    }
    let axis = if scales.len() == 1 {
        None
    } else {
        let qd = q.quantized_dimension();
        let d = usize::try_from(qd)
            .ok()
            .filter(|&d| d < shape.len())
            .ok_or_else(|| {
                ImportError::invalid(
                    at,
                    format!(
                        "quantized dimension {qd} out of range for rank {}",
                        shape.len()
                    ),
                )
            })?;
        if shape[d] as usize != scales.len() {
            return Err(ImportError::invalid(
                at,
                format!(
                    "{} per-axis scales along dimension {d} of size {}",
                    scales.len(),
                    shape[d]
                ),
            ));
        }
        Some(d)
    };
    Ok(Some(Quant {
        scales,
        zero_points,
        axis,
    }))
}

fn index_vector(
    at: &str,
    what: &str,
    ty: SparseIndexVector,
    dm: &tfl::DimensionMetadata<'_>,
    segments: bool,
) -> Result<Vec<u32>> {
    let missing = || ImportError::invalid(at, format!("sparse dimension without {what}"));
    let out: Vec<u32> = match ty {
        SparseIndexVector::Int32Vector => {
            let v = if segments {
                dm.array_segments_as_int_32_vector()
            } else {
                dm.array_indices_as_int_32_vector()
            };
            let vals = v.and_then(|v| v.values()).ok_or_else(missing)?;
            let mut out = Vec::with_capacity(vals.len());
            for x in vals.iter() {
                out.push(u32::try_from(x).map_err(|_| {
                    ImportError::invalid(at, format!("negative entry {x} in {what}"))
                })?);
            }
            out
        }
        SparseIndexVector::Uint16Vector => {
            let v = if segments {
                dm.array_segments_as_uint_16_vector()
            } else {
                dm.array_indices_as_uint_16_vector()
            };
            v.and_then(|v| v.values())
                .ok_or_else(missing)?
                .iter()
                .map(u32::from)
                .collect()
        }
        SparseIndexVector::Uint8Vector => {
            let v = if segments {
                dm.array_segments_as_uint_8_vector()
            } else {
                dm.array_indices_as_uint_8_vector()
            };
            v.and_then(|v| v.values())
                .ok_or_else(missing)?
                .iter()
                .map(u32::from)
                .collect()
        }
        _ => return Err(missing()),
    };
    Ok(out)
}

fn read_sparsity(at: &str, sp: &tfl::SparsityParameters<'_>) -> Result<SparseSpec> {
    let traversal_order: Vec<i32> = sp
        .traversal_order()
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    let block_map: Vec<i32> = sp
        .block_map()
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    let mut levels = Vec::new();
    for (p, dm) in sp.dim_metadata().into_iter().flatten().enumerate() {
        let level_at = format!("{at}: sparsity level {p}");
        levels.push(match dm.format() {
            DimensionType::DENSE => SparseLevel::Dense(dm.dense_size()),
            DimensionType::SPARSE_CSR => SparseLevel::Csr {
                segments: index_vector(
                    &level_at,
                    "array_segments",
                    dm.array_segments_type(),
                    &dm,
                    true,
                )?,
                indices: index_vector(
                    &level_at,
                    "array_indices",
                    dm.array_indices_type(),
                    &dm,
                    false,
                )?,
            },
            other => {
                return Err(ImportError::unsupported(
                    level_at,
                    format!("dimension format {}", other.0),
                ))
            }
        });
    }
    Ok(SparseSpec {
        traversal_order,
        block_map,
        levels,
    })
}

/// Resolves an operator code: the extended `builtin_code` field, or the deprecated byte field in
/// files written before codes above 127 existed (TFLite takes the larger of the two).
fn resolve_code(oc: &tfl::OperatorCode<'_>) -> BuiltinOperator {
    let dep = i32::from(oc.deprecated_builtin_code());
    BuiltinOperator(oc.builtin_code().0.max(dep))
}

fn read_op(
    codes: Option<flatbuffers::Vector<'_, flatbuffers::ForwardsUOffset<tfl::OperatorCode<'_>>>>,
    index: usize,
    op: &tfl::Operator<'_>,
    n_tensors: usize,
) -> Result<Op> {
    let at = format!("operator {index}");
    let ci = op.opcode_index() as usize;
    let codes =
        codes.ok_or_else(|| ImportError::invalid(&at, "the model has no operator codes"))?;
    if ci >= codes.len() {
        return Err(ImportError::invalid(
            &at,
            format!(
                "opcode index {ci} out of range ({} operator codes)",
                codes.len()
            ),
        ));
    }
    let oc = codes.get(ci);
    let code = resolve_code(&oc);
    if code == BuiltinOperator::CUSTOM {
        let name = oc.custom_code().unwrap_or("");
        return Err(ImportError::UnsupportedOp {
            index,
            op: format!("CUSTOM \"{name}\""),
            needs: "custom operators have no sparq implementation; it would need a builtin \
                    equivalent or a sparq kernel for this custom op"
                .into(),
        });
    }
    let at = format!("operator {index} {}", op_name(code));
    let mut inputs = Vec::new();
    for (k, x) in op.inputs().into_iter().flatten().enumerate() {
        if x < -1 || (x >= 0 && x as usize >= n_tensors) {
            return Err(ImportError::invalid(
                &at,
                format!("input {k} is tensor {x}, out of range ({n_tensors} tensors)"),
            ));
        }
        inputs.push(x);
    }
    let mut outputs = Vec::new();
    for (k, x) in op.outputs().into_iter().flatten().enumerate() {
        if x < 0 || x as usize >= n_tensors {
            return Err(ImportError::invalid(
                &at,
                format!("output {k} is tensor {x}, out of range ({n_tensors} tensors)"),
            ));
        }
        outputs.push(x);
    }
    if outputs.is_empty() {
        return Err(ImportError::invalid(&at, "no outputs"));
    }
    let options = read_options(&at, code, op)?;
    Ok(Op {
        index,
        code,
        options,
        inputs,
        outputs,
    })
}

fn activation(at: &str, a: ActivationFunctionType) -> Result<Activation> {
    Ok(match a {
        ActivationFunctionType::NONE => Activation::None,
        ActivationFunctionType::RELU => Activation::Relu,
        ActivationFunctionType::RELU_N1_TO_1 => Activation::ReluN1To1,
        ActivationFunctionType::RELU6 => Activation::Relu6,
        ActivationFunctionType::TANH => Activation::Tanh,
        other => {
            return Err(ImportError::unsupported(
                at,
                format!(
                    "fused activation {}",
                    other.variant_name().unwrap_or("unknown")
                ),
            ))
        }
    })
}

fn padding(at: &str, p: tfl::Padding) -> Result<Padding> {
    match p {
        tfl::Padding::SAME => Ok(Padding::Same),
        tfl::Padding::VALID => Ok(Padding::Valid),
        other => Err(ImportError::invalid(at, format!("padding {}", other.0))),
    }
}

fn positive(at: &str, what: &str, v: i32) -> Result<i32> {
    if v >= 1 {
        Ok(v)
    } else {
        Err(ImportError::invalid(
            at,
            format!("{what} is {v}, must be at least 1"),
        ))
    }
}

fn missing(at: &str, table: &str) -> ImportError {
    ImportError::invalid(at, format!("missing {table}"))
}

fn read_options(at: &str, code: BuiltinOperator, op: &tfl::Operator<'_>) -> Result<Options> {
    type B = BuiltinOperator;
    Ok(match code {
        B::CONV_2D => {
            let o = op
                .builtin_options_as_conv_2_doptions()
                .ok_or_else(|| missing(at, "Conv2DOptions"))?;
            Options::Conv2d {
                padding: padding(at, o.padding())?,
                stride_h: positive(at, "stride_h", o.stride_h())?,
                stride_w: positive(at, "stride_w", o.stride_w())?,
                dilation_h: positive(at, "dilation_h_factor", o.dilation_h_factor())?,
                dilation_w: positive(at, "dilation_w_factor", o.dilation_w_factor())?,
                activation: activation(at, o.fused_activation_function())?,
            }
        }
        B::DEPTHWISE_CONV_2D => {
            let o = op
                .builtin_options_as_depthwise_conv_2_doptions()
                .ok_or_else(|| missing(at, "DepthwiseConv2DOptions"))?;
            Options::DepthwiseConv2d {
                padding: padding(at, o.padding())?,
                stride_h: positive(at, "stride_h", o.stride_h())?,
                stride_w: positive(at, "stride_w", o.stride_w())?,
                dilation_h: positive(at, "dilation_h_factor", o.dilation_h_factor())?,
                dilation_w: positive(at, "dilation_w_factor", o.dilation_w_factor())?,
                // Redundant in TFLite since 2.0; when absent (<= 0) the mapping derives it.
                depth_multiplier: o.depth_multiplier(),
                activation: activation(at, o.fused_activation_function())?,
            }
        }
        B::FULLY_CONNECTED => match op.builtin_options_as_fully_connected_options() {
            Some(o) => {
                if o.weights_format() != tfl::FullyConnectedOptionsWeightsFormat::DEFAULT {
                    return Err(ImportError::unsupported(
                        at,
                        format!("weights format {}", o.weights_format().0),
                    ));
                }
                Options::FullyConnected {
                    activation: activation(at, o.fused_activation_function())?,
                    keep_num_dims: o.keep_num_dims(),
                    asymmetric_quantize_inputs: o.asymmetric_quantize_inputs(),
                }
            }
            None => Options::FullyConnected {
                activation: Activation::None,
                keep_num_dims: false,
                asymmetric_quantize_inputs: false,
            },
        },
        B::MAX_POOL_2D | B::AVERAGE_POOL_2D | B::L2_POOL_2D => {
            let o = op
                .builtin_options_as_pool_2_doptions()
                .ok_or_else(|| missing(at, "Pool2DOptions"))?;
            Options::Pool2d {
                padding: padding(at, o.padding())?,
                stride_h: positive(at, "stride_h", o.stride_h())?,
                stride_w: positive(at, "stride_w", o.stride_w())?,
                filter_h: positive(at, "filter_height", o.filter_height())?,
                filter_w: positive(at, "filter_width", o.filter_width())?,
                activation: activation(at, o.fused_activation_function())?,
            }
        }
        B::TRANSPOSE_CONV => {
            let o = op
                .builtin_options_as_transpose_conv_options()
                .ok_or_else(|| missing(at, "TransposeConvOptions"))?;
            Options::TransposeConv {
                padding: padding(at, o.padding())?,
                stride_h: positive(at, "stride_h", o.stride_h())?,
                stride_w: positive(at, "stride_w", o.stride_w())?,
                activation: activation(at, o.fused_activation_function())?,
            }
        }
        B::ADD => Options::Elementwise {
            activation: match op.builtin_options_as_add_options() {
                Some(o) => activation(at, o.fused_activation_function())?,
                None => Activation::None,
            },
        },
        B::SUB => Options::Elementwise {
            activation: match op.builtin_options_as_sub_options() {
                Some(o) => activation(at, o.fused_activation_function())?,
                None => Activation::None,
            },
        },
        B::MUL => Options::Elementwise {
            activation: match op.builtin_options_as_mul_options() {
                Some(o) => activation(at, o.fused_activation_function())?,
                None => Activation::None,
            },
        },
        B::DIV => Options::Elementwise {
            activation: match op.builtin_options_as_div_options() {
                Some(o) => activation(at, o.fused_activation_function())?,
                None => Activation::None,
            },
        },
        B::CONCATENATION => match op.builtin_options_as_concatenation_options() {
            Some(o) => Options::Concatenation {
                axis: o.axis(),
                activation: activation(at, o.fused_activation_function())?,
            },
            None => Options::Concatenation {
                axis: 0,
                activation: Activation::None,
            },
        },
        B::RESHAPE => {
            let new_shape: Vec<i32> = op
                .builtin_options_as_reshape_options()
                .and_then(|o| o.new_shape())
                .map(|v| v.iter().collect())
                .unwrap_or_default();
            if new_shape.len() > MAX_RANK {
                return Err(ImportError::invalid(
                    at,
                    format!("new_shape has rank {} > {MAX_RANK}", new_shape.len()),
                ));
            }
            Options::Reshape { new_shape }
        }
        B::SQUEEZE => {
            let dims: Vec<i32> = op
                .builtin_options_as_squeeze_options()
                .and_then(|o| o.squeeze_dims())
                .map(|v| v.iter().collect())
                .unwrap_or_default();
            if dims.len() > MAX_RANK {
                return Err(ImportError::invalid(
                    at,
                    format!("squeeze_dims has {} entries > {MAX_RANK}", dims.len()),
                ));
            }
            Options::Squeeze { dims }
        }
        B::STRIDED_SLICE => {
            let o = op.builtin_options_as_strided_slice_options();
            Options::StridedSlice {
                begin_mask: o.map_or(0, |o| o.begin_mask()),
                end_mask: o.map_or(0, |o| o.end_mask()),
                ellipsis_mask: o.map_or(0, |o| o.ellipsis_mask()),
                new_axis_mask: o.map_or(0, |o| o.new_axis_mask()),
                shrink_axis_mask: o.map_or(0, |o| o.shrink_axis_mask()),
                offset: o.is_some_and(|o| o.offset()),
            }
        }
        B::DEPTH_TO_SPACE => {
            let o = op
                .builtin_options_as_depth_to_space_options()
                .ok_or_else(|| missing(at, "DepthToSpaceOptions"))?;
            Options::DepthToSpace {
                block_size: positive(at, "block_size", o.block_size())?,
            }
        }
        B::SPACE_TO_DEPTH => {
            let o = op
                .builtin_options_as_space_to_depth_options()
                .ok_or_else(|| missing(at, "SpaceToDepthOptions"))?;
            Options::SpaceToDepth {
                block_size: positive(at, "block_size", o.block_size())?,
            }
        }
        B::RESIZE_BILINEAR => {
            let o = op.builtin_options_as_resize_bilinear_options();
            Options::Resize {
                align_corners: o.is_some_and(|o| o.align_corners()),
                half_pixel_centers: o.is_some_and(|o| o.half_pixel_centers()),
            }
        }
        B::RESIZE_NEAREST_NEIGHBOR => {
            let o = op.builtin_options_as_resize_nearest_neighbor_options();
            Options::Resize {
                align_corners: o.is_some_and(|o| o.align_corners()),
                half_pixel_centers: o.is_some_and(|o| o.half_pixel_centers()),
            }
        }
        B::SOFTMAX => {
            let o = op
                .builtin_options_as_softmax_options()
                .ok_or_else(|| missing(at, "SoftmaxOptions"))?;
            let beta = o.beta();
            if !beta.is_finite() {
                return Err(ImportError::invalid(at, format!("softmax beta is {beta}")));
            }
            Options::Softmax { beta }
        }
        B::MEAN | B::SUM | B::REDUCE_MAX | B::REDUCE_MIN | B::REDUCE_PROD => Options::Reducer {
            keep_dims: op
                .builtin_options_as_reducer_options()
                .is_some_and(|o| o.keep_dims()),
        },
        B::LEAKY_RELU => {
            let alpha = op
                .builtin_options_as_leaky_relu_options()
                .map_or(0.2, |o| o.alpha());
            if !alpha.is_finite() {
                return Err(ImportError::invalid(at, format!("alpha is {alpha}")));
            }
            Options::LeakyRelu { alpha }
        }
        B::GATHER => {
            let o = op.builtin_options_as_gather_options();
            Options::Gather {
                axis: o.map_or(0, |o| o.axis()),
                batch_dims: o.map_or(0, |o| o.batch_dims()),
            }
        }
        B::PACK => {
            let o = op
                .builtin_options_as_pack_options()
                .ok_or_else(|| missing(at, "PackOptions"))?;
            Options::Pack {
                axis: o.axis(),
                values_count: positive(at, "values_count", o.values_count())?,
            }
        }
        B::UNPACK => {
            let o = op
                .builtin_options_as_unpack_options()
                .ok_or_else(|| missing(at, "UnpackOptions"))?;
            Options::Pack {
                axis: o.axis(),
                values_count: positive(at, "num", o.num())?,
            }
        }
        B::SPLIT => {
            let o = op
                .builtin_options_as_split_options()
                .ok_or_else(|| missing(at, "SplitOptions"))?;
            Options::Split {
                num_splits: positive(at, "num_splits", o.num_splits())?,
            }
        }
        B::BATCH_MATMUL => {
            let o = op.builtin_options_as_batch_mat_mul_options();
            Options::BatchMatMul {
                adj_x: o.is_some_and(|o| o.adj_x()),
                adj_y: o.is_some_and(|o| o.adj_y()),
            }
        }
        _ => Options::None,
    })
}

/// TFLite lists operators in execution order: every tensor an operator reads must be a constant,
/// a graph input, or the output of an earlier operator; each tensor has at most one producer and
/// constants and graph inputs have none.
fn check_dataflow(g: &Graph) -> Result<()> {
    let n = g.tensors.len();
    let mut ready: Vec<bool> = g.tensors.iter().map(Tensor::is_constant).collect();
    let mut is_input = vec![false; n];
    for &i in &g.inputs {
        if g.tensors[i].is_constant() {
            return Err(ImportError::invalid(
                g.tensor_at(i),
                "graph input has constant data",
            ));
        }
        ready[i] = true;
        is_input[i] = true;
    }
    let mut produced = vec![false; n];
    for op in &g.ops {
        for (k, &x) in op.inputs.iter().enumerate() {
            if x >= 0 && !ready[x as usize] {
                return Err(ImportError::invalid(
                    format!("operator {} {}", op.index, op.name()),
                    format!(
                        "input {k} ({}) is read before any operator writes it",
                        g.tensor_at(x as usize)
                    ),
                ));
            }
        }
        for &y in &op.outputs {
            let y = y as usize;
            if g.tensors[y].is_constant() || is_input[y] || produced[y] {
                return Err(ImportError::invalid(
                    format!("operator {} {}", op.index, op.name()),
                    format!(
                        "writes {}, which is a constant, a graph input or already written",
                        g.tensor_at(y)
                    ),
                ));
            }
            produced[y] = true;
            ready[y] = true;
        }
    }
    for &o in &g.outputs {
        if !ready[o] {
            return Err(ImportError::invalid(
                g.tensor_at(o),
                "graph output is never written",
            ));
        }
    }
    Ok(())
}
