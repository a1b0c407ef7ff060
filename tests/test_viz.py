"""Graph drawing and shape traces: DOT structure, module clusters, golden files, real rendering, big graphs.

Golden files live in tests/golden/; after an intended change to the drawings, rewrite them with
TINYGRAD_LITE_UPDATE_GOLDEN=1 and read the diff.
"""

from __future__ import annotations

import gc
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from tinygrad_lite import Tensor, viz
from tinygrad_lite.nn import Module, ModuleList, Parameter
from tinygrad_lite.nn.module import _ModuleStack

GOLDEN = Path(__file__).parent / "golden"
NODE = re.compile(r'^\t+(\w+) \[label=(".*?"|<<.*>>|\w+)', re.S | re.M)
EDGE = re.compile(r"^\t+(\w+) -> (\w+)(?: \[label=\"?(.*?)\"?\])?$", re.M)


def nodes(dot) -> dict[str, str]:
    """node id -> label text (the legend left out)."""
    return {i: label.strip('"') for i, label in NODE.findall(dot.source) if i != "legend"}


def edges(dot) -> list[tuple[str, str, str]]:
    return [(a, b, label) for a, b, label in EDGE.findall(dot.source)]


def node_id(dot, text: str) -> str:
    """The one node whose label contains `text`."""
    found = [i for i, label in nodes(dot).items() if text in label]
    assert len(found) == 1, f"{text!r} labels {len(found)} nodes: {nodes(dot)}"
    return found[0]


class Affine(Module):
    """x @ weight + bias, from bare Parameters (independent of nn.Linear)."""

    def __init__(self, n_in: int, n_out: int, seed: int):
        super().__init__()
        self.weight = Parameter(np.random.default_rng(seed).standard_normal((n_in, n_out)).astype(np.float32))
        self.bias = Parameter(np.zeros(n_out, dtype=np.float32))

    def forward(self, x: Tensor) -> Tensor:
        return x @ self.weight + self.bias


class TwoLayer(Module):
    def __init__(self):
        super().__init__()
        self.layers = ModuleList([Affine(4, 8, 0), Affine(8, 3, 1)])

    def forward(self, x: Tensor) -> Tensor:
        return self.layers[1](self.layers[0](x).relu())


def recorded_two_layer():
    model = TwoLayer()
    x = Tensor(np.ones((2, 4), dtype=np.float32), name="x")
    with viz.record(model):
        out = model(x)
    return model, x, out.square().mean()


# ---- small expressions ---------------------------------------------------------------------------------------


def test_expression_nodes_edges_and_labels():
    a = Tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True, name="a")
    b = Tensor(np.ones((3,), dtype=np.float32), requires_grad=True, name="b")
    out = ((a * b).sum(axis=1)).softmax(axis=-1)
    dot = viz.draw_graph(out)
    labels = nodes(dot)
    # two leaves, three ops, one output; the unnamed intermediates are folded into the edges
    assert sorted(labels.values()) == sorted(["{a | (2, 3) float32}", "{b | (3,) float32}", "mul",
                                              "sum(axis=(1,))", "softmax(axis=0)", "{(2,) float32}"])
    mul, total, soft = node_id(dot, "mul"), node_id(dot, "sum"), node_id(dot, "softmax")
    assert set(edges(dot)) == {(node_id(dot, "a |"), mul, ""), (node_id(dot, "b |"), mul, ""),
                               (mul, total, ""),  # mul keeps its first input's shape: not repeated
                               (total, soft, "(2,)"),  # sum changes it: written on the edge
                               (soft, node_id(dot, "{(2,) float32}"), "")}
    assert dot.graph_attr["rankdir"] == "TB"


def test_parallel_edges_merge_and_named_intermediates_get_nodes():
    x = Tensor([1.0, 2.0], requires_grad=True, name="x")
    y = x * x
    y.name = "y"
    dot = viz.draw_graph(y + 1.0, rankdir="LR")
    assert dot.graph_attr["rankdir"] == "LR"
    assert (node_id(dot, "x |"), node_id(dot, "mul"), "×2") in edges(dot)
    assert node_id(dot, "{y | (2,) float32}")
    # without compaction each use is its own edge
    loose = viz.draw_graph(y + 1.0, compact=False)
    assert [e[:2] for e in edges(loose)].count((node_id(loose, "x |"), node_id(loose, "mul"))) == 2


