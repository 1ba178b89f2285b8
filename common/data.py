"""tf.data input pipelines for paired and synthetic photo-enhancement data.

Python checks folders, names and file headers up front, so bad data fails with a `PhotoEnhanceError` that
names the file; TensorFlow only ever decodes files that passed.

Determinism: training pipelines are infinite and element k is a pure function of `(seed, start_step + k)`.
Every step draws its pair indices (with replacement, like the DPED authors' random batches) and every
example its crop/flip/colour decisions with stateless random ops keyed on `(seed, step)`, so a run resumed
at a checkpoint step sees exactly the batches the uninterrupted run would have seen.

Bad files (`validate=True`, the default): every file's header is read before the pipeline is built
(`scan_images` / `scan_pairs`). A file that is missing, empty, not an image, truncated (JPEG without its
end marker, PNG without IEND), or in a format the TensorFlow decoders do not read (e.g. TIFF), raises
`DataLayoutError` naming it; so do pairs of different sizes when the pipeline needs them equal, and
images smaller than the crop. To train on a dataset that has a few bad files instead of stopping, call
`scan_pairs(..., skip_bad=True)` yourself: it drops the bad pairs and returns a `DataReport` that counts
and names them; pass the cleaned lists on with `validate=False`. Corruption inside the compressed data
that leaves the header and end marker intact is only caught by `scan_*(decode=True)` (full decode with
`common.images.read_image`).

Pixels as `enhance` sees them: TensorFlow's decoders (`decode_image`) give the stored pixels, which are the
photo only for upright, untagged RGB files. Files the scan finds turned (EXIF orientation other than 1),
ICC-tagged (a phone's Display P3) or CMYK are decoded by `read_image` instead (`DataReport.managed`), so a
model never trains on a sideways or discoloured photo; sizes and crops are those of the upright photo.
With `validate=False` no header is read and every file goes through TensorFlow's decoders.
`decode_image` makes gray and gray+alpha RGB and drops alpha; 16-bit PNGs are rounded to 8 bits exactly as
`read_image` does (v / 257).
"""
import collections
import concurrent.futures
import dataclasses
import os
import pathlib
import struct
import typing

import numpy as np
import tensorflow as tf
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from common.errors import DataLayoutError, DatasetNotFoundError, PhotoEnhanceError
from common.images import images_in, read_image
from common.photo_read import EXIF_ORIENTATION

PHONES = ("iphone", "sony", "blackberry")
DSLR = "canon"
GET_DPED = (
    "DPED is available from the project page http://people.ee.ethz.ch/~ihnatova/ (the 'dped' folder; "
    "see also github.com/aiff22/DPED); or run with --demo to build a small offline demo dataset"
)
TF_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "WEBP")
NORMALIZATIONS = ("unit", "symmetric")
AUTOTUNE = tf.data.AUTOTUNE


# ----------------------------------------------------------------------------------------------- folders
def dped_folders(data_dir, phone, split="train"):
    """`(phone_dir, canon_dir)` of one DPED split, found in any of the usual places.

    Accepted `data_dir`: the folder that holds `dped/`, the `dped/` folder itself, `dped/<phone>/`, or, for
    the test split only, a folder that directly holds `<phone>/` and `canon/` (such as a folder of test
    patches): such a folder has no train/test split, so training on it would test on the training data.
    """
    if split not in ("train", "test"):
        raise PhotoEnhanceError(f"split must be 'train' or 'test', got {split!r}")
    if not phone or os.sep in phone or phone in (".", ".."):
        raise PhotoEnhanceError(f"phone must be a folder name such as {', '.join(PHONES)}; got {phone!r}")
    root = pathlib.Path(data_dir).expanduser()
    sub = ("training_data",) if split == "train" else ("test_data", "patches")
    candidates = [base.joinpath(*sub) for base in (root / "dped" / phone, root / phone, root)]
    if split == "test":  # a bare <phone>/ + canon/ folder is test patches, never training data
        candidates.append(root)
    looked = []
    for folder in candidates:
        pair = (folder / phone, folder / DSLR)
        if pair[0].is_dir() and pair[1].is_dir():
            return pair
        looked.extend(str(p) for p in pair)
    if split == "train" and (root / phone).is_dir() and (root / DSLR).is_dir():
        raise DatasetNotFoundError(
            f"{root} holds only {phone}/ and {DSLR}/, with no train/test split: training on it would validate "
            f"on its own training patches. Use the DPED layout {phone}/training_data/{{{phone},{DSLR}}}/ + "
            f"{phone}/test_data/patches/{{{phone},{DSLR}}}/ (python -m datasets.build_dped writes it)")
    flat = (f" ({root / phone} + {root / DSLR} alone would be test patches, not training data)"
            if split == "train" else "")
    raise DatasetNotFoundError(
        f"DPED {split} data for '{phone}' not found under {root}; looked for the folder pairs: "
        + ", ".join(looked) + f"{flat}. {GET_DPED}"
    )


