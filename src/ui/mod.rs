//! The browser app: a thin Leptos face over the engine, which runs in a Web Worker
//! ([`crate::worker`]). [`session`] talks to it and holds the snapshots it publishes;
//! `views/` render them; [`page_api`] exposes the same operations as `window.backfill`. Text from models, files and tables is only ever inserted as text.

mod local_store;
mod page_api;
mod saved_view;
mod session;
mod theme;
mod views;

use leptos::prelude::*;

use session::Session;

/// Mounts the app on the page body and starts the session.
pub fn start() {
    install_panic_message();
    theme::apply_saved();
    let session = Session::new();
    page_api::install(session.clone());
    listen_for_pasted_links(session.clone());
    let starting = session.clone();
    let session = StoredValue::new_local(session);
    leptos::mount::mount_to_body(move || view! { <views::App session=session /> });
    // After mounting: mounting sets up the executor the views' tasks use.
    wasm_bindgen_futures::spawn_local(async move { starting.start().await });
}

/// A share link pasted into the address of the open page only changes its fragment.
fn listen_for_pasted_links(session: session::Shared) {
    use wasm_bindgen::JsCast;
    let Some(window) = web_sys::window() else { return };
    let on_change = wasm_bindgen::closure::Closure::<dyn Fn()>::new(move || {
        let session = session.clone();
        wasm_bindgen_futures::spawn_local(async move { session.open_link_in_location().await });
    });
    let _ = window.add_event_listener_with_callback("hashchange", on_change.as_ref().unchecked_ref());
    // The listener lives as long as the page.
    on_change.forget();
}

/// A panic stops the wasm module; say so on the page (the state saved so far is kept).
fn install_panic_message() {
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
        if let Ok(banner) = document.create_element("div") {
            banner.set_class_name("fatal");
            banner.set_attribute("data-testid", "error-message").ok();
            banner.set_text_content(Some(&format!(
                "Backfill stopped on an internal error ({info}). Reload the page: your saved state is kept."
            )));
            if let Some(body) = document.body() {
                body.prepend_with_node_1(&banner).ok();
            }
        }
    }));
}
