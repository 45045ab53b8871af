//! Swift's output conventions, reproduced so an operator's eyes (and
//! scripts) see the same lines as with Swift's `swift-recon`: the
//! `[name] low: .., high: ..` statistics, UTC timestamps, "N minutes ago",
//! `kB`/`MB` sizes, and Python's `repr` of JSON values for `-v`.

use common::timestamp::Timestamp;
use serde_json::Value;

/// A line of 79 `=`, Swift's separator after every check.
pub const RULE: &str = "===============================================================================";

/// Statistics over the values the hosts reported for one key
/// (Swift's `_gen_stats`); only built when at least one host reported.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub name: String,
    pub low: f64,
    pub high: f64,
    pub total: f64,
    pub average: f64,
    /// Hosts that answered with a value.
    pub reported: usize,
    /// Hosts that answered `null` for the key.
    pub number_none: usize,
    /// `number_none` as a percentage of all answers.
    pub perc_none: f64,
}

/// Swift's `_gen_stats`: `None` when no host reported a value.
pub fn gen_stats(values: &[Option<f64>], name: &str) -> Option<Stats> {
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    if present.is_empty() {
        return None;
    }
    let total: f64 = present.iter().sum();
    let number_none = values.len() - present.len();
    Some(Stats {
        name: name.to_string(),
        low: present.iter().copied().fold(f64::INFINITY, f64::min),
        high: present.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        total,
        average: total / present.len() as f64,
        reported: present.len(),
        number_none,
        perc_none: number_none as f64 * 100.0 / values.len() as f64,
    })
}

/// Swift's `_print_stats` line. `%d` truncates floats toward zero, as
/// Python's does.
pub fn format_stats(s: &Stats) -> String {
    format!(
        "[{}] low: {}, high: {}, avg: {:.1}, total: {}, Failed: {:.1}%, no_result: {}, reported: {}",
        s.name,
        py_int(s.low),
        py_int(s.high),
        s.average,
        py_int(s.total),
        s.perc_none,
        s.number_none,
        s.reported
    )
}

/// Python's `'%d' % x` for a float: truncation toward zero.
pub fn py_int(x: f64) -> i128 {
    x.trunc() as i128
}

/// A JSON value as a number the way Python's arithmetic sees it (`true` is
/// 1); `None` for `null` and for anything that is not a number, which the
/// statistics count as "no result" instead of crashing as Swift would.
pub fn number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

/// Python's truthiness of a JSON value.
pub fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    }
}

/// Swift's `_ptime`: `YYYY-MM-DD HH:MM:SS` in UTC of `timev`, or of now
/// when `timev` is absent or zero (Python's falsy check).
pub fn ptime(timev: Option<f64>) -> String {
    let secs = match timev {
        Some(t) if t != 0.0 => t,
        _ => now(),
    };
    // gmtime truncates; a timestamp out of our range shows as the epoch
    // rather than stopping the report.
    let ts = Timestamp::from_secs_f64(secs.floor().max(0.0)).unwrap_or_else(|_| Timestamp::zero());
    ts.isoformat()[..19].replacen('T', " ", 1)
}

/// Seconds since the epoch, as a float (Python's `time.time()`).
pub fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Swift's `seconds2timeunit`: the largest of seconds, minutes, hours,
/// days that keeps the figure at least 1.
pub fn seconds2timeunit(seconds: f64) -> (f64, &'static str) {
    let mut elapsed = seconds;
    let mut unit = "seconds";
    if elapsed >= 60.0 {
        elapsed /= 60.0;
        unit = "minutes";
        if elapsed >= 60.0 {
            elapsed /= 60.0;
            unit = "hours";
            if elapsed >= 24.0 {
                elapsed /= 24.0;
                unit = "days";
            }
        }
    }
    (elapsed, unit)
}