def dped_full_size_dir(data_dir, phone):
    """`dped/<phone>/test_data/full_size_test_images`, found like `dped_folders` finds patches."""
    root = pathlib.Path(data_dir).expanduser()
    sub = ("test_data", "full_size_test_images")
    candidates = [base.joinpath(*sub) for base in (root / "dped" / phone, root / phone, root)]
    for folder in candidates:
        if folder.is_dir():
            return folder
    raise DatasetNotFoundError(
        f"DPED full-size test photos for '{phone}' not found; looked in: "
        + ", ".join(str(c) for c in candidates) + f". {GET_DPED}"
    )


def paired_files(dir_a, dir_b):
    """Image files present in both folders, matched by name (stem), in natural order.

    Raises `DataLayoutError` for a missing or empty folder and for names found in only one folder.
    """
    lists = []
    for folder in (dir_a, dir_b):
        files = images_in(folder, "one side of the image pairs", DataLayoutError)
        by_stem = {}
        for f in files:
            if f.stem in by_stem:
                raise DataLayoutError(
                    f"{folder}: two images share the name '{f.stem}' ({by_stem[f.stem].name}, {f.name})")
            by_stem[f.stem] = f
        lists.append(by_stem)
    a, b = lists
    only_a = [s for s in a if s not in b]
    only_b = [s for s in b if s not in a]
    if only_a or only_b:
        parts = []
        for only, here, there in ((only_a, dir_a, dir_b), (only_b, dir_b, dir_a)):
            if only:
                parts.append(f"{len(only)} image(s) in {here} have no partner in {there} "
                             f"(e.g. {', '.join(a.get(s, b.get(s)).name for s in only[:5])})")
        raise DataLayoutError("unpaired images: " + "; ".join(parts))
    return [str(a[s]) for s in a], [str(b[s]) for s in a]


# ----------------------------------------------------------------------------------------- validation
@dataclasses.dataclass
class DataReport:
    """What a scan found: how many images (or pairs) were checked, used, and which were dropped and why."""

    checked: int
    used: int
    problems: list = dataclasses.field(default_factory=list)  # "path: problem" strings
    sizes: dict = dataclasses.field(default_factory=dict)  # (height, width) -> count, over used images
    managed: list = dataclasses.field(default_factory=list)  # used files decoded by read_image (module doc)

    @property
    def skipped(self):
        return self.checked - self.used

    def __str__(self):
        text = f"{self.used} of {self.checked} usable"
        if self.problems:
            text += f"; skipped {self.skipped}: " + "; ".join(self.problems[:5])
            if len(self.problems) > 5:
                text += f"; ... ({len(self.problems) - 5} more)"
        return text


class _Checked(typing.NamedTuple):
    size: tuple = None  # (height, width) of the upright photo
    problem: str = None
    managed: bool = False  # decoded by read_image: turned, ICC-tagged or CMYK


def _orientation(raw_exif):
    """The EXIF orientation in a header's EXIF bytes (1 when absent or unreadable), read without decoding
    pixels: `Image.getexif` would load a whole PNG."""
    if not raw_exif:
        return 1
    try:
        exif = Image.Exif()
        exif.load(raw_exif)
        return exif.get(EXIF_ORIENTATION, 1)
    except Exception:  # a malformed EXIF block: Pillow raises many kinds, and the pixels are still readable
        return 1


def _png_exif_after_pixels(path):
    """The bytes of a PNG's eXIf chunk stored after its image data (Pillow's header read stops at the
    first IDAT), found by jumping from chunk header to chunk header: no pixel data is read."""
    with open(path, "rb", buffering=0) as fh:  # unbuffered: each jump reads 8 bytes, not a buffer's worth
        fh.seek(8)
        while len(header := fh.read(8)) == 8:
            length, kind = struct.unpack(">I4s", header)
            if kind == b"eXIf":
                return fh.read(length)
            if kind == b"IEND":
                return None
            fh.seek(length + 4, os.SEEK_CUR)
    return None


