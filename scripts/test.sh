#!/usr/bin/env bash
# The whole suite, slow tier included (`make test`, what CI runs), as two pytest sessions
# side by side:
#
# - the paper-config rehearsal (tests/e2e/test_rehearse_paper.py) alone: four `bolt
#   rehearse` subprocesses, about a third of the suite's time, spent mostly in one
#   thread (a vLLM engine or a training job starting, a served judge answering);
# - every other test, which leaves the second core idle as often.
#
# Each session starts its own servers (moto S3, Prefect, vLLM, Slurm on free loopback
# ports) and the rehearsal gets its own temp folder (job folders, fetched models), so
# neither sees the other's state. Both print as they go; the rehearsal's lines are
# prefixed. The exit status is non-zero when either session fails.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
REHEARSAL=tests/e2e/test_rehearse_paper.py

# Both sessions read the converted SmolLM2; converted here once, so neither races the
# other to write it.
.venv/bin/bolt models prepare smollm2-135m-instruct >/dev/null

rehearsal_tmp=$(mktemp -d /tmp/bolt-rehearsal-XXXX)
chmod 755 "$rehearsal_tmp"  # munged wants every folder above its socket searchable by all
( TMPDIR=$rehearsal_tmp .venv/bin/python -m pytest "$REHEARSAL" -q -p no:cacheprovider 2>&1 \
    | sed -u 's/^/[rehearsal] /'; exit "${PIPESTATUS[0]}" ) &
rehearsal_pid=$!

.venv/bin/python -m pytest tests -q --durations=40 --ignore="$REHEARSAL"
others=$?
wait "$rehearsal_pid"
rehearsal=$?
rm -rf "$rehearsal_tmp"

echo "test sessions: rehearsal exit $rehearsal, other tests exit $others"
[ "$rehearsal" -eq 0 ] && [ "$others" -eq 0 ]
