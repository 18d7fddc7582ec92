//! The share link: the session (actions, sample recipes, lesson step, time-travel position) in
//! the URL fragment. Says what the link cannot carry (files from disk) and warns when it is
//! too long for common chat tools.

use leptos::prelude::*;

use super::SessionRef;
use crate::course::share::CHAT_SAFE_LENGTH;
use crate::orchestrate::actions::Action;

#[component]
pub fn Share(session: SessionRef) -> impl IntoView {
    let actions = session.with_value(|s| s.published.actions);
    let link = RwSignal::new(None::<String>);
    let copied = RwSignal::new(false);
    let make = move |_| {
        let s = session.get_value();
        copied.set(false);
        leptos::task::spawn_local(async move {
            if let Ok(url) = s.share_link().await {
                link.set(Some(url));
            }
        });
    };
    let copy = move |_| {
        let Some(url) = link.get_untracked() else { return };
        if let Some(window) = web_sys::window() {
            let _ = window.navigator().clipboard().write_text(&url);
            copied.set(true);
        }
    };
    let missing = Memo::new(move |_| {
        actions.with(|actions| {
            actions
                .iter()
                .filter_map(|a| match a {
                    Action::File { name, .. } => Some(name.clone()),
                    _ => None,
                })
                .collect::<Vec<_>>()
        })
    });
    view! {
        <div class="share">
            <button data-testid="share-button" on:click=make>"Share link"</button>
            {move || link.get().map(|url| {
                let length = url.len();
                view! {
                    <div class="share-box">
                        <input readonly aria-label="Share link" data-testid="share-link" prop:value=url.clone() on:focus=move |ev| {
                            use wasm_bindgen::JsCast;
                            if let Some(input) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) {
                                input.select();
                            }
                        } />
                        <button on:click=copy>{move || if copied.get() { "Copied" } else { "Copy" }}</button>
                        <button class="dismiss" on:click=move |_| link.set(None)>"×"</button>
                        <p class="note">
                            {format!("{length} characters. Opening it replays this session's steps in a fresh page: the same tables and chart.")}
                        </p>
                        {(length > CHAT_SAFE_LENGTH).then(|| view! {
                            <p class="warning" data-testid="share-warning">
                                {format!("This link is {length} characters long; some chat tools and e-mail clients cut links after {CHAT_SAFE_LENGTH}. Send it as a file or shorten the session (fewer edits or runs).")}
                            </p>
                        })}
                        {move || (!missing.get().is_empty()).then(|| view! {
                            <p class="warning" data-testid="share-missing">
                                {format!("Files loaded from your disk are not in links: {}. Whoever opens it gets everything else.", missing.get().join(", "))}
                            </p>
                        })}
                    </div>
                }
            })}
        </div>
    }
}
