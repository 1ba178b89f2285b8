"""The Colab notebooks: generated from notebooks/make_notebooks.py, stored clean, and runnable end to end.

The smoke tests execute each notebook with papermill (kernel `python3` of this interpreter's environment,
cwd the repository root) with `SMOKE=True`: offline demo data, a few CPU steps, no downloads.
"""
import ast
import importlib.util
import json
import pathlib
import re
import subprocess
import sys

import nbformat
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
NAMES = ("dped_colab.ipynb", "pix2pix_colab.ipynb")


def _generator():
    spec = importlib.util.spec_from_file_location("make_notebooks", NOTEBOOKS / "make_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _content(notebook):
    return notebook.metadata, [(c.cell_type, c.source, c.metadata) for c in notebook.cells]


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_matches_its_generator(name):
    # Compared by content, not text, so another nbformat version's formatting does not matter.
    committed = nbformat.read(NOTEBOOKS / name, as_version=4)
    generated = nbformat.reads(_generator().render(name), as_version=4)
    assert _content(committed) == _content(generated), (
        f"notebooks/{name} is stale: run `python notebooks/make_notebooks.py` and commit the result")


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_clean_and_parameterised(name):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    assert notebook.cells[0].cell_type == "markdown" and "loss" in notebook.cells[0].source.lower()
    code_cells = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code_cells), "stored with outputs"
    tagged = [c for c in code_cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0] is code_cells[0], "the first code cell must be the parameters cell"
    assert "SMOKE = False" in tagged[0].source
    # papermill can read every parameter (it gives up on lines with a second "=", e.g. in a comment).
    from papermill.translators import PythonTranslator

    assigned = [line.split("=")[0].strip() for line in tagged[0].source.splitlines() if "=" in line]
    assert [p.name for p in PythonTranslator.inspect(tagged[0])] == assigned
    # Every Colab-only module is imported behind a guard.
    for cell in code_cells:
        for line in cell.source.splitlines():
            if "google.colab import" in line:
                assert line.startswith(" "), f"unguarded Colab import: {line!r}"


def _command_flags(notebook):
    """{module: flags} of every `run("-m", module, ...)` call, including flags held in `*_ARGS` lists."""
    def python(line):  # an IPython magic becomes `pass` at its indentation
        return line[:len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith("%") else line

    trees = [ast.parse("\n".join(map(python, c.source.splitlines()))) for c in notebook.cells if c.cell_type == "code"]

    def flags(node):
        return {n.value for n in ast.walk(node)
                if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value.startswith("--")}

    lists = {}
    for node in (n for tree in trees for n in ast.walk(tree) if isinstance(n, ast.Assign)):
        for target in node.targets:
            pairs = [(target, node.value)]
            if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                pairs = list(zip(target.elts, node.value.elts))  # A, B = [...], [...]
            for name, value in pairs:
                if isinstance(name, ast.Name) and name.id.endswith("_ARGS"):
                    lists.setdefault(name.id, set()).update(flags(value))
    commands = {}
    for call in (n for tree in trees for n in ast.walk(tree) if isinstance(n, ast.Call)):
        if getattr(call.func, "id", None) == "run" and len(call.args) > 1 and \
                getattr(call.args[0], "value", None) == "-m":
            used = flags(call) | {f for n in ast.walk(call) if isinstance(n, ast.Name) for f in lists.get(n.id, ())}
            commands.setdefault(call.args[1].value, set()).update(used)
    return commands


@pytest.mark.parametrize("name", NAMES)
def test_notebook_commands_use_real_flags(name):
    commands = _command_flags(nbformat.read(NOTEBOOKS / name, as_version=4))
    assert {"train", "evaluate", "export"} <= {module.split(".")[1] for module in commands}
    for module, flags in commands.items():
        usage = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO, capture_output=True, text=True,
                               check=True).stdout
        known = set(re.findall(r"--[a-z][a-z0-9-]*", usage))
        assert flags <= known, f"{name}: `python -m {module}` has no {sorted(flags - known)}"


def _execute(name, tmp_path, **parameters):
    import papermill

    output = tmp_path / name
    papermill.execute_notebook(
        str(NOTEBOOKS / name), str(output), parameters=dict(SMOKE=True, WORK_DIR=str(tmp_path / "work"),
                                                             **parameters),
        kernel_name="python3", cwd=str(REPO), progress_bar=False, execution_timeout=240)
    return nbformat.read(output, as_version=4)


def _text_outputs(notebook):
    return "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)


@pytest.mark.slow
@pytest.mark.notebook
def test_dped_notebook_runs_end_to_end(tmp_path):
    pretrained = REPO.parent / "shared" / "dped" / "pretrained"
    notebook = _execute("dped_colab.ipynb", tmp_path,
                        PRETRAINED_DIR=str(pretrained) if (pretrained / "iphone_orig.index").is_file() else "")
    work = tmp_path / "work"
    figures = {p.stem for p in (work / "figures").glob("*.png")}
    assert {"training_curves", "validation_curves", "full_resolution"} <= figures
    assert (work / "eval" / "trained_here" / "examples.png").is_file()
    assert (work / "export" / "dped_iphone.zip").is_file()
    assert json.loads((work / "eval" / "trained_here" / "metrics.json").read_text())
    text = _text_outputs(notebook)
    assert "measured step time on CPU" in text
    if (pretrained / "iphone_orig.index").is_file():
        assert any(name.startswith("authors_") for name in figures)
        assert (work / "eval" / "authors" / "metrics.json").is_file()


@pytest.mark.slow
@pytest.mark.notebook
def test_pix2pix_notebook_runs_end_to_end(tmp_path):
    notebook = _execute("pix2pix_colab.ipynb", tmp_path, TASK="overexposure")
    work = tmp_path / "work"
    figures = {p.stem for p in (work / "figures").glob("*.png")}
    assert {"training_curves", "validation_curves", "exposure_histograms", "full_resolution"} <= figures
    assert (work / "eval" / "overexposure" / "examples.png").is_file()
    assert (work / "export" / "pix2pix_overexposure.zip").is_file()
    assert "measured step time on CPU" in _text_outputs(notebook)
