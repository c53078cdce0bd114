//! The `.sparq` writer: a FlatBuffer followed by the 64-byte aligned data section.

use crate::{fb, Activation, ModelDef, OpOptions, Padding, SparseFormat, DATA_ALIGN};
use flatbuffers::{FlatBufferBuilder, WIPOffset};

/// Why a [`ModelDef`] could not be serialized. The writer checks only what the format cannot
/// represent; whether the model makes sense is checked when it is opened.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("tensor {index} \"{name}\": {field} has {len} entries, more than the format allows")]
    TooLong {
        index: usize,
        name: String,
        field: &'static str,
        len: usize,
    },
    #[error("tensor {index} \"{name}\": quantization axis {axis} does not fit in i32")]
    AxisTooLarge {
        index: usize,
        name: String,
        axis: usize,
    },
    #[error("the model's metadata (names, shapes, options) needs {bytes} bytes, over the 2 GiB FlatBuffer limit")]
    MetadataTooLarge { bytes: usize },
    #[error("the model has {what} = {len}, more than the format allows")]
    TooMany { what: &'static str, len: usize },
}

/// FlatBuffers cannot hold more than 2 GiB; stay well under it (weights are not part of it).
const MAX_FLATBUFFER_BYTES: usize = 1 << 30;

/// Serializes `model` into a `.sparq` file image: the FlatBuffer, zero padding, then every
/// buffer at an offset that is a multiple of [`DATA_ALIGN`].
///
/// Buffers are laid out in tensor order (for each tensor: dense data, then sparse row pointers,
/// column indices and values). The model is not validated here; `sparq::Model` validates on open.
pub fn write(model: &ModelDef) -> Result<Vec<u8>, WriteError> {
    check_representable(model)?;

    // Data section layout, relative to its start.
    let mut blobs: Vec<&[u8]> = Vec::new();
    for t in &model.tensors {
        if let Some(d) = &t.data {
            blobs.push(d);
        }
        if let Some(s) = &t.sparse {
            blobs.push(bytemuck::cast_slice(&s.row_ptr));
            blobs.push(bytemuck::cast_slice(&s.col_idx));
            blobs.push(&s.values);
        }
    }
    // The file ends exactly where the last buffer ends (no trailing padding), so any truncation
    // of a file cuts into a buffer or the FlatBuffer and is detected.
    let mut rel: Vec<(u64, u64)> = Vec::with_capacity(blobs.len());
    let mut data_len: u64 = 0;
    for b in &blobs {
        let at = align_up(data_len);
        rel.push((at, b.len() as u64));
        data_len = at + b.len() as u64;
    }

    // The FlatBuffer's size does not depend on the offset values (structs are fixed-size and
    // always written), so two passes suffice; loop defensively anyway.
    let mut data_start: u64 = 0;
    let fb_bytes = loop {
        let bytes = build_flatbuffer(model, data_start, &rel);
        if (bytes.len() as u64) <= data_start {
            break bytes;
        }
        data_start = align_up(bytes.len() as u64);
    };

    let total = if blobs.is_empty() {
        fb_bytes.len() as u64
    } else {
        data_start + data_len
    };
    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&fb_bytes);
    out.resize(data_start as usize, 0);
    for (blob, &(at, _)) in blobs.iter().zip(&rel) {
        out.resize((data_start + at) as usize, 0);
        out.extend_from_slice(blob);
    }
    out.resize(total as usize, 0);
    Ok(out)
}

fn align_up(x: u64) -> u64 {
    x.div_ceil(DATA_ALIGN as u64) * DATA_ALIGN as u64
}

