"""Tiny NeMo cache-aware streaming models built from a config (random weights, no download).

The configs follow NeMo's ``fastconformer_*_streaming`` recipes in miniature: a causal
FastConformer encoder (dw_striding 8x subsampling, ``chunked_limited`` attention with a left
context of 42 and a look-ahead of 2 steps, causal convolutions, layer norm), with a character
CTC decoder or an RNNT decoder and joint. The blank output is pushed down so that random
weights still emit characters: the tests compare what streaming produces with NeMo's own
reference, which needs text to compare.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

LABELS = list(" abcdefghijklmnopqrstuvwxyz'")


def _encoder(d_model: int = 64) -> dict[str, Any]:
    return {
        "_target_": "nemo.collections.asr.modules.ConformerEncoder",
        "feat_in": 80, "feat_out": -1, "n_layers": 2, "d_model": d_model,
        "subsampling": "dw_striding", "subsampling_factor": 8,
        "subsampling_conv_channels": 32, "causal_downsampling": True,
        "ff_expansion_factor": 2, "self_attention_model": "rel_pos", "n_heads": 4,
        "att_context_size": [42, 2], "att_context_style": "chunked_limited",
        "xscaling": True, "untie_biases": True, "pos_emb_max_len": 5000,
        "conv_kernel_size": 9, "conv_norm_type": "layer_norm", "conv_context_size": "causal",
        "dropout": 0.0, "dropout_pre_encoder": 0.0, "dropout_emb": 0.0, "dropout_att": 0.0,
    }


def _preprocessor() -> dict[str, Any]:
    return {
        "_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
        "sample_rate": 16000, "normalize": "NA", "window_size": 0.025, "window_stride": 0.01,
        "window": "hann", "features": 80, "n_fft": 512, "log": True, "frame_splicing": 1,
        "dither": 0.00001, "pad_to": 0, "pad_value": 0.0,
    }


def tiny_streaming_model(kind: Literal["ctc", "rnnt"], seed: int = 0) -> Any:
    """A random cache-aware model of ``kind`` on CPU, in eval mode."""
    import torch
    from nemo.collections.asr.models import EncDecCTCModel, EncDecRNNTModel
    from omegaconf import OmegaConf

    torch.manual_seed(seed)
    d_model = 64
    cfg: dict[str, Any] = {"sample_rate": 16000, "labels": LABELS,
                           "preprocessor": _preprocessor(), "encoder": _encoder(d_model)}
    if kind == "ctc":
        cfg["decoder"] = {"_target_": "nemo.collections.asr.modules.ConvASRDecoder",
                          "feat_in": d_model, "num_classes": len(LABELS), "vocabulary": LABELS}
        model = EncDecCTCModel(cfg=OmegaConf.create(cfg))
        with torch.no_grad():
            model.decoder.decoder_layers[0].bias[-1] -= 3.0  # blank is the last class
    else:
        cfg["decoder"] = {"_target_": "nemo.collections.asr.modules.RNNTDecoder",
                          "normalization_mode": None, "random_state_sampling": False,
                          "blank_as_pad": True, "vocab_size": len(LABELS),
                          "prednet": {"pred_hidden": 32, "pred_rnn_layers": 1, "dropout": 0.0}}
        cfg["joint"] = {"_target_": "nemo.collections.asr.modules.RNNTJoint",
                        "log_softmax": None, "preserve_memory": False, "fuse_loss_wer": False,
                        "num_classes": len(LABELS), "vocabulary": LABELS,
                        "jointnet": {"encoder_hidden": d_model, "pred_hidden": 32,
                                     "joint_hidden": 32, "activation": "relu", "dropout": 0.0}}
        cfg["decoding"] = {"strategy": "greedy_batch", "greedy": {"max_symbols": 3}}
        cfg["model_defaults"] = {"enc_hidden": d_model, "pred_hidden": 32}
        model = EncDecRNNTModel(cfg=OmegaConf.create(cfg))
        with torch.no_grad():
            model.joint.joint_net[-1].bias[-1] -= 2.0  # blank is the last output
    return model.eval()


def save_tiny(kind: Literal["ctc", "rnnt"], path: Path) -> Path:
    tiny_streaming_model(kind).save_to(str(path))
    return path
