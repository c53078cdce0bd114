"""Writes tests/fixtures/tflite/movement_{float32,int8}.tflite and their reference outputs.

One graph on a [1, 8, 8, 4] input with the data-movement operators the converter emits:
TRANSPOSE_CONV (stride 2, SAME, bias), RESIZE_BILINEAR (half-pixel centers and align_corners),
RESIZE_NEAREST_NEIGHBOR, DEPTH_TO_SPACE, SPACE_TO_DEPTH, TRANSPOSE, STRIDED_SLICE, GATHER, SPLIT,
PACK, CONCATENATION. `float32` as converted; `int8` full-integer (int8 I/O) from a representative
set. Outputs from LiteRT's reference kernels (`out{k}_ref.npy`). The reference kernels lack int8
DEPTH_TO_SPACE, so the int8 graph leaves it out. Needs TensorFlow and ai-edge-litert
(/work/shared/oracle/requirements.txt). Usage: python3 tools/make_movement_models.py OUT_DIR
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from ai_edge_litert.interpreter import Interpreter, OpResolverType  # noqa: E402

out_dir = sys.argv[1]
rng = np.random.default_rng(7)
w_t = tf.constant(rng.standard_normal((3, 3, 3, 4)).astype(np.float32) * 0.3)
b_t = tf.constant(rng.standard_normal((3,)).astype(np.float32) * 0.1)


def graph(x, with_d2s):
    tconv = tf.nn.conv2d_transpose(x, w_t, [1, 16, 16, 3], 2, "SAME") + b_t
    bil = tf.image.resize(x, [12, 10], "bilinear")
    bil_ac = tf.compat.v1.image.resize_bilinear(x, [5, 7], align_corners=True)
    near = tf.image.resize(x, [16, 12], "nearest")
    s2d = tf.nn.space_to_depth(x, 2)
    tr = tf.transpose(x, [0, 3, 1, 2])
    sl = x[:, 1:7:2, 2:, 1:3]
    ga = tf.gather(x, [3, 0, 2], axis=3)
    a, b = tf.split(x, 2, axis=3)
    pk = tf.stack([a, b], axis=1)
    cat = tf.concat([a * 3.0, b], axis=2)
    out = [tconv, bil, bil_ac, near, s2d, tr, sl, ga, pk, cat]
    if with_d2s:
        out.append(tf.nn.depth_to_space(x, 2))
    return out


spec = [tf.TensorSpec([1, 8, 8, 4], tf.float32)]
# LiteRT's reference kernels lack int8 DEPTH_TO_SPACE (version 2): the int8 model goes without.
f_float = tf.function(lambda x: graph(x, True), input_signature=spec)
f_int8 = tf.function(lambda x: graph(x, False), input_signature=spec)


def convert(int8):
    f = f_int8 if int8 else f_float
    conv = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
    if int8:
        def rep():
            for _ in range(32):
                yield [rng.standard_normal((1, 8, 8, 4)).astype(np.float32)]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = rep
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


x_float = rng.standard_normal((1, 8, 8, 4)).astype(np.float32)
for name, int8 in [("movement_float32", False), ("movement_int8", True)]:
    model = convert(int8)
    os.makedirs(os.path.join(out_dir, "tflite"), exist_ok=True)
    path = os.path.join(out_dir, "tflite", name + ".tflite")
    with open(path, "wb") as fh:
        fh.write(model)
    interp = Interpreter(model_path=path, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    x = x_float
    if int8:
        s, z = inp["quantization"]
        x = np.clip(np.round(x_float / s) + z, -128, 127).astype(np.int8)
    interp.set_tensor(inp["index"], x)
    interp.invoke()
    io = os.path.join(out_dir, "io", name)
    os.makedirs(io, exist_ok=True)
    np.save(os.path.join(io, "input.npy"), x)
    for k, d in enumerate(interp.get_output_details()):
        np.save(os.path.join(io, f"out{k}_ref.npy"), interp.get_tensor(d["index"]))
    print("wrote", path, [d["name"] for d in interp.get_output_details()])
