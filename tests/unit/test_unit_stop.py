"""stop / force-clean / kill-port on a fake machine: who is signalled, when, what is said."""
import os
import signal
import stat

import pytest

from fakes import FakeProc, FakeSystem, invoke
import procclean

TERM, KILL = signal.SIGTERM, signal.SIGKILL


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def population():
    return [
        FakeProc(100, 1, "uvicorn main:app --reload"),
        FakeProc(101, 100, "/usr/bin/python3 -c from multiprocessing.spawn import spawn_main"),
        FakeProc(200, 1, "npm run dev"),
        FakeProc(201, 200, "sh -c vite"),
        FakeProc(202, 201, "node /app/frontend/node_modules/.bin/vite"),
        FakeProc(203, 202, "/app/node_modules/@esbuild/linux-x64/bin/esbuild --service=0.25.0 --ping"),
        FakeProc(300, 1, "python3 other.py"),
        FakeProc(301, 1, "node server.js"),
        FakeProc(302, 1, "grep -E python.*main.py"),
        FakeProc(899, 1, "make stop"),
        FakeProc(900, 899, "python3 procclean.py stop"),
    ]


def signalled(system):
    return sorted(set(pid for _, pid, _ in system.sent))


def test_stop_backend_takes_the_reload_worker_that_matches_no_pattern():
    system = FakeSystem(population())
    code, out, err = invoke(["stop-backend"], system)
    assert code == 0
    assert signalled(system) == [100, 101]
    assert "stopped backend PID 100: uvicorn main:app --reload" in out
    assert "PID 101" in out
    assert "backend: 2 process(es) stopped" in out


def test_stop_frontend_takes_the_whole_npm_chain():
    system = FakeSystem(population())
    code, out, _ = invoke(["stop-frontend"], system)
    assert code == 0
    assert signalled(system) == [200, 201, 202, 203]


def test_unrelated_processes_grep_lines_and_own_ancestors_are_never_signalled():
    system = FakeSystem(population())
    invoke(["stop"], system)
    for pid in (300, 301, 302, 899, 900, 1):
        assert pid not in signalled(system)


def test_all_targets_get_sigterm_before_any_wait():
    system = FakeSystem(population())
    invoke(["stop"], system)
    terms = [(t, pid) for t, pid, sig in system.sent if sig == TERM]
    assert len(terms) == 6
    assert set(t for t, _ in terms) == {0.0}, "all SIGTERMs go out at once"


def test_one_shared_wait_ends_as_soon_as_all_are_gone():
    procs = [FakeProc(1000 + i, 1, "python main.py --n %d" % i, term_delay=0.05)
             for i in range(500)]
    system = FakeSystem(procs)
    code, _, _ = invoke(["stop-backend"], system)
    assert code == 0
    assert system.now < 0.2, "waited %.3f s for processes that exit after 50 ms" % system.now
    assert all(sig == TERM for _, _, sig in system.sent)


def test_term_ignoring_process_gets_sigkill_after_the_grace():
    procs = [FakeProc(100, 1, "python main.py", term_delay=None),
             FakeProc(101, 1, "uvicorn main:app", term_delay=0.01)]
    system = FakeSystem(procs)
    code, out, _ = invoke(["stop-backend", "--grace", "1.5"], system)
    assert code == 0
    kills = [(t, pid) for t, pid, sig in system.sent if sig == KILL]
    assert kills == [(pytest.approx(1.5), 100)]
    assert "killed backend PID 100 with SIGKILL" in out
    assert "1 of them with SIGKILL after 1.5 s" in out


def test_two_that_ignore_sigterm_share_one_grace():
    """One wait for all, not a grace each (the seed's loop waits per PID)."""
    procs = [FakeProc(100, 1, "python main.py", term_delay=None),
             FakeProc(101, 100, "python -c worker", term_delay=None)]
    system = FakeSystem(procs)
    code, out, _ = invoke(["stop-backend", "--grace", "0.5"], system)
    assert code == 0
    kills = sorted((t, pid) for t, pid, sig in system.sent if sig == KILL)
    assert kills == [(pytest.approx(0.5), 100), (pytest.approx(0.5), 101)]
    assert "2 of them with SIGKILL after 0.5 s" in out


