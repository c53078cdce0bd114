//! The committed fixture `tests/fixtures/tiny.sparq` is exactly what the writer makes of
//! `sparq_schema::examples::tiny()`. Regenerate it with
//! `SPARQ_REGEN_FIXTURES=1 cargo test --test format_fixture`.

use std::path::PathBuf;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny.sparq")
}

#[test]
fn tiny_fixture_is_current() {
    let bytes = sparq_schema::write(&sparq_schema::examples::tiny()).unwrap();
    if std::env::var_os("SPARQ_REGEN_FIXTURES").is_some() {
        std::fs::write(fixture(), &bytes).unwrap();
    }
    let committed = std::fs::read(fixture()).expect("tests/fixtures/tiny.sparq");
    assert!(
        committed == bytes,
        "tests/fixtures/tiny.sparq is stale: run SPARQ_REGEN_FIXTURES=1 cargo test --test format_fixture"
    );
    let model = sparq::Model::open(fixture()).unwrap();
    assert_eq!(model.to_def(), sparq_schema::examples::tiny());
}
