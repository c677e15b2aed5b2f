"""doctor's findings as message keys (issue 15): one check per finding, rendered in the
chosen language when printed; fix lines naming procclean by its real path (issue 14)."""
import os
import re
import shutil

import pytest

from fakes import FakeProc, FakeSystem, invoke
import procclean


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # vendored in tools/, as a team does
    (tmp_path / "tools").mkdir()
    shutil.copyfile(procclean.__file__, str(tmp_path / "tools" / "procclean.py"))
    monkeypatch.setattr(procclean, "__file__", str(tmp_path / "tools" / "procclean.py"))
    return tmp_path


def messy(folder):
    """A stale backend pidfile and a frontend leftover under init."""
    (folder / "backend.pid").write_text("4242\n")
    (folder / "frontend.pid").write_text("4343\n")
    return FakeSystem([FakeProc(300, 1, "node /app/node_modules/.bin/vite")])


def test_findings_hold_keys_and_render_in_each_language(in_tmp):
    system = messy(in_tmp)
    config = procclean.load_config(environ={})
    out = procclean.Reporter(lang="en", environ={"NO_COLOR": "1"})
    ctx = procclean.Context(system, config, out)
    findings = procclean.diagnose(ctx, config.select([]), [])[0]
    keys = sorted(f.key for f in findings)
    assert keys == ["d_orphan_match", "d_stale", "d_stale"], keys
    for finding in findings:
        assert finding.key in procclean.MESSAGES["en"] and finding.key in procclean.MESSAGES["zh"]
        assert finding.fix[0] in procclean.MESSAGES["zh"]
        assert "{" not in finding.text(out) and "{" not in finding.fix_text(out)
    zh = procclean.Reporter(lang="zh", environ={"NO_COLOR": "1"})
    for finding in findings:
        assert re.search(u"[\u4e00-\u9fff]", finding.text(zh)), finding.text(zh)


def test_fix_lines_name_the_real_path_or_the_make_target(in_tmp):
    system = messy(in_tmp)
    code, out, err = invoke(["doctor"], system)
    assert code == 1, (out, err)
    fixes = re.findall(r"^    fix: (.*)$", out, re.M)
    assert fixes == ["python3 tools/procclean.py clean backend",
                     "python3 tools/procclean.py clean frontend",
                     "python3 tools/procclean.py stop frontend"], out
    if not shutil.which("make"):
        return
    (in_tmp / "Makefile").write_text(
        "PROCCLEAN = python3 -m tools.procclean\nstop-frontend clean:\n\t@$(PROCCLEAN) $@\n")
    code, out, err = invoke(["doctor"], messy(in_tmp))
    fixes = re.findall(r"^    fix: (.*)$", out, re.M)
    assert fixes[-1] == "make stop-frontend", out
    # `make clean` cleans every service: not the fix for one service's pidfile
    assert fixes[0] == "python3 tools/procclean.py clean backend", out


def test_doctor_in_chinese_prints_no_english_line(in_tmp):
    code, out, err = invoke(["doctor", "--lang", "zh"], messy(in_tmp))
    assert code == 1
    for line in out.splitlines():
        if line.startswith("procclean ") or line.startswith("    解决: "):
            continue
        assert re.search(u"[\u4e00-\u9fff]", line), line


def test_a_command_whose_program_is_missing(in_tmp):
    code, out, err = invoke(["doctor", "frontend", "--set",
                             "frontend.command=no-such-program-xyz run dev"], FakeSystem([]))
    assert code == 1
    assert "frontend: start program no-such-program-xyz is not installed or not on PATH" in out
    assert "fix: install no-such-program-xyz, or set command of [frontend] in procclean.ini" \
        in out


def test_modules_needed_by_a_python_command(in_tmp):
    (in_tmp / "main.py").write_text(
        "import os, sys\nfrom fastapi import FastAPI\nimport uvicorn.config\n"
        "try:\n    import ujson\nexcept ImportError:\n    pass\nfrom . import x\n")
    (in_tmp / "pkg").mkdir()
    (in_tmp / "pkg" / "app.py").write_text("import starlette\n")
    need = procclean.modules_needed
    assert need(["main.py"], str(in_tmp)) == ["os", "sys", "fastapi", "uvicorn"]
    assert need(["-m", "uvicorn", "pkg.app:app", "--port", "8000"], str(in_tmp)) == \
        ["uvicorn", "starlette"]
    assert need(["-c", "pass"], str(in_tmp)) == []


def test_a_makefile_procclean_line_that_does_not_run_this_file(in_tmp):
    """The README's root line in a repo that keeps procclean in tools/: every make target
    fails; doctor (run as the script) says so, with the command that fixes it."""
    (in_tmp / "Makefile").write_text("PROCCLEAN ?= $(PYTHON) -m procclean\n"
                                     "stop:\n\t@$(PROCCLEAN) $@\n")
    code, out, err = invoke(["doctor"], FakeSystem([]))
    assert code == 1
    assert "Makefile: PROCCLEAN = $(PYTHON) -m procclean does not run tools/procclean.py, so " \
        "its make targets fail" in out, out
    assert "fix: python3 tools/procclean.py init --makefile --replace" in out
    for line in ("$(PYTHON) -m tools.procclean", "python3 ./tools/procclean.py",
                 "$(PY) $(TOOLS)/procclean.py"):         # the last: cannot tell, trusted
        (in_tmp / "Makefile").write_text("PROCCLEAN = %s\n" % line)
        code, out, err = invoke(["doctor"], FakeSystem([]))
        assert "PROCCLEAN" not in out, (line, out)
