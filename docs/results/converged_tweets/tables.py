"""Print the converged-tweets tables of docs/evidence.md from this folder's committed files (no rounding by hand).

    python docs/results/converged_tweets/tables.py > docs/results/converged_tweets/tables.md

Reads ``report/report.json`` (``asymlora report``: test accuracy and macro-F1 on the 1,000-tweet test
subset at the best validation check) and ``ood/ood.json`` (``asymlora ood``: 3-class accuracy on the
whole test split, IMDB accuracy by the two-logit rule, gap), both written by ``collect.sh``,
and ``lr_sweep/choice_wide/lr_choice.json`` (``asymlora choose-lr`` over every rate of the sweep, the
frontier's ranks included: validation per rate on the sweep's seed, the chosen rate and whether it is at
the edge of the arm's rates, test per rate).
Cells are mean (sample std) over seeds; ``–`` where a method has one seed or was not scored.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAMES = {"lora": "LoRA", "b_only": "B-only", "a_only": "A-only", "linear_probe": "linear probe",
         "b_only_banded": "B-only, A banded", "b_only_dep_rows": "B-only, A dependent rows",
         "b_only_dep_cols": "B-only, A dependent columns"}


def cell(stat: dict | None) -> str:
    if not stat:
        return "–"
    if stat.get("std") is None:
        return f"{stat['mean']:.2f}"
    return f"{stat['mean']:.2f} ({stat['std']:.2f})"


def name(method: str, rank: int) -> str:
    return NAMES.get(method, method) + (f" r={rank}" if rank else "")


def differences(ood: dict) -> None:
    """LoRA − B-only and A-only − B-only (r=8) of the whole-test-split and IMDB means, when all three were
    scored; LoRA r=8 − B-only r=16 too when B-only r=16 was."""
    if all((m, 8) in ood for m in ("lora", "b_only", "a_only")):
        for key, what in (("in_domain_full_accuracy", "Whole test split"), ("ood_accuracy", "IMDB")):
            mean = {m: ood[(m, 8)][key]["mean"] for m in ("lora", "b_only", "a_only")}
            b16 = ood.get(("b_only", 16))
            extra = f", LoRA r=8 − B-only r=16 {mean['lora'] - b16[key]['mean']:.2f}" if b16 else ""
            print(f"\n{what}, differences of the means: LoRA − B-only {mean['lora'] - mean['b_only']:.2f}, "
                  f"A-only − B-only {mean['a_only'] - mean['b_only']:.2f}{extra}.")


def equal_budget(stats: dict) -> None:
    """LoRA r=8 − B-only r=16 (the same number of trainable parameters: B-only's A is frozen), with the
    pooled std sqrt((s_lora² + s_b16²) / 2) of the claims rules."""
    lora, b16 = stats.get(("lora", 8)), stats.get(("b_only", 16))
    if lora and b16:
        pooled = math.sqrt((lora["std"] ** 2 + b16["std"] ** 2) / 2) if None not in (lora["std"], b16["std"]) else None
        spread = f"pooled std {pooled:.2f}, " if pooled is not None else ""
        print(f"\nEqual trainable parameters, LoRA r=8 − B-only r=16: {lora['mean'] - b16['mean']:.2f} "
              f"({spread}seeds {len(lora['seeds'])}/{len(b16['seeds'])}).")


def main() -> None:
    report = json.loads((HERE / "report" / "report.json").read_text())
    ood = {(r["method"], r["rank"]): r for r in json.loads((HERE / "ood" / "ood.json").read_text())["rows"]}
    core = [r for r in report["rows"] if not r["method"].startswith("b_only_")]
    print("| method | trainable params | seeds | test acc (1,000-tweet subset) | macro-F1 (subset) "
          "| test acc (whole test split) | IMDB acc (neg/pos) | in-domain neg/pos acc | gap |")
    print("|---|---:|---|---|---|---|---|---|---|")
    for row in core:
        cells = row["cells"]["tweets"]
        o = ood.get((row["method"], row["rank"]), {})
        scored = f" ({len(o['seeds'])} scored)" if o and len(o["seeds"]) != len(row["seeds"]["tweets"]) else ""
        print(f"| {name(row['method'], row['rank'])} | {int(row['trainable_params']):,} | "
              f"{len(row['seeds']['tweets'])}{scored} | {cell(cells['accuracy'])} | {cell(cells['macro_f1'])} | "
              f"{cell(o.get('in_domain_full_accuracy'))} | {cell(o.get('ood_accuracy'))} | "
              f"{cell(o.get('in_domain_binary_accuracy'))} | {cell(o.get('gap'))} |")
    equal_budget({(r["method"], r["rank"]): {**r["cells"]["tweets"]["accuracy"], "seeds": r["seeds"]["tweets"]}
                  for r in core})
    differences(ood)
    print()
    print("| frozen A (rebuttal Table 1.e) | seeds | test acc (1,000-tweet subset) | macro-F1 (subset) |")
    print("|---|---|---|---|")
    for row in report["rows"]:
        if row["method"] in ("lora", "b_only", "b_only_banded", "b_only_dep_rows", "b_only_dep_cols") \
                and row["rank"] == 8:
            cells = row["cells"]["tweets"]
            print(f"| {name(row['method'], row['rank'])} | {len(row['seeds']['tweets'])} | "
                  f"{cell(cells['accuracy'])} | {cell(cells['macro_f1'])} |")
    sweep()
    sweep_ood()


def sweep_ood() -> None:
    """Protocol 2 out of distribution: each method's chosen-rate adapters on the whole test split and IMDB."""
    path = HERE / "lr_sweep" / "ood" / "ood.json"
    if not path.exists():
        return
    ood = {(r["method"], r["rank"]): r for r in json.loads(path.read_text())["rows"]}
    print("\n| method (chosen lr) | seeds | test acc (whole test split) | IMDB acc (neg/pos) | in-domain neg/pos acc "
          "| gap |")
    print("|---|---|---|---|---|---|")
    for (method, rank), o in ood.items():
        print(f"| {name(method, rank)} | {len(o['seeds'])} | {cell(o['in_domain_full_accuracy'])} | "
              f"{cell(o['ood_accuracy'])} | {cell(o['in_domain_binary_accuracy'])} | {cell(o['gap'])} |")
    differences(ood)


def seeds_cell(stat: dict | None) -> str:
    """``mean (std) [n]`` of a choose-lr statistic (std ``-`` for one seed)."""
    if not stat:
        return "–"
    std = "-" if stat["std"] is None else f"{stat['std']:.2f}"
    return f"{stat['mean']:.2f} ({std}) [{len(stat['seeds'])}]"


def sweep() -> None:
    """The per-method protocol: validation per rate, the chosen rate, test there and at the paper's 1e-3."""
    path = HERE / "lr_sweep" / "choice_wide" / "lr_choice.json"
    if not path.exists():
        return
    arms = [a for a in json.loads(path.read_text())["arms"] if len(a["test"]) > 1]
    rates = sorted({float(lr) for a in arms for lr in a["test"]})
    print()
    print("| method | " + " | ".join(f"validation, lr {lr:g}" for lr in rates) + " | chosen lr | test at the chosen lr "
          "| test at lr 0.001 (one-rate protocol) |")
    print("|---|" + "---|" * (len(rates) + 3))
    chosen_test = {}
    for a in arms:
        val = [seeds_cell(a["validation"].get(f"{lr:g}")) for lr in rates]
        chosen = a["chosen"]
        test = a["test"][f"{chosen:g}"] if chosen is not None else None
        if test:
            chosen_test[(a["method"], a["rank"])] = test
        shown = "–" if chosen is None else f"{chosen:g}" + (" (edge: the best rate may lie beyond)" if a["at_edge"] else "")
        print(f"| {name(a['method'], a['rank'])} | " + " | ".join(val) + f" | {shown} | "
              f"{seeds_cell(test)} | {seeds_cell(a['test'].get('0.001'))} |")
    gains = [f"{name(a['method'], a['rank'])} {chosen_test[(a['method'], a['rank'])]['mean'] - a['test']['0.001']['mean']:+.2f}"
             for a in arms if a["chosen"] not in (None, 0.001) and "0.001" in a["test"]]
    if gains:
        print("\nTest mean at the chosen rate minus at lr 0.001: " + ", ".join(gains) + ".")
    equal_budget(chosen_test)
    b_only = chosen_test.get(("b_only", 8))
    others = [(label, chosen_test[(m, 8)]) for m, label in (("lora", "LoRA"), ("a_only", "A-only"))
              if (m, 8) in chosen_test]
    if b_only and others:
        print("\nPer-method protocol, differences of the test means at the chosen rates: " + ", ".join(
            f"{label} − B-only {stat['mean'] - b_only['mean']:.2f} (seeds {len(stat['seeds'])}/{len(b_only['seeds'])})"
            for label, stat in others) + ".")

if __name__ == "__main__":
    main()
