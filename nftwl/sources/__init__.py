"""Where whitelist content comes from. Each source is a small plugin behind :class:`Source`."""

from nftwl.sources.base import LoadResult, Source

__all__ = ["LoadResult", "Source"]
