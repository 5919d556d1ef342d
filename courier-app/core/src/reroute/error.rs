//! Why the model is not in use. Every variant leaves rerouting working: the solver runs alone
//! and the proposal carries a [`RerouteNotice`] the route screen shows.

use serde::{Deserialize, Serialize};
use thiserror::Error;

#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export_to = "core/"))]
#[derive(Clone, Debug, Error, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum ModelError {
    #[error(
        "ONNX Runtime library not found at {path} (run scripts/setup.sh or set ORT_DYLIB_PATH)"
    )]
    RuntimeMissing { path: String },
    #[error("ONNX Runtime failed to load: {message}")]
    RuntimeLoad { message: String },
    #[error("model file missing: {path}")]
    ModelMissing { path: String },
    #[error("model manifest unreadable: {message}")]
    Manifest { message: String },
    #[error("model features {got} do not match the device's {expected}")]
    FeatureSchema { expected: String, got: String },
    #[error("model file sha256 {actual} does not match the manifest's {expected}")]
    HashMismatch { expected: String, actual: String },
    #[error("model input shape {got} does not match {expected}")]
    InputShape { expected: String, got: String },
    #[error("model has no output {name} (has {got})")]
    OutputMissing { name: String, got: String },
    #[error("model file could not be loaded: {message}")]
    ModelLoad { message: String },
    #[error("inference failed: {message}")]
    Inference { message: String },
}

/// What the app shows when rerouting runs without the model.
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export_to = "core/"))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RerouteNotice {
    /// One line for the driver.
    pub message: String,
    /// The precise cause, for support.
    pub cause: ModelError,
}

impl RerouteNotice {
    pub fn solver_only(cause: ModelError) -> Self {
        Self {
            message: "Reordering by distance and time windows only: the delivery-success model \
                      is unavailable."
                .into(),
            cause,
        }
    }
}
