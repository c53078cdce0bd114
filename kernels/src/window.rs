//! Sliding-window geometry shared by convolution, depthwise convolution and pooling (NHWC).
//!
//! Output sizes and padding follow TFLite's arithmetic exactly (`ComputeOutSize`,
//! `ComputePaddingWithOffset`): with SAME padding the output is `ceil(in / stride)` and the
//! padding before is half the total, rounded down (the odd element goes after); with VALID the
//! output is `(in - effective_kernel + stride) / stride` and there is no padding.
//! Building a [`Window2d`] validates every size once (non-zero, no overflow), so the kernels can
//! index without further checks.

use std::fmt;

/// TFLite's padding schemes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Padding {
    /// Output `ceil(in / stride)`; the window is centred, extra padding goes after.
    Same,
    /// No padding: only windows that fit entirely inside the input.
    Valid,
}

/// A window geometry that cannot be used; names the field and the values involved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WindowError {
    /// A size, stride or dilation that must be at least 1 is 0.
    Zero {
        /// The field, e.g. `"stride_h"`.
        field: &'static str,
    },
    /// A product of sizes does not fit in `usize` (or in `i32` where TFLite computes in `i32`).
    Overflow {
        /// What was being computed.
        what: &'static str,
    },
    /// VALID padding with a (dilated) kernel larger than the input gives no output.
    EmptyOutput {
        /// `"height"` or `"width"`.
        axis: &'static str,
        /// The input extent on that axis.
        input: usize,
        /// `(kernel - 1) * dilation + 1`.
        effective_kernel: usize,
    },
    /// An explicitly given output size does not match the one the geometry implies.
    OutputMismatch {
        /// `"height"` or `"width"`.
        axis: &'static str,
        /// What the geometry implies.
        expected: usize,
        /// What was given.
        found: usize,
    },
}

impl fmt::Display for WindowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WindowError::Zero { field } => write!(f, "{field} must be at least 1, found 0"),
            WindowError::Overflow { what } => write!(f, "{what} overflows"),
            WindowError::EmptyOutput {
                axis,
                input,
                effective_kernel,
            } => write!(
                f,
                "VALID padding: effective kernel {axis} {effective_kernel} exceeds input {axis} \
                 {input}, the output would be empty"
            ),
            WindowError::OutputMismatch {
                axis,
                expected,
                found,
            } => {
                write!(
                    f,
                    "output {axis} {found} does not match the expected {expected}"
                )
            }
        }
    }
}

impl std::error::Error for WindowError {}

/// One spatial axis of a sliding window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Axis {
    /// Input extent.
    pub input: usize,
    /// Output extent.
    pub output: usize,
    /// Kernel extent (undilated).
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Dilation (1 = dense).
    pub dilation: usize,
    /// Padding before the first input element (TFLite's `padding_values.height/width`).
    pub pad_before: usize,
}

impl Axis {
    /// TFLite's output size and padding for one axis.
    pub fn new(
        name: &'static str,
        padding: Padding,
        input: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
    ) -> Result<Axis, WindowError> {
        let (f_in, f_k, f_s, f_d) = match name {
            "height" => (
                "input height",
                "kernel height",
                "stride height",
                "dilation height",
            ),
            _ => (
                "input width",
                "kernel width",
                "stride width",
                "dilation width",
            ),
        };
        for (v, field) in [(input, f_in), (kernel, f_k), (stride, f_s), (dilation, f_d)] {
            if v == 0 {
                return Err(WindowError::Zero { field });
            }
            if v > i32::MAX as usize {
                return Err(WindowError::Overflow { what: field });
            }
        }
        let effective = (kernel - 1)
            .checked_mul(dilation)
            .and_then(|v| v.checked_add(1))
            .filter(|&v| v <= i32::MAX as usize)
            .ok_or(WindowError::Overflow {
                what: "effective kernel size",
            })?;
        let output = match padding {
            Padding::Same => input.div_ceil(stride),
            Padding::Valid => {
                if effective > input {
                    return Err(WindowError::EmptyOutput {
                        axis: name,
                        input,
                        effective_kernel: effective,
                    });
                }
                (input - effective) / stride + 1
            }
        };
        // total = (out - 1) * stride + effective - in, clamped at 0; before = total / 2.
        let covered = (output - 1)
            .checked_mul(stride)
            .and_then(|v| v.checked_add(effective))
            .ok_or(WindowError::Overflow {
                what: "padded extent",
            })?;
        let pad_before = covered.saturating_sub(input) / 2;
        Ok(Axis {
            input,
            output,
            kernel,
            stride,
            dilation,
            pad_before,
        })
    }