def _check_header(path):
    """The `_Checked` of one file: its size if the pipeline can decode it, else the problem."""
    path = pathlib.Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        return _Checked(problem="file not found")
    if size == 0:
        return _Checked(problem="file is empty")
    try:
        with open(path, "rb") as fh:
            try:
                with Image.open(fh) as im:
                    fmt, (w, h), mode = im.format, im.size, im.mode
                    raw_exif = im.info.get("exif")
                    tagged = bool(im.info.get("icc_profile"))
                if fmt == "PNG" and raw_exif is None:
                    raw_exif = _png_exif_after_pixels(path)
                orientation = _orientation(raw_exif)
            except (UnidentifiedImageError, OSError, ValueError) as exc:
                if "runcated" in str(exc):
                    return _Checked(problem="truncated file (its header is incomplete)")
                return _Checked(problem="not a readable image (unknown format or damaged header)")
            fh.seek(max(0, size - 1024))
            tail = fh.read()
    except OSError as exc:
        return _Checked(problem=f"cannot be read ({exc})")
    if fmt not in TF_FORMATS:
        return _Checked(problem=f"{fmt} files cannot be decoded by the TensorFlow pipeline; convert to PNG or JPEG")
    if fmt == "JPEG" and b"\xff\xd9" not in tail:
        return _Checked(problem="truncated JPEG (no end-of-image marker)")
    if fmt == "PNG" and b"IEND" not in tail[-12:]:
        return _Checked(problem="truncated PNG (no IEND chunk)")
    turned = orientation not in (None, 1)
    upright = (w, h) if orientation in (5, 6, 7, 8) else (h, w)
    return _Checked(upright, None, turned or tagged or mode == "CMYK")


def _check_decode(path):
    checked = _check_header(path)
    if checked.problem:
        return checked
    try:
        image = read_image(path)
    except PhotoEnhanceError as exc:
        return _Checked(problem=getattr(exc, "problem", str(exc)))
    return checked._replace(size=image.shape[:2])


def _scan(paths, decode):
    check = _check_decode if decode else _check_header
    if len(paths) < 256:
        return [check(p) for p in paths]

    with concurrent.futures.ThreadPoolExecutor(max_workers=min(16, (os.cpu_count() or 2) * 2)) as pool:
        return list(tqdm(pool.map(check, paths, chunksize=64), total=len(paths), desc="checking images",
                         unit="file", leave=False))


def scan_images(files, *, decode=False, skip_bad=False, min_size=None):
    """Check image files before training: `(good_files, DataReport)`.

    `decode=False` reads headers and end markers only (fast); `decode=True` fully decodes every file.
    `min_size` `(h, w)`: images smaller than that are bad. Bad files raise `DataLayoutError` naming them
    unless `skip_bad`, which drops and reports them.
    """
    files = [str(f) for f in files]
    results = _scan(files, decode)
    good, sizes, problems, managed = [], collections.Counter(), [], []
    for f, (size, problem, by_pillow) in zip(files, results):
        if problem is None and min_size is not None and (size[0] < min_size[0] or size[1] < min_size[1]):
            problem = f"image is {size[0]}x{size[1]}, smaller than the {min_size[0]}x{min_size[1]} crop"
        if problem:
            problems.append(f"{f}: {problem}")
        else:
            good.append(f)
            sizes[size] += 1
            managed += [f] if by_pillow else []
    report = DataReport(len(files), len(good), problems, dict(sizes), managed)
    if problems and not skip_bad:
        raise DataLayoutError(_bad_message(report))
    return good, report


