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


def test_default_names_never_collide(tmp_path):
    roots = {RunDir.create(tmp_path, "vision", None).root for _ in range(3)}  # within one second, mostly
    assert len(roots) == 3 and all(root.parent == (tmp_path / "vision").resolve() for root in roots)


def test_runs_dir_is_resolved_and_a_linked_domain_folder_is_followed(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "big-disk").mkdir()
    (tmp_path / "runs" / "vision").symlink_to(tmp_path / "big-disk")  # runs on another disk: a common set-up
    assert RunDir.create(tmp_path / "runs", "vision", "r1").root.resolve() == tmp_path / "big-disk" / "r1"
    assert RunDir.create(tmp_path / "runs" / ".." / "runs", "speech", "r1").root == tmp_path / "runs" / "speech" / "r1"


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "-x", "..", "漢" * 100, "tab\tthere", ""])
def test_run_names_are_one_plain_path_component(tmp_path, name):
    with pytest.raises(UserError, match="--name"):
        RunDir.create(tmp_path, "vision", name)


@pytest.mark.parametrize("name", ["lr=3e-4,bs=64", "baseline", "漢字", "run@2", "v1.2+fix"])
def test_plain_names_of_any_script_are_run_names(tmp_path, name):
    assert RunDir.create(tmp_path, "vision", name).root.name == name
