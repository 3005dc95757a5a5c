//! Checks on the problems `train` chose, before anything is spent on them: sizes asked for that the
//! data cannot give, subjects that match nothing, and splits that share problems (training, validation
//! and test must be disjoint).

use std::collections::{BTreeMap, HashMap};

use anyhow::anyhow;

use super::bad_input;
use crate::dataset::{self, Problem};
use crate::record::DataSpec;

/// Refuses a selection a researcher would not want to publish numbers from (exit 2, naming what the
/// data hold).
pub(super) fn check(spec: &DataSpec, chosen: &super::train::Chosen) -> anyhow::Result<()> {
    let (train, val, test) = (&chosen.train[..], &chosen.val[..], &chosen.test[..]);
    for (flag, asked, got) in [
        ("--train-size", spec.train_size, train.len()),
        ("--test-size", spec.test_size, test.len()),
        ("--val-size", spec.val_size, val.len()),
    ] {
        if let Some(asked) = asked.filter(|&n| n > got) {
            return Err(bad_input(anyhow!(
                "{flag} {asked}: only {got} problems are available for it ({}); ask for at most {got}",
                availability(spec)
            )));
        }
    }
    if train.is_empty() || (spec.test_size.is_some_and(|n| n > 0) && test.is_empty()) {
        return Err(bad_input(anyhow!("{}", empty_split(spec, train.is_empty()))));
    }
    if spec.val_size.is_some_and(|n| n > 0) && val.is_empty() {
        return Err(bad_input(anyhow!("the validation split is empty ({})", availability(spec))));
    }
    if !spec.allow_overlap {
        for (a, a_name, b, b_name) in [
            (train, "training", test, "test"),
            (train, "training", val, "validation"),
            (val, "validation", test, "test"),
        ] {
            let shared = overlap(a, b);
            if !shared.is_empty() {
                let shown: Vec<String> = shared.iter().take(5).cloned().collect();
                let more =
                    if shared.len() > 5 { format!(" and {} more", shared.len() - 5) } else { String::new() };
                return Err(bad_input(anyhow!(
                    "{} {a_name} problem(s) are also in the {b_name} set (same id or same text): {}{more}. \
                     Scores on problems the functions were trained or selected on mean nothing; give disjoint \
                     files, or pass --allow-overlap to train anyway",
                    shared.len(),
                    shown.join(", ")
                )));
            }
        }
    }
    Ok(())
}

/// Training problems that are also test problems, by id or by text (whitespace and case folded), as
/// `train id` or `train id = test id`.
pub(super) fn overlap(train: &[Problem], test: &[Problem]) -> Vec<String> {
    let fold = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    let ids: HashMap<&str, ()> = test.iter().map(|p| (p.id.as_str(), ())).collect();
    let texts: HashMap<String, &str> = test.iter().map(|p| (fold(&p.problem), p.id.as_str())).collect();
    train
        .iter()
        .filter_map(|p| {
            if ids.contains_key(p.id.as_str()) {
                Some(p.id.clone())
            } else {
                texts.get(&fold(&p.problem)).map(|other| format!("{} = {other}", p.id))
            }
        })
        .collect()
}

/// Why a split came out empty: the subjects asked for against those the files hold, or the sizes.
fn empty_split(spec: &DataSpec, train_side: bool) -> String {
    let side = if train_side { "training" } else { "test" };
    if spec.subjects.is_empty() {
        return format!("the {side} split is empty ({})", availability(spec));
    }
    let mut subjects: BTreeMap<String, usize> = BTreeMap::new();
    for file in spec.files() {
        for p in dataset::load(&file.path).unwrap_or_default() {
            *subjects.entry(p.subject.unwrap_or_else(|| "(none)".into())).or_default() += 1;
        }
    }
    let held: Vec<String> = subjects.iter().map(|(s, n)| format!("{s} ({n})")).collect();
    format!(
        "the {side} split is empty: no problem has subject {}; the data hold: {}",
        spec.subjects.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(" or "),
        if held.is_empty() { "no problems".into() } else { held.join(", ") }
    )
}

/// What the data files hold, in words.
fn availability(spec: &DataSpec) -> String {
    let filter = if spec.subjects.is_empty() { "" } else { " of the subjects asked for" };
    let counts: Vec<String> = spec
        .files()
        .map(|f| {
            let n = dataset::load(&f.path)
                .map(|p| dataset::filter_subjects(p, &spec.subjects).len())
                .unwrap_or(0);
            format!("`{}` holds {n}{filter}", f.path.display())
        })
        .collect();
    let split = if spec.data.is_some() && spec.train.is_none() && spec.test.is_none() {
        if spec.val_size.is_some() {
            "; the test set is taken first, then the validation set, the training set from the rest"
        } else {
            "; the test set is taken first, the training set from the rest"
        }
    } else {
        ""
    };
    format!("{}{split}", counts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(id: &str, text: &str) -> Problem {
        Problem::new(id, text, "1")
    }

    #[test]
    fn overlap_by_id_or_folded_text() {
        let train = [p("a", "What is 1+1?"), p("b", "What  is\n2+2?"), p("c", "other")];
        let test = [p("a", "different"), p("x", "what is 2+2?")];
        assert_eq!(overlap(&train, &test), vec!["a".to_string(), "b = x".to_string()]);
        assert!(overlap(&train[2..], &test).is_empty());
    }
}
