"""The learned layer: a small linear model over character and word n-grams of the canonical text.

Trained by `scripts/train_understanding.py` from the repo's own labelled corpus (deterministic, no
download); the weights ship as JSON in `bot/understand/models/`. Scoring needs no ML library: a
message's features are looked up in a dict, so it costs a few microseconds and loads in milliseconds.

One model file holds several binary heads (e.g. `red_flag`, `ambulance`) over one feature space.
Features, all binary, L2-normalised:
- CJK runs: character 2- and 3-grams, or the character of a one-character run (Chinese has no
  spaces; n-grams carry the words);
- Latin words: the word, adjacent word pairs, and character 3–5-grams inside a word (robust to typos
  such as "diabetis", "anaphylatic");
- value flags from bot.understand.values ("temp>=39", "age<3m", "spo2<92"…).
"""

from __future__ import annotations

import json
import math
import re
from array import array
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path

from bot.understand.values import read_values

_CJK_RUN = re.compile(r"[\u3400-\u9fff]+")
_CJK = re.compile(r"[\u3400-\u9fff]")
_WORD = re.compile(r"[a-z][a-z']*")
MODELS_DIR = Path(__file__).parent / "models"


def long_enough(text: str) -> bool:
    """The model was trained on descriptions, not on one-word answers ("我自己", "5", "yes"): it only
    reads a message with at least 6 Chinese characters or 4 words."""
    return len(_WORD.findall(text)) >= 4 or sum(len(r) for r in _CJK_RUN.findall(text)) >= 6


def script_of(text: str) -> str:
    """`zh` for a message with any Chinese character, else `en`: the script a head's cut-offs were
    chosen for (the two score differently: a held-out Chinese red flag scores lower than an English one)."""
    return "zh" if _CJK.search(text) else "en"


def features(text: str) -> set[str]:
    """The feature set of one canonical message (see the module docstring)."""
    out: set[str] = set()
    for run in _CJK_RUN.findall(text):
        if len(run) == 1:
            out.add("c" + run)
        # 2- and 3-grams: single characters (了, 不, 来) say little and overfit
        out.update(["c" + run[i:i + 2] for i in range(len(run) - 1)])
        out.update(["c" + run[i:i + 3] for i in range(len(run) - 2)])
    words = _WORD.findall(text)
    for i, word in enumerate(words):
        out.add("w" + word)
        if i:
            out.add("b" + words[i - 1] + "_" + word)
        padded = f"<{word}>"
        for n in (3, 4, 5):
            out.update("g" + padded[j:j + n] for j in range(len(padded) - n + 1))
    out.update("v" + flag for flag in read_values(text).flags())
    return out


@dataclass(frozen=True)
class Head:
    name: str
    bias: float
    weights: dict[str, float]
    threshold: float  # probability at or above which the head "fires"
    question: float = 1.0  # at or above this (but under `threshold`): worth a safety question
    by_script: dict[str, tuple[float, float]] = field(default_factory=dict)  # script -> (threshold, question)

    def cut(self, text: str) -> tuple[float, float]:
        """(threshold, question) for this canonical text's script, else the head's overall ones."""
        return self.by_script.get(script_of(text), (self.threshold, self.question))

    def probability(self, feats: set[str]) -> float:
        if not feats:
            return 1.0 / (1.0 + math.exp(-self.bias))
        scale = 1.0 / math.sqrt(len(feats))
        z = self.bias + scale * sum(map(self.weights.get, feats, repeat(0.0, len(feats))))
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def top_features(self, feats: set[str], k: int = 5) -> list[tuple[str, float]]:
        """The features that pushed this score up most (for the explanation)."""
        scored = sorted(((f[1:], self.weights[f]) for f in feats if self.weights.get(f, 0.0) > 0),
                        key=lambda fw: -fw[1])
        return [(f, round(w, 2)) for f, w in scored[:k]]


    def __reduce__(self) -> tuple:  # the start-up cache: the weights as one string and one array
        keys, weights = _pack(self.weights)
        return _head, (self.name, self.bias, self.threshold, self.question, self.by_script, keys, weights)


def _pack(weights: dict[str, float] | dict[str, tuple[float, ...]]) -> tuple[str, bytes]:
    """A weights dict as its keys joined by NUL and its values as float64 bytes (exact; loads in
    milliseconds, where a pickled or JSON dict of 100,000 floats takes most of a second)."""
    keys = "\0".join(weights)
    if "\0" in "".join(weights):
        raise ValueError("a feature name holds a NUL")
    flat = array("d")
    for value in weights.values():
        if isinstance(value, tuple):
            flat.extend(value)
        else:
            flat.append(value)
    return keys, flat.tobytes()


def _unpack(keys: str, data: bytes, width: int = 0) -> dict:
    names = keys.split("\0") if keys else []
    values = array("d", data).tolist()
    if width:
        values = [tuple(values[i:i + width]) for i in range(0, len(values), width)]
    if len(values) != len(names):
        raise ValueError("packed weights do not match their names")
    return dict(zip(names, values))


def _head(name: str, bias: float, threshold: float, question: float, by_script: dict, keys: str, data: bytes) -> Head:
    return Head(name, bias, _unpack(keys, data), threshold, question, by_script)


