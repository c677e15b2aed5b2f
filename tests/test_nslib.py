"""The namespace harness itself: if these fail, no integration test can be trusted."""
import os
import signal
import time

import pytest

from nslib import Namespace, Proc


def test_agent_is_pid1_of_a_private_namespace(ns):
    assert ns.hello["pid"] == 1
    # only the agent is there: none of the machine's processes are visible
    assert ns.ps_pids() == [1]
    r = ns.run(["ps", "-ef"])
    assert r.rc == 0, r
    lines = r.stdout.splitlines()[1:]
    pids = sorted(int(l.split()[1]) for l in lines)
    assert pids[0] == 1 and len(pids) == 2, r.stdout  # the agent and ps itself


def test_spawn_tree_shows_exact_argv(ns):
    root = ns.spawn(Proc(["uvicorn", "main:app", "--reload"], children=[
        Proc(["python3", "-c", "from multiprocessing.spawn import spawn_main; spawn_main()"],
             children=[Proc(["worker-grandchild"])])]))
    pids = root.pids()
    assert all(isinstance(p, int) and p > 1 for p in pids)
    assert len(set(pids)) == 3
    table = {p["pid"]: p for p in ns.ps()}
    assert table[root.pid]["argv"] == ["uvicorn", "main:app", "--reload"]
    assert table[root.pid]["ppid"] == 1
    assert table[root.children[0].pid]["ppid"] == root.pid
    assert table[root.children[0].children[0].pid]["ppid"] == root.children[0].pid
    r = ns.run(["ps", "-ef"])
    assert "uvicorn main:app --reload" in r.stdout
    assert "python3 -c from multiprocessing.spawn import spawn_main; spawn_main()" in r.stdout
    assert sorted(ns.alive(pids)) == sorted(pids)


def test_alive_after_kill_by_pid_and_orphans_reaped(ns):
    root = ns.spawn(Proc(["parent-x"], children=[Proc(["child-y"])]))
    child = root.children[0]
    ns.kill(root.pid, signal.SIGKILL)
    assert ns.wait_dead([root.pid]) == []
    assert ns.alive([root.pid, child.pid]) == [child.pid]
    # the orphan was re-parented to the agent
    assert {p["pid"]: p["ppid"] for p in ns.ps()}[child.pid] == 1
    ns.kill(child.pid, signal.SIGTERM)
    assert ns.wait_dead([child.pid]) == []
    # reaped by the agent: gone from /proc entirely, not a zombie
    deadline = time.time() + 2
    while ns.state(child.pid) is not None and time.time() < deadline:
        time.sleep(0.01)
    assert ns.state(child.pid) is None


def test_zombie_counts_as_dead(ns):
    parent = ns.zombie(["zparent"], ["zchild"])
    z = parent.children[0].pid
    assert ns.state(z) == "Z"
    assert ns.alive([parent.pid, z]) == [parent.pid]
    assert not ns.is_alive(z)
    r = ns.run(["ps", "-ef"])
    assert "<defunct>" in r.stdout


def test_term_behaviours(ns):
    default = ns.spawn(Proc(["t-default"]))
    ignore = ns.spawn(Proc(["t-ignore"], term="ignore"))
    delay = ns.spawn(Proc(["t-delay"], term="delay:1500"))
    ns.kill([default.pid, ignore.pid, delay.pid], signal.SIGTERM)
    # default dead: the SIGTERMs have landed; delay exits 1.5 s after its own
    assert ns.wait_dead([default.pid], 2) == []
    assert ns.alive([ignore.pid, delay.pid]) == [ignore.pid, delay.pid]
    assert ns.wait_dead([delay.pid], 10) == []
    assert ns.alive([ignore.pid]) == [ignore.pid]
    ns.kill(ignore.pid, signal.SIGKILL)
    assert ns.wait_dead([ignore.pid]) == []


def _living(ns, name):
    return [p["pid"] for p in ns.ps() if p["argv"] == [name] and p["state"] != "Z"]


def _wait_for(cond, timeout=10):
    deadline = time.time() + timeout
    while not cond():
        assert time.time() < deadline, "timed out"
        time.sleep(0.01)


