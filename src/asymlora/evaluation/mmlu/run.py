"""One MMLU evaluation: data + format + shots -> per-question predictions and token statistics.

Tokenisation follows lm-evaluation-harness's causal LMs: ``encode(text)`` is the tokenizer's
plain encoding preceded by the tokens its default encoding puts in front (a Llama BOS; nothing for
GPT-2-style tokenizers; tokens it appends, such as BERT's ``[SEP]``, are not used). A continuation
``c`` after a context ``x`` is ``encode(x + c)[len(encode(x)):]`` (trailing spaces of ``x`` moved
to ``c`` first), the model input is ``(encode(x) + cont)[-(max_length+1):][:-1]``.

Context overflow: ``drop-shots`` formats (paper, cloze) use ``k`` shots, reduced one at a time
while the longest input exceeds ``max_length`` (as the MMLU authors' script does at 2,048 tokens);
``truncate-left`` (harness) keeps all shots and left-truncates. Either way an input still too long
is left-truncated and counted. ``max_length`` defaults to the harness's rule (config
``n_positions`` / ``max_position_embeddings`` / ``n_ctx``, then the tokenizer's
``model_max_length``, then 2,048).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from asymlora.evaluation.mmlu.formats import DROP_SHOTS, PromptFormat, get_format
from asymlora.evaluation.mmlu.scorer import Probe, Readout, ScoreStats, score_probes
from asymlora.tasks.mmlu import LETTERS, MMLUData, MMLUQuestion

DEFAULT_MAX_LENGTH = 2048
_TOKENIZER_INFINITY = 10**29


@dataclass(frozen=True)
class MMLUOptions:
    format: str = "paper"
    shots: int = 5
    max_length: int | None = None
    batch_size: int = 8
    reuse: bool = True


@dataclass(frozen=True)
class Prediction:
    """``scores``: the four values compared (letter log-probabilities, continuation
    log-likelihoods, or for cloze log-likelihood per character); ``shots``: shots actually used."""

    subject: str
    index: int
    predicted: str
    gold: str
    scores: tuple[float, float, float, float]
    shots: int
    truncated: bool

    @property
    def correct(self) -> bool:
        return self.predicted == self.gold


@dataclass
class MMLURun:
    predictions: list[Prediction]
    stats: ScoreStats
    max_length: int
    seconds: float
    options: MMLUOptions
    shots_dropped: int = 0  # shots removed in total
    questions_short_of_shots: int = 0  # questions that got fewer than the requested shots
    truncated: int = 0  # questions whose input was left-truncated
    per_subject_shots: dict[str, int] = field(default_factory=dict)


def resolve_max_length(model, tokenizer, requested: int | None = None) -> int:
    """``requested``, else the harness's rule (see module docstring)."""
    if requested:
        return int(requested)
    config = getattr(model.config, "text_config", None) or model.config
    for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, attr, None)
        if value is not None:
            return int(value)
    limit = getattr(tokenizer, "model_max_length", None)
    if limit is not None and limit < _TOKENIZER_INFINITY:
        return int(limit)
    return DEFAULT_MAX_LENGTH


