"""Command-line entry points on tiny inputs: enhance (gray, RGBA, odd sizes, resolutions, SavedModel),
evaluate (both PSNR conventions, report files), export, and one-line errors."""
import json

import imageio.v3 as iio
import numpy as np
import pytest

from common.cli import run_cli
from common.images import read_image, to_float
from dped import enhance, evaluate, export
from dped.models import build_generator, save_generator


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(7)
    model = build_generator(width=4, num_blocks=1)
    model.set_weights([w * 5 if w.ndim == 4 else w for w in model.get_weights()])
    return save_generator(model, tmp_path_factory.mktemp("w") / "tiny.keras")


@pytest.fixture
def photos(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "in"
    folder.mkdir()
    iio.imwrite(folder / "gray.png", rng.integers(0, 256, (21, 17), dtype=np.uint8))
    iio.imwrite(folder / "rgba.png", rng.integers(0, 256, (12, 19, 4), dtype=np.uint8))
    iio.imwrite(folder / "odd.jpg", rng.integers(0, 256, (23, 31, 3), dtype=np.uint8))
    return folder


def test_enhance_folder_of_gray_rgba_odd_photos(tiny_weights, photos, tmp_path):
    from dped.models import load_generator

    out = tmp_path / "out"
    written = enhance.main([str(photos), "--weights", str(tiny_weights), "--output-dir", str(out), "--format", "png"])
    assert sorted(p.name for p in written) == ["gray.png", "odd.png", "rgba.png"]
    model = load_generator(tiny_weights)
    for name, shape in (("gray", (21, 17, 3)), ("rgba", (12, 19, 3)), ("odd", (23, 31, 3))):
        result = read_image(out / f"{name}.png")
        assert result.shape == shape
        source = [p for p in photos.iterdir() if p.stem == name][0]
        expected = np.round(np.clip(model(to_float(read_image(source))[None]).numpy()[0], 0, 1) * 255)
        assert np.abs(result.astype(int) - expected.astype(int)).max() <= 1


def test_enhance_resolution_tiling_and_saved_model_agree(tiny_weights, photos, tmp_path):
    single = photos / "odd.jpg"
    enhance.main([str(single), "--weights", str(tiny_weights), "--output-dir", str(tmp_path / "a"),
                  "--resolution", "tiny", "--phone", "iphone", "--format", "png"])
    assert read_image(tmp_path / "a" / "odd.png").shape == (600, 800, 3)
    assert export.main(["--weights", str(tiny_weights), "--out", str(tmp_path / "sm")]) == 0
    tiling = ["--tile", "16", "--overlap", "4"]  # a 23x31 photo in tiles of at most 16 px
    runs = {"sm_tiled": ["--saved-model", str(tmp_path / "sm")] + tiling,
            "sm_whole": ["--saved-model", str(tmp_path / "sm")],
            "keras_tiled": ["--weights", str(tiny_weights), "--tile", "16"],
            "keras_whole": ["--weights", str(tiny_weights)]}
    results = {}
    for name, argv in runs.items():
        enhance.main([str(single), "--output-dir", str(tmp_path / name), "--format", "png"] + argv)
        results[name] = read_image(tmp_path / name / "odd.png").astype(int)
        assert results[name].shape == (23, 31, 3)
    # Keras models tile with whole-image norm statistics (exact); SavedModels blend tiles (close).
    assert np.abs(results["keras_tiled"] - results["keras_whole"]).max() <= 1
    assert np.abs(results["sm_whole"] - results["keras_whole"]).max() <= 1
    assert 0 < np.abs(results["sm_tiled"] - results["keras_whole"]).mean() < 3.0


def test_enhance_image_api_tiles(tiny_weights):
    from dped.loading import make_predictor
    from dped.models import load_generator

    image = np.random.default_rng(3).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    model = load_generator(tiny_weights)
    whole = enhance.enhance_image(model, image).astype(int)
    exact = enhance.enhance_image(model, image, side=40).astype(int)
    blended = enhance.enhance_image(make_predictor(model), image, overlap=12, side=16).astype(int)
    assert exact.shape == blended.shape == whole.shape == (70, 90, 3)
    assert np.abs(exact - whole).max() <= 1
    assert 0 < np.abs(blended - whole).mean() < 3.0  # blended tiles really ran, and stay close


def test_errors_are_one_line(tiny_weights, tmp_path, capsys):
    cases = [
        ([str(tmp_path / "nope.jpg"), "--weights", str(tiny_weights), "--output-dir", str(tmp_path)],
         "nope.jpg: input not found"),
        ([str(tmp_path), "--weights", str(tmp_path / "w.keras"), "--output-dir", str(tmp_path / "o")],
         "holds no images"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            run_cli(enhance.main, argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(SystemExit):
        run_cli(enhance.main, [str(tmp_path / "bad.png"), "--weights", str(tiny_weights), "--output-dir",
                               str(tmp_path / "o")])
    assert "bad.png: cannot be decoded" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_cli(evaluate.main, ["--test-dir", str(tmp_path), "--weights", str(tiny_weights), "--out",
                                str(tmp_path / "e")])
    assert "not found" in capsys.readouterr().err


def test_evaluate_writes_both_psnr_conventions(tiny_weights, tmp_path):
    rng = np.random.default_rng(5)
    for sub in ("iphone", "canon"):
        (tmp_path / "test" / sub).mkdir(parents=True)
    for i in range(6):
        dslr = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
        phone = dslr if i == 0 else np.clip(dslr.astype(int) + rng.integers(-40, 40, dslr.shape), 0, 255)
        iio.imwrite(tmp_path / "test" / "canon" / f"{i}.png", dslr)
        iio.imwrite(tmp_path / "test" / "iphone" / f"{i}.png", phone.astype(np.uint8))
    out = tmp_path / "eval"
    assert evaluate.main(["--phone", "iphone", "--test-dir", str(tmp_path / "test"), "--weights", str(tiny_weights),
                          "--out", str(out), "--examples", "2"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["phone"]["n_images"] == 6 and metrics["phone"]["n_identical"] == 1
    for key in ("psnr_per_image", "psnr_batch_mse", "ssim", "ms_ssim", "uqi"):
        assert metrics["enhanced"][key] is not None and metrics["phone"][key] is not None
    from common.metrics import psnr

    phone = np.stack([to_float(read_image(tmp_path / "test" / "iphone" / f"{i}.png")) for i in range(1, 6)])
    dslr = np.stack([to_float(read_image(tmp_path / "test" / "canon" / f"{i}.png")) for i in range(1, 6)])
    assert metrics["phone"]["psnr_per_image"] == pytest.approx(float(np.mean(psnr(phone, dslr, 1.0))), abs=1e-4)
    table = (out / "metrics.md").read_text()
    assert "| PSNR per image, clipped (challenge), dB |" in table and "training script" in table
    assert (out / "examples.png").stat().st_size > 1000


@pytest.mark.slow
def test_evaluate_authors_iphone_model_on_shared_pairs(dped_sample, tmp_path):
    out = tmp_path / "eval"
    evaluate.main(["--phone", "iphone", "--test-dir", str(dped_sample / "patches"), "--original-checkpoint",
                   str(dped_sample / "pretrained" / "iphone_orig"), "--out", str(out), "--examples", "0"])
    m = json.loads((out / "metrics.json").read_text())
    assert m["enhanced"]["n_images"] == 100
    assert m["enhanced"]["psnr_per_image"] > m["phone"]["psnr_per_image"] + 4.0
    assert m["enhanced"]["psnr_batch_mse"] < m["enhanced"]["psnr_per_image"] - 1.0  # conventions differ
    assert m["enhanced"]["ms_ssim"] > m["phone"]["ms_ssim"] + 0.05


def test_phone_without_resolution_is_refused(tiny_weights, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(enhance.main, [str(tmp_path), "--weights", str(tiny_weights), "--output-dir", str(tmp_path / "o"),
                               "--phone", "sony"])
    assert exit_info.value.code == 2 and "--phone applies with --resolution only" in capsys.readouterr().err
