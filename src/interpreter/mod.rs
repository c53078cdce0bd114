//! The interpreter: prepare (shapes, one arena, kernel choice, packing) and invoke.

pub mod arena;
