//! NEON + dotprod int8 sparse kernels (`aarch64::dotprod::spmm_*`): `sdot` through `asm!`
//! (the dotprod intrinsics are unstable on stable Rust), signed activations (`^ xor`: uint8 inputs are shifted to int8).
//!
//! - `spmm_qs8_16x1c4`: 1×4 blocks, 16-pixel tiles packed `[K/4][16][4]`; one block = the 4
//!   weights duplicated in a register, one `sdot` per 4 pixels.
//! - `spmm_qs8_1x16c4`: 16×4 blocks, lanes over 16 output channels; one block = 4 weight
//!   registers, the pixel's 4 activations duplicated, 4 `sdot`s.
//!
//! Requantization uses the normative scalar `Requant::apply` per output. Plugged only when
//! [`Isa::Dotprod`] is enabled; packing refuses a kernel whose tier is not enabled.

use super::{PackedI8, SpmmI8Kernel};
use crate::isa::Isa;
use crate::requant::Requant;
use std::arch::aarch64::*;
use std::arch::asm;

const TILE: usize = 16;

pub(super) static SPMM_I8_1X4: SpmmI8Kernel = SpmmI8Kernel {
    name: "dotprod::spmm_qs8_16x1c4",
    isa: Isa::Dotprod,
    tile: TILE,
    unsigned: false,
    run: i8_1x4_entry,
};

pub(super) static SPMM_I8_16X4: SpmmI8Kernel = SpmmI8Kernel {
    name: "dotprod::spmm_qs8_1x16c4",
    isa: Isa::Dotprod,
    tile: 1,
    unsigned: false,
    run: i8_16x4_entry,
};

/// `acc += sdot(x, w)` per 32-bit lane.
///
/// # Safety
/// NEON + dotprod.
#[target_feature(enable = "neon,dotprod")]
#[inline]
unsafe fn sdot(acc: int32x4_t, x: int8x16_t, w: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: register-only instruction of an enabled feature.
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {x:v}.16b, {w:v}.16b",
            acc = inout(vreg) acc,
            x = in(vreg) x,
            w = in(vreg) w,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}

/// The activation word `q` (bytes 4q..4q + 4 `^ xor`, zero past `k`) of a row.
#[inline(always)]
fn word(row: &[i8], q: usize, xor: u8) -> i32 {
    let mut b = [0u8; 4];
    for (j, b) in b.iter_mut().enumerate() {
        *b = row.get(4 * q + j).map_or(0, |&v| v as u8 ^ xor);
    }
    i32::from_le_bytes(b)
}

#[allow(clippy::too_many_arguments)]
fn i8_1x4_entry(
    p: &PackedI8,
    a: &[i8],
    a_stride: usize,
    m: usize,
    out: &mut [i8],
    out_stride: usize,
    rq: &Requant,
    scratch: &mut [u32],
) {
    // SAFETY: plugged (and packable) only when dotprod is enabled.
    unsafe { i8_1x4(p, a, a_stride, m, out, out_stride, rq, scratch) }
}

