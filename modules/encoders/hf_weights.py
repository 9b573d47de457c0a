"""Load Hugging Face TensorFlow models from local PyTorch-format safetensors, without torch.

``TFPreTrainedModel.from_pretrained`` can read PyTorch safetensors natively, but with the installed
``safetensors`` its lazy-archive path fails (``'builtins.safe_open' object is not iterable``), and
``from_pt=True`` imports torch, which this project does not ship. We therefore build the TF model from its
config and hand transformers' own PT->TF weight converter a plain ``{name: numpy array}`` dict.
Nothing is ever downloaded: only local directories are accepted.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SAFETENSORS_NAME = "model.safetensors"
TF_WEIGHTS_NAME = "tf_model.h5"


def load_tf_model(model_cls: Any, model_dir: str | Path) -> Any:
    """Instantiate ``model_cls`` (e.g. ``TFAutoModel``, ``TFCLIPModel``) from a local directory.

    Uses ``tf_model.h5`` or TF-written safetensors natively; PyTorch-written ``model.safetensors`` is converted.
    Raises ``FileNotFoundError`` when the directory has neither, ``ValueError`` when weights are missing.
    """
    from transformers import AutoConfig
    from transformers.modeling_tf_pytorch_utils import load_pytorch_state_dict_in_tf2_model

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"no config.json in model directory {model_dir}")
    if (model_dir / TF_WEIGHTS_NAME).is_file():
        return model_cls.from_pretrained(str(model_dir), local_files_only=True)
    st_path = model_dir / SAFETENSORS_NAME
    if not st_path.is_file():
        raise FileNotFoundError(f"no {SAFETENSORS_NAME} or {TF_WEIGHTS_NAME} in model directory {model_dir}")

    from safetensors import safe_open
    from safetensors.numpy import load_file

    with safe_open(str(st_path), framework="numpy") as f:
        fmt = (f.metadata() or {}).get("format")
    if fmt != "pt":  # written by TF/Flax: transformers' own loader handles it
        return model_cls.from_pretrained(str(model_dir), local_files_only=True)
    config = AutoConfig.from_pretrained(str(model_dir), local_files_only=True)
    model = model_cls.from_config(config) if hasattr(model_cls, "from_config") else model_cls(config)
    state_dict = load_file(str(st_path))
    model, info = load_pytorch_state_dict_in_tf2_model(
        model, state_dict, allow_missing_keys=True, output_loading_info=True, skip_logger_warnings=True
    )
    if info["missing_keys"] or info["mismatched_keys"]:
        raise ValueError(
            f"{st_path}: weights do not fit {type(model).__name__}: missing={info['missing_keys'][:5]} "
            f"mismatched={info['mismatched_keys'][:5]}"
        )
    if info["unexpected_keys"]:
        log.debug("unused checkpoint tensors in %s: %s", st_path, info["unexpected_keys"])
    return model
