//! The interpreter: prepare once (shapes, per-op checks, kernel choice, weight packing, one
//! activation arena planned by liveness), then invoke many times without allocating.
//!
//! Lifetimes: an [`Interpreter<'m>`] borrows the model it was built from (`'m`); constant tensors
//! that need no packing are read from the model's bytes in place. Packed weights and tensors
//! folded at prepare (e.g. float16 weights widened behind a DEQUANTIZE) are owned by the
//! interpreter.

pub mod arena;
mod buf;

use std::time::{Duration, Instant};

use sparq_schema::{DType, OpKind};

pub(crate) use buf::AlignedBuf;

use crate::ops::{self, Exec, Inputs, OpEval, Operand};
use crate::{Error, Model, Result, SparseView, TensorInfo};

/// How an [`Interpreter`] is prepared.
#[derive(Clone, Debug)]
pub struct Options {
    /// Threads that run one invoke (the caller included). 1: no thread pool.
    pub threads: usize,
    /// Intermediate tensors (by name) to keep readable after `invoke` via [`Interpreter::tensor`].
    pub keep: Vec<String>,
    /// Time every operator during `invoke` (see [`Interpreter::profile`]).
    pub profile: bool,
    /// Upper bound on the bytes prepare may allocate for the model: densified sparse and
    /// widened float16 constants, packed weights and the activation arena (with scratch).
    /// Each is checked before it is allocated; a model over the bound fails with an error
    /// naming the tensor or operator. Default [`DEFAULT_MAX_PREPARE_BYTES`] (1 GiB).
    pub max_prepare_bytes: usize,
    /// Which kernels run weights stored sparse in the model (see [`SparseRoute`]).
    pub sparse: SparseRoute,
}

/// How a FULLY_CONNECTED or 1×1 stride-1 CONV_2D whose weight is stored sparse runs. Eligible:
/// f32 weights with f32 activations; symmetric int8 weights with int8 or uint8 activations (the
/// int8 fully-connected layer on the sparse kernels' raw accumulators, with its own TFLite-exact
/// rescale), and with f32 activations on a dynamic-range fully-connected layer. Other layers
/// always run dense (their weights densified at prepare).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SparseRoute {
    /// The sparse kernels where the kernel crate's `prefer_sparse` expects them to be faster
    /// on this CPU; dense elsewhere.
    #[default]
    Auto,
    /// The sparse kernels for every eligible layer.
    Sparse,
    /// The dense kernels everywhere.
    Dense,
}

/// The default [`Options::max_prepare_bytes`]: 1 GiB.
pub const DEFAULT_MAX_PREPARE_BYTES: usize = 1 << 30;

/// The prepare-time allocation budget ([`Options::max_prepare_bytes`]).
pub(crate) struct Budget {
    limit: usize,
    used: std::cell::Cell<usize>,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Budget {
        Budget {
            limit,
            used: std::cell::Cell::new(0),
        }
    }

    /// Takes `bytes` (`None`: the size computation overflowed) from the budget, or explains
    /// why it cannot.
    pub(crate) fn charge(&self, bytes: Option<usize>) -> std::result::Result<(), String> {
        let used = self.used.get();
        match bytes.and_then(|b| used.checked_add(b)) {
            Some(total) if total <= self.limit => {
                self.used.set(total);
                Ok(())
            }
            Some(_) => Err(format!(
                "needs {} bytes at prepare, over max_prepare_bytes {} ({used} already used)",
                bytes.unwrap_or(0),
                self.limit
            )),
            None => Err(format!(
                "its prepare size overflows (max_prepare_bytes {})",
                self.limit
            )),
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            threads: 1,
            keep: Vec::new(),
            profile: false,
            max_prepare_bytes: DEFAULT_MAX_PREPARE_BYTES,
            sparse: SparseRoute::Auto,
        }
    }
}

