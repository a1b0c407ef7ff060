"""tinygrad_lite: a small reverse-mode autodiff engine on numpy.

    >>> from tinygrad_lite import Tensor
    >>> x = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
"""

from . import ops  # noqa: F401  (attaches every op to Tensor)
from .gradcheck import GradcheckError, gradcheck
from .tensor import Function, Tensor, enable_grad, is_grad_enabled, no_grad

cat = Tensor.cat
stack = Tensor.stack
where = Tensor.where

__all__ = ["Tensor", "Function", "no_grad", "enable_grad", "is_grad_enabled", "gradcheck", "GradcheckError",
           "cat", "stack", "where"]
__version__ = "0.1.0"
