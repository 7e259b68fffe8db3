# The two commands of the README: `make demo` (set up + run the tiny pipeline) and
# `make test` (set up + the whole test suite, slow tier included; what CI runs).
.PHONY: setup demo test

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/bolt models prepare smollm2-135m-instruct
	.venv/bin/bolt run configs/tiny-cpu.yaml

# Two test workers on CI's two cores: most of the suite's time is one-core work (engine
# starts, jobs, servers). Each worker starts the servers its tests use (tests/conftest.py);
# `loadgroup` hands out one test at a time, the scheduling the suite was measured with.
TEST_WORKERS ?= 2

test: setup
	PYTHONUNBUFFERED=1 .venv/bin/python -m pytest tests -q --durations=40 \
		-n $(TEST_WORKERS) --dist loadgroup
