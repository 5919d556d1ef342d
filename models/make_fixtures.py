"""Test fixtures for the device's model checks: a valid ONNX classifier whose input has the
wrong width (9 features instead of the manifest's 10). `python3 models/make_fixtures.py`"""

import pathlib

import numpy as np
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.linear_model import LogisticRegression

HERE = pathlib.Path(__file__).resolve().parent

rng = np.random.default_rng(7)
x = rng.normal(size=(200, 9)).astype(np.float32)
y = (x[:, 0] > 0).astype(int)
model = LogisticRegression().fit(x, y)
onx = convert_sklearn(
    model,
    initial_types=[("features", FloatTensorType([None, 9]))],
    options={id(model): {"zipmap": False}},
    target_opset={"": 17, "ai.onnx.ml": 3},
)
(HERE / "fixtures" / "wrong_width.onnx").write_bytes(onx.SerializeToString())
