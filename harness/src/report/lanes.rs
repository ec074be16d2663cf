//! The chart's lanes and what goes on them, shared by the files that build the chart
//! (`chart.rs` merges the rows, `marks.rs` says what events and steps put on a lane,
//! `matching.rs` pairs sends with receives). A leaf: it imports none of them.

use std::collections::VecDeque;

/// One vertical lane.
#[derive(Debug, Clone)]
pub struct Lane {
    /// `bob#2`, or `ledger`.
    pub label: String,
    pub node: String,
    /// What started it (`restored from "old"`), or where its file was cut.
    pub note: Option<String>,
    pub first_row: usize,
    pub last_row: usize,
}

/// What a row shows.
#[derive(Debug, Clone)]
pub enum Item {
    /// Step `record.steps[index]` starts here.
    Step { index: usize },
    /// Something the harness did outside the steps (add a node, open a channel).
    Note { text: String },
    /// A peer message leaves `lane`; `recv_row` is where it arrives (`None`: never received).
    Send {
        lane: usize,
        to: Option<usize>,
        recv_row: Option<usize>,
        label: String,
    },
    /// A peer message handled in `lane`; `send_row` is where it left.
    Recv {
        lane: usize,
        from: Option<usize>,
        send_row: Option<usize>,
        label: String,
    },
    /// A mark on a lane; `class` says what kind (CSS class).
    Mark {
        lane: usize,
        class: &'static str,
        text: String,
    },
    /// A transaction broadcast from `lane` to the ledger lane.
    Tx {
        lane: usize,
        class: &'static str,
        label: String,
    },
}

impl Item {
    pub(super) fn lane(&self) -> Option<usize> {
        match self {
            Item::Step { .. } | Item::Note { .. } => None,
            Item::Send { lane, .. }
            | Item::Recv { lane, .. }
            | Item::Mark { lane, .. }
            | Item::Tx { lane, .. } => Some(*lane),
        }
    }
}

/// One source of rows, in its own order.
pub(super) type Queue = VecDeque<(u64, Pending)>;

/// A row before the merge: sends and receives carry their match by id.
#[derive(Debug)]
pub(super) enum Pending {
    Row(Item),
    Send { id: usize, item: Item },
    Recv { send: Option<usize>, item: Item },
}
