"""docs/api.md lists the whole public API, one line per function or class, and nothing that does not exist.

The page is generated from the code by this file: after changing the API, run

    python tests/test_api_doc.py            # rewrites docs/api.md

and the tests below check that the page is current, that every public name appears on it, and that
every name it lists exists. A module's public names are its `__all__`, the functions and classes it
defines (names without a leading underscore), and the names it re-exports (imported with
`# noqa: F401`, ruff's mark for an import kept for others). Each object is listed once, in the first
section that exports it; the other sections that export it point there. The Function classes in
`tinygrad_lite/ops/` are left out: they are the Tensor methods' implementation, listed as those methods.

Each section is a table: the call, the first paragraph of its docstring, and how it compares with PyTorch
(same / differs / not in PyTorch), from the table in tests/api_pytorch.py; every public name needs one.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
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

sys.path.insert(0, str(REPO / "tests"))
from api_pytorch import PENDING_CORE, PYTORCH  # noqa: E402

API_PAGE = REPO / "docs" / "api.md"
PACKAGES = ("tinygrad_lite", "models")
FIRST = ["tinygrad_lite", "tinygrad_lite.nn", "tinygrad_lite.nn.functional", "tinygrad_lite.nn.init",
         "tinygrad_lite.nn.utils", "tinygrad_lite.nn.attention", "tinygrad_lite.optim",
         "tinygrad_lite.optim.lr_scheduler", "tinygrad_lite.data", "tinygrad_lite.datasets", "tinygrad_lite.random",
         "tinygrad_lite.io", "tinygrad_lite.gradcheck", "tinygrad_lite.viz"]
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


def entry(qualified: str, obj: Any) -> tuple[str, str]:
    """(`name(signature)`, summary) of one entry."""
    if not (callable(obj) or isinstance(obj, property)):
        return f"{qualified} = {obj!r}", ""
    if inspect.isclass(obj) and issubclass(obj, Function) and obj is not Function:
        code = f"{qualified}.apply{signature(obj.forward, drop_first=True)}"
    elif obj is Function or isinstance(obj, property) or not callable(obj):
        code = qualified
    else:
        code = f"{qualified}{signature(obj)}"
    return code, summary(obj.fget if isinstance(obj, property) else obj)


def member_entry(cls: type, qualified: str, name: str) -> tuple[str, str]:
    raw = inspect.getattr_static(cls, name)
    if isinstance(raw, (staticmethod, classmethod)):
        return entry(f"{qualified}.{name}", getattr(cls, name))
    if isinstance(raw, property):
        return entry(f"{qualified}.{name}", raw)
    code, text = entry(f"{qualified}.{name}", raw)
    return f"{qualified}.{name}{signature(raw, drop_first=True)}", text


def tensor_entry(name: str) -> tuple[str, str]:
    raw = inspect.getattr_static(Tensor, name)
    qualified = f"Tensor.{name}"
    if isinstance(raw, (property, type(Tensor.data))):  # properties and __slots__ members
        return qualified, TENSOR_NOTES.get(name) or summary(raw.fget if isinstance(raw, property) else raw)
    if isinstance(raw, staticmethod):
        return entry(qualified, getattr(Tensor, name))
    return f"{qualified}{signature(raw, drop_first=True)}", entry(qualified, raw)[1]


# ---- the PyTorch column -----------------------------------------------------------------------------------


def status_key(section: str, name: str) -> str:
    """The key of an entry in tests/api_pytorch.py: its dotted name without the `tinygrad_lite.` prefix."""
    if section == "Tensor":
        return name
    prefix = section.removeprefix("tinygrad_lite").lstrip(".")
    return f"{prefix}.{name}" if prefix else name


def pytorch_status(key: str) -> str | None:
    """The entry's status: its own key, else the first pattern that matches it."""
    table = {**PYTORCH, **PENDING_CORE}
    if key in table:
        return table[key]
    return next((v for k, v in PYTORCH.items() if "*" in k and fnmatch.fnmatchcase(key, k)), None)


def row(code: str, text: str, status: str | None) -> str:
    cells = [f"`{code}`" if code else "", text, status or "MISSING: add it to tests/api_pytorch.py"]
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


TABLE_HEAD = ["| call | what it does | PyTorch |", "|---|---|---|"]


def entry_name(code: str) -> str:
    return re.match(r"[A-Za-z_][\w.]*", code).group(0)


