"""A tiny random CLIP saved to disk (config, weights, BPE tokenizer, image processor): nothing downloaded. Shared by
the encoder tests and the CLIP-through-the-pipeline test."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def tiny_clip_dir(root: Path) -> Path:
    """A random tiny CLIP (config, weights, BPE tokenizer, image processor) written locally: nothing downloaded."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPTokenizer, TFCLIPModel
    from transformers.models.clip.tokenization_clip import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    merges = [("r", "e"), ("re", "d</w>"), ("b", "l"), ("bl", "u"), ("blu", "e</w>")]
    tokens = chars + [c + "</w>" for c in chars] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    tok_dir = root / "tok_src"
    tok_dir.mkdir()
    (tok_dir / "vocab.json").write_text(json.dumps(vocab))
    (tok_dir / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    tokenizer = CLIPTokenizer(str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"))

    config = CLIPConfig(
        text_config={
            "vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
            "num_attention_heads": 4, "max_position_embeddings": 32,
            "bos_token_id": vocab["<|startoftext|>"], "eos_token_id": vocab["<|endoftext|>"],
            "pad_token_id": vocab["<|endoftext|>"],
        },
        vision_config={
            "image_size": 32, "patch_size": 8, "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
            "num_attention_heads": 4,
        },
        projection_dim=16,
    )
    model = TFCLIPModel(config)
    model(
        input_ids=np.array([[vocab["<|startoftext|>"], vocab["<|endoftext|>"]]]),
        pixel_values=np.zeros((1, 3, 32, 32), np.float32),
    )
    out = root / "tiny_clip"
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(str(out))
    return out
