"""--json on real processes in a PID namespace (issue 15): what the document says was
stopped, started and left alone is what happened."""
import json
import os

from integ_helpers import (assert_alive, assert_dead, no_traceback, uvicorn_reload,
                           wait_until, write)
from nslib import Proc


def document(r, rc=0):
    assert r.rc == rc, r
    no_traceback(r)
    return json.loads(r.stdout)


def test_stop_json_names_what_it_stopped_and_what_it_left_outside(ns, python_edge, tmp_path):
    app = ns.spawn(uvicorn_reload())
    write(tmp_path / "backend.pid", "%d\n" % app.pid)
    stranger = ns.spawn(Proc(["python3", "main.py"], cwd="/"))
    doc = document(ns.procclean("stop-backend", "--json", python=python_edge))
    assert_dead(ns, app.pids())
    assert_alive(ns, [stranger.pid])
    assert sorted(p["pid"] for p in doc["processes"]) == sorted(app.pids()), doc
    assert set(p["outcome"] for p in doc["processes"]) == {"stopped"}, doc
    assert [(o["pid"], o["folder"]) for o in doc["outside"]] == [(stranger.pid, "/")], doc
    assert doc["removed"] == ["backend.pid"] and not (tmp_path / "backend.pid").exists()


def test_start_logs_and_stop_json_follow_one_service(ns, python_edge, tmp_path):
    env = {"PROCCLEAN_WORKER_PATTERN": "json-worker",
           "PROCCLEAN_WORKER_COMMAND": "python3 -c \"import time; "
                                       "print('hello', 'json-worker'[:0], flush=True); "
                                       "time.sleep(600)\""}
    doc = document(ns.procclean("start", "worker", "--json", python=python_edge, env=env))
    started, = doc["started"]
    assert ns.is_alive(started["pid"]), doc
    log = tmp_path / "worker.log"
    # the app's own line: procclean's start line in the log names the command, 'hello' too
    assert wait_until(lambda: log.exists() and "hello " in log.read_text().splitlines(),
                      30), doc
    doc = document(ns.procclean("logs", "worker", "--json", python=python_edge, env=env))
    assert {"service": "worker", "line": "hello "} in doc["lines"], doc
    doc = document(ns.procclean("stop", "worker", "--json", python=python_edge, env=env))
    stopped = dict((p["pid"], p["outcome"]) for p in doc["processes"])
    assert stopped[started["pid"]] == "stopped" and set(stopped.values()) == {"stopped"}, doc
    assert_dead(ns, list(stopped))
    assert not os.path.exists(str(tmp_path / "worker.pid"))
