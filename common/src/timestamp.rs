//! Swift timestamps (`swift/common/utils/timestamp.py`) and HTTP dates.
//!
//! A [`Timestamp`] is a time in seconds since the Unix epoch with a precision
//! of 10 microseconds ("ticks"), plus an offset that orders writes sharing the
//! same time. Its string forms are the ones Swift writes into file names,
//! `X-Timestamp` headers and database rows, which are compared as strings:
//!
//! * normal: `%016.05f`, e.g. `1700000000.12346`, `0000000005.00000`;
//! * internal: normal, then `_%016x` offset when the offset is non-zero,
//!   e.g. `1700000000.12345_0000000000000003`;
//! * short: normal, then `_%x` offset when the offset is non-zero.
//!
//! The module also has Swift's `encode_timestamps`/`decode_timestamps` (the
//! compact triple stored in container rows and `.meta` names) and RFC 1123
//! HTTP dates for `Last-Modified`, `If-Modified-Since` and friends.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

/// Ticks per second: one tick is 10 microseconds (Swift's `PRECISION`).
pub const TICKS_PER_SEC: u64 = 100_000;

/// The largest tick count a timestamp may hold (`9999999999.99999`); Swift
/// rejects timestamps of `10000000000` seconds or more so the normal form
/// keeps its fixed width of 16 characters.
pub const MAX_RAW: u64 = 999_999_999_999_999;

/// Seconds in a day, for the calendar arithmetic.
const SECS_PER_DAY: u64 = 86_400;

/// Why a timestamp could not be parsed or built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    /// The input string was empty.
    #[error("empty timestamp")]
    Empty,
    /// The input is not a number in any of Swift's timestamp forms.
    #[error("invalid timestamp {value:?}: {reason}")]
    Invalid {
        /// The rejected input.
        value: String,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// The time is before the Unix epoch.
    #[error("timestamp cannot be negative: {value:?}")]
    Negative {
        /// The rejected input.
        value: String,
    },
    /// The time is `10000000000` seconds or later.
    #[error("timestamp too large: {value:?}")]
    TooLarge {
        /// The rejected input.
        value: String,
    },
    /// Adding to the offset would pass the largest 16-hex-digit value.
    #[error("timestamp offset overflow")]
    OffsetOverflow,
}

/// A Swift timestamp: time in 10-microsecond ticks since the Unix epoch plus
/// an offset.
///
/// Ordering is by time, then offset, which matches the string ordering of
/// the internal form. `Display` writes the internal form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    /// Ticks of 10 µs since the epoch; at most [`MAX_RAW`].
    raw: u64,
    /// Offset ordering writes that share a time; 0 for client requests.
    offset: u64,
}

impl Timestamp {
    /// The smallest timestamp, `0000000000.00000`.
    pub const ZERO: Timestamp = Timestamp { raw: 0, offset: 0 };

    /// The current time, rounded to the nearest tick, with offset 0.
    pub fn now() -> Timestamp {
        let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let raw = (since.as_nanos() + 5_000) / 10_000;
        Timestamp { raw: u64::try_from(raw).unwrap_or(MAX_RAW).min(MAX_RAW), offset: 0 }
    }

    /// The smallest timestamp, `0000000000.00000`.
    pub fn zero() -> Timestamp {
        Timestamp::ZERO
    }

    /// Builds a timestamp from seconds since the epoch, rounded to the nearest
    /// tick (ties to even, as Python's `round`), with offset 0.
    pub fn from_secs_f64(secs: f64) -> Result<Timestamp, TimestampError> {
        if !secs.is_finite() {
            return Err(TimestampError::Invalid { value: secs.to_string(), reason: "not a finite number" });
        }
        // Same float arithmetic as Swift: round(float / PRECISION).
        let raw = (secs / 1e-5).round_ties_even();
        if raw < 0.0 {
            return Err(TimestampError::Negative { value: secs.to_string() });
        }
        if raw > MAX_RAW as f64 {
            return Err(TimestampError::TooLarge { value: secs.to_string() });
        }
        Ok(Timestamp { raw: raw as u64, offset: 0 })
    }

    /// Builds a timestamp from ticks (10 µs units) and an offset.
    pub fn from_raw(raw: u64, offset: u64) -> Result<Timestamp, TimestampError> {
        if raw > MAX_RAW {
            return Err(TimestampError::TooLarge { value: format!("{raw} ticks") });
        }
        Ok(Timestamp { raw, offset })
    }

