"""Evaluation-only jobs on models and finished runs (nothing here trains).

* :mod:`asymlora.evaluation.trained` — load a finished run folder back into a model, by method kind.
* :mod:`asymlora.evaluation.ood` — score tweet-trained sentiment classifiers on IMDB reviews
  (out of distribution) and on the tweets test split (in distribution) by the same two-logit rule.
* :mod:`asymlora.evaluation.stats` — mean, std and pooled std over seeds.
* :mod:`asymlora.evaluation.mmlu` — MMLU in the paper's, lm-evaluation-harness's and cloze formats,
  with the few-shot prefix's KV cache reused per subject.
"""