fn check_representable(model: &ModelDef) -> Result<(), WriteError> {
    let max = i32::MAX as usize;
    for (what, len) in [
        ("tensors", model.tensors.len()),
        ("operators", model.operators.len()),
        ("inputs", model.inputs.len()),
        ("outputs", model.outputs.len()),
    ] {
        if len > max {
            return Err(WriteError::TooMany { what, len });
        }
    }
    let mut bytes = 1024usize;
    for (index, t) in model.tensors.iter().enumerate() {
        let too_long = |field, len| WriteError::TooLong {
            index,
            name: t.name.clone(),
            field,
            len,
        };
        if t.shape.len() > max {
            return Err(too_long("shape", t.shape.len()));
        }
        bytes = bytes.saturating_add(64 + t.name.len() + 4 * t.shape.len());
        if let Some(q) = &t.quant {
            if q.scales.len() > max {
                return Err(too_long("scales", q.scales.len()));
            }
            if q.zero_points.len() > max {
                return Err(too_long("zero_points", q.zero_points.len()));
            }
            if let Some(axis) = q.axis {
                if axis > max {
                    return Err(WriteError::AxisTooLarge {
                        index,
                        name: t.name.clone(),
                        axis,
                    });
                }
            }
            bytes = bytes.saturating_add(32 + 4 * q.scales.len() + 8 * q.zero_points.len());
        }
    }
    for op in &model.operators {
        bytes = bytes.saturating_add(64 + 4 * (op.inputs.len() + op.outputs.len()));
        bytes = bytes.saturating_add(match &op.options {
            OpOptions::Reshape { new_shape } => 4 * new_shape.len(),
            OpOptions::Squeeze { dims } => 4 * dims.len(),
            _ => 64,
        });
    }
    let m = &model.metadata;
    bytes = bytes.saturating_add(m.producer.len());
    for (k, v) in &m.settings {
        bytes = bytes.saturating_add(32 + k.len() + v.len());
    }
    for (k, _) in &m.layer_sparsity {
        bytes = bytes.saturating_add(32 + k.len());
    }
    if bytes > MAX_FLATBUFFER_BYTES {
        return Err(WriteError::MetadataTooLarge { bytes });
    }
    Ok(())
}

fn padding(p: Padding) -> fb::Padding {
    match p {
        Padding::Same => fb::Padding::Same,
        Padding::Valid => fb::Padding::Valid,
    }
}

fn act(a: Activation) -> fb::Activation {
    match a {
        Activation::None => fb::Activation::None,
        Activation::Relu => fb::Activation::Relu,
        Activation::ReluN1To1 => fb::Activation::ReluN1To1,
        Activation::Relu6 => fb::Activation::Relu6,
        Activation::Tanh => fb::Activation::Tanh,
    }
}

type Union = Option<WIPOffset<flatbuffers::UnionWIPOffset>>;

