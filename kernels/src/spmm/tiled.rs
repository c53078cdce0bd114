//! Tiled sparse kernels written once in plain Rust over fixed-size arrays, so that the compiler
//! vectorizes them for the target features of the function that inlines them (the AVX2 and NEON
//! entry points in `arch/`). Same layouts as the AVX-512 kernels: activations of a tile of `P`
//! pixels transposed to `[K][P]` (f32) or `[K/4][P][4]` (int8), lanes over pixels, then the tile
//! is written back to NHWC.

use super::{PackedF32, PackedI8};
use crate::requant::Requant;

/// f32 CSR / 4×1 kernel with tiles of `P` pixels. `scratch` holds `[K][P]` activations and
/// `[N'][P]` outputs (`PackedF32::scratch_len` with `tile = P`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn f32_tiled<const P: usize>(
    pk: &PackedF32,
    a: &[f32],
    a_stride: usize,
    m: usize,
    out: &mut [f32],
    out_stride: usize,
    lo: f32,
    hi: f32,
    scratch: &mut [f32],
) {
    let (k, n) = (pk.k, pk.n);
    let g = pk.layout.rows();
    let (ap, cb) = scratch.split_at_mut(P * k);
    let ngroups = pk.group_ptr.len() - 1;
    let mut m0 = 0;
    while m0 < m {
        let pt = (m - m0).min(P);
        for r in 0..P {
            if r < pt {
                let row = &a[(m0 + r) * a_stride..][..k];
                for (c, &v) in row.iter().enumerate() {
                    ap[c * P + r] = v;
                }
            } else {
                for c in 0..k {
                    ap[c * P + r] = 0.0;
                }
            }
        }
        for grp in 0..ngroups {
            let (s, e) = (pk.group_ptr[grp] as usize, pk.group_ptr[grp + 1] as usize);
            if g == 1 {
                let mut acc = [pk.bias[grp]; P];
                for i in s..e {
                    let w = pk.vals[i];
                    let x: &[f32; P] = ap[pk.kidx[i] as usize * P..][..P].try_into().unwrap();
                    for j in 0..P {
                        acc[j] = w.mul_add(x[j], acc[j]);
                    }
                }
                let o: &mut [f32; P] = (&mut cb[grp * P..][..P]).try_into().unwrap();
                for j in 0..P {
                    o[j] = acc[j].max(lo).min(hi);
                }
            } else {
                let mut acc = [[0.0f32; P]; 4];
                for (r, acc) in acc.iter_mut().enumerate() {
                    *acc = [pk.bias[grp * 4 + r]; P];
                }
                for i in s..e {
                    let x: &[f32; P] = ap[pk.kidx[i] as usize * P..][..P].try_into().unwrap();
                    let w: &[f32; 4] = pk.vals[i * 4..][..4].try_into().unwrap();
                    for r in 0..4 {
                        for j in 0..P {
                            acc[r][j] = w[r].mul_add(x[j], acc[r][j]);
                        }
                    }
                }
                for (r, acc) in acc.iter().enumerate() {
                    let o: &mut [f32; P] = (&mut cb[(grp * 4 + r) * P..][..P]).try_into().unwrap();
                    for j in 0..P {
                        o[j] = acc[j].max(lo).min(hi);
                    }
                }
            }
        }
        for r in 0..pt {
            let row = &mut out[(m0 + r) * out_stride..][..n];
            for (ch, y) in row.iter_mut().enumerate() {
                *y = cb[ch * P + r];
            }
        }
        m0 += P;
    }
}

/// int8 1×4 kernel with tiles of `P` pixels, signed products (activations `^ pk.xor`). `scratch`
/// holds `[K/4][P]` words of activations and `[N][P]` output bytes (`PackedI8::scratch_len`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn i8_tiled<const P: usize>(
    pk: &PackedI8,
    a: &[i8],
    a_stride: usize,
    m: usize,
    out: &mut [i8],
    out_stride: usize,
    rq: &Requant,
    scratch: &mut [u32],
) {
    let (k, n) = (pk.k, pk.n);
    let k4n = k.div_ceil(4);
    let (ap, cb) = scratch.split_at_mut(P * k4n);
    let cb: &mut [u8] = bytemuck::cast_slice_mut(cb);
    let ap: &mut [[i8; 4]] = bytemuck::cast_slice_mut(ap);
    let mut m0 = 0;
    while m0 < m {
        let pt = (m - m0).min(P);
        for r in 0..pt {
            let row = &a[(m0 + r) * a_stride..][..k];
            for q in 0..k4n {
                let mut b = [0i8; 4];
                for (j, b) in b.iter_mut().enumerate() {
                    *b = row.get(4 * q + j).map_or(0, |&v| (v as u8 ^ pk.xor) as i8);
                }
                ap[q * P + r] = b;
            }
        }
        for ch in 0..n {
            let (s, e) = (pk.block_ptr[ch] as usize, pk.block_ptr[ch + 1] as usize);
            let mut acc = [0i32; P];
            for i in s..e {
                let w = pk.w[i].to_le_bytes().map(|b| b as i8 as i32);
                let x: &[[i8; 4]; P] = ap[pk.k4[i] as usize * P..][..P].try_into().unwrap();
                for j in 0..P {
                    let d = x[j][0] as i32 * w[0]
                        + x[j][1] as i32 * w[1]
                        + x[j][2] as i32 * w[2]
                        + x[j][3] as i32 * w[3];
                    acc[j] = acc[j].wrapping_add(d);
                }
            }
            let c = pk.c[ch];
            let o = &mut cb[ch * P..][..P];
            for j in 0..pt {
                o[j] = rq.apply(acc[j].wrapping_add(c), ch) as i8 as u8;
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
