//! Conversion into sparq's format: the TFLite importer, its working graph and folding passes.
//!
//! `import_tflite` = read (verify + validate) → fold (float16 DEQUANTIZE, DENSIFY, static shape
//! chains) → map to [`ModelDef`](sparq_schema::ModelDef).

pub mod error;
pub mod fold;
pub mod graph;
pub mod sparse;
pub mod summary;
pub mod tflite;
pub mod to_def;

pub use error::ImportError;
pub use graph::Graph;

/// Reads, validates and folds a `.tflite` model into the importer's graph.
pub fn read_tflite(file: &[u8]) -> Result<Graph, ImportError> {
    let mut g = tflite::read(file)?;
    fold::fold(&mut g)?;
    Ok(g)
}

/// Imports a `.tflite` model (subgraph 0) as a sparq model description, ready for
/// [`sparq_schema::write`] or [`crate::Model::from_def`]. The file is untrusted: any
/// inconsistency is an error naming the tensor or operator.
pub fn import_tflite(file: &[u8]) -> crate::Result<sparq_schema::ModelDef> {
    let g = read_tflite(file)?;
    Ok(to_def::to_model_def(&g)?)
}