/// # Safety
/// NEON + dotprod; `scratch` holds `p.scratch_len()` words (checked by `run`).
#[target_feature(enable = "neon,dotprod")]
#[allow(clippy::too_many_arguments)]
unsafe fn i8_1x4(
    p: &PackedI8,
    a: &[i8],
    a_stride: usize,
    m: usize,
    out: &mut [i8],
    out_stride: usize,
    rq: &Requant,
    scratch: &mut [u32],
) {
    const P: usize = TILE;
    let (k, n) = (p.k, p.n);
    let k4n = k.div_ceil(4);
    let (ap, cb) = scratch.split_at_mut(P * k4n);
    let cb: &mut [u8] = bytemuck::cast_slice_mut(cb);
    let mut m0 = 0;
    while m0 < m {
        let pt = (m - m0).min(P);
        for r in 0..pt {
            let row = &a[(m0 + r) * a_stride..][..k];
            for q in 0..k4n {
                ap[q * P + r] = word(row, q, p.xor) as u32;
            }
        }
        for ch in 0..n {
            let (s, e) = (p.block_ptr[ch] as usize, p.block_ptr[ch + 1] as usize);
            let mut acc = [vdupq_n_s32(0); 4];
            for i in s..e {
                let x: &[u32; P] = ap[p.k4[i] as usize * P..][..P].try_into().unwrap();
                let w = vreinterpretq_s8_s32(vdupq_n_s32(p.w[i]));
                for (v, acc) in acc.iter_mut().enumerate() {
                    // SAFETY: 4 words = 16 bytes within `x`.
                    let xv = unsafe { vld1q_s8(x.as_ptr().add(4 * v) as *const i8) };
                    // SAFETY: dotprod is enabled in this function.
                    *acc = unsafe { sdot(*acc, xv, w) };
                }
            }
            let mut sums = [0i32; P];
            for (v, &acc) in acc.iter().enumerate() {
                // SAFETY: 4 lanes into sums[4v..4v + 4].
                unsafe { vst1q_s32(sums.as_mut_ptr().add(4 * v), acc) };
            }
            let c = p.c[ch];
            for (j, &s) in sums.iter().enumerate().take(pt) {
                cb[ch * P + j] = rq.apply(s.wrapping_add(c), ch) as i8 as u8;
            }
        }
        for r in 0..pt {
            let row = &mut out[(m0 + r) * out_stride..][..n];
            for (ch, y) in row.iter_mut().enumerate() {
                *y = cb[ch * P + r] as i8;
            }
        }
        m0 += P;
    }
}

#[allow(clippy::too_many_arguments)]
fn i8_16x4_entry(
    p: &PackedI8,
    a: &[i8],
    a_stride: usize,
    m: usize,
    out: &mut [i8],
    out_stride: usize,
    rq: &Requant,
    scratch: &mut [u32],
) {
    // SAFETY: plugged (and packable) only when dotprod is enabled.
    unsafe { i8_16x4(p, a, a_stride, m, out, out_stride, rq, scratch) }
}

/// # Safety
/// NEON + dotprod; `scratch` holds at least K/4 words (checked by `run`).
#[target_feature(enable = "neon,dotprod")]
#[allow(clippy::too_many_arguments)]
unsafe fn i8_16x4(
    p: &PackedI8,
    a: &[i8],
    a_stride: usize,
    m: usize,
    out: &mut [i8],
    out_stride: usize,
    rq: &Requant,
    scratch: &mut [u32],
) {
    let (k, n) = (p.k, p.n);
    let k4n = k.div_ceil(4);
    let row_w = &mut scratch[..k4n];
    let nb = p.block_ptr.len() - 1;
    for r in 0..m {
        let row = &a[r * a_stride..][..k];
        for (q, w) in row_w.iter_mut().enumerate() {
            *w = word(row, q, p.xor) as u32;
        }
        let y = &mut out[r * out_stride..][..n];
        for g in 0..nb {
            let (s, e) = (p.block_ptr[g] as usize, p.block_ptr[g + 1] as usize);
            let mut acc = [vdupq_n_s32(0); 4];
            for b in s..e {
                let x = vreinterpretq_s8_s32(vdupq_n_s32(row_w[p.k4[b] as usize] as i32));
                let w: &[i32; 16] = p.w[b * 16..][..16].try_into().unwrap();
                for (v, acc) in acc.iter_mut().enumerate() {
                    // SAFETY: 4 words = 16 bytes within `w`; dotprod enabled here.
                    unsafe {
                        let wv = vld1q_s8(w.as_ptr().add(4 * v) as *const i8);
                        *acc = sdot(*acc, wv, x);
                    }
                }
            }
            let mut sums = [0i32; 16];
            for (v, &acc) in acc.iter().enumerate() {
                // SAFETY: 4 lanes into sums[4v..4v + 4].
                unsafe { vst1q_s32(sums.as_mut_ptr().add(4 * v), acc) };
            }
            for (i, &s) in sums.iter().enumerate() {
                let ch = g * 16 + i;
                if ch < n {
                    y[ch] = rq.apply(s.wrapping_add(p.c[ch]), ch) as i8;
                }
            }
        }
    }
}
