//! The model manifest (`models/delivery_success.manifest.json`, written by `models/train.py`)
//! and the pure checks a model file must pass before the device trusts it.

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::ModelError;
use super::features::FEATURES;

#[derive(Clone, Debug, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub file: String,
    pub sha256: String,
    pub input: InputSpec,
    pub output: OutputSpec,
}

#[derive(Clone, Debug, Deserialize)]
pub struct InputSpec {
    pub name: String,
    pub features: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct OutputSpec {
    pub name: String,
    /// Column of the output holding P(success).
    pub column: usize,
}

impl Manifest {
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        let m: Self = serde_json::from_str(text).map_err(|e| ModelError::Manifest {
            message: e.to_string(),
        })?;
        if m.input.features.iter().map(String::as_str).ne(FEATURES) {
            return Err(ModelError::FeatureSchema {
                expected: FEATURES.join(","),
                got: m.input.features.join(","),
            });
        }
        Ok(m)
    }

    /// The version string carried by `RouteReplanned` events.
    pub fn model_version(&self) -> String {
        let short = self.sha256.get(..12).unwrap_or(&self.sha256);
        format!("{}@{}+{short}", self.name, self.version)
    }

    /// The model bytes must hash to the manifest's digest.
    pub fn check_hash(&self, bytes: &[u8]) -> Result<(), ModelError> {
        let actual = hex::encode(Sha256::digest(bytes));
        if actual.eq_ignore_ascii_case(&self.sha256) {
            Ok(())
        } else {
            Err(ModelError::HashMismatch {
                expected: self.sha256.clone(),
                actual,
            })
        }
    }

    /// The session's declared input width must equal the feature count; the named output
    /// must exist.
    pub fn check_signature(
        &self,
        input: (&str, &[i64]),
        outputs: &[&str],
    ) -> Result<(), ModelError> {
        let width = self.input.features.len() as i64;
        if input.0 != self.input.name || input.1.len() != 2 || input.1[1] != width {
            return Err(ModelError::InputShape {
                expected: format!("{}: [N, {width}]", self.input.name),
                got: format!("{}: {:?}", input.0, input.1),
            });
        }
        if !outputs.contains(&self.output.name.as_str()) {
            return Err(ModelError::OutputMissing {
                name: self.output.name.clone(),
                got: outputs.join(","),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(features: &[&str]) -> String {
        serde_json::json!({
            "name": "m", "version": "1", "file": "m.onnx", "sha256": "00",
            "input": {"name": "features", "features": features},
            "output": {"name": "probabilities", "column": 1}
        })
        .to_string()
    }

    #[test]
    fn schema_must_match_feature_order() {
        assert!(Manifest::parse(&manifest(&FEATURES)).is_ok());
        let mut swapped = FEATURES;
        swapped.swap(0, 1);
        assert!(matches!(
            Manifest::parse(&manifest(&swapped)),
            Err(ModelError::FeatureSchema { .. })
        ));
    }

    #[test]
    fn signature_checks_width_and_output() {
        let Ok(m) = Manifest::parse(&manifest(&FEATURES)) else {
            panic!("manifest should parse");
        };
        let w = FEATURES.len() as i64;
        assert!(
            m.check_signature(("features", &[-1, w]), &["label", "probabilities"])
                .is_ok()
        );
        assert!(matches!(
            m.check_signature(("features", &[-1, w + 1]), &["probabilities"]),
            Err(ModelError::InputShape { .. })
        ));
        assert!(matches!(
            m.check_signature(("features", &[-1, w]), &["label"]),
            Err(ModelError::OutputMissing { .. })
        ));
    }
}
