"""Configuration of ``rram-cosim zeroshot`` (the protocol: :mod:`..zeroshot`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ....models.checks import check_choice
from ....models.errors import ConfigError
from ....models.snn.contrastive import ACTIVATIONS, POSITIVES
from ...engines.registry import BACKENDS, check_run_options
from .common import (
    LINEARISATIONS,
    SEED_MAX,
    DataOptions,
    ReadOptions,
    adc_bits_option,
    cal_maps_option,
    cal_vectors_option,
    crop_option,
    linearise_option,
    r_wire_ohm_option,
)
from .fields import check_options, option

__all__ = ["IMAGE_KINDS", "OTHER_KINDS", "PROTOCOLS", "ZeroshotConfig", "parse_classes"]

IMAGE_KINDS = ("digits-events", "images", "nmnist")
OTHER_KINDS = ("neural-sim", "spoken-digits", "wav")
PROTOCOLS = ("honest", "paper")


def parse_classes(text: str, what: str) -> tuple[int, ...]:
    """Class list from ``"1-7"``, ``"8,9"`` or ``"0-3,7"`` (sorted, unique)."""
    out: list[int] = []
    for part in str(text).replace(" ", "").split(","):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if m is None:
            raise ConfigError(
                f"The '{what}' classes must be a list like '1-7' or '8,9' of class indices. "
                f"Got {text!r}.")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise ConfigError(f"The range {part!r} in '{what}' runs backwards; write "
                              f"'{hi}-{lo}'.")
        out.extend(range(lo, hi + 1))
    if not out:
        raise ConfigError(f"The '{what}' class list is empty. Got {text!r}.")
    return tuple(sorted(set(out)))


@dataclass(frozen=True)
class ZeroshotConfig(ReadOptions, DataOptions):
    """Configuration of a zero-shot run (saved as config.json; every field is an option)."""

    name: str = option("zeroshot", "run name: the folder under the runs root")
    image: str = option("digits-events", "image modality: digits-events, images:FILE or "
                                         "nmnist:DIR")
    other: str = option("neural-sim", "second modality: neural-sim (a simulated population "
                                      "viewing the image modality's images), spoken-digits or "
                                      "wav:DIR")
    seen: str = option("1-7", "training classes, e.g. 1-7 or 0-3,7 ([Lin25]: 1-7)")
    unseen: str = option("8,9", "test classes, never trained on ([Lin25]: 8,9)")
    val_classes: str = option(
        "auto", "seen classes held out of training for selection: a class list, auto (the last "
                "two seen) or none (select on seen-class validation pairs)")
    pairing: str = option(
        "auto", "training pairs: instance (neural-sim trials on the training images), class "
                "(random same-class partners), auto (instance for neural-sim)",
        choices=("auto", "instance", "class"))
    unseen_from: str = option(
        "all", "where the unseen queries and gallery come from: all splits or the test split",
        choices=("all", "test"))
    oh_class: int = option(-1, "spoken-digits: the class the word oh maps to (-1: left out)",
                           lo=-1, hi=1000)
    protocol: str = option(
        "honest", "headline selection (both are computed and shown)", choices=PROTOCOLS)
    backends: tuple[str, ...] = option(
        ("ideal", "surrogate"), "tile backends, the first is the paired reference",
        choices=BACKENDS)
    seeds: int = option(5, "network seeds", lo=1, hi=1000)
    seed: int = option(0, "first network seed; the others are seed+1, seed+2, ...", lo=0,
                       hi=SEED_MAX)
    data_seed: int = option(0, "seed of the data, the neural population and the splits", lo=0,
                            hi=SEED_MAX)
    surrogate: str = option(
        "", "fitted surrogate file (JSON; empty: calibrate on the nodal engine)")
    n_train: int = option(0, "training samples per modality (0: all, before class filtering)",
                          lo=0, hi=10_000_000)
    n_val: int = option(0, "validation samples per modality (0: all)", lo=0, hi=10_000_000)
    n_test: int = option(0, "test samples per modality (0: all)", lo=0, hi=10_000_000)
    n_steps: int = option(
        0, "time steps per sample (0: 50 for images and neural-sim, 129 for audio)", lo=0,
        hi=10_000_000)
    crop: int = crop_option()
    image_inputs: int = option(0, "expected image-encoder inputs (0: from the data)", lo=0,
                               hi=10_000_000)
    other_inputs: int = option(0, "expected other-encoder inputs (0: from the data)", lo=0,
                               hi=10_000_000)
    hidden: int = option(200, "reservoir neurons ([Lin25]: 200)", lo=1, hi=10_000_000)
    other_hidden: int = option(
        0, "other encoder's neurons (0: = hidden; both read the same recurrent rows)", lo=0,
        hi=10_000_000)
    neurons: int = option(192, "neural-sim channels ([Lin25] BMI: 192)", lo=1, hi=10_000_000)
    v_th: tuple[float, ...] = option(
        (5.0, 10.0, 20.0), "firing-threshold grid, chosen on validation (units of x @ W)", lo=0,
        hi=1e6, lo_open=True)
    rec_level: tuple[float, ...] = option(
        (0.25,), "recurrent-row drive grid (fraction of the read voltage)", lo=0, hi=1)
    decay_image: float = option(0.9, "image membrane decay per step ([Lin25] N-MNIST script: 0.9)",
                                lo=0, hi=1)
    decay_other: float = option(
        0.0, "other membrane decay per step (0: 0.97 audio, 0.9 neural-sim)", lo=0, hi=1)
    dim: int = option(64, "projection dimension of the heads ([Lin25] BMI: 256)", lo=1,
                      hi=10_000_000)
    temperature: tuple[float, ...] = option((0.1, 0.3), "InfoNCE temperature grid", lo=0,
                                            hi=100, lo_open=True)
    activation: tuple[str, ...] = option(("linear",), "head activation grid", choices=ACTIVATIONS)
    positives: tuple[str, ...] = option(
        ("pair",), "positive-mask grid: pair (CLIP identity) or class", choices=POSITIVES)
    # assumption (no source gives these heads' training settings): 100 epochs, Adam lr 3e-3,
    # batch 64, l2 1e-4 are common settings for small heads; the protocol then picks the
    # epoch among the checkpoints, so epochs is an upper bound rather than a choice
    epochs: int = option(100, "head training epochs (an upper bound: the epoch is selected)",
                         lo=1, hi=10_000_000)
    eval_every: int = option(10, "epochs between checkpoints", lo=1, hi=10_000_000)
    lr: float = option(3e-3, "Adam learning rate of the heads", lo=0, hi=10, lo_open=True)
    batch_size: int = option(64, "head minibatch size (also the InfoNCE negatives per positive)",
                             lo=2, hi=1 << 20)
    l2: float = option(1e-4, "l2 weight decay of the heads", lo=0, hi=100)
    top_k: int = option(5, "k of the top-k retrieval accuracy ([Lin25]: 5)", lo=1,
                        hi=10_000_000)
    # assumption: 2000 permutations resolve p down to 1/2001 ~ 5e-4, below the usual 0.05/0.01
    n_perm: int = option(
        2000, "label permutations of the p-value (resolves p down to 1/(n_perm+1))", lo=1,
        hi=10_000_000)
    baseline: bool = option(True, "also train heads on raw binned events (no reservoir)")
    r_wire_ohm: float | None = r_wire_ohm_option()
    adc_bits: int = adc_bits_option()
    tile_rows: int = option(0, "rows of one tile (0: the whole shared map on one macro)", lo=0,
                            hi=10_000_000)
    tile_cols: int = option(0, "weight columns of one tile (0: one macro)", lo=0, hi=10_000_000)
    cal_maps: int = cal_maps_option()
    cal_vectors: int = cal_vectors_option()
    # both encoders' rows profiled on the one shared map (cosim/tasks/zeroshot.py)
    linearise: str = linearise_option()

    def __post_init__(self) -> None:
        o = "ZeroshotConfig"
        check_choice(o, "linearise", self.linearise, LINEARISATIONS)
        ik = self.image.split(":", 1)[0]
        if not (self.image == "digits-events"
                or (ik in ("images", "nmnist") and ":" in self.image)):
            raise ConfigError(f"The 'image' parameter of {o} must be 'digits-events', "
                              f"'images:FILE' or 'nmnist:DIR'. Got {self.image!r} instead.")
        ok = self.other.split(":", 1)[0]
        if not (self.other in ("neural-sim", "spoken-digits")
                or (ok == "wav" and ":" in self.other)):
            raise ConfigError(f"The 'other' parameter of {o} must be 'neural-sim', "
                              f"'spoken-digits' or 'wav:DIR'. Got {self.other!r} instead.")
        seen, unseen = self.seen_classes, self.unseen_classes
        both = sorted(set(seen) & set(unseen))
        if both:
            raise ConfigError(
                f"Classes {both} are in both 'seen' and 'unseen'. A zero-shot test needs "
                "classes never trained on: remove them from one list.")
        if len(unseen) < 2:
            raise ConfigError(
                f"'unseen' needs at least two classes (retrieval among one class is always "
                f"right). Got {list(unseen)}.")
        if len(seen) < 2:
            raise ConfigError(f"'seen' needs at least two classes to train a contrastive "
                              f"loss. Got {list(seen)}.")
        vc = self.val_class_tuple
        if vc and (set(vc) - set(seen) or len(vc) < 2 or len(seen) - len(vc) < 2):
            raise ConfigError(
                f"'val_classes' must be at least two of the seen classes {list(seen)}, leaving "
                f"at least two to train on. Got {self.val_classes!r}; use 'auto' (the last two "
                "seen classes) or 'none' (select on seen-class validation pairs).")
        check_choice(o, "unseen_from", self.unseen_from, ["all", "test"])
        check_choice(o, "pairing", self.pairing, ["auto", "instance", "class"])
        if self.pairing_mode == "instance" and self.other != "neural-sim":
            raise ConfigError(
                "pairing='instance' needs other='neural-sim' (the simulated population then "
                "views the training images); other modalities pair by class only. Use "
                "pairing='class' or 'auto'.")
        check_options(self)
        self.check_data(o, [self.image, self.other])
        if self.oh_class >= 0 and self.other != "spoken-digits":
            raise ConfigError("'oh_class' maps spoken-digits' word 'oh'; other is "
                              f"{self.other!r}. Leave oh_class at -1.")
        check_choice(o, "protocol", self.protocol, PROTOCOLS)
        check_run_options(o, self.backends, self.seeds, self.seed, self.data_seed)
        if self.other_hidden and self.other_hidden != self.hidden:
            raise ConfigError(
                f"Mismatched encoder sizes: hidden={self.hidden} but other_hidden="
                f"{self.other_hidden}. Both encoders read the same recurrent rows of one map, "
                "so their reservoirs must have the same size; set other_hidden to 0 or to "
                "hidden.")
        for f in ("v_th", "rec_level", "temperature", "activation", "positives"):
            if not getattr(self, f):
                raise ConfigError(f"The '{f}' grid of {o} needs at least one value.")
        for v in self.activation:
            check_choice(o, "activation", v, ACTIVATIONS)
        for v in self.positives:
            check_choice(o, "positives", v, POSITIVES)
        self.read_spec()  # validate the read scheme and wire options now
        if (self.tile_rows == 0) != (self.tile_cols == 0):
            raise ConfigError(
                f"Give both tile_rows and tile_cols (a tile size), or neither. Got "
                f"{self.tile_rows}x{self.tile_cols}.")

    @property
    def seen_classes(self) -> tuple[int, ...]:
        return parse_classes(self.seen, "seen")

    @property
    def unseen_classes(self) -> tuple[int, ...]:
        return parse_classes(self.unseen, "unseen")

    @property
    def pairing_mode(self) -> str:
        """``instance`` or ``class`` (``auto``: instance for neural-sim, else class)."""
        if self.pairing != "auto":
            return self.pairing
        return "instance" if self.other == "neural-sim" else "class"

    @property
    def val_class_tuple(self) -> tuple[int, ...]:
        """Validation classes of the held-out-class selection (empty: none)."""
        v = self.val_classes.strip().lower()
        if v == "none":
            return ()
        if v == "auto":
            return self.seen_classes[-2:] if len(self.seen_classes) >= 4 else ()
        return parse_classes(self.val_classes, "val_classes")

    @property
    def checkpoints(self) -> tuple[int, ...]:
        return tuple(range(self.eval_every, self.epochs + 1, self.eval_every))