def test_values_and_grads_small_in_full_big_as_statistics():
    small = Tensor([1.5, -2.0], requires_grad=True, name="small")
    big = Tensor(np.arange(100, dtype=np.float32), requires_grad=True, name="big")
    loss = (small.sum() * big.mean())
    loss.backward()
    dot = viz.draw_graph(loss, show_data=True, show_grad=True)
    assert "data [ 1.5, -2. ]" in nodes(dot)[node_id(dot, "small")]
    big_label = nodes(dot)[node_id(dot, "big")]
    assert "data mean 49.5  std 28.9" in big_label and "min 0  max 99" in big_label
    assert "grad mean -0.005" in big_label  # d(loss)/d(big) = sum(small) / 100 everywhere
    assert "grad" not in nodes(viz.draw_graph(loss, show_data=True))[node_id(dot, "small")]


def test_grads_shown_for_every_tensor_that_has_one_and_inputs_without_say_so():
    x = Tensor([1.0, 2.0], requires_grad=True, name="x")
    c = Tensor([3.0, 4.0], name="c")  # a constant: no gradient is computed for it
    loss = (x * c).sum()
    loss.backward()
    dot = viz.draw_graph(loss, show_grad=True)
    assert nodes(dot)[node_id(dot, "x |")].endswith("| grad [3., 4.]}")
    assert nodes(dot)[node_id(dot, "c |")].endswith("| no grad (requires_grad=False)}")
    assert "requires_grad" not in viz.draw_graph(loss, show_data=True).source  # only when grads are asked for


def test_params_names_parameters_as_torchviz_does():
    model, x, loss = recorded_two_layer()
    renamed = {f"model.{n}": p for n, p in model.named_parameters()}
    labels = nodes(viz.draw_graph(model(x), params=renamed)).values()
    assert any(label.startswith("{model.layers.0.weight | (4, 8) float32") for label in labels)
    both = viz.draw_graph(loss, params=renamed, names={"w0": model.layers[0].weight})
    assert "{w0 | (4, 8) float32}" in nodes(both).values()  # names wins over params


def test_arrays_an_op_takes_as_arguments_are_drawn_entering_it():
    from tinygrad_lite.nn import functional as F

    logits = Tensor(np.zeros((3, 4), dtype=np.float32), requires_grad=True, name="logits")
    labels = np.array([0, 3, 1])
    dot = viz.draw_graph(F.cross_entropy(logits, labels), show_data=True)
    targets = node_id(dot, "targets |")
    assert nodes(dot)[targets] == "{targets | (3,) int64 | data [0, 3, 1]}"
    assert (targets, node_id(dot, "crossentropy"), "") in edges(dot)
    assert "{my labels | (3,) int64}" in nodes(viz.draw_graph(F.cross_entropy(logits, labels),
                                                              names={"my labels": Tensor(labels)})).values()


def test_targets_given_to_a_model_enter_its_loss_from_outside_its_cluster():
    model, idx = tiny_gpt()
    targets = Tensor(np.ones((2, 5), dtype=np.int64), name="targets")
    with viz.record(model):
        _, loss = model(idx, targets)
    dot = viz.draw_graph(loss, depth=1)
    node = node_id(dot, "{targets | (2, 5) int64}")
    outside = dot.source.split("subgraph cluster")[0]  # nodes before the first cluster sit outside every module
    assert f"\t{node} [" in outside and (node, node_id(dot, "crossentropy"), "") in edges(dot)


def test_module_labels_have_room_inside_their_boxes():
    model, idx = tiny_gpt()
    with viz.record(model):
        _, loss = model(idx, idx)
    module_lines = [line for line in viz.draw_graph(loss, depth=1).source.splitlines() if "box3d" in line]
    assert module_lines and all('margin="0.2,0.12"' in line for line in module_lines)


def test_names_from_argument_and_model_and_roles_coloured_with_legend():
    model, x, loss = recorded_two_layer()
    dot = viz.draw_graph(loss, names={"the input": x})
    labels = nodes(dot)
    assert any(label.startswith("{the input |") for label in labels.values())
    assert any(label.startswith("{layers.0.weight | (4, 8) float32") for label in labels.values())
    source = dot.source
    for role in ("input", "parameter", "op", "output"):
        assert f'bgcolor="{viz.COLOURS[role]}">{role}<' in source
    assert "module<" not in source  # only roles that appear are in the legend
    assert 'legend [' not in viz.draw_graph(loss, legend=False).source
    # without a recording, model= still names the parameters
    plain = viz.draw_graph(model(x), model=model)
    assert "layers.1.bias" in plain.source and "cluster" not in plain.source


