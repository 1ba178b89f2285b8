"""Export a DPED generator for servers and phones: SavedModel (TF Serving), LiteRT or ONNX, checked against Keras.

    python -m dped.export --pretrained iphone --out exported/iphone
    python -m dped.export --weights iphone.keras --format litert --quantize dynamic-int8 --out iphone.tflite
    python -m dped.export --original-checkpoint models_orig/iphone_orig --format litert --mobile ai-challenge \
        --out iphone_ai_challenge.tflite

The generator maps [0,1] photos to [0,1]; see `common.export_cli` for the formats, the parity check and
the model card written beside each artifact.
"""
import argparse

from common.cli import quiet_tensorflow, run_cli


def load_source(weights=None, original_checkpoint=None, pretrained=None):
    """(generator, description of its source) from exactly one of the three sources."""
    from common.errors import PhotoEnhanceError
    from common.pretrained import PRETRAINED, pretrained_checkpoint

    if sum(bool(s) for s in (weights, original_checkpoint, pretrained)) != 1:
        raise PhotoEnhanceError("give exactly one of --weights, --original-checkpoint, --pretrained")
    if weights:
        from dped.models import load_generator

        return load_generator(weights), str(weights)
    from dped.convert_original import load_original_checkpoint

    if pretrained:
        prefix = pretrained_checkpoint(pretrained)
        return load_original_checkpoint(prefix), f"{pretrained} ({PRETRAINED[pretrained].base_url}{prefix.name})"
    return load_original_checkpoint(original_checkpoint), f"TF1 checkpoint {original_checkpoint}"


def describe(model):
    """One line: the DPED generator's width, residual blocks and parameter count."""
    width = int(model.get_layer("conv1").filters)
    blocks = sum(1 for layer in model.layers if layer.name.endswith("_add"))
    return f"DPED residual generator, width {width}, {blocks} residual blocks, {model.count_params():,} parameters"


def main(argv=None):
    quiet_tensorflow()
    from common.export_cli import add_export_arguments, command_line, run_export
    from common.pretrained import PRETRAINED

    parser = argparse.ArgumentParser(prog="python -m dped.export", description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--weights", help="generator file (.keras or .weights.h5)")
    source.add_argument("--original-checkpoint", help="the authors' TF1 checkpoint prefix, e.g. iphone_orig")
    source.add_argument("--pretrained", choices=sorted(PRETRAINED), help="the authors' model, fetched once")
    add_export_arguments(parser)
    args = parser.parse_args(argv)

    model, source_text = load_source(args.weights, args.original_checkpoint, args.pretrained)
    run_export(model, args, source=source_text, architecture=describe(model),
               command=command_line("dped.export", argv))
    return 0


if __name__ == "__main__":
    run_cli(main)
