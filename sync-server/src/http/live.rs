//! `GET /v1/dispatch/live`: Server-Sent Events for the dashboard, one `data:` line of
//! [`LiveEvent`] JSON per push or office event, sent as soon as it is committed.
//!
//! Authentication: a browser `EventSource` cannot send an `Authorization` header, and putting
//! the long-lived dispatcher token in a URL would leak it into logs and history. The dashboard
//! therefore first calls `POST /v1/dispatch/live/ticket` with its bearer token and gets a random
//! ticket that is valid once, for 30 s, and opens `/v1/dispatch/live?ticket=…`. Other clients may
//! simply send the bearer token.

use super::{AppState, Dispatcher};
use crate::auth;
use crate::service::{ApiError, ApiResult};
use crate::store::Store;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use doorstep_shared::ProblemCode;
use doorstep_shared::dashboard::{LiveEvent, LiveTicket};
use futures::Stream;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

pub async fn ticket<S: Store>(
    State(app): AppState<S>,
    who: Dispatcher,
) -> ApiResult<Json<LiveTicket>> {
    let secret = auth::new_dispatcher_token(&mut rand::rng());
    let now = app.clock.now_ms();
    let (hash, name) = (secret.hash.clone(), who.0.name.clone());
    app.with_store(move |s| {
        s.issue_live_ticket(&hash, &name, now + crate::live::TICKET_TTL_MS, now)
    })
    .await?;
    Ok(Json(LiveTicket {
        ticket: secret.plain,
        expires_in_ms: crate::live::TICKET_TTL_MS,
    }))
}

#[derive(serde::Deserialize)]
pub struct LiveQuery {
    #[serde(default)]
    ticket: Option<String>,
}

pub async fn stream<S: Store>(
    State(app): AppState<S>,
    q: Result<Query<LiveQuery>, QueryRejection>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let now = app.clock.now_ms();
    // Authentication comes first: a query that does not parse carries no ticket, and is refused
    // as malformed only once the caller is known.
    let ticket = q.as_ref().ok().and_then(|Query(q)| q.ticket.as_ref());
    let authorised = match ticket {
        Some(t) => {
            let hash = auth::hash_secret(t);
            app.with_store(move |s| s.redeem_live_ticket(&hash, now))
                .await?
                .is_some()
        }
        None => {
            let header = headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            app.dispatcher_for_token(auth::bearer(header)).await.is_ok()
        }
    };
    if !authorised {
        return Err(ApiError::new(
            ProblemCode::Unauthorized,
            "open the live stream with a fresh ticket from POST /v1/dispatch/live/ticket",
        ));
    }
    if let Err(e) = q {
        return Err(ApiError::new(ProblemCode::MalformedRequest, e.body_text()));
    }
    let rx = app.live.subscribe();
    let events = futures::stream::unfold(rx, |mut rx| async move {
        let msg = match rx.recv().await {
            Ok(ev) => ev,
            Err(RecvError::Lagged(_)) => LiveEvent::Resync,
            Err(RecvError::Closed) => return None,
        };
        let data = serde_json::to_string(&msg).unwrap_or_default();
        Some((Ok(Event::default().data(data)), rx))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
