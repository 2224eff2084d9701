"""HDF4 / HDF-EOS helpers."""

from __future__ import annotations

import numpy as np
import pytest

from firesmoke.errors import CorruptFileError, MissingLayerError, WrongProductError
from firesmoke.io._core.hdf4 import (
    grid_info,
    packed_dms_to_degrees,
    parse_odl,
    read_attributes,
    read_sds,
)

ODL = """GROUP=GridStructure
\tGROUP=GRID_1
\t\tGridName="G"
\t\tXDim=4
\t\tYDim=2
\t\tUpperLeftPointMtrs=(-10000000.000000,44000000.000000)
\t\tLowerRightMtrs=(5030000.000000,36000000.000000)
\t\tProjection=GCTP_GEO
\t\tGROUP=DataField
\t\t\tOBJECT=DataField_1
\t\t\t\tDataFieldName="Band"
\t\t\tEND_OBJECT=DataField_1
\t\tEND_GROUP=DataField
\tEND_GROUP=GRID_1
END_GROUP=GridStructure
END
\x00\x00"""


def test_parse_odl_and_grid_info():
    odl = parse_odl(ODL)
    grid = odl["GridStructure"]["GRID_1"]
    assert grid["XDim"] == 4 and grid["GridName"] == "G"
    assert grid["UpperLeftPointMtrs"] == (-10000000.0, 44000000.0)
    g = grid_info(ODL)
    assert (g.name, g.xdim, g.ydim, g.projection, g.fields) == ("G", 4, 2, "GCTP_GEO", ("Band",))


def test_grid_info_without_grid():
    with pytest.raises(WrongProductError, match="no HDF-EOS grid"):
        grid_info("GROUP=SwathStructure\nEND_GROUP=SwathStructure\nEND", path="x.hdf")


@pytest.mark.parametrize(
    ("packed", "degrees"),
    [(-10000000.0, -10.0), (44000000.0, 44.0), (5030000.0, 5.5), (-120030036.0, -120.51), (0.0, 0.0)],
)
def test_packed_dms(packed, degrees):
    assert packed_dms_to_degrees(packed) == pytest.approx(degrees)


def test_real_granule_grid(real_viirs_dir):
    f = next(real_viirs_dir.glob("*Radiance_M12.hdf"))
    g = grid_info(read_attributes(f)["StructMetadata.0"])
    assert (g.xdim, g.ydim) == (1500, 800)
    assert [packed_dms_to_degrees(v) for v in (*g.upper_left, *g.lower_right)] == [-10, 44, 5, 36]
    data, attrs = read_sds(f, "Radiance_M12", (slice(100, 110), slice(0, 20)))
    full, _ = read_sds(f, "Radiance_M12")
    np.testing.assert_array_equal(data, full[100:110, 0:20])
    assert attrs["Scale"] > 0
    with pytest.raises(MissingLayerError, match="Radiance_M15"):
        read_sds(f, "Radiance_M15")


def test_corrupt_files(tmp_path, real_viirs_dir):
    empty = tmp_path / "empty.hdf"
    empty.write_bytes(b"")
    with pytest.raises(CorruptFileError, match="empty"):
        read_attributes(empty)
    text = tmp_path / "text.hdf"
    text.write_text("hello")
    with pytest.raises(CorruptFileError, match="not an HDF4 file"):
        read_attributes(text)
    src = next(real_viirs_dir.glob("*Radiance_M12.hdf")).read_bytes()
    cut = tmp_path / "cut.hdf"
    cut.write_bytes(src[: len(src) // 3])
    with pytest.raises(CorruptFileError) as info:
        read_sds(cut, "Radiance_M12")
    assert str(cut) in str(info.value)
    with pytest.raises(CorruptFileError, match="not found"):
        read_attributes(tmp_path / "missing.hdf")
