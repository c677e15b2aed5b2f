"""Issue 12 (reliability) on a fake machine: files opened only when regular and never
waited on, configs with a byte-order mark, removals that fail without ending the report,
service locks (flock and the O_EXCL fallback), status --check's reasons, and the ends of
status --watch."""
import errno
import fcntl
import io
import os

import pytest

from fakes import FakeChild, FakeProc, FakeSystem, RealLocks, invoke
import procclean


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- files -------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["fifo", "folder", "link"])
def test_only_regular_files_are_opened_and_nothing_blocks(in_tmp, kind):
    (in_tmp / "real.txt").write_text("text\n")
    if kind == "fifo":
        os.mkfifo("odd")
        words = "a FIFO, not a regular file"
    elif kind == "folder":
        os.mkdir("odd")
        words = "a folder, not a regular file"
    else:
        os.symlink("real.txt", "odd")
        words = "a symbolic link, not a regular file"
    for flags in (os.O_RDONLY, os.O_WRONLY | os.O_APPEND | os.O_CREAT, os.O_RDWR):
        with pytest.raises(OSError) as error:
            procclean.open_regular("odd", flags, nofollow=True)
        assert error.value.strerror == words
    if kind == "link":      # followed where that does not matter
        assert procclean.read_regular("odd") == b"text\n"
    else:
        assert procclean._read_text("odd") is None
    with pytest.raises(OSError) as error:
        procclean.read_regular("missing")
    assert error.value.errno == errno.ENOENT


def test_logs_and_state_that_are_fifos_are_noted_not_waited_on(in_tmp):
    os.mkfifo("backend.log")
    os.mkfifo("backend.pid.state")
    system = procclean.System()
    system.append_log("backend.log", "stop: PID 5 stopped by SIGTERM")
    assert system.tail("backend.log") == []
    assert system.read_state("backend.pid.state") == {}
    with pytest.raises(OSError):
        system.spawn(["true"], ".", "backend.log")
    system.rotate_log("backend.log")
    assert sorted(os.listdir(".")) == ["backend.log", "backend.pid.state"]
    assert [(k, v["path"]) for k, v in system.notes] == [
        ("file_ignored", "backend.log"), ("file_ignored", "backend.pid.state")]


def test_a_folder_is_never_rotated_as_a_log(in_tmp):
    os.mkdir("backend.log")
    (in_tmp / "backend.log" / "x").write_text("x" * 100)
    procclean.System().rotate_log("backend.log")
    assert sorted(os.listdir(".")) == ["backend.log"]


def test_a_config_with_a_byte_order_mark_is_read(in_tmp):
    (in_tmp / "procclean.ini").write_bytes(b"\xef\xbb\xbf[backend]\nport = 8123\n")
    config = procclean.load_config(environ={})
    assert config.services["backend"].port == 8123


def test_a_fifo_config_is_a_usage_error_not_a_hang(in_tmp):
    os.mkfifo("procclean.ini")
    with pytest.raises(procclean.ProcCleanError) as error:
        procclean.load_config(environ={})
    assert error.value.code == 2
    assert "procclean.ini: a FIFO, not a regular file" in str(error.value)


def test_read_text_drops_a_byte_order_mark(in_tmp):
    (in_tmp / "package.json").write_bytes(b'\xef\xbb\xbf{"scripts": {"dev": "vite"}}')
    assert procclean._read_text("package.json").startswith("{")


# -- removals ----------------------------------------------------------------------------

def _read_only(monkeypatch):
    """os.remove as on a read-only file system: EROFS before it even looks."""
    def remove(path):
        raise OSError(errno.EROFS, "Read-only file system", path)
    monkeypatch.setattr(os, "remove", remove)


def test_removing_what_is_not_there_succeeds_even_read_only(monkeypatch):
    _read_only(monkeypatch)
    system = procclean.System()
    assert system.remove_file("backend.pid.state") is False
    assert system.notes == []


@pytest.mark.parametrize("command", [["force-clean"], ["clean"], ["clean", "--dry-run"]])
def test_a_logfile_that_is_no_regular_file_is_never_removed(in_tmp, command):
    """`logfile = /dev/stdout` (init writes it from `> /dev/stdout`, a container's idiom)
    or /dev/null: as root, clean and force-clean removed the machine's /dev/stdout link
    or /dev/null device.  Modelled here by a link and a FIFO: both are left."""
    os.symlink("/dev/null", "stdout")
    os.mkfifo("frontend.fifo")
    (in_tmp / "backend.pid").write_text("100\n")
    system = FakeSystem([])
    code, out, err = invoke(command + ["--set", "backend.logfile=%s/stdout" % in_tmp,
                                       "--set", "frontend.logfile=frontend.fifo"], system)
    assert code == 0, out + err
    assert os.path.islink("stdout") and os.path.exists("frontend.fifo"), out + err
    assert "stdout" not in out + err and "fifo" not in out + err, out + err
    assert (in_tmp / "backend.pid").exists() == ("--dry-run" in command), out + err


