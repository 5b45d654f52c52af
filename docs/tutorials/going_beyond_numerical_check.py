"""Going beyond: backpropagation for an MLP written from the handout's equations in numpy, checked
against chainrule and against the numerical gradient (chainrule.gradcheck).

Run: python docs/tutorials/going_beyond_numerical_check.py [--out DIR]

The assignment's suggestions for going beyond: "Implement the backpropagation algorithm to
compute the gradient for an MLP" and "make sure your implementation is correct by comparing
the numerical approximation of the gradient to the gradient you calculated with the
backpropagation algorithm". `backprop` below is such an implementation: equations (9), (11)
and 5(c), vectorised over a batch of examples, in a dozen lines of numpy.
Figure: going_beyond_gradient_check.svg (backprop against central differences, a buggy
backprop caught, and the error of central differences against the step ε).
"""

from __future__ import annotations

import numpy as np
from _tutorial import check, check_that, heading, output_folder, pyplot, save, sigmoid

import chainrule as cr
from chainrule import nn

SIZES = [3, 5, 4, 1]
EXAMPLES = 20


def backprop(
    weights: list[np.ndarray], inputs: np.ndarray, labels: np.ndarray, sigma_prime: bool = True
) -> tuple[float, list[np.ndarray]]:
    """The summed log loss of a sigmoid MLP and its gradient, from the handout's equations.

    Args:
        weights: per layer k, the matrix whose row i is w_i^(k): shape (n_{k+1}, n_k + 1),
            the last column being the bias unit's weights.
        inputs: the examples, shape (N, n_1).
        labels: 0/1 labels, shape (N,).
        sigma_prime: False leaves out the factor σ(s)(1 − σ(s)) of eqs. (9) and (11) in the
            hidden layers, a classic mistake the numerical check must catch.

    Returns:
        the loss Σ −y·ln x^(m) − (1 − y)·ln(1 − x^(m)) and ∇ of it, one matrix per layer.
    """
    # Forward pass: x^(k) with the bias unit 1 appended, s^(k+1) = x^(k) W^(k)ᵀ.
    units, sums = [], []
    x = inputs
    for w in weights:
        x = np.column_stack([x, np.ones(len(x))])
        units.append(x)
        sums.append(x @ w.T)
        x = sigmoid(sums[-1])
    y = labels[:, None]
    loss = float(np.sum(-y * np.log(x) - (1 - y) * np.log(1 - x)))
    # Backward pass, from the output down.
    dl_dx = -y / x + (1 - y) / (1 - x)  # 5(c): ∂l/∂x_1^(m)
    gradients: list[np.ndarray] = []
    for k in reversed(range(len(weights))):
        output_layer = k == len(weights) - 1
        factor = sigmoid(sums[k]) * (1 - sigmoid(sums[k])) if sigma_prime or output_layer else 1.0
        delta = factor * dl_dx  # σ'(s_i^(k+1)) · ∂l/∂x_i^(k+1), per example and unit
        gradients.insert(0, delta.T @ units[k])  # (9), summed over the examples
        dl_dx = delta @ weights[k][:, :-1]  # (11): Σ_j w_{j,i}^(k) σ'(s_j^(k+1)) ∂l/∂x_j^(k+1)
    return loss, gradients


def chainrule_loss(*weights: cr.Tensor, inputs: np.ndarray, labels: np.ndarray) -> cr.Tensor:
    """The same loss built from chainrule tensors (what gradcheck differentiates)."""
    x = cr.tensor(inputs)
    for w in weights:
        x = (x @ w[:, :-1].T + w[:, -1]).sigmoid()
    y = cr.tensor(labels[:, None])
    return (-(y * cr.log(x) + (1 - y) * cr.log(1 - x))).sum()