class Encoder:
    """The tokenizer as the harness uses it for causal LMs (see module docstring)."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        plain = tokenizer.encode("a", add_special_tokens=False)
        default = tokenizer.encode("a")
        head = next((i for i in range(len(default)) if default[i: i + len(plain)] == plain), 0)
        self.lead = tuple(default[:head])
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def encode(self, text: str) -> tuple[int, ...]:
        return self.lead + tuple(self.tokenizer.encode(text, add_special_tokens=False))

    def pair(self, context: str, continuation: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
        spaces = len(context) - len(context.rstrip())
        if spaces:
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        whole, head = self.encode(context + continuation), self.encode(context)
        return head, whole[len(head):]

    def letter_ids(self) -> tuple[int, ...]:
        """The token read for each letter: the last token of ``" A"`` … ``" D"``."""
        return tuple(self.tokenizer.encode(f" {letter}", add_special_tokens=False)[-1] for letter in LETTERS)


def _probes(fmt: PromptFormat, encoder: Encoder, q: MMLUQuestion, shots: list[MMLUQuestion], slot: int,
            max_length: int, letters: tuple[int, ...]) -> tuple[list[Probe], int]:
    """The inputs that score ``q`` with ``shots``, and the untruncated length of the longest."""
    context = fmt.context(q, shots)
    if fmt.continuations is None:
        tokens = encoder.encode(context)
        kept = tokens[-max_length:]
        n = len(kept) - 1
        readouts = [Readout((slot, i), (n,), (letter,)) for i, letter in enumerate(letters)]
        return [Probe(kept, readouts, len(kept) == len(tokens))], len(tokens)
    probes, longest = [], 0
    for i, continuation in enumerate(fmt.continuations(q)):
        head, tail = encoder.pair(context, continuation)
        full = head + tail
        kept = full[-(max_length + 1):][:-1]
        n = len(kept)
        readout = Readout((slot, i), tuple(range(n - len(tail), n)), tail)
        probes.append(Probe(kept, [readout], len(kept) == len(full) - 1))
        longest = max(longest, len(full) - 1)
    return probes, longest


def evaluate_mmlu(model, tokenizer, data: MMLUData, options: MMLUOptions,
                  progress: Callable[[float], None] | None = None) -> MMLURun:
    """Score every question of ``data`` (its selected subjects and limit); ``progress(questions)``."""
    fmt = get_format(options.format)
    encoder = Encoder(tokenizer)
    letters = encoder.letter_ids()
    max_length = resolve_max_length(model, tokenizer, options.max_length)
    k = int(options.shots)
    for subject in data.subjects:
        if len(data.shots[subject]) < k:
            raise ValueError(f"{subject}: only {len(data.shots[subject])} shot examples for --shots {k}")
    started = time.perf_counter()
    run = MMLURun([], ScoreStats(), max_length, 0.0, options)
    was_training = model.training
    model.eval()
    for subject in data.subjects:
        pool, questions = data.shots[subject][:k], data.test[subject]
        groups: dict[int, list[tuple[int, list[Probe]]]] = {}
        truncated_of: dict[int, bool] = {}
        for slot, q in enumerate(questions):
            used = k
            probes, longest = _probes(fmt, encoder, q, pool[:used], slot, max_length, letters)
            while fmt.overflow == DROP_SHOTS and longest > max_length and used > 0:
                used -= 1
                probes, longest = _probes(fmt, encoder, q, pool[:used], slot, max_length, letters)
            run.shots_dropped += k - used
            run.questions_short_of_shots += used < k
            cut = not all(p.shares_prefix for p in probes)
            run.truncated += cut
            truncated_of[slot] = cut
            groups.setdefault(used, []).append((slot, probes))
        scores: dict = {}
        shots_of: dict[int, int] = {}
        for used, members in sorted(groups.items(), reverse=True):
            prefix = encoder.encode(fmt.prefix(subject, pool[:used]))
            probes = [p for _, ps in members for p in ps]
            share = len(members) / max(1, len({p.tokens for p in probes}))

            def advance(n: int, share: float = share) -> None:
                if progress is not None:
                    progress(n * share)

            found, stats = score_probes(model, probes, prefix, options.reuse, options.batch_size, encoder.pad_id,
                                        advance)
            scores.update(found)
            run.stats.add(stats)
            shots_of.update({slot: used for slot, _ in members})
        for slot, q in enumerate(questions):
            lengths = fmt.lengths(q)
            values = tuple(scores[(slot, i)] / lengths[i] for i in range(4))
            best = max(range(4), key=lambda i: (values[i], -i))  # first maximum, like argmax
            run.predictions.append(Prediction(subject, q.index, LETTERS[best], q.answer, values,  # type: ignore[arg-type]
                                              shots_of[slot], truncated_of[slot]))
        run.per_subject_shots[subject] = min(shots_of.values()) if shots_of else k
    model.train(was_training)
    run.seconds = time.perf_counter() - started
    return run

