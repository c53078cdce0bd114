//! Operators: one file per family. Each family has a `prepare` that checks the operator (shapes,
//! dtypes, quantization, options), computes its output shape and packs its weights once, and
//! returns an [`OpEval`] whose `eval` runs the kernels on arena slices without allocating.

mod binary;
mod conv;
mod fc;
mod gemm;
mod movement;
mod pool;
mod quant;
mod reduce;
mod shape;
mod softmax;
mod transpose_conv;
mod unary;
mod window;

use sparq_kernels::pool::ThreadPool;
use sparq_schema::{Activation, DType, OpKind, OpOptions, Quantization};

use crate::interpreter::{Budget, ConstData, Storage};
use crate::{Error, OpInfo, Result, TensorInfo};
use crate::{SparseRoute, SparseView};

/// Where an operator input comes from at run time.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Operand {
    /// An absent optional input.
    Absent,
    /// A constant (index into the interpreter's constants).
    Const(usize),
    /// Bytes `offset..offset + len` of the arena.
    Arena { offset: usize, len: usize },
}

/// The inputs of one operator at run time. The arena is split around the operator's output, so
/// inputs (which the planner never places over a live output) are shared slices.
pub(crate) struct Inputs<'a> {
    /// The arena minus the output and the scratch: up to three runs, as (offset, bytes).
    segments: [(usize, &'a [u8]); 3],
    operands: &'a [Operand],
    consts: &'a [ConstData<'a>],
}

impl<'a> Inputs<'a> {
    pub(crate) fn new(
        segments: [(usize, &'a [u8]); 3],
        operands: &'a [Operand],
        consts: &'a [ConstData<'a>],
    ) -> Inputs<'a> {
        Inputs {
            segments,
            operands,
            consts,
        }
    }

    /// The bytes of input `k` (empty for an absent input).
    pub(crate) fn bytes(&self, k: usize) -> &'a [u8] {
        match self.operands[k] {
            Operand::Absent => &[],
            Operand::Const(c) => self.consts[c].bytes(),
            Operand::Arena { offset, len } => {
                // The planner never overlaps a live input with the output or the scratch, so
                // the input lies inside one segment.
                for &(base, seg) in &self.segments {
                    if offset >= base && offset + len <= base + seg.len() {
                        return &seg[offset - base..offset - base + len];
                    }
                }
                unreachable!("input {k} at {offset}+{len} crosses the output or scratch")
            }
        }
    }

    pub(crate) fn f32(&self, k: usize) -> &'a [f32] {
        bytemuck::cast_slice(self.bytes(k))
    }
}

/// Below this many multiply-adds (or element operations) an operator runs on one thread: the
/// hand-off costs more than it saves.
const PAR_MIN_WORK: usize = 1 << 16;

/// Tasks per thread when a big operator is split: more than one, so that a thread that starts
/// late (descheduled, or woken slowly) leaves its share to the others instead of holding
/// everyone up.
const TASKS_PER_THREAD: usize = 4;

/// From this much work on an operator is split into [`TASKS_PER_THREAD`] tasks per thread;
/// below it into one task per thread: each task has a fixed cost (a GEMM task streams the whole
/// weight matrix, a window task re-reads its border rows), which small operators cannot repay.
const MANY_TASKS_WORK: usize = 1 << 23;

/// The fewest rows a task gets when an operator is split into several tasks per thread:
/// shorter tasks waste the kernels' row tiles and repeat their per-task cost too often.
const MANY_TASKS_MIN_ROWS: usize = 8;

/// Rows per task when `rows` rows of an operator doing `work` multiply-adds are split over
/// `threads` threads.
pub(crate) fn rows_per_task(rows: usize, threads: usize, work: usize) -> usize {
    let many = work >= MANY_TASKS_WORK && rows >= threads * TASKS_PER_THREAD * MANY_TASKS_MIN_ROWS;
    let per_thread = if many { TASKS_PER_THREAD } else { 1 };
    rows.div_ceil(threads * per_thread).max(1)
}

