"""Experiments as data: spec (YAML) -> grid of runs -> results store -> tables and plots."""

from asymlora.experiments.grid import Run, expand, parse_shard, seeds_for, shard
from asymlora.experiments.spec import Spec, load_spec, validate
from asymlora.experiments.store import append_result, done_keys, read_results

__all__ = ["Run", "Spec", "append_result", "done_keys", "expand", "load_spec", "parse_shard", "read_results",
           "seeds_for", "shard", "validate"]
