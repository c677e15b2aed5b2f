"""Differential tests: the seed's recipes (tests/seed/Makefile) against procclean.

The same population is spawned in two twin PID namespaces; in one the seed's recipe runs
(`make -f tests/seed/Makefile TARGET`, cwd = a tmp folder holding the pidfiles), in the other
`procclean.py TARGET`. For every target both have, both must leave the same processes alive
and the same files behind.

The population avoids the cases where procclean is *designed* to differ from the seed; each of
those has its own test below, which pins down what the seed does and what procclean does
instead:
  - procclean also stops non-matching descendants (a uvicorn --reload worker);
  - procclean waits for SIGTERM to take effect, and SIGKILLs what ignores it;
  - procclean never signals its own ancestors, even when their command line matches;
  - the seed misses long command lines when COLUMNS=80 is exported (ps cuts its listing);
  - force-clean also takes the pidfile's process (the seed's force-clean only greps);
  - procclean ignores a pidfile whose PID was reused; the seed kills whatever it names;
  - procclean never signals PID 1; the seed's `kill -0 1 && kill 1` does.

Everything runs inside throw-away PID namespaces (tests/nslib.py): neither the seed's
recipes nor procclean ever see the machine's real processes.
"""
import os
import sys
import time

import pytest

from nslib import Namespace, Proc, PROCCLEAN, REPO

SEED_MAKEFILE = os.path.join(REPO, "tests", "seed", "Makefile")

BACKEND = "backend"
FRONTEND = "frontend"

TARGETS = {
    # target: (services whose processes die, files removed)
    "stop-backend": ({BACKEND}, {"backend.pid"}),
    "stop-frontend": ({FRONTEND}, {"frontend.pid"}),
    "stop": ({BACKEND, FRONTEND}, {"backend.pid", "frontend.pid"}),
    "force-clean-backend": ({BACKEND}, {"backend.pid", "backend.log"}),
    "force-clean-frontend": ({FRONTEND}, {"frontend.pid", "frontend.log"}),
    "force-clean": ({BACKEND, FRONTEND}, {"backend.pid", "backend.log", "frontend.pid",
                                          "frontend.log"}),
}


@pytest.fixture(scope="module", autouse=True)
def _need_namespace_and_tools():
    ok, reason = Namespace.available()
    if not ok:
        pytest.skip(reason)
    import shutil
    for tool in ("make", "ps", "grep", "awk", "sh"):
        if not shutil.which(tool):
            pytest.skip("the seed's recipes need `%s`" % tool)


# ---------------------------------------------------------------------------------------------
# the population

def population():
    """[(label, service or None, Proc)]: roots to spawn; labels name every node."""
    return [
        # the pidfile names this one (it also matches the pattern)
        ("python main.py", BACKEND, Proc(["python", "main.py"])),
        ("uvicorn main:app", BACKEND, Proc(["/venv/bin/python3", "/venv/bin/uvicorn",
                                            "main:app", "--port", "8000"])),
        ("Python backend/main.py", BACKEND,
         Proc(["/Library/Frameworks/Python.framework/Versions/3.12/bin/Python",
               "backend/main.py"])),
        ("fastapi dev main.py", BACKEND, Proc(["fastapi", "dev", "main.py"])),
        # npm run dev -> node .../vite -> esbuild --service: every link matches the pattern
        ("npm run dev", FRONTEND, Proc(["npm", "run", "dev"], children=[
            Proc(["node", "/app/web/node_modules/.bin/vite"], children=[
                Proc(["/app/web/node_modules/@esbuild/linux-x64/bin/esbuild",
                      "--service=0.21.5", "--ping"])])])),
        ("node frontend/server.mjs", FRONTEND, Proc(["node", "frontend/server.mjs"])),
        # both leave these: no match
        ("python3 other.py", None, Proc(["python3", "other.py"])),
        ("node server.js", None, Proc(["node", "server.js"])),
        ("vim main.py", None, Proc(["vim", "main.py"])),
        ("less frontend/README.md", None, Proc(["less", "frontend/README.md"])),
        # both leave these: they match, but their line contains "grep" (`grep -v grep`)
        ("grep python main.py", None, Proc(["grep", "--line-buffered", "python main.py"])),
        ("vite with grep", None, Proc(["node", "/app/web/node_modules/.bin/vite", "--config",
                                       "vite.grep.config.ts"])),
    ]


