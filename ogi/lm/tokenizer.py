"""Tokenizers: a deterministic word-level one (the default) and a trained BPE one, both saved as JSON.

Both share the special tokens (pad, bos, eos, unk, the prompt and response separators) and reserved action tokens
``<act_0>``..``<act_{k-1}>`` that the planner emits for discrete actions. Text is normalized first (lower case,
punctuation split off as its own token), so ``decode(encode(text)) == normalize(text)`` for in-vocabulary text.
Unknown words map to ``<unk>``; encoding never fails.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ogi.validation import ConfigError

PAD, BOS, EOS, UNK, PROMPT, RESPONSE = "<pad>", "<bos>", "<eos>", "<unk>", "<prompt>", "<response>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK, PROMPT, RESPONSE)
_PUNCTUATION = re.compile(r"([.,;:!?()\[\]{}\"'])")
_FORMAT = "ogi-lm-tokenizer"


def normalize(text: str) -> str:
    """Lower case, punctuation split into separate tokens, whitespace collapsed to single spaces."""
    return " ".join(_PUNCTUATION.sub(r" \1 ", text.lower()).split())


def action_token(index: int) -> str:
    return f"<act_{index}>"


class Tokenizer:
    """Word-level tokenizer (``kind="word"``) or BPE tokenizer (``kind="bpe"``, from the ``tokenizers`` package).

    Ids 0..5 are the special tokens in :data:`SPECIAL_TOKENS` order, then the action tokens, then the learned
    vocabulary.
    """

    pad_id, bos_id, eos_id, unk_id, prompt_id, response_id = range(len(SPECIAL_TOKENS))

    def __init__(self, *, kind: str, vocabulary: Sequence[str], num_action_tokens: int, bpe_json: str | None = None):
        if kind not in ("word", "bpe"):
            raise ConfigError(f"tokenizer kind = {kind!r} must be 'word' or 'bpe'")
        reserved = list(SPECIAL_TOKENS) + [action_token(i) for i in range(num_action_tokens)]
        if list(vocabulary[: len(reserved)]) != reserved:
            raise ConfigError(f"tokenizer vocabulary must start with the reserved tokens {reserved}")
        if len(set(vocabulary)) != len(vocabulary):
            raise ConfigError("tokenizer vocabulary has duplicate tokens")
        self.kind = kind
        self.num_action_tokens = num_action_tokens
        self.vocabulary = tuple(vocabulary)
        self._ids = {token: index for index, token in enumerate(self.vocabulary)}
        self._bpe = None
        self._bpe_json = bpe_json
        if kind == "bpe":
            if bpe_json is None:
                raise ConfigError("a 'bpe' tokenizer needs its trained model (bpe_json)")
            from tokenizers import Tokenizer as HFTokenizer

            self._bpe = HFTokenizer.from_str(bpe_json)
            if self._bpe.get_vocab() != self._ids:
                raise ConfigError("bpe_json's vocabulary differs from the tokenizer's vocabulary")

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    @property
    def action_ids(self) -> range:
        """Ids of ``<act_0>``..``<act_{k-1}>``."""
        return range(len(SPECIAL_TOKENS), len(SPECIAL_TOKENS) + self.num_action_tokens)

    def token_id(self, token: str) -> int:
        return self._ids.get(token, self.unk_id)

    def encode(self, text: str) -> list[int]:
        """Ids of ``normalize(text)``, no special tokens added; reserved token spellings in the text are kept."""
        words = normalize(text).split()
        if self._bpe is None:
            return [self._ids.get(word, self.unk_id) for word in words]
        return self._bpe.encode(words, is_pretokenized=True, add_special_tokens=False).ids

    def decode(self, ids: Iterable[int], *, skip_special: bool = True) -> str:
        """Text of ``ids``; with ``skip_special`` the pad/bos/eos/separator tokens are left out
        (unk and actions stay)."""
        ids = [int(i) for i in ids]
        for index in ids:
            if not 0 <= index < self.vocab_size:
                raise ValueError(f"token id {index} is outside the vocabulary [0, {self.vocab_size})")
        hidden = {self.pad_id, self.bos_id, self.eos_id, self.prompt_id, self.response_id} if skip_special else set()
        kept = [index for index in ids if index not in hidden]
        if self._bpe is None:
            return " ".join(self.vocabulary[index] for index in kept)
        return " ".join(self._bpe.decode(kept, skip_special_tokens=False).split())

    def count(self, text: str) -> int:
        """Exact number of tokens ``encode(text)`` yields."""
        return len(self.encode(text))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "kind": self.kind,
            "num_action_tokens": self.num_action_tokens,
            "vocabulary": list(self.vocabulary),
            "bpe_json": self._bpe_json,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tokenizer:
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ConfigError(f"tokenizer JSON must be an object with format = {_FORMAT!r}")
        for key in ("kind", "num_action_tokens", "vocabulary"):
            if key not in data:
                raise ConfigError(f"tokenizer JSON lacks the field '{key}'")
        return cls(
            kind=data["kind"],
            vocabulary=data["vocabulary"],
            num_action_tokens=data["num_action_tokens"],
            bpe_json=data.get("bpe_json"),
        )

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> Tokenizer:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except json.JSONDecodeError as error:
            raise ConfigError(f"{path}: tokenizer file is not valid JSON: {error}") from None


def train_tokenizer(
    texts: Iterable[str],
    *,
    kind: str = "word",
    num_action_tokens: int = 8,
    min_count: int = 1,
    bpe_vocab_size: int = 256,
) -> Tokenizer:
    """Build a tokenizer from ``texts``. Word-level: every normalized word seen ``min_count`` times, sorted by
    descending count then spelling (so the result does not depend on text order beyond counts). BPE: merges
    learned by the ``tokenizers`` package up to ``bpe_vocab_size`` entries.
    """
    if num_action_tokens < 0:
        raise ConfigError(f"num_action_tokens = {num_action_tokens} must be >= 0")
    reserved = list(SPECIAL_TOKENS) + [action_token(i) for i in range(num_action_tokens)]
    normalized = [normalize(text) for text in texts]
    if not any(normalized):
        raise ConfigError("cannot train a tokenizer on an empty corpus (no words in any text)")
    if kind == "word":
        counts = Counter(word for text in normalized for word in text.split())
        words = sorted(
            (w for w, c in counts.items() if c >= min_count and w not in reserved), key=lambda w: (-counts[w], w)
        )
        return Tokenizer(kind="word", vocabulary=reserved + words, num_action_tokens=num_action_tokens)
    if kind == "bpe":
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, pre_tokenizers, trainers

        if bpe_vocab_size <= len(reserved):
            raise ConfigError(f"bpe_vocab_size = {bpe_vocab_size} must exceed the {len(reserved)} reserved tokens")
        bpe = HFTokenizer(models.BPE(unk_token=UNK, end_of_word_suffix="</w>"))
        bpe.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        bpe.decoder = decoders.BPEDecoder(suffix="</w>")
        trainer = trainers.BpeTrainer(
            vocab_size=bpe_vocab_size, special_tokens=reserved, end_of_word_suffix="</w>", show_progress=False
        )
        bpe.train_from_iterator(normalized, trainer)
        by_id = sorted(bpe.get_vocab().items(), key=lambda item: item[1])
        return Tokenizer(
            kind="bpe",
            vocabulary=[token for token, _ in by_id],
            num_action_tokens=num_action_tokens,
            bpe_json=bpe.to_str(),
        )
    raise ConfigError(f"tokenizer kind = {kind!r} must be 'word' or 'bpe'")
