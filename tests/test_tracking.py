"""``asymlora train --report-to wandb|tensorboard|mlflow``: each tracker's local run holds the training
loss, the evaluation metric and the adapter's config (method, rank, frozen factor), read back with the
tracker's own reader (wandb: the offline run's transaction log, parsed into its protobuf records)."""

import json
import struct
from pathlib import Path

import pytest

from helpers import run_cli

SMALL = ["--task", "tweets", "--model", "tiny-bert", "--method", "b_only", "--rank", "4", "--max-steps", "4",
         "--train-limit", "48", "--eval-limit", "32", "--max-length", "32", "--batch-size", "8",
         "--no-save-checkpoints"]
ADAPTER = {"method": "b_only", "rank": 4, "trained_factor": "B", "frozen_factor": "A", "frozen_init": "orthonormal"}


def _wandb_records(path: Path):
    """The protobuf records of a wandb transaction log (``run-<id>.wandb``): a 7-byte header, then
    LevelDB-log blocks of 32 KiB holding chunks ``crc32 (4) | length (2, LE) | type (1) | data``;
    type 1 is a whole record, 2/3/4 its first/middle/last chunk."""
    from wandb.proto import wandb_internal_pb2

    data, block = path.read_bytes(), 32768
    assert data[:4] == b":W&B"
    position, chunks = 7, []
    while position + 7 <= len(data):
        left = block - position % block
        _, length, kind = struct.unpack("<IHB", data[position:position + 7]) if left >= 7 else (0, 0, 0)
        if left < 7 or (kind == 0 and length == 0):
            position += left
            continue
        chunks.append(data[position + 7:position + 7 + length])
        position += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(b"".join(chunks))
            chunks = []
            yield record


def _read_wandb(tracking: Path) -> tuple[set, dict]:
    (log,) = tracking.glob("wandb/offline-run-*/run-*.wandb")
    keys, adapter = set(), {}
    for record in _wandb_records(log):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            keys |= {item.key or "/".join(item.nested_key) for item in record.history.item}
        elif kind == "config":
            adapter.update({i.key: json.loads(i.value_json) for i in record.config.update if i.key == "asymlora"})
    return keys, adapter.get("asymlora", {})


def _read_tensorboard(tracking: Path) -> tuple[set, dict]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    keys, adapter = set(), {}
    for events in (tracking / "tensorboard").glob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events), size_guidance={"tensors": 0, "scalars": 0})
        accumulator.Reload()
        keys |= set(accumulator.Tags()["scalars"])
        if "asymlora/adapter/text_summary" in accumulator.Tags()["tensors"]:
            (event,) = accumulator.Tensors("asymlora/adapter/text_summary")
            adapter = json.loads(event.tensor_proto.string_val[0].decode())
    return keys, adapter


def _read_mlflow(tracking: Path) -> tuple[set, dict]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(tracking / "mlruns").resolve().as_uri())
    (run,) = client.search_runs(["0"])
    adapter = {k.removeprefix("asymlora."): v for k, v in run.data.params.items() if k.startswith("asymlora.")}
    return set(run.data.metrics), {**adapter, "rank": int(adapter["rank"])}


READERS = {"wandb": (_read_wandb, "train/loss", "eval/accuracy"),
           "tensorboard": (_read_tensorboard, "train/loss", "eval/accuracy"),
           "mlflow": (_read_mlflow, "loss", "eval_accuracy")}


@pytest.mark.parametrize("tracker", list(READERS))
def test_report_to_writes_loss_metric_and_adapter_config_locally(tracker, tmp_path, capsys, monkeypatch):
    pytest.importorskip(tracker)
    for variable in ("WANDB_DIR", "MLFLOW_TRACKING_URI", "TENSORBOARD_LOGGING_DIR", "MLFLOW_ALLOW_FILE_STORE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / tracker
    code, _, err = run_cli(["train", *SMALL, "--out", str(out), "--report-to", tracker], capsys)
    assert code == 0, err
    read, loss, metric = READERS[tracker]
    keys, adapter = read(out / "tracking")
    assert {loss, metric} <= keys, sorted(keys)
    assert {k: adapter[k] for k in ADAPTER} == ADAPTER
    assert "MLFLOW_ALLOW_FILE_STORE" not in __import__("os").environ  # the local defaults are undone afterwards
    plain = json.loads((out / "metrics.json").read_text())
    assert "report_to" not in plain["identity"]  # where a run reports is not what it computes


def test_adapter_record_reads_a_peft_b_only_model(tiny_model):
    from asymlora.peft import b_only
    from asymlora.training.tracking import AdapterRecord

    record = AdapterRecord.of_model(b_only(tiny_model("llama"), rank=2, seed=1, target_modules=["q_proj"]))
    assert (record.method, record.rank, record.trained_factor, record.frozen_factor) == ("peft_b_only", 2, "B", "A")
    assert record.trainable_params == 2 * 32 * 2  # two layers, lora_B 32 × 2