def node_labels(label, proc):
    """(label, node) for proc and its descendants."""
    out = []
    for i, node in enumerate(proc.walk()):
        out.append(("%s[%d]" % (label, i) if i else label, node))
    return out


def spawn_population(ns, folder):
    roots = population()
    ns.spawn_trees([p for _, _, p in roots])
    labels = {}     # label -> (pid, service)
    for label, service, proc in roots:
        for name, node in node_labels(label, proc):
            labels[name] = (node.pid, service)
    write(folder, "backend.pid", "%d\n" % roots[0][2].pid)
    write(folder, "frontend.pid", "%d\n" % roots[4][2].pid)
    write(folder, "backend.log", "INFO: Uvicorn running on http://127.0.0.1:8000\n")
    write(folder, "frontend.log", "VITE v7.0.0  ready in 300 ms\n")
    write(folder, "notes.txt", "not ours\n")
    return labels


# ---------------------------------------------------------------------------------------------
# helpers

def write(folder, name, text):
    with open(os.path.join(str(folder), name), "w") as f:
        f.write(text)


def files(folder):
    out = {}
    for name in sorted(os.listdir(str(folder))):
        with open(os.path.join(str(folder), name), "rb") as f:
            out[name] = f.read()
    return out


def settle(ns, pids, quiet=0.4, timeout=5.0):
    """The alive subset of pids once it has not changed for `quiet` seconds (the seed sends
    SIGTERM and returns without waiting: its victims die a moment later)."""
    pids = list(pids)
    deadline = time.time() + timeout
    last, since = None, time.time()
    while True:
        now = ns.alive(pids)
        if now != last:
            last, since = now, time.time()
        elif time.time() - since >= quiet or time.time() > deadline:
            return now
        time.sleep(0.02)


def run_seed(ns, target, folder, env=None, timeout=30):
    return ns.run(["make", "-f", SEED_MAKEFILE, target], cwd=folder, env=env, timeout=timeout)


def run_procclean(ns, target, folder, *args, **kw):
    # The seed's machine-wide matching: --everywhere.
    return ns.procclean(target, "--everywhere", *args, cwd=folder, **kw)


class Twins(object):
    """Two namespaces, each with its own working folder: .seed and .pc."""

    def __init__(self, tmp_path):
        self.seed_dir = tmp_path / "seed"
        self.pc_dir = tmp_path / "procclean"
        self.seed_dir.mkdir()
        self.pc_dir.mkdir()
        self.seed = Namespace(cwd=self.seed_dir)
        self.pc = Namespace(cwd=self.pc_dir)

    def __enter__(self):
        self.seed.open()
        try:
            self.pc.open()
        except Exception:
            self.seed.close()
            raise
        return self

    def __exit__(self, *exc):
        try:
            self.pc.close()
        finally:
            self.seed.close()


@pytest.fixture
def twins(tmp_path):
    with Twins(tmp_path) as t:
        yield t


def alive_labels(ns, labels):
    by_pid = {pid: name for name, (pid, _) in labels.items()}
    return sorted(by_pid[p] for p in settle(ns, list(by_pid)))


# ---------------------------------------------------------------------------------------------
# the differential

@pytest.mark.parametrize("ps_source", ["proc", "ps"])
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_same_survivors_and_files(twins, target, ps_source):
    seed_labels = spawn_population(twins.seed, twins.seed_dir)
    pc_labels = spawn_population(twins.pc, twins.pc_dir)
    assert sorted(seed_labels) == sorted(pc_labels)

    rs = run_seed(twins.seed, target, twins.seed_dir)
    rp = run_procclean(twins.pc, target, twins.pc_dir, env={"PROCCLEAN_PS": ps_source})
    assert not rs.timed_out, rs
    assert rp.rc == 0, rp
    assert "Traceback" not in rp.output, rp

    seed_alive = alive_labels(twins.seed, seed_labels)
    pc_alive = alive_labels(twins.pc, pc_labels)
    assert pc_alive == seed_alive, "seed: %r\nprocclean: %r" % (rs, rp)
    seed_files = files(twins.seed_dir)
    pc_files = files(twins.pc_dir)
    assert set(pc_files) == set(seed_files), "seed: %r\nprocclean: %r" % (rs, rp)
    for name in seed_files:
        if name.endswith(".pid"):
            continue    # names a PID of its own namespace
        # Intended difference: procclean adds one line of its own to a service's log
        # saying what it stopped (issue 7); everything else is left byte for byte.
        own = [l for l in pc_files[name].splitlines(True) if l.startswith(b"[procclean ")]
        rest = b"".join(l for l in pc_files[name].splitlines(True)
                        if not l.startswith(b"[procclean "))
        assert rest == seed_files[name], name
        if name.endswith(".log") and seed_files[name] != b"":
            assert len(own) <= 1 and all(b"stop: PID " in l for l in own), own

    # and it is the right answer, not just the same one
    services, removed = TARGETS[target]
    expected_alive = sorted(l for l, (_, svc) in pc_labels.items() if svc not in services)
    assert pc_alive == expected_alive
    expected_files = {"backend.pid", "frontend.pid", "backend.log", "frontend.log",
                      "notes.txt"} - removed
    assert set(pc_files) == expected_files