fn build_options(fbb: &mut FlatBufferBuilder, o: &OpOptions) -> (fb::OpOptions, Union) {
    use fb::OpOptions as T;
    macro_rules! table {
        ($ty:ident, $args:ident { $($f:ident: $v:expr),* $(,)? }) => {{
            let args = fb::$args { $($f: $v),* };
            (T::$ty, Some(fb::$ty::create(fbb, &args).as_union_value()))
        }};
    }
    match *o {
        OpOptions::None => (T::NONE, None),
        OpOptions::Conv2d {
            padding: p,
            stride_h,
            stride_w,
            dilation_h,
            dilation_w,
            activation,
        } => {
            table!(
                Conv2dOptions,
                Conv2dOptionsArgs {
                    padding: padding(p),
                    stride_h: stride_h,
                    stride_w: stride_w,
                    dilation_h: dilation_h,
                    dilation_w: dilation_w,
                    activation: act(activation),
                }
            )
        }
        OpOptions::DepthwiseConv2d {
            padding: p,
            stride_h,
            stride_w,
            dilation_h,
            dilation_w,
            depth_multiplier,
            activation,
        } => table!(
            DepthwiseConv2dOptions,
            DepthwiseConv2dOptionsArgs {
                padding: padding(p),
                stride_h: stride_h,
                stride_w: stride_w,
                dilation_h: dilation_h,
                dilation_w: dilation_w,
                depth_multiplier: depth_multiplier,
                activation: act(activation),
            }
        ),
        OpOptions::FullyConnected {
            activation,
            keep_num_dims,
            asymmetric_quantize_inputs,
        } => {
            table!(
                FullyConnectedOptions,
                FullyConnectedOptionsArgs {
                    activation: act(activation),
                    keep_num_dims: keep_num_dims,
                    asymmetric_quantize_inputs: asymmetric_quantize_inputs,
                }
            )
        }
        OpOptions::Pool2d {
            padding: p,
            stride_h,
            stride_w,
            filter_h,
            filter_w,
            activation,
        } => {
            table!(
                Pool2dOptions,
                Pool2dOptionsArgs {
                    padding: padding(p),
                    stride_h: stride_h,
                    stride_w: stride_w,
                    filter_h: filter_h,
                    filter_w: filter_w,
                    activation: act(activation),
                }
            )
        }
        OpOptions::TransposeConv {
            padding: p,
            stride_h,
            stride_w,
            activation,
        } => {
            table!(
                TransposeConvOptions,
                TransposeConvOptionsArgs {
                    padding: padding(p),
                    stride_h: stride_h,
                    stride_w: stride_w,
                    activation: act(activation),
                }
            )
        }
        OpOptions::Elementwise { activation } => {
            table!(
                ElementwiseOptions,
                ElementwiseOptionsArgs {
                    activation: act(activation)
                }
            )
        }
        OpOptions::Concatenation { axis, activation } => {
            table!(
                ConcatenationOptions,
                ConcatenationOptionsArgs {
                    axis: axis,
                    activation: act(activation),
                }
            )
        }
        OpOptions::Reshape { ref new_shape } => {
            let v = fbb.create_vector(new_shape);
            table!(ReshapeOptions, ReshapeOptionsArgs { new_shape: Some(v) })
        }
        OpOptions::Squeeze { ref dims } => {
            let v = fbb.create_vector(dims);
            table!(SqueezeOptions, SqueezeOptionsArgs { dims: Some(v) })
        }
        OpOptions::StridedSlice {
            begin_mask,
            end_mask,
            ellipsis_mask,
            new_axis_mask,
            shrink_axis_mask,
            offset,
        } => table!(
            StridedSliceOptions,
            StridedSliceOptionsArgs {
                begin_mask: begin_mask,
                end_mask: end_mask,
                ellipsis_mask: ellipsis_mask,
                new_axis_mask: new_axis_mask,
                shrink_axis_mask: shrink_axis_mask,
                offset: offset,
            }
        ),
        OpOptions::DepthToSpace { block_size } => {
            table!(
                DepthToSpaceOptions,
                DepthToSpaceOptionsArgs {
                    block_size: block_size
                }
            )
        }
        OpOptions::SpaceToDepth { block_size } => {
            table!(
                SpaceToDepthOptions,
                SpaceToDepthOptionsArgs {
                    block_size: block_size
                }
            )
        }
        OpOptions::Resize {
            align_corners,
            half_pixel_centers,
        } => {
            table!(
                ResizeOptions,
                ResizeOptionsArgs {
                    align_corners: align_corners,
                    half_pixel_centers: half_pixel_centers,
                }
            )
        }
        OpOptions::Softmax { beta } => table!(SoftmaxOptions, SoftmaxOptionsArgs { beta: beta }),
        OpOptions::Reducer { keep_dims } => {
            table!(
                ReducerOptions,
                ReducerOptionsArgs {
                    keep_dims: keep_dims
                }
            )
        }
        OpOptions::LeakyRelu { alpha } => {
            table!(LeakyReluOptions, LeakyReluOptionsArgs { alpha: alpha })
        }
        OpOptions::Gather { axis, batch_dims } => {
            table!(
                GatherOptions,
                GatherOptionsArgs {
                    axis: axis,
                    batch_dims: batch_dims
                }
            )
        }
        OpOptions::Pack { axis, values_count } => {
            table!(
                PackOptions,
                PackOptionsArgs {
                    axis: axis,
                    values_count: values_count
                }
            )
        }
        OpOptions::Split { num_splits } => {
            table!(
                SplitOptions,
                SplitOptionsArgs {
                    num_splits: num_splits
                }
            )
        }
        OpOptions::BatchMatMul { adj_x, adj_y } => {
            table!(
                BatchMatMulOptions,
                BatchMatMulOptionsArgs {
                    adj_x: adj_x,
                    adj_y: adj_y
                }
            )
        }
    }
}

