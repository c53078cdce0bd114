//! `sparq-convert` end to end: converts, prints the summary, refuses what is not implemented,
//! and ends bad input with a one-line error and a non-zero exit code.

mod import_util;

use std::process::{Command, Output};

use import_util::*;

fn convert(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sparq-convert"))
        .args(args)
        .output()
        .expect("run sparq-convert")
}

fn tmp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("sparq-convert-test-{}-{name}", std::process::id()))
}

fn one_line_error(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "expected one line, got {err:?}"
    );
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn converts_and_summarizes() {
    let input = fixtures().join("tflite/digits_cnn_p90_float32_sparse.tflite");
    let out = tmp("p90.sparq");
    let o = convert(&[
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--quantize",
        "keep",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "operators: 8",
        "Conv2d x2",
        "parameters:",
        "bytes:",
        "before",
        "after",
        "csr",
    ] {
        assert!(text.contains(needle), "summary lacks {needle:?}:\n{text}");
    }
    assert!(text.contains("90.3% zero"), "{text}");
    let model = sparq::Model::open(&out).expect("the written .sparq opens");
    assert_eq!(model.operators().len(), 8);
    std::fs::remove_file(&out).ok();
}

#[test]
fn unimplemented_passes_are_refused() {
    let input = fixtures().join("tflite/digits_mlp_float32.tflite");
    let out = tmp("never.sparq");
    for extra in [
        &["--quantize", "int8"][..],
        &["--quantize", "float16"],
        &["--prune", "0.5"],
        &["--block", "1x4"],
        &["--sparse", "csr"],
        &["--per-tensor"],
        &["--calibration", "dir"],
    ] {
        let mut args = vec![input.to_str().unwrap(), "-o", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = convert(&args);
        assert_eq!(o.status.code(), Some(2), "{extra:?}");
        let err = one_line_error(&o);
        assert!(err.contains("not implemented yet"), "{extra:?}: {err}");
        assert!(!out.exists(), "{extra:?} wrote a file");
    }
}

#[test]
fn bad_input_is_one_line_and_nonzero() {
    let out = tmp("bad.sparq");
    let o = convert(&["/nonexistent/model.tflite", "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    one_line_error(&o);

    let corrupt = tmp("corrupt.tflite");
    let mut bytes = fixture("digits_mlp_float32");
    bytes.truncate(200);
    std::fs::write(&corrupt, &bytes).unwrap();
    let o = convert(&[corrupt.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(one_line_error(&o).contains("not a valid TFLite model"));

    let mut m = fc_model(3, 4, Buf::Inline(f32_bytes(&[0.0; 12])), None);
    m.codes = vec![(32, 32, Some("MyCustomOp".into()))];
    m.ops[0].options = Opt::None;
    std::fs::write(&corrupt, build(&m)).unwrap();
    let o = convert(&[corrupt.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = one_line_error(&o);
    assert!(
        err.contains("operator 0") && err.contains("MyCustomOp"),
        "{err}"
    );
    assert!(!out.exists());
    std::fs::remove_file(&corrupt).ok();

    let o = convert(&["only-input.tflite"]);
    assert_eq!(o.status.code(), Some(2));
}
