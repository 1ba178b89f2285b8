"""Offline demo data: real photos bundled with scikit-image, turned into small datasets in seconds.

`build_demo_dped` writes a dataset in the released DPED layout, so every DPED and pix2pix tool runs on it
unchanged (`--demo`): the "DSLR" side is clean patches of the photos, the "phone" side the same patches
as one fixed phone camera renders them (`common.degradations.phone_camera`: its tone, colour and blur on
every shot, noise and JPEG per shot), a mapping a few hundred fine-tuning steps learn. `build_demo_clean` writes clean photos for the synthetic tasks
(deblurring, overexposure). Train and test use different photos, so test scores are on unseen pictures.
"""
import concurrent.futures
import functools
import json
import os
import pathlib
import shutil
import socket

import numpy as np
import skimage.data
import tensorflow as tf

from common.degradations import phone_camera
from common.errors import PhotoEnhanceError
from common.images import to_rgb_uint8, write_image
from common.run_folder import process_alive

# Colour photographs shipped inside the scikit-image wheel (no download needed). `cat` duplicates
# `chelsea` and `stereo_motorcycle` is a pair, of which the left view is used.
DEMO_PHOTOS = ("astronaut", "rocket", "immunohistochemistry", "hubble_deep_field", "retina",
               "stereo_motorcycle", "chelsea", "coffee")
TEST_PHOTOS = ("chelsea", "coffee")
_VERSION = 1
_DPED_VERSION = 2  # 2: phone_camera's fixed look instead of phone_degrade's per-image draws


@functools.lru_cache(maxsize=1)
def _named_photos():
    photos = {}
    for name in DEMO_PHOTOS:
        try:
            image = getattr(skimage.data, name)()
        except Exception:  # noqa: BLE001 - a sample missing from this scikit-image install is skipped
            continue
        if isinstance(image, tuple):
            image = image[0]
        photos[name] = to_rgb_uint8(image, f"skimage.data.{name}")
    if not any(n in photos for n in TEST_PHOTOS) or len(photos) <= len(TEST_PHOTOS):
        raise PhotoEnhanceError(
            "the scikit-image sample photos are not available (need scikit-image with its bundled data)")
    return photos


def demo_photos():
    """The bundled colour photos as uint8 RGB arrays (those this scikit-image install has offline)."""
    return [p.copy() for p in _named_photos().values()]


def named_demo_photos():
    """{name: uint8 RGB array} of the bundled photos, in `DEMO_PHOTOS` order (for splits by photo)."""
    return {n: p.copy() for n, p in _named_photos().items()}


def _split_photos():
    photos = _named_photos()
    train = [p for n, p in photos.items() if n not in TEST_PHOTOS]
    test = [p for n, p in photos.items() if n in TEST_PHOTOS]
    return train, test


def _resize_short_side(image, short_side):
    h, w = image.shape[:2]
    scale = short_side / min(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    out = tf.image.resize(tf.constant(image, tf.float32) / 255.0, size, method="bicubic", antialias=True)
    return np.clip(out.numpy(), 0.0, 1.0)


def _random_patches(photos, n, patch_size, rng):
    """`n` patches, round-robin over the photos, at random positions: float32 [n, p, p, 3]."""
    patches = np.empty((n, patch_size, patch_size, 3), np.float32)
    for i in range(n):
        photo = photos[i % len(photos)]
        top = rng.integers(0, photo.shape[0] - patch_size + 1)
        left = rng.integers(0, photo.shape[1] - patch_size + 1)
        patches[i] = photo[top: top + patch_size, left: left + patch_size]
    return patches


def is_complete(root, marker_name, params):
    """Whether `root` holds a finished build with these parameters (its marker file says so)."""
    marker = root / marker_name
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()) == params
    except (OSError, ValueError):
        return False


def building_folder(parent, name):
    """The path of this process's temporary folder for building `name` atomically under `parent`.

    Several processes may build the same data at once (the workers of a cluster, two runs sharing a
    `--data-dir`): each builds in its own folder and `publish` keeps the first finished build. Leftover
    folders of builds whose process is gone are removed.
    """
    host = socket.gethostname()
    for old in pathlib.Path(parent).glob(f".{name}.building*"):
        owner_host, _, pid = old.name.rpartition(".building-")[2].rpartition("-")
        if owner_host in ("", host) and not (pid.isdigit() and process_alive(int(pid))):
            shutil.rmtree(old, ignore_errors=True)
    tmp = pathlib.Path(parent) / f".{name}.building-{host}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    return tmp


