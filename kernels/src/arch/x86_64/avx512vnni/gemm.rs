//! `vpdpbusd` int8 GEMM (up to 1024 rows × 32 output channels per call, in passes of 8 rows;
//! weights packed `c4`) and f32 FMA GEMM (8 × 32), both with the epilogue in registers.
//!
//! int8: each row's 4 activation bytes are broadcast to all lanes, XORed into the unsigned domain
//! (int8 + 128) and fed to `vpdpbusd`'s unsigned operand; the packed int8 weights are its signed
//! operand, 16 output channels × 4 input channels per zmm. The `+128` shift is folded into the
//! packed bias (see `gemm/pack.rs`). The requantization constants are prepared once per call and
//! shared by its passes; only the 16 columns that are stored are computed when the tile's other
//! half is padding or outside the requested columns, and the second half runs at 256-bit width
//! (8 columns) when the stored columns end by 24; a tile whose stored columns end by 8 computes 8
//! columns at 256-bit width only. The f32 kernel does the same.

use core::arch::x86_64::*;

use super::requant::Rq16;
use crate::gemm::{F32Args, F32Kernel, I8Args, I8Kernel};
use crate::isa::Isa;

/// `avx512vnni::gemm_qu8s8_1024x32c4`.
pub static GEMM_I8: I8Kernel = I8Kernel {
    name: "avx512vnni::gemm_qu8s8_1024x32c4",
    isa: Isa::Avx512Vnni,
    // Many passes per call: the requantization constants are prepared once per call, and the
    // software pipeline (`pipelined`) fills and drains once per call. (64 → 1024 rows per
    // call measured 784×144×32 195 → 201 G MAC/s, 12544×16×96 74 → 80.)
    mr: 1024,
    nr: 32,
    kr: 4,
    signed_a: false,
    run: gemm_qu8s8_1024x32c4,
};

/// `avx512::gemm_f32_8x32`.
pub static GEMM_F32: F32Kernel = F32Kernel {
    name: "avx512::gemm_f32_8x32",
    isa: Isa::Avx512Vnni,
    mr: 8,
    nr: 32,
    run: gemm_f32_8x32,
};

/// # Safety
/// [`I8Args`] contract for a 64×32 `c4` tile; the CPU has AVX-512 VNNI.
unsafe fn gemm_qu8s8_1024x32c4(args: &I8Args) {
    // SAFETY: forwarded contract.
    unsafe {
        if !args.acc_out.is_null() {
            passes::<2, true, GENERAL, false>(args, None);
        } else if args.col_hi <= 8 {
            // Only the first 8 columns are stored: one 256-bit multiply per row and group.
            requant_passes::<4>(args);
        } else if args.col_hi <= 16 {
            // Only the first 16 columns are stored: skip the other half's multiplies.
            requant_passes::<1>(args);
        } else if args.col_hi <= 24 {
            // Columns 24.. are not stored: the second half runs at 256-bit width.
            requant_passes::<3>(args);
        } else {
            requant_passes::<2>(args);
        }
    }
}

/// Prepares the requantization of the tile's `16·H` columns once, then runs the passes.
///
/// # Safety
/// As [`gemm_qu8s8_1024x32c4`], with `acc_out` null.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn requant_passes<const H: usize>(args: &I8Args) {
    // SAFETY: `ep` per the I8Args contract; its arrays hold NR_MAX ≥ 32 values.
    let ep = unsafe { &*args.ep };
    let rq = |h: usize| {
        // SAFETY: 16h + 16 ≤ 32 ≤ NR_MAX.
        let (m, s) = unsafe {
            (
                _mm512_loadu_si512(ep.mult.as_ptr().add(16 * h) as *const __m512i),
                _mm512_loadu_si512(ep.shift.as_ptr().add(16 * h) as *const __m512i),
            )
        };
        Rq16::new(m, s, args.zero_point, args.min, args.max)
    };
    let rq0 = rq(0);
    let rq1 = if two_halves(H) { rq(1) } else { rq0 };
    let rq = [rq0, rq1];
    let mode = if !(rq0.is_fast() && rq1.is_fast()) {
        GENERAL
    } else if args.min >= args.zero_point {
        FAST_FLOOR
    } else {
        FAST
    };
    // SAFETY: forwarded contract; the mode's conditions hold.
    unsafe {
        match (mode, args.max > 127, args.k >= PIPELINE_MIN_K) {
            (FAST, false, true) => pipelined::<H, FAST_BLEND, false>(args, &rq),
            (FAST, true, true) => pipelined::<H, FAST_BLEND, true>(args, &rq),
            (FAST_FLOOR, false, _) => passes::<H, false, FAST_FLOOR, false>(args, Some(&rq)),
            (FAST_FLOOR, true, _) => passes::<H, false, FAST_FLOOR, true>(args, Some(&rq)),
            (FAST, false, _) => passes::<H, false, FAST, false>(args, Some(&rq)),
            (FAST, true, _) => passes::<H, false, FAST, true>(args, Some(&rq)),
            (_, false, _) => passes::<H, false, GENERAL, false>(args, Some(&rq)),
            (_, true, _) => passes::<H, false, GENERAL, true>(args, Some(&rq)),
        }
    }
}

