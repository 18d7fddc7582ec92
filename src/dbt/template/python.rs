//! Python's methods in templates, as dbt's Jinja (Python's) has them: minijinja-contrib's
//! `pycompat` for strings, lists and dicts (`.lower()`, `.items()`, `.get()`, …), and lists and
//! dicts that change in place. minijinja's values never change, so `{% set cols = [] %}` is
//! rendered as `{% set cols = __list([]) %}`: a list shared by reference with `append`,
//! `extend`, `insert`, `pop`, `remove`, `clear`, `reverse`, `sort`, and a dict likewise with
//! `update`, `pop`, `setdefault`. That is how dbt's own macros and the projects that copy them
//! build lists (`{% do cols.append(c) %}`).
//!
//! What goes into such a list or dict is copied (a list appended to itself holds what it held,
//! never itself), at most [`MAX_DEPTH`] deep and [`MAX_COPIED`] values in one rendering: a
//! template can neither loop through a value nor grow one without bound.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use minijinja::value::{Enumerator, Kwargs, Object, ObjectRepr, Value, ValueKind, from_args};
use minijinja::{Environment, Error, ErrorKind, State};

/// Methods that change a list or a dict in place.
const MUTATING: [&str; 10] = ["append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse", "update", "setdefault"];

/// The deepest a list or dict nests in another.
const MAX_DEPTH: usize = 32;

/// The most values one rendering copies into lists and dicts.
const MAX_COPIED: u64 = 1_000_000;

/// What is left of one rendering's [`MAX_COPIED`].
#[derive(Debug)]
struct Budget(AtomicU64);

impl Budget {
    fn spend(&self) -> Result<(), Error> {
        let spent = self.0.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| left.checked_sub(1));
        spent.map(|_| ()).map_err(|_| Error::new(ErrorKind::OutOfFuel, format!("lists and dicts took in more than {MAX_COPIED} values")))
    }

    /// `value` as it goes into a list or dict that changes in place: a list or dict in it
    /// copied as one that changes too; other values (objects included) as they are.
    fn copy(self: &Arc<Self>, value: &Value, depth: usize) -> Result<Value, Error> {
        self.spend()?;
        let is_list = value.downcast_object_ref::<Vec<Value>>().is_some() || value.downcast_object_ref::<List>().is_some();
        let is_dict = value.downcast_object_ref::<BTreeMap<Value, Value>>().is_some() || value.downcast_object_ref::<Dict>().is_some();
        if (is_list || is_dict) && depth >= MAX_DEPTH {
            return Err(Error::new(ErrorKind::InvalidOperation, format!("lists and dicts nest more than {MAX_DEPTH} deep")));
        }
        if is_list {
            let items = value.try_iter()?.map(|item| self.copy(&item, depth + 1)).collect::<Result<_, _>>()?;
            return Ok(Value::from_object(List(Mutex::new(items), Arc::clone(self))));
        }
        if is_dict {
            let keys: Vec<Value> = value.try_iter()?.collect();
            let mut entries = Vec::with_capacity(keys.len());
            for key in keys {
                let item = value.get_item(&key)?;
                entries.push((key, self.copy(&item, depth + 1)?));
            }
            return Ok(Value::from_object(Dict(Mutex::new(entries), Arc::clone(self))));
        }
        Ok(value.clone())
    }
}

/// Registers `__list`, `__dict` and the methods of plain values, for one rendering.
pub(super) fn add(env: &mut Environment<'_>) {
    let budget = Arc::new(Budget(AtomicU64::new(MAX_COPIED)));
    let b = Arc::clone(&budget);
    env.add_function("__list", move |items: Value| b.copy(&items, 0));
    env.add_function("__dict", move |items: Value| budget.copy(&items, 0));
    env.set_unknown_method_callback(|state, value, method, args| {
        let kind = value.kind();
        if MUTATING.contains(&method) && matches!(kind, ValueKind::Seq | ValueKind::Map | ValueKind::Iterable) {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("{method}() changes a list or dict, and this one cannot change: only one made by `{{% set name = [] %}}` (or `{{}}`) can"),
            ));
        }
        minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
    });
}

/// `{% set name = [...] %}` and `{% set name = {...} %}` in `source` with the literal made
/// mutable (`__list([...])`, `__dict({...})`). Lines keep their numbers.
pub fn mutable_literals(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find("{%") {
        let (before, tag) = rest.split_at(start);
        out.push_str(before);
        let Some(end) = tag.find("%}") else { break };
        let (tag, after) = tag.split_at(end);
        out.push_str(&with_mutable_literal(tag).unwrap_or_else(|| tag.to_string()));
        rest = after;
    }
    out.push_str(rest);
    out
}

