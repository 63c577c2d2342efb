"""Rich renderings of command results (tables, progress). Commands call these; no logic here."""

from __future__ import annotations

import codecs
import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.cells import cell_len, chop_cells
from rich.console import Console, Group
from rich.markup import escape
from rich.measure import Measurement
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from nashcli.names import CONTROLS_BEYOND_C0, escaped, is_control, visible

if TYPE_CHECKING:  # pragma: no cover
    from rich.progress import Progress

    from nashcli.evaluation import EvalResult


#: Columns of command output that goes to a file or a pipe (no terminal to fit): wide enough
#: that tables and summaries keep every path on one line, as scripts and ``grep`` want them
#: (1,000 folded a path of 1,200 characters; nothing here pads a line to the console's width).
PIPE_WIDTH = 1_000_000


def output_console() -> Console:
    """The console that commands print results on: the terminal's width, else (a pipe, a file)
    ``$COLUMNS`` or :data:`PIPE_WIDTH`, so that nothing is folded at Rich's default 80."""
    console = Console(highlight=False)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console.width = PIPE_WIDTH
    return console


def show(console: Console, results: Group | Table | Text) -> None:
    """Print a table, or the records that stand in for it on a narrow terminal, unfolded
    (the terminal wraps a long line; Rich would cut a path in its middle)."""
    console.print(results, soft_wrap=isinstance(results, Text))


