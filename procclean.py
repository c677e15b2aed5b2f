#!/usr/bin/env python3
"""procclean: stop, force-clean, start and inspect a local dev stack, safely.

A team's Makefile used to stop its Python backend and its frontend dev server with
`ps -ef | grep -E PATTERN | grep -v grep | awk '{print $2}' | xargs kill`.  This one
file does the same targets, with the same patterns, but never signals the wrong
process, takes whole process trees, stops everything at once, and runs on any
Python from 3.6 on, on Linux (with or without procps, BusyBox), macOS and the BSDs.

Copy it into the repo and call it from make:

    PYTHON ?= python3
    stop-backend stop-frontend stop force-clean status show-processes clean start:
    	@$(PYTHON) -m procclean $@

(`python3 procclean.py CMD` works the same; `-m` lets Python reuse the compiled
bytecode in __pycache__ instead of compiling this file on every call.)

`python3 procclean.py --help` lists every command and option.  Standard library only.
"""

__version__ = "1.0.0"

import errno
import os
import re
import sys
import time

# ---------------------------------------------------------------------------
# Constants: the built-in services, exit codes
# ---------------------------------------------------------------------------

BUILTIN_SERVICES = (
    {
        "name": "backend",
        "pattern": r"([Pp]ython.*main\.py|uvicorn.*main|fastapi.*main)",
        "pidfile": "backend.pid",
        "logfile": "backend.log",
        "port": "8000",
        "command": "{python} main.py",
        # Run in backend/ when the repo keeps its app there, else here.
        "cwd": "backend?main.py",
        # /health when the app has one, else its root.
        "health": "auto",
    },
    {
        "name": "frontend",
        "pattern": r"(npm run dev|vite|esbuild|node.*frontend)",
        "pidfile": "frontend.pid",
        "logfile": "frontend.log",
        "port": "3000",
        "command": "npm run dev",
        "cwd": "frontend?package.json",
        "health": "/",
    },
)
SERVICE_FIELDS = ("pattern", "pidfile", "logfile", "port", "command", "cwd", "health")
# Fields of how services start together (dev, start): `after = backend` (names it waits
# for), `supervise = yes` (restarted when it crashes).  Not (yet) written by init.
ORDER_FIELDS = ("after", "supervise")
ALL_FIELDS = SERVICE_FIELDS + ORDER_FIELDS
CONFIG_FILE = "procclean.ini"
DEFAULT_GRACE = 2.0
KILL_WAIT = 1.0          # how long to wait for SIGKILLed processes to vanish
START_CHECK = 0.5        # how long a fresh service must survive to count as started
START_TIMEOUT = 30.0     # start --wait: how long to wait for the port
LOG_TAIL_LINES = 20
HEALTH_TIMEOUT = 2.0     # seconds a health URL may take to answer
MAX_RESTARTS = 5         # supervise: restarts allowed within a minute
BACKOFF_FIRST = 1.0      # supervise: first delay before a restart, doubling...
BACKOFF_MAX = 30.0       # ...up to this
STABLE_RUN = 30.0        # a service up this long has its backoff reset
WATCH_INTERVAL = 2.0

# The same numbers on every Unix; spelled out because importing `signal` costs more
# start-up time than a whole stop of a small stack.
SIGTERM = 15
SIGKILL = 9

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3
EXIT_INTERRUPTED = 130

# The seed's recipes skip every ps line that contains this word (`grep -v grep`).
GREP_WORD = "grep"

# Variables that reshape `ps` output; never passed on to it.
PS_ENV_DROP = ("COLUMNS", "LINES", "PS_FORMAT", "PS_PERSONALITY", "POSIXLY_CORRECT",
               "CMD_ENV", "PS_COLORS", "LC_ALL", "LC_TIME")


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

class ProcCleanError(Exception):
    """An expected failure: `main` prints its message on one line and exits with `code`."""

    def __init__(self, message, code=EXIT_USAGE):
        Exception.__init__(self, message)
        self.code = code


# ---------------------------------------------------------------------------
# Data types
# ---------------------------------------------------------------------------

class Process(object):
    """One row of the process table.

    `line` is what the service patterns are searched in: the real `ps -ef` line when
    the table came from `ps -ef`, else one built in the same shape.  Times are in
    seconds; `start` is seconds since the epoch when the source knows it precisely.
    """

    __slots__ = ("pid", "ppid", "user", "command", "zombie", "start",
                 "elapsed", "cpu_seconds", "rss_kb", "line")

    def __init__(self, pid, ppid, user, command, zombie=False, start=None,
                 elapsed=None, cpu_seconds=None, rss_kb=None, line=None):
        self.pid = pid
        self.ppid = ppid
        self.user = user
        self.command = command
        self.zombie = zombie
        self.start = start
        self.elapsed = elapsed
        self.cpu_seconds = cpu_seconds
        self.rss_kb = rss_kb
        self.line = line if line is not None else "%s %s %s %s" % (
            user, pid, "-" if ppid is None else ppid, command)

    @property
    def cpu_percent(self):
        if self.cpu_seconds is None or not self.elapsed:
            return None
        return 100.0 * self.cpu_seconds / self.elapsed

    def __repr__(self):
        return "Process(%d, ppid=%r, %r)" % (self.pid, self.ppid, self.command)


class Service(object):
    """A named thing to stop and start: pattern, pidfile, logfile, port, command, folder."""

    __slots__ = ("name", "pattern", "regex", "pidfile", "logfile", "port", "command",
                 "cwd", "health", "after", "supervise")

    def __init__(self, name, pattern, pidfile, logfile, port, command, cwd, health="",
                 after=(), supervise=False):
        self.name = name
        self.pattern = pattern
        self.regex = re.compile(pattern) if pattern else None
        self.pidfile = pidfile
        self.logfile = logfile
        self.port = port
        self.command = command
        self.cwd = cwd
        self.health = health
        self.after = list(after)        # names of the services it starts after
        self.supervise = supervise      # dev: restart it when it exits by itself

    def matches(self, proc):
        """Whether the pattern finds this process's ps line (never a line containing
        `grep`, as the seed's `grep -v grep` dropped them)."""
        return self.regex is not None and GREP_WORD not in proc.line \
            and self.regex.search(proc.line) is not None

    def __repr__(self):
        return "Service(%r)" % self.name


class Target(object):
    """A process chosen to be signalled, and why (`via`: pattern, pidfile, child, port)."""

    __slots__ = ("process", "service", "via", "outcome")

    def __init__(self, process, service, via):
        self.process = process
        self.service = service
        self.via = via
        self.outcome = None     # stopped, killed, gone, denied, survived

    @property
    def pid(self):
        return self.process.pid


class Listener(object):
    """A TCP socket in LISTEN state: its port, address, family, and the PID holding it."""

    __slots__ = ("port", "address", "family", "pid", "command")

    def __init__(self, port, address, family, pid=None, command=None):
        self.port = port
        self.address = address
        self.family = family
        self.pid = pid
        self.command = command

    def __repr__(self):
        return "Listener(%d, %r, pid=%r)" % (self.port, self.address, self.pid)


class PidfileInfo(object):
    """What a pidfile says: a valid PID, or a reason it is not to be trusted."""

    __slots__ = ("path", "exists", "pid", "problem", "raw", "mtime")

    def __init__(self, path, exists=False, pid=None, problem=None, raw=b"", mtime=None):
        self.path = path
        self.exists = exists
        self.pid = pid
        self.problem = problem    # None, "invalid", "untrusted"
        self.raw = raw
        self.mtime = mtime


# ---------------------------------------------------------------------------
# Pure parsing: ps, /proc, lsof, ss text in; tables out
# ---------------------------------------------------------------------------

_PS_COLUMN_ALIASES = {
    "UID": "user", "USER": "user", "RUSER": "user",
    "PID": "pid", "PPID": "ppid",
    "STIME": "stime", "START": "stime", "STARTED": "stime",
    "TTY": "tty", "TT": "tty",
    "TIME": "time",
    "CMD": "command", "COMMAND": "command", "ARGS": "command",
}
# Regular expressions as text: re compiles (and caches) them on first use, not at import.
_TIME_RE = r"^(\d+-)?\d+:\d\d(:\d\d)?(\.\d+)?$"
_MONTH_RE = r"^[A-Za-z]{3}$"


def decode_bytes(data):
    """Bytes from ps or /proc to text; undecodable bytes survive as surrogates."""
    return data.decode("utf-8", "surrogateescape")


def printable(text):
    """Text safe to show: undecodable bytes as \\xNN, control characters escaped."""
    if isinstance(text, bytes):
        text = decode_bytes(text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        text = "".join(c if 32 <= ord(c) != 127 else "\\x%02x" % ord(c) for c in text)
    return text


def _valid_pid(pid):
    # A ps printing garbage must not put -7 or 10**20 in the table.
    return 0 <= pid <= 2 ** 31 - 1


def parse_duration(text):
    """ps time formats (`[[dd-]hh:]mm:ss[.xx]`) to seconds; None when unreadable."""
    text = text.strip()
    days = 0
    if "-" in text:
        day_text, _, text = text.partition("-")
        if not day_text.isdigit():
            return None
        days = int(day_text)
    parts = text.split(":")
    try:
        seconds = 0.0
        for part in parts:
            seconds = seconds * 60 + float(part)
    except ValueError:
        return None
    if len(parts) > 3:
        return None
    return days * 86400 + seconds


def parse_ps_ef(text):
    """Parse `ps -ef` output of any system, by its header.

    Returns (processes, has_ppid).  STIME may span several words (Cygwin's `Jul 13`,
    Solaris' `May 05`, month names of some locales); the TIME column after it, or a
    month abbreviation, tells how many.  BusyBox prints no PPID: has_ppid is False.
    """
    if isinstance(text, bytes):
        text = decode_bytes(text)
    lines = text.splitlines()
    if not lines:
        return [], False
    header = [_PS_COLUMN_ALIASES.get(name.upper(), name.upper()) for name in lines[0].split()]
    if "pid" not in header or header[-1] != "command":
        raise ProcCleanError("cannot read ps output: unexpected header %r" % printable(lines[0]),
                             EXIT_FAILED)
    before = header[:-1]
    if "stime" in before:
        k = before.index("stime")
        left, right = before[:k], before[k + 1:]
    else:
        left, right = before, []
    time_index = right.index("time") if "time" in right else None
    processes = []
    for line in lines[1:]:
        spans = [m.span() for m in re.finditer(r"\S+", line)]
        tokens = [line[a:b] for a, b in spans]
        if len(tokens) < len(before):
            continue
        width = 0
        if "stime" in before:
            width = _stime_width(tokens, len(left), right, time_index)
        n_before = len(left) + width + len(right)
        if len(tokens) < n_before:
            continue
        fields = dict(zip(left, tokens))
        fields.update(zip(right, tokens[len(left) + width:n_before]))
        user = fields.get("user")
        if width:
            fields["stime"] = " ".join(tokens[len(left):len(left) + width])
        command = line[spans[n_before][0]:] if len(tokens) > n_before else ""
        try:
            pid = int(fields["pid"])
            ppid = int(fields["ppid"]) if "ppid" in fields else None
        except ValueError:
            continue
        if not _valid_pid(pid) or ppid is not None and not _valid_pid(ppid):
            continue
        cpu = parse_duration(fields["time"]) if "time" in fields else None
        zombie = command.endswith("<defunct>")
        processes.append(Process(pid, ppid, user, command, zombie=zombie, cpu_seconds=cpu,
                                 line=line))
    return processes, "ppid" in header


def _stime_width(tokens, first, right, time_index):
    """How many words the STIME column takes in this row."""
    for width in (1, 2, 3):
        rest = tokens[first + width:]
        if len(rest) < len(right):
            break
        if time_index is not None:
            if re.match(_TIME_RE, rest[time_index]):
                return width
        elif width == 1 and re.match(_MONTH_RE, tokens[first]) and len(tokens) > first + 1 \
                and tokens[first + 1].isdigit() and len(tokens[first + 1]) <= 2:
            return 2
        elif time_index is None:
            return width
    return 1


# Fields asked of `ps -o` where there is no /proc (macOS, BSD): every system spells these.
PS_O_FIELDS = ("user", "pid", "ppid", "stat", "etime", "time", "rss", "args")


_PS_O_HEADERS = {"PID": "pid", "PPID": "ppid", "USER": "user", "UID": "user",
                 "STAT": "stat", "S": "stat", "ELAPSED": "etime", "ETIME": "etime",
                 "TIME": "time", "RSS": "rss", "%CPU": "pcpu", "COMMAND": "args",
                 "ARGS": "args", "CMD": "args"}


def parse_ps_o(text, fields=PS_O_FIELDS, now=None):
    """Parse `ps -o f1=,f2=,...,args=` output: one word a field, args the rest.

    With `fields` None the first line is a header naming them (`ps -o pid,ppid,...`).
    """
    if isinstance(text, bytes):
        text = decode_bytes(text)
    lines = text.splitlines()
    if fields is None:
        if not lines:
            return []
        fields = [_PS_O_HEADERS.get(name.upper(), name.lower()) for name in lines[0].split()]
        lines = lines[1:]
    n = len(fields) - 1
    processes = []
    for line in lines:
        parts = line.split(None, n)
        if len(parts) < n:
            continue
        values = dict(zip(fields, parts))
        command = parts[n] if len(parts) > n else ""
        try:
            pid = int(values["pid"])
            ppid = int(values["ppid"]) if "ppid" in values else None
            rss = int(values["rss"]) if "rss" in values else None
        except ValueError:
            continue
        if not _valid_pid(pid) or ppid is not None and not _valid_pid(ppid):
            continue
        elapsed = parse_duration(values["etime"]) if "etime" in values else None
        start = now - elapsed if (now is not None and elapsed is not None) else None
        zombie = "Z" in values.get("stat", "") or command.endswith("<defunct>")
        user = values.get("user")
        processes.append(Process(
            pid, ppid, user, command, zombie=zombie, start=start, elapsed=elapsed,
            cpu_seconds=parse_duration(values["time"]) if "time" in values else None,
            rss_kb=rss, line="%s %d %s %s" % (user, pid, ppid, command)))
    return processes


def parse_proc_stat(data):
    """Fields of /proc/PID/stat: (pid, comm, state, ppid, cpu_ticks, start_ticks, rss_pages).

    comm may hold spaces and parentheses: it is everything between the first '('
    and the last ')'.
    """
    head, _, tail = data.rpartition(b")")
    pid_text, _, comm = head.partition(b" (")
    fields = tail.split()
    return (int(pid_text), decode_bytes(comm), fields[0].decode("ascii", "replace"),
            int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[19]),
            int(fields[21]))


def proc_command(cmdline, comm, state):
    """The command procps shows for /proc/PID/cmdline: args joined by spaces, or
    `[comm]` when there are none (kernel threads, zombies), `<defunct>` for zombies."""
    args = cmdline.rstrip(b"\0")
    if args:
        command = decode_bytes(args.replace(b"\0", b" "))
    else:
        command = "[%s]" % comm
    if state == "Z":
        command += " <defunct>"
    return command


def parse_pidfile(data):
    """The PID in a pidfile's bytes, or None unless it is one decimal number >= 2."""
    text = data.strip()
    if not text or not text.isdigit() or len(text) > 10:
        return None
    pid = int(text)
    if pid < 2 or pid > 2 ** 31 - 1:
        return None
    return pid


def parse_port(text):
    """A TCP port number 1-65535 from text; ProcCleanError (usage) otherwise."""
    digits = str(text).strip()
    if not re.match(r"[0-9]{1,5}\Z", digits):      # not int(): it takes "+80", "8_000"
        raise ProcCleanError("invalid port %r: expected a number from 1 to 65535" % (text,))
    port = int(digits)
    if not 1 <= port <= 65535:
        raise ProcCleanError("invalid port %r: expected a number from 1 to 65535" % (text,))
    return port


def _split_host_port(name):
    """`127.0.0.1:8000`, `[::1]:3000`, `*:8000`, `fe80::1%lo:53` -> (host, port)."""
    host, _, port_text = name.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = host.split("%", 1)[0]
    try:
        return host, int(port_text)
    except ValueError:
        return None, None


def _family(host, hint=None):
    if hint:
        return hint
    return "ipv6" if ":" in host else "ipv4"


def _lsof_address(host, kind):
    """lsof prints `*` for the wildcard of either family and an IPv4-mapped IPv6
    address as plain IPv4; its TYPE (IPv4, IPv6) tells them apart."""
    family = "ipv6" if (kind or "").upper() == "IPV6" else (
        "ipv4" if (kind or "").upper() == "IPV4" else _family(host))
    if host == "*":
        host = "::" if family == "ipv6" else "0.0.0.0"
    elif family == "ipv6" and "." in host and ":" not in host:
        host = "::ffff:" + host
    return host, family


def parse_lsof_fields(text):
    """Listeners in `lsof -nP -iTCP -sTCP:LISTEN -F pctn` output (p<PID>, c<COMMAND>,
    then f<FD>, t<TYPE>, n<NAME> per socket); None if the text is not in that form
    (BusyBox lsof ignores its arguments and prints every open file: never trusted)."""
    if isinstance(text, bytes):
        text = decode_bytes(text)
    listeners = []
    pid = command = kind = None
    seen_pid = False
    for line in text.splitlines():
        if not line:
            continue
        tag, value = line[0], line[1:]
        if tag == "p":
            try:
                pid = int(value)
            except ValueError:
                return None
            seen_pid = True
            command = None
        elif tag == "c":
            command = value
        elif tag == "f":
            kind = None
        elif tag == "t":
            kind = value
        elif tag == "n" and pid is not None:
            if "->" in value:
                continue
            host, port = _split_host_port(value)
            if port is not None:
                host, family = _lsof_address(host, kind)
                listeners.append(Listener(port, host, family, pid, command))
        elif tag not in "fatdDsiklLoPRgTGu":
            return None
    if text.strip() and not seen_pid:
        return None
    return listeners


_SS_PID_RE = r'\("((?:[^"\\]|\\.)*)",pid=(\d+),'


def parse_ss(text):
    """Listeners in `ss -ltnpH` (or `ss -tanpH`, keeping LISTEN rows) output."""
    if isinstance(text, bytes):
        text = decode_bytes(text)
    listeners = []
    for line in text.splitlines():
        tokens = line.split()
        if not tokens or tokens[0] in ("State", "Netid", "Recv-Q"):
            continue
        if tokens[0] in ("tcp", "tcp6"):
            tokens = tokens[1:]
        if not tokens[0][0].isdigit():
            if tokens[0] not in ("LISTEN", "UNCONN"):
                continue
            tokens = tokens[1:]
        if len(tokens) < 3:
            continue
        host, port = _split_host_port(tokens[2])
        if port is None:
            continue
        if host == "*":
            host = "::"     # ss's `*` is an IPv6 socket open to IPv4 too (0.0.0.0 is v4)
        owners = re.findall(_SS_PID_RE, line)
        if not owners:
            listeners.append(Listener(port, host, _family(host)))
        for command, pid in owners:
            listeners.append(Listener(port, host, _family(host), int(pid), command))
    return listeners


def parse_sockstat(text):
    """Listeners in FreeBSD's `sockstat -46l -P tcp` output (USER COMMAND PID FD PROTO
    LOCAL FOREIGN; IPv6 addresses unbracketed, `*` for any, PROTO tcp4/tcp6/tcp46)."""
    if isinstance(text, bytes):
        text = decode_bytes(text)
    listeners = []
    for line in text.splitlines():
        tokens = line.split()
        # Read from the right: a command name may hold spaces.
        if len(tokens) < 7 or tokens[0] == "USER" or not (tokens[-5].isdigit()
                                                           or tokens[-5] == "?"):
            continue
        proto, local = tokens[-3], tokens[-2]
        if not proto.startswith("tcp"):
            continue
        host, port = _split_host_port(local)
        if port is None:
            continue
        family = "ipv4" if proto == "tcp4" else "ipv6"
        if host == "*":
            host = "0.0.0.0" if family == "ipv4" else "::"
        pid = int(tokens[-5]) if tokens[-5].isdigit() else None   # `?`: not ours to see
        listeners.append(Listener(port, host, family, pid, " ".join(tokens[1:-5])))
    return listeners


def _hex_to_ipv4(word):
    value = int(word, 16)
    return ".".join(str((value >> shift) & 0xFF) for shift in (0, 8, 16, 24))


