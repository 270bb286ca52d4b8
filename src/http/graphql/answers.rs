//! Answers to read-only queries, kept until the next commit. Dashboards poll the same query
//! over and over; what a query answers depends only on the store's state and on who asks,
//! so an answer rendered once serves every identical query of the same caller until any
//! commit lands. Mutations, subscriptions and unauthenticated requests are never kept.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use async_graphql::Request;
use async_graphql::parser::types::OperationType;
use axum::body::Bytes;

use crate::model::Principal;
use crate::store::Ticket;

/// Distinct queries kept per commit; past this many the memory starts over.
const KEPT: usize = 256;
/// Larger answers are not kept.
const LARGEST: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Question {
    who: Principal,
    query: String,
    operation: Option<String>,
    variables: String,
}

impl Question {
    /// What a request asks, as text: looked up before the request is even parsed, since
    /// only questions that passed the limits and read nothing but queries are ever kept.
    pub fn of(request: &Request, who: Principal) -> Option<Question> {
        Some(Question {
            who,
            query: request.query.clone(),
            operation: request.operation_name.clone(),
            variables: serde_json::to_string(&request.variables).ok()?,
        })
    }
}

/// Whether an (admitted, so parsed) request only reads: every operation is a query.
pub fn read_only(request: &mut Request) -> bool {
    request.parsed_query().is_ok_and(|document| {
        document
            .operations
            .iter()
            .all(|(_, op)| op.node.ty == OperationType::Query)
    })
}

/// Set by a resolver whose answer can change without a commit (reachability): such an
/// answer is not kept.
#[derive(Default)]
pub struct Volatile(AtomicBool);

impl Volatile {
    pub fn mark(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn marked(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Default)]
pub struct Answers(Mutex<Kept>);

#[derive(Default)]
struct Kept {
    commit: Option<Ticket>,
    answers: HashMap<Question, (Bytes, bool)>,
}

impl Answers {
    /// The answer kept for this question at this commit, and whether it was free of errors.
    pub fn get(&self, commit: Ticket, question: &Question) -> Option<(Bytes, bool)> {
        let kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if kept.commit != Some(commit) {
            return None;
        }
        kept.answers.get(question).cloned()
    }

    /// Keeps an answer computed from the state at `commit` (read before the query ran). If a
    /// commit landed meanwhile, the answer may show it; it is kept under the older commit,
    /// which no later question asks for.
    pub fn put(&self, commit: Ticket, question: Question, answer: (Bytes, bool)) {
        if answer.0.len() > LARGEST {
            return;
        }
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if kept.commit != Some(commit) {
            if kept.commit.is_some_and(|c| c > commit) {
                return;
            }
            kept.commit = Some(commit);
            kept.answers.clear();
        }
        if kept.answers.len() >= KEPT {
            kept.answers.clear();
        }
        kept.answers.insert(question, answer);
    }
}