def test_op_labels_read_like_the_code():
    x = Tensor(np.ones((2, 6), dtype=np.float32), requires_grad=True)
    dot = viz.draw_graph([x[:, 2:4], x.astype(np.float64), x.sum(axis=None, keepdims=True)])
    assert {"getitem[:, 2:4]", "cast(float64)", "sum(axis=(0, 1), keepdims=True)"} <= set(nodes(dot).values())


def test_bad_arguments_are_clear_errors():
    x = Tensor([1.0], requires_grad=True)
    with pytest.raises(TypeError, match="draw_graph: expected a Tensor"):
        viz.draw_graph([x, 3.0])
    with pytest.raises(ValueError, match="rankdir must be 'TB' or 'LR'"):
        viz.draw_graph(x * 2, rankdir="BT")
    with pytest.raises(ValueError, match=r"depth=1 needs module paths.*viz.record"):
        viz.draw_graph(x * 2, depth=1)


def test_node_ids_are_stable_across_runs():
    assert viz.draw_graph(recorded_two_layer()[2]).source == viz.draw_graph(recorded_two_layer()[2]).source


# ---- module clusters and depth --------------------------------------------------------------------------------


def test_clusters_follow_module_paths():
    _, _, loss = recorded_two_layer()
    source = viz.draw_graph(loss).source
    clusters = re.findall(r"subgraph cluster_\d+ \{\n\t+graph \[.* label=(\"[^\"]*\"|\S+) ", source)
    assert sorted(clusters) == ['"layers.0 (Affine)"', '"layers.1 (Affine)"', "TwoLayer"]
    assert source.count('style="dashed,rounded"') == 3
    # the matmul and add of layers.0 sit inside its cluster, which sits inside the model's
    inner = source.split("label=\"layers.0 (Affine)\"")[1].split("\n\t\t}")[0]
    assert "label=matmul" in inner and "label=add" in inner and "layers.0.weight" in inner
    # the model's input is drawn outside the model; the loss ops too
    top_level = re.sub(r"subgraph cluster_\d+ \{.*\n\t\}", "", source, flags=re.S)
    assert "{x | (2, 4) float32}" in top_level and "label=mul" in top_level


def test_depth_collapses_modules_into_nodes_with_shapes():
    _, _, loss = recorded_two_layer()
    dot = viz.draw_graph(loss, depth=1)
    labels = nodes(dot)
    assert labels[node_id(dot, "layers.0 (Affine)")] == "layers.0 (Affine)\n(2, 4) → (2, 8)\n40 params"
    assert labels[node_id(dot, "layers.1 (Affine)")] == "layers.1 (Affine)\n(2, 8) → (2, 3)\n27 params"
    assert "weight" not in dot.source  # parameters belong to their module's node
    first, relu, second = node_id(dot, "layers.0"), node_id(dot, "relu"), node_id(dot, "layers.1")
    assert {(node_id(dot, "x |"), first, ""), (first, relu, "(2, 8)"), (relu, second, "")} <= set(edges(dot))
    whole = viz.draw_graph(loss, depth=0)
    assert node_id(whole, "TwoLayer\n(2, 4) → (2, 3)\n67 params")


def test_constants_inside_a_collapsed_module_are_part_of_it():
    class Double(Module):
        def forward(self, x):
            return x * 2.0  # the 2.0 becomes a leaf tensor made inside the module

    model = Double()
    x = Tensor([1.0, 2.0], requires_grad=True, name="x")
    with viz.record():  # without a model the outermost module called names the paths
        out = model(x)
    assert "{() float32}" in viz.draw_graph(out).source
    collapsed = viz.draw_graph(out, depth=0)
    assert "{() float32}" not in collapsed.source
    assert set(nodes(collapsed).values()) == {"{x | (2,) float32}", "Double\n(2,) → (2,)", "{(2,) float32}"}


def test_module_called_twice_gives_two_calls():
    class Twice(Module):
        def __init__(self):
            super().__init__()
            self.inner = Affine(3, 3, 0)

        def forward(self, x):
            return self.inner(self.inner(x))

    model = Twice()
    with viz.record(model):
        out = model(Tensor(np.ones((1, 3), dtype=np.float32)))
    dot = viz.draw_graph(out, depth=1)
    assert len([label for label in nodes(dot).values() if label.startswith("inner (Affine)")]) == 2
    assert len(viz.trace(model, Tensor(np.ones((1, 3), dtype=np.float32))).find("inner")) == 2


