"""Integration tier: procclean.py run as a subprocess inside throw-away PID namespaces.

Interpreters: PROCCLEAN_TEST_PYTHONS (space-separated paths), else every
~/.pyenv/versions/3.*/bin/python3, else the interpreter running pytest. Tests that take a
`python` argument run once per interpreter."""
import os
import re



from pythons import interpreters_under_test  # noqa: E402  (tests/ is on sys.path)

PYTHONS = interpreters_under_test()


def _label(path):
    m = re.search(r"/(\d+\.\d+)(?:\.\d+)?[^/]*/bin/", path)
    return "py" + m.group(1) if m else os.path.basename(path)


# `python_edge`: the oldest and the newest only, for tests where the interpreter matters less.
PYTHONS_EDGE = PYTHONS if len(PYTHONS) <= 2 else [PYTHONS[0], PYTHONS[-1]]


def _params(paths):
    labels = [_label(p) for p in paths]
    if len(set(labels)) != len(labels):
        labels = ["%s-%d" % (l, i) for i, l in enumerate(labels)]
    return paths, labels


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "edge_pythons: run the test's `python` with the oldest and the newest "
        "interpreter only (slow tests whose subject is not the interpreter)")


def pytest_generate_tests(metafunc):
    edge = metafunc.definition.get_closest_marker("edge_pythons") is not None
    for name, paths in (("python", PYTHONS_EDGE if edge else PYTHONS),
                        ("python_edge", PYTHONS_EDGE)):
        if name in metafunc.fixturenames:
            values, ids = _params(paths)
            metafunc.parametrize(name, values, ids=ids)
