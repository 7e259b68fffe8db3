# The two commands of the README: `make demo` (set up + run the tiny pipeline) and
# `make test` (set up + the whole test suite, slow tier included; what CI runs).
.PHONY: setup demo test

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/bolt models prepare smollm2-135m-instruct
	.venv/bin/bolt run configs/tiny-cpu.yaml

test: setup
	PYTHONUNBUFFERED=1 .venv/bin/python -m pytest tests -q --durations=40
