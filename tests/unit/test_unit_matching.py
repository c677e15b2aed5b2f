"""Patterns matched in time linear in the line (SPEC "Never"; issue 19 item 4), with the
seed's semantics: found anywhere in the ps line, as re.search (and grep -E) finds it."""
import os
import random
import re
import subprocess
import sys

import pytest

import procclean
from procclean import BUILTIN_SERVICES, Process, Service, compile_pattern

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILTIN = [s["pattern"] for s in BUILTIN_SERVICES]

# What users write in procclean.ini, and shapes the linear matcher reads and does not read.
PATTERNS = BUILTIN + [
    r"uvicorn.*main", r"[Pp]ython.*manage\.py runserver", r"gunicorn.*app:app",
    r"node .*vite", r"python3? main\.py", r"(python|python3) -m (flask|uvicorn)",
    r"celery -A \w+ worker", r"^root .*java", r"npm (run )?dev$", r"a.+b", r"a.*?b",
    r"main.py", r"x[a-c0-2_]y", r"(?:foo|bar).*baz", r"(a|b)?c.*d", r"\.vite/.*\(x\)",
    r"[-a]z", r"[a-]z", r"\d+:\d+", r"(?i)PYTHON.*main", r"a{2,}", r"[^/]+\.py",
    r"(a.*b|c)", r"((x|y).*z)", r"", r"a|", r"p.y.t.h.o.n", r"...", r"[.]py",
    r"^dev .*main\.py$", r"^$", r"^", r"$", r"main\.py$|^root", r"(^a|b$)", r"a\$",
]

LINES = [
    "root 10 1 python main.py", "dev 11 1 /usr/bin/python3 /srv/app/main.py --reload",
    "dev 12 1 uvicorn main:app --port 8000", "dev 13 1 Python3.11 -m fastapi run main.py",
    "dev 14 1 node /work/frontend/node_modules/.bin/vite", "dev 15 1 npm run dev",
    "dev 16 1 esbuild --service=0.19", "dev 17 1 vim main.py", "dev 18 1 main.py python",
    "dev 19 1 pythonmain.py", "dev 20 1 python main_py", "dev 21 1 python\nmain.py", "",
    "dev 22 1 celery -A tasks worker", "root 23 1 java -jar x.jar", "dev 24 1 npm dev",
    "dev 25 1 a\u00e9b \u00e9", "dev 26 1 .vite/x (x)", "dev 27 1 xaay xcy x_y",
]


def found(pattern, line):
    return bool(compile_pattern(pattern).search(line))


@pytest.mark.parametrize("pattern", PATTERNS)
def test_the_same_answer_as_re_search(pattern):
    for line in LINES:
        assert found(pattern, line) == bool(re.search(pattern, line)), (pattern, line)


def test_the_built_in_patterns_and_common_ones_never_go_to_re():
    for pattern in BUILTIN + [r"uvicorn.*main", r"[Pp]ython.*manage\.py runserver",
                              r"python3? main\.py", r"(python|python3) -m (flask|uvicorn)",
                              r"node .*vite", r"main.py", r"a.+b"]:
        assert isinstance(compile_pattern(pattern), procclean._ChainMatcher), pattern


def test_a_two_megabyte_command_line_repeating_the_first_word():
    # What stalled every command for 14-28 s: re rescans `.*` from each `python`.
    # Here each word is one str.find: the answer comes from a few passes over the line.
    backend = Service("backend", BUILTIN[0], "b.pid", "b.log", 8000, "", ".")
    line = "dev 99 1 mypy " + "python " * 300000
    assert not backend.matches(Process(99, 1, "dev", line[9:], line=line))
    line += "main.py"
    assert backend.matches(Process(99, 1, "dev", line[9:], line=line))


def test_anchored_patterns_on_a_two_megabyte_line():
    # `^` and `$` sent these to re, which backtracked: `python.*main\.py$` took 24 s on
    # 280 kB of `python `, minutes on 2 MB.
    line = "dev 99 1 mypy " + "python " * 300000 + "main.py --x"
    for pattern, found in [(r"python.*main\.py$", False), (r"python.*main\.py --x$", True),
                           (r"^dev .*python.*main\.py", True), (r"^mypy.*main", False),
                           (r"^dev 99 1 mypy .*main\.py --x$", True), (r"^python", False)]:
        matcher = compile_pattern(pattern)
        assert isinstance(matcher, procclean._ChainMatcher), pattern
        assert bool(matcher.search(line)) == found, pattern
        assert bool(matcher.search(line + "\n")) == found, pattern