/// Every row count per task [`rows_per_task`] may return for `rows` rows and `threads` threads
/// (whatever the work), smallest first.
pub(crate) fn task_sizes(rows: usize, threads: usize) -> [usize; 2] {
    let fewest = rows_per_task(rows, threads, MANY_TASKS_WORK);
    [fewest, rows_per_task(rows, threads, 0).max(fewest)]
}

/// How operators run: on the caller alone or split over a thread pool.
pub(crate) struct Exec {
    pool: Option<ThreadPool>,
}

impl Exec {
    pub(crate) fn new(threads: usize) -> std::io::Result<Exec> {
        Ok(Exec {
            pool: if threads > 1 {
                Some(ThreadPool::new(threads)?)
            } else {
                None
            },
        })
    }

    pub(crate) fn single() -> Exec {
        Exec { pool: None }
    }

    pub(crate) fn threads(&self) -> usize {
        self.pool.as_ref().map_or(1, |p| p.threads())
    }

    /// Calls `f(first_row, rows)` over `out` viewed as rows of `row_len` elements, split into
    /// one contiguous block of rows per thread when `work` (the operator's total multiply-adds
    /// or element operations) is large enough. Every output element is computed by exactly one
    /// call, in the same way for any split, so results do not depend on the thread count.
    pub(crate) fn rows<T: Send>(
        &self,
        out: &mut [T],
        row_len: usize,
        work: usize,
        f: &(dyn Fn(usize, &mut [T]) + Sync),
    ) {
        let rows = out.len().checked_div(row_len).unwrap_or(0);
        match &self.pool {
            Some(pool) if work >= PAR_MIN_WORK && rows >= 2 => {
                let per = rows_per_task(rows, pool.threads(), work);
                pool.run_chunks_mut(out, per * row_len, &|i, chunk| f(i * per, chunk));
            }
            _ => f(0, out),
        }
    }
}

impl Exec {
    /// As [`Exec::rows`], with a scratch buffer split alongside: the call for rows
    /// `first..first + n` also gets scratch rows `first..first + n` (`scratch_row` elements each).
    pub(crate) fn rows_with_scratch<T: Send, U: Send>(
        &self,
        out: &mut [T],
        row_len: usize,
        scratch: &mut [U],
        scratch_row: usize,
        work: usize,
        f: &sparq_kernels::pool::ChunkPairFn<'_, T, U>,
    ) {
        let rows = out.len().checked_div(row_len).unwrap_or(0);
        match &self.pool {
            Some(pool) if work >= PAR_MIN_WORK && rows >= 2 => {
                let per = rows_per_task(rows, pool.threads(), work);
                let tasks = rows.div_ceil(per);
                pool.run_chunks2_mut(
                    tasks,
                    out,
                    per * row_len,
                    scratch,
                    per * scratch_row,
                    &|i, o, s| f(i * per, o, s),
                );
            }
            _ => f(0, out, scratch),
        }
    }
}

impl Exec {
    /// Splits `out`, one output row, into column blocks of whole `align` columns, one block per
    /// thread, and calls `f(first_col, block, part)` for each, where `part` is the task's own
    /// `per_task` elements of `scratch` (which must hold `threads() × per_task`), when `work`
    /// is large enough; otherwise calls nothing and returns false (the caller then computes the
    /// row on its own). Every output element is computed by exactly one call.
    pub(crate) fn cols_with_scratch<T: Send, U: Send>(
        &self,
        out: &mut [T],
        align: usize,
        scratch: &mut [U],
        per_task: usize,
        work: usize,
        f: &sparq_kernels::pool::ChunkPairFn<'_, T, U>,
    ) -> bool {
        let Some(pool) = &self.pool else {
            return false;
        };
        let threads = pool.threads();
        let tiles = out.len().div_ceil(align.max(1));
        if work < PAR_MIN_WORK || tiles < 2 || scratch.len() < threads * per_task {
            return false;
        }
        let per = tiles.div_ceil(threads) * align.max(1);
        let tasks = out.len().div_ceil(per);
        pool.run_chunks2_mut(tasks, out, per, scratch, per_task, &|i, o, s| {
            f(i * per, o, s)
        });
        true
    }
}

