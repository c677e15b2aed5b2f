"""Smoke test of the benchmark script: `benchmarks/bench.py --quick` runs (inside its own PID
namespace) and prints its table. No timing is asserted: numbers are measured, not tested."""
import os
import subprocess
import sys

import pytest

from nslib import Namespace, REPO, clean_env

BENCH = os.path.join(REPO, "benchmarks", "bench.py")


def test_bench_quick_prints_a_table():
    ok, reason = Namespace.available()
    if not ok:
        pytest.skip(reason)
    r = subprocess.run([sys.executable, BENCH, "--quick"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=clean_env(), cwd=REPO, timeout=600)
    out = r.stdout.decode("utf-8", "replace")
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 0, "stdout:\n%s\nstderr:\n%s" % (out, err)
    assert "Traceback" not in out + err
    lines = out.splitlines()
    header = [l for l in lines if l.startswith("| #")]
    assert header and "procclean" in header[0] and "seed" in header[0], out
    rows = [l for l in lines if l.startswith("| ")]
    # one row at least for each of the six measurements
    numbers = {l.split("|")[1].strip() for l in rows[1:]}
    assert {"1", "2", "3", "4", "5", "6"} <= numbers, out
    for word in ("machine:", "Python", "CPUs", "median of"):
        assert word in out, out