def test_recording_costs_nothing_outside_and_survives_errors():
    class Broken(Module):
        def forward(self, x):
            raise RuntimeError("boom")

    model = TwoLayer()
    model.layers.append(Broken())
    with viz.record(model) as rec, pytest.raises(RuntimeError, match="boom"):
        model.layers[2](Tensor([1.0]))
    assert _ModuleStack.recording == 0 and _ModuleStack.listeners == [] and _ModuleStack.active == []
    assert [s.path for s in rec.steps] == ["layers.2"]
    out = model(Tensor(np.ones((2, 4), dtype=np.float32)))  # outside: no tags
    assert viz._op_calls.get(out._ctx) is None


def test_tags_go_with_the_graph():
    gc.collect()
    before = len(viz._op_calls)
    _, _, loss = recorded_two_layer()
    assert len(viz._op_calls) == before + 5  # matmul, add, relu, matmul, add
    del loss
    gc.collect()
    assert len(viz._op_calls) == before


def test_ten_thousand_op_chain_draws():
    x = Tensor([1.0], requires_grad=True, name="x")
    y = x
    for _ in range(10_000):
        y = -y
    dot = viz.draw_graph(y)
    assert len(nodes(dot)) == 10_002  # the leaf, 10,000 ops, the output
    assert len(edges(dot)) == 10_001


# ---- golden files and rendering -------------------------------------------------------------------------------


