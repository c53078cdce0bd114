//! numpy/TFLite broadcasting of two operands up to 6-D, resolved once into a plan.
//!
//! The plan drops size-1 output dimensions and merges neighbouring dimensions in which both
//! operands broadcast the same way, so same-shape operands become one contiguous run, a
//! per-channel operand becomes runs of `C`, and a scalar becomes a run with stride 0. Kernels then
//! only see contiguous runs with operand steps of 0 or 1.

use super::ParamError;

/// The largest rank the element-wise kernels accept (TFLite's `BroadcastXxx6DSlow` limit).
pub const MAX_RANK: usize = 6;

/// Two operand shapes broadcast against each other, with the output shape and flat strides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BroadcastPlan {
    out_shape: [usize; MAX_RANK],
    out_rank: usize,
    len: usize,
    /// Collapsed dimensions (outer first) and each operand's stride in elements (0: broadcast).
    dims: [usize; MAX_RANK],
    a_strides: [usize; MAX_RANK],
    b_strides: [usize; MAX_RANK],
    rank: usize,
    a_len: usize,
    b_len: usize,
}

fn product(op: &'static str, shape: &[usize]) -> Result<usize, ParamError> {
    shape.iter().try_fold(1usize, |acc, &d| {
        acc.checked_mul(d).ok_or_else(|| ParamError::Shape {
            op,
            detail: format!("element count of {shape:?} overflows"),
        })
    })
}

impl BroadcastPlan {
    /// Plans `a ∘ b` with numpy broadcasting (shapes right-aligned; each dimension pair equal
    /// or one of them 1). `op` names the operation in errors.
    pub fn new(op: &'static str, a: &[usize], b: &[usize]) -> Result<Self, ParamError> {
        for (what, s) in [("input 0", a), ("input 1", b)] {
            if s.len() > MAX_RANK {
                return Err(ParamError::Rank {
                    op,
                    what,
                    rank: s.len(),
                    max: MAX_RANK,
                });
            }
        }
        let a_len = product(op, a)?;
        let b_len = product(op, b)?;
        let rank = a.len().max(b.len());
        let mut out_shape = [1usize; MAX_RANK];
        let mut pat = [(false, false); MAX_RANK];
        for i in 0..rank {
            let da = if i + a.len() >= rank {
                a[i + a.len() - rank]
            } else {
                1
            };
            let db = if i + b.len() >= rank {
                b[i + b.len() - rank]
            } else {
                1
            };
            let d = if da == db || db == 1 {
                da
            } else if da == 1 {
                db
            } else {
                return Err(ParamError::Shape {
                    op,
                    detail: format!("shapes {a:?} and {b:?} do not broadcast (dimension {i})"),
                });
            };
            out_shape[i] = d;
            pat[i] = (da != d, db != d);
        }
        let len = product(op, &out_shape[..rank])?;
        // Collapse: drop size-1 output dims, merge neighbours with the same pattern.
        let mut dims = [1usize; MAX_RANK];
        let mut pats = [(false, false); MAX_RANK];
        let mut n = 0;
        for i in 0..rank {
            let d = out_shape[i];
            if d == 1 {
                continue;
            }
            if n > 0 && pats[n - 1] == pat[i] {
                dims[n - 1] *= d;
            } else {
                dims[n] = d;
                pats[n] = pat[i];
                n += 1;
            }
        }
        if n == 0 {
            n = 1;
        }
        let mut a_strides = [0usize; MAX_RANK];
        let mut b_strides = [0usize; MAX_RANK];
        let (mut sa, mut sb) = (1usize, 1usize);
        for k in (0..n).rev() {
            if !pats[k].0 {
                a_strides[k] = sa;
                sa *= dims[k];
            }
            if !pats[k].1 {
                b_strides[k] = sb;
                sb *= dims[k];
            }
        }
        Ok(BroadcastPlan {
            out_shape,
            out_rank: rank,
            len,
            dims,
            a_strides,
            b_strides,
            rank: n,
            a_len,
            b_len,
        })
    }

    /// `Some((b_is_vector, len))` when one operand is a vector of `len` values repeated along
    /// the output's last dimension and the other has the output's shape (a per-channel
    /// scale or bias over an NHWC tensor): output element `i` pairs the full operand's element
    /// `i` with the vector's element `i % len`.
    pub fn channel_vector(&self) -> Option<(bool, usize)> {
        if self.rank != 2 {
            return None;
        }
        let l = self.dims[1];
        let full = [l, 1];
        let vector = [0, 1];
        if self.a_strides[..2] == full && self.b_strides[..2] == vector {
            Some((true, l))
        } else if self.a_strides[..2] == vector && self.b_strides[..2] == full {
            Some((false, l))
        } else {
            None
        }
    }

    /// The broadcast output shape.
    pub fn out_shape(&self) -> &[usize] {
        &self.out_shape[..self.out_rank]
    }

    /// Number of output elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the output has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of elements of operand `a` / `b` the plan was made for.
    pub fn operand_lens(&self) -> (usize, usize) {
        (self.a_len, self.b_len)
    }

    /// True when no broadcasting happens (both operands have the output's element order).
    pub fn is_elementwise(&self) -> bool {
        self.rank == 1 && self.a_strides[0] == 1 && self.b_strides[0] == 1
    }