class Folded:
    """A path in a table cell, folded at the cell's width character by character. Rich's
    ``overflow="fold"`` breaks a text at its spaces first and drops the space there, so that
    ``x…x z.txt`` and ``x…xz.txt`` showed alike; here every character stays where it is."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __rich_measure__(self, console: Console, options) -> Measurement:
        return Measurement(1, max(1, cell_len(self.text)))

    def __rich_console__(self, console: Console, options):
        for line in chop_cells(self.text, max(1, options.max_width)) or [""]:
            yield Segment(line)
            yield Segment.line()


def _table_width(widths: Sequence[int]) -> int:
    """Columns a Rich table with columns of these widths takes: a border, and a space of
    padding on each side, around every cell."""
    return sum(widths) + 3 * len(widths) + 1


def _cells(texts: Sequence[str]) -> int:
    return max(map(cell_len, texts), default=0)


def json_document(document: object, encoding: str | None = "utf-8") -> str:
    """``document`` as one line of JSON that the output stream can carry: UTF-8 text as it is,
    except a file name's undecodable bytes (Python's lone surrogates, which would go out as
    invalid UTF-8), which become ``\\udcXX`` escapes that give the bytes back
    (``os.fsencode(json.loads(...))``); another encoding gets every non-ASCII character
    escaped, rather than replaced by ``?``."""
    import codecs
    import json

    utf8 = encoding is not None and codecs.lookup(encoding).name == "utf-8"
    text = json.dumps(document, ensure_ascii=not utf8)
    if not utf8:
        return text
    # JSON escapes only U+0000-U+001F: DEL, C1 controls (U+009B starts a terminal command)
    # and bidirectional overrides in a file name would reach the terminal raw.
    text = _JSON_RAW_CONTROLS.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


#: What :func:`json_document` escapes beyond JSON's own escapes (only ever inside a string).
_JSON_RAW_CONTROLS = re.compile("[\x7f-\x9f" + "".join(sorted(CONTROLS_BEYOND_C0)) + "]")


def plain(text: str) -> str:
    """``text`` with control characters (terminal escapes, CR, tabs) and bidirectional overrides
    as spaces: file names and titles come from the user's files and must not drive the terminal.
    Other invisible characters (no-break spaces, joiners in emoji) stay, as in the file name."""
    return "".join(" " if is_control(ch) else ch for ch in text)


def _documents(n: int) -> str:
    return f"{n:,} document{'' if n == 1 else 's'}"


# --------------------------------------------------------------------------------------------
# nash eval


def eval_title(dataset: str, results: Sequence[EvalResult], n_train: int, n_test: int) -> Text:
    """The line above :func:`eval_table`: what was measured, on what (printed on its own so that
    a pipe gets it whole on the first line, not folded to the table's width)."""
    supervised = any(r.supervised for r in results)
    queries = f"{n_test:,} quer{'y' if n_test == 1 else 'ies'}"
    return Text(
        f"precision@100 on {plain(dataset)}{' (supervised)' if supervised else ''}: "
        f"{n_train:,} database document{'' if n_train == 1 else 's'}, {queries}"
    )


EVAL_CAPTION = "tie-aware expectation (ties broken by database position)"


def eval_table(results: Sequence[EvalResult], bits: Sequence[int]) -> Table:
    """Methods x bit lengths, like the paper's tables; cell = tie-aware (positional) precision.

    ``tfidf`` (exact cosine, no hashing) does not depend on the bit length: it gets its own
    "no hashing" column.
    """
    table = Table()
    table.add_column("method", style="bold")
    if any(r.bits for r in results):  # not only tfidf, which has no code length
        for n_bits in bits:
            table.add_column(f"{n_bits} bits", justify="right")
    else:
        bits = []
    exact = [r for r in results if r.bits == 0]
    if exact:
        table.add_column("no hashing", justify="right")
    by_method: dict[str, dict[int, EvalResult]] = {}
    for result in results:
        by_method.setdefault(result.method, {})[result.bits] = result
    for method, row in by_method.items():
        cells = [_cell(row.get(n_bits)) for n_bits in bits]
        if exact:
            cells.append(_cell(row.get(0)))
        table.add_row(method, *cells)
    return table


def _cell(result: EvalResult | None) -> str:
    if result is None:
        return ""
    return f"{result.precision_at_100_tie_aware:.4f} [dim]({result.precision_at_100:.4f})[/dim]"


class EvalProgress:
    """Progress of ``nash eval`` on stderr: one bar over runs, one over the current run's epochs.

    Silent when stderr is not a terminal, so logs and ``--json`` pipes stay clean.
    """

    def __init__(self, console: Console | None = None) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.console = console or Console(stderr=True)
        self.progress: Progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),  # "0/?" until a step's length is known, not "0/None"
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            console=self.console,
            disable=not self.console.is_terminal,
            transient=True,
        )
        self._runs = None
        self._epochs = None

    def __enter__(self) -> EvalProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def status(self, message: str) -> None:
        """A step before the runs (loading, features) shown while it happens."""
        if self._runs is None:
            self._runs = self.progress.add_task(message, total=None, note="")
        else:
            self.progress.update(self._runs, description=message)

    def start(self, method: str, bits: int, index: int, total: int) -> None:
        label = f"{method} ({bits} bits)" if bits else f"{method} (exact cosine)"
        if self._runs is None:
            self._runs = self.progress.add_task("runs", total=total, note="")
        self.progress.update(self._runs, description="runs", total=total, completed=index)
        if self._epochs is not None:
            self.progress.remove_task(self._epochs)
        self._epochs = self.progress.add_task(f"  {label}", total=None, note="")

    def epoch(self, epoch: int, max_epochs: int, info: dict) -> None:
        if self._epochs is None:
            return
        notes = []
        if "round" in info:  # a method that trains several models in turn (nash-refine)
            notes.append("round {}/{}".format(*info["round"]))
        if "val_precision" in info:
            notes.append(f"val p@100 {info['val_precision']:.3f}")
        note = " · ".join(notes)
        self.progress.update(self._epochs, total=max_epochs, completed=epoch, note=note)

    def done(self, result: EvalResult) -> None:
        if self._runs is not None:
            self.progress.advance(self._runs)


# --------------------------------------------------------------------------------------------
# nash index / similar / status (collections)


