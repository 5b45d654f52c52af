"""The command line's CSV reading (issue 12, item 1) against pandas.read_csv.

Prints, from one run:

1. the wall time and peak memory of reading a generated 180,000 × 31 CSV file (~45 MB:
   30 numeric features with five decimals and a 0/1 target) with chainrule's reader
   (``chainrule.tables.csv_files.read_csv``: the fast pyarrow path) and with ``pandas.read_csv``,
   each in a fresh process, interleaved rounds, medians; and their ratios;
2. where the time of ``chainrule train FILE --target target --epochs 10`` goes: the whole
   command, reading and encoding the file, and training (``chainrule.fit``).

Peak memory is the process's resident-set high-water mark (ru_maxrss) after the read,
and its growth over the mark just before the read (after the imports).

Usage::

    python benchmarks/bench_csv.py                  # 5 rounds
    python benchmarks/bench_csv.py --rounds 9 --careful   # also the careful (csv-module) reader
    python benchmarks/bench_csv.py --wide 10000,30000,100000,1000000   # wide headers only

``--wide`` times, for each width, ``read_csv`` of a header of that many columns and two
rows of ones (in a fresh process), and the whole ``chainrule train FILE --target nope``
command refusing the missing target, with the length of its message.

The script re-executes itself without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workloads import machine_description, median, reexec_without_blas_overrides

ROWS, FEATURES = 180_000, 30

_READERS = {
    "chainrule": (
        "import pyarrow.csv, pyarrow.compute\nfrom chainrule.tables.csv_files import read_csv",
        "read_csv(path)",
    ),
    "chainrule careful": (
        "from chainrule.tables.csv_files import read_csv",
        "read_csv(path, fast=False)",
    ),
    "pandas": ("import pandas", "pandas.read_csv(path)"),
}

_CHILD = """
import json, resource, sys, time
path = sys.argv[1]
{imports}
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
table = {call}
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
growth = (peak - before) / 1024
print(json.dumps({{"seconds": seconds, "peak_mb": peak / 1024, "growth_mb": growth}}))
"""

_TRAIN_CHILD = """
import json, sys, time
import chainrule.training as training
from chainrule.cli import train
from chainrule.cli.main import main

spent = {"fit": 0.0, "read": 0.0}
real_fit, real_read = training.fit, train.read_csv

def timed(name, function):
    def run(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[name] += time.perf_counter() - start
    return run

training.fit = timed("fit", real_fit)
train.read_csv = timed("read", real_read)
start = time.perf_counter()
status = main(["train", sys.argv[1], "--target", "target", "--epochs", "10", "--quiet"])
total = time.perf_counter() - start
assert status == 0, status
print(json.dumps({"total": total, **spent}))
"""


def write_file(path: Path, seed: int = 0) -> None:
    """The benchmark's CSV: 30 normal features (5 decimals) and a 0/1 target from three."""
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(ROWS, FEATURES))
    y = (X[:, :3].sum(axis=1) > 0).astype(int)
    header = ",".join([f"x{i}" for i in range(FEATURES)] + ["target"])
    body = np.column_stack([X, y])
    np.savetxt(
        path, body, delimiter=",", header=header, comments="", fmt=["%.5f"] * FEATURES + ["%d"]
    )


def run_child(code: str, path: Path) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def wide_headers(widths: list[int]) -> None:
    """Time reading and refusing files with very wide headers (issue 13, item 9)."""
    print("| columns | `read_csv` | `chainrule train` refusing a missing target | message length |")
    print("|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for width in widths:
            path = Path(folder) / f"wide{width}.csv"
            names = [f"c{i}" for i in range(width)]
            ones, twos = ",".join(["1"] * width), ",".join(["2"] * width)
            path.write_text(",".join(names) + "\n" + ones + "\n" + twos + "\n")
            read = run_child(
                _CHILD.format(imports=_READERS["chainrule"][0], call="read_csv(path)"), path
            )
            start = time.perf_counter()
            refusal = subprocess.run(
                [sys.executable, "-m", "chainrule", "train", str(path), "--target", "nope"],
                capture_output=True,
                text=True,
                check=False,
            )
            seconds = time.perf_counter() - start
            print(
                f"| {width:,} | {read['seconds']:.2f} s | {seconds:.2f} s | "
                f"{len(refusal.stderr.strip())} characters |"
            )


def main() -> None:
    reexec_without_blas_overrides()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--careful", action="store_true", help="also time the careful reader")
    parser.add_argument("--path", type=Path, help="use (or write) the CSV file here")
    parser.add_argument("--wide", metavar="N,N,...", help="only time headers this wide")
    options = parser.parse_args()
    if options.wide:
        wide_headers([int(width) for width in options.wide.split(",")])
        return

    with tempfile.TemporaryDirectory() as folder:
        path = options.path or Path(folder) / "wide.csv"
        if not path.exists():
            write_file(path)
        size = path.stat().st_size
        readers = [name for name in _READERS if options.careful or name != "chainrule careful"]
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in readers}
        for _ in range(options.rounds):
            order = readers[:]
            random.shuffle(order)
            for name in order:
                imports, call = _READERS[name]
                samples[name].append(run_child(_CHILD.format(imports=imports, call=call), path))
                time.sleep(0.2)
        training = [run_child(_TRAIN_CHILD, path) for _ in range(max(3, options.rounds // 2))]

    for line in machine_description():
        print(f"- {line}")
    print(f"\nReading a {ROWS:,} × {FEATURES + 1} CSV file ({size / 1e6:.1f} MB), ")
    print(f"median of {options.rounds} fresh processes, interleaved:\n")
    print(
        "| reader | wall time | peak RSS | growth during the read | time vs pandas "
        "| growth vs pandas |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    reference = {
        key: median([s[key] for s in samples["pandas"]]) for key in ("seconds", "growth_mb")
    }
    for name in readers:
        seconds = median([s["seconds"] for s in samples[name]])
        peak = median([s["peak_mb"] for s in samples[name]])
        growth = median([s["growth_mb"] for s in samples[name]])
        print(
            f"| {name} | {seconds:.2f} s | {peak:.0f} MB | {growth:.0f} MB | "
            f"{seconds / reference['seconds']:.2f}× | {growth / reference['growth_mb']:.2f}× |"
        )
    total = median([t["total"] for t in training])
    fit = median([t["fit"] for t in training])
    read = median([t["read"] for t in training])
    command = "chainrule train FILE --target target --epochs 10 --quiet"
    print(f"\n`{command}`, median of {len(training)}:\n")
    print("| whole command | reading the file | training (fit) | training's share |")
    print("|---:|---:|---:|---:|")
    print(f"| {total:.2f} s | {read:.2f} s | {fit:.2f} s | {100 * fit / total:.0f} % |")


if __name__ == "__main__":
    main()
