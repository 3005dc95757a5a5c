//! A negotiation scenario: the two sides (the vendor, who wants a high price, and the buyer, who
//! wants a low one), their system prompts, who opens and with what, and when it stops; read from TOML
//! (`--scenario`) or the workshop's table sale by default.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// One of the two sides. The vendor gains from a high price, the buyer from a low one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Vendor,
    Buyer,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Vendor => Side::Buyer,
            Side::Buyer => Side::Vendor,
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Side::Vendor => "vendor",
            Side::Buyer => "buyer",
        }
    }
}

/// When a negotiation ends, besides `max_turns` turns each without a deal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stop {
    /// A side accepts the other's standing offer ("offer accepted": true); the price is that offer.
    #[default]
    Accept,
    /// Also when the standing offers cross (the buyer offers at least what the vendor asks): the
    /// price is the offer that was standing first.
    OffersCross,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Party {
    /// How transcripts and the other side's prompt name this side.
    pub name: String,
    /// The side's system prompt; the reply format is appended to it.
    pub system: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub vendor: Party,
    pub buyer: Party,
    /// The side whose opening message starts the negotiation; the other side answers it first.
    #[serde(default = "default_opener")]
    pub opens: Side,
    /// What the opener says first (it reaches the other side only).
    #[serde(default = "default_opening")]
    pub opening: String,
    /// An offer made with the opening message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opening_offer: Option<f64>,
    #[serde(default)]
    pub stop: Stop,
    /// Turns each side gets before the round ends without a deal (`--max-turns` overrides it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_turns: Option<usize>,
}

fn default_opener() -> Side {
    Side::Buyer
}

fn default_opening() -> String {
    "Hello!".into()
}

const VENDOR_PROMPT: &str = "You sell tables. You inherited every table imaginable and would like to sell \
one of them, for as much as you can get. The person in front of you seems interested in a new table.\n\n\
Important: your goal is to negotiate the highest final price possible.";

const BUYER_PROMPT: &str = "You are looking to buy a nice table, for as little as possible.\n\n\
Important: your goal is to negotiate the lowest final price possible.";

impl Default for Scenario {
    /// The workshop notebook's table sale: the buyer says hello, the vendor answers first.
    fn default() -> Self {
        Scenario {
            name: "table sale".into(),
            vendor: Party { name: "Vendor".into(), system: VENDOR_PROMPT.into() },
            buyer: Party { name: "Buyer".into(), system: BUYER_PROMPT.into() },
            opens: default_opener(),
            opening: default_opening(),
            opening_offer: None,
            stop: Stop::Accept,
            max_turns: None,
        }
    }
}

impl Scenario {
    pub fn party(&self, side: Side) -> &Party {
        match side {
            Side::Vendor => &self.vendor,
            Side::Buyer => &self.buyer,
        }
    }

    /// Reads a scenario file; an error names the file, the line and the field at fault.
    pub fn load(path: &Path) -> Result<Scenario, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the scenario `{}`: {e}", path.display()))?;
        Scenario::parse(&text).map_err(|e| format!("{}:{e}", path.display()))
    }

    /// Parses scenario TOML; the error starts with the line (`3: ...`).
    pub fn parse(text: &str) -> Result<Scenario, String> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |span| line_of(text, span.start));
            format!("{line}: {}", e.message().trim())
        })?;
        let blank = |field: &str, value: &str| {
            if value.trim().is_empty() {
                Err(format!("{}: field `{field}` is empty", key_line(text, field)))
            } else {
                Ok(())
            }
        };
        blank("name", &scenario.name)?;
        for side in [Side::Vendor, Side::Buyer] {
            let party = scenario.party(side);
            blank(&format!("{}.name", side.key()), &party.name)?;
            blank(&format!("{}.system", side.key()), &party.system)?;
        }
        blank("opening", &scenario.opening)?;
        if scenario.max_turns == Some(0) {
            return Err(format!("{}: field `max_turns` must be at least 1", key_line(text, "max_turns")));
        }
        if let Some(offer) = scenario.opening_offer.filter(|o| !(o.is_finite() && *o >= 0.0)) {
            return Err(format!(
                "{}: field `opening_offer` must be a price of at least 0, not {offer}",
                key_line(text, "opening_offer")
            ));
        }
        Ok(scenario)
    }
}

fn line_of(text: &str, byte: usize) -> usize {
    text[..byte.min(text.len())].matches('\n').count() + 1
}

/// The line where `field` (`key` or `table.key`) is set, for errors found after parsing; the table's
/// header line when the key itself is absent, else 1.
fn key_line(text: &str, field: &str) -> usize {
    let (table, key) = field.rsplit_once('.').unwrap_or(("", field));
    let mut current = "";
    let mut header = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.trim();
            if current == table {
                header = Some(i + 1);
            }
            continue;
        }
        let sets = line.split_once('=').is_some_and(|(k, _)| k.trim() == key);
        if sets && current == table {
            return i + 1;
        }
    }
    header.unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
name = "salary"
opens = "vendor"
opening = "We can offer the job."
opening_offer = 50000
stop = "offers-cross"
max_turns = 6

[vendor]
name = "Candidate"
system = "You want a high salary."

[buyer]
name = "Employer"
system = "You want to pay little."
"#;

    #[test]
    fn a_full_scenario_reads_every_field() {
        let s = Scenario::parse(FULL).unwrap();
        assert_eq!(
            (s.opens, s.stop, s.max_turns, s.opening_offer),
            (Side::Vendor, Stop::OffersCross, Some(6), Some(50000.0))
        );
        assert_eq!(s.party(Side::Buyer).name, "Employer");
    }

    #[test]
    fn defaults_are_the_notebook_s_opening() {
        let s = Scenario::parse(
            "name = \"x\"\n[vendor]\nname = \"V\"\nsystem = \"s\"\n[buyer]\nname = \"B\"\nsystem = \"t\"\n",
        )
        .unwrap();
        assert_eq!(
            (s.opens, s.opening.as_str(), s.stop, s.max_turns),
            (Side::Buyer, "Hello!", Stop::Accept, None)
        );
    }

    #[test]
    fn errors_name_the_line_and_the_field() {
        let missing = FULL.replace("system = \"You want to pay little.\"\n", "");
        let e = Scenario::parse(&missing).unwrap_err();
        assert!(e.contains("missing field `system`"), "{e}");
        let unknown = FULL.replace("max_turns = 6", "max_turn = 6");
        let e = Scenario::parse(&unknown).unwrap_err();
        assert!(e.starts_with("7: ") && e.contains("unknown field `max_turn`"), "{e}");
        let zero = FULL.replace("max_turns = 6", "max_turns = 0");
        assert_eq!(Scenario::parse(&zero).unwrap_err(), "7: field `max_turns` must be at least 1");
        let blank = FULL.replace("You want a high salary.", " ");
        assert_eq!(Scenario::parse(&blank).unwrap_err(), "11: field `vendor.system` is empty");
        let side = FULL.replace("opens = \"vendor\"", "opens = \"seller\"");
        let e = Scenario::parse(&side).unwrap_err();
        assert!(e.starts_with("3: ") && e.contains("seller"), "{e}");
    }
}
