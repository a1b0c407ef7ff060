"""Attention variants: score gradients, masks and causality, the strict-causal first row, the registry, the sweep."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import load_example
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import arrays, check_grad

import models.attention_variants as av
from models.attention_variants import MASKS, SCORES, VariantAttention, attention, variant
from models.gpt import GPT, GPTConfig
from tinygrad_lite import Tensor, cli
from tinygrad_lite.nn import functional as F

experiments = load_example("attention_experiments")

CAUSAL_MASKS = ("causal", "strict_causal")
LEAKY_MASKS = ("none", "anti_causal")


@st.composite
def qkv_shapes(draw: st.DrawFn) -> tuple[int, int, int, int]:
    """(B, nh, T, hs), small enough for a full finite-difference Jacobian."""
    return draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 4)), draw(st.integers(1, 3))


def score_params(name: str, n_head: int, head_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random float64 values for the parameters a score declares."""
    return {p: rng.uniform(-0.5, 0.5, shape(n_head, head_size)) for p, shape in SCORES[name].params.items()}


def tensor64(a: np.ndarray) -> Tensor:
    return Tensor(a, requires_grad=True, dtype=np.float64)


def tiny(**overrides) -> GPTConfig:
    return GPTConfig(**{**dict(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16), **overrides})


# ---- the score functions ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(SCORES))
@settings(max_examples=20)
@given(shape=qkv_shapes(), data=st.data())
def test_score_gradcheck(name, shape, data):
    """Every score's gradient w.r.t. q, k and its own parameters matches finite differences (float64).
    Values stay away from 0 so that cosine's normalisation of a 1-channel vector is not at its kink."""
    q, k = data.draw(arrays(shape, "nonzero")), data.draw(arrays(shape, "nonzero"))
    params = score_params(name, shape[1], shape[3], np.random.default_rng(0))
    names = list(params)
    fn = SCORES[name].fn

    def scores(q, k, *ps):
        out = fn(q, k, **dict(zip(names, ps)))
        assert out.shape == shape[:3] + (shape[2],)
        return out

    check_grad(scores, q, k, *params.values())


