//! One negotiation: the two sides take turns, each with its own history (its own thoughts kept, the
//! other's stripped), until a side accepts the other's standing offer, the scenario's stop condition
//! holds, or both have used their turns; the record keeps both histories, every turn and the outcome.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::reply::{self, Reply};
use super::scenario::{Scenario, Side, Stop};
use crate::llm::{ChatModel, ChatRequest, Message, Usage};

/// A side's model and the name it was selected by.
#[derive(Clone)]
pub struct Negotiator {
    pub model: Arc<dyn ChatModel>,
    pub name: String,
}

/// Everything the rounds of one duel share.
pub struct Duel {
    pub scenario: Scenario,
    pub sides: PerSide<Negotiator>,
    pub max_turns: usize,
    /// Set by a model error every other call would meet too (a bad key, an unknown model): no
    /// further round should start.
    pub fatal: std::sync::Mutex<Option<String>>,
}

impl Duel {
    pub fn new(scenario: Scenario, vendor: Negotiator, buyer: Negotiator, max_turns: usize) -> Duel {
        Duel { scenario, sides: PerSide { vendor, buyer }, max_turns, fatal: Default::default() }
    }

    /// The error that stopped the duel, if one did.
    pub fn fatal(&self) -> Option<String> {
        self.fatal.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// `accepted_by` took the other side's standing offer, at `price`, after `turns` replies in all.
    Agreed { price: f64, accepted_by: Side, turns: usize },
    /// Both sides used their turns.
    NoDeal { turns: usize },
    /// A model call failed, or a side's reply was unusable twice: no outcome of the negotiation.
    Errored {
        side: Side,
        reason: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        rejected: Vec<Rejected>,
    },
}

/// A reply that could not be used, and why (the side was asked once more).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejected {
    pub raw: String,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    pub side: Side,
    /// The reply as the model wrote it.
    pub raw: String,
    pub reply: Reply,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<Rejected>,
    /// What the engine made of a reply it could not follow (an acceptance with nothing to accept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PerSide<T> {
    pub vendor: T,
    pub buyer: T,
}

impl<T> PerSide<T> {
    pub fn get(&self, side: Side) -> &T {
        match side {
            Side::Vendor => &self.vendor,
            Side::Buyer => &self.buyer,
        }
    }

    pub fn get_mut(&mut self, side: Side) -> &mut T {
        match side {
            Side::Vendor => &mut self.vendor,
            Side::Buyer => &mut self.buyer,
        }
    }
}

/// One saved round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundRecord {
    /// From 1.
    pub round: usize,
    /// The sampling seed of every request of the round (the cache keys on it, so rounds differ).
    pub seed: u64,
    pub scenario: String,
    pub models: PerSide<String>,
    pub outcome: Outcome,
    /// Every failed attempt at a rejected turn is in its `rejected`; an errored turn is not here.
    pub turns: Vec<Turn>,
    /// The messages each side was sent, with its own replies (its thoughts included).
    pub histories: PerSide<Vec<Message>>,
    pub usage: PerSide<Usage>,
    /// Offers still standing at the end.
    pub standing: PerSide<Option<f64>>,
}

impl RoundRecord {
    pub fn price(&self) -> Option<f64> {
        match self.outcome {
            Outcome::Agreed { price, .. } => Some(price),
            _ => None,
        }
    }

    pub fn total_usage(&self) -> Usage {
        self.usage.total()
    }
}

impl PerSide<Usage> {
    /// Both sides' usage added up.
    pub fn total(&self) -> Usage {
        let mut usage = self.vendor;
        usage.add(&self.buyer);
        usage
    }
}

impl Duel {
    /// A side's system prompt: the scenario's, the reply format, and for the opener what it opened with.
    fn system_prompt(&self, side: Side) -> String {
        let s = &self.scenario;
        let other = &s.party(side.other()).name;
        let mut prompt = format!("{}\n\n{}", s.party(side).system.trim(), reply::format_instructions(other));
        if side == s.opens {
            let opening = reply::public_message(&s.opening, s.opening_offer, false);
            prompt.push_str(&format!("\n\nYou opened the conversation with:\n{opening}"));
        }
        prompt
    }

