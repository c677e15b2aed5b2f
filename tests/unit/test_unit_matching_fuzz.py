"""procclean's fast matching says what Python's re says, on generated patterns and lines
and on every pattern procclean itself uses (issue 19 item 4, issue 23).

Three fast paths stand between a pattern and re.search: the linear matcher of a
service's pattern (Service.matches -> compile_pattern), the literal-text prefilter of
the patterns it hands to re (_RegexMatcher), and the module-level `re` proxy whose
search returns None without re when a line lacks the text _needed_text says every match
holds (editors, browsers, procclean's own regexes all go through it).  A "no" where re
says "yes" leaves a process running; a "yes" where re says "no" takes the wrong one.
Seeded: the same patterns and lines on every run."""
import ast
import os
import random
import re
import warnings

import pytest

import procclean
from procclean import BUILTIN_SERVICES, Process, Service, compile_pattern

try:
    _parser, _C = re._parser, re._constants         # 3.11+
except AttributeError:
    import sre_constants as _C
    import sre_parse as _parser

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
POOL = "aAbPpy.-/ _\u00e9\n\t07\u0663\u00b2"    # (Arabic 3: \\d; superscript 2: \\w only)


# -- lines: from the pattern's own parse tree (near matches), mutated (near misses) --------

def _class_char(rng, items):
    chars, negated = [], False
    for op, av in items:
        if op == _C.NEGATE:
            negated = True
        elif op == _C.LITERAL:
            chars.append(chr(av))
        elif op == _C.RANGE:
            chars.append(chr(rng.randint(av[0], av[1])))
        elif op == _C.CATEGORY:
            chars.append({_C.CATEGORY_DIGIT: "7", _C.CATEGORY_SPACE: " ",
                          _C.CATEGORY_WORD: "w", _C.CATEGORY_NOT_DIGIT: "x",
                          _C.CATEGORY_NOT_SPACE: "s"}.get(av, "-"))
    return rng.choice(POOL) if negated or not chars else rng.choice(chars)


def _emit(rng, tree, out):
    for op, av in tree:
        if op == _C.LITERAL:
            out.append(chr(av))
        elif op == _C.NOT_LITERAL:
            out.append(rng.choice([c for c in POOL if ord(c) != av]))
        elif op == _C.ANY:
            out.append(rng.choice(POOL.replace("\n", "")))
        elif op == _C.IN:
            out.append(_class_char(rng, av))
        elif op == _C.CATEGORY:
            out.append(_class_char(rng, [(op, av)]))
        elif op == _C.BRANCH:
            _emit(rng, rng.choice(av[1]), out)
        elif op == _C.SUBPATTERN:
            _emit(rng, av[-1], out)
        elif op in (_C.MAX_REPEAT, _C.MIN_REPEAT):
            low, high, sub = av
            for _ in range(rng.randint(low, min(high, low + 3))):
                _emit(rng, sub, out)
        # anchors, look-arounds, back references: nothing (re decides)
    return out


def _mutated(rng, text):
    chars = list(text)
    for _ in range(rng.randint(1, 3)):
        i = rng.randint(0, len(chars))
        kind = rng.random()
        if kind < 0.4 and chars:
            del chars[min(i, len(chars) - 1)]
        elif kind < 0.7 or not chars:
            chars.insert(i, rng.choice(POOL))
        else:
            chars[min(i, len(chars) - 1)] = rng.choice(POOL)
    return "".join(chars)


def lines_for(rng, pattern, count):
    """Lines near `pattern`: spelled from its parse tree, half of them mutated, some with
    text around, some with the pattern's characters at random, some split by newlines."""
    tree = _parser.parse(pattern)
    literal = [c for c in pattern if c not in "\\()[]{}*+?|^$"] or ["a"]
    lines = []
    for k in range(count):
        if k % 5 == 4:
            line = "".join(rng.choice(literal + list(POOL))
                           for _ in range(rng.randint(0, 20)))
        else:
            line = "".join(_emit(rng, list(tree), []))
            if rng.random() < 0.5:
                line = _mutated(rng, line)
            if rng.random() < 0.6:
                line = "dev %d 1 %s%s" % (k, line, rng.choice(["", " --port 8000", "\n x"]))
        lines.append(line)
    return lines


# -- patterns: the shapes users write, and the ones the linear matcher must refuse --------

LITERALS = ["a", "b", "a", "b", "P", "p", "y", "\u00e9", "\U0001f600", "-", "/", " ", "_",
            "\\.", "\\-", "\\ ", "\\/", "\\\\", "\\|", "\\(", "\\)", "\\[", "\\]", "\\{",
            "\\}", "\\*", "\\+", "\\?", "\\^", "\\$", "\\#", "\\_", "\\&", "\\~", "\t"]
