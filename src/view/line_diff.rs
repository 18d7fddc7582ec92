//! Line-by-line differences between two texts (compiled SQL before and after a change), by
//! longest common subsequence: small texts, exact answer.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    Same(&'a str),
    Added(&'a str),
    Removed(&'a str),
}

pub fn lines<'a>(old: &'a str, new: &'a str) -> Vec<Line<'a>> {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    // common[i][j]: length of the longest common subsequence of a[i..] and b[j..].
    let mut common = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            common[i][j] = if a[i] == b[j] { common[i + 1][j + 1] + 1 } else { common[i + 1][j].max(common[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::with_capacity(a.len().max(b.len())));
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push(Line::Same(a[i]));
            (i, j) = (i + 1, j + 1);
        } else if j < b.len() && (i == a.len() || common[i][j + 1] >= common[i + 1][j]) {
            out.push(Line::Added(b[j]));
            j += 1;
        } else {
            out.push(Line::Removed(a[i]));
            i += 1;
        }
    }
    out
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
                Line::Added("where d between '1' and '2'"),
                Line::Removed("where d > (select max(d) from t)"),
            ]
        );
        assert!(lines(new, new).iter().all(|l| matches!(l, Line::Same(_))));
        assert_eq!(lines("", "a"), vec![Line::Added("a")]);
    }
}