class IndexProgress:
    """Bars for ``nash index`` on stderr (crawling, reading, training, encoding).

    An ``indexing.Reporter``; silent when stderr is not a terminal or with ``quiet``.
    """

    def __init__(self, quiet: bool = False, console: Console | None = None) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console or Console(stderr=True)
        self._bars: Progress = Progress(
            TextColumn("{task.description:<9}"),
            BarColumn(),
            TextColumn("{task.completed:>7,}{task.fields[of]}"),
            TimeElapsedColumn(),
            console=self.console,
            disable=quiet or not self.console.is_terminal,
            transient=True,
        )
        self._tasks: dict[str, int] = {}
        self._quiet = quiet

    def __enter__(self) -> IndexProgress:
        self._bars.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._bars.__exit__(*exc)

    def note(self, message: str) -> None:
        """One line on stderr above the bars (also where there are none), unless quiet."""
        if not self._quiet:
            self.console.print(
                f"nash: note: {escape(visible(message))}", highlight=False, soft_wrap=True
            )

    def progress(self, phase: str, completed: int, total: int | None) -> None:
        of = f"/{total:,}" if total else ""
        if phase not in self._tasks:
            self._tasks[phase] = self._bars.add_task(phase, total=total, of=of)
        self._bars.update(self._tasks[phase], completed=completed, total=total, of=of)


def index_summary(report) -> str:
    """One summary paragraph for an ``indexing.IndexReport`` (rich markup; the names and paths
    in it are escaped, so ``[`` in them is shown, not read as markup)."""
    parts = [
        f"[bold]{_documents(report.documents)}[/bold] in "
        f"[bold]{escape(visible(report.collection))}[/bold] ({report.seconds:.1f} s)"
    ]
    done = [
        f"{n:,} {what}"
        for n, what in (
            (report.added, "added"),
            (report.updated, "updated"),
            (report.moved, "moved"),
            (report.deleted, "removed" + ignored_note(report.deleted, report.ignored)),
            (report.unchanged, "unchanged"),
            (report.kept, "kept unread (cannot be read now)"),
            (
                report.dropped_unread,
                "left out of the new model unread (cannot be read now; added again once they can)",
            ),
        )
        if n
    ]
    if done:
        parts.append(": " + ", ".join(done))
    lines = ["".join(parts)]
    if report.retrained:
        lines.append(f"model trained ({escape(report.retrain_reason)})")
    if report.compacted:
        lines.append("index compacted (removed documents dropped)")
    if report.skipped:
        lines.append(f"{len(report.skipped):,} skipped:")
        for reason, count, shown in skipped_by_reason(report.skipped):
            lines.append(f"  {escape(visible(reason))} ({count:,}): {escape(visible(shown))}")
    return "\n".join(lines)


def ignored_note(removed: int, ignored: int) -> str:
    """What follows "N removed" where ``ignored`` of them are files still there that the
    ignore rules now leave out (a ``.nashignore`` of ``*`` would otherwise read as N deleted
    files); "" where there are none."""
    if not ignored:
        return ""
    which = "still there" if ignored == removed else f"{ignored:,} of them still there"
    return f" ({which}, left out by .gitignore/.nashignore rules)"


def skipped_by_reason(skipped: Sequence[tuple[object, str]]) -> list[tuple[str, int, str]]:
    """``(reason, how many, the first three paths and "… (+N)")`` for skipped ``(path,
    reason)`` pairs, the commonest reason first: a summary, not a line per file."""
    by_reason: dict[str, list[str]] = {}
    for path, reason in skipped:
        by_reason.setdefault(reason, []).append(str(path))
    summary = []
    for reason, paths in sorted(by_reason.items(), key=lambda kv: -len(kv[1])):
        more = f", … (+{len(paths) - 3})" if len(paths) > 3 else ""
        summary.append((reason, len(paths), ", ".join(paths[:3]) + more))
    return summary


