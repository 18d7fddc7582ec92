//! The keyboard shortcuts, listed in a dialog that `?` opens (outside text fields) or the
//! header's button.

use leptos::ev;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

const SHORTCUTS: [(&str, &str); 9] = [
    ("?", "this list"),
    ("Tab", "reach the partition calendar (one stop), then the controls after it"),
    ("← → ↑ ↓", "previous or next day, week"),
    ("Home / End", "first or last day of the week"),
    ("Page Up / Page Down", "same day of the previous or next month"),
    ("Shift + arrows", "extend the selection from where it started"),
    ("Enter or Space", "select the focused day (with Shift: extend to it)"),
    ("Ctrl + Enter (⌘ + Enter)", "run the scratchpad's query"),
    ("Esc", "close a dialog"),
];

#[component]
pub fn Shortcuts() -> impl IntoView {
    let dialog = NodeRef::<leptos::html::Dialog>::new();
    let open = move || {
        if let Some(dialog) = dialog.get_untracked()
            && !dialog.open()
        {
            let _ = dialog.show_modal();
        }
    };
    let listener = window_event_listener(ev::keydown, move |ev: web_sys::KeyboardEvent| {
        if ev.key() == "?" && !typing(&ev) {
            ev.prevent_default();
            open();
        }
    });
    on_cleanup(move || listener.remove());
    view! {
        <button class="theme" data-testid="shortcuts-button" aria-label="Keyboard shortcuts" aria-keyshortcuts="?" on:click=move |_| open()>"?"</button>
        <dialog node_ref=dialog class="shortcuts-dialog" data-testid="shortcuts-dialog" aria-labelledby="shortcuts-title">
            <h2 id="shortcuts-title">"Keyboard shortcuts"</h2>
            <dl>
                {SHORTCUTS.map(|(keys, what)| view! { <dt><kbd>{keys}</kbd></dt><dd>{what}</dd> })}
            </dl>
            <button type="button" on:click=move |_| if let Some(d) = dialog.get_untracked() { d.close() }>"Close"</button>
        </dialog>
    }
}

/// A key typed into a text field is text, not a shortcut.
fn typing(ev: &web_sys::KeyboardEvent) -> bool {
    ev.target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()).is_some_and(|e| {
        matches!(e.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT") || e.has_attribute("contenteditable")
    })
}
