#!/usr/bin/env bash
# The one test command (README.md, .ci/run). Runs the workspace tests, the kernel tests once per
# x86 ISA tier (SPARQ_ISA caps the dispatch), the kernel tests under qemu-x86_64 (an AVX2 CPU
# without AVX-512), and the kernel tests for aarch64 under qemu (with dotprod + i8mm, and plain NEON).
# Set SPARQ_REQUIRE_CROSS=1 to fail (not skip) when the aarch64 toolchain or qemu is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== workspace tests (best ISA)"
cargo test --workspace --all-targets

echo "== kernel tests per x86 ISA tier"
for isa in scalar avx2; do
    echo "-- SPARQ_ISA=$isa"
    SPARQ_ISA=$isa cargo test -p sparq-kernels --lib --tests
done

# CPUID as a real AVX2-without-AVX-512 machine reports it (not only the SPARQ_ISA cap): detection
# and the AVX2 paths under qemu's x86 emulation.
if command -v qemu-x86_64 >/dev/null; then
    echo "== kernel tests, x86-64 under qemu -cpu max (AVX2, no AVX-512)"
    CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="qemu-x86_64 -cpu max" \
        cargo test -p sparq-kernels --lib
elif [ "${SPARQ_REQUIRE_CROSS:-0}" = 1 ]; then
    echo "qemu-x86_64 missing (SPARQ_REQUIRE_CROSS=1)" >&2
    exit 1
fi

have_cross=1
command -v qemu-aarch64 >/dev/null || have_cross=0
command -v aarch64-linux-gnu-gcc >/dev/null || have_cross=0
rustup target list --installed 2>/dev/null | grep -q aarch64-unknown-linux-gnu || have_cross=0
if [ "$have_cross" = 1 ]; then
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
    for cpu in max cortex-a53; do
        echo "== kernel tests, aarch64 under qemu -cpu $cpu"
        CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu $cpu" \
            cargo test -p sparq-kernels --target aarch64-unknown-linux-gnu --lib --tests
    done
elif [ "${SPARQ_REQUIRE_CROSS:-0}" = 1 ]; then
    echo "aarch64 cross toolchain or qemu-aarch64 missing (SPARQ_REQUIRE_CROSS=1)" >&2
    exit 1
else
    echo "== skipped aarch64 tests: install gcc-aarch64-linux-gnu, qemu-user and the rustup target"
fi
echo "== all tests passed"
