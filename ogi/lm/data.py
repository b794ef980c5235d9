"""Token layouts shared by the stages.

Pretraining text is one stream ``<bos> doc <eos> <bos> doc <eos> ...`` cut into windows. A (prompt, response) pair is
``<bos> <prompt> prompt-tokens <response> response-tokens <eos>``; the model is asked to continue the part up to and
including ``<response>``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from ogi.lm.tokenizer import Tokenizer


class ContextLengthError(ValueError):
    """A prompt plus response does not fit in the model's context."""


def pack_documents(tokenizer: Tokenizer, documents: Sequence[str]) -> torch.Tensor:
    """All documents as one token stream ``(n_tokens,)``, each wrapped in bos/eos."""
    ids: list[int] = []
    for document in documents:
        ids += [tokenizer.bos_id, *tokenizer.encode(document), tokenizer.eos_id]
    return torch.tensor(ids, dtype=torch.long)


def random_windows(stream: torch.Tensor, batch_size: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """``batch_size`` windows of ``length + 1`` consecutive tokens (inputs plus the next-token targets)."""
    if stream.numel() < length + 1:
        raise ValueError(f"the token stream has {stream.numel()} tokens, fewer than one window of {length + 1}")
    starts = torch.randint(0, stream.numel() - length, (batch_size,), generator=generator)
    return torch.stack([stream[start : start + length + 1] for start in starts.tolist()])


def prompt_ids(tokenizer: Tokenizer, prompt: str) -> list[int]:
    """``<bos> <prompt> prompt-tokens <response>``: what the model continues."""
    return [tokenizer.bos_id, tokenizer.prompt_id, *tokenizer.encode(prompt), tokenizer.response_id]


def pair_ids(tokenizer: Tokenizer, prompt: str, response: str, context_length: int) -> tuple[list[int], int]:
    """Token ids of a full (prompt, response) example and the index of its first response token.

    Raises ContextLengthError naming both lengths when the example does not fit ``context_length``.
    """
    head = prompt_ids(tokenizer, prompt)
    ids = head + tokenizer.encode(response) + [tokenizer.eos_id]
    if len(ids) > context_length:
        raise ContextLengthError(
            f"prompt ({len(head)} tokens with separators) + response ({len(ids) - len(head)} tokens with eos) = "
            f"{len(ids)} exceeds the model's context_length = {context_length}: {prompt!r} -> {response!r}"
        )
    return ids, len(head)


def pad_right(rows: Sequence[Sequence[int]], pad_id: int) -> torch.Tensor:
    """Rows padded on the right to one length, ``(len(rows), max_len)``; causal attention never sees the padding."""
    width = max(len(row) for row in rows)
    return torch.tensor([list(row) + [pad_id] * (width - len(row)) for row in rows], dtype=torch.long)


def read_jsonl(path: Path, fields: tuple[str, ...]) -> list[dict[str, str]]:
    """Records of a JSON-lines file, each an object with string values for ``fields``; errors name line and field."""
    records = []
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        raise ValueError(f"{path}: no such data file") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: not valid JSON: {error}") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}:{number}: each line must be a JSON object with fields {list(fields)}")
        for field in fields:
            if not isinstance(record.get(field), str):
                raise ValueError(f"{path}:{number}: field '{field}' must be a string")
        records.append({field: record[field] for field in fields})
    return records
