"""Build a DPED-style dataset from your own phone and DSLR photos of the same scenes.

    python -m datasets.build_dped --phone-dir P --dslr-dir D --out ROOT --phone NAME

What the DPED authors did (Ignatov et al. 2017, section 3.2.1), step by step:
1. pair the photos: by file name, else by EXIF capture time within `--time-tolerance` seconds;
2. align each pair globally (ORB features + RANSAC homography, refined to sub-pixel accuracy; see
   `datasets.alignment`) and keep the part of the phone photo the DSLR photo covers;
3. cut `--patch-size` patches from the phone photo every `--stride` pixels; for each, search shifts
   (up to `--max-shift` px) and small rotations (up to `--max-rotation` degrees) of the DSLR window for
   the highest normalised cross-correlation, and keep the pair when it exceeds `--threshold` (0.9);
4. split by photo (`--test-fraction`, seeded), so no scene is in both splits, and write the released
   layout: `ROOT/NAME/training_data/{NAME,canon}/<i>.jpg`, `ROOT/NAME/test_data/patches/{NAME,canon}/<i>.jpg`
   and `ROOT/NAME/test_data/full_size_test_images/<i>.jpg` (the test phone photos).

`dped.train --data-dir ROOT --phone NAME` reads the result unchanged. Phone patches are exact crops of the
phone photo (what the model sees at inference); only the DSLR side is resampled. Every photo's result
is kept under `ROOT/NAME/.build/`, so an interrupted run resumes where it stopped and a repeated run
changes nothing. `ROOT/NAME/build_report.json` lists, per photo, the matches, inliers, residual,
kept and rejected patches and why; `ROOT/NAME/previews/<photo>.jpg` outlines kept (green) and rejected
patches (red: low correlation; yellow: flat; blue: the DSLR window left the photo). Unreadable,
unpairable and unalignable photos are skipped with a reason and counted.
"""
import argparse
import dataclasses
import datetime
import hashlib
import io
import json
import math
import os
import pathlib
import re
import shutil

import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError
from skimage.transform import resize
from tqdm.auto import tqdm

from common.cli import console_script
from common.data import DSLR
from common.errors import DataLayoutError, ImageReadError, PhotoEnhanceError
from common.images import images_in, read_image, write_image
from common.atomic_files import write_bytes
from datasets import alignment

_VERSION = 2  # 2: photos colour-managed to sRGB before alignment
EXIF_IFD, DATETIME_ORIGINAL, SUBSEC_ORIGINAL, DATETIME = 0x8769, 36867, 37521, 306
PREVIEW_SIDE = 1280
COLOURS = {"kept": (0, 220, 0), "low_correlation": (230, 0, 0), "flat": (240, 200, 0), "outside": (90, 90, 255)}


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything that decides a photo's patches: a cached photo is reused only under equal settings."""

    patch_size: int = 100
    stride: int = 100
    threshold: float = 0.9
    max_shift: int = 4
    max_rotation: float = 1.0
    rotation_steps: int = 5
    min_inliers: int = 25
    max_zoom: float = 2.0
    min_overlap: float = 0.3
    feature_side: int = 1200
    seed: int = 0

    def angles(self):
        if self.max_rotation == 0 or self.rotation_steps < 2:
            return (0.0,)
        return tuple(float(a) for a in np.linspace(-self.max_rotation, self.max_rotation, self.rotation_steps))

    def check(self):
        if self.patch_size < 8 or self.stride < 1 or self.max_shift < 0 or self.rotation_steps < 1:
            raise PhotoEnhanceError("need --patch-size >= 8, --stride >= 1, --max-shift >= 0, --rotation-steps >= 1")
        if not -1.0 < self.threshold <= 1.0:
            raise PhotoEnhanceError(f"--threshold must be in (-1, 1], got {self.threshold}")
        if not 0 <= self.max_rotation <= 10:
            raise PhotoEnhanceError(f"--max-rotation must be between 0 and 10 degrees, got {self.max_rotation}")


