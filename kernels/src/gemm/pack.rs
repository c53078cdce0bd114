//! Weight packing: N×K row-major weights → column tiles of `nr` output channels, each tile
//! `ceil(K/kr)` groups of `nr × kr` values (`kr` consecutive input channels per column), zero
//! padded past N and K. Tile `t`, group `g`, column `j`, lane `l` holds `w[t·nr + j][g·kr + l]`.

use super::{ActQuant, F32Kernel, I8Kernel, PackError, PackedF32, PackedI8};

/// 64 bytes, 64-byte aligned: the unit of packed storage (one cache line, one zmm).
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Line([u8; 64]);

/// A 64-byte-aligned byte buffer.
#[derive(Clone, Debug)]
pub(super) struct AlignedBytes {
    lines: Vec<Line>,
    len: usize,
}

impl AlignedBytes {
    fn zeroed(len: usize) -> AlignedBytes {
        AlignedBytes {
            lines: vec![Line([0; 64]); len.div_ceil(64)],
            len,
        }
    }
    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: `lines` holds len.div_ceil(64) · 64 ≥ len initialized bytes; Line is plain bytes.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr() as *mut u8, self.len) }
    }
    pub(super) fn as_ptr(&self) -> *const i8 {
        self.lines.as_ptr() as *const i8
    }
}

/// A 64-byte-aligned f32 buffer.
#[derive(Clone, Debug)]
pub(super) struct AlignedF32 {
    lines: Vec<Line>,
    len: usize,
}

impl AlignedF32 {
    fn zeroed(len: usize) -> AlignedF32 {
        AlignedF32 {
            lines: vec![Line([0; 64]); (len * 4).div_ceil(64)],
            len,
        }
    }
    fn as_mut_slice(&mut self) -> &mut [f32] {
        // SAFETY: `lines` holds ≥ 4·len initialized bytes, 64-byte aligned (so f32-aligned), and
        // every bit pattern is a valid f32.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr() as *mut f32, self.len) }
    }
    pub(super) fn as_ptr(&self) -> *const f32 {
        self.lines.as_ptr() as *const f32
    }
}

/// Values per column tile: `ceil(k/kr)·kr` (times `nr` for the tile).
pub(super) fn tile_len(k: usize, kr: usize) -> usize {
    k.div_ceil(kr) * kr
}

fn sizes(n: usize, k: usize, nr: usize, kr: usize) -> Result<(usize, usize), PackError> {
    if n == 0 || k == 0 {
        return Err(PackError::Shape { n, k });
    }
    let tiles = n.div_ceil(nr);
    let total = tiles
        .checked_mul(nr)
        .and_then(|x| x.checked_mul(tile_len(k, kr)))
        .filter(|&t| t <= isize::MAX as usize / 4)
        .ok_or(PackError::Shape { n, k })?;
    Ok((tiles, total))
}

#[allow(clippy::too_many_arguments)]
pub(super) fn pack_i8(
    kernel: &'static I8Kernel,
    n: usize,
    k: usize,
    bias: Option<&[i32]>,
    act: ActQuant,
    w_zero_point: i32,
    weight: impl Fn(usize, usize) -> i8,
    weights_len: usize,
) -> Result<PackedI8, PackError> {
    let (nr, kr) = (kernel.nr, kernel.kr);
    let (tiles, total) = sizes(n, k, nr, kr)?;
    let needed = n * k;
    if weights_len < needed {
        return Err(PackError::Length {
            what: "weights",
            needed,
            found: weights_len,
        });
    }
    if let Some(b) = bias {
        if b.len() < n {
            return Err(PackError::Length {
                what: "bias",
                needed: n,
                found: b.len(),
            });
        }
    }
    let (lo, hi) = if act.unsigned { (0, 255) } else { (-128, 127) };
    if !(lo..=hi).contains(&act.zero_point) {
        return Err(PackError::ZeroPoint {
            what: "activation",
            value: act.zero_point,
        });
    }
    // The activations' zero point in the unsigned domain (a_u = a XOR 0x80 for int8).
    let zau = if act.unsigned {
        act.zero_point
    } else {
        act.zero_point + 128
    };

    let mut data = AlignedBytes::zeroed(total);
    let mut folded = vec![0i32; tiles * nr];
    let mut colsums = vec![0i32; tiles * nr];
    let tl = tile_len(k, kr);
    let out = data.as_mut_slice();
    for col in 0..n {
        let (t, j) = (col / nr, col % nr);
        let tile = &mut out[t * nr * tl..(t + 1) * nr * tl];
        let mut colsum = 0i32;
        for kk in 0..k {
            let w = weight(col, kk);
            colsum = colsum.wrapping_add(w as i32);
            tile[(kk / kr) * nr * kr + j * kr + kk % kr] = w as u8;
        }
        // acc = Σ a_u·w − zb·Σ a_u − zau·Σ w + K·zau·zb + bias; the kernel computes Σ a_u·w, or
        // Σ a_s·w = Σ a_u·w − 128·Σ w; the driver adds −zb·Σ a_u per row.
        let mut b = bias.map_or(0, |b| b[col]);
        b = b.wrapping_sub(zau.wrapping_mul(colsum));
        b = b.wrapping_add((k as i32).wrapping_mul(zau).wrapping_mul(w_zero_point));
        if kernel.signed_a {
            b = b.wrapping_add(128i32.wrapping_mul(colsum));
        }
        folded[col] = b;
        colsums[col] = colsum;
    }
    Ok(PackedI8 {
        kernel,
        n,
        k,
        act,
        w_zero_point,
        data,
        bias: folded,
        colsums,
    })
}

pub(super) fn pack_f32(
    kernel: &'static F32Kernel,
    weights: &[f32],
    n: usize,
    k: usize,
    bias: Option<&[f32]>,
) -> Result<PackedF32, PackError> {
    let nr = kernel.nr;
    let (tiles, total) = sizes(n, k, nr, 1)?;
    if weights.len() < n * k {
        return Err(PackError::Length {
            what: "weights",
            needed: n * k,
            found: weights.len(),
        });
    }
    if let Some(b) = bias {
        if b.len() < n {
            return Err(PackError::Length {
                what: "bias",
                needed: n,
                found: b.len(),
            });
        }
    }
    let mut data = AlignedF32::zeroed(total);
    let out = data.as_mut_slice();
    for col in 0..n {
        let (t, j) = (col / nr, col % nr);
        let tile = &mut out[t * nr * k..(t + 1) * nr * k];
        for kk in 0..k {
            tile[kk * nr + j] = weights[col * k + kk];
        }
    }
    let mut b = vec![0f32; tiles * nr];
    if let Some(src) = bias {
        b[..n].copy_from_slice(&src[..n]);
    }
    Ok(PackedF32 {
        kernel,
        n,
        k,
        data,
        bias: b,
    })
}
