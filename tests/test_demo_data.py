"""Offline demo data: bundled photos load, the demo DPED has the released layout, is paired, split by
photo, and is reused when complete."""
import numpy as np
import pytest

from common import data, demo_data
from common.errors import PhotoEnhanceError
from common.images import read_image


def test_demo_photos_are_colour_photos():
    photos = demo_data.demo_photos()
    assert len(photos) >= 6
    for p in photos:
        assert p.dtype == np.uint8 and p.ndim == 3 and p.shape[2] == 3 and min(p.shape[:2]) >= 256
        assert np.abs(p[..., 0].astype(int) - p[..., 2]).mean() > 1  # really colour
    assert not np.shares_memory(photos[0], demo_data.demo_photos()[0])


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo") / "dped"
    return demo_data.build_demo_dped(root, phone="iphone", n_train=24, n_test=6, patch_size=48, seed=1)


def test_build_demo_dped_layout_and_pairs(demo_root):
    train_a, train_b = data.paired_files(*data.dped_folders(demo_root, "iphone", "train"))
    test_a, test_b = data.paired_files(*data.dped_folders(demo_root.parent, "iphone", "test"))
    assert len(train_a) == 24 and len(test_a) == 6
    assert train_a[0].endswith("dped/iphone/training_data/iphone/0.jpg")
    assert len(list(data.dped_full_size_dir(demo_root, "iphone").glob("*.jpg"))) == len(demo_data.TEST_PHOTOS)
    psnrs = []
    for fa, fb in zip(train_a + test_a, train_b + test_b):
        a, b = read_image(fa).astype(float), read_image(fb).astype(float)
        assert a.shape == b.shape == (48, 48, 3)
        psnrs.append(10 * np.log10(255 ** 2 / np.mean((a - b) ** 2)))
    # Degraded but aligned: clearly worse than a re-save, clearly better than an unrelated patch.
    assert 15 < np.mean(psnrs) < 38


def test_demo_dped_train_and_test_photos_are_disjoint(tmp_path, monkeypatch):
    # Stand-in photos, one flat grey level each: a patch's level tells which photo it came from.
    levels = {name: 20 + 25 * i for i, name in enumerate(demo_data.DEMO_PHOTOS)}
    photos = {name: np.full((300, 400, 3), v, np.uint8) for name, v in levels.items()}
    monkeypatch.setattr(demo_data, "_named_photos", lambda: photos)
    root = demo_data.build_demo_dped(tmp_path, n_train=20, n_test=8, patch_size=32, seed=0)
    found = {}
    for split in ("train", "test"):
        canon = data.paired_files(*data.dped_folders(root, "iphone", split))[1]
        found[split] = {int(round(read_image(f).mean())) for f in canon}
    test_levels = {levels[n] for n in demo_data.TEST_PHOTOS}
    assert found["test"] == test_levels
    assert found["train"] == set(levels.values()) - test_levels


def test_build_demo_dped_is_reused_and_rebuilt_on_new_params(demo_root):
    marker = demo_root / "iphone" / ".demo_complete.json"
    first = marker.stat().st_mtime_ns
    file0 = demo_root / "iphone" / "training_data" / "canon" / "0.jpg"
    stamp = file0.stat().st_mtime_ns
    demo_data.build_demo_dped(demo_root, phone="iphone", n_train=24, n_test=6, patch_size=48, seed=1)
    assert marker.stat().st_mtime_ns == first and file0.stat().st_mtime_ns == stamp
    other = demo_data.build_demo_dped(demo_root.parent / "other", n_train=5, n_test=2, patch_size=32, seed=2)
    again = demo_data.build_demo_dped(demo_root.parent / "other", n_train=6, n_test=2, patch_size=32, seed=2)
    assert other == again
    assert len(list((again / "iphone" / "training_data" / "iphone").glob("*.jpg"))) == 6


def test_build_demo_dped_deterministic(demo_root, tmp_path):
    copy = demo_data.build_demo_dped(tmp_path, phone="iphone", n_train=24, n_test=6, patch_size=48, seed=1)
    for side in ("iphone", "canon"):
        a = read_image(demo_root / "iphone" / "training_data" / side / "7.jpg")
        b = read_image(copy / "iphone" / "training_data" / side / "7.jpg")
        np.testing.assert_array_equal(a, b)


def test_build_demo_dped_rejects_bad_sizes(tmp_path):
    with pytest.raises(PhotoEnhanceError, match="n_train"):
        demo_data.build_demo_dped(tmp_path, n_train=0)


def test_build_demo_clean_split_by_photo(tmp_path):
    root = demo_data.build_demo_clean(tmp_path / "clean", min_side=320)
    train = sorted(p.stem for p in (root / "train").glob("*.png"))
    test = sorted(p.stem for p in (root / "test").glob("*.png"))
    assert test == sorted(demo_data.TEST_PHOTOS) and len(train) >= 4 and not set(train) & set(test)
    for p in (root / "train").glob("*.png"):
        assert 320 <= min(read_image(p).shape[:2]) <= 640
    files = sorted((root / "train").glob("*.png"))
    good, report = data.scan_images(files, min_size=(320, 320))
    assert report.used == len(files)
