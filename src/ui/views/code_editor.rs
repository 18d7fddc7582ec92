//! A SQL + Jinja editor: the text area lies over its highlighted copy, a gutter numbers the
//! lines, and an error's place is marked (its line in the gutter, its word underlined).
//! Ctrl/Cmd-Enter runs, when the editor has something to run.

use leptos::prelude::*;

use crate::view::highlight::pieces;

#[component]
pub fn CodeEditor(
    #[prop(into)] text: Signal<String>,
    on_input: impl Fn(String) + 'static,
    /// Where an error points, (line, column), both from 1.
    #[prop(into)]
    error_at: Signal<Option<(usize, usize)>>,
    #[prop(into)] label: Signal<String>,
    testid: &'static str,
    #[prop(optional, into)] on_run: Option<Callback<()>>,
) -> impl IntoView {
    let lines = move || text.with(|t| t.lines().count().max(1));
    let mark = move || error_at.get().and_then(|(line, column)| text.with(|t| word_at(t, line, column)));
    view! {
        <div class="code-box">
            <pre class="gutter" aria-hidden="true">{move || {
                let bad = error_at.get().map(|(line, _)| line);
                (1..=lines()).map(|n| {
                    let class = if Some(n) == bad { "ln bad" } else { "ln" };
                    view! { <span class=class>{n.to_string()}"\n"</span> }
                }).collect_view()
            }}</pre>
            <div class="code-layers">
                <pre class="code-highlight" aria-hidden="true">{move || text.with(|t| highlighted(t, mark()))}"\n"</pre>
                <textarea class="code" spellcheck="false" aria-label=label data-testid=testid wrap="off"
                    aria-keyshortcuts=on_run.map(|_| "Control+Enter Meta+Enter")
                    prop:value=text
                    on:input=move |ev| on_input(event_target_value(&ev))
                    on:keydown=move |ev: web_sys::KeyboardEvent| {
                        if let Some(run) = on_run
                            && ev.key() == "Enter"
                            && (ev.ctrl_key() || ev.meta_key())
                        {
                            ev.prevent_default();
                            run.run(());
                        }
                    }
                ></textarea>
            </div>
        </div>
    }
}

/// The text as highlighted spans (inserted as text, never as HTML), the bytes `mark` covers
/// underlined.
pub fn highlighted(text: &str, mark: Option<(usize, usize)>) -> impl IntoView + use<> {
    let mut offset = 0;
    let mut spans = Vec::new();
    for (kind, piece) in pieces(text) {
        let (start, end) = (offset, offset + piece.len());
        offset = end;
        match mark.filter(|(from, to)| *from < end && *to > start) {
            Some((from, to)) => {
                let (a, b) = (from.max(start) - start, to.min(end) - start);
                for (part, marked) in [(&piece[..a], false), (&piece[a..b], true), (&piece[b..], false)] {
                    if !part.is_empty() {
                        spans.push((kind.class(), marked, part.to_string()));
                    }
                }
            }
            None => spans.push((kind.class(), false, piece.to_string())),
        }
    }
    spans
        .into_iter()
        .map(|(class, marked, part)| {
            let class = if marked { format!("{class} squiggle") } else { class.to_string() };
            view! { <span class=class>{part}</span> }
        })
        .collect_view()
}

/// The byte range of the word at (line, column) (from 1; a column counts characters), or of
/// its one character when no word starts there.
fn word_at(text: &str, line: usize, column: usize) -> Option<(usize, usize)> {
    let line_start: usize = text.split_inclusive('\n').take(line.checked_sub(1)?).map(str::len).sum();
    let line_text = text[line_start..].split('\n').next()?;
    let (at, _) = line_text.char_indices().nth(column.checked_sub(1)?)?;
    let rest = &line_text[at..];
    let word = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
    let length = if word == 0 { rest.chars().next().map_or(0, char::len_utf8) } else { word };
    Some((line_start + at, line_start + at + length))
}
