//! A protocol message on the wire between the page and the worker: a JS array of the JSON text
//! then each byte payload as a `Uint8Array`, whose buffers are transferred, not copied.

use js_sys::{Array, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};

pub struct Wire {
    pub message: JsValue,
    pub transfer: Array,
}

pub fn encode(json: &str, payloads: &[Vec<u8>]) -> Wire {
    let message = Array::of1(&JsValue::from_str(json));
    let transfer = Array::new();
    for bytes in payloads {
        let array = Uint8Array::from(bytes.as_slice());
        transfer.push(&array.buffer());
        message.push(&array);
    }
    Wire { message: message.into(), transfer }
}

/// The JSON text and the payloads, or `None` for anything not shaped like [`encode`]'s output.
pub fn decode(data: &JsValue) -> Option<(String, Vec<Vec<u8>>)> {
    let parts = data.dyn_ref::<Array>()?;
    let json = parts.get(0).as_string()?;
    let mut payloads = Vec::new();
    for index in 1..parts.length() {
        payloads.push(parts.get(index).dyn_into::<Uint8Array>().ok()?.to_vec());
    }
    Some((json, payloads))
}
