import json

import pytest

from model.config import ModelConfig
from tfx_pipeline.config import PipelineConfig


def test_a_json_config_round_trips_with_its_nested_configs(tmp_path):
    fields = {
        "data_dir": "/data/shop",
        "ingest": {"test_days": 3, "event_types": ["view", "cart"]},
        "preprocessing": {"category_levels": 2},
        "model": {"variant": "HierSRec", "epochs": 2},
        "evaluation": {"ks": [5, 20], "max_regression": 0.01},
        "beam_pipeline_args": ["--direct_num_workers=2"],
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(fields))
    config = PipelineConfig.from_file(str(path))
    assert config.ingest.event_types == ("view", "cart") and config.ingest.test_days == 3
    assert config.preprocessing.category_levels == 2 and config.evaluation.ks == (5, 20)
    assert config.model == ModelConfig.preset("HierSRec", epochs=2)
    assert config.beam_pipeline_args == ("--direct_num_workers=2",)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"epochs": 3}, "unknown PipelineConfig field 'epochs'"),
        ({"model": {"epoch": 3}}, "unknown ModelConfig field 'epoch'"),
        ({"model": {"variant": "M2TRec", "learning_rate": 1e-3, "lr": 1}}, "unknown ModelConfig field 'lr'"),
        ({"preprocessing": {"category_level": 3}}, "unknown PreprocessingConfig field 'category_level'"),
        ({"ingest": {"tests_days": 1}}, "unknown IngestConfig field 'tests_days'"),
        ({"evaluation": {"k": 20}}, "unknown EvaluationConfig field 'k'"),
    ],
)
def test_a_typo_at_any_level_is_an_error_that_names_it(fields, message):
    with pytest.raises(ValueError, match=message):
        PipelineConfig.from_dict(fields)


def test_ingest_and_model_agree_on_the_longest_prefix():
    with pytest.raises(ValueError, match="max_prefix_length: the ExampleGen keeps 30 items, the model reads 50"):
        PipelineConfig.from_dict({"ingest": {"max_prefix_length": 30}})
    config = PipelineConfig.from_dict({"ingest": {"max_prefix_length": 30}, "model": {"max_prefix_length": 30}})
    assert config.model.max_prefix_length == config.ingest.max_prefix_length == 30
