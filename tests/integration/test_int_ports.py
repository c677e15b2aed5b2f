"""Ports (issue 4), black-box, with real sockets inside a PID + network namespace.

Every test runs procclean.py as a subprocess inside a throw-away namespace (tests/nslib.py) whose
loopback is up: listeners and clients are stand-ins (tests/standin.c) or, where a socket option
the stand-in does not offer is needed (IPV6_V6ONLY off, IPv4-mapped addresses), a few lines of
Python started with the tests' own interpreter. Nothing here can see or signal the machine's
real processes, and every port number is the namespace's own.

What a user sees is asserted: who died, who lives, whether the port is free afterwards (a new
server can bind it inside the namespace), the exit code and the message.
"""
import json
import os
import re
import shutil
import sys
import time

import pytest

from integ_helpers import (assert_alive, assert_dead, no_traceback, pids_in,
                           spawn_bystanders, write)
from nslib import Proc

# Helper programs (listeners with special socket options, bind checks) run with the interpreter
# running the tests; procclean.py itself runs with the interpreter under test.
PY = sys.executable

SOURCES = ("lsof", "ss", "proc", "netlink")

HAVE_IPV6 = os.path.exists("/proc/net/if_inet6")
needs_ipv6 = pytest.mark.skipif(not HAVE_IPV6, reason="no IPv6 on this kernel "
                                "(/proc/net/if_inet6 missing)")


def source_missing(source):
    """Why a listener source cannot be used here, or None."""
    if source in ("lsof", "ss") and not shutil.which(source):
        return "`%s` is not installed here" % source
    if source in ("proc", "netlink") and not os.path.exists("/proc/net/tcp"):
        return "not Linux: no /proc/net/tcp, no sock_diag"
    return None


def require_source(source):
    why = source_missing(source)
    if why:
        pytest.skip(why)


def available_sources():
    return [s for s in SOURCES if source_missing(s) is None]


# A listener with the socket options the stand-in does not set: argv HOST PORT V6ONLY.
# `::` with V6ONLY=0 is a dual-stack listener (also takes IPv4 clients as ::ffff:a.b.c.d);
# `::ffff:127.0.0.1` is an IPv6 socket bound to an IPv4-mapped address.
LISTENER_PY = r"""
import socket, sys, time
host, port, v6only = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if ":" in host:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
s.bind((host, port))
s.listen(16)
while True:
    time.sleep(3600)
"""

# Can a new server bind HOST:PORT now?  SO_REUSEADDR as every server sets it: on Linux the bind
# then fails only while some socket LISTENs on that address and port (a closed connection in
# TIME_WAIT or FIN_WAIT does not count), which is exactly "the port is free".
BIND_PY = r"""
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind((host, port))
    s.listen(1)
except OSError as e:
    print("bind failed: %s" % e)
    sys.exit(1)
print("bound")
"""

# A client that connects FROM local port 8000 to a server on 8001: port 8000 appears in the
# socket tables, but nothing LISTENs on it.
CLIENT_FROM_8000_PY = r"""
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 8000))
s.connect(("127.0.0.1", 8001))
while True:
    time.sleep(3600)
"""


def script(ns, name, text):
    """Write a helper program into the namespace's own neutral folder (its path shows in
    `ps -ef` and must not match any service pattern)."""
    path = os.path.join(ns.tmp, name)
    write(path, text)
    return path


def wait_listening(ns, host, port, timeout=10):
    deadline = time.time() + timeout
    while not ns.connect(host, port, timeout=0.5):
        if time.time() > deadline:
            raise AssertionError("nothing listens on %s:%d after %ss: %r"
                                 % (host, port, timeout, ns.ps()))
        time.sleep(0.01)


def py_listener(ns, argv0, host, port, v6only=1, cwd=None):
    """A real Python process listening on host:port (argv shown: argv0 + the script)."""
    path = script(ns, "listener.py", LISTENER_PY)
    proc = ns.spawn(Proc(list(argv0) + [path, host, str(port), str(v6only)], path=PY, cwd=cwd))
    if "." in host or (host == "::" and not v6only):
        probe = "127.0.0.1"         # IPv4, IPv4-mapped, or dual-stack: an IPv4 client gets in
    else:
        probe = "::1"
    wait_listening(ns, probe, port)
    return proc


