"""Task presets reproducing the pix2pix seeds, and each task's data: training batches, evaluation pairs, demo.

- `phone2dslr` (seed 000): DPED pairs resized to 64x64; 6-level U-Net (one dropout block), instance norm
  in D, WGAN with weight clipping, G = 2 * (3 perceptual + 0.15 colour + 17 content) + adversarial, batch
  32, Adam 2e-4 (0.5, 0.99), no L1.
- `deblur` (seed 000): clean photos blurred with a Gaussian of sigma 1 on the fly, 256 crops, colour
  jitter; 8-level U-Net, BCE cGAN + 100 L1 + 1 perceptual, batch 8, Adam 2e-4 (0.5, 0.99); optional
  contrast stretch (10, 240) afterwards.
- `ldr2hdr` (seed 000): scene folders with -2/0/+2 exposures and an HDR image, 256x256, test scenes
  unseen; ReLU output, instance norm in G and D, BCE + 100 L1.
- `overexposure` (seed 003): clean photos overexposed in linear light (tau 0.5, or uniform in [0.5, 1]);
  5-level U-Net (receptive field 126 px; seed 003 found ~140 px best, with a 70 px D), LSGAN, spectral
  norm in G and D, noise injection, 50 L1 + 100 perceptual (5 VGG-19 layers, each normalised by size).

Data layouts (`--data-dir`):
- phone2dslr: the DPED dataset (`dped/<phone>/training_data/{<phone>,canon}`, `test_data/patches/...`);
  the test patches are split in two halves, validation (first) and test (second).
- deblur, overexposure: clean photos, either in `train/` (+ optional `val/`, `test/`) sub-folders or in one
  flat folder, which is then split by a seeded shuffle into 80 % train, 10 % val, 10 % test.
- ldr2hdr: one folder per scene holding `ev-2.*`, `ev0.*`, `ev+2.*` (8-bit photos) and `hdr.hdr` or
  `hdr.exr`; scenes directly in the folder (split by scene: 20 of every 176 scenes for test as in seed
  000, the rest 80:20 train/val) or already split in `train/` and `test/`. Each exposure with the scene's
  HDR image is one training pair. HDR targets are scaled per scene so that 1.0 is the white of the 0 EV
  photo (the scale is fitted on its well-exposed pixels in linear light), so values above 1 are the
  highlights the photo clipped; metrics compare `x / (1 + x)` tone maps.

All images are float32 in [0, 1] (HDR targets: linear, >= 0); `Pix2Pix` converts to [-1, 1].
"""
import dataclasses
import pathlib
import re

import numpy as np
import tensorflow as tf

from common import data as D
from common.degradations import contrast_stretch, gaussian_blur, overexpose, random_tau
from common.errors import DataLayoutError, DatasetNotFoundError, PhotoEnhanceError
from common.images import IMAGE_EXTENSIONS, list_images, read_image, write_image
from common.vgg import DPED_CONTENT_LAYERS, PERCEPTUAL_LAYERS_003
from pix2pix import baselines
from pix2pix.hdr import HDR_EXTENSIONS, read_hdr, write_radiance
from pix2pix.models import build_patchgan, build_unet

# VGG-19 layers of the perceptual term (seed 003's five, one per scale); the last is relu5_4, which is
# also DPED's content layer, so one VGG pass serves both terms.
PERCEPTUAL_LAYERS = PERCEPTUAL_LAYERS_003
assert PERCEPTUAL_LAYERS[-1] == DPED_CONTENT_LAYERS[0]
GAMMA = 2.2
EXPOSURES = (-2, 0, 2)
DEMO_SIZE = 256