    /// The effective (dilated) kernel extent.
    pub fn effective_kernel(&self) -> usize {
        (self.kernel - 1) * self.dilation + 1
    }

    /// The input coordinate of kernel tap `k` for output `o`, or `None` when it falls in padding.
    #[inline(always)]
    pub fn input_of(&self, o: usize, k: usize) -> Option<usize> {
        let pos = (o * self.stride + k * self.dilation).wrapping_sub(self.pad_before);
        (pos < self.input).then_some(pos)
    }

    /// The outputs `lo..hi` whose every kernel tap lies inside the input (no padding involved).
    pub fn interior(&self) -> (usize, usize) {
        let lo = self.pad_before.div_ceil(self.stride).min(self.output);
        let reach = (self.kernel - 1) * self.dilation;
        let hi = if self.input + self.pad_before > reach {
            ((self.input - 1 + self.pad_before - reach) / self.stride + 1).min(self.output)
        } else {
            0
        };
        (lo, hi.max(lo))
    }

    /// The range of kernel taps `k` (dilation 1 assumed by callers that use it as a range) whose
    /// input coordinate lies inside the input for output `o`: TFLite pooling's
    /// `filter_start..filter_end`.
    #[inline(always)]
    pub fn taps_inside(&self, o: usize) -> (usize, usize) {
        let origin = (o * self.stride) as isize - self.pad_before as isize;
        let start = (-origin).max(0) as usize;
        let end = (self.input as isize - origin).clamp(0, self.kernel as isize) as usize;
        (start.min(end), end)
    }
}

/// A 2-D sliding window over an NHWC tensor: batch, both spatial axes, and channel counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window2d {
    /// Batch size.
    pub batch: usize,
    /// Height axis.
    pub h: Axis,
    /// Width axis.
    pub w: Axis,
    /// Input channels.
    pub in_c: usize,
    /// Output channels.
    pub out_c: usize,
}

/// The parameters of a [`Window2d`] before validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowSpec {
    /// Batch size.
    pub batch: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Input channels.
    pub in_c: usize,
    /// Output channels.
    pub out_c: usize,
    /// Kernel height.
    pub k_h: usize,
    /// Kernel width.
    pub k_w: usize,
    /// Stride height.
    pub stride_h: usize,
    /// Stride width.
    pub stride_w: usize,
    /// Dilation height.
    pub dilation_h: usize,
    /// Dilation width.
    pub dilation_w: usize,
    /// Padding scheme.
    pub padding: Padding,
}

impl WindowSpec {
    /// A spec with stride 1, dilation 1 and VALID padding; set the rest with the fields.
    pub fn new(batch: usize, in_h: usize, in_w: usize, in_c: usize, out_c: usize) -> WindowSpec {
        WindowSpec {
            batch,
            in_h,
            in_w,
            in_c,
            out_c,
            k_h: 1,
            k_w: 1,
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            padding: Padding::Valid,
        }
    }
}

impl Window2d {
    /// Validates `spec` and computes output sizes and padding as TFLite does.
    pub fn new(spec: WindowSpec) -> Result<Window2d, WindowError> {
        if spec.batch == 0 {
            return Err(WindowError::Zero { field: "batch" });
        }
        if spec.in_c == 0 {
            return Err(WindowError::Zero {
                field: "input channels",
            });
        }
        if spec.out_c == 0 {
            return Err(WindowError::Zero {
                field: "output channels",
            });
        }
        let h = Axis::new(
            "height",
            spec.padding,
            spec.in_h,
            spec.k_h,
            spec.stride_h,
            spec.dilation_h,
        )?;
        let w = Axis::new(
            "width",
            spec.padding,
            spec.in_w,
            spec.k_w,
            spec.stride_w,
            spec.dilation_w,
        )?;
        let win = Window2d {
            batch: spec.batch,
            h,
            w,
            in_c: spec.in_c,
            out_c: spec.out_c,
        };
        // Every element count must fit in usize and in i32 (TFLite's index type).
        let fits = |dims: &[usize]| {
            dims.iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .filter(|&n| n <= i32::MAX as usize)
                .is_some()
        };
        if !fits(&[spec.batch, h.input, w.input, spec.in_c]) {
            return Err(WindowError::Overflow {
                what: "input element count",
            });
        }
        if !fits(&[spec.batch, h.output, w.output, spec.out_c]) {
            return Err(WindowError::Overflow {
                what: "output element count",
            });
        }
        if !fits(&[h.kernel, w.kernel, spec.in_c, spec.out_c]) {
            return Err(WindowError::Overflow {
                what: "weight element count",
            });
        }
        Ok(win)
    }

