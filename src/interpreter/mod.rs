//! The interpreter: prepare once (shapes, per-op checks, kernel choice, weight packing, one
//! activation arena planned by liveness), then invoke many times without allocating.
//!
//! Lifetimes: an [`Interpreter<'m>`] borrows the model it was built from (`'m`); constant tensors
//! that need no packing are read from the model's bytes in place. Packed weights and tensors
//! folded at prepare (e.g. float16 weights widened behind a DEQUANTIZE) are owned by the
//! interpreter.

pub mod arena;
mod buf;
mod graph;

use std::time::{Duration, Instant};

use sparq_kernels::pool::ThreadPool;
use sparq_schema::{DType, ModelDef, OpKind, Quantization};

pub(crate) use buf::AlignedBuf;
pub(crate) use graph::{Graph, OpView};

use crate::ops::{self, Exec, Inputs, OpEval, Operand};
use crate::{Error, Result};

/// How an [`Interpreter`] is prepared.
#[derive(Clone, Debug)]
pub struct Options {
    /// Threads that run one invoke (the caller included). 1: no thread pool.
    pub threads: usize,
    /// Intermediate tensors (by name) to keep readable after `invoke` via [`Interpreter::tensor`].
    pub keep: Vec<String>,
    /// Time every operator during `invoke` (see [`Interpreter::profile`]).
    pub profile: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { threads: 1, keep: Vec::new(), profile: false }
    }
}

/// Shape, dtype, quantization and name of a tensor, as the interpreter sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub quant: Option<Quantization>,
}

