"""What is resident at the peak of a bench-quantized row: RSS and glibc malloc figures (mallinfo2)
sampled every 20 ms in a thread during one training step, the same load / build / step as
asymlora.bench.quantized.measure_row (one thread). Prints one JSON line (MiB):
``malloc_in_use`` = uordblks + hblkhd (live malloc blocks: tensors and Python objects), ``mmapped`` =
hblkhd, ``heap_free_held`` = fordblks (freed heap glibc keeps resident), ``arena`` = heap size.

    python docs/results/quantized/peak_anatomy/peak_anatomy.py BITS CONFIGURATION BATCH LENGTH > OUT.json
"""
import json, sys, time, threading, ctypes
import torch
from asymlora.bench.quantized import RowSpec, _settings
from asymlora.bench.configs import build
from asymlora.bench.step import Trainer
from asymlora.bench.workload import make_stream_batch
from asymlora.measure import peak_rss_bytes, reset_peak_rss, rss_bytes
from asymlora.models import load_tokenizer, resolve_targets
from asymlora.models.quantized import load_quantized_causal_lm
MIB = 2**20
class MI2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena","ordblks","smblks","hblks","hblkhd","usmblks","fsmblks","uordblks","fordblks","keepcost")]
libc = ctypes.CDLL("libc.so.6"); libc.mallinfo2.restype = MI2
bits, conf, batch, length = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
spec = RowSpec(bits=bits, configuration=conf, batch=batch, length=length, threads=1)
torch.set_num_threads(1); torch.manual_seed(0)
model = load_quantized_causal_lm(spec.model, spec.bits, spec.backend)
settings = _settings(spec); settings.targets = resolve_targets(model, settings.targets, None)
built = build(spec.configuration, model, settings)
b = make_stream_batch(load_tokenizer(spec.model), batch, length, model.config.vocab_size, 0)
trainer = Trainer(built, b, lr=2e-4)
def snap():
    m = libc.mallinfo2()
    return {"rss": rss_bytes() / MIB, "malloc_in_use": (m.uordblks + m.hblkhd) / MIB, "mmapped": m.hblkhd / MIB,
            "heap_free_held": m.fordblks / MIB, "arena": m.arena / MIB}
out = {"bits": bits, "conf": conf, "batch": batch, "length": length, "after_build": snap()}
reset_peak_rss()
best = {"rss": 0}; stop = False
def loop():
    global best
    while not stop:
        s = snap()
        if s["rss"] > best["rss"]: best = s
        time.sleep(0.02)
th = threading.Thread(target=loop, daemon=True); th.start()
t0 = time.time(); trainer.step(); stop = True; th.join()
out["at_sampled_rss_peak"] = best; out["peak_rss"] = peak_rss_bytes() / MIB; out["end"] = snap(); out["step_s"] = time.time() - t0
print(json.dumps(out))