CLASSES = ["[ab]", "[Pp]", "[a-c]", "[-a]", "[a-]", "[.]", "[ .-]", "[]a]", "[\\]a]",
           "[a\\-b]", "[\u00e9-\u00eb]", "[\\\\]", "[a-cx-z]", "[*.?]", "[(|)]",
           "[^a]", "[^]a]"]
OTHERS = ["^", "$", "\\b", "\\B", "\\d", "\\w", "\\s", "\\S", "\\W", "\\A", "\\Z", "\\x61",
          "\\u00e9", "\\n", "\\t", "\\0", "(?i:a)", "(?=a)", "(?!a)", "(?<=a)",
          "(?<!a)", "(?#c)", "(?P<n>a)", "a{2}", "b{1,2}", "a{,2}", "a{0}",
          "a{", "}", "a*", "b+", "a*?", "b+?", "a??"]
# What the linear matcher checks at a place: init's grep -w, `\b`, one-character classes.
TESTS = ["\\b", "\\b", "\\d", "\\w", "\\S", "(?<![\\w])", "(?![\\w])", "(?<!\\w)", "(?!\\w)",
         "\\<", "\\>"]
JOINS = [".*", ".*", ".+", ".*?", ".+?", "..*", ".", ""]


def _atom(rng, depth):
    kind = rng.random()
    if kind < 0.45:
        atom = rng.choice(LITERALS)
    elif kind < 0.55:
        atom = "."
    elif kind < 0.7:
        atom = rng.choice(CLASSES)
    elif kind < 0.95 and depth < 2:
        alternatives = ["".join(_atom(rng, depth + 1) for _ in range(rng.randint(0, 3)))
                        for _ in range(rng.randint(1, 3))]
        if depth == 0 and rng.random() < 0.2:     # a `.*` inside a group: re's
            alternatives[0] += ".*"
        atom = rng.choice(["(", "(", "(?:"]) + "|".join(alternatives) + ")"
    elif kind < 0.975:
        return rng.choice(TESTS)
    else:
        return rng.choice(OTHERS)          # (no repeat: most of them take none)
    if rng.random() < 0.12:
        atom += "?"
    elif rng.random() < 0.05 and not atom.startswith("("):
        atom += rng.choice(["*", "+", "{1,2}", "*?"])
    return atom


def random_pattern(rng):
    alternatives = []
    for _ in range(rng.randint(1, 3)):
        words = ["".join(_atom(rng, 0) for _ in range(rng.randint(0, 4)))
                 for _ in range(rng.randint(1, 3))]
        text = "".join(w + rng.choice(JOINS) for w in words[:-1]) + words[-1]
        if rng.random() < 0.25:
            text = rng.choice([".*", ".+", "^", "^", "" if alternatives else "(?i)"]) + text
        if rng.random() < 0.25:
            text += rng.choice([".*", ".+", "$", "$", ".*$", "\\$"])
        if rng.random() < 0.15:
            text = r"(?<![\w])(?:%s)(?![\w])" % text      # grep -w (grep_pattern)
        elif rng.random() < 0.15:
            text = r"\b%s\b" % text
        alternatives.append(text)
    pattern = "|".join(alternatives)
    return "(%s)" % pattern if rng.random() < 0.25 else pattern


# -- the comparison ------------------------------------------------------------------------

def disagreements(pattern, lines, proxy_only=False):
    """[(path, line, what re says)] where a fast path differs from re.search."""
    reference = re.compile(pattern)
    proxy = procclean._ReOnFirstUse("re")
    # (An empty pattern is no pattern: a service without one matches nothing.)
    service = None if proxy_only or not pattern else Service("svc", pattern, "s.pid",
                                                             "s.log", 8000, "", ".")
    prefilter = None if proxy_only else procclean._RegexMatcher(pattern)
    found = []
    for line in lines:
        want = reference.search(line) is not None
        if (proxy.search(pattern, line) is not None) != want:
            found.append(("re proxy", line, want))
        if proxy_only:
            continue
        proc = Process(7, 1, "dev", line, line=line)
        if service is not None and \
                service.matches(proc) != (want and procclean.GREP_WORD not in line):
            found.append(("Service.matches", line, want))
        if (prefilter.search(line) is not None) != want:
            found.append(("_RegexMatcher", line, want))
    return found


def _compiles(pattern):
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # FutureWarning: nested sets, etc.
        try:
            re.compile(pattern)
        except (re.error, FutureWarning, DeprecationWarning):
            return False
    return True


