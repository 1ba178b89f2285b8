"""`ldr2hdr` (seed 000): one LDR exposure (-2/0/+2 EV) -> the scene's HDR image, 256x256.

ReLU output, instance norm in G and D, BCE + 100 L1. Data: one folder per scene holding `ev-2.*`,
`ev0.*`, `ev+2.*` (8-bit photos) and `hdr.hdr` or `hdr.exr`; scenes directly in the folder (split by
scene: 20 of every 176 scenes for test as in seed 000, the rest 80:20 train/val) or already split in
`train/` (+ optional `val/`) and `test/`. Each exposure with the scene's HDR image is one pair, so all
three exposures of a scene are in the same split. HDR targets are scaled per scene so that 1.0 is the
white of the 0 EV photo (fitted on its well-exposed pixels in linear light): values above 1 are the
highlights the photo clipped; evaluation compares `x / (1 + x)` tone maps. Baseline: the exposure in
linear light.
"""
import dataclasses
import pathlib
import re

import numpy as np
import tensorflow as tf

from common import demo_data
from common.errors import DataLayoutError
from common.images import IMAGE_EXTENSIONS, write_image
from pix2pix import baselines
from pix2pix.hdr import HDR_EXTENSIONS, read_hdr, write_radiance
from pix2pix.tasks.base import (DEMO_SIZE, GAMMA, Task, TaskData, data_folder, read_unit, register_task,
                                resize_square, seeded_split)

EXPOSURES = (-2, 0, 2)
_EV_NAME = re.compile(r"^ev([+-]?\d+)$", re.IGNORECASE)


@register_task
class Ldr2Hdr(Task):
    name = "ldr2hdr"
    description = "one LDR exposure (-2/0/+2 EV) -> the scene's HDR image, 256x256"
    reported = "seed 000: LDR 19.10 dB / SSIM 0.864 / UQI 0.9741 -> generated 23.94 / 0.902 / 0.9947"
    preset = {"g_norm": "instance", "d_norm": "instance", "output_activation": "relu", "iterations": 100_000}

    def open(self, settings, data_dir):
        return SceneData(self, settings, data_dir)

    def prepare_demo(self, root, *, n_train, n_test):
        """HDR-like scenes from the bundled photos (`build_demo_hdr`; every photo, whatever the counts)."""
        return build_demo_hdr(pathlib.Path(root).expanduser() / "hdr", size=DEMO_SIZE)

    def baseline(self, settings, x, meta):
        return baselines.ldr_to_linear(x, GAMMA)


class SceneData(TaskData):
    """Scenes, loaded once per size into memory as `(exposure, scaled HDR)` pairs."""

    unit = "scenes"

    def __init__(self, task, settings, data_dir):
        super().__init__(task, settings, data_dir)
        self.splits = hdr_scene_splits(self.data_dir, seed=settings.seed)
        self._cache = {}

    def _arrays(self, split, size):
        if (split, size) not in self._cache:
            self._cache[split, size] = load_scene_pairs(self.splits[split], size)
        return self._cache[split, size]

    def train_batches(self, batch_size, *, seed, start_step=0):
        x, y, _ = self._arrays("train", self.settings.image_size)
        return array_pair_batches(x, y, batch_size, seed=seed, start_step=start_step, flip=self.settings.flip)

    def pairs(self, split, *, image_size=None, limit=None):
        """Every exposure of the split's scenes with the scene's HDR target, resized to `image_size`."""
        x, y, metas = self._arrays(split, image_size or self.settings.image_size)
        return [(x[i], y[i], metas[i]) for i in range(len(metas))][:limit]


# ------------------------------------------------------------------------------------------ scenes
@dataclasses.dataclass(frozen=True)
class Scene:
    name: str
    ldr: dict  # exposure (EV) -> path
    hdr: str


def read_scene(folder):
    """A scene folder -> `Scene`, or a `DataLayoutError` naming what is missing."""
    folder = pathlib.Path(folder)
    ldr, hdr = {}, []
    for p in folder.iterdir():
        if p.suffix.lower() in HDR_EXTENSIONS and p.stem.lower() == "hdr":
            hdr.append(p)
        elif p.suffix.lower() in IMAGE_EXTENSIONS and (m := _EV_NAME.match(p.stem)):
            ldr[int(m.group(1))] = str(p)
    missing = [_ev_name(e) for e in EXPOSURES if e not in ldr]
    if missing or len(hdr) != 1:
        what = ([f"LDR exposure(s) {', '.join(missing)}"] if missing else []) + \
               (["an hdr.hdr or hdr.exr file"] if not hdr else ["only one HDR file"] if len(hdr) > 1 else [])
        raise DataLayoutError(f"{folder}: scene folder needs {' and '.join(what)} "
                              "(files ev-2.jpg, ev0.jpg, ev+2.jpg and hdr.hdr)")
    return Scene(folder.name, {e: ldr[e] for e in EXPOSURES}, str(hdr[0]))


def _ev_name(ev):
    return "ev0" if ev == 0 else f"ev{ev:+d}"


