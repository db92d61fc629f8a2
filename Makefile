# Two commands matter: `make synth` (install, synthesize the example platform offline, run the policy
# gates, print a summary) and `make test` (the whole offline test suite; CI runs exactly this).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# checkov needs an older boto3 than the app's, so it gets a virtualenv of its own.
VENV_SCAN := .venv-scan
CONFIG ?= config/platform.yaml
CDK := npx --no-install cdk
# The Node.js LTS that npm installs into node_modules/ (Linux) runs the CDK CLI and the app's jsii runtime.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
export CDK_DISABLE_VERSION_CHECK := 1

.PHONY: wheelhouse install synth test deploy diff bench schema template-digests quotas local-run local-monitor constraints constraints-scan clean mutation

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	@echo "Installing the Python dependencies into $(VENV)/ (first run only; takes a few minutes)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $@

$(VENV_SCAN)/.installed: requirements-scan.txt constraints-scan.txt
	@echo "Installing checkov into $(VENV_SCAN)/ (a virtualenv of its own; takes a minute or two)"
	$(PYTHON) -m venv $(VENV_SCAN)
	$(VENV_SCAN)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_SCAN)/bin/python -m pip install --quiet -r requirements-scan.txt -c constraints-scan.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	@echo "Installing the CDK CLI into node_modules/ (first run only)"
	npm ci --no-audit --no-fund --loglevel=error
	@node -e 'const major = Number(process.versions.node.split(".")[0]); if (major < 22 || major % 2) { console.error(`Node.js $${process.versions.node} is not a maintained LTS: install Node.js 22 or 24 (on Linux x64 and arm64, npm ci puts Node.js 24 in node_modules/)`); process.exit(1); }'
	touch $@

# The wheels the pipeline's steps install offline in the scikit-learn image (uploaded with the step code).
WHEELHOUSE := build/wheelhouse/requirements.txt
$(WHEELHOUSE): pipeline_code/container_requirements.txt tools/wheelhouse.py $(VENV)/.installed
	@echo "Downloading the pipeline steps' wheelhouse into build/wheelhouse/ (first run only)"
	$(PY) -m tools.wheelhouse download

wheelhouse: $(WHEELHOUSE)

install: $(VENV)/.installed $(VENV_SCAN)/.installed node_modules/.installed $(WHEELHOUSE)

synth: install
	rm -rf cdk.out
	$(CDK) synth --quiet --no-notices -c config=$(CONFIG)
	$(PY) -m tools.synth_report cdk.out

test: install
	$(PY) -m pytest

deploy: install
	$(CDK) deploy --all -c config=$(CONFIG)
	$(PY) -m tools.record_deployment $(CONFIG)

diff: install
	$(CDK) diff -c config=$(CONFIG)

bench: install
	$(PY) bench/synth.py
	@for script in bench/*.py; do case "$$script" in bench/synth.py|bench/suite_growth.py) ;; *) $(PY) "$$script";; esac; done

quotas: install
	$(PY) -m tools.quota_report -c $(CONFIG) $(if $(REGION),--region $(REGION))

USE_CASE ?= fraud-detection
DATA_DIR ?=
local-run: install
	$(PY) -m tools.local_run --config $(CONFIG) --use-case $(USE_CASE) --out out/local-run/$(USE_CASE) \
		$(if $(DATA_DIR),--data-dir $(DATA_DIR))

SHIFT ?=
local-monitor: install
	$(PY) -m tools.local_monitor --config $(CONFIG) --use-case $(USE_CASE) --run-dir out/local-run/$(USE_CASE) \
		--out out/local-monitor/$(USE_CASE) $(if $(SHIFT),--shift $(SHIFT))

# The committed digests of the synthesized templates (tests/stacks/test_template_digests.py): rewrite them only
# for a change that is meant to alter what is deployed.
template-digests: install
	$(PY) -m tools.template_digests

schema: install
	$(PY) -m tools.export_schema
	$(PY) -m tools.permissions_table
	$(PY) -m tools.pipeline_doc

# Mutation testing, outside CI (`make test` neither installs nor runs it): mutmut over lambdas/ and
# pipeline_code/split.py against the handler and split tests, in build/mutation/, a view of the repository
# in which lambdas/ is named src/ (why: setup.cfg [mutmut]). Fails below a score of 85 %.
mutation: $(VENV)/.installed node_modules/.installed
	$(PY) -m pip install --quiet -c constraints.txt mutmut==3.8.1 coverage==7.17.5 libcst==1.9.0 textual==8.2.8 \
		setproctitle==1.3.8 mdit-py-plugins==0.7.0 linkify-it-py==2.2.0
	rm -rf build/mutation
	mkdir -p build/mutation/mutants
	ln -s ../../lambdas build/mutation/src
	ln -s src build/mutation/mutants/lambdas
	for path in setup.cfg pytest.ini cdk.json config pipeline_code stacks tests tools; do ln -s ../../$$path build/mutation/$$path; done
	set -o pipefail; cd build/mutation && time ../../$(VENV)/bin/mutmut run --max-children $$(nproc) | tr '\r' '\n' \
		| awk '/^[^ ]+ ([0-9]+\/[0-9]+|Running|Generating|Listing)/ { last = $$0; next } NF { print } END { print last }'
	cd build/mutation && ../../$(VENV)/bin/mutmut results | sort
	cd build/mutation && ../../$(VENV)/bin/mutmut export-cicd-stats > /dev/null
	$(PY) -m tools.mutation_score build/mutation/mutants/mutmut-cicd-stats.json --minimum 85

constraints:
	rm -rf .constraints-venv
	$(PYTHON) -m venv .constraints-venv
	.constraints-venv/bin/python -m pip install --quiet --upgrade pip
	.constraints-venv/bin/python -m pip install --quiet -r requirements-dev.txt
	(head -n 2 constraints.txt; .constraints-venv/bin/python -m pip freeze --exclude-editable) > constraints.new
	mv constraints.new constraints.txt
	rm -rf .constraints-venv

constraints-scan:
	rm -rf .constraints-scan-venv
	$(PYTHON) -m venv .constraints-scan-venv
	.constraints-scan-venv/bin/python -m pip install --quiet --upgrade pip
	.constraints-scan-venv/bin/python -m pip install --quiet -r requirements-scan.txt
	(head -n 2 constraints-scan.txt; .constraints-scan-venv/bin/python -m pip freeze --exclude-editable) > constraints-scan.new
	mv constraints-scan.new constraints-scan.txt
	rm -rf .constraints-scan-venv

clean:
	rm -rf cdk.out .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -not -path './$(VENV_SCAN)/*' -not -path './node_modules/*' -exec rm -rf {} +
