"""procclean vendored in tools/ of a repo with a seed-style Makefile, driven by make from the
repo root (issue 14, items 1-3 and 7), inside throw-away PID + network namespaces.

The repo is tests/fixtures/init/seed-repo, as tests/fixture_repos.py makes it (its Makefile
stops, starts and lists processes with `ps -ef | grep | kill` recipes, the seed's own among
them, next to install/test/build/clean targets). `init --makefile --replace` swaps those
recipes for procclean calls; then every make target is run from the root as a team would,
against stand-in processes, and doctor's fix lines are run as printed.
"""
import glob
import os
import re
import shutil
import subprocess

import pytest

from fixture_repos import copy_repo
from integ_helpers import assert_alive, assert_dead, no_traceback, npm_chain, write
from nslib import REPO, Proc


def need_make():
    if not shutil.which("make"):
        pytest.skip("no make here")


class Repo(object):
    """The fixture repo in the namespace's working folder, procclean.py in tools/, and a bin
    folder first on PATH: `python3` there is the interpreter under test, `npm` a stub."""

    def __init__(self, ns, folder, python):
        self.ns = ns
        self.folder = folder
        copy_repo("seed-repo", folder)
        (folder / "tools").mkdir()
        shutil.copyfile(os.path.join(REPO, "procclean.py"), str(folder / "tools" / "procclean.py"))
        self.bindir = folder / ".bin"
        self.bindir.mkdir()
        os.symlink(python, str(self.bindir / "python3"))
        write(self.bindir / "npm", "#!/bin/sh\necho 'npm stub' >&2\nexit 1\n")
        os.chmod(str(self.bindir / "npm"), 0o755)

    def env(self, extra=None):
        env = {"PATH": "%s:%s" % (self.bindir, os.environ.get("PATH", "/usr/bin:/bin")),
               "NO_COLOR": "1", "MAKEFLAGS": None, "MAKELEVEL": None}
        env.update(extra or {})
        return env

    def run(self, *argv, **kw):
        r = self.ns.run(list(argv), env=self.env(kw.get("env")))
        no_traceback(r)
        return r

    def make(self, *goals, **kw):
        return self.run("make", *goals, **kw)

    def procclean(self, *args, **kw):
        return self.run("python3", "tools/procclean.py", *args, **kw)

    def backend(self):
        """`python3 main.py` in backend/, as the seed's start-backend ran it."""
        return self.ns.spawn(Proc(["python3", "main.py"], cwd=self.folder / "backend"))

    def frontend(self):
        chain = npm_chain()
        for node in chain.walk():
            node.cwd = str(self.folder / "frontend")
        return self.ns.spawn(chain)


@pytest.fixture
def repo(ns, tmp_path, python_edge, standin_path):
    need_make()
    r = Repo(ns, tmp_path, python_edge)
    result = r.procclean("init", "--makefile", "--replace")
    assert result.rc == 0, result
    assert "replaced stop-backend" in result.stdout, result
    return r


def test_make_targets_from_the_root_with_procclean_in_tools(repo):
    ns = repo.ns
    text = (repo.folder / "Makefile").read_text()
    assert "PROCCLEAN ?= $(PYTHON) -S -m tools.procclean" in text
    bystanders = [ns.spawn(Proc(["python3", "other.py"])), ns.spawn(Proc(["vim", "main.py"]))]
    backend = repo.backend()
    frontend = repo.frontend()
    r = repo.make("show-processes")
    assert r.rc == 0, r
    assert str(backend.pid) in r.stdout and str(frontend.pid) in r.stdout, r
    r = repo.make("stop-backend")
    assert r.rc == 0, r
    assert_dead(ns, backend.pids(), r)
    assert_alive(ns, frontend.pids() + [b.pid for b in bystanders], r)
    r = repo.make("status")
    assert r.rc == 0, r
    assert re.search(r"backend: not running", r.stdout) and "frontend: running" in r.stdout, r
    r = repo.make("stop")
    assert r.rc == 0, r
    assert_dead(ns, frontend.pids(), r)
    assert_alive(ns, [b.pid for b in bystanders], r)
    # the targets procclean has nothing to do with run as before
    r = repo.make("test")
    assert r.rc == 0 and r.stdout.strip() == "running the tests", r


def test_make_through_the_module_form_caches_bytecode_in_tools(repo):
    r = repo.make("status", env={"PYTHONDONTWRITEBYTECODE": None})
    assert r.rc == 0, r
    assert glob.glob(str(repo.folder / "tools" / "__pycache__" / "procclean.*.pyc")), r


def test_doctor_fix_lines_name_the_make_target_or_the_real_path(repo):
    ns = repo.ns
    leftover = repo.backend()
    gone = ns.spawn(Proc(["short-lived"]))
    ns.kill(gone.pid)
    assert ns.wait_dead([gone.pid]) == []
    write(repo.folder / "backend.pid", "%d\n" % gone.pid)
    r = repo.make("doctor")
    assert r.rc != 0, r
    fixes = re.findall(r"^    fix: (.*)$", r.stdout, re.M)
    assert "python3 tools/procclean.py clean backend" in fixes, r
    assert "make stop-backend" in fixes, r
    assert not [f for f in fixes if re.search(r"(?<!tools/)procclean\.py", f)], r
    r = repo.run("sh", "-c", "make stop-backend && python3 tools/procclean.py clean backend")
    assert r.rc == 0, r
    assert_dead(ns, leftover.pids(), r)
    r = repo.make("doctor")
    assert "backend.pid" not in r.stdout and "stop-backend" not in r.stdout, r