def scan_pairs(files_a, files_b, *, decode=False, skip_bad=False, same_size=True, min_size=None):
    """Check image pairs: `(good_a, good_b, DataReport)`; a pair is bad if either file is, or (with
    `same_size`) if its two images differ in size. Raises `DataLayoutError` unless `skip_bad`.
    `report.sizes` counts the input images' sizes."""
    files_a, files_b = [str(f) for f in files_a], [str(f) for f in files_b]
    if len(files_a) != len(files_b):
        raise DataLayoutError(f"got {len(files_a)} input files but {len(files_b)} targets")
    results = _scan(files_a + files_b, decode)
    good_a, good_b, problems, sizes, managed = [], [], [], collections.Counter(), []
    for fa, fb, ca, cb in zip(files_a, files_b, results[: len(files_a)], results[len(files_a):]):
        problem = _pair_problem(fa, fb, ca, cb, same_size, min_size)
        if problem:
            problems.append(problem)
        else:
            good_a.append(fa)
            good_b.append(fb)
            sizes[ca.size] += 1
            managed += [f for f, c in ((fa, ca), (fb, cb)) if c.managed]
    report = DataReport(len(files_a), len(good_a), problems, dict(sizes), managed)
    if problems and not skip_bad:
        raise DataLayoutError(_bad_message(report))
    return good_a, good_b, report


def _pair_problem(fa, fb, ca, cb, same_size, min_size):
    """What is wrong with the pair `(fa, fb)` given their `_Checked` results, or None."""
    if ca.problem or cb.problem:
        return f"{fa}: {ca.problem}" if ca.problem else f"{fb}: {cb.problem}"
    if same_size and ca.size != cb.size:
        return f"{fa} is {ca.size[0]}x{ca.size[1]} but its partner {fb} is {cb.size[0]}x{cb.size[1]}"
    for f, c in ((fa, ca), (fb, cb)):
        if min_size is not None and (c.size[0] < min_size[0] or c.size[1] < min_size[1]):
            return f"{f}: image is {c.size[0]}x{c.size[1]}, smaller than the {min_size[0]}x{min_size[1]} crop"
    return None


def _bad_message(report):
    lines = "; ".join(report.problems[:5])
    more = f"; ... and {len(report.problems) - 5} more" if len(report.problems) > 5 else ""
    return (f"{len(report.problems)} bad image(s) of {report.checked}: {lines}{more}. Fix or remove them, or "
            "drop them with common.data.scan_pairs(..., skip_bad=True) and validate=False")


# ------------------------------------------------------------------------------------------ tf pieces
def decode_image(path):
    """Read and decode one file inside tf.data: float32 [0, 1], `[H, W, 3]`, the same pixels as `read_image`.

    JPEGs use the accurate integer DCT (libjpeg's ISLOW, as Pillow does): TensorFlow's default fast DCT
    differs by up to 19 levels on DPED patches, which shifts PSNR. 16-bit PNGs are rounded to 8 bits.
    """
    return decode_image_bytes(tf.io.read_file(path))


def decode_image_bytes(data):
    """`decode_image` of a file's bytes (a scalar tf.string): the same pixels, for data stored as bytes
    (e.g. a TFDS dataset whose images keep their original JPEG encoding)."""
    head = tf.strings.substr(tf.strings.join([tf.strings.substr(data, 0, 25), "\0" * 25]), 0, 25)
    is_jpeg = tf.equal(tf.strings.substr(head, 0, 3), b"\xff\xd8\xff")
    is_png16 = tf.logical_and(
        tf.equal(tf.strings.substr(head, 0, 8), b"\x89PNG\r\n\x1a\n"),
        tf.equal(tf.strings.substr(head, 24, 1), b"\x10"),
    )
    image = tf.case(
        [
            (is_jpeg, lambda: tf.cast(tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE"),
                                      tf.float32)),
            (is_png16, lambda: tf.round(tf.cast(tf.io.decode_png(data, channels=3, dtype=tf.uint16),
                                                tf.float32) / 257.0)),
        ],
        default=lambda: tf.cast(tf.io.decode_image(data, channels=3, expand_animations=False), tf.float32),
        exclusive=True,
    )
    image = image / 255.0
    image.set_shape([None, None, 3])
    return image


def _read_image_float(path):
    return read_image(os.fsdecode(path)).astype(np.float32) / 255.0


def file_decoder(files, managed=()):
    """`decode(index)` of `files[index]` inside tf.data: `decode_image`, except for the `managed` files
    (`DataReport.managed`: turned, ICC-tagged, CMYK), which `read_image` decodes through
    `tf.numpy_function`, so they give the upright sRGB pixels `enhance` sees."""
    paths = tf.constant([str(f) for f in files])
    managed = set(map(str, managed))
    if not managed:
        return lambda index: decode_image(paths[index])
    flags = tf.constant([str(f) in managed for f in files])

    def by_pillow(index):
        image = tf.numpy_function(_read_image_float, [paths[index]], tf.float32, stateful=False)
        image.set_shape([None, None, 3])
        return image

    return lambda index: tf.cond(flags[index], lambda: by_pillow(index), lambda: decode_image(paths[index]))


