"""The playground page in a real headless Chromium (Debian's chromium and chromium-driver).

One browser and one server serve the whole module. Each test saves a screenshot under
pytest's temporary directory. Without Chromium the tests skip, saying what to install;
under CI (CI=true) they fail instead, so a missing browser is never a silent pass.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
INSTALL = (
    "the browser tests need Chromium and its driver: `apt-get install chromium "
    "chromium-driver` (Debian/Ubuntu) and `pip install selenium starlette uvicorn websockets`"
)


def _missing() -> str | None:
    for module in ("selenium", "starlette", "uvicorn", "websockets"):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed; {INSTALL}"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} is not there; {INSTALL}"
    return None


_REASON = _missing()
if _REASON is not None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the browser tests: {_REASON}", pytrace=False)
    pytest.skip(_REASON, allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

from chainrule import nn  # noqa: E402
from chainrule.experiments.titanic import HANDOUT_WEIGHTS  # noqa: E402
from chainrule.playground.server import create_app, running_server  # noqa: E402

WAIT = 15  # seconds: generous, the machine is shared


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """A playground server on a free port of 127.0.0.1."""
    with running_server(create_app()) as base:
        yield base + "/"


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    """One headless Chromium for the module, with a fresh profile and no network features."""
    profile = tempfile.mkdtemp(prefix="chainrule-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1366,768",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _open(browser: webdriver.Chrome, url: str) -> None:
    browser.get(url)
    _wait_for(browser, lambda b: b.find_element(By.ID, "loss-value").text not in ("", "–"))


def _wait_for(browser: webdriver.Chrome, condition, message: str = "") -> None:
    # The page redraws its SVG on every snapshot, so an element found a moment ago can go stale.
    WebDriverWait(browser, WAIT, ignored_exceptions=(StaleElementReferenceException,)).until(
        condition, message
    )


def _shot(browser: webdriver.Chrome, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    browser.save_screenshot(str(path))
    assert path.stat().st_size > 10_000
    return path


def _unit_text(browser: webdriver.Chrome, unit: str) -> str:
    return browser.find_element(By.CSS_SELECTOR, f'text[data-value="{unit}"]').text


def _set_weight(browser: webdriver.Chrome, name: str, value: str) -> None:
    def click_label(b: webdriver.Chrome) -> bool:
        # The network SVG is redrawn on every snapshot: a label found a moment ago can go
        # stale before the click lands, and _wait_for then finds it again.
        b.find_element(By.CSS_SELECTOR, f'text.edge-label[data-weight="{name}"]').click()
        return True

    _wait_for(browser, click_label, f"clicking the label of {name}")
    box = browser.find_element(By.ID, "weight-number")
    _wait_for(browser, lambda b: box.is_displayed())
    box.clear()
    box.send_keys(value + "\n")


def test_page_loads_without_console_errors(browser, url, tmp_path) -> None:
    """The page loads, draws the network and heat maps, and logs no console error."""
    browser.get_log("browser")  # start from an empty log
    _open(browser, url)
    assert browser.find_elements(By.CSS_SELECTOR, "#network g.unit")
    assert browser.find_element(By.ID, "heat-output").is_displayed()
    _shot(browser, tmp_path, "loaded")
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    assert browser.find_element(By.ID, "error").get_attribute("hidden") is not None


def test_exercise_two_weight_edit_shows_handout_values(browser, url, tmp_path) -> None:
    """With the exercise 2 preset, w_{1,2}^{(1)} = 0 gives σ(5) for a man; −10 gives 0.0067."""
    _open(browser, url)
    browser.find_element(By.ID, "hand-weights").click()
    _wait_for(browser, lambda b: _unit_text(b, "x2[1]") == "0.0067")
    assert "male" in browser.find_element(By.ID, "example-label").text
    _set_weight(browser, "w1[1,2]", "0")
    _wait_for(browser, lambda b: _unit_text(b, "x2[1]") == "0.9933")
    _set_weight(browser, "w1[1,2]", "-10")
    _wait_for(browser, lambda b: _unit_text(b, "x2[1]") == "0.0067")
    _shot(browser, tmp_path, "exercise2")


# The weight labels' boxes that overlap another label or a unit (its circle, value and
# name), by name pairs, and how many labels there are.
_LABEL_OVERLAPS = """
const boxOf = (name, element) => {
  const box = element.getBBox();
  return [name, box.x, box.y, box.width, box.height];
};
const boxes = [...document.querySelectorAll('#network text.edge-label')].map(
  (text) => boxOf(text.dataset.weight, text));
const units = [...document.querySelectorAll('#network g.unit, #network g.bias')].map(
  (unit) => boxOf(unit.dataset.unit, unit));
