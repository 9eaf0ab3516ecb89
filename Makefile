# Build/test entry points for the tfe.audit collection.  `make help` lists the targets.
#
# Every target does its own setup (venvs, collection copy, get-pip stand-in); set-up steps are
# stamped so repeated runs are fast.  Targets are meant to run sequentially (.NOTPARALLEL).
#
# Useful knobs (make VAR=value):
#   SANITY_ARGS='--test validate-modules'   extra args for both ansible-test sanity runs
#   UNITS_ARGS='tests/unit/plugins/modules/test_x.py'  extra args for ansible-test units
#   INTEGRATION_ARGS='my_target -v'         extra args for ansible-test integration
#   PYTEST_ARGS='-k name -x'                extra args for emulator-tests / system
#   PYTHON311=/path/to/python3.11  PYTHON312=/path/to/python3.12

SHELL := /bin/bash

# Several people (and CI) may run make in the same checkout; targets share build/ and the venvs.
# The outermost make re-runs itself under an exclusive lock (.make.lock), so concurrent runs queue
# instead of deleting each other's build/ansible_collections copy. Nested makes inherit the lock.
ifeq ($(TFE_AUDIT_MAKE_LOCKED),)
_ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
_GOALS := $(or $(MAKECMDGOALS),help)
.PHONY: $(_GOALS)
$(firstword $(_GOALS)):
	@exec 9>$(_ROOT)/.make.lock; \
	if ! flock -n 9; then echo "make: another make is running in $(_ROOT); waiting for .make.lock ..."; flock 9; fi; \
	TFE_AUDIT_MAKE_LOCKED=1 $(MAKE) --no-print-directory -f $(firstword $(MAKEFILE_LIST)) $(_GOALS)
$(filter-out $(firstword $(_GOALS)),$(_GOALS)):
	@:
else
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.NOTPARALLEL:
.DELETE_ON_ERROR:

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
BUILD := $(ROOT)/build
COLL_PATH := $(BUILD)
COLL := $(COLL_PATH)/ansible_collections/tfe/audit
DIST := $(BUILD)/dist

VENV := $(ROOT)/.venv
VENV221 := $(ROOT)/.venv-2.21
PYENV_ROOT ?= $(shell pyenv root 2>/dev/null || echo $$HOME/.pyenv)
PYTHON311 ?= $(or $(shell command -v python3.11 2>/dev/null),python3)
PYTHON312 ?= $(or $(lastword $(sort $(wildcard $(PYENV_ROOT)/versions/3.12.*/bin/python3.12))),$(shell command -v python3.12 2>/dev/null),python3.12)

# Pins for the ansible-core 2.21 venv (only used for `ansible-test sanity` on Python 3.12).
REQ221 := tests/ci/requirements-2.21.txt

VENV_STAMP := $(VENV)/.tfe-audit-installed
VENV221_STAMP := $(VENV221)/.tfe-audit-installed

# The venv's bin first: ansible-test, ansible-lint, shellcheck, ansible-playbook ...
export PATH := $(VENV)/bin:$(PATH)

# pip prints one "Location ... is ignored" warning per package for this machine's optional
# local indexes; hide that noise (exit status is kept through pipefail).
PIP_QUIET := 2>&1 | { grep --line-buffered -v -e 'is ignored: it is neither a file nor a directory' || true; }

header = @printf '\n==== %s%s ====\n' '$(if $(filter %-installed,$@),,[$@] )' '$(1)'

SANITY_ARGS ?=
UNITS_ARGS ?=
INTEGRATION_ARGS ?=
PYTEST_ARGS ?=

.PHONY: help venv venv-2.21 collection get-pip get-pip-2.19 get-pip-2.21 sanity sanity-2.19 sanity-2.21 units emulator-tests \
        lint integration system tarball demo test clean
.PHONY: matrix matrix-ci ee changelog docs

