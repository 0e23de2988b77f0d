"""The net generators: the release's bytes, fresh committed files, real shapes, Table 1."""

import hashlib

import caffe
import pytest
from caffe.proto import caffe_pb2
from google.protobuf import text_format

from nets.analysis import geometry, learned_parameter_count
from nets.experiments import EXPERIMENTS, Experiment, build
from nets.generate import NETS_DIR, write_experiment
from nets.solver_settings import SolverSettings, solver_prototxt

# sha256 of every generated train/val/trainval/test net and solver in the original release
RELEASE_SHA256 = {
    "nyud-fcn32s-color-d/solver.prototxt": "91d239f98fc7dfa5ab7a354a08bd5a28c86c41e9973a7f42d33b3e6e32427d8e",
    "nyud-fcn32s-color-d/test.prototxt": "c33345b78563490d3563f94d168f9098c4edc660ce8bbd9739ce49afc10f1576",
    "nyud-fcn32s-color-d/trainval.prototxt": "dbf64806932927ecaa28e3c13439b46859b611ef121a073f634d1cfb449411bb",
    "nyud-fcn32s-color-hha/solver.prototxt": "bdf5e670dfa4cdb59b8ef3e98107e27901755e55a0cee24dce756e1f9b5dd312",
    "nyud-fcn32s-color-hha/test.prototxt": "df9b75ff5284fbb29257bee43ae58ee2d20b13fa4193b78b0c0e48331d0a250e",
    "nyud-fcn32s-color-hha/trainval.prototxt": "931faa59bac8c63e08092077f1a080e904032baf247491a54223164581fae806",
    "nyud-fcn32s-color/solver.prototxt": "91d239f98fc7dfa5ab7a354a08bd5a28c86c41e9973a7f42d33b3e6e32427d8e",
    "nyud-fcn32s-color/test.prototxt": "7612840df39ddab8bdb8b1a8bb7f9a7650e4dc1aa7791401638d5a3715d4aa23",
    "nyud-fcn32s-color/trainval.prototxt": "00900c24f08e21fe0fcee3c540d0962c364e578912e5fccde3a0ba814e05bb2a",
    "nyud-fcn32s-hha/solver.prototxt": "91d239f98fc7dfa5ab7a354a08bd5a28c86c41e9973a7f42d33b3e6e32427d8e",
    "nyud-fcn32s-hha/test.prototxt": "dc2f3f23866df2b70b1cc54c8b97ad4cb9fd4920b7459e7650c38b428d0e5345",
    "nyud-fcn32s-hha/trainval.prototxt": "9ddcbb05c55d3d4743ba89ec207235ea1e007b11de634ddd1f00f520d074d575",
    "pascalcontext-fcn16s/solver.prototxt": "6c31b141a738647f87dde0001fd2c2258bf8d45cb6f16ed37c9804ada9f8c88f",
    "pascalcontext-fcn16s/train.prototxt": "5394a22746301383556e611ffaed9295ab796ff92c945ab5189f27d5a953ca77",
    "pascalcontext-fcn16s/val.prototxt": "a874dacd55f4e0d88e464d1b26264aab6936e036cd2dead86068cebb10c3e504",
    "pascalcontext-fcn32s/solver.prototxt": "c8d319e7ff0bd10ccb614d113dd258eeaee4454f62833ca7e090217f3aa3d01b",
    "pascalcontext-fcn32s/train.prototxt": "cf6cd0fd68eae390fe11189fdd9bb1d33a2cb9bce9b1b01106e34ea8f4dddb2f",
    "pascalcontext-fcn32s/val.prototxt": "c87f86eed3df1c813ac7975f135772177d32fb3348d1ba372fa46d9aa22b373f",
    "pascalcontext-fcn8s/solver.prototxt": "f749583a95fe7cad1567825ed7e59d6a2a0026ce387fd70ff55130a6a63799ee",
    "pascalcontext-fcn8s/train.prototxt": "8c21cf4a256367a6b09cbdf54bc35c8dce4dc9c62d800379aa83238744e128d0",
    "pascalcontext-fcn8s/val.prototxt": "9b1da4b4262d70e301d6435a46ec837050b54891d4aaa064cd813598b7a2dc7b",
    "siftflow-fcn16s/solver.prototxt": "66af5c190d682d4f655b0cf0b31f886b269ba3b7cb9ce721963c12a5721198e7",
    "siftflow-fcn16s/test.prototxt": "506ef87d9b8e3c0fabb9c30b06089d9b3ce00ef174ed63912305fc59919f6d77",
    "siftflow-fcn16s/trainval.prototxt": "c285dbca0bf3f76781b82384e9ae3b0c67987a60cbf49f31bea4c140658bd520",
    "siftflow-fcn32s/solver.prototxt": "c8b3edb5773dc49fa0bd20293eb3162461780b9f986fe31154f6dc99142601d6",
    "siftflow-fcn32s/test.prototxt": "436ad2d33bd108b19570c4d1d9c1ae01a693c902e6fe8e8bfa9a0b2c3cbf80e3",
    "siftflow-fcn32s/trainval.prototxt": "304ee9631e231be319b78aaae86d7fc0774c9dcca3fe85b095128a50b5025f24",
    "siftflow-fcn8s/solver.prototxt": "66af5c190d682d4f655b0cf0b31f886b269ba3b7cb9ce721963c12a5721198e7",
    "siftflow-fcn8s/test.prototxt": "c72bb3773f7b4a5fac6acc98bff5037644d51f57747b98224113e1f3c9e0827b",
    "siftflow-fcn8s/trainval.prototxt": "781f04af03c5c257593318ad4018af84d52bf7c1f7ac8d6ce8c0a89ca4c6f028",
    "voc-fcn-alexnet/solver.prototxt": "b9984d832c943f7686f4ca136b661d9c853bb29ab4c017c2ae8284f4f67676df",
    "voc-fcn-alexnet/train.prototxt": "6bf85b119fba7429e150a4c91a0e5a3d7351e98433c6a2d46b182ccfe84ab419",
    "voc-fcn-alexnet/val.prototxt": "0b82d428241f19ed905f9b6b487e8dabc97f25fac815f65a002c2704294831d6",
    "voc-fcn16s/solver.prototxt": "c877c6cefe96dfffaa4c22af5db76a45a7190ba7b0447445cd495565ff34a121",
    "voc-fcn16s/train.prototxt": "59f3e5a3787feb515f19aa6f9c6f35492098122d90eae3cff348d650c6bfdcc9",
    "voc-fcn16s/val.prototxt": "7573abda0b1b701e5305bc97eb357b168ffc98097d861a851f15b52a9f1cbc79",
    "voc-fcn32s/solver.prototxt": "5648bc67aaa9d928a4845028e0b445d7043dc7140f12e7aca0da1583b2ab8aad",
    "voc-fcn32s/train.prototxt": "7bc33447253918600feada2ac214ca1f67cbe612ec67fdd596ec3c7f7168328e",
    "voc-fcn32s/val.prototxt": "fd7d3cd56d960a5129260cbd96d9e287161915dfe8fb34ad27cd8d2a4c11a624",
    "voc-fcn8s-atonce/solver.prototxt": "d997aa800d1c7417de1e0a6bf5c131a5d6420016f07fed99de77bb914f82bc2e",
    "voc-fcn8s-atonce/train.prototxt": "0514f149d8df66641459c51da0dff71344dcb5eef22ebf3cd1ef80869a09e97e",
    "voc-fcn8s-atonce/val.prototxt": "c791f892dd0fe9b9bb22e21bcc8d4e8ae9a3933b5b763e9a29fb8363cb4e740d",
    "voc-fcn8s/solver.prototxt": "108600b7f42d0bd09105ea52895b234dd27d9e5b21c6ca2bdc6c49bf7f0d6a60",
    "voc-fcn8s/train.prototxt": "e2984e1383f2fddeab41b0d695a2283808a6958e370dfd0d06dc80e185eed70f",
    "voc-fcn8s/val.prototxt": "c3017fe79b7472075576982abec5ce1ccd35c098f306580c0f6a02425b9b9f6f",
}
# the release's hand-written voc-fcn8s deploy: what it declares, layer by layer
RELEASE_FCN8S_DEPLOY_LAYERS = (
    "input conv1_1 relu1_1 conv1_2 relu1_2 pool1 conv2_1 relu2_1 conv2_2 relu2_2 pool2 "
    "conv3_1 relu3_1 conv3_2 relu3_2 conv3_3 relu3_3 pool3 conv4_1 relu4_1 conv4_2 relu4_2 "
    "conv4_3 relu4_3 pool4 conv5_1 relu5_1 conv5_2 relu5_2 conv5_3 relu5_3 pool5 fc6 relu6 "
    "fc7 relu7 score_fr upscore2 score_pool4 score_pool4c fuse_pool4 upscore_pool4 "
    "score_pool3 score_pool3c fuse_pool3 upscore8 score").split()
