"""Vector search over face collections: an index per collection, kept in memory by
each process and brought up to date from the store's change log before every search.

`CollectionIndexes` is the entry point; `vectors` holds the matrix and the exact
search, `approximate` the faiss IVF-Flat index used for very large collections.
"""

from rekollect.index.indexes import CollectionIndexes

__all__ = ["CollectionIndexes"]
