"""pix2pix as a training recipe: a task's settings and data, the U-Net/PatchGAN GAN and its export."""
import argparse
import pathlib
import sys

from common import config, training
from common.errors import PhotoEnhanceError
from common.trainer import Recipe
from common.vgg import PERCEPTUAL_LAYERS_003, loss_features
from pix2pix.config import DEMO, Pix2PixSettings
from pix2pix.gan import LOSS_WEIGHTS, Pix2Pix, tone_map
from pix2pix.models import build_patchgan, build_unet, unet_core
from pix2pix.serving import export_generator
from pix2pix.tasks import TASKS, get_task, pairs_dataset

DESCRIPTION = "Train pix2pix (U-Net + PatchGAN) on one task: phone2dslr, deblur, ldr2hdr, overexposure, paired."
DEMO_DATASET = {"n_train": 400, "n_test": 24}
VAL_BATCH = 16
VGG_TERMS = ("lambda_perceptual", "lambda_content")
EPILOG = "\n".join(["tasks (each module of pix2pix/tasks/ documents its preset and data layout):"]
                   + [f"  {name:13s} {task.description}" for name, task in TASKS.items()]
                   + ["flags left out keep the task's preset; --demo trains a CPU-sized run on offline data."])


def build_generator(settings):
    return build_unet(depth=settings.depth, base_filters=settings.base_filters, norm=settings.g_norm,
                      output_activation=settings.output_activation, dropout_blocks=settings.dropout_blocks,
                      spectral_norm=settings.spectral_norm, noise_injection=settings.noise_injection,
                      residual=settings.residual, seed=settings.seed)


def build_discriminator(settings):
    return build_patchgan(n_layers=settings.d_layers, base_filters=settings.base_filters, norm=settings.d_norm,
                          spectral_norm=settings.spectral_norm)


def loss_weights(settings, vgg):
    """The settings' loss weights; the VGG terms are 0 without a VGG feature model."""
    return {name: 0.0 if name in VGG_TERMS and vgg is None else float(getattr(settings, name))
            for name in LOSS_WEIGHTS}


def build_gan(settings, vgg):
    """The compiled `Pix2Pix` of the settings, with `vgg` (or None) for the perceptual and content terms."""
    gan = Pix2Pix(build_generator(settings), build_discriminator(settings), gan_loss=settings.gan_loss,
                  n_critic=settings.n_critic, vgg=vgg, perceptual_layers=list(range(len(PERCEPTUAL_LAYERS_003))),
                  content_layer=len(PERCEPTUAL_LAYERS_003) - 1, target_range=settings.target_range,
                  inference_mode=settings.inference_mode, seed=settings.seed,
                  global_batch_size=settings.batch_size, **loss_weights(settings, vgg))
    mixed = training.mixed_precision_on()
    g_opt = training.make_adam(settings.lr, settings.beta_1, settings.beta_2, mixed=mixed, name="g_adam")
    d_opt = training.make_adam(settings.lr, settings.beta_1, settings.beta_2, mixed=mixed, name="d_adam")
    gan.compile(g_opt, d_opt, jit_compile=settings.jit_compile)
    training.build_optimizers((g_opt, gan.generator), (d_opt, gan.discriminator))
    return gan


