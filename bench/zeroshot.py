"""Zero-shot accuracy of each prompt strategy on your own labelled photos.

    python bench/zeroshot.py --data DIR [--labels animals] [--model S2] [--weights FILE]

DIR holds one folder per class (``DIR/dog/*.jpg``, ``DIR/cat/*.jpg``, ...); a folder's name is the
class name. The photos are indexed into a scratch store (or ``--store``), then every strategy
ranks the class names for each photo; top-1 and top-5 accuracy are printed per strategy:

- ``name``: the bare class name as the prompt;
- ``photo``: "a photo of a {}.";
- ``ensemble``: the template ensemble mcphotos uses (labels.TEMPLATES), averaged;
- ``labels``: with ``--labels SET``, a class whose name matches a label (its full name or last
  level) uses that label's own prompts; the others use the ensemble.

It also prints, for the ensemble, how multi-label mode would do at the default threshold: how
often the true class is tagged and how many wrong tags a photo gets. Use it where real weights
exist, to check prompt and threshold choices; with random weights it only proves it runs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mcphotos.indexing.indexer import IndexOptions
from mcphotos.library import Library
from mcphotos.tagging.labels import Label, LabelSet, resolve_labels
from mcphotos.tagging.tagger import (
    DEFAULT_THRESHOLD,
    average_prompts,
    live_files,
    multi_label_probs,
    prompt_plan,
    vectors_for_hashes,
)


def strategies(classes: list[str], labels_spec: str | None) -> dict[str, list[list[str]]]:
    out = {
        "name": [[c] for c in classes],
        "photo": [[f"a photo of a {c}."] for c in classes],
        "ensemble": [Label(c).prompt_texts() for c in classes],
    }
    if labels_spec:
        by_name: dict[str, Label] = {}
        for lb in resolve_labels(labels_spec).labels:
            by_name.setdefault(lb.name.casefold(), lb)
            by_name.setdefault(lb.leaf.casefold(), lb)
        out["labels"] = [(by_name[c.casefold()].prompt_texts() if c.casefold() in by_name
                          else Label(c).prompt_texts()) for c in classes]
    return out


def evaluate(argv: list[str] | None = None, lib: Library | None = None) -> dict[str, dict[str, float]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a folder per class")
    ap.add_argument("--labels", help="a label set whose prompts to test as one more strategy")
    ap.add_argument("--model", default=None)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--store", default=None, help="store home (default: a scratch directory)")
    args = ap.parse_args(argv)

    data = Path(args.data).resolve()
    classes = sorted(p.name for p in data.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise SystemExit(f"{data}: need at least two class folders")
    with tempfile.TemporaryDirectory() as scratch:
        lib = lib or Library(home=args.store or scratch, model=args.model, weights=args.weights)
        lib.index([str(data)], options=IndexOptions())
        store = lib.store()
        files = live_files(store, [str(data)])
        hashes, vectors = vectors_for_hashes(store, sorted(set(files.values())))
        row = {h: i for i, h in enumerate(hashes)}
        items = [(row[h], classes.index(Path(p).relative_to(data).parts[0]))
                 for p, h in sorted(files.items()) if h in row]
        x = vectors[[i for i, _ in items]]
        truth = np.array([c for _, c in items])
        scale = lib.logit_scale()
        results: dict[str, dict[str, float]] = {}
        k = min(5, len(classes))
        for name, prompts in strategies(classes, args.labels).items():
            label_set = LabelSet(name, "zeroshot", tuple(Label(c, tuple(p)) for c, p in zip(classes, prompts,
                                                                                                 strict=True)))
            texts, per_label, per_background = prompt_plan(label_set)
            vecs = lib.text_vectors(texts)
            emb, bg = average_prompts(vecs, per_label), average_prompts(vecs, per_background)
            ranks = np.argsort(-(x @ emb.T), axis=1)
            results[name] = {"top1": float(np.mean(ranks[:, 0] == truth)),
                             f"top{k}": float(np.mean((ranks[:, :k] == truth[:, None]).any(axis=1)))}
            if name == "ensemble":
                tagged = multi_label_probs(x, emb, bg, scale) >= DEFAULT_THRESHOLD
                hit = tagged[np.arange(len(truth)), truth]
                results[name]["multi_recall"] = float(hit.mean())
                results[name]["multi_wrong_per_photo"] = float((tagged.sum(axis=1) - hit).mean())
        lib.close()
    print(f"{len(items)} photos, {len(classes)} classes, model {lib.spec.name}, logit scale {scale:.1f}")
    print(f"{'strategy':10s} {'top-1':>7s} {f'top-{k}':>7s}")
    for name, r in results.items():
        print(f"{name:10s} {r['top1']:7.1%} {r[f'top{k}']:7.1%}")
    e = results["ensemble"]
    print(f"multi-label (ensemble, threshold {DEFAULT_THRESHOLD}): true class tagged {e['multi_recall']:.1%}, "
          f"{e['multi_wrong_per_photo']:.2f} wrong tags per photo")
    return results


if __name__ == "__main__":
    evaluate()
