"""Stable hashes for seeds and samples: the same inputs give the same numbers in every process (unlike ``hash()``)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import xxhash


def derive_seed(seed: int, name: str) -> int:
    """A stage's own seed from the run seed, so one number reproduces the whole run and stages stay independent."""
    h = hashlib.blake2b(f"{seed}\x00{name}".encode(), digest_size=8)
    return int.from_bytes(h.digest(), "big") >> 33  # 31 bits: fits every RNG's seed type (torch, numpy, random)


def sampled(ids: Sequence[str], share: float, seed: int) -> list[bool]:
    """A deterministic ``share`` of records by a hash of their id: the same ids are picked on every run."""
    limit = int(share * 2**64)
    return [xxhash.xxh3_64_intdigest(i.encode("utf-8", "surrogatepass"), seed) < limit for i in ids]
