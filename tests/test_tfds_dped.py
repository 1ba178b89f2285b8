"""The TFDS DPED builder on a tiny generated dataset: build from a manual dir, load, compare pixels."""
import numpy as np
import pytest
import tensorflow as tf

tfds = pytest.importorskip("tensorflow_datasets")

from common.data import dped_folders, paired_files  # noqa: E402
from common.errors import DatasetNotFoundError  # noqa: E402
from common.images import write_image  # noqa: E402
from datasets.dped import Dped  # noqa: E402


def _write_split(folder, phone, n, rng):
    for i in range(n):
        write_image(folder / phone / f"{i}.jpg", rng.integers(0, 256, (12, 10, 3), dtype=np.uint8))
        write_image(folder / "canon" / f"{i}.jpg", rng.integers(0, 256, (12, 10, 3), dtype=np.uint8))


def test_tfds_builder_reads_released_layout(tmp_path):
    rng = np.random.default_rng(0)
    manual = tmp_path / "manual"
    _write_split(manual / "dped" / "sony" / "training_data", "sony", 5, rng)
    _write_split(manual / "dped" / "sony" / "test_data" / "patches", "sony", 3, rng)
    builder = Dped(config="sony", data_dir=str(tmp_path / "tfds"))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
    assert builder.info.splits["train"].num_examples == 5
    assert builder.info.splits["test"].num_examples == 3
    for split in ("train", "test"):
        files_phone, files_dslr = paired_files(*dped_folders(manual, "sony", split))
        expected = {f.rsplit("/", 1)[-1]: (pf, f) for pf, f in zip(files_phone, files_dslr)}
        seen = 0
        for example in builder.as_dataset(split=split):
            # Keys are not exposed; match each example to its file by the stored JPEG pixels.
            phone = example["phone"].numpy()
            matches = [
                (pf, df) for pf, df in expected.values()
                if np.array_equal(phone, tf.io.decode_jpeg(tf.io.read_file(pf)).numpy())
            ]
            assert len(matches) == 1
            np.testing.assert_array_equal(example["dslr"].numpy(),
                                          tf.io.decode_jpeg(tf.io.read_file(matches[0][1])).numpy())
            seen += 1
        assert seen == len(expected)


def test_tfds_builder_wrong_layout_names_folders(tmp_path):
    manual = tmp_path / "manual"
    (manual / "dped" / "iphone").mkdir(parents=True)  # unpacked without its training_data folder
    builder = Dped(config="iphone", data_dir=str(tmp_path / "tfds"))
    with pytest.raises(DatasetNotFoundError, match="dped/iphone/training_data/iphone"):
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))


# ------------------------------------------------------------------ step-keyed batches from TFDS
from common.data import random_pair_batches, tfds_pair_batches, tfds_pair_dataset  # noqa: E402
from common.errors import PhotoEnhanceError  # noqa: E402
from datasets.dped import data_sources  # noqa: E402


