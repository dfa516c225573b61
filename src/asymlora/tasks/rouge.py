"""ROUGE as summarisation papers report it, computed with Google's ``rouge-score`` package.

``rouge(predictions, references)`` -> ``{"rouge1", "rouge2", "rougeL", "rougeLsum"}``: the mean
F-measure ×100 over the pairs, with the Porter stemmer (``use_stemmer=True``).
:func:`rouge_per_example` gives the same F-measures pair by pair (arrays of shape ``(n,)``, ×100),
which bootstrap confidence intervals resample.

* ROUGE-1 / ROUGE-2: clipped unigram / bigram overlap; ``P = overlap / |prediction n-grams|``,
  ``R = overlap / |reference n-grams|``, ``F = 2PR / (P + R)``.
* ROUGE-L: the longest common subsequence of the two whole token sequences, ``P = LCS / |pred|``,
  ``R = LCS / |ref|``.
* ROUGE-Lsum: summary-level LCS. For every reference sentence, the union of its LCS hits with each
  predicted sentence; the hits are summed over reference sentences (clipped by token counts).
  ``rouge-score`` takes sentences as lines, so both texts are first split into sentences
  (:func:`sentences`: after ``.``, ``!`` or ``?`` followed by white space, the rule of the field's
  nltk-free scripts) and joined with ``\\n``. This is how ROUGE-Lsum is reported for CNN/DailyMail;
  for one-sentence summaries (XSum, ACLSum) it equals ROUGE-L up to the sentence splitting.

Tokenisation is rouge-score's: lower-cased, every character outside ``[a-z0-9]`` a separator.
"""

from __future__ import annotations

import re

import numpy as np

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def sentences(text: str) -> list[str]:
    """``text`` split into sentences (see the module docstring); empty pieces dropped."""
    return [s for s in (p.strip() for p in _SENTENCE_END.split(str(text).strip())) if s]


def with_newlines(text: str) -> str:
    """``text`` with one sentence per line (what rouge-score's ROUGE-Lsum reads)."""
    return "\n".join(sentences(text))


def rouge_per_example(predictions: list[str], references: list[str]) -> dict[str, np.ndarray]:
    """F-measures ×100 of each aligned (prediction, reference) pair: ``{type: array (n,)}``."""
    from rouge_score import rouge_scorer

    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not predictions:
        raise ValueError("ROUGE of an empty set of predictions")
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    out = {name: np.empty(len(predictions)) for name in ROUGE_TYPES}
    for i, (pred, ref) in enumerate(zip(predictions, references)):
        scores = scorer.score(with_newlines(ref), with_newlines(pred))
        for name in ROUGE_TYPES:
            out[name][i] = 100.0 * scores[name].fmeasure
    return out


def rouge(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Mean ROUGE-1/2/L/Lsum F-measures (×100) of aligned prediction / reference texts."""
    return {name: float(values.mean()) for name, values in rouge_per_example(predictions, references).items()}
