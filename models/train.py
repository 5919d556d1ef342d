"""Trains the delivery-success model on attempts exported from the Rust synthetic world.

    python3 models/train.py --data models/data/train.csv --seed 7

Held-out evaluation on the last days (never seen in training): AUC, Brier score, log loss, a
calibration plot. Exports ONNX (no ZipMap: outputs `label` and `probabilities` [N, 2]) and the
manifest the device checks at load (sha256, feature names and order, output).
"""

import argparse
import hashlib
import json
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
from skl2onnx import convert_sklearn  # noqa: E402
from skl2onnx.common.data_types import FloatTensorType  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: E402
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score  # noqa: E402

NAME = "delivery_success"
VERSION = "1.0.0"
HERE = pathlib.Path(__file__).resolve().parent


def load(path):
    with open(path) as f:
        header = f.readline().strip().split(",")
    data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)
    features = header[1:-1]
    return data[:, 0].astype(int), data[:, 1:-1].astype(np.float32), data[:, -1].astype(int), features


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(HERE / "data" / "train.csv"))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--data-seed", type=int, default=7)
    ap.add_argument("--holdout-days", type=int, default=12)
    ap.add_argument("--out", default=str(HERE))
    args = ap.parse_args()
    out = pathlib.Path(args.out)

    day, x, y, features = load(args.data)
    cut = day.max() + 1 - args.holdout_days
    train, test = day < cut, day >= cut
    model = HistGradientBoostingClassifier(
        max_iter=80,
        max_leaf_nodes=15,
        learning_rate=0.12,
        min_samples_leaf=40,
        early_stopping=False,
        random_state=args.seed,
    )
    model.fit(x[train], y[train])
    p = model.predict_proba(x[test])[:, 1]
    base = np.full_like(p, y[train].mean())
    metrics = {
        "train_rows": int(train.sum()),
        "test_rows": int(test.sum()),
        "holdout_days": f"{int(cut)}..{int(day.max())}",
        "auc": round(float(roc_auc_score(y[test], p)), 4),
        "brier": round(float(brier_score_loss(y[test], p)), 4),
        "log_loss": round(float(log_loss(y[test], p)), 4),
        "brier_base_rate": round(float(brier_score_loss(y[test], base)), 4),
        "success_rate_test": round(float(y[test].mean()), 4),
    }

    frac, mean_pred = calibration_curve(y[test], p, n_bins=10, strategy="quantile")
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
    ax.plot(mean_pred, frac, "o-", label=f"model (Brier {metrics['brier']}, AUC {metrics['auc']})")
    ax.set_xlabel("predicted P(success)")
    ax.set_ylabel("observed success rate (held-out days)")
    ax.set_title("delivery_success calibration")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(out / "calibration.png", dpi=80, metadata={"Software": None})
    metrics["calibration"] = [
        {"predicted": round(float(a), 4), "observed": round(float(b), 4)} for a, b in zip(mean_pred, frac)
    ]

    onx = convert_sklearn(
        model,
        name=NAME,
        initial_types=[("features", FloatTensorType([None, len(features)]))],
        options={id(model): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    blob = onx.SerializeToString()
    onnx_path = out / f"{NAME}.onnx"
    onnx_path.write_bytes(blob)

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    outputs = [o.name for o in sess.get_outputs()]
    got = sess.run(["probabilities"], {"features": x[test]})[0][:, 1]
    metrics["onnx_max_abs_diff"] = float(np.abs(got - p).max())
    assert metrics["onnx_max_abs_diff"] < 1e-4, metrics["onnx_max_abs_diff"]

    manifest = {
        "name": NAME,
        "version": VERSION,
        "file": onnx_path.name,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "bytes": len(blob),
        "input": {"name": "features", "dtype": "float32", "shape": [-1, len(features)], "features": features},
        "output": {
            "name": "probabilities",
            "column": 1,
            "meaning": "P(the attempt at this stop, starting at this time, delivers the parcel)",
            "all_outputs": outputs,
        },
        "training": {
            "data": "cargo run --release -p courier-core --example export_training "
            f"-- --seed {args.data_seed} (courier_core::reroute::world)",
            "data_seed": args.data_seed,
            "model_seed": args.seed,
            "estimator": "sklearn HistGradientBoostingClassifier(max_iter=80, max_leaf_nodes=15, "
            "learning_rate=0.12, min_samples_leaf=40)",
        },
        "metrics": metrics,
    }
    (out / f"{NAME}.manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps({k: v for k, v in metrics.items() if k != "calibration"}, indent=2))


if __name__ == "__main__":
    main()
