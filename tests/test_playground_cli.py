"""``chainrule playground`` on the command line: the URL, Ctrl-C, and bad options."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request

import pytest

pytest.importorskip(
    "uvicorn", reason='the playground tests need: pip install "chainrule[playground]"'
)

from chainrule.cli.main import main


def test_playground_command_prints_url_serves_and_stops_on_ctrl_c() -> None:
    """The command prints its 127.0.0.1 URL, serves the page there, and exits 0 on Ctrl-C."""
    process = subprocess.Popen(
        [sys.executable, "-m", "chainrule", "playground", "--no-browser", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("chainrule playground: serving on http://127.0.0.1:"), line
        url = line.split()[4]
        with urllib.request.urlopen(url, timeout=30) as response:
            assert b"chainrule playground" in response.read()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "stopped" in out
    assert "Traceback" not in err


def test_playground_command_refuses_bad_options(tmp_path, capsys) -> None:
    """Bad options and a bad --data file exit 2 with one line naming the problem."""
    assert main(["playground", "--no-browser", "--data", "x.csv"]) == 2
    assert "--data and --target go together" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,y\n1,2,0\n2,x,1\n3,4,0\n4,5,1\n5,6,0\n")
    assert main(["playground", "--no-browser", "--data", str(bad), "--target", "y"]) == 2
    error = capsys.readouterr().err
    assert "bad.csv, line 3, column 'b' (2)" in error and error.count("\n") == 1
    assert main(["playground", "--no-browser", "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err
