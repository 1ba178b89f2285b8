"""The authors' checkpoints on request: found in a seeded Keras cache without network, pinned hashes
checked, and a one-line error naming the URL and the folder when offline and not cached."""
import dataclasses
import shutil

import numpy as np
import pytest

from common import pretrained
from common.downloads import OFFLINE_ENV
from common.pretrained import PRETRAINED, PretrainedUnavailable, pretrained_checkpoint

CLOSED_PORT = "http://127.0.0.1:9/"


@pytest.fixture
def offline(monkeypatch):
    """Every upstream URL points at a closed local port, so any download attempt fails fast."""
    for name, entry in PRETRAINED.items():
        monkeypatch.setitem(PRETRAINED, name, dataclasses.replace(entry, base_url=CLOSED_PORT))


def seed_cache(keras_home, source, name):
    models = keras_home / "models"
    models.mkdir(parents=True, exist_ok=True)
    for file_name, _ in PRETRAINED[name].files():
        shutil.copy(source / file_name, models / file_name)
    return models


@pytest.mark.parametrize("name", sorted(PRETRAINED))
def test_seeded_cache_is_used_offline_and_loads(name, tmp_path, monkeypatch, offline, dped_sample):
    from dped.convert_original import load_original_checkpoint

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    models = seed_cache(tmp_path, dped_sample / "pretrained", name)
    prefix = pretrained_checkpoint(name)
    assert prefix == models / PRETRAINED[name].prefix
    if name in ("iphone", "pirm_resnet_8_32"):  # loading all four is slow; two cover both architectures
        direct = load_original_checkpoint(dped_sample / "pretrained" / PRETRAINED[name].prefix)
        cached = load_original_checkpoint(prefix)
        x = np.random.default_rng(0).random((1, 24, 20, 3), dtype=np.float32)
        np.testing.assert_array_equal(cached(x).numpy(), direct(x).numpy())


def test_offline_and_not_cached_is_one_line_naming_url_and_folder(tmp_path, monkeypatch, offline):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty"))
    with pytest.raises(PretrainedUnavailable) as info:
        pretrained_checkpoint("sony")
    message = str(info.value)
    assert "\n" not in message
    assert CLOSED_PORT + "sony_orig.index" in message
    assert str(tmp_path / "empty" / "models") in message
    assert "sony_orig.data-00000-of-00001" in message


def test_corrupted_cached_file_is_not_trusted(tmp_path, monkeypatch, offline, dped_sample):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    models = seed_cache(tmp_path, dped_sample / "pretrained", "iphone")
    data = models / "iphone_orig.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:-10])  # truncated: the pinned sha256 no longer matches
    with pytest.raises(PretrainedUnavailable, match="iphone_orig.data-00000-of-00001"):
        pretrained_checkpoint("iphone")


def test_unknown_name_lists_the_choices():
    with pytest.raises(PretrainedUnavailable, match="pirm_resnet_8_32"):
        pretrained_checkpoint("nokia")


def test_cache_dir_follows_keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert pretrained.keras_cache_dir() == tmp_path


def test_offline_env_never_downloads(tmp_path, monkeypatch, dped_sample):
    def no_download(*args, **kwargs):
        raise AssertionError("must not download")

    monkeypatch.setenv(OFFLINE_ENV, "1")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(pretrained.keras.utils, "get_file", no_download)
    with pytest.raises(PretrainedUnavailable) as info:
        pretrained_checkpoint("iphone")
    assert OFFLINE_ENV in str(info.value) and str(tmp_path / "models") in str(info.value)
    models = seed_cache(tmp_path, dped_sample / "pretrained", "iphone")
    monkeypatch.undo()
    monkeypatch.setenv(OFFLINE_ENV, "1")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert pretrained_checkpoint("iphone") == models / "iphone_orig"
    (models / "iphone_orig.index").write_bytes(b"corrupt")
    with pytest.raises(PretrainedUnavailable, match="fails its sha256"):
        pretrained_checkpoint("iphone")


def _demo_settings(argv):
    from common import config
    from dped.recipe import DPEDRecipe

    recipe = DPEDRecipe()
    args = recipe.parser().parse_args(argv)
    return recipe.settings(config.given(args, recipe.settings_class), args)


def test_demo_fine_tunes_the_authors_model_from_the_cache(tmp_path, monkeypatch, offline, dped_sample):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    seed_cache(tmp_path, dped_sample / "pretrained", "sony")
    settings = _demo_settings(["--demo", "--phone", "sony"])
    assert settings.init_from == "sony" and settings.tv_weight == 0.0 and settings.iterations == 200
    assert settings.content_weight == 0.0  # online too: no VGG-19 download, the measured result
    assert _demo_settings(["--demo", "--phone", "sony", "--init-from", "mine.keras"]).init_from == "mine.keras"
    assert _demo_settings(["--phone", "sony"]).init_from is None  # only the demo picks a starting point


def test_demo_without_the_authors_model_says_it_starts_from_scratch(tmp_path, monkeypatch, offline, capsys):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert _demo_settings(["--demo", "--phone", "sony"]).init_from is None
    assert "trains from scratch" in capsys.readouterr().err
    monkeypatch.setattr("dped.recipe.pretrained_checkpoint", lambda name: pytest.fail("no fetch needed"))
    for argv, reason in ((["--width", "8"], "--width/--blocks"), (["--phone", "nokia"], "no model for --phone")):
        assert _demo_settings(["--demo", *argv]).init_from is None
        assert reason in capsys.readouterr().err
