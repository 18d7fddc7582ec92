//! Syntax highlighting for models (SQL + Jinja): the text split into classed pieces that
//! join back to exactly the input, so the editor can draw them under its text area. Jinja's
//! `{{ }}`, `{% %}` and `{# #}` are cut out first; the SQL between them is read by sqlparser's
//! tokenizer in DuckDB's dialect, as the engine reads it.

use datafusion::sql::sqlparser::dialect::DuckDbDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer, Whitespace};

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

/// The words that shape a query. The tokenizer knows hundreds of keywords (`zone`, `date`,
/// `count`…), most of them also fine names of columns and functions, so only these are
/// coloured.
const STRUCTURE: &[Keyword] = &[
    Keyword::ALL, Keyword::AND, Keyword::AS, Keyword::ASC, Keyword::BETWEEN, Keyword::BY, Keyword::CASE,
    Keyword::CAST, Keyword::CROSS, Keyword::DESC, Keyword::DISTINCT, Keyword::ELSE, Keyword::END,
    Keyword::EXCEPT, Keyword::EXCLUDE, Keyword::EXISTS, Keyword::FALSE, Keyword::FILTER, Keyword::FROM,
    Keyword::FULL, Keyword::GROUP, Keyword::HAVING, Keyword::ILIKE, Keyword::IN, Keyword::INNER,
    Keyword::INTERSECT, Keyword::INTERVAL, Keyword::IS, Keyword::JOIN, Keyword::LATERAL, Keyword::LEFT,
    Keyword::LIKE, Keyword::LIMIT, Keyword::NOT, Keyword::NULL, Keyword::NULLS, Keyword::OFFSET, Keyword::ON,
    Keyword::OR, Keyword::ORDER, Keyword::OUTER, Keyword::OVER, Keyword::PARTITION, Keyword::QUALIFY,
    Keyword::RECURSIVE, Keyword::RIGHT, Keyword::SELECT, Keyword::THEN, Keyword::TRUE, Keyword::UNION,
    Keyword::USING, Keyword::VALUES, Keyword::WHEN, Keyword::WHERE, Keyword::WINDOW, Keyword::WITH,
];

/// Splits `text` into highlighted pieces; concatenated, they are `text`.
pub fn pieces(text: &str) -> Vec<(Kind, &str)> {
    let mut out = Vec::new();
    let mut sql_start = 0;
    while let Some(open) = ["{{", "{%", "{#"].iter().filter_map(|o| text[sql_start..].find(o)).min() {
        let open = sql_start + open;
        let close = match &text[open..open + 2] {
            "{{" => "}}",
            "{%" => "%}",
            _ => "#}",
        };
        let end = text[open + 2..].find(close).map_or(text.len(), |j| open + 2 + j + 2);
        sql_pieces(&text[sql_start..open], &mut out);
        out.push((Kind::Jinja, &text[open..end]));
        sql_start = end;
    }
    sql_pieces(&text[sql_start..], &mut out);
    out
}

/// The pieces of SQL without Jinja. What the tokenizer cannot read (an unclosed string or
/// comment, as while typing one) runs to the end of the text, classed by how it opens.
fn sql_pieces<'a>(sql: &'a str, out: &mut Vec<(Kind, &'a str)>) {
    let mut tokens = Vec::new();
    let unreadable = Tokenizer::new(&DuckDbDialect {}, sql).tokenize_with_location_into_buf(&mut tokens).is_err();
    let offsets = Offsets::of(sql);
    let mut plain_from = 0;
    for (index, token) in tokens.iter().enumerate() {
        let kind = classify(&tokens, index);
        if kind == Kind::Plain {
            continue;
        }
        let (Some(start), Some(end)) = (offsets.byte(token.span.start), offsets.byte(token.span.end)) else { continue };
        push(out, Kind::Plain, &sql[plain_from..start]);
        push(out, kind, &sql[start..end]);
        plain_from = end;
    }
    if unreadable {
        let read = tokens.last().and_then(|t| offsets.byte(t.span.end)).unwrap_or(0).max(plain_from);
        let rest = &sql[read..];
        let kind = if rest.starts_with('\'') {
            Kind::String
        } else if rest.starts_with("/*") {
            Kind::Comment
        } else {
            Kind::Plain
        };
        push(out, Kind::Plain, &sql[plain_from..read]);
        push(out, kind, rest);
        plain_from = sql.len();
    }
    push(out, Kind::Plain, &sql[plain_from..]);
}

