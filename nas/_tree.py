"""LA-MCTS's learned space partition: 2-means on [x, f(x)], an SVM per split, UCB.

Note [UCB form]
The source (Ch. 5, "Select via UCB") writes ``ucb_j = v_j / n_j + 2 Cp sqrt(2 log(n_p) / n_j)``
while defining ``v_j`` as the node's *mean* value, so ``v_j / n_j`` would divide
twice. We read the first term as the mean score of the node (sum / count) and use
``ucb_j = mean_j + 2 * Cp * sqrt(2 * ln(n_parent) / n_j)``; an empty node scores
+inf. With ``Cp = 0`` selection is greedy (always the better-mean child).

Note [Sign convention]
The source mixes maximization (Eq. 5.1) and minimization (the sampling step).
Here scores are always maximized (``Strategy`` negates values when
``maximize=False``), and the *good* child, kept on the left, is the one whose
samples have the higher mean score after the SVM has re-partitioned them.

Note [Clustering features]
k-means runs on ``[features(x), w * z(f(x))]`` with ``z`` the standardized score
and ``w`` chosen so that the score column carries as much variance as all the
``x`` columns together; with raw values (as in the reference code) the score is
one column among a hundred and the split ignores it in high dimensions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sklearn.svm import SVC

__all__ = ["Node", "PartitionTree", "effective_cp", "ucb_score"]

_KMEANS_ITERS = 30


def ucb_score(mean: float, n: int, n_parent: int, cp: float) -> float:
    """UCB of a child (see Note [UCB form]).

    >>> ucb_score(1.0, 4, 16, 0.0)
    1.0
    """
    if n <= 0:
        return math.inf
    return mean + 2.0 * cp * math.sqrt(2.0 * math.log(max(n_parent, 1)) / n)


def two_means(z: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Deterministic Lloyd's 2-means seeded at the best and the worst sample."""
    centers = np.stack([z[int(np.argmax(scores))], z[int(np.argmin(scores))]])
    labels = np.zeros(len(z), dtype=int)
    for it in range(_KMEANS_ITERS):
        d = ((z[:, None, :] - centers[None, :, :]) ** 2).sum(-1)
        new = np.argmin(d, axis=1)
        if it and np.array_equal(new, labels):
            break
        labels = new
        for k in (0, 1):
            if np.any(labels == k):
                centers[k] = z[labels == k].mean(0)
    return labels


@dataclass
class Node:
    """A region: the indices of the samples it holds, and its split if any."""

    idx: np.ndarray
    mean: float
    svm: SVC | None = None
    good_label: int = 0
    left: Node | None = None  # the good (higher mean) child
    right: Node | None = None
    splittable: bool = True
    depth: int = 0
    children: list[Node] = field(default_factory=list)

    @property
    def n(self) -> int:
        """Number of samples in the region (the node's visit count)."""
        return len(self.idx)

    def goes_left(self, feats: np.ndarray) -> np.ndarray:
        """Boolean mask: which feature rows the node's SVM sends to the good child."""
        if self.svm is None:
            raise RuntimeError("goes_left called on a leaf")
        return np.asarray(self.svm.predict(feats) == self.good_label)


Path = list[tuple[Node, bool]]  # (internal node, went left)


class PartitionTree:
    """Partition of the observed samples; splits are learned lazily on demand.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((60, 2)); y = -((x - 0.3) ** 2).sum(1)
    >>> tree = PartitionTree(x, y, leaf_size=10, cp=0.0)
    >>> leaf, path = tree.select()
    >>> bool(y[leaf.idx].mean() > y.mean())
    True
    """

    def __init__(
        self,
        feats: np.ndarray,
        scores: np.ndarray,
        leaf_size: int = 20,
        cp: float = 1.0,
        kernel: str = "rbf",
        svm_c: float = 1.0,
    ) -> None:
        if leaf_size < 2:
            raise ValueError(f"leaf_size must be >= 2, got {leaf_size}")
        if cp < 0:
            raise ValueError(f"cp must be >= 0, got {cp}")
        self.feats = np.asarray(feats, dtype=float)
        self.scores = np.asarray(scores, dtype=float)
        self.leaf_size = leaf_size
        self.cp = cp
        self.kernel = kernel
        self.svm_c = svm_c
        idx = np.arange(len(self.scores))
        self.root = Node(idx, float(self.scores.mean()) if len(idx) else 0.0)

    def split(self, node: Node) -> bool:
        """Split ``node`` if it holds more than ``leaf_size`` samples; True if split."""
        if node.left is not None:
            return True
        if not node.splittable or node.n <= self.leaf_size:
            return False
        node.splittable = False
        x, y = self.feats[node.idx], self.scores[node.idx]
        var_x = float(x.var(0).sum())
        if var_x <= 0 or y.std() <= 0:
            return False
        z = np.hstack([x, ((y - y.mean()) / y.std() * math.sqrt(var_x))[:, None]])
        labels = two_means(z, y)
        if labels.min() == labels.max():
            return False
        from sklearn.svm import SVC  # lazily: importing sklearn costs ~1 s (nas --help)

        # A soft SVM sometimes puts every sample on one side of a small, lopsided
        # split; a stiffer, class-balanced one usually separates it.
        for c, weight in ((self.svm_c, None), (100.0 * self.svm_c, "balanced")):
            svm = SVC(kernel=self.kernel, C=c, gamma="scale", class_weight=weight)
            svm.fit(x, labels)
            pred = svm.predict(x)
            if pred.min() != pred.max():
                break
        else:
            return False
        means = [float(y[pred == k].mean()) for k in (0, 1)]
        good = 0 if means[0] >= means[1] else 1
        node.svm, node.good_label = svm, good
        node.left = Node(node.idx[pred == good], means[good], depth=node.depth + 1)
        node.right = Node(node.idx[pred != good], means[1 - good], depth=node.depth + 1)
        node.children = [node.left, node.right]
        node.splittable = True
        return True

    def select(self) -> tuple[Node, Path]:
        """Descend from the root by UCB, splitting on the way; return leaf and path."""
        node, path = self.root, []
        while self.split(node):
            assert node.left is not None and node.right is not None
            ucb_l = ucb_score(node.left.mean, node.left.n, node.n, self.cp)
            ucb_r = ucb_score(node.right.mean, node.right.n, node.n, self.cp)
            go_left = ucb_l >= ucb_r
            path.append((node, go_left))
            node = node.left if go_left else node.right
        return node, path

    def build(self) -> list[Node]:
        """Split every splittable node (for inspection); return the leaves."""
        leaves, todo = [], [self.root]
        while todo:
            node = todo.pop()
            if self.split(node):
                todo.extend(node.children)
            else:
                leaves.append(node)
        return leaves


def in_region(path: Path, feats: np.ndarray) -> np.ndarray:
    """Boolean mask: feature rows that satisfy every SVM decision on ``path``."""
    mask = np.ones(len(feats), dtype=bool)
    for node, went_left in path:
        if not mask.any():
            break
        sel = np.flatnonzero(mask)
        mask[sel] = node.goes_left(feats[sel]) == went_left
    return mask


def effective_cp(cp: float | None, fraction: float, scores: np.ndarray) -> float:
    """``cp`` when given, else ``fraction`` of the observed score range (0 with no data).

    Shared by LA-MCTS and LaNAS.

    >>> import numpy as np
    >>> effective_cp(None, 0.1, np.array([1.0, 3.0]))
    0.2
    """
    if cp is not None:
        return cp
    if not len(scores):
        return 0.0
    return fraction * float(scores.max() - scores.min())
