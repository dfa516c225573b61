"""Re-runs of committed runs against the committed records: same fingerprint, same numbers?

Usage (from the repository root):
    python docs/results/converged_tweets/lr_sweep/rerun/compare.py COMMITTED.jsonl RERUN.jsonl [RERUN.jsonl ...] > compare.md

For every re-run record, the committed record with the same ``run_id`` and ``fingerprint``: the commit each
was made at, test accuracy and macro-F1 at the best validation check, train loss, and whether the two agree
to the bit on every number of the run (metrics, best/final evaluation, every evaluation of the history,
train loss).
"""

from __future__ import annotations

import json
import sys

SAME = ("metrics", "best_eval", "final_eval", "history", "train_loss")


def records(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main(committed_path: str, *reruns: str) -> None:
    committed = {(r["run_id"], r["fingerprint"]): r for r in records(committed_path)}
    print(f"Committed: `{committed_path}`.\n")
    print("| run | fingerprint | committed at | re-run at | test acc (committed / re-run) | macro-F1 (committed / re-run) "
          "| train loss (committed / re-run) | the same to the bit |")
    print("|---|---|---|---|---|---|---|---|")
    for path in reruns:
        for new in records(path):
            old = committed.get((new["run_id"], new["fingerprint"]))
            if old is None:
                print(f"| {new['run_id']} | {new['fingerprint']} | — | {new['git_commit'][:7]} | no committed run "
                      "with this fingerprint | | | |")
                continue
            same = all(old[k] == new[k] for k in SAME)
            print(f"| {new['run_id']} | {new['fingerprint']} | {old['git_commit'][:7]} | {new['git_commit'][:7]} | "
                  f"{old['metrics']['accuracy']:.2f} / {new['metrics']['accuracy']:.2f} | "
                  f"{old['metrics']['macro_f1']:.4f} / {new['metrics']['macro_f1']:.4f} | "
                  f"{old['train_loss']:.6f} / {new['train_loss']:.6f} | {'yes' if same else 'no'} |")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: compare.py COMMITTED.jsonl RERUN.jsonl [RERUN.jsonl ...]")
    main(*sys.argv[1:])
