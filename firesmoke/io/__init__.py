"""Readers: one module per source format, each turning files into xarray objects.

Readers decode (scale, offset, fill values, CRS, coordinates) and do no other processing.
"""