def _hw(size, name):
    if size is None:
        return None
    if isinstance(size, int):
        size = (size, size)
    size = tuple(size)
    if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
        raise PhotoEnhanceError(f"{name} must be a positive int or (height, width), got {size!r}")
    return size


def _check_keyed(name, batch_size, seed, normalize, batches_per_step):
    """Arguments of the step-keyed batch builders: an int seed and one or two batches per step."""
    _check_common(batch_size, seed, normalize)
    if seed is None:
        raise PhotoEnhanceError(f"{name} needs an int seed (batches are keyed on (seed, step))")
    if batches_per_step not in (1, 2):
        raise PhotoEnhanceError(f"batches_per_step must be 1 or 2, got {batches_per_step!r}")


def _check_common(batch_size, seed, normalize):
    if not isinstance(batch_size, int) or batch_size < 1:
        raise PhotoEnhanceError(f"batch_size must be a positive int, got {batch_size!r}")
    if seed is not None and not isinstance(seed, int):
        raise PhotoEnhanceError(f"seed must be an int, got {seed!r}")
    if normalize not in NORMALIZATIONS:
        raise PhotoEnhanceError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")


def _normalize(image, normalize):
    return image * 2.0 - 1.0 if normalize == "symmetric" else image


def _color_jitter(images, seed):
    """One random brightness/contrast/saturation change applied identically to every image in `images`.

    Seed 000 first decides at random (here p = 0.5) whether to augment, then jitters all three.
    """
    seeds = [tf.random.experimental.stateless_fold_in(seed, i) for i in range(4)]
    apply = tf.random.stateless_uniform([], seeds[0]) < 0.5
    delta = tf.random.stateless_uniform([], seeds[1], -0.1, 0.1)
    contrast = tf.random.stateless_uniform([], seeds[2], 0.8, 1.25)
    saturation = tf.random.stateless_uniform([], seeds[3], 0.8, 1.25)

    def jitter(x):
        x = tf.image.adjust_brightness(x, delta)
        x = tf.image.adjust_contrast(x, contrast)
        x = tf.image.adjust_saturation(x, saturation)
        return tf.clip_by_value(x, 0.0, 1.0)

    return [tf.cond(apply, lambda x=x: jitter(x), lambda x=x: x) for x in images]


def _transform(images, seed, resize, crop, flip, color_augment):
    """Resize, crop, flip and colour-jitter a list of images with ONE set of random decisions."""
    if resize is not None:
        images = [tf.image.resize(x, resize, method="bilinear", antialias=True) for x in images]
    if crop is not None or flip:
        stacked = tf.concat(images, axis=-1)
        if crop is not None:
            stacked = tf.image.stateless_random_crop(stacked, [crop[0], crop[1], 3 * len(images)],
                                                     seed=tf.random.experimental.stateless_fold_in(seed, 10))
        if flip:
            stacked = tf.image.stateless_random_flip_left_right(
                stacked, seed=tf.random.experimental.stateless_fold_in(seed, 11))
        images = tf.split(stacked, len(images), axis=-1)
    if color_augment:
        images = _color_jitter(images, tf.random.experimental.stateless_fold_in(seed, 12))
    return images


def _step_keyed_indices(seed, start_step, n, batch_size, groups=1):
    """Infinite dataset of `(step_key, slot, index)` per example: `groups * batch_size` examples per step,
    indices drawn with replacement from `stateless_uniform` keyed on `(seed, step)`."""
    per_step = groups * batch_size

    def draw(step):
        key = tf.stack([tf.constant(seed, tf.int64), step])
        index = tf.random.stateless_uniform([per_step], seed=tf.random.experimental.stateless_fold_in(key, 0),
                                            minval=0, maxval=n, dtype=tf.int64)
        return tf.tile(key[None], [per_step, 1]), tf.range(per_step, dtype=tf.int64), index

    return tf.data.Dataset.counter(start_step, dtype=tf.int64).map(draw).unbatch()


