//! Answers to read-only queries, kept until the next commit. Dashboards poll the same query
//! over and over; what a query answers depends only on the store's state and on who asks,
//! so an answer rendered once serves every identical query of the same caller until any
//! commit lands. Mutations, subscriptions and unauthenticated requests are never kept. What
//! is kept is bounded in bytes, questions included (`--graphql-answer-cache-mb`): past the
//! bound the memory starts over.
//!
//! One execution per question and commit: the first asker of a question claims it, and the
//! identical questions that arrive while it runs wait for its answer instead of running the
//! same query again (after a commit, every poller asks at once). A claim given up without an
//! answer (refused, cancelled, not keepable) wakes the waiters, and each runs its own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_graphql::Request;
use axum::body::Bytes;
use tokio::sync::watch;

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

/// A question's place in the memory: its answer, or the answer its first asker is computing.
enum Entry {
    Kept(Kept),
    Running(watch::Receiver<Option<Kept>>),
}

#[derive(Default)]
struct AtCommit {
    commit: Option<Sequence>,
    answers: HashMap<Question, Entry>,
    bytes: usize,
}

impl AtCommit {
    /// Makes room for `size` more bytes within `budget`, starting over when full.
    fn make_room(&mut self, size: usize, budget: usize) {
        if self.bytes + size > budget {
            self.answers = HashMap::new();
            self.bytes = 0;
        }
    }
}

/// What the memory says about a question.
pub enum Lookup<'a> {
    /// Its answer.
    Kept(Kept),
    /// Another request is running it: its answer, or `None` when it gave up.
    Wait(Waiting),
    /// Nobody has run it at this commit: the caller runs it and answers for the others.
    Run(Claim<'a>),
}

/// An answer being computed by another request.
pub struct Waiting(watch::Receiver<Option<Kept>>);

impl Waiting {
    /// The answer, or `None` when its asker gave up and the caller must run the query.
    pub async fn answer(mut self) -> Option<Kept> {
        self.0
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|answer| answer.clone())
    }
}

/// The right and the duty to answer a question at a commit: [`Claim::keep`] hands the answer
/// to the waiting requests and keeps it; dropped unanswered, it lets the waiters run their own.
pub struct Claim<'a> {
    answers: &'a Answers,
    commit: Sequence,
    question: Option<Question>,
    answer: watch::Sender<Option<Kept>>,
}

impl Claim<'_> {
    /// Keeps `answer` and hands it to the requests waiting for it.
    pub fn keep(mut self, answer: Kept) {
        if let Some(question) = self.question.take() {
            self.answers.put(self.commit, question, answer.clone());
        }
        self.answer.send_replace(Some(answer));
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        // Given up unanswered: the next asker claims the question again.
        if let Some(question) = self.question.take() {
            let mut kept = self.answers.lock();
            if kept.commit == Some(self.commit)
                && let Some(Entry::Running(running)) = kept.answers.get(&question)
                && running.same_channel(&self.answer.subscribe())
            {
                kept.answers.remove(&question);
                kept.bytes = kept.bytes.saturating_sub(question.size() + ENTRY_OVERHEAD);
            }
        }
    }
}

/// An answer's bytes in an allocation about their size. A kept answer counts its length
/// against the budget, while a buffer grown by doubling holds up to twice that: kept as it
/// is, the memory the answers hold would pass the bound they are given.
pub fn fitted(mut answer: Vec<u8>) -> Bytes {
    fit(&mut answer);
    Bytes::from(answer)
}

/// Gives back what `answer` holds past its length, unless that is little.
fn fit(answer: &mut Vec<u8>) {
    if answer.capacity() > answer.len() + answer.len() / 16 + 64 {
        answer.shrink_to_fit();
    }
}

impl Answers {
    /// Keeping at most `budget` bytes.
    pub fn new(budget: usize) -> Answers {
        Answers {
            kept: Mutex::default(),
            budget,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AtCommit> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The answer kept for this question at this commit, the request computing it, or a
    /// claim to compute it.
    pub fn ask(&self, commit: Sequence, question: &Question) -> Lookup<'_> {
        let mut kept = self.lock();
        if kept.commit != Some(commit) {
            if kept.commit.is_some_and(|c| c > commit) {
                // Asked at a commit already replaced: run without claiming.
                return Lookup::Run(self.unclaimed(commit));
            }
            *kept = AtCommit {
                commit: Some(commit),
                ..AtCommit::default()
            };
        }
        match kept.answers.get(question) {
            Some(Entry::Kept(answer)) => return Lookup::Kept(answer.clone()),
            Some(Entry::Running(running)) => return Lookup::Wait(Waiting(running.clone())),
            None => {}
        }
        let size = question.size() + ENTRY_OVERHEAD;
        if size > self.budget {
            return Lookup::Run(self.unclaimed(commit));
        }
        kept.make_room(size, self.budget);
        let (answer, running) = watch::channel(None);
        kept.answers
            .insert(question.clone(), Entry::Running(running));
        kept.bytes += size;
        Lookup::Run(Claim {
            answers: self,
            commit,
            question: Some(question.clone()),
            answer,
        })
    }

    /// A claim that keeps nothing and that nobody waits for.
    fn unclaimed(&self, commit: Sequence) -> Claim<'_> {
        Claim {
            answers: self,
            commit,
            question: None,
            answer: watch::channel(None).0,
        }
    }

