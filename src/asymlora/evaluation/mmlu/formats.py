"""MMLU prompt formats: how a subject's shots and a question become text, and how answers are scored.

A prompt is ``head(subject) + Σ_shots (shot(q) + separator) + query(q)``; the part before
``query`` (description and solved shots) is the subject's *prefix*, shared by all its questions.

==========  =================================================================================
``paper``   the instruction-tuning paper's prompt: no description; ``Question: {q}\\nA. {a}\\nB.
            {b}\\nC. {c}\\nD. {d}\\nAnswer:``, shots solved with ``" {letter}"``, separated by a
            blank line. Answer = argmax of the next-token log-probabilities of the four letter
            tokens (the last token of ``" A"`` … ``" D"``). Shots are dropped one by one while
            the prompt exceeds the context. Categories: the MMLU paper's map.
``harness`` lm-evaluation-harness's ``mmlu`` task: ``The following are multiple choice questions
            (with answers) about {subject}.\\n\\n``, shots ``{q.strip()}\\nA. …\\nAnswer: {letter}``
            joined by ``\\n\\n``, continuations ``" A"`` … ``" D"`` scored by their summed
            log-likelihood; no shot dropping: the input is left-truncated to the model length.
            Categories: the harness's map.
``cloze``   lm-evaluation-harness's ``mmlu_continuation`` prompt (``The following are questions
            (with answers) about {subject}.\\n\\n``, ``Question: {q}\\nAnswer:``, shots solved with
            the answer text): each answer text ``" {text}"`` scored by its log-likelihood divided
            by its length in characters (the harness's ``acc_norm``). Gives signal for models too
            small to answer with a letter. Shots dropped like ``paper``; paper's categories.
==========  =================================================================================
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable

from asymlora.tasks.mmlu import LETTERS, MMLUQuestion

#: what to do when a prompt exceeds the model's context
DROP_SHOTS, TRUNCATE_LEFT = "drop-shots", "truncate-left"


def lettered(q: MMLUQuestion) -> str:
    """``\\nA. {a}\\nB. {b}\\nC. {c}\\nD. {d}\\nAnswer:`` (the part after the question text)."""
    return "".join(f"\n{letter}. {choice}" for letter, choice in zip(LETTERS, q.choices)) + "\nAnswer:"


def spaced(subject: str) -> str:
    return subject.replace("_", " ")


@dataclass(frozen=True)
class PromptFormat:
    """One way to prompt and score. ``continuations`` is ``None`` for next-token letter scoring,
    else ``q -> four continuation strings`` scored by log-likelihood (divided by the answer text's
    character count when ``normalise``). ``categories``: ``"paper"`` or ``"harness"``."""

    name: str
    head: Callable[[str], str]
    shot: Callable[[MMLUQuestion], str]
    query: Callable[[MMLUQuestion], str]
    continuations: Callable[[MMLUQuestion], tuple[str, ...]] | None
    normalise: bool
    overflow: str
    categories: str
    separator: str = "\n\n"

    def prefix(self, subject: str, shots: list[MMLUQuestion]) -> str:
        """Description and solved shots, each followed by the separator."""
        return self.head(subject) + "".join(self.shot(q) + self.separator for q in shots)

    def context(self, q: MMLUQuestion, shots: list[MMLUQuestion]) -> str:
        return self.prefix(q.subject, shots) + self.query(q)

    def lengths(self, q: MMLUQuestion) -> tuple[int, ...]:
        """The normalising length of each answer (1 when not normalising)."""
        return tuple(max(1, len(c)) for c in q.choices) if self.normalise else (1, 1, 1, 1)


FORMATS: dict[str, PromptFormat] = {f.name: f for f in [
    PromptFormat(
        "paper", head=lambda subject: "",
        shot=lambda q: f"Question: {q.question.strip()}{lettered(q)} {q.answer}",
        query=lambda q: f"Question: {q.question.strip()}{lettered(q)}",
        continuations=None, normalise=False, overflow=DROP_SHOTS, categories="paper"),
    PromptFormat(
        "harness",
        head=lambda subject: f"The following are multiple choice questions (with answers) about {spaced(subject)}.\n\n",
        shot=lambda q: f"{q.question.strip()}{lettered(q)} {q.answer}",
        query=lambda q: f"{q.question.strip()}{lettered(q)}",
        continuations=lambda q: tuple(f" {letter}" for letter in LETTERS),
        normalise=False, overflow=TRUNCATE_LEFT, categories="harness"),
    PromptFormat(
        "cloze", head=lambda subject: f"The following are questions (with answers) about {spaced(subject)}.\n\n",
        shot=lambda q: f"Question: {q.question.strip()}\nAnswer: {q.choices[q.gold]}",
        query=lambda q: f"Question: {q.question.strip()}\nAnswer:",
        continuations=lambda q: tuple(f" {choice}" for choice in q.choices),
        normalise=True, overflow=DROP_SHOTS, categories="paper"),
]}


def get_format(name: str) -> PromptFormat:
    if name in FORMATS:
        return FORMATS[name]
    match = difflib.get_close_matches(name, list(FORMATS), n=1)
    hint = f" (did you mean {match[0]!r}?)" if match else ""
    raise ValueError(f"unknown MMLU format {name!r}{hint}; choose one of {', '.join(FORMATS)}")