def test_default_grace_is_two_seconds():
    system = FakeSystem([FakeProc(100, 1, "python main.py", term_delay=None)])
    invoke(["stop-backend"], system)
    kill_time = [t for t, _, sig in system.sent if sig == KILL][0]
    assert kill_time == pytest.approx(2.0)


def test_force_clean_sends_sigkill_at_once_and_removes_pidfile_and_logfile(in_tmp):
    (in_tmp / "backend.pid").write_text("100\n")
    (in_tmp / "backend.log").write_text("log\n")
    (in_tmp / "backend.log.1").write_text("the run before\n")
    (in_tmp / "frontend.log").write_text("log\n")
    system = FakeSystem(population())
    code, out, _ = invoke(["force-clean-backend"], system)
    assert code == 0
    assert [(pid, sig) for _, pid, sig in system.sent] == [(100, KILL), (101, KILL)]
    assert not (in_tmp / "backend.pid").exists()
    assert not (in_tmp / "backend.log").exists()
    assert not (in_tmp / "backend.log.1").exists()     # start's copy of the run before
    assert (in_tmp / "frontend.log").exists()
    assert "force-cleaning backend" in out
    assert "removed backend.log.1" in out


def test_stop_removes_the_pidfile_but_keeps_the_log(in_tmp):
    (in_tmp / "backend.pid").write_text("100\n")
    (in_tmp / "backend.log").write_text("log\n")
    invoke(["stop-backend"], FakeSystem(population()))
    assert not (in_tmp / "backend.pid").exists()
    assert (in_tmp / "backend.log").exists()


def test_pidfile_process_that_matches_no_pattern_is_stopped_with_its_children(in_tmp):
    procs = [FakeProc(500, 1, "gunicorn app:wsgi", start=10.0),
             FakeProc(501, 500, "gunicorn worker", start=11.0)]
    pidfile = in_tmp / "backend.pid"
    pidfile.write_text("500\n")
    os.utime(str(pidfile), (1000.0, 1000.0))
    system = FakeSystem(procs)
    code, out, err = invoke(["stop-backend"], system)
    assert code == 0 and signalled(system) == [500, 501]


def test_reused_pid_in_pidfile_is_left_alone(in_tmp):
    procs = [FakeProc(500, 1, "postgres: writer", start=5000.0)]
    pidfile = in_tmp / "backend.pid"
    pidfile.write_text("500\n")
    os.utime(str(pidfile), (1000.0, 1000.0))
    system = FakeSystem(procs)
    code, out, err = invoke(["stop-backend"], system)
    assert code == 0
    assert system.sent == []
    assert "backend.pid" in err and "PID 500" in err and "left alone" in err
    assert not pidfile.exists()


@pytest.mark.parametrize("content", [b"-1", b"0", b"1", b"", b"   ", b"abc", b"123abc",
                                     b"99999999999", b"100 101", b"100\n101\n",
                                     b"\xff\xfe\x00binary", b"+100", b"0x64", b"1e3"])
def test_bad_pidfile_signals_nothing_but_real_matches_and_is_removed(in_tmp, content):
    (in_tmp / "backend.pid").write_bytes(content)
    procs = [FakeProc(100, 1, "python main.py"), FakeProc(300, 1, "sleep 1000")]
    system = FakeSystem(procs)
    code, out, err = invoke(["stop-backend"], system)
    assert code == 0
    assert signalled(system) == [100]
    assert "backend.pid" in err and "not a valid PID" in err
    assert not (in_tmp / "backend.pid").exists()


def test_pidfile_naming_procclean_or_its_parent_is_not_signalled(in_tmp):
    for pid in ("899", "900"):
        (in_tmp / "backend.pid").write_text(pid)
        system = FakeSystem(population())
        code, _, err = invoke(["stop-backend"], system)
        assert code == 0
        assert 899 not in signalled(system) and 900 not in signalled(system)
        assert "procclean itself or one of its parents" in err


def test_ancestors_that_match_the_pattern_are_never_signalled():
    procs = [FakeProc(50, 1, "make stop-backend"),
             FakeProc(51, 50, "/bin/sh -c python3 procclean.py stop-backend # main.py"),
             FakeProc(900, 51, "python3 procclean.py stop-backend"),
             FakeProc(100, 1, "python main.py")]
    system = FakeSystem(procs, self_pid=900, parent_pid=51)
    code, _, _ = invoke(["stop-backend"], system)
    assert code == 0 and signalled(system) == [100]


