"""Fuzz chainrule's three readers of untrusted text for N minutes each and count outcomes.

    python benchmarks/fuzz.py --minutes 3                 # every target, 3 minutes each
    python benchmarks/fuzz.py --target csv --minutes 1    # one target
    python benchmarks/fuzz.py --engine random             # without atheris

Targets (each through its public function):

* ``model``: bytes written to a file and given to :func:`chainrule.load`;
* ``csv``: bytes written to a file and given to the command line's CSV reader
  (:func:`chainrule.tables.csv_files.read_csv`);
* ``expression``: text given to :func:`chainrule.expressions.parse`.

Each case ends in one of: a clean refusal (chainrule's own error for that reader), a
correct result (checked: a loaded model has the weights of the valid file it was
mutated from, or, for a file without a digest, finite weights of the declared
shapes; a CSV table has a cell for every column of every row; a parsed expression
prints and parses back to the same tree), or anything else — another exception, a
wrong result — which is counted as "other" and printed. The figures behind
docs/reliability.md come from this script; "other" must be 0.

Engines: ``atheris`` (coverage-guided, ``pip install chainrule[fuzz]``; each target
runs in a subprocess because atheris's loop never returns) or ``random`` (mutations of
valid seed inputs: bit flips, byte changes, insertions of interesting tokens,
deletions, duplications, splices), used when atheris is not installed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

TARGETS = ("model", "csv", "expression")

# --- seeds: valid inputs that mutations start from ---------------------------------------


def model_seeds(folder: Path) -> list[bytes]:
    """Valid model files of a few architectures, with and without metadata."""
    from chainrule import nn, save

    models = [
        (nn.MLP([2, 2, 1], seed=0, output_activation="sigmoid"), None),
        (nn.MLP([3, 4, 2], activation="tanh", dtype="float32", seed=1), {"note": "x"}),
        (nn.Sequential(nn.Linear(2, 3, seed=2), nn.ReLU(), nn.Linear(3, 1, seed=3)), None),
        (nn.NeuronMLP([2, 3, 1], seed=4), {"classes": ["a", "b"], "n": [1, 2.5]}),
    ]
    seeds = []
    for index, (model, metadata) in enumerate(models):
        path = save(model, folder / f"seed{index}.safetensors", metadata=metadata)
        seeds.append(path.read_bytes())
    return seeds


CSV_SEEDS = [
    b"age,sex,survived\n22,male,0\n38,female,1\n26,female,1\n",
    b'name,x,y\n"Smith, J",1.5,a\n"O""Neil",2e3,b\n',
    b"\xef\xbb\xbfa;b;c\n1;2;3\n4;5;6\n",
    b"a,b\n1,\n,2\nNA,nan\n",
    b"x\ty\n1\t2\n",
]
CSV_TOKENS = [
    b",",
    b'"',
    b"\n",
    b"\r\n",
    b";",
    b"\t",
    b"NaN",
    b"1e308",
    b"-1e999",
    b"\xef\xbb\xbf",
    b"\x00",
    b"\xff",
    b",,,,",
    b'"a\nb"',
    b"\xe2\x80\xae",
    b"\x1b[31m",
    b"1_00",
]

EXPRESSION_SEEDS = [
    "x**2 + 3*x*y",
    "sin(x) * exp(-y) / (1 + z)",
    "sigmoid(w1*x1 + w2*x2 + b)",
    "-x**-2 - +y",
    "log(sqrt(abs(x) + 1e-3)) ** 0.5",
    "tanh(relu(softplus(x)))",
]
EXPRESSION_TOKENS = [
    "(",
    ")",
    "**",
    "*",
    "-",
    "+",
    "/",
    ",",
    "sin",
    "exp(",
    "__import__",
    "x.y",
    "1e999",
    "0x1F",
    "1_0",
    "٣",
    "１",
    "[",
    "'",
    "lambda",
    "  ",
    "e",
    "((((((((((",
    "))))))))))",
    "x" * 50,
    ".",
    "1.",
    ".5",
    "nan",
    "inf",
]


# --- one case per target -----------------------------------------------------------------


class Classifier:
    """Runs one target on inputs and counts outcomes."""

    def __init__(self, target: str, workdir: Path) -> None:
        self.target = target
        self.workdir = workdir
        self.counts: Counter[str] = Counter()
        self.others: list[str] = []
        self.slowest = 0.0
        self.case_file = workdir / f"case.{target}"
        self.seed_weights: dict[str, dict[str, bytes]] = {}
        if target == "model":
            from chainrule import load

            for index, seed in enumerate(model_seeds(workdir)):
                header = _header(seed)
                digest = header["__metadata__"]["digest"]
                model = load(workdir / f"seed{index}.safetensors")
                self.seed_weights[digest] = _weights(model)

    def run(self, data: bytes) -> None:
        started = time.perf_counter()
        try:
            outcome = getattr(self, f"_{self.target}")(data)
        except Exception as error:  # anything but a clean refusal is a finding
            outcome = "other"
            self.others.append(
                f"{type(error).__name__}: {error!s:.300} on {data[:200]!r}\n"
                + traceback.format_exc(limit=6)
            )
        self.counts[outcome] += 1
        self.slowest = max(self.slowest, time.perf_counter() - started)

    def _model(self, data: bytes) -> str:
        from chainrule import load
        from chainrule.errors import NotARegularFileError
        from chainrule.io import ModelFileError

        self.case_file.write_bytes(data)
        try:
            model = load(self.case_file)
        except (ModelFileError, NotARegularFileError):
            return "refused"
        weights = _weights(model)
        digest = _header(data).get("__metadata__", {}).get("digest")
        if digest is None:
            # No digest: a plain safetensors file, loaded unchecked by design; what
            # must hold is that the weights are finite and of the declared shapes.
            for name, array in model.state_dict().items():
                assert np.isfinite(array).all(), name
            return "loaded (no digest)"
        expected = self.seed_weights.get(digest.removeprefix("sha256:"))
        expected = expected or self.seed_weights.get(digest)
        if expected != weights:
            raise AssertionError("loaded weights that differ from the file the digest names")
        return "loaded (identical)"

    def _csv(self, data: bytes) -> str:
        from chainrule.tables.csv_files import CsvError, read_csv

        self.case_file.write_bytes(data)
        try:
            table = read_csv(self.case_file)
        except CsvError:
            return "refused"
        check_table(table)
        return "read"

    def _expression(self, data: bytes) -> str:
        from chainrule.expressions import ExpressionError, parse

        text = data.decode("utf-8", errors="replace")
        try:
            tree = parse(text)
        except ExpressionError:
            return "refused"
        check_printed_tree(tree)
        return "parsed"

    def report(self, engine: str, seconds: float) -> str:
        cases = sum(self.counts.values())
        other = self.counts.get("other", 0)
        lines = [
            f"{self.target}: {cases} cases in {seconds:.0f} s ({engine}); "
            + ", ".join(
                f"{name} {count}" for name, count in sorted(self.counts.items()) if name != "other"
            )
            + f"; other {other}; slowest case {self.slowest * 1000:.0f} ms"
        ]
        lines += [f"  OTHER: {finding}" for finding in self.others[:5]]
        return "\n".join(lines)


def check_table(table: Any) -> None:
    """A table read from a CSV file names distinct columns and has a cell for every
    column in every row (and at least one row)."""
    rows = len(table)
    assert rows > 0, "a table without rows"
    assert len(table.header) == len(set(table.header)) > 0, "an empty or repeated header"
    for name in table.header:
        column = table.column(name)
        assert len(column.numbers) == len(column.missing) == rows, f"column {name!r}"
        assert column.text is None or len(column.text) == rows, f"column {name!r}"


def check_printed_tree(tree: object) -> None:
    """A parsed tree prints as text that parses back to the same tree, up to what the
    printer changes without changing the value (see :func:`canonical`)."""
    from chainrule.expressions import format_expr, parse

    printed = format_expr(tree, unicode=False)
    again = canonical(parse(printed))
    assert same(again, canonical(tree)), f"{printed!r} parses differently"


def canonical(tree: object) -> object:
    """``tree`` up to what the printer may change: chains of + and - (and of * and /)
    flattened into signed lists, and negations moved out of products and into the
    signs of sums, so ``a + (b + c)`` and ``a + b + c``, or ``-(n*-x)`` and ``-n*(-x)``,
    compare equal. Numbers are compared by :func:`same` (the printer rounds them)."""
    from chainrule.expressions import Binary, Call, Name, Number, Unary

    def chain(expr: object, sign: int, ops: str) -> list[tuple[int, object]]:
        if isinstance(expr, Binary) and expr.op in ops:
            flip = -sign if expr.op == ops[1] else sign
            return chain(expr.left, sign, ops) + chain(expr.right, flip, ops)
        part = canonical(expr)
        extra: list[tuple[int, object]] = []
        if isinstance(part, tuple) and part[0] == "neg":
            if ops == "+-":
                sign, part = -sign, part[1]
            else:
                part, extra = part[1], [(sign, "-1")]
        # A chain of the same kind under a negation is spliced in, signs multiplied.
        kind = "sum" if ops == "+-" else "product"
        if isinstance(part, tuple) and part[0] == kind:
            return [(sign * inner, entry) for inner, entry in part[1]] + extra
        return [(sign, part), *extra]

    if isinstance(tree, Binary) and tree.op in "+-":
        return ("sum", tuple(chain(tree, 1, "+-")))
    if isinstance(tree, Binary) and tree.op in "*/":
        factors = chain(tree, 1, "*/")
        negative = sum(1 for _, factor in factors if factor == "-1") % 2 == 1
        product = ("product", tuple(entry for entry in factors if entry[1] != "-1"))
        return ("neg", product) if negative else product
    if isinstance(tree, Binary):
        return (tree.op, canonical(tree.left), canonical(tree.right))
    if isinstance(tree, Unary):
        inner = canonical(tree.operand)
        if tree.op == "+":
            return inner
        return inner[1] if isinstance(inner, tuple) and inner[0] == "neg" else ("neg", inner)
    if isinstance(tree, Call):
        return (tree.function, tuple(canonical(argument) for argument in tree.arguments))
    if isinstance(tree, Number):
        return tree.value
    assert isinstance(tree, Name)
    return tree.name


def same(a: object, b: object) -> bool:
    """Canonical forms equal, numbers to the printer's six significant digits."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-5) or a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def _header(data: bytes) -> dict:
    try:
        length = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + length])
        return header if isinstance(header, dict) else {}
    except (ValueError, UnicodeDecodeError, RecursionError):
        return {}


