"""Honest status (issue 14.4), the supervise/wait/unhealthy_after settings (14.5) and the
Supervisor's health rule, on the fake system."""
import io
import json

import pytest

from fakes import FakeProc, FakeSystem, invoke
import procclean

HEALTH = "http://127.0.0.1:8000/health"


def listening(pid=100, port=8000):
    return [procclean.Listener(port, "127.0.0.1", "ipv4", pid)]


class Counting(FakeSystem):
    """Counts the health requests (each is a line in the app's log)."""
    asked = 0

    def http_get(self, url, timeout):
        self.asked += 1
        return FakeSystem.http_get(self, url, timeout)


def backend(listeners=(), answer=(200, 0.01, None), **kw):
    system = Counting([FakeProc(100, 1, "python main.py", **kw)], listeners=listeners)
    system.health_answers = {HEALTH: answer}
    return system


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)     # pidfiles, logs and state files of the tests


def states(system, *args):
    code, out, err = invoke(["status", "--json"] + list(args) + ["backend"], system)
    return code, json.loads(out)["services"][0], err


# -- the states ---------------------------------------------------------------------------

def test_running_listening_and_healthy_is_ok():
    system = backend(listening())
    code, out, err = invoke(["status", "--health", "backend"], system)
    assert code == 0 and "[ok] backend: running, PID 100" in out, out
    assert "health http://127.0.0.1:8000/health: healthy" in out
    assert states(system, "--health")[1]["state"] == "running"


def test_plain_status_asks_no_health_url_and_says_nothing_of_it():
    system = backend(listening())
    code, out, err = invoke(["status", "backend"], system)
    assert code == 0 and "[ok] backend: running" in out, out
    assert "health" not in out, out
    assert system.asked == 0


def test_running_but_nothing_listens_is_not_listening_with_a_warning_mark():
    system = backend()
    code, out, err = invoke(["status", "backend"], system)
    assert "[warning] backend: not listening, PID 100" in out, out
    assert "[ok]" not in out
    assert states(system)[1]["state"] == "not listening"


def test_an_app_on_another_port_than_its_own_says_where_it_listens():
    """An app that names its own port (Flask's app.run(port=8000)) while its setting
    says 8001: status says where it listens, besides the free port; a stranger's port
    is not the service's."""
    system = backend([procclean.Listener(8000, "127.0.0.1", "ipv4", 100),
                      procclean.Listener(5432, "127.0.0.1", "ipv4", 7)])
    system.procs[7] = FakeProc(7, 1, "postgres")
    code, out, err = invoke(["status", "--set", "backend.port=8001", "backend"], system)
    assert "backend: not listening, PID 100" in out, out
    assert "    port 8001: free\n    backend listens on port 8000\n" in out, out
    record = states(system, "--set", "backend.port=8001")[1]
    assert record["listening_elsewhere"] == [8000] and record["state"] == "not listening"
    code, out, err = invoke(["status", "--lang", "zh", "--set", "backend.port=8001",
                             "backend"], system)
    assert "backend监听的是端口 8000" in out or "后端监听的是端口 8000" in out, out
    assert states(system)[1]["listening_elsewhere"] == []      # on its own port


def test_a_young_process_not_listening_yet_is_starting():
    record = {"running": True, "port": 8000, "listeners": [], "uptime": 2.0, "supervisor": None}
    assert procclean.assess(record)[0] == "starting"
    record["uptime"] = procclean.START_TIMEOUT + 1
    assert procclean.assess(record)[0] == "not listening"


def test_a_young_process_up_on_another_port_is_not_starting():
    """A Vite that ignored PROCCLEAN_FRONTEND_PORT=3001 and listens on its config's 3000,
    a second old: up, on another port, so `not listening` at once, as start then says
    (`frontend listens on port 3000`), not `starting` for its first 30 s."""
    record = {"running": True, "port": 3001, "listeners": [], "uptime": 1.0,
              "supervisor": None, "listening_elsewhere": [3000]}
    assert procclean.assess(record)[0] == "not listening"


def test_health_failing_is_unhealthy_and_fails_check():
    system = backend(listening(), answer=(500, 0.01, None))
    code, out, err = invoke(["status", "--check", "backend"], system)
    assert code == procclean.EXIT_NOT_RUNNING
    assert "[warning] backend: unhealthy, PID 100" in out, out
    assert "[error] backend: listens on port 8000, but %s is unhealthy" % HEALTH in err
    assert system.asked == 1


