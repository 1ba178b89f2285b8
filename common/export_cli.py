"""The export command shared by `python -m dped.export` and `python -m pix2pix.export`.

A model family parses its own source flags, builds a Keras model that maps [0,1] photos to [0,1], and
calls `run_export`. That writes the artifact (`common.export`) into a staging folder beside `--out`,
runs it beside the Keras model on sample photos (`--check-images DIR`, e.g. the DPED patches, else the
bundled scikit-image photos), prints the PSNR of its output against Keras', refuses to publish it below
`--min-psnr` (unless `--no-check`), writes a model card (Markdown + JSON) and only then moves both into
place: a failed export leaves nothing behind.
"""
import json
import os
import pathlib
import shlex
import shutil
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf

from common import export as E
from common.demo_data import demo_photos
from common.errors import PhotoEnhanceError
from common.images import images_in, read_image
from common.runtimes import load_artifact

# Lowest acceptable PSNR (dB) of the artifact against Keras, per quantisation; float32 exports measure
# ~80 dB, float16 ~80 dB, dynamic-int8 ~50 dB and int8 ~40 dB on the DPED generator.
DEFAULT_MIN_PSNR = {"none": 60.0, "float16": 50.0, "dynamic-int8": 35.0, "int8": 25.0}
MAX_PSNR = 100.0
MAX_CHECK_IMAGES = 4
TIMING_REPEATS = 2


class ExportCheckFailed(PhotoEnhanceError):
    """The exported artifact does not reproduce the Keras model closely enough; nothing was written."""


def command_line(module, argv=None):
    """The command as typed: `python -m MODULE ARGS` (`argv` None: this process's arguments)."""
    return shlex.join(["python", "-m", module, *(sys.argv[1:] if argv is None else argv)])


def add_export_arguments(parser):
    """The flags every export command shares (the model source flags are the family's own)."""
    parser.add_argument("--format", choices=E.FORMATS, default="saved_model",
                        help="saved_model (TF Serving layout OUT/<version>/), litert (.tflite) or onnx (.onnx)")
    parser.add_argument("--out", required=True,
                        help="saved_model: model folder (a new version is added); litert/onnx: new file")
    parser.add_argument("--quantize", choices=E.QUANTIZATIONS, default="none", help="litert only")
    parser.add_argument("--calibration-dir", help="photos for --quantize int8 calibration")
    parser.add_argument("--input-size", help="fixed HxW input (litert/onnx); runtimes tile larger photos")
    parser.add_argument("--mobile", choices=sorted(E.MOBILE_PRESETS),
                        help="mobile preset: ai-challenge = [1,1024,1536,3] float 0-255 in and out (litert)")
    parser.add_argument("--version", type=int, help="saved_model version number (default: the next one)")
    parser.add_argument("--check-images", help="photos for the parity check (default: bundled sample photos)")
    parser.add_argument("--min-psnr", type=float, help="parity threshold in dB (default depends on --quantize)")
    parser.add_argument("--no-check", action="store_true", help="write the artifact without the parity check")


def export_settings(args):
    """Validated export options from the parsed flags: format, quantize, input_size, scale, ..."""
    preset = E.MOBILE_PRESETS.get(args.mobile) if args.mobile else {}
    fmt = "litert" if args.mobile else args.format
    if args.mobile and args.format not in ("saved_model", "litert"):
        raise E.ExportError(f"--mobile {args.mobile} is a LiteRT preset; it does not apply to --format {args.format}")
    if args.quantize != "none" and fmt != "litert":
        raise E.ExportError(f"--quantize {args.quantize} applies to --format litert only")
    if args.calibration_dir and args.quantize != "int8":
        raise E.ExportError("--calibration-dir is used by --quantize int8 only")
    if args.quantize == "int8" and not args.calibration_dir:
        raise E.ExportError("--quantize int8 needs --calibration-dir DIR (photos like those the model will see)")
    input_size = E.parse_input_size(args.input_size) if args.input_size else preset.get("input_size")
    if input_size and fmt == "saved_model":
        raise E.ExportError("--input-size applies to litert and onnx; SavedModels take any size")
    if args.version is not None and (fmt != "saved_model" or args.version < 1):
        raise E.ExportError("--version takes a positive integer and applies to --format saved_model only")
    min_psnr = DEFAULT_MIN_PSNR[args.quantize] if args.min_psnr is None else args.min_psnr
    return {"format": fmt, "quantize": args.quantize, "input_size": input_size,
            "scale": preset.get("scale", 1.0), "preset": args.mobile, "min_psnr": min_psnr}