/// The call's rows in passes of 8 (then the remainder).
///
/// # Safety
/// As [`gemm_qu8s8_1024x32c4`]; `rq` is `Some` unless `RAW`, and the conditions of `MODE` hold.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn passes<const H: usize, const RAW: bool, const MODE: u8, const U: bool>(
    args: &I8Args,
    rq: Option<&[Rq16; 2]>,
) {
    let mut r0 = 0;
    while args.rows - r0 >= 8 {
        // SAFETY: rows r0..r0 + 8 ≤ rows (forwarded contract).
        unsafe { i8_tile::<8, H, RAW, MODE, U>(args, r0, rq) };
        r0 += 8;
    }
    // SAFETY: forwarded contract, r0 ≤ rows.
    unsafe { last_rows::<H, RAW, MODE, U>(args, r0, rq) };
}

/// Rows `r0..rows` (fewer than 8) as one tile.
///
/// # Safety
/// As [`passes`] (the CPU has AVX-512 VNNI), and `rows − r0 < 8`.
#[inline(always)]
unsafe fn last_rows<const H: usize, const RAW: bool, const MODE: u8, const U: bool>(
    args: &I8Args,
    r0: usize,
    rq: Option<&[Rq16; 2]>,
) {
    // SAFETY: the remaining rows r0..rows.
    unsafe {
        match args.rows - r0 {
            1 => i8_tile::<1, H, RAW, MODE, U>(args, r0, rq),
            2 => i8_tile::<2, H, RAW, MODE, U>(args, r0, rq),
            3 => i8_tile::<3, H, RAW, MODE, U>(args, r0, rq),
            4 => i8_tile::<4, H, RAW, MODE, U>(args, r0, rq),
            5 => i8_tile::<5, H, RAW, MODE, U>(args, r0, rq),
            6 => i8_tile::<6, H, RAW, MODE, U>(args, r0, rq),
            7 => i8_tile::<7, H, RAW, MODE, U>(args, r0, rq),
            _ => {}
        }
    }
}

/// [`passes`] with the requantization software-pipelined: the accumulators of each pass of 8
/// rows are requantized and stored while the next pass computes its dot products, one
/// [`store_step`] before each of `store_steps` chunks of its groups of input channels. The
/// epilogue's vector work then fills the issue slots `vpdpbusd` leaves free instead of running
/// between passes.
///
/// Not inlined: its own register allocation and code layout measured 1–2% faster at
/// 784×144×32 than inlined into the mode dispatch.
///
/// # Safety
/// As [`passes`] with `RAW` false.
#[inline(never)]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn pipelined<const H: usize, const MODE: u8, const U: bool>(args: &I8Args, rq: &[Rq16; 2]) {
    const R: usize = 8;
    let steps = store_steps(R, H);
    let groups = args.k / 4;
    let mut r0 = 0;
    // The previous pass: first row and accumulators (None before the first).
    let mut prev: Option<(usize, [__m512i; R], [__m512i; R])> = None;
    while args.rows - r0 >= R {
        // SAFETY: rows r0..r0 + 8 ≤ rows (forwarded contract); the chunks cover groups
        // 0..k/4 in order; the previous pass's rows are below rows.
        unsafe {
            let mut d = dots_start::<R, H>(args, r0);
            let mut g = 0;
            for step in 0..steps {
                if let Some((p0, acc0, acc1)) = &prev {
                    store_step::<R, H, MODE, U>(args, *p0, rq, acc0, acc1, step);
                }
                let end = groups * (step + 1) / steps;
                dots_groups::<R, H>(args, &mut d, g, end);
                g = end;
            }
            dots_finish::<R, H>(args, r0, &mut d);
            prev = Some((r0, d.acc0, d.acc1));
        }
        r0 += R;
    }
    // SAFETY: as above; then the remaining rows r0..rows.
    unsafe {
        if let Some((p0, acc0, acc1)) = &prev {
            store_tile::<R, H, MODE, U>(args, *p0, rq, acc0, acc1);
        }
        last_rows::<H, false, MODE, U>(args, r0, Some(rq));
    }
}

