//! Frames waiting to be handled, taken from each connection in turn: a
//! connection's frames keep their order, and one that pipelines many waits
//! behind every other connection's next frame, so its pipeline cannot hold
//! the others back.

use std::collections::{HashMap, VecDeque};

/// Items queued per connection, handed out round-robin across connections.
pub struct FairQueue<T> {
    items: HashMap<u64, VecDeque<T>>,
    /// Connections with queued items, in the order of their next turn.
    turns: VecDeque<u64>,
}

impl<T> Default for FairQueue<T> {
    fn default() -> Self {
        Self {
            items: HashMap::new(),
            turns: VecDeque::new(),
        }
    }
}

impl<T> FairQueue<T> {
    /// Queues `item` of connection `conn` after its earlier ones.
    pub fn push(&mut self, conn: u64, item: T) {
        let queued = self.items.entry(conn).or_default();
        if queued.is_empty() {
            self.turns.push_back(conn);
        }
        queued.push_back(item);
    }

    /// The oldest item of the connection whose turn it is; that connection
    /// then waits for every other one with items queued.
    pub fn pop(&mut self) -> Option<(u64, T)> {
        let conn = self.turns.pop_front()?;
        let queued = self.items.get_mut(&conn)?;
        let item = queued.pop_front()?;
        if queued.is_empty() {
            self.items.remove(&conn);
        } else {
            self.turns.push_back(conn);
        }
        Some((conn, item))
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.turns.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pushes `pushed` (connection, item) in order, then pops everything.
    fn check(pushed: &[(u64, &'static str)], expected: &[(u64, &'static str)]) {
        let mut queue = FairQueue::default();
        for &(conn, item) in pushed {
            queue.push(conn, item);
        }
        let popped: Vec<_> = std::iter::from_fn(|| queue.pop()).collect();
        assert_eq!(popped, expected);
        assert!(queue.is_empty());
    }

    #[test]
    fn connections_take_turns_and_keep_their_order() {
        check(&[], &[]);
        check(&[(1, "a"), (1, "b")], &[(1, "a"), (1, "b")]);
        // A pipeline of four and a late frame of another connection: the
        // late one goes second.
        check(
            &[(1, "a"), (1, "b"), (1, "c"), (1, "d"), (2, "x")],
            &[(1, "a"), (2, "x"), (1, "b"), (1, "c"), (1, "d")],
        );
        check(
            &[(1, "a"), (2, "x"), (1, "b"), (3, "p"), (2, "y")],
            &[(1, "a"), (2, "x"), (3, "p"), (1, "b"), (2, "y")],
        );
    }

    #[test]
    fn a_connection_emptied_rejoins_at_the_back() {
        let mut queue = FairQueue::default();
        queue.push(1, "a");
        queue.push(2, "x");
        assert_eq!(queue.pop(), Some((1, "a")));
        queue.push(1, "b");
        queue.push(2, "y");
        let rest: Vec<_> = std::iter::from_fn(|| queue.pop()).collect();
        assert_eq!(rest, [(2, "x"), (1, "b"), (2, "y")]);
    }
}
