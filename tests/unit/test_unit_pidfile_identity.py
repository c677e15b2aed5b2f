"""What a pidfile (or a supervisor's state file) names must still be this project's
service (issue 19 items 1 and 2), on the fake system: another project's process (by its
tag, or by its folder) is never a target because a pidfile names it, whatever the
pattern says; and the pidfile procclean itself wrote is trusted through the start it
recorded beside it (PIDFILE.start), not through the file's coarse mtime."""
import json
import os
import signal
import subprocess
import sys

import pytest

from fakes import FakeChild, FakeProc, FakeSystem, TickSystem, invoke
import procclean

TERM = signal.SIGTERM
WORKER_ENV = {"LANG": "C.UTF-8", "PROCCLEAN_SERVICES": "worker",
              "PROCCLEAN_WORKER_COMMAND": "python3 worker.py"}



class Launcher(FakeSystem):
    """A FakeSystem whose spawn starts a fake child (PID 700): no real process."""

    def spawn(self, argv, cwd, logfile, new_session=True, env=None):
        self.procs[700] = FakeProc(700, 1, " ".join(argv), start=2000.0 + self.now,
                                   term_delay=0)
        return FakeChild(700)


def signalled(system):
    return sorted(set(pid for _, pid, _ in system.sent))


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def set_mtime(path, wall):
    os.utime(path, (wall, wall))


# --------------------------------------------------------------------------------------------
# item 1: a pidfile's process must still be this project's

def other_checkouts_backend(b, tagged):
    tag = (b, "backend") if tagged else None
    return FakeProc(100, 1, "python3 main.py", cwd=os.path.join(b, "backend"), tag=tag,
                    start=1000.0)


@pytest.mark.parametrize("tagged", [True, False], ids=["tagged", "by-folder"])
def test_stop_leaves_another_checkouts_backend_the_pidfile_names(in_a, tagged):
    a, b = in_a
    write("backend.pid", "100\n")
    system = FakeSystem([other_checkouts_backend(b, tagged)])
    code, out, err = invoke(["stop", "backend"], system)
    assert code == 0, out + err
    assert system.sent == []
    assert "backend.pid: PID 100 is not this project's backend" in err, err
    assert (b if not tagged else "PROCCLEAN_PROJECT=%s" % b) in err, err
    # (a process in no project at all, a sleep in /tmp, is named as one outside it too)
    assert "but a process outside the project, or another project's or service's" in err
    assert "backend: left alone outside this project: PID 100 (" in out, out
    # stale for this project: removed, as a pidfile of a dead service is
    assert not os.path.exists("backend.pid")


def test_status_start_clean_and_doctor_agree_it_is_not_ours(in_a):
    a, b = in_a
    write("backend.pid", "100\n")
    system = Launcher([other_checkouts_backend(b, True)])
    code, out, err = invoke(["status", "backend", "--json"], system)
    record = json.loads(out)["services"][0]
    assert record["running"] is False and record["pids"] == [], out
    assert [o["pid"] for o in record["outside"]] == [100], out
    code, out, err = invoke(["doctor"], system)
    assert "names PID 100 (python3 main.py), another project's or service's process" in out, out
    code, out, err = invoke(["clean"], system)
    assert code == 0 and "kept" not in err, out + err
    assert not os.path.exists("backend.pid")
    write("backend.pid", "100\n")
    code, out, err = invoke(["start", "backend"], system)
    assert code == 0 and "started backend PID 700" in out, out + err
    assert system.sent == []


def test_a_pidfile_naming_another_service_of_this_project_is_not_trusted(in_a):
    """backend.pid left by a crash; its PID now names this project's frontend."""
    a, _ = in_a
    write("backend.pid", "100\n")
    system = FakeSystem([FakeProc(100, 1, "node /x/vite", tag=(a, "frontend"))])
    code, out, err = invoke(["stop", "backend"], system)
    assert code == 0, out + err
    assert system.sent == []
    assert "is not this project's backend" in err, err


def test_a_pidfile_naming_an_untagged_process_in_the_project_still_counts(in_a):
    """What the seed's recipes leave (`nohup python main.py & echo $! > backend.pid`)."""
    write("backend.pid", "100\n")
    system = FakeSystem([FakeProc(100, 1, "python3 main.py")])
    code, out, err = invoke(["stop", "backend"], system)
    assert code == 0 and signalled(system) == [100], out + err


def test_a_state_file_naming_another_projects_child_is_not_trusted(in_a):
    a, b = in_a
    with open("worker.pid.state", "w") as f:
        json.dump({"supervisor": 700, "child": 701, "state": "running",
                   "updated": 2000.0}, f)
    system = FakeSystem([FakeProc(701, 1, "python3 worker.py", start=1000.0,
                                  tag=(b, "worker"), cwd=b)])
    code, out, err = invoke(["stop", "worker"], system, environ=WORKER_ENV)
    assert code == 0, out + err
    assert system.sent == []


# --------------------------------------------------------------------------------------------
# item 2: the pidfile procclean wrote, against a coarse clock

def test_the_pidfile_procclean_wrote_is_trusted_whatever_its_mtime(in_a):
    """A worker (no pattern, no tag to read) started at 2000.5; the file system gave
    its pidfile an mtime 2 s earlier.  The start recorded beside it decides."""
    worker = FakeProc(100, 1, "python3 worker.py", start=2000.5)
    system = Launcher([worker])
    system.write_pidfile("worker.pid", 100)
    set_mtime("worker.pid", 1998.5)
    code, out, err = invoke(["start", "worker"], system, environ=WORKER_ENV)
    assert code == 0 and "already running (PID 100)" in out, out + err
    code, out, err = invoke(["stop", "worker"], system, environ=WORKER_ENV)
    assert code == 0, out + err
    assert signalled(system) == [100], out + err
    assert not os.path.exists("worker.pid") and not os.path.exists("worker.pid.start")