def _example_seed(key, slot):
    return tf.random.experimental.stateless_fold_in(tf.random.experimental.stateless_fold_in(key, 1), slot)


def _group(ds, batch_size, groups):
    ds = ds.batch(batch_size, drop_remainder=True)
    if groups > 1:
        ds = ds.batch(groups, drop_remainder=True).map(
            lambda *xs: tuple(tuple(x[g] for x in xs) for g in range(groups)))
    return ds


# ------------------------------------------------------------------------------------------ datasets
def random_pair_batches(files_a, files_b, batch_size, *, seed, start_step=0, patch_size=None, resize=None,
                        flip=False, color_augment=False, normalize="unit", batches_per_step=1, validate=True,
                        managed=()):
    """Infinite training batches `(a, b)` of random pairs; element k depends only on `(seed, start_step + k)`.

    Pairs are sampled with replacement per step (the DPED authors' random batches), so resuming with
    `start_step` = the checkpoint step reproduces the uninterrupted run exactly. Both images of a pair get
    the same resize (`(h, w)`, bilinear, antialiased), random crop (`patch_size`), mirror (`flip`) and
    colour jitter (`color_augment`: brightness/contrast/saturation, applied with p = 0.5 as in seed 000).
    The jitter must be identical for input and target: the model cannot see a jitter applied to the
    target alone, so a different one would only teach it to guess colours. `normalize`: "unit" [0, 1] or
    "symmetric" [-1, 1]. With `batches_per_step=2` each element is `((a1, b1), (a2, b2))`: DPED updates the
    generator and the discriminator on separate random batches. `validate` checks every file's header
    first (see the module docstring); with `validate=False`, `managed` names the files of an earlier scan
    to decode with `read_image` (its `DataReport.managed`). Files are decoded in parallel and read on every use, with no
    in-memory cache (DPED's 320K files would not fit): on a slow network drive copy the data locally.
    """
    _check_keyed("random_pair_batches", batch_size, seed, normalize, batches_per_step)
    crop, resize = _hw(patch_size, "patch_size"), _hw(resize, "resize")
    if validate:
        files_a, files_b, report = scan_pairs(files_a, files_b, same_size=resize is None,
                                              min_size=None if resize else crop)
        managed = report.managed
        if crop is None and resize is None:
            _require_one_size(report)
    if crop is not None and resize is not None and (crop[0] > resize[0] or crop[1] > resize[1]):
        raise PhotoEnhanceError(f"patch_size {crop} is larger than resize {resize}")
    if not files_a or len(files_a) != len(files_b):
        raise DataLayoutError(
            f"need the same non-zero number of inputs and targets, got {len(files_a)} and {len(files_b)}")
    decode_a, decode_b = file_decoder(files_a, managed), file_decoder(files_b, managed)
    return _keyed_pair_batches(lambda index: (decode_a(index), decode_b(index)),
                               len(files_a), batch_size, seed, start_step, crop, resize, flip, color_augment,
                               normalize, batches_per_step)


def _keyed_pair_batches(fetch, n, batch_size, seed, start_step, crop, resize, flip, color_augment, normalize,
                        batches_per_step):
    """The step-keyed random pair batches of `random_pair_batches` over any `fetch(index) -> (a, b)` of
    n pairs (float [0, 1] images): the same indices, crops, flips and jitter for the same (seed, step)."""

    def load(key, slot, index):
        a, b = fetch(index)
        a, b = _transform([a, b], _example_seed(key, slot), resize, crop, flip, color_augment)
        return _normalize(a, normalize), _normalize(b, normalize)

    ds = _step_keyed_indices(seed, start_step, n, batch_size, batches_per_step)
    ds = ds.map(load, num_parallel_calls=AUTOTUNE, deterministic=True)
    return _group(ds, batch_size, batches_per_step).prefetch(AUTOTUNE)


