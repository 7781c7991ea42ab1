"""SessionTrainer: TFX's Trainer with one more input, the item catalog.

The model scores items through their metadata, so training needs the catalog beside the
session examples. TFX's Trainer takes a single Examples input; this subclass adds a
`catalog` channel (so lineage records which catalog a model was trained and exported
with) and hands its file pattern to `run_fn` as `fn_args.custom_config["catalog_files"]`.
Everything else (run_fn, train/eval args, transform graph, base model) is TFX's Trainer.

Example:
    >>> trainer = SessionTrainer(run_fn="model.trainer.run_fn",  # doctest: +SKIP
    ...     examples=example_gen.outputs["examples"], catalog=example_gen.outputs["catalog"],
    ...     transform_graph=transform.outputs["transform_graph"])
"""

from __future__ import annotations

from typing import Any

from tfx import types
from tfx.components import Trainer
from tfx.components.trainer import executor as trainer_executor
from tfx.dsl.components.base import executor_spec
from tfx.proto import trainer_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter
from tfx.utils import io_utils, json_utils

import contract
from contract.model_api import CATALOG_FILES

CATALOG_KEY = "catalog"


class SessionTrainerSpec(standard_component_specs.TrainerSpec):
    INPUTS = {
        **standard_component_specs.TrainerSpec.INPUTS,
        CATALOG_KEY: ChannelParameter(type=standard_artifacts.Examples),
    }


class Executor(trainer_executor.GenericExecutor):
    def _GetFnArgs(self, input_dict, output_dict, exec_properties):
        fn_args = super()._GetFnArgs(input_dict, output_dict, exec_properties)
        catalog_uri = artifact_utils.get_split_uri(input_dict[CATALOG_KEY], contract.CATALOG_SPLIT)
        fn_args.custom_config = {
            **(fn_args.custom_config or {}),
            CATALOG_FILES: io_utils.all_files_pattern(catalog_uri),
        }
        return fn_args


class SessionTrainer(Trainer):
    SPEC_CLASS = SessionTrainerSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(
        self,
        examples: types.BaseChannel,
        catalog: types.BaseChannel,
        transform_graph: types.BaseChannel,
        run_fn: str,
        train_args: trainer_pb2.TrainArgs | None = None,
        eval_args: trainer_pb2.EvalArgs | None = None,
        custom_config: dict[str, Any] | None = None,
        base_model: types.BaseChannel | None = None,
        schema: types.BaseChannel | None = None,
    ):
        # Trainer.__init__ builds TrainerSpec itself, so the spec is built here instead.
        spec = SessionTrainerSpec(
            examples=examples,
            catalog=catalog,
            transform_graph=transform_graph,
            schema=schema,
            base_model=base_model,
            hyperparameters=None,
            train_args=train_args or trainer_pb2.TrainArgs(),
            eval_args=eval_args or trainer_pb2.EvalArgs(),
            module_file=None,
            module_path=None,
            run_fn=run_fn,
            custom_config=json_utils.dumps(custom_config or {}),
            model=types.Channel(type=standard_artifacts.Model),
            model_run=types.Channel(type=standard_artifacts.ModelRun),
        )
        super(Trainer, self).__init__(spec=spec)
