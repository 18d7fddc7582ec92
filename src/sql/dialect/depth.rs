//! How deep one SQL statement nests, measured on its tokens before it is parsed. The parser
//! builds a chain such as `1 + 1 + … + 1` or `… union all select …` in a loop, but planning,
//! optimizing, executing and even dropping its tree recurse once per level, on a stack that is
//! small in the browser (and DataFusion's stack growing is off there). So a statement is
//! measured first, without recursion, and refused when it is deeper than `Limit::SqlDepth`.
//!
//! The measure bounds the depth of the statement's trees from above: each open parenthesis,
//! bracket or `CASE` is a level; within a level, each operator since the last separator (a
//! comma, a clause keyword, a `CASE` branch) nests one more, and each join or set operation
//! chains one more query until the level closes.

use datafusion::sql::sqlparser::dialect::Dialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

/// The depth of `sql`; `None` when it does not tokenize (the parser then says why).
pub fn depth(sql: &str, dialect: &dyn Dialect) -> Option<u64> {
    let tokens = Tokenizer::new(dialect, sql).tokenize().ok()?;
    let mut open = Levels::default();
    let mut deepest = 0;
    for token in &tokens {
        match token {
            Token::LParen | Token::LBracket | Token::LBrace => open.push(false),
            Token::RParen | Token::RBracket | Token::RBrace => open.pop(false),
            Token::Comma => {
                let level = open.top();
                level.operators = 0;
                if level.in_from {
                    level.queries += 1;
                }
            }
            Token::Word(word) if word.quote_style.is_none() => match word.keyword {
                Keyword::CASE => open.push(true),
                Keyword::END => open.pop(true),
                Keyword::FROM => {
                    let level = open.top();
                    level.operators = 0;
                    level.in_from = true;
                }
                // Join conditions are still in the FROM clause.
                Keyword::ON | Keyword::USING | Keyword::AS | Keyword::WHEN | Keyword::THEN | Keyword::ELSE => {
                    open.top().operators = 0;
                }
                Keyword::SELECT
                | Keyword::WHERE
                | Keyword::GROUP
                | Keyword::HAVING
                | Keyword::ORDER
                | Keyword::LIMIT
                | Keyword::OFFSET
                | Keyword::QUALIFY
                | Keyword::WINDOW
                | Keyword::VALUES
                | Keyword::WITH => {
                    let level = open.top();
                    level.operators = 0;
                    level.in_from = false;
                }
                Keyword::JOIN | Keyword::UNION | Keyword::EXCEPT | Keyword::INTERSECT | Keyword::MINUS => {
                    open.top().queries += 1;
                }
                Keyword::AND
                | Keyword::OR
                | Keyword::NOT
                | Keyword::IS
                | Keyword::LIKE
                | Keyword::ILIKE
                | Keyword::IN
                | Keyword::BETWEEN
                | Keyword::SIMILAR
                | Keyword::REGEXP
                | Keyword::RLIKE
                | Keyword::COLLATE
                | Keyword::AT
                | Keyword::OVERLAPS
                | Keyword::XOR
                | Keyword::DIV => open.top().operators += 1,
                _ => {}
            },
            token if is_operand(token) => {}
            // Every other token is an operator (`+`, `||`, `::`, `->`, …).
            _ => open.top().operators += 1,
        }
        deepest = deepest.max(open.depth());
    }
    Some(deepest)
}

