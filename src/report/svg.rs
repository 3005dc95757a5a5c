//! Inline SVG charts for the report: the train score per epoch and before/after bars per subject with
//! 95% Wilson intervals. Hand-written SVG keeps the report a single file with no script and no network.

use super::html::escape;
use crate::stats::wilson_95;

/// One epoch's training score and whether it was kept.
pub struct ScorePoint {
    pub epoch: usize,
    pub score: f64,
    pub accepted: bool,
}

const W: f64 = 720.0;
const H: f64 = 300.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 20.0;
const BOTTOM: f64 = 58.0;

fn y_of(rate: f64) -> f64 {
    TOP + (1.0 - rate.clamp(0.0, 1.0)) * (H - TOP - BOTTOM)
}

/// Horizontal grid and labels for a 0..1 rate axis.
fn rate_axis(out: &mut String, width: f64) {
    for k in 0..=4 {
        let r = k as f64 / 4.0;
        let y = y_of(r);
        out.push_str(&format!(
            "<line class=\"grid\" x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{r:.2}</text>\n",
            width - RIGHT,
            LEFT - 6.0,
            y + 4.0
        ));
    }
    out.push_str(&format!(
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{0:.1}\" x2=\"{1:.1}\" y2=\"{0:.1}\"/>\n",
        y_of(0.0),
        width - RIGHT
    ));
}

/// Score per epoch: a line through every epoch, the best-so-far as a dashed step, accepted epochs as
/// filled circles and rolled-back ones as crosses.
pub fn score_plot(points: &[ScorePoint]) -> String {
    let mut out = format!(
        "<svg class=\"score-plot\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" \
         role=\"img\" aria-label=\"Training score per epoch\">\n"
    );
    rate_axis(&mut out, W);
    let last_epoch = points.iter().map(|p| p.epoch).max().unwrap_or(0).max(1) as f64;
    let x_of = |epoch: usize| LEFT + 16.0 + epoch as f64 / last_epoch * (W - LEFT - RIGHT - 32.0);
    for p in points {
        out.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
            x_of(p.epoch),
            y_of(0.0) + 16.0,
            p.epoch
        ));
    }
    out.push_str(&format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">epoch</text>\n",
        W / 2.0,
        H - 24.0
    ));
    if points.len() > 1 {
        let coords: Vec<String> =
            points.iter().map(|p| format!("{:.1},{:.1}", x_of(p.epoch), y_of(p.score))).collect();
        out.push_str(&format!("<polyline class=\"score-line\" points=\"{}\"/>\n", coords.join(" ")));
    }
    // The best score so far, as a step function: what the trainer would keep at each point.
    let mut best = f64::NEG_INFINITY;
    let mut steps = Vec::new();
    for p in points {
        if p.accepted {
            if best.is_finite() {
                steps.push(format!("{:.1},{:.1}", x_of(p.epoch), y_of(best)));
            }
            best = p.score;
        }
        if best.is_finite() {
            steps.push(format!("{:.1},{:.1}", x_of(p.epoch), y_of(best)));
        }
    }
    if steps.len() > 1 {
        out.push_str(&format!("<polyline class=\"best-line\" points=\"{}\"/>\n", steps.join(" ")));
    }
    for p in points {
        let (x, y) = (x_of(p.epoch), y_of(p.score));
        let what = if p.accepted { "accepted" } else { "rolled back" };
        let title = format!("<title>epoch {}: {:.3} ({what})</title>", p.epoch, p.score);
        if p.accepted {
            out.push_str(&format!(
                "<circle class=\"pt-accept\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"5.5\">{title}</circle>\n"
            ));
        } else {
            out.push_str(&format!(
                "<g class=\"pt-rollback\">{title}<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>\
                 <line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/></g>\n",
                x - 5.0,
                y - 5.0,
                x + 5.0,
                y + 5.0,
                x - 5.0,
                y + 5.0,
                x + 5.0,
                y - 5.0
            ));
        }
    }
    let ly = H - 8.0;
    out.push_str(&format!(
        "<circle class=\"pt-accept\" cx=\"{0}\" cy=\"{1}\" r=\"5\"/><text x=\"{2}\" y=\"{3}\">accepted</text>\
         <g class=\"pt-rollback\"><line x1=\"{4}\" y1=\"{5}\" x2=\"{6}\" y2=\"{7}\"/><line x1=\"{4}\" y1=\"{7}\" x2=\"{6}\" y2=\"{5}\"/></g>\
         <text x=\"{8}\" y=\"{3}\">rolled back</text>\
         <line class=\"best-line\" x1=\"{9}\" y1=\"{1}\" x2=\"{10}\" y2=\"{1}\"/><text x=\"{11}\" y=\"{3}\">best so far</text>\n",
        LEFT + 6.0,
        ly - 4.0,
        LEFT + 16.0,
        ly,
        LEFT + 101.0,
        ly - 9.0,
        LEFT + 111.0,
        ly + 1.0,
        LEFT + 118.0,
        LEFT + 210.0,
        LEFT + 240.0,
        LEFT + 246.0,
    ));
    out.push_str("</svg>\n");
    out
}

