"""common.images: every supported image kind becomes uint8 RGB; every bad file becomes a named error."""
import imageio.v3 as iio
import numpy as np
import pytest

from common.errors import ImageReadError
from common.images import list_images, read_image, to_float, to_uint8, write_image


def test_real_patch_reads_as_uint8_rgb(dped_sample):
    image = read_image(dped_sample / "patches" / "iphone" / "0.jpg")
    assert image.shape == (100, 100, 3) and image.dtype == np.uint8


@pytest.mark.parametrize(
    "array, expected",
    [
        (np.full((4, 5), 200, np.uint8), np.full((4, 5, 3), 200, np.uint8)),  # gray
        (np.dstack([np.full((4, 5, 3), 7, np.uint8), np.zeros((4, 5), np.uint8)]), np.full((4, 5, 3), 7, np.uint8)),  # RGBA
        (np.full((4, 5), 65535, np.uint16), np.full((4, 5, 3), 255, np.uint8)),  # 16-bit gray PNG
        (np.full((4, 5), 257 * 100, np.uint16), np.full((4, 5, 3), 100, np.uint8)),
    ],
)
def test_png_kinds_become_rgb_uint8(tmp_path, array, expected):
    path = tmp_path / "x.png"
    iio.imwrite(path, array)
    np.testing.assert_array_equal(read_image(path), expected)


@pytest.mark.parametrize("suffix", [".tif", ".png"])
def test_16bit_rgb_is_rounded_to_8_bits(tmp_path, suffix):
    array = np.full((4, 5, 3), 257 * 100, np.uint16)
    array[0, 0] = [0, 65535, 257 * 7 + 100]
    path = tmp_path / f"x{suffix}"
    if suffix == ".png":
        import tensorflow as tf

        path.write_bytes(tf.io.encode_png(array).numpy())
    else:
        iio.imwrite(path, array)
    expected = np.full((4, 5, 3), 100, np.uint8)
    expected[0, 0] = [0, 255, 7]
    np.testing.assert_array_equal(read_image(path), expected)


def test_bad_files_name_the_file_and_problem(tmp_path, dped_sample):
    missing = tmp_path / "missing.jpg"
    with pytest.raises(ImageReadError, match="missing.jpg: file not found"):
        read_image(missing)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty.jpg: file is empty"):
        read_image(empty)
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    with pytest.raises(ImageReadError, match="notes.jpg: cannot be decoded"):
        read_image(text)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes((dped_sample / "patches" / "iphone" / "0.jpg").read_bytes()[:400])
    with pytest.raises(ImageReadError, match="truncated.jpg"):
        read_image(truncated)


def test_write_read_round_trip_and_conversions(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)
    write_image(tmp_path / "sub" / "a.png", image)
    np.testing.assert_array_equal(read_image(tmp_path / "sub" / "a.png"), image)
    np.testing.assert_array_equal(to_uint8(to_float(image)), image)


def test_list_images_sorts_numerically(tmp_path):
    for name in ["10.jpg", "2.jpg", "1.png", "notes.txt"]:
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in list_images(tmp_path)] == ["1.png", "2.jpg", "10.jpg"]


def test_collect_image_files_from_files_and_folders(tmp_path):
    from common.errors import PhotoEnhanceError
    from common.images import collect_image_files

    (tmp_path / "a").mkdir()
    for name in ["a/2.jpg", "a/10.png", "b.jpg", "a/readme.txt"]:
        (tmp_path / name).write_bytes(b"x")
    found = collect_image_files([tmp_path / "a", tmp_path / "b.jpg"])
    assert [p.name for p in found] == ["2.jpg", "10.png", "b.jpg"]
    with pytest.raises(PhotoEnhanceError, match="missing.jpg: input not found"):
        collect_image_files([tmp_path / "missing.jpg"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(PhotoEnhanceError, match="empty: folder holds no images"):
        collect_image_files([tmp_path / "empty"])
    twice = collect_image_files([tmp_path / "a", tmp_path / "a" / "2.jpg", tmp_path / "b.jpg"])
    assert [p.name for p in twice] == ["2.jpg", "10.png", "b.jpg"]  # a file named twice is read once


def test_images_in_names_the_folder_and_what_it_should_hold(tmp_path):
    from common.errors import DataLayoutError, PhotoEnhanceError
    from common.images import images_in

    (tmp_path / "photos").mkdir()
    for name in ["3.png", "1.jpg", "notes.txt"]:
        (tmp_path / "photos" / name).write_bytes(b"x")
    assert [p.name for p in images_in(tmp_path / "photos")] == ["1.jpg", "3.png"]
    with pytest.raises(DataLayoutError, match=r"gone: folder not found \(expected the --phone-dir photos\)"):
        images_in(tmp_path / "gone", "the --phone-dir photos", DataLayoutError)
    with pytest.raises(PhotoEnhanceError, match=r"1.jpg: not a folder \(expected calibration"):
        images_in(tmp_path / "photos" / "1.jpg", "calibration photos")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataLayoutError, match=r"empty: no images in the folder \(expected pairs: .jpg"):
        images_in(tmp_path / "empty", "pairs", DataLayoutError)
