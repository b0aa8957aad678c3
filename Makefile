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

.PHONY: help install cdk-json check-config check bundle synth acknowledgments test unit lint actionlint zizmor typecheck cfn-lint checkov deploy diff clean distclean review

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' \
	  '{name[NR] = $$1; text[NR] = $$2; if (length($$1) > width) width = length($$1)} \
	   END {for (i = 1; i <= NR; i++) printf "  make %-*s  %s\n", width, name[i], text[i]}'

# Arguments and credentials are checked first, in one line, before bundles are built or the
# CDK CLI starts (scripts/preconditions.py): ENV must name an environment of cdk.json.
.PHONY: synth-args acknowledgments-args diff-args deploy-args bootstrap-args
synth-args acknowledgments-args:
	@$(PYTHON) scripts/preconditions.py $(@:-args=) --env "$(ENV)"

diff-args deploy-args bootstrap-args: $(VENV)/.installed
	@$(PY) scripts/preconditions.py $(@:-args=) --env "$(ENV)" --require-env --credentials

PIP_INSTALL := -m pip install --quiet --disable-pip-version-check

# Installed without bytecode, then compiled by scripts/compile_venv.py: everything, as pip
# would, but for aws-cdk-lib's hundreds of service modules, of which only those the project
# imports (about 165 MB less, the same imports at the same speed).
$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) $(PIP_INSTALL) --upgrade pip
	$(PY) $(PIP_INSTALL) --no-compile -r requirements-dev.txt
	$(PY) scripts/compile_venv.py
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# checkov pins an old boto3 (too old for RFT): it lives in a virtual environment of its own.
$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python $(PIP_INSTALL) -r requirements-checkov.txt
	touch $@

install: $(VENV)/.installed node_modules/.installed ## Create .venv and node_modules (pinned)

# Before the CDK CLI reads cdk.json: a syntax error by line and column (standard library only,
# so before any install), then every configuration problem, one line each (before the bundles).
cdk-json:
	@$(PYTHON) scripts/check_cdk_json.py
check-config: cdk-json $(VENV)/.installed
	@$(PY) scripts/check_cdk_json.py --environments $(if $(ENV),--env $(ENV),)

bundle: $(VENV)/.installed ## Build the Lambda bundles under .build/ from their locks (no Docker)
	$(PY) scripts/bundle_lambdas.py

# The CLI's closing hints ("Supply a stack id ...") are dropped: the last line says what was made
# or, when the app fails, the app's own error (not the CLI's "Subprocess exited with error 1").
# When cdk.out already holds the synthesis of the same inputs (scripts/synth_stamp.py: every file
# synthesis reads, ENV, the tool versions), the CLI is not run again: synthesis is deterministic.
synth: cdk-json synth-args install check-config bundle ## Synthesize every environment (or ENV=name) into cdk.out
	@if $(PY) scripts/synth_stamp.py check --context "$(CDK_CONTEXT)"; then \
	  echo "cdk.out is current (same inputs as its last synth): not synthesized again" >&2; \
	else \
	  echo "$(CDK) synth --quiet $(CDK_CONTEXT)"; \
	  $(CDK) synth --quiet $(CDK_CONTEXT) 2>&1 | { grep -v -e 'Successfully synthesized to ' \
	    -e 'Supply a stack id ' -e 'app.py: Subprocess exited with error ' || true; } >&2; \
	  $(PY) scripts/prune_cdk_out.py cdk.out; \
	  $(PY) scripts/synth_stamp.py write --context "$(CDK_CONTEXT)"; \
	fi
	@$(PY) scripts/synthesized.py

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

acknowledgments: cdk-json acknowledgments-args install bundle ## List every nag acknowledgment and checkov skip with its reason [ENV=name]
	$(PY) scripts/acknowledgments.py $(ENV)

unit: install bundle ## Run the pytest suite
	# The review tests share one synthesized base: one worker runs them all (xdist_group).
	# Without make's flags: the make commands the tests run are not part of this make's jobs.
	env -u MAKEFLAGS -u MFLAGS $(PY) -m pytest -n 2 --dist loadgroup -q

# The workflows under .github/workflows (actionlint's own default).
actionlint: $(VENV)/.installed ## actionlint on the GitHub workflows
	$(VENV)/bin/actionlint

