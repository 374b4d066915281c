"""Synthetic inputs for models that do not take images (issue 10 item 4): token ids below the
vocabulary, attention masks of ones, position ids as a range; solve of a float BERT-like ONNX
export without calibration data; solve errors name the layer and the cause."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.cli import main
from hwsim.graph.zoo import load_model
from hwsim.sim.boundary import describe_inputs, random_inputs
from hwsim.solve.data import synthetic

VOCAB, POSITIONS, D = 50, 32, 16


def _bert_like(path) -> str:
    """input_ids, attention_mask, position_ids (batch, sequence) -> one attention block, as an
    HF-style export writes it: the mask becomes (1 - mask) * -10000 added to the scores."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)

    def w(name, *shape):
        return numpy_helper.from_array((rng.standard_normal(shape) / np.sqrt(shape[0])).astype(np.float32), name)

    inits = [w("tok", VOCAB, D), w("pos", POSITIONS, D), w("wq", D, D), w("wk", D, D), w("wv", D, D), w("wo", D, D),
             numpy_helper.from_array(np.array([1], np.int64), "ax1"),
             numpy_helper.from_array(np.array(1.0, np.float32), "one"),
             numpy_helper.from_array(np.array(-10000.0, np.float32), "big"),
             numpy_helper.from_array(np.array(0.25, np.float32), "scale")]
    n = helper.make_node
    nodes = [n("Gather", ["tok", "input_ids"], ["t"], name="tok_embed"),
             n("Gather", ["pos", "position_ids"], ["p"], name="pos_embed"),
             n("Add", ["t", "p"], ["h"], name="embed_add"),
             n("MatMul", ["h", "wq"], ["q"], name="q_proj"), n("MatMul", ["h", "wk"], ["k"], name="k_proj"),
             n("MatMul", ["h", "wv"], ["v"], name="v_proj"),
             n("Transpose", ["k"], ["kt"], name="kt", perm=[0, 2, 1]),
             n("MatMul", ["q", "kt"], ["s0"], name="scores"), n("Mul", ["s0", "scale"], ["s1"], name="scaled"),
             n("Cast", ["attention_mask"], ["mf"], name="mask_cast", to=TensorProto.FLOAT),
             n("Unsqueeze", ["mf", "ax1"], ["mu"], name="mask_unsq"),
             n("Sub", ["one", "mu"], ["inv"], name="mask_inv"), n("Mul", ["inv", "big"], ["bias"], name="mask_bias"),
             n("Add", ["s1", "bias"], ["s2"], name="masked"), n("Softmax", ["s2"], ["a"], name="softmax", axis=-1),
             n("MatMul", ["a", "v"], ["c"], name="context"), n("MatMul", ["c", "wo"], ["out"], name="o_proj")]
    ids = [helper.make_tensor_value_info(x, TensorProto.INT64, ["batch", "sequence"])
           for x in ("input_ids", "attention_mask", "position_ids")]
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", "sequence", D])
    graph = helper.make_graph(nodes, "bert_like", ids, [out], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return str(path)


@pytest.fixture(scope="module")
def bert_like(tmp_path_factory):
    return _bert_like(tmp_path_factory.mktemp("bert") / "bert_like.onnx")


def test_ids_masks_and_positions(bert_like):
    g = load_model(bert_like, {"batch": 2, "sequence": 8})
    x = random_inputs(g, np.random.default_rng(0), batch=3)
    assert x["input_ids"].shape == (3, 8) and 0 <= x["input_ids"].min() and x["input_ids"].max() < VOCAB
    assert len(np.unique(x["input_ids"])) > 8  # drawn from the whole vocabulary, not a constant
    np.testing.assert_array_equal(x["attention_mask"], np.ones((3, 8), np.int64))
    np.testing.assert_array_equal(x["position_ids"], np.broadcast_to(np.arange(8), (3, 8)))
    assert describe_inputs(g) == (f"input_ids ids in [0, {VOCAB}), attention_mask ones, "
                                  "position_ids 0, 1, 2, ...")


def test_zoo_token_ids_cover_the_vocabulary():
    g = load_model("minilm-l6", {"layers": 1, "sequence": 16})
    x = random_inputs(g, np.random.default_rng(0))
    assert x["input_ids"].max() >= 100 and x["input_ids"].max() < 30522  # was: always below 100
    assert x["token_type_ids"].max() < 2


def test_solve_a_float_bert_export_without_calibration_data(bert_like, tmp_path, capsys):
    code = main(["solve", bert_like, "--target", "int8-npu", "--shape", "batch=1,sequence=8", "--budget",
                 "energy_j<=1", "--samples", "4", "--quiet", "--cache-dir", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "status optimal" in out and "attention_mask ones" in out
    assert "q_proj" in out and "o_proj" in out and "warning" not in err.lower()


def test_solve_of_the_bundled_tiny_bert(tmp_path, capsys):
    from solve_paths import ROOT

    model = str(ROOT / "tests" / "data" / "tiny_bert.onnx")
    assert main(["solve", model, "--target", "int8-npu", "--shape", "batch=1,sequence=16", "--budget",
                 "energy_j<=1", "--samples", "2", "--quiet", "--cache-dir", str(tmp_path)]) == 0
    assert "input_ids ids in [0, 64)" in capsys.readouterr().out


def test_synthetic_data_names_what_it_drew(bert_like):
    g = load_model(bert_like, {"batch": 2, "sequence": 8})
    assert "attention_mask ones" in synthetic(g, 2).source


def test_a_layer_without_usable_choice_is_named_with_the_cause(tmp_path):
    from hwsim.errors import ConfigError
    from hwsim.solve import plan_from, tables

    tb = tables("gemm", "int8-npu", "w=int8,int4;a=int8", "proxy", shapes={"m": 4, "k": 8, "n": 8},
                cache_dir=tmp_path)
    tb.sensitivity.values[:] = np.nan
    with pytest.raises(ConfigError, match=r"layer '\w+' has no usable choice: its proxy is not finite"):
        plan_from(tb, {"energy_j": 1.0})


def test_a_scalar_calibration_input_is_shared_by_every_sample(tmp_path, capsys):
    """A 0-d member (a run-time scale, a sample rate) has no sample axis: it is one value for all
    samples (was an internal IndexError from slicing it); a file of scalars only is refused."""
    import onnx
    from onnx import TensorProto as TP
    from onnx import helper as h
    from onnx import numpy_helper as nh

    from hwsim.errors import InputDataError
    from hwsim.graph.onnx import load_onnx
    from hwsim.solve.data import load_npz

    rng = np.random.default_rng(0)
    node = h.make_node("QLinearMatMul", ["a", "a_s", "a_z", "b", "b_s", "b_z", "y_s", "y_z"], ["y"], name="qmm")
    inits = [nh.from_array(np.uint8(128), "a_z"), nh.from_array(rng.integers(0, 255, (8, 3)).astype(np.uint8), "b"),
             nh.from_array(np.float32(0.02), "b_s"), nh.from_array(np.uint8(128), "b_z"),
             nh.from_array(np.float32(0.5), "y_s"), nh.from_array(np.uint8(128), "y_z")]
    model = h.make_model(h.make_graph([node], "g", [h.make_tensor_value_info("a", TP.UINT8, [4, 8]),
                                                    h.make_tensor_value_info("a_s", TP.FLOAT, [])],
                                      [h.make_tensor_value_info("y", TP.UINT8, [4, 3])], inits),
                         opset_imports=[h.make_opsetid("", 13)])
    path, calib = str(tmp_path / "q.onnx"), str(tmp_path / "c.npz")
    onnx.save(model, path)
    np.savez(calib, a=rng.integers(0, 255, (4, 8)).astype(np.uint8), a_s=np.float32(0.05))
    data = load_npz(calib, load_onnx(path, {}), samples=2)
    assert data.samples == 2 and data.inputs["a"].shape == (2, 8) and data.inputs["a_s"].shape == ()
    assert main(["solve", path, "--target", "int8-npu", "--calib", calib, "--budget", "energy_j<=1"]) == 0
    assert "status optimal" in capsys.readouterr().out
    scalar = h.make_model(h.make_graph([h.make_node("Relu", ["x"], ["y"])], "s", [h.make_tensor_value_info("x", TP.FLOAT, [])],
                                       [h.make_tensor_value_info("y", TP.FLOAT, [])]), opset_imports=[h.make_opsetid("", 13)])
    onnx.save(scalar, path)
    np.savez(calib, x=np.float32(0.05))
    with pytest.raises(InputDataError, match="every input is a scalar"):
        load_npz(calib, load_onnx(path, {}))
