"""tf.data pipelines: folder discovery, pairing, step-keyed determinism, same transform for both images
of a pair, decoding of awkward files, and clear errors for bad ones."""
import numpy as np
import pytest
import tensorflow as tf

from common import data
from common.degradations import gaussian_blur
from common.errors import DataLayoutError, DatasetNotFoundError, PhotoEnhanceError
from common.images import read_image, write_image


def _coded_pairs(folder, n, size=(20, 24)):
    """Pairs whose pixels encode their index (PNG, lossless): a = index ramp, b = a + 100."""
    rng = np.random.default_rng(0)
    for i in range(n):
        a = rng.integers(0, 100, (*size, 3), dtype=np.uint8)
        a[0, 0] = i
        write_image(folder / "a" / f"{i}.png", a)
        write_image(folder / "b" / f"{i}.png", a + 100)
    return data.paired_files(folder / "a", folder / "b")


def _arrays(ds, n):
    out = []
    for element in ds.take(n):
        out.append(tf.nest.map_structure(lambda t: t.numpy(), element))
    return out


# --------------------------------------------------------------------------------------------- folders
@pytest.mark.parametrize("layout", ["parent", "dped", "phone"])
def test_dped_folders_accepts_every_layout(tmp_path, layout):
    dped = tmp_path / "dped"
    base = {"parent": tmp_path, "dped": dped, "phone": dped / "sony"}[layout]
    folders = (dped / "sony" / "training_data" / "sony", dped / "sony" / "training_data" / "canon")
    for f in folders:
        f.mkdir(parents=True)
    assert data.dped_folders(base, "sony", "train") == folders


def test_a_flat_phone_canon_folder_is_test_data_only(tmp_path):
    """A bare <phone>/ + canon/ folder has no split: evaluating on it works, training on it is refused."""
    folders = (tmp_path / "sony", tmp_path / "canon")
    for f in folders:
        f.mkdir(parents=True)
    assert data.dped_folders(tmp_path, "sony", "test") == folders
    with pytest.raises(DatasetNotFoundError, match="no train/test split"):
        data.dped_folders(tmp_path, "sony", "train")


def test_dped_folders_test_split_and_full_size(tmp_path):
    patches = tmp_path / "dped" / "iphone" / "test_data" / "patches"
    for side in ("iphone", "canon"):
        (patches / side).mkdir(parents=True)
    (tmp_path / "dped" / "iphone" / "test_data" / "full_size_test_images").mkdir()
    assert data.dped_folders(tmp_path, "iphone", "test") == (patches / "iphone", patches / "canon")
    assert data.dped_full_size_dir(tmp_path / "dped", "iphone").name == "full_size_test_images"


