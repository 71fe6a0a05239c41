//! API errors: `{"error": {"code", "message", "field"}}` with a 4xx/5xx status.

use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use protocol::{
    api::{ErrorBody, ErrorDetail},
    validate::FieldError,
};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        Self {
            field: (!field.is_empty()).then_some(field),
            ..Self::new(StatusCode::BAD_REQUEST, "invalid_field", message)
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        Self::invalid(e.field, e.message)
    }
}

impl From<actors::store::StoreError> for ApiError {
    fn from(e: actors::store::StoreError) -> Self {
        tracing::error!(error = %e, "storage error while serving a request");
        Self::internal(e.to_string())
    }
}

impl From<actors::proposer::ProposeError> for ApiError {
    fn from(e: actors::proposer::ProposeError) -> Self {
        match e {
            actors::proposer::ProposeError::NoSpace(why) => Self::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "insufficient_storage",
                format!("not stored: {why}; retry once there is room"),
            ),
            e => Self::unavailable(format!("the change was not committed: {e}; retry")),
        }
    }
}

impl From<actix::MailboxError> for ApiError {
    fn from(e: actix::MailboxError) -> Self {
        Self::unavailable(format!("the scheduler is not running: {e}"))
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        match self.status {
            StatusCode::SERVICE_UNAVAILABLE => {
                response.insert_header(("retry-after", "1"));
            }
            // Room comes back when someone frees it: not within a second.
            StatusCode::INSUFFICIENT_STORAGE => {
                response.insert_header(("retry-after", "10"));
            }
            _ => {}
        }
        response.json(ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message.clone(),
                field: self.field.clone(),
            },
        })
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