/// Reads the last `rem` (1..=3) activation bytes of a row as a little-endian u32, zero-padded
/// (the padded weights are zero, so the padding value does not matter, but the read must stay
/// inside the row).
///
/// # Safety
/// `p` is valid for `rem` byte reads.
#[inline(always)]
unsafe fn tail_u32(p: *const u8, rem: usize) -> u32 {
    let mut v = 0u32;
    for i in 0..rem {
        // SAFETY: i < rem (caller contract).
        v |= (unsafe { *p.add(i) } as u32) << (8 * i);
    }
    v
}

/// `vpdpbusd` on the low 8 lanes only (256-bit width, half the work of the 512-bit form); the
/// upper 8 lanes of the result are zero. For tiles whose columns 24.. are not stored.
#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx512vnni")]
fn dpbusd_lo8(acc: __m512i, a: __m512i, w: __m512i) -> __m512i {
    _mm512_zextsi256_si512(_mm256_dpbusd_epi32(
        _mm512_castsi512_si256(acc),
        _mm512_castsi512_si256(a),
        _mm512_castsi512_si256(w),
    ))
}

/// Whether a tile of shape `H` (see [`i8_tile`]) computes columns 16.. (`H` = 2 or 3).
const fn two_halves(h: usize) -> bool {
    h == 2 || h == 3
}

/// Smallest K for [`pipelined`]: below it the passes' dot products are too short to hide the
/// epilogue, and the plain order measured faster. (Only the `FAST` epilogue is pipelined: the
/// lighter `FAST_FLOOR` one measured 1–2% slower pipelined, the spilled accumulators of the
/// previous pass costing more than the overlap gains.)
const PIPELINE_MIN_K: usize = 64;

/// Epilogue modes (`MODE`): [`Rq16::unclamped_general`], any constants.
const GENERAL: u8 = 0;
/// [`Rq16::unclamped_fast`]: both `Rq16` are fast.
const FAST: u8 = 1;
/// [`Rq16::unclamped_fast_floor`]: both are fast and the clamp's lower bound is at least the
/// zero point (fused ReLU / ReLU6).
const FAST_FLOOR: u8 = 2;
/// [`Rq16::unclamped_fast_blend`]: as `FAST` ([`pipelined`] only).
const FAST_BLEND: u8 = 3;

/// Dword order after `vpackssdw` + `vpacksswb` of four vectors `t0..t3` (per 128-bit lane `L`:
/// dwords `t0[L], t1[L], t2[L], t3[L]`, each 4 bytes of 4 lanes): back to `t0` (lanes 0..16),
/// `t1`, `t2`, `t3` in memory order.
static PACK_ORDER: [i32; 16] = [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15];

/// Four vectors of requantized (unclamped) values to 64 bytes in lane order `t0, t1, t2, t3`,
/// clamped to `[lo, hi]`: saturating packs to 16 and 8 bits, then the clamp. Exact, because the
/// clamp range lies inside the 8-bit range the packs saturate to (signed, or unsigned when
/// `U`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
fn pack4<const U: bool>(t: [__m512i; 4], order: __m512i, lo: __m512i, hi: __m512i) -> __m512i {
    let w0 = _mm512_packs_epi32(t[0], t[1]);
    let w1 = _mm512_packs_epi32(t[2], t[3]);
    let b = if U {
        _mm512_packus_epi16(w0, w1)
    } else {
        _mm512_packs_epi16(w0, w1)
    };
    let b = _mm512_permutexvar_epi32(order, b);
    if U {
        _mm512_min_epu8(_mm512_max_epu8(b, lo), hi)
    } else {
        _mm512_min_epi8(_mm512_max_epi8(b, lo), hi)
    }
}

/// Number of [`store_step`]s of an `R`-row tile of shape `H`: pairs of rows when the tile
/// computes two halves, else groups of four rows.
const fn store_steps(r: usize, h: usize) -> usize {
    if two_halves(h) {
        r.div_ceil(2)
    } else {
        r.div_ceil(4)
    }
}