# ansible-builder for `make ee` (own venv: it is not a test dependency of the collection).
VENV_EE := $(ROOT)/.venv-ee
VENV_EE_STAMP := $(VENV_EE)/.tfe-audit-installed
# antsibull-docs + Sphinx for `make docs`.
VENV_DOCS := $(ROOT)/.venv-docs
VENV_DOCS_STAMP := $(VENV_DOCS)/.tfe-audit-installed

# Support matrix (`make matrix`): one "<exact ansible-core>@<python>" per cell; each cell gets its own
# virtualenv (.venv-matrix/<core>-py<python>) and collection copy (tests/ci/matrix.sh).
# README.md's support matrix and meta/runtime.yml's requires_ansible follow this list.
MATRIX ?= 2.18.19@3.11 2.19.14@3.11 2.20.10@3.12 2.21.5@3.12 2.21.5@3.13
MATRIX_STEPS ?= sanity units integration
# CI (.ci/run) runs a reduced matrix after `make test` to stay well inside its time limit: units and
# integration on the cores make test does not cover (it runs everything on 2.19 and sanity on 2.21/3.12).
MATRIX_CI ?= 2.18.19@3.11 2.20.10@3.12 2.21.5@3.13
MATRIX_CI_STEPS ?= units integration

help:
	@echo 'Targets:'
	@echo '  make test            lint, changelog, units, emulator-tests, sanity, integration, system, molecule, tarball, ee, eda, docs (stops at the first failure)'
	@echo '  make venv            .venv (Python 3.11, ansible-core 2.19) from requirements-dev.txt'
	@echo '  make venv-2.21       .venv-2.21 (Python 3.12, ansible-core 2.21)'
	@echo '  make collection      fresh copy of tracked+untracked-not-ignored files into build/ansible_collections/tfe/audit'
	@echo '  make sanity          ansible-test sanity on 2.19/py3.11 and 2.21/py3.12 (sanity-2.19, sanity-2.21 for one)'
	@echo '  make units           ansible-test units --python 3.11'
	@echo '  make emulator-tests  pytest tests/emulator'
	@echo '  make molecule        molecule test --all (extensions/molecule/*: the role on localhost) against the emulator'
	@echo '  make lint            ansible-lint --profile production + antsibull-changelog lint'
	@echo '  make integration     ansible-test integration --local --python 3.11 against the emulator'
	@echo '  make system          pytest tests/system (end-to-end ansible-playbook runs)'
	@echo '  make tarball         ansible-galaxy collection build + install + ansible-doc of every module'
	@echo '  make changelog       antsibull-changelog release --version <galaxy.yml version> in a temp copy (fragments render)'
	@echo '  make docs            antsibull-docs: collection docs as HTML in build/docs/html (fails on warnings)'
	@echo '  make ee              validate examples/ee/ (ansible-builder create) and the collection'"'"'s EE metadata'
	@echo '  make eda             the event source tfe.audit.audit_trail in ansible-rulebook (Java 17 installed when missing) + examples/de/'
	@echo '  make matrix          ansible-test sanity+units+integration per ansible-core/Python cell (MATRIX=, MATRIX_STEPS=)'
	@echo '  make matrix-ci       the reduced matrix CI runs after make test (MATRIX_CI, MATRIX_CI_STEPS)'
	@echo '  make bench           performance benchmark -> docs/PERFORMANCE.md + docs/performance-fleet.png (BENCH_ARGS=--quick)'
	@echo '  make bench-smoke     request counts per operation (exact, from the emulator log; no timing)'
	@echo '  make demo            demo/run-demo.sh'
	@echo '  make clean           remove build/, venvs and test output'

# ---------------------------------------------------------------------------------------------
# Virtual environments (stamped: reinstalled only when the requirement files change)

venv: $(VENV_STAMP)

