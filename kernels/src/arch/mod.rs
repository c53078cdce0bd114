//! Per-architecture kernels, one module per ISA family, each tier in its own folder.

#[cfg(target_arch = "aarch64")]
pub mod aarch64;
#[cfg(target_arch = "x86_64")]
pub mod x86_64;
