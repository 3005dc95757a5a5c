//! Fitting a prompt into the context window: the middle of a long transcript is cut, keeping the opening
//! (instructions, worked example, the problem) and the latest turns, which matter most to the next reply.

/// Cuts `tokens` to at most `budget` by removing a middle span and putting `marker` in its place.
/// Keeps `head` tokens of the opening (at most half the budget) and fills the rest from the end.
pub fn fit<T: Clone>(tokens: &[T], budget: usize, head: usize, marker: &[T]) -> Vec<T> {
    if tokens.len() <= budget {
        return tokens.to_vec();
    }
    let head = head.min(budget / 2);
    let tail = budget.saturating_sub(head + marker.len());
    let mut out = Vec::with_capacity(budget);
    out.extend_from_slice(&tokens[..head]);
    out.extend_from_slice(marker);
    out.extend_from_slice(&tokens[tokens.len() - tail..]);
    out
}

/// How many leading items two sequences share: the part of the KV cache a new prompt can reuse.
pub fn common_prefix<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_prompts_are_untouched() {
        assert_eq!(fit(&[1, 2, 3], 3, 1, &[0]), vec![1, 2, 3]);
    }

    #[test]
    fn long_prompts_lose_their_middle() {
        let tokens: Vec<u32> = (1..=20).collect();
        let out = fit(&tokens, 10, 3, &[0]);
        assert_eq!(out, vec![1, 2, 3, 0, 15, 16, 17, 18, 19, 20]);
        // The head never takes more than half the budget.
        assert_eq!(fit(&tokens, 6, 100, &[0]), vec![1, 2, 3, 0, 19, 20]);
    }

    #[test]
    fn common_prefix_counts_shared_items() {
        assert_eq!(common_prefix(&[1, 2, 3], &[1, 2, 4, 5]), 2);
        assert_eq!(common_prefix::<u8>(&[], &[1]), 0);
    }
}