    /// Keeps an answer computed from the state at `commit` (read before the query ran). If a
    /// commit landed meanwhile, the answer may show it; it is kept under the older commit,
    /// which no later question asks for.
    fn put(&self, commit: Sequence, question: Question, answer: Kept) {
        let question_size = question.size() + ENTRY_OVERHEAD;
        let size = answer.0.len() + answer.2.len() + question_size;
        let mut kept = self.lock();
        if kept.commit != Some(commit) {
            return;
        }
        // The question's own bytes were counted when it was claimed.
        let counted = match kept.answers.remove(&question) {
            Some(Entry::Running(_)) => question_size,
            Some(Entry::Kept(old)) => old.0.len() + old.2.len() + question_size,
            None => 0,
        };
        kept.bytes = kept.bytes.saturating_sub(counted);
        if answer.0.len() > LARGEST || size > self.budget {
            return;
        }
        kept.make_room(size, self.budget);
        kept.answers.insert(question, Entry::Kept(answer));
        kept.bytes += size;
    }

    /// Bytes kept now.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.lock().bytes
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

    fn answer(text: &'static str) -> Kept {
        (
            Bytes::from_static(text.as_bytes()),
            true,
            Arc::from("anonymous"),
        )
    }

    fn claim<'a>(answers: &'a Answers, commit: u64, q: &Question) -> Claim<'a> {
        match answers.ask(Sequence(commit), q) {
            Lookup::Run(claim) => claim,
            Lookup::Kept(_) => panic!("kept already"),
            Lookup::Wait(_) => panic!("running already"),
        }
    }

    #[test]
    fn an_answer_grown_by_doubling_is_kept_in_an_allocation_of_its_size() {
        // Written piece by piece, as a serializer writes an answer.
        let mut grown = Vec::new();
        for i in 0..1000 {
            grown.extend_from_slice(format!("{i:04}x").as_bytes());
        }
        assert!(
            grown.capacity() >= 8000,
            "grown by doubling: {}",
            grown.capacity()
        );
        fit(&mut grown);
        assert!(
            grown.capacity() < 5000 + 5000 / 16 + 64,
            "{}",
            grown.capacity()
        );
        assert!(grown.len() == 5000 && grown.ends_with(b"0999x"));
        // Sized beforehand (an answer from its plan): left as it is.
        let mut sized = Vec::with_capacity(5100);
        sized.extend_from_slice(&[b'y'; 5000]);
        let at = sized.as_ptr();
        fit(&mut sized);
        assert_eq!((sized.as_ptr(), sized.capacity()), (at, 5100));
    }

    #[test]
    fn kept_bytes_stay_within_the_budget_questions_included() {
        let budget = 64 * 1024;
        let answers = Answers::new(budget);
        let mut most = 0;
        // Small answers to large (padded) questions: the questions are what fills the memory.
        for i in 0..200 {
            let query = format!("{{ me {{ username }} }} # {i} {}", "x".repeat(4000));
            claim(&answers, 1, &question(query)).keep(answer("{}"));
            assert!(answers.bytes() <= budget, "{} > {budget}", answers.bytes());
            most = most.max(answers.bytes());
        }
        assert!(most > budget * 3 / 4, "the budget is used: {most}");
        let last = format!("{{ me {{ username }} }} # 199 {}", "x".repeat(4000));
        assert!(matches!(
            answers.ask(Sequence(1), &question(last)),
            Lookup::Kept(_)
        ));
    }

    #[test]
    fn questions_being_answered_count_within_the_budget() {
        let budget = 64 * 1024;
        let answers = Answers::new(budget);
        let mut claims = Vec::new();
        for i in 0..200 {
            let query = format!("{{ me {{ username }} }} # {i} {}", "x".repeat(4000));
            claims.push(claim(&answers, 1, &question(query)));
            assert!(answers.bytes() <= budget, "{} > {budget}", answers.bytes());
        }
        drop(claims);
        assert!(answers.bytes() <= budget);
    }

    #[tokio::test]
    async fn identical_questions_wait_for_the_first_askers_answer() {
        let answers = Answers::new(1024 * 1024);
        let q = question("{ me { username } }".into());
        let first = claim(&answers, 1, &q);
        let waiters: Vec<Waiting> = (0..3)
            .map(|_| match answers.ask(Sequence(1), &q) {
                Lookup::Wait(waiting) => waiting,
                _ => panic!("the second asker must wait for the first"),
            })
            .collect();
        first.keep(answer("{\"data\":1}"));
        for waiting in waiters {
            let (bytes, ok, _) = waiting.answer().await.expect("the first asker's answer");
            assert_eq!((&bytes[..], ok), (&b"{\"data\":1}"[..], true));
        }
        assert!(matches!(answers.ask(Sequence(1), &q), Lookup::Kept(_)));
        // A new commit: the question is asked anew.
        assert!(matches!(answers.ask(Sequence(2), &q), Lookup::Run(_)));
    }

    #[tokio::test]
    async fn a_claim_given_up_lets_the_waiters_run_and_the_next_asker_claim() {
        let answers = Answers::new(1024 * 1024);
        let q = question("{ me { username } }".into());
        let first = claim(&answers, 1, &q);
        let Lookup::Wait(waiting) = answers.ask(Sequence(1), &q) else {
            panic!("the second asker must wait");
        };
        drop(first);
        assert!(waiting.answer().await.is_none(), "no answer: run your own");
        assert_eq!(answers.bytes(), 0, "nothing is left of the claim");
        let again = claim(&answers, 1, &q);
        again.keep(answer("{}"));
        assert!(matches!(answers.ask(Sequence(1), &q), Lookup::Kept(_)));
    }
}
