"""Gradient-check experiments: questions about gradients, answered with numbers and pictures.

    python examples/gradcheck_experiments.py eps        # finite-difference error vs step size, float32 and float64
    python examples/gradcheck_experiments.py order      # central vs forward differences: measured error orders
    python examples/gradcheck_experiments.py kinks      # what gradcheck reports at relu(0), max ties, abs(0)
    python examples/gradcheck_experiments.py models     # the MNIST MLPs and a small GPT through check_model
    python examples/gradcheck_experiments.py bug        # a planted softmax-backward bug, caught and located
    python examples/gradcheck_experiments.py attention  # gradient reaching q and k: scaled vs unscaled scores
    python examples/gradcheck_experiments.py hessian    # the Hessian of cross-entropy: diag(p) - p pᵀ, its eigenvalues
    python examples/gradcheck_experiments.py sharpness  # the top Hessian eigenvalue of the MNIST MLP along training
    python examples/gradcheck_experiments.py newton     # Newton's method against gradient descent (MNIST 0 vs 1)
    python examples/gradcheck_experiments.py gradgradcheck  # every op's double-backward error
    python examples/gradcheck_experiments.py all

Each command prints a table and writes a PNG into --out (default out/gradcheck/).
"""

from __future__ import annotations

import argparse
import math
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinygrad_lite import (
    Function,
    Tensor,
    autograd,
    check_model,
    cli,
    gradcheck_report,
    gradgradcheck_report,
    hessian,
    jacobian,
)
from tinygrad_lite.gradcheck import GradcheckReport, jacobians, numeric_jacobian
from tinygrad_lite.nn import Module
from tinygrad_lite.nn import functional as F

EPS_GRID = 10.0 ** np.arange(-1.0, -12.01, -0.5)  # 1e-1 ... 1e-12 in half decades


# ---- small shared pieces -------------------------------------------------------------------------
def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).rjust(w) for c, w in zip(r, widths))
    print(line(header))
    print("-" * len(line(header)))
    for r in rows:
        print(line(r))