    /// Calls `f(a_offset, a_step, b_offset, b_step, out_offset, n)` for each contiguous run of
    /// output elements in `start..end`; `out_offset` is relative to `start`, steps are 0 or 1.
    #[inline(always)]
    pub fn for_each_run(
        &self,
        start: usize,
        end: usize,
        mut f: impl FnMut(usize, usize, usize, usize, usize, usize),
    ) {
        let end = end.min(self.len);
        if start >= end {
            return;
        }
        let r = self.rank;
        let inner = self.dims[r - 1];
        let (sa, sb) = (self.a_strides[r - 1], self.b_strides[r - 1]);
        let mut idx = [0usize; MAX_RANK];
        let mut outer = start / inner;
        let mut pos = start % inner;
        for k in (0..r - 1).rev() {
            idx[k] = outer % self.dims[k];
            outer /= self.dims[k];
        }
        let mut cur = start;
        while cur < end {
            let (mut ao, mut bo) = (pos * sa, pos * sb);
            for (k, &i) in idx[..r - 1].iter().enumerate() {
                ao += i * self.a_strides[k];
                bo += i * self.b_strides[k];
            }
            let n = (inner - pos).min(end - cur);
            f(ao, sa, bo, sb, cur - start, n);
            cur += n;
            pos = 0;
            for k in (0..r - 1).rev() {
                idx[k] += 1;
                if idx[k] < self.dims[k] {
                    break;
                }
                idx[k] = 0;
            }
        }
    }
}

/// Applies `op` over one run (see [`BroadcastPlan::for_each_run`]); specialised per step pattern
/// so the common loops are plain zips the compiler vectorises.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn apply_run<T: Copy, U: Copy>(
    a: &[T],
    ao: usize,
    sa: usize,
    b: &[T],
    bo: usize,
    sb: usize,
    out: &mut [U],
    op: impl Fn(T, T) -> U,
) {
    let n = out.len();
    match (sa != 0, sb != 0) {
        (true, true) => {
            for ((o, &x), &y) in out.iter_mut().zip(&a[ao..ao + n]).zip(&b[bo..bo + n]) {
                *o = op(x, y);
            }
        }
        (true, false) => {
            let y = b[bo];
            for (o, &x) in out.iter_mut().zip(&a[ao..ao + n]) {
                *o = op(x, y);
            }
        }
        (false, true) => {
            let x = a[ao];
            for (o, &y) in out.iter_mut().zip(&b[bo..bo + n]) {
                *o = op(x, y);
            }
        }
        (false, false) => out.fill(op(a[ao], b[bo])),
    }
}

/// Reference index arithmetic (no collapsing): the flat offsets of output element `i` in `a` and
/// `b`. Used by tests and as the obviously-correct definition of the plan.
pub fn reference_offsets(a: &[usize], b: &[usize], i: usize) -> (usize, usize) {
    let rank = a.len().max(b.len());
    let dim = |s: &[usize], k: usize| {
        if k + s.len() >= rank {
            s[k + s.len() - rank]
        } else {
            1
        }
    };
    let out: Vec<usize> = (0..rank).map(|k| dim(a, k).max(dim(b, k))).collect();
    let mut rem = i;
    let mut idx = vec![0; rank];
    for k in (0..rank).rev() {
        idx[k] = rem % out[k].max(1);
        rem /= out[k].max(1);
    }
    let off = |s: &[usize]| {
        let mut o = 0;
        for (k, &i) in idx.iter().enumerate() {
            let d = dim(s, k);
            o = o * d + if d == 1 { 0 } else { i };
        }
        o
    };
    (off(a), off(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(a: &[usize], b: &[usize]) {
        let plan = BroadcastPlan::new("TEST", a, b).unwrap();
        let len = plan.len();
        for (start, end) in [
            (0, len),
            (len / 3, len),
            (1.min(len), len.saturating_sub(1)),
        ] {
            let mut seen = vec![(usize::MAX, usize::MAX); end.saturating_sub(start)];
            plan.for_each_run(start, end, |ao, sa, bo, sb, o, n| {
                for j in 0..n {
                    seen[o + j] = (ao + j * sa, bo + j * sb);
                }
            });
            for (k, s) in seen.iter().enumerate() {
                assert_eq!(
                    *s,
                    reference_offsets(a, b, start + k),
                    "{a:?} ∘ {b:?}: element {} of range {start}..{end}",
                    start + k
                );
            }
        }
    }

    #[test]
    fn plans_match_reference_offsets() {
        let cases: &[(&[usize], &[usize])] = &[
            (&[2, 3, 4], &[2, 3, 4]),
            (&[2, 3, 4], &[]),
            (&[], &[5]),
            (&[1], &[1]),
            (&[2, 3, 4], &[4]),
            (&[2, 3, 4], &[3, 1]),
            (&[4, 1], &[1, 5]),
            (&[1, 7, 1, 3], &[2, 1, 5, 1]),
            (&[2, 1, 3, 1, 2, 2], &[1, 4, 1, 3, 2, 1]),
            (&[1, 1, 1, 8], &[1, 6, 6, 1]),
            (&[3, 0, 2], &[1, 2]),
            (&[5, 1, 1], &[1, 1, 1]),
        ];
        for (a, b) in cases {
            check(a, b);
            check(b, a);
        }
    }

    #[test]
    fn rejects_bad_shapes() {
        assert!(BroadcastPlan::new("ADD", &[2, 3], &[4]).is_err());
        assert!(BroadcastPlan::new("ADD", &[1; 7], &[1]).is_err());
        assert!(BroadcastPlan::new("ADD", &[usize::MAX, 2], &[1]).is_err());
        let p = BroadcastPlan::new("ADD", &[2, 3], &[3]).unwrap();
        assert_eq!(p.out_shape(), &[2, 3]);
        assert!(BroadcastPlan::new("ADD", &[2, 3], &[2, 3])
            .unwrap()
            .is_elementwise());
    }
}