def numpy_scores(name: str, q: np.ndarray, k: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
    """The documented formulas, straight in numpy."""
    hs = q.shape[-1]
    qk = np.einsum("bhtd,bhsd->bhts", q, k)
    if name == "dot":
        return qk / math.sqrt(hs)
    if name == "dot_unscaled":
        return qk
    if name == "squared_dot":
        return (qk / math.sqrt(hs)) ** 2
    if name == "neg_dot":
        return -qk / math.sqrt(hs)
    if name == "cosine":
        qn = q / np.sqrt((q**2).sum(-1, keepdims=True) + 1e-6)
        kn = k / np.sqrt((k**2).sum(-1, keepdims=True) + 1e-6)
        scale = np.exp(params["log_scale"])[:, None, None] * math.sqrt(hs)
        return np.einsum("bhtd,bhsd->bhts", qn, kn) * scale
    if name == "l2":
        return -((q[:, :, :, None, :] - k[:, :, None, :, :]) ** 2).sum(-1) / (2 * math.sqrt(hs))
    raise AssertionError(f"no numpy formula for the new score {name!r}: add one here")


@pytest.mark.parametrize("name", list(SCORES))
def test_score_matches_its_formula(name):
    rng = np.random.default_rng(1)
    q, k = rng.standard_normal((2, 3, 5, 4)), rng.standard_normal((2, 3, 5, 4))
    params = score_params(name, 3, 4, rng)
    got = SCORES[name].fn(tensor64(q), tensor64(k), **{n: tensor64(p) for n, p in params.items()})
    np.testing.assert_allclose(got.data, numpy_scores(name, q, k, params), rtol=1e-12, atol=1e-12)


def test_squared_dot_drops_the_sign():
    q = Tensor(np.array([[[[1.0, 2.0]]]]), dtype=np.float64)
    k = Tensor(np.array([[[[0.5, -1.0]]]]), dtype=np.float64)
    assert SCORES["squared_dot"].fn(q, k).item() == SCORES["squared_dot"].fn(q, -k).item() > 0


# ---- masks and the attention built from them -------------------------------------------------------------------

def test_masks_are_the_documented_triangles():
    i, j = np.indices((5, 5))
    np.testing.assert_array_equal(MASKS["causal"](5), j <= i)
    np.testing.assert_array_equal(MASKS["anti_causal"](5), j >= i)
    np.testing.assert_array_equal(MASKS["none"](5), np.ones((5, 5), bool))
    np.testing.assert_array_equal(MASKS["strict_causal"](5), j < i)
    assert not MASKS["causal"](5).flags.writeable  # cached: nobody may edit the shared copy


@pytest.mark.parametrize("mask", list(MASKS))
@settings(max_examples=15)
@given(shape=qkv_shapes(), data=st.data())
def test_attention_gradcheck_every_mask(mask, shape, data):
    """The masked softmax and the weighted sum, strict_causal's empty first row included."""
    q, k, v = (data.draw(arrays(shape)) for _ in range(3))
    check_grad(lambda q, k, v: attention(q, k, v, "dot", mask), q, k, v)


@pytest.mark.parametrize("name", list(SCORES))
@pytest.mark.parametrize("mask", MASKS)
@settings(max_examples=10)
@given(shape=qkv_shapes(), t=st.integers(0, 3), data=st.data())
def test_attention_causality_or_its_leak(name, mask, shape, t, data):
    """Changing keys/values after position t never changes outputs up to t under causal masks;
    under `none` and `anti_causal` it does (this is the leak the sweep measures)."""
    B, nh, T, hs = shape
    t = min(t, T - 1)
    q, k, v = (data.draw(arrays(shape, "nonzero")) for _ in range(3))
    params = {n: Tensor(p, dtype=np.float64) for n, p in score_params(name, nh, hs, np.random.default_rng(2)).items()}
    k2, v2 = k.copy(), v.copy()
    k2[:, :, t + 1:] += 1.0
    v2[:, :, t + 1:] -= 2.0
    if not (mask in CAUSAL_MASKS or t == T - 1):
        # q and k scaled down keep every weight far from underflow (squared_dot's scores reach hundreds
        # otherwise), so that the change is large enough to see
        q, k, k2 = q / (10 * np.abs(q).max()), k / (10 * np.abs(k).max()), k2 / (10 * np.abs(k).max())
    out = attention(*(Tensor(a, dtype=np.float64) for a in (q, k, v)), name, mask, params).data
    out2 = attention(*(Tensor(a, dtype=np.float64) for a in (q, k2, v2)), name, mask, params).data
    if mask in CAUSAL_MASKS or t == T - 1:
        np.testing.assert_allclose(out2[:, :, : t + 1], out[:, :, : t + 1], rtol=0, atol=1e-12)
    else:
        assert not np.allclose(out2[:, :, t], out[:, :, t])  # position t (a non-last one) sees the change


@pytest.mark.parametrize("name", list(SCORES))
def test_strict_causal_first_position_attends_nothing(name):
    """Row 0 of strict_causal has no key to attend: its output is exactly 0 and no NaN appears either way."""
    rng = np.random.default_rng(3)
    q, k, v = (tensor64(rng.standard_normal((2, 2, 4, 3))) for _ in range(3))
    params = {n: tensor64(p) for n, p in score_params(name, 2, 3, rng).items()}
    out = attention(q, k, v, name, "strict_causal", params)
    assert np.all(out.data[:, :, 0] == 0.0) and np.all(np.isfinite(out.data))
    (out * out).sum().backward()
    for t in (q, k, v, *params.values()):
        assert np.all(np.isfinite(t.grad.data))
    one = attention(q[:, :, :1], k[:, :, :1], v[:, :, :1], name, "strict_causal", params)  # T = 1: all empty
    assert np.all(one.data == 0.0)


def test_dropout_on_the_registry_path_matches_the_fused_op():
    """Same rng seed, same dropout mask: the registry's (dot, causal) is the fused op, dropout included."""
    rng = np.random.default_rng(4)
    q, k, v = (rng.standard_normal((2, 2, 5, 4)) for _ in range(3))
    fused = F.scaled_dot_product_attention(*map(tensor64, (q, k, v)), is_causal=True, dropout_p=0.3, rng=7)
    ours = attention(*map(tensor64, (q, k, v)), "dot", "causal", dropout_p=0.3, rng=7)
    np.testing.assert_allclose(ours.data, fused.data, rtol=1e-12, atol=1e-12)


def test_default_path_equals_the_registry_dot_causal_path():
    """Forward and gradients of the fused default equal VariantAttention('dot', 'causal'), alone and in the GPT."""
    rng = np.random.default_rng(5)
    arrays_ = [rng.standard_normal((2, 3, 6, 4)) for _ in range(3)]
    fused_in, ours_in = list(map(tensor64, arrays_)), list(map(tensor64, arrays_))
    fused = F.scaled_dot_product_attention(*fused_in, is_causal=True)
    ours = VariantAttention("dot", "causal", n_head=3, head_size=4)(*ours_in)
    np.testing.assert_allclose(ours.data, fused.data, rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(fused.shape)
    fused.backward(Tensor(g, dtype=np.float64))
    ours.backward(Tensor(g, dtype=np.float64))
    for a, b in zip(ours_in, fused_in):
        np.testing.assert_allclose(a.grad.data, b.grad.data, rtol=1e-10, atol=1e-12)

    model = GPT(tiny(), seed=0)
    assert all(block.attn.variant is None for block in model.h)  # the default keeps the fused fast path
    x = Tensor(rng.integers(0, 11, (3, 8)))
    fused_logits = model(x)[0].data
    for block in model.h:
        block.attn.variant = VariantAttention("dot", "causal", n_head=2, head_size=8)
    np.testing.assert_allclose(model(x)[0].data, fused_logits, rtol=1e-5, atol=1e-6)


# ---- in the GPT --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(SCORES))
@pytest.mark.parametrize("mask", MASKS)
def test_gpt_causality_or_its_leak(name, mask):
    """Changing the tokens after position t never changes the logits up to t for the causal masks;
    for `none` and `anti_causal` the logits at t change when token t+1 does (they read their own target)."""
    model = GPT(tiny(), seed=1, attention=variant(name, mask))
    rng = np.random.default_rng(6)
    x = rng.integers(0, 11, (2, 8))
    t = 3
    x2 = x.copy()
    x2[:, t + 1:] = (x[:, t + 1:] + 1 + rng.integers(0, 9, (2, 4))) % 11  # every future token differs
    logits, logits2 = model(Tensor(x))[0].data, model(Tensor(x2))[0].data
    if mask in CAUSAL_MASKS:
        np.testing.assert_allclose(logits2[:, : t + 1], logits[:, : t + 1], rtol=0, atol=1e-6)
    else:
        assert np.abs(logits2[:, t] - logits[:, t]).max() > 1e-4


@pytest.mark.parametrize("name", list(SCORES))
def test_gpt_strict_causal_trains_without_nan(name):
    model = GPT(tiny(), seed=2, attention=variant(name, "strict_causal"))
    rng = np.random.default_rng(7)
    _, loss = model(Tensor(rng.integers(0, 11, (2, 8))), Tensor(rng.integers(0, 11, (2, 8))))
    loss.backward()
    assert np.isfinite(loss.item())
    for pname, p in model.named_parameters():
        assert np.all(np.isfinite(p.grad.data)), pname


def test_cosine_temperature_is_a_learned_undecayed_parameter_of_each_attention():
    model = GPT(tiny(), seed=3, attention=variant("cosine", "causal"))
    params = dict(model.named_parameters())
    assert params["h.0.attn.variant.log_scale"].shape == (2,)  # one temperature per head
    assert np.all(params["h.1.attn.variant.log_scale"].data == 0.0)  # as sharp as `dot` at the start
    rng = np.random.default_rng(8)
    _, loss = model(Tensor(rng.integers(0, 11, (2, 8))), Tensor(rng.integers(0, 11, (2, 8))))
    loss.backward()
    assert np.abs(params["h.0.attn.variant.log_scale"].grad.data).max() > 0
    no_decay = model.configure_optimizers(0.1, 1e-3).param_groups[1]["params"]
    assert any(p is params["h.0.attn.variant.log_scale"] for p in no_decay)
    assert "log_scale" not in "".join(GPT(tiny(), seed=3).state_dict())  # the default model is unchanged


def test_reversed_dot_is_dot_with_the_key_weights_negated():
    """-q·k = q·(-k): flipping W_k (and its bias) turns neg_dot into exactly the dot model."""
    dot_model, neg_model = GPT(tiny(), seed=4), GPT(tiny(), seed=4, attention=variant("neg_dot", "causal"))
    C = 16
    for block in neg_model.h:
        block.attn.c_attn.weight.data[C:2 * C] *= -1
        block.attn.c_attn.bias.data[C:2 * C] *= -1
    x = Tensor(np.random.default_rng(9).integers(0, 11, (2, 8)))
    np.testing.assert_allclose(neg_model(x)[0].data, dot_model(x)[0].data, rtol=1e-5, atol=1e-6)


# ---- the registry ----------------------------------------------------------------------------------------------

def test_unknown_names_are_rejected_with_the_known_ones():
    with pytest.raises(ValueError, match=r"variant: unknown attention score 'dotty'; known scores: dot, "
                                         r"dot_unscaled, squared_dot, neg_dot, cosine, l2"):
        variant("dotty", "causal")
    with pytest.raises(ValueError, match=r"variant: unknown attention mask 'future'; known masks: causal, "
                                         r"anti_causal, none, strict_causal"):
        variant("dot", "future")
    q = Tensor(np.zeros((1, 1, 2, 2)))
    with pytest.raises(ValueError, match="attention: unknown attention mask 'Causal'"):
        attention(q, q, q, "dot", "Causal")
    with pytest.raises(ValueError, match=r"score 'cosine' needs parameters \['log_scale'\], got \[\]"):
        attention(q, q, q, "cosine", "causal")


def test_the_variant_is_injected_not_configured():
    """models/gpt.py does not know the registry; a config of the time when it named the attention loads for
    the default, and names the variant it cannot build."""
    source = Path(__file__).resolve().parent.parent.joinpath("models", "gpt.py").read_text()
    imported = {node.module for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)}
    assert "models.attention_variants" not in imported and "import models.attention_variants" not in source
    config = tiny()
    legacy = {**{k: np.asarray(v) for k, v in config.to_dict().items()}, "score": np.asarray("dot"),
              "mask": np.asarray("causal")}  # as loaded from an older checkpoint
    assert GPTConfig.from_dict(legacy) == config
    with pytest.raises(ValueError, match=r"attention has score 'l2'.*attention=models.attention_variants.variant"):
        GPTConfig.from_dict({**legacy, "score": np.asarray("l2")})
    model = GPT(config, seed=0, attention=variant("l2", "causal")).eval()
    prompt = Tensor(np.zeros((1, 2), dtype=np.int64))
    assert model.generate(prompt, 3, use_cache=False, seed=0).shape == (1, 5)
    with pytest.raises(ValueError, match=r"kv_cache needs the causal attention; this model's attention is "
                                         r"VariantAttention \(generate with use_cache=False\)"):
        model.generate(prompt, 3, seed=0)


def test_a_new_score_and_mask_are_one_function_each(monkeypatch):
    monkeypatch.setattr(av, "SCORES", dict(SCORES))
    monkeypatch.setattr(av, "MASKS", dict(MASKS))

    @av.score("half_dot")
    def half_dot(q, k):
        return av.dot(q, k) * 0.5

    @av.mask("previous_only")
    def previous_only(t):
        return np.eye(t, k=-1, dtype=bool)

    model = GPT(tiny(), seed=5, attention=variant("half_dot", "previous_only"))
    logits, _ = model(Tensor(np.zeros((1, 8), dtype=np.int64)))
    assert logits.shape == (1, 8, 11) and np.all(np.isfinite(logits.data))


# ---- the sweep ----------------------------------------------------------------------------------------------------

def test_sweep_runs_and_reports_leaks_honestly(tmp_path):
    """A tiny sweep on a synthetic text: outputs written; for the causal model the loss at generation time
    equals the training-mask loss, for `none` it does not (and the table says it leaked)."""
    rng = np.random.default_rng(10)
    (tmp_path / "tinyshakespeare").mkdir()
    words = ["to", "be", "or", "not", "that", "is", "the", "question\n"]
    (tmp_path / "tinyshakespeare" / "input.txt").write_text(" ".join(rng.choice(words, 600)), encoding="utf-8")
    out = tmp_path / "out"
    results = experiments.main(["--data-dir", str(tmp_path), "--out", str(out), "--variants", "dot/causal,dot/none",
                                "--steps", "4", "--eval-interval", "2", "--n-layer", "1", "--n-embd", "16",
                                "--block-size", "8", "--batch-size", "4", "--eval-windows", "4",
                                "--final-windows", "6", "--sample-chars", "10"])
    causal, bidirectional = results
    assert causal.steps == [2, 4] and len(causal.val_curve) == 2
    assert causal.generation_loss == pytest.approx(causal.val_loss, rel=1e-5)
    assert bidirectional.generation_loss != pytest.approx(bidirectional.val_loss, rel=1e-5)
    table = (out / "results.md").read_text(encoding="utf-8")
    assert "| `dot/none` |" in table and "(leaked)" in table and "### `dot/causal`" in table
    assert (out / "val_curves.png").stat().st_size > 0 and (out / "results.json").is_file()
    redrawn = experiments.main(["--replot", "--out", str(out), "--plot", str(tmp_path / "again.png")])
    assert [r.__dict__ for r in redrawn] == [r.__dict__ for r in results]  # the saved results, not retrained
    assert (tmp_path / "again.png").stat().st_size > 0


def test_sweep_rejects_unknown_variants_before_training():
    with pytest.raises(cli.UsageError, match="--variants: .*unknown attention score 'dott'"):
        experiments.parse_variants("dot/causal,dott/causal")


def test_replot_without_saved_results_says_how_to_make_them(tmp_path):
    with pytest.raises(cli.UsageError, match=r"--replot: no .*results.json; run the sweep first"):
        experiments.main(["--replot", "--out", str(tmp_path)])