/// What `prepare` of an operator returns.
pub(crate) struct Prepared {
    pub eval: Box<dyn OpEval>,
    pub shape: Vec<usize>,
    pub dtype: DType,
    /// Scratch bytes `eval` needs (planned in the arena, alive during this op only).
    pub scratch: usize,
}

/// The run-time half of a prepared operator.
pub(crate) trait OpEval: Send + Sync {
    /// Computes the output from the inputs. `out` has exactly the output's byte length and is
    /// 64-byte aligned; inputs have the shapes and dtypes checked at prepare.
    fn eval(&self, ins: &Inputs<'_>, out: &mut [u8], _scratch: &mut [u8], exec: &Exec);

    /// The name of the specialised kernel this operator runs on, where it chose one at prepare
    /// that the operator kind does not imply (the sparse kernels); `None` otherwise.
    fn kernel(&self) -> Option<&'static str> {
        None
    }
}

/// What an operator's `prepare` sees: its options, its tensors' shapes, dtypes, quantization
/// and constant data, and helpers that build errors naming the operator and the tensor.
pub(crate) struct Ctx<'a, 'm> {
    pub index: usize,
    pub kind: OpKind,
    pub options: &'m OpOptions,
    /// Threads `invoke` will use (operators may prepare per-thread work).
    pub threads: usize,
    inputs: &'a [Option<usize>],
    outputs: &'a [usize],
    /// Which output this preparation computes (multi-output operators run as one step per
    /// output).
    out_k: usize,
    infos: &'a [TensorInfo],
    consts: &'a [ConstData<'m>],
    storage: &'a [Storage],
    budget: &'a Budget,
    /// The model's sparse encoding of each tensor (weights stored sparse).
    sparse: &'a [Option<SparseView<'m>>],
    pub route: SparseRoute,
}