/// Requantizes and stores the `R` rows from `r_first` on (`H` halves of 16 columns, `acc1`
/// unused when `H = 1`): per `MODE`, then [`pack4`] (unsigned packs when `U`).
///
/// (Forced inline: the accumulators stay in registers only when it is.)
///
/// # Safety
/// The [`I8Args`] contract for the output (`c`, `c_stride`, `col_lo..col_hi`), with
/// `r_first + R ≤ rows`; the conditions of `MODE` hold; the CPU has AVX-512 F/BW/DQ/VL.
#[inline(always)]
unsafe fn store_tile<const R: usize, const H: usize, const MODE: u8, const U: bool>(
    args: &I8Args,
    r_first: usize,
    rq: &[Rq16; 2],
    acc0: &[__m512i; R],
    acc1: &[__m512i; R],
) {
    // Written out (at most 4 steps for R ≤ 8), so that every accumulator index is a constant
    // and the accumulators stay in registers.
    let steps = store_steps(R, H);
    // SAFETY: forwarded contract; each step < store_steps(R, H).
    unsafe {
        store_step::<R, H, MODE, U>(args, r_first, rq, acc0, acc1, 0);
        if steps > 1 {
            store_step::<R, H, MODE, U>(args, r_first, rq, acc0, acc1, 1);
        }
        if steps > 2 {
            store_step::<R, H, MODE, U>(args, r_first, rq, acc0, acc1, 2);
        }
        if steps > 3 {
            store_step::<R, H, MODE, U>(args, r_first, rq, acc0, acc1, 3);
        }
    }
}

/// One 64-byte pack of [`store_tile`]: rows `2·step` and `2·step + 1` (two halves), or rows
/// `4·step .. 4·step + 4` (one half), those below `R`.
///
/// # Safety
/// As [`store_tile`], and `step < store_steps(R, H)`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
unsafe fn store_step<const R: usize, const H: usize, const MODE: u8, const U: bool>(
    args: &I8Args,
    r_first: usize,
    rq: &[Rq16; 2],
    acc0: &[__m512i; R],
    acc1: &[__m512i; R],
    step: usize,
) {
    let q = |h: usize, x: __m512i| match MODE {
        FAST_FLOOR => rq[h].unclamped_fast_floor(x),
        FAST => rq[h].unclamped_fast(x),
        FAST_BLEND => rq[h].unclamped_fast_blend(x),
        _ => rq[h].unclamped_general(x),
    };
    // SAFETY: 16 i32 values.
    let order = unsafe { _mm512_loadu_si512(PACK_ORDER.as_ptr() as *const __m512i) };
    let (lo, hi) = (
        _mm512_set1_epi8(args.min as i8),
        _mm512_set1_epi8(args.max as i8),
    );
    let mask = ((1u64 << args.col_hi) - 1) & !((1u64 << args.col_lo) - 1);
    let row = |r: usize| args.c.wrapping_add((r_first + r) * args.c_stride) as *mut i8;
    if MODE == FAST_BLEND && !U && args.min == -128 && args.max == 127 {
        // The clamp is int8's whole range (no fused activation): each vector narrows with one
        // saturating vpmovsdb instead of the packs and byte clamps. Only in the pipelined
        // path, where the dot products hide it (784×144×32: 202 → 205 G MAC/s); at small K it
        // loses to the packs (12544×16×96: 82 → 66), and a run-time branch in the other
        // modes' code costs them registers (ReLU 784×144×32: 207 → 187).
        let rows = if two_halves(H) { 2 } else { 4 };
        let r0 = rows * step;
        for i in 0..rows {
            if r0 + i >= R {
                break;
            }
            if two_halves(H) {
                let (m0, m1) = (mask as u16, (mask >> 16) as u16);
                let (v0, v1) = (q(0, acc0[r0 + i]), q(1, acc1[r0 + i]));
                // SAFETY: only the tile's columns col_lo..col_hi of row r0 + i (< rows) are
                // written (masked stores: masked-off bytes are neither read nor written).
                unsafe {
                    _mm_mask_storeu_epi8(row(r0 + i), m0, _mm512_cvtsepi32_epi8(v0));
                    _mm_mask_storeu_epi8(
                        row(r0 + i).wrapping_add(16),
                        m1,
                        _mm512_cvtsepi32_epi8(v1),
                    );
                }
            } else {
                let v = q(0, acc0[r0 + i]);
                // SAFETY: as above, columns col_lo..col_hi ≤ 16 of row r0 + i < rows.
                unsafe { _mm_mask_storeu_epi8(row(r0 + i), mask as u16, _mm512_cvtsepi32_epi8(v)) };
            }
        }
        return;
    }
    if two_halves(H) {
        // Two rows of 32 columns per 64-byte pack.
        let mask = mask as u32;
        let r0 = 2 * step;
        let r1 = (r0 + 1).min(R - 1);
        let t = [
            q(0, acc0[r0]),
            q(1, acc1[r0]),
            q(0, acc0[r1]),
            q(1, acc1[r1]),
        ];
        let b = pack4::<U>(t, order, lo, hi);
        // SAFETY: only the tile's columns col_lo..col_hi of rows r0 and r1 (< rows) are
        // written (masked stores: masked-off bytes are neither read nor written).
        unsafe {
            _mm256_mask_storeu_epi8(row(r0), mask, _mm512_castsi512_si256(b));
            if r0 + 1 < R {
                _mm256_mask_storeu_epi8(row(r1), mask, _mm512_extracti64x4_epi64::<1>(b));
            }
        }
    } else {
        // Four rows of 16 columns per 64-byte pack.
        let mask = mask as u16;
        let r0 = 4 * step;
        let r = |i: usize| (r0 + i).min(R - 1);
        let t = [
            q(0, acc0[r(0)]),
            q(0, acc0[r(1)]),
            q(0, acc0[r(2)]),
            q(0, acc0[r(3)]),
        ];
        let b = pack4::<U>(t, order, lo, hi);
        // SAFETY: as above, columns col_lo..col_hi ≤ 16 of the rows r0 + i < rows.
        unsafe {
            _mm_mask_storeu_epi8(row(r0), mask, _mm512_castsi512_si128(b));
            if r0 + 1 < R {
                let v = _mm512_extracti32x4_epi32::<1>(b);
                _mm_mask_storeu_epi8(row(r0 + 1), mask, v);
            }
            if r0 + 2 < R {
                let v = _mm512_extracti32x4_epi32::<2>(b);
                _mm_mask_storeu_epi8(row(r0 + 2), mask, v);
            }
            if r0 + 3 < R {
                let v = _mm512_extracti32x4_epi32::<3>(b);
                _mm_mask_storeu_epi8(row(r0 + 3), mask, v);
            }
        }
    }
}