class Pix2PixRecipe(Recipe):
    family = "pix2pix"
    settings_class = Pix2PixSettings
    progress_keys = ("d_loss", "g_loss", "g_l1")

    def parser(self):
        p = argparse.ArgumentParser(prog="python -m pix2pix.train", description=DESCRIPTION, epilog=EPILOG,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--task", required=True, choices=tuple(TASKS), help="the task preset")
        shown = {f.name: "task preset" for f in Pix2PixSettings.__dataclass_fields__.values()
                 if any(f.name in t.preset for t in TASKS.values())}
        shown.update({k: f"{shown.get(k, getattr(Pix2PixSettings, k))}; demo {v}" for k, v in DEMO.items()})
        return config.add_flags(p, Pix2PixSettings, shown)

    def settings(self, given, args):
        return get_task(args.task).settings(DEMO if given.get("demo") else {}, given)

    def check(self, settings, given):
        task = get_task(settings.task)
        task.refuse_options(given)
        config.require_positive(settings, ("depth", "base_filters", "n_critic", "image_size"))
        if settings.depth < 2:
            raise PhotoEnhanceError(f"--depth must be at least 2, got {settings.depth}")
        if settings.image_size < 2 ** min(settings.depth, 5):
            raise PhotoEnhanceError(f"--image-size {settings.image_size} is too small for a useful "
                                    f"{settings.depth}-level U-Net (use at least {2 ** min(settings.depth, 5)})")
        if "demo_photos" in given and not settings.demo:
            raise PhotoEnhanceError("--demo-photos applies to --demo runs only")
        if "vgg_weights" in given and not any(getattr(settings, n) for n in VGG_TERMS):
            raise PhotoEnhanceError("--vgg-weights has no effect: the perceptual and content weights are 0")

    def default_out(self, settings):
        return f"runs/pix2pix-{settings.task}{'-demo' if settings.demo else ''}"

    def open_data(self, settings, run):
        task = get_task(settings.task)
        if settings.demo:
            root = pathlib.Path(settings.data_dir) if settings.data_dir else run / "demo_data"
            data_dir = task.prepare_demo(root, **DEMO_DATASET)
        elif settings.data_dir:
            data_dir = pathlib.Path(settings.data_dir)
        else:
            raise PhotoEnhanceError("give --data-dir DIR (see `python -m pix2pix.train --help` for the layouts) "
                                    "or --demo")
        td = task.open(settings, data_dir)
        if not td.splits["train"]:  # tasks may open their training split lazily (evaluation needs none)
            raise PhotoEnhanceError(f"{data_dir}: no training data for task {task.name}")
        if settings.demo_photos is not None:
            td.restrict_training(settings.demo_photos)
        td.validation = td.validation_pairs(limit=settings.val_limit)
        print(f"pix2pix {task.name}: {td.describe()}", file=sys.stderr)
        return td

    def build(self, settings, notes):
        vgg = None
        if any(getattr(settings, n) for n in VGG_TERMS):
            vgg = loss_features(PERCEPTUAL_LAYERS_003, settings.vgg_weights, optional=settings.demo, notes=notes,
                                terms="perceptual and content losses")
        return build_gan(settings, vgg)

    def apply_settings(self, gan, settings):
        try:
            gan.set_loss_weights(**loss_weights(settings, gan.vgg))
        except ValueError as exc:
            raise PhotoEnhanceError(f"--{str(exc).replace('_', '-')}") from None
        gan.inference_mode = settings.inference_mode
        training.set_learning_rate((gan.g_optimizer, gan.d_optimizer), settings.lr)

    def generator_task(self, settings):
        return settings.task

    def save_generator(self, generator, settings, path):
        """Save the U-Net core (`unet_core`: Keras layers only), which plain Keras loads; the project's
        loader wraps it back to any size."""
        super().save_generator(unet_core(generator), settings, path)

    def train_batches(self, td, settings, step):
        return td.train_batches(settings.batch_size, seed=settings.seed, start_step=step)

    def validation_set(self, td, settings):
        ds = pairs_dataset(td.validation, batch_size=min(settings.batch_size, VAL_BATCH))
        return ds.map(lambda x, y: (x, tone_map(y))) if settings.target_range == "linear" else ds

    def export(self, generator, settings, folder):
        export_generator(generator, folder, target_range=settings.target_range)

    def callbacks(self):
        self.timer = training.StepTimer()
        return [self.timer]

    def summary(self, gan, settings, td, callbacks):
        weights = gan.get_loss_weights()
        return {"task": settings.task, "loss_weights": weights, "step_time_s": self.timer.seconds_per_step(),
                "perceptual_loss": "enabled" if weights["lambda_perceptual"] else "disabled",
                "content_loss": "enabled" if weights["lambda_content"] else "disabled",
                "trainable_parameters": {"generator": training.count_trainable(gan.generator),
                                         "discriminator": training.count_trainable(gan.discriminator)}}
