"""The enhance driver's rules on tiny models and photos: upright portraits, formats and metadata, never
over an input, skipping existing outputs, bad photos counted, output-folder errors first, minimum size,
the memory budget (capped, and measured in a fresh process) and quiet start-up."""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from common.cli import run_cli
from common.errors import PhotoEnhanceError
from common.images import read_image, to_float
from common.photo_read import EXIF_ORIENTATION, SRGB_PROFILE
from dped import enhance
from dped.models import build_generator, load_generator, save_generator

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(11)
    model = build_generator(width=4, num_blocks=1)
    model.set_weights([w * 5 if w.ndim == 4 else w for w in model.get_weights()])
    return save_generator(model, tmp_path_factory.mktemp("w") / "tiny.keras")


def _photo(shape, seed=0):
    small = np.random.default_rng(seed).integers(0, 256, (shape[0] // 4, shape[1] // 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize(shape[::-1], Image.BICUBIC))


def _expected(weights, upright):
    out = load_generator(weights)(to_float(upright)[None]).numpy()[0]
    return np.round(np.clip(out, 0, 1) * 255).astype(int)


def _enhance(weights, *argv):
    return enhance.main([*map(str, argv), "--weights", str(weights), "--no-progress"])


def test_portrait_jpeg_comes_out_upright_as_jpeg_with_metadata(tiny_weights, tmp_path):
    upright = _photo((28, 20))
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    exif[0x010F] = "PhoneMaker"
    (tmp_path / "in").mkdir()
    Image.fromarray(np.ascontiguousarray(np.rot90(upright, 1))).save(
        tmp_path / "in" / "IMG_1.JPG", quality=100, subsampling=0, exif=exif.tobytes(),
        icc_profile=SRGB_PROFILE.tobytes())
    decoded = read_image(tmp_path / "in" / "IMG_1.JPG")  # upright pixels as the reader sees them
    [png] = _enhance(tiny_weights, tmp_path / "in", "--output-dir", tmp_path / "png", "--format", "png")
    assert np.abs(read_image(png).astype(int) - _expected(tiny_weights, decoded)).max() <= 1
    [jpg] = _enhance(tiny_weights, tmp_path / "in", "--output-dir", tmp_path / "jpg", "--suffix", "_dped")
    assert jpg.name == "IMG_1_dped.JPG"
    written = Image.open(jpg)
    assert written.format == "JPEG" and written.size == (20, 28)
    assert written.getexif()[EXIF_ORIENTATION] == 1 and written.getexif()[0x010F] == "PhoneMaker"
    assert written.info["icc_profile"] == SRGB_PROFILE.tobytes()


def test_in_place_run_never_touches_inputs(tiny_weights, tmp_path, capsys):
    for name, seed in (("a.png", 1), ("b.jpg", 2)):
        Image.fromarray(_photo((16, 16), seed)).save(tmp_path / name)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(SystemExit) as exit_info:
        run_cli(enhance.main, [str(tmp_path), "--weights", str(tiny_weights), "--output-dir", str(tmp_path)])
    assert exit_info.value.code == 2 and "would overwrite the input" in capsys.readouterr().err
    with pytest.raises(PhotoEnhanceError, match="would overwrite the input"):  # b.jpg -> b.png is fine, a.png not
        _enhance(tiny_weights, tmp_path, "--output-dir", tmp_path, "--format", "png")
    written = _enhance(tiny_weights, tmp_path, "--output-dir", tmp_path, "--suffix", "_x")
    assert sorted(p.name for p in written) == ["a_x.png", "b_x.jpg"]
    assert {n: (tmp_path / n).read_bytes() for n in before} == before


def test_second_run_skips_existing_outputs_unless_overwrite(tiny_weights, tmp_path, capsys):
    Image.fromarray(_photo((16, 16))).save(tmp_path / "a.png")
    out = tmp_path / "out"
    assert len(_enhance(tiny_weights, tmp_path / "a.png", "--output-dir", out)) == 1
    (out / "a.png").write_bytes(b"edited by hand")
    assert _enhance(tiny_weights, tmp_path / "a.png", "--output-dir", out) == []
    assert "skipped 1 existing" in capsys.readouterr().out and (out / "a.png").read_bytes() == b"edited by hand"
    assert len(_enhance(tiny_weights, tmp_path / "a.png", "--output-dir", out, "--overwrite")) == 1
    assert read_image(out / "a.png").shape == (16, 16, 3)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left behind


def test_bad_photos_are_counted_and_the_others_go_on(tiny_weights, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(_photo((16, 16))).save(folder / "1.png")
    (folder / "2.jpg").write_bytes(b"\xff\xd8\xff not a photo")
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(folder / "3.png")
    Image.fromarray(_photo((20, 16), 3)).save(folder / "4.png")
    with pytest.raises(SystemExit) as exit_info:
        run_cli(enhance.main, [str(folder), "--weights", str(tiny_weights), "--output-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "2 of 4 photo(s) failed" in err
    assert "2.jpg: cannot be decoded" in err and "3.png: 1x1 is below the 8 px" in err
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["1.png", "4.png"]
    with pytest.raises(PhotoEnhanceError, match="2.jpg: cannot be decoded"):
        _enhance(tiny_weights, folder, "--output-dir", tmp_path / "ff", "--fail-fast")
    assert sorted(p.name for p in (tmp_path / "ff").iterdir()) == ["1.png"]


def test_output_folder_problems_fail_before_any_photo(tiny_weights, tmp_path):
    Image.fromarray(_photo((16, 16))).save(tmp_path / "a.png")
    (tmp_path / "file").write_text("not a folder")
    missing_model = tmp_path / "no-such-model.keras"  # never reached: the folder is checked first
    for out, message in ((tmp_path / "file", "output folder is a file"),
                         (tmp_path / "file" / "sub", "output folder cannot be written")):
        with pytest.raises(PhotoEnhanceError, match=message):
            enhance.main([str(tmp_path / "a.png"), "--weights", str(missing_model), "--output-dir", str(out)])
    with pytest.raises(PhotoEnhanceError, match="--bit-depth 16 needs PNG or TIFF"):
        _enhance(tiny_weights, tmp_path / "a.png", "--output-dir", tmp_path / "o", "--format", "jpg",
                 "--bit-depth", "16")


def test_16bit_output_and_budget_cap(tiny_weights, tmp_path, capsys):
    pixels = (np.random.default_rng(4).random((12, 14, 3)) * 65535).astype(np.uint16)
    from common.photo_write import write_photo

    write_photo(tmp_path / "raw.tif", pixels, "TIFF")
    [out] = _enhance(tiny_weights, tmp_path / "raw.tif", "--output-dir", tmp_path / "o", "--bit-depth", "16",
                     "--memory-budget-mb", "100000000")
    assert "exceeds this machine's memory" in capsys.readouterr().err
    from common.photo_read import read_photo

    result = read_photo(out)
    assert out.suffix == ".tif" and result.bit_depth == 16
    model = load_generator(tiny_weights)
    expected = np.clip(model(pixels[None].astype(np.float32) / 65535).numpy()[0], 0, 1) * 65535
    assert np.abs(result.pixels.astype(float) - expected).max() <= 1.0


# A small launcher starts the command: Linux folds the memory of the process that starts a program into
# that program's ru_maxrss at exec, so started from this test runner it would read as the runner's size.
LAUNCHER = ("import os, subprocess, sys; child = subprocess.Popen(sys.argv[1:]); "
            "_, status, usage = os.wait4(child.pid, 0); "
            "print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)")


def _peak_rss_mb(argv):
    """Run `python -m dped.enhance argv` in a fresh process; its peak resident memory in MB, and stderr."""
    proc = subprocess.run([sys.executable, "-c", LAUNCHER, sys.executable, "-m", "dped.enhance", *map(str, argv)],
                          cwd=REPO, capture_output=True, text=True, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    code, maxrss_kb = (int(v) for v in proc.stdout.split()[-2:])
    assert code == 0, proc.stderr
    return maxrss_kb / 1024, proc.stderr


@pytest.mark.slow
def test_memory_budget_bounds_peak_rss_and_output_stays_exact(tmp_path):
    model = build_generator()  # the paper network's size (64 channels), random weights
    weights = save_generator(model, tmp_path / "paper.keras")
    Image.fromarray(_photo((600, 800), 5)).save(tmp_path / "p.png")
    # Tiled at 1000 MB (the whole photo would need about 1,180 MB), with room for the command's start-up,
    # measured at 622-745 MB on the same 2-core machine from run to run.
    budget = 1000
    rss, err = _peak_rss_mb(["--weights", weights, tmp_path / "p.png", "--output-dir", tmp_path / "tiled",
                             "--memory-budget-mb", budget, "--no-progress"])
    assert rss <= budget, f"peak {rss:.0f} MB over the {budget} MB budget"
    assert "I0000" not in err and "cuInit" not in err and "oneDNN" not in err  # quiet without --verbose
    whole = _enhance(weights, tmp_path / "p.png", "--output-dir", tmp_path / "whole", "--memory-budget-mb", 100000)
    diff = read_image(tmp_path / "tiled" / "p.png").astype(int) - read_image(whole[0]).astype(int)
    assert np.abs(diff).max() <= 1


def test_pix2pix_uses_the_same_driver_and_writes_hdr(tmp_path):
    from common.generators import save_generator as save_any
    from pix2pix import enhance as pix2pix_enhance
    from pix2pix.gan import Pix2Pix
    from pix2pix.models import build_unet

    photo = _photo((20, 28), 6)
    Image.fromarray(photo).save(tmp_path / "a.png")
    deblur = build_unet(depth=3, base_filters=4, max_filters=8)
    weights = save_any(deblur, tmp_path / "deblur.keras", family="pix2pix", task="deblur")
    [out] = pix2pix_enhance.main([str(tmp_path / "a.png"), "--task", "deblur", "--weights", str(weights),
                                  "--output-dir", str(tmp_path / "o"), "--no-progress"])
    expected = Pix2Pix.for_inference(deblur)(to_float(photo)[None]).numpy()[0]
    assert np.abs(read_image(out).astype(int) - np.round(np.clip(expected, 0, 1) * 255)).max() <= 1
    hdr = build_unet(depth=3, base_filters=4, max_filters=8, output_activation="relu")
    weights = save_any(hdr, tmp_path / "hdr.keras", family="pix2pix", task="ldr2hdr")
    written = pix2pix_enhance.main([str(tmp_path / "a.png"), "--task", "ldr2hdr", "--weights", str(weights),
                                    "--output-dir", str(tmp_path / "h"), "--no-progress"])
    assert [p.name for p in written] == ["a.png"]
    assert (tmp_path / "h" / "a.hdr").read_bytes().startswith(b"#?RADIANCE")
