"""``ai4va_zoom``: the multi-turn zoom agent for AI4VA-FG tool mode (method.md section 3; paper Table 5.2).

An lmms-eval chat model that runs a real conversation per sample: the model sees the page, may
write ``<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [...]}}</tool_call>``,
the call is executed by the project's crop executor
(:class:`ai4va_fg_dataset.core.zoom_tool.ZoomTool`, the one RARL training uses: boxes in the frame the
model sees are mapped back to page pixels, clamped, grown to 28 px, recorded) and the crop comes back
as a new image in the next user turn, for up to ``max_turns`` assistant turns. The sample's output
is a :mod:`lmms_eval_tasks.trajectory` JSON record (turns, tool calls, executed crops) from which the
task scores the answer, the tool calls per sample and the crop IoU against the GT boxes.

The tool result is rendered as the project's chat template renders a ``tool`` message
(``<|im_start|>user\\n<tool_response>\\n<image>Zoomed in on [...]\\n</tool_response><|im_end|>``), but
sent as a ``user`` message so that every backend and template passes the image through (stock
Qwen2/2.5-VL templates drop images in ``tool`` messages, trl #5663).

Tasks turn the tool on with the generation kwarg ``zoom_tool: true`` (the ``*_tool`` tasks); for
other tasks the agent is a plain single-turn model, so direct / think / tool runs of one model use
one backend.

Backends (``backend=`` model arg):

* ``hf``: transformers ``AutoModelForImageTextToText`` + ``AutoProcessor`` (CPU or GPU);
* ``vllm``: ``vllm.LLM.chat`` with all active conversations of a batch generated together each turn.

Model args (``--model_args key=value,...``):

=========================== =====================================================================
``pretrained``              checkpoint folder or Hub id (required)
``backend``                 ``hf`` (default) or ``vllm``
``max_turns``               most assistant turns per sample (default 5; the last one cannot zoom)
``max_calls``               most zoom calls per sample (default 4; extra calls get an error message)
``coords``                  frame of the model's boxes: ``qwen`` (Qwen2/2.5-VL resized image,
                            default), ``pixels`` (original page pixels), ``norm1000`` (0..1000)
``chat_template``           ``tool`` (the project's Qwen2.5-VL tool template, default), ``model``
                            (the checkpoint's own) or a Jinja file
``min_pixels``/``max_pixels`` image pixel budget (default: the processor's)
``device``, ``dtype``       HF: ``cpu``/``cuda``..., ``auto``/``float32``/``bfloat16``/``float16``
``batch_size``              conversations advanced together (vLLM; HF runs them one by one)
``tensor_parallel_size``, ``gpu_memory_utilization``, ``max_model_len``: vLLM engine settings
=========================== =====================================================================

The turn and call budgets default to ``ai4va_fg_dataset.core.zoom_tool.DEFAULT_MAX_TURNS`` /
``DEFAULT_MAX_ZOOM_CALLS``, the defaults of ``trl_rarl.RARLConfig`` (``max_turns`` / ``max_zoom_calls``): a
RARL policy is evaluated under the budget it was trained with; a run that differs says so by name
(``max_calls=N``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from lmms_eval.api.model import lmms
from tqdm import tqdm

from ai4va_fg_dataset.core.images import decode_image
from ai4va_fg_dataset.core.prompts import zoom_tool_schema
from ai4va_fg_dataset.core.zoom_tool import (
    DEFAULT_MAX_TURNS,
    DEFAULT_MAX_ZOOM_CALLS,
    ZoomTool,
    parse_tool_calls,
)
from lmms_eval_tasks.trajectory import Trajectory

logger = logging.getLogger(__name__)

BACKENDS = ("hf", "vllm")
COORDS = ("qwen", "pixels", "norm1000")
TOOL_CALL_END = "</tool_call>"


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


@dataclass
class _Conversation:
    """One sample's running conversation (HF-style messages + the images in order)."""

    messages: list[dict]
    images: list[Any]
    tool: ZoomTool | None
    trajectory: Trajectory = field(default_factory=lambda: Trajectory(turns=[]))
    done: bool = False