@dataclasses.dataclass
class AlignedPair:
    """A pair after global alignment: `dslr` as used (shrunk to the phone's scale when it has more
    pixels), `alignment.matrix` mapping phone pixels to it, `to_original` from it to the DSLR file's
    pixels, and `box` the common area in phone pixels."""

    alignment: alignment.Alignment
    phone_gray: np.ndarray
    dslr: np.ndarray
    dslr_gray: np.ndarray
    to_original: np.ndarray
    box: tuple


@dataclasses.dataclass
class Pair:
    """One phone photo and its DSLR twin; `key` names the pair in the cache, report and previews."""

    key: str
    phone: pathlib.Path
    dslr: pathlib.Path
    paired_by: str


# ------------------------------------------------------------------------------------------------ reading
def load_photo(path):
    """A photo as the enhancer will see it: upright (EXIF orientation), sRGB (ICC profiles such as a phone's
    Display P3 converted), uint8 RGB; `ImageReadError` naming the file otherwise. Training pairs read any
    other way would teach the model colours or turns that `enhance` never shows it."""
    return read_image(path)


def capture_time(path):
    """EXIF capture time (`DateTimeOriginal` with sub-seconds, else `DateTime`) as a datetime, or None."""
    try:
        with Image.open(path) as im:
            exif = im.getexif()
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        return None
    sub = exif.get_ifd(EXIF_IFD)
    stamp, subsec = sub.get(DATETIME_ORIGINAL) or exif.get(DATETIME), sub.get(SUBSEC_ORIGINAL)
    try:
        when = datetime.datetime.strptime(str(stamp).strip("\x00 "), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    digits = "".join(ch for ch in str(subsec or "") if ch.isdigit())
    return when + datetime.timedelta(seconds=float(f"0.{digits}")) if digits else when


# ------------------------------------------------------------------------------------------------ pairing
def _by_stem(files, skipped):
    """`{stem: file}`; files sharing a stem (a.jpg, a.png) are ambiguous and go to `skipped`."""
    groups = {}
    for f in files:
        groups.setdefault(f.stem, []).append(f)
    for stem, group in groups.items():
        if len(group) > 1:
            skipped.extend({"file": str(f), "code": "unpaired",
                            "reason": f"{len(group)} files are named '{stem}'"} for f in group)
    return {stem: group[0] for stem, group in groups.items() if len(group) == 1}


def pair_photos(phone_files, dslr_files, *, by="auto", tolerance=2.0):
    """`(pairs, skipped)`: photos paired by stem (`by` "name"), by nearest EXIF capture time within
    `tolerance` seconds, one to one (`by` "time"), or by name first and time for the rest ("auto")."""
    skipped = []
    phones, dslrs = _by_stem(phone_files, skipped), _by_stem(dslr_files, skipped)
    pairs = []
    if by in ("auto", "name"):
        for stem in [s for s in phones if s in dslrs]:
            pairs.append(Pair(stem, phones.pop(stem), dslrs.pop(stem), "name"))
    if by in ("auto", "time") and phones and dslrs:
        pairs.extend(_pair_by_time(phones, dslrs, tolerance))
    how = {"name": "no DSLR photo of the same name", "time": "no DSLR photo taken within",
           "auto": "no DSLR photo of the same name or taken within"}[by]
    suffix = "" if by == "name" else f" {tolerance:g} s (by EXIF capture time)"
    for side, left in (("phone", phones), ("DSLR", dslrs)):
        for f in left.values():
            reason = how + suffix if side == "phone" else "no phone photo paired with it"
            skipped.append({"file": str(f), "code": "unpaired", "reason": reason})
    return sorted(pairs, key=lambda p: _natural(p.key)), skipped


def _pair_by_time(phones, dslrs, tolerance):
    """Greedy one-to-one pairing of the closest capture times; paired stems leave `phones` and `dslrs`."""
    times_p = {s: capture_time(f) for s, f in phones.items()}
    times_d = {s: capture_time(f) for s, f in dslrs.items()}
    candidates = sorted(
        (abs((tp - td).total_seconds()), sp, sd)
        for sp, tp in times_p.items() if tp for sd, td in times_d.items() if td
        if abs((tp - td).total_seconds()) <= tolerance)
    pairs = []
    for _, sp, sd in candidates:
        if sp in phones and sd in dslrs:
            pairs.append(Pair(f"{sp}+{sd}", phones.pop(sp), dslrs.pop(sd), "time"))
    return pairs


def _natural(name):
    """Sort key that puts IMG_2 before IMG_10."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", name) if t]


def split_photos(keys, test_fraction, seed):
    """`{key: "train" | "test"}`: the `round(test_fraction * n)` keys (at least one) of lowest
    `sha256(seed:key)` go to test. A photo's place in that order depends only on its own name, so adding
    photos later moves few others between the splits."""
    order = sorted(keys, key=lambda k: hashlib.sha256(f"{seed}:{k}".encode()).hexdigest())
    n_test = min(len(order) - 1, max(1, round(test_fraction * len(order))))
    return {k: ("test" if i < n_test else "train") for i, k in enumerate(order)}


# ---------------------------------------------------------------------------------------------- one pair
def align_pair(phone, dslr, settings):
    """Global alignment of two uint8 photos as an `AlignedPair`.

    A DSLR photo of higher resolution is first shrunk (anti-aliased) to the phone's scale, so patches are
    not aliased. Raises `AlignmentError` for too few inliers, wildly different scales, or little overlap.
    """
    phone_gray, dslr_gray = alignment.gray(phone), alignment.gray(dslr)
    found = alignment.estimate_homography(phone_gray, dslr_gray, feature_side=settings.feature_side,
                                          min_inliers=settings.min_inliers, seed=settings.seed)
    centre = ((phone.shape[1] - 1) / 2, (phone.shape[0] - 1) / 2)
    scale = found.scale(centre)
    zoom = scale / math.sqrt(dslr.shape[0] * dslr.shape[1] / (phone.shape[0] * phone.shape[1]))
    if not 1 / settings.max_zoom <= zoom <= settings.max_zoom:
        raise alignment.AlignmentError(
            "scale_mismatch", f"the photos show the scene at very different scales (zoom ratio {zoom:.2f}; "
                              f"allowed 1/{settings.max_zoom:g}..{settings.max_zoom:g})")
    to_original = np.eye(3)
    if scale > 1.25:
        shape = (round(dslr.shape[0] / scale), round(dslr.shape[1] / scale))
        to_original = alignment.resize_back(dslr.shape, shape)
        dslr = np.round(resize(dslr, shape, anti_aliasing=True) * 255).astype(np.uint8)
        dslr_gray = alignment.gray(dslr)
        found = dataclasses.replace(found, matrix=np.linalg.inv(to_original) @ found.matrix)
    found = alignment.refine_homography(phone_gray, dslr_gray, found, seed=settings.seed)
    box = alignment.common_box(found.matrix, phone.shape, dslr.shape)
    overlap = (box[2] - box[0]) * (box[3] - box[1]) / (phone.shape[0] * phone.shape[1])
    if overlap < settings.min_overlap:
        raise alignment.AlignmentError("small_overlap", f"the DSLR photo covers only {100 * overlap:.0f}% of "
                                       f"the phone photo (need {100 * settings.min_overlap:.0f}%)")
    return AlignedPair(found, phone_gray, dslr, dslr_gray, to_original, box)


def _jpeg(image):
    """JPEG bytes (quality 95, as `common.images.write_image`) and the pixels they decode to."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=95)
    data = buffer.getvalue()
    with Image.open(io.BytesIO(data)) as im:
        return data, np.asarray(im.convert("RGB"))


def cut_patches(phone, aligned, settings):
    """Every grid patch of the common area with its best DSLR twin: `(kept, outlines)`.

    `kept`: `(phone_jpeg, dslr_jpeg, ncc)`; the correlation is measured on the decoded JPEGs, i.e. on
    exactly the pixels written. `outlines`: `((x, y, size), status, ncc)` for the preview and the report
    (`ncc` None for flat patches and windows that leave the DSLR photo; the search's best otherwise).
    """
    p, r = settings.patch_size, settings.max_shift
    margin = r + math.ceil(p * math.sin(math.radians(settings.max_rotation))) + 1
    x0, y0, x1, y1 = aligned.box
    matrix, dslr, dslr_gray = aligned.alignment.matrix, aligned.dslr, aligned.dslr_gray
    kept, outlines = [], []
    for y in range(y0 + margin, y1 - margin - p + 1, settings.stride):
        for x in range(x0 + margin, x1 - margin - p + 1, settings.stride):
            patch_gray = aligned.phone_gray[y: y + p, x: x + p]
            if patch_gray.std() < 0.01:
                outlines.append(((x, y, p), "flat", None))
                continue
            best = alignment.search_patch(patch_gray, dslr_gray, matrix, (x, y), max_shift=r,
                                          angles=settings.angles())
            if best is None or best[0] < settings.threshold:
                outlines.append(((x, y, p), "outside", None) if best is None else
                                ((x, y, p), "low_correlation", round(best[0], 4)))
                continue
            twin = alignment.sample_patch(dslr, alignment.patch_matrix(matrix, (x, y), p, *best[1:]), (p, p))
            phone_data, phone_pixels = _jpeg(phone[y: y + p, x: x + p])
            dslr_data, dslr_pixels = _jpeg(np.clip(np.round(twin), 0, 255).astype(np.uint8))
            ncc = alignment.correlation(phone_pixels, dslr_pixels)
            status = "kept" if ncc > settings.threshold else "low_correlation"
            outlines.append(((x, y, p), status, round(ncc, 4)))
            if status == "kept":
                kept.append((phone_data, dslr_data, ncc))
    return kept, outlines


def draw_preview(phone, outlines, path):
    """The phone photo (long side at most 1280 px) with every patch outlined in its status colour."""
    image = Image.fromarray(phone)
    factor = min(1.0, PREVIEW_SIDE / max(image.size))
    if factor < 1.0:
        image = image.resize((round(image.width * factor), round(image.height * factor)), Image.LANCZOS)
    draw = ImageDraw.Draw(image)
    for (x, y, size), status, _ in outlines:
        box = [x * factor, y * factor, (x + size) * factor - 1, (y + size) * factor - 1]
        draw.rectangle(box, outline=COLOURS[status], width=max(1, round(2 * factor)))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90, subsampling=0)  # 4:4:4 keeps thin outlines' colours
    write_bytes(path, buffer.getvalue())


