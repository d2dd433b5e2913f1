"""Benchmarks: quota reservations, the generation chain, updates through the Dispatcher, provider adapters.

    .venv/bin/python -m benchmarks.run [--quick] [--json PATH] [--only GROUP[,GROUP...]]

Everything runs on 127.0.0.1: the test suite's fakes (Bot API, Gemini, HF Hub, Replicate,
Pollinations) are started in a child process, and a guard refuses any other connection or name
look-up (the run fails if one was attempted). Real keys in the shell are removed first.
Groups: quota, generation, dispatcher, providers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.harness import notes, table, write_json
from benchmarks.isolation import ESCAPES, install_loopback_guard, scrub_environment

ROOT = Path(__file__).resolve().parent.parent
GROUPS = ("quota", "generation", "dispatcher", "providers")
LEGEND = """\
latency = wall time per operation; concurrent rows: from batch start to that operation's end.
peak KiB = largest Python-heap rise during one operation, kept B/op = heap growth left behind per
operation (tracemalloc, separate pass; native buffers of Pillow/SQLite/OpenSSL are not counted)."""


def start_fakes() -> subprocess.Popen[bytes]:
    """The fake servers in a child process (see benchmarks.fakes_server); its env is already scrubbed."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.fakes_server"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": path},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )


def stop_fakes(proc: subprocess.Popen[bytes]) -> None:
    if proc.stdin is not None:
        proc.stdin.close()  # EOF: the child stops its servers and exits
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def machine() -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": usable,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="far fewer iterations: a smoke run")
    parser.add_argument("--json", metavar="PATH", help="also write the results (and machine details) as JSON")
    parser.add_argument("--only", metavar="GROUPS", help=f"comma-separated subset of: {', '.join(GROUPS)}")
    args = parser.parse_args(argv)
    groups = [g.strip() for g in args.only.split(",")] if args.only else list(GROUPS)
    unknown = set(groups) - set(GROUPS)
    if unknown:
        parser.error(f"unknown group(s): {', '.join(sorted(unknown))}; choose from {', '.join(GROUPS)}")

    scrub_environment()
    install_loopback_guard()
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    fakes = start_fakes()
    try:
        from benchmarks import cases  # the heavy imports, overlapping the child's start-up

        imported = time.perf_counter()
        assert fakes.stdout is not None
        line = fakes.stdout.readline()
        if not line:
            print("the fake servers did not start (see above)", file=sys.stderr)
            return 1
        urls = json.loads(line)
        ready = time.perf_counter()
        suite = asyncio.run(cases.run_suite(cases.Plan(quick=args.quick), groups, urls))
    finally:
        stop_fakes(fakes)
    finished = time.perf_counter()

    meta = {
        **machine(),
        "date": datetime.now().isoformat(timespec="seconds"),
        "quick": args.quick,
        "groups": groups,
        "import_s": round(imported - started, 1),
        "benchmarks_s": round(finished - ready, 1),
        "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        # Other processes competing for the CPUs make every number worse: check these before comparing runs.
        "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "network_escapes": [repr(e) for e in ESCAPES],
    }
    print(
        f"\nimagebot benchmarks ({'quick' if args.quick else 'default'}): Python {meta['python']}, "
        f"{meta['cpus']} CPU(s), {meta['date']}\n"
        f"importing the bot {meta['import_s']}s, benchmarks {meta['benchmarks_s']}s, "
        f"max RSS {meta['max_rss_mib']} MiB, 1-min load average {load_before:.2f} before, "
        f"{meta['load_avg_1m'][1]:.2f} after\n"
    )
    print(table(suite.results))
    extra = notes(suite.results)
    if extra:
        print("\nnotes:")
        for item in extra:
            print(f"  - {item}")
    print("\n" + LEGEND)
    if args.json:
        write_json(Path(args.json), meta, suite.results)
        print(f"\nwrote {args.json}")
    if ESCAPES:
        print(f"\nERROR: something tried to leave 127.0.0.1: {ESCAPES}", file=sys.stderr)
        return 1
    return 1 if suite.failed else 0


if __name__ == "__main__":
    sys.exit(main())
