"""Quick model experiments: one method × bits × corpus, tie-aware precision@100 and train seconds.

    python benchmarks/model_dev.py --dataset reuters --method nash-dn --bits 32
    python benchmarks/model_dev.py --dataset 20ng --method nash --bits 8 16 32 --set lr=3e-3

Database = the training split minus a validation part carved deterministically (10 %, seed 0)
for early stopping; queries = the test split; a hit shares a label. ``--set key=value`` overrides
a ``TrainConfig`` field; ``--spec key=value`` overrides a ``MethodSpec`` field.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nashcli import methods  # noqa: E402
from nashcli.datasets import DATASET_FILES, VDSH_VARIANTS  # noqa: E402
from nashcli.features import carve_validation, make_problem  # noqa: E402
from nashcli.metrics import precision_at_k  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"


def load(name: str, val_fraction: float = 0.1, seed: int = 0, split: str = "canonical"):
    """The harness's problem for ``name``; ``split="random"`` is ``nash eval --split random``'s
    seeded 60/20/20 shuffle (the seed draws the split, as in the harness)."""
    if name in VDSH_VARIANTS or split != "canonical":  # the harness's own splits
        from nashcli.datasets import load_dataset
        from nashcli.evaluation import prepare

        return prepare(load_dataset(name, data_dir=DATASETS), split=split, seed=seed)[0]
    with gzip.open(DATASETS / DATASET_FILES[name], "rt", encoding="utf-8") as f:
        docs = [json.loads(line) for line in f]
    train = [d for d in docs if d["split"] == "train"]
    test = [d for d in docs if d["split"] == "test"]
    keep, val = carve_validation(len(train), val_fraction, 0)  # as the harness: every seed
    tr = [train[i] for i in keep]
    va = [train[i] for i in val]
    return make_problem(
        [d["text"] for d in tr],
        [d["text"] for d in va],
        [d["text"] for d in test],
        [d["labels"] for d in tr],
        [d["labels"] for d in va],
        [d["labels"] for d in test],
    )


def generalisation(problem, model, db) -> str:
    """Tie-aware precision@100 of the validation part and of 2,000 training documents (each
    against the other training documents) in the same codes as the test figure."""
    from nashcli.metrics import hamming_distance_matrix, label_hits, tie_aware_precision

    val = methods.encode_rows(model, problem.X_val)
    _, p_val = precision_at_k(db, problem.Y_train, val, problem.Y_val, k=100)
    sample = np.random.default_rng(0).choice(len(db), min(2000, len(db)), replace=False)
    distances = hamming_distance_matrix(db[sample], db).astype(np.int64)
    distances[np.arange(len(sample)), sample] = 1 << 20  # never its own neighbour
    hits = label_hits(problem.Y_train[sample], problem.Y_train)
    p_train = tie_aware_precision(distances, hits, 100)
    return f" val P@100 {p_val:.4f} train-LOO P@100 {p_train:.4f}"


def parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--dataset", default="reuters", choices=sorted(DATASET_FILES) + sorted(VDSH_VARIANTS)
    )
    ap.add_argument("--method", nargs="+", default=["nash-dn"])
    ap.add_argument("--bits", type=int, nargs="+", default=[32])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--split",
        choices=["canonical", "random"],
        default="canonical",
        help="random: nash eval --split random's seeded 60/20/20 shuffle (drawn by --seed)",
    )
    ap.add_argument("--supervised", action="store_true")
    ap.add_argument("--set", nargs="*", default=[], help="TrainConfig overrides key=value")
    ap.add_argument("--spec", nargs="*", default=[], help="MethodSpec overrides key=value")
    ap.add_argument("--verbose", action="store_true", help="print every epoch")
    ap.add_argument("--json", help="append one JSON line per run to this file")
    ap.add_argument(
        "--generalisation",
        action="store_true",
        help="also score every validation document and 2,000 training documents (leave one "
        "out) against the training codes: where test precision falls short of these, the "
        "queries differ from the training documents (20NG's later-dated test posts)",
    )
    args = ap.parse_args()

    train_kw = dict(kv.split("=", 1) for kv in args.set)
    train_kw = {k: parse_value(v) for k, v in train_kw.items()}
    spec_kw = {k: parse_value(v) for k, v in (kv.split("=", 1) for kv in args.spec)}

    t0 = time.perf_counter()
    problem = load(args.dataset, seed=args.seed, split=args.split)
    print(
        f"# {args.dataset}: train {problem.X_train.shape[0]} val {problem.X_val.shape[0]} "
        f"test {problem.X_test.shape[0]} vocab {problem.vocabulary_size} "
        f"({time.perf_counter() - t0:.1f}s features)",
        flush=True,
    )
    for method in args.method:
        if spec_kw:
            methods.SPECS[method] = dataclasses.replace(methods.SPECS[method], **spec_kw)
        for bits in args.bits:

            def on_epoch(epoch, max_epochs, info):
                if args.verbose:
                    shown = {k: round(v, 4) for k, v in info.items()}
                    print(f"  epoch {epoch}/{max_epochs} {shown}", flush=True)

            t = time.perf_counter()
            model, result = methods.fit_model(
                method,
                bits,
                problem,
                supervised=args.supervised,
                seed=args.seed,
                device="cpu",
                on_epoch=on_epoch,
                **train_kw,
            )
            train_s = time.perf_counter() - t
            db = methods.encode_rows(model, problem.X_train)
            q = methods.encode_rows(model, problem.X_test)
            _, p100 = precision_at_k(db, problem.Y_train, q, problem.Y_test, k=100)
            extra = ""
            if result is not None:
                extra += (
                    f" epochs {result.epochs} best {result.best_epoch} val {result.best_score:.4f}"
                )
            if args.generalisation:
                extra += generalisation(problem, model, db)
            print(
                f"{args.dataset} {method} {bits:>3} bits P@100 {p100:.4f} "
                f"train {train_s:.1f}s{extra} {train_kw or ''} {spec_kw or ''}",
                flush=True,
            )
            if args.json:
                with open(args.json, "a") as f:
                    row = {
                        "dataset": args.dataset,
                        "method": method,
                        "bits": bits,
                        "p100": p100,
                        "train_s": train_s,
                        "seed": args.seed,
                        "split": args.split,
                        "supervised": args.supervised,
                        "train_kw": train_kw,
                        "spec_kw": spec_kw,
                    }
                    f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
