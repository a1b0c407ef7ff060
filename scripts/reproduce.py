"""Regenerate every figure the README and docs/ quote, into docs/results.md (and the pictures into docs/img/).

    python scripts/reproduce.py                       # everything: about 80 minutes on 2 cores
    python scripts/reproduce.py --only gpt bench-gpt  # some figures (the others keep their last results)
    python scripts/reproduce.py --list                # the figures and their commands
    python scripts/reproduce.py --quick               # every command with small settings, in a scratch folder

Run it from the repository's root with the virtual environment active (`source .venv/bin/activate`), and
with TINYGRAD_LITE_DATA naming a folder that holds mnist/ (or with the network, to download MNIST once).
Each figure is one command exactly as the README prints it; the script runs it, keeps the numbers named by
`grab` and the lines matched by `quote`, and records the wall time and the command's peak memory. The results
live in docs/results.json, one entry per figure with the commit and machine it ran on, and are rendered into
docs/results.md. `--quick` appends each figure's small settings (argparse takes the last value of an option),
runs in a scratch folder that links to examples/, benchmarks/ and tests/, and writes its results there: the
test suite runs it to keep every command of the README working.

A new figure is one more `Figure(...)` line in FIGURES.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path("docs/results.json")  # relative to the folder the commands run in
CODE = ("tinygrad_lite", "models", "examples", "benchmarks", "scripts", "pyproject.toml")  # what the figures run
LINKED = ("examples", "benchmarks", "tests")  # what a --quick scratch folder links to; what it writes is its own


@dataclass
class Figure:
    """One command of the README and what to keep of its output.

    `outputs` is appended to the command to put its pictures and files where the docs show them. `grab` maps
    a label to a regex whose first group is the number (or text) quoted; with `runs` > 1 the command runs that
    many times and each number is given as the median with its range. `quote` keeps the output lines it
    matches ("" keeps them all). `speed`: the figure depends on the machine's speed. `quick` is appended for
    a smoke run; `needs` names figures whose outputs it reads; `data` names the real data it reads
    ("mnist"), which the tests provide or skip without.
    """

    name: str
    what: str
    command: str
    outputs: str = ""
    quick: str = ""
    grab: dict[str, str] = field(default_factory=dict)
    quote: str | None = None
    runs: int = 1
    speed: bool = False
    needs: tuple[str, ...] = ()
    data: str | None = None


MNIST = "OPENBLAS_NUM_THREADS=1 python examples/train_mnist.py"
MNIST_GRAB = {"test accuracy at the last epoch (%)": r"^test accuracy: ([\d.]+)%",
              "best-validation epoch": r"^best validation epoch (\d+):",
              "test accuracy at that epoch (%)": r"^best validation epoch \d+: .* test ([\d.]+)%",
              "training time (s)": r"^training took ([\d.]+) s"}
GPT_GRAB = {"val loss (whole validation split)": r"^val loss: ([\d.]+)", "steps": r"^trained (\d+) steps",
            "training time (min)": r"^trained \d+ steps in ([\d.]+) min"}
TINY_GPT = "--n-layer 1 --n-head 2 --n-embd 16 --batch-size 4"  # --quick checks the commands, not their figures
GPT_QUICK = f"{TINY_GPT} --max-iters 3 --eval-interval 3 --eval-iters 1 --sample-tokens 20 --no-progress"
BENCH_GPT_GRAB = {}
for model in ("4L/4H/128", "6L/6H/192"):
    BENCH_GPT_GRAB |= {f"{model} ratio to PyTorch": rf"^{model},.*? ([\d.]+)x",
                       f"{model} tinygrad_lite ms": rf"^{model},.*? ([\d.]+) ms",
                       f"{model} PyTorch ms": rf"^{model},.*? ms +([\d.]+) ms"}
BENCH_MLP_GRAB = {f"{impl} (s per epoch)": rf"^  {re.escape(impl)} +([\d.]+) s" for impl in
                  ("numpy (hand-written)", "tinygrad_lite", "pytorch")}
BENCH_MLP_GRAB["tinygrad_lite / numpy"] = r"^  tinygrad_lite .* ([\d.]+)x numpy"
BENCH_MLP_GRAB["tinygrad_lite / pytorch"] = r"^  tinygrad_lite .* ([\d.]+)x pytorch"
GRADCHECK = "python examples/gradcheck_experiments.py"
ATTENTION_QUICK = (f"{TINY_GPT} --steps 4 --eval-interval 2 --eval-windows 4 --final-windows 4 --sample-chars 10 "
                   "--variants dot/causal,dot/anti_causal")

CNN_QUICK = "--epochs 1 --train-size 300"
LADDER = {"nielsen-1conv": 15, "nielsen-2conv": 15, "nielsen-relu": 15, "nielsen-expanded": 3, "nielsen-dropout": 3}
BENCH_CNN_QUICK = "--runs 1 --steps 1 --warmup 0 --skip-scaling"
BENCH_CNN_GRAB = {"tinygrad_lite ms": r"^tinygrad_lite +([\d.]+)", "PyTorch ms": r"^PyTorch +([\d.]+)",
                  "ratio to PyTorch": r"^ratio: median ([\d.]+)x"}

FIGURES = [
    Figure("mnist-classic", "Nielsen's network ([784, 30, 10] sigmoid, quadratic cost, SGD 3.0, batch 10, 30 epochs)",
           f"{MNIST} --classic", quick="--epochs 1", grab=MNIST_GRAB, data="mnist"),
    Figure("mnist-modern", "the modern MLP ([784, 512, 512, 10] ReLU, dropout 0.2, Adam + cosine, 10 epochs)",
           MNIST, "--plot docs/img/mnist_modern.png", "--epochs 1 --hidden 32", MNIST_GRAB, data="mnist"),
    Figure("gpt-first-look", "the main job cut to 3 minutes", "python examples/train_gpt.py --max-minutes 3",
           quick=GPT_QUICK, grab=GPT_GRAB, speed=True),
    Figure("gpt", "the main job: the character GPT, 20 minutes, the cosine following the clock",
           "python examples/train_gpt.py", "--plot docs/img/gpt_loss.png --log out/gpt_log.jsonl", GPT_QUICK,
           GPT_GRAB, speed=True),
    Figure("gpt-torch", "the main job's model and recipe in PyTorch, the same 20 minutes",
           "python benchmarks/train_gpt_torch.py", "--log out/torch_log.jsonl", GPT_QUICK, GPT_GRAB, speed=True),
    Figure("time-to-quality", "how long each took to reach val 1.60",
           "python benchmarks/time_to_quality.py out/gpt_log.jsonl out/torch_log.jsonl",
           grab={"minutes to 1.60, tinygrad_lite": r"^tinygrad_lite .* ([\d.]+|not reached)$",
                 "minutes to 1.60, PyTorch": r"^PyTorch .* ([\d.]+|not reached)$"},
           quote=r"", needs=("gpt", "gpt-torch"), speed=True),
    Figure("gpt-sample", "a sample of the main job's checkpoint",
           'python examples/sample_gpt.py --prompt "ROMEO:" --tokens 300 --temperature 0.8 --top-k 40 --seed 1',
           quick="--tokens 20", quote="", needs=("gpt",)),
    Figure("bench-gpt", "one GPT training step against PyTorch (6 runs)", "python benchmarks/bench_gpt.py",
           quick="--steps 1 --warmup 0 --skip-scaling", grab=BENCH_GPT_GRAB, quote=r"^ +(64|128|256) ", runs=6,
           speed=True),
    Figure("bench-plain-loop", "a user's own training loop against PyTorch, separate processes, 2 threads",
           "python benchmarks/bench_plain_loop.py --profile", quick="--runs 1 --steps 1 --warmup 0",
           grab={f"{model} ratio to PyTorch": rf"^{re.escape(text)} .*? ([\d.]+)x " for model, text in
                 (("GPT 4L", "GPT 4L/4H/128, block 64, batch 12"), ("GPT 6L", "GPT 6L/6H/192, block 128, batch 16"),
                  ("MLP", "MNIST MLP 784-512-512-10, batch 128"))},
           quote="", speed=True),
    Figure("bench-threads", "when a second thread pays: the engine's split work on one thread and on two",
           "python benchmarks/bench_threads.py", quick="--rounds 1", quote="", speed=True),
    Figure("bench-few-rows", "a few rows times a Linear's weight, three ways (why perf.matmul turns it around)",
           "python benchmarks/bench_few_rows.py", quick="--rounds 1", quote="", speed=True),
    Figure("bench-mlp", "one epoch of the modern MLP, 2 threads", "python benchmarks/bench_mlp.py --runs 5",
           quick="--runs 1 --steps 5 --threads 1", grab=BENCH_MLP_GRAB, speed=True),
    Figure("bench-mlp-1-thread", "one epoch of the modern MLP, 1 thread each",
           "OPENBLAS_NUM_THREADS=1 python benchmarks/bench_mlp.py --threads 1 --runs 5", quick="--runs 1 --steps 5",
           grab=BENCH_MLP_GRAB, speed=True),
    Figure("gradcheck-eps", "finite-difference error against eps", f"{GRADCHECK} eps", quote=r"measured optimum"),
    Figure("gradcheck-order", "central and forward differences", f"{GRADCHECK} order", quote=r"median truncation"),
    Figure("gradcheck-kinks", "gradcheck at kinks", f"{GRADCHECK} kinks", quote=r"(pass|FAIL) "),
    Figure("gradcheck-models", "check_model on whole models", f"{GRADCHECK} models", quote=r"(pass|FAIL)$"),
    Figure("gradcheck-bug", "a planted softmax-backward bug", f"{GRADCHECK} bug", quote=r"FAIL|reported"),
    Figure("gradcheck-attention", "the gradient reaching q, scaled and unscaled", f"{GRADCHECK} attention",
           quote=r"^ +\d+ +\d|^scores|changes by"),
    Figure("mnist-cnn", "the default CNN (two conv blocks with batch norm, 8 epochs of Adam, shifted images)",
           f"{MNIST} --model cnn --plot mnist_cnn.png", "--plot docs/img/cnn_mnist.png", CNN_QUICK, MNIST_GRAB,
           speed=True, data="mnist"),
    *(Figure(f"mnist-{name}", f"Nielsen's chapter-6 network {name}, {epochs} epochs",
             f"{MNIST} --model {name} --epochs {epochs}", quick=CNN_QUICK, grab=MNIST_GRAB, speed=True, data="mnist")
      for name, epochs in LADDER.items()),
    Figure("cnn-pictures", "the default CNN's first-layer filters and one digit's feature maps",
           "python examples/cnn_pictures.py --checkpoint checkpoints/mnist_cnn.npz",
           "--filters docs/img/cnn_filters.png --features docs/img/cnn_features.png", needs=("mnist-cnn",),
           quote=r"^wrote", data="mnist"),
    Figure("cnn-pictures-nielsen", "nielsen-1conv's learned filters",
           "python examples/cnn_pictures.py --checkpoint checkpoints/mnist_nielsen-1conv.npz --filters "
           "nielsen_filters.png", "--filters docs/img/cnn_filters_nielsen.png --features nielsen_features.png",
           needs=("mnist-nielsen-1conv",), quote=r"^wrote", data="mnist"),
    Figure("bench-cnn", "one training step of the default CNN against PyTorch, 2 threads",
           "python benchmarks/bench_cnn.py", quick=BENCH_CNN_QUICK, grab=BENCH_CNN_GRAB,
           quote=r"^ +(16|32|64|128|256) ", speed=True),
    Figure("bench-cnn-passive", "the same, PyTorch's OpenMP threads sleeping instead of spinning",
           "OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_cnn.py", quick=BENCH_CNN_QUICK, grab=BENCH_CNN_GRAB,
           speed=True),
    Figure("bench-cnn-1-thread", "the same, 1 thread each", "python benchmarks/bench_cnn.py --threads 1",
           quick=BENCH_CNN_QUICK, grab=BENCH_CNN_GRAB, speed=True),
    Figure("bench-cnn-profile", "where the engine's CNN step goes, op by op",
           "python benchmarks/bench_cnn.py --profile --threads 1", quick="--steps 1 --warmup 0", quote=r"%",
           speed=True),
    Figure("picture-cnn", "the default CNN at depth 2",
           "python examples/draw_graph.py cnn --depth 2 -o docs/img/cnn_depth2.svg"),
    Figure("cnn-trace", "the shape trace of nielsen-2conv",
           "python examples/draw_graph.py cnn --config nielsen-2conv --trace", quote=r"^(\(model\)|conv|fc|pool)"),
    Figure("gradcheck-hessian", "the Hessian of cross-entropy by double backward", f"{GRADCHECK} hessian",
           quote=r"^ *(uniform|random|confident|two-way)"),
    Figure("gradcheck-sharpness", "the top Hessian eigenvalue along gradient descent", f"{GRADCHECK} sharpness",
           quick="--sharpness-steps 4", quote=r"^  η = ", data="mnist"),
    Figure("gradcheck-newton", "Newton's method against gradient descent", f"{GRADCHECK} newton",
           quick="--newton-images 100", quote=r"^ *(newton|gradient descent)", speed=True, data="mnist"),
    Figure("gradcheck-gradgradcheck", "every op's double-backward error", f"{GRADCHECK} gradgradcheck",
           quote=r"ops pass"),
    Figure("gpt-bpe", "the char GPT's recipe on BPE tokens",
           "python examples/train_gpt.py --tokenizer bpe --vocab-size 512", quick=f"{GPT_QUICK} --vocab-size 260",
           grab=GPT_GRAB, speed=True),
    Figure("bench-generate", "generation tokens/s of a GPT-2-small-shaped model against transformers",
           "python benchmarks/bench_generate.py", quick="--rounds 1 --tokens 2 --prompt-len 2 --skip-no-cache",
           quote=r"tokens/s|\dx |same tokens", speed=True),
    Figure("attention", "the attention sweep: 9 variants x 800 steps", "python examples/attention_experiments.py",
           "--out docs/results/attention --plot docs/img/attention_variants.png", ATTENTION_QUICK,
           {"sweep time (min)": r"\(([\d.]+) min\)$"}, quote=r"^\| `", speed=True),
    Figure("attention-replot", "the attention figure redrawn from the sweep's saved results, with no training",
           "python examples/attention_experiments.py --replot --out docs/results/attention "
           "--plot docs/img/attention_variants.png", needs=("attention",)),
    Figure("attention-quick", "the attention sweep's smoke run", "python examples/attention_experiments.py --quick",
           quick=f"--variants dot/causal {TINY_GPT}", grab={"sweep time (min)": r"\(([\d.]+) min\)$"}, speed=True),
    Figure("picture-expr", "micrograd's neuron", "python examples/draw_graph.py expr --grads -o docs/img/expr.svg"),
    Figure("picture-mlp", "the MNIST MLP", "python examples/draw_graph.py mlp -o docs/img/mlp.svg"),
    Figure("picture-gpt", "the GPT at depth 1",
           "python examples/draw_graph.py gpt --depth 1 -o docs/img/gpt_depth1.svg"),
    Figure("gpt-trace", "the GPT's shape trace", "python examples/draw_graph.py gpt --trace", quote=r"^\(model\)"),
    Figure("doc-pictures", "the pictures the docs' own snippets draw", "python tests/test_docs.py",
           quick="--into docs/img", quote=r"^wrote", data="mnist"),
]


# ---- running --------------------------------------------------------------------------------------------------


@dataclass
class Run:
    output: list[str]
    seconds: float
    peak_mib: float


def run_command(command: str, cwd: Path) -> Run:
    """Run `command` with bash in `cwd`, `python` being this interpreter; echo and keep its standard output."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               PYTHONUNBUFFERED="1")
    print(f"$ {command}", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen(["bash", "-c", command], cwd=cwd, env=env, stdout=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stdout:
        print(line, end="", flush=True)
        lines.append(line.rstrip("\n"))
    _, status, usage = os.wait4(proc.pid, 0)  # the child's own peak memory, which Popen.wait does not give
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"error: `{command}` failed with exit status {proc.returncode}")
    return Run(lines, seconds, usage.ru_maxrss / 1024)


def grab(figure: Figure, output: list[str]) -> dict[str, str]:
    """The numbers `figure.grab` names, from the last line each pattern matches."""
    found = {}
    for label, pattern in figure.grab.items():
        matches = [m.group(1) for line in output if (m := re.search(pattern, line))]
        if not matches:
            raise SystemExit(f"error: figure {figure.name}: no line of the output matches {pattern!r} ({label})")
        found[label] = matches[-1]
    return found


def median_text(values: list[str]) -> str:
    """`1.16 (1.11 to 1.23, 6 runs)` for numbers; a single value as it is."""
    if len(values) == 1:
        return values[0]
    try:
        numbers = [float(v) for v in values]
    except ValueError:
        return " / ".join(values)
    digits = max(len(v.partition(".")[2]) for v in values)
    return f"{statistics.median(numbers):.{digits}f} ({min(numbers):.{digits}f} to {max(numbers):.{digits}f}, " \
           f"{len(values)} runs)"


def measure(figure: Figure, cwd: Path, quick: bool) -> dict:
    """Run the figure's command (`runs` times; once when quick) and return its results entry."""
    command = " ".join(part for part in (figure.command, figure.outputs, figure.quick if quick else "") if part)
    runs = [run_command(command, cwd) for _ in range(1 if quick else figure.runs)]
    grabbed = [grab(figure, r.output) for r in runs]
    quoted = [] if figure.quote is None else [line for line in runs[-1].output if re.search(figure.quote, line)]
    return {"what": figure.what, "command": command, "speed": figure.speed, "quick": quick,
            "numbers": {label: median_text([g[label] for g in grabbed]) for label in figure.grab},
            "quote": quoted, "seconds": [round(r.seconds, 1) for r in runs],
            "peak_mib": round(max(r.peak_mib for r in runs)), **provenance()}


def provenance() -> dict:
    """Which code and machine a figure came from."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else "unknown"

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    versions = {}
    for package in ("numpy", "torch"):  # not imported: a child forked from a big parent reports its peak memory
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    changed = git("status", "--porcelain", "--", *CODE)
    return {"commit": git("rev-parse", "--short", "HEAD") + (" + uncommitted changes" if changed else ""),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{os.cpu_count()} cores, {cpu}, load {os.getloadavg()[0]:.1f} at the start",
            "software": f"Python {platform.python_version()}, numpy {versions['numpy']}, torch {versions['torch']}"}


# ---- the results file -----------------------------------------------------------------------------------------


def render(results: dict[str, dict]) -> str:
    """docs/results.md: a summary table, then each figure's quoted output."""
    order = [f.name for f in FIGURES if f.name in results] + sorted(set(results) - {f.name for f in FIGURES})
    lines = ["# Results of this version", "",
             "Written by `python scripts/reproduce.py` from docs/results.json: rerun it, do not edit by hand. "
             "Each figure records the commit and machine it ran on; ⏱ marks figures that depend on the machine's "
             "speed (training for a fixed time, benchmarks). Times are wall-clock seconds of the whole command, "
             "memory the command's peak resident set.", "",
             "| figure | command | result | time | peak memory |", "|---|---|---|---|---|"]
    for name in order:
        r = results[name]
        numbers = "; ".join(f"{label}: **{value}**" for label, value in r["numbers"].items()) or "(see below)"
        seconds = " + ".join(f"{s:.0f} s" for s in r["seconds"])
        speed = " ⏱" if r["speed"] else ""
        lines.append(f"| [{name}](#{name}){speed} | `{r['command']}` | {numbers} | {seconds} | {r['peak_mib']} MiB |")
    for name in order:
        r = results[name]
        lines += ["", f"## {name}", "", f"{r['what']}{' (quick: small settings)' if r['quick'] else ''}. "
                  f"Commit {r['commit']}, {r['date']}; {r['machine']}; {r['software']}."]
        if r["quote"]:
            lines += ["", "```text", *r["quote"], "```"]
    return "\n".join(lines) + "\n"


def quick_folder(path: Path | None) -> Path:
    """A scratch folder to run the commands in: links to the scripts, a docs/img/ of its own."""
    folder = Path(tempfile.mkdtemp(prefix="reproduce-")) if path is None else path
    for name in LINKED:
        if not (folder / name).exists():
            (folder / name).symlink_to(REPO / name)
    (folder / "docs" / "img").mkdir(parents=True, exist_ok=True)
    return folder


def selected(names: list[str] | None, with_needs: bool) -> list[Figure]:
    """The figures named (all when None) in FIGURES' order, with the figures they need when `with_needs`."""
    by_name = {f.name: f for f in FIGURES}
    unknown = sorted(set(names or ()) - set(by_name))
    if unknown:
        raise SystemExit(f"error: no figure named {', '.join(unknown)}; `--list` shows them")
    wanted = set(names or by_name)
    while with_needs:
        more = {n for f in FIGURES if f.name in wanted for n in f.needs} - wanted
        if not more:
            break
        wanted |= more
    return [f for f in FIGURES if f.name in wanted]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="+", metavar="NAME",
                   help="these figures only (with --quick, and the figures whose outputs they read)")
    p.add_argument("--quick", action="store_true", help="small settings, in a scratch folder (see above)")
    p.add_argument("--workdir", type=Path, default=None,
                   help="where the commands run (default: the repository; with --quick a new scratch folder)")
    p.add_argument("--list", action="store_true", help="print the figures and their commands, run nothing")
    args = p.parse_args(argv)
    figures = selected(args.only, with_needs=args.quick)
    if args.list:
        for f in figures:
            print(f"{f.name:20s} {f.command}")
        return
    cwd = quick_folder(args.workdir) if args.quick else (args.workdir or REPO)
    store = cwd / RESULTS
    results = json.loads(store.read_text(encoding="utf-8")) if store.is_file() else {}
    t0 = time.perf_counter()
    for figure in figures:
        print(f"\n== {figure.name}: {figure.what}", flush=True)
        results[figure.name] = measure(figure, cwd, args.quick)
        store.parent.mkdir(parents=True, exist_ok=True)
        store.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        (cwd / RESULTS.with_suffix(".md")).write_text(render(results), encoding="utf-8")
    print(f"\nwrote {store.with_suffix('.md')} ({len(figures)} figures, {(time.perf_counter() - t0) / 60:.1f} min)")
    if args.quick and args.workdir is None:
        shutil.rmtree(cwd)
        print("(the scratch folder is removed again: pass --workdir to keep it)")


if __name__ == "__main__":
    main()
