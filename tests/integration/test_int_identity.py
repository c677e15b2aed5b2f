"""PID reuse, forced inside a PID namespace through /proc/sys/kernel/ns_last_pid (issue 12):
a pidfile whose PID now names a process that started after the pidfile was written is not
trusted, even when the new process started only a tenth of a second later."""
import os
import sys
import time

from integ_helpers import assert_alive, no_traceback, write
from nslib import Proc

REUSE = r"""
import os, sys
pid = int(sys.argv[1])
with open("/proc/sys/kernel/ns_last_pid", "w") as f:
    f.write(str(pid - 1))
child = os.fork()
if child == 0:
    os.setsid()
    os.execv("/bin/sleep", ["sleep", "1000"])
print(child)
"""


def take_pid(ns, pid):
    """Start `sleep 1000` as PID `pid` (free by now) in the namespace; its PID."""
    r = ns.run([sys.executable, "-c", REUSE, str(pid)])
    assert r.rc == 0, r
    return int(r.stdout.strip())


def test_pidfile_whose_pid_was_reused_a_moment_later_is_not_trusted(ns, tmp_path, python_edge):
    old = ns.spawn(Proc(["python3", "main.py"]))
    write(tmp_path / "backend.pid", "%d\n" % old.pid)
    ns.kill([old.pid])
    assert ns.wait_dead([old.pid], 10) == []
    time.sleep(0.1)        # the new process starts after the pidfile was written
    reused = take_pid(ns, old.pid)
    if reused != old.pid:
        import pytest
        pytest.skip("could not get PID %d again (got %d)" % (old.pid, reused))
    r = ns.procclean("stop-backend", "--grace", "0.5", python=python_edge)
    assert r.rc == 0, r
    no_traceback(r)
    assert_alive(ns, [reused], r)
    assert "PID %d now belongs to a process started after the pidfile" % reused in r.stderr, r
    assert not os.path.exists(str(tmp_path / "backend.pid")), r
