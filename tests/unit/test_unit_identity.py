"""Identity of a process (issue 12): start times compared at the precision the system
gives, never with a slack that a reused PID fits in."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fakes import TickSystem  # noqa: E402
import procclean  # noqa: E402

HZ = TickSystem.HZ


def stat(pid, start_ticks, state="S"):
    return procclean.ProcStat(pid, "x", state, 1, pid, pid, 0, start_ticks, 1)


def proc(pid, start_ticks):
    return procclean.Process(pid, 1, "dev", "python main.py", start_ticks=start_ticks,
                             start=1000.0 + start_ticks / float(HZ))


def test_a_pid_reused_one_tick_later_is_not_still_running():
    # The old check accepted start times up to 1.0 s apart: 100 ticks.
    system = TickSystem({500: stat(500, 12346)})
    assert system.still_running([proc(500, 12345)]) == []


def test_the_same_process_is_still_running_and_a_zombie_is_not():
    system = TickSystem({500: stat(500, 12345), 501: stat(501, 7, state="Z")})
    assert [p.pid for p in system.still_running([proc(500, 12345), proc(501, 7)])] == [500]


def test_a_zombie_first_thread_whose_other_threads_still_exit_is_still_running():
    """A killed multi-threaded process (node, a uvicorn worker) shows as a zombie once its
    first thread is gone, while the others still tear down and hold its sockets: stop
    called it stopped and the port it just freed "held by a process procclean cannot see"."""
    system = TickSystem({502: procclean.ProcStat(502, "node", "Z", 1, 502, 502, 0, 9, 0,
                                                 threads=3)})
    assert [p.pid for p in system.still_running([proc(502, 9)])] == [502]


THREAD_LEFT = """import ctypes, sys, threading
threading.Thread(target=sys.stdin.read).start()
print("ready", flush=True)
ctypes.CDLL(None).pthread_exit(None)
"""


def test_a_real_process_whose_first_thread_exited_runs_until_its_last_thread_ends():
    import subprocess
    system = procclean.System()
    if not system.has_proc():
        import pytest
        pytest.skip("no /proc here")
    child = subprocess.Popen([sys.executable, "-c", THREAD_LEFT], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline() == b"ready\n"
        me = system.process_table()[child.pid]
        deadline = time.monotonic() + 60
        while system.proc_stat(child.pid).state != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert system.proc_stat(child.pid).state == "Z"        # as ps shows it
        assert system.still_running([me]) == [me]
        child.stdin.close()                 # the other thread returns: the process ends
        while system.proc_stat(child.pid).threads > 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert system.still_running([me]) == []
    finally:
        child.stdin.close()
        child.wait()


def test_same_process_before_a_signal_compares_ticks():
    system = TickSystem({500: stat(500, 12345)})
    assert system.same_process(proc(500, 12345))
    assert not system.same_process(proc(500, 12344))
    assert not TickSystem({}).same_process(proc(500, 12345))


def test_pidfile_written_a_tenth_of_a_second_before_a_reused_pid_started():
    # boot at 1000.0; the process started 123.46 s after boot; the pidfile was written
    # 0.1 s earlier.  The old check (start <= mtime + 1.0) trusted it.
    system = TickSystem({})
    reused = proc(500, 12346)
    assert system.started_by(reused, 1000.0 + 123.36) is False
    # written after the process started (what `start` does): trusted
    assert system.started_by(reused, 1000.0 + 123.47) is True
    # the same clock tick is the finest the kernel tells: counted as before
    assert system.started_by(reused, 1000.0 + 123.465) is True


def test_a_pidfile_written_just_after_its_process_by_a_recipe_counts_it_as_before():
    """`CMD & echo $! > PIDFILE`: written a millisecond after CMD started, but its mtime,
    from the kernel's coarse clock (a jiffy behind), reads half a millisecond before CMD's
    start tick: CMD still started by the pidfile's writing, not a reused PID."""
    system = TickSystem({})
    cmd = proc(500, 12346)                  # started at 123.460-123.4699 s after boot
    assert system.started_by(cmd, 1000.0 + 123.4595) is True
    assert system.started_by(cmd, 1000.0 + 123.40) is False     # 60 ms before: reused


def test_stop_leaves_a_process_whose_pid_was_reused_after_the_table(tmp_path, monkeypatch):
    """The table says PID 100 is the backend; by the time of the signal the PID names
    a newer process: it gets no signal at all."""
    monkeypatch.chdir(tmp_path)
    from fakes import FakeProc, FakeSystem, invoke

    class Reused(FakeSystem):
        def same_process(self, p):
            return p.pid != 100

    system = Reused([FakeProc(100, 1, "python main.py"), FakeProc(101, 1, "uvicorn main:app")])
    code, out, err = invoke(["stop-backend"], system)
    assert code == 0, err
    assert [pid for _, pid, _ in system.sent] == [101]
    assert "PID 100 had already exited" in out
