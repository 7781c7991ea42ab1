"""The component's driver: every output gets an artifact, in the legacy launchers too (AirflowDagRunner)."""

from __future__ import annotations

import os

from tfx.orchestration import data_types

from components.session_example_gen.component import SessionExampleGen, SessionExampleGenDriver


def test_the_driver_prepares_every_output_not_only_examples(tmp_path):
    gen = SessionExampleGen(input_base=str(tmp_path / "data"))
    pipeline = data_types.PipelineInfo("p", str(tmp_path / "root"), run_id="run-1")
    component = data_types.ComponentInfo("SessionExampleGen", gen.id, pipeline)
    prepared = SessionExampleGenDriver(metadata_handle=None)._prepare_output_artifacts(
        {}, gen.outputs, {"span": 0, "version": None, "input_fingerprint": "f"}, 7, pipeline, component
    )
    assert sorted(prepared) == sorted(gen.outputs) == ["catalog", "examples", "ingest_report"]
    for name, (artifact,) in prepared.items():
        assert artifact.uri == os.path.join(str(tmp_path / "root"), gen.id, name, "7")
        assert os.path.isdir(artifact.uri)
    assert prepared["examples"][0].span == 0  # ExampleGen's driver still records the span