SIZES = [(500, 500), (375, 500), (333, 511), (1, 1)]  # 1×1: pad 100 lets any size through


@pytest.fixture(scope="module")
def release_like(tmp_path_factory):
    """Every experiment generated with the release's defaults into a fresh folder."""
    out = tmp_path_factory.mktemp("nets")
    return {name: write_experiment(name, out / name) for name in EXPERIMENTS}


def test_every_release_file_is_regenerated_byte_for_byte(release_like):
    assert len(RELEASE_SHA256) == 45
    for relpath, digest in RELEASE_SHA256.items():
        experiment, filename = relpath.split("/")
        path = release_like[experiment]["train"].parent / filename
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, relpath


def test_committed_files_are_fresh(release_like):
    for name, paths in release_like.items():
        for path in paths.values():
            committed = NETS_DIR / name / path.name
            assert committed.read_bytes() == path.read_bytes(), (
                f"{committed} is stale: run `make nets`")


def test_every_solver_file_is_the_release_file_and_the_committed_one():
    """The solver files alone, no net built (a second, where the two tests above take
    minutes): every regime's rate, momentum and batch as the release writes them."""
    for name, exp in EXPERIMENTS.items():
        text = solver_prototxt(exp.solver).encode()
        assert text == (NETS_DIR / name / "solver.prototxt").read_bytes(), name
        digest = RELEASE_SHA256.get(f"{name}/solver.prototxt")
        assert digest in (None, hashlib.sha256(text).hexdigest()), name
    assert sum(f"{name}/solver.prototxt" in RELEASE_SHA256 for name in EXPERIMENTS) == 15


