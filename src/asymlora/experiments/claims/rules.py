"""One rule per claim of the research, in a registry: :data:`CLAIMS`.

Every rule reads :class:`~asymlora.experiments.claims.evidence.Inputs` and returns a
:class:`Verdict`: the rule as a sentence, every number it used with its source file (one
:class:`Evidence` each, marked passed / failed, or ``None`` when shown but not tested), and the
verdict:

* ``holds``          every test the rule could apply passed (and every required part was measured);
* ``does not hold``  at least one test the rule applied failed;
* ``not measured``   the inputs hold nothing the rule can test.

Conventions shared by the rules on training runs (claims 1-3): a comparison is made inside one
results file, one task and one model, between two methods at the same rank, on the run's headline
metric (``metrics[main_metric]``); each method needs at least :data:`MIN_SEEDS` seeds there (a
comparison with fewer is listed and not tested). ``mean`` and ``std`` are over seeds (sample std),
``pooled std = sqrt((s_x² + s_y²) / 2)``. docs/claims.md states every rule in words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable

from asymlora.evaluation.stats import Stat, pooled_std
from asymlora.experiments.claims.evidence import Inputs, Scores
from asymlora.experiments.frontier import best_within, point_from_json, reference_point

HOLDS, FAILS, NOT_MEASURED = "holds", "does not hold", "not measured"
MIN_SEEDS = 2
NEAR_MARGIN = 1.0             # claim 2: points of the metric
MAX_FORMULA_Z = 4.0           # claim 5: |Monte Carlo - formula| / standard error
MAX_FORMULA_REL_ERROR = 0.01  # claim 5
ORDER_SE = 3.0                # claim 5: frozen A may exceed frozen B by at most this many standard errors
MAX_GD_GAP = 0.01             # claim 5: gradient descent vs closed form, relative
A_KEPT = 0.5                  # claim 4: learned A's similarity to its initialisation
MIN_TIMED_STEPS = 10          # claim 6
MAX_P = 0.01                  # claim 6: one-sided Mann-Whitney p-value
RANK_DEFICIENT = ("b_only_dep_rows", "b_only_dep_cols")
HEAD_ALONE = "linear_probe"    # claim 3: the classifier head without an adapter, the level of a collapse
MEMORY_REFERENCE = ("lora", 8)  # claim 7: the arm whose peak training memory is the budget


@dataclass(frozen=True)
class Evidence:
    """One number (or comparison) a rule used: what, the numbers, the file, and whether it passed
    (``None``: listed for context, not tested)."""

    what: str
    numbers: str
    source: str
    passed: bool | None


@dataclass(frozen=True)
class Verdict:
    claim: int
    statement: str
    rule: str
    verdict: str
    evidence: tuple[Evidence, ...]
    note: str = ""


Parts = list[tuple[str, list[Evidence]]]  # (part name, its evidence): every part must be measured


def combine(parts: Parts) -> str:
    """``does not hold`` if any tested evidence failed, ``not measured`` if a part has no tested
    evidence, else ``holds``."""
    tested = [[e for e in p if e.passed is not None] for _, p in parts]
    if any(not e.passed for p in tested for e in p):
        return FAILS
    if not parts or any(not p for p in tested):
        return NOT_MEASURED
    return HOLDS


# ------------------------------------------------------------------------------ comparisons
Test = Callable[[Stat, Stat], tuple[bool, str]]


def clearly_above(x: Stat, y: Stat, digits: int = 2) -> tuple[bool, str]:
    """``mean(x) − mean(y) > pooled std``."""
    diff, spread = x.mean - y.mean, pooled_std(x, y)
    return diff > spread, (f"difference {diff:+.{digits}f} {'>' if diff > spread else '≤'} pooled std "
                           f"{spread:.{digits}f}")


def near(x: Stat, y: Stat) -> tuple[bool, str]:
    """``mean(y) − mean(x) ≤ max(NEAR_MARGIN, pooled std)`` (x trails y by at most the margin; the
    margin is ``NEAR_MARGIN`` alone where a group has one value and so no std)."""
    spread = pooled_std(x, y)
    diff, margin = y.mean - x.mean, max(NEAR_MARGIN, spread or 0.0)
    spread_text = f"pooled std {spread:.2f}" if spread is not None else "no pooled std"
    return diff <= margin, (f"shortfall {diff:+.2f} {'≤' if diff <= margin else '>'} margin max({NEAR_MARGIN:g}, "
                            f"{spread_text}) = {margin:.2f}")


def not_clearly_above(x: Stat, y: Stat) -> tuple[bool, str]:
    """``mean(x) − mean(y) ≤ pooled std``: x adds nothing measurable over y."""
    above, detail = clearly_above(x, y)
    return not above, detail


def _oriented(s: Stat, higher_is_better: bool) -> Stat:
    """``s`` as a score where higher is better (a loss is negated: its std is unchanged)."""
    if higher_is_better or s.mean is None:
        return s
    return Stat(-s.mean, s.std, tuple(-v for v in s.values))


def compare(groups: Iterable[Scores], x_method: str, y_method: str, test: Test,
            y_any_rank: bool = False) -> list[Evidence]:
    """``test(x, y)`` for every group and rank that has both methods (``y_any_rank``: y is the
    method's one run rank, whatever it is); on a metric where lower is better (a loss) the test sees
    both sides negated, so "above" always means "better"."""
    from asymlora.tasks.families.base import greater_is_better

    out = []
    for g in groups:
        for rank in g.ranks(x_method):
            x = g.get(x_method, rank)
            y = g.any_rank(y_method) if y_any_rank else g.get(y_method, rank)
            if y is None:
                continue
            what = f"{g.task}/{g.model} r={rank}: {x_method} vs {y_method} ({g.metric})"
            numbers = f"{x.text()} vs {y.text()}, seeds {x.n}/{y.n}"
            if x.n < MIN_SEEDS or y.n < MIN_SEEDS:
                out.append(Evidence(what, numbers + f": fewer than {MIN_SEEDS} seeds, not tested", g.source, None))
                continue
            higher = greater_is_better(g.metric)
            passed, detail = test(_oriented(x, higher), _oriented(y, higher))
            if not higher:
                detail += " (lower is better: compared negated)"
            out.append(Evidence(what, f"{numbers}; {detail}", g.source, passed))
    return out


# ------------------------------------------------------------------------------ the rules
def claim_b_beats_a(inputs: Inputs) -> Parts:
    return [("B-only vs A-only", compare(inputs.runs, "b_only", "a_only", clearly_above))]


def claim_near_lora_and_better_ood(inputs: Inputs) -> Parts:
    return [("(a) in distribution", compare(inputs.runs, "b_only", "lora", near)),
            ("(b) out of distribution", compare(inputs.ood, "b_only", "lora", clearly_above))]


def claim_rank_deficient_collapses(inputs: Inputs) -> Parts:
    return [("(a) worse than orthonormal A", [e for variant in RANK_DEFICIENT
                                              for e in compare(inputs.runs, "b_only", variant, clearly_above)]),
            ("(b) down to the head alone", [e for variant in RANK_DEFICIENT
                                            for e in compare(inputs.runs, variant, HEAD_ALONE, not_clearly_above,
                                                             y_any_rank=True)])]


def _study_evidence(study) -> tuple[list[Evidence], list[Evidence]]:
    """Claim 4's two tests on one similarity study (LoRA runs): (B task-specific, A kept)."""
    b_part, a_part = [], []
    same_task = study.cell("lora", "same_task_diff_init", "B")
    same_init = study.cell("lora", "diff_task_same_init", "B")
    if same_task is not None and same_init is not None and None not in (same_task.std, same_init.std):
        passed, detail = clearly_above(same_task, same_init, digits=3)
        b_part.append(Evidence("learned B: same task & other init vs other task & same init",
                               f"{same_task.text(3)} vs {same_init.text(3)}; {detail}", study.source, passed))
    kept = study.cell("lora", "learned_vs_init", "A")
    if kept is not None and kept.mean is not None:
        a_part.append(Evidence("learned A vs its initialisation",
                               f"{kept.text(3)} {'≥' if kept.mean >= A_KEPT else '<'} {A_KEPT}", study.source,
                               kept.mean >= A_KEPT))
    return b_part, a_part


def claim_b_task_specific_a_at_init(inputs: Inputs) -> Parts:
    """Tested on the longest-trained study; the others are listed, untested."""
    parts: list[list[Evidence]] = [[], []]
    named = [("(i) B task-specific", parts[0]), ("(ii) A near its initialisation", parts[1])]
    if not inputs.similarity:
        return named
    longest = max(inputs.similarity, key=lambda s: s.train_steps or 0)
    for study in [longest] + [s for s in inputs.similarity if s is not longest]:
        steps = f"{study.train_steps} steps" if study.train_steps else "steps unknown"
        for part, found in zip(parts, _study_evidence(study)):
            for e in found:
                if study is longest:
                    part.append(Evidence(f"{e.what} [{steps}]", e.numbers, e.source, e.passed))
                else:
                    part.append(Evidence(f"{e.what} [{steps}; shorter study, not tested: would "
                                         f"{'pass' if e.passed else 'fail'}]", e.numbers, e.source, None))
    return named


def _theory_evidence(source: str, data: dict) -> list[Evidence]:
    curves, fits = data.get("curves") or [], data.get("gradient_fit") or []
    out = []
    if curves:
        z = max(abs(c["frozen_B_z"]) for c in curves)
        rel = max(abs(c["frozen_B"] - c["frozen_B_formula"]) / abs(c["frozen_B_formula"]) for c in curves)
        ok = z <= MAX_FORMULA_Z and rel <= MAX_FORMULA_REL_ERROR
        out.append(Evidence(f"E[loss | B frozen]: formula vs Monte Carlo, {len(curves)} rows",
                            f"max |z| {z:.2f} (≤ {MAX_FORMULA_Z:g}), max relative error {100 * rel:.2f}% "
                            f"(≤ {100 * MAX_FORMULA_REL_ERROR:g}%)", source, ok))
        excess = max((c["frozen_A"] - c["frozen_B"]) / max(math.hypot(c["frozen_A_se"], c["frozen_B_se"]), 1e-12)
                     for c in curves)
        worst = max(c["frozen_A"] - c["frozen_B"] for c in curves)
        out.append(Evidence(f"freezing A never worse than freezing B, {len(curves)} rows",
                            f"max (frozen A − frozen B) {worst:+.4f} = {excess:+.2f} standard errors "
                            f"(≤ {ORDER_SE:g})", source, excess <= ORDER_SE))
    if fits:
        gap = max(f["rel_gap"] for f in fits)
        out.append(Evidence(f"gradient descent on B reaches the closed form, {len(fits)} spectra",
                            f"max relative gap {100 * gap:.2f}% (≤ {100 * MAX_GD_GAP:g}%)", source,
                            gap <= MAX_GD_GAP))
    return out


def claim_regression_formulas(inputs: Inputs) -> Parts:
    return [("theory.json", [e for source, data in inputs.theory for e in _theory_evidence(source, data)])]


def _mann_whitney_less(x, y) -> float:
    """One-sided Mann-Whitney U p-value that ``x`` tends to be smaller than ``y`` (scipy)."""
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(x, y, alternative="less").pvalue)


