//! User-Interactive Authentication sessions (spec: Client-Server API, "User-Interactive
//! Authentication API").
//!
//! A session is bound to one purpose (an operation on one account, e.g. "delete devices of
//! @a:x"); using it for anything else is refused. A session that has completed a flow is
//! consumed by the operation it authorised, so replaying it fails. Sessions live in memory and
//! expire after `SESSION_LIFETIME`: a restart simply asks the client to authenticate again.
//! At most `MAX_SESSIONS` exist: a new one beyond that pushes out the oldest, so a flood of
//! first `/register` round trips (also rate limited) cannot grow memory.

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use hashlink::LinkedHashMap;

use http::StatusCode;
use ruma::api::{
    client::uiaa::{AuthFlow, AuthType, UiaaInfo},
    error::{ErrorKind, StandardErrorBody},
};

use crate::error::Error;

pub const SESSION_LIFETIME: Duration = Duration::from_secs(15 * 60);
const MAX_SESSIONS: usize = 10_000;

#[derive(Debug, Clone)]
struct Session {
    purpose: String,
    flows: Vec<Vec<AuthType>>,
    completed: Vec<AuthType>,
    created: Instant,
    /// A registration token whose use this session has reserved.
    registration_token: Option<String>,
}

/// What a finished UIA hands to the operation it authorised.
#[derive(Debug, Default)]
pub struct Authorised {
    pub registration_token: Option<String>,
}

#[derive(Default)]
pub struct Uiaa {
    sessions: Mutex<Sessions>,
}

/// Sessions in the order they were created (oldest first), and the registration tokens of
/// sessions pushed out unfinished, to be given back by the next sweep.
#[derive(Default)]
struct Sessions {
    by_id: LinkedHashMap<String, Session>,
    evicted_tokens: Vec<String>,
}

/// The outcome of checking one submitted stage.
pub enum Stage {
    /// The stage passed; record it.
    Passed,
    /// The stage passed and reserved this registration token.
    PassedWithToken(String),
    /// The stage failed: answer 401 with this error and the session state.
    Failed(ErrorKind, String),
}

impl Uiaa {
    /// Starts a new session for `purpose` and returns the 401 error that describes it.
    pub fn begin(&self, purpose: &str, flows: &[Vec<AuthType>]) -> Error {
        let id = self.create(purpose, flows);
        self.challenge(&id, None)
    }

    fn create(&self, purpose: &str, flows: &[Vec<AuthType>]) -> String {
        let id = super::tokens::random_alphanumeric(24);
        let mut guard = self.sessions.lock();
        let Sessions { by_id: sessions, evicted_tokens } = &mut *guard;
        while sessions.len() >= MAX_SESSIONS {
            let Some((_, mut oldest)) = sessions.pop_front() else { break };
            evicted_tokens.extend(oldest.registration_token.take());
        }
        sessions.insert(
            id.clone(),
            Session {
                purpose: purpose.to_owned(),
                flows: flows.to_vec(),
                completed: Vec::new(),
                created: Instant::now(),
                registration_token: None,
            },
        );
        id
    }

    /// The 401 body for session `id`, optionally carrying the error of a failed stage.
    fn challenge(&self, id: &str, error: Option<(ErrorKind, String)>) -> Error {
        let sessions = &self.sessions.lock().by_id;
        let Some(s) = sessions.get(id) else {
            return unknown_session();
        };
        let flows = s.flows.iter().map(|stages| AuthFlow::new(stages.clone())).collect();
        let mut info = UiaaInfo::new(flows);
        info.session = Some(id.to_owned());
        info.completed = s.completed.clone();
        info.params = Some(serde_json::value::to_raw_value(&serde_json::json!({})).expect("static json"));
        info.auth_error = error.map(|(kind, msg)| StandardErrorBody::new(kind, msg));
        Error::Uiaa(Box::new(info))
    }

