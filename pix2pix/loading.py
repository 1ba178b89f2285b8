"""Loading a pix2pix generator for a task: the family and task on record checked, an old file (no record)
checked by its output layer (a ReLU output serves linear HDR tasks, a tanh output the others), and a
saved U-Net core (`pix2pix.models.unet_core`, multiples of 2**depth only) wrapped to take any size."""
import pix2pix.layers  # noqa: F401  (registers the U-Net's custom layers for deserialisation)
from common import generators
from pix2pix.models import any_size
from pix2pix.tasks import get_task

OUTPUT_KINDS = {"relu": "an HDR (ReLU output)", "tanh": "a [0, 1] (tanh output)"}


def load_generator(path, task):
    """The `.keras` pix2pix generator at `path`, checked to serve `task`; `CheckpointError` naming the file."""
    wanted = get_task(task).settings().output_activation

    def fits(model):
        names = {layer.name for layer in model.layers}
        found = next((a for a in OUTPUT_KINDS if f"output_{a}" in names), wanted)
        return None if found == wanted else f"is {OUTPUT_KINDS[found]} generator and cannot serve the {task} task"

    return any_size(generators.load_generator(path, family="pix2pix", task=task, fits=fits))
