"""Import the DPED authors' TF1 generator checkpoints (e.g. `models_orig/iphone_orig`) into Keras.

The checkpoint holds `generator/W1..WN` (HWIO kernels), `generator/b1..bN` and the instance-norm
parameters as unnamed `generator/Variable_{2k}` (shift) / `generator/Variable_{2k+1}` (scale) for norm k,
in creation order (`Variable` is `Variable_0`). N = 2 * blocks + 4 and the width is W1's output channels,
so both the paper's network (12 convs, 64 wide) and the challenge's `resnet_8_32` are recognised.

    python -m dped.convert_original --checkpoint models_orig/iphone_orig --output iphone_orig.keras
"""
import argparse
import pathlib
import re

import tensorflow as tf

from common.cli import console_script
from common.enhance_cli import quiet_native_logs
from common.errors import CheckpointError
from dped.models import build_generator, save_generator

SCOPE = "generator/"


def _norm_variable(index):
    return SCOPE + ("Variable" if index == 0 else f"Variable_{index}")


def _open(prefix):
    prefix = str(prefix)
    if prefix.endswith(".index") or ".data-" in prefix:
        prefix = prefix.split(".index")[0].split(".data-")[0]
    if not pathlib.Path(prefix + ".index").is_file():
        raise CheckpointError(f"{prefix}: TF1 checkpoint not found (expected {prefix}.index and "
                              f"{prefix}.data-00000-of-00001, e.g. DPED's models_orig/iphone_orig)")
    try:
        return prefix, tf.train.load_checkpoint(prefix)
    except Exception as exc:  # corrupt or partial files surface as assorted TF errors.
        raise CheckpointError(f"{prefix}: cannot read the TF1 checkpoint ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0]})") from None


def load_original_checkpoint(prefix):
    """Build the matching `dped.models.build_generator` and fill it from the TF1 checkpoint at `prefix`."""
    prefix, reader = _open(prefix)
    shapes = reader.get_variable_to_shape_map()
    conv_ids = sorted(int(m.group(1)) for name in shapes if (m := re.fullmatch(SCOPE + r"W(\d+)", name)))
    if not conv_ids:
        raise CheckpointError(f"{prefix}: no generator/W<i> variables; not a DPED generator checkpoint")
    num_convs = len(conv_ids)
    if conv_ids != list(range(1, num_convs + 1)) or num_convs < 4 or num_convs % 2:
        raise CheckpointError(f"{prefix}: generator kernels W{conv_ids} do not form a DPED generator "
                              "(expected W1..WN with N = 2 * residual blocks + 4)")
    width = int(shapes[SCOPE + "W1"][-1])
    model = build_generator(width=width, num_blocks=(num_convs - 4) // 2)

    def fetch(name, layer_name, expected):
        if name not in shapes:
            raise CheckpointError(f"{prefix}: variable {name} (for layer {layer_name}) is missing")
        if tuple(shapes[name]) != tuple(expected):
            raise CheckpointError(f"{prefix}: variable {name} has shape {list(shapes[name])}, "
                                  f"layer {layer_name} expects {list(expected)}")
        return reader.get_tensor(name)

    for i in conv_ids:
        layer = model.get_layer(f"conv{i}")
        layer.set_weights([fetch(f"{SCOPE}W{i}", layer.name, layer.kernel.shape),
                           fetch(f"{SCOPE}b{i}", layer.name, layer.bias.shape)])
    for k in range(num_convs - 4):
        layer = model.get_layer(f"norm{k}")
        shift = fetch(_norm_variable(2 * k), layer.name, layer.beta.shape)
        scale = fetch(_norm_variable(2 * k + 1), layer.name, layer.gamma.shape)
        layer.set_weights([scale, shift])
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m dped.convert_original", description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, help="TF1 checkpoint prefix, e.g. models_orig/iphone_orig")
    parser.add_argument("--output", required=True, help="output generator file (.keras, recording the DPED "
                                                         "family, or .weights.h5)")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's own log lines")
    args = parser.parse_args(argv)
    with quiet_native_logs(args.verbose):
        model = load_original_checkpoint(args.checkpoint)
        path = save_generator(model, args.output)
    print(f"wrote {path} ({model.count_params():,} parameters)")
    return 0


cli = console_script(main)


if __name__ == "__main__":
    cli()