#: The fewest columns a table gives a path (or a collection's folder) before the answer
#: becomes one record per line instead: a path folded into narrower pieces cannot be read
#: (or copied) as one, and the table's numbers would be cut short.
MIN_PATH_COLUMNS = 24
#: The most columns :func:`similar_table` gives a path when its titles need the room (longer
#: paths fold there); :func:`similar_results` draws the table only where its paths get that
#: much, or all they need.
TABLE_PATH_COLUMNS = 48
#: The columns titles keep at most when a longer path wants their room: the path is what a
#: reader copies, the title a hint (a 101-column path was folded at 200 columns so that titles
#: kept all 80 of theirs).
TITLE_COLUMNS_YIELDED_TO_PATHS = 30


def similar_results(
    hits: Sequence,
    root,
    query: str,
    width: int = 100,
    collection: str | None = None,
    query_is_file: bool = False,
    encoding: str | None = None,
) -> Group | Text:
    """A "similar to QUERY" line above :func:`similar_table` (not its title, which would be
    folded to the table's width), or where ``width`` is too narrow for it, the same answers as one
    record per hit (rank, path, distance and score; the title below), to print with
    ``soft_wrap=True`` so that a path is never cut. ``encoding``: the output's, where it is
    not UTF-8 (:func:`encodable`)."""
    shown = [encodable(path, encoding) for path in _relative_paths(hits, root)]
    titles = [encodable(plain(hit.title), encoding, path=False) for hit in hits]
    # The table where its paths keep one line (or, longer than its 48-column cap, fold there).
    path_need = min(max(8, _cells(shown)), TABLE_PATH_COLUMNS)
    asked = encodable(
        visible(query) if query_is_file else plain(query), encoding, path=query_is_file
    )
    heading = f"similar to {asked}"
    if collection is not None:  # (nested collections: which one answered)
        heading += f" in collection {encodable(visible(collection), encoding)}"
    if width >= _table_width([*_number_widths(hits), path_need, 8]):
        return Group(Text(heading), similar_table(hits, shown, width, titles))
    lines = [heading]
    for rank, (hit, path, title) in enumerate(zip(hits, shown, titles, strict=True), 1):
        lines.append(f"{rank}. {path}  (distance {hit.distance}, score {score_text(hit.score)})")
        lines.append("   " + _cut(title, max(20, width - 3)))
    return Text("\n".join(lines))


def encodable(text: str, encoding: str | None, *, path: bool = True) -> str:
    """``text`` as an output in ``encoding`` can carry it (None, or UTF-8: as it is): a
    character it cannot encode becomes its escape in a path or name (``\\u6708``, which
    ``$'...'`` reads back) or ``?`` in a title, before a table measures it (the stream's own
    ``?`` came after, one column for a wide character's two, and the row ran past the rest)."""
    if encoding is None or codecs.lookup(encoding).name == "utf-8":
        return text
    shown = []
    for ch in text:
        try:
            ch.encode(encoding)
        except UnicodeEncodeError:
            ch = escaped(ch) if path else "?"
        shown.append(ch)
    return "".join(shown)


def score_text(score: float) -> str:
    """A score to three places; a score that rounds to zero is ``0.000``, never ``-0.000``."""
    text = f"{score:.3f}"
    return "0.000" if text == "-0.000" else text


def _number_widths(hits: Sequence) -> list[int]:
    """Widths of the table's rank, distance and score columns."""
    return [
        _cells(["#", str(len(hits))]),
        _cells(["dist", *(str(hit.distance) for hit in hits)]),
        _cells(["score", *(score_text(hit.score) for hit in hits)]),
    ]


def _cut(text: str, cells: int) -> str:
    """``text`` in at most ``cells`` terminal columns, "…" where it was cut (wide characters
    take two)."""
    shown = Text(text)
    shown.truncate(cells, overflow="ellipsis")
    return shown.plain


def _relative_paths(hits: Sequence, root) -> list[str]:
    from pathlib import Path

    shown = []
    for hit in hits:
        try:
            shown.append(visible(str(Path(hit.path).relative_to(root))))
        except ValueError:
            shown.append(visible(str(hit.path)))
    return shown