def wait_established(ns, local_port, timeout=10):
    """Wait until a connection whose local port is local_port shows in /proc/net/tcp."""
    deadline = time.time() + timeout
    suffix = ":%04X" % local_port
    while True:
        rows = [r.split() for r in ns.run(["cat", "/proc/net/tcp"]).stdout.splitlines()[1:]]
        if any(len(r) > 3 and r[1].endswith(suffix) and r[3] == "01" for r in rows):
            return
        if time.time() > deadline:
            raise AssertionError("no connection from local port %d" % local_port)
        time.sleep(0.02)


def can_bind(ns, host, port):
    r = ns.run([PY, script(ns, "bindcheck.py", BIND_PY), host, str(port)])
    return r.rc == 0


def assert_port_free(ns, host, port, result=None):
    assert not ns.connect(host, port), ("something still listens on %s:%d\n%r"
                                        % (host, port, result))
    assert can_bind(ns, host, port), ("a new server cannot bind %s:%d\n%r"
                                      % (host, port, result))


def ports_env(source, extra=None):
    env = {"PROCCLEAN_PORTS": source}
    env.update(extra or {})
    return env


def dry_run_pids(text):
    """PIDs in `would send SIG... to ... PID N:` lines."""
    return sorted(int(m) for m in re.findall(r"would send \S+ to .*?PID (\d+)", text))


def api_tree():
    """`sh run-api.sh` -> gunicorn listening on 127.0.0.1:8000 -> a worker that inherited the
    socket -> a helper. kill-port 8000 must take gunicorn and everything below it, never the
    launcher above it."""
    return Proc(["sh", "run-api.sh"], children=[
        Proc(["gunicorn", "app:app", "--bind", "127.0.0.1:8000"], listen="127.0.0.1:8000",
             inherit=True, children=[
                 Proc(["gunicorn-worker", "1"], children=[Proc(["worker-helper"])])])])


# --- kill-port: listener and its tree stop, clients live, the port is free --------------------

def test_kill_port_8000_stops_listener_tree_keeps_client(ns, python):
    bys = spawn_bystanders(ns)
    launcher = ns.spawn(api_tree())
    server = launcher.children[0]
    client = ns.spawn(Proc(["curl", "-N", "http://127.0.0.1:8000/events"],
                           connect="127.0.0.1:8000"))
    other = ns.spawn(Proc(["redis-server", "127.0.0.1:8001"], listen="127.0.0.1:8001"))
    other_client = ns.spawn(Proc(["redis-cli", "monitor"], connect="127.0.0.1:8001"))
    r = ns.procclean("kill-port", "8000", python=python)
    assert r.rc == 0, r
    no_traceback(r)
    assert_dead(ns, server.pids(), r)
    assert_alive(ns, [launcher.pid, client.pid, other.pid, other_client.pid]
                 + [b.pid for b in bys], r)
    # one line per process acted on, with its PID; the client is never named
    assert pids_in(r.stdout, server.pids()) == server.pids(), r
    assert pids_in(r.output, [client.pid, launcher.pid]) == [], r
    assert "8000" in r.stdout, r
    assert_port_free(ns, "127.0.0.1", 8000, r)
    assert ns.connect("127.0.0.1", 8001), "the other port's server was touched"


@pytest.mark.parametrize("source", SOURCES)
def test_kill_port_with_each_listener_source(ns, python_edge, source):
    require_source(source)
    launcher = ns.spawn(api_tree())
    server = launcher.children[0]
    client = ns.spawn(Proc(["python3", "-m", "httpx", "http://127.0.0.1:8000/"],
                           connect="127.0.0.1:8000"))
    r = ns.procclean("kill-port", "8000", python=python_edge, env=ports_env(source))
    assert r.rc == 0, r
    no_traceback(r)
    assert_dead(ns, server.pids(), r)
    assert_alive(ns, [launcher.pid, client.pid], r)
    assert_port_free(ns, "127.0.0.1", 8000, r)


