"""Contrastive alignment of two encoders: projection heads, symmetric InfoNCE, retrieval.

Model ([Lin25] zero-shot task; CLIP, Radford et al. 2021): each modality's features go through
its own trainable projection ``h = f(z W + b)`` (``z`` the features standardised with the
training mean and std, ``f`` identity or GELU) and are L2-normalised, ``e = h / |h|``. For a
batch of B pairs the logits are ``L = e_a e_b^T / tau`` and the symmetric InfoNCE loss is::

    loss = 1/2 [ mean_i CE(L[i, :], T_row[i, :]) + mean_j CE(L[:, j], T_col[:, j]) ]

with ``CE(l, t) = -sum_k t_k log softmax(l)_k``. The targets come from a 0/1 positive mask P:
``T_row = P / rowsum(P)``, ``T_col = P / colsum(P)``. ``P = I`` is CLIP's loss (the i-th image
goes with the i-th sample of the other modality); ``positives="class"`` marks every same-class
pair of the batch as positive (the supervised-contrastive variant: in a batch of few classes the
identity mask calls most same-class pairs negatives). Gradients are written out by hand
(:func:`info_nce`, :func:`head_backward`) and trained with Adam (:func:`heads.adam_update`).

Retrieval: a query (other modality) hits at top-k when any of its k nearest gallery images
(cosine similarity of projections) has the query's class. :func:`chance_topk` is the exact
chance level of that rule and :func:`permutation_pvalue` a label-permutation test of it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np

from ..checks import check_choice, check_int, check_range
from ..errors import ConfigError, NotFittedError
from .heads import adam_update

ACTIVATIONS = ("linear", "gelu")
POSITIVES = ("pair", "class")
_SQRT_HALF = np.sqrt(0.5)


# -- pieces with hand-written gradients ------------------------------------------------------
def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU, ``x Phi(x)`` (Hendrycks & Gimpel 2016)."""
    from scipy.special import erf  # scipy loads on first use, not with the constants above

    return 0.5 * x * (1.0 + erf(x * _SQRT_HALF))


def gelu_grad(x: np.ndarray) -> np.ndarray:
    """d GELU / dx = ``Phi(x) + x phi(x)``."""
    from scipy.special import erf

    return 0.5 * (1.0 + erf(x * _SQRT_HALF)) + x * np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)


def head_forward(w: np.ndarray, b: np.ndarray, z: np.ndarray,
                 activation: str) -> tuple[np.ndarray, tuple]:
    """Projection ``e = f(z w + b) / |f(z w + b)|``; returns ``(e, cache)`` (e: n x dim)."""
    a = z @ w + b
    h = gelu(a) if activation == "gelu" else a
    norm = np.sqrt(np.einsum("nd,nd->n", h, h))[:, None] + 1e-12
    e = h / norm
    return e, (z, a, e, norm, activation)


