"""RFC 6962 Merkle tree hashes and inclusion proofs (SHA-256, leaf 0x00, node 0x01)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


_CACHED = 16  # perfect subtrees of at least this many leaves are remembered


def root(leaves: Sequence[bytes], *, cache: dict[tuple[int, int], bytes] | None = None,
         offset: int = 0) -> bytes:
    """Merkle Tree Hash of leaf hashes (RFC 6962 §2.1); the empty tree hashes to SHA-256('').

    With a ``cache`` (for one append-only log: ``leaves`` is then the log's prefix starting
    at ``offset``), the hashes of complete, aligned subtrees are kept: they never change as
    the log grows, so proofs after the first cost O(log² n) hashes instead of O(n)."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    key = (offset, n)
    keep = cache is not None and n >= _CACHED and n & (n - 1) == 0
    if keep and cache is not None and key in cache:
        return cache[key]
    k = _split(n)
    value = node_hash(root(leaves[:k], cache=cache, offset=offset),
                      root(leaves[k:], cache=cache, offset=offset + k))
    if keep and cache is not None:
        cache[key] = value
    return value


def inclusion_proof(index: int, leaves: Sequence[bytes], *,
                    cache: dict[tuple[int, int], bytes] | None = None,
                    offset: int = 0) -> list[bytes]:
    """The audit path for leaf ``index`` in the tree of ``leaves`` (RFC 6962 §2.1.1)."""
    n = len(leaves)
    if not 0 <= index < n:
        raise ValueError("leaf index out of range")
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return [*inclusion_proof(index, leaves[:k], cache=cache, offset=offset),
                root(leaves[k:], cache=cache, offset=offset + k)]
    return [*inclusion_proof(index - k, leaves[k:], cache=cache, offset=offset + k),
            root(leaves[:k], cache=cache, offset=offset)]


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes],
                     expected_root: bytes) -> bool:
    """Recompute the root from a leaf hash and its audit path (RFC 9162 §2.1.3.2)."""
    if not 0 <= index < size:
        return False
    fn, sn, result = index, size - 1, leaf
    for sibling in proof:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            result = node_hash(sibling, result)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            result = node_hash(result, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and result == expected_root


def consistency_proof(old_size: int, leaves: Sequence[bytes]) -> list[bytes]:
    """The proof that the tree of ``old_size`` leaves is a prefix of ``leaves`` (RFC 6962
    §2.1.2, SUBPROOF). Empty when the sizes are equal or the old tree is empty."""
    n = len(leaves)
    if not 0 <= old_size <= n:
        raise ValueError("old tree size out of range")
    if old_size in (0, n):
        return []
    return _subproof(old_size, leaves, True)


def _subproof(m: int, leaves: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], complete), root(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), root(leaves[:k])]


def verify_consistency(old_size: int, new_size: int, proof: Sequence[bytes],
                       old_root: bytes, new_root: bytes) -> bool:
    """Check a consistency proof between two tree heads (RFC 9162 §2.1.4.2)."""
    if not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


class Frontier:
    """The right edge of a growing tree: the roots of its perfect subtrees, largest first.

    Appending a leaf costs O(log n) and so does the root of the tree so far, so a whole log
    is checked against every signed head in O(n log n) instead of O(n) per head.
    """

    def __init__(self) -> None:
        self.size = 0
        self._nodes: list[tuple[int, bytes]] = []  # (height, hash), heights decreasing

    def append(self, leaf: bytes) -> None:
        height, node = 0, leaf
        while self._nodes and self._nodes[-1][0] == height:
            _, left = self._nodes.pop()
            node = node_hash(left, node)
            height += 1
        self._nodes.append((height, node))
        self.size += 1

    def root(self) -> bytes:
        if not self._nodes:
            return hashlib.sha256(b"").digest()
        node = self._nodes[-1][1]
        for _, left in reversed(self._nodes[:-1]):
            node = node_hash(left, node)
        return node
