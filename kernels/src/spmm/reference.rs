//! Portable sparse kernels (`generic::spmm_*`): straight loops over the packed layouts, NHWC in
//! and out, no scratch. Always present; the floor of the dispatch.

use super::{PackedF32, PackedI8, SpmmF32Kernel, SpmmI8Kernel};
use crate::isa::Isa;
use crate::requant::Requant;

pub(super) static SPMM_F32_1X1: SpmmF32Kernel = SpmmF32Kernel {
    name: "generic::spmm_f32_1x1",
    isa: Isa::Scalar,
    tile: 0,
    kc: 0,
    run: spmm_f32,
};
pub(super) static SPMM_F32_4X1: SpmmF32Kernel = SpmmF32Kernel {
    name: "generic::spmm_f32_1x4",
    isa: Isa::Scalar,
    tile: 0,
    kc: 0,
    run: spmm_f32,
};
pub(super) static SPMM_I8_1X4: SpmmI8Kernel = SpmmI8Kernel {
    name: "generic::spmm_qs8_1x1c4",
    isa: Isa::Scalar,
    tile: 0,
    unsigned: false,
    run: spmm_i8,
};
pub(super) static SPMM_I8_16X4: SpmmI8Kernel = SpmmI8Kernel {
    name: "generic::spmm_qs8_1x16c4",
    isa: Isa::Scalar,
    tile: 0,
    unsigned: false,
    run: spmm_i8,
};

/// `generic::spmm_f32`: any group size.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn spmm_f32(
    p: &PackedF32,
    a: &[f32],
    a_stride: usize,
    m: usize,
    out: &mut [f32],
    out_stride: usize,
    lo: f32,
    hi: f32,
    _scratch: &mut [f32],
) {
    let g = p.layout.rows();
    let mut acc = [0.0f32; 4];
    for row in 0..m {
        let x = &a[row * a_stride..][..p.k];
        let y = &mut out[row * out_stride..][..p.n];
        for grp in 0..p.group_ptr.len() - 1 {
            let acc = &mut acc[..g];
            acc.copy_from_slice(&p.bias[grp * g..][..g]);
            for e in p.group_ptr[grp] as usize..p.group_ptr[grp + 1] as usize {
                let xv = x[p.kidx[e] as usize];
                for (r, acc) in acc.iter_mut().enumerate() {
                    *acc += p.vals[e * g + r] * xv;
                }
            }
            for (r, &v) in acc.iter().enumerate() {
                if let Some(y) = y.get_mut(grp * g + r) {
                    *y = v.max(lo).min(hi);
                }
            }
        }
    }
}

/// `generic::spmm_i8`: any block height, 4 input channels per block, signed products.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn spmm_i8(
    p: &PackedI8,
    a: &[i8],
    a_stride: usize,
    m: usize,
    out: &mut [i8],
    out_stride: usize,
    rq: &Requant,
    _scratch: &mut [u32],
) {
    let r = p.layout.rows();
    let mut acc = [0i32; 16];
    for row in 0..m {
        let x = &a[row * a_stride..][..p.k];
        let y = &mut out[row * out_stride..][..p.n];
        for g in 0..p.block_ptr.len() - 1 {
            let acc = &mut acc[..r];
            acc.fill(0);
            for b in p.block_ptr[g] as usize..p.block_ptr[g + 1] as usize {
                let k0 = p.k4[b] as usize * 4;
                for (rr, acc) in acc.iter_mut().enumerate() {
                    let w = p.w[b * r + rr].to_le_bytes();
                    for (j, &wj) in w.iter().enumerate() {
                        // Past K the weights are zero: skip the missing activations.
                        if let Some(&xv) = x.get(k0 + j) {
                            let xv = (xv as u8 ^ p.xor) as i8;
                            *acc = acc.wrapping_add(wj as i8 as i32 * xv as i32);
                        }
                    }
                }
            }
            for (rr, &v) in acc.iter().enumerate() {
                let ch = g * r + rr;
                if let Some(y) = y.get_mut(ch) {
                    *y = rq.apply(v.wrapping_add(p.c[ch]), ch) as i8;
                }
            }
        }
    }
}