/// Tokens that name or spell a value, or separate nothing.
fn is_operand(token: &Token) -> bool {
    matches!(
        token,
        Token::EOF
            | Token::Word(_)
            | Token::Number(..)
            | Token::Char(_)
            | Token::Whitespace(_)
            | Token::Period
            | Token::SemiColon
            | Token::Placeholder(_)
            | Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::TripleSingleQuotedString(_)
            | Token::TripleDoubleQuotedString(_)
            | Token::DollarQuotedString(_)
            | Token::SingleQuotedByteStringLiteral(_)
            | Token::DoubleQuotedByteStringLiteral(_)
            | Token::TripleSingleQuotedByteStringLiteral(_)
            | Token::TripleDoubleQuotedByteStringLiteral(_)
            | Token::SingleQuotedRawStringLiteral(_)
            | Token::DoubleQuotedRawStringLiteral(_)
            | Token::TripleSingleQuotedRawStringLiteral(_)
            | Token::TripleDoubleQuotedRawStringLiteral(_)
            | Token::NationalStringLiteral(_)
            | Token::QuoteDelimitedStringLiteral(_)
            | Token::NationalQuoteDelimitedStringLiteral(_)
            | Token::EscapedStringLiteral(_)
            | Token::UnicodeStringLiteral(_)
            | Token::HexStringLiteral(_)
    )
}

#[derive(Default)]
struct Level {
    /// Opened by `CASE` (closed by `END`), not by a bracket.
    case: bool,
    operators: u64,
    queries: u64,
    in_from: bool,
}

impl Level {
    fn depth(&self) -> u64 {
        1 + self.operators + self.queries
    }
}

/// The open levels, innermost last, with the depth of all but the innermost kept as a sum so
/// that each token costs the same however deep it is.
#[derive(Default)]
struct Levels {
    outer: Vec<Level>,
    outer_depth: u64,
    innermost: Level,
}

impl Levels {
    fn top(&mut self) -> &mut Level {
        &mut self.innermost
    }

    fn push(&mut self, case: bool) {
        let level = std::mem::replace(&mut self.innermost, Level { case, ..Level::default() });
        self.outer_depth += level.depth();
        self.outer.push(level);
    }

    /// Closes the innermost level if `case` says it is of the kind being closed; an unmatched
    /// closer is left to the parser.
    fn pop(&mut self, case: bool) {
        if self.innermost.case != case {
            return;
        }
        if let Some(level) = self.outer.pop() {
            self.outer_depth -= level.depth();
            self.innermost = level;
        }
    }

    fn depth(&self) -> u64 {
        self.outer_depth + self.innermost.depth()
    }
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::DuckDbDialect;

    use super::*;

    fn of(sql: &str) -> u64 {
        depth(sql, &DuckDbDialect {}).unwrap_or_else(|| panic!("{sql} does not tokenize"))
    }

    #[test]
    fn chains_count_each_link_and_separators_reset_them() {
        assert_eq!(of("select 1"), 1);
        assert_eq!(of("select 1 + 1 + 1 + 1"), 4);
        let terms = vec!["1"; 5_000].join(" + ");
        assert_eq!(of(&format!("select {terms}")), 5_000);
        // A long select list or IN list is wide, not deep.
        let columns = vec!["a + b"; 1_000].join(", ");
        assert_eq!(of(&format!("select {columns} from t where x in (1, 2, 3)")), 3);
        let cases = (0..500).map(|i| format!("when x = {i} then 'v{i}'")).collect::<Vec<_>>().join(" ");
        assert_eq!(of(&format!("select case {cases} end from t")), 3);
    }

    #[test]
    fn nesting_adds_the_levels_it_is_inside() {
        assert_eq!(of("select f(g(h(1)))"), 4);
        assert_eq!(of("select a + (b + (c + 1))"), 6);
        let unions = vec!["select 1"; 300].join(" union all ");
        assert_eq!(of(&unions), 300);
        assert_eq!(of("select * from a join b on a.x = b.x join c on c.y = b.y, d"), 4);
        // Unbalanced closers are the parser's to report, not a reason to underflow.
        assert_eq!(of("select 1)) + 1"), 2);
    }

    #[test]
    fn models_as_people_write_them_are_shallow() {
        let model = "with orders as (select * from raw.orders), \
            daily as (select cast(ordered_at as date) as day, count(*) as n, \
                sum(case when status = 'returned' then 0 else coalesce(amount, 0) end) as revenue \
                from orders where ordered_at between '2023-03-04' and '2023-03-05' group by all) \
            select * from daily where day in (select max(day) from daily) order by day";
        assert!(of(model) < 20, "{} for {model}", of(model));
    }
}
