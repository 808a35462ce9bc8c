# A fresh clone needs two commands: `make run` (the main job) and `make test` (the test suite). Each
# sets up what it needs on first use (the Debian data packages, .venv with torch and the six packages)
# and reuses it afterwards; the set-up reruns when a pyproject or the dev requirements change.
PYTHON := .venv/bin/python
SETUP := .venv/.installed
# The default suite; `make slow` (nox -s slow) runs the long tests, `make fidelity` the paper's claims.
TEST_MARKERS := not gpu and not slow

.PHONY: run test slow smoke fidelity lint

$(SETUP): scripts/install.sh requirements-dev.txt $(wildcard packages/*/pyproject.toml)
	bash scripts/install.sh
	touch $@

run: $(SETUP)  ## the main job: Up-A on the embedded world, then its GV-B report
	$(PYTHON) -m intern_pretrain stage=upa $(ARGS)

test: $(SETUP)  ## the default test suite (CI runs exactly this)
	$(PYTHON) -m pytest -m "$(TEST_MARKERS)" $(ARGS)

slow: $(SETUP)
	$(PYTHON) -m pytest -m "slow and not gpu" $(ARGS)

smoke: $(SETUP)  ## check an install end to end in about a minute
	$(PYTHON) -m intern_pretrain experiment=smoke $(ARGS)

fidelity: $(SETUP)  ## the paper's claims over several seeds -> benchmarks/FIDELITY.md
	$(PYTHON) benchmarks/fidelity.py $(ARGS)

lint: $(SETUP)
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
