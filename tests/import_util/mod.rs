//! Helpers shared by the importer tests: a small TFLite model builder (through the generated
//! FlatBuffers code of schema/tflite.fbs), the fixture paths, and a dense view of sparse tensors.
#![allow(dead_code, clippy::needless_range_loop)]

use std::path::PathBuf;

use flatbuffers::{FlatBufferBuilder, WIPOffset};
use sparq::convert::graph::Sparse;
use sparq_schema::tflite as tfl;

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The zoo directory (SPARQ_ZOO, default ../shared/zoo from the workspace root), if present.
pub fn zoo() -> Option<PathBuf> {
    let p = std::env::var_os("SPARQ_ZOO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/zoo"));
    p.join("models").is_dir().then_some(p)
}

pub fn fixture_models() -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(fixtures().join("tflite"))
        .expect("tests/fixtures/tflite")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tflite"))
        .collect();
    v.sort();
    v.into_iter()
        .map(|p| {
            (
                p.file_stem().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join("tflite").join(format!("{name}.tflite"))).unwrap()
}

/// Dense bytes of a sparse matrix view (rows × cols, `esize` bytes per element).
pub fn densify(s: &Sparse, rows: usize, cols: usize, esize: usize) -> Vec<u8> {
    let mut out = vec![0u8; rows * cols * esize];
    match s {
        Sparse::Csr {
            row_ptr,
            col_idx,
            values,
        } => {
            for r in 0..rows {
                for j in row_ptr[r] as usize..row_ptr[r + 1] as usize {
                    let c = col_idx[j] as usize;
                    let dst = (r * cols + c) * esize;
                    out[dst..dst + esize].copy_from_slice(&values[j * esize..(j + 1) * esize]);
                }
            }
        }
        Sparse::Bsr {
            block,
            row_ptr,
            col_idx,
            values,
        } => {
            let (br, bc) = (block[0] as usize, block[1] as usize);
            for q in 0..rows / br {
                for j in row_ptr[q] as usize..row_ptr[q + 1] as usize {
                    for i in 0..br {
                        for k in 0..bc {
                            let (r, c) = (q * br + i, col_idx[j] as usize * bc + k);
                            let src = ((j * br + i) * bc + k) * esize;
                            let dst = (r * cols + c) * esize;
                            out[dst..dst + esize].copy_from_slice(&values[src..src + esize]);
                        }
                    }
                }
            }
        }
    }
    out
}

/// A tiny xorshift PRNG (tests need reproducible noise, not a crate).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

// ----- a TFLite model builder for hand-made (and deliberately broken) models -----

#[derive(Clone, Debug)]
pub enum Idx {
    I32(Vec<i32>),
    U16(Vec<u16>),
    U8(Vec<u8>),
}

#[derive(Clone, Debug)]
pub enum Dim {
    Dense(i32),
    Csr(Idx, Idx),
}

#[derive(Clone, Debug)]
pub struct Sparsity {
    pub traversal: Vec<i32>,
    pub block_map: Vec<i32>,
    pub dims: Vec<Dim>,
}

#[derive(Clone, Debug)]
pub struct T {
    pub name: String,
    pub shape: Vec<i32>,
    pub ty: tfl::TensorType,
    pub buffer: u32,
    /// (scales, zero points, quantized dimension)
    pub quant: Option<(Vec<f32>, Vec<i64>, i32)>,
    pub sparsity: Option<Sparsity>,
}

impl T {
    pub fn new(name: &str, shape: &[i32], ty: tfl::TensorType, buffer: u32) -> T {
        T {
            name: name.into(),
            shape: shape.to_vec(),
            ty,
            buffer,
            quant: None,
            sparsity: None,
        }
    }
}

#[derive(Clone, Debug)]
pub enum Opt {
    None,
    Fc,
    Pack {
        axis: i32,
        count: i32,
    },
    StridedSlice {
        begin_mask: i32,
        end_mask: i32,
        shrink_axis_mask: i32,
    },
}

#[derive(Clone, Debug)]
pub struct Op {
    pub opcode: u32,
    pub inputs: Vec<i32>,
    pub outputs: Vec<i32>,
    pub options: Opt,
}

#[derive(Clone, Debug)]
pub enum Buf {
    Empty,
    Inline(Vec<u8>),
    /// Stored after the FlatBuffer (offset/size filled in by `build`).
    After(Vec<u8>),
    /// Explicit offset and size (for corrupt files).
    At(u64, u64),
}

#[derive(Clone, Debug)]
pub struct M {
    /// (deprecated_builtin_code, builtin_code, custom_code)
    pub codes: Vec<(i8, i32, Option<String>)>,
    pub tensors: Vec<T>,
    pub ops: Vec<Op>,
    pub inputs: Vec<i32>,
    pub outputs: Vec<i32>,
    pub buffers: Vec<Buf>,
    pub version: u32,
}

fn idx_union<'a>(
    b: &mut FlatBufferBuilder<'a>,
    v: &Idx,
) -> (
    tfl::SparseIndexVector,
    WIPOffset<flatbuffers::UnionWIPOffset>,
) {
    match v {
        Idx::I32(x) => {
            let values = Some(b.create_vector(x));
            let t = tfl::Int32Vector::create(b, &tfl::Int32VectorArgs { values });
            (tfl::SparseIndexVector::Int32Vector, t.as_union_value())
        }
        Idx::U16(x) => {
            let values = Some(b.create_vector(x));
            let t = tfl::Uint16Vector::create(b, &tfl::Uint16VectorArgs { values });
            (tfl::SparseIndexVector::Uint16Vector, t.as_union_value())
        }
        Idx::U8(x) => {
            let values = Some(b.create_vector(x));
            let t = tfl::Uint8Vector::create(b, &tfl::Uint8VectorArgs { values });
            (tfl::SparseIndexVector::Uint8Vector, t.as_union_value())
        }
    }
}

