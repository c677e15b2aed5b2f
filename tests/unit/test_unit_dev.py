"""dev's pure parts (issue 13): the relay's line making, prefixes and colours, the start
order, the after/supervise fields, and the second Ctrl-C cutting stop's grace short."""
import io
import os
import signal
import sys
import time

import pytest

import procclean
from fakes import FakeProc, FakeSystem


# -- the relay's lines -----------------------------------------------------------------------

def test_complete_lines_get_the_prefix_and_the_rest_waits():
    lines, rest = procclean.relay_lines(b"api | ", b"one\ntwo\nthr", b"")
    assert lines == b"api | one\napi | two\n" and rest == b"thr"
    lines, rest = procclean.relay_lines(b"api | ", b"ee\n", rest)
    assert lines == b"api | three\n" and rest == b""


def test_no_newline_yet_nothing_shown_until_it_is_long():
    assert procclean.relay_lines(b"p | ", b"progress 10%", b"") == (b"", b"progress 10%")
    long_line = b"x" * procclean.RELAY_LONG_LINE
    lines, rest = procclean.relay_lines(b"p | ", long_line, b"")
    assert lines == b"p | " + long_line + b"\n" and rest == b""


def test_bytes_that_are_not_utf8_come_out_escaped():
    lines, _ = procclean.relay_lines(b"p | ", b"ok \xff\xfe\ncaf\xc3\xa9\n", b"")
    assert lines == b"p | ok \\xff\\xfe\np | caf\xc3\xa9\n"
    # an output that cannot show UTF-8 (Python 3.6 in the C locale) gets escapes
    lines, _ = procclean.relay_lines(b"p | ", b"caf\xc3\xa9\n", b"", encoding="ascii")
    assert lines == b"p | caf\\xe9\n"


def test_prefixes_padded_and_coloured_only_when_asked():
    plain = procclean.dev_prefixes(["api", "frontend"], colour=False)
    assert plain["api"] == ("api      | ", "api      * ")
    assert plain["frontend"] == ("frontend | ", "frontend * ")
    colour = procclean.dev_prefixes(["api", "frontend"], colour=True)
    assert colour["api"][0] == "\033[36mapi      |\033[0m "
    assert colour["frontend"][0].startswith("\033[33m")
    assert colour["api"][1] != colour["api"][0]          # procclean's own lines apart


