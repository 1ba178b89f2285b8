"""Figures for runs and results: loss curves, validation curves, image grids, exposure histograms.

Every function builds a matplotlib `Figure` without touching pyplot's global state (so it works under
the Agg backend, in scripts, tests and notebooks alike), returns it, and writes a PNG when `save_to`
is given (atomically, `common.atomic_files`). Images may be uint8 `[0, 255]` or float `[0, 1]` (floats are clipped).
"""
import json
import math
import pathlib

import numpy as np
from matplotlib.figure import Figure

from common.atomic_files import atomic_output
from common.errors import DataLayoutError, PhotoEnhanceError
from common.images import images_in, read_image, to_uint8

HISTORY_FILE = "history.jsonl"

# Logged numbers that are not loss terms: never drawn as training curves.
_NOT_LOSSES = {"step", "epoch", "iteration", "lr", "learning_rate", "loss_scale", "images_per_sec",
               "examples_per_sec"}
# Logged numbers that belong to the discriminator panel although they do not start with "d_".
_DISCRIMINATOR_KEYS = {"gp", "gradient_penalty", "disc_loss", "discriminator_loss"}

# Luminance weights of the Exposure paper's statistics (Hu et al. 2018), which seed 003 uses.
_EXPOSURE_LUMA = np.array([0.27, 0.67, 0.06], np.float64)
EXPOSURE_FEATURES = ("luminance", "contrast", "saturation")


def _finish(fig, save_to, **savefig):
    """Write `fig` to `save_to` (whole or not at all, its format from the suffix) when given; return it."""
    if save_to is not None:
        with atomic_output(save_to) as tmp:
            fig.savefig(tmp, format=pathlib.Path(save_to).suffix[1:] or "png", **savefig)
    return fig


# ----------------------------------------------------------------------------- run logs

def load_history(run_dir):
    """Entries of `RUN_DIR/history.jsonl` (or the file itself), in file order.

    A final line cut short by an interrupted run is skipped; any other malformed line is an error
    naming the file and the line.
    """
    path = pathlib.Path(run_dir)
    if path.is_dir():
        path = path / HISTORY_FILE
    if not path.is_file():
        raise PhotoEnhanceError(
            f"{path}: training history not found (it is written by `python -m dped.train` / "
            f"`python -m pix2pix.train` into their --out folder)")
    lines = path.read_text().splitlines()
    entries = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == len(lines):
                break
            raise DataLayoutError(f"{path}: line {number} is not valid JSON ({exc.msg})") from None
        if not isinstance(entry, dict):
            raise DataLayoutError(f"{path}: line {number} is not a JSON object")
        entries.append(entry)
    return entries


def _series(entries, key):
    """(steps, values) of every entry that has a finite number for `key` (and a step)."""
    steps, values = [], []
    for index, entry in enumerate(entries):
        value = entry.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        steps.append(entry.get("step", index))
        values.append(float(value))
    return np.asarray(steps, np.float64), np.asarray(values, np.float64)


def _numeric_keys(entries):
    keys = []
    for entry in entries:
        for key, value in entry.items():
            if key not in keys and isinstance(value, (int, float)) and not isinstance(value, bool):
                keys.append(key)
    return keys


def _is_loss_key(key):
    return key not in _NOT_LOSSES and not key.startswith("val_") and "time" not in key


def _is_discriminator_key(key):
    return key.startswith("d_") or key in _DISCRIMINATOR_KEYS


def _draw_series(ax, entries, keys, empty_text):
    """One line per key on a shared axis (a legend when there are several)."""
    drawn = 0
    for key in keys:
        steps, values = _series(entries, key)
        if len(values):
            ax.plot(steps, values, label=key, marker="." if len(values) < 20 else None)
            drawn += 1
    if drawn > 1:
        ax.legend(fontsize="small")
    if not drawn:
        ax.text(0.5, 0.5, empty_text, ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)


def plot_training_curves(run_dir, save_to=None, columns=4):
    """Every logged loss term over steps, one small panel each: generator terms, then discriminator terms.

    Each term gets its own panel and y-axis, because the terms differ by orders of magnitude (DPED's
    colour loss is in the hundreds, its TV loss near 1e-4, its texture loss negative). Keys starting with
    `d_` (and `gp`, `gradient_penalty`) are discriminator terms; `val_*`, `step`, learning rates and
    timings are not drawn; everything else numeric is a generator term (g_loss, content, color, texture,
    tv, l1, perceptual, ...). A key missing from some entries leaves gaps, not zeros.
    """
    entries = load_history(run_dir)
    keys = [k for k in _numeric_keys(entries) if _is_loss_key(k)]
    keys.sort(key=lambda k: k not in ("g_loss", "d_loss"))  # the totals first, then the terms as logged
    groups = [("generator", [k for k in keys if not _is_discriminator_key(k)]),
              ("discriminator", [k for k in keys if _is_discriminator_key(k)])]
    rows = [max(1, math.ceil(len(group) / columns)) for _, group in groups]
    fig = Figure(figsize=(3.2 * columns, 2.6 * sum(rows) + 0.6 * len(groups)), layout="constrained")
    for subfig, (name, group), n_rows in zip(fig.subfigures(len(groups), 1, height_ratios=rows), groups, rows):
        subfig.suptitle(name)
        axes = subfig.subplots(n_rows, columns, squeeze=False).ravel()
        for ax, key in zip(axes, group):
            _draw_series(ax, entries, [key], "")
            ax.set_title(key, fontsize="medium")
        for ax in axes[len(group):]:
            ax.set_axis_off()
        if not group:
            axes[0].text(0.5, 0.5, f"no {name} losses logged", ha="center", va="center", transform=axes[0].transAxes)
    return _finish(fig, save_to)