fn build_once(m: &M, after_base: u64) -> Vec<u8> {
    let mut b = FlatBufferBuilder::new();
    // Buffers; data stored after the FlatBuffer is laid out from `after_base`, 16-byte aligned.
    let mut after = after_base;
    let mut bufs = Vec::new();
    for buf in &m.buffers {
        let args = match buf {
            Buf::Empty => tfl::BufferArgs {
                data: None,
                offset: 0,
                size: 0,
            },
            Buf::Inline(d) => tfl::BufferArgs {
                data: Some(b.create_vector(d)),
                offset: 0,
                size: 0,
            },
            Buf::After(d) => {
                let a = tfl::BufferArgs {
                    data: None,
                    offset: after,
                    size: d.len() as u64,
                };
                after += (d.len() as u64).div_ceil(16) * 16;
                a
            }
            Buf::At(o, s) => tfl::BufferArgs {
                data: None,
                offset: *o,
                size: *s,
            },
        };
        bufs.push(tfl::Buffer::create(&mut b, &args));
    }
    let buffers = Some(b.create_vector(&bufs));

    let mut tensors = Vec::new();
    for t in &m.tensors {
        let shape = Some(b.create_vector(&t.shape));
        let name = Some(b.create_string(&t.name));
        let quantization = t.quant.as_ref().map(|(s, z, d)| {
            let scale = Some(b.create_vector(s));
            let zero_point = Some(b.create_vector(z));
            tfl::QuantizationParameters::create(
                &mut b,
                &tfl::QuantizationParametersArgs {
                    scale,
                    zero_point,
                    quantized_dimension: *d,
                    ..Default::default()
                },
            )
        });
        let sparsity = t.sparsity.as_ref().map(|sp| {
            let mut dims = Vec::new();
            for d in &sp.dims {
                let dm = match d {
                    Dim::Dense(n) => tfl::DimensionMetadata::create(
                        &mut b,
                        &tfl::DimensionMetadataArgs {
                            format: tfl::DimensionType::DENSE,
                            dense_size: *n,
                            ..Default::default()
                        },
                    ),
                    Dim::Csr(seg, idx) => {
                        let (st, s) = idx_union(&mut b, seg);
                        let (it, i) = idx_union(&mut b, idx);
                        tfl::DimensionMetadata::create(
                            &mut b,
                            &tfl::DimensionMetadataArgs {
                                format: tfl::DimensionType::SPARSE_CSR,
                                dense_size: 0,
                                array_segments_type: st,
                                array_segments: Some(s),
                                array_indices_type: it,
                                array_indices: Some(i),
                            },
                        )
                    }
                };
                dims.push(dm);
            }
            let traversal_order = Some(b.create_vector(&sp.traversal));
            let block_map = (!sp.block_map.is_empty()).then(|| b.create_vector(&sp.block_map));
            let dim_metadata = Some(b.create_vector(&dims));
            tfl::SparsityParameters::create(
                &mut b,
                &tfl::SparsityParametersArgs {
                    traversal_order,
                    block_map,
                    dim_metadata,
                },
            )
        });
        tensors.push(tfl::Tensor::create(
            &mut b,
            &tfl::TensorArgs {
                shape,
                type_: t.ty,
                buffer: t.buffer,
                name,
                quantization,
                sparsity,
                ..Default::default()
            },
        ));
    }
    let tensors = Some(b.create_vector(&tensors));

    let mut ops = Vec::new();
    for op in &m.ops {
        let inputs = Some(b.create_vector(&op.inputs));
        let outputs = Some(b.create_vector(&op.outputs));
        let (builtin_options_type, builtin_options) = match op.options {
            Opt::None => (tfl::BuiltinOptions::NONE, None),
            Opt::Fc => {
                let o = tfl::FullyConnectedOptions::create(&mut b, &Default::default());
                (
                    tfl::BuiltinOptions::FullyConnectedOptions,
                    Some(o.as_union_value()),
                )
            }
            Opt::Pack { axis, count } => {
                let o = tfl::PackOptions::create(
                    &mut b,
                    &tfl::PackOptionsArgs {
                        values_count: count,
                        axis,
                    },
                );
                (tfl::BuiltinOptions::PackOptions, Some(o.as_union_value()))
            }
            Opt::StridedSlice {
                begin_mask,
                end_mask,
                shrink_axis_mask,
            } => {
                let o = tfl::StridedSliceOptions::create(
                    &mut b,
                    &tfl::StridedSliceOptionsArgs {
                        begin_mask,
                        end_mask,
                        shrink_axis_mask,
                        ..Default::default()
                    },
                );
                (
                    tfl::BuiltinOptions::StridedSliceOptions,
                    Some(o.as_union_value()),
                )
            }
        };
        ops.push(tfl::Operator::create(
            &mut b,
            &tfl::OperatorArgs {
                opcode_index: op.opcode,
                inputs,
                outputs,
                builtin_options_type,
                builtin_options,
                ..Default::default()
            },
        ));
    }
    let operators = Some(b.create_vector(&ops));
    let inputs = Some(b.create_vector(&m.inputs));
    let outputs = Some(b.create_vector(&m.outputs));
    let sg = tfl::SubGraph::create(
        &mut b,
        &tfl::SubGraphArgs {
            tensors,
            inputs,
            outputs,
            operators,
            name: None,
        },
    );
    let subgraphs = Some(b.create_vector(&[sg]));

    let mut codes = Vec::new();
    for (dep, code, custom) in &m.codes {
        let custom_code = custom.as_ref().map(|c| b.create_string(c));
        codes.push(tfl::OperatorCode::create(
            &mut b,
            &tfl::OperatorCodeArgs {
                deprecated_builtin_code: *dep,
                custom_code,
                version: 1,
                builtin_code: tfl::BuiltinOperator(*code),
            },
        ));
    }
    let operator_codes = Some(b.create_vector(&codes));
    let description = Some(b.create_string("built by sparq tests"));
    let root = tfl::Model::create(
        &mut b,
        &tfl::ModelArgs {
            version: m.version,
            operator_codes,
            subgraphs,
            description,
            buffers,
        },
    );
    tfl::finish_model_buffer(&mut b, root);
    b.finished_data().to_vec()
}

