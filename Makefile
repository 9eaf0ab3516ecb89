# Build and test entry points of the tfe.audit collection. `make help` lists the targets (from the ## comments).
#
# Every target sets itself up: virtualenvs with pinned tools (tests/ci/venv.sh, a no-op when up to date),
# collection copies, the API emulator. The scripts behind the targets are in tests/ci/.
# One test at a time: see CONTRIBUTING.md (UNITS_ARGS, SYSTEM_TESTS, PYTEST_ARGS, INTEGRATION_ARGS, SANITY_ARGS).

SHELL := /bin/bash

# Several people (and CI) may run make in one checkout, and targets share build/ and the venvs: the outermost
# make runs the rest under an exclusive lock (.make.lock), so concurrent runs queue. Nested makes inherit it.
ifeq ($(TFE_AUDIT_MAKE_LOCKED),)
_GOALS := $(or $(MAKECMDGOALS),help)
.PHONY: $(_GOALS)
$(firstword $(_GOALS)):
	@exec 9>$(dir $(abspath $(lastword $(MAKEFILE_LIST)))).make.lock; \
	if ! flock -n 9; then echo "make: another make is running here; waiting for .make.lock ..."; flock 9; fi; \
	TFE_AUDIT_MAKE_LOCKED=1 $(MAKE) --no-print-directory -f $(firstword $(MAKEFILE_LIST)) $(_GOALS)
$(filter-out $(firstword $(_GOALS)),$(_GOALS)):
	@:
else
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.NOTPARALLEL:

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
BUILD := $(ROOT)/build
COLL := $(BUILD)/ansible_collections/tfe/audit
SCRIPTS := $(ROOT)/tests/ci
VENV := $(ROOT)/.venv
export PATH := $(VENV)/bin:$(PATH)

# One venv per tool set: venv(<dir>, <python>, <requirements...>).
venv = $(SCRIPTS)/venv.sh $(ROOT)/$(1) $(2) $(addprefix $(ROOT)/,$(3))
DEV_VENV = $(call venv,.venv,3.11,requirements-dev.txt requirements.txt tests/unit/requirements.txt)

