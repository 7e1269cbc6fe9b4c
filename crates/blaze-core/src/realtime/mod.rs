//! Realtime: the sans-IO [`Hub`] that serves listeners over a database, the
//! [`QueryView`]s of its shared listen targets, and the [`ListenerIndex`]
//! that finds the targets a commit can affect.

mod bodies;
mod hub;
mod listener_index;
mod view;

pub use bodies::Bodies;
pub use hub::{
    Caller, ConnId, Frame, Hub, HubConfig, HubEvent, HubStats, Output, SavedListener, SavedSession,
};
pub use listener_index::ListenerIndex;
pub use view::{diff_results, QueryView};
