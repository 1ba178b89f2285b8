"""common.cli.run_cli: bad input and diverged training end as one line and a distinct exit code."""
import pytest

from common.cli import run_cli
from common.errors import DatasetNotFoundError, TrainingDiverged


@pytest.mark.parametrize("error, code", [(DatasetNotFoundError("dped/sony: not found"), 2),
                                         (TrainingDiverged("step 5: g_loss = nan"), 3)])
def test_errors_become_one_line_and_exit_code(capsys, error, code):
    def main(argv):
        raise error

    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, [])
    assert exit_info.value.code == code
    assert capsys.readouterr().err == f"error: {error}\n"


def test_result_passes_through():
    assert run_cli(lambda argv: {"steps": len(argv)}, ["a", "b"]) == {"steps": 2}