def test_catch_sigterm_and_fork_children_on_it(ns):
    p = ns.spawn(Proc(["catcher"], term="catch", onterm=[Proc(["late-1"]), Proc(["late-2"])]))
    assert p.pids() == [p.pid]                  # onterm children are not started by spawn
    assert _living(ns, "late-1") == [] and _living(ns, "late-2") == []
    ns.kill([p.pid], signal.SIGTERM)
    _wait_for(lambda: _living(ns, "late-1") and _living(ns, "late-2"))
    assert ns.is_alive(p.pid)                   # catch: SIGTERM does not end it
    table = {q["pid"]: q for q in ns.ps()}
    assert table[_living(ns, "late-1")[0]]["ppid"] == p.pid


def test_fork_on_sigterm_then_exit_after_a_delay(ns):
    p = ns.spawn(Proc(["leaver"], term="delay:50", onterm=[Proc(["orphan"])]))
    ns.kill([p.pid], signal.SIGTERM)
    assert ns.wait_dead([p.pid], 10) == []
    orphans = _living(ns, "orphan")
    assert len(orphans) == 1
    assert [q["ppid"] for q in ns.ps() if q["pid"] == orphans[0]] == [1]


def test_respawn_the_worker(ns):
    master = ns.spawn(Proc(["master"], term="ignore", respawn=True, children=[Proc(["wrk"])]))
    first = master.children[0].pid
    ns.kill([first], signal.SIGTERM)
    _wait_for(lambda: [w for w in _living(ns, "wrk") if w != first])
    second = _living(ns, "wrk")
    assert first not in second and len(second) == 1
    assert [q["ppid"] for q in ns.ps() if q["pid"] == second[0]] == [master.pid]
    assert ns.is_alive(master.pid)


@pytest.mark.parametrize("addr,host", [("127.0.0.1:8000", "127.0.0.1"),
                                       ("0.0.0.0:8000", "127.0.0.1"),
                                       ("[::1]:8000", "::1"), ("[::]:8000", "::1")])
def test_listener_reachable_on_loopback(ns, addr, host):
    if ":" in host and not os.path.exists("/proc/net/if_inet6"):
        pytest.skip("no IPv6 here")
    srv = ns.spawn(Proc(["uvicorn", "main:app"], listen=addr))
    assert ns.connect(host, 8000)
    assert not ns.connect(host, 8001)
    cli = ns.spawn(Proc(["client-z"], connect=host + ":8000" if ":" not in host
                        else "[%s]:8000" % host))
    assert ns.is_alive(cli.pid)
    r = ns.run(["ss", "-Htanp"]) if os.path.exists("/usr/bin/ss") or os.path.exists("/bin/ss") \
        else None
    if r is not None and r.rc == 0:
        assert "pid=%d" % srv.pid in r.stdout and "pid=%d" % cli.pid in r.stdout, r.stdout


def test_inherited_listener(ns):
    srv = ns.spawn(Proc(["uvicorn", "main:app", "--reload"], listen="127.0.0.1:8000",
                        inherit=True, children=[Proc(["worker-w"])]))
    ns.kill(srv.pid, signal.SIGKILL)
    ns.wait_dead([srv.pid])
    # the worker still holds the socket
    assert ns.connect("127.0.0.1", 8000)
    ns.kill(srv.children[0].pid)
    ns.wait_dead([srv.children[0].pid])
    assert not ns.connect("127.0.0.1", 8000)


def test_http_answering_listener(ns):
    srv = ns.spawn(Proc(["node", "vite"], listen=["127.0.0.1:3000", "[::1]:3000"], http=200,
                        term="delay:50"))
    probe = ("import urllib.request as u; print(u.urlopen('http://127.0.0.1:3000/health', "
             "timeout=3).status)")
    r = ns.run(["python3", "-c", probe])
    assert r.rc == 0 and r.stdout.strip() == "200", r
    ns.kill(srv.pid, signal.SIGTERM)
    assert ns.wait_dead([srv.pid]) == []