def test_a_pidfile_is_never_written_in_the_place_of_a_device_or_fifo(in_tmp):
    """`pidfile = /dev/null` or /dev/stdout (init wrote them from `echo $! > /dev/null`):
    as root, the atomic write's rename put a regular file where the machine's /dev/null
    or /dev/stdout link was.  A FIFO stands in for the device, a link for /dev/stdout."""
    os.mkfifo("backend.pid")
    (in_tmp / "elsewhere.pid").write_text("1\n")
    os.symlink("elsewhere.pid", "frontend.pid")
    for path in ("backend.pid", "frontend.pid"):
        with pytest.raises(OSError) as error:
            procclean.System().write_pidfile(path, os.getpid())
        assert "not a regular file" in str(error.value)
    assert not os.path.isfile("backend.pid") and os.path.exists("backend.pid")
    assert os.path.islink("frontend.pid")
    assert (in_tmp / "elsewhere.pid").read_text() == "1\n"


def test_a_failed_removal_is_one_line_and_the_stop_goes_on(in_tmp, monkeypatch):
    (in_tmp / "backend.pid").write_text("100\n")
    system = FakeSystem([FakeProc(100, 1, "uvicorn main:app"),
                         FakeProc(200, 1, "npm run dev")])
    _read_only(monkeypatch)
    code, out, err = invoke(["stop"], system)
    assert code == 0, err
    assert "backend: 1 process(es) stopped" in out
    assert "frontend: 1 process(es) stopped" in out
    assert err.splitlines() == ["[warning] cannot remove backend.pid: Read-only file system"]


# -- locks -------------------------------------------------------------------------------

def _hold(path):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, b"%d\n" % os.getpid())
    return fd


def test_a_held_lock_makes_start_and_stop_wait_then_name_the_holder(in_tmp):
    fd = _hold("backend.pid.lock")
    try:
        for command in ("stop", "start", "restart", "force-clean", "clean"):
            system = RealLocks([FakeProc(100, 1, "uvicorn main:app")])
            code, out, err = invoke([command, "backend"], system)
            assert code == 1, (command, out, err)
            assert "backend: waiting for PID %d" % os.getpid() in err
            assert "backend: busy: PID %d (?) holds its lock backend.pid.lock; waited 5 s" \
                % os.getpid() in err
            assert system.sent == [], "nothing signalled without the lock"
            assert sum(system.sleeps) >= procclean.LOCK_WAIT
    finally:
        os.close(fd)
    system = RealLocks([FakeProc(100, 1, "uvicorn main:app")])
    code, out, err = invoke(["stop", "backend"], system)
    assert code == 0 and "stopped backend PID 100" in out, err
    assert os.listdir(".") == [], "the lock file goes with the lock"


def test_locks_are_taken_in_one_order_and_all_let_go_on_failure(in_tmp):
    fd = _hold("frontend.pid.lock")
    try:
        code, out, err = invoke(["stop", "frontend", "backend"], RealLocks([]))
        assert code == 1 and "frontend: busy" in err
    finally:
        os.close(fd)
    assert sorted(os.listdir(".")) == ["frontend.pid.lock"], "backend's lock was let go"


def test_dry_run_takes_no_lock(in_tmp):
    fd = _hold("backend.pid.lock")
    try:
        code, out, err = invoke(["--dry-run", "stop", "backend"],
                                RealLocks([FakeProc(100, 1, "uvicorn main:app")]))
    finally:
        os.close(fd)
    assert code == 0 and "would send SIGTERM" in out, err


def test_a_lock_file_that_is_a_fifo_is_one_line(in_tmp):
    os.mkfifo("backend.pid.lock")
    code, out, err = invoke(["stop", "backend"], RealLocks([]))
    assert code == 1
    assert err == "procclean: backend: cannot lock backend.pid.lock: a FIFO, not a " \
        "regular file\n"


# -- status --check and --watch ------------------------------------------------------------

