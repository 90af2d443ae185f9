//! Injects one kind of `Trigger` into the machine at a fixed period until told to stop.

use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::watch;
use tokio::time::{MissedTickBehavior, interval};

use crate::event::{Event, Trigger};

pub async fn run(
    trigger: Trigger,
    period: Duration,
    events: UnboundedSender<Event>,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticks = interval(period);
    // A late tick is not worth two: the machine compares times itself.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    ticks.tick().await; // the first tick is immediate
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                if events.send(Event::Trigger(trigger)).is_err() {
                    return;
                }
            }
            _ = stop.changed() => return,
        }
    }
}
