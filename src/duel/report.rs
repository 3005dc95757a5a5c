//! Several duel saves compared: rounds grouped by model pairing (scenario, vendor model, buyer model),
//! each group's summary, and the price distribution per pairing as a strip plot with the median and
//! its 95% interval (the persuasion benchmark: which model drives the price where).

use std::path::PathBuf;

use serde::Serialize;

use super::round::RoundRecord;
use super::save;
use super::summary::Summary;
use crate::report::html::escape;

/// The rounds of one model pairing, from every save given.
#[derive(Debug, Clone, Serialize)]
pub struct Pairing {
    pub scenario: String,
    pub max_turns: usize,
    pub vendor_model: String,
    pub buyer_model: String,
    /// Set when another pairing has the same scenario name but other prompts or rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub saves: Vec<PathBuf>,
    /// Rounds left out because an earlier save of the pairing ran the same seed (a replay from the
    /// cache is no new sample).
    pub repeated_seeds: usize,
    pub summary: Summary,
    #[serde(skip)]
    key: String,
}

impl Pairing {
    pub fn label(&self) -> String {
        let variant = self.variant.as_ref().map_or(String::new(), |v| format!(" [scenario {v}]"));
        format!(
            "{}{variant}, {} turns: {} (vendor) vs {} (buyer)",
            self.scenario, self.max_turns, self.vendor_model, self.buyer_model
        )
    }
}

/// Loads the saves and groups their rounds by pairing (the whole scenario, the turn limit and both
/// models), in the order pairings are first met.
pub fn pairings(saves: &[PathBuf]) -> Result<Vec<Pairing>, String> {
    let mut groups: Vec<(Pairing, Vec<RoundRecord>)> = Vec::new();
    for dir in saves {
        let (info, records) = save::load(dir)?;
        let scenario = serde_json::to_string(&info.scenario).unwrap_or_default();
        let key = format!("{scenario}\n{}\n{}\n{}", info.max_turns, info.models.vendor, info.models.buyer);
        let index = match groups.iter().position(|(p, _)| p.key == key) {
            Some(index) => index,
            None => {
                let pairing = Pairing {
                    scenario: info.scenario.name.clone(),
                    max_turns: info.max_turns,
                    vendor_model: info.models.vendor.clone(),
                    buyer_model: info.models.buyer.clone(),
                    variant: Some(short_hash(&scenario)),
                    saves: Vec::new(),
                    repeated_seeds: 0,
                    summary: Summary::of(&[]),
                    key,
                };
                groups.push((pairing, Vec::new()));
                groups.len() - 1
            }
        };
        let (pairing, rounds) = &mut groups[index];
        pairing.saves.push(dir.clone());
        // Round numbers repeat across saves: number on, so the merged summary keeps the saves' order.
        let offset = rounds.iter().map(|r| r.round).max().unwrap_or(0);
        for mut record in records {
            if rounds.iter().any(|r| r.seed == record.seed) {
                pairing.repeated_seeds += 1;
                continue;
            }
            record.round += offset;
            rounds.push(record);
        }
    }
    let mut pairings: Vec<Pairing> = groups
        .into_iter()
        .map(|(mut pairing, rounds)| {
            pairing.summary = Summary::of(&rounds);
            pairing
        })
        .collect();
    // The scenario's hash tells apart only what would otherwise read the same.
    let plain = |p: &Pairing| Pairing { variant: None, ..p.clone() }.label();
    let labels: Vec<String> = pairings.iter().map(plain).collect();
    for (p, label) in pairings.iter_mut().zip(&labels) {
        if labels.iter().filter(|l| *l == label).count() < 2 {
            p.variant = None;
        }
    }
    Ok(pairings)
}

fn short_hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(text.as_bytes())[..4])
}

fn money(x: Option<f64>) -> String {
    x.map_or("–".into(), |x| format!("{x:.2}"))
}

fn interval(ci: Option<[f64; 2]>) -> String {
    ci.map_or("–".into(), |[lo, hi]| format!("{lo:.2}–{hi:.2}"))
}

/// `40%, 95% CI 17–69%` of the rounds that did not error.
pub fn agreement_text(s: &Summary) -> String {
    let Some(rate) = s.agreement_rate else { return "no round decided".into() };
    let ci = s
        .agreement_ci95
        .map_or(String::new(), |[a, b]| format!(", 95% CI {:.0}–{:.0}%", 100.0 * a, 100.0 * b));
    format!("{:.0}%{ci}", 100.0 * rate)
}

