//! Turning `--task`/`--system`/`--opening`/`--metric` (or a run's recorded task) into the runnable
//! `Task`: the metric's checker, the user's Python metric checked in the sandbox, the judge model
//! connected from the same config list. Shared by `train`, `resume`, `eval` and `chat`.

use std::path::PathBuf;
use std::sync::Arc;

use super::bad_input;
use super::train::connect;
use crate::cli::TaskArgs;
use crate::exec::Runner;
use crate::grading::Grader;
use crate::llm::ModelOptions;
use crate::task::metric::{judge::Judge, python::PythonMetric};
use crate::task::{Metric, MetricSpec, Task, TaskKind, TaskSpec};

/// The spec the flags ask for, `kind` being the task when `--task` is not given.
pub fn spec_from_flags(args: &TaskArgs, kind: TaskKind) -> anyhow::Result<TaskSpec> {
    TaskSpec::from_flags(
        args.kind.unwrap_or(kind),
        args.system.as_deref(),
        args.opening.as_deref(),
        args.metric.as_deref(),
    )
    .map_err(|e| bad_input(anyhow::anyhow!(e)))
}

/// Files the metric reads that executed code must not (the `python:` metric's file may hold answers).
pub fn private_files(spec: &TaskSpec) -> Vec<PathBuf> {
    match spec.metric_spec() {
        Ok(MetricSpec::Python { file, .. }) => vec![file],
        _ => Vec::new(),
    }
}

/// What a judge metric talks to: the assistant's model options with the judge's model name.
pub struct JudgeModel {
    pub options: ModelOptions,
    pub seed: Option<u64>,
}

/// Builds the runnable task (its judge model not yet metered: `Task::metered` does that where the
/// meter is). A Python metric is checked in the sandbox first (bad input when it does not run or
/// define its function).
pub async fn build(spec: &TaskSpec, runner: &Arc<dyn Runner>, judge: JudgeModel) -> anyhow::Result<Task> {
    let parsed = spec.metric_spec().map_err(|e| bad_input(anyhow::anyhow!(e)))?;
    let metric = match parsed {
        MetricSpec::Math => Metric::Math(Grader::new(crate::exec::find_python())),
        MetricSpec::Python { file, function } => {
            let source = match &spec.metric_source {
                Some(s) => s.clone(),
                None => std::fs::read_to_string(&file).map_err(|e| {
                    bad_input(anyhow::anyhow!(
                        "--metric `{}`: cannot read `{}`: {e}",
                        spec.metric,
                        file.display()
                    ))
                })?,
            };
            let metric = PythonMetric { source, function, runner: runner.clone() };
            if let Err(why) = metric.check().await? {
                return Err(bad_input(anyhow::anyhow!(
                    "--metric `{}`: `{}` cannot be used: {why}",
                    spec.metric,
                    file.display()
                )));
            }
            Metric::Python(Arc::new(metric))
        }
        MetricSpec::Judge { model } => {
            let options = ModelOptions { model: Some(model.clone()), ..judge.options };
            let connected =
                connect(&options).map_err(|e| bad_input(anyhow::anyhow!("--metric judge:{model}: {e:#}")))?;
            Metric::Judge(Arc::new(Judge { model: connected, seed: judge.seed }))
        }
        text => Metric::Text(text),
    };
    Ok(Task {
        kind: spec.kind,
        system: spec.system_message().to_string(),
        opening: spec.opening_template(),
        metric,
    })
}
