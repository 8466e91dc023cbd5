"""nftwl: host port whitelists in nftables named sets, changed only by atomic transactions."""

__version__ = "0.1.0"
__all__ = ["__version__"]