/// The comparison as a plain-text table.
pub fn text(pairings: &[Pairing]) -> String {
    let mut out = String::new();
    for p in pairings {
        let s = &p.summary;
        out.push_str(&format!(
            "{}\n  rounds {}  agreed {} ({})  no deal {}  errored {}\n  mean price {} (95% CI {})  \
             median {} (95% CI {})\n",
            p.label(),
            s.rounds,
            s.agreed,
            agreement_text(s),
            s.no_deal,
            s.errored,
            money(s.mean_price),
            interval(s.mean_price_ci95),
            money(s.median_price),
            interval(s.median_price_ci95),
        ));
        if p.repeated_seeds > 0 {
            out.push_str(&format!(
                "  left out: {} round(s) whose seeds an earlier save of this pairing already ran\n",
                p.repeated_seeds
            ));
        }
    }
    out
}

/// The comparison as a report page: a table and the price distribution per pairing.
pub fn html(pairings: &[Pairing]) -> String {
    let mut body =
        String::from("<h1>agentopt duel</h1>\n<p class=\"muted\">Agreed prices per model pairing.</p>\n");
    body.push_str("<h2>Prices</h2>\n");
    body.push_str(&strip_plot(pairings));
    body.push_str(
        "<h2>Pairings</h2>\n<table><tr><th>pairing</th><th>rounds</th><th>agreed</th><th>errored</th>\
         <th>mean price (95% CI)</th><th>median (95% CI)</th><th>mean turns</th><th>cost</th></tr>\n",
    );
    for p in pairings {
        let s = &p.summary;
        body.push_str(&format!(
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{} ({})</td><td class=\"num\">{} ({})</td><td class=\"num\">{}</td>\
             <td class=\"num\">${:.4}</td></tr>\n",
            escape(&p.label()),
            s.rounds,
            s.agreed,
            s.errored,
            money(s.mean_price),
            interval(s.mean_price_ci95),
            money(s.median_price),
            interval(s.median_price_ci95),
            s.mean_turns.map_or("–".into(), |t| format!("{t:.1}")),
            s.total_usage().usd,
        ));
    }
    body.push_str("</table>\n");
    crate::report::page("agentopt duel", &body)
}

/// One row per pairing: every agreed price as a dot, the median as a bar, its interval as a line.
fn strip_plot(pairings: &[Pairing]) -> String {
    const W: f64 = 720.0;
    const ROW: f64 = 44.0;
    const LEFT: f64 = 20.0;
    const RIGHT: f64 = 20.0;
    const TOP: f64 = 10.0;
    let prices = pairings.iter().flat_map(|p| p.summary.prices.iter().copied());
    let (lo, hi) = prices.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(x), hi.max(x)));
    if !lo.is_finite() {
        return "<p class=\"muted\">No round reached a deal.</p>\n".into();
    }
    let span = if hi > lo { hi - lo } else { 1.0 };
    let x_of = |x: f64| LEFT + (x - lo) / span * (W - LEFT - RIGHT);
    let h = TOP + ROW * pairings.len() as f64 + 30.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{h}\" viewBox=\"0 0 {W} {h}\" role=\"img\" \
         aria-label=\"Agreed prices per pairing\">\n"
    );
    for (i, p) in pairings.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        out.push_str(&format!("<text x=\"{LEFT}\" y=\"{:.1}\">{}</text>\n", y + 12.0, escape(&p.label())));
        let mid = y + 28.0;
        if let Some([a, b]) = p.summary.median_price_ci95 {
            out.push_str(&format!(
                "<line class=\"ci\" x1=\"{:.1}\" y1=\"{mid:.1}\" x2=\"{:.1}\" y2=\"{mid:.1}\"/>\n",
                x_of(a),
                x_of(b)
            ));
        }
        for &price in &p.summary.prices {
            out.push_str(&format!(
                "<circle class=\"pt-accept\" cx=\"{:.1}\" cy=\"{mid:.1}\" r=\"3.5\" opacity=\"0.6\"/>\n",
                x_of(price)
            ));
        }
        if let Some(m) = p.summary.median_price {
            let x = x_of(m);
            out.push_str(&format!(
                "<line class=\"axis\" x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke-width=\"2.5\"/>\n",
                mid - 8.0,
                mid + 8.0
            ));
        }
    }
    let axis_y = TOP + ROW * pairings.len() as f64 + 6.0;
    out.push_str(&format!(
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{axis_y:.1}\" x2=\"{:.1}\" y2=\"{axis_y:.1}\"/>\n",
        W - RIGHT
    ));
    for k in 0..=4 {
        let x = lo + span * k as f64 / 4.0;
        let anchor = ["start", "middle", "middle", "middle", "end"][k];
        out.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{x:.0}</text>\n",
            x_of(x),
            axis_y + 16.0
        ));
    }
    out.push_str("</svg>\n");
    out
}
