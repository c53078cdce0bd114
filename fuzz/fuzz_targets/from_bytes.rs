//! `Model::from_bytes` + validation on arbitrary bytes: it must return `Ok` or `Err`, never
//! panic, read out of bounds or allocate without bound. When a model opens, the guarantees the
//! interpreter relies on are checked, and writing it back must give a model that opens equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sparq::Model;

fuzz_target!(|data: &[u8]| {
    let Ok(model) = Model::from_bytes(data) else {
        return;
    };
    let n = model.tensors().len();
    for (i, t) in model.tensors().iter().enumerate() {
        assert_eq!(t.byte_size, t.num_elements * t.dtype.size_bytes());
        if let Some(d) = model.tensor_data(i) {
            assert_eq!(d.len(), t.byte_size);
        }
        if let Some(s) = model.sparse(i) {
            let (r, c) = s.block();
            let elem = t.dtype.size_bytes();
            assert_eq!(s.row_ptr.len(), s.rows.div_ceil(r) + 1);
            assert_eq!(*s.row_ptr.last().unwrap() as usize, s.col_idx.len());
            assert_eq!(s.values.len(), s.col_idx.len() * r * c * elem);
            for w in s.row_ptr.windows(2) {
                let row = &s.col_idx[w[0] as usize..w[1] as usize];
                assert!(row.windows(2).all(|p| p[0] < p[1]));
                assert!(row.iter().all(|&j| (j as usize) < s.cols.div_ceil(c)));
            }
        }
        assert_eq!(
            t.is_constant,
            model.tensor_data(i).is_some() || model.sparse(i).is_some()
        );
    }
    for op in model.operators() {
        assert!(op.inputs.iter().flatten().all(|&i| i < n));
        assert!(op
            .outputs
            .iter()
            .all(|&i| i < n && !model.tensors()[i].is_constant));
    }
    let def = model.to_def();
    let again = Model::from_def(&def).expect("a model that opened must survive a rewrite");
    assert_eq!(again.to_def(), def);
});