def to_chat(messages: list[dict]) -> tuple[list[dict], list[Any]]:
    """Convert lmms-eval protocol messages to HF chat messages plus the list of PIL images.

    Args:
        messages: ``[{"role": ..., "content": [{"type": "image", "url": PIL.Image}, {"type": "text",
            "text": ...}]}]`` as a task's ``doc_to_messages`` returns them (string content allowed).

    Returns:
        ``(chat_messages, images)``: content blocks ``{"type": "image"}`` / ``{"type": "text"}`` in
        order, and the images in the same order.

    Raises:
        ValueError: a video or audio block (the agent handles images only).
    """

    chat: list[dict] = []
    images: list[Any] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            chat.append({"role": message["role"], "content": [{"type": "text", "text": content}]})
            continue
        blocks = []
        for block in content or []:
            kind = block.get("type")
            if kind == "text":
                blocks.append({"type": "text", "text": block.get("text", "")})
            elif kind == "image":
                images.append(decode_image(block.get("url", block.get("image"))))
                blocks.append({"type": "image"})
            else:
                raise ValueError(f"ai4va_zoom handles text and images only, got a {kind!r} block")
        chat.append({"role": message["role"], "content": blocks})
    return chat, images


def tool_response_message(results: list) -> tuple[dict, list[Any]]:
    """The user turn carrying the results of one assistant turn's zoom calls.

    Args:
        results: :class:`ai4va_fg_dataset.core.zoom_tool.ZoomResult` objects, in call order.

    Returns:
        ``(message, images)``: content ``<tool_response>\\n[image]text\\n</tool_response>`` per call
        (joined by a newline, exactly as the project's template renders consecutive ``tool``
        messages), and the crops to append to the conversation's images.
    """
    blocks: list[dict] = []
    images: list[Any] = []
    for i, result in enumerate(results):
        blocks.append({"type": "text", "text": ("\n" if i else "") + "<tool_response>\n"})
        if result.ok:
            blocks.append({"type": "image"})
            images.append(result.image)
        blocks.append({"type": "text", "text": result.text() + "\n</tool_response>"})
    return {"role": "user", "content": blocks}, images


