"""Rationale overlap with reference rationales: ROUGE-L F on word tokens, implemented here (no extra package)."""

from __future__ import annotations

import re
from collections.abc import Sequence

_TOKEN = re.compile(r"[a-z0-9]+")


def rouge_tokens(text: str | None) -> list[str]:
    """Lower-case alphanumeric tokens, as the rouge-score package's default tokenizer gives them (no stemming).

    Example:
        >>> rouge_tokens("Cheeks raised (AU6)!")
        ['cheeks', 'raised', 'au6']
    """
    return _TOKEN.findall(text.lower()) if text else []


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists (bit-parallel, Hyyro 2004).

    Each token of `a` owns one bit; for every token of `b` the bit vector is updated in one big-integer
    step, so the cost is len(b) operations on len(a)-bit integers instead of a len(a) x len(b) table.

    Example:
        >>> lcs_length("a b c d".split(), "a c x d".split())
        3
    """
    if not a or not b:
        return 0
    full = (1 << len(a)) - 1
    positions: dict[str, int] = {}
    for i, token in enumerate(a):
        positions[token] = positions.get(token, 0) | (1 << i)
    vector = full
    for token in b:
        matches = vector & positions.get(token, 0)
        vector = ((vector + matches) | (vector - matches)) & full
    return len(a) - bin(vector).count("1")


def rouge_l(candidate: str | None, reference: str | None) -> float:
    """ROUGE-L F1 of a candidate against a reference: P = LCS/|cand|, R = LCS/|ref|, F = 2PR/(P+R).

    Args:
        candidate: the model's rationale.
        reference: the reference rationale.

    Returns:
        F in [0, 1]; 0.0 when either side has no tokens.

    Example:
        >>> round(rouge_l("the cheeks are raised", "cheeks raised and lips up"), 4)  # LCS 2: P 2/4, R 2/5
        0.4444
    """
    cand, ref = rouge_tokens(candidate), rouge_tokens(reference)
    lcs = lcs_length(ref, cand)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(cand), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)
