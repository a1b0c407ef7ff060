"""docs/api.md lists the whole public API, one line per function or class, and nothing that does not exist.

The page is generated from the code by this file: after changing the API, run

    python tests/test_api_doc.py            # rewrites docs/api.md

and the tests below check that the page is current, that every public name appears on it, and that
every name it lists exists. A module's public names are its `__all__`, the functions and classes it
defines (names without a leading underscore), and the names it re-exports (imported with
`# noqa: F401`, ruff's mark for an import kept for others). Each object is listed once, in the first
section that exports it; the other sections that export it point there. The Function classes in
`tinygrad_lite/ops/` are left out: they are the Tensor methods' implementation, listed as those methods.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
import pkgutil
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python tests/test_api_doc.py` from anywhere
    sys.path.insert(0, str(REPO))

import models  # noqa: E402
import tinygrad_lite  # noqa: E402
from tinygrad_lite import Function, Tensor  # noqa: E402

API_PAGE = REPO / "docs" / "api.md"
PACKAGES = ("tinygrad_lite", "models")
FIRST = ["tinygrad_lite", "tinygrad_lite.nn", "tinygrad_lite.nn.functional", "tinygrad_lite.nn.attention",
         "tinygrad_lite.optim", "tinygrad_lite.datasets", "tinygrad_lite.io", "tinygrad_lite.gradcheck",
         "tinygrad_lite.viz"]
SKIPPED = re.compile(r"^tinygrad_lite\.ops\.")  # Function classes behind the Tensor methods

# Tensor attributes that have no docstring of their own (slots and one-line properties).
TENSOR_NOTES = {
    "data": "the values, a numpy ndarray",
    "grad": "the accumulated gradient, a Tensor of the same shape, or None",
    "requires_grad": "whether backward computes a gradient for this tensor",
    "name": "an optional label shown by repr and draw_graph",
    "shape": "tuple of ints", "ndim": "number of dimensions", "dtype": "numpy dtype",
    "size": "number of elements", "T": "the transpose (axes reversed)",
    "is_leaf": "True for tensors not made by an op (inputs, parameters)",
    "grad_fn": "the Function that made this tensor, or None for a leaf",
}
OPERATORS = [("+", "__add__"), ("-", "__sub__"), ("*", "__mul__"), ("/", "__truediv__"), ("**", "__pow__"),
             ("@", "__matmul__"), ("-x", "__neg__"), ("abs(x)", "__abs__"), ("x[key]", "__getitem__"),
             ("==", "__eq__"), ("!=", "__ne__"), ("<", "__lt__"), ("<=", "__le__"), (">", "__gt__"),
             (">=", "__ge__"), ("len(x)", "__len__"), ("iter(x)", "__iter__"), ("float(x)", "__float__"),
             ("int(x)", "__int__"), ("bool(x)", "__bool__"), ("np.asarray(x)", "__array__")]


# ---- what is public -------------------------------------------------------------------------------------


def _ours(obj: Any) -> bool:
    return (inspect.isfunction(obj) or inspect.isclass(obj)) and \
        getattr(obj, "__module__", "").split(".")[0] in PACKAGES


def _reexported(module: ModuleType) -> set[str]:
    """Names imported on a line marked `# noqa: ...F401` (kept for others to import)."""
    try:
        source = inspect.getsource(module)
    except (OSError, TypeError):
        return set()
    names: set[str] = set()
    for line in re.findall(r"^from [.\w]+ import ([^#\n]+)#\s*noqa:[^\n]*F401", source, re.M):
        names |= {n.split(" as ")[-1].strip() for n in line.split(",") if n.strip()}
    return names


def module_names() -> list[str]:
    found = []
    for package in (tinygrad_lite, models):
        found.append(package.__name__)
        found += [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
                  if not m.name.split(".")[-1].startswith("_")]
    found = [m for m in found if not SKIPPED.match(m) and m != "models"]
    rest = sorted((m for m in found if m not in FIRST), key=lambda m: (m.startswith("models"), m))
    return [m for m in FIRST if m in found] + rest


def exported(module: ModuleType) -> list[str]:
    """`__all__`, then the functions and classes the module defines or re-exports (not sub-modules)."""
    names = [n for n in getattr(module, "__all__", []) if not inspect.ismodule(getattr(module, n))]
    public = [n for n, obj in vars(module).items() if not n.startswith("_") and n not in names and _ours(obj)]
    names += [n for n in public if getattr(module, n).__module__ == module.__name__]  # in the order of the file
    names += sorted(n for n in _reexported(module) if n in public and n not in names)
    return names


def sections() -> list[tuple[str, list[str], list[tuple[str, str]]]]:
    """(module, names listed there, [(name, section it is listed in)] of the ones listed earlier)."""
    seen: dict[int, str] = {}
    out = []
    for name in module_names():
        module = importlib.import_module(name)
        listed, elsewhere = [], []
        for n in exported(module):
            obj = getattr(module, n)
            if id(obj) in seen:
                elsewhere.append((n, seen[id(obj)]))
            else:
                seen[id(obj)] = name
                listed.append(n)
        if listed or name in FIRST:  # a module that only re-exports gets no section of its own
            out.append((name, listed, elsewhere))
    return out


def tensor_members() -> list[str]:
    return sorted((n for n in dir(Tensor) if not n.startswith("_")), key=lambda n: (n.lower(), n))


def class_members(cls: type) -> list[str]:
    """Public methods and properties that `cls` itself defines (not inherited ones)."""
    if (issubclass(cls, Function) and cls is not Function) or dataclasses.is_dataclass(cls):
        extra = [n for n, v in vars(cls).items() if not n.startswith("_") and callable(v) and n not in (
            "forward", "backward")] if dataclasses.is_dataclass(cls) else []
        return extra
    return [n for n, v in vars(cls).items()
            if not n.startswith("_") and (callable(v) or isinstance(v, (property, staticmethod, classmethod)))]


# ---- one line per entry ---------------------------------------------------------------------------------


def _default_text(value: Any) -> str:
    if isinstance(value, type):
        return f"np.{value.__name__}" if issubclass(value, np.generic) else value.__name__
    if isinstance(value, float) and value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:g}"
    return repr(value)


def signature(obj: Any, drop_first: bool = False) -> str:
    """`(a, b=1, *rest, key=None)` without annotations."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return ""
    params = list(sig.parameters.values())[1 if drop_first else 0:]
    parts, star_done = [], False
    for p in params:
        if p.kind is p.KEYWORD_ONLY and not star_done:
            parts.append("*")
        star_done = star_done or p.kind in (p.VAR_POSITIONAL, p.KEYWORD_ONLY)
        prefix = "*" if p.kind is p.VAR_POSITIONAL else "**" if p.kind is p.VAR_KEYWORD else ""
        default = "" if p.default is p.empty else f"={_default_text(p.default)}"
        parts.append(f"{prefix}{p.name}{default}")
    return f"({', '.join(parts)})"