def _weights(model: object) -> dict[str, bytes]:
    return {name: np.asarray(value).tobytes() for name, value in model.state_dict().items()}


# --- engines ----------------------------------------------------------------------------


def mutate(rng: random.Random, seeds: list[bytes], tokens: list[bytes]) -> bytes:
    """A valid seed changed by one to four random mutations."""
    data = bytearray(rng.choice(seeds))
    for _ in range(rng.choice((1, 1, 1, 2, 4))):
        choice = rng.randrange(7)
        position = rng.randrange(len(data) + 1)
        if choice == 0 and data:  # flip one bit
            index = min(position, len(data) - 1)
            data[index] ^= 1 << rng.randrange(8)
        elif choice == 1 and data:  # set one byte
            data[min(position, len(data) - 1)] = rng.randrange(256)
        elif choice == 2:  # insert an interesting token
            data[position:position] = rng.choice(tokens)
        elif choice == 3:  # delete a range
            data[position : position + rng.randrange(1, 16)] = b""
        elif choice == 4:  # duplicate a range
            end = min(len(data), position + rng.randrange(1, 64))
            data[position:position] = data[position:end] * rng.randrange(1, 8)
        elif choice == 5:  # splice with another seed
            other = rng.choice(seeds)
            cut = rng.randrange(len(other) + 1)
            data = data[:position] + bytearray(other[cut:])
        elif data:  # set a byte to a boundary value
            data[min(position, len(data) - 1)] = rng.choice((0, 0x7F, 0x80, 0xFF, 0x20, 0x22))
    return bytes(data)


