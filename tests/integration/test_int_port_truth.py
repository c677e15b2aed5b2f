"""One truth about a port's listener, and a container's port is the container's (issue 19,
items 9 and 10), black-box inside throw-away PID + network namespaces.

A listener on a service's port is, for status (its text, `--check`, `--json`), start, stop
and doctor alike: the service's own process (only then is the service `running`), this
project's leftover (in the project by folder or tag, matching no pattern: `stop` takes it),
a container runtime's proxy or an editor (never signalled), or a stranger. Stand-ins show the
argv a real holder has (`python3 -m http.server 8000`, `/usr/bin/docker-proxy -proto tcp ...`);
a fake `docker` on PATH says which container publishes the port. The machine's own `docker`
is never run: PATH leaves out /usr/local/bin.
"""
import json
import os

import pytest

from integ_helpers import assert_alive, assert_dead, no_traceback, write
from nslib import Proc

TIMEOUT = 120
DOCKER_PROXY = ["/usr/bin/docker-proxy", "-proto", "tcp", "-host-ip", "0.0.0.0",
                "-host-port", "8000", "-container-ip", "172.17.0.2", "-container-port", "80"]
# `docker ps --format '{{.ID}}\t{{.Names}}\t{{.Image}}\t{{.Ports}}'` with a container that
# publishes host port 8000 and one that does not.
FAKE_DOCKER = ("#!/bin/sh\necho \"$*\" >> \"$DOCKER_LOG\"\n"
               "printf 'a1b2c3d4e5f6\\tshop-web\\tnginx:1.25\\t0.0.0.0:8000->80/tcp, "
               ":::8000->80/tcp\\n'\n"
               "printf 'f6e5d4c3b2a1\\tshop-db\\tpostgres:16\\t0.0.0.0:5432->5432/tcp\\n'\n")


def env(tmp_path, docker=False):
    """PATH without the machine's docker; with `docker`, a fake one first."""
    bindir = tmp_path.parent / (tmp_path.name + "-bin")
    if docker and not bindir.exists():
        bindir.mkdir()
        write(bindir / "docker", FAKE_DOCKER)
        os.chmod(str(bindir / "docker"), 0o755)
    path = "/usr/bin:/bin"
    return {"PATH": "%s:%s" % (bindir, path) if docker else path, "NO_COLOR": "1",
            "DOCKER_LOG": str(tmp_path.parent / (tmp_path.name + "-docker.log"))}


def run(ns, tmp_path, python, *args, **kw):
    r = ns.procclean(*args, python=python, env=env(tmp_path, kw.get("docker", False)),
                     timeout=TIMEOUT)
    no_traceback(r)
    return r


def status_json(ns, tmp_path, python, **kw):
    r = run(ns, tmp_path, python, "status", "backend", "--json", **kw)
    return json.loads(r.stdout)["services"][0]


# --- item 9: a listener in the project that is not the service's own -----------------------------

@pytest.mark.edge_pythons
def test_a_server_started_in_the_project_is_not_the_backend_running(ns, tmp_path, python):
    """`python3 -m http.server 8000` from the repo root: in the project (its folder), no tag,
    no pattern match. status, --check and --json say the backend is not running and name the
    listener as start and doctor do; stop takes it (the port rule), as they all say."""
    server = ns.spawn(Proc(["python3", "-m", "http.server", "8000"], listen="0.0.0.0:8000",
                           http=200))
    r = run(ns, tmp_path, python, "status", "backend")
    assert r.rc == 0, r
    assert "backend: not running" in r.stdout, r
    assert ("port 8000: taken by PID %d (python3 -m http.server 8000), not backend's: in this "
            "project, but not backend's own process" % server.pid) in r.stdout, r
    assert "to free it: " in r.stdout and "stop backend" in r.stdout, r
    assert run(ns, tmp_path, python, "status", "backend", "--check").rc == 3
    record = status_json(ns, tmp_path, python)
    assert (record["state"], record["running"], record["pids"]) == ("stopped", False, []), record
    assert [(l["pid"], l["own"], l["holder"]) for l in record["listeners"]] == \
        [(server.pid, False, "leftover")], record
    r = run(ns, tmp_path, python, "start", "backend")
    assert r.rc == 1, r
    assert "port 8000 is taken by PID %d" % server.pid in r.stderr, r
    assert ("PID %d is in this project, but not backend's own process" % server.pid
            in r.stderr), r
    assert "already running" not in r.stdout + r.stderr, r
    r = run(ns, tmp_path, python, "doctor", "backend")
    assert r.rc == 1, r
    assert ("port 8000 of backend is held by PID %d (python3 -m http.server 8000): in this "
            "project, but not backend's own process" % server.pid) in r.stdout, r
    assert "stop backend" in r.stdout, r
    assert_alive(ns, [server.pid], r)
    r = run(ns, tmp_path, python, "stop", "backend")
    assert r.rc == 0, r
    assert_dead(ns, [server.pid], r)


def test_the_backend_itself_on_its_port_is_running(ns, tmp_path, python_edge):
    """The other side of the rule: a pattern match in the project listening is `running`."""
    app = ns.spawn(Proc(["python3", "main.py"], listen="127.0.0.1:8000"))
    record = status_json(ns, tmp_path, python_edge)
    assert (record["state"], record["pids"]) == ("running", [app.pid]), record
    assert [(l["pid"], l["holder"]) for l in record["listeners"]] == [(app.pid, "own")]


