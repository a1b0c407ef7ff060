"""See the computation: graphviz pictures of a graph, and a shape trace of a model.

    >>> from tinygrad_lite import viz
    >>> with viz.record(model):                 # tag every op with the module call that ran it
    ...     logits, loss = model(idx, targets)
    >>> viz.draw_graph(loss, depth=1)           # graphviz.Digraph: one node per Block, ln_f, lm_head ...
    >>> print(viz.trace(model, idx))            # one row per module call and op, with its shapes

`draw_graph` needs no `dot` binary to build the graph and its DOT source; `.render()`
/ `.pipe()` to SVG, PNG or PDF use the real `dot` (Debian package `graphviz`).
In Jupyter the returned Digraph shows itself inline.
"""

from __future__ import annotations

import contextlib
import html
import sys
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .nn.module import Module, Parameter, _ModuleStack
from .tensor import Function, Tensor, graph_order, op_hook

if TYPE_CHECKING:
    import graphviz

Shape = tuple[int, ...]
ParameterNames = dict[int, tuple[weakref.ReferenceType, str]]  # id(parameter) -> (the parameter, weakly; its name)

# Colours by role, shared by the nodes and the legend.
COLOURS = {"input": "#cfe2f3", "parameter": "#fff2cc", "op": "#eeeeee", "intermediate": "#ffffff",
           "output": "#d9ead3", "module": "#e4dcf5"}
FULL_VALUES = 8  # tensors up to this many elements show every value; bigger ones mean/std/min/max


# ---- recording module calls -----------------------------------------------------------------------------------


@dataclass(eq=False)
class ModuleCall:
    """One call of a Module's forward seen by `record`: where it sits and what went in and out.

    `depth` counts the calls around it (the model itself is 0, `blocks.0` 1, `blocks.0.attn` 2).
    Tensors are held weakly so a recording never keeps a graph alive.
    """

    path: str
    kind: str
    depth: int
    parent: ModuleCall | None = field(repr=False)
    parameter_names: ParameterNames = field(repr=False)  # of the recorded model, shared by its calls
    inputs: list[weakref.ReferenceType] = field(default_factory=list, repr=False)
    input_shapes: list[Shape] = field(default_factory=list)
    output_shapes: list[Shape] = field(default_factory=list)
    num_parameters: int = 0
    variable: str = ""  # the local variable its caller's forward kept the output in (`tok`, `x`)
    outputs: list[weakref.ReferenceType] = field(default_factory=list, repr=False)

    @property
    def title(self) -> str:
        """`blocks.0.attn (CausalSelfAttention)`, or just the class name for the model itself."""
        return f"{self.path} ({self.kind})" if self.path else self.kind

    def is_input(self, t: Tensor) -> bool:
        return any(ref() is t for ref in self.inputs)

    def ancestor_at(self, depth: int) -> ModuleCall:
        call = self
        while call.depth > depth:
            call = call.parent  # type: ignore[assignment]
        return call


@dataclass(eq=False)
class OpStep:
    """One op seen by `record`: its label, input and output shapes, and the module call that ran it."""

    label: str
    input_shapes: list[Shape]
    output_shape: Shape
    call: ModuleCall | None = field(repr=False)
    output: weakref.ReferenceType = field(repr=False)
    variable: str = ""  # the local variable of the forward that kept the output (`q`, `att`)


@dataclass(eq=False)
class _Running:
    """A module call in progress: its forward's frame (found lazily) and the steps taken directly in it."""

    call: ModuleCall
    code: Any  # the forward's code object, to find its frame on the stack
    frame: Any = None
    searched: bool = False
    steps: list[ModuleCall | OpStep] = field(default_factory=list)

    def add(self, step: ModuleCall | OpStep) -> None:
        """A step taken directly in this call; the first one finds the forward's frame (it is on the stack now)."""
        self.steps.append(step)
        if not self.searched:
            self.searched = True
            frame = sys._getframe(2)
            while frame is not None and frame.f_code is not self.code:
                frame = frame.f_back
            self.frame = frame


# Which module call made each op's output; weak keys, so the tags go when the graph goes.
_op_calls: weakref.WeakKeyDictionary[Function, ModuleCall] = weakref.WeakKeyDictionary()