def run_random(target: str, seconds: float, seed: int) -> str:
    with tempfile.TemporaryDirectory(dir=_scratch()) as folder:
        classifier = Classifier(target, Path(folder))
        if target == "model":
            seeds = model_seeds(Path(folder))
            tokens = [
                b'"',
                b"{",
                b"}",
                b"[",
                b"]",
                b",",
                b"1e999",
                b"-1",
                b"NaN",
                b'"shape":[',
                b'"data_offsets":[0,',
                b"99999999999999999999",
                b" ",
            ]
        elif target == "csv":
            seeds, tokens = CSV_SEEDS, CSV_TOKENS
        else:
            seeds = [text.encode() for text in EXPRESSION_SEEDS]
            tokens = [token.encode() for token in EXPRESSION_TOKENS]
        rng = random.Random(seed)
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            classifier.run(mutate(rng, seeds, tokens))
        return classifier.report("random mutation", time.perf_counter() - started)


def run_atheris(target: str, seconds: float) -> None:
    """Run inside a subprocess: atheris's loop ends the process when the time is up."""
    import atheris

    # Coverage guidance needs chainrule's bytecode instrumented: import it (and only
    # it) under instrumentation, before anything else imports it.
    with atheris.instrument_imports(include=["chainrule"]):
        pass

    folder = tempfile.mkdtemp(dir=_scratch())
    classifier = Classifier(target, Path(folder))
    started = time.perf_counter()
    corpus = Path(folder) / "corpus"
    corpus.mkdir()
    if target == "model":
        seeds = model_seeds(Path(folder))
    elif target == "csv":
        seeds = CSV_SEEDS
    else:
        seeds = [text.encode() for text in EXPRESSION_SEEDS]
    for index, seed in enumerate(seeds):
        (corpus / f"seed{index}").write_bytes(seed)

    deadline = started + seconds

    def one_input(data: bytes) -> None:
        classifier.run(data)
        if time.perf_counter() > deadline:
            # libFuzzer ends the process from C, past Python's atexit: report first.
            print(classifier.report("atheris", time.perf_counter() - started), flush=True)
            os._exit(0)

    atheris.Setup(
        [sys.argv[0], f"-max_total_time={int(seconds) + 60}", "-max_len=4096", str(corpus)],
        one_input,
    )
    atheris.Fuzz()