/// Rust element types that map to a tensor dtype.
pub trait Element: bytemuck::Pod {
    const DTYPE: DType;
}
impl Element for f32 {
    const DTYPE: DType = DType::F32;
}
impl Element for half::f16 {
    const DTYPE: DType = DType::F16;
}
impl Element for i8 {
    const DTYPE: DType = DType::I8;
}
impl Element for u8 {
    const DTYPE: DType = DType::U8;
}
impl Element for i32 {
    const DTYPE: DType = DType::I32;
}

/// A constant tensor's bytes: borrowed from the model, or owned (folded, realigned, densified).
pub(crate) enum ConstData<'m> {
    Borrowed(&'m [u8]),
    Owned(AlignedBuf),
}

impl ConstData<'_> {
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            ConstData::Borrowed(b) => b,
            ConstData::Owned(b) => b.bytes(),
        }
    }
}

/// Where a tensor's bytes live.
pub(crate) enum Storage {
    /// Never computed or read (e.g. an unused output of a folded op).
    None,
    /// `consts[i]`.
    Const(usize),
    /// `offset..offset + len` of the arena.
    Arena { offset: usize, len: usize },
}

struct Step {
    op_index: usize,
    kind: OpKind,
    eval: Box<dyn OpEval>,
    inputs: Vec<Operand>,
    out_offset: usize,
    out_len: usize,
    scratch_offset: usize,
    scratch_len: usize,
}

/// A prepared model, ready to run.
pub struct Interpreter<'m> {
    infos: Vec<TensorInfo>,
    storage: Vec<Storage>,
    consts: Vec<ConstData<'m>>,
    steps: Vec<Step>,
    arena: AlignedBuf,
    inputs: Vec<usize>,
    outputs: Vec<usize>,
    keep: Vec<usize>,
    exec: Exec,
    profile: Option<Vec<Duration>>,
}

impl std::fmt::Debug for Interpreter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interpreter")
            .field("steps", &self.steps.len())
            .field("arena_bytes", &self.arena.len())
            .field("threads", &self.exec.threads())
            .finish()
    }
}

