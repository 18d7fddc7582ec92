//! Line-by-line differences between two texts (compiled SQL before and after a change), by
//! `similar`'s Myers diff: a replaced line reads as the old one out, then the new one in.

use similar::{Algorithm, ChangeTag, capture_diff_slices};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    Same(&'a str),
    Added(&'a str),
    Removed(&'a str),
}

pub fn lines<'a>(old: &'a str, new: &'a str) -> Vec<Line<'a>> {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    capture_diff_slices(Algorithm::Myers, &a, &b)
        .iter()
        .flat_map(|op| op.iter_changes(&a, &b))
        .map(|change| match change.tag() {
            ChangeTag::Equal => Line::Same(change.value()),
            ChangeTag::Insert => Line::Added(change.value()),
            ChangeTag::Delete => Line::Removed(change.value()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_filter_is_one_line_out_and_one_in() {
        let old = "select *\nfrom t\nwhere d > (select max(d) from t)\n";
        let new = "select *\nfrom t\nwhere d between '1' and '2'\n";
        assert_eq!(
            lines(old, new),
            vec![
                Line::Same("select *"),
                Line::Same("from t"),
                Line::Removed("where d > (select max(d) from t)"),
                Line::Added("where d between '1' and '2'"),
            ]
        );
        assert!(lines(new, new).iter().all(|l| matches!(l, Line::Same(_))));
        assert_eq!(lines("", "a"), vec![Line::Added("a")]);
        // A missing final newline is not a change.
        assert_eq!(lines("a\nb", "a\nb\n"), vec![Line::Same("a"), Line::Same("b")]);
    }
}
