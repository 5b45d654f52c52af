"""The exercise generators, one per topic, in the handouts' style and notation.

* ``chain-rule`` — f(x, y, z) built from monomials and chainrule's functions, the size of
  the assignment's exercise 3(a); find ∂f/∂v for a variable that reaches f by two paths.
* ``dataflow`` — the same kind of f with a part used twice (x² in cos(x²y) + x²√z);
  find that node's adjoint ∂f/∂u, the sum over its outgoing edges.
* ``sigmoid-neuron`` — the quiz's neuron z = σ(w0 + w1·x1 + w2·x2) with square loss
  (y − z)² or the assignment's log loss; find ∂L/∂w_j.
* ``mlp-layer`` — one sigmoid layer x^(k) → x^(k+1) with weights w_{i,j}^(k) (the bias
  unit last) and the adjoints g_i = ∂l/∂x_i^(k+1) given; find ∂l/∂x_j^(k) (eq. (11)).
* ``backprop`` — the Titanic 2→2→1 MLP (3→2→1 counting the bias unit) with log loss;
  find ∂l/∂w for an output or hidden weight, or ∂l/∂x_j for an input.

Every random choice comes from ``numpy.random.default_rng(seed)``: the same topic,
seed and difficulty give the same exercise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..expressions import Expr, format_expr, names, parse
from .exercise import Exercise

__all__ = ["TOPICS", "exercise_for", "generate"]

_FUNCTIONS = {1: ("sin", "cos", "exp"), 2: ("sin", "cos", "exp", "log", "sqrt")}
_FUNCTIONS[3] = (*_FUNCTIONS[2], "tanh", "sigmoid")
# Functions whose value is positive, so that log and sqrt of a sum containing them are real.
_POSITIVE = ("exp", "sqrt", "sigmoid")
_ANSWER_STYLE = (
    "Write it as on paper (-2xy sin(x^2 y), x^2/(2 sqrt z), σ(s)(1 - σ(s))) "
    "or in Python style (-2*x*y*sin(x**2*y))."
)


def _monomial(rng: np.random.Generator, variables: tuple[str, ...], must: str, size: int) -> str:
    others = [v for v in variables if v != must]
    chosen = [must, *list(rng.choice(others, size=min(size - 1, len(others)), replace=False))]
    rng.shuffle(chosen)
    factors = []
    for name in chosen:
        power = int(rng.integers(1, 3))
        factors.append(name if power == 1 else f"{name}**{power}")
    return "*".join(factors)


def _function(rng: np.random.Generator, difficulty: int, positive: bool = False) -> str:
    pool = _POSITIVE if positive else _FUNCTIONS[difficulty]
    return str(rng.choice(pool))


def _chain_rule_text(
    rng: np.random.Generator, difficulty: int, v: str, variables: tuple[str, ...]
) -> str:
    def mono(size: int = 2, must: str | None = None) -> str:
        return _monomial(rng, variables, must or str(rng.choice(variables)), size)

    g, h = _function(rng, difficulty), _function(rng, difficulty)
    if difficulty == 1:
        templates = [
            f"{mono(1, v)}*{g}({mono(2, v)})",
            f"{g}({mono(2, v)}) + {mono(2, v)}",
        ]
    elif difficulty == 2:
        templates = [
            f"{g}({mono(2, v)}) + {mono(1, v)}*{h}({mono(1)})",
            f"{mono(2, v)}*{g}({mono(1)}) + {h}({mono(2, v)})",
            f"{g}({mono(2, v)})*{h}({mono(1, v)})",
        ]
    else:
        inner = _function(rng, difficulty, positive=g in ("log", "sqrt"))
        templates = [
            f"{g}({mono(2, v)} + {inner}({mono(2)}))*{mono(1, v)}",
            f"{g}({mono(2, v)})*{h}({mono(2, v)}) + {mono(2, v)}",
            f"{g}({inner}({mono(2, v)}) + {mono(1, v)})",
        ]
    return str(templates[int(rng.integers(len(templates)))])


def _chain_rule(rng: np.random.Generator, seed: int | None, difficulty: int) -> Exercise:
    variables = ("x", "y") if difficulty == 1 else ("x", "y", "z")
    for _ in range(100):
        v = str(rng.choice(variables))
        text = _chain_rule_text(rng, difficulty, v, variables)
        exercise = _scalar_exercise("chain-rule", seed, difficulty, text, v, variables, rng)
        if exercise is not None:
            return exercise
    raise RuntimeError("no chain-rule exercise found in 100 draws")  # pragma: no cover


def _dataflow(rng: np.random.Generator, seed: int | None, difficulty: int) -> Exercise:
    variables = ("x", "y") if difficulty == 1 else ("x", "y", "z")
    for _ in range(100):
        v = str(rng.choice(variables))
        u = _monomial(rng, variables, v, 1 if difficulty == 1 else 2)
        if "*" not in u and "**" not in u:
            u = f"{u}**2"
        w = str(rng.choice([n for n in variables if n not in u] or list(variables)))
        g, h = _function(rng, difficulty), _function(rng, difficulty)
        templates = {
            1: [f"{g}(({u})*{w}) + ({u})", f"({u})*{g}(({u}) + {w})"],
            2: [f"{g}(({u})*{w}) + ({u})*{h}({w})", f"{g}({u})*{h}(({u})*{w})"],
            3: [
                f"{g}(({u}) + {_function(rng, 3, g in ('log', 'sqrt'))}(({u})*{w}))*{w}",
                f"{g}({u})*{h}(({u})*{w}) + ({u})**2",
            ],
        }[difficulty]
        text = str(templates[int(rng.integers(len(templates)))])
        node = parse(u)
        exercise = _scalar_exercise(
            "dataflow", seed, difficulty, text, node, variables, rng, definitions={"u": node}
        )
        if exercise is not None:
            return exercise
    raise RuntimeError("no dataflow exercise found in 100 draws")  # pragma: no cover


def _scalar_exercise(
    topic: str,
    seed: int | None,
    difficulty: int,
    text: str,
    wrt: str | Expr,
    variables: tuple[str, ...],
    rng: np.random.Generator,
    definitions: dict[str, Expr] | None = None,
) -> Exercise | None:
    """An exercise about f(variables) = text, or None when it is not a good one."""
    tree = parse(text)
    used = tuple(v for v in variables if v in names(tree))
    arguments = ", ".join(used)
    function = f"f({arguments}) = {format_expr(tree)}"
    point = {v: float(rng.choice([0.5, 1.0, 1.5, 2.0, 3.0])) for v in used}
    if isinstance(wrt, str):
        asked = f"∂f/∂{wrt}"
        prompt = f"Let {function}.\nFind {asked}."
    else:
        asked = "∂f/∂u"
        prompt = (
            f"Let {function}.\nIn its dataflow diagram the node u = {format_expr(wrt)} has more "
            f"than one outgoing edge. Find its adjoint {asked} (write it with {arguments}; "
            "you may also use u)."
        )
    exercise = Exercise(
        topic=topic,
        seed=seed,
        difficulty=difficulty,
        prompt=f"{prompt}\n{_ANSWER_STYLE}",
        function=function,
        asked=asked,
        expression=tree,
        wrt=wrt,
        variables=used,
        definitions=definitions or {},
        output_name="f",
        teaching_point=point,
        sampling={},
    )
    # Two or more paths, so that the answer is a real sum over paths (and every kind of
    # systematic mistake exists); each path's product must not vanish at the test points.
    paths = exercise._paths
    if len(paths) < 2 or any(np.any(np.abs(p) < 1e-6) for p, _ in exercise._path_values):
        return None
    # √(y²) is |y|: a trap, not an exercise.
    if "Abs" in str(exercise._expected_sympy):
        return None
    return exercise


def _sigmoid_neuron(rng: np.random.Generator, seed: int | None, difficulty: int) -> Exercise:
    inputs = 1 if difficulty == 1 else 2
    weights = [f"w{j}" for j in range(inputs + 1)]
    xs = [f"x{j}" for j in range(1, inputs + 1)]
    s = " + ".join(["w0", *(f"w{j}*x{j}" for j in range(1, inputs + 1))])
    loss = {1: "square", 2: str(rng.choice(["square", "log"])), 3: "log"}[difficulty]
    z = f"sigmoid({s})"
    if loss == "square":
        text, loss_text = f"(y - {z})**2", "the square loss L = (y − z)²"
    else:
        text = f"-y*log({z}) - (1 - y)*log(1 - {z})"
        loss_text = "the log loss L = −y·ln z − (1 − y)·ln(1 − z)"
    j = int(rng.integers(inputs + 1))
    wrt = f"w{j}"
    variables = (*weights, *xs, "y")
    neuron = f"z = σ(s), s = {format_expr(parse(s))}"
    prompt = (
        f"A sigmoid neuron {neuron}, with {loss_text} for a label y.\n"
        f"Find ∂L/∂{wrt}. You may use s and z in your answer.\n{_ANSWER_STYLE}"
    )
    sampling = {name: (-1.5, 1.5) for name in weights}
    sampling |= {name: (-2.0, 2.0) for name in xs}
    sampling["y"] = (0.05, 0.95)
    teaching = {"w0": 0.5, "w1": -1.0, "w2": 2.0, "x1": 1.0, "x2": 0.5, "y": 1.0}
    return Exercise(
        topic="sigmoid-neuron",
        seed=seed,
        difficulty=difficulty,
        prompt=prompt,
        function=f"L = {format_expr(parse(text))}",
        asked=f"∂L/∂{wrt}",
        expression=parse(text),
        wrt=wrt,
        variables=variables,
        definitions={"s": parse(s), "z": parse(z)},
        output_name="L",
        teaching_point={name: teaching[name] for name in variables},
        sampling=sampling,
    )


def _layer_sums(layer: int, outputs: int, inputs: list[str], bias: bool = True) -> dict[str, str]:
    """s_i = Σ_j w_{i,j}^(layer) · input_j (+ the bias unit's weight), by unit i."""
    sums = {}
    for i in range(1, outputs + 1):
        terms = [f"w{layer}_{i}{j}*{x}" for j, x in enumerate(inputs, 1)]
        if bias:
            terms.append(f"w{layer}_{i}{len(inputs) + 1}")
        sums[str(i)] = " + ".join(terms)
    return sums


def _mlp_layer(rng: np.random.Generator, seed: int | None, difficulty: int) -> Exercise:
    k = int(rng.integers(1, 3))
    n_in = 3 if difficulty == 3 else 2
    n_out = {1: 2, 2: int(rng.integers(2, 4)), 3: 3}[difficulty]
    xs = [f"x{j}" for j in range(1, n_in + 1)]
    sums = _layer_sums(k, n_out, xs)
    gs = [f"g{i}" for i in range(1, n_out + 1)]
    text = " + ".join(f"g{i}*sigmoid({sums[str(i)]})" for i in range(1, n_out + 1))
    j = int(rng.integers(1, n_in + 1))
    weights = [f"w{k}_{i}{jj}" for i in range(1, n_out + 1) for jj in range(1, n_in + 2)]
    variables = (*xs, *weights, *gs)
    definitions = {f"s{i}": parse(sums[str(i)]) for i in range(1, n_out + 1)}
    lines = "\n".join(
        f"  s{i} = {format_expr(definitions[f's{i}'])},  x_{i}^({k + 1}) = σ(s{i}),  "
        f"g{i} = ∂l/∂x_{i}^({k + 1})"
        for i in range(1, n_out + 1)
    )
    prompt = (
        f"One sigmoid layer of an MLP: {n_in} units x1…x{n_in} (x_j^({k})) and a bias unit "
        f"x_{n_in + 1}^({k}) = 1 feed {n_out} units x_i^({k + 1}) = σ(s_i^({k + 1})), with "
        f"weights w{k}_ij = w_{{i,j}}^({k}):\n{lines}\n"
        f"Backprop has already computed the adjoints g_i. Find ∂l/∂x{j}, that is "
        f"∂l/∂x_{j}^({k}). You may use s1…s{n_out}.\n{_ANSWER_STYLE}"
    )
    sampling = {name: (-1.5, 1.5) for name in (*weights, *gs)}
    sampling |= {name: (-2.0, 2.0) for name in xs}
    teaching_rng = np.random.default_rng(0 if seed is None else seed)
    teaching = {name: float(teaching_rng.choice([-2, -1, -0.5, 0.5, 1, 2])) for name in variables}
    return Exercise(
        topic="mlp-layer",
        seed=seed,
        difficulty=difficulty,
        prompt=prompt,
        function=f"l ≈ {format_expr(parse(text))} (to first order in the layer's outputs)",
        asked=f"∂l/∂x{j}",
        expression=parse(text),
        wrt=f"x{j}",
        variables=variables,
        definitions=definitions,
        output_name="l",
        teaching_point=teaching,
        sampling=sampling,
    )


def _backprop(rng: np.random.Generator, seed: int | None, difficulty: int) -> Exercise:
    hidden = _layer_sums(1, 2, ["x1", "x2"])
    h = {i: f"sigmoid({hidden[i]})" for i in hidden}
    output = f"w2_11*{h['1']} + w2_12*{h['2']} + w2_13"
    z = f"sigmoid({output})"
    text = f"-y*log({z}) - (1 - y)*log(1 - {z})"
    weights = [f"w1_{i}{j}" for i in (1, 2) for j in (1, 2, 3)] + [f"w2_1{j}" for j in (1, 2, 3)]
    if difficulty == 1:
        wrt = f"w2_1{int(rng.integers(1, 4))}"
    elif difficulty == 2:
        wrt = f"w1_{int(rng.integers(1, 3))}{int(rng.integers(1, 4))}"
    else:
        wrt = f"x{int(rng.integers(1, 3))}"
    variables = ("x1", "x2", *weights, "y")
    definitions = {
        "s1": parse(hidden["1"]),
        "s2": parse(hidden["2"]),
        "h1": parse(h["1"]),
        "h2": parse(h["2"]),
        "s": parse(output),
        "z": parse(z),
    }
    shown = {name: format_expr(tree) for name, tree in definitions.items() if name != "z"}
    prompt = (
        "The Titanic MLP: inputs x1 (age), x2 (male) and a bias unit; two sigmoid hidden "
        "units; one sigmoid output (3→2→1 counting the bias units), with log loss "
        "l = −y·ln z − (1 − y)·ln(1 − z). Weights wk_ij = w_{i,j}^(k):\n"
        f"  s1 = {shown['s1']},  h1 = σ(s1)  (x_1^(2))\n"
        f"  s2 = {shown['s2']},  h2 = σ(s2)  (x_2^(2))\n"
        f"  s = w2_11·h1 + w2_12·h2 + w2_13,  z = σ(s)  (x_1^(3))\n"
        f"Find ∂l/∂{wrt}. You may use s1, s2, h1, h2, s and z.\n{_ANSWER_STYLE}"
    )
    sampling = {name: (-1.5, 1.5) for name in weights}
    sampling |= {"x1": (0.2, 2.0), "x2": (0.0, 1.0), "y": (0.05, 0.95)}
    # The assignment's exercise 2 weights, for a boy of 4 who survived.
    teaching = {
        "w1_11": 0.0, "w1_12": -10.0, "w1_13": 5.0,
        "w1_21": -1.0, "w1_22": 15.0, "w1_23": -10.0,
        "w2_11": 2.0, "w2_12": 2.0, "w2_13": -1.0,
        "x1": 4.0, "x2": 1.0, "y": 1.0,
    }  # fmt: skip
    return Exercise(
        topic="backprop",
        seed=seed,
        difficulty=difficulty,
        prompt=prompt,
        function="l = −y·ln z − (1 − y)·ln(1 − z), z = σ(w2_11·σ(s1) + w2_12·σ(s2) + w2_13)",
        asked=f"∂l/∂{wrt}",
        expression=parse(text),
        wrt=wrt,
        variables=variables,
        definitions=definitions,
        output_name="l",
        teaching_point=teaching,
        sampling=sampling,
    )


_Generator = Callable[[np.random.Generator, "int | None", int], Exercise]

#: The topics, in the order a course meets them.
TOPICS: dict[str, _Generator] = {
    "chain-rule": _chain_rule,
    "dataflow": _dataflow,
    "sigmoid-neuron": _sigmoid_neuron,
    "mlp-layer": _mlp_layer,
    "backprop": _backprop,
}


def generate(topic: str = "chain-rule", seed: int | None = None, difficulty: int = 2) -> Exercise:
    """A new exercise in the handouts' style.

    Args:
        topic: one of :data:`TOPICS`: ``chain-rule``, ``dataflow``, ``sigmoid-neuron``,
            ``mlp-layer``, ``backprop``.
        seed: the same topic, seed and difficulty always give the same exercise;
            ``None`` draws a fresh seed (kept in ``exercise.seed``, to come back to it).
        difficulty: 1 (one or two steps), 2 (the handouts' size) or 3 (a step further).

    Returns:
        an :class:`~chainrule.practice.Exercise`: print ``.prompt``, mark an answer with
        ``.check(text)``, show ``.solution()``.

    Raises:
        ValueError: for an unknown topic, a difficulty outside 1–3 or a negative seed.
    """
    if topic not in TOPICS:
        raise ValueError(f"unknown topic {topic!r}; the topics are {', '.join(TOPICS)}")
    if difficulty not in (1, 2, 3):
        raise ValueError(f"difficulty is 1, 2 or 3, not {difficulty!r}")
    if seed is None:
        seed = int(np.random.default_rng().integers(1_000_000))
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed is a whole number ≥ 0, not {seed!r}")
    rng = np.random.default_rng([int(seed), difficulty, list(TOPICS).index(topic)])
    return TOPICS[topic](rng, int(seed), difficulty)


def exercise_for(
    expression: str, wrt: str, *, point: dict[str, float] | None = None, name: str = "f"
) -> Exercise:
    """An exercise about a function you choose: find ∂f/∂wrt (a teacher's own question).

    Args:
        expression: f in chainrule's expression language, e.g. ``"cos(x**2*y) + x**2*sqrt(z)"``.
        wrt: the variable to differentiate by, or a part of ``expression`` (``"x**2"``)
            for its adjoint ∂f/∂u.
        point: where the worked solution is drawn (default 1 for every variable).
            Answers are marked at random points with every variable in (0.3, 1.7).
        name: what the function is called in the prompt (``"L"`` for a loss).

    Raises:
        chainrule.expressions.ExpressionError: for text outside the language.
    """
    tree = parse(expression)
    variables = names(tree)
    target: str | Expr = wrt
    definitions: dict[str, Expr] = {}
    if wrt not in variables:
        target = parse(wrt)
        definitions = {"u": target}
    asked = f"∂{name}/∂{wrt}" if isinstance(target, str) else f"∂{name}/∂u"
    function = f"{name}({', '.join(variables)}) = {format_expr(tree)}"
    where = "" if isinstance(target, str) else f", where u = {format_expr(target)}"
    return Exercise(
        topic="custom",
        seed=None,
        difficulty=2,
        prompt=f"Let {function}.\nFind {asked}{where}.\n{_ANSWER_STYLE}",
        function=function,
        asked=asked,
        expression=tree,
        wrt=target,
        variables=variables,
        definitions=definitions,
        output_name=name,
        teaching_point={variable: 1.0 for variable in variables} | dict(point or {}),
        sampling={},
    )
