# Mutation testing (tests/mutate.py, tests/README.md): cosmic-ray mutates the modules where a
# silent error would change the paper's numbers and runs the tests that guard each one. Not
# part of `make test` or CI: its 42 targets take many hours on 2 cores in all (tests/README.md
# gives each one's run), so a run stops at --budget-min and the next goes on. MUTATE_ARGS passes options,
# e.g. MUTATE_ARGS="--only metrics interp --budget-min 20", "--fresh" after code changes, or
# "--warm" on a machine whose cores are taken (each mutant's tests in a fork of one warm process).
.PHONY: mutate mutate-tool

MUTATE_VENV := $(VENV)/mutate
MUTATE_ARGS ?=

# The tool and its dependencies, pinned, in a venv of their own (the tests run in $(VENV)).
mutate-tool: $(MUTATE_VENV)/.installed

$(MUTATE_VENV)/.installed: tests/mutate-requirements.txt
	@test -x $(MUTATE_VENV)/bin/python || $(PYTHON) -m venv $(MUTATE_VENV)
	@echo "mutate: installing cosmic-ray (tests/mutate-requirements.txt) into $(MUTATE_VENV)"
	@$(MUTATE_VENV)/bin/python -m pip install -q --disable-pip-version-check -r tests/mutate-requirements.txt
	@touch $@

mutate: setup mutate-tool
	@$(MUTATE_VENV)/bin/python tests/mutate.py $(MUTATE_ARGS)