def test_untrusted_pidfile_as_root_is_ignored_but_matches_still_stop(in_tmp):
    pidfile = in_tmp / "backend.pid"
    pidfile.write_text("500\n")
    os.chmod(str(pidfile), 0o666)
    procs = [FakeProc(500, 1, "important-daemon", start=1.0), FakeProc(100, 1, "python main.py")]
    system = FakeSystem(procs, euid=0)
    if os.stat(str(pidfile)).st_uid != 0:
        pytest.skip("needs a root-owned file to tell the mode check apart")
    code, _, err = invoke(["stop-backend"], system)
    assert code == 0 and signalled(system) == [100]
    assert "writable by other users" in err


def test_permission_denied_is_reported_with_owner_and_others_still_stop():
    procs = [FakeProc(100, 1, "python main.py", user="alice", eperm=True),
             FakeProc(101, 1, "uvicorn main:app")]
    system = FakeSystem(procs)
    code, out, err = invoke(["stop-backend"], system)
    assert code == 1
    assert signalled(system) == [101]
    assert "PID 100 (owner alice): permission denied" in err
    assert "stopped backend PID 101" in out


def test_unkillable_process_fails_with_exit_1():
    system = FakeSystem([FakeProc(100, 1, "python main.py", term_delay=None, unkillable=True)])
    code, _, err = invoke(["stop-backend", "--grace", "0.2"], system)
    assert code == 1
    assert "still runs after SIGKILL" in err


def test_zombies_count_as_stopped_and_are_not_signalled():
    system = FakeSystem([FakeProc(100, 1, "[python3] <defunct>", zombie=True),
                         FakeProc(101, 1, "python main.py")])
    code, out, _ = invoke(["stop-backend"], system)
    assert code == 0
    assert signalled(system) == [101]


def test_process_gone_before_the_signal_counts_as_stopped():
    class Vanishing(FakeSystem):
        def send_signal(self, pid, signum):
            if pid == 100:
                raise OSError(3, "No such process")
            return FakeSystem.send_signal(self, pid, signum)

    code, out, _ = invoke(["stop-backend"], Vanishing([FakeProc(100, 1, "python main.py")]))
    assert code == 0
    assert "had already exited" in out


def test_dry_run_signals_nothing_and_removes_nothing(in_tmp):
    (in_tmp / "backend.pid").write_text("100\n")
    (in_tmp / "backend.log").write_text("x")
    system = FakeSystem(population())
    code, out, _ = invoke(["--dry-run", "force-clean-backend"], system)
    assert code == 0 and system.sent == []
    assert (in_tmp / "backend.pid").exists() and (in_tmp / "backend.log").exists()
    assert "would send SIGKILL to backend PID 100" in out
    assert "would remove backend.pid" in out


def test_nothing_running_is_done():
    code, out, _ = invoke(["stop"], FakeSystem([FakeProc(300, 1, "python3 other.py")]))
    assert code == 0
    assert "backend: nothing running" in out and "frontend: nothing running" in out


def test_the_table_is_read_once_before_the_signals_and_once_to_look_again():
    system = FakeSystem(population())
    invoke(["stop"], system)
    assert system.table_reads == 2


def test_kill_port_stops_the_listener_tree_never_its_client():
    procs = [FakeProc(700, 1, "python3 -m http.server 8000"),
             FakeProc(701, 700, "python3 worker"),
             FakeProc(800, 1, "curl http://127.0.0.1:8000/")]
    listeners = [procclean.Listener(8000, "127.0.0.1", "ipv4", 700)]
    system = FakeSystem(procs, listeners=listeners)
    code, out, _ = invoke(["kill-port", "8000"], system)
    assert code == 0 and signalled(system) == [700, 701]
    assert "port 8000: 2 process(es) stopped" in out