@dataclasses.dataclass(frozen=True)
class Task:
    """One preset: architecture, loss weights, optimiser and data settings (override with `replace`)."""

    name: str
    description: str
    seed_paper: str
    # generator / discriminator
    depth: int = 8
    base_filters: int = 64
    g_norm: str = "batch"
    d_norm: str = "batch"
    d_layers: int = 3
    output_activation: str = "tanh"
    dropout_blocks: int = 3
    spectral_norm: bool = False
    noise_injection: bool = False
    residual: bool = False
    # objective
    gan_loss: str = "bce"
    n_critic: int = 1
    lambda_adv: float = 1.0
    lambda_l1: float = 100.0
    lambda_perceptual: float = 0.0
    lambda_color: float = 0.0
    lambda_content: float = 0.0
    # optimisation
    learning_rate: float = 2e-4
    beta_1: float = 0.5
    beta_2: float = 0.999
    batch_size: int = 1
    iterations: int = 100_000
    # data
    image_size: int = 256
    flip: bool = True
    color_augment: bool = False
    blur_sigma: float = 1.0
    tau: float = 0.5
    random_tau: bool = False
    inference_mode: str = "moving"
    postprocess: str = "none"
    reported: str = ""

    @property
    def target_range(self):
        return "symmetric" if self.output_activation == "tanh" else "linear"

    def build_generator(self, seed=None):
        return build_unet(depth=self.depth, base_filters=self.base_filters, norm=self.g_norm,
                          output_activation=self.output_activation, dropout_blocks=self.dropout_blocks,
                          spectral_norm=self.spectral_norm, noise_injection=self.noise_injection,
                          residual=self.residual, seed=seed)

    def build_discriminator(self):
        return build_patchgan(n_layers=self.d_layers, base_filters=self.base_filters, norm=self.d_norm,
                              spectral_norm=self.spectral_norm)

    # --- synthetic degradations ---------------------------------------------------------------------
    def degrade(self, clean, seed):
        """The task's synthetic input for a clean [0, 1] batch (deblur, overexposure), keyed on `seed`."""
        if self.name == "deblur":
            return gaussian_blur(clean, self.blur_sigma)
        if self.name == "overexposure":
            return overexpose(clean, self.taus(tf.shape(clean)[0], seed))
        raise PhotoEnhanceError(f"task {self.name} has no synthetic degradation")

    def taus(self, n, seed):
        if self.random_tau:
            return random_tau(n, 0.5, 1.0, seed=seed)
        return tf.fill([n], tf.constant(self.tau, tf.float32))

    def postprocess_output(self, image):
        """Optional post-processing of a [0, 1] output (seed 000's contrast stretch for deblurring)."""
        if self.postprocess == "contrast_stretch":
            return np.asarray(contrast_stretch(np.asarray(image, np.float32), 10, 240))
        return image

    def baseline(self, condition, meta):
        """The classical method's answer for one [H, W, 3] input (see `pix2pix.baselines`)."""
        if self.name == "deblur":
            return baselines.deblur_baseline(condition, self.blur_sigma)
        if self.name == "overexposure":
            return baselines.overexposure_baseline(condition, meta["tau"], GAMMA)
        if self.name == "ldr2hdr":
            return baselines.ldr_to_linear(condition, GAMMA)
        return baselines.identity_baseline(condition)


TASKS = {
    "phone2dslr": Task(
        name="phone2dslr", seed_paper="000",
        description="phone photo -> DSLR photo on DPED patches resized to 64x64",
        depth=6, dropout_blocks=1, d_norm="instance", gan_loss="wgan", lambda_l1=0.0,
        lambda_perceptual=6.0, lambda_color=0.3, lambda_content=34.0, beta_2=0.99, batch_size=32,
        iterations=93_700, image_size=64, flip=False,
        reported="seed 000: no improvement over the phone photos (misaligned patches)"),
    "deblur": Task(
        name="deblur", seed_paper="000",
        description="remove a Gaussian blur (sigma 1) from DSLR photos, 256x256 crops",
        lambda_perceptual=1.0, beta_2=0.99, batch_size=8, iterations=100_000, color_augment=True,
        reported="seed 000: blurred 22.68 dB / SSIM 0.7028 -> generated 20.32 dB / 0.8600"),
    "ldr2hdr": Task(
        name="ldr2hdr", seed_paper="000",
        description="one LDR exposure (-2/0/+2 EV) -> the scene's HDR image, 256x256",
        g_norm="instance", d_norm="instance", output_activation="relu", iterations=100_000,
        reported="seed 000: LDR 19.10 dB / SSIM 0.864 / UQI 0.9741 -> generated 23.94 / 0.902 / 0.9947"),
    "overexposure": Task(
        name="overexposure", seed_paper="003",
        description="undo overexposure simulated in linear light (gamma 2.2, clip at tau)",
        depth=5, spectral_norm=True, noise_injection=True, gan_loss="lsgan", lambda_l1=50.0,
        lambda_perceptual=100.0, batch_size=4, iterations=100_000,
        reported="seed 003: reports histogram similarity of luminance/contrast/saturation, not PSNR"),
}