const overlapping = [];
for (let i = 0; i < boxes.length; i++) {
  for (let j = i + 1; j < boxes.length + units.length; j++) {
    const [a, b] = [boxes[i], j < boxes.length ? boxes[j] : units[j - boxes.length]];
    if (a[1] < b[1] + b[3] && b[1] < a[1] + a[3] && a[2] < b[2] + b[4] && b[2] < a[2] + a[4]) {
      overlapping.push(a[0] + ' and ' + b[0]);
    }
  }
}
return [boxes.length, overlapping];
"""


def test_weight_labels_stay_apart_and_the_selected_edge_keeps_its_width(
    browser, url, tmp_path
) -> None:
    """On the 3→2→1 presets no two weight labels overlap, each has a card under it, and a
    selected edge is drawn dashed at its own width (its wide click target stays invisible)."""
    _open(browser, url)
    for preset, labels in (("titanic", 9), ("xor", 9), ("gaussians", 9), ("circle", 17)):
        Select(browser.find_element(By.ID, "preset")).select_by_value(preset)
        _wait_for(
            browser,
            lambda b: len(b.find_elements(By.CSS_SELECTOR, "#network text.edge-label")) == labels,  # noqa: B023
        )
        count, overlapping = browser.execute_script(_LABEL_OVERLAPS)
        assert count == labels and overlapping == [], (preset, overlapping)
        cards = browser.find_elements(By.CSS_SELECTOR, "#network rect.edge-label-back")
        assert len(cards) == labels
        assert not browser.find_elements(By.ID, "labels-left-out")
    _shot(browser, tmp_path, "circle")
    # A narrow window has no room for all 17: the labels that fit are drawn apart, the
    # rest are left out, and the picture says how many.
    browser.set_window_size(1024, 700)
    try:
        _wait_for(browser, lambda b: b.find_elements(By.ID, "labels-left-out"))
        count, overlapping = browser.execute_script(_LABEL_OVERLAPS)
        note = browser.find_element(By.ID, "labels-left-out").text
        assert overlapping == [] and 0 < count < 17, (count, overlapping)
        assert note.startswith(f"{17 - count} weight label"), note
        _shot(browser, tmp_path, "circle-narrow")
    finally:
        browser.set_window_size(1366, 768)
    browser.find_element(By.ID, "hand-weights").click()
    _wait_for(browser, lambda b: _unit_text(b, "x2[1]") == "0.0067")
    _set_weight(browser, "w1[1,2]", "-10")
    _wait_for(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#network g.edge.selected"))
    styles = browser.execute_script(
        "return [...document.querySelectorAll('#network g.edge.selected line')].map("
        "(line) => [line.getAttribute('class'), getComputedStyle(line).stroke,"
        " getComputedStyle(line).strokeDasharray]);"
    )
    assert sorted(styles, key=str) == sorted(
        [[None, "rgba(0, 0, 0, 0)", "none"], ["wire", "rgb(17, 17, 17)", "4px, 2px"]], key=str
    )
    _shot(browser, tmp_path, "labels")


def test_train_lowers_the_displayed_loss(browser, url, tmp_path) -> None:
    """Pressing train streams frames over the WebSocket and the loss shown goes down."""
    _open(browser, url)
    before = float(browser.find_element(By.ID, "loss-value").text.replace("−", "-"))
    browser.find_element(By.ID, "play").click()
    _wait_for(browser, lambda b: int(b.find_element(By.ID, "steps-value").text) > 50)
    browser.find_element(By.ID, "play").click()  # pause
    _wait_for(browser, lambda b: "Train" in b.find_element(By.ID, "play").text)
    after = float(browser.find_element(By.ID, "loss-value").text.replace("−", "-"))
    assert after < before
    _shot(browser, tmp_path, "trained")


def test_stepping_backward_ends_with_backward_gradients(browser, url, tmp_path) -> None:
    """Stepping through both passes ends with the leaf adjoints that backward() gives."""
    _open(browser, url)
    browser.find_element(By.ID, "hand-weights").click()
    _wait_for(browser, lambda b: _unit_text(b, "x2[1]") == "0.0067")
    browser.find_element(By.CSS_SELECTOR, '.tabs button[data-tab="dataflow"]').click()
    _wait_for(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#dataflow g.df-node"))
    # The first steps of each pass by real clicks; the rest by the buttons' own click() in
    # one script (each step redraws the diagram, and a round trip per step is slow).
    finish = "const b = document.getElementById(arguments[0]); while (!b.disabled) b.click();"
    for button in ("df-forward", "df-backward"):
        for _ in range(3):
            browser.find_element(By.ID, button).click()
        browser.execute_script(finish, button)
        assert not browser.find_element(By.ID, button).is_enabled()
    rows = browser.find_elements(By.CSS_SELECTOR, "#df-leaves tbody tr")
    shown = {
        row.get_attribute("data-weight"): float(row.find_element(By.CLASS_NAME, "adjoint").text)
        for row in rows
    }
    model = nn.MLP([2, 2, 1], activation="sigmoid", output_activation="sigmoid")
    model.set_weights(HANDOUT_WEIGHTS)
    nn.log_loss(model([[30.0, 1.0]]), [[0.0]]).backward()
    expected = model.get_gradients()
    assert set(shown) == set(expected)
    for name, value in expected.items():
        assert shown[name] == pytest.approx(value, rel=1e-12)
    # The last step's node is in view and the diagram keeps a usable height beside the table.
    box, node = browser.execute_script(
        "const box = document.querySelector('#tab-dataflow .scroll').getBoundingClientRect();"
        "const node = document.querySelector('#dataflow g.df-node.current')"
        ".getBoundingClientRect();"
        "return [[box.left, box.top, box.right, box.bottom],"
        " [node.left, node.top, node.right, node.bottom]];"
    )
    assert box[3] - box[1] >= 200
    assert box[0] <= node[0] and node[2] <= box[2] and box[1] <= node[1] and node[3] <= box[3]
    _shot(browser, tmp_path, "backprop")
    browser.find_element(By.CSS_SELECTOR, '.tabs button[data-tab="network"]').click()


def test_bad_csv_upload_shows_file_line_and_column(browser, url, tmp_path) -> None:
    """Uploading a CSV with a bad cell shows the located message in the page."""
    _open(browser, url)
    bad = tmp_path / "bad.csv"
    bad.write_text("height,weight,kind\n1,2,a\n2,abc,b\n3,0.5,a\n4,2.5,b\n5,1,a\n")
    browser.find_element(By.ID, "upload").send_keys(str(bad))
    _wait_for(browser, lambda b: b.find_element(By.ID, "columns").is_displayed())
    browser.find_element(By.ID, "use-columns").click()
    _wait_for(browser, lambda b: b.find_element(By.ID, "error").is_displayed())
    message = browser.find_element(By.ID, "error-text").text
    assert "bad.csv, line 3, column 'weight' (2): 'abc' is not a number" in message
    _shot(browser, tmp_path, "upload-error")


def test_two_tabs_are_independent_sessions(browser, url, tmp_path) -> None:
    """Training in a second tab changes neither the first tab's weights nor its step count."""
    _open(browser, url)
    first_tab = browser.current_window_handle
    first_label = browser.find_element(By.CSS_SELECTOR, 'text.edge-label[data-weight="w1[1,1]"]')
    weight_before = first_label.text
    browser.switch_to.new_window("tab")
    _open(browser, url)
    for _ in range(3):
        browser.find_element(By.ID, "epoch").click()
    _wait_for(browser, lambda b: b.find_element(By.ID, "steps-value").text == "3")
    second_weight = browser.find_element(
        By.CSS_SELECTOR, 'text.edge-label[data-weight="w1[1,1]"]'
    ).text
    _shot(browser, tmp_path, "second-tab")
    browser.close()
    browser.switch_to.window(first_tab)
    browser.find_element(By.ID, "step").click()  # the first tab's own session answers
    _wait_for(browser, lambda b: b.find_element(By.ID, "steps-value").text == "1")
    assert weight_before != second_weight
    _shot(browser, tmp_path, "first-tab")


def test_share_link_restores_weights_in_a_new_tab(browser, url, tmp_path) -> None:
    """ "Share link" puts the state in the address; opening it in another tab restores it."""
    _open(browser, url)
    first_tab = browser.current_window_handle
    _set_weight(browser, "w1[1,2]", "3")
    _wait_for(browser, lambda b: b.find_element(By.ID, "weight-number").get_attribute("value"))
    label = 'text.edge-label[data-weight="w1[1,2]"]'
    _wait_for(browser, lambda b: b.find_element(By.CSS_SELECTOR, label).text.endswith("= 3"))
    browser.find_element(By.ID, "share").click()
    _wait_for(browser, lambda b: "#state=" in b.current_url)
    shared = browser.current_url
    browser.switch_to.new_window("tab")
    _open(browser, shared)
    assert browser.find_element(By.CSS_SELECTOR, label).text.endswith("= 3")
    assert browser.find_element(By.ID, "error").get_attribute("hidden") is not None
    _shot(browser, tmp_path, "shared")
    browser.close()
    browser.switch_to.window(first_tab)