@pytest.mark.parametrize("root", [404, 401])
def test_an_api_with_neither_health_nor_root_route_is_healthy_under_auto(root):
    """full-stack-fastapi-template's API lives under /api/v1: /health and / answer 404 (an
    app behind a login answers 401). Under `health = auto` that is an app answering, not a
    sick one: status --check passes; a health path the user set must still succeed."""
    system = backend(listening(), answer=(404, 0.01, None))
    system.health_answers["http://127.0.0.1:8000/"] = (root, 0.01, None)
    code, out, err = invoke(["status", "--check", "backend"], system)
    assert code == 0, (out, err)
    assert "[ok] backend: running, PID 100" in out, out
    explicit = {"LANG": "C.UTF-8", "PROCCLEAN_BACKEND_HEALTH": "/health"}
    code, out, err = invoke(["status", "--check", "backend"], system, environ=explicit)
    assert code == procclean.EXIT_NOT_RUNNING and "unhealthy" in out, out


def test_check_passes_only_when_running_listening_and_healthy():
    code, out, err = invoke(["status", "--check", "backend"], backend(listening()))
    assert code == 0, err
    code, out, err = invoke(["status", "--check", "backend"], backend())
    assert code == procclean.EXIT_NOT_RUNNING
    assert "runs, but nothing listens on its port 8000" in err


@pytest.mark.parametrize("status", [256, 9, None])
def test_a_worker_left_defunct_is_crashed(status):
    """Exited 1 (uvicorn's `Error loading ASGI app`), killed by SIGKILL, or on a Linux
    before 3.5 that keeps no exit status."""
    system = FakeSystem([FakeProc(100, 1, "uvicorn main:app --reload"),
                         FakeProc(101, 100, "python -c spawn_main", zombie=True)],
                        listeners=listening())
    system.procs[101].exit_status = status
    code, out, err = invoke(["status", "backend"], system)
    assert "[warning] backend: crashed, PID 100" in out, out
    assert "worker PID 101 exited (<defunct>)" in out
    code, out, err = invoke(["status", "--check", "backend"], system)
    assert code == procclean.EXIT_NOT_RUNNING and "worker PID 101 exited" in err


class Reaping(FakeSystem):
    """The table shows 101 <defunct>; its parent reaps it before status looks again."""

    def proc_stat(self, pid):
        return None if pid == 101 else FakeSystem.proc_stat(self, pid)


@pytest.mark.parametrize("parent", ["reaps it after the table", "runnable: about to reap",
                                    "asleep, its child exited 0"])
def test_a_child_its_parent_is_reaping_is_no_crash(parent):
    """A script that runs `cp` before its server (or an app that forks a subprocess per
    request): a status that read the table in the moment between the child's exit and its
    parent's wait() said `crashed, worker PID 101 exited (<defunct>)` and --check exit 3.
    A <defunct> is looked at again: reaped by then, or its parent runnable (woken by the
    SIGCHLD), it is no worker that exited.  Nor is one that exited 0 while its parent
    sleeps before reaping it (Popen, then a poll later: 11 status runs in 150)."""
    procs = [FakeProc(100, 1, "uvicorn main:app"),
             FakeProc(101, 100, "cp app app.run", zombie=True)]
    if parent.startswith("runnable"):
        system = FakeSystem(procs, listeners=listening())
        system.procs[100].state = "R"
    elif parent.startswith("asleep"):
        system = FakeSystem(procs, listeners=listening())
        system.procs[101].exit_status = 0
    else:
        system = Reaping(procs, listeners=listening())
    system.health_answers = {HEALTH: (200, 0.01, None)}
    code, out, err = invoke(["status", "--check", "backend"], system)
    assert code == 0 and "exited" not in out + err, out + err


def test_a_supervisor_in_backoff_is_restarting(tmp_path):
    system = backend(listening(pid=None))
    system.write_state("backend.pid.state", {"supervisor": 100, "state": "backoff",
                                             "restarts": 2, "child": None})
    code, out, err = invoke(["status", "--check", "backend"], system)
    assert "[warning] backend: restarting (backoff)" in out, out
    assert code == procclean.EXIT_NOT_RUNNING and "backend: restarting (backoff)" in err


def test_a_supervisor_that_gave_up_is_crashed():
    system = FakeSystem([])
    system.write_state("backend.pid.state", {"supervisor": 555, "state": "gave-up",
                                             "restarts": 5, "last_exit": 1})
    code, record, err = states(system)
    assert record["state"] == "crashed"
    code, out, err = invoke(["status", "backend"], system)
    assert "[error] backend: crashed, not running" in out, out


