"""Generate the Colab notebooks from the cell sources below, stored without outputs.

    python notebooks/make_notebooks.py        # rewrites notebooks/dped_colab.ipynb and pix2pix_colab.ipynb

Edit the notebooks here (reviewable as code) and commit both this script and the generated files;
`tests/test_notebooks.py` checks that they are in sync and executes them with papermill.
"""
import copy
import pathlib
import textwrap

import nbformat

HERE = pathlib.Path(__file__).resolve().parent


def md(text):
    return nbformat.v4.new_markdown_cell(textwrap.dedent(text).strip())


def code(text, tags=()):
    cell = nbformat.v4.new_code_cell(textwrap.dedent(text).strip())
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


# ----------------------------------------------------------------------------------------------------------
# Cells shared by both notebooks
# ----------------------------------------------------------------------------------------------------------
SETUP_MD = md("""
    ## 1. Set-up
    The next cell finds the repository (or, in Colab, clones `REPO_URL` and installs its requirements),
    and defines `run(...)`, which runs one of the project's commands (`python -m ...`) from the repository
    root, streams its output here and stops the notebook if the command fails. Cells that only make sense in
    Colab (Google Drive, uploads, downloads) check `IN_COLAB` and print what to do instead in plain Jupyter.
""")

def setup_code(smoke_extra=""):
    """The set-up cell; `smoke_extra` adds notebook-specific smoke overrides (a line of Python)."""
    return code(SETUP_SOURCE.replace("SMOKE_EXTRA", smoke_extra))


SETUP_SOURCE = '''
    import codecs
    import json
    import os
    import pathlib
    import shlex
    import shutil
    import subprocess
    import sys
    import time

    from IPython.display import Image, Markdown, display

    try:
        import google.colab  # noqa: F401  (present only inside Colab)
        IN_COLAB = True
    except ImportError:
        IN_COLAB = False

    if SMOKE:
        # CI smoke run: the offline demo data, a handful of steps on the CPU, no downloads or uploads.
        DATA_SOURCE, DEVICE = "demo", "cpu"
        ITERATIONS, BATCH_SIZE, EVAL_EVERY, LOG_EVERY = SMOKE_ITERATIONS, 2, SMOKE_ITERATIONS, 1
        SMOKE_EXTRA
    if DEVICE == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before TensorFlow starts, here and in every command below
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


    def find_repo():
        """The checkout this notebook belongs to: the current folder or one above it."""
        for folder in (pathlib.Path.cwd(), *pathlib.Path.cwd().parents):
            if (folder / "common" / "plots.py").is_file() and (folder / "docs" / "ARCHITECTURE.md").is_file():
                return folder
        return None


    REPO = find_repo()
    if REPO is None and IN_COLAB:
        REPO = pathlib.Path("/content/photo-enhance")
        if not (REPO / "common" / "plots.py").is_file():  # not cloned yet in this Colab session
            if not REPO_URL:
                raise SystemExit("Set REPO_URL in the parameters cell to this project's git URL (or upload the "
                                 "repository to /content/photo-enhance and re-run).")
            subprocess.run(["git", "clone", "--depth", "1", REPO_URL, str(REPO)], check=True)
    if REPO is None:
        raise SystemExit("Start Jupyter inside the repository (e.g. in its notebooks/ folder) so the notebook "
                         "can find the project's code.")
    if IN_COLAB:
        # Colab already ships TensorFlow/Keras within the project's ranges; pip only adds what is missing.
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", str(REPO / "requirements.txt")],
                       check=True)
    os.chdir(REPO)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))

    from common import plots  # noqa: E402
    from common.images import list_images, read_image  # noqa: E402

    WORK = pathlib.Path(WORK_DIR).resolve()
    FIGURES = WORK / "figures"
    FIGURES.mkdir(parents=True, exist_ok=True)
    ENV = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")


    def run(*args, history=None):
        """Run `python <args>` in the repository root, streaming its output; raise if it fails.

        With `history` (a run's history.jsonl), returns `(seconds, step)` for each training line the
        command appends, timed as it arrives: the step-time measurement below uses them.
        """
        command = [sys.executable, *map(str, args)]
        print("$ python", " ".join(shlex.quote(c) for c in command[1:]), flush=True)
        known = len(history.read_text().splitlines()) if history is not None and history.is_file() else 0
        marks = []
        process = subprocess.Popen(command, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        while chunk := process.stdout.read1(4096):
            sys.stdout.write(decoder.decode(chunk))  # keeps tqdm's carriage returns: one updating bar
            sys.stdout.flush()
            if history is not None and history.is_file():
                lines = history.read_text().splitlines()
                for line in lines[known:]:
                    try:
                        entry = json.loads(line)
                    except json.JSONDecodeError:  # a line still being written: read it next time
                        break
                    known += 1
                    if any(not key.startswith("val_") for key in entry if key != "step"):
                        marks.append((time.perf_counter(), entry["step"]))
        if process.wait() != 0:
            raise RuntimeError(f"command failed (exit code {process.returncode}): {' '.join(command[1:])}")
        return marks


    def show(figure, name, full_size=False):
        """Save a figure under WORK/figures and display it (full_size: one image pixel per screen pixel)."""
        path = FIGURES / f"{name}.png"
        figure.savefig(path, dpi=figure.dpi)
        display(Image(filename=str(path), unconfined=full_size))


    print(f"repository: {REPO}\\nin Colab: {IN_COLAB}\\nwork folder: {WORK}")
'''