def _write_tiny_dped(root, rng, phone="sony", n_train=6, n_test=2, size=40):
    for split, n in (("training_data", n_train), ("test_data/patches", n_test)):
        for i in range(n):
            for camera in (phone, "canon"):
                write_image(root / "dped" / phone / split / camera / f"{i}.jpg",
                            rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    return root


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A tiny DPED folder, its array_record TFDS splits, and the train files in the TFDS index order."""
    root = tmp_path_factory.mktemp("tfds_batches")
    manual = _write_tiny_dped(root / "manual", np.random.default_rng(3))
    sources = data_sources("sony", manual, str(root / "tfds"))
    files_phone, files_dslr = paired_files(*dped_folders(manual, "sony", "train"))
    by_bytes = {open(f, "rb").read(): (f, d) for f, d in zip(files_phone, files_dslr)}
    # TFDS shuffles examples when it writes them; example i is the pair whose stored bytes it holds.
    ordered = [by_bytes[sources["train"][i]["phone"]] for i in range(len(sources["train"]))]
    assert [sources["train"][i]["dslr"] for i in range(len(ordered))] == [open(d, "rb").read() for _, d in ordered]
    return root, manual, sources, [f for f, _ in ordered], [d for _, d in ordered]


def _take(ds, n):
    return [tf.nest.map_structure(lambda t: t.numpy(), x) for x in ds.take(n)]


def test_tfds_batches_equal_folder_batches(prepared):
    _, _, sources, files_a, files_b = prepared
    kwargs = dict(seed=7, patch_size=32, flip=True, batches_per_step=2)
    got = _take(tfds_pair_batches(sources["train"], 3, **kwargs), 4)
    want = _take(random_pair_batches(files_a, files_b, 3, **kwargs), 4)
    # TFDS keeps the original JPEG bytes, so the pixels are identical, not merely close.
    for g, w in zip(got, want):
        tf.nest.map_structure(np.testing.assert_array_equal, g, w)
    assert not np.array_equal(got[0][0][0], got[1][0][0])  # steps differ


def test_tfds_resume_gives_the_uninterrupted_batches(prepared):
    source = prepared[2]["train"]
    kwargs = dict(seed=1, patch_size=32, normalize="symmetric")
    full = _take(tfds_pair_batches(source, 2, **kwargs), 5)
    resumed = _take(tfds_pair_batches(source, 2, start_step=3, **kwargs), 2)
    for g, w in zip(resumed, full[3:]):
        tf.nest.map_structure(np.testing.assert_array_equal, g, w)


def test_tfds_eval_dataset_and_bad_patch(prepared):
    _, manual, sources, _, _ = prepared
    batches = list(tfds_pair_dataset(sources["test"], 2))
    assert len(batches) == 1 and batches[0][0].shape == (2, 40, 40, 3)
    expected = {open(f, "rb").read() for f in paired_files(*dped_folders(manual, "sony", "test"))[0]}
    assert {sources["test"][i]["phone"] for i in range(2)} == expected
    with pytest.raises(PhotoEnhanceError, match="larger than the 40x40"):
        tfds_pair_batches(sources["train"], 2, seed=0, patch_size=48)


def test_tfrecord_prepared_dataset_says_how_to_reprepare(tmp_path):
    manual = _write_tiny_dped(tmp_path / "manual", np.random.default_rng(4), n_train=2, n_test=1)
    Dped(config="sony", data_dir=str(tmp_path / "tfds")).download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual)), file_format="tfrecord")
    with pytest.raises(PhotoEnhanceError, match="prepared as tfrecord.*array_record"):
        data_sources("sony", manual, str(tmp_path / "tfds"))


@pytest.mark.slow
def test_dped_train_tfds_tiny_run(prepared, tmp_path):
    import json

    from dped import train

    root, manual, _, _, _ = prepared
    summary = train.main([
        "--phone", "sony", "--tfds", "--data-dir", str(manual), "--tfds-data-dir", str(root / "tfds"),
        "--out", str(tmp_path / "run"), "--width", "8", "--blocks", "1", "--patch-size", "32",
        "--batch-size", "2", "--iterations", "2", "--eval-every", "2", "--log-every", "1",
        "--content-weight", "0", "--no-progress"])
    assert summary["steps"] == 2 and summary["config"]["tfds"] and summary["config"]["train_pairs"] == 6
    assert np.isfinite(summary["final_validation"]["val_psnr"])
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "finished"


def test_tfds_decoded_source_gives_the_same_batches(prepared):
    root = prepared[0]
    decoded = tfds.data_source("dped/sony", split="train", data_dir=str(root / "tfds"))  # uint8 arrays (PIL)
    kwargs = dict(seed=2, patch_size=32, flip=True)
    got = _take(tfds_pair_batches(decoded, 2, **kwargs), 2)
    want = _take(tfds_pair_batches(prepared[2]["train"], 2, **kwargs), 2)
    for g, w in zip(got, want):
        tf.nest.map_structure(np.testing.assert_array_equal, g, w)


def test_tfds_missing_manual_dir_names_the_folders(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="dped/sony/training_data/sony"):
        data_sources("sony", tmp_path / "nowhere", str(tmp_path / "tfds"))


def test_tfds_builder_stores_a_turned_photo_upright(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    manual = tmp_path / "manual" / "dped" / "sony"
    _write_split(manual / "training_data", "sony", 1, rng)
    _write_split(manual / "test_data" / "patches", "sony", 1, rng)
    rows, cols = np.mgrid[0:12, 0:10]
    upright = np.stack([rows * 20, cols * 25, 255 - rows * 20], axis=-1).astype(np.uint8)  # smooth: JPEG-safe
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways; the viewer turns it upright
    Image.fromarray(np.ascontiguousarray(np.rot90(upright, 1))).save(
        manual / "training_data" / "sony" / "0.jpg", quality=100, subsampling=0, exif=exif.tobytes())
    builder = Dped(config="sony", data_dir=str(tmp_path / "tfds"))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
    (example,) = builder.as_dataset(split="train")
    phone = example["phone"].numpy()
    assert phone.shape == upright.shape == (12, 10, 3)
    assert np.abs(phone.astype(int) - upright).mean() < 8  # the same photo, upright (one more JPEG encode)
