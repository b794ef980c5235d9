import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ogi.lm.corpus import demonstrations, pretraining_documents
from ogi.lm.tokenizer import SPECIAL_TOKENS, Tokenizer, normalize, train_tokenizer
from ogi.validation import ConfigError

TEXTS = ["Walk forward 2 meters, then turn LEFT.", "turn right 90 degrees ; stop", "sit down"]


def test_normalize_lowers_case_and_splits_punctuation():
    assert normalize("  Walk FORWARD 2 meters,then turn left. ") == "walk forward 2 meters , then turn left ."


def test_reserved_ids_come_first():
    tokenizer = train_tokenizer(TEXTS, num_action_tokens=3)
    assert tokenizer.vocabulary[:6] == SPECIAL_TOKENS
    assert (tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id, tokenizer.unk_id) == (0, 1, 2, 3)
    assert [tokenizer.vocabulary[i] for i in tokenizer.action_ids] == ["<act_0>", "<act_1>", "<act_2>"]
    assert tokenizer.encode("<act_2> stop") == [8, tokenizer.token_id("stop")]


def test_word_round_trip_and_exact_counts():
    tokenizer = train_tokenizer(TEXTS)
    for text in TEXTS:
        ids = tokenizer.encode(text)
        assert tokenizer.decode(ids) == normalize(text)
        assert tokenizer.count(text) == len(normalize(text).split()) == len(ids)
    assert tokenizer.count("walk forward 2 meters , then turn left .") == 9


def test_unknown_words_map_to_unk():
    tokenizer = train_tokenizer(TEXTS)
    ids = tokenizer.encode("walk zigzag 7 meters")
    assert ids[1] == tokenizer.unk_id and ids[2] == tokenizer.unk_id
    assert tokenizer.decode(ids) == "walk <unk> <unk> meters"


def test_decode_skips_special_tokens_and_rejects_bad_ids():
    tokenizer = train_tokenizer(TEXTS)
    ids = [tokenizer.bos_id, tokenizer.token_id("stop"), tokenizer.eos_id, tokenizer.pad_id]
    assert tokenizer.decode(ids) == "stop"
    assert tokenizer.decode(ids, skip_special=False) == "<bos> stop <eos> <pad>"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tokenizer.decode([tokenizer.vocab_size])


def test_vocabulary_is_independent_of_text_order():
    forward = train_tokenizer(TEXTS * 2 + ["stop"])
    backward = train_tokenizer(list(reversed(TEXTS * 2 + ["stop"])))
    assert forward.vocabulary == backward.vocabulary


def test_save_load_round_trip(tmp_path):
    tokenizer = train_tokenizer(TEXTS, num_action_tokens=4)
    tokenizer.save(tmp_path / "tok.json")
    loaded = Tokenizer.load(tmp_path / "tok.json")
    assert loaded.to_dict() == tokenizer.to_dict()
    assert loaded.encode(TEXTS[0]) == tokenizer.encode(TEXTS[0])
    (tmp_path / "bad.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ConfigError, match="format"):
        Tokenizer.load(tmp_path / "bad.json")


def test_empty_corpus_is_a_clear_error():
    with pytest.raises(ConfigError, match="empty corpus"):
        train_tokenizer(["", "   "])


def test_bpe_round_trip_counts_and_save(tmp_path):
    corpus = pretraining_documents(200, seed=0)
    tokenizer = train_tokenizer(corpus, kind="bpe", bpe_vocab_size=120)
    assert tokenizer.vocab_size <= 120 and tokenizer.vocabulary[:6] == SPECIAL_TOKENS
    for demo in demonstrations(20, seed=1):
        text = f"{demo.prompt} ; {demo.response}"
        ids = tokenizer.encode(text)
        assert tokenizer.decode(ids) == normalize(text)
        assert tokenizer.count(text) == len(ids) >= len(normalize(text).split())
    tokenizer.save(tmp_path / "bpe.json")
    loaded = Tokenizer.load(tmp_path / "bpe.json")
    assert loaded.encode(corpus[0]) == tokenizer.encode(corpus[0])
    assert tokenizer.unk_id in tokenizer.encode("walk ~~~")


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=60))
def test_encoding_never_fails(text):
    tokenizer = train_tokenizer(TEXTS)
    ids = tokenizer.encode(text)
    assert all(0 <= i < tokenizer.vocab_size for i in ids)
    assert len(ids) == len(normalize(text).split())
