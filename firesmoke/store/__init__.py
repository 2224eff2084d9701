"""The store layer: Zarr stores on any fsspec location, their ledger and writer lock.

- :mod:`firesmoke.store.location`: a store's address (local folder or fsspec URL);
- :mod:`firesmoke.store.ledger`: finished-block ledger, template marker, writer lock,
  all inside the store (``.firesmoke/``);
- :mod:`firesmoke.store.zarr_store`: template / aligned block writes / whole products;
- :mod:`firesmoke.store.cubes`: resumable cube writes and completeness-checked opens.

GeoTIFF exports are in :mod:`firesmoke.store.geotiff`, quicklooks in :mod:`firesmoke.store.quicklook`,
safe local paths in :mod:`firesmoke.paths`.
"""

from firesmoke.paths import safe_join
from firesmoke.store.cubes import IncompleteStoreError, IncompleteStoreWarning, missing_days
from firesmoke.store.geotiff import export_geotiff
from firesmoke.store.ledger import Ledger, StoreLock, StoreLockedError
from firesmoke.store.location import Location, check_credentials
from firesmoke.store.quicklook import quicklook_png
from firesmoke.store.zarr_store import (
    check_writable,
    create_template,
    finalize_store,
    open_store,
    report_location,
    write_block,
    write_product,
    write_report,
)

__all__ = [
    "IncompleteStoreError",
    "IncompleteStoreWarning",
    "Ledger",
    "Location",
    "StoreLock",
    "StoreLockedError",
    "check_credentials",
    "check_writable",
    "create_template",
    "export_geotiff",
    "finalize_store",
    "missing_days",
    "open_store",
    "quicklook_png",
    "report_location",
    "safe_join",
    "write_block",
    "write_product",
    "write_report",
]
