"""Log-sum-exp, softmax and losses over data that does not fit in memory.

``LogSumExp`` is the mergeable state of Problem 4's identity: the running largest term and
the sum of the others scaled by it.  It drives the streaming functions here, which read an
iterable of chunks, and the Dask fast paths of :func:`stablenn.logsumexp`,
:func:`stablenn.softmax`, :func:`stablenn.log_softmax` and both losses (one tree reduction
over the state), which run unchanged on a ``dask.distributed`` cluster.
"""

from ._importance import ImportanceWeights, importance_weights
from ._losses import (
    BinaryCrossEntropyWithLogits,
    CrossEntropyWithLogits,
    binary_cross_entropy_with_logits,
    cross_entropy_with_logits,
)
from ._lse import LogSumExp, logsumexp
from ._softmax import log_softmax, softmax

__all__ = [
    "BinaryCrossEntropyWithLogits",
    "CrossEntropyWithLogits",
    "ImportanceWeights",
    "LogSumExp",
    "binary_cross_entropy_with_logits",
    "cross_entropy_with_logits",
    "importance_weights",
    "log_softmax",
    "logsumexp",
    "softmax",
]