@needs_ipv6
@pytest.mark.parametrize("source", SOURCES)
def test_kill_port_3000_over_ipv6(ns, python_edge, source):
    require_source(source)
    vite = ns.spawn(Proc(["node", "/app/web/node_modules/.bin/vite", "--host", "::1"],
                         listen="[::1]:3000", children=[
                             Proc(["/app/web/node_modules/@esbuild/linux-x64/bin/esbuild",
                                   "--service=0.21.5", "--ping"])]))
    browser = ns.spawn(Proc(["chromium", "--type=renderer"], connect="[::1]:3000"))
    api = ns.spawn(Proc(["uvicorn", "main:app"], listen="127.0.0.1:8000"))
    r = ns.procclean("kill-port", "3000", python=python_edge, env=ports_env(source))
    assert r.rc == 0, r
    no_traceback(r)
    assert_dead(ns, vite.pids(), r)
    assert_alive(ns, [browser.pid, api.pid], r)
    assert pids_in(r.stdout, vite.pids()) == vite.pids(), r
    assert_port_free(ns, "::1", 3000, r)
    assert ns.connect("127.0.0.1", 8000)


MAPPED = {
    # IPv6 socket on :: with IPV6_V6ONLY off: one listener for IPv4 and IPv6 clients
    "dual-stack-any": ("::", 0),
    # IPv6 socket bound to an IPv4-mapped address (shows as ::ffff:127.0.0.1 in tcp6)
    "ipv4-mapped-loopback": ("::ffff:127.0.0.1", 0),
}


@needs_ipv6
@pytest.mark.parametrize("kind", sorted(MAPPED))
@pytest.mark.parametrize("source", SOURCES)
def test_kill_port_ipv4_mapped_ipv6_listener(ns, source, kind):
    require_source(source)
    host, v6only = MAPPED[kind]
    server = py_listener(ns, ["python3"], host, 8000, v6only)
    # an IPv4 client: the kernel hands it to the IPv6 socket as ::ffff:127.0.0.1
    client = ns.spawn(Proc(["curl", "http://127.0.0.1:8000/"], connect="127.0.0.1:8000"))
    r = ns.procclean("kill-port", "8000", env=ports_env(source))
    assert r.rc == 0, r
    no_traceback(r)
    assert_dead(ns, [server.pid], r)
    assert_alive(ns, [client.pid], r)
    assert_port_free(ns, "127.0.0.1", 8000, r)
    assert can_bind(ns, "::", 8000), r


def test_kill_two_ports_at_once(ns, python_edge):
    api = ns.spawn(Proc(["uvicorn", "main:app"], listen="127.0.0.1:8000"))
    web = ns.spawn(Proc(["node", "server.js"], listen="127.0.0.1:3000"))
    keep = ns.spawn(Proc(["postgres", "-p", "5432"], listen="127.0.0.1:5432"))
    r = ns.procclean("kill-port", "8000", "3000", python=python_edge)
    assert r.rc == 0, r
    assert_dead(ns, [api.pid, web.pid], r)
    assert_alive(ns, [keep.pid], r)
    assert_port_free(ns, "127.0.0.1", 8000, r)
    assert_port_free(ns, "127.0.0.1", 3000, r)


# --- --force, grace ---------------------------------------------------------------------------

def test_force_kills_a_term_ignoring_listener_without_waiting(ns, python_edge):
    stubborn = ns.spawn(Proc(["java", "-jar", "api.jar", "--port", "8000"], term="ignore",
                             listen="127.0.0.1:8000", inherit=True,
                             children=[Proc(["java-helper"], term="ignore")]))
    client = ns.spawn(Proc(["curl", "http://127.0.0.1:8000/"], connect="127.0.0.1:8000"))
    # --grace 30: had procclean sent SIGTERM and waited, the run would time out (timeout=15)
    r = ns.procclean("kill-port", "--force", "--grace", "30", "8000", python=python_edge,
                     timeout=15)
    assert not r.timed_out, r
    assert r.rc == 0, r
    no_traceback(r)
    assert_dead(ns, stubborn.pids(), r)
    assert_alive(ns, [client.pid], r)
    for pid in stubborn.pids():
        line = [l for l in r.stdout.splitlines() if re.search(r"\b%d\b" % pid, l)]
        assert line and "SIGKILL" in line[0], (pid, r)
    assert_port_free(ns, "127.0.0.1", 8000, r)