# ------------------------------------------------------------------------------------------ cache per pair
def _file_stamp(path):
    stat = pathlib.Path(path).stat()
    return [pathlib.Path(path).name, stat.st_size, stat.st_mtime_ns]


def fingerprint(pair, settings):
    """What a cached photo result depends on: the builder version, the settings and both input files."""
    return {"version": _VERSION, "settings": dataclasses.asdict(settings),
            "phone": _file_stamp(pair.phone), "dslr": _file_stamp(pair.dslr)}


def process_pair(pair, settings, dataset_dir):
    """Align one pair and cut its patches into `.build/<key>/` (written to a temp folder, then renamed);
    a result already cached for the same inputs and settings is returned as it is. Returns the result."""
    cache = dataset_dir / ".build" / pair.key
    stamp = fingerprint(pair, settings)
    cached = _read_json(cache / "result.json")
    if cached is not None and cached.get("fingerprint") == stamp:
        return dict(cached, cached=True)
    result = {"key": pair.key, "phone": str(pair.phone), "dslr": str(pair.dslr), "paired_by": pair.paired_by,
              "fingerprint": stamp}
    tmp = cache.with_name(f".{pair.key}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "phone").mkdir(parents=True)
    (tmp / "dslr").mkdir()
    try:
        result.update(_align_and_cut(pair, settings, tmp, dataset_dir / "previews" / f"{pair.key}.jpg"))
    except (ImageReadError, alignment.AlignmentError) as exc:
        code = getattr(exc, "code", "unreadable")
        result.update(status="skipped", code=code, reason=str(exc), kept=0)
    (tmp / "result.json").write_text(json.dumps(result, indent=1))
    if cache.exists():
        shutil.rmtree(cache)
    os.replace(tmp, cache)
    return dict(result, cached=False)


def _align_and_cut(pair, settings, folder, preview_path):
    """The alignment and patches of one pair, patches written to `folder/{phone,dslr}/<k>.jpg`."""
    phone, dslr = load_photo(pair.phone), load_photo(pair.dslr)
    aligned = align_pair(phone, dslr, settings)
    found, box = aligned.alignment, aligned.box
    kept, outlines = cut_patches(phone, aligned, settings)
    for k, (phone_data, dslr_data, _) in enumerate(kept):
        (folder / "phone" / f"{k}.jpg").write_bytes(phone_data)
        (folder / "dslr" / f"{k}.jpg").write_bytes(dslr_data)
    draw_preview(phone, outlines, preview_path)
    rejected = {}
    for _, status, _ in outlines:
        if status != "kept":
            rejected[status] = rejected.get(status, 0) + 1
    original = aligned.to_original @ found.matrix  # phone pixels -> pixels of the DSLR file
    result = {"status": "ok", "matches": found.matches, "inliers": found.inliers,
              "residual_px": round(found.residual_px, 4), "refined_windows": found.refined_windows,
              "dslr_px_per_phone_px": round(found.scale(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)), 4),
              "homography": (original / original[2, 2]).round(10).tolist(),
              "common_box": list(box), "kept": len(kept), "rejected": rejected,
              "mean_correlation": round(float(np.mean([k[2] for k in kept])), 4) if kept else None,
              "patches": [[x, y, status, ncc] for (x, y, _), status, ncc in outlines],
              "preview": str(preview_path)}
    if not kept:
        result.update(status="skipped", code="no_patches",
                      reason=f"no patch correlates above {settings.threshold} with its DSLR twin")
    return result


