//! A protocol message on the wire between the page and the worker: a JS array of the JSON text
//! then each byte payload as a `Uint8Array`, whose buffers are transferred, not copied. The
//! page never copies a payload into its own wasm memory: a month's file goes from the browser
//! to the worker as a JS buffer.

use js_sys::{Array, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};

pub struct Wire {
    pub message: JsValue,
    pub transfer: Array,
}

/// The message for `json` and `payloads`; the payloads' buffers are handed over (detached on
/// this side), so each must own its whole buffer.
pub fn encode(json: &str, payloads: &[Uint8Array]) -> Wire {
    let message = Array::of1(&JsValue::from_str(json));
    let transfer = Array::new();
    for payload in payloads {
        transfer.push(&payload.buffer());
        message.push(payload);
    }
    Wire { message: message.into(), transfer }
}

/// The JSON text and the payloads, or `None` for anything not shaped like [`encode`]'s output.
pub fn decode(data: &JsValue) -> Option<(String, Vec<Uint8Array>)> {
    let parts = data.dyn_ref::<Array>()?;
    let json = parts.get(0).as_string()?;
    let payloads = (1..parts.length()).map(|index| parts.get(index).dyn_into::<Uint8Array>().ok()).collect::<Option<_>>()?;
    Some((json, payloads))
}
