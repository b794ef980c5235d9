"""Instructions in words the planner was not trained on, said again in words it was: the pretrained language model's
own paraphrase, kept only where the training grammar reads it and it says the same things.

The planner's language model was pretrained on text that explains paraphrases in training words ("if you are told
to advance one meter , walk forward one meter ."), but fine-tuning on training wording does not carry that into the
planner's decisions. `InstructionRewriter` asks the pretrained model itself. For each clause of an instruction that
no training template reads (`ogi.envs.instructions.clause_split`), it prompts

    if you are told to <clause> ,

and decodes greedily to the first ".", with every content word (colour, shape, number, side) the clause does not
hold banned, so the model can change how a clause is said but not what it names. The paraphrase replaces the clause
only when a training template reads it and it holds exactly the clause's content words (`content_words`); else the
clause stays as it was. Clauses in training wording, and the connectives between clauses, are kept as they are.
The planner then reads the rewritten instruction (`PlannerDecider(..., rewrite=...)`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

from ogi.envs.instructions import CONTENT_WORDS, clause_split, content_words, split_clauses
from ogi.lm.model import CausalTransformer, generate
from ogi.lm.tokenizer import Tokenizer

PRETRAIN_STAGE = "pretrain"


class InstructionRewriter:
    """Rewrites instructions into training wording with a pretrained language model (`model`, `tokenizer`)."""

    def __init__(self, model: CausalTransformer, tokenizer: Tokenizer, *, max_new_tokens: int = 16):
        self.model, self.tokenizer = model.eval(), tokenizer
        self.max_new_tokens = max_new_tokens
        period = tokenizer.encode(".")
        if len(period) != 1:
            raise ValueError("the rewriter needs a tokenizer with '.' as one token")
        self._period = period[0]
        # each content word the tokenizer holds as one token (a word it does not know cannot be generated anyway)
        self._content_ids = {w: ids[0] for w in CONTENT_WORDS if len(ids := tokenizer.encode(w)) == 1}
        self._clause = lru_cache(maxsize=4096)(self._rewrite_clause)

    def __call__(self, text: str) -> str:
        """`text` with each clause outside training wording replaced by its checked paraphrase."""
        clauses, connectives = split_clauses(text)
        said = [self._clause(clause) for clause in clauses]
        out = said[0]
        for connective, clause in zip(connectives, said[1:]):
            out += f" {connective} {clause}"
        return out

    def _rewrite_clause(self, clause: str) -> str:
        if clause_split(clause) == "train":
            return clause
        paraphrase = self.paraphrase(clause)
        if clause_split(paraphrase) == "train" and content_words(paraphrase) == content_words(clause):
            return paraphrase
        return clause

    @torch.no_grad()
    def paraphrase(self, clause: str) -> str:
        """The model's greedy paraphrase of one clause, content words outside the clause banned (unchecked)."""
        words = set(clause.split())
        banned = tuple(i for w, i in self._content_ids.items() if w not in words)
        tok = self.tokenizer
        prompt = torch.tensor([[tok.bos_id, *tok.encode(f"if you are told to {clause} ,")]])
        new = generate(
            self.model, prompt, max_new_tokens=self.max_new_tokens, eos_id=self._period, greedy=True, banned_ids=banned
        )[0].tolist()
        if self._period in new:
            new = new[: new.index(self._period)]
        return tok.decode(new).strip()


def pretrained_rewriter(planner_path: Path) -> InstructionRewriter:
    """The rewriter of a planner checkpoint: the language model of the first "pretrain" stage in its lineage (the
    planner's own pretraining). ValueError when the lineage holds none."""
    from ogi.checkpoints.lineage import resolve_checkpoint, verify_lineage
    from ogi.policies.planner import PLANNER_KIND, load_planner

    for checkpoint in verify_lineage(resolve_checkpoint(Path(planner_path)), verify_parent_files=False).checkpoints:
        config = checkpoint.config
        if config.get("kind") == PLANNER_KIND and config.get("stage") == PRETRAIN_STAGE:
            pretrained = load_planner(checkpoint.path).planner
            return InstructionRewriter(pretrained.transformer, pretrained.tokenizer)
    raise ValueError(f"{planner_path}: no pretrained language model in the planner's lineage to rewrite instructions")
