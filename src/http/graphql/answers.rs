//! Answers to read-only queries, kept until the next commit. Dashboards poll the same query
//! over and over; what a query answers depends only on the store's state and on who asks,
//! so an answer rendered once serves every identical query of the same caller until any
//! commit lands. Mutations, subscriptions and unauthenticated requests are never kept. What
//! is kept is bounded in bytes, questions included (`--graphql-answer-cache-mb`): past the
//! bound the memory starts over.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_graphql::Request;
use axum::body::Bytes;

use crate::model::Principal;
use crate::store::Sequence;

/// Larger answers are not kept.
const LARGEST: usize = 1024 * 1024;
/// What one kept answer costs beyond its text: the map's entry and the strings' headers.
const ENTRY_OVERHEAD: usize = 256;

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

impl Question {
    /// The bytes this question takes when kept.
    fn size(&self) -> usize {
        self.who.username.len()
            + self.who.tenant_id.as_ref().map_or(0, String::len)
            + self.who.group_id.as_ref().map_or(0, String::len)
            + self.query.len()
            + self.operation.as_ref().map_or(0, String::len)
            + self.variables.len()
    }
}

/// A kept answer: its bytes, whether it was free of errors, and its metrics label.
pub type Kept = (Bytes, bool, Arc<str>);

pub struct Answers {
    kept: Mutex<AtCommit>,
    /// Bytes kept at most.
    budget: usize,
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
struct AtCommit {
    commit: Option<Sequence>,
    answers: HashMap<Question, Kept>,
    bytes: usize,
}

impl Answers {
    /// Keeping at most `budget` bytes.
    pub fn new(budget: usize) -> Answers {
        Answers {
            kept: Mutex::default(),
            budget,
        }
    }

    /// The answer kept for this question at this commit.
    pub fn get(&self, commit: Sequence, question: &Question) -> Option<Kept> {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if kept.commit != Some(commit) {
            return None;
        }
        kept.answers.get(question).cloned()
    }

    /// Keeps an answer computed from the state at `commit` (read before the query ran). If a
    /// commit landed meanwhile, the answer may show it; it is kept under the older commit,
    /// which no later question asks for.
    pub fn put(&self, commit: Sequence, question: Question, answer: Kept) {
        let size = answer.0.len() + answer.2.len() + question.size() + ENTRY_OVERHEAD;
        if answer.0.len() > LARGEST || size > self.budget {
            return;
        }
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if kept.commit != Some(commit) {
            if kept.commit.is_some_and(|c| c > commit) {
                return;
            }
            *kept = AtCommit {
                commit: Some(commit),
                ..AtCommit::default()
            };
        }
        if kept.bytes + size > self.budget {
            kept.answers = HashMap::new();
            kept.bytes = 0;
        }
        if kept.answers.insert(question, answer).is_none() {
            kept.bytes += size;
        }
    }

    /// Bytes kept now.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.kept.lock().unwrap_or_else(|p| p.into_inner()).bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Level;

    fn question(query: String) -> Question {
        let who = Principal {
            username: "admin".into(),
            level: Level::SystemAdmin,
            tenant_id: None,
            group_id: None,
        };
        Question::of(&Request::new(query), who).expect("a question")
    }

    #[test]
    fn kept_bytes_stay_within_the_budget_questions_included() {
        let budget = 64 * 1024;
        let answers = Answers::new(budget);
        let label: Arc<str> = Arc::from("anonymous");
        let mut most = 0;
        // Small answers to large (padded) questions: the questions are what fills the memory.
        for i in 0..200 {
            let query = format!("{{ me {{ username }} }} # {i} {}", "x".repeat(4000));
            answers.put(
                Sequence(1),
                question(query),
                (Bytes::from_static(b"{}"), true, label.clone()),
            );
            assert!(answers.bytes() <= budget, "{} > {budget}", answers.bytes());
            most = most.max(answers.bytes());
        }
        assert!(most > budget * 3 / 4, "the budget is used: {most}");
        let last = format!("{{ me {{ username }} }} # 199 {}", "x".repeat(4000));
        assert!(answers.get(Sequence(1), &question(last)).is_some());
    }
}