def test_a_solver_file_comments_the_regime_it_sets():
    """An override (MOMENTUM=, ITER_SIZE=) keeps the comments true, as the release writes
    them: high momentum from 0.99 up, accumulation above one image."""
    heavier = solver_prototxt(SolverSettings(momentum=0.995, iter_size=2))
    assert "# high momentum\nmomentum: 0.995\n" in heavier
    assert "# gradient accumulation\niter_size: 2\n" in heavier
    lighter = solver_prototxt(SolverSettings(momentum=0.98))
    assert "# standard momentum\nmomentum: 0.98\n" in lighter
    assert "# no gradient accumulation\niter_size: 1\n" in lighter
    # rates as the release writes them: below 1e-3 in exponent form, from it up as decimals
    for rate, written in ((2.5e-11, "2.5e-11"), (1e-4, "1e-4"), (1e-3, "0.001"), (0.01, "0.01")):
        assert f"\nbase_lr: {written}\n" in solver_prototxt(SolverSettings(base_lr=rate))


def test_make_targets_are_the_registry():
    """mk/experiments.generated lists exactly the registered experiments (`make nets` writes it)."""
    from nets.generate import MAKE_TARGETS, make_targets

    assert MAKE_TARGETS.read_text() == make_targets(), f"{MAKE_TARGETS} is stale: run `make nets`"
    listed = MAKE_TARGETS.read_text().split(":=", 1)[1].replace("\\", " ").split()
    assert listed == list(EXPERIMENTS)


def test_fcn8s_deploy_matches_the_release_declaration():
    net = caffe_pb2.NetParameter()
    text_format.Merge((NETS_DIR / "voc-fcn8s/deploy.prototxt").read_text(), net)
    assert [layer.name for layer in net.layer] == RELEASE_FCN8S_DEPLOY_LAYERS
    assert list(net.layer[0].input_param.shape[0].dim) == [1, 3, 500, 500]
    assert not any(layer.type in ("Dropout", "SoftmaxWithLoss") for layer in net.layer)
    train = build("voc-fcn8s", "train")
    deploy_params = {layer.name: layer for layer in net.layer if layer.type != "Input"}
    for layer in train.layer:  # every deploy layer is the train layer, unchanged
        if layer.name in deploy_params:
            assert deploy_params[layer.name] == layer, layer.name