def _bench_evidence(source: str, data: dict) -> list[Evidence]:
    configs = data.get("configurations") or {}
    ours = configs.get("asymlora_b_only")
    out = []
    for other, name in (("peft_lora", "PEFT LoRA"), ("peft_adalora", "PEFT AdaLoRA")):
        theirs = configs.get(other)
        if ours is None or theirs is None:
            continue
        x, y = ours.get("step_times_s") or [], theirs.get("step_times_s") or []
        speed = (f"step median {ours['step_time_median_s']:.3f} s vs {theirs['step_time_median_s']:.3f} s "
                 f"({len(x)}/{len(y)} timed steps)")
        if min(len(x), len(y)) < MIN_TIMED_STEPS:
            out.append(Evidence(f"B-only faster than {name}", speed + f": fewer than {MIN_TIMED_STEPS}, not tested",
                                source, None))
        else:
            p = _mann_whitney_less(x, y)
            out.append(Evidence(f"B-only faster than {name}", f"{speed}; one-sided Mann-Whitney p = {p:.2g} "
                                f"({'<' if p < MAX_P else '≥'} {MAX_P:g})", source, p < MAX_P))
        a, b = ours.get("saved_activation_bytes"), theirs.get("saved_activation_bytes")
        if a is not None and b is not None:
            out.append(Evidence(f"B-only saves fewer activations than {name}",
                                f"{a / 2 ** 20:.2f} MiB vs {b / 2 ** 20:.2f} MiB (× {a / b:.3f})", source, a < b))
    return out