    /// Parses any of Swift's timestamp strings: `1700000000.12345`,
    /// `1700000000`, `1700000000.123456789` (rounded to the nearest tick),
    /// `1700000000.12345_0000000000000003` (internal form) and
    /// `1700000000.12345_3` (short form; at most 16 hex digits).
    pub fn parse(value: &str) -> Result<Timestamp, TimestampError> {
        if value.is_empty() {
            return Err(TimestampError::Empty);
        }
        let invalid = |reason| TimestampError::Invalid { value: value.to_string(), reason };
        let (float_part, hex_part) = value.split_once('_').unwrap_or((value, ""));
        if hex_part.contains('_') {
            return Err(invalid("more than one '_'"));
        }
        if hex_part.len() > 16 {
            return Err(invalid("hex part too long"));
        }
        if !hex_part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid("offset is not hexadecimal"));
        }
        let offset =
            if hex_part.is_empty() { 0 } else { u64::from_str_radix(hex_part, 16).map_err(|_| invalid("offset is not hexadecimal"))? };
        if !is_decimal_number(float_part) {
            return Err(invalid("not a number"));
        }
        let secs: f64 = float_part.parse().map_err(|_| invalid("not a number"))?;
        let ts = Timestamp::from_secs_f64(secs).map_err(|e| match e {
            TimestampError::Negative { .. } => TimestampError::Negative { value: value.to_string() },
            TimestampError::TooLarge { .. } => TimestampError::TooLarge { value: value.to_string() },
            other => other,
        })?;
        Ok(ts.with_offset(offset))
    }

    /// Parses the ISO form used in listings (`2023-11-14T22:13:20.123460`,
    /// 1 to 6 fractional digits, no zone, UTC), as Swift's
    /// `Timestamp.from_isoformat`.
    pub fn from_isoformat(value: &str) -> Result<Timestamp, TimestampError> {
        let invalid = |reason| TimestampError::Invalid { value: value.to_string(), reason };
        let (date, time) = value.split_once('T').ok_or_else(|| invalid("expected YYYY-MM-DDTHH:MM:SS.ffffff"))?;
        let mut date_parts = date.splitn(3, '-');
        let (Some(y), Some(m), Some(d)) = (date_parts.next(), date_parts.next(), date_parts.next()) else {
            return Err(invalid("expected YYYY-MM-DD date"));
        };
        let (hms, frac) = time.split_once('.').ok_or_else(|| invalid("missing fractional seconds"))?;
        let mut time_parts = hms.splitn(3, ':');
        let (Some(hh), Some(mm), Some(ss)) = (time_parts.next(), time_parts.next(), time_parts.next()) else {
            return Err(invalid("expected HH:MM:SS time"));
        };
        let num = |s: &str| -> Result<i64, TimestampError> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 4 {
                return Err(invalid("bad number"));
            }
            s.parse().map_err(|_| invalid("bad number"))
        };
        let (year, month, day) = (num(y)?, num(m)?, num(d)?);
        let (hour, minute, second) = (num(hh)?, num(mm)?, num(ss)?);
        if frac.is_empty() || frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("fractional seconds must be 1 to 6 digits"));
        }
        let micros: i64 = format!("{frac:0<6}").parse().map_err(|_| invalid("bad number"))?;
        if !valid_civil(year, month, day) || hour > 23 || minute > 59 || second > 59 {
            return Err(invalid("date or time out of range"));
        }
        let secs = days_from_civil(year, month, day) * SECS_PER_DAY as i64 + hour * 3600 + minute * 60 + second;
        // Swift goes through a float of total seconds; do the same so the
        // rounding to ticks agrees.
        let total_micros = secs as i128 * 1_000_000 + micros as i128;
        Timestamp::from_secs_f64(total_micros as f64 / 1e6)
    }

    /// The time in ticks of 10 µs since the epoch (Swift's `raw`).
    pub fn raw(&self) -> u64 {
        self.raw
    }

    /// The offset (Swift's `offset`); 0 for timestamps made from a clock or a
    /// client header.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The same time with the offset replaced by `offset`.
    pub fn with_offset(self, offset: u64) -> Timestamp {
        Timestamp { offset, ..self }
    }

    /// The same time with `increment` added to the offset (Swift's
    /// `increment_offset`).
    pub fn increment_offset(self, increment: u64) -> Result<Timestamp, TimestampError> {
        let offset = self.offset.checked_add(increment).ok_or(TimestampError::OffsetOverflow)?;
        Ok(self.with_offset(offset))
    }

    /// The timestamp `delta` ticks later (or earlier when negative), keeping
    /// the offset, as Swift's `Timestamp(ts, delta=...)`.
    pub fn with_delta(self, delta: i64) -> Result<Timestamp, TimestampError> {
        let raw = self.raw as i128 + delta as i128;
        if raw < 0 {
            return Err(TimestampError::Negative { value: format!("{} {delta:+} ticks", self.normal()) });
        }
        if raw > MAX_RAW as i128 {
            return Err(TimestampError::TooLarge { value: format!("{} {delta:+} ticks", self.normal()) });
        }
        Ok(Timestamp { raw: raw as u64, offset: self.offset })
    }

    /// The time as float seconds since the epoch.
    pub fn as_secs_f64(&self) -> f64 {
        self.raw as f64 / TICKS_PER_SEC as f64
    }

    /// Whole seconds since the epoch, rounded down.
    pub fn secs(&self) -> u64 {
        self.raw / TICKS_PER_SEC
    }

    /// Seconds since the epoch rounded up: the second-precision
    /// `Last-Modified` time of a resource (Swift's `ceil()`).
    pub fn ceil_secs(&self) -> u64 {
        self.raw.div_ceil(TICKS_PER_SEC)
    }

    /// The normal form `%016.05f`, e.g. `1700000000.12345`. The offset is
    /// not shown.
    pub fn normal(&self) -> String {
        format!("{:010}.{:05}", self.raw / TICKS_PER_SEC, self.raw % TICKS_PER_SEC)
    }

    /// The internal form: the normal form, followed by `_` and the offset as
    /// 16 lowercase hex digits when the offset is non-zero. Sorting these
    /// strings sorts the timestamps.
    pub fn internal(&self) -> String {
        if self.offset == 0 {
            self.normal()
        } else {
            format!("{}_{:016x}", self.normal(), self.offset)
        }
    }

    /// The short form: like [`internal`](Self::internal) but the offset is
    /// written without padding (`_3`).
    pub fn short(&self) -> String {
        if self.offset == 0 {
            self.normal()
        } else {
            format!("{}_{:x}", self.normal(), self.offset)
        }
    }

    /// The ISO form used in listings, in UTC with 6 decimals and no zone:
    /// `2023-11-14T22:13:20.123460`. The offset is not shown.
    pub fn isoformat(&self) -> String {
        let secs = self.raw / TICKS_PER_SEC;
        let micros = (self.raw % TICKS_PER_SEC) * 10;
        let (year, month, day) = civil_from_days((secs / SECS_PER_DAY) as i64);
        let rem = secs % SECS_PER_DAY;
        format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}", rem / 3600, rem / 60 % 60, rem % 60)
    }

    /// The "inverted" timestamp (Swift's `~ts`), which sorts in the reverse
    /// order of the original; used to list newest-first.
    pub fn invert(&self) -> Timestamp {
        if self.offset == 0 {
            Timestamp { raw: MAX_RAW - self.raw, offset: 0 }
        } else {
            // raw is at least 1 below MAX_RAW here only if raw < MAX_RAW; at
            // MAX_RAW with an offset Swift would fail, we saturate at zero.
            Timestamp { raw: (MAX_RAW - self.raw).saturating_sub(1), offset: u64::MAX - self.offset + 1 }
        }
    }
}

