# Training, scoring and inference (training/ and evaluation/; see their READMEs).
#   make voc-fcn8s [DATA=datasets] [GPU=0] [ITERS=n] [TEST_EVERY=n] [WEIGHTS=base.caffemodel|none]
#                  [WIDTH=1.0] [LR=x] [LR_DROP=x] [MOMENTUM=x] [RUNS=runs]
# trains the experiment and every stage it starts from (voc-fcn8s: 32s -> 16s -> 8s), each
# stage skipped when runs/<stage>/final.caffemodel exists, then scores the last one.
# (DATA and RUNS are read as DATA_DIR and RUNS_DIR, defined in the Makefile; the width
# default is kept private: a global WIDTH would change what `make nets` writes)
TRAIN_WIDTH = $(or $(WIDTH),1.0)

# TRAIN_EXPERIMENTS: every registered experiment, from mk/experiments.generated (written by
# `make nets` from nets/experiments.py).
include mk/experiments.generated

TRAIN_FLAGS = --data $(call q,$(DATA_DIR)) --runs $(call q,$(RUNS_DIR)) --width=$(TRAIN_WIDTH) \
  $(if $(GPU),--gpu $(GPU)) $(if $(ITERS),--iters=$(ITERS)) \
  $(if $(TEST_EVERY),--test-every=$(TEST_EVERY)) $(if $(WEIGHTS),--weights $(call q,$(WEIGHTS))) \
  $(if $(LR),--lr=$(LR)) $(if $(LR_DROP),--lr-drop=$(LR_DROP)) \
  $(if $(MOMENTUM),--momentum=$(MOMENTUM)) $(if $(SEED),--seed=$(SEED)) \
  $(if $(CHECK_DATA),--check-data)

.PHONY: $(TRAIN_EXPERIMENTS) score infer curves check-data
$(TRAIN_EXPERIMENTS): built
	@exec $(PY) -m training.schedule $@ $(TRAIN_FLAGS)  # exec: make is the parent it follows

# make score NET=voc-fcn8s WEIGHTS=runs/voc-fcn8s/final.caffemodel [SPLIT=seg11valid] [DATA=…]
#            [WIDTH=…] [GPU=…] [SAVE=folder for palette PNGs] [JSON=scores.json] [FORCE=1: write over them]
#            [MASK=fg|bg|both: masked test inputs, Table 8]
#            [ALLOW_MISSING="layer …": layers the weights may lack; every other one must be there]
score: built
	@test -n "$(NET)" && test -n "$(WEIGHTS)" || { echo "usage: make score NET=experiment WEIGHTS=file.caffemodel [SPLIT=name] [DATA=$(DATA_DIR)] [WIDTH=1.0] [GPU=0] [SAVE=dir] [JSON=file] [MASK=fg|bg|both] [ALLOW_MISSING=layers]"; exit 2; }
	@$(PY) -m evaluation.score --net $(NET) --weights $(call q,$(WEIGHTS)) --data $(call q,$(DATA_DIR)) \
	  --width=$(TRAIN_WIDTH) $(if $(SPLIT),--split $(SPLIT)) $(if $(GPU),--gpu $(GPU)) \
	  $(if $(SAVE),--save $(call q,$(SAVE))) $(if $(JSON),--json $(call q,$(JSON))) $(if $(FORCE),--force) \
	  $(if $(MASK),--mask $(MASK)) $(foreach layer,$(ALLOW_MISSING),--allow-missing $(layer))

# make infer NET=voc-fcn8s WEIGHTS=file.caffemodel IMAGES="a.jpg folder/" [OUT=runs/infer] [GPU=0]
#            [MEMORY=6G: pictures whose forward would need more go in exact tiles; default half
#            of the available memory]
infer: built
	@test -n "$(NET)" && test -n "$(WEIGHTS)" && test -n "$(IMAGES)" || { echo "usage: make infer NET=experiment|deploy.prototxt WEIGHTS=file.caffemodel IMAGES='image.jpg folder/' [OUT=$(RUNS_DIR)/infer] [WIDTH=1.0] [GPU=0] [MEMORY=6G]"; exit 2; }
	@$(PY) -m evaluation.infer $(IMAGES) --net $(call q,$(NET)) --weights $(call q,$(WEIGHTS)) \
	  --out $(call q,$(or $(OUT),$(RUNS_DIR)/infer)) --width=$(TRAIN_WIDTH) $(if $(GPU),--gpu $(GPU)) \
	  $(if $(MEMORY),--memory $(MEMORY)) $(if $(FORCE),--force) $(foreach layer,$(ALLOW_MISSING),--allow-missing $(layer))

# make curves RUN=runs/voc-fcn32s  ->  runs/voc-fcn32s/curves.png
curves: venv
	@test -n "$(RUN)" || { echo "usage: make curves RUN=$(RUNS_DIR)/<experiment> [OUT=file.png]"; exit 2; }
	@$(PY) -m training.curves $(call q,$(RUN)) $(if $(OUT),--out $(call q,$(OUT)))

# make check-data DATASET=voc SPLIT=train [DATA=datasets]: read every file of a split through
# its data layer and list every bad one (exit 1), cached so unchanged files are read once.
# Training runs of 1000+ iterations do this by themselves before their first step.
check-data: built
	@test -n "$(DATASET)" && test -n "$(SPLIT)" || { echo "usage: make check-data DATASET=voc|nyud|siftflow|pascalcontext SPLIT=name [DATA=$(DATA_DIR)]"; exit 2; }
	@$(PY) -m training.check_data $(DATASET) $(SPLIT) --data $(call q,$(DATA_DIR))
