"""PLAID: a compressed late-interaction index over token embeddings, and its staged search.

Encoders write documents' token vectors as `TokenShard`s (`write_shard`, in `shards`);
`build_index` (`build`) compresses shards into an index folder the way ColBERTv2 does (the
residual codec: `codec`), and `PlaidIndex` (`search`) searches it the way PLAID does.
"""

from systems.colbert.plaid.build import build_index
from systems.colbert.plaid.codec import default_centroids
from systems.colbert.plaid.search import PlaidIndex
from systems.colbert.plaid.shards import TokenShard, write_shard

__all__ = ["PlaidIndex", "TokenShard", "build_index", "default_centroids", "write_shard"]