def test_word_boundaries_and_the_patterns_init_writes_on_a_long_line():
    # `\b` sent a pattern to re, which rescanned `.*` from each `python`: 23 s on 280 kB
    # for `\bpython\b.*main\.py\b`.  Now each word is found by str.find and its `\b`,
    # `\d`, `\w` or grep -w's look-arounds checked at fixed places beside it.  (400 kB
    # lines: re would take minutes; the benchmark times a 2 MB one among 1,000 others.)
    init = [procclean.grep_pattern(["-w", "python.*main.py"])[0],       # grep -w
            procclean.grep_pattern(["-w", "python"])[0],
            procclean.grep_pattern(["-w", "main\\.py"])[0],
            procclean.grep_pattern(["python.*main\\.py"])[0],              # grep (BRE)
            procclean.pattern_for("python main.py"),                        # init's own
            procclean.pattern_for("uv run uvicorn app.main:app --port {port}")]
    patterns = [r"\bpython\b.*main\.py\b", r"\bpython\d\b.*\bmain\w\.py\b",
                r"python\S.*main"] + init
    for filler in ["python ", "pythonx ", "python3 ", "xpython ", "uvicorn app.main:app0 "]:
        line = "dev 99 1 mypy " + filler * (400000 // len(filler))
        for pattern in patterns:
            matcher = compile_pattern(pattern)
            assert isinstance(matcher, procclean._ChainMatcher), pattern
            assert bool(matcher.search(line)) == bool(re.search(pattern, line[-400:])), \
                (pattern, filler)
    line = "dev 99 1 mypy " + "pythonx " * 50000 + "python3 /srv/main1.py --x"
    assert compile_pattern(r"\bpython\d\b.*\bmain\w\.py\b").search(line)
    assert not compile_pattern(init[0]).search(line)       # main1.py: not main.py
    assert not compile_pattern(r"\bpython\b.*main\.py\b").search(line)
    assert compile_pattern(init[0]).search(line.replace("main1", "main"))


def test_greps_in_a_row_are_one_pattern_for_lines_with_all_of_them_in_any_order():
    # `ps aux | grep xpress | grep exe/main | grep -v grep`: the binary `go run` builds
    two = procclean.grep_all([procclean.grep_pattern(["xpress"])[0],
                              procclean.grep_pattern(["exe/main"])[0]])
    matcher = compile_pattern(two)
    assert isinstance(matcher, procclean._ChainMatcher)     # linear in the line still
    assert matcher.search("dev 7 1 /tmp/go-build1/b001/exe/main xpress")
    assert matcher.search("dev 7 1 ./xpress --from exe/main")
    assert not matcher.search("dev 7 1 go run main.go xpress")
    three = compile_pattern(procclean.grep_all(["api", "uvicorn", "8000"]))
    assert three.search("dev 9 1 uvicorn api:app --port 8000")
    assert three.search("dev 9 1 8000 api uvicorn")
    assert not three.search("dev 9 1 uvicorn api:app --port 8001")
    either = compile_pattern(procclean.grep_all(["(?i)vite", "(?i)admin|shop"]))
    assert either.search("dev 5 1 node /srv/SHOP/node_modules/.bin/Vite")
    # the seed's backend pattern, then the folder: each alternative of the group beside
    # the other grep, which the linear matcher reads (the group went to re: 22 s on a
    # 224 kB `api main.py python python ...`, quadratic)
    seed = procclean.grep_all([r"([Pp]ython.*main\.py|uvicorn.*main|fastapi.*main)", "api"])
    matcher = compile_pattern(seed)
    assert isinstance(matcher, procclean._ChainMatcher), seed
    for line in ("dev 5 1 python3 api/main.py", "dev 5 1 /srv/api/bin/uvicorn main:app",
                 "dev 5 1 python3 web/main.py", "api main.py " + "python " * 50):
        assert bool(matcher.search(line)) == bool(re.search(seed, line)), line
    # grep -i beside a grep that minds case, and four greps: kept as the team wrote them
    assert procclean.grep_all(["(?i)vite", "admin"]) is None
    assert procclean.grep_all(["a", "b", "c", "d"]) is None


def test_a_pattern_re_takes_skips_lines_without_the_text_it_needs():
    matcher = compile_pattern(r"celery -A \w+ worker")
    assert isinstance(matcher, procclean._RegexMatcher)

    class Refuses(object):
        def search(self, line):
            raise AssertionError("re scanned a line that cannot match")

    real, matcher.regex = matcher.regex, Refuses()
    assert matcher.search("dev 1 0 mypy " + "celery " * 100000) is None
    matcher.regex = real
    assert matcher.search("dev 1 0 celery -A tasks worker")


def test_a_pattern_that_does_not_compile_is_a_config_error():
    for pattern in ["(", "a)", "[", "*a", "a**", "\\", "[b-a]", "(?P<x", "a{1"]:
        if pattern == "a{1":
            continue        # a literal for re: compiles
        with pytest.raises(re.error):
            compile_pattern(pattern)


def test_the_needed_text_of_the_editor_browser_and_procclean_patterns():
    assert procclean._needed_text(procclean._PROCCLEAN_RE) == [["procclean"],
                                                               ["-m", "procclean"]]
    assert procclean._needed_text(procclean.BROWSER_APPS_RE) == [["/Applications/",
                                                                  ".app/"]]
    assert procclean._needed_text(r"(?i)abc") is None
    assert procclean._needed_text(r"ab?c*d") == [["a", "d"]]
    assert procclean._needed_text(r"\x41b") is None


ALPHABET = "ab.-/ P\n\u00e9_1\u00b2"
PIECES = ["a", "b", "ab", "-", "/", " ", ".", ".*", ".+", ".*?", "[ab]", "[a-c]", "[-/]",
          "[.]", "\\.", "\\-", "a?", "(a|b)", "(?:ab|b)", "(a|ba)?", "P", "\u00e9", "^",
          "$", "\\d", "a+", "b*", "(a.*b)", "[^a]", "\\s", "(?i)a", "a{2}", "\\n", "\\b",
          "\\b", "\\w", "\\S", "(?<![\\w])", "(?!\\w)", "(?:a.*b)", "(?:.*a)"]


def random_pattern(rng):
    parts = ["".join(rng.choice(PIECES) for _ in range(rng.randint(0, 5)))
             for _ in range(rng.randint(1, 3))]
    pattern = "|".join(parts)
    return "(%s)" % pattern if rng.random() < 0.3 else pattern


@pytest.mark.parametrize("seed", range(8))
def test_random_patterns_and_lines_give_the_same_answer_as_re_search(seed):
    rng = random.Random(seed)
    checked = 0
    for _ in range(400):
        pattern = random_pattern(rng)
        try:
            reference = re.compile(pattern)
        except re.error:
            with pytest.raises(re.error):
                compile_pattern(pattern)
            continue
        except (DeprecationWarning, FutureWarning):
            continue
        matcher = compile_pattern(pattern)
        for _ in range(25):
            line = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 24)))
            assert bool(matcher.search(line)) == bool(reference.search(line)), \
                (pattern, line)
            checked += 1
    assert checked > 5000