def _throughput_evidence(source: str, data: dict) -> list[Evidence]:
    """B-only's samples/s against PEFT LoRA's and AdaLoRA's at the same rank, over the repeats of an
    ``asymlora bench --rows`` table: clearly above (difference > pooled std), ≥ MIN_SEEDS repeats."""
    from asymlora.evaluation.stats import stat

    rows = {(r["configuration"], r["rank"]): stat(r.get("samples_per_s") or []) for r in data.get("rows") or []}
    out = []
    for (configuration, rank), ours in rows.items():
        if configuration != "asymlora_b_only":
            continue
        for other, name in (("peft_lora", "PEFT LoRA"), ("peft_adalora", "PEFT AdaLoRA")):
            theirs = rows.get((other, rank))
            if theirs is None:
                continue
            what = f"B-only r={rank} trains more samples/s than {name} r={rank}"
            numbers = f"{ours.text()} vs {theirs.text()} samples/s, repeats {ours.n}/{theirs.n}"
            if ours.n < MIN_SEEDS or theirs.n < MIN_SEEDS:
                out.append(Evidence(what, numbers + f": fewer than {MIN_SEEDS} repeats, not tested", source, None))
                continue
            passed, detail = clearly_above(ours, theirs)
            out.append(Evidence(what, f"{numbers}; {detail}", source, passed))
    return out


