//! Follows the log like the Trigger does: every applied command becomes
//! zero or more events on the feed.

use actix::{Actor, Context, Handler};
use actors::messages::AppliedCommand;

use super::{events_of, EventFeed};

pub struct EventPublisher {
    feed: EventFeed,
}

impl EventPublisher {
    pub fn new(feed: EventFeed) -> Self {
        Self { feed }
    }
}

impl Actor for EventPublisher {
    type Context = Context<Self>;
}

impl Handler<AppliedCommand> for EventPublisher {
    type Result = ();

    fn handle(&mut self, AppliedCommand(applied): AppliedCommand, _: &mut Context<Self>) {
        for event in events_of(&applied.outcome) {
            self.feed.publish(event);
        }
    }
}
