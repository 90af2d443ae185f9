//! Injects one kind of `Trigger` into the machine at a fixed period until told to stop.

use std::time::Duration;

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::{Sender, UnboundedSender};
use tokio::sync::watch;
use tokio::time::{MissedTickBehavior, interval};

use crate::event::{Event, Trigger};

/// Where ticks go. A tick never waits for room: the machine compares times itself, so a
/// tick skipped because its queue is full (the machine is stuck behind a blocked stdout,
/// see `runtime::run`) is only a late one.
pub(crate) trait TickSink: Send + 'static {
    /// Offers a tick; false once the machine is gone.
    fn offer(&self, event: Event) -> bool;
}

impl TickSink for UnboundedSender<Event> {
    fn offer(&self, event: Event) -> bool {
        self.send(event).is_ok()
    }
}

impl TickSink for Sender<Event> {
    fn offer(&self, event: Event) -> bool {
        !matches!(self.try_send(event), Err(TrySendError::Closed(_)))
    }
}

pub async fn run(
    trigger: Trigger,
    period: Duration,
    events: impl TickSink,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticks = interval(period);
    // A late tick is not worth two: the machine compares times itself.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    ticks.tick().await; // the first tick is immediate
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                if !events.offer(Event::Trigger(trigger)) {
                    return;
                }
            }
            _ = stop.changed() => return,
        }
    }
}
