"""Export a trained pix2pix generator for servers and phones: SavedModel (TF Serving), LiteRT or ONNX.

    python -m pix2pix.export --task deblur --weights runs/pix2pix-deblur/best_generator.keras --out exported/deblur
    python -m pix2pix.export --task deblur --weights best_generator.keras --format onnx --out deblur.onnx

The U-Net works in [-1, 1]; `pix2pix.serving.unit_range_model` wraps it so that every artifact maps [0,1] photos to
[0,1] (for ldr2hdr: linear HDR values, unclipped in the float signatures). The export runs the generator
with its moving statistics and without dropout/noise (deterministic). See `common.export_cli` for the
formats, the parity check and the model card.
"""
import argparse

from common.cli import console_script
from common.export_cli import add_export_arguments, command_line, run_export
from pix2pix.loading import load_generator
from pix2pix.serving import unit_range_model
from pix2pix.tasks import TASKS, get_task


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pix2pix.export", description=__doc__.split("\n")[0])
    parser.add_argument("--task", required=True, choices=tuple(TASKS))
    parser.add_argument("--weights", required=True, help="generator .keras file from a pix2pix run")
    add_export_arguments(parser)
    args = parser.parse_args(argv)
    settings = get_task(args.task).settings()
    generator = load_generator(args.weights, args.task)
    output = "[0, 1]" if settings.target_range == "symmetric" else "linear HDR"
    run_export(unit_range_model(generator, settings.target_range), args, source=args.weights,
               architecture=f"pix2pix U-Net for {args.task} ({generator.count_params():,} parameters), output {output}",
               command=command_line("pix2pix.export", argv))
    return 0


cli = console_script(main)


if __name__ == "__main__":
    cli()
