"""Clean: drop near-duplicate rationales, cap per clip and per class, balance classes; deterministic.

Candidates are visited best first (highest reward total, then clip id), so when two collide the better one stays.
Each is checked against everything kept before it, in this round and in earlier rounds (`history`):

1. per-clip cap: a clip keeps at most `max_per_clip` rationales over all rounds;
2. near-duplicates: a rationale whose word-set Jaccard similarity to a kept one reaches `dedup_threshold` goes
   (words as ROUGE tokenises them: lower-case alphanumerics, so "AU12" and "au12" are one word);
3. per-class cap: a class keeps at most `max_per_class` rationales over all rounds;
4. balance (optional): every class of this round is cut to the count of its rarest kept class.

Word-set Jaccard rather than ROUGE-L because it is symmetric and cheap for all pairs, and a rationale that
reorders the same observations is the near-duplicate we mean.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from affect_mllm.metrics.text import rouge_tokens
from affect_mllm.schema import Sample

UNKNOWN_CLASS = "unknown"


@dataclass(frozen=True)
class CleanSettings:
    """Dedup threshold and caps (see the module docstring)."""

    dedup_threshold: float = 0.9
    max_per_clip: int = 1
    max_per_class: int | None = None
    balance: bool = False


@dataclass(frozen=True)
class CleanItem:
    """A kept candidate as cleaning sees it."""

    clip_id: str
    label: str  # the emotion class it is counted under
    rationale: str
    total: float = 0.0


@dataclass
class CleanResult:
    """What survived (in input order) and the clip ids dropped per reason."""

    kept: list[CleanItem]
    dropped: dict[str, list[str]] = field(default_factory=dict)


def class_of(sample: Sample) -> str:
    """The emotion class a sample counts under: its categorical label's category, else its first open word's."""
    from affect_mllm.metrics.categorical import category_of, first_category

    return category_of(sample.emotion) or first_category(sample.emotions or []) or UNKNOWN_CLASS


def word_set(text: str) -> frozenset[str]:
    """The set of words of a rationale (ROUGE's tokens)."""
    return frozenset(rouge_tokens(text))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a & b| / |a | b| (1.0 for two empty sets).

    Example:
        >>> jaccard(word_set("Cheeks raised (AU6)"), word_set("cheeks raised, AU6 and AU12"))  # 3 / 5
        0.6
    """
    union = a | b
    return len(a & b) / len(union) if union else 1.0


def clean(items: Sequence[CleanItem], settings: CleanSettings, history: Iterable[CleanItem] = ()) -> CleanResult:
    """Apply the caps, the dedup and the balance to one round's kept candidates.

    Args:
        items: this round's kept candidates (one per clip after verification, but any number works).
        settings: threshold and caps.
        history: what earlier rounds kept (counts towards the caps and the dedup).

    Returns:
        The surviving items in input order, and the dropped clip ids by reason
        ("clip_cap", "duplicate", "class_cap", "balance").
    """
    history = list(history)
    clip_counts = Counter(item.clip_id for item in history)
    class_counts = Counter(item.label for item in history)
    seen_words = [word_set(item.rationale) for item in history]
    dropped: dict[str, list[str]] = {"clip_cap": [], "duplicate": [], "class_cap": [], "balance": []}
    survivors: list[CleanItem] = []
    for item in sorted(items, key=lambda i: (-i.total, i.clip_id)):
        words = word_set(item.rationale)
        if clip_counts[item.clip_id] >= settings.max_per_clip:
            dropped["clip_cap"].append(item.clip_id)
        elif any(jaccard(words, other) >= settings.dedup_threshold for other in seen_words):
            dropped["duplicate"].append(item.clip_id)
        elif settings.max_per_class is not None and class_counts[item.label] >= settings.max_per_class:
            dropped["class_cap"].append(item.clip_id)
        else:
            survivors.append(item)
            clip_counts[item.clip_id] += 1
            class_counts[item.label] += 1
            seen_words.append(words)
    if settings.balance:
        survivors = _balance(survivors, dropped["balance"])
    order = {id(item): i for i, item in enumerate(items)}
    return CleanResult(sorted(survivors, key=lambda item: order[id(item)]), dropped)


def _balance(survivors: list[CleanItem], dropped: list[str]) -> list[CleanItem]:
    """Keep the best `rarest class count` items of each class (survivors are sorted best first)."""
    if not survivors:
        return survivors
    cap = min(Counter(item.label for item in survivors).values())
    taken: Counter = Counter()
    out = []
    for item in survivors:
        if taken[item.label] < cap:
            out.append(item)
            taken[item.label] += 1
        else:
            dropped.append(item.clip_id)
    return out
