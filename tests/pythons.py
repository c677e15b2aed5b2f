"""The interpreters the suite runs procclean.py with.

PROCCLEAN_TEST_PYTHONS (space-separated paths) when set; else every CPython 3.6+ that pyenv
provides here (oldest first); else the interpreter running the tests.
"""
import glob
import os
import re
import subprocess
import sys


def _version_key(path):
    m = re.search(r"/(\d+)\.(\d+)(?:\.(\d+))?[^/]*/bin/", path)
    return tuple(int(x or 0) for x in m.groups()) if m else (99,)


def interpreters_under_test():
    listed = os.environ.get("PROCCLEAN_TEST_PYTHONS", "").split()
    if listed:
        return listed
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found = sorted(glob.glob(os.path.join(root, "versions", "3.*", "bin", "python3")),
                   key=_version_key)
    good = []
    for path in found:
        try:
            if subprocess.run([path, "-c", "import sys; assert sys.version_info >= (3, 6)"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=30).returncode == 0:
                good.append(path)
        except (OSError, subprocess.SubprocessError):
            pass
    return good or [sys.executable]
