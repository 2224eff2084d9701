"""Helpers for the VIIRS reader tests: small NPP_VMAES_L1-like HDF4 files and decoding.

The independent decoder below is written from the format facts (raw * Scale + Offset,
fill by the FILL_TEST_VALUE threshold) with pyhdf + numpy only, without firesmoke.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

GRID_ODL = """GROUP=SwathStructure
END_GROUP=SwathStructure
GROUP=GridStructure
\tGROUP=GRID_1
\t\tGridName="VIIRS_EV_750M_SDR"
\t\tXDim={xdim}
\t\tYDim={ydim}
\t\tUpperLeftPointMtrs=({ul_x:.6f},{ul_y:.6f})
\t\tLowerRightMtrs=({lr_x:.6f},{lr_y:.6f})
\t\tProjection={projection}
\t\tGridOrigin=HDFE_GD_UL
\t\tPixelRegistration=HDFE_CORNER
\t\tGROUP=DataField
\t\t\tOBJECT=DataField_1
\t\t\t\tDataFieldName="{layer}"
\t\t\t\tDataType=DFNT_UINT16
\t\t\t\tDimList=("YDim","XDim")
\t\t\tEND_OBJECT=DataField_1
\t\tEND_GROUP=DataField
\tEND_GROUP=GRID_1
END_GROUP=GridStructure
GROUP=PointStructure
END_GROUP=PointStructure
END
"""


def packed(deg: float) -> float:
    """Degrees (whole minutes) -> packed DDDMMMSSS.SS."""
    sign = -1 if deg < 0 else 1
    d = abs(deg)
    whole = int(d)
    minutes = round((d - whole) * 60)
    return sign * (whole * 1_000_000 + minutes * 1000)


def write_vmaes_layer(
    path: Path,
    layer: str,
    data: np.ndarray,
    bounds: tuple[float, float, float, float] = (-10.0, 36.0, 5.0, 44.0),
    short_name: str = "NPP_VMAES_L1",
    scale: float = 2.5e-05,
    offset: float = 0.0,
    projection: str = "GCTP_GEO",
) -> Path:
    """Write a one-SDS HDF4 file shaped like an NPP_VMAES_L1 layer file."""
    from pyhdf.SD import SD, SDC

    left, bottom, right, top = bounds
    ydim, xdim = data.shape
    odl = GRID_ODL.format(
        xdim=xdim,
        ydim=ydim,
        ul_x=packed(left),
        ul_y=packed(top),
        lr_x=packed(right),
        lr_y=packed(bottom),
        projection=projection,
        layer=layer,
    )
    sd = SD(str(path), SDC.WRITE | SDC.CREATE | SDC.TRUNC)
    try:
        sd.ShortName = short_name
        sd.LongName = "VIIRS/NPP Moderate Resolution 6-Min L1 Swath SDR and GEO 750m"
        sd.DayNightFlag = "D"
        sd.Mission_Name = "NPP"
        sd.Spacecraft = "NPP"
        attr = sd.attr("StructMetadata.0")
        attr.set(SDC.CHAR8, odl)
        if data.dtype == np.uint16:
            sds = sd.create(layer, SDC.UINT16, data.shape)
            sds.Scale = float(scale)
            sds.Offset = float(offset)
            sds.FILL_TEST_VALUE = "UINT16_FILL_TEST = 65527"
        else:
            sds = sd.create(layer, SDC.FLOAT32, data.shape)
            sds.FILL_TEST_VALUE = "FLOAT32_FILL_TEST = -999"
        sds[:] = data
        sds.endaccess()
    finally:
        sd.end()
    return path


def independent_decode(path: Path, name: str) -> np.ndarray:
    """pyhdf + numpy decoding of one SDS (the reference for the reader)."""
    import re

    from pyhdf.SD import SD, SDC

    sd = SD(str(path), SDC.READ)
    try:
        sds = sd.select(name)
        raw = np.array(sds.get())
        attrs = sds.attributes()
        sds.endaccess()
    finally:
        sd.end()
    threshold = float(re.search(r"=\s*(\S+)", attrs["FILL_TEST_VALUE"]).group(1))
    scale = attrs.get("Scale", 1.0)
    offset = attrs.get("Offset", 0.0)
    out = (raw.astype(np.float64) * scale + offset).astype(np.float32)
    if raw.dtype.kind == "u":
        out[raw >= threshold] = np.nan
    else:
        out[raw <= threshold] = np.nan
    return out


def decode_banet_rules(path: Path, layer: str) -> tuple[np.ndarray, np.ndarray]:
    """``(values, raw)`` of one real VIIRS layer decoded with pyhdf + numpy by the banet.md
    rules (``raw * Scale + Offset``; fill: uint16 >= 65527, signed <= -999)."""
    from pyhdf.SD import SD, SDC

    sd = SD(str(path), SDC.READ)
    sds = sd.select(layer)
    raw = sds.get()
    attrs = sds.attributes()
    sd.end()
    val = raw.astype(np.float64) * attrs["Scale"] + attrs["Offset"] if "Scale" in attrs else raw.astype(np.float64)
    bad = raw >= 65527 if raw.dtype == np.uint16 else raw <= -999
    return np.where(bad, np.nan, val).astype(np.float32), raw