impl<'m> Interpreter<'m> {
    /// Prepares `model`: checks every operator, infers and checks shapes, packs weights and
    /// plans the activation arena.
    pub fn new(model: &'m Model, options: Options) -> Result<Interpreter<'m>> {
        if options.threads == 0 || options.threads > 256 {
            return Err(Error::Argument(format!(
                "threads must be in 1..=256, got {}",
                options.threads
            )));
        }
        let mut infos: Vec<TensorInfo> = model.tensors().to_vec();
        let n = infos.len();
        let tensor_err = |i: usize, problem: String| Error::InvalidTensor {
            index: i,
            name: model.tensors()[i].name.clone(),
            problem,
        };
        let op_err = |i: usize, problem: String| Error::InvalidOperator {
            index: i,
            kind: model.operators()[i].kind.name().to_string(),
            problem,
        };
        // Constants: dense data is used in place (the model guarantees 64-byte alignment);
        // sparse constants are densified for the operators that read them densely; float16
        // constants are widened to f32 once, here (the file keeps them as f16).
        let budget = Budget::new(options.max_prepare_bytes);
        let sparse: Vec<Option<SparseView<'m>>> = (0..n).map(|i| model.sparse(i)).collect();
        let mut consts: Vec<ConstData<'m>> = Vec::new();
        let mut storage: Vec<Storage> = (0..n).map(|_| Storage::None).collect();
        for (i, t) in infos.iter_mut().enumerate() {
            let data = if let (Some(d), DType::F16) = (model.tensor_data(i), t.dtype) {
                budget
                    .charge(d.len().checked_mul(2))
                    .map_err(|p| tensor_err(i, p))?;
                let wide: Vec<f32> = d
                    .chunks_exact(2)
                    .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                    .collect();
                t.dtype = DType::F32;
                t.byte_size = wide.len() * 4;
                ConstData::Owned(AlignedBuf::from_bytes(bytemuck::cast_slice(&wide)))
            } else if let Some(d) = model.tensor_data(i) {
                if (d.as_ptr() as usize).is_multiple_of(t.dtype.size_bytes()) {
                    ConstData::Borrowed(d)
                } else {
                    ConstData::Owned(AlignedBuf::from_bytes(d))
                }
            } else if let Some(s) = model.sparse(i) {
                let size = s
                    .rows
                    .checked_mul(s.cols)
                    .and_then(|v| v.checked_mul(t.dtype.size_bytes()));
                budget.charge(size).map_err(|p| tensor_err(i, p))?;
                let dense = densify(&s, t.dtype.size_bytes()).map_err(|p| tensor_err(i, p))?;
                ConstData::Owned(AlignedBuf::from_bytes(&dense))
            } else {
                continue;
            };
            storage[i] = Storage::Const(consts.len());
            consts.push(data);
        }
        // Which tensors are known (computed, constant or graph input) before each op.
        let mut known: Vec<bool> = storage
            .iter()
            .map(|s| matches!(s, Storage::Const(_)))
            .collect();
        for &i in model.inputs() {
            if known[i] {
                return Err(tensor_err(i, "a graph input cannot be a constant".into()));
            }
            known[i] = true;
        }
        let mut kept: Vec<bool> = vec![false; n];
        for name in &options.keep {
            let i = infos
                .iter()
                .position(|t| t.name == *name)
                .ok_or_else(|| Error::Argument(format!("no tensor named {name:?} to keep")))?;
            kept[i] = true;
        }

        struct Pending {
            op_index: usize,
            kind: OpKind,
            eval: Box<dyn OpEval>,
            inputs: Vec<Option<usize>>,
            output: usize,
            scratch: usize,
        }
        let mut pending: Vec<Pending> = Vec::new();
        for (oi, op) in model.operators().iter().enumerate() {
            for (k, inp) in op.inputs.iter().enumerate() {
                if let Some(t) = *inp {
                    if !known[t] {
                        return Err(op_err(
                            oi,
                            format!(
                                "input {k} (tensor {t} \"{}\") is not computed before this operator",
                                infos[t].name
                            ),
                        ));
                    }
                }
            }
            if op.outputs.len() != 1 && !ops::multi_output(op.kind) {
                return Err(Error::UnsupportedOp {
                    index: oi,
                    kind: op.kind.name().to_string(),
                    problem: format!(
                        "{} outputs (only single-output operators run)",
                        op.outputs.len()
                    ),
                });
            }
            if op.outputs.is_empty() {
                return Err(op_err(oi, "has no outputs".into()));
            }
            // A multi-output operator runs as one step per output.
            for (k, &out) in op.outputs.iter().enumerate() {
                if known[out] {
                    return Err(op_err(
                        oi,
                        format!(
                            "output tensor {out} \"{}\" is already defined",
                            infos[out].name
                        ),
                    ));
                }
                let ctx = ops::Ctx::new(
                    oi,
                    op,
                    &infos,
                    &consts,
                    &storage,
                    options.threads,
                    &budget,
                    (&sparse, options.sparse),
                )
                .for_output(k);
                let prepared = ops::prepare(&ctx)?;
                let declared = &infos[out];
                if prepared.dtype != declared.dtype || prepared.shape != declared.shape {
                    return Err(op_err(
                        oi,
                        format!(
                            "output tensor {out} \"{}\" is declared {}{:?} but computes to {}{:?}",
                            declared.name,
                            declared.dtype,
                            declared.shape,
                            prepared.dtype,
                            prepared.shape
                        ),
                    ));
                }
                known[out] = true;
                let all_const = op
                    .inputs
                    .iter()
                    .flatten()
                    .all(|&t| matches!(storage[t], Storage::Const(_)));
                if all_const {
                    // Fold: run the op once now; its output becomes a constant.
                    let operands: Vec<Operand> = op
                        .inputs
                        .iter()
                        .map(|t| match t {
                            Some(t) => match storage[*t] {
                                Storage::Const(c) => Operand::Const(c),
                                _ => unreachable!("checked constant above"),
                            },
                            None => Operand::Absent,
                        })
                        .collect();
                    budget
                        .charge(declared.byte_size.checked_add(prepared.scratch))
                        .map_err(|p| op_err(oi, format!("folding at prepare {p}")))?;
                    let mut buf = AlignedBuf::zeroed(declared.byte_size);
                    let mut scratch = AlignedBuf::zeroed(prepared.scratch);
                    let ins = Inputs::new([(0, &[]); 3], &operands, &consts);
                    prepared
                        .eval
                        .eval(&ins, buf.bytes_mut(), scratch.bytes_mut(), &Exec::single());
                    storage[out] = Storage::Const(consts.len());
                    consts.push(ConstData::Owned(buf));
                    continue;
                }
                pending.push(Pending {
                    op_index: oi,
                    kind: op.kind,
                    eval: prepared.eval,
                    inputs: op.inputs.clone(),
                    output: out,
                    scratch: prepared.scratch,
                });
            }
        }
        for &o in model.outputs() {
            if !known[o] {
                return Err(tensor_err(o, "graph output is never computed".into()));
            }
        }

        // Liveness, in steps: graph inputs are born before step 0; graph inputs, graph outputs
        // and kept tensors live to the end.
        let steps_n = pending.len();
        let mut first = vec![usize::MAX; n];
        let mut last = vec![0usize; n];
        for &i in model.inputs() {
            first[i] = 0;
        }
        for (s, p) in pending.iter().enumerate() {
            first[p.output] = s;
            last[p.output] = last[p.output].max(s);
            for &t in p.inputs.iter().flatten() {
                last[t] = last[t].max(s);
            }
        }
        // Graph inputs live to the end too: a caller may set them once and invoke many times.
        for i in 0..n {
            let pinned = kept[i] || model.outputs().contains(&i) || model.inputs().contains(&i);
            if pinned && first[i] != usize::MAX {
                last[i] = steps_n;
            }
        }
        let mut arena_tensors = Vec::new();
        let mut reqs = Vec::new();
        for i in 0..n {
            if first[i] != usize::MAX && !matches!(storage[i], Storage::Const(_)) {
                arena_tensors.push(i);
                reqs.push(arena::Request {
                    size: infos[i].byte_size,
                    first: first[i],
                    last: last[i],
                });
            }
        }
        // Each step's scratch lives during that step only.
        let scratch_base = reqs.len();
        for (s, p) in pending.iter().enumerate() {
            reqs.push(arena::Request {
                size: p.scratch,
                first: s,
                last: s,
            });
        }
        let plan = arena::plan(&reqs, 64)
            .ok_or_else(|| Error::InvalidModel("activation arena size overflows".into()))?;
        budget
            .charge(Some(plan.total))
            .map_err(|p| Error::InvalidModel(format!("the activation arena (with scratch) {p}")))?;
        for (k, &i) in arena_tensors.iter().enumerate() {
            storage[i] = Storage::Arena {
                offset: plan.offsets[k],
                len: infos[i].byte_size,
            };
        }
        let steps = pending
            .into_iter()
            .enumerate()
            .map(|(s, p)| {
                let inputs = p
                    .inputs
                    .iter()
                    .map(|t| match t {
                        None => Operand::Absent,
                        Some(t) => match storage[*t] {
                            Storage::Const(c) => Operand::Const(c),
                            Storage::Arena { offset, len } => Operand::Arena { offset, len },
                            Storage::None => unreachable!("inputs are known"),
                        },
                    })
                    .collect();
                let Storage::Arena { offset, len } = storage[p.output] else {
                    unreachable!("step outputs live in the arena")
                };
                Step {
                    op_index: p.op_index,
                    kind: p.kind,
                    eval: p.eval,
                    inputs,
                    out_offset: offset,
                    out_len: len,
                    scratch_offset: plan.offsets[scratch_base + s],
                    scratch_len: p.scratch,
                }
            })
            .collect::<Vec<_>>();
        let exec = Exec::new(options.threads).map_err(|e| {
            Error::Argument(format!("cannot start {} threads: {e}", options.threads))
        })?;
        let profile = options.profile.then(|| vec![Duration::ZERO; steps.len()]);
        Ok(Interpreter {
            infos,
            storage,
            consts,
            steps,
            arena: AlignedBuf::zeroed(plan.total),
            inputs: model.inputs().to_vec(),
            outputs: model.outputs().to_vec(),
            keep: (0..n).filter(|&i| kept[i]).collect(),
            exec,
            profile,
        })
    }

    /// Runs the model on the current inputs. Allocates nothing.
    pub fn invoke(&mut self) -> Result<()> {
        let Interpreter {
            steps,
            arena,
            consts,
            exec,
            profile,
            ..
        } = self;
        let bytes = arena.bytes_mut();
        for (s, step) in steps.iter().enumerate() {
            let start = profile.as_ref().map(|_| Instant::now());
            let (segments, out, scratch) = split_arena(bytes, step);
            let ins = Inputs::new(segments, &step.inputs, consts);
            step.eval.eval(&ins, out, scratch, exec);
            if let (Some(p), Some(t0)) = (profile.as_mut(), start) {
                p[s] += t0.elapsed();
            }
        }
        Ok(())
    }

    /// Bytes of the activation arena (every intermediate tensor, inputs and outputs included).
    pub fn arena_bytes(&self) -> usize {
        self.arena.len()
    }

    /// Threads used by `invoke`.
    pub fn threads(&self) -> usize {
        self.exec.threads()
    }

    /// Operators run by `invoke` (those not folded into constants at prepare).
    pub fn steps(&self) -> usize {
        self.steps.len()
    }

    /// Graph inputs.
    pub fn inputs(&self) -> Vec<&TensorInfo> {
        self.inputs.iter().map(|&i| &self.infos[i]).collect()
    }

    /// Graph outputs.
    pub fn outputs(&self) -> Vec<&TensorInfo> {
        self.outputs.iter().map(|&i| &self.infos[i]).collect()
    }

    /// Every tensor of the model, by index.
    /// Every tensor of the model, by index (float16 constants appear as the f32 they were
    /// widened to).
    pub fn tensor_infos(&self) -> &[TensorInfo] {
        &self.infos
    }

    /// Index (among the graph inputs) of the input named `name`.
    pub fn input_index(&self, name: &str) -> Result<usize> {
        self.inputs
            .iter()
            .position(|&i| self.infos[i].name == name)
            .ok_or_else(|| Error::Argument(format!("no graph input named {name:?}")))
    }

    /// Index (among the graph outputs) of the output named `name`.
    pub fn output_index(&self, name: &str) -> Result<usize> {
        self.outputs
            .iter()
            .position(|&i| self.infos[i].name == name)
            .ok_or_else(|| Error::Argument(format!("no graph output named {name:?}")))
    }

    fn graph_io(&self, list: &[usize], k: usize, what: &str) -> Result<usize> {
        list.get(k).copied().ok_or_else(|| {
            Error::Argument(format!(
                "{what} {k} does not exist (the model has {})",
                list.len()
            ))
        })
    }

    /// The raw bytes of graph input `k`, to fill before `invoke`.
    pub fn input_bytes_mut(&mut self, k: usize) -> Result<&mut [u8]> {
        let t = self.graph_io(&self.inputs, k, "input")?;
        match self.storage[t] {
            Storage::Arena { offset, len } => Ok(&mut self.arena.bytes_mut()[offset..offset + len]),
            // An input that no operator reads still gets arena bytes (it is born at step 0).
            _ => Err(Error::Argument(format!("input {k} has no storage"))),
        }
    }

    /// Graph input `k` as a typed slice; an error if `T` is not its dtype.
    pub fn input_mut<T: Element>(&mut self, k: usize) -> Result<&mut [T]> {
        let t = self.graph_io(&self.inputs, k, "input")?;
        check_dtype::<T>(&self.infos[t], "input")?;
        Ok(bytemuck::cast_slice_mut(self.input_bytes_mut(k)?))
    }

    /// Copies `data` into graph input `k`; an error if the dtype or the length differ.
    pub fn set_input<T: Element>(&mut self, k: usize, data: &[T]) -> Result<()> {
        let t = self.graph_io(&self.inputs, k, "input")?;
        let info = &self.infos[t];
        check_dtype::<T>(info, "input")?;
        if data.len() != info.num_elements {
            return Err(Error::Argument(format!(
                "input {k} \"{}\" has {} elements (shape {:?}), got {}",
                info.name,
                info.num_elements,
                info.shape,
                data.len()
            )));
        }
        self.input_mut::<T>(k)?.copy_from_slice(data);
        Ok(())
    }

    /// Copies raw little-endian bytes into graph input `k`; the length must match exactly.
    pub fn set_input_bytes(&mut self, k: usize, data: &[u8]) -> Result<()> {
        let t = self.graph_io(&self.inputs, k, "input")?;
        let info = &self.infos[t];
        if data.len() != info.byte_size {
            return Err(Error::Argument(format!(
                "input {k} \"{}\" is {} bytes ({}{:?}), got {}",
                info.name,
                info.byte_size,
                info.dtype,
                info.shape,
                data.len()
            )));
        }
        self.input_bytes_mut(k)?.copy_from_slice(data);
        Ok(())
    }

    fn bytes_of(&self, t: usize) -> Option<&[u8]> {
        match self.storage[t] {
            Storage::Arena { offset, len } => Some(&self.arena.bytes()[offset..offset + len]),
            Storage::Const(c) => Some(self.consts[c].bytes()),
            Storage::None => None,
        }
    }

    /// The raw bytes of graph output `k` after `invoke`.
    pub fn output_bytes(&self, k: usize) -> Result<&[u8]> {
        let t = self.graph_io(&self.outputs, k, "output")?;
        self.bytes_of(t)
            .ok_or_else(|| Error::Argument(format!("output {k} has no storage")))
    }

    /// Graph output `k` as a typed slice; an error if `T` is not its dtype.
    pub fn output<T: Element>(&self, k: usize) -> Result<&[T]> {
        let t = self.graph_io(&self.outputs, k, "output")?;
        check_dtype::<T>(&self.infos[t], "output")?;
        Ok(bytemuck::cast_slice(self.output_bytes(k)?))
    }

    /// A tensor by name after `invoke`: graph inputs and outputs, constants, and intermediates
    /// listed in [`Options::keep`] (other intermediates share memory and are not kept).
    pub fn tensor(&self, name: &str) -> Result<(&TensorInfo, &[u8])> {
        let t = self
            .infos
            .iter()
            .position(|i| i.name == name)
            .ok_or_else(|| Error::Argument(format!("no tensor named {name:?}")))?;
        let readable = self.inputs.contains(&t)
            || self.outputs.contains(&t)
            || matches!(self.storage[t], Storage::Const(_))
            || self.kept(t);
        if !readable {
            return Err(Error::Argument(format!(
                "tensor {name:?} is an intermediate not kept at prepare (list it in Options::keep)"
            )));
        }
        let bytes = self
            .bytes_of(t)
            .ok_or_else(|| Error::Argument(format!("tensor {name:?} is never computed")))?;
        Ok((&self.infos[t], bytes))
    }

    /// Kept intermediates live to the end of `invoke`: their arena bytes are never reused.
    fn kept(&self, t: usize) -> bool {
        self.keep.contains(&t)
    }

    /// Per-step timings of the invokes run since prepare, as (operator index, kind, total time),
    /// when [`Options::profile`] was set.
    pub fn profile(&self) -> Option<Vec<(usize, OpKind, Duration)>> {
        let p = self.profile.as_ref()?;
        Some(
            self.steps
                .iter()
                .zip(p)
                .map(|(s, d)| (s.op_index, s.kind, *d))
                .collect(),
        )
    }

    /// Per step, as (operator index, kind, kernel): the specialised kernel an operator chose at
    /// prepare (e.g. a sparse kernel for weights stored sparse), `None` for its usual kernels.
    pub fn kernels(&self) -> Vec<(usize, OpKind, Option<&'static str>)> {
        self.steps
            .iter()
            .map(|s| (s.op_index, s.kind, s.eval.kernel()))
            .collect()
    }

    /// Clears the accumulated profile.
    pub fn reset_profile(&mut self) {
        if let Some(p) = &mut self.profile {
            p.iter_mut().for_each(|d| *d = Duration::ZERO);
        }
    }
}

fn check_dtype<T: Element>(info: &TensorInfo, what: &str) -> Result<()> {
    if T::DTYPE != info.dtype {
        return Err(Error::Argument(format!(
            "{what} \"{}\" is {}, not {}",
            info.name,
            info.dtype,
            T::DTYPE
        )));
    }
    Ok(())
}

/// The dense row-major bytes of a validated sparse weight.
fn densify(s: &SparseView<'_>, elem: usize) -> std::result::Result<Vec<u8>, String> {
    let (br, bc) = s.block();
    let total = s
        .rows
        .checked_mul(s.cols)
        .and_then(|v| v.checked_mul(elem))
        .ok_or("sparse matrix size overflows")?;
    let mut dense = vec![0u8; total];
    let bytes_per_block = br * bc * elem;
    if s.values.len() != s.col_idx.len() * bytes_per_block
        || s.row_ptr.len() != s.rows.div_ceil(br) + 1
    {
        return Err("sparse encoding does not match its shape".into());
    }
    for bi in 0..s.rows.div_ceil(br) {
        let (a, b) = (s.row_ptr[bi] as usize, s.row_ptr[bi + 1] as usize);
        for k in a..b.min(s.col_idx.len()) {
            let bj = s.col_idx[k] as usize;
            for i in 0..br {
                for j in 0..bc {
                    let (r, c) = (bi * br + i, bj * bc + j);
                    if r < s.rows && c < s.cols {
                        let src = (k * br * bc + i * bc + j) * elem;
                        let dst = (r * s.cols + c) * elem;
                        dense[dst..dst + elem].copy_from_slice(&s.values[src..src + elem]);
                    }
                }
            }
        }
    }
    Ok(dense)
}

type Split<'a> = ([(usize, &'a [u8]); 3], &'a mut [u8], &'a mut [u8]);