def _hex_to_ipv6(text):
    # Four 32-bit words, each in host (little-endian) byte order.
    raw = b"".join(int(text[i:i + 8], 16).to_bytes(4, "little") for i in range(0, 32, 8))
    groups = [raw[i] << 8 | raw[i + 1] for i in range(0, 16, 2)]
    if groups[:5] == [0, 0, 0, 0, 0] and groups[5] == 0xFFFF:
        return "::ffff:%d.%d.%d.%d" % tuple(raw[12:16])
    best = (0, 0)
    i = 0
    while i < 8:
        if groups[i] == 0:
            j = i
            while j < 8 and groups[j] == 0:
                j += 1
            if j - i > best[1] - best[0]:
                best = (i, j)
            i = j
        else:
            i += 1
    if best[1] - best[0] >= 2:
        head = ":".join("%x" % g for g in groups[:best[0]])
        tail = ":".join("%x" % g for g in groups[best[1]:])
        return head + "::" + tail
    return ":".join("%x" % g for g in groups)


def parse_proc_net_tcp(text, family="ipv4"):
    """LISTEN sockets (state 0A) in /proc/net/tcp or tcp6: list of (port, address, inode)."""
    if isinstance(text, bytes):
        text = decode_bytes(text)
    sockets = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != "0A":
            continue
        address_hex, _, port_hex = fields[1].partition(":")
        if family == "ipv6" or len(address_hex) == 32:
            address = _hex_to_ipv6(address_hex)
        else:
            address = _hex_to_ipv4(address_hex)
        sockets.append((int(port_hex, 16), address, int(fields[9])))
    return sockets


NLMSG_ERROR = 2
NLMSG_DONE = 3
SOCK_DIAG_BY_FAMILY = 20
TCP_LISTEN_STATE = 10


def inet_diag_request(family, seq=1):
    """A NETLINK_SOCK_DIAG request (what `ss -lt` sends) for the LISTEN TCP sockets of
    one address family: the kernel answers from its small listening table only."""
    body = bytes([family, 6, 0, 0]) + (1 << TCP_LISTEN_STATE).to_bytes(4, sys.byteorder) \
        + b"\0" * 48
    header = (16 + len(body)).to_bytes(4, sys.byteorder) \
        + SOCK_DIAG_BY_FAMILY.to_bytes(2, sys.byteorder) \
        + (0x301).to_bytes(2, sys.byteorder) \
        + seq.to_bytes(4, sys.byteorder) + b"\0" * 4      # NLM_F_REQUEST | NLM_F_DUMP
    return header + body


def parse_inet_diag(data, inet_ntop):
    """LISTEN sockets in sock_diag dump replies: ([(port, address, family, inode)], done).

    inet_diag_msg: family, state, timer, retrans (1 byte each), then the socket id
    (source port big-endian, destination port, 16-byte source, 16-byte destination,
    interface, cookie), then expires, rqueue, wqueue, uid and inode (4 bytes each).
    """
    sockets = []
    offset = 0
    while offset + 16 <= len(data):
        length = int.from_bytes(data[offset:offset + 4], sys.byteorder)
        kind = int.from_bytes(data[offset + 4:offset + 6], sys.byteorder)
        if length < 16:
            break
        if kind == NLMSG_DONE:
            return sockets, True
        if kind == NLMSG_ERROR:
            code = -int.from_bytes(data[offset + 16:offset + 20], sys.byteorder, signed=True)
            raise OSError(code, "sock_diag: %s" % os.strerror(code))
        if kind == SOCK_DIAG_BY_FAMILY and length >= 16 + 72:
            msg = data[offset + 16:offset + length]
            if msg[1] == TCP_LISTEN_STATE:
                family = msg[0]
                port = int.from_bytes(msg[4:6], "big")
                raw = msg[8:12] if family == 2 else msg[8:24]
                inode = int.from_bytes(msg[68:72], sys.byteorder)
                sockets.append((port, inet_ntop(family, raw),
                                "ipv4" if family == 2 else "ipv6", inode))
        offset += (length + 3) & ~3
    return sockets, False


# ---------------------------------------------------------------------------
# Pure planning: table + services in, targets out
# ---------------------------------------------------------------------------

def children_map(table):
    """PPID -> list of child PIDs, in PID order."""
    kids = {}
    for proc in sorted(table.values(), key=lambda p: p.pid):
        if proc.ppid is not None:
            kids.setdefault(proc.ppid, []).append(proc.pid)
    return kids


def descendants(kids, pid):
    """Every PID below `pid` in the tree, parents before children."""
    found = []
    stack = list(reversed(kids.get(pid, ())))
    seen = set()
    while stack:
        child = stack.pop()
        if child in seen or child == pid:
            continue
        seen.add(child)
        found.append(child)
        stack.extend(reversed(kids.get(child, ())))
    return found


def protected_pids(table, self_pid, parent_pid):
    """PIDs never to signal: 0, 1, procclean and every ancestor (the make and shells)."""
    protected = {0, 1, self_pid}
    pid = parent_pid
    while pid is not None and pid not in protected:
        protected.add(pid)
        parent = table.get(pid)
        pid = parent.ppid if parent is not None else None
    return protected


def matches(table, service):
    """Processes whose line the service's pattern finds, skipping lines containing
    `grep` exactly as the seed's `grep -E ... | grep -v grep` did."""
    if service.regex is None:
        return []
    return [proc for proc in table.values() if service.matches(proc)]


def plan_targets(table, roots, protected):
    """Expand (process, service, via) roots into targets, each with all descendants.

    Descendants come from `table`, taken before any signal.  A process reached twice
    keeps its first service; protected PIDs are dropped.
    """
    kids = children_map(table)
    targets = {}
    for proc, service, via in roots:
        if proc.pid in protected or proc.pid < 2:
            continue
        if proc.pid not in targets:
            targets[proc.pid] = Target(proc, service, via)
        for pid in descendants(kids, proc.pid):
            if pid not in targets and pid not in protected and pid in table:
                targets[pid] = Target(table[pid], service, "child")
    return list(targets.values())


def start_order(services):
    """The services in the order they start: each after the ones its `after` names
    (those among them), otherwise as given.  Services waiting for each other in a
    circle are a config error."""
    chosen = dict((s.name, s) for s in services)
    ordered = []
    done = set()
    path = []

    def visit(service):
        if service.name in done:
            return
        if service.name in path:
            circle = path[path.index(service.name):] + [service.name]
            error = ProcCleanError("after: services wait for each other: %s"
                                   % " -> ".join(circle))
            error.service = circle[0]
            raise error
        path.append(service.name)
        for name in service.after:
            if name in chosen:
                visit(chosen[name])
        path.pop()
        done.add(service.name)
        ordered.append(service)

    for service in services:
        visit(service)
    return ordered


def pidfile_owner_trusted(st_uid, st_mode, st_gid, euid):
    """Whether a pidfile may be believed: as root, not if anyone else could write it."""
    if euid != 0:
        return True
    if st_uid != 0:
        return False
    if st_mode & 0o002:
        return False
    if st_mode & 0o020 and st_gid != 0:
        return False
    return True


# ---------------------------------------------------------------------------
# System adapter: the one place that runs ps/lsof/ss, reads /proc, sends signals
# and touches files.  Tests replace it with a fake.
# ---------------------------------------------------------------------------

def _which(program):
    """shutil.which without importing shutil (and zlib, bz2, lzma with it)."""
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
        path = os.path.join(folder or ".", program)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


_CONTROL_AS_PS = dict((c, "?") for c in list(range(32)) + [127])


def _ps_o_args(fields):
    """`-o f=` once per field: FreeBSD's ps takes everything after the first `=` of a
    single `-o user=,pid=,...` as that one column's header."""
    args = []
    for field in fields:
        args += ["-o", field + "="]
    return args


def _read_small(path):
    """A whole /proc file, with the fewest system calls (no buffered file object)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            chunks.append(chunk)
            if len(chunk) < 65536:     # /proc hands over all it has in one read
                break
    finally:
        os.close(fd)
    return b"".join(chunks)


PS_SOURCES = ("auto", "proc", "ps", "pso")
PORT_SOURCES = ("auto", "netlink", "proc", "lsof", "ss", "sockstat")


class System(object):
    """Access to the real machine.

    `ps_source`: auto, proc (Linux /proc), ps (`ps -ef` by header), pso (`ps -o`).
    `ports_source`: auto, netlink (Linux sock_diag), proc (/proc/net/tcp), lsof, ss,
    sockstat (FreeBSD).
    """

    def __init__(self, ps_source="auto", ports_source="auto"):
        self.ps_source = ps_source or "auto"
        self.ports_source = ports_source or "auto"
        self._users = {}
        self._boot_time = None
        self._has_proc = None
        self.ps_note = None
        self.ports_note = None

    # -- clock ---------------------------------------------------------------
    clock = staticmethod(time.monotonic)
    sleep = staticmethod(time.sleep)
    wall_time = staticmethod(time.time)

    # -- identity ------------------------------------------------------------
    def self_pid(self):
        return os.getpid()

    def parent_pid(self):
        return os.getppid()

    def euid(self):
        return os.geteuid() if hasattr(os, "geteuid") else -1

    # -- process table -------------------------------------------------------
    def has_proc(self):
        if self._has_proc is None:
            self._has_proc = sys.platform.startswith("linux") \
                and os.path.exists("/proc/self/stat")
        return self._has_proc

    def process_table(self):
        """{pid: Process} of every process on the machine, taken in one pass."""
        source = self.ps_source
        if source == "auto":
            source = "proc" if self.has_proc() else "pso"
        if source == "ps":
            try:
                out = self._run(["ps", "-ef", "-ww"], table=True)
            except ProcCleanError:
                # BusyBox knows no -w: its plain `ps -ef`, then.
                out = self._run(["ps", "-ef"], table=True)
            processes, has_ppid = parse_ps_ef(out)
            if not has_ppid:
                # BusyBox: `ps -ef` is plain `ps`, without PPID; take the same table
                # from /proc where there is one.
                self.ps_note = "ps has no PPID column"
                if self.has_proc():
                    source = "proc"
                else:
                    source = "pso"
            else:
                self.ps_note = "ps -ef"
                return self._with_linux_times({p.pid: p for p in processes})
        if source == "proc":
            self.ps_note = "/proc"
            return self._read_proc_table()
        self.ps_note = "ps -o"
        out = self._run(["ps", "-A", "-ww"] + _ps_o_args(PS_O_FIELDS), table=True)
        return {p.pid: p for p in parse_ps_o(out or b"", now=self.wall_time())}

    def _run(self, argv, table=False):
        """Run ps, lsof or ss with an environment that cannot reshape their output; its
        stdout.  For a whole process table (`table`), a ps that fails and prints
        nothing is an error, not an empty machine: stopping "nothing" would be a lie."""
        import subprocess
        env = dict((k, v) for k, v in os.environ.items() if k not in PS_ENV_DROP)
        env["LC_TIME"] = "C"
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=env)
        except OSError as exc:
            if not table:
                return None
            raise ProcCleanError("cannot run %s: %s" % (argv[0], exc.strerror), EXIT_FAILED)
        out, err = proc.communicate()
        if proc.returncode != 0 and not out.strip():
            if table:
                message = decode_bytes(err).strip().splitlines()
                raise ProcCleanError("%s failed: %s" % (" ".join(argv), printable(
                    message[0] if message else "exit status %d" % proc.returncode)),
                    EXIT_FAILED)
            # lsof says "nothing found" by exit status 1 and silence; anything else that
            # fails without a word (an ss or sockstat without these options) is no answer.
            if not (argv[0] == "lsof" and proc.returncode == 1 and not err.strip()):
                return None
        return out

    def _clock_ticks(self):
        try:
            return os.sysconf("SC_CLK_TCK")
        except (ValueError, OSError, AttributeError):
            return 100

    def boot_time(self):
        """Wall-clock time of boot, from /proc/uptime (finer than btime's seconds)."""
        if self._boot_time is None:
            with open("/proc/uptime", "rb") as f:
                uptime = float(f.read().split()[0])
            self._boot_time = self.wall_time() - uptime
        return self._boot_time

    def user_name(self, uid):
        name = self._users.get(uid)
        if name is None:
            try:
                import pwd
                name = pwd.getpwuid(uid).pw_name
            except (KeyError, ImportError):
                name = str(uid)
            self._users[uid] = name
        return name

    def _read_proc_table(self):
        table = {}
        hz = float(self._clock_ticks())
        page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
        boot = self.boot_time()
        now = self.wall_time()
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            base = "/proc/" + name
            try:
                stat = _read_small(base + "/stat")
                cmdline = _read_small(base + "/cmdline")
                uid = os.stat(base).st_uid
            except OSError:
                continue        # exited while we looked
            try:
                pid, comm, state, ppid, ticks, start_ticks, rss = parse_proc_stat(stat)
            except (ValueError, IndexError):
                continue
            command = proc_command(cmdline, comm, state)
            user = self.user_name(uid)
            # Patterns see the command as `ps -ef` prints it: control characters (a
            # newline inside an argument) as `?`, so `.*` spans them as grep's did.
            shown = command.translate(_CONTROL_AS_PS)
            start = boot + start_ticks / hz
            table[pid] = Process(
                pid, ppid, user, command, zombie=state in "ZX", start=start,
                elapsed=max(0.0, now - start), cpu_seconds=ticks / hz, rss_kb=rss * page_kb,
                line="%s %d %d %s" % (user, pid, ppid, shown))
        return table

    def _with_linux_times(self, table):
        """Add start, elapsed, CPU and memory from /proc to a `ps -ef` table."""
        if not self.has_proc():
            return table
        for proc in table.values():
            info = self.proc_info(proc.pid)
            if info:
                proc.start, proc.elapsed, proc.cpu_seconds, proc.rss_kb = info[1:]
        return table

    def proc_info(self, pid):
        """(state, start, elapsed, cpu_seconds, rss_kb) from /proc, or None if gone."""
        try:
            fields = parse_proc_stat(_read_small("/proc/%d/stat" % pid))
        except (OSError, ValueError, IndexError):
            return None
        hz = float(self._clock_ticks())
        start = self.boot_time() + fields[5] / hz
        return (fields[2], start, max(0.0, self.wall_time() - start), fields[4] / hz,
                fields[6] * (os.sysconf("SC_PAGE_SIZE") // 1024))

    # -- signals and liveness --------------------------------------------------
    def send_signal(self, pid, signum):
        """Send a signal; raises OSError (ESRCH, EPERM) as os.kill does."""
        if pid < 2:
            raise ValueError("refusing to signal PID %d" % pid)
        os.kill(pid, signum)

    def still_running(self, procs):
        """The subset of `procs` still running as the same process (a zombie, or a PID
        now used by a process that started later, counts as gone)."""
        alive = []
        unknown = []
        for proc in procs:
            if self.has_proc():
                info = self.proc_info(proc.pid)
                if info is None or info[0] in "ZX":
                    continue
                if proc.start is not None and abs(info[1] - proc.start) > 1.0:
                    continue        # the PID now names a process started since
                alive.append(proc)
                continue
            try:
                os.kill(proc.pid, 0)
            except OSError as exc:
                if exc.errno == errno.ESRCH:
                    continue
            unknown.append(proc)
        if unknown:
            # No /proc: one `ps` call tells zombies and reused PIDs for all of them.
            out = self._run(["ps"] + _ps_o_args(("pid", "stat", "etime", "ppid", "args"))
                               + ["-p",
                                ",".join(str(p.pid) for p in unknown)])
            now = self.wall_time()
            rows = {p.pid: p for p in parse_ps_o(out or b"", ("pid", "stat", "etime", "ppid",
                                                              "args"), now=now)}
            for proc in unknown:
                row = rows.get(proc.pid)
                if row is None or row.zombie:
                    continue
                if proc.start is not None and row.start is not None \
                        and row.start - proc.start > 2.0:
                    continue
                alive.append(proc)
        return alive

    def start_time(self, pid):
        """When `pid` started, in seconds since the epoch; None if unknown or gone."""
        if self.has_proc():
            info = self.proc_info(pid)
            return info[1] if info else None
        out = self._run(["ps", "-o", "etime=", "-p", str(pid)])
        seconds = parse_duration((out or b"").decode("ascii", "replace")) if out else None
        if seconds is None:
            return None
        return self.wall_time() - seconds - 1.0     # etime counts whole seconds

    # -- listeners -------------------------------------------------------------
    def listeners(self, ports=None):
        """TCP listeners (IPv4 and IPv6) with their owning PIDs: on `ports`, or all.

        On Linux /proc/net/tcp{,6} comes first: reading two files costs far less than
        running lsof, and sockets are mapped to PIDs only when one is on a wanted port.
        Elsewhere lsof, then ss.
        """
        if self.ports_source != "auto":
            sources = [self.ports_source]
        elif os.path.exists("/proc/net/tcp"):
            sources = ["netlink", "proc", "lsof", "ss"]
        else:
            sources = ["lsof", "sockstat", "ss"]
        wanted = None if ports is None else set(p for p in ports if p is not None)
        found = self._listeners_from(sources, wanted)
        if wanted is None:
            return found
        return [l for l in found if l.port in wanted]

    def _listeners_from(self, sources, wanted):
        for source in sources:
            if source == "lsof" and _which("lsof"):
                out = self._run(["lsof", "-nP", "-iTCP", "-sTCP:LISTEN", "-F", "pctn"])
                found = parse_lsof_fields(out) if out is not None else None
                if found is not None:
                    self.ports_note = "lsof"
                    return found
            elif source == "ss" and _which("ss"):
                out = self._run(["ss", "-ltnpH"])
                if out is not None:
                    self.ports_note = "ss"
                    return parse_ss(out)
            elif source == "sockstat" and _which("sockstat"):
                out = self._run(["sockstat", "-46l", "-P", "tcp"])
                if out is not None:
                    self.ports_note = "sockstat"
                    return parse_sockstat(out)
            elif source == "proc" and os.path.exists("/proc/net/tcp"):
                self.ports_note = "/proc/net/tcp"
                return self._proc_listeners(self._proc_net_sockets(wanted))
            elif source == "netlink" and sys.platform.startswith("linux"):
                sockets = self._netlink_sockets(wanted)
                if sockets is not None:
                    self.ports_note = "netlink sock_diag"
                    return self._proc_listeners(sockets)
        if self.ports_source != "auto":
            raise ProcCleanError("port source %r is not available here" % self.ports_source,
                                 EXIT_FAILED)
        # Nothing here lists sockets: a port that cannot be bound is taken, by a
        # process procclean cannot name.
        self.ports_note = "bind probe (no lsof, sockstat or ss)"
        return [Listener(port, "*", "ipv4") for port in sorted(wanted or ())
                if self.port_in_use(port)]

    def port_in_use(self, port):
        """Whether something listens on `port`: a bind to it fails with EADDRINUSE.
        (SO_REUSEADDR, so that old connections in TIME_WAIT do not count.)"""
        import socket
        # The loopback addresses too: on the BSDs SO_REUSEADDR lets a wildcard bind
        # succeed beside a server on 127.0.0.1 alone.
        for family, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET, "127.0.0.1"),
                             (getattr(socket, "AF_INET6", None), "::"),
                             (getattr(socket, "AF_INET6", None), "::1")):
            if family is None:
                continue
            try:
                probe = socket.socket(family, socket.SOCK_STREAM)
            except OSError:
                continue
            try:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family != socket.AF_INET:
                    probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                probe.bind((host, port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return True
            finally:
                probe.close()
        return False

    def _proc_net_sockets(self, wanted):
        """LISTEN sockets from /proc/net/tcp{,6}: [(port, address, family, inode)].
        (Reading them walks the kernel's whole TCP hash table: milliseconds each.)"""
        sockets = []
        for path, family in (("/proc/net/tcp", "ipv4"), ("/proc/net/tcp6", "ipv6")):
            try:
                with open(path, "rb") as f:
                    sockets.extend((port, addr, family, inode)
                                   for port, addr, inode in parse_proc_net_tcp(f.read(), family)
                                   if wanted is None or port in wanted)
            except OSError:
                pass
        return sockets

    def _netlink_sockets(self, wanted):
        """LISTEN sockets from the kernel's sock_diag netlink interface, as `ss` asks;
        None where it is refused (old kernels, sandboxes without netlink)."""
        try:
            # The C module: `socket` on top of it spends milliseconds building enums.
            import _socket as socket
        except ImportError:
            import socket
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 4)  # NETLINK_SOCK_DIAG
        except (OSError, AttributeError, ValueError):
            return None
        sockets = []
        try:
            sock.settimeout(2.0)
            for seq, family in enumerate((socket.AF_INET, socket.AF_INET6), 1):
                sock.sendto(inet_diag_request(family, seq), (0, 0))
                while True:
                    found, done = parse_inet_diag(sock.recv(65536), socket.inet_ntop)
                    sockets.extend(s for s in found if wanted is None or s[0] in wanted)
                    if done:
                        break
        except OSError:
            return None
        finally:
            sock.close()
        return sockets

    def _proc_listeners(self, sockets):
        """Listeners for (port, address, family, inode) sockets, with the PIDs holding
        them (from /proc/PID/fd, read only when there is a socket to place)."""
        if not sockets:
            return []
        owners = self._socket_owners(set(s[3] for s in sockets))
        listeners = []
        for port, address, family, inode in sockets:
            pids = owners.get(inode) or [None]
            for pid in pids:
                listeners.append(Listener(port, address, family, pid))
        return listeners

    def _socket_owners(self, inodes):
        """inode -> PIDs holding it, from the /proc/PID/fd links."""
        wanted = dict(("socket:[%d]" % i, i) for i in inodes)
        owners = {}
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            fd_dir = "/proc/%s/fd" % name
            try:
                fds = os.listdir(fd_dir)
            except OSError:
                continue
            for fd in fds:
                try:
                    link = os.readlink(fd_dir + "/" + fd)
                except OSError:
                    continue
                inode = wanted.get(link)
                if inode is not None:
                    pids = owners.setdefault(inode, [])
                    if int(name) not in pids:
                        pids.append(int(name))
        return owners

    # -- files ---------------------------------------------------------------
    def read_pidfile(self, path):
        """PidfileInfo for `path` (which may not exist).

        The file is opened once and checked through that descriptor: not followed
        when it is a symlink (as root, a link could aim it at any process's pidfile),
        not read when it is not a regular file (a FIFO would hang every command).
        """
        import stat
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return PidfileInfo(path)
            if exc.errno == errno.ELOOP or os.path.islink(path):
                return PidfileInfo(path, exists=True, raw=b"<symbolic link>",
                                   problem="invalid")
            return PidfileInfo(path, exists=True, raw=b"<unreadable>", problem="invalid")
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return PidfileInfo(path, exists=True, raw=b"<not a regular file>",
                                   problem="invalid")
            raw = os.read(fd, 4097)
        except OSError:
            return PidfileInfo(path, exists=True, raw=b"<unreadable>", problem="invalid")
        finally:
            os.close(fd)
        info = PidfileInfo(path, exists=True, raw=raw[:4096], mtime=st.st_mtime)
        info.pid = parse_pidfile(raw) if len(raw) <= 4096 else None
        if info.pid is None:
            info.problem = "invalid"
        elif not pidfile_owner_trusted(st.st_uid, st.st_mode, st.st_gid, self.euid()):
            info.problem = "untrusted"
        return info

    def remove_file(self, path):
        """Remove a file; True if it was there."""
        try:
            os.remove(path)
            return True
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return False
            raise ProcCleanError("cannot remove %s: %s" % (path, exc.strerror), EXIT_FAILED)

    def exists(self, path):
        return os.path.exists(path)

    def write_pidfile(self, path, pid):
        """Write `pid` to `path` atomically (temp file in the same folder, then rename)."""
        self._write_atomic(path, ("%d\n" % pid).encode("ascii"))

    def _write_atomic(self, path, data):
        # A fresh temp file (O_EXCL: never one someone planted, nor a link), renamed
        # over the target: readers see the old content or the new, never half.
        folder = os.path.dirname(os.path.abspath(path))
        for attempt in range(100):
            tmp = os.path.join(folder, ".%s.%d.%d.tmp" % (os.path.basename(path),
                                                          os.getpid(), attempt))
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                             | getattr(os, "O_NOFOLLOW", 0), 0o644)
                break
            except OSError as exc:
                if exc.errno != errno.EEXIST:
                    raise
        else:
            raise OSError(errno.EEXIST, "no free temporary name", path)
        try:
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except OSError:
            try:
                os.remove(tmp)
            except OSError:
                pass
            raise

    def _open_log(self, path):
        """A service log opened for appending.  As root, a symlink is not followed:
        another user could point it at any file root would then write to."""
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        if self.euid() == 0:
            flags |= getattr(os, "O_NOFOLLOW", 0)
        return os.open(path, flags, 0o644)

    def tail(self, path, lines=LOG_TAIL_LINES):
        """The last lines of a file, as text (empty if unreadable or not a file)."""
        if lines <= 0 or not os.path.isfile(path):
            return []
        try:
            with open(path, "rb") as f:
                f.seek(0, 2)
                size = f.tell()
                f.seek(max(0, size - 65536))
                data = f.read()
        except OSError:
            return []
        return [printable(l) for l in decode_bytes(data).splitlines()[-lines:]]

    # -- starting --------------------------------------------------------------
    def spawn(self, argv, cwd, logfile, new_session=True, env=None):
        """Start `argv` in the background: own session, stdin from /dev/null, stdout and
        stderr appended to `logfile`.  Returns the child's Popen."""
        import subprocess
        try:
            log = self._open_log(logfile)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, logfile)
        try:
            return subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, close_fds=True,
                                    start_new_session=new_session, env=env)
        finally:
            os.close(log)

    def spawn_piped(self, argv, cwd, env):
        """Start `argv` in procclean's own process group (a Ctrl-C reaches it too),
        stdin from /dev/null, stdout and stderr into one new pipe.  Returns (Popen, the
        pipe's read end, non-blocking).  On Linux the pipe holds 1 MB, so a service
        that floods its output seldom waits for the reader."""
        import subprocess
        read_end, write_end = os.pipe()
        try:
            if sys.platform.startswith("linux"):
                import fcntl
                try:
                    fcntl.fcntl(read_end, 1031, 1 << 20)    # F_SETPIPE_SZ
                except OSError:
                    pass
            child = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL,
                                     stdout=write_end, stderr=write_end, close_fds=True,
                                     env=env)
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        os.set_blocking(read_end, False)
        return child, read_end

    def open_log(self, path):
        """A service log opened for appending (a descriptor)."""
        return self._open_log(path)

    def process_cwd(self, pid):
        """The folder a process runs in, or None where it cannot be read."""
        try:
            return os.readlink("/proc/%d/cwd" % pid)
        except (OSError, ValueError):
            return None

    def rotate_log(self, path):
        """Keep the previous log as PATH.1 instead of losing it."""
        try:
            if os.path.getsize(path) > 0:
                os.replace(path, path + ".1")
        except OSError:
            pass

    def append_log(self, path, message, create=False):
        """Add one timestamped line of procclean's own to a service's log."""
        if not create and not os.path.exists(path):
            return
        now = self.wall_time()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
        line = "[procclean %s.%03d] %s\n" % (stamp, int(now * 1000) % 1000, message)
        try:
            fd = self._open_log(path)
            try:
                os.write(fd, line.encode("utf-8", "surrogateescape"))
            finally:
                os.close(fd)
        except OSError:
            pass

    def log_position(self, path):
        """(size, inode) of a log, to follow it from its current end."""
        try:
            st = os.stat(path)
            return st.st_size, st.st_ino
        except OSError:
            return 0, None

    def read_new(self, path, offset, identity):
        """What was appended to a log since `offset`: (bytes, new offset, inode).  A log
        replaced (a restart keeps the old one as .log.1) or truncated is read anew."""
        try:
            st = os.stat(path)
        except OSError:
            return b"", offset, identity
        if st.st_ino != identity or st.st_size < offset:
            offset, identity = 0, st.st_ino
        if st.st_size <= offset:
            return b"", offset, identity
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
        return data, offset + len(data), identity

    def read_state(self, path):
        """A supervisor's state file as a dict ({} when absent or unreadable)."""
        if not os.path.exists(path):
            return {}
        import json
        try:
            with open(path, "r") as f:
                data = json.load(f)
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def write_state(self, path, data):
        import json
        try:
            self._write_atomic(path, json.dumps(data).encode("ascii"))
        except OSError:
            pass    # the state is a convenience for status; supervising goes on

    def http_get(self, url, timeout):
        """GET `url` bypassing any proxy: (status or None, seconds, error text)."""
        import socket
        import urllib.error
        import urllib.request
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        started = self.clock()
        try:
            response = opener.open(url, timeout=timeout)
            try:
                status = response.getcode()
            finally:
                response.close()
            return status, self.clock() - started, None
        except urllib.error.HTTPError as exc:
            return exc.code, self.clock() - started, None
        except (urllib.error.URLError, socket.timeout, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, socket.timeout) or "timed out" in str(reason):
                reason = "timed out after %s" % format_seconds(timeout)
            return None, self.clock() - started, str(reason)



