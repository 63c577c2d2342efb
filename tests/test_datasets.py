"""Loading benchmark corpora: the JSON Lines format, the canonical archives, and the splits."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest

from nashcli.datasets import (
    Dataset,
    load_dataset,
    make_splits,
    read_archive,
    read_jsonl,
    write_jsonl,
)
from nashcli.errors import NashError


def _tar_gz(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _lines(path: Path, records: list) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for record in records:
            handle.write((record if isinstance(record, str) else json.dumps(record)) + "\n")
    return path


def _doc(i, split="train", labels=("a",), text=None) -> dict:
    return {"id": str(i), "text": text or f"document {i}", "labels": list(labels), "split": split}


# --------------------------------------------------------------------------------------------
# JSON Lines


def test_jsonl_round_trip_is_deterministic(tmp_path: Path) -> None:
    dataset = Dataset(
        "x",
        ["1", "2", "3"],
        ["a b", "ünï cödé", "c"],
        [["p"], ["p", "q"], ["q"]],
        ["train", "train", "test"],
    )
    write_jsonl(dataset, tmp_path / "one.jsonl.gz")
    write_jsonl(dataset, tmp_path / "two.jsonl.gz")
    assert (tmp_path / "one.jsonl.gz").read_bytes() == (tmp_path / "two.jsonl.gz").read_bytes()
    back = read_jsonl(tmp_path / "one.jsonl.gz")
    assert back.name == "one"
    assert (back.ids, back.texts, back.labels, back.split) == (
        dataset.ids,
        dataset.texts,
        dataset.labels,
        dataset.split,
    )
    assert back.counts() == {"train": 2, "test": 1}
    assert back.label_names() == ["p", "q"]


def test_a_lone_surrogate_read_is_written_back(tmp_path: Path) -> None:
    """read_jsonl takes "\\ud800" (valid JSON, not a character); writing it failed with
    UnicodeEncodeError: it goes out as the escape again."""
    path = tmp_path / "odd.jsonl"
    path.write_text('{"id": "1", "text": "x \\ud800 y", "labels": ["a"], "split": "train"}\n')
    dataset = read_jsonl(path)
    write_jsonl(dataset, tmp_path / "out.jsonl.gz")
    assert read_jsonl(tmp_path / "out.jsonl.gz").texts == ["x \ud800 y"]
    assert not list(tmp_path.glob("*.tmp"))


def test_plain_jsonl_and_lenient_fields(tmp_path: Path) -> None:
    path = tmp_path / "plain.jsonl"
    records = [
        {"id": 7, "text": "x", "labels": "solo", "split": "train"},
        {"id": "8", "text": "y", "labels": ["a", "a", "b"], "split": "val"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n", encoding="utf-8")
    dataset = read_jsonl(path)
    assert dataset.ids == ["7", "8"]
    assert dataset.labels == [["solo"], ["a", "b"]]
    assert dataset.split == ["train", "validation"]


@pytest.mark.parametrize(
    ("records", "message"),
    [
        (['{"id": "1", "text": "x"'], "line 1: not valid JSON"),
        (['{"id": "1", "text": "a\tb"}'], "(Invalid control character at: column 23)"),
        ([_doc(1), "[1, 2]"], "line 2: expected a JSON object"),
        ([{"id": "1", "text": "x", "split": "train"}], "missing field(s) labels"),
        ([{**_doc(1), "text": 5}], "'text' must be a string"),
        ([{**_doc(1), "labels": [1]}], "'labels' must be a list of strings (or one string)"),
        ([{**_doc(1), "split": "dev"}], "'split' must be train, validation or test"),
        ([_doc(1), _doc(1, "test")], "duplicate document id '1'"),
        ([_doc(1, labels=()), _doc(2, "test", labels=())], "no document has a label"),
        ([], "no documents"),
        (['{"id": ' + "1" * 5000 + "}"], "line 1: a number too long to read (over 4,300 digits)"),
        (["[" * 100_000 + "]" * 100_000], "line 1: JSON nested too deeply to read"),
        ([json.dumps([_doc(1)])], "(JSON Lines: one object per line, not an array)"),
    ],
)
def test_malformed_jsonl_names_the_problem(tmp_path: Path, records, message: str) -> None:
    path = _lines(tmp_path / "bad.jsonl.gz", records)
    with pytest.raises(NashError, match=None) as caught:
        read_jsonl(path)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("suffix", "named"), [(".gz", "gzip"), (".xz", "xz")])
def test_a_name_that_says_compressed_on_data_that_is_not(tmp_path: Path, suffix, named) -> None:
    """Not JSON either: the name's promise is what to say first (it said "line 1: not valid
    JSON" of what may be another archive); plain JSON Lines under that name is still read."""
    path = tmp_path / f"corpus.jsonl{suffix}"
    path.write_bytes(b"PK\x03\x04 a zip, say\n")
    with pytest.raises(NashError, match=f"corpus.jsonl{suffix}: not {named} data, as its name"):
        read_jsonl(path)
    path.write_text(json.dumps(_doc(1)) + "\n" + json.dumps(_doc(2, "test")) + "\n")
    assert read_jsonl(path).ids == ["1", "2"]


