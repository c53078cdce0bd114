//! Folding of shape arithmetic (STRIDED_SLICE / PACK on constants) on hand-built models: TFLite's
//! slice semantics, and a bound on what folding may allocate.

mod import_util;

use import_util::*;
use sparq::convert::read_tflite;
use sparq_schema::tflite::{BuiltinOperator as B, TensorType};

const I32: TensorType = TensorType::INT32;

/// x = [10, 11, 12, 13, 14]; y = x[begin:end:stride] with the given masks, then PACK([y]) so the
/// slice is not a graph output (graph outputs are never folded).
fn slice_model(begin: i32, end: i32, stride: i32, opt: Opt, out_shape: &[i32]) -> M {
    let mut packed = vec![1];
    packed.extend_from_slice(out_shape);
    M {
        codes: vec![(45, 45, None), (83, 83, None), (22, 22, None)],
        tensors: vec![
            T::new("x", &[5], I32, 1),
            T::new("begin", &[1], I32, 2),
            T::new("end", &[1], I32, 3),
            T::new("strides", &[1], I32, 4),
            T::new("y", out_shape, I32, 0),
            T::new("packed", &packed, I32, 0),
            T::new("in", &[1, 1, 1, 1, 1], TensorType::FLOAT32, 0),
            T::new("out", &[5], TensorType::FLOAT32, 0),
        ],
        ops: vec![
            Op {
                opcode: 0,
                inputs: vec![0, 1, 2, 3],
                outputs: vec![4],
                options: opt,
            },
            Op {
                opcode: 1,
                inputs: vec![4],
                outputs: vec![5],
                options: Opt::Pack { axis: 0, count: 1 },
            },
            Op {
                opcode: 2,
                inputs: vec![6, 5],
                outputs: vec![7],
                options: Opt::None,
            },
        ],
        inputs: vec![6],
        outputs: vec![7],
        buffers: vec![
            Buf::Empty,
            Buf::Inline(i32_bytes(&[10, 11, 12, 13, 14])),
            Buf::Inline(i32_bytes(&[begin])),
            Buf::Inline(i32_bytes(&[end])),
            Buf::Inline(i32_bytes(&[stride])),
        ],
        version: 3,
    }
}

fn folded_slice(begin: i32, end: i32, stride: i32, bm: i32, em: i32, shrink: i32) -> Vec<i32> {
    let opt = Opt::StridedSlice {
        begin_mask: bm,
        end_mask: em,
        shrink_axis_mask: shrink,
    };
    let g = read_tflite(&build(&slice_model(begin, end, stride, opt, &[1]))).unwrap();
    let names: Vec<String> = g.ops.iter().map(|o| o.name()).collect();
    assert_eq!(
        names,
        ["RESHAPE"],
        "slice [{begin}:{end}:{stride}] not folded"
    );
    let shape = &g.tensors[g.ops[0].inputs[1] as usize];
    shape
        .data
        .as_ref()
        .unwrap()
        .chunks(4)
        .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

#[test]
fn strided_slice_follows_tflite() {
    assert_eq!(folded_slice(1, 3, 1, 0, 0, 0), [11, 12]);
    assert_eq!(folded_slice(-2, 5, 1, 0, 0, 0), [13, 14]);
    assert_eq!(folded_slice(0, 0, 2, 1, 1, 0), [10, 12, 14]); // both masks
    assert_eq!(folded_slice(4, 0, -1, 0, 0, 0), [14, 13, 12, 11]);
    assert_eq!(folded_slice(0, 0, -2, 1, 1, 0), [14, 12, 10]);
    assert_eq!(folded_slice(2, 100, 1, 0, 0, 0), [12, 13, 14]); // clamped
    assert_eq!(folded_slice(3, 1, 1, 0, 0, 0), Vec::<i32>::new());
    assert_eq!(folded_slice(-1, 0, 1, 0, 0, 1), [14]); // shrink: a scalar
}

#[test]
fn oversized_pack_is_left_to_the_interpreter() {
    // PACK of 100 copies of a 1000-element constant, then a PACK of that: folding would build
    // 100 000 elements (and a chain of such packs grows without bound), so it is not folded.
    let c = vec![7i32; 1000];
    let m = M {
        codes: vec![(83, 83, None)],
        tensors: vec![
            T::new("c", &[1000], I32, 1),
            T::new("p1", &[100, 1000], I32, 0),
            T::new("p2", &[1, 100, 1000], I32, 0),
        ],
        ops: vec![
            Op {
                opcode: 0,
                inputs: vec![0; 100],
                outputs: vec![1],
                options: Opt::Pack {
                    axis: 0,
                    count: 100,
                },
            },
            Op {
                opcode: 0,
                inputs: vec![1],
                outputs: vec![2],
                options: Opt::Pack { axis: 0, count: 1 },
            },
        ],
        inputs: vec![],
        outputs: vec![2],
        buffers: vec![Buf::Empty, Buf::Inline(i32_bytes(&c))],
        version: 3,
    };
    let g = read_tflite(&build(&m)).unwrap();
    assert_eq!(g.ops.len(), 2);
    assert!(g.ops.iter().all(|o| o.code == B::PACK));
    assert!(g.tensors[1].data.is_none());
}

#[test]
fn slice_with_a_mismatched_output_type_is_not_folded() {
    // An int32 slice declared as f16 output (found by fuzzing): folding would store int32 bytes
    // under an f16 tensor, so the op is left for the interpreter to reject.
    let opt = Opt::StridedSlice {
        begin_mask: 0,
        end_mask: 0,
        shrink_axis_mask: 0,
    };
    let mut m = slice_model(1, 3, 1, opt, &[2]);
    m.tensors[4].ty = TensorType::FLOAT16;
    m.tensors[5].ty = TensorType::FLOAT16;
    let g = read_tflite(&build(&m)).unwrap();
    assert!(g.ops.iter().any(|o| o.code == B::STRIDED_SLICE));
    if let Ok(def) = sparq::convert::import_tflite(&build(&m)) {
        sparq::Model::from_def(&def).expect("an imported model is valid");
    }
}