# ---------------------------------------------------------------------------
# Output: messages in English and the seed's Chinese, emoji where they show
# ---------------------------------------------------------------------------

MESSAGES = {
    "en": {
        "stopped": "{ok} stopped {svc} PID {pid}: {cmd}",
        "killed": "{kill} killed {svc} PID {pid} with SIGKILL: {cmd}",
        "gone": "{ok} {svc} PID {pid} had already exited: {cmd}",
        "denied": "{fail} cannot signal {svc} PID {pid} (owner {user}): permission denied: {cmd}",
        "survived": "{fail} {svc} PID {pid} still runs after SIGKILL: {cmd}",
        "would_signal": "would send {sig} to {svc} PID {pid}: {cmd}",
        "would_remove": "would remove {path}",
        "removed": "removed {path}",
        "summary_stopped": "{svc}: {n} process(es) stopped",
        "summary_killed": "{svc}: {n} process(es) stopped, {k} of them with SIGKILL after {grace}",
        "summary_failed": "{fail} {svc}: {n} process(es) could not be stopped",
        "nothing": "{svc}: nothing running",
        "force_header": "{clean} force-cleaning {svc} processes...",
        "pidfile_invalid": "{warn} {path}: not a valid PID ({content})",
        "pidfile_untrusted": "{warn} {path}: writable by other users, not trusted while running as root",
        "pidfile_reused": "{warn} {path}: PID {pid} now belongs to a process started after the pidfile was written ({cmd}); left alone",
        "pidfile_unknown_start": "{warn} {path}: cannot tell when PID {pid} started ({cmd}); left alone",
        "pidfile_protected": "{warn} {path}: PID {pid} is procclean itself or one of its parents; not signalled",
        "clean_kept": "{warn} {path}: kept, {svc} still runs (PID {pid})",
        "clean_log_kept": "{warn} {path}: kept, {svc} still runs and writes to it",
        "clean_nothing": "nothing to clean",
        "already_running": "{ok} {svc} is already running (PID {pids})",
        "port_taken": "{fail} cannot start {svc}: port {port} is taken by PID {pid} ({cmd})",
        "port_taken_unknown": "{fail} cannot start {svc}: port {port} is taken by a process procclean cannot see",
        "would_start": "would start {svc}: {cmd} (in {cwd}, log {log})",
        "started": "{ok} started {svc} PID {pid}: {cmd} (log {log})",
        "start_failed": "{fail} {svc} exited at once (status {code}); last lines of {log}:",
        "start_timeout": "{fail} {svc} did not listen on port {port} within {timeout}; last lines of {log}:",
        "start_error": "{fail} cannot start {svc}: {error}",
        "no_command": "{fail} cannot start {svc}: no start command configured",
        "listening": "{ok} {svc} listens on port {port}",
        "status_running": "{ok} {svc}: running, PID {pids}, up {uptime}, CPU {cpu}, memory {mem}",
        "status_stopped": "{off} {svc}: not running",
        "status_port_free": "    port {port}: free",
        "status_port_own": "    port {port}: listening, PID {pid} ({cmd})",
        "status_port_stranger": "    port {port}: taken by PID {pid} ({cmd}), not {svc}'s",
        "status_port_unknown": "    port {port}: taken by a process procclean cannot see",
        "port_nothing": "port {port}: nothing listening",
        "port_unseen": "{fail} port {port}: held by a process procclean cannot see (run as its owner or root)",
        "port_freed": "port {port}: {n} process(es) stopped",
        "port_protected": "{fail} port {port}: held by PID {pid}, procclean itself or one of its parents; not signalled: {cmd}",
        "no_processes": "no matching processes",
        "interrupted": "interrupted",
        "health": "    health {url}: {state}{detail}",
        "healthy": "healthy", "unhealthy": "unhealthy", "no answer": "no answer",
        "supervisor": "    supervisor PID {pid}: {state}, {n} restart(s)",
        "gave_up": "{fail} {svc}: gave up after {n} restart(s) within a minute (last exit: {code})",
        "supervising": "{ok} supervising {svc} (supervisor PID {pid}, log {log})",
        "no_log": "{svc}: no log at {path}",
        "watch_header": "procclean status, every {interval}: {time}",
        "waiting_health": "{svc}: port {port} listens; waiting for {url}",
        "start_unhealthy": "{fail} {svc} listens on port {port} but {url} is {state} after {timeout}; last lines of {log}:",
        "header": ("SERVICE", "PID", "PPID", "USER", "ELAPSED", "CPU%", "MEM", "COMMAND"),
        "doctor_env": "procclean {version}, Python {python}, {platform}",
        "doctor_tools": "process table: {ps}; listeners: {ports}",
        "doctor_finding": "{warn} {text}\n    fix: {fix}",
        "doctor_fixed": "{ok} fixed: {text}",
        "doctor_ok": "{ok} all well",
        "doctor_count": "{fail} {n} finding(s) need action",
        "d_config": "{error}",
        "d_no_folder": "{svc}: start folder {cwd} does not exist",
        "d_no_program": "{svc}: start program {program} is not installed or not on PATH",
        "d_stale": "{path}: names PID {pid}, which is not running (stale)",
        "d_invalid": "{path}: does not hold a valid PID ({content})",
        "d_reused": "{path}: PID {pid} now belongs to a process that started after the pidfile was written ({cmd})",
        "d_untrusted": "{path}: other users can write it, so it is not trusted as root",
        "d_protected": "{path}: names PID {pid}, procclean itself or one of its parents",
        "d_unknown_start": "{path}: names PID {pid} ({cmd}), which matches no pattern and whose start time cannot be read: it may be a reused PID",
        "d_leftover": "{svc}: {n} process(es) run that its pidfile does not account for (PID {pids})",
        "d_orphan": "{svc}: PID {pid} outlived its parent (now under init) and {why}: {cmd}",
        "d_orphan_match": "still matches the pattern",
        "d_orphan_port": "still holds port {port}",
        "d_stranger": "port {port} of {svc} is held by PID {pid}, which is not {svc}'s: {cmd}",
        "d_stranger_fix": "check PID {pid} is yours, then: {prog} kill-port {port}",
        "init_found": "{ok} found {svc}: {what}",
        "init_nothing": "found neither a Python backend nor a frontend here; nothing written",
        "init_wrote": "{ok} wrote {path}",
        "init_exists": "{fail} {path} exists; not overwritten (use --force)",
        "init_would_write": "would write {path}:",
        "init_paste": "Makefile targets to paste (or run init --makefile):",
        "init_appended": "{ok} added to Makefile: {targets}",
        "init_kept": "Makefile already has: {targets}; not duplicated",
        "init_would_append": "would add to Makefile:",
        # -- dev --
        "dev_running": "{fail} {svc} already runs in the background (PID {pids}); stop it first, or run dev --replace",
        "dev_port_taken": "{fail} cannot start {svc}: port {port} is taken by PID {pid} ({cmd}, in {cwd}); if it is yours to stop: {prog} kill-port {port}",
        "dev_waiting": "waiting for {deps}",
        "dev_listening": "listening on port {port}",
        "dev_started": "started PID {pid}: {cmd}",
        "dev_outside": "stopped from another terminal",
        "dev_outside_all": "{ok} every service was stopped from another terminal",
        "dev_restart": "exited ({code}); restarting in {delay} (restart {n})",
        "dev_exited_short": "exited by itself ({code})",
        "dev_exited": "{fail} {svc} exited by itself ({code}); last lines of {log}:",
        "dev_stopping": "stopping every service...",
        "dev_stopping_sig": "{clean} {sig}: stopping every service (Ctrl-C again: SIGKILL at once)...",
        "after_timeout": "{fail} {svc} not started: {dep}, which it starts after, was not ready within {timeout}",
    },
    "zh": {
        "stopped": "{ok} {svc}进程已停止 (PID: {pid}): {cmd}",
        "killed": "{kill} {svc}进程已强制停止 (PID: {pid}, SIGKILL): {cmd}",
        "gone": "{ok} {svc}进程已退出 (PID: {pid}): {cmd}",
        "denied": "{fail} 无法停止{svc}进程 (PID: {pid}, 属于 {user}): 权限不足: {cmd}",
        "survived": "{fail} SIGKILL 后{svc}进程仍在运行 (PID: {pid}): {cmd}",
        "would_signal": "将发送 {sig} 给{svc}进程 (PID: {pid}): {cmd}",
        "would_remove": "将删除 {path}",
        "removed": "已删除 {path}",
        "summary_stopped": "{svc}: 已停止 {n} 个进程",
        "summary_killed": "{svc}: 已停止 {n} 个进程, 其中 {k} 个在 {grace} 后被强制停止",
        "summary_failed": "{fail} {svc}: {n} 个进程无法停止",
        "nothing": "{svc}: 没有运行中的进程",
        "force_header": "{clean} 强制清理所有{svc}进程...",
        "pidfile_invalid": "{warn} {path}: PID 文件内容无效 ({content})",
        "pidfile_untrusted": "{warn} {path}: 其他用户可写, 以 root 运行时不予信任",
        "pidfile_reused": "{warn} {path}: PID {pid} 已被 PID 文件写入之后启动的进程占用 ({cmd}), 未处理",
        "pidfile_unknown_start": "{warn} {path}: 无法确定 PID {pid} 的启动时间 ({cmd}), 未处理",
        "pidfile_protected": "{warn} {path}: PID {pid} 是 procclean 自身或其父进程, 未发送信号",
        "clean_kept": "{warn} {path}: 已保留, {svc}仍在运行 (PID: {pid})",
        "clean_log_kept": "{warn} {path}: 已保留, {svc}仍在运行并写入该文件",
        "clean_nothing": "没有需要清理的文件",
        "already_running": "{ok} {svc}已在运行 (PID: {pids})",
        "port_taken": "{fail} 无法启动{svc}: 端口 {port} 已被 PID {pid} 占用 ({cmd})",
        "port_taken_unknown": "{fail} 无法启动{svc}: 端口 {port} 已被占用",
        "would_start": "将启动{svc}: {cmd} (目录 {cwd}, 日志 {log})",
        "started": "{ok} {svc}已启动 (PID: {pid}): {cmd} (日志 {log})",
        "start_failed": "{fail} {svc}启动后立即退出 (状态 {code}); {log} 的最后几行:",
        "start_timeout": "{fail} {svc}在 {timeout} 内未监听端口 {port}; {log} 的最后几行:",
        "start_error": "{fail} 无法启动{svc}: {error}",
        "no_command": "{fail} 无法启动{svc}: 未配置启动命令",
        "listening": "{ok} {svc}正在监听端口 {port}",
        "status_running": "{ok} {svc}: 运行中, PID {pids}, 已运行 {uptime}, CPU {cpu}, 内存 {mem}",
        "status_stopped": "{off} {svc}: 未运行",
        "status_port_free": "    端口 {port}: 空闲",
        "status_port_own": "    端口 {port}: 监听中, PID {pid} ({cmd})",
        "status_port_stranger": "    端口 {port}: 被 PID {pid} 占用 ({cmd}), 不属于{svc}",
        "status_port_unknown": "    端口 {port}: 被无法查看的进程占用",
        "port_nothing": "端口 {port}: 没有进程监听",
        "port_unseen": "{fail} 端口 {port}: 被无法查看的进程占用 (请以其所有者或 root 运行)",
        "port_freed": "端口 {port}: 已停止 {n} 个进程",
        "port_protected": "{fail} 端口 {port}: 被 procclean 自身或其父进程占用 (PID: {pid}), 未发送信号: {cmd}",
        "no_processes": "没有匹配的进程",
        "interrupted": "已中断",
        "health": "    健康检查 {url}: {state}{detail}",
        "healthy": "健康", "unhealthy": "不健康", "no answer": "无响应",
        "supervisor": "    守护进程 PID {pid}: {state}, 已重启 {n} 次",
        "gave_up": "{fail} {svc}: 一分钟内重启 {n} 次后放弃 (最后退出状态: {code})",
        "supervising": "{ok} 正在守护{svc} (守护进程 PID: {pid}, 日志 {log})",
        "no_log": "{svc}: 没有日志 {path}",
        "watch_header": "procclean 状态, 每 {interval} 刷新: {time}",
        "waiting_health": "{svc}: 端口 {port} 已监听; 等待 {url}",
        "start_unhealthy": "{fail} {svc}已监听端口 {port}, 但 {url} 在 {timeout} 后仍{state}; {log} 的最后几行:",
        "header": ("服务", "PID", "PPID", "用户", "运行时长", "CPU%", "内存", "命令"),
        "doctor_finding": "{warn} {text}\n    解决: {fix}",
        "doctor_fixed": "{ok} 已修复: {text}",
        "doctor_ok": "{ok} 一切正常",
        "doctor_count": "{fail} {n} 个问题需要处理",
        # -- dev --
        "dev_running": "{fail} {svc}已在后台运行 (PID: {pids}); 请先停止, 或使用 dev --replace",
        "dev_port_taken": "{fail} 无法启动{svc}: 端口 {port} 已被 PID {pid} 占用 ({cmd}, 目录 {cwd}); 如确属你的进程: {prog} kill-port {port}",
        "dev_waiting": "等待 {deps}",
        "dev_listening": "正在监听端口 {port}",
        "dev_started": "已启动 (PID: {pid}): {cmd}",
        "dev_outside": "已被另一个终端停止",
        "dev_outside_all": "{ok} 所有服务已被另一个终端停止",
        "dev_restart": "已退出 ({code}); {delay} 后重启 (第 {n} 次)",
        "dev_exited_short": "自行退出 ({code})",
        "dev_exited": "{fail} {svc}自行退出 ({code}); {log} 的最后几行:",
        "dev_stopping": "正在停止所有服务...",
        "dev_stopping_sig": "{clean} {sig}: 正在停止所有服务 (再按 Ctrl-C: 立即 SIGKILL)...",
        "after_timeout": "{fail} 未启动{svc}: 它所等待的{dep}在 {timeout} 内未就绪",
    },
}
SERVICE_NAMES_ZH = {"backend": "后端", "frontend": "前端"}
MARKS_EMOJI = {"ok": "\u2705", "kill": "\U0001f480", "fail": "\u274c", "warn": "\u26a0\ufe0f ",
               "clean": "\U0001f9f9", "off": "\u2b55"}
