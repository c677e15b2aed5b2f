"""What the process table reads from /proc, and when (issue 23: read only what can matter).

These read this machine's /proc (only read it: nothing is signalled, no procclean command
runs); they skip where there is none."""
import os
import sys

import pytest

import procclean
from rename_in_place import RENAME_FUNCTION

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/stat")
                                or not sys.platform.startswith("linux"),
                                reason="needs Linux /proc")


@pytest.fixture
def reads(monkeypatch):
    """The /proc files procclean reads, as (pid, file name)."""
    seen = []
    real = procclean._read_small

    def recording(path, dir_fd=None):
        parts = path.replace("/proc/", "").split("/")
        if len(parts) == 2 and parts[0].isdigit():
            seen.append((int(parts[0]), parts[1]))
        return real(path, dir_fd)

    monkeypatch.setattr(procclean, "_read_small", recording)
    return seen


def kernel_thread(pid):
    """Whether `pid` is a kernel thread; None when it is gone (processes come and go on
    the machine while a test reads /proc)."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            return bool(procclean.parse_proc_stat(f.read()).flags & procclean.PF_KTHREAD)
    except (OSError, ValueError, IndexError):
        return None


def test_a_kernel_threads_command_line_and_environment_are_never_read(reads):
    table = procclean.System().process_table()
    assert os.getpid() in table
    cmdlines = set(pid for pid, name in reads if name == "cmdline")
    environs = set(pid for pid, name in reads if name == "environ")
    assert os.getpid() in cmdlines and os.getpid() in environs
    assert environs <= cmdlines     # each right after its command line (a warm page)
    kthreads = set(pid for pid in table if kernel_thread(pid))
    assert not kthreads & (cmdlines | environs)
    for pid in kthreads:        # shown as ps shows it: [comm]
        assert table[pid].command.startswith("[") and table[pid].command.endswith("]")
    for pid in set(table) - cmdlines:
        assert kernel_thread(pid) in (True, None), table[pid]     # None: gone since


def test_without_tags_the_table_reads_no_environment_and_tags_read_only_what_can_hold_one(
        reads):
    """kill-port never acts on a tag: its table reads no environment.  Asked for tags
    later, procclean reads only the environments that can hold one, once."""
    system = procclean.System()
    system.read_tags = False
    table = system.process_table()
    assert [r for r in reads if r[1] == "environ"] == []
    del reads[:]
    tags = system.process_tags(table)
    read = set(pid for pid, name in reads if name == "environ")
    euid = os.geteuid()
    assert os.getpid() in read
    for pid in read:
        proc = table[pid]
        assert not proc.zombie and (euid == 0 or proc.uid == euid), proc
        assert kernel_thread(pid) in (False, None), proc          # None: gone since
    assert all(tag[0] for tag in tags.values())
    del reads[:]
    # asked again (a second look): nothing read again but what read empty (an exec or
    # an exit under way: 9774722)
    empty = set(p for p in table if system._tags.get(table[p].identity) is False)
    system.process_tags(table)
    assert [r for r in reads if r[1] == "environ" and r[0] in set(table) - empty] == []


def test_kill_port_turns_the_tags_off_and_stop_keeps_them():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from fakes import FakeProc, FakeSystem, invoke
    holder = FakeProc(100, 1, "python3 -m http.server 8000")
    listeners = [procclean.Listener(8000, "127.0.0.1", "ipv4", pid=100)]
    system = FakeSystem([holder], listeners=listeners)
    code, out, err = invoke(["kill-port", "8000"], system)
    assert code == 0 and [pid for _, pid, _ in system.sent] == [100], (out, err)
    assert system.read_tags is False
    system = FakeSystem([FakeProc(100, 1, "python3 main.py")])
    code, out, err = invoke(["stop"], system)
    assert code == 0 and system.read_tags is True, (out, err)


def tagged_child(tmp_path):
    """A Python that carries the tag of tmp_path's worker, once it runs (its exec done:
    right after Popen returns, its environment is often not placed yet); ends when its
    stdin closes."""
    import subprocess
    env = dict(os.environ, PROCCLEAN_PROJECT=str(tmp_path), PROCCLEAN_SERVICE="worker")
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; print('up', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    assert child.stdout.readline() == b"up\n"
    return child


def test_the_tag_is_found_in_the_tables_pass_and_after_it(reads, monkeypatch, tmp_path):
    child = tagged_child(tmp_path)
    try:
        for read_tags in (True, False):
            system = procclean.System()
            system.read_tags = read_tags
            table = system.process_table()
            assert child.pid in table
            assert system.process_tags(table).get(child.pid) == (str(tmp_path), "worker")
    finally:
        child.stdin.close()
        child.wait()


def read_empty_once(monkeypatch, path):
    """/proc's `path` (relative to /proc) reads empty the first time, as in an exec under
    way; the list returned has the path once it did."""
    real, placed = procclean._read_small, []

    def exec_under_way(name, dir_fd=None):
        if name == path and not placed:
            placed.append(name)
            return b""
        return real(name, dir_fd)

    monkeypatch.setattr(procclean, "_read_small", exec_under_way)
    return placed


def test_a_process_whose_exec_is_under_way_is_read_again(monkeypatch, tmp_path):
    """Right after Popen returns, /proc/PID/environ is empty two times in three (here,
    /tmp/review-31/execrace2.py): an exec closes its files (Popen's pipe) before it
    places the new environment.  The table's pass remembered 'no tag' for such a
    process for the whole command: a tagged one caught so at one of stop's looks (a
    helper forked and run during the grace, out of the tree) was missed at every later
    look.  An empty environment is read again."""
    child = tagged_child(tmp_path)
    placed = read_empty_once(monkeypatch, "%d/environ" % child.pid)
    try:
        system = procclean.System()
        table = system.process_table()
        assert placed, "the table's pass read no environment"
        assert system.process_tags(table).get(child.pid) == (str(tmp_path), "worker")
    finally:
        child.stdin.close()
        child.wait()


def test_a_command_line_read_while_its_exec_is_under_way_is_read_again(monkeypatch,
                                                                         tmp_path):
    """An exec places the new arguments after it closes the files: a look at that moment
    reads an empty /proc/PID/cmdline (the process shows as `[comm]`).  The next look,
    which keeps what it read of every process it saw before, reads that one again: a
    pattern then finds it within the same stop."""
    child = tagged_child(tmp_path)
    placed = read_empty_once(monkeypatch, "%d/cmdline" % child.pid)
    try:
        system = procclean.System()
        first = system.process_table()
        assert placed and first[child.pid].command.startswith("["), first[child.pid]
        again = system.process_table(previous=first)
        assert "sys.stdin.read()" in again[child.pid].command
        assert again[os.getpid()] is first[os.getpid()]     # the others as they were
    finally:
        child.stdin.close()
        child.wait()


def test_a_command_line_read_again_is_settled_for_the_next_looks(monkeypatch, tmp_path):
    """d4b1877 kept a PID read while it exec'd as 'unsettled' until a look that kept the
    others read it again: a whole read of the table (or its exit) left it so, and every
    later look of the command listed /proc though no process was created since
    (test_a_look_lists_proc_again_only_when_a_process_was_created failed so in a unit
    tier: its child was read in its exec).  Each pass settles what it reads."""
    child = tagged_child(tmp_path)
    placed = read_empty_once(monkeypatch, "%d/cmdline" % child.pid)
    try:
        system = procclean.System()
        system.process_table()                  # the child read in its exec
        assert placed and child.pid in system._unsettled
        system.process_table()                  # all read again: the child whole
        assert child.pid not in system._unsettled
    finally:
        child.stdin.close()
        child.wait()


# Environments read before (issue 23): what /proc/PID/environ shows is fixed when a
# process execs, and stat's argument and environment addresses tell when it did.

# The marks are kept only where /proc is this PID namespace's and stacks are placed at
# random (every Linux by default).
def _marks_kept_here():
    try:
        with open("/proc/self/stat", "rb") as f:
            own = f.read()
    except OSError:
        return False
    return procclean.environ_mark(own) is not None and procclean.System()._last_pid() is not None


keeps_marks = pytest.mark.skipif(not _marks_kept_here(),
                                 reason="no address randomisation here, or /proc is another "
                                        "namespace's")


def private(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir(mode=0o700)
    return folder


def remembering(folder, may_write=True):
    system = procclean.System()
    system.private_folders = ((str(folder), False),)
    system.may_write = may_write
    return system


def environ_reads(reads, pids):
    return set(pid for pid, name in reads if name == "environ" and pid in pids)


def wait_for(check, what):
    import time
    for _ in range(2000):       # a bound, not a timing: each try is a read of /proc
        if check():
            return
        time.sleep(0.005)
    raise AssertionError(what)


@keeps_marks
def test_an_environment_found_untagged_is_not_read_again_by_the_next_command(
        reads, tmp_path):
    """The first table reads every environment it may and keeps the marks of those
    without a tag in a private file; the next command's table (a new System, as a new
    procclean process has) reads only the others.  A tagged process's environment is
    read every time: it is never remembered."""
    import subprocess
    folder = private(tmp_path)
    tag = dict(os.environ, PROCCLEAN_PROJECT=str(tmp_path), PROCCLEAN_SERVICE="worker")
    plain = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE)
    tagged = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                              stdin=subprocess.PIPE, env=tag)
    try:
        ours = set([os.getpid(), plain.pid, tagged.pid])
        first = remembering(folder)
        table = first.process_table()
        assert environ_reads(reads, ours) == ours
        kept = (folder / "procclean-environs").read_bytes().split(b"\n")
        assert kept[0].startswith(b"procclean-environs 1 ")
        assert (folder / "procclean-environs").stat().st_mode & 0o777 == 0o600
        marks = dict((int(line.split(b":")[0]), line) for line in kept[1:])
        assert os.getpid() in marks and plain.pid in marks and tagged.pid not in marks
        del reads[:]
        second = remembering(folder)
        table = second.process_table()
        assert environ_reads(reads, ours) == set([tagged.pid])
        tags = second.process_tags(table)
        assert tags.get(tagged.pid) == (str(tmp_path), "worker")
        assert plain.pid not in tags and os.getpid() not in tags
    finally:
        for child in (plain, tagged):
            child.stdin.close()
            child.wait()


@keeps_marks
def test_a_process_that_execs_a_tagged_program_is_read_again(reads, tmp_path):
    """Same PID, same start: only the new stack's addresses tell that a process now
    runs another program with another environment, and they are enough."""
    import subprocess
    folder = private(tmp_path)
    script = ("import os, sys; sys.stdin.readline(); env = dict(os.environ, "
              "PROCCLEAN_PROJECT=sys.argv[1], PROCCLEAN_SERVICE='late'); "
              "os.execve(sys.executable, [sys.executable, '-c', "
              "'import sys; sys.stdin.read()', 'execd'], env)")
    child = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)],
                             stdin=subprocess.PIPE)
    try:
        table = remembering(folder).process_table()
        assert child.pid in table and child.pid not in remembering(folder).process_tags(table)
        assert b"\n%d:" % child.pid in (folder / "procclean-environs").read_bytes()
        child.stdin.write(b"go\n")
        child.stdin.flush()
        # (the first program's text holds 'execd' too: its last argument is the folder)
        wait_for(lambda: open("/proc/%d/cmdline" % child.pid, "rb").read().endswith(
            b"\0execd\0"), "the child never ran its second program")
        del reads[:]
        system = remembering(folder)
        table = system.process_table()
        assert child.pid in environ_reads(reads, set([child.pid]))
        assert system.process_tags(table).get(child.pid) == (str(tmp_path), "late")
    finally:
        child.stdin.close()
        child.wait()


@keeps_marks
@pytest.mark.parametrize("spoil", ["others_can_write", "a_link", "another_boot"])
def test_marks_are_kept_and_used_only_where_no_one_else_can_write_them(
        reads, tmp_path, spoil):
    """A folder others can write into, or a link, is not used (every environment is
    read, nothing is written there); marks written for another boot or PID namespace
    are not believed."""
    folder = private(tmp_path)
    system = remembering(folder)
    if spoil == "others_can_write":
        folder.chmod(0o777)
    elif spoil == "a_link":
        link = tmp_path / "link"
        link.symlink_to(folder)
        system.private_folders = ((str(link), False),)
    else:
        procclean.System().process_table()      # no folder: nothing kept
        remembering(folder).process_table()
        data = (folder / "procclean-environs").read_bytes().split(b"\n")
        (folder / "procclean-environs").write_bytes(
            b"\n".join([b"procclean-environs 1 another-boot pid:[1]"] + data[1:]))
        del reads[:]
    system.process_table()
    assert os.getpid() in environ_reads(reads, set([os.getpid()]))
    if spoil != "another_boot":
        assert os.listdir(str(folder)) == []


def test_the_temporary_folder_is_made_private_and_one_of_anothers_is_refused(tmp_path):
    mine = tmp_path / ("procclean-%d" % os.geteuid())
    folders = procclean.private_folders({"TMPDIR": str(tmp_path), "XDG_RUNTIME_DIR": "run"})
    assert folders == ((str(mine), True),)      # a relative XDG_RUNTIME_DIR is ignored
    system = procclean.System()
    system.private_folders = folders
    assert system.private_folder() is None and not mine.exists()   # a look: nothing made
    system.may_write = True
    assert system.private_folder() == str(mine)
    assert mine.stat().st_mode & 0o777 == 0o700
    mine.chmod(0o775)
    assert system.private_folder() is None      # others may write into it: not used
    assert procclean.private_folders({"XDG_RUNTIME_DIR": "/run/user/7", "TMPDIR": ""})[0] \
        == ("/run/user/7", False)


@pytest.mark.skipif(procclean.System()._last_pid() is None,
                    reason="/proc is another PID namespace's here")
def test_a_look_lists_proc_again_only_when_a_process_was_created(monkeypatch):
    """The kernel's last PID (/proc/loadavg) moves with every process created; while it
    stays, a look for new PIDs is the table read before (no listing of /proc)."""
    import subprocess
    system = procclean.System()
    before = system._last_pid()
    table = system.process_table()
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE)
    try:
        assert system._last_pid() > before     # (no wrap-around of pid_max in a test)
        again = system.process_table(previous=table)
        assert child.pid in again and child.pid not in table
        monkeypatch.setattr(system, "_last_pid", lambda: 12345)
        table = system.process_table()
        # (a process of the machine read in its exec or its exit, cmdline empty, is read
        # again at the next look: not this test's business)
        system._unsettled.clear()
        listed = []
        real_listdir = os.listdir
        monkeypatch.setattr(os, "listdir", lambda *a: listed.append(a) or real_listdir(*a))
        same = system.process_table(previous=table)
        assert listed == [] and same == table and same is not table
        assert system.process_table(previous=same) == table and listed == []
        assert system.process_table(previous=again) is not None and len(listed) >= 1
    finally:
        child.stdin.close()
        child.wait()


@pytest.mark.parametrize("remembered, kept, new, written", [
    (0, 0, 1, True),        # none remembered yet: the first marks are worth a write
    (100, 100, 31, False),  # a few new ones: cheaper to read them again next time
    (100, 100, 32, True),
    (100, 50, 0, False),
    (100, 49, 0, True),     # more than half gone: the file is pruned
])
def test_the_marks_are_rewritten_only_when_it_pays(tmp_path, remembered, kept, new, written):
    system = remembering(private(tmp_path))
    system._environs_file = str(tmp_path / "run" / "procclean-environs")
    system._environs_head = system._environs_header()
    system._environs = set(b"%d:1:2:3:4:5" % i for i in range(remembered))
    system._environs_kept = sorted(system._environs)[:kept]
    system._environs_new = [b"%d:9:9:9:9:9" % i for i in range(new)]
    system._remember_environs()
    assert os.path.exists(system._environs_file) == written
    if written:
        lines = open(system._environs_file, "rb").read().split(b"\n")
        assert len(lines) == 1 + kept + new and lines[0] == system._environs_header()


@keeps_marks
def test_a_command_that_only_looks_uses_the_marks_and_writes_none(reads, tmp_path, monkeypatch):
    """SPEC: status, show-processes, doctor and --dry-run create nothing: they read the
    marks a stop or start kept, never make the folder nor write the file."""
    monkeypatch.chdir(tmp_path)
    temp = tmp_path / "tmp"
    temp.mkdir()
    environ = {"TMPDIR": str(temp), "PATH": os.environ.get("PATH", "")}
    for argv in (["status"], ["show-processes"], ["doctor"], ["stop", "--dry-run"]):
        code = procclean.main(argv + ["--json"], stdout=open(os.devnull, "w"),
                              stderr=open(os.devnull, "w"), environ=environ)
        assert code in (0, 1), argv
        assert os.listdir(str(temp)) == [], argv
    folder = private(tmp_path)
    remembering(folder).process_table()             # a command that changes things
    kept = (folder / "procclean-environs").read_bytes()
    del reads[:]
    looking = remembering(folder, may_write=False)
    looking.process_table()
    assert os.getpid() not in environ_reads(reads, set([os.getpid()]))  # the marks were used
    looking.process_table()                         # a second read in the same process
    assert (folder / "procclean-environs").read_bytes() == kept


def _setarch_works():
    import subprocess
    try:    # (a seccomp filter, Docker's, may refuse the personality)
        return subprocess.call(["setarch", "-R", "true"]) == 0
    except OSError:
        return False


@keeps_marks
@pytest.mark.skipif(not _setarch_works(), reason="no setarch -R here")
def test_a_process_whose_stack_was_not_placed_at_random_is_never_remembered(reads, tmp_path):
    """`setarch -R`, a debugger, randomize_va_space 0: an exec of arguments and an
    environment of the same lengths would keep the addresses, so its environment is
    read every time (the kernel says so: no PF_RANDOMIZE in its flags)."""
    import subprocess
    folder = private(tmp_path)
    plain = subprocess.Popen(["setarch", "-R", sys.executable, "-c",
                              "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        wait_for(lambda: open("/proc/%d/cmdline" % plain.pid, "rb").read().startswith(
            sys.executable.encode()), "setarch never ran python")     # (its exec done)
        remembering(folder).process_table()
        assert b"\n%d:" % plain.pid not in (folder / "procclean-environs").read_bytes()
        del reads[:]
        remembering(folder).process_table()
        assert environ_reads(reads, set([os.getpid(), plain.pid])) == set([plain.pid])
    finally:
        plain.stdin.close()
        plain.wait()


@keeps_marks
def test_a_second_table_in_the_same_command_keeps_the_marks(tmp_path):
    """restart and dev read the table more than once: the marks are read and kept once."""
    folder = private(tmp_path)
    system = remembering(folder)
    system.process_table()
    kept = (folder / "procclean-environs").read_bytes()
    system.process_table()
    assert (folder / "procclean-environs").read_bytes() == kept


@pytest.mark.skipif(procclean.System()._last_pid() is None,
                    reason="/proc is another PID namespace's here")
def test_a_process_whose_first_thread_exited_runs_on_and_is_read_through_another(tmp_path):
    """`pthread_exit` in main: /proc/PID/stat says Z and its command line, environment
    and folder are empty, but the other threads run.  It is no zombie: its command
    line, tag and folder are read through a thread that still has them (it was reported
    `nothing running`)."""
    import subprocess
    script = ("import ctypes, sys, threading; "
              "threading.Thread(target=sys.stdin.read).start(); "
              "ctypes.CDLL(None).pthread_exit(None)")
    env = dict(os.environ, PROCCLEAN_PROJECT=str(tmp_path), PROCCLEAN_SERVICE="worker")
    child = subprocess.Popen([sys.executable, "-c", script, "first-thread-gone"],
                             stdin=subprocess.PIPE, env=env, cwd=str(tmp_path))
    try:
        def first_thread_gone():
            with open("/proc/%d/stat" % child.pid, "rb") as f:
                stat = procclean.parse_proc_stat(f.read())
            assert child.poll() is None, "the child exited"
            return stat.state == "Z" and stat.threads > 1
        wait_for(first_thread_gone, "the first thread never exited")
        system = procclean.System()
        table = system.process_table()
        proc = table[child.pid]
        assert not proc.zombie and "first-thread-gone" in proc.command, proc.command
        assert system.process_tags(table).get(child.pid) == (str(tmp_path), "worker")
        assert system.still_running([proc]) == [proc]
        assert system.process_cwds([child.pid]) == {child.pid: os.path.realpath(str(tmp_path))}
        if procclean._which("ps"):      # the same from `ps -ef` (PROCCLEAN_PS=ps)
            listed = procclean.System("ps").process_table()[child.pid]
            assert not listed.zombie and listed.command == proc.command, listed.line
            assert listed.line.endswith(proc.command)
        # Stopped only once its other threads are (the freeze's wait), not for its Z.
        assert system.wait_stopped([proc], 0) == [proc]
        import signal
        os.kill(child.pid, signal.SIGSTOP)      # our own child, by its PID
        try:
            assert system.wait_stopped([proc], 10) == []
        finally:
            os.kill(child.pid, signal.SIGCONT)
    finally:
        child.stdin.close()     # the thread reads EOF and the process exits
        child.wait()


@pytest.mark.skipif(not procclean.System().has_proc(), reason="no /proc here")
def test_a_process_holding_an_established_connection_is_connected():
    """What tells a worker (no port) is up: a TCP connection of its tree, established
    (to its broker); a listener alone, or no socket, is not one."""
    import socket
    import subprocess
    system = procclean.System()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert system.connected([idle.pid]) is False
        client = socket.create_connection(server.getsockname())
        try:
            assert system.connected([idle.pid, os.getpid()]) is True
        finally:
            client.close()
    finally:
        idle.kill()
        idle.wait()
        server.close()


# A rename that takes the environment's memory (setproctitle, as gunicorn and celery use;
# Ruby's `$0 =`; nginx, PostgreSQL, redis): /proc/PID/environ then shows NULs, the tag gone
# with them.  RENAMER forks a child that leaves the session and renames itself so, prints
# the child's PID, and stays (`stay`) or exits; the child reads stdin until it closes.
RENAMER = RENAME_FUNCTION + r'''
import sys

child = os.fork()
if child == 0:
    os.setsid()
    print(os.getpid() if rename(sys.argv[2].encode()) else 0, flush=True)
    sys.stdin.read()
    os._exit(0)
if sys.argv[1] == "stay":
    sys.stdin.read()
    os.waitpid(child, 0)
'''


def images_file(folder):
    return folder / ("procclean-images-" + "".join(
        c for c in os.readlink("/proc/self/ns/pid") if c.isdigit()))


def images_kept(folder):
    path = images_file(folder)
    return path.read_bytes().split(b"\n")[1:] if path.exists() else []


def renamed_fork(tmp_path, stay, tag=True):
    """(the tagged parent's Popen, its renamed child's PID)."""
    import subprocess
    env = dict(os.environ)
    if tag:
        env.update(PROCCLEAN_PROJECT=str(tmp_path), PROCCLEAN_SERVICE="worker")
    parent = subprocess.Popen([sys.executable, "-c", RENAMER, "stay" if stay else "exit",
                               "renamed-by-setproctitle"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, env=env)
    child = int(parent.stdout.readline())
    if not child:
        parent.stdin.close()
        parent.wait()
        pytest.skip("this kernel refuses writes to /proc/self/mem")
    return parent, child


@keeps_marks
def test_a_fork_that_took_its_environment_for_a_new_name_keeps_its_programs_tag(tmp_path):
    """The renamed child's environment is NULs (its tag gone), but it shares its tagged
    parent's argument and environment addresses: a fork of that program, the project's
    (SPEC's Scope: a setsid and a rename).  The same fork of an untagged program stays
    untagged."""
    parent, child = renamed_fork(tmp_path, stay=True)
    stranger, strangers_child = renamed_fork(tmp_path, stay=True, tag=False)
    try:
        assert open("/proc/%d/environ" % child, "rb").read().strip(b"\0") == b""
        system = procclean.System()
        system.may_write = True         # nowhere private to keep images: kept in memory
        tags = system.process_tags(system.process_table())
        assert tags.get(parent.pid) == (str(tmp_path), "worker")
        assert tags.get(child) == (str(tmp_path), "worker")
        assert stranger.pid not in tags and strangers_child not in tags
    finally:
        for proc in (parent, stranger):
            proc.stdin.close()
            proc.wait()


@keeps_marks
def test_a_tagged_programs_image_is_kept_for_its_forks_once_it_exited(tmp_path):
    """A daemon's first process exits at once: a command that may write keeps the
    images of the tagged programs running in a private file, so the next command tags
    the renamed fork left behind; once none of that program runs, its line goes.  A
    command that only looks writes nothing."""
    import subprocess
    folder = private(tmp_path)
    env = dict(os.environ, PROCCLEAN_PROJECT=str(tmp_path), PROCCLEAN_SERVICE="worker")
    # a tagged program that waits for a line, then forks a renamed child and exits
    script = ("import sys; sys.stdin.readline(); sys.argv[1:] = ['exit', "
              "'renamed-by-setproctitle']; exec(%r)" % RENAMER)
    parent = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, env=env)
    try:
        remembering(folder, may_write=False).process_table()
        assert not images_file(folder).exists()
        remembering(folder).process_table()
        kept = images_file(folder).read_bytes().split(b"\n")
        assert images_file(folder).stat().st_mode & 0o777 == 0o600
        # (the machine's other tagged programs are kept too: procclean's tests', say)
        assert (str(tmp_path), "worker") in [procclean.parse_image_line(line)[1]
                                             for line in kept[1:]]
        parent.stdin.write(b"go\n")
        parent.stdin.flush()
        child = int(parent.stdout.readline())
        parent.wait()
        if not child:
            pytest.skip("this kernel refuses writes to /proc/self/mem")
        assert open("/proc/%d/cmdline" % child, "rb").read().startswith(
            b"renamed-by-setproctitle\0")
        system = remembering(folder, may_write=False)
        assert system.process_tags(system.process_table()).get(child) == \
            (str(tmp_path), "worker")
    finally:
        parent.stdin.close()
        parent.wait()
    wait_for(lambda: not os.path.exists("/proc/%d" % child) or open(
        "/proc/%d/stat" % child, "rb").read().rsplit(b")", 1)[1].split()[0] == b"Z",
        "the renamed child never exited")
    remembering(folder).process_table()
    assert (str(tmp_path), "worker") not in [procclean.parse_image_line(line)[1] for line in
                                             images_kept(folder)]


def test_an_environment_is_rewritten_when_it_no_longer_starts_with_name_value():
    assert procclean.environ_rewritten(b"\0" * 64)
    assert procclean.environ_rewritten(b"gunicorn: master [app]\0\0\0")
    assert procclean.environ_rewritten(b"tail of a long name --log-level=debug\0")
    assert not procclean.environ_rewritten(b"PATH=/usr/bin\0HOME=/root\0")
    assert not procclean.environ_rewritten(b"BASH_FUNC_x%%=() { :; }\0")
    line = procclean.image_line(b"1:2:3:4", ("/home/me/shop \xe9", "worker"))
    assert procclean.parse_image_line(line) == (b"1:2:3:4", ("/home/me/shop \xe9", "worker"))
    assert procclean.parse_image_line(b"+1:2:3:4 zz")[1] is None
    assert procclean.parse_image_line(b"+1:2:3:4 " + b"/x".hex().encode())[1] is None
