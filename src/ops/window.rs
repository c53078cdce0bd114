//! Splitting window kernels (depthwise, pooling) across threads without sharing an output
//! slice: for a single image, the output rows of each thread form their own smaller window —
//! the input rows they read, with the padding they see — built once at prepare.

use std::ops::Range;

use sparq_kernels::window::{Axis, Window2d};

use super::Exec;
use crate::Result;

/// What runs one block: `(kernel, input rows, output rows, output row range)`.
pub(crate) type RowFn<'a, K, T> = dyn Fn(&K, &[T], &mut [T], Range<usize>) + Sync + 'a;

struct Part<K> {
    first_row: usize,
    rows: usize,
    input_rows: Range<usize>,
    kernel: K,
}

/// A window kernel prepared for the whole output and for each thread's block of output rows.
pub(crate) struct RowSplit<K> {
    full: K,
    parts: Vec<Part<K>>,
    rows: usize,
    in_row: usize,
    out_row: usize,
}

/// The sub-window computing output rows `r0..r1` of a one-image window, and the input rows it
/// reads.
fn sub_window(win: &Window2d, r0: usize, r1: usize) -> (Window2d, Range<usize>) {
    let h = &win.h;
    let first = (r0 * h.stride) as isize - h.pad_before as isize;
    let end = ((r1 - 1) * h.stride + h.effective_kernel()) as isize - h.pad_before as isize;
    let in0 = first.max(0) as usize;
    let in1 = (end.max(0) as usize).min(h.input).max(in0);
    let axis = Axis {
        input: in1 - in0,
        output: r1 - r0,
        kernel: h.kernel,
        stride: h.stride,
        dilation: h.dilation,
        pad_before: (in0 as isize - first) as usize,
    };
    (
        Window2d {
            batch: 1,
            h: axis,
            ..*win
        },
        in0..in1,
    )
}

impl<K: Sync> RowSplit<K> {
    /// Builds the kernel for `win` and, for one image and `threads > 1`, for the row blocks
    /// [`Exec::rows`] may hand out (of each size [`super::task_sizes`] lists).
    pub(crate) fn new(
        win: Window2d,
        threads: usize,
        make: impl Fn(Window2d) -> Result<K>,
    ) -> Result<RowSplit<K>> {
        let rows = win.batch * win.h.output;
        let mut parts = Vec::new();
        if win.batch == 1 && threads > 1 && rows >= 2 {
            let sizes = super::task_sizes(rows, threads);
            for (i, &per) in sizes.iter().enumerate() {
                if sizes[..i].contains(&per) {
                    continue;
                }
                let mut r0 = 0;
                while r0 < rows {
                    let r1 = (r0 + per).min(rows);
                    let (w, input_rows) = sub_window(&win, r0, r1);
                    parts.push(Part {
                        first_row: r0,
                        rows: r1 - r0,
                        input_rows,
                        kernel: make(w)?,
                    });
                    r0 = r1;
                }
            }
        }
        Ok(RowSplit {
            full: make(win)?,
            parts,
            rows,
            in_row: win.w.input * win.in_c,
            out_row: win.w.output * win.out_c,
        })
    }

    /// Runs `f(kernel, input, output, rows)` over the output, split by rows when `exec` does.
    pub(crate) fn run<T: Send + Sync>(
        &self,
        exec: &Exec,
        x: &[T],
        out: &mut [T],
        work: usize,
        f: &RowFn<'_, K, T>,
    ) {
        let total = out.len();
        exec.rows(out, self.out_row, work, &|r0, o| {
            let n = o.len() / self.out_row.max(1);
            if o.len() == total {
                return f(&self.full, x, o, r0..r0 + n);
            }
            match self.parts.iter().find(|p| p.first_row == r0 && p.rows == n) {
                Some(p) => {
                    let xs = &x[p.input_rows.start * self.in_row..p.input_rows.end * self.in_row];
                    f(&p.kernel, xs, o, 0..n)
                }
                // The blocks above are exactly those `Exec::rows` makes for this thread count.
                None => unreachable!("row block {r0}+{n} of {} not prepared", self.rows),
            }
        });
    }
}