/// A `{% set target = literal` tag (without its `%}`) with the literal wrapped, if it is one.
fn with_mutable_literal(tag: &str) -> Option<String> {
    let body = tag.strip_prefix("{%")?;
    let body = body.trim_start_matches(['-', '+']).trim_start();
    let assignment = body.strip_prefix("set")?;
    if !assignment.starts_with(char::is_whitespace) {
        return None;
    }
    let equals = assignment.find('=')?;
    let (target, value) = (&assignment[..equals], &assignment[equals + 1..]);
    let is_name = |t: &str| !t.is_empty() && t.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '.');
    if !is_name(target.trim()) || value.starts_with('=') {
        return None;
    }
    let literal = value.trim().trim_end_matches(['-', '+']).trim_end();
    let wrapper = match (literal.chars().next()?, literal.chars().last()?) {
        ('[', ']') => "__list",
        ('{', '}') => "__dict",
        _ => return None,
    };
    if !closes_at_end(literal) {
        return None;
    }
    let at = tag.len() - value.len() + value.find(literal)?;
    Some(format!("{}{wrapper}({literal}){}", &tag[..at], &tag[at + literal.len()..]))
}

/// Whether the bracket opening `literal` is the one closing it (not `[1] + [2]`), strings aside.
fn closes_at_end(literal: &str) -> bool {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (index, c) in literal.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' => quote = Some(c),
                '[' | '{' | '(' => depth += 1,
                ']' | '}' | ')' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return index + c.len_utf8() == literal.len();
                    }
                }
                _ => {}
            },
        }
    }
    false
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a render panicked; the values are still whole.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Not `UnknownMethod`, which would send the call on to pycompat, whose message says less.
fn no_method(kind: &str, method: &str) -> Error {
    Error::new(ErrorKind::InvalidOperation, format!("a {kind} has no method {method}"))
}

/// A list that changes in place, as Python's.
#[derive(Debug)]
struct List(Mutex<Vec<Value>>, Arc<Budget>);

impl Object for List {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let items = locked(&self.0);
        let index = i64::try_from(key.clone()).ok()?;
        let index = if index < 0 { items.len().checked_sub(index.unsigned_abs() as usize)? } else { index as usize };
        items.get(index).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(locked(&self.0).clone())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(locked(&self.0).len())
    }

    fn is_true(self: &Arc<Self>) -> bool {
        !locked(&self.0).is_empty()
    }

    fn call_method(self: &Arc<Self>, state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        // What goes in is copied before the list is locked: it may be the list itself.
        let copy = |value: &Value| self.1.copy(value, 1);
        match method {
            "append" => {
                let (item,): (Value,) = from_args(args)?;
                let item = copy(&item)?;
                locked(&self.0).push(item);
            }
            "extend" => {
                let (more,): (Value,) = from_args(args)?;
                let more = more.try_iter()?.map(|item| copy(&item)).collect::<Result<Vec<_>, _>>()?;
                locked(&self.0).extend(more);
            }
            "insert" => {
                let (index, item): (i64, Value) = from_args(args)?;
                let item = copy(&item)?;
                let mut items = locked(&self.0);
                let at = if index < 0 { items.len().saturating_sub(index.unsigned_abs() as usize) } else { (index as usize).min(items.len()) };
                items.insert(at, item);
            }
            "pop" => {
                let (index,): (Option<i64>,) = from_args(args)?;
                let mut items = locked(&self.0);
                let len = items.len();
                let at = match index.unwrap_or(-1) {
                    i if i < 0 => len.checked_sub(i.unsigned_abs() as usize),
                    i => Some(i as usize).filter(|i| *i < len),
                };
                let at = at.ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "pop index out of range"))?;
                return Ok(items.remove(at));
            }
            "remove" => {
                let (item,): (Value,) = from_args(args)?;
                let items: Vec<Value> = locked(&self.0).clone();
                let at = items.iter().position(|i| *i == item);
                let at = at.ok_or_else(|| Error::new(ErrorKind::InvalidOperation, format!("list.remove({item}): not in the list")))?;
                locked(&self.0).remove(at);
            }
            "clear" => locked(&self.0).clear(),
            "reverse" => locked(&self.0).reverse(),
            "sort" => {
                let (_, kwargs): (&[Value], Kwargs) = from_args(args)?;
                let reverse: Option<bool> = kwargs.get("reverse")?;
                kwargs.assert_all_used()?;
                let mut items: Vec<Value> = locked(&self.0).clone();
                items.sort();
                if reverse.unwrap_or(false) {
                    items.reverse();
                }
                *locked(&self.0) = items;
            }
            "copy" => return Ok(Value::from_object(List(Mutex::new(locked(&self.0).clone()), Arc::clone(&self.1)))),
            _ => {
                // Methods that only read (`index`, `count`) are a plain list's.
                let plain = Value::from(locked(&self.0).clone());
                return plain.call_method(state, method, args).map_err(|_| no_method("list", method));
            }
        }
        Ok(Value::from(()))
    }
}

