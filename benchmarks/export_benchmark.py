"""Every export of the DPED generator beside Keras: seconds per photo, size, and quality on real pairs.

One process, runtimes interleaved (each repeat times every runtime once, in turn), 2 threads each:
Keras (`tf.function`), SavedModel, LiteRT float32 / float16 / dynamic-int8 / int8 (XNNPACK) and ONNX
Runtime, at 1280x720 and 360x640 (the first full-size photo, centre-cropped and resized). Quality: PSNR
and MS-SSIM (`common.metrics`) of each runtime's output on the 100 phone patches against their DSLR
patches, and PSNR against the Keras output. Also a fixed-size LiteRT model (`--window`, float32) run on
the full-size photos in overlapping windows (`common.runtimes`), against whole-photo Keras: the price
of per-window instance-norm statistics. PSNR against Keras is capped at 100 dB (identical outputs).

    python benchmarks/export_benchmark.py --checkpoint ../shared/dped/pretrained/iphone_orig \
        --data ../shared/dped --out benchmarks/results/export_benchmark.json

Measured (2026-12-02, authors' iphone weights, 2 CPU cores shared with other jobs, so seconds are noisy;
results/export_benchmark.json): every LiteRT variant runs at 1280x720. Seconds at 720x1280 / 360x640:
Keras 25.4 / 4.70, SavedModel 24.8 / 4.82, LiteRT float32 23.6 / 4.55, float16 20.4 / 4.29,
dynamic-int8 7.95 / 1.56 (3.2x / 3.0x faster than Keras), int8 12.5 / 3.02, ONNX Runtime 26.1 / 5.17.
PSNR / MS-SSIM on the 100 pairs: 21.84 dB / 0.9162 for Keras, SavedModel, LiteRT float32/float16 and
ONNX; dynamic-int8 21.85 / 0.9161; int8 21.42 / 0.8950. Against Keras' output: float16 85.5 dB,
dynamic-int8 53.3 dB, int8 28.9 dB, the others identical to float precision. 360x640 windows on the four
720x1280 photos: 36.7, 37.4, 32.1, 31.3 dB from whole-photo Keras.
"""
import argparse
import json
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


SIZES = ((720, 1280), (360, 640))
VARIANTS = ("keras", "saved_model", "litert-float32", "litert-float16", "litert-dynamic-int8", "litert-int8",
            "onnx")
CALIBRATION_PAIRS = 20


def build_artifacts(model, folder, calibration, window):
    """Write every artifact of `model` into `folder`; returns {variant: path} and the windowed model."""
    from common import export as E

    folder = pathlib.Path(folder)
    paths = {"saved_model": E.export_saved_model(model, folder / "sm", version=1),
             "onnx": E.export_onnx(model, folder / "model.onnx")}
    for quantize in ("none", "float16", "dynamic-int8", "int8"):
        name = "litert-float32" if quantize == "none" else f"litert-{quantize}"
        paths[name] = E.export_litert(model, folder / f"{name}.tflite", quantize=quantize,
                                      calibration_images=calibration if quantize == "int8" else None)
    windowed = E.export_litert(model, folder / "window.tflite", input_size=window)
    return paths, windowed


def runners(model, paths):
    """{variant: fn([1,h,w,3] float32 [0,1]) -> numpy} for Keras and every artifact."""
    import tensorflow as tf

    from common.runtimes import load_artifact

    traced = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    fns = {"keras": lambda x: traced(tf.convert_to_tensor(x)).numpy()}
    fns.update({name: load_artifact(path) for name, path in paths.items()})
    return fns


def time_interleaved(fns, photo, repeats):
    """{variant: {"HxW": median seconds}} with the runtimes taking turns in every repeat."""
    import numpy as np
    import tensorflow as tf

    results = {name: {} for name in fns}
    for height, width in SIZES:
        x = tf.image.resize(photo[None], (height, width), antialias=True).numpy()
        times = {name: [] for name in fns}
        for name, fn in fns.items():
            fn(x)  # warm-up: tracing, allocation, XNNPACK packing
        for _ in range(repeats):
            for name, fn in fns.items():
                start = time.perf_counter()
                fn(x)
                times[name].append(time.perf_counter() - start)
        for name in fns:
            results[name][f"{height}x{width}"] = float(np.median(times[name]))
        print(f"timed {height}x{width}", file=sys.stderr, flush=True)
    return results


