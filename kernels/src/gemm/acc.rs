//! int8 GEMM that hands its raw int32 accumulators to the caller instead of requantizing:
//! `acc[m][n] = bias[n] + Σ_k (a[m][k] − za) · (w[n][k] − zw)` (wrapping int32), for epilogues
//! the fixed-point [`super::Requant`] does not express (TFLite's fully-connected reference
//! rescales in f64).

use std::ops::Range;

use super::{
    check_block, row_block, row_blocks, weight_zp_row_offsets, I8Args, PackedI8, TileEpilogue,
    ACC_ROWS, NR_MAX, Q8,
};

/// Computes the accumulators of the block `rows × cols` and calls `f(m, c0, acc)` with the
/// accumulators of row `m`, columns `c0 .. c0 + acc.len()`: every (row, column) of the block is
/// passed exactly once, in column runs of at most one kernel tile (`nr` columns). Activations as
/// in [`super::gemm_i8`] (element type matching the packed [`super::ActQuant`]). No allocation.
///
/// Panics on a contract violation (activation type, out-of-range rows or columns).
pub fn gemm_i8_acc<A: Q8>(
    a: &[A],
    a_stride: usize,
    packed: &PackedI8,
    rows: Range<usize>,
    cols: Range<usize>,
    mut f: impl FnMut(usize, usize, &[i32]),
) {
    let (n, k) = (packed.n, packed.k);
    assert_eq!(
        A::UNSIGNED,
        packed.act.unsigned,
        "gemm_i8_acc: activation type differs from the one the weights were packed for"
    );
    assert!(
        cols.start <= cols.end && cols.end <= n,
        "gemm_i8_acc: cols {cols:?} beyond N={n}"
    );
    assert!(
        rows.start <= rows.end,
        "gemm_i8_acc: reversed rows {rows:?}"
    );
    if rows.is_empty() || cols.is_empty() {
        return;
    }
    check_block("A", a.len(), a_stride, &rows, k, k);

    let kern = packed.kernel;
    let (mr, nr) = (kern.mr.min(ACC_ROWS), kern.nr);
    let mc = row_block(k, 1, mr);
    let a_xor = if A::UNSIGNED == kern.signed_a {
        0x80
    } else {
        0
    };
    let tile_bytes = super::pack::tile_len(k, kern.kr) * nr;
    let zw = packed.w_zero_point;
    let mut ep = TileEpilogue {
        bias: [0; NR_MAX],
        mult: [0; NR_MAX],
        shift: [0; NR_MAX],
    };
    let mut row_off = [0i32; ACC_ROWS];
    let mut acc = [0i32; ACC_ROWS * NR_MAX];
    for blk in row_blocks(&rows, mc) {
        for t in cols.start / nr..cols.end.div_ceil(nr) {
            let base = t * nr;
            ep.bias[..nr].copy_from_slice(&packed.bias[base..base + nr]);
            let (j0, j1) = (cols.start.max(base) - base, cols.end.min(base + nr) - base);
            let mut m0 = blk.start;
            while m0 < blk.end {
                let tile_rows = mr.min(blk.end - m0);
                if zw != 0 {
                    weight_zp_row_offsets(a, a_stride, k, m0, zw, &mut row_off[..tile_rows]);
                }
                let args = I8Args {
                    // SAFETY: m0 < rows.end, and check_block proved rows m0.. lie inside `a`.
                    a: unsafe { a.as_ptr().add(m0 * a_stride) } as *const u8,
                    a_stride,
                    a_xor,
                    rows: tile_rows,
                    k,
                    // SAFETY: tile t < tiles, and the packed data holds tiles × tile_bytes bytes.
                    w: unsafe { packed.data.as_ptr().add(t * tile_bytes) },
                    ep: &ep,
                    row_off: row_off.as_ptr(),
                    zero_point: 0,
                    min: i32::MIN,
                    max: i32::MAX,
                    c: std::ptr::null_mut(),
                    c_stride: 0,
                    col_lo: 0,
                    col_hi: 0,
                    acc_out: acc.as_mut_ptr(),
                };
                // SAFETY: the kernel came from the dispatch table or a candidate list, so the CPU
                // has its ISA; A extents were checked; in raw-accumulator mode the kernel writes
                // tile_rows × nr ≤ ACC_ROWS × NR_MAX values to `acc` and nothing to `c`.
                unsafe { (kern.run)(&args) };
                for r in 0..tile_rows {
                    f(m0 + r, base + j0, &acc[r * nr + j0..r * nr + j1]);
                }
                m0 += tile_rows;
            }
        }
    }
}