class Tty(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("environ,colour", [({}, True), ({"NO_COLOR": "1"}, False),
                                            ({"TERM": "dumb"}, False)])
def test_dev_colour_follows_the_terminal_and_no_color(environ, colour, monkeypatch):
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    env = dict({"LANG": "C.UTF-8", "TERM": "xterm"}, **environ)
    out = procclean.Reporter(stdout=Tty(), stderr=Tty(), environ=env)
    assert out.colour is colour
    service = procclean.Service("web", "", "web.pid", "web.log", 3000, "npm run dev", ".")
    ctx = procclean.Context(FakeSystem([]), procclean.load_config(environ={}), out)
    env_for_service = procclean.dev_env(ctx, service, out.colour)
    assert env_for_service["PYTHONUNBUFFERED"] == "1"
    assert env_for_service["PROCCLEAN_SERVICE"] == "web"
    assert env_for_service["PROCCLEAN_PROJECT"] == os.path.realpath(os.getcwd())
    assert env_for_service.get("FORCE_COLOR") == ("1" if colour else None)


# -- after = and supervise = -----------------------------------------------------------------

def config(ini, tmp_path, environ=None):
    path = tmp_path / "procclean.ini"
    path.write_text(ini)
    return procclean.load_config(str(path), environ=environ or {})


def test_after_orders_the_start_whatever_the_listing(tmp_path):
    cfg = config("[procclean]\nservices = frontend worker backend\n"
                 "[frontend]\nafter = backend worker\n[worker]\nafter = backend\n", tmp_path)
    order = procclean.start_order(cfg.select([]))
    assert [s.name for s in order] == ["backend", "worker", "frontend"]
    assert cfg.services["frontend"].after == ["backend", "worker"]
    # only the services asked for are ordered (none is added)
    assert [s.name for s in procclean.start_order(cfg.select(["frontend"]))] == ["frontend"]


def test_services_waiting_for_each_other_are_a_config_error(tmp_path):
    with pytest.raises(procclean.ProcCleanError) as exc:
        config("[backend]\nafter = frontend\n[frontend]\nafter = backend\n", tmp_path)
    assert "wait for each other: backend -> frontend -> backend" in str(exc.value)
    assert exc.value.code == procclean.EXIT_USAGE


def test_after_unknown_or_itself_is_a_config_error(tmp_path):
    for ini, text in (("[frontend]\nafter = bakend\n", "unknown service 'bakend'"),
                      ("[frontend]\nafter = frontend\n", "names the service itself")):
        with pytest.raises(procclean.ProcCleanError) as exc:
            config(ini, tmp_path)
        assert text in str(exc.value)


def test_supervise_yes_or_no_from_file_and_environment(tmp_path):
    cfg = config("[backend]\nsupervise = yes\n", tmp_path,
                 environ={"PROCCLEAN_FRONTEND_SUPERVISE": "off",
                          "PROCCLEAN_FRONTEND_AFTER": "backend"})
    assert cfg.services["backend"].supervise is True
    assert cfg.services["frontend"].supervise is False
    assert cfg.services["frontend"].after == ["backend"]
    with pytest.raises(procclean.ProcCleanError) as exc:
        config("[backend]\nsupervise = sometimes\n", tmp_path)
    assert "supervise must be yes or no" in str(exc.value)


# -- a second Ctrl-C: the grace cut short ----------------------------------------------------

def test_hurry_ends_the_shared_wait_at_once():
    system = FakeSystem([FakeProc(100, 1, "python main.py", term_delay=None)])
    target = procclean.Target(system.procs[100].process(), None, "pattern")
    calls = []

    def hurry():
        calls.append(system.now)
        return len(calls) >= 3

    left = procclean.wait_gone(system, [target], 600.0, hurry=hurry)
    assert left == [target] and system.now < 1.0


def test_stop_targets_kills_at_once_when_ctx_hurries():
    system = FakeSystem([FakeProc(100, 1, "python main.py", term_delay=None)])
    out = procclean.Reporter(stdout=io.StringIO(), stderr=io.StringIO(), environ={})
    ctx = procclean.Context(system, procclean.load_config(environ={}), out, grace=600.0)
    target = procclean.Target(system.procs[100].process(), None, "pattern")
    ctx.hurry = True
    procclean.stop_processes(ctx, [target], system.process_table())
    assert [s for _, _, s in system.sent] == [signal.SIGTERM, signal.SIGKILL]
    assert target.outcome == "killed" and system.now < 2.0


# -- the relay thread, on real pipes (no process involved) -----------------------------------

def test_relay_copies_two_pipes_prefixed_in_order(tmp_path):
    out_path = str(tmp_path / "stdout")
    out_w = os.open(out_path, os.O_WRONLY | os.O_CREAT)
    relay = procclean.Relay(out_w, procclean.dev_prefixes(["api", "web"], False))
    writers = {}
    for name in ("api", "web"):
        r, w = os.pipe()
        relay.add(name, r)
        writers[name] = w
    relay.own_line("web", "started PID 7: npm run dev")     # as dev does: before its output
    relay.start()
    os.write(writers["api"], b"".join(b"api %d\n" % i for i in range(5000)))
    os.write(writers["web"], b"half a li")
    os.write(writers["web"], b"ne\nno newline \xff")
    for w in writers.values():
        os.close(w)
    relay.finish(10.0)
    os.close(out_w)
    with open(out_path, "rb") as f:
        lines = f.read().split(b"\n")
    assert lines[0] == b"web * started PID 7: npm run dev"
    assert [l for l in lines if l.startswith(b"api | ")] == \
        [b"api | api %d" % i for i in range(5000)]
    assert [l for l in lines if l.startswith(b"web | ")] == \
        [b"web | half a line", b"web | no newline \\xff"]     # flushed at the pipe's end


def test_where_no_keeper_process_starts_the_log_is_still_written(tmp_path, monkeypatch):
    """No keeper process (the python that ran dev gone, upgraded in place; no process
    left to start): the service's lines reached the terminal, not its log, so `logs`
    showed nothing.  A thread of dev's keeps the log instead."""
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    log = str(tmp_path / "api.log")
    service_r, service_w = os.pipe()
    dev_r = procclean.System().keep_log(
        service_r, os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND))
    os.write(service_w, b"\x1b[32mINFO\x1b[0m: started\nno newline")
    os.close(service_w)                                 # the service ended
    os.set_blocking(dev_r, True)
    shown = b""
    while True:
        data = os.read(dev_r, 4096)
        if not data:
            break
        shown += data
    os.close(dev_r)
    assert shown == b"\x1b[32mINFO\x1b[0m: started\nno newline"
    assert read_bytes(log) == b"INFO: started\nno newline\n"


