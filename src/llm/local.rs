//! PLACEHOLDER for the embedded local model backend (written by another engineer); it only reports
//! that the backend is absent.

use std::path::Path;
use std::sync::Arc;

use super::{ChatModel, Error};

/// Opens the local model `model_name` (weights at `model_path`, or the default location).
pub fn open(model_name: &str, model_path: Option<&Path>) -> Result<Arc<dyn ChatModel>, Error> {
    let _ = (model_name, model_path);
    Err(Error::Local("the local backend is not compiled in".into()))
}