class record:
    """Context manager: tag every op run inside with the module call that ran it.

        with viz.record(model) as rec:
            loss = model(x, y)
        viz.draw_graph(loss, depth=1)      # clusters named by module path; rec.steps for traces

    `model` names the modules (`blocks.0.attn`, as `named_modules()`); without it the outermost
    module called names them. When a forward returns, its ops and sub-module calls are named after
    the local variables that hold their results (`q`, `att`), for `trace`. Outside the block nothing
    is recorded and `Module.__call__` does no bookkeeping, so training loops pay nothing.
    """

    def __init__(self, model: Module | None = None):
        self.steps: list[ModuleCall | OpStep] = []  # module calls and ops in the order they began
        self._stack: list[_Running] = []
        self._paths: dict[int, str] = {}
        self._names: ParameterNames = {}
        if model is not None:
            self._name(model)
        self._hooks = contextlib.ExitStack()

    def __enter__(self) -> record:
        self._hooks.enter_context(op_hook(self._op))
        _ModuleStack.listeners.append(self)
        _ModuleStack.recording += 1
        return self

    def __exit__(self, *exc: object) -> None:
        _ModuleStack.recording -= 1
        _ModuleStack.listeners.remove(self)
        self._hooks.close()

    def _name(self, model: Module) -> None:
        self._paths = {id(m): p for p, m in model.named_modules()}
        self._names = parameter_names(model)

    # Called by Module.__call__ around every forward while recording.
    def enter(self, module: Module, args: tuple) -> None:
        if not self._paths:
            self._name(module)
        caller = self._stack[-1] if self._stack else None
        parent = caller.call if caller is not None else None
        path = self._paths.get(id(module))
        if path is None:  # a module outside the named tree: name it after its class, under its caller
            kind = type(module).__name__
            path = f"{parent.path}.{kind}" if parent is not None and parent.path else kind
        tensors = list(_tensors(args))
        call = ModuleCall(path, type(module).__name__, len(self._stack), parent, self._names,
                          [weakref.ref(t) for t in tensors], [t.shape for t in tensors], [],
                          module.num_parameters())
        if caller is not None:
            caller.add(call)
        self._stack.append(_Running(call, getattr(type(module).forward, "__code__", None)))
        self.steps.append(call)

    def exit(self, module: Module, output: Any) -> None:
        running = self._stack.pop()
        outputs = list(_tensors(output))
        running.call.output_shapes = [t.shape for t in outputs]
        running.call.outputs = [weakref.ref(t) for t in outputs]
        if running.frame is not None:
            _name_by_locals(running.steps, running.frame.f_locals)
            running.frame = None  # holding the frame would keep its tensors, and so the graph, alive

    def _op(self, fn: Function, out: Tensor) -> None:
        running = self._stack[-1] if self._stack else None
        call = running.call if running is not None else None
        if call is not None:
            _op_calls[fn] = call
        inputs = [t.shape for t in getattr(fn, "parents", ())]
        step = OpStep(fn.name, inputs, out.shape, call, weakref.ref(out))
        self.steps.append(step)
        if running is not None:
            running.add(step)


def _name_by_locals(steps: list[ModuleCall | OpStep], local_vars: Mapping[str, Any]) -> None:
    """Give each step the name of the local variable that still holds its (single) output."""
    names = {id(v): k for k, v in local_vars.items() if isinstance(v, Tensor)}
    for step in steps:
        refs = step.outputs if isinstance(step, ModuleCall) else [step.output]
        held = refs[0]() if len(refs) == 1 else None
        if held is not None and id(held) in names:
            step.variable = names[id(held)]


def parameter_names(model: Module) -> ParameterNames:
    return {id(p): (weakref.ref(p), name) for name, p in model.named_parameters()}


def _tensors(obj: Any) -> Iterator[Tensor]:
    """The tensors in a forward's arguments or result (nested tuples, lists and dicts)."""
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for x in obj:
            yield from _tensors(x)
    elif isinstance(obj, dict):
        for x in obj.values():
            yield from _tensors(x)


# ---- labels ---------------------------------------------------------------------------------------------------