impl fmt::Display for Timestamp {
    /// Writes the internal form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.internal())
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timestamp::parse(s)
    }
}

/// True when `s` is a plain decimal number as Python's `float()` reads it:
/// optional sign, digits with an optional point, optional exponent.
/// Rejects `inf`, `nan`, whitespace and `0x` forms.
fn is_decimal_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let mut digits = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
        digits += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    i == b.len()
}

/// Encodes up to three timestamps as Swift's `encode_timestamps`:
/// `<t1 short form>[<+|-><hex ticks t2-t1>[<+|-><hex ticks t3-t2>]]`.
///
/// The deltas are written only when one of them is non-zero, so equal
/// timestamps encode as just `t1`. Offsets of `t2` and `t3` are not kept.
/// Example: `1700000000.10000+186a0+0`.
pub fn encode_timestamps(t1: Timestamp, t2: Option<Timestamp>, t3: Option<Timestamp>) -> String {
    encode(t1, t2, t3, false)
}

/// As [`encode_timestamps`] with Swift's `explicit=True`: the deltas of the
/// given `t2`/`t3` are always written, even when zero (used in `.meta` file
/// names).
pub fn encode_timestamps_explicit(t1: Timestamp, t2: Option<Timestamp>, t3: Option<Timestamp>) -> String {
    encode(t1, t2, t3, true)
}

fn encode(t1: Timestamp, t2: Option<Timestamp>, t3: Option<Timestamp>, explicit: bool) -> String {
    let mut out = t1.short();
    let Some(t2) = t2 else {
        return out;
    };
    let d2 = t2.raw as i64 - t1.raw as i64;
    let d3 = t3.map(|t3| t3.raw as i64 - t2.raw as i64);
    if explicit || d2 != 0 || d3.is_some_and(|d| d != 0) {
        push_signed_hex(&mut out, d2);
        if let Some(d3) = d3 {
            push_signed_hex(&mut out, d3);
        }
    }
    out
}

