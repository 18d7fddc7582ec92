//! State keys (`manifest.json`, `tables/main.<model>.<suffix>.parquet`) as the names of files in
//! one flat folder, as browser storage (OPFS) keeps them. A model's name can be anything a
//! project file is called, so the encoding must be injective for every key: two keys sharing a
//! name would save one table and read back another, and the saved session could never open
//! again. Every byte but ASCII letters, digits, `-`, `_` and `.` is percent-encoded (so no name
//! holds a path separator, a control character or a `~`), and so is a leading `.` (no name is
//! `.` or `..`, which the browser refuses).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// What is escaped: everything except what every file system takes as it is.
const ESCAPED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// The file name `key` is stored under.
pub fn name_of(key: &str) -> String {
    match key.strip_prefix('.') {
        Some(rest) => format!("%2E{}", utf8_percent_encode(rest, ESCAPED)),
        None => utf8_percent_encode(key, ESCAPED).to_string(),
    }
}

/// The key stored under the file name `name`, or `None` for a name Backfill never writes
/// (a stray file, or a name escaped another way). Names from before this encoding, which
/// wrote `/` as `~`, still read: no name written since holds a `~`.
pub fn key_of(name: &str) -> Option<String> {
    if name.contains('~') {
        return Some(name.replace('~', "/"));
    }
    let key = percent_decode_str(name).decode_utf8().ok()?.into_owned();
    (name_of(&key) == name).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tilde_in_a_model_name_is_saved_and_read_back_under_its_own_key() {
        let tilde = "tables/main.a~b.18c2-0.parquet";
        let nested = "tables/main.a/b.18c2-0.parquet";
        assert_eq!(name_of(tilde), "tables%2Fmain.a%7Eb.18c2-0.parquet");
        assert_ne!(name_of(tilde), name_of(nested));
        assert_eq!(key_of(&name_of(tilde)).as_deref(), Some(tilde));
        assert_eq!(key_of(&name_of(nested)).as_deref(), Some(nested));
    }

    #[test]
    fn every_key_round_trips_through_a_name_the_browser_accepts() {
        let keys = [
            "manifest.json",
            "tables/main.daily_metrics.18c2f-3.parquet",
            "tables/main.100%.x.parquet",
            "tables/main.%2F.x.parquet",
            "tables/main.a\\b.x.parquet",
            "tables/main.zürich 🚕.x.parquet",
            "tables/main.\0\n\t.x.parquet",
            ".",
            "..",
            ".hidden",
        ];
        let names: Vec<String> = keys.iter().map(|k| name_of(k)).collect();
        for (key, name) in keys.iter().zip(&names) {
            assert_eq!(key_of(name).as_deref(), Some(*key), "{name}");
            assert!(!name.contains(['/', '\\', '~', '\0']) && name != "." && name != "..", "{name}");
            assert!(name.is_ascii(), "{name}");
        }
        let distinct: std::collections::BTreeSet<&String> = names.iter().collect();
        assert_eq!(distinct.len(), keys.len(), "two keys share a name: {names:?}");
    }

    #[test]
    fn sessions_saved_with_the_old_names_still_read() {
        assert_eq!(key_of("manifest.json").as_deref(), Some("manifest.json"));
        assert_eq!(key_of("tables~main.trips.18c2f-0.parquet").as_deref(), Some("tables/main.trips.18c2f-0.parquet"));
    }

    /// A flat folder of named files, as browser storage is.
    #[derive(Default)]
    struct Flat(std::collections::BTreeMap<String, Vec<u8>>);

    impl crate::orchestrate::state::Store for Flat {
        fn read(&self, key: &str) -> crate::error::Result<Option<Vec<u8>>> {
            Ok(self.0.get(&name_of(key)).cloned())
        }
        fn write(&mut self, key: &str, bytes: Vec<u8>) -> crate::error::Result<()> {
            self.0.insert(name_of(key), bytes);
            Ok(())
        }
        fn remove(&mut self, key: &str) -> crate::error::Result<()> {
            self.0.remove(&name_of(key));
            Ok(())
        }
        fn list(&self) -> crate::error::Result<Vec<String>> {
            Ok(self.0.keys().filter_map(|name| key_of(name)).collect())
        }
    }

    #[test]
    fn models_named_a_tilde_b_and_a_slash_b_are_saved_and_opened_again() {
        use crate::orchestrate::state::State;
        use crate::sql::warehouse::RelationName;
        let zones = crate::sources::ingest::builtin_zones().unwrap_or_else(|e| panic!("{e}"));
        let mut state = State::default();
        for name in ["a~b", "a/b", "a%7Eb"] {
            state.warehouse.put_table(RelationName::main(name), zones.clone());
        }
        let mut folder = Flat::default();
        state.save(&mut folder).unwrap_or_else(|e| panic!("{e}"));
        let opened = State::load(&folder).unwrap_or_else(|e| panic!("{e}"));
        let names = |s: &State| s.warehouse.relations().map(|(name, _)| name.to_string()).collect::<Vec<_>>();
        assert_eq!(names(&opened), names(&state));
        assert_eq!(names(&opened).len(), 3);
        for (name, _) in state.warehouse.relations() {
            let rows = |s: &State| s.warehouse.table(name).map(|t| t.batches.iter().map(|b| b.num_rows()).sum::<usize>());
            assert_eq!(rows(&opened), rows(&state), "{name}");
        }
    }

    #[test]
    fn names_backfill_never_writes_are_not_keys() {
        for stray in ["a%2f", "%zz", "%C3", "x y", "%41"] {
            assert_eq!(key_of(stray), None, "{stray}");
        }
    }
}
