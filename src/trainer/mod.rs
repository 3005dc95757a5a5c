//! Training (SPEC §7): evaluate before, run epochs with the strict-improvement roll-back rule and early
//! stop, evaluate the best registry after. Every step is persisted in the run directory as it completes,
//! so the same `run` continues a run interrupted at any point (`agentopt resume`): completed
//! conversations are read back, never re-run.

pub mod ledger;
pub mod limiter;
pub mod meter;
pub mod phase;
pub mod rule;
pub mod state;

use std::sync::Arc;

use crate::agent::{self, Agent, ConversationRecord, Runner};
use crate::dataset::Problem;
use crate::functions::{self, Registry};
use crate::llm::{ChatModel, Usage};
use crate::optimizer::{self, Optimizer, Rejected, StepInput};
use crate::record::summary::Decided;
use crate::record::{Candidate, EpochEntry, EvalSummary, Event, RunInfo, Select, Status, Summary};
use crate::run_dir::{self, Phase, RunDir};
use meter::{Cancel, Meter, Metered};
use phase::{Interruption, PhaseContext, Score};
use rule::{Decision, Paired, Stop};
use state::Progress;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    RunDir(#[from] run_dir::Error),
    #[error(transparent)]
    Registry(#[from] functions::Error),
    #[error("A conversation could not run")]
    Agent(#[source] agent::Error),
    #[error("The optimizer step for epoch {epoch} failed")]
    Optimizer { epoch: usize, source: optimizer::Error },
    #[error("Every problem of {phase} errored (e.g. {reason}); nothing could be scored")]
    AllErrored { phase: Phase, reason: String },
}

/// Everything a run needs; built by `commands::train` / `commands::resume`.
pub struct Setup {
    pub run: RunDir,
    pub info: RunInfo,
    pub train: Vec<Problem>,
    /// The validation split (empty without one).
    pub val: Vec<Problem>,
    pub test: Vec<Problem>,
    pub assistant: Arc<dyn ChatModel>,
    pub optimizer: Arc<dyn ChatModel>,
    pub runner: Arc<dyn Runner>,
    /// The task and its metric (a judge's model is metered here, with the run's meter).
    pub task: crate::task::Task,
    pub cancel: Cancel,
    /// The live progress display (stderr).
    pub progress: Arc<crate::progress::Progress>,
}

/// How `run` ended (errors aside).
#[derive(Debug, Clone)]
pub struct Finished {
    pub status: Status,
    pub summary: Summary,
}

pub struct Trainer {
    run: RunDir,
    info: RunInfo,
    train: Vec<Problem>,
    val: Vec<Problem>,
    test: Vec<Problem>,
    agent: Agent,
    optimizer: Optimizer,
    meter: Arc<Meter>,
    cancel: Cancel,
    progress: Progress,
    display: Arc<crate::progress::Progress>,
    /// What reading the run back left out (lines of events.jsonl that are not events), for the user.
    pub warnings: Vec<String>,
    _lock: run_dir::RunLock,
}

impl Trainer {
    /// Reads back where the run stands (nothing, for a new run) and meters the models from there.
    pub fn new(setup: Setup) -> Result<Trainer, Error> {
        let lock = setup.run.lock()?;
        run_dir::repair_tail(&setup.run.events())?;
        let mut warnings = Vec::new();
        let progress = Progress::replay(&setup.run.read_events(&mut warnings)?);
        let recorded = ledger::spent(&setup.run.calls())?;
        let ledger = ledger::Ledger::open(&setup.run.calls())?;
        let spent = match recorded {
            Some(spent) => spent,
            None => {
                let earlier = spent_by_records(&setup.run, &progress)?;
                if earlier.calls > 0 {
                    ledger.record(&ledger::Entry::Earlier { usage: earlier });
                }
                earlier
            }
        };
        // The progress line shows what the whole run spent, earlier sessions included.
        setup.progress.add_usd(spent.usd);
        let meter = Arc::new(Meter::new(setup.info.training.max_usd, spent).with_ledger(ledger));
        let metered = |inner| -> Arc<dyn ChatModel> { Arc::new(Metered { inner, meter: meter.clone() }) };
        let brief =
            optimizer::prompts::Brief { kind: setup.task.kind, system: Some(setup.task.system.clone()) };
        let agent = Agent {
            model: metered(setup.assistant),
            runner: setup.runner.clone(),
            task: Arc::new(setup.task.metered(metered)),
            config: setup.info.training.agent.clone(),
        };
        let optimizer = Optimizer {
            model: metered(setup.optimizer),
            runner: setup.runner,
            config: setup.info.training.optimizer.clone(),
            brief,
            candidate: None,
        };
        Ok(Trainer {
            run: setup.run,
            info: setup.info,
            train: setup.train,
            val: setup.val,
            test: setup.test,
            agent,
            optimizer,
            meter,
            cancel: setup.cancel,
            progress,
            display: setup.progress,
            warnings,
            _lock: lock,
        })
    }

    pub fn run_dir(&self) -> &RunDir {
        &self.run
    }

    /// Runs (or continues) the run to completion, a clean stop (Ctrl-C, budget), or an error; the run
    /// directory is consistent and resumable in every case.
    pub async fn run(&mut self) -> Result<Finished, Error> {
        let resumed = !self.progress.history.is_empty() || self.progress.eval_before.is_some();
        self.run.append_event(&Event::RunStarted { resumed })?;
        self.set_status(Status::Running)?;
        let driven = self.drive().await;
        self.display.finish();
        match driven {
            Ok(Ok(())) => self.finish(Status::Completed),
            Ok(Err(why)) => {
                self.run.append_event(&Event::Interrupted { reason: why.to_string() })?;
                self.finish(if why == Interruption::Budget { Status::Budget } else { Status::Stopped })
            }
            Err(e) => {
                let message = agent::error_chain(&e);
                self.run.append_event(&Event::Error { message })?;
                self.finish(Status::Failed)?;
                Err(e)
            }
        }
    }

    fn finish(&mut self, status: Status) -> Result<Finished, Error> {
        let summary = self.summary(status)?;
        run_dir::write_json(&self.run.summary(), &summary)?;
        self.set_status(status)?;
        self.run.append_event(&Event::RunFinished { status })?;
        Ok(Finished { status, summary })
    }

    fn set_status(&mut self, status: Status) -> Result<(), Error> {
        self.info.status = status;
        self.info.updated_at = run_dir::now();
        Ok(run_dir::write_json(&self.run.run_json(), &self.info)?)
    }

    async fn drive(&mut self) -> Result<Result<(), Interruption>, Error> {
        let evaluate = !self.info.training.no_eval && !self.test.is_empty();
        if evaluate && self.progress.eval_before.is_none() {
            let initial = Registry::load(&self.run.epoch_registry(0))?;
            let test = self.test.clone();
            match self.phase(Phase::Before, &initial, &test).await? {
                Ok(records) => self.progress.eval_before = Some(self.eval_done(Phase::Before, &records)?),
                Err(why) => return Ok(Err(why)),
            }
        }
        if let Err(why) = self.epochs().await? {
            return Ok(Err(why));
        }
        let best = self.best_registry()?;
        best.save(&self.run.best_registry())?;
        if evaluate && self.progress.eval_after.is_none() {
            let test = self.test.clone();
            match self.phase(Phase::After, &best, &test).await? {
                Ok(records) => self.progress.eval_after = Some(self.eval_done(Phase::After, &records)?),
                Err(why) => return Ok(Err(why)),
            }
        }
        Ok(Ok(()))
    }

    /// The epoch loop of SPEC §7, entered at whatever point the run reached.
    async fn epochs(&mut self) -> Result<Result<(), Interruption>, Error> {
        let (epochs, patience) = (self.info.training.epochs, self.info.training.patience);
        let mut rejected = self.rejected_since_best()?;
        let mut epoch = self.progress.history.len();
        if self.progress.stopped.is_none() && epoch > 0 {
            // Killed between a decision and its stop event: decide the stop again.
            if let Some(stop) = rule::stop_after(&self.progress.rule, epoch - 1, epochs, patience) {
                self.stopped(stop)?;
            }
        }
        while self.progress.stopped.is_none() {
            if epoch > 0
                && !self.progress.steps_done.contains(&epoch)
                && let Err(why) = self.step(epoch, &rejected).await?
            {
                return Ok(Err(why));
            }
            let registry = Registry::load(&self.run.epoch_registry(epoch))?;
            let train = self.train.clone();
            let records = match self.phase(Phase::Epoch(epoch), &registry, &train).await? {
                Ok(records) => records,
                Err(why) => return Ok(Err(why)),
            };
            let score = Score::of(&records);
            if score.total > 0 && score.errored == score.total {
                let reason = records[0].errored().unwrap_or_default().to_string();
                return Err(Error::AllErrored { phase: Phase::Epoch(epoch), reason });
            }
            // The same registry on the validation split, when there is one; the optimizer never
            // sees these conversations.
            let val_records = match self.validate(epoch, &registry).await? {
                Ok(v) => v,
                Err(why) => return Ok(Err(why)),
            };
            let val = val_records.as_deref().map(Score::of);
            // What decides: the validation split under `--select val`, else the training split.
            let (selected, versus_best) = match (&val_records, self.info.training.select) {
                (Some(v), Select::Val) => (Score::of(v).rate, self.versus_best(v, Phase::Val)?),
                _ => (score.rate, self.versus_best(&records, Phase::Epoch)?),
            };
            let accept = self.info.training.accept;
            let (decision, next, p_value) =
                rule::decide(self.progress.rule, epoch, selected, versus_best, accept);
            match decision {
                Decision::Accept => {
                    registry.save(&self.run.best_registry())?;
                    rejected.clear();
                }
                Decision::Rollback => {
                    rejected.push(Rejected { epoch, score: score.rate, registry: registry.clone() })
                }
            }
            let functions = registry.names();
            self.run.append_event(&Event::Decision {
                epoch,
                score,
                versus_best,
                decision,
                state: next,
                functions: functions.clone(),
                p_value,
                val,
            })?;
            self.progress.rule = next;
            let decided = Decided { versus_best, decision, p_value, val };
            self.progress.history.push(EpochEntry::new(epoch, &score, decided, functions));
            run_dir::write_json(&self.run.summary(), &self.summary(Status::Running)?)?;
            if let Some(stop) = rule::stop_after(&next, epoch, epochs, patience) {
                self.stopped(stop)?;
            }
            epoch += 1;
        }
        Ok(Ok(()))
    }

    /// Runs epoch `epoch`'s registry on the validation split: `Ok(Ok(None))` without one.
    async fn validate(
        &self,
        epoch: usize,
        registry: &Registry,
    ) -> Result<Result<Option<Vec<ConversationRecord>>, Interruption>, Error> {
        if self.val.is_empty() {
            return Ok(Ok(None));
        }
        let val = self.val.clone();
        let records = match self.phase(Phase::Val(epoch), registry, &val).await? {
            Ok(records) => records,
            Err(why) => return Ok(Err(why)),
        };
        if records.iter().all(|r| r.errored().is_some()) {
            let reason = records[0].errored().unwrap_or_default().to_string();
            return Err(Error::AllErrored { phase: Phase::Val(epoch), reason });
        }
        Ok(Ok(Some(records)))
    }

    /// The trial's records paired with the best epoch's records of the same split (`split` makes its
    /// phase from an epoch number), problem by problem (`None` before a best).
    fn versus_best(
        &self,
        trial: &[ConversationRecord],
        split: fn(usize) -> Phase,
    ) -> Result<Option<Paired>, Error> {
        let Some(best_epoch) = self.progress.rule.best_epoch else { return Ok(None) };
        let best: Vec<ConversationRecord> = run_dir::read_lines(&self.run.conversations(split(best_epoch)))?;
        Ok(Some(Paired::of(
            trial.iter().map(|r| (r.id.as_str(), r.score())),
            best.iter().map(|r| (r.id.as_str(), r.score())),
        )))
    }

    fn stopped(&mut self, reason: Stop) -> Result<(), Error> {
        let best_epoch = self.progress.rule.best_epoch.unwrap_or(0);
        self.run.append_event(&Event::TrainingStopped { reason, best_epoch })?;
        self.progress.stopped = Some(reason);
        Ok(())
    }

    /// The rolled-back registries since the last accept, read back from the epochs they were tried in.
    fn rejected_since_best(&self) -> Result<Vec<Rejected>, Error> {
        let mut out = Vec::new();
        for entry in &self.progress.history {
            match entry.decision {
                Decision::Accept => out.clear(),
                Decision::Rollback => out.push(Rejected {
                    epoch: entry.epoch,
                    score: entry.score,
                    registry: Registry::load(&self.run.epoch_registry(entry.epoch))?,
                }),
            }
        }
        Ok(out)
    }

    fn best_epoch(&self) -> usize {
        self.progress.rule.best_epoch.unwrap_or(0)
    }

    fn best_registry(&self) -> Result<Registry, Error> {
        Ok(Registry::load(&self.run.epoch_registry(self.best_epoch()))?)
    }

    /// The optimizer step that writes epoch `epoch`'s trial registry, starting from the best one.
    async fn step(&mut self, epoch: usize, rejected: &[Rejected]) -> Result<Result<(), Interruption>, Error> {
        if self.cancel.is_cancelled() {
            return Ok(Err(Interruption::Cancelled));
        }
        if self.meter.exhausted() {
            return Ok(Err(Interruption::Budget));
        }
        self.run.append_event(&Event::StepStarted { epoch })?;
        let best = self.best_registry()?;
        let conversations: Vec<ConversationRecord> =
            run_dir::read_lines(&self.run.conversations(Phase::Epoch(self.best_epoch())))?;
        let input = StepInput {
            epoch,
            best: &best,
            best_epoch: self.best_epoch(),
            // The training score (what the prompt says it is), also when a validation split decides:
            // the optimizer is shown nothing of the validation split.
            best_score: self
                .progress
                .history
                .iter()
                .find(|h| h.epoch == self.best_epoch())
                .map_or(self.progress.rule.best_score, |h| h.score),
            rejected,
            conversations: &conversations,
        };
        let proposals = self.info.training.proposals;
        if proposals > 1 {
            return self.step_with_proposals(epoch, &input, proposals).await;
        }
        let cancel = self.cancel.clone();
        let outcome = tokio::select! {
            outcome = self.optimizer.step(&input) => outcome,
            () = cancel.cancelled() => return Ok(Err(Interruption::Cancelled)),
        };
        let outcome = match outcome {
            Ok(o) => o,
            Err(optimizer::Error::Budget) => return Ok(Err(Interruption::Budget)),
            Err(source) => return Err(Error::Optimizer { epoch, source }),
        };
        // The trial registry is the step's commit point; its events follow.
        outcome.registry.save(&self.run.epoch_registry(epoch))?;
        for event in &outcome.events {
            self.run.append_event(event)?;
        }
        self.display.add_usd(outcome.usage.usd);
        let functions = outcome.registry.names();
        self.run.append_event(&Event::StepDone {
            epoch,
            applied: outcome.applied,
            functions,
            usage: outcome.usage,
        })?;
        self.progress.steps_done.push(epoch);
        Ok(Ok(()))
    }

    /// A step with `--proposals` K > 1: K independent proposals (concurrent optimizer calls, each
    /// validated in the sandbox), scored side by side on the training split, the best (highest training score,
    /// the first on a tie) becoming the epoch's trial with its records; the others are recorded as
    /// rejected candidates (events, `candidates.json`). A candidate's registry file is its commit
    /// point: after a kill the saved ones are reused, never asked for again, and their scoring resumes.
    async fn step_with_proposals(
        &mut self,
        epoch: usize,
        input: &StepInput<'_>,
        proposals: usize,
    ) -> Result<Result<(), Interruption>, Error> {
        let path = |c: usize| self.run.candidate_registry(epoch, c);
        let mut registries: Vec<Option<Registry>> = vec![None; proposals];
        for (c, slot) in registries.iter_mut().enumerate() {
            if path(c).is_file() {
                *slot = Some(Registry::load(&path(c))?);
            }
        }
        let missing: Vec<usize> = (0..proposals).filter(|&c| registries[c].is_none()).collect();
        let optimizers: Vec<(usize, Optimizer)> =
            missing.iter().map(|&c| (c, self.optimizer.sampled(c))).collect();
        let asks = optimizers.iter().map(|(c, o)| async move { (*c, o.step(input).await) });
        let cancel = self.cancel.clone();
        let results = tokio::select! {
            results = futures::future::join_all(asks) => results,
            () = cancel.cancelled() => return Ok(Err(Interruption::Cancelled)),
        };
        let (mut usage, mut applied) = (Usage::default(), 0);
        let mut interrupted = None;
        for (c, result) in results {
            let outcome = match result {
                Ok(o) => o,
                Err(optimizer::Error::Budget) => {
                    interrupted = Some(Interruption::Budget);
                    continue;
                }
                Err(source) => return Err(Error::Optimizer { epoch, source }),
            };
            outcome.registry.save(&path(c))?;
            for event in &outcome.events {
                self.run.append_event(event)?;
            }
            usage.add(&outcome.usage);
            applied += outcome.applied;
            registries[c] = Some(outcome.registry);
        }
        self.display.add_usd(usage.usd);
        // The candidates that were proposed are kept; the rest are asked for again on resume.
        if let Some(why) = interrupted {
            return Ok(Err(why));
        }
        // The candidates are scored side by side, sharing --concurrency between them.
        let train = self.train.clone();
        let registries: Vec<Registry> =
            registries.into_iter().map(|r| r.expect("every candidate proposed")).collect();
        let per_candidate = (self.info.training.concurrency / proposals).max(1);
        self.display.set_phase("candidates", train.len() * proposals);
        self.display.set_epoch(epoch, train.len() * proposals);
        let this = &*self;
        let scorings = registries
            .iter()
            .enumerate()
            .map(|(c, registry)| this.phase_at(Phase::Candidate(epoch, c), registry, &train, per_candidate));
        let results = futures::future::join_all(scorings).await;
        let mut scored = Vec::with_capacity(proposals);
        for ((c, registry), result) in registries.into_iter().enumerate().zip(results) {
            let records = match result? {
                Ok(records) => records,
                Err(why) => return Ok(Err(why)),
            };
            let score = Score::of(&records);
            self.run.append_event(&Event::CandidateScored {
                epoch,
                candidate: c,
                score,
                functions: registry.names(),
            })?;
            scored.push((c, score, registry, records));
        }
        let chosen = scored
            .iter()
            .max_by(|a, b| a.1.rate.total_cmp(&b.1.rate).then(b.0.cmp(&a.0)))
            .map(|s| s.0)
            .expect("at least two candidates");
        let listed: Vec<Candidate> = scored
            .iter()
            .map(|(c, score, registry, _)| Candidate {
                candidate: *c,
                score: *score,
                functions: registry.names(),
                chosen: *c == chosen,
            })
            .collect();
        run_dir::write_json(&self.run.candidates(epoch), &listed)?;
        self.run.append_event(&Event::CandidateChosen { epoch, candidate: chosen })?;
        let (_, _, registry, records) = scored.swap_remove(chosen);
        // The chosen candidate's records are the epoch's: read back, not run again.
        run_dir::write_lines(&self.run.conversations(Phase::Epoch(epoch)), &records)?;
        registry.save(&self.run.epoch_registry(epoch))?;
        self.run.append_event(&Event::StepDone { epoch, applied, functions: registry.names(), usage })?;
        self.progress.steps_done.push(epoch);
        Ok(Ok(()))
    }

    /// Runs one phase's remaining conversations; `Ok(Err(_))` when interrupted before all completed.
    async fn phase(
        &self,
        phase: Phase,
        registry: &Registry,
        problems: &[Problem],
    ) -> Result<Result<Vec<ConversationRecord>, Interruption>, Error> {
        self.phase_at(phase, registry, problems, self.info.training.concurrency).await
    }

    /// `phase` with its own bound on conversations at once (candidates scored side by side share
    /// `--concurrency`). A candidate's phase leaves the progress line to its step.
    async fn phase_at(
        &self,
        phase: Phase,
        registry: &Registry,
        problems: &[Problem],
        concurrency: usize,
    ) -> Result<Result<Vec<ConversationRecord>, Interruption>, Error> {
        let path = self.run.conversations(phase);
        run_dir::repair_tail(&path)?;
        // Errored conversations of an unfinished phase are tried again: they failed for infrastructure
        // reasons (a server outage, say), and resuming is how a user retries them.
        let done: Vec<ConversationRecord> = run_dir::read_lines::<ConversationRecord>(&path)?
            .into_iter()
            .filter(|r| r.errored().is_none())
            .collect();
        match phase {
            Phase::Epoch(n) => {
                self.display.set_phase("train", problems.len());
                self.display.set_epoch(n, problems.len());
            }
            Phase::Val(n) => {
                self.display.set_phase("validation", problems.len());
                self.display.set_epoch(n, problems.len());
            }
            Phase::Candidate(..) => {}
            Phase::Before => self.display.set_phase("eval before", problems.len()),
            Phase::After => self.display.set_phase("eval after", problems.len()),
        }
        for r in &done {
            self.display.already_done(r.outcome.verdict());
        }
        let display = &self.display;
        let ctx =
            PhaseContext { agent: &self.agent, concurrency, meter: self.meter.clone(), cancel: &self.cancel };
        let run = &self.run;
        let result = phase::run(&ctx, registry, problems, done, |r: &ConversationRecord| {
            run_dir::append_line(&path, r)?;
            display.conversation_done(r.outcome.verdict(), r.usage.usd);
            run.append_event(&Event::ConversationDone {
                phase,
                index: r.index,
                id: r.id.clone(),
                correct: r.is_correct(),
                errored: r.errored().map(str::to_string),
                turns: r.turns,
            })
        })
        .await
        .map_err(|e| match e {
            phase::Error::Agent(e) => Error::Agent(e),
            phase::Error::Sink(e) => Error::RunDir(e),
        })?;
        let interrupted = result.interrupted;
        match result.complete() {
            Some(records) => {
                // Rewritten in problem order so the file is byte-stable whatever the completion order.
                run_dir::write_lines(&path, &records)?;
                Ok(Ok(records))
            }
            None => Ok(Err(interrupted.unwrap_or(Interruption::Cancelled))),
        }
    }

    fn eval_done(&self, phase: Phase, records: &[ConversationRecord]) -> Result<Score, Error> {
        let score = Score::of(records);
        self.run.append_event(&Event::EvalDone { phase, score })?;
        Ok(score)
    }

    fn summary(&self, status: Status) -> Result<Summary, Error> {
        let p = &self.progress;
        let functions = match p.rule.best_epoch {
            Some(_) => self.best_registry()?.names(),
            None => Vec::new(),
        };
        Ok(Summary {
            run: self.run.name(),
            status,
            epochs_run: p.history.len(),
            stopped_early: p.stopped == Some(Stop::Patience) && p.history.len() < self.info.training.epochs,
            stop_reason: p.stopped,
            best_epoch: p.rule.best_epoch,
            best_score: p.rule.best_score.is_finite().then_some(p.rule.best_score),
            history: p.history.clone(),
            eval: EvalSummary { before: p.eval_before, after: p.eval_after },
            functions,
            usage: self.meter.usage(),
        })
    }
}

/// What a run made before the call ledger existed spent: its conversation records on disk plus the
/// completed optimizer steps (calls dropped in flight are not in either).
fn spent_by_records(run: &RunDir, progress: &Progress) -> Result<Usage, Error> {
    let mut usage = progress.step_usage;
    let mut files = vec![run.conversations(Phase::Before), run.conversations(Phase::After)];
    files.extend((0..=progress.history.len()).map(|e| run.conversations(Phase::Epoch(e))));
    files.extend((0..=progress.history.len()).map(|e| run.conversations(Phase::Val(e))));
    for path in files {
        for r in run_dir::read_lines::<ConversationRecord>(&path)? {
            usage.add(&r.usage);
        }
    }
    Ok(usage)
}

#[cfg(test)]
mod tests;
