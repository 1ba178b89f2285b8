"""Outputs appear whole or not at all: a failed write keeps the previous file and leaves no temporary one."""
import numpy as np
import pytest
from matplotlib.figure import Figure

from common import plots
from common.atomic_files import atomic_output, write_text


def test_write_replaces_whole_and_keeps_every_suffix(tmp_path):
    target = tmp_path / "new" / "folder" / "g.weights.h5"
    with atomic_output(target, fsync=True) as tmp:
        assert tmp.parent == target.parent and tmp.name.endswith(".tmp.weights.h5") and tmp != target
        tmp.write_bytes(b"weights")
    assert target.read_bytes() == b"weights"
    write_text(tmp_path / "m.json", "{}")
    write_text(tmp_path / "m.json", '{"a": 1}', fsync=True)
    assert (tmp_path / "m.json").read_text() == '{"a": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "new"]


def test_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("the previous result")
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(target) as tmp:
            tmp.write_text("half a res")
            raise KeyboardInterrupt
    assert target.read_text() == "the previous result"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_a_figure_that_fails_to_save_leaves_nothing(tmp_path, monkeypatch):
    def half_then_fail(self, fname, **kwargs):
        with open(fname, "wb") as f:
            f.write(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", half_then_fail)
    image = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(OSError, match="disk full"):
        plots.image_grid([(image, image, image)], save_to=tmp_path / "examples.png")
    assert list(tmp_path.iterdir()) == []


def test_figures_are_written_in_their_suffix_format(tmp_path):
    image = np.zeros((4, 4, 3), np.uint8)
    plots.image_grid([(image, image, image)], save_to=tmp_path / "examples.png")
    plots.side_by_side(image, image, save_to=tmp_path / "plain")
    assert (tmp_path / "examples.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "plain").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["examples.png", "plain"]
