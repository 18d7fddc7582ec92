//! A protocol message on the wire between the page and the worker: a JS array of the JSON text
//! then each payload, bytes as a `Uint8Array` whose buffer is transferred, not copied, or a
//! `Blob` (a dropped file, a fetched month) that the worker reads itself. The page never copies
//! a payload into its own wasm memory, nor makes a month's bytes into one buffer: that alone
//! blocks the main thread for 50 ms per 78 MB (benches/results.md).

use js_sys::{Array, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::Blob;

pub enum Payload {
    Bytes(Uint8Array),
    Blob(Blob),
}

impl Payload {
    /// The bytes, read into this side's memory (a Blob's asynchronously).
    pub async fn read(&self) -> Result<Vec<u8>, String> {
        match self {
            Payload::Bytes(bytes) => Ok(bytes.to_vec()),
            Payload::Blob(blob) => {
                let buffer = JsFuture::from(blob.array_buffer()).await.map_err(|_| "the file could not be read".to_string())?;
                Ok(Uint8Array::new(&buffer).to_vec())
            }
        }
    }
}

pub struct Wire {
    pub message: JsValue,
    pub transfer: Array,
}

/// The message for `json` and `payloads`; the bytes' buffers are handed over (detached on this
/// side), so each must own its whole buffer.
pub fn encode(json: &str, payloads: &[Payload]) -> Wire {
    let message = Array::of1(&JsValue::from_str(json));
    let transfer = Array::new();
    for payload in payloads {
        match payload {
            Payload::Bytes(bytes) => {
                transfer.push(&bytes.buffer());
                message.push(bytes);
            }
            Payload::Blob(blob) => {
                message.push(blob);
            }
        }
    }
    Wire { message: message.into(), transfer }
}

/// The JSON text and the payloads, or `None` for anything not shaped like [`encode`]'s output.
pub fn decode(data: &JsValue) -> Option<(String, Vec<Payload>)> {
    let parts = data.dyn_ref::<Array>()?;
    let json = parts.get(0).as_string()?;
    let payloads = (1..parts.length())
        .map(|index| {
            let part = parts.get(index);
            match part.dyn_into::<Uint8Array>() {
                Ok(bytes) => Some(Payload::Bytes(bytes)),
                Err(part) => part.dyn_into::<Blob>().ok().map(Payload::Blob),
            }
        })
        .collect::<Option<_>>()?;
    Some((json, payloads))
}