def _scene_folders(root):
    return {p.name: p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")}


def split_scenes(names, n_test=None, val_fraction=0.2, seed=0):
    """Split scene names so test scenes are never trained on: `n_test` (default 20 per 176, seed 000) test
    scenes, then `val_fraction` of the rest for validation. Returns {"train", "val", "test"}."""
    names = sorted(names)
    n_test = n_test if n_test is not None else max(1, round(len(names) * 20 / 176))
    if len(names) < n_test + 2:
        raise DataLayoutError(f"need at least {n_test + 2} scenes to split into train/val/test, found {len(names)}")
    n_val = max(1, round((len(names) - n_test) * val_fraction))
    train, val, test = seeded_split(names, seed, n_val, n_test)
    return {"train": train, "val": val, "test": test}


def hdr_scene_splits(data_dir, seed=0):
    """{"train", "val", "test"} lists of `Scene`s; no scene is in two splits (see the module docstring)."""
    root = data_folder(data_dir)
    if (root / "train").is_dir() and (root / "test").is_dir():
        folders = {k: _scene_folders(root / k) for k in ("train", "val", "test") if (root / k).is_dir()}
        if folders.get("val"):
            names = {k: list(v) for k, v in folders.items()}
        else:
            names = {**split_scenes(list(folders["train"]), n_test=0, seed=seed), "test": list(folders["test"])}
            folders["val"] = folders["train"]
        splits = {k: [read_scene(folders[k][n]) for n in names[k]] for k in ("train", "val", "test")}
    else:
        dirs = _scene_folders(root)
        if not dirs:
            raise DataLayoutError(f"{root}: no scene folders (each with ev-2/ev0/ev+2 photos and hdr.hdr)")
        splits = {k: [read_scene(dirs[n]) for n in v] for k, v in split_scenes(list(dirs), seed=seed).items()}
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


def load_scene_pairs(scenes, size):
    """(inputs [3S, size, size, 3], targets [3S, ...], metas) for the scenes: one pair per exposure."""
    inputs, targets, metas = [], [], []
    for scene in scenes:
        hdr = read_hdr(scene.hdr)
        ldr = {e: read_unit(p) for e, p in scene.ldr.items()}
        shapes = {tuple(x.shape[:2]) for x in [hdr, *ldr.values()]}
        if len(shapes) != 1:
            raise DataLayoutError(f"{pathlib.Path(scene.hdr).parent}: the exposures and the HDR image differ in size "
                                  f"({sorted(shapes)})")
        target = resize_square(hdr * hdr_scale(hdr, ldr[0]), size)
        for e in EXPOSURES:
            inputs.append(np.clip(resize_square(ldr[e], size), 0.0, 1.0))
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


# ------------------------------------------------------------------------------------------ demo
def build_demo_hdr(root, n_crops=4, size=256, seed=0):
    """Write HDR-like demo scenes from the bundled photos: `<root>/{train,val,test}/<photo>_<k>/`.

    Each crop's linear light `x**2.2` is expanded above 1 as `L / (1 - 0.8 L)` (an inverse Reinhard
    curve: white becomes 5, the darks barely change) to play the radiance; the three exposures are
    `clip(radiance * 2**ev, 0, 1) ** (1/2.2)` saved as 8-bit PNGs, the radiance as `hdr.hdr`. Split by
    photo (`demo_data.TEST_PHOTOS` for test, the last other photo for val), so crops of one photo, which
    may overlap, never land in two splits. Built in a temporary folder, then moved into place; a
    finished build with the same parameters is reused.
    """
    root = pathlib.Path(root).expanduser()
    params = {"version": 2, "n_crops": n_crops, "size": size, "seed": seed}
    marker = ".demo_hdr_complete.json"
    if demo_data.is_complete(root, marker, params):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = demo_data.building_folder(root.parent, root.name)
    photos = demo_data.named_demo_photos()
    val_photo = [n for n in photos if n not in demo_data.TEST_PHOTOS][-1]
    rng = np.random.default_rng(seed)
    for photo_name, photo in photos.items():
        split = "test" if photo_name in demo_data.TEST_PHOTOS else "val" if photo_name == val_photo else "train"
        for k, crop in enumerate(_random_crops(photo.astype(np.float32) / 255.0, n_crops, size, rng)):
            _write_demo_scene(tmp / split / f"{photo_name}_{k}", crop)
    demo_data.publish(tmp, root, marker, params)
    return root


def _random_crops(image, n, size, rng):
    """`n` random `size` crops of `image` (upscaled first when its short side is below `size`)."""
    short = min(image.shape[:2])
    if short < size:
        image = tf.image.resize(image, [round(image.shape[0] * size / short),
                                        round(image.shape[1] * size / short)], antialias=True).numpy()
    crops = []
    for _ in range(n):
        top = rng.integers(0, image.shape[0] - size + 1)
        left = rng.integers(0, image.shape[1] - size + 1)
        crops.append(np.clip(image[top:top + size, left:left + size], 0.0, 1.0))
    return crops


def _write_demo_scene(folder, crop):
    linear = np.power(crop, GAMMA)
    radiance = linear / (1.0 - 0.8 * linear)
    for ev in EXPOSURES:
        write_image(folder / f"{_ev_name(ev)}.png", np.power(np.clip(radiance * 2.0 ** ev, 0.0, 1.0), 1.0 / GAMMA))
    write_radiance(folder / "hdr.hdr", radiance)
