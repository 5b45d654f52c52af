"""``chainrule export MODEL --onnx OUT.onnx``: a saved model as an ONNX file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .main import UsageError

DESCRIPTION = (
    "Write a saved model as an ONNX file for onnxruntime or any other ONNX runtime. A model "
    "saved by 'chainrule train --save' keeps its preprocessing in the graph: one input per "
    "feature column, named after it (numbers, or strings for one-hot columns), and the outputs "
    "'probabilities' and 'label' for a classifier or 'prediction' for a regression. Other "
    "models (chainrule.save from Python) get one input 'input' and one output 'output'."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="a model file (chainrule train --save)")
    parser.add_argument(
        "--onnx",
        metavar="OUT.onnx",
        required=True,
        help="write the ONNX file here (atomically)",
    )
    parser.add_argument(
        "--no-preprocessing",
        action="store_true",
        help="export the network alone, without the stored column preprocessing",
    )


def run(args: argparse.Namespace) -> int:
    from ..export import export_onnx

    output = Path(args.onnx)
    if output.is_dir():
        raise UsageError(f"--onnx {output}: it is a folder; give a file name such as model.onnx")
    if not output.parent.is_dir():
        raise UsageError(f"--onnx {output}: there is no folder {output.parent}")
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise UsageError(
            "exporting to ONNX needs the onnx package: pip install 'chainrule[onnx]'"
        ) from None
    written = export_onnx(args.model, output, preprocessing=not args.no_preprocessing)
    print(f"wrote {written}", file=sys.stderr)
    return 0