    /// Checks that the output sizes are the given ones (e.g. the model's stated output shape).
    pub fn expect_output(&self, out_h: usize, out_w: usize) -> Result<(), WindowError> {
        if self.h.output != out_h {
            return Err(WindowError::OutputMismatch {
                axis: "height",
                expected: self.h.output,
                found: out_h,
            });
        }
        if self.w.output != out_w {
            return Err(WindowError::OutputMismatch {
                axis: "width",
                expected: self.w.output,
                found: out_w,
            });
        }
        Ok(())
    }

    /// Number of input elements (`batch * in_h * in_w * in_c`).
    pub fn input_len(&self) -> usize {
        self.batch * self.h.input * self.w.input * self.in_c
    }

    /// Number of output elements (`batch * out_h * out_w * out_c`).
    pub fn output_len(&self) -> usize {
        self.batch * self.h.output * self.w.output * self.out_c
    }

    /// Number of output rows (`batch * out_h`), the unit of work splitting for window kernels.
    pub fn output_rows(&self) -> usize {
        self.batch * self.h.output
    }

    /// Number of output pixels (`batch * out_h * out_w`): the GEMM's M for a convolution.
    pub fn output_pixels(&self) -> usize {
        self.batch * self.h.output * self.w.output
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tflite_padding_arithmetic() {
        // SAME, stride 2, kernel 3 on 224: out 112, total pad (111*2+3-224)=1 -> before 0.
        let a = Axis::new("height", Padding::Same, 224, 3, 2, 1).unwrap();
        assert_eq!((a.output, a.pad_before), (112, 0));
        // SAME, stride 1, kernel 3: out = in, pad 1.
        let a = Axis::new("height", Padding::Same, 7, 3, 1, 1).unwrap();
        assert_eq!((a.output, a.pad_before), (7, 1));
        // SAME, kernel larger than input: 1x1 input, kernel 5 -> out 1, total 4, before 2.
        let a = Axis::new("width", Padding::Same, 1, 5, 1, 1).unwrap();
        assert_eq!((a.output, a.pad_before), (1, 2));
        // SAME with dilation 2, kernel 3 (effective 5), stride 1 on 6: total 4 -> before 2.
        let a = Axis::new("width", Padding::Same, 6, 3, 1, 2).unwrap();
        assert_eq!((a.output, a.pad_before), (6, 2));
        // VALID, stride > kernel.
        let a = Axis::new("width", Padding::Valid, 10, 2, 3, 1).unwrap();
        assert_eq!((a.output, a.pad_before), (3, 0));
        // VALID with a kernel larger than the input is an error, not an empty tensor.
        assert!(matches!(
            Axis::new("width", Padding::Valid, 2, 3, 1, 1),
            Err(WindowError::EmptyOutput {
                effective_kernel: 3,
                ..
            })
        ));
        assert_eq!(
            Axis::new("height", Padding::Same, 4, 3, 0, 1),
            Err(WindowError::Zero {
                field: "stride height"
            })
        );
    }

    #[test]
    fn taps_inside_matches_input_of() {
        for padding in [Padding::Same, Padding::Valid] {
            for input in 1..9 {
                for kernel in 1..6 {
                    for stride in 1..4 {
                        let Ok(a) = Axis::new("width", padding, input, kernel, stride, 1) else {
                            continue;
                        };
                        for o in 0..a.output {
                            let (s, e) = a.taps_inside(o);
                            let inside: Vec<usize> = (0..kernel)
                                .filter(|&k| a.input_of(o, k).is_some())
                                .collect();
                            assert_eq!(inside, (s..e).collect::<Vec<_>>(), "{a:?} o={o}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn interior_is_where_every_tap_is_inside() {
        for padding in [Padding::Same, Padding::Valid] {
            for input in 1..10 {
                for kernel in 1..6 {
                    for stride in 1..4 {
                        for dilation in 1..3 {
                            let Ok(a) =
                                Axis::new("width", padding, input, kernel, stride, dilation)
                            else {
                                continue;
                            };
                            let (lo, hi) = a.interior();
                            for o in 0..a.output {
                                let all = (0..kernel).all(|k| a.input_of(o, k).is_some());
                                assert_eq!(all, (lo..hi).contains(&o), "{a:?} o={o}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn overflow_is_an_error() {
        let mut s = WindowSpec::new(1 << 20, 1 << 10, 1 << 10, 8, 8);
        s.padding = Padding::Same;
        assert!(matches!(
            Window2d::new(s),
            Err(WindowError::Overflow { .. })
        ));
    }
}
