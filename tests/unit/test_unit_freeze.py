"""Children forked between the table read and the signals (issue 19 item 3), on the fake
system: stop holds its targets still with SIGSTOP, looks again (finding what they forked
meanwhile), then SIGTERM to all and SIGCONT, so that a task runner forking jobs every few
milliseconds leaves none behind; a SIGTERM handler still runs (after SIGCONT)."""
import signal

import pytest

from fakes import FakeProc, FakeSystem, invoke

STOP, CONT, TERM, KILL = signal.SIGSTOP, signal.SIGCONT, signal.SIGTERM, signal.SIGKILL


class Forking(FakeSystem):
    """A machine where each process in `forkers`, while it runs (not stopped, alive),
    forks a job before every signal procclean sends: the fork that lands between the
    table read and the signals.  A job whose parent died is reparented to PID 1."""

    def __init__(self, procs, forkers, setsid=True, **kw):
        FakeSystem.__init__(self, procs, freeze=True, **kw)
        self.forkers = forkers
        self.setsid = setsid
        self.next_pid = 1000
        self.jobs = []

    def send_signal(self, pid, signum):
        for parent in [self.procs[p] for p in self.forkers if p in self.procs]:
            if self._alive(parent) and not parent.stopped:
                self.next_pid += 1
                sid = self.next_pid if self.setsid else parent.sid
                pgid = self.next_pid if self.setsid else parent.pgid
                job = FakeProc(self.next_pid, parent.pid, "job --run 42", sid=sid, pgid=pgid)
                self.procs[job.pid] = job
                self.jobs.append(job.pid)
        FakeSystem.send_signal(self, pid, signum)

    def process_table(self, previous=None):
        table = FakeSystem.process_table(self, previous)
        for proc in table.values():
            if proc.ppid not in table and proc.ppid not in (0, 1, 899, 900):
                proc.ppid = 1
        return table

    def living_jobs(self):
        return [p for p in self.jobs if self._alive(self.procs[p])]


def runner(term_delay=0, **kw):
    """A task runner in the project (no session or group of its own: the shell's) that
    SIGTERM ends at once (no handler)."""
    return FakeProc(100, 1, "python3 main.py", sid=50, pgid=50, term_delay=term_delay, **kw)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("command", ["stop", "force-clean"])
def test_a_task_runner_forking_jobs_leaves_none_behind(in_tmp, command):
    system = Forking([runner(), FakeProc(101, 100, "job --run 1", sid=101, pgid=101)], [100])
    code, out, err = invoke([command, "backend"], system)
    assert code == 0, out + err
    assert system.jobs, "the fake forked nothing"
    assert system.living_jobs() == [], (out, system.sent)
    assert "appeared while stopping" in out, out


def test_stop_then_term_then_cont_to_each_frozen_process(in_tmp):
    system = Forking([runner(), FakeProc(101, 100, "job --run 1", sid=101, pgid=101)], [100])
    code, out, err = invoke(["stop", "backend"], system)
    assert code == 0, out + err
    order = {}
    for _, pid, sig in system.sent:
        order.setdefault(pid, []).append(sig)
    stopped = [pid for pid, sigs in order.items() if STOP in sigs]
    assert 100 in stopped and 101 in stopped, order
    for pid in stopped:
        sigs = order[pid]
        assert sigs.index(STOP) < sigs.index(TERM) < sigs.index(CONT), (pid, sigs)
        assert sigs.count(STOP) == sigs.count(CONT) == 1, (pid, sigs)
    # never anything but the targets: procclean (900), its parent (899), PID 1
    assert not set(order) & set([1, 899, 900]), order


def test_a_term_handler_runs_once_continued(in_tmp):
    """The target handles SIGTERM (a FastAPI lifespan): stopped, it gets TERM and then
    CONT, and exits by its handler within the grace: no SIGKILL."""
    system = FakeSystem([runner(term_delay=0.3)], freeze=True)
    code, out, err = invoke(["stop", "backend"], system)
    assert code == 0, out + err
    assert [sig for _, _, sig in system.sent] == [STOP, TERM, CONT], system.sent
    assert "stopped" in out and "SIGKILL" not in out, out


def test_the_sigcont_follows_its_sigterm_without_a_look_between(in_tmp):
    """A held target that took its SIGTERM is still stopped, so still the same process:
    its SIGCONT goes at once, not after a read of /proc (one a target on every stop)."""
    class Watched(FakeSystem):
        def same_process(self, proc):
            self.sent.append((None, proc.pid, "looked"))
            return FakeSystem.same_process(self, proc)

    system = Watched([runner(term_delay=0.3)], freeze=True)
    code, out, err = invoke(["stop", "backend"], system)
    assert code == 0, out + err
    events = [sig for _, pid, sig in system.sent if pid == 100]
    assert events[events.index(TERM) + 1] == CONT, events


def test_the_top_of_a_terminals_foreground_job_is_not_stopped(in_tmp):
    """`python3 main.py` typed in a terminal: a SIGSTOP would make its shell take the
    terminal back.  It gets TERM only; its children are held; what it forks keeps its
    process group, which the looks follow."""
    top = FakeProc(100, 1, "python3 main.py", sid=50, pgid=100)
    top.foreground = True
    system = Forking([top, FakeProc(101, 100, "job --run 1", sid=50, pgid=100)], [100],
                     setsid=False)
    code, out, err = invoke(["stop", "backend"], system)
    assert code == 0, out + err
    assert STOP not in top.signals and TERM in top.signals, top.signals
    assert system.procs[101].signals[:1] == [STOP], system.procs[101].signals
    assert system.living_jobs() == [], (out, system.sent)


def test_an_interrupt_while_frozen_continues_every_stopped_process(in_tmp):
    class Interrupted(FakeSystem):
        def process_table(self, previous=None):
            if any(p.stopped for p in self.procs.values()):
                raise KeyboardInterrupt
            return FakeSystem.process_table(self, previous)

    system = Interrupted([runner(), FakeProc(101, 100, "job --run 1")], freeze=True)
    code, out, err = invoke(["stop", "backend"], system)
    assert [p.stopped for p in system.procs.values()] == [False, False], system.sent
    assert [sig for _, pid, sig in system.sent if pid == 100] == [STOP, CONT], system.sent


def test_nothing_is_frozen_for_a_dry_run(in_tmp):
    system = FakeSystem([runner()], freeze=True)
    code, out, err = invoke(["stop", "backend", "--dry-run"], system)
    assert code == 0 and system.sent == [], system.sent