def test_term_ignoring_listener_killed_after_grace_polite_one_stopped(ns, python_edge):
    stubborn = ns.spawn(Proc(["java", "-jar", "api.jar"], term="ignore",
                             listen="127.0.0.1:8000"))
    polite = ns.spawn(Proc(["node", "server.js"], listen="127.0.0.1:3000"))
    client = ns.spawn(Proc(["curl", "http://127.0.0.1:8000/"], connect="127.0.0.1:8000"))
    r = ns.procclean("kill-port", "--grace", "0.3", "8000", "3000", python=python_edge,
                     timeout=15)
    assert r.rc == 0, r
    no_traceback(r)
    assert_dead(ns, [stubborn.pid, polite.pid], r)
    assert_alive(ns, [client.pid], r)
    lines = {pid: [l for l in r.stdout.splitlines() if re.search(r"\b%d\b" % pid, l)]
             for pid in (stubborn.pid, polite.pid)}
    assert lines[stubborn.pid] and "SIGKILL" in lines[stubborn.pid][0], r
    assert lines[polite.pid] and "SIGKILL" not in lines[polite.pid][0], r
    assert_port_free(ns, "127.0.0.1", 8000, r)


# --- usage errors, nothing to do --------------------------------------------------------------

@pytest.mark.parametrize("ports", [["0"], ["70000"], ["abc"], ["65536"], ["8000", "abc"],
                                   ["3000", "0"]],
                         ids=["0", "70000", "abc", "65536", "8000+abc", "3000+0"])
def test_invalid_port_is_a_usage_error_and_stops_nothing(ns, ports):
    api = ns.spawn(Proc(["uvicorn", "main:app"], listen="127.0.0.1:8000"))
    web = ns.spawn(Proc(["node", "server.js"], listen="127.0.0.1:3000"))
    r = ns.procclean("kill-port", *ports)
    assert r.rc == 2, r
    no_traceback(r)
    bad = ports[-1]
    assert repr(bad) in r.stderr or bad in r.stderr, r
    # validated before anything is signalled: the valid port's listener is untouched
    assert_alive(ns, [api.pid, web.pid], r)
    assert ns.connect("127.0.0.1", 8000) and ns.connect("127.0.0.1", 3000)


def test_kill_port_without_a_port_is_a_usage_error(ns):
    api = ns.spawn(Proc(["uvicorn", "main:app"], listen="127.0.0.1:8000"))
    r = ns.procclean("kill-port")
    assert r.rc == 2, r
    no_traceback(r)
    assert r.stderr.strip(), r
    assert_alive(ns, [api.pid], r)


def test_nothing_listening_is_done_with_a_message(ns, python_edge):
    bys = spawn_bystanders(ns)
    # port 8000 is in use, but only as a client's local port: nothing LISTENs on it
    server = ns.spawn(Proc(["redis-server"], listen="127.0.0.1:8001"))
    client = ns.spawn(Proc(["python3", script(ns, "client8000.py", CLIENT_FROM_8000_PY)],
                           path=PY))
    wait_established(ns, 8000)
    for source in available_sources():
        r = ns.procclean("kill-port", "8000", python=python_edge, env=ports_env(source))
        assert r.rc == 0, (source, r)
        no_traceback(r)
        assert "8000" in r.stdout and "nothing" in r.stdout.lower(), (source, r)
        assert_alive(ns, [server.pid, client.pid] + [b.pid for b in bys], r)


def test_kill_port_never_signals_its_own_ancestor(ns, python_edge):
    """The shell (or make, or a dev server's task runner) that runs procclean may itself hold
    the port: it is never signalled, and the user is told the port is still taken."""
    runner = script(ns, "runner.py", r"""
import socket, subprocess, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 8000))
s.listen(8)
r = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
sys.stdout.write(r.stdout.decode("utf-8", "replace"))
print("procclean-exit=%d" % r.returncode)
print("runner-survived")
""")
    r = ns.run([PY, runner] + ns.procclean_argv("kill-port", "8000", python=python_edge))
    no_traceback(r)
    assert "runner-survived" in r.stdout, r
    inner = r.stdout.split("procclean-exit=")[0]
    code = int(r.stdout.split("procclean-exit=")[1].split()[0])
    # the port is still taken when procclean returns: not "done" (exit 0) in silence
    assert code == 1, r
    assert "8000" in inner, r


