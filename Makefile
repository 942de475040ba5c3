# ndjson-parquet: `make run` (the pipeline on the bundled sample) and `make test` work on a
# fresh machine with only Python 3.11 and Java 17: both set up .venv first when needed.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STAGE ?= dev
SEEDS ?= 200
MINUTES ?= 10
TEST_WORKERS ?= 2
FILES ?= 20000
SAMPLE_DIR := samples/input
OUT ?= out

.DEFAULT_GOAL := help
.PHONY: help setup check-java run sample test test-all fuzz lint infra-check iam-check artifact-check bench freshness chaos load deploy smoke destroy clean

help: ## List targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

setup: $(STAMP) ## Create .venv and install everything (reruns when requirements change)

check-java: ## Fail in one line when Java 17 (needed by Spark) is missing
	@$(BIN)/python -m ndjson_parquet.java_check

sample: $(STAMP) ## Generate the bundled sample input (deterministic)
	$(BIN)/ndjson-parquet generate --out $(SAMPLE_DIR) --files 12 --mb 0.5 --bad-rate 0.01 --seed 7

run: $(STAMP) ## Run the whole pipeline locally on the bundled sample (Lambda engine; Java only if a manifest goes to Glue)
	@test -d $(SAMPLE_DIR) || $(MAKE) --no-print-directory sample
	$(BIN)/ndjson-parquet run --input $(SAMPLE_DIR) --output $(OUT)/parquet --quarantine $(OUT)/quarantine --summary-json $(OUT)/summary.json --batch-max-files 4
	@echo "query it:  $(BIN)/ndjson-parquet sql $(OUT)/parquet \"select _manifest_id, count(*) as n_rows from dataset group by all order by all\""

test: $(STAMP) check-java ## Run the test suite (unit, functional, e2e) with coverage
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --cov --cov-report=term --cov-report=xml -m "not chaos and not artifact" --durations=15 $(PYTEST_ARGS)

fuzz: $(STAMP) ## Round-trip property tests with many examples (HYPOTHESIS_PROFILE=fuzz)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q -p no:cacheprovider tests/unit/test_roundtrip_property.py tests/unit/test_lines.py

lint: $(STAMP) ## ruff + infra checks (cfn-lint, checkov)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(MAKE) --no-print-directory infra-check

infra-check: $(STAMP) ## cfn-lint and checkov on infra/
	$(BIN)/cfn-lint infra/*.yaml
	$(BIN)/checkov --quiet --compact --framework cloudformation --config-file infra/.checkov.yaml -d infra

iam-check: $(STAMP) ## Every role's policy against the static call map: missing and unused grants (also in make test)
	$(BIN)/ndjson-parquet iam check

artifact-check: $(STAMP) ## Build the converter Lambda artifact (build/converter/), check its size, convert + commit from it in an isolated interpreter
	$(BIN)/python -m pytest -q -p no:cacheprovider -m artifact -s tests/functional/converter/test_artifact.py

bench: $(STAMP) check-java ## Benchmarks; results as JSON in bench/results/
	$(BIN)/python -m bench.run_all

freshness: $(STAMP) ## Freshness bench: p50/p95 upload-to-queryable at two rates, production timers (MINUTES=10 per rate)
	$(BIN)/python -m bench.freshness --minutes $(MINUTES)

chaos: $(STAMP) check-java ## Randomized fault-injection campaign (SEEDS=200)
	rm -f bench/results/chaos_scenarios.jsonl
	CHAOS_RECORD=bench/results/chaos_scenarios.jsonl CHAOS_SUMMARY=bench/results/chaos.json \
		$(BIN)/python -m pytest -q -n $(TEST_WORKERS) -m chaos tests/chaos --seeds $(SEEDS)

load: $(STAMP) ## Control-plane load run (FILES=20000)
	$(BIN)/python -m bench.load --files $(FILES)

deploy: $(STAMP) ## Deploy infra stack + Chalice app to AWS (STAGE=prod)
	bash infra/deploy.sh $(STAGE)

smoke: $(STAMP) ## End-to-end check of a deployed stage (STAGE=dev): uploads, waits, checks, replays, status
	$(BIN)/ndjson-parquet smoke --stage $(STAGE)

destroy: $(STAMP) ## Remove a stage (STAGE=dev): Chalice app, then buckets emptied (all versions), stack, retained resources
	$(BIN)/chalice delete --stage $(STAGE) || echo "chalice delete: nothing deployed for $(STAGE) (or already gone)"
	$(BIN)/python -m ndjson_parquet.destroy --stage $(STAGE)

clean: ## Remove build output (keeps .venv)
	rm -rf $(OUT) spark-warehouse .pytest_cache .ruff_cache coverage.xml .coverage
