"""The project's root found upward (issue 21 item 7), as git finds .git."""
import os

import procclean


def test_root_is_the_nearest_folder_with_the_config_or_a_makefile_that_runs_procclean(
        tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    (repo / "backend" / "app").mkdir(parents=True)
    (repo / "procclean.ini").write_text("[procclean]\n")
    (repo / "backend" / "Makefile").write_text("test:\n\tpytest\n")    # not procclean's
    monkeypatch.chdir(str(repo / "backend" / "app"))
    assert procclean.project_root({}) == str(repo)
    monkeypatch.chdir(str(repo))
    assert procclean.project_root({}) is None          # here already
    (repo / "procclean.ini").unlink()
    (repo / "Makefile").write_text("PROCCLEAN ?= python3 tools/procclean.py\n")
    monkeypatch.chdir(str(repo / "backend"))
    assert procclean.project_root({}) == str(repo)


def test_no_higher_than_the_repository_top(tmp_path, monkeypatch):
    (tmp_path / "procclean.ini").write_text("[procclean]\n")    # some other project's
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "backend").mkdir()
    monkeypatch.chdir(str(repo / "backend"))
    assert procclean.project_root({}) is None


def test_named_as_the_user_reached_it(tmp_path, monkeypatch):
    real = tmp_path / "real"
    (real / "backend").mkdir(parents=True)
    (real / "procclean.ini").write_text("[procclean]\n")
    os.symlink(str(real), str(tmp_path / "link"))
    monkeypatch.chdir(str(tmp_path / "link" / "backend"))
    assert procclean.project_root({"PWD": str(tmp_path / "link" / "backend")}) == \
        str(tmp_path / "link")