$(VENV_STAMP): requirements-dev.txt requirements.txt tests/unit/requirements.txt
	$(call header,venv: create/update $(VENV) (Python 3.11) from requirements-dev.txt)
	@if [ -x $(VENV)/bin/python ] && ! $(VENV)/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then \
	  echo "$(VENV) is not Python 3.11: recreating"; rm -rf $(VENV); fi
	@[ -x $(VENV)/bin/python ] || $(PYTHON311) -m venv $(VENV)
	@$(VENV)/bin/python -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version'
	$(VENV)/bin/python -m pip install -q --upgrade pip $(PIP_QUIET)
	$(VENV)/bin/python -m pip install -q -r requirements-dev.txt -r requirements.txt -r tests/unit/requirements.txt $(PIP_QUIET)
	@touch $@

venv-2.21: $(VENV221_STAMP)

$(VENV221_STAMP): $(REQ221)
	$(call header,venv-2.21: create/update $(VENV221) (Python 3.12, ansible-core 2.21))
	@if [ -x $(VENV221)/bin/python ] && ! $(VENV221)/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'; then \
	  echo "$(VENV221) is not Python 3.12: recreating"; rm -rf $(VENV221); fi
	@[ -x $(VENV221)/bin/python ] || $(PYTHON312) -m venv $(VENV221)
	@$(VENV221)/bin/python -c 'import sys; assert sys.version_info[:2] == (3, 12), sys.version'
	$(VENV221)/bin/python -m pip install -q --upgrade pip $(PIP_QUIET)
	$(VENV221)/bin/python -m pip install -q -r $(REQ221) $(PIP_QUIET)
	@touch $@

# ---------------------------------------------------------------------------------------------
# Collection copy + ansible-test plumbing

# Also installs the collections the tests use (community.hashi_vault, ansible.posix) next to the
# copy, in build/ansible_collections/, when tests/ci/install-test-collections.sh exists (stamped).
collection: $(VENV_STAMP)
	$(call header,copy collection to $(COLL))
	@$(ROOT)/tests/ci/copy-collection.sh $(COLL)
	@if [ -x $(ROOT)/tests/ci/install-test-collections.sh ]; then \
	  PYTHON=$(VENV)/bin/python $(ROOT)/tests/ci/install-test-collections.sh $(COLL_PATH); fi

# ansible-test bootstraps each venv it creates with get-pip from an unreachable host; write
# the stand-in (~/.ansible/test/cache/get_pip_<ver>.py) for the pip version each core wants.
get-pip: get-pip-2.19 get-pip-2.21

get-pip-2.19: $(VENV_STAMP)
	@$(VENV)/bin/python $(ROOT)/tests/ci/write-get-pip.py >/dev/null

get-pip-2.21: $(VENV221_STAMP)
	@$(VENV221)/bin/python $(ROOT)/tests/ci/write-get-pip.py >/dev/null

# ---------------------------------------------------------------------------------------------
# Tests

# Runs both cores even when the first fails, then fails if either did.
sanity:
	@rc=0; \
	$(MAKE) --no-print-directory sanity-2.19 || rc=1; \
	$(MAKE) --no-print-directory sanity-2.21 || rc=1; \
	[ $$rc -eq 0 ] || echo '==== [sanity] FAILED (see above) ===='; \
	exit $$rc

sanity-2.19: collection get-pip-2.19
	$(call header,ansible-test sanity: ansible-core 2.19 / Python 3.11)
	cd $(COLL) && $(VENV)/bin/ansible-test sanity --local --requirements --python 3.11 --color no $(SANITY_ARGS) $(PIP_QUIET)

sanity-2.21: collection get-pip-2.21
	$(call header,ansible-test sanity: ansible-core 2.21 / Python 3.12)
	cd $(COLL) && PATH=$(VENV221)/bin:$$PATH $(VENV221)/bin/ansible-test sanity --local --requirements --python 3.12 --color no $(SANITY_ARGS) $(PIP_QUIET)