# sha256 of the release's hand-written voc-fcn8s deploy.prototxt once parsed and serialized
# deterministically: equal messages give equal digests whatever the text's spacing or comments
RELEASE_FCN8S_DEPLOY_MESSAGE_SHA256 = (
    "5cebf4d89d5db6c6d2794d5863d12762ff85474164c44bca648312ff9b0aa7ab")


def test_fcn8s_deploy_equals_the_release_file_as_a_message():
    ours = caffe_pb2.NetParameter()
    text_format.Merge((NETS_DIR / "voc-fcn8s/deploy.prototxt").read_text(), ours)
    digest = hashlib.sha256(ours.SerializeToString(deterministic=True)).hexdigest()
    assert digest == RELEASE_FCN8S_DEPLOY_MESSAGE_SHA256


def test_data_root_and_width_change_only_what_they_should(tmp_path):
    paths = write_experiment("voc-fcn32s", tmp_path, width=0.125, data_root="/datasets")
    text = paths["train"].read_text()
    assert "/datasets/sbdd/dataset" in text and "../data" not in text
    assert "num_output: 8\n" in text and "num_output: 512\n" in text  # 64/8 and 4096/8
    assert 'train_net: "train.prototxt"' in paths["solver"].read_text()


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_deploy_score_has_the_input_size(name, tmp_path):
    exp = EXPERIMENTS[name]
    net = caffe.Net(str(write_experiment(name, tmp_path, width=0.0625)["deploy"]), caffe.TEST)
    for size in SIZES:
        for blob in exp.input_blobs:
            net.blobs[blob].reshape(1, net.blobs[blob].data.shape[1], *size)
        net.reshape()
        net.forward()
        for score in exp.score_blobs:
            assert net.blobs[score].data.shape == (1, dict(exp.heads)[score[5:]]
                                                   if exp.dataset == "siftflow"
                                                   else exp.num_classes, *size), (name, size)


@pytest.mark.parametrize("name, millions", [
    ("voc-fcn-alexnet", 57), ("voc-fcn32s", 134), ("voc-fcn-googlenet", 6)])
def test_parameter_counts_match_table_1(name, millions, tmp_path):
    deploy = tmp_path / "deploy.prototxt"
    net_param = build(name, "deploy", size=(1, 1))  # full width, tiny activations
    deploy.write_text(str(net_param))
    net = caffe.Net(str(deploy), caffe.TEST)
    in_caffe = sum(b.data.size for name, blobs in net.params.items() for b in blobs
                   if net.layer_dict[name].type != "Deconvolution")
    assert learned_parameter_count(net_param) == in_caffe
    assert round(in_caffe / 1e6) == millions


@pytest.mark.parametrize("name, receptive_field, top, discarded_pool", [
    ("voc-fcn-alexnet", 355, "fc7", 0),
    ("voc-fcn32s", 404, "fc7", 0),
    # Table 1 counts GoogLeNet's final 7×7 average pooling, which the FCN discards
    ("voc-fcn-googlenet", 907, "inception_5b/output", 7)])
def test_receptive_field_and_stride_match_table_1(name, receptive_field, top, discarded_pool):
    g = geometry(build(name, "deploy"), top)
    assert g.stride == 32
    assert g.receptive_field + max(discarded_pool - 1, 0) * g.stride == receptive_field


def test_skips_and_at_once_scaling_are_declared_once():
    staged, at_once = build("voc-fcn8s", "train"), build("voc-fcn8s-atonce", "train")
    scales = {x.name: x.scale_param.filler.value for x in at_once.layer if x.type == "Scale"}
    assert scales == pytest.approx({"scale_pool4": 0.01, "scale_pool3": 0.0001})
    assert not any(x.type == "Scale" for x in staged.layer)
    fixed = build("voc-fcn32s-fixed", "train")
    learning = [x.name for x in fixed.layer if any(p.lr_mult for p in x.param)]
    assert learning == ["score_fr"]


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_declared_stride_is_the_final_upsampling(name):
    deconvs = [x for x in build(name, "deploy").layer if x.type == "Deconvolution"]
    assert deconvs[-1].convolution_param.stride[0] == EXPERIMENTS[name].stride


def test_a_truncated_net_must_declare_its_layer_stride():
    with pytest.raises(ValueError, match="pool4 alone gives stride 16"):
        Experiment("bad", "voc", stride=32, truncate="pool4")
