import pytest

from pipelines.core.errors import UserError
from pipelines.core.rundir import RunDir


def test_create_never_overwrites(tmp_path):
    run = RunDir.create(tmp_path, "vision", "r1")
    (run.root / "keep.txt").write_text("precious")
    with pytest.raises(UserError, match="already exists"):
        RunDir.create(tmp_path, "vision", "r1")
    assert (run.root / "keep.txt").read_text() == "precious"


def test_open_checks_domain_and_existence(tmp_path):
    RunDir.create(tmp_path, "vision", "r1")
    assert RunDir.open(tmp_path / "vision" / "r1", "vision").info()["domain"] == "vision"
    with pytest.raises(UserError, match="is a vision run, not speech"):
        RunDir.open(tmp_path / "vision" / "r1", "speech")
    with pytest.raises(UserError, match="not found"):
        RunDir.open(tmp_path / "vision" / "missing", "vision")
    (tmp_path / "plain").mkdir()
    with pytest.raises(UserError, match="not a dlapps run directory"):
        RunDir.open(tmp_path / "plain", "vision")


def test_require_model_explains_unfinished_runs(tmp_path):
    run = RunDir.create(tmp_path, "vision", "r1")
    with pytest.raises(UserError, match="--resume"):
        run.require_model()
