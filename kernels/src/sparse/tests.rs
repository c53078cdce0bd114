use super::*;

/// A small deterministic generator for the sparse tests (splitmix64).
pub(crate) struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    pub fn i8(&mut self) -> i8 {
        (self.below(255) as i32 - 127) as i8
    }
    pub fn f32(&mut self) -> f32 {
        self.unit() * 2.0 - 1.0
    }
}

fn random_case(rng: &mut Rng) -> (usize, usize, Vec<i8>, Vec<bool>) {
    let rows = rng.below(20);
    let cols = rng.below(20);
    let density = rng.unit();
    let dense: Vec<i8> = (0..rows * cols).map(|_| rng.i8()).collect();
    let keep: Vec<bool> = (0..rows * cols).map(|_| rng.unit() < density).collect();
    (rows, cols, dense, keep)
}

fn masked(dense: &[i8], keep: &[bool]) -> Vec<i8> {
    dense
        .iter()
        .zip(keep)
        .map(|(&v, &k)| if k { v } else { 0 })
        .collect()
}

#[test]
fn csr_roundtrip() {
    let mut rng = Rng(1);
    for case in 0..300 {
        let (rows, cols, dense, keep) = random_case(&mut rng);
        let m = CsrMatrix::from_dense(&dense, rows, cols, &keep).unwrap();
        let v = m.view().unwrap();
        assert_eq!(v.nnz(), keep.iter().filter(|&&k| k).count(), "case {case}");
        assert_eq!(
            v.to_dense(),
            masked(&dense, &keep),
            "case {case}: {rows}x{cols}"
        );
    }
}

#[test]
fn bsr_roundtrip() {
    let mut rng = Rng(2);
    let shapes = [(1, 1), (1, 4), (4, 1), (2, 2), (16, 4), (32, 4), (3, 5)];
    for case in 0..300 {
        let (rows, cols, dense, keep) = random_case(&mut rng);
        let (r, c) = shapes[case % shapes.len()];
        let m = BsrMatrix::from_dense(&dense, rows, cols, BlockShape::new(r, c), &keep).unwrap();
        let v = m.view().unwrap();
        assert_eq!(
            v.to_dense(),
            masked(&dense, &keep),
            "case {case}: {rows}x{cols} in {r}x{c}"
        );
        assert_eq!(v.values().len(), v.nblocks() * r * c);
    }
}

#[test]
fn empty_and_full() {
    let dense = vec![1i8; 12];
    let m = CsrMatrix::from_dense(&dense, 3, 4, &[false; 12]).unwrap();
    assert_eq!(m.row_ptr, vec![0, 0, 0, 0]);
    assert_eq!(m.view().unwrap().to_dense(), vec![0; 12]);
    let b = BsrMatrix::from_dense(&dense, 3, 4, BlockShape::new(2, 4), &[true; 12]).unwrap();
    assert_eq!(b.block_row_ptr, vec![0, 1, 2]);
    assert_eq!(b.values.len(), 16);
    assert_eq!(&b.values[12..], &[0, 0, 0, 0], "edge block padding is zero");
    assert_eq!(b.view().unwrap().to_dense(), dense);
    let z = CsrMatrix::<f32>::from_dense(&[], 0, 0, &[]).unwrap();
    assert_eq!(z.view().unwrap().to_dense(), Vec::<f32>::new());
}

