//! Synapse-style human units in the config: sizes like "50M" and durations like "5m".

use std::{fmt, time::Duration};

use serde::{Deserialize, Deserializer, de};

/// A size in bytes, written as an integer or with a K/M/G suffix (powers of 1024), as in Synapse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

/// A duration, written as milliseconds or with an s/m/h/d/w/y suffix, as in Synapse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

fn parse_with_suffix(s: &str, units: &[(char, u64)]) -> Option<u64> {
    let s = s.trim();
    let last = s.chars().last()?;
    let (num, mult) = match units.iter().find(|(c, _)| c.eq_ignore_ascii_case(&last)) {
        Some((_, m)) => (&s[..s.len() - last.len_utf8()], *m),
        None => (s, 1),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mult)
}

impl ByteSize {
    pub fn parse(s: &str) -> Option<Self> {
        parse_with_suffix(s, &[('K', 1 << 10), ('M', 1 << 20), ('G', 1 << 30)]).map(ByteSize)
    }
}

impl HumanDuration {
    pub fn parse(s: &str) -> Option<Self> {
        const S: u64 = 1000;
        parse_with_suffix(
            s,
            &[('s', S), ('m', 60 * S), ('h', 3600 * S), ('d', 86_400 * S), ('w', 604_800 * S), ('y', 31_536_000 * S)],
        )
        .map(|ms| HumanDuration(Duration::from_millis(ms)))
    }
}

struct Visitor<T>(fn(&str) -> Option<T>, &'static str);

impl<T> de::Visitor<'_> for Visitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.1)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        (self.0)(&v.to_string()).ok_or_else(|| E::custom(format!("expected {}", self.1)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        if v < 0 {
            return Err(E::custom(format!("expected {}, not a negative number", self.1)));
        }
        self.visit_u64(v as u64)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.0)(v).ok_or_else(|| E::custom(format!("`{v}` is not {}", self.1)))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Visitor(ByteSize::parse, "a size like 50M, 512K or a number of bytes"))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Visitor(HumanDuration::parse, "a duration like 5m, 1h, 7d or a number of milliseconds"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_parse_like_synapse() {
        assert_eq!(ByteSize::parse("50M"), Some(ByteSize(50 << 20)));
        assert_eq!(ByteSize::parse("10k"), Some(ByteSize(10 << 10)));
        assert_eq!(ByteSize::parse("123"), Some(ByteSize(123)));
        assert_eq!(ByteSize::parse("lots"), None);
        assert_eq!(HumanDuration::parse("5m").unwrap().0, Duration::from_secs(300));
        assert_eq!(HumanDuration::parse("1500").unwrap().0, Duration::from_millis(1500));
        assert_eq!(HumanDuration::parse("2d").unwrap().0, Duration::from_secs(172_800));
        assert_eq!(HumanDuration::parse("-5m"), None);
    }
}