def test_dped_folders_missing_lists_places_and_how_to_get_it(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        data.dped_folders(tmp_path, "blackberry")
    msg = str(info.value)
    assert str(tmp_path / "dped" / "blackberry" / "training_data" / "blackberry") in msg
    assert str(tmp_path / "blackberry" / "training_data" / "canon") in msg
    assert str(tmp_path / "canon") in msg
    assert "--demo" in msg and "ihnatova" in msg
    with pytest.raises(PhotoEnhanceError, match="split"):
        data.dped_folders(tmp_path, "sony", "val")


def test_dped_folders_on_real_sample(dped_sample):
    a, b = data.paired_files(*data.dped_folders(dped_sample / "patches", "iphone", "test"))
    assert len(a) == 100 and a[10].endswith("iphone/10.jpg") and b[10].endswith("canon/10.jpg")


def test_paired_files_errors(tmp_path):
    with pytest.raises(DataLayoutError, match="folder not found"):
        data.paired_files(tmp_path / "nope", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataLayoutError, match="no images"):
        data.paired_files(tmp_path / "empty", tmp_path / "empty")
    img = np.zeros((4, 4, 3), np.uint8)
    for i in range(10):
        write_image(tmp_path / "a" / f"{i}.png", img)
    for i in range(3, 10):
        write_image(tmp_path / "b" / f"{i}.png", img)
    write_image(tmp_path / "b" / "extra.png", img)
    with pytest.raises(DataLayoutError) as info:
        data.paired_files(tmp_path / "a", tmp_path / "b")
    msg = str(info.value)
    assert "3 image(s)" in msg and "0.png" in msg and "1 image(s)" in msg and "extra.png" in msg


def test_paired_files_natural_order(tmp_path):
    img = np.zeros((4, 4, 3), np.uint8)
    for i in (10, 2, 1):
        write_image(tmp_path / "a" / f"{i}.jpg", img)
        write_image(tmp_path / "b" / f"{i}.jpg", img)
    a, b = data.paired_files(tmp_path / "a", tmp_path / "b")
    assert [p.rsplit("/", 1)[1] for p in a] == ["1.jpg", "2.jpg", "10.jpg"]
    assert [p.rsplit("/", 1)[1] for p in b] == ["1.jpg", "2.jpg", "10.jpg"]


# ------------------------------------------------------------------------------------- random batches
def test_random_pair_batches_resume_is_exact(tmp_path):
    a, b = _coded_pairs(tmp_path, 12)
    kwargs = dict(seed=3, patch_size=(8, 10), flip=True, color_augment=True)
    full = _arrays(data.random_pair_batches(a, b, 4, **kwargs), 6)
    resumed = _arrays(data.random_pair_batches(a, b, 4, start_step=4, **kwargs), 2)
    for x, y in zip(full[4:], resumed):
        np.testing.assert_array_equal(x[0], y[0])
        np.testing.assert_array_equal(x[1], y[1])
    other = _arrays(data.random_pair_batches(a, b, 4, seed=4, patch_size=(8, 10), flip=True), 1)
    assert not np.array_equal(full[0][0], other[0][0])
    assert not np.array_equal(full[0][0], full[1][0])
    assert full[0][0].shape == (4, 8, 10, 3) and full[0][0].dtype == np.float32


def test_random_pair_batches_samples_with_replacement_and_keeps_pairs(tmp_path):
    a, b = _coded_pairs(tmp_path, 5)
    seen = []
    for x, y in _arrays(data.random_pair_batches(a, b, 8, seed=0), 10):
        # Target is the input + 100/255 everywhere: the pair stayed together.
        np.testing.assert_allclose(y - x, 100 / 255, atol=1e-6)
        seen.extend(np.round(x[:, 0, 0, 0] * 255).astype(int))
    assert set(seen) == set(range(5))  # 80 draws cover all 5 pairs ...
    counts = np.bincount(seen, minlength=5)
    assert counts.max() > 1  # ... with repeats (with replacement)


def test_random_pair_batches_same_crop_flip_and_jitter_for_both(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(4):
        img = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
        write_image(tmp_path / "a" / f"{i}.png", img)
        write_image(tmp_path / "b" / f"{i}.png", img)  # identical pair
    a, b = data.paired_files(tmp_path / "a", tmp_path / "b")
    originals = [read_image(f).astype(np.float32) / 255 for f in a]
    for x, y in _arrays(data.random_pair_batches(a, b, 6, seed=5, patch_size=16, flip=True,
                                                 color_augment=True), 3):
        np.testing.assert_array_equal(x, y)
    # Without colour jitter every crop is a (possibly mirrored) window of one original.
    for x, _ in _arrays(data.random_pair_batches(a, b, 6, seed=5, patch_size=16, flip=True), 2):
        for patch in x:
            found = any(
                np.array_equal(cand[t: t + 16, l_: l_ + 16], patch)
                for im in originals for cand in (im, im[:, ::-1])
                for t in range(15) for l_ in range(25))
            assert found


def test_random_pair_batches_two_batches_per_step_and_symmetric(tmp_path):
    a, b = _coded_pairs(tmp_path, 6)
    (a1, b1), (a2, b2) = _arrays(data.random_pair_batches(a, b, 3, seed=1, batches_per_step=2), 1)[0]
    assert a1.shape == a2.shape == b1.shape == (3, 20, 24, 3)
    assert not np.array_equal(a1, a2)
    unit = _arrays(data.random_pair_batches(a, b, 3, seed=1, patch_size=8), 1)[0]
    sym = _arrays(data.random_pair_batches(a, b, 3, seed=1, patch_size=8, normalize="symmetric"), 1)[0]
    np.testing.assert_allclose(sym[0], unit[0] * 2 - 1, atol=1e-6)
    with pytest.raises(PhotoEnhanceError, match="normalize"):
        data.random_pair_batches(a, b, 3, seed=1, normalize="imagenet")


def test_resize_then_crop(tmp_path):
    a, b = _coded_pairs(tmp_path, 3)
    x, y = _arrays(data.random_pair_batches(a, b, 2, seed=0, resize=(40, 48), patch_size=32), 1)[0]
    assert x.shape == y.shape == (2, 32, 32, 3)


# ----------------------------------------------------------------------------------- decoding, errors
def test_decode_awkward_files_like_read_image(tmp_path):
    rng = np.random.default_rng(2)
    gray = rng.integers(0, 256, (9, 7), dtype=np.uint8)
    rgba = rng.integers(0, 256, (9, 7, 4), dtype=np.uint8)
    rgb16 = rng.integers(0, 65536, (9, 7, 3), dtype=np.uint16)
    gray16 = rng.integers(0, 65536, (9, 7, 1), dtype=np.uint16)
    import imageio.v3 as iio

    iio.imwrite(tmp_path / "gray.png", gray)
    iio.imwrite(tmp_path / "rgba.png", rgba)
    tf.io.write_file(str(tmp_path / "rgb16.png"), tf.io.encode_png(rgb16))
    tf.io.write_file(str(tmp_path / "gray16.png"), tf.io.encode_png(gray16))
    write_image(tmp_path / "photo.jpg", rng.integers(0, 256, (9, 7, 3), dtype=np.uint8))
    for name in ("gray.png", "rgba.png", "rgb16.png", "gray16.png", "photo.jpg"):
        path = tmp_path / name
        decoded = data.decode_image(tf.constant(str(path))).numpy()
        expected = read_image(path).astype(np.float32) / 255
        if name == "rgb16.png":
            # Pillow (behind read_image) keeps only the high byte of 16-bit RGB; the pipeline rounds v / 257.
            expected = np.round(rgb16 / 257.0).astype(np.float32) / 255
        assert decoded.shape == (9, 7, 3), name
        np.testing.assert_allclose(decoded, expected, atol=1e-6, err_msg=name)


def test_decode_jpeg_matches_read_image_on_real_patches(dped_sample):
    # TensorFlow's default (fast) JPEG DCT is off by up to 19 levels here; the pipeline must not be.
    for path in sorted((dped_sample / "patches" / "canon").glob("*.jpg"))[:10]:
        decoded = data.decode_image(tf.constant(str(path))).numpy()
        np.testing.assert_array_equal(np.round(decoded * 255).astype(np.uint8), read_image(path))


def _bad_folder(tmp_path):
    rng = np.random.default_rng(3)
    for i in range(4):
        img = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
        write_image(tmp_path / "a" / f"{i}.jpg", img)
        write_image(tmp_path / "b" / f"{i}.jpg", img)
    whole = (tmp_path / "a" / "1.jpg").read_bytes()
    (tmp_path / "a" / "1.jpg").write_bytes(whole[: len(whole) // 2])  # truncated JPEG
    (tmp_path / "b" / "2.jpg").write_text("this is not an image\n")  # text named .jpg
    return data.paired_files(tmp_path / "a", tmp_path / "b")


def test_bad_files_raise_naming_them(tmp_path):
    a, b = _bad_folder(tmp_path)
    with pytest.raises(DataLayoutError) as info:
        data.random_pair_batches(a, b, 2, seed=0)
    msg = str(info.value)
    assert "2 bad image(s) of 4" in msg
    assert "a/1.jpg: truncated JPEG" in msg and "b/2.jpg: not a readable image" in msg
    assert "skip_bad=True" in msg


def test_bad_files_skipped_and_reported(tmp_path):
    a, b = _bad_folder(tmp_path)
    good_a, good_b, report = data.scan_pairs(a, b, skip_bad=True)
    assert [p.rsplit("/", 1)[1] for p in good_a] == ["0.jpg", "3.jpg"]
    assert report.checked == 4 and report.used == 2 and report.skipped == 2 and len(report.problems) == 2
    assert "2 of 4 usable" in str(report) and report.sizes == {(48, 48): 2}
    x, _ = _arrays(data.random_pair_batches(good_a, good_b, 5, seed=0, validate=False), 1)[0]
    assert x.shape == (5, 48, 48, 3)


def test_truncated_header_is_reported(tmp_path):
    write_image(tmp_path / "x.jpg", np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "x.jpg").write_bytes((tmp_path / "x.jpg").read_bytes()[:40])
    (tmp_path / "empty.png").write_bytes(b"")
    _, report = data.scan_images([tmp_path / "x.jpg", tmp_path / "empty.png", tmp_path / "gone.png"],
                                 skip_bad=True)
    assert report.used == 0
    assert "x.jpg: truncated file" in report.problems[0]
    assert "empty.png: file is empty" in report.problems[1]
    assert "gone.png: file not found" in report.problems[2]


def test_full_decode_scan_catches_corrupt_data(tmp_path):
    rng = np.random.default_rng(4)
    write_image(tmp_path / "ok.png", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    blob = bytearray((tmp_path / "ok.png").read_bytes())
    blob[60:80] = b"\x00" * 20  # damage compressed data, keep header and IEND
    (tmp_path / "bad.png").write_bytes(bytes(blob))
    good, _ = data.scan_images([tmp_path / "ok.png", tmp_path / "bad.png"])
    assert len(good) == 2  # headers look fine
    good, report = data.scan_images([tmp_path / "ok.png", tmp_path / "bad.png"], decode=True, skip_bad=True)
    assert good == [str(tmp_path / "ok.png")] and "bad.png" in report.problems[0]


def test_pairs_of_different_sizes(tmp_path):
    write_image(tmp_path / "a" / "0.png", np.zeros((20, 20, 3), np.uint8))
    write_image(tmp_path / "b" / "0.png", np.zeros((24, 20, 3), np.uint8))
    a, b = data.paired_files(tmp_path / "a", tmp_path / "b")
    with pytest.raises(DataLayoutError, match="0.png is 20x20 but its partner .*0.png is 24x20"):
        data.random_pair_batches(a, b, 1, seed=0)
    x, y = _arrays(data.random_pair_batches(a, b, 1, seed=0, resize=16), 1)[0]
    assert x.shape == y.shape == (1, 16, 16, 3)
    with pytest.raises(DataLayoutError, match="smaller than the 32x32 crop"):
        data.random_pair_batches(a, a, 1, seed=0, patch_size=32)


def test_mixed_sizes_need_crop_or_resize_to_batch(tmp_path):
    write_image(tmp_path / "a" / "0.png", np.zeros((20, 20, 3), np.uint8))
    write_image(tmp_path / "a" / "1.png", np.zeros((30, 20, 3), np.uint8))
    with pytest.raises(DataLayoutError, match="different sizes"):
        data.paired_folder_dataset(tmp_path / "a", tmp_path / "a", 2)
    assert len(list(data.paired_folder_dataset(tmp_path / "a", tmp_path / "a", 1))) == 2


def test_tiff_is_refused_with_advice(tmp_path):
    import imageio.v3 as iio

    iio.imwrite(tmp_path / "x.tif", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(DataLayoutError, match="TIFF .* convert to PNG"):
        data.scan_images([tmp_path / "x.tif"])


# ------------------------------------------------------------------------------ evaluation & synthetic
def test_paired_folder_dataset_ordered_finite(tmp_path):
    _coded_pairs(tmp_path, 7)
    batches = _arrays(data.paired_folder_dataset(tmp_path / "a", tmp_path / "b", 3), 10)
    assert [x.shape[0] for x, _ in batches] == [3, 3, 1]
    order = np.concatenate([np.round(x[:, 0, 0, 0] * 255) for x, _ in batches]).astype(int)
    np.testing.assert_array_equal(order, np.arange(7))
    dropped = _arrays(data.paired_folder_dataset(tmp_path / "a", tmp_path / "b", 3, drop_remainder=True,
                                                 patch_size=(10, 12), normalize="symmetric", cache=True), 10)
    assert len(dropped) == 2 and dropped[0][0].shape == (3, 10, 12, 3) and dropped[0][0].min() >= -1
    # Centre crop of 20x24 -> 10x12 starts at (5, 6).
    full = read_image(tmp_path / "a" / "0.png").astype(np.float32) / 255
    np.testing.assert_allclose((dropped[0][0][0] + 1) / 2, full[5:15, 6:18], atol=1e-6)


def test_synthetic_pairs_apply_degradation_after_crop(tmp_path):
    rng = np.random.default_rng(5)
    files = [write_image(tmp_path / f"{i}.png", rng.integers(0, 256, (40, 50, 3), dtype=np.uint8))
             for i in range(3)]
    seeds = []

    def degrade(images, seed):
        seeds.append(seed)
        return gaussian_blur(images, 1.0)

    ds = data.synthetic_pair_dataset(files, degrade, 4, seed=2, crop_size=24)
    batches = _arrays(ds, 3)
    assert seeds[-1].shape == (2,)  # a stateless seed pair, traced into the pipeline
    for degraded, clean in batches:
        assert degraded.shape == clean.shape == (4, 24, 24, 3)
        np.testing.assert_allclose(degraded, gaussian_blur(clean, 1.0).numpy(), atol=1e-6)
    resumed = _arrays(data.synthetic_pair_dataset(files, degrade, 4, seed=2, crop_size=24, start_step=2), 1)
    np.testing.assert_array_equal(resumed[0][1], batches[2][1])
    once = _arrays(data.synthetic_pair_dataset(files, degrade, 2, seed=2, crop_size=24, flip=False,
                                               repeat=False), 10)
    assert [c.shape[0] for _, c in once] == [2, 1]


def test_synthetic_pairs_seed_reaches_degradation(tmp_path):
    rng = np.random.default_rng(6)
    files = [write_image(tmp_path / f"{i}.png", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
             for i in range(2)]

    def add_noise(images, seed):
        return images + 0.1 * tf.random.stateless_normal(tf.shape(images), seed)

    first = _arrays(data.synthetic_pair_dataset(files, add_noise, 2, seed=0, flip=False), 2)
    again = _arrays(data.synthetic_pair_dataset(files, add_noise, 2, seed=0, flip=False), 2)
    np.testing.assert_array_equal(first[1][0], again[1][0])
    assert not np.allclose(first[0][0] - first[0][1], first[1][0] - first[1][1])


def test_patch_dataset_windows_of_large_image(tmp_path):
    rng = np.random.default_rng(7)
    big = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    path = write_image(tmp_path / "big.png", big)
    batches = _arrays(data.patch_dataset([path], 16, seed=1, batch_size=4), 2)
    full = big.astype(np.float32) / 255
    for batch in batches:
        assert batch.shape == (4, 16, 16, 3)
        for patch in batch:
            assert any(np.array_equal(full[t: t + 16, l_: l_ + 16], patch) for t in range(45) for l_ in range(65))
    resumed = _arrays(data.patch_dataset([path], 16, seed=1, batch_size=4, start_step=1), 1)
    np.testing.assert_array_equal(resumed[0], batches[1])
    with pytest.raises(DataLayoutError, match="smaller than the 64x64 crop"):
        data.patch_dataset([path], 64, seed=1)


def _turned_and_tagged_pair(tmp_path, profile):
    """Pair 0: a JPEG stored sideways with EXIF orientation 6; pair 1: a PNG tagged with `profile`. Targets are
    the upright sRGB photos as plain PNGs, so a pipeline that reads what `enhance` reads gives equal pairs."""
    from PIL import Image

    rng = np.random.default_rng(5)
    upright = [rng.integers(0, 256, (24, 16, 3), dtype=np.uint8) for _ in range(2)]
    (tmp_path / "a").mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6  # the viewer turns the stored pixels 90 degrees clockwise
    Image.fromarray(np.ascontiguousarray(np.rot90(upright[0], 1))).save(
        tmp_path / "a" / "0.jpg", quality=100, subsampling=0, exif=exif.tobytes())
    Image.fromarray(upright[1][..., [1, 0, 2]]).save(tmp_path / "a" / "1.png", icc_profile=profile)
    for i in range(2):
        write_image(tmp_path / "b" / f"{i}.png", read_image(next((tmp_path / "a").glob(f"{i}.*"))))
    return upright


def test_turned_and_icc_tagged_files_train_as_enhance_reads_them(tmp_path, swapped_rg_profile):
    upright = _turned_and_tagged_pair(tmp_path, swapped_rg_profile)
    files_a, files_b = data.paired_files(tmp_path / "a", tmp_path / "b")
    good_a, _, report = data.scan_pairs(files_a, files_b)
    assert len(good_a) == 2 and report.sizes == {(24, 16): 2}  # the upright size, equal to the partner's
    assert sorted(report.managed) == files_a
    for x, y in data.paired_folder_dataset(tmp_path / "a", tmp_path / "b", 1):
        np.testing.assert_array_equal(x.numpy(), y.numpy())
    assert np.abs(read_image(files_b[0]).astype(int) - upright[0]).max() <= 8  # upright, not sideways
    assert np.abs(read_image(files_b[1]).astype(int) - upright[1]).max() <= 2  # the profile's green is red
    for scan in ({}, {"validate": False, "managed": report.managed}):  # scanned here, or by the caller
        x, y = next(iter(data.random_pair_batches(files_a, files_b, 4, seed=0, patch_size=(8, 8), **scan)))
        np.testing.assert_array_equal(x.numpy(), y.numpy())
    raw = next(iter(data.paired_folder_dataset(tmp_path / "a", tmp_path / "b", 1, validate=False)))
    assert raw[0].shape[1:3] == (16, 24)  # without the scan, TensorFlow's decoders give the stored pixels


def _move_exif_after_pixels(path):
    """Rewrite a PNG with its eXIf chunk just before IEND, where some writers put it."""
    raw = path.read_bytes()
    chunks, at = [], 8
    while at < len(raw):
        length = int.from_bytes(raw[at:at + 4], "big")
        chunks.append(raw[at:at + 12 + length])
        at += 12 + length
    exif = [c for c in chunks if c[4:8] == b"eXIf"]
    rest = [c for c in chunks if c[4:8] != b"eXIf"]
    assert len(exif) == 1 and rest[-1][4:8] == b"IEND"
    path.write_bytes(raw[:8] + b"".join(rest[:-1] + exif + rest[-1:]))


def test_png_orientation_stored_after_the_pixels_is_seen_by_the_scan(tmp_path):
    from PIL import Image
    stored = np.random.default_rng(0).integers(0, 255, (16, 24, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "late.png", exif=exif)
    _move_exif_after_pixels(tmp_path / "late.png")
    with Image.open(tmp_path / "late.png") as im:
        assert "exif" not in im.info  # the header read alone does not see it
    assert read_image(tmp_path / "late.png").shape == (24, 16, 3)
    good, report = data.scan_images([tmp_path / "late.png"])
    assert report.sizes == {(24, 16): 1} and report.managed == [str(tmp_path / "late.png")]
