"""The photo reader and writer: orientation, colour management, 16-bit, metadata, atomic writes, and the
tf.data decoder agreeing with the NumPy reader."""
import io

import numpy as np
import pytest
from PIL import Image

from common.photo_read import EXIF_ORIENTATION, SRGB_PROFILE, read_photo
from common.photo_write import write_photo


def _photo(shape=(24, 16), seed=0):
    """A smooth random RGB photo (JPEG-friendly), uint8."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (shape[0] // 4, shape[1] // 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize(shape[::-1], Image.BICUBIC))


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0 ** 2 / mse) if mse else np.inf


def test_exif_orientation_6_is_applied_and_reset(tmp_path):
    upright = _photo((24, 16))
    stored = np.rot90(upright, 1)  # orientation 6: the viewer turns the stored pixels 90 degrees clockwise
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    exif[0x010F] = "PhoneMaker"
    Image.fromarray(np.ascontiguousarray(stored)).save(tmp_path / "p.jpg", quality=100, subsampling=0,
                                                         exif=exif.tobytes())
    raw = np.asarray(Image.open(tmp_path / "p.jpg").convert("RGB"))
    photo = read_photo(tmp_path / "p.jpg")
    assert photo.pixels.shape == (24, 16, 3) and photo.format == "JPEG" and photo.bit_depth == 8
    np.testing.assert_array_equal(photo.pixels, np.rot90(raw, -1))
    assert _psnr(photo.pixels, upright) > 35
    carried = Image.Exif()
    carried.load(photo.exif)
    assert carried[EXIF_ORIENTATION] == 1 and carried[0x010F] == "PhoneMaker"


def test_cmyk_jpeg_equals_its_rgb_twin(tmp_path):
    rgb = _photo((48, 64), seed=1)
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    assert _psnr(read_photo(tmp_path / "cmyk.jpg").pixels, rgb) >= 40.0


def test_icc_tagged_photo_is_converted_to_srgb_and_back(tmp_path, swapped_rg_profile):
    rgb = _photo((20, 30), seed=2)
    profile = swapped_rg_profile
    Image.fromarray(rgb).save(tmp_path / "tagged.png", icc_profile=profile)
    photo = read_photo(tmp_path / "tagged.png")
    assert photo.srgb_converted and photo.icc == profile
    assert np.abs(photo.pixels.astype(int) - rgb[..., [1, 0, 2]]).max() <= 2  # the profile's red is sRGB green
    write_photo(tmp_path / "out.png", photo.pixels, "PNG", icc=photo.icc, from_srgb=True)
    written = Image.open(tmp_path / "out.png")
    assert written.info["icc_profile"] == profile
    assert np.abs(np.asarray(written).astype(int) - rgb).max() <= 3  # back in the file's own space


@pytest.mark.parametrize("kind", ["P", "LA", "I;16", "L"])
def test_palette_gray_alpha_and_16bit_gray(tmp_path, kind):
    gray = np.arange(35, dtype=np.uint8).reshape(5, 7) * 7
    if kind == "I;16":
        image, expected = Image.fromarray(gray.astype(np.uint16) * 257), gray
    elif kind == "P":
        image, expected = Image.fromarray(np.stack([gray] * 3, -1)).quantize(256), None
    else:
        image, expected = Image.fromarray(gray).convert(kind), gray
    image.save(tmp_path / "x.png")
    photo = read_photo(tmp_path / "x.png")
    assert photo.pixels.shape == (5, 7, 3)
    if expected is None:
        expected = np.asarray(image.convert("RGB"))[..., 0]
    got = photo.pixels if photo.bit_depth == 8 else np.round(photo.pixels / 257.0).astype(np.uint8)
    np.testing.assert_array_equal(got, np.stack([expected] * 3, -1))
    assert photo.bit_depth == (16 if kind == "I;16" else 8)


@pytest.mark.parametrize("fmt, name", [("PNG", "x.png"), ("TIFF", "x.tif")])
def test_16bit_round_trip_keeps_every_bit_and_the_profile(tmp_path, fmt, name):
    pixels = np.random.default_rng(3).integers(0, 65536, (9, 11, 3), dtype=np.uint16)
    icc = SRGB_PROFILE.tobytes()
    write_photo(tmp_path / name, pixels, fmt, icc=icc)
    photo = read_photo(tmp_path / name)
    assert photo.bit_depth == 16 and photo.pixels.dtype == np.uint16 and photo.icc == icc
    np.testing.assert_array_equal(photo.pixels, pixels)


def test_16bit_png_carries_exif(tmp_path):
    exif = Image.Exif()
    exif[0x010F] = "RawConverter"
    pixels = np.full((4, 6, 3), 40000, np.uint16)
    write_photo(tmp_path / "x.png", pixels, "PNG", exif=exif.tobytes())
    assert read_photo(tmp_path / "x.png").pixels.dtype == np.uint16
    assert Image.open(tmp_path / "x.png").getexif()[0x010F] == "RawConverter"


def test_interrupted_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "out.jpg"
    target.write_bytes(b"the previous output")

    def broken_save(self, fp, *args, **kwargs):
        with open(fp, "wb") as f:
            f.write(b"half a JPEG")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        write_photo(target, _photo(), "JPEG")
    assert target.read_bytes() == b"the previous output"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jpg"]


def test_jpeg_output_quality_and_metadata(tmp_path):
    photo = _photo((32, 32), seed=4)
    exif = Image.Exif()
    exif[0x0110] = "Model X"
    write_photo(tmp_path / "a.jpg", photo, "JPEG", quality=95, exif=exif.tobytes(), icc=SRGB_PROFILE.tobytes())
    write_photo(tmp_path / "b.jpg", photo, "JPEG", quality=30)
    written = Image.open(tmp_path / "a.jpg")
    assert written.getexif()[0x0110] == "Model X" and written.info["icc_profile"] == SRGB_PROFILE.tobytes()
    assert _psnr(np.asarray(written), photo) > _psnr(np.asarray(Image.open(tmp_path / "b.jpg")), photo) + 5


def test_tf_data_decoder_matches_numpy_reader(tmp_path, dped_sample):
    import tensorflow as tf

    from common.data import decode_image
    from common.images import read_image

    files = [dped_sample / "patches" / "iphone" / f"{i}.jpg" for i in range(3)]
    rgb = _photo((30, 40), seed=5)
    for name, image in (("rgb.png", rgb), ("gray.png", rgb[..., 0]), ("q90.jpg", rgb)):
        Image.fromarray(image).save(tmp_path / name, **({"quality": 90} if name.endswith("jpg") else {}))
        files.append(tmp_path / name)
    decoded = tf.data.Dataset.from_tensor_slices([str(f) for f in files]).map(decode_image)
    for path, image in zip(files, decoded):
        np.testing.assert_array_equal(np.round(image.numpy() * 255).astype(np.uint8), read_image(path))


def test_unreadable_photo_names_the_file(tmp_path):
    from common.errors import ImageReadError

    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    with pytest.raises(ImageReadError, match="broken.jpg: cannot be decoded"):
        read_photo(tmp_path / "broken.jpg")
    buffer = io.BytesIO()
    Image.fromarray(_photo()).save(buffer, "PNG")
    (tmp_path / "cut.png").write_bytes(buffer.getvalue()[:60])
    with pytest.raises(ImageReadError, match="cut.png"):
        read_photo(tmp_path / "cut.png")