def claim_faster_and_leaner(inputs: Inputs) -> Parts:
    evidence = [e for source, data in inputs.bench for e in _bench_evidence(source, data)]
    evidence += [e for source, data in inputs.throughput for e in _throughput_evidence(source, data)]
    return [("bench.json / throughput.json", evidence)]


def _equal_memory_evidence(source: str, data: dict) -> list[Evidence]:
    """Claim 7 on one frontier: the reference arm against the most accurate B-only arm whose measured
    peak fits within the reference's (``near``: B-only trails by at most the margin)."""
    points = [point_from_json(p) for p in data.get("points") or []]
    ref = reference_point(points, MEMORY_REFERENCE)
    best = best_within(points, ref, "b_only") if ref is not None else None
    if best is None:
        return []
    x, y = best.accuracy, ref.accuracy
    what = (f"b_only r={best.rank} ({best.measured_bytes / 2 ** 20:.0f} MiB) vs lora r={ref.rank} "
            f"({ref.measured_bytes / 2 ** 20:.0f} MiB), {data.get('metric', 'accuracy')}")
    numbers = f"{x.text()} vs {y.text()}, seeds {x.n}/{y.n}"
    if x.n < MIN_SEEDS or y.n < MIN_SEEDS:
        return [Evidence(what, numbers + f": fewer than {MIN_SEEDS} seeds, not tested", source, None)]
    passed, detail = near(x, y)
    return [Evidence(what, f"{numbers}; {detail}", source, passed)]


def claim_equal_memory(inputs: Inputs) -> Parts:
    return [("frontier.json", [e for source, data in inputs.frontier for e in _equal_memory_evidence(source, data)])]


@dataclass(frozen=True)
class Claim:
    number: int
    statement: str
    rule: str
    evaluate: Callable[[Inputs], Parts]


