"""Figures: curves read from a run's history, image grids, full-resolution comparison, exposure histograms."""
import colorsys
import json

import imageio.v3 as iio
import numpy as np
import pytest

from common import plots
from common.errors import DataLayoutError, PhotoEnhanceError


def _write_history(folder, entries, tail=""):
    folder.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(e) + "\n" for e in entries) + tail
    (folder / "history.jsonl").write_text(text)
    return folder


TRAIN = [
    {"step": 1, "g_loss": 30.0, "content": 2.0, "color": 8.0, "texture": -0.7, "tv": 0.01, "d_loss": 0.69,
     "lr": 5e-4, "step_time": 0.2},
    {"step": 2, "g_loss": 25.0, "content": 1.8, "color": 7.0, "tv": 0.008, "d_loss": 0.65},
    {"step": 2, "val_psnr": 18.5, "val_ssim": 0.80},
    {"step": 3, "g_loss": 20.0, "content": 1.5, "color": 6.0, "texture": -0.6, "tv": 0.006, "d_loss": 0.6},
    {"step": 4, "val_psnr": 19.25, "val_ssim": 0.83},
]


def _lines(ax):
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in ax.get_lines()}


def _panels(fig):
    """{panel title: (subfigure title, {label: (x, y)})} of every drawn axes."""
    return {ax.get_title(): (ax.figure.get_suptitle(), _lines(ax))
            for ax in fig.axes if ax.get_lines()}


def test_training_curves_draw_each_loss_term_on_its_own_panel(tmp_path):
    run = _write_history(tmp_path / "run", TRAIN)
    fig = plots.plot_training_curves(run, save_to=tmp_path / "curves.png")
    panels = _panels(fig)
    assert set(panels) == {"g_loss", "content", "color", "texture", "tv", "d_loss"}  # no lr, time or val_*
    assert {title: group for title, (group, _) in panels.items()} == {
        "g_loss": "generator", "content": "generator", "color": "generator", "texture": "generator",
        "tv": "generator", "d_loss": "discriminator"}
    assert [ax.get_title() for ax in fig.axes if ax.get_lines()][:2] == ["g_loss", "content"]  # the total first
    assert panels["g_loss"][1] == {"g_loss": ([1, 2, 3], [30.0, 25.0, 20.0])}
    assert panels["texture"][1] == {"texture": ([1, 3], [-0.7, -0.6])}  # the missing entry is a gap, not a zero
    assert panels["d_loss"][1]["d_loss"][1] == [0.69, 0.65, 0.6]
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_training_curves_group_discriminator_terms(tmp_path):
    history = [{"step": 1, "g_adv": 0.1, "g_l1": 2.0, "d_real": -0.2, "d_fake": 0.1, "gradient_penalty": 0.0,
                "gp": 0.0, "d_accuracy": 0.5}]
    panels = _panels(plots.plot_training_curves(_write_history(tmp_path / "run", history)))
    groups = {title: group for title, (group, _) in panels.items()}
    assert groups == {"g_adv": "generator", "g_l1": "generator", "d_real": "discriminator",
                      "d_fake": "discriminator", "gradient_penalty": "discriminator", "gp": "discriminator",
                      "d_accuracy": "discriminator"}


def test_validation_curves(tmp_path):
    run = _write_history(tmp_path / "run", TRAIN)
    ax_p, ax_s = plots.plot_validation(run).axes[:2]
    assert _lines(ax_p) == {"val_psnr": ([2, 4], [18.5, 19.25])}
    assert _lines(ax_s) == {"val_ssim": ([2, 4], [0.80, 0.83])}


def test_validation_without_entries_draws_a_note(tmp_path):
    run = _write_history(tmp_path / "run", TRAIN[:2])
    ax_p, _ = plots.plot_validation(run).axes[:2]
    assert not ax_p.get_lines()
    assert "no validation" in ax_p.texts[0].get_text()


def test_history_errors_name_the_file(tmp_path):
    with pytest.raises(PhotoEnhanceError, match="history.jsonl: training history not found"):
        plots.plot_training_curves(tmp_path)
    run = _write_history(tmp_path / "cut", TRAIN[:2], tail='{"step": 3, "g_lo')
    assert len(plots.load_history(run)) == 2  # a line cut short by an interrupted run is skipped
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "history.jsonl").write_text('{"step": 1}\nnot json\n{"step": 2}\n')
    with pytest.raises(DataLayoutError, match="line 2"):
        plots.load_history(bad)