def summary(obj: Any) -> str:
    """The first paragraph of the object's own docstring (not one inherited, nor a dataclass's generated one)."""
    doc = getattr(obj, "__doc__", None)
    if inspect.isclass(obj) and doc is not None and (any(doc is b.__doc__ for b in obj.__mro__[1:])
                                                     or doc.startswith(obj.__name__ + "(")):
        doc = None
    if not doc:
        return ""
    return " ".join(inspect.cleandoc(doc).split("\n\n")[0].split())


def entry(qualified: str, obj: Any, indent: str = "") -> str:
    """One bullet: `name(signature)`: summary."""
    if not (callable(obj) or isinstance(obj, property)):
        return f"{indent}- `{qualified} = {obj!r}`"
    if inspect.isclass(obj) and issubclass(obj, Function) and obj is not Function:
        code = f"{qualified}.apply{signature(obj.forward, drop_first=True)}"
    elif obj is Function:
        code = qualified
    elif inspect.isclass(obj):
        code = f"{qualified}{signature(obj)}"
    elif isinstance(obj, property) or not callable(obj):
        code = qualified
    else:
        code = f"{qualified}{signature(obj)}"
    text = summary(obj.fget if isinstance(obj, property) else obj)
    return f"{indent}- `{code}`" + (f": {text}" if text else "")


def member_entry(cls: type, qualified: str, name: str) -> str:
    raw = inspect.getattr_static(cls, name)
    if isinstance(raw, (staticmethod, classmethod)):
        return entry(f"{qualified}.{name}", getattr(cls, name), "  ")
    if isinstance(raw, property):
        return entry(f"{qualified}.{name}", raw, "  ")
    method_line = entry(f"{qualified}.{name}", raw, "  ")
    own = signature(raw, drop_first=True)
    return method_line.replace(f"{qualified}.{name}{signature(raw)}", f"{qualified}.{name}{own}", 1)


def tensor_entry(name: str) -> str:
    raw = inspect.getattr_static(Tensor, name)
    qualified = f"Tensor.{name}"
    if isinstance(raw, (property, type(Tensor.data))):  # properties and __slots__ members
        note = TENSOR_NOTES.get(name) or summary(raw.fget if isinstance(raw, property) else raw)
        return f"- `{qualified}`" + (f": {note}" if note else "")
    if isinstance(raw, staticmethod):
        return entry(qualified, getattr(Tensor, name))
    line = entry(qualified, raw)
    return line.replace(f"{qualified}{signature(raw)}", f"{qualified}{signature(raw, drop_first=True)}", 1)


def _home(module: ModuleType, name: str) -> bool:
    """Whether `module` defines `name` or exports it on purpose (not an import for its own use)."""
    obj = getattr(module, name)
    return getattr(obj, "__module__", None) == module.__name__ or name in getattr(module, "__all__", []) \
        or name in _reexported(module)