units: collection get-pip-2.19
	$(call header,ansible-test units: ansible-core 2.19 / Python 3.11)
	@if [ -z "$$(find $(COLL)/tests/unit -name 'test_*.py' -print -quit 2>/dev/null)" ]; then \
	  echo 'WARNING: no tests/unit/**/test_*.py yet: nothing to run'; exit 0; fi; \
	cd $(COLL) && $(VENV)/bin/ansible-test units --local --requirements --python 3.11 --color no $(UNITS_ARGS) $(PIP_QUIET)

emulator-tests: $(VENV_STAMP)
	$(call header,pytest tests/emulator)
	cd $(ROOT) && $(VENV)/bin/python -m pytest tests/emulator -q -p no:cacheprovider $(PYTEST_ARGS)

lint: $(VENV_STAMP)
	$(call header,ansible-lint --profile production)
	@PYTHON=$(VENV)/bin/python $(ROOT)/tests/ci/install-test-collections.sh $(BUILD)/test-collections
	cd $(ROOT) && ANSIBLE_COLLECTIONS_PATH=$(BUILD)/test-collections \
	  $(VENV)/bin/ansible-lint --profile production $(if $(CI),--nocolor,)
	$(call header,antsibull-changelog lint)
	cd $(ROOT) && $(VENV)/bin/antsibull-changelog lint

# The emulator runs for the whole ansible-test run; tests/ci/with-emulator.sh writes
# tests/integration/integration_config.yml in the copy and kills the emulator afterwards.
integration: collection get-pip-2.19
	$(call header,ansible-test integration --local --python 3.11 (against the emulator))
	@if [ -z "$$(find $(COLL)/tests/integration/targets -mindepth 1 -maxdepth 1 -type d -print -quit 2>/dev/null)" ]; then \
	  echo 'WARNING: no tests/integration/targets/* yet: nothing to run'; exit 0; fi; \
	cd $(COLL) && INTEGRATION_CONFIG=$(COLL)/tests/integration/integration_config.yml \
	  $(ROOT)/tests/ci/with-emulator.sh \
	  $(VENV)/bin/ansible-test integration --local --python 3.11 --color no $(INTEGRATION_ARGS)

# End-to-end tests run ansible-playbook themselves; the collection is found through
# ANSIBLE_COLLECTIONS_PATH=build (the fresh copy). Every test has its own emulator and directories, so
# they run on SYSTEM_WORKERS pytest-xdist workers (2: 376 s instead of about 550 s on 2 cores);
# reliability-report runs them one at a time, because it records how long each case takes.
SYSTEM_WORKERS ?= 2
system: collection $(VENV_STAMP)
	$(call header,pytest tests/system)
	@PYTHON=$(VENV)/bin/python $(ROOT)/tests/ci/install-test-collections.sh $(BUILD)/test-collections
	@if [ -z "$$(find $(ROOT)/tests/system -name 'test_*.py' -print -quit 2>/dev/null)" ]; then \
	  echo 'WARNING: no tests/system/**/test_*.py yet: nothing to run'; exit 0; fi; \
	cd $(ROOT) && TFE_AUDIT_TEST_COLLECTIONS=$(BUILD)/test-collections ANSIBLE_COLLECTIONS_PATH=$(COLL_PATH) $(VENV)/bin/python -m pytest tests/system -q -p no:cacheprovider \
	  $(if $(filter-out 0 1,$(SYSTEM_WORKERS)),-n $(SYSTEM_WORKERS)) $(PYTEST_ARGS)

# The reliability suites live in tests/system (leaks, faults, bad input, crash safety, concurrency and load,
# plus the role's behaviours); `make test` runs them CI-sized through `system`. `make reliability` is the long
# form (all 24 leak combinations, the 100-organization fleet). `make reliability-report` runs the suites with
# their measurements recorded and renders docs/RELIABILITY.md from them (FULL=1 for the long form).
.PHONY: reliability reliability-report
reliability:
	@TFE_AUDIT_RELIABILITY_FULL=1 $(MAKE) --no-print-directory system