@pytest.mark.parametrize("seed", range(4))
def test_generated_patterns_and_lines_agree_with_re_search(seed):
    rng = random.Random(seed)
    linear = checked = 0
    for _ in range(200):
        pattern = random_pattern(rng)
        if not _compiles(pattern):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    re.compile(pattern)
                except re.error:
                    with pytest.raises(re.error):
                        compile_pattern(pattern)
            continue
        lines = lines_for(rng, pattern, 16)
        assert disagreements(pattern, lines) == [], pattern
        linear += isinstance(compile_pattern(pattern), procclean._ChainMatcher)
        checked += len(lines)
    assert linear >= 25 and checked >= 2500, (linear, checked)


# Shapes found by this fuzz, kept as cases of their own.
FOUND = [
    (r"\ *\.(?#c)*?.", ["-\t\n_   __", "x", " .x"]),    # the comment: `\.` is repeated
    (r"main\.p(?#the app)?y", ["dev 1 0 python main.y", "main.py"]),
]


@pytest.mark.parametrize("pattern,lines", FOUND)
def test_shapes_the_fuzz_found(pattern, lines):
    assert disagreements(pattern, lines) == []


# -- every pattern procclean uses ----------------------------------------------------------

# Values for the names that patterns are formatted with (`r"\b%s\b" % f`).
SAMPLES = {"f": ["fastapi", "flask"], "name": ["uvicorn", "a-b.c", "caf\u00e9 app"],
           "t": ["vite", "next"], "tool": ["vite", "react-scripts"],
           "rel": ["backend/main.py", "app dir/x.py"], "dotted": ["app.main", "x"]}
REGEX_CALLS = ("search", "match", "findall", "finditer", "sub", "split", "compile")


def procclean_patterns():
    """Every pattern procclean.py gives re: its constants, the names they are built from
    and formatted ones with sample values."""
    with open(os.path.join(REPO, "procclean.py")) as f:
        tree = ast.parse(f.read())
    found = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "re"
                and node.func.attr in REGEX_CALLS and node.args):
            continue
        names = sorted(set(n.id for n in ast.walk(node.args[0]) if isinstance(n, ast.Name))
                       - set(vars(procclean)) - {"re"})
        code = compile(ast.Expression(node.args[0]), "procclean.py", "eval")
        scopes = [{}]
        for name in names:
            scopes = [dict(s, **{name: v}) for s in scopes for v in SAMPLES.get(name, [])]
        for scope in scopes:
            try:
                pattern = eval(code, vars(procclean), scope)
            except Exception:
                continue
            if isinstance(pattern, str):
                found.add(pattern)
    return sorted(found)


COMMANDS = [
    "{python} main.py", "uv run uvicorn app.main:app --port {port} --reload", "npm run dev",
    "poetry run celery -A proj worker -l info", "python manage.py runserver 0.0.0.0:8000",
    "gunicorn -w 4 'app:create_app()'", "./bin/r\u00e9 serve --x=1", "node server.js web",
    "cd web && pnpm exec vite --host", "FLASK_APP=a.py flask run -p 5000",
    "rq worker high default", "bundle exec rails s", "java -jar build/x-1.0.jar",
    "php -S [::]:8080", "npx next dev", "env A=1 exec ./srv/run.sh --a b+c d$ e|f",
]
GREPS = [["-E", "uvicorn.*main|gunicorn"], ["python.*main\\.py"], ["-F", "node a.b (x)"],
         ["-w", "vite"], ["-i", "celery worker"], ["-e", "npm run dev"],
         ["[u]vicorn app\\(x\\)"]]


def test_every_pattern_procclean_uses_agrees_with_re_search():
    """The constant patterns go through the `re` proxy's prefilter (is_viewer, is_browser,
    is_procclean, the tag parser...); those that make service patterns (the built-in
    ones, pattern_for's from init, a Makefile grep's) go through Service.matches too."""
    rng = random.Random(23)
    constants = procclean_patterns()
    assert procclean.EDITOR_PLACES_RE in constants and procclean._PROCCLEAN_RE in constants \
        and procclean.BROWSER_APPS_RE in constants and procclean.DEBUGGERS_RE in constants
    services = [s["pattern"] for s in BUILTIN_SERVICES]
    services += [procclean.pattern_for(c) for c in COMMANDS]
    services += [procclean.grep_pattern(g)[0] for g in GREPS]
    assert None not in services
    for pattern in constants + services:
        lines = lines_for(rng, pattern, 40)
        assert disagreements(pattern, lines, proxy_only=pattern not in services) == [], \
            pattern
