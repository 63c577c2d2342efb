"""Seconds of a whole `nash similar` command, this tree against git revision REV, in the same run.

    python benchmarks/query.py --reference 8a7d017 [--docs 3000] [--repeat 9] [--json F]

Writes ``--docs`` text files (``large_folder.write_folder``: the benchmark corpora), indexes them
once with this tree (the default method; the model trains a few epochs, since what is timed is
the query, not the codes' quality), then asks three queries with each tree, REV's from a
temporary git worktree, alternating which goes first, ``--repeat`` times each:

- ``file``: an indexed, unchanged file (answered from its stored code and vector);
- ``text``: ``--text`` (the query is tokenized and encoded);
- ``outside``: a file outside the collection (read, tokenized and encoded).

Both trees must give the same hits. Prints each query's medians and their ratio (this tree over
REV's): what a user waits for at every ``nash similar``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from revisions import (  # noqa: E402
    alternating,
    indexed_folder,
    reference_worktree,
    timed_cli,
    write_comparison,
)

TEXT = "oil prices rise as opec ministers meet to agree on output quotas"


def queries(folder: Path, scratch: Path) -> dict[str, list[str]]:
    """Query name -> the arguments of ``nash similar`` (``--json``: hits to compare)."""
    indexed = sorted((folder / "d0000").iterdir())[7]
    outside = scratch / "outside.txt"
    outside.write_text(indexed.read_text(encoding="utf-8") + "\nand one more line\n")
    return {
        "file": [str(indexed), "--json"],
        "text": ["--text", TEXT, "--json", "--collection", folder.name],
        "outside": [str(outside), "--json", "--collection", folder.name],
    }


def nash_similar(tree: Path, args: list[str], env: dict) -> tuple[float, list[str]]:
    """One whole ``nash similar ARGS`` with the package under ``tree``: (seconds, hit paths)."""
    took, out = timed_cli(tree, env, "similar", *args)
    return took, [hit["path"] for hit in json.loads(out)["results"]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", required=True, help="git revision to compare with")
    parser.add_argument("--docs", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    seconds: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="nash-query-") as scratch:
        scratch = Path(scratch)
        folder, env, documents = indexed_folder(scratch, args.docs, epochs=5)
        asked = queries(folder, scratch)
        with reference_worktree(args.reference, scratch, kernel=True) as reference:
            for query, query_args in asked.items():
                seconds[query] = {"reference": [], "this tree": []}
                answers = {}
                for _, name, tree in alternating(reference, args.repeat):
                    took, hits = nash_similar(tree, query_args, env)
                    if answers.setdefault(name, hits) != hits:
                        raise SystemExit(f"{query}, {name}: the hits changed between runs")
                    seconds[query][name].append(took)
                if answers["reference"] != answers["this tree"]:
                    raise SystemExit(f"{query}: the two trees give different hits")
                print(f"{query}: done", flush=True)

    medians = {q: {n: statistics.median(v) for n, v in s.items()} for q, s in seconds.items()}
    ratios = {q: m["this tree"] / m["reference"] for q, m in medians.items()}
    print(f"\nnash similar on {documents:,} documents, median of {args.repeat}:")
    for query, m in medians.items():
        print(
            f"  {query:8} {args.reference} {m['reference']:.3f} s -> this tree "
            f"{m['this tree']:.3f} s (ratio {ratios[query]:.2f})"
        )
    if args.json:
        write_comparison(
            args.json,
            args.reference,
            {
                "documents": documents,
                "text": TEXT,
                "seconds": {
                    q: {n: [round(x, 3) for x in v] for n, v in s.items()}
                    for q, s in seconds.items()
                },
                "medians": {q: {n: round(x, 3) for n, x in m.items()} for q, m in medians.items()},
                "ratios": {q: round(r, 3) for q, r in ratios.items()},
            },
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