    /// Looks at the submitted auth dict. `session` is its session ID (a new session is started
    /// when absent), `stage` its type, `check` verifies the stage itself.
    ///
    /// Returns `Ok(Authorised)` once a whole flow is complete (the session is then consumed),
    /// otherwise the 401 the client must see.
    pub async fn step<F, Fut>(
        &self,
        purpose: &str,
        flows: &[Vec<AuthType>],
        session: Option<&str>,
        stage: Option<AuthType>,
        check: F,
    ) -> Result<Authorised, Error>
    where
        F: FnOnce(AuthType) -> Fut,
        Fut: Future<Output = Result<Stage, Error>>,
    {
        let id = match session {
            Some(id) => {
                let sessions = &self.sessions.lock().by_id;
                match sessions.get(id) {
                    None => return Err(unknown_session()),
                    Some(s) if s.created.elapsed() > SESSION_LIFETIME => return Err(unknown_session()),
                    Some(s) if s.purpose != purpose => {
                        return Err(Error::forbidden(
                            "This authentication session was started for a different request; start a new one",
                        ));
                    }
                    Some(_) => id.to_owned(),
                }
            }
            None => self.create(purpose, flows),
        };

        // Without a stage (fallback acknowledgement, or a bare session), report progress.
        let Some(stage) = stage else {
            return self.finish_if_complete(&id).ok_or_else(|| self.challenge(&id, None));
        };

        let allowed = {
            let sessions = &self.sessions.lock().by_id;
            let s = sessions.get(&id).ok_or_else(unknown_session)?;
            s.flows.iter().any(|f| f.starts_with(&s.completed) && f.get(s.completed.len()) == Some(&stage))
        };
        if !allowed {
            return Err(self.challenge(
                &id,
                Some((
                    ErrorKind::Unrecognized,
                    format!("Stage {stage} is not expected next in any flow of this session"),
                )),
            ));
        }

        match check(stage.clone()).await? {
            Stage::Failed(kind, msg) => return Err(self.challenge(&id, Some((kind, msg)))),
            outcome => {
                let mut sessions = self.sessions.lock();
                let s = sessions.by_id.get_mut(&id).ok_or_else(unknown_session)?;
                s.completed.push(stage);
                if let Stage::PassedWithToken(t) = outcome {
                    s.registration_token = Some(t);
                }
            }
        }
        self.finish_if_complete(&id).ok_or_else(|| self.challenge(&id, None))
    }

    /// Consumes the session when one of its flows is complete.
    fn finish_if_complete(&self, id: &str) -> Option<Authorised> {
        let sessions = &mut self.sessions.lock().by_id;
        let done = sessions.get(id).is_some_and(|s| s.flows.contains(&s.completed));
        if !done {
            return None;
        }
        let s = sessions.remove(id)?;
        Some(Authorised { registration_token: s.registration_token })
    }

    /// Drops the expired sessions and returns the registration tokens that they, and sessions
    /// pushed out since the last call, had reserved (to give back their pending use).
    pub fn expired_tokens(&self) -> Vec<String> {
        let mut guard = self.sessions.lock();
        let Sessions { by_id: sessions, evicted_tokens } = &mut *guard;
        let mut out = std::mem::take(evicted_tokens);
        // Oldest first: the expired ones are at the front.
        while sessions.front().is_some_and(|(_, s)| s.created.elapsed() >= SESSION_LIFETIME) {
            if let Some((_, mut s)) = sessions.pop_front() {
                out.extend(s.registration_token.take());
            }
        }
        out
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.sessions.lock().by_id.len()
    }
}

fn unknown_session() -> Error {
    Error::matrix(
        StatusCode::BAD_REQUEST,
        ErrorKind::InvalidParam,
        "Unknown, expired or already used authentication session; start again without a session",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sessions_beyond_the_cap_push_out_the_oldest() {
        let uiaa = Uiaa::default();
        let flows = [vec![AuthType::Dummy]];
        let session_of = |e: Error| match e {
            Error::Uiaa(info) => info.session.unwrap(),
            other => panic!("{other}"),
        };
        let first = session_of(uiaa.begin("register", &flows));
        for _ in 0..MAX_SESSIONS + 500 {
            uiaa.begin("register", &flows);
        }
        assert_eq!(uiaa.len(), MAX_SESSIONS);
        let step = |id: String| {
            let (uiaa, flows) = (&uiaa, &flows);
            async move { uiaa.step("register", flows, Some(&id), None, |_| async { Ok(Stage::Passed) }).await }
        };
        let gone = step(first).await.err().unwrap();
        assert_eq!(gone.errcode(), "M_INVALID_PARAM", "the oldest session was pushed out");
        let newest = session_of(uiaa.begin("register", &flows));
        assert!(matches!(step(newest).await, Err(Error::Uiaa(_))), "a new session still works");
    }
}
