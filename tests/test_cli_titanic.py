"""Tests of the Titanic experiment: the library function and ``chainrule titanic``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule.cli.main import main
from chainrule.experiments import titanic as experiment

# Exercise 2's worked numbers as the handout prints them: (part, input) -> printed value.
HANDOUT_NUMBERS = {
    ("(a)", "male (any age)"): "0.0067",  # σ(−5)
    ("(a)", "female (any age)"): "0.9933",  # σ(5)
    ("(b)", "female, 1 year old"): "0.0000",  # σ(−11) ≈ 0
    ("(b)", "male, 1 year old"): "0.982",  # σ(4)
    ("(b)", "male, 4 years old"): "0.731",  # σ(1)
    ("(b)", "male, 10 years old"): "0.0067",  # σ(−5)
    ("(c)", "x1(2) = 1, x2(2) = 0"): "0.73",  # σ(1)
    ("(c)", "x1(2) = 0, x2(2) = 1"): "0.73",
}


def _accuracy_rows(output: str) -> dict[str, list[float]]:
    """Model name -> [all, train, held-out] accuracy in percent, from the printed table."""
    rows = {}
    pattern = re.compile(
        r"^(?P<name>\S.*?)\s+(?P<all>\d+\.\d) % \(\d+\)\s+(?P<train>\d+\.\d) %"
        r"\s+(?P<held>\d+\.\d) %"
    )
    for line in output.splitlines():
        match = pattern.match(line)
        if match:
            rows[match["name"]] = [float(match["all"]), float(match["train"]), float(match["held"])]
    return rows


def _row(rows: dict[str, list[float]], start: str) -> list[float]:
    matches = [values for name, values in rows.items() if name.startswith(start)]
    assert len(matches) == 1, f"no single row starting {start!r} in {list(rows)}"
    return matches[0]


@pytest.fixture(scope="module")
def results() -> experiment.TitanicResults:
    """One full default run of the experiment, shared by the library-level tests."""
    return experiment.run_titanic_experiment()


def test_titanic_command_prints_the_handouts_accuracies(capsys: pytest.CaptureFixture[str]) -> None:
    """`chainrule titanic` runs end to end and its accuracies fall in the handout's ranges."""
    assert main(["titanic"]) == 0
    output = capsys.readouterr().out
    rows = _accuracy_rows(output)
    sex = _row(rows, "sex only")
    logistic = _row(rows, "logistic regression (age, male)")
    engineered = _row(rows, "logistic regression (age, male, young male")
    mlp = _row(rows, "MLP 3→2→1")
    hand = _row(rows, "hand-set weights")
    # Logistic regression on (age, male) is the sex-only rule: about 78 %.
    assert 77.5 <= logistic[0] <= 78.5
    assert logistic == sex
    # The engineered feature and the MLP: about 79 %, the MLP at least as good.
    assert 78.5 <= engineered[0] <= 79.5
    assert mlp[0] >= engineered[0]
    assert mlp[0] <= 80.0
    assert 78.5 <= hand[0] <= 79.5
    # Every model also has a train and a held-out accuracy.
    for values in rows.values():
        assert all(60.0 <= value <= 90.0 for value in values)
    assert "held-out 178" in output
    assert "Done in" in output


def test_titanic_command_reproduces_the_handouts_numbers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The printed hand-weight table shows the handout's numbers to its printed precision."""
    assert main(["titanic", "--epochs", "20", "--restarts", "1"]) == 0
    output = capsys.readouterr().out
    seen = {}
    for line in output.splitlines():
        for (part, case), _ in HANDOUT_NUMBERS.items():
            if line.startswith(part) and f" {case} " in line:
                seen[(part, case)] = line.split()
    assert set(seen) == set(HANDOUT_NUMBERS)
    for key, cells in seen.items():
        # After the input come s = "σ(...)", chainrule's value, the handout's text, "yes".
        sigma = next(index for index, cell in enumerate(cells) if cell.startswith("σ("))
        assert cells[sigma + 1] == HANDOUT_NUMBERS[key], (key, cells)
        assert cells[-1] == "yes"
    assert "(c) survival accuracy 79.0 %" in output


def test_handout_checks_recompute_sigmoids_of_the_hand_network() -> None:
    """Each hand check's σ(s) is the hand network's own pre-activation pushed through σ."""
    checks = experiment.handout_checks()
    assert [check.preactivation for check in checks] == [-5, 5, -11, 4, 1, -5, 1, 1]
    for check in checks:
        assert check.value == pytest.approx(1 / (1 + np.exp(-check.preactivation)), abs=1e-15)
        assert check.matches
        assert check.printed == HANDOUT_NUMBERS[(check.part, check.case)]


def test_handout_checks_notice_a_wrong_weight() -> None:
    """With one hand weight changed the recomputed numbers stop matching the handout."""
    wrong = dict(experiment.HANDOUT_WEIGHTS, **{"w1[2,1]": -2.0})
    checks = experiment.handout_checks(experiment.handout_network(wrong))
    mismatched = {check.case for check in checks if not check.matches}
    assert mismatched == {"male, 1 year old", "male, 4 years old", "male, 10 years old"}