@pytest.mark.parametrize("line, matches", [
    ("dev 5 1 /usr/bin/node /home/dev/shop/frontend/vite.js --port 3000", [False, True]),
    # a venv's and nvm's paths hold `/.`, as the editors' (~/.vscode/...) do
    ("dev 5 1 /home/dev/shop/.venv/bin/python main.py", [True, False]),
    ("dev 5 1 /home/dev/.nvm/versions/node/v20.11.0/bin/node /home/dev/shop/frontend/"
     "node_modules/.bin/vite --port 3000", [False, True]),
])
def test_python_m_procclean_loads_no_re_for_the_built_in_patterns(line, matches):
    # `re` pulls enum and more: 3 ms of every command's start-up (issue 23).
    code = ("import sys; sys.path.insert(0, %r); import procclean as p\n"
            "s = [p.Service(d['name'], d['pattern'], 'x.pid', 'x.log', 8000, '', '.')"
            " for d in p.BUILTIN_SERVICES]\n"
            "line = %r\n"
            "proc = p.Process(5, 1, 'dev', line[8:], line=line)\n"
            "assert [x.matches(proc) for x in s] == %r\n"
            "assert not (p.is_viewer(proc) or p.is_procclean(proc) or p.is_browser(proc))\n"
            "assert p.parse_port(' 8000 ') == 8000 and p._split_names('a, b c') == "
            "['a', 'b', 'c']\n"
            "print(sorted(m for m in ('re', 'enum') if m in sys.modules))"
            % (REPO, line, matches))
    out = subprocess.check_output([sys.executable, "-S", "-c", code])
    assert out.decode().strip() == "[]", (
        "importing procclean (or matching the built-in patterns) imported re: keep "
        "patterns as text (re.match(TEXT, s)), never re.compile at module level")


def test_stop_without_a_supervisor_state_file_loads_no_json():
    # state_roots reads each service's supervisor state on every stop: when there is
    # none, json (1-2 ms of start-up) is not imported for it.
    code = ("import sys; sys.path.insert(0, %r); import procclean as p\n"
            "assert p.System().read_state('/nonexistent/backend.supervise.json') == {}\n"
            "print('json' in sys.modules)" % REPO)
    out = subprocess.check_output([sys.executable, "-S", "-c", code])
    assert out.decode().strip() == "False"
