import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


import pytest  # noqa: E402


@pytest.fixture
def in_a(tmp_path, monkeypatch):
    """The project folder A (a real folder: the fakes' default cwd), with another
    checkout B beside it; both have a backend/ folder. (A test file may define its own.)"""
    a, b = tmp_path / "A", tmp_path / "B"
    for folder in (a, b):
        os.makedirs(str(folder / "backend"))
    monkeypatch.chdir(str(a))
    return os.path.realpath(str(a)), os.path.realpath(str(b))