impl<'a, 'm> Ctx<'a, 'm> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        index: usize,
        op: &'m OpInfo,
        infos: &'a [TensorInfo],
        consts: &'a [ConstData<'m>],
        storage: &'a [Storage],
        threads: usize,
        budget: &'a Budget,
        (sparse, route): (&'a [Option<SparseView<'m>>], SparseRoute),
    ) -> Ctx<'a, 'm> {
        Ctx {
            index,
            kind: op.kind,
            options: &op.options,
            threads,
            inputs: &op.inputs,
            outputs: &op.outputs,
            out_k: 0,
            infos,
            consts,
            storage,
            budget,
            sparse,
            route,
        }
    }

    /// The model's sparse encoding of tensor `t`, if it is stored sparse.
    pub(crate) fn sparse(&self, t: usize) -> Option<&'a SparseView<'m>> {
        self.sparse.get(t)?.as_ref()
    }

    /// Takes `bytes` (`None`: overflowed) that prepare is about to allocate for tensor `t`
    /// from the [`crate::Options::max_prepare_bytes`] budget; an error naming the operator and
    /// the tensor when it does not fit.
    pub(crate) fn charge(&self, t: usize, bytes: Option<usize>) -> Result<()> {
        self.budget.charge(bytes).map_err(|p| self.tensor_err(t, p))
    }

    /// An error about this operator.
    pub(crate) fn err(&self, problem: impl Into<String>) -> Error {
        Error::InvalidOperator {
            index: self.index,
            kind: self.kind.name().to_string(),
            problem: problem.into(),
        }
    }

    /// "Not supported" for this operator.
    pub(crate) fn unsupported(&self, problem: impl Into<String>) -> Error {
        Error::UnsupportedOp {
            index: self.index,
            kind: self.kind.name().to_string(),
            problem: problem.into(),
        }
    }

    pub(crate) fn num_inputs(&self) -> usize {
        self.inputs.len()
    }

    /// Checks the number of inputs is within `min..=max`.
    pub(crate) fn expect_inputs(&self, min: usize, max: usize) -> Result<()> {
        let n = self.inputs.len();
        if n < min || n > max {
            let want = if min == max {
                format!("{min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(self.err(format!("has {n} inputs, expected {want}")));
        }
        Ok(())
    }

    /// Tensor index of input `k`; an error if it is absent.
    pub(crate) fn input(&self, k: usize) -> Result<usize> {
        self.inputs
            .get(k)
            .copied()
            .flatten()
            .ok_or_else(|| self.err(format!("input {k} is missing")))
    }

    /// Tensor index of optional input `k`.
    pub(crate) fn opt_input(&self, k: usize) -> Option<usize> {
        self.inputs.get(k).copied().flatten()
    }

    /// The same operator, preparing its output `k` (of a multi-output operator).
    pub(crate) fn for_output(mut self, k: usize) -> Self {
        self.out_k = k;
        self
    }

    /// Tensor index of the output this preparation computes.
    pub(crate) fn output(&self) -> usize {
        self.outputs[self.out_k]
    }

    /// Which output this preparation computes, and how many the operator has.
    pub(crate) fn output_part(&self) -> (usize, usize) {
        (self.out_k, self.outputs.len())
    }

    pub(crate) fn info(&self, t: usize) -> &'a TensorInfo {
        &self.infos[t]
    }

    pub(crate) fn shape(&self, t: usize) -> &'a [usize] {
        &self.infos[t].shape
    }

    pub(crate) fn dtype(&self, t: usize) -> DType {
        self.infos[t].dtype
    }

    pub(crate) fn quant(&self, t: usize) -> Option<&'a Quantization> {
        self.infos[t].quant.as_ref()
    }

    /// The constant bytes of tensor `t`, if it is a constant (possibly folded at prepare).
    pub(crate) fn const_bytes(&self, t: usize) -> Option<&'a [u8]> {
        match self.storage[t] {
            Storage::Const(c) => Some(self.consts[c].bytes()),
            _ => None,
        }
    }

    /// Input `k`, which must be a constant (weights, shapes, axes).
    pub(crate) fn const_input(&self, k: usize) -> Result<(usize, &'a [u8])> {
        let t = self.input(k)?;
        let b = self.const_bytes(t).ok_or_else(|| {
            self.unsupported(format!(
                "input {k} (tensor \"{}\") must be a constant",
                self.infos[t].name
            ))
        })?;
        Ok((t, b))
    }

    /// Constant input `k` as i32 values (shapes, axes, paddings).
    pub(crate) fn const_i32(&self, k: usize) -> Result<Vec<i32>> {
        let (t, b) = self.const_input(k)?;
        if self.dtype(t) != DType::I32 {
            return Err(self.err(format!(
                "input {k} (tensor \"{}\") must be i32, is {}",
                self.infos[t].name,
                self.dtype(t)
            )));
        }
        Ok(bytemuck::cast_slice::<u8, i32>(b).to_vec())
    }

    /// Constant float weights of tensor `t` as f32: f32 data as is, f16 data widened (once, here
    /// at prepare).
    pub(crate) fn const_f32(&self, t: usize) -> Result<Vec<f32>> {
        let b = self.const_bytes(t).ok_or_else(|| {
            self.unsupported(format!(
                "tensor {t} \"{}\" must be a constant",
                self.infos[t].name
            ))
        })?;
        match self.dtype(t) {
            DType::F32 => Ok(bytemuck::cast_slice::<u8, f32>(b).to_vec()),
            DType::F16 => Ok(bytemuck::cast_slice::<u8, half::f16>(b)
                .iter()
                .map(|v| v.to_f32())
                .collect()),
            d => Err(self.tensor_err(t, format!("is {d}, expected f32 or f16"))),
        }
    }

    /// Checks that tensor `t` has rank `r`.
    pub(crate) fn expect_rank(&self, t: usize, r: usize) -> Result<&'a [usize]> {
        let s = self.shape(t);
        if s.len() != r {
            return Err(self.err(format!(
                "tensor {t} \"{}\" has shape {s:?}, expected rank {r}",
                self.infos[t].name
            )));
        }
        Ok(s)
    }

    /// A "name: problem" error about tensor `t` of this operator.
    pub(crate) fn tensor_err(&self, t: usize, problem: impl std::fmt::Display) -> Error {
        self.err(format!("tensor {t} \"{}\": {problem}", self.infos[t].name))
    }
}

