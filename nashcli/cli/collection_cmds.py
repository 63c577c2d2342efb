"""``nash index``, ``nash similar``, ``nash status``, ``nash forget``: personal collections."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import typer

from nashcli import paths
from nashcli.cli.app import DEVICES, app, check_device, one_of, stopped_as_by_ctrl_c
from nashcli.errors import NashError
from nashcli.names import shell_quote, visible

#: The smallest --max-size taken: a slip (0, or 50 meaning 50 MB) must not empty a collection.
MIN_MAX_SIZE = 1000


def _collection_names(incomplete: str) -> list[str]:
    """Names of the collections that start with ``incomplete``, for shell completion (a
    listing of the collections' folder: nothing is opened, no heavy library imported)."""
    from nashcli.paths import collection_folders

    try:
        return [p.name for p in collection_folders() if p.name.startswith(incomplete)]
    except OSError:
        return []


@app.command("index")
def index_command(
    path: str = typer.Argument(
        ..., metavar="PATH", help="The folder to index (searched recursively)."
    ),
    bits: int | None = typer.Option(
        None,
        "--bits",
        metavar="N",
        min=1,
        max=1024,
        help="Code length in bits (default: 64, or the collection's).",
    ),
    name: str | None = typer.Option(
        None,
        "--name",
        metavar="NAME",
        help="Collection name (default: the folder's collection, else a name made from the "
        "folder's).",
    ),
    retrain: bool = typer.Option(
        False, "--retrain", help="Refit the features and the model on every document now."
    ),
    device: str = typer.Option(
        "auto",
        "--device",
        metavar="DEVICE",
        help="Where to train: auto, cpu or cuda.",
        autocompletion=DEVICES,
    ),
    max_size: str | None = typer.Option(
        None,
        "--max-size",
        metavar="SIZE",
        help="Skip files larger than this (e.g. 10MB, 512KiB) (default: 10MB, or the size the "
        "collection was last given).",
    ),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="No progress bars, notes or summary (errors still print)."
    ),
) -> None:
    """Index the text documents under PATH (again: only what changed), to find similar ones.

    The first run trains a NASH model on the folder; later runs encode new and changed files with
    it, drop deleted ones, and retrain on their own once the folder has changed a lot.
    """
    from nashcli import corpus, indexing, render

    check_device(device)
    max_bytes = corpus.parse_size(max_size) if max_size is not None else None
    if max_bytes is not None and max_bytes < MIN_MAX_SIZE:  # `--max-size 0` would empty it
        raise NashError(
            f"--max-size {max_size} is {corpus.format_size(max_bytes)}: files larger than it "
            "leave the index; give at least 1 KB (e.g. 50MB)"
        )
    with (
        stopped_as_by_ctrl_c(),
        _noting_a_kept_first_index(path, name),
        render.IndexProgress(quiet=quiet) as progress,
    ):
        report = indexing.index_folder(
            path,
            name=name,
            bits=bits,
            retrain=retrain,
            device=device,
            reporter=progress,
            max_bytes=max_bytes,
        )
    if not quiet:
        render.output_console().print(render.index_summary(report))


@contextlib.contextmanager
def _noting_a_kept_first_index(path: str, name: str | None) -> Iterator[None]:
    """On a stop (Ctrl-C, SIGTERM, SIGHUP): what a large folder's first index kept (its model
    and the batches it committed), and the command that goes on with it."""
    try:
        yield
    except KeyboardInterrupt:
        from nashcli.index import Collection, collection_of

        with contextlib.suppress(NashError, OSError, ValueError):
            root = Path(os.path.abspath(paths.expand_user(path))).resolve()
            chosen = name or collection_of(root)
            if chosen and Collection.exists(chosen):
                _note_first_index_unfinished(Collection.open(chosen))
        raise


def _note_first_index_unfinished(collection) -> None:
    """Where a first index committed ``collection``'s model and has not encoded every file
    yet (one read of its info table where not), how far it got and what goes on with it."""
    if collection.filling():
        from nashcli.similar import first_index_unfinished

        _note(first_index_unfinished(collection, collection.summary()["documents"]))


def _note(message: str) -> None:
    """A line on stderr about an answer that is still given."""
    typer.echo(f"nash: note: {visible(message)}", err=True)


