"""Shared test setup: makes tests/ importable (`from nslib import Namespace, Proc`) and
provides the namespace fixtures. Kill-by-name tests must use the `ns` fixture (or
nslib.Namespace): nothing in this suite signals a process outside a throw-away PID namespace."""
import os
import sys

import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

import nslib  # noqa: E402
from nslib import Namespace  # noqa: E402

# Repos modelled on real projects (init's fixtures, test data) carry tests and conftest.py
# files of their own, as such projects do: data here, never ours to run.
collect_ignore = ["fixtures", "data"]


def pytest_configure(config):
    """procclean keeps the marks of environments it read in XDG_RUNTIME_DIR (else
    /tmp/procclean-UID): every procclean this suite runs keeps them in a folder of the
    run's own, gone with it, never in the user's."""
    import shutil
    import tempfile
    folder = tempfile.mkdtemp(prefix="procclean-test-run-")
    os.environ["XDG_RUNTIME_DIR"] = folder
    config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


def require_namespace():
    """Skip the calling test unless PID namespaces work here."""
    ok, reason = Namespace.available()
    if not ok:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def namespace_available():
    return Namespace.available()


@pytest.fixture
def ns(tmp_path, namespace_available):
    """A fresh PID+net namespace whose default working folder is tmp_path."""
    ok, reason = namespace_available
    if not ok:
        pytest.skip(reason)
    with Namespace(cwd=tmp_path) as n:
        yield n


@pytest.fixture(scope="session")
def standin_path():
    try:
        return nslib.standin_binary()
    except nslib.NamespaceError as e:
        pytest.skip(str(e))


@pytest.fixture
def test_user():
    """The `procclean-test` user (created if missing: this changes the host's /etc/passwd).
    Skips unless running as real root."""
    if not nslib.can_switch_users():
        pytest.skip("needs real root to run processes as another user")
    try:
        return nslib.ensure_user(nslib.TEST_USER)
    except nslib.NamespaceError as e:
        pytest.skip(str(e))


# The three tiers, by folder: `pytest -m unit` (seconds, no namespace), `-m integration`
# (stand-ins in PID namespaces), `-m e2e` (real uvicorn and Vite).
TIERS = {"unit": "recorded ps/lsof/ss output, a fake system and clock; no process is started",
         "integration": "real stand-in processes inside throw-away PID namespaces",
         "e2e": "the real stacks (uvicorn, Vite) inside throw-away PID namespaces"}


def pytest_configure(config):
    for tier, what in TIERS.items():
        config.addinivalue_line("markers", "%s: %s" % (tier, what))


def pytest_collection_modifyitems(config, items):
    for item in items:
        parts = os.path.relpath(str(item.fspath), TESTS).split(os.sep)
        if parts[0] in TIERS:
            item.add_marker(getattr(pytest.mark, parts[0]))
