# The paper's tables end to end (paper/; see paper/README.md).
#   make paper [TABLES=1,2,3,5,6,7,8,bounds,nullbg,sampling,balance,augment,transfer]
#              [DATA=datasets] [GPU=0] [RUNS=runs] [MINI=1] [PLAN=1] [REPORT_ONLY=1]
#              [RAY_ADDRESS=host:6379] [ITERS=n] [JOBS=n]
#   make voc-submission WEIGHTS=runs/voc-fcn8s/final.caffemodel YEAR=2011|2012 [DATA=…] [OUT=…]
#   make paper-ray-deps   Ray (pinned in requirements-ray.txt), only for RAY_ADDRESS runs
#   make test-paper       this area's tests; make test-paper-ray  the Ray cluster test
.PHONY: paper voc-submission paper-ray-deps test-paper test-paper-ray

PAPER_FLAGS = $(if $(TABLES),--tables $(TABLES)) $(if $(MINI),--mini,--data $(DATA_DIR)) \
  $(if $(RUNS),--runs $(RUNS)) $(if $(GPU),--gpu $(GPU)) $(if $(WEIGHTS),--weights $(WEIGHTS)) \
  $(if $(ITERS),--iters=$(ITERS)) $(if $(TEST_EVERY),--test-every=$(TEST_EVERY)) \
  $(if $(SHORT),--short) $(if $(PLAN),--plan) $(if $(RAY_ADDRESS),--ray-address $(RAY_ADDRESS)) \
  $(if $(REPORT_ONLY),--report-only) $(if $(JOBS),--jobs $(JOBS))

paper: built $(if $(RAY_ADDRESS),paper-ray-deps)
	@exec $(PY) -m paper.run $(PAPER_FLAGS)  # exec: make is the parent the runner follows

voc-submission: built
	@test -n "$(WEIGHTS)" && test -n "$(YEAR)" || { echo "usage: make voc-submission WEIGHTS=file.caffemodel YEAR=2011|2012 [DATA=datasets] [NET=voc-fcn8s] [WIDTH=1.0] [GPU=0] [OUT=runs/voc-submission-YEAR]"; exit 2; }
	@$(PY) -m paper.submission --weights $(WEIGHTS) --year $(YEAR) \
	  --data $(DATA_DIR) $(if $(NET),--net $(NET)) $(if $(WIDTH),--width $(WIDTH)) \
	  $(if $(GPU),--gpu $(GPU)) $(if $(OUT),--out $(OUT))

paper-ray-deps: $(VENV)/.ray-installed
$(VENV)/.ray-installed: requirements-ray.txt | venv
	@echo "paper: installing Ray (requirements-ray.txt) into $(VENV)"
	@$(PY) -m pip install -q --disable-pip-version-check -r requirements-ray.txt
	@touch $@

test-paper: setup
	@$(PY) -m pytest -q tests/test_paper_report.py tests/test_paper_submission.py

test-paper-ray: setup paper-ray-deps
	@$(PY) -m pytest -q tests/test_paper_report_ray.py

# The suite runs the Ray cluster test too (it broke unseen while it ran only on request).
test: paper-ray-deps
