#!/usr/bin/env bash
# The prepared GPU measurement (benchmarks/gpu_suite.py): the project from this source tree, against the
# Python and torch of the machine it runs on; nothing is installed there.
#
#   bash benchmarks/gpu_suite.sh --prepare            # here: vendor what a lent GPU machine lacks
#   bash benchmarks/gpu_suite.sh --out DIR            # there: at most 5 minutes; DIR/gpu_suite.{json,md}
#   bash benchmarks/gpu_suite.sh --dry-run --out DIR  # tiny sizes on the CPU
#
# --prepare installs the pure-Python packages the lent machines lack (Hydra, OmegaConf and its ANTLR
# runtime, webdataset and braceexpand), at this environment's versions and without dependencies, into
# benchmarks/.gpu_deps (ignored by git; the device tool carries it with `carry`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
deps="$root/benchmarks/.gpu_deps"
python="${PYTHON:-python3}"
if [[ "${1:-}" == "--prepare" ]]; then
  pins=$("$python" - <<'PY'
from importlib.metadata import version
names = ["hydra-core", "omegaconf", "antlr4-python3-runtime", "webdataset", "braceexpand"]
print(" ".join(f"{name}=={version(name)}" for name in names))
PY
)
  rm -rf "$deps"
  "$python" -m pip install --quiet --no-deps --no-compile --target "$deps" $pins
  echo "vendored into $deps: $pins"
  exit 0
fi
src=$(printf '%s:' "$root"/packages/*/src)
export PYTHONPATH="${src%:}:$deps${PYTHONPATH:+:$PYTHONPATH}"
export INTERN_CONF_DIR="${INTERN_CONF_DIR:-$root/conf}"
exec "$python" "$root/benchmarks/gpu_suite.py" "$@"