def check_golden(name: str, source: str) -> None:
    path = GOLDEN / name
    if os.environ.get("TINYGRAD_LITE_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(source)
    assert path.exists(), f"{path} is missing: run with TINYGRAD_LITE_UPDATE_GOLDEN=1 to write it"
    assert source == path.read_text(), f"the drawing changed; if intended, rewrite {path} (see module docstring)"


def tiny_mlp_loss():
    from models.mlp import MLP
    from tinygrad_lite.nn import functional as F

    model = MLP([6, 5, 3], activation="relu", seed=0)
    x = Tensor(np.ones((4, 6), dtype=np.float32), name="x")
    with viz.record(model):
        loss = F.cross_entropy(model(x), np.arange(4) % 3)
    loss.name = "loss"
    return loss


def tiny_gpt():
    from models.gpt import GPT, GPTConfig

    config = GPTConfig(vocab_size=7, block_size=6, n_layer=2, n_head=3, n_embd=12)
    return GPT(config, seed=0), Tensor(np.arange(10).reshape(2, 5) % 7, name="idx")


def test_golden_tiny_mlp():
    check_golden("tiny_mlp.dot", viz.draw_graph(tiny_mlp_loss()).source)


def test_golden_tiny_gpt_depth_1():
    model, idx = tiny_gpt()
    with viz.record(model):
        _, loss = model(idx, idx)
    loss.name = "loss"
    check_golden("tiny_gpt_depth1.dot", viz.draw_graph(loss, depth=1).source)


@pytest.mark.parametrize("fmt, magic", [("svg", b"<svg"), ("png", b"\x89PNG")])
def test_renders_with_dot(fmt, magic):
    if shutil.which("dot") is None:
        pytest.skip("graphviz's `dot` binary is not installed (apt-get install graphviz); CI installs it")
    data = viz.draw_graph(tiny_mlp_loss(), show_data=True).pipe(format=fmt)
    assert magic in data[:400]
    if fmt == "svg":
        assert b"layers.0.weight" in data and b"crossentropy" in data


def test_jupyter_shows_svg():
    if shutil.which("dot") is None:
        pytest.skip("graphviz's `dot` binary is not installed (apt-get install graphviz); CI installs it")
    bundle = viz.draw_graph(Tensor([1.0], requires_grad=True) * 2)._repr_mimebundle_()
    assert "<svg" in bundle["image/svg+xml"]


# ---- shape trace ----------------------------------------------------------------------------------------------


def test_trace_of_gpt_has_the_expected_shape_at_every_step():
    model, idx = tiny_gpt()
    B, T, C, nh, hs, V = 2, 5, 12, 3, 4, 7
    table = viz.trace(model, idx, dims={"B": B, "T": T, "C": C, "nh": nh, "hs": hs, "V": V})

    def io(path, op=None):
        (row,) = table.find(path, op)
        return row.input_shapes, row.output_shapes

    assert io("") == ([(B, T)], [(B, T, V)])
    assert io("wte") == ([(B, T)], [(B, T, C)])
    assert io("wpe") == ([(T,)], [(T, C)])
    for i in range(2):
        p = f"h.{i}"
        assert io(p) == io(f"{p}.ln_1") == io(f"{p}.attn") == io(f"{p}.mlp") == ([(B, T, C)], [(B, T, C)])
        assert io(f"{p}.attn.c_attn") == ([(B, T, C)], [(B, T, 3 * C)])
        splits = table.find(f"{p}.attn", "getitem")
        assert [r.output_shapes for r in splits] == [[(B, T, C)]] * 3
        heads = table.find(f"{p}.attn", "permute")
        assert [r.output_shapes for r in heads] == [[(B, nh, T, hs)]] * 3 + [[(B, T, nh, hs)]]
        assert [r.output_shapes for r in table.find(f"{p}.attn", "reshape")] == [[(B, T, nh, hs)]] * 3 + [[(B, T, C)]]
        assert io(f"{p}.mlp.c_fc") == ([(B, T, C)], [(B, T, 4 * C)])
        assert io(f"{p}.mlp.c_proj") == ([(B, T, 4 * C)], [(B, T, C)])
    assert io("lm_head") == ([(B, T, C)], [(B, T, V)])
    # parameter counts: the model's own, and the blocks add up
    assert table.find("")[0].num_parameters == model.num_parameters()
    assert table.find("h.0")[0].num_parameters == sum(p.numel() for n, p in model.named_parameters()
                                                      if n.startswith("h.0."))
    # rows carry the forward's variable names, as in the code
    assert [r.variable for r in table.find("h.0.attn", "permute")] == ["q", "k", "v", ""]
    assert [r.variable for r in table.find("h.1.attn", "reshape")] == ["", "", "", "y"]
    assert (table.find("wte")[0].variable, table.find("wpe")[0].variable) == ("tok", "pos")
    text = str(table)
    assert text.splitlines()[0] == "B=2  T=5  C=12  nh=3  hs=4  V=7"
    assert re.search(r"h\.0\.attn +k = permute\(axes=\(0, 2, 1, 3\)\) +\(B, T, nh, hs\) +\(B, nh, T, hs\)", text)
    assert re.search(r"wpe +pos = Embedding +\(T,\) +\(T, C\) +72$", text, re.M)


def test_trace_text_and_markdown_are_aligned_tables():
    table = viz.trace(TwoLayer(), Tensor(np.ones((2, 4), dtype=np.float32)))
    lines = str(table).splitlines()
    assert lines[0].split() == ["module", "op", "inputs", "output", "params"]
    assert len(lines) == len(table) + 1 == 1 + 8  # the model, 2 × (call, matmul, add), relu
    column = lines[0].index("inputs")
    assert all(line[column - 2:column + 1] == "  (" for line in lines[1:])  # every row's inputs start there
    md = table.to_markdown().splitlines()
    assert md[0] == "| module | op | inputs | output | params |" and len(md) == len(table) + 2
    assert "| layers.0 | Affine | (2, 4) | (2, 8) | 40 |" in md
    top = table[:2]
    assert isinstance(top, viz.Trace)
    assert [line.split() for line in str(top).splitlines()] == [line.split() for line in lines[:3]]
    modules_only = viz.trace(TwoLayer(), Tensor(np.ones((2, 4), dtype=np.float32)), ops=False, depth=0)
    assert [(r.path, r.op) for r in modules_only] == [("", "TwoLayer")]


def test_trace_rejects_non_modules():
    with pytest.raises(TypeError, match="trace: expected an nn.Module"):
        viz.trace(lambda x: x, Tensor([1.0]))


# ---- the example ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv, expected", [
    (["expr", "--grads"], "{o | () float32 | data 0.7071 | grad 1}"),
    (["mlp", "--depth", "1"], "layers.0 (Linear)\n(4, 784) → (4, 30)\n23,550 params"),
    (["gpt", "--trace", "--batch", "2", "--markdown"], "| h.3.attn | q = permute(axes=(0, 2, 1, 3)) | (B, T, nh, hs) "),
])
def test_example_script(argv, expected, monkeypatch, capsys):
    import runpy

    script = Path(__file__).parent.parent / "examples" / "draw_graph.py"
    monkeypatch.setattr("sys.argv", [str(script), *argv])
    runpy.run_path(str(script), run_name="__main__")
    assert expected in capsys.readouterr().out
