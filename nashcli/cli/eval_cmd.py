"""``nash eval``: reproduce the paper's precision@100 tables on a benchmark corpus."""

from __future__ import annotations

from pathlib import Path

import typer

from nashcli.cli.app import DEVICES, app, check_device, one_of
from nashcli.errors import NashError

_SPLITS = ("canonical", "random")


@app.command("eval")
def eval_command(
    dataset: str | None = typer.Argument(
        None,
        help="reuters, 20ng, tmc; reuters-vdsh or 20ng-vdsh (prepared as the VDSH release the "
        "papers used); or a path to a .jsonl(.gz/.bz2/.xz) (id, text, labels, split; without "
        "split: --split random) or to "
        "reuters21578.tar.gz / 20news-bydate.tar.gz.",
        metavar="DATASET",
    ),
    data_dir: str | None = typer.Option(  # (text: a Path would turn "./~x" into "~x")
        None,
        "--data-dir",
        metavar="DIR",
        help="Where reuters/20ng/tmc files are found (default: $NASH_DATA, else the user cache).",
    ),
    bits: str = typer.Option(
        "8,16,32,64,128",
        "--bits",
        metavar="LIST",
        help="Code lengths in bits, comma-separated: multiples of 8 from 8 to 256.",
    ),
    methods: str | None = typer.Option(
        None,
        "--methods",
        metavar="LIST",
        help="Comma-separated, e.g. nash-dn,lsh,tfidf (default: all); --methods list shows them.",
    ),
    supervised: bool = typer.Option(
        False, "--supervised", help="Train with the labels too (NASH's supervised variant)."
    ),
    seed: int = typer.Option(
        0,
        "--seed",
        metavar="N",
        min=0,
        max=2**32 - 1,
        help="Seed of model initialisation (and --split random).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document, no table."),
    save_codes: Path | None = typer.Option(
        None,
        "--save-codes",
        metavar="DIR",
        help="Write METHOD-BITS.npz (packed codes + labels) per result here.",
    ),
    split: str = typer.Option(
        "canonical",
        "--split",
        metavar="SPLIT",
        help="canonical: the corpus's own train/test split; random: a seeded 60/20/20 shuffle.",
        autocompletion=one_of("canonical", "random"),
    ),
    device: str = typer.Option(
        "auto", "--device", metavar="DEVICE", help="auto, cpu or cuda.", autocompletion=DEVICES
    ),
    download: bool = typer.Option(
        False,
        "--download",
        help="Fetch the canonical archive of reuters or 20ng into --data-dir when it is missing.",
    ),
) -> None:
    """Train each method at each bit length and report precision of the top 100.

    Database = training documents, queries = test documents, a hit shares a label with the query.
    Precision is shown tie-aware, with ties broken by database position in parentheses.
    """
    from nashcli import evaluation
    from nashcli.datasets import load_dataset

    if split not in _SPLITS:
        raise NashError(f"--split must be canonical or random, not {split!r}")
    check_device(device)
    if methods is not None and methods.strip().lower() == "list":
        from nashcli.methods import describe

        names = evaluation.available_methods()
        if as_json:
            import json

            listed = [{"method": name, "description": describe(name)} for name in names]
            typer.echo(json.dumps({"methods": listed}))
            return
        width = max(map(len, names))
        for name in names:
            typer.echo(f"{name:{width}}  {describe(name)}")
        return
    if dataset is None:
        raise NashError("give a DATASET: reuters, 20ng, tmc, reuters-vdsh, 20ng-vdsh or a path")
    bit_list = evaluation.parse_bits(bits)
    method_list = evaluation.parse_methods(methods)
    if save_codes is not None:
        evaluation.check_codes_directory(
            save_codes, [f"{m}-{b}.npz" for m in method_list if m != "tfidf" for b in bit_list]
        )
        if method_list == ["tfidf"]:
            typer.echo(
                "nash: note: --save-codes: tfidf has no codes, so nothing is written", err=True
            )

    from nashcli.render import EVAL_CAPTION, EvalProgress, eval_table, eval_title, output_console

    if download:
        from nashcli import datasets

        if not datasets.is_available(dataset, data_dir):
            target = datasets.download(dataset, data_dir)
            typer.echo(f"downloaded {target}", err=True)

    with EvalProgress() as progress:
        progress.status(f"loading {dataset}")
        corpus = load_dataset(dataset, data_dir)
        progress.status(f"TF-IDF features of {len(corpus):,} documents")
        problem, splits = evaluation.prepare(corpus, split, seed=seed)
        include_val = splits.val_from_train  # the database is the whole training split
        for problem_note in [*corpus.notes, *evaluation.caveats(problem, include_val=include_val)]:
            progress.console.print(f"nash: note: {problem_note}", soft_wrap=True, markup=False)
        results = evaluation.evaluate(
            problem,
            method_list,
            bit_list,
            supervised=supervised,
            seed=seed,
            device=device,
            reporter=progress,
            keep_codes=save_codes is not None,
            include_val=include_val,
        )
    n_train = len(evaluation.database_labels(problem, include_val))  # database documents
    n_test = problem.X_test.shape[0]
    # The figures first: a --save-codes that fails now (a full disk) must not lose them.
    if as_json:
        import json

        document = {
            "dataset": corpus.name,
            "n_train": n_train,
            "n_test": n_test,
            "results": [r.to_json() for r in results],
        }
        typer.echo(json.dumps(document))
    else:
        console = output_console()
        console.print(eval_title(corpus.name, results, n_train, n_test), soft_wrap=True)
        console.print(eval_table(results, bit_list))
        console.print(EVAL_CAPTION, style="dim", soft_wrap=True)
    if save_codes is not None:
        ids = (
            evaluation.database_ids(corpus, splits, include_val),
            [corpus.ids[i] for i in splits.test],
        )
        evaluation.save_codes(results, problem, save_codes, include_val=include_val, ids=ids)