# ------------------------------------------------------------------------------------------ TFDS sources
def _tfds_fetch(source, keys):
    """`fetch(index) -> (a, b)` reading example `index` of a random-access source (`tfds.data_source`,
    `builder.as_data_source`) inside tf.data. Images stored as bytes (read with `tfds.decode.SkipDecoding`)
    are decoded by `decode_image_bytes`, so JPEGs give exactly the folder pipeline's pixels; already
    decoded uint8 arrays are used as they are."""
    if len(source) == 0:
        raise DataLayoutError("the TFDS split has no examples")
    first = source[0]
    missing = [k for k in keys if k not in first]
    if missing:
        raise DataLayoutError(f"TFDS examples have the features {sorted(first)}, not {missing}")
    as_bytes = isinstance(first[keys[0]], bytes)

    def read(index):
        example = source[int(index)]
        return tuple(example[k] for k in keys)

    def fetch(index):
        if as_bytes:
            a, b = tf.numpy_function(read, [index], (tf.string, tf.string), stateful=False)
            return decode_image_bytes(tf.reshape(a, [])), decode_image_bytes(tf.reshape(b, []))
        images = tf.numpy_function(read, [index], (tf.uint8, tf.uint8), stateful=False)
        out = []
        for x in images:
            x = tf.cast(x, tf.float32) / 255.0
            x.set_shape([None, None, 3])
            out.append(x)
        return tuple(out)

    return fetch


def tfds_pair_batches(source, batch_size, *, seed, start_step=0, patch_size=None, resize=None, flip=False,
                      color_augment=False, normalize="unit", batches_per_step=1, keys=("phone", "dslr")):
    """`random_pair_batches` over a TFDS random-access source: element k depends only on
    `(seed, start_step + k)`, and example i of `source` plays the role of pair i of the file lists.

    `source[i]` must be a dict holding the pair under `keys`, as bytes (`tfds.decode.SkipDecoding`, exact
    folder-pipeline pixels) or uint8 arrays. Only example 0 is checked against `patch_size` up front.
    """
    _check_keyed("tfds_pair_batches", batch_size, seed, normalize, batches_per_step)
    crop, resize = _hw(patch_size, "patch_size"), _hw(resize, "resize")
    fetch = _tfds_fetch(source, keys)
    if crop is not None:
        size = (resize or tuple(int(d) for d in tf.shape(fetch(tf.constant(0, tf.int64))[0])[:2]))
        if crop[0] > size[0] or crop[1] > size[1]:
            raise PhotoEnhanceError(f"patch_size {crop} is larger than the {size[0]}x{size[1]} TFDS images")
    return _keyed_pair_batches(fetch, len(source), batch_size, seed, start_step, crop,
                               resize, flip, color_augment, normalize, batches_per_step)


def tfds_pair_dataset(source, batch_size, *, normalize="unit", keys=("phone", "dslr")):
    """Finite `(a, b)` batches of every example of a TFDS random-access source, in index order
    (evaluation); like `paired_folder_dataset` without crop or resize, so the images must share one size
    when `batch_size > 1`."""
    _check_common(batch_size, None, normalize)
    fetch = _tfds_fetch(source, keys)
    ds = tf.data.Dataset.range(len(source)).map(
        lambda i: tuple(_normalize(x, normalize) for x in fetch(i)), num_parallel_calls=AUTOTUNE,
        deterministic=True)
    return ds.batch(batch_size).prefetch(AUTOTUNE)


def _require_one_size(report):
    """Batching uncropped, unresized images needs them all the same size."""
    if len(report.sizes) > 1:
        common = sorted(report.sizes.items(), key=lambda kv: -kv[1])[:3]
        examples = ", ".join(f"{n} are {h}x{w}" for (h, w), n in common)
        raise DataLayoutError(f"images have different sizes ({examples}); set patch_size= or resize=, "
                              "or use batch_size=1")