def test_a_reused_pid_is_never_trusted_even_when_the_mtime_says_so(in_a):
    """The worker procclean started (at 1000) is gone; its PID names a later process
    (2500), which the pidfile's mtime (the real clock, far later) would let pass."""
    system = FakeSystem([FakeProc(100, 1, "python3 worker.py", start=1000.0)])
    system.write_pidfile("worker.pid", 100)
    system.procs[100] = FakeProc(100, 1, "sshd: dev", start=2500.0)
    code, out, err = invoke(["stop", "worker"], system, environ=WORKER_ENV)
    assert code == 0, out + err
    assert system.sent == []
    assert "PID 100 now belongs to a process started after the pidfile" in err, err


def test_doctor_fix_removes_a_reused_pidfile_with_its_start_record(in_a):
    """A crashed run's pidfile whose PID names a later process: `doctor --fix` removed
    worker.pid and left worker.pid.start beside it (stop and clean remove both)."""
    system = FakeSystem([FakeProc(100, 1, "python3 worker.py", start=1000.0)])
    system.write_pidfile("worker.pid", 100)
    assert os.path.exists("worker.pid.start")
    system.procs[100] = FakeProc(100, 1, "sshd: dev", start=2500.0)
    code, out, err = invoke(["doctor", "--fix", "worker"], system, environ=WORKER_ENV)
    assert "removed worker.pid" in out, out + err
    assert system.sent == []
    assert not os.path.exists("worker.pid") and not os.path.exists("worker.pid.start")


@pytest.mark.parametrize("how", ["rewritten", "touched"])
def test_a_record_of_an_earlier_writing_does_not_call_the_pid_reused(in_a, how):
    """procclean wrote worker.pid (PID 100, started at 1000); it was written again since
    (the seed's recipe: `rm`, then `echo $! >`, often on the same inode) or touched: the
    old record does not say the new PID 100 is reused; its mtime decides as before."""
    system = FakeSystem([FakeProc(100, 1, "python3 worker.py", start=1000.0)])
    system.write_pidfile("worker.pid", 100)
    if how == "rewritten":
        os.remove("worker.pid")
        write("worker.pid", "100\n")
    set_mtime("worker.pid", 2001.0)
    system.procs[100] = FakeProc(100, 1, "python3 worker.py", start=1500.0)
    code, out, err = invoke(["stop", "worker"], system, environ=WORKER_ENV)
    assert signalled(system) == [100], out + err        # started before that mtime


def stat(pid, start_ticks):
    return procclean.ProcStat(pid, "x", "S", 1, pid, pid, 0, start_ticks, 1)


def proc(pid, start_ticks):
    return procclean.Process(pid, 1, "dev", "python3 worker.py", start_ticks=start_ticks)


def test_the_record_is_the_start_in_clock_ticks_and_this_boot(tmp_path):
    path = str(tmp_path / "worker.pid")
    system = TickSystem({500: stat(500, 12345)})
    system.write_pidfile(path, 500)
    with open(path) as f:
        assert f.read() == "500\n"          # the pidfile stays one decimal number
    info = system.read_pidfile(path)
    record = system.read_start_record(info)
    assert record["ticks"] == 12345 and record["boot"] == "boot-1", record
    assert system.is_recorded(proc(500, 12345), record) is True
    assert system.is_recorded(proc(500, 12346), record) is False      # one tick later
    system._boot_id = "boot-2"                                          # after a reboot
    assert system.is_recorded(proc(500, 12345), record) is False
    assert system.is_recorded(proc(500, 12345), None) is None


def test_a_record_others_can_write_is_not_read_as_root(tmp_path):
    path = str(tmp_path / "worker.pid")
    system = TickSystem({500: stat(500, 12345)})
    system.write_pidfile(path, 500)
    os.chmod(path + ".start", 0o666)
    system.euid = lambda: 0
    assert system.read_start_record(system.read_pidfile(path)) is None


@pytest.mark.parametrize("record", [
    {"ticks": 12345, "boot": "0b3c6e7a-1f2d-4c5e-9a8b-7c6d5e4f3a2b", "port": 8001, "pid": 500,
     "file": [1837465, 1733480000123456789]},
    {"start": 1733480000.25, "pid": 7, "file": [1, 2]},     # where there is no /proc
    {"ticks": -1, "boot": "", "pid": 0, "file": []},
])
def test_a_start_record_reads_as_json_reads_it(record):
    text = json.dumps(record)
    fast = procclean.parse_start_record(text)
    assert fast is None or fast == json.loads(text)
    assert (fast is None) == ("start" in record)    # a float: json reads it
    for broken in (text[:-1], text + ",", text.replace("}", ", }"), '{"pid": 01}'):
        assert procclean.parse_start_record(broken) is None


def test_a_running_services_record_is_read_without_json_or_re(tmp_path):
    # json imports re: 2-4 ms of every stop and status of a running service.
    path = str(tmp_path / "backend.pid")
    probe = ("import os, sys, procclean; s = procclean.System(); "
             "s.write_pidfile(%r, os.getpid(), 8001); "
             "sys.modules.pop('json', None); sys.modules.pop('re', None); "
             "r = s.read_start_record(s.read_pidfile(%r)); "
             "print(r['port'], 'json' in sys.modules, 're' in sys.modules)" % (path, path))
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.abspath(procclean.__file__)))
    out = subprocess.check_output([sys.executable, "-S", "-c", probe], env=env,
                                  universal_newlines=True)
    assert out.split() == ["8001", "False", "False"]