reliability-report:
	@rm -f $(BUILD)/reliability.jsonl
	@mkdir -p $(BUILD)
	@TFE_AUDIT_RELIABILITY_FULL=$(FULL) TFE_AUDIT_RELIABILITY_RESULTS=$(BUILD)/reliability.jsonl \
	  $(MAKE) --no-print-directory system SYSTEM_WORKERS=1
	TFE_AUDIT_RELIABILITY_FULL=$(FULL) $(VENV)/bin/python tests/system/render_reliability.py $(BUILD)/reliability.jsonl docs/RELIABILITY.md

# Molecule scenarios of the role (extensions/molecule/<scenario>, localhost, no containers) against one
# emulator; a scenario that needs more (OpenBao for hashi_vault) starts it itself. The collections the
# scenarios use (community.hashi_vault) come from build/ (see `collection`).
.PHONY: molecule
molecule: collection $(VENV_STAMP)
	$(call header,molecule test --all (against the emulator))
	cd $(ROOT) && ANSIBLE_COLLECTIONS_PATH=$(COLL_PATH) EMULATOR_LOG=$(BUILD)/emulator-molecule.log \
	  INTEGRATION_CONFIG=$(BUILD)/molecule/integration_config.yml \
	  $(ROOT)/tests/ci/with-emulator.sh $(VENV)/bin/molecule test --all

tarball: collection $(VENV_STAMP)
	$(call header,ansible-galaxy collection build + install + ansible-doc)
	@rm -rf $(DIST) && mkdir -p $(DIST)
	$(VENV)/bin/ansible-galaxy collection build $(COLL) --output-path $(DIST) --force
	@set -euo pipefail; \
	tarball=$$(ls $(DIST)/tfe-audit-*.tar.gz); \
	echo "built $$tarball"; \
	if tar -tzf "$$tarball" | grep -E '(^|/)(\.git|\.venv[^/]*|tests/output|tests/emulator|tests/system|build|__pycache__)(/|$$)'; then \
	  echo 'ERROR: the tarball contains files that build_ignore should have dropped (above)'; exit 1; fi; \
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(VENV)/bin/ansible-galaxy collection install "$$tarball" -p "$$tmp/collections" --force; \
	cd "$$tmp"; \
	modules=$$(cd $(COLL)/plugins/modules 2>/dev/null && ls *.py 2>/dev/null | grep -v '^__init__\.py$$' | sed 's/\.py$$//' || true); \
	[ -n "$$modules" ] || { echo 'WARNING: no modules in plugins/modules'; exit 0; }; \
	for m in $$modules; do \
	  out=$$(ANSIBLE_COLLECTIONS_PATH="$$tmp/collections" ANSIBLE_NOCOLOR=1 $(VENV)/bin/ansible-doc "tfe.audit.$$m" 2>&1) \
	    || { echo "$$out"; echo "ERROR: ansible-doc tfe.audit.$$m failed"; exit 1; }; \
	  grep -q "tfe.audit.$$m" <<<"$$out" || { echo "$$out"; echo "ERROR: ansible-doc tfe.audit.$$m rendered nothing useful"; exit 1; }; \
	  echo "ansible-doc tfe.audit.$$m: OK ($$(wc -l <<<"$$out") lines)"; \
	done
	@$(ROOT)/tests/ci/tarball-check.sh $(DIST)/tfe-audit-*.tar.gz

$(VENV_EE_STAMP): tests/ci/requirements-ee.txt
	$(call header,venv-ee: create/update $(VENV_EE) (ansible-builder))
	@[ -x $(VENV_EE)/bin/python ] || $(PYTHON311) -m venv $(VENV_EE)
	$(VENV_EE)/bin/python -m pip install -q --upgrade pip $(PIP_QUIET)
	$(VENV_EE)/bin/python -m pip install -q -r tests/ci/requirements-ee.txt $(PIP_QUIET)
	@touch $@