def _read_json(path):
    try:
        return json.loads(pathlib.Path(path).read_text())
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------- publishing
def assign_indices(results, split):
    """`{key: (split, first, end)}`: consecutive file numbers per split, photos in natural key order."""
    counters, ranges = {"train": 0, "test": 0}, {}
    for result in sorted(results, key=lambda r: _natural(r["key"])):
        name = split[result["key"]]
        ranges[result["key"]] = (name, counters[name], counters[name] + result["kept"])
        counters[name] += result["kept"]
    return ranges


def _link(source, target):
    """Hard link (no copy, no extra space); a copy where the file system has no hard links (e.g. Drive)."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def publish(dataset_dir, phone, results, ranges):
    """Write `training_data/` and `test_data/` of the released DPED layout from the cached patches.

    Both folders are assembled in a temp folder and swapped in only when complete; a manifest of what
    was published makes a repeated run with the same photos a no-op. Returns True when files changed.
    """
    manifest = {"version": _VERSION, "phone": phone,
                "photos": sorted([r["key"], *ranges[r["key"]], r["fingerprint"]] for r in results)}
    done = dataset_dir / ".build" / "published.json"
    finals = [dataset_dir / "training_data", dataset_dir / "test_data"]
    if _read_json(done) == manifest and all(f.is_dir() for f in finals):
        return False
    tmp = dataset_dir / ".publish.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    subs = {"train": tmp / "training_data", "test": tmp / "test_data" / "patches"}
    for folder in subs.values():
        (folder / phone).mkdir(parents=True)
        (folder / DSLR).mkdir()
    full_size = tmp / "test_data" / "full_size_test_images"
    full_size.mkdir()
    for result in sorted(results, key=lambda r: _natural(r["key"])):
        name, first, _ = ranges[result["key"]]
        cache = dataset_dir / ".build" / result["key"]
        for k in range(result["kept"]):
            _link(cache / "phone" / f"{k}.jpg", subs[name] / phone / f"{first + k}.jpg")
            _link(cache / "dslr" / f"{k}.jpg", subs[name] / DSLR / f"{first + k}.jpg")
    tests = [r for r in sorted(results, key=lambda r: _natural(r["key"])) if ranges[r["key"]][0] == "test"]
    for j, result in enumerate(tests):
        Image.fromarray(load_photo(result["phone"])).save(full_size / f"{j}.jpg", quality=95)
    old = dataset_dir / ".publish.old"
    shutil.rmtree(old, ignore_errors=True)
    old.mkdir()
    for final in finals:
        if final.exists():
            os.replace(final, old / final.name)
        os.replace(tmp / final.name, final)
    write_bytes(done, json.dumps(manifest).encode())
    shutil.rmtree(old)
    shutil.rmtree(tmp)
    return True


# ---------------------------------------------------------------------------------------------- the build
def _inputs(folder, flag):
    return images_in(folder, f"the {flag} photos", DataLayoutError)


def _check_output(dataset_dir, inputs):
    """Refuse an output that overlaps an input folder, or dataset folders this builder did not write."""
    dataset = dataset_dir.resolve()
    for folder in inputs:
        folder = pathlib.Path(folder).expanduser().resolve()
        if folder == dataset or dataset in folder.parents or folder in dataset.parents:
            raise PhotoEnhanceError(f"--out {dataset_dir.parent}: the dataset folder {dataset_dir} and the input "
                                    f"folder {folder} overlap; choose an --out outside the photo folders")
    ours = (dataset_dir / ".build").is_dir()  # written before any dataset folder, so also after an interruption
    for name in ("training_data", "test_data"):
        if (dataset_dir / name).exists() and not ours:
            raise PhotoEnhanceError(f"{dataset_dir / name} exists and was not written by this builder; "
                                    "choose another --out or --phone so it is not replaced")


def build_dataset(phone_dir, dslr_dir, out, phone, *, settings=Settings(), test_fraction=0.1, pair_by="auto",
                  time_tolerance=2.0, progress=True):
    """Build (or resume, or confirm) the dataset `out/phone`; returns the report also written to
    `out/phone/build_report.json`. Raises `DataLayoutError` when fewer than two photos give patches."""
    settings.check()
    if not 0.0 < test_fraction < 1.0:
        raise PhotoEnhanceError(f"--test-fraction must be between 0 and 1 (exclusive), got {test_fraction}")
    if not phone or phone in (".", "..") or phone == DSLR or any(c in phone for c in "/\\"):
        raise PhotoEnhanceError(f"--phone must be a folder name other than '{DSLR}', got {phone!r}")
    phone_files, dslr_files = _inputs(phone_dir, "--phone-dir"), _inputs(dslr_dir, "--dslr-dir")
    dataset_dir = pathlib.Path(out).expanduser() / phone
    _check_output(dataset_dir, (phone_dir, dslr_dir))
    pairs, skipped = pair_photos(phone_files, dslr_files, by=pair_by, tolerance=time_tolerance)
    results = [process_pair(pair, settings, dataset_dir)
               for pair in tqdm(pairs, desc="aligning photo pairs", unit="pair", disable=not progress)]
    usable = [r for r in results if r["status"] == "ok"]
    ranges = {}
    if len(usable) > 1:
        ranges = assign_indices(usable, split_photos([r["key"] for r in usable], test_fraction, settings.seed))
    report = _report(phone_dir, dslr_dir, dataset_dir, settings, test_fraction, results, skipped, ranges)
    if len(usable) < 2:
        write_bytes(dataset_dir / "build_report.json", json.dumps(report, indent=1).encode())
        raise DataLayoutError(f"only {len(usable)} photo pair(s) gave patches; need at least 2 (train and test). "
                              f"See {dataset_dir / 'build_report.json'} for why the others were skipped")
    report["published"] = publish(dataset_dir, phone, usable, ranges)
    write_bytes(dataset_dir / "build_report.json", json.dumps(report, indent=1).encode())
    return report


def _report(phone_dir, dslr_dir, dataset_dir, settings, test_fraction, results, skipped, ranges):
    """The JSON report: settings, totals, and per photo its alignment, patches, split and file numbers."""
    photos = []
    for result in results:
        entry = {k: v for k, v in result.items() if k != "fingerprint"}
        if result["key"] in ranges:
            name, first, end = ranges[result["key"]]
            entry.update(split=name, files=[first, end])
        photos.append(entry)
    skipped_codes = {}
    for item in skipped + [r for r in results if r["status"] != "ok"]:
        skipped_codes[item["code"]] = skipped_codes.get(item["code"], 0) + 1
    rejected = {}
    for result in results:
        for reason, count in result.get("rejected", {}).items():
            rejected[reason] = rejected.get(reason, 0) + count
    totals = {"pairs": len(results), "photos_used": len(ranges), "skipped": skipped_codes,
              "rejected_patches": rejected}
    for name in ("train", "test"):
        chosen = [r for r in results if ranges.get(r["key"], ("",))[0] == name]
        totals[f"{name}_photos"], totals[f"{name}_patches"] = len(chosen), sum(r["kept"] for r in chosen)
    return {"phone_dir": str(phone_dir), "dslr_dir": str(dslr_dir), "dataset": str(dataset_dir),
            "settings": dataclasses.asdict(settings), "test_fraction": test_fraction, "totals": totals,
            "photos": photos, "skipped_inputs": skipped}


def write_synthetic_pairs(folder, photos, seed=0):
    """Write `folder/dslr/<i>.png` (each photo as the DSLR shot) and `folder/phone/<i>.jpg` (its
    `alignment.phone_twin` under a random `alignment.known_warp`): pairs to try the builder on without a
    camera pair. Returns the phone and DSLR folders."""
    folder = pathlib.Path(folder)
    rng = np.random.default_rng(seed)
    for i, photo in enumerate(photos):
        write_image(folder / "dslr" / f"{i}.png", photo)
        twin = alignment.phone_twin(photo, alignment.known_warp(photo.shape, rng), seed=seed + i)
        write_image(folder / "phone" / f"{i}.jpg", twin)
    return folder / "phone", folder / "dslr"


def build_parser():
    p = argparse.ArgumentParser(prog="python -m datasets.build_dped", description=__doc__.split("\n\n")[0])
    p.add_argument("--phone-dir", required=True, help="folder of phone photos")
    p.add_argument("--dslr-dir", required=True, help="folder of DSLR photos of the same scenes")
    p.add_argument("--out", required=True, help="dataset root (the folder that plays dped/)")
    p.add_argument("--phone", required=True, help="name of the phone: the dataset folder and the patch folder")
    p.add_argument("--pair-by", choices=("auto", "name", "time"), default="auto",
                   help="pair by file name, by EXIF capture time, or by name then time (default)")
    p.add_argument("--time-tolerance", type=float, default=2.0, help="seconds between paired capture times")
    d = Settings()
    p.add_argument("--patch-size", type=int, default=d.patch_size, help="patch side in phone pixels (100)")
    p.add_argument("--stride", type=int, default=None, help="step between patches (default: the patch size)")
    p.add_argument("--threshold", type=float, default=d.threshold, help="minimum cross-correlation kept (0.9)")
    p.add_argument("--max-shift", type=int, default=d.max_shift, help="local search: shifts up to N px (4)")
    p.add_argument("--max-rotation", type=float, default=d.max_rotation, help="local search: +- degrees (1)")
    p.add_argument("--rotation-steps", type=int, default=d.rotation_steps, help="angles tried in that range (5)")
    p.add_argument("--min-inliers", type=int, default=d.min_inliers, help="feature matches a pair needs (25)")
    p.add_argument("--test-fraction", type=float, default=0.1, help="share of photos held out for testing")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the split and of RANSAC")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    settings = Settings(patch_size=args.patch_size, stride=args.stride or args.patch_size, threshold=args.threshold,
                        max_shift=args.max_shift, max_rotation=args.max_rotation, rotation_steps=args.rotation_steps,
                        min_inliers=args.min_inliers, seed=args.seed)
    report = build_dataset(args.phone_dir, args.dslr_dir, args.out, args.phone, settings=settings,
                           test_fraction=args.test_fraction, pair_by=args.pair_by,
                           time_tolerance=args.time_tolerance, progress=not args.no_progress)
    t = report["totals"]
    skipped = ", ".join(f"{n} {code}" for code, n in sorted(t["skipped"].items())) or "none"
    print(f"{t['pairs']} pair(s), {t['photos_used']} used: train {t['train_photos']} photos / "
          f"{t['train_patches']} patches, test {t['test_photos']} photos / {t['test_patches']} patches; "
          f"skipped: {skipped}\nreport: {pathlib.Path(report['dataset']) / 'build_report.json'}")
    return report


cli = console_script(main)


if __name__ == "__main__":
    cli()