    /// Runs round `round` (from 1) with `seed`.
    pub async fn round(&self, round: usize, seed: u64) -> RoundRecord {
        let s = &self.scenario;
        let mut histories = PerSide {
            vendor: vec![Message::system(self.system_prompt(Side::Vendor))],
            buyer: vec![Message::system(self.system_prompt(Side::Buyer))],
        };
        let mut standing = PerSide::<Option<f64>>::default();
        *standing.get_mut(s.opens) = s.opening_offer;
        histories.get_mut(s.opens.other()).push(Message::user(reply::public_message(
            &s.opening,
            s.opening_offer,
            false,
        )));
        let mut usage = PerSide::<Usage>::default();
        let mut turns = Vec::new();
        let mut speaker = s.opens.other();
        let total = 2 * self.max_turns;
        let mut outcome = Outcome::NoDeal { turns: total };
        for n in 1..=total {
            let asked = self.ask(speaker, histories.get(speaker), seed, usage.get_mut(speaker)).await;
            let (raw, reply, rejected) = match asked {
                Ok(answer) => answer,
                Err((reason, rejected)) => {
                    outcome = Outcome::Errored { side: speaker, reason, rejected };
                    break;
                }
            };
            histories.get_mut(speaker).push(Message::assistant(raw.clone()));
            let mut turn = Turn { side: speaker, raw, reply: reply.clone(), rejected, note: None };
            let other = speaker.other();
            let deal = match (reply.accepted, *standing.get(other)) {
                (true, Some(price)) => Some(price),
                (true, None) => {
                    turn.note = Some(format!(
                        "accepted, but {} has no standing offer: the negotiation goes on",
                        s.party(other).name
                    ));
                    None
                }
                (false, _) => None,
            };
            if deal.is_none() && reply.offer.is_some() {
                *standing.get_mut(speaker) = reply.offer;
            }
            let crossed = match (s.stop, standing.vendor, standing.buyer) {
                (Stop::OffersCross, Some(ask), Some(bid)) if bid >= ask && reply.offer.is_some() => {
                    // The speaker's new offer met the one standing before it: that one is the price.
                    *standing.get(other)
                }
                _ => None,
            };
            turns.push(turn);
            if let Some(price) = deal.or(crossed) {
                outcome = Outcome::Agreed { price, accepted_by: speaker, turns: n };
                break;
            }
            if n < total {
                // The last reply of a round without a deal reaches no one: no request carries it.
                histories.get_mut(other).push(Message::user(reply.public()));
            }
            speaker = other;
        }
        RoundRecord {
            round,
            seed,
            scenario: s.name.clone(),
            models: PerSide { vendor: self.sides.vendor.name.clone(), buyer: self.sides.buyer.name.clone() },
            outcome,
            turns,
            histories,
            usage,
            standing,
        }
    }

