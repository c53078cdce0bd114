//! Conversion into sparq's format: the TFLite importer and its working graph.

pub mod error;
pub mod fold;
pub mod graph;
pub mod sparse;
pub mod tflite;

pub use error::ImportError;
pub use graph::Graph;

/// Reads, validates and folds a `.tflite` model into the importer's graph.
pub fn read_tflite(file: &[u8]) -> Result<Graph, ImportError> {
    let mut g = tflite::read(file)?;
    fold::fold(&mut g)?;
    Ok(g)
}