CLAIMS: tuple[Claim, ...] = (
    Claim(1, "Freezing A (random orthonormal) and training B beats freezing B and training A.",
          f"For every results file, task, model and rank with ≥ {MIN_SEEDS} seeds of b_only and a_only: "
          "mean(b_only) − mean(a_only) > pooled std of the two. Holds if every such comparison passes.",
          claim_b_beats_a),
    Claim(2, "B-only is close to LoRA in distribution at half the parameters, and better out of distribution.",
          f"(a) in distribution, every results file, task, model and rank with ≥ {MIN_SEEDS} seeds of each: "
          f"mean(lora) − mean(b_only) ≤ max({NEAR_MARGIN:g} point, pooled std); (b) out of distribution, every "
          f"ood.jsonl group: mean OOD accuracy(b_only) − mean(lora) > pooled std. Holds if both parts are "
          "measured and pass.", claim_near_lora_and_better_ood),
    Claim(3, "The frozen factor must be well-conditioned: a rank-deficient frozen A collapses.",
          f"For every results file, task, model and rank with ≥ {MIN_SEEDS} seeds of b_only and of "
          f"{' / '.join(RANK_DEFICIENT)}: (a) mean(b_only) − mean(variant) > pooled std (worse), and (b) "
          f"mean(variant) − mean({HEAD_ALONE}) ≤ pooled std (collapsed: nothing measurable over the classifier "
          "head alone). Holds if both parts are measured and pass.",
          claim_rank_deficient_collapses),
    Claim(4, "Learned B is task-specific; learned A stays near its initialisation.",
          "On the similarity study with the most training steps, LoRA runs: (i) B's similarity across seeds "
          "and initialisations within a task exceeds B's similarity across tasks sharing an initialisation by "
          f"more than the pooled std (over module pairs); (ii) A's similarity to its own initialisation ≥ {A_KEPT}.",
          claim_b_task_specific_a_at_init),
    Claim(5, "The linear-regression formulas hold (closed forms and Monte Carlo agree).",
          f"In every theory.json: every row's E[loss | B frozen] formula within {MAX_FORMULA_Z:g} standard errors "
          f"and {100 * MAX_FORMULA_REL_ERROR:g}% of Monte Carlo; frozen A's loss never above frozen B's by more "
          f"than {ORDER_SE:g} standard errors; gradient descent within {100 * MAX_GD_GAP:g}% of the closed form.",
          claim_regression_formulas),
    Claim(6, "B-only trains faster and with less memory than LoRA and AdaLoRA.",
          f"In every bench.json with ≥ {MIN_TIMED_STEPS} timed steps: B-only's step times are lower than PEFT "
          f"LoRA's and PEFT AdaLoRA's (one-sided Mann-Whitney U, p < {MAX_P:g}), and its saved activations "
          f"are fewer bytes than each; in every throughput.json (the rebuttal's tables) with ≥ {MIN_SEEDS} "
          "repeats: B-only's samples/s exceed PEFT LoRA's and AdaLoRA's at the same rank by more than the "
          "pooled std of the repeats.", claim_faster_and_leaner),
    Claim(7, "At LoRA r=8's training memory, B-only at a rank that fits is close to LoRA (the practitioner's "
             "consequence of claim 6, ours, not the paper's).",
          f"In every frontier.json: among the b_only arms whose measured peak training memory is ≤ that of "
          f"{MEMORY_REFERENCE[0]} r={MEMORY_REFERENCE[1]}, the most accurate (mean over seeds), with ≥ {MIN_SEEDS} "
          f"seeds each: mean(lora) − mean(b_only) ≤ max({NEAR_MARGIN:g} point, pooled std).", claim_equal_memory),
)


def evaluate(inputs: Inputs) -> list[Verdict]:
    """Every claim's verdict on ``inputs``."""
    verdicts = []
    for claim in CLAIMS:
        parts = claim.evaluate(inputs)
        evidence = tuple(e for _, p in parts for e in p)
        unmeasured = [name for name, p in parts if all(e.passed is None for e in p)]
        note = f"not measured: {', '.join(unmeasured)}" if unmeasured and len(parts) > 1 else ""
        verdicts.append(Verdict(claim.number, claim.statement, claim.rule, combine(parts), evidence, note))
    return verdicts
