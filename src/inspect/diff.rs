//! Comparing registries: which functions were added, removed or revised, and a unified line diff of
//! each revised function's code and description (a longest-common-subsequence diff: learned functions
//! are short, so the quadratic table is cheap and the output is minimal).

use serde::Serialize;

use crate::functions::{FunctionDef, Registry};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LineKind {
    Equal,
    Delete,
    Insert,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffLine {
    pub kind: LineKind,
    pub text: String,
}

/// Lines beyond which the quadratic table would be too large; such texts are diffed as replace-all.
const MAX_TABLE: usize = 4_000_000;

/// The line edit script turning `old` into `new`.
pub fn line_diff(old: &str, new: &str) -> Vec<DiffLine> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let line = |kind, text: &str| DiffLine { kind, text: text.to_string() };
    if a.len().saturating_mul(b.len()) > MAX_TABLE {
        let mut out: Vec<DiffLine> = a.iter().map(|t| line(LineKind::Delete, t)).collect();
        out.extend(b.iter().map(|t| line(LineKind::Insert, t)));
        return out;
    }
    // lcs[i][j] = length of the LCS of a[i..] and b[j..].
    let w = b.len() + 1;
    let mut lcs = vec![0u32; (a.len() + 1) * w];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i * w + j] = if a[i] == b[j] {
                lcs[(i + 1) * w + j + 1] + 1
            } else {
                lcs[(i + 1) * w + j].max(lcs[i * w + j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push(line(LineKind::Equal, a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[(i + 1) * w + j] >= lcs[i * w + j + 1]) {
            // Deletions first on ties, as `diff -u` prints them.
            out.push(line(LineKind::Delete, a[i]));
            i += 1;
        } else {
            out.push(line(LineKind::Insert, b[j]));
            j += 1;
        }
    }
    out
}

/// A unified diff (`---`/`+++` headers, `@@` hunks with 3 lines of context); empty when equal.
pub fn unified_diff(old: &str, new: &str, old_label: &str, new_label: &str) -> String {
    let lines = line_diff(old, new);
    if lines.iter().all(|l| l.kind == LineKind::Equal) {
        return String::new();
    }
    const CONTEXT: usize = 3;
    // Mark lines within CONTEXT of a change, then print each marked run as one hunk.
    let changed: Vec<usize> = (0..lines.len()).filter(|&k| lines[k].kind != LineKind::Equal).collect();
    let mut keep = vec![false; lines.len()];
    for &k in &changed {
        for slot in keep.iter_mut().take((k + CONTEXT + 1).min(lines.len())).skip(k.saturating_sub(CONTEXT)) {
            *slot = true;
        }
    }
    let mut out = format!("--- {old_label}\n+++ {new_label}\n");
    let (mut old_no, mut new_no) = (1usize, 1usize);
    let mut k = 0;
    while k < lines.len() {
        if !keep[k] {
            match lines[k].kind {
                LineKind::Equal => {
                    old_no += 1;
                    new_no += 1;
                }
                LineKind::Delete => old_no += 1,
                LineKind::Insert => new_no += 1,
            }
            k += 1;
            continue;
        }
        let end = (k..lines.len()).find(|&e| !keep[e]).unwrap_or(lines.len());
        let hunk = &lines[k..end];
        let old_len = hunk.iter().filter(|l| l.kind != LineKind::Insert).count();
        let new_len = hunk.iter().filter(|l| l.kind != LineKind::Delete).count();
        let start = |no: usize, len: usize| if len == 0 { no - 1 } else { no };
        out.push_str(&format!(
            "@@ -{},{} +{},{} @@\n",
            start(old_no, old_len),
            old_len,
            start(new_no, new_len),
            new_len
        ));
        for l in hunk {
            let sign = match l.kind {
                LineKind::Equal => ' ',
                LineKind::Delete => '-',
                LineKind::Insert => '+',
            };
            out.push(sign);
            out.push_str(&l.text);
            out.push('\n');
        }
        old_no += old_len;
        new_no += new_len;
        k = end;
    }
    out
}

/// One function present in both registries whose definition differs.
#[derive(Debug, Clone, Serialize)]
pub struct Revision {
    pub name: String,
    /// Unified diffs; empty when that part is unchanged.
    pub description_diff: String,
    pub code_diff: String,
    pub parameters_changed: bool,
    pub packages_changed: bool,
    pub old: FunctionDef,
    pub new: FunctionDef,
}

#[derive(Debug, Clone, Serialize)]
pub struct RegistryDiff {
    pub added: Vec<FunctionDef>,
    pub removed: Vec<FunctionDef>,
    pub revised: Vec<Revision>,
    pub unchanged: Vec<String>,
}

impl RegistryDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.revised.is_empty()
    }
}

/// What changed from `old` to `new`, functions matched by name, in the registries' order.
pub fn diff_registries(old: &Registry, new: &Registry) -> RegistryDiff {
    let mut diff = RegistryDiff { added: vec![], removed: vec![], revised: vec![], unchanged: vec![] };
    for f in &old.functions {
        if new.get(&f.name).is_none() {
            diff.removed.push(f.clone());
        }
    }
    for g in &new.functions {
        let Some(f) = old.get(&g.name) else {
            diff.added.push(g.clone());
            continue;
        };
        if f == g {
            diff.unchanged.push(g.name.clone());
            continue;
        }
        let label = |side: &str, what: &str| format!("{side}/{}.{what}", g.name);
        diff.revised.push(Revision {
            name: g.name.clone(),
            description_diff: unified_diff(
                &f.description,
                &g.description,
                &label("a", "txt"),
                &label("b", "txt"),
            ),
            code_diff: unified_diff(&f.code, &g.code, &label("a", "py"), &label("b", "py")),
            parameters_changed: f.parameters != g.parameters,
            packages_changed: f.packages != g.packages,
            old: f.clone(),
            new: g.clone(),
        });
    }
    diff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_line_diff() {
        let d = line_diff("a\nb\nc\nd", "a\nc\nx\nd");
        let s: Vec<String> = d
            .iter()
            .map(|l| {
                format!(
                    "{}{}",
                    match l.kind {
                        LineKind::Equal => ' ',
                        LineKind::Delete => '-',
                        LineKind::Insert => '+',
                    },
                    l.text
                )
            })
            .collect();
        assert_eq!(s, [" a", "-b", " c", "+x", " d"]);
    }

    #[test]
    fn unified_hunks() {
        let old: String = (1..=20).map(|n| format!("l{n}\n")).collect();
        let new = old.replace("l2\n", "l2 changed\n").replace("l18\n", "");
        let u = unified_diff(&old, &new, "a", "b");
        assert_eq!(
            u,
            "--- a\n+++ b\n@@ -1,5 +1,5 @@\n l1\n-l2\n+l2 changed\n l3\n l4\n l5\n@@ -15,6 +15,5 @@\n l15\n l16\n l17\n-l18\n l19\n l20\n"
        );
        assert_eq!(unified_diff("x\n", "x\n", "a", "b"), "");
        assert_eq!(unified_diff("", "new\n", "a", "b"), "--- a\n+++ b\n@@ -0,0 +1,1 @@\n+new\n");
    }
}