@pytest.mark.parametrize("compression", ["bz2", "xz"])
def test_jsonl_compressed_with_bzip2_or_xz_is_read(tmp_path: Path, compression: str) -> None:
    import bz2
    import lzma

    records = [_doc(1), _doc(2, "test", labels=("b",))]
    data = "".join(json.dumps(r) + "\n" for r in records).encode()
    compress = {"bz2": bz2.compress, "xz": lzma.compress}[compression]
    path = tmp_path / f"small.jsonl.{compression}"
    path.write_bytes(compress(data))
    dataset = read_jsonl(path)
    assert dataset.name == "small" and dataset.ids == ["1", "2"]
    assert dataset.labels == [["a"], ["b"]] and dataset.split == ["train", "test"]
    path.write_bytes(compress(data)[:-8])  # cut short: said so, not read as fewer lines
    with pytest.raises(NashError, match="damaged or incomplete compressed data"):
        read_jsonl(path)


@pytest.mark.parametrize("compression", ["bz2", "xz"])
def test_every_stream_of_a_bzip2_or_xz_file_is_read_or_its_damage_said(
    tmp_path: Path, compression: str
) -> None:
    """A concatenated (or ``pbzip2``) file is read to its last stream. The standard library's
    readers stopped without a word at a later stream whose first bytes were damaged: a corpus
    cut short, exit 0. Bytes that are no stream after the data are said, as after gzip data;
    xz's stream padding is fine."""
    import bz2
    import lzma

    compress = {"bz2": bz2.compress, "xz": lzma.compress}[compression]
    first, second = (
        compress("".join(json.dumps(_doc(i, split)) + "\n" for i in ids).encode())
        for ids, split in (((1, 2, 3), "train"), ((4, 5), "test"))
    )
    path = tmp_path / f"c.jsonl.{compression}"
    padding = b"\0" * 8 if compression == "xz" else b""
    path.write_bytes(first + padding + second)
    assert read_jsonl(path).ids == ["1", "2", "3", "4", "5"]
    broken = bytearray(second)
    broken[6] ^= 0xFF  # past the magic number: the stream's own header
    path.write_bytes(first + bytes(broken))
    with pytest.raises(NashError, match="damaged or incomplete compressed data"):
        read_jsonl(path)
    name = {"bz2": "bzip2", "xz": "xz"}[compression]
    path.write_bytes(first + second + b"GARBAGE\n")
    with pytest.raises(NashError, match=f"bytes after the end of its {name} data"):
        read_jsonl(path)
    with open(path, "rb") as raw, pytest.raises(NashError, match=f"its {name} data"):
        read_jsonl(_pipe_of(tmp_path, raw.read()))  # (not checked beforehand, as a file is)


def _pipe_of(tmp_path: Path, data: bytes) -> Path:
    """A FIFO that a thread fills with ``data`` (what ``<(cmd)`` gives): read once, no peeking."""
    import threading

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def fill() -> None:
        with contextlib.suppress(BrokenPipeError), open(fifo, "wb") as out:
            out.write(data)

    threading.Thread(target=fill, daemon=True).start()
    return fifo


def test_a_pipe_is_named_by_its_path_and_its_gzip_trailer_is_explained(tmp_path: Path) -> None:
    """``<(cmd)`` is /dev/fd/63: "63 line 1" said nothing; bytes after the gzip data of a pipe
    (not checked beforehand, as a file is) were "Not a gzipped file (b'ga')"."""
    pipe_like = tmp_path / "63"
    pipe_like.write_text("x\n")
    with pytest.raises(NashError, match=f"^{pipe_like} line 1: not valid JSON"):
        read_jsonl(pipe_like)
    lines = "".join(json.dumps(_doc(i, "train" if i % 4 else "test")) + "\n" for i in range(999))
    data = gzip.compress(lines.encode()) + b"garbage"
    reader, writer = os.pipe()
    os.set_blocking(writer, True)
    import threading

    feed = threading.Thread(target=lambda: (os.write(writer, data), os.close(writer)))
    feed.start()
    try:
        with pytest.raises(NashError, match="bytes after the end of its gzip data"):
            read_jsonl(f"/dev/fd/{reader}")
    finally:
        feed.join()
        os.close(reader)


def test_a_corpus_without_splits_takes_the_random_split(tmp_path: Path) -> None:
    records = [
        {"id": str(i), "text": f"doc {i}", "labels": ["a" if i % 2 else "b"]} for i in range(20)
    ]
    dataset = read_jsonl(_lines(tmp_path / "nosplit.jsonl", records))
    splits = make_splits(dataset, "random", seed=1)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (12, 4, 4)
    with pytest.raises(NashError, match="canonical split needs train and test.*--split random"):
        make_splits(dataset, "canonical")
    # Some lines without a split (a typo such as "spilt") must not fall out silently.
    records[3]["split"], records[4]["split"] = "train", "test"
    partly = read_jsonl(_lines(tmp_path / "partly.jsonl", records))
    with pytest.raises(NashError, match="18 of 20 documents have no 'split'"):
        make_splits(partly, "canonical")
    for record in records:
        record["split"] = "train"
    records[0].pop("split")
    with pytest.raises(NashError, match="1 of 20 documents has no 'split'"):
        make_splits(read_jsonl(_lines(tmp_path / "one.jsonl", records)), "canonical")
    with pytest.raises(NashError, match="1 document is too few to split"):
        make_splits(read_jsonl(_lines(tmp_path / "single.jsonl", records[:1])), "random")


def test_blank_labels_are_no_labels(tmp_path: Path) -> None:
    path = _lines(tmp_path / "c.jsonl.gz", [_doc(1, labels=("", "a", " ")), _doc(2, labels=("",))])
    assert read_jsonl(path).labels == [["a"], []]