fn push<'a>(out: &mut Vec<(Kind, &'a str)>, kind: Kind, piece: &'a str) {
    if !piece.is_empty() {
        out.push((kind, piece));
    }
}

fn classify(tokens: &[TokenWithSpan], index: usize) -> Kind {
    match &tokens[index].token {
        Token::Word(word) => {
            // `t.end` names a column, whatever the word.
            let after_period = tokens[..index]
                .iter()
                .rev()
                .find(|t| !matches!(t.token, Token::Whitespace(_)))
                .is_some_and(|t| t.token == Token::Period);
            if word.quote_style.is_none() && !after_period && STRUCTURE.contains(&word.keyword) {
                Kind::Keyword
            } else {
                Kind::Plain
            }
        }
        Token::Number(..) => Kind::Number,
        Token::Whitespace(Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_)) => Kind::Comment,
        Token::SingleQuotedString(_)
        | Token::EscapedStringLiteral(_)
        | Token::NationalStringLiteral(_)
        | Token::UnicodeStringLiteral(_)
        | Token::HexStringLiteral(_)
        | Token::DollarQuotedString(_)
        | Token::TripleSingleQuotedString(_) => Kind::String,
        _ => Kind::Plain,
    }
}

/// The tokenizer's (line, column) places as byte offsets: lines from 1, columns in characters
/// from 1.
struct Offsets<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> Offsets<'a> {
    fn of(text: &'a str) -> Self {
        let line_starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Offsets { text, line_starts }
    }

    fn byte(&self, at: Location) -> Option<usize> {
        let line_start = *self.line_starts.get(usize::try_from(at.line).ok()?.checked_sub(1)?)?;
        let column = usize::try_from(at.column).ok()?.checked_sub(1)?;
        let line = &self.text[line_start..];
        let within = line.char_indices().map(|(i, _)| i).chain(std::iter::once(line.len())).nth(column)?;
        Some(line_start + within)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classed(text: &str) -> Vec<(Kind, &str)> {
        let parts = pieces(text);
        assert_eq!(parts.iter().map(|(_, p)| *p).collect::<String>(), text);
        parts.into_iter().filter(|(k, _)| *k != Kind::Plain).collect()
    }

    #[test]
    fn pieces_cover_the_text_and_classify_it() {
        let text = "select count(*) as n, 'a''b' -- note\nfrom {{ ref('x') }} where d > 30.5 /* é */ and z.end";
        assert_eq!(
            classed(text),
            [
                (Kind::Keyword, "select"),
                (Kind::Keyword, "as"),
                (Kind::String, "'a''b'"),
                (Kind::Comment, "-- note\n"),
                (Kind::Keyword, "from"),
                (Kind::Jinja, "{{ ref('x') }}"),
                (Kind::Keyword, "where"),
                (Kind::Number, "30.5"),
                (Kind::Comment, "/* é */"),
                (Kind::Keyword, "and"),
            ]
        );
    }

    /// Words the tokenizer knows as keywords but a model uses as names stay plain.
    #[test]
    fn column_names_that_are_keywords_are_not_coloured() {
        assert_eq!(
            classed("select zone, date, \"order\" from zones"),
            [(Kind::Keyword, "select"), (Kind::Keyword, "from")]
        );
    }

    /// What is being typed: an unclosed string, comment or block runs to the end.
    #[test]
    fn unclosed_pieces_run_to_the_end() {
        assert_eq!(pieces("{{ oops"), [(Kind::Jinja, "{{ oops")]);
        assert_eq!(classed("select 'abc\nfrom t"), [(Kind::Keyword, "select"), (Kind::String, "'abc\nfrom t")]);
        assert_eq!(classed("select 1 /* to do"), [(Kind::Keyword, "select"), (Kind::Number, "1"), (Kind::Comment, "/* to do")]);
        assert_eq!(
            classed("where d = '{{ var(\"day\") }}' and x"),
            [(Kind::Keyword, "where"), (Kind::String, "'"), (Kind::Jinja, "{{ var(\"day\") }}"), (Kind::String, "' and x")]
        );
    }
}