def shape_text(shape: Shape, dims: Mapping[int, str] | None = None) -> str:
    """`(4, 8, 32)`, or `(B, T, C)` where `dims` maps a size to its symbol."""
    dims = dims or {}
    inner = ", ".join(dims.get(n, str(n)) for n in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def summary_text(a: np.ndarray) -> str:
    """Small arrays in full; big ones as mean, std, min and max."""
    if a.size <= FULL_VALUES:
        if a.ndim == 0:
            return f"{a.item():.4g}"
        return np.array2string(a, precision=4, separator=", ", max_line_width=60).replace("\n", "")
    f = a.astype(np.float64)
    return f"mean {f.mean():.3g}  std {f.std():.3g}\\lmin {f.min():.3g}  max {f.max():.3g}"


def _record_text(text: str) -> str:
    """Escape the characters that structure a graphviz record label."""
    for ch in "{}|<>":
        text = text.replace(ch, "\\" + ch)
    return text


# ---- drawing --------------------------------------------------------------------------------------------------


def _tensor_names(order: Sequence[Tensor], names: Mapping[str, Tensor] | None,
                  known: Iterable[ParameterNames]) -> dict[int, str]:
    """id(tensor) -> name: `names` first, then `Tensor.name`, then parameter names."""
    found: dict[int, str] = {}
    for t in order:
        for by_id in known:
            ref, name = by_id.get(id(t), (None, ""))
            if ref is not None and ref() is t:
                found[id(t)] = name
                break
        if t.name:
            found[id(t)] = t.name
    for n, t in (names or {}).items():
        found[id(t)] = n
    return found


def draw_graph(roots: Tensor | Sequence[Tensor], *, names: Mapping[str, Tensor] | None = None,
               params: Mapping[str, Tensor] | None = None, model: Module | None = None, show_data: bool = False,
               show_grad: bool = False, rankdir: str = "TB", depth: int | None = None, compact: bool = True,
               legend: bool = True) -> graphviz.Digraph:
    """A graphviz Digraph of the graph that computed `roots` (one tensor or several).

    Tensor nodes show a name (from `names` {name: tensor}, `Tensor.name`, or the parameter names of
    `model` or of the model run inside `record`), the shape and dtype, and with `show_data` /
    `show_grad` the values (small tensors in full, big ones as mean/std/min/max). With `show_grad`
    an input that does not require grad says so instead. `params` is torchviz's spelling of `names`:
    `draw_graph(y, params=dict(model.named_parameters()))`. Op nodes show the op (`matmul`,
    `softmax(axis=-1)`); an array an op takes as an argument rather than as a tensor (the targets of
    `cross_entropy`) is drawn as an input beside it. Colours mark inputs, parameters, ops and outputs.
    Intermediate results are drawn as their own nodes only when named or when values are shown;
    otherwise the op's outgoing edge carries the shape.

    Ops recorded inside `viz.record(...)` sit in dashed clusters named after the module path
    (`blocks.0.attn`); `depth=N` draws each module call at depth N (the model is depth 0) as one
    node with its input and output shapes and parameter count. `compact` merges parallel edges
    (`x * x`) into one labelled `×2` and writes a shape on an edge only where the shape changes.
    `rankdir` is "TB" (top to bottom) or "LR" (left to right). Node ids (`t0`, `op3`, `m5`)
    follow the walk, so the same computation always gives the same DOT source.
    """
    roots = [roots] if isinstance(roots, Tensor) else list(roots)
    if not roots or not all(isinstance(r, Tensor) for r in roots):
        raise TypeError(f"draw_graph: expected a Tensor or a sequence of Tensors, got {roots!r}")
    if rankdir not in ("TB", "LR"):
        raise ValueError(f"draw_graph: rankdir must be 'TB' or 'LR', got {rankdir!r}")
    if depth is not None and depth < 0:
        raise ValueError(f"draw_graph: depth must be >= 0, got {depth}")
    drawing = _Drawing(roots, {**(params or {}), **(names or {})}, model, show_data or show_grad, depth)
    drawing.draw(show_data, show_grad, compact)

    import graphviz  # here, not at the top: it would slow every `import tinygrad_lite`

    dot = graphviz.Digraph("graph", graph_attr={"rankdir": rankdir, "fontname": "Helvetica", "nodesep": "0.25",
                                                "ranksep": "0.35"},
                           # Op nodes are the most numerous: they take the defaults.
                           node_attr={"fontname": "Helvetica", "fontsize": "11", "height": "0.3", "shape": "ellipse",
                                      "style": "filled", "fillcolor": COLOURS["op"]},
                           edge_attr={"fontname": "Helvetica", "fontsize": "9", "color": "#555555"})
    _add_clusters(dot, drawing.nodes)
    for (src, dst), labels in drawing.edges.items():
        for label in _edge_labels(labels, compact):
            dot.edge(src, dst, label=label or None)
    if legend:
        _add_legend(dot, drawing.roles)
    return dot


Node = tuple[str, dict[str, str]]  # DOT id and attributes


class _Drawing:
    """Decides what `draw_graph` draws: which tensors get nodes, which ops fold into module nodes, where
    each node sits. Ids are handed out in walk order (`t0`, `op1`, `m2`), so they are stable."""

    def __init__(self, roots: list[Tensor], names: Mapping[str, Tensor] | None, model: Module | None,
                 intermediates: bool, depth: int | None):
        self.order = graph_order(roots)
        self.roots = {id(r) for r in roots}
        self.walked = {id(t) for t in self.order}
        self.calls = {id(t): _op_calls.get(t._ctx) for t in self.order if t._ctx is not None}
        if depth is not None and not any(self.calls.values()):
            raise ValueError(f"draw_graph: depth={depth} needs module paths, but no op of this graph was recorded; "
                             "run the forward inside `with viz.record(model):`")
        recorded = {id(c.parameter_names): c.parameter_names for c in self.calls.values() if c is not None}
        known = [parameter_names(model)] if model is not None else list(recorded.values())
        self.names = _tensor_names(self.order, names, known)
        self.array_names = {id(t.data): n for n, t in (names or {}).items()}  # for arrays passed as op arguments
        self.intermediates, self.depth = intermediates, depth
        self.consumers: dict[int, list[Tensor]] = {}
        for t in self.order:
            for p in t._ctx.parents if t._ctx is not None else ():
                self.consumers.setdefault(id(p), []).append(t)
        self.ids: dict[tuple[str, int], str] = {}
        self.nodes: dict[ModuleCall | None, list[Node]] = {}  # by the cluster they sit in
        self.roles: set[str] = set()  # the colours used, for the legend
        self.edges: dict[tuple[str, str], list[str]] = {}  # one label per tensor flowing along

    # ---- what is drawn, and where ------------------------------------------------------------------------------

    def collapsed(self, t: Tensor) -> ModuleCall | None:
        """The depth-N module call whose node swallows the op that made `t`."""
        call = self.calls.get(id(t))
        if call is None or self.depth is None or call.depth < self.depth:
            return None
        return call.ancestor_at(self.depth)

    def has_node(self, t: Tensor) -> bool:
        if id(t) in self.roots:
            return True
        if t._ctx is not None:
            return self.collapsed(t) is None and (id(t) in self.names or self.intermediates)
        # A leaf used only inside one collapsed module (its weights, its constants) is part of that node.
        owners = {self.collapsed(c) for c in self.consumers.get(id(t), [])}
        if len(owners) != 1 or None in owners:
            return True
        (owner,) = owners
        return not isinstance(t, Parameter) and owner.is_input(t)

    def cluster_of_leaf(self, leaf: Tensor) -> ModuleCall | None:
        """The innermost module call around every use of a leaf; outside the modules it is an input of."""
        chains = []
        for c in self.consumers.get(id(leaf), []):
            owner = self.collapsed(c)
            call = owner.parent if owner is not None else self.calls.get(id(c))
            chains.append(list(reversed(_ancestry(call))))
        common = None
        for level in zip(*chains) if chains else ():
            if any(c is not level[0] for c in level):
                break
            common = level[0]
        return _outermost_taking(common, leaf).parent if common is not None and common.is_input(leaf) else common

    def source(self, t: Tensor) -> str:
        """The node that the edges carrying `t` start from."""
        if self.has_node(t):
            return self.ids[("t", id(t))]
        owner = self.collapsed(t)
        return self.ids[("m", id(owner))] if owner is not None else self.ids[("op", id(t._ctx))]

    # ---- nodes and edges -------------------------------------------------------------------------------------

    def node(self, key: tuple[str, int], cluster: ModuleCall | None, **attrs: str) -> str:
        if key not in self.ids:
            self.ids[key] = f"{key[0]}{len(self.ids)}"
            self.nodes.setdefault(cluster, []).append((self.ids[key], attrs))
        return self.ids[key]

    def record_node(self, key: tuple[str, int], cluster: ModuleCall | None, role: str, fields: list[str]) -> str:
        """A rounded record node `field | field | ...`, coloured by its role."""
        self.roles.add(role)
        label = "{" + " | ".join(_record_text(f) for f in fields) + "}"
        return self.node(key, cluster, label=label, shape="record", style="rounded,filled", fillcolor=COLOURS[role])

    def tensor_node(self, t: Tensor, cluster: ModuleCall | None, show_data: bool, show_grad: bool) -> str:
        role = "output" if id(t) in self.roots else "parameter" if isinstance(t, Parameter) else \
            "input" if t._ctx is None else "intermediate"
        fields = _array_fields(self.names.get(id(t), t.name), t.data, show_data)
        if show_grad and t.grad is not None:
            fields.append(f"grad {summary_text(t.grad.data)}")
        elif show_grad and t._ctx is None and not t.requires_grad:
            fields.append("no grad (requires_grad=False)")
        return self.record_node(("t", id(t)), cluster, role, fields)

    def argument_node(self, key: str, value: np.ndarray, call: ModuleCall | None, show_data: bool,
                      show_grad: bool) -> str:
        """An array an op took as an argument, not as an input tensor (cross_entropy's targets). When it is the
        data of a tensor given to a module call, that tensor's node, where the tensor came in."""
        given = next(((c, ref()) for c in _ancestry(call) for ref in c.inputs
                      if ref() is not None and ref().data is value), None)
        if given is not None:
            return self.tensor_node(given[1], _outermost_taking(*given).parent, show_data, show_grad)
        name = self.array_names.get(id(value), key)
        return self.record_node(("a", id(value)), call, "input", _array_fields(name, value, show_data))

    def module_node(self, call: ModuleCall) -> str:
        shapes = f"{', '.join(map(shape_text, call.input_shapes))} → {', '.join(map(shape_text, call.output_shapes))}"
        label = [call.title, shapes] + ([f"{call.num_parameters:,} params"] if call.num_parameters else [])
        self.roles.add("module")
        return self.node(("m", id(call)), call.parent, label="\n".join(label), shape="box3d",
                         fillcolor=COLOURS["module"], margin="0.2,0.12")  # box3d's top face eats the default

    def draw(self, show_data: bool, show_grad: bool, compact: bool) -> None:
        first_input: dict[str, Shape] = {}  # node id -> shape of its first input, to see where shapes change
        fed: set[tuple[str, int]] = set()  # (module node, tensor) pairs already drawn
        for t in self.order:
            if t._ctx is None:
                if self.has_node(t):
                    self.tensor_node(t, self.cluster_of_leaf(t), show_data, show_grad)
                continue
            owner = self.collapsed(t)
            if owner is not None:
                node = self.module_node(owner)
                if owner.input_shapes:
                    first_input.setdefault(node, owner.input_shapes[0])
                for ref in owner.inputs:  # inputs outside the graph, e.g. token ids
                    outside = ref()
                    if outside is not None and id(outside) not in self.walked:
                        cluster = _outermost_taking(owner, outside).parent
                        self.edge(self.tensor_node(outside, cluster, show_data, show_grad), node, "")
            else:
                self.roles.add("op")
                node = self.node(("op", id(t._ctx)), self.calls.get(id(t)), label=t._ctx.name)
                if t._ctx.parents:
                    first_input.setdefault(node, t._ctx.parents[0].shape)
            for p in t._ctx.parents:
                if (p._ctx is None and not self.has_node(p)) or (owner is not None and (node, id(p)) in fed):
                    continue  # part of the module's node, or a second use inside one module: one arrow
                fed.add((node, id(p)))
                src = self.source(p)
                if src != node:
                    quiet = self.has_node(p) or (compact and first_input.get(src) == p.shape)
                    self.edge(src, node, "" if quiet else shape_text(p.shape))
            if owner is None:  # inside a collapsed module its arguments are part of its node
                for key, value in getattr(t._ctx, "params", {}).items():
                    if isinstance(value, np.ndarray) and value.ndim:
                        src = self.argument_node(key, value, self.calls.get(id(t)), show_data, show_grad)
                        self.edge(src, node, "")
            if self.has_node(t):
                cluster = owner.parent if owner is not None else self.calls.get(id(t))
                self.edge(node, self.tensor_node(t, cluster, show_data, show_grad), "")

    def edge(self, src: str, dst: str, label: str) -> None:
        self.edges.setdefault((src, dst), []).append(label)


def _array_fields(name: str, data: np.ndarray, show_data: bool) -> list[str]:
    """The fields of a tensor's record: its name, `shape dtype`, and its values when shown."""
    return ([name] if name else []) + [f"{shape_text(data.shape)} {data.dtype.name}"] + (
        [f"data {summary_text(data)}"] if show_data else [])


def _edge_labels(labels: list[str], compact: bool) -> list[str]:
    """One label per drawn edge: parallel edges merged into one (`×2`) when compact."""
    if not compact or len(labels) == 1:
        return labels
    shapes = labels[0] if len(set(labels)) == 1 else ", ".join(x for x in labels if x)
    return [f"{shapes} ×{len(labels)}".strip()]


def _ancestry(call: ModuleCall | None) -> list[ModuleCall]:
    """The call and the calls around it, innermost first."""
    chain = []
    while call is not None:
        chain.append(call)
        call = call.parent
    return chain


def _outermost_taking(call: ModuleCall, t: Tensor) -> ModuleCall:
    """The outermost call around `call` that got `t` as an input."""
    while call.parent is not None and call.parent.is_input(t):
        call = call.parent
    return call


def _add_clusters(dot: graphviz.Digraph, nodes: Mapping[ModuleCall | None, list[Node]]) -> None:
    """Nodes into nested dashed clusters, one per module call that holds something (numbered by first use)."""
    order: list[ModuleCall] = []
    for call in nodes:
        order.extend(c for c in reversed(_ancestry(call)) if c not in order)
    graphs = {call: type(dot)(f"cluster_{i}", graph_attr={"label": call.title, "style": "dashed,rounded",
                                                          "color": "#888888", "fontsize": "11", "labeljust": "l"})
              for i, call in enumerate(order)}
    for call, members in nodes.items():
        target = dot if call is None else graphs[call]
        for node_id, attrs in members:
            target.node(node_id, **attrs)
    # Innermost clusters first: Digraph.subgraph copies the child's body as it is now.
    for call in sorted(order, key=lambda c: -c.depth):
        (dot if call.parent is None else graphs[call.parent]).subgraph(graphs[call])


def _add_legend(dot: graphviz.Digraph, roles: set[str]) -> None:
    """A small table of the colours that appear in the drawing."""
    rows = "".join(f'<tr><td bgcolor="{colour}">{role}</td></tr>' for role, colour in COLOURS.items()
                   if role in roles)
    dot.node("legend", label=f'<<table border="0" cellborder="1" cellspacing="0" cellpadding="3">{rows}</table>>',
             shape="plaintext", style="solid", fontsize="9")


# ---- shape trace ----------------------------------------------------------------------------------------------


@dataclass
class TraceRow:
    """One module call or op: where it ran, what it is, its input and output shapes, its parameters."""

    path: str
    op: str
    input_shapes: list[Shape]
    output_shapes: list[Shape]
    num_parameters: int | None  # None for ops
    variable: str = ""  # the forward's local variable that kept the result


class Trace:
    """The table `trace` returns: `print(t)` for aligned text, `t.to_markdown()`, `t.rows` to test."""

    HEADER = ("module", "op", "inputs", "output", "params")

    def __init__(self, rows: list[TraceRow], dims: Mapping[str, int] | None = None):
        self.rows = rows
        self.dims = dict(dims or {})
        sizes = list(self.dims.values())
        # A size stands for its symbol only when no other declared dimension has the same size.
        self._symbols = {n: name for name, n in self.dims.items() if sizes.count(n) == 1}

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[TraceRow]:
        return iter(self.rows)

    def __getitem__(self, i: int | slice) -> TraceRow | Trace:
        """A row, or a slice of the table as a table (`print(table[:10])`)."""
        return Trace(self.rows[i], self.dims) if isinstance(i, slice) else self.rows[i]

    def find(self, path: str, op: str | None = None) -> list[TraceRow]:
        """Rows of module `path` (its own call when `op` is None, else its ops whose label starts with `op`)."""
        if op is None:
            return [r for r in self.rows if r.path == path and r.num_parameters is not None]
        return [r for r in self.rows if r.path == path and r.num_parameters is None and r.op.startswith(op)]

    def _cells(self) -> list[tuple[str, ...]]:
        def shapes(ss: list[Shape]) -> str:
            return ", ".join(shape_text(s, self._symbols) for s in ss)

        return [(r.path or "(model)", f"{r.variable} = {r.op}" if r.variable else r.op,
                 shapes(r.input_shapes), shapes(r.output_shapes),
                 "" if r.num_parameters is None else f"{r.num_parameters:,}") for r in self.rows]

    def legend(self) -> str:
        return "  ".join(f"{name}={n}" for name, n in self.dims.items())

    def __str__(self) -> str:
        table = [self.HEADER, *self._cells()]
        widths = [max(len(row[i]) for row in table) for i in range(len(self.HEADER))]
        lines = [self.legend()] if self.dims else []
        for row in table:
            cells = [c.rjust(w) if i == 4 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
            lines.append("  ".join(cells).rstrip())
        return "\n".join(lines)

    __repr__ = __str__

    def to_markdown(self) -> str:
        """A GitHub Markdown table (the dimension legend above it)."""
        lines = [f"{self.legend()}\n"] if self.dims else []
        lines += ["| " + " | ".join(self.HEADER) + " |", "|---|---|---|---|---:|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in self._cells()]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """Jupyter shows the table as HTML (the dimension legend as its caption); `print` stays text."""
        align = ['style="text-align:left"'] * 4 + ['style="text-align:right"']  # Jupyter right-aligns every cell
        head = "".join(f"<th {a}>{h}</th>" for a, h in zip(align, self.HEADER))
        body = "".join("<tr>" + "".join(f"<td {a}>{html.escape(c)}</td>" for a, c in zip(align, row)) + "</tr>"
                       for row in self._cells())
        caption = f"<caption>{html.escape(self.legend())}</caption>" if self.dims else ""
        return (f'<table style="font-family:monospace">{caption}<thead><tr>{head}</tr></thead>'
                f"<tbody>{body}</tbody></table>")


def trace(model: Module, *inputs: Any, dims: Mapping[str, int] | None = None, ops: bool = True,
          depth: int | None = None) -> Trace:
    """Run `model(*inputs)` once and list every module call (and, with `ops`, every op) with its shapes.

    Each row also names the local variable of the forward that kept the result (`q = permute(...)`).

    `dims` names sizes, e.g. `{"B": 12, "T": 64, "C": 128, "nh": 4, "hs": 32}`, so shapes print as
    `(B, nh, T, hs)` (a size shared by two names stays a number). `depth` drops module calls nested
    deeper than it and their ops (the model is depth 0).
    """
    if not isinstance(model, Module):
        raise TypeError(f"trace: expected an nn.Module, got {type(model).__name__}")
    with record(model) as rec:
        model(*inputs)
    rows = []
    for step in rec.steps:
        if isinstance(step, ModuleCall):
            if depth is None or step.depth <= depth:
                rows.append(TraceRow(step.path, step.kind, step.input_shapes, step.output_shapes,
                                     step.num_parameters, step.variable))
        elif ops and step.call is not None and (depth is None or step.call.depth <= depth):
            rows.append(TraceRow(step.call.path, step.label, step.input_shapes, [step.output_shape], None,
                                 step.variable))
    return Trace(rows, dims)
