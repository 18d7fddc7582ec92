//! A project's YAML, bounded. serde_norway caps how many times aliases are followed (100 per
//! event of the document) but not how much each one replays: an anchored list of 20,000 items
//! and 20,000 aliases to it, 250 KB of text, expand to 400 million values. So before the
//! document is built, a pass that builds nothing counts what it expands to.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::limits::Limit;

/// The YAML document `text` of the file at `path`, as JSON values.
pub fn parse(path: &str, text: &str) -> Result<Value> {
    Limit::YamlBytes.check(text.len() as u64, path)?;
    let spent = Cell::new(0);
    let counted = Expansion { spent: &spent }.deserialize(serde_norway::Deserializer::from_str(text));
    // Any other error of the counting pass is the document's own: the real parse reports it.
    if counted.is_err() && spent.get() > Limit::YamlExpanded.max() {
        return Err(Limit::YamlExpanded.exceeded(None, path));
    }
    serde_norway::from_str::<Value>(text).map_err(|e| {
        let at = e.location().map(|l| format!(":{}:{}", l.line(), l.column())).unwrap_or_default();
        Error::project(format!("{path}{at}"), format!("invalid YAML: {e}"))
    })
}

/// Visits every value of a document, aliases replayed as serde_norway replays them, adding up
/// each one's text plus one byte; stops as soon as that is over [`Limit::YamlExpanded`].
#[derive(Clone, Copy)]
struct Expansion<'a> {
    spent: &'a Cell<u64>,
}

impl Expansion<'_> {
    fn spend<E: de::Error>(self, text: usize) -> std::result::Result<(), E> {
        let spent = self.spent.get().saturating_add(1 + text as u64);
        self.spent.set(spent);
        if spent > Limit::YamlExpanded.max() {
            return Err(E::custom("too large once its aliases are expanded"));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Expansion<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> std::result::Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// Visitor methods for the scalars that count only their one byte.
macro_rules! scalars {
    ($($method:ident: $type:ty),*) => {
        $(fn $method<E: de::Error>(self, _: $type) -> std::result::Result<(), E> {
            self.spend(0)
        })*
    };
}

impl<'de> Visitor<'de> for Expansion<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }

    scalars!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_i128: i128, visit_u128: u128, visit_f64: f64);

    fn visit_str<E: de::Error>(self, text: &str) -> std::result::Result<(), E> {
        self.spend(text.len())
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> std::result::Result<(), E> {
        self.spend(bytes.len())
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<(), E> {
        self.spend(0)
    }

    fn visit_none<E: de::Error>(self) -> std::result::Result<(), E> {
        self.spend(0)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> std::result::Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        self.spend(0)?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        self.spend(0)?;
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An anchored list of `items` items and `aliases` aliases to it.
    fn laughs(items: usize, aliases: usize) -> String {
        let list: Vec<String> = (0..items).map(|i| format!("i{i}")).collect();
        let refs = vec!["*a"; aliases].join(", ");
        format!("base: &a [{}]\nrefs: [{refs}]\n", list.join(", "))
    }

    #[test]
    fn alias_amplification_is_refused_before_it_is_built() {
        let text = laughs(20_000, 20_000);
        assert!(text.len() < 250_000, "{}", text.len());
        let started = web_time::Instant::now();
        let error = parse("models/schema.yml", &text).expect_err("400 million values");
        assert_eq!(error, Limit::YamlExpanded.exceeded(None, "models/schema.yml"));
        assert!(started.elapsed().as_secs() < 5, "took {:?}", started.elapsed());
    }

    #[test]
    fn aliases_within_the_bound_and_errors_read_as_before() {
        let value = parse("a.yml", &laughs(3, 2)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(value["refs"][1][2], "i2");
        let error = parse("a.yml", "a: b: c\n").expect_err("bad YAML");
        assert_eq!(error.to_string(), "a.yml:1:5: invalid YAML: mapping values are not allowed in this context at line 1 column 5");
        let big = format!("x: '{}'\n", "y".repeat(Limit::YamlBytes.max() as usize));
        assert_eq!(parse("b.yml", &big), Err(Limit::YamlBytes.exceeded(Some(big.len() as u64), "b.yml")));
    }
}
