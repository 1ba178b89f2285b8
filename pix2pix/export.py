"""Export a trained pix2pix generator for servers and phones: SavedModel (TF Serving), LiteRT or ONNX.

    python -m pix2pix.export --task deblur --weights runs/pix2pix-deblur/best_generator.keras --out exported/deblur
    python -m pix2pix.export --task deblur --weights best_generator.keras --format onnx --out deblur.onnx

The U-Net works in [-1, 1]; `unit_range_model` wraps it so that every artifact maps [0,1] photos to
[0,1] (for ldr2hdr: linear HDR values, unclipped in the float signatures). The export runs the generator
with its moving statistics and without dropout/noise (deterministic). See `common.export_cli` for the
formats, the parity check and the model card.
"""
import argparse

from common.cli import quiet_tensorflow, run_cli

TASKS = ("phone2dslr", "deblur", "ldr2hdr", "overexposure")


def unit_range_model(generator, target_range="symmetric"):
    """A functional Keras model: [0,1] photo -> generator in [-1,1] -> [0,1] output (linear HDR values
    pass through when `target_range` is "linear")."""
    import keras

    inputs = keras.Input((None, None, int(generator.input_shape[-1])), name="images")
    x = keras.layers.Rescaling(2.0, offset=-1.0, name="to_symmetric")(inputs)
    y = generator(x, training=False)
    if target_range == "symmetric":
        y = keras.layers.Rescaling(0.5, offset=0.5, name="to_unit")(y)
    return keras.Model(inputs, y, name=f"{generator.name}_unit_range")


def export_generator(generator, out_dir, *, target_range="symmetric", version=None):
    """SavedModel of a trained generator (the task's `target_range`: "symmetric" or "linear") in `out_dir`
    (or `out_dir/<version>/`): what a training run writes into its run folder. Returns the folder."""
    from common.export import export_saved_model

    return export_saved_model(unit_range_model(generator, target_range), out_dir, version=version)


def main(argv=None):
    quiet_tensorflow()
    from common.export_cli import add_export_arguments, command_line, run_export

    parser = argparse.ArgumentParser(prog="python -m pix2pix.export", description=__doc__.split("\n")[0])
    parser.add_argument("--task", required=True, choices=TASKS)
    parser.add_argument("--weights", required=True, help="generator .keras file from a pix2pix run")
    add_export_arguments(parser)
    args = parser.parse_args(argv)
    from pix2pix.gan import load_generator
    from pix2pix.tasks import get_task

    task = get_task(args.task)
    generator = load_generator(args.weights)
    run_export(unit_range_model(generator, task.target_range), args, source=args.weights,
               architecture=f"pix2pix U-Net for {task.name} ({generator.count_params():,} parameters), "
                            f"output {'[0, 1]' if task.target_range == 'symmetric' else 'linear HDR'}",
               command=command_line("pix2pix.export", argv))
    return 0


if __name__ == "__main__":
    run_cli(main)
