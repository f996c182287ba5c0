import json

import numpy as np
import pytest

from zsattr.core import arrayfile


def test_round_trip_without_pickle(tmp_path):
    path = tmp_path / "x.thing"
    arrayfile.write(path, {"format": 3, "names": ["a"]}, {"w": np.arange(6.0).reshape(2, 3)})
    assert path.is_file() and not (tmp_path / "x.thing.npz").exists()  # the name is kept as given
    meta, arrays = arrayfile.read(path, "thing file", "make one")
    assert meta == {"format": 3, "names": ["a"]} and np.array_equal(arrays["w"], np.arange(6.0).reshape(2, 3))
    arrayfile.check_format(path, meta, 3, "thing file", "Redo it.")
    with pytest.raises(arrayfile.ArrayFileError, match="Upgrade zsattr"):
        arrayfile.check_format(path, meta, 2, "thing file", "Redo it.")
    with pytest.raises(arrayfile.ArrayFileError, match="format 3.*Redo it"):
        arrayfile.check_format(path, meta, 4, "thing file", "Redo it.")
    with pytest.raises(ValueError, match="reserved"):
        arrayfile.write(path, {}, {"meta": np.zeros(1)})


def test_unreadable_files_are_one_error_naming_the_file(tmp_path):
    with pytest.raises(arrayfile.ArrayFileError, match="does not exist .make one"):
        arrayfile.read(tmp_path / "none", "thing file", "make one")
    (tmp_path / "text").write_text("hello")
    with pytest.raises(arrayfile.ArrayFileError, match="text is not a readable thing file"):
        arrayfile.read(tmp_path / "text", "thing file", "make one")
    with open(tmp_path / "bare", "wb") as fh:
        np.savez(fh, x=np.zeros(2))
    with pytest.raises(arrayfile.ArrayFileError, match="no thing metadata"):
        arrayfile.read(tmp_path / "bare", "thing file", "make one")
    with open(tmp_path / "list", "wb") as fh:
        np.savez(fh, meta=np.array(json.dumps([1, 2])))
    with pytest.raises(arrayfile.ArrayFileError, match="not a JSON object"):
        arrayfile.read(tmp_path / "list", "thing file", "make one")
    with open(tmp_path / "broken", "wb") as fh:
        np.savez(fh, meta=np.array("{not json"))
    with pytest.raises(arrayfile.ArrayFileError, match="metadata is damaged"):
        arrayfile.read(tmp_path / "broken", "thing file", "make one")
    with open(tmp_path / "pickled", "wb") as fh:
        np.savez(fh, meta=np.array(json.dumps({})), obj=np.array([{"a": 1}], dtype=object))
    with pytest.raises(arrayfile.ArrayFileError, match="not a readable"):
        arrayfile.read(tmp_path / "pickled", "thing file", "make one")
