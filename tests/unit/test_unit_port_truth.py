"""One truth about a port's listener and a container's port (issue 19, items 9 and 10) on the
fake system: the holders the namespace tests cannot stage (another user's process, Docker
Desktop on macOS, Podman's helpers, another service's tagged process) and the pure helpers."""
import json
import os
import signal

import pytest

from fakes import FakeProc, FakeSystem, invoke
import procclean
from procclean import Listener

DOCKER_PROXY = ("/usr/bin/docker-proxy -proto tcp -host-ip 0.0.0.0 -host-port 8000 "
                "-container-ip 172.17.0.2 -container-port 80")


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(str(tmp_path))
    return os.path.realpath(str(tmp_path))


def on_port(*procs, **kw):
    port = kw.get("port", 8000)
    return FakeSystem(list(procs), listeners=[Listener(port, "0.0.0.0", "ipv4", p.pid)
                                              for p in procs if p.pid in kw.get("holders", [])])


def status_record(system, name="backend"):
    code, out, _ = invoke(["status", name, "--json"], system)
    return json.loads(out)["services"][0]


# --- pure helpers ------------------------------------------------------------------------------

def test_containers_publishing_reads_host_ports_and_ranges_never_the_container_side():
    text = ("a1\tweb\tnginx\t0.0.0.0:8000->80/tcp, :::8000->80/tcp\n"
            "b2\tapi\tapp\t0.0.0.0:9000->8000/tcp\n"            # 8000 only inside
            "c3\tdb\tpg\t5432/tcp\n"                              # exposed, not published
            "d4\trange\tx\t[::]:7990-8010->80-100/tcp\n"
            "garbage line\n")
    assert procclean.containers_publishing(text, 8000) == [("a1", "web", "nginx"),
                                                           ("d4", "range", "x")]
    assert procclean.containers_publishing(text, 5432) == []


def test_proxy_target_from_docker_proxys_argv():
    assert procclean.proxy_target(DOCKER_PROXY) == ("172.17.0.2", 80)
    assert procclean.proxy_target("rootlesskit --net=slirp4netns dockerd") is None


@pytest.mark.parametrize("command", [
    DOCKER_PROXY, "rootlesskit --net=slirp4netns --port-driver=builtin dockerd",
    "/usr/bin/rootlesskit-docker-proxy -proto tcp -host-port 8000",
    "rootlessport", "/usr/bin/conmon --api-version 1 -c 1a2b -n web",
    "/usr/bin/pasta --config-net -t 8000-8000:80-80 --netns /run/user/1000/netns/x",
    "/usr/bin/slirp4netns --disable-host-loopback --mtu=65520 -c 4242 tap0",
    "/opt/podman/bin/gvproxy -listen-vfkit unixgram:///tmp/gvproxy.sock",
    "/Applications/Docker.app/Contents/MacOS/com.docker.backend",
    "/Applications/Docker.app/Contents/Resources/bin/com.docker.vpnkit --ethernet fd:3",
    "/Applications/Docker.app/Contents/MacOS/vpnkit"])
def test_container_runtimes_proxies_are_never_port_targets(command):
    proc = procclean.Process(5, 1, "root", command)
    assert procclean.port_exempt(proc) == "container"
    assert procclean.port_exempt(procclean.Process(6, 1, "dev", "python3 -m http.server")) \
        is None


# --- item 10 on the platforms the namespace cannot stage ----------------------------------------

def test_docker_desktop_backend_on_macos_is_never_signalled(here):
    backend = FakeProc(700, 1, "/Applications/Docker.app/Contents/MacOS/com.docker.backend",
                       cwd="/")
    system = on_port(backend, holders=[700])
    system.published = {8000: [("a1", "shop-web", "nginx:1.25")]}
    code, out, err = invoke(["kill-port", "8000"], system)
    assert code == 1 and system.sent == []
    assert ("com.docker.backend, forwarding the port of container shop-web (nginx:1.25); "
            "never signalled") in err
    assert "to free it: docker stop shop-web" in err


