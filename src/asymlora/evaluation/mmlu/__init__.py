"""MMLU evaluation: prompt formats (:mod:`.formats`), a batched scorer that reuses each subject's
few-shot prefix KV cache (:mod:`.scorer`), aggregation into the paper's table (:mod:`.aggregate`) and
the run that ties them together (:mod:`.run`)."""
