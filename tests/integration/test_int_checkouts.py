"""The daily loop's ports and places (issue 21 items 1, 2, 7, 8), black-box inside PID +
network namespaces: a port setting moves the service ({port} and PORT), checkouts side by side
get their own ports, procclean run from a subfolder means the project, and the project's own
interpreter wins over an unrelated active venv.

The services are a few lines of Python (real sockets, real HTTP) started by procclean itself;
every port number is the namespace's own."""
import glob
import json
import os
import subprocess
import sys

import pytest

from integ_helpers import assert_dead, no_traceback, read, wait_until, write

# A backend: listens on --port N, else $PORT, else 8000; GET answers with what it was given.
BACKEND = r"""
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
port = int(sys.argv[sys.argv.index("--port") + 1]) if "--port" in sys.argv \
    else int(os.environ.get("PORT", "8000"))


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"port": port, "cwd": os.getcwd(), "python": sys.executable,
                           "env": dict((k, v) for k, v in os.environ.items()
                                       if k == "PORT" or k.endswith("_PORT"))}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""

# A frontend as a Vite dev server with the README's proxy: its own port from $PORT, /api
# passed to the backend at $PROCCLEAN_BACKEND_PORT.
FRONTEND = r"""
import os, urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
backend = "http://127.0.0.1:%s/" % os.environ.get("PROCCLEAN_BACKEND_PORT", "8000")


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"frontend"
        if self.path.startswith("/api"):
            body = urllib.request.urlopen(backend, timeout=10).read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", int(os.environ.get("PORT", "3000"))), Handler).serve_forever()
