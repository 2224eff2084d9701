"""Sentinel-2 readers: band tables and chips, whole scenes (STAC/GeoTIFF), the smoke dataset."""
