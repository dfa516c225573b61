"""Why the tuned rows end at once: the probability of the end-of-sequence token as the FIRST token
after the prompt, for the base model and each run, on the 30 evaluated test prompts; and how the
runs' training targets began (tokenised alone, before the running-text fix in causal_lm.response_ids).
Run from the repository root: PYTHONPATH=src python docs/results/aclsum_summary_smollm2/first_token.py RUNS
[OUT.json [NAME ...]] (default: first_token.json here; base and the three seed-0 runs)."""

import json
import sys
from pathlib import Path

import torch

from asymlora.evaluation.summarise import load_subject, select

torch.set_num_threads(1)
runs = Path(sys.argv[1])
target = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).with_name("first_token.json")
names = sys.argv[3:] or ["base", "lora_r2_s0", "b_only_r16_s0", "a_only_r16_s0"]
out = {}
for name in names:
    subject = (load_subject("aclsum_summary", model="smollm2") if name == "base"
               else load_subject("aclsum_summary", run=runs / name))
    tok, eos = subject.tokenizer, subject.tokenizer.eos_token_id
    examples = select(subject.task, "test", 30)
    p_eos, argmax_eos, space_first = [], 0, 0
    for prompt in examples.sources:
        with torch.no_grad():
            probs = subject.model(torch.tensor([tok(prompt)["input_ids"]])).logits[0, -1].softmax(-1)
        p_eos.append(float(probs[eos]))
        argmax_eos += int(probs.argmax()) == eos
        space_first += tok.decode([int(probs.argmax())]).startswith(" ")
    out[name] = {"mean_p_eos_first": sum(p_eos) / len(p_eos), "argmax_is_eos": argmax_eos,
                 "argmax_starts_with_space": space_first, "prompts": len(p_eos)}
    print(name, out[name], flush=True)
targets = select(subject.task, "train", None)
alone = [tok(t, add_special_tokens=False)["input_ids"][0] for t in targets.references]
out["train_targets_first_token_starts_with_space_when_tokenised_alone"] = sum(
    tok.decode([i]).startswith(" ") for i in alone)
out["train_targets"] = len(alone)
target.write_text(json.dumps(out, indent=2) + "\n")
