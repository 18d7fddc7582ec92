//! The engine's Web Worker: the engine, its OPFS store and every Parquet decode run here, off
//! the page's main thread. It answers [`Message`]s from the page with [`Event`]s; a panic is
//! reported as [`Event::Fatal`] before the module stops, so the page can restart the worker
//! on the last saved state.

pub mod browser_store;
mod host;
pub mod wire;

use std::rc::Rc;

use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

use crate::view::protocol::{Event, Message};
use host::Host;

/// Starts listening; the page sends nothing before [`Event::Ready`].
pub fn start() {
    let Ok(scope) = js_sys::global().dyn_into::<DedicatedWorkerGlobalScope>() else { return };
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        post(Event::Fatal(info.to_string()), Vec::new());
    }));
    let host = match Host::new(Box::new(|event| post(event, Vec::new()))) {
        Ok(host) => Rc::new(host),
        Err(e) => return post(Event::Fatal(e.to_string()), Vec::new()),
    };
    let on_message = Closure::<dyn Fn(MessageEvent)>::new(move |event: MessageEvent| {
        let Some((json, payloads)) = wire::decode(&event.data()) else { return };
        match Message::from_json(&json) {
            Ok(Message::Cancel) => host.cancel(),
            Ok(Message::Call { id, request }) => {
                let host = host.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let outcome = host.handle(request, payloads).await;
                    post(Event::Reply { id, result: outcome.result, warning: outcome.warning }, outcome.payloads);
                });
            }
            Err(e) => web_sys::console::error_1(&e.into()),
        }
    });
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The handler lives as long as the worker.
    on_message.forget();
    post(Event::Ready, Vec::new());
}

fn post(event: Event, payloads: Vec<Vec<u8>>) {
    let Ok(scope) = js_sys::global().dyn_into::<DedicatedWorkerGlobalScope>() else { return };
    let payloads: Vec<wire::Payload> =
        payloads.iter().map(|bytes| wire::Payload::Bytes(js_sys::Uint8Array::from(bytes.as_slice()))).collect();
    let wire = wire::encode(&event.to_json(), &payloads);
    if let Err(e) = scope.post_message_with_transfer(&wire.message, &wire.transfer) {
        web_sys::console::error_1(&e);
    }
}
