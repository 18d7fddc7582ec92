//! How a session opens: a share link in the address (checked by the engine first, asked
//! about before big work or replacing a saved session, then taken out of the address), else the
//! saved session, else the sample; and a link pasted into an open page.

use std::rc::Rc;

use leptos::prelude::*;

use super::{Session, unexpected};
use crate::course::share;
use crate::error::Error;
use crate::view::protocol::{Answer, Request};

impl Session {
    /// Opens the share link in the address (once checked, and asked about), or restores the
    /// saved session, or on a first visit ingests the sample month and builds the lesson. A
    /// link that fails opens the saved session (or the sample) instead, and the page says why.
    pub async fn start(self: &Rc<Self>) {
        let message = self.start_inner().await;
        self.progress.set(None);
        self.error.set(message);
    }

    /// What the page says once started: a warning, or why something could not be opened.
    async fn start_inner(self: &Rc<Self>) -> Option<String> {
        let (saved, warning) = match self.call(Request::Open, Vec::new()).await {
            Ok((Answer::Opened { saved, warning }, _)) => (saved, warning),
            Ok(_) => return Some(unexpected().to_string()),
            Err(e) => return Some(e.to_string()),
        };
        let (shared, mut refused) = match self.link_to_open(saved).await {
            Ok(shared) => (shared, None),
            Err(message) => (None, Some(message)),
        };
        if let Some(fragment) = shared {
            match self.call(Request::Start { shared: Some(fragment) }, Vec::new()).await {
                Ok((Answer::Started { warning, view }, _)) => {
                    self.view.set(view.unwrap_or_default());
                    return warning;
                }
                Ok(_) => return Some(unexpected().to_string()),
                // The worker stopped; it restarts on the saved session by itself.
                Err(e @ Error::Stopped(_)) => return Some(link_not_opened(&e)),
                Err(e) => refused = Some(link_not_opened(&e)),
            }
        }
        match self.call(Request::Start { shared: None }, Vec::new()).await {
            Ok((Answer::Started { warning: started, .. }, _)) => refused.or(started).or(warning),
            Ok(_) => Some(unexpected().to_string()),
            Err(e) if saved => {
                Some(format!("The session saved in this browser cannot be opened ({e}). Reset clears it and starts over."))
            }
            Err(e) => Some(e.to_string()),
        }
    }

    /// Opens a share link pasted into the address of an open page (a fragment change does not
    /// reload it), after asking: it replaces this session. A link that fails changes nothing.
    pub async fn open_link_in_location(self: &Rc<Self>) {
        let fragment = match self.link_to_open(true).await {
            Ok(Some(fragment)) => fragment,
            Ok(None) => return,
            Err(message) => return self.error.set(Some(message)),
        };
        let result = self.call(Request::OpenShared { fragment }, Vec::new()).await;
        self.progress.set(None);
        match result {
            Ok((Answer::Started { warning, view }, _)) => {
                self.view.set(view.unwrap_or_default());
                self.error.set(warning);
            }
            Ok(_) => self.error.set(Some(unexpected().to_string())),
            Err(e) => self.error.set(Some(link_not_opened(&e))),
        }
    }

    /// The share link in the address, if it is to be opened: the engine checks it first, and
    /// the user is asked before big work and before it replaces a saved session. A link that
    /// cannot be opened, or is declined for its size, leaves the address (a reload would try
    /// it again); `Err` is what the page says about it. One declined because it would replace
    /// the saved session stays, to be opened another time.
    async fn link_to_open(self: &Rc<Self>, replaces_saved: bool) -> Result<Option<String>, String> {
        let Some(fragment) = shared_fragment_in_location() else { return Ok(None) };
        let summary = match self.call(Request::CheckLink { fragment: fragment.clone() }, Vec::new()).await {
            Ok((Answer::Link(summary), _)) => Ok(summary),
            Ok(_) => Err(unexpected()),
            Err(e) => Err(e),
        };
        let summary = summary.map_err(|e| {
            forget_location_fragment();
            link_not_opened(&e)
        })?;
        if let Some(work) = summary.big_work()
            && !confirm_big_link(&work)
        {
            forget_location_fragment();
            return Err(format!("The share link was not opened (it {work}) and was removed from the address bar."));
        }
        if replaces_saved && !confirm_replacing_session() {
            return Ok(None);
        }
        // Whatever becomes of the link now, a reload does not replay it.
        forget_location_fragment();
        Ok(Some(fragment))
    }
}

/// The share-link fragment in the page's address, if it has one.
fn shared_fragment_in_location() -> Option<String> {
    let hash = web_sys::window().and_then(|w| w.location().hash().ok()).unwrap_or_default();
    hash.starts_with(share::FRAGMENT_PREFIX).then_some(hash)
}

/// Why a share link was not opened; it has left the address bar by then.
fn link_not_opened(error: &Error) -> String {
    format!("The share link was not opened and was removed from the address bar. {}", sentence(&error.to_string()))
}

/// `text` with a capital first letter and a full stop.
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let first: String = chars.next().map(|c| c.to_uppercase().collect()).unwrap_or_default();
    let end = if text.ends_with('.') { "" } else { "." };
    format!("{first}{}{end}", chars.as_str())
}

fn confirm_big_link(work: &str) -> bool {
    let message = format!(
        "This share link {work} as it opens, which can take minutes and much of this device's memory. Open it? \
         (Cancel keeps your session and removes the link from the address bar.)"
    );
    web_sys::window().and_then(|w| w.confirm_with_message(&message).ok()).unwrap_or(false)
}

fn confirm_replacing_session() -> bool {
    let message = "Open the shared session? It replaces the session saved in this browser (its files, tables and runs). \
                   Cancel keeps yours; the link stays in the address bar.";
    web_sys::window().and_then(|w| w.confirm_with_message(message).ok()).unwrap_or(false)
}

/// Takes the link out of the address, once it is being opened or has been refused: an opened
/// session lives in browser storage (a reload must not replay the link over what was done
/// since), and a link that fails or is refused must not be tried again by every reload.
fn forget_location_fragment() {
    let Some(window) = web_sys::window() else { return };
    let path = window.location().pathname().unwrap_or_default();
    if let Ok(history) = window.history() {
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&path));
    }
}
