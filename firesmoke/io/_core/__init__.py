"""Format helpers shared by the readers: HDF4, checksums, handle cache, GeoTIFF checks, text."""
