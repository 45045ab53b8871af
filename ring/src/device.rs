//! A device of a ring: one disk on one storage server, as Swift's ring and
//! builder describe it.

use serde_json::{Map, Value};

/// One device of a ring (Swift's device dict).
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    pub id: u32,
    pub region: i64,
    pub zone: i64,
    pub ip: String,
    pub port: u16,
    pub replication_ip: String,
    pub replication_port: u16,
    /// The device's directory name under the server's `devices` root.
    pub device: String,
    pub weight: f64,
    pub meta: String,
    /// Keys we do not know, carried through unchanged (Swift passes any
    /// extra key of a device dict through to the ring file).
    pub extra: Map<String, Value>,
}

/// Why a device dict from a ring or builder file was refused.
#[derive(Debug, thiserror::Error)]
#[error("device {index}: {reason}")]
pub struct DeviceError {
    pub index: usize,
    pub reason: String,
}

impl Device {
    /// Reads a device dict as found in a ring file. `index` is its slot in
    /// the device list, used in errors. Missing `replication_ip`/`_port`
    /// default to `ip`/`port` and a missing `region` to 1, as Swift does for
    /// old rings.
    pub fn from_json(index: usize, value: &Value) -> Result<Device, DeviceError> {
        let err = |reason: String| DeviceError { index, reason };
        let obj = value.as_object().ok_or_else(|| err("is not an object".into()))?;
        let int = |key: &str| -> Result<Option<i64>, DeviceError> {
            match obj.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_i64()
                    .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
                    .map(Some)
                    .ok_or_else(|| err(format!("{key} is not an integer: {v}"))),
            }
        };
        let string = |key: &str| -> Result<Option<String>, DeviceError> {
            match obj.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(v) => Err(err(format!("{key} is not a string: {v}"))),
            }
        };
        let port = |key: &str| -> Result<Option<u16>, DeviceError> {
            match int(key)? {
                None => Ok(None),
                Some(p) => u16::try_from(p).map(Some).map_err(|_| err(format!("{key} {p} is not a TCP port"))),
            }
        };
        let id = int("id")?.ok_or_else(|| err("has no id".into()))?;
        let id = u32::try_from(id).map_err(|_| err(format!("id {id} is out of range")))?;
        let ip = string("ip")?.ok_or_else(|| err("has no ip".into()))?;
        let port_v = port("port")?.ok_or_else(|| err("has no port".into()))?;
        let weight = match obj.get("weight") {
            None | Some(Value::Null) => 0.0,
            Some(v) => v.as_f64().ok_or_else(|| err(format!("weight is not a number: {v}")))?,
        };
        let mut extra = Map::new();
        for (k, v) in obj {
            if !KNOWN_KEYS.contains(&k.as_str()) {
                extra.insert(k.clone(), v.clone());
            }
        }
        Ok(Device {
            id,
            region: int("region")?.unwrap_or(1),
            zone: int("zone")?.unwrap_or(0),
            replication_ip: string("replication_ip")?.unwrap_or_else(|| ip.clone()),
            replication_port: port("replication_port")?.unwrap_or(port_v),
            ip,
            port: port_v,
            device: string("device")?.unwrap_or_default(),
            weight,
            meta: string("meta")?.unwrap_or_default(),
            extra,
        })
    }

    /// The device dict as Swift writes it into a ring file.
    pub fn to_json(&self) -> Value {
        let mut obj = self.extra.clone();
        obj.insert("id".into(), self.id.into());
        obj.insert("region".into(), self.region.into());
        obj.insert("zone".into(), self.zone.into());
        obj.insert("ip".into(), self.ip.clone().into());
        obj.insert("port".into(), self.port.into());
        obj.insert("replication_ip".into(), self.replication_ip.clone().into());
        obj.insert("replication_port".into(), self.replication_port.into());
        obj.insert("device".into(), self.device.clone().into());
        obj.insert("weight".into(), Value::from(self.weight));
        obj.insert("meta".into(), self.meta.clone().into());
        Value::Object(obj)
    }

    /// Swift's `format_device`: `d0r1z1-127.0.0.1:6200R127.0.0.1:6200/sdb1_"meta"`.
    pub fn describe(&self) -> String {
        format!(
            "d{}r{}z{}-{}:{}R{}:{}/{}_\"{}\"",
            self.id,
            self.region,
            self.zone,
            format_ip(&self.ip),
            self.port,
            format_ip(&self.replication_ip),
            self.replication_port,
            self.device,
            self.meta
        )
    }
}

/// Wraps an IPv6 address in brackets, as Swift prints addresses next to ports.
pub fn format_ip(ip: &str) -> String {
    if ip.contains(':') && !ip.starts_with('[') {
        format!("[{ip}]")
    } else {
        ip.to_string()
    }
}

const KNOWN_KEYS: &[&str] = &["id", "region", "zone", "ip", "port", "replication_ip", "replication_port", "device", "weight", "meta"];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn old_devices_get_swift_defaults_and_keep_extra_keys() {
        let d = Device::from_json(
            0,
            &json!({"id": 3, "zone": 2, "ip": "10.0.0.1", "port": 6200, "device": "sdb", "weight": 100, "color": "red"}),
        )
        .unwrap();
        assert_eq!(d.region, 1);
        assert_eq!(d.replication_ip, "10.0.0.1");
        assert_eq!(d.replication_port, 6200);
        assert_eq!(d.extra.get("color"), Some(&json!("red")));
        assert_eq!(d.to_json()["color"], json!("red"));
        assert_eq!(d.describe(), "d3r1z2-10.0.0.1:6200R10.0.0.1:6200/sdb_\"\"");
    }

    #[test]
    fn bad_devices_are_refused() {
        assert!(Device::from_json(0, &json!({"id": 1, "ip": "x", "port": 70000})).is_err());
        assert!(Device::from_json(0, &json!({"ip": "x", "port": 1})).is_err());
        assert!(Device::from_json(0, &json!("nope")).is_err());
        assert!(Device::from_json(0, &json!({"id": 1, "ip": 5, "port": 1})).is_err());
    }
}
