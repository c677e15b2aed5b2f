#!/usr/bin/env python3
"""procclean: stop, force-clean, start and inspect a local dev stack, safely.

It does a Makefile's targets (`ps -ef | grep -E PATTERN | grep -v grep | awk '{print $2}'
| xargs kill`) with the same patterns, but never signals the wrong process, takes whole
process trees, stops everything at once, and runs on any Python from 3.6 on, on Linux
(with or without procps, BusyBox), macOS and the BSDs.  SPEC.md is the contract; `python3
procclean.py --help` lists every command and option.  Called from make:

    PYTHON ?= python3
    stop-backend stop-frontend stop force-clean status show-processes clean start:
    	@$(PYTHON) -S -m procclean $@

(`-m` reuses the bytecode in __pycache__ instead of compiling this file on every call;
`-S` skips site-packages, which this standard-library-only file never needs.  Vendored
as tools/procclean.py: `-m tools.procclean`; `init --makefile` writes the line.)

Where it came from: the seed Makefile's recipes (stop-backend, force-clean, ...), target
for target.  Copy this file into the repo.  Contents, each under a banner below: the
machinery every command shares, then one block per command in the order a user meets them.

   1. Constants           8. Output (English, Chinese)   15. Start, restart, supervise
   2. Errors              9. Configuration               16. dev
   3. Data types         10. Looking at the project      17. logs and kill-port
   4. Matching           11. The stop pipeline           18. doctor
   5. Pure parsing       12. stop, force-clean, clean    19. init: what the repo says
   6. Pure planning      13. status, show-processes      20. init: the Makefile
   7. System adapter     14. Launching                   21. Command line
"""


def detect_language(option, environ):
    """en or zh: --lang, then PROCCLEAN_LANG, then the locale.  (First in the file: the
    line of a Ctrl-C while the rest loads follows the language too.)"""
    names = ("PROCCLEAN_LANG", "LC_ALL", "LC_MESSAGES", "LANG")
    for value in [option] + [environ.get(name) for name in names]:
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


if __name__ == "__main__":
    # Ctrl-C before main() can catch it ends with one line and by SIGINT itself (a shell
    # sees 130), not a traceback.  (_signal and os are built in and loaded already.)
    import _signal
    import sys

    def _early_interrupt(signum, frame):
        import os
        zh = detect_language(None, os.environ) == "zh"
        try:
            sys.stderr.write("procclean: %s\n" % ("已中断" if zh else "interrupted"))
            sys.stderr.flush()
        except Exception:
            pass
        _signal.signal(signum, _signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        raise SystemExit(130)

    if _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
        _signal.signal(_signal.SIGINT, _early_interrupt)

__version__ = "1.0.0"

import errno
import os
import sys
import time


class _ReOnFirstUse(object):
    """`re`, imported on first use of a name (3 ms that stop and status seldom need);
    search() on text lacking what every match needs (_needed_text) is None at once."""

    def __init__(self, name):
        self.name = name

    def __getattr__(self, attr):
        module = __import__(self.name)
        globals()[self.name] = module
        return getattr(module, attr)

    def search(self, pattern, string, flags=0):
        if isinstance(pattern, str) and isinstance(string, str) and not flags:
            needed = _NEEDED.get(pattern, False)
            if needed is False:
                needed = _NEEDED[pattern] = _needed_text(pattern)
            if needed is not None and not any(
                    all(text in string for text in texts) for texts in needed):
                return None
        return self.__getattr__("search")(pattern, string, flags)


_NEEDED = {}
re = _ReOnFirstUse("re")


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
SERVICE_FIELDS = ("pattern", "pidfile", "logfile", "port", "command", "cwd", "health", "scope",
                  "supervise", "wait", "unhealthy_after")
# Settings of [procclean] (and PROCCLEAN_<NAME> variables).
GENERAL_SETTINGS = ("grace", "lang", "services", "max_restarts", "root", "scope", "editors",
                    "port_offset")
SCOPES = ("project", "machine")
YES_NO = {"": False, "yes": True, "true": True, "on": True, "1": True,
          "no": False, "false": False, "off": False, "0": False}
FIELD_DEFAULTS = {"scope": "project"}
# `after = backend`: the services it starts after (dev, start).
ORDER_FIELDS = ("after",)
ALL_FIELDS = SERVICE_FIELDS + ORDER_FIELDS
CONFIG_FILE = "procclean.ini"
DEFAULT_GRACE = 2.0
KILL_WAIT = 1.0          # how long to wait for SIGKILLed processes to vanish
START_CHECK = 0.5        # how long a fresh service must survive to count as started
START_WORKER = 2.0       # ...one without a port (nothing tells it is up), at least
START_SETTLE = 10.0      # ...and, at most, to listen (or settle) while it computes,
START_IDLE = 0.5         # ...unless its tree used no CPU this long (see StartWatch)
START_NOTICE = 2.0       # a start that waits this long says what for
START_TIMEOUT = 30.0     # start --wait: how long to wait for the port
LOG_TAIL_LINES = 20
# logs --since/--grep read at most this much of the end of each log
LOG_SCAN_BYTES = 16 << 20
HEALTH_TIMEOUT = 2.0     # seconds a health URL may take to answer
MAX_RESTARTS = 5         # supervise: restarts allowed within a minute
BACKOFF_FIRST = 1.0      # supervise: first delay before a restart, doubling...
BACKOFF_MAX = 30.0       # ...up to this
STABLE_RUN = 30.0        # a service up this long has its backoff reset
UNHEALTHY_EXIT = "unhealthy"    # supervise: the child was stopped for being unhealthy
UNHEALTHY_AFTER = 10.0   # supervise: restart a once-healthy service unhealthy this long
SUPERVISE_POLL = 0.5     # supervise: how often it looks at its child
SUPERVISE_PROBE = 5.0    # supervise: how often it asks the health URL (one log line each)
WATCH_PROBE = 10.0       # status --watch: how often it asks the health URL
FAILED_CONFIRM = 1.0     # start --wait: a failure sign that lasts this long is the outcome
# What an app writes to its log when its start-up failed (uvicorn; any Python traceback).
STARTUP_FAILED = (b"Application startup failed", b"Error loading ASGI app",
                  b"Traceback (most recent call last)")
WATCH_INTERVAL = 2.0
LOCK_WAIT = 5.0          # how long a second start/stop of a service waits for the first
LOCK_ANNOUNCE = 0.5      # ...and after how long of it it says whom it waits for

# The same on every Unix; importing `signal` costs more than a whole stop of a small stack.
SIGTERM = 15
SIGKILL = 9

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3
EXIT_INTERRUPTED = 130
# SIGHUP, SIGINT, SIGTERM: procclean cleans up, then ends by the same signal (exit_as).
INTERRUPT_SIGNALS = (1, 2, 15)

# What became of a target; each is also the message key of its report line.
STOPPED, KILLED, GONE, DENIED, SURVIVED = "stopped", "killed", "gone", "denied", "survived"
SIGNALLED = "signalled"     # sent SIGTERM, then stop was interrupted: it may still run
FAILED_OUTCOMES = (DENIED, SURVIVED, SIGNALLED)
LOGGED_OUTCOMES = {STOPPED: "stopped by SIGTERM", KILLED: "killed by SIGKILL",
                   GONE: "had already exited", DENIED: "not signalled: permission denied",
                   SURVIVED: "still running after SIGKILL",
                   SIGNALLED: "sent SIGTERM; stop was interrupted before it ended"}
OUTSIDE_SHOWN = 3        # matches left alone named one by one (the rest are counted)
COMMAND_SHOWN = 120      # characters of a command line in a one-line mention
COMMAND_MENTIONED = 60   # ...in the line that mentions the matches left alone
MAX_LOOKS = 5            # how often stop looks again for what appeared meanwhile
FREEZE_WAIT = 0.5        # for SIGSTOPs to act (in uninterruptible sleep, they wait)

# The tag every process procclean launches carries, inherited by all its descendants
# (through setsid, double forks and renames): the project's folder and the service.
TAG_PROJECT = "PROCCLEAN_PROJECT"
TAG_SERVICE = "PROCCLEAN_SERVICE"
_TAG_BYTES = TAG_PROJECT.encode("ascii")    # searched for in every environment read
# Beside each pidfile procclean writes, the start of the process it names (JSON): a
# file's mtime is coarse (1 s on some ext4 images, 2 s on FAT) and can read earlier.  The
# pidfile stays one decimal number (`kill $(cat backend.pid)` keeps working).
START_SUFFIX = ".start"

# Editors: the user's windows (unsaved work).  One a service opens (Vite's and Next's
# "open in editor" run `code`) carries its tag, and so do the terminals in it: only a
# pidfile or state takes one (is_window).  (Not tmux: overmind runs a Procfile in one.)
EDITORS = frozenset((
    "vi", "vim", "nvim", "gvim", "vimdiff", "view", "rview", "nano", "pico", "emacs",
    "emacsclient", "micro", "hx", "helix", "kak", "joe", "jed", "ed", "ex", "mcedit", "ne",
    "code", "code-insiders", "codium", "cursor", "subl", "sublime_text", "gedit", "kate",
    "zed", "windsurf", "idea", "pycharm", "webstorm"))
# With the programs that show a file: a pattern finding `vim vite.config.ts` or a port
# never takes one; a pidfile or tag still counts; [procclean] `editors` adds.
VIEWERS = EDITORS.union((
    "less", "more", "most", "bat", "batcat", "cat", "head", "tail", "tac", "man", "watch",
    "tmux", "screen", "journalctl", "stern", "multitail", "lnav"))

# Where editors that run under another program's name are installed (VS Code's server:
# `node ~/.vscode-server/.../server-main.js`; app bundles; a JetBrains IDE's own Java,
# jbr): a `node ... frontend` among them is the user's editor, not a server.  Each
# alternative spelled out whole, so each holds fixed text (_needed_text): a command run
# from ~/.venv or ~/.nvm is told apart without importing re.
EDITOR_PLACES_RE = (r"/\.vscode/|/\.vscode-insiders/|/\.vscode-server/|/\.vscode-server-insiders/"
                    r"|/\.vscode-remote/|/\.vscodium-server/|/\.cursor/|/\.cursor-server/"
                    r"|/\.windsurf/|/\.windsurf-server/|/code-server/|/JetBrains/|/jbr/bin/"
                    r"|/Visual Studio Code[^/]*\.app/|/Cursor[^/]*\.app/|/Windsurf[^/]*\.app/"
                    r"|/VSCodium[^/]*\.app/|/Zed[^/]*\.app/|/Sublime Text[^/]*\.app/")

# Debuggers and coverage runners editors run the user's program under (debugpy's
# launcher, ptvsd, PyCharm's pydevd.py): the program is the service, though the runner's
# path is the editor's.  Matched against what comes before the first option, `..`
# resolved; debugpy/adapter (it runs no program of the user's) stays the editor's.
DEBUGGERS_RE = (r"/(?:(?:debugpy|ptvsd)(?:/launcher)?(?:/__main__\.py)?|ptvsd_launcher\.py"
                r"|pydevd\.py|coverage_runner/run_coverage\.py|profiler/run_profiler\.py)"
                r"(?:\s|$)")

# Web browsers: one a service opens (`vite --open`) is the user's all the same.
BROWSERS = frozenset((
    "firefox", "firefox-esr", "firefox-bin", "librewolf", "waterfox", "chrome",
    "google-chrome", "google-chrome-stable", "chromium", "chromium-browser", "brave",
    "brave-browser", "msedge", "microsoft-edge", "microsoft-edge-stable", "opera", "vivaldi",
    "vivaldi-bin", "epiphany", "falkon", "qutebrowser"))
BROWSER_APPS_RE = (r"^(?:/Users/[^/]+)?/Applications/(?:Google Chrome|Firefox|Safari"
                   r"|Brave Browser|Microsoft Edge|Chromium|Arc|Opera|Vivaldi)[^/]*\.app/")

# Container runtimes' port forwarders (Docker, rootless Docker, Podman, Docker Desktop,
# lima): a port one holds is a container's; a signal breaks its network, stops nothing.
# Podman's first (the others are Docker's: which command names the container).
PODMAN_PROXIES = ("rootlessport", "rootlessport-child", "conmon", "pasta", "pasta.avx2",
                  "passt", "passt.avx2", "gvproxy")
CONTAINER_PROXIES = frozenset(PODMAN_PROXIES + (
    "docker-proxy", "rootlesskit", "rootlesskit-docker-proxy", "slirp4netns", "vpnkit",
    "vpnkit-bridge", "com.docker.backend", "com.docker.vpnkit", "com.docker.proxy",
    "limactl"))
# Tunnels a user runs from the project's folder (`ssh -L 8000:localhost:8000 box`, its
# shell in there; `kubectl port-forward svc/api 8000`): one on a service's port forwards
# it elsewhere, no leftover of the service's; stop leaves it, kill-port takes it.
FORWARDERS = frozenset(("ssh", "autossh", "kubectl", "oc", "socat"))
CONTAINER_QUERY_TIMEOUT = 3.0   # seconds `docker ps` may take

# The seed's recipes skip every ps line that contains this word (`grep -v grep`).
GREP_WORD = "grep"

# Variables that reshape `ps` output: never passed on to it.
PS_ENV_DROP = ("COLUMNS", "LINES", "PS_FORMAT", "PS_PERSONALITY", "POSIXLY_CORRECT",
               "CMD_ENV", "PS_COLORS", "LC_ALL", "LC_TIME")


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

class ProcCleanError(Exception):
    """An expected failure: `main` prints it on one line, in the user's language, and exits
    with `code`.  `key` names its MESSAGES text, filled with `values` (a ProcCleanError one
    in the same language); a text that is no key is shown as it is.  str(): the English."""

    def __init__(self, key, code=EXIT_USAGE, **values):
        self.key = key
        self.code = code
        self.values = values
        self.lang = None            # the language of the command's context, once known
        self.in_document = False    # --json: the command's document holds it already
        Exception.__init__(self, self.text("en"))

    def text(self, lang):
        """The message in `lang` (en or zh)."""
        template = MESSAGES[lang].get(self.key) or MESSAGES["en"].get(self.key)
        if template is None:
            return self.key
        return template.format(**dict(
            (name, value.text(lang) if isinstance(value, ProcCleanError) else value)
            for name, value in self.values.items()))


# ---------------------------------------------------------------------------
# Data types
# ---------------------------------------------------------------------------

class Process(object):
    """One row of the process table.  `line`: what patterns search (ps -ef's, or in its
    shape); `start`: epoch seconds; `start_ticks` (Linux) with the PID names one process."""

    __slots__ = ("pid", "ppid", "user", "command", "zombie", "start",
                 "elapsed", "cpu_seconds", "rss_kb", "line", "uid", "sid", "pgid",
                 "start_ticks")

    def __init__(self, pid, ppid, user, command, zombie=False, start=None,
                 elapsed=None, cpu_seconds=None, rss_kb=None, line=None, uid=None,
                 sid=None, pgid=None, start_ticks=None):
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
        self.uid = uid
        self.sid = sid
        self.pgid = pgid
        self.start_ticks = start_ticks

    @property
    def identity(self):
        """What tells this process from a later one that got the same PID."""
        return (self.pid, self.start_ticks if self.start_ticks is not None else self.start)

    @property
    def cpu_percent(self):
        if self.cpu_seconds is None or not self.elapsed:
            return None
        return 100.0 * self.cpu_seconds / self.elapsed

    def __repr__(self):
        return "Process(%d, ppid=%r, %r)" % (self.pid, self.ppid, self.command)


class _Record(object):
    """Plain values: arguments fill __slots__ (by position or keyword), else DEFAULTS."""

    __slots__ = ()
    DEFAULTS = {}

    def __init__(self, *args, **kwargs):
        names = self.__slots__
        if len(args) == len(names) and not kwargs:   # all by position (ProcStat): faster
            for name, value in zip(names, args):
                setattr(self, name, value)
            return
        values = dict(self.DEFAULTS, **kwargs)
        values.update(zip(names, args))
        if len(args) > len(names) or set(kwargs) & set(names[:len(args)]) \
                or set(values) != set(names):
            raise TypeError("%s takes %s" % (type(self).__name__, ", ".join(names)))
        for name in names:
            setattr(self, name, values[name])

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join(
            "%s=%r" % (name, getattr(self, name)) for name in self.__slots__))


class Service(_Record):
    """A named thing to stop and start.  `scope`: project (default) or machine (the
    recipes' matching); `after`: the services it starts after; `supervise`: dev, start
    and restart supervise it; `wait`: start and restart wait for it without --wait."""

    __slots__ = ("name", "pattern", "pidfile", "logfile", "port", "command", "cwd", "health",
                 "after", "scope", "supervise", "wait", "unhealthy_after", "regex")
    DEFAULTS = {"health": "", "after": (), "scope": "", "supervise": False, "wait": False,
                "unhealthy_after": UNHEALTHY_AFTER, "regex": None}

    def __init__(self, *args, **kwargs):
        _Record.__init__(self, *args, **kwargs)
        self.after = list(self.after)
        self.regex = compile_pattern(self.pattern) if self.pattern else None

    def matches(self, proc):
        """Whether the pattern finds its ps line (never one with `grep`: `grep -v grep`)."""
        return self.regex is not None and GREP_WORD not in proc.line \
            and self.regex.search(proc.line) is not None


class Target(object):
    """A process chosen to be signalled, and why (`via`: pidfile, state, tag, pattern,
    port, child, session) and in which look it was found (0: before any signal)."""

    __slots__ = ("process", "service", "via", "outcome", "look", "origin", "killed_after")

    def __init__(self, process, service, via, look=0, origin=None):
        self.process = process
        self.service = service
        self.via = via
        self.look = look
        self.origin = origin or via     # the `via` of the root it was reached from
        self.outcome = None     # one of OUTCOMES once acted on
        self.killed_after = None    # seconds from the stop's start to its SIGKILL

    @property
    def pid(self):
        return self.process.pid


class Outsider(_Record):
    """A pattern match not this project's: left alone, reported.  `folder`: cwd or None."""

    __slots__ = ("process", "service", "folder")


class ProcStat(_Record):
    """The fields procclean reads from /proc/PID/stat (proc_stat_values).  `tpgid`: its
    terminal's foreground group (-1: none); `threads`: a zombie leader with more runs on."""

    __slots__ = ("pid", "comm", "state", "ppid", "pgid", "sid", "cpu_ticks", "start_ticks",
                 "rss_pages", "flags", "tpgid", "threads")
    DEFAULTS = {"flags": 0, "tpgid": -1, "threads": 1}


class Listener(_Record):
    """A TCP socket in LISTEN state: its port, address, family, the PID holding it and
    the socket's owner (`uid`: from the kernel's tables, known where the PID is not)."""

    __slots__ = ("port", "address", "family", "pid", "command", "uid")
    DEFAULTS = {"pid": None, "command": None, "uid": None}


class PortHolder(_Record):
    """A listener on a service's port: `kind` (holder_kind), `what` (words), `free`."""

    __slots__ = ("listener", "kind", "what", "free")

    @property
    def pid(self):
        return self.listener.pid


class PidfileInfo(_Record):
    """What a pidfile says: a PID, or a `problem` (invalid, untrusted) not to trust it."""

    __slots__ = ("path", "exists", "pid", "problem", "raw", "mtime", "stamp")
    DEFAULTS = {"exists": False, "pid": None, "problem": None, "raw": b"", "mtime": None,
                "stamp": None}


class ServiceLock(_Record):
    """A lock: `kind` flock, or none (a read-only folder: no lock file, no start races)."""

    __slots__ = ("path", "fd", "kind")


# ---------------------------------------------------------------------------
# Matching: the patterns, in time linear in the line
# ---------------------------------------------------------------------------

# Linear time (SPEC "Never"): re backtracks (`python.*main\.py` rescans the rest of the
# line from every `python`: a 2 MB command line stalled every command for minutes); grep
# -E is an automaton.  Most patterns are alternatives of words joined by `.*`, found iff
# each word occurs after the end of the one before, each at its earliest end: one
# str.find per word.  A word may hold `.`, escapes, [classes], (a|b) groups and `?`,
# expanded into at most _MAX_SPELLINGS fixed strings; `^` and `$` may anchor an
# alternative.  Other patterns go to re, after a check for the literal text they need.
_MAX_SPELLINGS = 64
_ANY = None             # a `.` inside a word: any one character
_PATTERN_META = ".^$*+?{}[]()|\\\n"
_ESCAPABLE = "!\"#%&',-/:;<=>@_`~ .^$*+?{}[]()|\\"


class _Unsupported(Exception):
    """A pattern outside what the linear matcher reads: re takes it."""


def compile_pattern(pattern):
    """What finds `pattern` (re syntax, read as the seed's grep -E read it) in a line:
    its search(line) is truthy or None; re.error for a pattern that does not compile."""
    matcher = _MATCHERS.get(pattern)
    if matcher is None:
        try:
            matcher = _ChainMatcher(_pattern_chains(pattern))
        except _Unsupported:
            matcher = _RegexMatcher(pattern)
        _MATCHERS[pattern] = matcher
    return matcher


_MATCHERS = {}      # pattern -> its matcher (a config's services are built twice)


class _ChainMatcher(object):
    """Alternatives of words joined by `.*`, found in linear time (see above)."""

    __slots__ = ("chains", "plain", "anchors")

    def __init__(self, chains):
        # [[word: [(length, anchor offset, anchor, checks)]]], and each one's (^, $)
        self.chains = [words for words, _, _ in chains]
        self.anchors = [(at_start, at_end) for _, at_start, at_end in chains]
        self.plain = None if any(a or b for a, b in self.anchors) else \
            _plain_chains(self.chains)

    def search(self, line):
        if self.plain is not None and "\n" not in line:
            # Fixed strings only (the built-in patterns): one str.find per word.
            for words in self.plain:
                end = 0
                for word in words:
                    end = line.find(word, end)
                    if end < 0:
                        break
                    end += len(word)
                else:
                    return True
            return None
        # `.*` never spans a newline: each line alone; `$` ends the last (or before "\n").
        parts = line.split("\n") if "\n" in line else (line,)
        final = len(parts) - (2 if len(parts) > 1 and not parts[-1] else 1)
        for index, part in enumerate(parts):
            for words, (at_start, at_end) in zip(self.chains, self.anchors):
                if not (at_start and index or at_end and index < final) and \
                        _chain_found(words, part, at_start, at_end):
                    return True
        return None


def _chain_found(words, line, at_start, at_end):
    """Whether one chain's words occur in `line` in order (anchored as it says)."""
    end, last = 0, len(words) - 1
    for k, word in enumerate(words):
        if k == last and at_end:
            size = len(line)
            return any(_fits(s, line, size - s[0]) for s in word if size - s[0] >= end
                       and not (at_start and k == 0 and size != s[0]))
        if k == 0 and at_start:
            end = min([s[0] for s in word if _fits(s, line, 0)] or [-1])
        else:
            end = _earliest_end(word, line, end)
        if end < 0:
            return False
    return True


def _fits(spelling, line, start):
    """Whether one spelling of a word (see _spellings) occurs in `line` at `start`."""
    length, at, anchor, checks, tests = spelling
    return start + length <= len(line) and line.startswith(anchor, start + at) and \
        all(line.startswith(run, start + offset) for offset, run in checks) and \
        all(test.holds(line, start + offset) for offset, test in tests)


def _plain_chains(chains):
    """The chains as tuples of fixed strings (`[Pp]ython.*main`: `Python.*main` and
    `python.*main`); None unless all spellings are fixed and _MAX_SPELLINGS tuples do."""
    plain = []
    for words in chains:
        choices = [()]
        for word in words:
            if any(s[0] != len(s[2]) or s[4] for s in word):
                return None     # a `.`, `\d` or `\b` in a word
            choices = [c + (s[2],) for c in choices for s in word]
            if len(plain) + len(choices) > _MAX_SPELLINGS:
                return None
        plain.extend(choices)
    return plain


def _earliest_end(word, line, pos):
    """Where the earliest occurrence of a spelling of `word` from `pos` on ends (-1: none):
    found by its longest fixed run (its anchor), then checked at the other runs."""
    best = -1
    for spelling in word:
        length, at, anchor = spelling[:3]
        # Without an anchor (`.`, `\d`, `\b` only, or nothing): every place from pos.
        found = line.find(anchor, pos + at)
        while found >= 0:
            end = found - at + length
            if end > len(line) or (best >= 0 and end >= best):
                break
            if _fits(spelling, line, found - at):
                best = end
                break
            found = line.find(anchor, found + 1)
    return best


def _pattern_chains(pattern):
    """The alternatives of `pattern`: (words (see _ChainMatcher), at ^, at $)."""
    chains = []
    for alternative in _alternatives(pattern):
        at_start = alternative.startswith("^")
        body = alternative[1:] if at_start else alternative
        escapes = len(body[:-1]) - len(body[:-1].rstrip("\\"))
        at_end = body.endswith("$") and escapes % 2 == 0
        words = _words(body[:-1] if at_end else body, True)
        chains.append(([_spellings(atoms) for atoms in words], at_start, at_end))
    return chains


def _alternatives(pattern):
    """`pattern`'s alternatives, those of a group that is one of them too."""
    found = []
    for alternative in _split_bars(pattern):
        whole = len(alternative) - 1
        if alternative.startswith("(") and _group_end(alternative, 0) == whole:
            found.extend(_alternatives(_group_body(alternative)))     # a whole group
        else:
            found.append(alternative)
    return found


def _split_bars(text):
    """`text` split at its top-level `|` (not in a group, a class or an escape)."""
    parts, start, depth = [], 0, 0
    for i, depth in _brackets(text, 0):
        if depth < 0:
            raise _Unsupported()
        if text[i] == "|" and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth:
        raise _Unsupported()
    parts.append(text[start:])
    return parts


def _group_end(text, i, loose=False):
    """The index of the `)` closing the group opened at text[i] (`loose`: _class_end's)."""
    for j, depth in _brackets(text, i, loose):
        if depth == 0 and text[j] == ")":
            return j
    raise _Unsupported()


def _brackets(text, i, loose=False):
    """(index, depth after it) of each `(`, `)`, `|` from text[i] on, outside [] and \\."""
    depth = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 1
        elif char == "[":
            i = _class_end(text, i, loose)
        elif char in "()|":
            depth += 1 if char == "(" else -1 if char == ")" else 0
            yield i, depth
        i += 1


def _group_body(text):
    if text.startswith("(?:"):
        return text[3:-1]
    if text.startswith("(?"):
        raise _Unsupported()        # flags, look-arounds, named groups
    return text[1:-1]


def _class_end(text, i, loose=False):
    """The index of the `]` closing the class opened at text[i]; `loose` (re's reading,
    for _needed_text) reads a negated class, a `]` first and a `[` inside too."""
    j = i + 1
    if loose:
        j += 1 if text[j:j + 1] == "^" else 0
        j += 1 if text[j:j + 1] == "]" else 0
    elif text[j:j + 1] in ("^", "]", ""):
        raise _Unsupported()        # negated or `]` first: not read here
    while j < len(text):
        if text[j] == "\\":
            j += 2
            continue
        if text[j] == "]":
            return j
        if text[j] == "[" and not loose:
            raise _Unsupported()
        j += 1
    raise _Unsupported()


def _words(text, top):
    """The atoms of each word of `text` (words split at `.*`, only at the `top`); an
    atom is a list of its spellings, tuples of characters (_ANY for `.`)."""
    words, atoms, i = [], [], 0
    while i < len(text):
        char, after = text[i], text[i + 1:i + 2]
        if char == "." and after in ("*", "+"):
            if not top:
                raise _Unsupported()
            if after == "+":
                atoms.append([(_ANY,)])
            words.append(atoms)
            atoms = []
            i += 3 if text[i + 2:i + 3] == "?" else 2      # lazy: the same yes or no
            if text[i:i + 1] in ("*", "+", "?", "{"):
                raise _Unsupported()
            continue
        look = [k for k in _LOOKS if text.startswith(k, i)] if char == "(" else ()
        if look:
            atom, i = [(_LOOKS[look[0]],)], i + len(look[0])
        elif char == "(":
            if not top:
                raise _Unsupported()
            end = _group_end(text, i)
            inner = _split_bars(_group_body(text[i:end + 1]))
            if len(inner) == 1 and inner[0][:1] not in ("*", "+", "?", "{") and \
                    text[end + 1:end + 2] not in ("*", "+", "?", "{"):
                text = text[:i] + inner[0] + text[end + 1:]     # grep -w's (?:X)
                continue
            atom = [s for alternative in inner
                    for s in _spellings_of(_words(alternative, False)[0])]
            i = end + 1
        else:
            atom, i = _atom(text, i)
        if text[i:i + 1] == "?":
            atom = atom + [()]
            i += 1
        if text[i:i + 1] in ("*", "+", "?", "{"):
            raise _Unsupported()
        atoms.append(atom)
    words.append(atoms)
    return words


def _atom(text, i):
    """(the spellings of the one-character atom at text[i], the index after it)."""
    char = text[i]
    if char == "\\":
        after = text[i + 1:i + 2]
        if after and after in "dwSb":
            return [(_TESTS[after],)], i + 2
        if not after or after not in _ESCAPABLE:
            raise _Unsupported()    # \s, \1, \n...: re knows them
        return [(after,)], i + 2
    if char == ".":
        return [(_ANY,)], i + 1
    if char == "[":
        end = _class_end(text, i)
        return [(c,) for c in sorted(_class_chars(text[i + 1:end]))], end + 1
    if char in _PATTERN_META:
        raise _Unsupported()
    return [(char,)], i + 1


def _class_chars(body):
    """The characters a class body such as `Pp` or `a-z_` stands for."""
    if "\n" in body or any(op in body for op in ("--", "&&", "~~", "||")):
        raise _Unsupported()
    items = []      # its characters, None for a range's `-`
    j = 0
    while j < len(body):
        escaped = body[j] == "\\"
        if escaped and (j + 1 >= len(body) or body[j + 1] not in _ESCAPABLE):
            raise _Unsupported()
        dash = body[j] == "-" and 0 < j < len(body) - 1
        items.append(body[j + 1] if escaped else None if dash else body[j])
        j += 2 if escaped else 1
    chars = set()
    k = 0
    while k < len(items):       # a character is a range of one
        ranged = k + 2 < len(items) and items[k + 1] is None
        low, high = items[k], items[k + 2 if ranged else k]
        if low is None or high is None or ord(high) - ord(low) not in range(_MAX_SPELLINGS):
            raise _Unsupported()
        chars.update(chr(c) for c in range(ord(low), ord(high) + 1))
        k += 3 if ranged else 1
    return chars


def _spellings_of(atoms):
    """Every string (a tuple of characters and _ANY) a run of atoms spells."""
    spellings = [()]
    for atom in atoms:
        spellings = list(dict.fromkeys(s + a for s in spellings for a in atom))
        if len(spellings) > _MAX_SPELLINGS:
            raise _Unsupported()
    return spellings


def _spellings(atoms):
    """A word: (length, anchor offset, anchor, [(offset, run)], [(offset, _Test)])s."""
    word = []
    for spelling in _spellings_of(atoms):
        runs, tests, run, start, at = [], [], "", 0, 0
        for char in spelling + (_ANY,):
            if isinstance(char, _Test):
                tests.append((at, char))
                if not char.width:
                    continue        # zero-width: a run goes on across it
            elif char is not _ANY:
                start, run, at = (at if not run else start), run + char, at + 1
                continue
            if run:
                runs.append((start, run))
            run, at = "", at + 1
        runs.sort(key=lambda item: -len(item[1]))
        at, anchor = runs[0] if runs else (0, "")
        word.append((sum(1 for c in spelling if not isinstance(c, _Test) or c.width),
                     at, anchor, runs[1:], tests))
    return word


def _is_word(char):
    # re's \w on str: Py_UNICODE_ISALNUM or `_`, what str.isalnum reads.
    return char.isalnum() or char == "_"


class _Test(object):
    """What re checks at one place: `\\d`, `\\w`, `\\S` (one character), or a word
    boundary (`\\b`, grep -w's `(?<!\\w)` and `(?!\\w)`: zero-width)."""

    __slots__ = ("kind", "width")

    def __init__(self, kind):
        self.kind, self.width = kind, 1 if kind in "dwS" else 0

    def holds(self, line, pos):
        size, kind = len(line), self.kind
        if kind in "dwS":
            if pos >= size:
                return False
            char = line[pos]
            return char.isdecimal() if kind == "d" else _is_word(char) \
                if kind == "w" else not char.isspace()
        before = pos > 0 and _is_word(line[pos - 1])
        after = pos < size and _is_word(line[pos])
        return before != after if kind == "b" else not (before if kind == "<" else after)


# \s, \W and \D would match a newline, which the chains never span: re takes them.
_TESTS = dict((kind, _Test(kind)) for kind in "dwSb<>")
_LOOKS = {"(?<![\\w])": _TESTS["<"], "(?<!\\w)": _TESTS["<"], "(?![\\w])": _TESTS[">"],
          "(?!\\w)": _TESTS[">"]}


class _RegexMatcher(object):
    """A pattern the linear matcher does not read: re, only on lines holding the literal
    text an alternative needs (a line that cannot match is never backtracked over)."""

    __slots__ = ("regex", "needed")

    def __init__(self, pattern):
        self.regex = re.compile(pattern)
        self.needed = _needed_text(pattern)

    def search(self, line):
        if self.needed is not None and not any(
                all(text in line for text in texts) for texts in self.needed):
            return None
        return self.regex.search(line)


def _needed_text(pattern):
    """For each top-level alternative of `pattern`, fixed strings every match of it holds
    (literal runs outside groups and classes, not optional); None when not told simply
    (inline flags, counted repeats, escapes of other characters, `a(?#x)*`)."""
    if "{" in pattern or any("(?" + flag in pattern for flag in "aiLmsux-#"):
        return None
    needed, texts, run, i = [], [], "", 0
    while i < len(pattern):
        char, after = pattern[i], pattern[i + 1:i + 2]
        literal, size = None, 1
        if char == "\\":
            if not after or after not in _ESCAPABLE + "dDsSwWbBAZ":
                return None     # \x41, \u00e9, \0, \n...: another character
            literal, size = (after if after in _ESCAPABLE else None), 2
        elif char in "[(":
            try:
                size = (_class_end if char == "[" else _group_end)(pattern, i, True) + 1 - i
            except _Unsupported:
                return None
        elif char == "|":
            needed.append([t for t in texts + [run] if t])
            texts, run, i = [], "", i + 1
            continue
        elif char not in _PATTERN_META:
            literal = char
        if literal is not None and pattern[i + size:i + size + 1] not in ("*", "?"):
            run += literal
        else:
            texts.append(run)
            run = ""
        i += size
    needed.append([t for t in texts + [run] if t])
    return needed


# ---------------------------------------------------------------------------
# Pure parsing: ps, /proc, lsof, ss text in; tables out
# ---------------------------------------------------------------------------

_PS_COLUMN_ALIASES = {"UID": "user", "USER": "user", "RUSER": "user", "PID": "pid",
                      "PPID": "ppid", "STIME": "stime", "START": "stime",
                      "STARTED": "stime", "TTY": "tty", "TT": "tty", "TIME": "time",
                      "CMD": "command", "COMMAND": "command", "ARGS": "command"}
# Regular expressions as text: re compiles (and caches) them on first use, not at import.
_TIME_RE = r"^(\d+-)?\d+:\d\d(:\d\d)?(\.\d+)?$"
_MONTH_RE = r"^[A-Za-z]{3}$"


def decode_bytes(data):
    """Bytes from ps or /proc to text; undecodable bytes survive as surrogates."""
    return data if isinstance(data, str) else data.decode("utf-8", "surrogateescape")


def printable(text):
    """Text safe on a terminal, the one escaping of all another process chose: what a
    terminal acts on or hides (C0, DEL, C1, line, bidi) as repr does, bad bytes as \\xNN."""
    text = decode_bytes(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escaped_char(c) for c in text)


def _escaped_char(c):
    code = ord(c)
    if 0xdc80 <= code <= 0xdcff:        # an undecodable byte (surrogateescape)
        return "\\x%02x" % (code - 0xdc00)
    return "\\x%02x" % code if code < 0x100 else \
        "\\u%04x" % code if code < 0x10000 else "\\U%08x" % code


def _row_pids(fields):
    """(pid, ppid) of a ps row (ppid None where ps shows none), or None unless both are
    PIDs: a ps printing garbage must not put -7 or 10**20 in the table."""
    try:
        pids = (int(fields["pid"]), int(fields["ppid"]) if "ppid" in fields else None)
    except ValueError:
        return None
    return pids if all(p is None or 0 <= p <= 2 ** 31 - 1 for p in pids) else None


def parse_duration(text):
    """ps time formats (`[[dd-]hh:]mm:ss[.xx]`) to seconds; None when unreadable."""
    days, dash, clock = text.strip().rpartition("-")
    parts = clock.split(":")
    if len(parts) > 3 or dash and not days.isdigit():
        return None
    try:
        seconds = 0.0
        for part in parts:
            seconds = seconds * 60 + float(part)
    except ValueError:
        return None
    return int(days or 0) * 86400 + seconds


def parse_ps_ef(text):
    """(processes, has_ppid) of any `ps -ef` output, read by its header (BusyBox: no
    PPID).  STIME may span words (`Jul 13`): the TIME after it, or a month, says how."""
    lines = decode_bytes(text).splitlines()
    if not lines:
        return [], False
    header = [_PS_COLUMN_ALIASES.get(name.upper(), name.upper()) for name in lines[0].split()]
    if "pid" not in header or header[-1] != "command":
        raise ProcCleanError("err_ps_header", EXIT_FAILED, header=printable(lines[0]))
    before = header[:-1]
    k = before.index("stime") if "stime" in before else len(before)
    left, right = before[:k], before[k + 1:]
    time_index = right.index("time") if "time" in right else None
    processes = []
    for line in lines[1:]:
        spans = [m.span() for m in re.finditer(r"\S+", line)]
        tokens = [line[a:b] for a, b in spans]
        if len(tokens) < len(before):
            continue
        width = _stime_width(tokens, len(left), right, time_index) if "stime" in before else 0
        n_before = len(left) + width + len(right)
        if len(tokens) < n_before:
            continue
        fields = dict(zip(left, tokens))
        fields.update(zip(right, tokens[len(left) + width:n_before]))
        command = line[spans[n_before][0]:] if len(tokens) > n_before else ""
        pids = _row_pids(fields)
        if pids is not None:
            cpu = parse_duration(fields["time"]) if "time" in fields else None
            processes.append(Process(pids[0], pids[1], fields.get("user"), command,
                                     zombie=command.endswith("<defunct>"),
                                     cpu_seconds=cpu, line=line))
    return processes, "ppid" in header


def _stime_width(tokens, first, right, time_index):
    for width in (1, 2, 3):
        rest = tokens[first + width:]
        if len(rest) < len(right):
            break
        if time_index is None:
            # No TIME column to find: `Jul 13` (a month and a day) is one STIME.
            day = tokens[first + 1] if len(tokens) > first + 1 else ""
            return 2 if re.match(_MONTH_RE, tokens[first]) and day.isdigit() \
                and len(day) <= 2 else 1
        if re.match(_TIME_RE, rest[time_index]):
            return width
    return 1


# Fields asked of `ps -o` where there is no /proc (macOS, BSD): every system spells these.
PS_O_FIELDS = ("user", "pid", "ppid", "stat", "etime", "time", "rss", "args")


def parse_ps_o(text, fields=PS_O_FIELDS, now=None):
    """Parse `ps -o f1=,f2=,...,args=` output: one word a field, args the rest."""
    n = len(fields) - 1
    processes = []
    for line in decode_bytes(text).splitlines():
        parts = line.split(None, n)
        if len(parts) < n:
            continue
        values = dict(zip(fields, parts))
        command = parts[n] if len(parts) > n else ""
        try:
            rss = int(values["rss"]) if "rss" in values else None
        except ValueError:
            continue
        pids = _row_pids(values)
        if pids is None:
            continue
        elapsed = parse_duration(values["etime"]) if "etime" in values else None
        start = now - elapsed if (now is not None and elapsed is not None) else None
        zombie = "Z" in values.get("stat", "") or command.endswith("<defunct>")
        user = values.get("user")
        processes.append(Process(
            pids[0], pids[1], user, command, zombie=zombie, start=start, elapsed=elapsed,
            cpu_seconds=parse_duration(values["time"]) if "time" in values else None,
            rss_kb=rss, line="%s %d %s %s" % (user, pids[0], pids[1], command)))
    return processes


def parse_proc_stat(data):
    """A ProcStat from the bytes of /proc/PID/stat (see proc_stat_values)."""
    return ProcStat(*proc_stat_values(data))


def proc_stat_values(data, fields=None):
    """ProcStat's fields from /proc/PID/stat, as a tuple.  comm is all between the first
    '(' and the last ')'; proc(5) numbers the fields after it from 3 (state): ppid 4, pgrp
    5, session 6, tpgid 8, flags 9, utime 14, stime 15, num_threads 20, starttime 22
    (clock ticks after boot), rss 24 (pages).  `fields`: those after comm, split."""
    head, _, tail = data.rpartition(b")")
    pid_text, _, comm = head.partition(b" (")
    if fields is None:
        fields = tail.split(None, 22)       # up to rss; the 30 fields after it stay one
    return (int(pid_text), comm.decode("utf-8", "surrogateescape"),
            fields[0].decode("ascii", "replace"),
            int(fields[1]), int(fields[2]), int(fields[3]),
            int(fields[11]) + int(fields[12]), int(fields[19]), int(fields[21]),
            int(fields[6]), int(fields[5]), int(fields[17]))


def proc_command(cmdline, comm, state):
    """The command procps shows for /proc/PID/cmdline: args joined by spaces, or
    `[comm]` when there are none (kernel threads, zombies), `<defunct>` for zombies."""
    args = cmdline.rstrip(b"\0")
    command = args.replace(b"\0", b" ").decode("utf-8", "surrogateescape") if args \
        else "[%s]" % comm
    return command + (" <defunct>" if state == "Z" else "")


def parse_start_record(text):
    """A start record as write_pidfile writes it (JSON ints, plain strings, int lists),
    else None (json reads the rest): json costs 2-4 ms to import, on every stop."""
    text = text.strip()
    if text[:1] != "{" or text[-1:] != "}":
        return None
    record = {}
    rest = text[1:-1].strip()
    try:
        while rest:
            key, rest = _json_string(rest)
            if key is None or rest[:1] != ":":
                return None
            rest = rest[1:].lstrip()
            if rest[:1] == '"':
                value, rest = _json_string(rest)
            elif rest[:1] == "[":
                end = rest.index("]")
                inside = rest[1:end]
                value = [_json_int(word) for word in inside.split(",")] if inside.strip() \
                    else []
                rest = rest[end + 1:]
            else:
                end = len(rest) if "," not in rest else rest.index(",")
                value, rest = _json_int(rest[:end]), rest[end:]
            if value is None or None in (value if isinstance(value, list) else ()):
                return None
            record[key] = value
            rest = rest.strip()
            if rest[:1] == ",":
                rest = rest[1:].lstrip()
                if not rest:
                    return None         # a trailing comma: not JSON
            elif rest:
                return None
    except ValueError:
        return None
    return record


def _json_string(text):
    """(a "string" without escapes at the start of `text`, the text after it), or None."""
    end = text.find('"', 1)
    if text[:1] != '"' or end < 0 or "\\" in text[:end]:
        return None, text
    return text[1:end], text[end + 1:].lstrip()


def _json_int(word):
    """An integer as JSON writes it (optional minus, ASCII digits), else None."""
    word = word.strip()
    digits = word[1:] if word[:1] == "-" else word
    if not digits or digits.strip("0123456789") or len(digits) > 1 and digits[0] == "0":
        return None
    return int(word)


def parse_pidfile(data):
    """The PID in a pidfile's bytes, or None unless it is one decimal number >= 2."""
    text = data.strip()
    pid = int(text) if text.isdigit() and len(text) <= 10 else 0
    return pid if 2 <= pid <= 2 ** 31 - 1 else None


def parse_port(text):
    """A TCP port number 1-65535 from text; ProcCleanError (usage) otherwise."""
    digits = str(text).strip()
    # Digits checked one by one, not int() alone: int() takes "+80", "8_000", "８０".
    if not 0 < len(digits) <= 5 or digits.strip("0123456789") \
            or not 1 <= int(digits) <= 65535:
        raise ProcCleanError("err_port", port=text)
    return int(digits)


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


def _family(host):
    return "ipv6" if ":" in host else "ipv4"


def parse_lsof_fields(text):
    """Listeners in `lsof -nP -iTCP -sTCP:LISTEN -F pctn` output; None if the text is not
    in that form (BusyBox lsof ignores its arguments and prints every open file)."""
    text = decode_bytes(text)
    listeners = []
    pid = command = kind = None
    for line in text.splitlines():
        if not line:
            continue
        tag, value = line[0], line[1:]
        if tag == "p":
            try:
                pid = int(value)
            except ValueError:
                return None
            command = None
        elif tag == "c":
            command = value
        elif tag in "ft":
            kind = value if tag == "t" else None
        elif tag == "n" and pid is not None:
            host, port = (None, None) if "->" in value else _split_host_port(value)
            if port is None:
                continue
            # `*` and an IPv4-mapped IPv6 address (printed as IPv4): TYPE tells the family.
            family = {"IPV4": "ipv4", "IPV6": "ipv6"}.get((kind or "").upper()) or _family(host)
            if host == "*":
                host = "::" if family == "ipv6" else "0.0.0.0"
            elif family == "ipv6" and "." in host and ":" not in host:
                host = "::ffff:" + host
            listeners.append(Listener(port, host, family, pid, command))
        elif tag not in "fatdDsiklLoPRgTGu":
            return None
    if text.strip() and pid is None:
        return None
    return listeners


def parse_lsof_cwd(text):
    """Working directories in `lsof -a -d cwd -Fn -p PID,...` output: {pid: path}."""
    folders = {}
    pid = None
    for line in decode_bytes(text).splitlines():
        if line.startswith("p") and line[1:].isdigit():
            pid = int(line[1:])
        elif line.startswith("n") and pid is not None and pid not in folders:
            folders[pid] = line[1:]
    return folders


def tag_in_environ(environ):
    """(project, service) from the bytes of /proc/PID/environ; None without a tag."""
    if _TAG_BYTES not in environ:
        return None             # most processes: one fast search, nothing copied
    data = b"\0" + environ
    values = []
    for name in (TAG_PROJECT, TAG_SERVICE):
        marker = b"\0" + name.encode("ascii") + b"="
        at = data.find(marker)
        values.append(None if at < 0 else
                      decode_bytes(data[at + len(marker):].split(b"\0", 1)[0]))
    return None if values[0] is None else (values[0], values[1] or "")


def environ_image(fields):
    """The addresses of a program's arguments and environment (/proc/PID/stat fields
    48-51, proc(5)), which its exec placed at random: its forks keep them, its next exec
    draws others.  None where they say nothing: not randomized at exec (no
    PF_RANDOMIZE), hidden (0), absent (before Linux 3.5).  `fields`: stat's after comm."""
    if len(fields) < 49 or fields[47] == b"0" or not int(fields[6]) & PF_RANDOMIZE:
        return None
    return b":".join(fields[45:49])


def environ_mark(stat, fields=None, cmdline_size=0):
    """What tells one environment of a process from another, from /proc/PID/stat: PID,
    start tick (field 22), environ_image, comm and command-line length; None where the
    image is."""
    if fields is None:
        fields = stat[stat.rindex(b")") + 2:].split()
    image = environ_image(fields)
    if image is None:
        return None
    head = stat[:stat.rindex(b")")]
    return b":".join([head[:head.index(b" ")], fields[19], image, b"%d" % cmdline_size,
                      head[head.index(b"(") + 1:].replace(b"\n", b"?")])


def image_line(image, tag):
    """The line that keeps a tagged program's environ_image between commands."""
    return b"+%s %s" % (image, "\0".join(tag).encode("utf-8", "surrogateescape").hex()
                        .encode("ascii"))


def parse_image_line(line):
    """(environ_image, tag) from an image_line; the tag None where the line is not one."""
    image, _, text = line[1:].partition(b" ")
    try:
        tag = tuple(bytes.fromhex(text.decode("ascii")).decode(
            "utf-8", "surrogateescape").split("\0"))
    except ValueError:      # (UnicodeDecodeError is one)
        return image, None
    return image, tag if len(tag) == 2 and tag[0] else None


def environ_rewritten(environ):
    """Whether /proc/PID/environ holds no environment any more, where one starts with
    NAME=value: a process that took that memory for a longer name (setproctitle, which
    gunicorn and celery use; Ruby's and Perl's `$0 =`; nginx, PostgreSQL, redis) left
    NULs or the name's tail there, its tag with them."""
    end = environ.find(b"\0")
    name, equals, _ = (environ if end < 0 else environ[:end]).partition(b"=")
    return not equals or not name or b" " in name


def parse_ps_environ(text, commands=None):
    """{pid: (project, service)} in `ps -A -ww -E -o pid= -o command=` (macOS: NAME=value
    after the command; FreeBSD's -e: before it) output, `commands` ({pid: command}) cut
    off first.  A project path runs up to the next NAME= word; a service is one word."""
    tags = {}
    commands = commands or {}
    pattern = r"(?:^|\s)%s=(.*?)(?=\s+[A-Za-z_][A-Za-z0-9_]*=|\s*$)"
    for line in decode_bytes(text).splitlines():
        parts = line.split(None, 1)
        if len(parts) < 2 or not parts[0].isdigit() or TAG_PROJECT + "=" not in parts[1]:
            continue
        rest = parts[1]
        command = commands.get(int(parts[0])) or ""
        if command and (rest + " ").startswith(command + " "):
            rest = rest[len(command):]
        elif command and (" " + rest).endswith(" " + command):
            rest = rest[:-len(command)]
        project = re.search(pattern % TAG_PROJECT, rest)
        service = re.search(r"(?:^|\s)%s=(\S*)" % TAG_SERVICE, rest)
        if project:
            tags[int(parts[0])] = (project.group(1), service.group(1) if service else "")
    return tags


_SS_PID_RE = r'\("((?:[^"\\]|\\.)*)",pid=(\d+),'


def parse_ss(text):
    """Listeners in `ss -ltnpH` (or `ss -tanpH`, keeping LISTEN rows) output."""
    listeners = []
    for line in decode_bytes(text).splitlines():
        tokens = line.split()
        if not tokens or tokens[0] in ("State", "Netid", "Recv-Q"):
            continue
        if tokens[0] in ("tcp", "tcp6"):
            tokens = tokens[1:]
        if not tokens[0][0].isdigit():
            if tokens[0] not in ("LISTEN", "UNCONN"):
                continue
            tokens = tokens[1:]
        host, port = _split_host_port(tokens[2]) if len(tokens) >= 3 else (None, None)
        if port is None:
            continue
        if host == "*":
            host = "::"     # ss's `*` is an IPv6 socket open to IPv4 too (0.0.0.0 is v4)
        owners = [(int(pid), command) for command, pid in re.findall(_SS_PID_RE, line)]
        listeners.extend(Listener(port, host, _family(host), pid, command)
                         for pid, command in owners or [(None, None)])
    return listeners


def parse_sockstat(text):
    """Listeners in FreeBSD's `sockstat -46l -P tcp` output (USER COMMAND PID FD PROTO
    LOCAL FOREIGN; IPv6 addresses unbracketed, `*` for any, PROTO tcp4/tcp6/tcp46)."""
    listeners = []
    for line in decode_bytes(text).splitlines():
        tokens = line.split()
        # Read from the right: a command name may hold spaces.
        if len(tokens) < 7 or tokens[0] == "USER" or not (tokens[-5].isdigit()
                                                           or tokens[-5] == "?"):
            continue
        proto, local = tokens[-3], tokens[-2]
        host, port = _split_host_port(local)
        if port is None or not proto.startswith("tcp"):
            continue
        family = "ipv4" if proto == "tcp4" else "ipv6"
        if host == "*":
            host = "0.0.0.0" if family == "ipv4" else "::"
        pid = int(tokens[-5]) if tokens[-5].isdigit() else None   # `?`: not ours to see
        listeners.append(Listener(port, host, family, pid, " ".join(tokens[1:-5])))
    return listeners


def parse_proc_net_tcp(text, family="ipv4", state="0A"):
    """[(port, address, inode, uid)] of LISTEN sockets (`state` 0A; 01: ESTABLISHED) in
    /proc/net/tcp{,6}: addresses are host-order 32-bit words, written by inet_ntop."""
    import _socket
    sockets = []
    for line in decode_bytes(text).splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != state:
            continue
        address_hex, _, port_hex = fields[1].partition(":")
        raw = b"".join(int(address_hex[i:i + 8], 16).to_bytes(4, sys.byteorder)
                       for i in range(0, len(address_hex), 8))
        ipv6 = family == "ipv6" or len(raw) == 16
        address = _socket.inet_ntop(_socket.AF_INET6 if ipv6 else _socket.AF_INET, raw)
        sockets.append((int(port_hex, 16), address, int(fields[9]), int(fields[7])))
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
    """LISTEN sockets in sock_diag replies: ([(port, address, family, inode, uid)], done).
    inet_diag_msg: family, state, timer, retrans (1 byte each), then the socket id
    (source port big-endian, destination port, 16-byte source, 16-byte destination,
    interface, cookie), then expires, rqueue, wqueue, uid and inode (4 bytes each)."""
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
                sockets.append((int.from_bytes(msg[4:6], "big"),
                                inet_ntop(family, msg[8:12] if family == 2 else msg[8:24]),
                                "ipv4" if family == 2 else "ipv6",
                                int.from_bytes(msg[68:72], sys.byteorder),
                                int.from_bytes(msg[64:68], sys.byteorder)))
        offset += (length + 3) & ~3
    return sockets, False


# ---------------------------------------------------------------------------
# Pure planning: table + services in, targets out
# ---------------------------------------------------------------------------

def children_map(table):
    """PPID -> list of child PIDs, in PID order."""
    kids = {}
    for pid in sorted(table):           # (ints sort in C: no key function per process)
        ppid = table[pid].ppid
        if ppid is not None:
            kids.setdefault(ppid, []).append(pid)
    return kids


def descendants(kids, pid):
    """Every PID below `pid` in the tree, parents before children."""
    found = []
    seen = {pid}
    stack = list(reversed(kids.get(pid, ())))
    while stack:
        child = stack.pop()
        if child not in seen:
            seen.add(child)
            found.append(child)
            stack.extend(reversed(kids.get(child, ())))
    return found


def ancestors(table, pid):
    """`pid` and the PIDs above it, nearest first, up to one the table does not have."""
    seen = set()
    while pid is not None and pid not in seen:
        seen.add(pid)
        yield pid
        pid = getattr(table.get(pid), "ppid", None)


def protected_pids(table, self_pid, parent_pid):
    """PIDs never to signal: 0, 1, procclean and every ancestor (the make and shells)."""
    return {0, 1, self_pid}.union(ancestors(table, parent_pid))


def plan_targets(table, roots, protected, look=0, sessions=()):
    """Expand (process, service, via) roots into targets with all their descendants and,
    for a session or group leader, its members (a helper daemonized in the session);
    `sessions`: IDs whose leader exited before.  A process keeps its first service.
    Protected PIDs are dropped, and a window (is_window) with its children unless its
    pidfile or state names it (`vite --open` starts the user's browser in the service's
    tree); what runs in a window carrying the tag (its terminals) is taken neither by the
    tag it inherited nor by session."""
    kids = children_map(table)
    targets = {}
    # (session or group ID, service, the `via` of the root it was reached from)
    pending = [(ident, service, None) for ident, service in sessions]

    def take(proc, service, via, origin):
        target = targets[proc.pid] = Target(proc, service, via, look, origin)
        if proc.pid in (proc.sid, proc.pgid):
            pending.append((proc.pid, service, target.origin))

    # windows a service opened, and theirs; what runs in one is the user's, tag or session
    spared = set(proc.pid for proc, _, via in roots if via == "tag" and is_window(proc))

    def add(proc, service, via, origin=None):
        if proc.pid in protected or proc.pid < 2 or proc.pid in targets:
            return
        window = is_window(proc)
        inherited = spared and via in ("tag", "session") and in_window(table, proc, spared)
        if (window or inherited) and via not in ("pidfile", "state"):
            spared.add(proc.pid)
            return
        take(proc, service, via, origin)
        for pid in descendants(kids, proc.pid):     # parents before their children
            if pid in targets or pid in protected or pid not in table:
                continue
            if not window and (table[pid].ppid in spared or is_window(table[pid])):
                spared.add(pid)
            else:
                take(table[pid], service, "child", origin or via)

    for proc, service, via in roots:
        add(proc, service, via)
    members = session_members(table) if pending else {}
    for ident, service, origin in pending:      # grows as leaders are taken: breadth first
        for pid in members.get(ident, ()):
            add(table[pid], service, "session", origin)
    return list(targets.values())


def in_window(table, proc, windows):
    """Whether `proc` runs in one of `windows` (PIDs: a terminal of the editor a service
    opened), not below a procclean there (`make dev` run in that terminal)."""
    for pid in ancestors(table, proc.ppid):
        if pid in windows:
            return True
        if pid in table and is_procclean(table[pid]):
            return False
    return False


def session_members(table):
    """Session or process group ID -> PIDs in it (where the table knows them)."""
    members = {}
    for pid in sorted(table):
        proc = table[pid]
        for ident in set((proc.sid, proc.pgid)):
            if ident is not None and ident > 1:
                members.setdefault(ident, []).append(pid)
    return members


def program_name(command):
    """argv[0]'s base name as ps shows it (a login shell's `-bash` is `bash`)."""
    words = command.split(None, 1)
    return words[0].rsplit("/", 1)[-1].lstrip("-") if words else ""


def is_viewer(proc, viewers=VIEWERS):
    """An editor, pager or viewer (by name, EDITOR_PLACES_RE but not DEBUGGERS_RE)."""
    if program_name(proc.command) in viewers:
        return True
    head = proc.command.split(" -", 1)[0]
    return re.search(EDITOR_PLACES_RE, head) is not None and \
        re.search(DEBUGGERS_RE, os.path.normpath(head)) is None


def is_browser(proc):
    """A web browser's window, not a headless one (a test's), by program or app bundle."""
    return (program_name(proc.command) in BROWSERS
            or re.search(BROWSER_APPS_RE, proc.command) is not None) \
        and "headless" not in proc.command


def is_window(proc):
    """The user's window: a browser or an editor (EDITORS)."""
    return is_browser(proc) or is_viewer(proc, EDITORS)


def is_container_proxy(proc):
    """A container runtime's port forwarder: never a target."""
    return program_name(proc.command) in CONTAINER_PROXIES


def proxy_target(command):
    """(container IP, container port) from docker-proxy's argv; None without a port."""
    ip = re.search(r"\s-container-ip\s+(\S+)", command)
    port = re.search(r"\s-container-port\s+(\d+)", command)
    return (ip.group(1) if ip else None, int(port.group(1))) if port else None


def port_exempt(proc, viewers=VIEWERS):
    """Why a port rule never takes a process: "container", "viewer" (the user's), None."""
    if is_container_proxy(proc):
        return "container"
    return "viewer" if is_viewer(proc, viewers) or is_browser(proc) else None


def containers_publishing(text, port):
    """[(ID, name, image)] of the `docker ps --format` lines publishing host `port`
    (`[::]:8000-8002->80-82/tcp`; `--filter publish=` matches the container's side)."""
    rows = [line.split("\t") for line in text.splitlines()]
    return [tuple(fields[:3]) for fields in rows if len(fields) >= 4 and any(
        int(low) <= port <= int(high or low)
        for low, high in re.findall(r":(\d+)(?:-(\d+))?->", fields[3]))]


_PROCCLEAN_RE = (r"(?:^|\s)(?:\S*/)?procclean(?:\.py)?(?:\s|$)"
                 r"|(?:^|\s)-m\s*(?:[\w.]+\.)?procclean(?:\s|$)")


def is_procclean(proc):
    """Another procclean (a supervisor, a `dev` session): its command line names a
    project path and words like `vite`; only its pidfile or state make it a target."""
    return re.search(_PROCCLEAN_RE, " ".join(proc.command.split()[:6])) is not None


def path_inside(path, roots):
    """Whether `path` is one of the folders `roots` or inside one."""
    if not path:
        return False
    path = os.path.normpath(path)
    return any(root == "/" or path == root or path.startswith(root + "/") for root in roots)


def named_paths(command, cwd=None):
    """Paths a command line names: absolute words (also `--opt=/x`), `a/b` from `cwd`."""
    for word in command.split():
        for part in (word, word.partition("=")[2]):
            if part.startswith("/"):
                yield part
            elif cwd and "/" in part and not part.startswith("-") and "://" not in part:
                yield os.path.join(cwd, part)


class Project(object):
    """The folder whose processes procclean acts on.  `paths`: its real path and the path
    given (command lines name a checkout reached by a symlink either way); `tags`: PID ->
    (project, service); `cwds`: PID -> folder or None; `nested`: nested_checkouts."""

    def __init__(self, path, tags=None, cwds=None):
        self.path = os.path.realpath(path)
        self.paths = tuple(sorted(set((self.path, os.path.normpath(os.path.abspath(path))))))
        self.tags = tags if tags is not None else {}
        self.cwds = cwds if cwds is not None else {}
        self.nested = ()

    def holds(self, proc):
        """Whether its tag, else its folder or a path it names, puts a process inside."""
        tag = self.tags.get(proc.pid)
        if tag is not None:
            return tag[0] == self.path
        folder = self.cwds.get(proc.pid)
        return self.inside(folder) or any(
            self.inside(p) for p in named_paths(proc.command, folder))

    def inside(self, path):
        """Whether `path` is in the project, and not in a checkout nested in it."""
        return path_inside(path, self.paths) and not path_inside(path, self.nested)


def scope_roots(table, service, project, matched, holders, everywhere=False, homes=()):
    """([(process, service, via)], [Outsider]): one service's roots (tagged for it,
    `matched` inside the project or all with `everywhere`, its port's `holders` inside)
    and the matches left outside.  `homes`: see folder_service."""
    roots = [(table[pid], service, "tag") for pid in sorted(project.tags)
             if project.tags[pid] == (project.path, service.name) and pid in table]
    outside = []
    for proc in matched:
        tag = project.tags.get(proc.pid)
        if tag is not None and tag[0] == project.path and tag[1] != service.name \
                and not everywhere:
            continue        # another service of this project's
        if tag is None and not everywhere \
                and folder_service(proc, service, project, homes) is not service:
            continue        # in the folder of another service its pattern finds too
        if everywhere or project.holds(proc):
            roots.append((proc, service, "pattern"))
        else:
            outside.append(Outsider(proc, service, project.cwds.get(proc.pid)))
    # A listener tagged for another service of this project is that service's.
    roots.extend((proc, service, "port") for proc in holders if project.holds(proc)
                 and (project.tags.get(proc.pid) or (None, service.name))[1] == service.name)
    return roots, outside


def folder_service(proc, service, project, homes):
    """Which service an untagged match of `service`'s pattern is: of those whose patterns
    find it, the one starting nearest its folder (two frontends' vite); `service` when
    none starts deeper.  Outside `service`'s folder, in another's beside it, it is that
    other's whatever its pattern (a frontend's `pnpm.* run dev` takes no `pnpm run dev` in
    a Node backend's folder); around it, only if it runs that one's command (runs_command).
    `homes`: (service, the folder it starts in) for each service of the project."""
    folder = project.cwds.get(proc.pid)
    own = [home for other, home in homes if other.name == service.name]
    outside = not path_inside(folder, own)
    best = service
    depth = -1
    for other, home in homes:
        if not path_inside(folder, (home,)):
            continue
        # its own folder wins a tie: two services of one folder both take it, as before
        if other.name == service.name and home.count("/") >= depth:
            best = service
        elif other.name != service.name and home.count("/") > depth and (
                other.matches(proc) or outside and not path_inside(own[0], (home,))
                or runs_command(proc, other.command)):
            best = other
        else:
            continue
        depth = home.count("/")
    return best


def runs_command(proc, command):
    """Whether `proc` runs `command` as ps shows it: its words before the first option
    or placeholder (`npm run dev`; pnpm's `node .../pnpm.cjs run dev`)."""
    head = []
    for word in command.split():
        if re.match(r"^[A-Za-z_]\w*=", word) and not head:
            continue            # PORT=4001 npm run dev: ps shows no assignment
        if word.startswith("-") or "{" in word:
            break
        head.append(re.escape(word))
    return bool(head) and re.search(
        r"(?:^|[\s/])%s(?:\s|$)" % r"\S*\s+".join(head), proc.command) is not None


def start_order(services):
    """The services in start order: each after those its `after` names; a circle: error."""
    chosen = dict((s.name, s) for s in services)
    ordered = []
    done = set()
    path = []

    def visit(service):
        if service.name in done:
            return
        if service.name in path:
            circle = path[path.index(service.name):] + [service.name]
            error = ProcCleanError("err_after_circle", circle=" -> ".join(circle))
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
    """Whether a pidfile may be believed: as root, only if no one else could write it."""
    return euid != 0 or (st_uid == 0 and not st_mode & 0o002
                         and not (st_mode & 0o020 and st_gid != 0))


# ---------------------------------------------------------------------------
# System adapter: the one place that runs ps/lsof/ss, reads /proc, sends signals
# ---------------------------------------------------------------------------

# It also touches the files of running services (pidfiles, logs, state, locks); tests
# replace it with a fake.  init and doctor read and write the project's own set-up files
# directly, through open_regular/read_regular and write_atomic below.  In order: files
# and OSError outcomes; the readers by platform (_Linux: /proc and netlink; _Tools: ps,
# lsof, ss, sockstat text); then what commands ask, by concern, joined in System.

def _which(program):
    """shutil.which without importing shutil (and zlib, bz2, lzma with it)."""
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
        path = os.path.join(folder or ".", program)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


# What an OSError says of its file or process (os_outcome, quietly: nowhere else).
FAILED = "failed"
_ERRNO_OUTCOMES = {errno.ENOENT: GONE, errno.ESRCH: GONE, errno.EPERM: DENIED,
                   errno.EACCES: DENIED, errno.EROFS: DENIED}


def os_outcome(exc, otherwise=FAILED):
    """GONE (no such file or process), DENIED (permissions, read-only) or `otherwise`."""
    return _ERRNO_OUTCOMES.get(exc.errno, otherwise)


class quietly(object):
    """`with quietly() as tried:` ends its block at an OSError (tried.error; its os_outcome
    in tried.outcome).  With `note` (System.note), all but GONE is noted for `path`."""

    outcome = error = None

    def __init__(self, note=None, path=None):
        self.note = note
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, traceback):
        if not isinstance(exc, OSError):
            return False
        self.outcome, self.error = os_outcome(exc), exc
        if self.note is not None and self.outcome != GONE:
            self.note("file_ignored", path=self.path, error=error_text(exc))
        return True


def _read_small(path, dir_fd=None):
    """A whole /proc file, with the fewest system calls (no buffered file object)."""
    fd = os.open(path, os.O_RDONLY, dir_fd=dir_fd)
    try:
        data = os.read(fd, 65536)
        if len(data) == 65536:      # /proc hands over all it has in one read, if it fits
            chunks = [data]
            while len(chunks[-1]) == 65536:
                chunks.append(os.read(fd, 65536))
            data = b"".join(chunks)
    finally:
        os.close(fd)
    return data


def _file_kind(mode):
    import stat
    for test, kind in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return kind
    return "a special file"


def open_regular(path, flags=os.O_RDONLY, nofollow=False):
    """(fd, stat) of `path` if a regular file, never blocking (a FIFO); `nofollow`: no
    symlink.  Else an OSError saying what it is ("a FIFO, not a regular file")."""
    import stat
    flags |= os.O_NONBLOCK | os.O_NOCTTY | (os.O_NOFOLLOW if nofollow else 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise
        try:
            st = os.lstat(path)
        except OSError:
            raise exc
        if stat.S_ISREG(st.st_mode):
            raise
        raise OSError(exc.errno, "%s, not a regular file" % _file_kind(st.st_mode), path)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "%s, not a regular file" % _file_kind(st.st_mode),
                          path)
    except OSError:
        os.close(fd)
        raise
    return fd, st


def _read_fd(fd, limit):
    chunks = []
    left = limit
    while left > 0:
        chunk = os.read(fd, min(left, 65536))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def write_fd(fd, data):
    """Write all of `data` (write(2) may write less, saying why only at the next call)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def read_regular(path, limit=1 << 20, nofollow=False):
    """The first `limit` bytes of a regular file (see open_regular); OSError otherwise."""
    fd, _ = open_regular(path, nofollow=nofollow)
    try:
        return _read_fd(fd, limit)
    finally:
        os.close(fd)


def make_folder_of(path):
    """Make a pidfile's or log's folder as `mkdir -p` (the recipes made tmp/pids/ first)."""
    folder = os.path.dirname(path)
    if folder and not os.path.isdir(folder):
        os.makedirs(folder, exist_ok=True)


def write_atomic(path, data, mode=None):
    """Write `data` to `path` by a fresh temporary file (O_EXCL: none planted) and a
    rename: never half.  `mode`: the new file's (a Makefile keeps its own), else 0644."""
    folder = os.path.dirname(os.path.abspath(path))
    for attempt in range(100):
        tmp = os.path.join(folder, ".%s.%d.%d.tmp" % (os.path.basename(path),
                                                      os.getpid(), attempt))
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                         0o644 if mode is None else mode)
            break
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise
    else:
        raise OSError(errno.EEXIST, "no free temporary name", path)
    try:
        try:
            if mode is not None:
                os.fchmod(fd, mode)     # exactly the old file's, whatever the umask
            write_fd(fd, data)      # never rename half
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with quietly():
            os.remove(tmp)
        raise


def file_stamp(st):
    """What tells one writing of a file from the next: [inode, mtime in ns] (the inode
    alone is handed to the next file at once by most file systems)."""
    return [st.st_ino, st.st_mtime_ns]


def error_text(exc):
    """An OSError as one short phrase: its strerror (our own for odd files)."""
    return exc.strerror or str(exc)


PF_KTHREAD = 0x00200000     # /proc/PID/stat flags: a kernel thread (include/linux/sched.h)
# Stack placed at random at its last exec (not under `setarch -R`, a debugger, or
# kernel.randomize_va_space = 0).
PF_RANDOMIZE = 0x00400000
_CONTROL_AS_PS = dict((c, "?") for c in list(range(32)) + [127])


class _Linux(object):
    """The readers of Linux's /proc and listening sockets (netlink, /proc/net/tcp)."""

    def has_proc(self):
        if self._has_proc is None:
            self._has_proc = sys.platform.startswith("linux") \
                and os.path.exists("/proc/self/stat")
        return self._has_proc

    def _clock_ticks(self):
        return os.sysconf("SC_CLK_TCK")     # asked only where has_proc: Linux has it

    def boot_time(self):
        """Wall-clock time of boot by CLOCK_BOOTTIME, the clock of stat's starttime
        (proc(5)); /proc/uptime has only hundredths, where a reused PID could hide."""
        if self._boot_time is None:
            try:
                # 7 is CLOCK_BOOTTIME on Linux; Python 3.6 has no name for it.
                since_boot = time.clock_gettime(getattr(time, "CLOCK_BOOTTIME", 7))
            except OSError:     # a kernel before 2.6.39
                since_boot = float(_read_small("/proc/uptime").split()[0])
            self._boot_time = self.wall_time() - since_boot
        return self._boot_time

    def boot_id(self):
        """This boot's random id (Linux), None where there is none."""
        if self._boot_id is None:
            self._boot_id = ""
            with quietly():
                self._boot_id = _read_small("/proc/sys/kernel/random/boot_id").decode(
                    "ascii", "replace").strip()
        return self._boot_id or None

    def user_name(self, uid):
        if uid not in self._users:
            import pwd
            try:
                self._users[uid] = pwd.getpwuid(uid).pw_name
            except KeyError:
                self._users[uid] = str(uid)
        return self._users[uid]

    def _table_proc(self, previous):
        """The table from /proc, tags in the same pass (unless `read_tags` is off); with
        `previous` (read moments ago), only PIDs not in it.  Paths are relative to /proc."""
        if not self.has_proc():
            return None
        self.ps_note = "/proc"
        last = self._last_pid()
        if previous is not None and last is not None and self._read_at[1] is previous \
                and self._read_at[0] == last and not self._unsettled:
            table = dict(previous)      # no process was created since: no PID is new
            self._read_at = (last, table)
            return table
        table = {}
        clock = (float(self._clock_ticks()), os.sysconf("SC_PAGE_SIZE") // 1024,
                 self.boot_time(), self.wall_time(), self.euid())
        if previous is None and self.read_tags and self._environs_file is False:
            self._environs = self._remembered_environs()
        previous = previous or {}
        # (this pass settles them: each is read again, or is gone)
        unsettled, self._unsettled = self._unsettled, set()
        proc_fd = os.open("/proc", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            for name in os.listdir(proc_fd):
                if not name.isdigit():
                    continue
                proc = previous.get(int(name))
                if proc is not None and proc.pid in unsettled:
                    proc = None         # read while it exec'd: read it again
                if proc is None:
                    proc = self._read_proc_entry(proc_fd, name, clock)
                if proc is not None:
                    table[proc.pid] = proc
        finally:
            os.close(proc_fd)
        if self._environs is not None:
            self._remember_environs()
        if not previous and self.read_tags and self.may_write:
            self._keep_images(table)
        self._read_at = (last, table)
        return table

    def _last_pid(self):
        """The PID last handed out in this PID namespace (/proc/loadavg, proc(5)): while
        it stays, nothing was created, and no look need list /proc.  None: not our /proc."""
        if not self._proc_is_ours():
            return None
        try:
            return int(_read_small("/proc/loadavg").split()[4])
        except (OSError, ValueError, IndexError):
            return None

    def _proc_is_ours(self):
        """Whether the /proc mounted is this PID namespace's (its `self` is us): else its
        PIDs name other processes than ours."""
        if self._proc_ours is None:
            self._proc_ours = False
            with quietly():
                self._proc_ours = os.readlink("/proc/self") == str(os.getpid())
        return self._proc_ours

    def _read_proc_entry(self, proc_fd, name, clock):
        """One Process from /proc/NAME (None if it exited meanwhile), its tag remembered.
        Hot: stat (owned by the process's user, proc(5)) read here and unpacked by hand."""
        hz, page_kb, boot, now, euid = clock
        try:
            fd = os.open(name + "/stat", os.O_RDONLY, dir_fd=proc_fd)
            try:
                stat = os.read(fd, 4096)
                uid = os.fstat(fd).st_uid
            finally:
                os.close(fd)
            # split once, for the values and for the environment's mark
            fields = stat[stat.rindex(b")") + 2:].split()
            (pid, comm, state, ppid, pgid, sid, cpu_ticks, start_ticks, rss_pages,
             flags, _, threads) = proc_stat_values(stat, fields)
            key = (pid, start_ticks)
            where = name
            if state == "Z" and threads > 1:
                # Its first thread exited (pthread_exit), others run: read through one.
                state = "S"
                where = self._live_thread(proc_fd, name)
            if flags & PF_KTHREAD:
                # A kernel thread has no command line (ps shows [comm]) nor environment.
                cmdline = b""
                self._tags[key] = None
            else:
                cmdline = _read_small(where + "/cmdline", proc_fd)
                if not cmdline and state not in "ZX":
                    # An exec under way (its new arguments not placed yet): read it again.
                    self._unsettled.add(pid)
                if self.read_tags and key not in self._tags:
                    mark = None if self._environs is None else environ_mark(stat, fields,
                                                                            len(cmdline))
                    if mark is not None and mark in self._environs:
                        self._environs_kept.append(mark)
                        self._tags[key] = None
                    else:
                        self._tags[key] = self._read_tag(proc_fd, where, key, state in "ZX",
                                                         uid, euid, mark, fields)
        except (OSError, ValueError, IndexError):
            return None         # gone while we looked (hot loop: no quietly here)
        command = proc_command(cmdline, comm, state)
        user = self._users.get(uid) or self.user_name(uid)
        # Control characters as `?`, as `ps -ef` prints them: `.*` spans them as grep's.
        shown = command if command.isprintable() else command.translate(_CONTROL_AS_PS)
        start = boot + start_ticks / hz
        # (By position: once per process of the machine, keywords cost.)
        return Process(
            pid, ppid, user, command, state in "ZX", start, max(0.0, now - start),
            cpu_ticks / hz, rss_pages * page_kb, "%s %s %d %s" % (user, name, ppid, shown),
            uid, sid, pgid, start_ticks)

    @staticmethod
    def _live_thread(proc_fd, name):
        """The path to a thread of the process at `name` but its first, else `name`."""
        fd = os.open(name + "/task", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0),
                     dir_fd=proc_fd)
        try:
            tids = [tid for tid in os.listdir(fd) if tid != os.path.basename(name)]
        finally:
            os.close(fd)
        return "%s/task/%s" % (name, min(tids, key=int)) if tids else name

    def _read_tag(self, proc_fd, name, key, zombie, uid, euid, mark=None, fields=None):
        """The tag in /proc/NAME/environ (read right after cmdline: the same stack page);
        None for a zombie or another user's; False (read again) for none yet: an exec
        places it after it closes the files (Popen returns then).  `mark`: remembered if
        untagged; `fields`: its stat's, else read here if needed (_tags_by_image)."""
        if zombie or euid not in (0, uid if uid is not None else euid):
            return None
        try:
            environ = _read_small(name + "/environ", proc_fd)
        except OSError:
            return None
        if not environ:
            return False
        tag = tag_in_environ(environ)
        if tag is not None:
            image = self._image_of[key] = self._image(proc_fd, name, fields)
            if image is not None:
                self._images[image] = tag
        elif environ_rewritten(environ):
            self._rewritten.add(key)
            self._image_of[key] = self._image(proc_fd, name, fields)
        elif mark is not None:
            self._environs_new.append(mark)
        return tag

    @staticmethod
    def _image(proc_fd, name, fields):
        """environ_image of the process at /proc/NAME (None if it is gone)."""
        try:
            if fields is None:
                stat = _read_small(name + "/stat", proc_fd)
                fields = stat[stat.rindex(b")") + 2:].split()
            return environ_image(fields)
        except (OSError, ValueError):
            return None

    # Programs that carried a tag.  A process that took its environment's memory for a
    # new name (environ_rewritten) shows its tag no more, but a fork keeps its program's
    # environ_image: one that shares a tagged program's is a fork of it, and carries its
    # tag (SPEC's Scope: a rename).  The program may be gone by then (a daemon's first
    # process exits at once), so commands that may write keep the images of the tagged
    # programs that run, per user, boot and PID namespace, beside the marks.
    IMAGES_FILE = "procclean-images"

    def _tags_by_image(self, table, tags):
        """Add the tags of the processes in `table` whose environment was rewritten."""
        for key in self._rewritten:
            proc = table.get(key[0])
            if proc is None or proc.identity != key or key[0] in tags:
                continue
            image = self._image_of[key]
            if image is not None and image not in self._images:
                self._remembered_images()
            tag = self._images.get(image)
            if tag:
                tags[key[0]] = self._tags[key] = tag

    def _remembered_images(self):
        """The image lines kept by an earlier command (read once), their tags learnt."""
        if self._images_kept is None:
            self._images_kept = set()
            path = self._images_path()
            data = b""
            with quietly():
                if path is not None:
                    data = self._read_own(path)
            lines = data.split(b"\n")
            if lines[0] == self._environs_header():
                self._images_kept = set(lines[1:])
            for line in self._images_kept:
                image, tag = parse_image_line(line)
                if tag is not None:
                    self._images.setdefault(image, tag)
        return self._images_kept

    def _images_path(self):
        """One file a PID namespace: its commands may run beside another's (containers,
        tests), whose images would otherwise replace its own."""
        folder = self.private_folder() if self._proc_is_ours() else None
        namespace = "".join(c for c in self._pid_namespace() if c.isdigit())
        return folder and os.path.join(folder, "%s-%s" % (self.IMAGES_FILE, namespace))

    def _keep_images(self, table):
        """After a whole table read by a command that may write: keep the images of the
        tagged programs that run in it (none: the file goes)."""
        alive = set()
        for key, image in self._image_of.items():
            proc = table.get(key[0])
            if proc is not None and proc.identity == key and image in self._images:
                alive.add(image_line(image, self._images[image]))
        if alive == self._remembered_images():
            return      # (most reads: nothing changed, no path looked up)
        path = self._images_path()
        if path is not None:        # (nowhere private: kept for this command only)
            with quietly():
                if alive:
                    write_atomic(path, b"\n".join([self._environs_header()]
                                                   + sorted(alive)), mode=0o600)
                else:
                    os.unlink(path)
        self._images_kept = alive

    # Environments read before.  Each environment read is a quarter of the table's cost,
    # and it finds escapees (SPEC's Scope): none may be skipped on a guess.  But
    # /proc/PID/environ is fixed at exec, where the kernel records its place (stat's
    # fields 50-51, proc(5)): the same PID, start tick and addresses (environ_mark) show
    # the same environment, and a new program or a child before its exec shows new
    # marks.  So the marks of environments found untagged are kept per user, boot and
    # PID namespace in a private folder, and the next command reads only the others.
    ENVIRONS_FILE = "procclean-environs"
    ENVIRONS_NEW = 32

    def _remembered_environs(self):
        """The marks of environments found untagged before (None: nowhere private)."""
        self._environs_kept, self._environs_new = [], []
        folder = self.private_folder()
        path = self._environs_file = folder and os.path.join(folder, self.ENVIRONS_FILE)
        if path is None or not self._proc_is_ours():
            return None
        self._environs_head = self._environs_header()
        with quietly():
            lines = self._read_own(path).split(b"\n")
            if lines[0] == self._environs_head:
                return set(lines[1:])
        return set()

    def _read_own(self, path):
        """A file kept in the private folder: its bytes if this user owns it, else b""."""
        fd, st = open_regular(path, nofollow=True)
        try:
            return _read_fd(fd, 64 << 20) if st.st_uid == self.euid() else b""
        finally:
            os.close(fd)

    def _remember_environs(self):
        """Keep the marks this table found untagged (gone processes' dropped): rewritten if
        none are kept, ENVIRONS_NEW are new or half are gone (a few are cheap to reread)."""
        kept, new = self._environs_kept, self._environs_new
        if self.may_write and (len(new) >= self.ENVIRONS_NEW or (new and not self._environs)
                               or len(kept) * 2 < len(self._environs)):
            with quietly():
                write_atomic(self._environs_file, b"\n".join(
                    [self._environs_head] + kept + new), mode=0o600)
        self._environs = None

    def _environs_header(self):
        """What the remembered marks hold for: this format, boot and PID namespace."""
        return ("procclean-environs 1 %s %s" % (self.boot_id(), self._pid_namespace())
                ).encode("ascii", "replace")

    @staticmethod
    def _pid_namespace():
        """This PID namespace's name (`pid:[4026531836]`), "" where it cannot be read."""
        namespace = ""
        with quietly():
            namespace = os.readlink("/proc/self/ns/pid")
        return namespace

    def private_folder(self):
        """A folder only this user can write (owner, mode, not a link) for files kept
        between commands (the marks, keepers' bytecode), else None."""
        euid = self.euid()
        for folder, create in self.private_folders:
            try:
                st = os.lstat(folder)
            except OSError as exc:
                if not (create and self.may_write) or exc.errno != errno.ENOENT:
                    continue
                with quietly():
                    os.mkdir(folder, 0o700)
                try:
                    st = os.lstat(folder)
                except OSError:
                    continue
            # a folder (not a link), ours, that no one else can write into
            if st.st_mode & 0o170000 == 0o040000 and st.st_uid == euid \
                    and not st.st_mode & 0o022:
                return folder
        return None

    def _proc_tags(self, table):
        """process_tags from /proc/PID/environ, remembered per process.  Every one is
        read: a tag finds a process that left all else behind (setsid, double fork, new
        name or folder: SPEC's Scope).  What the table's pass did not read is read here."""
        euid = self.euid()
        cache = self._tags
        tags = {}
        proc_fd = None
        try:
            for pid, proc in table.items():
                key = proc.identity
                tag = cache.get(key, False)         # False: not read yet, or again
                if tag is False:
                    if proc_fd is None:
                        proc_fd = os.open("/proc", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
                    tag = cache[key] = self._read_tag(proc_fd, str(pid), key, proc.zombie,
                                                      proc.uid, euid)
                if tag:
                    tags[pid] = tag
        finally:
            if proc_fd is not None:
                os.close(proc_fd)
        if self._rewritten:
            self._tags_by_image(table, tags)
        return tags

    def _proc_cwds(self, pids):
        found = {}
        for pid in pids:
            with quietly():     # gone, or not ours to read
                try:
                    folder = os.readlink("/proc/%d/cwd" % pid)
                except OSError:
                    # Its first thread exited while others run: the folder is theirs.
                    where = self._live_thread(None, "/proc/%d" % pid)
                    if where == "/proc/%d" % pid:
                        raise
                    folder = os.readlink(where + "/cwd")
                if folder.endswith(" (deleted)"):
                    folder = folder[:-len(" (deleted)")]
                found[pid] = folder
        return found

    def proc_stat(self, pid):
        """The ProcStat of `pid` from /proc, or None if it is gone."""
        try:
            return parse_proc_stat(_read_small("/proc/%d/stat" % pid))
        except (OSError, ValueError, IndexError):
            return None

    def exit_status(self, pid):
        """The wait status a <defunct> `pid` left (/proc/PID/stat's 52nd field): 0 when
        there is none (exited with 0, reaped, not a zombie), None where no /proc (or Linux
        before 3.5) keeps it."""
        if not self.has_proc():
            return None
        fields = []
        with quietly():
            fields = _read_small("/proc/%d/stat" % pid).rpartition(b")")[2].split()
        if fields[:1] != [b"Z"]:
            return 0
        return int(fields[49]) if len(fields) > 49 else None

    def runnable(self, pid):
        """Whether a thread of `pid` is running or waiting for a CPU (R in its stat)."""
        with quietly():
            for tid in os.listdir("/proc/%d/task" % pid):
                stat = _read_small("/proc/%d/task/%s/stat" % (pid, tid))
                if parse_proc_stat(stat).state == "R":
                    return True
        return False

    def _times(self, fields):
        """(start, elapsed, cpu_seconds, rss_kb) of a ProcStat."""
        hz = float(self._clock_ticks())
        start = self.boot_time() + fields.start_ticks / hz
        return (start, max(0.0, self.wall_time() - start), fields.cpu_ticks / hz,
                fields.rss_pages * (os.sysconf("SC_PAGE_SIZE") // 1024))

    def _with_linux_times(self, table):
        """Add /proc's start, times, memory, session and group to a `ps -ef` table."""
        if not self.has_proc():
            return table
        for proc in table.values():
            fields = self.proc_stat(proc.pid)
            if fields is not None:
                proc.start, proc.elapsed, proc.cpu_seconds, proc.rss_kb = self._times(fields)
                proc.sid, proc.pgid, proc.start_ticks = \
                    fields.sid, fields.pgid, fields.start_ticks
                if proc.zombie and fields.state == "Z" and fields.threads > 1:
                    self._first_thread_gone(proc, fields)
        return table

    def _first_thread_gone(self, proc, fields):
        """A `<defunct>` ps row whose first thread exited while others run: running."""
        with quietly():
            thread = self._live_thread(None, "/proc/%d" % proc.pid)
            command = proc_command(_read_small(thread + "/cmdline"), fields.comm, "S")
            if proc.line.endswith(proc.command):
                proc.line = proc.line[:len(proc.line) - len(proc.command)] + command
            proc.command, proc.zombie = command, False

    def _running_in_proc(self, proc):
        """still_running from /proc: there, not a zombie, and started when `proc` did."""
        fields = self.proc_stat(proc.pid)
        # A killed process's first thread may be a zombie while the others still exit,
        # its sockets still open: it is gone once it is a zombie alone.
        if fields is None or fields.state == "X" or \
                (fields.state == "Z" and fields.threads <= 1):
            return False
        if proc.start_ticks is not None:
            # Another start tick: the PID now names a process started since.
            return fields.start_ticks == proc.start_ticks
        return proc.start is None or abs(self._times(fields)[0] - proc.start) <= 1.0

    def _proc_net_sockets(self, wanted, state="0A"):
        """[(port, address, family, inode, uid)] in `state` in /proc/net/tcp{,6}, or None."""
        sockets = None
        for path, family in (("/proc/net/tcp", "ipv4"), ("/proc/net/tcp6", "ipv6")):
            with quietly():     # no tcp6 without IPv6
                with open(path, "rb") as f:
                    text = f.read()
                sockets = (sockets or []) + [
                    (port, addr, family, inode, uid)
                    for port, addr, inode, uid in parse_proc_net_tcp(text, family, state)
                    if wanted is None or port in wanted]
        return sockets

    def _netlink_sockets(self, wanted):
        """LISTEN sockets from the kernel's sock_diag netlink interface, as `ss` asks;
        None where it is refused (other systems, old kernels, sandboxes)."""
        import _socket as socket    # `socket` on top of it spends milliseconds on enums
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
        """Listeners for (port, address, family, inode, uid) sockets, with their PIDs."""
        if not sockets:
            return []
        owners = self._socket_owners(set(s[3] for s in sockets))
        return [Listener(port, address, family, pid, None, uid)
                for port, address, family, inode, uid in sockets
                for pid in owners.get(inode) or [None]]

    def connected(self, pids):
        """Whether one of `pids` holds an established TCP connection (None: no /proc)."""
        if not self.has_proc():
            return None
        inodes = set()
        for pid in pids:
            with quietly():
                for fd in os.listdir("/proc/%d/fd" % pid):
                    with quietly():
                        link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
                        if link.startswith("socket:["):
                            inodes.add(int(link[8:-1]))
        found = self._proc_net_sockets(None, state="01") if inodes else None  # ESTABLISHED
        return any(s[3] in inodes for s in found or ())

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
                continue        # gone, or not ours to look into
            for fd in fds:
                try:
                    inode = wanted.get(os.readlink(fd_dir + "/" + fd))
                except OSError:
                    continue
                if inode is not None and int(name) not in owners.setdefault(inode, []):
                    owners[inode].append(int(name))
        return owners


def _ps_o_args(fields):
    """`-o f=` once per field: FreeBSD's ps takes everything after the first `=` of a
    single `-o user=,pid=,...` as that one column's header."""
    return [arg for field in fields for arg in ("-o", field + "=")]


class _Tools(object):
    """The readers of ps, lsof, ss and sockstat: where there is no /proc, or if asked."""

    def _run(self, argv, table=False):
        """The stdout of ps, lsof or ss, run with nothing to reshape it.  For a `table`,
        a ps failing silently is an error, not an empty machine."""
        import subprocess
        env = dict((k, v) for k, v in os.environ.items() if k not in PS_ENV_DROP)
        env["LC_TIME"] = "C"
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=env)
        except OSError as exc:
            if not table:
                return None
            raise ProcCleanError("err_cannot_run", EXIT_FAILED, program=argv[0],
                                 error=exc.strerror)
        out, err = proc.communicate()
        if proc.returncode != 0 and not out.strip():
            if table:
                message = decode_bytes(err).strip().splitlines()
                raise ProcCleanError("err_tool_failed", EXIT_FAILED, command=" ".join(argv),
                                     error=printable(message[0]) if message else
                                     "exit status %d" % proc.returncode)
            # lsof says "nothing found" by status 1 and silence; other silent failures:
            # no answer (an ss or sockstat without these options).
            if not (argv[0] == "lsof" and proc.returncode == 1 and not err.strip()):
                return None
        return out

    def _table_ps_ef(self, previous):
        try:
            out = self._run(["ps", "-ef", "-ww"], table=True)
        except ProcCleanError:
            # BusyBox knows no -w: its plain `ps -ef`, then.
            out = self._run(["ps", "-ef"], table=True)
        processes, has_ppid = parse_ps_ef(out)
        if not has_ppid:
            # BusyBox: `ps -ef` has no PPID; /proc or `ps -o` give the table.
            self.ps_note = "ps has no PPID column"
            return None
        self.ps_note = "ps -ef"
        return self._with_linux_times({p.pid: p for p in processes})

    def _table_ps_o(self, previous):
        self.ps_note = "ps -o"
        out = self._run(["ps", "-A", "-ww"] + _ps_o_args(PS_O_FIELDS), table=True)
        table = {p.pid: p for p in parse_ps_o(out or b"", now=self.wall_time())}
        for proc in table.values():     # now - etime moves with now: within 2 s, the same
            seen = (previous or {}).get(proc.pid)
            if (seen and seen.command == proc.command and seen.start is not None
                    and proc.start is not None and abs(seen.start - proc.start) <= 2.0):
                proc.start = seen.start
        return table

    def _ps_tags(self, table):
        """process_tags from one `ps` that shows environments (macOS -E, the BSDs -e)."""
        flag = "-E" if sys.platform == "darwin" else "-e"
        out = self._run(["ps", "-A", "-ww", flag, "-o", "pid=", "-o", "command="])
        return parse_ps_environ(out or b"", dict((pid, proc.command)
                                                 for pid, proc in table.items()))

    def _lsof_cwds(self, pids):
        out = self._run(["lsof", "-a", "-d", "cwd", "-Fn", "-p", ",".join(map(str, pids))]) \
            if pids and _which("lsof") else None
        return parse_lsof_cwd(out or b"")

    def _ps_still_running(self, procs):
        """still_running from one `ps` call that tells zombies and reused PIDs for all;
        ps gives elapsed time in whole seconds, so starts within 2 s are equal."""
        unknown = [proc for proc in procs if self._pid_exists(proc.pid)]
        if not unknown:
            return []
        fields = ("pid", "stat", "etime", "ppid", "args")
        out = self._run(["ps"] + _ps_o_args(fields) + ["-p",
                        ",".join(str(p.pid) for p in unknown)])
        rows = {p.pid: p for p in parse_ps_o(out or b"", fields, now=self.wall_time())}
        return [proc for proc in unknown if proc.pid in rows and not rows[proc.pid].zombie
                and (proc.start is None or rows[proc.pid].start is None
                     or rows[proc.pid].start - proc.start <= 2.0)]

    def _pid_exists(self, pid):
        with quietly() as tried:
            os.kill(pid, 0)
        return tried.outcome != GONE    # DENIED: there, another user's

    def _ps_start_time(self, pid):
        out = self._run(["ps", "-o", "etime=", "-p", str(pid)])
        seconds = parse_duration(out.decode("ascii", "replace")) if out else None
        if seconds is None:
            return None
        return self.wall_time() - seconds - 1.0     # etime counts whole seconds


PS_SOURCES = ("auto", "proc", "ps", "pso")


class _Processes(object):
    """System's process table, tags and folders: /proc (_Linux), else ps, lsof (_Tools)."""

    self_pid = staticmethod(os.getpid)
    parent_pid = staticmethod(os.getppid)
    euid = staticmethod(os.geteuid)

    # Where the process table comes from, tried in order until one answers (not None).
    TABLE_READERS = {"proc": ("proc",), "ps": ("ps_ef", "proc", "ps_o"), "pso": ("ps_o",)}

    def process_table(self, previous=None):
        """{pid: Process} of the machine, in one pass; `previous`: read only new PIDs."""
        source = self.ps_source
        if source == "auto":
            source = "proc" if self.has_proc() else "pso"
        for name in self.TABLE_READERS[source]:
            table = getattr(self, "_table_" + name)(previous)
            if table is not None:
                return table
        raise ProcCleanError("err_no_table", EXIT_FAILED)

    def process_tags(self, table):
        """{pid: (project, service)} of the processes in `table` that carry a tag."""
        return self._proc_tags(table) if self.has_proc() else self._ps_tags(table)

    def process_cwds(self, pids):
        """{pid: working directory, or None where it cannot be read}."""
        pids = sorted(set(pids))
        found = self._proc_cwds(pids) if self.has_proc() else self._lsof_cwds(pids)
        return dict((pid, found.get(pid)) for pid in pids)


class _Signals(object):
    """System's signals, and whether a process is still the one that got them."""

    def send_signal(self, pid, signum):
        """Send a signal; raises OSError (ESRCH, EPERM) as os.kill does."""
        if pid < 2:
            raise ValueError("refusing to signal PID %d" % pid)
        os.kill(pid, signum)

    def same_process(self, proc):
        """Whether `proc.pid` still names that process (same start tick, where told)."""
        if proc.start_ticks is None or not self.has_proc():
            return True
        fields = self.proc_stat(proc.pid)
        return fields is not None and fields.start_ticks == proc.start_ticks

    def started_by(self, proc, when):
        """Whether `proc` started no later than the wall-clock time `when` (None: no
        telling): in clock ticks on Linux (the same tick counts), else whole seconds."""
        if proc.start_ticks is not None and self.has_proc():
            hz = float(self._clock_ticks())
            # A file's mtime is up to a jiffy behind (coarse clock): `CMD & echo $! >
            # PIDFILE`, written after CMD started, could read as earlier (a reused PID).
            try:
                step = time.clock_getres(5)     # CLOCK_REALTIME_COARSE (Linux)
            except (AttributeError, OSError):
                step = 0.01         # one jiffy at the lowest HZ
            later = when + step + 0.001 - self.boot_time()    # (1 ms: boot_time's error)
            return proc.start_ticks <= int(later * hz)
        start = proc.start if proc.start is not None else self.start_time(proc.pid)
        return None if start is None else start <= when + 1.0

    def still_running(self, procs):
        """Those of `procs` still running as themselves (a zombie, a reused PID: gone)."""
        if self.has_proc():
            return [proc for proc in procs if self._running_in_proc(proc)]
        return self._ps_still_running(procs)

    def sleep_until_gone(self, procs, seconds):
        """Sleep until all `procs` exited or `seconds` pass: woken by a pidfd each (Linux
        5.3, Python 3.9; readable once a zombie), else (or refused) a plain sleep."""
        pidfd_open = getattr(os, "pidfd_open", None)
        if pidfd_open is None or not self.has_proc():
            return self.sleep(seconds)
        import select           # (a shared library: loaded only when there is a wait)
        poller = select.poll()
        fds = set()
        try:
            for proc in procs:
                try:
                    fd = pidfd_open(proc.pid)
                except OSError as exc:
                    if exc.errno == errno.ESRCH:
                        continue            # gone already
                    return self.sleep(seconds)      # ENOSYS, or a seccomp filter's EPERM
                fds.add(fd)
                poller.register(fd, select.POLLIN)
            deadline = self.clock() + seconds
            while fds:
                left = deadline - self.clock()
                if left <= 0:
                    break
                for fd, _ in poller.poll(int(left * 1000) + 1):
                    poller.unregister(fd)
                    fds.discard(fd)
                    os.close(fd)
        finally:
            for fd in fds:
                os.close(fd)

    def start_time(self, pid):
        """When `pid` started, in seconds since the epoch; None if unknown or gone."""
        if not self.has_proc():
            return self._ps_start_time(pid)
        fields = self.proc_stat(pid)
        return self._times(fields)[0] if fields else None

    def can_freeze(self):
        """Whether stop can SIGSTOP its targets and see it take effect (/proc)."""
        return self.has_proc()

    def in_foreground(self, proc):
        """Whether `proc` is in its terminal's foreground group (a job a shell waits for:
        a SIGSTOP would make the shell take the terminal back)."""
        fields = self.proc_stat(proc.pid)
        return fields is not None and fields.tpgid > 0 and fields.tpgid == fields.pgid

    def wait_stopped(self, procs, timeout):
        """Wait until each of `procs` is stopped, gone or a zombie, or `timeout` passes:
        a SIGSTOP is acted on when its process next runs, not when kill() returns."""
        deadline = self.clock() + timeout
        pending = list(procs)
        delay = 0.0002      # a sleeping process stops within a fraction of a millisecond
        while pending:
            pending = [p for p in pending if self._not_stopped(p)]
            if not pending or self.clock() >= deadline:
                return pending
            self.sleep(delay)
            delay = min(delay * 2, 0.002)
        return pending

    def _not_stopped(self, proc):
        fields = self.proc_stat(proc.pid)
        if fields is None or (proc.start_ticks is not None
                              and fields.start_ticks != proc.start_ticks):
            return False
        state = fields.state
        if state == "Z" and fields.threads > 1:     # its first thread exited: the others'
            state = "X"
            with quietly():
                thread = self._live_thread(None, "/proc/%d" % proc.pid)
                state = parse_proc_stat(_read_small(thread + "/stat")).state
        return state not in "TtZX"


class _Listeners(object):
    """System's listening sockets, and the containers that publish a port."""

    def listeners(self, ports=None):
        """TCP listeners with their PIDs, on `ports` or all, from the first source that
        answers: on Linux netlink sock_diag, /proc/net/tcp{,6}, then tools; else tools."""
        if self.ports_source != "auto":
            sources = [self.ports_source]
        elif os.path.exists("/proc/net/tcp"):
            sources = ["netlink", "proc", "lsof", "ss"]
        else:
            sources = ["lsof", "sockstat", "ss"]
        wanted = None if ports is None else set(p for p in ports if p is not None)
        found = self._listeners_from(sources, wanted)
        return found if wanted is None else [l for l in found if l.port in wanted]

    # PROCCLEAN_PORTS value -> (what doctor calls it, the reader: a _Linux method giving
    # sockets, or a tool's argv and the parser of its output; None: no answer).
    LISTENER_READERS = {
        "netlink": ("netlink sock_diag", "_netlink_sockets"),
        "proc": ("/proc/net/tcp", "_proc_net_sockets"),
        "lsof": ("lsof", (["lsof", "-nP", "-iTCP", "-sTCP:LISTEN", "-F", "pctn"],
                          parse_lsof_fields)),
        "ss": ("ss", (["ss", "-ltnpH"], parse_ss)),
        "sockstat": ("sockstat", (["sockstat", "-46l", "-P", "tcp"], parse_sockstat)),
    }

    def _listeners_from(self, sources, wanted):
        for source in sources:
            name, reader = self.LISTENER_READERS[source]
            if isinstance(reader, str):
                sockets = getattr(self, reader)(wanted)
                found = None if sockets is None else self._proc_listeners(sockets)
            else:
                out = self._run(reader[0]) if _which(reader[0][0]) else None
                found = None if out is None else reader[1](out)
            if found is not None:
                self.ports_note = name
                return found
        if self.ports_source != "auto":
            raise ProcCleanError("err_port_source", EXIT_FAILED, source=self.ports_source)
        # Nothing lists sockets: a port that cannot be bound is taken, by someone unseen.
        self.ports_note = "bind probe (no lsof, sockstat or ss)"
        return [Listener(port, "*", "ipv4") for port in sorted(wanted or ())
                if self.port_in_use(port)]

    def port_in_use(self, port):
        """Whether a bind to `port` fails with EADDRINUSE (TIME_WAIT not counted)."""
        import socket
        # Loopback too: on the BSDs a wildcard bind succeeds beside a 127.0.0.1 server.
        for family, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET, "127.0.0.1"),
                             (socket.AF_INET6, "::"), (socket.AF_INET6, "::1")):
            try:
                probe = socket.socket(family, socket.SOCK_STREAM)
            except OSError:
                continue        # no IPv6 here
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

    def containers_on(self, port):
        """The running containers (ID, name, image) publishing host `port`, asked of
        `docker ps` once per run; None where docker is absent or does not answer."""
        docker = _which("docker")
        if docker is None:
            return None
        cache = self.__dict__.setdefault("_containers", {})
        if docker not in cache:
            code, out, _ = run_program(
                [docker, "ps", "--format", "{{.ID}}\t{{.Names}}\t{{.Image}}\t{{.Ports}}"],
                None, timeout=CONTAINER_QUERY_TIMEOUT)
            cache[docker] = out if code == 0 else None
        text = cache[docker]
        return None if text is None else containers_publishing(text, port)


class _Files(object):
    """System's files: pidfiles and their start records, logs, a supervisor's state."""

    def read_pidfile(self, path):
        """PidfileInfo for `path`, opened once and checked through that descriptor: no
        symlink followed (as root, it could aim at any process), no FIFO read (a hang)."""
        import stat
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        except OSError as exc:
            if os_outcome(exc) == GONE:
                return PidfileInfo(path)
            link = exc.errno == errno.ELOOP or os.path.islink(path)
            return PidfileInfo(path, exists=True, problem="invalid",
                               raw=b"<symbolic link>" if link else b"<unreadable>")
        with quietly() as tried:
            st = os.fstat(fd)
            raw = os.read(fd, 4097) if stat.S_ISREG(st.st_mode) else None
        os.close(fd)
        if tried.error is not None or raw is None:
            what = b"<unreadable>" if tried.error is not None else b"<not a regular file>"
            return PidfileInfo(path, exists=True, raw=what, problem="invalid")
        info = PidfileInfo(path, exists=True, raw=raw[:4096], mtime=st.st_mtime,
                           stamp=file_stamp(st))
        info.pid = parse_pidfile(raw) if len(raw) <= 4096 else None
        if info.pid is None:
            info.problem = "invalid"
        elif not pidfile_owner_trusted(st.st_uid, st.st_mode, st.st_gid, self.euid()):
            info.problem = "untrusted"
        return info

    def removable(self, path):
        """Whether `path` is a regular file, all remove_file removes (`logfile =
        /dev/stdout` or /dev/null, a link, are left: as root, the machine's would go)."""
        import stat
        with quietly():
            return stat.S_ISREG(os.lstat(path).st_mode)
        return False

    def remove_file(self, path):
        """Remove a regular file; True if it was there and is gone.  What is not there
        counts as removed, even in a read-only folder (EROFS); one that stays is noted."""
        if not self.removable(path):
            return False
        with quietly() as tried:
            os.remove(path)
            return True
        if tried.outcome != GONE and os.path.lexists(path):
            self.note("remove_failed", path=path, error=error_text(tried.error))
        return False

    exists = staticmethod(os.path.exists)

    def write_pidfile(self, path, pid, port=None):
        """Write `pid` to `path` atomically, then PIDFILE.start (start, stamp, port); never
        in the place of what is no regular file (`pidfile = /dev/null` or /dev/stdout, a
        link: as root, the rename would put a file where the machine's was)."""
        import json
        if os.path.lexists(path) and not self.removable(path):
            raise OSError(errno.EEXIST, "not a regular file", path)
        make_folder_of(path)
        write_atomic(path, ("%d\n" % pid).encode("ascii"))
        record = self.start_record(pid)
        if record is None:
            return
        if port is not None:
            record["port"] = port
        with quietly():     # without it, the pidfile is judged as one another tool wrote
            record.update(pid=pid, file=file_stamp(os.stat(path)))
            write_atomic(path + START_SUFFIX, json.dumps(record).encode("ascii"))

    def start_record(self, pid):
        """What tells process `pid` from a later one with its PID, for JSON: its start in
        clock ticks since this boot (Linux), else in seconds; None if unreadable."""
        if self.has_proc():
            fields = self.proc_stat(pid)
            return None if fields is None else {"ticks": fields.start_ticks,
                                                "boot": self.boot_id()}
        start = self.start_time(pid)
        return None if start is None else {"start": start}

    def read_start_record(self, info):
        """The pidfile's start record, or None (none, another PID's, or others may write
        it while we run as root)."""
        try:
            fd, st = open_regular(info.path + START_SUFFIX, nofollow=True)
            try:
                text = _read_fd(fd, 4096).decode("ascii")
            finally:
                os.close(fd)
            record = parse_start_record(text)
            if record is None:
                import json
                record = json.loads(text)
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("pid") != info.pid \
                or not pidfile_owner_trusted(st.st_uid, st.st_mode, st.st_gid, self.euid()):
            return None
        return record

    def is_recorded(self, proc, record):
        """Whether `proc` is the process `record` (start_record's) was taken of: True,
        False (its PID was reused since, or the machine rebooted), None (no telling)."""
        if record is None:
            return None
        if "ticks" in record:
            if proc.start_ticks is None:
                return None
            return record.get("boot") == self.boot_id() and \
                record["ticks"] == proc.start_ticks
        start = proc.start if proc.start is not None else self.start_time(proc.pid)
        if start is None or not isinstance(record.get("start"), (int, float)):
            return None
        return abs(start - record["start"]) <= 2.0      # ps: whole seconds each time

    def open_log(self, path):
        """A descriptor appending to a service log, a regular file only.  As root, no
        symlink followed: another user could point it at any file root then writes."""
        make_folder_of(path)
        return open_regular(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                            nofollow=self.euid() == 0)[0]

    def read_tail(self, path, lines=LOG_TAIL_LINES):
        """The last lines of a regular file's last 64 KiB as text, the first kept even
        when cut (a longer last line shows its end); OSError otherwise."""
        return self.read_log(path, 65536, whole=False)[0][-lines:] if lines > 0 else []

    def read_log(self, path, limit=LOG_SCAN_BYTES, whole=True):
        """(lines, mtime) of a regular file's last `limit` bytes (`whole`: a first line
        cut is left out); OSError if it is not one."""
        fd, st = open_regular(path)
        try:
            os.lseek(fd, max(0, st.st_size - limit), 0)
            data = _read_fd(fd, limit)
        finally:
            os.close(fd)
        lines = decode_bytes(data).splitlines()
        if whole and st.st_size > limit and lines:
            lines = lines[1:]       # the first line read is cut
        return [printable(line) for line in lines], st.st_mtime

    def tail(self, path, lines=LOG_TAIL_LINES):
        """The last lines of a file, as text ([] if unreadable: noted unless absent)."""
        with quietly(self.note, path):
            return self.read_tail(path, lines)
        return []

    def rotate_log(self, path):
        """Keep the previous log as PATH.1 (a regular file only, not what a link names)."""
        import stat
        with quietly():
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode) and st.st_size > 0:
                os.replace(path, path + ".1")

    def append_log(self, path, message, create=False):
        """Add one timestamped line of procclean's own to a service's log."""
        if not create and not os.path.exists(path):
            return
        now = self.wall_time()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
        line = "[procclean %s.%03d] %s\n" % (stamp, int(now * 1000) % 1000, message)
        with quietly(self.note, path):
            fd = self.open_log(path)
            try:
                os.write(fd, line.encode("utf-8", "surrogateescape"))
            finally:
                os.close(fd)

    def log_position(self, path):
        """(size, inode) of a log, to follow it from its current end."""
        with quietly():
            st = os.stat(path)
            return st.st_size, st.st_ino
        return 0, None

    def read_new(self, path, offset, identity, rotated=True):
        """What was appended to a log since `offset`: (bytes, new offset, inode).  A log
        replaced (the old kept as .log.1) is read anew after the old one's end; one
        truncated anew; one missing waited for; one not a regular file is an OSError."""
        try:
            fd, st = open_regular(path)
        except OSError as exc:
            if os_outcome(exc) != GONE:
                raise
            return b"", offset, identity
        old = b""
        try:
            if st.st_ino != identity and rotated:
                with quietly():
                    rest = self.read_new(path + ".1", offset, identity, False)
                    old = rest[0] if rest[2] == identity else b""
            if st.st_ino != identity or st.st_size < offset:
                offset, identity = 0, st.st_ino
            os.lseek(fd, offset, 0)
            data = _read_fd(fd, st.st_size - offset)
        finally:
            os.close(fd)
        return old + data, offset + len(data), identity

    def read_state(self, path):
        """A supervisor's state file as a dict ({} when absent or unreadable; a link
        or anything not a regular file is noted)."""
        raw = b""
        with quietly(self.note, path):
            raw = read_regular(path, nofollow=True)
        if not raw:
            return {}   # no supervisor: json (1-2 ms to import) is not needed
        import json
        try:
            data = json.loads(raw.decode("utf-8"))
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def write_state(self, path, data):
        import json
        with quietly():     # the state is a convenience for status; supervising goes on
            write_atomic(path, json.dumps(data).encode("ascii"))


class _Launching(object):
    """System's starting of services: in the background, or piped (dev)."""

    def spawn(self, argv, cwd, logfile, new_session=True, env=None):
        """Popen of `argv` in the background: own session, output appended to `logfile`."""
        import subprocess
        try:
            log = self.open_log(logfile)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, logfile)
        os.set_blocking(log, True)  # the service writes through it: a plain descriptor
        try:
            return subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, close_fds=True,
                                    start_new_session=new_session, env=env)
        finally:
            os.close(log)

    def spawn_piped(self, argv, cwd, env):
        """(Popen, read end) of `argv` with stdout and stderr in one new pipe (1 MB on
        Linux), in a session of its own: Ctrl-C and SIGHUP reach procclean alone, which
        stops every service gracefully (uvicorn dies on SIGHUP without its shutdown)."""
        import subprocess
        read_end, write_end = os.pipe()
        try:
            if sys.platform.startswith("linux"):
                import fcntl
                with quietly():
                    fcntl.fcntl(read_end, 1031, 1 << 20)    # F_SETPIPE_SZ
            child = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL,
                                     stdout=write_end, stderr=write_end, close_fds=True,
                                     start_new_session=True, env=env)
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        os.set_blocking(read_end, False)
        return child, read_end

    def keep_log(self, source, log_fd):
        """A keeper (keep_log) copying the pipe `source` to the log `log_fd` and to a new
        pipe: its read end.  `source` and `log_fd` are closed here or by the keeper."""
        import subprocess
        folder, name = os.path.split(os.path.abspath(__file__))
        module = os.path.splitext(name)[0]
        # as a module where it can be one: from its bytecode, not compiled each time
        argv = [sys.executable or "python3", "-S"] + (
            ["-m", module] if module.isidentifier() else [name]) + ["keep-log", str(log_fd)]
        env = dict(os.environ)
        env.pop("PYTHONSAFEPATH", None)         # (it would keep -m from finding it)
        private = sys.version_info >= (3, 8) and self.private_folder()
        if private:
            # ...kept where this user alone writes (3.8+): with no writable __pycache__,
            # or PYTHONDONTWRITEBYTECODE, each keeper would compile this whole file
            env["PYTHONPYCACHEPREFIX"] = os.path.join(private, "pycache")
            env.pop("PYTHONDONTWRITEBYTECODE", None)
        read_end, write_end = os.pipe()
        try:
            os.set_blocking(source, True)       # (shared with the keeper: it waits)
            os.set_blocking(log_fd, True)
            subprocess.Popen(argv, cwd=folder, stdin=source, stdout=write_end,
                             stderr=subprocess.DEVNULL, pass_fds=(log_fd,), env=env,
                             start_new_session=True)
        except OSError:
            # No keeper process (no python, no process left): a thread of dev's keeps it.
            import threading
            threading.Thread(target=keep_log, args=([log_fd], source, write_end),
                             daemon=True).start()
            source = log_fd = write_end = None      # the thread's to close
        finally:
            for fd in (write_end, log_fd, source):
                if fd is not None:
                    os.close(fd)
        os.set_blocking(read_end, False)
        return read_end


class _Locks(object):
    """System's per-service locks: flock on a lock file (dropped when its holder dies)."""

    def lock(self, path, wait, waiting=None):
        """(ServiceLock, None), or (None, the holder's PID or None) when another held the
        lock file `path` for `wait` seconds; `waiting(holder)` once the wait lasts
        LOCK_ANNOUNCE.  OSError when `path` is not a regular file."""
        began = self.clock()
        deadline = began + wait
        delay = 0.005
        retries = 0
        while True:
            result = self._try_flock(path)
            if result is None and retries < 100:
                retries += 1            # the file changed under us: look again at once
                continue
            handle, holder = result or (None, None)
            if handle is not None or self.clock() >= deadline:
                return handle, holder
            if waiting is not None and self.clock() - began >= LOCK_ANNOUNCE:
                waiting(holder)
                waiting = None
            self.sleep(min(delay, max(0.0, deadline - self.clock())))
            delay = min(delay * 2, 0.05)

    def _try_flock(self, path):
        import fcntl
        # For writing, else read-only (in a read-only folder a lock file still locks).
        for flags in (os.O_RDWR | os.O_CREAT, os.O_RDONLY):
            try:
                fd, st = open_regular(path, flags, nofollow=True)
                break
            except OSError as exc:
                if os_outcome(exc) == FAILED:
                    raise
        else:
            # A lock file that cannot be made or opened (gone, denied) locks nothing.
            return ServiceLock(path, None, "none"), None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = None
            with quietly():
                os.lseek(fd, 0, 0)
                holder = parse_pidfile(_read_fd(fd, 64))
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return None, holder
            return ServiceLock(path, None, "none"), None    # a file system without flock
        # Its last holder removes the file: a lock on a file no longer at `path` is none.
        moved = True
        with quietly():
            moved = not os.path.samestat(os.stat(path), st)
        if moved:
            os.close(fd)
            return None
        with quietly():     # a read-only lock file still locks; it just cannot say by whom
            # Truncated only when a dead holder left its PID: on ext4 a file truncated
            # and rewritten is flushed to disk at close (auto_da_alloc).
            if os.fstat(fd).st_size:
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, 0)
            os.write(fd, ("%d\n" % os.getpid()).encode("ascii"))
        return ServiceLock(path, fd, "flock"), None

    def unlock(self, handle):
        """Remove a lock's file while still holding it (see _try_flock), then release."""
        if handle.kind == "flock":
            with quietly():
                if os.path.samestat(os.fstat(handle.fd), os.stat(handle.path)):
                    os.remove(handle.path)
            os.close(handle.fd)


class System(_Linux, _Tools, _Processes, _Signals, _Listeners, _Files, _Launching, _Locks):
    """Access to the real machine.  `ps_source`: auto or a TABLE_READERS key;
    `ports_source`: auto or a LISTENER_READERS key."""

    def __init__(self, ps_source="auto", ports_source="auto"):
        self.ps_source = ps_source or "auto"
        self.ports_source = ports_source or "auto"
        self._users = {}
        self._boot_time = None
        self._boot_id = None
        self._has_proc = None
        self._tags = {}
        self.read_tags = True           # off: a command that never acts on a tag
        self._images = {}               # environ_image -> tag (see _tags_by_image)
        self._image_of = {}             # identity -> environ_image, of those
        self._rewritten = set()         # identities (see environ_rewritten)
        self._images_kept = None        # the lines of IMAGES_FILE, once read
        self.private_folders = ()       # (folder, create it) where marks are kept
        # Whether this command may write there: not one that only looks (SPEC).
        self.may_write = False
        self._environs = None
        self._environs_file = False     # False: not looked for yet (once per System)
        self._unsettled = set()         # PIDs read with no command line yet (an exec)
        self._proc_ours = None          # see _proc_is_ours
        self._read_at = (None, None)    # (_last_pid, the table) of the last /proc read
        self.ps_note = None
        self.ports_note = None
        self.reporter = None            # warn(key, values) for notes, set by run()
        self.notes = []                 # (key, values) noted while no reporter was set
        self._noted = set()

    def note(self, key, **values):
        """A file's problem that does not stop the command: said once, on stderr."""
        seen = (key, values.get("path"))
        if seen in self._noted:
            return
        self._noted.add(seen)
        if self.reporter is not None:
            self.reporter(key, values)
        else:
            self.notes.append((key, values))

    clock = staticmethod(time.monotonic)
    sleep = staticmethod(time.sleep)
    wall_time = staticmethod(time.time)

    def http_get(self, url, timeout):
        """GET `url` bypassing any proxy: (status or None, seconds, error text)."""
        import socket
        import urllib.error
        import urllib.request
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        started = self.clock()
        try:
            with opener.open(url, timeout=timeout) as response:
                status = response.getcode()
            return status, self.clock() - started, None
        except urllib.error.HTTPError as exc:
            return exc.code, self.clock() - started, None
        except (OSError, ValueError) as exc:      # URLError and timeouts are OSErrors
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
        "signalled": "{warn} {svc} PID {pid} got SIGTERM and may still run: {cmd}",
        "would_signal": "would send {sig} to {svc} PID {pid}: {cmd}",
        "would_remove": "would remove {path}",
        "removed": "removed {path}",
        "summary_stopped": "{svc}: {n} process(es) stopped",
        "summary_killed": "{svc}: {n} process(es) stopped, {k} of them with SIGKILL after {after}",
        "summary_hurried": "{svc}: {n} process(es) stopped, {k} of them with SIGKILL after {after} (Ctrl-C again)",
        "summary_failed": "{fail} {svc}: {n} process(es) could not be stopped",
        "summary_interrupted": "{warn} {svc}: stop interrupted; {n} process(es) may still run (to stop them: {stop})",
        "nothing": "{svc}: nothing running",
        "force_header": "{clean} force-cleaning {svc} processes...",
        "pidfile_invalid": "{warn} {path}: not a valid PID ({content})",
        "pidfile_untrusted": "{warn} {path}: writable by other users, not trusted while running as root",
        "pidfile_reused": "{warn} {path}: PID {pid} now belongs to a process started after the pidfile was written ({cmd}); left alone",
        "pidfile_unknown_start": "{warn} {path}: cannot tell when PID {pid} started ({cmd}); left alone",
        "pidfile_foreign": "{warn} {path}: PID {pid} is not this project's {svc} but a process outside the project, or another project's or service's ({cmd}; {where}); left alone",
        "pidfile_protected": "{warn} {path}: PID {pid} is procclean itself or one of its parents; not signalled",
        "clean_kept": "{warn} {path}: kept, {svc} still runs (PID {pid})",
        "clean_log_kept": "{warn} {path}: kept, {svc} still runs and writes to it",
        "clean_nothing": "nothing to clean",
        "already_running": "{ok} {svc} is already running (PID {pids})",
        "already_running_dev": "{ok} {svc} is already running (PID {pids}) in the dev session of another terminal (procclean PID {dev}): its output shows there",
        "port_taken": "{fail} cannot start {svc}: port {port} is taken by PID {pid} ({cmd}, in {cwd})",
        "port_taken_unknown": "{fail} cannot start {svc}: port {port} is taken by {holder}",
        "would_start": "would start {svc}: {cmd} (in {cwd}, log {log})",
        "started": "{ok} started {svc} PID {pid}: {cmd} (log {log})",
        "start_failed": "{fail} {svc} exited at once ({code}); last lines of {log}:",
        "start_stopped_elsewhere": "{fail} {svc} (PID {pid}) was stopped from another terminal (a stop or restart) before it was up",
        "start_daemonized": "    a command that ends at once with status 0 may have put itself in the background: procclean runs {svc} in the background itself and watches it, so leave out a flag such as --daemon, -D, --daemonize yes, --fork or --detach",
        "dev_daemonized": "    a command that ends with status 0 while dev runs it may have put itself in the background: dev runs {svc} and watches it itself, so leave out a flag such as --daemon, -D, --daemonize yes, --fork or --detach",
        "start_timeout": "{fail} {svc} did not listen on port {port} within {timeout}; last lines of {log}:",
        "start_error": "{fail} cannot start {svc}: {error}",
        "no_program": "{program} is not installed or not on PATH",
        "owned_by": " (owned by {user}, not you: remove {path} or chown it)",
        "no_command": "{fail} cannot start {svc}: no start command configured",
        "listening": "{ok} {svc} listens on port {port}",
        "not_listening_yet": "    {svc} is still starting: it does not listen on port {port} yet (status shows when it does)",
        "start_waiting": "    {svc} (PID {pid}) is starting: waiting for it to listen on port {port} ({timeout} at most)",
        "start_waiting_elsewhere": "    {svc} listens on port {ports}, not on {port}: if {first} is its port, set port = {first} under [{svc}] in procclean.ini (or run init); still waiting for port {port}",
        "start_waiting_idle": "    {svc} (PID {pid}) is starting: waiting for it to settle ({timeout} at most)",
        "status_running": "{ok} {svc}: running, PID {pids}, up {uptime}, CPU {cpu}, memory {mem}",
        "status_stopped": "{off} {svc}: not running",
        "status_port_free": "    port {port}: free",
        "status_elsewhere": "    {svc} listens on port {ports}",
        "status_ports": "ports: offset +{offset} for this checkout ({how}): {ports}",
        "ports_how_fixed": "port_offset = {offset}",
        "ports_how_auto": "port_offset = auto, recorded in {file}",
        "ports_how_unrecorded": "port_offset = auto, recorded at the first start",
        "ports_none_moved": "none moves: each port is set by the environment or --set",
        "offset_not_followed": "{warn} {svc}: port_offset does not move it: it listens on port {port}, the one its command or app names, as in every checkout",
        "offset_proxy_fixed": "{warn} {svc}: {file} proxies to localhost:{port}, {other}'s port in the checkout without an offset; here {other} is on {moved}, so {svc} would reach the other checkout's {other}: make the target read {var} (the README's Vite recipe)",
        "set_proxy_fixed": "{warn} {svc}: {file} proxies to localhost:{port}, {other}'s port before {var} moved it to {moved}: {svc} would reach whatever listens on {port}, not {other}: make the target read {var} (the README's Vite recipe)",
        "django_vite_fixed": "{warn} {svc}: {file} has Django's pages load their scripts from localhost:{port}, but {other} listens on {moved} here: set that port from {var} (int(os.environ.get(\"{var}\", {port})))",
        "port_not_passed": "{warn} PORT={port} in the environment is not what the services get: each gets its own port in PORT ({ports}); to move {svc} there: {setting}",
        "port_set_not_followed": "{warn} {svc}: its port is set to {port} ({var} or --set), but it will listen on the port its command or app names",
        "ports_chosen": "{ok} ports: this checkout uses port offset +{offset} ({ports}), recorded in {file}",
        "ports_moved": "{warn} ports: port {port} is held by PID {pid} in {folder}, not this checkout's: this checkout now uses port offset +{offset} ({ports}), recorded in {file}",
        "offset_unwritten": "{warn} cannot record the port offset in {file}: {error}",
        "status_port_own": "    port {port}: listening, PID {pid} ({cmd})",
        "status_port_stranger": "    port {port}: taken by PID {pid} ({cmd}), not {svc}'s: {what}",
        "status_port_free_it": "      to free it: {free}",
        "holder_leftover": "in this project, but not {svc}'s own process (no pidfile, tag or pattern match names it)",
        "holder_viewer": "an editor or browser forwarding the port; never signalled",
        "holder_container": "{proxy}, forwarding the port of container {names} ({images}); never signalled",
        "holder_proxy": "{proxy}, a container runtime's proxy for a container at {to}; never signalled; which container: {query}",
        "holder_proxy_bare": "{proxy}, a container runtime's proxy; never signalled; which container: {query}",
        "holder_stranger": "user {user}, in {folder}",
        "holder_checkout": "user {user}, in another checkout or project, {folder}: stop it there",
        "holder_unseen": "a process procclean cannot see",
        "holder_unseen_user": "a process of user {user} that procclean cannot see",
        "status_port_unknown": "    port {port}: taken by {holder}",
        "port_nothing": "port {port}: nothing listening",
        "port_unseen": "{fail} port {port}: held by {holder} (run as its owner or root)",
        "port_freed": "port {port}: {n} process(es) stopped",
        "port_container": "{fail} port {port}: held by PID {pid} ({cmd}): {what}",
        "port_protected": "{fail} port {port}: held by PID {pid}, procclean itself or one of its parents; not signalled: {cmd}",
        "port_kept_app": "{fail} port {port}: held by PID {pid} ({user}), an editor or browser; left alone (close or stop its port forwarding there): {cmd}",
        "no_processes": "no matching processes",
        "interrupted": "interrupted",
        "health": "    health {url}: {state}{detail}",
        "healthy": "healthy", "unhealthy": "unhealthy", "no answer": "no answer",
        "supervisor": "    supervisor PID {pid}: {state}, {n} restart(s)",
        "status_dev": "    run by the dev session of procclean PID {pid}, in another terminal: its output shows there",
        "gave_up": "{fail} {svc}: gave up after {n} restart(s) within a minute (last exit: {code})",
        "supervising": "{ok} supervising {svc} (supervisor PID {pid}, log {log})",
        "no_log": "{svc}: no log at {path}",
        "watch_header": "procclean status, every {interval}: {time}",
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
        "d_foreign": "{path}: names PID {pid} ({cmd}), another project's or service's process (by its tag or its folder)",
        "d_leftover": "{svc}: {n} process(es) run that its pidfile does not account for (PID {pids})",
        "d_orphan_match": "{svc}: PID {pid} outlived its parent (now under init) and still matches the pattern: {cmd}",
        "d_orphan_port": "{svc}: PID {pid} outlived its parent (now under init) and still holds port {port}: {cmd}",
        "d_stranger": "port {port} of {svc} is held by PID {pid}, which is not {svc}'s: {cmd}",
        "d_stranger_fix": "check PID {pid} is yours (or move {svc} to another port: {other}), then: {cmd}",
        "d_port_app": "port {port} of {svc} is held by PID {pid} ({user}), an editor or browser, which procclean leaves alone: {cmd}",
        "fix_port_app": "close it, or its port forwarding, there",
        "d_stranger_fix_free": "check PID {pid} is yours, then: {cmd}",
        "d_checkout_fix": "stop it in its checkout, {folder} (kill-port would end that checkout's work), or give each checkout its own ports: port_offset = auto under [procclean] in procclean.ini",
        "d_checkout_stop": "stop it in its checkout, {folder} (kill-port would end that checkout's work); port_offset does not move {svc}: start says how it would",
        "d_port_holder": "port {port} of {svc} is held by PID {pid} ({cmd}): {what}",
        "d_exempt_fix": "{cmd} (or move {svc} to another port: {other})",
        "d_move_fix": "move {svc} to another port: {other}",
        "d_by_hand": "free port {port} where what holds it runs (procclean never signals it)",
        "init_found": "{ok} found {svc}: {what}",
        "init_nothing": "found neither a Python backend nor a frontend here; nothing written",
        "init_missing": "{warn} {hint}, but init found no {svc}: it looked for {looked}. To run it with procclean, add this to procclean.ini (and its name to services), with your values:",
        "miss_depends": "{file} depends on {what}",
        "miss_dev_script": "{file} uses a frontend framework and has no dev script (its scripts: {scripts})",
        "looked_backend": "an app object (FastAPI(), Flask(), ...) in {files}, a manage.py, a server command in a README, pyproject tasks, package.json scripts or a Procfile",
        "looked_worker": "a Celery(...) app, an arq WorkerSettings class or dramatiq actors in the modules of {base}, a worker command (celery ... worker, rq worker, arq, dramatiq) in a README, pyproject tasks, package.json scripts or a Procfile",
        "looked_frontend": "a dev, serve or dev-server start script in {files}",
        "init_wrote": "{ok} wrote {path}",
        "init_would_write": "would write {path}:",
        "init_paste": "Makefile targets to paste (or run {prog} init --makefile):",
        "init_appended": "{ok} added to Makefile: {targets}",
        "init_kept": "Makefile already has: {targets}; not duplicated",
        "init_secret": "{warn} {svc}: its command takes {names} from the environment, not their values from .env (procclean.ini is committed, .env is not): export them (`export` in the Makefile) or set them",
        "init_own_stop": "{warn} make stop runs the Makefile's own recipe, which may not stop what the added make start starts: {prog} stop does",
        "init_would_append": "would add to Makefile:",
        # -- ownership --
        "outside_left": "{svc}: left alone outside this project: {items} (show-processes lists them, --everywhere takes them)",
        "outside_item": "PID {pid} ({user}, {folder}) {cmd}",
        "outside_more": "{n} more",
        "outside_process": "{svc}: PID {pid} matches but is outside this project ({folder}), user {user}; left alone: {cmd}",
        "status_outside": "    outside this project, not counted: {items} (show-processes lists them, --everywhere includes them)",
        "folder_unknown": "folder unknown",
        "found_late": "{svc}: {n} of them appeared while stopping (found by looking again)",
        "port_still_held": "{warn} {svc}: port {port} is still held by PID {pid} in {folder}, not this project's: {cmd}\n    to free it: {free}",
        "port_still_unseen": "{warn} {svc}: port {port} is still held by {holder}",
        "port_still_held_kind": "{warn} {svc}: port {port} is still held by PID {pid} ({cmd}): {what}",
        "port_still_free": "    to free it: {free}",
        "port_users_app": "{warn} {svc}: port {port} is held by PID {pid} ({user}), an editor or browser; left alone (close or stop its port forwarding there): {cmd}",
        # -- init --
        "fix_run": "{cmd}",
        "fix_config": "correct {field} of [{svc}] in {file} (or {env})",
        "fix_cwd": "create it, or set cwd of [{svc}] in {file}",
        "fix_command": "correct command of [{svc}] in {file}",
        "fix_program": "install {program}, or set command of [{svc}] in {file}",
        "d_missing_modules": "{svc}: {python} cannot import {modules}, which its start command needs",
        "d_python_fails": "{svc}: {python} does not run: {error}",
        "d_imports_unchecked": "{svc}: not checked whether {python} can import {modules}: `{tool} run` would create or sync its environment, and doctor changes nothing",
        "doctor_note": "{off} {text}\n    to check it yourself: {fix}",
        "port_hint": "    if PID {pid} is yours, free the port: {free}; or pick another port: {other}",
        "port_hint_other": "    pick another port: {other}",
        "port_hint_checkout": "    PID {pid} runs in another checkout or project, {folder}: stop it there",
        "port_hint_offset": "    or give each checkout its own ports: port_offset = auto under [procclean] in procclean.ini",
        "port_hint_holder": "    PID {pid} is {what}{free}",
        "port_hint_then": "; to free the port: {free}",
        "port_hint_free": "    if PID {pid} is yours, free the port: {free}",
        "port_hint_fixed": "    {svc} does not take its port from procclean (its command has no {{port}} and nothing it runs reads $PORT): to move it, put {{port}} in its command ({example}) or read PORT in the app",
        "port_hint_code": "    {svc} does not take its port from procclean (nothing it runs is seen to read $PORT): to move it, have the app read PORT where it sets its port",
        "port_hint_app": "    PID {pid} is an editor or browser (forwarding the port?), which procclean leaves alone: close it there",
        "tc_env": "the active $VIRTUAL_ENV {where}, inside the project",
        "tc_env_outside": "the active $VIRTUAL_ENV {where}, which is NOT this project's (it is outside the project), because the project has no .venv, venv or lock file of its own",
        "tc_ignored": "; the active $VIRTUAL_ENV {where} is not this project's (it is outside it): not used",
        "python_chosen": "{warn} {svc} runs with {python} ({why})",
        "tc_venv": "the virtual environment {where}",
        "tc_lock": "{lock} makes it a {tool} project",
        "tc_lock_no_tool": "{lock} names {tool}, which is not installed; the interpreter running procclean instead",
        "tc_self": "no virtual environment or lock file found; the interpreter running procclean",
        "tc_node_lock": "{lock} found",
        "tc_node_none": "no lock file found; {tool}",
        "tc_node_command": "as its command says; {lock} names {other}",
        "init_python": "{ok} {svc} runs with {python} ({why})",
        "init_node": "{ok} {svc} runs with {tool} ({why})",
        "init_config_kept": "{path} exists: kept as it is (--force writes a fresh one)",
        "init_layout": "make runs procclean as {cmd} ({why})",
        "lay_root": "procclean.py is at the root; -m reuses its cached bytecode",
        "lay_module": "{path} imports as {module} from the root; -m reuses its cached bytecode",
        "lay_script": "{path} cannot be run with -m from the root; run as a script, compiled on each call",
        "init_setuptools_modules": "{warn} procclean.py at the root is a second top-level module to setuptools, which packages this project by finding them itself ({modules}): `pip install .` stops at \"Multiple top-level modules discovered\". Move it to tools/ (setuptools leaves that folder out) and run init again, or name your modules (py-modules)",
        "lay_outside": "{path} is outside this folder; copy it into the repo and run init again",
        "init_gitignore": "add to .gitignore (pidfiles, their state and start records, logs, bytecode, port offset): {lines}",
        "init_make_asked": "asked make what {path} defines (files read: {files})",
        "init_make_text": "no GNU make here: read {path} and its includes as text",
        "init_make_dry": "dry run: read {path} and its includes as text (make would run its $(shell ...) calls and the rules that remake its included files)",
        "init_make_broken": "{fail} make rejects {path} as it is: {error}; not changed",
        "init_makefile_unsafe": "{fail} {path} is a link, not UTF-8 text or over 1 MB; not changed",
        "init_cannot_write": "{fail} cannot write {path}: {error}",
        "init_kept_pattern": "Makefile's pattern rule(s) {patterns} already make: {targets}; not added",
        "init_kept_included": "kept {target}: defined in {file}, not replaced",
        "init_kept_shared": "kept {target} (line {line}): its rule also makes {others}",
        "init_kept_double": "kept {target} (line {line}): a double-colon rule",
        "init_kept_more": "kept {target} (line {line}): its recipe does more than procclean ({what})",
        "init_replace_hint": "{targets}: ps|grep recipes that procclean does; {prog} init --makefile --replace swaps them (with a backup)",
        "init_would_replace": "would replace {targets} (line {line}, {n} recipe line(s)) with one procclean call",
        "init_replaced": "{ok} replaced {targets} (line {line}, {n} recipe line(s)) with one procclean call",
        "init_backup": "{ok} the previous Makefile is kept as {path}",
        "init_checked": "{ok} make -n accepts the new {path}",
        "init_unchecked": "make not found: the new {path} is not checked",
        "init_rejected": "{fail} make rejects the new {path} ({error}); the original is restored",
        "init_make_already_fails": "{warn} make -n already failed on the original {path} for {targets}: {error}",
        "init_checked_as_before": "{ok} make -n fails on the new {path} only as it failed on the original",
        "mk_group": "kept {target} (line {line}): {other} ({at}) also manages {svc} and is kept, so this one is too: they are replaced together or not at all",
        "mk_signal": "kept {target} (line {line}): it sends SIG{signal}, which procclean never sends ({what})",
        "mk_untraced": "kept {target} (line {line}): it signals processes procclean cannot trace to a pidfile, a pattern or a port ({what})",
        "mk_by_name": "kept {target} (line {line}): it finds processes by program name, not by a pattern procclean can search ({what})",
        "mk_daemonizes": "kept {target} (line {line}): the server puts itself in the background; procclean start needs it to stay its child ({what})",
        "mk_sudo": "kept {target} (line {line}): it runs as root with sudo ({what})",
        "mk_two_logs": "kept {target} (line {line}): it writes output and errors to two files; procclean keeps one log ({what})",
        "mk_make_elsewhere": "kept {target} (line {line}): it runs make in another folder or on another file ({what})",
        "mk_make_vars": "kept {target} (line {line}): it runs make with variables of its own ({what})",
        "mk_make_background": "kept {target} (line {line}): it runs make in the background ({what})",
        "mk_procfile": "kept {target} (line {line}): it runs another Procfile, entry or option than procclean dev, which runs {path} ({what})",
        "mk_procfile_env": "kept {target} (line {line}): it reads {file}, whose settings procclean dev does not take ({what})",
        "mk_make_kept": "kept {target} (line {line}): it runs make {goals}, which is kept ({what})",
        "mk_foreground": "kept {target} (line {line}): it runs the server in the foreground; make runs it as before ({what})",
        "mk_mixed": "kept {target} (line {line}): no single procclean command does what it does, in its order",
        "mk_logs": "kept {target} (line {line}): it deletes logs after a graceful stop; procclean's force-clean kills at once",
        "mk_files": "kept {target} (line {line}): it deletes pidfiles or logs whether their process runs or not; procclean's clean keeps a running one's",
        "mk_two_values": "kept {target} (line {line}): the Makefile gives {svc} two {field}s ({values})",
        "mk_pattern_files": "kept {target} (line {line}): its grep reads files or several patterns ({what})",
        "mk_pattern_invert": "kept {target} (line {line}): its grep -v leaves some processes out, which one procclean pattern cannot ({what})",
        "mk_pattern_posix": "kept {target} (line {line}): its pattern uses POSIX classes or back-references ({what})",
        "mk_pattern_two": "kept {target} (line {line}): it needs two greps to match; procclean has one pattern per service ({what})",
        "mk_pattern_none": "kept {target} (line {line}): it acts on every process ps lists ({what})",
        "mk_pipeline": "kept {target} (line {line}): its pipeline does more than find PIDs ({what})",
        "mk_ini_differs": "kept {target} (line {line}): procclean.ini exists and gives {svc} {field} = {have}, not the Makefile's {want} ({prog} init --force rewrites it)",
        "init_var_wrong": "{warn} the Makefile's PROCCLEAN ({value}) does not run {path}; for this layout: PROCCLEAN = {line} (or {prog} init --makefile --replace)",
        "init_var_replaced": "{ok} PROCCLEAN = {value} did not run procclean here: now {line}",
        "d_make_var": "{file}: PROCCLEAN = {value} does not run {path}, so its make targets fail",
        "init_var_would_replace": "would replace PROCCLEAN = {value}, which does not run procclean here, with {line}",
        # -- robust --
        "lock_busy": "{svc}: busy: PID {pid} ({cmd}) holds its lock {path}; waited {wait}, try again once it is done",
        "lock_failed": "{svc}: cannot lock {path}: {error}",
        "lock_waiting": "{warn} {svc}: waiting for PID {pid} ({cmd}), which holds its lock {path}",
        "remove_failed": "{warn} cannot remove {path}: {error}",
        "file_ignored": "{warn} {path}: {error}; left alone",
        "log_unreadable": "{fail} cannot read {path}: {error}",
        "follow_failed": "cannot follow {path}: {error}",
        "check_port_free": "{fail} {svc}: runs, but nothing listens on its port {port}",
        "check_port_stranger": "{fail} {svc}: runs, but port {port} is held by PID {pid} ({cmd}), not by {svc}",
        "check_port_unknown": "{fail} {svc}: runs, but port {port} is held by {holder}",
        "check_unhealthy": "{fail} {svc}: listens on port {port}, but {url} is {state}",
        # -- dev --
        "dev_left_running": "{warn} {svc} was left running by a dev session that was killed (procclean PID {dev}): stopping it (PID {pids}) to run it here",
        "dev_running": "{fail} {svc} already runs in the background (PID {pids}); stop it first, or run dev --replace",
        "dev_waiting": "waiting for {deps}",
        "dev_listening": "listening on port {port}",
        "dev_started": "started PID {pid}: {cmd}",
        "dev_outside": "stopped from another terminal",
        "dev_running_dev": "{fail} {svc} already runs in the dev session of another terminal (procclean PID {dev}; {svc} PID {pids}); stop it there (Ctrl-C), or run dev --replace",
        "dev_restarting": "restarting (asked from another terminal, PID {pid})",
        "dev_restarted": "{ok} {svc} restarted by its dev session (procclean PID {dev}), now PID {pid}: its output shows there",
        "dev_restart_ended": "{fail} {svc}: its dev session (procclean PID {dev}) ended before it restarted it",
        "dev_restart_timeout": "{fail} {svc}: its dev session (procclean PID {dev}) did not restart it in time",
        "would_dev_restart": "would ask {svc}'s dev session (procclean PID {dev}) to restart it",
        "dev_unhealthy": "unhealthy for {after}: restarting it",
        "health_worker_exited": "its worker PID {pid} exited; nothing of it listens on port {port}",
        "health_not_listening": "it no longer listens on port {port}",
        "health_failing": "{url} is {state}",
        "dev_outside_all": "{ok} every service was stopped from another terminal",
        "dev_restart": "{how}; restarting in {delay} (restart {n})",
        "dev_exited_short": "exited by itself ({code})",
        "dev_killed_short": "{code}, from outside dev",
        "exit_status": "status {n}",
        "exit_status_signal": "status {n} ({sig})",
        "exit_signal": "killed by {sig}",
        "exit_signal_n": "killed by signal {n}",
        "exit_unhealthy": "restarted: unhealthy",
        "dev_exited": "{fail} {svc} exited by itself ({code}); last lines of {log}:",
        "dev_killed": "{fail} {svc}: {code}, from outside dev (kill-port, fuser -k, kill, the OOM killer); last lines of {log}:",
        "dev_stopping": "stopping every service...",
        "dev_stopping_sig": "{clean} {sig}: stopping every service (Ctrl-C again: SIGKILL at once)...",
        "dev_stopping_hup": "{clean} {sig}: stopping every service...",
        "dev_job_gone": "{warn} the make that ran dev in this terminal (PID {pid}) is gone, and the terminal is its shell's again: Ctrl-C would no longer reach dev",
        "dev_make_gone": "{warn} the make that ran dev (PID {pid}) is gone (killed): nothing would stop dev's services any more",
        "after_timeout": "{fail} {svc} not started: {dep}, which it starts after, was not ready within {timeout}",
        "after_failed": "{fail} {svc} not started: {dep}, which it starts after, failed",
        "dev_not_started": "not started: {dep} failed",
        # -- status --
        "status_state": "{warn} {svc}: {state}, PID {pids}, up {uptime}, CPU {cpu}, memory {mem}",
        "status_crashed": "{fail} {svc}: crashed, not running",
        "status_worker_exited": "    worker PID {pid} exited (<defunct>) while its parent runs",
        "state_running": "running", "state_starting": "starting",
        "state_not_listening": "not listening", "state_unhealthy": "unhealthy",
        "state_restarting": "restarting (backoff)", "state_crashed": "crashed",
        "state_stopped": "not running",
        "check_state": "{fail} {svc}: {state}",
        "check_worker_exited": "{fail} {svc}: its worker PID {pid} exited (<defunct>) while its parent runs",
        "start_crashed": "{fail} {svc} exited under its supervisor ({code}); last lines of {log}:",
        "start_restarting": "{warn} {svc} exited during its start ({code}): its supervisor restarts it (logs shows why, status how it goes)",
        "start_log_failed": "{fail} {svc}: its start-up failed, nothing listens on port {port}; last lines of {log}:",
        "start_worker_exited": "{fail} {svc}: its worker PID {pid} exited, nothing listens on port {port}; last lines of {log}:",
        "start_undone": "{clean} {svc}: stopped what this start left running; {pidfile} removed",
        # The errors that end a command (ProcCleanError), one line on stderr
        "err_in": "{where}: {error}",
        "err_port": "invalid port {port!r}: expected a number from 1 to 65535",
        "err_port_offset": "port_offset: expected auto or a number like 10, got {value!r}",
        "err_offset_beyond": "port_offset: {svc}'s port {port} + {offset} is beyond 65535",
        "err_seconds": "invalid {what} {value!r}: expected seconds, like 2 or 0.5",
        "err_seconds_range": "invalid {what} {value!r}: expected seconds from 0 to 86400",
        "err_whole_number": "invalid {what} {value!r}: expected a whole number",
        "err_since": "invalid --since {value!r}: expected a duration (90s, 10m, 1h30m, 2d), a time today (14:05) or a date and time (2026-12-06 14:05)",
        "err_grep": "invalid --grep {value!r}: {error}",
        "err_scope": "scope: expected project or machine, got {value!r}",
        "err_root": "root: {path} is not a folder",
        "err_config_missing": "config file {path} not found",
        "err_no_setting": "{path}: [{section}] has no setting {setting!r} (settings: {fields})",
        "err_general_setting": "{path}: [{section}] has no setting {setting!r} (settings: {fields}; {setting} is set under [procclean])",
        "err_set_syntax": "--set takes SERVICE.FIELD=VALUE, got {value!r}",
        "err_set_field": "--set: unknown field {field!r} (fields: {fields})",
        "err_services_unknown": "services: unknown service {name!r}",
        "err_unknown_service": "unknown service {name!r} (known: {known})",
        "err_service_name": "invalid service name {name!r}",
        "err_pattern": "{svc}: pattern {pattern!r} does not compile: {error}",
        "err_field_empty": "{svc}: {field} must not be empty",
        "err_field_scope": "{svc}: scope must be project or machine, not {value!r}",
        "err_field_yes_no": "{svc}: {field} must be yes or no, not {value!r}",
        "err_after_self": "{svc}: after names the service itself",
        "err_after_unknown": "{svc}: after names unknown service {name!r}",
        "err_after_circle": "after: services wait for each other: {circle}",
        "err_empty_command": "empty start command",
        "err_command_syntax": "cannot read start command {command!r}: {error}",
        "err_port_placeholder": "start command {command!r} uses {{port}}, but the service has no port",
        "err_ps_header": "cannot read ps output: unexpected header {header!r}",
        "err_no_table": "no process table source here",
        "err_port_source": "port source {source!r} is not available here",
        "err_env_choice": "{name}={value}: expected one of {choices}",
        "err_cannot_run": "cannot run {program}: {error}",
        "err_tool_failed": "{command} failed: {error}",
        "err_cannot_write": "cannot write {path}: {error}",
        "err_supervise_one": "supervise takes exactly one service",
        "err_kill_port_none": "kill-port needs at least one port",
        "err_init_names": "init takes no service names",
        "err_json_foreground": "--json: {command} shows the services' own output as it comes; for JSON lines use logs -f --json",
        "err_watch": "--watch takes a number of seconds above 0",
        "err_count": "--count takes a number of views above 0 (without --count, --watch runs until Ctrl-C)",
        "err_unknown_command": "unknown command {command!r} (commands: {commands}; or e.g. stop-backend)",
        "err_no_command": "no command given (try --help)",
        "err_unrecognized": "unrecognized option {option!r}",
        "err_port_option": "unrecognized option {option!r}: a service's port is one of its settings, for example --set backend.port=9001, PROCCLEAN_BACKEND_PORT=9001, or port = 9001 under [backend] in procclean.ini",
        "err_ambiguous": "ambiguous option {flag} ({options})",
        "err_needs_value": "{flag} needs a value ({metavar})",
        "err_no_value": "{flag} takes no value",
        "err_choice": "{flag}: {value!r} is not one of {choices}",
        "internal_error": "internal error: {kind}: {error} (PROCCLEAN_DEBUG=1 shows where; please report it)",
    },
    "zh": {
        "stopped": "{ok} {svc}进程已停止 (PID: {pid}): {cmd}",
        "killed": "{kill} {svc}进程已强制停止 (PID: {pid}, SIGKILL): {cmd}",
        "gone": "{ok} {svc}进程已退出 (PID: {pid}): {cmd}",
        "denied": "{fail} 无法停止{svc}进程 (PID: {pid}, 属于 {user}): 权限不足: {cmd}",
        "survived": "{fail} SIGKILL 后{svc}进程仍在运行 (PID: {pid}): {cmd}",
        "signalled": "{warn} {svc}进程已收到 SIGTERM, 可能仍在运行 (PID: {pid}): {cmd}",
        "would_signal": "将发送 {sig} 给{svc}进程 (PID: {pid}): {cmd}",
        "would_remove": "将删除 {path}",
        "removed": "已删除 {path}",
        "summary_stopped": "{svc}: 已停止 {n} 个进程",
        "summary_killed": "{svc}: 已停止 {n} 个进程, 其中 {k} 个在 {after} 后被强制停止",
        "summary_hurried": "{svc}: 已停止 {n} 个进程, 其中 {k} 个在 {after} 后被强制停止 (再次按下 Ctrl-C)",
        "summary_failed": "{fail} {svc}: {n} 个进程无法停止",
        "summary_interrupted": "{warn} {svc}: 停止被中断; {n} 个进程可能仍在运行 (停止它们: {stop})",
        "nothing": "{svc}: 没有运行中的进程",
        "force_header": "{clean} 强制清理所有{svc}进程...",
        "pidfile_invalid": "{warn} {path}: PID 文件内容无效 ({content})",
        "pidfile_untrusted": "{warn} {path}: 其他用户可写, 以 root 运行时不予信任",
        "pidfile_reused": "{warn} {path}: PID {pid} 已被 PID 文件写入之后启动的进程占用 ({cmd}), 未处理",
        "pidfile_unknown_start": "{warn} {path}: 无法确定 PID {pid} 的启动时间 ({cmd}), 未处理",
        "pidfile_foreign": "{warn} {path}: PID {pid} 不是本项目的 {svc}, 而是项目之外、其他项目或其他服务的进程 ({cmd}; {where}), 未处理",
        "pidfile_protected": "{warn} {path}: PID {pid} 是 procclean 自身或其父进程, 未发送信号",
        "clean_kept": "{warn} {path}: 已保留, {svc}仍在运行 (PID: {pid})",
        "clean_log_kept": "{warn} {path}: 已保留, {svc}仍在运行并写入该文件",
        "clean_nothing": "没有需要清理的文件",
        "already_running": "{ok} {svc}已在运行 (PID: {pids})",
        "already_running_dev": "{ok} {svc}已在另一个终端的 dev 会话中运行 (PID: {pids}; procclean PID {dev}): 它的输出显示在那里",
        "port_taken": "{fail} 无法启动{svc}: 端口 {port} 已被 PID {pid} 占用 ({cmd}, 目录 {cwd})",
        "port_taken_unknown": "{fail} 无法启动{svc}: 端口 {port} 已被{holder}占用",
        "would_start": "将启动{svc}: {cmd} (目录 {cwd}, 日志 {log})",
        "started": "{ok} {svc}已启动 (PID: {pid}): {cmd} (日志 {log})",
        "start_failed": "{fail} {svc}启动后立即退出 ({code}); {log} 的最后几行:",
        "start_stopped_elsewhere": "{fail} {svc} (PID {pid}) 在就绪前被另一个终端停止 (stop 或 restart)",
        "start_daemonized": "    立即以状态 0 结束的命令可能已把自己转入后台: procclean 自己在后台运行并看守 {svc}, 请去掉 --daemon、-D、--daemonize yes、--fork、--detach 等选项",
        "dev_daemonized": "    在 dev 运行时以状态 0 结束的命令可能已把自己转入后台: dev 自己运行并看守 {svc}, 请去掉 --daemon、-D、--daemonize yes、--fork、--detach 等选项",
        "start_timeout": "{fail} {svc}在 {timeout} 内未监听端口 {port}; {log} 的最后几行:",
        "start_error": "{fail} 无法启动{svc}: {error}",
        "no_program": "{program} 未安装或不在 PATH 中",
        "owned_by": " (属于 {user}, 不是你: 删除 {path} 或用 chown 改为你的)",
        "no_command": "{fail} 无法启动{svc}: 未配置启动命令",
        "listening": "{ok} {svc}正在监听端口 {port}",
        "not_listening_yet": "    {svc}仍在启动: 尚未监听端口 {port} (用 status 查看何时开始监听)",
        "start_waiting": "    {svc} (PID {pid}) 正在启动: 等待其监听端口 {port} (最多 {timeout})",
        "start_waiting_elsewhere": "    {svc}监听的是端口 {ports}, 而不是 {port}: 如果 {first} 就是它的端口, 请在 procclean.ini 的 [{svc}] 下设置 port = {first} (或运行 init); 仍在等待端口 {port}",
        "start_waiting_idle": "    {svc} (PID {pid}) 正在启动: 等待其稳定下来 (最多 {timeout})",
        "status_running": "{ok} {svc}: 运行中, PID {pids}, 已运行 {uptime}, CPU {cpu}, 内存 {mem}",
        "status_stopped": "{off} {svc}: 未运行",
        "status_port_free": "    端口 {port}: 空闲",
        "status_elsewhere": "    {svc}监听的是端口 {ports}",
        "status_ports": "端口: 本检出的偏移 +{offset} ({how}): {ports}",
        "ports_how_fixed": "port_offset = {offset}",
        "ports_how_auto": "port_offset = auto, 记录在 {file}",
        "ports_how_unrecorded": "port_offset = auto, 首次启动时记录",
        "ports_none_moved": "均不移动: 每个端口都由环境变量或 --set 指定",
        "offset_not_followed": "{warn} {svc}: port_offset 不会移动它: 它仍监听命令或应用里写定的端口 {port}, 与每个检出相同",
        "offset_proxy_fixed": "{warn} {svc}: {file} 把请求代理到 localhost:{port}, 即没有偏移的检出里 {other} 的端口; 本检出的 {other} 在 {moved}, 所以 {svc} 会连到另一个检出的 {other}: 让目标读取 {var} (见 README 的 Vite 示例)",
        "set_proxy_fixed": "{warn} {svc}: {file} 把请求代理到 localhost:{port}, 即 {var} 把 {other} 移到 {moved} 之前的端口: {svc} 会连到 {port} 上的任何进程, 而不是 {other}: 让目标读取 {var} (见 README 的 Vite 示例)",
        "django_vite_fixed": "{warn} {svc}: {file} 让 Django 页面从 localhost:{port} 加载脚本, 但这里的 {other} 监听 {moved}: 从 {var} 读取该端口 (int(os.environ.get(\"{var}\", {port})))",
        "port_not_passed": "{warn} 环境中的 PORT={port} 不会传给服务: 每个服务在 PORT 中得到自己的端口 ({ports}); 要把{svc}移到该端口: {setting}",
        "port_set_not_followed": "{warn} {svc}: 它的端口被设为 {port} ({var} 或 --set), 但它仍会监听命令或应用里写定的端口",
        "ports_chosen": "{ok} 端口: 本检出使用端口偏移 +{offset} ({ports}), 已记录在 {file}",
        "ports_moved": "{warn} 端口: 端口 {port} 被 {folder} 中的 PID {pid} 占用, 不属于本检出: 本检出改用端口偏移 +{offset} ({ports}), 已记录在 {file}",
        "offset_unwritten": "{warn} 无法把端口偏移记录到 {file}: {error}",
        "status_port_own": "    端口 {port}: 监听中, PID {pid} ({cmd})",
        "status_port_stranger": "    端口 {port}: 被 PID {pid} 占用 ({cmd}), 不属于{svc}: {what}",
        "status_port_free_it": "      释放端口: {free}",
        "holder_leftover": "属于本项目, 但不是{svc}自己的进程 (没有 pidfile、标记或模式匹配指向它)",
        "holder_viewer": "编辑器或浏览器在转发该端口; 绝不发送信号",
        "holder_container": "{proxy}, 转发容器 {names} ({images}) 的端口; 绝不发送信号",
        "holder_proxy": "{proxy}, 容器运行时的代理, 转发到 {to} 的容器; 绝不发送信号; 查看是哪个容器: {query}",
        "holder_proxy_bare": "{proxy}, 容器运行时的代理; 绝不发送信号; 查看是哪个容器: {query}",
        "holder_stranger": "用户 {user}, 目录 {folder}",
        "holder_checkout": "用户 {user}, 运行在另一个检出目录或项目 {folder} 中: 请在那里停止它",
        "holder_unseen": "无法查看的进程",
        "holder_unseen_user": "用户 {user} 的无法查看的进程",
        "status_port_unknown": "    端口 {port}: 被{holder}占用",
        "port_nothing": "端口 {port}: 没有进程监听",
        "port_unseen": "{fail} 端口 {port}: 被{holder}占用 (请以其所有者或 root 运行)",
        "port_freed": "端口 {port}: 已停止 {n} 个进程",
        "port_container": "{fail} 端口 {port}: 被 PID {pid} 占用 ({cmd}): {what}",
        "port_protected": "{fail} 端口 {port}: 被 procclean 自身或其父进程占用 (PID: {pid}), 未发送信号: {cmd}",
        "port_kept_app": "{fail} 端口 {port}: 被编辑器或浏览器占用 (PID: {pid}, 用户 {user}), 未处理 (请在其中关闭或停止端口转发): {cmd}",
        "no_processes": "没有匹配的进程",
        "interrupted": "已中断",
        "health": "    健康检查 {url}: {state}{detail}",
        "healthy": "健康", "unhealthy": "不健康", "no answer": "无响应",
        "supervisor": "    守护进程 PID {pid}: {state}, 已重启 {n} 次",
        "status_dev": "    由另一个终端中 procclean PID {pid} 的 dev 会话运行: 它的输出显示在那里",
        "gave_up": "{fail} {svc}: 一分钟内重启 {n} 次后放弃 (最后退出状态: {code})",
        "supervising": "{ok} 正在守护{svc} (守护进程 PID: {pid}, 日志 {log})",
        "no_log": "{svc}: 没有日志 {path}",
        "watch_header": "procclean 状态, 每 {interval} 刷新: {time}",
        "start_unhealthy": "{fail} {svc}已监听端口 {port}, 但 {url} 在 {timeout} 后仍{state}; {log} 的最后几行:",
        "header": ("服务", "PID", "PPID", "用户", "运行时长", "CPU%", "内存", "命令"),
        "doctor_env": "procclean {version}, Python {python}, {platform}",
        "doctor_tools": "进程表: {ps}; 端口监听: {ports}",
        "doctor_finding": "{warn} {text}\n    解决: {fix}",
        "doctor_fixed": "{ok} 已修复: {text}",
        "doctor_ok": "{ok} 一切正常",
        "doctor_count": "{fail} {n} 个问题需要处理",
        "d_config": "{error}",
        "d_no_folder": "{svc}: 启动目录 {cwd} 不存在",
        "d_no_program": "{svc}: 启动程序 {program} 未安装或不在 PATH 中",
        "d_stale": "{path}: PID 文件指向不存在的进程 (PID: {pid})",
        "d_invalid": "{path}: PID 文件内容无效 ({content})",
        "d_reused": "{path}: PID {pid} 已被 PID 文件写入之后启动的进程占用 ({cmd})",
        "d_untrusted": "{path}: 其他用户可写, 以 root 运行时不予信任",
        "d_protected": "{path}: 指向 PID {pid}, 即 procclean 自身或其父进程",
        "d_unknown_start": "{path}: 指向 PID {pid} ({cmd}), 该进程不匹配任何模式且无法读取启动时间: 可能是被重用的 PID",
        "d_foreign": "{path}: 指向 PID {pid} ({cmd}), 这是其他项目或服务的进程 (依其标记或目录)",
        "d_leftover": "{svc}: 进程残留, {n} 个进程不在 PID 文件中 (PID: {pids})",
        "d_stranger": "{svc}的端口 {port} 被 PID {pid} 占用, 该进程不属于{svc}: {cmd}",
        "init_found": "{ok} 发现{svc}: {what}",
        "init_nothing": "未发现 Python 后端或前端; 未写入任何文件",
        "init_missing": "{warn} {hint}, 但 init 未找到{svc}: 已查找 {looked}。如需由 procclean 运行, 请把下面这段 (改成你的值) 加入 procclean.ini, 并把它的名字加入 services:",
        "miss_depends": "{file} 依赖 {what}",
        "miss_dev_script": "{file} 使用了前端框架, 却没有 dev 脚本 (已有脚本: {scripts})",
        "looked_backend": "{files} 中的应用对象 (FastAPI(), Flask() 等), manage.py, 以及 README, pyproject 任务, package.json 脚本或 Procfile 中的服务器命令",
        "looked_worker": "{base} 各模块中的 Celery(...) 应用、arq 的 WorkerSettings 类或 dramatiq 的 actor, 以及 README, pyproject 任务, package.json 脚本或 Procfile 中的 worker 命令 (celery ... worker, rq worker, arq, dramatiq)",
        "looked_frontend": "{files} 中的 dev, serve 或启动开发服务器的 start 脚本",
        "init_wrote": "{ok} 已写入 {path}",
        "init_would_write": "将写入 {path}:",
        "init_appended": "{ok} 已添加到 Makefile: {targets}",
        "init_kept": "Makefile 已有: {targets}; 未重复添加",
        "init_secret": "{warn} {svc}: 命令从环境变量读取 {names}, 不把 .env 里的值写进 procclean.ini (它会被提交, .env 不会): 请导出它们 (Makefile 里的 `export`) 或自行设置",
        "init_own_stop": "{warn} make stop 运行的是 Makefile 自己的命令, 不一定能停掉新增的 make start 启动的进程: {prog} stop 可以",
        "init_would_append": "将添加到 Makefile:",
        # -- ownership --
        "outside_left": "{svc}: 本项目之外的匹配进程未处理: {items} (show-processes 可列出全部, 使用 --everywhere 可一并处理)",
        "outside_item": "PID {pid} ({user}, {folder}) {cmd}",
        "outside_more": "还有 {n} 个",
        "outside_process": "{svc}: PID {pid} 匹配, 但不属于本项目 ({folder}), 用户 {user}, 未处理: {cmd}",
        "status_outside": "    本项目之外 (未计入): {items} (show-processes 可列出全部, 使用 --everywhere 可包含)",
        "folder_unknown": "目录未知",
        "found_late": "{svc}: 其中 {n} 个在停止过程中出现, 再次检查时发现",
        "port_still_held": "{warn} {svc}: 端口 {port} 仍被 PID {pid} 占用 (目录 {folder}), 不属于本项目: {cmd}\n    释放端口: {free}",
        "port_still_unseen": "{warn} {svc}: 端口 {port} 仍被{holder}占用",
        "port_still_held_kind": "{warn} {svc}: 端口 {port} 仍被 PID {pid} 占用 ({cmd}): {what}",
        "port_still_free": "    释放端口: {free}",
        "port_users_app": "{warn} {svc}: 端口 {port} 被编辑器或浏览器占用 (PID: {pid}, 用户 {user}), 未处理 (请在其中关闭或停止端口转发): {cmd}",
        # -- init --
        "d_orphan_match": "{svc}: PID {pid} 的父进程已退出 (现由 init 接管), 它仍匹配进程模式: {cmd}",
        "d_orphan_port": "{svc}: PID {pid} 的父进程已退出 (现由 init 接管), 它仍占用端口 {port}: {cmd}",
        "d_stranger_fix": "确认 PID {pid} 是你的进程 (或把{svc}改到其他端口: {other}), 然后: {cmd}",
        "d_port_app": "{svc}的端口 {port} 被编辑器或浏览器占用 (PID: {pid}, 用户 {user}), procclean 不会处理它: {cmd}",
        "fix_port_app": "请在其中关闭它或它的端口转发",
        "d_stranger_fix_free": "确认 PID {pid} 是你的进程, 然后: {cmd}",
        "d_checkout_fix": "请在它的检出目录 {folder} 中停止它 (kill-port 会中断那个检出目录的工作), 或让每个检出目录使用各自的端口: 在 procclean.ini 的 [procclean] 下设置 port_offset = auto",
        "d_checkout_stop": "请在它的检出目录 {folder} 中停止它 (kill-port 会中断那个检出目录的工作); port_offset 不会移动{svc}: start 会说明如何让它移动",
        "d_port_holder": "{svc}的端口 {port} 被 PID {pid} 占用 ({cmd}): {what}",
        "d_exempt_fix": "{cmd} (或把{svc}改到其他端口: {other})",
        "d_move_fix": "把{svc}改到其他端口: {other}",
        "d_by_hand": "在占用端口 {port} 的程序中释放它 (procclean 绝不向它发送信号)",
        "init_paste": "可粘贴到 Makefile 的目标 (或运行 {prog} init --makefile):",
        "fix_run": "{cmd}",
        "fix_config": "修正 {file} 中 [{svc}] 的 {field} (或 {env})",
        "fix_cwd": "创建该目录, 或在 {file} 中设置 [{svc}] 的 cwd",
        "fix_command": "修正 {file} 中 [{svc}] 的 command",
        "fix_program": "安装 {program}, 或在 {file} 中设置 [{svc}] 的 command",
        "d_missing_modules": "{svc}: {python} 无法导入启动命令需要的 {modules}",
        "d_python_fails": "{svc}: {python} 无法运行: {error}",
        "d_imports_unchecked": "{svc}: 未检查 {python} 能否导入 {modules}: `{tool} run` 会创建或同步它的环境, 而 doctor 不做任何改动",
        "doctor_note": "{off} {text}\n    自行检查: {fix}",
        "port_hint": "    如果 PID {pid} 是你的进程, 释放端口: {free}; 或换一个端口: {other}",
        "port_hint_other": "    换一个端口: {other}",
        "port_hint_checkout": "    PID {pid} 运行在另一个检出目录或项目 {folder} 中: 请在那里停止它",
        "port_hint_offset": "    或让每个检出目录使用各自的端口: 在 procclean.ini 的 [procclean] 下设置 port_offset = auto",
        "port_hint_holder": "    PID {pid} 是{what}{free}",
        "port_hint_then": "; 释放端口: {free}",
        "port_hint_free": "    如果 PID {pid} 是你的进程, 释放端口: {free}",
        "port_hint_fixed": "    {svc}不从 procclean 取端口 (命令里没有 {{port}}, 它运行的程序也不读 $PORT): 要换端口, 在命令里写 {{port}} ({example}) 或在应用里读取 PORT",
        "port_hint_code": "    {svc}不从 procclean 取端口 (没看到它运行的程序读取 $PORT): 要换端口, 让应用在设定端口的地方读取 PORT",
        "port_hint_app": "    PID {pid} 是编辑器或浏览器 (可能在转发该端口), procclean 不会处理它: 请在其中关闭",
        "tc_env": "当前激活的 $VIRTUAL_ENV {where}, 在项目内",
        "tc_env_outside": "当前激活的 $VIRTUAL_ENV {where}, 它不属于本项目 (在项目之外), 因为项目自己没有 .venv、venv 或锁文件",
        "tc_ignored": "; 当前激活的 $VIRTUAL_ENV {where} 不属于本项目 (在项目之外): 不使用",
        "python_chosen": "{warn} {svc}使用 {python} 运行 ({why})",
        "tc_venv": "虚拟环境 {where}",
        "tc_lock": "{lock} 表明这是 {tool} 项目",
        "tc_lock_no_tool": "{lock} 需要 {tool}, 但未安装; 改用运行 procclean 的解释器",
        "tc_self": "未找到虚拟环境或锁文件; 使用运行 procclean 的解释器",
        "tc_node_lock": "发现 {lock}",
        "tc_node_none": "未找到锁文件; 使用 {tool}",
        "tc_node_command": "按其命令; {lock} 指定的是 {other}",
        "init_python": "{ok} {svc}使用 {python} 运行 ({why})",
        "init_node": "{ok} {svc}使用 {tool} 运行 ({why})",
        "init_config_kept": "{path} 已存在: 保持不变 (--force 重新生成)",
        "init_layout": "make 以 {cmd} 运行 procclean ({why})",
        "lay_root": "procclean.py 在根目录; -m 可复用已缓存的字节码",
        "lay_module": "{path} 可从根目录以 {module} 导入; -m 可复用已缓存的字节码",
        "lay_script": "{path} 无法从根目录以 -m 运行; 以脚本方式运行, 每次都要编译",
        "init_setuptools_modules": "{warn} 根目录的 procclean.py 对 setuptools 是第二个顶层模块, 而它自行查找模块来打包本项目 ({modules}): `pip install .` 会停在 \"Multiple top-level modules discovered\"。请把它移到 tools/ (setuptools 不收该目录) 后重新运行 init, 或写明你的模块 (py-modules)",
        "lay_outside": "{path} 不在此目录内; 请把它复制到仓库中再运行 init",
        "init_gitignore": "请添加到 .gitignore (PID 文件, 守护状态与启动记录, 日志, 字节码, 端口偏移): {lines}",
        "init_make_asked": "已向 make 询问 {path} 定义的目标 (读取的文件: {files})",
        "init_make_text": "这里没有 GNU make: 按文本读取 {path} 及其 include 的文件",
        "init_make_already_fails": "{warn} 原来的 {path} 对 {targets} 执行 make -n 就已失败: {error}",
        "init_checked_as_before": "{ok} 新的 {path} 在 make -n 下的失败与原文件相同",
        "mk_group": "保留 {target} (第 {line} 行): {other} ({at}) 也管理 {svc} 且被保留, 因此它也保留: 它们要么一起替换, 要么都不替换",
        "mk_signal": "保留 {target} (第 {line} 行): 它发送 SIG{signal}, procclean 从不发送该信号 ({what})",
        "mk_untraced": "保留 {target} (第 {line} 行): 它发信号的进程无法追溯到 pidfile、模式或端口 ({what})",
        "mk_by_name": "保留 {target} (第 {line} 行): 它按程序名查找进程, 而不是 procclean 能搜索的模式 ({what})",
        "mk_daemonizes": "保留 {target} (第 {line} 行): 服务会自行转入后台; procclean start 需要它一直是自己的子进程 ({what})",
        "mk_sudo": "保留 {target} (第 {line} 行): 它用 sudo 以 root 运行 ({what})",
        "mk_two_logs": "保留 {target} (第 {line} 行): 它把输出和错误写到两个文件; procclean 只保留一个日志 ({what})",
        "mk_make_elsewhere": "保留 {target} (第 {line} 行): 它在另一个目录或对另一个文件运行 make ({what})",
        "mk_make_vars": "保留 {target} (第 {line} 行): 它运行 make 时带了自己的变量 ({what})",
        "mk_make_background": "保留 {target} (第 {line} 行): 它在后台运行 make ({what})",
        "mk_procfile": "保留 {target} (第 {line} 行): 它运行的 Procfile、条目或选项与 procclean dev 不同 (后者运行 {path}) ({what})",
        "mk_procfile_env": "保留 {target} (第 {line} 行): 它读取 {file}, 而 procclean dev 不采用其中的设置 ({what})",
        "mk_make_kept": "保留 {target} (第 {line} 行): 它运行 make {goals}, 而后者被保留 ({what})",
        "mk_foreground": "保留 {target} (第 {line} 行): 它在前台运行服务; make 照旧运行它 ({what})",
        "mk_mixed": "保留 {target} (第 {line} 行): 没有一个 procclean 命令能按同样顺序完成它做的事",
        "mk_logs": "保留 {target} (第 {line} 行): 它在正常停止后删除日志; procclean 的 force-clean 会立即强杀",
        "mk_files": "保留 {target} (第 {line} 行): 它不论进程是否在运行都删除 pidfile 或日志; procclean 的 clean 会保留运行中进程的文件",
        "mk_two_values": "保留 {target} (第 {line} 行): Makefile 给 {svc} 设了两个不同的 {field} ({values})",
        "mk_pattern_files": "保留 {target} (第 {line} 行): 它的 grep 读取文件或多个模式 ({what})",
        "mk_pattern_invert": "保留 {target} (第 {line} 行): 它的 grep -v 排除了一些进程, 单个 procclean 模式做不到 ({what})",
        "mk_pattern_posix": "保留 {target} (第 {line} 行): 它的模式用了 POSIX 字符类或反向引用 ({what})",
        "mk_pattern_two": "保留 {target} (第 {line} 行): 它要两个 grep 才能匹配; procclean 每个服务只有一个模式 ({what})",
        "mk_pattern_none": "保留 {target} (第 {line} 行): 它作用于 ps 列出的所有进程 ({what})",
        "mk_pipeline": "保留 {target} (第 {line} 行): 它的管道不只是查找 PID ({what})",
        "mk_ini_differs": "保留 {target} (第 {line} 行): procclean.ini 已存在, 其中 {svc} 的 {field} = {have}, 而不是 Makefile 的 {want} ({prog} init --force 会重写它)",
        "init_make_dry": "演练: 按文本读取 {path} 及其 include 的文件 (make 会执行其中的 $(shell ...) 调用和重建 include 文件的规则)",
        "init_make_broken": "{fail} make 不接受当前的 {path}: {error}; 未修改",
        "init_makefile_unsafe": "{fail} {path} 是链接, 不是 UTF-8 文本或超过 1 MB; 未修改",
        "init_cannot_write": "{fail} 无法写入 {path}: {error}",
        "init_kept_pattern": "Makefile 的模式规则 {patterns} 已能生成: {targets}; 不添加",
        "init_kept_included": "保留 {target}: 定义在 {file} 中, 未替换",
        "init_kept_shared": "保留 {target} (第 {line} 行): 该规则还生成 {others}",
        "init_kept_double": "保留 {target} (第 {line} 行): 双冒号规则",
        "init_kept_more": "保留 {target} (第 {line} 行): 其命令不只做 procclean 做的事 ({what})",
        "init_replace_hint": "{targets}: 是 procclean 可以替代的 ps|grep 命令; {prog} init --makefile --replace 会替换它们 (并保留备份)",
        "init_would_replace": "将把 {targets} (第 {line} 行, {n} 行命令) 替换为一次 procclean 调用",
        "init_replaced": "{ok} 已把 {targets} (第 {line} 行, {n} 行命令) 替换为一次 procclean 调用",
        "init_backup": "{ok} 原 Makefile 已备份为 {path}",
        "init_checked": "{ok} make -n 接受新的 {path}",
        "init_unchecked": "未找到 make: 新的 {path} 未经检查",
        "init_rejected": "{fail} make 不接受新的 {path} ({error}); 已恢复原文件",
        "init_var_wrong": "{warn} Makefile 中的 PROCCLEAN ({value}) 不能运行 {path}; 此布局应为: PROCCLEAN = {line} (或运行 {prog} init --makefile --replace)",
        "init_var_replaced": "{ok} PROCCLEAN = {value} 在这里无法运行 procclean: 已改为 {line}",
        "d_make_var": "{file}: PROCCLEAN = {value} 不能运行 {path}, 其 make 目标都会失败",
        "init_var_would_replace": "将把在这里无法运行 procclean 的 PROCCLEAN = {value} 改为 {line}",
        # -- robust --
        "lock_busy": "{svc}: 忙: PID {pid} ({cmd}) 持有其锁 {path}; 已等待 {wait}, 请在其完成后重试",
        "lock_failed": "{svc}: 无法锁定 {path}: {error}",
        "lock_waiting": "{warn} {svc}: 等待 PID {pid} ({cmd}) 释放其锁 {path}",
        "remove_failed": "{warn} 无法删除 {path}: {error}",
        "file_ignored": "{warn} {path}: {error}; 未处理",
        "log_unreadable": "{fail} 无法读取 {path}: {error}",
        "follow_failed": "无法继续跟踪 {path}: {error}",
        "check_port_free": "{fail} {svc}: 正在运行, 但端口 {port} 没有监听",
        "check_port_stranger": "{fail} {svc}: 正在运行, 但端口 {port} 被 PID {pid} 占用 ({cmd}), 不属于{svc}",
        "check_port_unknown": "{fail} {svc}: 正在运行, 但端口 {port} 被{holder}占用",
        "check_unhealthy": "{fail} {svc}: 已监听端口 {port}, 但 {url} {state}",
        # -- dev --
        "dev_left_running": "{warn} {svc}由一个已被强制结束的 dev 会话遗留 (procclean PID {dev}): 先停止它 (PID {pids}), 再在这里运行",
        "dev_running": "{fail} {svc}已在后台运行 (PID: {pids}); 请先停止, 或使用 dev --replace",
        "dev_waiting": "等待 {deps}",
        "dev_listening": "正在监听端口 {port}",
        "dev_started": "已启动 (PID: {pid}): {cmd}",
        "dev_outside": "已被另一个终端停止",
        "dev_running_dev": "{fail} {svc}已在另一个终端的 dev 会话中运行 (procclean PID {dev}; {svc} PID: {pids}); 请在那里停止 (Ctrl-C), 或使用 dev --replace",
        "dev_restarting": "正在重启 (另一个终端请求, PID {pid})",
        "dev_restarted": "{ok} {svc}已由其 dev 会话 (procclean PID {dev}) 重启, 现在 PID {pid}: 输出显示在那里",
        "dev_restart_ended": "{fail} {svc}: 其 dev 会话 (procclean PID {dev}) 在重启前已结束",
        "dev_restart_timeout": "{fail} {svc}: 其 dev 会话 (procclean PID {dev}) 未能及时重启它",
        "would_dev_restart": "将请求{svc}的 dev 会话 (procclean PID {dev}) 重启它",
        "dev_unhealthy": "已不健康 {after}: 正在重启",
        "health_worker_exited": "其工作进程 PID {pid} 已退出; 端口 {port} 上没有它的监听",
        "health_not_listening": "它已不再监听端口 {port}",
        "health_failing": "{url} {state}",
        "dev_outside_all": "{ok} 所有服务已被另一个终端停止",
        "dev_restart": "{how}; {delay} 后重启 (第 {n} 次)",
        "dev_exited_short": "自行退出 ({code})",
        "dev_killed_short": "{code}, 来自 dev 之外",
        "exit_status": "退出码 {n}",
        "exit_status_signal": "退出码 {n} ({sig})",
        "exit_signal": "被 {sig} 终止",
        "exit_signal_n": "被信号 {n} 终止",
        "exit_unhealthy": "因不健康而重启",
        "dev_exited": "{fail} {svc}自行退出 ({code}); {log} 的最后几行:",
        "dev_killed": "{fail} {svc}: {code}, 来自 dev 之外 (kill-port、fuser -k、kill 或 OOM killer); {log} 的最后几行:",
        "dev_stopping": "正在停止所有服务...",
        "dev_stopping_sig": "{clean} {sig}: 正在停止所有服务 (再按 Ctrl-C: 立即 SIGKILL)...",
        "dev_stopping_hup": "{clean} {sig}: 正在停止所有服务...",
        "dev_job_gone": "{warn} 在此终端运行 dev 的 make (PID {pid}) 已不在, 终端已交还给 shell: Ctrl-C 再也无法到达 dev",
        "dev_make_gone": "{warn} 运行 dev 的 make (PID {pid}) 已不在 (被结束): 再也没有什么能停止 dev 的服务",
        "after_timeout": "{fail} 未启动{svc}: 它所等待的{dep}在 {timeout} 内未就绪",
        "after_failed": "{fail} 未启动{svc}: 它所等待的{dep}启动失败",
        "dev_not_started": "未启动: {dep}启动失败",
        # -- status --
        "status_state": "{warn} {svc}: {state}, PID {pids}, 已运行 {uptime}, CPU {cpu}, 内存 {mem}",
        "status_crashed": "{fail} {svc}: 已崩溃, 未运行",
        "status_worker_exited": "    工作进程 PID {pid} 已退出 (<defunct>), 其父进程仍在运行",
        "state_running": "运行中", "state_starting": "启动中",
        "state_not_listening": "未监听端口", "state_unhealthy": "不健康",
        "state_restarting": "重启中 (退避等待)", "state_crashed": "已崩溃",
        "state_stopped": "未运行",
        "check_state": "{fail} {svc}: {state}",
        "check_worker_exited": "{fail} {svc}: 工作进程 PID {pid} 已退出 (<defunct>), 其父进程仍在运行",
        "start_crashed": "{fail} {svc}在守护下退出 ({code}); {log} 的最后几行:",
        "start_restarting": "{warn} {svc}在启动期间退出 ({code}): 守护进程正在重启它 (用 logs 查看原因, 用 status 查看进展)",
        "start_log_failed": "{fail} {svc}: 启动失败, 端口 {port} 没有监听; {log} 的最后几行:",
        "start_worker_exited": "{fail} {svc}: 工作进程 PID {pid} 已退出, 端口 {port} 没有监听; {log} 的最后几行:",
        "start_undone": "{clean} {svc}: 已停止本次启动留下的进程; 已删除 {pidfile}",
        # The errors that end a command (ProcCleanError)
        "err_in": "{where}: {error}",
        "err_port": "无效的端口 {port!r}: 应为 1 到 65535 之间的数字",
        "err_port_offset": "port_offset: 应为 auto 或数字 (如 10), 而不是 {value!r}",
        "err_offset_beyond": "port_offset: {svc} 的端口 {port} + {offset} 超过了 65535",
        "err_seconds": "无效的 {what} {value!r}: 应为秒数, 如 2 或 0.5",
        "err_seconds_range": "无效的 {what} {value!r}: 应为 0 到 86400 之间的秒数",
        "err_whole_number": "无效的 {what} {value!r}: 应为整数",
        "err_since": "无效的 --since {value!r}: 应为一段时长 (90s, 10m, 1h30m, 2d), 今天的某个时刻 (14:05) 或日期和时间 (2026-12-06 14:05)",
        "err_grep": "无效的 --grep {value!r}: {error}",
        "err_scope": "scope: 应为 project 或 machine, 而不是 {value!r}",
        "err_root": "root: {path} 不是文件夹",
        "err_config_missing": "找不到配置文件 {path}",
        "err_no_setting": "{path}: [{section}] 没有设置项 {setting!r} (可用的设置项: {fields})",
        "err_general_setting": "{path}: [{section}] 没有设置项 {setting!r} (可用的设置项: {fields}; {setting} 应写在 [procclean] 下)",
        "err_set_syntax": "--set 的格式是 SERVICE.FIELD=VALUE, 而不是 {value!r}",
        "err_set_field": "--set: 未知的字段 {field!r} (可用的字段: {fields})",
        "err_services_unknown": "services: 未知的服务 {name!r}",
        "err_unknown_service": "未知的服务 {name!r} (已知的服务: {known})",
        "err_service_name": "无效的服务名 {name!r}",
        "err_pattern": "{svc}: 模式 {pattern!r} 无法编译: {error}",
        "err_field_empty": "{svc}: {field} 不能为空",
        "err_field_scope": "{svc}: scope 应为 project 或 machine, 而不是 {value!r}",
        "err_field_yes_no": "{svc}: {field} 应为 yes 或 no, 而不是 {value!r}",
        "err_after_self": "{svc}: after 里写了服务自己",
        "err_after_unknown": "{svc}: after 里写了未知的服务 {name!r}",
        "err_after_circle": "after: 服务之间互相等待: {circle}",
        "err_empty_command": "启动命令为空",
        "err_command_syntax": "无法解析启动命令 {command!r}: {error}",
        "err_port_placeholder": "启动命令 {command!r} 用到了 {{port}}, 但该服务没有端口",
        "err_ps_header": "无法读取 ps 的输出: 意外的表头 {header!r}",
        "err_no_table": "这里没有可以读取进程表的来源",
        "err_port_source": "端口来源 {source!r} 在这里不可用",
        "err_env_choice": "{name}={value}: 应为以下之一: {choices}",
        "err_cannot_run": "无法运行 {program}: {error}",
        "err_tool_failed": "{command} 失败: {error}",
        "err_cannot_write": "无法写入 {path}: {error}",
        "err_supervise_one": "supervise 只接受一个服务",
        "err_kill_port_none": "kill-port 至少需要一个端口",
        "err_init_names": "init 不接受服务名",
        "err_json_foreground": "--json: {command} 直接显示服务自己的输出; 如需 JSON 行, 请用 logs -f --json",
        "err_watch": "--watch 需要一个大于 0 的秒数",
        "err_count": "--count 需要一个大于 0 的次数 (不加 --count 时, --watch 一直运行到 Ctrl-C)",
        "err_unknown_command": "未知的命令 {command!r} (可用的命令: {commands}; 或如 stop-backend)",
        "err_no_command": "没有指定命令 (试试 --help)",
        "err_unrecognized": "无法识别的选项 {option!r}",
        "err_port_option": "无法识别的选项 {option!r}: 服务的端口是它的一项设置, 例如 --set backend.port=9001, PROCCLEAN_BACKEND_PORT=9001, 或在 procclean.ini 的 [backend] 下写 port = 9001",
        "err_ambiguous": "有歧义的选项 {flag} ({options})",
        "err_needs_value": "{flag} 需要一个值 ({metavar})",
        "err_no_value": "{flag} 不接受值",
        "err_choice": "{flag}: {value!r} 不是以下之一: {choices}",
        "internal_error": "内部错误: {kind}: {error} (设置 PROCCLEAN_DEBUG=1 可看到出错的位置; 请报告此问题)",
    },
}
SERVICE_NAMES_ZH = {"backend": "后端", "frontend": "前端"}
MARKS_EMOJI = {"ok": "\u2705", "kill": "\U0001f480", "fail": "\u274c", "warn": "\u26a0\ufe0f ",
               "clean": "\U0001f9f9", "off": "\u2b55"}
MARKS_ASCII = {"ok": "[ok]", "kill": "[killed]", "fail": "[error]", "warn": "[warning]",
               "clean": "[clean]", "off": "[off]"}
COLOURS = {"ok": "32", "kill": "33", "fail": "31", "warn": "33", "clean": "36", "off": "90"}


class Reporter(object):
    """Results to stdout, warnings to stderr, in the chosen language; a closed stdout (`|
    head -1`) only drops output.  With `json`, `finish` prints one document: the records
    and every message as an event; after `stream()`, each is one JSON line at once."""

    def __init__(self, lang="en", quiet=False, stdout=None, stderr=None, environ=None,
                 json=False):
        environ = os.environ if environ is None else environ
        self.lang = lang
        self.quiet = quiet
        self.document = {} if json else None   # kind -> [record]; None: text
        self.streaming = False
        self.printed = False                    # the command printed its own JSON
        self.stdout = stdout if stdout is not None else sys.stdout
        self.stderr = stderr if stderr is not None else sys.stderr
        self.broken = set()
        plain_term = environ.get("TERM") == "dumb"
        emoji = not plain_term and _encodes("\u2705\U0001f9f9", self.stdout, "ascii")
        self.marks = MARKS_EMOJI if emoji else MARKS_ASCII
        colour_ok = "NO_COLOR" not in environ and not plain_term
        # Colour only where a terminal shows it, each stream on its own (`2>errors.log`).
        self.colour = colour_ok and _isatty(self.stdout)
        self.colour_err = colour_ok and _isatty(self.stderr)

    def redirected(self, stdout, stderr):
        """This reporter writing to other streams (dev's relay, between services' lines)."""
        other = Reporter.__new__(Reporter)
        other.__dict__.update(self.__dict__)
        other.stdout, other.stderr, other.broken = stdout, stderr, set()
        return other

    def text(self, key, err=False, plain=False, **values):
        """The message `key` in the chosen language; `plain`: without marks."""
        template = MESSAGES[self.lang].get(key) or MESSAGES["en"][key]
        # Every value escaped, whoever passed it: none can rewrite or hide a report line.
        values = dict((k, printable(v) if isinstance(v, str) else v)
                      for k, v in values.items())
        colour = self.colour_err if err else self.colour
        for mark, symbol in self.marks.items():
            if colour:
                symbol = "\033[%sm%s\033[0m" % (COLOURS[mark], symbol)
            values.setdefault(mark, "" if plain else symbol)
        if "svc" in values:
            values["svc"] = self.service_name(values["svc"])
        return template.format(**values)

    def service_name(self, name):
        """A service as messages name it: 后端, 前端 and kill-port's 端口 8000 in Chinese."""
        if self.lang != "zh":
            return name
        return SERVICE_NAMES_ZH.get(name) or re.sub(r"^port (\d+)$", r"端口 \1", name)

    def say(self, key, always=False, **values):
        """A result line; `always`: even with --quiet (what needs action)."""
        if self.document is not None:
            self.event(key, values)
        elif always or not self.quiet:
            self.write(self.stdout, self.text(key, **values))

    def warn(self, key, **values):
        self.write(self.stderr, self.text(key, err=True, **values))
        if self.document is not None:
            self.event(key, values, warning=True)

    def line(self, text, err=False):
        """Text as it is; with --json, stdout has the records instead."""
        if err or not (self.quiet or self.document is not None):
            self.write(self.stderr if err else self.stdout, text)

    def error(self, message):
        """The one line of an error that ends the command, escaped."""
        self.write(self.stderr, "procclean: " + printable(message))

    def event(self, key, values, warning=False):
        event = {"event": key, "message": self.text(key, plain=True, **values).strip()}
        if warning:
            event["warning"] = True
        event.update(values)
        self.add("events", event)

    def add(self, kind, record):
        """With --json: a record of the result (nothing in text, where a message says it)."""
        if self.streaming:
            import json
            self.data(json.dumps(record, default=str))
        elif self.document is not None:
            self.document.setdefault(kind, []).append(record)

    def stream(self):
        """With --json: from now on one JSON object per line, as each comes."""
        self.streaming = self.document is not None

    def finish(self, kinds=(), **head):
        """With --json, unless the command printed its own: `head`, then each of `kinds`
        even when empty, then the rest."""
        if self.document is None or self.printed or self.streaming:
            return
        import json
        document = dict(head)
        document.update((kind, self.document.pop(kind, [])) for kind in kinds)
        events = self.document.pop("events", [])
        document.update(self.document, events=events)
        self.data(json.dumps(document, indent=2, default=str))

    def data(self, text):
        """Machine-readable output (JSON): printed even with --quiet."""
        self.printed = True
        self.write(self.stdout, text)

    def raw(self, text):
        """Text as it is (terminal control for status --watch), no newline added."""
        self.write(self.stdout, text, end="")

    def write(self, stream, text, end="\n"):
        """Text the stream cannot encode is escaped."""
        if stream is None or id(stream) in self.broken:
            return      # started with the stream closed (`>&-`): nowhere to write
        encoding = getattr(stream, "encoding", None) or "utf-8"
        try:
            if not _encodes(text, stream, "utf-8"):
                text = text.encode(encoding, "backslashreplace").decode(encoding, "replace")
            stream.write(text + end)
            stream.flush()
        except (BrokenPipeError, ValueError, OSError):
            # The reader went away; keep working, say nothing more there.
            self.broken.add(id(stream))
            _silence(stream)


def _encodes(text, stream, default):
    """Whether `stream` can encode `text` (`default`: its encoding when it names none)."""
    try:
        text.encode(getattr(stream, "encoding", None) or default)
        return True
    except (UnicodeEncodeError, LookupError):
        return False


def _isatty(stream):
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def display_width(text):
    """Terminal cells `text` takes: wide and fullwidth (CJK) two, combining marks none."""
    if _encodes(text, None, "ascii"):
        return len(text)
    import unicodedata
    return sum(0 if unicodedata.combining(c) else
               2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


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

# PROCCLEAN_ variables that are not PROCCLEAN_<SERVICE>_<FIELD>.
RESERVED_ENV = ("PROCCLEAN_PS", "PROCCLEAN_PORTS", "PROCCLEAN_CONFIG", "PROCCLEAN_DEBUG",
                "PROCCLEAN_NO_ROTATE", TAG_PROJECT, TAG_SERVICE) + tuple(
    "PROCCLEAN_" + key.upper() for key in GENERAL_SETTINGS)


class Config(object):
    """The services (in order) and settings (build_config): grace, lang, max_restarts,
    project (real path), project_given (as named), everywhere, viewers, port_offset (None,
    "auto" or a number), fixed_ports (service -> the port the environment or --set
    replaced: a set port is never offset)."""

    def __init__(self, services, default_names, **settings):
        self.services = services
        self.default_names = default_names
        self.ports = None               # the offset settled on: see settle_ports
        self.__dict__.update(settings)

    def select(self, names, launching=False):
        """The services named, each once (all defaults when none), or a usage error.
        `launching`: the defaults with a command, if any (not one the recipes only stop)."""
        for name in names:
            if name not in self.services:
                raise ProcCleanError("err_unknown_service", name=name,
                                     known=", ".join(self.services))
        once = [name for i, name in enumerate(names) if name not in names[:i]]
        chosen = [self.services[name] for name in once or self.default_names]
        runs = [s for s in chosen if s.command.strip()]
        return runs if launching and runs and not once else chosen


_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _split_names(text):
    return (text or "").replace(",", " ").split()


class _Specs(object):
    """The services' fields as text (`specs[name]`), in the order first named."""

    def __init__(self):
        self.order = [builtin["name"] for builtin in BUILTIN_SERVICES]
        self.fields = dict((builtin["name"], dict(builtin)) for builtin in BUILTIN_SERVICES)
        self.fixed_ports = {}   # name -> the port the environment or --set replaced

    def __getitem__(self, name):
        """The fields of service `name`; a new service's defaults the first time."""
        if name not in self.fields:
            # (Not by re: its import is 3 ms of every command that names a worker.)
            if not name or name[0] not in _ALNUM or name.strip(_ALNUM + "_.-"):
                raise ProcCleanError("err_service_name", name=name)
            self.fields[name] = default_fields(name)
            self.order.append(name)
        return self.fields[name]


def default_fields(name):
    """The fields of service `name` when the config says nothing: a built-in's, or empty."""
    for builtin in BUILTIN_SERVICES:
        if builtin["name"] == name:
            return dict(builtin)
    return {"name": name, "pattern": "", "pidfile": name + ".pid", "logfile": name + ".log",
            "port": "", "command": "", "cwd": ".", "health": ""}


def load_config(config_path=None, settings=(), environ=None, folder=".", problems=None,
                read_file=True):
    """The Config of the built-ins, the INI file, PROCCLEAN_* variables and `--set`,
    later ones winning.  A bad field is a usage error, or noted in `problems` (doctor)."""
    environ = os.environ if environ is None else environ
    specs, general = _Specs(), {}
    path = config_path or environ.get("PROCCLEAN_CONFIG")
    if path and not os.path.exists(path):
        raise ProcCleanError("err_config_missing", path=path)
    path = path or os.path.join(folder, CONFIG_FILE)
    if read_file and os.path.exists(path):
        overlay_file(specs, general, read_config_file(path), path)
    overlay_environ(specs, general, environ)
    overlay_settings(specs, settings)
    return build_config(build_services(specs, problems), specs, general, folder, environ)


def read_config_file(path):
    """An INI file's [(section, {key: value})], as configparser reads it (no %-syntax)."""
    try:
        # A regular file only; a byte-order mark dropped (as utf-8-sig; Windows editors).
        data = read_regular(path)
        text = (data[3:] if data.startswith(b"\xef\xbb\xbf") else data).decode("utf-8")
    except OSError as exc:
        raise ProcCleanError("err_in", where=path, error=error_text(exc))
    except UnicodeDecodeError as exc:
        raise ProcCleanError("err_in", where=path, error=str(exc).splitlines()[0])
    sections = _plain_ini_sections(text)
    if sections is not None:
        return sections
    import configparser
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text, source=path)
    except configparser.Error as exc:
        raise ProcCleanError("err_in", where=path, error=str(exc).splitlines()[0])
    return [(section, dict(parser.items(section))) for section in parser.sections()]


def _plain_ini_sections(text):
    """What configparser reads from `text` when each line is blank, a comment, a [section]
    or an unindented `key = value` (or `:`) new in its section, as init writes it; else None
    (configparser, 4-5 ms of every command for re and enum, reads it, words its errors)."""
    sections = []
    names = set()
    items = None
    # configparser's lines end at "\n" only (read_string's StringIO), so no splitlines
    for line in text.split("\n"):
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if line[0].isspace():
            return None
        if stripped[0] == "[":
            name = stripped[1:-1]
            # (A "]" inside: Python 3.6's configparser ends the name at the first one.)
            if stripped[-1] != "]" or not name or "]" in name or name == "DEFAULT" \
                    or name in names:
                return None
            names.add(name)
            items = {}
            sections.append((name, items))
            continue
        equals = stripped.find("=")
        colon = stripped.find(":")
        cut = equals if colon < 0 or 0 <= equals < colon else colon
        key = stripped[:cut].rstrip().lower()
        if items is None or cut < 0 or not key or key in items:
            return None
        items[key] = stripped[cut + 1:].strip()
    return sections


def overlay_file(specs, general, sections, path):
    """The file's [procclean] into `general`, its other sections into `specs`."""
    for section, items in sections:
        ours = section == "procclean"
        name = section[len("service:"):] if section.startswith("service:") else section
        into = general if ours else specs[name]
        for key, value in items.items():
            if ours and key not in GENERAL_SETTINGS:
                raise ProcCleanError("err_no_setting", path=path, section="procclean",
                                     setting=key, fields=", ".join(GENERAL_SETTINGS))
            if not ours and key not in ALL_FIELDS:
                # ([general] grace = 3: a section of its own is a service's)
                raise ProcCleanError(
                    "err_general_setting" if key in GENERAL_SETTINGS else "err_no_setting",
                    path=path, section=section, setting=key, fields=", ".join(ALL_FIELDS))
            into[key] = value
    if general.get("root"):
        # Relative to the file that says it.
        general["root"] = os.path.join(os.path.dirname(os.path.abspath(path)), general["root"])


def overlay_environ(specs, general, environ):
    """PROCCLEAN_<SETTING> into `general`, PROCCLEAN_<SERVICE>_<FIELD> into `specs`."""
    for key in GENERAL_SETTINGS:
        value = environ.get("PROCCLEAN_" + key.upper())
        if value:
            general[key] = value
    for key in sorted(environ):
        if not key.startswith("PROCCLEAN_") or key in RESERVED_ENV:
            continue
        for field in sorted(ALL_FIELDS, key=len, reverse=True):    # _UNHEALTHY_AFTER
            suffix = "_" + field.upper()
            if key.endswith(suffix) and len(key) > len("PROCCLEAN_") + len(suffix):
                env_name = key[len("PROCCLEAN_"):-len(suffix)].lower()
                name = next((n for n in specs.order if n.replace("-", "_") == env_name),
                            env_name)
                if field == "port":
                    specs.fixed_ports.setdefault(name, specs[name]["port"])
                specs[name][field] = environ[key]
                break


def overlay_settings(specs, settings):
    """--set SERVICE.FIELD=VALUE into `specs`."""
    for setting in settings:
        name_field, eq, value = setting.partition("=")
        name, dot, field = name_field.rpartition(".")
        if not eq or not dot or not name:
            raise ProcCleanError("err_set_syntax", value=setting)
        if field not in ALL_FIELDS:
            raise ProcCleanError("err_set_field", field=field, fields=", ".join(ALL_FIELDS))
        if field == "port":
            specs.fixed_ports.setdefault(name, specs[name]["port"])
        specs[name][field] = value


def build_services(specs, problems):
    """name -> Service; a bad field raises, or with `problems` is noted and left out."""
    services = {}
    for name in specs.order:
        spec = specs[name]
        while name not in services:
            try:
                services[name] = _build_service(spec)
            except _FieldError as exc:
                if problems is None:
                    raise
                problems.append((name, exc.field, exc))
                spec = dict(spec)
                spec[exc.field] = {"pidfile": name + ".pid", "logfile": name + ".log"}.get(
                    exc.field, "")
    _check_after(services, problems)
    return services


def build_config(services, specs, general, folder, environ):
    """The Config of the services and the general settings, checked."""
    default_names = _split_names(general.get("services")) or specs.order
    for name in default_names:
        if name not in services:
            raise ProcCleanError("err_services_unknown", name=name)
    grace = parse_seconds(general["grace"], "grace") if general.get("grace") else None
    max_restarts = parse_count(general["max_restarts"], "max_restarts") \
        if general.get("max_restarts") else None
    scope = (general.get("scope") or "project").strip().lower()
    if scope not in SCOPES:
        raise ProcCleanError("err_scope", value=general["scope"])
    root = general.get("root") or folder
    if not os.path.isdir(root):
        raise ProcCleanError("err_root", path=root)
    given = _logical_path(root, environ) if root == folder else os.path.abspath(root)
    return Config(
        services, default_names, grace=grace, lang=general.get("lang"),
        max_restarts=max_restarts, project=os.path.realpath(root), project_given=given,
        everywhere=scope == "machine", fixed_ports=specs.fixed_ports,
        viewers=VIEWERS.union(_split_names(general.get("editors"))),
        port_offset=parse_port_offset(general.get("port_offset")))


def parse_port_offset(text):
    """`port_offset`: None, "auto" (each checkout its own) or a number added to ports."""
    text = (text or "").strip().lower()
    if text in ("", "0", "no", "off", "none"):
        return None
    if text == "auto":
        return text
    if re.match(r"^\+?\d{1,5}$", text) and int(text) < 65535:
        return int(text)
    raise ProcCleanError("err_port_offset", value=text)


def _logical_path(folder, environ):
    """`folder` as the user reached it: $PWD when it names the same folder (command lines
    name a checkout reached by a symlink that way), else the absolute path."""
    pwd = environ.get("PWD") or ""
    if os.path.isabs(pwd):
        with quietly():
            if os.path.samefile(pwd, folder):
                return os.path.normpath(pwd)
    return os.path.abspath(folder)


class _FieldError(ProcCleanError):
    def __init__(self, field_name, key, **values):
        ProcCleanError.__init__(self, key, **values)
        self.field = field_name


def _build_service(spec):
    name = spec["name"]
    try:
        Service(name, spec["pattern"], "", "", None, "", "")
    except re.error as exc:
        raise _FieldError("pattern", "err_pattern", svc=name, pattern=spec["pattern"],
                          error=exc)
    port = None
    if str(spec.get("port") or "").strip():
        try:
            port = parse_port(spec["port"])
        except ProcCleanError as exc:
            raise _FieldError("port", "err_in", where=name, error=exc)
    for field in ("pidfile", "logfile"):
        if not spec[field]:
            raise _FieldError(field, "err_field_empty", svc=name, field=field)
    scope = (spec.get("scope") or "").strip().lower()
    if scope and scope not in SCOPES:
        raise _FieldError("scope", "err_field_scope", svc=name, value=scope)
    service = Service(name, spec["pattern"], spec["pidfile"], spec["logfile"], port,
                      spec["command"], spec["cwd"] or ".", spec.get("health", ""),
                      after=_split_names(spec.get("after")))
    service.scope = scope
    for field in ("supervise", "wait"):
        text = str(spec.get(field) or "").strip().lower()
        if text not in YES_NO:
            raise _FieldError(field, "err_field_yes_no", svc=name, field=field, value=text)
        setattr(service, field, YES_NO[text])
    if str(spec.get("unhealthy_after") or "").strip():
        try:
            service.unhealthy_after = parse_seconds(spec["unhealthy_after"], "unhealthy_after")
        except ProcCleanError as exc:
            raise _FieldError("unhealthy_after", "err_in", where=name, error=exc)
    return service


def _check_after(services, problems):
    """Every name in an `after` list is a service, and none waits for itself."""
    for service in services.values():
        for name in list(service.after):
            if name == service.name:
                error = ProcCleanError("err_after_self", svc=name)
            elif name in services:
                continue
            else:
                error = ProcCleanError("err_after_unknown", svc=service.name, name=name)
            if problems is None:
                raise error
            problems.append((service.name, "after", error))
            service.after.remove(name)
    try:
        start_order(list(services.values()))
    except ProcCleanError as exc:     # a circle: start_order names its first service
        if problems is None:
            raise
        problems.append((exc.service, "after", exc))
        for service in services.values():
            service.after = []


def parse_seconds(text, what):
    """Seconds from 0 to a day; `what` names the option or setting in the error."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ProcCleanError("err_seconds", what=what, value=text)
    if value < 0 or value != value or value > 86400:
        raise ProcCleanError("err_seconds_range", what=what, value=text)
    return value


def parse_count(text, what):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise ProcCleanError("err_whole_number", what=what, value=text)
    return value


def resolve_cwd(spec, folder="."):
    """The folder a service starts in: `dir?marker` means dir when dir/marker exists."""
    if "?" in spec:
        sub, _, marker = spec.partition("?")
        return sub if os.path.exists(os.path.join(folder, sub, marker)) else "."
    return spec


# Lock files that name a Python project's tool, in the order they are tried.
PYTHON_LOCKS = (("uv.lock", "uv"), ("poetry.lock", "poetry"), ("Pipfile.lock", "pipenv"),
                ("pdm.lock", "pdm"))
# Lock files that name a Node package manager, and how each runs a package.json script.
NODE_LOCKS = (("pnpm-lock.yaml", "pnpm", "pnpm run"), ("yarn.lock", "yarn", "yarn run"),
              ("bun.lockb", "bun", "bun run"), ("bun.lock", "bun", "bun run"),
              ("package-lock.json", "npm", "npm run"))


def python_toolchain(cwd=".", folder=".", environ=None):
    """What `{python}` is in `cwd` of the project at `folder`: (argv prefix, message key
    saying why, its values).  The project's own interpreter wins; an active venv outside
    the project stands in only when the project has none (else values["ignored"]).  A
    venv's python is not resolved: the link's target lacks the venv's packages."""
    environ = os.environ if environ is None else environ
    active = environ.get("VIRTUAL_ENV")
    if not (active and os.path.exists(os.path.join(active, "bin", "python"))):
        active = None
    if active and path_inside(os.path.realpath(active), [os.path.realpath(folder)]):
        return [os.path.join(active, "bin", "python")], "tc_env", {"where": active}
    python, key, values = _project_python(cwd, folder)
    if active and key == "tc_lock_no_tool" or active and python is None:
        return [os.path.join(active, "bin", "python")], "tc_env_outside", {"where": active}
    if python is None:
        return [sys.executable or "python3"], "tc_self", {}
    if active:
        values["ignored"] = active
    return python, key, values


def _project_python(cwd, folder):
    """The project's own interpreter: .venv/, venv/ or another venv (a folder with a
    pyvenv.cfg: `python3 -m venv env`) in the service's folder, then the project's, then
    a uv, poetry or pipenv lock file's (`uv run python`, ...)."""
    bases = [cwd] if os.path.abspath(cwd) == os.path.abspath(folder) else [cwd, folder]
    for base in bases:
        others = [name for name in _listdir(base)
                  if os.path.isfile(os.path.join(base, name, "pyvenv.cfg"))]
        for name in [".venv", "venv"] + others:
            python = os.path.join(base, name, "bin", "python")
            if os.path.exists(python):
                return [os.path.abspath(python)], "tc_venv", {
                    "where": os.path.normpath(os.path.join(base, name))}
    locks = [{"lock": os.path.normpath(os.path.join(base, lock)), "tool": tool}
             for base in bases for lock, tool in PYTHON_LOCKS
             if os.path.isfile(os.path.join(base, lock))]
    for found in locks:
        if _which(found["tool"]):
            return [found["tool"], "run", "python"], "tc_lock", found
    if locks:
        return [sys.executable or "python3"], "tc_lock_no_tool", locks[0]
    return None, None, {}


def toolchain_why(out, key, values):
    """Why an interpreter was chosen, in words (and the active venv passed over)."""
    why = out.text(key, **values)
    if values.get("ignored"):
        why += out.text("tc_ignored", where=values["ignored"])
    return why


def python_env(env, cwd):
    """A service's environment with the project's interpreter first: an active venv passed
    over leaves PATH for the project's; with none active, the project's goes first too, as
    activating it would (a console script with no `python -m` form is its venv's)."""
    python, key, values = python_toolchain(cwd, ".", env)
    if not values.get("ignored") and (key != "tc_venv" or env.get("VIRTUAL_ENV")):
        return
    ignored = values.get("ignored") and os.path.normpath(
        os.path.join(values["ignored"], "bin"))
    path = [p for p in env.get("PATH", "").split(os.pathsep)
            if p and os.path.normpath(p) != ignored]
    env.pop("VIRTUAL_ENV", None)
    env.pop("VIRTUAL_ENV_PROMPT", None)
    if key == "tc_venv":
        env["VIRTUAL_ENV"] = os.path.dirname(os.path.dirname(python[0]))
        path.insert(0, os.path.dirname(python[0]))
    env["PATH"] = os.pathsep.join(path)


def node_toolchain(cwd="."):
    """(package manager, how it runs a script, the lock file that chose it or None)."""
    for base in ([cwd] if os.path.abspath(cwd) == os.getcwd() else [cwd, "."]):
        for lock, tool, run_script in NODE_LOCKS:
            if os.path.isfile(os.path.join(base, lock)):
                return tool, run_script, os.path.normpath(os.path.join(base, lock))
    return "npm", "npm run", None


def command_argv(command, cwd=".", port=None):
    """The argv of a start command, `{python}` and `{port}` filled in (shell syntax: sh)."""
    import shlex
    if "{port}" in command:
        if port is None:
            raise ProcCleanError("err_port_placeholder", command=command)
        command = command.replace("{port}", str(port))
    if "{python}" in command:
        python = python_toolchain(cwd)[0]
        command = command.replace("{python}", " ".join(shlex.quote(p) for p in python))
    # Quoted text is one word, not shell syntax (`gunicorn "app:create_app()"`), unless
    # a shell expands it ($, ` and \ between double quotes).
    unquoted = re.sub(r"'[^']*'|\"[^\"$`\\\\]*\"", "''", command)
    if re.search(r"[|&;<>()$`*?~\\\n]|^\s*\w+=", unquoted):
        return ["/bin/sh", "-c", command]
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ProcCleanError("err_command_syntax", command=command, error=exc)
    if not argv:
        raise ProcCleanError("err_empty_command")
    return argv


# ---------------------------------------------------------------------------
# Looking at the project: context, targets, pidfiles, port holders, locks, hints
# ---------------------------------------------------------------------------

# The options a command runs with, and their defaults (make_context sets them).
CONTEXT_OPTIONS = (
    ("grace", DEFAULT_GRACE),       # seconds stop waits after SIGTERM before SIGKILL
    ("dry_run", False),
    ("json", False),
    ("force", False),               # kill-port: SIGKILL at once; init: overwrite
    ("wait", False),                # start --wait
    ("timeout", START_TIMEOUT),     # start --wait, `after`
    ("check", False),               # status --check
    ("watch", None),                # status --watch interval, or None
    ("count", None),                # status --watch: snapshots to print
    ("health_timeout", HEALTH_TIMEOUT),
    ("supervise", False),
    ("max_restarts", MAX_RESTARTS),
    ("follow", False),              # logs -f
    ("lines", LOG_TAIL_LINES),      # logs -n
    ("lines_given", False),         # logs: -n given (--since/--grep show all else)
    ("log_filter", None),           # logs --since/--grep: (since, grep), or None
    ("rotate", True),               # start: keep the previous log as .log.1
    ("passthrough", ()),            # options a background supervisor needs
    ("everywhere", False),          # --everywhere: the recipes' machine-wide match
    ("replace", False),             # dev: stop what runs in the background first
    ("probe_every", None),          # status: how often to ask a health URL (0: each look)
)


class Context(object):
    """What every command works with: system, config, options (CONTEXT_OPTIONS), output."""

    def __init__(self, system, config, out, **options):
        self.system = system
        self.config = config
        self.out = out
        unknown = set(options).difference(name for name, _ in CONTEXT_OPTIONS)
        if unknown:
            raise TypeError("Context has no option %s" % ", ".join(sorted(unknown)))
        for name, default in CONTEXT_OPTIONS:
            setattr(self, name, options.get(name, default))
        self.passthrough = list(self.passthrough)
        self.project = config.project or os.path.realpath(".")
        self.project_given = config.project_given or self.project
        self.viewers = config.viewers
        self.hurry = False                  # a second Ctrl-C: SIGKILL now, no more grace
        self.asked = []                     # start: the stop signals it got
        self.interrupted = 0                # stop: the signal that cut its wait short
        self.launching = False              # ...one now waits: a launch is under way
        self.probed = {}                    # service name -> (when, last health answer)
        self.keep_supervised = set()        # restart: services a supervisor ran
        self.said_fixed = set()             # services told how to take a port (once)
        self.again = "start"                # what a hint runs to start again (dev: dev)
        self.root = None        # the project's root, when procclean runs in a folder of it

    def note_interrupt(self, signum, frame):
        """Ctrl-C, SIGTERM or SIGHUP in a stop (interrupts_caught): its wait ends."""
        self.interrupted = self.interrupted or signum


class Survey(_Record):
    """A look: table, targets, pidfiles and their verdicts, outsiders, port listeners."""

    __slots__ = ("table", "targets", "pidfiles", "outside", "listeners", "verdicts")

    def targets_of(self, service):
        return [t for t in self.targets if t.service is service]

    def running(self, service):
        """The service's targets that still run (a zombie has exited)."""
        return [t for t in self.targets_of(service) if not t.process.zombie]

    def started(self, service):
        """What runs of the service as started (not a mere holder of its port)."""
        return [t for t in self.running(service) if t.origin != "port"]

    def outside_of(self, service):
        return [o for o in self.outside if o.service is service]


def read_targets(ctx, services, warn=True):
    """Take the process table once and find every target of `services`."""
    table = ctx.system.process_table()
    protected = protected_pids(table, ctx.system.self_pid(), ctx.system.parent_pid())
    return find_targets(ctx, services, table, protected, warn)


def find_targets(ctx, services, table, protected, warn=False, fresh=None):
    """This project's processes of `services` (SPEC "Scope"): the trusted pidfile's, the
    supervisor state's, the tagged, pattern matches inside, listeners on the port, each
    with its descendants and session.  `fresh` (PIDs new since a look): only those match."""
    system = ctx.system
    project = Project(ctx.project_given, system.process_tags(table))
    listeners = port_listeners(ctx, services)
    matched, holders, folders = {}, {}, set()
    candidates = table if fresh is None else dict((pid, table[pid]) for pid in fresh)
    for service in services:
        # What the pattern finds that may be a target: no viewer, no procclean.
        matched[service.name] = [p for p in candidates.values() if service.matches(p)
                                 and p.pid not in protected
                                 and not is_viewer(p, ctx.viewers) and not is_procclean(p)]
        pids = sorted(set(l.pid for l in listeners if l.port == service.port
                          and l.pid in table and l.pid not in protected))
        # The user's editor or browser, a container's proxy, a tunnel: named, not taken.
        holders[service.name] = [table[pid] for pid in pids
                                 if port_exempt(table[pid], ctx.viewers) is None
                                 and program_name(table[pid].command) not in FORWARDERS]
        # Folders tell what is inside (another project's tagged process: to report it).
        folders.update(p.pid for p in matched[service.name] + holders[service.name]
                       if (project.tags.get(p.pid) or ("",))[0] != project.path)
    project.cwds = system.process_cwds(folders)
    project.nested = nested_checkouts(project, project.cwds.values())
    homes = [(s, os.path.normpath(os.path.join(project.path,
                                               resolve_cwd(s.cwd, project.path))))
             for s in ctx.config.select([]) + services]
    roots, outside, pidfiles, verdicts = [], [], {}, {}
    for service in services:
        info = pidfiles[service.name] = system.read_pidfile(service.pidfile)
        found, verdicts[service.name] = _pidfile_root(ctx, service, info, table, protected,
                                                      warn, project)
        roots.extend(found + state_roots(ctx, service, table, protected, project))
        everywhere = ctx.everywhere or (service.scope == "machine" if service.scope
                                        else ctx.config.everywhere)
        found, left = scope_roots(table, service, project, matched[service.name],
                                  holders[service.name], everywhere, homes)
        roots.extend(found)
        outside.extend(left)
    targets = plan_targets(table, roots, protected)
    taken = set(t.pid for t in targets)
    # A zombie outside has exited (a container's PID 1 may never reap it).
    outside = [o for o in outside if o.process.pid not in taken and not o.process.zombie]
    return Survey(table, targets, pidfiles, outside, listeners, verdicts)


def nested_checkouts(project, folders):
    """Of `folders`, the checkouts of their own nested in the project (a git worktree added
    inside it, as coding agents do, or a folder with its own procclean.ini): what runs there
    is not the project's by folder.  A submodule (.git names no worktree) is the project's."""
    found = set()
    seen = {}           # folder: whether it is a checkout of its own (asked once)
    for folder in folders:
        if not folder or not path_inside(folder, project.paths):
            continue
        folder = os.path.normpath(folder)
        while folder not in project.paths and os.path.dirname(folder) != folder:
            if folder not in seen:
                seen[folder] = own_checkout(folder)
            if seen[folder]:
                found.add(folder)
            folder = os.path.dirname(folder)
    return tuple(sorted(found))


def own_checkout(folder):
    """Whether `folder` is a checkout or procclean project of its own (nested_checkouts)."""
    if os.path.isfile(os.path.join(folder, CONFIG_FILE)):
        return True
    git = _read_text(os.path.join(folder, ".git"), 4096) or ""
    return git.startswith("gitdir:") and "/worktrees/" in git


def port_listeners(ctx, services):
    """The listeners on the ports of `services` (nothing asked without a port)."""
    ports = sorted(set(s.port for s in services if s.port is not None))
    return ctx.system.listeners(ports) if ports else []


def pidfile_verdict(system, service, info, table, protected, project):
    """(verdict, process): absent, invalid, untrusted, protected (procclean or an
    ancestor), dead (none, or a zombie), foreign (another project's or service's), reused
    (started after the pidfile was written), unknown-start (no telling), trusted."""
    if not info.exists:
        return "absent", None
    if info.problem:
        return info.problem, None
    if info.pid in protected:
        return "protected", None
    proc = table.get(info.pid)
    if proc is None or proc.zombie:
        return "dead", None
    if not project_may_own(system, project, proc, service):
        return "foreign", proc      # whatever the pattern says: it is not ours
    # The start record is exact (the mtime may be coarse): it names its own process,
    # whoever wrote the pidfile since; another start is a reused PID only if the pidfile
    # was not written since the record (else it is judged as any pidfile).
    record = system.read_start_record(info)
    same = system.is_recorded(proc, record)
    if same or (same is False and record.get("file") == info.stamp):
        return ("trusted" if same else "reused"), proc
    # Unmatched by the pattern, it counts only if it ran when the pidfile was written.
    before = service.matches(proc) or system.started_by(proc, info.mtime)
    return ("unknown-start" if before is None else "trusted" if before else "reused"), proc


PIDFILE_WARNINGS = {"invalid": "pidfile_invalid", "untrusted": "pidfile_untrusted",
                    "protected": "pidfile_protected", "reused": "pidfile_reused",
                    "unknown-start": "pidfile_unknown_start", "foreign": "pidfile_foreign"}


def _pidfile_root(ctx, service, info, table, protected, warn, project):
    """([its root] if the pidfile is trusted, else [] after a warning; its verdict)."""
    verdict, proc = pidfile_verdict(ctx.system, service, info, table, protected, project)
    if verdict == "trusted":
        return [(proc, service, "pidfile")], verdict
    if warn and verdict in PIDFILE_WARNINGS:
        tag = project.tags.get(proc.pid) if proc else None
        where = "%s=%s %s=%s" % (TAG_PROJECT, tag[0], TAG_SERVICE, tag[1]) if tag else \
            (project.cwds.get(proc.pid) if proc else None) or ctx.out.text("folder_unknown")
        ctx.out.warn(PIDFILE_WARNINGS[verdict], path=info.path, pid=info.pid,
                     svc=service.name, content=printable(repr(info.raw)[1:]),
                     where=printable(where), cmd=printable(proc.command) if proc else "")
    return [], verdict


def project_may_own(system, project, proc, service):
    """Whether a process a pidfile or state names may be `service`'s: not if tagged for
    another project or service, nor, untagged, if its folder and paths are outside (a reused
    PID can name another checkout's backend).  An unreadable folder proves nothing."""
    tag = project.tags.get(proc.pid)
    if tag is not None:
        return tag == (project.path, service.name)
    if proc.pid not in project.cwds:
        project.cwds.update(system.process_cwds([proc.pid]))
    return project.cwds.get(proc.pid) is None or project.holds(proc)


def state_roots(ctx, service, table, protected, project):
    """The running child a supervisor's state names (a SIGKILLed supervisor's record)."""
    state = ctx.system.read_state(state_path(service))
    child, when = state.get("child"), state.get("updated")
    if not isinstance(child, int) or not isinstance(when, (int, float)) or child in protected:
        return []
    proc = table.get(child)
    if proc is None or proc.zombie or ctx.system.started_by(proc, when) is not True \
            or not project_may_own(ctx.system, project, proc, service):
        return []
    return [(proc, service, "state")]


def port_holders(listeners, port, table):
    """Listeners on `port` (none for no port), one per PID, commands from the table."""
    seen = {}
    for listener in listeners:
        if listener.port != port or listener.pid in seen:
            continue
        proc = table.get(listener.pid) if listener.pid is not None else None
        if proc is not None:
            listener.command = proc.command
        seen[listener.pid] = listener
    return list(seen.values())


def holder_kind(proc, targets, viewers):
    """What a listener's process is to a service running `targets` (the one rule status,
    start, stop and doctor follow): "own" (only this makes it running), "leftover" (the
    project's, not the service's: stop takes it by the port rule), "container", "viewer"
    (never signalled), "stranger" (anyone else), "unseen"."""
    if proc is None:
        return "unseen"
    target = next((t for t in targets if t.pid == proc.pid), None)
    if target is not None and target.origin != "port":
        return "own"
    return port_exempt(proc, viewers) or ("leftover" if target is not None else "stranger")


def port_facts(ctx, service, listeners, table, targets, hints=None):
    """A PortHolder (kind, what, how to free) for each listener on the service's port."""
    facts = []
    for listener in port_holders(listeners, service.port, table):
        proc = table.get(listener.pid) if listener.pid is not None else None
        kind = holder_kind(proc, targets, ctx.viewers)
        words = ("", None)
        if kind not in ("own", "unseen"):
            hints = hints or Hints()
            words = holder_words(ctx, service, proc, kind, hints)
        facts.append(PortHolder(listener, kind, *words))
    return facts


def holder_words(ctx, service, proc, kind, hints):
    """(the holder of the service's port in words; the command freeing it, or None)."""
    out, port = ctx.out, service.port
    if kind == "leftover":
        return (out.text("holder_leftover", svc=service.name),
                hints.command("stop", service.name))
    if kind == "viewer":
        return out.text("holder_viewer"), None
    if kind == "container":
        proxy = program_name(proc.command)
        podman = proxy in PODMAN_PROXIES
        found = None if podman else ctx.system.containers_on(port)
        if found:
            names = " ".join(printable(name) for _, name, _ in found)
            return (out.text("holder_container", proxy=proxy, names=names,
                             images=", ".join(printable(i) for _, _, i in found)),
                    "docker stop " + names)
        target = proxy_target(proc.command)
        query = "%s ps" % ("podman" if podman else "docker")
        if target is None:
            return out.text("holder_proxy_bare", proxy=proxy, query=query), None
        return out.text("holder_proxy", proxy=proxy, to="%s:%d" % (target[0] or "?", target[1]),
                        query="%s --filter publish=%d" % (query, target[1])), None
    folder = ctx.system.process_cwds([proc.pid]).get(proc.pid)
    other = other_checkout(ctx, folder)
    if other is not None:       # its work, stopped there (as start and doctor say)
        return out.text("holder_checkout", user=printable(proc.user or "?"),
                        folder=printable(other)), None
    return (out.text("holder_stranger", user=printable(proc.user or "?"),
                     folder=printable(folder or out.text("folder_unknown"))),
            hints.command("kill-port", None, str(port)))


def listener_user(system, listener, table):
    """Who owns a listener's socket (the kernel's tables say, whatever procclean may see
    of its process), else who its process runs as (None: not known)."""
    if listener.uid is not None:
        return system.user_name(listener.uid)
    proc = table.get(listener.pid) if listener.pid is not None else None
    return None if proc is None else proc.user


def unseen_holder(out, user):
    """A port's holder procclean cannot see, in words: its owner named where known (a
    root docker-proxy under a user's start, another user's server)."""
    if user is None:
        return out.text("holder_unseen")
    return out.text("holder_unseen_user", user=user)


def health_url(service):
    """The URL that tells whether a service is healthy; None without a port or check."""
    spec = (service.health or "").strip()
    if service.port is None or spec.lower() in ("", "off", "none", "no"):
        return None
    if spec == "auto" or spec.startswith("/"):
        path = "/health" if spec == "auto" else spec
        return "http://127.0.0.1:%d%s" % (service.port, path)
    return spec.replace("{port}", str(service.port))


def check_health(system, service, timeout):
    """{url, state (healthy, unhealthy, no answer), status, latency_ms, error}, or None."""
    url = health_url(service)
    if url is None:
        return None
    status, seconds, error = system.http_get(url, timeout)
    auto = service.health.strip() == "auto"
    if status == 404 and auto:
        # No /health route: the app's root answering is the next best sign of life.
        url = "http://127.0.0.1:%d/" % service.port
        status, more, error = system.http_get(url, timeout)
        seconds += more
    # `auto` asks whether the app answers at all (an API under /api/v1 answers 404, one
    # behind a login 401): only a server error is sick.  A path the user set must succeed.
    limit = 500 if auto else 400
    state = "no answer" if status is None else "healthy" if status < limit else "unhealthy"
    return {"url": url, "state": state, "status": status,
            "latency_ms": round(seconds * 1000.0, 1), "error": error}


def state_path(service):
    """Where a supervisor keeps its state (restarts, last exit) beside the pidfile."""
    return service.pidfile + ".state"


def lock_path(service):
    """The lock file that serialises start, stop and supervise of a service."""
    return service.pidfile + ".lock"


class service_locks(object):
    """Holds the locks of `services` (none for --dry-run): a second start, stop or supervise
    of a service waits up to LOCK_WAIT seconds, then fails (exit 1) naming the holder."""

    def __init__(self, ctx, services):
        self.ctx = ctx
        paths = {}
        for service in services:
            paths.setdefault(os.path.abspath(lock_path(service)), service)
        # One fixed order for every caller, so that two never wait for each other.
        self.wanted = [] if ctx.dry_run else sorted(paths.items())
        self.held = []

    def __enter__(self):
        try:
            for path, service in self.wanted:
                def waiting(holder, service=service):
                    self.ctx.out.warn("lock_waiting", svc=service.name, pid=holder or "?",
                                      cmd=self.holder_command(holder),
                                      path=lock_path(service))
                try:
                    handle, holder = self.ctx.system.lock(path, LOCK_WAIT, waiting)
                except OSError as exc:
                    raise ProcCleanError(self.ctx.out.text(
                        "lock_failed", svc=service.name, path=lock_path(service),
                        error=error_text(exc)), EXIT_FAILED)
                if handle is None:
                    raise ProcCleanError(self.ctx.out.text(
                        "lock_busy", svc=service.name, wait=format_seconds(LOCK_WAIT),
                        pid=holder or "?", path=lock_path(service),
                        cmd=self.holder_command(holder)), EXIT_FAILED)
                self.held.append(handle)
        except BaseException:
            self.__exit__()
            raise
        return self

    def holder_command(self, pid):
        proc = self.ctx.system.process_table().get(pid) if pid else None
        return printable(proc.command) if proc else "?"

    def __exit__(self, *exc):
        while self.held:
            self.ctx.system.unlock(self.held.pop())
        return False


# -- doctor: the seed's troubleshooting guide as one command ----------------------

def procclean_path(folder="."):
    """This file's path from `folder`: relative inside it, absolute outside it."""
    here = os.path.abspath(__file__)
    rel = os.path.relpath(here, os.path.abspath(folder))
    return here if rel.split(os.sep)[0] == os.pardir else rel


def prog_command(folder="."):
    """How a person runs procclean from the project folder: `python3 PATH`."""
    import shlex
    return "python3 " + shlex.quote(procclean_path(folder))


class Hints(object):
    """How hints name a procclean command: the make target when the project's Makefile
    has one that runs procclean (and make is installed), else `python3 PATH`."""

    def __init__(self, folder="."):
        self.folder = folder
        self.prog = prog_command(folder)
        self._targets = None

    @property
    def targets(self):
        """Read when a hint first needs them (most commands make a Hints, show none)."""
        if self._targets is None:
            self._targets = procclean_make_targets(self.folder) if _which("make") else set()
        return self._targets

    def command(self, command, name=None, *args):
        target = command + ("-" + name if name else "")
        if not args and target in self.targets:
            return "make " + target
        return " ".join([self.prog, command] + ([name] if name else []) + list(args))

    def port_setting(self, service, again="start"):
        """Giving `service` another port, the way make passes it, to start it `again`
        (start: that service; dev: the whole stack)."""
        variable = port_variable(service.name)
        port = service.port + 1 if service.port < 65535 else 1024
        name = service.name if again == "start" else None
        return "%s=%d %s" % (variable, port, self.command(again, name))


def procclean_make_targets(folder="."):
    """The Makefile's targets whose recipe runs procclean (`@$(PROCCLEAN) $@`, ...)."""
    name = next((n for n in MAKEFILE_NAMES if os.path.isfile(os.path.join(folder, n))), None)
    text = _read_text(os.path.join(folder, name)) if name else None
    recipes = [(rule, " ".join(rule.recipe)) for rule in parse_makefile_text(text or "")[0]]
    return set(n for rule, recipe in recipes if "procclean" in recipe.lower()
               for n in rule.names if "$@" in recipe or n in recipe)


def say_port_hint(ctx, service, pid, app=False):
    """After "port taken": how to free it, or to pick another port (if port_follows).
    `app`: the holder is the user's editor or browser, which kill-port leaves alone."""
    hints = Hints()
    free = hints.command("kill-port", None, str(service.port))
    if app:
        ctx.out.warn("port_hint_app", pid=pid)
    if not port_follows(service):
        if pid is not None and not app:
            ctx.out.warn("port_hint_free", pid=pid, free=free)
        say_port_fixed(ctx, service)
    elif pid is None or app:
        ctx.out.warn("port_hint_other", other=hints.port_setting(service, ctx.again))
    else:
        ctx.out.warn("port_hint", pid=pid, other=hints.port_setting(service, ctx.again),
                     free=free)


# Programs that listen on $PORT unasked (Next.js, Create React App, Nuxt; not Vite).
PORT_READERS_RE = (r"(?:^|[\s/])(?:next|react-scripts|craco|nuxt|nuxi|vue-cli-service)"
                   r"(?:\s|$)")
# Servers that listen where a variable says unless their command names a port: uvicorn
# (UVICORN_PORT), `flask run` (FLASK_RUN_PORT), gunicorn and `rails server` (PORT).
# launch_env sets the first two, as PORT, for a service whose command runs one.
PORT_VARIABLES = ("UVICORN_PORT", "FLASK_RUN_PORT")
PORT_ENV_RE = r"(?:^|[\s/])(?:gunicorn|rails(?=\s+s(?:erver)?(?:\s|$)))(?:\s|$)"
ENV_PORT_RE = r"(?:^|[\s/])(?:uvicorn|flask(?=\s.*\brun\b))(?:\s|$)|" + PORT_ENV_RE
# (gunicorn's config, named or its ./gunicorn.conf.py, may bind: PORT then is not read)
NAMED_PORT_RE = r"\s(?:--port|-p|--bind|-b|--fd|--uds|-c|--config)(?:[\s=]|$)"
READS_PORT_RE = (r"\$\{?PORT\b|process\.env\.PORT\b|process\.env\[['\"]PORT['\"]\]"
                 r"|environ(?:\.get)?\s*[\[(]\s*['\"]PORT['\"]"
                 r"|(?:[Gg]etenv|LookupEnv)\s*\(\s*['\"]PORT['\"]"
                 r"|ENV\.fetch\(\s*['\"]PORT['\"]")
# gin's r.Run() with no address listens on $PORT, else 8080 (gin's resolveAddress)
_GIN_DEFAULT_RE = r'"github\.com/gin-gonic/gin"[\s\S]*\.Run\(\s*\)'
READS_PORT_RE += "|" + _GIN_DEFAULT_RE
NPM_SCRIPT_RE = r"^\s*(?:npm|pnpm|yarn|bun)\s+(?:run\s+|run-script\s+)?([\w:.-]+)\s*$"
FIXED_PORT_RE = r"(\s(?:--port|-p)[\s=]+)\d+"     # `next dev -p 3000`
# A command that sets PORT itself, over procclean's: Rails 7's `unset PORT && bin/rails
# server`, `PORT=3001 next dev` (also in a package script, `cross-env PORT=3001 ...`)
SETS_PORT_RE = r"\bunset\s+(?:\w+\s+)*PORT\b|(?:^|\s)PORT=['\"]?\d"
# A port named as a server's own: `port=7777`, vite's `port: 3000`, `listen(3000)`, Go's
# ListenAndServe(":8080") (not any quoted "localhost:6379"), `-p 3000`.  Where nothing
# reads PORT, such a service listens there.
OWN_PORT_RE = (r"(?i)\bport['\"]?\s*[=:]\s*\d{2,5}\b|\blisten\(\s*\d{2,5}\b"
               r"|(?:Serve(?:TLS)?|Start|Run|Listen)\(\s*\"[\w.]*:\d{2,5}\""
               r"|\bAddr:\s*\"[\w.]*:\d{2,5}\"|" + FIXED_PORT_RE)
# How a server's command takes a port, for port_hint_fixed's example: a package script's
# first (`npm run dev:next` passes a flag on after --, not next's own -p to npm; pnpm 7+,
# yarn and bun pass on all that follows the script's name, `--` included).
_PORT_FLAG_EXAMPLES = ((r"^\s*npm\s", "-- --port {port}"), (NPM_SCRIPT_RE, "--port {port}"),
                       (r"\b(?:rails|puma|next)\b", "-p {port}"),
                       (r"\bgunicorn\b", "--bind 127.0.0.1:{port}"),
                       (r"\bmanage\.py\s+runserver\b", "{port}"),
                       (r"\bstreamlit\b", "--server.port {port}"),
                       (r"\b(?:uvicorn|hypercorn|flask|fastapi|vite)\b", "--port {port}"))


def say_port_fixed(ctx, service):
    """That `service` does not take its port from procclean, with its own command given
    one as the example (`bin/rails server -p {port}`, not uvicorn's flag for all); a
    script's (main.py's own uvicorn.run) is to be run by its server instead; other code
    (Flask's app.run, a Go server) is to read PORT.  A port the command names is the one
    to replace (`next dev -p {port}`, not a second -p)."""
    if service.name in ctx.said_fixed:
        return
    ctx.said_fixed.add(service.name)
    command = service.command.strip()
    example = re.sub(FIXED_PORT_RE, r"\g<1>{port}", command)
    flag = next((flag for pattern, flag in _PORT_FLAG_EXAMPLES
                 if re.search(pattern, command)), None)
    scripts = [_text(resolve_cwd(service.cwd), name)
               for name in re.findall(r"[\w./-]+\.py\b", command)]
    if example == command and flag:
        example = "%s %s" % (command, flag)
    elif example == command and any("uvicorn" in text for text in scripts):
        example = "uvicorn ... --port {port}"
    elif example == command:    # a Flask app.run(port=5001), Go's ":8080": in the code
        ctx.out.warn("port_hint_code", svc=service.name)
        return
    ctx.out.warn("port_hint_fixed", svc=service.name, example=example)


def package_script_of(command, cwd):
    """The package.json script (in cwd) a command runs (`npm run dev`: `vite`), else ""."""
    script = re.match(NPM_SCRIPT_RE, command)
    if not script:
        return ""
    scripts = _package_scripts(_read_text(os.path.join(cwd, "package.json"))) or {}
    return scripts.get(script.group(1)) or ""


def port_follows(service, env_re=ENV_PORT_RE):
    """Whether a port setting moves the service: True if its command has `{port}` or reads
    $PORT, or what it runs does (its package.json script, a vite config, a .py file); False
    if it names a port of its own instead (or unsets PORT); None if nothing seen says (a
    settings module or a shell script may read PORT).  `env_re`: servers reading a
    variable procclean sets (PORT_ENV_RE: PORT alone, as foreman sets)."""
    command = service.command
    cwd = resolve_cwd(service.cwd)
    if re.search(r"\bgunicorn\b", command) and os.path.isfile(
            os.path.join(cwd, "gunicorn.conf.py")):
        command += " -c gunicorn.conf.py"       # gunicorn reads it unasked
    if re.search(r"\brails\s+s(?:erver)?\b", command):    # -b: an address, not a port
        command = re.sub(r"\s(?:-b|--binding)[\s=]\S+", "", command)
    if "{port}" not in command and re.search(SETS_PORT_RE, command):
        return False        # Rails 7's Procfile.dev: `web: unset PORT && bin/rails server`
    # (Next reads PORT, but not over its own -p 3000)
    readers = "(?!.*%s)(?:%s)" % (FIXED_PORT_RE, PORT_READERS_RE)
    if "{port}" in command or re.search(READS_PORT_RE + "|" + readers, command) \
            or re.search(env_re, command) and not re.search(NAMED_PORT_RE, command):
        return True
    texts = [_read_text(os.path.join(cwd, name))       # main.py, node app.js
             for name in re.findall(r"[\w./-]+\.(?:py|[cm]?[jt]s)\b", command)]
    texts += [text for _, text in go_sources(command, cwd)]     # os.Getenv("PORT")
    texts += [_text(_puma_config(command, cwd))]        # port ENV.fetch("PORT") { 3000 }
    line = package_script_of(command, cwd)
    if line:
        if re.search(SETS_PORT_RE, line):
            return False        # `"dev": "PORT=3001 next dev"`: not procclean's PORT
        if re.search(readers, line):
            return True
        texts.append(line)
        # the server file a script runs (`tsx watch src/server.ts`): does it read PORT?
        texts += [_read_text(os.path.join(cwd, name)) for name in node_entries(line)]
        if re.search(r"\bvite\b", line):
            texts += [_read_text(os.path.join(cwd, "vite.config." + ext))
                      for ext in ("js", "ts", "mjs", "mts", "cjs", "cts")]
    if any(_reads_port(text) for text in texts):
        return True
    said = "\n".join([command] + [text or "" for text in texts])
    if re.search(env_re, command) and re.search(NAMED_PORT_RE, command) \
            or re.search(OWN_PORT_RE, said) or _runs_on_default(said):
        return False
    # Where its own code names no port, the project's modules a script imports (`from
    # config import settings`) may read it (settings.port unused by its run is not)
    imported = [_read_text(os.path.join(cwd, name)) for name in _imported_modules(texts, cwd)]
    return True if any(_reads_port(text) for text in imported) else None


def _runs_on_default(code):
    """Whether Python code starts its server given no port: `uvicorn.run("main:app",
    reload=True)` listens on 8000 and Flask's `app.run(debug=True)` on 5000, whatever
    PORT says (only their command lines read variables)."""
    for call in re.finditer(r"\b(?:uvicorn|app|application|socketio)\.run\(", code):
        if not re.search(r"\bport\b", code[call.end():_closing(code, call.end())]):
            return True
    return False


def _reads_port(text):
    """Whether code reads PORT: by name (READS_PORT_RE), or as pydantic settings with a
    `port` field (BaseSettings reads each field from the variable of its name, in any
    case, unless given an env_prefix)."""
    if not text:
        return False
    if re.search(READS_PORT_RE, text):
        return True
    return "BaseSettings" in text and "env_prefix" not in text and bool(
        re.search(r"(?mi)^\s*port\s*[:=]", text))


def python_imports(text):
    """The modules Python code imports at column 0, dotted, in order (`from app.config
    import x`, `import a.b, c as d`); not relative ones, nor one inside try/if (optional)."""
    names = []
    for match in re.finditer(r"^(?:from\s+([A-Za-z_][\w.]*)\s+import\b|import\s+([\w., ]+))",
                             text or "", re.M):
        names.extend([match.group(1)] if match.group(1) else
                     [n.strip().split(" ")[0] for n in match.group(2).split(",")])
    return [n for n in names if n and n != "__future__"]


def _imported_modules(texts, cwd):
    """The project's modules (in cwd) that Python texts import by name: config.py for
    `from config import settings`, app/core/config.py for `from app.core.config ...`."""
    paths = set(name.replace(".", "/") + ".py" for text in texts
                for name in python_imports(text))
    return sorted(p for p in paths if os.path.isfile(os.path.join(cwd, p)))


def go_sources(command, cwd):
    """[(path, text)] of the Go files `go run PKG` (or `go run FILE.go`) compiles."""
    go = re.search(r"\bgo\s+run\s+(?:-\S+\s+)*(\S+)", command)
    folder = go and os.path.join(cwd, re.sub(r"[^/]*\.go$", "", go.group(1)))
    return [(os.path.normpath(os.path.join(folder, n)), _read_text(os.path.join(folder, n)))
            for n in _listdir(folder)[:50] if n.endswith(".go")] if go else []


# ---------------------------------------------------------------------------
# The stop pipeline: freeze, TERM to all, one wait, look again, KILL, report
# ---------------------------------------------------------------------------

class interrupts_caught(object):
    """`with interrupts_caught(handler):` Ctrl-C, SIGTERM and SIGHUP call `handler(signum,
    frame)` in the block; one handled already stays so: ignored (as under nohup), or dev's
    (its stop is dev's own: a second Ctrl-C SIGKILLs at once, a second SIGHUP waits)."""

    def __init__(self, handler):
        self.handler = handler
        self.previous = {}

    def __enter__(self):
        import _signal      # the C module: `signal` builds enums, 1.5 ms of start-up
        for signum in INTERRUPT_SIGNALS:
            if _signal.getsignal(signum) in (_signal.SIG_DFL, _signal.default_int_handler):
                self.previous[signum] = _signal.signal(signum, self.handler)
        return self

    def __exit__(self, *exc):
        import _signal
        for signum, handler in self.previous.items():
            _signal.signal(signum, handler)
        return False


def wait_gone(system, targets, timeout, hurry=None):
    """Wait for all `targets` until gone, `timeout` or `hurry()`; those still running."""
    deadline = system.clock() + timeout
    # 1, 2, 4 ms... then every 100 ms: most processes are gone within a millisecond.
    delay = 0.001
    pending = list(targets)
    while True:
        running = set(id(p) for p in system.still_running([t.process for t in pending]))
        pending = [t for t in pending if id(t.process) in running]
        now = system.clock()
        if not pending or now >= deadline or (hurry is not None and hurry()):
            return pending
        system.sleep_until_gone([t.process for t in pending], min(delay, deadline - now))
        delay = min(delay * 2, 0.1)


def signal_targets(ctx, targets, signum, held=None):
    """Send `signum` to every target still the same process; those it reached.  `held`:
    ids of targets freeze_targets stopped: once signalled, each leaves it and is thawed."""
    reached = []
    for target in targets:
        try:
            if not ctx.system.same_process(target.process):
                raise OSError(errno.ESRCH, "exited")
            ctx.system.send_signal(target.pid, signum)
            if held and id(target) in held:
                held.discard(id(target))
                if signum != SIGKILL:       # SIGKILL ends a stopped process as it is
                    thaw_targets(ctx, [target], checked=True)
        except OSError as exc:
            target.outcome = os_outcome(exc, otherwise=SURVIVED)
        else:
            reached.append(target)
    return reached


def kill_targets(ctx, targets, began=None, held=None):
    """SIGKILL to all at once, a short shared wait; each outcome and killed_after set."""
    after = 0.0 if began is None else ctx.system.clock() - began
    reached = signal_targets(ctx, targets, SIGKILL, held)
    for target in reached:
        target.killed_after = after
    remaining = wait_gone(ctx.system, reached, KILL_WAIT) if reached else []
    for target in reached:
        target.outcome = KILLED
    for target in remaining:
        target.outcome = SURVIVED


def stop_processes(ctx, targets, table, find=None, force=False):
    """The stop pipeline of every command that stops processes: SIGTERM to all `targets`
    at once (`force`: SIGKILL), one shared wait until gone or the grace passes; then look
    again at the processes new since `table`: what appeared meanwhile (a child forked in
    the grace, a respawned worker, a helper that kept the session or tag), found by trees,
    sessions and `find(table, protected, fresh PIDs)`, gets SIGKILL with the survivors;
    until a look finds nothing (MAX_LOOKS).  Returns (all targets, outcomes set; table)."""
    if ctx.dry_run:
        for target in targets:
            ctx.out.say("would_signal", sig="SIGKILL" if force else "SIGTERM",
                        svc=target.service.name, pid=target.pid,
                        cmd=printable(target.process.command))
        return list(targets), table
    system = ctx.system
    began = system.clock()
    done = list(targets)
    for target in targets:
        if target.process.zombie:
            target.outcome = GONE   # it has exited (only its parent can reap it): stopped
    live = [t for t in targets if not t.process.zombie]
    frozen, table = freeze_targets(ctx, live, table, done, find)
    live = [t for t in done if not t.process.zombie]
    held = set(id(t) for t in frozen)
    try:
        if force:
            kill_targets(ctx, live, began, held)
        else:
            reached = signal_targets(ctx, live, SIGTERM, held)
    finally:
        thaw_targets(ctx, [t for t in frozen if id(t) in held])
    pending = []
    if not force and reached:
        for target in reached:
            target.outcome = STOPPED    # unless the wait finds it still running
        pending = wait_gone(system, reached, ctx.grace,
                            lambda: ctx.hurry or ctx.interrupted)
    if ctx.interrupted:     # Ctrl-C in stop or kill-port: no more waiting, nor SIGKILL
        for target in pending:
            target.outcome = SIGNALLED
        return done, table
    for look in range(1, MAX_LOOKS + 2):
        before, table = table, system.process_table(previous=table)
        fresh = _look_again(ctx, table, before, done, find, look)
        done.extend(fresh)
        to_kill = pending + fresh       # _look_again leaves zombies out
        if not to_kill:
            break
        if look > MAX_LOOKS:
            for target in to_kill:
                target.outcome = SURVIVED       # still appearing: not all is stopped
            break
        kill_targets(ctx, to_kill, began)
        pending = []
    return done, table


def freeze_targets(ctx, live, table, done, find):
    """Hold the targets still before the last look, as a cgroup freezer does (a child
    forked between the table read and its parent's signal is reparented out of every
    tree): SIGSTOP the `live` targets, wait, read the table again, stop and add to `done`
    what they forked; until a look finds nothing new (MAX_LOOKS).  Not the top of a
    terminal's foreground job (its shell would take the terminal back): later looks follow
    its group.  Returns (the stopped targets, to SIGCONT after the signals, the table)."""
    system = ctx.system
    if not live or not system.can_freeze():
        return [], table
    import _signal as signal    # the C module: `signal` builds enums, 1.5 ms of start-up
    pids = set(t.pid for t in live)
    batch = [t for t in live
             if t.process.ppid in pids or not system.in_foreground(t.process)]
    frozen = []
    try:
        for look in range(1, MAX_LOOKS + 1):
            for target in batch:        # one by one: an interrupt knows whom to resume
                if signal_targets(ctx, [target], signal.SIGSTOP):
                    frozen.append(target)
            system.wait_stopped([t.process for t in batch], FREEZE_WAIT)
            before, table = table, system.process_table(previous=table)
            if all(pid in before for pid in table):
                break           # nothing was forked (nor started) since the last read
            batch = _look_again(ctx, table, before, done, find, look)
            done.extend(batch)
            if not batch:
                break
    except BaseException:
        thaw_targets(ctx, frozen)
        raise
    return frozen, table


def thaw_targets(ctx, frozen, checked=False):
    """SIGCONT to targets freeze_targets stopped (a target gone is skipped; `checked`: just
    signalled, still stopped, so the same): a SIGTERM sent meanwhile is then delivered, its
    handler (a FastAPI lifespan's shutdown) runs."""
    import _signal as signal    # (see freeze_targets)
    for target in frozen:
        with quietly():
            if checked or ctx.system.same_process(target.process):
                ctx.system.send_signal(target.pid, signal.SIGCONT)


def _look_again(ctx, table, before, done, find, look):
    """The targets in a table read after the signals that were not seen before."""
    system = ctx.system
    protected = protected_pids(table, system.self_pid(), system.parent_pid())
    roots, sessions = [], []
    for target in done:
        proc = target.process
        now = table.get(proc.pid)
        if now is not None and now.identity == proc.identity:
            roots.append((now, target.service, target.via))
        elif proc.pid in (proc.sid, proc.pgid):
            sessions.append((proc.pid, target.service))   # its session outlives it
    if find is not None:
        new = set(pid for pid, proc in table.items() if before.get(pid) is not proc)
        roots.extend(find(table, protected, new))
    seen = set(t.process.identity for t in done)
    return [t for t in plan_targets(table, roots, protected, look, sessions)
            if t.process.identity not in seen and not t.process.zombie]


def report_targets(ctx, targets):
    """What became of each target: a line (a warning if not stopped), a --json record."""
    for target in targets:
        ctx.out.add("processes", dict(process_record(target), outcome=target.outcome))
        values = dict(svc=target.service.name, pid=target.pid,
                      cmd=printable(target.process.command))
        if target.outcome in FAILED_OUTCOMES:
            ctx.out.warn(target.outcome, user=target.process.user, **values)
        elif target.outcome:
            ctx.out.say(target.outcome, **values)


def report_summary(ctx, service, targets, grace_used):
    if not targets:
        ctx.out.say("nothing", svc=service.name)
    if ctx.dry_run:
        return
    failed = [t for t in targets if t.outcome in FAILED_OUTCOMES]
    done = [t for t in targets if t.outcome not in FAILED_OUTCOMES]
    killed = [t for t in done if t.outcome == KILLED]
    late = [t for t in done if t.look > 0]
    if failed and ctx.interrupted:
        ctx.out.warn("summary_interrupted", svc=service.name, n=len(failed),
                     stop=Hints().command("stop", service.name))
    elif failed:
        ctx.out.warn("summary_failed", svc=service.name, n=len(failed))
    if done:
        if killed and grace_used:
            after = min(t.killed_after or 0.0 for t in killed)
            ctx.out.say("summary_hurried" if ctx.hurry else "summary_killed", svc=service.name,
                        n=len(done), k=len(killed), after=format_seconds(after))
        else:
            ctx.out.say("summary_stopped", svc=service.name, n=len(done))
    if late:
        ctx.out.say("found_late", svc=service.name, n=len(late))


def outside_items(out, records):
    """Matches left alone (outside_record's) in one short mention: PID, user and command
    start of the first few, then how many more (show-processes and --json have all)."""
    items = [out.text("outside_item", pid=r["pid"], user=r["user"] or "?",
                      folder=r["folder"] or out.text("folder_unknown"),
                      cmd=brief_command(r["command"], COMMAND_MENTIONED))
             for r in records[:OUTSIDE_SHOWN]]
    if len(records) > OUTSIDE_SHOWN:
        items.append(out.text("outside_more", n=len(records) - OUTSIDE_SHOWN))
    return ", ".join(items)


def brief_command(command, limit=COMMAND_SHOWN):
    """A command line escaped and cut after `limit` characters (some are megabytes)."""
    text = printable(command)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def report_port_strangers(ctx, services, table):
    """After a stop: who still holds a service's port, and the command that frees it."""
    listeners = port_listeners(ctx, services)
    if not listeners:
        return
    folders = ctx.system.process_cwds(l.pid for l in listeners if l.pid is not None)
    if any(l.pid is not None and l.pid not in table for l in listeners):
        table = ctx.system.process_table()      # a holder newer than stop's last look
    hints = Hints()         # may ask make for its targets: once, and only when needed
    for service in services:
        # What stop left is none of its targets (holder_kind).
        for holder in port_facts(ctx, service, listeners, table, [], hints):
            proc = table.get(holder.pid) if holder.pid is not None else None
            if proc is None:
                ctx.out.warn("port_still_unseen", svc=service.name, port=service.port,
                             holder=unseen_holder(ctx.out, listener_user(
                                 ctx.system, holder.listener, table)))
            elif holder.kind == "viewer":
                ctx.out.warn("port_users_app", svc=service.name, port=service.port,
                             pid=holder.pid, user=proc.user, cmd=printable(proc.command))
            elif holder.kind == "container" or holder.free is None:
                ctx.out.warn("port_still_held_kind", svc=service.name, port=service.port,
                             pid=holder.pid, cmd=printable(proc.command), what=holder.what)
                if holder.free:
                    ctx.out.warn("port_still_free", free=holder.free)
            else:
                ctx.out.warn("port_still_held", svc=service.name, port=service.port,
                             pid=holder.pid, cmd=printable(proc.command), free=holder.free,
                             folder=printable(folders.get(holder.pid) or
                                              ctx.out.text("folder_unknown")))


def remove_files(ctx, paths):
    """Remove files (--dry-run: say which); one that stays is reported, the rest go."""
    for path in paths:
        if ctx.dry_run:
            if ctx.system.removable(path):
                ctx.out.say("would_remove", path=path)
        elif ctx.system.remove_file(path):      # a failure is noted there, on one line
            ctx.out.say("removed", path=path)
            ctx.out.add("removed", path)


# ---------------------------------------------------------------------------
# Commands stop, force-clean and clean
# ---------------------------------------------------------------------------

def cmd_stop(ctx, services, force=False):
    """stop / force-clean: this project's processes of every service (stop_processes).
    Ctrl-C (make passes it on), SIGTERM or SIGHUP ends its wait: what got SIGTERM and may
    still run is said, its pidfile kept, and stop ends by that signal (exit_as)."""
    if force:
        for service in services:
            ctx.out.say("force_header", svc=service.name)
    with interrupts_caught(ctx.note_interrupt):
        found = read_targets(ctx, services)

        def find(table, protected, fresh):
            return [(t.process, t.service, t.via) for t in find_targets(
                ctx, services, table, protected, fresh=fresh).targets]

        targets, table = stop_processes(ctx, found.targets, found.table, find, force=force)
        report_targets(ctx, targets)
        failed = False
        for service in services:
            mine = [t for t in targets if t.service is service]
            report_summary(ctx, service, mine, grace_used=not force)
            # Matches outside the project: never signalled, never silently ignored.
            records = [outside_record(outsider) for outsider in found.outside_of(service)]
            for record in records:
                ctx.out.add("outside", record)
            if records:
                ctx.out.say("outside_left", svc=service.name,
                            items=outside_items(ctx.out, records))
            left = any(t.outcome in FAILED_OUTCOMES for t in mine)
            failed = failed or left
            _after_stop(ctx, service, found, mine, left, force)
        if not ctx.dry_run and not ctx.interrupted:
            report_port_strangers(ctx, services, table)
    if ctx.interrupted:
        return 128 + ctx.interrupted
    return EXIT_FAILED if failed else EXIT_OK


def _after_stop(ctx, service, found, targets, left, force):
    """Pidfile and supervisor state go (not while what they name runs: its only record),
    the logfile too with force-clean; the outcome goes into the log."""
    info = found.pidfiles[service.name]
    paths = []
    if info.exists and not left and found.verdicts.get(service.name) != "unknown-start":
        paths.append(service.pidfile)
    if not left:
        drop_dev_files(ctx, stale_dev_files(ctx, service, found.table))
    if force:   # the log and the previous run's, as clean removes them
        paths.extend((service.logfile, service.logfile + ".1"))
    elif targets and not ctx.dry_run:
        ctx.system.append_log(service.logfile, "stop: " + "; ".join(
            "PID %d %s" % (t.pid, LOGGED_OUTCOMES[t.outcome]) for t in targets))
    remove_files(ctx, paths)
    if not ctx.dry_run and not left:
        ctx.system.remove_file(state_path(service))
        ctx.system.remove_file(service.pidfile + START_SUFFIX)


def cmd_clean(ctx, services):
    """Remove stale pidfiles and the logfiles; keep what a running service still uses."""
    found = read_targets(ctx, services, warn=False)
    removed_any = False
    for service in services:
        live = found.running(service)
        info = found.pidfiles[service.name]
        paths = []
        # a dev file names the session that left what still runs: dev takes that over
        stale = [] if live else stale_dev_files(ctx, service, found.table)
        removed_any = removed_any or bool(stale)
        drop_dev_files(ctx, stale)
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
                if not ctx.dry_run:
                    ctx.system.remove_file(service.pidfile + START_SUFFIX)
        if not live:    # its state, its log, and the log start kept of the run before
            paths.extend(path for path in (state_path(service), service.logfile,
                                           service.logfile + ".1") if ctx.system.exists(path))
        elif ctx.system.exists(service.logfile):
            ctx.out.warn("clean_log_kept", path=service.logfile, svc=service.name)
        removed_any = removed_any or bool(paths)
        remove_files(ctx, paths)
    if not removed_any:
        ctx.out.say("clean_nothing")
    return EXIT_OK


# ---------------------------------------------------------------------------
# Commands status and show-processes
# ---------------------------------------------------------------------------

def process_record(target):
    proc = target.process
    return {"service": target.service.name, "pid": proc.pid, "ppid": proc.ppid,
            "user": _shown_user(proc), "elapsed": _rounded(proc.elapsed),
            "cpu_percent": _rounded(proc.cpu_percent), "memory_kb": proc.rss_kb,
            "command": printable(proc.command), "via": target.via, "zombie": proc.zombie,
            "cpu_seconds": proc.cpu_seconds}


def _rounded(value):
    return None if value is None else round(value, 1)


def _shown_user(proc):
    return printable(proc.user) if isinstance(proc.user, str) else proc.user


def outside_record(outsider):
    """A pattern match outside the project, as JSON shows it."""
    proc = outsider.process
    return {"service": outsider.service.name, "pid": proc.pid, "ppid": proc.ppid,
            "user": _shown_user(proc), "folder": None if outsider.folder is None
            else printable(outsider.folder), "command": printable(proc.command)}


def cmd_show_processes(ctx, services):
    found = read_targets(ctx, services)
    records = [process_record(t) for t in found.targets]
    for record in records:
        ctx.out.add("processes", record)
    for outsider in found.outside:
        ctx.out.add("outside", outside_record(outsider))
        ctx.out.say("outside_process", svc=outsider.service.name, pid=outsider.process.pid,
                    folder=printable(outsider.folder or ctx.out.text("folder_unknown")),
                    user=outsider.process.user, cmd=brief_command(outsider.process.command))
    if not records:
        ctx.out.say("no_processes")
        return EXIT_OK
    header = MESSAGES[ctx.out.lang]["header"]
    rows = [header] + [(
        ctx.out.service_name(r["service"]), str(r["pid"]),
        "-" if r["ppid"] is None else str(r["ppid"]), r["user"],
        format_duration(r["elapsed"]),
        "?" if r["cpu_percent"] is None else "%.1f" % r["cpu_percent"],
        format_memory(r["memory_kb"]), r["command"]) for r in records]
    cells = [[display_width(cell) for cell in row] for row in rows]
    widths = [max(row[i] for row in cells) for i in range(len(header) - 1)]
    for row, used in zip(rows, cells):
        ctx.out.line("  ".join(cell + " " * (w - n) for cell, n, w in zip(row, used, widths))
                     + "  " + row[-1])
    return EXIT_OK


def service_status(ctx, service, found):
    """A service's status record (status --json's; see assess).  Only its own processes
    count: a leftover holding its port is named among the listeners."""
    targets = found.started(service)
    procs = [t.process for t in targets]
    pids = [p.pid for p in procs]
    roots = [t.process for t in targets if t.via != "child"] or procs
    uptime = max([p.elapsed for p in roots if p.elapsed is not None] or [None])
    cpu_values = [p.cpu_percent for p in procs if p.cpu_percent is not None]
    mem_values = [p.rss_kb for p in procs if p.rss_kb is not None]
    listeners = [{"pid": f.pid, "address": f.listener.address, "family": f.listener.family,
                  "command": None if f.listener.command is None else
                  printable(f.listener.command),
                  "user": listener_user(ctx.system, f.listener, found.table),
                  "own": f.kind == "own", "holder": f.kind, "what": f.what, "free": f.free}
                 for f in port_facts(ctx, service, found.listeners, found.table,
                                     found.running(service))]
    own_port = any(l["own"] for l in listeners)
    elsewhere = []
    if procs and service.port is not None and not own_port:
        # up but not on its port (an app that names its own): where it listens instead
        elsewhere = ports_elsewhere(ctx, set(pids), service.port)
    record = {
        "name": service.name, "running": bool(procs), "pids": pids,
        "uptime": _rounded(uptime),
        "cpu_percent": round(sum(cpu_values), 1) if cpu_values else None,
        "memory_kb": sum(mem_values) if mem_values else None,
        "port": service.port, "listening": bool(listeners), "listeners": listeners,
        "listening_elsewhere": elsewhere,
        "health": probe_health(ctx, service) if procs and own_port else None,
        "supervisor": None, "health_url": health_url(service),
        "dev": dev_session_of(ctx, service, found.table) if procs else None,
        "pidfile": service.pidfile, "pidfile_pid": found.pidfiles[service.name].pid,
        "processes": [process_record(t) for t in targets],
        "outside": [outside_record(o) for o in found.outside_of(service)],
        # A worker that exited while its parent lives on (<defunct>: the reloader's case).
        "exited": [t.pid for t in found.targets_of(service)
                   if t.process.zombie and t.via == "child" and t.origin != "port"
                   and left_defunct(ctx.system, t.process)],
        "startup_failed": startup_failed(ctx.system.tail(service.logfile)),
    }
    supervisor = ctx.system.read_state(state_path(service))
    if supervisor:
        if supervisor.get("state") in ("running", "backoff", "starting") \
                and supervisor.get("supervisor") not in pids:
            supervisor["state"] = "dead"    # killed without a chance to say so
        record["supervisor"] = dict(
            (k, supervisor.get(k) if isinstance(supervisor.get(k), int) else None)
            for k in ("supervisor", "child", "restarts", "last_exit"))
        record["supervisor"]["state"] = str(supervisor.get("state"))
    record["state"] = assess(record)[0]
    return record


def probe_health(ctx, service):
    """Its health answer when asked (--health, --check; --watch: every WATCH_PROBE s, the
    last answer between), else None: each probe is a request line in the app's log."""
    if ctx.probe_every is None:
        return None
    now = ctx.system.clock()
    last = ctx.probed.get(service.name)
    if last is not None and now - last[0] < ctx.probe_every:
        return last[1]
    result = check_health(ctx.system, service, ctx.health_timeout)
    ctx.probed[service.name] = (now, result)
    return result


def startup_failed(lines):
    """Whether a log's lines since procclean's last own line (a start, a stop, a restart)
    say the app's start-up failed (uvicorn's "Application startup failed", a traceback)."""
    markers = [m.decode() for m in STARTUP_FAILED]
    for line in reversed(lines):
        if line.startswith("[procclean "):
            return False
        if any(m in line for m in markers):
            return True
    return False


def left_defunct(system, proc):
    """Whether a <defunct> of the table is a worker that failed, left so (uvicorn --reload's
    dead worker) at a second look: no thread of its parent runnable (a shell waiting for
    its cp, an app's subprocess.run, is woken by the exit to reap it), still there, and
    ended by an error or a signal (an app's subprocess that did its job exits 0, and its
    parent may sleep before it reaps it).  No /proc: one look."""
    if not system.has_proc():
        return True
    return not system.runnable(proc.ppid) and system.exit_status(proc.pid) != 0


def assess(record):
    """(state, what --check reports: (message key, values) or None) of a status record:
    the one rule behind status's mark, the JSON `state` and --check.  Only "running" is
    OK: up, its own process on its port (if any), no worker exited, healthy (if asked)."""
    supervisor = record.get("supervisor") or {}
    if not record["running"]:
        crashed = supervisor.get("state") == "gave-up" or record.get("startup_failed")
        return ("crashed" if crashed else "stopped"), ("status_stopped", {})
    if supervisor.get("state") == "backoff":
        return "restarting", ("check_state", {"state": "restarting"})
    port = record["port"]
    if port is not None and not any(l["own"] for l in record["listeners"]):
        if record.get("startup_failed") or record.get("exited"):
            state = "crashed"
        elif supervisor.get("state") == "starting" or not record.get(
                "listening_elsewhere") and record["uptime"] is not None \
                and record["uptime"] < START_TIMEOUT:
            state = "starting"      # (up on another port: not starting, not listening)
        else:
            state = "not listening"
        holder = record["listeners"][0] if record["listeners"] else None
        if holder is None:
            return state, ("check_port_free", {"port": port})
        if holder["pid"] is None:
            return state, ("check_port_unknown", {"port": port, "holder": holder["user"]})
        return state, ("check_port_stranger", {"port": port, "pid": holder["pid"],
                                               "cmd": holder["command"]})
    if record.get("exited"):
        return "crashed", ("check_worker_exited", {"pid": record["exited"][0]})
    health = record.get("health")
    if health is not None and health["state"] != "healthy":
        return "unhealthy", ("check_unhealthy", {"port": port, "url": health["url"],
                                                 "state": health["state"]})
    return "running", None


def status_snapshot(ctx, services, warn=True):
    found = read_targets(ctx, services, warn=warn)
    return [service_status(ctx, s, found) for s in services]


def cmd_status(ctx, services):
    if ctx.watch is not None:
        return watch_status(ctx, services)
    records = status_snapshot(ctx, services)
    ports = ctx.config.ports
    if ctx.json:
        for record in records:      # the document (run's finish): command, exit_code, ...
            ctx.out.add("services", record)
        if ports:
            ctx.out.document["port_offset"] = ports
    else:
        if ports:
            ctx.out.line(ports_line(ctx.out, ports))
        for record in records:
            for line in status_lines(ctx, record):
                ctx.out.line(line)
    failed = [r for r in records if r["state"] != "running"] if ctx.check else []
    for record in failed:
        # A service not running says so above; a running one says what failed.
        if record["running"]:
            key, values = assess(record)[1]
            if "state" in values:
                values["state"] = state_text(ctx.out, values["state"])
            if "holder" in values:
                values["holder"] = unseen_holder(ctx.out, values["holder"])
            ctx.out.warn(key, svc=record["name"], **values)
    return EXIT_NOT_RUNNING if failed else EXIT_OK


def ports_line(out, ports):
    """The port offset this checkout runs with, and where it comes from."""
    if ports["mode"] == "fixed":
        how = out.text("ports_how_fixed", offset=ports["offset"])
    else:
        how = out.text("ports_how_auto" if os.path.isfile(ports["file"])
                       else "ports_how_unrecorded", file=ports["file"])
    moved = ", ".join("%s %d" % (name, port)
                      for name, port in sorted(ports["ports"].items()))
    return out.text("status_ports", offset=ports["offset"], how=how,
                    ports=moved or out.text("ports_none_moved"))


def watch_status(ctx, services):
    """status --watch: redrawn on a terminal, a snapshot per interval on a pipe (a JSON
    line with --json), CPU as used over the last interval."""
    import itertools
    import json
    out = ctx.out
    system = ctx.system
    redraw = _isatty(out.stdout) and not ctx.json
    interval = format_seconds(ctx.watch)
    previous = None
    if redraw:
        out.raw("\033[?25l")
    try:
        for shown in itertools.count(1):
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
            lines = [out.text("watch_header", interval=interval, time=stamp), ""] + [
                line for record in records for line in status_lines(ctx, record)]
            if ctx.json:
                out.data(json.dumps({"time": stamp, "services": records}))
            elif redraw:
                out.raw("\033[H\033[2J" + "\n".join(lines) + "\n")
            else:
                for line in lines + [""]:
                    out.line(line)
            if ctx.count and shown >= ctx.count or id(out.stdout) in out.broken:
                break           # `| head -3` closed the pipe: nobody is watching
            system.sleep(ctx.watch)
    except KeyboardInterrupt:
        # Ctrl-C is the way out of a watch, said by no error line; the process still
        # ends by SIGINT (exit_as), as `watch` and `tail -f` do, so make and shells see it.
        return EXIT_INTERRUPTED
    finally:
        if redraw:
            out.raw("\033[?25h")
    return EXIT_OK


def status_lines(ctx, record):
    out = ctx.out
    name = record["name"]
    state = record["state"]
    if record["running"]:
        lines = [out.text(
            "status_running" if state == "running" else "status_state", svc=name,
            state=state_text(out, state), pids=", ".join(map(str, record["pids"])),
            uptime=format_duration(record["uptime"]),
            cpu="?" if record["cpu_percent"] is None else "%.1f%%" % record["cpu_percent"],
            mem=format_memory(record["memory_kb"]))]
    else:
        lines = [out.text("status_crashed" if state == "crashed" else "status_stopped",
                          svc=name)]
    lines.extend(out.text("status_worker_exited", pid=pid) for pid in record.get("exited") or ())
    if record["port"] is not None and not record["listeners"]:
        lines.append(out.text("status_port_free", port=record["port"]))
    if record.get("listening_elsewhere"):
        lines.append(out.text("status_elsewhere", svc=name, ports=", ".join(
            map(str, record["listening_elsewhere"]))))
    for holder in record["listeners"]:
        key = "status_port_unknown" if holder["pid"] is None else (
            "status_port_own" if holder["own"] else "status_port_stranger")
        lines.append(out.text(key, port=record["port"], pid=holder["pid"],
                              cmd=holder["command"], svc=name, what=holder.get("what"),
                              holder=unseen_holder(out, holder["user"])))
        if holder.get("free"):
            lines.append(out.text("status_port_free_it", free=holder["free"]))
    health = record["health"]
    if health:
        detail = " (%s)" % health["error"] if health["status"] is None else \
            " (HTTP %d, %d ms)" % (health["status"], health["latency_ms"])
        lines.append(out.text("health", url=health["url"], detail=detail,
                              state=MESSAGES[out.lang][health["state"]]))
    if record.get("dev"):
        lines.append(out.text("status_dev", pid=record["dev"]))
    supervisor = record["supervisor"]
    if supervisor:
        if supervisor["state"] == "gave-up" and not record["running"]:
            lines.append(out.text("gave_up", svc=name, n=supervisor["restarts"],
                                  code=describe_exit(supervisor["last_exit"], out.lang)))
        elif record["running"]:
            lines.append(out.text("supervisor", pid=supervisor["supervisor"],
                                  state=supervisor["state"], n=supervisor["restarts"]))
    if record.get("outside"):
        lines.append(out.text("status_outside", items=outside_items(out, record["outside"])))
    return lines


# The states of status (see assess) and their message keys.
STATE_MESSAGES = {"running": "state_running", "starting": "state_starting",
                  "not listening": "state_not_listening", "unhealthy": "state_unhealthy",
                  "restarting": "state_restarting", "crashed": "state_crashed",
                  "stopped": "state_stopped"}


def state_text(out, state):
    """A status state (not listening, ...) or health answer (no answer), in words."""
    if state in STATE_MESSAGES:
        return out.text(STATE_MESSAGES[state])
    return MESSAGES[out.lang].get(state, state)


def describe_exit(status, lang="en"):
    """How a service ended, in words (English for logfiles): its exit status (128+N: a
    wrapper's whose program signal N ended), the signal that ended it, or UNHEALTHY_EXIT."""
    text = MESSAGES[lang]
    if status == UNHEALTHY_EXIT:
        return text["exit_unhealthy"]
    if not isinstance(status, int):
        return "?"
    if status < 0 or 128 < status < 160:
        import signal
        number = -status if status < 0 else status - 128
        try:
            sig = signal.Signals(number).name
        except ValueError:
            sig = None
        if status < 0:
            return text["exit_signal_n"].format(n=number) if sig is None else \
                text["exit_signal"].format(sig=sig)
        if sig is not None:
            return text["exit_status_signal"].format(n=status, sig=sig)
    return text["exit_status"].format(n=status)


# ---------------------------------------------------------------------------
# Launching: environment, ports, checkouts side by side, pidfiles
# ---------------------------------------------------------------------------

def launch_env(ctx, service):
    """The caller's environment, the project's tag, PORT (and PORT_VARIABLES) and every
    service's PROCCLEAN_<SERVICE>_PORT (a Vite proxy finds the backend by it)."""
    env = dict(os.environ)
    env[TAG_PROJECT] = ctx.project
    env[TAG_SERVICE] = service.name
    env.update((port_variable(other.name), str(other.port))
               for other in ctx.config.services.values() if other.port is not None)
    if service.port is not None:
        env["PORT"] = str(service.port)
        if re.search(ENV_PORT_RE, service.command):
            # (only then: a uvicorn that a frontend's `concurrently` runs keeps its own)
            env.update((name, str(service.port)) for name in PORT_VARIABLES)
    python_env(env, resolve_cwd(service.cwd))
    return env


PORT_STEP = 10          # port_offset = auto: a checkout's ports move in steps of this,
PORT_SLOTS = 100        # ...to one of this many offsets (0 to +990)
OFFSET_FILE = ".procclean-offset"   # the offset a checkout settled on, kept stable
LAUNCH_COMMANDS = ("start", "restart", "dev", "supervise")


def settle_ports(ctx, command, names=()):
    """Each service's port: moved by `port_offset` unless set by name (offset_ports);
    before a launch, a set port its service (of `names`) will not follow is said; other
    commands look where a running service was launched to listen."""
    config = ctx.config
    launching = command in LAUNCH_COMMANDS and not ctx.dry_run
    if launching:
        for name in sorted(n for n in config.fixed_ports if not names or n in names):
            service = config.services.get(name)
            if service is None or service.port is None or not service.command.strip():
                continue
            follows = port_follows(service)
            if not follows:
                ctx.out.warn("port_set_not_followed", svc=name, port=service.port,
                             var=port_variable(name))
                say_port_fixed(ctx, service)
            if follows is False:    # it names its own: start checks and waits for that one
                try:
                    service.port = parse_port(config.fixed_ports[name])
                except ProcCleanError:
                    pass        # no port before the setting: not known
        moved = dict((int(port), config.services[name]) for name, port in
                     config.fixed_ports.items() if str(port).isdigit() and name in
                     config.services and config.services[name].port != int(port))
        if moved:
            say_fixed_proxies(ctx, list(config.services.values()), moved, "set_proxy_fixed")
    if config.port_offset is not None:
        offset_ports(ctx, launching)
    if command not in LAUNCH_COMMANDS:
        follow_launched_ports(ctx)
    elif launching:
        say_port_not_passed(ctx, names)


def say_port_not_passed(ctx, names):
    """`PORT=9000 make dev` (or an exported PORT) names no service: each one launched
    gets its own port in PORT.  Said, with the setting that moves one.  A PORT that is
    one service's own (the backend's 8000, exported for it) asks for nothing."""
    value = os.environ.get("PORT", "").strip()
    config = ctx.config
    launched = [config.services[n] for n in (names or config.default_names)
                if n in config.services and config.services[n].port is not None]
    own = set(str(s.port) for s in config.services.values() if s.port is not None)
    if not value.isdigit() or not launched or value in own:
        return
    ports = ", ".join("%s %d" % (s.name, s.port) for s in launched)
    setting = "%s=%s %s" % (port_variable(launched[0].name), value,
                            Hints().command("start", launched[0].name))
    ctx.out.warn("port_not_passed", port=value, ports=ports, svc=launched[0].name,
                 setting=setting)


def follow_launched_ports(ctx):
    """A running service keeps the port it was launched with (its start record): after
    `PROCCLEAN_BACKEND_PORT=8001 make start`, a plain `make stop` looks at 8001."""
    system = ctx.system
    for service in ctx.config.services.values():
        if service.port is None:
            continue
        info = system.read_pidfile(service.pidfile)
        record = system.read_start_record(info) if info.pid and not info.problem else None
        port = record.get("port") if record else None
        if not isinstance(port, int) or port == service.port or not 0 < port < 65536:
            continue
        now = system.start_record(info.pid)
        proc = now and Process(info.pid, None, None, "", start=now.get("start"),
                               start_ticks=now.get("ticks"))
        if proc and system.is_recorded(proc, record):
            service.port = port
            if ctx.config.ports and service.name in ctx.config.ports["ports"]:
                ctx.config.ports["ports"][service.name] = port


def offset_ports(ctx, launching):
    """Every port the environment or --set does not name moved by the offset (a number,
    or checkout_offset's), kept in ctx.config.ports for status."""
    config = ctx.config
    setting = config.port_offset
    # the project's services: not the built-in frontend of a `services = backend` project
    movable = [config.services[n] for n in config.default_names
               if config.services[n].port is not None and n not in config.fixed_ports]
    # Before a launch, one that names a port of its own keeps it in every checkout: the
    # one start checks, waits for and records (status reads that).  One that reads no
    # PORT that procclean sees, and names none, is moved: PORT may reach it unseen.
    # Other commands read no app: the record names those kept at the last launch.
    auto = setting == "auto"
    words = (_read_text(OFFSET_FILE, 4096) or "").split()
    recorded = int(words[0]) if words and words[0].isdigit() else None
    follows = dict((s.name, port_follows(s)) for s in movable) if launching else dict(
        (name, False) for name in words[1:])
    fixed = [s for s in movable if follows.get(s.name) is False]
    moved = [s for s in movable if s not in fixed]
    offset = checkout_offset(ctx, moved, launching, recorded) if auto else setting
    # (a number set is written +10: auto never takes it as the checkout's offset)
    record = ["%d" % offset if auto else "+%d" % offset] + [s.name for s in fixed]
    if launching and record != words and (auto or words or fixed):
        try:
            write_atomic(OFFSET_FILE, (" ".join(record) + "\n").encode())
        except OSError as exc:
            ctx.out.warn("offset_unwritten", file=OFFSET_FILE, error=error_text(exc))
    for service in moved:
        if service.port + offset > 65535:
            raise ProcCleanError("err_offset_beyond", svc=service.name, port=service.port,
                                 offset=offset)
        service.port += offset
    config.ports = {"offset": offset, "mode": "auto" if setting == "auto" else "fixed",
                    "file": OFFSET_FILE if setting == "auto" else None,
                    "ports": dict((s.name, s.port) for s in movable)}
    if offset and launching:
        for service in movable:
            if service in fixed:
                ctx.out.warn("offset_not_followed", svc=service.name, port=service.port)
            if not follows[service.name]:   # (None: it may read PORT where none looks)
                say_port_fixed(ctx, service)
        say_fixed_proxies(ctx, movable, dict((s.port - offset, s) for s in moved))


def say_fixed_proxies(ctx, movable, configured, key="offset_proxy_fixed"):
    """A frontend whose dev server proxies to the `configured` port of another service
    (a literal `target: 'http://localhost:8000'`) reaches what listens there (the
    checkout on the configured ports), not the service moved: said before anything
    starts."""
    for service in movable:
        said = dev_proxy_target(resolve_cwd(service.cwd))
        django = not said and re.search(r"\bmanage\.py\s+runserver\b", service.command)
        if said:
            said = said[0], os.path.normpath(os.path.join(service.cwd, said[1]))
        elif django:
            said = _django_vite_port(default=True)  # its pages load the Vite's assets
        other = said and configured.get(int(said[0]))
        if other and other is not service:
            ctx.out.warn("django_vite_fixed" if django else key, svc=service.name,
                         other=other.name, file=said[1], port=said[0], moved=other.port,
                         var=port_variable(other.name))


def checkout_offset(ctx, movable, launching, recorded):
    """The recorded offset, else 0 in a main checkout, a step from the path in a linked
    git worktree.  Before a launch, a port another checkout listens on moves it to the
    next free offset (said); not while this checkout holds one of its ports."""
    slot = checkout_slot(ctx.project)
    first = recorded if recorded is not None else (
        PORT_STEP * slot if linked_worktree(ctx.project) else 0)
    if not launching or not movable:
        return first
    foreign, own = foreign_listeners(ctx)
    if any(s.port + first in own for s in movable):
        return first
    choices = [first] + [PORT_STEP * (1 + (slot - 1 + n) % (PORT_SLOTS - 1))
                         for n in range(PORT_SLOTS - 1)]
    offset = next((o for o in choices if not any(s.port + o in foreign for s in movable)),
                  None)
    if offset is None:
        return first        # every offset taken: start names the holder
    if offset == recorded:
        return offset
    ports = ", ".join("%s %d" % (s.name, s.port + offset) for s in movable)
    if offset == first:
        ctx.out.say("ports_chosen", offset=offset, ports=ports, file=OFFSET_FILE)
    else:
        taken = next(foreign[s.port + first] for s in movable if s.port + first in foreign)
        folder = taken.pid and ctx.system.process_cwds([taken.pid]).get(taken.pid)
        ctx.out.warn("ports_moved", port=taken.port, pid=taken.pid or "?", offset=offset,
                     ports=ports, file=OFFSET_FILE, folder=printable(
                         folder or ctx.out.text("folder_unknown")) if taken.pid else "?")
    return offset


def checkout_slot(path):
    import zlib
    return 1 + zlib.crc32(path.encode("utf-8", "surrogateescape")) % (PORT_SLOTS - 1)


def linked_worktree(folder):
    while not os.path.lexists(os.path.join(folder, ".git")):
        if os.path.dirname(folder) == folder:
            return False
        folder = os.path.dirname(folder)
    return os.path.isfile(os.path.join(folder, ".git"))


def foreign_listeners(ctx):
    """(port -> a Listener on it not this project's (by tag or folder), the ports this
    project's processes listen on)."""
    system = ctx.system
    listeners = system.listeners(None)
    table = system.process_table()
    pids = dict((l.pid, table[l.pid]) for l in listeners if l.pid in table)
    project = Project(ctx.project_given, system.process_tags(pids))
    project.cwds = system.process_cwds(sorted(p for p in pids if p not in project.tags))
    project.nested = nested_checkouts(project, project.cwds.values())
    foreign, own = {}, set()
    for listener in listeners:
        proc = pids.get(listener.pid)
        if proc is None or not project.holds(proc):
            foreign.setdefault(listener.port, listener)
        else:
            own.add(listener.port)
    return foreign, own


def port_variable(name):
    """The variable that sets service `name`'s port (and tells services its port)."""
    return "PROCCLEAN_%s_PORT" % name.upper().replace("-", "_").replace(".", "_")


def launch_plan(service):
    """(folder, argv, the command as shown) for starting a service."""
    cwd = resolve_cwd(service.cwd)
    try:
        argv = command_argv(service.command, cwd, service.port)
    except ProcCleanError as exc:
        raise ProcCleanError("err_in", where=service.name, error=exc)
    shown = " ".join(argv) if argv[:2] != ["/bin/sh", "-c"] else argv[2]
    return cwd, argv, shown


def start_plan(ctx, service):
    """(None, the launch_plan) when a service may be launched, else (EXIT_FAILED, None)
    or, after --dry-run said what would start, (EXIT_OK, None)."""
    if not service.command.strip():
        ctx.out.warn("no_command", svc=service.name)
        return EXIT_FAILED, None
    cwd, argv, shown = launch_plan(service)
    if os.environ.get("VIRTUAL_ENV") and "{python}" in service.command:
        # Another venv is active: which interpreter a Python service runs with, and why.
        python, key, values = python_toolchain(cwd)
        if key == "tc_env_outside" or values.get("ignored"):
            ctx.out.warn("python_chosen", svc=service.name, python=" ".join(python),
                         why=toolchain_why(ctx.out, key, values))
    if ctx.dry_run:
        ctx.out.say("would_start", svc=service.name, cmd=shown, cwd=cwd, log=service.logfile)
        return EXIT_OK, None
    if not os.path.isdir(cwd):
        ctx.out.warn("start_error", svc=service.name, error="no folder %s" % cwd)
        return EXIT_FAILED, None
    return None, (cwd, argv, shown)


def write_pid(ctx, path, pid, port=None):
    """Write a pidfile naming `pid` (launched with `port`): what went wrong, or None."""
    try:
        ctx.system.write_pidfile(path, pid, port)
    except OSError as exc:
        return ctx.out.text("err_cannot_write", path=path, error=exc.strerror or exc)
    return None


def drop_pidfile(system, path):
    """Remove a pidfile and the start record write_pid wrote beside it."""
    system.remove_file(path)
    system.remove_file(path + START_SUFFIX)


def reap(child):
    """Wait for a child that was stopped (KILL_WAIT at most)."""
    try:
        child.wait(timeout=KILL_WAIT)
    except Exception:
        pass


def spawn_tracked(ctx, service, cwd, argv, env, piped=False):
    """(the child, its pipe's read end if `piped`, None) or (None, None, what went
    wrong).  A child whose pidfile cannot be written is taken down: untracked."""
    system = ctx.system
    try:
        if piped:
            child, fd = system.spawn_piped(argv, cwd, env)
        else:
            child, fd = system.spawn(argv, cwd, service.logfile, env=env), None
    except OSError as exc:
        return None, None, spawn_problem(ctx, exc, argv[0])
    problem = write_pid(ctx, service.pidfile, child.pid, service.port)
    if problem is not None:
        system.send_signal(child.pid, SIGKILL)
        child.wait()
        if fd is not None:
            os.close(fd)
        return None, None, problem
    return child, fd, None


def spawn_problem(ctx, exc, program):
    """What an OSError from starting `program` says: a program not on PATH in words
    (`uv` where uv is not installed), else the file, the system's reason and, after
    "Permission denied", whose the file is (`sudo make start` left root's log)."""
    if exc.errno == errno.ENOENT and exc.filename == program and "/" not in program:
        return ctx.out.text("no_program", program=program)
    problem = "%s: %s" % (exc.filename or program, exc.strerror or exc)
    if exc.errno not in (errno.EACCES, errno.EPERM) or not exc.filename:
        return problem
    try:
        uid = os.stat(exc.filename).st_uid
    except OSError:
        return problem
    if uid == ctx.system.euid():
        return problem
    return problem + ctx.out.text("owned_by", user=printable(ctx.system.user_name(uid)),
                                  path=printable(exc.filename))


def pid_list(targets):
    return ", ".join(str(t.pid) for t in targets)


def port_taken(ctx, service, found, listeners):
    """Whether another process holds the service's port (said, with how to free it or
    pick another)."""
    holders = port_facts(ctx, service, listeners, found.table, found.running(service))
    if not holders:
        return False
    holder = holders[0]
    folder = None
    if holder.pid is None:
        ctx.out.warn("port_taken_unknown", svc=service.name, port=service.port,
                     holder=unseen_holder(ctx.out, listener_user(
                         ctx.system, holder.listener, found.table)))
    else:
        folder = ctx.system.process_cwds([holder.pid]).get(holder.pid)
        ctx.out.warn("port_taken", svc=service.name, port=service.port, pid=holder.pid,
                     cmd=printable(holder.listener.command or "?"),
                     cwd=printable(folder or ctx.out.text("folder_unknown")))
    other = other_checkout(ctx, folder) if holder.kind == "stranger" else None
    if holder.kind in ("leftover", "container"):
        # freed by `stop SERVICE` or by stopping the container, never by kill-port
        ctx.out.warn("port_hint_holder", pid=holder.pid, what=holder.what, free=ctx.out.text(
            "port_hint_then", free=holder.free) if holder.free else "")
        say_port_hint(ctx, service, None)
    elif other is not None:
        # another checkout's: stopped there, or ports of its own, not kill-port
        ctx.out.warn("port_hint_checkout", pid=holder.pid, folder=printable(other))
        if not port_follows(service):
            say_port_fixed(ctx, service)
        elif ctx.config.port_offset is None:
            ctx.out.warn("port_hint_offset")
    else:
        # (a viewer, an editor forwarding the port: kill-port spares it, so no hint)
        say_port_hint(ctx, service, holder.pid, app=holder.kind == "viewer")
    return True


def other_checkout(ctx, folder):
    """The checkout or procclean project (own_checkout, a Makefile that runs procclean)
    holding `folder`, if not this one (a home folder kept in git is neither)."""
    ours = Project(ctx.project_given).paths
    found = None
    while folder and os.path.dirname(folder) != folder:
        if own_checkout(folder) or makefile_runs_procclean(folder):
            found = None if folder in ours else folder
            break
        if os.path.exists(os.path.join(folder, ".git")):
            break
        folder = os.path.dirname(folder)
    return found


def say_log_tail(ctx, service, lines=LOG_TAIL_LINES):
    """The last lines of a service's log, indented, on stderr (after why it failed); the
    holder of a port they say is in use (its app binds it itself) is named, as start's."""
    tail = ctx.system.tail(service.logfile, lines)
    for line in tail:
        ctx.out.line("    " + line, err=True)
    clock = r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?"       # a time (12:30:45,053): no port
    ports = [port for line in tail if re.search(r"(?i)\bin use\b", line)
             for port in re.findall(r"(?i)(?:port\s+|[:,]\s*)(\d{2,5})\b",
                                    re.sub(clock, "", line))[-1:]]
    if ports and int(ports[-1]) != service.port:
        import copy
        other = copy.copy(service)
        other.port = int(ports[-1])
        port_taken(ctx, other, read_targets(ctx, [other], warn=False),
                   port_listeners(ctx, [other]))


# ---------------------------------------------------------------------------
# Commands start, restart and supervise
# ---------------------------------------------------------------------------

def cmd_start(ctx, services):
    """Start each service in the background unless it runs already or its port is taken."""
    services = start_order(services)
    for service in services:
        if service.command.strip():
            launch_plan(service)        # a command that cannot be read stops all, up front
    asked = ctx.asked

    def interrupt(signum, frame):
        asked.append(signum)
        if len(asked) > 1:
            ctx.hurry = True    # again, while it stops them: SIGKILL, now
        elif not ctx.launching:
            raise _StopRequested(signum)

    # Ctrl-C, SIGTERM or SIGHUP while it waits (an app compiling): what it launched is
    # stopped, then it ends by that signal.
    failed, started = False, []
    with interrupts_caught(interrupt):
        try:
            for wave in start_waves(services):
                ready = [s for s in wave if not s.after or _wait_after(ctx, s, started)]
                failed = failed or len(ready) < len(wave)
                # locked from the look at the machine to the pidfile written, not while
                # it waits (a supervisor that --supervise starts takes its service's lock)
                with service_locks(ctx, ready):
                    failed = _start_services(ctx, ready, started) or failed
            failed = not _watch_start(ctx, started) or failed
        except _StopRequested as request:
            for launch in started:
                launch.undo(announce=True)
            return 128 + request.args[0]
    return EXIT_FAILED if failed else EXIT_OK


def start_waves(services):
    """`services` (in start order) cut before each one that starts after another of them."""
    waves, names = [], set()
    for service in services:
        if not waves or any(name in names for name in service.after):
            waves.append([])
        waves[-1].append(service)
        names.add(service.name)
    return waves


def _wait_after(ctx, service, started):
    """Wait until the services `service` starts after (of `started`) are ready, as start
    --wait does: False (said) if one failed (kept for _watch_start) or timed out."""
    deps = dict((launch.twin(), launch) for launch in started
                if launch.service.name in service.after)
    for twin, (key, values) in launch_outcomes(ctx, list(deps)):
        if key == "ok":
            continue
        launch = deps[twin]
        if launch.waits or key not in TIMEOUT_KEYS:
            launch.known = (key, values)
        if key in TIMEOUT_KEYS:
            ctx.out.warn("after_timeout", svc=service.name, dep=twin.service.name,
                         timeout=format_seconds(ctx.timeout))
        else:
            ctx.out.warn("after_failed", svc=service.name, dep=twin.service.name)
        return False
    return True


def _start_services(ctx, services, started):
    """Start each service not running yet, adding its StartWatch to `started` (an
    interrupt undoes those): whether one failed."""
    if not services:
        return False
    found = read_targets(ctx, services)
    failed = False
    for service in services:
        running = found.started(service)
        if running:
            dev = dev_session_of(ctx, service, found.table)
            ctx.out.say("already_running" if dev is None else "already_running_dev",
                        svc=service.name, pids=pid_list(running), dev=dev)
            continue
        if port_taken(ctx, service, found, found.listeners):
            failed = True
            continue
        code, plan = start_plan(ctx, service)
        if plan is None:
            failed = failed or code != EXIT_OK
            continue
        if found.pidfiles[service.name].exists:
            ctx.system.remove_file(service.pidfile)     # stale: nothing of it runs
        drop_dev_files(ctx, stale_dev_files(ctx, service, found.table))
        ctx.launching = True        # an interrupt waits until the launch can be undone
        launch = _launch(ctx, service, plan)
        started += [launch] if launch is not None else []
        ctx.launching = False
        if ctx.asked:
            raise _StopRequested(ctx.asked[0])
        failed = failed or launch is None
    return failed


def _launch(ctx, service, plan):
    """Spawn a service (or its supervisor, this file) with its pidfile: its StartWatch,
    or None (said)."""
    cwd, argv, shown = plan
    if ctx.rotate:
        ctx.system.rotate_log(service.logfile)
    position = ctx.system.log_position(service.logfile)
    env = launch_env(ctx, service)
    if supervised(ctx, service):
        env["PROCCLEAN_NO_ROTATE"] = "1"        # start rotated the log already
        argv = [sys.executable or "python3", os.path.abspath(__file__), "supervise",
                service.name] + ctx.passthrough
        cwd = "."
    child, _, problem = spawn_tracked(ctx, service, cwd, argv, env)
    if child is None:
        ctx.out.warn("start_error", svc=service.name, error=problem)
        return None
    if not supervised(ctx, service):
        ctx.system.append_log(service.logfile, "start: %s PID %d: %s (in %s)"
                              % (service.name, child.pid, shown, cwd))
    return StartWatch(ctx, service, child, shown, position)


def supervised(ctx, service):
    """Whether start runs `service` under a supervisor (--supervise, its setting, or a
    restart of a supervised one)."""
    return bool(ctx.supervise or service.supervise or service.name in ctx.keep_supervised)


def start_waits_for(ctx, service):
    """Whether start waits for `service` to listen and answer: --wait or its `wait`."""
    return bool(ctx.wait or service.wait) and service.port is not None


def _watch_start(ctx, started):
    """Watch fresh services until each one's outcome is known; what failed is said and
    stopped again.  False if any failed."""
    ok = True
    shown = []
    for launch, outcome in launch_outcomes(ctx, started):
        service = launch.service
        pid = launch.child.pid
        log = launch.service.logfile
        if outcome[0] != "ok":
            launch.fail(*outcome)
            ok = False
            continue
        shown.append((launch, {"service": service.name, "pid": pid, "command": launch.shown,
                               "log": log, "supervised": supervised(ctx, service)}))
        if supervised(ctx, service):
            ctx.out.say("supervising", svc=service.name, pid=pid, log=log)
            crash = launch.crashed()
            if crash is not None:       # (already: status says "restarting")
                ctx.out.warn("start_restarting", svc=service.name, **crash[1])
        else:
            ctx.out.say("started", svc=service.name, pid=pid, cmd=launch.shown, log=log)
        if launch.waits:
            ctx.out.say("listening", svc=service.name, port=service.port)
        elif outcome[1].get("listening") is False:
            # up, not on its port: where its tree listens instead, else still starting
            ports = ports_elsewhere(ctx, set(launch.tree(ctx.system.process_table())),
                                    service.port)
            if ports:
                ctx.out.say("status_elsewhere", svc=service.name,
                            ports=", ".join(map(str, ports)))
            else:
                ctx.out.say("not_listening_yet", svc=service.name, port=service.port)
    # one that exited while the others were watched is not reported started
    for launch, record in shown:
        code = launch.child.poll()
        if code is not None:
            launch.fail("start_failed", {"code": code})
            ok = False
        else:
            ctx.out.add("started", record)
    return ok


# Debuggers' ports, open from a process's first moment (node --inspect, debugpy, a
# JVM's JDWP): no sign of where the app listens, nor that it is up.
DEBUG_PORTS = (9229, 9230, 5678, 5005)


def ports_elsewhere(ctx, pids, port):
    """The ports other than `port` processes `pids` listen on, a debugger's left out (a
    look after the one that found `port` free may find it taken: no other port)."""
    return sorted(set(l.port for l in ctx.system.listeners()
                      if l.pid in pids and l.port not in DEBUG_PORTS + (port,)))


TIMEOUT_KEYS = ("start_timeout", "start_unhealthy")


def launch_outcomes(ctx, launches):
    """Yields (launch, outcome) as each one's outcome is known, then (launch, its
    timeout) for those still waiting at --timeout.  A worker (no port) is judged once
    those with a port are: one that dies while they start is not called started."""
    system = ctx.system
    begun = system.clock()
    pending = list(launches)
    delay = 0.02
    noticed = False
    while pending:
        table = system.process_table()
        listening = set(l.port for l in port_listeners(ctx, [l.service for l in pending]))
        judged = [l for l in pending if l.service.port is not None] or list(pending)
        for launch in list(pending):
            outcome = launch.look(table, listening)
            if outcome is not None and (launch in judged or outcome[0] != "ok"):
                pending.remove(launch)
                yield launch, outcome
        now = system.clock()
        if pending and not noticed and now - begun >= START_NOTICE:
            noticed = say_start_wait(ctx, pending)
        if noticed:
            say_listening_elsewhere(ctx, pending, table, listening)
        ports = [l for l in pending if l.service.port is not None]
        waits = bool(ports) and all(l.waits for l in ports)
        over = begun + (ctx.timeout if waits else START_SETTLE)
        if not pending or now >= over and waits:
            break
        system.sleep(max(0.0, min(delay, over - now)))
        delay = min(delay * 2, 0.25)
    for launch in pending:
        yield launch, launch.timed_out()


def say_start_wait(ctx, pending):
    """What a start still waits for: the port of each service that has one, else each
    worker that still computes (not one that only has to outlive START_WORKER)."""
    ports = [l for l in pending if l.service.port is not None]
    now = ctx.system.clock()
    busy = [l for l in pending if l.cpu and now - l.cpu[1] < START_IDLE]
    for launch in ports or busy:
        port = launch.service.port
        ctx.out.say("start_waiting_idle" if port is None else "start_waiting",
                    svc=launch.service.name, pid=launch.child.pid, port=port,
                    timeout=format_seconds(ctx.timeout if launch.waits else START_SETTLE))
    return bool(ports or busy)


def say_listening_elsewhere(ctx, pending, table, listening):
    """Once for each service --wait waits for: the other ports its tree listens on (Vite
    on 5173 under the built-in frontend's 3000), so no one waits out the timeout unaware.
    (Looked for once a second: each look lists the machine's listeners.)  Not where an
    orchestrator runs in the tree (concurrently, run-p): its API's port is no mistake."""
    now = ctx.system.clock()
    for launch in pending:
        port = launch.service.port
        looked = launch.looked_elsewhere
        if launch.waits and not launch.told_elsewhere and port not in listening and (
                looked is None or now - looked >= 1.0):
            launch.looked_elsewhere = now
            tree = set(launch.tree(table))
            ports = ports_elsewhere(ctx, tree, port)
            if ports and not any(re.search(ORCHESTRATORS, table[pid].command)
                                 for pid in tree if pid in table):
                launch.told_elsewhere = True
                ctx.out.warn("start_waiting_elsewhere", svc=launch.service.name, port=port,
                             ports=", ".join(map(str, ports)), first=ports[0])


class StartWatch(object):
    """A fresh service start watches.  Without --wait it must survive START_CHECK (an app
    that dies at once takes that long on a busy machine) and listen on its port, or still
    run once its tree stops computing (an idle one costs START_IDLE, not a timeout).
    With --wait (or `ready`: others start after it) it must listen and answer its health
    URL, unless first it exits, its supervisor sees it exit, or (for FAILED_CONFIRM) a
    worker in its tree exited (<defunct>) or its log says start-up failed."""

    def __init__(self, ctx, service, child, shown, position, ready=False):
        self.ctx, self.service, self.child, self.shown = ctx, service, child, shown
        self.position = position
        self.offset, self.identity = position
        self.waits = service.port is not None if ready else start_waits_for(ctx, service)
        self.log_failed = False
        self.sign_since = None
        self.health = None
        self.begun = ctx.system.clock()
        self.known = None           # an outcome seen already (by a wait for it)
        self.told_elsewhere = False     # say_listening_elsewhere said where it listens
        self.looked_elsewhere = None    # ...when it last looked
        self.cpu = None             # (CPU seconds its tree used, when that last grew)

    def twin(self):
        """The same launch watched for being ready (see _wait_after)."""
        return StartWatch(self.ctx, self.service, self.child, self.shown, self.position, True)

    def poll(self):
        table = self.ctx.system.process_table() if self.waits else None
        listening = set(l.port for l in port_listeners(self.ctx, [self.service]))
        return self.look(table, listening)

    def look(self, table, listening):
        """None while the outcome is unknown, else ("ok", {}) or (message key, values)."""
        if self.known is not None:
            return self.known
        elapsed = self.ctx.system.clock() - self.begun
        code = self.child.poll()
        if code is not None:
            return "start_failed", {"code": code}
        if not self.waits:
            return self.settled(table, listening, elapsed)
        if self.service.port in listening:
            if health_url(self.service) is None:
                return "ok", {}
            self.health = check_health(self.ctx.system, self.service,
                                       min(self.ctx.health_timeout, self.ctx.timeout))
            if self.health["state"] == "healthy":
                return "ok", {}
        sign = self.failure_sign(table, listening)
        now = self.ctx.system.clock()
        if sign is None or sign[0] == "start_crashed":
            self.sign_since = None
            return sign
        self.sign_since = now if self.sign_since is None else self.sign_since
        return sign if now - self.sign_since >= FAILED_CONFIRM else None

    def settled(self, table, listening, elapsed):
        """Without --wait: ("ok", {"listening": ...}) once known, else None.  The process
        alone is judged (its log is left to status and --wait); a supervised one that
        crashed already, at once."""
        port = self.service.port
        listens = port is not None and port in listening
        computing = not listens and not (supervised(self.ctx, self.service) and
                                         self.crashed()) and self.computing(table)
        least = START_CHECK
        # A worker (no port) is up if it holds a connection (to its broker, its
        # database), else once it outlives START_WORKER.
        if port is None and not (elapsed >= least and not computing and
                                 self.ctx.system.connected(self.tree(table))):
            least = START_WORKER
        if elapsed < least or computing and elapsed < START_SETTLE:
            return None
        return "ok", {"listening": port is None or listens}

    def computing(self, table):
        """Whether the service's tree used CPU within the last START_IDLE seconds, or waits
        for one (state R: on a busy machine an app starved of CPU is not an idle one)."""
        tree = [pid for pid in self.tree(table) if pid in table]
        used = sum(table[pid].cpu_seconds or 0 for pid in tree)
        now = self.ctx.system.clock()
        if self.cpu is None or used > self.cpu[0] or any(
                getattr(self.ctx.system.proc_stat(pid), "state", None) == "R" for pid in tree):
            self.cpu = (used, now)
        return now - self.cpu[1] < START_IDLE

    def tree(self, table):
        return [self.child.pid] + descendants(children_map(table), self.child.pid)

    def crashed(self):
        """("start_crashed", values) once the supervisor launched saw its service exit."""
        state = self.ctx.system.read_state(state_path(self.service))
        if state.get("supervisor") == self.child.pid and (
                state.get("last_exit") is not None or state.get("restarts")):
            return "start_crashed", {"code": describe_exit(state.get("last_exit"),
                                                           self.ctx.out.lang)}
        return None

    def failure_sign(self, table, listening):
        system, service = self.ctx.system, self.service
        crash = self.crashed()
        if crash is not None:
            return crash
        if service.port in listening:
            return None
        data = b""
        with quietly():
            data, self.offset, self.identity = system.read_new(service.logfile, self.offset,
                                                               self.identity)
        self.log_failed = self.log_failed or any(m in data for m in STARTUP_FAILED)
        if self.log_failed:
            return "start_log_failed", {"port": service.port}
        tree = descendants(children_map(table), self.child.pid)
        exited = sorted(pid for pid in tree if pid in table and table[pid].zombie
                        and system.exit_status(pid) != 0)
        if exited:
            return "start_worker_exited", {"port": service.port, "pid": exited[0]}
        return None

    def timed_out(self):
        """The outcome at --timeout (a worker, no port, outlived the others' wait)."""
        if self.service.port is None:
            code = self.child.poll()
            return ("ok", {"listening": True}) if code is None else \
                ("start_failed", {"code": code})
        timeout = format_seconds(self.ctx.timeout)
        if self.health is not None:
            return "start_unhealthy", {"port": self.service.port, "url": self.health["url"],
                                       "state": MESSAGES[self.ctx.out.lang][self.health["state"]],
                                       "timeout": timeout}
        return "start_timeout", {"port": self.service.port, "timeout": timeout}

    def fail(self, key, values):
        """Say why, show the log's last lines, and undo the start.  An exit a stop from
        another terminal caused is said to be: that stop holds the lock until it is done,
        then the pidfile no longer names this start's process."""
        service = self.service
        daemonized = False
        if key == "start_failed":
            if values["code"] in STOP_STATUSES:
                pid = None
                try:
                    with service_locks(self.ctx, [service]):
                        pid = self.ctx.system.read_pidfile(service.pidfile).pid
                except ProcCleanError:
                    pass            # held on: a stop still in its grace
                if pid != self.child.pid:
                    reap(self.child)
                    self.ctx.out.warn("start_stopped_elsewhere", svc=service.name,
                                      pid=self.child.pid)
                    return
            daemonized = values["code"] == 0
            values = {"code": describe_exit(values["code"], self.ctx.out.lang)}
        self.ctx.out.warn(key, svc=service.name, log=service.logfile, **values)
        say_log_tail(self.ctx, service)
        if key == "start_failed" and daemonized:
            # (pg_ctl start, redis-server --daemonize yes, gunicorn -D: what it left
            # behind carries its tag, and is stopped below)
            self.ctx.out.warn("start_daemonized", svc=service.name)
        self.undo(announce=self.waits)

    def undo(self, announce):
        """Stop what this start left (its tree and session, or a supervisor and its
        service) and its pidfile, if that still names the child (not another start's)."""
        ctx, service, child = self.ctx, self.service, self.child
        with service_locks(ctx, [service]):
            if ctx.system.read_pidfile(service.pidfile).pid != child.pid:
                return
            found = read_targets(ctx, [service], warn=False)
            targets = found.running(service)
            if targets:
                stop_processes(ctx, targets, found.table,
                               lambda table, protected, fresh: session_roots(
                                   table, child.pid, service, protected))
            drop_pidfile(ctx.system, service.pidfile)
        reap(child)
        if announce:
            ctx.out.warn("start_undone", svc=service.name, pidfile=service.pidfile)


class _StopRequested(Exception):
    """A supervisor, or a start, was told to stop (SIGTERM, SIGINT, SIGHUP)."""


def cmd_supervise(ctx, services):
    """Run one service in the foreground, restarted when it crashes; its pidfile names
    the supervisor."""
    if len(services) != 1:
        raise ProcCleanError("err_supervise_one")
    service = services[0]
    with service_locks(ctx, [service]):
        running = read_targets(ctx, [service], warn=False).running(service)
        if running:
            ctx.out.say("already_running", svc=service.name, pids=pid_list(running))
            return EXIT_OK
        code, plan = start_plan(ctx, service)
        if plan is None:
            return code
        if ctx.rotate:
            ctx.system.rotate_log(service.logfile)
        problem = write_pid(ctx, service.pidfile, ctx.system.self_pid(), service.port)
        if problem is not None:
            ctx.out.warn("start_error", svc=service.name, error=problem)
            return EXIT_FAILED
    return Supervisor(ctx, service).run()


class Backoff(object):
    """When to restart a crashed service: after 1 s, doubling up to 30 s, back to 1 s
    after a run of STABLE_RUN; at most `limit` restarts within a minute."""

    def __init__(self, limit):
        self.limit = limit
        self.delay = BACKOFF_FIRST
        self.restarts = []          # when each restart was decided (clock)

    def next(self, now, started):
        """The delay before restarting a child that ran from `started` to `now`, or None:
        give up.  len(self.restarts) numbers the restart."""
        if now - started >= STABLE_RUN:
            self.delay = BACKOFF_FIRST
        self.restarts = [t for t in self.restarts if now - t < 60.0]
        if len(self.restarts) >= self.limit:
            return None
        delay, self.delay = self.delay, min(self.delay * 2, BACKOFF_MAX)
        self.restarts.append(now)
        return delay


class Supervisor(object):
    """Runs one service as its child, restarting it (Backoff) when it exits uncleanly or
    stays unhealthy once healthy (HealthWatch); past --max-restarts a minute it gives up
    with the log's last lines.  SIGTERM, SIGINT, SIGHUP stop the service and itself."""

    def __init__(self, ctx, service):
        self.ctx, self.service, self.system = ctx, service, ctx.system
        self.cwd, self.argv, self.shown = launch_plan(service)
        self.me = self.system.self_pid()
        self.state = {"supervisor": self.me, "service": service.name, "child": None,
                      "state": "starting", "restarts": 0, "last_exit": None}
        self.child = None           # known before a stop request can be acted on
        self.pending_stop = []
        self.interruptible = True
        self.backoff = Backoff(ctx.max_restarts)
        self.started = None         # when the child last started (clock)
        self.pid = "-"              # the PID of the child that last ended

    def save(self, **changes):
        self.state.update(changes)
        self.state["updated"] = self.system.wall_time()
        self.system.write_state(state_path(self.service), self.state)

    def log(self, message):
        self.system.append_log(self.service.logfile, "supervise: " + message, create=True)

    # A stop request raises _StopRequested where the supervisor waits (for its child, or
    # a backoff), held while it starts one: no child starts without its PID known.
    def on_signal(self, signum, frame):
        self.pending_stop.append(signum)
        if self.interruptible:
            self.interruptible = False          # later signals are only noted
            raise _StopRequested(signum)

    def run(self):
        import signal
        handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        previous = dict((sig, signal.signal(sig, self.on_signal)) for sig in handled)
        try:
            code = None
            while code is None:
                status = self.run_child()
                code = EXIT_FAILED if status is None else self.after_exit(status)
            return code
        except _StopRequested as request:
            # One stop at a time, to the end.  A no-op, not SIG_IGN: a signal already
            # caught would print "Signal 15 ignored due to race condition" with a
            # traceback into the log (CPython, bpo-43406).
            for sig in handled:
                signal.signal(sig, lambda signum, frame: None)
            name = signal.Signals(request.args[0]).name
            holder = self.stop_under_way()
            if holder is None:
                self.log("received %s; stopping %s" % (name, self.service.name))
                self.stop_child()
            else:
                self.log("received %s; leaving %s to the stop under way (PID %s)"
                         % (name, self.service.name, holder))
            self.save(state="stopped", child=None)
            return 128 + request.args[0]        # ends by that signal (see exit_as)
        finally:
            if self.system.read_pidfile(self.service.pidfile).pid == self.me:
                drop_pidfile(self.system, self.service.pidfile)
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def run_child(self):
        """Run the child until it ends: its exit status (127 if it could not start again),
        or None if the first start failed."""
        service = self.service
        self.interruptible = False
        try:
            self.child = self.system.spawn(self.argv, self.cwd, service.logfile,
                                           new_session=False, env=launch_env(self.ctx, service))
        except OSError as exc:
            problem = spawn_problem(self.ctx, exc, self.argv[0])
            if self.started is None:        # the very first start
                self.ctx.out.warn("start_error", svc=service.name, error=problem)
                self.save(state="exited")
                return None
            self.log("cannot restart %s: %s" % (service.name, problem))
        finally:
            self.interruptible = not self.pending_stop
        if self.pending_stop:
            raise _StopRequested(self.pending_stop[0])
        self.started = self.system.clock()
        child = self.child
        if child is None:
            self.pid = "-"
            return 127
        self.save(child=child.pid, state="starting")
        self.log("started %s PID %d: %s" % (service.name, child.pid, self.shown))
        status = self.watch(child)
        self.pid, self.child = child.pid, None
        return status

    def watch(self, child):
        """Wait for the child to exit, watching its health: its exit status, or
        UNHEALTHY_EXIT once it was stopped for being unhealthy too long."""
        system = self.system
        health = HealthWatch(self.ctx, self.service)
        while True:
            code = child.poll()
            if code is not None:
                return code
            bad = health.look(child.pid, system.clock())
            if health.healthy and self.state["state"] != "running":
                self.save(state="running", healthy=True)
            if bad is not None:
                self.log("%s PID %d unhealthy for %s; restarting it"
                         % (self.service.name, child.pid, format_seconds(bad)))
                self.stop_child()
                return UNHEALTHY_EXIT
            system.sleep(SUPERVISE_POLL)

    def after_exit(self, status):
        """After the child's end: an exit code (it is over), or None after the backoff."""
        service, system = self.service, self.system
        self.save(child=None, last_exit=status)
        if status in (0, -SIGTERM, -2, -1):         # clean, SIGTERM, SIGINT, SIGHUP
            # clean, or asked for (a stop reached it before its supervisor): it is over
            self.log("%s PID %s exited %s(%s); not restarting"
                     % (service.name, self.pid, "cleanly " if status == 0 else "",
                        describe_exit(status)))
            self.save(state="exited")
            return EXIT_OK
        delay = self.backoff.next(system.clock(), self.started)
        restarts = len(self.backoff.restarts)
        if delay is None:
            self.log("%s PID %s exited (%s); gave up after %d restart(s) within a minute"
                     % (service.name, self.pid, describe_exit(status), restarts))
            self.save(state="gave-up")
            self.ctx.out.warn("gave_up", svc=service.name, n=restarts,
                              code=describe_exit(status, self.ctx.out.lang))
            if self.ctx.rotate:     # in the background, stderr is the log itself
                say_log_tail(self.ctx, service)
            return EXIT_FAILED
        self.log("%s PID %s exited (%s); restarting in %s (restart %d)"
                 % (service.name, self.pid, describe_exit(status), format_seconds(delay),
                    restarts))
        self.save(state="backoff")
        system.sleep(delay)
        self.state["restarts"] += 1
        return None

    def stop_child(self):
        if self.child is not None:
            stop_tree(self.ctx, self.service, self.child, self.me)

    def stop_under_way(self):
        """The PID of the stop or restart that holds the service's lock, else None.  It
        signalled the child too, and ends it by its own grace: a second grace of ours
        ending with it would have that stop SIGKILL us as well."""
        if self.child is None:
            return None
        handle, holder = self.system.lock(os.path.abspath(lock_path(self.service)), 0)
        if handle is None:
            return holder or "?"
        self.system.unlock(handle)
        return None


class HealthWatch(object):
    """How supervise and dev watch a child: healthy when its tree listens on its port, no
    worker of it exited (<defunct>) and its health URL answers (if `probe`); once
    healthy, unhealthy for `unhealthy_after` calls for a restart."""

    def __init__(self, ctx, service, probe=True):
        self.ctx, self.service, self.probe = ctx, service, probe
        self.healthy = False        # it has been healthy
        self.trouble = None         # what is wrong now: (message key, values)
        self.bad_since = self.next_look = None
        self.zombies = set()        # its tree's <defunct> at the last look

    def look(self, pid, now):
        """How long `pid` has been unhealthy once that reaches `unhealthy_after`, else None
        (a look each SUPERVISE_POLL until healthy or while its tree has a <defunct>, else
        each SUPERVISE_PROBE)."""
        if self.next_look is not None and now < self.next_look:
            return None
        self.trouble = self.find_trouble(pid)
        self.next_look = now + (SUPERVISE_PROBE if self.healthy and not self.zombies
                                else SUPERVISE_POLL)
        if self.trouble is None:
            self.healthy, self.bad_since = True, None
            return None
        if not self.healthy:
            return None             # never healthy: not a restart's business
        self.bad_since = now if self.bad_since is None else self.bad_since
        bad_for = now - self.bad_since
        return bad_for if bad_for >= self.service.unhealthy_after else None

    def find_trouble(self, pid):
        service, system = self.service, self.ctx.system
        if service.port is None:
            return None
        table = system.process_table()
        tree = set(descendants(children_map(table), pid)) | set([pid])
        zombies = set(p for p in tree if p in table and table[p].zombie
                      and system.exit_status(p) != 0)
        # <defunct> at two looks: a worker that failed, not a child its parent reaps now
        exited = sorted(zombies & self.zombies)
        self.zombies = zombies
        if exited:
            return "health_worker_exited", {"pid": exited[0], "port": service.port}
        if not any(l.pid in tree for l in system.listeners([service.port])):
            return "health_not_listening", {"port": service.port}
        health = self.probe and check_health(system, service, self.ctx.health_timeout)
        if health and health["state"] != "healthy":
            return "health_failing", {"url": health["url"], "state": health["state"]}
        return None


def stop_tree(ctx, service, child, leader):
    """Stop a child procclean launched, its tree and the session `leader` leads (what it
    daemonized), and reap it: the targets."""
    system = ctx.system
    table = system.process_table()
    protected = protected_pids(table, system.self_pid(), system.parent_pid())
    done = []
    if child.pid in table:
        done, _ = stop_processes(ctx, plan_targets(
            table, [(table[child.pid], service, "child")], protected), table,
            lambda table, protected, fresh: session_roots(table, leader, service, protected))
    reap(child)     # the stop saw it end
    return done


def supervisor_alive(ctx, service, table):
    """Whether a supervisor runs `service` now (by its state file, its PID alive)."""
    state = ctx.system.read_state(state_path(service))
    pid = state.get("supervisor")
    return state.get("state") in ("starting", "running", "backoff") and \
        isinstance(pid, int) and pid in table and not table[pid].zombie


def session_roots(table, leader, service, protected):
    """The processes of the session `leader` leads, if it leads one: what a service left
    behind when it daemonized a helper."""
    me = table.get(leader)
    if me is None or me.sid != leader:
        return []
    return [(proc, service, "session") for proc in table.values()
            if proc.sid == leader and proc.pid not in protected and not proc.zombie]


def cmd_restart(ctx, services):
    """Stop, then start (supervised again if a supervisor ran it); a service a dev
    session runs is restarted by that session, so its output stays in its terminal."""
    with service_locks(ctx, services):
        table = ctx.system.process_table()
        sessions = dict((s.name, dev_session_of(ctx, s, table)) for s in services)
        in_dev = [s for s in services if sessions[s.name] is not None]
        rest = [s for s in services if sessions[s.name] is None]
        asked = []
        for service in in_dev:      # each session looks for its request every DEV_IDLE
            dev = sessions[service.name]
            if ctx.dry_run:
                ctx.out.say("would_dev_restart", svc=service.name, dev=dev)
                continue
            problem = write_pid(ctx, dev_path(service, ".restart"), ctx.system.self_pid())
            if problem is None:
                asked.append(service)
            else:
                ctx.out.warn("start_error", svc=service.name, error=problem)
        ctx.keep_supervised = set(s.name for s in rest if supervisor_alive(ctx, s, table))
        code = cmd_stop(ctx, rest) if rest else EXIT_OK
    # Waited for outside the locks: the dev session may be ending, and stop then.
    if len(asked) < len(in_dev) and not ctx.dry_run \
            or not await_dev_restarts(ctx, asked, sessions, table):
        code = EXIT_FAILED
    if code != EXIT_OK or not rest:
        return code
    ctx.everywhere = False      # --everywhere widens the stop; what runs is still ours
    return cmd_start(ctx, rest)


def await_dev_restarts(ctx, services, sessions, table):
    """Wait until each dev session started its service again (a new PID in its pidfile):
    False if a session ended first, or did not in time."""
    system = ctx.system
    old = dict((s.name, system.read_pidfile(s.pidfile).pid) for s in services)
    deadline = system.clock() + ctx.timeout + ctx.grace + KILL_WAIT + DEV_IDLE
    pending, ok = list(services), True
    while pending:
        for service in list(pending):
            dev = sessions[service.name]
            pid = system.read_pidfile(service.pidfile).pid
            if not system.exists(dev_path(service, ".restart")) and pid not in (
                    None, old[service.name]):
                ctx.out.say("dev_restarted", svc=service.name, dev=dev, pid=pid)
            elif not system.still_running([table[dev]]):
                ctx.out.warn("dev_restart_ended", svc=service.name, dev=dev)
                ok = False
            elif system.clock() >= deadline:
                ctx.out.warn("dev_restart_timeout", svc=service.name, dev=dev)
                drop_pidfile(system, dev_path(service, ".restart"))
                ok = False
            else:
                continue
            pending.remove(service)
        if pending:
            system.sleep(0.1)
    return ok


# ---------------------------------------------------------------------------
# Command dev: the stack in one terminal
# ---------------------------------------------------------------------------

DEV_COLOURS = ("36", "33", "32", "35", "34", "96", "93", "92")
RELAY_READ = 1 << 20        # bytes read from a service's pipe at once
RELAY_LONG_LINE = 1 << 16   # a line this long with no newline yet is shown as it is
DEV_POLL = 0.1              # seconds between looks while something is awaited
DEV_IDLE = 1.0              # ...and while nothing is (a child's exit wakes it at once)
MAKES = ("make", "gmake", "bmake")      # programs whose end, as dev's parent, ends dev
SHELLS = ("sh", "bash", "dash", "zsh")  # shells that run a script given by -c
# Exit statuses a stop can cause (a signal's, or uvicorn's clean exit on SIGTERM): after
# one, a `stop` from another terminal gets the time to remove the pidfile (not a crash).
STOP_STATUSES = (0, -2, -9, -15, -1, 129, 130, 137, 143)
# Why a session ended that the log's last lines explain.
DEV_TAIL_KEYS = ("dev_exited", "dev_killed", "gave_up", "start_log_failed",
                 "start_worker_exited")


def dev_prefixes(names, colour):
    """name -> (prefix of its output lines, of procclean's own lines about it)."""
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


def relay_lines(prefix, data, pending, encoding="utf-8"):
    """(the complete lines of `pending + data`, each after `prefix`; the start of a line
    not ended yet).  Bytes not UTF-8, or not in `encoding`, come out escaped (\\xff)."""
    data = pending + data       # (no copy while `pending` is empty)
    cut = data.rfind(b"\n")
    if cut < 0:
        if len(data) < RELAY_LONG_LINE:
            return b"", data
        cut = len(data)
    body, rest = data[:cut], data[cut + 1:]
    return prefix + relay_convert(body, encoding).replace(b"\n", b"\n" + prefix) \
        + b"\n", rest


def relay_convert(data, encoding):
    if encoding == "utf-8":     # (as codecs.lookup names it)
        try:
            data.decode("utf-8")
            return data
        except UnicodeDecodeError:
            pass
    return data.decode("utf-8", "backslashreplace").encode(encoding, "backslashreplace")


class WakePipe(object):
    """A self-pipe: `wake()` (from another thread, or from a signal through
    signal.set_wakeup_fd(pipe.w)) ends a selector's wait on pipe.r."""

    def __init__(self):
        self.r, self.w = os.pipe()
        os.set_blocking(self.r, False)
        os.set_blocking(self.w, False)

    def wake(self):
        with quietly():         # full: a wake is pending already
            os.write(self.w, b"x")

    def drain(self):
        with quietly():
            while os.read(self.r, 4096):
                pass

    def close(self):
        for fd in (self.r, self.w):
            os.close(fd)


# A terminal escape sequence (ECMA-48): CSI (colours, cursor moves), OSC (titles, links),
# short ones (ESC 7, ESC ( B); what FORCE_COLOR makes a service write, kept off its log.
ANSI_ESCAPE_RE = br"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[ -/]*[0-Z\\^-~])"


def strip_escapes(data, held):
    """(`held + data` without escape sequences, the start of one cut off at the end)."""
    data = held + data
    cut = data.rfind(b"\x1b")
    if cut >= 0 and len(data) - cut < 64 and not re.match(ANSI_ESCAPE_RE, data[cut:]):
        data, held = data[:cut], data[cut:]
    else:
        held = b""
    return re.sub(ANSI_ESCAPE_RE, b"", data), held


def keep_log(args, source=0, to_dev=1):
    """`keep-log FD`, run by dev beside each service (System.keep_log): its output (stdin)
    copied to its log (FD) without escape sequences, and as it is to dev (stdout), until
    its last process closes it.  Out of dev's session and untagged, it reads the last
    lines of a stop; with dev killed, the log still gets every line and the service
    writes on.  (As dev's thread: from `source` to `to_dev`, closed.)"""
    log = int(args[0])
    out = to_dev
    held = b""
    last = b"\n"
    while True:
        data = os.read(source, RELAY_READ)
        if not data:
            break
        logged, held = strip_escapes(data, held)
        with quietly():         # a full disk must not stop the relay
            write_fd(log, logged)
        last = data[-1:]
        if out is not None:
            try:
                write_fd(out, data)
            except OSError:
                out = None      # dev is gone: the log alone
    with quietly():
        write_fd(log, held + (b"" if last == b"\n" else b"\n"))
    for fd in (source, log, to_dev) if source else ():
        os.close(fd)
    return EXIT_OK


class _Stream(object):
    """A service's pipe under the relay; `closed`: all shown, and logged (its keeper
    ended first)."""
    __slots__ = ("fd", "prefix", "pending", "closed")

    def __init__(self, fd, prefix):
        self.fd, self.prefix, self.pending, self.closed = fd, prefix, b"", False


class Relay(object):
    """Copies the services' output to stdout, each line after its service's name.  Its
    own thread reads each pipe in large chunks, one batch written per round, so no
    service waits on a full pipe while procclean checks health or stops.  procclean's
    own lines go through it too, in order, and a paused terminal cannot hold up a Ctrl-C."""

    def __init__(self, out_fd, prefixes, encoding="utf-8"):
        import codecs
        import threading
        self.out_fd = out_fd
        try:
            self.encoding = codecs.lookup(encoding or "utf-8").name
        except LookupError:
            self.encoding = "ascii"
        self.prefixes = dict((name, tuple(p.encode(self.encoding, "backslashreplace")
                                          for p in pair)) for name, pair in prefixes.items())
        self.lock = threading.Lock()
        self.streams = {}
        self.added = []
        self.queued = []        # procclean's own output: (a stream, or self: stdout; data)
        self.closing = None
        self.done = False       # the thread has ended: write here and now
        self.wake = WakePipe()
        self.thread = threading.Thread(target=self._run, name="procclean-relay")
        self.thread.daemon = True

    def start(self):
        self.thread.start()

    def add(self, name, fd):
        """Relay a service's pipe (closed at its end): its _Stream."""
        stream = _Stream(fd, self.prefixes[name][0])
        with self.lock:
            self.added.append(stream)
        self.wake.wake()
        return stream

    def own_line(self, name, text):
        """One line of procclean's own about a service, marked apart (`name *`)."""
        self.write_text(self, self.prefixes[name][1]
                        + text.encode(self.encoding, "backslashreplace") + b"\n")

    def finish(self, timeout):
        """Relay until every pipe is closed or `timeout` passes, flush, stop."""
        with self.lock:
            self.closing = time.monotonic() + timeout
        self.wake.wake()
        self.thread.join(timeout + 2.0)
        with self.lock:
            self.done = True        # (a thread stuck on a paused stdout is left behind)
        if not self.thread.is_alive():
            self.wake.close()

    def write_text(self, stream, data):
        """procclean's messages (to a Reporter's stream, or to `self`: stdout), in order."""
        with self.lock:
            if not self.done:
                self.queued.append((stream, data))
                data = None
        if data is None:
            self.wake.wake()
        else:
            self._emit(stream, data)

    def _emit(self, stream, data):
        if stream is self:
            return self._write(data)
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
            except OSError:
                self.out_fd = None      # the reader went away: the logs still get it all
                return
            data = data[done:]

    def _run(self):
        import selectors
        selector = selectors.DefaultSelector()
        selector.register(self.wake.r, selectors.EVENT_READ)
        try:
            while self._round(selector):
                pass
            batch = []
            for stream in list(self.streams.values()):
                self._end(selector, stream, batch)
            self._write(b"".join(batch))
        finally:
            selector.close()
        with self.lock:
            self.done = True
            queued, self.queued = self.queued, []
        for item in queued:
            self._emit(*item)

    def _round(self, selector):
        """procclean's own lines, new pipes, one batch read; False once closing is done."""
        import selectors
        with self.lock:
            added, self.added = self.added, []
            queued, self.queued = self.queued, []
            closing = self.closing
        for item in queued:
            self._emit(*item)
        for stream in added:
            self.streams[stream.fd] = stream
            selector.register(stream.fd, selectors.EVENT_READ, stream)
        if closing is not None and (not self.streams or time.monotonic() >= closing):
            return False
        timeout = None if closing is None else max(0.001, closing - time.monotonic())
        batch = []
        for key, _ in selector.select(timeout):
            stream = key.data
            if stream is None:
                self.wake.drain()
            elif self._pump(stream, batch):
                self._end(selector, stream, batch)
        if batch:
            self._write(b"".join(batch))
        return True

    def _pump(self, stream, batch):
        """Read what the pipe holds (up to RELAY_READ); True at its end."""
        try:
            data = os.read(stream.fd, RELAY_READ)
        except BlockingIOError:
            return False
        except OSError:
            return True
        if not data:
            return True
        lines, stream.pending = relay_lines(stream.prefix, data, stream.pending, self.encoding)
        if lines:
            batch.append(lines)
        return False

    def _end(self, selector, stream, batch):
        """A pipe closed: its partial last line is shown."""
        selector.unregister(stream.fd)
        if stream.pending:
            batch.append(stream.prefix + relay_convert(stream.pending, self.encoding) + b"\n")
            stream.pending = b""
        with quietly():
            os.close(stream.fd)
        self.streams.pop(stream.fd, None)
        stream.closed = True


class _RelayedStream(object):
    """A Reporter's stdout or stderr during dev: written by the relay's thread."""

    def __init__(self, relay, stream):
        self.relay, self.stream = relay, stream
        self.encoding = getattr(stream, "encoding", None)

    def write(self, text):
        self.relay.write_text(self.stream, text)

    def flush(self):
        pass


def dev_env(ctx, service, colour):
    """Python output unbuffered (to a pipe now); FORCE_COLOR=1 when dev shows colour (the
    service sees a pipe) unless NO_COLOR or FORCE_COLOR is set."""
    env = launch_env(ctx, service)
    env.setdefault("PYTHONUNBUFFERED", "1")
    if colour and "NO_COLOR" not in env:
        env.setdefault("FORCE_COLOR", "1")
    return env


def dev_precheck(ctx, services):
    """Nothing of the services runs in the background (or --replace stops it), and every
    port is free (else its holder is named)."""
    found = read_targets(ctx, services)
    running = [(s, found.started(s)) for s in services if found.started(s)]
    # Left by a dev session killed with SIGKILL: taken over.  Not one that its pattern
    # alone finds (run by hand since): that one is not procclean's to take.
    left = [s for s, targets in running if dev_path(s) in stale_dev_files(
        ctx, s, found.table) and all(t.origin != "pattern" for t in targets)]
    refused = [(s, targets) for s, targets in running if s not in left]
    if refused and not ctx.replace:
        for service, targets in refused:
            dev = dev_session_of(ctx, service, found.table)
            ctx.out.warn("dev_running" if dev is None else "dev_running_dev",
                         svc=service.name, pids=pid_list(targets), dev=dev)
        return EXIT_FAILED
    for service in left:
        ctx.out.warn("dev_left_running", svc=service.name, pids=pid_list(
            found.started(service)), dev=ctx.system.read_pidfile(dev_path(service)).pid)
    # what stop takes (leftovers on the ports too)
    running = [s for s in services if found.running(s) and (ctx.replace or s in left)]
    if running:
        code = cmd_stop(ctx, running)
        if code != EXIT_OK:
            return code         # EXIT_FAILED, or stop was interrupted: 128 + N
        found = read_targets(ctx, services, warn=False)
    listeners = port_listeners(ctx, services)
    taken = [s for s in services
             if s.port is not None and port_taken(ctx, s, found, listeners)]
    return EXIT_FAILED if taken else EXIT_OK


def cmd_dev(ctx, services):
    """The stack in the foreground (DevSession), each output line after its name."""
    services = start_order(services)
    ctx.again = "dev"
    for service in services:
        if start_plan(ctx, service)[0] == EXIT_FAILED:
            return EXIT_FAILED
    if ctx.dry_run:
        return EXIT_OK
    with service_locks(ctx, services):      # one look-and-claim at a time, as start
        code = dev_precheck(ctx, services)
        if code != EXIT_OK:
            return code
    for service in services:
        if ctx.rotate:
            ctx.system.rotate_log(service.logfile)
    out = ctx.out
    try:
        out_fd = out.stdout.fileno()
    except (AttributeError, ValueError, OSError):
        out_fd = None
    relay = Relay(out_fd, dev_prefixes([s.name for s in services], out.colour),
                  getattr(out.stdout, "encoding", None))
    ctx.out = out.redirected(out.stdout and _RelayedStream(relay, out.stdout),
                             out.stderr and _RelayedStream(relay, out.stderr))
    try:
        return DevSession(ctx, services, relay).run()
    finally:
        ctx.out = out


def dev_path(service, infix=".dev"):
    """backend.dev.pid (a .gitignore's `*.pid` covers it): the procclean whose dev session
    runs `service`; with ".restart", the procclean that asks that session for a restart."""
    root, ext = os.path.splitext(service.pidfile)
    return root + infix + ext if ext else service.pidfile + infix


def dev_session_of(ctx, service, table):
    """The PID of another live procclean whose dev session runs `service`, or None (a
    session killed with SIGKILL leaves its file, and its PID may go to another one)."""
    system = ctx.system
    info = system.read_pidfile(dev_path(service))
    proc = table.get(info.pid) if info.pid else None
    live = proc is not None and not proc.zombie and is_procclean(proc) and \
        system.is_recorded(proc, system.read_start_record(info)) is not False
    return info.pid if live and info.pid != system.self_pid() else None


def stale_dev_files(ctx, service, table):
    """The dev files of `service` (dev_path's, a restart request) when no dev session
    runs it (this procclean's own included): a session killed with SIGKILL left them."""
    system = ctx.system
    if system.read_pidfile(dev_path(service)).pid == system.self_pid() \
            or dev_session_of(ctx, service, table) is not None:
        return []
    return [path for path in (dev_path(service), dev_path(service, ".restart"))
            if system.exists(path)]


def drop_dev_files(ctx, paths):
    """Remove dev files (reported) and their start records."""
    remove_files(ctx, paths)
    if not ctx.dry_run:
        for path in paths:
            ctx.system.remove_file(path + START_SUFFIX)


class _DevEntry(object):
    """One service of a dev session: its child and where it stands."""

    def __init__(self, service):
        self.service, self.child, self.launch, self.health = service, None, None, None
        self.owned = False          # dev_path names this session
        self.state = "waiting"      # waiting, running, exited, backoff, done
        self.ready = False          # its port listens and its health URL answers
        self.since = None           # when it (last) started
        self.status = None          # its last exit status
        self.check_until = None     # exited: until when a stop from outside may explain it
        self.output = None          # its output's _Stream in the relay
        self.restart_at = self.waiting_since = None
        self.backoff = None         # supervised: its Backoff, as supervise


def terminal_hung_up(fd):
    """Whether the terminal on `fd` hung up.  Closing it signals only its session's
    leader: under `tmux new 'make dev'` that is make, which does not pass the SIGHUP on."""
    import select
    if not hasattr(select, "poll"):
        return False
    poller = select.poll()
    poller.register(fd, select.POLLHUP)
    try:
        return any(events & select.POLLHUP for _, events in poller.poll(0))
    except (OSError, ValueError):
        return False


def job_taken_back(fd, group):
    """Whether dev's foreground job lost its leader and the shell took the terminal back
    (`kill -9` of `make dev`): no Ctrl-C would reach dev again.  (A job sent to the
    background with Ctrl-Z and `bg` keeps its leader: dev runs on.)"""
    if group is None or group == os.getpid():
        return False
    with quietly() as tried:
        os.kill(group, 0)       # no signal: is the leader there (a group keeps its PID)?
        return False
    if tried.outcome != GONE:
        return False
    with quietly():
        return os.tcgetpgrp(fd) != group
    return False


def _is_terminal(fd):
    """Whether `fd` is a terminal, one that has hung up included (isatty() is False then,
    yet dev must see the hang-up or it would run the stack for no one)."""
    import stat
    with quietly():
        return os.isatty(fd) or stat.S_ISCHR(os.fstat(fd).st_mode) and terminal_hung_up(fd)
    return False


class DevSession(object):
    """Starts the services in dependency order, shows and logs their output, restarts
    them, and stops all on Ctrl-C, SIGTERM, SIGHUP or when one exits."""

    def __init__(self, ctx, services, relay):
        self.ctx, self.system, self.relay = ctx, ctx.system, relay
        self.entries = [_DevEntry(s) for s in services]
        self.by_name = dict((e.service.name, e) for e in self.entries)
        self.signum = None          # the first stop signal
        self.failure = None         # (entry, message key, values): why it ends with 1
        self.tty = None             # the terminal dev runs in, watched for its hang-up
        self.make = None            # dev's parent, when make: watched for its end
        self.below = None           # ...or make's child, on the way up from dev
        self.orphaned = False       # ...seen gone once
        self.group = None           # its job's process group, if the terminal's foreground

    def say_own(self, entry, key, **values):
        self.relay.own_line(entry.service.name, self.ctx.out.text(key, **values))

    def run(self):
        import selectors
        import signal
        self.wake = WakePipe()
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.wake.r, selectors.EVENT_READ)
        handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD)

        def on_signal(signum, frame):
            if signum == signal.SIGCHLD:
                return              # only wakes the loop (through the wakeup fd)
            if self.signum is None:
                self.signum = signum
            elif signum == signal.SIGINT:
                # A second Ctrl-C: SIGKILL what is left, now.  Not a second SIGHUP: a
                # closing terminal sends one, and its shell another.
                self.ctx.hurry = True

        previous = dict((sig, signal.signal(sig, on_signal)) for sig in handled)
        # nohup (SIGHUP ignored) asks to outlive the terminal; else its hang-up stops dev
        self.tty = None if previous[signal.SIGHUP] == signal.SIG_IGN else \
            next((fd for fd in (0, 1, 2) if _is_terminal(fd)), None)
        if self.tty is not None:
            with quietly():     # its job's group, if the terminal's foreground (not `&`)
                if os.tcgetpgrp(self.tty) == os.getpgrp():
                    self.group = os.getpgrp()

        table = self.system.process_table()
        parent = table.get(self.system.parent_pid())
        for _ in range(3):
            # Between make and dev: a shell (a recipe of more than one command), a
            # runner (uv run, poetry run), which outlive make.
            if parent is None or program_name(parent.command) in MAKES:
                break
            self.below, parent = parent.pid, table.get(parent.ppid)
        self.make = parent.pid if parent and program_name(parent.command) in MAKES else None
        previous_fd = signal.set_wakeup_fd(self.wake.w)
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
            for entry in self.entries:
                self.disown(entry)
            signal.set_wakeup_fd(previous_fd)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.selector.close()
            self.wake.close()

    def disown(self, entry):
        """The service is no longer this session's: other terminals act on it alone."""
        if entry.owned:
            entry.owned = False
            for path in (dev_path(entry.service), dev_path(entry.service, ".restart")):
                drop_pidfile(self.system, path)

    def loop(self):
        while self.signum is None and self.failure is None:
            now = self.system.clock()
            self.take_requests()
            self.start_ready(now)
            if self.failure is None:
                self.check_children(now)
            if self.signum is None:
                self.watch_terminal()
            if self.signum is not None or self.failure is not None:
                return
            if all(e.state == "done" for e in self.entries):
                return              # every service was stopped from another terminal
            busy = any(e.state in ("waiting", "exited", "backoff") for e in self.entries)
            # A signal (a child's exit among them) ends the wait at once.
            if self.selector.select(DEV_POLL if busy else DEV_IDLE):
                self.wake.drain()

    def watch_terminal(self):
        """Stop as if a SIGHUP reached dev when the terminal hung up, its shell took it
        back (make killed), or make, dev's parent, is gone where there is no terminal (an
        IDE's stop button: a SIGINT make does not pass on, then SIGKILL)."""
        import signal
        if self.tty is not None and terminal_hung_up(self.tty):
            self.signum = signal.SIGHUP
        elif self.tty is not None and job_taken_back(self.tty, self.group):
            self.ctx.out.warn("dev_job_gone", pid=self.group)
            self.signum = signal.SIGHUP
        elif self.make is not None and self.make_gone():
            if self.tty is None or self.orphaned:   # (a shell may yet take the terminal)
                self.ctx.out.warn("dev_make_gone", pid=self.make)
                self.signum = signal.SIGHUP
            self.orphaned = True

    def make_gone(self):
        """Whether make is no longer dev's parent (or that of a shell or runner between)."""
        if self.below is None:
            return self.system.parent_pid() != self.make
        system = self.system
        below = system.proc_stat(self.below) if system.has_proc() else \
            system.process_table().get(self.below)
        return below is None or below.ppid != self.make

    def take_requests(self):
        """A restart asked from another terminal (cmd_restart) is done here, its output
        still in this stream."""
        for entry in self.entries:
            path = dev_path(entry.service, ".restart")
            if not entry.owned or not self.system.exists(path):
                continue
            asker = self.system.read_pidfile(path).pid
            drop_pidfile(self.system, path)
            self.say_own(entry, "dev_restarting", pid=asker or "?")
            if entry.state == "running":
                self.stop_for_restart(entry)
            self.spawn(entry)

    def stop_for_restart(self, entry):
        """Stop a service's tree for a restart, said as stop says it: each process, then
        its summary (`backend: 2 process(es) stopped, 1 of them with SIGKILL after 2 s`)."""
        targets = stop_tree(self.ctx, entry.service, entry.child, entry.child.pid)
        report_targets(self.ctx, targets)
        report_summary(self.ctx, entry.service, targets, grace_used=True)

    def start_ready(self, now):
        """Start each service whose turn it is (those it starts after are ready)."""
        for entry in self.entries:
            if entry.state == "backoff" and now >= entry.restart_at:
                self.spawn(entry)
            if entry.state != "waiting" or self.failure is not None:
                continue
            deps = [self.by_name[n] for n in entry.service.after if n in self.by_name]
            if entry.waiting_since is None:
                entry.waiting_since = now
                if deps:
                    self.say_own(entry, "dev_waiting",
                                 deps=", ".join(d.service.name for d in deps))
            late = [d for d in deps if not self.is_ready(d)]
            if self.failure is not None:
                self.say_own(entry, "dev_not_started", dep=self.failure[0].service.name)
            elif not late:
                self.spawn(entry)
            elif now - entry.waiting_since >= self.ctx.timeout:
                self.failure = (entry, "after_timeout", dict(
                    svc=entry.service.name, dep=late[0].service.name,
                    timeout=format_seconds(self.ctx.timeout)))

    def is_ready(self, entry):
        """Whether the services after `entry` may start (as start --wait watches): a
        failure seen (its log, an exited worker; not an exit) ends the session."""
        if entry.ready or entry.state != "running":
            return entry.ready
        outcome = entry.launch.poll()
        if outcome is None or outcome[0] == "start_failed":
            return False
        if outcome[0] != "ok":
            service = entry.service
            self.failure = (entry, outcome[0], dict(outcome[1], svc=service.name,
                                                    log=service.logfile))
            return False
        self.now_ready(entry)
        return True

    def now_ready(self, entry):
        entry.ready = True
        if entry.service.port is not None:
            self.say_own(entry, "dev_listening", port=entry.service.port)

    def spawn(self, entry):
        ctx, service = self.ctx, entry.service
        cwd, argv, shown = launch_plan(service)
        position = self.system.log_position(service.logfile)
        env = dev_env(ctx, service, ctx.out.colour)
        child, fd, problem = spawn_tracked(ctx, service, cwd, argv, env, piped=True)
        if child is None:
            self.failure = (entry, "start_error", dict(svc=service.name, error=problem))
            entry.state = "done"
            return
        entry.child, entry.state, entry.since, entry.ready = child, "running", \
            self.system.clock(), False
        entry.launch = StartWatch(ctx, service, child, shown, position, ready=True)
        entry.health = HealthWatch(ctx, service, probe=False)   # (a probe is a log line)
        if not entry.owned:
            # Unowned, other terminals cannot hand it a restart; the rest works.
            entry.owned = write_pid(ctx, dev_path(service), self.system.self_pid()) is None
        self.system.append_log(service.logfile, "dev: started %s PID %d: %s (in %s)"
                               % (service.name, child.pid, shown, cwd), create=True)
        with quietly():     # no log to write: the relay reads the service itself
            fd = self.system.keep_log(fd, self.system.open_log(service.logfile))
        self.say_own(entry, "dev_started", pid=child.pid, cmd=shown)
        entry.output = self.relay.add(service.name, fd)

    def check_children(self, now):
        for entry in self.entries:
            if entry.state == "running":
                status = entry.child.poll()
                if status is None:
                    status = self.check_health(entry, now)
                if status is None:
                    continue
                entry.status, entry.state = status, "exited"
                entry.check_until = now + (self.ctx.grace + KILL_WAIT + 1.0
                                           if status in STOP_STATUSES else 0.5)
            if entry.state == "exited":
                # a `stop` from another terminal, not a crash, removed the pidfile
                if self.system.read_pidfile(entry.service.pidfile).pid != entry.child.pid:
                    entry.state = "done"
                    self.disown(entry)
                    self.say_own(entry, "dev_outside")
                elif now >= entry.check_until and (entry.output.closed or
                                                   now >= entry.check_until + 1.0):
                    # (its last lines, a traceback, shown and logged before its end)
                    self.exited(entry, now)
                if self.failure is not None:
                    return

    def check_health(self, entry, now):
        """A service no longer healthy is said, and again once it is healthy (uvicorn
        --reload's next worker); supervised, it is stopped for a restart (UNHEALTHY_EXIT,
        else None)."""
        was = entry.health.trouble
        bad = entry.health.look(entry.child.pid, now)
        trouble = entry.health.trouble
        if entry.health.healthy and not entry.ready:
            self.now_ready(entry)
        elif trouble is None and was is not None and entry.ready:
            self.say_own(entry, "dev_listening", port=entry.service.port)   # well again
        if trouble is not None and trouble != was and (
                entry.health.healthy or trouble[0] == "health_worker_exited"):
            self.say_own(entry, trouble[0], **trouble[1])
        if bad is None or not entry.service.supervise:
            return None
        self.say_own(entry, "dev_unhealthy", after=format_seconds(bad))
        self.stop_for_restart(entry)
        return UNHEALTHY_EXIT

    def exited(self, entry, now):
        """The service ended, not by procclean: restart it (supervise = yes) or end the
        session.  Ended by a signal (kill-port, kill, the OOM killer), it is "killed"."""
        service, status = entry.service, entry.status
        key, short = ("dev_killed", "dev_killed_short") if status != 0 and \
            status in STOP_STATUSES else ("dev_exited", "dev_exited_short")
        if status == UNHEALTHY_EXIT:
            short = "exit_unhealthy"        # dev's own restart: it did not exit by itself
        self.system.append_log(service.logfile, "dev: %s PID %d %s" % (
            service.name, entry.child.pid, MESSAGES["en"][short].format(
                code=describe_exit(status))))
        code = describe_exit(status, self.ctx.out.lang)
        if service.supervise and status != 0:
            entry.backoff = entry.backoff or Backoff(self.ctx.max_restarts)
            delay = entry.backoff.next(now, entry.since)
            n = len(entry.backoff.restarts)
            if delay is not None:
                self.say_own(entry, "dev_restart", how=self.ctx.out.text(short, code=code),
                             delay=format_seconds(delay), n=n)
                entry.state, entry.restart_at = "backoff", now + delay
                return
            self.failure = (entry, "gave_up", dict(svc=service.name, n=n, code=code))
        else:
            self.failure = (entry, key, dict(svc=service.name, code=code,
                                             log=service.logfile))
        entry.state = "done"
        self.say_own(entry, short, code=code)

    def finish(self):
        """Stop every tree of the session, show why: the exit code."""
        import signal
        ctx = self.ctx
        if self.failure is not None:
            if any(e.child is not None for e in self.entries):    # else nothing to stop
                ctx.out.say("dev_stopping")
        elif self.signum is not None:
            # After a hang-up no one is left to press Ctrl-C: no hint of it.
            ctx.out.say("dev_stopping_hup" if self.signum == signal.SIGHUP
                        else "dev_stopping_sig", sig=signal.Signals(self.signum).name)
        if self.signum is not None or self.failure is not None:
            cmd_stop(ctx, [e.service for e in self.entries if e.child is not None])
        for entry in self.entries:
            if entry.child is not None:
                reap(entry.child)
        self.relay.finish(1.0)
        if self.failure is not None:
            entry, key, values = self.failure
            ctx.out.warn(key, **values)
            if key in DEV_TAIL_KEYS:
                say_log_tail(ctx, entry.service, ctx.lines)
            if key == "dev_exited" and entry.status == 0:
                ctx.out.warn("dev_daemonized", svc=entry.service.name)
            return EXIT_FAILED
        if self.signum is not None:
            return 128 + self.signum
        ctx.out.say("dev_outside_all")
        return EXIT_OK


# ---------------------------------------------------------------------------
# Commands logs and kill-port
# ---------------------------------------------------------------------------

# A time at the start of a log line: procclean's own `[procclean 2026-12-06 14:05:01.123]`,
# Python logging's `2026-12-06 14:05:01,123`, ISO 8601 with an optional zone; or only a time
# of day, as Vite prints it (`2:05:01 PM [vite] ...`), dated by the stamps around it.
_LOG_DATETIME_RE = (
    r"^\W{0,2}(?:procclean )?(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,]\d+)?"
    r"\s?(Z|[+-]\d\d:?\d\d)?")
_LOG_CLOCK_RE = r"^\W{0,2}(\d{1,2}):(\d\d):(\d\d)(?:\s?([AP]M))?\b"
_SINCE_RE = (r"^(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?"
             r"(?:(\d+(?:\.\d+)?)s?)?$")


def parse_since(text, now):
    """--since as an epoch time: a duration back from `now` (`1h30m`, bare seconds), a
    local time today (`14:05`) or a date and time (ISO 8601, a zone optional)."""
    text = (text or "").strip()
    match = re.match(_SINCE_RE, text)
    if text and match and any(match.groups()):
        days, hours, minutes, seconds = (float(g or 0) for g in match.groups())
        return now - (((days * 24 + hours) * 60 + minutes) * 60 + seconds)
    if re.match(r"^\d{1,2}:\d\d(?::\d\d)?$", text):
        day = time.strftime("%Y-%m-%d", time.localtime(now))
        text = "%s %s" % (day, text if text.count(":") == 2 else text + ":00")
    elif re.match(r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d$", text):
        text += ":00"
    elif re.match(r"^\d{4}-\d\d-\d\d$", text):
        text += " 00:00:00"
    match = re.match(_LOG_DATETIME_RE, text)
    if not match or match.end() != len(text):
        raise ProcCleanError("err_since", value=text)
    return _stamp_epoch([int(g) for g in match.groups()[:6]], match.group(7))


def _stamp_epoch(fields, zone):
    """The epoch time of (year, month, day, hour, minute, second), local unless `zone`."""
    if zone is None:
        return time.mktime(tuple(fields) + (0, 0, -1))
    import calendar
    epoch = calendar.timegm(tuple(fields) + (0, 0, 0))
    if zone != "Z":
        sign = -1 if zone[0] == "+" else 1
        digits = zone[1:].replace(":", "")
        epoch += sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return epoch


def log_line_times(lines, mtime):
    """For each line, the latest time it can have been written: its own stamp, else the
    next stamp below it, else `mtime`.  So --since may show a few lines with no stamp
    (uvicorn's access log) too many, never too few."""
    own, day = [], None
    for line in lines:
        stamp = re.match(_LOG_DATETIME_RE, line)
        clock = None if stamp else re.match(_LOG_CLOCK_RE, line)
        if stamp:
            fields = [int(g) for g in stamp.groups()[:6]]
            day = fields[:3]
            own.append(_stamp_epoch(fields, stamp.group(7)))
        elif clock and day is not None:
            hour = int(clock.group(1)) % 12 + (12 if clock.group(4) == "PM" else 0) \
                if clock.group(4) else int(clock.group(1))
            own.append(_stamp_epoch(day + [hour, int(clock.group(2)), int(clock.group(3))],
                                    None))
        else:
            own.append(None)
    latest, bound = [], mtime
    for when in reversed(own):
        bound = when if when is not None else bound
        latest.append(bound)
    return latest[::-1]


def log_lines(ctx, service):
    """The lines `logs` shows: the last --lines; with --since/--grep, those of the log and
    .log.1 that qualify (the last --lines with -n).  OSError for no regular file."""
    if ctx.log_filter is None:
        return ctx.system.read_tail(service.logfile, ctx.lines)
    since, grep = ctx.log_filter
    lines = []
    for path in (service.logfile + ".1", service.logfile):
        try:
            text_lines, mtime = ctx.system.read_log(path)
        except OSError as exc:
            if exc.errno == errno.ENOENT and path != service.logfile:
                continue
            raise
        if since is not None:
            times = log_line_times(text_lines, mtime)
            text_lines = [line for line, when in zip(text_lines, times) if when >= since]
        lines += [line for line in text_lines if grep is None or grep.search(line)]
    return lines[-ctx.lines:] if ctx.lines_given else lines


def cmd_logs(ctx, services):
    """Print the last lines of each service's log; with --follow, keep printing (several
    services: merged, each line with its service's name in front, as dev shows them)."""
    merged = ctx.follow and len(services) > 1
    prefixes = dev_prefixes([s.name for s in services], ctx.out.colour) if merged else {}
    if ctx.follow:
        ctx.out.stream()        # --json: a line of JSON as each line comes
    code = EXIT_OK
    positions = {}
    for service in services:
        if not ctx.system.exists(service.logfile):
            ctx.out.say("no_log", svc=service.name, path=service.logfile)
            continue
        if len(services) > 1 and not merged:
            ctx.out.line("==> %s <==" % service.logfile)
        # -f goes on from where the log ended before its tail was read: nothing is lost
        positions[service.name] = ctx.system.log_position(service.logfile)
        try:
            lines = log_lines(ctx, service)
        except OSError as exc:
            # A folder, a FIFO (which would block), a device: one line, not a hang.
            ctx.out.warn("log_unreadable", path=service.logfile, error=error_text(exc))
            code = EXIT_FAILED
            continue
        for line in lines:
            say_log_line(ctx, service, line, prefixes)
    if not ctx.follow or code != EXIT_OK:
        return code
    return _follow_logs(ctx, services, prefixes, positions)


def say_log_line(ctx, service, line, prefixes):
    """A line of a log (after its service's prefix, if any); with --json, a record."""
    ctx.out.line(prefixes.get(service.name, ("",))[0] + line)
    ctx.out.add("lines", {"service": service.name, "line": line})


def _follow_logs(ctx, services, prefixes, positions):
    """logs -f: print what is appended after `positions` until Ctrl-C, a closed stdout,
    or a log turning into something that is not a regular file (one line, exit 1)."""
    followed = [[s, positions.get(s.name) or ctx.system.log_position(s.logfile), b""]
                for s in services]
    grep = ctx.log_filter and ctx.log_filter[1]
    try:
        while id(ctx.out.stdout) not in ctx.out.broken:
            ctx.system.sleep(0.25)
            for entry in followed:
                service, position, pending = entry
                try:
                    data, offset, identity = ctx.system.read_new(service.logfile, *position)
                except OSError as exc:
                    raise ProcCleanError(ctx.out.text(
                        "follow_failed", path=service.logfile, error=error_text(exc)),
                        EXIT_FAILED)
                entry[1] = (offset, identity)
                lines = (pending + data).split(b"\n")
                entry[2] = lines.pop()
                for line in map(printable, lines):
                    if grep is None or grep.search(line):
                        say_log_line(ctx, service, line, prefixes)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED     # as tail -f: no error line, the end by SIGINT
    return EXIT_OK


def cmd_kill_port(ctx, ports):
    """Stop the processes LISTENING on `ports` (never their clients), whole trees."""
    if not ports:
        raise ProcCleanError("err_kill_port_none")
    numbers = list(dict.fromkeys(parse_port(text) for text in ports))     # in order, once each
    system = ctx.system
    system.read_tags = False    # a port's holders are taken by the port, never by a tag
    services = dict((port, Service("port %d" % port, "", "", "", port, "", "."))
                    for port in numbers)
    # Listeners first: a listener that started a moment ago is then in the table too;
    # a holder that started after the listing has a reused PID, and is left alone.
    listed_at = system.wall_time()
    listeners = system.listeners(numbers)
    table = system.process_table()
    protected = protected_pids(table, system.self_pid(), system.parent_pid())
    roots, problems = port_roots(system, services, listeners, listed_at, table, protected,
                                 ctx.viewers)
    for key, port, holder in problems:
        warn_port_left(ctx, services[port], key, holder, table)
    for port in numbers:
        if not any(l.port == port for l in listeners):
            ctx.out.say("port_nothing", port=port)

    def find(table, protected, fresh):
        when = system.wall_time()
        return port_roots(system, services, system.listeners(numbers), when, table,
                          protected, ctx.viewers)[0]

    with interrupts_caught(ctx.note_interrupt):     # as stop: what may still run is said
        targets, _ = stop_processes(ctx, plan_targets(table, roots, protected), table,
                                    find, force=ctx.force)
        report_targets(ctx, targets)
    stopped = [t for t in targets if t.outcome not in FAILED_OUTCOMES]
    for port in numbers:
        done = [t for t in stopped if t.service is services[port]]
        if done and not ctx.dry_run:
            ctx.out.say("port_freed", port=port, n=len(done))
    # A service's process stopped by its port, or ended with the listener it ran (npm run
    # dev, its vite stopped): its pidfile goes, as with stop (a dev session then says so).
    gone = set(t.pid for t in stopped)
    owners = dict((s.pidfile, table.get(system.read_pidfile(s.pidfile).pid))
                  for s in ctx.config.services.values() if gone)
    kids = children_map(table)
    ran = [Target(p, None, "pidfile") for p in owners.values() if p and p.pid not in gone
           and gone.intersection(descendants(kids, p.pid))]
    left = ran if ctx.dry_run else wait_gone(system, ran, KILL_WAIT)
    gone.update(t.pid for t in ran if t not in left)
    drop_dev_files(ctx, [f for f, p in owners.items() if p and p.pid in gone])
    if ctx.interrupted:
        return 128 + ctx.interrupted
    return EXIT_FAILED if problems or len(stopped) < len(targets) else EXIT_OK


def warn_port_left(ctx, service, key, holder, table):
    """kill-port's word on a holder it leaves (port_roots' problems): unseen (named by
    its owner where known), procclean's own, an editor's or browser's, a container's
    (with the command that frees it)."""
    user = listener_user(ctx.system, holder, table)
    proc = table.get(holder.pid)
    values = dict(port=service.port, pid=holder.pid, user=user or "?",
                  holder=unseen_holder(ctx.out, user),
                  cmd=printable(proc.command) if proc else "?")
    free = None
    if key == "port_container":
        values["what"], free = holder_words(ctx, service, proc, "container", Hints())
    ctx.out.warn(key, **values)
    if free:
        ctx.out.warn("port_still_free", free=free)


def port_roots(system, services, listeners, listed_at, table, protected, viewers):
    """(roots: the processes holding the ports of `services`, [(message key, port,
    Listener)] of holders unseen, procclean's own, the user's editor or browser, a
    container's)."""
    roots, problems = [], []
    for port, service in sorted(services.items()):
        for holder in port_holders(listeners, port, table):
            proc = table.get(holder.pid) if holder.pid is not None else None
            if proc is None or system.started_by(proc, listed_at) is False:
                problems.append(("port_unseen", port, holder))
            elif holder.pid in protected:
                problems.append(("port_protected", port, holder))
            elif port_exempt(proc, viewers) is not None:
                problems.append(("port_container" if is_container_proxy(proc) else
                                 "port_kept_app", port, holder))
            else:
                roots.append((proc, service, "port"))
    return roots, problems

# ---------------------------------------------------------------------------
# Command doctor: the seed's troubleshooting guide
# ---------------------------------------------------------------------------

class Finding(_Record):
    """Something that needs action, as message keys: what (key, values), the fix (key,
    values), and what `doctor --fix` may do: ("remove", path), ("stop", service, procs)."""

    __slots__ = ("key", "values", "fix", "action")
    DEFAULTS = {"action": None}

    def text(self, out):
        return out.text(self.key, **self.values).lstrip()

    def fix_text(self, out):
        return out.text(self.fix[0], **self.fix[1])

    def record(self, out):
        """As --json shows it (`command`: the fix when it is one to run)."""
        return {"finding": self.key, "text": self.text(out), "values": self.values,
                "fix": self.fix_text(out), "command": self.fix[1].get("cmd"),
                "fixable": self.action is not None}


def _run_fix(command):
    return ("fix_run", {"cmd": command})


def run_program(argv, cwd, stdin=b"", env=None, timeout=60):
    """(exit code, stdout, stderr) of a program, its output decoded; (None, "", the
    reason) when it cannot be run or outlasts `timeout`."""
    import subprocess
    try:
        result = subprocess.run(argv, cwd=cwd, input=stdin, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, "", str(exc)
    return result.returncode, decode_bytes(result.stdout), decode_bytes(result.stderr)


def describe_tool(name):
    """`path`, `path (BusyBox)` or `missing`, for the tools procclean falls back from."""
    path = _which(name)
    if path and os.path.basename(os.path.realpath(path)).startswith("busybox"):
        return path + " (BusyBox)"
    return path or "missing"


def check_command(service, lang):
    """The start folder and program exist, and a Python command's modules import."""
    cwd = resolve_cwd(service.cwd)
    where = {"svc": service.name, "file": CONFIG_FILE}
    if not os.path.isdir(cwd):
        return [Finding("d_no_folder", {"svc": service.name, "cwd": cwd}, ("fix_cwd", where))]
    if not service.command.strip():
        return []
    try:
        argv = command_argv(service.command, cwd, service.port)
    except ProcCleanError as exc:
        return [Finding("d_config", {"error": "%s: %s" % (service.name, exc.text(lang))},
                        ("fix_command", where))]
    if argv[:2] == ["/bin/sh", "-c"]:
        return []
    program = argv[0]
    if not _which(program) and not os.path.isfile(os.path.join(cwd, program)):
        return [Finding("d_no_program", {"svc": service.name, "program": program},
                        ("fix_program", dict(where, program=program)))]
    return check_imports(service, cwd, argv)


# Asks an interpreter which of the modules named after -c it cannot find, without
# importing them (find_spec runs no module code).  Python 3.4+.
_FIND_MODULES = ("import sys\nfrom importlib.util import find_spec\nmissing = []\n"
                 "for name in sys.argv[1:]:\n    try:\n        found = find_spec(name)\n"
                 "    except Exception:\n        found = True\n"
                 "    if found is None:\n        missing.append(name)\nprint(' '.join(missing))\n")


def modules_needed(args, cwd):
    """Top-level modules a Python command needs: the -m module, and those its entry file
    imports at column 0 (an import inside try/if is optional)."""
    needed = []
    entry = args[0] if args and args[0].endswith(".py") else None
    if args[:1] == ["-m"] and len(args) > 1:
        needed.append(args[1].split(".")[0])
        app = next((a for a in args[2:] if re.match(r"^[\w.]+:[\w.]+$", a)), None)
        entry = app.split(":")[0].replace(".", os.sep) + ".py" if app else None
    text = _text(cwd, entry) if entry else ""
    needed.extend(name.split(".")[0] for name in python_imports(text))
    return sorted(set(needed), key=needed.index)


def _python_as_started(program, cwd):
    """The `python` of a start command as start runs it: with another project's venv
    active, start's PATH has the project's venv in its place (python_env)."""
    import shutil
    env = dict(os.environ)
    if os.sep in program or not env.get("VIRTUAL_ENV"):
        return program
    python_env(env, cwd)
    return shutil.which(program, path=env.get("PATH", "")) or program


def check_imports(service, cwd, argv):
    """Findings of the modules a Python command needs that its interpreter lacks."""
    if "{python}" in service.command:
        python, how, values = python_toolchain(cwd)
    elif re.match(r"^python[\d.]*$", os.path.basename(argv[0])):
        python, how, values = [_python_as_started(argv[0], cwd)], None, {}
    else:
        return []
    modules = modules_needed(argv[len(python):], cwd)
    if not modules:
        return []
    about = {"svc": service.name, "python": " ".join(python)}
    if how == "tc_lock":
        # `uv run` syncs (creates .venv, rewrites uv.lock); `poetry run` and `pipenv
        # run` create a virtualenv where there is none: a diagnosis runs none of them.
        import shlex
        check = "%s -c %s" % (" ".join(python), shlex.quote("import " + ", ".join(modules)))
        return [Finding("d_imports_unchecked", dict(about, modules=", ".join(modules),
                                                    tool=values["tool"]),
                        _run_fix(check))]
    # -B: the interpreter's start-up (a venv's .pth hooks) writes no bytecode cache.
    code, found, error = run_program(python + ["-B", "-c", _FIND_MODULES] + modules, cwd)
    if code is None:
        return [Finding("d_python_fails", dict(about, error=error), ("fix_program", {
            "svc": service.name, "file": CONFIG_FILE, "program": python[0]}))]
    missing = found.split() if code == 0 else []
    if not missing:
        return []
    return [Finding("d_missing_modules", dict(about, modules=", ".join(missing)),
                    _run_fix(install_command(python, how, values, missing, cwd)))]


def install_command(python, how, values, missing, cwd):
    """The command that gives `python` the missing modules: the project's tool, its
    requirements file, or a new .venv (procclean then uses it) for procclean's own."""
    import shlex
    if how == "tc_lock":
        verb = {"uv": "uv add", "poetry": "poetry add", "pipenv": "pipenv install",
                "pdm": "pdm add"}
        return "%s %s" % (verb[values["tool"]], " ".join(missing))
    requirements = next((os.path.normpath(os.path.join(base, "requirements.txt"))
                         for base in (cwd, ".")
                         if os.path.isfile(os.path.join(base, "requirements.txt"))), None)
    what = "-r " + shlex.quote(requirements) if requirements else " ".join(missing)
    if how in ("tc_self", "tc_lock_no_tool", "tc_env_outside"):
        return "python3 -m venv .venv && .venv/bin/python -m pip install %s" % what
    return "%s -m pip install %s" % (" ".join(shlex.quote(p) for p in python), what)


# pidfile verdict -> the finding about it; each fixed by a clean (the seed's `make clean`).
PIDFILE_FINDINGS = {"invalid": "d_invalid", "untrusted": "d_untrusted", "dead": "d_stale",
                    "reused": "d_reused", "protected": "d_protected",
                    "unknown-start": "d_unknown_start", "foreign": "d_foreign"}
# Verdicts for a pidfile naming a process that runs.
PIDFILE_NAMED = ("trusted", "reused", "unknown-start", "foreign")
# Verdicts after which what still matches is not accounted for by a live service.
DEAD_VERDICTS = ("invalid", "dead", "reused", "foreign")


def check_pidfile(service, info, verdict, proc, hints):
    key = PIDFILE_FINDINGS.get(verdict)
    if key is None:
        return []
    values = {"path": info.path, "pid": info.pid,
              "cmd": printable(proc.command) if proc is not None else "?",
              "content": printable(repr(info.raw)[1:]) if info.raw is not None else ""}
    # A PID whose start cannot be read may be the service itself: left for a person.
    action = None if verdict == "unknown-start" else ("remove", service.pidfile)
    return [Finding(key, values, _run_fix(hints.command("clean", service.name)), action)]


def check_matches(service, candidates, protected, own, verdict, hints):
    """Findings of the service's processes in this project (`candidates`) outside `own`,
    the trusted pidfile's tree: one per tree of matches."""
    matched = [p for p in candidates
               if p.pid not in protected and p.pid not in own and not p.zombie]
    matched_pids = set(p.pid for p in matched)
    roots = [p for p in matched if p.ppid not in matched_pids]
    stop = _run_fix(hints.command("stop", service.name))
    if verdict in DEAD_VERDICTS:
        # The service died (or its pidfile is garbage): under init, it outlived its parent.
        return [Finding("d_orphan_match", {"svc": service.name, "pid": proc.pid,
                                           "cmd": printable(proc.command)},
                        stop, ("stop", service, [proc])) if proc.ppid in (0, 1) else
                Finding("d_leftover", {"svc": service.name, "n": 1, "pids": proc.pid},
                        stop, ("stop", service, [proc]))
                for proc in roots]
    if verdict == "trusted" and roots:
        # The service runs, and so do matches outside its tree: stop only those.
        pids = [str(p.pid) for p in roots]
        return [Finding("d_leftover", {"svc": service.name, "n": len(pids),
                                       "pids": ", ".join(pids)},
                        _run_fix("kill " + " ".join(pids)), ("stop", service, roots))]
    return []


def check_port(ctx, service, found, dead, hints):
    """Others on the service's port, named as status names them, with the command that
    frees it (checked first where it signals) or another port; never stopped by --fix."""
    findings = []
    holders = port_facts(ctx, service, found.listeners, found.table, found.running(service),
                         hints)
    pids = set(h.pid for h in holders)
    for holder in holders:
        if holder.kind in ("own", "unseen"):
            continue
        proc = found.table[holder.pid]
        if proc.ppid in pids:
            continue    # a worker sharing its parent's socket (uvicorn's, gunicorn's)
        values = {"svc": service.name, "port": service.port, "pid": holder.pid,
                  "cmd": printable(proc.command)}
        if holder.kind == "viewer":
            # kill-port leaves an editor or a browser alone: no fix offers it.
            findings.append(Finding("d_port_app", dict(values, user=proc.user),
                                    ("fix_port_app", {})))
            continue
        follows = port_follows(service)
        said = {"pid": holder.pid, "svc": service.name, "cmd": holder.free,
                "other": hints.port_setting(service), "port": service.port}
        if holder.kind in ("stranger", "leftover"):
            fix = ("d_stranger_fix" if follows else "d_stranger_fix_free", said)
            folder = ctx.system.process_cwds([holder.pid]).get(holder.pid)
            other = other_checkout(ctx, folder) if holder.kind == "stranger" else None
            if other is not None:   # stopped there, or ports of its own (as start says)
                key = "d_checkout_fix" if ctx.config.port_offset is None else "d_checkout_stop"
                fix = (key, dict(said, folder=printable(other), cmd=None))
        elif holder.free:
            fix = ("d_exempt_fix", said) if follows else _run_fix(holder.free)
        else:
            fix = ("d_move_fix" if follows else "d_by_hand", said)
        if dead and proc.ppid in (0, 1) and holder.kind == "leftover":
            findings.append(Finding("d_orphan_port", values, fix))
        elif holder.kind == "stranger":
            findings.append(Finding("d_stranger", values, fix))
        else:
            findings.append(Finding("d_port_holder", dict(values, what=holder.what), fix))
    return findings


def check_makefile(hints):
    """A PROCCLEAN in the project's Makefile that does not run this file (every make
    target would fail: the root's line copied where procclean is in tools/)."""
    name = next((n for n in MAKEFILE_NAMES if os.path.isfile(n)), None)
    values = re.findall(_PROCCLEAN_VAR_RE, _read_text(name) or "", re.M) if name else []
    if not values or runs_this_file(values[-1][1].strip()):
        return []
    return [Finding("d_make_var", {"file": name, "value": printable(values[-1][1].strip()),
                                   "path": procclean_path()},
                    _run_fix("%s init --makefile --replace" % hints.prog))]


def diagnose(ctx, services, problems):
    """Every finding and note for `services`, without changing anything: one check per
    kind of finding, all from one process table and one listener list."""
    hints = Hints()
    findings = [Finding("d_config", {"error": error.text(ctx.out.lang)}, ("fix_config", {
        "field": field, "svc": name, "file": CONFIG_FILE,
        "env": "PROCCLEAN_%s_%s" % (name.upper().replace("-", "_"), field.upper())}))
        for name, field, error in problems] + check_makefile(hints)
    table = ctx.system.process_table()
    protected = protected_pids(table, ctx.system.self_pid(), ctx.system.parent_pid())
    found = find_targets(ctx, services, table, protected)
    kids = children_map(table)
    # Matches outside the project are not this project's leftovers (nor are editors
    # or other procclean processes): reported apart, never stopped by --fix.
    for service in services:
        findings += check_command(service, ctx.out.lang)
        info, verdict = found.pidfiles[service.name], found.verdicts[service.name]
        proc = table.get(info.pid) if verdict in PIDFILE_NAMED else None
        findings += check_pidfile(service, info, verdict, proc, hints)
        own = set([proc.pid] + descendants(kids, proc.pid)) if verdict == "trusted" else set()
        candidates = [t.process for t in found.targets_of(service)
                      if t.via in ("pattern", "tag", "state")]
        findings += check_matches(service, candidates, protected, own, verdict, hints)
        if service.port is not None:
            findings += check_port(ctx, service, found, verdict in DEAD_VERDICTS, hints)
    # What doctor did not check, and how to check it: said, never counted as a finding.
    notes = [f for f in findings if f.key == "d_imports_unchecked"]
    return [f for f in findings if f not in notes], notes, table, protected, found.outside


def cmd_doctor(ctx, services, problems, fix=False):
    """Check pidfiles, leftovers, orphans, ports, tools and configuration; with `fix`,
    remove bad pidfiles, stop our own leftovers (not strangers) and check again."""
    import platform
    out = ctx.out
    findings, notes, table, protected, outside = diagnose(ctx, services, problems)
    out.say("doctor_env", version=__version__, python=platform.python_version(),
            platform="%s %s" % (platform.system(), platform.release()))
    out.say("doctor_tools",
            ps="%s (ps: %s)" % (ctx.system.ps_note, describe_tool("ps")),
            ports="%s (lsof: %s; ss: %s)" % (ctx.system.ports_note or "not needed",
                                              describe_tool("lsof"), describe_tool("ss")))
    for outsider in outside:
        out.say("outside_process", svc=outsider.service.name, pid=outsider.process.pid,
                folder=printable(outsider.folder or out.text("folder_unknown")),
                user=outsider.process.user, cmd=brief_command(outsider.process.command))
    if fix and findings:
        actions = [f.action for f in findings if f.action is not None]
        for pidfile in dict.fromkeys(a[1] for a in actions if a[0] == "remove"):
            remove_files(ctx, [pidfile])
            if not ctx.dry_run:
                ctx.system.remove_file(pidfile + START_SUFFIX)     # its start record too
        roots = [(p, a[1], "pattern") for a in actions if a[0] == "stop" for p in a[2]]
        if roots:
            # From the table the findings came from (its descendants, its start times).
            targets, _ = stop_processes(ctx, plan_targets(table, roots, protected), table)
            report_targets(ctx, targets)
        if not ctx.dry_run:
            for finding in [f for f in findings if f.action is not None]:
                out.say("doctor_fixed", text=finding.text(out))
                out.add("fixed", finding.record(out))
            findings = diagnose(ctx, services, problems)[0]
    for note in notes:
        out.say("doctor_note", text=note.text(out), fix=note.fix_text(out))
        out.add("notes", note.record(out))
    for finding in findings:
        # What needs action is the result: shown even with --quiet.
        out.say("doctor_finding", always=True, text=finding.text(out),
                fix=finding.fix_text(out))
        out.add("findings", finding.record(out))
    if findings:
        out.say("doctor_count", always=True, n=len(findings))
        return EXIT_FAILED
    out.say("doctor_ok")
    return EXIT_OK


# ---------------------------------------------------------------------------
# Command init: what the repo says (layout, documents, Procfile)
# ---------------------------------------------------------------------------

# Where a backend or a frontend usually lives, in the order init looks.
BACKEND_DIRS = ("backend", "api", "server", "app", "apps/api", "apps/backend", "apps/server",
                "services/api", "project", ".")
FRONTEND_DIRS = ("frontend", "web", "client", "ui", "apps/web", "apps/frontend",
                 "apps/client", "apps/ui", "packages/web", "packages/frontend", ".")
# Files that define an app, best first; searched in a project, its packages and src/PKG.
APP_MODULES = ("main", "app", "asgi", "server", "api", "application", "wsgi", "run",
               "__init__")
WORKER_MODULES = ("celery", "celery_app", "worker", "tasks")
PY_MARKERS = ("pyproject.toml", "requirements.txt", "setup.py", "Pipfile", "uv.lock",
              "poetry.lock", "manage.py")
DEPS_FILES = ("pyproject.toml", "requirements.txt", "Pipfile")
PS_MADE = "made to match the command as ps shows it"      # the source of a pattern init made
# Folders that hold no app: tests and test doubles (mock-api/), migrations, envs, assets.
SKIP_DIRS = (r"^(?:node_modules|migrations|alembic|venv|env|static|templates|docs|scripts|"
             r"dist|build|__pycache__|site-packages|examples?|samples|"
             r"(?:[\w-]*[-_])?(?:tests?|mocks?|fakes?|stubs?|e2e)(?:[-_][\w-]*)?)$")
DOC_FILES = ("README.md", "README.rst", "README", "README.txt", "DEVELOPMENT.md",
             "development.md", "CONTRIBUTING.md", "start.sh", "run.sh", "dev.sh",
             "justfile", "Justfile", ".justfile", "Taskfile.yml", "Taskfile.yaml")
WEB_FRAMEWORKS = ("FastAPI", "Flask", "Django", "Starlette", "Litestar", "Quart", "Sanic")
APP_CLASSES = "(%s)" % "|".join(f for f in WEB_FRAMEWORKS if f != "Django")
# An app object at a module's top: `app = FastAPI()`, `app: Flask = flask.Flask(...)`.
APP_RE = r"(?m)^(\w+)\s*(?::[^=\n]*)?=\s*(?:\w+\.)*%s\s*\(" % APP_CLASSES
# An app a factory makes (`app = create_app()`), else the factory (`def create_app()`).
FACTORY_NAME = r"(?:create|get|make|build)_(?:\w+_)?app(?:lication)?"
FACTORY_CALL_RE = r"(?m)^(\w+)\s*(?::[^=\n]*)?=\s*(?:\w+\.)*%s\s*\(" % FACTORY_NAME
FACTORY_DEF_RE = (r"(?m)^(?:async\s+)?def\s+(\w+)\s*\(([^)]*)\)\s*"
                  r"(?:->\s*[\"']?(?:\w+\.)*%s\b)?" % APP_CLASSES)
# A command line that runs a Python server or worker (after `cd X &&` and VAR=value).
PY_RUNNER = r"(?:(?:uv|poetry|pipenv|pdm|rye|hatch) run\s+)?(?:python[0-9.]*\s+-m\s+)?"
# (An ASGI/WSGI server with the module it serves: `uvicorn --reload` in prose is none.)
SERVER_RE = (r"(?:uvicorn|gunicorn|hypercorn|granian|daphne|sanic)"
             r"(?:\s+-\S+(?:\s+[^-\s]\S*)?)*?\s+[A-Za-z_][\w.]*(?::\w+)?(?=\s|$)|"
             r"fastapi\s+(?:dev|run)\b|"
             r"flask(?:\s+\S+){0,4}?\s+run\b|"
             r"(?:python[0-9.]*\s+)?(?:\./)?manage\.py\s+runserver\b")
# (uWSGI and waitress serve the app a config or a flag names: no module to match)
PY_SERVER_RE = SERVER_RE + r"|\buwsgi\b|\bwaitress-serve\b"
# A server's dev form: it reloads, or says dev or debug (Django's runserver does both).
DEV_FORM_RE = r"--reload|\bdev\b|--debug|runserver|\bwatch\b"
# (and a module of the project named worker: `python -m app.worker`, `python worker.py`)
WORKER_RE = (r"celery(?:\s+\S+){0,6}?\s+worker\b|rq\s+worker\b|dramatiq\s+\S|arq\s+\S|"
             r"(?<=-m )(?:[A-Za-z_]\w*\.)*workers?(?=\s|$)|"
             r"python[0-9.]*\s+(?:[\w-]+/)*workers?\.py\b")
# A Python web UI a README runs beside its API: a frontend.
UI_RE = r"streamlit\s+run\s+\S+\.py\b"
COMMAND_RE = (r"^(?:[A-Z_][A-Z0-9_]*=\S*\s+)*%s(?:[\w.-]*/)*(?:(%s)|(%s)|(%s))"
              % (PY_RUNNER, SERVER_RE, WORKER_RE, UI_RE))
# pyproject scripts whose name (a word of it) says they serve (`inventory-api`).
SERVE_SCRIPTS = ("dev", "serve", "server", "start", "run", "runserver", "web", "api")
# The tools a Python project runs as `{python} -m`.
PY_TOOLS = ("uvicorn", "gunicorn", "hypercorn", "granian", "daphne", "sanic", "fastapi",
            "flask", "celery", "dramatiq", "streamlit")
# Tools with no `python -m` form in every version (arq's came in 0.25, rq's as rq.cli):
# their console script, through the runner of the project's lock file (`uv run arq`).
PY_SCRIPTS = ("arq", "rq")
# Libraries a project's folder may be named after: an import of one names the library.
NOT_OURS = frozenset(PY_TOOLS + PY_SCRIPTS +
                     tuple(framework.lower() for framework in WEB_FRAMEWORKS))
NODE_DEV_DEFAULTS = (("next", 3000), ("react-scripts", 3000), ("craco", 3000), ("nuxi", 3000),
                     ("nuxt", 3000), ("ng ", 4200), ("astro", 4321), ("gatsby", 8000),
                     ("vue-cli-service", 8080), ("webpack", 8080), ("docusaurus", 3000),
                     ("vite", 5173), ("svelte-kit", 5173), ("remix", 5173),
                     ("react-router", 5173))
_DEV_SERVERS = (r"(?:react-scripts|craco) start|nuxi? dev|ng serve|webpack(?:-dev-server| "
                r"serve)|gatsby develop|docusaurus start|vue-cli-service serve")
# A `start` script that runs a dev server (not `next start`, a production server).
DEV_START_RE = r"vite|parcel|" + _DEV_SERVERS
# Vite's dev server, or a CLI that runs it (`react-router dev`, `remix vite:dev`).
VITE_RE = r"\bvite(?![\w-])(?!\s+(?:build|preview|optimize)\b)|\breact-router dev\b"
# A script of any name that runs a dev server (`"next-dev": "next dev"`).
DEV_SERVER_RE = VITE_RE + r"|\bnext dev\b|astro dev|" + _DEV_SERVERS
# A script that runs other scripts or workspaces, not a dev server of its own.
ORCHESTRATORS = r"\b(concurrently|npm-run-all|run-p|turbo|nx|lerna|honcho|foreman|overmind)\b"
FRONTEND_DEPS = ('"react"', '"vue"', '"svelte"', '"next"', '"vite"', '"@angular/core"',
                 '"nuxt"', '"solid-js"', '"preact"')
# Flags of a server or worker whose value pattern_for skips with them.
VALUE_FLAGS = ("--port", "-p", "--host", "-H", "--bind", "-b", "--log-level", "--loglevel",
               "-l", "--workers", "-w", "--concurrency", "-c", "--logfile", "--reload-dir",
               "--env-file", "--root-path", "-P", "-k", "--worker-class", "-Q", "-n",
               "--hostname", "--app-dir", "--pid", "--pidfile", "--access-logfile",
               "--error-logfile", "--log-file", "--timeout", "-t", "--threads", "--chdir",
               "--name", "--config", "-e", "--env")


def _read_text(path, limit=262144):
    """The text of a regular file, at most `limit` bytes, without a BOM; None for a
    missing one, a FIFO, a folder or a device."""
    with quietly():
        return read_regular(path, limit).decode("utf-8-sig", "replace")
    return None


def _text(*parts):
    """The text of the file at os.path.join(*parts), "" when there is none to read."""
    return _read_text(os.path.join(*parts)) or ""


def name_apart(name, taken):
    """A service's name apart from those `taken`: `name`, else name-2, name-3..."""
    base = name
    number = 2
    while name in taken:
        name = "%s-%d" % (base, number)
        number += 1
    return name


def _has(folder, names):
    return any(os.path.exists(os.path.join(folder, name)) for name in names)


class FoundService(object):
    """A service `init` found: `fields` {field: text} (the others keep default_fields),
    `sources` {field: where its value is said}, `what` one line saying what was found."""

    def __init__(self, name, fields, what, sources=None):
        self.name = name
        self.fields = dict(fields)
        self.what = what
        self.sources = dict(sources or {})

    def value(self, field):
        """The field as the service will have it: init's value, else the default."""
        value = self.fields.get(field)
        return default_fields(self.name).get(field, "") if value is None else value

    @property
    def command(self):
        return self.value("command")

    @property
    def cwd(self):
        return self.value("cwd")


# What a frontend's dev server runs (a Procfile entry's too).
FRONTEND_RE = r"\b(?:npm|pnpm|yarn|bun|npx|streamlit)\b|vite|next|react-scripts|nuxi?|ng "


def detect_project(missing):
    """The FoundServices of this folder: the Procfile's entries, then the backend,
    frontend and worker they lack.  `missing` gets what the repo seems to have and init
    did not find: (hint, looked) message keys and a section to paste."""
    found = _procfile_services()
    entries = list(found)
    kinds = (("backend", PY_SERVER_RE), ("frontend", FRONTEND_RE), ("worker", WORKER_RE))
    for name, covered in kinds:
        # (Heroku's `web: python app.py` runs the backend too: not a second copy of it)
        ran = next((s for s in entries if re.search(covered, s.command) or name ==
                    "backend" and _runs_backend(s)), None)
        if ran and (name == "worker" or ran.what.startswith("Procfile.dev ") or
                    re.search(DEV_FORM_RE, ran.command)):
            continue            # the Procfile runs one already (a worker has no dev form)
        services = _detect_frontends(missing) + [_python_ui()] if name == "frontend" \
            else [_detect_python(missing, name) or name == "backend" and (
                _node_backend() or _go_backend()) or None]
        services = [service for service in services if service is not None]
        if name == "backend" and services:
            services = _sibling_apps(services[0])
        elif name == "worker" and services:
            services = _workers_beside(services[0])
        if ran:
            services = _dev_over_deploy(found, ran, services)
        found += [service for service in services
                  if not any(s.name == service.name for s in found)]
    _proxied_port(found)
    _ports_apart(found)
    return found


def _runs_backend(entry):
    """Whether a Procfile entry runs the backend where PY_SERVER_RE does not say so:
    Heroku's `web: python app.py`, or in a Go module `web: bin/api`; a `go run` of a
    package that serves (not a Go worker's)."""
    heroku_web = entry.name == "web" and (
        "{python}" in entry.command or _has(entry.cwd, ("go.mod",)))
    return heroku_web or _go_server_code(entry.command, entry.cwd) is not None


def _dev_over_deploy(found, entry, services):
    """A Procfile entry runs the deployed server (`web: gunicorn app:app`): a documented
    dev form of it (a README's `uvicorn ... --reload`, the same folder's `dev` script;
    not one guessed from code, as gunicorn may reload by its config) takes its place and
    name.  Returns the services to add beside it (client/ beside an Express API)."""
    python = re.search(PY_SERVER_RE, entry.command)
    for service in services:
        if re.search(DEV_FORM_RE, service.command) and (
                "(documented: " in service.what if python
                else _same_folder(service.cwd, entry.cwd)):
            service.what = "%s; for deploys: %s" % (service.what, entry.what)
            service.name = entry.name
            found[found.index(entry)] = service
            break
    return [] if python else [s for s in services if not _same_folder(s.cwd, entry.cwd)]


# Where a frontend's dev server sends its API calls: Vite's server.proxy target (or a
# path's string, `'/api': 'http://localhost:8080'`), CRA's package.json "proxy", a Next
# rewrite's destination.
PROXY_TARGET_RE = (r"""(?:\btarget|"proxy"|\bdestination|['"]/[^'"\s]*['"])\s*:\s*"""
                   r"""['"`]https?://"""
                   r"(?:localhost|127\.0\.0\.1|0\.0\.0\.0):(\d{2,5})\b")


def _proxied_port(found):
    """A frontend (FRONTEND_RE) whose dev server proxies to localhost:N needs its backend
    there: the first service that is no frontend, whose port is only a default or
    foreman's number (a Heroku Procfile's `--port $PORT`) and moves with its setting, or
    a server whose port init could not read (`port =`), gets N, unless one is on it."""
    frontends = [s for s in found if re.search(FRONTEND_RE, s.command or "") and
                 not node_server(s.value("cwd"))]     # (not a Node backend's script)
    for frontend in frontends:
        said = dev_proxy_target(frontend.cwd)
        if said and not any(s.value("port") == said[0] for s in found):
            backend = next((s for s in found if s not in frontends and (re.search(
                r"default port|number it", s.sources.get("port", "")) and port_follows(s)
                or s.fields.get("port") == "" and not re.search(
                    WORKER_RE + "|no server", s.command + s.sources.get("port", "")))),
                None)
            if backend:
                backend.fields["port"] = said[0]
                backend.sources["port"] = "%s (the proxy target of %s)" % (
                    os.path.normpath(os.path.join(frontend.cwd, said[1])), frontend.name)
            return


def dev_proxy_target(folder):
    """(port, file) a frontend's dev server in `folder` sends its API calls to
    (PROXY_TARGET_RE), the file's name relative to `folder`; or None."""
    for name in ["%s.config.%s" % (tool, ext) for tool in ("vite", "next")
                 for ext in ("js", "ts", "mjs", "mts")] + ["package.json"]:
        said = re.search(PROXY_TARGET_RE, _text(folder, name))
        if said:
            return said.group(1), name
    return None


def _ports_apart(found):
    """Services found on one port (two Vite apps on 5173): each later one whose port
    moves with its setting gets the next free one (else it fails to start, or wanders
    off where procclean does not look); a fixed port stays, and start names the holder."""
    taken = set()
    for service in found:
        port = service.value("port")
        if port and port in taken and port_follows(service):
            said = ", port %s)" % port
            while port in taken:
                port = str(int(port) + 1)
            service.fields["port"] = port
            service.sources["port"] = "the next port free of the services found before it"
            service.what = service.what.replace(said, ", port %s)" % port)
        taken.add(port)


def _listdir(path):
    with quietly():
        return sorted(os.listdir(path))
    return []


def _package_dirs(root):
    """The sub-folders of `root` that may hold an app's package (src/PKG included)."""
    subs = []
    for entry in _listdir(root):
        path = os.path.join(root, entry)
        if entry.startswith(".") or re.match(SKIP_DIRS, entry) or not os.path.isdir(path):
            continue
        if root == "." and (entry in FRONTEND_DIRS or
                    _has(path, ("package.json", "pyproject.toml"))):
            continue        # another project of the repo, looked at on its own
        subs += [os.path.join("src", e) for e in _listdir(path) if not e.startswith(".")
                 and os.path.isdir(os.path.join(path, e))] if entry == "src" else [entry]
    return subs[:64]


def _app_files(base, modules):
    """The files of the project at `base` that may define an app: main.py, PKG/main.py..."""
    subs = [""] + _package_dirs(base)
    files = [os.path.join(sub, module + ".py") for sub in subs for module in modules
             if sub or module != "__init__"]
    return [path for path in files if os.path.isfile(os.path.join(base, path))]


def _with_others(named, marker):
    """The folders of `named` (the root last), with the other folders at the top, in
    apps/, services/ and packages/ that hold one of `marker` before the root
    (`fastapi_backend/`).  apps/docs is an app (a turborepo's site), not documents."""
    others = [os.path.join(parent, entry) for parent in ("", "apps", "services", "packages")
              for entry in _listdir(parent or ".")[:100]
              if not entry.startswith(".") and (parent or not re.match(SKIP_DIRS, entry))
              and os.path.join(parent, entry) not in named
              and _has(os.path.join(parent, entry), marker)]
    return list(named[:-1]) + others + [named[-1]]


def _python_bases():
    """The folders of BACKEND_DIRS and the repo's other Python projects that hold one:
    app/ is the root project's package unless it is a project of its own."""
    return [base for base in _with_others(BACKEND_DIRS, PY_MARKERS)
            if base == "." or os.path.isdir(base) and (
                _has(base, PY_MARKERS) or base != "app" and _app_files(base, APP_MODULES))]


def pattern_for(command):
    """A pattern that finds what `command` starts in a `ps -ef` line: its program and up
    to three words after it, not the ports, hosts and flags, which ps may show otherwise."""
    words = _command_words(command)
    if not words:
        return _literal(command.strip())
    if len(words) == 3 and words[1] in ("-c", "-lc") and re.match(
            r"^(?:.*/)?(?:ba|z)?sh$", words[0]):
        return pattern_for(words[2])    # `sh -c "cd web && npm run dev"`: npm's
    # a script's name whole: `app.py`, not the end of test_app.py (pytest's)
    pattern = "[Pp]ython.*[ /]" + _literal(words[0].lstrip("./")) \
        if words[0].endswith(".py") else _literal(os.path.basename(words[0]))
    if os.path.basename(words[0]) in ("yarn", "pnpm"):
        # node scripts: ps shows `node /usr/share/yarn/bin/yarn.js build`
        pattern += ".*"
    index, kept, last = 1, 0, 0
    while index < len(words) and kept < 3:
        word = words[index]
        if "{" in word or "$" in word:
            break
        # flags with their values, and a port (http.server 8000): ps may show others
        if word in VALUE_FLAGS or word.startswith("-") and not re.match(
                r"^(-A|--app)(=|$)", word) or word.isdigit():
            index += 2 if word in VALUE_FLAGS else 1
            continue
        pattern += (" " if index == last + 1 else ".*") + _literal(word)
        kept, last, index = kept + 1, index, index + 1
    if kept and len(words[last]) <= 2:
        pattern += "( |$)"      # `rails s` is not `rails solid_queue:start`
    elif not kept and "." not in words[0] and re.search(
            r"(?:^|\s)-m\s+%s(?:\s|$)" % re.escape(words[0]), command):
        pattern = "-m %s( |$)" % pattern    # `ui` of `python -m ui` is in `npm run build`
    elif not kept and pattern.startswith("[Pp]ython"):
        pattern += r"\b"                    # `app.py` whole, not `app.pyc`
    elif not kept and not pattern.endswith(".*"):
        pattern = "(^|[ /])%s( |$)" % pattern   # `air` alone is in a user blair's bash
    return pattern


def _command_words(command):
    """The words of a command's last `&&` part from its program on: without VAR=value,
    exec, wrappers and runners with their options (_program) and `{python} [-m]`."""
    import shlex
    try:    # (a quoted && is in a word: `log-wrapper.sh web "cd web && pnpm dev"`)
        words = shlex.split(re.sub(r"\s*&&\s*", " && ", command))
    except ValueError:
        words = command.split()
    while "&&" in words:
        words = words[words.index("&&") + 1:]
    while words and (re.match(r"^[A-Za-z_]\w*=", words[0]) or words[0] in ("exec", "env")):
        words = words[1:]
    # A wrapper execs the program (nohup, nice): the process shows the program alone.
    words = words[len(_program(words)[2]):]
    if words[:2] == ["pnpm", "exec"]:       # (pnpm alone runs scripts: no runner there)
        words = words[2:]
    if words and (words[0] == "{python}" or re.match(r"^python[0-9.]*$",
                                                      os.path.basename(words[0]))):
        words = words[2:] if words[1:2] == ["-m"] else words[1:]
    return words


def _literal(text):
    # re.escape also escapes spaces and dashes before 3.7: that reads badly in procclean.ini
    return re.sub(r"([.^$*+?{}\[\]\\|()])", r"\\\1", text)


# How each Python server is given a port it names none of (on loopback, as its default):
# gunicorn and hypercorn have no --port; their bind keeps its config's host.
ADDED_PORT = dict(dict.fromkeys(("uvicorn", "fastapi", "flask", "granian", "sanic"),
                                " --port {port}"), daphne=" -p {port}",
                  streamlit=" --server.port {port}",
                  gunicorn=" --bind {host}:{port}", hypercorn=" --bind {host}:{port}")


def with_port(command, default=None, cwd="."):
    """(command with its port as `{port}`, the port, where it was said): a literal port
    or $PORT becomes {port}; a server naming none gets ADDED_PORT; `default` is its port
    (a gunicorn config's `bind = "0.0.0.0:8080"` in `cwd`: `--bind 0.0.0.0:{port}`)."""
    # a port flag first: an address flag before it may be a debugger's (debugpy
    # --listen 0.0.0.0:5678); whole flags only (not the -port of --metrics-port)
    # (its value a literal, or another variable's default: `${STREAMLIT_PORT:-8501}`)
    value = r"(\d{2,5}\b|\$\{(?!PORT:)[A-Za-z_]\w*:-\d{2,5}\})"
    match = re.search(r"((?<![\w-])--?(?:server\.)?port[= ]|(?<![\w-])-p ?|"
                      r"runserver(?:_plus)? (?:\S+:)?|http\.server )" + value,
                      command) or re.search(
        r"((?<![\w-])(?:--bind[= ]|-b |--?(?:addr|http|listen|address)[= ])\S*:)" + value,
        command) or re.search(r"(PORT=)(\d{2,5})\b", command)
    if match:
        return (command[:match.start(2)] + "{port}" + command[match.end(2):],
                re.search(r"\d+(?=\}?$)", match.group(2)).group(), "flag")
    match = re.search(r"\$\{?PORT(?::-(\d{2,5}))?\}?", command)
    if match:
        return (command[:match.start()] + "{port}" + command[match.end():],
                match.group(1) or default, "env")
    if default is None:
        return command, None, None
    if re.search(r"manage\.py\s+runserver\s*$", command):
        return command + " {port}", default, "added"
    words = [""] + _command_words(command)
    # the program, past a wrapper, not an option's value (`-k uvicorn.workers...`);
    # `flask run`, not `flask routes`; none for a socket or a bind
    at = next((i for i in range(1, len(words)) if os.path.basename(words[i]) in ADDED_PORT
               and (words[i - 1] in ("", "-m", "--") or words[i - 1][:1] != "-")), 0)
    prog = os.path.basename(words[at])
    if prog in ADDED_PORT and (prog not in ("flask", "fastapi") or re.search(
            r"\b(run|dev)\b", " ".join(words[at + 1:]))) and not re.search(
            r"--(uds|fd|bind|socket)\b|(?<![\w-])-b\s", command):
        bind = _config_bind(command, cwd)
        host = bind[0] if bind and bind[0] is not None else "127.0.0.1"
        return command + ADDED_PORT[prog].replace("{host}", host), default, "added"
    return command, default, None


def _python_command(command, cwd="."):
    """A documented command as procclean runs it in `cwd`: python and PY_TOOLS through
    `{python}`, PY_SCRIPTS through the lock file's runner where there is no venv."""
    command = _without_prose_end(command.strip())
    env, rest = re.match(r"^((?:[A-Z_][A-Z0-9_]*=\S*\s+)*)(.*)$", command).groups()
    if re.match(r"^python[0-9.]*\s", rest):
        rest = "{python}" + rest[rest.index(" "):]
    elif re.match(r"^\./manage\.py\b", rest):
        rest = "{python} " + rest[2:]
    elif rest.split(" ", 1)[0] in PY_TOOLS:
        rest = "{python} -m " + rest
    elif rest.split(" ", 1)[0] in PY_SCRIPTS and _lock_runner(cwd) and \
            _project_python(cwd, ".")[1] != "tc_venv":
        # (a venv's bin/ is first on PATH at start: its arq needs no runner, maybe missing)
        rest = "%s run %s" % (_lock_runner(cwd), rest)
    return env + rest


def _without_prose_end(command):
    """`command` without the prose that ends it in a document (`run uvicorn main:app.`,
    a `&`), but with the quotes and parentheses it opens (`"app:create_app()"`)."""
    while command and command[-1] in ".,:;`'\")& ":
        last = command[-1]
        if last in "`'\"" and command.count(last) % 2 == 0 or \
                last == ")" and command.count("(") >= command.count(")"):
            break
        command = command[:-1]
    return command


def _default_port(command, cwd="."):
    """(port, where it is said) of a server command that names none: its config's
    (gunicorn's -c FILE or ./gunicorn.conf.py, read unasked; puma's; a Caddyfile; Go
    code), Flask's FLASK_RUN_PORT (macOS's AirPlay holds 5000), else the server's
    default; (None, None) for a command that runs no server."""
    bind = _config_bind(command, cwd)
    if bind:
        return bind[1], "%s (bind)" % bind[2]
    said = re.search(r"(?m)^\s*(?:port\b[^\n]*?|bind\s.*:)(\d{2,5})\b",
                     _text(_puma_config(command, cwd)))
    if said:        # puma's config: port ENV.fetch("PORT") { 3000 }, bind "tcp://...:3000"
        return said.group(1), "%s (port)" % _puma_config(command, cwd)
    if re.search(r"\brails\s+s(?:erver)?\b", command):
        return "3000", "rails server's default port ($PORT, else 3000)"
    caddy = re.search(r"\bcaddy\s+run\b(?:.*\s--config[= ](\S+))?", command)
    said = caddy and re.search(r"(?m)^[\w.-]*:(\d{2,5})\s*\{", _text(
        os.path.join(cwd, caddy.group(1) or "Caddyfile")))
    if said:        # caddy's first site address: `:1560 {`, `localhost:8080 {`
        return said.group(1), os.path.normpath(os.path.join(cwd, caddy.group(1) or
                                                            "Caddyfile"))
    if re.search(r"(?:^|[\s/])vite\s+dev\b", command) and _has(cwd, ["config/vite.json"]):
        # vite_ruby's bin/vite dev: config/vite.json's development port, else all's
        path = os.path.normpath(os.path.join(cwd, "config", "vite.json"))
        for section in ("development", "all"):
            said = re.search(r'"%s"\s*:\s*\{[^{}]*"port"\s*:\s*(\d{2,5})' % section,
                             _text(path))
            if said:
                return said.group(1), "%s (%s port)" % (path, section)
        return "3036", "vite_ruby's default port"
    for path, text in go_sources(command, cwd):
        # the address a Go server's code listens on (ListenAndServe, echo, gin, fiber)
        said = re.search(r"(?:ListenAndServe(?:TLS)?\(|\.Start\(|\.Run\(|\.Listen\(|"
                         r"\bAddr:)\s*\"[\w.]*:(\d{2,5})\"", text)
        if said:
            return said.group(1), path
        if re.search(_GIN_DEFAULT_RE, text):
            return "8080", "%s (gin's Run(): PORT, else 8080)" % path
    if re.search(r"\bflask\b", command):
        for name in (".flaskenv", ".env"):
            said = re.search(r"(?m)^\s*(?:export\s+)?FLASK_RUN_PORT\s*=\s*['\"]?(\d+)\b",
                             _text(cwd, name))
            if said:
                return said.group(1), "%s (FLASK_RUN_PORT)" % os.path.normpath(
                    os.path.join(cwd, name))
        return "5000", "Flask's default port"
    if re.search(UI_RE, command):
        return "8501", "Streamlit's default port"
    return ("8000", "the server's default port") if re.search(SERVER_RE, command) else \
        (None, None)


def _config_bind(command, cwd):
    """(host, port, path) of the bind in a gunicorn or hypercorn command's config (-c
    FILE, else gunicorn's ./gunicorn.conf.py, read unasked): `bind = "0.0.0.0:8080"`;
    else None."""
    server = re.search(r"\b(gunicorn|hypercorn)\b", command)
    named = re.search(r"(?:^|\s)(?:-c|--config)[= ]?['\"]?(python:)?([^\s'\"]+)", command)
    if not server or not named and server.group(1) == "hypercorn":
        return None     # (hypercorn reads no file it is not given)
    # (-c python:config.gunicorn: the module config/gunicorn.py)
    path = "gunicorn.conf.py" if not named else named.group(2).replace(
        ".", "/") + ".py" if named.group(1) else named.group(2)
    path = os.path.normpath(os.path.join(cwd, path))
    bind = re.search(r"(?m)^bind\s*=.*?(?:['\"]([^'\"\n]*):(\d{2,5})['\"]|"
                     r"PORT['\"]?\s*,\s*['\"]?(\d{2,5}))", _text(path))
    if not bind:
        return None
    # `"0.0.0.0:8080"`, `"[::]:8080"`; `"0.0.0.0:" + os.environ.get("PORT", "8080")`
    host = bind.group(1)
    if host is None:
        said = re.search(r"['\"]([^'\"\n]*):", bind.group(0))
        host = said and said.group(1)
    return host, bind.group(2) or bind.group(3), path


def _puma_config(command, cwd):
    """The config puma (or `rails server`) reads: -C FILE, else config/puma.rb; or ""."""
    if not re.search(r"(?:^|[\s/])(?:puma|rails\s+s(?:erver)?)(?:\s|$)", command):
        return ""
    named = re.search(r"\s(?:-C|--config)[= ]?(\S+)", command)
    return os.path.normpath(os.path.join(cwd, named.group(1) if named else
                                         "config/puma.rb"))


def _doc_commands(text, where, cwd):
    """A document's server and worker commands: [{kind, command, cwd, where}]."""
    found = []
    # what a recipe is given after its name, nothing by default: just's `*args` (in a
    # header, `dev *args:`, found first: each `*word` tried up to a colon is quadratic
    # in the line), Task's CLI_ARGS
    headers = " ".join(re.findall(r"(?m)^@?[\w-]+\s[^\n:=]*:", text))
    extra = r"\s*\{\{\s*(?:%s)\s*\}\}" % "|".join(
        set([r"\.CLI_ARGS"] + re.findall(r"\*(\w+)", headers)))
    # and a just variable set to a string (`app := "src/main.py"`) is that string
    values = dict(re.findall(r"(?m)^(\w+)\s*:=\s*[\"']([^\"'\n{]*)[\"']\s*$", text))
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}",
                  lambda named: values.get(named.group(1), named.group(0)), text)
    # (a command continued on the next lines, `uvicorn \` then `  --reload`, is one line)
    for index, _, line in _logical_lines("\n".join(text.splitlines()[:4000])):
        for span in [line] + re.findall(r"`([^`\n]+)`", line):
            here = cwd
            # not the command: a prompt (`(env)$ `), a list's dash, just's @, and what
            # follows a closing backtick or a shell's `  # comment`
            span = re.sub(r"^\s*(?:(?:\([\w.-]+\)\s*)?[$>#]\s+|-\s+|@)?", "",
                          span.strip().lstrip("`").split("`")[0])
            span = re.sub(extra, "", re.sub(r"\s+#.*$", "", span))
            # a task file's variable after a port flag is the port; another (`{{host}}`)
            # is a value procclean cannot give
            span = re.sub(r"(--port[= ]|-p ?)\{\{[^{}]*\}\}", r"\1$PORT", span)
            if "{{" in span:
                continue
            exports = []        # `export FLASK_APP=app && flask run`: the command's
            for part in re.split(r"\s*(?:&&|;)\s*", span):
                words, folder = _moved(part.split())    # uv run --directory api ...
                part = " ".join(words)
                if re.match(r"^export(?:\s+[A-Z_][A-Z0-9_]*=\S*)+$", part):
                    exports += words[1:]
                    continue
                cd = re.match(r"^cd\s+([\w./-]+)$", part)    # (exports are not the cd's)
                part = " ".join(exports + words)
                match = None if cd else re.match(COMMAND_RE, part)
                here = os.path.normpath(os.path.join(here, cd.group(1))) if cd else here
                if match:       # (the folder option moves the command, not the shell)
                    there = os.path.normpath(os.path.join(here, folder or "."))
                    found.append({"kind": "server" if match.group(1) else
                                  "worker" if match.group(2) else "ui",
                                  "command": part, "cwd": there, "where": where % (
                                      index + 1) if "%" in where else where})
                if match or here.startswith(".."):
                    break       # the line's command, or a `cd` out of the repo: done
            else:
                continue
            break
    return found


def _documented(bases):
    """The server and worker commands of READMEs, pyproject task tables, package.json
    scripts and the app FLASK_APP names in a .flaskenv or .env."""
    found = []
    for base in ["."] + [b for b in bases if b != "."]:
        for name in DOC_FILES:
            path = os.path.normpath(os.path.join(base, name))
            found += _doc_commands(_text(path), path + " line %d", base)
        path = os.path.normpath(os.path.join(base, "pyproject.toml"))
        for table, key, value in _toml_strings(_text(path)):
            where = "%s [%s] %s" % (path, table, key)
            task = re.match(r"^tool\.(?:poe\.tasks|taskipy\.tasks|(pdm)\.scripts|"
                            r"(rye)\.scripts|(hatch)\.envs\.(\w+)\.scripts)", table)
            if task:
                # a task runs in its tool's environment (hatch's is no .venv)
                tool = task.group(1) or task.group(2) or task.group(4) in (
                    None, "default") and task.group(3)
                found += _doc_commands(value if not tool or re.match(
                    r"^(?:cd|uv|poetry|pdm|rye|hatch)\s", value) else "%s run %s" % (
                        tool, value), where, base)
            elif table in ("project.scripts", "tool.poetry.scripts") and \
                    set(re.split(r"[:_.-]", key)) & set(SERVE_SCRIPTS):     # inventory-api
                found += _entry_point(base, key, value, where)
        path = os.path.normpath(os.path.join(base, "package.json"))
        for key, value in sorted((_package_scripts(_text(path)) or {}).items()):
            found += _doc_commands(value, "%s scripts.%s" % (path, key), base)
    for base, name in [(b, n) for b in bases for n in (".flaskenv", ".env")]:
        # what `flask run` serves there (FLASK_APP=flasky.py: app = create_app(...))
        said = re.search(r"(?m)^\s*(?:export\s+)?FLASK_APP\s*=\s*['\"]?([\w./:]+)",
                         _text(base, name))
        if said:
            found.append({"kind": "server", "command": "flask --app %s run" % said.group(1),
                          "cwd": base, "where": os.path.normpath(os.path.join(base, name))})
    return found


def _package_scripts(text):
    """A package.json's command-line scripts {name: command}; None for no JSON object."""
    import json
    try:
        data = json.loads(text or "")
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    scripts = data.get("scripts") if isinstance(data.get("scripts"), dict) else {}
    return dict((k, v) for k, v in scripts.items() if isinstance(v, str))


def _entry_point(base, name, target, where):
    """A pyproject script whose module calls uvicorn.run or app.run: [candidate] or []."""
    text = _text(base, _entry_module(base, target) or "")
    runner = _lock_runner(base)
    # (not subprocess.run or asyncio.run: `run-checks` running pytest serves nothing)
    served = re.search(r"\b(?!subprocess\.|asyncio\.|anyio\.|trio\.)\w+\.run\(", text)
    if not served or runner in (None, "pipenv"):
        return []
    said = _code_port(base, text, where) or ("8000", None, None)
    command = "%s run %s" % (runner, name)
    pattern = r"(%s|bin/%s)( |$)" % (_literal(command), _literal(name))
    if said[2] not in (None, "PORT"):
        command = "%s={port} %s" % (said[2], command)     # the port setting moves it
    return [{"kind": "server", "command": command, "cwd": base, "where": where,
             "port": said[0], "port_said": said[1], "pattern": pattern}]


def _entry_module(base, target):
    """The file of the project at `base` that a script's entry point (`cli.commands:main`)
    is in (module.py or package/__init__.py, in the folder or its src/), or None."""
    module = target.split(":", 1)[0].replace(".", os.sep)
    for folder in ("", "src"):
        for path in (module + ".py", os.path.join(module, "__init__.py")):
            if os.path.isfile(os.path.join(base, folder, path)):
                return os.path.join(folder, path)
    return None


def _console_module(base, name):
    """The module file of the project's console script `name` (pyproject's
    [project.scripts] or [tool.poetry.scripts] at `base`), or None."""
    target = next((value for table, key, value in _toml_strings(_text(base, "pyproject.toml"))
                   if key == name and table in ("project.scripts", "tool.poetry.scripts")),
                  None)
    return target and _entry_module(base, target)


def _lock_runner(base):
    """The tool of the lock file of the project at `base`, else of the root's, or None."""
    return next((tool for lock, tool in PYTHON_LOCKS
                 if any(os.path.isfile(os.path.join(d, lock)) for d in (base, "."))), None)


# The port a module passes to uvicorn.run or app.run: a number, an environment variable
# with its default (`int(os.getenv("API_PORT", 9000))`), or a settings attribute
# (`settings.API_PORT`, whose default its settings class sets).
CODE_PORT_RE = (r"\b(?:server_)?port\s*=\s*(?:int\(\s*)?(?:(\d{2,5})\b|"
                r"os\.(?:getenv|environ\.get)\(\s*['\"](\w+)['\"]\s*,\s*['\"]?(\d{2,5})|"
                r"(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*)\b)")


def _option_port(text):
    """The default of the `--port` option a command-line program's code declares (click's
    `option("--port", default=8000)`, argparse's `add_argument`, typer's `port: int =
    8000`), or None."""
    said = re.search(r"""['"]--port['"][^)]*?\bdefault\s*=\s*(\d{2,5})\b|"""
                     r"\bport\s*:\s*int\s*=\s*(?:typer\.Option\(\s*)?(\d{2,5})\b", text)
    return said and (said.group(1) or said.group(2))


def _code_port(base, text, where):
    """(port, where it is said, the variable that sets it or None) of what a module of
    the project at `base` passes to uvicorn.run or app.run (CODE_PORT_RE), or None."""
    # a stdlib server's address: `HTTPServer(("", PORT), H)`, `make_server("", 80, app)`
    text = re.sub(r"(?:Server\(\s*\(|\bmake_server\()[^,()]*,\s*", " port=", text)
    said = re.search(CODE_PORT_RE, text)
    if not said:
        # port=PORT, a name the module sets: `PORT = int(os.getenv("APP_PORT", 9000))`
        name = re.search(r"\bport\s*=\s*([A-Za-z_]\w*)\s*[,)]", text)
        value = name and re.search(r"(?m)^%s\s*=\s*(.+)$" % name.group(1), text)
        said = value and re.search(CODE_PORT_RE, "port = " + value.group(1))
    if not said:
        return None
    number, variable, default, attribute = said.groups()
    if number:
        return number, "%s (port=%s)" % (where, number), None
    if default:
        # (or the project's .env, python-dotenv's)
        env = re.search(r"(?m)^\s*(?:export\s+)?%s\s*=\s*['\"]?(\d{2,5})\b" % variable,
                        _text(base, ".env"))
        if env:
            return env.group(1), "%s (%s)" % (os.path.normpath(os.path.join(
                base, ".env")), variable), variable
        return default, "%s (%s, else %s)" % (where, variable, default), variable
    if attribute == "port":
        # args.port: a `port = 5432` of the project's is as likely its database's
        return None
    define = r"(?m)^\s*%s\s*(?::[^=\n]*)?=\s*(\d{2,5})\b" % re.escape(attribute)
    for path in _python_files(base):
        found = re.search(define, _text(base, path))
        if found:
            return found.group(1), "%s (%s = %s)" % (os.path.normpath(os.path.join(
                base, path)), attribute, found.group(1)), None
    return None


def _toml_strings(text):
    """[(table, key, string)] of a TOML file's one-line string values (`key = "..."`,
    poe's `key = { cmd = "..." }`): enough for task tables; tomllib is 3.11+."""
    table, found = "", []
    for line in text.splitlines():
        head = re.match(r"^\s*\[([^\[\]]+)\]\s*(?:#.*)?$", line)
        if head:
            table = head.group(1).strip().replace('"', "")
            continue
        item = re.match(r"""^\s*([\w.:"-]+)\s*=\s*(?:\{[^}]*?\b(?:cmd|shell)\s*=\s*)?"""
                        r"""(?:"((?:[^"\\]|\\.)*)"|'([^']*)')""", line)
        if item:
            value = item.group(2) if item.group(2) is not None else item.group(3)
            found.append((table, item.group(1).strip('"'), value.replace('\\"', '"')))
    return found


def _resolves(cwd, command):
    """Whether the module or script a command names is there, run in cwd: its file
    (module.py, package/__init__.py, or the package's folder) where it names one."""
    shown = re.sub(r"^(?:[A-Z_][A-Z0-9_]*=\S*\s+)+", "", command)    # not its variables
    match = re.search(r"([A-Za-z_][\w.]*):[A-Za-z_]\w*|(?:-A|--app)[= ]?([\w.]+)|(\S+\.py)\b",
                      shown)
    if not match and re.search(r"\bflask\b", command):
        # what `flask run` finds untold: FLASK_APP (.flaskenv, .env), else app.py, wsgi.py
        return "FLASK_APP=" in command or _has(cwd, ("app.py", "wsgi.py")) or \
            "FLASK_APP" in _text(cwd, ".flaskenv") + _text(cwd, ".env")
    if not match:
        # what `fastapi dev` finds untold (fastapi-cli's discover.py)
        return not re.search(r"\bfastapi\s+(dev|run)\b", command) or any(
            os.path.isfile(os.path.join(cwd, d, n)) for d in ("", "app")
            for n in ("main.py", "app.py", "api.py")) or \
            "[tool.fastapi]" in _text(cwd, "pyproject.toml")
    name = next(g for g in match.groups() if g)
    path = name if name.endswith(".py") else name.replace(".", os.sep)
    found = [os.path.join(cwd, sub, p) for sub in ("", "src")
             for p in (path, path + ".py", os.path.join(path, "__init__.py"))
             if os.path.exists(os.path.join(cwd, sub, p))]
    if found and match.group(1):
        # `uvicorn main:app` of a main.py that defines no app (a README behind its code)
        attr = shown[match.end(1) + 1:match.end()]
        text = _read_text(found[0]) if found[0].endswith(".py") else None
        defined = r"(?m)^\s*(?:%s\s*[:=]|(?:async\s+)?def\s+%s\b|class\s+%s\b|" \
            r"(?:from|import)\b.*\b%s\b)" % ((re.escape(attr),) * 4)
        if text is not None and not re.search(defined, text):
            return False
    return os.path.normpath(found[0]) if found else False


def _from_documented(candidates, bases, name, kind):
    """The best documented command of `kind` (a dev one, then one through the project's
    tool, as a script has it beside its container branch), run where its module is."""
    ranked = sorted((c for c in candidates if c["kind"] == kind), key=lambda c: (
        not re.search(DEV_FORM_RE, c["command"]),
        not re.match(r"^(uv|poetry|pipenv|pdm|rye|hatch) run ", c["command"])))
    for candidate in ranked:
        text, where = candidate["command"], candidate["where"]
        cwd = candidate["cwd"] if _resolves(candidate["cwd"], text) else next(
            (b for b in bases if _resolves(b, text)), None)
        if cwd is None:
            continue
        command = _python_command(text, cwd)
        path = _resolves(cwd, text)
        if isinstance(path, str) and path_inside(path, [os.path.normpath(os.path.join(
                cwd, "src"))]) and "[tool." not in where and not re.search(
                    r"\.py\b|--app-dir|PYTHONPATH|^\w+ run ", text):
            # a src layout's module run as if installed (a task table's tool or `uv run`
            # installs it): its import fails from cwd unless src/ is on the path
            command = command + " --app-dir src" if re.search(r"\buvicorn\b", command) \
                else "PYTHONPATH=src " + command
        default, default_said = _default_port(command, cwd)
        command, port, how = with_port(command, default or candidate.get("port"), cwd)
        fields = {"command": command, "cwd": cwd,
                  "pattern": candidate.get("pattern") or pattern_for(command)}
        sources = {"command": where, "cwd": where, "pattern": PS_MADE}
        if port:
            fields["port"] = port
            sources["port"] = candidate.get("port_said") or where if how in (
                "flag", "env") or candidate.get("port") else default_said
        if name == "backend":
            fields["health"] = "auto"
        said = text.strip().rstrip("& ")
        return FoundService(name, fields, "%s (documented: %s)" % (where, said), sources)
    return None


def _detect_python(missing, name):
    """The backend or worker the repo documents, else defines in the usual modules, then
    (in a project that depends on the framework, or celery) in any of its modules."""
    bases = _python_bases()
    backend = name == "backend"
    found = _from_documented(_documented(bases), bases, name,
                             "server" if backend else "worker")
    modules = APP_MODULES if backend else WORKER_MODULES + APP_MODULES
    searches = [(b, _app_files(b, modules)) for b in bases]
    searches += [(b, None) for b in bases if (_framework(b) != "Python" if backend else any(
        _depends(b, tool) for tool, _, _, _ in WORKER_DEFS))]
    from_code = _backend_from_code if backend else _worker_from_code
    for base, files in searches:
        if found is None:
            found = from_code(base, _python_files(base) if files is None else files)
    if found is None:
        (_missing_backend if backend else _missing_worker)(bases, missing)
    return found


def _workers_beside(first):
    """The worker `first` and the worker of each other Python project of the repo, each
    run in its folder and named after it (billing-worker); [first] where there is none."""
    bases = sorted((b for b in _python_bases() if b != "."), key=len, reverse=True)
    found = [(first, next((b for b in bases if path_inside(first.cwd, [b])), None))]
    for base in bases:
        if not any(path_inside(s.cwd, [base]) for s, _ in found):
            service = _worker_from_code(base, _python_files(base))
            found += [(service, base)] if service else []
    if len(found) > 1 and all(base for _, base in found):
        for service, base in found:
            service.name = os.path.basename(base) + "-worker"
    return [service for service, _ in found]


def _sibling_apps(first):
    """The backend `first` and the APIs in siblings of its folder or of the one above
    (services/users/ beside services/orders/app/), each named by its folder; [first]
    where there are none.  A sibling's app is in the file named as first's, else in its
    usual modules: an app object or factory, not a script (tools/main.py is no API)."""
    path = _resolves(first.cwd, first.command)
    if not (isinstance(path, str) and path.endswith(".py")):
        return [first]
    folders = os.path.dirname(path).split(os.sep) if os.path.dirname(path) else []
    for level in (1, 2)[:len(folders)]:
        parent = os.sep.join(folders[:-level]) or "."
        tail = folders[len(folders) - level + 1:] + [os.path.basename(path)]
        entries = [folders[-level]] + [e for e in _listdir(parent)[:100] if not (
            e == folders[-level] or e.startswith(".") or re.match(SKIP_DIRS, e))]
        folders_here = [os.path.normpath(os.path.join(parent, e)) for e in entries]
        documented = [c for c in _documented(_python_bases() + folders_here)
                      if c["kind"] == "server"]
        found = [_sibling_app(folder, os.path.join(folder, *tail), documented)
                 for folder in folders_here]
        if any(found[1:]):
            found = [(found[0] or first, entries[0])] + [
                (s, e) for s, e in zip(found[1:], entries[1:]) if s]
            named = []
            for service, entry in found:
                _name_by_folder(service, entry, named)
                named.append(service)
            return named
    return [first]


def _sibling_app(folder, path, documented):
    """The backend serving the app of `folder` (in `path`, else in its usual modules) as
    a README runs it, else as init runs an app it finds; or None."""
    for path in [os.path.normpath(path)] + [os.path.normpath(os.path.join(folder, f))
                                            for f in _app_files(folder, APP_MODULES)]:
        roots = _ancestors(os.path.dirname(path))
        base = next((f for f in roots if _has(f, PY_MARKERS)), ".")
        if os.path.isfile(path) and _app_object(_text(path), _framework(base)):
            return _from_documented([c for c in documented if any(
                _resolves(r, c["command"]) == path for r in [c["cwd"]] + roots)], roots,
                "backend", "server") or _backend_from_code(
                    base, [os.path.relpath(path, base)])
    return None


def _ancestors(folder):
    """`folder` and the folders above it, nearest first, up to the root (".")."""
    parts = [p for p in os.path.normpath(folder).split(os.sep) if p != "."]
    return [os.sep.join(parts[:i]) for i in range(len(parts), 0, -1)] + ["."]


def _python_ui():
    """The Streamlit UI the repo documents, else the Gradio app its code launches: a
    frontend named streamlit or gradio, or None."""
    bases = _python_bases()
    return _from_documented(_documented(bases), bases, "streamlit", "ui") or next(
        (s for s in (_gradio_from_code(b) for b in bases) if s), None)


def _gradio_from_code(base):
    """The Gradio app a module of `base` launches (`demo.launch()` at its top or under
    __main__; where the project depends on gradio, also in a module that imports its
    UI): run as a script, on the server_port it passes, else GRADIO_SERVER_PORT."""
    depends = _depends(base, "gradio")
    for path in _python_files(base, depth=3):
        text = _text(base, path)
        ours = depends or re.search(r"(?m)^\s*(?:import|from)\s+gradio\b", text)
        if not (ours and re.search(r"\.launch\(", text) and (
                "__main__" in text or re.search(r"(?m)^[\w.()]+\.launch\(", text))):
            continue
        cwd, module, _ = _import_root(base, path, text)
        how = "python " + path if cwd == base and os.sep not in path else \
            "python -m " + module
        where = os.path.normpath(os.path.join(base, path))
        port, said, variable = _code_port(base, text, where) or (
            "7860", "Gradio's default port", "GRADIO_SERVER_PORT")
        command = ("%s={port} " % variable if variable else "") + "{python}" + how[6:]
        return FoundService("gradio", {"pattern": pattern_for(command), "port": port,
                                       "command": command, "cwd": cwd},
                            "%s (Gradio app, run as %s)" % (where, how), {
                                "pattern": PS_MADE, "port": said, "command": where,
                                "cwd": where})
    return None


def _python_files(base, depth=5):
    """The importable .py files of the project at `base`, shallowest first (tests,
    migrations, environments and other projects of the repo left out)."""
    tops = set(p.split(os.sep)[0] for p in _package_dirs(base))
    found, level = [], [""]
    for _ in range(depth):
        subs = []
        for sub in level:
            for entry in _listdir(os.path.join(base, sub)):
                path = os.path.join(sub, entry)
                if entry == "procclean.py":
                    continue        # this file: its comments are no project's code
                if entry.endswith(".py") and re.match(r"^[A-Za-z_]\w*\.py$", entry):
                    found.append(path)
                elif re.match(r"^[A-Za-z_]\w*$", entry) and not re.match(
                        SKIP_DIRS, entry) and os.path.isdir(os.path.join(base, path)) and (
                            sub or entry in tops):
                    subs.append(path)
        level = subs
    return found[:400]


def _import_root(base, path, text):
    """(folder, dotted module, --app-dir) that import the module `path` of the project at
    `base` as its own absolute imports need: from the nearest folder above it that holds
    the first one (`from backend.config import` in backend/main.py: the root), else from
    `base` (src/PKG/ from src/, given as --app-dir src)."""
    full = os.path.normpath(os.path.join(base, path))
    nearest = _ancestors(os.path.dirname(full))
    src = os.path.normpath(os.path.join(base, "src"))
    root = src if path_inside(full, [src]) and full.count(os.sep) > src.count(os.sep) + 1 \
        else os.path.normpath(base)
    for name in re.findall(r"(?m)^[ \t]*(?:from|import)[ \t]+([A-Za-z_][\w.]*)", text):
        # (fastapi/run.py imports the library, not its folder)
        found = name.split(".")[0] not in NOT_OURS and next(
            (r for r in nearest if _python_module(r, name)), None)
        if found:
            root = found
            break
    module = os.path.splitext(os.path.relpath(full, root))[0].split(os.sep)
    module = ".".join(module[:-1] if module[-1] == "__init__" else module)
    if root == src and src != os.path.normpath(base):
        return base, module, "src"
    return root, module, None


def _python_module(folder, dotted):
    """Whether the module `dotted` is Python code in `folder` (a .py file, or a folder
    with .py files in it or its sub-folders), not a folder named like a library that
    holds its configuration (redis/redis.conf beside `import redis`)."""
    path = os.path.join(folder, *dotted.split("."))
    if os.path.isfile(path + ".py"):
        return True
    entries = _listdir(path)
    return any(entry.endswith(".py") for entry in entries) or any(
        sub.endswith(".py") for entry in entries[:50]
        for sub in _listdir(os.path.join(path, entry)))


def _app_object(text, framework):
    """(framework, attribute, whether a factory) of the app a module defines; where a
    framework other than Django is used, of what a factory makes, else the factory."""
    match = re.search(APP_RE, text)
    if match:
        return match.group(2), match.group(1), False
    used = re.search(r"\b(%s)\b" % "|".join(WEB_FRAMEWORKS), text)
    framework = used.group(1) if used else framework
    if framework not in WEB_FRAMEWORKS or framework == "Django":
        return None
    match = re.search(FACTORY_CALL_RE, text)
    if match:
        return framework, match.group(1), False
    for name, params, annotated in re.findall(FACTORY_DEF_RE, text):
        # a factory that needs arguments is served through the module that calls it
        alone = all("=" in p or p.strip()[:1] in ("", "*") for p in params.split(","))
        if alone and (annotated or used and re.match("%s$" % FACTORY_NAME, name)):
            return annotated or framework, name, True
    return None


def _serve_command(app, module, app_dir, server="uvicorn"):
    """(how it is run, in words; the command) of _app_object's `app` in `module`: by the
    ASGI `server`, or Flask's CLI (which finds app, application, create_app, make_app)."""
    framework, attr, factory = app
    if framework != "Flask" and server == "uvicorn":
        how = "uvicorn %s:%s%s" % (module, attr, " --factory" if factory else "")
        return how, "{python} -m %s%s --host 127.0.0.1 --port {port}" % (
            how, " --app-dir src" if app_dir else "")
    if framework != "Flask":
        how = "%s %s:%s%s" % (server, module, attr, " --factory" if factory else "")
        if factory and server == "hypercorn":       # its form, quoted for sh: `(` is sh's
            how = '%s "%s:%s()"' % (server, module, attr)
        return how, with_port("%s{python} -m %s" % ("PYTHONPATH=src " if app_dir else "",
                                                     how), "8000")[0]
    known = ("app", "application", "create_app", "make_app")
    how = "flask --app %s run" % (module if attr in known else module + ":" + attr)
    return how, "%s{python} -m %s --port {port}" % ("PYTHONPATH=src " if app_dir else "",
                                                    how)


# What a script that serves shows (a root main.py that shows none, and whose project
# depends on no web framework, is the repo's command-line tool, not its backend).
_SERVES_RE = r"\b(?:uvicorn|hypercorn|waitress|app\.run|serve_forever|HTTPServer|listen|" \
    r"web\.run_app|serve)\b"


def _backend_from_code(base, files):
    """The backend the project at `base` defines in `files`: Django's manage.py, an app
    (an object or its factory), or a main.py run as a script."""
    manage = os.path.normpath(os.path.join(base, "manage.py"))
    if "django" in _text(manage).lower():
        return FoundService("backend", {
            "pattern": r"manage\.py.*runserver", "port": "8000",
            "command": "{python} manage.py runserver {port}", "cwd": base, "health": "auto"},
            "%s (Django, run as manage.py runserver)" % manage,
            {"pattern": PS_MADE, "command": manage, "cwd": manage,
             "port": "Django's default port"})
    project = _framework(base)
    for path in files:
        text = _text(base, path)
        app = _app_object(text, project)
        runner = app and _runner_of(base, path)
        if runner:      # main.py: uvicorn.run("app:app", port=PORT), as the team runs it
            path, text, app = runner, _text(base, runner), None
        # A script at the project's top (the seed's main.py, often with no app and no
        # __main__ guard); a package's module is imported, so that its imports resolve.
        script = os.sep not in path and (
            "__main__" in text and (path == "main.py" or re.search(r"\.run\(", text))
            or path == "main.py" and text.strip() and not app) and (
                base != "." or project != "Python" or re.search(_SERVES_RE, text))
        if not (script or app):
            continue
        framework = app[0] if app else project
        cwd, module, app_dir = _import_root(base, path, text)
        if script:
            how = "python -m " + module if cwd != base else "python " + path
            command = "{python}" + how[len("python"):]
        else:
            how, command = _serve_command(app, module, app_dir,
                                          _asgi_server(base, framework))
        where = os.path.normpath(os.path.join(base, path))
        said = _code_port(base, text, where)
        if said:
            port, port_said, variable = said
        elif framework == "Flask":
            # FLASK_RUN_PORT is `flask run`'s: a script's app.run() does not read it
            port, port_said = ("5000", "Flask's default port") if script else \
                _default_port("flask", cwd)
        else:
            port, port_said = "8000", "uvicorn's default port"
        # the seed's own pattern, for the seed's `python main.py`
        pattern = BUILTIN_SERVICES[0]["pattern"] if command == "{python} main.py" else \
            pattern_for(command)
        if script and said and variable not in (None, "PORT"):
            command = "%s={port} %s" % (variable, command)    # the port setting moves it
        fields = {"pattern": pattern, "port": port, "command": command, "cwd": cwd,
                  "health": "auto"}
        return FoundService("backend", fields, "%s/%s (%s app, run as %s)" % (
            base, path, framework, how), {"pattern": PS_MADE, "port": port_said,
                                          "command": "%s (%s app)" % (where, framework),
                                          "cwd": where})
    return None


def _runner_of(base, path):
    """A script at the top of `base` that runs the app module `path` under __main__
    (`uvicorn.run("app:app")`, `from app import app` ... `app.run()`), or None."""
    module = os.path.splitext(path)[0].replace(os.sep, ".")
    uses = r"(?:['\"]%s:|(?:from|import)\s+%s\b)" % (re.escape(module), re.escape(module))
    for name in ("main.py", "run.py", "server.py", "start.py", "serve.py"):
        text = _text(base, name)
        if name != path and "__main__" in text and re.search(r"\.run\(", text) and \
                re.search(uses, text):
            return name
    return None


def _asgi_server(base, framework):
    """The ASGI server of an app of the project at `base`: Sanic's own; one the project
    depends on; else uvicorn, or Quart's own hypercorn (plain quart has no uvicorn)."""
    deps = _deps(base, ".")
    if framework == "Sanic":
        return "sanic"
    return next((server for server in ("uvicorn", "hypercorn")
                 if re.search(r"\b%s\b" % server, deps)),
                "uvicorn" if "[standard]" in deps or framework != "Quart" else "hypercorn")


def _deps(*bases):
    """The dependency files of the Python projects at `bases`, lower-cased, as one text."""
    return " ".join(_text(d, n) for d in bases for n in DEPS_FILES).lower()


def _framework(base):
    """The web framework a Python project (or the root) depends on, by name, or "Python"."""
    deps = _deps(base, ".")
    return next((f for f in WEB_FRAMEWORKS if re.search(r"\b%s\b" % f.lower(), deps)),
                "Python")


def _depends(base, name):
    """Whether the Python project at `base` names `name` among its requirements."""
    return re.search(r"(^|[\s\"'])%s\b" % re.escape(name), _deps(base)) is not None


def _deps_file(base):
    return next((os.path.normpath(os.path.join(base, n)) for n in DEPS_FILES
                 if os.path.exists(os.path.join(base, n))), base)


def _missing_backend(bases, missing):
    """A Python project that depends on a web framework, and no app found."""
    for base in bases:
        framework = _framework(base)
        if framework == "Python" or base == "." and not _has(".", PY_MARKERS):
            continue
        command = {"Django": "{python} manage.py runserver {port}",
                   "Flask": "{python} -m flask --app MODULE run --port {port}"}.get(
            framework, "{python} -m uvicorn MODULE:app --port {port}")
        files = ", ".join(os.path.normpath(os.path.join(base, p, m + ".py"))
                          for p in ("", "PKG", "src/PKG") for m in ("main", "app"))
        missing.append((("miss_depends", {"file": _deps_file(base), "what": framework}),
                        ("looked_backend", {"files": files}), FoundService("backend", {
                            "command": command, "cwd": base,
                            "port": "5000" if framework == "Flask" else "8000",
                            "pattern": pattern_for(command).replace("MODULE", ".*")}, "", {
                                "command": "MODULE: the module that defines your app "
                                           "(app.main for app/main.py)"})))
        return


def _missing_worker(bases, missing):
    """A Python project that depends on a worker's tool, and no worker found."""
    commands = [(tool, run % {"module": "MODULE", "name": "WorkerSettings",
                              "app": "MODULE"}) for tool, _, run, _ in WORKER_DEFS]
    for base in bases:
        for tool, said in commands + [("rq", "rq worker")]:
            command = _python_command(said, base)
            if _depends(base, tool):
                missing.append((("miss_depends", {"file": _deps_file(base), "what": tool}),
                                ("looked_worker", {"base": base}), FoundService("worker", {
                                    "command": command, "cwd": base, "pattern":
                                    pattern_for(command).replace("MODULE", ".*")}, "")))
                return


# What defines a worker in a module (of a project that depends on the tool, or that
# imports it), and how the tool runs it as a README says it: celery's app (`-A module`
# finds one named app or celery), arq's settings class, dramatiq's actors.
WORKER_DEFS = (
    ("celery", r"(?m)^(\w+)\s*(?::[^=\n]*)?=\s*(?:celery\.)?Celery\s*\(",
     "celery -A %(app)s worker --loglevel=INFO", "Celery app"),
    ("arq", r"(?m)^class\s+(\w*WorkerSettings)\b", "arq %(module)s.%(name)s",
     "arq worker settings"),
    ("dramatiq", r"(?m)^@(?:dramatiq\.)?(actor)\b", "dramatiq %(module)s",
     "dramatiq actors"))


def _worker_from_code(base, files):
    """The worker of the first module among `files` of the project at `base` that
    defines one (WORKER_DEFS), run where its imports resolve (src/ on PYTHONPATH)."""
    tools = [d for d in WORKER_DEFS if d[0] == "celery" or _depends(base, d[0])]
    for path in files:
        text = _text(base, path)
        for tool, define, run, what in tools:
            match = re.search(define, text)
            if not match or tool != "celery" and not _depends(base, tool) and not \
                    re.search(r"(?m)^\s*(?:from|import)\s+%s\b" % tool, text):
                continue
            cwd, module, app_dir = _import_root(base, path, text)
            name = match.group(1)
            said = run % {"module": module, "name": name, "app": module if name in (
                "app", "celery") else "%s:%s" % (module, name)}
            command = _python_command(("PYTHONPATH=src " if app_dir else "") + said, cwd)
            where = os.path.normpath(os.path.join(base, path))
            said = said.replace(" --loglevel=INFO", "")
            return FoundService("worker", {
                "command": command, "cwd": cwd, "pattern": pattern_for(command)},
                "%s (%s, run as %s)" % (where, what, said), {
                    "command": "%s (%s)" % (where, match.group(0).strip()),
                    "cwd": where, "pattern": PS_MADE})
    return None


def _detect_frontends(missing):
    """The frontend: the first of FRONTEND_DIRS (or a folder of a frontend framework)
    whose package.json has a dev script; then every other folder whose framework's dev
    server a script runs (apps/admin beside apps/web), each named by its folder."""
    found = []
    seems = None        # a framework's folder with no dev script: said if none is found
    for sub in _with_others(FRONTEND_DIRS, ("package.json",)):
        path = os.path.normpath(os.path.join(sub, "package.json"))
        text = _read_text(path)
        scripts = _package_scripts(text)
        framework = scripts is not None and any(dep in text for dep in FRONTEND_DEPS)
        if scripts is None or sub not in FRONTEND_DIRS and not framework:
            continue        # a folder of another name: a frontend only by its framework
        name = _dev_script(scripts)
        runs = None         # the dev server: a script it runs by name, else itself
        if name is not None:
            runs = next((text for text in _named_scripts(scripts, scripts[name])
                         if re.search(DEV_SERVER_RE, text)), scripts[name])
        if name is not None and not found:
            found.append(_frontend_service(sub, path, name, scripts[name], runs))
        elif name is not None and framework and sub != "." and re.search(
                DEV_SERVER_RE, runs):
            found.append(_frontend_service(sub, path, name, scripts[name], runs))
            _name_by_folder(found[-1], sub, found)
        elif seems is None and framework:
            seems = (sub, path, sorted(scripts))
    if seems is not None and not found:
        sub, path, names = seems
        tool, run_script, _ = node_toolchain(sub)
        looked = ", ".join(os.path.normpath(os.path.join(d, "package.json"))
                           for d in FRONTEND_DIRS)
        missing.append((
            ("miss_dev_script", {"file": path, "scripts": ", ".join(names) or "-"}),
            ("looked_frontend", {"files": looked}), FoundService("frontend", {
                "command": run_script + " SCRIPT", "cwd": sub, "port": "3000",
                "pattern": "npm run SCRIPT" if tool == "npm" else "%s.* run SCRIPT" % tool},
                "", {"command": "SCRIPT: the script that starts the dev server"})))
    return found


def _name_by_folder(service, folder, found):
    """Name `service` after its folder (apps/admin: admin), apart from the services
    `found` and the other built-in ones (a folder named frontend beside the frontend)."""
    taken = set(s.name for s in found if s is not service) | set(
        b["name"] for b in BUILTIN_SERVICES if b["name"] != service.name)
    base = re.sub(r"[^a-z0-9_.-]", "-", os.path.basename(folder).lower()).strip("-._")
    service.name = name_apart(base or service.name, taken)


# A Node server's dependencies (an API in backend/ or server/, not a frontend), and its
# scripts that run it, best first (Nest's `start:dev` watches; `start` may need a build).
NODE_SERVERS = ('"express"', '"fastify"', '"koa"', '"@nestjs/core"', '"hono"',
                '"@hapi/hapi"', '"restify"')
NODE_SERVER_SCRIPTS = ("dev", "start:dev", "serve", "start")
# Where a Node server usually starts, when its script names no file (nest start).
NODE_ENTRIES = ("src/main.ts", "src/server.ts", "src/index.ts", "src/app.ts", "server.js",
                "index.js", "app.js", "src/server.js", "src/index.js")


def node_entries(script):
    """The files a Node server's script runs: those it names, then NODE_ENTRIES, as the
    named one may be built from them (`tsc && node dist/index.js`)."""
    return re.findall(r"[\w./-]+\.[cm]?[jt]s\b", script) + list(NODE_ENTRIES)


# (`PORT || 3001`, `listen(3001)`; an options object: Fastify's `listen({port: 3001})`,
# Hono's and Bun's `serve({fetch, port: 3001})`, Bun's `export default {port: 3001, fetch}`)
NODE_PORT_RE = (r"PORT\b[^|?\n]{0,12}(?:\|\||\?\?)\s*['\"]?(\d{2,5})"
                r"|\blisten\(\s*(\d{2,5})"
                r"|(?:\b(?:listen|serve)\(|\bexport\s+default\s*)\{[^{}]*?\bport\s*:\s*(\d{2,5})")


def _node_port(sub, script):
    """(port, file) a Node server in `sub` listens on when PORT is unset: .env's PORT, else
    its code's (NODE_PORT_RE); None when its script says one or nothing does."""
    if re.search(r"\bPORT=\d", script):
        return None
    said = re.search(r"(?m)^PORT\s*=\s*(\d{2,5})\s*$", _text(sub, ".env"))
    if said:
        return said.group(1), ".env"
    for entry in node_entries(script):
        said = re.search(NODE_PORT_RE, _text(sub, entry))
        if said:
            return next(g for g in said.groups() if g), entry
    return None


def node_server(folder):
    """Whether the package in `folder` is a Node server's (NODE_SERVERS), not a
    frontend's."""
    text = _text(folder, "package.json")
    return any(dep in text for dep in NODE_SERVERS) and not any(
        dep in text for dep in FRONTEND_DEPS)


def _node_backend():
    """Where the repo has no Python backend: a Node server (NODE_SERVERS) in a folder
    that is no frontend, run by its script, on the port its script, .env or code gives."""
    for sub in _with_others(BACKEND_DIRS, ("package.json",))[:-1]:
        path = os.path.normpath(os.path.join(sub, "package.json"))
        text = _read_text(path) or ""
        scripts = _package_scripts(text) or {}
        name = next((n for n in NODE_SERVER_SCRIPTS if n in scripts
                     and not re.search(ORCHESTRATORS, scripts[n])), None)
        if name is None or not node_server(sub):
            continue
        service = _frontend_service(sub, path, name, scripts[name])
        service.name = "backend"
        # what the script runs (the package manager above it may run a frontend's too)
        service.fields["pattern"] = pattern_for(scripts[name])
        service.sources["pattern"] = PS_MADE
        service.fields["health"] = "auto"
        said = _node_port(sub, scripts[name])
        if said:
            service.what = service.what.replace(", port %s)" % service.fields["port"],
                                                ", port %s)" % said[0])
            service.fields["port"] = said[0]
            service.sources["port"] = os.path.normpath(os.path.join(sub, said[1]))
        return service
    return None


# A Go main package that serves HTTP: a server package it imports, with that package's
# call that listens (chi and gorilla/mux serve through net/http).  An HTTP client with a
# CLI's app.Run(os.Args) or an exec.Command's Start() serves nothing.
GO_SERVERS = (('"net/http"', r"\bListenAndServe(?:TLS)?\(|\.Serve(?:TLS)?\("),
              ('"github.com/gin-gonic/gin"', r"\.Run(?:TLS)?\("),
              ('"github.com/labstack/echo', r"\.Start(?:TLS)?\("),
              ('"github.com/gofiber/fiber', r"\.Listen(?:TLS)?\("))
# Where it takes its address, with a default, and how the command then gives it {port}:
# a variable (`getEnv("PORT", "8080")`, `env.GetString("ADDR", ":8080")`) or a flag
# (`flag.String("addr", ":8080", ...)`); else `port = "8080"` beside os.Getenv("PORT").
GO_ADDRESS_RES = (
    ("%(name)s=%(host)s{port} %(command)s",
     r'"((?:(?:HTTP|SERVER|APP|API|WEB|LISTEN)_)?(?:PORT|ADDR(?:ESS)?))"\s*,'
     r'\s*"?([\w.]*:)?(\d{2,5})\b'),
    ("%(command)s -%(name)s %(host)s{port}",
     r'\bflag\.(?:String|Int)(?:Var)?\([^"()]*"(\w*(?:port|addr)\w*)"\s*,'
     r'\s*"?([\w.]*:)?(\d{2,5})\b'),
    ("%(command)s", r'(?i)\b(port)\s*:?=\s*"()(\d{2,5})"'))


def _go_backend():
    """Where the repo has no Python or Node backend: the main package of a Go module
    (its folder, cmd/NAME/, api/ or server/), or a folder's lone main.go, that serves
    HTTP, run by `go run`."""
    for base in _with_others(BACKEND_DIRS, ("go.mod", "main.go")):
        if _has(base, ("go.mod",)):
            subs = ["."] + [os.path.join("cmd", e)
                            for e in _listdir(os.path.join(base, "cmd"))] + ["api", "server"]
        elif [n for n in _listdir(base) if n.endswith(".go")] == ["main.go"]:
            subs = ["main.go"]      # no module: `go run .` fails, a lone main.go builds
        else:
            continue
        for sub in subs:
            command = "go run " + ("." if sub == "." else "./" + sub)
            code = _go_server_code(command, base)
            if not code:
                continue
            where = os.path.normpath(os.path.join(base, sub))
            command, port, said = _go_address(command, base, where, code)
            return FoundService("backend", {
                "command": command, "cwd": base, "pattern": pattern_for(command),
                "port": port or "", "health": "auto"},
                "%s (Go HTTP server, run as %s)" % (where, command), {
                    "command": where, "cwd": where, "pattern": PS_MADE,
                    "port": said or "%s: no port found in its code" % where})
    return None


def _go_server_code(command, cwd):
    """The code of the main package that `go run` runs in `command`, where it serves
    HTTP (GO_SERVERS); else None."""
    code = "".join(text or "" for _, text in go_sources(command, cwd or "."))
    if re.search(r"(?m)^func main\(\)", code) and any(
            package in code and re.search(listen, code) for package, listen in GO_SERVERS):
        return code
    return None


def _go_address(command, base, where, code):
    """(command, port, where it is said) of a Go server: the address its code listens
    on; else the one it takes from a variable (the project's .env may set it) or a flag
    (GO_ADDRESS_RES), which the command then gives it as {port}."""
    port, said = _default_port(command, base)
    if port:
        return command, port, said
    for form, address_re in GO_ADDRESS_RES:
        match = re.search(address_re, code)
        if match:
            name, host, port = match.groups()
            env = re.search(r"(?m)^%s=(?:[\w.]*:)?(\d{2,5})\s*$" % name.upper(),
                            _text(base, ".env"))
            said = "%s (%s, else %s)" % (where, name, port)
            if env:
                port = env.group(1)
                said = "%s (%s)" % (os.path.normpath(os.path.join(base, ".env")), name)
            return form % {"name": name, "host": host or "", "command": command}, port, said
    return command, None, None


def _dev_script(scripts):
    """The name of the script that runs the dev server: `dev`, a `start` that runs one,
    `serve`, else one that runs a dev server; never one that runs others (_orchestrates)."""
    names = ["dev", "start", "serve"] + sorted(n for n in scripts if n not in
                                               ("dev", "start", "serve"))
    for name in names:
        command = scripts.get(name)
        if not isinstance(command, str) or _orchestrates(
                " ".join([command] + _named_scripts(scripts, command))):
            continue
        if name in ("dev", "serve") or re.search(
                DEV_START_RE if name == "start" else DEV_SERVER_RE, command):
            return name
    return None


def _named_scripts(scripts, command):
    """The texts of the scripts an orchestrator's `command` runs by name or glob (`run-p
    dev:vite dev:api`, `npm-run-all --parallel dev:*`, `concurrently "npm:dev:*"`)."""
    if not re.search(ORCHESTRATORS, command):
        return []
    words = [re.sub(r"^npm:", "", word.strip("\"'")) for word in command.split()[1:]]
    globs = [re.escape(word).replace(r"\*", ".*") + "$" for word in words
             if word[:1] != "-"]
    return [scripts[name] for name in sorted(scripts) if scripts[name] != command
            and isinstance(scripts[name], str) and any(re.match(g, name) for g in globs)]


def _orchestrates(command):
    """Whether a script runs other scripts or apps (ORCHESTRATORS) and no dev server of
    its own: `concurrently "npm:dev:*"` or `turbo dev` (with no script it names running
    one, see _named_scripts), or one running a Python server or worker (the backend's);
    `concurrently "vite" "node api.js"`, `run-p dev:vite dev:api` run one."""
    if not re.search(ORCHESTRATORS, command):
        return False
    if re.search(PY_SERVER_RE + "|" + WORKER_RE + r"|\bpython[0-9.]*\s", command):
        return True
    return not re.search(r"(?:^|[\s\"'])(?:%s)" % DEV_SERVER_RE, command)


def _frontend_port(sub, script):
    """(port, where it is said) of a dev server script run in `sub`."""
    match = re.search(r"(?:--port[= ]|-p[= ]?|\bPORT=)(\d{2,5})\b", script)
    if match:
        return match.group(1), os.path.join(sub, "package.json (dev script)")
    if re.search(VITE_RE + "|svelte-kit", script) or not script.strip():
        for ext in ("js", "ts", "mjs", "mts"):
            match = re.search(r"\bserver\s*:\s*\{[^{}]*?\bport\s*:\s*(\d{2,5})",
                              _text(sub, "vite.config." + ext))
            if match:
                return match.group(1), os.path.normpath(os.path.join(
                    sub, "vite.config.%s (server.port)" % ext))
        said = _django_vite_port()
        if said:
            return said
    match = re.search(r"\bng serve\b", script) and re.search(
        r'"serve"\s*:\s*\{[^{}]*"options"\s*:\s*\{[^{}]*"port"\s*:\s*(\d{2,5})',
        _text(sub, "angular.json"))
    if match:       # the serve target's port in angular.json
        return match.group(1), os.path.join(sub, "angular.json (serve options port)")
    if re.search(r"react-scripts|craco", script):     # craco runs CRA's start
        match = re.search(r"(?m)^PORT\s*=\s*(\d{2,5})\s*$", _text(sub, ".env"))
        if match:
            return match.group(1), os.path.normpath(os.path.join(sub, ".env (PORT)"))
    for tool, port in NODE_DEV_DEFAULTS:
        if re.search(r"(^|[\s/\"'])%s" % re.escape(tool), script):   # ("vite" quoted too)
            return str(port), "the default port of %s" % tool.strip()
    return "3000", "the usual default port"


def _django_vite_port(default=False):
    """(port, where) django-vite looks for the Vite dev server (DJANGO_VITE's
    dev_server_port, DJANGO_VITE_DEV_SERVER_PORT before 3.0) in a Django settings
    module of the repo, or None.  `default`: where a settings module uses django-vite
    and names none, its version's default (3000 before 3.0, 5173 with DJANGO_VITE)."""
    import glob
    paths = glob.glob("*/settings.py") + glob.glob("*/*/settings.py") + glob.glob(
        "*/settings/*.py")
    texts = [(path, _text(path)) for path in sorted(paths)[:20]]
    for path, text in texts:
        said = re.search(r"(?:[\"']dev_server_port[\"']\s*:|DJANGO_VITE_DEV_SERVER_PORT"
                         r"\s*=)\s*(\d{2,5})", text)
        if said:
            return said.group(1), "%s (django-vite's dev_server_port)" % path
    uses = [(path, text) for path, text in texts if default and "django_vite" in text
            and not re.search(r"dev_server_port|DJANGO_VITE_DEV_SERVER_PORT", text)]
    if uses:
        port = "5173" if re.search(r"\bDJANGO_VITE\s*=\s*\{", uses[0][1]) else "3000"
        return port, "%s (django-vite's default dev_server_port)" % uses[0][0]
    return None


# Dev servers that take their port as a flag (Create React App reads PORT: no flag), and
# the flag, appended to the script's last command.  --strictPort: Vite exits where its port
# is taken, instead of listening on the next one, where procclean does not look.
PORT_FLAGS = ((VITE_RE, "--port {port} --strictPort"),
              (r"\b(?:astro|nuxt|nuxi|svelte-kit) dev\b", "--port {port}"),
              (r"\bnext dev\b", "-p {port}"), (r"\bng serve\b", "--port {port}"),
              (r"\bwebpack(?:-dev-server\b| serve\b)", "--port {port}"),
              (r"\b(?:gatsby develop|docusaurus start|vinxi dev)\b", "--port {port}"))


def _port_flag(command, script):
    """`command`, a run of a package.json dev script, with the script's port flag (with
    `{port}`); as it is where the script says its port (a fixed port stays fixed, unless
    the last flag wins: `next dev -p 3000 -p 3010` listens on 3010) or its last command
    takes none.  npm passes on what follows `--`; pnpm, yarn, bun all of it."""
    last = re.split(r"&&|\|\||[;|&]", script)[-1]
    last_wins = re.search(r"\bnext dev\b", last) and not re.search(READS_PORT_RE, script)
    if re.search(r"--port\b|(?:^|\s)-p\b|\bPORT\b", script) and not last_wins or \
            re.search(ORCHESTRATORS, last):
        return command      # (concurrently would take the flag, not its dev server)
    flag = next((flag for tool_re, flag in PORT_FLAGS if re.search(tool_re, last)), None)
    dashes = " --" if command.startswith("npm ") and " -- " not in command else ""
    return "%s%s %s" % (command, dashes, flag) if flag else command


def _frontend_service(sub, path, name, script, runs=None):
    """The frontend `script` runs; `runs`: the dev server's script it runs by name."""
    runs = runs or script
    tool, run_script, _ = node_toolchain(sub)
    port, port_where = _frontend_port(sub, runs)
    runner = ("npm start" if name == "start" else "npm run " + name) if tool == "npm" \
        else "%s.* run %s" % (tool, name)
    if re.search(r"\bvite\b", runs) and "next" not in runs:
        pattern = BUILTIN_SERVICES[1]["pattern"]      # the seed's, for a vite frontend
        if tool != "npm":           # as ps shows it: node .../pnpm.cjs run dev
            pattern = "(%s|%s" % (runner, pattern[1:])
    else:
        shown = {"next": "next dev|next-server", "react-scripts": "react-scripts start|"
                 "react-scripts/scripts/start", "craco": "craco start"}
        own = next((p for t, p in shown.items() if re.search(r"\b%s\b" % t, runs)),
                   pattern_for(runs))
        pattern = "(%s|%s)" % (runner, own)
    command = _port_flag(run_script + " " + name if name != "start" or tool != "npm" else
                         "npm start", script)
    # (a Vite without index.html serves a backend's scripts: its root answers 404)
    page = _has(sub, ("index.html",)) or not re.search(VITE_RE, runs)
    return FoundService("frontend", {
        "pattern": pattern, "port": port, "command": command, "cwd": sub,
        "health": "/" if page else "auto"},
        "%s/package.json (%s script: %s, port %s)" % (sub, name, script, port), {
            "pattern": "%s runs the %s script (as ps shows it)" % (tool, name),
            "port": port_where, "command": "%s (scripts.%s: %s)" % (path, name, script),
            "cwd": path})


def _procfile():
    """(name, text) of Procfile.dev, else Procfile: the one init reads; (None, "")."""
    texts = ((n, _read_text(n)) for n in ("Procfile.dev", "Procfile"))
    return next((t for t in texts if t[1] is not None), (None, ""))


def _procfile_services():
    """A service per entry of Procfile.dev, else Procfile (`name: command`): $PORT
    becomes {port}; where it reads PORT and names no port, the one foreman gives it."""
    name, text = _procfile()
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        entry = re.match(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)\s*:\s*(\S.*)$", line.strip())
        # Heroku's release phase is a one-off before deploys, no process
        if not entry or line.lstrip().startswith("#") or entry.group(1) == "release":
            continue
        service, said = entry.group(1), entry.group(2).strip()
        where = "%s line %d" % (name, number)
        run = _log_wrapped(said) or said        # (procclean keeps the log itself)
        cd = re.match(r"^cd\s+([\w./-]+)\s*&&\s*(\S.*)$", run)
        cwd, command = cd.groups() if cd else (".", run)
        # (`npm --prefix web run dev`, `pnpm -C web dev`: run in web/, as after cd web)
        words, folder = _moved(command.split())
        cwd, command = os.path.normpath(os.path.join(cwd, folder or "")), " ".join(words)
        command = _python_command(command, cwd)
        # foreman numbers the entries' $PORT: 5000, 5100, ...
        numbered = str(5000 + 100 * len(found))
        default, default_said = _default_port(command, cwd)
        reads = port_follows(FoundService(service, {"command": command, "cwd": cwd}, ""),
                             PORT_ENV_RE)
        command, port, how = with_port(command, numbered if reads else default, cwd)
        fields = {"command": command, "cwd": cwd,
                  "pattern": pattern_for(said if run != said else command)}
        sources = {"command": "%s (%s: %s)" % (where, service, said) + (
            ", without the log wrapper: procclean keeps the log" if run != said else ""),
            "cwd": where, "pattern": PS_MADE}
        if port is None:
            port, default_said, fields["command"] = _script_port(cwd, command)
        if port is not None:
            fields["port"] = port
            sources["port"] = where if how == "flag" else \
                "%s: $PORT, as foreman and honcho number it" % where if reads else \
                default_said or "%s: no server, no port" % where
        if any((s.name, s.command) == (service, fields["command"]) for s in found):
            continue        # the same entry twice (a copy and paste): one service
        service = name_apart(service, set(s.name for s in found))
        found.append(FoundService(service, fields, "%s (%s)" % (where, said), sources))
    return found


def _log_wrapped(command):
    """The command a log wrapper of the repo runs (`./scripts/log-wrapper.sh api "cd
    apps/api && pnpm dev"`: a script that runs its quoted last argument and keeps its
    output in a log, as procclean does), else None."""
    words = shell_tokens(command)
    if len(words) < 2 or not all(isinstance(w, ShellWord) for w in words) or \
            not words[-1].quoted or " " not in words[-1].text:
        return None
    script = _read_text(words[0].text, 65536) or ""
    runs = re.search(r"\beval\b|\b(?:ba)?sh\s+-c\b", script)
    return words[-1].text if runs and re.search(r"\btee\b|>>", script) else None


def _script_port(cwd, command):
    """(port, where it is said, command) of the dev server a Procfile entry's package
    script runs, the command with the script's port flag; else ("", None) (a build
    watcher is not on 3000); of a Python script, what it passes to app.run; (None, None)
    for another command: the service's default."""
    run = re.match(r"^(?:npm|pnpm|yarn|bun)\s+(?:run(?:-script)?\s+)?([\w:.-]+)", command)
    py = re.match(r"^\{python\}\s+([\w./-]+\.py)\b", command)
    if py:
        path = os.path.normpath(os.path.join(cwd, py.group(1)))
        return (_code_port(cwd, _text(path), path) or (None, None))[:2] + (command,)
    if not run:
        return None, None, command
    script = (_package_scripts(_text(cwd, "package.json")) or {}).get(run.group(1))
    if script and not re.search(DEV_SERVER_RE, script) and node_server(cwd):
        said = _node_port(cwd, script) or ("", "a Node server's, not read")
        return said[0], os.path.join(cwd, said[1]), command   # ("": a proxy may name it)
    if not script or not re.search(DEV_SERVER_RE, script):
        return "", None, command
    return _frontend_port(cwd, script) + (_port_flag(command, script),)


def say_toolchains(ctx, found):
    """What runs each service found, and why (init says what it chose)."""
    out = ctx.out
    for service in found:
        cwd = resolve_cwd(service.value("cwd"))
        command = service.value("command")
        if "{python}" in command:
            python, key, values = python_toolchain(cwd)
            out.say("init_python", svc=service.name, python=" ".join(python),
                    why=toolchain_why(out, key, values))
        elif re.match(r"^(npm|pnpm|yarn|bun) (run \S+|start)(?: --)?(?: (?:--port|-p) "
                      r"\{port\}(?: --strictPort)?)?$", command):
            tool, _, lock = node_toolchain(cwd)
            ran = command.split()[0]        # the team's `npm run dev` beside a bun.lockb
            if not lock:
                why = out.text("tc_node_none", tool=ran)
            elif ran == tool:
                why = out.text("tc_node_lock", lock=lock)
            else:
                why = out.text("tc_node_command", lock=lock, other=tool)
            out.say("init_node", svc=service.name, tool=ran, why=why)


def render_section(service):
    """A FoundService's section: `# found: what`, [name], each value that differs from the
    default under a comment saying where it came from (`port =` where there is none)."""
    lines = (["# found: " + service.what] if service.what else []) + ["[%s]" % service.name]
    defaults = dict(FIELD_DEFAULTS, **default_fields(service.name))
    said = None
    for field in [f for f in ALL_FIELDS if f in service.fields]:
        value = str(service.fields[field]).strip()
        if value == str(defaults.get(field, "")).strip():
            continue
        source = service.sources.get(field) or service.what
        if source and source != said:
            said = source
            lines.append("# " + said)
        lines.append(("%s = %s" % (field, value)).rstrip())
    return lines


def say_missing(ctx, missing):
    """What init did not find though the repo seems to have it, with a section to paste."""
    out = ctx.out
    for (hint, hint_values), (looked, looked_values), section in missing:
        hint, looked = out.text(hint, **hint_values), out.text(looked, **looked_values)
        out.say("init_missing", always=True, svc=section.name, hint=hint, looked=looked)
        text = "\n".join(render_section(section))
        out.line(text + "\n")
        out.add("missing", {"service": section.name, "hint": hint, "looked": looked,
                            "section": text})


# A .env value init never copies: one under a name that says it is secret, or a URL
# holding a password (make's `include .env` puts them into the recipes init reads).
_SECRET_NAME_RE = r"(?i)pass|pwd|secret|token|key|credential|auth|dsn"
_URL_PASSWORD_RE = r"://[^/\s:@]+:[^/\s@]+@"


def dotenv_secrets(folder="."):
    """{value: name} of the secrets in a folder's .env files (.env.example and the like
    hold none)."""
    secrets = {}
    for name in _listdir(folder):
        if not name.startswith(".env") or re.search(r"example|sample|template|dist", name):
            continue
        for key, value in re.findall(r"(?m)^[ \t]*(?:export\s+)?([A-Za-z_]\w*)\s*=\s*"
                                     r"['\"]?([^'\"\s#]+)", _text(folder, name)):
            # (not a short word: POSTGRES_PASSWORD=postgres is also the image's name)
            if len(value) >= 6 and not value.isdigit() and not (
                    value.isalpha() and len(value) < 12) and (
                    re.search(_SECRET_NAME_RE, key) or re.search(_URL_PASSWORD_RE, value)):
                secrets.setdefault(value, key)
    return secrets


def without_secrets(text, secrets, pattern=False):
    """`text` with each secret's value as `${NAME}` (a command runs it through sh), or in
    a `pattern` as `.*` (the process's line still holds the value)."""
    for value in sorted(secrets, key=len, reverse=True):
        if pattern:
            text = text.replace(re.escape(value), ".*")
        text = text.replace(value, ".*" if pattern else "${%s}" % secrets[value])
    return text


def _hide_secrets(ctx, found, secrets):
    """procclean.ini is committed, .env is not: a command that holds a .env secret
    takes it from the environment instead (said, with what to do)."""
    for service in found:
        command = service.fields.get("command") or ""
        names = sorted(set(n for v, n in secrets.items() if v in command))
        if names:
            service.fields["command"] = without_secrets(command, secrets)
            ctx.out.warn("init_secret", svc=service.name, names=" ".join(names))
        if service.fields.get("pattern"):       # (`pkill -f "worker --key $(KEY)"`)
            service.fields["pattern"] = without_secrets(service.fields["pattern"], secrets,
                                                        pattern=True)


def write_config(ctx, found, secrets):
    """procclean.ini: written, shown (--dry-run), or kept when it exists (a note)."""
    out = ctx.out
    _hide_secrets(ctx, found, secrets)
    lines = ["# procclean configuration, written by `%s init`: only what differs"
             % prog_command(),
             "# from procclean's defaults. Every field can also be set with",
             "# PROCCLEAN_<SERVICE>_<FIELD> (for make) or --set SERVICE.FIELD=VALUE.",
             "# Paths are relative to this folder.",
             "", "[procclean]", "services = %s" % " ".join(s.name for s in found)]
    for service in found:
        lines += [""] + render_section(service)
    config_text = "\n".join(lines) + "\n"
    path = os.path.join(".", CONFIG_FILE)
    outcome = "would-write" if ctx.dry_run else \
        "kept" if os.path.exists(path) and not ctx.force else "written"
    if outcome == "written":
        try:
            # A new file renamed into place: never written through a FIFO or a link.
            write_atomic(path, config_text.encode("utf-8"))
        except OSError as exc:
            raise ProcCleanError("err_cannot_write", EXIT_FAILED, path=path,
                                 error=exc.strerror)
    # (from backend/: the project's procclean.ini at the root, named so)
    out.say({"would-write": "init_would_write", "kept": "init_config_kept",
             "written": "init_wrote"}[outcome],
            path=os.path.join(ctx.root or "", CONFIG_FILE))
    if ctx.dry_run:
        out.line(config_text)
    out.add("files", {"path": CONFIG_FILE, "outcome": outcome, "text": config_text})
    return outcome


def kept_services(found):
    """The services of the procclean.ini init keeps: those whose targets it adds (not a
    `start-backend` for the layout's backend where the ini has api and web) and whose
    files .gitignore wants."""
    try:
        config = load_config(folder=".", environ={})
    except ProcCleanError:
        return found
    kept = [config.services[name] for name in config.default_names]
    return [FoundService(s.name, {"command": s.command, "pidfile": s.pidfile,
                                  "logfile": s.logfile}, "") for s in kept]


def make_procclean_line():
    """(PROCCLEAN value, message key saying why, its values): how make runs procclean
    from the project root.  `-m tools.procclean` where that name imports this very
    file, so its bytecode stays cached, else the script form (never PYTHONPATH=tools:
    the services would inherit it).  -S: no `site`, whose .pth files can cost more than
    procclean's start-up; it needs only the standard library, its services run without."""
    import shlex
    rel = procclean_path()
    parts = rel[:-3].split(os.sep) if rel.endswith(".py") else []
    dotted = ".".join(parts)
    if os.path.isabs(rel):
        return "$(PYTHON) -S " + shlex.quote(rel), "lay_outside", {"path": rel}
    if parts and all(re.match(r"^[A-Za-z_]\w*$", p) for p in parts) and run_program(
            [sys.executable or "python3", "-B", "-c", _MODULE_FILE, dotted],
            ".")[1].strip() == os.path.abspath(__file__):
        key = "lay_root" if len(parts) == 1 else "lay_module"
        return "$(PYTHON) -S -m " + dotted, key, {"path": rel, "module": dotted}
    return "$(PYTHON) -S " + shlex.quote(rel), "lay_script", {"path": rel}


# Top-level module names setuptools' automatic discovery of a flat layout passes over
# (FlatLayoutModuleFinder.DEFAULT_EXCLUDE), and the same for package folders.
_SETUPTOOLS_SKIPS = ("setup", "conftest", "test", "tests", "example", "examples", "build",
                     "toxfile", "noxfile", "pavement", "dodo", "tasks", "fabfile",
                     "sconstruct", "conanfile", "manage", "benchmark", "benchmarks",
                     "exercise", "exercises", "tools", "scripts", "docs", "dist", "venv")


def setuptools_modules(folder):
    """The root's modules (procclean among them) when setuptools would find them by
    itself, or None: a setup.py or a pyproject whose build backend is setuptools, naming
    no modules or packages, and no package folder at the root.  Then `pip install .`
    stops at "Multiple top-level modules discovered in a flat-layout".  (A pyproject with
    no build backend, as uv writes for an app, is not built: not asked.)"""
    texts = [_read_text(os.path.join(folder, name), 65536) for name in
             ("setup.py", "pyproject.toml", "setup.cfg")]
    backend = re.search(r"^\s*build-backend\s*=\s*['\"]([\w.:]+)", texts[1] or "", re.M)
    if not texts[0] and not (backend and "setuptools" in backend.group(1)):
        return None
    if any(re.search(r"\bpy[_-]modules\b|\bpackages\s*=|\[tool\.setuptools\.packages\b",
                     t or "") for t in texts):
        return None
    names = _listdir(folder)
    if any(os.path.isfile(os.path.join(folder, n, "__init__.py")) for n in names
           if n.lower() not in _SETUPTOOLS_SKIPS and n.isidentifier()):
        return None
    modules = sorted(n[:-3] for n in names if n.endswith(".py") and n[:-3].isidentifier()
                     and n[:-3].lower() not in _SETUPTOOLS_SKIPS)
    return modules if len(modules) > 1 and "procclean" in modules else None


# Prints the file `python -m DOTTED` runs, looking a.b up on a's path: find_spec("a.b")
# would import (run) package a (and -B writes no bytecode cache in the project).
_MODULE_FILE = ("import importlib.util, importlib.machinery, os, sys\n"
                "parts = sys.argv[1].split('.')\nspec = importlib.util.find_spec(parts[0])\n"
                "for i in range(1, len(parts)):\n"
                "    path = spec and spec.submodule_search_locations\n"
                "    spec = path and importlib.machinery.PathFinder.find_spec(\n"
                "        '.'.join(parts[:i + 1]), list(path))\n"
                "print(os.path.abspath(spec.origin) if spec and spec.origin else '')\n")


def say_gitignore(ctx, found):
    """The .gitignore lines missing: pidfiles (.state, .start), logs (.1), the bytecode
    cache, the port offset (a checkout's own: a clone settles on its own)."""
    import fnmatch
    rules = [l.strip().lstrip("/").rstrip("/") for l in _text(".gitignore").splitlines()
             if l.strip() and not l.startswith(("#", "!"))]
    wanted = [("__pycache__", "__pycache__/"), (OFFSET_FILE, OFFSET_FILE)]
    for service in found:
        for path, suffix in ((service.value("pidfile"), ".state"),
                             (service.value("pidfile"), START_SUFFIX),
                             (service.value("logfile"), ".1")):
            if os.path.isabs(path) or path.startswith(".."):
                continue                # (not in the repo: /tmp/api.pid)
            name = os.path.basename(path)
            ext = os.path.splitext(name)[1]
            glob = "*" + ext if ext in (".pid", ".log") else name  # not *.txt, *.out
            wanted += [(name, glob), (name + suffix, glob + suffix)]
    missing = list(dict.fromkeys(line for path, line in wanted      # each once, in order
                                 if not any(fnmatch.fnmatchcase(path, r) for r in rules)))
    if missing:
        ctx.out.say("init_gitignore", lines=" ".join(missing))


def cmd_init(ctx, makefile=False, replace=False):
    """Write a commented procclean.ini of what the repo says, print (or add) make
    targets, say what .gitignore lacks."""
    out = ctx.out
    # Without --makefile, make is not asked (reading a Makefile runs its $(shell ...)
    # calls and remakes its included files): its text is read.
    mk = read_makefile_for_init(ctx, ask=makefile)
    if not isinstance(mk, MakefileRead):
        if makefile:
            return mk                   # unsafe to edit, or make rejects it: said
        mk = None
    missing = []
    found = detect_project(missing)
    secrets = dotenv_secrets()      # (once: procclean.ini, --replace, what is kept)
    if mk is not None and mk.text is not None:
        mk.services, mk.plans = analyse_makefile(".", mk.name, mk.info, found)
        mk.secrets = secrets
        found = found_with_makefile(mk.services, found)
        _proxied_port(found)        # (a recipe's server whose port init cannot read)
    missing = [miss for miss in missing if not any(s.name == miss[2].name for s in found)]
    if not found:
        say_missing(ctx, missing)
        out.say("init_nothing")
        return EXIT_OK
    for service in found:
        out.say("init_found", svc=service.name, what=service.what)
        out.add("services", {"service": service.name, "found": service.what,
                             "settings": service.fields, "sources": service.sources})
    say_toolchains(ctx, found)
    say_missing(ctx, missing)
    if write_config(ctx, found, secrets) == "kept":
        found = kept_services(found)
    line, key, values = make_procclean_line()
    modules = key == "lay_root" and setuptools_modules(".")
    if modules:
        out.warn("init_setuptools_modules", modules=", ".join(modules))
    if makefile:
        code = update_makefile(ctx, found, line, (key, values), replace, mk)
    else:
        code = EXIT_OK
        targets = procclean_targets(found)
        out.say("init_layout", cmd=line, why=out.text(key, **values))
        out.say("init_paste", prog=prog_command())
        paste = "\nPYTHON ?= python3\nPROCCLEAN ?= %s\n.PHONY: %s\n\n%s" % (
            line, " ".join(targets), makefile_rules(targets))
        out.line(paste)
        out.add("files", {"path": "Makefile", "outcome": "to-paste", "text": paste})
    say_gitignore(ctx, found)
    return code


# -- init --makefile: what make knows, then an addition make accepts ----------------

MAKEFILE_NAMES = ("GNUmakefile", "makefile", "Makefile")    # the order GNU make reads
MAKEFILE_LIMIT = 1 << 20
MAKE_ENV_DROP = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEFILES", "MAKEOVERRIDES")


# ---------------------------------------------------------------------------
# Command init: the Makefile (its services, --replace)
# ---------------------------------------------------------------------------

def makefile_rules(targets, prefix="\t", args="ARGS"):
    """The rules of `targets`: one procclean call given $(ARGS) (`make logs ARGS=-f`)."""
    return "\n".join("%s:\n%s@$(PROCCLEAN) $@ $(%s)\n" % (t, prefix, args) for t in targets)


def procclean_targets(found):
    """The targets init writes: none that starts a service with no command."""
    runs = [s.name for s in found if s.command.strip()]
    starts = ("dev", "start", "restart")
    targets = [t for t in ("dev", "start", "stop", "restart", "status", "show-processes",
                           "logs", "clean", "force-clean", "doctor")
               if runs or t not in starts]
    return targets + [verb + "-" + s.name for s in found
                      for verb in ("start", "stop", "restart", "force-clean")
                      if s.name in runs or verb not in starts]


class MakeRule(_Record):
    """One rule of a Makefile's text: names (expanded), head and prerequisites, recipe
    lines (`at`: their indexes), lines [start, end), prefix, comment (`## help`), file."""

    __slots__ = ("names", "head", "colons", "prereqs", "recipe", "start", "end", "prefix",
                 "comment", "at", "file")
    DEFAULTS = {"file": None}


_ASSIGN_RE = r"^(?:override\s+|export\s+)?([^\s:#=$]+)\s*(\?|::?|:::|\+|!)?=\s*(.*)$"
_HEAD_RE = r"^([^\s:#=][^:=]*?)\s*(::?)(?!=)(.*)$"


def _logical_lines(text, prefix=None):
    """(first line index, next index, line) with backslash-newline joined as make joins
    a Makefile's lines (the spaces around it one space); given the `prefix` of recipe
    lines ("" for a shell script), as sh runs a command: make keeps it in a recipe and
    drops the prefix after it, sh drops it and keeps every space (GNU make, "Splitting
    Recipe Lines"; in single quotes too, as `sh -c '...'` does)."""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        start, line = i, lines[i]
        while line.endswith("\\") and (len(line) - len(line.rstrip("\\"))) % 2 \
                and i + 1 < len(lines):
            i += 1
            if prefix is None:
                line = line[:-1].rstrip() + " " + lines[i].lstrip()
            else:
                line = line[:-1] + lines[i][len(prefix) if prefix and lines[i].startswith(
                    prefix) else 0:]
        i += 1
        yield start, i, line


def parse_makefile_text(text, prefix="\t", variables=None):
    """(rules, final recipe prefix, includes) of a Makefile; variables go in `variables`."""
    variables = {} if variables is None else variables
    rules, includes, rule, depth = [], [], None, 0
    lines = text.split("\n")

    def expand(words, level=0):
        out = []
        for word in words:
            ref = re.match(r"^\$[({]([A-Za-z_.][A-Za-z0-9_.]*)[)}]$", word)
            if ref and level < 5:
                out.extend(expand(variables.get(ref.group(1), "").split(), level + 1))
            else:
                out.append(word)
        return out

    for start, end, line in _logical_lines(text):
        define = re.match(r"^\s*(?:override\s+|export\s+)?define\b", line)
        if depth:
            depth += 1 if define else (-1 if re.match(r"^\s*endef\b", line) else 0)
            continue
        if rule is not None and line.startswith(prefix):
            line = next(_logical_lines("\n".join(lines[start:end]), prefix))[2]
            rule.recipe.append(line[len(prefix):])
            rule.at.append(start)
            rule.end = end
            continue
        if not line.strip() or line.lstrip().startswith("#"):
            continue            # (nor do they end a recipe)
        rule = None
        depth = 1 if define else 0
        if depth:
            continue
        include = re.match(r"^\s*(?:-include|sinclude|include)\s+(.*)$", line)
        assign = re.match(_ASSIGN_RE, line)
        head = re.match(_HEAD_RE, line)
        if include:
            includes.extend(expand(include.group(1).split("#")[0].split()))
        elif assign and not (head and head.start(2) < assign.start(2)):
            variables[assign.group(1)] = assign.group(3).strip()
            if assign.group(1) == ".RECIPEPREFIX":
                prefix = " ".join(expand([assign.group(3).strip()]))[:1] or "\t"
        elif head and not re.match(r"^\s*(ifn?eq|ifn?def|else|endif|export|unexport|vpath)\b",
                                   line):
            prereqs, _, inline = head.group(3).partition(";")
            prereqs, hash_, comment = prereqs.partition("#")    # `stop: ## help text`
            if hash_:       # `dev: ## help (a; b)`: the rest of the line is the comment
                comment, inline = comment + _ + inline, ""
            if "=" in prereqs.replace(":=", ""):
                continue        # a target-specific variable, not a rule
            recipe = [inline.strip()] if inline.strip() else []
            rule = MakeRule(expand(head.group(1).split()), head.group(1).split(),
                            head.group(2), prereqs.split(), recipe, start, end, prefix,
                            (" " + hash_ + comment.rstrip()) if hash_ and not inline else "",
                            [start] * len(recipe))
            rules.append(rule)
    return rules, prefix, includes


class MakeInfo(_Record):
    """What a Makefile defines, as make (or its text) says: targets (name -> file of its
    recipe, or None), pattern targets, recipe prefix, files read, MAKE_VARIABLES it sets,
    make's complaint, PROCCLEAN, other names make knows, its variables (None: text read)."""

    __slots__ = ("targets", "patterns", "prefix", "files", "variables", "error",
                 "procclean_value", "known", "database")
    DEFAULTS = {"variables": (), "error": None, "procclean_value": None, "known": (),
                "database": None}

    def pattern_for(self, name):
        """The pattern target (`stop-%`) that makes `name`, or None."""
        return next((p for p in self.patterns if len(name) >= len(p) and name.startswith(
            p.partition("%")[0]) and name.endswith(p.partition("%")[2])), None)

    def defines(self, name):
        """Whether make knows the name (a target, a prerequisite, a .PHONY entry)."""
        return name in self.known or name in self.targets or self.pattern_for(name) is not None


def _run_make(args, folder, stdin=b""):
    """(exit code, stdout, stderr) of GNU make, or None where there is none."""
    make = _which("make") or _which("gmake")
    if make is None:
        return None
    env = dict(((k, v) for k, v in os.environ.items() if k not in MAKE_ENV_DROP),
               LC_ALL="C")
    result = run_program([make] + args, folder, stdin, env, timeout=120)
    return None if result[0] is None else result


# Read after the Makefile (`-f -`): what `-p` does not print plainly, and a goal with
# nothing to do (else the default goal's $(MAKE) lines run, even under -q).
MAKE_PROBE_GOAL = "procclean--probe"
# The variables init's block sets, and ARGS, which its rules pass to procclean.
MAKE_VARIABLES = ("PYTHON", "PROCCLEAN", "ARGS")
_MAKE_PROBE = (b"$(info procclean-prefix:[$(.RECIPEPREFIX)])\n"
               b"$(info procclean-files:$(MAKEFILE_LIST))\n"
               b"$(info procclean-vars:$(origin PYTHON) $(origin PROCCLEAN) $(origin ARGS))\n"
               b"$(info procclean-value:$(value PROCCLEAN))\n"
               b"procclean--probe: ;\n")
_DB_SECTIONS = ("# Variables", "# Directories", "# Implicit Rules",
                "# Pattern-specific Variable Values", "# Files", "# VPATH Search Paths")


def ask_make(folder, name):
    """MakeInfo from `make -pRrq`'s database, or None without GNU make (BSD's has no -p)."""
    # (MAKECMDGOALS as `make` alone sets it: `PORT := $(filter-out dev,$(MAKECMDGOALS))`
    # reads goals as arguments, and the probe is none)
    result = _run_make(["-pRrq", "-f", name, "-f", "-", MAKE_PROBE_GOAL, "MAKECMDGOALS="],
                       folder, _MAKE_PROBE)
    if result is None or "# GNU Make" not in result[1]:
        return None
    text, err = result[1:]
    errors = [l for l in err.splitlines() if re.match(r"^[^:\s][^:]*:\d+: \*\*\* ", l)]
    probe = dict(re.findall(r"^procclean-(prefix|files|vars|value):(.*)$", text, re.M))
    files = probe.get("files", "").split()[:-1]          # the last one is the probe
    variables = [v for v, origin in zip(MAKE_VARIABLES, probe.get("vars", "").split())
                 if origin in ("file", "override")]
    targets, patterns, known, values, scoped = parse_make_database(text)
    targets.pop(MAKE_PROBE_GOAL, None)
    known -= set([MAKE_PROBE_GOAL] + files)
    return MakeInfo(targets, patterns, probe.get("prefix", "[]")[1:-1][:1] or "\t", files,
                    variables, errors[0] if errors else None,
                    probe.get("value") if "PROCCLEAN" in variables else None, known,
                    (values, scoped))


def parse_make_database(text):
    """(targets, pattern targets, known names, variables, target-specific ones) from
    `make -p`: a target has a recipe or prerequisites (a name only in .PHONY is none)."""
    targets, patterns, known, values, scoped = {}, [], set(), {}, {}
    section = head = None
    done = False            # the rest of this entry says nothing more
    lines = text.splitlines()
    for origin, line in zip([""] + lines, lines):       # origin: the line before
        if line and not line.startswith(("#", "\t", "define ", "endef")):
            assign = re.match(r"^(\S+) (:{0,2}=) ?(.*)$", line)
            own = re.match(r"^([^:#=\s][^:#=]*): (\S+) (:{0,2}=|\+=|\?=) ?(.*)$", line)
            if section == "# Variables" and assign and origin.startswith("# ") and \
                    "automatic" not in origin:
                values[assign.group(1)] = (assign.group(2) == "=", assign.group(3))
            elif section == "# Files" and own and origin.startswith("# makefile"):
                for target in own.group(1).split():
                    scoped.setdefault(target, {})[own.group(2)] = (
                        own.group(3) != ":=", own.group(4))
        recipe = re.match(r"^#  recipe to execute \(from '(.*)', line \d+\):$", line)
        if section == "# Files" and re.match(r"^[^\s:=#][^:=#]*::?(?!=)", line) and \
                not re.match(r"^[^:]*: \S+ (:{0,2}|\+|\?)=", line):
            names, _, rest = line.partition(":")
            known.update(n for n in names.split() + rest.lstrip(":").split()
                         if n != "|" and "%" not in n and not n.startswith("."))
        if not line or line in _DB_SECTIONS:       # an entry (or a section) ends
            section = line or section
            head, done = None, False
        elif done or section not in ("# Implicit Rules", "# Files"):
            continue
        elif line == "# Not a target:":
            done = True
        elif recipe and head:
            targets.update(dict.fromkeys(head, recipe.group(1)))
            done = True
        elif not line.startswith("#") and head is None and ":" in line:
            names, _, rest = line.partition(":")
            names = [n for n in names.split() if not n.startswith(".")]
            if section == "# Implicit Rules":
                patterns.extend(names)
                done = True         # the rest is its recipe (`@echo start: $*` is no rule)
                continue
            head = names
            if rest.lstrip(":").strip():            # prerequisites, or order-only ones
                for name in head:
                    targets.setdefault(name, None)
    return targets, patterns, known, values, scoped


def read_makefile(folder, name):
    """MakeInfo read from the text (without make): the file and those it includes."""
    import glob
    targets, patterns, files, variables, known = {}, [], [], set(), set()
    prefix, value, queue = "\t", None, [name]
    while queue and len(files) < 50:
        path = queue.pop(0)
        text = _read_text(os.path.join(folder, path))
        if text is None or path in files:
            continue
        files.append(path)
        assigned = {}
        rules, prefix, includes = parse_makefile_text(text, prefix, assigned)
        for rule in rules:
            known.update(w for w in rule.names + rule.prereqs
                         if "%" not in w and w != "|" and not w.startswith("."))
            for target in rule.names:
                if "%" in target:
                    patterns.append(target)
                elif not target.startswith(".") and (rule.recipe or rule.prereqs):
                    targets.setdefault(target, path)
        variables.update(v for v in MAKE_VARIABLES if v in assigned)
        value = assigned.get("PROCCLEAN", value)
        for pattern in includes:
            found = sorted(os.path.relpath(p, folder)
                           for p in glob.glob(os.path.join(folder, pattern)))
            queue.extend(found or [pattern])
    return MakeInfo(targets, patterns, prefix, files, variables,
                    procclean_value=value, known=known)


# -- init: what a Makefile's recipes do to processes -------------------------------
# A recipe, expanded as make expands it, is read as sh reads it.  Each simple command
# becomes a fact (a launch, a stop, a look, a file removed, a sub-make, other work);
# facts that share a pidfile, a port, a pattern or a service name are one service.

_SHELL_OPS = ("&&", "||", ";;", "&>>", "&>", ">>", ">&", ">|", "<<", ";", "&", "|", ">",
              "<", "(", ")", "\n")
_SHELL_KEYWORDS = ("if", "then", "else", "elif", "do", "while", "until", "!", "{", "}")
_SHELL_ENDS = ("fi", "done", "esac", "}", "then", "else", "do")


def _closing(text, i, opening="(", closing=")", quotes="'\""):
    """The index of the bracket closing the `$(` whose inside starts at i."""
    depth, quote = 1, None
    for j, c in enumerate(text[i:], i):
        if quote:
            quote = None if c == quote else quote
        elif c in quotes:
            quote = c
        elif c in (opening, closing):
            depth += 1 if c == opening else -1
            if not depth:
                return j
    return len(text)


class ShellWord(_Record):
    """A word as sh sees it: unquoted, as written, its $(...), whether part was quoted."""
    __slots__ = ("text", "raw", "subs", "quoted")


def shell_tokens(text):
    """The words (ShellWord) and operators (str) of a shell script, in order."""
    tokens, word, i = [], None, 0
    while i < len(text):
        c = text[i]
        if word is None and c == "#":
            i = text.find("\n", i) if "\n" in text[i:] else len(text)
            continue
        op = next((o for o in _SHELL_OPS if text.startswith(o, i)), None)
        if c in " \t" or op:
            i += len(op) if op else 1
            if op and op[0] in "<>" and word and "".join(word.text).isdigit() \
                    and not word.quoted:
                op, word = "".join(word.text) + op, None      # 2>&1, 2> err.log
            if word is not None:
                tokens.append(word)
                word = None
            if op:
                tokens.append(op)
            continue
        word = word or ShellWord([], [], [], False)
        i = _shell_word_part(text, i, word)
    if word is not None:
        tokens.append(word)
    for token in tokens:
        if isinstance(token, ShellWord):
            token.text, token.raw = "".join(token.text), "".join(token.raw)
    return tokens


def _shell_word_part(text, i, word):
    """Read the part of a word at i into `word`; the index after it."""
    c = text[i]
    if c == "\\":
        word.text.append(text[i + 1:i + 2])
        word.raw.append(text[i:i + 2])
        return i + 2
    if c in "'`":
        end = text.find(c, i + 1)
        end = len(text) if end < 0 else end
        if c == "`":
            word.subs.append(text[i + 1:end])
        word.text.append(text[i + 1:end] if c == "'" else text[i:end + 1])
        word.quoted = word.quoted or c == "'"
    elif c == '"':
        end, inner = i + 1, []
        while end < len(text) and text[end] != '"':
            if text[end] == "\\" and end + 1 < len(text):
                escaped = text[end + 1]
                inner.append(escaped if escaped in '$`"\\\n' else "\\" + escaped)
                end += 2
            elif text.startswith("$(", end):
                close = _closing(text, end + 2)
                word.subs.append(text[end + 2:close])
                inner.append(text[end:close + 1])
                end = close + 1
            else:
                inner.append(text[end])
                end += 1
        word.text.append("".join(inner))
        word.quoted = True
    elif text.startswith("$(", i):
        end = _closing(text, i + 2)
        word.subs.append(text[i + 2:end])
        word.text.append(text[i:end + 1])
    else:
        word.text.append(c)
        word.raw.append(c)
        return i + 1
    word.raw.append(text[i:end + 1])
    return end + 1


class ShellCommand(_Record):
    """One simple command: words, redirections, the operator after it, NAME=value words,
    how many ( ) subshells it runs in, whether it is the first of one, the redirections
    of the subshell it ends (`( cd api && exec uvicorn ... ) > api.log`)."""
    __slots__ = ("words", "redirs", "after", "assigns", "group", "opens", "outer")

    def argv(self):
        return [w.text for w in self.words]


def shell_commands(text):
    """The simple commands of a shell script, keywords (if, then, do...) left out."""
    commands, redirect, group = [], None, 0
    current = ShellCommand([], [], "", [], 0, False, [])
    for token in shell_tokens(text) + ["\n"]:       # the last command ends there
        if isinstance(token, ShellWord):
            if redirect:
                current.redirs.append((redirect, token))
                redirect = None
            elif not current.words and token.text in _SHELL_KEYWORDS and not token.quoted:
                if current.assigns or current.redirs:
                    current.words.append(token)
            elif not (current.words or current.assigns) and token.text in _SHELL_ENDS \
                    and not token.quoted:
                pass        # `fi else nohup ...`: a compound command's end, a new one next
            elif not current.words and re.match(r"^[A-Za-z_]\w*=", token.raw):
                current.assigns.append(token)       # NAME=value, NAME="$(pwd)"
            else:
                current.words.append(token)
        elif token.lstrip("0123456789") in (">", ">>", "<", "&>", "&>>", ">&", ">|", "<<"):
            redirect = token
        else:
            group += {"(": 1, ")": -1}.get(token, 0)
            if token not in "()" or not commands or current.words or current.assigns:
                current.after = token
            if current.words or current.assigns:
                commands.append(current)
            elif token == ")" and commands and commands[-1].after in ("", "\n"):
                commands[-1].after = ";"
            elif token != "(" and commands and commands[-1].after == ")":
                commands[-1].after = token      # `(cd web && npm run dev) &`
                commands[-1].outer = current.redirs     # `( ... ) > web.log &`
            current = ShellCommand([], [], "", [], max(group, 0), token == "(" or (
                current.opens and not (current.words or current.assigns)), [])
    return [c for c in commands
            if c.assigns or not (len(c.words) == 1 and c.words[0].text in _SHELL_ENDS)]


class MakeFact(_Record):
    """One thing a recipe line does.  kind: launch (`command` in `cwd`, `background` or
    not, output to `logfile`, PID to `pidfile`), stop (signals what `pidfile`, `pattern`
    or `port` finds; `signal` term or kill), look (`captured`: its PIDs kept or tested,
    not shown), remove (`path`), make (runs `goals`, of the Makefile in `cwd` whose facts
    follow), other (`text`), layout (the service init found).  `together`: a dev
    session's foreground run; `problem` (message key, values): why procclean cannot carry
    it; `where`: (target, file, line)."""

    __slots__ = ("kind", "where", "pidfile", "pattern", "port", "signal", "command", "argv",
                 "cwd", "logfile", "background", "path", "goals", "text", "problem",
                 "name", "service", "knob", "together", "hits", "captured")
    DEFAULTS = dict.fromkeys(__slots__[2:])

    def key(self):
        """What ties it to other facts of the same service."""
        keys = [(k, getattr(self, k)) for k in ("pidfile", "port", "pattern", "name")
                if getattr(self, k)]
        folder = os.path.normpath(self.cwd or ".")
        if self.kind == "layout" or self.kind == "launch" and (
                self.background or not self.problem):
            keys.append(("command", (re.sub(r"^(\{python\}|python3?)(?=\s)", "python",
                                            self.command or ""), folder)))
        # `cd backend && flask run &` runs what the layout found in backend/ (app.py)
        if folder != "." and self.kind == "layout" and self.name in ("backend", "frontend"):
            keys.append(("folder", (folder, self.name)))
        elif folder != "." and self.kind == "launch" and self.background and _may_serve(
                *_program((self.argv or "").split())[:2]):      # (not `npm run watch &`)
            keys.append(("folder", (folder, _kind_of_program(self.argv))))
        return keys


# Programs that serve: running one is a launch even without `&` (http: -m http.server).
_SERVER_RE = (r"^(uvicorn|gunicorn|hypercorn|daphne|granian|waitress-serve|flask|fastapi|"
              r"node|nodemon|tsx|ts-node(?:-dev)?|tsnd|vite|next|nuxt|serve|http-server|"
              r"http|rails|unicorn|unicorn_rails|puma|thin|rackup|hugo|jekyll|air|reflex|"
              r"celery|rq|arq|dramatiq|huey|php|caddy|cargo|mvnw?|gradlew?|dotnet|mix|deno|"
              r"java|CompileDaemon|gow|wgo)$")
_WRAPPERS = ("nohup", "setsid", "exec", "command", "time", "nice", "stdbuf", "env")
_RUNNERS = ("uv", "poetry", "pipenv", "pdm", "rye", "hatch", "bundle", "npx", "pnpx",
            "bunx")
# Their options that take the next word as a value (`nice -n 5 uvicorn`: uvicorn runs).
_VALUE_OPTIONS = {
    "nice": ("-n", "--adjustment"), "stdbuf": ("-i", "-o", "-e"),
    "time": ("-f", "--format", "-o", "--output"),
    "uv": ("--with", "--with-requirements", "--with-editable", "--python", "-p",
           "--project", "--directory", "--package", "--env-file", "--extra", "--group",
           "--index"),
    "poetry": ("-C", "--directory", "-P", "--project"),
    "npx": ("-p", "--package"), "pnpx": ("-p", "--package"), "bunx": ("-p", "--package"),
    "concurrently": ("-n", "--names", "-c", "--prefix-colors", "-p", "--prefix", "-s",
                     "--success", "--restart-tries", "-t", "--timestamp-format"),
}
_DAEMON_FLAGS = ("-D", "--daemon", "--daemonize", "--detach", "-daemon", "--background")
# Options that run a tool in another folder, as `cd DIR &&` would (`npm --prefix web run
# dev`; npm reads options up to `--`, the others before the command), or in a workspace's
# (`npm run dev -w web`, `pnpm --filter web dev`, `yarn workspace web dev`).
_FOLDER_OPTIONS = {"npm": ("--prefix", "-C"), "pnpm": ("-C", "--dir"), "yarn": ("--cwd",),
                   "bun": ("--cwd",), "uv": ("--directory",), "go": ("-C",)}
_WORKSPACE_OPTIONS = {"npm": ("--workspace", "-w"), "pnpm": ("--filter", "-F"),
                      "yarn": ("workspace",), "bun": ("--filter",)}


def _moved(words):
    """(the words without a folder option, `npm --prefix web`, that folder or None)."""
    argv = [getattr(w, "text", w) for w in words]
    at = 0
    while at < len(argv) and os.path.basename(argv[at]) in _WRAPPERS:
        at += 1                 # nohup npm --prefix web run dev
    tool = os.path.basename(argv[at]) if at < len(argv) else ""
    workspaces = _WORKSPACE_OPTIONS.get(tool, ())
    names = _FOLDER_OPTIONS.get(tool, ()) + workspaces
    i = at + 1
    while names and i < len(argv) and argv[i] != "--":
        name, eq, value = argv[i].partition("=")
        if name in names and (eq or i + 1 < len(argv)):
            drop, folder = ((i,), value) if eq else ((i, i + 1), argv[i + 1])
            if name in workspaces:
                folder = _workspace_dir(folder)
            if folder is None:
                break           # a workspace init cannot find: the command as it is
            return [w for n, w in enumerate(words) if n not in drop], folder
        if not argv[i].startswith("-") and tool != "npm" and not (
                tool == "uv" and argv[i] == "run"):
            break
        i += 2 if argv[i] in _VALUE_OPTIONS.get(tool, ()) else 1
    return list(words), None


def _workspace_dir(name):
    """The folder of the workspace `name` (`-w web`, `--filter @shop/web`): that path,
    else the folder at the top, in apps/, services/ or packages/ whose package.json has
    that name; None where there is none."""
    import json
    for folder in [name] + _with_others(FRONTEND_DIRS, ("package.json",)):
        try:
            named = json.loads(_text(folder, "package.json")).get("name")
        except (ValueError, AttributeError):
            continue
        if named == name or os.path.normpath(folder) == os.path.normpath(name):
            return os.path.normpath(folder)
    return None


_NODE_TOOLS = ("npm", "pnpm", "yarn", "bun")
# What Django's manage.py serves with (django-extensions, django-q, django-rq).
_MANAGE_SERVERS = ("runserver", "runserver_plus", "qcluster", "rqworker", "runworker")
# A package script a command runs, and the words of its name that say it serves.
_NODE_SCRIPT_RE = (r"^(?:npm|pnpm|yarn|bun)\s+(?:-\S+\s+)*(?:run\s+(?:-\S+\s+)*)?"
                   r"(\w[\w:.-]*)")       # (past its options: `npm run -s dev:api`)
_SERVE_SCRIPTS = ("dev", "start", "serve", "preview")
# What runs a Procfile's entries, with the word that asks it to.
_PROCFILE_RUNNERS = {"honcho": "start", "foreman": "start", "forego": "start",
                     "nf": "start", "overmind": "start", "heroku": "local"}
# What each reads besides the Procfile (`.foreman`'s `port: 3000`, OVERMIND_PORT).
_RUNNER_FILES = {"foreman": ".foreman", "forego": ".forego", "overmind": ".overmind.env"}
_STOP_SIGNALS = {"": "term", "TERM": "term", "15": "term", "INT": "term", "2": "term",
                 "QUIT": "term", "3": "term", "KILL": "kill", "9": "kill"}
_PASS_FILTERS = ("awk", "cut", "tr", "head", "tail", "sort", "uniq", "sed", "wc", "tee",
                 "column", "paste")


def _program(words):
    """(program, args, wrappers) of a command, past nohup, `uv run`, `npx`..."""
    words = list(words)
    wrappers = []
    while words:
        prog = os.path.basename(words[0])
        # a package manager running a bin (`pnpm exec next dev`, `pnpm next dev`)
        runner = prog in _RUNNERS and len(words) > 1 or prog in _NODE_TOOLS and \
            len(words) > 2 and (words[1] in ("exec", "dlx", "x") or re.match(
                _SERVER_RE, words[1]) and words[1] not in _SERVE_SCRIPTS)
        # `python -m uvicorn`, `ruby -S rackup`: the module or script it runs
        if len(words) > 2 and (re.match(r"^python[\d.]*$", prog) and words[1] == "-m" or
                               prog == "ruby" and words[1] == "-S"):
            return words[2].split(".")[0], words[3:], wrappers + words[:2]
        if not runner and prog not in _WRAPPERS or prog == "command" and words[1:2] in (
                ["-v"], ["-V"]):
            break       # (`command -v air`: a look-up, which runs nothing)
        wrappers.append(words.pop(0))
        while prog == "env" and words and re.match(r"^[A-Za-z_]\w*=", words[0]):
            wrappers.append(words.pop(0))       # env PORT=8080 build/server
        if runner and words and words[0] in ("run", "exec", "dlx", "x"):
            wrappers.append(words.pop(0))
        while words and words[0].startswith("-") and prog != "exec":
            wrappers.append(words.pop(0))
            if wrappers[-1] in _VALUE_OPTIONS.get(prog, ()) and words:
                wrappers.append(words.pop(0))
    if not words:
        return "", [], wrappers
    if words[0].endswith(".py") and "run" in wrappers:     # `uv run src/main.py`
        return "python", words, wrappers
    return os.path.basename(words[0]), words[1:], wrappers


# The words these programs serve only with (`flask run`, not `flask db upgrade`).
_SERVE_WORDS = {"flask": ("run",), "rails": ("server", "s"), "next": ("dev", "start"),
                "nuxt": ("dev", "start", "preview"), "fastapi": ("dev", "run"),
                "celery": ("worker", "beat", "multi", "flower"), "rq": ("worker",),
                "hugo": ("server", "serve"), "jekyll": ("serve", "s", "server"),
                "php": ("-S", "serve"), "thin": ("start",), "caddy": ("run",),
                "cargo": ("run", "watch"), "mvn": ("spring-boot:run", "quarkus:dev"),
                "gradle": ("bootRun", "quarkusDev"), "dotnet": ("run", "watch"),
                "mix": ("phx.server",), "deno": ("run", "task"), "java": ("-jar",)}
_SERVE_WORDS["mvnw"] = _SERVE_WORDS["mvn"]
_SERVE_WORDS["gradlew"] = _SERVE_WORDS["gradle"]


# Python modules run with -m that are tasks (a module of the project's runs on).
_PYTHON_TASKS = ("pip", "pytest", "unittest", "alembic", "mypy", "black", "ruff", "isort",
                 "flake8", "coverage", "build", "twine", "venv", "compileall", "playwright")


def _runs_on(prog, args, wrappers):
    """Whether a command runs on, not a task that ends (`docker compose up -d &`)."""
    return _is_server(prog, args) or wrappers[-1:] == ["-m"] and prog not in _PYTHON_TASKS


def _is_server(prog, args):
    if re.match(_SERVER_RE, prog):
        if prog == "vite":
            return args[:1] not in (["build"], ["optimize"])
        return prog not in _SERVE_WORDS or any(a in _SERVE_WORDS[prog] for a in args)
    if prog in _NODE_TOOLS:         # `npm run dev`, `npm run start:api:dev`, not `dev:seed`
        script = _node_script(args)
        return bool(set(re.split(r"[:_-]", script)) & set(_SERVE_SCRIPTS)) and \
            not re.search(_TASK_TARGET_RE, script)
    script = _python_script(prog, args)
    if script:
        return not (script.endswith("manage.py") and not set(args) & set(_MANAGE_SERVERS))
    if prog == "go":
        return args[:1] == ["run"]
    return prog.startswith("./")


def _may_serve(prog, args):
    """Whether a command may be a server: one _is_server knows, or a program it cannot
    tell (`python -c "...run_server()"`); not a package script's task or watcher (`npm
    run watch`), a manage.py task, or a `--watch` rebuild (`tailwindcss --watch`)."""
    if _is_server(prog, args):
        return True
    told = prog in _NODE_TOOLS or _python_script(prog, args) or prog == "go"
    return not told and "--watch" not in args


def _node_script(args):
    """The package script `npm run -s dev` (its args) runs: dev."""
    return ([a for a in args if a != "run" and a[:1] != "-"] or [""])[0]


def _builds(words):
    """Whether a command runs a package script that is a task (`npm run build`, `pnpm
    test`), not a watcher (`build:watch`): started in the background, it ends."""
    prog, args = _program(_moved(words)[0])[:2]
    script = _node_script(args)
    return prog in _NODE_TOOLS and bool(re.search(_TASK_TARGET_RE, script)) and \
        not re.search(r"(?:^|[-_:])watch", script)


def _shows_output(prog, args):
    """Whether a command shows what others write (`tail -F web.log`, `journalctl -fu api`,
    a `logs` subcommand: `docker compose logs -f api`, `pm2 logs`, `heroku logs --tail`):
    run in the background beside the services, it is none of them."""
    subcommand = [a for a in args if not a.startswith("-")][:1]
    if prog in VIEWERS:
        return True
    return subcommand == ["logs"] or "logs" in args and prog in (
        "docker", "docker-compose", "podman", "podman-compose", "kubectl")


def _python_script(prog, args):
    """The script a python command runs (`python -u main.py data.csv`), or None."""
    script = next((a for a in args if not a.startswith("-")), "")
    return script if re.match(r"^python[\d.]*$", prog) and script.endswith(".py") else None


# What a command-line tool's script shows: it reads its arguments, or asks its user
# (a chat in the terminal), which nothing procclean starts can answer.
_CLI_RE = r"\b(?:sys\.argv|argparse|optparse|click|typer|docopt)\b"
_ASKS_RE = r"\binput\(|\bsys\.stdin\b|\bgetpass\b|\bprompt_toolkit\b|\bPrompt\.ask\b"
_PORT_FLAGS = ("--port", "--server.port", "--http-port", "-port")     # -port: Go's flag
# Flags whose value is HOST:PORT or :PORT (gunicorn -b, Go's -addr :8080, -http=:8080)
_ADDR_FLAGS = ("--bind", "-b", "--listen", "-listen", "--addr", "-addr", "--http", "-http",
               "--address", "-address")
_SHORT_PORT = _NODE_TOOLS + ("next", "vite", "serve", "rails", "puma", "http-server", "hugo",
                             "flask", "nuxt", "unicorn", "unicorn_rails", "rackup", "thin")


def _options(args):
    """(name, value) of each word: `--port=8000`, or `--port 8000`."""
    return [(a.partition("=")[0], a.partition("=")[2] if "=" in a else b)
            for a, b in zip(args, args[1:] + [""])]


def launch_port(prog, args, assigns):
    """The TCP port a command line asks its server to listen on, or None."""
    ports = [a[5:] for a in assigns if re.match(r"^PORT=\d{2,5}$", a)]
    if ports:
        return ports[0]
    options = _options(args)
    for name, value in options:
        # (-p PORT: a program's own flag, or Flask-Script's `runserver -h HOST -p PORT`)
        short = name == "-p" and (prog in _SHORT_PORT or "--" in args
                                  or "runserver" in args)
        if (name in _PORT_FLAGS or short) and re.match(r"^\d{2,5}$", value):
            return value
    for name, value in options:     # after a port flag (see with_port)
        match = re.match(r"^(?:\S*:)?(\d{2,5})$", value)
        if name in _ADDR_FLAGS and match:
            return match.group(1)
    if prog == "http":                  # python -m http.server 8075: _program's "http"
        args = ["http.server"] + list(args)
    for word in ("runserver", "runserver_plus", "http.server"):
        if word in args:
            rest = [a for a in args[args.index(word) + 1:] if not a.startswith("-")]
            match = re.match(r"^(?:\S*:)?(\d{2,5})$", rest[0]) if rest else None
            return match.group(1) if match else "8000"      # both serve 8000 by default
    return None


def _launch_pidfile(prog, args):
    """The pidfile a server writes itself (gunicorn --pid, rails's own)."""
    for name, value in _options(args):
        if name in ("--pid", "--pidfile", "--pid-file") or (name == "-p" and prog in (
                "gunicorn", "unicorn", "thin")) or (
                    name == "-P" and prog in ("puma", "rails")):
            return value or None
    return RAILS_PIDFILE if prog == "rails" and args[:1] in (["server"], ["s"]) else None


_GREP_LONG = {"--extended-regexp": "E", "--fixed-strings": "F", "--word-regexp": "w",
              "--ignore-case": "i", "--invert-match": "v"}


def grep_pattern(args):
    """(regex, None) of `grep ARGS`; (None, None): `grep -v grep`; else (None, why)."""
    flags, patterns, i = set(), [], 0
    while i < len(args):
        arg = args[i]
        if arg == "-e" and i + 1 < len(args):
            patterns.append(args[i + 1])
            i += 1
        elif arg.startswith("-") and len(arg) > 1 and not patterns:
            flags.update(_GREP_LONG.get(arg, "") if arg.startswith("--") else arg[1:])
        else:
            patterns.append(arg)
        i += 1
    if len(patterns) != 1:
        return None, "mk_pattern_files"
    text = patterns[0]
    if "v" in flags:
        return (None, None) if text in ("grep", "[g]rep") else (None, "mk_pattern_invert")
    regex = re.escape(text) if "F" in flags else text if "E" in flags else bre_to_ere(text)
    if "[[:" in regex or re.search(r"\\[1-9]", regex):
        return None, "mk_pattern_posix"
    if "w" in flags:
        regex = r"(?<![\w])(?:%s)(?![\w])" % regex
    if "i" in flags:
        regex = "(?i)" + regex
    try:
        re.compile(regex)
    except re.error:
        return None, "mk_pattern_posix"
    return regex, None


def grep_all(patterns):
    """One regex for the lines `grep A | grep B` keeps (up to three greps): each order of
    them, an alternative of each at a time (`a.*c|b.*c|c.*a|c.*b`, which the linear
    matcher reads, not `(a|b).*c`), or None (more, some ignoring case and some not)."""
    import itertools
    cases = set(p.startswith("(?i)") for p in patterns)
    if len(patterns) > 3 or len(cases) > 1:
        return None
    bare = [p[4:] if p.startswith("(?i)") else p for p in patterns]
    try:
        parts = [_alternatives(p) for p in bare]
    except _Unsupported:
        parts = [["(%s)" % p if "|" in p else p] for p in bare]    # re reads it
    orders = "|".join(".*".join(words) for order in itertools.permutations(parts)
                      for words in itertools.product(*order))
    return ("(?i)" if True in cases else "") + orders


def bre_to_ere(text):
    """A basic regular expression (where \\( \\| \\{ ... are the operators) as an ERE."""
    def swap(match):
        char = match.group(1)
        if char is None:
            return "\\" + match.group(0)
        return char if char in "()|+?{}" else match.group(0)
    return re.sub(r"\\(.)|[()|+?{}]", swap, text, flags=re.S)


def kill_signal(args):
    """(signal name without SIG, the remaining words) of `kill ARGS`."""
    signal, rest = "", list(args)
    if rest[:1] in (["-s"], ["-n"], ["--signal"]) and len(rest) > 1:
        signal, rest = rest[1], rest[2:]
    elif rest and re.match(r"^-(?:[A-Za-z][A-Za-z0-9+]*|\d+)$", rest[0]):
        signal, rest = rest[0][1:], rest[1:]
    if rest[:1] == ["--"]:
        rest = rest[1:]         # kill -- -PID: the words after it are PIDs (a group's)
    return re.sub(r"^SIG", "", signal.upper()), rest


def _pkill_signal(args):
    """(signal, the other words) of `pkill ARGS`: -9, -KILL, --signal X; not -f."""
    signal, rest, i = "", [], 0
    while i < len(args):
        if args[i] == "--signal" and i + 1 < len(args):
            signal = args[i + 1]
            i += 1
        elif re.match(r"^-(?:\d+|(?:SIG)?[A-Z]{2,}\d*)$", args[i]):
            signal = args[i][1:]
        else:
            rest.append(args[i])
        i += 1
    return re.sub(r"^SIG", "", signal.upper()), rest


_HARMLESS_PROGRAMS = ("echo", "printf", "sleep", "true", "false", ":", "exit", "return",
                      "wait", "fg", "disown", "[", "[[", "test", "set", "trap", "cat",
                      "date", "clear", "tput", "read", "break", "continue", "shift", "ps",
                      "popd", "command", "which", "type")
_NOT_A_NAME = ("start", "stop", "run", "restart", "kill", "status", "dev", "serve", "up",
               "down", "all", "debug", "watch", "local", "live", "prod", "daemon", "force",
               "develop", "development", "production", "bounce", "reboot", "rerun",
               "reset", "cleanup",
               "clean", "logs", "log", "tail", "reload", "graceful", "check", "help", "ps",
               "port", "ports", "servers", "services", "everything",
               "pid", "pids", "pidfile", "processes", "show", "nohup", "background", "bg",
               "fg", "launch", "shutdown", "halt", "boot")
_VERBS = (r"start|stop|run|restart|kill|status|dev|serve|up|down|launch|logs|reload|debug|"
          r"bg|background|daemon")
_VERB_RE = (r"^(?:%s|force[-_]clean|show|tail|watch|boot|check)[-_](.+)$|^(.+?)[-_](?:%s)$"
            % (_VERBS, _VERBS))


def service_name_of(target, launches=False):
    """The service a target's name speaks of (start-worker: worker; api if it launches)."""
    target = target.lower()
    if launches and "." in target:
        target = target.split(".")[0]           # proxy.pid: the proxy
    match = re.match(_VERB_RE, target)
    name = (match.group(1) or match.group(2)) if match else (target if launches else None)
    words = re.split(r"[-_]", name or "")
    # nor two things (`a-and-b`), nor words that are no name (`prod-daemon`, `dev-local`)
    ok = re.match(r"^[a-z0-9][a-z0-9_.-]*$", name or "") and "and" not in words \
        and not set(words) <= set(_NOT_A_NAME)
    return name if ok else None


# Where `lsof -i :PORT[,PORT]` and `fuser PORT/tcp` (or `-n tcp PORT`) name ports
_TOOL_PORT_RE = {"lsof": r"-\w*i\s*(?:tcp|TCP|udp|UDP)?(?:@[^:\s]*)?:"
                         r"(\d{2,5}(?:,\d{2,5})*)\b",
                 "fuser": r"\b(\d{2,5})/tcp\b|-n\s+tcp\s+(\d{2,5})\b"}


def _tool_ports(prog, args, text):
    """[("port", N)] for each port lsof or fuser names, else [("unknown", text)]."""
    ports = [p for m in re.finditer(_TOOL_PORT_RE[prog], " ".join(args))
             for p in "".join(g for g in m.groups() if g).split(",")]
    return [("port", p) for p in ports] or [("unknown", text)]


_FOREVER_RE = r"(?:^|[;&|(])\s*(?:while\s+(?:true|:)|until\s+false)\s*;"


def _make_option(arg, value, short, longs):
    """(value, words it took after `arg`) of make's option `short` or `longs` in `arg`
    (`-C DIR`, `-CDIR`, `--directory DIR`, `--directory=DIR`; `value`: the next word),
    else None."""
    if arg == short or arg in longs:
        return value, 1
    if arg.startswith(short):
        return arg[len(short):], 0
    if arg.startswith(tuple(name + "=" for name in longs)):
        return arg.partition("=")[2], 0
    return None


class RecipeReader(object):
    """Reads the recipe lines of one target, expanded by make, into MakeFacts."""

    def __init__(self, target, path, oneshell, curdir, env=None, base="."):
        self.target = target
        self.path = path
        self.oneshell = oneshell
        self.curdir = curdir
        self.env = env or {}    # the variables make exports to the recipe's shell
        self.base = base        # where the recipe runs (a sub-make's: its folder)
        self.depth = 0          # how many sub-makes deep
        self.vars = None        # the rule's make variables (MakeVars), to name knobs
        self.raw = ""           # the recipe line as written
        self.facts = []
        self.where = (target, path, 0)
        self.pending = []       # what runs in the background, [facts] per job: see join
        self.reset()

    def reset(self):
        self.cwds = [self.base]
        self.shvars = {}
        self.folders = {}       # ROOT="$(cd "$(dirname "$0")" && pwd)": ROOT -> its path
        self.launched = None
        self.venv = None        # a venv the line activated, not procclean's own
        self.exports = []       # `export NAME=VALUE` before a launch: part of its command
        self.loops = {}         # `for port in 3000 8080`: port -> ["3000", "8080"]

    def read(self, text, line, raw=""):
        """One recipe line, expanded (None: not without running something), `raw`."""
        if not self.oneshell:
            self.reset()
        self.where = (self.target, self.path, line)
        self.raw = raw
        # (`while true; do make run; sleep 2; done`: what it repeats, procclean does once)
        if text is None or re.search(_FOREVER_RE, text):
            self.add("other", text=raw)
            return
        self.read_list(shell_commands(text))

    def read_list(self, commands):
        """Simple commands (shell_commands), pipeline by pipeline, each in its folder."""
        pipe, list_cwd = [], None
        for n, command in enumerate(commands, 1):
            pipe.append(command)
            if command.after == "|" and n < len(commands):
                continue                        # the pipeline goes on
            del self.cwds[pipe[0].group + (0 if pipe[0].opens else 1):]
            self.cwds += [self.cwds[-1]] * (pipe[0].group + 1 - len(self.cwds))
            # a list starts at a line's start, after `;` or `&`, and in a `(` subshell
            list_cwd = self.cwds[-1] if list_cwd is None or pipe[0].opens else list_cwd
            self.pipeline(pipe)
            if pipe[-1].after == "&":           # a list run in the background: its cd
                self.cwds[-1] = list_cwd        # stays in its subshell
            if pipe[-1].after not in ("&&", "||"):
                list_cwd = None
            pipe = []

    def rule(self, rule, variables):
        """Read a rule's recipe (one running procclean has nothing to replace)."""
        start = len(self.facts)
        for line, at in zip(rule.recipe, rule.at):
            if "procclean" in line.lower():
                del self.facts[start:]
                return
            # without make's prefix characters (@ silent, - ignore errors, +)
            self.read(variables.expand(re.sub(r"^[@+\-\s]*", "", line)), at + 1, line)
        # nor does it name one of several apps it starts (`fast: a & b & while kill -0`)
        launched = [f for f in self.facts[start:] if f.kind == "launch" and f.background]
        if len(set(f.command for f in launched)) > 1:
            for fact in self.facts[start:]:     # (nor its looks: `pgrep -f A || A &`)
                own = service_name_of(self.target, fact.kind == "launch")
                fact.name = None if fact.name == own else fact.name

    def join(self, job):
        """A foreground server or a `wait` after servers started in the background
        (`uvicorn ... & npm run dev`, make -j): a dev session; `job`: what joins them."""
        several = len(self.pending) + bool(job) > 1
        for fact in [f for facts in self.pending for f in facts] + job:
            fact.together = True
            if fact.kind == "launch":
                fact.background = False
                fact.name = None if several else fact.name
            elif fact.kind == "make" and (fact.cwd or fact.problem == (
                    "mk_make_background", {})):
                fact.problem = None     # a sub-make's own runs are the session's
        self.pending = []

    def add(self, kind, **fields):
        fact = MakeFact(kind, self.where, **fields)
        if kind != "other" and "name" not in fields:
            fact.name = service_name_of(self.target, kind == "launch")
        self.facts.append(fact)
        return fact

    def path_of(self, path):
        """A path the recipe names, relative to the project when inside it."""
        path = os.path.normpath(os.path.join(self.cwds[-1], path))
        if (path + "/").startswith(self.curdir.rstrip("/") + "/"):     # an absolute path
            path = os.path.relpath(path, self.curdir)
        return path

    def pipeline(self, pipe):
        if not pipe[0].words:
            for assign in pipe[0].assigns:
                name, _, value = assign.text.partition("=")
                folder = re.match(r"^\$\(\s*cd\s+(?:--\s+)?\"?([^\"$`;&|]+?)\"?\s*(?:&>\s*"
                                  r"/dev/null\s*)?(?:&&|;)\s*pwd\s*\)$|^\$\(pwd\)$", value)
                if folder:
                    self.folders[name] = os.path.normpath(os.path.join(
                        self.curdir, self.path_of(folder.group(1) or ".")))
                elif not re.search(r"[$`]", value):     # PID_FILE="$RUN_DIR/api.pid"
                    self.folders[name] = value
                elif re.search(r"/bin/python[\d.]*$", self.folders.get(name, "")):
                    self.folders[name] = "python3"  # its venv's python, else python3
                self.shvars[name] = [("lastpid", self.launched)] if value == "$!" else \
                    self.word_refs(assign)
                self.captured([assign], pipe)
                if len(self.each_value(value)) > 1:     # pidfile=.run/$name.pid in a loop
                    self.loops[name] = self.each_value(value)
        elif len(pipe) == 1 or _runs_on(*_program(pipe[0].argv())) and all(
                _program(c.argv())[0] in _PASS_FILTERS for c in pipe[1:]):
            # `uvicorn ... 2>&1 | sed 's/^/[api] /' &`: the server, its output decorated
            pipe[0].after = pipe[-1].after
            self.simple(pipe[0], *_program(pipe[0].argv()))
            if _program(pipe[0].argv())[0] in ("[", "[[", "test", "echo", "printf"):
                self.captured(pipe[0].words[1:], pipe)    # `[ -n "$(pgrep -f x)" ]`
        else:
            refs, signal, problem = self.flow(pipe)
            if signal is None and [r[0] for r in self.source(pipe[0])] == ["unknown"]:
                self.add("other", text=_command_text(pipe))   # `grep ... | awk`: no PIDs
                return
            kind = "look" if signal is None else "stop"
            self.ref_facts(kind, refs or [("unknown", _command_text(pipe))], signal, pipe,
                           (problem, {}) if problem else _signal_problem(kind, signal))

    def ref_facts(self, kind, refs, signal, commands, problem=None, captured=None):
        """A fact for each place PIDs come from; `problem`: the pipeline's."""
        text = _command_text(commands)
        for what, value in refs:
            if what in ("pidfile", "pattern", "port"):
                fact = self.add(kind, signal=_STOP_SIGNALS.get(signal or ""), text=text,
                                **{what: value})
            else:
                fact = self.add(kind, text=text, problem=(
                    "mk_by_name" if what == "byname" else "mk_untraced", {"what": value}))
            fact.problem = problem or fact.problem or _signal_problem(kind, signal)
            fact.captured = captured

    def word_refs(self, word):
        """Where a word's PIDs come from: [(pidfile|pattern|port|unknown, value)]."""
        if word.subs:
            return [ref for sub in word.subs for ref in self.sub_refs(sub)]
        match = re.match(r"^-?\$\{?(\w+)\}?$", word.text)
        if match and match.group(1) in self.shvars:
            return self.shvars[match.group(1)]
        return [("unknown", word.text)]

    def captured(self, words, commands):
        """`up=$(pgrep -f x)`, `[ -n "$(lsof -ti:8000)" ]`: a look whose PIDs the recipe
        keeps or tests (a status, not a listing of the processes)."""
        for word in words:
            refs = self.word_refs(word) if word.subs else []
            # (a file only read, `$(cat .backend_port)`, is a pidfile by its name alone)
            if refs and all(what in ("pattern", "port") or what == "pidfile" and "pid" in
                            os.path.basename(value).lower() for what, value in refs):
                self.ref_facts("look", refs, None, commands, captured=True)

    def each_value(self, text):
        """`text` once for each value of the loop variable it names, if any."""
        for name, values in self.loops.items():
            ref = r"\$(?:%s\b|\{%s\})" % (name, name)
            if re.search(ref, text):
                return [re.sub(ref, v, text) for v in values]
        return [text]

    def sub_refs(self, script):
        if len(self.each_value(script)) > 1:
            return [r for each in self.each_value(script) for r in self.sub_refs(each)]
        commands = shell_commands(script)
        while len(commands) > 1 and commands[-1].argv() in (["true"], [":"]) and \
                commands[-2].after == "||":
            commands.pop()                      # $(lsof -ti:8000 || true)
        if not commands or any(c.after != "|" for c in commands[:-1]):
            return [("unknown", script)]
        refs, signal, problem = self.flow(commands)
        return [("unknown", script)] if problem or signal is not None else refs

    def flow(self, pipe):
        """(refs, signal, problem) of a pipeline: where it finds PIDs, what `xargs kill`
        sends them (None: it only looks), why procclean cannot tell."""
        refs, problem, patterns, signal = self.source(pipe[0]), None, [], None
        for command in pipe[1:]:
            prog, args, _ = _program(command.argv())
            if prog in ("grep", "egrep", "fgrep"):
                extra = {"egrep": ["-E"], "fgrep": ["-F"]}.get(prog, [])
                regex, why = grep_pattern(extra + args)
                problem = problem or why
                patterns += [regex] if regex else []
            elif prog == "xargs" and "kill" in args:
                signal, rest = kill_signal(args[args.index("kill") + 1:])
                problem = problem or ("mk_untraced" if rest else None)
            elif prog not in _PASS_FILTERS:
                problem = problem or "mk_pipeline"
        if refs and refs[0][0] == "table":
            if len(patterns) > 1 and grep_all(patterns):
                patterns = [grep_all(patterns)]     # `grep xpress | grep exe/main`
            if len(patterns) != 1:
                return [], signal, problem or ("mk_pattern_two" if patterns else "mk_pattern_none")
            refs = [("pattern", patterns[0])]
        elif refs and refs[0][0] == "sockets":
            ports = [re.search(r":(\d{2,5})\b", p) for p in patterns]
            refs = [("port", ports[0].group(1))] if len(ports) == 1 and ports[0] else []
            problem = problem or (None if refs else "mk_untraced")
        return refs, signal, problem

    def source(self, command):
        """Where the first command of a pipeline finds PIDs."""
        prog, args, _ = _program(command.argv())
        if prog in ("ps", "netstat", "ss"):
            return [("table" if prog == "ps" else "sockets", None)]
        if prog == "cat" and len(args) == 1 and "$" not in args[0]:    # (not `cat "$f"`)
            return [("pidfile", self.path_of(args[0]))]
        if prog == "lsof":
            return _tool_ports(prog, args, "lsof " + " ".join(args))
        if prog == "pgrep":
            return self.pgrep_refs(args)
        if prog in ("echo", "printf") and len(command.words) == 2:
            return self.word_refs(command.words[1])
        return [("unknown", " ".join(command.argv()))]

    def pgrep_refs(self, args, words=None):
        """What `pgrep ARGS` or `pkill ARGS` finds (-f, -F, -P)."""
        for arg, value in zip(args, args[1:] + [""]):
            if arg == "-f" and value and "-x" not in args:
                unknown = "[[:" in value or "^" in value
                return [("unknown" if unknown else "pattern", value)]
            if arg == "-F" and value:
                return [("pidfile", self.path_of(value))]
            if arg == "-P" and words and value in words:
                return self.word_refs(words[value])
        return [("byname", " ".join(args))]

    def simple(self, command, prog, args, wrappers):
        texts = command.argv()
        text = _command_text([command])
        if prog == "echo" and self.echo_pid(command, text):
            pass
        elif prog in ("cd", "pushd"):
            folder = self.expand_folders(args[0]) if args else "."
            self.cwds[-1] = self.path_of(folder)
            if re.search(r"[$`]", folder):
                self.add("other", text=text)        # a folder not known here
        elif prog in ("wait", "fg") and self.pending:
            self.join([])
        elif prog in ("source", ".") and self.activate(args) or self.script(command, texts):
            pass    # the venv procclean runs this folder's services with; a script, read
        elif prog == "export" and all("=" in w.text for w in command.words[1:]):
            self.exports.extend(w.raw for w in command.words[1:])
            self.add("other", text=text)
        elif prog == "for" and len(args) > 1 and args[1] == "in":
            self.shvars[args[0]] = [r for w in command.words[3:] for r in self.word_refs(w)]
            if all(re.match(r"^[\w.:/-]+$", a) for a in args[2:]):
                self.loops[args[0]] = args[2:]
        elif prog == "concurrently" and self.depth < 3:
            self.concurrently(args)
        elif prog in _PROCFILE_RUNNERS:
            self.procfile_run(prog, args, text)
        elif prog in ("make", "gmake") or re.match(r"^\$[({]MAKE[)}]", texts[0]):
            self.make(command, args)
        elif prog == "kill":
            signal, rest = kill_signal(texts[1:])
            for word in command.words[len(command.words) - len(rest):]:
                self.ref_facts("look" if signal == "0" else "stop", self.word_refs(word),
                               signal, [command], captured=signal == "0")
        elif prog == "pkill":
            signal, rest = _pkill_signal(args)
            words = dict((w.text, w) for w in command.words)
            self.ref_facts("stop", self.pgrep_refs(rest, words), signal, [command])
        elif prog == "pgrep":
            self.ref_facts("look", self.pgrep_refs(args), None, [command])
        elif prog in ("killall", "pidof"):
            self.add("stop", problem=("mk_by_name", {}), text=text)
        elif prog in ("fuser", "lsof"):
            kind = "stop" if prog == "fuser" and "-k" in args else "look"
            for each in self.each_value(" ".join(args)):
                self.ref_facts(kind, _tool_ports(prog, each.split(), text),
                               "KILL" if kind == "stop" else None, [command])
        elif prog in ("rm", "touch") or prog == "mkdir" and (
                "-p" in args or "--parents" in args):
            self.files(prog, args, text)
        elif prog in SHELLS and args[:1] == ["-c"] and len(args) > 1:
            self.shell_script(command, args[1])
        elif command.after == "&" and (_shows_output(prog, args) or _builds(texts)):
            self.add("other", text=text)    # `tail -F web.log &`, `npm run build &`
        elif command.after == "&" or wrappers[:1] == ["nohup"] or _is_server(
                *_program(_moved(texts)[0])[:2]) or _module_file(text, os.path.join(
                    self.curdir, self.cwds[-1])) or self.console_server(texts):
            self.launch(command, prog, args)
        elif prog == "trap" and args:
            self.trap(args[0])
        elif prog not in _HARMLESS_PROGRAMS or wrappers:
            self.add("other", text=text)

    def trap(self, action):
        """A trap's action: other work where it runs more than `kill` or a function
        (`redis-cli shutdown`; not `kill $$A $$B`, nor `cleanup`)."""
        work = [c for c in shell_commands(action) if len(c.words) > 1 and
                _program(c.argv())[0] not in _HARMLESS_PROGRAMS + ("kill",)]
        if work:
            self.add("other", text=_command_text(work[:1]))

    def console_server(self, texts):
        """Whether a command runs the project's console script as its server (`uv run
        myapp server run`: its (sub)commands serve words, its module calls uvicorn.run)."""
        words, folder = _moved(texts)
        prog, args = _program(words)[:2]
        base = os.path.join(self.curdir, self.path_of(folder) if folder else self.cwds[-1])
        words = []
        for arg in args:        # its (sub)command: the words before its first option
            if arg.startswith("-"):
                break
            words.append(arg)
        # (`server run`, `api serve`, `dev`; not `worker run` nor `db upgrade`)
        module = words and set(words) <= set(SERVE_SCRIPTS) and _console_module(base, prog)
        return bool(module) and bool(re.search(_SERVES_RE, _text(base, module)))

    def echo_pid(self, command, text):
        """Whether an echo writes a launch's PID alone to a file (`echo $! > PIDFILE`, or
        of `PID=$!`; not `echo $$PID started > log`): then that launch's pidfile, or none
        (`>>`: a file of several PIDs)."""
        words = [w for w in command.words[1:] if w.text not in ("-n", "-e", "-E")]
        refs = self.word_refs(words[0]) if len(words) == 1 and words[0].text != "$!" else []
        last = [w.text for w in words] == ["$!"] or refs[:1] and refs[0][0] == "lastpid"
        path = command.redirs and self.path_of(command.redirs[-1][1].text)
        if not (last and path) or path.startswith("/dev/"):
            return False        # (`echo $! > /dev/null`: no pidfile)
        launched = refs[0][1] if refs[:1] else self.launched
        if launched is not None and path.startswith("../"):
            # `cd api && uvicorn ... & echo $! > ../api.pid` runs the echo outside the
            # project: the file meant is the one beside the launch's folder
            inside = os.path.normpath(os.path.join(launched.cwd or ".",
                                                   command.redirs[-1][1].text))
            path = path if inside.startswith("../") else inside
        if command.redirs[-1][0] == ">>":
            for fact in self.facts:     # `echo $B > .pids; echo $F >> .pids`: no pidfile
                fact.pidfile = None if fact.pidfile == path else fact.pidfile
            self.add("other", text=text)
        elif launched is not None:
            launched.pidfile = path
        else:
            self.add("other", text=text)        # `echo $! > pidfile` of no launch
        return True

    def shell_script(self, command, script):
        """`sh -c 'cd web && exec npm run dev' > web.log &`: read as a subshell."""
        inner = shell_commands(script)
        if not inner:
            return
        inner[-1].after = command.after
        start = len(self.facts)
        outer, self.cwds = self.cwds, [self.cwds[-1]]
        try:
            self.read_list(inner)
        finally:
            self.cwds = outer
        logfile, problem = _launch_log(command.redirs)     # a path from the outer folder
        for fact in self.facts[start:]:
            if fact.kind == "launch" and logfile and not fact.logfile:
                fact.logfile, fact.problem = self.path_of(logfile), fact.problem or problem

    def files(self, prog, args, text):
        """`rm`, `touch`, `mkdir -p`: a fact per path (a glob or a variable: other)."""
        paths = [v for a in args if not a.startswith("-") for v in self.each_value(a)]
        for path in paths or [""]:
            if re.search(r"[*?\[$`]", path) or not path:
                self.add("other", text=text)
            else:
                self.add({"rm": "remove"}.get(prog, prog), path=self.path_of(path),
                         text=text)

    def expand_folders(self, word):
        """`word` with the values the script gave its variables put in ($ROOT,
        ${SCRIPT_DIR}; "$PY" without its quotes where the value has no space)."""
        def value(match):
            known = self.folders.get(match.group(2) or match.group(3))
            quoted = match.group(1) and known and re.search(r"\s", known)
            return match.group(0) if known is None else '"%s"' % known if quoted else known
        return re.sub(r'("?)\$(?:\{(\w+)\}|(\w+))\1', value, word)

    def activate(self, args):
        """Whether `source ARGS` activates a venv: the one procclean runs this folder
        with, or another (env/, venv_api/), whose python then runs (self.venv)."""
        path = self.path_of(self.expand_folders(args[0])) if len(args) == 1 else ""
        venv = os.path.dirname(os.path.dirname(path))
        if not path.endswith("/bin/activate"):
            return False
        own = _project_python(self.cwds[-1], ".")[2].get("where") == venv
        python = os.path.isfile(os.path.join(self.curdir, venv, "bin", "python"))
        self.venv = venv if python and not own else None
        return own or python

    def concurrently(self, args):
        """`concurrently "CMD" "CMD"` as `(CMD) & (CMD) & wait` (`npm:dev`: npm run dev)."""
        commands = [re.sub(r"^(npm|pnpm|yarn|bun):", r"\1 run ", arg)
                    for before, arg in zip([""] + args, args) if not arg.startswith("-")
                    and before not in _VALUE_OPTIONS["concurrently"]]
        sub = RecipeReader(self.target, self.path, False, self.curdir, self.env,
                           self.cwds[-1])
        sub.depth = self.depth + 1
        sub.vars = self.vars
        sub.read("".join("(%s) & " % c for c in commands) + "wait", self.where[2], self.raw)
        self.facts.extend(sub.facts)
        if self.pending:
            self.join(sub.facts)

    def procfile_run(self, prog, args, text):
        """`foreman start -f Procfile.dev`: a dev session of the Procfile init reads;
        another Procfile, a file procclean does not read (.env), an option: other work."""
        word = _PROCFILE_RUNNERS[prog]
        ok = word in args               # not `honcho run web` (`honcho -f FILE start` is)
        procfile, names = "Procfile", []
        for before, arg in zip([""] + args, args):
            if before in ("-f", "--procfile"):
                procfile = arg
            elif arg not in ("-f", "--procfile", word):
                ok = ok and not arg.startswith("-")
                names.append(arg)
        found = [s for s in _procfile_services() if not names or s.name in names]
        env = next((f for f in (".env", _RUNNER_FILES.get(prog)) if f and os.path.exists(
            os.path.join(self.curdir, self.cwds[-1], f))), None)
        if env or not ok or os.path.normpath(self.path_of(procfile)) != _procfile()[0] or \
                len(found) < len(set(names)) or not found:
            self.add("other", text=text, problem=("mk_procfile_env", {"file": env}) if env
                     else ("mk_procfile", {"path": _procfile()[0] or "-"}))
            return
        self.join([self.add("launch", command=s.command, argv=s.command, cwd=s.cwd,
                            name=s.name, text=text) for s in found])

    def script(self, command, texts):
        """A shell script of the project's (`bin/dev`), read in a shell of its own; whether
        it was one.  Run with `&`, it is the process, on its one server's port."""
        shell = texts[0] in ("sh", "bash") or bool(re.match(r"^python[\d.]*$", texts[0]))
        words = texts[shell:]
        if not words or "/" not in words[0] and not words[0].endswith(".py") or \
                self.depth > 2:
            return False
        path = self.path_of(words[0])
        text = None if path.startswith(("/", "..")) else _read_text(
            os.path.join(self.curdir, path), MAKEFILE_LIMIT)
        # a Python runner (`./dev.py` whose Popen calls start the servers): what it runs
        python = text and (path.endswith(".py") or re.match(r"#!.*python", text))
        text = _runner_script(text) if python else text
        sh = text and re.match(r"#!\s*/(?:usr/)?bin/(?:env\s+)?(?:ba)?sh\s", text)
        if not text or not sh and not python and (
                text.startswith("#!") or not shell and not path.endswith(".sh")):
            return False
        args = " ".join(w.raw for w in command.words[shell + 1:])
        sub = RecipeReader(self.target, path, True, self.curdir, self.env, self.cwds[-1])
        sub.depth = self.depth + 1
        for start, line in _script_lines(text):
            # (the words as they are: a function, since re.sub reads `\d` in a string)
            line = re.sub(r'"?\$(?:[@*]|\{[@*]\})"?', lambda m: args, line)
            # where it is: `cd "$(dirname "$0")/.."`
            line = re.sub(r'\$\(\s*dirname\s+(?:--\s+)?"?\$(?:0|\{BASH_SOURCE(?:\[0\])?\})'
                          r'"?\s*\)', lambda m: os.path.dirname(words[0]) or ".", line)
            line = sub.expand_folders(line)
            sub.read(line, start + 1, line)
        if command.after != "&":
            self.facts.extend(sub.facts)
            return True
        self.launch(command, *_program(texts)[:2])
        runs = [f for f in sub.facts if f.kind == "launch"]
        fact = next(f for f in reversed(self.facts) if f.kind == "launch")
        if len(runs) == 1 and not runs[0].background and not fact.port:
            fact.port, fact.argv = runs[0].port, runs[0].argv
        return True

    def make(self, command, args):
        """A sub-make; one in another folder (`$(MAKE) -C api run`) is read there."""
        goals, problem, folder, i = [], None, ".", 0
        while i < len(args):
            arg = args[i]
            value = args[i + 1] if i + 1 < len(args) else ""
            directory = _make_option(arg, value, "-C", ("--directory",))
            named = _make_option(arg, value, "-f", ("--file", "--makefile"))
            if directory:
                folder = os.path.join(folder, directory[0])
                i += directory[1]
            elif named:
                # another file is not read; `-f $(lastword $(MAKEFILE_LIST))` is this one
                if self.path_of(os.path.join(folder, named[0])) != self.path:
                    problem = "mk_make_file"
                i += named[1]
            elif arg in ("-l", "-o", "-W", "-I") or arg == "-j" and value.isdigit():
                i += 1
            elif "=" in arg and not arg.startswith("-"):
                problem = problem or "mk_make_vars"
            elif not arg.startswith("-"):
                goals.append(arg)
            i += 1
        folder = self.path_of(folder)
        read = folder != "." and problem is None
        if folder != "." or problem == "mk_make_file":
            problem = "mk_make_elsewhere"
        if command.after == "&":
            problem = problem or "mk_make_background"
        at = len(self.facts)
        fact = self.add("make", goals=goals, problem=(problem, {}) if problem else None,
                        text=_command_text([command]), name=None)
        chosen = self.sub_make(folder, goals) if read else []
        if chosen:
            fact.cwd = folder
        job = self.facts[at:]
        if command.after == "&":
            self.pending.append(job)
        elif self.pending or len(goals) > 1 and any(a.startswith(("-j", "--jobs"))
                                                    for a in args):
            self.join(job)
        elif fact.cwd and job[1:] and (all(f.kind == "launch" and not f.background
                                           for f in job[1:]) or not any(r.prereqs for r in
                                                                        chosen)):
            # `cd api && $(MAKE) run`, `$(MAKE) -C api stop`: what that rule does is read
            fact.problem = None

    def sub_make(self, folder, goals):
        """Read what `make -C FOLDER GOALS` runs; the rules read (none unless all goals)."""
        here = os.path.join(self.curdir, folder)
        name = next((n for n in MAKEFILE_NAMES if os.path.isfile(os.path.join(here, n))),
                    None)
        if name is None or self.depth > 2 or folder.startswith(".."):
            return []
        text = _read_text(os.path.join(here, name), MAKEFILE_LIMIT) or ""
        rules = [r for r in parse_makefile_text(text)[0]
                 if not any("%" in n or n.startswith(".") for n in r.names)]
        variables = MakeVars(_text_values([text], here), here)
        sub = RecipeReader(self.target, os.path.join(folder, name),
                           bool(re.search(r"^\.ONESHELL\s*:", text, re.M)), self.curdir,
                           dict(self.env, **_exported([text], variables)), folder)
        sub.depth = self.depth + 1
        chosen = [r for r in rules if r.names[0] in goals] if goals else rules[:1]
        for rule in chosen:                 # no goal: its first rule, make's default
            sub.vars = variables.for_target(rule, {})       # (`make dev PORT=9000` too)
            sub.rule(rule, sub.vars)
        self.facts.extend(sub.facts)
        return chosen if set(goals) <= set(r.names[0] for r in chosen) else []

    def launch(self, command, prog, args):
        if re.search(r"[$`]", self.cwds[-1]):
            return self.add("other", text=_command_text([command]))    # run where?
        logfile, problem = _launch_log(command.redirs)
        if command.outer and not logfile:   # the subshell's, from the folder outside it
            logfile, problem = _launch_log(command.outer)
            logfile = logfile and os.path.join(
                os.path.relpath(self.cwds[-2], self.cwds[-1]), logfile)
        if prog == "sudo":
            problem = ("mk_sudo", {})
        # (hugo's and jekyll's -D is drafts, their -d a destination: jekyll detaches by -B)
        own = {"rails": "-d", "puma": "-d", "mon": "-d", "jekyll": "-B"}.get(prog)
        flags = set(_DAEMON_FLAGS) - set(["-D"] if prog in ("hugo", "jekyll") else [])
        if flags & set(args) or own in args or (prog == "celery" and "multi" in args):
            problem = ("mk_daemonizes", {})
        pidfile = _launch_pidfile(prog, args)
        words, folder = _moved(command.words)
        assigns = list(command.assigns)
        while words and os.path.basename(words[0].text) in ("nohup", "setsid", "exec",
                                                              "env"):
            words.pop(0)
            while words and re.match(r"^[A-Za-z_]\w*=", words[0].text):
                assigns.append(words.pop(0))        # env PORT=8080 build/server
        cwd = self.path_of(folder) if folder else self.cwds[-1]
        if self.venv and words and re.match(r"^python[\d.]*$|^(?:%s)$" % "|".join(
                PY_TOOLS), words[0].text):      # (`. env/bin/activate && python app.py`)
            bindir = os.path.join(os.path.relpath(self.venv, cwd), "bin")
            words[0].raw = os.path.join(bindir, words[0].text)
        port, line = self.shell_port(prog, args, [a.text for a in assigns], " ".join(
            self.exports + [a.raw for a in assigns] + [w.raw for w in words]))
        base = os.path.join(self.curdir, cwd)       # (a script, or a module's: -m app.cli)
        script = _python_script(prog, args) or _module_file(" ".join(
            w.text for w in words), base) or _console_module(base, prog)
        text = _text(base, script) if script else ""
        if text and re.search(_SERVES_RE, text):    # uvicorn.run(app, port=8005)
            said = port is None and _code_port(base, text, os.path.join(cwd, script))
            option = port is None and not said and _option_port(text)
            if said:        # (from API_PORT: the port setting moves it)
                port = said[0]
                if said[2] not in (None, "PORT"):
                    line = "%s={port} %s" % (said[2], line)
            elif option:    # its --port option's default: `--port {port}` moves it
                port, line = option, line + " --port {port}"
        elif text and command.after != "&" and (_framework(base) == "Python" and re.search(
                _CLI_RE, text) or re.search(_ASKS_RE, text)):   # `python main.py data.csv`
            return self.add("other", text=_command_text([command]))
        knobs = re.findall(r"\$[({]([A-Za-z_][\w.-]*)[)}]", self.raw)    # --port $(PORT)
        knob = next((n for n in knobs if port and self.vars is not None and
                     self.vars.expand("$(%s)" % n) == port), None)
        fact = self.add("launch", command=line, argv=" ".join(w.text for w in words),
                        knob=knob, cwd=cwd,
                        background=command.after == "&", problem=problem,
                        logfile=logfile and self.path_of(logfile),
                        pidfile=pidfile and self.path_of(pidfile),
                        port=port, text=_command_text([command]))
        self.launched = fact if fact.background else None
        if fact.background and _runs_on(*_program(_moved(command.argv())[0])):
            self.pending.append([fact])         # not a task (`docker compose up -d &`)
        elif self.pending and not problem and not fact.background:
            self.join([fact])

    def shell_port(self, prog, args, assigns, line):
        """(port, command line): a port given as a shell variable (`$${PORT:-8000}`) is
        make's value or the default, `{port}` in the line."""
        ref = r"\$(?:\{([A-Za-z_]\w*)(?::-(\d{2,5}))?\}|([A-Za-z_]\w*))"

        def value(match):
            name = match.group(1) or match.group(3)
            return self.env.get(name) or match.group(2) or match.group(0)
        port = launch_port(prog, [re.sub(ref, value, a) for a in args],
                           [re.sub(ref, value, a) for a in assigns])
        said = launch_port(prog, args, assigns)
        if port is None or said is not None:
            return port, line
        return port, re.sub(ref, lambda m: "{port}" if value(m) == port else m.group(0),
                            line)


def _script_lines(text):
    """[(line number, line)] of a script as it runs: a function's body where called."""
    functions, lines, body = {}, [], None
    for start, _, line in _logical_lines(text, ""):
        if body is not None:
            if re.match(r"^\s*\}\s*$", line):
                body = None
            else:
                body.append(line)
            continue
        head = re.match(r"^\s*(?:function\s+(\w+)|(\w+)\s*\(\s*\))\s*\{\s*(.*?)\s*(\})?"
                        r"\s*;?\s*$", line)
        if head:
            body = functions[head.group(1) or head.group(2)] = [head.group(3)]
            body = None if head.group(4) else body
            continue
        call = re.match(r"^\s*(\w+)(?:\s+[^;&|]*)?(?:[;&|]|$)", line)    # main "$@"
        lines.extend((start, each)
                     for each in functions.get(call and call.group(1), [line]))
    return lines


def _runner_script(text):
    """A Python runner's subprocess calls as the lines sh would run: `cd web && npm run
    dev &` for a Popen, without `&` for run or call, then `wait`; "" where it starts
    nothing.  An argument list of strings and sys.executable, a cwd of a string or of one
    joined onto a root (os.path.join(ROOT, "web"), ROOT / "web"), or a name set so."""
    import ast
    import shlex
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return ""
    names = dict((n.targets[0].id, n.value) for n in ast.walk(tree) if isinstance(
        n, ast.Assign) and isinstance(n.targets[0], ast.Name))
    calls = sorted((n.lineno, n.col_offset, n) for n in ast.walk(tree)
                   if isinstance(n, ast.Call) and n.args and _called(n) in _RUNNER_CALLS)
    lines = [""] * len(text.splitlines())       # each at its call's line
    for number, _, call in calls:
        argv = _python_value(call.args[0], names)
        cwd = [_python_value(k.value, names) for k in call.keywords if k.arg == "cwd"]
        if not argv or not isinstance(argv, str) and not all(argv) or None in cwd:
            continue
        command = argv if isinstance(argv, str) else " ".join(shlex.quote(w) for w in argv)
        line = "cd %s && %s" % (shlex.quote(os.path.join(".", *cwd)), command)
        line = line + " &" if _called(call) == "Popen" else "(%s);" % line
        lines[number - 1] += (" " if lines[number - 1] else "") + line
    return "\n".join(lines + ["wait"]) if any(l.endswith("&") for l in lines) else ""


# What runs a program in a Python runner (Popen in the background, the others waited for).
_RUNNER_CALLS = ("Popen", "run", "call", "check_call")


def _called(call):
    """The name a Python call node calls: Popen of subprocess.Popen(...)."""
    return getattr(call.func, "attr", getattr(call.func, "id", ""))


def _python_value(node, names, depth=0):
    """What a node of a Python runner's code is: a string, a list (None for an item not
    known), a path joined onto a root ("" for the root: ROOT, os.getcwd(),
    Path(__file__).parent), or None; `names`: the module's assignments."""
    kind = type(node).__name__
    if kind in ("Str", "Constant"):
        value = node.s if kind == "Str" else node.value
        return value if isinstance(value, str) else None
    if kind in ("List", "Tuple"):
        return [_python_value(item, names, depth) for item in node.elts]
    if kind == "Attribute" and node.attr == "executable":
        return "python"                         # sys.executable
    if kind == "Name":
        known = node.id in names and depth < 3
        return _python_value(names[node.id], names, depth + 1) if known else None
    if kind == "BinOp" and type(node.op).__name__ == "Div":
        parts = [node.left, node.right]         # ROOT / "web"
    elif kind == "Call" and _called(node) in ("join", "str", "Path"):
        parts = node.args                       # os.path.join(ROOT, "web"), str(...)
    else:
        return "" if kind in ("Call", "Attribute", "Subscript") else None     # a root
    values = [_python_value(part, names, depth) for part in parts]
    if not values or not all(isinstance(v, str) for v in values):
        return None
    return os.path.join(*values)


def _signal_problem(kind, signal):
    """Why a stop cannot be carried: a signal procclean does not send (-HUP)."""
    unsent = kind == "stop" and signal not in _STOP_SIGNALS
    return ("mk_signal", {"signal": signal}) if unsent else None


def _launch_log(redirs):
    """(the file a launch writes its output to, or None; a problem or None)."""
    files = {}
    for op, word in redirs:
        skip = op.endswith(">&") or op.lstrip("0123456789")[:1] == "<"     # 2>&1, < input
        if not skip and word.text != "/dev/null":
            files["err" if op.startswith("2") else "out"] = word.text
    out, err = files.get("out"), files.get("err")
    return out, ("mk_two_logs", {}) if err and err != out else None


def _command_text(commands):
    return " | ".join(" ".join(w.raw or w.text for w in c.words) for c in commands)


# make's built-in variables a recipe may use ($(RM) ...), which `make -pR` does not print.
_MAKE_DEFAULTS = {"RM": "rm -f", "CC": "cc", "CXX": "g++", "AR": "ar", "MAKE": "make"}


class MakeVars(object):
    """make's variables (name -> (recursive?, value)), a target's and automatic ones too."""

    def __init__(self, values, curdir):
        self.values = values
        self.curdir = curdir
        self.local = {}

    def for_target(self, rule, target_values):
        scoped = MakeVars(dict(self.values, **target_values.get(rule.names[0], {})),
                          self.curdir)
        prereqs = [w for w in rule.prereqs if w != "|"]
        scoped.local = {"@": rule.names[0], "<": prereqs[0] if prereqs else "",
                        "^": " ".join(prereqs), "*": ""}
        return scoped

    def expand(self, text, depth=0):
        """`text` expanded; None when that needs something make would run."""
        out, i = [], 0
        while "$" in text[i:-1]:            # a `$` that ends the text is itself
            j = text.index("$", i)
            out.append(text[i:j])
            nxt = text[j + 1]
            if nxt in "({":
                end = _closing(text, j + 2, nxt, ")" if nxt == "(" else "}", "")
                value = self.reference(text[j + 2:end], depth)
            else:
                end = j + 1
                value = "$" if nxt == "$" else self.reference(nxt, depth)
            if value is None:
                return None
            out.append(value)
            i = end + 1
        return "".join(out) + text[i:]

    def reference(self, inner, depth):
        if depth > 30:
            return None
        function = re.match(r"^([a-z]+)[ \t]+(.*)$", inner, re.S)
        if function:
            return self.function(function.group(1), function.group(2), depth)
        name = self.expand(inner, depth + 1)
        if name is None:
            return None
        subst = re.match(r"^([^:=]+):([^=]*)=(.*)$", name)
        if subst:
            value = self.reference(subst.group(1), depth + 1)
            return None if value is None else " ".join(
                w[:-len(subst.group(2))] + subst.group(3)
                if subst.group(2) and w.endswith(subst.group(2)) else w
                for w in value.split())
        if name in self.local or name[:1] in self.local and name[1:] in ("D", "F"):
            value = self.local.get(name[:1], "")
            return value if len(name) == 1 else (
                os.path.dirname(value) or "." if name[1] == "D" else os.path.basename(value))
        recursive, value = self.values.get(name, (False, _MAKE_DEFAULTS.get(name, "")))
        return self.expand(value, depth + 1) if recursive else value

    def function(self, name, args_text, depth):
        """make's functions that only compute text; another leaves the line unread."""
        if name == "shell":
            words = args_text.split()
            if len(words) == 2 and words[0] == "cat":
                return "$(cat %s)" % words[1]       # the shell reads it when the line runs
            return None
        text = self.expand(args_text, depth + 1)
        if text is None:
            return None
        args = [a if name == "subst" else a.strip() for a in text.split(",")]
        words = text.split()
        convert = {"strip": lambda w: w, "notdir": os.path.basename,
                   "dir": lambda w: (os.path.dirname(w) or ".") + "/",
                   "basename": lambda w: os.path.splitext(w)[0],
                   "abspath": lambda w: os.path.normpath(os.path.join(self.curdir, w))}
        convert["realpath"] = convert["abspath"]
        if name in convert:
            return " ".join(convert[name](w) for w in words)
        if name in ("firstword", "lastword"):
            return " ".join(words[:1] if name == "firstword" else words[-1:])
        if name in ("addprefix", "addsuffix") and len(args) == 2:
            return " ".join((args[0] + w) if name == "addprefix" else (w + args[0])
                            for w in args[1].split())
        if name == "subst" and len(args) == 3:
            return args[2].replace(args[0], args[1])
        if name == "or":            # `$(or $(APP_PORT),8765)`: the first one not empty
            return next((a for a in args if a), "")
        if name == "if" and len(args) in (2, 3):
            return args[1] if args[0] else "".join(args[2:])
        if name == "wildcard":      # the files there are, named as make names them
            import glob
            base = os.path.join(self.curdir, "")    # (`./*.go` lists ./main.go)
            return " ".join(p if os.path.isabs(w) else p[len(base):] for w in words
                            for p in sorted(glob.glob(os.path.join(base, w))))
        return None


class MakeService(_Record):
    """A service the recipes manage: name, fields, where each came from ({field:
    [where]}), facts, why procclean cannot carry it (or None), the layout's name for it."""

    __slots__ = ("name", "fields", "sources", "facts", "problem", "layout")


# Which facts give a service each field (a launch's pattern is made from its command).
_SERVICE_FIELDS_FROM = (("pidfile", ("launch", "stop", "look")),
                        ("port", ("launch", "stop", "look")),
                        ("pattern", ("stop", "look")), ("logfile", ("launch",)))


def _union_find(facts):
    """Groups of facts about the same processes: a key in common (MakeFact.key), a
    pattern finding one launched command line, a pidfile nobody writes and the one
    daemon, or the one service whose folder or name the pidfile has."""
    parent = list(range(len(facts)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner = {}
    for i, fact in enumerate(facts):
        for key in fact.key():
            first = owner.setdefault(key, i)
            # two apps the layout found are two (api/ and worker/ may share a pattern)
            if not (key[0] == "name" and _named_elsewhere(fact, facts)
                    or fact.kind == facts[first].kind == "layout"):
                parent[find(i)] = find(first)
    launches = [(i, f) for i, f in enumerate(facts) if f.kind == "launch" and f.argv]
    _join_patterns(facts, launches, find, parent)
    written = set(f.pidfile for f in facts if f.kind == "launch" and f.pidfile)
    daemons = [i for i, f in launches if f.problem and f.problem[0] == "mk_daemonizes"
               and not f.pidfile]
    for i, fact in enumerate(facts):
        if len(daemons) == 1 and fact.pidfile and fact.pidfile not in written:
            parent[find(i)] = find(daemons[0])
        elif fact.pidfile and fact.pidfile not in written:
            # a pidfile in the folder of one service (api/.pid), or named after one
            # (celery.pid), is that one's; not one naming another (api/celery.pid)
            base = os.path.basename(fact.pidfile)
            said = set([fact.name or "", base.split(".")[0]])
            names = set([fact.name, base.strip(".").split(".")[0]])
            homes = set(find(j) for j, f in enumerate(facts) if f.kind in (
                "launch", "layout") and (not _same_folder(f.cwd, ".") and path_inside(
                    fact.pidfile, [os.path.normpath(f.cwd)]) and said <= set(
                        ["", "server", "app", os.path.basename(os.path.normpath(f.cwd))])
                    or names & set(_names_of(f)) - set([None, ""])))
            if len(homes) == 1:
                parent[find(i)] = homes.pop()
    _join_port_kills(facts, launches, find, parent)
    groups = {}             # by the first fact of each, in order
    for i, fact in enumerate(facts):
        groups.setdefault(find(i), []).append(fact)
    return list(groups.values())


def _join_patterns(facts, launches, find, parent):
    """A pattern (a stop's, the layout's app's) that finds one launched command line is
    that launch's: its own, its package script's (`pkill -f vite`, `npm run dev`), or
    the program's `go run main.go ARGS` builds (ps: /tmp/go-build.../exe/main ARGS); a
    stop's that finds none, the layout's app whose script it finds."""
    go_run = r"^go run (?:\S*/)?(\S+?)\.go(?:\s+\S+\.go)*"
    scripts = dict((j, package_script_of(f.argv, f.cwd or ".") or re.sub(
        go_run, r"exe/\1", f.argv)) for j, f in launches)
    for i, fact in enumerate(facts):
        if fact.pattern and fact.kind != "launch":
            try:
                regex = re.compile(fact.pattern)
            except re.error:
                continue
            # the layout's app is the one run in its folder (also as its module or
            # package), or anywhere by a dotted name (`celery -A codeverify_worker.main`;
            # `main\.py` is a script's name: the one in its folder)
            anywhere = fact.kind != "layout" or re.search(
                r"[A-Za-z]\w*\\\.(?!(?:py|[cm]?[jt]s|go|rb)\b)\w", fact.pattern)
            hits = dict((find(j), j) for j, f in launches if (     # (runs of one app: one)
                regex.search(f.argv) or regex.search(scripts[j]) or _runs_module(f, fact))
                and (anywhere or _same_folder(f.cwd, fact.cwd)) or _runs_package(f, fact))
            if not hits and fact.kind == "stop":     # `pkill -f vite`: the layout's Vite
                hits = dict((f.name, j) for j, f in enumerate(facts) if f.kind == "layout"
                            and regex.search(_layout_script(f)))
            if len(hits) == 1:
                parent[find(i)] = find(list(hits.values())[0])
            elif hits and fact.kind != "layout":    # `pkill -f "uvicorn|vite"`: all of them
                fact.hits = [facts[j] for j in hits.values()]


def _layout_script(fact):
    """The package script the layout's dev server runs (`npm run dev -- --port {port}`:
    `vite`), else ""."""
    command = re.sub(r" (?:-- )?(?:--port|-p) \{port\}.*", "", fact.command or "")
    return package_script_of(command, fact.cwd or ".")


def _join_port_kills(facts, launches, find, parent):
    """A port a kill by port frees (`fuser -k 9001/tcp`), in no group with a launch, is
    the one launch's whose program listens there (_code_listens: `listen(9001)`)."""
    launched = set(find(j) for j, _ in launches)
    heard = None
    for i, fact in enumerate(facts):
        if fact.kind != "stop" or not fact.port or find(i) in launched:
            continue
        if heard is None:
            heard = [(j, _code_listens(f)) for j, f in launches]
        hits = set(find(j) for j, port in heard if port == fact.port)
        if len(hits) == 1:
            parent[find(i)] = hits.pop()


def _code_listens(launch):
    """The port a launched program listens on unless told, by its code or config (Go's
    ListenAndServe, Node's listen(), gunicorn's bind) or its server's default; None if
    nothing says.  (A Python script's uvicorn.run(port=) is its launch's port already.)"""
    command, cwd = launch.argv or launch.command or "", launch.cwd or "."
    command = package_script_of(command, cwd) or command    # `npm run dev`: its script's
    if re.match(r"go\s+run\b", command):        # (its code's address, else its variable's)
        code = "".join(text or "" for _, text in go_sources(command, cwd))
        return _go_address(command, cwd, cwd, code)[1]
    port = _default_port(command, cwd)[0]
    if port is None and re.match(r"(?:node|nodemon|tsx|ts-node|bun|deno)\b", command):
        port = (_node_port(cwd, command) or (None,))[0]
    return port


def _runs_module(launch, layout):
    """Whether `launch` runs the layout's app: names it from a folder above (`celery -A
    src.api.worker.app` for api.worker:app), or runs a script or console script of the
    project whose code serves it (`myapp server run`: `uvicorn.run("app.main:app")`)."""
    module = re.search(r"([A-Za-z_][\w.]*):([A-Za-z_]\w*)", layout.command or "")
    if not module:
        return False
    words = launch.argv.split()
    # from the folder its module is found in (PYTHONPATH=src): src.api.worker.app for
    # api.worker:app run from src; not services.auth.main:app for main:app in the same one
    path = re.match(r"PYTHONPATH=([^\s:]+)\s", layout.command)
    root = os.path.join(layout.cwd or ".", path.group(1) if path else ".")
    above = os.path.relpath(root, launch.cwd or ".").split(os.sep)
    app = ".".join([f for f in above if f != "."] + list(module.groups()))
    if app in [word.replace(":", ".") for word in words]:
        return True
    if "-m" in words[:-1]:
        return False                    # (_runs_package's)
    prog, args = _program(words)[:2]
    cwd = launch.cwd or "."
    script = _python_script(prog, args) or _console_module(cwd, prog)
    return bool(script) and bool(re.search(r"\.run\(\s*['\"]%s:" % re.escape(
        module.group(1)), _text(cwd, script)))


def _runs_package(launch, layout):
    """Whether `launch` runs the layout's app's module, or a package it is in, with -m
    (`python -m app` for app.main:app; from the root, `python -m server` for server/'s)."""
    module = re.search(r"([A-Za-z_][\w.]*):[A-Za-z_]\w*", layout.command or "")
    words = launch.argv.split()
    if not module or "-m" not in words[:-1]:
        return False
    ran = os.path.join(launch.cwd or ".", words[words.index("-m") + 1].replace(".", "/"))
    app = os.path.join(layout.cwd or ".", module.group(1).replace(".", "/"))
    return (os.path.normpath(app) + "/").startswith(os.path.normpath(ran) + "/")


def _names_of(fact):
    """What a pidfile's name may call a launch: its target's, kind's, program's."""
    command = fact.argv or fact.command
    return (fact.name, _kind_of_program(command), _program(command.split())[0]) \
        if command else (fact.name,)


def _named_elsewhere(fact, facts):
    """Whether a target named like the layout's app `fact` runs another app elsewhere."""
    return fact.kind == "layout" and any(
        f.kind == "launch" and f.argv and f.name == fact.name and not _same_folder(
            f.cwd, fact.cwd) for f in facts)


def _same_folder(one, other):
    return os.path.normpath(one or ".") == os.path.normpath(other or ".")


def _kind_of_program(argv):
    prog = _program((argv or "").split())[0]
    # a script's server (`node server.mjs`) is an API; a frontend's, its tool's
    if prog in _NODE_TOOLS + ("vite", "next", "nuxt", "npx", "serve"):
        return "frontend"
    if prog in ("celery", "rq", "arq", "dramatiq", "huey"):
        return "worker"
    named = re.search(r"\s--name[= ]([a-z][\w.-]*)", argv or "")
    if prog in ("docker", "podman"):        # `docker run --name database mariadb`
        return named.group(1) if named else "container"
    return "backend" if prog else "app"


def make_service(group, taken, crowded=()):
    """The MakeService of a group of facts, named apart from `taken` (`crowded`: kinds of
    program that other apps have too)."""
    fields, sources, problem = {}, {}, None
    # a launch into two logs is still the service's run (its recipe stays)
    launches = [f for f in group if f.kind == "launch"
                and (not f.problem or f.problem[0] == "mk_two_logs")]
    launches = [f for f in launches if f.background] or _dev_run(launches)
    # of make's foreground runs, the dev one is the service's: the others say nothing of it
    told = [f for f in group if f.kind != "launch" or f.background or f.problem
            or f in launches]
    for field, kinds in _SERVICE_FIELDS_FROM:
        found = [f for f in (launches if field == "logfile" else told)
                 if f.kind in kinds and getattr(f, field)]
        values = list(dict.fromkeys(getattr(f, field) for f in found))
        if len(values) > 1 and field == "pattern":
            values = ["|".join("(%s)" % v if "|" in v else v for v in values)]
        if len(values) > 1:
            problem = problem or ("mk_two_values", {"field": field, "values": ", ".join(values)})
        if values:
            fields[field] = values[0]
            sources[field] = [f.where for f in found]
    commands = list(dict.fromkeys((f.command, f.cwd) for f in launches))
    if len(commands) > 1:
        problem = problem or ("mk_two_values", {"field": "command", "values": ", ".join(
            c if d == "." else "cd %s && %s" % (d, c) for c, d in commands)})
    if commands:
        fields["command"], fields["cwd"] = commands[0]
        sources["command"] = sources["cwd"] = [f.where for f in launches]
        if "pattern" not in fields:
            fields["pattern"] = pattern_for(fields["command"])
            sources["pattern"] = sources["command"]
    name = _service_name(group, fields, commands, taken, crowded)
    started = [f for f in group if f.kind == "launch"]
    if started and not commands:
        _in_foreground(started, fields, sources)
    service = MakeService(name_apart(name, taken), fields, sources, group, problem,
                          next((f.name for f in group if f.kind == "layout"), None))
    for fact in group:
        fact.service = service
    return service


def _service_name(group, fields, commands, taken, crowded=()):
    """What make_service names its service: a target's or file's name, else its folder,
    its script or program, its pidfile or its port."""
    names = [f.name for f in sorted(group, key=lambda f: f.kind != "launch") if f.name]
    started = [f for f in group if f.kind == "launch"]
    folders = [os.path.basename(f.cwd) for f in started if f.cwd not in (".", "", None)]
    if not names and folders and re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", folders[0]) \
            and folders[0].lower() not in taken:
        names = [folders[0].lower()]            # cd api && ...: the api
    if not names and started:
        names = _module_subcommand(started[0].argv, taken)
    kind = _kind_of_program(started[0].argv) if started else None
    if not names and started and (kind in taken or kind in crowded):
        names = _script_name(started[0].argv, taken, started[0].cwd)    # dash/app.py
    if not names and started and not commands:
        # no command procclean can run: not a name whose built-in command would apply
        prog = _program((started[0].argv or "").split())[0]
        names = [re.sub(r"[^a-z0-9_.-]", "", prog.lower()).lstrip("._-") or "app"]
    if not names and not started and fields.get("pidfile"):
        stem = os.path.basename(fields["pidfile"]).split(".")[0].lower()    # tmp/unicorn.pid
        names = [stem] if re.match(r"^[a-z0-9][a-z0-9_-]*$", stem) else []
    if not names and not started and fields.get("port"):
        names = ["port-" + fields["port"]]      # what frees port 8080: port-8080
    script = re.match(_NODE_SCRIPT_RE, fields.get("command", ""))  # a script, not a bin
    script = script and _program(script.string.split())[0] in _NODE_TOOLS and script
    words = [w for w in re.split(r"[:_.-]", script.group(1).lower())
             if w not in _SERVE_SCRIPTS] if script else []
    if not names and words:
        names = ["-".join(words)]               # `npm run dev:api`: api
    return names[0] if names else _kind_of_program(started[0].argv if started else "")


# Folders whose names say nothing of what runs there.
_PLACE_WORDS = ("src", "bin", "scripts", "script", "tools", "lib", "app", "apps")
# Files whose names say nothing of the app they hold.
_FILE_WORDS = ("main", "app", "server", "index", "manage", "wsgi", "asgi")


def _module_subcommand(argv, taken):
    """[the subcommand a module is run with] or []: site of `python -m pkg.cli site`
    (not a serve word: `-m pkg.cli serve` is named otherwise)."""
    prog, args, wrappers = _program((argv or "").split())
    word = args[0] if wrappers[-1:] == ["-m"] and args and not re.match(_SERVER_RE, prog) \
        else ""
    if word in SERVE_SCRIPTS or word in taken or not re.match(r"^[a-z][a-z0-9_-]*$", word):
        return []
    return [word]


def _script_name(argv, taken, cwd="."):
    """[the name of the script, else of its folder] or []: movies of `python
    services/movies.py`, dashboard of `streamlit run dash/app.py` (app: any app's file)."""
    prog, args, wrappers = _program((argv or "").split())
    module = re.search(r"(?:^|\s)-m\s+([\w.]+)", argv) if wrappers[-1:] == ["-m"] and \
        not re.match(_SERVER_RE, prog) else None        # python -m app.telegram.bot: bot
    script = module.group(1).replace(".", "/") if module else _script_of(
        " ".join([prog] + args), cwd)
    parts = os.path.normpath(script or "").split("/")
    package = prog in ("go", "air") or module       # (a Go package is a folder)
    folders = parts if package else parts[:-1]
    stem = "" if package else os.path.splitext(parts[-1])[0]
    if stem.lower() not in _NOT_A_NAME + _FILE_WORDS:
        folders.append(stem)
    names = [w.lower() for w in folders[::-1] if w.lower() not in _PLACE_WORDS + ("cmd",)
             and re.match(r"^[A-Za-z0-9][A-Za-z0-9_-]*$", w)]
    return names[:1] if names and names[0] not in taken else []


def _in_foreground(launches, fields, sources):
    """A server that daemonizes (gunicorn --daemon): its command without that flag is
    the service's; none where no one flag does it (celery multi, sudo)."""
    for fact in launches:
        command = _undaemonized(fact)
        if command:
            fields["command"], fields["cwd"] = command, fact.cwd
            fields.setdefault("pattern", pattern_for(fields["command"]))
            for field in ("command", "cwd", "pattern"):
                sources.setdefault(field, [fact.where])
            return


def _undaemonized(fact):
    """A launch's command without the one flag that daemonizes it (celery's --detach
    with the log and pidfile it writes then: procclean's are the service's), or None."""
    prog, args, _ = _program((fact.argv or "").split())
    flags = _DAEMON_FLAGS + (("-d",) if prog in ("rails", "puma", "unicorn",
                                                 "unicorn_rails") else ())
    command = fact.command or ""
    if prog == "celery":
        command = re.sub(r"\s(?:--logfile|--pidfile|-f)(?:=|\s+)\S+", "", command)
    words = command.split(" ")
    kept = [w for w in words if w not in flags]
    daemon = fact.problem and fact.problem[0] == "mk_daemonizes"
    if daemon and len(words) - len(kept) == 1 and prog not in ("mon", "sudo") and \
            "multi" not in args:
        return " ".join(kept)
    return None


# A target running a dev server in the foreground (`make run`, `make dev-api`, `make
# service`).
_RUN_TARGET_RE = (r"^(?:run|dev|serve|\w*serv(?:er|ice)s?|svc|start|watch|up|live|debug|"
                  r"local)(?:[-_:].+)?$|"
                  r"^.+[-_:](?:run|dev|serve|serv(?:er|ice)|svc|start|watch|up)$|"
                  r"^(?:api|web|app|backend|frontend|client|ui|site|worker|beat|flower|"
                  r"scheduler|jobs)$")
# ...unless a word of its name says it is a task (`run-migrations`): it ends at once.
_TASK_TARGET_RE = (r"(?:^|[-_:])(?:migrat\w*|seed\w*|tests?|lint|reset|build|install|"
                   r"setup|init|db|fixtures?|shell|scripts?|bench\w*|docs?|clean|check|"
                   r"format|deploy|backup|dump|populate|generate|backfill)(?=$|[-_:])")
# How a dev run differs from the others of the same app.
_DEV_RUN_RE = (r"--reload|\bdev\b|--debug|runserver|\b(?:air|reflex|nodemon|CompileDaemon|"
               r"gow|wgo)\b|--watch")


def _dev_run(launches):
    """The launches of the one command the service runs: the dev one, else the first."""
    if not launches:
        return []
    best = min(launches, key=lambda f: (not re.search(_DEV_RUN_RE, f.command or "") and
                                        f.where[0] not in ("dev", "watch"),
                                        launches.index(f)))
    return [f for f in launches if (f.command, f.cwd) == (best.command, best.cwd)]


def _serves(fact, group):
    if fact.kind in ("stop", "look"):
        return bool([k for k in fact.key() if k[0] != "name"]) and not fact.hits
    if fact.kind != "launch" or fact.background or fact.together:
        return fact.kind == "launch"
    target = fact.where[0]
    runs = re.match(_RUN_TARGET_RE, target) and not re.search(_TASK_TARGET_RE, target)
    # (`start: gunicorn --daemon ...`: its command without --daemon)
    return (not fact.problem or bool(_undaemonized(fact))) and bool(
        fact.port or runs or any(f.kind == "layout" for f in group))


def _place(fact):
    """(file or folder, kind) of the app a launch or the layout's service runs: by module
    or script (`uvicorn api.main:app` is `uvicorn main:app` in api/), else the folder."""
    kind = fact.name if fact.kind == "layout" else _kind_of_program(fact.argv)
    argv = fact.argv or fact.command or ""
    role = re.search(r"\s(beat|flower)(?=\s|$)", argv)      # celery's other processes
    kind = kind + "-" + role.group(1) if role and kind == "worker" else kind
    manage = re.search(r"manage\.py\s+(\w+)", argv)      # manage.py qcluster: not the site
    kind += ":" + manage.group(1) if manage and manage.group(1) not in _MANAGE_SERVERS[:2] \
        else ""
    node = re.match(_NODE_SCRIPT_RE, argv)
    if node:            # a package script: `npm run dev:api` is not `npm run dev:web`
        return os.path.normpath(fact.cwd or "."), kind + ":" + node.group(1)
    # (flask's: a module or its file, given or exported: `export FLASK_APP=api/app.py`)
    app = re.search(r"(?:^|\s)([A-Za-z_][\w.]*):[A-Za-z_]\w*(?=\s|$)", argv) or re.search(
        r"(?:--app[= ]|FLASK_APP=)['\"]?([A-Za-z_][\w./]*?)(?:\.py)?(?=[\s:'\"]|$)",
        fact.command or argv)
    script = re.search(r"(?:^|\s)(\S+\.py)(?=\s|$)", argv)
    path = script.group(1) if script else _module_file(argv, fact.cwd) or _discovered(
        argv, fact.cwd or ".")
    if app:             # uvicorn --app-dir backend app.main:app: backend/app/main.py
        app_dir = re.search(r"--app-dir[= ](\S+)", argv)
        path = os.path.join(app_dir.group(1) if app_dir else "",
                            app.group(1).replace(".", "/") + ".py")
    return os.path.normpath(os.path.join(fact.cwd or ".", path)), kind


# What servers given no module find in their folder (fastapi-cli; flask without --app).
_DISCOVERY = ((r"\bfastapi\s+(?:dev|run)\b", ("main.py", "app.py", "api.py", "app/main.py",
                                              "app/app.py", "app/api.py")),
              (r"\bflask\b(?!.*(?:--app|FLASK_APP)).*\brun\b", ("app.py", "wsgi.py")))


def _module_file(argv, cwd):
    """The project's file `python -m pkg.main` runs in cwd (or in its src/, the package
    installed from there), or None (`-m pytest`)."""
    match = re.search(r"(?:^|[\s/])(?:python[\d.]*|\{python\})\s+-m\s+([A-Za-z_][\w.]*)",
                      argv or "")
    if not match:
        return None
    path = match.group(1).replace(".", "/")
    files = [d + path + end for d in ("", "src/") for end in (".py", "/__main__.py")]
    return next((p for p in files if os.path.isfile(os.path.join(cwd or ".", p))), None)


def _discovered(argv, cwd):
    """The module a server given none serves in cwd, or "."."""
    for command, files in _DISCOVERY:
        if re.search(command, argv):
            return next((f for f in files if os.path.isfile(os.path.join(cwd, f))), ".")
    return "."


def _script_of(argv, cwd="."):
    """The project's program or script a command runs (`./cmd/worker`), or None; air's,
    what its config builds (`cmd = "go build -o ./tmp/api ./cmd/api"`: ./cmd/api)."""
    words = (argv or "").split()
    if words and os.path.basename(words[0]) == "air":
        config = words[words.index("-c") + 1] if "-c" in words[:-1] else ".air.toml"
        build = re.search(r'(?m)^\s*cmd\s*=\s*"[^"]*\s(\S+)"', _text(cwd or ".", config))
        words = words[:1] + build.group(1).split() if build else words
    return next((w for i, w in enumerate(words) if re.search(
        r"^\.\.?/" if not i else r"^(?![-~/]).*(?:\w/|\.(?:py|[cm]?[jt]s|go|rb)$)", w)),
                None)


def _fold_runs(groups):
    """The groups, with runs of an app naming no pidfile or port (and the layout's app)
    put with the one group running the same app (_place), else (at the root) the one
    that only stops something.  With none or several, or another port, they stay apart,
    as do two apps run at once (`nohup ./server &`, `nohup ./worker &`) and a task."""
    def loose(group):
        return all(f.kind == "layout" or f.kind == "launch" and not (
            f.background and (f.pidfile or f.port)) for f in group)
    tasks = [g for g in groups if all(f.kind == "launch" and re.search(
        _TASK_TARGET_RE, f.where[0]) for f in g)]
    groups = [g for g in groups if g not in tasks]
    at = {}
    for group in [g for g in groups if loose(g)]:
        first = next((f for f in group if f.kind == "layout"), group[0])
        at.setdefault(_place(first), []).append(group)
    others = [g for g in groups if not loose(g)]
    for place, runs in at.items():
        facts = [f for group in runs for f in group]
        launches = [f for f in facts if f.kind == "launch"]
        # (and two a dev session runs at once: `air -c a.toml & air -c b.toml & wait`)
        at_once = set((f.where[:2], f.command) for f in launches if f.together)
        if len(set(f.command for f in launches if f.background)) > 1 or \
                len(set(_script_of(f.argv, f.cwd) for f in launches) - set([None])) > 1 or \
                len(at_once) > len(set(where for where, _ in at_once)):
            # the layout's app alone is the run's of its program, else the first run's
            alone = [g for g in runs if all(f.kind == "layout" for f in g)]
            runs = [g for g in runs if g not in alone] or alone
            for layout in [f for g in alone if g is not runs[0] for f in g]:
                script = _script_of(layout.command)
                next((g for g in runs if script and script == _script_of(
                    g[0].argv, g[0].cwd)), runs[0]).append(layout)
            for run in [g for g in runs if re.match(r"go\s+run\s", g[0].argv or "")]:
                # `go run ./cmd/api` is the app `bin/api &` runs (go build -o bin/api)
                name = os.path.basename(_script_of(run[0].argv) or "")
                homes = [g for g in others if name and any(
                    f.kind == "launch" and f.background and
                    os.path.basename((f.argv or "").split()[0]) == name for f in g)]
                if len(homes) == 1:
                    homes[0].extend(run)
                    runs.remove(run)
            others.extend(runs)
            continue
        homes = [g for g in others if any(f.kind in ("launch", "layout") and
                                          _place(f) == place for f in g)]
        layout = any(f.kind == "layout" for f in facts)
        if not homes and not layout and _same_folder(facts[0].cwd, "."):
            homes = [g for g in others
                     if not any(f.kind in ("launch", "layout") for f in g)]
        ports = set(f.port for f in facts if f.port and f.kind == "launch")
        homes = [g for g in homes if not ports or ports & set(f.port for f in g if f.port)
                 or not any(f.port for f in g)]
        # (`./dist/hub &` with a pidfile is not `./dist/worker &`'s home: two programs)
        homes = [g for g in homes if len(set(_script_of(f.command) for f in facts + g if
                                             f.kind == "launch" and f.background) -
                                         set([None])) < 2]
        if len(homes) == 1:
            homes[0].extend(facts)
        else:
            others.append(facts)
    return others + tasks


def makefile_services(facts):
    """The services the facts speak of, in the order first seen."""
    process = [f for f in facts if f.kind in ("launch", "stop", "look", "layout")]
    found = set(f.name for f in process if f.kind == "layout" and not _named_elsewhere(
        f, process))
    services = []
    groups = _fold_runs(_union_find(process))
    # kinds two apps share (three `python NAME/NAME.py &`): each named by its script
    kinds = [_kind_of_program(f.argv) for g in groups for f in g[:1] if f.kind == "launch"]
    crowded = set(k for k in kinds if kinds.count(k) > 1)
    for group in groups:
        if any(_serves(f, group) for f in group):
            own = set(f.name for f in group if f.kind == "layout")
            taken = found | set(s.name for s in services)
            services.append(make_service(group, taken - own, crowded))
    _told_apart(services, found)
    return services


# Words of a config file's name that say nothing of the app it configures.
_CONFIG_WORDS = ("toml", "env", "yaml", "yml", "json", "ini", "cfg", "conf", "config")


def _told_apart(services, found):
    """Runs of one program that one flag's value tells apart (`air -c .air.agent.toml`,
    `celery ... -Q emails`, `--env-file b.env`): that value kept in each one's pattern,
    and each named by it where its name is only its kind's (agent, not backend-2)."""
    for pattern in set(s.fields.get("pattern") for s in services):
        same = [s for s in services if s.fields.get("pattern") == pattern
                and "command" in s.fields and s.sources["pattern"] == s.sources["command"]]
        if len(same) < 2:
            continue
        values = []
        for service in same:
            words = service.fields["command"].split()
            others = set(w for s in same if s is not service
                         for w in s.fields["command"].split())
            own = (w for flag, w in zip(words, words[1:])
                   if flag in VALUE_FLAGS and w not in others and "{" not in w)
            values.append(next(own, None))
        # (as words the linear matcher reads: ps shows a column before the program)
        head = re.sub(r"^\(\^\|\[ /\]\)", "[ /]", pattern)
        for service, value in zip(same, values):
            words = service.fields["command"].split()
            if value is None:
                # none of its own beside runs in its folder that have one (`air` beside
                # `air -c b.toml`): its whole command only, or its pattern takes theirs
                whole = re.sub(r"\( \|\$\)$", "", head) + "$"
                told = any(v and s.fields.get("cwd") == service.fields.get("cwd")
                           for s, v in zip(same, values))
                if told and "|" not in whole and re.search(whole, " " + " ".join(words)):
                    service.fields["pattern"] = whole
                continue
            base = re.sub(r"\( \|\$\)$", " ", head)
            service.fields["pattern"] = "%s.*%s\\b" % (base, _literal(
                words[words.index(value) - 1] + " " + value))
            program = _program(words)[0]
            name = "-".join(w for w in re.split(r"[._-]", os.path.basename(value).lower())
                            if w and w not in _CONFIG_WORDS + (program,))
            taken = found | set(s.name for s in services)
            if re.match(r"^[a-z0-9][a-z0-9_-]*$", name) and name not in taken and \
                    not service.layout and re.match(r"^%s(-\d+)?$" % re.escape(
                        _kind_of_program(service.fields["command"])), service.name):
                service.name = name


class RulePlan(_Record):
    """What --replace does with one rule: `ops` [(op, service)], the procclean call
    (`verb`, `services`) or why it is `kept`; `prereqs`: from every rule naming it."""

    __slots__ = ("rule", "facts", "ops", "verb", "services", "kept", "prereqs")
    DEFAULTS = {"ops": (), "verb": None, "services": (), "kept": None, "prereqs": ()}


# What recipes do to a service's files (procclean start makes their folder too).
_FILE_WORK = ("remove", "touch", "mkdir")


def service_files(service):
    """(pidfile, logfile) of a MakeService: the recipes', else procclean's defaults for
    its name (the seed's `rm -f backend.pid backend.log` with no start that names them)."""
    defaults = default_fields(service.name)
    return tuple(service.fields.get(field) or defaults[field]
                 for field in ("pidfile", "logfile"))


def _fact_ops(fact, plans, replaced):
    """[(op, service)] of one fact, or a reason (message key, values) it cannot be."""
    service = fact.service
    if fact.problem:
        return fact.problem
    if fact.kind == "other":
        return ("init_kept_more", {})
    if fact.kind == "make":
        if fact.cwd:            # another folder's, read: its facts follow
            return []
        # a goal that only runs a server in the foreground is a dev session's
        missing = [g for g in fact.goals if g not in replaced and not (
            fact.together and g in plans and plans[g].ops and not plans[g].prereqs
            and all(k == "run" for k, _ in plans[g].ops))]
        if missing or not fact.goals:
            return ("mk_make_kept", {"goals": " ".join(missing) or "-"})
        return [("dev" if k == "run" else k, s)
                for g in fact.goals for k, s in plans[g].ops]
    if fact.kind == "launch" and not fact.background:
        if service is None or service.problem or (fact.command, fact.cwd) != (
                service.fields.get("command"), service.fields.get("cwd")):
            # a program no service runs (`pretest: node install.mjs`) is work of its own
            return ("mk_foreground" if service else "init_kept_more", {})
        return [("dev" if fact.together else "run", service)]
    if service is None and fact.hits:
        return _hits_ops(fact)
    if service is None:
        return ("init_kept_more" if fact.kind in _FILE_WORK else "mk_untraced", {})
    if service.problem:
        return (service.problem[0], dict(service.problem[1], svc=service.name))
    if fact.kind in _FILE_WORK:
        pidfile = fact.path == service_files(service)[0]
        return [("rmpid" if pidfile else "rmlog", service)] if fact.kind == "remove" else []
    op = {"launch": "start", "look": "show" if fact.pattern and not fact.captured
          else "look"}.get(fact.kind)
    return [(op or ("kill" if fact.signal == "kill" else "stop"), service)]


def _hits_ops(fact):
    """A stop or look whose pattern finds several launched services: the same on each."""
    op = "show" if fact.kind == "look" else "kill" if fact.signal == "kill" else "stop"
    if all(f.service and not f.service.problem for f in fact.hits):
        return [(op, f.service) for f in fact.hits]
    return ("mk_untraced", {})


def verb_of(ops):
    """The procclean call doing what `ops` do: (verb, services) or (None, reason)."""
    services = list(dict.fromkeys(s for _, s in ops))
    kinds = [k for k, _ in ops]
    if "dev" in kinds:
        return ("dev", services) if set(kinds) == {"dev"} else (None, ("mk_mixed", {}))
    starts = [s for k, s in ops if k == "start"]
    stops = [s for k, s in ops if k in ("stop", "kill")]
    logs = set(s for k, s in ops if k == "rmlog")
    if starts:
        if logs or stops and set(starts) != set(stops) or any(
                _undoes_start([k for k, s in ops if s is service]) for service in starts):
            return None, ("mk_mixed", {})
        return ("restart" if stops else "start"), services
    if stops:
        if logs and (logs != set(stops) or "stop" in kinds):
            return None, ("mk_logs", {})
        return ("force-clean" if logs else "stop"), services
    if "rmpid" in kinds or logs:
        return None, ("mk_files", {})
    if kinds:
        return ("show-processes" if set(kinds) == {"show"} else "status"), services
    return None, None


def _undoes_start(kinds):
    """Whether one service's ops undo its start after it (not the pidfile removed after
    a look: `kill -0 $(cat PID) || rm -f PID`)."""
    after = kinds[kinds.index("start") + 1:]
    checked = after[:after.index("rmpid")].count("look") if "rmpid" in after else 0
    return any(k in ("stop", "kill", "rmlog") or k == "rmpid" and not checked
               for k in after)


def plan_rule(plan, plans, replaced):
    """Fill a RulePlan: its ops and procclean call, or why it is kept."""
    rule = plan.rule
    ops = []
    if rule.names[1:]:
        return ("init_kept_shared", {"others": " ".join(rule.names[1:])})
    if rule.colons == "::":
        return ("init_kept_double", {})
    if not rule.recipe and not plan.facts:
        # (`restart: stop` and `restart: start`: a recipe would run after both)
        if not rule.prereqs or plan.prereqs != rule.prereqs or \
                any(p not in replaced for p in rule.prereqs):
            return None
        ops = [op for p in rule.prereqs for op in plans[p].ops]
    for fact in plan.facts:
        got = _fact_ops(fact, plans, replaced)
        if isinstance(got, tuple):
            return got[0], dict(got[1], what=fact.text or "")
        ops.extend(got)
    plan.ops = ops          # a lone run: a dev session that makes it with others uses it
    if any(k == "run" for k, _ in ops):
        lone = next((f for f in plan.facts if f.kind == "launch"), None)
        if lone is None:
            return None         # a prerequisite's (`dev: web api`: one after the other)
        return ("mk_foreground", {"what": lone.text or ""})
    verb, services = verb_of(ops)
    if verb is None:
        return services
    plan.ops, plan.verb, plan.services = ops, verb, services
    return None


def plan_makefile(plans, own):
    """Decide every rule of the Makefile `own`: replaced when one procclean call does
    what its recipe did and every rule managing its services is too; else kept."""
    # the rule with the recipe (else the first), which make runs
    by_name = dict((n, p) for p in reversed(sorted(plans, key=lambda p: not p.rule.recipe))
                   for n in p.rule.names)
    for plan in plans:
        plan.prereqs = [w for p in plans if p.rule.colons == ":" and set(
            p.rule.names) & set(plan.rule.names) for w in p.rule.prereqs if w != "|"]
    # From every rule replaced down to what holds (a kept rule can keep others).
    replaced = set(n for p in plans if p.rule.file == own for n in p.rule.names)
    for _ in range(len(plans) + 1):
        for plan in plans:
            plan.ops, plan.verb, plan.services = [], None, []
            plan.kept = ("init_kept_included", {"file": plan.rule.file}) \
                if plan.rule.file != own else plan_rule(plan, by_name, replaced)
        _keep_together(plans)
        now = set(n for p in plans if p.verb for n in p.rule.names)
        if now == replaced:
            break
        replaced = now
    return plans


def _touched(plan):
    """The services a rule's recipe manages (not a foreground run's)."""
    return list(dict.fromkeys(
        f.service for f in plan.facts if f.service is not None and f.kind in (
            "stop", "look") or f.kind == "launch" and f.background and f.service))


def _keep_together(plans):
    """A kept rule keeps every rule that manages one of its services."""
    changed = True
    while changed:
        changed = False
        blocked = {}
        for plan in plans:
            if plan.verb is None and plan.rule.recipe:
                for service in _touched(plan):
                    blocked.setdefault(service.name, plan)
        for plan in plans:
            hit = next((s for s in _touched(plan) if s.name in blocked), None) \
                if plan.verb else None
            if hit:
                other = blocked[hit.name].rule
                plan.kept = ("mk_group", {"other": other.names[0], "svc": hit.name,
                                          "at": "%s:%d" % (other.file, other.start + 1)})
                plan.verb, changed = None, True


def _credits(wheres):
    """`Makefile:12 (stop), bin/down.sh:9,10 (down, bounce)`: each line once, with the
    targets that run it, and a file's lines of the same targets together."""
    targets = {}
    for target, path, line in wheres:
        targets.setdefault((path, line), []).append(target)
    lines = {}
    for (path, line), names in targets.items():
        lines.setdefault((path, ", ".join(dict.fromkeys(names))), []).append(str(line))
    return ", ".join("%s:%s (%s)" % (path, ",".join(numbers), names)
                     for (path, names), numbers in lines.items())


def analyse_makefile(folder, name, info, layout=()):
    """(services, plans) of the Makefile `name` and its includes, expanded as make does
    (not `make -n`, which still runs $(MAKE) and `+` lines and prerequisites)."""
    texts = dict((path, _read_text(os.path.join(folder, path), MAKEFILE_LIMIT) or "")
                 for path in info.files or [name])
    curdir = os.path.abspath(folder)
    if info.database:
        values, scoped = dict(info.database[0]), info.database[1]
        curdir = values.get("CURDIR", (False, curdir))[1]
    else:
        values, scoped = _text_values(texts.values(), curdir), {}
    # as make reads the Makefile itself, without init's probe
    values["MAKEFILE_LIST"] = (False, " " + " ".join(info.files or [name]))
    variables = MakeVars(values, curdir)
    exported = _exported(texts.values(), variables)
    oneshell = any(re.search(r"^\.ONESHELL\s*:", t, re.M) for t in texts.values())
    # MAKEFLAGS += -j2: `dev: run-api run-web` makes both at once
    every = "\n".join(texts.values())
    parallel = re.search(r"^\s*MAKEFLAGS\s*[+:]?=.*(?:-j|--jobs)", every, re.M) and \
        ".NOTPARALLEL" not in every
    facts, plans = [], []
    for path, text in texts.items():
        for rule in parse_makefile_text(text, info.prefix)[0]:
            if any("%" in n or n.startswith(".") for n in rule.names):
                continue
            rule.file = path
            reader = RecipeReader(rule.names[0], path, oneshell, curdir, exported)
            reader.vars = variables.for_target(rule, scoped)
            reader.rule(rule, reader.vars)
            goals = [p for p in rule.prereqs if p != "|"]
            if parallel and not rule.recipe and len(goals) > 1:
                where = (rule.names[0], path, rule.start + 1)
                reader.facts.append(MakeFact("make", where, goals=goals, together=True,
                                             text=" ".join(goals)))
            facts.extend(reader.facts)
            plans.append(RulePlan(rule, reader.facts))
    hints = [MakeFact("layout", None, name=f.name, port=f.fields.get("port"),
                      command=f.fields.get("command"), cwd=f.fields.get("cwd"),
                      pattern=f.fields.get("pattern"))
             for f in layout]
    for fact in facts:      # (a pattern is found anywhere in the line: no folder)
        fact.command = fact.command and _portable(fact.command, curdir, fact.cwd or ".")
        fact.pattern = fact.pattern and _portable(fact.pattern, curdir, None)
    services = makefile_services(facts + hints)
    for fact in (f for f in facts if f.kind in _FILE_WORK):
        # the service whose pidfile or logfile the file is (or is in: mkdir -p)
        fact.service = next((s for s in services if any(
            fact.path == path or fact.kind == "mkdir" and
            os.path.normpath(path).startswith(fact.path.rstrip("/") + "/")
            for path in service_files(s))), None)
    return services, plan_makefile(plans, name)


def _portable(text, root, cwd):
    """A command (run in cwd) or pattern (cwd None) without the project's folder in it."""
    here = os.path.join(os.path.relpath(".", cwd), "") if cwd else ""
    for form in (root.replace(" ", "\\ "), root) if root != os.sep else ():
        text = re.sub(r"(?<![\w/.-])%s/" % re.escape(form), lambda m: here, text)
    return text


def _text_values(texts, curdir):
    """make's variables as the Makefile's texts set them, with CURDIR and built-ins."""
    raw = {}
    for text in texts:
        parse_makefile_text(text, "\t", raw)
    values = dict((k, (True, v)) for k, v in raw.items())
    values["CURDIR"] = (False, curdir)
    return values


def _exported(texts, variables):
    """{name: value} of the variables make exports to its recipes."""
    names, assigned = set(), {}
    for text in texts:
        parse_makefile_text(text, "\t", assigned)
        for line in re.findall(r"^export\s+(.*)$", text, re.M):
            assign = re.match(_ASSIGN_RE, "export " + line)
            names.update([assign.group(1)] if assign else line.split("#")[0].split())
    if any(re.search(r"^(?:export\s*|\.EXPORT_ALL_VARIABLES\s*:.*)$", t, re.M)
           for t in texts):
        names.update(assigned)
    values = dict((name, variables.expand("$(%s)" % name)) for name in names)
    return dict((name, value) for name, value in values.items() if value)


def found_with_makefile(services, layout):
    """Each Makefile service over the layout's same one, then the layout's others."""
    by_name = dict((f.name, f) for f in layout)
    found, used = [], set()
    for service in services:
        base = by_name.get(service.layout) or _recipe_frontend(service)
        fields, sources = (dict(base.fields), dict(base.sources)) if base else ({}, {})
        for field, value in service.fields.items():
            if base and field == "command" and _same_value(
                    field, base.fields.get(field), value, "."):
                value = base.fields[field]      # `{python} main.py` for `python main.py`
            elif base and field == "command":
                cwd = service.fields.get("cwd") or fields.get("cwd") or "."
                value = _with_port_flag(value, base.fields.get(field) or "", cwd)
            fields[field] = value
            sources[field] = _credits(service.sources[field])
        builtin = default_fields(service.name)
        than = base.fields.get("command", "") if base else builtin["port"] and \
            builtin["command"]
        if than and "command" in service.fields and "port" not in service.fields and \
                not _same_value("command", than, fields["command"], "."):
            # a built-in's name or the layout's app run by another server: its port
            cwd, command = fields.get("cwd") or ".", fields["command"]
            port = _default_port(command, cwd)[0] or re.search(DEV_SERVER_RE, command) \
                and _frontend_port(cwd, command)[0]
            if port or not base:
                fields["port"] = port or ""
                sources["port"] = sources["command"]
        if "command" in service.fields:
            command = _port_as_placeholder(service.name, fields)
            fields["command"] = _rails_pid_apart(
                _venv_python(command, fields.get("cwd") or "."), fields)
        what = _credits(f.where for f in service.facts if f.where)
        if base:
            used.add(service.layout)
            same = "command" not in service.fields or _same_value(
                "command", base.fields.get("command"), service.fields["command"], ".")
            # (the layout's "run as" is not what runs where a recipe runs another command)
            what = "%s; %s" % (base.what if same else re.sub(
                r", run as [^)]*\)$", ")", base.what), what)
        found.append(FoundService(service.name, fields, what, sources))
    names = set(f.name for f in found)
    return found + [f for f in layout if f.name not in used and f.name not in names]


def _recipe_frontend(service):
    """The dev server a recipe's package script runs where the layout finds none (`cd
    backend/client && npm run dev`, Vite's): as the layout would (its port, its flag)."""
    cwd, command = service.fields.get("cwd") or ".", service.fields.get("command") or ""
    script = package_script_of(command, cwd)
    if "port" in service.fields or not re.search(DEV_SERVER_RE, script):
        return None
    found = _frontend_service(cwd, os.path.join(cwd, "package.json"),
                              re.match(NPM_SCRIPT_RE, command).group(1), script)
    found.fields["command"] = _port_flag(command, script)      # (its tool, not the lock's)
    return found


def _with_port_flag(command, layout, cwd):
    """A recipe's run of the layout's dev server with words of its own (`npm run dev --
    --host 127.0.0.1`) given the layout's port flag where it names no port (`npm run
    start` is `npm start`, `pnpm dev` is `pnpm run dev`); run another way, its server's
    (`runserver {port}`)."""
    match = re.match(r"^(.*?) (-- )?((?:--port|-p) \{port\}.*)$", layout)
    run = re.sub(r"^(pnpm|yarn|bun) (?!run\b)", r"\1 run ", re.sub(
        r"^npm run start\b", "npm start", command)) + " "
    if "{port}" not in layout or re.search(r"--port\b|(?:^|\s)-p\b|\bPORT\b|\{port\}",
                                           command):
        return command
    if not match or not run.startswith(match.group(1) + " "):
        # `uv run python manage.py runserver` for `{python} manage.py runserver {port}`
        return command if with_port(command)[2] else with_port(command, "", cwd)[0]
    dashes = "" if " -- " in command else match.group(2) or ""
    return "%s %s%s" % (command, dashes, match.group(3))


def _port_as_placeholder(name, fields):
    """A command with its port flag as `{port}` when that is the service's port."""
    port = fields.get("port") or next((b["port"] for b in BUILTIN_SERVICES
                                       if b["name"] == name), None)
    command, said, how = with_port(fields["command"])
    return command if how == "flag" and str(said) == str(port) else fields["command"]


RAILS_PIDFILE = "tmp/pids/server.pid"
_RAILS_APART = " -P tmp/pids/rails-server.pid"


def _rails_pid_apart(command, fields):
    """A rails server whose pidfile is the service's: with `-P` another for Rails, which
    refuses to start while its pidfile names a live process (procclean's writes it)."""
    own = os.path.normpath(os.path.join(fields.get("cwd") or ".", RAILS_PIDFILE))
    if not re.search(r"\brails\s+(?:server|s)\b", command) or \
            re.search(r"\s(?:-P|--pid)[= ]?\S", command) or \
            os.path.normpath(fields.get("pidfile") or "") != own:
        return command
    return command + _RAILS_APART


def _venv_python(command, cwd):
    """A recipe's `python ...` as `{python} ...` and a bare `uvicorn` as `{python} -m
    uvicorn` where the project has a venv; a bare arq or rq through the lock's runner."""
    match = re.match(r"^python3?(?=\s)|^(?=(?:%s)\s)" % "|".join(PY_TOOLS), command)
    if match and _project_python(resolve_cwd(cwd), ".")[1] == "tc_venv":
        return ("{python}" if match.end() else "{python} -m ") + command[match.end():]
    return _python_command(command, cwd) if command.split(" ", 1)[0] in PY_SCRIPTS \
        else command


class MakefileRead(_Record):
    """The Makefile init works on: name, text, MakeInfo, how it was read, what it does."""

    __slots__ = ("name", "text", "info", "said", "services", "plans", "secrets")
    DEFAULTS = {"said": None, "services": (), "plans": (), "secrets": {}}


def read_makefile_for_init(ctx, ask):
    """The MakefileRead (make asked when `ask`, not under --dry-run: make runs $(shell
    ...) and remakes includes even under -q), or an exit code when it is not safe."""
    name = next((n for n in MAKEFILE_NAMES if os.path.isfile(n)), "Makefile")
    if not os.path.lexists(name):
        return MakefileRead(name, None, MakeInfo({}, [], "\t", []))
    text = _read_text(name, MAKEFILE_LIMIT)
    if text is None or "\ufffd" in text or len(text) >= MAKEFILE_LIMIT \
            or os.path.islink(name):
        ctx.out.warn("init_makefile_unsafe", path=name)
        return EXIT_FAILED
    info = ask_make(".", name) if ask and not ctx.dry_run else None
    said = ("init_make_asked", {"path": name, "files": " ".join(info.files)}) if info else (
        "init_make_dry" if ctx.dry_run else "init_make_text", {"path": name})
    if info is None and not ask:
        said = None             # plain init: the text is enough, and make runs nothing
    info = info or read_makefile(".", name)
    if info.error:
        ctx.out.warn("init_make_broken", path=name, error=printable(info.error))
        return EXIT_FAILED
    return MakefileRead(name, text, info, said)


def procclean_call(target, verb, services, all_names):
    """The words after $(PROCCLEAN): `$@` where the target says it, else VERB NAMES."""
    names = [s.name for s in services]
    try:
        base, named = split_command(target)
    except ProcCleanError:
        base, named = None, []
    if base == verb and (named == names or not named and (
            set(names) == set(all_names) or verb in ("status", "show-processes"))):
        return "$@"
    return " ".join([verb] + names)


def _knob_setting(service):
    """The `--set` a replaced rule passes so that `make start PORT=8091` moves the port."""
    knob = next((f.knob for f in service.facts if f.knob and f.kind == "launch"
                 and f.port == service.fields.get("port")), None)
    if knob is None:
        return ""
    return " $(if $(filter command%% environment%%,$(origin %s)),--set %s.port=$(%s))" % (
        knob, service.name, knob)


def replace_rules(text, chosen, all_names, args):
    """(the text with each chosen rule's recipe one procclean call, [(names, line, recipe
    lines)]); a rule without a recipe drops the prerequisites its call does."""
    lines = text.split("\n")
    replaced = []
    done = set(n for p in chosen for n in p.rule.names)
    for plan in sorted(chosen, key=lambda p: p.rule.start, reverse=True):
        rule = plan.rule
        made = done.union(*[f.goals for f in plan.facts if f.goals])     # made at once
        prereqs = rule.prereqs if rule.recipe else [w for w in rule.prereqs
                                                    if w not in made]
        new = "%s:%s%s\n%s@$(PROCCLEAN) %s%s $(%s)" % (
            " ".join(rule.head), "".join(" " + w for w in prereqs), rule.comment, rule.prefix,
            procclean_call(rule.names[0], plan.verb, plan.services, all_names),
            "".join(_knob_setting(s) for s in plan.services), args)
        lines[rule.start:rule.end] = new.split("\n")
        replaced.insert(0, (rule.names, rule.start + 1, len(rule.recipe)))
    return "\n".join(lines), replaced


_CARRIED = ("pidfile", "logfile", "port", "pattern", "command", "cwd")


def _same_value(field, have, want, folder):
    have = "" if have is None else str(have).strip()
    want = str(want).strip()
    if field == "command":
        # `--port {port}` carries `--port 8000` (the port is a field of its own)
        have, want = [re.sub(r"^(\{python\}|python3?)(?=\s)", "python", with_port(v)[0])
                      for v in (have, want)]
        # `uvicorn ...` is `{python} -m uvicorn ...`; _rails_pid_apart's pidfile
        have, want = [re.sub(r"^python -m (?=(?:%s)\s)" % "|".join(PY_TOOLS), "",
                             v.replace(_RAILS_APART, "")) for v in (have, want)]
        # a recipe's `npm run dev` is init's `npm run dev -- --port {port}` (_port_flag)
        have, want = [re.sub(r"^((?:npm|pnpm|yarn|bun) .*?)(?: --)? (?:--port|-p) "
                                     r"\{port\}(?: --strictPort)?$", r"\1", v)
                      for v in (have, want)]
    if field == "cwd":
        have = resolve_cwd(have or ".", folder)
    if field in ("pidfile", "logfile", "cwd"):
        have, want = os.path.normpath(have or "."), os.path.normpath(want or ".")
    return have == want


def check_carried(ctx, mk):
    """A service whose values the procclean.ini init keeps lacks keeps its rules."""
    if ctx.force or not os.path.exists(CONFIG_FILE) or not any(p.verb for p in mk.plans):
        return
    config = reason = None          # reason: why it does not load
    try:
        config = load_config(environ={})
    except ProcCleanError as exc:
        reason = str(exc)
    for service in mk.services:
        have = config and config.services.get(service.name)
        for field in [f for f in _CARRIED if f in service.fields]:
            value = getattr(have, field) if have else reason
            # (as init wrote them in procclean.ini: hidden)
            want = without_secrets(str(service.fields[field]), mk.secrets,
                                   field == "pattern")
            if have is None or not _same_value(field, value, want, "."):
                service.problem = ("mk_ini_differs", {
                    "field": field, "want": printable(want),
                    "prog": prog_command(),
                    "have": printable(str(value if value is not None else "")) or "-"})
                break
    plan_makefile(mk.plans, mk.name)


def check_with_make(name, targets):
    """(asked, complaint): whether there was a make, its complaint of `make -n TARGETS`."""
    result = _run_make(["-n", "-f", name] + list(targets), ".")
    if result is None:
        return False, None
    code, _, err = result
    complaint = [l for l in err.splitlines()
                 if "overriding recipe" in l or "***" in l or "missing separator" in l]
    if code != 0 or complaint:
        return True, (complaint or [l for l in err.splitlines() if l.strip()] or
                      ["make exited %d" % code])[0]
    return True, None


def update_makefile(ctx, found, procclean_line, layout, replace, mk):
    """init --makefile: add the targets make lacks; --replace swaps what procclean does."""
    out = ctx.out
    name, info, text = mk.name, mk.info, mk.text or ""
    if mk.said:             # none where there is no Makefile
        out.say(mk.said[0], **mk.said[1])
    names = [service.name for service in found]
    ours = procclean_targets(found)
    if replace:
        check_carried(ctx, mk)
    args = "PROCCLEAN_ARGS" if "ARGS" in info.variables else "ARGS"
    new_text, replaced = replace_rules(text, [p for p in mk.plans if p.verb and replace],
                                       names, args)
    added = [t for t in ours if not info.defines(t)]
    _say_kept(ctx, ours, mk, replaced, replace)
    if "start" in added and "stop" in info.targets and not any(
            "stop" in names for names, _, _ in replaced):
        out.warn("init_own_stop", prog=prog_command())
    out.say("init_layout", cmd=procclean_line, why=out.text(layout[0], **layout[1]))
    new_text = fix_procclean_var(ctx, info, new_text, procclean_line, replace)
    if not added and new_text == text:          # nothing replaced, added or fixed
        return EXIT_OK
    addition = makefile_addition(info, added, procclean_line, text, args)
    if new_text and not new_text.endswith("\n") and addition:
        new_text += "\n"
    new_text += addition + ("\n" if addition and not addition.endswith("\n") else "")
    if ctx.dry_run:
        for names_, line, n in replaced:
            out.say("init_would_replace", targets=" ".join(names_), line=line, n=n)
        if addition:
            out.say("init_would_append")
            out.line(addition)
            out.add("files", {"path": name, "outcome": "would-append", "text": addition})
        return EXIT_OK
    return _write_makefile(ctx, name, mk.text, new_text, added, replaced)


_PROCCLEAN_VAR_RE = r"^((?:override\s+|export\s+)?PROCCLEAN\s*(?:\?|::?|\+|!)?=)(.*)$"


def makefile_addition(info, added, procclean_line, text, args):
    """The block init --makefile appends, or "".  A Makefile using $(PYTHON) without
    setting it gets no PYTHON (its recipes would change): the line says python3."""
    block = ["", "# procclean targets (added by `%s init --makefile`)" % prog_command()]
    others = re.sub(_PROCCLEAN_VAR_RE, "", text, flags=re.M)     # its PROCCLEAN line aside
    if "PYTHON" not in info.variables and re.search(r"\$[({]PYTHON[)}]", others):
        procclean_line = procclean_line.replace("$(PYTHON)", "python3")
    elif "PYTHON" not in info.variables:
        block.append("PYTHON ?= python3")
    if "PROCCLEAN" not in info.variables:
        block.append("PROCCLEAN ?= " + procclean_line)
    if added:
        block += [".PHONY: " + " ".join(added),
                  makefile_rules(added, info.prefix, args)]
    return "\n".join(block) if added or len(block) > 2 else ""


def runs_this_file(value):
    """Whether a Makefile's PROCCLEAN runs this file from the root (path, or -m name)."""
    if re.search(r"\$[({](?!PYTHON[)}])|\$[^({$]", value.replace("$$", "")):
        return True             # names other variables: cannot tell, trust it
    rel = procclean_path()
    dotted = rel[:-3].replace(os.sep, ".") if rel.endswith(".py") else None
    if re.search(r"(^|[\s/\"'])%s([\s\"']|$)" % re.escape(rel), value):
        return True
    return bool(dotted and re.search(r"-m\s+%s(\s|$)" % re.escape(dotted), value))


def fix_procclean_var(ctx, info, text, procclean_line, replace):
    """A PROCCLEAN that does not run this file (the README's line in a repo keeping it in
    tools/): said; with --replace, swapped where the Makefile sets it.  The text."""
    value = info.procclean_value
    if value is None or runs_this_file(value):
        return text
    found = list(re.finditer(_PROCCLEAN_VAR_RE, text, re.M))
    if not replace or not found:
        ctx.out.warn("init_var_wrong", value=printable(value.strip()),
                     path=procclean_path(), line=procclean_line, prog=prog_command())
        return text
    match = found[-1]
    ctx.out.say("init_var_would_replace" if ctx.dry_run else "init_var_replaced",
                value=printable(match.group(2).strip()), line=procclean_line)
    return text[:match.start(2)] + " " + procclean_line + text[match.end(2):]


def _say_kept(ctx, ours, mk, replaced, replace):
    """What init leaves, and with --replace why each kept recipe is kept."""
    out = ctx.out
    info = mk.info
    done = set(n for names, _, _ in replaced for n in names)
    have = [t for t in ours if t in info.targets and t not in done]
    if have:
        out.say("init_kept", targets=" ".join(have))
    by_pattern = [t for t in ours if t not in info.targets and info.pattern_for(t)]
    if by_pattern:
        out.say("init_kept_pattern", targets=" ".join(by_pattern), patterns=" ".join(
            sorted(set(info.pattern_for(t) for t in by_pattern))))
    for plan in mk.plans if replace else ():
        about = any(n in ours or service_name_of(n) for n in plan.rule.names) or any(
            f.kind in ("launch", "stop", "look") or f.service is not None or f.problem
            for f in plan.facts)
        if plan.kept and about:
            values = dict(plan.kept[1], target=plan.rule.names[0], line=plan.rule.start + 1)
            if "what" in values:        # (the recipe's words, without .env's secrets)
                values["what"] = printable(without_secrets(values["what"], mk.secrets)[:70])
            out.say(plan.kept[0], **values)
            out.add("kept", {"target": values["target"], "line": values["line"],
                             "reason": out.text(plan.kept[0], **values)})
    could = [p.rule.names[0] for p in mk.plans if p.verb and not replace]
    if could:
        out.say("init_replace_hint", targets=" ".join(could), prog=prog_command())


def _write_makefile(ctx, name, before, new_text, added, replaced):
    out = ctx.out
    backup = mode = None
    try:
        if before is not None:
            mode = os.stat(name).st_mode & 0o7777
            backup = write_backup(name, before.encode("utf-8"), mode)
        write_atomic(name, new_text.encode("utf-8"), mode)
    except OSError as exc:
        out.warn("init_cannot_write", path=name, error=exc.strerror or str(exc))
        return EXIT_FAILED
    swapped = [n for names, _, _ in replaced for n in names]
    asked, complaint = check_with_make(name, added + swapped)
    if complaint:
        # A Makefile that already failed is not ours to blame (nor to restore).
        old = backup and swapped and check_with_make(backup, swapped)[1]
        if old:
            out.warn("init_make_already_fails", path=name, targets=" ".join(swapped),
                     error=printable(old.replace(backup, name)))
        if not old or _complaint_key(old, backup) != _complaint_key(complaint, name):
            try:
                if backup is None:
                    os.unlink(name)
                else:
                    os.replace(backup, name)
            except OSError as exc:
                out.warn("init_cannot_write", path=name, error=exc.strerror or str(exc))
            out.warn("init_rejected", path=name, error=printable(complaint))
            return EXIT_FAILED
    for names, line, n in replaced:
        out.say("init_replaced", targets=" ".join(names), line=line, n=n)
    if added:
        out.say("init_appended", targets=" ".join(added))
    if backup is not None:
        out.say("init_backup", path=backup)
    out.say("init_unchecked" if not asked else
            "init_checked_as_before" if complaint else "init_checked", path=name)
    out.add("files", {"path": name, "outcome": "written", "text": new_text})
    return EXIT_OK


def _complaint_key(complaint, path):
    """make's complaint without the file name and line it names."""
    return re.sub(r"^%s:\d+: " % re.escape(os.path.basename(path)), "", complaint)


def write_backup(path, data, mode):
    """Keep `data` as PATH.procclean.bak (.bak.1...: an older one may be the original)."""
    for n in range(1001):
        backup = path + ".procclean.bak" + (".%d" % n if n else "")
        try:
            fd = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                         mode & 0o777)
        except OSError as exc:
            if exc.errno != errno.EEXIST or n == 1000:
                raise
            continue
        try:
            try:
                write_fd(fd, data)
            finally:
                os.close(fd)
        except OSError:
            # half a backup is worse than none: the Makefile would be restored from it
            with quietly():
                os.remove(backup)
            raise
        return backup


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def _on_services(command, locked=False, launching=False, **options):
    """The handler of a command on the services named (none: the default ones, with a
    command if `launching`); `locked`: under their locks (a start cannot write a pidfile
    between a stop's look at the machine and its removal of that pidfile)."""
    def handler(ctx, args, names, problems):
        services = ctx.config.select(names, launching)
        if not locked:
            return command(ctx, services, **options)
        with service_locks(ctx, services):
            return command(ctx, services, **options)
    return handler


def _kill_port(ctx, args, names, problems):
    return cmd_kill_port(ctx, names)


def _doctor(ctx, args, names, problems):
    services = ctx.config.select(names)
    if not args.fix:
        return cmd_doctor(ctx, services, problems)
    with service_locks(ctx, services):      # its fixes remove pidfiles and stop
        return cmd_doctor(ctx, services, problems, fix=True)


def _init(ctx, args, names, problems):
    if names:
        raise ProcCleanError("err_init_names")
    return cmd_init(ctx, makefile=args.makefile, replace=args.replace)


# Command -> (handler(ctx, args, names, problems), the lists its --json document always
# has besides command, exit_code, dry_run, error and events), in the order errors list
# them: `names` are the words after the command (and stop-backend's service), `problems`
# doctor's.
_STOPPED = ("processes", "outside", "removed")
HANDLERS = {
    "stop": (_on_services(cmd_stop, locked=True), _STOPPED),
    "force-clean": (_on_services(cmd_stop, locked=True, force=True), _STOPPED),
    "start": (_on_services(cmd_start, launching=True), ("started",)),
    "restart": (_on_services(cmd_restart, launching=True), _STOPPED + ("started",)),
    "show-processes": (_on_services(cmd_show_processes), ("processes", "outside")),
    "status": (_on_services(cmd_status), ("services",)),
    "clean": (_on_services(cmd_clean, locked=True), ("removed",)),
    "kill-port": (_kill_port, ("processes",)),
    "supervise": (_on_services(cmd_supervise), ()),
    "logs": (_on_services(cmd_logs), ("lines",)),
    "dev": (_on_services(cmd_dev, launching=True), ()),
    "doctor": (_doctor, ("findings", "notes", "fixed", "processes", "removed", "outside")),
    "init": (_init, ("services", "files", "kept")),
}
COMMANDS = tuple(HANDLERS)
# Commands that run services in the foreground and show their output: no --json.
FOREGROUND_COMMANDS = ("dev", "supervise")
# Commands that change the machine; the others only look, and write nothing (SPEC).
CHANGING_COMMANDS = ("stop", "force-clean", "start", "restart", "dev", "supervise", "clean",
                     "kill-port", "init")
# Commands that also come as COMMAND-SERVICE (the Makefile's stop-backend, ...).
SERVICE_COMMANDS = ("stop", "force-clean", "start", "restart", "supervise", "logs")

USAGE = "usage: procclean.py [options] COMMAND [SERVICE|PORT ...]\n"
DESCRIPTION = ("Stop, force-clean, start and inspect a local dev stack (backend,\n"
               "frontend, ...) safely: whole process trees, never the wrong process.")
EXAMPLES = """\
commands:
  stop [SERVICE...]          SIGTERM, wait up to --grace, then SIGKILL (whole trees)
  force-clean [SERVICE...]   SIGKILL at once; remove pidfile and logfile
  start [SERVICE...]         start in the background (--wait: until the port listens)
  restart [SERVICE...]       stop, then start
  status [SERVICE...]        its state (running, starting, not listening, unhealthy,
                             restarting, crashed), PIDs, port, uptime, CPU, memory
                             (--health, --check, --watch [SECONDS])
  show-processes [SERVICE...]  every matching process
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
                             (--makefile: add them; --replace: swap ps|grep recipes;
                             --force: overwrite procclean.ini)
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
scope after supervise wait unhealthy_after.

exit codes: 0 done, 1 something could not be stopped or started, 2 usage or
config error, 3 status --check: a service is not running, 130 interrupted
(dev: 130, 143, 129 when stopped by SIGINT, SIGTERM, SIGHUP).
"""


class Options(object):
    """Parsed options: every option's value (None, False or [] when not given), the
    command and the names after it."""

    def __init__(self, specs):
        self.command, self.names, self.help = None, [], False
        for spec in specs:
            setattr(self, spec.dest, [] if spec.kind == "append" else
                    False if spec.kind == "flag" else None)


class OptionSpec(object):
    def __init__(self, flags, kind="flag", metavar=None, help="", choices=None, const=None):
        self.flags = flags
        self.dest = flags[-1].lstrip("-").replace("-", "_")
        self.kind = kind            # flag, value, optional (value may be left out), append
        self.metavar = metavar
        self.help = help
        self.choices = choices
        self.const = const


class Parser(object):
    """A small argparse (argparse, with gettext and locale, costs more start-up time than
    a whole `status`): options before or after the command, `--` ends them."""

    def __init__(self):
        self.specs = []
        self.by_flag = {}

    def add(self, *flags, **kw):
        spec = OptionSpec(flags, **kw)
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
            raise ProcCleanError("err_ambiguous", flag=flag, options=", ".join(
                sorted(s.flags[-1] for s in found)))
        return found.pop() if found else None

    def parse_known_args(self, argv):
        """(Options, the unknown options as given)."""
        options = Options(self.specs)
        extra = []
        positional = []
        words = list(argv)
        while words:
            word = words.pop(0)
            if word == "--":
                positional.extend(words)
                break
            if not _looks_like_option(word):
                positional.append(word)
                continue
            if not word.startswith("--") and len(word) > 2:
                word = self._split_short(word, words)
            flag, eq, value = word.partition("=") if word.startswith("--") else (word, "", "")
            if flag in ("-h", "--help"):
                options.help = True     # as argparse: the help, whatever comes after
                options.json = options.json or "--json" in words    # (but as JSON)
                return options, []
            spec = self.lookup(flag)
            if spec is None:
                extra.append(word)
                continue
            if spec.kind == "flag":
                if eq:
                    raise ProcCleanError("err_no_value", flag=flag)
                setattr(options, spec.dest, True)
                continue
            if not eq:
                value = self._next_value(spec, flag, words)
            if spec.choices and value not in spec.choices:
                raise ProcCleanError("err_choice", flag=flag, value=value,
                                     choices=", ".join(spec.choices))
            if spec.kind == "append":
                getattr(options, spec.dest).append(value)
            else:
                setattr(options, spec.dest, value)
        options.command = positional[0] if positional else None
        options.names = positional[1:]
        return options, extra

    def _split_short(self, word, words):
        """-qf, -n5, -n=5: the first option, the rest put back in front of `words`."""
        spec = self.by_flag.get(word[:2])
        if spec is not None and spec.kind != "flag":
            words.insert(0, word[2:].lstrip("="))
            return word[:2]
        if all(getattr(self.by_flag.get("-" + c), "kind", "") == "flag" for c in word[1:]):
            words[0:0] = ["-" + c for c in word[2:]]
            return word[:2]
        return word

    @staticmethod
    def _next_value(spec, flag, words):
        """The value of an option given without `=`, taken from the front of `words`."""
        if spec.kind == "optional":
            # Its value may be left out: the next word is its value only if it is a
            # number (`--watch status` watches; `--watch 1 status` too).
            if words and words[0].replace(".", "", 1).isdigit():
                return words.pop(0)
            return spec.const
        if words and not _looks_like_option(words[0]):
            return words.pop(0)
        raise ProcCleanError("err_needs_value", flag=flag, metavar=spec.metavar)

    def format_help(self):
        lines = [USAGE, DESCRIPTION, "", "options:"]
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
        return "\n".join(lines) + "\n\n" + EXAMPLES


def _looks_like_option(word):
    # "-1" is a (bad) number for --grace or kill-port to reject, not an option.
    return word.startswith("-") and word != "-" and not word[1:].replace(".", "").isdigit()


def build_parser():
    parser = Parser()
    add = parser.add
    add("--dry-run", help="print what would be signalled, started and removed; change nothing")
    add("--grace", kind="value", metavar="SECONDS",
        help="how long stop waits after SIGTERM before SIGKILL (default 2)")
    add("--json", help="one JSON document on stdout instead of text (logs -f: a line each)")
    add("--everywhere", help="match the patterns on the whole machine, as the Makefile's "
        "recipes did, not only this project's processes (stop, force-clean, restart, "
        "status, show-processes, doctor)")
    add("--lang", kind="value", metavar="{en,zh}", choices=("en", "zh"),
        help="language of messages")
    add("-q", "--quiet", help="print only warnings and errors")
    add("--force", help="kill-port: SIGKILL at once; init: overwrite procclean.ini")
    add("--fix", help="doctor: apply the safe fixes")
    add("--makefile", help="init: add the targets to ./Makefile")
    add("--replace", help="init --makefile: swap the recipes procclean does for procclean "
        "calls; dev: stop the services running in the background first")
    add("--wait", help="start: wait until the service's port listens (and answers)")
    add("--timeout", kind="value", metavar="SECONDS",
        help="start --wait, and `after`: how long to wait (default 30)")
    add("--check", help="status: exit 3 when a service is not running or not healthy")
    add("--health", help="status: also ask each health URL (a request line in the app's log)")
    add("--watch", kind="optional", metavar="SECONDS", const=str(WATCH_INTERVAL),
        help="status: a live view, redrawn every SECONDS (default 2)")
    add("--count", kind="value", metavar="N",
        help="status --watch: stop after N views (N >= 1; default: until Ctrl-C)")
    add("--health-timeout", kind="value", metavar="SECONDS",
        help="how long a health URL may take to answer (default 2)")
    add("--supervise", help="start: keep the service running, restarting it when it crashes")
    add("--max-restarts", kind="value", metavar="N",
        help="supervise: restarts allowed within a minute (default 5)")
    add("-f", "--follow", help="logs: keep printing what is appended")
    add("-n", "--lines", kind="value", metavar="N", help="logs: how many lines (default 20)")
    add("--since", kind="value", metavar="WHEN",
        help="logs: only lines written since WHEN (10m, 1h30m, 14:05, 2026-12-06 14:05)")
    add("--grep", kind="value", metavar="REGEX",
        help="logs: only lines that match REGEX (Python syntax; with -f too)")
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
    except OSError:
        digest = "unknown"
    return "procclean %s (sha256 %s)" % (__version__, digest)


def split_command(command):
    """`stop-backend` -> ("stop", ["backend"]); `stop` -> ("stop", [])."""
    if command in COMMANDS:
        return command, []
    for base in SERVICE_COMMANDS:
        if command.startswith(base + "-"):
            return base, [command[len(base) + 1:]]
    raise ProcCleanError("err_unknown_command", command=command,
                         commands=", ".join(COMMANDS))


def run(args, system, stdout, stderr, environ):
    """Carry out a parsed command line (main's): its config, its context, its handler."""
    command, implied = split_command(args.command)
    handler, records = HANDLERS[command]
    if args.json and command in FOREGROUND_COMMANDS:
        raise ProcCleanError("err_json_foreground", command=command)
    problems = [] if command == "doctor" else None
    root = None if args.config or environ.get("PROCCLEAN_CONFIG") else project_root(environ)
    if root is not None:
        os.chdir(root)      # from here every path means the same as from the root
    # init writes the config: one that no longer loads must not stop it.
    config = load_config(args.config, args.set, environ, folder=root or ".",
                         problems=problems, read_file=command != "init")
    ctx = make_context(args, config, system, stdout, stderr, environ)
    ctx.root = root
    ctx.system.may_write = not ctx.dry_run and (
        command in CHANGING_COMMANDS or (command == "doctor" and args.fix))
    code, error = EXIT_FAILED, None
    try:
        settle_ports(ctx, command, implied + args.names)
        code = handler(ctx, args, implied + args.names, problems)
        return code
    except ProcCleanError as exc:
        exc.lang = ctx.out.lang
        code, error = exc.code, exc.text(exc.lang)
        exc.in_document = True
        raise
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
        raise
    finally:    # with --json: the one document, whatever happened
        ctx.out.finish(records, command=command, exit_code=code, dry_run=ctx.dry_run,
                       **({"error": error} if error else {}))


def project_root(environ):
    """The nearest folder upward (as the user reached it, $PWD) holding procclean.ini or a
    Makefile that runs procclean, no higher than .git's; None: the current folder."""
    here = _logical_path(".", environ)
    folder = here
    while True:
        if os.path.isfile(os.path.join(folder, CONFIG_FILE)) or makefile_runs_procclean(folder):
            return None if folder == here else folder
        parent = os.path.dirname(folder)
        if parent == folder or os.path.exists(os.path.join(folder, ".git")):
            return None
        folder = parent


def makefile_runs_procclean(folder):
    """Whether the Makefile make reads in `folder` mentions procclean."""
    name = next((n for n in MAKEFILE_NAMES if os.path.isfile(os.path.join(folder, n))), "")
    return bool(name) and "procclean" in (
        _read_text(os.path.join(folder, name), MAKEFILE_LIMIT) or "").lower()


def make_context(args, config, system, stdout, stderr, environ):
    """The Context of a command: options checked and converted, config defaults applied."""
    # config.lang is PROCCLEAN_LANG when set (overlay_environ), else procclean.ini's.
    out = Reporter(detect_language(args.lang or config.lang, environ), args.quiet, stdout,
                   stderr, environ, json=args.json)
    grace = _option(args.grace, "--grace", parse_seconds, config.grace, DEFAULT_GRACE)
    timeout = _option(args.timeout, "--timeout", parse_seconds, None, START_TIMEOUT)
    max_restarts = _option(args.max_restarts, "--max-restarts", parse_count,
                           config.max_restarts, MAX_RESTARTS)
    passthrough = ["--grace", repr(grace), "--max-restarts", str(max_restarts)]
    if args.config:
        passthrough += ["--config", os.path.abspath(args.config)]
    for setting in args.set:
        passthrough += ["--set", setting]
    if system is None:
        system = system_from(environ)
    # a file problem that does not stop the command is said where it happens
    system.reporter = lambda key, values: out.warn(key, **values)
    watch = _option(args.watch, "--watch", parse_seconds)
    if watch is not None and watch <= 0:
        raise ProcCleanError("err_watch")
    count = _option(args.count, "--count", parse_count)
    if count == 0:
        raise ProcCleanError("err_count")
    # A health probe is a line in the app's log: asked for, or now and then by --watch.
    probe_every = WATCH_PROBE if watch is not None else (
        0.0 if args.health or args.check else None)
    return Context(
        system, config, out, grace=grace, dry_run=args.dry_run, json=args.json,
        force=args.force, wait=args.wait, check=args.check, watch=watch, count=count,
        timeout=timeout, health_timeout=_option(args.health_timeout, "--health-timeout",
                                                parse_seconds, None, HEALTH_TIMEOUT),
        supervise=args.supervise, max_restarts=max_restarts, follow=args.follow,
        lines=_option(args.lines, "--lines", parse_count, None, LOG_TAIL_LINES),
        rotate=environ.get("PROCCLEAN_NO_ROTATE") != "1", passthrough=passthrough,
        everywhere=args.everywhere, replace=args.replace, probe_every=probe_every,
        log_filter=_log_filter(args, system), lines_given=args.lines is not None)


def _log_filter(args, system):
    """logs --since/--grep as (since, grep), or None when neither is given."""
    if args.since is None and args.grep is None:
        return None
    since = None if args.since is None else parse_since(args.since, system.wall_time())
    grep = None
    if args.grep is not None:
        try:
            grep = re.compile(args.grep)
        except re.error as exc:
            raise ProcCleanError("err_grep", value=args.grep, error=exc)
    return since, grep


def _option(text, what, parse, configured=None, default=None):
    """An option's value parsed (`what` names it in errors), else configured, else default."""
    if text is not None:
        return parse(text, what)
    return configured if configured is not None else default


def system_from(environ):
    """The real machine, read from the sources PROCCLEAN_PS and PROCCLEAN_PORTS name."""
    sources = (environ.get("PROCCLEAN_PS") or "auto", environ.get("PROCCLEAN_PORTS") or "auto")
    if sources[0] not in PS_SOURCES:
        raise ProcCleanError("err_env_choice", name="PROCCLEAN_PS", value=sources[0],
                             choices=", ".join(PS_SOURCES))
    if sources[1] != "auto" and sources[1] not in System.LISTENER_READERS:
        raise ProcCleanError("err_env_choice", name="PROCCLEAN_PORTS", value=sources[1],
                             choices=", ".join(["auto"] + list(System.LISTENER_READERS)))
    system = System(*sources)
    system.private_folders = private_folders(environ)
    return system


def private_folders(environ):
    """Where this user may keep files between commands, best first, as (folder, whether
    procclean creates it): XDG_RUNTIME_DIR (the user's, 0700), else its own in /tmp (as
    tmux-UID)."""
    folders = []
    if environ.get("XDG_RUNTIME_DIR", "").startswith("/"):
        folders.append((environ["XDG_RUNTIME_DIR"], False))
    temp = environ.get("TMPDIR", "")
    folders.append((os.path.join(temp if temp.startswith("/") else "/tmp",
                                 "procclean-%d" % os.geteuid()), True))
    return tuple(folders)


def main(argv=None, system=None, stdout=None, stderr=None, environ=None):
    """Run procclean with `argv` (default: the command line): the exit code.  Tests pass
    their own machine, streams and environment."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["keep-log"]:
        return keep_log(argv[1:])       # dev's own helper: no options, no config
    environ = os.environ if environ is None else environ
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    plain = Reporter(stdout=stdout, stderr=stderr, environ=environ)
    lang = detect_language(None, environ)
    args = None
    try:
        _guard_interrupts(False)        # from here Ctrl-C is caught below
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        lang = detect_language(args.lang, environ)
        if args.help:
            return print_info(plain, args, "help", parser.format_help().rstrip("\n"))
        for word in extra:
            port = re.match(r"--port\b", word)     # (uvicorn's, vite's flag)
            raise ProcCleanError("err_port_option" if port else "err_unrecognized",
                                 option=word)
        if args.version:
            return print_info(plain, args, "version", version_text())
        if not args.command:
            plain.write(stderr, USAGE, end="")
            raise ProcCleanError("err_no_command")
        return run(args, system, stdout, stderr, environ)
    except ProcCleanError as exc:
        message = exc.text(exc.lang or lang)
        plain.error(message)
        if getattr(args, "json", False) and not exc.in_document:
            error_document(args, exc.code, message, Reporter(
                stdout=stdout, stderr=stderr, environ=environ, json=True))
        return exc.code
    except KeyboardInterrupt:
        plain.error(MESSAGES[lang]["interrupted"])
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence(stdout)
        return EXIT_OK
    except Exception as exc:     # a bug: one line, not a traceback, unless asked for
        if environ.get("PROCCLEAN_DEBUG"):
            raise
        plain.error(MESSAGES[lang]["internal_error"].format(kind=type(exc).__name__,
                                                            error=exc))
        return EXIT_FAILED
    finally:
        _guard_interrupts(True)         # and again from here to the exit


def print_info(out, args, command, text):
    """--help, --version: their text; with --json, a document holding it."""
    if args.json:
        import json
        text = json.dumps({"command": command, "exit_code": EXIT_OK,
                           "dry_run": bool(args.dry_run), command: text, "events": []},
                          indent=2)
    out.data(text)
    return EXIT_OK


def error_document(args, code, message, out):
    """--json for a command stopped before it ran (a bad option, setting): still one
    document, with its error."""
    try:
        command = split_command(args.command or "")[0]
    except ProcCleanError:
        command = args.command
    out.finish(HANDLERS.get(command, (None, ()))[1], command=command, exit_code=code,
               dry_run=bool(args.dry_run), error=message)


def _guard_interrupts(early):
    """Run as a script, SIGINT ends procclean with one line and 130 until main() can
    catch KeyboardInterrupt (`early` False) and again once it is done (`early` True)."""
    guard = globals().get("_early_interrupt")
    if guard is None:
        return
    import _signal
    current = _signal.getsignal(_signal.SIGINT)
    if early and current is _signal.default_int_handler:
        _signal.signal(_signal.SIGINT, guard)
    elif not early and current is guard:
        _signal.signal(_signal.SIGINT, _signal.default_int_handler)


def exit_as(code):
    """End the process with main()'s `code`; after an interrupt (128 + SIGHUP, SIGINT
    or SIGTERM) by that signal itself, default action restored: make says "Interrupt"
    and stops, a shell sees 128+N, a `trap` runs (exit status 130 reads as an error)."""
    signum = code - 128 if isinstance(code, int) else 0
    flushed = True
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            flushed = False
    if signum in INTERRUPT_SIGNALS:
        import signal
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    if flushed and isinstance(code, int) and 0 <= code <= 255 and _nothing_at_exit():
        # files, locks closed: Python's own ending (a full collection) has nothing to do
        os._exit(code)
    raise SystemExit(code)


def _nothing_at_exit():
    """Whether the interpreter's ending would do nothing: no atexit callback (coverage
    saves its data in one), no tracer or profiler, no thread but daemons (Python would
    wait for them).  Only CPython tells the callbacks; elsewhere the ending is kept."""
    import atexit
    callbacks = getattr(atexit, "_ncallbacks", None)
    if callbacks is None or callbacks() or sys.gettrace() or sys.getprofile():
        return False
    threading = sys.modules.get("threading")
    return threading is None or all(
        thread.daemon for thread in threading.enumerate()
        if thread is not threading.main_thread())


if __name__ == "__main__":
    exit_as(main())
