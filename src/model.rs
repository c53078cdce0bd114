//! `Model`: a `.sparq` file opened (memory-mapped) or loaded from bytes, verified and validated
//! once, then read through cheap accessors.
//!
//! Opening decodes all metadata (tensors, operators, options, quantization) into owned infos, so
//! the interpreter never touches FlatBuffers on the hot path. Weights are not copied: dense data
//! and sparse index/value arrays are views into the mapping, valid for as long as the `Model`
//! lives. Every check that makes those views safe to use without further bounds checks (indices,
//! buffer ranges, alignment, sizes, sparse structure, graph order) happens in [`Model::validate`]
//! at open; a model that opens is consistent.

use crate::error::{Error, Result};
use sparq_schema::{
    fb, Activation, DType, Metadata, ModelDef, OpDef, OpKind, OpOptions, Padding, Quantization,
    SparseDef, SparseFormat, TensorDef, DATA_ALIGN, FORMAT_VERSION,
};
use std::ops::Range;
use std::path::Path;

/// Largest number of elements of one tensor (dimension products are checked against it).
pub const MAX_TENSOR_ELEMENTS: usize = i32::MAX as usize;
/// Largest dense byte size of a tensor without dense data in the file: an activation (allocated
/// at prepare) or a sparse weight (which a kernel may expand). Keeps a small file from asking
/// for an unbounded allocation.
pub const MAX_ACTIVATION_BYTES: usize = 1 << 31;
/// Largest rank of a tensor.
pub const MAX_RANK: usize = 16;

/// A tensor as the interpreter sees it. Built and validated at open.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub quant: Option<Quantization>,
    /// True when the tensor has data in the file (dense or sparse).
    pub is_constant: bool,
    /// Number of elements (product of `shape`; 1 for a scalar).
    pub num_elements: usize,
    /// Dense byte size: `num_elements * dtype.size_bytes()`.
    pub byte_size: usize,
    data: Option<Range<usize>>,
    sparse: Option<SparseRanges>,
}

#[derive(Clone, Debug, PartialEq)]
struct SparseRanges {
    format: SparseFormat,
    rows: usize,
    cols: usize,
    row_ptr: Range<usize>,
    col_idx: Range<usize>,
    values: Range<usize>,
}

/// A validated sparse weight: views into the mapping.
///
/// The matrix is `rows` × `cols` (rows = `shape[0]`, cols = product of the other dims). For CSR,
/// `row_ptr` has `rows + 1` entries and `col_idx` / values one per stored element. For BSR with
/// blocks R × C, `row_ptr` has `ceil(rows / R) + 1` block-row pointers, `col_idx` one block column
/// per stored block, values `R * C` elements per block (row-major inside a block; positions
/// outside the matrix in edge blocks are zero). Guaranteed at open: `row_ptr[0] == 0`, monotone,
/// last entry = `col_idx.len()`, column indices strictly increasing inside a row and
/// `< ceil(cols / C)`, and `values.len() == col_idx.len() * R * C * dtype size`.
#[derive(Clone, Copy, Debug)]
pub struct SparseView<'a> {
    pub format: SparseFormat,
    pub rows: usize,
    pub cols: usize,
    pub row_ptr: &'a [u32],
    pub col_idx: &'a [u32],
    /// Little-endian elements of the tensor's dtype.
    pub values: &'a [u8],
}

impl SparseView<'_> {
    /// Block shape (R, C); (1, 1) for CSR.
    pub fn block(&self) -> (usize, usize) {
        self.format.block()
    }

    /// Number of stored blocks (stored elements for CSR).
    pub fn stored_blocks(&self) -> usize {
        self.col_idx.len()
    }

    /// Fraction of the dense matrix not stored (0 = dense, 1 = empty).
    pub fn sparsity(&self) -> f64 {
        let (r, c) = self.block();
        let total = (self.rows * self.cols) as f64;
        if total == 0.0 {
            return 0.0;
        }
        let stored = (self.stored_blocks() * r * c) as f64;
        (1.0 - stored / total).max(0.0)
    }
}

/// An operator: `inputs` are `None` where an optional input is absent (-1 in the file).
#[derive(Clone, Debug, PartialEq)]
pub struct OpInfo {
    pub kind: OpKind,
    pub options: OpOptions,
    pub inputs: Vec<Option<usize>>,
    pub outputs: Vec<usize>,
}

/// 64-byte aligned storage unit for an owned copy of a model.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Chunk([u8; DATA_ALIGN]);

enum Storage {
    /// The mapped file. It must not be modified while mapped (see [`Model::open`]).
    Mmap(memmap2::Mmap),
    /// An aligned copy: `len` bytes at the start of the chunks.
    Owned(Vec<Chunk>, usize),
    /// Caller-provided bytes already aligned to 64.
    Static(&'static [u8]),
}

impl Storage {
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Mmap(m) => m,
            Storage::Owned(chunks, len) => {
                // SAFETY: `Chunk` is `repr(C)` over `[u8; 64]` with no padding, so the vector's
                // memory is `chunks.len() * 64` initialized bytes; `len` is at most that.
                unsafe { std::slice::from_raw_parts(chunks.as_ptr().cast::<u8>(), *len) }
            }
            Storage::Static(b) => b,
        }
    }

    fn aligned_copy(bytes: &[u8]) -> Storage {
        let mut chunks = vec![Chunk([0; DATA_ALIGN]); bytes.len().div_ceil(DATA_ALIGN)];
        for (chunk, src) in chunks.iter_mut().zip(bytes.chunks(DATA_ALIGN)) {
            chunk.0[..src.len()].copy_from_slice(src);
        }
        Storage::Owned(chunks, bytes.len())
    }
}

