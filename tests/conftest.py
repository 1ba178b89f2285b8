"""Shared test set-up: CPU only, quiet TensorFlow, fixed seeds, and the real DPED sample data."""
import os
import pathlib
import struct

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# The enhance commands bound the peak memory of their process; tests run them inside this long-lived test
# process, whose memory is not the command's, so their default budget is raised (the memory test sets its own).
os.environ.setdefault("PHOTOENHANCE_MEMORY_BUDGET_MB", "16384")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(os.environ.get("PHOTOENHANCE_SHARED", REPO.parent / "shared"))


@pytest.fixture(autouse=True)
def _fixed_seeds():
    import keras

    keras.utils.set_random_seed(1234)
    np.random.seed(1234)
    yield


@pytest.fixture(scope="session")
def shared_dir():
    """`../shared` beside the checkout (the real DPED sample); tests needing it skip without it."""
    if not (SHARED / "dped").is_dir():
        pytest.skip(f"shared DPED sample data not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def dped_sample(shared_dir):
    return shared_dir / "dped"


@pytest.fixture(scope="session")
def swapped_rg_profile():
    """ICC bytes of sRGB with its red and green primaries exchanged: an RGB profile whose conversion to sRGB
    swaps R and G (stands in for a phone's wide-gamut profile with an unmistakable effect)."""
    from common.photo_read import SRGB_PROFILE

    data = bytearray(SRGB_PROFILE.tobytes())
    count = struct.unpack(">I", data[128:132])[0]
    entries = {bytes(data[132 + 12 * i:136 + 12 * i]): 132 + 12 * i for i in range(count)}
    r, g = entries[b"rXYZ"], entries[b"gXYZ"]
    data[r + 4:r + 12], data[g + 4:g + 12] = data[g + 4:g + 12], data[r + 4:r + 12]
    return bytes(data)


def write_tiny_dped(phone_dir, n_test=2, phone="iphone"):
    """Write a DPED-layout phone folder: 8 random 40x40 training pairs and `n_test` 32x32 test pairs (the DSLR
    patch is the phone patch brightened by 40), into `phone_dir/{training_data,test_data/patches}/`."""
    from common.images import write_image

    rng = np.random.default_rng(0)
    for split, n, size in (("training_data", 8, 40), ("test_data/patches", n_test, 32)):
        for i in range(n):
            image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            dslr = np.clip(image.astype(int) + 40, 0, 255).astype(np.uint8)
            for camera, pixels in ((phone, image), ("canon", dslr)):
                write_image(pathlib.Path(phone_dir) / split / camera / f"{i}.jpg", pixels)

