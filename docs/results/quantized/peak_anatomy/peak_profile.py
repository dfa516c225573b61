"""Live tensors at the peak of one bench-quantized step, from torch.profiler(profile_memory=True,
record_shapes=True, with_stack=True) and its memory timeline (categories PARAMETER, ACTIVATION,
AUTOGRAD_DETAIL, ...); the step is wrapped in asymlora.bench.saved.count_saved. The profiler inflates
the RSS itself, so only the live-tensor figures mean anything. Prints one JSON line (MiB).

    python docs/results/quantized/peak_anatomy/peak_profile.py BITS CONFIGURATION BATCH LENGTH 1 > OUT.json
"""
import json, sys, time, threading, collections
import torch
from torch.profiler import profile, ProfilerActivity
from torch.profiler._memory_profiler import MemoryProfileTimeline, _CATEGORY_TO_INDEX, Action
from asymlora.bench.quantized import RowSpec, _settings
from asymlora.bench.configs import build
from asymlora.bench.step import Trainer
from asymlora.bench.workload import make_stream_batch
from asymlora.bench.saved import count_saved
from asymlora.measure import peak_rss_bytes, reset_peak_rss, rss_bytes
from asymlora.models import load_tokenizer, resolve_targets
from asymlora.models.quantized import load_quantized_causal_lm
MIB = 2**20
bits, conf, batch, length, prof_on = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
spec = RowSpec(bits=bits, configuration=conf, batch=batch, length=length, threads=1)
torch.set_num_threads(1); torch.manual_seed(0)
model = load_quantized_causal_lm(spec.model, spec.bits, spec.backend)
settings = _settings(spec); settings.targets = resolve_targets(model, settings.targets, None)
built = build(spec.configuration, model, settings)
b = make_stream_batch(load_tokenizer(spec.model), batch, length, model.config.vocab_size, 0)
trainer = Trainer(built, b, lr=2e-4)
after = rss_bytes(); reset_peak_rss()
out = {"bits": bits, "conf": conf, "batch": batch, "length": length, "rss_after_build": after / MIB}
def step():
    trainer.step()
if prof_on:
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True) as prof:
        saved = count_saved(built.model, step, built.adapter_modules, built.excluded)
    mp = prof._memory_profile()
    tl = MemoryProfileTimeline(mp)
    times, sizes = tl._coalesce_timeline("cpu")
    totals = [sum(s) for s in sizes]
    i = max(range(len(totals)), key=totals.__getitem__)
    names = ["unknown"] + [str(c).split(".")[-1] if c is not None else "none" for c in _CATEGORY_TO_INDEX]
    order = sorted(_CATEGORY_TO_INDEX, key=_CATEGORY_TO_INDEX.get)
    names = ["?"] + [str(c).split(".")[-1] if c is not None else "uncategorised" for c in order]
    out["profiled_peak_live_mib"] = totals[i] / MIB
    out["at_peak_by_category_mib"] = {n: v / MIB for n, v in zip(names, sizes[i]) if v}
    out["start_by_category_mib"] = {n: v / MIB for n, v in zip(names, sizes[0]) if v}
    out["peak_index_fraction"] = i / len(totals)
    # alive tensors at peak time
    tpeak = times[i]
    alive = {}
    for t, action, (key, version), nbytes in mp.timeline:
        if key.device.type != "cpu": continue
        tt = int(t / 1000) if t != -1 else -1
        if tt > tpeak: break
        if action in (Action.PREEXISTING, Action.CREATE): alive[(key, version)] = nbytes
        elif action == Action.INCREMENT_VERSION:
            alive.pop((key, version), None); alive[(key, version + 1)] = nbytes
        elif action == Action.DESTROY: alive.pop((key, version), None)
    cats = collections.Counter()
    for (key, version), nb in alive.items():
        c = mp._categories.get(key, version)
        cats[(str(c).split(".")[-1], nb)] += 1
    out["alive_at_peak_top"] = [[c, nb / MIB, n, nb * n / MIB] for (c, nb), n in sorted(cats.items(), key=lambda kv: -kv[0][1] * kv[1])[:25]]
    # op running at peak
    ops = [e for e in prof.events() if e.time_range.start <= tpeak <= e.time_range.end and e.name != "[memory]"]
    out["ops_at_peak"] = [e.name for e in sorted(ops, key=lambda e: e.time_range.start)][-8:]
else:
    saved = count_saved(built.model, step, built.adapter_modules, built.excluded)
out["saved_activation_mib"] = saved.activation_bytes / MIB
out["peak_rss_mib"] = peak_rss_bytes() / MIB
out["rss_end_mib"] = rss_bytes() / MIB
print(json.dumps(out))
