//! The summary of repeated runs (`--runs N`): every figure as its median, minimum and maximum.
//!
//! Reports are JSON trees of the same shape. A figure that is the same in every run stays as it
//! is (the workload's parameters, a count that never moved); a number that differs becomes
//! `{"median", "min", "max"}`; an object is summarised key by key; anything else that differs
//! between runs (a string, a list) is left out rather than shown as one run's value.

use serde_json::{Map, Value, json};

/// The summary of `reports`, or `None` when they have nothing in common.
pub fn summarize(reports: &[Value]) -> Option<Value> {
    let first = reports.first()?;
    if reports.iter().all(|r| r == first) {
        return Some(first.clone());
    }
    if let Some(numbers) = reports
        .iter()
        .map(Value::as_f64)
        .collect::<Option<Vec<_>>>()
    {
        let (median, min, max) = spread(numbers)?;
        return Some(json!({"median": median, "min": min, "max": max}));
    }
    let Value::Object(keys) = first else {
        return None;
    };
    let mut out = Map::new();
    for key in keys.keys() {
        let values = reports
            .iter()
            .map(|r| r.get(key).cloned())
            .collect::<Option<Vec<_>>>();
        if let Some(summary) = values.and_then(|v| summarize(&v)) {
            out.insert(key.clone(), summary);
        }
    }
    Some(Value::Object(out))
}

/// Median (the mean of the middle two for an even count), minimum and maximum; `None` when
/// there is no number or one is not finite.
fn spread(mut v: Vec<f64>) -> Option<(f64, f64, f64)> {
    if v.is_empty() || v.iter().any(|x| !x.is_finite()) {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    let median = if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    };
    Some((median, v[0], v[v.len() - 1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differing_numbers_become_median_min_and_max() {
        let runs = [
            json!({"rate": 30.0}),
            json!({"rate": 10.0}),
            json!({"rate": 20.0}),
        ];
        assert_eq!(
            summarize(&runs),
            Some(json!({"rate": {"median": 20.0, "min": 10.0, "max": 30.0}}))
        );
    }

    #[test]
    fn an_even_count_takes_the_mean_of_the_middle_two() {
        let runs = [json!(4), json!(1), json!(2), json!(10)];
        assert_eq!(
            summarize(&runs),
            Some(json!({"median": 3.0, "min": 1.0, "max": 10.0}))
        );
    }

    #[test]
    fn figures_equal_in_every_run_stay_as_they_are() {
        let runs = [
            json!({"workload": {"users": 20, "kind": "group"}, "pairs": 4368, "rate": 1}),
            json!({"workload": {"users": 20, "kind": "group"}, "pairs": 4368, "rate": 3}),
        ];
        assert_eq!(
            summarize(&runs),
            Some(json!({
                "workload": {"users": 20, "kind": "group"},
                "pairs": 4368,
                "rate": {"median": 2.0, "min": 1.0, "max": 3.0},
            }))
        );
    }

    #[test]
    fn what_differs_and_is_not_a_number_or_is_missing_is_left_out() {
        let runs = [
            json!({"name": "a", "list": [1], "only_first": 1, "nan": 1.0, "n": {"x": 1}}),
            json!({"name": "b", "list": [2], "n": {"x": 2}, "nan": null}),
        ];
        assert_eq!(
            summarize(&runs),
            Some(json!({"n": {"x": {"median": 1.5, "min": 1.0, "max": 2.0}}}))
        );
    }

    #[test]
    fn nothing_to_summarise_is_none() {
        assert_eq!(summarize(&[]), None);
        assert_eq!(spread(vec![1.0, f64::NAN]), None);
    }
}