/// Appends `delta` as Python's `'{:+x}'` does: `+186a0`, `-a`, `+0`.
fn push_signed_hex(out: &mut String, delta: i64) {
    if delta < 0 {
        out.push_str(&format!("-{:x}", delta.unsigned_abs()));
    } else {
        out.push_str(&format!("+{delta:x}"));
    }
}

/// Decodes a string made by [`encode_timestamps`] into its three timestamps;
/// a missing `t2` equals `t1`, a missing `t3` equals `t2` (Swift's
/// `decode_timestamps` with `explicit=False`).
pub fn decode_timestamps(encoded: &str) -> Result<(Timestamp, Timestamp, Timestamp), TimestampError> {
    let (t1, t2, t3) = decode_timestamps_explicit(encoded)?;
    let t2 = t2.unwrap_or(t1);
    let t3 = t3.unwrap_or(t2);
    Ok((t1, t2, t3))
}

/// Decodes a string made by [`encode_timestamps`], returning `None` for the
/// timestamps that are not written in it (Swift's `explicit=True`).
///
/// A zero delta yields the previous timestamp itself, offset included; a
/// non-zero delta yields a timestamp without offset.
pub fn decode_timestamps_explicit(encoded: &str) -> Result<(Timestamp, Option<Timestamp>, Option<Timestamp>), TimestampError> {
    // Split at every '+' or '-', remembering each part's sign.
    let mut parts: Vec<(i64, &str)> = Vec::new();
    let mut start = 0;
    let mut sign = 1;
    for (i, c) in encoded.char_indices() {
        if c == '+' || c == '-' {
            parts.push((sign, &encoded[start..i]));
            sign = if c == '+' { 1 } else { -1 };
            start = i + 1;
        }
    }
    parts.push((sign, &encoded[start..]));

    let t1 = Timestamp::parse(parts[0].1)?;
    let delta = |(sign, hex): (i64, &str)| -> Result<i64, TimestampError> {
        let invalid = || TimestampError::Invalid { value: encoded.to_string(), reason: "bad hex delta" };
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid());
        }
        let magnitude = i64::from_str_radix(hex, 16).map_err(|_| invalid())?;
        Ok(sign * magnitude)
    };
    let step = |prev: Timestamp, d: i64| -> Result<Timestamp, TimestampError> {
        if d == 0 {
            Ok(prev)
        } else {
            prev.with_offset(0).with_delta(d)
        }
    };
    let t2 = match parts.get(1) {
        Some(&p) => Some(step(t1, delta(p)?)?),
        None => None,
    };
    let t3 = match (t2, parts.get(2)) {
        (Some(t2), Some(&p)) => Some(step(t2, delta(p)?)?),
        _ => None,
    };
    Ok((t1, t2, t3))
}

const DAY_NAMES: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTH_NAMES: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const LONG_MONTH_NAMES: [&str; 12] =
    ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"];

