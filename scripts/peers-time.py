#!/usr/bin/env python3
"""Times whole processes for scripts/peers.sh: pairs of commands run alternately (one warm-up
each first), a start-up command alone, and file sizes. Writes the rows bench-report reads
(--peers FILE) and prints the medians and ratios.

  peers-time.py --runs N --json FILE [--size NAME PATH]... [--startup NAME CMD]
                [--pair NAME LIMIT_NAME TARGET CMD LIMIT_CMD]...
                [--missing NAME LIMIT_NAME TARGET]... [--after NAME CMD]...

--after runs CMD, untimed, after each run of the pair NAME's commands (to flush what a tool
leaves behind on a device without a resource manager). A --missing pair (its emulator or tool is not here) is written without times, so the report
says it was not measured. CMD is one shell-quoted command line (split with shlex, run without a shell). TARGET is the
lowest accepted ratio of limit time / measured time (empty for none). Output is discarded;
peers.sh checks each command's output once before timing it.
"""

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time


def run_once(argv, after=None):
    """Wall and CPU (user + system) time of one run of argv, in ms (then `after`, untimed);
    exits when either fails."""
    start = time.perf_counter_ns()
    child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    stderr = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = (time.perf_counter_ns() - start) / 1e6
    child.stderr.close()
    if status != 0:
        sys.exit(f"peers-time.py: {argv[0]} failed ({status}): "
                 f"{stderr.decode(errors='replace').strip()}")
    if after:
        subprocess.run(after, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)
    return elapsed, (usage.ru_utime + usage.ru_stime) * 1e3


def alternate(commands, runs, after=None):
    """Median wall and CPU times (ms) of each command, run in turn `runs` times after one
    warm-up each."""
    for argv in commands:
        run_once(argv, after)
    times = [[] for _ in commands]
    for _ in range(runs):
        for i, argv in enumerate(commands):
            times[i].append(run_once(argv, after))
    return [(statistics.median(w for w, _ in t), statistics.median(c for _, c in t))
            for t in times]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=51)
    parser.add_argument("--json", required=True)
    parser.add_argument("--size", nargs=2, action="append", default=[],
                        metavar=("NAME", "PATH"))
    parser.add_argument("--startup", nargs=2, metavar=("NAME", "CMD"))
    parser.add_argument("--pair", nargs=5, action="append", default=[],
                        metavar=("NAME", "LIMIT_NAME", "TARGET", "CMD", "LIMIT_CMD"))
    parser.add_argument("--missing", nargs=3, action="append", default=[],
                        metavar=("NAME", "LIMIT_NAME", "TARGET"))
    parser.add_argument("--after", nargs=2, action="append", default=[],
                        metavar=("NAME", "CMD"))
    args = parser.parse_args()
    after = {name: shlex.split(cmd) for name, cmd in args.after}

    rows = []
    for name, measured, target, cmd, limit_cmd in args.pair:
        (ms, cpu), (limit_ms, limit_cpu) = alternate(
            [shlex.split(cmd), shlex.split(limit_cmd)], args.runs, after.get(name))
        rows.append({"benchmark": name, "median_ms": ms, "limit": measured,
                     "limit_median_ms": limit_ms, "runs": args.runs,
                     "target": float(target) if target else None,
                     "cpu_median_ms": cpu, "limit_cpu_median_ms": limit_cpu})
        print(f"peers: {name} {ms:.2f} ms, {measured} {limit_ms:.2f} ms: "
              f"time ratio {ms / limit_ms:.3f}; CPU {cpu:.2f} ms and {limit_cpu:.2f} ms: "
              f"{cpu / limit_cpu:.3f} (medians of {args.runs} alternating runs)",
              file=sys.stderr)
    for name, measured, target in args.missing:
        rows.append({"benchmark": name, "limit": measured,
                     "target": float(target) if target else None})
    if args.startup:
        name, cmd = args.startup
        ((ms, cpu),) = alternate([shlex.split(cmd)], args.runs)
        rows.append({"benchmark": f"{name} start-up", "median_ms": ms, "runs": args.runs,
                     "cpu_median_ms": cpu})
        print(f"peers: {name} {ms:.2f} ms (CPU {cpu:.2f} ms)", file=sys.stderr)
    for name, path in args.size:
        size = os.path.getsize(path)
        rows.append({"benchmark": f"{name} dist binary", "bytes": size})
        print(f"peers: {name} (dist) {size} bytes", file=sys.stderr)
    with open(args.json, "w", encoding="utf-8") as out:
        json.dump(rows, out, indent=2)
        out.write("\n")


if __name__ == "__main__":
    main()
