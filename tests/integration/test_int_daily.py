"""A developer's day as make runs it (start, status, stop, dev, clean), black-box inside PID
namespaces: what a real app does that the other files' stand-ins did not (an app whose
start-up takes its time before it fails, ...). Every assertion is on what the user sees:
exit codes, messages, pidfiles, processes; events awaited, never slept for."""
from integ_helpers import no_traceback, nothing_left, write

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
