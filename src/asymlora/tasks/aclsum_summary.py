"""Real summarisation tasks from the packaged ACLSum corpus: abstract -> one-sentence aspect summary.

Each paper of ACLSum's official split (train 100 / validation 50 / test 100 papers, see
:mod:`.aclsum_aspect`) has a one-sentence summary of its *challenge*, *approach* and *outcome*.
One example per (paper, aspect), the aspect named in the input: train 300 / validation 150 /
test 300. The abstract is the paper's abstract sentences joined with spaces.

* ``aclsum_summary`` (family ``causal_lm``): an instruction prompt for decoder-only models::

      Summarise the {aspect} of this paper in one sentence.

      Abstract: {abstract}

      Summary:

  and the summary as the response (loss on the response only).
* ``aclsum_summary_s2s`` (family ``seq2seq``): source ``"{aspect}: {abstract}"``, target the summary,
  for encoder-decoder models (BART, T5).

Metrics: ROUGE-1 (main), ROUGE-2, ROUGE-L, ROUGE-Lsum (:mod:`.rouge`; seq2seq evaluation generates
with 4 beams). The causal-LM task's Trainer evaluation scores the loss on the reference response;
generation with ROUGE for decoder-only models is the summarisation evaluator's job.
Settings (ours, paper-like for summarisation): lr 5e-4, 15 epochs, batch 8, max length 512.
"""

from __future__ import annotations

from functools import partial

from .aclsum_aspect import ASPECTS, SPLIT_FILES, data_folder, read_documents
from .base import Generation, Hyper, Task, register
from .rouge import ROUGE_TYPES, rouge

PROMPT = "Summarise the {aspect} of this paper in one sentence.\n\nAbstract: {abstract}\n\nSummary:"


def abstract_text(doc: dict) -> str:
    return " ".join(str(s).strip() for s in doc["sentences"].get("abstract", []) if str(s).strip())


def load(data_dir: str | None = None, seed: int = 0):
    """``{train, validation, test}`` with columns ``id`` (``<paper id>:<aspect>``), ``aspect``,
    ``abstract``, ``summary``; ``seed`` unused."""
    import datasets

    del seed
    folder = data_folder(data_dir)
    out = {}
    for split, name in SPLIT_FILES.items():
        rows = {"id": [], "aspect": [], "abstract": [], "summary": []}
        for number, doc in enumerate(read_documents(folder / name)):
            abstract = abstract_text(doc)
            for aspect in ASPECTS:
                summary = str(doc["summary"][aspect]).strip()
                if abstract and summary:
                    rows["id"].append(f"{doc.get('id') or f'{split}-{number}'}:{aspect}")
                    rows["aspect"].append(aspect)
                    rows["abstract"].append(abstract)
                    rows["summary"].append(summary)
        if not rows["summary"]:
            raise ValueError(f"{folder / name}: no (abstract, summary) pairs")
        out[split] = datasets.Dataset.from_dict(rows)
    return datasets.DatasetDict(out)


def instruction_pair(row: dict) -> tuple[str, str]:
    return PROMPT.format(aspect=row["aspect"], abstract=row["abstract"]), row["summary"]


def source_target_pair(row: dict) -> tuple[str, str]:
    return f"{row['aspect']}: {row['abstract']}", row["summary"]


def _task(name: str, family: str, pair, description: str) -> Task:
    return register(Task(name=name, text_fields=(), num_labels=0, metric_names=ROUGE_TYPES if family == "seq2seq"
                         else ("loss", "token_accuracy"), hyper=Hyper(learning_rate=5e-4, epochs=15, batch_size=8,
                                                                    max_length=512),
                         label_names=None, load=partial(load), compute_metrics=rouge, description=description,
                         family=family, pair=pair,
                         generation=Generation(num_beams=4, max_new_tokens=64, max_target_length=96)))


SUMMARY_TASK = _task("aclsum_summary", "causal_lm", instruction_pair,
                     "ACLSum: abstract -> one-sentence challenge/approach/outcome summary, as an instruction (causal LM)")
SUMMARY_S2S_TASK = _task("aclsum_summary_s2s", "seq2seq", source_target_pair,
                         "ACLSum: '{aspect}: {abstract}' -> one-sentence summary (encoder-decoder)")