def render() -> str:
    lines = [
        "# API reference",
        "",
        "Every public function and class, one line each: the call and the first line of its docstring.",
        "Generated from the code by `python tests/test_api_doc.py`; `tests/test_api_doc.py` fails when this",
        "page and the code disagree. Shapes follow the docstrings: B batch, T time, C channels, nh heads,",
        "hs head size, N rows. For the ideas behind them, start with the [tour](tour.md).",
        "",
    ]
    for module_name, listed, elsewhere in sections():
        module = importlib.import_module(module_name)
        lines.append(f"## `{module_name}`")
        lines.append("")
        doc = summary(module)
        if doc:
            lines += [doc, ""]
        if module_name == "tinygrad_lite":
            listed = [n for n in listed if n != "Tensor"]
            lines.append(entry("Tensor", Tensor) + " Its members are listed [below](#tensor).")
        for n in listed:
            obj = getattr(module, n)
            lines.append(entry(n, obj))
            if inspect.isclass(obj):
                lines += [member_entry(obj, n, m) for m in class_members(obj)]
        elsewhere = [(n, where) for n, where in elsewhere if _home(module, n)]
        if elsewhere:
            refs = ", ".join(f"`{n}` ({where})" for n, where in elsewhere)
            lines.append(f"- Also exported here, listed above: {refs}.")
        lines.append("")
        if module_name == "tinygrad_lite":
            lines += render_tensor()
    return "\n".join(lines).rstrip("\n") + "\n"


def render_tensor() -> list[str]:
    lines = ["## `Tensor`", "", summary(Tensor), ""]
    lines += [tensor_entry(n) for n in tensor_members()]
    ops = ", ".join(f"`{symbol}`" for symbol, dunder in OPERATORS)
    lines += [f"- Operators: {ops} (with numbers and arrays on either side, as in numpy).", ""]
    return lines


# ---- reading the page back ------------------------------------------------------------------------------

ENTRY = re.compile(r"^\s*- `([A-Za-z_][\w.]*)")


def listed_on_page(text: str) -> list[tuple[str, str]]:
    """(section module, dotted name) for every bullet of the page."""
    found, section = [], None
    for line in text.split("\n"):
        heading = re.match(r"^## `([\w.]+)`", line)
        if heading:
            section = heading.group(1)
            continue
        m = ENTRY.match(line)
        if m and section is not None:
            found.append((section, m.group(1)))
    return found


def resolve(section: str, dotted: str) -> Any:
    """The object a bullet names, or raise AttributeError."""
    parts = dotted.split(".")
    if parts[-1] == "apply":  # `Linear.apply(...)` of a Function class
        parts = parts[:-1]
    obj: Any = Tensor if section == "Tensor" else importlib.import_module(section)
    for p in parts[1:] if section == "Tensor" else parts:
        obj = inspect.getattr_static(obj, p) if inspect.isclass(obj) else getattr(obj, p)
    return obj


# ---- tests ----------------------------------------------------------------------------------------------


def test_api_page_is_current() -> None:
    page, generated = API_PAGE.read_text(), render()
    diff = "".join(difflib.unified_diff(page.splitlines(True), generated.splitlines(True), "docs/api.md", "code"))
    assert page == generated, f"docs/api.md is stale: run `python tests/test_api_doc.py`\n{diff[:3000]}"


def test_every_public_name_is_on_the_page() -> None:
    text = API_PAGE.read_text()
    on_page = {part for _, name in listed_on_page(text) for part in name.split(".")} | set(re.findall(r"`(\w+)`", text))
    missing = []
    for module_name in module_names():
        module = importlib.import_module(module_name)
        missing += [f"{module_name}.{n}" for n in exported(module) if n not in on_page]
    missing += [f"Tensor.{n}" for n in tensor_members() if n not in on_page]
    assert not missing, f"public names missing from docs/api.md: {missing}"


def test_every_name_on_the_page_exists() -> None:
    broken = []
    for section, name in listed_on_page(API_PAGE.read_text()):
        try:
            resolve(section, name)
        except AttributeError:
            broken.append(f"{section}: {name}")
    assert not broken, f"docs/api.md lists names that are not in the code: {broken}"


def test_the_required_modules_have_sections() -> None:
    text = API_PAGE.read_text()
    for module in ("tinygrad_lite", "Tensor", "tinygrad_lite.nn", "tinygrad_lite.nn.functional", "tinygrad_lite.optim",
                   "tinygrad_lite.datasets", "tinygrad_lite.io", "tinygrad_lite.viz", "models.mlp", "models.gpt"):
        assert f"## `{module}`" in text, f"docs/api.md has no section for {module}"


def test_tensor_notes_and_operators_exist() -> None:
    assert all(hasattr(Tensor, n) for n in TENSOR_NOTES), [n for n in TENSOR_NOTES if not hasattr(Tensor, n)]
    assert all(hasattr(Tensor, dunder) for _, dunder in OPERATORS)


if __name__ == "__main__":
    API_PAGE.write_text(render())
    print(f"wrote {API_PAGE.relative_to(REPO)} ({len(listed_on_page(API_PAGE.read_text()))} entries)")