/// Formats seconds since the epoch as an RFC 1123 HTTP date,
/// e.g. `Tue, 14 Nov 2023 22:13:21 GMT`.
pub fn http_date(secs: u64) -> String {
    let days = secs / SECS_PER_DAY;
    let rem = secs % SECS_PER_DAY;
    let (year, month, day) = civil_from_days(days as i64);
    // 1970-01-01 was a Thursday.
    let weekday = DAY_NAMES[((days + 4) % 7) as usize];
    format!(
        "{weekday}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        MONTH_NAMES[(month - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Formats seconds since the epoch as Swift's access-log time,
/// e.g. `14/Nov/2023:22:13:21 +0000`.
pub fn log_date(secs: u64) -> String {
    let days = secs / SECS_PER_DAY;
    let rem = secs % SECS_PER_DAY;
    let (year, month, day) = civil_from_days(days as i64);
    format!("{day:02}/{}/{year:04}:{:02}:{:02}:{:02} +0000", MONTH_NAMES[(month - 1) as usize], rem / 3600, rem / 60 % 60, rem % 60)
}

/// Parses an HTTP date in RFC 1123 (`Tue, 14 Nov 2023 22:13:21 GMT`),
/// RFC 850 (`Tuesday, 14-Nov-23 22:13:21 GMT`) or asctime
/// (`Tue Nov 14 22:13:21 2023`) form into seconds since the epoch.
///
/// Follows Python's `email.utils.parsedate`, which Swift uses for
/// `If-Modified-Since` and `If-Unmodified-Since`: the weekday is not checked,
/// two-digit years above 68 are 19xx and the others 20xx, and any time zone
/// is **ignored** (the time is read as UTC, as Swift does). Dates before the
/// epoch give 0. Returns `None` when the text is not a date.
pub fn parse_http_date(value: &str) -> Option<u64> {
    let mut data: Vec<String> = value.split_whitespace().map(str::to_string).collect();
    if data.is_empty() {
        return None;
    }
    let first = data[0].to_ascii_lowercase();
    let is_day_name = DAY_NAMES.iter().any(|d| d.eq_ignore_ascii_case(&first));
    if first.ends_with(',') || is_day_name {
        data.remove(0);
    } else if let Some(i) = data[0].rfind(',') {
        data[0] = data[0][i + 1..].to_string();
    }
    if data.len() == 3 {
        // RFC 850: 14-Nov-23 22:13:21 GMT
        let stuff: Vec<String> = data[0].split('-').map(str::to_string).collect();
        if stuff.len() == 3 {
            let rest = data.split_off(1);
            data = stuff;
            data.extend(rest);
        }
    }
    if data.len() == 4 {
        let s = data[3].clone();
        let i = s.find('+').or_else(|| s.find('-'));
        match i {
            Some(i) if i > 0 => {
                data[3] = s[..i].to_string();
                data.push(s[i..].to_string());
            }
            _ => data.push(String::new()),
        }
    }
    if data.len() < 5 {
        return None;
    }
    let mut dd = data[0].clone();
    let mut mm = data[1].to_ascii_lowercase();
    let mut yy = data[2].clone();
    let mut tm = data[3].clone();
    let mut tz = data[4].clone();
    if dd.is_empty() || mm.is_empty() || yy.is_empty() {
        return None;
    }
    let month_of = |name: &str| -> Option<i64> {
        MONTH_NAMES
            .iter()
            .position(|m| m.eq_ignore_ascii_case(name))
            .or_else(|| LONG_MONTH_NAMES.iter().position(|m| *m == name))
            .map(|i| i as i64 + 1)
    };
    let month = match month_of(&mm) {
        Some(m) => m,
        None => {
            // asctime: the month comes first.
            std::mem::swap(&mut dd, &mut mm);
            mm = mm.to_ascii_lowercase();
            month_of(&mm)?
        }
    };
    if dd.ends_with(',') {
        dd.pop();
    }
    if yy.find(':').is_some_and(|i| i > 0) {
        std::mem::swap(&mut yy, &mut tm);
    }
    if yy.ends_with(',') {
        yy.pop();
    }
    if yy.is_empty() {
        return None;
    }
    if !yy.as_bytes()[0].is_ascii_digit() {
        std::mem::swap(&mut yy, &mut tz);
    }
    let _zone_is_ignored = tz;
    if tm.ends_with(',') {
        tm.pop();
    }
    let mut hms: Vec<&str> = tm.split(':').collect();
    if hms.len() == 1 && tm.contains('.') {
        // Some non-compliant clients separate time fields with '.'.
        hms = tm.split('.').collect();
    }
    let (hh, mi, ss) = match hms.as_slice() {
        [h, m] => (*h, *m, "0"),
        [h, m, s] => (*h, *m, *s),
        _ => return None,
    };
    let int = |s: &str| s.parse::<i64>().ok();
    let mut year = int(&yy)?;
    let day = int(&dd)?;
    let (hour, minute, second) = (int(hh)?, int(mi)?, int(ss)?);
    if year < 100 {
        year += if year > 68 { 1900 } else { 2000 };
    }
    // Swift builds a datetime from the fields, which validates them.
    if !(1..=9999).contains(&year)
        || !valid_civil(year, month, day)
        || !(0..24).contains(&hour)
        || !(0..60).contains(&minute)
        || !(0..60).contains(&second)
    {
        return None;
    }
    let secs = days_from_civil(year, month, day) * SECS_PER_DAY as i64 + hour * 3600 + minute * 60 + second;
    Some(secs.max(0) as u64)
}

/// True when `year-month-day` is a real date of the proleptic Gregorian
/// calendar.
fn valid_civil(year: i64, month: i64, day: i64) -> bool {
    if !(1..=12).contains(&month) || day < 1 {
        return false;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    day <= days_in_month
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date `(year, month, day)` of a day number counted
/// from 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The latest `X-Delete-At` Swift stores (`normalize_delete_at_timestamp`
/// clamps to ten digits).
pub const MAX_DELETE_AT: i64 = 9_999_999_999;

/// An `X-Delete-At` or `X-Delete-After` value read as Python's `int()`
/// reads it (surrounding whitespace, a sign, digits with single `_`
/// between them, any number of them), saturated to the `i64` range so
/// `"1" * 100` is a (far-future) integer as in Swift. `None` for anything
/// else: a fraction, an exponent, `inf`, an empty string.
pub fn parse_int_header(value: &str) -> Option<i64> {
    let v = value.trim();
    let (negative, digits) = match v.as_bytes().first()? {
        b'-' => (true, &v[1..]),
        b'+' => (false, &v[1..]),
        _ => (false, v),
    };
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') || digits.contains("__") {
        return None;
    }
    let mut n: i64 = 0;
    for b in digits.bytes().filter(|b| *b != b'_') {
        if !b.is_ascii_digit() {
            return None;
        }
        let d = i64::from(b - b'0');
        n = n.saturating_mul(10).saturating_add(d);
    }
    Some(if negative { -n } else { n })
}

#[cfg(test)]
mod tests {

    #[test]
    fn int_headers_read_like_python_int() {
        assert_eq!(parse_int_header(" 1700000000 "), Some(1_700_000_000));
        assert_eq!(parse_int_header("+5"), Some(5));
        assert_eq!(parse_int_header("-5"), Some(-5));
        assert_eq!(parse_int_header("1_000"), Some(1000));
        assert_eq!(parse_int_header(&"1".repeat(100)), Some(i64::MAX));
        for bad in ["", " ", "1.5", "1e9", "inf", "nan", "_1", "1_", "1__0", "0x10", "12abc", "+", "--1"] {
            assert_eq!(parse_int_header(bad), None, "{bad:?}");
        }
    }
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn normal_form_is_fixed_width() {
        assert_eq!(ts("5").normal(), "0000000005.00000");
        assert_eq!(ts("1700000000.12345").normal(), "1700000000.12345");
        assert_eq!(ts("1700000000").normal(), "1700000000.00000");
        assert_eq!(ts("0").normal(), "0000000000.00000");
        assert_eq!(ts("9999999999.99999").normal(), "9999999999.99999");
        assert_eq!(Timestamp::ZERO.internal(), "0000000000.00000");
    }

    #[test]
    fn extra_decimals_round_to_ticks() {
        assert_eq!(ts("1700000000.123456789").normal(), "1700000000.12346");
        assert_eq!(ts("1700000000.123454").normal(), "1700000000.12345");
        assert_eq!(ts("1.000001").normal(), "0000000001.00000");
        // Values that round up past the last tick of a second.
        assert_eq!(ts("1.999999").normal(), "0000000002.00000");
    }

    #[test]
    fn other_float_spellings_are_accepted() {
        assert_eq!(ts("1.7e9").normal(), "1700000000.00000");
        assert_eq!(ts(".5").normal(), "0000000000.50000");
        assert_eq!(ts("5.").normal(), "0000000005.00000");
        assert_eq!(ts("+5").normal(), "0000000005.00000");
        assert_eq!(ts("-0").normal(), "0000000000.00000");
    }

    #[test]
    fn internal_and_short_forms() {
        let t = ts("1700000000.12345_0000000000000003");
        assert_eq!(t.offset(), 3);
        assert_eq!(t.raw(), 170_000_000_012_345);
        assert_eq!(t.internal(), "1700000000.12345_0000000000000003");
        assert_eq!(t.short(), "1700000000.12345_3");
        assert_eq!(t.normal(), "1700000000.12345");
        assert_eq!(t.to_string(), "1700000000.12345_0000000000000003");
        assert_eq!(ts("1700000000.12345_3"), t);
        assert_eq!(ts("1700000000.12345_ff").offset(), 255);
        assert_eq!(ts("1700000000.12345_ffffffffffffffff").offset(), u64::MAX);
        // An offset of zero is not shown.
        let z = ts("1700000000.12345_0000000000000000");
        assert_eq!(z.internal(), "1700000000.12345");
        assert_eq!(z.short(), "1700000000.12345");
        assert_eq!(ts("1700000000.12345_"), z);
    }

    #[test]
    fn round_trips() {
        for s in [
            "0000000000.00000",
            "1700000000.12345",
            "1700000000.12345_0000000000000003",
            "9999999999.99999_ffffffffffffffff",
            "0000000001.00001",
        ] {
            assert_eq!(ts(s).internal(), s);
            assert_eq!(ts(&ts(s).short()), ts(s));
        }
        let now = Timestamp::now();
        assert_eq!(ts(&now.internal()), now);
        assert_eq!(Timestamp::from_isoformat(&now.isoformat()).unwrap(), now);
    }

    #[test]
    fn garbage_is_rejected() {
        assert_eq!(Timestamp::parse(""), Err(TimestampError::Empty));
        for bad in ["abc", "1.2.3", "1_2_3", " 5", "5 ", "inf", "nan", "0x10", ".", "1e", "1.5_xyz", "1.5_00000000000000001", "_1"] {
            assert!(matches!(Timestamp::parse(bad), Err(TimestampError::Invalid { .. })), "{bad:?} should be invalid");
        }
        assert!(matches!(Timestamp::parse("-1"), Err(TimestampError::Negative { .. })));
        assert!(matches!(Timestamp::parse("10000000000"), Err(TimestampError::TooLarge { .. })));
        assert!(matches!(Timestamp::parse("9999999999.999999"), Err(TimestampError::TooLarge { .. })));
        let msg = Timestamp::parse("abc").unwrap_err().to_string();
        assert_eq!(msg, "invalid timestamp \"abc\": not a number");
    }

    #[test]
    fn ordering_is_time_then_offset() {
        let a = ts("1700000000.12345");
        let b = ts("1700000000.12345_0000000000000001");
        let c = ts("1700000000.12346");
        assert!(a < b && b < c);
        let mut strings = [c, a, b].map(|t| t.internal());
        strings.sort();
        assert_eq!(strings, [a, b, c].map(|t| t.internal()));
    }

    #[test]
    fn isoformat_matches_swift() {
        assert_eq!(ts("1700000000.12346").isoformat(), "2023-11-14T22:13:20.123460");
        assert_eq!(ts("0").isoformat(), "1970-01-01T00:00:00.000000");
        assert_eq!(ts("951782400").isoformat(), "2000-02-29T00:00:00.000000");
        assert_eq!(ts("9999999999.99999").isoformat(), "2286-11-20T17:46:39.999990");
        assert_eq!(Timestamp::from_isoformat("2023-11-14T22:13:20.123460").unwrap(), ts("1700000000.12346"));
        assert_eq!(Timestamp::from_isoformat("2023-11-14T22:13:20.5").unwrap(), ts("1700000000.5"));
        assert!(Timestamp::from_isoformat("2023-02-30T00:00:00.0").is_err());
        assert!(Timestamp::from_isoformat("2023-11-14 22:13:20.1").is_err());
    }

    #[test]
    fn ceil_for_last_modified() {
        assert_eq!(ts("1700000000.12345").ceil_secs(), 1_700_000_001);
        assert_eq!(ts("1700000000").ceil_secs(), 1_700_000_000);
        assert_eq!(ts("1700000000.00001").ceil_secs(), 1_700_000_001);
        assert_eq!(ts("1700000000.99999").secs(), 1_700_000_000);
    }

    #[test]
    fn from_secs_f64_rounds_like_swift() {
        let t = Timestamp::from_secs_f64(1_700_000_000.123_456).unwrap();
        assert_eq!(t.normal(), "1700000000.12346");
        assert!(Timestamp::from_secs_f64(f64::NAN).is_err());
        assert!(Timestamp::from_secs_f64(f64::INFINITY).is_err());
        assert!(matches!(Timestamp::from_secs_f64(-1.0), Err(TimestampError::Negative { .. })));
    }

    #[test]
    fn offsets_and_deltas() {
        let t = ts("1700000000.12345");
        assert_eq!(t.with_offset(2).internal(), "1700000000.12345_0000000000000002");
        assert_eq!(t.increment_offset(1).unwrap().offset(), 1);
        assert_eq!(t.with_offset(u64::MAX).increment_offset(1), Err(TimestampError::OffsetOverflow));
        assert_eq!(t.with_delta(5).unwrap().normal(), "1700000000.12350");
        assert_eq!(t.with_delta(-5).unwrap().normal(), "1700000000.12340");
        assert!(Timestamp::ZERO.with_delta(-1).is_err());
        assert!(Timestamp::from_raw(MAX_RAW + 1, 0).is_err());
    }

    #[test]
    fn invert_reverses_order() {
        let a = ts("1700000000.12345");
        let b = ts("1700000000.12345_0000000000000001");
        let c = ts("1700000000.12346");
        assert!(a.invert() > b.invert() && b.invert() > c.invert());
        assert_eq!(Timestamp::ZERO.invert().normal(), "9999999999.99999");
        assert_eq!(b.invert().internal(), "8299999999.87653_ffffffffffffffff");
    }

    #[test]
    fn encode_timestamps_like_swift() {
        let t1 = ts("1700000000.10000");
        let t2 = ts("1700000001.10000");
        assert_eq!(encode_timestamps(t1, None, None), "1700000000.10000");
        assert_eq!(encode_timestamps(t1, Some(t1), Some(t1)), "1700000000.10000");
        assert_eq!(encode_timestamps(t1, Some(t2), Some(t2)), "1700000000.10000+186a0+0");
        assert_eq!(encode_timestamps(t1, Some(t2), None), "1700000000.10000+186a0");
        assert_eq!(encode_timestamps(t2, Some(t1), Some(t2)), "1700000001.10000-186a0+186a0");
        assert_eq!(encode_timestamps(t1, Some(t1), Some(t2)), "1700000000.10000+0+186a0");
        let t1o = t1.with_offset(3);
        assert_eq!(encode_timestamps(t1o, Some(t2), Some(t2)), "1700000000.10000_3+186a0+0");
        assert_eq!(encode_timestamps_explicit(t1, Some(t1), None), "1700000000.10000+0");
    }

    #[test]
    fn decode_timestamps_like_swift() {
        let t1 = ts("1700000000.10000");
        let t2 = ts("1700000001.10000");
        assert_eq!(decode_timestamps("1700000000.10000+186a0+0").unwrap(), (t1, t2, t2));
        assert_eq!(decode_timestamps("1700000000.10000").unwrap(), (t1, t1, t1));
        assert_eq!(decode_timestamps("1700000001.10000-186a0+186a0").unwrap(), (t2, t1, t2));
        // A zero delta keeps t1's offset; a non-zero one drops it.
        let t1o = t1.with_offset(3);
        assert_eq!(decode_timestamps("1700000000.10000_3+0+186a0").unwrap(), (t1o, t1o, t2));
        assert_eq!(decode_timestamps_explicit("1700000000.10000").unwrap(), (t1, None, None));
        assert_eq!(decode_timestamps_explicit("1700000000.10000+0").unwrap(), (t1, Some(t1), None));
        // Round trips; t2/t3 lose their offsets unless equal in time to
        // the timestamp before them.
        for (a, b, c) in [(t1, t2, t2), (t2, t1, t1), (t1o, t1, t2), (t1, t1, t1)] {
            let encoded = encode_timestamps(a, Some(b), Some(c));
            let (d1, d2, d3) = decode_timestamps(&encoded).unwrap();
            assert_eq!(d1, a);
            assert_eq!((d2.raw(), d3.raw()), (b.raw(), c.raw()), "{encoded}");
        }
        assert_eq!(decode_timestamps("1700000000.10000_3+186a0-186a0").unwrap(), (t1o, t2, t1));
        assert!(decode_timestamps("").is_err());
        assert!(decode_timestamps("1700000000.10000+").is_err());
        assert!(decode_timestamps("1700000000.10000+xyz").is_err());
        assert!(decode_timestamps("0000000000.00001-ff").is_err());
    }

    #[test]
    fn http_date_format() {
        assert_eq!(http_date(1_700_000_001), "Tue, 14 Nov 2023 22:13:21 GMT");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(http_date(ts("1700000000.12345").ceil_secs()), "Tue, 14 Nov 2023 22:13:21 GMT");
    }

    #[test]
    fn http_date_parse_all_three_forms() {
        let want = Some(1_700_000_001);
        assert_eq!(parse_http_date("Tue, 14 Nov 2023 22:13:21 GMT"), want);
        assert_eq!(parse_http_date("Tuesday, 14-Nov-23 22:13:21 GMT"), want);
        assert_eq!(parse_http_date("Tue Nov 14 22:13:21 2023"), want);
        assert_eq!(parse_http_date("14 Nov 2023 22:13:21 GMT"), want);
        assert_eq!(parse_http_date("tue, 14 nov 2023 22:13:21 gmt"), want);
        // Swift ignores the zone.
        assert_eq!(parse_http_date("Tue, 14 Nov 2023 22:13:21 +0100"), want);
        assert_eq!(parse_http_date("Tue, 14 Nov 2023 22:13 GMT"), Some(1_699_999_980));
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(parse_http_date("Mon, 01 Jan 1960 00:00:00 GMT"), Some(0));
        for s in 0..3 {
            let secs = 1_600_000_000 + s * 86_399 * 37;
            assert_eq!(parse_http_date(&http_date(secs)), Some(secs));
        }
    }

    #[test]
    fn http_date_parse_rejects_garbage() {
        for bad in [
            "",
            "garbage",
            "Tue, 14 Foo 2023 22:13:21 GMT",
            "Tue, 30 Feb 2023 22:13:21 GMT",
            "Tue, 14 Nov 2023 25:13:21 GMT",
            "Tue, 14 Nov 2023 22:13:60 GMT",
            "Tue, 14 Nov 2023",
            "Tue, xx Nov 2023 22:13:21 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn calendar_round_trip() {
        for days in [-719_468, -1, 0, 1, 59, 365, 10_957, 19_675, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert!(valid_civil(y, m, d));
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