MARKS_ASCII = {"ok": "[ok]", "kill": "[killed]", "fail": "[error]", "warn": "[warning]",
               "clean": "[clean]", "off": "[off]"}
COLOURS = {"ok": "32", "kill": "33", "fail": "31", "warn": "33", "clean": "36", "off": "90"}


def detect_language(option=None, environ=None):
    """en or zh: --lang, then PROCCLEAN_LANG, then the locale."""
    environ = os.environ if environ is None else environ
    for value in (option, environ.get("PROCCLEAN_LANG")):
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name)
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


class Reporter(object):
    """Writes results to stdout and warnings to stderr, in the chosen language.

    A closed stdout (`| head -1`) must not stop a stop half-way: once writing fails,
    output is dropped and the work goes on.  Text the stream cannot encode is escaped.
    """

    def __init__(self, lang="en", quiet=False, stdout=None, stderr=None, environ=None):
        environ = os.environ if environ is None else environ
        self.lang = lang
        self.quiet = quiet
        self.stdout = stdout if stdout is not None else sys.stdout
        self.stderr = stderr if stderr is not None else sys.stderr
        self.broken = set()
        encoding = getattr(self.stdout, "encoding", None) or "ascii"
        try:
            "\u2705\U0001f9f9".encode(encoding)
            can_emoji = environ.get("TERM") != "dumb"
        except (UnicodeEncodeError, LookupError):
            can_emoji = False
        self.marks = MARKS_EMOJI if can_emoji else MARKS_ASCII
        colour_ok = "NO_COLOR" not in environ and environ.get("TERM") != "dumb"
        # Colour only where a terminal shows it: each stream asked on its own, so a
        # `2>errors.log` holds no escape codes while the terminal gets its colours.
        self.colour = colour_ok and _isatty(self.stdout)
        self.colour_err = colour_ok and _isatty(self.stderr)

    def text(self, key, err=False, **values):
        template = MESSAGES[self.lang].get(key) or MESSAGES["en"][key]
        colour = self.colour_err if err else self.colour
        for mark, symbol in self.marks.items():
            if colour:
                symbol = "\033[%sm%s\033[0m" % (COLOURS[mark], symbol)
            values.setdefault(mark, symbol)
        if "svc" in values and self.lang == "zh":
            values["svc"] = SERVICE_NAMES_ZH.get(values["svc"], values["svc"])
        return template.format(**values)

    def say(self, key, **values):
        if not self.quiet:
            self.write(self.stdout, self.text(key, **values))

    def warn(self, key, **values):
        self.write(self.stderr, self.text(key, err=True, **values))

    def line(self, text, err=False):
        if err or not self.quiet:
            self.write(self.stderr if err else self.stdout, text)

    def data(self, text):
        """Machine-readable output (JSON): printed even with --quiet."""
        self.write(self.stdout, text)

    def raw(self, text):
        """Text as it is (terminal control for status --watch), no newline added."""
        self.write(self.stdout, text, end="")

    def write(self, stream, text, end="\n"):
        if stream is None or id(stream) in self.broken:
            return      # started with the stream closed (`>&-`): nowhere to write
        encoding = getattr(stream, "encoding", None) or "utf-8"
        try:
            try:
                text.encode(encoding)
            except (UnicodeEncodeError, LookupError):
                text = text.encode(encoding, "backslashreplace").decode(encoding, "replace")
            stream.write(text + end)
            stream.flush()
        except (BrokenPipeError, ValueError, OSError):
            # The reader went away; keep working, say nothing more there.
            self.broken.add(id(stream))
            _silence(stream)


