"""Export a trained tagger for fast CPU serving: CTranslate2 encoder (int8) + a linear head.

CTranslate2 runs BERT-family encoders with int8 weights (embeddings included), which shrinks
MiniLM-L6 from 90 MB to 24 MB and speeds it up on CPU; the token-classification head is one
linear layer, applied to CTranslate2's hidden states with numpy. The export folder holds:

* ``model.bin``, ``config.json``, ``vocabulary.json``: the CTranslate2 encoder;
* ``classifier.safetensors``: the head (``weight`` labels × hidden, ``bias``);
* ``tokenizer/``: the fast tokenizer (offsets come from it);
* ``medstream_ner.json``: format, labels, quantization, the encoder's position limit, and the
  model's heads (:mod:`ner.heads`) when it has them.

``TransformerTagger`` loads either this folder or the Hugging Face folder the recipe exports.

    python -m ner.export MODEL_DIR OUT_DIR [--quantization int8]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ner.heads import CONFIG_KEY

EXPORT_FORMAT = "medstream-ner-ct2/1"
MANIFEST = "medstream_ner.json"


def export_ctranslate2(model_dir: Path, out_dir: Path, quantization: str = "int8") -> Path:
    """Convert the Hugging Face token-classification model in ``model_dir`` into ``out_dir``."""
    from ctranslate2.converters import TransformersConverter
    from safetensors.torch import save_file
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    model: Any = AutoModelForTokenClassification.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    classifier = model.classifier
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # CTranslate2 converts the bare encoder (e.g. BertModel), not the classification model.
        # Its BERT loader reads position_embedding_type, which transformers 5 configs omit
        # when it is the default.
        encoder_config = model.base_model.config
        if not hasattr(encoder_config, "position_embedding_type"):
            encoder_config.position_embedding_type = "absolute"
        model.base_model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        TransformersConverter(tmp).convert(str(out_dir), quantization=quantization, force=True)
    save_file({"weight": classifier.weight.detach().float().contiguous(),
               "bias": classifier.bias.detach().float().contiguous()},
              str(out_dir / "classifier.safetensors"))
    tokenizer.save_pretrained(out_dir / "tokenizer")
    manifest = {"format": EXPORT_FORMAT, "labels": labels, "quantization": quantization,
                "max_position_embeddings": int(model.config.max_position_embeddings),
                "source": str(model_dir)}
    heads = getattr(model.config, CONFIG_KEY, None)
    if heads is not None:
        manifest["heads"] = heads
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return out_dir


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Export a medstream NER model to CTranslate2.")
    parser.add_argument("model_dir", type=Path, help="the recipe's Hugging Face export")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--quantization", default="int8",
                        help="int8 (default), int8_float32, float16 or float32")
    args = parser.parse_args(argv)
    print(export_ctranslate2(args.model_dir, args.out_dir, args.quantization))


if __name__ == "__main__":
    main()