def _home(module: ModuleType, name: str) -> bool:
    """Whether `module` defines `name` or exports it on purpose (not an import for its own use)."""
    obj = getattr(module, name)
    return getattr(obj, "__module__", None) == module.__name__ or name in getattr(module, "__all__", []) \
        or name in _reexported(module)


def render() -> str:
    lines = [
        "# API reference",
        "",
        "Every public function and class, one row each: the call, the first paragraph of its docstring, and how it",
        "compares with PyTorch: **same** (name, signature as far as it goes, semantics), **differs** (how, and why)",
        "or **not in PyTorch**. Generated from the code by `python tests/test_api_doc.py` (the PyTorch column from",
        "`tests/api_pytorch.py`); `tests/test_api_doc.py` fails when this page and the code disagree. Shapes follow",
        "the docstrings: B batch, T time, C channels, nh heads, hs head size, N rows. For the ideas behind them,",
        "start with the [tour](tour.md).",
        "",
    ]
    for module_name, listed, elsewhere in sections():
        module = importlib.import_module(module_name)
        lines.append(f"## `{module_name}`")
        lines.append("")
        doc = summary(module)
        if doc:
            lines += [doc, ""]
        rows = []
        if module_name == "tinygrad_lite":
            listed = [n for n in listed if n != "Tensor"]
            code, text = entry("Tensor", Tensor)
            rows.append(row(code, text + " Its members are listed [below](#tensor).", pytorch_status("Tensor")))
        for n in listed:
            obj = getattr(module, n)
            parts = [entry(n, obj)]
            if inspect.isclass(obj):
                parts += [member_entry(obj, n, m) for m in class_members(obj)]
            rows += [row(code, text, pytorch_status(status_key(module_name, entry_name(code)))) for code, text in parts]
        if rows:
            lines += TABLE_HEAD + rows + [""]
        elsewhere = [(n, where) for n, where in elsewhere if _home(module, n)]
        if elsewhere:
            refs = ", ".join(f"`{n}` ({where})" for n, where in elsewhere)
            lines += [f"Also exported here, listed above: {refs}.", ""]
        if module_name == "tinygrad_lite":
            lines += render_tensor()
    return "\n".join(lines).rstrip("\n") + "\n"


def render_tensor() -> list[str]:
    lines = ["## `Tensor`", "", summary(Tensor), ""] + TABLE_HEAD
    for n in tensor_members():
        code, text = tensor_entry(n)
        lines.append(row(code, text, pytorch_status(f"Tensor.{n}")))
    ops = ", ".join(f"`{symbol}`" for symbol, dunder in OPERATORS)
    lines += [row("", f"Operators: {ops} (with numbers and arrays on either side, as in numpy).",
                  pytorch_status("Tensor operators")), ""]
    return lines


# ---- reading the page back ------------------------------------------------------------------------------

ENTRY = re.compile(r"^\| `([A-Za-z_][\w.]*)")


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


def page_keys() -> list[str]:
    """The PyTorch-table key of every entry of the page, and of the operators row."""
    return [status_key(section, name) for section, name in listed_on_page(render())] + ["Tensor operators"]


def test_every_public_name_has_a_pytorch_status() -> None:
    missing = [key for key in page_keys() if pytorch_status(key) is None]
    assert not missing, f"names without a PyTorch status (add them to tests/api_pytorch.py): {missing}"


def test_the_pytorch_table_names_only_what_exists() -> None:
    keys = page_keys()
    stale = [k for k in PYTORCH if "*" not in k and k not in keys]
    stale += [k for k in PYTORCH if "*" in k and not any(fnmatch.fnmatchcase(key, k) for key in keys)]
    assert not stale, f"tests/api_pytorch.py describes names that are not public: {stale}"
    assert not set(PYTORCH) & set(PENDING_CORE)


def test_statuses_say_same_differs_or_not_in_pytorch() -> None:
    bad = {k: v for k, v in {**PYTORCH, **PENDING_CORE}.items()
           if not re.match(r"(same|differs|not in PyTorch)\b", v)}
    assert not bad, f"a status starts with 'same', 'differs' or 'not in PyTorch': {bad}"


if __name__ == "__main__":
    API_PAGE.write_text(render())
    print(f"wrote {API_PAGE.relative_to(REPO)} ({len(listed_on_page(API_PAGE.read_text()))} entries)")
