"""docs/evidence.md, generated from the committed result files (``asymlora evidence``).

The page is a list of :class:`Section` s (:data:`SECTIONS`). Each names the committed tables it
shows (markdown files written by a command: ``asymlora report``, ``asymlora bench suite``, …), the
command that produced them and the committed file that says how and on what machine it ran. The
page copies the tables and quotes the machine paragraph; it never recomputes a training run, and it
holds no number of its own: every number on it is read from the file named above it.

Above the sections, the research's six claims and our equal-memory claim with their verdicts, evaluated by
:mod:`asymlora.experiments.claims` on the same committed files; the full claims table (every number
used, with its file) is rendered beside the page (:class:`Page.claims_markdown`).

A test renders the page again and fails when the committed one differs (it is stale).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from asymlora.errors import UserError
from asymlora.experiments import choosing_page

#: Where the committed results live, relative to the repository root.
RESULTS = Path("docs") / "results"
#: Where a HOW file states its machine: a label, else a sentence naming the hardware.
LABEL = re.compile(r"\*\*Machine\*\*|\bMachine:|\bEnvironment:")
MACHINE = re.compile(r"vCPU|logical CPUs|logical cores|EPYC|CPU core")


@dataclass(frozen=True)
class Section:
    """One block of evidence.

    Attributes:
        title: the heading.
        says: what was measured, in words (no numbers: those come from ``tables``).
        tables: committed markdown files (relative to the repository root) copied into the page.
        command: the command(s) that wrote ``tables``.
        how: committed files whose machine sentence (:func:`machine_sentence`) is quoted (of a
            ``.jsonl`` results file: the records' ``device``); empty when
            the numbers do not depend on a machine (byte counts, a plan computed from a config).
        no_machine: what to say instead when ``how`` is empty.
    """

    title: str
    says: str
    tables: tuple[str, ...]
    command: str
    how: tuple[str, ...] = ()
    no_machine: str = ""


_TWEETS = "docs/results/converged_tweets"
_BENCH = "docs/results/bench"
_WIDTH = "docs/results/width"

SECTIONS: tuple[Section, ...] = (
    Section("Tweets, one full epoch: one learning rate, a rate per method, a frozen A of rank 1",
            "MiniLM on the 3-class tweets task with adapters on query and value. First the paper's protocol "
            "(one learning rate for every method), test accuracy on a fixed test subset at the best validation "
            "check, then the whole test split and IMDB movie reviews (out of distribution, neutral class "
            "ignored); then rebuttal Table 1.e (structured frozen A); then each method at the learning rate it "
            "chose on validation, and those adapters out of distribution. Cells are mean (std) over seeds.",
            (f"{_TWEETS}/tables.md",),
            "asymlora reproduce configs/converged_tweets.yaml; asymlora eval ood; asymlora report; "
            "asymlora choose-lr; python docs/results/converged_tweets/tables.py (every step in the HOW files)",
            (f"{_TWEETS}/HOW.md", f"{_TWEETS}/lr_sweep/HOW.md")),
    Section("Tweets, one epoch: accuracy for a memory or a parameter budget",
            "LoRA and B-only at several ranks, each at the learning rate it chose on validation, against the "
            "peak training memory measured for its configuration in a fresh process (beside the planner's "
            "prediction) and against its trainable parameters; the Pareto-optimal arms are marked and the "
            "comparison at LoRA r=8's memory is computed. Arms outside the frontier's grid have no memory "
            "figure. docs/choosing.md turns this into advice.",
            (choosing_page.SOURCES["frontier"].removesuffix(".json") + ".md",),
            "asymlora bench frontier; asymlora choose-lr; asymlora report RESULTS --frontier MEMORY "
            "(docs/results/converged_tweets/frontier/collect.sh)",
            (f"{_TWEETS}/frontier/HOW.md",)),
    Section("Tweets, a quarter epoch: does the gap change with width (MiniLM against MPNet)?",
            "LoRA, B-only and A-only r=8 on all-MiniLM-L6-v2 (384 wide) and all-mpnet-base-v2 (768 wide, the width "
            "of RoBERTa-base), the same quarter epoch for both; each method's rate chosen on seed 0's validation "
            "(the rate tables), then 3 seeds at that rate; each method's gap to B-only per model with its pooled "
            "std and standard error, and how it moves from the smaller model to the larger. Two sizes give a "
            "direction with its uncertainty, not a trend; the device column says where each model's runs were made, "
            "and a line beside the table names any made from an uncommitted tree.",
            (f"{_WIDTH}/gaps/gaps.md", f"{_WIDTH}/minilm/choice/lr_choice.md", f"{_WIDTH}/mpnet/choice/lr_choice.md"),
            "asymlora reproduce configs/width_tweets_<model>_lr<rate>[_seeds].yaml; asymlora choose-lr --seed 0; "
            "asymlora report RESULTS --against b_only (docs/results/width/collect.sh)",
            (f"{_WIDTH}/HOW.md",)),
    Section("Tweets, early training (the demo's grid with more steps and seeds)",
            "The same model and task at a short budget, one learning rate. The samples/s column is the wall "
            "clock of runs made one after another on a shared machine: it measures the load, not the method.",
            ("docs/results/demo/report.md",),
            "asymlora reproduce configs/demo_evidence.yaml; asymlora report docs/results/demo/results.jsonl",
            ("docs/results/demo/HOW.md",)),
    Section("Summarisation: SmolLM2-135M on ACLSum, one epoch",
            "ROUGE on the whole test split, then paired differences over the test examples with bootstrap "
            "intervals.",
            ("docs/results/aclsum_summary_smollm2_epoch/table.md", "docs/results/aclsum_summary_smollm2_epoch/paired.md"),
            "asymlora reproduce configs/aclsum_summary_smollm2_epoch.yaml; "
            "bash docs/results/aclsum_summary_smollm2_epoch/evaluate.sh GRID EVALS; "
            "python docs/results/aclsum_summary_smollm2_epoch/paired.py",
            ("docs/results/aclsum_summary_smollm2_epoch/README.md",)),
    Section("Instruction tuning: SmolLM2-135M on ShareGPT, then MMLU",
            "MMLU accuracy of the untuned model and of each tuned row, with paired bootstrap intervals of the "
            "difference from the untuned model.",
            ("docs/results/instruct_embedded/mmlu/mmlu_table.md",),
            "asymlora reproduce configs/instruct_embedded.yaml; "
            "bash docs/results/instruct_embedded/evaluate.sh RUNS EVALS; asymlora eval mmlu-table EVALS",
            ("docs/instruct.md",)),
    Section("Out of distribution: DomainBed on real digits",
            "A small ViT pretrained on Fashion-MNIST, adapted on digit domains and tested on a held-out one; "
            "mean ± standard error over trials.",
            ("docs/results/domainbed/mnist_optdigits/tables.md", "docs/results/domainbed/rotated_mnist/tables.md"),
            "asymlora domainbed sweep CONFIG; asymlora domainbed collect FOLDER (docs/results/domainbed/README.md)",
            ("docs/results/domainbed/README.md",)),
    Section("Speed and memory against PEFT on MiniLM",
            "Every configuration's training steps interleaved in one process, so they share the machine's load "
            "alike; saved activations and checkpoint bytes do not depend on the load.",
            (f"{_BENCH}/bench.md",), "asymlora bench suite --out docs/results/bench", (f"{_BENCH}/bench.md",)),
    Section("Speed and memory across model shapes",
            "B-only, PEFT LoRA and the no-dropout adapter floor, interleaved within each workload.",
            (f"{_BENCH}/sweep/sweep.md",), "asymlora bench sweep --out docs/results/bench/sweep",
            (f"{_BENCH}/sweep/sweep.md",)),
    Section("The rebuttal's throughput tables",
            "Training samples/s of (configuration, rank) rows interleaved over repeats.",
            (f"{_BENCH}/rebuttal_throughput/classification/throughput.md",
             f"{_BENCH}/rebuttal_throughput/causal_lm/throughput.md"),
            "asymlora bench throughput (docs/results/bench/rebuttal_throughput/README.md)",
            (f"{_BENCH}/rebuttal_throughput/classification/throughput.md",
             f"{_BENCH}/rebuttal_throughput/causal_lm/throughput.md")),
    Section("Serving many adapters in one batch",
            "B-only adapters sharing one frozen A, a different adapter per row, against PEFT's mixed batch.",
            (f"{_BENCH}/serving/serving.md",), "asymlora bench serving --out docs/results/bench/serving",
            (f"{_BENCH}/serving/serving.md",)),
    Section("Adapter file sizes",
            "Bytes of the adapter files written by asymlora and by PEFT for the same adapters.",
            ("docs/results/sizes/sizes.md",), "asymlora sizes --out docs/results/sizes",
            no_machine="any: byte counts, the same on every machine."),
    Section("Training memory of Llama-2-7B, planned",
            "Peak training memory per component, computed from the configuration alone (no weights loaded).",
            ("docs/results/memory/paper/memory.md",),
            "asymlora memory --model llama-7b --method b_only --rank 32 --batch-size 16 --max-length 512 --dtype bf16",
            no_machine="none: a plan computed from the configuration, nothing was run."),
    Section("Linear-regression theory",
            "Closed forms of the expected loss against seeded Monte Carlo, and gradient descent through the "
            "library's own adapter.",
            ("docs/results/theory/theory.md",), "asymlora theory --out docs/results/theory",
            no_machine="any: seeded Monte Carlo, the same numbers on every machine."),
    Section("Similarity of learned factors",
            "Subspace similarity of learned A and B across tasks, seeds and initialisations.",
            ("docs/results/similarity_long/similarity.md",),
            "asymlora reproduce configs/similarity_long.yaml; asymlora similarity RUNS",
            ("docs/results/similarity_long/study_results.jsonl",)),
)


@dataclass(frozen=True)
class Page:
    """The rendered evidence page and the claims table written beside it."""

    markdown: str
    claims_markdown: str
    claims_json: str


def repository_root() -> Path:
    """The working directory when it holds ``docs/results``, else the source checkout's root.

    Raises:
        UserError: neither holds ``docs/results`` (an installed package without its repository).
    """
    for base in (Path.cwd(), Path(__file__).resolve().parents[3]):
        if (base / RESULTS).is_dir():
            return base
    raise UserError(f"no {RESULTS} here; run from the repository root or pass --root")


def _read(root: Path, relative: str) -> str:
    path = root / relative
    if not path.is_file():
        raise UserError(f"committed file {relative} is missing under {root}; run from the repository root")
    return path.read_text(encoding="utf-8")


def machine_sentence(text: str) -> str | None:
    """The sentence of ``text`` that states the machine, on one line: the one that starts at a
    ``Machine:`` / ``**Machine**`` / ``Environment:`` label (:data:`LABEL`), else the first sentence that
    names the hardware (:data:`MACHINE`). Of a results file (JSON lines): the ``device`` its records name.

    Args:
        text: a HOW / README / table file, or a ``results.jsonl``.

    Returns:
        str | None: the sentence (``None`` when the file states no machine).
    """
    if text.lstrip().startswith("{"):
        devices = sorted({json.loads(line).get("device") or "?" for line in text.splitlines() if line.strip()})
        return "the run records' device: " + "; ".join(devices) if devices else None
    paragraphs = [" ".join(line.strip().lstrip("#").strip() for line in p.splitlines() if line.strip())
                  for p in re.split(r"\n\s*\n", text)]
    for pattern, from_label in ((LABEL, True), (MACHINE, False)):
        for flat in paragraphs:
            found = pattern.search(flat)
            if found:
                before = flat.rfind(". ", 0, found.start())
                start = found.start() if from_label else (before + 2 if before >= 0 else 0)
                end = re.search(r"\.(\s|$)", flat[found.end():])
                return flat[start:found.end() + end.start() + 1 if end else len(flat)].strip()
    return None


def embedded(text: str) -> str:
    """A committed markdown file as part of the page: its headings demoted below the page's.

    Args:
        text: the file's markdown.

    Returns:
        str: the same lines, every ``#…`` heading made ``####``, without trailing newlines.
    """
    lines = text.rstrip("\n").splitlines()
    return "\n".join("####" + line.lstrip("#") if line.startswith("#") else line for line in lines).strip("\n")


def _link(relative: str, page_folder: Path, root: Path) -> str:
    target = os.path.relpath(root / relative, page_folder)
    return f"[`{relative}`]({Path(target).as_posix()})"


def section_markdown(section: Section, root: Path, page_folder: Path) -> str:
    """One section: what it measures, the command, the machine (quoted), then each table with its file.

    Args:
        section: the section to render.
        root: the repository root (the files of ``section`` are relative to it).
        page_folder: the page's folder (links are relative to it).

    Returns:
        str: the section's markdown.

    Raises:
        UserError: a committed file is missing. ValueError: a ``how`` file states no machine.
    """
    lines = [f"## {section.title}", "", section.says, "", f"* Command: `{section.command}`"]
    for how in section.how:
        quote = machine_sentence(_read(root, how))
        if quote is None:
            raise ValueError(f"{how} states no machine (no {LABEL.pattern} label, no sentence matching {MACHINE.pattern})")
        lines.append(f"* Machine ({_link(how, page_folder, root)}): {quote}")
    if not section.how:
        lines.append(f"* Machine: {section.no_machine}")
    for table in section.tables:
        lines += ["", f"From {_link(table, page_folder, root)}:", "", embedded(_read(root, table))]
    return "\n".join(lines)


def claims_markdown(verdicts, page_folder: Path, root: Path, claims_folder: Path) -> str:
    """The claims with their verdicts and how many of their tests passed.

    Args:
        verdicts: :func:`asymlora.experiments.claims.evaluate`'s verdicts.
        page_folder: the page's folder (links are relative to it).
        root: the repository root.
        claims_folder: where the full claims table is written.

    Returns:
        str: the section's markdown.
    """
    from asymlora.experiments.claims.render import table_cell

    table = Path(os.path.relpath(claims_folder / "claims.md", page_folder)).as_posix()
    lines = ["## The research's claims, tested on these files", "",
             f"`asymlora claims` applies one stated rule per claim ({_link('docs/claims.md', page_folder, root)}); "
             f"every number it used, with its file, is in [the full claims table]({table}), written with this page.", "",
             "| # | claim | tests passed | tests failed | verdict |", "|---|---|---:|---:|---|"]
    for v in verdicts:
        passed = sum(e.passed is True for e in v.evidence)
        failed = sum(e.passed is False for e in v.evidence)
        lines.append(f"| {v.claim} | {table_cell(v.statement)} | {passed} | {failed} | **{v.verdict}** |")
    return "\n".join(lines)


def render_page(root: str | Path, out: str | Path, claims_folder: str | Path) -> Page:
    """Render the page for ``out`` (links are relative to its folder) from ``root``'s committed files.

    Args:
        root: the repository root (holds ``docs/results``).
        out: where the page will be written (only its folder is used, for the links).
        claims_folder: where the full claims table will be written (linked from the page).

    Returns:
        Page: the page and the claims table (markdown and its JSON twin, as the text to write);
        nothing is written.

    Raises:
        UserError: ``root`` has no ``docs/results`` or a committed file is missing.
        ValueError: a HOW file states no machine (a mistake in :data:`SECTIONS`).
    """
    from asymlora.experiments.claims import evaluate, load_inputs
    from asymlora.experiments.claims.render import to_json, to_markdown

    root = Path(root).resolve()
    if not (root / RESULTS).is_dir():
        raise UserError(f"no {RESULTS} under {root}; run from the repository root or pass --root")
    page_folder = Path(out).resolve().parent
    claims_folder = Path(claims_folder).resolve()
    with contextlib.chdir(root):  # result paths are shown relative to the repository root
        inputs = load_inputs([RESULTS])
    verdicts = evaluate(inputs)
    head = ["# Evidence: what the committed results show", "",
            "Generated by `asymlora evidence --out docs/evidence.md` from the committed files under `docs/results/` "
            "(do not edit by hand: `tests/test_evidence_page.py` fails when this page is stale). Every number "
            "below is copied from the file named above it; each section names the command that wrote the file and "
            "quotes the file that says on what machine it ran."]
    body = [claims_markdown(verdicts, page_folder, root, claims_folder)]
    body += [section_markdown(s, root, page_folder) for s in SECTIONS]
    markdown = "\n\n".join(["\n".join(head)] + body) + "\n"
    claims_json = json.dumps(to_json(verdicts, inputs.files), indent=2, default=str) + "\n"
    return Page(markdown, to_markdown(verdicts, inputs.files), claims_json)
