"""Every supported interpreter compiles and runs procclean.py; it imports only the stdlib."""
import ast
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pythons import interpreters_under_test  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "procclean.py")
PYTHONS = interpreters_under_test()


def version_of(python):
    out = subprocess.check_output([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
    return tuple(int(x) for x in out.decode().split("."))


@pytest.mark.parametrize("python", PYTHONS)
def test_compiles_and_runs_on(python):
    assert version_of(python) >= (3, 6)
    subprocess.check_call([python, "-c", "import ast,sys; compile(open(sys.argv[1]).read(), "
                                         "sys.argv[1], 'exec')", SCRIPT])
    result = subprocess.run([python, SCRIPT, "--version"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert result.returncode == 0 and result.stdout.startswith(b"procclean ")
    result = subprocess.run([python, SCRIPT, "--help"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert result.returncode == 0 and b"kill-port" in result.stdout


def test_the_oldest_interpreter_is_covered_when_available():
    versions = [version_of(p) for p in PYTHONS]
    if len(PYTHONS) == 1:
        pytest.skip("only one interpreter here: %s" % PYTHONS[0])
    assert min(versions) == (3, 6), "PROCCLEAN_TEST_PYTHONS/pyenv should include 3.6"


def test_imports_only_the_standard_library():
    tree = ast.parse(open(SCRIPT, "rb").read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.module != "__future__" or all(a.name != "annotations" for a in node.names)
            names.add(node.module.split(".")[0])
    stdlib = getattr(sys, "stdlib_module_names", None)
    if stdlib is None:
        pytest.skip("sys.stdlib_module_names needs Python 3.10")
    assert names <= set(stdlib), names - set(stdlib)


def test_importing_does_no_work():
    """Importing must not read sys.argv, run ps or exit: the CLI runs only under __main__."""
    code = ("import sys; sys.argv=['x','force-clean']; sys.path.insert(0, %r); "
            "import procclean; print('imported')" % REPO)
    result = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert result.stdout == b"imported\n" and result.returncode == 0
