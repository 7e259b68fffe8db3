# The GPU image: CUDA vLLM for generation, DeepSpeed for training, the project at /opt/bolt.
# Build from the repo root: docker build -f infra/docker/gpu.Dockerfile -t bolt-gpu .
FROM nvidia/cuda:12.8.1-cudnn-devel-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 \
    BOLT_REPO_DIR=/opt/bolt HF_HOME=/cache/hf BOLT_MODEL_CACHE=/cache/models
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.12 python3.12-venv python3.12-dev git build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python3.12 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /opt/bolt
# Dependencies first (cached layer), then the code.
COPY pyproject.toml README.md ./
RUN mkdir -p bolt tasks flows && touch bolt/__init__.py tasks/__init__.py flows/__init__.py \
 && pip install -e ".[gpu,aws,distributed]" \
 && pip install --no-build-isolation "deepspeed==0.19.8"
COPY bolt bolt
COPY tasks tasks
COPY flows flows
COPY configs configs
COPY prompts prompts
COPY infra infra
COPY data data
COPY prefect.yaml ./

# Non-root at run time; caches on a mounted volume.
RUN useradd --create-home --uid 1000 bolt && mkdir -p /cache && chown -R bolt /cache
USER bolt
CMD ["bolt", "--help"]
