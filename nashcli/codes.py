"""Binary codes: 0/1 matrices <-> bit-packed words.

A code of ``n_bits`` bits is stored as ``ceil(n_bits / 64)`` little-endian uint64 words:
bit ``j`` of the code is bit ``j % 64`` of word ``j // 64``; padding bits are zero, so they never
add to a Hamming distance. Search scans "planes": one contiguous uint64 array per word.
"""

from __future__ import annotations

import numpy as np


def n_words(n_bits: int) -> int:
    """Number of uint64 words that hold ``n_bits`` bits."""
    return (n_bits + 63) // 64


def pack_codes(bits: np.ndarray) -> np.ndarray:
    """Pack an (n, n_bits) 0/1 matrix into an (n, n_words) uint64 matrix, row per code."""
    bits = np.asarray(bits)
    if bits.ndim != 2:
        raise ValueError(f"expected a 2-D bit matrix, got shape {bits.shape}")
    if bits.dtype != bool and not ((bits == 0) | (bits == 1)).all():
        raise ValueError("codes must be 0/1 or bool (for ±1 sign codes, pass codes > 0)")
    n, n_bits = bits.shape
    packed = np.packbits(bits.astype(bool), axis=1, bitorder="little")  # (n, ceil(n_bits/8))
    padded = np.zeros((n, n_words(n_bits) * 8), dtype=np.uint8)
    padded[:, : packed.shape[1]] = packed
    return padded.view("<u8").astype(np.uint64, copy=False)


def unpack_codes(words: np.ndarray, n_bits: int) -> np.ndarray:
    """Inverse of :func:`pack_codes`: (n, n_words) uint64 -> (n, n_bits) bool."""
    words = np.ascontiguousarray(words, dtype="<u8")
    if words.ndim != 2:
        raise ValueError(f"expected a 2-D matrix of words, got shape {words.shape}")
    if not 0 <= n_bits <= 64 * words.shape[1]:
        raise ValueError(f"{n_bits} bits do not fit in {words.shape[1]} words of 64")
    as_bytes = words.view(np.uint8).reshape(words.shape[0], 8 * words.shape[1])
    return np.unpackbits(as_bytes, axis=1, count=n_bits, bitorder="little").astype(bool)


def to_planes(words: np.ndarray) -> np.ndarray:
    """(n, n_words) row-major codes -> (n_words, n) planes, each word contiguous."""
    return np.ascontiguousarray(np.asarray(words, dtype=np.uint64).T)