def _isatty(stream):
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _silence(stream):
    """Point a broken standard stream at /dev/null so the exit flush cannot fail."""
    try:
        fd = stream.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def format_duration(seconds):
    if seconds is None:
        return "?"
    seconds = int(seconds)
    if seconds < 60:
        return "%ds" % seconds
    if seconds < 3600:
        return "%dm%02ds" % (seconds // 60, seconds % 60)
    if seconds < 86400:
        return "%dh%02dm" % (seconds // 3600, seconds // 60 % 60)
    return "%dd%02dh" % (seconds // 86400, seconds // 3600 % 24)


def format_memory(kb):
    if kb is None:
        return "?"
    if kb < 1024:
        return "%d KB" % kb
    if kb < 1024 * 1024:
        return "%.1f MB" % (kb / 1024.0)
    return "%.2f GB" % (kb / 1024.0 / 1024.0)


def format_seconds(seconds):
    return ("%.1f s" % seconds).replace(".0 s", " s")


# ---------------------------------------------------------------------------
# Configuration: built-ins < procclean.ini < environment < command line
# ---------------------------------------------------------------------------

RESERVED_ENV = ("PROCCLEAN_PS", "PROCCLEAN_PORTS", "PROCCLEAN_CONFIG", "PROCCLEAN_LANG",
                "PROCCLEAN_DEBUG",
                "PROCCLEAN_GRACE", "PROCCLEAN_SERVICES", "PROCCLEAN_MAX_RESTARTS",
                "PROCCLEAN_NO_ROTATE")


class Config(object):
    """The services (in order) and the settings procclean runs with."""

    def __init__(self, services, default_names, grace, lang, max_restarts=None):
        self.services = services
        self.default_names = default_names
        self.grace = grace
        self.lang = lang
        self.max_restarts = max_restarts

    def select(self, names):
        """The services named (all defaults when none), or a usage error."""
        if not names:
            return [self.services[n] for n in self.default_names]
        chosen = []
        for name in names:
            service = self.services.get(name)
            if service is None:
                raise ProcCleanError("unknown service %r (known: %s)"
                                     % (name, ", ".join(self.services)))
            if service not in chosen:
                chosen.append(service)
        return chosen


def _split_names(text):
    return [n for n in re.split(r"[\s,]+", text or "") if n]


def load_config(config_path=None, settings=(), environ=None, folder=".", problems=None,
                read_file=True):
    """Build the Config from the built-ins, the INI file, PROCCLEAN_* variables and
    `--set SERVICE.FIELD=VALUE` options, later ones winning.

    A bad field of a service is a usage error, unless `problems` is a list: then the
    message goes there and the field is left out (doctor reports them all)."""
    environ = os.environ if environ is None else environ
    specs = {}
    order = []
    for builtin in BUILTIN_SERVICES:
        specs[builtin["name"]] = dict(builtin)
        order.append(builtin["name"])
    general = {}

    def spec_for(name):
        if name not in specs:
            if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", name):
                raise ProcCleanError("invalid service name %r" % name)
            specs[name] = {"name": name, "pattern": "", "pidfile": name + ".pid",
                           "logfile": name + ".log", "port": "", "command": "", "cwd": ".",
                           "health": "", "after": "", "supervise": ""}
            order.append(name)
        return specs[name]

    path = config_path or environ.get("PROCCLEAN_CONFIG")
    if path and not os.path.exists(path):
        raise ProcCleanError("config file %s not found" % path)
    path = path or os.path.join(folder, CONFIG_FILE)
    if read_file and os.path.exists(path):
        import configparser
        parser = configparser.ConfigParser(interpolation=None)
        try:
            with open(path, encoding="utf-8") as f:
                parser.read_file(f)
        except (configparser.Error, UnicodeDecodeError, OSError) as exc:
            raise ProcCleanError("%s: %s" % (path, str(exc).splitlines()[0]))
        for section in parser.sections():
            items = dict(parser.items(section))
            if section == "procclean":
                for key, value in items.items():
                    if key not in ("grace", "lang", "services", "max_restarts"):
                        raise ProcCleanError("%s: [procclean] has no setting %r" % (path, key))
                    general[key] = value
                continue
            name = section[len("service:"):] if section.startswith("service:") else section
            spec = spec_for(name)
            for key, value in items.items():
                if key not in ALL_FIELDS:
                    raise ProcCleanError("%s: [%s] has no setting %r (settings: %s)"
                                         % (path, section, key, ", ".join(ALL_FIELDS)))
                spec[key] = value

    for key in ("grace", "lang", "services", "max_restarts"):
        value = environ.get("PROCCLEAN_" + key.upper())
        if value:
            general[key] = value
    for key in sorted(environ):
        if not key.startswith("PROCCLEAN_") or key in RESERVED_ENV:
            continue
        for field in ALL_FIELDS:
            suffix = "_" + field.upper()
            if key.endswith(suffix) and len(key) > len("PROCCLEAN_") + len(suffix):
                env_name = key[len("PROCCLEAN_"):-len(suffix)].lower()
                name = next((n for n in order if n.replace("-", "_") == env_name), env_name)
                spec_for(name)[field] = environ[key]
                break

    for setting in settings:
        name_field, eq, value = setting.partition("=")
        name, dot, field = name_field.rpartition(".")
        if not eq or not dot or not name:
            raise ProcCleanError("--set takes SERVICE.FIELD=VALUE, got %r" % setting)
        if field not in ALL_FIELDS:
            raise ProcCleanError("--set: unknown field %r (fields: %s)"
                                 % (field, ", ".join(ALL_FIELDS)))
        spec_for(name)[field] = value

    services = {}
    for name in order:
        spec = specs[name]
        while True:
            try:
                services[name] = _build_service(spec)
                break
            except _FieldError as exc:
                if problems is None:
                    raise ProcCleanError(str(exc))
                problems.append((name, exc.field, str(exc)))
                spec = dict(spec)
                spec[exc.field] = {"pidfile": name + ".pid", "logfile": name + ".log"}.get(
                    exc.field, "")
    _check_after(services, problems)
    default_names = _split_names(general.get("services")) or order
    for name in default_names:
        if name not in services:
            raise ProcCleanError("services: unknown service %r" % name)
    grace = None
    if general.get("grace"):
        grace = parse_grace(general["grace"])
    max_restarts = None
    if general.get("max_restarts"):
        max_restarts = parse_count(general["max_restarts"], "max_restarts")
    return Config(services, default_names, grace, general.get("lang"), max_restarts)


class _FieldError(ProcCleanError):
    def __init__(self, message, field):
        ProcCleanError.__init__(self, message)
        self.field = field


def _build_service(spec):
    name = spec["name"]
    try:
        Service(name, spec["pattern"], "", "", None, "", "")
    except re.error as exc:
        raise _FieldError("%s: pattern %r does not compile: %s" % (name, spec["pattern"], exc),
                          "pattern")
    port = None
    if str(spec.get("port") or "").strip():
        try:
            port = parse_port(spec["port"])
        except ProcCleanError as exc:
            raise _FieldError("%s: %s" % (name, exc), "port")
    for field in ("pidfile", "logfile"):
        if not spec[field]:
            raise _FieldError("%s: %s must not be empty" % (name, field), field)
    supervise = str(spec.get("supervise") or "no").strip().lower()
    if supervise not in ("yes", "no", "true", "false", "on", "off", "1", "0"):
        raise _FieldError("%s: supervise is yes or no, not %r" % (name, spec["supervise"]),
                          "supervise")
    return Service(name, spec["pattern"], spec["pidfile"], spec["logfile"], port,
                   spec["command"], spec["cwd"] or ".", spec.get("health", ""),
                   after=_split_names(spec.get("after")),
                   supervise=supervise in ("yes", "true", "on", "1"))


def _check_after(services, problems):
    """Every name in an `after` list is a service, and none waits for itself."""
    for service in services.values():
        for name in list(service.after):
            message = None
            if name == service.name:
                message = "%s: after names the service itself" % name
            elif name not in services:
                message = "%s: after names unknown service %r" % (service.name, name)
            if message is not None:
                if problems is None:
                    raise ProcCleanError(message)
                problems.append((service.name, "after", message))
                service.after.remove(name)
    try:
        start_order(list(services.values()))
    except ProcCleanError as exc:
        if problems is None:
            raise
        problems.append((getattr(exc, "service", ""), "after", str(exc)))
        for service in services.values():
            service.after = []


def parse_grace(text):
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ProcCleanError("invalid grace %r: expected seconds, like 2 or 0.5" % (text,))
    if value < 0 or value != value or value > 86400:
        raise ProcCleanError("invalid grace %r: expected seconds from 0 to 86400" % (text,))
    return value


def parse_count(text, what):
    try:
        value = int(str(text).strip())
    except ValueError:
        value = -1
    if value < 0:
        raise ProcCleanError("invalid %s %r: expected a whole number" % (what, text))
    return value


def resolve_cwd(spec, folder="."):
    """The folder a service starts in: `dir?marker` means dir when dir/marker exists."""
    if "?" in spec:
        sub, _, marker = spec.partition("?")
        return sub if os.path.exists(os.path.join(folder, sub, marker)) else "."
    return spec


def command_argv(command):
    """The argv for a start command: `{python}` is this interpreter; anything with
    shell syntax runs under /bin/sh."""
    import shlex
    python = sys.executable or "python3"
    if "{python}" in command:
        command = command.replace("{python}", shlex.quote(python))
    if re.search(r"[|&;<>()$`*?~\\\n]|^\s*\w+=", command):
        return ["/bin/sh", "-c", command]
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ProcCleanError("cannot read start command %r: %s" % (command, exc))
    if not argv:
        raise ProcCleanError("empty start command")
    return argv


# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------

class Context(object):
    """What every command works with: the system, the config, the options, the output."""

    def __init__(self, system, config, out, grace=DEFAULT_GRACE, dry_run=False, json=False,
                 force=False, wait=False, timeout=START_TIMEOUT, check=False, watch=None,
                 count=None, health_timeout=HEALTH_TIMEOUT, supervise=False,
                 max_restarts=MAX_RESTARTS, follow=False, lines=LOG_TAIL_LINES,
                 rotate=True, passthrough=(), replace=False):
        self.system = system
        self.config = config
        self.out = out
        self.grace = grace
        self.dry_run = dry_run
        self.json = json
        self.force = force
        self.wait = wait
        self.timeout = timeout
        self.check = check
        self.watch = watch                  # status --watch interval, or None
        self.count = count                  # status --watch: snapshots to print
        self.health_timeout = health_timeout
        self.supervise = supervise
        self.max_restarts = max_restarts
        self.follow = follow
        self.lines = lines
        self.rotate = rotate                # start: keep the previous log as .log.1
        self.passthrough = list(passthrough)  # options a background supervisor needs
        self.replace = replace              # dev: stop what runs in the background first
        self.project = os.path.realpath(os.getcwd())    # the folder that is the project
        self.hurry = False                  # dev: a second Ctrl-C, KILL survivors at once


class Survey(object):
    """A look at the machine for some services: the table, the targets, the pidfiles."""

    def __init__(self, table, targets, pidfiles):
        self.table = table
        self.targets = targets
        self.pidfiles = pidfiles          # service name -> PidfileInfo

    def targets_of(self, service):
        return [t for t in self.targets if t.service is service]

    def running(self, service):
        """The service's targets that still run (a zombie has exited)."""
        return [t for t in self.targets_of(service) if not t.process.zombie]


def survey(ctx, services, warn=True):
    """Take the process table once and find every target of `services`: the trusted
    pidfile process and every pattern match, each with all its descendants."""
    system = ctx.system
    table = system.process_table()
    protected = protected_pids(table, system.self_pid(), system.parent_pid())
    roots = []
    pidfiles = {}
    for service in services:
        info = system.read_pidfile(service.pidfile)
        pidfiles[service.name] = info
        root = _pidfile_root(ctx, service, info, table, protected, warn)
        if root is not None:
            roots.append((root, service, "pidfile"))
        roots.extend((proc, service, "pattern")
                     for proc in sorted(matches(table, service), key=lambda p: p.pid))
    return Survey(table, plan_targets(table, roots, protected), pidfiles)


def pidfile_verdict(system, service, info, table, protected):
    """What a pidfile is worth: (verdict, process).  Verdicts: absent, invalid,
    untrusted, protected (names procclean or an ancestor), dead (nothing runs under
    that PID, or a zombie), reused (a process started after the pidfile was written),
    unknown-start (no way to tell), trusted."""
    if not info.exists:
        return "absent", None
    if info.problem:
        return info.problem, None
    if info.pid in protected:
        return "protected", None
    proc = table.get(info.pid)
    if proc is None or proc.zombie:
        return "dead", None
    if service.matches(proc):
        return "trusted", proc
    # A PID named by the pidfile but not by the pattern counts only if that process
    # already ran when the pidfile was written: otherwise the PID was reused.
    start = proc.start if proc.start is not None else system.start_time(proc.pid)
    if start is None:
        return "unknown-start", proc
    if start > info.mtime + 1.0:
        return "reused", proc
    return "trusted", proc


PIDFILE_WARNINGS = {"invalid": "pidfile_invalid", "untrusted": "pidfile_untrusted",
                    "protected": "pidfile_protected", "reused": "pidfile_reused",
                    "unknown-start": "pidfile_unknown_start"}


def _pidfile_root(ctx, service, info, table, protected, warn):
    """The pidfile's process if it may be trusted, else None (with a warning)."""
    verdict, proc = pidfile_verdict(ctx.system, service, info, table, protected)
    if verdict == "trusted":
        return proc
    if warn and verdict in PIDFILE_WARNINGS:
        ctx.out.warn(PIDFILE_WARNINGS[verdict], path=info.path, pid=info.pid,
                     content=printable(repr(info.raw)[1:]),
                     cmd=printable(proc.command) if proc else "")
    return None


def wait_gone(system, targets, timeout, hurry=None):
    """Wait for all `targets` together until they are gone or `timeout` passes (or
    `hurry()` says to stop waiting); the ones still running.  Polls fast at first (most
    processes exit within milliseconds of SIGTERM), then every 100 ms: no fixed sleeps."""
    deadline = system.clock() + timeout
    delay = 0.005
    pending = list(targets)
    while True:
        running = set(id(p) for p in system.still_running([t.process for t in pending]))
        pending = [t for t in pending if id(t.process) in running]
        now = system.clock()
        if not pending or now >= deadline or (hurry is not None and hurry()):
            return pending
        system.sleep(min(delay, deadline - now))
        delay = min(delay * 2, 0.1)


def signal_targets(ctx, targets, signum):
    """Send `signum` to every target at once; those it reached."""
    reached = []
    for target in targets:
        try:
            ctx.system.send_signal(target.pid, signum)
        except OSError as exc:
            if exc.errno == errno.ESRCH:
                target.outcome = "gone"
            elif exc.errno == errno.EPERM:
                target.outcome = "denied"
            else:
                target.outcome = "survived"
            continue
        reached.append(target)
    return reached


def stop_targets(ctx, targets, force=False):
    """TERM all, one shared wait up to the grace, KILL the survivors, a short wait.
    With `force`: KILL all at once.  Sets each target's outcome; returns the failed."""
    if ctx.dry_run:
        for target in targets:
            ctx.out.say("would_signal", sig="SIGKILL" if force else "SIGTERM",
                        svc=target.service.name, pid=target.pid,
                        cmd=printable(target.process.command))
        return []
    live = []
    for target in targets:
        if target.process.zombie:
            target.outcome = "gone"     # a zombie has exited; only its parent can reap it
        else:
            live.append(target)
    if not force:
        reached = signal_targets(ctx, live, SIGTERM)
        survivors = wait_gone(ctx.system, reached, ctx.grace,
                              hurry=lambda: getattr(ctx, "hurry", False)) if reached else []
        for target in reached:
            target.outcome = "stopped"
        to_kill = survivors
    else:
        to_kill = live
    if to_kill:
        reached = signal_targets(ctx, to_kill, SIGKILL)
        remaining = wait_gone(ctx.system, reached, KILL_WAIT) if reached else []
        for target in reached:
            target.outcome = "killed"
        for target in remaining:
            target.outcome = "survived"
    return [t for t in targets if t.outcome in ("denied", "survived")]


def report_targets(ctx, targets):
    for target in targets:
        values = dict(svc=target.service.name, pid=target.pid,
                      cmd=printable(target.process.command))
        if target.outcome in ("denied", "survived"):
            ctx.out.warn(target.outcome, user=target.process.user, **values)
        elif target.outcome:
            ctx.out.say(target.outcome, **values)


def report_summary(ctx, service, targets, grace_used):
    if ctx.dry_run:
        if not targets:
            ctx.out.say("nothing", svc=service.name)
        return
    failed = [t for t in targets if t.outcome in ("denied", "survived")]
    done = [t for t in targets if t.outcome not in ("denied", "survived")]
    killed = [t for t in done if t.outcome == "killed"]
    if not targets:
        ctx.out.say("nothing", svc=service.name)
    elif failed:
        ctx.out.warn("summary_failed", svc=service.name, n=len(failed))
    if done:
        if killed and grace_used:
            ctx.out.say("summary_killed", svc=service.name, n=len(done), k=len(killed),
                        grace=format_seconds(ctx.grace))
        else:
            ctx.out.say("summary_stopped", svc=service.name, n=len(done))


def remove_files(ctx, paths):
    """Remove files (or say what would be removed); one that cannot be removed is
    reported and the rest still go.  False if any stayed."""
    ok = True
    for path in paths:
        if ctx.dry_run:
            if ctx.system.exists(path):
                ctx.out.say("would_remove", path=path)
            continue
        try:
            if ctx.system.remove_file(path):
                ctx.out.say("removed", path=path)
        except ProcCleanError as exc:
            ctx.out.line("procclean: %s" % exc, err=True)
            ok = False
    return ok


LOGGED_OUTCOMES = {"stopped": "stopped by SIGTERM", "killed": "killed by SIGKILL",
                   "gone": "had already exited", "denied": "not signalled: permission denied",
                   "survived": "still running after SIGKILL"}


def cmd_stop(ctx, services, force=False):
    """stop / force-clean: every target of every service, all signalled together."""
    if force:
        for service in services:
            ctx.out.say("force_header", svc=service.name)
    found = survey(ctx, services)
    failed = stop_targets(ctx, found.targets, force=force)
    report_targets(ctx, found.targets)
    for service in services:
        targets = found.targets_of(service)
        report_summary(ctx, service, targets, grace_used=not force)
        info = found.pidfiles[service.name]
        paths = []
        if info.exists:
            survivor = any(t.via == "pidfile" and t.outcome in ("denied", "survived")
                           for t in targets)
            if not survivor:
                paths.append(service.pidfile)
        if force:
            paths.append(service.logfile)
        elif targets and not ctx.dry_run:
            ctx.system.append_log(service.logfile, "stop: " + "; ".join(
                "PID %d %s" % (t.pid, LOGGED_OUTCOMES[t.outcome]) for t in targets))
        remove_files(ctx, paths)
        if not ctx.dry_run:
            ctx.system.remove_file(state_path(service))
    return EXIT_FAILED if failed else EXIT_OK


def process_record(target):
    proc = target.process
    cpu = proc.cpu_percent
    return {
        "service": target.service.name, "pid": proc.pid, "ppid": proc.ppid,
        "user": proc.user, "elapsed": None if proc.elapsed is None else round(proc.elapsed, 1),
        "cpu_percent": None if cpu is None else round(cpu, 1), "memory_kb": proc.rss_kb,
        "command": printable(proc.command), "via": target.via, "zombie": proc.zombie,
        "cpu_seconds": proc.cpu_seconds,
    }


def cmd_show_processes(ctx, services):
    found = survey(ctx, services)
    records = [process_record(t) for t in found.targets]
    if ctx.json:
        import json
        ctx.out.data(json.dumps({"processes": records}, indent=2))
        return EXIT_OK
    if not records:
        ctx.out.say("no_processes")
        return EXIT_OK
    header = MESSAGES[ctx.out.lang]["header"]
    rows = [header] + [(
        r["service"], str(r["pid"]), "-" if r["ppid"] is None else str(r["ppid"]), r["user"],
        format_duration(r["elapsed"]),
        "?" if r["cpu_percent"] is None else "%.1f" % r["cpu_percent"],
        format_memory(r["memory_kb"]), r["command"]) for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    for row in rows:
        ctx.out.line("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])
    return EXIT_OK


def port_holders(listeners, port, table):
    """Listeners on `port`, one per PID, with commands filled from the table."""
    seen = {}
    for listener in listeners:
        if listener.port != port or listener.pid in seen:
            continue
        proc = table.get(listener.pid) if listener.pid is not None else None
        if proc is not None:
            listener.command = proc.command
        seen[listener.pid] = listener
    return list(seen.values())


def health_url(service):
    """The URL that tells whether a service is healthy; None without a port or check."""
    spec = (service.health or "").strip()
    if service.port is None or spec.lower() in ("", "off", "none", "no"):
        return None
    if spec == "auto":
        return "http://127.0.0.1:%d/health" % service.port
    if spec.startswith("/"):
        return "http://127.0.0.1:%d%s" % (service.port, spec)
    return spec.replace("{port}", str(service.port))


def check_health(system, service, timeout):
    """GET the service's health URL: {url, state (healthy, unhealthy, no answer), status,
    latency_ms, error}; None when the service has no health check."""
    url = health_url(service)
    if url is None:
        return None
    status, seconds, error = system.http_get(url, timeout)
    if status == 404 and service.health.strip() == "auto":
        # No /health route: the app's root answering is the next best sign of life.
        url = "http://127.0.0.1:%d/" % service.port
        status, more, error = system.http_get(url, timeout)
        seconds += more
    if status is None:
        state = "no answer"
    elif status < 400:
        state = "healthy"
    else:
        state = "unhealthy"
    return {"url": url, "state": state, "status": status,
            "latency_ms": round(seconds * 1000.0, 1), "error": error}


def state_path(service):
    """Where a supervisor keeps its state (restarts, last exit) beside the pidfile."""
    return service.pidfile + ".state"


def service_status(ctx, service, found, listeners):
    targets = found.running(service)
    procs = [t.process for t in targets]
    pids = [p.pid for p in procs]
    roots = [t.process for t in targets if t.via != "child"] or procs
    uptime = max([p.elapsed for p in roots if p.elapsed is not None] or [None]) \
        if roots else None
    cpu_values = [p.cpu_percent for p in procs if p.cpu_percent is not None]
    mem_values = [p.rss_kb for p in procs if p.rss_kb is not None]
    record = {
        "name": service.name, "running": bool(procs), "pids": pids,
        "uptime": None if uptime is None else round(uptime, 1),
        "cpu_percent": round(sum(cpu_values), 1) if cpu_values else None,
        "memory_kb": sum(mem_values) if mem_values else None,
        "port": service.port, "listening": False, "listeners": [],
        "health": None, "supervisor": None,
        "pidfile": service.pidfile,
        "pidfile_pid": found.pidfiles[service.name].pid,
        "processes": [process_record(t) for t in targets],
    }
    if service.port is not None:
        for holder in port_holders(listeners, service.port, found.table):
            record["listeners"].append({
                "pid": holder.pid, "address": holder.address, "family": holder.family,
                "command": None if holder.command is None else printable(holder.command),
                "own": holder.pid in pids})
        record["listening"] = bool(record["listeners"])
    if record["running"] and any(l["own"] for l in record["listeners"]):
        record["health"] = check_health(ctx.system, service, ctx.health_timeout)
    supervisor = ctx.system.read_state(state_path(service))
    if supervisor:
        if supervisor.get("state") in ("running", "backoff", "starting") \
                and supervisor.get("supervisor") not in pids:
            supervisor["state"] = "dead"    # killed without a chance to say so
        record["supervisor"] = dict(
            (k, supervisor.get(k) if isinstance(supervisor.get(k), int) else None)
            for k in ("supervisor", "child", "restarts", "last_exit"))
        record["supervisor"]["state"] = str(supervisor.get("state"))
    return record


def record_ok(record):
    """Up, and healthy where a health check applies (what status --check asks)."""
    health = record.get("health")
    return record["running"] and (health is None or health["state"] == "healthy")


def status_snapshot(ctx, services, warn=True):
    found = survey(ctx, services, warn=warn)
    ports = [s.port for s in services if s.port]
    listeners = ctx.system.listeners(ports) if ports else []
    return [service_status(ctx, s, found, listeners) for s in services]


def cmd_status(ctx, services):
    if ctx.watch is not None:
        return watch_status(ctx, services)
    records = status_snapshot(ctx, services)
    if ctx.json:
        import json
        ctx.out.data(json.dumps({"services": records}, indent=2))
    else:
        for record in records:
            for line in status_lines(ctx, record):
                ctx.out.line(line)
    if ctx.check and not all(record_ok(r) for r in records):
        return EXIT_NOT_RUNNING
    return EXIT_OK


def watch_status(ctx, services):
    """status --watch: redraw on a terminal, one snapshot per interval on a pipe (JSON
    lines with --json), CPU as used over the last interval.  Ctrl-C ends it cleanly."""
    import json
    out = ctx.out
    system = ctx.system
    isatty = getattr(out.stdout, "isatty", None)
    redraw = bool(isatty and isatty()) and not ctx.json
    previous = None
    shown = 0
    if redraw:
        out.raw("\033[?25l")
    try:
        while True:
            records = status_snapshot(ctx, services, warn=False)
            now = system.clock()
            cpu_now = dict((p["pid"], p["cpu_seconds"]) for r in records for p in r["processes"]
                           if p["cpu_seconds"] is not None)
            if previous is not None and now > previous[0]:
                for record in records:
                    used = sum(cpu_now[p] - previous[1][p] for p in record["pids"]
                               if p in cpu_now and p in previous[1])
                    record["cpu_percent"] = round(100.0 * used / (now - previous[0]), 1) \
                        if record["running"] else None
            previous = (now, cpu_now)
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(system.wall_time()))
            if ctx.json:
                out.data(json.dumps({"time": stamp, "services": records}))
            else:
                lines = [out.text("watch_header", interval=format_seconds(ctx.watch),
                                  time=stamp), ""]
                for record in records:
                    lines.extend(status_lines(ctx, record))
                if redraw:
                    out.raw("\033[H\033[2J" + "\n".join(lines) + "\n")
                else:
                    for line in lines + [""]:
                        out.line(line)
            shown += 1
            if ctx.count and shown >= ctx.count:
                break
            system.sleep(ctx.watch)
    except KeyboardInterrupt:
        pass                    # the way out of a watch: not an error
    finally:
        if redraw:
            out.raw("\033[?25h")
    return EXIT_OK


def status_lines(ctx, record):
    out = ctx.out
    name = record["name"]
    lines = []
    if record["running"]:
        lines.append(out.text(
            "status_running", svc=name, pids=", ".join(map(str, record["pids"])),
            uptime=format_duration(record["uptime"]),
            cpu="?" if record["cpu_percent"] is None else "%.1f%%" % record["cpu_percent"],
            mem=format_memory(record["memory_kb"])))
    else:
        lines.append(out.text("status_stopped", svc=name))
    if record["port"] is not None:
        if not record["listeners"]:
            lines.append(out.text("status_port_free", port=record["port"]))
        for holder in record["listeners"]:
            if holder["pid"] is None:
                lines.append(out.text("status_port_unknown", port=record["port"]))
            else:
                lines.append(out.text("status_port_own" if holder["own"] else
                                      "status_port_stranger", port=record["port"],
                                      pid=holder["pid"], cmd=holder["command"], svc=name))
    health = record["health"]
    if health:
        if health["status"] is not None:
            detail = " (HTTP %d, %d ms)" % (health["status"], health["latency_ms"])
        else:
            detail = " (%s)" % health["error"]
        lines.append(out.text("health", url=health["url"], detail=detail,
                              state=MESSAGES[out.lang][health["state"]]))
    supervisor = record["supervisor"]
    if supervisor:
        if supervisor["state"] == "gave-up" and not record["running"]:
            lines.append(out.text("gave_up", svc=name, n=supervisor["restarts"],
                                  code=describe_exit(supervisor["last_exit"])))
        elif record["running"]:
            lines.append(out.text("supervisor", pid=supervisor["supervisor"],
                                  state=supervisor["state"], n=supervisor["restarts"]))
    return lines


def describe_exit(status):
    if not isinstance(status, int):
        return "?"
    if status < 0:
        import signal
        try:
            return "killed by %s" % signal.Signals(-status).name
        except ValueError:
            return "killed by signal %d" % -status
    return "status %d" % status


def cmd_clean(ctx, services):
    """Remove stale pidfiles and the logfiles; keep what a running service still uses."""
    found = survey(ctx, services, warn=False)
    removed_any = False
    for service in services:
        live = found.running(service)
        info = found.pidfiles[service.name]
        paths = []
        if info.exists:
            named = [t for t in live if t.via == "pidfile"]
            if named:
                ctx.out.warn("clean_kept", path=service.pidfile, svc=service.name,
                             pid=named[0].pid)
            else:
                if info.problem == "invalid":
                    ctx.out.warn("pidfile_invalid", path=info.path,
                                 content=printable(repr(info.raw)[1:]))
                paths.append(service.pidfile)
        if ctx.system.exists(state_path(service)) and not live:
            paths.append(state_path(service))
        if ctx.system.exists(service.logfile):
            if live:
                ctx.out.warn("clean_log_kept", path=service.logfile, svc=service.name)
            else:
                paths.append(service.logfile)
        if ctx.system.exists(service.logfile + ".1") and not live:
            paths.append(service.logfile + ".1")      # the log start kept of the run before
        removed_any = removed_any or bool(paths)
        remove_files(ctx, paths)
    if not removed_any:
        ctx.out.say("clean_nothing")
    return EXIT_OK


def launch_env(ctx, service, base=None):
    """The environment a launched service gets: the caller's plus the project's tag."""
    env = dict(os.environ if base is None else base)
    env["PROCCLEAN_PROJECT"] = ctx.project
    env["PROCCLEAN_SERVICE"] = service.name
    return env


def launch_plan(service):
    """(folder, argv, the command as shown) for starting a service."""
    argv = command_argv(service.command)
    shown = " ".join(argv) if argv[:2] != ["/bin/sh", "-c"] else argv[2]
    return resolve_cwd(service.cwd), argv, shown


def cmd_start(ctx, services):
    """Start each service in the background unless it runs already or its port is taken."""
    services = start_order(services)
    for service in services:
        if service.command.strip():
            launch_plan(service)        # a command that cannot be read stops all, up front
    found = survey(ctx, services)
    listeners = None
    failed = False
    started = []
    for service in services:
        running = found.running(service)
        if running:
            ctx.out.say("already_running", svc=service.name,
                        pids=", ".join(str(t.pid) for t in running))
            continue
        if service.port is not None:
            if listeners is None:
                listeners = ctx.system.listeners([s.port for s in services if s.port])
            holders = port_holders(listeners, service.port, found.table)
            if holders:
                holder = holders[0]
                if holder.pid is None:
                    ctx.out.warn("port_taken_unknown", svc=service.name, port=service.port)
                else:
                    ctx.out.warn("port_taken", svc=service.name, port=service.port,
                                 pid=holder.pid, cmd=printable(holder.command or "?"))
                failed = True
                continue
        if not service.command.strip():
            ctx.out.warn("no_command", svc=service.name)
            failed = True
            continue
        cwd, argv, shown = launch_plan(service)
        if ctx.dry_run:
            ctx.out.say("would_start", svc=service.name, cmd=shown, cwd=cwd, log=service.logfile)
            continue
        if found.pidfiles[service.name].exists:
            ctx.system.remove_file(service.pidfile)     # stale: nothing of it runs
        if not os.path.isdir(cwd):
            ctx.out.warn("start_error", svc=service.name, error="no folder %s" % cwd)
            failed = True
            continue
        if service.after and not _wait_after(ctx, service, started):
            failed = True
            continue
        if ctx.rotate:
            ctx.system.rotate_log(service.logfile)
        env = None
        if ctx.supervise:
            # The supervisor is this same file, run in the background: it starts the
            # service as its child and restarts it when it crashes.
            argv = [sys.executable or "python3", os.path.abspath(__file__), "supervise",
                    service.name] + ctx.passthrough
            env = dict(os.environ, PROCCLEAN_NO_ROTATE="1")
            cwd = "."
        try:
            child = ctx.system.spawn(argv, cwd, service.logfile, env=env)
        except OSError as exc:
            ctx.out.warn("start_error", svc=service.name,
                         error="%s: %s" % (exc.filename or argv[0], exc.strerror or exc))
            failed = True
            continue
        try:
            ctx.system.write_pidfile(service.pidfile, child.pid)
        except OSError as exc:
            # Untracked, it could only be found by pattern: take it down again.
            ctx.system.send_signal(child.pid, SIGKILL)
            child.wait()
            ctx.out.warn("start_error", svc=service.name, error="cannot write %s: %s"
                         % (service.pidfile, exc.strerror or exc))
            failed = True
            continue
        if not ctx.supervise:
            ctx.system.append_log(service.logfile, "start: %s PID %d: %s (in %s)"
                                  % (service.name, child.pid, shown, cwd))
        started.append((service, child, shown))
    if started and not _watch_start(ctx, started):
        failed = True
    return EXIT_FAILED if failed else EXIT_OK


def _watch_start(ctx, started):
    """Watch fresh services together: each must survive the first moments; with
    --wait, one with a port must also listen on it and answer its health URL before
    the timeout.  False if any failed."""
    system = ctx.system
    begun = system.clock()
    pending = list(started)
    ok = True
    delay = 0.02
    health = {}

    def waits_for_port(service):
        return ctx.wait and service.port is not None

    def fail(service, key, **values):
        ctx.out.warn(key, svc=service.name, log=service.logfile, **values)
        for line in system.tail(service.logfile):
            ctx.out.line("    " + line, err=True)

    while pending:
        now = system.clock()
        listening = None
        for entry in list(pending):
            service, child, shown = entry
            code = child.poll()
            if code is not None:
                fail(service, "start_failed", code=code)
                system.remove_file(service.pidfile)
                pending.remove(entry)
                ok = False
            elif not waits_for_port(service):
                if now - begun >= START_CHECK:
                    _say_started(ctx, service, child, shown)
                    pending.remove(entry)
            else:
                if listening is None:
                    listening = set(l.port for l in system.listeners(
                        [e[0].port for e in pending]))
                if service.port not in listening:
                    continue
                if health_url(service) is not None:
                    health[service.name] = check_health(system, service,
                                                        min(ctx.health_timeout, ctx.timeout))
                    if health[service.name]["state"] != "healthy":
                        continue
                _say_started(ctx, service, child, shown)
                ctx.out.say("listening", svc=service.name, port=service.port)
                pending.remove(entry)
        if not pending:
            break
        now = system.clock()
        if now - begun >= ctx.timeout and all(waits_for_port(e[0]) for e in pending):
            break
        deadline = begun + (ctx.timeout if all(waits_for_port(e[0]) for e in pending)
                            else START_CHECK)
        system.sleep(max(0.0, min(delay, deadline - now)))
        delay = min(delay * 2, 0.25)
    for service, child, shown in pending:
        result = health.get(service.name)
        if result is not None:
            fail(service, "start_unhealthy", port=service.port, url=result["url"],
                 state=MESSAGES[ctx.out.lang][result["state"]],
                 timeout=format_seconds(ctx.timeout))
        else:
            fail(service, "start_timeout", port=service.port,
                 timeout=format_seconds(ctx.timeout))
        ok = False
    return ok


def _say_started(ctx, service, child, shown):
    if ctx.supervise:
        ctx.out.say("supervising", svc=service.name, pid=child.pid, log=service.logfile)
    else:
        ctx.out.say("started", svc=service.name, pid=child.pid, cmd=shown, log=service.logfile)


class _StopRequested(Exception):
    """A supervisor was told to stop (SIGTERM, SIGINT, SIGHUP)."""


def cmd_supervise(ctx, services):
    """Run one service in the foreground and restart it when it crashes: backoff from
    1 s doubling to 30 s, at most --max-restarts restarts a minute; a clean exit (0)
    ends supervision.  SIGTERM stops the service and the supervisor together."""
    if len(services) != 1:
        raise ProcCleanError("supervise takes exactly one service")
    service = services[0]
    found = survey(ctx, [service], warn=False)
    running = found.running(service)
    if running:
        ctx.out.say("already_running", svc=service.name,
                    pids=", ".join(str(t.pid) for t in running))
        return EXIT_OK
    if not service.command.strip():
        ctx.out.warn("no_command", svc=service.name)
        return EXIT_FAILED
    cwd, argv, shown = launch_plan(service)
    if ctx.dry_run:
        ctx.out.say("would_start", svc=service.name, cmd=shown, cwd=cwd, log=service.logfile)
        return EXIT_OK
    system = ctx.system
    if ctx.rotate:
        system.rotate_log(service.logfile)
    me = system.self_pid()
    system.write_pidfile(service.pidfile, me)
    state = {"supervisor": me, "service": service.name, "child": None, "state": "starting",
             "restarts": 0, "last_exit": None}

    def save(**changes):
        state.update(changes)
        state["updated"] = system.wall_time()
        system.write_state(state_path(service), state)

    def log(message):
        system.append_log(service.logfile, "supervise: " + message, create=True)

    # A stop request raises _StopRequested where the supervisor waits (for its child,
    # or out a backoff), and is held while it starts a child, so that no child is
    # ever started without the supervisor knowing its PID.
    pending_stop = []
    interruptible = [True]

    def on_signal(signum, frame):
        pending_stop.append(signum)
        if interruptible[0]:
            interruptible[0] = False        # later signals are only noted
            raise _StopRequested(signum)

    def spawn_child():
        interruptible[0] = False
        try:
            holder[0] = system.spawn(argv, cwd, service.logfile, new_session=False)
        finally:
            interruptible[0] = not pending_stop
        return holder[0]

    import signal
    handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    stop_signals = set(-sig for sig in handled)
    previous_handlers = dict((sig, signal.signal(sig, on_signal)) for sig in handled)
    restarts = []
    delay = BACKOFF_FIRST
    holder = [None]         # the child, known before a stop request can be acted on
    child = None
    first = True
    try:
        while True:
            try:
                child = spawn_child()
            except OSError as exc:
                problem = "%s: %s" % (exc.filename or argv[0], exc.strerror or exc)
                if first:
                    ctx.out.warn("start_error", svc=service.name, error=problem)
                    save(state="exited")
                    return EXIT_FAILED
                log("cannot restart %s: %s" % (service.name, problem))
                child, pid = None, "-"
                started = system.clock()
            first = False
            if pending_stop:
                raise _StopRequested(pending_stop[0])
            if child is None:
                status = 127
            else:
                save(child=child.pid, state="running")
                log("started %s PID %d: %s" % (service.name, child.pid, shown))
                started = system.clock()
                status = child.wait()
                pid, child = child.pid, None
                holder[0] = None
            save(child=None, last_exit=status)
            if status == 0 or status in stop_signals:
                # A clean exit, or one asked for (stop reached the service before its
                # supervisor, or someone signalled it): supervision is over.
                log("%s PID %s exited %s(%s); not restarting"
                    % (service.name, pid, "cleanly " if status == 0 else "",
                       describe_exit(status)))
                save(state="exited")
                return EXIT_OK
            now = system.clock()
            if now - started >= STABLE_RUN:
                delay = BACKOFF_FIRST
            restarts = [t for t in restarts if now - t < 60.0]
            if len(restarts) >= ctx.max_restarts:
                log("%s PID %s exited (%s); gave up after %d restart(s) within a minute"
                    % (service.name, pid, describe_exit(status), len(restarts)))
                save(state="gave-up")
                ctx.out.warn("gave_up", svc=service.name, n=len(restarts),
                             code=describe_exit(status))
                return EXIT_FAILED
            log("%s PID %s exited (%s); restarting in %s (restart %d)"
                % (service.name, pid, describe_exit(status), format_seconds(delay),
                   len(restarts) + 1))
            save(state="backoff")
            system.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)
            restarts.append(system.clock())
            state["restarts"] += 1
    except _StopRequested as request:
        for sig in handled:
            signal.signal(sig, signal.SIG_IGN)      # one stop at a time, to the end
        child = holder[0]
        try:
            name = signal.Signals(request.args[0]).name
        except (ValueError, IndexError):
            name = "a signal"
        log("received %s; stopping %s" % (name, service.name))
        if child is not None:
            table = system.process_table()
            if child.pid in table:
                targets = plan_targets(table, [(table[child.pid], service, "child")],
                                       protected_pids(table, me, system.parent_pid()))
                stop_targets(ctx, targets)
            try:
                child.wait(timeout=KILL_WAIT)       # reap it; stop_targets saw it end
            except Exception:
                pass
        save(state="stopped", child=None)
        return EXIT_OK
    finally:
        info = system.read_pidfile(service.pidfile)
        if info.pid == me:
            system.remove_file(service.pidfile)
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)


# -- dev: the whole stack in the foreground -------------------------------------------

DEV_COLOURS = ("36", "33", "32", "35", "34", "96", "93", "92")
RELAY_READ = 1 << 20        # bytes read from a service's pipe at once
RELAY_LONG_LINE = 1 << 16   # a line this long with no newline yet is shown as it is
DEV_POLL = 0.1              # seconds between looks while something is awaited
DEV_IDLE = 1.0              # ...and while nothing is (a child's exit wakes it at once)
# Exit statuses a stop can cause (a signal's, or a clean exit on SIGTERM as uvicorn
# does): after one of these, dev gives a `stop` from another terminal the time to
# finish and remove the pidfile before calling it a crash.
STOP_STATUSES = (0, -2, -9, -15, -1, 129, 130, 137, 143)


def dev_prefixes(names, colour):
    """name -> (prefix of its output lines, prefix of procclean's own lines about it):
    the name padded to the longest, coloured per service when `colour`."""
    width = max([len(n) for n in names] or [0])
    prefixes = {}
    for i, name in enumerate(names):
        label = name.ljust(width)
        if colour:
            code = DEV_COLOURS[i % len(DEV_COLOURS)]
            prefixes[name] = ("\033[%sm%s |\033[0m " % (code, label),
                              "\033[1;%sm%s *\033[0m " % (code, label))
        else:
            prefixes[name] = (label + " | ", label + " * ")
    return prefixes


def relay_lines(prefix, data, pending, utf8=True, encoding="utf-8"):
    """(the complete lines of `pending + data`, each with `prefix` in front, ready to
    write; what is left of a line not ended yet).  Bytes that are not UTF-8 come out
    escaped (\\xff); so does what the output's encoding cannot show."""
    if pending:
        data = pending + data
    cut = data.rfind(b"\n") + 1
    if cut == 0 and len(data) < RELAY_LONG_LINE:
        return b"", data
    if cut == 0:
        body, rest = data, b""
    else:
        body, rest = data[:cut - 1], data[cut:]
    return prefix + relay_convert(body, utf8, encoding).replace(b"\n", b"\n" + prefix) \
        + b"\n", rest


def relay_convert(data, utf8=True, encoding="utf-8"):
    if utf8:
        try:
            data.decode("utf-8")
            return data
        except UnicodeDecodeError:
            return data.decode("utf-8", "backslashreplace").encode("utf-8")
    return data.decode("utf-8", "backslashreplace").encode(encoding, "backslashreplace")


class _Stream(object):
    __slots__ = ("name", "fd", "log_fd", "prefix", "pending")

    def __init__(self, name, fd, log_fd, prefix):
        self.name = name
        self.fd = fd
        self.log_fd = log_fd
        self.prefix = prefix
        self.pending = b""


class Relay(object):
    """Copies the services' output to procclean's stdout, each line with its service's
    name in front, and the same bytes to each service's logfile.  It runs in a thread
    of its own, reads each pipe in large chunks and writes one batch per round (never
    a write per line), so no service waits on a full pipe while procclean is busy
    checking health or stopping.  procclean's own lines are handed to the same thread,
    in order, so they never land inside a batch and procclean never waits on its
    stdout (a paused terminal cannot hold up a Ctrl-C)."""

    def __init__(self, out_fd, prefixes, encoding="utf-8"):
        import codecs
        import threading
        self.out_fd = out_fd
        try:
            self.encoding = codecs.lookup(encoding or "utf-8").name
        except LookupError:
            self.encoding = "ascii"
        self.utf8 = self.encoding == "utf-8"
        self.prefixes = dict((name, (p[0].encode(self.encoding, "backslashreplace"),
                                     p[1].encode(self.encoding, "backslashreplace")))
                             for name, p in prefixes.items())
        self.lock = threading.Lock()
        self.streams = {}
        self.added = []
        self.queued = []        # procclean's own output: (a stream, or self: stdout; data)
        self.closing = None
        self.done = False       # the thread has ended: write here and now
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.thread = threading.Thread(target=self._run, name="procclean-relay")
        self.thread.daemon = True

    def start(self):
        self.thread.start()

    def add(self, name, fd, log_fd):
        """Relay a service's pipe from now on (the relay closes it at its end)."""
        with self.lock:
            self.added.append(_Stream(name, fd, log_fd, self.prefixes[name][0]))
        self._wake()

    def own(self, name, text):
        """One line of procclean's own about a service, marked apart (`name *`)."""
        self._put(self, self.prefixes[name][1]
                  + text.encode(self.encoding, "backslashreplace") + b"\n")

    def write_text(self, stream, text):
        """procclean's messages (a Reporter's stream), in order with the rest."""
        self._put(stream, text)

    def finish(self, timeout):
        """Relay until every pipe is closed or `timeout` passes, flush, stop."""
        with self.lock:
            self.closing = time.monotonic() + timeout
        self._wake()
        self.thread.join(timeout + 2.0)
        with self.lock:
            self.done = True        # (a thread stuck on a paused stdout is left behind)

    def _put(self, stream, data):
        with self.lock:
            if not self.done:
                self.queued.append((stream, data))
                data = None
        if data is None:
            self._wake()
        else:
            self._emit(stream, data)

    def _emit(self, stream, data):
        if stream is self:
            self._write(data)
            return
        try:
            stream.write(data)
            stream.flush()
        except (OSError, ValueError):
            pass

    def _write(self, data):
        while data and self.out_fd is not None:
            try:
                done = os.write(self.out_fd, data)
            except BlockingIOError:
                import select
                select.select([], [self.out_fd], [], 1.0)
                continue
            except InterruptedError:
                continue
            except OSError:
                self.out_fd = None      # the reader went away: the logs still get it all
                return
            data = data[done:]

    def _wake(self):
        try:
            os.write(self.wake_w, b"x")
        except OSError:
            pass

    def _run(self):
        import select
        poller = select.poll()
        poller.register(self.wake_r, select.POLLIN)
        while True:
            with self.lock:
                added, self.added = self.added, []
                queued, self.queued = self.queued, []
                closing = self.closing
            for item in queued:
                self._emit(*item)
            for stream in added:
                self.streams[stream.fd] = stream
                poller.register(stream.fd, select.POLLIN)
            if closing is not None and (not self.streams or time.monotonic() >= closing):
                break
            timeout = None if closing is None else \
                max(1, int((closing - time.monotonic()) * 1000))
            batch = []
            for fd, _ in poller.poll(timeout):
                if fd == self.wake_r:
                    try:
                        os.read(self.wake_r, 4096)
                    except OSError:
                        pass
                    continue
                stream = self.streams.get(fd)
                if stream is not None and self._pump(stream, batch):
                    poller.unregister(fd)
                    self._end(stream, batch)
            if batch:
                self._write(b"".join(batch))
        batch = []
        for stream in list(self.streams.values()):
            self._end(stream, batch)
        self._write(b"".join(batch))
        with self.lock:
            self.done = True
            queued, self.queued = self.queued, []
        for item in queued:
            self._emit(*item)

    def _pump(self, stream, batch):
        """Read what the pipe holds (up to RELAY_READ); True at its end."""
        try:
            data = os.read(stream.fd, RELAY_READ)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True
        if not data:
            return True
        if stream.log_fd is not None:
            _write_all(stream.log_fd, data)
        lines, stream.pending = relay_lines(stream.prefix, data, stream.pending, self.utf8,
                                            self.encoding)
        if lines:
            batch.append(lines)
        return False

    def _end(self, stream, batch):
        """A pipe closed: its partial last line is shown (and ended in the log)."""
        if stream.pending:
            batch.append(stream.prefix + relay_convert(stream.pending, self.utf8,
                                                       self.encoding) + b"\n")
            if stream.log_fd is not None:
                _write_all(stream.log_fd, b"\n")
            stream.pending = b""
        for fd in (stream.fd, stream.log_fd):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.streams.pop(stream.fd, None)


def _write_all(fd, data):
    try:
        while data:
            data = data[os.write(fd, data):]
    except OSError:
        pass        # a full disk must not stop the relay: the terminal still shows it


class _RelayedStream(object):
    """A Reporter's stdout or stderr during dev: written under the relay's lock."""

    def __init__(self, relay, stream):
        self.relay = relay
        self.stream = stream
        self.encoding = getattr(stream, "encoding", None)

    def isatty(self):
        return _isatty(self.stream)

    def write(self, text):
        self.relay.write_text(self.stream, text)

    def flush(self):
        pass

    def fileno(self):
        return self.stream.fileno()


def dev_env(ctx, service, colour):
    """A service's environment under dev: tagged; Python output unbuffered (it writes
    to a pipe now); FORCE_COLOR=1 when dev shows colour (it sees a pipe, not the
    terminal), unless NO_COLOR or FORCE_COLOR is set already."""
    env = launch_env(ctx, service)
    env.setdefault("PYTHONUNBUFFERED", "1")
    if colour and "NO_COLOR" not in env:
        env.setdefault("FORCE_COLOR", "1")
    return env


def service_ready(ctx, service):
    """Ready for the services after it: its port listens and its health URL answers
    (each when it has one)."""
    if service.port is None:
        return True
    if not any(l.port == service.port for l in ctx.system.listeners([service.port])):
        return False
    if health_url(service) is None:
        return True
    return check_health(ctx.system, service, ctx.health_timeout)["state"] == "healthy"


def _wait_after(ctx, service, started):
    """start: wait until the services `service` starts after are ready (those started
    in this run); False (said) when one is not within the timeout or has exited."""
    deps = [entry for entry in started if entry[0].name in service.after]
    begun = ctx.system.clock()
    for dep, child, shown in deps:
        while not service_ready(ctx, dep):
            if child.poll() is not None or ctx.system.clock() - begun >= ctx.timeout:
                ctx.out.warn("after_timeout", svc=service.name, dep=dep.name,
                             timeout=format_seconds(ctx.timeout))
                return False
            ctx.system.sleep(DEV_POLL)
    return True


def dev_precheck(ctx, services):
    """Before dev starts anything: nothing of the services runs in the background
    (or --replace stops it), and every port is free (else its holder is named)."""
    found = survey(ctx, services)
    running = [(s, found.running(s)) for s in services if found.running(s)]
    if running and not ctx.replace:
        for service, targets in running:
            ctx.out.warn("dev_running", svc=service.name,
                         pids=", ".join(str(t.pid) for t in targets))
        return EXIT_FAILED
    if running:
        if cmd_stop(ctx, [s for s, _ in running]) != EXIT_OK:
            return EXIT_FAILED
        found = survey(ctx, services, warn=False)
    ports = [s.port for s in services if s.port is not None]
    listeners = ctx.system.listeners(ports) if ports else []
    code = EXIT_OK
    for service in services:
        if service.port is None:
            continue
        for holder in port_holders(listeners, service.port, found.table)[:1]:
            code = EXIT_FAILED
            if holder.pid is None:
                ctx.out.warn("port_taken_unknown", svc=service.name, port=service.port)
                continue
            ctx.out.warn("dev_port_taken", svc=service.name, port=service.port,
                         pid=holder.pid, cmd=printable(holder.command or "?"), prog=PROG,
                         cwd=printable(ctx.system.process_cwd(holder.pid) or "?"))
    return code


def cmd_dev(ctx, services):
    """The stack in the foreground: every service started in dependency order, each
    line of its output shown with its name in front (and written to its logfile),
    everything stopped on Ctrl-C, SIGTERM or SIGHUP, or when a service exits."""
    services = start_order(services)
    for service in services:
        if not service.command.strip():
            ctx.out.warn("no_command", svc=service.name)
            return EXIT_FAILED
        cwd, argv, shown = launch_plan(service)
        if ctx.dry_run:
            ctx.out.say("would_start", svc=service.name, cmd=shown, cwd=cwd,
                        log=service.logfile)
        elif not os.path.isdir(cwd):
            ctx.out.warn("start_error", svc=service.name, error="no folder %s" % cwd)
            return EXIT_FAILED
    if ctx.dry_run:
        return EXIT_OK
    code = dev_precheck(ctx, services)
    if code != EXIT_OK:
        return code
    for service in services:
        if ctx.rotate:
            ctx.system.rotate_log(service.logfile)
    out = ctx.out
    colour = out.colour
    try:
        out_fd = out.stdout.fileno()
    except (AttributeError, ValueError, OSError):
        out_fd = None
    relay = Relay(out_fd, dev_prefixes([s.name for s in services], colour),
                  getattr(out.stdout, "encoding", None))
    ctx.out = Reporter(lang=out.lang, quiet=out.quiet,
                       stdout=out.stdout and _RelayedStream(relay, out.stdout),
                       stderr=out.stderr and _RelayedStream(relay, out.stderr))
    ctx.out.colour, ctx.out.colour_err, ctx.out.marks = colour, out.colour_err, out.marks
    try:
        return DevSession(ctx, services, relay, colour).run()
    finally:
        ctx.out = out


class _DevEntry(object):
    """One service of a dev session: its child and where it stands."""

    def __init__(self, service):
        self.service = service
        self.child = None
        self.state = "waiting"      # waiting, running, exited, backoff, done
        self.ready = False          # its port listens and its health URL answers
        self.since = None           # when it (last) started
        self.status = None          # its last exit status
        self.check_until = None     # exited: until when a stop from outside may explain it
        self.restart_at = None
        self.restarts = []
        self.delay = BACKOFF_FIRST
        self.waiting_since = None


class DevSession(object):
    """The running dev session: starts, watches, restarts and stops the services."""

    def __init__(self, ctx, services, relay, colour):
        self.ctx = ctx
        self.system = ctx.system
        self.relay = relay
        self.colour = colour
        self.entries = [_DevEntry(s) for s in services]
        self.by_name = dict((e.service.name, e) for e in self.entries)
        self.signum = None          # the first stop signal
        self.failure = None         # (entry, message key, values): why it ends with 1

    def own(self, entry, key, **values):
        self.relay.own(entry.service.name, self.ctx.out.text(key, **values))

    def run(self):
        import signal
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD)

        def on_signal(signum, frame):
            if signum == signal.SIGCHLD:
                return              # only wakes the loop (through the wakeup fd)
            if self.signum is None:
                self.signum = signum
            else:
                self.ctx.hurry = True   # a second Ctrl-C: SIGKILL what is left, now

        previous = dict((sig, signal.signal(sig, on_signal)) for sig in handled)
        previous_fd = signal.set_wakeup_fd(self.wake_w)
        self.relay.start()
        try:
            try:
                self.loop()
            except Exception:
                # A bug must not leave the services running: stop them, then report it.
                cmd_stop(self.ctx, [e.service for e in self.entries if e.child is not None])
                raise
            return self.finish()
        finally:
            signal.set_wakeup_fd(previous_fd)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for fd in (self.wake_r, self.wake_w):
                os.close(fd)

    def sleep(self, seconds):
        import select
        try:
            ready = select.select([self.wake_r], [], [], seconds)[0]
        except InterruptedError:
            return
        if ready:
            try:
                os.read(self.wake_r, 4096)
            except OSError:
                pass

    def loop(self):
        while self.signum is None and self.failure is None:
            now = self.system.clock()
            self.start_ready(now)
            if self.failure is None:
                self.check_children(now)
            if self.signum is not None or self.failure is not None:
                return
            if all(e.state == "done" for e in self.entries):
                return              # every service was stopped from another terminal
            busy = any(e.state in ("waiting", "exited", "backoff") for e in self.entries)
            self.sleep(DEV_POLL if busy else DEV_IDLE)

    def start_ready(self, now):
        """Start each service whose turn it is: the ones it starts after are ready."""
        for entry in self.entries:
            if entry.state == "backoff" and now >= entry.restart_at:
                self.spawn(entry)
            if entry.state != "waiting" or self.failure is not None:
                continue
            deps = [self.by_name[n] for n in entry.service.after if n in self.by_name]
            if entry.waiting_since is None:
                entry.waiting_since = now
                if deps:
                    self.own(entry, "dev_waiting", deps=", ".join(d.service.name for d in deps))
            late = [d for d in deps if not self.is_ready(d)]
            if not late:
                self.spawn(entry)
            elif now - entry.waiting_since >= self.ctx.timeout:
                self.failure = (entry, "after_timeout", dict(
                    svc=entry.service.name, dep=late[0].service.name,
                    timeout=format_seconds(self.ctx.timeout)))

    def is_ready(self, entry):
        if not entry.ready and entry.state == "running" \
                and service_ready(self.ctx, entry.service):
            entry.ready = True
            if entry.service.port is not None:
                self.own(entry, "dev_listening", port=entry.service.port)
        return entry.ready

    def spawn(self, entry):
        ctx, service = self.ctx, entry.service
        cwd, argv, shown = launch_plan(service)
        try:
            child, fd = self.system.spawn_piped(argv, cwd, dev_env(ctx, service, self.colour))
        except OSError as exc:
            self.failure = (entry, "start_error", dict(svc=service.name, error="%s: %s" % (
                exc.filename or argv[0], exc.strerror or exc)))
            entry.state = "done"
            return
        entry.child, entry.state, entry.since, entry.ready = child, "running", \
            self.system.clock(), False
        try:
            self.system.write_pidfile(service.pidfile, child.pid)
        except OSError as exc:
            # Untracked, `stop` could not find it: take it down again.
            self.system.send_signal(child.pid, SIGKILL)
            child.wait()
            os.close(fd)
            entry.state = "done"
            self.failure = (entry, "start_error", dict(svc=service.name,
                            error="cannot write %s: %s" % (service.pidfile, exc.strerror)))
            return
        try:
            log_fd = self.system.open_log(service.logfile)
        except OSError:
            log_fd = None
        self.system.append_log(service.logfile, "dev: started %s PID %d: %s (in %s)"
                               % (service.name, child.pid, shown, cwd), create=True)
        self.own(entry, "dev_started", pid=child.pid, cmd=shown)
        self.relay.add(service.name, fd, log_fd)

    def check_children(self, now):
        for entry in self.entries:
            if entry.state == "running":
                status = entry.child.poll()
                if status is None:
                    continue
                entry.status, entry.state = status, "exited"
                entry.check_until = now + (self.ctx.grace + KILL_WAIT + 1.0
                                           if status in STOP_STATUSES else 0.5)
            if entry.state == "exited":
                # `stop` from another terminal removes the pidfile once its targets
                # are gone: that, and not a crash, is why the service ended.
                if self.system.read_pidfile(entry.service.pidfile).pid != entry.child.pid:
                    entry.state = "done"
                    self.own(entry, "dev_outside")
                elif now >= entry.check_until:
                    self.exited(entry, now)
                if self.failure is not None:
                    return

    def exited(self, entry, now):
        """The service ended by itself: restart it (supervise = yes) or end the session."""
        service, status = entry.service, entry.status
        self.system.append_log(service.logfile, "dev: %s PID %d exited by itself (%s)"
                               % (service.name, entry.child.pid, describe_exit(status)))
        if service.supervise and status != 0:
            if now - entry.since >= STABLE_RUN:
                entry.delay = BACKOFF_FIRST
            entry.restarts = [t for t in entry.restarts if now - t < 60.0]
            if len(entry.restarts) < self.ctx.max_restarts:
                entry.restarts.append(now)
                self.own(entry, "dev_restart", code=describe_exit(status),
                         delay=format_seconds(entry.delay), n=len(entry.restarts))
                entry.state, entry.restart_at = "backoff", now + entry.delay
                entry.delay = min(entry.delay * 2, BACKOFF_MAX)
                return
            self.failure = (entry, "gave_up", dict(svc=service.name, n=len(entry.restarts),
                                                   code=describe_exit(status)))
        else:
            self.failure = (entry, "dev_exited", dict(svc=service.name,
                                                      code=describe_exit(status),
                                                      log=service.logfile))
        entry.state = "done"
        self.own(entry, "dev_exited_short", code=describe_exit(status))

    def finish(self):
        """Stop every tree of the session (as `stop` does), show why, the exit code."""
        import signal
        ctx = self.ctx
        started = [e.service for e in self.entries if e.child is not None]
        if self.signum is not None and self.failure is None:
            try:
                name = signal.Signals(self.signum).name
            except ValueError:
                name = "signal %d" % self.signum
            ctx.out.say("dev_stopping_sig", sig=name)
        elif self.failure is not None:
            ctx.out.say("dev_stopping")
        if self.signum is not None or self.failure is not None:
            cmd_stop(ctx, started)
        for entry in self.entries:
            if entry.child is not None:
                try:
                    entry.child.wait(timeout=KILL_WAIT)
                except Exception:
                    pass
        self.relay.finish(1.0)
        if self.failure is not None:
            entry, key, values = self.failure
            ctx.out.warn(key, **values)
            if key in ("dev_exited", "gave_up"):
                for line in self.system.tail(entry.service.logfile, ctx.lines):
                    ctx.out.line("    " + line, err=True)
            return EXIT_FAILED
        if self.signum is not None:
            return 128 + self.signum
        ctx.out.say("dev_outside_all")
        return EXIT_OK


def cmd_logs(ctx, services):
    """Print the last lines of each service's log; with --follow, keep printing (several
    services: merged, each line with its service's name in front, as dev shows them)."""
    merged = ctx.follow and len(services) > 1
    prefixes = dev_prefixes([s.name for s in services], ctx.out.colour) if merged else {}
    for service in services:
        prefix = prefixes.get(service.name, ("",))[0]
        if not ctx.system.exists(service.logfile):
            ctx.out.say("no_log", svc=service.name, path=service.logfile)
            continue
        if len(services) > 1 and not merged:
            ctx.out.line("==> %s <==" % service.logfile)
        for line in ctx.system.tail(service.logfile, ctx.lines):
            ctx.out.line(prefix + line)
    if not ctx.follow:
        return EXIT_OK
    followed = []
    for service in services:
        offset, identity = ctx.system.log_position(service.logfile)
        followed.append([service, offset, identity, b""])
    try:
        while True:
            ctx.system.sleep(0.25)
            for entry in followed:
                service, offset, identity, pending = entry
                data, entry[1], entry[2] = ctx.system.read_new(service.logfile, offset,
                                                               identity)
                if data:
                    lines = (pending + data).split(b"\n")
                    entry[3] = lines.pop()
                    prefix = prefixes.get(service.name, ("",))[0]
                    for line in lines:
                        ctx.out.line(prefix + printable(line))
    except KeyboardInterrupt:
        return EXIT_OK


def cmd_restart(ctx, services):
    code = cmd_stop(ctx, services)
    if code != EXIT_OK:
        return code
    return cmd_start(ctx, services)


def cmd_kill_port(ctx, ports):
    """Stop the processes LISTENING on `ports` (never their clients), whole trees."""
    if not ports:
        raise ProcCleanError("kill-port needs at least one port")
    numbers = []
    for text in ports:
        port = parse_port(text)
        if port not in numbers:
            numbers.append(port)
    system = ctx.system
    # Listeners first: a listener that started a moment ago is then in the table too;
    # a holder that started after the listing has a reused PID, and is left alone.
    listed_at = system.wall_time()
    listeners = system.listeners(numbers)
    table = system.process_table()
    protected = protected_pids(table, system.self_pid(), system.parent_pid())
    failed = False
    roots = []
    port_services = {}
    for port in numbers:
        service = Service("port %d" % port, "", "", "", port, "", ".")
        port_services[port] = service
        holders = port_holders(listeners, port, table)
        if not holders:
            ctx.out.say("port_nothing", port=port)
        for holder in holders:
            proc = table.get(holder.pid) if holder.pid is not None else None
            if proc is None or proc.start is not None and proc.start > listed_at + 0.5:
                ctx.out.warn("port_unseen", port=port)
                failed = True
            elif holder.pid in protected:
                ctx.out.warn("port_protected", port=port, pid=holder.pid,
                             cmd=printable(table[holder.pid].command))
                failed = True
            else:
                roots.append((table[holder.pid], service, "port"))
    targets = plan_targets(table, roots, protected)
    if stop_targets(ctx, targets, force=ctx.force):
        failed = True
    report_targets(ctx, targets)
    for port in numbers:
        done = [t for t in targets if t.service is port_services[port]
                and t.outcome not in ("denied", "survived")]
        if done and not ctx.dry_run:
            ctx.out.say("port_freed", port=port, n=len(done))
    return EXIT_FAILED if failed else EXIT_OK


# -- doctor: the seed's troubleshooting guide as one command ----------------------

PROG = "python3 procclean.py"
# How make runs it: as a module, so Python caches its bytecode (a script is compiled
# from source on every run, which costs more than everything procclean then does).
MAKE_PROCCLEAN = "$(PYTHON) -m procclean"


class Finding(object):
    """Something that needs action: what, the command that fixes it, and the fix
    `doctor --fix` may apply itself (("remove", path) or ("stop", service)), if safe."""

    __slots__ = ("text", "fix", "action")

    def __init__(self, text, fix, action=None):
        self.text = text
        self.fix = fix
        self.action = action


def describe_tool(name):
    """`path`, `path (BusyBox)` or `missing`, for the tools procclean falls back from."""
    path = _which(name)
    if path is None:
        return "missing"
    if os.path.basename(os.path.realpath(path)).startswith("busybox"):
        return "%s (BusyBox)" % path
    return path


def diagnose(ctx, services, problems):
    """Every finding for `services`, without changing anything."""
    out = ctx.out
    system = ctx.system
    findings = []

    def add(key, fix, action=None, **values):
        findings.append(Finding(out.text(key, **values).lstrip(), fix, action))

    for name, field, error in problems:
        add("d_config", "correct %s of [%s] in %s (or PROCCLEAN_%s_%s)"
            % (field, name, CONFIG_FILE, name.upper().replace("-", "_"), field.upper()),
            svc=name, error=error)
    table = system.process_table()
    protected = protected_pids(table, system.self_pid(), system.parent_pid())
    ports = [s.port for s in services if s.port]
    listeners = system.listeners(ports) if ports else []
    kids = children_map(table)
    for service in services:
        # The seed's own advice for a bad pidfile: `make clean`.
        clean_fix = "%s clean %s" % (PROG, service.name)
        cwd = resolve_cwd(service.cwd)
        if not os.path.isdir(cwd):
            add("d_no_folder", "create it, or set cwd of [%s] in %s" % (service.name, CONFIG_FILE),
                svc=service.name, cwd=cwd)
        elif service.command.strip():
            try:
                argv = command_argv(service.command)
            except ProcCleanError as exc:
                add("d_config", "correct command of [%s] in %s" % (service.name, CONFIG_FILE),
                    error="%s: %s" % (service.name, exc))
                argv = ["/bin/sh", "-c"]
            program = argv[0]
            if argv[:2] != ["/bin/sh", "-c"] and not _which(program) \
                    and not os.path.isfile(os.path.join(cwd, program)):
                add("d_no_program", "install %s, or set command of [%s] in %s"
                    % (program, service.name, CONFIG_FILE), svc=service.name, program=program)
        info = system.read_pidfile(service.pidfile)
        verdict, proc = pidfile_verdict(system, service, info, table, protected)
        remove = ("remove", service.pidfile)
        own = set()
        pidfile_alive = verdict == "trusted"
        # The service died (or its pidfile is garbage): what still matches is unaccounted.
        pidfile_dead = verdict in ("invalid", "dead", "reused")
        if verdict == "invalid":
            add("d_invalid", clean_fix, remove, path=info.path,
                content=printable(repr(info.raw)[1:]))
        elif verdict == "untrusted":
            add("d_untrusted", clean_fix, remove, path=info.path)
        elif verdict == "dead":
            add("d_stale", clean_fix, remove, path=info.path, pid=info.pid)
        elif verdict == "reused":
            add("d_reused", clean_fix, remove, path=info.path, pid=info.pid,
                cmd=printable(proc.command))
        elif verdict == "protected":
            add("d_protected", clean_fix, remove, path=info.path, pid=info.pid)
        elif verdict == "unknown-start":
            add("d_unknown_start", clean_fix, None, path=info.path, pid=info.pid,
                cmd=printable(proc.command))
        elif verdict == "trusted":
            own.add(proc.pid)
            own.update(descendants(kids, proc.pid))
        matched = [p for p in matches(table, service)
                   if p.pid not in protected and p.pid not in own and not p.zombie]
        matched_pids = set(p.pid for p in matched)
        # One finding per tree: a match under another match is part of that one.
        roots = [p for p in matched if p.ppid not in matched_pids]
        for proc in matched:
            own.update(descendants(kids, proc.pid))
        own.update(matched_pids)
        if pidfile_dead:
            # The service died (or its pidfile is garbage): what still matches is not
            # accounted for; under init it outlived its parent.
            for proc in roots:
                why = out.text("d_orphan_match")
                if proc.ppid in (0, 1):
                    add("d_orphan", "%s stop %s" % (PROG, service.name),
                        ("stop", service, [proc]), svc=service.name, pid=proc.pid,
                        cmd=printable(proc.command), why=why)
                else:
                    add("d_leftover", "%s stop %s" % (PROG, service.name),
                        ("stop", service, [proc]), svc=service.name, n=1,
                        pids=proc.pid)
        elif pidfile_alive and roots:
            # The service runs, and so do matches outside its tree: stop only those.
            pids = [p.pid for p in roots]
            add("d_leftover", "kill %s" % " ".join(map(str, pids)),
                ("stop", service, roots), svc=service.name, n=len(pids),
                pids=", ".join(map(str, pids)))
        if service.port is None:
            continue
        for holder in port_holders(listeners, service.port, table):
            if holder.pid in own or holder.pid is None:
                continue
            proc = table.get(holder.pid)
            cmd = printable(proc.command if proc else "?")
            fix = out.text("d_stranger_fix", pid=holder.pid, prog=PROG, port=service.port)
            if pidfile_dead and proc is not None and proc.ppid in (0, 1):
                add("d_orphan", fix, None, svc=service.name, pid=holder.pid, cmd=cmd,
                    why=out.text("d_orphan_port", port=service.port))
            else:
                add("d_stranger", fix, None, svc=service.name, port=service.port,
                    pid=holder.pid, cmd=cmd)
    return findings, table, protected


def cmd_doctor(ctx, services, problems, fix=False):
    """Check pidfiles, leftovers, orphans, ports, tools and configuration; with `fix`,
    apply the safe fixes (remove bad pidfiles, stop our own leftovers) and check again."""
    import platform
    out = ctx.out
    findings, table, protected = diagnose(ctx, services, problems)
    out.say("doctor_env", version=__version__, python=platform.python_version(),
            platform="%s %s" % (platform.system(), platform.release()))
    out.say("doctor_tools",
            ps="%s (ps: %s)" % (ctx.system.ps_note, describe_tool("ps")),
            ports="%s (lsof: %s; ss: %s)" % (ctx.system.ports_note or "not needed",
                                              describe_tool("lsof"), describe_tool("ss")))
    if fix and findings:
        to_remove = []
        roots = []
        for finding in findings:
            if finding.action is None:
                continue
            if finding.action[0] == "remove" and finding.action[1] not in to_remove:
                to_remove.append(finding.action[1])
            elif finding.action[0] == "stop":
                _, service, procs = finding.action
                roots.extend((proc, service, "pattern") for proc in procs)
        remove_files(ctx, to_remove)
        if roots:
            # The table the findings came from: its descendants, its start times.
            targets = plan_targets(table, roots, protected)
            stop_targets(ctx, targets)
            report_targets(ctx, targets)
        if not ctx.dry_run:
            fixed = [f for f in findings if f.action is not None]
            for finding in fixed:
                out.say("doctor_fixed", text=finding.text)
            findings = diagnose(ctx, services, problems)[0]
    for finding in findings:
        # What needs action is the result: shown even with --quiet.
        out.data(out.text("doctor_finding", text=finding.text, fix=finding.fix))
    if findings:
        out.data(out.text("doctor_count", n=len(findings)))
        return EXIT_FAILED
    out.say("doctor_ok")
    return EXIT_OK


# -- init: set a repo up -------------------------------------------------------------

ASGI_RE = r"(?m)^(\w+)\s*=\s*(?:fastapi\.)?(FastAPI|Starlette|Quart|Litestar)\s*\("


def _read_text(path, limit=262144):
    try:
        with open(path, "rb") as f:
            return f.read(limit).decode("utf-8", "replace")
    except OSError:
        return None


def detect_project(folder="."):
    """What `init` finds: a list of (service name, fields, description)."""
    import json
    found = []
    for sub in ("backend", "api", "server", "."):
        base = os.path.join(folder, sub)
        for module in ("main", "app", "asgi", "server"):
            text = _read_text(os.path.join(base, module + ".py"))
            if text is None:
                continue
            asgi = re.search(ASGI_RE, text)
            port_match = re.search(r"port\s*=\s*(\d{2,5})", text)
            port = port_match.group(1) if port_match else "8000"
            deps = " ".join(t for t in (_read_text(os.path.join(d, n)) or "" for d in (base, folder)
                                        for n in ("pyproject.toml", "requirements.txt")))
            framework = asgi.group(2) if asgi else (
                "FastAPI" if "fastapi" in deps.lower() else "Python")
            if "__main__" in text and module == "main":
                command, pattern = "{python} main.py", BUILTIN_SERVICES[0]["pattern"]
                how = "python main.py"
            elif asgi:
                command = "{python} -m uvicorn %s:%s --host 127.0.0.1 --port %s" % (
                    module, asgi.group(1), port)
                pattern = BUILTIN_SERVICES[0]["pattern"] if module == "main" \
                    else r"uvicorn.*%s:%s" % (module, asgi.group(1))
                how = "uvicorn %s:%s" % (module, asgi.group(1))
            else:
                continue
            found.append(("backend", {
                "pattern": pattern, "pidfile": "backend.pid", "logfile": "backend.log",
                "port": port, "command": command, "cwd": sub, "health": "auto"},
                "%s/%s.py (%s app, run as %s)" % (sub, module, framework, how)))
            break
        if found:
            break
    for sub in ("frontend", "web", "client", "."):
        text = _read_text(os.path.join(folder, sub, "package.json"))
        if text is None:
            continue
        try:
            scripts = json.loads(text).get("scripts") or {}
        except (ValueError, AttributeError):
            continue
        dev = scripts.get("dev")
        if not dev:
            continue
        port = None
        for name in ("vite.config.js", "vite.config.ts", "vite.config.mjs", "vite.config.mts"):
            config = _read_text(os.path.join(folder, sub, name))
            # server.port, not preview.port: the dev server is what `npm run dev` runs.
            match = re.search(r"\bserver\s*:\s*\{[^{}]*?\bport\s*:\s*(\d{2,5})", config or "")
            if match:
                port = match.group(1)
                break
        match = re.search(r"--port[= ](\d{2,5})", dev)
        if match:
            port = match.group(1)
        if port is None:
            port = "5173" if "vite" in dev else "3000"
        found.append(("frontend", {
            "pattern": BUILTIN_SERVICES[1]["pattern"], "pidfile": "frontend.pid",
            "logfile": "frontend.log", "port": port, "command": "npm run dev", "cwd": sub,
            "health": "/"}, "%s/package.json (dev script: %s, port %s)" % (sub, dev, port)))
        break
    return found


def render_config(found):
    lines = ["# procclean configuration, written by `%s init`." % PROG,
             "# Every field can also be set with PROCCLEAN_<SERVICE>_<FIELD> (for make) or",
             "# --set SERVICE.FIELD=VALUE. Paths are relative to the folder procclean runs in.",
             "", "[procclean]", "# seconds stop waits after SIGTERM before SIGKILL",
             "grace = 2", "services = %s" % " ".join(name for name, _, _ in found)]
    comments = {
        "pattern": "searched in each `ps -ef` line, as the Makefile's grep -E did",
        "command": "{python} is the interpreter running procclean",
        "cwd": "folder the command runs in",
        "health": "auto: /health, else / ; a path, a URL, or off",
    }
    for name, fields, what in found:
        lines += ["", "# found: %s" % what, "[%s]" % name]
        for field in SERVICE_FIELDS:
            if field in comments:
                lines.append("# " + comments[field])
            lines.append("%s = %s" % (field, fields[field]))
    return "\n".join(lines) + "\n"


def makefile_rules(names):
    """(target, rule text) for the seed's targets of the services found."""
    targets = ["start", "stop", "restart", "status", "show-processes", "clean",
               "force-clean", "doctor"]
    for name in names:
        targets += ["start-" + name, "stop-" + name, "restart-" + name,
                    "force-clean-" + name]
    return [(t, "%s:\n\t@$(PROCCLEAN) $@\n" % t) for t in targets]


def existing_targets(makefile_text):
    """Target names a Makefile defines, with $(VAR) and ${VAR} in rule heads expanded."""
    text = makefile_text.replace("\\\n", " ")
    variables = {}
    for match in re.finditer(r"^([A-Za-z_][A-Za-z0-9_]*)\s*(?:\?|:|::|\+)?=(.*)$", text, re.M):
        variables[match.group(1)] = match.group(2).strip()

    def expand(words, depth=0):
        out = []
        for word in words:
            ref = re.match(r"^\$[({]([A-Za-z_][A-Za-z0-9_]*)[)}]$", word)
            if ref and depth < 5:
                out.extend(expand(variables.get(ref.group(1), "").split(), depth + 1))
            else:
                out.append(word)
        return out

    names = set()
    for match in re.finditer(r"^([^\s:#=][^:=\n]*?)\s*::?(?!=)", text, re.M):
        names.update(expand(match.group(1).split()))
    return names


def cmd_init(ctx, makefile=False, folder="."):
    """Look at the repo, write a commented procclean.ini, print (or add) make targets."""
    out = ctx.out
    found = detect_project(folder)
    if not found:
        out.say("init_nothing")
        return EXIT_OK
    for name, fields, what in found:
        out.say("init_found", svc=name, what=what)
    config_text = render_config(found)
    path = os.path.join(folder, CONFIG_FILE)
    code = EXIT_OK
    if ctx.dry_run:
        out.say("init_would_write", path=CONFIG_FILE)
        out.line(config_text)
    elif os.path.exists(path) and not ctx.force:
        out.warn("init_exists", path=CONFIG_FILE)
        code = EXIT_FAILED
    else:
        try:
            with open(path, "w") as f:
                f.write(config_text)
        except OSError as exc:
            raise ProcCleanError("cannot write %s: %s" % (path, exc.strerror), EXIT_FAILED)
        out.say("init_wrote", path=CONFIG_FILE)
    rules = makefile_rules([name for name, _, _ in found])
    header = "PYTHON ?= python3\nPROCCLEAN ?= %s\n" % MAKE_PROCCLEAN
    if not makefile:
        out.say("init_paste")
        out.line("\n" + header + ".PHONY: %s\n" % " ".join(t for t, _ in rules))
        out.line("\n".join(rule for _, rule in rules))
        return code
    makefile_path = os.path.join(folder, "Makefile")
    text = _read_text(makefile_path) or ""
    have = existing_targets(text)
    new = [(t, rule) for t, rule in rules if t not in have]
    kept = [t for t, _ in rules if t in have]
    if kept:
        out.say("init_kept", targets=" ".join(kept))
    if not new:
        return code
    block = ["", "# procclean targets (added by `%s init --makefile`)" % PROG]
    if not re.search(r"^PYTHON\s*(?:\?|:|::|\+)?=", text, re.M):
        block.append("PYTHON ?= python3")
    if not re.search(r"^PROCCLEAN\s*(?:\?|:|::|\+)?=", text, re.M):
        block.append("PROCCLEAN ?= " + MAKE_PROCCLEAN)
    block.append(".PHONY: %s" % " ".join(t for t, _ in new))
    block.append("\n".join(rule for _, rule in new))
    addition = "\n".join(block)
    if ctx.dry_run:
        out.say("init_would_append")
        out.line(addition)
        return code
    try:
        with open(makefile_path, "a") as f:
            if text and not text.endswith("\n"):
                f.write("\n")
            f.write(addition)
    except OSError as exc:
        raise ProcCleanError("cannot write %s: %s" % (makefile_path, exc.strerror), EXIT_FAILED)
    out.say("init_appended", targets=" ".join(t for t, _ in new))
    return code



# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

SERVICE_COMMANDS = ("stop", "force-clean", "start", "restart", "supervise", "logs")
COMMANDS = ("stop", "force-clean", "start", "restart", "show-processes", "status", "clean",
            "kill-port", "supervise", "logs", "doctor", "init", "dev")

EXAMPLES = """\
commands:
  stop [SERVICE...]          SIGTERM, wait up to --grace, then SIGKILL (whole trees)
  force-clean [SERVICE...]   SIGKILL at once; remove pidfile and logfile
  start [SERVICE...]         start in the background (--wait: until the port listens)
  restart [SERVICE...]       stop, then start
  status [SERVICE...]        running or not, PIDs, port, health, uptime, CPU, memory
                             (--check, --json, --watch [SECONDS])
  show-processes [SERVICE...]  every matching process (--json)
  clean                      remove stale pidfiles and the logfiles
  kill-port PORT...          stop what LISTENS on the ports, never their clients
  supervise SERVICE          run it in the foreground, restart it when it crashes
                             (start --supervise: the same in the background)
  logs [SERVICE...] [-f] [-n N]  the last lines of the logs; -f follows them
  dev [SERVICE...]           the stack in the foreground, every line prefixed with its
                             service; Ctrl-C stops it all (--replace: stop what runs
                             in the background first)
  doctor [SERVICE...]        find stale pidfiles, leftovers, busy ports, config errors;
                             --fix applies the safe fixes
  init                       write procclean.ini for this repo and print make targets
                             (--makefile: add them; --force: overwrite procclean.ini)
  stop-backend, force-clean-frontend, start-backend, ...: the Makefile's names

examples:
  python3 procclean.py stop                    # stop backend and frontend
  python3 procclean.py force-clean-backend
  python3 procclean.py --dry-run stop backend  # show what would be signalled
  python3 procclean.py status --json
  python3 procclean.py kill-port 8000 3000
  PROCCLEAN_BACKEND_PORT=8001 python3 procclean.py start backend --wait
  python3 procclean.py start backend --supervise --max-restarts 3
  python3 procclean.py status --watch 1
  python3 procclean.py logs backend -f
  python3 procclean.py dev                     # make dev: Ctrl-C leaves nothing behind

configuration (later wins): built-ins, procclean.ini ([backend] port = 8001;
[worker] pattern = celery.*worker), PROCCLEAN_<SERVICE>_<FIELD> variables,
--set SERVICE.FIELD=VALUE.  Fields: pattern pidfile logfile port command cwd health
after (services it starts after) supervise (dev: restart it when it exits: yes/no).

exit codes: 0 done, 1 something could not be stopped or started, 2 usage or
config error, 3 status --check: a service is not running, 130 interrupted
(dev: 130, 143, 129 when stopped by SIGINT, SIGTERM, SIGHUP).
"""


class _ParserExit(Exception):
    """--help: printed, then `main` returns `status`."""

    def __init__(self, status, message):
        Exception.__init__(self, message)
        self.status = status


class Options(object):
    """Parsed options: every option's value (None, False or [] when not given), the
    command and the names after it."""

    def __init__(self, specs):
        for spec in specs:
            setattr(self, spec.dest, [] if spec.kind == "append" else
                    False if spec.kind == "flag" else None)
        self.command = None
        self.names = []


class OptionSpec(object):
    __slots__ = ("flags", "dest", "kind", "metavar", "help", "choices", "const")

    def __init__(self, flags, kind, metavar, help, choices=None, const=None):
        self.flags = flags
        self.dest = flags[-1].lstrip("-").replace("-", "_")
        self.kind = kind            # flag, value, optional (value may be left out), append
        self.metavar = metavar
        self.help = help
        self.choices = choices
        self.const = const


class Parser(object):
    """A small argparse: options before or after the command, `--opt VALUE` or
    `--opt=VALUE`, `--` ends them.  (argparse itself, with gettext and locale, costs
    more start-up time than a whole `status`.)"""

    def __init__(self, prog, usage, description, epilog):
        self.prog = prog
        self.usage = usage
        self.description = description
        self.epilog = epilog
        self.specs = []
        self.by_flag = {}

    def add(self, *flags, **kw):
        spec = OptionSpec(flags, kw.get("kind", "flag"), kw.get("metavar"), kw.get("help", ""),
                          kw.get("choices"), kw.get("const"))
        self.specs.append(spec)
        for flag in flags:
            self.by_flag[flag] = spec

    def lookup(self, flag):
        """The option a flag names: exactly, or by a unique prefix (`--dry`)."""
        spec = self.by_flag.get(flag)
        if spec is not None or not flag.startswith("--") or len(flag) < 3:
            return spec
        found = set(s for f, s in self.by_flag.items() if f.startswith(flag))
        if len(found) > 1:
            raise ProcCleanError("ambiguous option %s (%s)" % (flag, ", ".join(
                sorted(s.flags[-1] for s in found))))
        return found.pop() if found else None

    def parse_known_args(self, argv):
        """(Options, words not understood: unknown options and extra names)."""
        options = Options(self.specs)
        extra = []
        positional = []
        words = list(argv)
        i = 0
        while i < len(words):
            word = words[i]
            i += 1
            if word == "--":
                positional.extend(words[i:])
                break
            if not _looks_like_option(word):
                positional.append(word)
                continue
            if not word.startswith("--") and len(word) > 2:
                # Short options run together: -qf, -n5, -n=5.
                spec = self.by_flag.get(word[:2])
                if spec is not None and spec.kind != "flag":
                    words[i:i] = [word[2:].lstrip("=")]
                    word = word[:2]
                elif all(self.by_flag.get("-" + c) is not None
                         and self.by_flag["-" + c].kind == "flag" for c in word[1:]):
                    words[i:i] = ["-" + c for c in word[2:]]
                    word = word[:2]
            flag, eq, value = word.partition("=") if word.startswith("--") else (word, "", "")
            if flag in ("-h", "--help"):
                raise _ParserExit(0, self.format_help())
            spec = self.lookup(flag)
            if spec is None:
                extra.append(word)
                continue
            if spec.kind == "flag":
                if eq:
                    raise ProcCleanError("%s takes no value" % flag)
                setattr(options, spec.dest, True)
                continue
            if not eq:
                if spec.kind == "optional":
                    # Its value may be left out: the next word is its value only if it
                    # is a number (`--watch status` watches; `--watch 1 status` too).
                    if i < len(words) and words[i].replace(".", "", 1).isdigit():
                        value = words[i]
                        i += 1
                    else:
                        value = spec.const
                elif i < len(words) and not _looks_like_option(words[i]):
                    value = words[i]
                    i += 1
                else:
                    raise ProcCleanError("%s needs a value (%s)" % (flag, spec.metavar))
            if spec.choices and value not in spec.choices:
                raise ProcCleanError("%s: %r is not one of %s"
                                     % (flag, value, ", ".join(spec.choices)))
            if spec.kind == "append":
                getattr(options, spec.dest).append(value)
            else:
                setattr(options, spec.dest, value)
        if positional:
            options.command = positional[0]
            options.names = positional[1:]
        return options, extra

    def format_usage(self):
        return "usage: %s %s\n" % (self.prog, self.usage)

    def print_usage(self, stream):
        stream.write(self.format_usage())

    def format_help(self):
        lines = [self.format_usage(), self.description, "", "options:"]
        rows = [("-h, --help", "show this help and exit")]
        for spec in self.specs:
            name = ", ".join(spec.flags)
            if spec.kind == "optional":
                name += " [%s]" % spec.metavar
            elif spec.kind != "flag":
                name += " " + spec.metavar
            rows.append((name, spec.help))
        width = max(len(name) for name, _ in rows) + 2
        lines.extend("  %s%s" % (name.ljust(width), text) for name, text in rows)
        return "\n".join(lines) + "\n\n" + self.epilog


def _looks_like_option(word):
    # "-1" is a (bad) number for --grace or kill-port to reject, not an option.
    return word.startswith("-") and word != "-" and not word[1:].replace(".", "").isdigit()


def build_parser():
    """The command-line parser: options are accepted before or after the command."""
    parser = Parser(
        "procclean.py", "[options] COMMAND [SERVICE|PORT ...]",
        "Stop, force-clean, start and inspect a local dev stack (backend,\n"
        "frontend, ...) safely: whole process trees, never the wrong process.",
        EXAMPLES)
    add = parser.add
    add("--dry-run", help="print what would be signalled, started and removed; change nothing")
    add("--grace", kind="value", metavar="SECONDS",
        help="how long stop waits after SIGTERM before SIGKILL (default 2)")
    add("--json", help="machine-readable output (status, show-processes)")
    add("--lang", kind="value", metavar="{en,zh}", choices=("en", "zh"),
        help="language of messages")
    add("-q", "--quiet", help="print only warnings and errors")
    add("--force", help="kill-port: SIGKILL at once; init: overwrite procclean.ini")
    add("--fix", help="doctor: apply the safe fixes")
    add("--makefile", help="init: add the targets to ./Makefile")
    add("--wait", help="start: wait until the service's port listens (and answers)")
    add("--timeout", kind="value", metavar="SECONDS",
        help="start --wait, and `after`: how long to wait (default 30)")
    add("--check", help="status: exit 3 when a service is not running or not healthy")
    add("--watch", kind="optional", metavar="SECONDS", const=str(WATCH_INTERVAL),
        help="status: a live view, redrawn every SECONDS (default 2)")
    add("--count", kind="value", metavar="N", help="status --watch: stop after N views")
    add("--health-timeout", kind="value", metavar="SECONDS",
        help="how long a health URL may take to answer (default 2)")
    add("--supervise", help="start: keep the service running, restarting it when it crashes")
    add("--replace", help="dev: stop the services running in the background first")
    add("--max-restarts", kind="value", metavar="N",
        help="supervise: restarts allowed within a minute (default 5)")
    add("-f", "--follow", help="logs: keep printing what is appended")
    add("-n", "--lines", kind="value", metavar="N", help="logs: how many lines (default 20)")
    add("--config", kind="value", metavar="FILE",
        help="config file (default: ./procclean.ini if present)")
    add("--set", kind="append", metavar="SERVICE.FIELD=VALUE",
        help="change one setting of a service, e.g. backend.port=8001")
    add("--version", help="print the version and exit")
    return parser


def version_text():
    """The version and a short hash of this file's bytes (tells an edited copy apart)."""
    import hashlib
    try:
        with open(os.path.abspath(__file__), "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:12]
    except (OSError, NameError):
        digest = "unknown"
    return "procclean %s (sha256 %s)" % (__version__, digest)


def split_command(command):
    """`stop-backend` -> ("stop", ["backend"]); `stop` -> ("stop", [])."""
    if command in COMMANDS:
        return command, []
    for base in SERVICE_COMMANDS:
        if command.startswith(base + "-"):
            return base, [command[len(base) + 1:]]
    raise ProcCleanError("unknown command %r (commands: %s; or e.g. stop-backend)"
                         % (command, ", ".join(COMMANDS)))


def run(args, names, system=None, out=None, environ=None):
    """Carry out a parsed command line; returns the exit code."""
    environ = os.environ if environ is None else environ
    command, implied = split_command(args.command)
    problems = [] if command == "doctor" else None
    # init writes the config: one that no longer loads must not stop it.
    config = load_config(args.config, args.set, environ, problems=problems,
                         read_file=command != "init")
    lang = detect_language(args.lang or environ.get("PROCCLEAN_LANG") or config.lang, environ)
    if out is None:
        out = Reporter(lang=lang, quiet=args.quiet, environ=environ)
    grace = parse_grace(args.grace) if args.grace is not None else (
        config.grace if config.grace is not None else DEFAULT_GRACE)
    timeout = parse_grace(args.timeout) if args.timeout is not None else START_TIMEOUT
    max_restarts = parse_count(args.max_restarts, "--max-restarts") \
        if args.max_restarts is not None else (
            config.max_restarts if config.max_restarts is not None else MAX_RESTARTS)
    passthrough = ["--grace", repr(grace), "--max-restarts", str(max_restarts)]
    if args.config:
        passthrough += ["--config", os.path.abspath(args.config)]
    for setting in args.set:
        passthrough += ["--set", setting]
    if system is None:
        sources = (environ.get("PROCCLEAN_PS") or "auto", environ.get("PROCCLEAN_PORTS") or "auto")
        if sources[0] not in PS_SOURCES:
            raise ProcCleanError("PROCCLEAN_PS=%s: expected one of %s"
                                 % (sources[0], ", ".join(PS_SOURCES)))
        if sources[1] not in PORT_SOURCES:
            raise ProcCleanError("PROCCLEAN_PORTS=%s: expected one of %s"
                                 % (sources[1], ", ".join(PORT_SOURCES)))
        system = System(*sources)
    watch = None
    if args.watch is not None:
        watch = parse_grace(args.watch)
        if watch <= 0:
            raise ProcCleanError("--watch takes a number of seconds above 0")
    ctx = Context(system, config, out, grace=grace, dry_run=args.dry_run, json=args.json,
                  force=args.force, wait=args.wait, timeout=timeout, check=args.check,
                  watch=watch,
                  count=parse_count(args.count, "--count") if args.count is not None else None,
                  health_timeout=parse_grace(args.health_timeout)
                  if args.health_timeout is not None else HEALTH_TIMEOUT,
                  supervise=args.supervise, max_restarts=max_restarts, follow=args.follow,
                  lines=parse_count(args.lines, "--lines") if args.lines is not None
                  else LOG_TAIL_LINES,
                  rotate=environ.get("PROCCLEAN_NO_ROTATE") != "1", passthrough=passthrough,
                  replace=args.replace)
    if command == "kill-port":
        return cmd_kill_port(ctx, implied + names)
    if command == "init":
        if names:
            raise ProcCleanError("init takes no service names")
        return cmd_init(ctx, makefile=args.makefile)
    services = config.select(implied + names)
    if command == "stop":
        return cmd_stop(ctx, services)
    if command == "force-clean":
        return cmd_stop(ctx, services, force=True)
    if command == "show-processes":
        return cmd_show_processes(ctx, services)
    if command == "status":
        return cmd_status(ctx, services)
    if command == "clean":
        return cmd_clean(ctx, services)
    if command == "start":
        return cmd_start(ctx, services)
    if command == "supervise":
        return cmd_supervise(ctx, services)
    if command == "logs":
        return cmd_logs(ctx, services)
    if command == "dev":
        return cmd_dev(ctx, services)
    if command == "doctor":
        return cmd_doctor(ctx, services, problems, fix=args.fix)
    return cmd_restart(ctx, services)


def main(argv=None):
    """Run procclean with `argv` (default: the command line); returns the exit code."""
    if argv is None:
        argv = sys.argv[1:]
    lang = "en"
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        for word in extra:
            raise ProcCleanError("unrecognized option %r" % word)
        names = list(args.names)
        if args.version:
            Reporter().data(version_text())
            return EXIT_OK
        if not args.command:
            parser.print_usage(sys.stderr)
            raise ProcCleanError("no command given (try --help)")
        lang = detect_language(args.lang)
        return run(args, names)
    except _ParserExit as exc:
        Reporter().data(exc.args[0].rstrip("\n"))
        return exc.status
    except ProcCleanError as exc:
        _error_line(str(exc))
        return exc.code
    except KeyboardInterrupt:
        _error_line(MESSAGES[lang]["interrupted"])
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence(sys.stdout)
        return EXIT_OK
    except Exception as exc:     # a bug: one line, not a traceback, unless asked for
        if os.environ.get("PROCCLEAN_DEBUG"):
            raise
        _error_line("internal error: %s: %s (PROCCLEAN_DEBUG=1 shows where; please report it)"
                    % (type(exc).__name__, exc))
        return EXIT_FAILED


def _error_line(message):
    if sys.stderr is None:
        return
    try:
        sys.stderr.write("procclean: %s\n" % printable(message).encode(
            getattr(sys.stderr, "encoding", None) or "utf-8", "backslashreplace").decode(
            getattr(sys.stderr, "encoding", None) or "utf-8", "replace"))
        sys.stderr.flush()
    except (OSError, ValueError, LookupError):
        pass


if __name__ == "__main__":
    raise SystemExit(main())
