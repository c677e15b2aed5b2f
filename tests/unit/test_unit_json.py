"""--json on every command (issue 15): one JSON document on stdout, no text there, what
was found and what became of it; logs -f --json one object per line."""
import io
import json

import pytest

from fakes import FakeChild, FakeProc, FakeSystem, invoke
import procclean


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_json(argv, system, code=0):
    """procclean ARGV --json: the document, after checking the exit code and that
    stdout holds nothing else."""
    status, out, err = invoke(argv + ["--json"], system)
    assert status == code, (out, err)
    document = json.loads(out)
    assert document["command"] == argv[0].split("-backend")[0]
    assert document["exit_code"] == code
    return document, err


def events(document):
    return [e["event"] for e in document["events"]]


def test_stop_lists_each_process_with_its_outcome_and_the_ones_outside(in_tmp):
    (in_tmp / "backend.pid").write_text("100\n")
    system = FakeSystem([FakeProc(100, 1, "python main.py", term_delay=None),
                         FakeProc(101, 100, "python worker"),
                         FakeProc(300, 1, "python main.py", cwd="/elsewhere")])
    document, err = run_json(["stop"], system)
    assert [(p["pid"], p["via"], p["outcome"]) for p in document["processes"]] == [
        (100, "pidfile", "killed"), (101, "child", "stopped")]
    assert [(o["pid"], o["folder"]) for o in document["outside"]] == [(300, "/elsewhere")]
    assert document["removed"] == ["backend.pid"] and not (in_tmp / "backend.pid").exists()
    assert "nothing" in events(document) and err == ""
    assert 300 not in [pid for _, pid, _ in system.sent]


def test_a_process_that_could_not_be_stopped_is_a_warning_on_stderr_and_in_the_document():
    system = FakeSystem([FakeProc(100, 1, "python main.py", eperm=True, user="root")])
    document, err = run_json(["stop", "backend"], system, code=1)
    assert [(p["pid"], p["outcome"]) for p in document["processes"]] == [(100, "denied")]
    assert "PID 100" in err
    warning = [e for e in document["events"] if e.get("warning")][0]
    assert warning["event"] == "denied" and warning["pid"] == 100


def test_force_clean_removes_the_log_and_says_so(in_tmp):
    (in_tmp / "backend.log").write_text("x\n")
    system = FakeSystem([FakeProc(100, 1, "python main.py")])
    document, _ = run_json(["force-clean-backend"], system)
    assert [(p["pid"], p["outcome"]) for p in document["processes"]] == [(100, "killed")]
    assert document["removed"] == ["backend.log"] and document["outside"] == []


def test_a_dry_run_signals_nothing_and_says_what_it_would_do():
    system = FakeSystem([FakeProc(100, 1, "python main.py")])
    status, out, _ = invoke(["stop", "backend", "--json", "--dry-run"], system)
    document = json.loads(out)
    assert document["dry_run"] is True and system.sent == []
    assert [(p["pid"], p["outcome"]) for p in document["processes"]] == [(100, None)]
    assert events(document) == ["would_signal"]


class Launcher(FakeSystem):
    """A FakeSystem that starts a (fake) child for each spawn."""

    def spawn(self, argv, cwd, logfile, new_session=True, env=None):
        self.procs[700] = FakeProc(700, 1, " ".join(argv))
        return FakeChild(700)


def test_start_lists_what_it_started(in_tmp):
    document, _ = run_json(["start-backend"], Launcher([]))
    started, = document["started"]
    assert (started["service"], started["pid"], started["log"]) == ("backend", 700, "backend.log")
    assert started["supervised"] is False
    assert (in_tmp / "backend.pid").read_text() == "700\n"


def test_a_supervised_start_whose_service_exited_meanwhile_says_so(in_tmp):
    """`start --supervise worker` of a worker that exited during the start: `supervising`
    alone, while status said `restarting`; now a warning says it exited and is being
    restarted (the supervisor's state file, which it writes, tells)."""
    class Supervising(Launcher):
        def spawn(self, argv, cwd, logfile, new_session=True, env=None):
            child = Launcher.spawn(self, argv, cwd, logfile, new_session, env)
            (in_tmp / "backend.pid.state").write_text(json.dumps(
                {"supervisor": 700, "child": None, "state": "backoff", "restarts": 0,
                 "last_exit": 1}))
            return child

    code, out, err = invoke(["start", "--supervise", "backend"], Supervising([]))
    assert code == 0, out + err
    assert "supervising backend (supervisor PID 700" in out, out
    assert "backend exited during its start (status 1): its supervisor restarts it" \
        in err, err


