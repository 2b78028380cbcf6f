"""Build a tiny, randomly initialised Qwen2.5-VL checkpoint entirely offline.

The checkpoint (model, processor, tokenizer, tool-calling chat template, generation config) is what
the tests, the demo and the speed benchmark load instead of a real Qwen2.5-VL: about 0.2 M
parameters, < 1 MB on disk, built in about a second on a CPU, never touching the Hugging Face Hub
(stack.md "transformers 5.x tiny Qwen2.5-VL"):

* tokenizer: a byte-level BPE trained locally with ``tokenizers`` on a small built-in corpus (the
  AI4VA-FG prompt wording, the zoom tool schema and the chat-template text), with Qwen2's
  normaliser and split regex and the Qwen special tokens, wrapped as ``Qwen2Tokenizer``;
* processor: ``Qwen2VLImageProcessor(min_pixels=3136, max_pixels=12544)`` (4 to 16 visual tokens
  per image) and a ``Qwen2VLVideoProcessor`` in a ``Qwen2_5_VLProcessor``;
* chat template: the project's Qwen2.5-VL tool-calling template
  (``ai4va_fg_dataset/core/templates/qwen2_5_vl_tool.jinja``, method.md section 3), so tool mode and RARL run
  with the tiny model exactly as with the real one;
* model: ``Qwen2_5_VLForConditionalGeneration`` with hidden size 64, 2 layers, 4/2 heads,
  ``mrope_section`` [2, 3, 3], a 2-block vision tower of width 32;
* generation config: greedy, ``<|im_end|>`` as end of sequence, ``<|image_pad|>`` /
  ``<|video_pad|>`` suppressed (a random model samples them, and a stray vision pad in the output
  crashes Qwen2.5-VL's rope index on the next turn).

Deterministic under ``--seed`` (same files, same weights) and idempotent: an existing checkpoint
built with the same settings is left as is; otherwise it is rebuilt in a temporary folder and moved
into place atomically.

Usage::

    python recipes/make_tiny_model.py --out build/tiny-qwen2.5-vl [--seed 0] [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
from pathlib import Path

logger = logging.getLogger("make_tiny_model")

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
"""Qwen2.5-VL special tokens the tiny tokenizer knows (ids 0..6, in this order)."""

TOOL_TOKENS = ["<tool_call>", "</tool_call>"]
"""Added as single, *non-special* tokens (after the BPE vocabulary), as in Qwen2.5's tokenizer: they survive
``decode(skip_special_tokens=True)``, so a decoded completion keeps its tool calls."""

QWEN2_SPLIT_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
"""Qwen2's pre-tokenisation regex (same as Qwen2.5 / Qwen2.5-VL)."""

VOCAB_SIZE = 640
"""BPE vocabulary size: 256 byte symbols + special tokens + a few hundred merges."""

MIN_PIXELS = 3136
MAX_PIXELS = 12544

# Bump when the recipe changes so existing tiny checkpoints are rebuilt.
RECIPE_VERSION = 2
STAMP_FILE = "tiny_model_recipe.json"


def _corpus() -> list[str]:
    """The text the tiny BPE is trained on: prompts, the tool schema and chat-template text."""
    lines = [
        "You are a helpful assistant.",
        "What is the marked character doing? Which of the two marked entities is closer to the viewer?",
        "Are the two marked characters the same character? How many times does the character appear?",
        "Pick the correct reading order of the speech balloons. Where does the given panel belong?",
        "Describe the second panel of the top row. Options: A. B. C. D. The answer is B.",
        '<think>The marked character is running.</think><answer>A</answer> <answer>3</answer>',
        '{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [10, 20, 110, 220], "label": "panel"}}',
        "<tool_response>\nZoomed in on the region.\n</tool_response>",
        "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 32 64 100 128 256 512 1024",
    ]
    try:  # the project's own prompt wording, when the package is importable
        from ai4va_fg_dataset.core import prompts

        lines += [prompts.DIRECT_SUFFIX, prompts.THINK_SUFFIX, prompts.TOOL_SUFFIX]
        lines.append(json.dumps(prompts.zoom_tool_schema()))
    except Exception as exc:  # noqa: BLE001 - the corpus only shapes merges; bytes cover all text
        logger.warning("ai4va_fg_dataset.core.prompts not importable (%s); training the BPE without it", exc)
    return lines


def build_tokenizer():
    """Train the tiny byte-level BPE and wrap it as a ``Qwen2Tokenizer``.

    Returns:
        ``transformers.Qwen2Tokenizer`` with the :data:`SPECIAL_TOKENS`; ``<|im_end|>`` is the eos
        token and ``<|endoftext|>`` the pad token, as in Qwen2.5-VL-Instruct.
    """
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        trainers,
    )
    from transformers import Qwen2Tokenizer

    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=1,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in TOOL_TOKENS])
    tokenizer = Qwen2Tokenizer(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        bos_token=None,
        errors="replace",
        clean_up_tokenization_spaces=False,
        model_max_length=32768,
    )
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS[1:]})
    return tokenizer