# Security audit of the workflows and Dependabot config; an acknowledged finding carries its
# reason next to its `# zizmor: ignore[...]` comment.
zizmor: $(VENV)/.installed ## zizmor on the GitHub workflows (0 findings)
	$(VENV)/bin/zizmor --offline .github/

lint: $(VENV)/.installed ## ruff
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(VENV)/.installed ## mypy, per deployable unit (every function has its own handler.py)
	# One incremental cache for every run, one run after another: what one run analysed (the
	# CDK's and the SDKs' types, the project's own packages) the next reads back instead of
	# analysing it again; mypy checks each cached module against its source and options.
	$(PY) -m mypy --cache-dir .mypy_cache app.py stacks scripts lambda/common/rft_common preflight benchmarks
	# The tests, against the functions' own packages (on sys.path at run time, as in a bundle).
	MYPYPATH=lambda/common:lambda/evaluation:lambda/job:lambda/metrics:lambda/reward \
	  $(PY) -m mypy --cache-dir .mypy_cache tests
	# The evaluation report function runs the evaluation's rft_eval (its bundle copies it in).
	for handler in lambda/*/handler.py; do \
	  fn=$$(dirname $$handler); shared=; \
	  if [ $$fn = lambda/evaluation_report ]; then shared=:../evaluation; fi; \
	  (cd $$fn && MYPYPATH=../common$$shared ../../$(PY) -m mypy --config-file ../../pyproject.toml \
	    --cache-dir ../../.mypy_cache .); \
	done

# Both scan exactly the templates of the last synth (cdk.out/manifest.json), not the stale
# templates of environments an earlier synth left in cdk.out.
cfn-lint: synth ## cfn-lint on every synthesized template (0 errors) [ENV=name]
	# W3005: aws-cdk-lib adds DependsOn on roles that a GetAtt already orders; harmless.
	templates=$$($(PY) scripts/synthesized.py --templates) && \
	  $(VENV)/bin/cfn-lint --non-zero-exit-code error --ignore-checks W3005 -- $$templates

checkov: synth $(CHECKOV_VENV)/.installed ## checkov on the synthesized templates (skips carry their reason) [ENV=name]
	templates=$$($(PY) scripts/synthesized.py --templates) && \
	  $(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation \
	  $$(printf -- '--file %s ' $$templates)

# After synth (skipped when cdk.out is current), the pytest suite holds one job slot (its two
# workers) and the single-process checks take turns in the other, so a core the suite leaves
# idle (its last tests run on one worker) does their work; each step's output is printed
# whole when it ends. Every step runs once: the sub-make takes synth and bundle as made (-o).
TEST_STEPS := unit lint actionlint zizmor typecheck parity preflight-examples cfn-lint checkov
test: synth ## Synth, then tests, lint, actionlint, zizmor, type-check, runtime parity, preflight, cfn-lint, checkov
	@$(MAKE) --no-print-directory -o synth -o bundle -j2 --output-sync=target $(TEST_STEPS)

# The quick loop after a cdk.json, graders/ or datasets/ edit (scripts/check.py): the
# configuration, preflight, the generic user-config tests and the synthesis (with the nag packs)
# of the environments the edit touches; a bad edit fails in seconds with one error: line each.
.PHONY: check
check: cdk-json $(VENV)/.installed ## Quick check after a cdk.json, graders/ or datasets/ edit [ALL=1]
	@$(PY) scripts/check.py $(if $(ALL),--all)

# The working tree against BASE (default: the merge base with main), without AWS credentials:
# infrastructure and IAM changes, which environments start a new job, preflight of changed data.
# It runs `make synth` of the base (in a temporary worktree) and of the working tree at once.
review: cdk-json install ## What a change costs and risks per environment [BASE=<git ref>] [FORMAT=json] [OUTPUT=<file>]
	@$(PY) -m scripts.review --base "$(BASE)" --format "$(or $(FORMAT),markdown)" $(if $(OUTPUT),--output "$(OUTPUT)")

# APPROVAL=never: for the deploy workflow, whose GitHub environment reviewers approved already.
deploy: cdk-json deploy-args install check-config bundle ## Deploy one environment: make deploy ENV=dev [APPROVAL=never]
	$(CDK) deploy $(CDK_CONTEXT) --require-approval $(or $(APPROVAL),broadening)

# The environment's own CDK bootstrap (its bootstrap_qualifier), whose CloudFormation execution
# role gets the least-privilege policy generated from the environment's template
# (scripts/bootstrap.py; the policy is kept under cdk.out/bootstrap/ for review).
.PHONY: bootstrap
bootstrap: cdk-json bootstrap-args install check-config bundle ## Bootstrap one environment's qualifier with a generated least-privilege policy: make bootstrap ENV=dev
	$(CDK) synth --quiet $(CDK_CONTEXT) > /dev/null
	$(PY) scripts/bootstrap.py --env "$(ENV)"

diff: cdk-json diff-args install check-config bundle ## Show what a deploy would change: make diff ENV=dev
	$(CDK) diff $(CDK_CONTEXT)

# The job's curves from its own API, drawn by the metrics collector's code.
.PHONY: report report-args
report: report-args $(VENV)/.installed ## Draw a job's training curves to a PNG: make report JOB=<id> ENV=<name> (or AWS_REGION=)
	$(PY) scripts/report.py "$(JOB)" $(if $(ENV),--env $(ENV),)

report-args:
	@test -n "$(JOB)" || { echo "make report: set JOB=<fine-tuning job id> (and ENV=<environment> or AWS_REGION)" >&2; exit 2; }

# One on-demand call to the environment's tuned (or base) model; PROMPT is read from the
# environment so that quotes in it reach the script as typed.
.PHONY: chat
chat: $(VENV)/.installed ## One on-demand call to a model: make chat ENV=<name> PROMPT="..." [MODEL=base|tuned|<id>]
	@$(PY) scripts/chat.py --env "$(ENV)" --prompt "$${PROMPT:-}" $(if $(MODEL),--model "$(MODEL)") \
	  $(if $(CDK_JSON),--cdk-json "$(CDK_JSON)")

# Old reward versions (the stack retains them: running and retained jobs and the evaluation may
# still call them); a dry run unless APPLY=1. See docs/fine-tuning-job.md.
.PHONY: prune-versions
prune-versions: $(VENV)/.installed ## Delete reward versions no record names: make prune-versions ENV=<name> [APPLY=1] (dry run by default)
	@$(PY) scripts/prune_versions.py --env "$(ENV)" $(if $(APPLY),--apply) \
	  $(if $(CDK_JSON),--cdk-json "$(CDK_JSON)")

# The rollout samples the reward function kept (scripts/samples.py); GREP is read from the
# environment so that quotes in it reach the script as typed. The last line is the HTML page.
.PHONY: samples
samples: $(VENV)/.installed ## Read kept rollouts: make samples ENV=<name> [JOB= SINCE= LIMIT= MIN_SCORE= MAX_SCORE= GREP= SOURCE=]
	@$(PY) scripts/samples.py --env "$(ENV)" --job "$(JOB)" --since "$(SINCE)" --limit "$(LIMIT)" \
	  --min-score "$(MIN_SCORE)" --max-score "$(MAX_SCORE)" --grep "$${GREP:-}" --source "$(SOURCE)" \
	  $(if $(CDK_JSON),--cdk-json "$(CDK_JSON)") $(if $(REPORT_DIR),--out-dir "$(REPORT_DIR)")

# The tuned model against the base model with the evaluation's own code (scripts/eval.py);
# the last line of output is the path of summary.json. CDK_JSON= reads another cdk.json,
# REPORT_DIR= writes elsewhere than reports/ (as for make preflight).
.PHONY: eval
eval: $(VENV)/.installed ## Tuned vs base model, graded locally: make eval ENV=<name> [JOB= MODEL= BASE= LIMIT= SAMPLES= KEEP_ROLLOUTS=<folder>]
	@$(PY) scripts/eval.py --env "$(ENV)" --job "$(JOB)" --model "$(MODEL)" --base "$(BASE)" \
	  $(if $(LIMIT),--limit "$(LIMIT)") $(if $(SAMPLES),--samples "$(SAMPLES)") \
	  $(if $(CDK_JSON),--cdk-json "$(CDK_JSON)") $(if $(REPORT_DIR),--out-dir "$(REPORT_DIR)") \
	  $(if $(KEEP_ROLLOUTS),--keep-rollouts "$(KEEP_ROLLOUTS)")

# The loop after a job against the local OpenAI-compatible test server: no AWS, no network.
.PHONY: demo
demo: $(VENV)/.installed ## Eval, chat and report against a local server, no AWS [OUT_DIR=reports/demo]; last line: summary.json
	@$(PY) scripts/demo.py $(if $(OUT_DIR),--out-dir "$(OUT_DIR)")

clean: ## Remove build output (keeps the virtual environments)
	rm -rf cdk.out .build .pytest_cache .mypy_cache .ruff_cache .hypothesis

distclean: clean ## Remove build output, the virtual environments and node_modules (back to a fresh clone)
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules

# Preflight: check a dataset and grader locally before a job spends money (see README).
.PHONY: preflight preflight-examples convert bench
preflight-examples: $(VENV)/.installed ## Preflight each dataset + grader pair that cdk.json's environments deploy
	$(PY) scripts/preflight_examples.py

preflight: $(VENV)/.installed ## Check data + grader: make preflight DATASET=<jsonl> GRADER=<json> [VALIDATION= ENV= MODEL= SAMPLES= PER_PROMPT=]
	@test -n "$(DATASET)" && test -n "$(GRADER)" || { echo "make preflight: set DATASET=<jsonl> GRADER=<json>" >&2; exit 2; }
	$(PY) -m preflight --dataset "$(DATASET)" --grader "$(GRADER)" \
	  $(if $(VALIDATION),--validation "$(VALIDATION)") $(if $(ENV),--env "$(ENV)") \
	  $(if $(MODEL),--model "$(MODEL)") $(if $(SAMPLES),--samples "$(SAMPLES)") \
	  $(if $(PER_PROMPT),--per-prompt "$(PER_PROMPT)") \
	  --json-out "$(or $(REPORT_DIR),reports)/preflight.json" --plot "$(or $(REPORT_DIR),reports)/preflight.png"

# SYSTEM_PROMPT and EXCLUDE_ANSWER reach the command through the environment (quotes intact;
# make still reads "$" as its own: write "$$").
convert: $(VENV)/.installed ## Q/A JSONL or CSV to RFT JSONL: make convert INPUT= OUTPUT= [QUESTION= ANSWER= SYSTEM_PROMPT= GSM8K=1 LIMIT= OFFSET= ID_PREFIX= KEEP= EXCLUDE_ANSWER= FORMAT=csv]
	@test -n "$(INPUT)" && test -n "$(OUTPUT)" || { echo "make convert: set INPUT=<jsonl|csv> OUTPUT=<jsonl>" >&2; exit 2; }
	$(PY) -m preflight.convert --input "$(INPUT)" --output "$(OUTPUT)" \
	  --question-field "$(or $(QUESTION),question)" --answer-field "$(or $(ANSWER),answer)" \
	  $${SYSTEM_PROMPT:+--system "$$SYSTEM_PROMPT"} $(if $(GSM8K),--gsm8k) \
	  $(if $(LIMIT),--limit "$(LIMIT)") $(if $(OFFSET),--offset "$(OFFSET)") \
	  $(if $(ID_PREFIX),--id-prefix "$(ID_PREFIX)") $(if $(FORMAT),--format "$(FORMAT)") \
	  $(foreach field,$(KEEP),--keep-field "$(field)") \
	  $${EXCLUDE_ANSWER:+--exclude-answer "$$EXCLUDE_ANSWER"}

bench: $(VENV)/.installed ## Print performance figures (benchmarks/bench_*.py)
	for script in benchmarks/bench_*.py; do $(PY) $$script || exit 1; done

# Mutation testing (not part of make test: minutes of CPU). The modules that decide money and,
# per module, only the test files that cover it (scripts/mutation.py's TESTS); a score each.
MUTATION_MODULES ?= lambda/evaluation/rft_eval/gate.py lambda/evaluation/rft_eval/stats.py \
  lambda/job/rft_job/identity.py lambda/reward/grading/answers.py
MUTATION_JOBS ?= 1
.PHONY: mutation
mutation: $(VENV)/.installed ## Mutation score per module (mutmut) [MUTATION_MODULES="..." MUTATION_TESTS="..." MUTATION_JOBS=1]
	$(PY) scripts/mutation.py --jobs $(MUTATION_JOBS) $(MUTATION_MODULES) \
	  $(if $(MUTATION_TESTS),--tests $(MUTATION_TESTS))