@app.command("similar")
def similar_command(
    file: str | None = typer.Argument(
        None,
        help="A file, in the collection or not; - reads the query text from stdin.",
        metavar="FILE",
    ),
    text: str | None = typer.Option(
        None, "--text", metavar="TEXT", help="Search with this text instead."
    ),
    top: int = typer.Option(
        10, "--top", "-n", metavar="N", min=1, help="How many documents to show."
    ),
    collection: str | None = typer.Option(
        None,
        "--collection",
        "-c",
        metavar="NAME",
        help="Collection (default: the one holding FILE, or the only one).",
        autocompletion=_collection_names,
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    rank: str | None = typer.Option(
        None,
        "--rank",
        metavar="RANKING",
        help="How to order the nearest codes: fused (the default: tf-idf cosine with feedback "
        "from the best candidates, minus a Hamming distance weighted by the encoder's "
        "certainty; the most precise), cosine (tf-idf cosine), or hamming (the codes alone).",
        autocompletion=one_of("fused", "cosine", "hamming"),
    ),
    rerank: bool = typer.Option(
        True,
        "--rerank/--no-rerank",
        help="--no-rerank is --rank hamming.",
    ),
    pool: int | None = typer.Option(
        None,
        "--pool",
        metavar="N",
        help="How many of the nearest codes --rank re-orders, at least --top (default: every "
        "document up to 1,000, then a tenth of them, 200 to 1,000).",
        min=1,
    ),
) -> None:
    """Show the documents most similar to FILE (or to --text)."""
    from nashcli.similar import (
        DEFAULT_RANKING,
        RANKINGS,
        check_query_file,
        choose_collection,
        find_similar,
        read_piped_query,
    )

    if (file is None) == (text is None):
        raise NashError('give a FILE or --text "..." (one of them)')
    # The query's and the options' mistakes first, not "choose a collection".
    if rank is not None and rank not in RANKINGS:
        raise NashError(f"unknown ranking {rank!r}: choose one of {', '.join(RANKINGS)}")
    if not rerank and rank not in (None, "hamming"):
        raise NashError(f"--no-rerank is --rank hamming: it cannot go with --rank {rank}")
    piped = file == "-"
    if piped:
        text, file = read_piped_query(sys.stdin.buffer, collection), None
    if text is not None and not text.strip():
        raise NashError("the query has no text")
    ranking = (rank or DEFAULT_RANKING) if rerank else "hamming"
    path = None
    if file is not None:
        check_query_file(file)  # before choosing a collection for it: say what is wrong with it
        path = paths.expand_user(file)
    chosen = choose_collection(collection, path)
    query: Path | str = path if path is not None else text
    hits = find_similar(query, chosen, top=top, ranking=ranking, pool=pool, on_note=_note)
    with contextlib.suppress(NashError):  # (forgotten since it answered: nothing to add)
        _note_first_index_unfinished(chosen)  # (its answers: from what is encoded so far)
    if not os.path.isdir(chosen.root):  # the answers name files that are no longer there
        _note(
            f"the folder of collection {chosen.name!r}, {chosen.root}, is gone; if it "
            f"moved, run: nash index NEW-PLACE --name {chosen.name}"
        )
    label = str(file) if file is not None else text.rstrip("\r\n")  # piped text's last newline
    if as_json:
        document = {
            "query": "-" if piped else label,  # (not the piped text back: it may be megabytes)
            "collection": chosen.name,
            "results": [
                {"path": str(h.path), "distance": h.distance, "score": h.score, "title": h.title}
                for h in hits
            ],
        }
        from nashcli.render import json_document

        typer.echo(json_document(document, sys.stdout.encoding))
        return
    from nashcli import render

    short = label if len(label) <= 60 else label[:59] + "…"
    if not hits:
        held = 0
        with contextlib.suppress(NashError):  # (damaged meanwhile: "no other" then)
            held = chosen.summary()["documents"]
        other = "no other document" if file is not None and held else "no document"
        typer.echo(f"no similar documents: collection {chosen.name!r} holds {other}")
        return
    console = render.output_console()
    results = render.similar_results(
        hits,
        chosen.root,
        short,
        console.width,
        chosen.name,
        query_is_file=file is not None,
        encoding=console.encoding,
    )
    render.show(console, results)


@app.command("status")
def status_command(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """List the collections: root, documents, code length, model, last update, watcher.

    A damaged collection is listed as such, with what is wrong and how to rebuild or remove it.
    """
    from nashcli.index import (
        DamagedCollectionError,
        IncompatibleCollectionError,
        survey_collections,
    )
    from nashcli.similar import first_index_unfinished, no_index_yet
    from nashcli.watching import is_watching

    rows, damaged, labels, unindexed = [], [], [], []
    for entry in survey_collections():
        problem, summary = entry.problem, None
        if entry.collection is not None:
            try:
                entry.collection.check()
                summary = entry.collection.summary()
            except NashError as error:
                problem = error
        if summary is None:
            root = entry.collection.root if entry.collection is not None else None
            # Damage and an older or newer index format need a rebuild; an unreadable disk (full,
            # read-only, gone) or a collection removed meanwhile does not.
            state = "unreadable"
            if isinstance(problem, DamagedCollectionError) and not problem.denied:
                state = "damaged"
            elif isinstance(problem, IncompatibleCollectionError):
                state = "incompatible"
            damaged.append(
                {
                    "name": entry.name,
                    "root": str(root) if root else None,
                    "documents": None,
                    "bits": None,
                    "model": None,
                    "updated_at": None,
                    "watching": is_watching(entry.name),
                    "state": state,
                    "folder_found": os.path.isdir(root) if root else None,
                    "damaged": visible(str(problem)),  # (as shown: its command pastes back)
                    "complete": None,
                    "note": None,
                }
            )
            labels.append(state.upper())
            continue
        note = None
        if summary["generation"] == 0:  # a first index under way, or stopped before its model
            note = no_index_yet(entry.collection)
            unindexed.append(note)
        elif summary["filling"]:  # ... or after it: it goes on from there
            note = first_index_unfinished(entry.collection, summary["documents"])
            unindexed.append(note)
        rows.append(
            {
                "name": summary["name"],
                "root": summary["root"],
                "documents": summary["documents"],
                "bits": summary["bits"],
                "model": summary["model"],
                "updated_at": summary["updated_at"],
                "watching": is_watching(entry.name),
                "state": "ok",
                "folder_found": os.path.isdir(summary["root"]),  # (the table's "(gone)")
                "complete": note is None,  # (a first index done: every file it found encoded)
                "note": note,
            }
        )
    if as_json:
        everything = sorted(rows + damaged, key=lambda row: row["name"])
        from nashcli.render import json_document

        typer.echo(json_document({"collections": everything}, sys.stdout.encoding))
        return
    if not rows and not damaged:
        typer.echo("no collections yet: index a folder with: nash index FOLDER")
        return
    if rows:
        from nashcli import render

        console = render.output_console()
        shown = render.status_results(rows, width=console.width, encoding=console.encoding)
        render.show(console, shown)

    for row, label in zip(damaged, labels, strict=True):
        typer.echo(f"{row['name']}: {label}: {row['damaged']}")  # (names are plain; shown)
    for line in unindexed:
        typer.echo(visible(line))


def _refuse_if_watched(name: str) -> None:
    """A watcher would keep writing to (or re-create) the collection: it must stop first."""
    from nashcli import watching

    if not watching.is_watching(name):
        return
    info = watching.read_pid_file(name) or {}
    pid = f" (pid {info['pid']})" if "pid" in info else ""
    target = f"--name {name}"
    if info.get("root"):
        with contextlib.suppress(NashError):
            if watching.collection_for(info["root"])[0] == name:
                target = shell_quote(info["root"])
    raise NashError(
        f"collection {name!r} is being watched{pid}; stop the watcher first with: "
        f"nash watch --stop {target}, then run: nash forget {name}"
    )


@app.command("forget")
def forget_command(
    name: str = typer.Argument(
        ...,
        help="The collection whose index to delete.",
        autocompletion=_collection_names,
        metavar="NAME",
    ),
) -> None:
    """Delete a collection's index, damaged or not (your files are not touched).

    Refuses while a `nash index` or a `nash watch` is updating the collection.
    """
    from nashcli.index import forget_collection, validate_name

    try:
        validate_name(name)
    except NashError:
        pass  # no such collection: forget_collection says so, listing the names
    else:
        _refuse_if_watched(name)  # damaged ones too: a watcher may still be keeping them
    root = forget_collection(name, on_note=_note)
    where = f" ({root})" if root else ""
    typer.echo(visible(f"forgot {name}{where}; your files are untouched"))
