"""The interpreters the suite runs procclean.py with.

PROCCLEAN_TEST_PYTHONS (space-separated paths) when set; else every CPython 3 that pyenv
provides here; else the interpreter running the tests.
"""
import glob
import os
import sys


def interpreters_under_test():
    listed = os.environ.get("PROCCLEAN_TEST_PYTHONS", "").split()
    if listed:
        return listed
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found = sorted(glob.glob(os.path.join(root, "versions", "3.*", "bin", "python3")),
                   key=lambda p: tuple(int(x) for x in
                                       p.split(os.sep)[-3].split(".")[:2] if x.isdigit()))
    return found or [sys.executable]