def build_processor(tokenizer, chat_template: str):
    """A ``Qwen2_5_VLProcessor`` (4-16 visual tokens per image) carrying ``chat_template``."""
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    image_processor = Qwen2VLImageProcessor(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    video_processor = Qwen2VLVideoProcessor(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    processor = Qwen2_5_VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=chat_template,
    )
    tokenizer.chat_template = chat_template
    return processor


def build_model(tokenizer, seed: int):
    """A randomly initialised tiny ``Qwen2_5_VLForConditionalGeneration`` (about 0.2 M parameters)."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS + TOOL_TOKENS}
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]},
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
            "tie_word_embeddings": True,
        },
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": 64,
            "fullatt_block_indexes": [1],
            "window_size": 56,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.eval()
    return model


def build_generation_config(tokenizer):
    """Greedy decoding, ``<|im_end|>`` as eos, vision pads suppressed (see module docstring)."""
    from transformers import GenerationConfig

    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    return GenerationConfig(
        do_sample=False,
        eos_token_id=[im_end, eot],
        pad_token_id=eot,
        bos_token_id=eot,
        max_new_tokens=32,
        suppress_tokens=[
            tokenizer.convert_tokens_to_ids("<|image_pad|>"),
            tokenizer.convert_tokens_to_ids("<|video_pad|>"),
            tokenizer.convert_tokens_to_ids("<|vision_start|>"),
            tokenizer.convert_tokens_to_ids("<|vision_end|>"),
        ],
    )


def _load_chat_template(path: str | None) -> str:
    """The tool chat template: ``path`` if given, else ``ai4va_fg_dataset.core.chat_template``."""
    if path:
        return Path(path).read_text(encoding="utf-8")
    from ai4va_fg_dataset.core.chat_template import tool_chat_template

    return tool_chat_template()


def _stamp(seed: int, chat_template: str) -> dict:
    """What determines the checkpoint: compared on re-runs to decide whether to rebuild."""
    import tokenizers
    import transformers

    return {
        "recipe_version": RECIPE_VERSION,
        "seed": seed,
        "chat_template_sha256": hashlib.sha256(chat_template.encode()).hexdigest(),
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
    }


def make_tiny_model(out: str | os.PathLike, seed: int = 0, chat_template_path: str | None = None,
                    force: bool = False) -> Path:
    """Build the tiny Qwen2.5-VL checkpoint into ``out`` (see the module docstring).

    Args:
        out: destination folder; created (parents too). Replaced atomically when rebuilt.
        seed: torch seed of the random weights; same seed, same checkpoint.
        chat_template_path: a Jinja chat template to install instead of the project's tool template.
        force: rebuild even when ``out`` already holds a checkpoint built with the same settings.

    Returns:
        The checkpoint folder (``Path(out)``), loadable with ``from_pretrained`` /
        ``AutoProcessor.from_pretrained`` offline.

    Raises:
        FileNotFoundError: ``chat_template_path`` does not exist.
        FileExistsError: ``out`` exists and is not a folder.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {str(out)!r} exists and is not a folder")
    chat_template = _load_chat_template(chat_template_path)
    stamp = _stamp(seed, chat_template)
    stamp_path = out / STAMP_FILE
    if not force and stamp_path.is_file():
        try:
            if json.loads(stamp_path.read_text()) == stamp:
                logger.info("tiny model already built in %s (same recipe, seed %d); nothing to do", out, seed)
                return out
        except json.JSONDecodeError:
            pass

    tokenizer = build_tokenizer()
    processor = build_processor(tokenizer, chat_template)
    model = build_model(tokenizer, seed)
    model.generation_config = build_generation_config(tokenizer)

    from ai4va_fg_dataset.core.atomic_dir import replacing_dir

    with replacing_dir(out, mode=0o755) as tmp:  # 0o755: the checkpoint is meant to be shared
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        (tmp / STAMP_FILE).write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n")
    n_params = sum(p.numel() for p in model.parameters())
    logger.info("built tiny Qwen2.5-VL (%d parameters, vocab %d) in %s", n_params, len(tokenizer), out)
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="destination folder of the checkpoint")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights (default 0)")
    parser.add_argument("--chat-template", default=None,
                        help="Jinja chat template file (default: ai4va_fg_dataset/core/templates/qwen2_5_vl_tool.jinja)")
    parser.add_argument("--force", action="store_true", help="rebuild even if an identical checkpoint exists")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # Runs from a checkout without installation too.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    path = make_tiny_model(args.out, seed=args.seed, chat_template_path=args.chat_template, force=args.force)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
