"""A fake machine for unit tests: a process table, signals and a clock, all in memory."""
import errno
import io
import os
import signal
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

import procclean  # noqa: E402


class FakeProc(object):
    """A process that reacts to signals as told: exits `term_delay` seconds after
    SIGTERM (None: ignores it), dies on SIGKILL unless `unkillable`."""

    def __init__(self, pid, ppid, command, user="dev", term_delay=0.05, eperm=False,
                 zombie=False, start=1000.0, unkillable=False, cwd=None, tag=None,
                 sid=None, pgid=None):
        self.pid = pid
        self.ppid = ppid
        self.command = command
        self.user = user
        self.term_delay = term_delay
        self.eperm = eperm
        self.zombie = zombie
        self.start = start
        self.unkillable = unkillable
        self.dies_at = None
        self.signals = []
        self.cwd = os.getcwd() if cwd is None else cwd   # default: inside the project
        self.tag = tag          # (project, service) as the environment would carry it
        self.sid = sid
        self.pgid = pgid
        self.stopped = False    # SIGSTOP'd (FakeSystem(freeze=True) only)
        self.term_pending = False
        self.foreground = False     # in its terminal's foreground process group
        self.state = "S"            # its run state (R: running or waiting for a CPU)
        self.exit_status = 256      # a zombie's wait status: exited 1

    def process(self):
        return procclean.Process(self.pid, self.ppid, self.user, self.command,
                                 zombie=self.zombie, start=self.start, elapsed=60.0,
                                 sid=self.sid, pgid=self.pgid,
                                 cpu_seconds=1.5, rss_kb=2048,
                                 line="%s %d %d 0 09:00 ? 00:00:01 %s" % (
                                     self.user, self.pid, self.ppid, self.command))


