"""Max |logits(stock PEFT on the exported folder) - logits(asymlora on the run's adapter)| per engine folder."""
import json, sys
import torch
from peft import PeftModel
import asymlora as al
from asymlora.commands.adapter_source import base_model

run, out = sys.argv[1], sys.argv[2]
record = json.load(open(f"{run}/metrics.json"))
tok = al.load_tokenizer(record["model"])
ids = tok(["Summarise: the adapter keeps A frozen and trains B only.", "Low-rank adapters for serving."],
          return_tensors="pt", padding=True)
with torch.no_grad():
    ours = al.load_adapter(base_model(record["model"], record["task"]), f"{run}/adapter").eval()(**ids).logits
    for engine in ("vllm", "sglang", "peft"):
        theirs = PeftModel.from_pretrained(base_model(record["model"], record["task"]), f"{out}/{engine}").eval()(**ids).logits
        print(json.dumps({"engine": engine, "tokens": int(ids["attention_mask"].sum()),
                          "max_abs_logit_diff": float((theirs - ours).abs().max()),
                          "max_abs_logit": float(ours.abs().max())}))
