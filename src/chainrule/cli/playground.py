"""``chainrule playground``: start the local web app (needs the ``playground`` extra).

Binds 127.0.0.1 by default, prints the URL, opens the browser unless ``--no-browser``,
and stops cleanly on Ctrl-C (uvicorn's own signal handling finishes open requests).
``--data FILE --target COLUMN`` loads a CSV file into every new tab, checked before
the server starts, so a bad file is one error line and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import threading
import webbrowser
from pathlib import Path

from .main import UsageError

DESCRIPTION = (
    "Start the playground, a local web page where you edit an MLP's weights, watch its "
    "hidden units and output as heat maps, train it live, and step through backprop on "
    "one example. Example: chainrule playground --port 8765"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8765, help="port to listen on (default 8765; 0: any free port)"
    )
    parser.add_argument(
        "--no-browser", action="store_true", help="print the URL but do not open a browser"
    )
    parser.add_argument("--data", metavar="FILE.csv", help="a CSV file with a header to train on")
    parser.add_argument("--target", metavar="COLUMN", help="the column of --data to predict")
    parser.add_argument(
        "--features",
        metavar="A,B,...",
        help="input columns of --data (default: every other column)",
    )


def _load_modules() -> tuple[object, object]:
    try:
        import uvicorn

        from ..playground import server
    except ImportError as error:
        raise UsageError(
            f"the playground needs the 'playground' extra ({error.name} is missing): "
            'pip install "chainrule[playground]"'
        ) from None
    return uvicorn, server


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be from 0 to 65535, got {args.port}")
    if (args.data is None) != (args.target is None):
        raise UsageError("--data and --target go together: name the file and its target column")
    if args.features is not None and args.data is None:
        raise UsageError("--features needs --data")
    uvicorn, server = _load_modules()
    from ..playground import data as datasets

    initial = None
    if args.data is not None:
        path = Path(args.data)
        if not path.is_file():
            raise UsageError(f"--data {path}: no such file")
        content = path.read_bytes()
        features = None
        if args.features is not None:
            features = [part.strip() for part in args.features.split(",") if part.strip()]
        # Check the file and columns now: a bad file is an error line, not a broken page.
        table = datasets.read_upload(path.name, content)
        datasets.dataset_from_table(
            table, args.target, features or [c for c in table.header if c != args.target]
        )
        initial = (path.name, content, args.target, features)
    app = server.create_app(initial)  # type: ignore[attr-defined]
    config = uvicorn.Config(  # type: ignore[attr-defined]
        app, host=args.host, port=args.port, log_level="warning", ws="websockets-sansio"
    )
    runner = uvicorn.Server(config)  # type: ignore[attr-defined]
    host = f"[{args.host}]" if ":" in args.host else args.host
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    def announce() -> None:
        # Wait until the socket is bound, then say where (and open the browser).
        while not runner.started and not runner.should_exit:
            threading.Event().wait(0.05)
        if runner.started:
            port = args.port
            if port == 0:  # "any free port": say which one it got
                port = runner.servers[0].sockets[0].getsockname()[1]
            url = f"http://{host}:{port}/"
            print(f"chainrule playground: serving on {url}  (Ctrl-C stops it)", flush=True)
            if not args.no_browser:
                webbrowser.open(url)

    threading.Thread(target=announce, daemon=True).start()
    # uvicorn shuts down on Ctrl-C, then re-raises it for its caller: that is us, done.
    with contextlib.suppress(KeyboardInterrupt):
        runner.run()
    if not runner.started:
        raise UsageError(f"could not serve on {args.host}:{args.port} (is the port in use?)")
    print("chainrule playground: stopped", flush=True)
    return 0