GPU_MD = md("""
    ## 2. GPU check: mixed precision and XLA
    With a GPU whose tensor cores support float16 (compute capability 7.0 or newer, e.g. Colab's T4),
    `MIXED_PRECISION = "auto"` trains in mixed float16: the layers compute in float16 while the weights stay
    float32. The generator and the discriminator each get their own Keras 3 `LossScaleOptimizer`, which
    multiplies that network's loss before differentiation and divides the gradients afterwards, so small
    float16 gradients do not underflow; each scale adapts on its own, since the two losses have very
    different magnitudes. `JIT_COMPILE = "auto"` compiles the train step with XLA on a GPU (fused kernels,
    fewer launches) and leaves it off on the CPU, where compiling costs more than it saves.
""")

GPU_CODE = code('''
    import tensorflow as tf

    GPUS = tf.config.list_physical_devices("GPU")
    if GPUS:
        details = tf.config.experimental.get_device_details(GPUS[0])
        capability = details.get("compute_capability", (0, 0))
        print(f"GPU: {details.get('device_name', GPUS[0].name)}, compute capability {capability}")
    else:
        capability = (0, 0)
        print("no GPU: training runs on the CPU (in Colab: Runtime > Change runtime type > T4 GPU)")
    if MIXED_PRECISION == "auto":
        USE_MIXED = "on" if GPUS and capability >= (7, 0) else "off"
    else:
        USE_MIXED = MIXED_PRECISION
    USE_XLA = bool(GPUS) if JIT_COMPILE == "auto" else bool(JIT_COMPILE)
    print(f"mixed precision: {USE_MIXED}; XLA: {'on' if USE_XLA else 'off'}")
''')

TENSORBOARD_MD = md("""
    ## TensorBoard
    Start TensorBoard before training to watch the losses and the validation images while the next cell
    runs (in Colab and in Jupyter; skipped in the smoke run, which must not leave a server behind).
""")


def tensorboard_code(run_dir_expr):
    return code(f'''
        import importlib.util

        RUN_DIR = WORK / {run_dir_expr}
        if SMOKE:
            print("smoke run: TensorBoard not started")
        elif importlib.util.find_spec("tensorboard") is None:
            print("TensorBoard is not installed (pip install tensorboard); the curves below are drawn after training")
        else:
            %load_ext tensorboard
            %tensorboard --logdir "$RUN_DIR"
    ''')


STEP_TIME_CODE = code('''
    # Measured step time: the run's own measurement (summary.json "step_time_s") when it records one, else
    # the median time per step between consecutive logged steps as their lines arrived in history.jsonl.
    # Both leave out start-up and compilation, and the median is robust to the few intervals that include
    # validation or checkpointing.
    summary = json.loads((RUN_DIR / "summary.json").read_text()) if (RUN_DIR / "summary.json").is_file() else {}
    rates = sorted((t2 - t1) / (s2 - s1) for (t1, s1), (t2, s2) in zip(MARKS, MARKS[1:]) if s2 > s1)
    STEP_TIME = summary.get("step_time_s") or (rates[len(rates) // 2] if rates else None)
    device = "GPU" if GPUS else "CPU"
    if STEP_TIME:
        print(f"measured step time on {device}: {1000 * STEP_TIME:.1f} ms/step (batch {BATCH_SIZE}, "
              f"mixed precision {USE_MIXED}, XLA {'on' if USE_XLA else 'off'})")
    else:
        print(f"too few logged steps to time (LOG_EVERY = {LOG_EVERY}); the whole command took {TRAIN_SECONDS:.0f} s")
''')

CURVES_CODE = code('''
    show(plots.plot_training_curves(RUN_DIR), "training_curves")
    show(plots.plot_validation(RUN_DIR), "validation_curves")
''')


