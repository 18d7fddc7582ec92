//! Syntax highlighting for models (SQL + Jinja): the text split into classed pieces that
//! join back to exactly the input, so the editor can draw them under its text area.

use datafusion::sql::sqlparser::keywords::ALL_KEYWORDS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Plain,
    Keyword,
    String,
    Number,
    Comment,
    /// `{{ … }}`, `{% … %}`, `{# … #}`.
    Jinja,
}

impl Kind {
    pub fn class(self) -> &'static str {
        match self {
            Kind::Plain => "t-plain",
            Kind::Keyword => "t-keyword",
            Kind::String => "t-string",
            Kind::Number => "t-number",
            Kind::Comment => "t-comment",
            Kind::Jinja => "t-jinja",
        }
    }
}

/// Splits `text` into highlighted pieces; concatenated, they are `text`.
pub fn pieces(text: &str) -> Vec<(Kind, &str)> {
    fn push<'a>(out: &mut Vec<(Kind, &'a str)>, kind: Kind, piece: &'a str) {
        if !piece.is_empty() {
            out.push((kind, piece));
        }
    }
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut plain_start = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        let token_end = if rest.starts_with("{{") || rest.starts_with("{%") || rest.starts_with("{#") {
            let close = match &rest[..2] {
                "{{" => "}}",
                "{%" => "%}",
                _ => "#}",
            };
            Some((Kind::Jinja, rest.find(close).map_or(text.len(), |j| i + j + 2)))
        } else if rest.starts_with("--") {
            Some((Kind::Comment, rest.find('\n').map_or(text.len(), |j| i + j)))
        } else if rest.starts_with('\'') {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != b'\'' {
                j += 1;
            }
            Some((Kind::String, (j + 1).min(text.len())))
        } else if bytes[i].is_ascii_digit() && (i == 0 || !is_word(bytes[i - 1])) {
            let mut j = i;
            while j < bytes.len() && (bytes[j].is_ascii_digit() || bytes[j] == b'.') {
                j += 1;
            }
            Some((Kind::Number, j))
        } else if is_word(bytes[i]) && (i == 0 || !is_word(bytes[i - 1])) {
            let mut j = i;
            while j < bytes.len() && is_word(bytes[j]) {
                j += 1;
            }
            let word = &text[i..j];
            let upper = word.to_ascii_uppercase();
            (ALL_KEYWORDS.binary_search(&upper.as_str()).is_ok()).then_some((Kind::Keyword, j))
        } else {
            None
        };
        match token_end {
            Some((kind, end)) => {
                push(&mut out, Kind::Plain, &text[plain_start..i]);
                push(&mut out, kind, &text[i..end]);
                i = end;
                plain_start = end;
            }
            None => i += text[i..].chars().next().map_or(1, char::len_utf8),
        }
    }
    push(&mut out, Kind::Plain, &text[plain_start..]);
    out
}

fn is_word(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_text_and_classify_it() {
        let text = "select count(*) as n, 'a''b' -- note\nfrom {{ ref('x') }} where d > 30 é";
        let parts = pieces(text);
        assert_eq!(parts.iter().map(|(_, p)| *p).collect::<String>(), text);
        let kinds: Vec<(Kind, &str)> = parts.into_iter().filter(|(k, _)| *k != Kind::Plain).collect();
        assert_eq!(
            kinds,
            [
                (Kind::Keyword, "select"),
                (Kind::Keyword, "count"),
                (Kind::Keyword, "as"),
                (Kind::String, "'a'"),
                (Kind::String, "'b'"),
                (Kind::Comment, "-- note"),
                (Kind::Keyword, "from"),
                (Kind::Jinja, "{{ ref('x') }}"),
                (Kind::Keyword, "where"),
                (Kind::Number, "30"),
            ]
        );
    }

    #[test]
    fn an_unclosed_block_runs_to_the_end() {
        assert_eq!(pieces("{{ oops"), [(Kind::Jinja, "{{ oops")]);
    }
}