def test_truncated_gzip_is_a_clear_error(tmp_path: Path) -> None:
    good = _lines(tmp_path / "good.jsonl.gz", [_doc(i) for i in range(200)])
    bad = tmp_path / "cut.jsonl.gz"
    bad.write_bytes(good.read_bytes()[:60])
    with pytest.raises(NashError, match="cannot read"):
        read_jsonl(bad)


def test_load_known_name_from_data_dir_and_env(tmp_path: Path, monkeypatch) -> None:
    _lines(tmp_path / "tmc2007_500_bow.jsonl.gz", [_doc(1), _doc(2, "test")])
    assert len(load_dataset("tmc", tmp_path)) == 2
    assert load_dataset("tmc", tmp_path).name == "tmc"
    monkeypatch.setenv("NASH_DATA", str(tmp_path))
    assert load_dataset("tmc").ids == ["1", "2"]


def test_load_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(NashError, match="unknown dataset 'mnist'"):
        load_dataset("mnist", tmp_path)
    with pytest.raises(NashError, match="not found"):
        load_dataset(str(tmp_path / "absent.jsonl.gz"))
    with pytest.raises(NashError, match=r"reuters21578\.tar\.gz .*--data-dir"):
        load_dataset("reuters", tmp_path)
    with pytest.raises(NashError, match="is a directory"):
        load_dataset(str(tmp_path))


# --------------------------------------------------------------------------------------------
# Reuters-21578 SGML


def _article(newid, split="TRAIN", topics_yes=True, topics=(), text="") -> str:
    d = "".join(f"<D>{t}</D>" for t in topics)
    yes = "YES" if topics_yes else "NO"
    return (
        f'<REUTERS TOPICS="{yes}" LEWISSPLIT="{split}" CGISPLIT="TRAINING-SET" '
        f'OLDID="{5000 + newid}" NEWID="{newid}">\n<DATE>26-FEB-1987 15:01:01.79</DATE>\n'
        f"<TOPICS>{d}</TOPICS>\n<PLACES><D>usa</D></PLACES>\n<UNKNOWN> \n&#5;&#5;&#5;C T\n"
        f"&#22;&#22;&#1;f0704&#31;reute\nu f BC-X   02-26 0105</UNKNOWN>\n{text}\n</REUTERS>\n"
    )


def _normal(title: str, body: str, author: bool = False) -> str:
    by = "<AUTHOR>    by A Writer, Reuters</AUTHOR>\n" if author else ""
    return (
        f"<TEXT>&#2;\n<TITLE>{title}</TITLE>\n{by}<DATELINE>    CITY, Feb 26 -\n    </DATELINE>"
        f"<BODY>{body}</BODY></TEXT>"
    )


SGM_000 = "".join(
    [
        '<!DOCTYPE lewis SYSTEM "lewis.dtd">\n',
        _article(
            1,
            topics=("cocoa", "cocoa", "onlytrain"),
            text=_normal(
                "BAHIA &lt;BAH> COCOA REVIEW",
                "Showers continued in\nthe zone, P&amp;L said.\n    Indented &lt;x>\n Reuter\n&#3;",
                author=True,
            ),
        ),
        _article(
            2, topics_yes=False, topics=("cocoa",), text=_normal("NOT MODAPTE", "no\n Reuter\n")
        ),
        _article(3, topics=("onlytrain",), text=_normal("DROPPED UNLABELED", "x\n Reuter\n&#3;")),
        _article(
            5,
            topics=("grain", "cocoa"),
            text=_normal("GRAIN", "Soybean oil total 55.8 (33.7).        REUTER\n&#3;"),
        ),
        _article(
            30,
            topics=("grain",),
            text='<TEXT TYPE="BRIEF">&#2;\n******<TITLE>ASSETS OF FUNDS ROSE 720.4 MLN DLRS\n'
            "</TITLE>Blah blah blah.\n&#3;\n\n</TEXT>",
        ),
        _article(
            1199,
            topics=("grain",),
            text='<TEXT TYPE="BRIEF">&#2;\n******<TITLE>ROSTENKOWSKI SAYS\n</TITLE>Blah blah blah.'
            "\n&#3;\n\n</TEXT>",
        ),
        _article(40, split="NOT-USED", topics=("grain",), text=_normal("UNUSED", "u\n Reuter\n")),
    ]
)
SGM_001 = "".join(
    [
        '<!DOCTYPE lewis SYSTEM "lewis.dtd">\n',
        _article(
            21001,
            split="TEST",
            topics=("cocoa",),
            text='<TEXT TYPE="UNPROC">&#2;\n  COCOA TABLE\n  Kilos   12  &lt;14>\n'
            " REUTER\n&#3;</TEXT>",
        ),
        _article(
            20999,
            split="TEST",
            topics=("grain", "onlytest"),
            text=_normal("CAF\xc9 PRICES", "Up 5 pct, told Reuters.\n Reuter\n&#3;"),
        ),
        _article(21002, split="TEST", topics=("onlytest",), text=_normal("ONLY TEST", "t")),
    ]
)


