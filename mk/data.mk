# Datasets (data/) and data layers (layers/). The data root is DATA (default: datasets;
# targets read it as DATA_DIR, defined in the Makefile),
# laid out as the experiments read it: sbdd/dataset, pascal/VOC2011, pascal/VOC2010,
# pascal-context, nyud, sift-flow. See data/README.md.
#   make data-fetch DATASET=voc|nyud|siftflow|pascalcontext [DATA=datasets]
#   make data-splits DATASET=… [SPLITS_MAT=splits.mat] [TEST_LIST=file]   (re-derive, check)
#   make lmdb DATASET=voc|sbdd|nyud|siftflow|pascalcontext SPLIT=… [OUT=dir]
#   make sbdd-png                  SBD cls/*.mat → palette PNGs beside them
#   make synthetic DATASET=… [OUT=synthetic] [N_TRAIN=20] [N_VAL=5] [SIZE="64 80"] [SEED=0] [FORCE=1]
#   make bench-data                images/s of each layer, prefetch off / thread / process
#   make test-data                 this area's tests
.PHONY: data-fetch data-splits lmdb sbdd-png synthetic bench-data test-data

data-fetch: venv
	@test -n "$(DATASET)" || { echo "usage: make data-fetch DATASET=voc|nyud|siftflow|pascalcontext [DATA=$(DATA_DIR)]"; exit 2; }
	@$(PY) -m data.fetch $(DATASET) --root $(call q,$(DATA_DIR))

data-splits: venv
	@test -n "$(DATASET)" || { echo "usage: make data-splits DATASET=voc|nyud|siftflow|pascalcontext [SPLITS_MAT=…] [TEST_LIST=…]"; exit 2; }
	@$(PY) -m data.splits $(DATASET) --root $(call q,$(DATA_DIR)) $(if $(SPLITS_MAT),--splits-mat $(call q,$(SPLITS_MAT))) $(if $(TEST_LIST),--test-list $(call q,$(TEST_LIST)))

lmdb: built
	@test -n "$(DATASET)" -a -n "$(SPLIT)" || { echo "usage: make lmdb DATASET=voc|sbdd|nyud|siftflow|pascalcontext SPLIT=name [DATA=$(DATA_DIR)] [OUT=dir]"; exit 2; }
	@$(PY) -m data.lmdb_pack $(DATASET) $(SPLIT) --root $(call q,$(DATA_DIR)) $(if $(OUT),--out $(call q,$(OUT)))

sbdd-png: venv
	@$(PY) -m data.convert_sbdd $(call q,$(DATA_DIR)/sbdd/dataset)

synthetic: venv
	@test -n "$(DATASET)" || { echo "usage: make synthetic DATASET=voc|nyud|siftflow|pascalcontext|classification [OUT=synthetic]"; exit 2; }
	@$(PY) -m data.synthetic $(DATASET) $(call q,$(or $(OUT),synthetic)) --n-train $(or $(N_TRAIN),20) --n-val $(or $(N_VAL),5) --size $(or $(SIZE),64 80) --seed $(or $(SEED),0) $(if $(FORCE),--force)

bench-data: setup
	@$(PY) -m bench.data_layers

test-data: setup
	@$(PY) -m pytest -q tests/test_data_*.py tests/test_layers_*.py