/// Splits the arena into the step's output, its scratch, and the (up to three) runs of bytes
/// around them, where the inputs are. The planner keeps output and scratch disjoint (they are
/// alive at the same step).
fn split_arena<'a>(bytes: &'a mut [u8], step: &Step) -> Split<'a> {
    let (o0, o1) = (step.out_offset, step.out_offset + step.out_len);
    let (s0, s1) = (step.scratch_offset, step.scratch_offset + step.scratch_len);
    if step.scratch_len == 0 {
        let (left, rest) = bytes.split_at_mut(o0);
        let (out, right) = rest.split_at_mut(o1 - o0);
        return ([(0, left), (o1, right), (0, &[])], out, &mut []);
    }
    debug_assert!(s1 <= o0 || o1 <= s0, "output and scratch overlap");
    if o1 <= s0 {
        let (left, rest) = bytes.split_at_mut(o0);
        let (out, rest) = rest.split_at_mut(o1 - o0);
        let (mid, rest) = rest.split_at_mut(s0 - o1);
        let (scratch, right) = rest.split_at_mut(s1 - s0);
        ([(0, left), (o1, mid), (s1, right)], out, scratch)
    } else {
        let (left, rest) = bytes.split_at_mut(s0);
        let (scratch, rest) = rest.split_at_mut(s1 - s0);
        let (mid, rest) = rest.split_at_mut(o0 - s1);
        let (out, right) = rest.split_at_mut(o1 - o0);
        ([(0, left), (s1, mid), (o1, right)], out, scratch)
    }
}
