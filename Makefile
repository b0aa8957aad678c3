# The commands users type. `make synth` and `make test` work on a fresh machine with Python
# 3.11+, Node.js 20+ and make: they create .venv and node_modules themselves (pinned).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CHECKOV_VENV := .venv-checkov
CDK := node_modules/.bin/cdk
ENV ?=
# Selects one environment (ENV=dev) or, when empty, all of them.
CDK_CONTEXT := $(if $(ENV),-c env=$(ENV),)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export CDK_DISABLE_CLI_TELEMETRY := true

.PHONY: help install bundle synth acknowledgments test unit lint typecheck cfn-lint checkov deploy diff clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# checkov pins an old boto3 (too old for RFT): it lives in a virtual environment of its own.
$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

install: $(VENV)/.installed node_modules/.installed ## Create .venv and node_modules (pinned)

bundle: $(VENV)/.installed ## Build the Lambda bundles under .build/ from their locks (no Docker)
	$(PY) scripts/bundle_lambdas.py

synth: install bundle ## Synthesize every environment (or ENV=name) into cdk.out
	$(CDK) synth --quiet $(CDK_CONTEXT)
	$(PY) scripts/prune_cdk_out.py cdk.out

# The Lambda platform the locks are resolved for (as scripts/bundle_lambdas.py installs them).
LOCK_TARGET := --python-platform aarch64-manylinux_2_28 --python-version 3.13
LOCK := $(VENV)/bin/uv pip compile --quiet $(LOCK_TARGET) --custom-compile-command "make lock"
.PHONY: lock parity
lock: $(VENV)/.installed ## Re-lock the Lambda dependencies (lambda/*/requirements.in) with hashes [UPGRADE=1]
	# One resolution of every function's inputs, so the bundles share their versions.
	$(LOCK) $(if $(UPGRADE),--upgrade) -o lambda/constraints.txt lambda/*/requirements.in
	for input in lambda/*/requirements.in; do \
	  $(LOCK) --generate-hashes -c lambda/constraints.txt -o $${input%.in}.txt $$input; \
	done

parity: $(VENV)/.installed ## Run the handlers from bundles built for this machine on CPython 3.13 (if found)
	$(PY) scripts/parity.py

acknowledgments: install bundle ## List every nag acknowledgment and checkov skip with its reason [ENV=name]
	$(PY) scripts/acknowledgments.py $(ENV)

unit: install bundle ## Run the pytest suite
	$(PY) -m pytest -n 2 -q

lint: $(VENV)/.installed ## ruff
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(VENV)/.installed ## mypy, per deployable unit (every function has its own handler.py)
	$(PY) -m mypy app.py stacks scripts lambda/common/rft_common preflight benchmarks
	# The tests, against the functions' own packages (on sys.path at run time, as in a bundle).
	MYPYPATH=lambda/common:lambda/job:lambda/metrics:lambda/reward \
	  $(PY) -m mypy --cache-dir .mypy_cache/tests tests
	for handler in lambda/*/handler.py; do \
	  fn=$$(dirname $$handler); \
	  (cd $$fn && MYPYPATH=../common ../../$(PY) -m mypy --config-file ../../pyproject.toml \
	    --cache-dir ../../.mypy_cache/$$(basename $$fn) .); \
	done

cfn-lint: synth ## cfn-lint on every synthesized template (0 errors)
	# W3005: aws-cdk-lib adds DependsOn on roles that a GetAtt already orders; harmless.
	$(VENV)/bin/cfn-lint --non-zero-exit-code error --ignore-checks W3005 -- cdk.out/*.template.json

checkov: synth $(CHECKOV_VENV)/.installed ## checkov on cdk.out (skips carry their reason in the template)
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation \
	  --directory cdk.out --skip-path 'asset\.'

test: synth lint typecheck unit parity preflight-examples cfn-lint checkov ## Synth, lint, type-check, tests, runtime parity, preflight, cfn-lint, checkov

deploy: install bundle ## Deploy one environment: make deploy ENV=dev
	@test -n "$(ENV)" || { echo "make deploy: set ENV=<environment>"; exit 2; }
	$(CDK) deploy $(CDK_CONTEXT) --require-approval broadening

diff: install bundle ## Show what a deploy would change: make diff ENV=dev
	@test -n "$(ENV)" || { echo "make diff: set ENV=<environment>"; exit 2; }
	$(CDK) diff $(CDK_CONTEXT)

# The job's curves from its own API, drawn by the metrics collector's code.
.PHONY: report report-args
report: report-args $(VENV)/.installed ## Draw a job's training curves to a PNG: make report JOB=<id> [ENV=name]
	$(PY) scripts/report.py "$(JOB)" $(if $(ENV),--env $(ENV),)

report-args:
	@test -n "$(JOB)" || { echo "make report: set JOB=<fine-tuning job id>"; exit 2; }

clean: ## Remove build output (keeps the virtual environments)
	rm -rf cdk.out .build .pytest_cache .mypy_cache .ruff_cache

# Preflight: check a dataset and grader locally before a job spends money (see README).
.PHONY: preflight preflight-examples convert bench
preflight-examples: $(VENV)/.installed ## Preflight every shipped example dataset with the grader its environments use
	$(PY) -m preflight --dataset datasets/gsm8k/train.jsonl --validation datasets/gsm8k/validation.jsonl \
	  --grader graders/gsm8k.json --env nova-dev

preflight: $(VENV)/.installed ## Check data + grader: make preflight DATASET=<jsonl> GRADER=<json> [VALIDATION= ENV= MODEL= SAMPLES=]
	@test -n "$(DATASET)" && test -n "$(GRADER)" || { echo "make preflight: set DATASET=<jsonl> GRADER=<json>"; exit 2; }
	$(PY) -m preflight --dataset "$(DATASET)" --grader "$(GRADER)" \
	  $(if $(VALIDATION),--validation "$(VALIDATION)") $(if $(ENV),--env "$(ENV)") \
	  $(if $(MODEL),--model "$(MODEL)") $(if $(SAMPLES),--samples "$(SAMPLES)") \
	  --json-out "$(or $(REPORT_DIR),reports)/preflight.json" --plot "$(or $(REPORT_DIR),reports)/preflight.png"

convert: $(VENV)/.installed ## Q/A JSONL or CSV to RFT JSONL: make convert INPUT= OUTPUT= [QUESTION= ANSWER= SYSTEM_PROMPT= GSM8K=1 LIMIT= ID_PREFIX=]
	@test -n "$(INPUT)" && test -n "$(OUTPUT)" || { echo "make convert: set INPUT=<jsonl|csv> OUTPUT=<jsonl>"; exit 2; }
	$(PY) -m preflight.convert --input "$(INPUT)" --output "$(OUTPUT)" \
	  --question-field "$(or $(QUESTION),question)" --answer-field "$(or $(ANSWER),answer)" \
	  $${SYSTEM_PROMPT:+--system "$$SYSTEM_PROMPT"} $(if $(GSM8K),--gsm8k) \
	  $(if $(LIMIT),--limit "$(LIMIT)") $(if $(OFFSET),--offset "$(OFFSET)") \
	  $(if $(ID_PREFIX),--id-prefix "$(ID_PREFIX)")

bench: $(VENV)/.installed ## Print performance figures (benchmarks/bench_*.py)
	for script in benchmarks/bench_*.py; do $(PY) $$script || exit 1; done
