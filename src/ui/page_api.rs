//! `window.backfill`: the page API for automation and power users. Every function returns a
//! Promise; a failure rejects with the same message the page shows.
//!
//! ```js
//! await backfill.load("/data/yellow_tripdata_2023-04.parquet")   // or bytes, {name, month}
//! await backfill.build({select: "stg_trips", fullRefresh: false, vars: {}, command: "build"})
//! await backfill.materialize({partition: "2023-03-04..2023-03-06", singleRun: false})
//! await backfill.query("select * from daily_metrics order by all")  // → [{...}, ...]
//! await backfill.partitions(); await backfill.runs()
//! await backfill.exportProject()   // → Uint8Array: the dbt project zip
//! await backfill.shareLink()       // → "https://…/#s=…": this session, replayable
//! await backfill.lessonStep(1)     // → what the step did: diff, drift, stale partitions
//! ```

use std::future::Future;

use js_sys::{Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise};

use crate::dbt::request::{BuildRequest, DbtCommand};
use crate::error::{Error, Result};
use crate::ui::session::Shared;
use crate::worker::wire::Payload;

/// Installs `window.backfill`.
pub fn install(session: Shared) {
    let Some(window) = web_sys::window() else { return };
    let api = Object::new();
    let s = session.clone();
    add(&api, "load", Closure::<dyn Fn(JsValue, JsValue) -> Promise>::new(move |source: JsValue, options: JsValue| {
        let s = s.clone();
        promise(async move {
            let name = text_option(&options, "name")
                .or_else(|| source.as_string().and_then(|url| url.rsplit('/').next().map(str::to_string)))
                .unwrap_or_else(|| "upload.parquet".into());
            let month = text_option(&options, "month");
            let file = file_of(&source).await?;
            let loaded = s.load(&name, file, month.as_deref()).await?;
            to_js(&serde_json::to_value(&loaded).unwrap_or_default())
        })
    }));
    let s = session.clone();
    add(&api, "build", Closure::<dyn Fn(JsValue) -> Promise>::new(move |options: JsValue| {
        let s = s.clone();
        promise(async move {
            let vars = match value_option(&options, "vars") {
                Some(v) if !v.is_undefined() && !v.is_null() => {
                    let json = js_sys::JSON::stringify(&v).ok().and_then(|t| t.as_string()).unwrap_or_default();
                    match serde_json::from_str::<serde_json::Value>(&json) {
                        Ok(serde_json::Value::Object(map)) => map,
                        _ => return Err(Error::Usage("build: vars must be an object".into())),
                    }
                }
                _ => Default::default(),
            };
            // dbt's command word: what of the selection runs (`build` when not given).
            let command = match text_option(&options, "command") {
                None => DbtCommand::Build,
                Some(word) => serde_json::from_value(serde_json::Value::String(word.clone())).map_err(|_| {
                    Error::Usage(format!("build: command `{word}` is not one of build, run, seed, snapshot, test"))
                })?,
            };
            let request = BuildRequest {
                command,
                select: text_option(&options, "select").unwrap_or_default(),
                full_refresh: value_option(&options, "fullRefresh").and_then(|v| v.as_bool()).unwrap_or(false),
                vars,
                ..BuildRequest::default()
            };
            let record = s.build(&request).await?;
            to_js(&serde_json::to_value(&record).unwrap_or_default())
        })
    }));
    let s = session.clone();
    add(&api, "materialize", Closure::<dyn Fn(JsValue) -> Promise>::new(move |options: JsValue| {
        let s = s.clone();
        promise(async move {
            let partition = text_option(&options, "partition")
                .ok_or_else(|| Error::Usage("materialize: give {partition: \"YYYY-MM-DD[..YYYY-MM-DD]\"}".into()))?;
            let single_run = value_option(&options, "singleRun").and_then(|v| v.as_bool()).unwrap_or(false);
            let records = s.materialize(&partition, single_run).await?;
            to_js(&serde_json::to_value(&records).unwrap_or_default())
        })
    }));
    let s = session.clone();
    add(&api, "query", Closure::<dyn Fn(JsValue) -> Promise>::new(move |sql: JsValue| {
        let s = s.clone();
        promise(async move {
            let sql = sql.as_string().ok_or_else(|| Error::Usage("query: give the SQL as a string".into()))?;
            to_js(&s.query(&sql).await?)
        })
    }));
    let s = session.clone();
    add(&api, "partitions", Closure::<dyn Fn() -> Promise>::new(move || {
        let s = s.clone();
        promise(async move { to_js(&s.partitions_json().await?) })
    }));
    let s = session.clone();
    add(&api, "exportProject", Closure::<dyn Fn() -> Promise>::new(move || {
        let s = s.clone();
        promise(async move { Ok(s.export_project().await?.into()) })
    }));
    let s = session.clone();
    add(&api, "shareLink", Closure::<dyn Fn() -> Promise>::new(move || {
        let s = s.clone();
        promise(async move { Ok(JsValue::from_str(&s.share_link().await?)) })
    }));
    let s = session.clone();
    add(&api, "lessonStep", Closure::<dyn Fn(JsValue) -> Promise>::new(move |step: JsValue| {
        let s = s.clone();
        promise(async move {
            let step = step.as_f64().filter(|n| n.fract() == 0.0 && *n >= 1.0).ok_or_else(|| Error::Usage("lessonStep: give a step number from 1".into()))?;
            let outcome = s.lesson_step(step as usize).await?;
            to_js(&serde_json::to_value(&outcome).unwrap_or_default())
        })
    }));
    let s = session;
    add(&api, "runs", Closure::<dyn Fn() -> Promise>::new(move || {
        let s = s.clone();
        promise(async move { to_js(&s.runs_json().await?) })
    }));
    let _ = Reflect::set(&window, &"backfill".into(), &api);
}