def save_figure(fig, out: Path, name: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    fig.savefig(path, dpi=120, bbox_inches="tight")
    print(f"plot: {path}")


def pyplot():
    """matplotlib's pyplot on the file-only backend (imported late: the tests import this module without it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@dataclass
class Case:
    """A function of Tensors, its float64 arguments, and which argument the Jacobian is taken against."""

    name: str
    fn: Callable[..., Tensor]
    args: list[np.ndarray]
    argnum: int = 0


def mlp_loss(x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, targets: np.ndarray) -> Tensor:
    """Mean cross-entropy of a tanh MLP, x (N, D) -> (N, K), from primitive ops only."""
    logits = (x @ w1 + b1).tanh() @ w2
    return -logits.log_softmax(axis=-1)[np.arange(len(targets)), targets].mean()


def step_cases() -> list[Case]:
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 3, size=8)
    mlp_args = [rng.standard_normal((8, 5)), rng.standard_normal((5, 6)) / 2, rng.standard_normal(6) / 2,
                rng.standard_normal((6, 3)) / 2]
    return [
        Case("exp", lambda x: x.exp(), [rng.uniform(-1, 1, 6)]),
        Case("tanh", lambda x: x.tanh(), [rng.uniform(-1, 1, 6)]),
        Case("log", lambda x: x.log(), [rng.uniform(0.5, 2, 6)]),
        Case("softmax", lambda x: x.softmax(axis=-1), [rng.standard_normal((2, 4))]),
        Case("mlp dW1", lambda x, w1, b1, w2: mlp_loss(x, w1, b1, w2, targets), mlp_args, argnum=1),
    ]


def step_error(case: Case, eps: float, dtype: type, scheme: str = "central") -> float:
    """max |numeric − exact| / max |exact| for one step size; the numeric Jacobian is computed in `dtype`.

    The exact Jacobian is the analytic one in float64 (which gradcheck confirms at 1e-9 or better).
    """
    exact = jacobian(case.fn, argnums=case.argnum)(*case.args)
    inputs = [Tensor(a, dtype=dtype, requires_grad=i == case.argnum) for i, a in enumerate(case.args)]
    numeric = numeric_jacobian(case.fn, inputs, case.argnum, eps, scheme).reshape(exact.shape)
    return float(np.abs(numeric - exact).max() / np.abs(exact).max())


def error_curves(dtypes: tuple[type, ...], schemes: tuple[str, ...]) -> dict[tuple[str, str, str], np.ndarray]:
    """{(case, dtype name, scheme): errors over EPS_GRID}."""
    return {(case.name, np.dtype(dt).name, scheme): np.array([step_error(case, e, dt, scheme) for e in EPS_GRID])
            for case in step_cases() for dt in dtypes for scheme in schemes}


# ---- 1. step size ---------------------------------------------------------------------------------
def experiment_eps(out: Path) -> dict[str, float]:
    """Central-difference error against eps in float32 and float64: the V of truncation vs round-off."""
    curves = error_curves((np.float32, np.float64), ("central",))
    names = [f"{c} f{d[-2:]}" for c, d, _ in curves]
    print("max |numeric - exact| / max |exact|, central differences, numeric Jacobian computed in each dtype\n")
    rows = [[f"{e:.0e}" if i % 2 == 0 else f"{e:.1e}"] + [f"{errs[i]:.1e}" for errs in curves.values()]
            for i, e in enumerate(EPS_GRID)]
    rows.append(["best eps"] + [f"{EPS_GRID[np.argmin(errs)]:.1e}" for errs in curves.values()])
    print_table(["eps"] + names, rows)
    optimum = {}
    for dt in ("float32", "float64"):
        bests = [EPS_GRID[np.argmin(errs)] for (_, d, _), errs in curves.items() if d == dt]
        errors = [errs.min() for (_, d, _), errs in curves.items() if d == dt]
        optimum[dt] = float(np.exp(np.median(np.log(bests))))
        theory = np.finfo(dt).eps ** (1 / 3)
        print(f"\n{dt}: measured optimum eps (median over cases) {optimum[dt]:.0e}, best error "
              f"{min(errors):.0e}..{max(errors):.0e}; theory (machine eps)^(1/3) = {theory:.0e}")

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, dt in zip(axes, ("float32", "float64")):
        for (case, d, _), errs in curves.items():
            if d == dt:
                ax.loglog(EPS_GRID, errs, marker="o", ms=3, label=case)
        ax.axvline(optimum[dt], color="grey", ls=":", label=f"median optimum {optimum[dt]:.0e}")
        ax.set(title=f"central differences in {dt}", xlabel="eps", ylabel="max error / max |J|")
        ax.invert_xaxis()
        ax.legend(fontsize=8)
    save_figure(fig, out, "eps.png")
    return optimum


# ---- 2. central vs forward ------------------------------------------------------------------------
def slope(eps: np.ndarray, errs: np.ndarray) -> float:
    """The fitted exponent p in error ≈ C eps^p."""
    return float(np.polyfit(np.log10(eps), np.log10(errs), 1)[0])


def experiment_order(out: Path) -> dict[str, float]:
    """Error orders of central (eps²) and forward (eps) differences in float64, measured by fitted slopes."""
    curves = error_curves((np.float64,), ("central", "forward"))
    truncation = EPS_GRID >= 1e-3  # round-off is still 1e-13 or less here
    roundoff = EPS_GRID <= 1e-9
    rows, slopes = [], {"central": [], "forward": []}
    for (case, _, scheme), errs in curves.items():
        s = slope(EPS_GRID[truncation], errs[truncation])
        slopes[scheme].append(s)
        rows.append([case, scheme, f"{s:.2f}", f"{slope(EPS_GRID[roundoff], errs[roundoff]):.2f}",
                     f"{EPS_GRID[np.argmin(errs)]:.0e}", f"{errs.min():.1e}"])
    print("float64; slopes of log(error) against log(eps), truncation regime eps in [1e-3, 1e-1], "
          "round-off regime eps in [1e-12, 1e-9]\n")
    print_table(["case", "scheme", "truncation slope", "round-off slope", "best eps", "best error"], rows)
    measured = {scheme: float(np.median(s)) for scheme, s in slopes.items()}
    print(f"\nmedian truncation slope: central {measured['central']:.2f} (theory 2), "
          f"forward {measured['forward']:.2f} (theory 1); theory optimum: central eps^(1/3) = "
          f"{np.finfo(np.float64).eps ** (1 / 3):.0e}, forward eps^(1/2) = {np.finfo(np.float64).eps ** 0.5:.0e}")

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for (_, _, scheme), errs in curves.items():
        ax.loglog(EPS_GRID, errs, ls="-" if scheme == "central" else "--", marker="o", ms=2.5,
                  color="C0" if scheme == "central" else "C3", alpha=0.6)
    ax.loglog(EPS_GRID, EPS_GRID**2, color="k", lw=0.8, label="eps² (central: solid)")
    ax.loglog(EPS_GRID, EPS_GRID, color="k", lw=0.8, ls="--", label="eps (forward: dashed)")
    ax.set(title="float64: central vs forward differences, all cases", xlabel="eps", ylabel="max error / max |J|",
           ylim=(1e-13, 1))
    ax.invert_xaxis()
    ax.legend()
    save_figure(fig, out, "order.png")
    return measured


# ---- 3. kinks -------------------------------------------------------------------------------------
def kink_cases() -> list[tuple[str, Callable[..., Tensor], list[list[float]], list[int], str]]:
    """(label, fn, float64 inputs, the elements of input 0 at the kink, why)."""
    near = 3e-7  # closer to the kink than gradcheck's eps = 1e-6
    return [
        ("relu at 0", lambda x: x.relu(), [[-1.0, 0.0, 2.0]], [1], "relu'(0) := 0; the difference sees 1/2"),
        ("relu at 3e-7", lambda x: x.relu(), [[-1.0, near, 2.0]], [1], "the step straddles the kink"),
        ("relu at 0.05", lambda x: x.relu(), [[-1.0, 0.05, 2.0]], [1], "the tests' margin, 50,000 eps"),
        ("abs at 0", lambda x: x.abs(), [[-1.0, 0.0, 2.0]], [1], "sign(0) = 0 = the symmetric difference"),
        ("abs at 3e-7", lambda x: x.abs(), [[-1.0, near, 2.0]], [1], "the step straddles the kink"),
        ("max, tie", lambda x: x.max(), [[1.0, 3.0, 3.0, 2.0]], [1, 2], "ties share the gradient"),
        ("first argmax, tie", lambda x: x[int(np.argmax(x.data))], [[1.0, 3.0, 3.0, 2.0]], [1, 2],
         "one winner takes all (torch.max(dim))"),
        ("max, gap 3e-7", lambda x: x.max(), [[1.0, 3.0, 3.0 + near, 2.0]], [1, 2], "a near-tie within eps"),
        ("maximum(a, b), a = b", lambda a, b: a.maximum(b), [[0.5, 1.0], [0.5, 2.0]], [0], "ties share: 1/2, 1/2"),
    ]


def experiment_kinks(out: Path) -> list[tuple[str, GradcheckReport]]:
    """gradcheck at non-differentiable points, next to them, and at the margin the tests keep."""
    rows, reports = [], []
    for label, fn, args, kink, why in kink_cases():
        inputs = [Tensor(a, dtype=np.float64, requires_grad=True) for a in args]
        report = gradcheck_report(fn, *inputs)
        reports.append((label, report))
        analytic, numeric = jacobians(fn, inputs)[0]
        at = [(k if analytic.shape[0] > 1 else 0, k) for k in kink]  # d out_k / d x_k, or d out / d x_k
        bad = report.first_failure()
        rows.append([label, str(args[0]), str(kink), " ".join(f"{analytic[i]:.3g}" for i in at),
                     " ".join(f"{numeric[i]:.3g}" for i in at), "pass" if report.passed else "FAIL",
                     "-" if bad is None else f"{bad.name} {_where(bad)}", why])
    print("gradcheck (eps=1e-6, central differences) at kinks; derivatives shown at the kink elements of input 0\n")
    print_table(["case", "input 0", "kink at", "analytic", "numeric", "verdict", "reported worst", "why"], rows)
    print("\n" + textwrap.fill("At an exact kink the central difference returns the mean of the two one-sided slopes "
          "(relu: 1/2; "
          "abs: 0, which happens to equal sign(0)); within eps of one it returns anything in between. "
          "tests/strategies.py therefore keeps values at least KINK_MARGIN = 0.05 from 0 for relu, abs, division "
          "and non-integer powers, draws inputs of max/maximum pairwise 0.15 apart (distinct_arrays), and keeps "
          "log/sqrt inputs >= 0.1.", width=110))

    plt = pyplot()
    eps = 1e-6
    xs = np.linspace(-3 * eps, 3 * eps, 241)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, (name, f, df) in zip(axes, [("relu", lambda x: np.maximum(x, 0), lambda x: (x > 0) * 1.0),
                                        ("abs", np.abs, np.sign)]):
        ax.plot(xs / eps, (f(xs + eps) - f(xs - eps)) / (2 * eps), label="central difference, eps=1e-6")
        ax.plot(xs / eps, df(xs), ls="--", label="analytic (backward)")
        ax.set(title=f"{name} near its kink", xlabel="x / eps", ylabel="derivative")
        ax.legend(fontsize=8)
    save_figure(fig, out, "kinks.png")
    return reports


def _where(c) -> str:
    return "projection" if c.worst is None else f"{list(c.worst_output)} <- {list(c.worst)}"


# ---- 4. whole models ------------------------------------------------------------------------------
def model_cases() -> list[tuple[str, Module, Callable[[Module, object], Tensor], object]]:
    """(name, model, loss_fn(model, batch), batch): the MNIST MLPs of models/mlp.py and a small models/gpt.py."""
    from models.gpt import GPT, GPTConfig
    from models.mlp import MLP

    rng = np.random.default_rng(0)
    x = Tensor(rng.uniform(0, 1, (4, 784)))  # a batch of MNIST-shaped images
    y = rng.integers(0, 10, size=4)
    idx, targets = rng.integers(0, 11, size=(2, 2, 8))
    quadratic = lambda m, b: F.mse_loss(m(b[0]), b[1])
    cross_entropy = lambda m, b: F.cross_entropy(m(b[0]), b[1])
    gpt_config = GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16, dropout=0.1)
    return [
        ("mlp classic (784-30-10 sigmoid, quadratic cost)", MLP([784, 30, 10], "sigmoid", activate_output=True, seed=0),
         quadratic, (x, Tensor(np.eye(10)[y]))),
        ("mlp modern (784-128-64-10 relu, dropout, cross-entropy)", MLP([784, 128, 64, 10], "relu", dropout=0.2,
                                                                         seed=0), cross_entropy, (x, y)),
        ("gpt (2 layers, 2 heads, C=16, T=8, dropout)", GPT(gpt_config, seed=0), lambda m, b: m(*b)[1],
         (Tensor(idx), Tensor(targets))),
    ]


def experiment_models(out: Path) -> dict[str, GradcheckReport]:
    """check_model on whole models in float64 (eval mode, so no dropout): the worst relative error per parameter."""
    reports = {}
    for name, model, loss_fn, batch in model_cases():
        report = check_model(model, loss_fn, batch)
        reports[name] = report
        print(f"\n{name}: {model.num_parameters():,} parameters\n{report}")
    rows = [[name, f"{len(r.inputs)}", f"{max(c.max_rel_error for c in r.inputs):.1e}",
             max(r.inputs, key=lambda c: c.max_rel_error).name, "pass" if r.passed else "FAIL"]
            for name, r in reports.items()]
    print()
    print_table(["model", "param tensors", "worst rel err", "where", "verdict"], rows)

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 0.25 * sum(len(r.inputs) for r in reports.values()) + 1.5))
    labels, values, colors = [], [], []
    for i, (name, r) in enumerate(reports.items()):
        for c in r.inputs:
            labels.append(f"{name.split(' (')[0]}: {c.name} ({c.mode})")
            values.append(max(c.max_rel_error, 1e-16))
            colors.append(f"C{i}")
    ax.barh(range(len(values)), values, color=colors)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set(title="check_model in float64: worst relative error per parameter", xlabel="max relative error")
    save_figure(fig, out, "models.png")
    return reports


# ---- 5. a planted bug -----------------------------------------------------------------------------
class BuggySoftmax(Function):
    """Softmax whose backward forgets the diagonal term of ds_i/dx_j = s_i (δ_ij − s_j)."""

    def forward(self, x, axis=-1):
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)

    def backward(self, g):
        s = self.output
        return (-s * (g * s).sum(axis=self.params["axis"], keepdims=True),)  # the correct one adds g * s


def planted_bug_reports() -> tuple[GradcheckReport, GradcheckReport, np.ndarray]:
    """gradcheck of the buggy softmax alone (full Jacobian), and inside a loss with a second input.

    Returns both reports and the softmax probabilities: the missing term is s_k on the
    diagonal, so the worst element must be the largest probability.
    """
    rng = np.random.default_rng(0)
    logits = Tensor(rng.standard_normal((3, 5)), dtype=np.float64, requires_grad=True)
    weights = Tensor(rng.standard_normal((3, 5)), dtype=np.float64, requires_grad=True)
    alone = gradcheck_report(lambda x: BuggySoftmax.apply(x, axis=-1), logits)
    in_loss = gradcheck_report(lambda x, w: (BuggySoftmax.apply(x, axis=-1) * w).sum(), logits, weights,
                               names=["logits", "weights"])
    return alone, in_loss, logits.softmax(axis=-1).data


def experiment_bug(out: Path) -> tuple[GradcheckReport, GradcheckReport]:
    """A softmax backward missing its diagonal term: caught, and located at the right input and element."""
    alone, in_loss, probs = planted_bug_reports()
    print("softmax(x) with the diagonal term missing from backward, x (3, 5):\n")
    print(alone)
    print("\n(softmax(logits) * weights).sum():\n")
    print(in_loss)
    largest = tuple(int(i) for i in np.unravel_index(np.argmax(probs), probs.shape))
    print(f"\nThe error on entry (k <- k) is exactly s_k, so the worst must be the largest probability, at {largest}: "
          f"reported {alone.inputs[0].worst_output} <- {alone.inputs[0].worst}; the weights' gradient "
          f"(softmax itself) {'passes' if in_loss['weights'].passed else 'FAILS'}.")

    logits = Tensor(np.random.default_rng(0).standard_normal((3, 5)), dtype=np.float64, requires_grad=True)
    analytic, numeric = jacobians(lambda x: BuggySoftmax.apply(x, axis=-1), [logits])[0]
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), layout="constrained")
    for ax, (title, m) in zip(axes, [("analytic (buggy backward)", analytic), ("numeric", numeric),
                                     ("analytic − numeric", analytic - numeric)]):
        im = ax.imshow(m, cmap="RdBu_r", vmin=-np.abs(m).max(), vmax=np.abs(m).max())
        ax.set(title=title, xlabel="input element (flat)")
        fig.colorbar(im, ax=ax, shrink=0.8)
    axes[0].set_ylabel("output element (flat)")
    save_figure(fig, out, "bug.png")
    return alone, in_loss


# ---- 6. attention scale ---------------------------------------------------------------------------
def attention_loss(q: Tensor, k: Tensor, v: Tensor, upstream: np.ndarray, scaled: bool) -> tuple[Tensor, Tensor]:
    """(sum(upstream * softmax(scores) v), scores) for q, k, v (T, d), scores = q kᵀ [/ sqrt(d)] (T, T)."""
    scores = q @ k.T
    if scaled:
        scores = scores / math.sqrt(q.shape[-1])
    return ((scores.softmax(axis=-1) @ v) * upstream).sum(), scores


def attention_gradients(head_sizes: tuple[int, ...] = (4, 16, 64, 256, 1024, 4096), t: int = 16,
                        seeds: int = 8) -> dict[tuple[bool, int], dict[str, float]]:
    """Per (scaled, head size): statistics over the rows of q, k and the scores (T rows x `seeds` draws).

    q, k, v ~ N(0, 1); the upstream gradient on the attention output has rows of unit expected norm,
    so only the softmax and the scale decide what reaches q and k.
    """
    results = {}
    for scaled in (True, False):
        for d in head_sizes:
            rows = {"q": [], "k": [], "scores": [], "max_weight": []}
            for seed in range(seeds):
                rng = np.random.default_rng(seed)
                q, k, v = (Tensor(rng.standard_normal((t, d)), dtype=np.float64, requires_grad=True)
                           for _ in range(3))
                loss, scores = attention_loss(q, k, v, rng.standard_normal((t, d)) / math.sqrt(d), scaled)
                scores.retain_grad()
                loss.backward()
                for name, g in (("q", q.grad), ("k", k.grad), ("scores", scores.grad)):
                    rows[name].extend(np.linalg.norm(g.data, axis=-1))
                rows["max_weight"].extend(scores.softmax(axis=-1).data.max(axis=-1))
            q_norms = np.array(rows["q"])
            results[(scaled, d)] = {
                "q": float(np.median(q_norms)), "k": float(np.median(rows["k"])),
                "scores": float(np.median(rows["scores"])), "q_p90": float(np.percentile(q_norms, 90)),
                "dead": float(np.mean(q_norms < 1e-3)), "max_weight": float(np.mean(rows["max_weight"])),
            }
    return results


def experiment_attention(out: Path) -> dict[tuple[bool, int], dict[str, float]]:
    """Why 1/sqrt(d): unscaled scores grow like sqrt(d), softmax saturates, and the gradient to q, k dies."""
    rng = np.random.default_rng(0)
    q, k, v = (Tensor(rng.standard_normal((4, 8)), dtype=np.float64, requires_grad=True) for _ in range(3))
    upstream = rng.standard_normal((4, 8))
    for scaled in (True, False):
        report = gradcheck_report(lambda q, k, v, s=scaled: attention_loss(q, k, v, upstream, s)[0], q, k, v)
        print(f"gradcheck of the {'scaled' if scaled else 'unscaled'} attention loss (T=4, d=8): "
              f"{'passed' if report.passed else 'FAILED'}, worst rel err "
              f"{max(c.max_rel_error for c in report.inputs):.1e}")
    results = attention_gradients()
    head_sizes = sorted({d for _, d in results})
    print("\nT=16, q, k, v ~ N(0, 1), 8 draws; per-row gradient norms, median over the 128 rows "
          "(p90: 90th percentile; dead: share of query rows with |dL/dq_i| < 1e-3; max w: mean largest weight)\n")
    for scaled in (True, False):
        print("scores = q kᵀ / sqrt(d)" if scaled else "\nscores = q kᵀ (unscaled)")
        rows = [[f"{d}"] + [f"{results[(scaled, d)][key]:.2e}" for key in ("scores", "q", "k", "q_p90")]
                + [f"{results[(scaled, d)]['dead']:.0%}", f"{results[(scaled, d)]['max_weight']:.3f}"]
                for d in head_sizes]
        print_table(["head size d", "|dL/dscores_i|", "|dL/dq_i|", "|dL/dk_j|", "p90 |dL/dq_i|", "dead q rows",
                     "max w"], rows)
    first, last = head_sizes[0], head_sizes[-1]
    for s in (True, False):
        ratio = results[(s, last)]["q"] / results[(s, first)]["q"]
        print(f"{'scaled' if s else 'unscaled'}: median |dL/dq_i| changes by x{ratio:.2g} from d={first} to d={last}")

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for s, ls in ((True, "-"), (False, "--")):
        label = "q kᵀ/√d" if s else "q kᵀ"
        for key, color in (("q", "C0"), ("k", "C1"), ("scores", "C2")):
            axes[0].loglog(head_sizes, [results[(s, d)][key] for d in head_sizes], ls=ls, color=color,
                           marker="o", label=f"dL/d{key}, {label}")
        axes[1].semilogx(head_sizes, [results[(s, d)]["max_weight"] for d in head_sizes], ls=ls, marker="o",
                         label=f"mean largest weight, {label}")
        axes[1].semilogx(head_sizes, [results[(s, d)]["dead"] for d in head_sizes], ls=ls, marker="s",
                         label=f"share of dead q rows, {label}")
    axes[0].set(title="median per-row gradient norm", xlabel="head size d", ylabel="norm")
    axes[1].set(title="softmax saturation", xlabel="head size d", ylim=(0, 1.05))
    for ax in axes:
        ax.legend(fontsize=7)
    save_figure(fig, out, "attention.png")
    return results


# ---- 7. the Hessian of cross-entropy ----------------------------------------------------------------
def cross_entropy_hessian(logits: np.ndarray, target: int) -> tuple[np.ndarray, np.ndarray]:
    """(the Hessian of cross_entropy(logits, target) with respect to the logits by double backward,
    softmax(logits)): for one row, d²/dz² is diag(p) − p pᵀ whatever the target."""
    z = np.asarray(logits, dtype=np.float64)
    h = hessian(lambda t: F.cross_entropy(t.reshape(1, -1), np.array([target])))(z)
    p = np.exp(z - z.max())
    return h, p / p.sum()


def experiment_hessian(out: Path) -> dict[str, float]:
    """The Hessian of cross-entropy with respect to the logits is diag(p) − p pᵀ: checked, with its eigenvalues."""
    rng = np.random.default_rng(0)
    results = {}
    rows = []
    for name, z in (("uniform", np.zeros(5)), ("random", rng.standard_normal(5)), ("confident", [6.0, 0, 0, 0, 0]),
                    ("two-way tie", [4.0, 4.0, 0, 0, 0])):
        h, p = cross_entropy_hessian(np.asarray(z, dtype=np.float64), target=0)
        error = float(np.abs(h - (np.diag(p) - np.outer(p, p))).max())
        eig = np.linalg.eigvalsh(h)
        results[name] = error
        rows.append([name, np.array2string(p, precision=3), f"{error:.1e}",
                     np.array2string(eig, precision=3, suppress_small=True), f"{eig[-1]:.3f}"])
    print_table(["logits", "p = softmax", "max |H − (diag p − ppᵀ)|", "eigenvalues", "largest"], rows)
    print("\nOne eigenvalue is 0 (eigenvector 1: adding a constant to every logit changes nothing); the others lie "
          "in (0, max p] and all vanish as the prediction becomes confident: the loss flattens where it is sure.")
    h, p = cross_entropy_hessian(rng.standard_normal(8), target=3)
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained")
    for ax, (title, m) in zip(axes[:2], [("H by double backward", h), ("diag(p) − p pᵀ", np.diag(p) - np.outer(p, p))]):
        im = ax.imshow(m, cmap="RdBu_r", vmin=-np.abs(m).max(), vmax=np.abs(m).max())
        ax.set(title=title, xlabel="logit j", ylabel="logit i")
        fig.colorbar(im, ax=ax, shrink=0.8)
    temperatures = np.geomspace(0.05, 20, 40)
    tops = [np.linalg.eigvalsh(cross_entropy_hessian(rng.standard_normal(8) / tau, 3)[0])[-1] for tau in temperatures]
    axes[2].semilogx(1 / temperatures, tops, marker=".")
    axes[2].set(title="largest eigenvalue vs logit scale", xlabel="scale of the logits (1 / temperature)",
                ylabel="λ_max")
    save_figure(fig, out, "hessian.png")
    return results


# ---- 8. sharpness along training ----------------------------------------------------------------------
def top_eigenvalue(loss_fn: Callable[[], Tensor], params: list[Tensor], iterations: int = 20,
                   seed: int = 0) -> float:
    """The largest Hessian eigenvalue of loss_fn() in params, by the Lanczos method on Hessian-vector
    products (each one double backward: the gradient with create_graph, then the gradient of gᵀv).
    Lanczos, not power iteration: power iteration finds the eigenvalue of largest magnitude, which may be negative."""
    sizes = [p.numel() for p in params]

    def hvp(v: np.ndarray) -> np.ndarray:
        pieces = np.split(v, np.cumsum(sizes)[:-1])
        grads = autograd.grad(loss_fn(), params, create_graph=True)
        dot = sum((g * Tensor(u.reshape(p.shape))).sum() for g, u, p in zip(grads, pieces, params))
        return np.concatenate([h.data.ravel() for h in autograd.grad(dot, params, allow_unused=True)])

    v = np.random.default_rng(seed).standard_normal(sum(sizes))
    basis, alphas, betas = [v / np.linalg.norm(v)], [], []
    for _ in range(iterations):
        w = hvp(basis[-1])
        alphas.append(float(w @ basis[-1]))
        for q in basis:  # full reorthogonalisation: a few vectors, so cheap and stable
            w -= (w @ q) * q
        beta = float(np.linalg.norm(w))
        if beta < 1e-10:
            break
        betas.append(beta)
        basis.append(w / beta)
    k = len(alphas)
    tridiagonal = np.diag(alphas) + np.diag(betas[:k - 1], 1) + np.diag(betas[:k - 1], -1)
    return float(np.linalg.eigvalsh(tridiagonal)[-1])


def sharpness_run(lr: float, steps: int, every: int, n: int = 1000, seed: int = 0
                  ) -> list[tuple[int, float, float]]:
    """Full-batch gradient descent on Nielsen's network (784-30-10, sigmoid, quadratic cost), float64, on n
    MNIST images (random images if the data is absent): (step, loss, top Hessian eigenvalue) every `every` steps."""
    from models.mlp import MLP
    from tinygrad_lite.datasets import load_mnist

    try:
        x, y = load_mnist(download=False)[:2]
        x, y = x[:n].astype(np.float64), np.eye(10)[y[:n]]
    except FileNotFoundError:
        rng = np.random.default_rng(seed)
        x, y = rng.uniform(0, 1, (n, 784)), np.eye(10)[rng.integers(0, 10, n)]
    model = MLP([784, 30, 10], "sigmoid", activate_output=True, seed=seed).double()
    params = model.parameters()
    loss_fn = lambda: ((model(Tensor(x)) - Tensor(y)) ** 2).sum() / (2 * n)  # noqa: E731  Nielsen's C
    history = []
    for step in range(steps + 1):
        if step % every == 0:
            history.append((step, loss_fn().item(), top_eigenvalue(loss_fn, params)))
        if step == steps:
            break
        model.zero_grad()
        loss_fn().backward()
        for p in params:
            p.data -= lr * p.grad.data
    return history


def experiment_sharpness(out: Path, steps: int = 1000) -> dict[float, list[tuple[int, float, float]]]:
    """The top Hessian eigenvalue of the MNIST MLP's loss along training, next to 2/η (the edge of stability)."""
    runs = {lr: sharpness_run(lr, steps=steps, every=max(steps // 20, 1)) for lr in (2.0, 8.0, 32.0)}
    for lr, history in runs.items():
        print(f"\nlearning rate η = {lr:g}: 2/η = {2 / lr:.3f}")
        print_table(["step", "loss", "top eigenvalue λ", "λ η / 2"],
                    [[str(s), f"{loss:.4f}", f"{lam:.4f}", f"{lam * lr / 2:.2f}"] for s, loss, lam in history])
    print("\nGradient descent is unstable along any direction whose curvature exceeds 2/η (Cohen et al., 2021, "
          "the edge of stability). Here, after step 0:")
    for lr, history in runs.items():
        ratios = [lam * lr / 2 for step, _, lam in history if step > 0]
        near = sum(0.9 <= r <= 1.1 for r in ratios)
        print(f"  η = {lr:g}: λη/2 at most {max(ratios):.2f}, within 10% of the edge at {near} of {len(ratios)} "
              f"measurements, final loss {history[-1][1]:.4f}")
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    for i, (lr, history) in enumerate(runs.items()):
        steps, losses, lams = zip(*history)
        axes[0].plot(steps, lams, marker=".", color=f"C{i}", label=f"λ_max, η = {lr:g}")
        axes[0].axhline(2 / lr, color=f"C{i}", ls="--", lw=1, label=f"2/η = {2 / lr:.2f}")
        axes[1].plot(steps, losses, color=f"C{i}", label=f"η = {lr:g}")
    axes[0].set(title="sharpness along full-batch gradient descent", xlabel="step", ylabel="top Hessian eigenvalue",
                yscale="log")
    axes[1].set(title="training loss (Nielsen's quadratic cost)", xlabel="step", yscale="log")
    for ax in axes:
        ax.legend(fontsize=8)
    save_figure(fig, out, "sharpness.png")
    return runs


# ---- 9. Newton's method ---------------------------------------------------------------------------------
def zeros_and_ones(n: int = 2000, pool: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """MNIST 0s and 1s as (n, 1 + (28/pool)²) float64 features (a bias column, then pool x pool averages), labels."""
    from tinygrad_lite.datasets import load_mnist

    x, y = load_mnist(download=False)[:2]
    keep = (y == 0) | (y == 1)
    x, y = x[keep][:n], y[keep][:n].astype(np.float64)
    side = 28 // pool
    x = x.reshape(len(x), side, pool, side, pool).mean(axis=(2, 4)).reshape(len(x), -1)
    return np.hstack([np.ones((len(x), 1)), x]).astype(np.float64), y


def logistic_loss(w: Tensor, x: np.ndarray, y: np.ndarray, ridge: float) -> Tensor:
    """Mean logistic loss of labels y ∈ {0, 1} for logits x w, plus ridge/2 |w|²."""
    return F.binary_cross_entropy_with_logits(Tensor(x) @ w, Tensor(y)) + (w * w).sum() * (ridge / 2)


def newton_vs_gradient_descent(x: np.ndarray, y: np.ndarray, ridge: float = 1e-3, tolerance: float = 1e-8,
                               max_gd_steps: int = 20000) -> dict[str, dict[str, float]]:
    """Iterations and seconds each method needs to bring the loss within `tolerance` of its minimum."""
    loss = lambda w: logistic_loss(w, x, y, ridge)  # noqa: E731
    value_and_gradient = lambda w: autograd_value_grad(loss, w)  # noqa: E731
    d = x.shape[1]
    start = time.perf_counter()
    w, newton_losses, newton_times = np.zeros(d), [], []
    for _ in range(50):  # Newton: w <- w - H⁻¹ g, H by double backward
        value, g = value_and_gradient(w)
        newton_losses.append(value)
        newton_times.append(time.perf_counter() - start)
        if np.linalg.norm(g) < 1e-12:
            break
        w = w - np.linalg.solve(hessian(loss)(w), g)
    best = min(newton_losses)
    newton_iters = next(i for i, v in enumerate(newton_losses) if v - best <= tolerance)
    # gradient descent with the step 1/L, L the largest curvature (the best fixed step for a convex loss)
    lipschitz = np.linalg.eigvalsh(hessian(loss)(np.zeros(d)))[-1]
    start = time.perf_counter()
    w, gd_iters = np.zeros(d), max_gd_steps
    for i in range(max_gd_steps):
        value, g = value_and_gradient(w)
        if value - best <= tolerance:
            gd_iters = i
            break
        w = w - g / lipschitz
    gd_time = time.perf_counter() - start
    return {"newton": {"iterations": newton_iters, "seconds": newton_times[newton_iters], "loss": best},
            "gradient descent (step 1/L)": {"iterations": gd_iters, "seconds": gd_time, "loss": value}}


def autograd_value_grad(loss: Callable[[Tensor], Tensor], w: np.ndarray) -> tuple[float, np.ndarray]:
    t = Tensor(w, requires_grad=True)
    out = loss(t)
    (g,) = autograd.grad(out, [t])
    return out.item(), g.data


def experiment_newton(out: Path, images: int = 2000) -> dict[str, dict[str, float]]:
    """Newton's method against gradient descent on logistic regression, MNIST 0 vs 1 (14x14 pixels)."""
    x, y = zeros_and_ones(images)
    results = newton_vs_gradient_descent(x, y)
    print(f"logistic regression, {len(x)} MNIST images of 0 and 1 at 14x14 (+ a bias: {x.shape[1]} weights), "
          f"ridge 1e-3, to within 1e-8 of the minimum loss\n")
    print_table(["method", "iterations", "seconds", "final loss"],
                [[m, str(int(r["iterations"])), f"{r['seconds']:.2f}", f"{r['loss']:.8f}"] for m, r in results.items()])
    print("\nNewton converges quadratically (the error squares each step), paying for a Hessian by double "
          "backward each step; gradient descent's steps are cheap but it crawls along the flat directions.")
    return results


# ---- 10. double backward of every op -------------------------------------------------------------------------
def gradgrad_cases() -> list[tuple[str, Callable[..., Tensor], list[np.ndarray]]]:
    """One small case per op kind: (name, fn, float64 inputs away from kinks and domain edges)."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    pos = rng.uniform(0.5, 2.0, (3, 4))
    grid = (np.arange(12).reshape(3, 4) - 5.5) * 0.15  # distinct values, away from 0: no ties or kinks
    c = rng.standard_normal((4, 2))
    targets = np.array([0, 3, 1])
    return [
        ("add", lambda x, y: x + y, [a, b]), ("sub", lambda x, y: x - y, [a, b]), ("mul", lambda x, y: x * y, [a, b]),
        ("div", lambda x, y: x / y, [a, pos]), ("pow", lambda x, y: x ** y, [pos, b]),
        ("pow (number)", lambda x: x ** 3, [a]), ("neg", lambda x: -x, [a]), ("exp", lambda x: x.exp(), [a]),
        ("log", lambda x: x.log(), [pos]), ("sqrt", lambda x: x.sqrt(), [pos]), ("abs", lambda x: x.abs(), [grid]),
        ("tanh", lambda x: x.tanh(), [a]), ("sigmoid", lambda x: x.sigmoid(), [a]),
        ("relu", lambda x: x.relu(), [grid]),
        ("erf", lambda x: x.erf(), [a]), ("gelu", lambda x: x.gelu(), [a]),
        ("gelu (tanh)", lambda x: x.gelu(approximate="tanh"), [a]), ("clamp", lambda x: x.clamp(-0.3, 0.4), [grid]),
        ("maximum", lambda x, y: x.maximum(y), [grid, grid.T[::-1].T * 0.9 + 0.01]),
        ("where", lambda x, y: Tensor.where(a > 0, x, y), [a, b]), ("masked_fill", lambda x: x.masked_fill(a > 0, 1.0),
                                                                     [b]),
        ("sum", lambda x: x.sum(dim=1), [a]), ("mean", lambda x: x.mean(dim=0), [a]),
        ("amax", lambda x: x.amax(dim=1), [grid]), ("max(dim)", lambda x: x.max(dim=0).values, [grid]),
        ("var", lambda x: x.var(dim=1), [a]), ("std", lambda x: x.std(dim=1), [a]),
        ("softmax", lambda x: x.softmax(dim=1), [a]), ("log_softmax", lambda x: x.log_softmax(dim=1), [a]),
        ("logsumexp", lambda x: x.logsumexp(dim=1), [a]), ("matmul", lambda x, y: x @ y, [a, c]),
        ("reshape", lambda x: x.reshape(2, 6), [a]), ("permute", lambda x: x.permute(1, 0), [a]),
        ("expand", lambda x: x[:1].expand(3, 4) * x, [a]), ("getitem", lambda x: x[[0, 2, 2], 1:], [a]),
        ("setitem", lambda x, y: _put(x, y), [a, b[0]]), ("cat", lambda x, y: Tensor.cat([x, y], dim=1), [a, b]),
        ("cast", lambda x: x.to(np.float64) * x, [a]), ("linear", lambda x, w: F.linear(x, w), [a, c.T]),
        ("layer_norm", lambda x: F.layer_norm(x, 4), [a]),
        ("cross_entropy", lambda x: F.cross_entropy(x, targets, label_smoothing=0.1), [a]),
        ("attention", lambda q, k: F.scaled_dot_product_attention(q, k, q * k, is_causal=True), [a, b]),
    ]


def _put(x: Tensor, y: Tensor) -> Tensor:
    out = x * 1.0
    out[1] = y
    return out


def experiment_gradgradcheck(out: Path) -> dict[str, GradcheckReport]:
    """The double-backward error of every op: gradgradcheck (float64) of each, as a table."""
    reports = {}
    rows = []
    for name, fn, arrays in gradgrad_cases():
        inputs = [Tensor(a.astype(np.float64), requires_grad=True) for a in arrays]
        report = gradgradcheck_report(fn, *inputs)
        reports[name] = report
        worst = max(report.inputs, key=lambda c: c.max_abs_error)
        rows.append([name, str(tuple(inputs[0].shape)), f"{worst.max_abs_error:.1e}", f"{worst.max_rel_error:.1e}",
                     "ok" if report.passed else "FAIL"])
    print_table(["op", "input shape", "max abs error", "max rel error", "gradgradcheck"], rows)
    passed = sum(r.passed for r in reports.values())
    print(f"\n{passed} of {len(reports)} ops pass (float64, eps 1e-6, atol 1e-5, rtol 1e-3: PyTorch's defaults).")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.22 * len(rows) + 1), layout="constrained")
    errors = [max(c.max_rel_error for c in r.inputs) for r in reports.values()]
    ax.barh(range(len(errors)), np.maximum(errors, 1e-16), color=["C0" if r.passed else "C3" for r in reports.values()])
    ax.set_yticks(range(len(errors)), list(reports), fontsize=7)
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set(title="gradgradcheck: worst relative error of the second derivatives", xlabel="max relative error")
    save_figure(fig, out, "gradgradcheck.png")
    return reports


EXPERIMENTS = {"eps": experiment_eps, "order": experiment_order, "kinks": experiment_kinks,
               "models": experiment_models, "bug": experiment_bug, "attention": experiment_attention,
               "hessian": experiment_hessian, "sharpness": experiment_sharpness, "newton": experiment_newton,
               "gradgradcheck": experiment_gradgradcheck}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", choices=[*EXPERIMENTS, "all"])
    parser.add_argument("--out", type=Path, default=Path("out/gradcheck"), help="folder for the PNGs")
    parser.add_argument("--sharpness-steps", type=int, default=1000, help="gradient-descent steps of `sharpness`")
    parser.add_argument("--newton-images", type=int, default=2000, help="MNIST 0s and 1s that `newton` fits")
    args = parser.parse_args()
    options = {"sharpness": {"steps": args.sharpness_steps}, "newton": {"images": args.newton_images}}
    for name, run in EXPERIMENTS.items():
        if args.experiment in (name, "all"):
            print(f"\n=== {name}: {run.__doc__.splitlines()[0] if run.__doc__ else ''}\n")
            run(args.out, **options.get(name, {}))


if __name__ == "__main__":
    cli.run(main)
