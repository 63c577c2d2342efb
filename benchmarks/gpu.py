"""Train times on a CUDA GPU, each as a ratio to the same model trained on CPU in the same run.

    python benchmarks/gpu.py --data-dir ../shared/datasets --json results/gpu.json
    python benchmarks/gpu.py --runs reuters:nash-dn:32 --cpu-threads 2 --budget 300

Each run (``DATASET:METHOD:BITS``, canonical split, seed 0, unsupervised unless the method ends in
``+sup``) is trained with ``device="cuda"`` and scored like ``nash eval`` (tie-aware
precision@100, database = train, queries = test). Runs named in ``--cpu-reference`` are trained
again on CPU with ``--cpu-threads`` torch threads (2: the machines this project targets), so the
reported speed-up is a ratio measured on one machine in one run, not against figures from
elsewhere. CUDA's one-off start (context, kernels) is paid by an untimed warm-up first and
reported on its own. The JSON is rewritten after every run, so a run cut short by ``--budget``
seconds (checked between runs) keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_RUNS = (
    "reuters:nash-nbr:32,reuters:nash-dn:32,reuters:nash-dn:32+sup,reuters:nash:32,"
    "reuters:nash-n:32,reuters:vdsh:32,reuters:nash-refine:32,reuters:nash-dn:128,"
    "20ng:nash-refine:32,20ng:nash-dn:32"
)
DEFAULT_CPU_REFERENCE = "reuters:nash-nbr:32,reuters:nash-dn:32"


def commit() -> str:
    """``$NASH_COMMIT`` where set (a copied tree's git may not match it), else the checkout's."""
    if os.environ.get("NASH_COMMIT"):
        return os.environ["NASH_COMMIT"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        return out.stdout.strip() if out.returncode == 0 else "unknown"
    except OSError:
        return "unknown"


def warm_up(device: str) -> float:
    """Seconds to train a tiny model on the GPU: CUDA's context and first kernels."""
    from nashcli import methods
    from nashcli.features import make_problem

    texts = [f"topic{i % 3} word{i % 7} note{i}" for i in range(40)]
    labels = [[f"t{i % 3}"] for i in range(40)]
    problem = make_problem(texts, texts[:8], texts[:8], labels, labels[:8], labels[:8])
    start = time.perf_counter()
    methods.fit_encode("nash-dn", 8, problem, device=device, max_epochs=2, min_epochs=1)
    return time.perf_counter() - start


def measure(prepared, method: str, bits: int, supervised: bool, device: str) -> dict:
    """One ``nash eval`` cell on ``device`` (``prepared``: ``prepare``'s problem and splits):
    precision and train seconds."""
    from nashcli.evaluation import run_method

    problem, splits = prepared
    result = run_method(
        problem,
        method,
        bits,
        supervised=supervised,
        device=device,
        include_val=splits.val_from_train,  # the database is the whole training split
    )
    return {
        "precision_at_100_tie_aware": round(result.precision_at_100_tie_aware, 4),
        "train_seconds": round(result.train_seconds, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", default=DEFAULT_RUNS)
    parser.add_argument("--cpu-reference", default=DEFAULT_CPU_REFERENCE)
    parser.add_argument("--cpu-threads", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--json", type=Path, help="write the results here as they come")
    parser.add_argument("--device", default="cuda", help="cpu: a dry run of the script itself")
    parser.add_argument("--budget", type=float, default=1e9, help="seconds; no new run after")
    args = parser.parse_args(argv)

    import torch

    from nashcli.datasets import load_dataset
    from nashcli.evaluation import prepare

    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu.py: no CUDA GPU here", file=sys.stderr)
        return 2
    started = time.perf_counter()
    cpu_reference = set(args.cpu_reference.split(",")) if args.cpu_reference else set()
    report: dict = {
        "commit": commit(),
        "gpu": torch.cuda.get_device_name(0) if args.device == "cuda" else None,
        "torch": torch.__version__,
        "cpu_cores": os.cpu_count(),
        "cpu_threads_reference": args.cpu_threads,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cuda_warm_up_seconds": round(warm_up(args.device), 2),
        "runs": [],
    }
    problems: dict = {}
    for run in args.runs.split(","):
        if time.perf_counter() - started > args.budget:
            print(f"budget spent: not run {run}", file=sys.stderr)
            continue
        name, method, bits_text = run.split(":")
        supervised = bits_text.endswith("+sup")
        bits = int(bits_text.removesuffix("+sup"))
        if name not in problems:
            problems[name] = prepare(load_dataset(name, data_dir=args.data_dir))
        row = {"dataset": name, "method": method, "bits": bits, "supervised": supervised}
        row["cuda"] = measure(problems[name], method, bits, supervised, args.device)
        if run in cpu_reference:
            threads = torch.get_num_threads()
            torch.set_num_threads(args.cpu_threads)
            try:
                row["cpu"] = measure(problems[name], method, bits, supervised, "cpu")
            finally:
                torch.set_num_threads(threads)
            row["speed_up"] = round(row["cpu"]["train_seconds"] / row["cuda"]["train_seconds"], 2)
        report["runs"].append(row)
        print(json.dumps(row), flush=True)
        if args.json:
            tmp = args.json.with_suffix(".tmp")
            tmp.write_text(json.dumps(report, indent=1) + "\n")
            tmp.replace(args.json)
    report["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