def test_image_grid_shape_and_pixels():
    rng = np.random.default_rng(0)
    unit = rng.random((8, 10, 3)).astype(np.float32)
    byte = rng.integers(0, 256, (8, 10, 3), dtype=np.uint8)
    fig = plots.image_grid([[unit, byte, None], [byte, unit, unit]])
    assert len(fig.axes) == 6
    assert [ax.get_title() for ax in fig.axes[:3]] == ["input", "output", "target"]
    assert fig.axes[3].get_title() == ""
    assert fig.get_size_inches() == pytest.approx([9.0, 6.0])
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), np.round(unit * 255).astype(np.uint8))
    np.testing.assert_array_equal(fig.axes[1].images[0].get_array(), byte)
    assert not fig.axes[2].images  # None leaves the cell empty
    with pytest.raises(PhotoEnhanceError, match="row 0 has 2 images but there are 3 titles"):
        plots.image_grid([[unit, unit]])


def test_side_by_side_is_pixel_exact(tmp_path):
    rng = np.random.default_rng(1)
    before = rng.integers(0, 256, (60, 90, 3), dtype=np.uint8)
    after = rng.integers(0, 256, (60, 90, 3), dtype=np.uint8)
    plots.side_by_side(before, after, title_px=20, gap_px=6, save_to=tmp_path / "cmp.png")
    saved = iio.imread(tmp_path / "cmp.png")[..., :3]
    assert saved.shape == (80, 186, 3)
    np.testing.assert_array_equal(saved[20:80, 0:90], before)
    np.testing.assert_array_equal(saved[20:80, 96:186], after)


def test_exposure_statistics_of_known_images():
    gray = np.full((4, 4, 3), 0.5)
    np.testing.assert_allclose(plots.exposure_statistics(gray), [0.5, 0.0, 0.0])
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 255
    np.testing.assert_allclose(plots.exposure_statistics(red), [0.27, 0.0, 1.0])
    half = np.zeros((4, 4, 3))
    half[:2] = 1.0
    np.testing.assert_allclose(plots.exposure_statistics(half), [0.5, 1.0, 0.0])
    image = np.random.default_rng(2).random((5, 6, 3))
    hls_saturation = np.mean([colorsys.rgb_to_hls(*px)[2] for px in image.reshape(-1, 3)])
    assert plots.exposure_statistics(image)[2] == pytest.approx(hls_saturation, abs=1e-12)


def test_histogram_intersection_known_values():
    h = np.array([3.0, 1.0, 0.0, 2.0])
    assert plots.histogram_intersection(h, h) == pytest.approx(1.0)
    assert plots.histogram_intersection(h, 10 * h) == pytest.approx(1.0)  # counts are normalised
    assert plots.histogram_intersection([1, 1, 0, 0], [0, 0, 1, 1]) == 0.0
    assert plots.histogram_intersection([1, 1, 0, 0], [0, 1, 1, 0]) == pytest.approx(0.5)
    with pytest.raises(PhotoEnhanceError, match="bin counts differ"):
        plots.histogram_intersection([1, 1], [1, 1, 1])


def test_exposure_histograms_of_known_datasets(tmp_path):
    gray = np.full((3, 8, 8, 3), 0.5, np.float32)
    bright = np.full((3, 8, 8, 3), 0.9, np.float32)
    mixed = np.concatenate([gray[:1], bright[:2]])
    values = plots.exposure_histogram_values(gray)
    assert values["luminance"][16] == 1.0 and values["luminance"].sum() == pytest.approx(1.0)
    similarity = plots.exposure_similarity({"original": gray, "overexposed": bright, "mixed": mixed})
    assert similarity["original"]["luminance"] == pytest.approx(1.0)
    assert similarity["overexposed"]["luminance"] == 0.0
    assert similarity["mixed"]["luminance"] == pytest.approx(1 / 3)
    assert similarity["overexposed"]["saturation"] == pytest.approx(1.0)  # all gray: saturation 0 in both
    fig = plots.exposure_histograms({"original": gray, "mixed": list(mixed)}, save_to=tmp_path / "h.png")
    assert [ax.get_title() for ax in fig.axes] == ["luminance", "contrast", "saturation"]
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["original", "mixed (33.3%)"]
    assert (tmp_path / "h.png").is_file()