# examples/ee/ with `ansible-builder create` (no container engine) + introspection of the installed tarball.
ee: collection $(VENV_EE_STAMP)
	$(call header,execution environment: ansible-builder create + introspect)
	@rm -rf $(BUILD)/ee && mkdir -p $(BUILD)/ee
	$(VENV)/bin/ansible-galaxy collection build $(COLL) --output-path $(BUILD)/ee --force
	ANSIBLE_BUILDER=$(VENV_EE)/bin/ansible-builder ANSIBLE_GALAXY=$(VENV)/bin/ansible-galaxy \
	  $(ROOT)/tests/ci/ee-check.sh $$(ls $(BUILD)/ee/tfe-audit-*.tar.gz)

$(VENV_DOCS_STAMP): tests/ci/requirements-docs.txt
	$(call header,venv-docs: create/update $(VENV_DOCS) (antsibull-docs, Sphinx))
	@[ -x $(VENV_DOCS)/bin/python ] || $(PYTHON311) -m venv $(VENV_DOCS)
	$(VENV_DOCS)/bin/python -m pip install -q --upgrade pip $(PIP_QUIET)
	$(VENV_DOCS)/bin/python -m pip install -q -r tests/ci/requirements-docs.txt $(PIP_QUIET)
	@touch $@

# Event-Driven Ansible: the event source tfe.audit.audit_trail and the rulebooks in the real engine (ansible-rulebook
# in its own venv, .venv-eda, pinned in tests/ci/requirements-eda.txt) against the emulator (tests/eda, EDA_WORKERS
# pytest-xdist workers), then examples/de/ with `ansible-builder create` (.venv-ee). ansible-rulebook needs a Java 17
# runtime: tests/ci/eda-java.sh installs openjdk-17-jre-headless with apt-get when it is missing.
VENV_EDA := $(ROOT)/.venv-eda
VENV_EDA_STAMP := $(VENV_EDA)/.tfe-audit-installed
EDA_WORKERS ?= 2
.PHONY: eda

$(VENV_EDA_STAMP): tests/ci/requirements-eda.txt
	$(call header,venv-eda: create/update $(VENV_EDA) (ansible-rulebook))
	@[ -x $(VENV_EDA)/bin/python ] || $(PYTHON311) -m venv $(VENV_EDA)
	$(VENV_EDA)/bin/python -m pip install -q --upgrade pip $(PIP_QUIET)
	$(VENV_EDA)/bin/python -m pip install -q -r tests/ci/requirements-eda.txt $(PIP_QUIET)
	@touch $@

eda: $(VENV_EDA_STAMP) $(VENV_EE_STAMP)
	$(call header,Event-Driven Ansible: ansible-rulebook against the emulator + examples/de/)
	@java_home=$$($(ROOT)/tests/ci/eda-java.sh); \
	cd $(ROOT) && JAVA_HOME=$$java_home PATH=$(VENV_EDA)/bin:$$java_home/bin:$$PATH \
	  $(VENV_EDA)/bin/python -m pytest tests/eda -q -p no:cacheprovider $(if $(filter-out 0 1,$(EDA_WORKERS)),-n $(EDA_WORKERS)) $(PYTEST_ARGS)
	ANSIBLE_BUILDER=$(VENV_EE)/bin/ansible-builder ANSIBLE_GALAXY=$(VENV_EDA)/bin/ansible-galaxy $(ROOT)/tests/ci/eda-de-check.sh

# antsibull-docs renders the collection (the fresh copy) to HTML in build/docs/html; fails on warnings.
docs: collection $(VENV_DOCS_STAMP)
	$(call header,antsibull-docs sphinx-init + build -> build/docs/html)
	PATH=$(VENV_DOCS)/bin:$$PATH $(ROOT)/tests/ci/docs-build.sh $(COLL_PATH) $(BUILD)/docs

matrix-ci:
	@$(MAKE) --no-print-directory matrix MATRIX="$(MATRIX_CI)" MATRIX_STEPS="$(MATRIX_CI_STEPS)"

# `antsibull-changelog release` in a throwaway copy: the fragments render (nothing is committed).
changelog: $(VENV_STAMP)
	$(call header,antsibull-changelog release in a temp copy)
	PYTHON=$(VENV)/bin/python $(ROOT)/tests/ci/changelog-check.sh