def sample_images(folder=None):
    """uint8 photos for the parity check and int8 calibration: up to `MAX_CHECK_IMAGES` from `folder`,
    else the bundled scikit-image photos."""
    if folder is None:
        return demo_photos()[:MAX_CHECK_IMAGES]
    files = images_in(folder, "sample photos for the check and calibration")
    return [read_image(path) for path in files[:MAX_CHECK_IMAGES]]


def _seconds(fn, x):
    """Median wall time of `fn(x)` over `TIMING_REPEATS` runs after a warm-up run."""
    fn(x)
    times = []
    for _ in range(TIMING_REPEATS):
        start = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def peak_psnr(output, reference):
    """PSNR (dB) of `output` against `reference` with peak max(1, reference max), for [0,1] photos and
    unbounded (HDR) outputs alike; capped at `MAX_PSNR` (identical outputs)."""
    mse = float(np.mean((np.asarray(output, np.float64) - np.asarray(reference, np.float64)) ** 2))
    peak = max(1.0, float(np.max(reference)))
    return MAX_PSNR if mse == 0 else min(MAX_PSNR, 10.0 * np.log10(peak ** 2 / mse))


def measure_parity(artifact, model, images, input_size=None):
    """PSNR and max |difference| of `artifact` against the Keras `model` on `images`, plus seconds per
    image for each; fixed-size artifacts get the photos resized and cropped to their size."""
    keras_fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def reference(x):
        return keras_fn(tf.convert_to_tensor(x)).numpy()

    batches = E.photo_batches(images, input_size)
    psnrs, diffs = [], []
    for x in batches:
        got, want = artifact(x), reference(x)
        psnrs.append(peak_psnr(got, want))
        diffs.append(float(np.max(np.abs(got - want))))
    return {"images": len(batches), "image_sizes": sorted({f"{b.shape[1]}x{b.shape[2]}" for b in batches}),
            "psnr_db_min": min(psnrs), "psnr_db_mean": float(np.mean(psnrs)), "max_abs_diff": max(diffs),
            "artifact_seconds": _seconds(artifact, batches[0]), "keras_seconds": _seconds(reference, batches[0]),
            "timed_on": f"{batches[0].shape[1]}x{batches[0].shape[2]}"}


def check_parity(parity, min_psnr, where):
    """Raise `ExportCheckFailed` when the measured PSNR is below `min_psnr`."""
    if not parity["psnr_db_min"] >= min_psnr:
        raise ExportCheckFailed(
            f"{where}: the exported model's output is {parity['psnr_db_min']:.1f} dB from the Keras model's "
            f"(threshold {min_psnr:.1f} dB); not written (use --no-check to keep it anyway)")


def _input_convention(settings, channels):
    height, width = settings["input_size"] or ("H", "W")
    batch = "N" if settings["format"] != "litert" else 1
    value_range = "float32 0-255" if settings["scale"] == 255.0 else "float32 [0, 1]"
    text = f"[{batch},{height},{width},{channels}] {value_range} in and out"
    if settings["format"] == "saved_model":
        text = (f"signature serving_default: uint8 [N,H,W,{channels}] in and out; signature float32: "
                f"[N,H,W,{channels}] float32 [0, 1] in and out; input and output key 'images'")
    return text


def artifact_size_bytes(path):
    """Bytes of an artifact file, or of all files in a SavedModel folder."""
    path = pathlib.Path(path)
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def model_card(settings, artifact_path, *, source, architecture, channels, parity, command):
    """The card as a dict: what was exported from where, how to feed it, and how close and fast it is."""
    return {"artifact": pathlib.Path(artifact_path).name, "format": settings["format"],
            "quantize": settings["quantize"], "mobile_preset": settings["preset"],
            "size_bytes": artifact_size_bytes(artifact_path), "source": str(source), "architecture": architecture,
            "input_convention": _input_convention(settings, channels),
            "fixed_input_size": list(settings["input_size"]) if settings["input_size"] else None,
            "parity": parity, "parity_threshold_db": settings["min_psnr"] if parity else None,
            "command": command}