/// One group of bars: a subject (or "all") with correct out of scored, before and after.
pub struct BarGroup {
    pub label: String,
    pub before: Option<(usize, usize)>,
    pub after: Option<(usize, usize)>,
}

/// Before/after success rates per group with 95% Wilson interval whiskers.
pub fn rate_bars(groups: &[BarGroup]) -> String {
    const GROUP_W: f64 = 96.0;
    const BAR_W: f64 = 30.0;
    // Wide enough for the legend; the explicit size keeps text at its natural size in a wide page.
    let width = (LEFT + RIGHT + GROUP_W * groups.len() as f64).max(440.0);
    let mut out = format!(
        "<svg class=\"rate-bars\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{H}\" viewBox=\"0 0 {width:.0} {H}\" \
         role=\"img\" aria-label=\"Success rate before and after training, per subject\">\n"
    );
    rate_axis(&mut out, width);
    for (g, group) in groups.iter().enumerate() {
        let x0 = LEFT + g as f64 * GROUP_W + (GROUP_W - 2.0 * BAR_W - 6.0) / 2.0;
        for (k, (side, value)) in [("before", group.before), ("after", group.after)].into_iter().enumerate() {
            let Some((correct, n)) = value else { continue };
            let Some((lo, hi)) = wilson_95(correct as f64, n) else { continue };
            let rate = correct as f64 / n as f64;
            let x = x0 + k as f64 * (BAR_W + 6.0);
            let cx = x + BAR_W / 2.0;
            out.push_str(&format!(
                "<rect class=\"bar-{side}\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{BAR_W}\" height=\"{:.1}\">\
                 <title>{} {side}: {correct}/{n} = {rate:.3} (95% CI {lo:.3}-{hi:.3})</title></rect>\
                 <line class=\"ci\" x1=\"{cx:.1}\" y1=\"{:.1}\" x2=\"{cx:.1}\" y2=\"{:.1}\"/>\
                 <line class=\"ci\" x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>\
                 <line class=\"ci\" x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>\n",
                y_of(rate),
                y_of(0.0) - y_of(rate),
                escape(&group.label),
                y_of(hi),
                y_of(lo),
                cx - 5.0,
                y_of(hi),
                cx + 5.0,
                y_of(hi),
                cx - 5.0,
                y_of(lo),
                cx + 5.0,
                y_of(lo),
            ));
        }
        let label: String = group.label.chars().take(14).collect();
        out.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
            LEFT + g as f64 * GROUP_W + GROUP_W / 2.0,
            y_of(0.0) + 16.0,
            escape(&label)
        ));
    }
    let ly = H - 8.0;
    out.push_str(&format!(
        "<rect class=\"bar-before\" x=\"{0}\" y=\"{1}\" width=\"12\" height=\"12\"/><text x=\"{2}\" y=\"{3}\">before</text>\
         <rect class=\"bar-after\" x=\"{4}\" y=\"{1}\" width=\"12\" height=\"12\"/><text x=\"{5}\" y=\"{3}\">after</text>\
         <text x=\"{6}\" y=\"{3}\">whiskers: 95% Wilson interval</text>\n",
        LEFT,
        ly - 11.0,
        LEFT + 16.0,
        ly,
        LEFT + 70.0,
        LEFT + 86.0,
        LEFT + 140.0
    ));
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_accepted_and_rolled_back_differently() {
        let svg = score_plot(&[
            ScorePoint { epoch: 0, score: 0.5, accepted: true },
            ScorePoint { epoch: 1, score: 0.4, accepted: false },
            ScorePoint { epoch: 2, score: 0.75, accepted: true },
        ]);
        assert_eq!(svg.matches("<circle class=\"pt-accept\"").count(), 3); // 2 points + legend
        assert_eq!(svg.matches("<g class=\"pt-rollback\">").count(), 2); // 1 point + legend
        assert!(svg.contains("epoch 1: 0.400 (rolled back)"));
    }

    #[test]
    fn bars_escape_labels() {
        let svg = rate_bars(&[BarGroup { label: "<b>&".into(), before: Some((1, 2)), after: Some((2, 2)) }]);
        assert!(svg.contains("&lt;b&gt;&amp;") && !svg.contains("<b>"));
        assert_eq!(svg.matches("class=\"ci\"").count(), 6);
    }
}