def test_the_log_keeper_writes_the_log_on_after_dev_is_gone(tmp_path):
    """dev's keeper (a real process) copies a service's output to dev as it is and to the
    log without colours; once dev is gone (its pipe closed: `kill -9`), the log still gets
    every line, and a last line without a newline is ended there."""
    log = str(tmp_path / "api.log")
    service_r, service_w = os.pipe()
    dev_r = procclean.System().keep_log(
        service_r, os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND))
    os.set_blocking(dev_r, True)
    os.write(service_w, b"\x1b[32mINFO\x1b[0m: started\n")
    assert os.read(dev_r, 4096) == b"\x1b[32mINFO\x1b[0m: started\n"
    os.close(dev_r)                                     # dev killed
    os.write(service_w, b"".join(b"line %d\n" % i for i in range(3000)) + b"no newline")
    os.close(service_w)                                 # the service ended
    expected = b"INFO: started\n" + b"".join(
        b"line %d\n" % i for i in range(3000)) + b"no newline\n"
    deadline = time.time() + 60
    while read_bytes(log) != expected and time.time() < deadline:
        time.sleep(0.01)        # (the keeper ends the log as it reads the pipe's end)
    assert read_bytes(log) == expected


@pytest.mark.skipif(sys.version_info < (3, 8), reason="PYTHONPYCACHEPREFIX is 3.8's")
def test_the_log_keepers_bytecode_is_kept_in_the_users_own_folder(tmp_path, monkeypatch):
    """With PYTHONDONTWRITEBYTECODE (as Dockerfiles set it), or no writable __pycache__
    beside procclean.py, each keeper dev starts compiled this whole file (0.2-0.5 s of
    CPU per service).  Its bytecode is kept in the user's private folder, not the
    project's: the next keeper loads it."""
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    system = procclean.System()
    system.may_write = True
    system.private_folders = ((str(tmp_path / "private"), True),)
    service_r, service_w = os.pipe()
    dev_r = system.keep_log(service_r, os.open(str(tmp_path / "api.log"),
                                               os.O_WRONLY | os.O_CREAT | os.O_APPEND))
    os.close(service_w)
    os.set_blocking(dev_r, True)
    assert os.read(dev_r, 10) == b""            # the keeper ended
    os.close(dev_r)
    kept = list((tmp_path / "private" / "pycache").glob("**/procclean.cpython-*.pyc"))
    assert len(kept) == 1, sorted(tmp_path.glob("**/*"))


OLD_PYTHONS = sorted(__import__("glob").glob(
    os.path.expanduser("~/.pyenv/versions/3.[67].*/bin/python3")))


