"""Runs the pipeline on this machine: LocalDagRunner, sqlite MLMD, Beam DirectRunner.

    python -m tfx_pipeline.runners.local                      # the embedded default data
    python -m tfx_pipeline.runners.local --data-dir /data/shop --output-dir /tmp/run
    python -m tfx_pipeline.runners.local --config my_pipeline.json
    python -m tfx_pipeline.runners.local --refresh-catalog new_catalog.csv   # new items, no retraining

Prints a line as each component starts and ends, then the run summary (also written to
`<output_dir>/summary.md`) and the path of the run's HTML report, then serves the pushed
model over gRPC on loopback, asks it for one recommendation, prints it and stops the server
(`--no-serve` skips that). With `--refresh-catalog`, the pipeline does not run: the served
model gets the new catalog's item vectors as a new version, if it passes validation
(`components/catalog_refresh.py`).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
import sys
import time

from tfx_pipeline.config import PipelineConfig
from tfx_pipeline.runners import TF_IMPORT_NOISE, native_stderr_without, share_code_with_beam_workers

with native_stderr_without(TF_IMPORT_NOISE):  # the first import of TensorFlow
    from absl import logging as absl_logging
    from tfx import v1 as tfx

    from tfx_pipeline import summary
    from tfx_pipeline.pipeline import create_pipeline

# LocalDagRunner logs these at INFO among thousands of other lines; they are the progress.
_PROGRESS = re.compile(r"Component \S+ is (running|finished)")
# Warnings the libraries print once per component or vocabulary table, about nothing a user
# can or should change here (--verbose shows them):
_KNOWN_NOISE = re.compile(
    # TFX's resolver nodes on a local MLMD; they need no property predicates.
    r"ArtifactQuery\.property_predicate is not supported|"
    # Transform must analyze the catalog (vocabularies), so it cannot run in place.
    r"Not using the in-place Transform|"
    # TFT traces its vocabulary lookups, tables included, into the transform graph on purpose.
    r"Tables initialized inside a tf\.function"
)


class _ProgressOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _KNOWN_NOISE.search(message):
            return False
        return record.levelno >= logging.WARNING or bool(_PROGRESS.search(message))


@dataclasses.dataclass(frozen=True)
class Options:
    """What the command line asks for, beside the pipeline's config."""

    verbose: bool = False
    serve: bool = True
    refresh_catalog: str = ""  # a new catalog: refresh the served model with it instead of running the pipeline


def parse_config(argv: list[str]) -> tuple[PipelineConfig, Options]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="JSON file of PipelineConfig fields")
    parser.add_argument("--data-dir", help="directory holding the contract files")
    parser.add_argument("--output-dir", help="where artifacts, MLMD and the summary go")
    parser.add_argument("--no-cache", action="store_true", help="re-run every component")
    parser.add_argument("--verbose", action="store_true", help="show TFX's INFO logs")
    parser.add_argument("--no-serve", action="store_true", help="skip serving the pushed model for one recommendation")
    parser.add_argument(
        "--refresh-catalog",
        metavar="CATALOG",
        help="no training: give the served model this new catalog (data contract), validated, as a new version",
    )
    args = parser.parse_args(argv)
    config = PipelineConfig.from_file(args.config) if args.config else PipelineConfig()
    overrides = {"data_dir": args.data_dir, "output_dir": args.output_dir}
    config = dataclasses.replace(config, **{k: os.path.abspath(v) for k, v in overrides.items() if v})
    if args.no_cache:
        config = dataclasses.replace(config, enable_cache=False)
    refresh_catalog = os.path.abspath(args.refresh_catalog) if args.refresh_catalog else ""
    return config, Options(args.verbose, not args.no_serve, refresh_catalog)


def run(config: PipelineConfig) -> str:
    """Runs the pipeline and returns the run summary."""
    os.makedirs(os.path.dirname(config.metadata_path), exist_ok=True)
    share_code_with_beam_workers()  # for `--direct_running_mode=multi_processing` in beam_pipeline_args
    start = time.time()
    tfx.orchestration.LocalDagRunner().run(
        create_pipeline(config, tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path))
    )
    text = summary.write_summary(config)
    text += f"\nPipeline finished in {time.time() - start:.0f} s; outputs in `{config.output_dir}`.\n"
    page = summary.report_page(config)
    return text + (f"Run report (open in a browser): file://{page}\n" if page else "")


def main(argv: list[str]) -> None:
    config, options = parse_config(argv)
    absl_logging.set_verbosity(absl_logging.INFO)
    if not options.verbose:
        # TFX configures the root logger's handlers, so filter wherever records are printed.
        for handler in [absl_logging.get_absl_handler(), *logging.getLogger().handlers]:
            handler.addFilter(_ProgressOnly())
        # TFT warns "frequency_threshold 1 <= 1 is a no-op" for the click-weighted item
        # vocabulary, where it is not a no-op; its other warnings are table-init notes.
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
    if options.refresh_catalog:
        from components.catalog_refresh import refresh

        report = refresh(config.serving_base, options.refresh_catalog)
        print(report.markdown())
        if not report.passed:
            sys.exit(1)
    else:
        print(run(config))
    if options.serve:
        from tfx_pipeline.demo import serve_and_recommend

        print(serve_and_recommend(config))


if __name__ == "__main__":
    main(sys.argv[1:])
