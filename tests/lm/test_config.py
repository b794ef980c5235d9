import pytest

from ogi.lm.config import ModelShape, OptimizerConfig, PretrainConfig, RLHFConfig, SFTConfig, load_config
from ogi.validation import ConfigError


def test_bad_values_name_the_field():
    with pytest.raises(ConfigError, match="steps"):
        PretrainConfig(steps=0)
    with pytest.raises(ConfigError, match="batch_size"):
        SFTConfig(batch_size=2.5)
    with pytest.raises(ConfigError, match="optimizer.eta_min"):
        OptimizerConfig(learning_rate=1e-3, eta_min=1e-2)
    with pytest.raises(ConfigError, match="model.width"):
        ModelShape(width=30, n_heads=4)
    with pytest.raises(ConfigError, match="tokenizer"):
        PretrainConfig(tokenizer="chars")
    with pytest.raises(ConfigError, match="clip_epsilon"):
        RLHFConfig(clip_epsilon=1.5)


def test_toml_with_nested_tables(tmp_path):
    path = tmp_path / "pre.toml"
    path.write_text(
        'steps = 7\ntokenizer = "bpe"\n[model]\nwidth = 48\nn_heads = 3\n[optimizer]\nlearning_rate = 1\neta_min = 0\n'
    )
    config = load_config(PretrainConfig, path, seed=None, batch_size=4)
    assert (config.steps, config.tokenizer, config.batch_size, config.seed) == (7, "bpe", 4, 0)
    assert (config.model.width, config.model.n_heads, config.model.n_layers) == (48, 3, 2)
    assert config.optimizer.learning_rate == 1.0 and isinstance(config.optimizer.learning_rate, float)


def test_toml_errors_name_the_field(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("stepz = 3\n")
    with pytest.raises(ConfigError, match="did you mean 'steps'"):
        load_config(PretrainConfig, path)
    path.write_text("[model]\nwidht = 3\n")
    with pytest.raises(ConfigError, match="model.widht"):
        load_config(PretrainConfig, path)
    path.write_text("model = 3\n")
    with pytest.raises(ConfigError, match="model must be a table"):
        load_config(PretrainConfig, path)
    path.write_text('disallowed_words = "jump"\n')
    with pytest.raises(ConfigError, match="disallowed_words"):
        load_config(RLHFConfig, path)
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(SFTConfig, tmp_path / "missing.toml")


def test_tuple_fields_come_from_arrays(tmp_path):
    path = tmp_path / "rl.toml"
    path.write_text('disallowed_words = ["jump", "flip"]\n')
    assert load_config(RLHFConfig, path).disallowed_words == ("jump", "flip")