class FakeSystem(procclean.System):
    """procclean.System with the machine replaced by FakeProcs and a fake clock."""

    def __init__(self, procs, self_pid=900, parent_pid=899, listeners=(), euid=1000,
                 freeze=False):
        procclean.System.__init__(self)
        self.freezes = freeze   # stop holds its targets with SIGSTOP (as on Linux)
        self.procs = dict((p.pid, p) for p in procs)
        self.now = 0.0
        self.sleeps = []
        self.sent = []          # (time, pid, signal) in order
        self._self_pid = self_pid
        self._parent_pid = parent_pid
        self._listeners = list(listeners)
        self._euid = euid
        self.table_reads = 0

    # clock
    def clock(self):
        return self.now

    def wall_time(self):
        return 2000.0 + self.now

    def sleep_until_gone(self, procs, seconds):
        self.sleep(seconds)

    def sleep(self, seconds):
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds

    def self_pid(self):
        return self._self_pid

    def parent_pid(self):
        return self._parent_pid

    def euid(self):
        return self._euid

    def _alive(self, proc):
        return proc.dies_at is None or self.now < proc.dies_at

    def process_table(self, previous=None):
        self.table_reads += 1
        return dict((pid, p.process()) for pid, p in self.procs.items() if self._alive(p))

    def send_signal(self, pid, signum):
        assert pid >= 2, "signalled PID %d" % pid
        proc = self.procs.get(pid)
        if proc is None or not self._alive(proc):
            raise OSError(errno.ESRCH, "No such process")
        if proc.eperm:
            raise OSError(errno.EPERM, "Operation not permitted")
        self.sent.append((self.now, pid, signum))
        proc.signals.append(signum)
        if signum == signal.SIGSTOP:
            proc.stopped = True
        elif signum == signal.SIGCONT:
            proc.stopped = False
            if proc.term_pending:
                proc.term_pending = False
                self._terminate(proc)
        elif signum == signal.SIGTERM and proc.stopped:
            proc.term_pending = True        # delivered when it runs again
        elif signum == signal.SIGKILL and not proc.unkillable:
            proc.dies_at = min(proc.dies_at or self.now, self.now)
        elif signum == signal.SIGTERM:
            self._terminate(proc)

    def _terminate(self, proc):
        if proc.term_delay is not None:
            when = self.now + proc.term_delay
            proc.dies_at = when if proc.dies_at is None else min(proc.dies_at, when)

    def proc_stat(self, pid):
        """A FakeProc's /proc/PID/stat (its run state), never the machine's."""
        proc = self.procs.get(pid)
        if proc is None or not self._alive(proc):
            return None
        return procclean.ProcStat(pid=pid, comm=proc.command.split()[0],
                                  state="Z" if proc.zombie else proc.state,
                                  ppid=proc.ppid, pgid=proc.pgid or pid, sid=proc.sid or pid,
                                  cpu_ticks=150, start_ticks=0, rss_pages=512,
                                  tpgid=pid if proc.foreground else -1)

    def runnable(self, pid):
        return pid in self.procs and self.procs[pid].state == "R"

    def exit_status(self, pid):
        proc = self.procs.get(pid)
        return proc.exit_status if self.proc_stat(pid) and proc.zombie else 0

    def can_freeze(self):
        return self.freezes

    def in_foreground(self, proc):
        return self.procs[proc.pid].foreground if proc.pid in self.procs else False

    def wait_stopped(self, procs, timeout):
        return [p for p in procs if p.pid in self.procs and self._alive(self.procs[p.pid])
                and not self.procs[p.pid].stopped]

    def still_running(self, procs):
        return [p for p in procs
                if p.pid in self.procs and self._alive(self.procs[p.pid])
                and not self.procs[p.pid].zombie]

    def process_tags(self, table):
        return dict((pid, p.tag) for pid, p in self.procs.items()
                    if pid in table and p.tag is not None)

    def process_cwds(self, pids):
        return dict((pid, self.procs[pid].cwd if pid in self.procs else None) for pid in pids)

    def start_time(self, pid):
        proc = self.procs.get(pid)
        return proc.start if proc else None

    def start_record(self, pid):
        proc = self.procs.get(pid)
        return {"start": proc.start} if proc is not None and self._alive(proc) else None

    def connected(self, pids):
        return None     # cannot tell (the machine's /proc knows nothing of these PIDs)

    def listeners(self, ports=None):
        return [l for l in self._listeners if ports is None or l.port in ports]

    # Service locks in memory: a unit test never leaves or meets a lock file in the
    # folder it runs in (tests that need the real ones use RealLocks).
    def lock(self, path, wait, waiting=None):
        self.locks = getattr(self, "locks", [])
        self.locks.append(path)
        return procclean.ServiceLock(path, None, "none"), None

    def unlock(self, handle):
        pass

    health_answers = {}     # url -> (status or None, seconds, error)
    published = None        # host port -> [(ID, name, image)] `docker ps` shows; None: no docker

    def containers_on(self, port):
        return None if self.published is None else self.published.get(port, [])


    def http_get(self, url, timeout):
        self.now += 0.001
        return self.health_answers.get(url, (None, timeout, "connection refused"))


def invoke(argv, system, environ=None):
    """procclean.main(argv) on `system`: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    env = {"LANG": "C.UTF-8"} if environ is None else environ
    code = procclean.main(argv, system=system, stdout=out, stderr=err, environ=env)
    return code, out.getvalue(), err.getvalue()


class RealLocks(FakeSystem):
    """A FakeSystem whose service locks are the real lock files (in the test's folder)."""

    lock = procclean.System.lock
    unlock = procclean.System.unlock


class FakeChild(object):
    """What a FakeSystem's spawn hands back in place of a Popen: a child that runs."""

    def __init__(self, pid):
        self.pid = pid

    def poll(self):
        return None


class TickSystem(procclean.System):
    """A real System whose /proc answers come from a dict (pid -> ProcStat), with a
    clock of 100 ticks a second, a boot time and a boot id of the test's choosing."""

    HZ = 100

    def __init__(self, stats, boot=1000.0, boot_id="boot-1"):
        procclean.System.__init__(self)
        self.stats = stats
        self._has_proc = True
        self._boot_time = boot
        self._boot_id = boot_id

    def _clock_ticks(self):
        return self.HZ

    def proc_stat(self, pid):
        return self.stats.get(pid)
