"""pix2pix task data: aligned degraded/clean pairs, HDR scenes and their disjoint split, baselines, HDR files."""
import numpy as np
import pytest
import tensorflow as tf

from common.degradations import gaussian_blur, overexpose
from common.errors import DataLayoutError, DatasetNotFoundError, ImageReadError, PhotoEnhanceError
from common.images import write_image
from common.metrics import psnr
from pix2pix import baselines
from pix2pix import evaluate as evaluate_cli
from pix2pix.gan import Pix2Pix
from pix2pix.models import build_unet
from pix2pix.hdr import read_hdr, read_radiance, write_radiance
from pix2pix.tasks import get_task
from pix2pix.tasks.ldr2hdr import build_demo_hdr, hdr_scale, hdr_scene_splits, split_scenes
from pix2pix.tasks.synthetic import clean_photo_splits


def _photo(rng, size=48):
    """A smooth random photo (blur has something to remove, overexposure something to clip)."""
    base = rng.random((size // 8, size // 8, 3)).astype(np.float32)
    return tf.image.resize(base, (size, size), method="bicubic").numpy().clip(0, 1)


@pytest.fixture()
def clean_dir(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("test", 2)):
        for i in range(n):
            write_image(tmp_path / split / f"{split}{i}.png", _photo(rng))
    return tmp_path


def _open(name, data_dir, **overrides):
    """(task, settings, task data) of the registered task `name` with its preset and `overrides`."""
    task = get_task(name)
    settings = task.settings(overrides)
    return task, settings, task.open(settings, data_dir)


def test_deblur_pairs_are_aligned(clean_dir):
    _, _, td = _open("deblur", clean_dir, image_size=32)
    x, y = next(iter(td.train_batches(2, seed=3)))
    assert x.shape == y.shape == (2, 32, 32, 3)
    np.testing.assert_allclose(x.numpy(), gaussian_blur(y, 1.0).numpy(), atol=1e-6)
    pairs = td.pairs("test")
    assert [p[2]["name"] for p in pairs] == ["test0", "test1"]
    for degraded, clean, _ in pairs:
        assert degraded.shape == clean.shape == (48, 48, 3)
        np.testing.assert_allclose(degraded, gaussian_blur(clean, 1.0).numpy(), atol=1e-6)


def test_synthetic_batches_are_step_keyed(clean_dir):
    _, _, td = _open("deblur", clean_dir, image_size=32)
    third = list(td.train_batches(2, seed=5).take(3))[2]
    resumed = next(iter(td.train_batches(2, seed=5, start_step=2)))
    np.testing.assert_array_equal(third[1].numpy(), resumed[1].numpy())


@pytest.mark.parametrize("random_tau", [False, True])
def test_overexposure_pairs_and_exact_inverse_baseline(clean_dir, random_tau):
    task, settings, td = _open("overexposure", clean_dir, image_size=32, random_tau=random_tau)
    x, y = next(iter(td.train_batches(2, seed=1)))
    assert np.all(x.numpy() >= y.numpy() - 1e-6)  # overexposure only brightens
    pairs = td.pairs("test")
    taus = [meta["tau"] for _, _, meta in pairs]
    assert all(0.5 <= t <= 1.0 for t in taus)
    assert (len(set(taus)) > 1) == random_tau
    for degraded, clean, meta in pairs:
        np.testing.assert_allclose(degraded, overexpose(clean, meta["tau"]).numpy(), atol=1e-6)
        restored = task.baseline(settings, degraded, meta)
        unclipped = np.power(clean, 2.2) < meta["tau"] - 1e-3
        np.testing.assert_allclose(restored[unclipped], clean[unclipped], atol=1e-4)


def test_deblur_baseline_beats_the_blurred_input():
    clean = _photo(np.random.default_rng(1), 64)
    blurred = gaussian_blur(clean, 1.0).numpy()
    restored = baselines.deblur_baseline(blurred, 1.0)
    assert float(psnr(restored, clean)[0]) > float(psnr(blurred, clean)[0]) + 1.0


def test_clean_photo_split_of_a_flat_folder(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(10):
        write_image(tmp_path / f"{i}.png", _photo(rng, 16))
    splits = clean_photo_splits(tmp_path, seed=0)
    assert [len(splits[k]) for k in ("train", "val", "test")] == [8, 1, 1]
    assert len(set().union(*splits.values())) == 10
    assert splits == clean_photo_splits(tmp_path, seed=0)
    with pytest.raises(DatasetNotFoundError, match="0.png: not a folder"):
        clean_photo_splits(tmp_path / "0.png")


def test_split_scenes_keeps_test_scenes_unseen():
    names = [f"scene{i:03d}" for i in range(176)]
    splits = split_scenes(names, seed=0)
    assert len(splits["test"]) == 20  # seed 000: 20 of 176 scenes for test, the rest 80:20
    assert len(splits["val"]) == round(156 * 0.2)
    assert not set(splits["test"]) & (set(splits["train"]) | set(splits["val"]))
    assert sorted(splits["train"] + splits["val"] + splits["test"]) == names


def _write_scene(folder, rng, size=16, skip=None):
    radiance = rng.random((size, size, 3)).astype(np.float32) * 1.3 + 0.01  # some values clip at 0 EV
    for ev in (-2, 0, 2):
        name = "ev0.png" if ev == 0 else f"ev{ev:+d}.png"
        if name != skip:
            write_image(folder / name, np.power(np.clip(radiance * 2.0 ** ev, 0, 1), 1 / 2.2))
    write_radiance(folder / "hdr.hdr", radiance * 7.0)  # an arbitrary absolute scale
    return radiance


def test_ldr2hdr_scenes_pairs_and_scale(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(6):
        _write_scene(tmp_path / f"s{i}", rng)
    splits = hdr_scene_splits(tmp_path, seed=0)
    names = {k: {s.name for s in v} for k, v in splits.items()}
    assert len(names["test"]) == 1 and not names["test"] & (names["train"] | names["val"])
    _, _, td = _open("ldr2hdr", tmp_path, image_size=16)
    pairs = td.pairs("test")
    assert [p[2]["ev"] for p in pairs] == [-2, 0, 2]
    x0, target, _ = pairs[1]
    assert target.max() > 1.0  # HDR values above the 0 EV white survive
    well_exposed = (x0 > 0.05) & (x0 < 0.95)
    np.testing.assert_allclose(np.power(x0, 2.2)[well_exposed], target[well_exposed], rtol=0.05, atol=0.01)
    x, y = next(iter(td.train_batches(2, seed=0)))
    assert x.shape == y.shape == (2, 16, 16, 3)


def test_ldr2hdr_missing_exposure_is_named(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(4):
        _write_scene(tmp_path / f"s{i}", rng, skip="ev+2.png" if i == 2 else None)
    with pytest.raises(DataLayoutError, match=r"s2.*ev\+2"):
        hdr_scene_splits(tmp_path)


def test_hdr_scale_recovers_the_exposure():
    rng = np.random.default_rng(0)
    radiance = rng.random((8, 8, 3)).astype(np.float32) * 0.8 + 0.05
    ldr0 = np.power(radiance, 1 / 2.2)
    assert hdr_scale(radiance * 40.0, ldr0) == pytest.approx(1 / 40.0, rel=1e-5)


def test_radiance_round_trip_and_rle(tmp_path):
    image = np.random.default_rng(0).random((5, 9, 3)).astype(np.float32) * 10
    write_radiance(tmp_path / "a.hdr", image)
    error = np.abs(read_hdr(tmp_path / "a.hdr") - image)
    assert np.all(error <= image.max(axis=-1, keepdims=True) / 128)  # RGBE: 8-bit mantissas, shared exponent
    # a run-length-encoded file: 2 rows of width 8, each channel one run (R=128,G=64,B=32,E=129)
    row = bytes([2, 2, 0, 8]) + b"".join(bytes([128 + 8, v]) for v in (128, 64, 32, 129))
    (tmp_path / "rle.hdr").write_bytes(b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 2 +X 8\n" + row * 2)
    decoded = read_radiance(tmp_path / "rle.hdr")
    np.testing.assert_allclose(decoded[0, 0], np.array([128.5, 64.5, 32.5]) * 2.0 ** (129 - 136))
    assert decoded.shape == (2, 8, 3)
    (tmp_path / "bad.hdr").write_bytes(b"P6\n")
    with pytest.raises(ImageReadError, match="bad.hdr"):
        read_hdr(tmp_path / "bad.hdr")


def test_phone2dslr_pairs_are_resized_dped_pairs(tmp_path):
    rng = np.random.default_rng(0)
    for split in (("training_data",), ("test_data", "patches")):
        for i in range(4):
            photo = _photo(rng, 100)
            write_image(tmp_path.joinpath("iphone", *split, "iphone", f"{i}.png"), photo * 0.8)
            write_image(tmp_path.joinpath("iphone", *split, "canon", f"{i}.png"), photo)
    _, _, td = _open("phone2dslr", tmp_path)
    pairs = td.pairs("test")
    assert [p[2]["name"] for p in pairs] == ["2", "3"]  # second half of the test patches; val is the first
    x, y, _ = pairs[0]
    assert x.shape == y.shape == (64, 64, 3)
    np.testing.assert_allclose(x, y * 0.8, atol=0.02)
    xb, yb = next(iter(td.train_batches(2, seed=0)))
    assert xb.shape == (2, 64, 64, 3)
    np.testing.assert_allclose(xb.numpy(), yb.numpy() * 0.8, atol=0.02)


def test_demo_hdr_scenes_split_by_photo(tmp_path):
    root = build_demo_hdr(tmp_path, n_crops=1, size=32)
    splits = hdr_scene_splits(root)
    photo = lambda s: s.name.rsplit("_", 1)[0]  # noqa: E731
    assert not {photo(s) for s in splits["test"]} & {photo(s) for s in splits["train"] + splits["val"]}
    assert read_hdr(splits["test"][0].hdr).max() > 1.0


def test_phone2dslr_on_real_dped_patches(dped_sample):
    """The real iPhone/Canon sample (a `<phone>/` + `canon/` folder) as phone2dslr test pairs."""
    _, _, td = _open("phone2dslr", dped_sample / "patches")
    pairs = td.pairs("test", limit=8)
    assert len(pairs) == 8
    scores = []
    for x, y, _ in pairs:
        assert x.shape == y.shape == (64, 64, 3)
        scores.append(float(psnr(x, y)[0]))
    # aligned photos of the same scene by two cameras: similar, not identical (SPEC: ~17 dB at 100x100)
    assert 12.0 < np.mean(scores) < 30.0


def _disjoint(splits, key=str):
    """Each split's items as sets of `key(item)`, asserting that no item is in two splits."""
    sets = {k: {key(item) for item in v} for k, v in splits.items()}
    for a in sets:
        for b in sets:
            assert a == b or not sets[a] & sets[b], (a, b, sets[a] & sets[b])
    return sets


@pytest.mark.parametrize("name", ["deblur", "overexposure"])
def test_synthetic_splits_never_share_a_photo(tmp_path, name):
    rng = np.random.default_rng(0)
    for i in range(10):
        write_image(tmp_path / "train" / f"t{i}.png", _photo(rng, 16))
    for i in range(2):
        write_image(tmp_path / "test" / f"s{i}.png", _photo(rng, 16))
    _, _, td = _open(name, tmp_path)
    sets = _disjoint(td.splits)
    assert [len(sets[k]) for k in ("train", "val", "test")] == [9, 1, 2]  # val from train, never the test photos
    assert td.describe().endswith("train 9 photos, val 1 photos, test 2 photos")
    td.restrict_training(3)
    assert td.splits["train"] == sorted(sets["train"])[:3]
    with pytest.raises(PhotoEnhanceError, match="--demo-photos must be in 1..3"):
        td.restrict_training(4)


def test_ldr2hdr_splits_never_share_a_scene(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 5), ("test", 2)):
        for i in range(n):
            _write_scene(tmp_path / split / f"{split}{i}", rng, size=8)
    by_name = lambda scene: scene.name  # noqa: E731
    sets = _disjoint(hdr_scene_splits(tmp_path), by_name)
    assert (len(sets["train"]), len(sets["val"]), sets["test"]) == (4, 1, {"test0", "test1"})
    _write_scene(tmp_path / "val" / "val0", rng, size=8)
    sets = _disjoint(hdr_scene_splits(tmp_path), by_name)
    assert sets["val"] == {"val0"} and len(sets["train"]) == 5
    _, _, td = _open("ldr2hdr", tmp_path, image_size=8)
    with pytest.raises(PhotoEnhanceError, match="--demo-photos does not apply to task ldr2hdr"):
        td.restrict_training(1)


def test_phone2dslr_splits_never_share_a_patch(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in ((("training_data",), 3), (("test_data", "patches"), 5)):
        for i in range(n):
            for side in ("iphone", "canon"):
                write_image(tmp_path.joinpath("iphone", *split, side, f"{i}.png"), _photo(rng, 16))
    _, _, td = _open("phone2dslr", tmp_path)
    sets = _disjoint(td.splits, key=lambda pair: pair[0])
    assert [len(sets[k]) for k in ("train", "val", "test")] == [3, 2, 3]
    single = tmp_path / "single"
    for side in ("iphone", "canon"):
        write_image(single / side / "0.png", _photo(rng, 16))
    _, _, td = _open("phone2dslr", single)  # one test patch: it is the test split, and nothing validates on it
    assert [len(td.pairs(k)) for k in ("val", "test")] == [0, 1]
    assert td.describe() == f"{single}: test patches only, val 0 pairs, test 1 pairs"
    with pytest.raises(DataLayoutError, match="no validation pairs"):
        td.validation_pairs()
    with pytest.raises(DatasetNotFoundError, match="no train/test split"):
        td.train_batches(2, seed=0)


def test_demo_hdr_validation_scenes_come_from_their_own_photo(tmp_path):
    splits = hdr_scene_splits(build_demo_hdr(tmp_path, n_crops=1, size=32))
    photos = _disjoint(splits, key=lambda s: s.name.rsplit("_", 1)[0])
    assert len(photos["val"]) == 1 and photos["test"] == {"chelsea", "coffee"}


def test_deblur_contrast_stretch_and_blur_sigma_come_from_the_settings(clean_dir):
    task, settings, td = _open("deblur", clean_dir, blur_sigma=2.0, postprocess="contrast_stretch")
    degraded, clean, _ = td.pairs("test")[0]
    np.testing.assert_allclose(degraded, gaussian_blur(clean, 2.0).numpy(), atol=1e-6)
    stretched = task.postprocess_output(settings, np.array([[[10, 125, 240]]], np.float32) / 255)
    np.testing.assert_allclose(stretched, [[[0.0, 0.5, 1.0]]], atol=1e-6)
    plain = task.settings()
    np.testing.assert_array_equal(task.postprocess_output(plain, clean), clean)
    with pytest.raises(PhotoEnhanceError, match="--blur-sigma must be positive"):
        task.open(task.settings({"blur_sigma": 0.0}), clean_dir)


@pytest.mark.slow
def test_evaluate_rows_come_from_the_task(clean_dir):
    """Deblur adds its post-processing row, overexposure its histogram rows; the baselines beat the inputs."""
    model = Pix2Pix.for_inference(build_unet(depth=3, base_filters=4, seed=0))
    task, settings, td = _open("deblur", clean_dir, postprocess="contrast_stretch")
    results, images = evaluate_cli.evaluate(model, task, settings, td.pairs("test", image_size=32), progress=False)
    assert list(results) == ["model", "model + contrast stretch", "input", "baseline"]
    assert results["baseline"]["psnr"] > results["input"]["psnr"] and len(images) == 2
    assert not any(k.startswith("hist_") for k in results["model"])
    task, settings, td = _open("overexposure", clean_dir)
    results, _ = evaluate_cli.evaluate(model, task, settings, td.pairs("test", image_size=32), progress=False)
    assert list(results) == ["model", "input", "baseline"]
    assert {"hist_luminance", "hist_contrast", "hist_saturation"} <= set(results["model"])
    assert results["baseline"]["psnr"] > results["input"]["psnr"] + 5  # exact where nothing clipped (tau 0.5)
