//! Helpers shared by the kernel tests: a seeded generator and window-shape cases.
#![allow(clippy::type_complexity)]

use crate::window::{Padding, Window2d, WindowSpec};
use crate::Isa;

/// xorshift64*: deterministic, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % ((hi - lo + 1) as u64)) as i64
    }
    pub fn usize(&mut self, lo: usize, hi: usize) -> usize {
        self.range(lo as i64, hi as i64) as usize
    }
    pub fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
    pub fn vec_f32(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f32()).collect()
    }
    pub fn vec_i8(&mut self, n: usize) -> Vec<i8> {
        (0..n).map(|_| self.range(-128, 127) as i8).collect()
    }
    pub fn vec_u8(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.range(0, 255) as u8).collect()
    }
}

/// The x86 / aarch64 tiers enabled here, scalar first.
pub fn tiers() -> Vec<Isa> {
    [
        Isa::Scalar,
        Isa::Avx2,
        Isa::Avx512Vnni,
        Isa::Neon,
        Isa::Dotprod,
        Isa::I8mm,
    ]
    .into_iter()
    .filter(|i| i.enabled())
    .collect()
}

/// Hand-picked corner cases followed by random ones; `dil` allows dilation > 1.
/// Channels are `in_c`; `out_c` is filled by `out_c(in_c, rng)`.
pub fn window_cases(
    seed: u64,
    random: usize,
    dil: bool,
    mut out_c: impl FnMut(usize, &mut Rng) -> usize,
) -> Vec<Window2d> {
    let mut rng = Rng::new(seed);
    // (batch, in_h, in_w, in_c, k_h, k_w, stride_h, stride_w, dil_h, dil_w, padding)
    let fixed: &[(
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        Padding,
    )] = &[
        (1, 1, 1, 1, 1, 1, 1, 1, 1, 1, Padding::Valid),
        (1, 1, 1, 3, 3, 3, 1, 1, 1, 1, Padding::Same), // kernel larger than a 1x1 input
        (1, 2, 3, 5, 5, 5, 2, 2, 1, 1, Padding::Same),
        (2, 7, 7, 17, 3, 3, 1, 1, 1, 1, Padding::Same),
        (1, 8, 9, 33, 3, 3, 2, 2, 1, 1, Padding::Same),
        (1, 9, 8, 16, 3, 3, 2, 2, 1, 1, Padding::Valid),
        (1, 10, 11, 7, 2, 2, 3, 3, 1, 1, Padding::Valid), // stride > kernel
        (1, 11, 12, 65, 5, 5, 1, 1, 1, 1, Padding::Same),
        (1, 12, 10, 24, 5, 5, 2, 2, 1, 1, Padding::Same),
        (1, 9, 9, 8, 3, 3, 1, 1, 2, 2, Padding::Same),
        (1, 9, 10, 3, 3, 2, 1, 2, 3, 2, Padding::Valid),
        (1, 1, 16, 130, 1, 3, 1, 1, 1, 1, Padding::Same),
        (1, 16, 1, 9, 3, 1, 1, 1, 1, 1, Padding::Same),
        (3, 4, 4, 1, 4, 4, 1, 1, 1, 1, Padding::Valid),
    ];
    let mut out = Vec::new();
    for &(b, h, w, c, kh, kw, sh, sw, dh, dw, p) in fixed {
        if !dil && (dh > 1 || dw > 1) {
            continue;
        }
        let oc = out_c(c, &mut rng);
        let spec = WindowSpec {
            k_h: kh,
            k_w: kw,
            stride_h: sh,
            stride_w: sw,
            dilation_h: dh,
            dilation_w: dw,
            padding: p,
            ..WindowSpec::new(b, h, w, c, oc)
        };
        out.push(Window2d::new(spec).unwrap());
    }
    while out.len() < fixed.len() + random {
        let c = rng.usize(1, 40);
        let oc = out_c(c, &mut rng);
        let spec = WindowSpec {
            k_h: rng.usize(1, 5),
            k_w: rng.usize(1, 5),
            stride_h: rng.usize(1, 3),
            stride_w: rng.usize(1, 3),
            dilation_h: if dil { rng.usize(1, 3) } else { 1 },
            dilation_w: if dil { rng.usize(1, 3) } else { 1 },
            padding: if rng.range(0, 1) == 0 {
                Padding::Same
            } else {
                Padding::Valid
            },
            ..WindowSpec::new(rng.usize(1, 2), rng.usize(1, 12), rng.usize(1, 12), c, oc)
        };
        if let Ok(w) = Window2d::new(spec) {
            out.push(w);
        }
    }
    out
}

/// The first index where two slices differ, for failure messages.
pub fn first_diff<T: PartialEq + Copy>(a: &[T], b: &[T]) -> Option<(usize, T, T)> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .map(|i| (i, a[i], b[i]))
}

/// Asserts two f32 slices agree within `tol` relative to max(1, |expected|).
pub fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs() / w.abs().max(1.0);
        assert!(err <= tol, "{what}: element {i}: got {g}, want {w}");
    }
}
