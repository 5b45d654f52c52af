"""Assignment, exercise 4: logistic regression as a dataflow diagram, its log-loss node and
the gradient of the log loss, equation (8).

Run: python docs/tutorials/assignment_4_logistic_regression.py [--out DIR]

Figure 1 of the handout: the weights w and the input x are leaves (vectors), s = wᵀx and
z = σ(s) (assignment_4_figure_1.svg).
(a)  add the node l = −y·ln z − (1 − y)·ln(1 − z), the log loss of z against the label y
     (assignment_4a_log_loss.svg)
(b)  ∇_w l by the dataflow method, equation (8):
         ∇_w l = x·σ(s)(1 − σ(s))·(−y/z + (1 − y)/(1 − z))
               = −x·y·(1 − σ(wᵀx)) + x·(1 − y)·σ(wᵀx)
     and, summed over training examples, the gradient of the objective (7).
(c)  is a question for reflection, with no answer to compute.
"""

from __future__ import annotations

import numpy as np
from _tutorial import check, check_that, heading, log_loss_node, output_folder, save, show, sigmoid

import chainrule as cr

W = np.array([0.5, -1.0, 0.25])
X = np.array([1.0, 0.5, 2.0])  # s = wᵀx = 0.5
LABEL = 1.0


def logistic_regression(
    w: np.ndarray, x: np.ndarray, y: float
) -> tuple[cr.Tensor, cr.Tensor, cr.Tensor, cr.Tensor]:
    """Figure 1 plus the log-loss node: returns (w, s, z, l) as chainrule tensors."""
    w_leaf = cr.tensor(w, requires_grad=True, label="w")
    x_leaf = cr.tensor(x, label="x")
    s = w_leaf @ x_leaf
    s.label = "s"
    z = s.sigmoid()
    z.label = "z"
    return w_leaf, s, z, log_loss_node(z, y)


def equation_8(w: np.ndarray, x: np.ndarray, y: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three lines of equation (8), evaluated in numpy."""
    s = w @ x
    z = sigmoid(s)
    first = x * sigmoid(s) * (1 - sigmoid(s)) * (-y / z + (1 - y) / (1 - z))
    second = x * sigmoid(s) * (1 - sigmoid(s)) * (-y / sigmoid(s) + (1 - y) / (1 - sigmoid(s)))
    third = -x * y * (1 - sigmoid(w @ x)) + x * (1 - y) * sigmoid(w @ x)
    return first, second, third


def main() -> None:
    out = output_folder(__doc__.splitlines()[0])
    rng = np.random.default_rng(4)

    heading("Assignment 4 — Figure 1: the dataflow of logistic regression")
    w, s, z, loss = logistic_regression(W, X, LABEL)
    z.backward(retain_grads=True)
    figure_1 = cr.draw(z, engine="python")
    save(figure_1, out, "assignment_4_figure_1.svg")
    print(
        f"  w = {W.tolist()}, x = {X.tolist()}: s = wᵀx = {s.item():g}, z = σ(s) = {z.item():.6g}"
    )
    check("z = σ(wᵀx)", z.item(), sigmoid(W @ X))
    edges = {
        (figure_1.node(e.source).name, figure_1.node(e.target).name): e.symbol
        for e in figure_1.edges
    }
    check_that("the edge w → s carries the gradient xᵀ (∇_w s = x)", edges.get(("w", "s")) == "xᵀ")
    check_that(
        "the edge s → z carries σ(s)(1 − σ(s))",
        edges.get(("s", "z")) == "σ(s)·(1 − σ(s))",
        edges.get(("s", "z"), ""),
    )
    check("∇_w z = x·σ(s)(1 − σ(s))", w.grad, X * sigmoid(W @ X) * (1 - sigmoid(W @ X)))

    heading("Assignment 4(a) — a new node: the log loss l of z against the label y")
    w, s, z, loss = logistic_regression(W, X, LABEL)
    loss.backward(retain_grads=True)
    with_loss = cr.draw(loss, highlight="w", engine="python")
    save(with_loss, out, "assignment_4a_log_loss.svg")
    check("l = −y·ln σ(wᵀx) − (1 − y)·ln(1 − σ(wᵀx))", loss.item(), -np.log(sigmoid(W @ X)))
    figure_1_names = {node.name for node in figure_1.nodes}
    check_that(
        "the diagram is Figure 1 plus the loss: every node of Figure 1 is still there",
        figure_1_names <= {node.name for node in with_loss.nodes},
    )
    from_z = cr.explain(loss, z)
    show(from_z)
    z_value = z.item()
    check(
        "the paths from z to l add up to the edge label ∂l/∂z = −y/z + (1 − y)/(1 − z)",
        from_z.total,
        -LABEL / z_value + (1 - LABEL) / (1 - z_value),
    )

    heading("Assignment 4(b) — ∇_w l by the dataflow method, equation (8)")
    by_w = cr.explain(loss, w)
    show(by_w)
    first, second, third = equation_8(W, X, LABEL)
    check("backprop's ∇_w l equals eq. (8), first line", w.grad, first)
    check("…second line (z = σ(s))", w.grad, second)
    check("…third line, −x·y·(1 − σ(wᵀx)) + x·(1 − y)·σ(wᵀx)", w.grad, third)
    check("the sum over the paths from w equals it too", by_w.total, third)
    sigma_prime = sigmoid(W @ X) * (1 - sigmoid(W @ X))
    through_log_z = [p for p in by_w.paths if "log(z)" in p.names]
    check_that("one of the paths from w runs through ln z", len(through_log_z) == 1)
    check(
        "its product is the term x·σ(s)(1 − σ(s))·(−y/z)",
        through_log_z[0].product,
        X * sigma_prime * (-LABEL / z_value),
    )
    for label in (0.0, 1.0):
        for _ in range(3):
            w_random, x_random = rng.normal(size=4), rng.normal(size=4)
            w_leaf, _, _, random_loss = logistic_regression(w_random, x_random, label)
            random_loss.backward()
            check(
                f"y = {label:g}, random w, x ∈ R⁴: ∇_w l equals eq. (8)",
                w_leaf.grad,
                equation_8(w_random, x_random, label)[2],
            )

    print(
        "  For n training examples the gradient of the objective (7) is the sum of (8) over them:"
    )
    inputs = rng.normal(size=(50, 3))
    labels = (rng.uniform(size=50) < sigmoid(inputs @ np.array([1.0, -2.0, 0.5]))).astype(float)
    w_batch = cr.tensor(W, requires_grad=True, label="w")
    z_batch = (cr.tensor(inputs) @ w_batch).sigmoid()
    y_batch = cr.tensor(labels)
    objective = -(y_batch * cr.log(z_batch) + (1 - y_batch) * cr.log(1 - z_batch)).sum()
    objective.backward()
    summed = sum(equation_8(W, x_i, y_i)[2] for x_i, y_i in zip(inputs, labels))
    check("∇_w Σᵢ lᵢ = Σᵢ xᵢ(σ(wᵀxᵢ) − yᵢ) over 50 examples", w_batch.grad, summed)


if __name__ == "__main__":
    main()
