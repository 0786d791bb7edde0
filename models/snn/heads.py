"""Trainable heads on top of the reservoir: a softmax readout trained with Adam or L-BFGS.

scikit-learn-like: ``SoftmaxReadout(...).fit(X, y, rng=...)`` then ``predict``/``predict_proba``.
Features are standardised with the training set's mean and standard deviation (spike counts of
different neurons differ by orders of magnitude).
"""

from __future__ import annotations

import numpy as np

from ..checks import check_choice, check_int, check_range
from ..errors import ConfigError, NotFittedError


def adam_update(param: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray, t: int,
                lr: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> None:
    """In-place Adam step (Kingma & Ba 2015) on ``param`` with moment buffers ``m``, ``v``."""
    m *= b1
    m += (1 - b1) * grad
    v *= b2
    v += (1 - b2) * grad * grad
    param -= lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class SoftmaxReadout:
    """One fully connected layer with softmax, cross-entropy + L2, trained with Adam or L-BFGS.

    Parameters
    ----------
    lr : float
        Adam learning rate.
    epochs : int
        Passes over the training set (Adam); the iteration cap for L-BFGS is ``10 * epochs``.
    batch_size : int
        Minibatch size.
    l2 : float
        Weight decay on the weights (not the bias).
    solver : {"adam", "lbfgs"}
        ``adam``: minibatches as the paper's scripts; ``lbfgs``: full-batch quasi-Newton on the
        same (convex) loss, deterministic and free of learning-rate tuning.
    """

    def __init__(self, *, lr: float = 0.01, epochs: int = 60, batch_size: int = 64,
                 l2: float = 1e-3, solver: str = "adam") -> None:
        self.lr, self.epochs, self.batch_size, self.l2 = lr, epochs, batch_size, l2
        self.solver = solver

    def _validate(self) -> None:
        o = "SoftmaxReadout"
        check_range(o, "lr", self.lr, 0, 10, lo_open=True)
        check_int(o, "epochs", self.epochs, 1, 100_000)
        check_int(o, "batch_size", self.batch_size, 1, 1 << 20)
        check_range(o, "l2", self.l2, 0, 100)
        check_choice(o, "solver", self.solver, ("adam", "lbfgs"))

    def fit(self, x: np.ndarray, y: np.ndarray, *, rng: np.random.Generator,
            n_classes: int | None = None) -> SoftmaxReadout:
        self._validate()
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y)
        if x.ndim != 2 or y.shape != (x.shape[0],):
            raise ConfigError(
                f"fit expects X (n_samples, n_features) and y (n_samples,). Got {x.shape} and "
                f"{y.shape}.")
        if not np.all(np.isfinite(x)):
            raise ConfigError("X holds NaN or inf. Features must be finite.")
        k = int(n_classes if n_classes is not None else y.max() + 1)
        self.mean_ = x.mean(axis=0)
        self.scale_ = x.std(axis=0) + 1e-6
        z = (x - self.mean_) / self.scale_
        d = z.shape[1]
        self.coef_ = np.zeros((d, k))
        self.intercept_ = np.zeros(k)
        onehot = np.eye(k)[y]
        self.n_classes_ = k
        if self.solver == "lbfgs":
            self._fit_lbfgs(z, onehot)
            return self
        mw, vw = np.zeros_like(self.coef_), np.zeros_like(self.coef_)
        mb, vb = np.zeros(k), np.zeros(k)
        step = 0
        n = z.shape[0]
        for _ in range(self.epochs):
            order = rng.permutation(n)
            for b0 in range(0, n, self.batch_size):
                idx = order[b0:b0 + self.batch_size]
                p = softmax(z[idx] @ self.coef_ + self.intercept_)
                err = (p - onehot[idx]) / idx.size
                step += 1
                adam_update(self.coef_, z[idx].T @ err + self.l2 * self.coef_, mw, vw, step,
                            self.lr)
                adam_update(self.intercept_, err.sum(axis=0), mb, vb, step, self.lr)
        return self

    def _fit_lbfgs(self, z: np.ndarray, onehot: np.ndarray) -> None:
        # scipy loads here, with the solver that needs it: the command line's parser imports
        # this module's dependants without running a fit
        from scipy.optimize import minimize

        n, d = z.shape
        k = onehot.shape[1]

        # mean cross-entropy + l2/2 |W|^2: the objective whose gradient the Adam loop follows
        def loss_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
            w, b = theta[:d * k].reshape(d, k), theta[d * k:]
            logits = z @ w + b
            logits -= logits.max(axis=1, keepdims=True)
            logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
            err = (np.exp(logp) - onehot) / n
            loss = -float((onehot * logp).sum()) / n + 0.5 * self.l2 * float((w * w).sum())
            return loss, np.concatenate([(z.T @ err + self.l2 * w).ravel(), err.sum(axis=0)])

        res = minimize(loss_grad, np.zeros(d * k + k), jac=True, method="L-BFGS-B",
                       options={"maxiter": 10 * self.epochs})
        self.coef_ = res.x[:d * k].reshape(d, k)
        self.intercept_ = res.x[d * k:]

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        if not hasattr(self, "coef_"):
            raise NotFittedError("This SoftmaxReadout is not fitted yet. Call fit() first.")
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.coef_.shape[0]:
            raise ConfigError(
                f"X must have shape (n_samples, {self.coef_.shape[0]}). Got {x.shape}.")
        return ((x - self.mean_) / self.scale_) @ self.coef_ + self.intercept_

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return softmax(self.decision_function(x))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.decision_function(x).argmax(axis=1)

    def score(self, x: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(self.predict(x) == np.asarray(y)))

    @property
    def n_train_ops_per_sample_(self) -> int:
        """Operations of one training step per sample: forward MACs, backward twice (2 ops a MAC)."""
        d, k = self.coef_.shape
        return 2 * 3 * d * k
