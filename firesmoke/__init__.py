"""firesmoke: fire and smoke monitoring from satellites (BA-Net burned area from VIIRS +
FIRMS, industrial smoke plumes from Sentinel-2) on xarray, Dask and PyTorch."""

from firesmoke._version import __version__

__all__ = ["__version__"]
