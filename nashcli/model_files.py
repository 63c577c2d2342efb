"""The files of a saved hasher (``pipeline.SemanticHasher.save``), checked before they are loaded.

A damaged model file (truncated, garbled, emptied, the wrong kind of JSON) must give one line
naming it, not a traceback from deep inside numpy or torch. These checks read structure only,
and import neither torch nor scikit-learn, so ``nash status`` and the query path can afford them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

MODEL_FILES = ("model.json", "model.npz", "features.json", "features.npz")
MODEL_KINDS = ("nash", "vdsh", "lsh")


def read_json_object(path: Path) -> dict:
    """The JSON object stored in ``path``; ``ValueError`` saying what is wrong otherwise."""
    try:
        value = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise ValueError("missing") from None
    except OSError as error:
        raise ValueError(f"unreadable ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise ValueError("not JSON text") from None
    except json.JSONDecodeError as error:
        what = "empty" if not error.doc.strip() else f"not valid JSON ({error.msg})"
        raise ValueError(what) from None
    if not isinstance(value, dict):
        kinds = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
        raise ValueError(f"holds {kinds.get(type(value), 'a number')}, not a JSON object")
    return value


def check_npz(path: Path, required: Sequence[str] = (), *, checksums: bool = False) -> list[str]:
    """The array names in the npz archive ``path``; ``ValueError`` saying what is wrong
    (missing, empty, not an npz archive, truncated...). Reading the zip directory at its end
    catches truncation and garbage; ``checksums`` also reads every member to check its CRC
    (``nash status``), which loading does anyway and a query should not pay twice."""
    import zipfile

    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except FileNotFoundError:
        raise ValueError("missing") from None
    except OSError as error:
        raise ValueError(f"unreadable ({error.strerror or error})") from None
    if not head:
        raise ValueError("empty")
    if head != b"PK\x03\x04":
        raise ValueError("not an npz archive")
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip() if checksums else None
            names = [n[:-4] for n in archive.namelist() if n.endswith(".npy")]
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise ValueError(f"truncated or corrupt npz archive ({error})") from None
    if bad is not None:
        raise ValueError(f"corrupt npz archive (bad checksum of {bad})")
    missing = [n for n in required if n not in names]
    if missing:
        raise ValueError(f"no {missing[0]!r} array")
    return names


def model_problem(
    directory: Path, *, require_all: bool = True, checksums: bool = False
) -> tuple[str, str] | None:
    """``(file, what is wrong)`` for the first damaged file of a saved hasher in ``directory``
    (``pipeline.SemanticHasher.save``'s layout), or None. Checks structure, not the weights'
    values: JSON files must hold the objects the loaders index into, npz files must be intact
    archives. With ``require_all=False`` missing files are not reported (only damaged ones)."""
    for name in MODEL_FILES:
        path = directory / name
        if not require_all and not path.exists():
            continue
        try:
            if name == "model.json":
                config = read_json_object(path)
                for key, kind in (("n_bits", int), ("seed", int), ("method", str)):
                    if not isinstance(config.get(key), kind):
                        raise ValueError(f"no valid {key!r}")
                if config.get("kind") not in MODEL_KINDS:
                    raise ValueError(f"unknown model kind {config.get('kind')!r}")
                if config["kind"] != "lsh" and not isinstance(config.get("model"), dict):
                    raise ValueError("no valid 'model' settings")
            elif name == "features.json":
                features = read_json_object(path)
                if not isinstance(features.get("params"), dict):
                    raise ValueError("no valid 'params'")
                vocabulary = features.get("vocabulary")
                if not isinstance(vocabulary, list) or not all(
                    isinstance(w, str) for w in vocabulary
                ):
                    raise ValueError("no valid 'vocabulary'")
            else:
                check_npz(path, ("idf",) if name == "features.npz" else (), checksums=checksums)
        except ValueError as error:
            return name, str(error)
    if checksums:  # the thorough check (`nash status`): do the files agree with each other?
        return _features_problem(directory)
    return None


def _features_problem(directory: Path) -> tuple[str, str] | None:
    """The vocabulary and its idf weights must have one entry per word."""
    import numpy as np

    try:  # (checked one by one above; gone since if a writer removed the generation)
        words = len(read_json_object(directory / "features.json")["vocabulary"])
        with np.load(directory / "features.npz", allow_pickle=False) as arrays:
            weights = arrays["idf"].shape[0] if arrays["idf"].ndim == 1 else -1
    except (ValueError, OSError, KeyError) as error:
        return "features.npz", str(error) or type(error).__name__
    if weights != words:
        return "features.json", f"{words} words but {weights} idf weights in features.npz"
    return None