def _scratch() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=(*TARGETS, "all"), default="all")
    parser.add_argument("--minutes", type=float, default=1.0, help="per target")
    parser.add_argument("--engine", choices=("auto", "atheris", "random"), default="auto")
    parser.add_argument("--seed", type=int, default=0, help="for the random engine")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    engine = args.engine
    if engine == "auto":
        try:
            import atheris  # noqa: F401

            engine = "atheris"
        except ImportError:
            engine = "random"
    targets = TARGETS if args.target == "all" else (args.target,)
    seconds = args.minutes * 60
    if engine == "atheris" and args.child:
        run_atheris(targets[0], seconds)
        return 0
    print(
        f"python benchmarks/fuzz.py --target {args.target} --minutes {args.minutes} "
        f"--engine {engine}",
        flush=True,
    )
    for target in targets:
        if engine == "atheris":
            command = [
                sys.executable,
                __file__,
                "--target",
                target,
                "--minutes",
                str(args.minutes),
                "--engine",
                "atheris",
                "--child",
            ]
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            summary = [line for line in result.stdout.splitlines() if line.strip()]
            print(
                "\n".join(summary)
                or f"{target}: no report (exit {result.returncode})\n" + result.stderr[-2000:],
                flush=True,
            )
        else:
            print(run_random(target, seconds, args.seed), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