fn build_flatbuffer(model: &ModelDef, data_start: u64, rel: &[(u64, u64)]) -> Vec<u8> {
    let mut fbb = FlatBufferBuilder::with_capacity(4096);
    let mut next = rel
        .iter()
        .map(|&(at, len)| fb::Buffer::new(data_start + at, len));

    let mut tensors = Vec::with_capacity(model.tensors.len());
    for t in &model.tensors {
        let name = fbb.create_string(&t.name);
        let shape = fbb.create_vector(&t.shape);
        let quantization = t.quant.as_ref().map(|q| {
            let scales = fbb.create_vector(&q.scales);
            let zero_points = fbb.create_vector(&q.zero_points);
            let axis = q.axis.map_or(-1, |a| a as i32);
            fb::Quantization::create(
                &mut fbb,
                &fb::QuantizationArgs {
                    scales: Some(scales),
                    zero_points: Some(zero_points),
                    axis,
                },
            )
        });
        let data = t.data.as_ref().map(|_| next.next().expect("buffer layout"));
        let sparse = t.sparse.as_ref().map(|s| {
            let (format, (block_rows, block_cols)) = match s.format {
                SparseFormat::Csr => (fb::SparseFormat::Csr, (1, 1)),
                SparseFormat::Bsr {
                    block_rows,
                    block_cols,
                } => (fb::SparseFormat::Bsr, (block_rows, block_cols)),
            };
            let row_ptr = next.next().expect("buffer layout");
            let col_idx = next.next().expect("buffer layout");
            let values = next.next().expect("buffer layout");
            fb::Sparse::create(
                &mut fbb,
                &fb::SparseArgs {
                    format,
                    block_rows,
                    block_cols,
                    row_ptr: Some(&row_ptr),
                    col_idx: Some(&col_idx),
                    values: Some(&values),
                },
            )
        });
        tensors.push(fb::Tensor::create(
            &mut fbb,
            &fb::TensorArgs {
                name: Some(name),
                shape: Some(shape),
                dtype: t.dtype.to_fb(),
                quantization,
                data: data.as_ref(),
                sparse,
            },
        ));
    }
    let tensors = fbb.create_vector(&tensors);

    let mut ops = Vec::with_capacity(model.operators.len());
    for op in &model.operators {
        let (options_type, options) = build_options(&mut fbb, &op.options);
        let inputs = fbb.create_vector(&op.inputs);
        let outputs = fbb.create_vector(&op.outputs);
        ops.push(fb::Operator::create(
            &mut fbb,
            &fb::OperatorArgs {
                kind: op.kind.to_fb(),
                options_type,
                options,
                inputs: Some(inputs),
                outputs: Some(outputs),
            },
        ));
    }
    let operators = fbb.create_vector(&ops);

    let as_i32 = |v: &[u32]| {
        v.iter()
            .map(|&i| i.min(i32::MAX as u32) as i32)
            .collect::<Vec<_>>()
    };
    let inputs = fbb.create_vector(&as_i32(&model.inputs));
    let outputs = fbb.create_vector(&as_i32(&model.outputs));

    let m = &model.metadata;
    let producer = fbb.create_string(&m.producer);
    let mut settings = Vec::with_capacity(m.settings.len());
    for (k, v) in &m.settings {
        let key = fbb.create_string(k);
        let value = fbb.create_string(v);
        settings.push(fb::Setting::create(
            &mut fbb,
            &fb::SettingArgs {
                key: Some(key),
                value: Some(value),
            },
        ));
    }
    let settings = fbb.create_vector(&settings);
    let mut layers = Vec::with_capacity(m.layer_sparsity.len());
    for (k, s) in &m.layer_sparsity {
        let name = fbb.create_string(k);
        layers.push(fb::LayerSparsity::create(
            &mut fbb,
            &fb::LayerSparsityArgs {
                name: Some(name),
                sparsity: *s,
            },
        ));
    }
    let layer_sparsity = fbb.create_vector(&layers);
    let metadata = fb::Metadata::create(
        &mut fbb,
        &fb::MetadataArgs {
            producer: Some(producer),
            settings: Some(settings),
            layer_sparsity: Some(layer_sparsity),
        },
    );

    let version = fb::Version::new(crate::FORMAT_VERSION.0, crate::FORMAT_VERSION.1);
    let root = fb::Model::create(
        &mut fbb,
        &fb::ModelArgs {
            version: Some(&version),
            tensors: Some(tensors),
            operators: Some(operators),
            inputs: Some(inputs),
            outputs: Some(outputs),
            metadata: Some(metadata),
        },
    );
    fb::finish_model_buffer(&mut fbb, root);
    fbb.finished_data().to_vec()
}