# --- the three listener sources agree --------------------------------------------------------

@needs_ipv6
def test_listener_sources_report_the_same_listeners(ns, python_edge):
    sources = available_sources()
    if len(sources) < 2:
        pytest.skip("fewer than two listener sources here: %s" % sources)
    api = ns.spawn(Proc(["uvicorn", "main:app", "--reload"], listen="127.0.0.1:8000",
                        inherit=True, http=200, children=[Proc(["python3", "-c", "worker"])]))
    ns.spawn(Proc(["curl", "http://127.0.0.1:8000/"], connect="127.0.0.1:8000"))
    vite = ns.spawn(Proc(["node", "/app/web/node_modules/.bin/vite"], listen="[::1]:3000",
                         http=200))
    ns.spawn(Proc(["chromium"], connect="[::1]:3000"))
    # a dual-stack stranger: it runs outside the project (in /)
    admin = py_listener(ns, ["python3"], "::", 9000, v6only=0, cwd="/")
    ns.spawn(Proc(["curl", "http://127.0.0.1:9000/"], connect="127.0.0.1:9000"))
    # (health checks off: the clients hold the stand-ins' single-threaded HTTP loop)
    env_admin = {"PROCCLEAN_ADMIN_PORT": "9000", "PROCCLEAN_ADMIN_PATTERN": "admin-panel",
                 "PROCCLEAN_BACKEND_HEALTH": "off", "PROCCLEAN_FRONTEND_HEALTH": "off"}
    seen = {}
    for source in sources:
        r = ns.procclean("status", "--json", python=python_edge,
                         env=ports_env(source, env_admin))
        assert r.rc == 0, (source, r)
        no_traceback(r)
        services = {s["name"]: s for s in json.loads(r.stdout)["services"]}
        status = {name: (s["listening"], sorted((l["pid"], l["own"], l["command"])
                                                for l in s["listeners"]))
                  for name, s in services.items()}
        d = ns.procclean("kill-port", "--dry-run", "8000", "3000", "9000",
                         python=python_edge, env=ports_env(source))
        assert d.rc == 0, (source, d)
        seen[source] = (status, dry_run_pids(d.stdout))
    expected_status = {
        "backend": (True, sorted([(api.pid, True, "uvicorn main:app --reload"),
                                  (api.children[0].pid, True, "python3 -c worker")])),
        "frontend": (True, [(vite.pid, True, "node /app/web/node_modules/.bin/vite")]),
        "admin": (True, [(admin.pid, False, " ".join(["python3", os.path.join(
            ns.tmp, "listener.py"), "::", "9000", "0"]))]),
    }
    expected_pids = sorted(api.pids() + [vite.pid, admin.pid])
    for source in sources:
        assert seen[source][0] == expected_status, (source, seen)
        assert seen[source][1] == expected_pids, (source, seen)


# (how the test binds, what the kernel's tables say: family and address)
LISTENER_KINDS = {
    "ipv4-loopback": ("standin", "127.0.0.1:8000", "ipv4", "127.0.0.1"),
    "ipv4-any": ("standin", "0.0.0.0:8000", "ipv4", "0.0.0.0"),
    "ipv6-loopback": ("standin", "[::1]:8000", "ipv6", "::1"),
    "ipv6-any-v6only": ("standin", "[::]:8000", "ipv6", "::"),
    "dual-stack-any": ("python", ("::", 0), "ipv6", "::"),
    "ipv4-mapped-loopback": ("python", ("::ffff:127.0.0.1", 0), "ipv6", "::ffff:127.0.0.1"),
}


def _same_address(address):
    """Spellings of one address: '*' is the wildcard of either family, and lsof prints an
    IPv4-mapped address as the plain IPv4 one."""
    a = (address or "").strip("[]")
    if a in ("*", "0.0.0.0", "::"):
        return "any"
    if a.startswith("::ffff:") and "." in a:
        return a[len("::ffff:"):]
    return a


