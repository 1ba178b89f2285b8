"""A pix2pix generator as every runtime sees it: [0, 1] photos in, [0, 1] photos (or linear HDR) out.

The U-Net works in [-1, 1]; this wrapper is the model family's value-range boundary for exports, so
`common.export` never needs to know the range.
"""
import keras

from common.export import export_saved_model


def unit_range_model(generator, target_range="symmetric"):
    """A functional Keras model: [0,1] photo -> generator in [-1,1] -> [0,1] output (linear HDR values
    pass through when `target_range` is "linear")."""
    inputs = keras.Input((None, None, int(generator.input_shape[-1])), name="images")
    x = keras.layers.Rescaling(2.0, offset=-1.0, name="to_symmetric")(inputs)
    y = generator(x, training=False)
    if target_range == "symmetric":
        y = keras.layers.Rescaling(0.5, offset=0.5, name="to_unit")(y)
    return keras.Model(inputs, y, name=f"{generator.name}_unit_range")


def export_generator(generator, out_dir, *, target_range="symmetric", version=None):
    """SavedModel of a trained generator (the task's `target_range`: "symmetric" or "linear") in `out_dir`
    (or `out_dir/<version>/`): what a training run writes into its run folder. Returns the folder."""
    return export_saved_model(unit_range_model(generator, target_range), out_dir, version=version)