def main() -> None:
    out = output_folder(__doc__.splitlines()[0])
    rng = np.random.default_rng(11)
    inputs = rng.normal(size=(EXAMPLES, SIZES[0]))
    labels = (rng.uniform(size=EXAMPLES) < 0.5).astype(float)
    model = nn.MLP(SIZES, activation="sigmoid", output_activation="sigmoid", seed=11)
    weights = [np.column_stack([layer.weight.data, layer.bias.data]) for layer in model.layers]

    shape = "→".join(map(str, SIZES))
    heading(f"Going beyond — backprop in numpy for the MLP {shape}, {EXAMPLES} examples")
    loss, gradients = backprop(weights, inputs, labels)
    print(f"  numpy backprop: loss {loss:.6f}, gradients of shapes {[g.shape for g in gradients]}")

    heading("Going beyond — against chainrule's backprop (chainrule.nn.MLP)")
    chainrule_value = nn.log_loss(model(inputs), labels[:, None], reduction="sum")
    chainrule_value.backward()
    check("the loss", loss, chainrule_value.item())
    for k, (layer, gradient) in enumerate(zip(model.layers, gradients), start=1):
        expected = np.column_stack([layer.weight.grad, layer.bias.grad])
        check(f"∇ of the layer-{k} weights (with the bias column)", gradient, expected)

    heading(
        "Going beyond — against the numerical gradient (chainrule.gradcheck, central differences)"
    )
    result = cr.gradcheck(
        lambda *w: chainrule_loss(*w, inputs=inputs, labels=labels), *weights, eps=1e-6
    )
    check_that(
        "chainrule's own backprop passes gradcheck",
        result.ok,
        f"max error {result.max_abs_error:.1e}",
    )
    numeric = result.numeric
    errors = [np.max(np.abs(g - n)) for g, n in zip(gradients, numeric)]
    for k, (gradient, approximation) in enumerate(zip(gradients, numeric), start=1):
        check(
            f"the numpy backprop's layer-{k} gradient equals (f(w + ε) − f(w − ε))/2ε",
            gradient,
            approximation,
            rtol=1e-5,
            atol=1e-7,
        )
    print(f"  largest difference: {max(errors):.1e} at ε = 1e-6 (how it depends on ε: below)")

    _, wrong = backprop(weights, inputs, labels, sigma_prime=False)
    wrong_errors = [np.max(np.abs(g - n)) for g, n in zip(wrong, numeric)]
    check_that(
        "a backprop that forgets σ'(s) in the hidden layers is caught: its hidden-layer "
        "gradients miss the numerical ones by far more than the check's own error",
        min(wrong_errors[:-1]) > 1e3 * max(errors) and wrong_errors[-1] <= max(errors),
        ", ".join(f"layer {k}: {e:.1e}" for k, e in enumerate(wrong_errors, start=1)),
    )

    # How to pick ε: truncation error falls like ε², rounding error grows like 1/ε.
    steps = np.logspace(-1, -12, 12)
    step_errors = []
    for eps in steps:
        approximate = cr.gradcheck(
            lambda *w: chainrule_loss(*w, inputs=inputs, labels=labels), *weights, eps=float(eps)
        ).numeric
        step_errors.append(max(np.max(np.abs(g - n)) for g, n in zip(gradients, approximate)))
    best = float(steps[int(np.argmin(step_errors))])
    print("  ε       largest |backprop − central difference|")
    for eps, error in zip(steps, step_errors):
        print(f"  {eps:.0e}   {error:.1e}")
    check_that(
        "the error is smallest for a middle ε (between 1e-7 and 1e-3), not the smallest one",
        1e-7 <= best <= 1e-3 and step_errors[-1] > min(step_errors),
        f"best ε = {best:.0e}",
    )
    check_that(
        "for large ε the error falls like ε² (a factor ≈ 100 per decade)",
        60 < step_errors[0] / step_errors[1] < 160,
        f"ratio {step_errors[0] / step_errors[1]:.0f}",
    )

    plt = pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(10.5, 4))
    flat_numeric = np.concatenate([n.ravel() for n in numeric])
    flat_right = np.concatenate([g.ravel() for g in gradients])
    flat_wrong = np.concatenate([g.ravel() for g in wrong])
    limit = 1.1 * max(np.abs(flat_numeric).max(), np.abs(flat_wrong).max())
    left.plot([-limit, limit], [-limit, limit], color="grey", linewidth=0.8)
    left.scatter(
        flat_numeric, flat_wrong, marker="x", color="tab:red", label="backprop without σ' (wrong)"
    )
    left.scatter(flat_numeric, flat_right, s=18, color="tab:blue", label="backprop, eqs. (9), (11)")
    left.set_xlabel("numerical gradient (central differences)")
    left.set_ylabel("backprop gradient")
    left.set_title(f"every weight of the MLP {'→'.join(map(str, SIZES))}")
    left.legend(loc="upper left")
    left.grid(alpha=0.3)
    right.loglog(steps, step_errors, marker="o")
    right.set_xlabel("step ε")
    right.set_ylabel("largest |backprop − numerical|")
    right.set_title("the error of central differences")
    right.text(0.04, 0.08, "truncation\nerror ∝ ε²", transform=right.transAxes)
    right.text(0.96, 0.08, "rounding\nerror ∝ 1/ε", transform=right.transAxes, ha="right")
    right.invert_xaxis()
    right.grid(alpha=0.3)
    save(
        figure,
        out,
        "going_beyond_gradient_check.svg",
        title="Going beyond: checking a hand-written backprop against the numerical gradient",
    )


if __name__ == "__main__":
    main()