def publish(tmp, final, marker_name, params):
    """Finish an atomic build: write the marker and move the finished folder into place, unless another
    process published the same build first (then this one is discarded)."""
    (tmp / marker_name).write_text(json.dumps(params))
    if not is_complete(final, marker_name, params):
        if final.exists():
            shutil.rmtree(final)
        try:
            tmp.rename(final)
            return
        except OSError:
            if not is_complete(final, marker_name, params):
                raise
    shutil.rmtree(tmp, ignore_errors=True)


def build_demo_dped(root, phone="iphone", n_train=1000, n_test=100, patch_size=100, seed=0):
    """Write a small DPED-layout dataset under `root` (the folder that plays `dped/`) and return `root`.

    `<root>/<phone>/training_data/{<phone>,canon}/<i>.jpg`, `test_data/patches/{<phone>,canon}/<i>.jpg`
    and `test_data/full_size_test_images/<i>.jpg` (whole test photos, as the phone renders them). Photos are scaled
    to a short side of 4 patches, so a patch holds a recognisable part of a picture. A finished dataset
    with the same parameters is reused; an interrupted build is redone.
    """
    for name, value in (("n_train", n_train), ("n_test", n_test), ("patch_size", patch_size)):
        if not isinstance(value, int) or value < 1:
            raise PhotoEnhanceError(f"{name} must be a positive int, got {value!r}")
    root = pathlib.Path(root).expanduser()
    params = {"version": _DPED_VERSION, "phone": phone, "n_train": n_train, "n_test": n_test,
              "patch_size": patch_size, "seed": seed}
    final = root / phone
    if is_complete(final, ".demo_complete.json", params):
        return root
    root.mkdir(parents=True, exist_ok=True)
    tmp = building_folder(root, phone)
    train_photos, test_photos = _split_photos()
    rng = np.random.default_rng(seed)
    for split, photos, n, sub in (("train", train_photos, n_train, ("training_data",)),
                                  ("test", test_photos, n_test, ("test_data", "patches"))):
        scaled = [_resize_short_side(p, 4 * patch_size) for p in photos]
        clean = _random_patches(scaled, n, patch_size, rng)
        degraded = np.concatenate([
            phone_camera(clean[i: i + 256], seed=[seed, (1 if split == "train" else 2) * 1_000_003 + i]).numpy()
            for i in range(0, n, 256)])
        folder = tmp.joinpath(*sub)
        (folder / phone).mkdir(parents=True)
        (folder / "canon").mkdir(parents=True)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:  # file writes dominate; they release the GIL
            jobs = [pool.submit(write_image, folder / side / f"{i}.jpg", images[i])
                    for i in range(n) for side, images in ((phone, degraded), ("canon", clean))]
            for job in jobs:
                job.result()
    for i, photo in enumerate(test_photos):
        full = phone_camera(photo.astype(np.float32) / 255.0, seed=[seed, 3 * 1_000_003 + i]).numpy()
        write_image(tmp / "test_data" / "full_size_test_images" / f"{i}.jpg", full)
    publish(tmp, final, ".demo_complete.json", params)
    return root


def build_demo_clean(root, min_side=256):
    """Write the demo photos as clean PNGs for the synthetic tasks: `<root>/train/*.png`, `<root>/test/*.png`.

    Split by photo (`TEST_PHOTOS` are the test set). Each photo is rescaled so its short side lies in
    [min_side, 2 * min_side]: crops of `min_side` always fit and the files stay small. Reused when
    complete; returns `root`.
    """
    if not isinstance(min_side, int) or min_side < 1:
        raise PhotoEnhanceError(f"min_side must be a positive int, got {min_side!r}")
    root = pathlib.Path(root).expanduser()
    params = {"version": _VERSION, "min_side": min_side}
    if is_complete(root, ".demo_clean_complete.json", params):
        return root
    root.mkdir(parents=True, exist_ok=True)
    tmp = building_folder(root, "clean")
    for name, photo in _named_photos().items():
        split = "test" if name in TEST_PHOTOS else "train"
        short = min(photo.shape[:2])
        if not min_side <= short <= 2 * min_side:
            photo = _resize_short_side(photo, min(max(short, min_side), 2 * min_side))
        write_image(tmp / split / f"{name}.png", photo)
    if not is_complete(root, ".demo_clean_complete.json", params):  # else another process finished first
        for split in ("train", "test"):
            if (root / split).exists():
                shutil.rmtree(root / split)
            (tmp / split).rename(root / split)
        (root / ".demo_clean_complete.json").write_text(json.dumps(params))
    shutil.rmtree(tmp)
    return root
