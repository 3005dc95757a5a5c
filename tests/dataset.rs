//! Dataset loading on real files (the shipped sample, MATH, GSM8K) and the errors for bad lines.

use std::path::{Path, PathBuf};

use agentopt::dataset::{self, Problem};

fn shared(rel: &str) -> Option<PathBuf> {
    // The benchmark copies live beside the repository (../shared/datasets) and are not shipped with it.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates =
        [root.join("../shared/datasets").join(rel), PathBuf::from("/work/shared/datasets").join(rel)];
    let found = candidates.into_iter().find(|p| p.exists());
    if found.is_none() {
        eprintln!("skipping: {rel} is not available");
    }
    found
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_shipped_sample_covers_every_subject_and_level() {
    let problems =
        dataset::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/sample.jsonl")).unwrap();
    assert_eq!(problems.len(), 40);
    let mut subjects: Vec<_> = problems.iter().filter_map(|p| p.subject.clone()).collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), 7, "{subjects:?}");
    for level in 1..=5 {
        assert!(problems.iter().any(|p| p.level == Some(level)), "no level {level}");
    }
}

#[test]
fn math_test_and_train_load_with_answers() {
    let Some(test) = shared("math/test.jsonl") else { return };
    let problems = dataset::load(&test).unwrap();
    assert_eq!(problems.len(), 500);
    assert!(problems.iter().all(|p| !p.answer.is_empty() && p.subject.is_some() && p.level.is_some()));
    assert_eq!(problems[0].id, "test/precalculus/807");
    assert_eq!(problems[0].answer, "\\left( 3, \\frac{\\pi}{2} \\right)");
    assert_eq!(dataset::filter_subjects(problems, &["precalculus".into()]).len(), 56);
    let Some(train) = shared("math/train.jsonl") else { return };
    assert_eq!(dataset::load(&train).unwrap().len(), 4500);
}

#[test]
fn gsm8k_answers_come_from_the_hashes() {
    let Some(path) = shared("gsm8k/test.jsonl") else { return };
    let problems = dataset::load(&path).unwrap();
    assert_eq!(problems.len(), 1319);
    assert_eq!((problems[0].id.as_str(), problems[0].answer.as_str()), ("test:1", "18"));
    assert!(problems[0].problem.starts_with("Janet"));
    assert!(problems.iter().all(|p| p.answer.parse::<f64>().is_ok()), "every GSM8K answer is a number");
}

#[test]
fn fields_aliases_and_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "mix.jsonl",
        concat!(
            "{\"problem\": \"p1\", \"answer\": \"5\", \"subject\": \"Algebra\", \"level\": \"Level 2\"}\n",
            "\n",
            "   \n",
            "{\"question\": \"p2\", \"answer\": \"She earns 1,000.\\n#### 1,000\", \"extra\": [1, 2]}\n",
            "{\"id\": 17, \"problem\": \"p3\", \"solution\": \"so $\\\\boxed{\\\\frac{1}{2}}$.\", \"level\": null}\n",
            "{\"id\": \"x\", \"problem\": \"p4\", \"answer\": 42, \"level\": \"Level ?\"}\n",
            "{\"problem\": \"p5\", \"type\": \"Geometry\", \"level\": \"Level 4\", \"solution\": \"$\\\\fbox{7}$\"}\n",
        ),
    );
    // The layouts' own fields; what else a line holds is kept beside (tested below).
    let got: Vec<Problem> = dataset::load(&path)
        .unwrap()
        .into_iter()
        .map(|p| Problem { answer_json: None, fields: Default::default(), ..p })
        .collect();
    let want = |id: &str, problem: &str, answer: &str, subject: Option<&str>, level| Problem {
        id: id.into(),
        problem: problem.into(),
        answer: answer.into(),
        subject: subject.map(Into::into),
        level,
        ..Default::default()
    };
    assert_eq!(
        got,
        vec![
            want("mix:1", "p1", "5", Some("Algebra"), Some(2)),
            want("mix:4", "p2", "1000", None, None),
            want("17", "p3", "\\frac{1}{2}", None, None),
            want("x", "p4", "42", None, None),
            want("mix:7", "p5", "7", Some("Geometry"), Some(4)),
        ]
    );
}

#[track_caller]
fn load_error(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "data.jsonl", text);
    dataset::load(&path).unwrap_err().to_string()
}

#[test]
fn bad_lines_name_file_line_and_field() {
    let ok = "{\"problem\": \"p\", \"answer\": \"1\"}\n";
    let err = load_error(&format!("{ok}\n{ok}{{\"problem\": \"q\"}}\n"));
    assert!(err.contains("data.jsonl` line 4: field `answer` is missing"), "{err}");
    let err = load_error(&format!("{ok}{{\"problem\": \"q\", \"solution\": \"no box\"}}\n"));
    assert!(err.contains("line 2: field `answer` is missing (and `solution` has no \\boxed{})"), "{err}");
    let err = load_error(&format!("{ok}{ok}{{\"problem\": \"q\", \"answer\": \n"));
    assert!(err.contains("data.jsonl` line 3: not valid JSON"), "{err}");
    let err = load_error("[1, 2]\n");
    assert!(err.contains("line 1: expected a JSON object, found an array"), "{err}");
    let err = load_error("{\"answer\": \"1\"}\n");
    assert!(err.contains("line 1: field `problem` is missing"), "{err}");
    let err = load_error("{\"problem\": \"p\", \"answer\": \"1\", \"level\": \"hard\"}\n");
    assert!(err.contains("line 1: field `level` must be"), "{err}");
    let err = load_error(
        "{\"id\": \"a\", \"problem\": \"p\", \"answer\": \"1\"}\n{\"id\": \"a\", \"problem\": \"q\", \"answer\": \"2\"}\n",
    );
    assert!(err.contains("line 2: duplicate id `a` (first used on line 1)"), "{err}");
    let missing = dataset::load(Path::new("/nonexistent/data.jsonl")).unwrap_err().to_string();
    assert!(missing.contains("Failed to read dataset `/nonexistent/data.jsonl`"), "{missing}");
}

#[test]
fn splits_are_deterministic_and_disjoint() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/sample.jsonl");
    let problems = dataset::load(&path).unwrap();
    let (train, test) = dataset::split(problems.clone(), None, None, 0);
    assert_eq!((train.len(), test.len()), (32, 8));
    assert!(train.iter().all(|t| !test.contains(t)));
    assert_eq!(dataset::split(problems.clone(), None, None, 0), (train, test));
    let (train, test) = dataset::split(problems, Some(10), Some(5), 3);
    assert_eq!((train.len(), test.len()), (10, 5));
}

#[test]
fn file_hash_is_stable() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "h.jsonl", "abc");
    assert_eq!(
        dataset::file_sha256(&path).unwrap(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}
