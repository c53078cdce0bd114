"""Writes tests/fixtures/tflite/shape_chain_float32.tflite and its reference outputs.

A float model whose RESHAPE takes its shape from SHAPE -> STRIDED_SLICE -> PACK on a dynamic
batch (the pattern the TF converter emits for `tf.reshape(x, [tf.shape(x)[0], -1])`), followed by
a FULLY_CONNECTED. Needs TensorFlow and ai-edge-litert (/work/shared/oracle/requirements.txt).
Usage: python3 tools/make_shape_chain.py OUT_DIR
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from ai_edge_litert.interpreter import Interpreter, OpResolverType  # noqa: E402

out_dir = sys.argv[1]
rng = np.random.default_rng(0)
w = tf.constant(rng.standard_normal((32, 3)).astype(np.float32))


@tf.function(input_signature=[tf.TensorSpec([None, 4, 4, 2], tf.float32)])
def f(x):
    n = tf.shape(x)[0]
    y = tf.reshape(x, tf.stack([n, 32]))
    return tf.matmul(y, w)


conv = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
model = conv.convert()
os.makedirs(os.path.join(out_dir, "tflite"), exist_ok=True)
path = os.path.join(out_dir, "tflite", "shape_chain_float32.tflite")
with open(path, "wb") as fh:
    fh.write(model)

x = rng.standard_normal((1, 4, 4, 2)).astype(np.float32)
interp = Interpreter(model_path=path, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
interp.allocate_tensors()
interp.set_tensor(interp.get_input_details()[0]["index"], x)
interp.invoke()
y = interp.get_tensor(interp.get_output_details()[0]["index"])
io = os.path.join(out_dir, "io", "shape_chain_float32")
os.makedirs(io, exist_ok=True)
np.save(os.path.join(io, "input.npy"), x)
np.save(os.path.join(io, "out_ref.npy"), y)
print("wrote", path)
