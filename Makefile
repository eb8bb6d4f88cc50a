# Two commands a newcomer needs (see README):
#   make serve   install the serving set and start the gateway
#   make test    install everything (train, export, dev) and run lint, types and the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
PROMPT ?= Write Python code to sort a list
MODELS ?= gpt-4o-mini,codestral-latest
COST_WEIGHT ?= 0.5
export LITELLM_LOCAL_MODEL_COST_MAP := True
# Catalogue models with outcome rows in ../shared (train_ok=true canonical rows and extra-2025, all
# Apache-2.0) that the shipped artifacts learn: every catalogue model the data covers.
SHIPPED_MODELS := gpt-4o-mini,gpt-4o,gpt-4-turbo,gpt-3.5-turbo,o1-mini,claude-3-haiku,claude-3-5-sonnet,claude-3-opus,gemini-1.5-flash,gemini-1.5-pro,llama-3.1-70b-instruct,llama-3.1-8b-instruct,llama-3.1-405b-instruct,deepseek-chat,mixtral-8x7b-instruct,mistral-large-latest,qwen-2.5-72b-instruct,gemma-2-9b-it,phi-3-mini,command-r,claude-3-5-haiku,gemini-2.0-flash,codestral-latest,mistral-small-latest

.PHONY: serve route test install-serve install-dev lint artifacts bench-routing bench-latency bench-soak bench-gateway bench-real-prompts bench-unseen

$(PY):
	python3.11 -m venv $(VENV) || python3 -m venv $(VENV)

install-serve: $(PY)
	$(PIP) install -q -e .

# torch first, pinned: pip takes the CPU build from this machine's disk (any other pulls CUDA).
install-dev: $(PY)
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[train,export,dev]'
	$(PIP) install -q -e ./lunar

serve: install-serve
	$(VENV)/bin/pureai serve

route: install-serve
	$(VENV)/bin/pureai route "$(PROMPT)" --models $(MODELS) --cost-weight $(COST_WEIGHT)

lint:
	$(VENV)/bin/ruff check router training models_registry service lunar tests benchmarks
	$(VENV)/bin/mypy

# The whole suite, then the gateway's tests again over PostgreSQL instead of SQLite, then the
# upstream-facing ones with every call through litellm (the relay off: providers that need it).
RELAY_OFF_TESTS := tests/service/test_streaming.py tests/service/test_failover.py tests/service/test_api_reference.py \
	tests/service/test_openai_client.py tests/service/test_errors.py
test: install-dev lint
	$(VENV)/bin/pytest -q
	PUREAI_TEST_STORE=postgres $(VENV)/bin/pytest -q tests/service
	PUREAI_TEST_RELAY=false $(VENV)/bin/pytest -q $(RELAY_OFF_TESTS)

# Rebuild the shipped artifacts from ../shared (train_ok rows only; see docs/artifacts.md): the
# canonical folder and extra-2025 in one run, merged by prompt id (training/extra2025.py).
# The shipped router serves traffic unlike any of its benchmarks, so its neighbours count only when
# close (benchmarks/unseen: bounds chosen on random folds of the benchmarks send held-out benchmarks
# to their neighbours' models); a retraining on one's own traffic chooses them on its folds.
SHIPPED_NEAR := 0.45,0.70
TRAIN_DATA := ../shared/routing-data/canonical,../shared/routing-data/extra-2025
artifacts: install-dev
	$(VENV)/bin/pureai export-embedder --out router/artifacts
	$(VENV)/bin/pureai train --data $(TRAIN_DATA) --registry-names --cost-from registry \
		--models $(SHIPPED_MODELS) --near $(SHIPPED_NEAR) --knn-max 8000 --folds 1 --out router/artifacts --force

bench-routing: install-dev
	$(PY) benchmarks/routing/run.py

bench-latency: install-dev
	$(PY) benchmarks/latency/run.py

# The shipped router on hand-written real-user-style prompts that no training reads.
bench-real-prompts: install-dev
	$(PY) benchmarks/real_prompts/run.py

# The make-artifacts recipe with whole benchmarks held out of training, routed among catalogue models.
bench-unseen: install-dev
	$(PY) benchmarks/unseen/run.py

# Reliability case 35: 10 minutes of mixed load on one gateway; does its RSS plateau?
bench-soak: install-dev
	$(PY) benchmarks/soak/run.py --minutes 10

# Issue 7: our gateway beside LiteLLM's proxy (made once in benchmarks/gateway/.venv-litellm); needs wrk
bench-gateway: install-dev
	$(PY) benchmarks/gateway/compare.py