@pytest.mark.skipif(not OLD_PYTHONS, reason="no Python 3.6 or 3.7 here")
def test_before_3_8_the_keeper_writes_no_bytecode_into_the_project(tmp_path):
    """Python 3.6 and 3.7 have no PYTHONPYCACHEPREFIX: there dev's keeper leaves the
    user's PYTHONDONTWRITEBYTECODE as it is, and writes no __pycache__ beside the
    project's procclean.py (since e27cf60 it dropped the setting everywhere)."""
    import shutil
    import subprocess
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(procclean.__file__, str(project / "procclean.py"))
    script = (
        "import os, sys\nsys.path.insert(0, %r)\nimport procclean\n"
        "system = procclean.System()\nsystem.may_write = True\n"
        "system.private_folders = ((%r, True),)\nr, w = os.pipe()\n"
        "dev_r = system.keep_log(r, os.open(%r, os.O_WRONLY | os.O_CREAT))\n"
        "os.close(w)\nos.set_blocking(dev_r, True)\nassert os.read(dev_r, 10) == b''\n"
        % (str(project), str(tmp_path / "private"), str(tmp_path / "api.log")))
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    subprocess.run([OLD_PYTHONS[0], "-c", script], env=env, check=True, timeout=60)
    assert sorted(os.listdir(str(project))) == ["procclean.py"]


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def test_escape_sequences_stripped_for_the_log_even_when_cut_between_reads():
    """What FORCE_COLOR makes a service write stays on the terminal, not in its log: a
    colour (CSI), a title or link (OSC), a charset switch; a sequence cut by a read is
    held until the next."""
    data = b"\x1b[32mgreen\x1b[0m \x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ \x1b(Bok\n\x1b[1;3"
    logged, held = procclean.strip_escapes(data, b"")
    assert logged == b"green link ok\n" and held == b"\x1b[1;3"
    logged, held = procclean.strip_escapes(b"1mbold\x1b[0m\n", held)
    assert logged == b"bold\n" and held == b""
    # a lone ESC that starts nothing is let through once it cannot be a sequence's start
    logged, held = procclean.strip_escapes(b"\x1b" + b"x" * 70, b"")
    assert held == b"" and logged.endswith(b"x" * 69)


def test_summary_says_when_sigkill_went_and_why_not_the_grace():
    """A second Ctrl-C cut the 600 s grace short: the summary says so, truly."""
    system = FakeSystem([FakeProc(100, 1, "python main.py", term_delay=None)])
    out = io.StringIO()
    config = procclean.load_config(environ={})
    ctx = procclean.Context(system, config, procclean.Reporter(stdout=out, stderr=out,
                                                               environ={}), grace=600.0)
    backend = config.services["backend"]
    target = procclean.Target(system.procs[100].process(), backend, "pattern")
    ctx.hurry = True
    done, _ = procclean.stop_processes(ctx, [target], system.process_table())
    procclean.report_summary(ctx, backend, done, grace_used=True)
    text = out.getvalue()
    assert "backend: 1 process(es) stopped, 1 of them with SIGKILL after 0 s (Ctrl-C again)" \
        in text, text
    assert "600 s" not in text, text


def test_backoff_doubles_gives_up_and_resets_after_a_stable_run():
    backoff = procclean.Backoff(3)
    assert [backoff.next(t, t) for t in (0.0, 1.0, 3.0)] == [1.0, 2.0, 4.0]
    assert backoff.next(8.0, 7.0) is None               # a 4th restart within a minute
    assert len(backoff.restarts) == 3
    assert backoff.next(100.0, 60.0) == 1.0             # up 40 s: stable; a minute later


class _Svc(object):
    def __init__(self, name, after=()):
        self.name, self.after = name, tuple(after)


def test_start_waves_cut_before_each_service_that_waits_for_an_earlier_one():
    names = lambda waves: [[s.name for s in wave] for wave in waves]     # noqa: E731
    services = [_Svc("db"), _Svc("backend", ["db"]), _Svc("worker", ["db"]),
                _Svc("frontend", ["backend"]), _Svc("docs")]
    assert names(procclean.start_waves(services)) == [
        ["db"], ["backend"], ["worker"], ["frontend", "docs"]]
    assert names(procclean.start_waves([_Svc("a"), _Svc("b", ["zzz"])])) == [["a", "b"]]


@pytest.mark.parametrize("status, lang, said", [
    (143, "en", "status 143 (SIGTERM)"), (137, "zh", "退出码 137 (SIGKILL)"),
    (-9, "en", "killed by SIGKILL"), (-40, "en", "killed by signal 40"),
    (3, "en", "status 3"), (200, "en", "status 200")])
def test_an_exit_a_signal_explains_names_it(status, lang, said):
    """npm run dev, or a shell, whose program was killed (`npx kill-port 5173`: SIGKILL to
    vite) exits 128+N: dev said `status 137, from outside dev`; the signal is named."""
    assert procclean.describe_exit(status, lang) == said