"""

FETCH = ("import sys, urllib.request\n"
         "print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())\n")

INI_FRONTEND = ("[frontend]\ncommand = {python} dev_server.py\ncwd = frontend\nport = 3000\n"
                "pattern = dev_server\\.py\nhealth = /\n")


def make_project(folder, ini=None, frontend=False):
    """backend/main.py (procclean's default backend command runs it), optionally a
    frontend and a procclean.ini; returns the folder."""
    os.makedirs(os.path.join(str(folder), "backend"))
    write(os.path.join(str(folder), "backend", "main.py"), BACKEND)
    if frontend:
        os.makedirs(os.path.join(str(folder), "frontend"))
        write(os.path.join(str(folder), "frontend", "dev_server.py"), FRONTEND)
    if ini is not None:
        write(os.path.join(str(folder), "procclean.ini"), ini)
    return folder


def fetch(ns, url):
    r = ns.run([sys.executable, "-c", FETCH, url], timeout=30)
    assert r.rc == 0, r
    return r.stdout.strip()


# --- item 1: a port setting moves the service ----------------------------------------------------

def test_port_setting_moves_the_default_backend_through_port(ns, tmp_path, python_edge):
    """`PROCCLEAN_BACKEND_PORT=8001 make start-backend` started the app on 8000 again: the
    app that reads PORT now listens where procclean watches."""
    make_project(tmp_path)
    env = {"PROCCLEAN_BACKEND_PORT": "8001"}
    r = ns.procclean("start", "--wait", "backend", env=env, python=python_edge)
    assert r.rc == 0, r
    assert "backend listens on port 8001" in r.stdout, r
    got = json.loads(fetch(ns, "http://127.0.0.1:8001/"))
    assert got["port"] == 8001
    assert got["env"]["PORT"] == "8001" and got["env"]["PROCCLEAN_BACKEND_PORT"] == "8001"
    assert got["env"]["PROCCLEAN_FRONTEND_PORT"] == "3000", got
    r = ns.procclean("status", "--check", "backend", env=env, python=python_edge)
    assert r.rc == 0, r
    r = ns.procclean("stop", "backend", env=env, python=python_edge)
    assert r.rc == 0, r
    assert not (tmp_path / "backend.pid").exists()


def test_port_placeholder_in_the_command_and_every_port_in_the_environment(ns, tmp_path,
                                                                           python_edge):
    """`{port}` in a command is the service's port; each service gets PORT (its own) and
    PROCCLEAN_<SERVICE>_PORT of every service, so the frontend reaches the backend."""
    make_project(tmp_path, frontend=True, ini=(
        "[backend]\ncommand = {python} main.py --port {port}\ncwd = backend\nport = 8100\n\n"
        + INI_FRONTEND.replace("3000", "3100")))
    r = ns.procclean("start", "--wait", python=python_edge)
    assert r.rc == 0, r
    assert "main.py --port 8100" in r.stdout, r
    got = json.loads(fetch(ns, "http://127.0.0.1:3100/api"))
    assert got["port"] == 8100 and got["env"]["PORT"] == "8100", got
    assert got["env"]["PROCCLEAN_FRONTEND_PORT"] == "3100", got
    assert got["cwd"] == os.path.join(str(tmp_path), "backend"), got
    r = ns.procclean("stop", python=python_edge)
    assert r.rc == 0, r


def test_port_hint_only_where_a_port_change_works(ns, tmp_path, python_edge):
    """A command that neither has {port} nor reads PORT: the hint does not suggest another
    port (it would not move); one that has {port}: it does, and the suggestion works."""
    from nslib import Proc
    make_project(tmp_path, ini="[backend]\ncommand = sleep 60\ncwd = backend\n")
    # outside the project (one in it would be its leftover, freed by `stop backend`)
    stranger = ns.spawn(Proc(["some-server"], listen="127.0.0.1:8000", cwd="/"))
    r = ns.procclean("start", "backend", python=python_edge)
    assert r.rc == 1, r
    assert "if PID %d is yours, free the port" % stranger.pid in r.stderr, r
    assert "pick another port" not in r.stderr, r
    assert "backend does not take its port from procclean" in r.stderr, r
    write(tmp_path / "procclean.ini",
          "[backend]\ncommand = {python} main.py --port {port}\ncwd = backend\n")
    r = ns.procclean("start", "backend", python=python_edge)
    assert r.rc == 1, r
    assert "pick another port: PROCCLEAN_BACKEND_PORT=8001 " in r.stderr, r
    env = {"PROCCLEAN_BACKEND_PORT": "8001"}
    r = ns.procclean("start", "--wait", "backend", env=env, python=python_edge)
    assert r.rc == 0, r
    assert json.loads(fetch(ns, "http://127.0.0.1:8001/"))["port"] == 8001
    r = ns.procclean("stop", "backend", env=env, python=python_edge)
    assert r.rc == 0, r


# --- item 7: run from anywhere in the repo -------------------------------------------------------

@pytest.mark.parametrize("marker", ["procclean.ini", "Makefile"])
def test_status_and_stop_from_a_subfolder_mean_the_project(ns, tmp_path, python_edge, marker):
    """From backend/, status said "not running" and listed the backend outside the project:
    the root is found upward (procclean.ini, or a Makefile that runs procclean)."""
    make_project(tmp_path)
    if marker == "Makefile":
        write(tmp_path / "Makefile", "status:\n\tpython3 procclean.py status\n")
    else:
        write(tmp_path / "procclean.ini", "[procclean]\ngrace = 2\n")
    r = ns.procclean("start", "--wait", "backend", python=python_edge)
    assert r.rc == 0, r
    pid = int(read(tmp_path / "backend.pid"))
    sub = str(tmp_path / "backend")
    r = ns.procclean("status", "--check", "backend", cwd=sub, python=python_edge)
    assert r.rc == 0, r
    assert "outside this project" not in r.output, r
    assert str(pid) in r.stdout, r
    r = ns.procclean("stop", "backend", cwd=sub, python=python_edge)
    assert r.rc == 0, r
    no_traceback(r)
    assert_dead(ns, [pid], r)
    assert not (tmp_path / "backend.pid").exists()
    assert not os.path.exists(os.path.join(sub, "backend.pid"))
    # start from the subfolder: the same folders as from the root
    r = ns.procclean("start", "--wait", "backend", cwd=sub, python=python_edge)
    assert r.rc == 0, r
    assert (tmp_path / "backend.pid").exists() and (tmp_path / "backend.log").exists()
    assert not os.path.exists(os.path.join(sub, "backend.log"))
    r = ns.procclean("stop", cwd=sub, python=python_edge)
    assert r.rc == 0, r


# --- item 8: the project's interpreter wins -------------------------------------------------------

def make_venv(python, path):
    subprocess.run([python, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    return str(path)


def doctor_with_a_decoy_venv(ns, tmp_path, python, ini=None):
    """backend/main.py needs projdep, missing from backend/.venv; another venv is active."""
    project = make_project(tmp_path / "proj")
    main = os.path.join(str(project), "backend", "main.py")
    write(main, "import projdep\n" + read(main))
    if ini is not None:
        write(project / "procclean.ini", ini)
    decoy = make_venv(python, tmp_path / "elsewhere" / "venv")
    own = make_venv(python, project / "backend" / ".venv")
    own_python = os.path.join(own, "bin", "python")
    env = {"VIRTUAL_ENV": decoy, "PATH": "%s/bin:%s" % (decoy, os.environ.get("PATH", ""))}
    r = ns.procclean("doctor", "backend", cwd=str(project), env=env, python=python)
    assert "backend: %s cannot import projdep" % own_python in r.stdout, r
    assert "fix: %s -m pip install projdep" % own_python in r.stdout, r
    return project, own, own_python, decoy, env, r


def test_the_projects_venv_wins_over_an_unrelated_active_one(ns, tmp_path, python_edge):
    """Another venv active (VIRTUAL_ENV set, its bin first on PATH): the backend started with
    it and failed (No module named ...), and doctor proposed installing into it. The
    project's backend/.venv is used, said, and doctor's fix installs into that one."""
    project, own, own_python, decoy, env, r = doctor_with_a_decoy_venv(ns, tmp_path,
                                                                       python_edge)
    assert decoy not in r.stdout.replace("VIRTUAL_ENV " + decoy, ""), r
    site = glob.glob(os.path.join(own, "lib", "python*", "site-packages"))[0]
    write(os.path.join(site, "projdep.py"), "")
    r = ns.procclean("start", "--wait", "backend", cwd=str(project), env=env, python=python_edge)
    assert r.rc == 0, r
    assert ("backend runs with %s (the virtual environment backend/.venv; the active "
            "$VIRTUAL_ENV %s is not this project's (it is outside it): not used)"
            % (own_python, decoy)) in r.stderr, r
    got = json.loads(fetch(ns, "http://127.0.0.1:8000/"))
    assert got["python"] == own_python, got
    r = ns.procclean("stop", cwd=str(project), env=env, python=python_edge)
    assert r.rc == 0, r
    # No interpreter of its own: the active one, said plainly not to be the project's.
    import shutil
    shutil.rmtree(own)
    r = ns.procclean("start", "--dry-run", "backend", cwd=str(project), env=env,
                     python=python_edge)
    assert r.rc == 0, r
    assert "would start backend: %s/bin/python main.py" % decoy in r.stdout, r
    assert ("backend runs with %s/bin/python (the active $VIRTUAL_ENV %s, which is NOT this "
            "project's" % (decoy, decoy)) in r.stderr, r


def test_doctor_checks_the_python_start_runs_for_a_literal_python(ns, tmp_path, python_edge):
    """A command that says `python` (as init takes it from a Makefile recipe) with an
    unrelated venv active: start runs the project's venv (its bin takes the active one's
    place on PATH), so doctor checks that one and proposes installing there, not into the
    active venv (found on yizhengtang/CICD2_Lab_6_Service_B with its Makefile replaced)."""
    ini = "[backend]\ncommand = python main.py\ncwd = backend\n"
    project, own, own_python, decoy, env, r = doctor_with_a_decoy_venv(ns, tmp_path,
                                                                       python_edge, ini)
    assert decoy not in r.stdout, r


# --- item 2: checkouts side by side ----------------------------------------------------------

AUTO_INI = ("[procclean]\nport_offset = auto\n\n[backend]\ncommand = {python} main.py --port "
            "{port}\ncwd = backend\nport = 8000\n\n" + INI_FRONTEND)


def offset_of(ns, folder, python):
    r = ns.procclean("status", "--json", cwd=str(folder), python=python)
    assert r.rc == 0, r
    return json.loads(r.stdout)["port_offset"]


def assert_reaches_its_own_backend(ns, folder, ports):
    got = json.loads(fetch(ns, "http://127.0.0.1:%d/api" % ports["frontend"]))
    assert got["port"] == ports["backend"], got
    assert got["cwd"] == os.path.join(str(folder), "backend"), got
    assert got["env"]["PROCCLEAN_BACKEND_PORT"] == str(ports["backend"]), got


def test_two_checkouts_side_by_side_each_with_its_own_ports(ns, tmp_path, python_edge):
    """Two clones of one repo and a git worktree, `port_offset = auto`, started at once in one
    namespace: each gets its own ports (the main checkout the configured ones, the worktree
    an offset from its path, a second clone the next free offset), recorded, stable, shown
    by status, and each frontend reaches its own backend through PROCCLEAN_BACKEND_PORT."""
    first = make_project(tmp_path / "first", frontend=True, ini=AUTO_INI)
    clone = make_project(tmp_path / "clone", frontend=True, ini=AUTO_INI)
    tree = make_project(tmp_path / "tree", frontend=True, ini=AUTO_INI)
    for folder in (first, clone):
        os.makedirs(str(folder / ".git"))
    write(tree / ".git", "gitdir: %s/.git/worktrees/tree\n" % first)
    r = ns.procclean("status", cwd=str(tree), python=python_edge)
    assert "port_offset = auto, recorded at the first start" in r.stdout, r
    assert not (tree / ".procclean-offset").exists()     # status writes nothing
    jobs = [ns.start_procclean("start", "--wait", cwd=str(f), python=python_edge)
            for f in (first, tree)]
    results = [job.wait(120) for job in jobs]
    assert [res.rc for res in results] == [0, 0], results
    r = ns.procclean("start", "--wait", cwd=str(clone), python=python_edge)
    assert r.rc == 0, r
    assert "port 8000 is held by PID" in r.stderr or "port 3000 is held by PID" in r.stderr, r
    offsets = {}
    for folder in (first, clone, tree):
        ports = offset_of(ns, folder, python_edge)
        offsets[folder] = ports["offset"]
        assert ports["mode"] == "auto"
        assert ports["ports"] == {"backend": 8000 + ports["offset"],
                                  "frontend": 3000 + ports["offset"]}, ports
        assert read(folder / ".procclean-offset").strip() == str(ports["offset"])
        assert_reaches_its_own_backend(ns, folder, ports["ports"])
        r = ns.procclean("status", "--check", cwd=str(folder), python=python_edge)
        assert r.rc == 0, r
        assert "ports: offset +%d for this checkout (port_offset = auto, recorded in " \
            ".procclean-offset): backend %d, frontend %d" % (
                ports["offset"], 8000 + ports["offset"], 3000 + ports["offset"]) in r.stdout, r
    assert offsets[first] == 0
    assert len(set(offsets.values())) == 3 and all(o % 10 == 0 for o in offsets.values())
    # stable: with the main checkout stopped, the others keep theirs
    for folder in (first, clone, tree):
        r = ns.procclean("stop", cwd=str(folder), python=python_edge)
        assert r.rc == 0, r
    r = ns.procclean("start", "--wait", cwd=str(clone), python=python_edge)
    assert r.rc == 0, r
    assert offset_of(ns, clone, python_edge)["offset"] == offsets[clone]
    assert_reaches_its_own_backend(ns, clone, {"backend": 8000 + offsets[clone],
                                               "frontend": 3000 + offsets[clone]})
    r = ns.procclean("stop", cwd=str(clone), python=python_edge)
    assert r.rc == 0, r


WAIT_HTTP = ("import sys, time, urllib.request\n"
             "deadline = time.time() + float(sys.argv[2])\n"
             "while True:\n"
             "    try:\n"
             "        print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())\n"
             "        break\n"
             "    except Exception as e:\n"
             "        if time.time() > deadline:\n"
             "            raise\n"
             "        time.sleep(0.1)\n")


def test_two_checkouts_run_dev_side_by_side(ns, tmp_path, python_edge):
    """`make dev` in the main checkout and in a git worktree at the same time, both with
    `port_offset = auto`: both stacks come up, each frontend reaches its own backend, and a
    SIGTERM to each dev leaves nothing of either."""
    import signal
    first = make_project(tmp_path / "first", frontend=True, ini=AUTO_INI)
    os.makedirs(str(first / ".git"))
    tree = make_project(tmp_path / "tree", frontend=True, ini=AUTO_INI)
    write(tree / ".git", "gitdir: %s/.git/worktrees/tree\n" % first)
    argv = ns.procclean_argv("dev", python=python_edge)
    devs = [ns.start(["/bin/sh", "-c", 'exec "$@" >dev.out 2>dev.err', "sh"] + argv,
                     cwd=str(folder), session=True) for folder in (first, tree)]
    try:
        for folder in (first, tree):
            assert wait_until(lambda: read(folder / ".procclean-offset").strip(), 60), \
                (read(folder / "dev.out"), read(folder / "dev.err"))
            offset = int(read(folder / ".procclean-offset"))
            r = ns.run([sys.executable, "-c", WAIT_HTTP,
                        "http://127.0.0.1:%d/api" % (3000 + offset), "60"], timeout=90)
            assert r.rc == 0, (r, read(folder / "dev.out"), read(folder / "dev.err"))
            got = json.loads(r.stdout)
            assert got["port"] == 8000 + offset, got
            assert got["cwd"] == os.path.join(str(folder), "backend"), got
        assert read(first / ".procclean-offset").strip() == "0"
        assert read(tree / ".procclean-offset").strip() != "0"
    finally:
        for dev in devs:
            dev.signal(signal.SIGTERM)
        results = [dev.wait(60) for dev in devs]
    assert [res.timed_out for res in results] == [False, False], results
    left = wait_until(lambda: not [p for p in ns.ps() if any(
        a.endswith(("main.py", "dev_server.py")) for a in p["argv"])], 10)
    assert left, ns.ps()
    for folder in (first, tree):
        assert "Traceback" not in read(folder / "dev.err"), read(folder / "dev.err")


@pytest.mark.parametrize("offset", ["10", "auto"])
def test_a_supervised_service_moves_by_the_offset_once(ns, tmp_path, python_edge, offset):
    """start --supervise: the background supervisor restarts the service on the port the
    start chose (the ports it gets in its environment are taken as they are, not moved
    again), and restarts it there after a crash."""
    make_project(tmp_path, frontend=True, ini=AUTO_INI.replace("auto", offset))
    write(tmp_path / ".git", "gitdir: /src/app/.git/worktrees/x\n")
    r = ns.procclean("start", "--wait", "--supervise", python=python_edge)
    assert r.rc == 0, r
    moved = json.loads(ns.procclean("status", "--json", python=python_edge).stdout)
    moved = moved["port_offset"]["offset"]
    assert moved == 10 if offset == "10" else moved > 0
    got = json.loads(fetch(ns, "http://127.0.0.1:%d/api" % (3000 + moved)))
    assert got["port"] == 8000 + moved, got
    first = got
    ns.kill([p["pid"] for p in ns.ps() if any(a.endswith("main.py") for a in p["argv"])])
    assert wait_until(lambda: ns.run([sys.executable, "-c", WAIT_HTTP, "http://127.0.0.1:%d/"
                                      % (8000 + moved), "30"], timeout=60).rc == 0, 60)
    got = json.loads(fetch(ns, "http://127.0.0.1:%d/api" % (3000 + moved)))
    assert got["port"] == 8000 + moved and got["env"] == first["env"], got
    r = ns.procclean("stop", python=python_edge)
    assert r.rc == 0, r
