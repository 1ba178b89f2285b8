"""Run an exported artifact like the Keras model: float32 `[N,h,w,3]` photos in [0,1] in, [0,1] out.

`load_artifact(path)` accepts a SavedModel folder (flat or TF Serving's `PATH/<version>/`, its `float32`
signature), a `.tflite` file (the `ai-edge-litert` runtime with XNNPACK) or an `.onnx` file
(onnxruntime). The ai-challenge convention (input named `images_0_255`: values 0-255) is converted back
to [0,1]. An artifact with a fixed input size runs any photo in overlapping windows of exactly that size
(photos smaller than the window are mirror-padded), blended with raised-cosine weights; a network with
instance norm then sees each window's statistics, so the output is close to, not equal to, a whole-photo
run (measured in the export's model card and in `benchmarks/export_benchmark.py`).
"""
import pathlib

import numpy as np

from common.errors import PhotoEnhanceError
from common.export import SCALED_INPUT_NAME, load_saved_model_signature
from common.tiling import blend_windows

DEFAULT_THREADS = 2


class ArtifactError(PhotoEnhanceError):
    """A model artifact is missing, of an unknown kind, or cannot be opened by its runtime."""


def run_in_windows(fn, image, window, overlap=None):
    """`fn` ([1,wh,ww,C] -> [1,wh,ww,C']) over an [H,W,C] image in overlapping windows of exactly
    `window` = (wh, ww); returns float32 [H,W,C']. Default overlap: a quarter of the smaller side."""
    overlap = min(window) // 4 if overlap is None else int(overlap)
    return blend_windows(fn, image, window, overlap)


class Artifact:
    """A loaded artifact: `artifact(batch)` maps float32 [N,h,w,3] in [0,1] to [N,h,w,C] in [0,1].

    `kind` is "saved_model", "litert" or "onnx"; `input_size` is the fixed (h, w) or None; `scale` is the
    artifact's own value scale (1 or 255)."""

    def __init__(self, path, kind, run_one, input_size=None, scale=1.0):
        self.path, self.kind, self.input_size, self.scale = pathlib.Path(path), kind, input_size, float(scale)
        self._run_one = run_one

    def _native(self, batch):
        return np.asarray(self._run_one(np.asarray(batch, np.float32) * self.scale), np.float32) / self.scale

    def __call__(self, images):
        images = np.asarray(images, np.float32)
        if images.ndim != 4:
            raise ArtifactError(f"{self.path}: expects [N,h,w,C] batches, got shape {images.shape}")
        if self.input_size is None:
            return self._native(images)
        if images.shape[1:3] == tuple(self.input_size):
            return np.concatenate([self._native(image[None]) for image in images])
        return np.stack([run_in_windows(self._native, image, self.input_size) for image in images])


def _fixed_size(shape):
    """(h, w) from a [N,H,W,C] shape whose H and W are positive integers, else None (dynamic)."""
    h, w = shape[1], shape[2]
    return (int(h), int(w)) if isinstance(h, (int, np.integer)) and isinstance(w, (int, np.integer)) \
        and h > 0 and w > 0 else None


def _load_litert(path, num_threads):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
    signatures = interpreter.get_signature_list()
    if len(signatures) != 1 or len(next(iter(signatures.values()))["inputs"]) != 1:
        raise ArtifactError(f"{path}: expected one signature with one image input, found {signatures}")
    key, io = next(iter(signatures.items()))
    input_name, output_name = io["inputs"][0], io["outputs"][0]
    runner = interpreter.get_signature_runner(key)
    details = runner.get_input_details()[input_name]

    def one_at_a_time(batch):  # LiteRT models take batches of one
        return np.concatenate([runner(**{input_name: image[None]})[output_name] for image in batch])

    scale = 255.0 if input_name == SCALED_INPUT_NAME else 1.0
    return Artifact(path, "litert", one_at_a_time, _fixed_size(list(details["shape_signature"])), scale)


def _load_onnx(path, num_threads):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = num_threads
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    inputs = session.get_inputs()
    if len(inputs) != 1 or len(inputs[0].shape) != 4:
        raise ArtifactError(f"{path}: expected one [N,H,W,C] image input, found {[i.shape for i in inputs]}")
    name = inputs[0].name
    scale = 255.0 if name == SCALED_INPUT_NAME else 1.0
    return Artifact(path, "onnx", lambda x: session.run(None, {name: x})[0], _fixed_size(inputs[0].shape), scale)


def load_artifact(path, num_threads=DEFAULT_THREADS):
    """Open a SavedModel folder, `.tflite` or `.onnx` file as an `Artifact` (a callable on [0,1] batches)."""
    path = pathlib.Path(path)
    if path.is_dir():
        signature = load_saved_model_signature(path, "float32")
        return Artifact(path, "saved_model", lambda x: signature(x).numpy())
    if not path.is_file():
        raise ArtifactError(f"{path}: model artifact not found")
    loaders = {".tflite": _load_litert, ".onnx": _load_onnx}
    if path.suffix not in loaders:
        raise ArtifactError(f"{path}: unknown artifact kind; expected a SavedModel folder, .tflite or .onnx")
    try:
        return loaders[path.suffix](path, num_threads)
    except ArtifactError:
        raise
    except Exception as exc:  # each runtime raises its own kinds for a damaged or foreign file
        raise ArtifactError(f"{path}: cannot be opened ({type(exc).__name__}: "
                            f"{str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''})") from None
