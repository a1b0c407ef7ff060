"""The speed settings: splitting work across threads, OpenBLAS's thread count, and the ops that use them."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_lite
import tinygrad_lite.nn.functional as F
from tinygrad_lite import Tensor, gradcheck, kernels, perf


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 200), min_items=st.integers(1, 50), threads=st.integers(1, 4))
def test_split_across_cores_covers_every_item_once(n, min_items, threads):
    before = perf.get_num_threads()
    perf.set_num_threads(threads)
    try:
        seen = np.zeros(n, dtype=int)
        lock = threading.Lock()

        def work(part: slice) -> None:
            with lock:
                seen[part] += 1

        perf.split_across_cores(work, n, min_items=min_items)
        assert np.all(seen == 1)
    finally:
        perf.set_num_threads(before)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 300), block=st.integers(1, 64))
def test_split_in_blocks_gives_equal_parts(n, block):
    parts = []
    perf.split_in_blocks(parts.append, n, block=block)
    parts.sort(key=lambda p: p.start)
    assert sum(p.stop - p.start for p in parts) == n
    assert all(a.stop == b.start for a, b in zip(parts, parts[1:]))
    sizes = {p.stop - p.start for p in parts[:-1]}
    assert len(sizes) <= 1 and all(0 < p.stop - p.start <= block for p in parts)


def test_nested_split_runs_serially_and_errors_propagate(two_threads):
    inner_parts = []

    def outer(part: slice) -> None:
        perf.split_across_cores(lambda p: inner_parts.append(p), 10)

    perf.split_across_cores(outer, 10)
    assert sorted((p.start, p.stop) for p in inner_parts) == [(0, 10), (0, 10)]

    def failing(part: slice) -> None:
        if part.start > 0:
            raise ValueError("the second part fails")

    with pytest.raises(ValueError, match="second part"):
        perf.split_across_cores(failing, 10)


def test_blas_threads_restores_the_count():
    before = perf.blas_num_threads()
    if before is None:
        pytest.skip("numpy does not use OpenBLAS here; there is no thread count to set")
    with perf.blas_threads(1):
        assert perf.blas_num_threads() == 1
        np.ones((64, 64)) @ np.ones((64, 64))
    assert perf.blas_num_threads() == before
    with pytest.raises(RuntimeError), perf.blas_threads(1):
        raise RuntimeError("the block fails")
    assert perf.blas_num_threads() == before


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_num_threads_rejects_bad_counts(bad):
    with pytest.raises(ValueError, match="set_num_threads: expected a positive integer"):
        perf.set_num_threads(bad)


def test_thread_count_follows_the_environment(monkeypatch):
    for name in perf._THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    assert perf._default_num_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "4,2")  # OpenMP's nested form: the outer level counts
    assert perf._default_num_threads() == 4
    monkeypatch.setenv("OMP_NUM_THREADS", "auto")  # not ours to judge: the next variable decides
    assert perf._default_num_threads() == 3
    monkeypatch.setenv("TINYGRAD_LITE_NUM_THREADS", "1")
    assert perf._default_num_threads() == 1
    monkeypatch.setenv("TINYGRAD_LITE_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="TINYGRAD_LITE_NUM_THREADS must be a positive integer, got 'many'"):
        perf._default_num_threads()


@pytest.fixture
def threads_in_use(two_threads):
    """Products split across our Python threads: the "engine" policy without the compiled loops' team
    (tests/test_kernels.py tests the team's products)."""
    with perf.using_products("engine"), kernels.use_compiled(False):
        yield


@pytest.mark.parametrize("shape", [(300, 200, 100), (7, 3, 5), (2000, 64, 40), (40, 64, 2000), (1, 768, 3072),
                                   (2, 768, 2304), (1, 64, 100)])
def test_split_matmul_equals_numpy(threads_in_use, shape, monkeypatch):
    m, k, n = shape
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    splits = []
    split = perf._split
    monkeypatch.setattr(perf, "_split", lambda work, n, min_items: splits.append(n) or split(work, n, min_items))
    np.testing.assert_allclose(perf.matmul(a, b), a @ b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(perf.matmul(b.T, a.T), b.T @ a.T, rtol=1e-12, atol=1e-12)  # transposed views
    big = min(m, n) > perf._FEW and m * k * n >= perf._MATMUL_MIN_FLOPS  # a few rows or columns: OpenBLAS's
    assert splits == ([max(m, n)] * 2 if big else [])  # along the longer side: rows of a or columns of b


@pytest.mark.parametrize("policy", ["blas", "engine"])
@pytest.mark.parametrize("rows", [1, 2, 16, 32, 33])
def test_a_few_rows_times_a_transposed_matrix(two_threads, policy, rows, monkeypatch):
    """x Wᵀ with 2 to _WEIGHT_FIRST_MAX_ROWS rows runs as (W xᵀ)ᵀ on OpenBLAS's threads: numpy's values,
    row-major, no split."""
    rng = np.random.default_rng(4)
    x, w, bias = rng.standard_normal((rows, 768)), rng.standard_normal((768, 768)), rng.standard_normal(768)
    assert w.size >= perf._WEIGHT_FIRST_MIN_SIZE
    splits = []
    split = perf._split
    monkeypatch.setattr(perf, "_split", lambda work, n, min_items: splits.append(n) or split(work, n, min_items))
    weight_first = 1 < rows <= perf._WEIGHT_FIRST_MAX_ROWS
    with perf.using_products(policy), kernels.use_compiled(False):  # (the team's products: test_kernels.py)
        out = perf.matmul(x, w.T, bias)
    np.testing.assert_allclose(out, x @ w.T + bias, rtol=1e-12, atol=1e-12)
    assert out.flags.c_contiguous
    assert splits == ([768] if policy == "engine" and not weight_first and rows > perf._FEW else [])  # by columns
    small = rng.standard_normal((100, 768))  # below _WEIGHT_FIRST_MIN_SIZE: as numpy writes it
    assert small.size < perf._WEIGHT_FIRST_MIN_SIZE
    np.testing.assert_allclose(perf.matmul(x, small.T), x @ small.T, rtol=1e-12, atol=1e-12)


def test_products_use_our_threads_once_elementwise_work_was_split(two_threads, monkeypatch):
    """Without the compiled loops: once our Python threads shared elementwise work. With them, once the team split
    a job (GELU, attention): from then on the team's workers are awake, and OpenBLAS's would fight them."""
    monkeypatch.setattr(perf, "_elementwise_shared", False)
    monkeypatch.setattr(kernels, "team_jobs", lambda: 0)
    assert perf.product_policy() == "blas"
    monkeypatch.setattr(kernels, "team_jobs", lambda: 1)
    assert perf.product_policy() == "engine"
    monkeypatch.undo()
    with kernels.use_compiled(False):
        _products_follow_elementwise_splits(monkeypatch)


def _products_follow_elementwise_splits(monkeypatch) -> None:
    monkeypatch.setattr(kernels, "team_jobs", lambda: 0)
    monkeypatch.setattr(perf, "_elementwise_shared", False)
    splits = []
    split = perf._split
    monkeypatch.setattr(perf, "_split", lambda work, n, min_items: splits.append(n) or split(work, n, min_items))
    a = np.ones((400, 200))
    perf.matmul(a, a.T)
    assert splits == [] and perf.product_policy() == "blas"  # OpenBLAS's own threads, as hand-written numpy
    perf.split_across_cores(lambda part: None, 10)
    perf.matmul(a, a.T)
    assert splits == [10, 400] and perf.product_policy() == "engine"
    with perf.using_products("blas"):  # a block can pin the policy
        perf.matmul(a, a.T)
    assert splits == [10, 400] and perf.product_policy() == "engine"
    with pytest.raises(ValueError, match="policy must be one of"):
        with perf.using_products("fast"):
            pass


def test_large_linear_and_matmul_gradients_on_two_threads(threads_in_use):
    """Big enough to take the split path: gradients still match finite differences."""
    rng = np.random.default_rng(1)
    x = Tensor(rng.standard_normal((300, 120)), requires_grad=True, dtype=np.float64)
    w = Tensor(rng.standard_normal((130, 120)), requires_grad=True, dtype=np.float64)
    b = Tensor(rng.standard_normal(130), requires_grad=True, dtype=np.float64)
    assert 300 * 120 * 130 >= perf._MATMUL_MIN_FLOPS
    assert gradcheck(lambda x, w, b: F.linear(x, w, b), x, w, b, fast=True)
    assert gradcheck(lambda x, w: x @ w.T, x, w, fast=True)


def test_gelu_in_many_blocks_matches_the_formula(two_threads):
    rng = np.random.default_rng(2)
    x = Tensor(rng.standard_normal((1100, 500)) * 3, requires_grad=True, dtype=np.float64)
    assert x.numel() > 2 * perf._MIN_ELEMENTS_PER_THREAD and x.numel() > 4 * (1 << 17)  # blocks on both threads
    y = x.gelu(approximate="tanh")
    d = x.data
    inner = np.sqrt(2 / np.pi) * (d + 0.044715 * d**3)
    np.testing.assert_allclose(y.data, 0.5 * d * (1 + np.tanh(inner)), rtol=1e-12, atol=1e-12)
    upstream = rng.standard_normal(x.shape)
    y.backward(upstream)
    t = np.tanh(inner)
    slope = 0.5 * (1 + t) + 0.5 * d * (1 - t**2) * np.sqrt(2 / np.pi) * (1 + 3 * 0.044715 * d**2)
    np.testing.assert_allclose(x.grad.data, upstream * slope, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("policy", ["blas", "engine"])
def test_matmuls_computes_each_listed_product(two_threads, policy):
    rng = np.random.default_rng(3)
    a, b, c = rng.standard_normal((50, 30)), rng.standard_normal((30, 20)), rng.standard_normal((20, 40))
    with perf.using_products(policy):
        first, skipped, second = perf.matmuls((a, b), None, (b, c))
    assert skipped is None
    np.testing.assert_allclose(first, a @ b, rtol=1e-12)
    np.testing.assert_allclose(second, b @ c, rtol=1e-12)
    assert perf.matmuls(None, None) == [None, None]


@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_split_by_rows_matches_the_formula(two_threads, affine, monkeypatch):
    """The numpy layer norm's rows split over Python threads (the compiled one splits over the team:
    test_kernels.py)."""
    monkeypatch.setattr(kernels, "_switched_on", False)
    monkeypatch.setattr(perf, "_MIN_ELEMENTS_PER_THREAD", 7 * 100)  # the two-thread path for 600 rows
    splits = []
    split = perf._split
    monkeypatch.setattr(perf, "_split", lambda work, n, min_items: splits.append(split(work, n, min_items)))
    rng = np.random.default_rng(4)
    x = Tensor(rng.standard_normal((600, 7)) * 2 + 1, requires_grad=True, dtype=np.float64)
    w = Tensor(rng.standard_normal(7), requires_grad=True, dtype=np.float64) if affine else None
    b = Tensor(rng.standard_normal(7), requires_grad=True, dtype=np.float64) if affine else None
    out = F.layer_norm(x, 7, w, b)
    mean, var = x.data.mean(axis=1, keepdims=True), x.data.var(axis=1, keepdims=True)
    expected = (x.data - mean) / np.sqrt(var + 1e-5)
    if affine:
        expected = expected * w.data + b.data
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    inputs = (x, w, b) if affine else (x,)
    assert gradcheck(lambda *t: F.layer_norm(t[0], 7, *t[1:]), *inputs, fast=True)
    assert splits and all(splits)  # every pass ran on two threads


def test_small_work_stays_on_one_thread(two_threads, monkeypatch):
    """A handoff costs more than a small layer norm or GELU saves: they run as one part."""
    splits = []
    split = perf._split
    monkeypatch.setattr(perf, "_split", lambda work, n, min_items: splits.append(split(work, n, min_items)))
    x = Tensor(np.ones((768, 128), dtype=np.float32), requires_grad=True)
    F.layer_norm(x, 128).gelu(approximate="tanh").sum().backward()
    assert splits and not any(splits)


def test_a_forked_child_can_still_split_work(two_threads):
    import multiprocessing

    perf.split_across_cores(lambda part: None, 10)  # the parent's pool exists now
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        assert pool.apply_async(_split_in_child).get(timeout=30) == 10


def _split_in_child() -> int:
    seen = []
    perf.split_across_cores(lambda part: seen.append(part.stop - part.start), 10)
    return sum(seen)


def test_profile_ops_charges_each_op_its_own_time():
    from tinygrad_lite.profiler import profile_ops

    x = Tensor(np.ones((64, 64), dtype=np.float32), requires_grad=True)
    opt, adam = tinygrad_lite.optim.SGD([x], lr=0.1), tinygrad_lite.optim.AdamW([x])
    with profile_ops() as times:
        (x @ x).tanh().sum().backward()
        opt.step()
        adam.step()  # its own step around Optimizer's: one row, one call
    assert times.calls[("matmul", "forward")] == 3  # the forward, and the two products of its backward
    assert times.calls[("matmul", "backward")] == 1
    assert times.calls[("SGD (optimizer)", "step")] == times.calls[("AdamW (optimizer)", "step")] == 1
    assert ("Optimizer (optimizer)", "step") not in times.calls
    total = sum(times.seconds.values())
    table = times.format(total_seconds=total * 1.25)
    assert table.splitlines()[0].split()[:3] == ["op", "calls", "forward"] and "(the rest" in table
    assert Tensor.__matmul__(x, x)._ctx.__class__.forward.__name__ == "forward"  # unpatched afterwards