def card_markdown(card):
    """A short Markdown rendering of `model_card`'s dict."""
    lines = [f"# Model card: {card['artifact']}", "",
             f"- format: {card['format']} (quantize: {card['quantize']}, mobile preset: {card['mobile_preset']})",
             f"- size: {card['size_bytes'] / 2**20:.2f} MiB", f"- source checkpoint: {card['source']}",
             f"- architecture: {card['architecture']}", f"- input convention: {card['input_convention']}"]
    parity = card["parity"]
    if parity is None:
        lines.append("- parity: not checked (--no-check)")
    else:
        lines += [f"- parity against Keras on {parity['images']} sample photos ({', '.join(parity['image_sizes'])}): "
                  f"PSNR min {parity['psnr_db_min']:.2f} dB, mean {parity['psnr_db_mean']:.2f} dB, max |diff| "
                  f"{parity['max_abs_diff']:.2e} (threshold {card['parity_threshold_db']:.1f} dB)",
                  f"- speed on {parity['timed_on']} (this machine): {parity['artifact_seconds']:.3f} s, Keras "
                  f"{parity['keras_seconds']:.3f} s"]
    return "\n".join(lines) + "\n"


def _with_ext(stem, ext):
    return stem.with_name(stem.name + ext)


def _targets(out, settings, version):
    """(final artifact path, final card stem path) for `--out`."""
    out = pathlib.Path(out)
    if settings["format"] == "saved_model":
        final = out / str(version or E.next_version(out))
        if final.exists():
            raise E.ExportError(f"{final}: version exists; choose another --version (exports never overwrite)")
        return final, final / "model_card"
    suffix = {"litert": ".tflite", "onnx": ".onnx"}[settings["format"]]
    if out.suffix != suffix:
        raise E.ExportError(f"{out}: --format {settings['format']} writes a file ending in {suffix}")
    card = out.with_name(out.stem + ".model_card")
    for path in (out, _with_ext(card, ".md"), _with_ext(card, ".json")):
        if path.exists():
            raise E.ExportError(f"{path}: exists; choose a new --out (exports never overwrite)")
    return out, card


def _write_artifact(model, path, settings, calibration):
    if settings["format"] == "saved_model":
        return E.export_saved_model(model, path)
    if settings["format"] == "onnx":
        return E.export_onnx(model, path, input_size=settings["input_size"])
    return E.export_litert(model, path, quantize=settings["quantize"], input_size=settings["input_size"],
                           scale=settings["scale"], calibration_images=calibration)


def run_export(model, args, *, source, architecture, command):
    """Export `model` ([0,1] -> [0,1] Keras model) as `args` say, check it, write its card; returns the card.

    `source` names the checkpoint, `architecture` describes the network, `command` is the command line."""
    settings = export_settings(args)
    calibration = sample_images(args.calibration_dir) if settings["quantize"] == "int8" else None
    final, card_stem = _targets(args.out, settings, args.version)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=".export-", dir=final.parent))
    try:
        staged = _write_artifact(model, staging / final.name, settings, calibration)
        parity = None
        if not args.no_check:
            parity = measure_parity(load_artifact(staged), model, sample_images(args.check_images),
                                    settings["input_size"])
            print(f"parity against Keras on {parity['images']} photos: PSNR min {parity['psnr_db_min']:.2f} dB, "
                  f"mean {parity['psnr_db_mean']:.2f} dB (threshold {settings['min_psnr']:.1f} dB)")
            check_parity(parity, settings["min_psnr"], final)
        card = model_card(settings, staged, source=source, architecture=architecture,
                          channels=int(model.input_shape[-1]), parity=parity, command=command)
        staged_card = (staged / "model_card") if staged.is_dir() else staging / card_stem.name
        _with_ext(staged_card, ".json").write_text(json.dumps(card, indent=2) + "\n")
        _with_ext(staged_card, ".md").write_text(card_markdown(card))
        if not staged.is_dir():
            for ext in (".json", ".md"):
                os.replace(_with_ext(staged_card, ext), _with_ext(card_stem, ext))
        os.replace(staged, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"wrote {final} ({card['size_bytes'] / 2**20:.2f} MiB) and its model card")
    return card