def test_handout_predictions_follow_exercise_2c() -> None:
    """The hand-set network says survive for women and boys under 5, not for older men."""
    p = experiment.handout_predictions(
        {"woman 30": (30.0, 0.0), "boy 2": (2.0, 1.0), "man 30": (30.0, 1.0), "boy 8": (8.0, 1.0)}
    )
    assert p["woman 30"] > 0.5
    assert p["boy 2"] > 0.5
    assert p["man 30"] < 0.5
    assert p["boy 8"] < 0.5


def _newton_logistic_regression(features: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The exact optimum of the mean log loss by Newton's method: [bias, weights...]."""
    design = np.column_stack([np.ones(len(features)), features])
    weights = np.zeros(design.shape[1])
    for _ in range(50):
        p = 1 / (1 + np.exp(-design @ weights))
        hessian = design.T @ (design * (p * (1 - p))[:, None])
        weights -= np.linalg.solve(hessian, design.T @ (p - target))
    return weights


def test_experiment_logistic_regression_reaches_the_optimum(
    results: experiment.TitanicResults,
) -> None:
    """Gradient descent finds the weights Newton's method finds, in raw units (years)."""
    for name, features in (
        ("logistic regression (age, male)", [results.age, results.male]),
        (
            "logistic regression (age, male, young male",
            [results.age, results.male, results.male * (results.age < results.young_age)],
        ),
    ):
        reference = _newton_logistic_regression(np.column_stack(features), results.survived)
        weights = list(results.model(name).weights.values())
        assert weights == pytest.approx(reference.tolist(), rel=1e-3)


def test_experiment_mlp_matches_or_beats_the_engineered_feature(
    results: experiment.TitanicResults,
) -> None:
    """The best MLP reaches the engineered model's accuracy with a lower training loss."""
    engineered = results.model("logistic regression (age, male, young male")
    mlp = results.model("MLP")
    assert mlp.accuracy >= engineered.accuracy
    assert mlp.loss is not None and engineered.loss is not None
    assert mlp.loss < engineered.loss
    assert results.restarts_all[results.best_restart].loss == min(
        restart.loss for restart in results.restarts_all
    )


def test_experiment_hidden_units_describe_the_groups(results: experiment.TitanicResults) -> None:
    """The hidden-unit report's means and correlations agree with the network's activations."""
    inputs = np.column_stack([results.age, results.male])
    hidden = np.asarray(results.network.layer_outputs(inputs)[1].data)
    young_male = results.male * (results.age < results.young_age)
    female = 1 - results.male
    assert len(results.hidden_units) == results.hidden == hidden.shape[1]
    for unit, column in zip(results.hidden_units, hidden.T):
        assert unit.mean_women == pytest.approx(column[female == 1].mean())
        older = (results.male == 1) & (young_male == 0)
        assert unit.mean_older_males == pytest.approx(column[older].mean())
        assert unit.corr_female == pytest.approx(np.corrcoef(column, female)[0, 1])
    # Some unit separates women from older men (the sex feature, or its negation).
    assert max(abs(unit.corr_female) for unit in results.hidden_units) > 0.5


def test_experiment_network_weights_are_in_raw_units(results: experiment.TitanicResults) -> None:
    """The reported network computes its accuracy from raw ages (years), as the handout's."""
    inputs = np.column_stack([results.age, results.male])
    probability = np.asarray(results.network(inputs).data[:, 0])
    accuracy = float(np.mean((probability > 0.5) == (results.survived == 1)))
    assert accuracy == results.model("MLP").accuracy
    survival = results.survival_ages["men"]
    assert survival and survival[0][0] == 0.0 and 3.0 < survival[0][1] < 12.0


def test_raw_units_conversion_is_exact() -> None:
    """Weights on standardised inputs, converted, give the same pre-activations on raw inputs."""
    rng = np.random.default_rng(0)
    raw = np.column_stack([rng.uniform(0, 80, 50), rng.integers(0, 2, 50).astype(float)])
    standardiser = experiment._Standardiser.fit(raw)
    assert standardiser.scale[1] == 1.0 and standardiser.mean[1] == 0.0  # 0/1 column kept
    weight, bias = rng.normal(size=(3, 2)), rng.normal(size=3)
    raw_weight, raw_bias = experiment._raw_units(weight, bias, standardiser)
    expected = standardiser(raw) @ weight.T + bias
    assert np.allclose(raw @ raw_weight.T + raw_bias, expected, atol=1e-12)


def test_experiment_is_reproducible_and_seeded() -> None:
    """The same seed gives the same numbers; another seed another split."""
    first = experiment.run_titanic_experiment(seed=3, epochs=30, restarts=2)
    again = experiment.run_titanic_experiment(seed=3, epochs=30, restarts=2)
    other = experiment.run_titanic_experiment(seed=4, epochs=30, restarts=2)
    assert [m.heldout_accuracy for m in first.models] == [m.heldout_accuracy for m in again.models]
    assert first.restarts_all[0].loss == again.restarts_all[0].loss
    assert [r.seed for r in first.restarts_all] != [r.seed for r in other.restarts_all]


def test_experiment_rejects_bad_options() -> None:
    """Out-of-range options raise ExperimentError naming the option."""
    with pytest.raises(experiment.ExperimentError, match="restarts"):
        experiment.run_titanic_experiment(restarts=0)
    with pytest.raises(experiment.ExperimentError, match="young_age"):
        experiment.run_titanic_experiment(young_age=100.0)


def test_titanic_command_hidden_option_changes_the_network(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--hidden 3 trains a 3→3→1 network and reports three hidden units."""
    assert main(["titanic", "--hidden", "3", "--epochs", "30", "--restarts", "1"]) == 0
    output = capsys.readouterr().out
    assert "MLP 3→3→1" in output
    assert re.search(r"^x3\(2\)\s", output, re.MULTILINE)
    # It says which shape convention it uses, and where figures would go.
    assert "the input width counts the bias unit" in output
    assert "Figures: none written. Add --out DIR" in output


def test_titanic_command_quiet_prints_only_the_accuracy_table(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--quiet prints the accuracy table and nothing else."""
    assert main(["titanic", "--quiet", "--epochs", "20", "--restarts", "1"]) == 0
    output = capsys.readouterr().out
    assert output.startswith("Accuracy")
    assert len(_accuracy_rows(output)) == 5
    assert "Exercise 2" not in output
    assert "Done in" not in output


def test_titanic_command_writes_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--out DIR writes the three PNG figures and no temporary files."""
    out = tmp_path / "figures"
    assert main(["titanic", "--epochs", "30", "--restarts", "2", "--out", str(out)]) == 0
    names = sorted(os.listdir(out))
    assert names == sorted(["loss_curves.png", "hidden_units.png", "network.png"])
    for name in names:
        data = (out / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
    assert "Figures:" in capsys.readouterr().out


def test_titanic_command_out_must_be_a_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--out naming an existing file exits 2 with one line and leaves the file alone."""
    existing = tmp_path / "taken"
    existing.write_text("keep me")
    assert main(["titanic", "--out", str(existing)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "is a file" in error
    assert existing.read_text() == "keep me"


def test_titanic_command_without_matplotlib_says_what_to_install(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without matplotlib, --out exits 2 naming the "plot" extra, before any training."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["titanic", "--out", str(tmp_path / "figures")]) == 2
    error = capsys.readouterr().err
    assert 'pip install "chainrule[plot]"' in error
    assert not (tmp_path / "figures").exists()


def test_titanic_command_rejects_a_bad_epoch_count(capsys: pytest.CaptureFixture[str]) -> None:
    """--epochs 0 is a usage error (exit status 2)."""
    with pytest.raises(SystemExit) as exit_info:
        main(["titanic", "--epochs", "0"])
    assert exit_info.value.code == 2
    assert "--epochs" in capsys.readouterr().err


def test_titanic_console_entry_runs_as_a_module() -> None:
    """`python -m chainrule titanic` works from a fresh interpreter."""
    completed = subprocess.run(
        [sys.executable, "-m", "chainrule", "titanic", "--epochs", "50", "--restarts", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    assert len(_accuracy_rows(completed.stdout)) == 5
    assert "0.9933" in completed.stdout


def test_experiment_hidden_unit_descriptions_match_their_curves(
    results: experiment.TitanicResults,
) -> None:
    """Each unit's "on for" ages are where its curve is above 0.5, per sex, on the grid."""
    for sex, male in (("women", 0.0), ("men", 1.0)):
        grid = np.column_stack([experiment.AGE_GRID, np.full(experiment.AGE_GRID.shape, male)])
        with cr.no_grad():
            hidden = results.network.layer_outputs(grid)[1].data
        for unit in results.hidden_units:
            on = hidden[:, unit.unit - 1] > 0.5
            covered = np.zeros_like(on)
            for start, end in unit.on_ages[sex]:
                covered |= (start <= experiment.AGE_GRID) & (end >= experiment.AGE_GRID)
            assert np.array_equal(on, covered), (unit.unit, sex)
            if not on.all():  # a unit off for some ages is never described as on for all
                assert f"{sex} every age" not in unit.description


def test_experiment_closest_feature_is_shown_only_where_true(
    results: experiment.TitanicResults,
) -> None:
    """ "closest to" names a handout feature only if the unit agrees on ≥ 95 % of passengers."""
    female = results.male == 0
    for unit in results.hidden_units:
        inputs = np.column_stack([results.age, results.male])
        with cr.no_grad():
            column = results.network.layer_outputs(inputs)[1].data[:, unit.unit - 1] > 0.5
        assert unit.agreement["female"] == pytest.approx(np.mean(column == female))
        closest = unit.closest
        if closest is None:
            assert max(unit.agreement.values()) < experiment.CLOSE_AGREEMENT
        else:
            assert unit.agreement[closest] >= experiment.CLOSE_AGREEMENT