# Command lines with unusual bytes: `ps` shows control characters as "?", and `grep` sees one
# line per process. The two tools must still agree on who matches.
ODD_ARGVS = {
    "tab": ["python\tmain.py"],
    "carriage-return": ["python", "main.py\r"],
    "escape-sequence": ["python", "\x1b[31mmain.py"],
    "utf-8": ["python", "后端/main.py"],
    "invalid-utf-8": ["python", "caf\udce9/main.py"],
    "empty-arguments": ["python", "", "", "main.py"],
    "long": ["python"] + ["x" * 200] * 30 + ["main.py"],
    "Grep-capitalised": ["python", "main.py", "--Grep"],
    "newline": ["python", "-c", "import runpy\nrunpy.run_path('main.py')"],
}


@pytest.mark.parametrize("ps_source", ["proc", "ps"])
@pytest.mark.parametrize("case", sorted(ODD_ARGVS))
def test_odd_command_lines_same_verdict(twins, case, ps_source, request):
    argv = ODD_ARGVS[case]
    s = twins.seed.spawn(Proc(argv))
    p = twins.pc.spawn(Proc(argv))
    rs = run_seed(twins.seed, "stop-backend", twins.seed_dir)
    rp = run_procclean(twins.pc, "stop-backend", twins.pc_dir, env={"PROCCLEAN_PS": ps_source})
    assert rp.rc == 0 and "Traceback" not in rp.output, rp
    seed_alive = bool(settle(twins.seed, [s.pid]))
    pc_alive = bool(settle(twins.pc, [p.pid]))
    assert pc_alive == seed_alive, "seed %s, procclean %s\n%r\n%r" % (
        "left it" if seed_alive else "stopped it", "left it" if pc_alive else "stopped it",
        rs, rp)


def test_seed_messages_are_the_reference_wording(twins):
    """The transcription keeps the seed's Chinese echo lines."""
    spawn_population(twins.seed, twins.seed_dir)
    r = run_seed(twins.seed, "stop-backend", twins.seed_dir)
    assert "✅ 后端主进程已停止 (PID: " in r.stdout, r
    r = run_seed(twins.seed, "force-clean", twins.seed_dir)
    assert "🧹 强制清理所有后端进程..." in r.stdout, r


# ---------------------------------------------------------------------------------------------
# the intended differences, one by one

def uvicorn_reload():
    """uvicorn --reload: the reloader matches; its worker (multiprocessing spawn) does not."""
    return Proc(["/venv/bin/python3", "/venv/bin/uvicorn", "main:app", "--reload"], children=[
        Proc(["/venv/bin/python3", "-c",
              "from multiprocessing.spawn import spawn_main; "
              "spawn_main(tracker_fd=5, pipe_handle=7)", "--multiprocessing-fork"])])


@pytest.mark.parametrize("target", ["stop-backend", "force-clean-backend"])
def test_seed_leaves_the_reload_worker_procclean_stops_it(twins, target):
    s = twins.seed.spawn(uvicorn_reload())
    p = twins.pc.spawn(uvicorn_reload())
    run_seed(twins.seed, target, twins.seed_dir)
    rp = run_procclean(twins.pc, target, twins.pc_dir)
    assert rp.rc == 0, rp
    # seed: the reloader is gone, its non-matching worker is orphaned and keeps running
    assert settle(twins.seed, s.pids()) == [s.children[0].pid]
    # procclean: the whole tree, taken before any signal
    assert settle(twins.pc, p.pids()) == []