def test_doctor_names_a_port_held_by_a_server_and_its_worker_once(here):
    """Another project's uvicorn --reload on 8000: its reloader and its worker both hold
    the socket, and doctor gave two findings for the one port, each with the same fix
    (`3 finding(s)` for two ports).  A worker of a holder named is not named again."""
    reloader = FakeProc(750, 1, "python -m uvicorn main:app --reload", cwd="/srv/other")
    worker = FakeProc(751, 750, "python -c from multiprocessing.spawn import spawn_main",
                      cwd="/srv/other")
    code, out, err = invoke(["doctor", "backend"],
                            on_port(reloader, worker, holders=[750, 751]))
    assert out.count("port 8000 of backend is held by PID") == 1, out
    assert "held by PID 750" in out and "1 finding(s) need action" in out, out


def test_kill_port_names_the_port_in_chinese(here):
    """`kill-port 8000 --lang zh` said `将发送 SIGTERM 给port 8000进程` and `port 8000进程已停止`:
    the port, named as kill-port's service, stayed English where 后端 and 前端 do not."""
    server = FakeProc(720, 1, "python3 -m http.server 8000")
    for argv, said in ((["kill-port", "8000", "--lang", "zh", "--dry-run"],
                        "将发送 SIGTERM 给端口 8000进程 (PID: 720)"),
                       (["kill-port", "8000", "--lang", "zh"], "端口 8000进程已停止 (PID: 720)")):
        code, out, err = invoke(argv, on_port(server, holders=[720]))
        assert code == 0 and said in out, out + err
        assert "port" not in out, out


def test_podmans_rootlessport_points_to_podman_ps(here):
    helper = FakeProc(710, 1, "rootlessport", cwd=here)       # started from the project
    system = on_port(helper, holders=[710])
    system.published = {}
    for argv in (["stop", "backend"], ["force-clean", "backend"], ["kill-port", "8000"]):
        code, out, err = invoke(argv, system)
        assert system.sent == [], argv
    assert "rootlessport, a container runtime's proxy; never signalled; which container: " \
           "podman ps" in err
    record = status_record(system)
    assert record["state"] == "stopped" and record["listeners"][0]["holder"] == "container"


# --- item 9: the classes of listener --------------------------------------------------------------

def test_another_users_listener_is_a_stranger_everywhere(here):
    """Its folder cannot be read: outside the project, named with its user, never stopped."""
    other = FakeProc(720, 1, "python3 -m http.server 8000", user="alice", cwd="")
    system = on_port(other, holders=[720])
    record = status_record(system)
    assert (record["state"], record["running"]) == ("stopped", False)
    assert record["listeners"][0]["holder"] == "stranger"
    assert "user alice" in record["listeners"][0]["what"]
    code, out, err = invoke(["status", "backend", "--check"], system)
    assert code == 3
    code, out, err = invoke(["start", "backend"], system)
    assert code == 1 and "if PID 720 is yours, free the port:" in err
    code, out, err = invoke(["stop", "backend"], system)
    assert code == 0 and system.sent == []
    assert "port 8000 is still held by PID 720" in err