def metrics_table_code(names_expr):
    return code(f'''
        # The metrics table that the evaluate command writes (metrics.md, beside metrics.json) for each model.
        for name in {names_expr}:
            table = EVAL / name / "metrics.md"
            if table.is_file():
                display(Markdown(table.read_text()))
    ''')


def export_code(module):
    return code(f'''
        EXPORT_DIR = WORK / "export" / RUN_DIR.name  # TF Serving layout: each export adds a version folder
        shutil.rmtree(EXPORT_DIR, ignore_errors=True)
        run("-m", "{module}.export", *EXPORT_ARGS, "--weights", BEST, "--out", EXPORT_DIR)
        archive = shutil.make_archive(str(EXPORT_DIR), "zip", root_dir=EXPORT_DIR)
        print(f"SavedModel: {{EXPORT_DIR}}\\nzip: {{archive}} ({{os.path.getsize(archive) / 2**20:.1f}} MiB)")
        print((EXPORT_DIR / "1" / "model_card.md").read_text())
        loaded = tf.saved_model.load(str(EXPORT_DIR / "1"))
        print("signatures:", sorted(loaded.signatures))
        if IN_COLAB and not SMOKE:
            from google.colab import files

            files.download(archive)
        else:
            print("Outside Colab: copy the zip above (it is not downloaded automatically).")
    ''')


