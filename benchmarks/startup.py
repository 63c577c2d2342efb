"""How long ``nash --help`` and a TAB completion take, as a ratio to importing Typer and Rich.

    python benchmarks/startup.py                 # table and verdict
    python benchmarks/startup.py --json          # one JSON object on stdout
    python benchmarks/startup.py --runs 31
    python benchmarks/startup.py --what-if      # + nash --help with Typer's plain help pages

Shell completion runs ``nash`` on every TAB, so its start-up time is felt directly. A CLI built
on Typer and Rich cannot start faster than those two import, so the reference is
``python -c "import typer, rich"`` measured in the same run; the target is ``nash --help`` within
2x of it. Each command runs ``--runs`` times as a fresh process, interleaved round by round (the
order rotates each round) so that load from other processes hits all of them alike, after
``--warmup`` untimed rounds; each figure is the median wall time. JSON fields:

  runs, warmup      timed and untimed rounds
  median_ms         command label -> median wall time, ms
  min_ms            command label -> fastest run, ms
  ratio             label -> median / median of the reference
  target_ratio      2.0; ok: whether ``nash --help`` meets it
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REFERENCE = "python -c 'import typer, rich'"
HELP = "nash --help"
TARGET_RATIO = 2.0


def nash_executable() -> str:
    """The ``nash`` console script of this interpreter's environment, else the one on PATH."""
    beside = Path(sys.executable).parent / "nash"
    if beside.exists():
        return str(beside)
    found = shutil.which("nash")
    if found is None:
        raise SystemExit("startup: no `nash` console script found (pip install -e .)")
    return found


PLAIN_HELP = (
    "import sys; sys.argv = ['nash', '--help']; from nashcli.cli import app; "
    "app.rich_markup_mode = None; app()"
)


def commands(what_if: bool = False) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Label -> (argv, extra environment). ``what_if`` adds ``nash --help`` rendered by Typer
    without Rich (``rich_markup_mode=None``): what the Rich help pages cost."""
    nash = nash_executable()
    tab = {"_NASH_COMPLETE": "complete_bash", "COMP_WORDS": "nash ", "COMP_CWORD": "1"}
    options_tab = {**tab, "COMP_WORDS": "nash similar --", "COMP_CWORD": "2"}
    extra = {"what if: nash --help, plain help": ([sys.executable, "-c", PLAIN_HELP], {})}
    return {
        REFERENCE: ([sys.executable, "-c", "import typer, rich"], {}),
        HELP: ([nash, "--help"], {}),
        "nash index --help": ([nash, "index", "--help"], {}),
        "nash <TAB> (bash completion)": ([nash], tab),
        "nash similar --<TAB>": ([nash], options_tab),
        "python -c pass": ([sys.executable, "-c", "pass"], {}),
        **(extra if what_if else {}),
    }


def time_once(argv: list[str], extra_env: dict[str, str]) -> float:
    env = {**os.environ, **extra_env}
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"startup: {argv} failed: {result.stderr.decode(errors='replace')}")
    return elapsed


def measure(runs: int, warmup: int, what_if: bool = False) -> dict:
    cmds = commands(what_if)
    labels = list(cmds)
    times: dict[str, list[float]] = {label: [] for label in labels}
    for round_no in range(warmup + runs):
        shift = round_no % len(labels)
        for label in labels[shift:] + labels[:shift]:
            elapsed = time_once(*cmds[label])
            if round_no >= warmup:
                times[label].append(elapsed)
    median_ms = {label: statistics.median(t) * 1000 for label, t in times.items()}
    reference = median_ms[REFERENCE]
    ratio = {label: ms / reference for label, ms in median_ms.items()}
    return {
        "runs": runs,
        "warmup": warmup,
        "python": sys.version.split()[0],
        "median_ms": {label: round(ms, 1) for label, ms in median_ms.items()},
        "min_ms": {label: round(min(t) * 1000, 1) for label, t in times.items()},
        "ratio": {label: round(r, 2) for label, r in ratio.items()},
        "target_ratio": TARGET_RATIO,
        "ok": ratio[HELP] <= TARGET_RATIO,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=21, help="timed runs per command (>= 15)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--what-if", action="store_true", help="also time nash --help without Rich help pages"
    )
    args = parser.parse_args(argv)
    if args.runs < 15:
        parser.error("--runs must be at least 15 (medians of fewer runs are too noisy)")
    report = measure(args.runs, args.warmup, args.what_if)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    width = max(map(len, report["median_ms"]))
    print(f"{'command':<{width}}  median ms  min ms  x reference")
    for label, ms in report["median_ms"].items():
        low, ratio = report["min_ms"][label], report["ratio"][label]
        print(f"{label:<{width}}  {ms:9.1f}  {low:6.1f}  {ratio:5.2f}")
    verdict = "meets" if report["ok"] else "MISSES"
    print(
        f"\n{HELP} takes {report['ratio'][HELP]:.2f}x `{REFERENCE}` "
        f"(median of {args.runs}): {verdict} the target of {TARGET_RATIO:g}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
