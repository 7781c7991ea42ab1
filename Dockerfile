# The pipeline image that Kubeflow's pods and Airflow's workers run: the locked set from
# uv.lock plus one orchestrator extra, and this repo's code.
#
#   docker build --build-arg EXTRA=kfp     -t REGISTRY/session-recommender:TAG .                  # Kubeflow
#   docker build --build-arg EXTRA=airflow -t REGISTRY/session-recommender-airflow:TAG .          # Airflow workers
#   docker build --build-arg EXTRA=kfp --target beam-worker -t REGISTRY/session-recommender-beam:TAG .  # Dataflow/Flink/Spark workers
#
# kfp and airflow conflict (pyproject.toml), so an image holds one of them.
FROM python:3.10-slim-bookworm AS pipeline

ARG EXTRA=kfp
ARG UV_VERSION=0.13.9
# TF_CPU_ALLOCATOR_USE_BFC: TensorFlow pools its CPU memory (model/cpu_allocator.py).
ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_LINK_MODE=copy \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    TF_CPU_ALLOCATOR_USE_BFC=true

RUN pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /pipeline

# Dependencies first, in their own layer: it is rebuilt only when the lock changes.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --extra "${EXTRA}" --no-install-project --no-cache

# The code, installed as the project (editable, as in .venv): Beam's worker processes and
# TFX's executors import `components`, `model`, ... from any working directory.
COPY contract ./contract
COPY components ./components
COPY model ./model
COPY reporting ./reporting
COPY serving ./serving
COPY tfx_pipeline ./tfx_pipeline
COPY data ./data
RUN uv sync --frozen --no-dev --extra "${EXTRA}" --no-cache \
    && python -c "import tfx_pipeline.pipeline, tensorflow_text, tensorflow_transform"

# The same image as a Beam SDK harness (Dataflow --sdk_container_image, Flink or Spark
# --environment_type=DOCKER): Beam's boot binary as the entrypoint, the code and the locked
# set beside it. Its Beam version must be the locked one (2.74.0).
FROM pipeline AS beam-worker
COPY --from=apache/beam_python3.10_sdk:2.74.0 /opt/apache/beam /opt/apache/beam
ENTRYPOINT ["/opt/apache/beam/boot"]
