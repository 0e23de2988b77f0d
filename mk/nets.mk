# Net generation (nets/): `make nets` rewrites nets/<experiment>/*.prototxt.
.PHONY: nets
nets: setup
	@$(PY) -m nets.generate $(if $(DATA),--data-root $(DATA)) $(if $(WIDTH),--width $(WIDTH))