# ansible-test runs in the cells of tests/ci/matrix.sh (<exact ansible-core>@<python>, each its own venv and
# collection copy). README.md's support matrix and meta/runtime.yml's requires_ansible follow MATRIX.
MATRIX ?= 2.18.19@3.11 2.19.14@3.11 2.20.10@3.12 2.21.5@3.12 2.21.5@3.13
MATRIX_STEPS ?= sanity units integration
SANITY_CELLS ?= 2.19.14@3.11 2.21.5@3.12
MAIN_CELL ?= 2.19.14@3.11
# CI runs these after make test (units and integration on the cores make test does not cover).
MATRIX_CI ?= 2.18.19@3.11 2.20.10@3.12 2.21.5@3.13
# The system and eda suites also render server text with the oldest and the newest core (tests/shared/checkout_fixtures.py
# finds these matrix venvs; the targets make them, so that no test installs anything).
TEMPLATE_CORES ?= 2.18.19@3.11 2.21.5@3.12
core_venvs = for c in $(TEMPLATE_CORES); do core=$${c/@*/}; py=$${c/*@/}; \
  $(SCRIPTS)/venv.sh $(ROOT)/.venv-matrix/$${core%.*}-py$$py $$py ansible-core==$$core $(SCRIPTS)/requirements-matrix.txt; done
cell = $(SCRIPTS)/matrix.sh $(firstword $(subst @, ,$(1))) $(lastword $(subst @, ,$(1))) $(2)

SYSTEM_TESTS ?= tests/system
SYSTEM_WORKERS ?= 2
EDA_WORKERS ?= 2
PYTEST_ARGS ?=
BENCH_ARGS ?=
export SANITY_ARGS UNITS_ARGS INTEGRATION_ARGS

TEST_STEPS := lint changelog units emulator-tests sanity integration system molecule tarball ee eda docs

.PHONY: help demo test venv collection lint changelog units emulator-tests sanity integration system molecule \
        tarball ee eda docs matrix matrix-ci reliability reliability-report bench bench-smoke clean

help: ## This list
	@echo 'make <target>   (on a fresh clone: make demo, make test)'
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/  \1\t\2/' | expand -t 22

demo: ## The main job end to end against the emulator: a token's life cycle, then the SIEM recipe
	@$(DEV_VENV)
	cd $(ROOT) && bash demo/run-demo.sh

test: ## Every check, cheapest first; stops at the first failure
	@start=$$(date +%s); \
	for t in $(TEST_STEPS); do \
	  s=$$(date +%s); \
	  $(MAKE) --no-print-directory $$t || { echo; echo "==== make test: FAILED in '$$t' ===="; exit 1; }; \
	  echo "==== [$$t] done in $$(( $$(date +%s) - s )) s ===="; \
	done; \
	echo; echo "==== make test: all passed in $$(( $$(date +%s) - start )) s ===="

venv: ## .venv: Python 3.11, ansible-core 2.19 and the pinned tools (requirements-dev.txt)
	@$(DEV_VENV)

collection: venv ## A fresh copy in build/ansible_collections/tfe/audit, with the collections the tests use beside it
	@$(SCRIPTS)/copy-collection.sh $(COLL)
	@PYTHON=$(VENV)/bin/python $(SCRIPTS)/install-test-collections.sh $(BUILD)

lint: venv ## ansible-lint --profile production, then antsibull-changelog lint
	@PYTHON=$(VENV)/bin/python $(SCRIPTS)/install-test-collections.sh $(BUILD)/test-collections
	cd $(ROOT) && ANSIBLE_COLLECTIONS_PATH=$(BUILD)/test-collections ansible-lint --profile production $(if $(CI),--nocolor)
	cd $(ROOT) && antsibull-changelog lint

changelog: venv ## The changelog fragments render (antsibull-changelog release in a temporary copy)
	PYTHON=$(VENV)/bin/python $(SCRIPTS)/changelog-check.sh

units: ## ansible-test units on ansible-core 2.19 / Python 3.11 (UNITS_ARGS=tests/unit/... for one file)
	$(call cell,$(MAIN_CELL),units)

emulator-tests: venv ## The API emulator's own tests (PYTEST_ARGS=-k ...)
	cd $(ROOT) && python -m pytest tests/emulator -q -p no:cacheprovider $(PYTEST_ARGS)

sanity: ## ansible-test sanity on each of SANITY_CELLS (SANITY_ARGS='--test pylint')
	@rc=0; for c in $(SANITY_CELLS); do $(SCRIPTS)/matrix.sh $${c%@*} $${c#*@} sanity || rc=1; done; exit $$rc

integration: ## ansible-test integration against the emulator (INTEGRATION_ARGS=tfe_audit_trail_events)
	$(call cell,$(MAIN_CELL),integration)

# Real ansible-playbook runs; the tests find this checkout itself (tests/system/conftest.py), each with its own
# emulator and directories, on SYSTEM_WORKERS pytest-xdist workers.
system: venv ## End-to-end ansible-playbook runs (SYSTEM_TESTS=tests/system/test_x.py PYTEST_ARGS='-k name')
	@$(core_venvs)
	@PYTHON=$(VENV)/bin/python $(SCRIPTS)/install-test-collections.sh $(BUILD)/test-collections
	cd $(ROOT) && TFE_AUDIT_TEST_COLLECTIONS=$(BUILD)/test-collections python -m pytest $(SYSTEM_TESTS) -q \
	  -p no:cacheprovider $(if $(filter-out 0 1,$(SYSTEM_WORKERS)),-n $(SYSTEM_WORKERS)) $(PYTEST_ARGS)

# The reliability suites are in tests/system, CI-sized in make test. FULL=1 is the long form (every leak
# combination, the 100-organization fleet); reliability-report records every case and renders docs/RELIABILITY.md.
reliability: ## The reliability suites in their long form
	@TFE_AUDIT_RELIABILITY_FULL=1 $(MAKE) --no-print-directory system

reliability-report: ## Run the system and eda suites one at a time, recording each case, and render docs/RELIABILITY.md (FULL=1)
	@rm -f $(BUILD)/reliability.jsonl && mkdir -p $(BUILD)
	@TFE_AUDIT_RELIABILITY_FULL=$(FULL) TFE_AUDIT_RELIABILITY_RESULTS=$(BUILD)/reliability.jsonl \
	  $(MAKE) --no-print-directory system SYSTEM_WORKERS=1
	@TFE_AUDIT_RELIABILITY_RESULTS=$(BUILD)/reliability.jsonl $(MAKE) --no-print-directory eda EDA_WORKERS=1
	TFE_AUDIT_RELIABILITY_FULL=$(FULL) python tests/system/render_reliability.py $(BUILD)/reliability.jsonl \
	  docs/RELIABILITY.md

molecule: collection ## The role's Molecule scenarios (extensions/molecule/*) on localhost against the emulator
	cd $(ROOT) && ANSIBLE_COLLECTIONS_PATH=$(BUILD) EMULATOR_LOG=$(BUILD)/emulator-molecule.log \
	  INTEGRATION_CONFIG=$(BUILD)/molecule/integration_config.yml $(SCRIPTS)/with-emulator.sh molecule test --all

tarball: collection ## ansible-galaxy collection build, then the tarball installed, read with ansible-doc and run
	@rm -rf $(BUILD)/dist
	ansible-galaxy collection build $(COLL) --output-path $(BUILD)/dist
	$(SCRIPTS)/tarball-check.sh $(BUILD)/dist/tfe-audit-*.tar.gz

ee: collection ## The execution environment example (ansible-builder create) and the collection's EE metadata
	@$(call venv,.venv-ee,3.11,tests/ci/requirements-ee.txt)
	@rm -rf $(BUILD)/ee
	ansible-galaxy collection build $(COLL) --output-path $(BUILD)/ee
	ANSIBLE_BUILDER=$(ROOT)/.venv-ee/bin/ansible-builder $(SCRIPTS)/builder-check.sh ee $(BUILD)/ee/tfe-audit-*.tar.gz

# ansible-rulebook runs on a Java 17 runtime: tests/ci/eda-java.sh installs Debian's openjdk-17-jre-headless
# with apt-get when java is missing, and prints its JAVA_HOME.
eda: collection ## The event source and the rulebooks in the real engine (ansible-rulebook), then the decision environment
	@$(call venv,.venv-eda,3.11,tests/ci/requirements-eda.txt)
	@$(core_venvs)
	@$(call venv,.venv-ee,3.11,tests/ci/requirements-ee.txt)
	@java_home=$$($(SCRIPTS)/eda-java.sh); cd $(ROOT) && JAVA_HOME=$$java_home \
	  PATH=$(ROOT)/.venv-eda/bin:$$java_home/bin:$$PATH .venv-eda/bin/python -m pytest tests/eda -q \
	  -p no:cacheprovider $(if $(filter-out 0 1,$(EDA_WORKERS)),-n $(EDA_WORKERS)) $(PYTEST_ARGS)
	@rm -rf $(BUILD)/de
	ansible-galaxy collection build $(COLL) --output-path $(BUILD)/de
	ANSIBLE_BUILDER=$(ROOT)/.venv-ee/bin/ansible-builder $(SCRIPTS)/builder-check.sh de $(BUILD)/de/tfe-audit-*.tar.gz

docs: collection ## The collection's HTML docs with antsibull-docs (build/docs/html; fails on warnings)
	@$(call venv,.venv-docs,3.11,tests/ci/requirements-docs.txt)
	PATH=$(ROOT)/.venv-docs/bin:$$PATH $(SCRIPTS)/docs-build.sh $(BUILD) $(BUILD)/docs

matrix: ## ansible-test MATRIX_STEPS in every MATRIX cell; prints the time of each step, fails if any failed
	@mkdir -p $(BUILD)/matrix; times=$(BUILD)/matrix/times.txt; : >$$times; rc=0; start=$$(date +%s); \
	for c in $(MATRIX); do \
	  $(SCRIPTS)/matrix.sh $${c%@*} $${c#*@} $(MATRIX_STEPS) 2>&1 | tee $(BUILD)/matrix/$$c.log || rc=1; \
	  grep '^matrix-time ' $(BUILD)/matrix/$$c.log >>$$times || true; \
	done; \
	echo; echo '==== [matrix] seconds per step ===='; \
	awk '{ printf "  %-14s %-12s %5d s  %s\n", $$2, $$3, $$4, $$5 }' $$times; \
	echo "==== [matrix] $$([ $$rc -eq 0 ] && echo passed || echo FAILED) in $$(( $$(date +%s) - start )) s ===="; \
	exit $$rc

matrix-ci: ## The reduced matrix CI runs after make test (units and integration on MATRIX_CI)
	@$(MAKE) --no-print-directory matrix MATRIX="$(MATRIX_CI)" MATRIX_STEPS="units integration"

# Measures, writes docs/PERFORMANCE.md and the charts; asserts no wall-clock number. matplotlib (charts only) has
# its own venv; the event source's section runs ansible-rulebook from .venv-eda.
bench: venv ## The performance benchmark -> docs/PERFORMANCE.md (BENCH_ARGS='--only SECTION' for one, --quick: bench/README.md)
	@$(call venv,.venv-bench,3.11,bench/requirements.txt)
	@$(call venv,.venv-eda,3.11,tests/ci/requirements-eda.txt)
	@java_home=$$($(SCRIPTS)/eda-java.sh); cd $(ROOT) && JAVA_HOME=$$java_home PATH=$$java_home/bin:$$PATH \
	  python bench/run.py --chart-python $(ROOT)/.venv-bench/bin/python $(BENCH_ARGS)

bench-smoke: venv ## The exact HTTP request count of each operation (part of make system too)
	@$(MAKE) --no-print-directory system SYSTEM_TESTS=tests/system/test_request_counts.py SYSTEM_WORKERS=1

clean: ## Remove build/, the venvs and test output
	rm -rf $(BUILD) $(ROOT)/.venv $(ROOT)/.venv-* tests/output .pytest_cache .hypothesis

endif
