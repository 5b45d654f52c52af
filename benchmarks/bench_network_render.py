"""The playground's network drawing in a real browser: ms per redraw, against its budget.

The page redraws the network (units, edges, and weight labels placed where they cover
nothing) on every frame of live training, at least 10 a second, so a redraw has 100 ms
at most and should take a small part of that. This opens the page in headless Chromium
(Debian's `chromium` and `chromium-driver`; selenium from the `test` extra) at a few
window sizes, picks each preset with labelled weights, and times the page's own
``renderNetwork`` on its current snapshot: the median of ``--repeats`` redraws, the
ratio to the 100 ms frame budget, and how many labels were drawn and left out.

Usage::

    python benchmarks/bench_network_render.py
    python benchmarks/bench_network_render.py --sizes 1366x768,800x900 --repeats 50
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chainrule.playground.server import create_app, running_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
#: A frame's whole budget at the page's 10 updates a second.
FRAME_BUDGET_MS = 100.0
PRESETS = ("titanic", "titanic_hand", "xor", "circle", "gaussians")

# Redraws the network ``repeats`` times and returns each redraw's ms, then the labels.
_TIME_REDRAWS = """
const repeats = arguments[0], times = [];
for (let r = 0; r < repeats; r++) {
  const start = performance.now();
  renderNetwork(state.snap);
  times.push(performance.now() - start);
}
return [times, document.querySelectorAll('#network text.edge-label').length,
        state.snap.network.weights.length];
"""


def browser(width: int, height: int) -> tuple[webdriver.Chrome, str]:
    profile = tempfile.mkdtemp(prefix="chainrule-bench-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                     f"--user-data-dir={profile}", f"--window-size={width},{height}"):  # fmt: skip
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options), profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1920x1080,1366x768,1024x700,800x900")
    parser.add_argument("--repeats", type=int, default=30, help="redraws timed per preset")
    args = parser.parse_args()
    print(f"| window | preset | ms per redraw (median of {args.repeats}) | of the 100 ms budget "
          "| labels drawn / weights |")  # fmt: skip
    print("|---|---|---|---|---|")
    with running_server(create_app()) as base:
        for size in args.sizes.split(","):
            width, height = (int(n) for n in size.split("x"))
            driver, profile = browser(width, height)
            try:
                driver.get(base + "/")
                WebDriverWait(driver, 30).until(
                    lambda d: d.find_element(By.ID, "loss-value").text not in ("", "–")
                )
                for preset in PRESETS:
                    Select(driver.find_element(By.ID, "preset")).select_by_value(preset)
                    time.sleep(1.0)  # the preset's snapshot arrives and is drawn
                    times, drawn, weights = driver.execute_script(_TIME_REDRAWS, args.repeats)
                    median = sorted(times)[len(times) // 2]
                    print(f"| {size} | {preset} | {median:.1f} | {median / FRAME_BUDGET_MS:.2f}× "
                          f"| {drawn} / {weights} |", flush=True)  # fmt: skip
            finally:
                driver.quit()
                shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
