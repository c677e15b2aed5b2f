"""Configuration (env, procclean.ini), JSON output and the start/restart life cycle, black-box
inside PID namespaces (issue 2)."""
import json
import os
import time


from integ_helpers import (assert_alive, assert_dead, no_traceback, npm_chain, spawn_bystanders,
                           uvicorn_reload, write)
from nslib import Proc


def celery():
    return Proc(["/venv/bin/python", "/venv/bin/celery", "-A", "proj", "worker", "-l", "info"],
                children=[Proc(["celery-pool-1"]), Proc(["celery-pool-2"])])


# --- configuration ------------------------------------------------------------------------------

def test_extra_service_from_environment(ns, python_edge):
    bys = spawn_bystanders(ns)
    app = ns.spawn(uvicorn_reload())
    work = ns.spawn(celery())
    env = {"PROCCLEAN_WORKER_PATTERN": r"celery.*worker"}
    r = ns.procclean("stop", "worker", env=env, python=python_edge)
    assert r.rc == 0, r
    no_traceback(r)
    assert_dead(ns, work.pids(), r)
    assert_alive(ns, app.pids() + [b.pid for b in bys], r)
    work = ns.spawn(celery())
    r = ns.procclean("stop-worker", env=env, python=python_edge)
    assert r.rc == 0, r
    assert_dead(ns, work.pids(), r)
    assert_alive(ns, app.pids(), r)


def test_services_list_from_environment_limits_plain_stop(ns):
    app = ns.spawn(uvicorn_reload())
    chain = ns.spawn(npm_chain())
    work = ns.spawn(celery())
    env = {"PROCCLEAN_WORKER_PATTERN": r"celery.*worker", "PROCCLEAN_SERVICES": "worker"}
    r = ns.procclean("stop", env=env)
    assert r.rc == 0, r
    assert_dead(ns, work.pids(), r)
    assert_alive(ns, app.pids() + chain.pids(), r)


def test_extra_service_from_ini_with_its_pidfile(ns, tmp_path, python_edge):
    (tmp_path / "run").mkdir()
    boot = ns.spawn(Proc(["beat-scheduler", "--detach"], children=[Proc(["beat-child"])]))
    time.sleep(0.05)
    work = ns.spawn(celery())
    app = ns.spawn(uvicorn_reload())
    write(tmp_path / "run" / "worker.pid", "%d\n" % boot.pid)
    write(tmp_path / "procclean.ini",
          "[worker]\npattern = celery.*worker\npidfile = run/worker.pid\nlogfile = run/w.log\n")
    write(tmp_path / "run" / "w.log", "x\n")
    r = ns.procclean("force-clean", "worker", python=python_edge)
    assert r.rc == 0, r
    no_traceback(r)
    assert_dead(ns, work.pids() + boot.pids(), r)
    assert_alive(ns, app.pids(), r)
    assert not (tmp_path / "run" / "worker.pid").exists()
    assert not (tmp_path / "run" / "w.log").exists()


def test_pattern_override_replaces_the_default(ns):
    guni = ns.spawn(Proc(["gunicorn", "app:app", "-w", "2"], children=[Proc(["gw"])]))
    uvi = ns.spawn(Proc(["uvicorn", "main:app"]))
    r = ns.procclean("stop-backend", env={"PROCCLEAN_BACKEND_PATTERN": r"gunicorn.*app:app"})
    assert r.rc == 0, r
    assert_dead(ns, guni.pids(), r)
    assert_alive(ns, [uvi.pid], r)


def test_environment_wins_over_ini(ns, tmp_path):
    uvi = ns.spawn(Proc(["uvicorn", "main:app"]))
    write(tmp_path / "procclean.ini", "[backend]\npattern = matches-nothing-at-all\n")
    r = ns.procclean("stop-backend")
    assert r.rc == 0, r
    assert_alive(ns, [uvi.pid], r)
    r = ns.procclean("stop-backend", env={"PROCCLEAN_BACKEND_PATTERN": r"uvicorn.*main"})
    assert r.rc == 0, r
    assert_dead(ns, [uvi.pid], r)


def test_pidfile_path_from_environment(ns, tmp_path):
    (tmp_path / "run").mkdir()
    app = ns.spawn(Proc(["hypercorn-like", "app"], children=[Proc(["hw"])]))
    write(tmp_path / "run" / "api.pid", "%d\n" % app.pid)
    write(tmp_path / "backend.pid", "%d\n" % app.pid)     # not the configured one any more
    os.utime(str(tmp_path / "backend.pid"), (time.time() - 3600,) * 2)
    r = ns.procclean("stop-backend", env={"PROCCLEAN_BACKEND_PIDFILE": "run/api.pid"})
    assert r.rc == 0, r
    assert_dead(ns, app.pids(), r)
    assert not (tmp_path / "run" / "api.pid").exists()


# --- JSON ---------------------------------------------------------------------------------------

def test_show_processes_json(ns, python_edge):
    bys = spawn_bystanders(ns)
    app = ns.spawn(uvicorn_reload())
    chain = ns.spawn(npm_chain())
    r = ns.procclean("show-processes", "--json", python=python_edge)
    assert r.rc == 0, r
    recs = json.loads(r.stdout)["processes"]
    by_pid = {p["pid"]: p for p in recs}
    assert set(by_pid) == set(app.pids() + chain.pids()), r
    for p in app.pids():
        assert by_pid[p]["service"] == "backend"
    for p in chain.pids():
        assert by_pid[p]["service"] == "frontend"
    for rec in recs:
        for key in ("service", "pid", "ppid", "user", "command"):
            assert key in rec, (key, rec)
        assert rec["user"] == "root"
    assert by_pid[app.pid]["ppid"] == 1
    assert by_pid[app.children[0].pid]["ppid"] == app.pid
    assert "uvicorn main:app --reload" in by_pid[app.pid]["command"]
    assert_alive(ns, app.pids() + chain.pids() + [b.pid for b in bys])


