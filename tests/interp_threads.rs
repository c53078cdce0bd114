//! Outputs are identical, bit for bit, for every thread count.

mod common;

use common::*;
use sparq::{Interpreter, Model, Options};

#[test]
fn outputs_identical_for_1_2_3_threads() {
    let mut rng = Rng(3);
    let def = small_cnn(&mut rng);
    let model = Model::from_def(&def).unwrap();
    let keep = vec!["c1".to_string(), "pw".to_string(), "mean".to_string()];
    let mut reference: Option<Vec<Vec<u8>>> = None;
    for threads in [1, 2, 3] {
        let mut it = Interpreter::new(
            &model,
            Options {
                threads,
                keep: keep.clone(),
                ..Options::default()
            },
        )
        .unwrap();
        assert_eq!(it.threads(), threads);
        let mut outs = Vec::new();
        for sample in 0..3 {
            let x = Rng(100 + sample).vec_f32(32 * 32 * 3);
            it.set_input(0, &x).unwrap();
            it.invoke().unwrap();
            outs.push(it.output_bytes(0).unwrap().to_vec());
            for name in &keep {
                outs.push(it.tensor(name).unwrap().1.to_vec());
            }
        }
        match &reference {
            None => reference = Some(outs),
            Some(r) => {
                for (i, (a, b)) in r.iter().zip(&outs).enumerate() {
                    assert!(
                        a == b,
                        "{threads} threads: tensor {i} differs from 1 thread"
                    );
                }
            }
        }
    }
}

#[test]
fn kept_intermediates_are_readable_and_others_are_not() {
    let mut rng = Rng(4);
    let def = small_cnn(&mut rng);
    let model = Model::from_def(&def).unwrap();
    let mut it = Interpreter::new(
        &model,
        Options {
            keep: vec!["mean".into()],
            ..Options::default()
        },
    )
    .unwrap();
    it.set_input(0, &rng.vec_f32(32 * 32 * 3)).unwrap();
    it.invoke().unwrap();
    let (info, bytes) = it.tensor("mean").unwrap();
    assert_eq!(info.shape, vec![1, 16]);
    assert_eq!(bytes.len(), 64);
    assert!(it.tensor("dw").is_err());
    assert!(it.tensor("nope").is_err());
    assert!(Interpreter::new(
        &model,
        Options {
            keep: vec!["nope".into()],
            ..Options::default()
        }
    )
    .is_err());
    // The softmax output sums to one.
    let p = it.output::<f32>(0).unwrap();
    assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
}

#[test]
fn repeated_invokes_give_the_same_output() {
    // Inputs set once must survive invoke: the arena never reuses their bytes.
    let mut rng = Rng(8);
    let def = small_cnn(&mut rng);
    let model = Model::from_def(&def).unwrap();
    let mut it = Interpreter::new(&model, Options::default()).unwrap();
    it.set_input(0, &rng.vec_f32(32 * 32 * 3)).unwrap();
    it.invoke().unwrap();
    let first = it.output_bytes(0).unwrap().to_vec();
    for _ in 0..3 {
        it.invoke().unwrap();
        assert_eq!(it.output_bytes(0).unwrap(), &first[..]);
    }
}
