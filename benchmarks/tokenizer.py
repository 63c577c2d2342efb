"""Time ``tokens.tokenize`` on the three benchmark corpora against scikit-learn's default
analyzer (lowercase, ``(?u)\\b\\w\\w+\\b``) on the same texts, in the same run.

Tokenising is most of the cost of features (``nash index`` tokenises every document, the
fitting sample twice). Ours does more than the reference (NFKC, CJK bigrams, digits and
underscores split off), so the ratio is what that costs. Prints seconds (best of ``--repeat``)
and the ratio; ``--json F`` writes them too.

Run: ``python benchmarks/tokenizer.py [--repeat 3] [--json F]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from large_folder import corpus_texts


def best_seconds(function, texts: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for text in texts:
            function(text)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    from sklearn.feature_extraction.text import CountVectorizer

    from nashcli.tokens import tokenize

    texts = corpus_texts()
    reference = CountVectorizer().build_analyzer()
    ours = best_seconds(tokenize, texts, args.repeat)
    sklearn = best_seconds(reference, texts, args.repeat)
    figures = {
        "documents": len(texts),
        "megabytes": round(sum(len(t.encode("utf-8")) for t in texts) / 2**20, 1),
        "tokenize_s": round(ours, 3),
        "sklearn_default_analyzer_s": round(sklearn, 3),
        "ratio": round(ours / sklearn, 3),
        "machine": platform.processor() or platform.machine(),
    }
    print(json.dumps(figures, indent=1))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
