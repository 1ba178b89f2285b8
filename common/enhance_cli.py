"""The one enhance driver behind `dped.enhance` and `pix2pix.enhance`: flags, the photo loop, the rules.

A family module gives its model sources (`ModelSource`: a flag and a loader) and an enhancer factory;
this module parses the shared flags, checks every input and the output folder before any photo is
processed, loads the model, and enhances photo after photo under these rules:
- the output format follows the input unless `--format` says otherwise (JPEG at `--quality`, 95), named
  `<stem><--suffix>.<ext>`; EXIF (orientation reset to 1) and the ICC profile are carried over;
  `--bit-depth 16` writes 16-bit PNG/TIFF;
- an input is never written over (a planned output that is an input is an error before anything runs),
  an existing output is skipped and counted unless `--overwrite`, every write is atomic;
- a photo that cannot be read or enhanced is counted and listed and the others go on; the command then
  fails with a one-line summary (exit 2), or at the first such photo with `--fail-fast`;
- `--memory-budget-mb` bounds the process's peak resident memory (`common.tiling.plan_memory`, from the
  memory measured once TensorFlow and the model are loaded); a budget above the machine's memory is
  capped with a message;
- TensorFlow's native log lines are hidden unless `--verbose`. They come from absl before its logging is
  initialised, so `TF_CPP_MIN_LOG_LEVEL` does not hide them: file descriptor 2 is pointed at /dev/null
  for the run (Python's own stderr keeps the terminal). TensorFlow is therefore imported only inside the
  run, after that redirection, by this module and by the family modules' loaders.
"""
import argparse
import contextlib
import dataclasses
import logging
import os
import pathlib
import sys
import tempfile
import time
import warnings
from typing import Callable

import numpy as np
from tqdm import tqdm

from common.errors import ImageReadError, PhotoEnhanceError
from common.export import load_saved_model_signature
from common.images import collect_image_files
from common.photo_read import SRGB_PROFILE, read_photo
from common.atomic_files import atomic_output
from common.photo_write import EXTENSIONS, FORMATS, SIXTEEN_BIT_FORMATS, write_photo
from common.runtimes import load_artifact
from common.tiling import machine_memory_bytes, peak_rss_bytes, plan_memory

BUDGET_ENV = "PHOTOENHANCE_MEMORY_BUDGET_MB"
DEFAULT_MEMORY_BUDGET_MB = float(os.environ.get(BUDGET_ENV, 2048))
"""The default `--memory-budget-mb`: 2048, or `$PHOTOENHANCE_MEMORY_BUDGET_MB` (e.g. for a notebook kernel,
whose resident memory already holds earlier work)."""
DEFAULT_QUALITY = 95
MIN_PHOTO_SIDE = 8
SAME_FORMAT_EXTENSIONS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF",
                          ".webp": "WEBP"}
WARM_UP_SIDE = 32


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """One way to name a model on the command line: `flag VALUE`, loaded by `load(VALUE)`."""

    flag: str
    help: str
    load: Callable
    choices: tuple = None


@dataclasses.dataclass(frozen=True)
class Job:
    """One photo to enhance and the file it will be written to."""

    source: pathlib.Path
    output: pathlib.Path
    format: str


def load_any_artifact(path):
    """An exported SavedModel folder, `.tflite` or `.onnx` as a callable on [0, 1] batches
    (`common.runtimes`; fixed-size artifacts run larger photos in windows)."""
    return load_artifact(path)


ARTIFACT_SOURCE = ModelSource("--model", "any exported artifact: a SavedModel folder, a .tflite or an .onnx file",
                              load_any_artifact)


def load_saved_model(path):
    """The `float32` ([0, 1] in and out) signature of a SavedModel folder written by either family's export."""
    return load_saved_model_signature(path, "float32")