/// A byte count as Swift's `--human-readable` shows it: decimal units,
/// integer division (`1234567` → `1 MB`).
pub fn size_suffix(size: &PyNum) -> String {
    const SUFFIXES: [&str; 9] = ["bytes", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = size.clone();
    for suffix in SUFFIXES {
        if size.lt(1000) {
            return format!("{} {}", size, suffix);
        }
        size = size.floor_div(1000);
    }
    format!("{} {}", size, SUFFIXES[SUFFIXES.len() - 1])
}

/// A number as Python keeps it: an int stays an int (printed without a
/// decimal point), anything else is a float (printed as `repr`).
#[derive(Debug, Clone, PartialEq)]
pub enum PyNum {
    Int(i128),
    Float(f64),
}

impl PyNum {
    /// The number in a JSON value, if it is one.
    pub fn from_json(v: &Value) -> Option<PyNum> {
        match v {
            Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Some(PyNum::Int(i.into())),
                (None, Some(u)) => Some(PyNum::Int(u.into())),
                _ => n.as_f64().map(PyNum::Float),
            },
            Value::Bool(b) => Some(PyNum::Int(*b as i128)),
            _ => None,
        }
    }

    /// The value as a float.
    pub fn as_f64(&self) -> f64 {
        match self {
            PyNum::Int(i) => *i as f64,
            PyNum::Float(f) => *f,
        }
    }

    /// Python's `+`: int + int stays int.
    pub fn add(&self, other: &PyNum) -> PyNum {
        match (self, other) {
            (PyNum::Int(a), PyNum::Int(b)) => PyNum::Int(a.saturating_add(*b)),
            _ => PyNum::Float(self.as_f64() + other.as_f64()),
        }
    }

    fn lt(&self, n: i128) -> bool {
        match self {
            PyNum::Int(i) => *i < n,
            PyNum::Float(f) => *f < n as f64,
        }
    }

    fn floor_div(&self, n: i128) -> PyNum {
        match self {
            PyNum::Int(i) => PyNum::Int(i.div_euclid(n)),
            PyNum::Float(f) => PyNum::Float((f / n as f64).floor()),
        }
    }
}

impl std::fmt::Display for PyNum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PyNum::Int(i) => write!(f, "{i}"),
            PyNum::Float(x) => f.write_str(&py_float(*x)),
        }
    }
}

/// Python's `str(float)`.
pub fn py_float(x: f64) -> String {
    match ring::pyjson::python_float_repr(x).as_str() {
        "NaN" => "nan".into(),
        "Infinity" => "inf".into(),
        "-Infinity" => "-inf".into(),
        s => s.to_string(),
    }
}

/// Python's `round(x, 2)`: correctly rounded to two decimals.
pub fn round2(x: f64) -> f64 {
    format!("{x:.2}").parse().unwrap_or(x)
}

/// Python's `str()` of a decoded JSON value: strings bare, everything else
/// as `repr` (`None`, `True`, `{'a': 1}`).
pub fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// Python's `repr()` of a decoded JSON value, as Swift's `-v` prints the
/// answers. Object keys come out sorted (our JSON maps keep no order).
pub fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(_) => PyNum::from_json(v).map(|n| n.to_string()).unwrap_or_default(),
        Value::String(s) => py_repr_str(s),
        Value::Array(items) => format!("[{}]", items.iter().map(py_repr).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => {
            format!("{{{}}}", map.iter().map(|(k, v)| format!("{}: {}", py_repr_str(k), py_repr(v))).collect::<Vec<_>>().join(", "))
        }
    }
}

/// Python's `repr(str)`: single quotes unless the text holds a single
/// quote and no double quote.
fn py_repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stats_line_matches_swift() {
        let s = gen_stats(&[Some(1.0), Some(4.0), None, Some(2.5)], "async_pending").unwrap();
        assert_eq!(format_stats(&s), "[async_pending] low: 1, high: 4, avg: 2.5, total: 7, Failed: 25.0%, no_result: 1, reported: 3");
        assert!(gen_stats(&[None, None], "x").is_none());
        assert!(gen_stats(&[], "x").is_none());
    }

    #[test]
    fn times_and_units() {
        assert_eq!(ptime(Some(1_700_000_000.9)), "2023-11-14 22:13:20");
        assert_eq!(seconds2timeunit(30.0), (30.0, "seconds"));
        assert_eq!(seconds2timeunit(90.0), (1.5, "minutes"));
        assert_eq!(seconds2timeunit(7200.0), (2.0, "hours"));
        assert_eq!(seconds2timeunit(172800.0), (2.0, "days"));
    }

    #[test]
    fn sizes_like_python() {
        assert_eq!(size_suffix(&PyNum::Int(999)), "999 bytes");
        assert_eq!(size_suffix(&PyNum::Int(1_234_567)), "1 MB");
        assert_eq!(size_suffix(&PyNum::Float(1500.0)), "1.0 kB");
        assert_eq!(PyNum::Int(3).add(&PyNum::Int(4)).to_string(), "7");
        assert_eq!(PyNum::Int(3).add(&PyNum::Float(0.5)).to_string(), "3.5");
    }

    #[test]
    fn repr_like_python() {
        let v = json!({"a": [1, 2.0, null, true], "b": "it's", "c": {"d": "x\ny"}});
        assert_eq!(py_repr(&v), r#"{'a': [1, 2.0, None, True], 'b': "it's", 'c': {'d': 'x\ny'}}"#);
        assert_eq!(py_str(&json!("abc")), "abc");
        assert_eq!(py_str(&json!(null)), "None");
        assert_eq!(round2(12.345678), 12.35);
        assert_eq!(py_float(5.0), "5.0");
    }
}
