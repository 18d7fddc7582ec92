//! Light or dark: the system's choice (`prefers-color-scheme`) until the page's toggle picks
//! one, which this browser remembers. The stylesheet reads `data-theme` on `<html>`.

use super::local_store;

const KEY: &str = "backfill-theme";

/// Applies the theme this browser's toggle picked, if any.
pub fn apply_saved() {
    if let Some(theme) = local_store::get(KEY) {
        set_attribute(&theme);
    }
}

/// Whether the page shows dark now: the toggle's choice, else the system's.
pub fn is_dark() -> bool {
    let chosen = web_sys::window().and_then(|w| w.document()).and_then(|d| d.document_element()).and_then(|e| e.get_attribute("data-theme"));
    match chosen.as_deref() {
        Some(theme) => theme == "dark",
        None => web_sys::window()
            .and_then(|w| w.match_media("(prefers-color-scheme: dark)").ok().flatten())
            .is_some_and(|m| m.matches()),
    }
}

/// Shows and remembers a theme (a private window may refuse to remember: it still shows).
pub fn choose(dark: bool) {
    let theme = if dark { "dark" } else { "light" };
    set_attribute(theme);
    local_store::set(KEY, theme);
}

fn set_attribute(theme: &str) {
    let root = web_sys::window().and_then(|w| w.document()).and_then(|d| d.document_element());
    if let Some(root) = root {
        let _ = root.set_attribute("data-theme", if theme == "dark" { "dark" } else { "light" });
    }
}
