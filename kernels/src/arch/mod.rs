//! Per-architecture kernels, one module per ISA family, each tier in its own folder.

#[cfg(target_arch = "x86_64")]
pub mod x86_64;
