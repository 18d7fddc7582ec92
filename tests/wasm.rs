//! Engine paths that differ on wasm, run in headless Chromium by wasm-bindgen-test: Parquet
//! decoding of every codec (zstd is C code built by clang for wasm), a whole build on
//! single-threaded DataFusion, and the OPFS store round trip.
#![cfg(target_arch = "wasm32")]

use backfill::course::builtin::{LESSON, builtin};
use backfill::dbt::request::BuildRequest;
use backfill::orchestrate::engine::Engine;
use backfill::orchestrate::state::State;
use backfill::sources::ingest::read_trips;
use backfill::sources::sample::{self, FileCompression, FileSchema, SampleSpec};
use backfill::sql::query::to_csv;
use backfill::worker::browser_store::BrowserStore;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

fn month(rows: usize, compression: FileCompression) -> Vec<u8> {
    let spec = SampleSpec { month: "2023-03".into(), rows, seed: 1, schema: FileSchema::Y2024 };
    let batches = sample::generate(&spec).unwrap_or_else(|e| panic!("{e}"));
    sample::write_parquet(&batches, compression).unwrap_or_else(|e| panic!("{e}"))
}

#[wasm_bindgen_test]
fn every_codec_decodes() {
    for compression in [FileCompression::Snappy, FileCompression::Zstd, FileCompression::Gzip, FileCompression::None] {
        let file = read_trips("yellow_tripdata_2023-03.parquet", &month(3000, compression), None)
            .unwrap_or_else(|e| panic!("{compression:?}: {e}"));
        assert_eq!(file.stats.rows, 3000, "{compression:?}");
        assert_eq!(file.month, "2023-03");
    }
}

#[wasm_bindgen_test]
async fn builds_and_persists_through_opfs() {
    let mut engine = Engine::new(builtin(LESSON).unwrap_or_else(|e| panic!("{e}")), State::default(), builtin);
    engine.load_trips("yellow_tripdata_2023-03.parquet", &month(5000, FileCompression::Zstd), None).unwrap_or_else(|e| panic!("{e}"));
    engine.build(&BuildRequest::default()).await.unwrap_or_else(|e| panic!("{e}"));
    engine.materialize("2023-03-04", false).await.and_then(|b| b.into_result()).unwrap_or_else(|e| panic!("{e}"));
    let daily = "select * from daily_metrics order by date_of_business";
    let before = to_csv(&engine.query(daily).await.unwrap_or_else(|e| panic!("{e}")));
    assert!(before.lines().count() > 31, "{before}");

    BrowserStore::wipe().await.unwrap_or_else(|e| panic!("{e}"));
    let mut store = BrowserStore::open().await.unwrap_or_else(|e| panic!("{e}"));
    engine.state.save(&mut store).unwrap_or_else(|e| panic!("{e}"));
    store.flush().await.unwrap_or_else(|e| panic!("{e}"));

    let reopened = BrowserStore::open().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(reopened.has_state());
    let state = State::load(&reopened).unwrap_or_else(|e| panic!("{e}"));
    let restored = Engine::new(builtin(LESSON).unwrap_or_else(|e| panic!("{e}")), state, builtin);
    assert_eq!(to_csv(&restored.query(daily).await.unwrap_or_else(|e| panic!("{e}"))), before);
    assert_eq!(restored.state.runs.len(), engine.state.runs.len());
    assert_eq!(restored.partitions(), engine.partitions());
    BrowserStore::wipe().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(!BrowserStore::open().await.unwrap_or_else(|e| panic!("{e}")).has_state());
}