class ZoomAgent(lmms):
    """The ``ai4va_zoom`` lmms-eval model (see the module docstring for the model args).

    Raises:
        ValueError: unknown ``backend`` / ``coords``, or ``max_turns`` < 1.
    """

    is_simple = False

    def __init__(
        self,
        pretrained: str,
        backend: str = "hf",
        max_turns: int = DEFAULT_MAX_TURNS,
        max_calls: int = DEFAULT_MAX_ZOOM_CALLS,
        coords: str = "qwen",
        chat_template: str = "tool",
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        device: str = "cpu",
        dtype: str = "auto",
        batch_size: int = 1,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.8,
        max_model_len: int | None = None,
        min_crop: float = 28.0,
        **kwargs,
    ) -> None:
        super().__init__()
        if kwargs:
            logger.warning("ai4va_zoom ignores unknown model args %s", sorted(kwargs))
        if backend not in BACKENDS:
            raise ValueError(f"ai4va_zoom: backend={backend!r} is not one of {BACKENDS}")
        if coords not in COORDS:
            raise ValueError(f"ai4va_zoom: coords={coords!r} is not one of {COORDS}")
        self.max_turns = int(max_turns)
        if self.max_turns < 1:
            raise ValueError(f"ai4va_zoom: max_turns={max_turns!r} must be >= 1")
        self.max_calls = int(max_calls)
        self.backend = backend
        self.coords = coords
        self.min_crop = float(min_crop)
        self.batch_size_per_gpu = max(1, int(batch_size))
        self.pretrained = pretrained
        self._rank, self._world_size = 0, 1

        from transformers import AutoProcessor

        processor_kwargs = {}
        if min_pixels is not None:
            processor_kwargs["min_pixels"] = int(min_pixels)
        if max_pixels is not None:
            processor_kwargs["max_pixels"] = int(max_pixels)
        self.processor = AutoProcessor.from_pretrained(pretrained, **processor_kwargs)
        self._tokenizer = getattr(self.processor, "tokenizer", self.processor)
        self.chat_template = self._resolve_chat_template(chat_template)
        self.frame = self._vision_frame(min_pixels, max_pixels)

        if backend == "hf":
            import torch
            from transformers import AutoModelForImageTextToText

            torch_dtype = {"auto": None, "float32": torch.float32, "bfloat16": torch.bfloat16,
                           "float16": torch.float16}.get(dtype, "invalid")
            if torch_dtype == "invalid":
                raise ValueError(f"ai4va_zoom: dtype={dtype!r} is not auto/float32/bfloat16/float16")
            if torch_dtype is None:
                torch_dtype = torch.bfloat16 if str(device).startswith("cuda") else torch.float32
            self.device = device
            self.model = AutoModelForImageTextToText.from_pretrained(pretrained, dtype=torch_dtype).to(device).eval()
        else:
            from vllm import LLM

            engine_kwargs: dict[str, Any] = {
                "model": pretrained,
                "tensor_parallel_size": int(tensor_parallel_size),
                "gpu_memory_utilization": float(gpu_memory_utilization),
                "limit_mm_per_prompt": {"image": self.max_calls + 1},
                "trust_remote_code": True,
                "seed": 0,
            }
            if max_model_len is not None:
                engine_kwargs["max_model_len"] = int(max_model_len)
            if processor_kwargs:
                engine_kwargs["mm_processor_kwargs"] = processor_kwargs
            self.llm = LLM(**engine_kwargs)

    # -- set-up helpers ------------------------------------------------------------------------------
    def _resolve_chat_template(self, chat_template: str) -> str | None:
        if chat_template == "model":
            return None
        if chat_template == "tool":
            from ai4va_fg_dataset.core.chat_template import tool_chat_template

            return tool_chat_template()
        with open(chat_template, encoding="utf-8") as f:
            return f.read()

    def _vision_frame(self, min_pixels, max_pixels):
        from ai4va_fg_dataset.core.vision_frame import VisionFrame

        if self.coords != "qwen":
            return None
        frame = VisionFrame.from_processor(self.processor)
        if min_pixels is not None or max_pixels is not None:
            frame = VisionFrame(frame.patch_size, frame.merge_size,
                                int(min_pixels or frame.min_pixels), int(max_pixels or frame.max_pixels))
        return frame

    def model_frame_size(self, width: int, height: int) -> tuple[int, int] | None:
        """``(width, height)`` of the frame the model's boxes refer to, for a page of that size."""
        if self.coords == "pixels":
            return None
        if self.coords == "norm1000":
            return (1000, 1000)
        return self.frame.resized(width, height)

    @property
    def tokenizer(self):
        return self._tokenizer

    # -- generation ----------------------------------------------------------------------------------
    def _hf_generate(self, conversations: list[_Conversation], gen: dict, tool_mode: bool) -> list[str]:
        import torch

        tools = [zoom_tool_schema()] if tool_mode else None
        eos = [self._tokenizer.convert_tokens_to_ids("<|im_end|>")]
        if self._tokenizer.eos_token_id is not None:
            eos.append(self._tokenizer.eos_token_id)
        if tool_mode:
            end_id = self._tokenizer.convert_tokens_to_ids(TOOL_CALL_END)
            if isinstance(end_id, int) and end_id != self._tokenizer.unk_token_id:
                eos.append(end_id)
        eos = [i for i in dict.fromkeys(eos) if isinstance(i, int)]
        temperature = float(gen.get("temperature", 0) or 0)
        outputs = []
        for conv in conversations:
            text = self.processor.apply_chat_template(
                conv.messages, tools=tools, add_generation_prompt=True, tokenize=False,
                chat_template=self.chat_template,
            )
            inputs = self.processor(text=[text], images=conv.images or None, return_tensors="pt").to(self.model.device)
            sampling = {"do_sample": True, "temperature": temperature, "top_p": float(gen.get("top_p") or 1.0)} \
                if temperature > 0 else {"do_sample": False}
            with torch.no_grad():
                out = self.model.generate(
                    **inputs,
                    max_new_tokens=int(gen.get("max_new_tokens", 1024)),
                    eos_token_id=eos,
                    pad_token_id=self._tokenizer.pad_token_id,
                    **sampling,
                )
            new_tokens = out[0, inputs["input_ids"].shape[1]:]
            outputs.append(self._tokenizer.decode(new_tokens, skip_special_tokens=True))
        return outputs

    def _vllm_generate(self, conversations: list[_Conversation], gen: dict, tool_mode: bool) -> list[str]:
        from vllm import SamplingParams

        params = SamplingParams(
            max_tokens=int(gen.get("max_new_tokens", 1024)),
            temperature=float(gen.get("temperature", 0) or 0),
            top_p=float(gen.get("top_p") or 1.0),
            stop=[TOOL_CALL_END] if tool_mode else None,
            include_stop_str_in_output=True,
        )
        batch = []
        for conv in conversations:
            images = iter(conv.images)
            messages = []
            for m in conv.messages:
                content = []
                for block in m["content"]:
                    if block["type"] == "image":
                        content.append({"type": "image_pil", "image_pil": next(images)})
                    else:
                        content.append(block)
                messages.append({"role": m["role"], "content": content})
            batch.append(messages)
        kwargs = {"chat_template": self.chat_template, "add_generation_prompt": True}
        if tool_mode:
            kwargs["tools"] = [zoom_tool_schema()]
        results = self.llm.chat(batch, params, use_tqdm=False, **kwargs)
        return [r.outputs[0].text for r in results]

    def _generate(self, conversations, gen, tool_mode) -> list[str]:
        if self.backend == "hf":
            return self._hf_generate(conversations, gen, tool_mode)
        return self._vllm_generate(conversations, gen, tool_mode)

    def _step(self, conv: _Conversation, output: str, turn: int) -> None:
        """Record one assistant turn; execute its zoom calls or finish the conversation."""
        traj = conv.trajectory
        traj.turns.append(output)
        calls = parse_tool_calls(output)
        traj.tool_calls += len(calls)
        if not calls or "<answer>" in output:
            conv.done, traj.stop = True, "answer"
            return
        if turn + 1 >= self.max_turns or conv.tool is None:
            conv.done, traj.stop = True, "max_turns"
            return
        results = [conv.tool.execute(call) for call in calls]
        traj.tool_errors.extend(result.error for result in results if not result.ok)
        conv.messages.append({"role": "assistant", "content": [{"type": "text", "text": output}]})
        message, crops = tool_response_message(results)
        conv.messages.append(message)
        conv.images.extend(crops)

    def run_conversations(self, starts: list[tuple[list[dict], list[Any]]], gen: dict, tool_mode: bool) -> list[str]:
        """Run conversations to the end; the outputs lmms-eval receives (trajectory JSON in tool mode).

        Args:
            starts: ``(chat_messages, images)`` per sample (see :func:`to_chat`); the first image is the
                page the zoom tool crops.
            gen: generation kwargs of the task (``max_new_tokens`` per turn, ``temperature``, ``top_p``).
            tool_mode: offer the zoom tool and loop; otherwise one plain turn per sample.
        """
        conversations = []
        for messages, images in starts:
            tool = None
            if tool_mode and images:
                page = images[0]
                tool = ZoomTool(page, model_frame_size=self.model_frame_size(*page.size),
                                min_size=self.min_crop, max_calls=self.max_calls)
            conversations.append(_Conversation(messages=messages, images=list(images), tool=tool))
        if not tool_mode:
            return self._generate(conversations, gen, tool_mode=False)
        for turn in range(self.max_turns):
            active = [c for c in conversations if not c.done]
            if not active:
                break
            for conv, output in zip(active, self._generate(active, gen, tool_mode=True)):
                self._step(conv, output, turn)
        out = []
        for conv in conversations:
            if conv.tool is not None:
                conv.trajectory.crops = [list(b) for b in conv.tool.executed_boxes]
            else:
                conv.trajectory.crops = []
            out.append(conv.trajectory.dumps())
        return out

    def generate_until(self, requests) -> list[str]:
        """lmms-eval entry point: one output string per request (see the module docstring)."""
        results: list[str | None] = [None] * len(requests)
        pbar = tqdm(total=len(requests), desc="ai4va_zoom", disable=self.rank != 0)
        order = list(range(len(requests)))
        for start in range(0, len(order), self.batch_size_per_gpu):
            idx = order[start:start + self.batch_size_per_gpu]
            # Requests of a batch share the task's generation kwargs (lmms-eval groups by task).
            groups: dict[tuple, list[int]] = {}
            for i in idx:
                gen = requests[i].args[2] or {}
                key = (_as_bool(gen.get("zoom_tool", False)), repr(sorted(gen.items(), key=lambda kv: kv[0])))
                groups.setdefault(key, []).append(i)
            for (tool_mode, _), members in groups.items():
                gen = dict(requests[members[0]].args[2] or {})
                starts = []
                for i in members:
                    _ctx, doc_to_messages, _gen, doc_id, task, split = requests[i].args
                    starts.append(to_chat(doc_to_messages(self.task_dict[task][split][doc_id])))
                for i, output in zip(members, self.run_conversations(starts, gen, tool_mode)):
                    results[i] = output
            pbar.update(len(idx))
        pbar.close()
        return results  # type: ignore[return-value]

    def loglikelihood(self, requests):
        raise NotImplementedError("ai4va_zoom is a generation model; AI4VA-FG tasks use generate_until")

    def generate_until_multi_round(self, requests):
        raise NotImplementedError("ai4va_zoom runs its own zoom loop inside generate_until (tool tasks)")
