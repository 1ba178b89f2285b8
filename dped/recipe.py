"""DPED as a training recipe: its settings, data, GAN and export, for the application in `common.trainer`."""
import argparse
import os
import pathlib
import sys

from common import config, data, training
from common.demo_data import build_demo_dped
from common.errors import PhotoEnhanceError
from common.export import export_saved_model
from common.pretrained import PRETRAINED, PretrainedUnavailable, pretrained_checkpoint
from common.trainer import Recipe
from common.vgg import DPED_CONTENT_LAYERS, loss_features
from datasets.dped import data_sources
from dped import models
from dped.convert_original import load_original_checkpoint
from dped.config import DEMO, DEMO_DATASET, PHONES, DPEDSettings
from dped.gan import DPEDGAN, resolve_loss_weights

DATA_ENV = "DPED_DIR"
VAL_BATCH = 50
DESCRIPTION = "Train DPED (Ignatov et al. 2017) on the DPED dataset (or your own camera's, same layout)."
EPILOG = f"""data (--data-dir, default ${DATA_ENV} or ./dped): the DPED layout
  dped/<phone>/training_data/{{<phone>,canon}}/<i>.jpg and dped/<phone>/test_data/patches/{{<phone>,canon}}/<i>.jpg
  (the folder holding dped/, dped/ itself or dped/<phone>/); build one from your own photos with
  python -m datasets.build_dped. --demo builds a small offline one from scikit-image's photos."""


class DPEDData:
    """The training pairs (folder or TFDS) and the validation set of one DPED run."""

    def __init__(self, settings, root):
        self.root = root
        self.tfds = settings.tfds
        if self.tfds:
            self.sources = data_sources(settings.phone, root, settings.tfds_data_dir)
            self.n_train = len(self.sources["train"])
        else:
            self.train_dirs = data.dped_folders(root, settings.phone, "train")
            self.test_dirs = data.dped_folders(root, settings.phone, "test")
            files_a, files_b, report = data.scan_pairs(*data.paired_files(*self.train_dirs),
                                                       min_size=(settings.patch_size,) * 2)
            self.files, self.managed = (files_a, files_b), report.managed  # scanned once, not per restart
            self.n_test = len(data.paired_files(*self.test_dirs)[0])
            self.n_train = len(files_a)

    def describe(self):
        return f"{self.root}: train {self.n_train} pairs" + ("" if self.tfds else f", test {self.n_test} pairs")


def initialise(generator, source, notes):
    """Copy the weights of the generator at `source` (a .keras file, a TF1 checkpoint prefix or the name of
    one of the authors' models) into `generator`; refuses a source of another width or depth, naming both."""
    if source in PRETRAINED:
        start = load_original_checkpoint(pretrained_checkpoint(source))
    elif pathlib.Path(source).suffix == ".keras":
        start = models.load_generator(source)
    else:
        start = load_original_checkpoint(source)
    shapes = lambda m: [tuple(w.shape) for w in m.weights]  # noqa: E731
    if shapes(start) != shapes(generator):
        raise PhotoEnhanceError(f"--init-from {source}: its generator ({start.count_params():,} parameters) does not "
                                f"match --width/--blocks ({generator.count_params():,}); give the source's values")
    generator.set_weights(start.get_weights())
    notes.append(f"generator initialised from {source}")


def demo_start(given):
    """Where `--demo` starts when no `--init-from` is given: the authors' model of `--phone` when it is cached
    or can be fetched (a few hundred steps from it learn the demo camera; from scratch they do not beat the
    input), else nothing, with a note saying why."""
    if "init_from" in given:
        return given["init_from"]
    phone = given.get("phone", DPEDSettings.phone)
    if phone not in PHONES:
        reason = f"the authors have no model for --phone {phone}"
    elif any(given.get(k, getattr(DPEDSettings, k)) != getattr(DPEDSettings, k) for k in ("width", "blocks")):
        reason = "--width/--blocks differ from the authors' models"
    else:
        try:
            pretrained_checkpoint(phone)
            return phone
        except PretrainedUnavailable as exc:
            reason = str(exc)
    print(f"note: --demo trains from scratch, which in its few steps does not beat the input: {reason}",
          file=sys.stderr)
    return None