# Runs every cell even after a failure; prints the time of each step; fails if any failed.
matrix:
	$(call header,support matrix: $(MATRIX) / $(MATRIX_STEPS))
	@mkdir -p $(BUILD)/matrix; times=$(BUILD)/matrix/times.txt; : >$$times; rc=0; start=$$(date +%s); \
	for cell in $(MATRIX); do \
	  log=$(BUILD)/matrix/$$cell.log; \
	  $(ROOT)/tests/ci/matrix.sh "$${cell%@*}" "$${cell#*@}" $(MATRIX_STEPS) 2>&1 | tee "$$log" || rc=1; \
	  grep '^matrix-time ' "$$log" >>$$times || true; \
	done; \
	echo; echo '==== [matrix] seconds per step ===='; \
	awk '{ printf "  %-14s %-12s %5d s  %s\n", $$2, $$3, $$4, $$5 }' $$times; \
	echo "==== [matrix] $$([ $$rc -eq 0 ] && echo passed || echo FAILED) in $$(( $$(date +%s) - start )) s ===="; \
	exit $$rc

# Performance benchmark (bench/, not part of the built collection). Not a timed test: it measures and
# writes docs/PERFORMANCE.md and the fleet chart; nothing asserts wall-clock numbers. matplotlib (for the
# chart only) lives in its own venv, .venv-bench, pinned in bench/requirements.txt.
VENV_BENCH := $(ROOT)/.venv-bench
VENV_BENCH_STAMP := $(VENV_BENCH)/.tfe-audit-installed
BENCH_ARGS ?=
.PHONY: bench bench-smoke

$(VENV_BENCH_STAMP): bench/requirements.txt
	$(call header,venv-bench: create/update $(VENV_BENCH) (matplotlib for the chart))
	@[ -x $(VENV_BENCH)/bin/python ] || $(PYTHON311) -m venv $(VENV_BENCH)
	$(VENV_BENCH)/bin/python -m pip install -q --upgrade pip $(PIP_QUIET)
	$(VENV_BENCH)/bin/python -m pip install -q -r bench/requirements.txt $(PIP_QUIET)
	@touch $@

bench: $(VENV_STAMP) $(VENV_BENCH_STAMP)
	$(call header,bench/run.py $(BENCH_ARGS) -> docs/PERFORMANCE.md)
	cd $(ROOT) && $(VENV)/bin/python bench/run.py --chart-python $(VENV_BENCH)/bin/python $(BENCH_ARGS)

# Request counts only (exact); also part of `make system` (tests/system/test_request_counts.py).
bench-smoke: $(VENV_STAMP)
	$(call header,bench-smoke: request counts per operation)
	cd $(ROOT) && $(VENV)/bin/python -m pytest tests/system/test_request_counts.py -q -p no:cacheprovider $(PYTEST_ARGS)

demo: $(VENV_STAMP)
	$(call header,demo/run-demo.sh)
	cd $(ROOT) && bash demo/run-demo.sh

# Cheapest first so failures show up early.
test:
	@start=$$(date +%s); \
	for t in lint changelog units emulator-tests sanity integration system molecule tarball ee eda docs; do \
	  s=$$(date +%s); \
	  $(MAKE) --no-print-directory $$t || { echo; echo "==== make test: FAILED in '$$t' ===="; exit 1; }; \
	  echo "==== [$$t] done in $$(( $$(date +%s) - s )) s ===="; \
	done; \
	echo; echo "==== make test: all passed in $$(( $$(date +%s) - start )) s ===="

clean:
	$(call header,clean)
	rm -rf $(BUILD) $(VENV) $(VENV221) $(ROOT)/.venv-matrix $(VENV_EE) $(VENV_EDA) $(VENV_DOCS) $(ROOT)/.venv-bench tests/output .pytest_cache .hypothesis

endif
