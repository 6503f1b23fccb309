//! A security-relevant configuration operation the device offers over the network (the
//! IXIT's `config_interfaces:`), and how its setting is read back: CFG-01 (5.5-5) performs
//! it without credentials, with wrong ones and with the owner's.

/// One declared operation.
#[derive(Debug, Clone)]
pub struct ConfigOp {
    /// The setting, as evidence names it (`update_server`).
    pub name: String,
    pub request: Request,
    /// The shell command that shows the setting, and the regex with a `value` group that
    /// reads it from the answer.
    pub read_command: String,
    pub read_pattern: String,
}

/// A request that sets a value over the network (a configuration operation, or how a
/// `personal_data` item is planted).
#[derive(Debug, Clone)]
pub struct Request {
    /// The declared service (`services[].name`) the request goes to.
    pub service: String,
    /// HTTP: the method and path (empty for MQTT).
    pub method: String,
    pub path: super::template::Template,
    /// MQTT: the topic the value is published on (the service is the device's broker).
    pub topic: Option<String>,
    /// The request body (MQTT: the payload), with `{{value}}` where the value goes.
    pub body: super::template::Template,
    pub content_type: String,
}