def test_reuters_modapte_from_sgml_tarball(tmp_path: Path) -> None:
    archive = _tar_gz(
        tmp_path / "reuters21578.tar.gz",
        {  # out of order on purpose, plus files that are not articles
            "reut2-001.sgm": SGM_001.encode("latin-1"),
            "README.txt": b"readme",
            "reut2-000.sgm": SGM_000.encode("latin-1"),
            "all-topics-strings.lc.txt": b"cocoa\n",
        },
    )
    dataset = read_archive(archive)
    assert dataset.name == "reuters"
    # Train then test, each by NEWID; unlabeled, TOPICS="NO", NOT-USED and NEWID 1199 dropped.
    assert dataset.ids == ["1", "5", "30", "20999", "21001"]
    assert dataset.split == ["train", "train", "train", "test", "test"]
    # Only categories with a train and a test document; duplicates removed, order kept.
    assert dataset.labels == [["cocoa"], ["grain", "cocoa"], ["grain"], ["grain"], ["cocoa"]]
    assert dataset.texts[0] == (
        "BAHIA <BAH> COCOA REVIEW\nShowers continued in\nthe zone, P&L said.\n    Indented <x>"
    )
    assert dataset.texts[1] == "GRAIN\nSoybean oil total 55.8 (33.7)."
    assert dataset.texts[2] == "ASSETS OF FUNDS ROSE 720.4 MLN DLRS"  # BRIEF: the title only
    assert dataset.texts[3] == "CAFÉ PRICES\nUp 5 pct, told Reuters."  # Latin-1, "Reuters" kept
    assert dataset.texts[4] == "COCOA TABLE\n  Kilos   12  <14>"  # UNPROC: the whole TEXT
    # The same corpus through load_dataset, by name from a data dir.
    assert load_dataset("reuters", tmp_path).ids == dataset.ids
    # (five documents, not the canonical corpus's 10,788: said)
    (note,) = load_dataset("reuters", tmp_path).notes
    assert note.startswith("reuters: 3 train + 2 test documents, not the canonical 7,769 train")


def test_reuters_shared_file_matches_procedure(shared_datasets: Path) -> None:
    """The shared corpus has the counts the ModApte procedure gives (7,769 + 3,019, 90 labels)."""
    dataset = load_dataset("reuters", shared_datasets)
    assert dataset.counts() == {"train": 7769, "test": 3019} and dataset.notes == ()
    assert len(dataset.label_names()) == 90
    assert "1199" not in dataset.ids


# --------------------------------------------------------------------------------------------
# 20 Newsgroups bydate


def test_newsgroups_bydate_tarball(tmp_path: Path) -> None:
    members = {
        "20news-bydate-test/sci.space/60001": b"From: a@b\nSubject: orbit\n\nmoon",
        "20news-bydate-train/sci.space/10": b"Subject: ten\n\nten",
        "20news-bydate-train/sci.space/9": b"Subject: nine\n\nnine",
        "20news-bydate-train/alt.atheism/49960": (
            b"From: x\nSubject: caf\xe9\r\n\n> quoted\n-- \nsig\n"
        ),
    }
    archive = _tar_gz(tmp_path / "20news-bydate.tar.gz", members)
    dataset = load_dataset(str(archive))
    assert dataset.ids == [
        "alt.atheism/49960",
        "sci.space/9",
        "sci.space/10",
        "sci.space/60001",
    ]
    assert dataset.split == ["train", "train", "train", "test"]
    assert dataset.labels == [["alt.atheism"], ["sci.space"], ["sci.space"], ["sci.space"]]
    # Latin-1, nothing stripped (headers, CR, quotes, signature all kept).
    assert dataset.texts[0] == "From: x\nSubject: café\r\n\n> quoted\n-- \nsig\n"
    assert load_dataset("20ng", tmp_path).ids == dataset.ids


def test_archive_names_that_are_odd_numbers_or_twice_there(tmp_path: Path) -> None:
    """A file named '²' ('²'.isdigit() is True, int('²') raises), a NEWID or file name of
    5,000 digits (over int's 4,300-digit limit) were tracebacks; two members for one document
    id were read as two documents of one id (read_jsonl refuses that)."""
    long = "1" * 5000
    news = {
        "20news-bydate-train/sci.space/9": b"nine",
        "20news-bydate-train/sci.space/\u00b2": b"square",
        f"20news-bydate-train/sci.space/{long}": b"long",
        "20news-bydate-test/sci.space/7": b"seven",
    }
    dataset = load_dataset(str(_tar_gz(tmp_path / "20news-bydate.tar.gz", news)))
    assert dataset.ids == ["sci.space/9", f"sci.space/{long}", "sci.space/\u00b2", "sci.space/7"]
    twice = {
        "20news-bydate-train/sci.space/9": b"nine",
        "copy/20news-bydate-train/sci.space/9": b"nine again",
        "20news-bydate-test/sci.space/7": b"seven",
    }
    (tmp_path / "twice").mkdir()
    with pytest.raises(NashError, match="two files for document 'sci.space/9'"):
        load_dataset(str(_tar_gz(tmp_path / "twice" / "20news-bydate.tar.gz", twice)))
    sgm = "".join(
        _article(newid, split=split, topics=("grain",), text=_normal("GRAIN", "wheat"))
        for newid, split in ((1234, "TRAIN"), (5, "TRAIN"), (7, "TEST"))
    ).replace('NEWID="1234"', f'NEWID="{long}"')
    archive = _tar_gz(tmp_path / "reuters21578.tar.gz", {"reut2-000.sgm": sgm.encode()})
    assert read_archive(archive).ids == ["5", long, "7"]


def test_unrecognised_or_corrupt_archive(tmp_path: Path) -> None:
    other = _tar_gz(tmp_path / "other.tar.gz", {"notes/a.txt": b"hello"})
    with pytest.raises(NashError, match="neither Reuters-21578"):
        load_dataset(str(other))
    corrupt = tmp_path / "corrupt.tar.gz"
    corrupt.write_bytes(b"\x1f\x8b\x08\x00 definitely not a tarball")
    with pytest.raises(NashError, match="cannot read archive"):
        load_dataset(str(corrupt))
    not_gzip = tmp_path / "reuters21578.tar.gz"
    not_gzip.write_text("not an archive at all")
    with pytest.raises(NashError, match="cannot read archive") as error:
        load_dataset(str(not_gzip))
    assert "\n" not in str(error.value)  # one line, not tarfile's line per method


