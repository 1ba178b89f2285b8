"""Export a DPED generator for servers and phones: SavedModel (TF Serving), LiteRT or ONNX, checked against Keras.

    python -m dped.export --pretrained iphone --out exported/iphone
    python -m dped.export --weights iphone.keras --format litert --quantize dynamic-int8 --out iphone.tflite
    python -m dped.export --original-checkpoint models_orig/iphone_orig --format litert --mobile ai-challenge \
        --out iphone_ai_challenge.tflite

The generator maps [0,1] photos to [0,1]; see `common.export_cli` for the formats, the parity check and
the model card written beside each artifact.
"""
import argparse

from common.cli import console_script
from common.enhance_cli import add_source_flags, chosen_source
from common.export_cli import add_export_arguments, command_line, run_export
from dped.loading import KERAS_SOURCES


def describe(model):
    """One line: the DPED generator's width, residual blocks and parameter count."""
    width = int(model.get_layer("conv1").filters)
    blocks = sum(1 for layer in model.layers if layer.name.endswith("_add"))
    return f"DPED residual generator, width {width}, {blocks} residual blocks, {model.count_params():,} parameters"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m dped.export", description=__doc__.split("\n")[0])
    add_source_flags(parser, KERAS_SOURCES)
    add_export_arguments(parser)
    args = parser.parse_args(argv)
    source, value = chosen_source(args, KERAS_SOURCES)
    model = source.load(value)
    run_export(model, args, source=f"{source.flag} {value}", architecture=describe(model),
               command=command_line("dped.export", argv))
    return 0


cli = console_script(main)


if __name__ == "__main__":
    cli()