def test_a_supervised_start_waits_while_its_service_computes_and_sees_it_crash(in_tmp):
    """`start --supervise` of an app that computes for 0.8 s, then exits 1 (a settings
    check failing): judged at 0.5 s, it was `supervising` and no more.  It waits, as a
    plain start does, while the tree computes, and says that the service exited."""
    class Computing(Launcher):
        def process_table(self, previous=None):
            table = Launcher.process_table(self, previous)
            if 700 not in table:
                pass                                    # not started yet
            elif self.now < 0.8:
                table[700].cpu_seconds = self.now       # busy until it exits
            elif not (in_tmp / "backend.pid.state").exists():
                (in_tmp / "backend.pid.state").write_text(json.dumps(
                    {"supervisor": 700, "child": None, "state": "backoff",
                     "restarts": 0, "last_exit": 1}))
            return table

    code, out, err = invoke(["start", "--supervise", "backend"], Computing([]))
    assert code == 0, out + err
    assert "supervising backend (supervisor PID 700" in out, out
    assert "backend exited during its start (status 1): its supervisor restarts it" \
        in err, err


@pytest.mark.parametrize("connected", [True, False, None])
def test_a_worker_connected_to_its_broker_is_started_without_the_workers_wait(
        in_tmp, connected):
    """`make start` of a worker (no port) took 2 s at least (START_WORKER): nothing said
    it was up.  One that holds a connection (to its broker, its database) and idles is
    up; one without (or where /proc cannot tell: None) still waits, so a worker that
    dies a second later is not reported started, and without saying that it waits for
    it to settle: it computes nothing."""
    class Broker(Launcher):
        def connected(self, pids):
            assert 700 in pids
            return connected

    (in_tmp / "procclean.ini").write_text(
        "[procclean]\nservices = worker\n[worker]\ncommand = celery -A app worker\n")
    system = Broker([])
    code, out, err = invoke(["start"], system)
    assert code == 0 and "started worker PID 700" in out, out + err
    assert (system.now < procclean.START_WORKER) is bool(connected), system.now
    assert "waiting for it to settle" not in out, out        # idle: nothing to wait for


def test_the_two_second_notice_names_a_worker_only_while_it_computes(in_tmp):
    """`make start` of an idle worker said `worker (PID 700) is starting: waiting for it to
    settle (10 s at most)` whenever its look came just before the 2 s notice: it waited
    for nothing but START_WORKER, the least a worker must live.  Only one that computes
    (imports, compiles) is named; with nothing to say, the notice waits."""
    out = io.StringIO()
    system = FakeSystem([])
    ctx = procclean.Context(system, procclean.load_config(environ={}),
                            procclean.Reporter(stdout=out, environ={}))
    service = procclean.Service("worker", "", "worker.pid", "worker.log", None, "celery", ".")
    launch = procclean.StartWatch(ctx, service, FakeChild(700), "celery", (0, None))
    launch.cpu = (0.3, 0.0)                     # its last CPU at 0 s
    system.now = 1.99
    assert procclean.say_start_wait(ctx, [launch]) is False and out.getvalue() == ""
    launch.cpu = (0.9, 1.8)                     # computing still
    assert procclean.say_start_wait(ctx, [launch]) is True
    assert "worker (PID 700) is starting: waiting for it to settle" in out.getvalue()


@pytest.mark.parametrize("state, started", [("R", False), ("S", True)])
def test_an_app_waiting_for_a_cpu_is_not_taken_for_an_idle_one(in_tmp, state, started):
    """`make start-backend` (no --wait) of an app that computes for a second, then dies:
    on a busy machine (load 13 on 2 CPUs) it got no CPU for half a second, so its CPU time
    stood still and start took it for idle, said `started` and exited 0 (CI's py3.6 run).
    A tree with a process waiting for a CPU (state R) is computing; a sleeping one idle."""
    system = FakeSystem([FakeProc(700, 1, "python3 main.py")])
    system.procs[700].state = state
    ctx = procclean.Context(system, procclean.load_config(environ={}),
                            procclean.Reporter(stdout=io.StringIO(), environ={}))
    service = procclean.Service("backend", "", "backend.pid", "backend.log", 8000,
                                "python3 main.py", ".")
    launch = procclean.StartWatch(ctx, service, FakeChild(700), "python3", (0, None))
    table = system.process_table()
    assert launch.look(table, set()) is None
    system.now = procclean.START_CHECK + procclean.START_IDLE + 0.1    # its CPU time as before
    outcome = launch.look(table, set())
    assert (outcome == ("ok", {"listening": False})) is started, outcome


