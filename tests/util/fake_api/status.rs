//! Errors as the apiserver's `Status` objects.

use serde_json::{Value, json};

pub(super) fn not_found_in(resource: &str, group: &str, name: &str) -> ApiError {
    ApiError::new(404, format!("{resource}.{group} \"{name}\" not found"))
        .details(json!({"name": name, "group": group, "kind": resource}))
}

pub(super) fn already_exists(resource: &str, group: &str, name: &str) -> ApiError {
    let qualified = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    ApiError::new(409, format!("{qualified} \"{name}\" already exists"))
        .reason("AlreadyExists")
        .details(json!({"name": name, "group": group, "kind": resource}))
}

pub(super) fn conflict(resource: &str, group: &str, name: &str) -> ApiError {
    ApiError::new(
        409,
        format!("Operation cannot be fulfilled on {resource}.{group} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"),
    )
    .details(json!({"name": name, "group": group, "kind": resource}))
}

/// An error answered as a `Status` object.
#[derive(Debug)]
pub(super) struct ApiError {
    pub(super) code: u16,
    pub(super) reason: &'static str,
    pub(super) message: String,
    pub(super) details: Option<Value>,
    pub(super) retry_after: Option<u64>,
}

impl ApiError {
    pub(super) fn new(code: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason: status_reason(code),
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }
    fn reason(mut self, reason: &'static str) -> ApiError {
        self.reason = reason;
        self
    }
    pub(super) fn details(mut self, d: Value) -> ApiError {
        self.details = Some(d);
        self
    }
    fn retry_after(mut self, secs: u64) -> ApiError {
        self.retry_after = Some(secs);
        self
    }
    pub(super) fn not_found_path() -> ApiError {
        ApiError::new(404, "the server could not find the requested resource").details(json!({}))
    }
    /// An injected status with the message the real server would give for it.
    pub(super) fn injected(code: u16, what: &str, retry_after: Option<u64>) -> ApiError {
        let msg = match code {
            400 => "bad request (injected fault)".to_string(),
            401 => "Unauthorized".to_string(),
            403 => format!("{what} is forbidden (injected fault)"),
            404 => "the server could not find the requested resource".to_string(),
            410 => format!("The resourceVersion for the provided {} is too old.", if what == "watch" { "watch" } else { "list" }),
            429 => "Too many requests, please try again later.".to_string(),
            500 => "Internal error occurred: injected fault".to_string(),
            503 => "The server is currently unable to handle the request (injected fault)".to_string(),
            504 => "Timeout: request did not complete within requested timeout - context deadline exceeded".to_string(),
            _ => format!("injected fault {code}"),
        };
        let mut e = ApiError::new(code, msg);
        let retry = retry_after.or(if code == 429 { Some(1) } else { None });
        if let Some(r) = retry {
            e = e.retry_after(r).details(json!({"retryAfterSeconds": r}));
        }
        e
    }
    /// The Status JSON, with the real server's key order.
    pub(super) fn body(&self) -> Vec<u8> {
        status_json(self.code, self.reason, &self.message, self.details.as_ref()).into_bytes()
    }
}

pub(super) fn status_json(
    code: u16,
    reason: &str,
    message: &str,
    details: Option<&Value>,
) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut s = format!(
        r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":{},"reason":{}"#,
        q(message),
        q(reason)
    );
    if let Some(d) = details {
        s += &format!(r#","details":{d}"#);
    }
    s + &format!(r#","code":{code}}}"#)
}

fn status_reason(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Expired",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "",
    }
}

pub(super) fn not_found(resource: &str, name: &str) -> ApiError {
    ApiError::new(404, format!("{resource} \"{name}\" not found"))
        .details(json!({"name": name, "kind": resource}))
}

pub(super) fn invalid_list_options(msg: &str) -> ApiError {
    ApiError::new(
        422,
        format!("ListOptions.meta.k8s.io \"\" is invalid: {msg}"),
    )
    .details(json!({"group": "meta.k8s.io", "kind": "ListOptions"}))
}

pub(super) fn too_large_rv(x: u64, current: u64) -> ApiError {
    ApiError::new(504, format!("Too large resource version: {x}, current: {current}"))
        .details(json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1}))
        .retry_after(1)
}