/// The accumulators of `R` rows (`H` halves, see [`i8_tile`]) and their activation rows.
struct Dots<const R: usize> {
    acc0: [__m512i; R],
    acc1: [__m512i; R],
    a: [*const u8; R],
}

/// Rows `r_first..r_first + R`: the accumulators at the folded bias.
///
/// # Safety
/// As [`i8_tile`].
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn dots_start<const R: usize, const H: usize>(args: &I8Args, r_first: usize) -> Dots<R> {
    // SAFETY: `ep` per the I8Args contract; its arrays hold NR_MAX ≥ 32 values.
    let ep = unsafe { &*args.ep };
    let ld = |p: &[i32; crate::gemm::NR_MAX], h: usize| {
        // SAFETY: 16h + 16 ≤ 32 ≤ NR_MAX.
        unsafe { _mm512_loadu_si512(p.as_ptr().add(16 * h) as *const __m512i) }
    };
    // (Two flat arrays: LLVM keeps them in registers, where it spills a nested one.)
    let mut a = [args.a; R];
    for (r, p) in a.iter_mut().enumerate() {
        // SAFETY: r_first + r < rows, so the row lies in A (I8Args contract).
        *p = unsafe { args.a.add((r_first + r) * args.a_stride) };
    }
    Dots {
        acc0: [ld(&ep.bias, 0); R],
        acc1: [ld(&ep.bias, two_halves(H) as usize); R],
        a,
    }
}