def test_the_port_awaited_is_never_said_to_be_elsewhere(in_tmp):
    """`make start ARGS=--wait` of a uvicorn --reload backend said `backend listens on port
    8000, not on 8000: if 8000 is its port, set port = 8000 ...` (qa-daily's real stack):
    the port it waits for opened between the look that found it free and the look for
    other ports, which counted it.  Only other ports are said."""
    out = io.StringIO()
    system = FakeSystem([FakeProc(700, 1, "uvicorn main:app --reload")],
                        listeners=[procclean.Listener(8000, "127.0.0.1", "ipv4", 700)])
    ctx = procclean.Context(system, procclean.load_config(environ={}),
                            procclean.Reporter(stdout=out, stderr=out, environ={}),
                            wait=True)
    service = procclean.Service("backend", "", "backend.pid", "backend.log", 8000,
                                "uvicorn main:app --reload", ".")
    launch = procclean.StartWatch(ctx, service, FakeChild(700), "uvicorn", (0, None))
    table = system.process_table()
    procclean.say_listening_elsewhere(ctx, [launch], table, set())
    assert out.getvalue() == ""
    system._listeners.append(procclean.Listener(5678, "127.0.0.1", "ipv4", 700))
    system._listeners.append(procclean.Listener(8123, "127.0.0.1", "ipv4", 700))
    system.now += 1.0
    procclean.say_listening_elsewhere(ctx, [launch], table, set())
    assert "backend listens on port 8123, not on 8000" in out.getvalue()


def test_restart_lists_what_it_stopped_and_what_it_started(in_tmp):
    # term_delay=0: gone at once, the fake clock stays at 0 (_watch_start can spin on
    # a clock that has moved by sums of fractions; a real clock moves on).
    system = Launcher([FakeProc(100, 1, "python main.py", term_delay=0)])
    document, _ = run_json(["restart-backend"], system)
    assert [(p["pid"], p["outcome"]) for p in document["processes"]] == [(100, "stopped")]
    assert [s["pid"] for s in document["started"]] == [700]


def test_clean_lists_the_files_it_removed_and_warns_about_the_kept(in_tmp):
    (in_tmp / "backend.pid").write_text("100\n")
    (in_tmp / "frontend.pid").write_text("4242\n")
    (in_tmp / "frontend.log").write_text("x")
    system = FakeSystem([FakeProc(100, 1, "python main.py")])
    document, err = run_json(["clean"], system)
    assert document["removed"] == ["frontend.pid", "frontend.log"]
    assert "clean_kept" in events(document) and "backend.pid: kept" in err


def test_kill_port_lists_the_holders_and_the_freed_ports():
    system = FakeSystem([FakeProc(555, 1, "python3 -m http.server 9000")],
                        listeners=[procclean.Listener(9000, "0.0.0.0", "ipv4", 555)])
    document, _ = run_json(["kill-port", "9000", "9001"], system)
    assert [(p["pid"], p["outcome"]) for p in document["processes"]] == [(555, "stopped")]
    said = dict((e["event"], e) for e in document["events"])
    assert said["port_nothing"]["port"] == 9001 and said["port_freed"]["port"] == 9000


def test_doctor_lists_findings_with_their_fix_commands(in_tmp):
    (in_tmp / "backend.pid").write_text("4242\n")
    document, _ = run_json(["doctor", "backend"], FakeSystem([]), code=1)
    finding, = document["findings"]
    assert finding["finding"] == "d_stale" and finding["fixable"] is True
    assert finding["command"] == "python3 %s clean backend" % procclean.__file__
    assert "4242" in finding["text"] and finding["fix"] == finding["command"]
    assert {"doctor_env", "doctor_tools", "doctor_count"} <= set(events(document))


def test_doctor_fix_lists_what_it_fixed(in_tmp):
    (in_tmp / "backend.pid").write_text("4242\n")
    document, _ = run_json(["doctor", "backend", "--fix"], FakeSystem([]))
    assert [f["finding"] for f in document["fixed"]] == ["d_stale"]
    assert document["findings"] == [] and document["removed"] == ["backend.pid"]


def test_init_lists_the_services_found_and_the_files(in_tmp):
    (in_tmp / "main.py").write_text("from fastapi import FastAPI\napp = FastAPI()\n")
    (in_tmp / "requirements.txt").write_text("fastapi\nuvicorn\n")
    document, _ = run_json(["init"], FakeSystem([]))
    assert [s["service"] for s in document["services"]] == ["backend"]
    config, paste = document["files"]
    assert (config["path"], config["outcome"]) == ("procclean.ini", "written")
    assert (in_tmp / "procclean.ini").read_text() == config["text"]
    assert paste["outcome"] == "to-paste" and "stop-backend:" in paste["text"]