#[test]
fn malformed_csr_is_an_error() {
    let v = [1i8; 3];
    let e = |rp: &[u32], ci: &[u32], vals: &[i8]| Csr::new(2, 4, rp, ci, vals).unwrap_err();
    assert_eq!(
        e(&[0, 1], &[0], &v[..1]),
        SparseError::RowPtrLen {
            expected: 3,
            found: 2
        }
    );
    assert_eq!(
        e(&[], &[], &[]),
        SparseError::RowPtrLen {
            expected: 3,
            found: 0
        }
    );
    assert_eq!(
        e(&[1, 1, 1], &[0], &v[..1]),
        SparseError::RowPtrStart { found: 1 }
    );
    assert_eq!(
        e(&[0, 2, 1], &[0, 1], &v[..2]),
        SparseError::RowPtrDecreasing {
            row: 1,
            start: 2,
            end: 1
        }
    );
    assert_eq!(
        e(&[0, 5, 5], &[0, 1], &v[..2]),
        SparseError::RowPtrOverrun {
            row: 1,
            ptr: 5,
            len: 2
        }
    );
    assert_eq!(
        e(&[0, 1, u32::MAX], &[0, 1], &v[..2]),
        SparseError::RowPtrOverrun {
            row: 2,
            ptr: u32::MAX,
            len: 2
        }
    );
    assert_eq!(
        e(&[0, 1, 1], &[0, 1], &v[..2]),
        SparseError::RowPtrEnd { end: 1, len: 2 }
    );
    assert_eq!(
        e(&[0, 2, 3], &[1, 0, 2], &v),
        SparseError::ColumnsUnsorted {
            row: 0,
            pos: 1,
            prev: 1,
            col: 0
        }
    );
    assert_eq!(
        e(&[0, 2, 3], &[1, 1, 2], &v),
        SparseError::ColumnsUnsorted {
            row: 0,
            pos: 1,
            prev: 1,
            col: 1
        }
    );
    assert_eq!(
        e(&[0, 1, 3], &[1, 2, 4], &v),
        SparseError::ColumnOutOfRange {
            row: 1,
            pos: 2,
            col: 4,
            bound: 4
        }
    );
    assert_eq!(
        e(&[0, 1, 2], &[1, 2], &v),
        SparseError::ValuesLen {
            expected: 2,
            found: 3
        }
    );
    assert!(matches!(
        Csr::<i8>::new(usize::MAX, 2, &[], &[], &[]),
        Err(SparseError::TooLarge { .. })
    ));
}

#[test]
fn malformed_bsr_is_an_error() {
    let b = BlockShape::new(2, 4);
    let v = [1i8; 24];
    // 3 x 9 matrix: 2 block rows, 3 block columns.
    let e = |rp: &[u32], ci: &[u32], n: usize| Bsr::new(3, 9, b, rp, ci, &v[..n]).unwrap_err();
    assert_eq!(
        e(&[0, 1], &[0], 8),
        SparseError::RowPtrLen {
            expected: 3,
            found: 2
        }
    );
    assert_eq!(
        e(&[0, 1, 2], &[0, 3], 16),
        SparseError::ColumnOutOfRange {
            row: 1,
            pos: 1,
            col: 3,
            bound: 3
        }
    );
    assert_eq!(
        e(&[0, 2, 2], &[2, 1], 16),
        SparseError::ColumnsUnsorted {
            row: 0,
            pos: 1,
            prev: 2,
            col: 1
        }
    );
    assert_eq!(
        e(&[0, 1, 2], &[0, 1], 15),
        SparseError::ValuesLen {
            expected: 16,
            found: 15
        }
    );
    assert_eq!(
        e(&[0, 3, 2], &[0, 1], 16),
        SparseError::RowPtrOverrun {
            row: 1,
            ptr: 3,
            len: 2
        }
    );
    assert_eq!(
        Bsr::new(3, 9, BlockShape::new(0, 4), &[0], &[], &v[..0]).unwrap_err(),
        SparseError::BadBlockShape { r: 0, c: 4 }
    );
    // Errors render with the numbers.
    let msg = e(&[0, 1, 2], &[0, 3], 16).to_string();
    assert!(msg.contains('3') && msg.contains("out of range"), "{msg}");
}

/// Random corruption of valid structures never panics: validation either accepts (and then
/// decoding stays in bounds) or rejects.
#[test]
fn fuzzed_structures_never_panic() {
    let mut rng = Rng(3);
    for _ in 0..2000 {
        let (rows, cols, dense, keep) = random_case(&mut rng);
        let blk = BlockShape::new(1 + rng.below(4), 1 + rng.below(4));
        let m = BsrMatrix::from_dense(&dense, rows, cols, blk, &keep).unwrap();
        let (mut rp, mut ci, mut vals) = (
            m.block_row_ptr.clone(),
            m.block_col_idx.clone(),
            m.values.clone(),
        );
        match rng.below(4) {
            0 if !rp.is_empty() => {
                let i = rng.below(rp.len());
                rp[i] = rng.below(8) as u32;
            }
            1 if !ci.is_empty() => {
                let i = rng.below(ci.len());
                ci[i] = rng.below(8) as u32;
            }
            2 => {
                vals.truncate(rng.below(vals.len() + 1));
            }
            _ => {
                ci.push(rng.below(8) as u32);
            }
        }
        if let Ok(v) = Bsr::new(rows, cols, blk, &rp, &ci, &vals) {
            assert_eq!(v.to_dense().len(), rows * cols);
        }
        if let Ok(v) = Csr::new(rows, cols, &rp, &ci, &vals) {
            assert_eq!(v.to_dense().len(), rows * cols);
        }
    }
}