def test_real_program_child_and_run_outputs(ns, tmp_path):
    root = ns.spawn(Proc(["npm", "run", "dev"], children=[
        Proc(["sh", "-c", "sleep 1000"], path="/bin/sh")]))
    table = {p["pid"]: p for p in ns.ps()}
    assert table[root.children[0].pid]["argv"][:2] == ["sh", "-c"]
    r = ns.run(["sh", "-c", "printf 'a\\377b\\n'; echo err >&2; pwd; exit 3"])
    assert r.rc == 3
    assert r.stdout_bytes.startswith(b"a\xffb")
    assert r.stdout.splitlines()[0] == "a\udcffb"
    assert r.stdout.strip().endswith(str(tmp_path))
    assert r.stderr == "err\n"
    r = ns.run(["cat"], input="hello")
    assert r.stdout == "hello"
    r = ns.run(["sleep", "30"], timeout=0.5)
    assert r.timed_out


def test_non_utf8_argv(ns):
    p = ns.spawn(Proc(["python3", "main\udcff.py"]))
    table = {x["pid"]: x for x in ns.ps()}
    assert table[p.pid]["argv"] == ["python3", "main\udcff.py"]
    r = ns.run(["cat", "/proc/%d/cmdline" % p.pid])
    assert r.stdout_bytes == b"python3\0main\xff.py\0"


def test_environment_is_cleaned(ns, monkeypatch):
    r = ns.run(["env"])
    keys = {l.split("=", 1)[0] for l in r.stdout.splitlines()}
    assert not any(k.startswith("PROCCLEAN_") for k in keys)
    assert "COLUMNS" not in keys and "PS_FORMAT" not in keys
    r = ns.run(["env"], env={"COLUMNS": "80"})
    assert "COLUMNS=80" in r.stdout.splitlines()


def test_signal_a_running_job(ns, tmp_path):
    job = ns.start(["sh", "-c", "trap 'echo got-int; exit 130' INT; : > ready; sleep 5 & wait"])
    deadline = time.time() + 10         # the trap is set once `ready` exists
    while not (tmp_path / "ready").exists():
        assert time.time() < deadline, "the job never got going"
        time.sleep(0.01)
    job.signal(signal.SIGINT)
    r = job.wait(10)
    assert r.rc == 130 and "got-int" in r.stdout, r


def test_spawn_many(ns):
    pids = ns.spawn_many([["node", "server-%d.js" % i] for i in range(200)]
                         + [Proc(["python3", "x.py"], term="ignore")] * 1)
    assert len(set(pids)) == 201
    assert len(ns.alive(pids)) == 201
    ns.kill(pids[:200], signal.SIGTERM)
    assert ns.wait_dead(pids[:200]) == []
    witness = ns.spawn(Proc(["t-witness"]))
    ns.kill(pids[200:] + [witness.pid], signal.SIGTERM)
    assert ns.wait_dead([witness.pid]) == []      # the SIGTERMs have landed
    assert ns.alive(pids[200:]) == pids[200:]


def test_everything_dies_with_the_namespace(tmp_path):
    ok, reason = Namespace.available()
    if not ok:
        pytest.skip(reason)
    with Namespace(cwd=tmp_path) as ns:
        ns.spawn(Proc(["uvicorn", "main:app"], term="ignore", children=[Proc(["k1"])]))
        unshare_pid = ns.proc.pid
        # the namespace's processes, as the host sees them: children of the unshare process
        try:
            with open("/proc/%d/task/%d/children" % (unshare_pid, unshare_pid)) as f:
                agent_host_pid = int(f.read().split()[0])
        except (OSError, IndexError, ValueError):
            pytest.skip("no /proc/PID/task/TID/children here")
    assert not os.path.exists("/proc/%d" % unshare_pid) or _zombie_or_gone(unshare_pid)
    deadline = time.time() + 5
    while os.path.exists("/proc/%d" % agent_host_pid) and time.time() < deadline:
        time.sleep(0.02)
    assert not os.path.exists("/proc/%d" % agent_host_pid)


def _zombie_or_gone(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] in "ZX"
    except OSError:
        return True


def test_available_reports_reason():
    ok, reason = Namespace.available()
    assert isinstance(ok, bool)
    assert ok or reason
