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


def _definitions(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node


def test_the_written_rules_hold():
    """The README's "How we write it", checked: no function over 60 lines, nothing crammed
    (no `;`, no `if x: return y` on one line, no body on its def's line), main() called
    last and only under __main__, nothing but main reads sys.argv, and nothing but the
    exit at the end (and the Ctrl-C line before main can catch it) ends the process."""
    import io
    import tokenize
    source = open(SCRIPT, "rb").read().decode("utf-8")
    tree = ast.parse(source)
    if not hasattr(tree.body[0], "end_lineno"):
        pytest.skip("end_lineno needs Python 3.8")
    long_functions = sorted("%s (line %d): %d lines" % (node.name, node.lineno,
                                                        node.end_lineno - node.lineno + 1)
                            for node in _definitions(tree)
                            if not isinstance(node, ast.ClassDef)
                            and node.end_lineno - node.lineno > 59)
    assert long_functions == []
    semicolons = [tok.start[0] for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                  if tok.type == tokenize.OP and tok.string == ";"]
    assert semicolons == []
    crammed = []
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            block = getattr(node, field, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt) \
                    and not isinstance(node, ast.Module) \
                    and block[0].lineno == node.lineno and field == "body":
                crammed.append(node.lineno)
    assert crammed == []
    last = tree.body[-1]
    assert isinstance(last, ast.If) and "__main__" in ast.dump(last.test)
    assert "main" in [node.func.id for node in ast.walk(last)
                      if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)]
    exits = sorted(set(
        node.name for node in _definitions(tree) for inner in ast.walk(node)
        if isinstance(inner, ast.Name) and inner.id == "SystemExit"
        or isinstance(inner, ast.Attribute) and inner.attr in ("exit", "_exit")
        and isinstance(inner.value, ast.Name) and inner.value.id in ("sys", "os")))
    assert exits == ["_early_interrupt", "exit_as"]
    argv_readers = sorted(set(
        node.name for node in _definitions(tree) for inner in ast.walk(node)
        if isinstance(inner, ast.Attribute) and inner.attr == "argv"
        and isinstance(inner.value, ast.Name) and inner.value.id == "sys"
        and not isinstance(node, ast.ClassDef)))
    assert set(argv_readers) <= {"main"}, argv_readers