def test_status_json(ns, python_edge):
    app = ns.spawn(uvicorn_reload())
    r = ns.procclean("status", "--json", python=python_edge)
    assert r.rc == 0, r
    services = {s["name"]: s for s in json.loads(r.stdout)["services"]}
    assert list(services)[:2] == ["backend", "frontend"]
    assert services["backend"]["running"] is True
    assert set(services["backend"]["pids"]) == set(app.pids())
    assert services["frontend"]["running"] is False
    assert services["frontend"]["pids"] == []
    assert str(app.pid) in json.dumps(services["backend"].get("listeners", services["backend"]))
    r = ns.procclean("status", "backend", "--json", python=python_edge)
    assert [s["name"] for s in json.loads(r.stdout)["services"]] == ["backend"]


def test_human_status_and_show_processes_name_pids(ns):
    app = ns.spawn(uvicorn_reload())
    r = ns.procclean("show-processes")
    assert r.rc == 0, r
    for p in app.pids():
        assert str(p) in r.stdout, r
    assert "uvicorn main:app --reload" in r.stdout
    r = ns.procclean("status")
    assert r.rc == 0 and str(app.pid) in r.stdout, r


# --- start / restart ----------------------------------------------------------------------------

SERVER = r'''
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
print("backend up", flush=True)
http.server.HTTPServer(("127.0.0.1", 8000), H).serve_forever()
'''


def _proc_fields(ns, pid):
    stat = ns.run(["cat", "/proc/%d/stat" % pid]).stdout
    fields = stat.rsplit(")", 1)[1].split()
    fd0 = ns.run(["readlink", "/proc/%d/fd/0" % pid]).stdout.strip()
    fd1 = ns.run(["readlink", "/proc/%d/fd/1" % pid]).stdout.strip()
    cwd = ns.run(["readlink", "/proc/%d/cwd" % pid]).stdout.strip()
    return {"sid": int(fields[3]), "fd0": fd0, "fd1": fd1, "cwd": cwd}


def _read_pid(path):
    return int(path.read_text().strip())


def test_start_already_running_restart_stop(ns, tmp_path, python_edge):
    (tmp_path / "backend").mkdir()
    write(tmp_path / "backend" / "main.py", SERVER)
    r = ns.procclean("start-backend", python=python_edge)
    assert r.rc == 0, r
    no_traceback(r)
    pidfile = tmp_path / "backend.pid"
    pid = _read_pid(pidfile)
    assert ns.is_alive(pid)
    info = _proc_fields(ns, pid)
    assert info["sid"] == pid, info                     # its own session
    assert info["fd0"] == "/dev/null", info
    assert info["fd1"] == str(tmp_path / "backend.log"), info
    assert info["cwd"] == str(tmp_path / "backend"), info
    deadline = time.time() + 10
    while "backend up" not in (tmp_path / "backend.log").read_text():
        assert time.time() < deadline, (tmp_path / "backend.log").read_text()
        time.sleep(0.05)

    r = ns.procclean("start-backend", python=python_edge)
    assert r.rc == 0, r
    assert str(pid) in r.stdout, r
    assert _read_pid(pidfile) == pid

    r = ns.procclean("restart-backend", python=python_edge)
    assert r.rc == 0, r
    assert_dead(ns, [pid], r)
    new = _read_pid(pidfile)
    assert new != pid and ns.is_alive(new), r

    r = ns.procclean("stop-backend", python=python_edge)
    assert r.rc == 0, r
    assert_dead(ns, [new], r)
    assert not pidfile.exists()
    assert (tmp_path / "backend.log").exists()         # stop keeps the log


def test_start_in_dot_without_backend_folder(ns, tmp_path):
    write(tmp_path / "main.py", SERVER)
    r = ns.procclean("start-backend")
    assert r.rc == 0, r
    pid = _read_pid(tmp_path / "backend.pid")
    assert _proc_fields(ns, pid)["cwd"] == str(tmp_path)
    r = ns.procclean("force-clean-backend")
    assert r.rc == 0, r
    assert_dead(ns, [pid], r)
    assert not (tmp_path / "backend.log").exists()


def test_start_that_dies_at_once_shows_the_log_exit_1(ns, tmp_path, python_edge):
    (tmp_path / "backend").mkdir()
    write(tmp_path / "backend" / "main.py",
          "import sys\nprint('boom-xyz: cannot import app', file=sys.stderr)\nsys.exit(3)\n")
    # --wait: start watches it until it listens or exits, however slowly a busy machine
    # runs it (without, it only has to outlive START_CHECK's half second)
    r = ns.procclean("start-backend", "--wait", python=python_edge)
    assert r.rc == 1, r
    no_traceback(r)
    assert "boom-xyz" in r.stdout + r.stderr, r
    ps = [p for p in ns.ps() if p["pid"] != 1 and p["state"] != "Z"]
    assert ps == [], ps


def test_start_with_configured_command(ns, tmp_path):
    env = {"PROCCLEAN_WORKER_PATTERN": "sleep 1234",
           "PROCCLEAN_WORKER_COMMAND": "sleep 1234"}
    r = ns.procclean("start", "worker", env=env)
    assert r.rc == 0, r
    pid = _read_pid(tmp_path / "worker.pid")
    assert ns.is_alive(pid)
    r = ns.procclean("stop", "worker", env=env)
    assert r.rc == 0, r
    assert_dead(ns, [pid], r)