/// A dict that changes in place, as Python's: its keys in the order they came.
#[derive(Debug)]
struct Dict(Mutex<Vec<(Value, Value)>>, Arc<Budget>);

impl Dict {
    fn set(entries: &mut Vec<(Value, Value)>, key: Value, value: Value) {
        match entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => entries.push((key, value)),
        }
    }
}

impl Object for Dict {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        locked(&self.0).iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(locked(&self.0).iter().map(|(k, _)| k.clone()).collect())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(locked(&self.0).len())
    }

    fn is_true(self: &Arc<Self>) -> bool {
        !locked(&self.0).is_empty()
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        // What goes in is copied before the dict is locked: it may be the dict itself.
        let copy = |value: &Value| self.1.copy(value, 1);
        match method {
            "update" => {
                let (other, kwargs): (Option<Value>, Kwargs) = from_args(args)?;
                let mut pairs = Vec::new();
                if let Some(other) = other {
                    for key in other.try_iter()?.collect::<Vec<_>>() {
                        let value = other.get_item(&key)?;
                        pairs.push((key, copy(&value)?));
                    }
                }
                for key in kwargs.args() {
                    pairs.push((Value::from(key), copy(&kwargs.get::<Value>(key)?)?));
                }
                let mut entries = locked(&self.0);
                for (key, value) in pairs {
                    Dict::set(&mut entries, key, value);
                }
                Ok(Value::from(()))
            }
            "get" => {
                let (key, default): (Value, Option<Value>) = from_args(args)?;
                Ok(self.get_value(&key).or(default).unwrap_or_default())
            }
            "pop" => {
                let (key, default): (Value, Option<Value>) = from_args(args)?;
                let mut entries = locked(&self.0);
                match entries.iter().position(|(k, _)| *k == key) {
                    Some(at) => Ok(entries.remove(at).1),
                    None => default.ok_or_else(|| Error::new(ErrorKind::InvalidOperation, format!("dict.pop({key}): no such key"))),
                }
            }
            "setdefault" => {
                let (key, default): (Value, Option<Value>) = from_args(args)?;
                if let Some(value) = self.get_value(&key) {
                    return Ok(value);
                }
                let value = copy(&default.unwrap_or_default())?;
                locked(&self.0).push((key, value.clone()));
                Ok(value)
            }
            "keys" => Ok(Value::from(locked(&self.0).iter().map(|(k, _)| k.clone()).collect::<Vec<_>>())),
            "values" => Ok(Value::from(locked(&self.0).iter().map(|(_, v)| v.clone()).collect::<Vec<_>>())),
            "items" => {
                let items = locked(&self.0).iter().map(|(k, v)| Value::from(vec![k.clone(), v.clone()])).collect::<Vec<_>>();
                Ok(Value::from(items))
            }
            "clear" => {
                locked(&self.0).clear();
                Ok(Value::from(()))
            }
            "copy" => Ok(Value::from_object(Dict(Mutex::new(locked(&self.0).clone()), Arc::clone(&self.1)))),
            _ => Err(no_method("dict", method)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(template: &str) -> String {
        let mut env = Environment::new();
        add(&mut env);
        env.render_str(&mutable_literals(template), ()).unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn set_literals_become_lists_and_dicts_that_change_in_place() {
        assert_eq!(
            mutable_literals("{%- set cols = [] -%}{% set d = {'a': [1]} %}{% set n = [1] + [2] %}{% set x = y %}{{ [] }}"),
            "{%- set cols = __list([]) -%}{% set d = __dict({'a': [1]}) %}{% set n = [1] + [2] %}{% set x = y %}{{ [] }}"
        );
        let template = "{% set cols = [] %}{% set seen = {} %}\
                        {% for c in ['a', 'B', 'a'] %}{% if c.lower() not in seen %}{% do cols.append(c.upper()) %}{% do seen.update({c.lower(): loop.index}) %}{% endif %}{% endfor %}\
                        {% set alias = cols %}{% do alias.insert(0, 'first') %}\
                        {{ cols | join(',') }} {{ cols | length }} {{ seen.items() | list }} {{ seen.get('z', 'none') }} {{ 'a' in seen }}";
        assert_eq!(rendered(template), "first,A,B 3 [['a', 1], ['b', 2]] none True");
        assert_eq!(rendered("{% set d = {'k': []} %}{% do d['k'].append(1) %}{{ d['k'] }}"), "[1]");
    }

    #[test]
    fn a_list_that_cannot_change_says_so() {
        let error = rendered("{% do ([1] + [2]).append(3) %}");
        assert!(error.contains("append() changes a list or dict, and this one cannot change"), "{error}");
    }
}
