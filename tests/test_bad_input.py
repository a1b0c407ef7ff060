"""The library's errors for misuse of its public API, as one table.

Each row is: a short id, a call that makes one mistake, the exception it raises,
and fragments the message must contain: the function or class that caught the
mistake, what it expected and what it was given. Reading the table tells you
what goes wrong and what you will see. Misuse of the core Tensor ops (shapes,
axes, broadcasting, indexing) is in tests/test_core_errors.py; this table covers
the layers, losses, models, data, optimizers, schedules, checkpoints and tools.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tinygrad_lite as tl
from models.char_data import CharDataset, CharTokenizer
from models.gpt import GPT, GPTConfig
from models.mlp import MLP
from tinygrad_lite import Tensor, nn, optim
from tinygrad_lite.data import DataLoader, TensorDataset, default_collate, random_split
from tinygrad_lite.datasets import load_mnist, read_idx
from tinygrad_lite.nn import functional as F
from tinygrad_lite.optim import lr_scheduler

TINY = dict(vocab_size=5, block_size=4, n_layer=1, n_head=2, n_embd=8)


def w(*shape: int) -> Tensor:
    """A float32 tensor that requires grad."""
    return Tensor(np.ones(shape, dtype=np.float32), requires_grad=True)


def ids(*values: int) -> Tensor:
    return Tensor(np.array(values, dtype=np.int64))


def gpt(**changes: Any) -> GPT:
    return GPT(GPTConfig(**{**TINY, **changes}), seed=0)


def sgd(*params: Tensor, **options: Any) -> optim.SGD:
    return optim.SGD(list(params) or [w(2)], **{"lr": 0.1, **options})


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def half_a_checkpoint(tmp: Path) -> Path:
    tl.save({"weights": np.ones(1000)}, tmp / "full.npz")
    return write(tmp / "half.npz", (tmp / "full.npz").read_bytes()[:2000])


def twice_backward() -> None:
    loss = (w(2) * 3.0).sum()
    loss.backward()
    loss.backward()


Thunk = Callable[[Path], Any]  # gets a fresh temporary folder

# (id, call, exception type, message fragments that must all appear)
CASES: list[tuple[str, Thunk, type[Exception], list[str]]] = [
    # ---- losses ---------------------------------------------------------------------------------------------
    ("cross-entropy-float-targets", lambda tmp: F.cross_entropy(w(4, 3), Tensor([0.0, 1.0, 2.0, 1.0])),
     TypeError, ["cross_entropy", "integer class indices", "float32"]),
    ("cross-entropy-target-too-big", lambda tmp: F.cross_entropy(w(2, 3), ids(0, 3)),
     IndexError, ["cross_entropy", "target 3", "3 classes", "0..2"]),
    ("cross-entropy-negative-target", lambda tmp: F.cross_entropy(w(2, 3), ids(0, -1)),
     IndexError, ["cross_entropy", "target -1"]),
    ("cross-entropy-batch-mismatch", lambda tmp: F.cross_entropy(w(4, 3), ids(0, 1)),
     ValueError, ["cross_entropy", "(4, 3)", "targets of shape (4,)", "got targets of shape (2,)"]),
    ("cross-entropy-logits-rank", lambda tmp: F.cross_entropy(w(3), ids(0)),
     ValueError, ["cross_entropy", "logits of shape (3,)", "(N, C)"]),
    ("cross-entropy-reduction", lambda tmp: F.cross_entropy(w(2, 3), ids(0, 1), reduction="avg"),
     ValueError, ["cross_entropy", "'mean', 'sum', 'none'", "'avg'"]),
    ("mse-shape-mismatch", lambda tmp: F.mse_loss(w(2, 3), np.ones((3, 2))),
     ValueError, ["mse_loss", "(2, 3)", "(3, 2)"]),
    ("one-hot-out-of-range", lambda tmp: F.one_hot(ids(3), 3), IndexError, ["one_hot", "target 3", "3 classes"]),
    # ---- layers ---------------------------------------------------------------------------------------------
    ("embedding-float-ids", lambda tmp: nn.Embedding(5, 3)(Tensor([0.0, 1.0])),
     TypeError, ["embedding", "integer", "float32", ".long()"]),
    ("embedding-id-out-of-range", lambda tmp: nn.Embedding(5, 3)(ids(2, 5)),
     IndexError, ["embedding", "id 5", "5 embeddings", "0..4"]),
    ("embedding-negative-size", lambda tmp: nn.Embedding(-1, 3),
     ValueError, ["Embedding", "num_embeddings", ">= 0", "-1"]),
    ("embedding-float-size", lambda tmp: nn.Embedding(5, 3.0),
     TypeError, ["Embedding", "embedding_dim", "integer", "float 3.0"]),
    ("linear-wrong-width", lambda tmp: nn.Linear(4, 2)(w(3, 5)),
     ValueError, ["Linear(4, 2)", "last dimension 4", "(3, 5)", "width 5"]),
    ("linear-0d-input", lambda tmp: nn.Linear(4, 2)(w()), ValueError, ["Linear(4, 2)", "shape ()"]),
    ("linear-ndarray-input", lambda tmp: nn.Linear(2, 2)(np.ones((1, 2))),
     TypeError, ["Linear", "Tensor", "ndarray"]),
    ("linear-negative-size", lambda tmp: nn.Linear(4, -2), ValueError, ["Linear", "out_features", "-2"]),
    ("linear-float-size", lambda tmp: nn.Linear(4.5, 2), TypeError, ["Linear", "in_features", "integer", "4.5"]),
    ("functional-linear-width", lambda tmp: F.linear(w(2, 3), w(4, 5)),
     ValueError, ["linear", "last dimension 5", "(2, 3)"]),
    ("layer-norm-shape", lambda tmp: nn.LayerNorm(4)(w(2, 3)),
     ValueError, ["layer_norm", "(4,)", "(2, 3)"]),
    ("layer-norm-negative-size", lambda tmp: nn.LayerNorm(-4), ValueError, ["LayerNorm", "normalized_shape", "-4"]),
    ("dropout-probability", lambda tmp: nn.Dropout(1.5), ValueError, ["Dropout", "[0, 1]", "1.5"]),
    ("functional-dropout-probability", lambda tmp: F.dropout(w(2), -0.1), ValueError, ["dropout", "-0.1"]),
    ("attention-head-size", lambda tmp: F.scaled_dot_product_attention(w(1, 2, 4, 8), w(1, 2, 4, 4), w(1, 2, 4, 8)),
     ValueError, ["scaled_dot_product_attention", "head size", "(1, 2, 4, 8)", "(1, 2, 4, 4)"]),
    ("module-attribute-before-init",
     lambda tmp: type("Net", (nn.Module,), {"__init__": lambda s: setattr(s, "a", 1)})(),
     AttributeError, ["Net", "super().__init__()"]),
    ("module-without-forward", lambda tmp: nn.Module()(w(2)), NotImplementedError, ["Module", "forward()"]),
    ("module-list-non-module", lambda tmp: nn.ModuleList().append(3), TypeError, ["ModuleList", "Module", "int"]),
    # ---- models ---------------------------------------------------------------------------------------------
    ("mlp-negative-width", lambda tmp: MLP([784, -3, 10]), ValueError, ["MLP", "positive integer", "[784, -3, 10]"]),
    ("mlp-zero-width", lambda tmp: MLP([784, 0, 10]), ValueError, ["MLP", "positive integer", "[784, 0, 10]"]),
    ("mlp-one-size", lambda tmp: MLP([784]), ValueError, ["MLP", "input and an output", "[784]"]),
    ("mlp-activation", lambda tmp: MLP([2, 3], activation="swish"), ValueError, ["MLP", "'swish'", "relu"]),
    ("gpt-config-negative-layers", lambda tmp: GPTConfig(n_layer=-1),
     ValueError, ["GPTConfig", "n_layer", "positive integer", "-1"]),
    ("gpt-config-zero-vocab", lambda tmp: GPTConfig(vocab_size=0), ValueError, ["GPTConfig", "vocab_size", "0"]),
    ("gpt-config-float-block-size", lambda tmp: GPTConfig(block_size=8.0), ValueError, ["block_size", "8.0"]),
    ("gpt-config-heads-dont-divide", lambda tmp: GPTConfig(n_embd=10, n_head=3),
     ValueError, ["GPTConfig", "n_embd (10)", "divisible by n_head (3)"]),
    ("gpt-config-dropout", lambda tmp: GPTConfig(dropout=1.0), ValueError, ["GPTConfig", "dropout", "[0, 1)", "1.0"]),
    ("gpt-config-positional", lambda tmp: GPTConfig(positional="rotary"),
     ValueError, ["positional", "'learned'", "'rotary'"]),
    ("gpt-config-unknown-key", lambda tmp: GPTConfig.from_dict({**TINY, "n_kv_head": 1}),
     ValueError, ["GPTConfig.from_dict", "unknown keys ['n_kv_head']", "'vocab_size'"]),
    ("gpt-block-size-exceeded", lambda tmp: gpt()(Tensor(np.zeros((1, 5), np.int64))),
     ValueError, ["GPT", "length 5", "block_size 4"]),
    ("gpt-float-ids", lambda tmp: gpt()(Tensor(np.zeros((1, 3)))), ValueError, ["GPT", "integer", "float64"]),
    ("gpt-ids-rank", lambda tmp: gpt()(ids(0, 1, 2)), ValueError, ["GPT", "(B, T)", "shape (3,)"]),
    ("gpt-token-outside-vocab", lambda tmp: gpt()(Tensor(np.full((1, 3), 7))),
     IndexError, ["embedding", "id 7", "5 embeddings"]),
    ("gpt-targets-batch-mismatch", lambda tmp: gpt()(Tensor(np.zeros((2, 3), np.int64)), ids(0, 1, 2)[None]),
     ValueError, ["cross_entropy", "(2, 3)", "(1, 3)"]),
    ("gpt-generate-temperature", lambda tmp: gpt().generate(ids(0, 1)[None], 2, temperature=0),
     ValueError, ["generate", "temperature", "positive", "0"]),
    ("gpt-generate-negative-count", lambda tmp: gpt().generate(ids(0, 1)[None], -2),
     ValueError, ["generate", "max_new_tokens", "-2"]),
    ("gpt-generate-top-k", lambda tmp: gpt().generate(ids(0, 1)[None], 2, top_k=0), ValueError, ["top_k", "0"]),
    # ---- text data ------------------------------------------------------------------------------------------
    ("text-shorter-than-a-block", lambda tmp: CharDataset("hello", block_size=8),
     ValueError, ["CharDataset", "5 characters", "block_size + 1 = 9"]),
    ("validation-split-shorter-than-a-block", lambda tmp: CharDataset("abcdefghij", block_size=8),
     ValueError, ["CharDataset", "val split", "1 characters", "block_size 8"]),
    ("text-empty", lambda tmp: CharDataset("", block_size=8), ValueError, ["CharDataset", "empty"]),
    ("prompt-unknown-character", lambda tmp: CharTokenizer.from_text("abc").encode("abz"),
     ValueError, ["encode", "'z'", "vocabulary of 3"]),
    ("decode-unknown-id", lambda tmp: CharTokenizer.from_text("abc").decode([0, 5]),
     ValueError, ["decode", "id 5", "vocabulary of 3"]),
    ("batch-unknown-split", lambda tmp: CharDataset("abcdefghij" * 10, 4).get_batch("test", 2, np.random.default_rng()),
     ValueError, ["get_batch", "'train' or 'val'", "'test'"]),
    ("batch-size-zero", lambda tmp: CharDataset("abcdefghij" * 10, 4).get_batch("train", 0, np.random.default_rng()),
     ValueError, ["get_batch", "batch_size", "0"]),
    # ---- state dicts and checkpoints -----------------------------------------------------------------------------
    ("state-dict-missing-key", lambda tmp: nn.Linear(2, 2).load_state_dict({"weight": np.ones((2, 2))}),
     RuntimeError, ["load_state_dict for Linear", "Missing key(s) in state_dict: 'bias'"]),
    ("state-dict-unexpected-key",
     lambda tmp: nn.Linear(2, 2, bias=False).load_state_dict({"weight": np.ones((2, 2)), "scale": np.ones(1)}),
     RuntimeError, ["load_state_dict", "Unexpected key(s) in state_dict: 'scale'"]),
    ("state-dict-shape-mismatch",
     lambda tmp: nn.Linear(2, 2).load_state_dict({"weight": np.ones((3, 2)), "bias": np.ones(2)}),
     RuntimeError, ["load_state_dict", "size mismatch for 'weight'", "shape (3, 2) from checkpoint", "is (2, 2)"]),
    ("state-dict-shape-mismatch-not-strict",
     lambda tmp: nn.Linear(2, 2).load_state_dict({"weight": np.ones((3, 2))}, strict=False),
     RuntimeError, ["load_state_dict", "size mismatch for 'weight'"]),
    ("checkpoint-from-wider-gpt", lambda tmp: gpt().load_state_dict(gpt(n_embd=16).state_dict()),
     RuntimeError, ["load_state_dict for GPT", "'wte.weight'", "(5, 8)", "(5, 16)"]),
    ("checkpoint-from-deeper-gpt", lambda tmp: gpt().load_state_dict(gpt(n_layer=2).state_dict()),
     RuntimeError, ["load_state_dict for GPT", "Unexpected key(s)", "'h.1.attn.c_attn.weight'"]),
    ("optimizer-state-other-groups",
     lambda tmp: optim.SGD([{"params": [w(2)]}, {"params": [w(2)]}], lr=0.1).load_state_dict(sgd().state_dict()),
     ValueError, ["SGD.load_state_dict", "1 parameter groups", "optimizer 2"]),
    ("load-corrupt-file", lambda tmp: tl.load(write(tmp / "corrupt.npz", b"not a checkpoint")),
     ValueError, ["load", "corrupt.npz", "not a readable tinygrad_lite checkpoint"]),
    ("load-truncated-file", lambda tmp: tl.load(half_a_checkpoint(tmp)),
     ValueError, ["load", "half.npz", "corrupt or truncated"]),
    ("load-missing-file", lambda tmp: tl.load(tmp / "nothing.npz"), FileNotFoundError, ["load", "nothing.npz"]),
    ("save-unsupported-object", lambda tmp: tl.save({"model": object()}, tmp / "x.npz"),
     TypeError, ["save", "object", "['model']"]),
    ("save-bad-key", lambda tmp: tl.save({(1, 2): 1}, tmp / "x.npz"), TypeError, ["save", "keys", "tuple"]),
    # ---- optimizers and schedules -----------------------------------------------------------------------------
    ("optimizer-no-parameters", lambda tmp: optim.SGD([], lr=0.1), ValueError, ["SGD", "empty parameter list"]),
    ("optimizer-used-up-generator", lambda tmp: optim.Adam(p for p in []), ValueError, ["Adam", "empty"]),
    ("optimizer-given-a-module", lambda tmp: optim.SGD(nn.Linear(2, 2), lr=0.1),
     TypeError, ["SGD", "iterable of Tensors", "Linear", "model.parameters()"]),
    ("optimizer-given-one-tensor", lambda tmp: optim.AdamW(w(2, 2)), TypeError, ["AdamW", "got Tensor"]),
    ("optimizer-lr-string", lambda tmp: sgd(lr="0.1"), TypeError, ["SGD", "lr must be a number", "str '0.1'"]),
    ("optimizer-lr-none", lambda tmp: optim.AdamW([w(2)], lr=None), TypeError, ["AdamW", "lr", "NoneType"]),
    ("optimizer-lr-negative", lambda tmp: optim.Adam([w(2)], lr=-1.0), ValueError, ["Adam", "lr=-1.0"]),
    ("optimizer-lr-nan", lambda tmp: sgd(lr=float("nan")), ValueError, ["SGD", "lr", "finite", "nan"]),
    ("optimizer-momentum-negative", lambda tmp: sgd(momentum=-0.9), ValueError, ["SGD", ">= 0", "-0.9"]),
    ("optimizer-beta-one", lambda tmp: optim.Adam([w(2)], betas=(0.9, 1.0)), ValueError, ["Adam", "betas=(0.9, 1.0)"]),
    ("optimizer-array-not-tensor", lambda tmp: optim.SGD([np.ones(2)], lr=0.1),
     TypeError, ["SGD", "require grad", "ndarray"]),
    ("optimizer-frozen-tensor", lambda tmp: optim.SGD([Tensor([1.0])], lr=0.1), TypeError, ["SGD", "require grad"]),
    ("optimizer-non-leaf-tensor", lambda tmp: optim.SGD([w(2) * 2.0], lr=0.1),
     ValueError, ["SGD", "non-leaf", "mul"]),
    ("optimizer-parameter-twice", lambda tmp: (lambda p: optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1))(w(2)),
     ValueError, ["SGD", "more than one group"]),
    ("optimizer-unknown-option", lambda tmp: optim.SGD([{"params": [w(2)], "momentun": 0.9}], lr=0.1),
     ValueError, ["SGD", "unknown option", "momentun"]),
    ("clip-negative-max-norm", lambda tmp: optim.clip_grad_norm_([w(2)], -1.0),
     ValueError, ["clip_grad_norm_", "max_norm", "positive", "-1.0"]),
    ("clip-string-max-norm", lambda tmp: optim.clip_grad_norm_([w(2)], "1"),
     TypeError, ["clip_grad_norm_", "max_norm", "number", "str"]),
    ("clip-nan-max-norm", lambda tmp: optim.clip_grad_norm_([w(2)], float("nan")),
     ValueError, ["clip_grad_norm_", "finite", "nan"]),
    ("step-lr-zero-step-size", lambda tmp: lr_scheduler.StepLR(sgd(), 0), ValueError, ["StepLR", "step_size", "0"]),
    # ---- PyTorch's everyday API: constructors, the generator, init, nn.utils, losses, schedules, data --------------
    ("tensor-ragged", lambda tmp: tl.tensor([[1.0, 2.0], [3.0]]), ValueError, ["tensor", "rectangular"]),
    ("tensor-of-strings", lambda tmp: tl.tensor(["a", "b"]), TypeError, ["tensor", "dtype <U1"]),
    ("tensor-unknown-dtype", lambda tmp: tl.tensor([1], dtype="banana"),
     TypeError, ["tensor", "dtype must be a numpy dtype", "'banana'"]),
    ("from-numpy-list", lambda tmp: tl.from_numpy([1.0, 2.0]),
     TypeError, ["from_numpy", "expected np.ndarray", "list"]),
    ("from-numpy-objects", lambda tmp: tl.from_numpy(np.array([None])), TypeError, ["from_numpy", "dtype object"]),
    ("zeros-negative-size", lambda tmp: tl.zeros(2, -1), ValueError, ["zeros", "negative", "(2, -1)"]),
    ("ones-float-size", lambda tmp: tl.ones(2.5), TypeError, ["ones", "sizes must be integers", "2.5"]),
    ("ones-complex-dtype", lambda tmp: tl.ones(2, dtype=np.complex128), TypeError, ["ones", "complex128"]),
    ("arange-zero-step", lambda tmp: tl.arange(0, 3, 0), ValueError, ["arange", "step must be nonzero"]),
    ("arange-wrong-direction", lambda tmp: tl.arange(0, -3), ValueError, ["arange", "from 0 to -3", "direction"]),
    ("arange-nan", lambda tmp: tl.arange(float("nan")), TypeError, ["arange", "finite number", "nan"]),
    ("randn-integer-dtype", lambda tmp: tl.randn(3, dtype=np.int64), TypeError, ["randn", "floating-point", "int64"]),
    ("randn-bad-generator", lambda tmp: tl.randn(3, generator="abc"), TypeError, ["randn", "seed/generator", "'abc'"]),
    ("randn-negative-seed", lambda tmp: tl.randn(3, generator=-1), ValueError, ["randn", "non-negative", "-1"]),
    ("randint-empty-range", lambda tmp: tl.randint(5, 5, (2,)), ValueError, ["randint", "low=5", "high=5"]),
    ("randint-no-size", lambda tmp: tl.randint(5), TypeError, ["randint", "size"]),
    ("randint-float-high", lambda tmp: tl.randint(0, 2.5, (2,)), TypeError, ["randint", "high must be an int", "2.5"]),
    ("rand-like-integers", lambda tmp: tl.rand_like(ids(1, 2)), TypeError, ["rand_like", "floating-point", "int64"]),
    ("zeros-like-array", lambda tmp: tl.zeros_like(np.ones(2)),
     TypeError, ["zeros_like", "expected a Tensor", "ndarray"]),
    ("cat-dim-and-axis", lambda tmp: tl.cat([w(2), w(2)], 1, axis=0), TypeError, ["cat", "both dim=1 and axis=0"]),
    ("manual-seed-float", lambda tmp: tl.manual_seed(1.5), TypeError, ["manual_seed", "seed must be an int", "1.5"]),
    ("manual-seed-too-big", lambda tmp: tl.manual_seed(2**64), ValueError, ["manual_seed", "2**64"]),
    ("rng-state-not-a-state", lambda tmp: tl.set_rng_state([1, 2]), ValueError, ["set_state", "PCG64", "list"]),
    ("generator-on-gpu", lambda tmp: tl.Generator("cuda"), ValueError, ["Generator", "'cpu'", "'cuda'"]),
    ("init-an-array", lambda tmp: nn.init.normal_(np.zeros(3)), TypeError, ["normal_", "expected a Tensor", "ndarray"]),
    ("init-uniform-integers", lambda tmp: nn.init.uniform_(ids(1, 2)),
     TypeError, ["uniform_", "floating-point", "int64"]),
    ("init-uniform-reversed", lambda tmp: nn.init.uniform_(w(2), 1.0, 0.0), ValueError, ["uniform_", "a=1.0", "b=0.0"]),
    ("init-negative-std", lambda tmp: nn.init.normal_(w(2), std=-1), ValueError, ["normal_", "std", "-1"]),
    ("init-xavier-1d", lambda tmp: nn.init.xavier_uniform_(w(3)), ValueError, ["fewer than 2 dimensions", "(3,)"]),
    ("init-kaiming-mode", lambda tmp: nn.init.kaiming_normal_(w(3, 3), mode="fan"),
     ValueError, ["kaiming_normal_", "'fan_in' or 'fan_out'", "'fan'"]),
    ("init-unknown-gain", lambda tmp: nn.init.calculate_gain("gelu"),
     ValueError, ["calculate_gain", "unsupported nonlinearity 'gelu'", "leaky_relu"]),
    ("init-gain-bad-slope", lambda tmp: nn.init.calculate_gain("leaky_relu", "0.2"),
     ValueError, ["calculate_gain", "negative_slope '0.2'"]),
    ("init-trunc-empty-window", lambda tmp: nn.init.trunc_normal_(w(3), a=1, b=0),
     ValueError, ["trunc_normal_", "a < b", "a=1 and b=0"]),
    ("init-eye-3d", lambda tmp: nn.init.eye_(w(2, 2, 2)), ValueError, ["eye_", "2 dimensions", "(2, 2, 2)"]),
    ("clip-norm-type-negative", lambda tmp: nn.utils.clip_grad_norm_([w(2)], 1.0, norm_type=-1),
     ValueError, ["clip_grad_norm_", "norm_type", "-1"]),
    ("clip-norm-type-string", lambda tmp: nn.utils.clip_grad_norm_([w(2)], 1.0, norm_type="two"),
     TypeError, ["clip_grad_norm_", "norm_type must be a number", "'two'"]),
    ("clip-arrays-not-tensors", lambda tmp: nn.utils.clip_grad_norm_([np.ones(2)], 1.0),
     TypeError, ["clip_grad_norm_", "expected Tensors", "ndarray"]),
    ("clip-value-negative", lambda tmp: nn.utils.clip_grad_value_([w(2)], -0.5),
     ValueError, ["clip_grad_value_", "clip_value", "-0.5"]),
    ("vector-too-short", lambda tmp: nn.utils.vector_to_parameters(w(3), [w(2, 2)]),
     ValueError, ["vector_to_parameters", "(3,)", "4 parameter values"]),
    ("vector-of-nothing", lambda tmp: nn.utils.parameters_to_vector([]), ValueError, ["parameters_to_vector", "no"]),
    ("unflatten-size-not-a-tuple", lambda tmp: nn.Unflatten(1, 3), TypeError, ["Unflatten", "unflattened_size", "3"]),
    ("unflatten-dim-out-of-range", lambda tmp: nn.Unflatten(3, (2, 2))(w(2, 4)),
     ValueError, ["Unflatten", "dim 3", "(2, 4)"]),
    ("unflatten-sizes-do-not-fit", lambda tmp: nn.Unflatten(1, (2, 2))(w(2, 6)),
     ValueError, ["Unflatten", "(2, 2)", "size of dim 1 (6)"]),
    ("module-to-integers", lambda tmp: nn.Linear(2, 2).to(np.int64),
     TypeError, ["Linear.to", "floating point", "int64"]),
    ("module-to-cuda", lambda tmp: nn.Linear(2, 2).to("cuda"), TypeError, ["Linear.to", "dtype", "'cuda'"]),
    ("loss-unknown-reduction", lambda tmp: nn.MSELoss(reduction="avg"), ValueError, ["MSELoss", "reduction", "'avg'"]),
    ("loss-weight-an-array", lambda tmp: nn.BCELoss(weight=np.ones(3)),
     TypeError, ["BCELoss", "weight must be a Tensor or None", "ndarray"]),
    ("l1-shapes-differ", lambda tmp: F.l1_loss(w(2, 3), w(3, 2)), ValueError, ["l1_loss", "(2, 3)", "(3, 2)"]),
    ("leaky-relu-of-an-array", lambda tmp: F.leaky_relu(np.ones(2)),
     TypeError, ["leaky_relu", "expected a Tensor", "ndarray"]),
    ("nll-float-targets", lambda tmp: F.nll_loss(w(4, 5), np.zeros(4)),
     TypeError, ["nll_loss", "integer class indices"]),
    ("nll-target-shape", lambda tmp: F.nll_loss(w(4, 5), ids(0, 1, 2, 3, 4)),
     ValueError, ["nll_loss", "(4, 5)", "target of shape (4,)", "got (5,)"]),
    ("nll-target-out-of-range", lambda tmp: F.nll_loss(w(4, 5), ids(0, 1, 7, 3)),
     IndexError, ["nll_loss", "target 7", "5 classes"]),
    ("nll-weight-shape", lambda tmp: F.nll_loss(w(4, 5), ids(0, 1, 2, 3), weight=w(4)),
     ValueError, ["nll_loss", "weight", "(5,)", "(4,)"]),
    ("bce-of-logits", lambda tmp: F.binary_cross_entropy(w(2) * 3.0, np.ones(2)),
     ValueError, ["binary_cross_entropy", "between 0 and 1", "with_logits"]),
    ("bce-weight-shape", lambda tmp: F.binary_cross_entropy(w(2, 4) * 0.5, np.ones((2, 4)), weight=w(3)),
     ValueError, ["binary_cross_entropy", "(3,)", "(2, 4)"]),
    ("bce-logits-pos-weight-array", lambda tmp: F.binary_cross_entropy_with_logits(w(2), np.ones(2), pos_weight=[2.0]),
     TypeError, ["binary_cross_entropy_with_logits", "pos_weight must be a Tensor", "list"]),
    ("rmsprop-negative-alpha", lambda tmp: optim.RMSprop([w(2)], alpha=-0.1),
     ValueError, ["RMSprop", "alpha", ">= 0", "-0.1"]),
    ("rmsprop-lr-string", lambda tmp: optim.RMSprop([w(2)], lr="0.1"), TypeError, ["RMSprop", "lr must be a number"]),
    ("adagrad-negative-lr-decay", lambda tmp: optim.Adagrad([w(2)], lr_decay=-1.0),
     ValueError, ["Adagrad", "lr_decay", "-1.0"]),
    ("schedule-given-a-model", lambda tmp: lr_scheduler.StepLR(nn.Linear(2, 2), 3),
     TypeError, ["StepLR", "Linear is not an Optimizer"]),
    ("schedule-float-milestones", lambda tmp: lr_scheduler.MultiStepLR(sgd(), [2.5]),
     TypeError, ["MultiStepLR", "milestones must be integers", "2.5"]),
    ("schedule-zero-t-max", lambda tmp: lr_scheduler.CosineAnnealingLR(sgd(), 0),
     ValueError, ["CosineAnnealingLR", "T_max", "positive integer", "0"]),
    ("schedule-string-gamma", lambda tmp: lr_scheduler.ExponentialLR(sgd(), "0.9"),
     TypeError, ["ExponentialLR", "gamma", "finite number", "'0.9'"]),
    ("schedule-linear-zero-start", lambda tmp: lr_scheduler.LinearLR(sgd(), start_factor=0.0),
     ValueError, ["LinearLR", "start_factor", "(0, 1]", "0.0"]),
    ("schedule-lambdas-per-group", lambda tmp: lr_scheduler.LambdaLR(sgd(), [lambda s: 1.0, lambda s: 0.5]),
     ValueError, ["LambdaLR", "expected 1 lr_lambdas", "got 2"]),
    ("schedule-lambda-not-callable", lambda tmp: lr_scheduler.LambdaLR(sgd(), 0.5),
     TypeError, ["LambdaLR", "lr_lambda must be a function", "0.5"]),
    ("one-cycle-without-length", lambda tmp: lr_scheduler.OneCycleLR(sgd(), 0.1),
     ValueError, ["OneCycleLR", "total_steps OR (epochs AND steps_per_epoch)"]),
    ("one-cycle-past-the-end", lambda tmp: [s.step() for s in [lr_scheduler.OneCycleLR(sgd(), 0.1, 2)] for _ in "abc"],
     ValueError, ["OneCycleLR", "tried to step 3 times", "total steps is 2"]),
    ("one-cycle-momentum-of-adagrad", lambda tmp: lr_scheduler.OneCycleLR(optim.Adagrad([w(2)]), 0.1, 10),
     ValueError, ["OneCycleLR", "momentum or betas", "Adagrad", "cycle_momentum=False"]),
    ("one-cycle-integer-pct-start", lambda tmp: lr_scheduler.OneCycleLR(sgd(), 0.1, 10, pct_start=1),
     ValueError, ["OneCycleLR", "pct_start must be a float", "1"]),
    ("dataset-of-arrays", lambda tmp: TensorDataset(np.ones(3)),
     TypeError, ["TensorDataset", "argument 0", "ndarray", "from_numpy"]),
    ("dataset-sizes-differ", lambda tmp: TensorDataset(w(3), w(4)),
     ValueError, ["TensorDataset", "size mismatch", "(3,)", "(4,)"]),
    ("dataset-of-nothing", lambda tmp: TensorDataset(), ValueError, ["TensorDataset", "at least one tensor"]),
    ("loader-batch-size-zero", lambda tmp: DataLoader(TensorDataset(w(3)), batch_size=0),
     ValueError, ["DataLoader", "batch_size", "positive integer", "0"]),
    ("loader-of-an-iterator", lambda tmp: DataLoader(iter([1, 2])),
     TypeError, ["DataLoader", "__getitem__ and __len__", "list_iterator"]),
    ("collate-objects", lambda tmp: default_collate([object(), object()]),
     TypeError, ["default_collate", "found object"]),
    ("collate-ragged-samples", lambda tmp: default_collate([[1, 2], [3]]),
     RuntimeError, ["default_collate", "equal size"]),
    ("split-lengths-do-not-add-up", lambda tmp: random_split(TensorDataset(w(7)), [2, 3]),
     ValueError, ["random_split", "sum to 5", "has 7 samples"]),
    ("split-negative-length", lambda tmp: random_split(TensorDataset(w(7)), [-1, 8]),
     ValueError, ["random_split", "non-negative", "-1"]),
    # ---- gradient checks ----------------------------------------------------------------------------------------
    ("gradcheck-float32", lambda tmp: tl.gradcheck(lambda a: a.sum(), w(2)),
     TypeError, ["gradcheck", "input 0", "float32", "float64"]),
    ("gradcheck-nothing-requires-grad", lambda tmp: tl.gradcheck(lambda a: a.sum(), Tensor([1.0], dtype=np.float64)),
     ValueError, ["gradcheck", "no input requires grad"]),
    ("gradcheck-array-input", lambda tmp: tl.gradcheck(lambda a: a.sum(), np.ones(2)),
     TypeError, ["gradcheck", "input 0", "ndarray", "not a Tensor"]),
    # ---- data files ------------------------------------------------------------------------------------------------
    ("idx-bad-magic", lambda tmp: read_idx(write(tmp / "x.idx", b"\x01\x02\x03\x04" + bytes(10))),
     ValueError, ["x.idx", "bad IDX magic number 01020304", "00 00"]),
    ("idx-truncated",
     lambda tmp: read_idx(write(tmp / "x.idx", b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + b"\x01")),
     ValueError, ["x.idx", "(3,)", "need 3 bytes", "holds 1", "truncated"]),
    ("idx-gz-name-not-gzip", lambda tmp: read_idx(write(tmp / "x.idx.gz", b"\x00\x00\x08\x01")),
     ValueError, ["x.idx.gz", "not a gzip file"]),
    ("idx-corrupt-gzip", lambda tmp: read_idx(write(tmp / "x.idx.gz", gzip.compress(bytes(100))[:20])),
     ValueError, ["x.idx.gz", "corrupt or truncated gzip"]),
    ("mnist-missing-without-download", lambda tmp: load_mnist(tmp / "absent", download=False),
     FileNotFoundError, ["mnist", "not found", "absent", "download=False", "TINYGRAD_LITE_DATA"]),
    # ---- core (beyond tests/test_core_errors.py) ---------------------------------------------------------------------
    ("randn-negative-size", lambda tmp: Tensor.randn(2, -3), ValueError, ["randn", "negative", "(2, -3)"]),
    ("requires-grad-on-integers", lambda tmp: ids(1, 2).requires_grad_(),
     TypeError, ["requires_grad_", "floating-point", "int64"]),
    ("len-of-0d", lambda tmp: len(w()), TypeError, ["len()", "0-d"]),
    ("truth-of-many-values", lambda tmp: bool(w(2)), ValueError, ["truth value", "(2,)", "ambiguous"]),
    ("backward-twice", lambda tmp: twice_backward(), RuntimeError, ["second time", "retain_graph=True"]),
]


@pytest.mark.parametrize("call, exc, fragments", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_misuse_gives_a_clear_error(call: Thunk, exc: type[Exception], fragments: list[str], tmp_path: Path):
    with pytest.raises(exc) as info:
        call(tmp_path)
    message = str(info.value)
    missing = [f for f in fragments if f not in message]
    assert not missing, f"message {message!r} lacks {missing}"


def test_ids_are_unique_and_the_table_is_long():
    names = [c[0] for c in CASES]
    assert len(set(names)) == len(names) >= 40


def test_errors_are_raised_by_the_library_not_inside_numpy(tmp_path: Path):
    """The innermost frame is our code, where the mistake was caught, not a numpy internal."""
    for name, call, _, _ in CASES:
        with pytest.raises(Exception) as info:  # noqa: B017 - every row raises; we look at where
            call(tmp_path)
        tb = info.value.__traceback__
        while tb.tb_next is not None:
            tb = tb.tb_next
        where = tb.tb_frame.f_code.co_filename
        assert "tinygrad_lite" in where or f"models{Path('/')}" in where.replace("\\", "/"), (name, where)
