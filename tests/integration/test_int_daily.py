"""A developer's day as make runs it (start, status, stop, dev, clean), black-box inside PID
namespaces: what a real app does that the other files' stand-ins did not (an app whose
start-up takes its time before it fails, ...). Every assertion is on what the user sees:
exit codes, messages, pidfiles, processes; events awaited, never slept for."""
from integ_helpers import assert_alive, assert_dead, no_traceback, nothing_left, read, write
from nslib import Proc
from test_int_checkouts import make_project

# The seed's backend/main.py as a real app behaves when it cannot start: it computes (imports
# FastAPI and the app: a second of CPU, more on a busy machine), then fails without listening.
DIES_AFTER_ITS_IMPORTS = r'''
import sys, time
print("importing the app", flush=True)
end = time.process_time() + 1.0
while time.process_time() < end:
    pass
print("boom-daily: DATABASE_URL is not set", file=sys.stderr, flush=True)
sys.exit(3)
'''

# A backend that waits (for a database, say) before it listens, using no CPU meanwhile.
WAITS_QUIETLY = r'''
import time
print("waiting for the database", flush=True)
time.sleep(3600)
'''


def test_plain_start_of_an_app_that_dies_during_its_start_up_fails(ns, tmp_path, python_edge):
    """`make start-backend` (no --wait) of an app that dies after its imports: exit 1 with
    the log's last lines, nothing left, no pidfile; not `started` because it outlived the
    first half second."""
    (tmp_path / "backend").mkdir()
    write(tmp_path / "backend" / "main.py", DIES_AFTER_ITS_IMPORTS)
    r = ns.procclean("start-backend", python=python_edge)
    assert r.rc == 1, r
    no_traceback(r)
    assert "backend exited at once (status 3)" in r.stderr, r
    assert "boom-daily: DATABASE_URL is not set" in r.stderr, r       # the log's last lines
    assert "started backend" not in r.stdout, r
    assert nothing_left(ns) == []
    assert not (tmp_path / "backend.pid").exists()


def test_plain_start_of_an_app_that_waits_before_listening_says_so(ns, tmp_path, python_edge):
    """An app alive and idle, not listening yet: started (exit 0), with a line saying that
    its port does not listen yet; status tells the same."""
    (tmp_path / "backend").mkdir()
    write(tmp_path / "backend" / "main.py", WAITS_QUIETLY)
    r = ns.procclean("start-backend", python=python_edge)
    assert r.rc == 0, r
    assert "started backend PID" in r.stdout, r
    assert "backend does not listen on port 8000 yet" in r.stdout, r
    r = ns.procclean("status", "backend", python=python_edge)
    assert "backend: starting, PID" in r.stdout, r
    assert ns.procclean("stop", python=python_edge).rc == 0
    assert nothing_left(ns) == []


def test_status_and_stop_follow_the_port_the_backend_was_started_on(ns, tmp_path, python_edge):
    """`PROCCLEAN_BACKEND_PORT=8001 make start-backend`, then in another terminal without
    the variable: `make status` said `starting`, port 8000 taken by a stranger, while the
    backend answered on 8001.  It now looks where the backend was launched to listen:
    running on 8001, `--check` passes, `stop` stops it and leaves 8000's holder alone."""
    make_project(tmp_path)
    stranger = ns.spawn(Proc(["python3", "-m", "http.server", "8000"], cwd="/",
                             listen="127.0.0.1:8000"))
    r = ns.procclean("start", "--wait", "backend", env={"PROCCLEAN_BACKEND_PORT": "8001"},
                     python=python_edge)
    assert r.rc == 0 and "backend listens on port 8001" in r.stdout, r
    pid = int(read(tmp_path / "backend.pid"))
    r = ns.procclean("status", "backend", python=python_edge)
    assert r.rc == 0 and "backend: running, PID %d" % pid in r.stdout, r
    assert "port 8001: listening, PID %d" % pid in r.stdout, r
    assert "8000" not in r.stdout, r
    r = ns.procclean("status", "--check", "backend", python=python_edge)
    assert r.rc == 0, r
    r = ns.procclean("stop", "backend", python=python_edge)
    assert r.rc == 0, r
    no_traceback(r)
    assert "port 8000" not in r.stdout + r.stderr, r
    assert_dead(ns, [pid], r)
    assert_alive(ns, [stranger.pid], r)
    assert not (tmp_path / "backend.pid").exists()
    r = ns.procclean("status", "backend", python=python_edge)
    assert "backend: not running" in r.stdout and "port 8000: taken by PID %d" % stranger.pid \
        in r.stdout, r
