"""Import of the DPED authors' TF1 generator checkpoints: real-checkpoint parity and layout validation."""
import numpy as np
import pytest
import tensorflow as tf

from common.errors import CheckpointError
from common.images import list_images, read_image, to_float
from dped import convert_original
from dped.convert_original import load_original_checkpoint
from dped.models import load_generator
from tests.test_dped_models import random_reference_weights, reference_generator


def write_tf1_checkpoint(prefix, weights, num_blocks, overrides=None, drop=()):
    """Write a TF1-format bundle with the authors' variable names (generator/W<i>, b<i>, Variable_<j>)."""
    tensors = {}
    for i in range(1, 2 * num_blocks + 5):
        tensors[f"generator/W{i}"] = weights[f"W{i}"]
        tensors[f"generator/b{i}"] = weights[f"b{i}"]
    for k in range(2 * num_blocks):
        shift, scale = weights[f"norm{k}"]
        tensors["generator/Variable" if k == 0 else f"generator/Variable_{2 * k}"] = shift
        tensors[f"generator/Variable_{2 * k + 1}"] = scale
    tensors.update(overrides or {})
    for name in drop:
        tensors.pop(name)
    names = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(tensors[n]) for n in names])
    return str(prefix)


def test_synthetic_checkpoint_maps_every_variable(tmp_path):
    w = random_reference_weights(width=6, num_blocks=2, seed=3)
    prefix = write_tf1_checkpoint(tmp_path / "tiny_orig", w, num_blocks=2)
    model = load_original_checkpoint(prefix)
    assert len([l for l in model.layers if l.name.startswith("conv")]) == 8
    x = np.random.default_rng(4).uniform(0, 1, (1, 11, 15, 3)).astype(np.float32)
    np.testing.assert_allclose(model(x).numpy(), reference_generator(tf.constant(x), w, 2).numpy(), atol=2e-6)


def test_checkpoint_errors_name_checkpoint_and_variable(tmp_path):
    w = random_reference_weights(width=4, num_blocks=1)
    bad = write_tf1_checkpoint(tmp_path / "bad", w, 1, overrides={"generator/b3": np.zeros(5, np.float32)})
    with pytest.raises(CheckpointError, match=r"bad: variable generator/b3 has shape \[5\], layer conv3 expects \[4\]"):
        load_original_checkpoint(bad)
    missing = write_tf1_checkpoint(tmp_path / "partial", w, 1, drop=("generator/Variable_1",))
    with pytest.raises(CheckpointError, match="partial: variable generator/Variable_1 .*norm0.* is missing"):
        load_original_checkpoint(missing)
    with pytest.raises(CheckpointError, match="nowhere: TF1 checkpoint not found"):
        load_original_checkpoint(tmp_path / "nowhere")
    gap = write_tf1_checkpoint(tmp_path / "gap", w, 1, drop=("generator/W2", "generator/b2"))
    with pytest.raises(CheckpointError, match="do not form a DPED generator"):
        load_original_checkpoint(gap)


def test_cli_converts_to_keras_file(tmp_path):
    w = random_reference_weights(width=4, num_blocks=1, seed=5)
    prefix = write_tf1_checkpoint(tmp_path / "small_orig", w, 1)
    assert convert_original.main(["--checkpoint", prefix + ".index", "--output", str(tmp_path / "g.keras")]) == 0
    x = np.random.default_rng(6).uniform(0, 1, (1, 9, 10, 3)).astype(np.float32)
    np.testing.assert_allclose(load_generator(tmp_path / "g.keras")(x).numpy(),
                               reference_generator(tf.constant(x), w, 1).numpy(), atol=2e-6)


def test_iphone_checkpoint_reproduces_authors_output_means(dped_sample):
    model = load_original_checkpoint(dped_sample / "pretrained" / "iphone_orig")
    assert model.count_params() == 401_475
    x = to_float(read_image(dped_sample / "patches" / "iphone" / "0.jpg"))[None]
    means = model(x).numpy().mean(axis=(0, 1, 2))
    np.testing.assert_allclose(means, [0.346241, 0.364956, 0.367503], atol=1e-5)


@pytest.mark.slow
def test_iphone_checkpoint_beats_phone_photos_by_4db(dped_sample):
    from common.metrics import psnr

    model = load_original_checkpoint(dped_sample / "pretrained" / "iphone_orig")
    phone = np.stack([to_float(read_image(f)) for f in list_images(dped_sample / "patches" / "iphone")])
    dslr = np.stack([to_float(read_image(f)) for f in list_images(dped_sample / "patches" / "canon")])
    assert phone.shape == dslr.shape == (100, 100, 100, 3)
    enhanced = np.concatenate([np.clip(model(phone[i:i + 25]).numpy(), 0, 1) for i in range(0, 100, 25)])
    gain = np.mean(psnr(enhanced, dslr, max_val=1.0)) - np.mean(psnr(phone, dslr, max_val=1.0))
    assert gain > 4.0
