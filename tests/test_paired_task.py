"""The `paired` task (any aligned input/target photo folders), its demo, and evaluate on the task interface."""
import json

import numpy as np
import pytest
import tensorflow as tf

from common.cli import run_cli
from common.errors import DataLayoutError, PhotoEnhanceError
from common.images import write_image
from pix2pix import evaluate as evaluate_cli
from pix2pix.models import build_unet
from pix2pix.tasks import TASKS, get_task
from pix2pix.tasks.paired import build_demo_paired


def _photo(rng, h, w):
    base = rng.random((max(1, h // 8), max(1, w // 8), 3)).astype(np.float32)
    return tf.image.resize(base, (h, w), method="bicubic").numpy().clip(0, 1)


def _write_pairs(root, split, n, rng, size=(40, 56), prefix=None):
    for i in range(n):
        target = _photo(rng, *size)
        name = f"{prefix or split}{i}"
        write_image(root / split / "target" / f"{name}.png", target)
        write_image(root / split / "input" / f"{name}.png", target * 0.5)  # a known, aligned degradation


@pytest.fixture()
def paired_dir(tmp_path):
    rng = np.random.default_rng(0)
    _write_pairs(tmp_path, "train", 10, rng)
    _write_pairs(tmp_path, "test", 3, rng, size=(36, 44))
    return tmp_path


def _open(data_dir, **overrides):
    task = get_task("paired")
    settings = task.settings(overrides)
    return task, settings, task.open(settings, data_dir)


def _stems(pairs):
    return {p[0].rsplit("/", 1)[-1].split(".")[0] for p in pairs}


def test_paired_splits_are_disjoint_and_seeded(paired_dir):
    _, _, data = _open(paired_dir, image_size=32)
    names = {k: _stems(v) for k, v in data.splits.items()}
    assert [len(names[k]) for k in ("train", "val", "test")] == [9, 1, 3]  # val: 10 % of train, by photo
    assert not names["train"] & names["val"] and not names["test"] & (names["train"] | names["val"])
    assert names["train"] | names["val"] == {f"train{i}" for i in range(10)}
    assert data.splits == _open(paired_dir, image_size=32)[2].splits
    assert _open(paired_dir, image_size=32, seed=1)[2].splits["val"] != data.splits["val"]
    assert data.describe().endswith("train 9 pairs, val 1 pairs, test 3 pairs")


def test_paired_val_folder_is_used_when_present(paired_dir):
    _write_pairs(paired_dir, "val", 2, np.random.default_rng(1), prefix="v")
    _, _, data = _open(paired_dir)
    assert _stems(data.splits["val"]) == {"v0", "v1"} and len(data.splits["train"]) == 10


def test_paired_batches_are_aligned_crops_and_step_keyed(paired_dir):
    _, _, data = _open(paired_dir, image_size=32)
    batches = list(data.train_batches(2, seed=4).take(3))
    x, y = batches[0]
    assert x.shape == y.shape == (2, 32, 32, 3)
    np.testing.assert_allclose(x.numpy(), np.round(y.numpy() * 0.5 * 255) / 255, atol=1.5 / 255)
    resumed = next(iter(data.train_batches(2, seed=4, start_step=2)))
    np.testing.assert_array_equal(batches[2][0].numpy(), resumed[0].numpy())


def test_paired_evaluation_pairs_whole_or_cropped(paired_dir):
    task, settings, data = _open(paired_dir, image_size=32)
    pairs = data.pairs("test")
    assert [p[2]["name"] for p in pairs] == ["test0", "test1", "test2"]
    assert all(x.shape == y.shape == (36, 44, 3) for x, y, _ in pairs)
    np.testing.assert_array_equal(task.baseline(settings, pairs[0][0], pairs[0][2]), pairs[0][0])
    cropped = data.pairs("test", image_size=20, limit=2)
    assert len(cropped) == 2 and cropped[0][0].shape == (20, 20, 3)
    np.testing.assert_array_equal(cropped[0][1], pairs[0][1][8:28, 12:32])
    assert {p[0].shape for p in data.validation_pairs()} == {(32, 32, 3)}
    _, _, wide = _open(paired_dir, image_size=32, val_crop=24)
    assert {p[0].shape for p in wide.validation_pairs()} == {(24, 24, 3)}
    with pytest.raises(PhotoEnhanceError, match="--val-crop must be at least 1, got 0"):
        _open(paired_dir, val_crop=0)


def test_paired_refuses_bad_pairs_by_name(paired_dir):
    (paired_dir / "test" / "input" / "test1.png").rename(paired_dir / "test" / "input" / "lonely.png")
    with pytest.raises(DataLayoutError, match="lonely.png"):
        _open(paired_dir)
    (paired_dir / "test" / "input" / "lonely.png").rename(paired_dir / "test" / "input" / "test1.png")
    write_image(paired_dir / "test" / "target" / "test2.png", np.zeros((30, 44, 3), np.uint8))
    with pytest.raises(DataLayoutError, match=r"test2.png is 36x44 but its partner .*test2.png is 30x44"):
        _open(paired_dir)
    write_image(paired_dir / "test" / "target" / "test2.png", np.zeros((36, 44, 3), np.uint8))
    (paired_dir / "test" / "target" / "test0.png").write_bytes(b"not an image")
    with pytest.raises(DataLayoutError, match="test0.png: not a readable image"):
        _open(paired_dir)


def test_paired_training_refuses_small_photos_and_missing_train(paired_dir, tmp_path):
    _, _, data = _open(paired_dir, image_size=48)
    with pytest.raises(DataLayoutError, match="smaller than the 48x48 crop"):
        data.train_batches(2, seed=0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataLayoutError, match="no train/ folder"):
        _open(tmp_path / "empty")


def test_task_options_are_refused_for_tasks_that_do_not_read_them():
    paired = get_task("paired")
    with pytest.raises(PhotoEnhanceError, match="--tau does not apply to task paired.*overexposure"):
        paired.refuse_options({"tau": 0.7, "val_crop": 32})
    paired.refuse_options({"val_crop": 32, "lr": 1e-3})  # its own option and a general setting pass
    with pytest.raises(PhotoEnhanceError, match="^--contrast-stretch does not apply to task paired"):
        paired.refuse_options({"postprocess": "contrast_stretch"}, flags={"postprocess": "--contrast-stretch"})
    assert set(TASKS) == {"phone2dslr", "deblur", "ldr2hdr", "overexposure", "paired"}
    with pytest.raises(PhotoEnhanceError, match="choose from"):
        get_task("colorize")


def test_demo_pairs_are_degraded_bundled_photos_split_by_photo(tmp_path):
    root = build_demo_paired(tmp_path)
    assert build_demo_paired(tmp_path) == root  # reused, not rebuilt
    _, _, data = _open(root, image_size=64)
    names = {k: _stems(v) for k, v in data.splits.items()}
    assert names["test"] == {"chelsea", "coffee"}
    assert not names["test"] & (names["train"] | names["val"]) and not names["train"] & names["val"]
    x, y, _ = data.pairs("test", image_size=128)[0]
    error = float(np.mean((x - y) ** 2))
    assert 1e-4 < error < 0.02  # degraded (blur, tone, colour cast, noise, JPEG) but aligned
    assert not list(tmp_path.glob(".*building*"))


def test_evaluate_scores_a_generator_on_paired_data(paired_dir, tmp_path):
    weights = tmp_path / "g.keras"
    build_unet(depth=3, base_filters=4, seed=0).save(weights)
    out = tmp_path / "eval"
    report = evaluate_cli.main(["--task", "paired", "--data-dir", str(paired_dir), "--weights", str(weights),
                                "--out", str(out), "--crop", "32", "--no-progress"])
    results = report["results"]
    assert set(results) == {"model", "input", "baseline"} and report["n_pairs"] == 3
    assert results["input"] == {**results["baseline"]}  # the paired baseline is the input itself
    assert json.loads((out / "metrics.json").read_text())["results"] == results
    assert sorted(p.name for p in (out / "pairs" / "output").iterdir()) == ["test0.png", "test1.png", "test2.png"]
    assert not list(out.rglob(".*.tmp*"))  # no temporary file left
    with pytest.raises(SystemExit) as exc:
        run_cli(evaluate_cli.main, ["--task", "paired", "--data-dir", str(paired_dir), "--weights", str(weights),
                                    "--out", str(out), "--tau", "0.7"])
    assert exc.value.code == 2
