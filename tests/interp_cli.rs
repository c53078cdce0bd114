//! `sparq-run` on the committed digits fixtures: outputs written as .npy match the library,
//! --json is one object, and bad input ends with a one-line error and a non-zero exit code.

use std::path::{Path, PathBuf};
use std::process::Command;

use sparq::npy::NpyArray;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn runner() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sparq-run"))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sparq-cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

#[test]
fn runs_a_tflite_and_writes_outputs() {
    let model = fixtures().join("tflite/digits_cnn_int8.tflite");
    let input = fixtures().join("io/digits_cnn_int8/input.npy");
    let out = tmp("out.npy");
    let o = runner()
        .arg(&model)
        .args([
            "--input".as_ref(),
            input.as_os_str(),
            "--output".as_ref(),
            out.as_os_str(),
        ])
        .args(["--threads", "2", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8(o.stdout).unwrap();
    assert_eq!(stdout.trim().lines().count(), 1, "{stdout}");
    assert!(
        stdout.trim().starts_with('{') && stdout.trim().ends_with('}'),
        "{stdout}"
    );
    let got = NpyArray::read(&out).unwrap();
    let want = NpyArray::read(fixtures().join("io/digits_cnn_int8/out_ref.npy")).unwrap();
    assert_eq!(got.data, want.data);
}

#[test]
fn bench_and_profile_print_numbers() {
    let model = fixtures().join("tflite/digits_mlp_float32.tflite");
    let o = runner()
        .arg(&model)
        .args([
            "--bench",
            "--runs",
            "3",
            "--warmup",
            "1",
            "--profile",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = String::from_utf8(o.stdout).unwrap();
    for key in [
        "\"load_ms\"",
        "\"prepare_ms\"",
        "\"min_ms\"",
        "\"p50_ms\"",
        "\"p90_ms\"",
        "\"p99_ms\"",
        "\"profile\"",
    ] {
        assert!(s.contains(key), "missing {key} in {s}");
    }
}

#[test]
fn bad_input_is_a_one_line_error() {
    let model = fixtures().join("tflite/digits_cnn_float32.tflite");
    let wrong_shape = tmp("wrong.npy");
    NpyArray::from_f32(vec![1, 5], &[0.0; 5])
        .unwrap()
        .write(&wrong_shape)
        .unwrap();
    let garbage = tmp("garbage.tflite");
    std::fs::write(&garbage, b"not a model at all").unwrap();
    let cases: Vec<Vec<std::ffi::OsString>> = vec![
        vec!["/nonexistent/model.tflite".into()],
        vec![garbage.clone().into()],
        vec![
            model.clone().into(),
            "--input".into(),
            wrong_shape.clone().into(),
        ],
        vec![
            model.clone().into(),
            "--input".into(),
            "/nonexistent.npy".into(),
        ],
        vec![model.clone().into(), "--threads".into(), "0".into()],
        vec![
            model.clone().into(),
            "--output-tensor".into(),
            "no such tensor".into(),
        ],
        vec![model.clone().into(), "--bogus".into()],
    ];
    for args in cases {
        let o = runner().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("sparq-run:"), "{args:?}: {err}");
    }
}

#[test]
fn no_model_runs_the_bundled_demo() {
    let o = runner().output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = String::from_utf8(o.stdout).unwrap();
    for v in [
        "float32",
        "float16 weights",
        "int8",
        "sparse f32",
        "sparse int8",
    ] {
        assert!(s.contains(v), "demo misses {v}: {s}");
    }
}