def plot_validation(run_dir, save_to=None):
    """Validation PSNR (left) and SSIM-type scores (right, val_ssim, val_ms_ssim, val_uqi, ...) over steps."""
    entries = load_history(run_dir)
    keys = [k for k in _numeric_keys(entries) if k.startswith("val_")]
    psnr_keys = [k for k in keys if "psnr" in k]
    other_keys = [k for k in keys if "psnr" not in k]
    fig = Figure(figsize=(12, 4), layout="constrained")
    ax_p, ax_s = fig.subplots(1, 2)
    _draw_series(ax_p, entries, psnr_keys, "no validation PSNR logged yet")
    ax_p.set_title("validation PSNR")
    ax_p.set_ylabel("dB")
    _draw_series(ax_s, entries, other_keys, "no validation SSIM logged yet")
    ax_s.set_title("validation SSIM")
    return _finish(fig, save_to)


# ----------------------------------------------------------------------------- image figures

def _displayable(image, where):
    a = np.asarray(image)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=-1)
    if a.ndim != 3 or a.shape[-1] not in (1, 3):
        raise PhotoEnhanceError(f"{where}: expected an H x W x 3 image, got shape {a.shape}")
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    if a.dtype == np.uint8:
        return a
    if not np.issubdtype(a.dtype, np.floating):
        raise PhotoEnhanceError(f"{where}: expected uint8 or float [0, 1] pixels, got {a.dtype}")
    return to_uint8(a)


def image_grid(rows, titles=("input", "output", "target"), cell_inches=3.0, save_to=None):
    """One row per example, one column per title (e.g. input / output / target).

    `rows` is a sequence of rows, each a sequence of `len(titles)` images (a `None` leaves that cell
    empty, e.g. when there is no target). Titles are drawn above the first row only.
    """
    rows = [list(row) for row in rows]
    if not rows:
        raise PhotoEnhanceError("image_grid: no rows to draw")
    cols = len(titles)
    for r, row in enumerate(rows):
        if len(row) != cols:
            raise PhotoEnhanceError(f"image_grid: row {r} has {len(row)} images but there are {cols} titles")
    fig = Figure(figsize=(cell_inches * cols, cell_inches * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), cols, squeeze=False)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            ax = axes[r, c]
            ax.set_axis_off()
            if image is not None:
                ax.imshow(_displayable(image, f"image_grid row {r}, column {c}"), interpolation="nearest")
            if r == 0:
                ax.set_title(titles[c])
    return _finish(fig, save_to)


def side_by_side(before, after, titles=("before", "after"), dpi=100, title_px=28, gap_px=8, save_to=None):
    """Two photos next to each other at full resolution: one image pixel per figure pixel.

    The figure is exactly `W_before + gap + W_after` pixels wide and `max(H) + title` pixels tall at
    `dpi`, so a saved PNG (and the notebook's inline view, zoomed) shows every pixel, without a slider.
    """
    before = _displayable(before, "side_by_side before")
    after = _displayable(after, "side_by_side after")
    width = before.shape[1] + gap_px + after.shape[1]
    height = max(before.shape[0], after.shape[0]) + title_px
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    left = 0
    for image, title in ((before, titles[0]), (after, titles[1])):
        h, w = image.shape[:2]
        ax = fig.add_axes((left / width, (height - title_px - h) / height, w / width, h / height))
        ax.imshow(image, interpolation="nearest", aspect="equal")
        ax.set_axis_off()
        fig.text((left + w / 2) / width, 1 - (title_px / 2) / height, title, ha="center", va="center",
                 fontsize=max(8, title_px * 0.45 * 72 / dpi))
        left += w + gap_px
    return _finish(fig, save_to, dpi=dpi)


# ----------------------------------------------------------------------------- exposure statistics