def test_port_conflict_says_how_to_free_the_port_or_pick_another(repo):
    ns = repo.ns
    write(repo.folder / "procclean.ini",
          "[backend]\ncommand = env APP_PORT={port} sleep 60\nport = 8000\ncwd = backend\n")
    stranger = ns.spawn(Proc(["some-server"], listen="127.0.0.1:8000", cwd="/"))
    r = repo.make("start-backend")
    assert r.rc != 0, r
    assert "cannot start backend: port 8000 is taken by PID %d" % stranger.pid in r.stderr, r
    assert ("if PID %d is yours, free the port: python3 tools/procclean.py kill-port 8000; "
            "or pick another port: PROCCLEAN_BACKEND_PORT=8001 make start-backend"
            % stranger.pid) in r.stderr, r
    # under make dev, the way to another port is make dev (not start-backend, which would
    # start it in the background)
    r = repo.make("dev")
    assert r.rc != 0 and "or pick another port: PROCCLEAN_BACKEND_PORT=8001 make dev\n" \
        in r.stderr, r
    r = repo.run("sh", "-c", "PROCCLEAN_BACKEND_PORT=8001 make start-backend")
    assert r.rc == 0, r
    assert "started backend" in r.stdout, r
    r = repo.run("sh", "-c", "PROCCLEAN_BACKEND_PORT=8001 make stop-backend")
    assert r.rc == 0, r
    assert_alive(ns, [stranger.pid], r)


@pytest.mark.parametrize("said", [
    "ERROR:    [Errno 98] error while attempting to bind on address ('127.0.0.1', 8010): "
    "address already in use",                                               # uvicorn
    "Error: listen EADDRINUSE: address already in use 127.0.0.1:8010",      # Node
    "[ERROR] Connection in use: ('127.0.0.1', 8010)",                       # gunicorn
    "error when starting dev server:\nError: Port 8010 is already in use",  # Vite
    "Address already in use\nPort 8010 is in use by another program.",      # Flask
])
def test_an_app_that_binds_a_port_taken_names_its_holder(repo, said):
    """An app that names its own port (read from its settings) found it taken by a server
    in another folder: start showed the log's `address already in use` and stopped. The
    holder of that port is named, with how to free it, as start's own check does."""
    ns = repo.ns
    write(repo.folder / "backend" / "bind.py", "print(%r)\nraise SystemExit(3)\n" % said)
    write(repo.folder / "procclean.ini",
          "[backend]\ncommand = {python} bind.py\nport = 8000\ncwd = backend\n")
    stranger = ns.spawn(Proc(["some-server"], listen="127.0.0.1:8010", cwd="/"))
    r = repo.make("start-backend")
    assert r.rc != 0 and "backend exited at once (status 3)" in r.stderr, r
    assert "cannot start backend: port 8010 is taken by PID %d (some-server" % stranger.pid \
        in r.stderr, r
    assert "free the port: python3 tools/procclean.py kill-port 8010" in r.stderr, r
    assert_alive(ns, [stranger.pid], r)


def test_a_log_time_is_no_port_in_use(repo):
    """Python's logging stamps `12:30:45,053`: a line `Address already in use` that names
    no port made ec2165a read 53 from the milliseconds and name what listens there (a DNS
    resolver, sshd on 22) with `kill-port 53`.  A time is no port."""
    ns = repo.ns
    write(repo.folder / "backend" / "bind.py", "print(%r)\nraise SystemExit(3)\n"
          % "2026-12-07 12:30:45,053 ERROR [Errno 98] Address already in use")
    write(repo.folder / "procclean.ini",
          "[backend]\ncommand = {python} bind.py\nport = 8000\ncwd = backend\n")
    resolver = ns.spawn(Proc(["resolver"], listen="127.0.0.1:53", cwd="/"))
    r = repo.make("start-backend")
    assert r.rc != 0 and "backend exited at once (status 3)" in r.stderr, r
    assert "port 53" not in r.stderr and "kill-port" not in r.stderr, r
    assert_alive(ns, [resolver.pid], r)


def test_doctor_checks_the_venv_imports_what_the_backend_needs(repo, python_edge):
    """The issue's case: a project .venv without fastapi; procclean's own python is not the
    one that runs the backend. doctor names the venv's python and the fix."""
    venv = repo.folder / "backend" / ".venv"
    subprocess.run([python_edge, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    r = repo.make("doctor")
    python = str(venv / "bin" / "python")
    finding = "backend: %s cannot import fastapi, uvicorn, which its start command needs" % python
    assert finding in r.stdout, r
    assert "    fix: %s -m pip install -r backend/requirements.txt" % python in r.stdout, r
    # what the fix would install, given as local modules: the finding is gone
    for name in ("fastapi", "uvicorn"):
        write(repo.folder / "backend" / (name + ".py"), "")
    r = repo.make("doctor")
    assert "cannot import" not in r.stdout, r
    # and start runs the backend with that venv's python
    r = repo.procclean("start", "backend", "--dry-run")
    assert "would start backend: %s main.py" % python in r.stdout, r
