"""tinygrad_lite: a small reverse-mode autodiff engine on numpy.

    >>> from tinygrad_lite import Tensor
    >>> x = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
"""

from . import autograd, datasets, nn, ops, optim  # noqa: F401  (importing ops attaches every op to Tensor)
from .anomaly import AnomalyError, detect_anomaly  # noqa: F401  (or TINYGRAD_LITE_DETECT_ANOMALY=1)
from .functional import grad, hessian, hvp, jacobian, jvp, value_and_grad
from .gradcheck import GradcheckError, check_model, gradcheck, gradcheck_report, gradgradcheck
from .io import load, save
from .tensor import Function, Tensor, enable_grad, is_grad_enabled, no_grad
from .viz import draw_graph, trace  # noqa: F401  (and `viz.record(model)` for module clusters)

cat = Tensor.cat
stack = Tensor.stack
where = Tensor.where

__all__ = ["Tensor", "Function", "no_grad", "enable_grad", "is_grad_enabled", "gradcheck", "gradgradcheck",
           "GradcheckError", "cat", "stack", "where", "save", "load", "nn", "optim", "datasets", "autograd",
           "grad", "value_and_grad", "jacobian", "hessian", "hvp", "jvp", "check_model", "gradcheck_report"]
__version__ = "0.1.0"
