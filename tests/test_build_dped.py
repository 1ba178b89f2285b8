"""The DPED dataset builder on real photos with known warps.

"DSLR" photos are the shared full-size DPED photos and scikit-image's bundled photos; their "phone"
twins are the same photos through a known homography (rotation up to 3 degrees, shift up to 40 px, scale
0.9-1.1) and `common.degradations.phone_degrade` (blur, tone, colour cast, noise, JPEG).
"""
import datetime
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import skimage.data
from PIL import Image
from skimage.feature import match_template
from skimage.transform import resize

from common.cli import run_cli
from common.data import dped_folders, dped_full_size_dir, paired_files
from common.images import read_image, write_image
from datasets import alignment, build_dped

REPO = pathlib.Path(__file__).resolve().parents[1]
SMALL = (360, 640)


def _downscaled(image, short_side):
    scale = short_side / min(image.shape[:2])
    shape = (round(image.shape[0] * scale), round(image.shape[1] * scale))
    return np.round(resize(image, shape, anti_aliasing=True) * 255).astype(np.uint8)


def _demo_dslr_photos():
    """The four photographs of scenes among scikit-image's bundled images, short side 300 px."""
    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(),
              skimage.data.stereo_motorcycle()[0]]
    return [_downscaled(p, 300) for p in photos]


def _check_geometry(dslr, seed):
    rng = np.random.default_rng(seed)
    true = alignment.known_warp(dslr.shape, rng)
    phone = alignment.phone_twin(dslr, true, seed)
    aligned = build_dped.align_pair(phone, dslr, build_dped.Settings())
    assert aligned.alignment.inliers >= 25 and aligned.alignment.refined_windows >= 8
    assert alignment.geometry_rms(aligned.alignment.matrix, true, aligned.box) < 0.5


# One photo of each kind in the fast suite; the others (about 4 s each) in the slow one.
MORE = [pytest.param(i, marks=pytest.mark.slow) for i in (1, 2, 3)]


@pytest.mark.parametrize("index", [0, *MORE])
def test_geometry_of_shared_photos_within_half_a_pixel(shared_dir, index):
    dslr = _downscaled(read_image(shared_dir / "dped" / "full_size" / f"{index}.png"), SMALL[0])
    _check_geometry(dslr, seed=index)


@pytest.mark.parametrize("index", [0, *MORE])
def test_geometry_of_demo_photos_within_half_a_pixel(index):
    _check_geometry(_demo_dslr_photos()[index], seed=10 + index)


def test_a_dslr_photo_of_twice_the_resolution_is_shrunk_to_the_phone_scale():
    dslr = _downscaled(skimage.data.astronaut(), 512)
    true = alignment.resize_back((512, 512), (256, 256)) @ alignment.known_warp((256, 256), np.random.default_rng(5))
    phone = alignment.phone_twin(dslr, true, seed=5, shape=(256, 256))
    aligned = build_dped.align_pair(phone, dslr, build_dped.Settings())
    assert aligned.dslr.shape[0] < 300 and 0.95 < aligned.alignment.scale((128, 128)) < 1.05
    in_file_pixels = aligned.to_original @ aligned.alignment.matrix
    assert alignment.geometry_rms(in_file_pixels, true, aligned.box) < 2 * 0.5  # 0.5 phone px = 1 DSLR px


def test_local_search_finds_a_known_shift_and_rotation():
    dslr = _demo_dslr_photos()[0]
    gray = alignment.gray(dslr)
    corner, size = (100, 90), 64
    rotated = alignment.rotation_about((corner[0] + (size - 1) / 2, corner[1] + (size - 1) / 2), 1.0)
    truth = rotated @ alignment.translation(corner[0] + 3, corner[1] - 2)
    phone_patch = alignment.sample_patch(gray, truth, (size, size)).astype(np.float32)
    ncc, dx, dy, angle = alignment.search_patch(phone_patch, gray, np.eye(3), corner, max_shift=4,
                                                angles=(-1.0, -0.5, 0.0, 0.5, 1.0))
    assert (dx, dy, angle) == (3, -2, 1.0) and ncc > 0.999


def test_ncc_map_equals_match_template_on_a_real_photo():
    gray = alignment.gray(_demo_dslr_photos()[1])
    window, template = gray[40:148, 60:168], gray[45:145, 62:162].copy()
    template[:50] = 0.5  # a template that matches no window exactly
    expected = match_template(window, template)
    np.testing.assert_allclose(alignment.ncc_map(window, template), expected, rtol=0, atol=1e-5)  # float32 there
    assert alignment.ncc_map(window, np.full((100, 100), 0.3)).tolist() == np.zeros((9, 9)).tolist()


def test_too_few_inliers_and_wild_scale_are_refused():
    a, b = _demo_dslr_photos()[:2]
    with pytest.raises(alignment.AlignmentError) as unrelated:
        build_dped.align_pair(a, b, build_dped.Settings())
    assert unrelated.value.code == "too_few_inliers"
    zoomed = alignment.phone_twin(a, alignment.translation(80, 80) @ np.diag([0.35, 0.35, 1.0]), seed=1)
    with pytest.raises(alignment.AlignmentError) as scale:
        build_dped.align_pair(zoomed, a, build_dped.Settings(min_inliers=10))
    assert scale.value.code == "scale_mismatch" and "zoom ratio 0.35" in str(scale.value)