def test_seed_does_not_wait_for_term_procclean_does(twins):
    s = twins.seed.spawn(Proc(["uvicorn", "main:app"], term="delay:3000"))
    p = twins.pc.spawn(Proc(["uvicorn", "main:app"], term="delay:3000"))
    rs = run_seed(twins.seed, "stop-backend", twins.seed_dir)
    still = twins.seed.alive([s.pid])
    rp = run_procclean(twins.pc, "stop-backend", twins.pc_dir, "--grace", "20")
    after = twins.pc.alive([p.pid])
    # the seed returns while its target is still shutting down
    assert rs.rc == 0 and still == [s.pid], rs
    # procclean returns once it is gone, without needing SIGKILL for it
    assert rp.rc == 0 and after == [], rp
    assert 2.9 <= rp.elapsed < 20, rp     # (below its grace: no SIGKILL was needed)
    assert "SIGKILL" not in rp.output, rp
    assert twins.seed.wait_dead([s.pid], 10) == []


def test_seed_leaves_a_term_ignorer_procclean_kills_it(twins):
    s = twins.seed.spawn(Proc(["python", "main.py"], term="ignore"))
    # spawned after s (a higher PID, so signalled after it): dies of the seed's SIGTERM
    witness = twins.seed.spawn(Proc(["uvicorn", "main:app"]))
    p = twins.pc.spawn(Proc(["python", "main.py"], term="ignore"))
    run_seed(twins.seed, "stop-backend", twins.seed_dir)
    rp = run_procclean(twins.pc, "stop-backend", twins.pc_dir, "--grace", "0.3")
    assert rp.rc == 0, rp
    assert twins.pc.alive([p.pid]) == []
    # the witness dead is the event: the seed's signals have landed, s's among them
    assert twins.seed.wait_dead([witness.pid], 10) == []
    assert twins.seed.alive([s.pid]) == [s.pid]


def test_seed_kills_its_own_caller_procclean_does_not(twins):
    """A recipe line that mentions `python main.py` matches the backend pattern: the seed's
    ps | grep finds the shell that runs it and kills it; procclean protects its ancestors."""
    seed_cmd = "make -f %s stop-backend && echo python main.py restarted" % SEED_MAKEFILE
    pc_cmd = "%s %s stop-backend && echo python main.py restarted" % (sys.executable, PROCCLEAN)
    s = twins.seed.spawn(Proc(["python", "main.py"]))
    p = twins.pc.spawn(Proc(["python", "main.py"]))
    rs = twins.seed.run(["sh", "-c", seed_cmd], cwd=twins.seed_dir)
    rp = twins.pc.run(["sh", "-c", pc_cmd], cwd=twins.pc_dir)
    # seed: its own shell got SIGTERM, so what came after never ran
    assert rs.rc == -15, rs
    assert "restarted" not in rs.stdout, rs
    # procclean: the shell lives on and runs the rest of the line
    assert rp.rc == 0, rp
    assert "python main.py restarted" in rp.stdout, rp
    # both stopped the real backend
    assert settle(twins.seed, [s.pid]) == []
    assert settle(twins.pc, [p.pid]) == []


LONG_ARGV = ["/usr/bin/python3", "-X", "dev", "-W", "ignore",
             "/home/developer/projects/a-rather-long-project-name/backend/main.py"]


@pytest.mark.parametrize("target", ["stop-backend", "force-clean-backend"])
def test_seed_misses_long_lines_under_columns_80(twins, target):
    s = twins.seed.spawn(Proc(LONG_ARGV))
    p = twins.pc.spawn(Proc(LONG_ARGV))
    env = {"COLUMNS": "80"}
    rs = run_seed(twins.seed, target, twins.seed_dir, env=env)
    rp = run_procclean(twins.pc, target, twins.pc_dir, env=env)
    assert rp.rc == 0, rp
    # `ps -ef` cut at 80 columns: "main.py" is not in the line the seed greps
    assert settle(twins.seed, [s.pid]) == [s.pid], rs
    assert settle(twins.pc, [p.pid]) == [], rp


def _pidfile_backend(ns, folder, mtime_offset=0.0):
    """A backend started from its pidfile whose command matches no pattern, with a worker."""
    proc = ns.spawn(Proc(["gunicorn", "app:app", "-w", "1"], children=[
        Proc(["gunicorn-worker", "app:app"])]))
    path = os.path.join(str(folder), "backend.pid")
    write(folder, "backend.pid", "%d\n" % proc.pid)
    if mtime_offset:
        t = time.time() + mtime_offset
        os.utime(path, (t, t))
    return proc


