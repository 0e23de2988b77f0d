# The whole method in miniature on CPU (demo/run.py): `make demo` [DEMO_OUT=runs/demo]
# [DEMO_QUICK=1 for the shortened run the tests use]. A second run reuses finished stages.
.PHONY: demo
demo: setup
	@$(PY) -m demo.run $(if $(DEMO_OUT),--out $(call q,$(DEMO_OUT))) $(if $(DEMO_QUICK),--quick)
