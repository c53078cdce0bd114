#!/usr/bin/env bash
# Regenerates the TFLite fixtures under tests/fixtures/:
#   tflite/digits_*.tflite       every digits model of the zoo (MLP and CNN, all variants; small)
#   io/digits_*/*.npy            their LiteRT inputs and reference outputs
#   digits_test_{x,y}.npy        the digits test split
#   tflite/shape_chain_float32.tflite + io/shape_chain_float32/  (tools/make_shape_chain.py;
#                                needs TensorFlow + ai-edge-litert, skipped when missing)
#   tflite/movement_{float32,int8}.tflite + io/movement_*/  (tools/make_movement_models.py;
#                                same requirement)
# The zoo is found through SPARQ_ZOO (default ../shared/zoo from the workspace root).
set -euo pipefail
cd "$(dirname "$0")/.."
zoo="${SPARQ_ZOO:-../shared/zoo}"
[ -d "$zoo/models" ] || { echo "zoo not found at $zoo (set SPARQ_ZOO)" >&2; exit 1; }

fx=tests/fixtures
mkdir -p "$fx/tflite" "$fx/io"
rm -f "$fx"/tflite/digits_*.tflite
rm -rf "$fx"/io/digits_*
for m in "$zoo"/models/digits_*.tflite; do
    name=$(basename "$m" .tflite)
    cp "$m" "$fx/tflite/"
    mkdir -p "$fx/io/$name"
    cp "$zoo/io/$name"/*.npy "$fx/io/$name/"
done
cp "$zoo/digits_test_x.npy" "$zoo/digits_test_y.npy" "$fx/"
chmod -R u+w "$fx"

if python3 -c "import tensorflow, ai_edge_litert" 2>/dev/null; then
    python3 tools/make_shape_chain.py "$fx"
    python3 tools/make_movement_models.py "$fx"
else
    echo "TensorFlow / ai-edge-litert missing: kept the committed shape_chain and movement fixtures" >&2
fi
du -sh "$fx"