/// Groups `g0..g1` of 4 input channels (each `4g + 4 ≤ k`) into the accumulators.
///
/// # Safety
/// As [`i8_tile`]; `g1 ≤ k / 4`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn dots_groups<const R: usize, const H: usize>(
    args: &I8Args,
    d: &mut Dots<R>,
    g0: usize,
    g1: usize,
) {
    let xor = _mm512_set1_epi8(args.a_xor as i8);
    // SAFETY: group g0 ≤ ceil(k/4) of the packed tile (or one past it).
    let mut w = unsafe { args.w.add(128 * g0) };
    for g in g0..g1 {
        // SAFETY: the packed tile holds ceil(k/4) groups of 128 bytes, 64-byte aligned.
        let (w0, w1) = unsafe {
            (
                _mm512_load_si512(w as *const __m512i),
                _mm512_load_si512(w.add(64 * two_halves(H) as usize) as *const __m512i),
            )
        };
        for r in 0..R {
            // SAFETY: 4g + 4 ≤ k: the 4 bytes lie in row r.
            let av = unsafe { xor_broadcast(d.a[r].add(4 * g), xor) };
            // SAFETY: this kernel runs on AVX-512 VNNI CPUs only.
            unsafe { dot::<H>(&mut d.acc0[r], &mut d.acc1[r], av, w0, w1) };
        }
        // SAFETY: advances within (or one past) the packed tile.
        w = unsafe { w.add(128) };
    }
}

/// The 4 bytes at `p` in every 32-bit lane, XORed with `x`: one `vpxord` with an embedded
/// broadcast from memory. (Written out: from the intrinsics, LLVM emits a `vpbroadcastd` and a
/// separate `vpxord`, and that extra vector instruction per row and group measured 5% of the
/// `vpdpbusd` throughput of a pass.)
///
/// # Safety
/// `p` is valid for a 4-byte read; the CPU has AVX-512F.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn xor_broadcast(p: *const u8, x: __m512i) -> __m512i {
    let v: __m512i;
    // SAFETY: reads the 4 bytes at `p` (caller contract); no other memory, stack or flags.
    unsafe {
        core::arch::asm!(
            "vpxord {v}, {x}, dword ptr [{p}]{{1to16}}",
            v = lateout(zmm_reg) v,
            x = in(zmm_reg) x,
            p = in(reg) p,
            options(pure, readonly, nostack, preserves_flags),
        );
    }
    v
}

/// One group of 4 input channels of one row into the row's `H` halves.
///
/// # Safety
/// The CPU has AVX-512 F/VL/VNNI.
#[inline(always)]
unsafe fn dot<const H: usize>(
    acc0: &mut __m512i,
    acc1: &mut __m512i,
    av: __m512i,
    w0: __m512i,
    w1: __m512i,
) {
    // SAFETY: the CPU has AVX-512 F/VL/VNNI (caller contract).
    unsafe {
        *acc0 = if H == 4 {
            dpbusd_lo8(*acc0, av, w0)
        } else {
            _mm512_dpbusd_epi32(*acc0, av, w0)
        };
        if H == 2 {
            *acc1 = _mm512_dpbusd_epi32(*acc1, av, w1);
        } else if H == 3 {
            *acc1 = dpbusd_lo8(*acc1, av, w1);
        }
    }
}

/// The last, partial group of 4 input channels (when `k % 4 ≠ 0`) and the per-row terms.
/// (Forced inline: LLVM keeps the accumulators in registers only when it is.)
///
/// # Safety
/// As [`i8_tile`] (the CPU has AVX-512 F/BW/DQ/VL/VNNI).
#[inline(always)]
unsafe fn dots_finish<const R: usize, const H: usize>(
    args: &I8Args,
    r_first: usize,
    d: &mut Dots<R>,
) {
    let groups = args.k / 4;
    let rem = args.k % 4;
    // SAFETY: the CPU has the features of the intrinsics (caller contract); the partial group
    // is the tile's last packed group, bytes 4·groups .. k of each row r < R exist, and
    // row_off holds `rows` ≥ r_first + R values (I8Args contract).
    unsafe {
        if rem != 0 {
            let xor = _mm512_set1_epi8(args.a_xor as i8);
            let w = args.w.add(128 * groups);
            let w0 = _mm512_load_si512(w as *const __m512i);
            let w1 = _mm512_load_si512(w.add(64 * two_halves(H) as usize) as *const __m512i);
            for r in 0..R {
                let v = tail_u32(d.a[r].add(4 * groups), rem);
                let av = _mm512_xor_si512(_mm512_set1_epi32(v as i32), xor);
                dot::<H>(&mut d.acc0[r], &mut d.acc1[r], av, w0, w1);
            }
        }
        for r in 0..R {
            let off = *args.row_off.add(r_first + r);
            if off != 0 {
                d.acc0[r] = _mm512_add_epi32(d.acc0[r], _mm512_set1_epi32(off));
                d.acc1[r] = _mm512_add_epi32(d.acc1[r], _mm512_set1_epi32(off));
            }
        }
    }
}

