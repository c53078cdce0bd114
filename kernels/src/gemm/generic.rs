//! Portable micro-kernels: the scalar floor of the dispatch table, present on every target.

use super::{F32Args, F32Kernel, I8Args, I8Kernel};
use crate::isa::Isa;
use crate::requant::multiply_by_quantized_multiplier;

const I8_MR: usize = 4;
const I8_NR: usize = 8;
const I8_KR: usize = 4;

/// `generic::gemm_qu8s8_4x8c4`: unsigned-domain activations, 4 rows × 8 columns, packed `c4`.
pub static GEMM_I8: I8Kernel = I8Kernel {
    name: "generic::gemm_qu8s8_4x8c4",
    isa: Isa::Scalar,
    mr: I8_MR,
    nr: I8_NR,
    kr: I8_KR,
    signed_a: false,
    run: gemm_i8_4x8c4,
};

/// # Safety
/// `args` satisfies the contract of [`I8Args`] for this kernel's tile (4×8, kr = 4).
unsafe fn gemm_i8_4x8c4(args: &I8Args) {
    let mut acc = [[0i32; I8_NR]; I8_MR];
    for (r, acc_row) in acc.iter_mut().enumerate().take(args.rows) {
        // SAFETY: row r < rows holds k readable bytes at a + r·a_stride (I8Args contract).
        let a = unsafe { std::slice::from_raw_parts(args.a.add(r * args.a_stride), args.k) };
        for (kk, &av) in a.iter().enumerate() {
            let av = (av ^ args.a_xor) as i32;
            let g = (kk / I8_KR) * I8_NR * I8_KR + kk % I8_KR;
            for (j, accv) in acc_row.iter_mut().enumerate() {
                // SAFETY: g + j·kr < ceil(k/kr)·nr·kr, the packed tile's length.
                let w = unsafe { *args.w.add(g + j * I8_KR) } as i32;
                *accv = accv.wrapping_add(av * w);
            }
        }
    }
    // SAFETY: `ep` points at the tile's epilogue data (I8Args contract).
    let ep = unsafe { &*args.ep };
    for (r, acc_row) in acc.iter().enumerate().take(args.rows) {
        // SAFETY: row_off holds `rows` values.
        let off = unsafe { *args.row_off.add(r) };
        if !args.acc_out.is_null() {
            for (j, &accv) in acc_row.iter().enumerate() {
                // SAFETY: acc_out holds rows × nr values (I8Args contract).
                unsafe {
                    *args.acc_out.add(r * I8_NR + j) =
                        accv.wrapping_add(ep.bias[j]).wrapping_add(off)
                };
            }
            continue;
        }
        for (j, &accv) in acc_row
            .iter()
            .enumerate()
            .take(args.col_hi)
            .skip(args.col_lo)
        {
            let x = accv.wrapping_add(ep.bias[j]).wrapping_add(off);
            let v = multiply_by_quantized_multiplier(x, ep.mult[j], ep.shift[j])
                .wrapping_add(args.zero_point)
                .clamp(args.min, args.max);
            // SAFETY: row r, column j in col_lo..col_hi is writable (I8Args contract).
            unsafe { *args.c.add(r * args.c_stride + j) = v as u8 };
        }
    }
}

const F32_MR: usize = 4;
const F32_NR: usize = 8;

/// `generic::gemm_f32_4x8`.
pub static GEMM_F32: F32Kernel = F32Kernel {
    name: "generic::gemm_f32_4x8",
    isa: Isa::Scalar,
    mr: F32_MR,
    nr: F32_NR,
    run: gemm_f32_4x8,
};

/// # Safety
/// `args` satisfies the contract of [`F32Args`] for a 4×8 tile.
unsafe fn gemm_f32_4x8(args: &F32Args) {
    let mut acc = [[0f32; F32_NR]; F32_MR];
    for (r, acc_row) in acc.iter_mut().enumerate().take(args.rows) {
        // SAFETY: row r < rows holds k readable floats (F32Args contract).
        let a = unsafe { std::slice::from_raw_parts(args.a.add(r * args.a_stride), args.k) };
        // SAFETY: the bias holds nr floats.
        let bias = unsafe { std::slice::from_raw_parts(args.bias, F32_NR) };
        acc_row.copy_from_slice(bias);
        for (kk, &av) in a.iter().enumerate() {
            // SAFETY: the packed tile holds k·nr floats.
            let w = unsafe { std::slice::from_raw_parts(args.w.add(kk * F32_NR), F32_NR) };
            for (accv, &wv) in acc_row.iter_mut().zip(w) {
                *accv += av * wv;
            }
        }
    }
    for (r, acc_row) in acc.iter().enumerate().take(args.rows) {
        for (j, &v) in acc_row
            .iter()
            .enumerate()
            .take(args.col_hi)
            .skip(args.col_lo)
        {
            // SAFETY: row r, column j in col_lo..col_hi is writable (F32Args contract).
            unsafe { *args.c.add(r * args.c_stride + j) = v.max(args.min).min(args.max) };
        }
    }
}