@pytest.mark.parametrize("last_exit, lang, said", [
    (1, "en", "(last exit: status 1)"),
    (-9, "en", "(last exit: killed by SIGKILL)"),
    (1, "zh", "(最后退出状态: 退出码 1)"),
    (-9, "zh", "(最后退出状态: 被 SIGKILL 终止)"),
    (-200, "zh", "(最后退出状态: 被信号 200 终止)"),
])
def test_how_the_last_run_ended_is_said_in_the_users_language(last_exit, lang, said):
    system = FakeSystem([])
    system.write_state("backend.pid.state", {"supervisor": 555, "state": "gave-up",
                                             "restarts": 5, "last_exit": last_exit})
    code, out, err = invoke(["--lang", lang, "status", "backend"], system)
    assert said in out, out
    assert "killed by" not in out or lang == "en", out


def test_a_log_that_shows_startup_failed_is_crashed():
    with open("backend.log", "w") as f:
        f.write("[procclean 2026-01-01 00:00:00.000] start: backend PID 100: x\n"
                "ERROR:    Error loading ASGI app. Could not import module \"main\".\n")
    code, out, err = invoke(["status", "backend"], backend())
    assert "[warning] backend: crashed, PID 100" in out, out


def test_a_failure_before_the_last_start_does_not_count():
    lines = ["Traceback (most recent call last):", "ImportError: x",
             "[procclean 2026-01-01 00:00:00.000] start: backend PID 7: x", "INFO: started"]
    assert procclean.startup_failed(lines) is False
    assert procclean.startup_failed(lines[2:] + lines[:2]) is True
    stopped = lines[2:] + lines[:2] + ["[procclean 2026-01-01 00:00:09.000] stop: backend"]
    assert procclean.startup_failed(stopped) is False


def test_status_in_chinese_names_the_state():
    code, out, err = invoke(["--lang", "zh", "status", "backend"], backend())
    assert "后端: 未监听端口" in out, out


# -- health probes ----------------------------------------------------------------------

def test_watch_asks_the_health_url_at_most_every_10_seconds():
    system = backend(listening())
    code, out, err = invoke(["status", "--watch", "2", "--count", "8", "backend"], system)
    assert code == 0, err
    # 8 views 2 s apart span 14 s: asked at 0 s and at 10 s, the last answer shown between
    assert system.asked == 2, system.asked
    assert out.count("health http://127.0.0.1:8000/health: healthy") == 8


# -- settings ---------------------------------------------------------------------------

def test_supervise_wait_and_unhealthy_after_from_the_ini_and_the_environment(tmp_path):
    (tmp_path / "procclean.ini").write_text("[backend]\nsupervise = yes\nunhealthy_after = 4\n")
    config = procclean.load_config(environ={"PROCCLEAN_FRONTEND_WAIT": "yes",
                                            "PROCCLEAN_FRONTEND_UNHEALTHY_AFTER": "2.5"})
    back, front = config.services["backend"], config.services["frontend"]
    assert (back.supervise, back.wait, back.unhealthy_after) == (True, False, 4.0)
    assert (front.supervise, front.wait, front.unhealthy_after) == (False, True, 2.5)
    default = procclean.load_config(environ={}, read_file=False).services["backend"]
    assert (default.supervise, default.unhealthy_after) == (False, procclean.UNHEALTHY_AFTER)


@pytest.mark.parametrize("field,value", [("supervise", "maybe"), ("wait", "2"),
                                         ("unhealthy_after", "-1")])
def test_a_bad_setting_is_a_usage_error(field, value):
    with pytest.raises(procclean.ProcCleanError) as info:
        procclean.load_config(settings=["backend.%s=%s" % (field, value)], environ={})
    assert field in str(info.value)


def test_start_and_restart_supervise_and_wait_by_the_service_settings():
    config = procclean.load_config(settings=["backend.supervise=yes", "backend.wait=yes"],
                                   environ={})
    ctx = procclean.Context(FakeSystem([]), config, procclean.Reporter(stdout=io.StringIO()))
    back, front = config.services["backend"], config.services["frontend"]
    assert procclean.supervised(ctx, back) and procclean.start_waits_for(ctx, back)
    assert not procclean.supervised(ctx, front) and not procclean.start_waits_for(ctx, front)
    ctx.keep_supervised = set(["frontend"])         # restart of a supervised service
    assert procclean.supervised(ctx, front)


def test_restart_keeps_a_running_supervisor_s_service_supervised():
    config = procclean.load_config(environ={})
    system = FakeSystem([FakeProc(300, 1, "python3 procclean.py supervise backend")])
    ctx = procclean.Context(system, config, procclean.Reporter(stdout=io.StringIO()))
    back = config.services["backend"]
    system.write_state("backend.pid.state", {"supervisor": 300, "state": "running"})
    assert procclean.supervisor_alive(ctx, back, system.process_table())
    system.write_state("backend.pid.state", {"supervisor": 301, "state": "running"})
    assert not procclean.supervisor_alive(ctx, back, system.process_table())


# -- the supervisor's health rule ----------------------------------------------------------