def test_photos_pair_by_exif_capture_time(tmp_path):
    start = datetime.datetime(2024, 5, 1, 12, 0, 0)

    def shot(folder, name, seconds):
        exif = Image.Exif()
        exif[build_dped.DATETIME] = (start + datetime.timedelta(seconds=seconds)).strftime("%Y:%m:%d %H:%M:%S")
        path = tmp_path / folder / name
        path.parent.mkdir(exist_ok=True)
        Image.new("RGB", (8, 8)).save(path, exif=exif)
        return path

    phones = [shot("p", "IMG_1.jpg", 0), shot("p", "IMG_2.jpg", 10), shot("p", "IMG_3.jpg", 20)]
    dslrs = [shot("d", "DSC_7.jpg", 1), shot("d", "DSC_8.jpg", 21), shot("d", "DSC_9.jpg", 100)]
    pairs, skipped = build_dped.pair_photos(phones, dslrs, by="auto", tolerance=2.0)
    assert [(p.phone.name, p.dslr.name, p.paired_by) for p in pairs] == [
        ("IMG_1.jpg", "DSC_7.jpg", "time"), ("IMG_3.jpg", "DSC_8.jpg", "time")]
    assert sorted(pathlib.Path(s["file"]).name for s in skipped) == ["DSC_9.jpg", "IMG_2.jpg"]
    assert build_dped.pair_photos(phones, dslrs, by="name")[0] == []


def test_photos_are_loaded_upright_from_exif_orientation(tmp_path):
    image = np.zeros((20, 30, 3), np.uint8)
    image[:5, :5] = 255  # a white top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(image).save(tmp_path / "a.png", exif=exif)
    upright = build_dped.load_photo(tmp_path / "a.png")
    assert upright.shape == (30, 20, 3) and upright[:5, -5:].min() == 255