def paired_folder_dataset(dir_a, dir_b, batch_size, *, shuffle=False, repeat=False, seed=None,
                          patch_size=None, resize=None, normalize="unit", cache=False, drop_remainder=False,
                          validate=True):
    """Finite `(a, b)` batches of the pairs in two folders, in file order by default (evaluation).

    `patch_size` takes a centre crop (same window for both); `resize` is applied first. `cache=True`
    keeps the decoded images in memory after the first pass; `shuffle` reshuffles every epoch from `seed`.
    """
    _check_common(batch_size, seed, normalize)
    crop, resize = _hw(patch_size, "patch_size"), _hw(resize, "resize")
    files_a, files_b = paired_files(dir_a, dir_b)
    managed = ()
    if validate:
        files_a, files_b, report = scan_pairs(files_a, files_b, same_size=resize is None,
                                              min_size=None if resize else crop)
        managed = report.managed
        if crop is None and resize is None and batch_size > 1:
            _require_one_size(report)
    decode_a, decode_b = file_decoder(files_a, managed), file_decoder(files_b, managed)

    def load(index):
        images = [decode_a(index), decode_b(index)]
        if resize is not None:
            images = [tf.image.resize(x, resize, method="bilinear", antialias=True) for x in images]
        if crop is not None:
            images = [_center_crop(x, crop) for x in images]
        return tuple(_normalize(x, normalize) for x in images)

    ds = tf.data.Dataset.range(len(files_a)).map(load, num_parallel_calls=AUTOTUNE, deterministic=True)
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(len(files_a), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(AUTOTUNE)


def _center_crop(image, crop):
    shape = tf.shape(image)
    top, left = (shape[0] - crop[0]) // 2, (shape[1] - crop[1]) // 2
    out = image[top: top + crop[0], left: left + crop[1]]
    out.set_shape([crop[0], crop[1], 3])
    return out


def synthetic_pair_dataset(files, degrade_fn, batch_size, *, seed, crop_size=None, resize=None, flip=True,
                           color_augment=False, normalize="unit", start_step=0, repeat=True, validate=True):
    """`(degraded, clean)` batches made from clean photos by `degrade_fn(images_batch, seed_tensor)`.

    The clean images are resized, cropped, flipped and jittered first; the degradation sees the finished
    [0, 1] batch and a stateless seed `[2]` derived from `(seed, step)`, then both are normalised.
    `repeat=True`: infinite random batches, element k a function of `(seed, start_step + k)`.
    `repeat=False`: one pass over `files` in order (evaluation); batch k is still keyed on `(seed, k)`.
    """
    _check_common(batch_size, seed, normalize)
    if seed is None:
        raise PhotoEnhanceError("synthetic_pair_dataset needs an int seed")
    crop, resize = _hw(crop_size, "crop_size"), _hw(resize, "resize")
    managed = ()
    if validate:
        files, report = scan_images(files, min_size=None if resize else crop)
        managed = report.managed
        if crop is None and resize is None and batch_size > 1:
            _require_one_size(report)
    if not files:
        raise DataLayoutError("no clean images given")
    decode = file_decoder(files, managed)

    def load(key, slot, index):
        image = decode(index)
        (image,) = _transform([image], _example_seed(key, slot), resize, crop, flip, color_augment)
        return key, image

    def degrade(key, clean):
        degraded = degrade_fn(clean, tf.random.experimental.stateless_fold_in(key[0], 2))
        return _normalize(degraded, normalize), _normalize(clean, normalize)

    if repeat:
        ds = _step_keyed_indices(seed, start_step, len(files), batch_size)
        drop = True
    else:
        ds = tf.data.Dataset.range(len(files)).map(
            lambda i: (tf.stack([tf.constant(seed, tf.int64), i // batch_size]), i % batch_size, i))
        drop = False
    ds = ds.map(load, num_parallel_calls=AUTOTUNE, deterministic=True).batch(batch_size, drop_remainder=drop)
    return ds.map(degrade, num_parallel_calls=AUTOTUNE, deterministic=True).prefetch(AUTOTUNE)


def patch_dataset(files, patch_size, *, seed, batch_size=1, start_step=0, flip=False, normalize="unit",
                  validate=True):
    """Infinite batches of random `patch_size` crops from large images (image and position keyed on
    `(seed, start_step + k)`), e.g. DPED-sized patches from full-resolution photos."""
    _check_common(batch_size, seed, normalize)
    if seed is None:
        raise PhotoEnhanceError("patch_dataset needs an int seed")
    crop = _hw(patch_size, "patch_size")
    if crop is None:
        raise PhotoEnhanceError("patch_dataset needs a patch_size")
    managed = ()
    if validate:
        files, report = scan_images(files, min_size=crop)
        managed = report.managed
    if not files:
        raise DataLayoutError("no images given")
    decode = file_decoder(files, managed)

    def load(key, slot, index):
        (image,) = _transform([decode(index)], _example_seed(key, slot), None, crop, flip, False)
        return _normalize(image, normalize)

    ds = _step_keyed_indices(seed, start_step, len(files), batch_size)
    ds = ds.map(load, num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.batch(batch_size, drop_remainder=True).prefetch(AUTOTUNE)
