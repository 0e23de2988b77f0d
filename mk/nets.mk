# Net generation (nets/): `make nets` rewrites nets/<experiment>/*.prototxt.
.PHONY: nets
nets: built
	@$(PY) -m nets.generate $(if $(DATA),--data-root $(DATA)) $(if $(WIDTH),--width $(WIDTH))
