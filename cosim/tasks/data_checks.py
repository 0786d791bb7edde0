"""What a run's data allow it to conclude: the split that ran, and warnings when the data are
too few, an interval too wide, validation too easy, or two modalities unrelated.

Each check returns the sentences a report prints (empty when all is well); the thresholds are
the run's options (:class:`~rram_cosim.cosim.tasks.configs.common.DataOptions`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ...models.errors import ConfigError
from ..data.datasets import EventDataset

__all__ = ["class_names_of", "describe_split", "interval_warnings", "pairing_warnings",
           "shared_group_warnings", "small_test_warnings", "val_gap_warnings"]

#: Embedded and published sets whose classes are the digits 0-9 (spoken or written).
DIGIT_SETS = ("digits-events", "spoken-digits", "nmnist", "ntidigits")


def _unit(ds: EventDataset) -> tuple[str, np.ndarray | None]:
    """The split unit of ``ds`` (its name) and the unit of every sample, when it has one."""
    meta = ds.metadata
    if "groups" in meta:
        name = meta.get("group_name") or ("voice variant" if ds.name == "spoken-digits"
                                          else "group")
        return name, np.asarray(meta["groups"]).astype(str)
    if "speakers" in meta:
        return "speaker", np.asarray(meta["speakers"]).astype(str)
    return "", None


def describe_split(data: Mapping[str, EventDataset]) -> str:
    """How ``data`` (``{"train": ds, "val": ds, "test": ds}``) was split and how many samples,
    and groups (speakers, voices), each split holds (a clause, no final full stop)."""
    first = next(iter(data.values()))
    unit, _ = _unit(first)
    rule = first.metadata.get("split_by")
    if rule == "file":
        how = "the split given in the file"
    elif first.name == "nmnist":
        how = ("the official test set; train and val a seeded split of the official training "
               "set")
    elif first.name == "ntidigits":
        how = ("the official test set; train and val a seeded split of the official training "
               "speakers")
    elif rule == "sample" or (rule is None and not unit):
        how = "a seeded split of samples, stratified by class"
    else:
        field = first.metadata.get("group_field")
        how = (f"a seeded split by {unit}: every {unit} in one split"
               + (f" (field {field} of the file names)" if field is not None else ""))
    parts = []
    for split, ds in data.items():
        _, groups = _unit(ds)
        text = f"{split} {len(ds)} samples"
        if groups is not None:
            k = np.unique(groups).size
            text += f" from {k} {unit}{'s' if k != 1 else ''}"
        parts.append(text)
    note = first.metadata.get("split_note")
    return f"{how}; " + ", ".join(parts) + (f" ({note})" if note else "")


def shared_group_warnings(data: Mapping[str, EventDataset]) -> list[str]:
    """A warning when one group (speaker, voice) has samples in both train and test."""
    unit, train = _unit(data["train"])
    _, test = _unit(data["test"])
    if train is None or test is None:
        return []
    shared = np.intersect1d(train, test)
    if not shared.size:
        return []
    return [(f"{shared.size} {unit}(s) have samples in both train and test (e.g. "
             f"{', '.join(shared[:3])}): test accuracy measures recognising a heard {unit} "
             f"again, not a new one. Split by {unit} (--split-by group).")]


def small_test_warnings(labels: np.ndarray, classes: Sequence[int], min_per_class: int,
                        what: str = "test samples") -> list[str]:
    """A warning when a class has fewer than ``min_per_class`` samples in ``labels``
    (``what`` names them: ``"test samples"``, ``"unseen queries"``)."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64),
                         minlength=int(max(classes)) + 1)[list(classes)]
    if not min_per_class or counts.min() >= min_per_class:
        return []
    return [(f"only {counts.min()} {what} in the smallest class ({int(counts.sum())} "
             f"in all, {len(classes)} classes; warned below {min_per_class} a class): one "
             f"sample moves that class's accuracy by {100 / max(counts.min(), 1):.0f} points; "
             "treat differences below the interval widths as noise, or add data.")]