def test_split_is_by_photo_seeded_and_stable():
    keys = [f"IMG_{i}" for i in range(20)]
    split = build_dped.split_photos(keys, 0.2, seed=3)
    assert sum(v == "test" for v in split.values()) == 4
    assert split == build_dped.split_photos(list(reversed(keys)), 0.2, seed=3)
    assert split != build_dped.split_photos(keys, 0.2, seed=4)
    grown = build_dped.split_photos(keys + ["IMG_20"], 0.2, seed=3)
    assert sum(grown[k] != split[k] for k in keys) <= 1


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A dataset built from four demo photo pairs plus an unreadable photo and an unpaired one."""
    root = tmp_path_factory.mktemp("build")
    build_dped.write_synthetic_pairs(root, _demo_dslr_photos(), seed=0)
    (root / "phone" / "9.jpg").write_bytes(b"not a photo")
    write_image(root / "dslr" / "9.png", _demo_dslr_photos()[0])
    write_image(root / "phone" / "lonely.jpg", _demo_dslr_photos()[1])
    argv = ["--phone-dir", str(root / "phone"), "--dslr-dir", str(root / "dslr"), "--out", str(root / "out"),
            "--phone", "myphone", "--patch-size", "64", "--test-fraction", "0.25", "--no-progress"]
    report = build_dped.main(argv)
    return root, argv, report


def test_build_writes_the_dped_layout_that_the_readers_take(built):
    root, _, report = built
    data = root / "out"
    train_phone, train_canon = paired_files(*dped_folders(data, "myphone", "train"))
    test_phone, _ = paired_files(*dped_folders(data, "myphone", "test"))
    totals = report["totals"]
    assert len(train_phone) == totals["train_patches"] > 0 and len(test_phone) == totals["test_patches"] > 0
    assert [pathlib.Path(f).name for f in train_phone] == [f"{i}.jpg" for i in range(len(train_phone))]
    assert read_image(train_phone[0]).shape == read_image(train_canon[0]).shape == (64, 64, 3)
    full = sorted(dped_full_size_dir(data, "myphone").iterdir())
    assert len(full) == totals["test_photos"] == 1
    test_photo = next(p for p in report["photos"] if p.get("split") == "test")
    assert read_image(full[0]).shape == read_image(test_photo["phone"]).shape
    on_disk = json.loads((data / "myphone" / "build_report.json").read_text())
    assert on_disk["totals"] == totals
    for photo in (p for p in on_disk["photos"] if p["status"] == "ok"):
        statuses = [status for _, _, status, _ in photo["patches"]]
        assert statuses.count("kept") == photo["kept"] and len(statuses) - photo["kept"] == sum(
            photo["rejected"].values())
        preview = read_image(photo["preview"])  # photos this small are drawn at full size
        for x, y, status, _ in photo["patches"]:
            r, g, b = preview[y + 32, x].astype(int)  # the middle of the outline's left edge
            assert (g > r + 60) == (status == "kept"), (photo["key"], x, y, status, (r, g, b))


def test_every_kept_patch_correlates_above_the_threshold(built):
    root, _, _ = built
    for split in ("train", "test"):
        for phone_file, canon_file in zip(*paired_files(*dped_folders(root / "out", "myphone", split))):
            a = alignment.gray(read_image(phone_file)).ravel()
            b = alignment.gray(read_image(canon_file)).ravel()
            assert np.corrcoef(a, b)[0, 1] > 0.9, phone_file


def test_no_photo_is_in_both_splits_and_file_numbers_add_up(built):
    _, _, report = built
    used = [p for p in report["photos"] if p["status"] == "ok"]
    assert len(used) == 4 and len({p["key"] for p in used}) == 4
    for name in ("train", "test"):
        ranges = sorted(p["files"] for p in used if p["split"] == name)
        assert ranges[0][0] == 0 and all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
        assert ranges[-1][1] == report["totals"][f"{name}_patches"]
    assert {p["split"] for p in used} == {"train", "test"}


def test_bad_inputs_are_skipped_and_counted(built):
    _, _, report = built
    assert report["totals"]["skipped"] == {"unreadable": 1, "unpaired": 1}
    unreadable = next(p for p in report["photos"] if p["key"] == "9")
    assert unreadable["status"] == "skipped" and "9.jpg" in unreadable["reason"]
    assert pathlib.Path(report["skipped_inputs"][0]["file"]).name == "lonely.jpg"


def test_second_run_changes_nothing_and_an_interrupted_one_resumes(built):
    root, argv, _ = built
    data = root / "out" / "myphone"
    files = sorted(p for p in (data / "training_data").rglob("*.jpg"))
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files}
    again = build_dped.main(argv)
    assert not again["published"] and all(p["cached"] for p in again["photos"])
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files} == before
    stale = data / ".build" / "2"
    for f in stale.rglob("*"):
        if f.is_file():
            f.unlink()
    resumed = build_dped.main(argv)
    assert [p["key"] for p in resumed["photos"] if not p["cached"]] == ["2"]
    assert {p: p.read_bytes() for p in files} == {p: b for p, (b, _) in before.items()}


def test_inputs_are_never_overwritten(built, tmp_path, capsys):
    root, argv, _ = built
    inside = argv[:5] + [str(root / "phone" / "sub")] + argv[6:]
    with pytest.raises(SystemExit) as exit_:
        run_cli(build_dped.main, inside)
    assert exit_.value.code == 2 and "overlap" in capsys.readouterr().err
    missing = ["--phone-dir", str(root / "nope")] + argv[2:]
    with pytest.raises(SystemExit):
        run_cli(build_dped.main, missing)
    assert "folder not found" in capsys.readouterr().err
    foreign = tmp_path / "theirs" / "myphone" / "training_data" / "keep.txt"
    foreign.parent.mkdir(parents=True)
    foreign.write_text("someone else's dataset")
    with pytest.raises(SystemExit):
        run_cli(build_dped.main, argv[:5] + [str(tmp_path / "theirs")] + argv[6:])
    assert "was not written by this builder" in capsys.readouterr().err
    assert foreign.read_text() == "someone else's dataset"


def test_a_single_usable_pair_is_refused_with_its_report(built, tmp_path, capsys):
    root, _, _ = built
    for side, name in (("phone", "0.jpg"), ("dslr", "0.png")):
        (tmp_path / side).mkdir()
        (tmp_path / side / name).write_bytes((root / side / name).read_bytes())
    argv = ["--phone-dir", str(tmp_path / "phone"), "--dslr-dir", str(tmp_path / "dslr"),
            "--out", str(tmp_path / "out"), "--phone", "p", "--patch-size", "64", "--no-progress"]
    with pytest.raises(SystemExit) as exit_:
        run_cli(build_dped.main, argv)
    assert exit_.value.code == 2 and "only 1 photo pair(s) gave patches" in capsys.readouterr().err
    report = json.loads((tmp_path / "out" / "p" / "build_report.json").read_text())
    assert report["photos"][0]["status"] == "ok" and not (tmp_path / "out" / "p" / "training_data").exists()


@pytest.mark.slow
def test_the_built_dataset_trains_with_dped_train(built, tmp_path):
    root, _, _ = built
    command = [sys.executable, "-m", "dped.train", "--data-dir", str(root / "out"), "--phone", "myphone",
               "--iterations", "2", "--batch-size", "2", "--patch-size", "40", "--eval-every", "2",
               "--content-weight", "0", "--no-progress", "--out", str(tmp_path / "run")]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(REPO))
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["steps"] == 2


def test_photos_are_colour_managed_to_srgb(tmp_path, swapped_rg_profile):
    """A phone's wide-gamut profile is converted, as `enhance` converts it: otherwise training would see
    colours the enhancer never shows the model."""
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 40, 90
    Image.fromarray(rgb).save(tmp_path / "tagged.png", icc_profile=swapped_rg_profile)
    loaded = build_dped.load_photo(tmp_path / "tagged.png")
    assert np.abs(loaded.astype(int) - rgb[..., [1, 0, 2]]).max() <= 2  # the profile's red is sRGB green
