"""ROUGE as summarisation papers report it, computed with Google's ``rouge-score`` package.

``rouge(predictions, references)`` -> ``{"rouge1", "rouge2", "rougeL", "rougeLsum"}``: the mean
F-measure ×100 over the pairs, with the Porter stemmer (``use_stemmer=True``). ROUGE-Lsum is the
summary-level LCS: ``rouge-score`` splits on newlines, so both texts are first split into
sentences (:func:`sentences`: after ``.``, ``!`` or ``?`` followed by white space, the rule the
field's nltk-free scripts use) and joined with ``\\n``.
"""

from __future__ import annotations

import re

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def sentences(text: str) -> list[str]:
    """``text`` split into sentences (see the module docstring); empty pieces dropped."""
    return [s for s in (p.strip() for p in _SENTENCE_END.split(text.strip())) if s]


def rouge(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Mean ROUGE-1/2/L/Lsum F-measures (×100) of aligned prediction / reference texts."""
    from rouge_score import rouge_scorer

    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not predictions:
        raise ValueError("ROUGE of an empty set of predictions")
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for pred, ref in zip(predictions, references):
        scores = scorer.score("\n".join(sentences(ref)), "\n".join(sentences(pred)))
        for name in ROUGE_TYPES:
            totals[name] += scores[name].fmeasure
    return {name: 100.0 * total / len(predictions) for name, total in totals.items()}