def test_another_checkouts_server_on_the_port_is_stopped_there_not_by_kill_port(tmp_path,
                                                                              monkeypatch):
    """Two checkouts of one repo side by side: the other's backend holds 8000.  start
    names that checkout and how each gets its own ports; kill-port (which would stop the
    other checkout's work) is not offered."""
    ours = tmp_path / "shop"
    other = tmp_path / "shop-fix"
    for folder in (ours, other):
        (folder / "api").mkdir(parents=True)
        (folder / "procclean.ini").write_text("[backend]\ncwd = api\n"
                                              "command = uvicorn main:app --port {port}\n")
    monkeypatch.chdir(str(ours))
    theirs = FakeProc(740, 1, "python -m uvicorn main:app --port 8000",
                      cwd=os.path.realpath(str(other / "api")),
                      tag=(os.path.realpath(str(other)), "backend"))
    system = on_port(theirs, holders=[740])
    code, out, err = invoke(["start", "backend"], system)
    assert code == 1, out + err
    assert "PID 740 runs in another checkout or project, %s: stop it there" \
        % os.path.realpath(str(other)) in err, err
    assert "port_offset = auto under [procclean] in procclean.ini" in err
    assert "kill-port" not in err and system.sent == []
    # doctor said `fix: check PID 740 is yours (...), then: procclean.py kill-port 8000`
    code, out, err = invoke(["doctor", "backend"], system)
    fix = "fix: stop it in its checkout, %s (kill-port would end that checkout's work), " \
        "or give each checkout its own ports: port_offset = auto"
    assert fix % os.path.realpath(str(other)) in out, out
    assert "then:" not in out and system.sent == [], out
    # so do stop and status (a second checkout of alexeygrigorev/simple-sell, whose Vite
    # keeps its config's 8080: both said `to free it: python3 procclean.py kill-port 8080`)
    where = "in another checkout or project, %s: stop it there" % os.path.realpath(str(other))
    for command in (["stop", "backend"], ["status", "backend"]):
        code, out, err = invoke(command, system)
        assert where in out + err and "kill-port" not in out + err, out + err
    assert system.sent == []
    # with port_offset already on, doctor does not offer it again
    ini = (ours / "procclean.ini").read_text()
    (ours / "procclean.ini").write_text("[procclean]\nport_offset = auto\n" + ini)
    code, out, err = invoke(["doctor", "backend"], system)
    assert "stop it in its checkout, %s" % os.path.realpath(str(other)) in out, out
    assert "port_offset = auto under" not in out, out
    (ours / "procclean.ini").write_text(ini)
    (ours / "procclean.ini").write_text("[backend]\ncwd = api\ncommand = python main.py\n")
    code, out, err = invoke(["start", "backend"], system)
    assert "backend does not take its port from procclean" in err, err
    assert "port_offset" not in err
    # A folder kept in git that procclean does not run (a home folder's dotfiles) is no
    # checkout: its server is a stranger, for kill-port if it is the user's.
    home = tmp_path / "home"
    (home / ".git").mkdir(parents=True)
    (home / "scratch").mkdir()
    system.procs[740].cwd = os.path.realpath(str(home / "scratch"))
    system.procs[740].tag = None
    code, out, err = invoke(["start", "backend"], system)
    assert "another checkout" not in err and "if PID 740 is yours" in err, err


def test_a_listener_tagged_for_another_service_is_that_services(here):
    """The frontend (tagged by procclean) listening on the backend's port: `stop backend`
    leaves it, and `status frontend` still counts it as running."""
    front = FakeProc(730, 1, "node /app/node_modules/.bin/vite", cwd=here,
                     tag=(here, "frontend"))
    system = on_port(front, holders=[730])
    code, out, err = invoke(["stop", "backend"], system)
    assert code == 0 and system.sent == []
    assert status_record(system, "frontend")["pids"] == [730]


def test_a_leftover_with_a_live_service_makes_it_not_listening(here):
    """The backend runs (a pattern match) but a folder-only leftover holds its port: not
    `running` (its own process does not listen), and the holder is named as a leftover."""
    app = FakeProc(740, 1, "python3 main.py", cwd=here)
    server = FakeProc(741, 1, "python3 -m http.server 8000", cwd=here)
    system = on_port(app, server, holders=[741])
    record = status_record(system)
    assert record["state"] == "not listening" and record["pids"] == [740]
    assert [(l["pid"], l["holder"]) for l in record["listeners"]] == [(741, "leftover")]
    code, out, err = invoke(["status", "backend", "--check"], system)
    assert code == 3


def test_dev_names_a_leftover_on_the_port_as_start_does(here):
    """dev refuses as start does: the port is taken by this project's leftover (freed by
    `stop backend`), not "backend already runs in the background"."""
    server = FakeProc(750, 1, "python3 -m http.server 8000", cwd=here)
    system = on_port(server, holders=[750])
    code, out, err = invoke(["dev", "backend"], system)
    assert code == 1 and system.sent == []
    assert "already runs in the background" not in err
    assert "port 8000 is taken by PID 750" in err
    assert "PID 750 is in this project, but not backend's own process" in err
    assert "stop backend" in err