def test_check_says_which_part_failed():
    procs = [FakeProc(100, 1, "uvicorn main:app")]
    stranger = FakeSystem(procs + [FakeProc(555, 1, "java -jar x.jar", cwd="/srv/other")],
                          listeners=[procclean.Listener(8000, "*", "ipv4", 555)])
    code, out, err = invoke(["status", "backend", "--check"], stranger)
    assert code == 3
    assert "backend: runs, but port 8000 is held by PID 555 (java -jar x.jar), not by " \
        "backend" in err
    unseen = FakeSystem(procs, listeners=[procclean.Listener(8000, "*", "ipv4", None)])
    code, out, err = invoke(["status", "backend", "--check"], unseen)
    assert code == 3 and "held by a process procclean cannot see" in err
    sick = FakeSystem(procs, listeners=[procclean.Listener(8000, "*", "ipv4", 100)])
    sick.health_answers = {"http://127.0.0.1:8000/health": (500, 0.01, None)}
    code, out, err = invoke(["status", "backend", "--check"], sick)
    assert code == 3
    assert "backend: listens on port 8000, but http://127.0.0.1:8000/health is unhealthy" \
        in err
    no_port = FakeSystem(procs)
    code, out, err = invoke(["status", "backend", "--check", "--set", "backend.port="],
                            no_port)
    assert code == 0 and err == "", err


def test_watch_count_0_is_a_usage_error():
    code, out, err = invoke(["status", "--watch", "1", "--count", "0"], FakeSystem([]))
    assert code == 2 and "--count takes a number of views above 0" in err


class _ClosedPipe(io.StringIO):
    def write(self, text):
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")


class _BoundedSystem(FakeSystem):
    def sleep(self, seconds):
        assert len(self.sleeps) < 50, "status --watch kept polling a closed pipe"
        FakeSystem.sleep(self, seconds)


def test_watch_ends_when_stdout_is_closed():
    system = _BoundedSystem([FakeProc(100, 1, "uvicorn main:app")])
    code = procclean.main(["status", "--watch", "1"], system=system, stdout=_ClosedPipe(),
                          stderr=io.StringIO(), environ={"LANG": "C.UTF-8"})
    assert code == 0 and len(system.sleeps) == 0


def test_logs_follow_ends_when_stdout_is_closed(in_tmp):
    (in_tmp / "backend.log").write_text("one\ntwo\n")
    system = _BoundedSystem([])
    code = procclean.main(["logs", "backend", "-f"], system=system, stdout=_ClosedPipe(),
                          stderr=io.StringIO(), environ={"LANG": "C.UTF-8"})
    assert code == 0 and len(system.sleeps) == 0


def test_a_short_write_is_continued_and_a_failed_one_leaves_the_old_file(in_tmp, monkeypatch):
    """write(2) may write less than asked (a disk filling up): write_atomic goes on until
    all is written, or, when the disk is full, keeps the old file and no temporary one."""
    real_write = os.write
    with open("Makefile", "w") as f:
        f.write("old\n")
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:7])))
    procclean.write_atomic("Makefile", b"x" * 100 + b"\n", 0o640)
    with open("Makefile", "rb") as f:
        assert f.read() == b"x" * 100 + b"\n"
    assert os.stat("Makefile").st_mode & 0o777 == 0o640

    def full(fd, data):
        if len(data) < 50:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, bytes(data[:50]))
    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError):
        procclean.write_atomic("Makefile", b"y" * 120)
    with open("Makefile", "rb") as f:
        assert f.read() == b"x" * 100 + b"\n"
    assert os.listdir(".") == ["Makefile"]


# -- an interrupt while a service is launched ------------------------------------------------

def test_ctrl_c_between_the_spawn_and_the_pidfile_stops_the_service(in_tmp):
    """Ctrl-C (or SIGTERM, SIGHUP) to `make start` just after the service was spawned,
    before it was among what start had launched: start ended by the signal and left the
    service running, in its own session where the Ctrl-C did not reach it.  The interrupt
    now waits until it is there, and the service is stopped with the rest."""
    import signal

    class Interrupted(FakeSystem):
        def spawn(self, argv, cwd, logfile, new_session=True, env=None):
            self.procs[700] = FakeProc(700, 1, " ".join(argv))
            return FakeChild(700)

        def write_pidfile(self, path, pid, port=None):
            FakeSystem.write_pidfile(self, path, pid, port)
            os.kill(os.getpid(), signal.SIGINT)         # the Ctrl-C, here

    system = Interrupted([])
    # as at a terminal: run in the background (`pytest &` in a script), SIGINT is ignored
    # from the start, and start rightly leaves it so (as under nohup)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code, out, err = invoke(["start-backend"], system)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert code == 128 + signal.SIGINT, out + err
    assert [(pid, sig) for _, pid, sig in system.sent] == [(700, signal.SIGTERM)], out + err
    assert not (in_tmp / "backend.pid").exists()