/// A validated `.sparq` model. Cheap to read: all accessors return decoded infos or views.
pub struct Model {
    storage: Storage,
    version: (u16, u16),
    tensors: Vec<TensorInfo>,
    operators: Vec<OpInfo>,
    inputs: Vec<usize>,
    outputs: Vec<usize>,
    metadata: Metadata,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("bytes", &self.as_bytes().len())
            .field("tensors", &self.tensors.len())
            .field("operators", &self.operators.len())
            .finish()
    }
}

impl Model {
    /// Maps the file at `path` and validates it. Weights stay in the mapping (no copy).
    ///
    /// The file must not be modified (truncated or rewritten in place) while the model is open:
    /// like every memory-mapped reader, sparq cannot protect against that.
    pub fn open(path: impl AsRef<Path>) -> Result<Model> {
        let path = path.as_ref();
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len == 0 {
            // Mapping an empty file fails on some platforms; report it as what it is.
            return Err(Error::NotSparq("the file is empty".into()));
        }
        // SAFETY: the mapping is read-only and private to this `Model`; its soundness requires
        // that no one modifies the file while it is mapped, which `open` documents as the
        // caller's obligation (the usual contract of memory-mapped readers).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        Model::from_storage(Storage::Mmap(map))
    }

    /// Validates a model held in memory, copying it into a 64-byte aligned buffer owned by the
    /// `Model` (one `memcpy`; the weights are then views into that copy). To use bytes in place
    /// (e.g. a model embedded with `include_bytes!` in an aligned static), see
    /// [`Model::from_static`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Model> {
        Model::from_storage(Storage::aligned_copy(bytes))
    }

    /// Validates a model in static memory. When `bytes` starts at a 64-byte aligned address it
    /// is used in place (no copy); otherwise it is copied as in [`Model::from_bytes`].
    /// `include_bytes!` alone aligns to 1; to embed a model without a copy, align it:
    ///
    /// ```text
    /// #[repr(C, align(64))] struct Align64;
    /// #[repr(C)] struct AlignedAs<A, B: ?Sized> { _align: [A; 0], bytes: B }
    /// static MODEL: &AlignedAs<Align64, [u8]> =
    ///     &AlignedAs { _align: [], bytes: *include_bytes!("model.sparq") };
    /// let model = Model::from_static(&MODEL.bytes)?;
    /// ```
    pub fn from_static(bytes: &'static [u8]) -> Result<Model> {
        if bytes.as_ptr().align_offset(DATA_ALIGN) == 0 {
            Model::from_storage(Storage::Static(bytes))
        } else {
            Model::from_bytes(bytes)
        }
    }

    /// Serializes `def` and opens the result (validating it), e.g. for a model imported on the
    /// fly or built in a test.
    pub fn from_def(def: &ModelDef) -> Result<Model> {
        let bytes = sparq_schema::write(def)?;
        Model::from_bytes(&bytes)
    }

    fn from_storage(storage: Storage) -> Result<Model> {
        let decoded = decode(storage.bytes())?;
        Ok(Model {
            storage,
            version: decoded.version,
            tensors: decoded.tensors,
            operators: decoded.operators,
            inputs: decoded.inputs,
            outputs: decoded.outputs,
            metadata: decoded.metadata,
        })
    }

    /// The whole file (FlatBuffer and data section), as mapped or copied.
    pub fn as_bytes(&self) -> &[u8] {
        self.storage.bytes()
    }

    /// Format version (major, minor) of the file.
    pub fn version(&self) -> (u16, u16) {
        self.version
    }

    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// Dense data of tensor `i` (a view into the mapping, 64-byte aligned, exactly
    /// `byte_size` bytes). `None` for activations, sparse tensors and out-of-range `i`.
    pub fn tensor_data(&self, i: usize) -> Option<&[u8]> {
        let r = self.tensors.get(i)?.data.clone()?;
        self.as_bytes().get(r)
    }

    /// Sparse encoding of tensor `i`, `None` if it is not sparse.
    pub fn sparse(&self, i: usize) -> Option<SparseView<'_>> {
        let s = self.tensors.get(i)?.sparse.as_ref()?;
        let bytes = self.as_bytes();
        Some(SparseView {
            format: s.format,
            rows: s.rows,
            cols: s.cols,
            row_ptr: bytemuck::try_cast_slice(bytes.get(s.row_ptr.clone())?).ok()?,
            col_idx: bytemuck::try_cast_slice(bytes.get(s.col_idx.clone())?).ok()?,
            values: bytes.get(s.values.clone())?,
        })
    }

    /// Operators in execution (topological) order.
    pub fn operators(&self) -> &[OpInfo] {
        &self.operators
    }

    /// Graph input tensor indices.
    pub fn inputs(&self) -> &[usize] {
        &self.inputs
    }

    /// Graph output tensor indices.
    pub fn outputs(&self) -> &[usize] {
        &self.outputs
    }

    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Total bytes of weights (dense data plus sparse indices and values).
    pub fn weight_bytes(&self) -> usize {
        let mut total = 0;
        for t in &self.tensors {
            total += t.data.as_ref().map_or(0, |r| r.len());
            if let Some(s) = &t.sparse {
                total += s.row_ptr.len() + s.col_idx.len() + s.values.len();
            }
        }
        total
    }

    /// An owned copy of the model as plain data (copies the weights), e.g. to edit and rewrite.
    pub fn to_def(&self) -> ModelDef {
        let tensors = (0..self.tensors.len())
            .map(|i| {
                let t = &self.tensors[i];
                TensorDef {
                    name: t.name.clone(),
                    shape: t.shape.iter().map(|&d| d as i32).collect(),
                    dtype: t.dtype,
                    quant: t.quant.clone(),
                    data: self.tensor_data(i).map(<[u8]>::to_vec),
                    sparse: self.sparse(i).map(|s| SparseDef {
                        format: s.format,
                        row_ptr: s.row_ptr.to_vec(),
                        col_idx: s.col_idx.to_vec(),
                        values: s.values.to_vec(),
                    }),
                }
            })
            .collect();
        let operators = self
            .operators
            .iter()
            .map(|op| OpDef {
                kind: op.kind,
                options: op.options.clone(),
                inputs: op
                    .inputs
                    .iter()
                    .map(|i| i.map_or(-1, |i| i as i32))
                    .collect(),
                outputs: op.outputs.iter().map(|&i| i as i32).collect(),
            })
            .collect();
        ModelDef {
            tensors,
            operators,
            inputs: self.inputs.iter().map(|&i| i as u32).collect(),
            outputs: self.outputs.iter().map(|&i| i as u32).collect(),
            metadata: self.metadata.clone(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding and validation.

struct Decoded {
    version: (u16, u16),
    tensors: Vec<TensorInfo>,
    operators: Vec<OpInfo>,
    inputs: Vec<usize>,
    outputs: Vec<usize>,
    metadata: Metadata,
}

/// FlatBuffer verifier limits: generous enough for very large graphs, bounded by the file. The
/// apparent size (the object DAG expanded into a tree) counts shared vtables once per table, so
/// a valid file's apparent size is a small multiple of its FlatBuffer size; the bound keeps a
/// crafted DAG (many tables sharing one large vector) from making decoding allocate far more
/// than the file holds.
fn verifier_options(file_len: usize) -> flatbuffers::VerifierOptions {
    flatbuffers::VerifierOptions {
        max_depth: 64,
        max_tables: 10_000_000,
        max_apparent_size: file_len.saturating_mul(APPARENT_SIZE_FACTOR),
        ignore_missing_null_terminator: false,
    }
}

/// See [`verifier_options`].
const APPARENT_SIZE_FACTOR: usize = 4;

fn decode(bytes: &[u8]) -> Result<Decoded> {
    if cfg!(target_endian = "big") {
        return Err(Error::Unsupported(
            ".sparq files are little-endian; big-endian hosts are not supported".into(),
        ));
    }
    if bytes.len() < 8 {
        return Err(Error::NotSparq(format!(
            "{} bytes, too short for a header",
            bytes.len()
        )));
    }
    if !fb::model_buffer_has_identifier(bytes) {
        return Err(Error::NotSparq(format!(
            "file identifier {:?}, expected \"SPRQ\"",
            String::from_utf8_lossy(&bytes[4..8])
        )));
    }
    let opts = verifier_options(bytes.len());
    let root = fb::root_as_model_with_opts(&opts, bytes)?;

    let version = root
        .version()
        .ok_or_else(|| Error::InvalidModel("the format version is missing".into()))?;
    if version.major() != FORMAT_VERSION.0 {
        return Err(Error::UnsupportedVersion {
            major: version.major(),
            minor: version.minor(),
            supported: FORMAT_VERSION.0,
        });
    }

    let fb_tensors = root
        .tensors()
        .ok_or_else(|| Error::InvalidModel("the tensor list is missing".into()))?;
    let mut tensors = Vec::with_capacity(fb_tensors.len());
    for (index, t) in fb_tensors.iter().enumerate() {
        tensors.push(decode_tensor(bytes, index, &t)?);
    }

    let fb_ops = root
        .operators()
        .ok_or_else(|| Error::InvalidModel("the operator list is missing".into()))?;
    let mut operators = Vec::with_capacity(fb_ops.len());
    let mut marks = OpMarks {
        input: vec![0; tensors.len()],
        output: vec![0; tensors.len()],
    };
    for (index, op) in fb_ops.iter().enumerate() {
        operators.push(decode_operator(index, &op, &tensors, &mut marks)?);
    }

    let graph_list =
        |name: &str, list: Option<flatbuffers::Vector<'_, i32>>| -> Result<Vec<usize>> {
            let list = list
                .ok_or_else(|| Error::InvalidModel(format!("the graph {name} list is missing")))?;
            let mut out = Vec::with_capacity(list.len());
            let mut seen = vec![false; tensors.len()];
            for (k, i) in list.iter().enumerate() {
                match usize::try_from(i).ok().filter(|&i| i < tensors.len()) {
                    Some(i) if std::mem::replace(&mut seen[i], true) => {
                        return Err(Error::InvalidModel(format!(
                            "graph {name}[{k}] repeats tensor {i} \"{}\"",
                            tensors[i].name
                        )))
                    }
                    Some(i) => out.push(i),
                    None => {
                        return Err(Error::InvalidModel(format!(
                        "graph {name}[{k}] = {i} is not a tensor index (the model has {} tensors)",
                        tensors.len()
                    )))
                    }
                }
            }
            Ok(out)
        };
    let inputs = graph_list("inputs", root.inputs())?;
    let outputs = graph_list("outputs", root.outputs())?;

    validate_graph(&tensors, &operators, &inputs, &outputs)?;

    let metadata = match root.metadata() {
        None => Metadata::default(),
        Some(m) => Metadata {
            producer: m.producer().unwrap_or_default().to_string(),
            settings: m
                .settings()
                .map(|v| {
                    v.iter()
                        .map(|s| {
                            (
                                s.key().unwrap_or_default().to_string(),
                                s.value().unwrap_or_default().to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            layer_sparsity: m
                .layer_sparsity()
                .map(|v| {
                    v.iter()
                        .map(|l| (l.name().unwrap_or_default().to_string(), l.sparsity()))
                        .collect()
                })
                .unwrap_or_default(),
        },
    };

    for (k, (name, s)) in metadata.layer_sparsity.iter().enumerate() {
        if !(0.0..=1.0).contains(s) {
            return Err(Error::InvalidModel(format!(
                "metadata layer_sparsity[{k}] (\"{name}\") = {s} is not in [0, 1]"
            )));
        }
    }

    Ok(Decoded {
        version: (version.major(), version.minor()),
        tensors,
        operators,
        inputs,
        outputs,
        metadata,
    })
}

/// Checks that `b` lies inside the file and is aligned; returns its byte range.
fn buffer_range(
    file_len: usize,
    b: &fb::Buffer,
    what: &str,
) -> std::result::Result<Range<usize>, String> {
    let (offset, length) = (b.offset(), b.length());
    let Some(end) = offset.checked_add(length) else {
        return Err(format!(
            "{what} buffer [offset {offset}, len {length}] overflows u64"
        ));
    };
    if end > file_len as u64 {
        return Err(format!(
            "{what} buffer [offset {offset}, len {length}] ends past the end of the file ({file_len} bytes)"
        ));
    }
    if offset % DATA_ALIGN as u64 != 0 {
        return Err(format!(
            "{what} buffer [offset {offset}, len {length}] is not aligned to {DATA_ALIGN} bytes"
        ));
    }
    Ok(offset as usize..end as usize)
}

fn decode_tensor(file: &[u8], index: usize, t: &fb::Tensor<'_>) -> Result<TensorInfo> {
    let file_len = file.len();
    let name = t.name().unwrap_or_default().to_string();
    let err = |problem: String| Error::InvalidTensor {
        index,
        name: name.clone(),
        problem,
    };

    let dtype = DType::from_fb(t.dtype())
        .ok_or_else(|| err(format!("unknown dtype value {}", t.dtype().0)))?;
    let fb_shape = t
        .shape()
        .map(|s| s.iter().collect::<Vec<i32>>())
        .unwrap_or_default();
    if fb_shape.len() > MAX_RANK {
        return Err(err(format!(
            "rank {} exceeds the maximum {MAX_RANK}",
            fb_shape.len()
        )));
    }
    let mut shape = Vec::with_capacity(fb_shape.len());
    let mut num_elements: usize = 1;
    for (k, &d) in fb_shape.iter().enumerate() {
        let d = usize::try_from(d).map_err(|_| err(format!("shape[{k}] = {d} is negative")))?;
        num_elements = num_elements
            .checked_mul(d)
            .filter(|&n| n <= MAX_TENSOR_ELEMENTS)
            .ok_or_else(|| {
                err(format!(
                    "shape {fb_shape:?} has more than {MAX_TENSOR_ELEMENTS} elements"
                ))
            })?;
        shape.push(d);
    }
    // Cannot overflow: num_elements <= i32::MAX and size_bytes <= 4.
    let byte_size = num_elements * dtype.size_bytes();

    let quant = match t.quantization() {
        None => None,
        Some(q) => Some(decode_quant(&q, dtype, &shape).map_err(err)?),
    };

    let data = match t.data() {
        None => None,
        Some(b) => {
            let r = buffer_range(file_len, b, "data").map_err(err)?;
            if r.len() != byte_size {
                return Err(err(format!(
                    "data buffer [offset {}, len {}] holds {} bytes, but shape {fb_shape:?} of {dtype} needs {byte_size}",
                    r.start,
                    r.len(),
                    r.len()
                )));
            }
            Some(r)
        }
    };

    let sparse = match t.sparse() {
        None => None,
        Some(s) => {
            if data.is_some() {
                return Err(err("has both dense data and a sparse encoding".into()));
            }
            Some(decode_sparse(file, &s, dtype, &shape).map_err(err)?)
        }
    };

    let is_constant = data.is_some() || sparse.is_some();
    if data.is_none() && byte_size > MAX_ACTIVATION_BYTES {
        let what = if sparse.is_some() {
            "sparse weight's dense size"
        } else {
            "activation"
        };
        return Err(err(format!(
            "{what} of {byte_size} bytes exceeds the maximum {MAX_ACTIVATION_BYTES}"
        )));
    }
    Ok(TensorInfo {
        name,
        shape,
        dtype,
        quant,
        is_constant,
        num_elements,
        byte_size,
        data,
        sparse,
    })
}

fn decode_quant(
    q: &fb::Quantization<'_>,
    dtype: DType,
    shape: &[usize],
) -> std::result::Result<Quantization, String> {
    let Some(range) = dtype.zero_point_range() else {
        return Err(format!("{dtype} tensor has quantization parameters"));
    };
    let scales: Vec<f32> = q.scales().map(|v| v.iter().collect()).unwrap_or_default();
    let zero_points: Vec<i64> = q
        .zero_points()
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    if scales.is_empty() {
        return Err("quantization has no scales".into());
    }
    if scales.len() != zero_points.len() {
        return Err(format!(
            "quantization has {} scales but {} zero points",
            scales.len(),
            zero_points.len()
        ));
    }
    let axis = match q.axis() {
        -1 => {
            if scales.len() != 1 {
                return Err(format!(
                    "per-tensor quantization has {} scales, expected 1",
                    scales.len()
                ));
            }
            None
        }
        a => {
            let Some(axis) = usize::try_from(a).ok().filter(|&a| a < shape.len()) else {
                return Err(format!(
                    "quantization axis {a} is out of range for rank {}",
                    shape.len()
                ));
            };
            if scales.len() != shape[axis] {
                return Err(format!(
                    "per-axis quantization has {} scales, expected {} (shape[{axis}])",
                    scales.len(),
                    shape[axis]
                ));
            }
            Some(axis)
        }
    };
    for (k, &s) in scales.iter().enumerate() {
        if !(s.is_finite() && s > 0.0) {
            return Err(format!(
                "quantization scales[{k}] = {s} is not finite and > 0"
            ));
        }
    }
    for (k, &z) in zero_points.iter().enumerate() {
        if z < range.0 || z > range.1 {
            return Err(format!(
                "quantization zero_points[{k}] = {z} is outside the {dtype} range [{}, {}]",
                range.0, range.1
            ));
        }
    }
    Ok(Quantization {
        scales,
        zero_points,
        axis,
    })
}

fn u32_array<'a>(bytes_range: &Range<usize>, file: &'a [u8]) -> Option<&'a [u32]> {
    bytemuck::try_cast_slice(file.get(bytes_range.clone())?).ok()
}

fn decode_sparse(
    file: &[u8],
    s: &fb::Sparse<'_>,
    dtype: DType,
    shape: &[usize],
) -> std::result::Result<SparseRanges, String> {
    let file_len = file.len();
    let (&rows, rest) = shape
        .split_first()
        .ok_or("a sparse tensor must have rank >= 1")?;
    // The dense element count was checked, so this product cannot overflow.
    let cols: usize = rest.iter().product();
    let format = match s.format() {
        fb::SparseFormat::Csr => {
            if (s.block_rows(), s.block_cols()) != (1, 1) {
                return Err(format!(
                    "sparse CSR has block shape {}x{}, expected 1x1",
                    s.block_rows(),
                    s.block_cols()
                ));
            }
            SparseFormat::Csr
        }
        fb::SparseFormat::Bsr => {
            let (r, c) = (s.block_rows(), s.block_cols());
            if r == 0 || c == 0 || r as usize > rows.max(1) || c as usize > cols.max(1) {
                return Err(format!(
                    "sparse BSR block shape {r}x{c} is not within 1x1..{}x{}",
                    rows.max(1),
                    cols.max(1)
                ));
            }
            SparseFormat::Bsr {
                block_rows: r,
                block_cols: c,
            }
        }
        other => return Err(format!("unknown sparse format value {}", other.0)),
    };
    let (br, bc) = format.block();
    let block_rows = rows.div_ceil(br);
    let block_cols = cols.div_ceil(bc);
    let missing = |what: &str| format!("sparse {what} buffer is missing");
    let row_ptr = buffer_range(
        file_len,
        s.row_ptr().ok_or_else(|| missing("row_ptr"))?,
        "sparse row_ptr",
    )?;
    let col_idx = buffer_range(
        file_len,
        s.col_idx().ok_or_else(|| missing("col_idx"))?,
        "sparse col_idx",
    )?;
    let values = buffer_range(
        file_len,
        s.values().ok_or_else(|| missing("values"))?,
        "sparse values",
    )?;
    if row_ptr.len() != (block_rows + 1) * 4 {
        return Err(format!(
            "sparse row_ptr holds {} bytes, expected {} ({} u32 entries for {block_rows} {}rows + 1)",
            row_ptr.len(),
            (block_rows + 1) * 4,
            block_rows + 1,
            if br > 1 { "block " } else { "" }
        ));
    }
    if col_idx.len() % 4 != 0 {
        return Err(format!(
            "sparse col_idx holds {} bytes, not a multiple of 4",
            col_idx.len()
        ));
    }
    let nblocks = col_idx.len() / 4;
    let block_bytes = br * bc * dtype.size_bytes();
    let want_values = nblocks
        .checked_mul(block_bytes)
        .ok_or("sparse values size overflows")?;
    if values.len() != want_values {
        return Err(format!(
            "sparse values hold {} bytes, expected {want_values} ({nblocks} stored x {br}x{bc} x {dtype})",
            values.len()
        ));
    }
    let ptr = u32_array(&row_ptr, file).ok_or("sparse row_ptr is not 4-byte aligned")?;
    let idx = u32_array(&col_idx, file).ok_or("sparse col_idx is not 4-byte aligned")?;
    let unit = if br > 1 || bc > 1 { "block " } else { "" };
    if ptr[0] != 0 {
        return Err(format!("sparse row_ptr[0] = {}, expected 0", ptr[0]));
    }
    for k in 0..block_rows {
        let (start, end) = (ptr[k] as usize, ptr[k + 1] as usize);
        if end < start {
            return Err(format!(
                "sparse row_ptr decreases: row_ptr[{}] = {end} < row_ptr[{k}] = {start}",
                k + 1
            ));
        }
        if end > nblocks {
            return Err(format!(
                "sparse row_ptr[{}] = {end} overruns col_idx ({nblocks} entries)",
                k + 1
            ));
        }
        let row = &idx[start..end];
        for (j, &c) in row.iter().enumerate() {
            if c as usize >= block_cols {
                return Err(format!(
                    "sparse col_idx[{}] = {c} (in {unit}row {k}) is out of range ({block_cols} {unit}columns)",
                    start + j
                ));
            }
            if j > 0 && c <= row[j - 1] {
                return Err(format!(
                    "sparse col_idx in {unit}row {k} is not strictly increasing: col_idx[{}] = {c} after {}",
                    start + j,
                    row[j - 1]
                ));
            }
        }
    }
    if ptr[block_rows] as usize != nblocks {
        return Err(format!(
            "sparse row_ptr[{block_rows}] = {}, expected {nblocks} (the col_idx length)",
            ptr[block_rows]
        ));
    }
    Ok(SparseRanges {
        format,
        rows,
        cols,
        row_ptr,
        col_idx,
        values,
    })
}

fn padding(p: fb::Padding) -> std::result::Result<Padding, String> {
    match p {
        fb::Padding::Same => Ok(Padding::Same),
        fb::Padding::Valid => Ok(Padding::Valid),
        other => Err(format!("unknown padding value {}", other.0)),
    }
}

fn activation(a: fb::Activation) -> std::result::Result<Activation, String> {
    Ok(match a {
        fb::Activation::None => Activation::None,
        fb::Activation::Relu => Activation::Relu,
        fb::Activation::ReluN1To1 => Activation::ReluN1To1,
        fb::Activation::Relu6 => Activation::Relu6,
        fb::Activation::Tanh => Activation::Tanh,
        other => return Err(format!("unknown fused activation value {}", other.0)),
    })
}

fn positive(field: &str, v: i32) -> std::result::Result<i32, String> {
    if v >= 1 {
        Ok(v)
    } else {
        Err(format!("option {field} = {v}, expected >= 1"))
    }
}

/// Decodes the options union. The FlatBuffer verifier has already checked that the table matches
/// its type tag, so a missing table here means an unknown tag.
fn decode_options(op: &fb::Operator<'_>) -> std::result::Result<OpOptions, String> {
    use fb::OpOptions as T;
    let t = op.options_type();
    let missing = || format!("options of type {} are missing or unknown", t.0);
    Ok(match t {
        T::NONE => OpOptions::None,
        T::Conv2dOptions => {
            let o = op.options_as_conv_2d_options().ok_or_else(missing)?;
            OpOptions::Conv2d {
                padding: padding(o.padding())?,
                stride_h: positive("stride_h", o.stride_h())?,
                stride_w: positive("stride_w", o.stride_w())?,
                dilation_h: positive("dilation_h", o.dilation_h())?,
                dilation_w: positive("dilation_w", o.dilation_w())?,
                activation: activation(o.activation())?,
            }
        }
        T::DepthwiseConv2dOptions => {
            let o = op
                .options_as_depthwise_conv_2d_options()
                .ok_or_else(missing)?;
            OpOptions::DepthwiseConv2d {
                padding: padding(o.padding())?,
                stride_h: positive("stride_h", o.stride_h())?,
                stride_w: positive("stride_w", o.stride_w())?,
                dilation_h: positive("dilation_h", o.dilation_h())?,
                dilation_w: positive("dilation_w", o.dilation_w())?,
                depth_multiplier: positive("depth_multiplier", o.depth_multiplier())?,
                activation: activation(o.activation())?,
            }
        }
        T::FullyConnectedOptions => {
            let o = op
                .options_as_fully_connected_options()
                .ok_or_else(missing)?;
            OpOptions::FullyConnected {
                activation: activation(o.activation())?,
                keep_num_dims: o.keep_num_dims(),
                asymmetric_quantize_inputs: o.asymmetric_quantize_inputs(),
            }
        }
        T::Pool2dOptions => {
            let o = op.options_as_pool_2d_options().ok_or_else(missing)?;
            OpOptions::Pool2d {
                padding: padding(o.padding())?,
                stride_h: positive("stride_h", o.stride_h())?,
                stride_w: positive("stride_w", o.stride_w())?,
                filter_h: positive("filter_h", o.filter_h())?,
                filter_w: positive("filter_w", o.filter_w())?,
                activation: activation(o.activation())?,
            }
        }
        T::TransposeConvOptions => {
            let o = op.options_as_transpose_conv_options().ok_or_else(missing)?;
            OpOptions::TransposeConv {
                padding: padding(o.padding())?,
                stride_h: positive("stride_h", o.stride_h())?,
                stride_w: positive("stride_w", o.stride_w())?,
                activation: activation(o.activation())?,
            }
        }
        T::ElementwiseOptions => {
            let o = op.options_as_elementwise_options().ok_or_else(missing)?;
            OpOptions::Elementwise {
                activation: activation(o.activation())?,
            }
        }
        T::ConcatenationOptions => {
            let o = op.options_as_concatenation_options().ok_or_else(missing)?;
            OpOptions::Concatenation {
                axis: o.axis(),
                activation: activation(o.activation())?,
            }
        }
        T::ReshapeOptions => {
            let o = op.options_as_reshape_options().ok_or_else(missing)?;
            let new_shape: Vec<i32> = o
                .new_shape()
                .map(|v| v.iter().collect())
                .unwrap_or_default();
            if new_shape.len() > MAX_RANK {
                return Err(format!(
                    "option new_shape has rank {} > {MAX_RANK}",
                    new_shape.len()
                ));
            }
            OpOptions::Reshape { new_shape }
        }
        T::SqueezeOptions => {
            let o = op.options_as_squeeze_options().ok_or_else(missing)?;
            let dims: Vec<i32> = o.dims().map(|v| v.iter().collect()).unwrap_or_default();
            if dims.len() > MAX_RANK {
                return Err(format!(
                    "option dims has {} entries > {MAX_RANK}",
                    dims.len()
                ));
            }
            OpOptions::Squeeze { dims }
        }
        T::StridedSliceOptions => {
            let o = op.options_as_strided_slice_options().ok_or_else(missing)?;
            OpOptions::StridedSlice {
                begin_mask: o.begin_mask(),
                end_mask: o.end_mask(),
                ellipsis_mask: o.ellipsis_mask(),
                new_axis_mask: o.new_axis_mask(),
                shrink_axis_mask: o.shrink_axis_mask(),
                offset: o.offset(),
            }
        }
        T::DepthToSpaceOptions => {
            let o = op.options_as_depth_to_space_options().ok_or_else(missing)?;
            OpOptions::DepthToSpace {
                block_size: positive("block_size", o.block_size())?,
            }
        }
        T::SpaceToDepthOptions => {
            let o = op.options_as_space_to_depth_options().ok_or_else(missing)?;
            OpOptions::SpaceToDepth {
                block_size: positive("block_size", o.block_size())?,
            }
        }
        T::ResizeOptions => {
            let o = op.options_as_resize_options().ok_or_else(missing)?;
            OpOptions::Resize {
                align_corners: o.align_corners(),
                half_pixel_centers: o.half_pixel_centers(),
            }
        }
        T::SoftmaxOptions => {
            let o = op.options_as_softmax_options().ok_or_else(missing)?;
            if !o.beta().is_finite() {
                return Err(format!("option beta = {} is not finite", o.beta()));
            }
            OpOptions::Softmax { beta: o.beta() }
        }
        T::ReducerOptions => {
            let o = op.options_as_reducer_options().ok_or_else(missing)?;
            OpOptions::Reducer {
                keep_dims: o.keep_dims(),
            }
        }
        T::LeakyReluOptions => {
            let o = op.options_as_leaky_relu_options().ok_or_else(missing)?;
            if !o.alpha().is_finite() {
                return Err(format!("option alpha = {} is not finite", o.alpha()));
            }
            OpOptions::LeakyRelu { alpha: o.alpha() }
        }
        T::GatherOptions => {
            let o = op.options_as_gather_options().ok_or_else(missing)?;
            OpOptions::Gather {
                axis: o.axis(),
                batch_dims: o.batch_dims(),
            }
        }
        T::PackOptions => {
            let o = op.options_as_pack_options().ok_or_else(missing)?;
            OpOptions::Pack {
                axis: o.axis(),
                values_count: positive("values_count", o.values_count())?,
            }
        }
        T::SplitOptions => {
            let o = op.options_as_split_options().ok_or_else(missing)?;
            OpOptions::Split {
                num_splits: positive("num_splits", o.num_splits())?,
            }
        }
        T::BatchMatMulOptions => {
            let o = op.options_as_batch_mat_mul_options().ok_or_else(missing)?;
            OpOptions::BatchMatMul {
                adj_x: o.adj_x(),
                adj_y: o.adj_y(),
            }
        }
        _ => return Err(missing()),
    })
}

/// Which options variant an op kind takes, and whether it may be omitted (`OpOptions::None`).
fn options_rule(kind: OpKind) -> (Option<&'static str>, bool) {
    use OpKind::*;
    match kind {
        Conv2d => (Some("Conv2d"), false),
        DepthwiseConv2d => (Some("DepthwiseConv2d"), false),
        FullyConnected => (Some("FullyConnected"), false),
        TransposeConv => (Some("TransposeConv"), false),
        MaxPool2d | AveragePool2d => (Some("Pool2d"), false),
        Concatenation => (Some("Concatenation"), false),
        StridedSlice => (Some("StridedSlice"), false),
        DepthToSpace => (Some("DepthToSpace"), false),
        SpaceToDepth => (Some("SpaceToDepth"), false),
        LeakyRelu => (Some("LeakyRelu"), false),
        Pack | Unpack => (Some("Pack"), false),
        Split => (Some("Split"), false),
        Gather => (Some("Gather"), true),
        Softmax => (Some("Softmax"), true),
        Add | Sub | Mul | Div => (Some("Elementwise"), true),
        Reshape => (Some("Reshape"), true),
        Squeeze => (Some("Squeeze"), true),
        ResizeBilinear | ResizeNearestNeighbor => (Some("Resize"), true),
        Mean | Sum | ReduceMax => (Some("Reducer"), true),
        BatchMatMul => (Some("BatchMatMul"), true),
        _ => (None, true),
    }
}

fn options_name(o: &OpOptions) -> &'static str {
    match o {
        OpOptions::None => "None",
        OpOptions::Conv2d { .. } => "Conv2d",
        OpOptions::DepthwiseConv2d { .. } => "DepthwiseConv2d",
        OpOptions::FullyConnected { .. } => "FullyConnected",
        OpOptions::Pool2d { .. } => "Pool2d",
        OpOptions::TransposeConv { .. } => "TransposeConv",
        OpOptions::Elementwise { .. } => "Elementwise",
        OpOptions::Concatenation { .. } => "Concatenation",
        OpOptions::Reshape { .. } => "Reshape",
        OpOptions::Squeeze { .. } => "Squeeze",
        OpOptions::StridedSlice { .. } => "StridedSlice",
        OpOptions::DepthToSpace { .. } => "DepthToSpace",
        OpOptions::SpaceToDepth { .. } => "SpaceToDepth",
        OpOptions::Resize { .. } => "Resize",
        OpOptions::Softmax { .. } => "Softmax",
        OpOptions::Reducer { .. } => "Reducer",
        OpOptions::LeakyRelu { .. } => "LeakyRelu",
        OpOptions::Gather { .. } => "Gather",
        OpOptions::Pack { .. } => "Pack",
        OpOptions::Split { .. } => "Split",
        OpOptions::BatchMatMul { .. } => "BatchMatMul",
    }
}

/// Input positions that may be absent (-1): the bias of convolutions and fully-connected.
pub(crate) fn optional_input(kind: OpKind, position: usize) -> bool {
    matches!(
        (kind, position),
        (
            OpKind::Conv2d | OpKind::DepthwiseConv2d | OpKind::FullyConnected,
            2
        ) | (OpKind::TransposeConv, 3)
    )
}

/// Per-tensor marks (operator index + 1) that make the per-operator duplicate checks linear.
struct OpMarks {
    input: Vec<usize>,
    output: Vec<usize>,
}

fn decode_operator(
    index: usize,
    op: &fb::Operator<'_>,
    tensors: &[TensorInfo],
    marks: &mut OpMarks,
) -> Result<OpInfo> {
    let raw_kind = op.kind();
    let Some(kind) = OpKind::from_fb(raw_kind) else {
        return Err(Error::InvalidOperator {
            index,
            kind: format!("kind {}", raw_kind.0),
            problem: "unknown operator kind".into(),
        });
    };
    let err = |problem: String| Error::InvalidOperator {
        index,
        kind: kind.name().to_string(),
        problem,
    };
    let options = decode_options(op).map_err(err)?;
    let (expected, optional) = options_rule(kind);
    let got = options_name(&options);
    let ok = match (&options, expected) {
        (OpOptions::None, _) => optional,
        (_, Some(want)) => want == got,
        (_, None) => false,
    };
    if !ok {
        return Err(err(format!(
            "options {got}, expected {}",
            match (expected, optional) {
                (Some(w), true) => format!("{w} or None"),
                (Some(w), false) => w.to_string(),
                (None, _) => "None".to_string(),
            }
        )));
    }

    let tensor_index = |list: &str, k: usize, i: i32| -> Result<usize> {
        usize::try_from(i)
            .ok()
            .filter(|&i| i < tensors.len())
            .ok_or_else(|| {
                err(format!(
                    "{list}[{k}] = {i} is not a tensor index (the model has {} tensors)",
                    tensors.len()
                ))
            })
    };
    let fb_inputs = op
        .inputs()
        .map(|v| v.iter().collect::<Vec<i32>>())
        .unwrap_or_default();
    let fb_outputs = op
        .outputs()
        .map(|v| v.iter().collect::<Vec<i32>>())
        .unwrap_or_default();
    let mut inputs = Vec::with_capacity(fb_inputs.len());
    for (k, &i) in fb_inputs.iter().enumerate() {
        if i == -1 {
            if !optional_input(kind, k) {
                return Err(err(format!("inputs[{k}] = -1, but this input is required")));
            }
            inputs.push(None);
        } else {
            let t = tensor_index("inputs", k, i)?;
            marks.input[t] = index + 1;
            inputs.push(Some(t));
        }
    }
    if fb_outputs.is_empty() {
        return Err(err("has no outputs".into()));
    }
    let mut outputs = Vec::with_capacity(fb_outputs.len());
    for (k, &i) in fb_outputs.iter().enumerate() {
        let t = tensor_index("outputs", k, i)?;
        if tensors[t].is_constant {
            return Err(err(format!(
                "outputs[{k}] is tensor {t} \"{}\", a constant",
                tensors[t].name
            )));
        }
        if marks.input[t] == index + 1 {
            return Err(err(format!(
                "tensor {t} \"{}\" is both an input and an output",
                tensors[t].name
            )));
        }
        if std::mem::replace(&mut marks.output[t], index + 1) == index + 1 {
            return Err(err(format!(
                "outputs[{k}] repeats tensor {t} \"{}\"",
                tensors[t].name
            )));
        }
        outputs.push(t);
    }
    Ok(OpInfo {
        kind,
        options,
        inputs,
        outputs,
    })
}

/// The graph is acyclic and in topological order: every activation an operator reads is a graph
/// input or written by an earlier operator, and every tensor is written at most once.
fn validate_graph(
    tensors: &[TensorInfo],
    ops: &[OpInfo],
    inputs: &[usize],
    outputs: &[usize],
) -> Result<()> {
    const UNWRITTEN: usize = usize::MAX;
    const GRAPH_INPUT: usize = usize::MAX - 1;
    // writer[t] = index of the op that writes tensor t (or a marker).
    let mut writer = vec![UNWRITTEN; tensors.len()];
    for &i in inputs {
        if tensors[i].is_constant {
            return Err(Error::InvalidModel(format!(
                "graph input tensor {i} \"{}\" is a constant",
                tensors[i].name
            )));
        }
        writer[i] = GRAPH_INPUT;
    }
    // First pass: who writes what.
    for (index, op) in ops.iter().enumerate() {
        for &t in &op.outputs {
            let prev = writer[t];
            if prev != UNWRITTEN {
                let by = if prev == GRAPH_INPUT {
                    "it is a graph input".to_string()
                } else {
                    format!("operator {prev} ({}) writes it too", ops[prev].kind)
                };
                return Err(Error::InvalidOperator {
                    index,
                    kind: op.kind.name().to_string(),
                    problem: format!("writes tensor {t} \"{}\", but {by}", tensors[t].name),
                });
            }
            writer[t] = index;
        }
    }
    // Second pass: every activation read is written before.
    for (index, op) in ops.iter().enumerate() {
        for (k, t) in op.inputs.iter().enumerate() {
            let Some(t) = *t else { continue };
            if tensors[t].is_constant || writer[t] == GRAPH_INPUT {
                continue;
            }
            let w = writer[t];
            let problem = if w == UNWRITTEN {
                format!(
                    "inputs[{k}] is tensor {t} \"{}\", which is neither a constant, a graph input nor written by any operator",
                    tensors[t].name
                )
            } else if w >= index {
                format!(
                    "inputs[{k}] is tensor {t} \"{}\", written by operator {w} ({}), which does not run earlier (the graph must be acyclic and in topological order)",
                    tensors[t].name, ops[w].kind
                )
            } else {
                continue;
            };
            return Err(Error::InvalidOperator {
                index,
                kind: op.kind.name().to_string(),
                problem,
            });
        }
    }
    for (k, &t) in outputs.iter().enumerate() {
        if writer[t] == UNWRITTEN && !tensors[t].is_constant {
            return Err(Error::InvalidModel(format!(
                "graph outputs[{k}] is tensor {t} \"{}\", which no operator writes",
                tensors[t].name
            )));
        }
    }
    Ok(())
}