fn add<T: ?Sized + wasm_bindgen::closure::WasmClosure>(api: &Object, name: &str, closure: Closure<T>) {
    let _ = Reflect::set(api, &name.into(), closure.as_ref());
    // The API lives as long as the page.
    closure.forget();
}

fn promise(future: impl Future<Output = Result<JsValue>> + 'static) -> Promise {
    future_to_promise(async move { future.await.map_err(|e| JsValue::from(js_sys::Error::new(&e.to_string()))) })
}

fn value_option(options: &JsValue, key: &str) -> Option<JsValue> {
    if !options.is_object() {
        return None;
    }
    Reflect::get(options, &key.into()).ok().filter(|v| !v.is_undefined())
}

fn text_option(options: &JsValue, key: &str) -> Option<String> {
    value_option(options, key).and_then(|v| v.as_string())
}

fn to_js(value: &serde_json::Value) -> Result<JsValue> {
    js_sys::JSON::parse(&value.to_string()).map_err(|_| Error::Usage("result is not JSON".into()))
}

/// A URL (fetched as a Blob), a Blob/File, or an ArrayBuffer or typed array, as the worker's
/// payload: a Blob is read by the worker, the caller's own buffers are copied, not handed over.
async fn file_of(source: &JsValue) -> Result<Payload> {
    let fail = |what: &str| Error::Usage(format!("load: {what}"));
    if let Some(url) = source.as_string() {
        let window = web_sys::window().ok_or_else(|| fail("no window"))?;
        let response = JsFuture::from(window.fetch_with_str(&url)).await.map_err(|_| fail(&format!("cannot fetch {url}")))?;
        let response: web_sys::Response = response.unchecked_into();
        if !response.ok() {
            return Err(fail(&format!("{url}: HTTP {}", response.status())));
        }
        let blob = response.blob().map_err(|_| fail("unreadable response"))?;
        let blob = JsFuture::from(blob).await.map_err(|_| fail("unreadable response"))?;
        return Ok(Payload::Blob(blob.unchecked_into()));
    }
    if let Some(blob) = source.dyn_ref::<web_sys::Blob>() {
        return Ok(Payload::Blob(blob.clone()));
    }
    if source.is_instance_of::<js_sys::ArrayBuffer>() || source.is_instance_of::<Uint8Array>() {
        let bytes = Uint8Array::new(source);
        return Ok(Payload::Bytes(bytes.slice(0, bytes.length())));
    }
    if js_sys::ArrayBuffer::is_view(source) {
        let view: &js_sys::Object = source.unchecked_ref();
        let buffer = Reflect::get(view, &"buffer".into()).map_err(|_| fail("bad typed array"))?;
        let offset = Reflect::get(view, &"byteOffset".into()).ok().and_then(|v| v.as_f64()).unwrap_or(0.0) as u32;
        let length = Reflect::get(view, &"byteLength".into()).ok().and_then(|v| v.as_f64()).unwrap_or(0.0) as u32;
        return Ok(Payload::Bytes(Uint8Array::new_with_byte_offset_and_length(&buffer, offset, length).slice(0, length)));
    }
    Err(fail("give a URL, bytes (ArrayBuffer / Uint8Array) or a File"))
}