class DPEDRecipe(Recipe):
    family = "dped"
    settings_class = DPEDSettings

    def parser(self):
        p = argparse.ArgumentParser(prog="python -m dped.train", description=DESCRIPTION, epilog=EPILOG,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        shown = {k: f"{getattr(DPEDSettings, k)}; demo {v}" for k, v in DEMO.items()}
        shown["init_from"] = "None; demo: the authors' model of --phone when cached or downloadable"
        return config.add_flags(p, DPEDSettings, shown)

    def settings(self, given, args):
        demo = {**DEMO, "init_from": demo_start(given)} if given.get("demo") else {}
        return config.layered(DPEDSettings, demo, given)

    def check(self, settings, given):
        if settings.patch_size < 32:
            raise PhotoEnhanceError(f"--patch-size must be at least 32 (the texture discriminator's 4 strided "
                                    f"convs), got {settings.patch_size}")
        if settings.texture_warmup < 0 or settings.texture_warmup >= settings.iterations:
            raise PhotoEnhanceError(f"--texture-warmup {settings.texture_warmup} must be in 0..{settings.iterations - 1}"
                                    f" (--iterations {settings.iterations}): the texture term would never act")
        if "tfds_data_dir" in given and not settings.tfds:
            raise PhotoEnhanceError("--tfds-data-dir applies to --tfds runs only")
        weights = resolve_loss_weights(settings.loss_preset, **settings.loss_overrides())
        if "vgg_weights" in given and weights["content"] == 0:
            raise PhotoEnhanceError("--vgg-weights has no effect with a content weight of 0")

    def default_out(self, settings):
        return f"runs/dped-{settings.phone}{'-demo' if settings.demo else ''}"

    def open_data(self, settings, run):
        if settings.demo:
            root = pathlib.Path(settings.data_dir) if settings.data_dir else run / "demo_data"
            root = build_demo_dped(root, phone=settings.phone, seed=settings.seed, **DEMO_DATASET)
        else:
            root = pathlib.Path(settings.data_dir or os.environ.get(DATA_ENV) or "dped")
        return DPEDData(settings, root)

    def build(self, settings, notes):
        weights = resolve_loss_weights(settings.loss_preset, **settings.loss_overrides())
        vgg = None
        if weights["content"]:
            vgg = loss_features(DPED_CONTENT_LAYERS, settings.vgg_weights, optional=settings.demo, notes=notes,
                                same_pooling=True)
        else:
            notes.append("content loss disabled (content weight 0)")
        if vgg is None:
            weights["content"] = 0.0
        generator = models.build_generator(width=settings.width, num_blocks=settings.blocks)
        if settings.init_from:
            initialise(generator, settings.init_from, notes)
        gan = DPEDGAN(generator,
                      models.build_discriminator(patch_size=settings.patch_size, logits=True), vgg,
                      loss_weights=weights, texture_warmup=settings.texture_warmup, same_batch=settings.same_batch,
                      seed=settings.seed, from_logits=True)
        mixed = training.mixed_precision_on()
        gan.compile(training.make_adam(settings.lr, mixed=mixed, name="g_adam"),
                    training.make_adam(settings.lr, mixed=mixed, name="d_adam"), jit_compile=settings.jit_compile)
        return gan

    def apply_settings(self, gan, settings):
        weights = resolve_loss_weights(settings.loss_preset, **settings.loss_overrides())
        gan.set_loss_weights(**{**weights, "content": weights["content"] if gan.vgg is not None else 0.0})
        gan.texture_warmup = settings.texture_warmup
        training.set_learning_rate((gan.g_optimizer, gan.d_optimizer), settings.lr)

    def train_batches(self, d, settings, step):
        batching = dict(seed=settings.seed, start_step=step, patch_size=settings.patch_size,
                        batches_per_step=1 if settings.same_batch else 2)
        if d.tfds:
            return data.tfds_pair_batches(d.sources["train"], settings.batch_size, **batching)
        return data.random_pair_batches(*d.files, settings.batch_size, validate=False, managed=d.managed,
                                        **batching)

    def validation_set(self, d, settings):
        batch = min(settings.batch_size, VAL_BATCH)
        if d.tfds:
            ds = data.tfds_pair_dataset(d.sources["test"], batch_size=batch)
        else:
            ds = data.paired_folder_dataset(*d.test_dirs, batch_size=batch)
        return ds.unbatch().take(settings.val_limit).batch(batch) if settings.val_limit else ds

    def export(self, generator, settings, folder):
        export_saved_model(generator, folder)

    def data_record(self, d):
        return {"train_pairs": d.n_train}

    def summary(self, gan, settings, data, callbacks):
        return {"content_loss": "enabled" if gan.vgg is not None else "disabled",
                "loss_weights": {k: float(v.numpy()) for k, v in gan.loss_weights.items()}}
