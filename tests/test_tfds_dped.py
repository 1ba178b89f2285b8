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
