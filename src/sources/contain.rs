//! A panic inside a third-party decoder (Parquet, Arrow IPC, Arrow buffers) on a crafted file
//! is that file's error, not the end of the program. Natively, the boundary where a file enters
//! catches it and keeps the panic's report off stderr, so the CLI prints one clear error; in
//! the page a panic stops the engine's worker, which the page restarts on the saved state.

/// Runs `read`; a panic inside it becomes `Err` with what the panic said.
#[cfg(not(target_arch = "wasm32"))]
pub fn contained<T>(read: impl FnOnce() -> T) -> Result<T, String> {
    use std::cell::Cell;
    use std::panic::{self, AssertUnwindSafe};
    use std::sync::Once;

    thread_local! {
        static CONTAINED: Cell<bool> = const { Cell::new(false) };
    }
    static QUIET_HOOK: Once = Once::new();
    QUIET_HOOK.call_once(|| {
        let report = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !CONTAINED.with(Cell::get) {
                report(info);
            }
        }));
    });
    let outer = CONTAINED.with(|c| c.replace(true));
    // Nothing `read` borrows is used after a panic: the caller only gets the error.
    let outcome = panic::catch_unwind(AssertUnwindSafe(read));
    CONTAINED.with(|c| c.set(outer));
    outcome.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into())
    })
}

/// In the browser a panic aborts; the worker boundary contains it.
#[cfg(target_arch = "wasm32")]
pub fn contained<T>(read: impl FnOnce() -> T) -> Result<T, String> {
    Ok(read())
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn a_panic_inside_is_an_error_outside() {
        let caught = contained(|| -> u32 { panic!("bad page header") });
        assert_eq!(caught, Err("bad page header".to_string()));
        assert_eq!(contained(|| 7), Ok(7));
        let index = 9;
        let caught = contained(|| [1, 2, 3][index]);
        assert!(caught.is_err_and(|m| m.contains("index out of bounds")));
    }
}