/// Serializes `m`; `Buf::After` data is appended after the FlatBuffer (16-byte aligned) and
/// referenced by offset.
pub fn build(m: &M) -> Vec<u8> {
    // The FlatBuffer's size does not depend on the offset values (fixed-width fields, written
    // because non-zero), so build once with a placeholder base to learn it, then for real.
    let probe = build_once(m, 1 << 40);
    let base = (probe.len() as u64).div_ceil(16) * 16;
    let mut out = build_once(m, base);
    assert_eq!(out.len(), probe.len());
    for buf in &m.buffers {
        if let Buf::After(d) = buf {
            out.resize(out.len().div_ceil(16) * 16, 0);
            out.extend_from_slice(d);
        }
    }
    out
}

pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A one-FULLY_CONNECTED model: input [1, cols] → FC with weight [rows, cols] (buffer 1) → out.
/// Tensors: 0 input, 1 weight, 2 output.
pub fn fc_model(rows: i32, cols: i32, weight: Buf, sparsity: Option<Sparsity>) -> M {
    let mut w = T::new("w", &[rows, cols], tfl::TensorType::FLOAT32, 1);
    w.sparsity = sparsity;
    M {
        codes: vec![(9, 9, None)],
        tensors: vec![
            T::new("x", &[1, cols], tfl::TensorType::FLOAT32, 0),
            w,
            T::new("y", &[1, rows], tfl::TensorType::FLOAT32, 0),
        ],
        ops: vec![Op {
            opcode: 0,
            inputs: vec![0, 1, -1],
            outputs: vec![2],
            options: Opt::Fc,
        }],
        inputs: vec![0],
        outputs: vec![2],
        buffers: vec![Buf::Empty, weight],
        version: 3,
    }
}

pub fn i32_bytes(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