def get_task(name, **overrides):
    """The preset `name` with the given fields replaced (None values are ignored)."""
    if name not in TASKS:
        raise PhotoEnhanceError(f"unknown task {name!r}; choose from {', '.join(TASKS)}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = [k for k in overrides if k not in {f.name for f in dataclasses.fields(Task)}]
    if unknown:
        raise PhotoEnhanceError(f"unknown task setting(s) {unknown}")
    return dataclasses.replace(TASKS[name], **overrides)


# ------------------------------------------------------------------------------------------------ splits
def _seeded_split(items, seed, n_val, n_test):
    """Seeded shuffle of `items` into (train, val, test) lists, each sorted."""
    order = [items[i] for i in np.random.default_rng(seed).permutation(len(items))]
    test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    return sorted(train), sorted(val), sorted(test)


def _data_folder(data_dir):
    root = pathlib.Path(data_dir).expanduser()
    if not root.is_dir():
        raise DatasetNotFoundError(f"{root}: {'not a folder' if root.exists() else 'data folder not found'}")
    return root


def clean_photo_splits(data_dir, seed=0):
    """{"train", "val", "test"} lists of clean photos (see the module docstring for the layouts)."""
    root = _data_folder(data_dir)
    if (root / "train").is_dir():
        splits = {"train": list_images(root / "train")}
        for name in ("val", "test"):
            splits[name] = list_images(root / name) if (root / name).is_dir() else []
        if not splits["val"]:
            splits["val"] = splits["test"]
        if not splits["test"]:
            splits["test"] = splits["val"]
        if not splits["train"] or not splits["val"]:
            raise DataLayoutError(f"{root}: need photos in train/ and in val/ or test/ (found "
                                  f"{len(splits['train'])} and {len(splits['val'])})")
        return {k: [str(p) for p in v] for k, v in splits.items()}
    files = [str(p) for p in list_images(root)]
    if len(files) < 3:
        raise DataLayoutError(f"{root}: need at least 3 photos (or train/ and test/ sub-folders), found {len(files)}")
    n_hold = max(1, round(0.1 * len(files)))
    train, val, test = _seeded_split(files, seed, n_hold, n_hold)
    return {"train": train, "val": val, "test": test}


# --------------------------------------------------------------------------------------------- HDR scenes
@dataclasses.dataclass(frozen=True)
class Scene:
    name: str
    ldr: dict  # exposure (EV) -> path
    hdr: str


_EV_NAME = re.compile(r"^ev([+-]?\d+)$", re.IGNORECASE)


def read_scene(folder):
    """A scene folder -> `Scene`, or a `DataLayoutError` naming what is missing."""
    folder = pathlib.Path(folder)
    ldr, hdr = {}, []
    for p in folder.iterdir():
        if p.suffix.lower() in HDR_EXTENSIONS and p.stem.lower() == "hdr":
            hdr.append(p)
        elif p.suffix.lower() in IMAGE_EXTENSIONS and (m := _EV_NAME.match(p.stem)):
            ldr[int(m.group(1))] = str(p)
    missing = [f"ev{e:+d}".replace("+0", "0") for e in EXPOSURES if e not in ldr]
    if missing or len(hdr) != 1:
        what = ([f"LDR exposure(s) {', '.join(missing)}"] if missing else []) + \
               (["an hdr.hdr or hdr.exr file"] if not hdr else ["only one HDR file"] if len(hdr) > 1 else [])
        raise DataLayoutError(f"{folder}: scene folder needs {' and '.join(what)} "
                              "(files ev-2.jpg, ev0.jpg, ev+2.jpg and hdr.hdr)")
    return Scene(folder.name, {e: ldr[e] for e in EXPOSURES}, str(hdr[0]))


def _scene_folders(root):
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def split_scenes(names, n_test=None, val_fraction=0.2, seed=0):
    """Split scene names so test scenes are never trained on: `n_test` (default 20 per 176, seed 000) test
    scenes, then `val_fraction` of the rest for validation. Returns {"train", "val", "test"}."""
    names = sorted(names)
    n_test = n_test if n_test is not None else max(1, round(len(names) * 20 / 176))
    if len(names) < n_test + 2:
        raise DataLayoutError(f"need at least {n_test + 2} scenes to split into train/val/test, found {len(names)}")
    n_val = max(1, round((len(names) - n_test) * val_fraction))
    train, val, test = _seeded_split(names, seed, n_val, n_test)
    return {"train": train, "val": val, "test": test}


def hdr_scene_splits(data_dir, seed=0):
    """{"train", "val", "test"} lists of `Scene`s (the test scenes are disjoint from train and val)."""
    root = _data_folder(data_dir)
    if (root / "train").is_dir() and (root / "test").is_dir():
        by_name = {p.name: p for p in _scene_folders(root / "train")}
        names = split_scenes(list(by_name), n_test=0, seed=seed)
        splits = {"train": [read_scene(by_name[n]) for n in names["train"]],
                  "val": [read_scene(by_name[n]) for n in names["val"]],
                  "test": [read_scene(p) for p in _scene_folders(root / "test")]}
    else:
        dirs = {p.name: p for p in _scene_folders(root)}
        if not dirs:
            raise DataLayoutError(f"{root}: no scene folders (each with ev-2/ev0/ev+2 photos and hdr.hdr)")
        names = split_scenes(list(dirs), seed=seed)
        splits = {k: [read_scene(dirs[n]) for n in v] for k, v in names.items()}
    if not splits["test"]:
        raise DataLayoutError(f"{root}: no test scenes")
    return splits


def hdr_scale(hdr, ldr0, gamma=GAMMA):
    """Factor that puts `hdr` on the scale of the 0 EV photo's linear light (1.0 = its white).

    Fitted on the photo's well-exposed values (in [0.05, 0.95], channel by channel) as
    sum(linear) / sum(hdr); a photo with fewer than 16 falls back to the ratio of the means.
    """
    linear = np.power(ldr0, gamma)
    mask = (ldr0 > 0.05) & (ldr0 < 0.95)
    if mask.sum() >= 16 and hdr[mask].sum() > 0:
        return float(linear[mask].sum() / hdr[mask].sum())
    return float(linear.mean() / max(hdr.mean(), 1e-8))


def _resize(image, size):
    return tf.image.resize(image, (size, size), method="area").numpy()


def load_scene_pairs(scenes, size):
    """(inputs [3S, size, size, 3], targets [3S, ...], metas) for the scenes: one pair per exposure."""
    inputs, targets, metas = [], [], []
    for scene in scenes:
        hdr = read_hdr(scene.hdr)
        ldr = {e: read_image(p).astype(np.float32) / 255.0 for e, p in scene.ldr.items()}
        shapes = {tuple(x.shape[:2]) for x in [hdr, *ldr.values()]}
        if len(shapes) != 1:
            raise DataLayoutError(f"{pathlib.Path(scene.hdr).parent}: the exposures and the HDR image differ in size "
                                  f"({sorted(shapes)})")
        target = _resize(hdr * hdr_scale(hdr, ldr[0]), size)
        for e in EXPOSURES:
            inputs.append(np.clip(_resize(ldr[e], size), 0.0, 1.0))
            targets.append(np.maximum(target, 0.0))
            metas.append({"name": f"{scene.name}_ev{e:+d}", "scene": scene.name, "ev": e})
    return np.stack(inputs).astype(np.float32), np.stack(targets).astype(np.float32), metas


def array_pair_batches(inputs, targets, batch_size, *, seed, start_step=0, flip=True):
    """Infinite batches of random in-memory pairs; batch k depends only on `(seed, start_step + k)`."""
    n = len(inputs)

    def draw(step):
        rng = np.random.default_rng([seed, int(step)])
        index = rng.integers(0, n, batch_size)
        x, y = inputs[index], targets[index]
        if flip:
            mirror = rng.random(batch_size) < 0.5
            x = np.where(mirror[:, None, None, None], x[:, :, ::-1], x)
            y = np.where(mirror[:, None, None, None], y[:, :, ::-1], y)
        return x.astype(np.float32), y.astype(np.float32)

    shape = (batch_size,) + inputs.shape[1:]
    ds = tf.data.Dataset.counter(start_step).map(
        lambda s: tf.numpy_function(draw, [s], (tf.float32, tf.float32)))
    ds = ds.map(lambda x, y: (tf.ensure_shape(x, shape), tf.ensure_shape(y, shape)))
    return ds.prefetch(tf.data.AUTOTUNE)


# ------------------------------------------------------------------------------------------ task data
class TaskData:
    """A task's data in one folder: `train_batches(...)`, `pairs(split)` (numpy evaluation pairs)."""

    def __init__(self, task, data_dir, *, phone="iphone", split_seed=0, eval_seed=1234):
        self.task = task
        self.data_dir = pathlib.Path(data_dir).expanduser()
        self.phone = phone
        self.split_seed = split_seed
        self.eval_seed = eval_seed
        self._cache = {}
        if task.name == "phone2dslr":
            train = D.paired_files(*D.dped_folders(self.data_dir, phone, "train"))
            test = D.paired_files(*D.dped_folders(self.data_dir, phone, "test"))
            half = max(1, len(test[0]) // 2)
            self.splits = {"train": train, "val": (test[0][:half], test[1][:half]),
                           "test": (test[0][half:], test[1][half:]) if len(test[0]) > 1 else test}
        elif task.name == "ldr2hdr":
            self.splits = hdr_scene_splits(self.data_dir, seed=split_seed)
        else:
            self.splits = clean_photo_splits(self.data_dir, seed=split_seed)

    def describe(self):
        sizes = {k: len(v[0]) if self.task.name == "phone2dslr" else len(v) for k, v in self.splits.items()}
        unit = "scenes" if self.task.name == "ldr2hdr" else "pairs" if self.task.name == "phone2dslr" else "photos"
        return f"{self.data_dir}: " + ", ".join(f"{k} {n} {unit}" for k, n in sizes.items())

    def train_batches(self, batch_size, *, seed, start_step=0, image_size=None):
        """Infinite `(input, target)` training batches keyed on `(seed, step)`, starting at `start_step`."""
        t = self.task
        size = image_size or t.image_size
        if t.name == "phone2dslr":
            a, b = self.splits["train"]
            return D.random_pair_batches(a, b, batch_size, seed=seed, start_step=start_step, resize=(size, size),
                                         flip=t.flip, color_augment=t.color_augment)
        if t.name == "ldr2hdr":
            x, y, _ = self._scene_arrays("train", size)
            return array_pair_batches(x, y, batch_size, seed=seed, start_step=start_step, flip=t.flip)
        return D.synthetic_pair_dataset(self.splits["train"], t.degrade, batch_size, seed=seed, crop_size=size,
                                        flip=t.flip, color_augment=t.color_augment, start_step=start_step)

    def _scene_arrays(self, split, size):
        key = (split, size)
        if key not in self._cache:
            self._cache[key] = load_scene_pairs(self.splits[split], size)
        return self._cache[key]

    def pairs(self, split, *, image_size=None, limit=None):
        """Evaluation pairs of `split` as a list of `(input, target, meta)` float32 numpy images.

        phone2dslr and ldr2hdr use the task's fixed size (64 / 256); synthetic tasks keep the photo's
        own size unless `image_size` asks for a centre crop. Synthetic inputs are keyed on
        `(eval_seed, index)`, so every evaluation sees the same degradations (and the same random tau).
        """
        t = self.task
        out = []
        if t.name == "phone2dslr":
            size = image_size or t.image_size
            a, b = self.splits[split]
            for pa, pb in list(zip(a, b))[:limit]:
                x, y = (_resize(read_image(p).astype(np.float32) / 255.0, size) for p in (pa, pb))
                out.append((np.clip(x, 0, 1), np.clip(y, 0, 1), {"name": pathlib.Path(pa).stem}))
            return out
        if t.name == "ldr2hdr":
            x, y, metas = self._scene_arrays(split, image_size or t.image_size)
            return [(x[i], y[i], metas[i]) for i in range(len(metas))][:limit]
        for i, path in enumerate(self.splits[split][:limit]):
            clean = read_image(path).astype(np.float32) / 255.0
            if image_size:
                h, w = clean.shape[:2]
                if min(h, w) < image_size:
                    raise DataLayoutError(f"{path}: {h}x{w} is smaller than the crop {image_size}")
                top, left = (h - image_size) // 2, (w - image_size) // 2
                clean = clean[top:top + image_size, left:left + image_size]
            seed = tf.constant([self.eval_seed, i], tf.int64)
            degraded = self.task.degrade(clean[None], seed)[0].numpy()
            meta = {"name": pathlib.Path(path).stem}
            if t.name == "overexposure":
                meta["tau"] = float(self.task.taus(1, seed)[0])
            out.append((degraded, clean, meta))
        return out


def pairs_dataset(pairs, batch_size=1):
    """A finite tf.data of `(input, target)` batches from equal-size evaluation pairs (validation)."""
    x = np.stack([p[0] for p in pairs])
    y = np.stack([p[1] for p in pairs])
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


# ------------------------------------------------------------------------------------------------- demo
def build_demo_hdr(root, n_crops=4, size=256, seed=0):
    """Write HDR-like demo scenes from the bundled photos: `<root>/{train,test}/<photo>_<k>/`.

    Each crop's linear light `x**2.2` is expanded above 1 as `L / (1 - 0.8 L)` (an inverse Reinhard
    curve: white becomes 5, the darks barely change) to play the radiance; the three exposures are
    `clip(radiance * 2**ev, 0, 1) ** (1/2.2)` saved as 8-bit PNGs, the radiance as `hdr.hdr`. Test scenes
    come from other photos than the training scenes. Reused when already complete.
    """
    from common.demo_data import TEST_PHOTOS, _named_photos

    root = pathlib.Path(root).expanduser()
    marker = root / ".demo_hdr_complete"
    if marker.is_file() and marker.read_text() == f"{n_crops},{size},{seed}":
        return root
    rng = np.random.default_rng(seed)
    for name, photo in _named_photos().items():
        split = "test" if name in TEST_PHOTOS else "train"
        image = photo.astype(np.float32) / 255.0
        short = min(image.shape[:2])
        if short < size:
            image = tf.image.resize(image, [round(image.shape[0] * size / short),
                                            round(image.shape[1] * size / short)], antialias=True).numpy()
        for k in range(n_crops):
            top = rng.integers(0, image.shape[0] - size + 1)
            left = rng.integers(0, image.shape[1] - size + 1)
            crop = np.clip(image[top:top + size, left:left + size], 0.0, 1.0)
            linear = np.power(crop, GAMMA)
            radiance = linear / (1.0 - 0.8 * linear)
            folder = root / split / f"{name}_{k}"
            for ev in EXPOSURES:
                ldr = np.power(np.clip(radiance * 2.0 ** ev, 0.0, 1.0), 1.0 / GAMMA)
                write_image(folder / f"ev{ev:+d}.png".replace("+0", "0"), ldr)
            write_radiance(folder / "hdr.hdr", radiance)
    marker.write_text(f"{n_crops},{size},{seed}")
    return root


def prepare_demo(task, root, *, n_train=1000, n_test=100):
    """Build (or reuse) the offline demo dataset for `task` under `root`; returns its data folder.

    The demo datasets do not depend on the training crop size (photos are at least 256 px on the short
    side, HDR scenes 256x256), so a run and a later evaluation with other sizes share the same data.
    """
    from common import demo_data

    root = pathlib.Path(root).expanduser()
    if task.name == "phone2dslr":
        return demo_data.build_demo_dped(root / "dped", n_train=n_train, n_test=n_test)
    if task.name == "ldr2hdr":
        return build_demo_hdr(root / "hdr", size=DEMO_SIZE)
    return demo_data.build_demo_clean(root / "clean", min_side=DEMO_SIZE)
