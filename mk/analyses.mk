# The paper's analyses beside its experiments (issue 17; the experiments themselves are
# training targets in mk/train.mk). See nets/README.md and analyses/README.md.
#   make iu-bounds DATA=datasets [SPLIT=seg11valid] [METHOD=mode|nearest] [JSON=file]
#   make shift-stitch [WIDTH=0.125] [SIZE=96]   (Section 3.2 on VGG16's first two stages)
#   make class-weights DATA=datasets            (balance-fcn32s's loss weights; training
#                                                computes them when they are missing)
#   make table2-scores [RUNS=runs]              (best seg test of each Table 2 run, 6.2's regimes)
#   make sampling-figure [RUNS=runs] [OUT=png]  (Figure 5: mean IU vs iterations and time)
#   make table8-scores DATA=datasets [RUNS=runs] (Table 8 from the mask-* runs)
#   make table1-nets [SIZE=500]                 (Table 1's architecture columns)
.PHONY: iu-bounds shift-stitch class-weights table2-scores sampling-figure

iu-bounds: built
	@$(PY) -m analyses.iu_bounds --data $(DATA_DIR) \
	  $(if $(SPLIT),--split $(SPLIT)) $(if $(METHOD),--method $(METHOD)) $(if $(JSON),--json $(JSON))

shift-stitch: built
	@$(PY) -m nets.shift_stitch $(if $(WIDTH),--width $(WIDTH)) $(if $(SIZE),--size $(SIZE))

class-weights: built
	@$(PY) -m training.balance --data $(DATA_DIR)

table2-scores: built
	@$(PY) -m analyses.reports table2 --runs $(RUNS_DIR)

sampling-figure: built
	@$(PY) -m analyses.reports figure5 --runs $(RUNS_DIR) $(if $(OUT),--out $(OUT))

# make table1-nets [SIZE=500]: Table 1's conv. layers, parameters, rf size, max stride and
# forward time, computed from the generated nets (full width: minutes and ~4 GiB on a CPU)
.PHONY: table1-nets
table1-nets: built
	@$(PY) -m nets.table1 $(if $(SIZE),--size $(SIZE))

# make table8-scores DATA=datasets [RUNS=runs] [WIDTH=1.0]: Table 8 from the mask-* runs
# (Reference-FG / -BG score mask-reference's weights with masked test inputs)
.PHONY: table8-scores
table8-scores: built
	@$(PY) -m analyses.reports table8 --data $(DATA_DIR) \
	  --runs $(RUNS_DIR) $(if $(WIDTH),--width $(WIDTH))
