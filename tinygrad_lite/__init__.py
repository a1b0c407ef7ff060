"""tinygrad_lite: a small reverse-mode autodiff engine on numpy.

    >>> from tinygrad_lite import Tensor
    >>> x = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
"""

from . import autograd, data, datasets, nn, ops, optim, random  # noqa: F401  (importing ops attaches every op to Tensor)
from .anomaly import AnomalyError, detect_anomaly  # noqa: F401  (or TINYGRAD_LITE_DETECT_ANOMALY=1)
from .creation import (
    arange,
    cat,
    eye,
    from_numpy,
    full,
    full_like,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    stack,
    tensor,
    zeros,
    zeros_like,
)
from .functional import grad, hessian, hvp, jacobian, jvp, value_and_grad
from .gradcheck import GradcheckError, check_model, gradcheck, gradcheck_report, gradgradcheck, gradgradcheck_report
from .io import load, save
from .random import Generator, get_rng_state, initial_seed, manual_seed, seed, set_rng_state
from .tensor import Function, Tensor, enable_grad, is_grad_enabled, no_grad
from .viz import draw_graph, trace  # noqa: F401  (and `viz.record(model)` for module clusters)

where = Tensor.where

__all__ = ["Tensor", "Function", "no_grad", "enable_grad", "is_grad_enabled", "gradcheck", "gradgradcheck",
           "GradcheckError",
           "tensor", "from_numpy", "zeros", "ones", "full", "eye", "arange", "rand", "randn", "randint",
           "zeros_like", "ones_like", "full_like", "rand_like", "randn_like", "cat", "stack", "where",
           "manual_seed", "seed", "initial_seed", "get_rng_state", "set_rng_state", "Generator",
           "save", "load", "nn", "optim", "data", "datasets", "random", "autograd",
           "grad", "value_and_grad", "jacobian", "hessian", "hvp", "jvp", "check_model", "gradcheck_report",
           "gradgradcheck_report"]
__version__ = "0.1.0"