@dataclass(frozen=True)
class LearnedModel:
    name: str
    heads: dict[str, Head]
    trained_on: str  # what the training script read, for the explanation and docs

    def scores(self, text: str) -> dict[str, float]:
        feats = features(text)
        return {name: round(head.probability(feats), 4) for name, head in self.heads.items()}

    def __reduce__(self) -> tuple:
        """The start-up cache: the feature names every head has, once, with each head's weights for
        them as one array, and each head's own other names and weights. Unpacking then splits and
        hashes ~200,000 names once, not once per head (~0.1 s of a start)."""
        heads = list(self.heads.values())
        shared = [f for f in heads[0].weights if all(f in h.weights for h in heads[1:])] if heads else []
        common = set(shared)
        packed = [(h.name, h.bias, h.threshold, h.question, h.by_script,
                   array("d", (h.weights[f] for f in shared)).tobytes(),
                   *_pack({f: w for f, w in h.weights.items() if f not in common})) for h in heads]
        return _model, (self.name, self.trained_on, "\0".join(shared), packed)


def _model(name: str, trained_on: str, keys: str, heads: list[tuple]) -> LearnedModel:
    names = keys.split("\0") if keys else []
    out = {}
    for head, bias, threshold, question, by_script, data, own_keys, own_data in heads:
        values = array("d", data).tolist()
        if len(values) != len(names):
            raise ValueError("packed weights do not match their names")
        weights = dict(zip(names, values))
        weights.update(_unpack(own_keys, own_data))
        out[head] = Head(head, bias, weights, threshold, question, by_script)
    return LearnedModel(name, out, trained_on)


def load_model(path: str | Path, cache: bool = True) -> LearnedModel:
    """Load a model file written by scripts/train_understanding.py (with `cache`, through the
    start-up cache, keyed by the file's and this module's hash: bot/buildcache.py)."""
    def build() -> LearnedModel:
        return model_from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    return _cached("model_" + Path(path).stem, Path(path), build, LearnedModel) if cache else build()


def _cached(kind: str, path: Path, build, kind_of: type):  # type: ignore[no-untyped-def]
    from bot import buildcache

    try:
        key = buildcache.key_of(kind, [path], ("understand/learned.py", "buildcache.py"))
    except OSError:  # unreadable: the build reports it
        return build()
    return buildcache.cached(kind, key, build, lambda value: isinstance(value, kind_of))


def model_from_dict(data: dict) -> LearnedModel:
    """A triage model from its JSON form (a file's content, or a model trained in memory)."""
    heads = {name: Head(name, float(h["bias"]), {f: float(w) for f, w in h["weights"].items()}, float(h["threshold"]),
                        float(h.get("question", 1.0)),
                        {script: (float(t), float(q)) for script, (t, q) in h.get("by_script", {}).items()})
             for name, h in data["heads"].items()}
    return LearnedModel(data["name"], heads, data.get("trained_on", ""))


@dataclass(frozen=True)
class IntentModel:
    """A multinomial linear model over the same features: which typed request a message is.

    Used by bot.understand.intents only where the cues did not route: its best intent routes when its
    probability reaches `threshold` (chosen on writers the model did not see, for high precision)."""

    classes: tuple[str, ...]
    bias: tuple[float, ...]
    weights: dict[str, tuple[float, ...]]
    threshold: float
    trained_on: str = ""

    def reads(self, text: str) -> bool:
        """Whether the model may judge this canonical text: a request of some length (3 words or 4
        Chinese characters) with at least two words it learned from — not "ok thanks", 嗯 or "blorp"."""
        words = _WORD.findall(text)
        if len(words) < 3 and sum(len(r) for r in _CJK_RUN.findall(text)) < 4:
            return False
        known = sum(1 for f in features(text) if f[0] in "wc" and f in self.weights)
        return known >= 2

    def predict(self, text: str) -> tuple[str, float, list[str]]:
        """(best intent, its probability, the features that pushed it most) for a canonical text."""
        feats = features(text)
        scale = 1.0 / math.sqrt(len(feats)) if feats else 0.0
        z = list(self.bias)
        for f in feats:
            w = self.weights.get(f)
            if w is not None:
                for k, wk in enumerate(w):
                    z[k] += scale * wk
        top = max(z)
        exp = [math.exp(v - top) for v in z]
        best = max(range(len(z)), key=z.__getitem__)
        why = sorted((f for f in feats if f in self.weights and self.weights[f][best] > 0),
                     key=lambda f: -self.weights[f][best])[:5]
        return self.classes[best], exp[best] / sum(exp), [f[1:] for f in why]

    def __reduce__(self) -> tuple:  # the start-up cache, as Head's
        keys, weights = _pack(self.weights)
        return _intent_model, (self.classes, self.bias, keys, weights, self.threshold, self.trained_on)


def _intent_model(classes: tuple[str, ...], bias: tuple[float, ...], keys: str, data: bytes, threshold: float,
                  trained_on: str) -> IntentModel:
    return IntentModel(classes, bias, _unpack(keys, data, len(classes)), threshold, trained_on)


def load_intent_model(path: str | Path, cache: bool = True) -> IntentModel:
    """Load an intent model written by scripts/train_understanding.py (with `cache`, as `load_model`)."""
    def build() -> IntentModel:
        return intent_model_from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    return _cached("model_" + Path(path).stem, Path(path), build, IntentModel) if cache else build()


def intent_model_from_dict(data: dict) -> IntentModel:
    """An intent model from its JSON form."""
    return IntentModel(tuple(data["classes"]), tuple(float(b) for b in data["bias"]),
                       {f: tuple(float(x) for x in w) for f, w in data["weights"].items()},
                       float(data["threshold"]), data.get("trained_on", ""))
