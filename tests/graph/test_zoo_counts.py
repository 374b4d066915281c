"""Exact MAC and parameter counts of the bundled zoo (published numbers, REFERENCES.md)."""

import pytest

from hwsim.errors import ConfigError, UnknownModelError
from hwsim.graph.zoo import bundled_models, load_model

PUBLISHED = {
    "resnet18": (1_814_073_344, 11_689_512),
    "resnet50": (4_089_184_256, 25_557_032),
    "mobilenet_v1": (568_740_352, 4_231_976),  # Howard et al. 2017 Table 8: 569 M mult-adds, 4.2 M
    "mobilenet_v2": (300_774_272, 3_504_872),
    "bert-base": (None, 109_482_240),
    "vit-b16": (17_563_828_224, 86_567_656),
    "llama2-7b": (None, 6_738_415_616),
    "alexnet": (None, 60_965_224),  # Krizhevsky et al. 2012 with groups (Caffe bvlc_alexnet)
    "vgg16": (15_470_264_320, 138_357_544),  # torchvision.models.vgg16
}


def test_conv_only_counts_match_eyeriss():
    """ISSCC'16 Eyeriss: AlexNet CONV 2.3 M weights / 666 M MACs, VGG-16 CONV 14.7 M / 15.3 G."""
    a, v = load_model("alexnet:classifier=false"), load_model("vgg16:classifier=false")
    assert a.total_macs == 665_784_864 and round(a.total_params / 1e5) == 23
    assert round(v.total_macs / 1e8) == 153 and round(v.total_params / 1e5) == 147


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_counts(name):
    macs, params = PUBLISHED[name]
    g = load_model(name)
    assert g.total_params == params
    if macs is not None:
        assert g.total_macs == macs


def test_every_bundled_model_builds_and_verifies():
    for name in bundled_models():
        g = load_model(name)
        g.verify()
        assert g.total_macs > 0


def test_bert_macs_scale_with_sequence():
    # linear layers are linear in sequence length, attention matmuls quadratic
    m128 = load_model("bert-base:sequence=128").total_macs
    m256 = load_model("bert-base:sequence=256").total_macs
    lin = 12 * (4 * 768 * 768 + 2 * 768 * 3072)
    att = 12 * 2 * 768  # per (query, key) pair: QK^T and AV over 768 = 12 heads x 64
    pooler = 768 * 768
    for s, m in ((128, m128), (256, m256)):
        assert m == s * lin + s * s * att + pooler


def test_llama_decode_reads_kv_cache_and_counts_attention():
    ctx = 100
    g = load_model(f"llama2-7b:phase=decode,context={ctx}")
    caches = [t for t in g.tensors.values() if t.role == "kv_cache"]
    assert len(caches) == 64 and all(t.shape == (1, 32, ctx, 128) for t in caches)
    linear = 32 * (4 * 4096 * 4096 + 3 * 4096 * 11008) + 4096 * 32000
    attention = 32 * 2 * 32 * 128 * (ctx + 1)
    assert g.total_macs == linear + attention


def test_llama_prefill_batch():
    g = load_model("llama2-7b:phase=prefill,context=16,batch=2,layers=2")
    out = g.tensors[g.outputs[0]]
    assert out.shape == (2, 16, 32000)


def test_gemm_and_conv_single_layer_models():
    assert load_model("gemm:m=3,k=5,n=7").total_macs == 3 * 5 * 7
    g = load_model("conv2d:c=8,h=10,w=10,k=16,r=3,stride=2,pad=1")
    assert g.tensors[g.outputs[0]].shape == (1, 16, 5, 5)
    assert g.total_macs == 16 * 5 * 5 * 8 * 9
    dw = load_model("conv2d:c=8,h=10,w=10,k=8,r=3,groups=8")
    assert dw.total_macs == 8 * 10 * 10 * 9


def test_bad_model_names_and_parameters():
    with pytest.raises(UnknownModelError, match="bundled name"):
        load_model("resnet19")
    with pytest.raises(ConfigError, match="unknown parameter"):
        load_model("resnet18:depth=3")
    with pytest.raises(ConfigError, match="key=value"):
        load_model("gemm:m")
    with pytest.raises(ConfigError, match="phase"):
        load_model("llama2-7b:phase=train")


def test_model_yaml_path(tmp_path):
    p = tmp_path / "tiny.yaml"
    p.write_text("schema_version: 1\nname: tiny\nfamily: resnet\nsource: test\n"
                 "params: {layers: [1, 1, 1, 1], resolution: 32, num_classes: 10}\n")
    g = load_model(str(p))
    assert g.name == "tiny" and g.tensors[g.outputs[0]].shape == (1, 10)
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema_version: 1\nname: x\nfamily: resnet\nsource: s\nlayers: 3\n")
    with pytest.raises(ConfigError, match="layers"):
        load_model(str(bad))
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_model(str(broken))