/// Rows `r_first..r_first + R` of the tile: `H` halves of 16 columns (2 for the full 32-wide
/// tile, 1 when only columns `..16` are needed; 3: columns `..24`, the second half on its low 8
/// lanes only, its upper lanes zero; 4: columns `..8`, the first half on its low 8 lanes only);
/// raw accumulators out when `RAW`, else [`store_tile`].
///
/// (Forced inline, as [`store_tile`].)
///
/// # Safety
/// As [`passes`] (the CPU has AVX-512 VNNI), and `r_first + R ≤ rows`.
#[inline(always)]
unsafe fn i8_tile<
    const R: usize,
    const H: usize,
    const RAW: bool,
    const MODE: u8,
    const U: bool,
>(
    args: &I8Args,
    r_first: usize,
    rq: Option<&[Rq16; 2]>,
) {
    // SAFETY: forwarded contract.
    let mut d = unsafe { dots_start::<R, H>(args, r_first) };
    // SAFETY: forwarded contract; groups = k / 4.
    unsafe {
        dots_groups::<R, H>(args, &mut d, 0, args.k / 4);
        dots_finish::<R, H>(args, r_first, &mut d);
    }
    if RAW {
        for r in 0..R {
            // SAFETY: acc_out holds rows × 32 values (I8Args contract); H = 2 here.
            unsafe {
                let p = args.acc_out.add(32 * (r_first + r));
                _mm512_storeu_si512(p as *mut __m512i, d.acc0[r]);
                _mm512_storeu_si512(p.add(16) as *mut __m512i, d.acc1[r]);
            }
        }
    } else if let Some(rq) = rq {
        // SAFETY: forwarded output contract.
        unsafe { store_tile::<R, H, MODE, U>(args, r_first, rq, &d.acc0, &d.acc1) };
    }
}

/// # Safety
/// [`F32Args`] contract for an 8×32 tile; the CPU has AVX-512F.
unsafe fn gemm_f32_8x32(args: &F32Args) {
    // A tile whose columns all lie in its first 16 lanes (N = 16, 24 − 16 … and the last tile of
    // N = 144) runs one FMA per row and k instead of two.
    // A tile whose columns end by 24 (N = 24, 56, 88 …) runs its second half at 256-bit width.
    let half = args.col_hi <= 16;
    if args.col_hi <= 8 {
        // SAFETY: forwarded contract; rows is 1..=8.
        unsafe {
            match args.rows {
                1 => f32_tile::<1, 4>(args),
                2 => f32_tile::<2, 4>(args),
                3 => f32_tile::<3, 4>(args),
                4 => f32_tile::<4, 4>(args),
                5 => f32_tile::<5, 4>(args),
                6 => f32_tile::<6, 4>(args),
                7 => f32_tile::<7, 4>(args),
                _ => f32_tile::<8, 4>(args),
            }
        }
        return;
    }
    if !half && args.col_hi <= 24 {
        // SAFETY: forwarded contract; rows is 1..=8.
        unsafe {
            match args.rows {
                1 => f32_tile::<1, 3>(args),
                2 => f32_tile::<2, 3>(args),
                3 => f32_tile::<3, 3>(args),
                4 => f32_tile::<4, 3>(args),
                5 => f32_tile::<5, 3>(args),
                6 => f32_tile::<6, 3>(args),
                7 => f32_tile::<7, 3>(args),
                _ => f32_tile::<8, 3>(args),
            }
        }
        return;
    }
    // SAFETY: forwarded contract; rows is 1..=8.
    unsafe {
        match (args.rows, half) {
            (1, false) => f32_tile::<1, 2>(args),
            (2, false) => f32_tile::<2, 2>(args),
            (3, false) => f32_tile::<3, 2>(args),
            (4, false) => f32_tile::<4, 2>(args),
            (5, false) => f32_tile::<5, 2>(args),
            (6, false) => f32_tile::<6, 2>(args),
            (7, false) => f32_tile::<7, 2>(args),
            (_, false) => f32_tile::<8, 2>(args),
            (1, true) => f32_tile::<1, 1>(args),
            (2, true) => f32_tile::<2, 1>(args),
            (3, true) => f32_tile::<3, 1>(args),
            (4, true) => f32_tile::<4, 1>(args),
            (5, true) => f32_tile::<5, 1>(args),
            (6, true) => f32_tile::<6, 1>(args),
            (7, true) => f32_tile::<7, 1>(args),
            (_, true) => f32_tile::<8, 1>(args),
        }
    }
}