/// The clamp range of a fused activation in f32 (`Tanh` is not a clamp; callers handle it).
pub(crate) fn act_range_f32(a: Activation) -> (f32, f32) {
    match a {
        Activation::None | Activation::Tanh => (f32::NEG_INFINITY, f32::INFINITY),
        Activation::Relu => (0.0, f32::INFINITY),
        Activation::ReluN1To1 => (-1.0, 1.0),
        Activation::Relu6 => (0.0, 6.0),
    }
}

/// Whether operators of this kind may have several outputs (each prepared and run as its own
/// step, see [`Ctx::for_output`]).
pub(crate) fn multi_output(kind: OpKind) -> bool {
    matches!(kind, OpKind::Split | OpKind::Unpack)
}

/// Prepares operator `ctx.index` (its output `ctx.output_part().0`).
pub(crate) fn prepare(ctx: &Ctx<'_, '_>) -> Result<Prepared> {
    use OpKind::*;
    match ctx.kind {
        Conv2d => conv::prepare_conv(ctx),
        DepthwiseConv2d => conv::prepare_depthwise(ctx),
        FullyConnected => fc::prepare(ctx),
        Add | Sub | Mul | Div | Maximum | Minimum | SquaredDifference => binary::prepare(ctx),
        MaxPool2d | AveragePool2d => pool::prepare(ctx),
        Mean | Sum | ReduceMax => reduce::prepare(ctx),
        Reshape | Squeeze | ExpandDims => shape::prepare_reshape(ctx),
        Concatenation => shape::prepare_concat(ctx),
        Pad | PadV2 => shape::prepare_pad(ctx),
        Softmax | LogSoftmax => softmax::prepare(ctx),
        Relu | Relu6 | ReluN1To1 | HardSwish | Logistic | Tanh | LeakyRelu | Abs | Neg | Exp
        | Sqrt | Rsqrt | Square => unary::prepare(ctx),
        StridedSlice
        | Slice
        | Transpose
        | DepthToSpace
        | SpaceToDepth
        | Gather
        | ResizeNearestNeighbor => movement::prepare(ctx),
        ResizeBilinear => movement::prepare_bilinear(ctx),
        TransposeConv => transpose_conv::prepare(ctx),
        Pack => shape::prepare_pack(ctx),
        Split | Unpack => shape::prepare_split(ctx),
        Dequantize => quant::prepare_dequantize(ctx),
        Quantize => quant::prepare_quantize(ctx),
        _ => Err(ctx.unsupported("this operator kind is not implemented yet")),
    }
}

/// A boxed [`OpEval`] from a closure-free struct.
pub(crate) fn boxed(e: impl OpEval + 'static) -> Box<dyn OpEval> {
    Box::new(e)
}

/// Number of elements of a shape.
pub(crate) fn elements(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// A byte buffer of the arena as a typed slice. Arena buffers are 64-byte aligned; an empty one
/// (no scratch asked) may not be, so it maps to an empty slice.
pub(crate) fn cast_mut<T: bytemuck::Pod>(b: &mut [u8]) -> &mut [T] {
    if b.is_empty() {
        return &mut [];
    }
    bytemuck::cast_slice_mut(b)
}