@needs_ipv6
@pytest.mark.parametrize("kind", sorted(LISTENER_KINDS))
def test_listener_family_and_address_agree_across_sources(ns, kind):
    """`status --json` says which family a listener is (ipv4/ipv6) and its address: the same
    socket must be described the same way whichever tool procclean found on the machine, and
    as the kernel's own tables (/proc/net/tcp vs tcp6) have it."""
    how, where, family, address = LISTENER_KINDS[kind]
    if how == "standin":
        server = ns.spawn(Proc(["api-server"], listen=where))
    else:
        server = py_listener(ns, ["python3"], where[0], 8000, where[1])
    got = {}
    for source in available_sources():
        r = ns.procclean("status", "--json", "backend", env=ports_env(source))
        assert r.rc == 0, (source, r)
        backend = json.loads(r.stdout)["services"][0]
        got[source] = [(l["pid"], l["family"], l["address"]) for l in backend["listeners"]]
    wrong = {source: found for source, found in got.items()
             if len(found) != 1 or found[0][0] != server.pid or found[0][1] != family
             or _same_address(found[0][2]) != _same_address(address)}
    assert not wrong, ("%s listener (PID %d): the kernel says family %s, address %s; "
                       "procclean reported %r" % (kind, server.pid, family, address, got))


# --- status: port, listening or free, own or stranger ---------------------------------------

def test_status_shows_own_listener_and_free_port(ns, python_edge):
    api = ns.spawn(Proc(["uvicorn", "main:app", "--port", "8000"], listen="127.0.0.1:8000",
                        http=200))
    r = ns.procclean("status", python=python_edge)
    assert r.rc == 0, r
    no_traceback(r)
    lines = r.stdout.splitlines()
    l8000 = [l for l in lines if "8000" in l and "port" in l.lower()]
    assert l8000 and str(api.pid) in l8000[0], r
    assert "listening" in l8000[0] and "not" not in l8000[0], r
    l3000 = [l for l in lines if "3000" in l]
    assert l3000 and "free" in l3000[0], r
    d = json.loads(ns.procclean("status", "--json", python=python_edge).stdout)
    s = {x["name"]: x for x in d["services"]}
    assert s["backend"]["port"] == 8000 and s["backend"]["listening"] is True
    assert [(l["pid"], l["own"]) for l in s["backend"]["listeners"]] == [(api.pid, True)]
    assert s["frontend"]["port"] == 3000 and s["frontend"]["listening"] is False
    assert s["frontend"]["listeners"] == []


@pytest.mark.parametrize("where", ["127.0.0.1:8000", "0.0.0.0:8000", "[::1]:8000"])
def test_status_names_a_stranger_on_the_port(ns, python_edge, where):
    if "::" in where and not HAVE_IPV6:
        pytest.skip("no IPv6 here")
    backend = ns.spawn(Proc(["uvicorn", "main:app"]))            # running, not listening
    # a stranger: another project's server, running in another folder
    stranger = ns.spawn(Proc(["python3", "-m", "http.server", "8000"], listen=where, http=200,
                             cwd="/"))
    r = ns.procclean("status", python=python_edge)
    assert r.rc == 0, r
    no_traceback(r)
    line = [l for l in r.stdout.splitlines() if "8000" in l and "port" in l.lower()]
    assert line, r
    assert re.findall(r"PID (\d+)", line[0]) == [str(stranger.pid)], r
    assert "taken" in line[0] and "not backend" in line[0], r
    d = json.loads(ns.procclean("status", "--json", "backend", python=python_edge).stdout)
    b = d["services"][0]
    assert b["running"] is True and b["pids"] == [backend.pid], d
    assert [(l["pid"], l["own"]) for l in b["listeners"]] == [(stranger.pid, False)], d
    assert_alive(ns, [backend.pid, stranger.pid], r)


# --- start: refuses a taken port, --wait waits for it -----------------------------------------

@pytest.mark.parametrize("where", ["127.0.0.1:8000", "[::1]:8000"])
def test_start_backend_refuses_when_a_stranger_holds_8000(ns, tmp_path, python_edge, where):
    if "::" in where and not HAVE_IPV6:
        pytest.skip("no IPv6 here")
    stranger = ns.spawn(Proc(["python3", "-m", "http.server", "8000"], listen=where))
    env = {"PROCCLEAN_BACKEND_COMMAND": "touch backend-was-started"}
    r = ns.procclean("start-backend", python=python_edge, env=env)
    assert r.rc == 1, r
    no_traceback(r)
    assert str(stranger.pid) in r.output and "8000" in r.output, r
    assert not (tmp_path / "backend-was-started").exists(), r
    assert not (tmp_path / "backend.pid").exists(), r
    assert_alive(ns, [stranger.pid], r)