def _damaged(data: bytes, offset: int) -> bytes:
    """``data`` with 8 bytes at ``offset`` overwritten (a bad disk block, a broken download)."""
    return data[:offset] + b"\xff" * 8 + data[offset + 8 :]


def test_damaged_compressed_data_is_an_error_not_a_smaller_corpus(tmp_path: Path) -> None:
    """A damaged gzip stream once made tarfile stop early and evaluate part of the corpus with
    exit 0, and raised zlib.error (a traceback) elsewhere; a CRC error alone went unnoticed."""
    articles = "".join(
        _article(
            i,
            split="TRAIN" if i % 3 else "TEST",
            topics=("grain",),
            text=_normal(
                f"NEWS {i}", " ".join(f"word{i}x{j}" for j in range(300)) + "\n Reuter\n&#3;"
            ),
        )
        for i in range(1, 400)
    )
    good = _tar_gz(tmp_path / "good.tar.gz", {"reut2-000.sgm": articles.encode("latin-1")})
    assert len(read_archive(good)) == 399
    data = good.read_bytes()
    for label, bad in {
        "block": _damaged(data, len(data) // 2),
        "crc": data[:-8] + bytes([data[-8] ^ 1]) + data[-7:],
    }.items():
        path = tmp_path / f"{label}.tar.gz"
        path.write_bytes(bad)
        with pytest.raises(NashError, match="damaged or incomplete compressed data"):
            read_archive(path)
    lines = _lines(tmp_path / "c.jsonl.gz", [_doc(i, text="x" * 500 + str(i)) for i in range(300)])
    damaged = tmp_path / "damaged.jsonl.gz"
    damaged.write_bytes(_damaged(lines.read_bytes(), 1000))
    with pytest.raises(NashError, match="cannot read .*damaged or incomplete"):
        read_jsonl(damaged)


@pytest.mark.parametrize(
    ("sgm", "message"),
    [
        (_article(7, topics=("grain",), text=_normal("A", "a")).replace(' NEWID="7"', ""), "NEWID"),
        (_article(7, topics=("grain",), text=_normal("A", "a")).replace('"7"', '"7a"'), "NEWID"),
        (_article(7, topics=("grain",), text=_normal("A", "a")).split("</REUTERS>")[0], "cut off"),
        (
            _article(7, topics=("grain",), text=_normal("A", "a")) * 2,
            "two articles with NEWID 7",
        ),
    ],
)
def test_malformed_reuters_sgml_names_the_problem(tmp_path: Path, sgm: str, message: str) -> None:
    archive = _tar_gz(
        tmp_path / "r.tar.gz",
        {"reut2-000.sgm": SGM_000.encode("latin-1"), "reut2-001.sgm": sgm.encode("latin-1")},
    )
    with pytest.raises(NashError, match=message) as error:
        read_archive(archive)
    assert "reut2-001.sgm" in str(error.value)


@pytest.mark.parametrize("compression", ["bz2", "xz"])
def test_damaged_bzip2_and_xz_archives_are_errors(tmp_path: Path, compression: str) -> None:
    members = {
        f"20news-bydate-{part}/sci.space/{i}": f"orbit {i} ".encode() * 400
        for i, part in enumerate(["train", "test"] * 30)
    }
    good = tmp_path / f"n.tar.{compression}"
    with tarfile.open(good, f"w:{compression}") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert len(load_dataset(str(good))) == 60
    bad = tmp_path / f"bad.tar.{compression}"
    bad.write_bytes(_damaged(good.read_bytes(), len(good.read_bytes()) // 2))
    with pytest.raises(NashError, match="damaged or incomplete compressed data"):
        load_dataset(str(bad))


@pytest.mark.parametrize("compression", ["bz2", "xz"])
def test_an_archive_of_several_streams_is_read_to_its_last(tmp_path: Path, compression) -> None:
    """tarfile's own readers stopped at xz's padding between streams: a corpus cut short where
    the cut fell between two members (a review's 40-post archive read as 25), else an error."""
    import bz2
    import lzma

    members = {
        f"20news-bydate-{part}/sci.space/{i}": f"orbit {i} ".encode() * 400
        for i, part in enumerate(["train", "test"] * 20)
    }
    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    data = plain.getvalue()
    compress = {"bz2": bz2.compress, "xz": lzma.compress}[compression]
    padding = b"\0" * 4 if compression == "xz" else b""
    archive = tmp_path / f"20news-bydate.tar.{compression}"
    half = len(data) // 2
    archive.write_bytes(compress(data[:half]) + padding + compress(data[half:]))
    assert len(load_dataset(str(archive))) == 40


def test_bytes_after_the_data_of_a_bzip2_archive_are_ignored_as_bzip2_does(tmp_path: Path) -> None:
    archive = tmp_path / "20news-bydate.tar.bz2"
    with tarfile.open(archive, "w:bz2") as tar:
        for name in ("20news-bydate-train/g/1", "20news-bydate-test/g/2"):
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    archive.write_bytes(archive.read_bytes() + b"GARBAGE\n")
    assert len(load_dataset(str(archive))) == 2


def test_bytes_after_a_complete_gzip_stream_are_ignored_as_gzip_does(tmp_path: Path) -> None:
    archive = _tar_gz(
        tmp_path / "a.tar.gz", {"20news-bydate-train/g/1": b"x", "20news-bydate-test/g/2": b"y"}
    )
    padded = tmp_path / "padded.tar.gz"
    padded.write_bytes(archive.read_bytes() + b"GARBAGE\n")
    assert len(load_dataset(str(padded))) == 2
    # Lines are read to the end, where gzip would stop on them: one line says what to do.
    lines = _lines(
        tmp_path / "c.jsonl.gz", [_doc(i, "test" if i % 3 == 0 else "train") for i in range(9)]
    )
    lines.write_bytes(lines.read_bytes() + b"GARBAGE\n")
    with pytest.raises(NashError, match="bytes after the end of its gzip data"):
        read_jsonl(lines)


def test_other_tar_compressions_a_bom_and_a_zip(tmp_path: Path) -> None:
    members = {"20news-bydate-train/sci.space/1": b"orbit", "20news-bydate-test/sci.space/2": b"x"}
    bz2 = tmp_path / "20news-bydate.tar.bz2"
    with tarfile.open(bz2, "w:bz2") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert load_dataset(str(bz2)).ids == ["sci.space/1", "sci.space/2"]
    bom = tmp_path / "bom.jsonl"
    bom.write_text("\ufeff" + json.dumps(_doc(1)) + "\n" + json.dumps(_doc(2, "test")) + "\n")
    assert read_jsonl(bom).ids == ["1", "2"]
    import zipfile

    with zipfile.ZipFile(tmp_path / "corpus.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.jsonl", json.dumps(_doc(1)) * 50)
    with pytest.raises(NashError, match="not UTF-8 text"):
        load_dataset(str(tmp_path / "corpus.zip"))


def test_a_corpus_can_be_read_from_a_pipe(tmp_path: Path) -> None:
    """``nash eval <(zcat corpus.jsonl.gz)``: a pipe can be read once only (the gzip check
    used to open it twice and lose the first bytes)."""
    import os
    import threading
    import time

    fifo = tmp_path / "corpus.jsonl"
    os.mkfifo(fifo)
    payload = gzip.compress(
        "".join(
            json.dumps(_doc(i, "test" if i % 4 == 0 else "train")) + "\n" for i in range(20)
        ).encode()
    )

    def write(pause: float) -> None:  # the first byte alone, as a slow pipe may send it
        with open(fifo, "wb") as handle:
            handle.write(payload[:1])
            handle.flush()
            time.sleep(pause)
            handle.write(payload[1:])

    for pause in (0.0, 0.2):
        writer = threading.Thread(target=write, args=(pause,))
        writer.start()
        dataset = read_jsonl(fifo)
        writer.join(timeout=5)
        assert len(dataset) == 20 and dataset.counts() == {"train": 15, "test": 5}
        assert dataset.name == "corpus"
    # <(cat corpus.jsonl.gz): named by its path, not by the descriptor's number ("63")
    nameless = tmp_path / "63"
    os.mkfifo(nameless)
    threading.Thread(target=lambda: nameless.write_bytes(payload)).start()
    assert load_dataset(str(nameless)).name == str(nameless)
    # <(cat archive.tar.gz): said to be an archive, not "line 1: not valid JSON"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        member = tarfile.TarInfo("20news-bydate-train/alt.atheism/1")
        member.size = 5
        tar.addfile(member, io.BytesIO(b"hello"))
    os.unlink(nameless)
    os.mkfifo(nameless)
    threading.Thread(target=lambda: nameless.write_bytes(buffer.getvalue())).start()
    with pytest.raises(NashError, match="a tar archive; nash eval reads archives from a file"):
        load_dataset(str(nameless))
    archive = tmp_path / "corpus.tar.gz"
    os.mkfifo(archive)
    with pytest.raises(NashError, match="an archive must be a file"):
        load_dataset(str(archive))  # tarfile would open it twice: refused, not a hang


# --------------------------------------------------------------------------------------------
# Splits


def _corpus(n_train: int, n_test: int, validation: int = 0) -> Dataset:
    n = n_train + n_test + validation
    split = ["train"] * n_train + ["validation"] * validation + ["test"] * n_test
    return Dataset("c", [str(i) for i in range(n)], ["t"] * n, [["a"]] * n, split)


def test_canonical_split_carves_validation_from_train_the_same_for_every_seed() -> None:
    dataset = _corpus(200, 50)
    first = make_splits(dataset, "canonical", seed=0)
    other = make_splits(dataset, "canonical", seed=7)
    assert len(first.val) == 20 and len(first.train) == 180
    assert np.array_equal(first.test, np.arange(200, 250))
    assert set(first.train) | set(first.val) == set(range(200))
    assert not set(first.train) & set(first.val)
    assert np.array_equal(first.val, other.val)  # the database does not depend on --seed
    assert not np.array_equal(first.val, np.arange(20))  # not simply the first documents
    assert first.val_from_train  # so the database (the training split) includes it


def test_canonical_split_uses_a_files_own_validation_documents() -> None:
    splits = make_splits(_corpus(30, 10, validation=5), "canonical")
    assert np.array_equal(splits.val, np.arange(30, 35))
    assert len(splits.train) == 30 and not splits.val_from_train


def test_canonical_split_needs_train_and_test() -> None:
    with pytest.raises(NashError, match="--split random"):
        make_splits(_corpus(30, 0), "canonical")


def test_random_split_is_a_seeded_60_20_20_shuffle() -> None:
    dataset = _corpus(80, 20)
    a, b, c = (make_splits(dataset, "random", seed=s) for s in (1, 1, 2))
    assert (len(a.train), len(a.val), len(a.test)) == (60, 20, 20)
    assert sorted(np.concatenate([a.train, a.val, a.test])) == list(range(100))
    assert np.array_equal(a.test, b.test)
    assert not np.array_equal(a.test, c.test)
    assert not a.val_from_train  # a part of its own, never searched
    with pytest.raises(NashError, match="unknown split"):
        make_splits(dataset, "kfold")


def test_canonical_validation_is_the_carve_the_model_was_tuned_with() -> None:
    from nashcli.features import carve_validation

    splits = make_splits(_corpus(777, 10), "canonical")
    train, val = carve_validation(777, 0.1, seed=0)
    assert np.array_equal(splits.train, train) and np.array_equal(splits.val, val)


# --------------------------------------------------------------------------------------------
# The VDSH release


def _words(n: int, topic: str) -> str:
    return " ".join(f"{topic}{i % 7} common{i % 3}" for i in range(n))


def test_vdsh_release_relabels_filters_and_halves_the_test_split() -> None:
    from nashcli.datasets import vdsh_release

    train_cats = (
        [["money-fx"]] * 20 + [["money-supply"]] * 10 + [["earn"]] * 15 + [["acq"]] * 12
    ) + [["rare-cat"]] * 3
    texts = [_words(20, f"t{i % 5}") for i in range(len(train_cats))]
    labels, split = list(train_cats), ["train"] * len(train_cats)
    texts += [_words(20, "t0"), _words(1, "t0"), _words(600, "t1"), _words(20, "t2")] * 5
    labels += [["money-fx"], ["earn"], ["acq"], ["rare-cat"]] * 5
    split += ["test"] * 20
    corpus = Dataset("toy", [str(i) for i in range(len(texts))], texts, labels, split)

    release = vdsh_release(corpus, label_tokens=4)
    # Labels are the 4 most frequent category-name tokens: money (30), fx (20), earn, acq.
    assert release.label_names() == ["acq", "earn", "fx", "money"]
    by_id = dict(zip(release.ids, release.labels, strict=True))
    assert by_id["0"] == ["fx", "money"] and by_id["20"] == ["money"] and by_id["57"] == []
    # Too short (2 words), too long (1,200) and label-less ("rare-cat") test documents are gone;
    # the 5 good ones are shuffled into 3 validation and 2 test documents.
    assert release.counts() == {"train": 60, "validation": 3, "test": 2}
    assert all(len(t.split()) > 5 for t in release.texts)
    # The 20 Newsgroups notebook's rule: only empty documents go (the short and long stay).
    notebook = vdsh_release(corpus, label_tokens=4, words=(1, None))
    assert notebook.counts() == {"train": 60, "validation": 8, "test": 7}


def test_vdsh_release_sizes_do_not_depend_on_the_cpu() -> None:
    # 200 words of the release's 10,000-word vocabulary are more frequent than the rest, then
    # 10,500 tie (3 documents each) for the other 9,800: the first by name get in on every
    # machine, so a query made of the last 60 has no word of it and is dropped. (With
    # scikit-learn's max_features the CPU's sort chose them, and such a query kept most words.)
    from nashcli.datasets import vdsh_release

    words = [f"w{i:05d}" for i in range(10_500)]
    texts = [" ".join(words[d % 10 :: 10]) for d in range(30)]
    for d in range(3):
        texts[d] += "".join(f" f{k:03d}" * (k + 2) for k in range(200))
    texts += [" ".join(words[-60:]), " ".join(words[:60])]
    corpus = Dataset(
        "toy", [str(i) for i in range(32)], texts, [["a"]] * 32, ["train"] * 30 + ["test"] * 2
    )
    release = vdsh_release(corpus, words=(1, None))
    assert release.counts() == {"train": 30, "validation": 1}  # (no test document left)
    assert release.texts[-1] == texts[-1]


def test_vdsh_release_strips_newsgroup_headers_quotes_and_signatures() -> None:
    from nashcli.datasets import _strip_newsgroup

    post = (
        "From: someone@example.org\nSubject: engines\n\n"
        "In article <1@x> bob writes:\n> quoted line\nThe real body about engines.\n"
        "More body.\n--\nSignature Line\n"
    )
    assert _strip_newsgroup(post) == "The real body about engines.\nMore body."
    # The footer goes before the quotes, as in scikit-learn: everything after the last blank
    # line is the "signature" here, and the quoted line before it is then dropped too.
    assert _strip_newsgroup("H: x\n\n> quoted\n\nMy reply here.\n") == ""


def test_vdsh_release_of_the_shared_reuters(shared_datasets: Path) -> None:
    dataset = load_dataset("reuters-vdsh", shared_datasets)
    assert len(dataset.label_names()) == 20 and "money" in dataset.label_names()
    counts = dataset.counts()
    assert 7700 <= counts["train"] <= 7769
    assert abs(counts["validation"] - counts["test"]) <= 1


def test_a_bzip2_archive_damaged_past_its_first_blocks_is_an_error(tmp_path: Path) -> None:
    """bzip2 hands out a block before checking its checksum, and tarfile took the damaged
    bytes for the archive's end: 211 of 300 posts were evaluated with exit 0."""
    import bz2
    import random

    rng = random.Random(0)
    words = [f"w{i}" for i in range(3000)]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for i in range(300):
            data = " ".join(rng.choice(words) for _ in range(1500)).encode()
            info = tarfile.TarInfo(f"20news-bydate-{'train' if i % 4 else 'test'}/g{i % 3}/{i}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    packed = bz2.compress(buffer.getvalue())
    at = int(len(packed) * 0.8)
    path = tmp_path / "news.tar.bz2"
    path.write_bytes(packed[:at] + bytes([packed[at] ^ 0x55]) + packed[at + 1 :])
    with pytest.raises(NashError, match="damaged or incomplete compressed data"):
        read_archive(path)


def test_an_archive_of_the_other_corpus_is_refused_under_a_known_name(tmp_path: Path) -> None:
    """reuters21578.tar.gz saved as 20news-bydate.tar.gz was evaluated as `20ng` (and the
    reverse as `reuters`) without a word; an archive of both was read as Reuters."""
    reuters = {"reut2-000.sgm": SGM_000.encode("latin-1"), "reut2-001.sgm": SGM_001.encode()}
    news = {
        "20news-bydate-train/sci.space/1": b"orbit",
        "20news-bydate-test/sci.space/2": b"moon",
    }
    _tar_gz(tmp_path / "20news-bydate.tar.gz", reuters)
    with pytest.raises(NashError, match="holds Reuters-21578 .* files, not 20news-bydate"):
        load_dataset("20ng", tmp_path)
    (tmp_path / "20news-bydate.tar.gz").unlink()
    _tar_gz(tmp_path / "reuters21578.tar.gz", news)
    for name in ("reuters", "reuters-vdsh"):
        with pytest.raises(NashError, match="holds 20news-bydate files, not Reuters-21578"):
            load_dataset(name, tmp_path)
    both = _tar_gz(tmp_path / "both.tar.gz", {**reuters, **news})
    with pytest.raises(NashError, match="holds both Reuters-21578 and 20news-bydate"):
        load_dataset(str(both))
    assert len(load_dataset(str(_tar_gz(tmp_path / "n.tar.gz", news)))) == 2  # by its members


@pytest.mark.parametrize("prefix", ["", "./"])  # ("./": `tar czf x.tgz .` names them so)
def test_archive_side_files_links_and_names(tmp_path: Path, prefix: str) -> None:
    """macOS's ._N, .DS_Store and __MACOSX/ files were read as posts; hard-linked posts (GNU tar
    stores a file linked twice so) were dropped without a word; NEWS.TAR.GZ or news.tar.gz.1
    was refused as "a tar archive; ... reads archives from a file named .tar.gz"."""
    posts = {
        "20news-bydate-train/sci.space/1": b"orbit",
        "20news-bydate-train/sci.space/._1": b"\x00\x05\x16\x07 apple double",
        "20news-bydate-train/sci.space/.DS_Store": b"\x00\x00\x00\x01Bud1",
        "__MACOSX/20news-bydate-test/sci.space/._2": b"\x00\x05\x16\x07",
        "20news-bydate-test/sci.space/2": b"moon",
    }
    path = tmp_path / "news.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in posts.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, kind, target in (
            ("20news-bydate-train/sci.space/3", tarfile.LNKTYPE, "20news-bydate-train/sci.space/1"),
            ("20news-bydate-test/sci.space/4", tarfile.SYMTYPE, "2"),
            ("20news-bydate-test/sci.space/5", tarfile.SYMTYPE, "../nowhere/9"),
        ):
            info = tarfile.TarInfo(prefix + name)
            info.type = kind
            info.linkname = prefix + target if kind == tarfile.LNKTYPE else target
            tar.addfile(info)
    dataset = read_archive(path)
    assert dataset.ids == ["sci.space/1", "sci.space/3", "sci.space/2", "sci.space/4"]
    assert dataset.texts == ["orbit", "orbit", "moon", "moon"]
    for odd in ("NEWS.TAR.GZ", "news.tar.gz.1"):
        renamed = tmp_path / odd
        renamed.write_bytes(path.read_bytes())
        assert load_dataset(str(renamed)).ids == dataset.ids


def test_archive_errors_say_what_is_wrong(tmp_path: Path) -> None:
    """A tar cut off midway was "(not a tar archive?)"; an unreadable file named its path twice
    ("cannot read x: [Errno 13] Permission denied: 'x'")."""
    body = b"orbit " * 2000
    whole = io.BytesIO()
    with tarfile.open(fileobj=whole, mode="w") as tar:
        for i in range(3):
            info = tarfile.TarInfo(f"20news-bydate-train/sci.space/{i}")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    cut = tmp_path / "cut.tar"
    cut.write_bytes(whole.getvalue()[: 512 + 12288 + 512 + 100])  # in the second post
    with pytest.raises(NashError, match=r"cut short\)$"):
        read_archive(cut)
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"x" * 2048)
    with pytest.raises(NashError, match=r"not a tar archive\?\)$"):
        read_archive(junk)
    from nashcli.datasets import _reason

    denied = PermissionError(13, "Permission denied", str(tmp_path / "x"))
    assert _reason(denied) == "Permission denied"


def test_a_corpus_with_ustar_where_a_tar_header_has_it_is_read(tmp_path: Path) -> None:
    """A JSON Lines file whose bytes 257-262 happened to spell "ustar" ("mustard") was refused
    as a tar archive: the header's checksum must add up too."""
    records = [_doc(i, text=f"tomato mustard basil {i}") for i in range(6)]
    first = json.dumps(records[0])
    at = first.index("mustard") + 1  # "ustar" of "mustard"
    records[0]["text"] = " " * (257 - at) + records[0]["text"]
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    assert path.read_bytes()[257:262] == b"ustar"
    assert len(load_dataset(str(path))) == 6
