"""``python -m asymlora.tasks [TASK ...] [--data-dir DIR]``: split sizes and label counts as JSON.

Without task names it describes the real embedded tasks (no hub needed). The numbers in
docs/tasks.md come from this command.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

from . import TASKS, get_task

EMBEDDED = ("tweets", "aclsum_aspect", "aclsum_highlight", "aclsum_section")


def describe(name: str, data_dir: str | None = None) -> dict:
    task = get_task(name)
    splits = task.load(data_dir, 0)
    out = {"task": task.name, "num_labels": task.num_labels, "metrics": list(task.metric_names),
           "hyper": task.hyper.__dict__, "splits": {}}
    for split, ds in splits.items():
        entry = {"rows": len(ds)}
        if not task.is_regression:
            counts = Counter(ds["label"])
            entry["labels"] = {task.label_names[k]: counts.get(k, 0) for k in range(task.num_labels)}
        out["splits"][split] = entry
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asymlora.tasks", description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="*", help=f"task names (default: {' '.join(EMBEDDED)}); known: "
                                                 f"{', '.join(sorted(TASKS))}")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    try:
        result = [describe(n, args.data_dir) for n in (args.tasks or EMBEDDED)]
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
