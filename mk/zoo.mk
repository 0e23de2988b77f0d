# Model zoo export/import, bit-for-bit comparison, release check (zoo/; see zoo/README.md).
.PHONY: zoo zoo-fetch compare release-check

zoo: built
	@test -n "$(NET)" && test -n "$(WEIGHTS)" || { echo "usage: make zoo NET=voc-fcn8s WEIGHTS=file.caffemodel [OUT=runs/zoo/NET] [LOG=train.log] [URL=https://...]"; exit 2; }
	@$(PY) -m zoo.export --net $(NET) --weights $(call q,$(WEIGHTS)) --out $(call q,$(or $(OUT),$(RUNS_DIR)/zoo/$(NET))) \
	  $(if $(LOG),--log $(call q,$(LOG))) $(if $(URL),--url $(URL)) $(if $(FORCE),--force)

zoo-fetch: built
	@test -n "$(SRC)" || { echo "usage: make zoo-fetch SRC=zoo-folder-or-caffemodel-url [DEST=path]"; exit 2; }
	@$(PY) -m zoo.fetch $(call q,$(SRC)) $(if $(DEST),--dest $(call q,$(DEST)))

compare: built
	@if test -n "$(NET_A)"; then \
	  $(PY) -m compare.cli --net-a $(call q,$(NET_A)) $(if $(WEIGHTS_A),--weights-a $(call q,$(WEIGHTS_A))) \
	    $(if $(NET_B),--net-b $(call q,$(NET_B))) $(if $(WEIGHTS_B),--weights-b $(call q,$(WEIGHTS_B))) --input $(INPUT); \
	elif test -n "$(A)" && test -n "$(B)"; then $(PY) -m compare.cli $(call q,$(A)) $(call q,$(B)); \
	else echo "usage: make compare A=file B=file  (prototxt, caffemodel, segmentation PNG, run folder or score.json)"; \
	  echo "       make compare NET_A=deploy.prototxt WEIGHTS_A=a.caffemodel [NET_B=...] WEIGHTS_B=b.caffemodel INPUT=image.jpg"; exit 2; fi; \
	status=$$?; case $$status in 0) ;; 1) echo "make compare: DIFFERENT (compare.cli exit 1)" >&2;; \
	  *) echo "make compare: BAD INPUT (compare.cli exit $$status)" >&2;; esac; \
	test -z "$(COMPARE_STATUS)" || echo $$status > $(call q,$(COMPARE_STATUS)); exit $$status

release-check: built
	@test -n "$(IMAGE)" && test -n "$(OUTPUT)" && test -n "$(WEIGHTS)" || { echo "usage: make release-check IMAGE=demo/image.jpg OUTPUT=demo/output.png WEIGHTS=fcn8s-heavy-pascal.caffemodel [LABEL=demo/label.png] [FETCH=1]   (zoo/README.md: where to get them)"; exit 2; }
	@$(PY) -m compare.release_check --image $(call q,$(IMAGE)) --output $(call q,$(OUTPUT)) --weights $(call q,$(WEIGHTS)) \
	  $(if $(LABEL),--label $(call q,$(LABEL))) $(if $(FETCH),--download)