class Child(object):
    def __init__(self, system, pid):
        self.system, self.pid = system, pid

    def poll(self):
        proc = self.system.procs[self.pid]
        return -15 if not self.system._alive(proc) else None

    def wait(self, timeout=None):
        return self.poll()


class Reloader(FakeSystem):
    """uvicorn --reload: the reloader (100) holds the socket; its worker (101) is
    SIGKILLed at `dies` seconds and stays <defunct>."""
    dies = 20.0

    def process_table(self, previous=None):
        self.procs[101].zombie = self.now >= self.dies
        return FakeSystem.process_table(self, previous)


def supervisor_of(system, unhealthy_after="10"):
    config = procclean.load_config(settings=["backend.unhealthy_after=" + unhealthy_after],
                                   environ={})
    out = io.StringIO()
    ctx = procclean.Context(system, config, procclean.Reporter(stdout=out, stderr=out))
    return procclean.Supervisor(ctx, config.services["backend"])


def test_supervisor_restarts_a_once_healthy_service_whose_worker_died():
    system = Reloader([FakeProc(100, 900, "uvicorn main:app --reload", sid=100),
                       FakeProc(101, 100, "python -c spawn_main", sid=100)],
                      listeners=listening())
    system.health_answers = {HEALTH: (200, 0.01, None)}
    sup = supervisor_of(system)
    sup.child = Child(system, 100)
    status = sup.watch(sup.child)
    assert status == procclean.UNHEALTHY_EXIT
    assert sup.state["healthy"] is True
    assert (system.dies + 10.0) <= system.now, system.now    # unhealthy for 10 s first
    assert any(pid == 100 for _, pid, _ in system.sent), system.sent
    with open("backend.log") as f:
        assert "unhealthy for" in f.read()


def test_supervisor_never_restarts_a_service_for_health_it_never_had():
    system = Reloader([FakeProc(100, 900, "uvicorn main:app --reload", sid=100),
                       FakeProc(101, 100, "python -c spawn_main", sid=100)])
    system.dies = 1e9
    sup = supervisor_of(system)
    sup.child = Child(system, 100)

    def exits(seconds):
        if system.now > 100:
            system.procs[100].dies_at = system.now      # ends the watch
        system.now += seconds
    system.sleep = exits
    assert sup.watch(sup.child) == -15
    assert system.sent == [] and "healthy" not in sup.state


def test_a_debuggers_port_is_not_where_the_app_listens():
    """`nodemon --inspect` (or debugpy, a JVM's JDWP) opens 9229 at once, seconds before
    the app listens on its port: status said `backend listens on port 9229` (and a young
    one `not listening`, not `starting`), as `start` did.  A debugger's port is left out;
    the app's own other port is still said."""
    system = backend([procclean.Listener(9229, "127.0.0.1", "ipv4", 100)])
    code, out, err = invoke(["status", "backend"], system)
    assert "listens on port" not in out, out
    assert states(system)[1]["listening_elsewhere"] == []
    system = backend([procclean.Listener(9229, "127.0.0.1", "ipv4", 100),
                      procclean.Listener(8080, "127.0.0.1", "ipv4", 100)])
    code, out, err = invoke(["status", "backend"], system)
    assert "    backend listens on port 8080\n" in out, out


class _Launch(object):
    """What say_listening_elsewhere reads of a StartWatch."""
    waits, told_elsewhere, looked_elsewhere = True, False, None
    service = procclean.Service("frontend", "vite", "frontend.pid", "frontend.log", 5173,
                                "npm run dev", ".")

    def tree(self, table):
        return [100, 101, 102]


@pytest.mark.parametrize("middle, said", [("node .bin/concurrently npm:dev:*", False),
                                          ("sh -c vite", True)])
def test_an_api_beside_the_dev_server_is_no_port_elsewhere(capsys, middle, said):
    """make start of a frontend whose dev script is `concurrently "npm:dev:*"` (Vite on
    5173, a Node API on 4000, both its tree): while Vite started, start said `frontend
    listens on port 4000, not on 5173: if 4000 is its port, set port = 4000` (the API).
    Under an orchestrator another port is not the dev server's; alone, it is said."""
    system = FakeSystem([FakeProc(100, 1, "npm run dev"), FakeProc(101, 100, middle),
                         FakeProc(102, 101, "node api.js")], listeners=listening(102, 4000))
    ctx = procclean.Context(system, procclean.load_config(environ={}),
                            procclean.Reporter(environ={}))
    capsys.readouterr()
    procclean.say_listening_elsewhere(ctx, [_Launch()], system.process_table(), set())
    err = capsys.readouterr().err
    assert ("frontend listens on port 4000, not on 5173" in err) == said, err
