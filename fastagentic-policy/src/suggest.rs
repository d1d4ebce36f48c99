//! "Did you mean ...?": the valid name closest to a mistaken one.

/// "did you mean `x`?" when a valid name is close to `given`, else the list of valid
/// names.
pub fn suggestion(given: &str, valid: &[&str]) -> String {
    match closest(given, valid) {
        Some(name) => format!("did you mean `{name}`?"),
        None => format!("expected one of: {}", valid.join(", ")),
    }
}

/// The valid name closest to `given`, if it is within a third of `given`'s length in
/// edits (at least one edit), the threshold rustc's own suggestions use.
pub fn closest<'a>(given: &str, valid: &[&'a str]) -> Option<&'a str> {
    let limit = (given.chars().count() / 3).max(1);
    valid
        .iter()
        .map(|name| (distance(given, name), *name))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, name)| name)
}

/// Edit distance with adjacent transpositions counted as one edit (optimal string
/// alignment), so `retyr` is one edit from `retry`.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j]: distance between a[..i] and b[..j].
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_edits_and_transpositions() {
        assert_eq!(distance("retry", "retry"), 0);
        assert_eq!(distance("retyr", "retry"), 1);
        assert_eq!(distance("max_attempt", "max_attempts"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggests_close_names_and_lists_otherwise() {
        let valid = ["retry", "timeout", "rate_limit"];
        assert_eq!(suggestion("timout", &valid), "did you mean `timeout`?");
        assert_eq!(
            suggestion("xyz", &valid),
            "expected one of: retry, timeout, rate_limit"
        );
    }
}
