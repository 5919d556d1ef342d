//! The I/O side of the model: find the ONNX Runtime library, load it with `ort::init_from`
//! (which returns errors; ort's other loading paths panic when the library is missing), read
//! the model and its manifest, validate, and run batched inference.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{TensorRef, ValueType};

use super::ModelError;
use super::features::WIDTH;
use super::manifest::Manifest;

/// The runtime library file shipped in the `onnxruntime==1.31.1` wheel.
pub const RUNTIME_FILE: &str = "libonnxruntime.so.1.31.1";
/// Environment variable that overrides where the runtime is looked for.
pub const RUNTIME_ENV: &str = "ORT_DYLIB_PATH";
/// The manifest file name inside the models directory.
pub const MANIFEST_FILE: &str = "delivery_success.manifest.json";

/// Where the runtime library is: `$ORT_DYLIB_PATH` if set, else the project venv that
/// `scripts/setup.sh` creates (`<root>/.venv/lib/python3*/site-packages/onnxruntime/capi/`).
/// Returns the candidate path even when it does not exist, so the error can name it.
pub fn locate_runtime(project_root: &Path) -> PathBuf {
    if let Some(p) = std::env::var_os(RUNTIME_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let lib = project_root.join(".venv").join("lib");
    let found = std::fs::read_dir(&lib).ok().and_then(|dir| {
        dir.filter_map(Result::ok)
            .map(|e| {
                e.path()
                    .join("site-packages/onnxruntime/capi")
                    .join(RUNTIME_FILE)
            })
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        lib.join("python3/site-packages/onnxruntime/capi")
            .join(RUNTIME_FILE)
    })
}

/// One environment per process, created by the first successful load.
static ENV: Mutex<Option<Environment>> = Mutex::new(None);

fn environment(runtime: &Path) -> Result<Environment, ModelError> {
    if !runtime.is_file() {
        return Err(ModelError::RuntimeMissing {
            path: runtime.display().to_string(),
        });
    }
    let mut slot = ENV.lock().map_err(|_| ModelError::RuntimeLoad {
        message: "runtime lock poisoned".into(),
    })?;
    if let Some(env) = slot.as_ref() {
        return Ok(env.clone());
    }
    let load = |message: String| ModelError::RuntimeLoad { message };
    let env = ort::init_from(runtime)
        .map_err(|e| load(e.to_string()))?
        .with_name("doorstep-reroute")
        .build()
        .map_err(|e| load(e.to_string()))?;
    *slot = Some(env.clone());
    Ok(env)
}

/// A validated delivery-success model, ready for batched inference.
pub struct OnnxModel {
    session: Session,
    manifest: Manifest,
    input: String,
    output: String,
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel")
            .field("version", &self.manifest.model_version())
            .finish()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ModelError> {
    std::fs::read(path).map_err(|e| ModelError::ModelMissing {
        path: format!("{}: {e}", path.display()),
    })
}

impl OnnxModel {
    /// Loads `models_dir/delivery_success.manifest.json` and the model it names, checks the
    /// hash, loads the runtime, and checks the model's signature against the manifest.
    pub fn load(models_dir: &Path, runtime: &Path) -> Result<Self, ModelError> {
        let manifest_text = read(&models_dir.join(MANIFEST_FILE))?;
        let manifest = Manifest::parse(&String::from_utf8_lossy(&manifest_text))?;
        let bytes = read(&models_dir.join(&manifest.file))?;
        manifest.check_hash(&bytes)?;
        let env = environment(runtime)?;
        let bad = |e: ort::Error| ModelError::ModelLoad {
            message: e.to_string(),
        };
        let session = Session::builder(&env)
            .map_err(bad)?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| bad(e.into()))?
            .with_intra_threads(1)
            .map_err(|e| bad(e.into()))?
            .commit_from_memory(&bytes)
            .map_err(bad)?;
        let inputs = session.inputs();
        let [input] = inputs else {
            return Err(ModelError::InputShape {
                expected: "one input".into(),
                got: format!("{} inputs", inputs.len()),
            });
        };
        let shape: Vec<i64> = match input.dtype() {
            ValueType::Tensor { shape, .. } => shape.to_vec(),
            other => {
                return Err(ModelError::InputShape {
                    expected: "a float tensor".into(),
                    got: other.to_string(),
                });
            }
        };
        let outputs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        manifest.check_signature((input.name(), &shape), &outputs)?;
        Ok(Self {
            input: input.name().to_owned(),
            output: manifest.output.name.clone(),
            session,
            manifest,
        })
    }

    pub fn version(&self) -> String {
        self.manifest.model_version()
    }

    /// P(success) for every row of `rows` (row-major, `WIDTH` columns), in one run.
    pub fn predict(&mut self, rows: &[f32]) -> Result<Vec<f32>, ModelError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        if !rows.len().is_multiple_of(WIDTH) {
            return Err(ModelError::InputShape {
                expected: format!("rows of {WIDTH} features"),
                got: format!("{} values", rows.len()),
            });
        }
        let n = rows.len() / WIDTH;
        let fail = |e: ort::Error| ModelError::Inference {
            message: e.to_string(),
        };
        let tensor = TensorRef::from_array_view(([n, WIDTH], rows)).map_err(fail)?;
        let outputs = self
            .session
            .run(ort::inputs![self.input.as_str() => tensor])
            .map_err(fail)?;
        let (shape, data) = outputs[self.output.as_str()]
            .try_extract_tensor::<f32>()
            .map_err(fail)?;
        let cols = shape.get(1).copied().unwrap_or(1).max(1) as usize;
        let col = self.manifest.output.column;
        if shape.first().copied() != Some(n as i64) || col >= cols {
            return Err(ModelError::Inference {
                message: format!("output shape {shape:?}, expected [{n}, > {col}]"),
            });
        }
        Ok(data.chunks(cols).map(|r| r[col]).collect())
    }
}

/// Loads the model, or says why not.
pub fn load(models_dir: &Path, runtime: &Path) -> Result<OnnxModel, ModelError> {
    OnnxModel::load(models_dir, runtime)
}