    /// A side's next reply, asked once more (with the parse error) when it is unusable. The failed
    /// attempt stays out of the side's history: only the usable reply is kept there.
    async fn ask(
        &self,
        side: Side,
        history: &[Message],
        seed: u64,
        usage: &mut Usage,
    ) -> Result<(String, Reply, Vec<Rejected>), (String, Vec<Rejected>)> {
        let mut request = ChatRequest {
            messages: history.to_vec(),
            json_schema: Some(reply::schema()),
            seed: Some(seed),
            ..ChatRequest::default()
        };
        let mut rejected = Vec::new();
        loop {
            let response = match self.sides.get(side).model.chat(&request).await {
                Ok(response) => response,
                Err(e) => {
                    if e.fails_every_request() {
                        *self.fatal.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
                    }
                    return Err((e.to_string(), rejected));
                }
            };
            usage.add(&response.usage);
            let raw = response.message.text().to_string();
            match reply::parse(&raw) {
                Ok(reply) => return Ok((raw, reply, rejected)),
                Err(error) if rejected.is_empty() => {
                    request.messages.push(Message::assistant(raw.clone()));
                    request.messages.push(Message::user(reply::retry_prompt(&error)));
                    rejected.push(Rejected { raw, error });
                }
                Err(error) => {
                    let reason = format!("unusable reply twice: {}; then {error}", rejected[0].error);
                    rejected.push(Rejected { raw, error });
                    return Err((reason, rejected));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::scripted::Scripted;

    fn json(thoughts: &str, message: &str, offer: Option<f64>, accepted: bool) -> Message {
        let offer = offer.map_or("null".into(), |o| o.to_string());
        Message::assistant(format!(
            r#"{{"private thoughts": "{thoughts}", "message": "{message}", "offer": {offer}, "offer accepted": {accepted}}}"#
        ))
    }

    fn duel(
        vendor: Vec<Message>,
        buyer: Vec<Message>,
        scenario: Scenario,
    ) -> (Duel, Arc<Scripted>, Arc<Scripted>) {
        let v = Arc::new(Scripted::replies(vendor));
        let b = Arc::new(Scripted::replies(buyer));
        let side = |m: &Arc<Scripted>, name: &str| Negotiator { model: m.clone(), name: name.into() };
        (Duel::new(scenario, side(&v, "v"), side(&b, "b"), 3), v, b)
    }

    #[tokio::test]
    async fn acceptance_ends_at_the_other_side_s_standing_offer_and_thoughts_stay_home() {
        let (d, v, b) = duel(
            vec![
                json("SECRET-V", "300 it is", Some(300.0), false),
                json("fine", "ok 250 then", Some(250.0), false),
            ],
            vec![json("SECRET-B", "200?", Some(200.0), false), json("take it", "deal", None, true)],
            Scenario::default(),
        );
        let r = d.round(1, 7).await;
        assert_eq!(r.outcome, Outcome::Agreed { price: 250.0, accepted_by: Side::Buyer, turns: 4 });
        assert_eq!(r.price(), Some(250.0));
        let to_buyer: String =
            b.requests().iter().flat_map(|q| q.messages.iter().map(|m| m.text().to_string())).collect();
        let to_vendor: String =
            v.requests().iter().flat_map(|q| q.messages.iter().map(|m| m.text().to_string())).collect();
        assert!(!to_buyer.contains("SECRET-V") && !to_vendor.contains("SECRET-B"));
        // Each side keeps its own thoughts; the vendor answered the buyer's "Hello!" first.
        assert!(r.histories.vendor.iter().any(|m| m.text().contains("SECRET-V")));
        assert!(v.requests()[0].messages[1].text().contains("Hello!"));
        assert!(
            v.requests()
                .iter()
                .chain(b.requests().iter())
                .all(|q| q.seed == Some(7) && q.json_schema.is_some())
        );
        assert_eq!((r.usage.vendor.calls, r.usage.buyer.calls), (2, 2));
    }

    #[tokio::test]
    async fn no_deal_after_every_turn_and_an_empty_acceptance_goes_on() {
        let offers = |start: f64, accept_first: bool| {
            (0..3).map(|i| json("t", "no", Some(start + i as f64), accept_first && i == 0)).collect()
        };
        let (d, _, _) = duel(offers(500.0, true), offers(100.0, false), Scenario::default());
        let r = d.round(1, 0).await;
        assert_eq!(r.outcome, Outcome::NoDeal { turns: 6 });
        // The vendor accepted first, when the buyer had offered nothing yet.
        assert!(r.turns[0].note.as_deref().is_some_and(|n| n.contains("no standing offer")));
        assert_eq!(r.standing, PerSide { vendor: Some(502.0), buyer: Some(102.0) });
    }

    #[tokio::test]
    async fn an_unusable_reply_is_retried_once_then_the_round_errors() {
        let (d, v, _) = duel(
            vec![Message::assistant("I'd say 300"), json("t", "300", Some(300.0), false)],
            vec![Message::assistant("{\"message\": }"), Message::assistant("still not json")],
            Scenario::default(),
        );
        let r = d.round(1, 0).await;
        assert_eq!(r.turns.len(), 1);
        assert_eq!(r.turns[0].rejected[0].raw, "I'd say 300");
        let retry = &v.requests()[1].messages;
        assert!(retry.last().unwrap().text().contains("could not be used: the reply holds no JSON object"));
        // The failed attempt is not in the kept history.
        assert!(!r.histories.vendor.iter().any(|m| m.text() == "I'd say 300"));
        let Outcome::Errored { side, reason, rejected } = &r.outcome else { panic!("{:?}", r.outcome) };
        assert_eq!((*side, rejected.len()), (Side::Buyer, 2));
        assert!(reason.starts_with("unusable reply twice: the reply is not valid JSON"), "{reason}");
    }

    #[tokio::test]
    async fn crossing_offers_stop_when_the_scenario_says_so() {
        let scenario = Scenario {
            stop: Stop::OffersCross,
            opens: Side::Vendor,
            opening_offer: Some(400.0),
            ..Scenario::default()
        };
        let (d, _, b) = duel(vec![], vec![json("t", "sure, 450", Some(450.0), false)], scenario);
        let r = d.round(1, 0).await;
        assert_eq!(r.outcome, Outcome::Agreed { price: 400.0, accepted_by: Side::Buyer, turns: 1 });
        assert!(b.requests()[0].messages[1].text().contains("400"));
    }
}