# Listens on 127.0.0.1:8000 half a second after it starts, without speaking HTTP.
SLOW_LISTENER = r"""
import socket, sys, time
print("booting, listening in 0.5 s")
sys.stdout.flush()
time.sleep(0.5)
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 8000))
s.listen(16)
print("listening on 8000")
sys.stdout.flush()
while True:
    time.sleep(3600)
"""

# The same, as an HTTP server that answers 200 on every path (a health check finds it).
SLOW_HTTP_SERVER = r"""
import sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok\n")
    def log_message(self, fmt, *args):
        sys.stdout.write("GET %s\n" % self.path)
        sys.stdout.flush()
print("booting, listening in 0.5 s")
sys.stdout.flush()
time.sleep(0.5)
server = HTTPServer(("127.0.0.1", 8000), Handler)
print("listening on 8000")
sys.stdout.flush()
server.serve_forever()
"""

NEVER_LISTENS = r"""
import sys, time
print("loading settings from .env")
print("connecting to database db:5432 ... retrying in 5s")
sys.stdout.flush()
time.sleep(3600)
"""


@pytest.mark.parametrize("setup", ["configured-port-only", "default-main-py-http"])
def test_start_wait_returns_once_the_port_listens(ns, tmp_path, python_edge, setup):
    if setup == "configured-port-only":
        # a server that does not speak HTTP: --wait is about the port alone
        write(tmp_path / "slow_server.py", SLOW_LISTENER)
        env = {"PROCCLEAN_BACKEND_COMMAND": "{python} slow_server.py",
               "PROCCLEAN_BACKEND_PATTERN": r"slow_server\.py",
               "PROCCLEAN_BACKEND_HEALTH": "off"}
    else:
        # the built-in backend: `<python> main.py` in backend/ when backend/main.py exists;
        # its health check (auto) finds the HTTP server
        (tmp_path / "backend").mkdir()
        write(tmp_path / "backend" / "main.py", SLOW_HTTP_SERVER)
        env = {}
    r = ns.procclean("start-backend", "--wait", "--timeout", "20", python=python_edge,
                     env=env, timeout=40)
    # it returned only once the port listens
    listening_now = ns.connect("127.0.0.1", 8000)
    assert r.rc == 0, r
    no_traceback(r)
    assert listening_now, r
    pid = int((tmp_path / "backend.pid").read_text().strip())
    assert ns.is_alive(pid), r
    assert str(pid) in r.stdout, r
    st = ns.procclean("status", "backend", python=python_edge, env=env)
    assert st.rc == 0, st
    line = [l for l in st.stdout.splitlines() if "8000" in l and "port" in l.lower()]
    assert line and "listening" in line[0] and str(pid) in line[0], st
    assert "not backend" not in line[0], st
    assert "listening on 8000" in (tmp_path / "backend.log").read_text()
    # and the whole life cycle closes: stop frees the port
    s = ns.procclean("stop-backend", python=python_edge, env=env)
    assert s.rc == 0, s
    assert_dead(ns, [pid], s)
    assert_port_free(ns, "127.0.0.1", 8000, s)


def test_start_wait_timeout_shows_the_log_and_fails(ns, tmp_path, python_edge):
    write(tmp_path / "stuck_server.py", NEVER_LISTENS)
    env = {"PROCCLEAN_BACKEND_COMMAND": "{python} stuck_server.py",
           "PROCCLEAN_BACKEND_PATTERN": r"stuck_server\.py"}
    r = ns.procclean("start-backend", "--wait", "--timeout", "1", python=python_edge,
                     env=env, timeout=30)
    assert not r.timed_out, r
    assert r.rc == 1, r
    no_traceback(r)
    assert "8000" in r.stderr, r
    assert "connecting to database db:5432 ... retrying in 5s" in r.stderr, r
    assert "loading settings from .env" in r.stderr, r
    assert not ns.connect("127.0.0.1", 8000)
