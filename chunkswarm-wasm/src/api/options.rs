//! Reading the option objects JavaScript passes in, with clear errors.

use wasm_bindgen::prelude::*;

/// `Client` options (`ClientOptions` in TypeScript).
#[derive(Debug, Default)]
pub(crate) struct ClientOptions {
    pub(crate) tracker_url: Option<String>,
    pub(crate) ice_servers: Option<JsValue>,
    /// `iceTransportPolicy: 'relay'`.
    pub(crate) relay_only: bool,
    pub(crate) max_connections: Option<u64>,
    pub(crate) upload_limit: Option<u64>,
    pub(crate) storage: Option<String>,
    pub(crate) memory_cache: Option<u64>,
}

/// `addTorrent` options (`TorrentOptions` in TypeScript).
#[derive(Debug, Default)]
pub(crate) struct TorrentOptions {
    /// `None`: the torrent's own; `Some(None)`: none at all (`webSeed: false`).
    pub(crate) web_seed: Option<Option<String>>,
    pub(crate) strategy: Option<String>,
}

fn field(object: &JsValue, name: &str) -> Result<Option<JsValue>, JsError> {
    if object.is_undefined() || object.is_null() {
        return Ok(None);
    }
    if !object.is_object() {
        return Err(JsError::new("options must be an object"));
    }
    let value = js_sys::Reflect::get(object, &JsValue::from_str(name))
        .map_err(|_| JsError::new(&format!("cannot read option `{name}`")))?;
    Ok((!value.is_undefined() && !value.is_null()).then_some(value))
}

fn string(object: &JsValue, name: &str) -> Result<Option<String>, JsError> {
    field(object, name)?
        .map(|v| {
            v.as_string()
                .ok_or_else(|| JsError::new(&format!("option `{name}` must be a string")))
        })
        .transpose()
}

/// A whole, non-negative number that fits a JS safe integer.
pub(crate) fn count(value: f64, name: &str) -> Result<u64, JsError> {
    const MAX_SAFE: f64 = 9_007_199_254_740_991.0;
    if (0.0..=MAX_SAFE).contains(&value) && value.fract() == 0.0 {
        Ok(value as u64)
    } else {
        Err(JsError::new(&format!(
            "`{name}` must be a whole number ≥ 0, got {value}"
        )))
    }
}

fn number(object: &JsValue, name: &str) -> Result<Option<u64>, JsError> {
    field(object, name)?
        .map(|v| {
            let n = v
                .as_f64()
                .ok_or_else(|| JsError::new(&format!("option `{name}` must be a number")))?;
            count(n, name)
        })
        .transpose()
}

impl ClientOptions {
    pub(crate) fn parse(options: &JsValue) -> Result<Self, JsError> {
        let ice_servers = field(options, "iceServers")?;
        if let Some(servers) = &ice_servers {
            if !js_sys::Array::is_array(servers) {
                return Err(JsError::new("option `iceServers` must be an array"));
            }
        }
        let relay_only = match string(options, "iceTransportPolicy")?.as_deref() {
            None | Some("all") => false,
            Some("relay") => true,
            Some(other) => {
                return Err(JsError::new(&format!(
                    "option `iceTransportPolicy` must be 'all' or 'relay', not {other:?}"
                )));
            }
        };
        Ok(Self {
            tracker_url: string(options, "trackerUrl")?,
            ice_servers,
            relay_only,
            max_connections: number(options, "maxConnections")?,
            upload_limit: number(options, "uploadLimit")?,
            storage: string(options, "storage")?,
            memory_cache: number(options, "memoryCache")?,
        })
    }
}

impl TorrentOptions {
    pub(crate) fn parse(options: &JsValue) -> Result<Self, JsError> {
        Ok(Self {
            web_seed: match field(options, "webSeed")? {
                Some(v) if v.as_bool() == Some(false) => Some(None),
                Some(_) => Some(string(options, "webSeed")?),
                None => None,
            },
            strategy: string(options, "strategy")?,
        })
    }
}