def test_kill_port_of_a_service_s_own_process_removes_its_pidfile(in_tmp):
    """`kill-port 8000` while dev (or start) ran the backend there: its pidfile named a
    process gone, and dev said the backend `exited by itself`.  It goes, as with stop
    (dev then says it was stopped from another terminal); another's pidfile stays."""
    (in_tmp / "backend.pid").write_text("700\n")
    (in_tmp / "frontend.pid").write_text("710\n")
    procs = [FakeProc(700, 1, "uvicorn main:app"), FakeProc(710, 1, "npm run dev")]
    listeners = [procclean.Listener(8000, "127.0.0.1", "ipv4", 700)]
    system = FakeSystem(procs, listeners=listeners)
    code, out, _ = invoke(["kill-port", "8000"], system)
    assert code == 0 and signalled(system) == [700]
    assert "removed backend.pid" in out, out
    assert not (in_tmp / "backend.pid").exists() and (in_tmp / "frontend.pid").exists()


def test_kill_port_force_uses_sigkill_at_once():
    system = FakeSystem([FakeProc(700, 1, "server")],
                        listeners=[procclean.Listener(3000, "::1", "ipv6", 700)])
    code, _, _ = invoke(["kill-port", "3000", "--force"], system)
    assert code == 0 and system.sent == [(0.0, 700, KILL)]


@pytest.mark.parametrize("port", ["0", "70000", "abc", "-1"])
def test_kill_port_rejects_invalid_ports(port):
    code, _, err = invoke(["kill-port", port], FakeSystem([]))
    assert code == 2 and "invalid port" in err


def test_kill_port_never_signals_procclean_even_if_it_listens():
    system = FakeSystem(population(), listeners=[procclean.Listener(8000, "0.0.0.0", "ipv4", 899)])
    code, _, _ = invoke(["kill-port", "8000"], system)
    assert system.sent == []


def test_a_pid_reused_during_the_grace_is_not_sigkilled():
    class Reusing(FakeSystem):
        def still_running(self, procs):
            # PID 100 exited and the PID now belongs to a newer process: still_running
            # compares start times and reports it gone.
            return [p for p in FakeSystem.still_running(self, procs) if p.pid != 100]

    system = Reusing([FakeProc(100, 1, "python main.py", term_delay=None)])
    code, _, _ = invoke(["stop-backend"], system)
    assert code == 0
    assert [sig for _, _, sig in system.sent] == [TERM]


def test_a_symlinked_pidfile_is_not_followed(in_tmp):
    (in_tmp / "elsewhere.pid").write_text("100\n")
    os.symlink("elsewhere.pid", str(in_tmp / "backend.pid"))
    info = procclean.System().read_pidfile("backend.pid")
    assert info.exists and info.pid is None and info.problem == "invalid"
    assert b"link" in info.raw


def test_a_fifo_pidfile_is_refused_without_hanging(in_tmp):
    os.mkfifo(str(in_tmp / "backend.pid"))
    info = procclean.System().read_pidfile("backend.pid")
    assert info.problem == "invalid" and b"not a regular file" in info.raw


def test_a_pidfile_padded_past_4096_bytes_is_invalid(in_tmp):
    (in_tmp / "backend.pid").write_bytes(b" " * 4094 + b"3999")
    assert procclean.System().read_pidfile("backend.pid").pid is None


def test_pidfile_written_atomically_leaves_no_temp_file(in_tmp):
    # A PID that surely runs (this test's own): the start record beside it is written
    # too, whatever else runs on the machine.
    procclean.System().write_pidfile("backend.pid", os.getpid())
    assert (in_tmp / "backend.pid").read_text() == "%d\n" % os.getpid()
    assert sorted(os.listdir(str(in_tmp))) == ["backend.pid", "backend.pid.start"]
    mode = stat.S_IMODE(os.stat(str(in_tmp / "backend.pid")).st_mode)
    assert not mode & 0o022


def test_clean_removes_the_previous_log_too(in_tmp):
    for name in ("backend.log", "backend.log.1"):
        (in_tmp / name).write_text("x")
    code, out, _ = invoke(["clean", "backend"], FakeSystem([]))
    assert code == 0
    assert not (in_tmp / "backend.log").exists() and not (in_tmp / "backend.log.1").exists()


def test_kill_port_leaves_a_holder_that_started_after_the_listing():
    late = FakeProc(700, 1, "python3 -m http.server 8000", start=999999.0)
    system = FakeSystem([late], listeners=[procclean.Listener(8000, "0.0.0.0", "ipv4", 700)])
    code, _, err = invoke(["kill-port", "8000"], system)
    assert code == 1 and system.sent == []
    assert "cannot see" in err