def pidfile_twins(twins, command, mtime_offset=0):
    """A pidfile backend in each twin, `command` run by both: (the seed's backend,
    procclean's, the seed's result, procclean's)."""
    s = _pidfile_backend(twins.seed, twins.seed_dir, mtime_offset=mtime_offset)
    p = _pidfile_backend(twins.pc, twins.pc_dir, mtime_offset=mtime_offset)
    return (s, p, run_seed(twins.seed, command, twins.seed_dir),
            run_procclean(twins.pc, command, twins.pc_dir))


def test_pidfile_backend_stop_seed_kills_only_the_named_pid(twins):
    s, p, _, rp = pidfile_twins(twins, "stop-backend")
    assert rp.rc == 0, rp
    # both trust the pidfile; the seed leaves its worker, procclean takes the tree
    assert settle(twins.seed, s.pids()) == [s.children[0].pid]
    assert settle(twins.pc, p.pids()) == []
    assert not os.path.exists(str(twins.seed_dir / "backend.pid"))
    assert not os.path.exists(str(twins.pc_dir / "backend.pid"))


def test_force_clean_seed_ignores_the_pidfile_procclean_takes_it(twins):
    s, p, _, rp = pidfile_twins(twins, "force-clean-backend")
    assert rp.rc == 0, rp
    # the seed's force-clean only greps: the pidfile's process (no match) survives, and the
    # pidfile that named it is deleted anyway
    assert settle(twins.seed, s.pids()) == s.pids()
    assert not os.path.exists(str(twins.seed_dir / "backend.pid"))
    # procclean: the pidfile's process and its tree (SPEC: the same targets as stop)
    assert settle(twins.pc, p.pids()) == []
    assert not os.path.exists(str(twins.pc_dir / "backend.pid"))


def test_reused_pid_seed_kills_it_procclean_leaves_it(twins):
    """The pidfile was written a minute before its PID went to an unrelated process."""
    s, p, rs, rp = pidfile_twins(twins, "stop-backend", mtime_offset=-60)
    assert "后端主进程已停止 (PID: %d)" % s.pid in rs.stdout, rs
    assert settle(twins.seed, [s.pid]) == []
    assert rp.rc == 0, rp
    assert settle(twins.pc, p.pids()) == p.pids()
    assert "backend.pid" in rp.output, rp


def test_pidfile_naming_pid_1(twins):
    """`kill -0 1 && kill 1`: the seed signals PID 1 (init ignores it inside a namespace, not
    always outside) and reports it stopped; procclean refuses and says why."""
    write(twins.seed_dir, "backend.pid", "1\n")
    write(twins.pc_dir, "backend.pid", "1\n")
    rs = run_seed(twins.seed, "stop-backend", twins.seed_dir)
    rp = run_procclean(twins.pc, "stop-backend", twins.pc_dir)
    assert "后端主进程已停止 (PID: 1)" in rs.stdout, rs
    assert rp.rc == 0, rp
    assert "backend.pid" in rp.output and "Traceback" not in rp.output, rp
    assert "stopped backend PID 1" not in rp.output, rp
    # both remove the file
    assert not os.path.exists(str(twins.seed_dir / "backend.pid"))
    assert not os.path.exists(str(twins.pc_dir / "backend.pid"))


def test_pidfile_with_two_pids_seed_kills_both_procclean_neither(twins):
    """`kill -0 $PID` with PID="A B" checks and signals both; procclean takes a pidfile only as
    one decimal number (SPEC, "Never"): it warns, removes the file, signals nothing."""
    def two(ns, folder):
        a = ns.spawn(Proc(["gunicorn", "app:app"]))
        b = ns.spawn(Proc(["sleep", "infinity"]))
        write(folder, "backend.pid", "%d %d\n" % (a.pid, b.pid))
        return [a.pid, b.pid]
    s = two(twins.seed, twins.seed_dir)
    p = two(twins.pc, twins.pc_dir)
    run_seed(twins.seed, "stop-backend", twins.seed_dir)
    rp = run_procclean(twins.pc, "stop-backend", twins.pc_dir)
    assert settle(twins.seed, s) == []
    assert rp.rc == 0 and "backend.pid" in rp.output, rp
    assert settle(twins.pc, p) == p
    assert not os.path.exists(str(twins.seed_dir / "backend.pid"))
    assert not os.path.exists(str(twins.pc_dir / "backend.pid"))