# ----------------------------------------------------------------------------------------------------------
# DPED
# ----------------------------------------------------------------------------------------------------------
DPED = [
    md("""
        # DPED: DSLR-quality photos from a phone camera (Ignatov et al., ICCV 2017)

        A small fully-convolutional network (one 9x9 convolution, four residual blocks of 3x3 convolutions
        with instance normalisation, two more 3x3 convolutions and a 9x9 output convolution; about 400K
        parameters) learns to turn a phone photo into what a DSLR would have taken of the same scene. It is
        trained on aligned 100x100 patch pairs (e.g. iPhone 3GS vs Canon 70D) from the DPED dataset, and,
        being fully convolutional, then enhances photos of any size.

        Because the phone and DSLR patches are never perfectly aligned, a pixel-wise loss would blur the
        result, so the training objective is a sum of four terms that each look at one aspect:
        - **colour** (weight 0.5): both images are blurred with a wide Gaussian before they are compared, so
          only brightness, contrast and colour must agree, not the exact position of edges;
        - **texture** (weight 1): an adversarial term; a discriminator sees *grayscale* patches and guesses
          whether each is the enhanced or the DSLR one, and the generator is rewarded for fooling it. Without
          colour to go on, the discriminator can only judge texture and sharpness;
        - **content** (weight 10): the distance between VGG-19 `relu5_4` features of the enhanced and the
          DSLR photo. Deep features describe what is in the image rather than exact pixel values, so this
          keeps the objects and structure of the scene while tolerating small shifts;
        - **total variation** (weight 2000): penalises differences between neighbouring pixels, which keeps
          the generator from adding high-frequency noise.

        The weights are those of the authors' code (which produced their published models); the paper's
        own values are the preset `dped.train --loss-preset paper`. This notebook first enhances your photos with the authors'
        pretrained models (no training needed), then trains, evaluates and exports a model of its own.
    """),
    md("""
        ## Parameters
        `SMOKE = True` is the CI setting: offline demo data, a few steps on the CPU, no downloads. For real
        training in Colab choose a GPU runtime and leave `SMOKE = False`.

        **Data.** `DATA_SOURCE = "demo"` builds a small DPED-layout dataset from scikit-image's sample photos
        as one fixed phone camera would render them; training on it fine-tunes the authors' model of `PHONE`
        when it is available (a few hundred steps then beat the input), else starts from scratch (the pipeline
        runs end to end, but the result is not a real enhancer). For the real dataset, download
        DPED from the authors' project page (`http://people.ee.ethz.ch/~ihnatova/`), then either
        - `DATA_SOURCE = "drive"`: upload it to Google Drive, preferably as one zip of the `dped` folder (reading
          160K small files from Drive is very slow; the zip is unpacked to the Colab disk), and set
          `DRIVE_PATH` to its place under `/content/drive`, e.g. `MyDrive/dped.zip`; or
        - `DATA_SOURCE = "local"`: set `DATA_DIR` to the folder that holds `iphone/`, `sony/`, `blackberry/`.

        **Your own phone.** `DATA_SOURCE = "build"` makes a DPED-style dataset from your own photos: put the
        phone photos in one Google Drive folder and the DSLR photos of the same scenes in another (same file
        names, or cameras whose clocks agree to within 2 s), set `PHONE_PHOTOS` and `DSLR_PHOTOS` to their
        places under `/content/drive` and `PHONE` to a name for your phone. `python -m datasets.build_dped`
        aligns each pair and keeps the 100x100 patches that correlate above 0.9 with their DSLR twin.

        Either way the layout is `<phone>/training_data/{<phone>,canon}/<i>.jpg` and
        `<phone>/test_data/patches/{<phone>,canon}/<i>.jpg`.
    """),
    code('''
        SMOKE = False              # CI smoke run: demo data, CPU, SMOKE_ITERATIONS steps, no downloads
        SMOKE_ITERATIONS = 4
        PHONE = "iphone"           # iphone | sony | blackberry; for DATA_SOURCE "build" a name for your phone
        DATA_SOURCE = "demo"       # demo | drive | local | build (your own phone + DSLR photos)
        DRIVE_PATH = "MyDrive/dped.zip"  # under /content/drive: the dped folder, or a zip of it
        DATA_DIR = ""              # for DATA_SOURCE "local": the folder holding iphone/, sony/, blackberry/
        PHONE_PHOTOS = "MyDrive/phone_photos"  # for DATA_SOURCE "build": your phone photos (under /content/drive)
        DSLR_PHOTOS = "MyDrive/dslr_photos"    # for DATA_SOURCE "build": DSLR photos of the same scenes
        ITERATIONS = 20000         # the authors' schedule
        BATCH_SIZE = 50
        EVAL_EVERY = 1000
        LOG_EVERY = 100            # losses to history.jsonl / TensorBoard every N steps
        SEED = 42
        DEVICE = "auto"            # auto (GPU when present) | cpu
        MIXED_PRECISION = "auto"   # auto (on with a float16-capable GPU) | on | off
        JIT_COMPILE = "auto"       # auto (XLA on a GPU) | True | False
        VGG_WEIGHTS = ""           # VGG-19 notop .h5 for the content loss (not used by the demo); empty: cache or download
        PRETRAINED_DIR = ""        # folder with the authors' <phone>_orig.* files; "" downloads them
        ALLOW_DOWNLOADS = True     # fetch the authors' checkpoints (Keras' cache) when PRETRAINED_DIR is empty; False: no downloads
        PHOTOS_DIR = ""            # your photos to enhance; empty: an upload in Colab, else the demo photos
        MAX_PHOTOS = 4
        RESOLUTION = ""            # "" keeps each photo's size; orig | high | medium | small | tiny (authors' test)
        WORK_DIR = "runs/notebook_dped"
        REPO_URL = ""              # Colab only: git URL of this project, cloned when not run from a checkout
    ''', tags=["parameters"]),
    SETUP_MD,
    setup_code("ALLOW_DOWNLOADS, MAX_PHOTOS = False, 1"),
    GPU_MD,
    GPU_CODE,
    md("""
        ## 3. Enhance photos with the authors' pretrained models (no training)
        The authors published their trained generators as TF1 checkpoints (`models_orig/` in the
        `aiff22/DPED` GitHub repository). `dped.enhance --original-checkpoint` reads them directly; large
        photos are processed in overlapping tiles so they fit in memory.
    """),
    code('''
        ORIGINAL = None
        if PRETRAINED_DIR:
            ORIGINAL = pathlib.Path(PRETRAINED_DIR).resolve() / f"{PHONE}_orig"
            if not ORIGINAL.with_suffix(".index").is_file():
                raise FileNotFoundError(f"{ORIGINAL}.index not found: PRETRAINED_DIR must hold {PHONE}_orig.index "
                                        f"and {PHONE}_orig.data-00000-of-00001")
        elif ALLOW_DOWNLOADS:
            from common.pretrained import PretrainedUnavailable, pretrained_checkpoint

            try:
                ORIGINAL = pretrained_checkpoint(PHONE)  # into Keras' cache, hash-checked, once
            except PretrainedUnavailable as error:
                print(f"{error}; the authors' model is skipped")
        if not ALLOW_DOWNLOADS:
            ENV["PHOTOENHANCE_OFFLINE"] = "1"  # and the commands below never download either
        print(f"authors' checkpoint: {ORIGINAL or 'not available (offline or smoke run)'}")
    '''),
    code('''
        # Photos to enhance: PHOTOS_DIR, else an upload (Colab), else scikit-image's sample photos.
        PHOTOS = WORK / "photos"
        if PHOTOS_DIR:
            PHOTOS = pathlib.Path(PHOTOS_DIR).resolve()
        elif IN_COLAB and not SMOKE:
            from google.colab import files

            PHOTOS.mkdir(parents=True, exist_ok=True)
            for name, data in files.upload().items():
                (PHOTOS / name).write_bytes(data)
        if not PHOTOS.is_dir() or not list_images(PHOTOS):
            from common.demo_data import demo_photos
            from common.images import write_image

            for i, photo in enumerate(demo_photos()[:MAX_PHOTOS]):
                write_image(PHOTOS / f"demo_{i}.png", photo)
        PHOTO_FILES = list_images(PHOTOS)[:MAX_PHOTOS]
        print(f"{len(PHOTO_FILES)} photo(s) from {PHOTOS}")
    '''),
    code('''
        RESOLUTION_ARGS = ["--resolution", RESOLUTION, "--phone", PHONE] if RESOLUTION else []
        if ORIGINAL is None:
            print("skipped: the authors' checkpoint is not available")
        else:
            AUTHORS_OUT = WORK / "enhanced_authors"
            run("-m", "dped.enhance", "--original-checkpoint", ORIGINAL, *PHOTO_FILES,
                "--output-dir", AUTHORS_OUT, *RESOLUTION_ARGS)
            for photo in PHOTO_FILES[:2]:
                before = read_image(photo)
                after = read_image(AUTHORS_OUT / f"{photo.stem}.png")
                if before.shape != after.shape:  # --resolution resized the input: compare like with like
                    from dped.enhance import prepare_resolution

                    before = prepare_resolution(before, RESOLUTION, PHONE)
                show(plots.side_by_side(before, after, titles=("phone photo", "authors' DPED model")),
                     f"authors_{photo.stem}", full_size=True)
    '''),
    md("""
        ## 4. Data
        See the parameters cell for where the data can come from. With `DATA_SOURCE = "build"` the first
        cell below makes the dataset from your own phone and DSLR photos; the training that follows uses it.
    """),
    code('''
        # DATA_SOURCE "build": pair, align and cut your phone + DSLR photos into a DPED-style dataset on the
        # Colab disk (reading many small files from Drive is slow); re-running skips the photos already done.
        # The smoke run builds one from generated pairs (three sample photos as the DSLR shots, warped and
        # degraded copies as the phone's) and trains two steps on it; its main run below uses the demo data.
        OWN_DATA = None
        if DATA_SOURCE == "build" or SMOKE:
            if SMOKE:
                import skimage.data
                from datasets.build_dped import write_synthetic_pairs

                own_photos = write_synthetic_pairs(WORK / "own_photos", [skimage.data.chelsea(), skimage.data.coffee(),
                                                                          skimage.data.astronaut()])
            elif IN_COLAB:
                from google.colab import drive

                drive.mount("/content/drive")
                own_photos = [pathlib.Path("/content/drive") / p for p in (PHONE_PHOTOS, DSLR_PHOTOS)]
            else:
                own_photos = [pathlib.Path(p).resolve() for p in (PHONE_PHOTOS, DSLR_PHOTOS)]
            OWN_DATA = WORK / "own_dataset"
            run("-m", "datasets.build_dped", "--phone-dir", own_photos[0], "--dslr-dir", own_photos[1],
                "--out", OWN_DATA, "--phone", PHONE)
            report = json.loads((OWN_DATA / PHONE / "build_report.json").read_text())
            print(json.dumps(report["totals"], indent=1))
            shown = next(p for p in report["photos"] if p["status"] == "ok")
            display(Markdown(f"kept (green) and rejected patches of `{pathlib.Path(shown['phone']).name}`"),
                    Image(filename=shown["preview"]))
            if SMOKE:
                run("-m", "dped.train", "--data-dir", OWN_DATA, "--phone", PHONE, "--iterations", 2, "--batch-size", 2,
                    "--patch-size", 40, "--eval-every", 2, "--content-weight", 0, "--no-progress",
                    "--out", WORK / "own_smoke_run")
    '''),
    code('''
        if DATA_SOURCE == "demo":
            from common.demo_data import build_demo_dped
            from dped.config import DEMO_DATASET

            DATA = WORK / "demo_dped"
            build_demo_dped(DATA, phone=PHONE, seed=SEED, **DEMO_DATASET)  # the dataset `dped.train --demo` uses
        elif DATA_SOURCE == "drive":
            if not IN_COLAB:
                raise SystemExit('DATA_SOURCE = "drive" works in Colab only; use "local" with DATA_DIR here.')
            from google.colab import drive

            drive.mount("/content/drive")
            source = pathlib.Path("/content/drive") / DRIVE_PATH
            if source.suffix == ".zip":
                DATA = pathlib.Path("/content/dped_local")
                if not DATA.is_dir():
                    print(f"unpacking {source} to {DATA} (once per Colab session)")
                    shutil.unpack_archive(source, DATA)
                inner = DATA / "dped"
                DATA = inner if inner.is_dir() else DATA
            else:
                DATA = source
        elif DATA_SOURCE == "local":
            DATA = pathlib.Path(DATA_DIR).resolve()
        elif DATA_SOURCE == "build":
            DATA = OWN_DATA
        else:
            raise ValueError(f"DATA_SOURCE must be demo, drive, local or build, not {DATA_SOURCE!r}")
        TRAIN_DIR = DATA / PHONE / "training_data"
        TEST_DIR = DATA / PHONE / "test_data" / "patches"
        for folder in (TRAIN_DIR / PHONE, TRAIN_DIR / "canon", TEST_DIR / PHONE, TEST_DIR / "canon"):
            if not folder.is_dir():
                raise FileNotFoundError(f"{folder} not found: expected the DPED layout described above under {DATA}")
        # --demo: demo-sized defaults, fine-tuning the authors' checkpoint found above (if any), colour and
        # texture terms only (no VGG-19 content term, so VGG_WEIGHTS is not used).
        DATA_ARGS = (["--demo", "--data-dir", DATA, *(["--init-from", ORIGINAL] if ORIGINAL else [])]
                     if DATA_SOURCE == "demo" else ["--data-dir", DATA])
        print(f"data: {DATA}: {len(list_images(TRAIN_DIR / PHONE))} training pairs, "
              f"{len(list_images(TEST_DIR / PHONE))} test pairs")
    '''),
    TENSORBOARD_MD,
    tensorboard_code('f"dped_{PHONE}"'),
    md("""
        ## 5. Train
        One generator step then one discriminator step per iteration, on separate random batches of
        100x100 patch pairs; validation PSNR/SSIM every `EVAL_EVERY` steps keeps the best generator.
        Re-running the cell resumes from the last checkpoint in `RUN_DIR`.
    """),
    code('''
        start = time.perf_counter()
        MARKS = run("-m", "dped.train", "--phone", PHONE, *DATA_ARGS, "--iterations", ITERATIONS,
                    "--batch-size", BATCH_SIZE, "--eval-every", EVAL_EVERY, "--log-every", LOG_EVERY,
                    "--out", RUN_DIR, "--mixed-precision", USE_MIXED, "--seed", SEED,
                    *(["--jit-compile"] if USE_XLA else []),
                    *(["--vgg-weights", VGG_WEIGHTS] if VGG_WEIGHTS and DATA_SOURCE != "demo" else []),
                    history=RUN_DIR / "history.jsonl")
        TRAIN_SECONDS = time.perf_counter() - start
        BEST = RUN_DIR / "best_generator.keras"
        if not BEST.is_file():
            BEST = RUN_DIR / "last_generator.keras"
    '''),
    STEP_TIME_CODE,
    md("## 6. Training curves"),
    CURVES_CODE,
    md("""
        ## 7. Evaluate
        PSNR and SSIM on the test patches, in the PIRM-2018 challenge convention (per image on the clipped
        output, then averaged), for the model trained here and, when available, the authors' model.
    """),
    code('''
        EVAL = WORK / "eval"
        run("-m", "dped.evaluate", "--phone", PHONE, "--weights", BEST, "--test-dir", TEST_DIR,
            "--out", EVAL / "trained_here")
        if ORIGINAL is not None:
            run("-m", "dped.evaluate", "--phone", PHONE, "--original-checkpoint", ORIGINAL,
                "--test-dir", TEST_DIR, "--out", EVAL / "authors")
    '''),
    metrics_table_code('("trained_here", "authors")'),
    md("## 8. Before / after / target"),
    code('''
        # Test patches: phone | enhanced | DSLR, as drawn by the evaluate command (common.plots.image_grid).
        for name in ("trained_here", "authors"):
            if (EVAL / name / "examples.png").is_file():
                display(Markdown(f"**{name.replace('_', ' ')}**"), Image(filename=str(EVAL / name / "examples.png")))
    '''),
    md("""
        ## 9. Full-resolution comparison
        The phone photo and the enhanced one side by side, one image pixel per screen pixel (scroll to
        inspect details; the PNG is saved under `WORK_DIR/figures`).
    """),
    code('''
        OURS_OUT = WORK / "enhanced_trained_here"
        run("-m", "dped.enhance", "--weights", BEST, PHOTO_FILES[0], "--output-dir", OURS_OUT, *RESOLUTION_ARGS)
        before = read_image(PHOTO_FILES[0])
        if RESOLUTION:
            from dped.enhance import prepare_resolution

            before = prepare_resolution(before, RESOLUTION, PHONE)
        show(plots.side_by_side(before, read_image(OURS_OUT / f"{PHOTO_FILES[0].stem}.png"),
                                titles=("phone photo", "enhanced (trained here)")), "full_resolution", full_size=True)
    '''),
    md("""
        ## 10. Export and download
        A SavedModel that takes uint8 photos of any size (`serving_default`) or float32 in [0, 1], for
        TensorFlow Serving, TFLite conversion or `dped.enhance --saved-model`.
    """),
    code('EXPORT_ARGS = []'),
    export_code("dped"),
]

