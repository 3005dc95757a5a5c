//! Subjects and levels for the records of format-1 runs, which did not carry them: read back from the
//! dataset files run.json names, by the dataset loader itself (so ids, the `type` alias of `subject`
//! and the spellings of `level` follow the rules training did). Runs of the current format carry
//! them in each record, and no dataset is opened.

use std::collections::BTreeMap;

use crate::record::{ConversationRecord, RunInfo};

/// Subject and level by problem id.
#[derive(Debug, Default)]
pub struct Labels(BTreeMap<String, (Option<String>, Option<u8>)>);

/// The labels a run's records need from elsewhere: none unless the run is of format 1.
pub fn for_format(info: &RunInfo) -> Labels {
    if info.format_version >= 2 {
        return Labels::default();
    }
    let mut labels = BTreeMap::new();
    for file in info.data.files() {
        // A dataset moved or edited since the run: records keep their ids, subjects are just unknown.
        let Ok(problems) = crate::dataset::load(&file.path) else { continue };
        for p in problems {
            labels.insert(p.id, (p.subject, p.level));
        }
    }
    Labels(labels)
}

impl Labels {
    /// Fills in subject and level when the record lacks them.
    pub fn fill(&self, record: &mut ConversationRecord) {
        if let Some((subject, level)) = self.0.get(&record.id) {
            record.subject = record.subject.take().or_else(|| subject.clone());
            record.level = record.level.or(*level);
        }
    }
}