def interval_warnings(rows: Sequence[tuple[str, float, float]], width: float) -> list[str]:
    """A warning for each ``(what, low, high)`` 95 % interval wider than ``width``, or that
    cannot be computed (NaN: one seed gives no interval over seeds)."""
    if not width:
        return []
    undefined = [(f"{what} has no 95 % interval (one network seed: nothing to say how another "
                  "seed would score); run three seeds or more (--seeds).")
                 for what, lo, hi in rows if not np.isfinite(hi - lo)]
    return undefined + [f"the 95 % interval of {what} spans {100 * lo:.1f} to {100 * hi:.1f} % "
            f"({100 * (hi - lo):.1f} points, warned above {100 * width:.0f}): too wide to "
            "conclude anything from; more test samples or seeds narrow it."
            for what, lo, hi in rows if np.isfinite(hi - lo) and hi - lo > width]


def val_gap_warnings(rows: Sequence[tuple[str, float, float]], gap: float) -> list[str]:
    """A warning for each ``(what, val, test)`` with validation at 100 % and test lower by
    more than ``gap``: the validation split cannot tell the grid points apart."""
    return [f"{what}: validation at {100 * val:.1f} % but test {100 * test:.1f} %: the "
            "validation split is too small or too easy to choose hyperparameters on (every "
            "grid point may score 100 %, and the first wins); give it more samples."
            for what, val, test in rows if val >= 1.0 - 1e-9 and val - test > gap]


def class_names_of(ds: EventDataset) -> tuple[str, ...] | None:
    """The names of ``ds``'s classes, or None when they are only numbers nobody named.

    A WAV folder's labels are the words a user put in the file names, numbers included: a
    folder of spoken digits named ``3_<speaker>_<take>.wav`` names its classes ``"0"`` to
    ``"9"`` as much as ``yes_<speaker>_<take>.wav`` names ``"yes"``."""
    if ds.name in DIGIT_SETS or ds.metadata.get("viewed") == "digits-events":
        return tuple(str(i) for i in range(10))
    names = ds.metadata.get("class_names")
    if names is not None and ds.metadata.get("source") == "WAV folder":
        return tuple(str(n) for n in names)
    if names is None or tuple(names) == tuple(str(i) for i in range(len(names))):
        return None
    return tuple(str(n) for n in names)


def _is_digits(names: tuple[str, ...] | None) -> bool:
    return names is not None and names == tuple(str(i) for i in range(len(names)))


def pairing_warnings(image: EventDataset, other: EventDataset, classes: Sequence[int], *,
                     shared_source: bool) -> list[str]:
    """Check that pairing ``image`` and ``other`` by class can mean something.

    Refused (:class:`ConfigError`) when both modalities name their classes and a class used
    has different names in the two (e.g. ``shirt`` and ``3``). A warning when they share no
    source (not a population viewing the gallery's own images) and their classes are not
    both named the same way: the pairing then rests on class numbers alone.
    """
    ni, no = class_names_of(image), class_names_of(other)
    if ni is not None and no is not None:
        bad = [c for c in classes if c < len(ni) and c < len(no) and ni[c] != no[c]]
        if bad:
            c = bad[0]
            raise ConfigError(
                f"The modalities name their classes differently: class {c} is {ni[c]!r} in "
                f"{image.name} and {no[c]!r} in {other.name} ({len(bad)} of the classes used "
                "differ). Pairing them by class number would pair unrelated things, and no "
                "retrieval score could mean anything. Give both modalities the same classes, "
                "or pair the images with neural-sim (a population viewing these images).")
        return []
    if shared_source or (_is_digits(ni) and _is_digits(no)):
        return []
    return [(f"{image.name} and {other.name} share no source (neither is a recording of the "
             "other's samples) and not both name their classes, so training pairs are matched "
             "by class number alone: class k must mean the same thing in both, or the result "
             "means nothing. Save class_names in both (or name the WAV labels) to have this "
             "checked.")]