# ----------------------------------------------------------------------------------------------------------
# pix2pix
# ----------------------------------------------------------------------------------------------------------
PIX2PIX = [
    md("""
        # pix2pix for photo enhancement: phone->DSLR, deblurring, LDR->HDR, overexposure correction

        pix2pix (Isola et al. 2017) is a conditional GAN: the generator sees the input photo and produces the
        enhanced one; the discriminator sees the input *together with* either the real target or the
        generator's output and must tell them apart.
        - The **generator** is a U-Net: an encoder halves the resolution step by step down to a 1x1
          bottleneck, a decoder grows it back, and skip connections hand each decoder level the encoder's
          features of the same size, so fine detail does not have to squeeze through the bottleneck.
        - The **discriminator** is a PatchGAN: a small convolutional network that scores every 70x70
          neighbourhood of the pair as real or fake. It therefore judges local texture and sharpness, which is
          exactly what a pixel loss gets wrong.
        - The **adversarial loss** pushes the output towards what the discriminator accepts as real (sharp,
          plausible detail); the **L1 loss** (weight 100) ties the output to the target pixel by pixel, which
          fixes the low-frequency content: colours, brightness, layout. Together they give outputs that are
          both faithful and crisp.

        One notebook serves four tasks (chosen in the parameters cell), each a preset of `pix2pix.tasks`:
        - `phone2dslr`: DPED phone/DSLR pairs resized to 64x64, a shallower U-Net, Wasserstein critic;
        - `deblur`: DSLR photos blurred with a Gaussian (sigma 1), L1 plus a VGG perceptual loss;
        - `ldr2hdr`: ReLU output so HDR values may exceed 1, instance normalisation;
        - `overexposure`: overexposure simulated in linear light, least-squares GAN, spectral normalisation and
          noise injection, L1 (50) plus a perceptual loss over five VGG-19 layers (100).
    """),
    md("""
        ## Parameters
        `SMOKE = True` is the CI setting: offline demo data, a few steps on the CPU, no downloads.
        For real training pick a GPU runtime in Colab and point the data at your photos:
        `DATA_SOURCE = "drive"` (Colab: a folder or zip under `/content/drive`, e.g. `MyDrive/photos.zip`) or
        `"local"` (`DATA_DIR`). What the folder must hold depends on the task; `python -m pix2pix.train --help`
        describes each task's layout, and `"demo"` builds a small dataset of the right layout offline.
    """),
    code('''
        SMOKE = False              # CI smoke run: demo data, CPU, SMOKE_ITERATIONS steps, no downloads
        SMOKE_ITERATIONS = 4
        TASK = "deblur"            # phone2dslr | deblur | ldr2hdr | overexposure
        DATA_SOURCE = "demo"       # demo | drive | local
        DRIVE_PATH = "MyDrive/photos.zip"  # under /content/drive: a data folder, or a zip of it
        DATA_DIR = ""              # for DATA_SOURCE "local": the task's data folder
        ITERATIONS = 20000
        BATCH_SIZE = 1             # pix2pix's own setting; the task presets document theirs
        EVAL_EVERY = 1000
        LOG_EVERY = 100            # losses to history.jsonl / TensorBoard every N steps
        SEED = 42
        DEVICE = "auto"            # auto (GPU when present) | cpu
        MIXED_PRECISION = "auto"   # auto (on with a float16-capable GPU) | on | off
        JIT_COMPILE = "auto"       # auto (XLA on a GPU) | True | False
        VGG_WEIGHTS = ""           # VGG-19 notop .h5 for the perceptual loss; empty: Keras' cache or a download
        WORK_DIR = "runs/notebook_pix2pix"
        REPO_URL = ""              # Colab only: git URL of this project, cloned when not run from a checkout
    ''', tags=["parameters"]),
    SETUP_MD,
    setup_code(),
    GPU_MD,
    GPU_CODE,
    md("## 3. Data"),
    code('''
        if DATA_SOURCE == "demo":
            DATA = WORK / f"demo_{TASK}"  # built by the train command, offline, from scikit-image's photos
        elif DATA_SOURCE == "drive":
            if not IN_COLAB:
                raise SystemExit('DATA_SOURCE = "drive" works in Colab only; use "local" with DATA_DIR here.')
            from google.colab import drive

            drive.mount("/content/drive")
            source = pathlib.Path("/content/drive") / DRIVE_PATH
            DATA = source
            if source.suffix == ".zip":
                DATA = pathlib.Path("/content") / source.stem
                if not DATA.is_dir():
                    print(f"unpacking {source} to {DATA} (once per Colab session)")
                    shutil.unpack_archive(source, DATA)
        elif DATA_SOURCE == "local":
            DATA = pathlib.Path(DATA_DIR).resolve()
        else:
            raise ValueError(f"DATA_SOURCE must be demo, drive or local, not {DATA_SOURCE!r}")
        if DATA_SOURCE == "demo":
            DATA_ARGS, EVAL_DATA_ARGS = ["--demo", "--data-dir", DATA], ["--demo", "--demo-dir", DATA]
        else:
            DATA_ARGS = EVAL_DATA_ARGS = ["--data-dir", DATA]
        print(f"data: {DATA}")
    '''),
    TENSORBOARD_MD,
    tensorboard_code('f"pix2pix_{TASK}"'),
    md("""
        ## 4. Train
        Each iteration updates the discriminator, then the generator, on the same batch. Re-running the
        cell resumes from the last checkpoint in `RUN_DIR`.
    """),
    code('''
        start = time.perf_counter()
        MARKS = run("-m", "pix2pix.train", "--task", TASK, *DATA_ARGS, "--iterations", ITERATIONS,
                    "--batch-size", BATCH_SIZE, "--eval-every", EVAL_EVERY, "--log-every", LOG_EVERY,
                    "--out", RUN_DIR, "--mixed-precision", USE_MIXED, "--seed", SEED,
                    *(["--jit-compile"] if USE_XLA else []), *(["--vgg-weights", VGG_WEIGHTS] if VGG_WEIGHTS else []),
                    "--no-export", history=RUN_DIR / "history.jsonl")  # section 9 exports the best generator
        TRAIN_SECONDS = time.perf_counter() - start
        BEST = RUN_DIR / "best_generator.keras"
        if not BEST.is_file():
            BEST = RUN_DIR / "last_generator.keras"
    '''),
    STEP_TIME_CODE,
    md("## 5. Training curves"),
    CURVES_CODE,
    md("""
        ## 6. Evaluate
        PSNR, SSIM and UQI against the targets of the task's test pairs, for the generator's output, for the
        degraded input itself and for a classical baseline (e.g. deconvolution for deblurring).
    """),
    code('''
        EVAL = WORK / "eval"
        # --seed: the training run's seed, which chose the train/val/test split of a flat photo folder.
        run("-m", "pix2pix.evaluate", "--task", TASK, *EVAL_DATA_ARGS, "--seed", SEED, "--weights", BEST,
            "--out", EVAL / TASK)
    '''),
    metrics_table_code("(TASK,)"),
    md("""
        ## 7. Before / after / target
        Test inputs, the generator's outputs, the classical baseline and the targets; for the overexposure
        task also seed 003's
        luminance / contrast / saturation histograms, whose intersection with the targets' measures how well
        the exposure was restored (100% = identical distributions).
    """),
    code('''
        # input | output | classical baseline | target, as drawn by the evaluate command (common.plots.image_grid).
        display(Image(filename=str(EVAL / TASK / "examples.png")))
        PAIRS = EVAL / TASK / "pairs"
        if TASK == "overexposure":
            show(plots.exposure_histograms({"target": PAIRS / "target", "input": PAIRS / "input",
                                            "output": PAIRS / "output"}), "exposure_histograms")
    '''),
    md("## 8. Full-resolution comparison"),
    code('''
        first = list_images(PAIRS / "input")[0]
        show(plots.side_by_side(read_image(first), read_image(PAIRS / "output" / first.name),
                                titles=("input", "output")), "full_resolution", full_size=True)
    '''),
    md("""
        ## 9. Export and download
        A SavedModel that takes uint8 photos of any size (padded internally to what the U-Net needs).
    """),
    code('EXPORT_ARGS = ["--task", TASK]'),
    export_code("pix2pix"),
]


def build(cells):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = copy.deepcopy(cells)  # the shared cells get per-notebook ids
    notebook.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
        "accelerator": "GPU",
        "colab": {"provenance": [], "gpuType": "T4"},
    }
    nbformat.validate(notebook)
    return notebook


NOTEBOOKS = {"dped_colab.ipynb": DPED, "pix2pix_colab.ipynb": PIX2PIX}


def render(name):
    """The notebook `name` as the exact text this script writes (stable ids, so diffs stay small)."""
    notebook = build(NOTEBOOKS[name])
    for index, cell in enumerate(notebook.cells):
        cell.id = f"cell-{index:02d}"
    return nbformat.writes(notebook) + "\n"


def main():
    for name in NOTEBOOKS:
        (HERE / name).write_text(render(name))
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