impl TensorInfo {
    /// Number of elements.
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }

    /// Number of bytes.
    pub fn bytes(&self) -> usize {
        self.elements() * self.dtype.size_bytes()
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
    /// Prepares a model given as plain data (as built by the importer or by hand).
    pub fn from_def(def: &'m ModelDef, options: Options) -> Result<Interpreter<'m>> {
        Interpreter::prepare(Graph::from_def(def)?, options)
    }

    fn prepare(g: Graph<'m>, options: Options) -> Result<Interpreter<'m>> {
        if options.threads == 0 || options.threads > 256 {
            return Err(Error::Argument(format!(
                "threads must be in 1..=256, got {}",
                options.threads
            )));
        }
        let n = g.tensors.len();
        let mut infos: Vec<TensorInfo> = g
            .tensors
            .iter()
            .map(|t| TensorInfo {
                name: t.name.to_string(),
                shape: t.shape.clone(),
                dtype: t.dtype,
                quant: t.quant.cloned(),
            })
            .collect();
        // Constants: borrowed in place when aligned for their dtype, copied otherwise;
        // sparse constants are densified (the sparse kernels take them from the model instead
        // where the op supports it).
        let mut consts: Vec<ConstData<'m>> = Vec::new();
        let mut storage: Vec<Storage> = (0..n).map(|_| Storage::None).collect();
        for (i, t) in g.tensors.iter().enumerate() {
            let bytes = t.byte_len().ok_or_else(|| g.tensor_err(i, "shape overflows"))?;
            let data = if let Some(d) = t.data {
                if d.len() != bytes {
                    return Err(g.tensor_err(
                        i,
                        format!("data is {} bytes, shape and dtype need {bytes}", d.len()),
                    ));
                }
                if (d.as_ptr() as usize) % t.dtype.size_bytes() == 0 {
                    ConstData::Borrowed(d)
                } else {
                    ConstData::Owned(AlignedBuf::from_bytes(d))
                }
            } else if let Some(s) = &t.sparse {
                let dense = s.densify(&t.shape, t.dtype.size_bytes()).map_err(|p| g.tensor_err(i, p))?;
                ConstData::Owned(AlignedBuf::from_bytes(&dense))
            } else {
                continue;
            };
            storage[i] = Storage::Const(consts.len());
            consts.push(data);
        }
        // Which tensors are known (computed, constant or graph input) before each op.
        let mut known: Vec<bool> = storage.iter().map(|s| matches!(s, Storage::Const(_))).collect();
        for &i in &g.inputs {
            if known[i] {
                return Err(g.tensor_err(i, "a graph input cannot be a constant"));
            }
            known[i] = true;
        }
        let mut kept: Vec<bool> = vec![false; n];
        for name in &options.keep {
            let i = g
                .tensors
                .iter()
                .position(|t| t.name == name.as_str())
                .ok_or_else(|| Error::Argument(format!("no tensor named {name:?} to keep")))?;
            kept[i] = true;
        }

        struct Pending {
            op_index: usize,
            kind: OpKind,
            eval: Box<dyn OpEval>,
            inputs: Vec<Option<usize>>,
            output: usize,
        }
        let mut pending: Vec<Pending> = Vec::new();
        for (oi, op) in g.ops.iter().enumerate() {
            for (k, inp) in op.inputs.iter().enumerate() {
                if let Some(t) = *inp {
                    if !known[t] {
                        return Err(g.op_err(
                            oi,
                            format!(
                                "input {k} (tensor {t} \"{}\") is not computed before this operator",
                                g.tensors[t].name
                            ),
                        ));
                    }
                }
            }
            if op.outputs.len() != 1 {
                return Err(Error::UnsupportedOp {
                    index: oi,
                    kind: op.kind.name().to_string(),
                    problem: format!("{} outputs (only single-output operators run)", op.outputs.len()),
                });
            }
            let out = op.outputs[0];
            if known[out] {
                return Err(g.op_err(
                    oi,
                    format!("output tensor {out} \"{}\" is already defined", g.tensors[out].name),
                ));
            }
            let ctx = ops::Ctx::new(oi, op, &g, &infos, &consts, &storage);
            let prepared = ops::prepare(&ctx)?;
            let declared = &infos[out];
            if prepared.dtype != declared.dtype || prepared.shape != declared.shape {
                return Err(g.op_err(
                    oi,
                    format!(
                        "output tensor {out} \"{}\" is declared {}{:?} but computes to {}{:?}",
                        declared.name, declared.dtype, declared.shape, prepared.dtype, prepared.shape
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
                let mut buf = AlignedBuf::zeroed(declared.bytes());
                let ins = Inputs::new(&[], &[], 0, &operands, &consts);
                prepared.eval.eval(&ins, buf.bytes_mut(), &Exec::single());
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
            });
        }
        for &o in &g.outputs {
            if !known[o] {
                return Err(g.tensor_err(o, "graph output is never computed"));
            }
        }

        // Liveness, in steps: graph inputs are born before step 0; graph outputs and kept
        // tensors live to the end.
        let steps_n = pending.len();
        let mut first = vec![usize::MAX; n];
        let mut last = vec![0usize; n];
        for &i in &g.inputs {
            first[i] = 0;
        }
        for (s, p) in pending.iter().enumerate() {
            first[p.output] = s;
            last[p.output] = last[p.output].max(s);
            for &t in p.inputs.iter().flatten() {
                last[t] = last[t].max(s);
            }
        }
        for i in 0..n {
            if (kept[i] || g.outputs.contains(&i)) && first[i] != usize::MAX {
                last[i] = steps_n;
            }
        }
        let mut arena_tensors = Vec::new();
        let mut reqs = Vec::new();
        for i in 0..n {
            if first[i] != usize::MAX && !matches!(storage[i], Storage::Const(_)) {
                arena_tensors.push(i);
                reqs.push(arena::Request { size: infos[i].bytes(), first: first[i], last: last[i] });
            }
        }
        let plan = arena::plan(&reqs, 64)
            .ok_or_else(|| Error::InvalidModel("activation arena size overflows".into()))?;
        for (k, &i) in arena_tensors.iter().enumerate() {
            storage[i] = Storage::Arena { offset: plan.offsets[k], len: infos[i].bytes() };
        }
        let steps = pending
            .into_iter()
            .map(|p| {
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
                }
            })
            .collect::<Vec<_>>();
        for info in &mut infos {
            info.shape.shrink_to_fit();
        }
        let exec = Exec::new(options.threads)
            .map_err(|e| Error::Argument(format!("cannot start {} threads: {e}", options.threads)))?;
        let profile = options.profile.then(|| vec![Duration::ZERO; steps.len()]);
        Ok(Interpreter {
            infos,
            storage,
            consts,
            steps,
            arena: AlignedBuf::zeroed(plan.total),
            inputs: g.inputs.clone(),
            outputs: g.outputs.clone(),
            keep: (0..n).filter(|&i| kept[i]).collect(),
            exec,
            profile,
        })
    }

    /// Runs the model on the current inputs. Allocates nothing.
    pub fn invoke(&mut self) -> Result<()> {
        let Interpreter { steps, arena, consts, exec, profile, .. } = self;
        let bytes = arena.bytes_mut();
        for (s, step) in steps.iter().enumerate() {
            let start = profile.as_ref().map(|_| Instant::now());
            let (left, rest) = bytes.split_at_mut(step.out_offset);
            let (out, right) = rest.split_at_mut(step.out_len);
            let ins = Inputs::new(left, right, step.out_offset + step.out_len, &step.inputs, consts);
            step.eval.eval(&ins, out, exec);
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
            Error::Argument(format!("{what} {k} does not exist (the model has {})", list.len()))
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
        if data.len() != info.elements() {
            return Err(Error::Argument(format!(
                "input {k} \"{}\" has {} elements (shape {:?}), got {}",
                info.name,
                info.elements(),
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
        if data.len() != info.bytes() {
            return Err(Error::Argument(format!(
                "input {k} \"{}\" is {} bytes ({}{:?}), got {}",
                info.name,
                info.bytes(),
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
        self.bytes_of(t).ok_or_else(|| Error::Argument(format!("output {k} has no storage")))
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
        Some(self.steps.iter().zip(p).map(|(s, d)| (s.op_index, s.kind, *d)).collect())
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
            info.name, info.dtype, T::DTYPE
        )));
    }
    Ok(())
}