def build_parser(prog, description, sources):
    """The shared flags: inputs, output rules, memory budget, tiling, progress and logging, one source."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("inputs", nargs="+", help="photo files and/or folders of photos")
    p.add_argument("--output-dir", required=True, help="folder for the enhanced photos (created if needed)")
    add_source_flags(p, sources)
    p.add_argument("--format", choices=("same",) + tuple(FORMATS), default="same",
                   help="output format; same: as the input (PNG for BMP/GIF inputs)")
    p.add_argument("--quality", type=int, default=DEFAULT_QUALITY, help="JPEG/WebP quality 1..100")
    p.add_argument("--suffix", default="", help="added to each output's stem, e.g. _enhanced")
    p.add_argument("--bit-depth", type=int, choices=(8, 16), default=8,
                   help="16: write 16-bit PNG/TIFF (the network's float output, not rounded to 8 bits)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs instead of skipping them")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first photo that fails")
    p.add_argument("--memory-budget-mb", type=float, default=DEFAULT_MEMORY_BUDGET_MB,
                   help=f"peak resident memory of the whole process; larger photos run in tiles (default "
                        f"2048, or ${BUDGET_ENV})")
    p.add_argument("--tile", type=int, help="largest tile side in px (default: as large as the budget allows)")
    p.add_argument("--overlap", type=int, help="tile context/overlap in px (default: the model's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's own log lines")
    return p


def add_source_flags(parser, sources):
    """One required, mutually exclusive flag per model source."""
    group = parser.add_mutually_exclusive_group(required=True)
    for source in sources:
        group.add_argument(source.flag, help=source.help, choices=source.choices)


def chosen_source(args, sources):
    """(source, value) of the one model source given on the command line."""
    for source in sources:
        value = getattr(args, source.flag.lstrip("-").replace("-", "_"))
        if value:
            return source, value
    raise PhotoEnhanceError("give exactly one of " + ", ".join(s.flag for s in sources))


def plan_jobs(args, extra_suffixes=()):
    """Every input's output file, checked before anything runs: no output may be an input or be planned
    twice; `--bit-depth 16` needs PNG/TIFF outputs. `extra_suffixes` are side outputs (e.g. ".hdr")."""
    if not 1 <= args.quality <= 100:
        raise PhotoEnhanceError(f"--quality must be 1..100, got {args.quality}")
    if os.sep in args.suffix or (os.altsep and os.altsep in args.suffix):
        raise PhotoEnhanceError(f"--suffix {args.suffix!r} must not contain a path separator")
    files = collect_image_files(args.inputs)
    out_dir = pathlib.Path(args.output_dir)
    inputs = {p.resolve(): p for p in files}
    jobs, planned = [], {}
    for path in files:
        fmt, ext = _output_format(path, args.format)
        if args.bit_depth == 16 and fmt not in SIXTEEN_BIT_FORMATS:
            raise PhotoEnhanceError(f"{path}: --bit-depth 16 needs PNG or TIFF output; add --format png or tiff")
        job = Job(path, out_dir / f"{path.stem}{args.suffix}{ext}", fmt)
        for target in [job.output] + [job.output.with_suffix(s) for s in extra_suffixes]:
            resolved = target.resolve()
            if resolved in inputs:
                raise PhotoEnhanceError(f"{target}: would overwrite the input {inputs[resolved]}; choose another "
                                        "--output-dir or a --suffix")
            if resolved in planned:
                raise PhotoEnhanceError(f"{path} and {planned[resolved]} would both be written as {target}; "
                                        "rename one or use --format")
            planned[resolved] = path
        jobs.append(job)
    return jobs


def _output_format(path, choice):
    if choice != "same":
        return FORMATS[choice], EXTENSIONS[FORMATS[choice]]
    fmt = SAME_FORMAT_EXTENSIONS.get(path.suffix.lower())
    return (fmt, path.suffix) if fmt else ("PNG", ".png")


def prepare_output_dir(out_dir):
    """Create the output folder and prove it writable, or fail with one line before any photo runs."""
    out_dir = pathlib.Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise PhotoEnhanceError(f"{out_dir}: output folder is a file")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as exc:
        raise PhotoEnhanceError(f"{out_dir}: output folder cannot be written ({exc.strerror or exc})") from None
    return out_dir


@contextlib.contextmanager
def quiet_native_logs(verbose):
    """Hide TensorFlow's native (C++) log lines and Python-side warnings unless `verbose`."""
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        yield
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    sys.stderr.flush()
    saved_fd = os.dup(2)
    python_stderr = sys.stderr
    to_terminal = _writes_to_fd2(sys.stderr)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        if to_terminal:
            sys.stderr = os.fdopen(os.dup(saved_fd), "w", buffering=1)
        os.dup2(devnull, 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            logging.getLogger("tensorflow").setLevel(logging.ERROR)
            logging.getLogger("absl").setLevel(logging.ERROR)
            yield
    finally:
        if sys.stderr is not python_stderr:
            sys.stderr.flush()
            sys.stderr.close()
            sys.stderr = python_stderr
        os.dup2(saved_fd, 2)
        os.close(saved_fd)
        os.close(devnull)


def _writes_to_fd2(stream):
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


def memory_budget_bytes(budget_mb):
    """`--memory-budget-mb` in bytes, capped (with a message) at the machine's physical memory."""
    if budget_mb <= 0:
        raise PhotoEnhanceError(f"--memory-budget-mb must be positive, got {budget_mb:g}")
    total = machine_memory_bytes()
    if budget_mb * 2**20 > total:
        print(f"note: --memory-budget-mb {budget_mb:g} exceeds this machine's memory; using "
              f"{total / 2**20:.0f} MB", file=sys.stderr)
        return total
    return int(budget_mb * 2**20)


def enhance_all(args, jobs, enhancer):
    """The photo loop: skip existing outputs, enhance and write the rest, collect failures.

    Returns (written paths, skipped count, [(photo, problem)]); with `--fail-fast` the first failure raises.
    """
    budget = memory_budget_bytes(args.memory_budget_mb)
    enhancer.warm_up(WARM_UP_SIDE)
    baseline = peak_rss_bytes()
    if baseline >= budget:
        raise PhotoEnhanceError(f"--memory-budget-mb {budget / 2**20:.0f} is below the {baseline / 2**20:.0f} MB "
                                "this command needs before any photo (TensorFlow and the model)")
    written, skipped, failed = [], 0, []
    for job in tqdm(jobs, desc="enhancing", unit="photo", disable=args.no_progress or len(jobs) < 2):
        if job.output.exists() and not args.overwrite:
            skipped += 1
            continue
        try:
            written.append(enhance_one(args, job, enhancer, budget, baseline))
        except PhotoEnhanceError as exc:
            if args.fail_fast:
                raise
            failed.append((job.source, getattr(exc, "problem", None) or str(exc)))
    return written, skipped, failed


def enhance_one(args, job, enhancer, budget, baseline):
    """Read, check, enhance and atomically write one photo (and its side outputs); returns the output."""
    photo = read_photo(job.source)
    height, width = photo.pixels.shape[:2]
    if min(height, width) < MIN_PHOTO_SIDE:
        raise ImageReadError(job.source, f"{width}x{height} is below the {MIN_PHOTO_SIDE} px the networks need "
                                         "on each side")
    pixels = enhancer.prepare(photo.pixels)
    side = plan_memory(pixels.shape[0], pixels.shape[1], budget, baseline, enhancer.bytes_per_pixel,
                       halo=enhancer.halo, tile=args.tile, buffer_bytes_per_pixel=enhancer.buffer_bytes_per_pixel)
    out_dtype = np.uint16 if args.bit_depth == 16 else np.uint8
    image, extras = enhancer(pixels, side, out_dtype)
    icc, from_srgb = photo.icc, photo.srgb_converted
    if from_srgb and out_dtype == np.uint16:
        icc, from_srgb = SRGB_PROFILE.tobytes(), False  # 16-bit pixels stay sRGB: tag them so.
    for suffix, write in extras.items():
        with atomic_output(job.output.with_suffix(suffix)) as tmp:
            write(tmp)
    return write_photo(job.output, image, job.format, quality=args.quality, exif=photo.exif, icc=icc,
                       from_srgb=from_srgb)


def run(args, sources, make_enhancer, extra_suffixes=()):
    """Check inputs and the output folder, load the model, enhance every photo, print the summary.

    `make_enhancer(model)` wraps the loaded model for the family. Returns the written paths; raises
    `PhotoEnhanceError` (one line, exit 2) when any photo failed.
    """
    with quiet_native_logs(args.verbose):
        jobs = plan_jobs(args, extra_suffixes)
        out_dir = prepare_output_dir(args.output_dir)
        source, value = chosen_source(args, sources)
        enhancer = make_enhancer(source.load(value))
        start = time.perf_counter()
        written, skipped, failed = enhance_all(args, jobs, enhancer)
        seconds = time.perf_counter() - start
    print(f"enhanced {len(written)} photo(s) into {out_dir} in {seconds:.1f} s; skipped {skipped} existing "
          f"(--overwrite to redo); failed {len(failed)}")
    for path, problem in failed:
        print(f"failed: {path}: {problem}", file=sys.stderr)
    if failed:
        raise PhotoEnhanceError(f"{len(failed)} of {len(jobs)} photo(s) failed (listed above)")
    return written
