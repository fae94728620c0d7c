//! The `judge` guard: a generator of the workflow decides whether the
//! artifact passes. Its answer must be a verdict, `{ pass: Bool, issues:
//! [Text] }` (the JSON Schema goes with the request, as for a `Json<T>`
//! output); the issues are the feedback. A malformed verdict (or a
//! failed call) is asked again, up to `retries` more times; then the
//! guard fails fatally: a judge that never answered never passes.

use std::sync::{Arc, LazyLock};

use serde_json::Value;

use crate::check::ir::Ty;
use crate::runtime::registry::{BoxFuture, GuardCall, JudgeRequest};
use crate::runtime::{text_of, Verdict};

/// The verdict a judge's generator answers with.
pub static VERDICT: LazyLock<Ty> = LazyLock::new(|| Ty::Json {
    of: Box::new(Ty::Record {
        fields: vec![
            ("pass".to_string(), Ty::Bool),
            (
                "issues".to_string(),
                Ty::List {
                    of: Box::new(Ty::Text),
                    max: None,
                },
            ),
        ],
    }),
});

/// The role a judge's generator gets.
const ROLE: &str = "You are a strict reviewer. You judge one artifact against one question and \
answer with a JSON verdict only.";

/// `judge(by, ask, retries, max_tokens)` on the artifact in `call`.
pub fn judge(call: GuardCall) -> BoxFuture<'static, Verdict> {
    Box::pin(async move {
        let ask = call.str_arg(1).to_string();
        let retries = call.int_arg(2);
        let max_tokens = call.int_arg(3);
        let question = prompt(&ask, &call.text());
        let schema = crate::stdlib::json::schema_of(&VERDICT);
        let mut why = String::new();
        let asks = retries.saturating_add(1);
        for _ in 0..asks {
            let prompt = if why.is_empty() {
                question.clone()
            } else {
                format!(
                    "{question}\n\nYour previous answer was not a verdict: {why}\n\
                     Answer with the JSON object only."
                )
            };
            let request = JudgeRequest {
                prompt,
                role: Some(ROLE.to_string()),
                output_type: Arc::from(VERDICT.to_string()),
                output_schema: Some(Arc::new(schema.clone())),
                max_tokens: (max_tokens > 0).then_some(max_tokens),
            };
            match call.ask(0, request).await {
                Ok(answer) => match verdict(&answer.text) {
                    Ok(v) => return v,
                    Err(e) => why = e,
                },
                Err(e) if e.fatal => {
                    return Verdict::fatal(format!("its generator failed: {}", e.message))
                }
                Err(e) => why = format!("the generator gave no answer: {}", e.message),
            }
        }
        Verdict::fatal(format!(
            "no verdict in {asks} {} (a judge that cannot decide never passes); the last: {why}",
            if asks == 1 { "answer" } else { "answers" }
        ))
    })
}

/// What the judge's generator is asked: the question, the artifact, and
/// the form of the answer.
pub fn prompt(ask: &str, artifact: &str) -> String {
    format!(
        "{ask}\n\nThe artifact to judge:\n<artifact>\n{artifact}\n</artifact>\n\n\
         Answer with one JSON object and nothing else: {{\"pass\": true or false, \
         \"issues\": [\"…\"]}}. List in `issues` each problem the artifact must fix, \
         one per item, specific enough to act on; when it passes, `issues` is empty."
    )
}

/// A verdict from the generator's answer; `Err` says why it is none.
pub fn verdict(text: &str) -> Result<Verdict, String> {
    let v = crate::runtime::convert::convert(text, &VERDICT)?;
    let pass = v.get("pass").and_then(Value::as_bool).unwrap_or(false);
    let issues: Vec<String> = v
        .get("issues")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|i| text_of(i).trim().to_string())
                .filter(|i| !i.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if pass {
        return Ok(Verdict::Pass);
    }
    if issues.is_empty() {
        return Ok(Verdict::fail(
            "rejected without naming an issue".to_string(),
        ));
    }
    let lines: Vec<String> = issues.iter().map(|i| format!("- {i}")).collect();
    let head = match issues.len() {
        1 => "1 issue to fix".to_string(),
        n => format!("{n} issues to fix"),
    };
    Ok(Verdict::fail(format!("{head}:\n{}", lines.join("\n"))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::value::expect_fail;

    #[test]
    fn verdicts_are_read_strictly() {
        assert_eq!(
            verdict(r#"{"pass": true, "issues": []}"#),
            Ok(Verdict::Pass)
        );
        let fenced = "Here:\n```json\n{\"pass\": false, \"issues\": [\"no tests\", \" \"]}\n```";
        assert_eq!(
            expect_fail(verdict(fenced).unwrap()),
            "1 issue to fix:\n- no tests"
        );
        assert!(
            expect_fail(verdict(r#"{"pass": false, "issues": []}"#).unwrap())
                .contains("without naming")
        );
        for bad in [
            "yes",
            r#"{"pass": "yes", "issues": []}"#,
            r#"{"issues": []}"#,
            "",
        ] {
            let e = verdict(bad).unwrap_err();
            assert!(!e.is_empty(), "{bad}");
        }
    }

    #[test]
    fn the_prompt_holds_the_question_and_the_artifact() {
        let p = prompt("Is it sorted?", "1 2 3");
        assert!(p.starts_with("Is it sorted?\n"), "{p}");
        assert!(p.contains("<artifact>\n1 2 3\n</artifact>"), "{p}");
    }
}