def head_backward(cache: tuple, de: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradients ``(dw, db)`` of a head from ``de = dloss/de`` (n x dim)."""
    z, a, e, norm, activation = cache
    # through the normalisation: d(h/|h|) = (I - e e^T) dh / |h|
    dh = (de - e * np.einsum("nd,nd->n", e, de)[:, None]) / norm
    da = dh * gelu_grad(a) if activation == "gelu" else dh
    return z.T @ da, da.sum(axis=0)


def info_nce(e_a: np.ndarray, e_b: np.ndarray, temperature: float,
             positives: np.ndarray | None = None) -> tuple[float, np.ndarray, np.ndarray]:
    """Symmetric InfoNCE loss of a batch and its gradients.

    Parameters
    ----------
    e_a, e_b : ndarray, shape (B, dim)
        Embeddings of the two modalities (normally L2-normalised); row i of both is pair i.
    temperature : float
        ``tau`` > 0; logits are ``e_a e_b^T / tau``.
    positives : ndarray of bool, shape (B, B), optional
        Positive mask (default the identity). Every row and column needs a positive.

    Returns
    -------
    loss : float
    d_a, d_b : ndarray, shape (B, dim)
        ``dloss/de_a`` and ``dloss/de_b``.
    """
    n = e_a.shape[0]
    if e_b.shape != e_a.shape:
        raise ConfigError(f"info_nce needs equal embedding shapes. Got {e_a.shape} and "
                          f"{e_b.shape}.")
    p = np.eye(n) if positives is None else np.asarray(positives, dtype=np.float64)
    if p.shape != (n, n):
        raise ConfigError(f"The positive mask must be ({n}, {n}) for a batch of {n} pairs. Got "
                          f"shape {p.shape}.")
    rows, cols = np.flatnonzero(p.sum(axis=1) == 0), np.flatnonzero(p.sum(axis=0) == 0)
    if rows.size or cols.size:
        raise ConfigError(
            f"The positive mask needs a positive in every row and column; rows "
            f"{rows[:10].tolist()} and columns {cols[:10].tolist()} have none"
            f"{' (first 10 shown)' if max(rows.size, cols.size) > 10 else ''}. Mark each pair "
            "i as its own positive (mask[i, i] = True), or build the batch from pairs whose "
            "classes occur on both sides.")
    t_row = p / p.sum(axis=1, keepdims=True)
    t_col = p / p.sum(axis=0, keepdims=True)
    logits = e_a @ e_b.T / temperature
    lr = logits - logits.max(axis=1, keepdims=True)
    log_sr = lr - np.log(np.exp(lr).sum(axis=1, keepdims=True))
    lc = logits - logits.max(axis=0, keepdims=True)
    log_sc = lc - np.log(np.exp(lc).sum(axis=0, keepdims=True))
    loss = -0.5 * (np.sum(t_row * log_sr) + np.sum(t_col * log_sc)) / n
    d_logits = 0.5 * ((np.exp(log_sr) - t_row) + (np.exp(log_sc) - t_col)) / n
    return float(loss), d_logits @ e_b / temperature, d_logits.T @ e_a / temperature


def class_pairs(labels_a: np.ndarray, labels_b: np.ndarray,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Pair every row of the smaller side with a random same-class row of the other side.

    Returns index arrays ``(ia, ib)`` (one pair each), shuffled. Every class of either side must
    occur on the other side. Over epochs the larger side's rows are all drawn; anchoring on the
    smaller side keeps an epoch as short as the scarcer modality.
    """
    ya, yb = np.asarray(labels_a), np.asarray(labels_b)
    swap = yb.size < ya.size
    big, small = (yb, ya) if swap else (ya, yb)
    missing = sorted(set(np.unique(big).tolist()) ^ set(np.unique(small).tolist()))
    if missing:
        raise ConfigError(
            f"Pairing by class needs every class on both sides. Classes {missing} occur in only "
            "one modality; drop them from the class lists or add samples of them.")
    order = np.argsort(small, kind="stable")
    sorted_small = small[order]
    lo = np.searchsorted(sorted_small, big, side="left")
    hi = np.searchsorted(sorted_small, big, side="right")
    pick = order[lo + (rng.random(big.size) * (hi - lo)).astype(np.int64)]
    ibig = np.arange(big.size)
    perm = rng.permutation(big.size)
    ibig, pick = ibig[perm], pick[perm]
    return (pick, ibig) if swap else (ibig, pick)


# -- the model -------------------------------------------------------------------------------
class ContrastiveHeads:
    """Two projection heads aligned by symmetric InfoNCE, trained with Adam.

    scikit-learn-like: ``ContrastiveHeads(dim=64).fit(xa, xb, rng=rng, labels_a=ya,
    labels_b=yb)`` then ``transform_a`` / ``transform_b`` (L2-normalised embeddings).

    Parameters
    ----------
    dim : int
        Projection dimension (64 by default; the paper's BMI variant uses 256).
    temperature : float
        InfoNCE temperature tau.
    activation : {"linear", "gelu"}
        Non-linearity after the projection.
    positives : {"pair", "class"}
        Positive mask of a batch: the identity (CLIP) or every same-class pair.
    lr : float
        Adam learning rate.
    epochs : int
        Passes; an epoch pairs every row of the smaller modality once (:func:`class_pairs`) or,
        with ``paired=True``, every row pair once.
    batch_size : int
        Pairs per batch.
    l2 : float
        Weight decay on the projection weights.
    checkpoints : sequence of int
        Epochs after which the parameters are kept (``at_epoch``), for selection of the
        number of epochs; the last epoch is always kept.
    """

    # dim 64: the zero-shot protocol's projection size. temperature 0.1, lr 3e-3, l2 1e-4:
    # assumption (no source for these heads; CLIP, Radford et al. 2021, initialises tau at
    # 0.07); the zero-shot protocol chooses the temperature on validation anyway.
    def __init__(self, *, dim: int = 64, temperature: float = 0.1, activation: str = "linear",
                 positives: str = "pair", lr: float = 3e-3, epochs: int = 100,
                 batch_size: int = 64, l2: float = 1e-4,
                 checkpoints: Sequence[int] = ()) -> None:
        self.dim, self.temperature, self.activation = dim, temperature, activation
        self.positives, self.lr, self.epochs = positives, lr, epochs
        self.batch_size, self.l2, self.checkpoints = batch_size, l2, tuple(checkpoints)

    def _validate(self) -> None:
        o = "ContrastiveHeads"
        check_int(o, "dim", self.dim, 1, 100_000)
        check_range(o, "temperature", self.temperature, 0, 100, lo_open=True)
        check_choice(o, "activation", self.activation, ACTIVATIONS)
        check_choice(o, "positives", self.positives, POSITIVES)
        check_range(o, "lr", self.lr, 0, 10, lo_open=True)
        check_int(o, "epochs", self.epochs, 1, 100_000)
        check_int(o, "batch_size", self.batch_size, 2, 1 << 20,
                  hint="InfoNCE needs at least two pairs a batch (one positive, one negative).")
        check_range(o, "l2", self.l2, 0, 100)
        for e in self.checkpoints:
            check_int(o, "checkpoints", e, 1, self.epochs)

    @staticmethod
    def _check_x(name: str, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < 2:
            raise ConfigError(f"{name} must be (n_samples >= 2, n_features). Got {x.shape}.")
        if not np.all(np.isfinite(x)):
            raise ConfigError(f"{name} holds NaN or inf. Features must be finite.")
        return x

    def fit(self, x_a: np.ndarray, x_b: np.ndarray, *, rng: np.random.Generator,
            labels_a: np.ndarray | None = None, labels_b: np.ndarray | None = None,
            paired: bool = False) -> ContrastiveHeads:
        """Train both heads.

        Parameters
        ----------
        x_a, x_b : ndarray, shapes (n_a, d_a) and (n_b, d_b)
            Features of the two modalities.
        rng : numpy.random.Generator
            Initialisation, pairing and batch order.
        labels_a, labels_b : ndarray of int, optional
            Classes. Given (and ``paired`` False): every epoch pairs by class afresh
            (:func:`class_pairs`). Omitted: row i of ``x_a`` goes with row i of ``x_b``.
        paired : bool
            Row i of ``x_a`` goes with row i of ``x_b`` (instance pairs, ``n_a == n_b``); the
            labels, if given, only define the ``positives="class"`` mask.
        """
        self._validate()
        xa, xb = self._check_x("x_a", x_a), self._check_x("x_b", x_b)
        if (labels_a is None) != (labels_b is None):
            raise ConfigError("Give labels for both modalities (pairing by class) or neither.")
        paired = paired or labels_a is None
        if paired and xa.shape[0] != xb.shape[0]:
            raise ConfigError(
                f"Rows paired by index (instance pairs, or no labels) need as many rows in "
                f"x_a and x_b. Got {xa.shape[0]} and {xb.shape[0]}.")
        if labels_a is None:
            ya = yb = np.arange(xa.shape[0])
        else:
            ya, yb = np.asarray(labels_a), np.asarray(labels_b)
            if ya.shape != (xa.shape[0],) or yb.shape != (xb.shape[0],):
                raise ConfigError(
                    f"labels must have one entry per row: x_a {xa.shape[0]} rows, labels_a "
                    f"{ya.shape}; x_b {xb.shape[0]} rows, labels_b {yb.shape}.")
        self.mean_a_, self.scale_a_ = xa.mean(axis=0), xa.std(axis=0) + 1e-6
        self.mean_b_, self.scale_b_ = xb.mean(axis=0), xb.std(axis=0) + 1e-6
        za, zb = (xa - self.mean_a_) / self.scale_a_, (xb - self.mean_b_) / self.scale_b_
        # Glorot-uniform initialisation (Glorot & Bengio 2010)
        lim_a = np.sqrt(6.0 / (za.shape[1] + self.dim))
        lim_b = np.sqrt(6.0 / (zb.shape[1] + self.dim))
        params = [rng.uniform(-lim_a, lim_a, (za.shape[1], self.dim)), np.zeros(self.dim),
                  rng.uniform(-lim_b, lim_b, (zb.shape[1], self.dim)), np.zeros(self.dim)]
        moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
        keep = set(self.checkpoints) | {self.epochs}
        self.snapshots_: dict[int, list[np.ndarray]] = {}
        self.loss_history_: list[float] = []
        self.train_ops_ = 0
        step = 0
        for epoch in range(1, self.epochs + 1):
            if paired:
                perm = rng.permutation(xa.shape[0])
                ia, ib = perm, perm
            else:
                ia, ib = class_pairs(ya, yb, rng)
            losses = []
            for b0 in range(0, ia.size, self.batch_size):
                sa, sb = ia[b0:b0 + self.batch_size], ib[b0:b0 + self.batch_size]
                if sa.size < 2:
                    continue
                pos = (ya[sa][:, None] == yb[sb][None, :]) if self.positives == "class" \
                    else None
                ea, ca = head_forward(params[0], params[1], za[sa], self.activation)
                eb, cb = head_forward(params[2], params[3], zb[sb], self.activation)
                loss, dea, deb = info_nce(ea, eb, self.temperature, pos)
                gwa, gba = head_backward(ca, dea)
                gwb, gbb = head_backward(cb, deb)
                grads = [gwa + self.l2 * params[0], gba, gwb + self.l2 * params[2], gbb]
                step += 1
                for p, g, (m, v) in zip(params, grads, moments):
                    adam_update(p, g, m, v, step, self.lr)
                losses.append(loss)
                self.train_ops_ += self._batch_ops(sa.size, za.shape[1], zb.shape[1])
            self.loss_history_.append(float(np.mean(losses)) if losses else float("nan"))
            if epoch in keep:
                self.snapshots_[epoch] = [p.copy() for p in params]
        self.params_ = params
        self.n_epochs_ = self.epochs
        return self

    def _batch_ops(self, n: int, d_a: int, d_b: int) -> int:
        """Arithmetic operations of one training step (a MAC counts 2).

        Forward: both projections (n (d_a + d_b) dim MACs) and the logits (n^2 dim); backward:
        twice the forward MACs (input and weight gradients); Adam: ~10 operations a parameter.
        """
        macs = n * (d_a + d_b) * self.dim + n * n * self.dim
        n_params = (d_a + d_b + 2) * self.dim
        return 2 * 3 * macs + 10 * n_params

    def at_epoch(self, epoch: int) -> ContrastiveHeads:
        """A copy of this model with the parameters it had after ``epoch`` (a checkpoint)."""
        self._check_fitted()
        if epoch not in self.snapshots_:
            raise ConfigError(
                f"Epoch {epoch} was not kept. Kept epochs: {sorted(self.snapshots_)}; pass it "
                "in checkpoints.")
        out = copy.copy(self)
        out.params_ = self.snapshots_[epoch]
        out.n_epochs_ = epoch
        return out

    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise NotFittedError("This ContrastiveHeads is not fitted yet. Call fit() first.")

    def _transform(self, x: np.ndarray, mean: np.ndarray, scale: np.ndarray, w: np.ndarray,
                   b: np.ndarray, name: str) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != w.shape[0]:
            raise ConfigError(f"{name} must have shape (n_samples, {w.shape[0]}). Got {x.shape}.")
        return head_forward(w, b, (x - mean) / scale, self.activation)[0]

    def transform_a(self, x: np.ndarray) -> np.ndarray:
        """Embeddings (n x dim, unit norm) of modality-a features."""
        self._check_fitted()
        return self._transform(x, self.mean_a_, self.scale_a_, self.params_[0], self.params_[1],
                               "x_a")

    def transform_b(self, x: np.ndarray) -> np.ndarray:
        """Embeddings (n x dim, unit norm) of modality-b features."""
        self._check_fitted()
        return self._transform(x, self.mean_b_, self.scale_b_, self.params_[2], self.params_[3],
                               "x_b")


# -- retrieval -------------------------------------------------------------------------------
def nearest_labels(queries: np.ndarray, gallery: np.ndarray, gallery_labels: np.ndarray,
                   k: int) -> np.ndarray:
    """Labels of the k nearest gallery items of each query by cosine similarity (n_q x k),
    nearest first."""
    q = np.asarray(queries, dtype=np.float64)
    g = np.asarray(gallery, dtype=np.float64)
    gl = np.asarray(gallery_labels)
    check_int("nearest_labels", "k", k, 1, g.shape[0],
              hint=f"The gallery holds {g.shape[0]} items.")
    qn = q / (np.linalg.norm(q, axis=1, keepdims=True) + 1e-12)
    gn = g / (np.linalg.norm(g, axis=1, keepdims=True) + 1e-12)
    sim = qn @ gn.T
    # stable ordering: ties go to the lower gallery index, so runs are reproducible
    idx = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    return gl[idx]


def topk_hits(neighbour_labels: np.ndarray, query_labels: np.ndarray) -> np.ndarray:
    """Per query: True when any of its neighbours has its class (n_q,)."""
    return np.any(np.asarray(neighbour_labels) == np.asarray(query_labels)[:, None], axis=1)


def retrieval_accuracy(queries: np.ndarray, query_labels: np.ndarray, gallery: np.ndarray,
                       gallery_labels: np.ndarray, k: int = 1) -> float:
    """Fraction of queries with a same-class item among their k nearest gallery items."""
    nl = nearest_labels(queries, gallery, gallery_labels, k)
    return float(np.mean(topk_hits(nl, query_labels)))


def chance_topk(query_labels: np.ndarray, gallery_labels: np.ndarray, k: int) -> float:
    """Expected top-k hit rate of a random ranking (k gallery items drawn without replacement):
    mean over queries of ``1 - C(n - m, k) / C(n, k)``, m the gallery items of the query's
    class."""
    from scipy.special import comb

    gl = np.asarray(gallery_labels)
    n = gl.size
    classes, counts = np.unique(gl, return_counts=True)
    ql = np.asarray(query_labels)
    pos = np.minimum(np.searchsorted(classes, ql), classes.size - 1)
    m = np.where(classes[pos] == ql, counts[pos], 0)
    return float(np.mean(1.0 - comb(n - m, k, exact=False) / comb(n, k, exact=False)))


def permutation_pvalue(neighbour_labels: Sequence[np.ndarray],
                       query_labels: Sequence[np.ndarray], n_perm: int,
                       rng: np.random.Generator) -> float:
    """Label-permutation test of mean top-k accuracy (pooled over runs, e.g. seeds).

    Null hypothesis: a query's neighbours carry no information on its class. The query labels
    are shuffled within each run (keeping the class counts and the retrieved neighbours); the
    p-value is ``(1 + #{perm >= observed}) / (1 + n_perm)``.
    """
    check_int("permutation_pvalue", "n_perm", n_perm, 1, 10_000_000)
    if len(neighbour_labels) != len(query_labels) or not neighbour_labels:
        raise ConfigError("permutation_pvalue needs one neighbour array per query-label array.")
    obs = np.mean([topk_hits(nl, ql).mean() for nl, ql in zip(neighbour_labels, query_labels)])
    stats = np.zeros(n_perm)
    for nl, ql in zip(neighbour_labels, query_labels):
        ql = np.asarray(ql)
        perm = np.argsort(rng.random((n_perm, ql.size)), axis=1)
        shuffled = ql[perm]  # n_perm x n_q
        stats += np.any(np.asarray(nl)[None] == shuffled[:, :, None], axis=2).mean(axis=1)
    stats /= len(query_labels)
    return float((1 + np.sum(stats >= obs - 1e-12)) / (1 + n_perm))


def mean_interval(values: Sequence[float], level: float = 0.95) -> dict[str, float]:
    """Mean, sample std and Student-t interval of the mean over runs (seeds)."""
    from scipy import stats

    v = np.asarray(values, dtype=np.float64)
    m = float(v.mean())
    if v.size < 2:
        return {"mean": m, "std": float("nan"), "ci_low": float("nan"),
                "ci_high": float("nan"), "n": int(v.size)}
    s = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, v.size - 1)) * s / np.sqrt(v.size)
    return {"mean": m, "std": s, "ci_low": m - half, "ci_high": m + half, "n": int(v.size)}