def similar_table(
    hits: Sequence, shown: Sequence[str], width: int = 100, titles: Sequence[str] | None = None
) -> Table:
    """Rank, Hamming distance, score, path relative to the collection root (``shown``, from
    :func:`_relative_paths`), title.

    ``width`` is the console's: paths get what the titles leave them, at least 48 columns
    where their longest needs it, and all they need where titles keep 30 (folded beyond),
    titles get the rest, at least 8.
    """
    table = Table()
    titles = [plain(hit.title) for hit in hits] if titles is None else titles
    room = width - _table_width([*_number_widths(hits), 0, 0])  # for the path and the title
    longest, longest_title = _cells(shown) or 4, _cells(titles)
    title_least = max(len("title"), min(8, longest_title))  # (a header's width at the least)
    titles_keep = min(longest_title, TITLE_COLUMNS_YIELDED_TO_PATHS)
    path_width = min(
        longest, room - title_least, max(min(longest, TABLE_PATH_COLUMNS), room - titles_keep)
    )
    path_width = max(len("path"), min(8, longest), path_width)
    title_width = max(title_least, room - path_width)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("dist", justify="right", no_wrap=True)
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("path", overflow="fold", min_width=path_width, max_width=path_width)
    table.add_column("title", overflow="fold", max_width=title_width)
    for rank, (hit, path, title) in enumerate(zip(hits, shown, titles, strict=True), 1):
        cut = _cut(title, title_width)
        table.add_row(str(rank), str(hit.distance), score_text(hit.score), Folded(path), Text(cut))
    return table


def status_results(
    collections: Sequence[dict], width: int = 100, encoding: str | None = None
) -> Group | Text:
    """A "collections" line above :func:`status_table` (not its title, which Rich pads with
    spaces to the table's width), or where ``width`` is too narrow for it (its numbers would be
    cut short), one record per collection, to print with ``soft_wrap=True``."""
    rows = [tuple(encodable(cell, encoding) for cell in _status_row(c)) for c in collections]
    fixed = [
        _cells([header, *(row[i] for row in rows)])
        for i, header in ((0, "name"), (2, "documents"), (3, "bits"), (4, "model"))
    ]
    root_need = min(max(4, _cells([row[1] for row in rows])), MIN_PATH_COLUMNS)
    if width >= _table_width([*fixed, root_need, 10, len("watching")]):
        return Group(Text("collections"), status_table(rows, root_width=root_need))
    lines = ["collections"]
    for c, (name, root, _, bits, model, updated, watching) in zip(collections, rows, strict=True):
        watched = "watched" if watching == "yes" else "not watched"
        about = f"{_documents(c['documents'])}, {bits} bits, {model}, updated {updated}, {watched}"
        lines += [f"{name}: {about}", f"  {root}"]
    return Text("\n".join(lines))


def _status_row(c: dict) -> tuple[str, str, str, str, str, str, str]:
    import datetime

    updated = datetime.datetime.fromtimestamp(c["updated_at"]).strftime("%Y-%m-%d %H:%M")
    root = visible(c["root"]) + ("" if os.path.isdir(c["root"]) else " (gone)")
    return (
        visible(c["name"]),
        root,
        f"{c['documents']:,}",
        str(c["bits"]),
        plain(c["model"] or "-"),
        updated,
        "yes" if c["watching"] else "no",
    )


def status_table(rows: Sequence[tuple[str, ...]], root_width: int | None = None) -> Table:
    """One row per collection (:func:`_status_row`): name, root (marked "(gone)" when no longer
    a folder: moved or deleted; at least ``root_width`` columns before it folds), documents,
    bits, model, updated, watching."""
    table = Table()
    for column in ("name", "root", "documents", "bits", "model", "updated", "watching"):
        table.add_column(
            column,
            justify="right" if column in ("documents", "bits") else "left",
            no_wrap=column not in ("root", "updated"),
            overflow="fold",
            min_width=root_width if column == "root" else None,
        )
    for name, root, documents, bits, model, updated, watching in rows:
        table.add_row(Text(name), Folded(root), documents, bits, Text(model), updated, watching)
    return table
