//! Share links: a session as a URL fragment. The fragment carries the session's actions (the
//! project changes, the sample recipes, the runs) and what the page was showing, as JSON,
//! deflated and base64url-encoded. Opening it replays the actions on an empty state, which
//! rebuilds the same tables. Files loaded from disk are not in links: only their names are.

use std::io::{Read, Write};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use serde::{Deserialize, Serialize};

use crate::actions::Action;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::lesson;
use crate::project::{LESSON, builtin};
use crate::state::State;

/// The fragment's prefix: `https://…/#s=<payload>`.
pub const FRAGMENT_PREFIX: &str = "#s=";
/// Longer links are cut or refused by some chat tools and e-mail clients.
pub const CHAT_SAFE_LENGTH: usize = 2_000;
const VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SharedSession {
    pub version: u32,
    pub actions: Vec<Action>,
    #[serde(default)]
    pub view: View,
}

/// What the page showed, so the link opens on it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct View {
    /// Lesson steps done: the link's first actions are theirs.
    #[serde(default)]
    pub lesson_steps: usize,
    /// The run the time-travel slider stood on, if not the latest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<u64>,
    /// The partitions selected, `anchor..end` (`2023-03-04..2023-03-06`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<String>,
}

impl SharedSession {
    pub fn new(actions: Vec<Action>, view: View) -> SharedSession {
        SharedSession { version: VERSION, actions, view }
    }

    /// The fragment, `#s=` included.
    pub fn to_fragment(&self) -> Result<String> {
        let json = serde_json::to_vec(self).map_err(|e| Error::Usage(format!("share link: {e}")))?;
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(&json).map_err(|e| Error::Usage(format!("share link: {e}")))?;
        let deflated = encoder.finish().map_err(|e| Error::Usage(format!("share link: {e}")))?;
        Ok(format!("{FRAGMENT_PREFIX}{}", URL_SAFE_NO_PAD.encode(deflated)))
    }

    /// Reads a fragment (with or without `#s=`); every failure says what is wrong with the link.
    pub fn from_fragment(fragment: &str) -> Result<SharedSession> {
        let bad = |what: String| Error::Usage(format!("this share link cannot be opened: {what}"));
        let payload = fragment.trim().trim_start_matches(FRAGMENT_PREFIX);
        let deflated = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|e| bad(format!("it is cut short or altered ({e})")))?;
        let mut json = Vec::new();
        DeflateDecoder::new(deflated.as_slice())
            .take(16 << 20)
            .read_to_end(&mut json)
            .map_err(|e| bad(format!("it is cut short or altered ({e})")))?;
        let shared: SharedSession = serde_json::from_slice(&json).map_err(|e| bad(e.to_string()))?;
        if shared.version != VERSION {
            return Err(bad(format!("it was made by a newer Backfill (link version {})", shared.version)));
        }
        Ok(shared)
    }

    /// Names of files the link cannot bring along.
    pub fn missing_files(&self) -> Vec<String> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::File { name, .. } => Some(name.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Rebuilds `shared` in `engine` from an empty state and the built-in lesson project: its
/// lesson steps first (so their outcomes are shown), then the rest of its actions. Returns
/// notes on what could not come along.
pub async fn open(engine: &mut Engine, shared: &SharedSession) -> Result<Vec<String>> {
    engine.state = State::default();
    engine.project = builtin(LESSON)?;
    for step in 1..=shared.view.lesson_steps {
        lesson::run_step(engine, step).await?;
    }
    let done = engine.state.actions.len();
    if shared.actions.get(..done) != Some(&engine.state.actions[..]) {
        return Err(Error::Usage("this share link cannot be opened: its lesson steps do not match this Backfill's lesson".into()));
    }
    engine.replay(&shared.actions[done..]).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{FileSchema, SampleSpec};

    fn session() -> SharedSession {
        let spec = SampleSpec { month: "2023-03".into(), rows: 200_000, seed: 1, schema: FileSchema::Y2023 };
        SharedSession::new(
            vec![
                Action::Sample { spec },
                Action::File { name: "yellow_tripdata_2023-04.parquet".into(), month: "2023-04".into() },
                Action::Materialize { range: "2023-03-04".into(), single_run: false },
            ],
            View { lesson_steps: 2, run: Some(3), selection: Some("2023-03-06..2023-03-04".into()) },
        )
    }

    #[test]
    fn fragments_round_trip_and_stay_short() {
        let fragment = session().to_fragment().expect("encodes");
        assert!(fragment.starts_with("#s="));
        assert!(fragment.len() < 300, "{} characters", fragment.len());
        assert!(fragment.chars().skip(3).all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(SharedSession::from_fragment(&fragment).expect("decodes"), session());
        assert_eq!(session().missing_files(), ["yellow_tripdata_2023-04.parquet"]);
    }

    #[test]
    fn a_damaged_link_says_so() {
        let fragment = session().to_fragment().expect("encodes");
        let cut = &fragment[..fragment.len() / 2];
        let error = SharedSession::from_fragment(cut).expect_err("half a link");
        assert!(error.to_string().starts_with("this share link cannot be opened"), "{error}");
        assert!(SharedSession::from_fragment("#s=!!!").is_err());
    }
}
