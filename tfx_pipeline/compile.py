"""Compiles the pipeline for a cluster orchestrator: a Kubeflow v2 spec or an Airflow DAG file.

    .venv-kfp/bin/python -m tfx_pipeline.compile --orchestrator kubeflow --config cluster.json --out pipeline.json
    .venv-airflow/bin/python -m tfx_pipeline.compile --orchestrator airflow --config cluster.json \\
        --out ~/airflow/dags/session_recommender.py

`--config` is a JSON file of PipelineConfig fields (tfx_pipeline/config.py): on a cluster at
least `container_image`, `artifact_root` and `serving_dir` on shared storage, and the Beam
runner in `beam_pipeline_args`. README, "Running on a cluster", has the whole recipe.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from tfx_pipeline.config import PipelineConfig


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orchestrator", choices=["kubeflow", "airflow"], required=True)
    parser.add_argument("--config", help="JSON file of PipelineConfig fields (default: the defaults)")
    parser.add_argument("--out", required=True, help="the pipeline spec (.json) or the DAG file (.py) to write")
    args = parser.parse_args(argv)
    fields = {}
    if args.config:
        with open(args.config) as f:
            fields = json.load(f)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    if args.orchestrator == "kubeflow":
        from tfx_pipeline.runners import kubeflow

        spec = kubeflow.compile_pipeline(PipelineConfig.from_dict(fields), args.out)
        print(f"Wrote {args.out}: {len(spec['pipelineSpec']['root']['dag']['tasks'])} tasks")
    else:
        from tfx_pipeline.runners import airflow

        with open(args.out, "w") as f:
            f.write(airflow.dag_file_source(fields))
        print(f"Wrote {args.out}: copy it into Airflow's dags folder")


if __name__ == "__main__":
    main(sys.argv[1:])
