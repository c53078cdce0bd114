//! sparq's file formats: the `.sparq` FlatBuffers schema (generated code), its writer, and the
//! subset of TFLite's schema that the importer reads.