def quality(fns, phone, dslr):
    """PSNR/MS-SSIM of each runtime against the DSLR patches and PSNR against the Keras output."""
    import numpy as np

    from common.export_cli import MAX_PSNR
    from common.metrics import ms_ssim, psnr

    outputs = {name: np.concatenate([np.clip(fn(p[None]), 0, 1) for p in phone]) for name, fn in fns.items()}
    print(f"ran {len(phone)} patches through {len(fns)} runtimes", file=sys.stderr, flush=True)
    return {name: {"psnr_db": float(np.mean(psnr(out, dslr))), "ms_ssim": float(np.mean(ms_ssim(out, dslr))),
                   "psnr_vs_keras_db": min(MAX_PSNR, float(np.mean(psnr(out, outputs["keras"]))))}
            for name, out in outputs.items()}


def windowed_parity(model, windowed_path, photos):
    """PSNR of the fixed-size model run in windows against whole-photo Keras, per full-size photo."""
    import numpy as np

    from common.metrics import psnr
    from common.runtimes import load_artifact

    artifact = load_artifact(windowed_path)
    values, seconds = [], []
    for photo in photos:
        whole = np.clip(model(photo[None], training=False).numpy(), 0, 1)
        start = time.perf_counter()
        tiled = np.clip(artifact(photo[None]), 0, 1)
        seconds.append(time.perf_counter() - start)
        values.append(float(psnr(tiled, whole)[0]))
    return {"window": list(artifact.input_size), "psnr_db": values, "seconds": seconds}


def load_pairs(data):
    import numpy as np

    from common.images import list_images, read_image, to_float

    phone = [to_float(read_image(p)) for p in list_images(data / "patches" / "iphone")]
    dslr = np.stack([to_float(read_image(p)) for p in list_images(data / "patches" / "canon")])
    photos = [to_float(read_image(p)) for p in list_images(data / "full_size")]
    return phone, dslr, photos


def table(report):
    """The Markdown table of the report."""
    lines = ["| runtime | size MiB | 720x1280 s | 360x640 s | PSNR dB | MS-SSIM | PSNR vs Keras dB |",
             "|---|---|---|---|---|---|---|"]
    for name in VARIANTS:
        t, q = report["seconds"][name], report["quality"][name]
        size = report["size_mib"].get(name)
        lines.append(f"| {name} | {'-' if size is None else f'{size:.2f}'} | {t['720x1280']:.2f} | "
                     f"{t['360x640']:.2f} | {q['psnr_db']:.2f} | {q['ms_ssim']:.4f} | {q['psnr_vs_keras_db']:.1f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, help="the authors' TF1 checkpoint prefix (iphone_orig)")
    parser.add_argument("--data", required=True, help="folder with patches/{iphone,canon} and full_size/")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--window", default="360x640", help="fixed input HxW of the windowed LiteRT model")
    parser.add_argument("--out", help="JSON file for the results")
    args = parser.parse_args(argv)
    import numpy as np
    import tensorflow as tf

    from common.export import parse_input_size
    from common.export_cli import artifact_size_bytes
    from dped.convert_original import load_original_checkpoint

    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    model = load_original_checkpoint(args.checkpoint)
    phone, dslr, photos = load_pairs(pathlib.Path(args.data))
    calibration = [np.round(p * 255).astype(np.uint8) for p in phone[:CALIBRATION_PAIRS]]
    with tempfile.TemporaryDirectory() as folder:
        paths, windowed = build_artifacts(model, folder, calibration, parse_input_size(args.window))
        fns = runners(model, paths)
        report = {"size_mib": {name: artifact_size_bytes(path) / 2**20 for name, path in paths.items()},
                  "seconds": time_interleaved(fns, photos[0], args.repeats),
                  "quality": quality(fns, phone, dslr), "windowed": windowed_parity(model, windowed, photos)}
    print(table(report))
    w = report["windowed"]
    print(f"windowed LiteRT {w['window']} on full-size photos vs whole-photo Keras: "
          + ", ".join(f"{v:.1f} dB" for v in w["psnr_db"]) + f" ({np.mean(w['seconds']):.2f} s per photo)")
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