def test_logs_lists_the_lines_with_their_service(in_tmp):
    (in_tmp / "backend.log").write_text("one\ntwo\n")
    document, _ = run_json(["logs", "backend", "frontend"], FakeSystem([]))
    assert document["lines"] == [{"service": "backend", "line": "one"},
                                 {"service": "backend", "line": "two"}]
    assert events(document) == ["no_log"]


class Appending(FakeSystem):
    """A log that gets one more line, then Ctrl-C."""

    def read_new(self, path, offset, identity):
        if getattr(self, "done", False):
            raise KeyboardInterrupt
        self.done = True
        return b"three\n", offset + 6, identity


def test_logs_follow_prints_one_object_per_line(in_tmp):
    (in_tmp / "backend.log").write_text("one\ntwo\n")
    code, out, _ = invoke(["logs", "backend", "-f", "-n", "1", "--json"], Appending([]))
    assert code == procclean.EXIT_INTERRUPTED      # Ctrl-C ends it: by SIGINT, as tail -f
    assert [json.loads(line) for line in out.splitlines()] == [
        {"service": "backend", "line": "two"}, {"service": "backend", "line": "three"}]


def test_an_error_is_in_the_document_and_on_stderr():
    code, out, err = invoke(["stop", "nosuch", "--json"], FakeSystem([]))
    assert code == 2 and "unknown service 'nosuch'" in err
    document = json.loads(out)
    assert document["exit_code"] == 2 and "unknown service 'nosuch'" in document["error"]


def test_quiet_does_not_hide_the_document():
    code, out, _ = invoke(["stop", "--json", "--quiet"], FakeSystem([]))
    assert code == 0 and json.loads(out)["processes"] == []


def test_foreground_commands_say_json_is_not_theirs_in_a_document():
    for argv in (["dev", "--json"], ["supervise", "backend", "--json"]):
        code, out, err = invoke(argv, FakeSystem([]))
        assert code == 2 and "logs -f --json" in err, (argv, err)
        document = json.loads(out)      # nothing started; the error, as JSON asks
        assert (document["command"], document["exit_code"]) == (argv[0], 2)
        assert "logs -f --json" in document["error"] and document["events"] == []


@pytest.mark.parametrize("argv, said", [
    (["bogus"], "unknown command 'bogus'"),
    (["stop", "--set", "backend.port=x"], "invalid port 'x'"),
    (["status", "--grace", "-1"], "--grace"),
    (["stop-backend", "--bogus-option"], "unrecognized option '--bogus-option'"),
])
def test_an_error_before_the_command_runs_is_a_document_too(argv, said):
    """A bad command, setting or option stops procclean before it looks at anything;
    with --json the error is still one document on stdout (and a line on stderr)."""
    code, out, err = invoke(argv + ["--json"], FakeSystem([]))
    assert code == 2 and said in err, err
    document = json.loads(out)
    assert (document["command"], document["exit_code"]) == (argv[0].split("-")[0], 2)
    assert said in document["error"]


@pytest.mark.parametrize("argv", [["status", "nosuch"], ["status", "--grace", "-1"]])
def test_a_status_error_document_has_its_services_list(argv):
    """A script reading status --json finds `services` in every document it gets, an
    error's too (empty), as stop's has `processes`."""
    code, out, _ = invoke(argv + ["--json"], FakeSystem([]))
    document = json.loads(out)
    assert code == 2 and document["services"] == [] and document["error"]


@pytest.mark.parametrize("argv, code", [(["status"], 0), (["status", "--check"], 3)])
def test_status_document_is_one_like_every_other(argv, code):
    """status --json had a shape of its own: no `command`, no `exit_code` (a script had
    to read the process's status to know --check's verdict), no `events` (--check's
    reason only on stderr). It is now the document every command prints."""
    rc, out, err = invoke(argv + ["backend", "--json"], FakeSystem([]))
    document = json.loads(out)
    assert (rc, document["command"], document["exit_code"]) == (code, "status", code)
    assert document["services"][0]["name"] == "backend" and "events" in document


@pytest.mark.parametrize("option", ["--version", "--help"])
def test_version_and_help_print_json_when_asked(option):
    """`--version --json` and `--help --json` printed their text: every command's --json
    prints JSON."""
    code, out, _ = invoke([option, "--json"], FakeSystem([]))
    document = json.loads(out)
    assert (code, document["command"], document["exit_code"]) == (0, option[2:], 0)
    assert document[option[2:]].startswith("procclean " if option == "--version"
                                           else "usage: ")