/// `R` rows of the tile: `H` = 2 for 32 columns, 1 for columns `..16`, 4 for columns `..8` (at
/// 256-bit width), 3 for columns `..24` (the
/// second half's FMAs at 256-bit width, with a 256-bit broadcast of their own: reusing the low
/// half of the 512-bit broadcast measured no faster than the full tile).
///
/// # Safety
/// As [`gemm_f32_8x32`], with `R = rows`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma")]
unsafe fn f32_tile<const R: usize, const H: usize>(args: &F32Args) {
    // SAFETY: the tile's bias holds 32 floats.
    let (b0, b1) = unsafe {
        (
            _mm512_loadu_ps(args.bias),
            _mm512_loadu_ps(args.bias.add(16)),
        )
    };
    let mut acc0 = [b0; R];
    let mut acc1 = [b1; R];
    let mut a = [args.a; R];
    for (r, p) in a.iter_mut().enumerate() {
        // SAFETY: row r < rows lies in A.
        *p = unsafe { args.a.add(r * args.a_stride) };
    }
    let mut w = args.w;
    for kk in 0..args.k {
        // SAFETY: the packed tile holds k rows of 32 floats, 64-byte aligned.
        let w0 = unsafe { _mm512_load_ps(w) };
        if H == 2 {
            // SAFETY: as above, the second 16 floats of the row.
            let w1 = unsafe { _mm512_load_ps(w.add(16)) };
            for r in 0..R {
                // SAFETY: kk < k: element kk of row r.
                let av = _mm512_set1_ps(unsafe { *a[r].add(kk) });
                acc0[r] = _mm512_fmadd_ps(av, w0, acc0[r]);
                acc1[r] = _mm512_fmadd_ps(av, w1, acc1[r]);
            }
        } else if H == 3 {
            // SAFETY: as above, floats 16..24 of the row (32-byte aligned).
            let w1 = unsafe { _mm256_load_ps(w.add(16)) };
            for r in 0..R {
                // SAFETY: kk < k: element kk of row r.
                let x = unsafe { *a[r].add(kk) };
                acc0[r] = _mm512_fmadd_ps(_mm512_set1_ps(x), w0, acc0[r]);
                let lo8 = _mm256_fmadd_ps(_mm256_set1_ps(x), w1, _mm512_castps512_ps256(acc1[r]));
                acc1[r] = _mm512_castps256_ps512(lo8);
            }
        } else if H == 4 {
            for r in 0..R {
                // SAFETY: kk < k: element kk of row r.
                let x = unsafe { *a[r].add(kk) };
                let lo8 = _mm256_fmadd_ps(
                    _mm256_set1_ps(x),
                    _mm512_castps512_ps256(w0),
                    _mm512_castps512_ps256(acc0[r]),
                );
                acc0[r] = _mm512_castps256_ps512(lo8);
            }
        } else {
            for r in 0..R {
                // SAFETY: kk < k: element kk of row r.
                let av = _mm512_set1_ps(unsafe { *a[r].add(kk) });
                acc0[r] = _mm512_fmadd_ps(av, w0, acc0[r]);
            }
        }
        // SAFETY: advances within (or one past) the packed tile.
        w = unsafe { w.add(32) };
    }
    let lo = _mm512_set1_ps(args.min);
    let hi = _mm512_set1_ps(args.max);
    let mut mask = [0u16; 2];
    for (h, m) in mask.iter_mut().enumerate() {
        let from = args.col_lo.clamp(16 * h, 16 * h + 16) - 16 * h;
        let to = args.col_hi.clamp(16 * h, 16 * h + 16) - 16 * h;
        *m = (((1u32 << to) - 1) & !((1u32 << from) - 1)) as u16;
    }
    for r in 0..R {
        let row = args.c.wrapping_add(r * args.c_stride);
        for (h, acc) in [acc0[r], acc1[r]]
            .into_iter()
            .enumerate()
            .take(1 + two_halves(H) as usize)
        {
            let y = _mm512_min_ps(_mm512_max_ps(acc, lo), hi);
            // SAFETY: masked store of the tile's columns col_lo..col_hi of row r only.
            unsafe { _mm512_mask_storeu_ps(row.wrapping_add(16 * h), mask[h], y) };
        }
    }
}