def exposure_statistics(image):
    """Seed 003's exposure features of one image (as defined in the Exposure paper it cites).

    luminance = mean of 0.27 R + 0.67 G + 0.06 B; contrast = 2 x standard deviation of that luminance;
    saturation = mean HLS saturation, `(max - min) / (max + min)` where lightness < 0.5, else
    `(max - min) / (2 - max - min)`, 0 for gray pixels. Returns float64 `[3]`, each in [0, 1].
    """
    a = np.asarray(image)
    a = a.astype(np.float64) / 255.0 if a.dtype == np.uint8 else np.clip(a.astype(np.float64), 0.0, 1.0)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise PhotoEnhanceError(f"exposure_statistics: expected an H x W x 3 image, got shape {a.shape}")
    luma = a @ _EXPOSURE_LUMA
    high, low = a.max(axis=-1), a.min(axis=-1)
    spread, total = high - low, high + low
    denominator = np.where(total / 2 < 0.5, total, 2.0 - total)
    saturation = np.divide(spread, denominator, out=np.zeros_like(spread), where=spread > 0)
    return np.array([luma.mean(), 2.0 * luma.std(), saturation.mean()])


def _images_of(value, name):
    if isinstance(value, (str, pathlib.Path)):
        return [read_image(f) for f in images_in(value, f"images for '{name}'")]
    images = list(value) if not (isinstance(value, np.ndarray) and value.ndim == 3) else [value]
    if not images:
        raise PhotoEnhanceError(f"exposure histograms: no images for '{name}'")
    return images


def exposure_histogram_values(images, bins=32):
    """Normalised histograms (each sums to 1) of the per-image features over [0, 1]: `{feature: [bins]}`.

    `images`: a batch `[N,H,W,3]`, a list of images, or a folder of image files. Each image is one sample
    (the Exposure authors' script samples 16 random 64x64 crops per photo; pass such crops to match it).
    """
    stats = np.stack([exposure_statistics(im) for im in _images_of(images, "images")])
    return {name: np.histogram(stats[:, i], bins=bins, range=(0.0, 1.0))[0] / len(stats)
            for i, name in enumerate(EXPOSURE_FEATURES)}


def histogram_intersection(h1, h2):
    """Sum of bin-wise minima of two histograms, each first normalised to sum 1: 1 identical, 0 disjoint."""
    h1, h2 = np.asarray(h1, np.float64).ravel(), np.asarray(h2, np.float64).ravel()
    if h1.shape != h2.shape:
        raise PhotoEnhanceError(f"histogram_intersection: bin counts differ ({h1.size} vs {h2.size})")
    if np.any(h1 < 0) or np.any(h2 < 0) or h1.sum() <= 0 or h2.sum() <= 0:
        raise PhotoEnhanceError("histogram_intersection: histograms must be non-negative and not all zero")
    return float(np.minimum(h1 / h1.sum(), h2 / h2.sum()).sum())


def exposure_similarity(images_by_name, reference=None, bins=32):
    """Seed 003's similarity table: `{name: {feature: intersection with the reference dataset}}`.

    `reference` names the dataset the others are compared to (default: the first one).
    """
    histograms = {name: exposure_histogram_values(_images_of(v, name), bins) for name, v in images_by_name.items()}
    reference = next(iter(histograms)) if reference is None else reference
    if reference not in histograms:
        raise PhotoEnhanceError(f"exposure_similarity: reference '{reference}' is not one of {list(histograms)}")
    return {name: {f: histogram_intersection(h[f], histograms[reference][f]) for f in EXPOSURE_FEATURES}
            for name, h in histograms.items()}


def exposure_histograms(images_by_name, bins=32, reference=None, save_to=None):
    """Luminance / contrast / saturation histograms of each dataset, one panel per feature.

    `images_by_name` maps a dataset name to its images (batch, list or folder). The legend gives each
    dataset's histogram intersection with the reference dataset (default: the first).
    """
    if not images_by_name:
        raise PhotoEnhanceError("exposure_histograms: no datasets given")
    histograms = {name: exposure_histogram_values(_images_of(v, name), bins) for name, v in images_by_name.items()}
    reference = next(iter(histograms)) if reference is None else reference
    if reference not in histograms:
        raise PhotoEnhanceError(f"exposure_histograms: reference '{reference}' is not one of {list(histograms)}")
    edges = np.linspace(0.0, 1.0, bins + 1)
    fig = Figure(figsize=(5 * len(EXPOSURE_FEATURES), 3.6), layout="constrained")
    for ax, feature in zip(fig.subplots(1, len(EXPOSURE_FEATURES)), EXPOSURE_FEATURES):
        for name, h in histograms.items():
            label = name if name == reference else (
                f"{name} ({100 * histogram_intersection(h[feature], histograms[reference][feature]):.1f}%)")
            ax.stairs(h[feature], edges, label=label)
        ax.set_title(feature)
        ax.set_xlabel(feature)
        ax.set_ylabel("fraction of images")
        ax.legend(fontsize="small")
    return _finish(fig, save_to)