def test_a_match_outside_the_project_on_the_port_is_a_stranger(ns, tmp_path, python_edge):
    other = tmp_path.parent / (tmp_path.name + "-other")
    other.mkdir()
    app = ns.spawn(Proc(["uvicorn", "main:app", "--port", "8000"], listen="127.0.0.1:8000",
                        cwd=other))
    record = status_json(ns, tmp_path, python_edge)
    assert (record["state"], record["running"]) == ("stopped", False), record
    assert [(l["pid"], l["holder"]) for l in record["listeners"]] == [(app.pid, "stranger")]
    assert run(ns, tmp_path, python_edge, "status", "backend", "--check").rc == 3
    r = run(ns, tmp_path, python_edge, "stop", "backend")
    assert r.rc == 0, r
    assert_alive(ns, [app.pid], r)


def test_an_editor_forwarding_the_port_is_named_and_never_signalled(ns, tmp_path, python_edge):
    """VS Code's server forwarding :8000, run from the project: not the backend, never a
    target of stop's port rule nor of kill-port."""
    editor = ns.spawn(Proc(["node", "/root/.vscode-server/bin/e170252f/out/server-main.js",
                            "--start-server"], listen="127.0.0.1:8000"))
    record = status_json(ns, tmp_path, python_edge)
    assert (record["state"], record["running"]) == ("stopped", False), record
    assert [(l["pid"], l["holder"]) for l in record["listeners"]] == [(editor.pid, "viewer")]
    r = run(ns, tmp_path, python_edge, "stop", "backend")
    assert_alive(ns, [editor.pid], r)
    assert "an editor or browser; left alone" in r.stderr, r
    r = run(ns, tmp_path, python_edge, "kill-port", "8000")
    assert r.rc == 1, r
    assert_alive(ns, [editor.pid], r)
    assert "port 8000: held by PID %d" % editor.pid in r.stderr, r


# --- item 10: a container's port is the container's ----------------------------------------------

@pytest.mark.edge_pythons
def test_kill_port_never_signals_docker_proxy_and_names_the_container(ns, tmp_path, python):
    proxy = ns.spawn(Proc(DOCKER_PROXY, listen="0.0.0.0:8000", cwd="/"))
    r = run(ns, tmp_path, python, "kill-port", "8000", docker=True)
    assert r.rc == 1, r
    assert_alive(ns, [proxy.pid], r)
    assert ("port 8000: held by PID %d (%s): docker-proxy, forwarding the port of container "
            "shop-web (nginx:1.25); never signalled" % (proxy.pid, " ".join(DOCKER_PROXY))
            in r.stderr), r
    assert "to free it: docker stop shop-web" in r.stderr, r
    assert "shop-db" not in r.stderr, r
    r = run(ns, tmp_path, python, "kill-port", "8000", "--force", docker=True)
    assert_alive(ns, [proxy.pid], r)


def test_without_docker_the_proxy_is_named_as_a_containers(ns, tmp_path, python_edge):
    proxy = ns.spawn(Proc(DOCKER_PROXY, listen="0.0.0.0:8000", cwd="/"))
    r = run(ns, tmp_path, python_edge, "kill-port", "8000")
    assert r.rc == 1, r
    assert_alive(ns, [proxy.pid], r)
    assert ("docker-proxy, a container runtime's proxy for a container at 172.17.0.2:80; never "
            "signalled; which container: docker ps --filter publish=80") in r.stderr, r


def test_stop_start_status_doctor_leave_a_container_port_alone(ns, tmp_path, python_edge):
    """rootless Docker's rootlesskit runs as the user, from wherever dockerd was started: even
    in the project's folder it is no leftover of the backend. force-clean, stop, start, status
    and doctor name the container; nothing signals the proxy."""
    proxy = ns.spawn(Proc(["rootlesskit", "--net=slirp4netns", "--port-driver=builtin",
                           "dockerd"], listen="0.0.0.0:8000"))
    for command in ("force-clean", "stop"):
        r = run(ns, tmp_path, python_edge, command, "backend", docker=True)
        assert r.rc == 0, r
        assert_alive(ns, [proxy.pid], r)
        assert ("port 8000 is still held by PID %d (rootlesskit --net=slirp4netns "
                "--port-driver=builtin dockerd): rootlesskit, forwarding the port of container "
                "shop-web (nginx:1.25); never signalled\n    to free it: docker stop shop-web"
                % proxy.pid) in r.stderr, r
    r = run(ns, tmp_path, python_edge, "start", "backend", docker=True)
    assert r.rc == 1, r
    assert "to free the port: docker stop shop-web" in r.stderr, r
    assert "kill-port" not in r.stderr, r
    record = status_json(ns, tmp_path, python_edge, docker=True)
    assert (record["state"], record["running"]) == ("stopped", False), record
    assert [(l["holder"], l["free"]) for l in record["listeners"]] == \
        [("container", "docker stop shop-web")], record
    r = run(ns, tmp_path, python_edge, "doctor", "backend", docker=True)
    assert r.rc == 1, r
    assert "    fix: docker stop shop-web\n" in r.stdout, r
    r = run(ns, tmp_path, python_edge, "doctor", "backend", "--fix", docker=True)
    assert_alive(ns, [proxy.pid], r)
