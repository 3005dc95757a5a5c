//! Which KV-cache sequence a prompt is evaluated in. The context holds several sequences, each keeping
//! the tokens of one recent prompt, so that conversations served in turns (`--concurrency` > 1) each
//! find their own transcript still cached instead of evicting one another's on every turn.

use super::window::common_prefix;

/// A sequence continues into a prompt that drops at most this fraction of what it holds (1/8).
const LOST_FRACTION: usize = 8;

/// The token lists cached in each sequence, and when each was last used.
#[derive(Debug)]
pub struct Slots<T> {
    cached: Vec<Vec<T>>,
    last_used: Vec<u64>,
    clock: u64,
}

impl<T: PartialEq> Slots<T> {
    pub fn new(count: usize) -> Slots<T> {
        let count = count.max(1);
        Slots { cached: (0..count).map(|_| Vec::new()).collect(), last_used: vec![0; count], clock: 0 }
    }

    /// The sequence for `tokens`. A sequence *continues* into them when they keep nearly all it holds
    /// (the same conversation's previous turn: all but the end of the last reply, which may tokenize
    /// differently once rendered), or when it is empty; the continuing one sharing most is taken. A
    /// prompt no sequence continues (a new conversation shares only the instructions) takes the least
    /// recently used, so it evicts the stalest conversation rather than one still under way.
    pub fn pick(&mut self, tokens: &[T]) -> usize {
        let shared: Vec<usize> = self.cached.iter().map(|cached| common_prefix(cached, tokens)).collect();
        let continues = |i: usize| self.cached[i].len() - shared[i] <= self.cached[i].len() / LOST_FRACTION;
        let stalest = |i: &usize| self.last_used[*i];
        let chosen = (0..self.cached.len())
            .filter(|&i| continues(i))
            .max_by_key(|&i| (shared[i], std::cmp::Reverse(self.last_used[i])))
            .or_else(|| (0..self.cached.len()).min_by_key(stalest))
            .unwrap_or(0);
        self.clock += 1;
        self.last_used[chosen] = self.clock;
        chosen
    }

    /// What sequence `slot` holds, for the caller to cut and extend as it evaluates.
    pub fn tokens(&mut self, slot: usize) -> &mut Vec<T> {
        &mut self.cached[slot]
    }

    pub fn count(&self) -> usize {
        self.cached.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(slots: &mut Slots<u32>, tokens: &[u32]) -> usize {
        let slot = slots.pick(tokens);
        *slots.tokens(slot) = tokens.to_vec();
        slot
    }

    #[test]
    fn a_conversation_comes_back_to_its_own_sequence() {
        let mut slots = Slots::new(2);
        let a = filled(&mut slots, &[1, 2, 10, 11]);
        let b = filled(&mut slots, &[1, 2, 20, 21]);
        assert_ne!(a, b, "the second conversation takes the empty sequence");
        assert_eq!(filled(&mut slots, &[1, 2, 10, 11, 12, 13]), a);
        assert_eq!(filled(&mut slots, &[1, 2, 20, 21, 22]), b);
    }

    #[test]
    fn a_new_conversation_evicts_the_least_recently_used() {
        let mut slots = Slots::new(2);
        let a = filled(&mut slots, &[1, 2, 10]);
        let b = filled(&mut slots, &[1, 2, 20]);
        filled(&mut slots, &[1, 2, 10, 11]);
        assert_eq!(filled(&mut slots, &[1, 2, 30]), b, "b is the stalest");
        assert_eq!(filled(&mut slots, &[1, 2, 10, 11, 12]), a, "a is untouched");
    }

    #[test]
    fn a_reply_that_tokenizes_differently_still_continues_its_sequence() {
        let mut slots = Slots::new(2);
        let long: Vec<u32> = (0..100).collect();
        let a = filled(&mut slots, &long);
        filled(&mut slots, &[7, 7, 7]);
        let mut next = long[..95].to_vec();
        next.extend([500, 501, 502]);
        assert_eq!(slots.pick(&next), a, "5 of 100 tokens lost: the same conversation");
    }

    #[test]
    fn one_sequence_is_the_single_cache_of_before() {
        let mut slots = Slots::new(0);
        assert_eq!(slots.count(), 1);
        assert_eq!(filled(&mut slots, &[1]), 0);
        assert_eq!(filled(&mut slots, &[2]), 0);
    }
}
