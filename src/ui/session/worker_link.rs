//! The session's line to its engine worker: requests out and replies back (each resolving the
//! future that sent it), events into the page's signals, and a dead or stuck worker replaced by
//! a new one on the last saved state.

use std::collections::BTreeSet;
use std::rc::Rc;

use futures::channel::oneshot;
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{MessageEvent, Worker};

use super::{Session, Shared};
use crate::error::{Error, Result};
use crate::view::protocol::{Answer, Event, Message, Progress, Request};
use crate::worker::wire::{self, Payload};

/// The worker script (`worker.js`, beside `index.html`): it loads the engine's wasm.
const WORKER_SCRIPT: &str = "./worker.js";

impl Session {
    /// Sends `request` and waits for its reply; the reply's warning (a failed save) is shown.
    pub(super) async fn call(self: &Rc<Self>, request: Request, payloads: Vec<Payload>) -> Result<(Answer, Vec<Payload>)> {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let (sender, receiver) = oneshot::channel();
        self.pending.borrow_mut().insert(id, sender);
        self.send(&Message::Call { id, request }, payloads);
        let (result, payloads) = receiver.await.unwrap_or_else(|_| (Err(Error::Stopped("no reply".into())), Vec::new()));
        result.map(|answer| (answer, payloads))
    }

    pub(super) fn send(&self, message: &Message, payloads: Vec<Payload>) {
        let json = message.to_json();
        if !self.ready.get() {
            self.queued.borrow_mut().push((json, payloads));
            return;
        }
        post(self.worker.borrow().as_ref(), &json, &payloads);
    }

    fn receive(self: &Rc<Self>, event: Event, payloads: Vec<Payload>) {
        match event {
            Event::Ready => {
                self.ready.set(true);
                let queued = std::mem::take(&mut *self.queued.borrow_mut());
                for (json, payloads) in queued {
                    post(self.worker.borrow().as_ref(), &json, &payloads);
                }
            }
            Event::Reply { id, result, warning } => {
                if let Some(sender) = self.pending.borrow_mut().remove(&id) {
                    let _ = sender.send((result, payloads));
                }
                if warning.is_some() {
                    self.error.set(warning);
                }
            }
            Event::Snapshot(snapshot) => self.published.publish(*snapshot),
            Event::Progress(progress) => self.progress.set(progress),
            Event::Running { days } => self.running.set(days),
            Event::Fatal(why) => self.restart(why, true),
        }
    }

    /// Replaces a dead (or stuck) worker with a new one on the last saved state; whatever was
    /// waiting for the old one fails with `why`. A crash (not a cancel) also leaves details a
    /// user can copy into a bug report.
    pub(super) fn restart(self: &Rc<Self>, why: String, crashed: bool) {
        let details = crashed.then(|| crash_details(&why, self.progress.get_untracked().map(|p| p.label)));
        if let Some(worker) = self.worker.borrow_mut().take() {
            worker.terminate();
        }
        self.ready.set(false);
        self.queued.borrow_mut().clear();
        let waiting = std::mem::take(&mut *self.pending.borrow_mut());
        for (_, sender) in waiting {
            let _ = sender.send((Err(Error::Stopped(why.clone())), Vec::new()));
        }
        self.running.set(BTreeSet::new());
        spawn_worker(self);
        let session = self.clone();
        leptos::task::spawn_local(async move {
            // After the failed calls above have reported (and cleared the status bar).
            session.progress.set(Some(Progress::uncancellable("Restarting the engine on the last saved state", 0, 1)));
            let restarted = session.call(Request::Open, Vec::new()).await;
            let restarted = match restarted {
                Ok(_) => session.call(Request::Start { shared: None }, Vec::new()).await.map(|_| ()),
                Err(e) => Err(e),
            };
            session.progress.set(None);
            session.error.set(Some(match restarted {
                Ok(()) => Error::Stopped(why).to_string(),
                Err(e) => format!("{}; restarting failed: {e}", Error::Stopped(why)),
            }));
            session.crash_details.set(details);
        });
    }
}

pub(super) fn spawn_worker(session: &Shared) {
    let worker = match Worker::new(WORKER_SCRIPT) {
        Ok(worker) => worker,
        Err(_) => {
            session.error.set(Some("This browser cannot start the engine's Web Worker.".into()));
            return;
        }
    };
    let weak = Rc::downgrade(session);
    let on_message = Closure::<dyn Fn(MessageEvent)>::new(move |message: MessageEvent| {
        let Some(session) = weak.upgrade() else { return };
        let Some((json, payloads)) = wire::decode(&message.data()) else { return };
        match Event::from_json(&json) {
            Ok(event) => session.receive(event, payloads),
            Err(e) => session.restart(e, true),
        }
    });
    // A trap (out of memory, a panic) or a script that cannot load.
    let weak = Rc::downgrade(session);
    let on_error = Closure::<dyn Fn(web_sys::ErrorEvent)>::new(move |event: web_sys::ErrorEvent| {
        event.prevent_default();
        if let Some(session) = weak.upgrade() {
            session.restart(event.message(), true);
        }
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    // The handlers live as long as this worker; a restart makes new ones.
    on_message.forget();
    on_error.forget();
    *session.worker.borrow_mut() = Some(worker);
}

fn post(worker: Option<&Worker>, json: &str, payloads: &[Payload]) {
    let Some(worker) = worker else { return };
    let wire = wire::encode(json, payloads);
    let _ = worker.post_message_with_transfer(&wire.message, &wire.transfer);
}

/// The crash report: what stopped, during what, when, in which browser.
fn crash_details(why: &str, doing: Option<String>) -> String {
    let browser = web_sys::window().and_then(|w| w.navigator().user_agent().ok()).unwrap_or_default();
    let when = String::from(js_sys::Date::new_0().to_iso_string());
    let doing = doing.unwrap_or_else(|| "nothing (idle)".into());
    format!(
        "Backfill {} engine crash\nwhen: {when}\ndoing: {doing}\ncause: {why}\nbrowser: {browser}\n",
        env!("CARGO_PKG_VERSION")
    )
}
