"""The verdict: what the numbers mean, one plain line per question, with the number behind it.

Five questions, each answered from a measured value and what it should be compared with:

============ ============================================ ==========================================
question     value                                        compared with
============ ============================================ ==========================================
fidelity     SWD to the real data                         its real-vs-real floor (ratio)
diversity    pixel diversity of the samples               its real-vs-real floor (ratio)
copying      layout: objects in place (single image);     their chance levels (ratio); the set
             patches closer than the image's own;         memorisation share vs the real floor
             set: near-copy share (memorisation)
labels       label consistency F1 of generated images     the same on real images with real labels
utility      segmenter F1 trained on synthetic / both     trained on real only
============ ============================================ ==========================================

Every threshold is in :data:`THRESHOLDS`, the one place to read or change them. A value far *below*
its floor is not praised: SWD well under the real-vs-real floor means the samples are closer to the
training data than two real samples are to each other, a sign of copying. Statistics from too few
samples (one real image, fewer than ``min_objects`` objects) are marked "too few to judge" instead
of being read as significant.

Each line is a :class:`Line`: the question, a level (``good``, ``warn``, ``bad``, ``unknown``), and
the plain-words text with its number ("copies the training layout: 23 % of particles in place,
chance 2 %"). :func:`verdict_lines` builds the lines of an :func:`fewgan.metrics.evaluate.evaluate`
result, or of the ``eval.json`` it wrote (the ``verdict`` key holds them as dicts).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

#: Every threshold of the verdict, in one place.
THRESHOLDS: dict[str, float] = {
    # fidelity: SWD / floor
    "fidelity_good": 1.5,          # up to 1.5x the real-vs-real floor: as close as real data
    "fidelity_bad": 3.0,           # above 3x: far from the real data
    "fidelity_copy": 0.5,          # below half the floor: closer than real data is to itself
    # diversity: diversity / floor
    "diversity_good": 0.8,
    "diversity_bad": 0.5,
    # copying: measured / chance
    "copy_ratio_bad": 3.0,         # three times chance or more, and ...
    "copy_min_fraction": 0.10,     # ... at least 10 % of objects / patches: copying
    "copy_ratio_good": 1.5,        # up to 1.5x chance: new
    "memorisation_bad": 0.10,      # share of near-copies in a set above 10 % ...
    "memorisation_margin": 0.05,   # ... and 5 points above the real floor
    # labels: generated consistency / real consistency
    "labels_good": 0.9,
    "labels_bad": 0.7,
    # utility: F1 (synthetic or both) - F1 (real only)
    "utility_helps": 0.02,
    "utility_hurts": -0.05,
    # too few to judge
    "min_objects": 20,
    "min_real_images": 2,
}

LEVELS = ("good", "warn", "bad", "unknown")


@dataclasses.dataclass(frozen=True)
class Line:
    """One line of the verdict."""

    question: str
    level: str
    text: str

    def __str__(self) -> str:
        mark = {"good": "ok  ", "warn": "warn", "bad": "BAD ", "unknown": "n/a "}[self.level]
        return f"[{mark}] {self.question}: {self.text}"

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


def _finite(*values: Any) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %" if x >= 0.01 or x == 0 else f"{100 * x:.1f} %"


def fidelity(swd: float | None, floor: float | None) -> Line:
    t = THRESHOLDS
    if not _finite(swd, floor) or floor <= 0:
        return Line("fidelity", "unknown", "no SWD with a real-vs-real floor to compare")
    r = swd / floor
    numbers = f"SWD {swd:.3g} vs real-vs-real floor {floor:.3g} ({r:.2f}x)"
    if r < t["fidelity_copy"]:
        return Line("fidelity", "warn", f"far below the floor, closer to the training data than real data is "
                                        f"to itself: a sign of copying; {numbers}")
    if r <= t["fidelity_good"]:
        return Line("fidelity", "good", f"as close to the real data as real data is to itself: {numbers}")
    if r <= t["fidelity_bad"]:
        return Line("fidelity", "warn", f"visibly off the real data: {numbers}")
    return Line("fidelity", "bad", f"far from the real data: {numbers}")


def _higher_is_better(question: str, ratio: float, numbers: str, good: float, bad: float,
                      words: tuple[str, str, str]) -> Line:
    """``good`` / ``warn`` / ``bad`` for a ratio where more is better, with the words for each."""
    level = "good" if ratio >= good else "warn" if ratio >= bad else "bad"
    return Line(question, level, f"{words[LEVELS.index(level)]}: {numbers}")


def diversity(value: float | None, floor: float | None) -> Line:
    if not _finite(value, floor) or floor <= 0:
        return Line("diversity", "unknown", "no diversity with a real-vs-real floor to compare")
    r = value / floor
    return _higher_is_better("diversity", r, f"diversity {value:.3g} vs real {floor:.3g} ({r:.2f}x)",
                             THRESHOLDS["diversity_good"], THRESHOLDS["diversity_bad"],
                             ("as varied as the real data", "less varied than the real data",
                              "little variety, the samples are much alike"))


def _copy_level(measured: float, chance: float) -> str:
    t = THRESHOLDS
    if measured >= max(t["copy_ratio_bad"] * chance, t["copy_min_fraction"]):
        return "bad"
    if measured <= t["copy_ratio_good"] * chance:
        return "good"
    return "warn"


def layout_copying(result: dict[str, Any] | None) -> Line:
    """From :func:`fewgan.metrics.copying.layout_copying`."""
    if not result or not _finite(result.get("fraction"), result.get("chance")):
        return Line("copying (layout)", "unknown", "no objects detected to compare positions")
    n = int(result.get("objects", 0))
    frac, chance, r = result["fraction"], result["chance"], result.get("radius", 2.0)
    numbers = f"{_pct(frac)} of objects within {r:g} px of a training object, chance {_pct(chance)}"
    if "real_fraction" in result and _finite(result["real_fraction"]):
        numbers += f", another real image {_pct(result['real_fraction'])}"
    if n < THRESHOLDS["min_objects"] or int(result.get("train_objects", n)) < THRESHOLDS["min_objects"] // 4:
        return Line("copying (layout)", "unknown", f"too few objects to judge (n = {n}): {numbers}")
    level = _copy_level(frac, chance)
    words = {"bad": "copies the training layout", "warn": "partly keeps the training layout",
             "good": "new layouts"}[level]
    return Line("copying (layout)", level, f"{words}: {numbers}")


def patch_copying(result: dict[str, Any] | None) -> Line:
    """From :func:`fewgan.metrics.copying.patch_copying`."""
    if not result or not _finite(result.get("share"), result.get("chance")):
        return Line("copying (patches)", "unknown", "no informative sample patches to compare")
    share, chance = result["share"], result["chance"]
    numbers = (f"{_pct(share)} of sample patches closer to the training image than its own patches are to "
               f"each other, chance {_pct(chance)}")
    if _finite(result.get("real_share")):
        numbers += f", another real image {_pct(result['real_share'])}"
    level = _copy_level(share, chance)
    words = {"bad": "copies training patches", "warn": "some patches copied", "good": "new patches"}[level]
    return Line("copying (patches)", level, f"{words}: {numbers}")


def memorisation(share: float | None, floor_share: float | None) -> Line:
    """Set mode: the share of near-copies and the same share between two halves of the real set."""
    t = THRESHOLDS
    if not _finite(share):
        return Line("copying (set)", "unknown", "no memorisation test (it needs at least 2 training images)")
    ref = floor_share if _finite(floor_share) else 0.0
    numbers = f"{_pct(share)} of generated images are near-copies of a training image, real data {_pct(ref)}"
    if share > t["memorisation_bad"] and share > ref + t["memorisation_margin"]:
        return Line("copying (set)", "bad", f"copies training images: {numbers}")
    if share > ref + t["memorisation_margin"]:
        return Line("copying (set)", "warn", f"a few near-copies: {numbers}")
    return Line("copying (set)", "good", f"no copies: {numbers}")


def labels(generated_f1: float | None, real_f1: float | None) -> Line:
    if not _finite(generated_f1, real_f1) or real_f1 <= 0:
        return Line("labels", "unknown", "no labels to check (train with --labels)")
    r = generated_f1 / real_f1
    numbers = (f"particle analysis agrees with the generated labels at F1 {generated_f1:.2f}, "
               f"with the real labels at F1 {real_f1:.2f} ({r:.2f}x)")
    return _higher_is_better("labels", r, numbers, THRESHOLDS["labels_good"], THRESHOLDS["labels_bad"],
                             ("the labels match their images", "the labels match their images less well than "
                              "real labels", "the labels do not describe their images"))


def utility(result: dict[str, Any] | None) -> Line:
    """From :func:`fewgan.metrics.utility.utility`."""
    t = THRESHOLDS
    if not result or "real" not in result:
        return Line("utility", "unknown", "not measured (needs labels and held-out real images with labels)")
    real = result["real"].get("f1")
    if not _finite(real):
        return Line("utility", "unknown", "the real-only segmenter has no score")
    parts, best = [], None
    for source in ("synthetic", "both"):
        if source in result:
            f1 = result[source].get("f1")
            if not _finite(f1):
                continue
            parts.append(f"{'synthetic only' if source == 'synthetic' else 'real + synthetic'} F1 {f1:.2f}")
            best = f1 if best is None else max(best, f1)
    if best is None:
        return Line("utility", "unknown", f"only the real-only segmenter was trained (F1 {real:.2f})")
    numbers = f"{', '.join(parts)} vs real only {real:.2f} (held-out real images, F1 at IoU 0.5)"
    objects = result["real"].get("n_ref")
    if isinstance(objects, (int, float)) and objects < t["min_objects"]:
        return Line("utility", "unknown", f"too few held-out objects to judge (n = {int(objects)}): {numbers}")
    gain = best - real
    if gain >= t["utility_helps"]:
        return Line("utility", "good", f"the generated data helps a segmenter: {numbers}")
    if gain > t["utility_hurts"]:
        return Line("utility", "warn", f"the generated data neither helps nor hurts a segmenter: {numbers}")
    return Line("utility", "bad", f"the generated data makes a segmenter worse: {numbers}")


def few_samples(real_images: int, what: str = "particle statistics") -> Line | None:
    """A warning line when set statistics rest on too few real images (None when enough)."""
    if real_images < THRESHOLDS["min_real_images"]:
        return Line("statistics", "unknown", f"{what} rest on {real_images} real image(s): too few to judge "
                                             "significance; read KS p-values as descriptive only")
    return None


def few_objects(real_objects: int | None, fake_objects: int | None) -> Line | None:
    """A warning line when particle statistics rest on fewer than ``min_objects`` objects on a side."""
    counts = [c for c in (real_objects, fake_objects) if isinstance(c, (int, float))]
    if counts and min(counts) < THRESHOLDS["min_objects"]:
        return Line("statistics", "unknown", f"particle statistics rest on {int(real_objects or 0)} real and "
                                             f"{int(fake_objects or 0)} generated objects (fewer than "
                                             f"{THRESHOLDS['min_objects']:.0f}): too few to judge")
    return None


def _ran(metrics: dict[str, Any], name: str) -> dict[str, Any] | None:
    entry = metrics.get(name)
    return entry if isinstance(entry, dict) and "skipped" not in entry else None


def _floor(entry: dict[str, Any], key: str = "value") -> Any:
    floor = entry.get("floor")
    return floor.get(key) if isinstance(floor, dict) and "skipped" not in floor else None


def verdict_lines(result: dict[str, Any]) -> list[Line]:
    """The verdict of an :func:`fewgan.metrics.evaluate.evaluate` result (or its ``eval.json``).

    One line per question whose metric ran: fidelity (``swd`` vs its floor), diversity
    (``diversity`` vs its floor), copying (``copying``: layout and patches vs chance, single-image
    mode; ``memorisation`` vs its floor, set mode), labels (``labels``: generated vs real
    consistency), utility (``utility``: synthetic / both vs real only); then the "too few to judge"
    marks of the particle statistics (one real image; fewer than ``min_objects`` objects).
    """
    metrics = result.get("metrics") or {}
    lines: list[Line] = []
    if (entry := _ran(metrics, "swd")) is not None:
        lines.append(fidelity(entry.get("value"), _floor(entry)))
    if (entry := _ran(metrics, "diversity")) is not None:
        lines.append(diversity(entry.get("value"), _floor(entry)))
    if (entry := _ran(metrics, "copying")) is not None:
        lines += [layout_copying(entry.get("layout")), patch_copying(entry.get("patches"))]
    if (entry := _ran(metrics, "memorisation")) is not None:
        lines.append(memorisation(entry.get("near_copy_share"), _floor(entry, "near_copy_share")))
    if (entry := _ran(metrics, "labels")) is not None:
        lines.append(labels((entry.get("generated") or {}).get("f1"), (entry.get("real") or {}).get("f1")))
    if (entry := _ran(metrics, "utility")) is not None:
        lines.append(utility(entry))
    if (entry := _ran(metrics, "particles")) is not None:
        n_real = (result.get("real") or {}).get("n")
        if isinstance(n_real, int) and (line := few_samples(n_real)) is not None:
            lines.append(line)
        counts = entry.get("particles") or {}
        if (line := few_objects(counts.get("real"), counts.get("fake"))) is not None:
            lines.append(line)
    return lines


def render(lines: list[Line]) -> str:
    """The verdict as text, one line per question."""
    return "\n".join(str(line) for line in lines)
